/*
 * call.c - the per-call state machine.
 *
 * A call is born posted (a grpc_server_request_*_call waiting for a match),
 * then, once matched, holds one reference per outstanding batch, one while
 * its handler runs and one per external holder (stream subscribers). The
 * completion-queue threads only drive batches and run RPC_INLINE handlers;
 * other handlers run on the worker pool. Every batch completes exactly once,
 * even on cancellation, so the call is freed when the last reference drops,
 * after the access-log interceptors have seen its final status.
 *
 * Sends on a stream are serialised: one SEND_MESSAGE in flight, the rest in
 * a bounded queue; the status goes out after the queue has drained.
 */
#include <grpc/byte_buffer_reader.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "rpc/internal.h"
#include "util/log.h"

static void start_recv(rpc_call *c);
static void dispatch(rpc_call *c);

/* ---- lifetime ---- */

rpc_call *rpc_call_new(rpc_server *srv, rpc_method *method) {
  rpc_call *c = calloc(1, sizeof(*c));
  if (!c) return NULL;
  c->srv = srv;
  c->method = method;
  atomic_init(&c->refs, 1);
  atomic_init(&c->cancelled, false);
  atomic_init(&c->closed, false);
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->room, NULL);
  c->t_new = (rpc_tag){c, TAG_NEW_CALL};
  c->t_close = (rpc_tag){c, TAG_CLOSE};
  c->t_send = (rpc_tag){c, TAG_SEND};
  c->t_recv = (rpc_tag){c, TAG_RECV};
  c->t_status = (rpc_tag){c, TAG_STATUS};
  grpc_metadata_array_init(&c->md_in);
  if (!method) grpc_call_details_init(&c->details);
  rpc_arena_init(&c->arena);
  pthread_mutex_lock(&srv->mu);
  srv->live_calls++;
  pthread_mutex_unlock(&srv->mu);
  return c;
}

static void free_queue(rpc_call *c) {
  rpc_out_msg *m = c->q_head;
  while (m) {
    rpc_out_msg *n = m->next;
    grpc_byte_buffer_destroy(m->buf);
    free(m);
    m = n;
  }
  c->q_head = c->q_tail = NULL;
  c->q_len = 0;
}

static void destroy(rpc_call *c) {
  rpc_server *srv = c->srv;
  if (c->call) {
    int code = c->status_started ? c->final_code : GRPC_STATUS_CANCELLED;
    const char *msg = c->status_started ? c->final_msg : "client cancelled or went away";
    for (int i = 0; i < srv->ninterceptors; i++) {
      if (srv->interceptors[i].after)
        srv->interceptors[i].after(c, code, msg ? msg : "", srv->interceptors[i].arg);
    }
    grpc_call_unref(c->call);
  }
  free_queue(c);
  if (c->payload) grpc_byte_buffer_destroy(c->payload);
  if (c->inflight_buf) grpc_byte_buffer_destroy(c->inflight_buf);
  if (c->payload_out) grpc_byte_buffer_destroy(c->payload_out);
  grpc_metadata_array_destroy(&c->md_in);
  if (!c->method) grpc_call_details_destroy(&c->details);
  if (c->status_started) grpc_slice_unref(c->final_details);
  for (int i = 0; i < c->ntrailers; i++) {
    grpc_slice_unref(c->trailers[i].key);
    grpc_slice_unref(c->trailers[i].value);
  }
  if (c->initial_md_sent) {
    grpc_slice_unref(c->initial_md[0].key);
    grpc_slice_unref(c->initial_md[0].value);
  }
  if (c->peer) gpr_free(c->peer);
  free(c->principal);
  free(c->final_msg);
  rpc_arena_release(&c->arena);
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->room);
  free(c);
  rpc_server_call_released(srv);
}

void rpc_call_ref(rpc_call *c) { atomic_fetch_add(&c->refs, 1); }

void rpc_call_unref(rpc_call *c) {
  if (atomic_fetch_sub(&c->refs, 1) == 1) destroy(c);
}

