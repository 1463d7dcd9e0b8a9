/*
 * server.c - server lifecycle: service registration, TLS credentials,
 * completion-queue threads, posting requests, graceful shutdown.
 *
 * The completion-queue threads share one queue on which requests for every
 * method (and for unknown methods, so they get UNIMPLEMENTED at once
 * instead of hanging) are kept posted. Shutdown follows the order gRPC core
 * needs: stop re-arming, shutdown_and_notify, cancel what did not drain in
 * time, wait for every call to be released, then shut the queue down.
 */
#include <errno.h>
#include <grpc/support/time.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rpc/internal.h"
#include "util/log.h"
#include "util/timeutil.h"

static void seterr(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *errbuf, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, errlen, fmt, ap);
  va_end(ap);
}

/* ---- TLS material, reloaded when the files change ---- */

typedef struct tls_files {
  const char *cert, *key, *ca;
  struct timespec mtimes[3];
  bool loaded;
} tls_files;

static char *read_file(const char *path, char *errbuf, size_t errlen) {
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    seterr(errbuf, errlen, "%s: %s", path, strerror(errno));
    return NULL;
  }
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 8192;
      if (cap > (16u << 20)) {
        seterr(errbuf, errlen, "%s: larger than 16 MiB", path);
        free(buf);
        fclose(fp);
        return NULL;
      }
      char *nb = realloc(buf, cap);
      if (!nb) {
        free(buf);
        fclose(fp);
        seterr(errbuf, errlen, "out of memory");
        return NULL;
      }
      buf = nb;
    }
    size_t n = fread(buf + len, 1, cap - len - 1, fp);
    len += n;
    if (n == 0) break;
  }
  bool err = ferror(fp);
  fclose(fp);
  if (err) {
    seterr(errbuf, errlen, "%s: read error", path);
    free(buf);
    return NULL;
  }
  buf[len] = '\0';
  if (!strstr(buf, "-----BEGIN ")) {
    seterr(errbuf, errlen, "%s: not a PEM file", path);
    free(buf);
    return NULL;
  }
  return buf;
}

static bool tls_changed(tls_files *t) {
  const char *paths[3] = {t->cert, t->key, t->ca};
  bool changed = !t->loaded;
  for (int i = 0; i < 3; i++) {
    struct stat st;
    if (!paths[i]) continue;
    if (stat(paths[i], &st) != 0) continue; /* keep serving the old material */
    if (st.st_mtim.tv_sec != t->mtimes[i].tv_sec || st.st_mtim.tv_nsec != t->mtimes[i].tv_nsec) {
      t->mtimes[i] = st.st_mtim;
      changed = true;
    }
  }
  return changed;
}

static grpc_ssl_server_certificate_config *tls_load(const tls_files *t, char *errbuf,
                                                    size_t errlen) {
  grpc_ssl_server_certificate_config *cfg = NULL;
  char *cert = read_file(t->cert, errbuf, errlen);
  char *key = cert ? read_file(t->key, errbuf, errlen) : NULL;
  char *ca = (key && t->ca) ? read_file(t->ca, errbuf, errlen) : NULL;
  if (cert && key && (!t->ca || ca)) {
    grpc_ssl_pem_key_cert_pair pair = {key, cert};
    /* gRPC 1.51's reloading credentials assert that root certificates are
     * present even when client certificates are never requested; the
     * server's own chain stands in and is never used for verification. */
    cfg = grpc_ssl_server_certificate_config_create(ca ? ca : cert, &pair, 1);
  }
  if (key) memset(key, 0, strlen(key));
  free(cert);
  free(key);
  free(ca);
  return cfg;
}

static grpc_ssl_certificate_config_reload_status tls_fetch(
    void *user, grpc_ssl_server_certificate_config **out) {
  tls_files *t = user;
  if (!tls_changed(t)) return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
  char err[512] = "";
  grpc_ssl_server_certificate_config *cfg = tls_load(t, err, sizeof(err));
  if (!cfg) {
    nc_log(NC_LOG_ERROR, "TLS reload failed; keeping the previous certificate",
           LKV_S("error", err));
    return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
  }
  if (t->loaded) nc_log(NC_LOG_INFO, "TLS certificate reloaded", LKV_S("cert", t->cert));
  t->loaded = true;
  *out = cfg;
  return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
}

static tls_files g_tls; /* one server per process */

