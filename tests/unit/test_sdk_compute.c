/*
 * test_sdk_compute.c - unit tests of libnovacron's compute clients that need
 * no server: the typed Host/Vm/Operations wrappers' argument checks, reading
 * an Operation's result (the response Any unpacked, the error turned into an
 * nc_error), nc_operation_wait's checks and its retry bound against a port
 * nothing listens on, and the event watch on a stream that cannot connect
 * (its final status, position and resume) or never answers (timeouts).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "novacron/compute.h"

/* ---- helpers ---- */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A bound TCP socket on 127.0.0.1; listening (never accepting) or not. */
static int local_socket(bool listening, char *target, size_t len) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
  socklen_t alen = sizeof(addr);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &alen), 0);
  if (listening) assert_int_equal(listen(fd, 16), 0);
  snprintf(target, len, "127.0.0.1:%u", (unsigned)ntohs(addr.sin_port));
  return fd;
}

/* A client of a port nothing listens on (plaintext, so failures are quick). */
static nc_client *offline_client(void) {
  char target[64];
  nc_options *opts = NULL;
  nc_client *client = NULL;
  nc_error err;
  close(local_socket(false, target, sizeof(target)));
  assert_int_equal(nc_options_new(&opts), NC_OK);
  assert_int_equal(nc_options_set_target(opts, target), NC_OK);
  assert_int_equal(nc_options_set_insecure(opts, true), NC_OK);
  assert_int_equal(nc_options_set_default_deadline_ms(opts, 2000), NC_OK);
  assert_int_equal(nc_client_new(opts, &client, &err), NC_OK);
  nc_options_free(opts);
  return client;
}

/* A Vm packed into an Any with the given type URL; free any->value.data. */
static void pack_vm(Google__Protobuf__Any *any, const char *type_url) {
  Novacron__V1__Vm vm = NOVACRON__V1__VM__INIT;
  vm.name = "projects/default/vms/web-1";
  vm.vcpus = 2;
  vm.memory_mib = 256;
  vm.state = NOVACRON__V1__VM__STATE__STATE_RUNNING;
  any->type_url = (char *)type_url;
  any->value.len = protobuf_c_message_get_packed_size(&vm.base);
  any->value.data = malloc(any->value.len);
  assert_non_null(any->value.data);
  protobuf_c_message_pack(&vm.base, any->value.data);
}

/* ---- typed wrappers ---- */

/* Calls a wrapper with a message of the wrong type: INVALID_ARGUMENT naming
 * the method, no call made, the response NULL. */
#define EXPECT_WRONG_TYPE(fn, RESP, METHOD)                                 \
  do {                                                                      \
    RESP *resp_ = (RESP *)&label;                                           \
    nc_error err_;                                                          \
    assert_int_equal(fn(client, (const void *)&label, &resp_, NULL, &err_), \
                     NC_ERR_INVALID_ARGUMENT);                              \
    assert_null(resp_);                                                     \
    assert_non_null(strstr(err_.message, "/" METHOD));                      \
    assert_non_null(strstr(err_.message, "not a novacron.v1.Label"));       \
  } while (0)