static bool start_batch(rpc_call *c, const grpc_op *ops, size_t n, rpc_tag *tag) {
  rpc_call_ref(c);
  grpc_call_error err = grpc_call_start_batch(c->call, ops, n, tag, NULL);
  if (err != GRPC_CALL_OK) {
    nc_log(NC_LOG_ERROR, "grpc_call_start_batch failed", LKV_I("error", err),
           LKV_S("method", rpc_call_method(c)));
    rpc_call_unref(c);
    return false;
  }
  return true;
}

/* ---- posting ---- */

void rpc_call_post(rpc_server *srv, rpc_method *method) {
  rpc_call *c = rpc_call_new(srv, method);
  if (!c) {
    nc_errorf("out of memory posting a call");
    return;
  }
  grpc_call_error err;
  if (method) {
    bool payload = method->row.kind == RPC_UNARY || method->row.kind == RPC_SERVER_STREAMING;
    err = grpc_server_request_registered_call(srv->server, method->handle, &c->call, &c->deadline,
                                              &c->md_in, payload ? &c->payload : NULL, srv->cq,
                                              srv->cq, &c->t_new);
  } else {
    err = grpc_server_request_call(srv->server, &c->call, &c->details, &c->md_in, srv->cq, srv->cq,
                                   &c->t_new);
  }
  if (err != GRPC_CALL_OK) {
    nc_log(NC_LOG_ERROR, "could not post a call request", LKV_I("error", err));
    c->call = NULL;
    rpc_call_unref(c);
  }
}

/* ---- final status ---- */

static grpc_slice slice_from(const char *s) { return grpc_slice_from_copied_string(s ? s : ""); }

static void add_initial_md_locked(rpc_call *c, grpc_op *op) {
  c->initial_md[0].key = grpc_slice_from_static_string("x-request-id");
  c->initial_md[0].value = slice_from(c->request_id);
  op->op = GRPC_OP_SEND_INITIAL_METADATA;
  op->data.send_initial_metadata.count = 1;
  op->data.send_initial_metadata.metadata = c->initial_md;
  c->initial_md_sent = true;
}

static void enqueue_locked(rpc_call *c, grpc_byte_buffer *bb) {
  rpc_out_msg *m = malloc(sizeof(*m));
  if (!m) {
    grpc_byte_buffer_destroy(bb);
    return;
  }
  m->buf = bb;
  m->next = NULL;
  if (c->q_tail)
    c->q_tail->next = m;
  else
    c->q_head = m;
  c->q_tail = m;
  c->q_len++;
}

static void set_final_locked(rpc_call *c, int code, const char *text) {
  /* a handler bug must not put a code outside gRPC's range on the wire */
  if (code < GRPC_STATUS_OK || code > GRPC_STATUS_UNAUTHENTICATED) {
    nc_log(NC_LOG_ERROR, "handler returned an invalid status code", LKV_I("code", code),
           LKV_S("method", rpc_call_method(c)));
    code = GRPC_STATUS_INTERNAL;
    text = "internal error";
  }
  c->final_code = code;
  if (c->final_msg != text) {
    free(c->final_msg);
    c->final_msg = strdup(text ? text : "");
  }
}

/* Ends the call: initial metadata if not yet sent, an optional last
 * message, the status. Called with c->mu held; takes ownership of `msg`.
 * While a stream message is on the wire, the end is recorded and sent by
 * on_send_done after the queue has drained, so the status never overtakes
 * messages. */
