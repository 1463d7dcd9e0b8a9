/*
 * test_sdk_compute.c - libnovacron's compute clients against a real
 * novacron-server (TLS, the fixture's PostgreSQL, the embedded host
 * `hosts/default` on test:///default), as the bootstrap administrator in
 * project `default`: the embedded host, a VM's life (validate-only,
 * create, start, pause, resume, stop, delete) through the typed wrappers
 * and nc_operation_wait, idempotent retries, an illegal transition,
 * ListVms paging, the operations service, and the event watch seeing the
 * VM's state changes, resuming after the last sequence and ending with
 * OUT_OF_RANGE for a sequence past the head.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "novacron/compute.h"

#define WAIT_MS 120000 /* an operation on the test driver takes far less */
#define PROJECT "projects/default"

/* ---- fixture ---- */

static harness_server server;
static nc_client *admin;

static nc_client *new_client(void) {
  char ca[512];
  nc_options *opts = NULL;
  nc_client *client = NULL;
  nc_error err;
  assert_int_equal(nc_options_new(&opts), NC_OK);
  assert_int_equal(nc_options_set_target(opts, server.address), NC_OK);
  assert_non_null(harness_cert_path("ca.crt", ca, sizeof(ca)));
  assert_int_equal(nc_options_set_tls_ca_file(opts, ca), NC_OK);
  nc_status st = nc_client_new(opts, &client, &err);
  nc_options_free(opts);
  if (st != NC_OK) fail_msg("nc_client_new: %s", err.message);
  return client;
}

static int start_server(void **state) {
  static const char *const args[] = {"--rate-limit-rps", "0", "--rate-limit-anonymous-rps", "0",
                                     NULL};
  harness_options opts = {.insecure = false, .mtls = false, .extra_args = args};
  if (harness_server_start(&server, &opts) != 0) return -1;
  admin = new_client();
  nc_error err;
  nc_status st = nc_client_login(admin, "admin", harness_admin_password(), &err);
  if (st != NC_OK) {
    fprintf(stderr, "login: %s: %s\n", nc_strerror(st), err.message);
    return -1;
  }
  return 0;
}

static int stop_server(void **state) {
  nc_client_free(admin);
  return harness_server_stop(&server, 15000) == 0 ? 0 : -1;
}

/* ---- helpers ---- */

static void unique_id(const char *prefix, char *buf, size_t len) {
  char uuid[NC_UUID_LEN + 1];
  assert_int_equal(nc_new_request_id(uuid, sizeof(uuid)), NC_OK);
  snprintf(buf, len, "%s-%.8s", prefix, uuid);
}

static const char *vm_state_name(int state) {
  const ProtobufCEnumValue *v =
      protobuf_c_enum_descriptor_get_value(&novacron__v1__vm__state__descriptor, state);
  return v ? v->name : "?";
}

/* Fails the test with the call's error. */
#define CHECK_OK(st, err, what)                                                        \
  do {                                                                                 \
    if ((st) != NC_OK)                                                                 \
      fail_msg("%s: %s: %s: %s", what, nc_strerror(st), nc_grpc_code_name((err).code), \
               (err).message);                                                         \
  } while (0)

/* Waits for `op` (not freed) and returns the Vm it produced, checking its
 * state. Free the Vm with nc_message_free. */
static Novacron__V1__Vm *wait_vm(const Novacron__V1__Operation *op, int expected_state) {
  Novacron__V1__Operation *done = NULL;
  ProtobufCMessage *vm = NULL;
  nc_error err;
  assert_non_null(op);
  assert_true(op->name[0] != '\0');
  nc_status st = nc_operation_wait(admin, op->name, WAIT_MS, 0, &done, &err);
  CHECK_OK(st, err, op->name);
  assert_true(done->done);
  assert_string_equal(done->name, op->name);
  st = nc_operation_result(done, &novacron__v1__vm__descriptor, &vm, &err);
  if (st != NC_OK)
    fail_msg("operation %s (%s) failed: %s: %s", done->name, done->verb,
             nc_grpc_code_name(err.code), err.message);
  assert_int_equal(done->state, NOVACRON__V1__OPERATION__STATE__STATE_SUCCEEDED);
  nc_message_free(&done->base);
  Novacron__V1__Vm *v = (Novacron__V1__Vm *)vm;
  if (expected_state && (int)v->state != expected_state)
    fail_msg("%s is %s, expected %s", v->name, vm_state_name(v->state),
             vm_state_name(expected_state));
  return v;
}