static void test_wrappers_check_request_type(void **state) {
  nc_client *client = offline_client();
  Novacron__V1__Label label = NOVACRON__V1__LABEL__INIT;

  EXPECT_WRONG_TYPE(nc_host_register, Novacron__V1__RegisterHostResponse, "RegisterHost");
  EXPECT_WRONG_TYPE(nc_host_get, Novacron__V1__GetHostResponse, "GetHost");
  EXPECT_WRONG_TYPE(nc_host_list, Novacron__V1__ListHostsResponse, "ListHosts");
  EXPECT_WRONG_TYPE(nc_host_update, Novacron__V1__UpdateHostResponse, "UpdateHost");
  EXPECT_WRONG_TYPE(nc_host_drain, Novacron__V1__DrainHostResponse, "DrainHost");
  EXPECT_WRONG_TYPE(nc_host_deregister, Novacron__V1__DeregisterHostResponse, "DeregisterHost");

  EXPECT_WRONG_TYPE(nc_vm_create, Novacron__V1__CreateVmResponse, "CreateVm");
  EXPECT_WRONG_TYPE(nc_vm_get, Novacron__V1__GetVmResponse, "GetVm");
  EXPECT_WRONG_TYPE(nc_vm_list, Novacron__V1__ListVmsResponse, "ListVms");
  EXPECT_WRONG_TYPE(nc_vm_update, Novacron__V1__UpdateVmResponse, "UpdateVm");
  EXPECT_WRONG_TYPE(nc_vm_delete, Novacron__V1__DeleteVmResponse, "DeleteVm");
  EXPECT_WRONG_TYPE(nc_vm_start, Novacron__V1__StartVmResponse, "StartVm");
  EXPECT_WRONG_TYPE(nc_vm_stop, Novacron__V1__StopVmResponse, "StopVm");
  EXPECT_WRONG_TYPE(nc_vm_reboot, Novacron__V1__RebootVmResponse, "RebootVm");
  EXPECT_WRONG_TYPE(nc_vm_pause, Novacron__V1__PauseVmResponse, "PauseVm");
  EXPECT_WRONG_TYPE(nc_vm_resume, Novacron__V1__ResumeVmResponse, "ResumeVm");
  EXPECT_WRONG_TYPE(nc_vm_resize, Novacron__V1__ResizeVmResponse, "ResizeVm");
  EXPECT_WRONG_TYPE(nc_vm_migrate, Novacron__V1__MigrateVmResponse, "MigrateVm");
  EXPECT_WRONG_TYPE(nc_vm_clone, Novacron__V1__CloneVmResponse, "CloneVm");
  EXPECT_WRONG_TYPE(nc_vm_create_snapshot, Novacron__V1__CreateSnapshotResponse, "CreateSnapshot");
  EXPECT_WRONG_TYPE(nc_vm_get_snapshot, Novacron__V1__GetSnapshotResponse, "GetSnapshot");
  EXPECT_WRONG_TYPE(nc_vm_list_snapshots, Novacron__V1__ListSnapshotsResponse, "ListSnapshots");
  EXPECT_WRONG_TYPE(nc_vm_revert_snapshot, Novacron__V1__RevertSnapshotResponse, "RevertSnapshot");
  EXPECT_WRONG_TYPE(nc_vm_delete_snapshot, Novacron__V1__DeleteSnapshotResponse, "DeleteSnapshot");
  EXPECT_WRONG_TYPE(nc_vm_attach_volume, Novacron__V1__AttachVolumeResponse, "AttachVolume");
  EXPECT_WRONG_TYPE(nc_vm_detach_volume, Novacron__V1__DetachVolumeResponse, "DetachVolume");
  EXPECT_WRONG_TYPE(nc_vm_attach_nic, Novacron__V1__AttachNicResponse, "AttachNic");
  EXPECT_WRONG_TYPE(nc_vm_detach_nic, Novacron__V1__DetachNicResponse, "DetachNic");
  EXPECT_WRONG_TYPE(nc_vm_get_stats, Novacron__V1__GetVmStatsResponse, "GetVmStats");

  EXPECT_WRONG_TYPE(nc_operation_get, Novacron__V1__GetOperationResponse, "GetOperation");
  EXPECT_WRONG_TYPE(nc_operation_list, Novacron__V1__ListOperationsResponse, "ListOperations");
  EXPECT_WRONG_TYPE(nc_operation_wait_once, Novacron__V1__WaitOperationResponse, "WaitOperation");
  EXPECT_WRONG_TYPE(nc_operation_cancel, Novacron__V1__CancelOperationResponse, "CancelOperation");
  nc_client_free(client);
}

static void test_wrappers_null_arguments(void **state) {
  Novacron__V1__GetVmRequest req = NOVACRON__V1__GET_VM_REQUEST__INIT;
  Novacron__V1__GetVmResponse *resp = (Novacron__V1__GetVmResponse *)&req;
  nc_error err;
  req.name = "projects/default/vms/web-1";
  /* no client, no request, no output: refused locally, never a crash */
  assert_int_equal(nc_vm_get(NULL, &req, &resp, NULL, &err), NC_ERR_INVALID_ARGUMENT);
  assert_null(resp);
  assert_non_null(strstr(err.message, "client"));
  nc_client *client = offline_client();
  assert_int_equal(nc_vm_get(client, NULL, &resp, NULL, &err), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_vm_get(client, &req, NULL, NULL, NULL), NC_ERR_INVALID_ARGUMENT);
  /* a bad request id in the call options */
  nc_call_options bad = {.deadline_ms = 0, .request_id = "bad\nid"};
  assert_int_equal(nc_vm_get(client, &req, &resp, &bad, &err), NC_ERR_INVALID_ARGUMENT);
  nc_client_free(client);
}

