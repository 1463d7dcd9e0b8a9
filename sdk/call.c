/*
 * call.c - the generic unary call and what every call shares: argument
 * checks, message coding, outgoing metadata, request-id capture and the
 * per-call pluck completion queue.
 *
 * A unary call is one batch of six ops on its own queue, waited for with the
 * call's deadline plus slack; the core ends the call at its deadline, so the
 * batch always completes and everything is released before returning.
 * With a session (session.c), the credential is refreshed first when due,
 * and a call rejected UNAUTHENTICATED is made once more after a refresh.
 */
#include <grpc/byte_buffer_reader.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

nc_status nc_call_check_args(nc_client *client, const char *method, const ProtobufCMessage *request,
                             const ProtobufCMessageDescriptor *response_type, const void *out,
                             const nc_call_options *call_opts, nc_error *err) {
  if (!client || client->magic != NC_CLIENT_MAGIC)
    return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "invalid client handle");
  if (!method || method[0] != '/' || !strchr(method + 1, '/'))
    return nc_fail(err, NC_ERR_INVALID_ARGUMENT,
                   "method must look like \"/package.Service/Method\", got \"%s\"",
                   method ? method : "(null)");
  if (!request || !request->descriptor ||
      request->descriptor->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
    return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "request is not a protobuf-c message");
  if (!response_type || response_type->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
    return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "response type is not a message descriptor");
  if (!out) return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "no output pointer");
  if (call_opts && call_opts->request_id) {
    const char *id = call_opts->request_id;
    if (!*id || strlen(id) >= sizeof(((nc_error *)0)->request_id) || !nc_metadata_value_ok(id))
      return nc_fail(err, NC_ERR_INVALID_ARGUMENT,
                     "request id must be 1-39 printable ASCII characters");
  }
  return NC_OK;
}

nc_status nc_message_encode(const ProtobufCMessage *msg, grpc_byte_buffer **out, nc_error *err) {
  size_t n = protobuf_c_message_get_packed_size(msg);
  grpc_slice slice = grpc_slice_malloc(n);
  size_t packed = protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(slice));
  nc_status st = NC_OK;
  if (packed != n) {
    st = nc_fail(err, NC_ERR_INVALID_ARGUMENT, "request %s could not be serialised",
                 msg->descriptor->name);
    *out = NULL;
  } else {
    *out = grpc_raw_byte_buffer_create(&slice, 1);
  }
  grpc_slice_unref(slice);
  return st;
}

nc_status nc_message_decode(grpc_byte_buffer *buf, const ProtobufCMessageDescriptor *type,
                            ProtobufCMessage **out, nc_error *err) {
  grpc_byte_buffer_reader reader;
  *out = NULL;
  if (!grpc_byte_buffer_reader_init(&reader, buf))
    return nc_fail(err, NC_ERR_DECODE, "the response %s could not be read", type->name);
  grpc_slice slice = grpc_byte_buffer_reader_readall(&reader);
  grpc_byte_buffer_reader_destroy(&reader);
  *out =
      protobuf_c_message_unpack(type, NULL, GRPC_SLICE_LENGTH(slice), GRPC_SLICE_START_PTR(slice));
  grpc_slice_unref(slice);
  if (!*out) return nc_fail(err, NC_ERR_DECODE, "the response is not a valid %s", type->name);
  return NC_OK;
}

nc_status nc_outgoing_md_init(nc_outgoing_md *md, const char *authorization,
                              const nc_call_options *call_opts, nc_error *err) {
  memset(md, 0, sizeof(*md));
  if (authorization) {
    md->md[md->count].key = grpc_slice_from_static_string("authorization");
    md->md[md->count].value = grpc_slice_from_copied_string(authorization);
    md->count++;
  }
  if (call_opts && call_opts->request_id) {
    md->md[md->count].key = grpc_slice_from_static_string("x-request-id");
    md->md[md->count].value = grpc_slice_from_copied_string(call_opts->request_id);
    md->count++;
  }
  return NC_OK;
}

void nc_outgoing_md_destroy(nc_outgoing_md *md) {
  for (size_t i = 0; i < md->count; i++) {
    grpc_slice_unref(md->md[i].key);
    grpc_slice_unref(md->md[i].value);
  }
  md->count = 0;
}