/* GetVm's state, or fails. */
static int vm_state(const char *name) {
  Novacron__V1__GetVmRequest req = NOVACRON__V1__GET_VM_REQUEST__INIT;
  Novacron__V1__GetVmResponse *resp = NULL;
  nc_error err;
  req.name = (char *)name;
  nc_status st = nc_vm_get(admin, &req, &resp, NULL, &err);
  CHECK_OK(st, err, "GetVm");
  assert_non_null(resp->vm);
  assert_string_equal(resp->vm->name, name);
  int state = (int)resp->vm->state;
  nc_message_free(&resp->base);
  return state;
}

/* Creates a stopped 1 vCPU / 128 MiB VM without disks or NICs in
 * `default` and waits for it; its name into buf. `label` may be NULL. */
static void create_vm(const char *id, const Novacron__V1__Label *label, char *name, size_t len) {
  Novacron__V1__CreateVmRequest req = NOVACRON__V1__CREATE_VM_REQUEST__INIT;
  Novacron__V1__Vm vm = NOVACRON__V1__VM__INIT;
  Novacron__V1__Label *labels[1];
  Novacron__V1__CreateVmResponse *resp = NULL;
  char request_id[NC_UUID_LEN + 1];
  nc_error err;
  assert_int_equal(nc_new_request_id(request_id, sizeof(request_id)), NC_OK);
  vm.vcpus = 1;
  vm.memory_mib = 128;
  if (label) {
    labels[0] = (Novacron__V1__Label *)label;
    vm.labels = labels;
    vm.n_labels = 1;
  }
  req.parent = PROJECT;
  req.vm_id = (char *)id;
  req.vm = &vm;
  req.request_id = request_id;
  nc_status st = nc_vm_create(admin, &req, &resp, NULL, &err);
  CHECK_OK(st, err, "CreateVm");
  Novacron__V1__Vm *created = wait_vm(resp->operation, NOVACRON__V1__VM__STATE__STATE_STOPPED);
  snprintf(name, len, "%s", created->name);
  nc_message_free(&created->base);
  nc_message_free(&resp->base);
}

typedef enum power_action { POWER_START, POWER_STOP, POWER_PAUSE, POWER_RESUME } power_action;

/* Starts a power action on `name`; returns the call's status and, on
 * NC_OK, the operation (free with nc_message_free). */
static nc_status power(power_action action, const char *name, Novacron__V1__Operation **op,
                       nc_error *err) {
  char request_id[NC_UUID_LEN + 1];
  nc_status st = NC_ERR_INVALID_ARGUMENT;
  Novacron__V1__Operation **slot = NULL;
  ProtobufCMessage *resp = NULL;
  assert_int_equal(nc_new_request_id(request_id, sizeof(request_id)), NC_OK);
  *op = NULL;
  switch (action) {
  case POWER_START: {
    Novacron__V1__StartVmRequest req = NOVACRON__V1__START_VM_REQUEST__INIT;
    Novacron__V1__StartVmResponse *r = NULL;
    req.name = (char *)name;
    req.request_id = request_id;
    st = nc_vm_start(admin, &req, &r, NULL, err);
    if (r) slot = &r->operation, resp = &r->base;
    break;
  }
  case POWER_STOP: {
    Novacron__V1__StopVmRequest req = NOVACRON__V1__STOP_VM_REQUEST__INIT;
    Novacron__V1__StopVmResponse *r = NULL;
    req.name = (char *)name;
    req.request_id = request_id;
    st = nc_vm_stop(admin, &req, &r, NULL, err);
    if (r) slot = &r->operation, resp = &r->base;
    break;
  }
  case POWER_PAUSE: {
    Novacron__V1__PauseVmRequest req = NOVACRON__V1__PAUSE_VM_REQUEST__INIT;
    Novacron__V1__PauseVmResponse *r = NULL;
    req.name = (char *)name;
    req.request_id = request_id;
    st = nc_vm_pause(admin, &req, &r, NULL, err);
    if (r) slot = &r->operation, resp = &r->base;
    break;
  }
  case POWER_RESUME: {
    Novacron__V1__ResumeVmRequest req = NOVACRON__V1__RESUME_VM_REQUEST__INIT;
    Novacron__V1__ResumeVmResponse *r = NULL;
    req.name = (char *)name;
    req.request_id = request_id;
    st = nc_vm_resume(admin, &req, &r, NULL, err);
    if (r) slot = &r->operation, resp = &r->base;
    break;
  }
  }
  if (slot) {
    *op = *slot;
    *slot = NULL;
  }
  nc_message_free(resp);
  return st;
}