static void start_final_locked(rpc_call *c, grpc_byte_buffer *msg, int code, const char *text) {
  if (c->status_started) {
    if (msg) grpc_byte_buffer_destroy(msg);
    return;
  }
  set_final_locked(c, code, text);
  if (c->send_inflight) {
    if (msg) enqueue_locked(c, msg);
    c->finish_requested = true;
    return;
  }
  c->status_started = true;
  c->final_details = slice_from(c->final_msg);
  grpc_op ops[3];
  size_t n = 0;
  memset(ops, 0, sizeof(ops));
  if (!c->initial_md_sent) add_initial_md_locked(c, &ops[n++]);
  if (msg) {
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = msg;
    n++;
  }
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.status = (grpc_status_code)c->final_code;
  ops[n].data.send_status_from_server.status_details = &c->final_details;
  ops[n].data.send_status_from_server.trailing_metadata_count = (size_t)c->ntrailers;
  ops[n].data.send_status_from_server.trailing_metadata = c->trailers;
  n++;
  c->payload_out = msg;
  if (!start_batch(c, ops, n, &c->t_status)) {
    /* never leave the client waiting for its deadline */
    grpc_call_cancel_with_status(c->call, GRPC_STATUS_INTERNAL, "internal error", NULL);
  }
}

static void finish(rpc_call *c, grpc_byte_buffer *msg, int code, const char *text) {
  pthread_mutex_lock(&c->mu);
  start_final_locked(c, msg, code, text);
  pthread_mutex_unlock(&c->mu);
}

static grpc_byte_buffer *pack(const ProtobufCMessage *msg) {
  size_t len = protobuf_c_message_get_packed_size(msg);
  grpc_slice s = grpc_slice_malloc(len);
  protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  return bb;
}

static ProtobufCMessage *unpack(rpc_call *c, const ProtobufCMessageDescriptor *d,
                                grpc_byte_buffer *bb) {
  grpc_byte_buffer_reader r;
  if (!grpc_byte_buffer_reader_init(&r, bb)) return NULL;
  grpc_slice s = grpc_byte_buffer_reader_readall(&r);
  grpc_byte_buffer_reader_destroy(&r);
  ProtobufCMessage *m = protobuf_c_message_unpack(d, &c->arena.allocator, GRPC_SLICE_LENGTH(s),
                                                  GRPC_SLICE_START_PTR(s));
  grpc_slice_unref(s);
  return m;
}

