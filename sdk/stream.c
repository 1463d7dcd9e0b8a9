/*
 * stream.c - server-streaming calls (nc_stream).
 *
 * A stream owns its call and a pluck completion queue. Two batches start
 * with it: the request (send metadata, message and close; receive the
 * server's metadata) and RECV_STATUS_ON_CLIENT, which stays pending until
 * the call ends. nc_stream_next() keeps at most one RECV_MESSAGE in flight;
 * a local timeout leaves it pending for the next call to pick up. Every
 * batch is plucked exactly once, so nc_stream_free() cancels and drains
 * whatever is still pending before releasing anything. A due session
 * refresh happens before the call starts; a stream rejected
 * UNAUTHENTICATED is not retried (nc_stream_next reports the status).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static bool stream_ok(const nc_stream *s) { return s && s->magic == NC_STREAM_MAGIC; }

/* Tags: the addresses of the pending flags are unique per stream. */
#define TAG_START(s) ((void *)&(s)->start_pending)
#define TAG_RECV(s) ((void *)&(s)->recv_pending)
#define TAG_STATUS(s) ((void *)&(s)->status_pending)

static void stream_destroy(nc_stream *s) {
  bool ok;
  gpr_timespec forever = gpr_inf_future(GPR_CLOCK_MONOTONIC);
  if (s->call && (s->start_pending || s->recv_pending || s->status_pending))
    grpc_call_cancel(s->call, NULL);
  if (s->start_pending) nc_cq_wait(s->cq, TAG_START(s), forever, &ok);
  if (s->recv_pending) nc_cq_wait(s->cq, TAG_RECV(s), forever, &ok);
  if (s->status_pending) nc_cq_wait(s->cq, TAG_STATUS(s), forever, &ok);
  grpc_metadata_array_destroy(&s->initial_md);
  grpc_metadata_array_destroy(&s->trailing_md);
  if (s->call) grpc_call_unref(s->call);
  if (s->cq) nc_cq_destroy(s->cq);
  grpc_slice_unref(s->status_details);
  if (s->request) grpc_byte_buffer_destroy(s->request);
  if (s->response) grpc_byte_buffer_destroy(s->response);
  nc_outgoing_md_destroy(&s->out_md);
  s->magic = 0;
  free(s);
}

nc_status nc_call_server_stream(nc_client *client, const char *method,
                                const ProtobufCMessage *request,
                                const ProtobufCMessageDescriptor *response_type, nc_stream **out,
                                const nc_call_options *call_opts, nc_error *err) {
  nc_status st;
  nc_stream *s = NULL;
  nc_credential cred = {NULL, 0};
  grpc_call_error e;
  grpc_op ops[4];

  nc_error_clear(err);
  if (out) *out = NULL;
  st = nc_call_check_args(client, method, request, response_type, out, call_opts, err);
  if (st != NC_OK) goto cleanup;
  s = calloc(1, sizeof(*s));
  if (!s) {
    st = nc_fail(err, NC_ERR_NO_MEMORY, "out of memory");
    goto cleanup;
  }
  s->magic = NC_STREAM_MAGIC;
  s->response_type = response_type;
  s->state = NC_STREAM_READING;
  s->status = GRPC_STATUS_UNKNOWN;
  s->status_details = grpc_empty_slice();
  grpc_metadata_array_init(&s->initial_md);
  grpc_metadata_array_init(&s->trailing_md);
  if ((st = nc_session_credential(client, method, &cred, err)) != NC_OK) goto cleanup;
  s->deadline = nc_client_deadline(client, call_opts);
  st = nc_outgoing_md_init(&s->out_md, cred.authorization, call_opts, err);
  if (st != NC_OK) goto cleanup;
  if ((st = nc_message_encode(request, &s->request, err)) != NC_OK) goto cleanup;
  s->cq = grpc_completion_queue_create_for_pluck(NULL);
  st = nc_call_create(client, method, s->cq, s->deadline, &s->call, err);
  if (st != NC_OK) goto cleanup;

  memset(ops, 0, sizeof(ops));
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = s->out_md.count;
  ops[0].data.send_initial_metadata.metadata = s->out_md.md;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = s->request;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->initial_md;
  if ((e = grpc_call_start_batch(s->call, ops, 4, TAG_START(s), NULL)) != GRPC_CALL_OK) {
    st = e == GRPC_CALL_ERROR_INVALID_METADATA
             ? nc_fail(err, NC_ERR_INVALID_ARGUMENT, "invalid call metadata")
             : nc_fail(err, NC_ERR_CLOSED, "the call could not be started (grpc_call_error %d)",
                       (int)e);
    goto cleanup;
  }
  s->start_pending = true;

  memset(ops, 0, sizeof(ops));
  ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[0].data.recv_status_on_client.trailing_metadata = &s->trailing_md;
  ops[0].data.recv_status_on_client.status = &s->status;
  ops[0].data.recv_status_on_client.status_details = &s->status_details;
  if ((e = grpc_call_start_batch(s->call, ops, 1, TAG_STATUS(s), NULL)) != GRPC_CALL_OK) {
    st = nc_fail(err, NC_ERR_CLOSED, "the call could not be started (grpc_call_error %d)", (int)e);
    goto cleanup;
  }
  s->status_pending = true;
  *out = s;
  s = NULL;
cleanup:
  nc_credential_destroy(&cred);
  if (s) stream_destroy(s);
  return st;
}