static grpc_server_credentials *make_credentials(const rpc_server_options *o, char *errbuf,
                                                 size_t errlen) {
  if (o->insecure) return grpc_insecure_server_credentials_create();
  if (!o->tls_cert_file || !o->tls_key_file) {
    seterr(errbuf, errlen,
           "TLS needs a certificate and a key (--tls-cert, --tls-key); "
           "plaintext requires the explicit --insecure flag");
    return NULL;
  }
  if (o->client_auth != RPC_CLIENT_AUTH_NONE && !o->tls_client_ca_file) {
    seterr(errbuf, errlen, "client certificate verification needs --tls-client-ca");
    return NULL;
  }
  memset(&g_tls, 0, sizeof(g_tls));
  g_tls.cert = o->tls_cert_file;
  g_tls.key = o->tls_key_file;
  g_tls.ca = o->client_auth != RPC_CLIENT_AUTH_NONE ? o->tls_client_ca_file : NULL;
  /* Load once now so bad files fail the start, not the first handshake. */
  grpc_ssl_server_certificate_config *probe = tls_load(&g_tls, errbuf, errlen);
  if (!probe) return NULL;
  grpc_ssl_server_certificate_config_destroy(probe);
  grpc_ssl_client_certificate_request_type req =
      o->client_auth == RPC_CLIENT_AUTH_REQUIRE
          ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
      : o->client_auth == RPC_CLIENT_AUTH_OPTIONAL ? GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY
                                                   : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
  grpc_ssl_server_credentials_options *opts =
      grpc_ssl_server_credentials_create_options_using_config_fetcher(req, tls_fetch, &g_tls);
  return grpc_ssl_server_credentials_create_with_options(opts);
}

/* ---- registration ---- */

int rpc_server_create(const rpc_server_options *opts, rpc_server **out, char *errbuf,
                      size_t errlen) {
  *out = NULL;
  rpc_server *srv = calloc(1, sizeof(*srv));
  if (!srv) {
    seterr(errbuf, errlen, "out of memory");
    return -1;
  }
  srv->opts = *opts;
  if (srv->opts.cq_threads < 1) srv->opts.cq_threads = 1;
  if (srv->opts.workers < 1) srv->opts.workers = 1;
  if (srv->opts.requests_per_method < 1) srv->opts.requests_per_method = 1;
  if (srv->opts.worker_queue_limit < 1) srv->opts.worker_queue_limit = 1024;
  if (srv->opts.stream_queue_limit < 1) srv->opts.stream_queue_limit = 256;
  pthread_rwlock_init(&srv->arm_lock, NULL);
  pthread_mutex_init(&srv->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&srv->cond, &ca);
  pthread_condattr_destroy(&ca);
  atomic_init(&srv->draining, false);
  srv->shutdown_tag = (rpc_tag){NULL, TAG_SERVER_SHUTDOWN};
  grpc_init();
  if (opts->protoset) {
    srv->reflection = rpc_reflection_create(opts->protoset, opts->protoset_len, errbuf, errlen);
    if (!srv->reflection) {
      rpc_server_destroy(srv);
      return -1;
    }
  }
  srv->health = rpc_health_create();
  if (!srv->health || rpc_health_register(srv, errbuf, errlen) != 0 ||
      (srv->reflection && rpc_reflection_register(srv, errbuf, errlen) != 0)) {
    rpc_server_destroy(srv);
    return -1;
  }
  *out = srv;
  return 0;
}

static const rpc_method_row *find_row(const rpc_method_row *rows, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++) {
    if (strcmp(rows[i].name, name) == 0) return &rows[i];
  }
  return NULL;
}