static void fail_now(rpc_call *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_now(rpc_call *c, int code, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  finish(c, NULL, code, buf);
}

/* ---- streaming sends ---- */

static void start_send_locked(rpc_call *c, grpc_byte_buffer *bb) {
  grpc_op ops[2];
  size_t n = 0;
  memset(ops, 0, sizeof(ops));
  if (!c->initial_md_sent) add_initial_md_locked(c, &ops[n++]);
  ops[n].op = GRPC_OP_SEND_MESSAGE;
  ops[n].data.send_message.send_message = bb;
  n++;
  c->send_inflight = true;
  c->inflight_buf = bb;
  if (!start_batch(c, ops, n, &c->t_send)) {
    c->send_inflight = false;
    c->inflight_buf = NULL;
    grpc_byte_buffer_destroy(bb);
  }
}

bool rpc_stream_send(rpc_call *c, const ProtobufCMessage *msg) {
  grpc_byte_buffer *bb = pack(msg);
  pthread_mutex_lock(&c->mu);
  /* The handler's own worker thread waits for room (backpressure); other
   * publishers (event fan-out, health) never block: their consumer is cut
   * off when it falls a whole queue behind. Inline handlers never block:
   * they run on the thread that completes the sends. */
  bool may_wait = c->handler_running && pthread_equal(c->handler_thread, pthread_self());
  while (may_wait && c->q_len >= c->srv->opts.stream_queue_limit && !c->status_started &&
         !c->finish_requested && !atomic_load(&c->closed) && !atomic_load(&c->cancelled))
    pthread_cond_wait(&c->room, &c->mu);
  if (c->status_started || c->finish_requested || atomic_load(&c->closed)) {
    pthread_mutex_unlock(&c->mu);
    grpc_byte_buffer_destroy(bb);
    return false;
  }
  if (!c->send_inflight) {
    start_send_locked(c, bb);
    pthread_mutex_unlock(&c->mu);
    return true;
  }
  if (c->q_len >= c->srv->opts.stream_queue_limit) {
    free_queue(c);
    c->finish_requested = true;
    set_final_locked(c, GRPC_STATUS_RESOURCE_EXHAUSTED,
                     "the stream's consumer fell too far behind; reconnect and resume");
    pthread_mutex_unlock(&c->mu);
    grpc_byte_buffer_destroy(bb);
    return false;
  }
  enqueue_locked(c, bb);
  pthread_mutex_unlock(&c->mu);
  return true;
}

static void stream_finish_text(rpc_call *c, int code, const char *text) {
  pthread_mutex_lock(&c->mu);
  if (c->status_started || c->finish_requested) {
    pthread_mutex_unlock(&c->mu);
    return;
  }
  start_final_locked(c, NULL, code, text);
  pthread_mutex_unlock(&c->mu);
}

void rpc_stream_finish(rpc_call *c, int code, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  stream_finish_text(c, code, buf);
}

void rpc_call_finish_open_stream(rpc_call *c, int code, const char *msg) {
  stream_finish_text(c, code, msg);
}

static void on_send_done(rpc_call *c, bool ok) {
  pthread_mutex_lock(&c->mu);
  grpc_byte_buffer_destroy(c->inflight_buf);
  c->inflight_buf = NULL;
  c->send_inflight = false;
  pthread_cond_broadcast(&c->room);
  if (!ok) {
    free_queue(c); /* the call is over; the close op reports why */
    if (c->finish_requested) start_final_locked(c, NULL, c->final_code, c->final_msg);
  } else if (c->q_head) {
    rpc_out_msg *m = c->q_head;
    c->q_head = m->next;
    if (!c->q_head) c->q_tail = NULL;
    c->q_len--;
    start_send_locked(c, m->buf);
    free(m);
    if (c->recv_paused && c->q_len < c->srv->opts.stream_queue_limit) {
      c->recv_paused = false;
      start_recv(c); /* no handler runs while reading is paused */
    }
  } else if (c->finish_requested && !c->status_started) {
    start_final_locked(c, NULL, c->final_code, c->final_msg);
  }
  pthread_mutex_unlock(&c->mu);
}

/* ---- request context ---- */

static uint64_t next_random(void) {
  static _Thread_local uint64_t state;
  if (state == 0) {
    if (getrandom(&state, sizeof(state), 0) != sizeof(state) || state == 0)
      state = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&state;
  }
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

static bool valid_request_id(const grpc_slice *s) {
  size_t n = GRPC_SLICE_LENGTH(*s);
  if (n == 0 || n > 36) return false;
  const unsigned char *p = GRPC_SLICE_START_PTR(*s);
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = p[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '-' || ch == '_' || ch == '.'))
      return false;
  }
  return true;
}

static void init_context(rpc_call *c) {
  clock_gettime(CLOCK_MONOTONIC, &c->started);
  c->peer = grpc_call_get_peer(c->call);
  for (size_t i = 0; i < c->md_in.count; i++) {
    const grpc_metadata *m = &c->md_in.metadata[i];
    if (grpc_slice_str_cmp(m->key, "x-request-id") == 0 && valid_request_id(&m->value)) {
      size_t n = GRPC_SLICE_LENGTH(m->value);
      memcpy(c->request_id, GRPC_SLICE_START_PTR(m->value), n);
      c->request_id[n] = '\0';
      return;
    }
  }
  snprintf(c->request_id, sizeof(c->request_id), "%016llx", (unsigned long long)next_random());
}

const char *rpc_call_method(const rpc_call *c) {
  if (c->method) return c->method->path;
  return c->unknown_path ? c->unknown_path : "";
}
const char *rpc_call_peer(const rpc_call *c) { return c->peer ? c->peer : ""; }
const char *rpc_call_request_id(const rpc_call *c) { return c->request_id; }
const char *rpc_call_principal(const rpc_call *c) { return c->principal; }
void rpc_call_set_auth(rpc_call *c, void *auth) { c->auth = auth; }
void *rpc_call_auth(const rpc_call *c) { return c->auth; }
const ProtobufCMessage *rpc_call_request(const rpc_call *c) { return c->request; }