static bool find_request_id(const grpc_metadata_array *arr, char *buf, size_t len) {
  for (size_t i = 0; arr && i < arr->count; i++) {
    if (grpc_slice_str_cmp(arr->metadata[i].key, "x-request-id") != 0) continue;
    size_t n = GRPC_SLICE_LENGTH(arr->metadata[i].value);
    if (n >= len) n = len - 1;
    memcpy(buf, GRPC_SLICE_START_PTR(arr->metadata[i].value), n);
    buf[n] = '\0';
    return true;
  }
  return false;
}

void nc_capture_request_id(const grpc_metadata_array *initial, const grpc_metadata_array *trailing,
                           char *buf, size_t len) {
  /* a trailers-only response carries its headers in the trailing metadata */
  if (!find_request_id(initial, buf, len)) find_request_id(trailing, buf, len);
}

nc_status nc_call_create(nc_client *client, const char *method, grpc_completion_queue *cq,
                         gpr_timespec deadline, grpc_call **out, nc_error *err) {
  grpc_slice path = grpc_slice_from_copied_string(method);
  *out = grpc_channel_create_call(client->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, path, NULL,
                                  deadline, NULL);
  grpc_slice_unref(path);
  if (!*out) return nc_fail(err, NC_ERR_NO_MEMORY, "cannot create a call to %s", method);
  return NC_OK;
}

bool nc_cq_wait(grpc_completion_queue *cq, void *tag, gpr_timespec until, bool *ok) {
  grpc_event ev = grpc_completion_queue_pluck(cq, tag, until, NULL);
  if (ev.type == GRPC_QUEUE_TIMEOUT) return false;
  *ok = ev.type == GRPC_OP_COMPLETE && ev.success;
  return true;
}

void nc_cq_destroy(grpc_completion_queue *cq) {
  grpc_completion_queue_shutdown(cq);
  while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(cq);
}

gpr_timespec nc_deadline_with_slack(gpr_timespec deadline) {
  if (gpr_time_cmp(deadline, gpr_inf_future(deadline.clock_type)) == 0) return deadline;
  return gpr_time_add(deadline, gpr_time_from_millis(NC_PLUCK_SLACK_MS, GPR_TIMESPAN));
}

/* Maps a refused grpc_call_start_batch to a status. */
static nc_status batch_refused(grpc_call_error e, nc_error *err) {
  if (e == GRPC_CALL_ERROR_INVALID_METADATA)
    return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "invalid call metadata");
  return nc_fail(err, NC_ERR_CLOSED, "the call could not be started (grpc_call_error %d)", (int)e);
}

/* One attempt of a unary call with the arguments checked, sending
 * `authorization` (may be NULL). */
static nc_status unary_once(nc_client *client, const char *method, const ProtobufCMessage *request,
                            const ProtobufCMessageDescriptor *response_type,
                            ProtobufCMessage **response, const nc_call_options *call_opts,
                            const char *authorization, nc_error *err) {
  nc_status st;
  grpc_completion_queue *cq = NULL;
  grpc_call *call = NULL;
  grpc_byte_buffer *send_buf = NULL;
  grpc_byte_buffer *recv_buf = NULL;
  grpc_metadata_array initial_md;
  grpc_metadata_array trailing_md;
  grpc_status_code status = GRPC_STATUS_UNKNOWN;
  grpc_slice details = grpc_empty_slice();
  nc_outgoing_md out_md = {.count = 0};
  char request_id[40] = "";
  bool ok = false;

  nc_error_clear(err);
  grpc_metadata_array_init(&initial_md);
  grpc_metadata_array_init(&trailing_md);
  *response = NULL;
  gpr_timespec deadline = nc_client_deadline(client, call_opts);
  if ((st = nc_outgoing_md_init(&out_md, authorization, call_opts, err)) != NC_OK) goto cleanup;
  if ((st = nc_message_encode(request, &send_buf, err)) != NC_OK) goto cleanup;
  cq = grpc_completion_queue_create_for_pluck(NULL);
  if ((st = nc_call_create(client, method, cq, deadline, &call, err)) != NC_OK) goto cleanup;

  grpc_op ops[6];
  memset(ops, 0, sizeof(ops));
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = out_md.count;
  ops[0].data.send_initial_metadata.metadata = out_md.md;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = send_buf;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial_md;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &recv_buf;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &trailing_md;
  ops[5].data.recv_status_on_client.status = &status;
  ops[5].data.recv_status_on_client.status_details = &details;
  grpc_call_error e = grpc_call_start_batch(call, ops, 6, &ops[0], NULL);
  if (e != GRPC_CALL_OK) {
    st = batch_refused(e, err);
    goto cleanup;
  }
  if (!nc_cq_wait(cq, &ops[0], nc_deadline_with_slack(deadline), &ok)) {
    grpc_call_cancel(call, NULL);
    nc_cq_wait(cq, &ops[0], gpr_inf_future(GPR_CLOCK_MONOTONIC), &ok);
  }
  nc_capture_request_id(&initial_md, &trailing_md, request_id, sizeof(request_id));
  st = nc_fail_rpc(err, status, &details, request_id);
  if (st != NC_OK) goto cleanup;
  if (!recv_buf) {
    st = nc_fail(err, NC_ERR_DECODE, "the server answered %s with OK but no message", method);
    goto cleanup;
  }
  st = nc_message_decode(recv_buf, response_type, response, err);
cleanup:
  if (err && request_id[0]) memcpy(err->request_id, request_id, sizeof(err->request_id));
  grpc_metadata_array_destroy(&initial_md);
  grpc_metadata_array_destroy(&trailing_md);
  if (call) grpc_call_unref(call);
  if (cq) nc_cq_destroy(cq);
  grpc_slice_unref(details);
  if (send_buf) grpc_byte_buffer_destroy(send_buf);
  if (recv_buf) grpc_byte_buffer_destroy(recv_buf);
  nc_outgoing_md_destroy(&out_md);
  return st;
}