int rpc_server_add_service(rpc_server *srv, const ProtobufCServiceDescriptor *desc,
                           const rpc_method_row *rows, size_t nrows, void *service_ctx,
                           char *errbuf, size_t errlen) {
  if (srv->started) {
    seterr(errbuf, errlen, "%s: services must be added before the server starts", desc->name);
    return -1;
  }
  for (size_t s = 0; s < srv->nservices; s++) {
    if (strcmp(srv->services[s]->desc->name, desc->name) == 0) {
      seterr(errbuf, errlen, "%s is registered twice", desc->name);
      return -1;
    }
  }
  /* Validate the whole table before anything is registered. */
  for (size_t i = 0; i < nrows; i++) {
    const ProtobufCMethodDescriptor *md = NULL;
    for (unsigned m = 0; m < desc->n_methods && !md; m++) {
      if (strcmp(desc->methods[m].name, rows[i].name) == 0) md = &desc->methods[m];
    }
    if (!md) {
      seterr(errbuf, errlen, "%s has no method %s", desc->name, rows[i].name);
      return -1;
    }
    for (size_t j = 0; j < i; j++) {
      if (strcmp(rows[j].name, rows[i].name) == 0) {
        seterr(errbuf, errlen, "%s.%s has two rows", desc->name, rows[i].name);
        return -1;
      }
    }
    int declared =
        srv->reflection ? rpc_reflection_method_kind(srv->reflection, desc->name, md->name) : -1;
    if (declared >= 0 && declared != (int)rows[i].kind) {
      seterr(errbuf, errlen, "%s.%s: the method table says kind %d but the .proto declares %d",
             desc->name, md->name, (int)rows[i].kind, declared);
      return -1;
    }
  }
  rpc_service *svc = calloc(1, sizeof(*svc));
  rpc_service **grown = realloc(srv->services, (srv->nservices + 1) * sizeof(*grown));
  if (grown) srv->services = grown;
  if (!svc || !grown) {
    free(svc);
    seterr(errbuf, errlen, "out of memory");
    return -1;
  }
  svc->desc = desc;
  svc->ctx = service_ctx;
  svc->nmethods = desc->n_methods;
  svc->methods = calloc(desc->n_methods ? desc->n_methods : 1, sizeof(rpc_method));
  if (!svc->methods) {
    free(svc);
    seterr(errbuf, errlen, "out of memory");
    return -1;
  }
  srv->services[srv->nservices++] = svc;
  for (unsigned m = 0; m < desc->n_methods; m++) {
    rpc_method *rm = &svc->methods[m];
    const ProtobufCMethodDescriptor *md = &desc->methods[m];
    rm->service = svc;
    rm->desc = md;
    const rpc_method_row *row = find_row(rows, nrows, md->name);
    if (row) {
      rm->row = *row;
    } else {
      int declared =
          srv->reflection ? rpc_reflection_method_kind(srv->reflection, desc->name, md->name) : -1;
      rm->row = (rpc_method_row){.name = md->name,
                                 .kind = declared >= 0 ? (rpc_kind)declared : RPC_UNARY};
    }
    size_t plen = strlen(desc->name) + strlen(md->name) + 3;
    rm->path = malloc(plen);
    if (!rm->path) {
      seterr(errbuf, errlen, "out of memory");
      return -1;
    }
    snprintf(rm->path, plen, "/%s/%s", desc->name, md->name);
  }
  rpc_health_set(srv, desc->name, RPC_HEALTH_SERVING);
  return 0;
}

const rpc_method_row *rpc_server_lookup(const rpc_server *srv, const char *path) {
  for (size_t s = 0; s < srv->nservices; s++) {
    for (size_t m = 0; m < srv->services[s]->nmethods; m++) {
      if (strcmp(srv->services[s]->methods[m].path, path) == 0)
        return &srv->services[s]->methods[m].row;
    }
  }
  return NULL;
}

void rpc_server_foreach_method(const rpc_server *srv,
                               void (*fn)(const char *path, const rpc_method_row *row, void *arg),
                               void *arg) {
  for (size_t s = 0; s < srv->nservices; s++) {
    for (size_t m = 0; m < srv->services[s]->nmethods; m++)
      fn(srv->services[s]->methods[m].path, &srv->services[s]->methods[m].row, arg);
  }
}

int rpc_server_add_interceptor(rpc_server *srv, const rpc_interceptor *ic) {
  if (srv->ninterceptors >= RPC_MAX_INTERCEPTORS) return -1;
  srv->interceptors[srv->ninterceptors++] = *ic;
  return 0;
}

/* ---- running ---- */

static void *cq_main(void *arg) {
  rpc_server *srv = arg;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) return NULL;
    if (ev.type != GRPC_OP_COMPLETE) continue;
    rpc_tag *tag = ev.tag;
    if (tag->kind == TAG_SERVER_SHUTDOWN) {
      pthread_mutex_lock(&srv->mu);
      srv->shutdown_notified = true;
      pthread_cond_broadcast(&srv->cond);
      pthread_mutex_unlock(&srv->mu);
      continue;
    }
    rpc_call_handle_tag(tag, ev.success != 0);
  }
}