const char *rpc_call_peer_cert_cn(rpc_call *c) {
  if (!c->call) return NULL;
  grpc_auth_context *ctx = grpc_call_auth_context(c->call);
  if (!ctx) return NULL;
  const char *out = NULL;
  /* Only a certificate the handshake verified counts: the transport
   * security type must be TLS and the peer identity must be present. */
  if (grpc_auth_context_peer_is_authenticated(ctx)) {
    grpc_auth_property_iterator it =
        grpc_auth_context_find_properties_by_name(ctx, GRPC_X509_CN_PROPERTY_NAME);
    const grpc_auth_property *p = grpc_auth_property_iterator_next(&it);
    if (p && p->value_length > 0 && p->value_length < 256) {
      char *cn = rpc_call_alloc(c, p->value_length + 1);
      if (cn) {
        memcpy(cn, p->value, p->value_length);
        cn[p->value_length] = '\0';
        out = cn;
      }
    }
  }
  grpc_auth_context_release(ctx);
  return out;
}
void rpc_call_set_principal(rpc_call *c, const char *p) {
  free(c->principal);
  c->principal = p ? strdup(p) : NULL;
}
const rpc_method_row *rpc_call_row(const rpc_call *c) { return c->method ? &c->method->row : NULL; }
void *rpc_call_service_ctx(const rpc_call *c) { return c->method ? c->method->service->ctx : NULL; }

const char *rpc_call_metadata(rpc_call *c, const char *key) {
  for (size_t i = 0; i < c->md_in.count; i++) {
    const grpc_metadata *m = &c->md_in.metadata[i];
    if (grpc_slice_str_cmp(m->key, key) == 0) {
      size_t n = GRPC_SLICE_LENGTH(m->value);
      char *v = rpc_call_alloc(c, n + 1);
      if (!v) return NULL;
      memcpy(v, GRPC_SLICE_START_PTR(m->value), n);
      v[n] = '\0';
      return v;
    }
  }
  return NULL;
}

int64_t rpc_call_deadline_remaining_ms(const rpc_call *c) {
  gpr_timespec dl = gpr_convert_clock_type(c->deadline, GPR_CLOCK_MONOTONIC);
  if (gpr_time_cmp(dl, gpr_inf_future(GPR_CLOCK_MONOTONIC)) == 0) return INT64_MAX;
  gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC);
  gpr_timespec left = gpr_time_sub(dl, now);
  return (int64_t)left.tv_sec * 1000 + left.tv_nsec / 1000000;
}

bool rpc_call_cancelled(const rpc_call *c) {
  return atomic_load(&c->cancelled) || rpc_call_deadline_remaining_ms(c) <= 0;
}

int rpc_call_add_trailer(rpc_call *c, const char *key, const char *value) {
  pthread_mutex_lock(&c->mu);
  if (c->status_started || c->ntrailers >= RPC_MAX_TRAILERS) {
    pthread_mutex_unlock(&c->mu);
    return -1;
  }
  c->trailers[c->ntrailers].key = grpc_slice_from_copied_string(key);
  c->trailers[c->ntrailers].value = grpc_slice_from_copied_string(value);
  c->ntrailers++;
  pthread_mutex_unlock(&c->mu);
  return 0;
}

void rpc_call_set_data(rpc_call *c, void *data) { c->data = data; }
void *rpc_call_data(const rpc_call *c) { return c->data; }

void *rpc_call_alloc(rpc_call *c, size_t size) { return rpc_arena_alloc(&c->arena, size); }

char *rpc_call_strdup(rpc_call *c, const char *s) {
  size_t n = strlen(s);
  char *d = rpc_call_alloc(c, n + 1);
  if (d) memcpy(d, s, n + 1);
  return d;
}

ProtobufCAllocator *rpc_call_allocator(rpc_call *c) { return &c->arena.allocator; }