/* A power action that must succeed and leave the VM in `expected`. */
static void power_ok(power_action action, const char *name, int expected) {
  Novacron__V1__Operation *op = NULL;
  nc_error err;
  nc_status st = power(action, name, &op, &err);
  CHECK_OK(st, err, name);
  Novacron__V1__Vm *vm = wait_vm(op, expected);
  assert_string_equal(vm->name, name);
  nc_message_free(&vm->base);
  nc_message_free(&op->base);
  assert_int_equal(vm_state(name), expected);
}

static void delete_vm(const char *name) {
  Novacron__V1__DeleteVmRequest req = NOVACRON__V1__DELETE_VM_REQUEST__INIT;
  Novacron__V1__DeleteVmResponse *resp = NULL;
  Novacron__V1__GetVmRequest get = NOVACRON__V1__GET_VM_REQUEST__INIT;
  Novacron__V1__GetVmResponse *got = NULL;
  char request_id[NC_UUID_LEN + 1];
  nc_error err;
  assert_int_equal(nc_new_request_id(request_id, sizeof(request_id)), NC_OK);
  req.name = (char *)name;
  req.request_id = request_id;
  req.force = true; /* whatever state a failed test left it in */
  nc_status st = nc_vm_delete(admin, &req, &resp, NULL, &err);
  CHECK_OK(st, err, "DeleteVm");
  Novacron__V1__Vm *last = wait_vm(resp->operation, 0);
  assert_string_equal(last->name, name);
  nc_message_free(&last->base);
  nc_message_free(&resp->base);
  get.name = (char *)name;
  assert_int_equal(nc_vm_get(admin, &get, &got, NULL, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_NOT_FOUND);
}

/* ---- tests ---- */

/* The server registers hosts/default on test:///default at its first start. */
static void test_default_host(void **state) {
  Novacron__V1__ListHostsRequest list = NOVACRON__V1__LIST_HOSTS_REQUEST__INIT;
  Novacron__V1__ListHostsResponse *hosts = NULL;
  Novacron__V1__GetHostRequest get = NOVACRON__V1__GET_HOST_REQUEST__INIT;
  Novacron__V1__GetHostResponse *host = NULL;
  nc_error err;
  bool found = false;

  nc_status st = nc_host_list(admin, &list, &hosts, NULL, &err);
  CHECK_OK(st, err, "ListHosts");
  for (size_t i = 0; i < hosts->n_hosts; i++)
    found = found || strcmp(hosts->hosts[i]->name, "hosts/default") == 0;
  assert_true(found);
  nc_message_free(&hosts->base);

  /* registration may still be probing right after the start */
  get.name = "hosts/default";
  for (int i = 0; i < 300; i++) {
    st = nc_host_get(admin, &get, &host, NULL, &err);
    CHECK_OK(st, err, "GetHost");
    if (host->host->state == NOVACRON__V1__HOST__STATE__STATE_READY) break;
    nc_message_free(&host->base);
    host = NULL;
    usleep(100000);
  }
  assert_non_null(host);
  assert_string_equal(host->host->name, "hosts/default");
  assert_string_equal(host->host->uri, "test:///default"); /* shown to administrators */
  assert_true(host->host->cpu_count > 0);
  assert_true(host->host->memory_mib > 0);
  nc_message_free(&host->base);

  /* a wrong-type request never reaches the server */
  assert_int_equal(nc_host_get(admin, (const void *)&list, &host, NULL, &err),
                   NC_ERR_INVALID_ARGUMENT);
}

/* validate_only answers with a done operation carrying the would-be VM. */
static void test_create_validate_only(void **state) {
  Novacron__V1__CreateVmRequest req = NOVACRON__V1__CREATE_VM_REQUEST__INIT;
  Novacron__V1__Vm vm = NOVACRON__V1__VM__INIT;
  Novacron__V1__CreateVmResponse *resp = NULL;
  Novacron__V1__GetVmRequest get = NOVACRON__V1__GET_VM_REQUEST__INIT;
  Novacron__V1__GetVmResponse *got = NULL;
  ProtobufCMessage *result = NULL;
  char id[32];
  char name[128];
  nc_error err;
  unique_id("itv", id, sizeof(id));
  vm.vcpus = 1;
  vm.memory_mib = 128;
  req.parent = PROJECT;
  req.vm_id = id;
  req.vm = &vm;
  req.validate_only = true;
  nc_status st = nc_vm_create(admin, &req, &resp, NULL, &err);
  CHECK_OK(st, err, "CreateVm validate_only");
  assert_non_null(resp->operation);
  assert_true(resp->operation->done);
  st = nc_operation_result(resp->operation, &novacron__v1__vm__descriptor, &result, &err);
  CHECK_OK(st, err, "validate_only result");
  assert_int_equal(((Novacron__V1__Vm *)result)->vcpus, 1);
  assert_int_equal(((Novacron__V1__Vm *)result)->memory_mib, 128);
  nc_message_free(result);
  nc_message_free(&resp->base);
  snprintf(name, sizeof(name), PROJECT "/vms/%s", id);
  get.name = name;
  assert_int_equal(nc_vm_get(admin, &get, &got, NULL, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_NOT_FOUND);

  /* a bad request is refused before any operation exists */
  vm.vcpus = 0;
  req.validate_only = false;
  assert_int_equal(nc_vm_create(admin, &req, &resp, NULL, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_INVALID_ARGUMENT);
  assert_non_null(strstr(err.message, "vcpus"));
}

static void test_vm_lifecycle(void **state) {
  Novacron__V1__CreateVmRequest req = NOVACRON__V1__CREATE_VM_REQUEST__INIT;
  Novacron__V1__Vm vm = NOVACRON__V1__VM__INIT;
  Novacron__V1__CreateVmResponse *first = NULL;
  Novacron__V1__CreateVmResponse *again = NULL;
  Novacron__V1__Operation *op = NULL;
  char request_id[NC_UUID_LEN + 1];
  char id[32];
  char name[128];
  nc_error err;

  unique_id("itl", id, sizeof(id));
  snprintf(name, sizeof(name), PROJECT "/vms/%s", id);
  assert_int_equal(nc_new_request_id(request_id, sizeof(request_id)), NC_OK);
  vm.vcpus = 1;
  vm.memory_mib = 128;
  req.parent = PROJECT;
  req.vm_id = id;
  req.vm = &vm;
  req.request_id = request_id;
  nc_status st = nc_vm_create(admin, &req, &first, NULL, &err);
  CHECK_OK(st, err, "CreateVm");
  assert_non_null(first->operation);
  assert_string_equal(first->operation->verb, "novacron.v1.VmService.CreateVm");
  assert_string_equal(first->operation->target, name);
  /* the same request id: the same operation, nothing created twice */
  st = nc_vm_create(admin, &req, &again, NULL, &err);
  CHECK_OK(st, err, "CreateVm retried");
  assert_string_equal(again->operation->name, first->operation->name);
  nc_message_free(&again->base);

  Novacron__V1__Vm *created = wait_vm(first->operation, NOVACRON__V1__VM__STATE__STATE_STOPPED);
  assert_string_equal(created->name, name);
  assert_int_equal(created->vcpus, 1);
  assert_int_equal(created->memory_mib, 128);
  assert_string_equal(created->host, "hosts/default");
  assert_true(created->uid[0] != '\0');
  assert_true(created->etag[0] != '\0');
  nc_message_free(&created->base);
  assert_int_equal(vm_state(name), NOVACRON__V1__VM__STATE__STATE_STOPPED);

  /* a new request id for a taken vm_id: ALREADY_EXISTS */
  assert_int_equal(nc_new_request_id(request_id, sizeof(request_id)), NC_OK);
  assert_int_equal(nc_vm_create(admin, &req, &again, NULL, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_ALREADY_EXISTS);

  /* pausing a stopped VM: FAILED_PRECONDITION naming the state, no operation */
  assert_int_equal(power(POWER_PAUSE, name, &op, &err), NC_ERR_RPC);
  assert_null(op);
  assert_int_equal(err.code, NC_GRPC_FAILED_PRECONDITION);
  if (!strstr(err.message, "STOPPED"))
    fail_msg("the message does not name the state: %s", err.message);

  power_ok(POWER_START, name, NOVACRON__V1__VM__STATE__STATE_RUNNING);
  power_ok(POWER_PAUSE, name, NOVACRON__V1__VM__STATE__STATE_PAUSED);
  power_ok(POWER_RESUME, name, NOVACRON__V1__VM__STATE__STATE_RUNNING);
  power_ok(POWER_STOP, name, NOVACRON__V1__VM__STATE__STATE_STOPPED);

  /* a finished operation: read again, waited for at once, listed, not cancellable any more */
  Novacron__V1__GetOperationRequest get = NOVACRON__V1__GET_OPERATION_REQUEST__INIT;
  Novacron__V1__GetOperationResponse *got = NULL;
  get.name = first->operation->name;
  st = nc_operation_get(admin, &get, &got, NULL, &err);
  CHECK_OK(st, err, "GetOperation");
  assert_true(got->operation->done);
  assert_int_equal(got->operation->state, NOVACRON__V1__OPERATION__STATE__STATE_SUCCEEDED);
  assert_int_equal(got->operation->result_case, NOVACRON__V1__OPERATION__RESULT_RESPONSE);
  nc_message_free(&got->base);
  st = nc_operation_wait(admin, first->operation->name, 0, 0, &op, &err);
  CHECK_OK(st, err, "nc_operation_wait(0)");
  assert_true(op->done);
  nc_message_free(&op->base);

  Novacron__V1__CancelOperationRequest cancel = NOVACRON__V1__CANCEL_OPERATION_REQUEST__INIT;
  Novacron__V1__CancelOperationResponse *cancelled = NULL;
  assert_int_equal(nc_new_request_id(request_id, sizeof(request_id)), NC_OK);
  cancel.name = first->operation->name;
  cancel.request_id = request_id;
  st = nc_operation_cancel(admin, &cancel, &cancelled, NULL, &err);
  CHECK_OK(st, err, "CancelOperation");
  assert_int_equal(cancelled->operation->state, NOVACRON__V1__OPERATION__STATE__STATE_SUCCEEDED);
  nc_message_free(&cancelled->base);

  Novacron__V1__ListOperationsRequest list = NOVACRON__V1__LIST_OPERATIONS_REQUEST__INIT;
  Novacron__V1__ListOperationsResponse *ops = NULL;
  bool listed = false;
  list.parent = PROJECT;
  list.page_size = 500;
  st = nc_operation_list(admin, &list, &ops, NULL, &err);
  CHECK_OK(st, err, "ListOperations");
  for (size_t i = 0; i < ops->n_operations; i++)
    listed = listed || strcmp(ops->operations[i]->name, first->operation->name) == 0;
  assert_true(listed);
  nc_message_free(&ops->base);
  nc_message_free(&first->base);

  delete_vm(name);
}

/* ListVms pages through VMs carrying this test's label. */
static void test_list_paging(void **state) {
  Novacron__V1__Label label = NOVACRON__V1__LABEL__INIT;
  char suite[32];
  char names[3][128];
  char filter[128];
  unique_id("page", suite, sizeof(suite));
  label.key = "suite";
  label.value = suite;
  for (int i = 0; i < 3; i++) {
    char id[48];
    snprintf(id, sizeof(id), "%s-%d", suite, i);
    create_vm(id, &label, names[i], sizeof(names[i]));
  }

  Novacron__V1__ListVmsRequest req = NOVACRON__V1__LIST_VMS_REQUEST__INIT;
  Novacron__V1__ListVmsResponse *page = NULL;
  nc_error err;
  snprintf(filter, sizeof(filter), "labels.suite = \"%s\"", suite);
  req.parent = PROJECT;
  req.filter = filter;
  req.page_size = 2;
  nc_status st = nc_vm_list(admin, &req, &page, NULL, &err);
  CHECK_OK(st, err, "ListVms page 1");
  assert_int_equal(page->n_vms, 2);
  assert_int_equal(page->total_size, 3);
  assert_true(page->next_page_token[0] != '\0');
  /* name order by default */
  assert_string_equal(page->vms[0]->name, names[0]);
  assert_string_equal(page->vms[1]->name, names[1]);
  char *token = strdup(page->next_page_token);
  nc_message_free(&page->base);
  req.page_token = token;
  st = nc_vm_list(admin, &req, &page, NULL, &err);
  CHECK_OK(st, err, "ListVms page 2");
  assert_int_equal(page->n_vms, 1);
  assert_string_equal(page->vms[0]->name, names[2]);
  assert_string_equal(page->next_page_token, "");
  nc_message_free(&page->base);
  free(token);

  /* a page token with another filter is refused */
  req.filter = "";
  req.page_token = "not-a-token";
  assert_int_equal(nc_vm_list(admin, &req, &page, NULL, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_INVALID_ARGUMENT);

  for (int i = 0; i < 3; i++)
    delete_vm(names[i]);
}

/* Reads the watch until an event about `name` with a Vm payload in state
 * `want` arrives (other state changes are skipped; heartbeats too when the
 * watch returns them); fails after 60 s. */
static void expect_state_event(nc_event_watch *w, bool heartbeats, const char *name, int want,
                               const char *source_operation) {
  time_t until = time(NULL) + 60;
  while (time(NULL) < until) {
    Novacron__V1__Event *e = NULL;
    nc_error err;
    nc_status st = nc_event_watch_next(w, &e, 1000, &err);
    if (st == NC_ERR_RPC && err.code == NC_GRPC_DEADLINE_EXCEEDED && !nc_event_watch_ended(w))
      continue;
    CHECK_OK(st, err, "nc_event_watch_next");
    if (e->type == NOVACRON__V1__EVENT__TYPE__TYPE_HEARTBEAT) {
      assert_true(heartbeats); /* otherwise the watch keeps them */
      nc_message_free(&e->base);
      continue;
    }
    assert_int_equal(e->type, NOVACRON__V1__EVENT__TYPE__TYPE_VM_STATE_CHANGED); /* filtered */
    assert_string_equal(e->resource, name);
    assert_string_equal(e->resource_type, "novacron.v1.Vm");
    assert_string_equal(e->project, PROJECT);
    assert_int_equal(e->payload_case, NOVACRON__V1__EVENT__PAYLOAD_VM);
    assert_true(e->sequence > 0);
    assert_int_equal(nc_event_watch_last_sequence(w), e->sequence);
    bool match = (int)e->vm->state == want;
    if (match && source_operation) assert_string_equal(e->source_operation, source_operation);
    nc_message_free(&e->base);
    if (match) return;
  }
  fail_msg("no TYPE_VM_STATE_CHANGED to %s for %s within 60 s", vm_state_name(want), name);
}

static void test_events_follow_vm(void **state) {
  Novacron__V1__WatchEventsRequest req = NOVACRON__V1__WATCH_EVENTS_REQUEST__INIT;
  Novacron__V1__Event__Type types[] = {NOVACRON__V1__EVENT__TYPE__TYPE_VM_STATE_CHANGED};
  char *resources[1];
  char id[32];
  char name[128];
  nc_event_watch *w = NULL;
  Novacron__V1__Event *e = NULL;
  Novacron__V1__Operation *op = NULL;
  nc_error err;

  unique_id("ite", id, sizeof(id));
  create_vm(id, NULL, name, sizeof(name));

  /* live events only; the first heartbeat names the head and shows the
   * stream is subscribed */
  resources[0] = name;
  req.parent = PROJECT;
  req.types = types;
  req.n_types = 1;
  req.resources = resources;
  req.n_resources = 1;
  nc_status st = nc_event_watch_open(admin, &req, NC_WATCH_HEARTBEATS, &w, NULL, &err);
  CHECK_OK(st, err, "nc_event_watch_open");
  st = nc_event_watch_next(w, &e, 30000, &err);
  CHECK_OK(st, err, "first heartbeat");
  assert_int_equal(e->type, NOVACRON__V1__EVENT__TYPE__TYPE_HEARTBEAT);
  int64_t head = e->sequence;
  assert_int_equal(nc_event_watch_last_sequence(w), head);
  nc_message_free(&e->base);

  /* StartVm: its state changes arrive as they happen */
  st = power(POWER_START, name, &op, &err);
  CHECK_OK(st, err, "StartVm");
  expect_state_event(w, true, name, NOVACRON__V1__VM__STATE__STATE_RUNNING, op->name);
  Novacron__V1__Vm *vm = wait_vm(op, NOVACRON__V1__VM__STATE__STATE_RUNNING);
  nc_message_free(&vm->base);
  nc_message_free(&op->base);

  /* the stream is cut; the VM changes meanwhile; resuming replays it */
  int64_t seen = nc_event_watch_last_sequence(w);
  assert_true(seen > head);
  nc_event_watch_cancel(w);
  st = nc_event_watch_next(w, &e, 10000, &err);
  assert_int_equal(st, NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_CANCELLED);
  assert_true(nc_event_watch_ended(w));
  power_ok(POWER_PAUSE, name, NOVACRON__V1__VM__STATE__STATE_PAUSED);
  st = nc_event_watch_resume(w, &err);
  CHECK_OK(st, err, "nc_event_watch_resume");
  assert_false(nc_event_watch_ended(w));
  expect_state_event(w, true, name, NOVACRON__V1__VM__STATE__STATE_PAUSED, NULL);
  assert_true(nc_event_watch_last_sequence(w) > seen);
  nc_event_watch_free(w);

  /* opened after the head seen first: the whole story is replayed, without
   * heartbeats */
  req.after_sequence = head;
  st = nc_event_watch_open(admin, &req, 0, &w, NULL, &err);
  CHECK_OK(st, err, "nc_event_watch_open");
  assert_int_equal(nc_event_watch_last_sequence(w), head);
  expect_state_event(w, false, name, NOVACRON__V1__VM__STATE__STATE_RUNNING, NULL);
  expect_state_event(w, false, name, NOVACRON__V1__VM__STATE__STATE_PAUSED, NULL);
  nc_event_watch_free(w);

  /* a sequence past the head: OUT_OF_RANGE, reported once */
  req.after_sequence = seen + 1000000000;
  st = nc_event_watch_open(admin, &req, 0, &w, NULL, &err);
  CHECK_OK(st, err, "nc_event_watch_open");
  st = nc_event_watch_next(w, &e, 30000, &err);
  assert_int_equal(st, NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_OUT_OF_RANGE);
  assert_true(nc_event_watch_ended(w));
  assert_int_equal(nc_event_watch_next(w, &e, 1000, &err), NC_ERR_CLOSED);
  nc_event_watch_free(w);

  /* a filter the server rejects */
  Novacron__V1__Event__Type bad[] = {NOVACRON__V1__EVENT__TYPE__TYPE_UNSPECIFIED};
  req.after_sequence = 0;
  req.types = bad;
  st = nc_event_watch_open(admin, &req, 0, &w, NULL, &err);
  CHECK_OK(st, err, "nc_event_watch_open");
  assert_int_equal(nc_event_watch_next(w, &e, 30000, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_INVALID_ARGUMENT);
  nc_event_watch_free(w);

  delete_vm(name);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_default_host),     cmocka_unit_test(test_create_validate_only),
      cmocka_unit_test(test_vm_lifecycle),     cmocka_unit_test(test_list_paging),
      cmocka_unit_test(test_events_follow_vm),
  };
  return cmocka_run_group_tests(tests, start_server, stop_server);
}