int rpc_server_start(rpc_server *srv, char *bound, size_t boundlen, char *errbuf, size_t errlen) {
  const rpc_server_options *o = &srv->opts;
  grpc_arg args[2];
  args[0].type = GRPC_ARG_INTEGER;
  args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[0].value.integer = o->max_recv_message_bytes > 0 ? o->max_recv_message_bytes : 4 << 20;
  args[1].type = GRPC_ARG_INTEGER;
  args[1].key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
  args[1].value.integer = o->max_send_message_bytes > 0 ? o->max_send_message_bytes : 16 << 20;
  grpc_channel_args chargs = {2, args};

  grpc_server_credentials *creds = make_credentials(o, errbuf, errlen);
  if (!creds) return -1;
  srv->server = grpc_server_create(&chargs, NULL);
  srv->ncq_threads = o->cq_threads;
  srv->cq_threads = calloc((size_t)srv->ncq_threads, sizeof(pthread_t));
  if (!srv->cq_threads) {
    grpc_server_credentials_release(creds);
    seterr(errbuf, errlen, "out of memory");
    return -1;
  }
  srv->cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(srv->server, srv->cq, NULL);
  for (size_t s = 0; s < srv->nservices; s++) {
    rpc_service *svc = srv->services[s];
    for (size_t m = 0; m < svc->nmethods; m++) {
      rpc_method *rm = &svc->methods[m];
      bool payload = rm->row.kind == RPC_UNARY || rm->row.kind == RPC_SERVER_STREAMING;
      rm->handle = grpc_server_register_method(
          srv->server, rm->path, NULL,
          payload ? GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER : GRPC_SRM_PAYLOAD_NONE, 0);
      if (!rm->handle) {
        grpc_server_credentials_release(creds);
        seterr(errbuf, errlen, "could not register %s", rm->path);
        return -1;
      }
    }
  }
  /* Everything that can fail comes before the port is bound: a gRPC
   * server with a listener can only be destroyed after a shutdown. */
  srv->workers = rpc_workers_create(o->workers, o->worker_queue_limit);
  if (!srv->workers) {
    grpc_server_credentials_release(creds);
    seterr(errbuf, errlen, "could not start the worker pool");
    return -1;
  }
  for (int i = 0; i < srv->ncq_threads; i++) {
    if (pthread_create(&srv->cq_threads[i], NULL, cq_main, srv) != 0) {
      grpc_server_credentials_release(creds);
      seterr(errbuf, errlen, "could not start completion-queue thread %d", i);
      return -1;
    }
    srv->cq_threads_live++;
  }
  int port = grpc_server_add_http2_port(srv->server, o->listen_addr, creds);
  grpc_server_credentials_release(creds);
  if (port == 0) {
    seterr(errbuf, errlen, "could not listen on %s (address in use or invalid)", o->listen_addr);
    return -1;
  }
  grpc_server_start(srv->server);
  srv->started = true;

  pthread_rwlock_rdlock(&srv->arm_lock);
  /* Methods with handlers keep several requests posted per thread so a
   * burst never waits for re-arming; answering UNIMPLEMENTED needs one. */
  for (size_t s = 0; s < srv->nservices; s++) {
    for (size_t m = 0; m < srv->services[s]->nmethods; m++) {
      rpc_method *rm = &srv->services[s]->methods[m];
      int depth = rm->row.handler ? o->requests_per_method * srv->ncq_threads : 1;
      for (int k = 0; k < depth; k++)
        rpc_call_post(srv, rm);
    }
  }
  rpc_call_post(srv, NULL); /* unknown methods */
  pthread_rwlock_unlock(&srv->arm_lock);

  /* The bound address: the configured host with the real port. */
  const char *colon = strrchr(o->listen_addr, ':');
  int hostlen = colon ? (int)(colon - o->listen_addr) : (int)strlen(o->listen_addr);
  snprintf(bound, boundlen, "%.*s:%d", hostlen, o->listen_addr, port);
  return 0;
}

void rpc_server_call_released(rpc_server *srv) {
  pthread_mutex_lock(&srv->mu);
  srv->live_calls--;
  if (srv->live_calls == 0) pthread_cond_broadcast(&srv->cond);
  pthread_mutex_unlock(&srv->mu);
}

bool rpc_server_stream_opened(rpc_server *srv, rpc_call *call) {
  pthread_mutex_lock(&srv->mu);
  if (atomic_load(&srv->draining)) {
    pthread_mutex_unlock(&srv->mu);
    return false;
  }
  call->open_prev = NULL;
  call->open_next = srv->open_streams;
  if (srv->open_streams) srv->open_streams->open_prev = call;
  srv->open_streams = call;
  call->in_open_list = true;
  pthread_mutex_unlock(&srv->mu);
  return true;
}