int rpc_failv(rpc_call *c, int code, const char *fmt, va_list ap) {
  char buf[1024];
  vsnprintf(buf, sizeof(buf), fmt, ap);
  c->message = rpc_call_strdup(c, buf);
  return code;
}

int rpc_fail(rpc_call *c, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  rpc_failv(c, code, fmt, ap);
  va_end(ap);
  return code;
}

int rpc_call_on_done(rpc_call *c, void (*fn)(rpc_call *, void *), void *arg) {
  pthread_mutex_lock(&c->mu);
  if (c->ndone >= RPC_MAX_DONE_CALLBACKS) {
    pthread_mutex_unlock(&c->mu);
    return -1;
  }
  if (c->done_ran) {
    pthread_mutex_unlock(&c->mu);
    fn(c, arg); /* already over: run now */
    return 0;
  }
  c->done[c->ndone].fn = fn;
  c->done[c->ndone].arg = arg;
  c->ndone++;
  pthread_mutex_unlock(&c->mu);
  return 0;
}

/* ---- handlers ---- */

static const char *fail_text(rpc_call *c, int code) {
  if (c->message) return c->message;
  return code == GRPC_STATUS_OK ? "" : rpc_status_name(code);
}

static ProtobufCMessage *new_response(rpc_call *c) {
  const ProtobufCMessageDescriptor *d = c->method->desc->output;
  ProtobufCMessage *m = rpc_call_alloc(c, d->sizeof_message);
  if (m) d->message_init(m);
  return m;
}

/* Calls the handler. On a worker, the thread is recorded so that
 * rpc_stream_send may make it wait for room in the stream's queue. */
static int invoke(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *resp) {
  bool worker = !(c->method->row.flags & RPC_INLINE);
  if (worker) {
    pthread_mutex_lock(&c->mu);
    c->handler_thread = pthread_self();
    c->handler_running = true;
    pthread_mutex_unlock(&c->mu);
  }
  int code = c->method->row.handler(c, req, resp, c->method->service->ctx);
  if (worker) {
    pthread_mutex_lock(&c->mu);
    c->handler_running = false;
    pthread_mutex_unlock(&c->mu);
  }
  return code;
}

/* Runs the interceptors (first message only) and the handler, then sends
 * what the handler produced. Runs on a worker or, for RPC_INLINE methods,
 * on the completion-queue thread. */