static void test_wrapper_unreachable_server(void **state) {
  Novacron__V1__StartVmRequest req = NOVACRON__V1__START_VM_REQUEST__INIT;
  Novacron__V1__StartVmResponse *resp = NULL;
  char request_id[NC_UUID_LEN + 1];
  nc_error err;
  nc_client *client = offline_client();
  assert_int_equal(nc_new_request_id(request_id, sizeof(request_id)), NC_OK);
  req.name = "projects/default/vms/web-1";
  req.request_id = request_id;
  int64_t start = now_ms();
  assert_int_equal(nc_vm_start(client, &req, &resp, NULL, &err), NC_ERR_RPC);
  assert_true(err.code == NC_GRPC_UNAVAILABLE || err.code == NC_GRPC_DEADLINE_EXCEEDED);
  assert_null(resp);
  assert_true(now_ms() - start < 5000);
  nc_client_free(client);
}

/* ---- operation results ---- */

static void test_result_unpacks_response(void **state) {
  Novacron__V1__Operation op = NOVACRON__V1__OPERATION__INIT;
  Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
  ProtobufCMessage *msg = (ProtobufCMessage *)&op;
  nc_error err;
  pack_vm(&any, "type.googleapis.com/novacron.v1.Vm");
  op.name = "projects/default/operations/op-1";
  op.state = NOVACRON__V1__OPERATION__STATE__STATE_SUCCEEDED;
  op.done = true;
  op.result_case = NOVACRON__V1__OPERATION__RESULT_RESPONSE;
  op.response = &any;

  assert_int_equal(nc_operation_result(&op, &novacron__v1__vm__descriptor, &msg, &err), NC_OK);
  assert_non_null(msg);
  assert_ptr_equal(msg->descriptor, &novacron__v1__vm__descriptor);
  Novacron__V1__Vm *vm = (Novacron__V1__Vm *)msg;
  assert_string_equal(vm->name, "projects/default/vms/web-1");
  assert_int_equal(vm->vcpus, 2);
  assert_int_equal(vm->memory_mib, 256);
  assert_int_equal(vm->state, NOVACRON__V1__VM__STATE__STATE_RUNNING);
  nc_message_free(msg);

  /* the outcome only */
  assert_int_equal(nc_operation_result(&op, NULL, NULL, &err), NC_OK);
  assert_int_equal(nc_operation_result(&op, NULL, NULL, NULL), NC_OK);

  /* another type than the one asked for */
  msg = (ProtobufCMessage *)&op;
  assert_int_equal(nc_operation_result(&op, &novacron__v1__host__descriptor, &msg, &err),
                   NC_ERR_DECODE);
  assert_null(msg);
  assert_non_null(strstr(err.message, "novacron.v1.Host"));
  assert_non_null(strstr(err.message, "novacron.v1.Vm"));

  /* through nc_any_unpack directly; a bare type name is accepted too */
  any.type_url = "novacron.v1.Vm";
  assert_int_equal(nc_any_unpack(&any, &novacron__v1__vm__descriptor, &msg, &err), NC_OK);
  nc_message_free(msg);
  any.type_url = "type.googleapis.com/novacron.v1.VmSnapshot";
  assert_int_equal(nc_any_unpack(&any, &novacron__v1__vm__descriptor, &msg, &err), NC_ERR_DECODE);
  assert_int_equal(nc_any_unpack(NULL, &novacron__v1__vm__descriptor, &msg, &err),
                   NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_any_unpack(&any, NULL, &msg, &err), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_any_unpack(&any, &novacron__v1__vm__descriptor, NULL, &err),
                   NC_ERR_INVALID_ARGUMENT);

  /* bytes that are not a Vm */
  any.type_url = "type.googleapis.com/novacron.v1.Vm";
  any.value.data[0] = 0xff;
  any.value.len = 1;
  assert_int_equal(nc_any_unpack(&any, &novacron__v1__vm__descriptor, &msg, &err), NC_ERR_DECODE);
  assert_null(msg);
  free(any.value.data);
}