void rpc_server_stream_closed(rpc_server *srv, rpc_call *call) {
  pthread_mutex_lock(&srv->mu);
  if (call->in_open_list) {
    if (call->open_prev)
      call->open_prev->open_next = call->open_next;
    else
      srv->open_streams = call->open_next;
    if (call->open_next) call->open_next->open_prev = call->open_prev;
    call->in_open_list = false;
  }
  pthread_mutex_unlock(&srv->mu);
}

static bool wait_until(rpc_server *srv, bool (*done)(rpc_server *), int timeout_ms) {
  struct timespec dl = nc_monotonic_after_ms(timeout_ms < 0 ? 0 : timeout_ms);
  pthread_mutex_lock(&srv->mu);
  while (!done(srv)) {
    if (timeout_ms < 0) {
      pthread_cond_wait(&srv->cond, &srv->mu);
    } else if (pthread_cond_timedwait(&srv->cond, &srv->mu, &dl) == ETIMEDOUT) {
      break;
    }
  }
  bool ok = done(srv);
  pthread_mutex_unlock(&srv->mu);
  return ok;
}

static bool notified(rpc_server *srv) { return srv->shutdown_notified; }
static bool no_calls(rpc_server *srv) { return srv->live_calls == 0; }

void rpc_server_shutdown(rpc_server *srv, int grace_ms) {
  if (!srv->started) return;
  rpc_health_shutdown(srv->health);
  if (srv->opts.shutdown_delay_ms > 0) {
    /* keep serving while health checkers notice NOT_SERVING */
    struct timespec ts = {srv->opts.shutdown_delay_ms / 1000,
                          (long)(srv->opts.shutdown_delay_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
  }
  pthread_mutex_lock(&srv->mu);
  atomic_store(&srv->draining, true); /* under mu: see rpc_server_stream_opened */
  pthread_mutex_unlock(&srv->mu);

  /* End open streams (health watches, event feeds) after what is queued. */
  for (;;) {
    pthread_mutex_lock(&srv->mu);
    rpc_call *c = srv->open_streams;
    if (c) {
      srv->open_streams = c->open_next;
      if (c->open_next) c->open_next->open_prev = NULL;
      c->in_open_list = false;
      rpc_call_ref(c);
    }
    pthread_mutex_unlock(&srv->mu);
    if (!c) break;
    rpc_call_finish_open_stream(c, GRPC_STATUS_UNAVAILABLE, "server is shutting down");
    rpc_call_unref(c);
  }

  pthread_rwlock_wrlock(&srv->arm_lock);
  srv->shutting_down = true;
  grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->shutdown_tag);
  pthread_rwlock_unlock(&srv->arm_lock);

  if (!wait_until(srv, notified, grace_ms)) {
    pthread_mutex_lock(&srv->mu);
    long left = srv->live_calls;
    pthread_mutex_unlock(&srv->mu);
    nc_log(NC_LOG_WARN, "drain period over; cancelling remaining calls", LKV_I("calls", left),
           LKV_I("grace_ms", grace_ms));
    grpc_server_cancel_all_calls(srv->server);
    wait_until(srv, notified, -1);
  }
  wait_until(srv, no_calls, -1);
  srv->started = false;
}

void rpc_server_destroy(rpc_server *srv) {
  if (!srv) return;
  if (srv->started) rpc_server_shutdown(srv, 0);
  if (srv->server) grpc_server_destroy(srv->server);
  if (srv->cq) {
    grpc_completion_queue_shutdown(srv->cq);
    if (srv->cq_threads_live > 0) {
      for (int i = 0; i < srv->cq_threads_live; i++)
        pthread_join(srv->cq_threads[i], NULL);
    } else {
      while (grpc_completion_queue_next(srv->cq, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL).type !=
             GRPC_QUEUE_SHUTDOWN) {
      }
    }
    grpc_completion_queue_destroy(srv->cq);
  }
  free(srv->cq_threads);
  rpc_workers_destroy(srv->workers);
  for (size_t s = 0; s < srv->nservices; s++) {
    for (size_t m = 0; m < srv->services[s]->nmethods; m++)
      free(srv->services[s]->methods[m].path);
    free(srv->services[s]->methods);
    free(srv->services[s]);
  }
  free(srv->services);
  rpc_health_destroy(srv->health);
  rpc_reflection_destroy(srv->reflection);
  pthread_rwlock_destroy(&srv->arm_lock);
  pthread_mutex_destroy(&srv->mu);
  pthread_cond_destroy(&srv->cond);
  free(srv);
  /* gRPC may finish tearing down connections (and their TLS state) on
   * another thread after grpc_shutdown returns; the server is about to
   * exit, so wait for it: nothing is left running or allocated. */
  grpc_shutdown_blocking();
}