/* Methods whose UNAUTHENTICATED judges the request, not the credential
 * (a wrong password): a refresh would not help. */
static bool unauthenticated_is_an_answer(const char *method) {
  return nc_method_is_anonymous(method) ||
         strcmp(method, "/" NC_IDENTITY_SERVICE "/ChangePassword") == 0;
}

nc_status nc_call_unary(nc_client *client, const char *method, const ProtobufCMessage *request,
                        const ProtobufCMessageDescriptor *response_type,
                        ProtobufCMessage **response, const nc_call_options *call_opts,
                        nc_error *err) {
  nc_error local;
  nc_credential cred = {NULL, 0};
  nc_status st;

  if (!err) err = &local;
  nc_error_clear(err);
  if (response) *response = NULL;
  st = nc_call_check_args(client, method, request, response_type, response, call_opts, err);
  if (st != NC_OK) return st;
  if ((st = nc_session_credential(client, method, &cred, err)) != NC_OK) return st;
  st = unary_once(client, method, request, response_type, response, call_opts, cred.authorization,
                  err);
  if (st == NC_ERR_RPC && err->code == NC_GRPC_UNAUTHENTICATED &&
      !unauthenticated_is_an_answer(method)) {
    /* the access token may have expired or been replaced: refresh (or
     * pick up another thread's refresh) and try once more */
    nc_error refresh_err;
    nc_status rst = nc_session_refresh(client, NC_REFRESH_IF_SAME, cred.generation, &refresh_err);
    nc_credential_destroy(&cred);
    if (rst == NC_OK) {
      st = nc_session_credential(client, method, &cred, err);
      if (st == NC_OK)
        st = unary_once(client, method, request, response_type, response, call_opts,
                        cred.authorization, err);
    } else if (rst != NC_ERR_NOT_FOUND) {
      *err = refresh_err; /* why the session could not go on */
      st = rst;
    }
  }
  nc_credential_destroy(&cred);
  return st;
}

void nc_message_free(ProtobufCMessage *message) {
  if (message) protobuf_c_message_free_unpacked(message, NULL);
}

nc_status nc_typed_call(nc_client *client, const char *method, const ProtobufCMessage *request,
                        const ProtobufCMessageDescriptor *type,
                        const ProtobufCMessageDescriptor *response_type,
                        ProtobufCMessage **response, const nc_call_options *call_opts,
                        nc_error *err) {
  if (response) *response = NULL;
  if (request && request->descriptor != type) {
    nc_error_clear(err);
    return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "%s needs a %s, not a %s", method, type->name,
                   request->descriptor ? request->descriptor->name : "(no descriptor)");
  }
  return nc_call_unary(client, method, request, response_type, response, call_opts, err);
}