static void test_result_failed_and_cancelled(void **state) {
  Novacron__V1__Operation op = NOVACRON__V1__OPERATION__INIT;
  Novacron__V1__Status status = NOVACRON__V1__STATUS__INIT;
  ProtobufCMessage *msg = (ProtobufCMessage *)&op;
  nc_error err;
  op.name = "projects/default/operations/op-2";
  op.state = NOVACRON__V1__OPERATION__STATE__STATE_FAILED;
  op.done = true;
  op.result_case = NOVACRON__V1__OPERATION__RESULT_ERROR;
  op.error = &status;
  status.code = NC_GRPC_RESOURCE_EXHAUSTED;
  status.message = "no host has 128 MiB free";

  assert_int_equal(nc_operation_result(&op, &novacron__v1__vm__descriptor, &msg, &err), NC_ERR_RPC);
  assert_null(msg);
  assert_int_equal(err.code, NC_GRPC_RESOURCE_EXHAUSTED);
  assert_string_equal(err.message, "no host has 128 MiB free");
  assert_int_equal(nc_operation_result(&op, NULL, NULL, &err), NC_ERR_RPC);

  /* an error without a message still says what happened */
  status.message = "";
  assert_int_equal(nc_operation_result(&op, NULL, NULL, &err), NC_ERR_RPC);
  assert_non_null(strstr(err.message, "op-2"));
  assert_non_null(strstr(err.message, "RESOURCE_EXHAUSTED"));

  /* cancelled, with or without an error */
  op.state = NOVACRON__V1__OPERATION__STATE__STATE_CANCELLED;
  status.code = NC_GRPC_CANCELLED;
  status.message = "cancelled by users/admin";
  assert_int_equal(nc_operation_result(&op, NULL, NULL, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_CANCELLED);
  op.result_case = NOVACRON__V1__OPERATION__RESULT__NOT_SET;
  op.error = NULL;
  assert_int_equal(nc_operation_result(&op, NULL, NULL, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_CANCELLED);

  /* failed without an error: UNKNOWN; a code out of range: UNKNOWN */
  op.state = NOVACRON__V1__OPERATION__STATE__STATE_FAILED;
  assert_int_equal(nc_operation_result(&op, NULL, NULL, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_UNKNOWN);
  op.result_case = NOVACRON__V1__OPERATION__RESULT_ERROR;
  op.error = &status;
  status.code = 99;
  assert_int_equal(nc_operation_result(&op, NULL, NULL, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_UNKNOWN);
}

static void test_result_not_done_or_empty(void **state) {
  Novacron__V1__Operation op = NOVACRON__V1__OPERATION__INIT;
  Novacron__V1__Label label = NOVACRON__V1__LABEL__INIT;
  ProtobufCMessage *msg = NULL;
  nc_error err;
  op.name = "projects/default/operations/op-3";
  op.state = NOVACRON__V1__OPERATION__STATE__STATE_RUNNING;
  assert_int_equal(nc_operation_result(&op, &novacron__v1__vm__descriptor, &msg, &err),
                   NC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(err.message, "not done"));
  assert_non_null(strstr(err.message, "STATE_RUNNING"));
  assert_int_equal(nc_operation_result(NULL, NULL, NULL, &err), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(
      nc_operation_result((const Novacron__V1__Operation *)(const void *)&label, NULL, NULL, &err),
      NC_ERR_INVALID_ARGUMENT);

  /* succeeded but nothing in `response`: fine for the outcome, not to unpack */
  op.state = NOVACRON__V1__OPERATION__STATE__STATE_SUCCEEDED;
  op.done = true;
  assert_int_equal(nc_operation_result(&op, NULL, NULL, &err), NC_OK);
  assert_int_equal(nc_operation_result(&op, &novacron__v1__vm__descriptor, &msg, &err),
                   NC_ERR_DECODE);
  assert_null(msg);
}

/* ---- nc_operation_wait ---- */

static void test_wait_argument_checks(void **state) {
  nc_client *client = offline_client();
  Novacron__V1__Operation *op = (Novacron__V1__Operation *)client;
  nc_error err;
  assert_int_equal(nc_operation_wait(client, "operations/x", 1000, 0, NULL, &err),
                   NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_operation_wait(client, NULL, 1000, 0, &op, &err), NC_ERR_INVALID_ARGUMENT);
  assert_null(op);
  assert_int_equal(nc_operation_wait(client, "", 1000, 0, &op, &err), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_operation_wait(client, "operations/x", 1000, 0x80, &op, &err),
                   NC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(err.message, "flags"));
  assert_int_equal(nc_operation_wait(NULL, "operations/x", 1000, 0, &op, &err),
                   NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_operation_wait((nc_client *)&err, "operations/x", 1000, 0, &op, NULL),
                   NC_ERR_INVALID_ARGUMENT);
  nc_client_free(client);
}

/* An unreachable server: with NC_WAIT_NO_RETRY the first UNAVAILABLE is the
 * answer; without, it is retried until the overall timeout. */
static void test_wait_unreachable(void **state) {
  nc_client *client = offline_client();
  Novacron__V1__Operation *op = NULL;
  nc_error err;
  int64_t start = now_ms();
  assert_int_equal(nc_operation_wait(client, "projects/default/operations/x", 60000,
                                     NC_WAIT_NO_RETRY, &op, &err),
                   NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_UNAVAILABLE);
  assert_null(op);
  assert_true(now_ms() - start < 5000);

  start = now_ms();
  assert_int_equal(nc_operation_wait(client, "projects/default/operations/x", 1500, 0, &op, &err),
                   NC_ERR_RPC);
  int64_t took = now_ms() - start;
  assert_int_equal(err.code, NC_GRPC_DEADLINE_EXCEEDED);
  assert_non_null(strstr(err.message, "projects/default/operations/x"));
  assert_null(op); /* no state was ever received */
  assert_true(took >= 1400 && took < 6000);

  /* no nc_error: same outcome */
  assert_int_equal(nc_operation_wait(client, "operations/x", 300, 0, &op, NULL), NC_ERR_RPC);

  /* timeout 0: one GetOperation */
  start = now_ms();
  assert_int_equal(nc_operation_wait(client, "operations/x", 0, 0, &op, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_UNAVAILABLE);
  assert_true(now_ms() - start < 5000);
  nc_client_free(client);
}

/* ---- the event watch ---- */

static void test_watch_argument_checks(void **state) {
  nc_client *client = offline_client();
  Novacron__V1__WatchEventsRequest req = NOVACRON__V1__WATCH_EVENTS_REQUEST__INIT;
  Novacron__V1__Label label = NOVACRON__V1__LABEL__INIT;
  nc_event_watch *w = (nc_event_watch *)client;
  Novacron__V1__Event *event = NULL;
  nc_error err;

  assert_int_equal(nc_event_watch_open(client, &req, 0, NULL, NULL, &err), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_event_watch_open(NULL, &req, 0, &w, NULL, &err), NC_ERR_INVALID_ARGUMENT);
  assert_null(w);
  assert_int_equal(nc_event_watch_open(client, (const void *)&label, 0, &w, NULL, &err),
                   NC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(err.message, "novacron.v1.Label"));
  assert_int_equal(nc_event_watch_open(client, &req, 0x10, &w, NULL, &err),
                   NC_ERR_INVALID_ARGUMENT);
  req.after_sequence = -1;
  assert_int_equal(nc_event_watch_open(client, &req, 0, &w, NULL, &err), NC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(err.message, "after_sequence"));
  assert_null(w);

  /* handles that are not watches */
  assert_int_equal(nc_event_watch_next(NULL, &event, 0, &err), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_event_watch_next((nc_event_watch *)client, &event, 0, &err),
                   NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_event_watch_resume(NULL, &err), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_event_watch_last_sequence(NULL), 0);
  assert_false(nc_event_watch_ended(NULL));
  nc_event_watch_cancel(NULL);
  nc_event_watch_free(NULL);
  nc_client_free(client);
}

/* A stream that cannot connect ends with UNAVAILABLE, once; the position
 * stays the request's after_sequence; resume opens a new stream from it. */
static void test_watch_unreachable_then_resume(void **state) {
  nc_client *client = offline_client();
  Novacron__V1__WatchEventsRequest req = NOVACRON__V1__WATCH_EVENTS_REQUEST__INIT;
  Novacron__V1__Event__Type types[] = {NOVACRON__V1__EVENT__TYPE__TYPE_VM_STATE_CHANGED};
  char *resources[] = {"projects/default/vms/web-1"};
  nc_event_watch *w = NULL;
  Novacron__V1__Event *event = NULL;
  nc_error err;

  req.parent = "projects/default";
  req.types = types;
  req.n_types = 1;
  req.resources = resources;
  req.n_resources = 1;
  req.after_sequence = 42;
  nc_call_options opts = {.deadline_ms = 0, .request_id = "watch-unit-1"};
  assert_int_equal(nc_event_watch_open(client, &req, 0, &w, &opts, &err), NC_OK);
  assert_non_null(w);
  req.after_sequence = 7; /* the watch holds its own copy */
  assert_int_equal(nc_event_watch_last_sequence(w), 42);
  assert_false(nc_event_watch_ended(w));

  assert_int_equal(nc_event_watch_next(w, &event, 5000, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_UNAVAILABLE);
  assert_null(event);
  assert_true(nc_event_watch_ended(w));
  assert_int_equal(nc_event_watch_next(w, &event, 5000, &err), NC_ERR_CLOSED);
  assert_int_equal(nc_event_watch_last_sequence(w), 42);

  for (int i = 0; i < 3; i++) {
    assert_int_equal(nc_event_watch_resume(w, &err), NC_OK);
    assert_false(nc_event_watch_ended(w));
    assert_int_equal(nc_event_watch_next(w, &event, 5000, &err), NC_ERR_RPC);
    assert_int_equal(err.code, NC_GRPC_UNAVAILABLE);
    assert_true(nc_event_watch_ended(w));
    assert_int_equal(nc_event_watch_last_sequence(w), 42);
  }
  /* resuming a stream that has not ended replaces it */
  assert_int_equal(nc_event_watch_resume(w, &err), NC_OK);
  assert_int_equal(nc_event_watch_resume(w, &err), NC_OK);
  nc_event_watch_free(w);
  nc_client_free(client);
}

/* A peer that never answers: timeouts leave the stream open; cancel ends
 * it with CANCELLED; free with a read pending is clean. */
static void test_watch_silent_peer(void **state) {
  char target[64];
  int fd = local_socket(true, target, sizeof(target));
  nc_options *opts = NULL;
  nc_client *client = NULL;
  nc_event_watch *w = NULL;
  Novacron__V1__Event *event = NULL;
  nc_error err;
  assert_int_equal(nc_options_new(&opts), NC_OK);
  assert_int_equal(nc_options_set_target(opts, target), NC_OK);
  assert_int_equal(nc_options_set_default_deadline_ms(opts, 300), NC_OK); /* not for watches */
  assert_int_equal(nc_client_new(opts, &client, &err), NC_OK);
  nc_options_free(opts);

  assert_int_equal(nc_event_watch_open(client, NULL, NC_WATCH_HEARTBEATS, &w, NULL, &err), NC_OK);
  int64_t start = now_ms();
  assert_int_equal(nc_event_watch_next(w, &event, 100, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_DEADLINE_EXCEEDED);
  assert_false(nc_event_watch_ended(w));
  assert_int_equal(nc_event_watch_next(w, &event, 0, &err), NC_ERR_RPC); /* a poll */
  assert_int_equal(err.code, NC_GRPC_DEADLINE_EXCEEDED);
  /* the client's 300 ms default deadline does not end a watch */
  assert_int_equal(nc_event_watch_next(w, &event, 600, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_DEADLINE_EXCEEDED);
  assert_false(nc_event_watch_ended(w));
  assert_true(now_ms() - start >= 650);

  nc_event_watch_cancel(w);
  assert_int_equal(nc_event_watch_next(w, &event, -1, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_CANCELLED);
  assert_true(nc_event_watch_ended(w));

  /* resumed, then freed with a read pending */
  assert_int_equal(nc_event_watch_resume(w, &err), NC_OK);
  assert_int_equal(nc_event_watch_next(w, &event, 50, &err), NC_ERR_RPC);
  nc_event_watch_free(w);

  /* an explicit deadline does end the stream */
  nc_call_options call_opts = {.deadline_ms = 300};
  assert_int_equal(nc_event_watch_open(client, NULL, 0, &w, &call_opts, &err), NC_OK);
  assert_int_equal(nc_event_watch_next(w, &event, -1, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_DEADLINE_EXCEEDED);
  assert_true(nc_event_watch_ended(w));
  nc_event_watch_free(w);
  nc_client_free(client);
  close(fd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_wrappers_check_request_type),
      cmocka_unit_test(test_wrappers_null_arguments),
      cmocka_unit_test(test_wrapper_unreachable_server),
      cmocka_unit_test(test_result_unpacks_response),
      cmocka_unit_test(test_result_failed_and_cancelled),
      cmocka_unit_test(test_result_not_done_or_empty),
      cmocka_unit_test(test_wait_argument_checks),
      cmocka_unit_test(test_wait_unreachable),
      cmocka_unit_test(test_watch_argument_checks),
      cmocka_unit_test(test_watch_unreachable_then_resume),
      cmocka_unit_test(test_watch_silent_peer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