static void run_handler(rpc_call *c) {
  const rpc_method_row *row = &c->method->row;
  if (atomic_load(&c->cancelled)) {
    finish(c, NULL, GRPC_STATUS_CANCELLED, "call cancelled before it was handled");
    return;
  }
  if (rpc_call_deadline_remaining_ms(c) <= 0) {
    finish(c, NULL, GRPC_STATUS_DEADLINE_EXCEEDED, "deadline exceeded before the call was handled");
    return;
  }
  if (!c->intercepted) {
    c->intercepted = true;
    for (int i = 0; i < c->srv->ninterceptors; i++) {
      const rpc_interceptor *ic = &c->srv->interceptors[i];
      if (!ic->before) continue;
      int code = ic->before(c, ic->arg);
      if (code != GRPC_STATUS_OK) {
        finish(c, NULL, code, fail_text(c, code));
        return;
      }
    }
  }
  if (!row->handler) {
    int code = rpc_fail(c, GRPC_STATUS_UNIMPLEMENTED, "%s.%s is not implemented yet",
                        c->method->service->desc->name, row->name);
    finish(c, NULL, code, fail_text(c, code));
    return;
  }
  int code;
  switch (row->kind) {
  case RPC_UNARY: {
    ProtobufCMessage *resp = new_response(c);
    if (!resp) {
      finish(c, NULL, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
      return;
    }
    code = invoke(c, c->request, resp);
    if (code == GRPC_STATUS_OK)
      finish(c, pack(resp), GRPC_STATUS_OK, "");
    else
      finish(c, NULL, code < 0 ? GRPC_STATUS_INTERNAL : code, fail_text(c, code));
    return;
  }
  case RPC_SERVER_STREAMING:
    code = invoke(c, c->request, NULL);
    if (code == RPC_PENDING) {
      /* Registered under c->mu so on_close cannot run between the check and
       * the registration; refused once shutdown has begun, since the
       * shutdown sweep of open streams may already be over. */
      pthread_mutex_lock(&c->mu);
      bool open = !c->finish_requested && !c->status_started && !atomic_load(&c->closed);
      bool registered = open && rpc_server_stream_opened(c->srv, c);
      c->stream_open = registered;
      pthread_mutex_unlock(&c->mu);
      if (open && !registered)
        stream_finish_text(c, GRPC_STATUS_UNAVAILABLE, "server is shutting down");
    } else {
      stream_finish_text(c, code, fail_text(c, code));
    }
    return;
  case RPC_BIDI_STREAMING: {
    ProtobufCMessage *resp = new_response(c);
    code = resp ? invoke(c, c->request, resp) : GRPC_STATUS_RESOURCE_EXHAUSTED;
    if (code == GRPC_STATUS_OK) {
      rpc_stream_send(c, resp);
      /* Flow control: read the next request only while the replies fit in
       * the queue; a client that sends without reading is held back by
       * HTTP/2 instead of being cut off. on_send_done resumes reading. */
      pthread_mutex_lock(&c->mu);
      bool room = c->q_len < c->srv->opts.stream_queue_limit;
      c->recv_paused = !room;
      pthread_mutex_unlock(&c->mu);
      if (room) start_recv(c);
    } else {
      stream_finish_text(c, code, fail_text(c, code));
    }
    return;
  }
  case RPC_CLIENT_STREAMING:
    if (c->request) {
      code = invoke(c, c->request, NULL);
      if (code == GRPC_STATUS_OK)
        start_recv(c);
      else
        finish(c, NULL, code, fail_text(c, code));
    } else {
      ProtobufCMessage *resp = new_response(c);
      code = resp ? invoke(c, NULL, resp) : GRPC_STATUS_RESOURCE_EXHAUSTED;
      if (code == GRPC_STATUS_OK)
        finish(c, pack(resp), GRPC_STATUS_OK, "");
      else
        finish(c, NULL, code, fail_text(c, code));
    }
    return;
  }
}

void rpc_call_run_job(rpc_call *c) {
  run_handler(c);
  rpc_call_unref(c); /* the reference taken by dispatch() */
}

static void dispatch(rpc_call *c) {
  if (c->method->row.flags & RPC_INLINE) {
    run_handler(c);
    return;
  }
  rpc_call_ref(c);
  if (!rpc_workers_submit(c->srv->workers, c)) {
    rpc_call_unref(c);
    finish(c, NULL, GRPC_STATUS_UNAVAILABLE,
           "server overloaded: no worker free; retry with backoff");
  }
}

static void start_recv(rpc_call *c) {
  if (c->payload) {
    grpc_byte_buffer_destroy(c->payload);
    c->payload = NULL;
  }
  if (c->method->row.kind == RPC_BIDI_STREAMING) {
    /* each request was answered and its reply packed: start the next one
     * with an empty arena, so a long stream does not grow the server */
    rpc_arena_release(&c->arena);
    rpc_arena_init(&c->arena);
    c->request = NULL;
    c->message = NULL;
  }
  grpc_op op;
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &c->payload;
  start_batch(c, &op, 1, &c->t_recv);
}

static void on_recv(rpc_call *c, bool ok) {
  if (!ok) return; /* cancelled; the close op reports it */
  if (!c->payload) {
    c->half_closed = true;
    c->request = NULL;
    if (c->method->row.kind == RPC_CLIENT_STREAMING)
      dispatch(c);
    else
      stream_finish_text(c, GRPC_STATUS_OK, "");
    return;
  }
  const ProtobufCMessageDescriptor *in = c->method->desc->input;
  c->request = unpack(c, in, c->payload);
  if (!c->request) {
    fail_now(c, GRPC_STATUS_INVALID_ARGUMENT, "request is not a valid %s message", in->name);
    return;
  }
  dispatch(c);
}

static void on_new_call(rpc_call *c, bool ok) {
  rpc_server *srv = c->srv;
  if (!ok) {
    /* the server is shutting down: the posted request was never matched */
    c->call = NULL;
    return;
  }
  pthread_rwlock_rdlock(&srv->arm_lock);
  if (!srv->shutting_down) rpc_call_post(srv, c->method);
  pthread_rwlock_unlock(&srv->arm_lock);

  if (!c->method) {
    c->deadline = c->details.deadline;
    size_t n = GRPC_SLICE_LENGTH(c->details.method);
    c->unknown_path = rpc_call_alloc(c, n + 1);
    if (c->unknown_path) {
      memcpy(c->unknown_path, GRPC_SLICE_START_PTR(c->details.method), n);
      c->unknown_path[n] = '\0';
    }
  }
  init_context(c);

  grpc_op op;
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  op.data.recv_close_on_server.cancelled = &c->close_cancelled;
  start_batch(c, &op, 1, &c->t_close);

  if (!c->method) {
    fail_now(c, GRPC_STATUS_UNIMPLEMENTED, "unknown method %s",
             c->unknown_path ? c->unknown_path : "");
    return;
  }
  const rpc_method_row *row = &c->method->row;
  /* Handler-less unary and server-streaming rows still go through the
   * interceptors (authentication first), then answer UNIMPLEMENTED. */
  bool decoded_kind = row->kind == RPC_UNARY || row->kind == RPC_SERVER_STREAMING;
  if (!row->handler && (!decoded_kind || srv->ninterceptors == 0)) {
    fail_now(c, GRPC_STATUS_UNIMPLEMENTED, "%s.%s is not implemented yet",
             c->method->service->desc->name, row->name);
    return;
  }
  if (atomic_load(&srv->draining)) {
    fail_now(c, GRPC_STATUS_UNAVAILABLE, "server is shutting down");
    return;
  }
  if (row->kind == RPC_UNARY || row->kind == RPC_SERVER_STREAMING) {
    const ProtobufCMessageDescriptor *in = c->method->desc->input;
    if (!c->payload) {
      fail_now(c, GRPC_STATUS_INVALID_ARGUMENT, "no request message was sent (expected %s)",
               in->name);
      return;
    }
    c->request = unpack(c, in, c->payload);
    grpc_byte_buffer_destroy(c->payload);
    c->payload = NULL;
    if (!c->request) {
      fail_now(c, GRPC_STATUS_INVALID_ARGUMENT, "request is not a valid %s message", in->name);
      return;
    }
    dispatch(c);
  } else {
    start_recv(c);
  }
}

static void on_close(rpc_call *c) {
  if (c->close_cancelled) atomic_store(&c->cancelled, true);
  atomic_store(&c->closed, true);
  pthread_mutex_lock(&c->mu);
  pthread_cond_broadcast(&c->room); /* a handler waiting for room gives up */
  c->done_ran = true;
  int n = c->ndone;
  if (c->stream_open) rpc_server_stream_closed(c->srv, c);
  c->stream_open = false;
  pthread_mutex_unlock(&c->mu);
  for (int i = 0; i < n; i++)
    c->done[i].fn(c, c->done[i].arg);
}

void rpc_call_handle_tag(rpc_tag *tag, bool ok) {
  rpc_call *c = tag->call;
  switch (tag->kind) {
  case TAG_NEW_CALL: on_new_call(c, ok); break;
  case TAG_CLOSE: on_close(c); break;
  case TAG_SEND: on_send_done(c, ok); break;
  case TAG_RECV: on_recv(c, ok); break;
  case TAG_STATUS:
    if (c->payload_out) {
      grpc_byte_buffer_destroy(c->payload_out);
      c->payload_out = NULL;
    }
    break;
  case TAG_SERVER_SHUTDOWN: return; /* handled by server.c */
  }
  rpc_call_unref(c);
}