static nc_status timed_out(int64_t timeout_ms, nc_error *err) {
  if (err) {
    if (timeout_ms >= 0)
      snprintf(err->message, sizeof(err->message),
               "no message within %lld ms; the stream continues", (long long)timeout_ms);
    else
      snprintf(err->message, sizeof(err->message),
               "no message before the call's deadline; the stream continues");
    err->code = NC_GRPC_DEADLINE_EXCEEDED;
  }
  return NC_ERR_RPC;
}

/* Starts the RECV_MESSAGE batch unless one is pending. */
static nc_status start_recv(nc_stream *s, nc_error *err) {
  if (s->recv_pending) return NC_OK;
  grpc_op op;
  memset(&op, 0, sizeof(op));
  op.op = GRPC_OP_RECV_MESSAGE;
  op.data.recv_message.recv_message = &s->response;
  grpc_call_error e = grpc_call_start_batch(s->call, &op, 1, TAG_RECV(s), NULL);
  if (e != GRPC_CALL_OK)
    return nc_fail(err, NC_ERR_CLOSED, "cannot read from the stream (grpc_call_error %d)", (int)e);
  s->recv_pending = true;
  return NC_OK;
}

nc_status nc_stream_next(nc_stream *stream, ProtobufCMessage **message, int64_t timeout_ms,
                         nc_error *err) {
  nc_stream *s = stream;
  nc_status st = NC_OK;
  bool ok = false;
  gpr_timespec until;

  nc_error_clear(err);
  if (message) *message = NULL;
  if (!stream_ok(s) || !message) {
    st = nc_fail(err, NC_ERR_INVALID_ARGUMENT, "invalid stream handle or output");
    goto cleanup;
  }
  if (s->state == NC_STREAM_ENDED) {
    st = nc_fail(err, NC_ERR_CLOSED, "the stream has already ended");
    goto cleanup;
  }
  if (timeout_ms < 0)
    until = nc_deadline_with_slack(s->deadline);
  else
    until =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));

  if (s->start_pending) {
    if (!nc_cq_wait(s->cq, TAG_START(s), until, &ok)) {
      st = timed_out(timeout_ms, err);
      goto cleanup;
    }
    s->start_pending = false;
    s->start_ok = ok;
    nc_capture_request_id(&s->initial_md, NULL, s->request_id, sizeof(s->request_id));
  }
  if ((st = start_recv(s, err)) != NC_OK) {
    grpc_call_cancel(s->call, NULL);
    goto cleanup;
  }
  if (!nc_cq_wait(s->cq, TAG_RECV(s), until, &ok)) {
    st = timed_out(timeout_ms, err);
    goto cleanup;
  }
  s->recv_pending = false;
  if (s->response) {
    st = nc_message_decode(s->response, s->response_type, message, err);
    grpc_byte_buffer_destroy(s->response);
    s->response = NULL;
    goto cleanup;
  }
  /* no message: the call is over and its status is on the way */
  if (s->status_pending) {
    nc_cq_wait(s->cq, TAG_STATUS(s), gpr_inf_future(GPR_CLOCK_MONOTONIC), &ok);
    s->status_pending = false;
  }
  s->state = NC_STREAM_ENDED;
  if (!s->request_id[0])
    nc_capture_request_id(NULL, &s->trailing_md, s->request_id, sizeof(s->request_id));
  st = nc_fail_rpc(err, s->status, &s->status_details, s->request_id);
  if (st == NC_OK) st = NC_ERR_END_OF_STREAM;
cleanup:
  if (err && stream_ok(s) && s->request_id[0])
    memcpy(err->request_id, s->request_id, sizeof(err->request_id));
  return st;
}

void nc_stream_cancel(nc_stream *stream) {
  if (stream_ok(stream) && stream->call) grpc_call_cancel(stream->call, NULL);
}

void nc_stream_free(nc_stream *stream) {
  if (stream_ok(stream)) stream_destroy(stream);
}
