/*
 * test_sdk_storage.c - libnovacron's StorageService and NetworkService
 * wrappers (include/novacron/storage.h, network.h).
 *
 * Without arguments (unit.sdk_storage) it needs no server: every wrapper
 * refuses a request of the wrong message type, and bad handles, before any
 * call. With the argument "server" (integration.sdk_storage) it drives a
 * real novacron-server (TLS, its own database on the fixture's PostgreSQL,
 * the embedded host `hosts/default` on test:///default) as the bootstrap
 * administrator in project `default`, through every wrapper and
 * nc_operation_wait: a dir pool (create, idempotent retry, get, list,
 * refused while volumes remain, delete); volumes (create, get, list, grow,
 * refused and allowed shrink, clone, copy from a volume, stale etag,
 * delete with wipe); a NAT network (create with a reservation, get, list,
 * update by mask, reserve, unreserve, leases, delete); a VM whose disk is
 * one of the volumes and whose NIC is on the network (attached state,
 * deletes refused while in use, detach); and the error mapping
 * (NOT_FOUND, ALREADY_EXISTS, INVALID_ARGUMENT naming the field).
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
#include <unistd.h>

#include "harness.h"
#include "novacron/network.h"
#include "novacron/storage.h"

#define WAIT_MS 120000 /* an operation on the test driver takes far less */
#define PROJECT "projects/default"
#define HOST "hosts/default"
#define MIB ((int64_t)1048576)

/* ================= without a server ================= */

/* A client of a port nothing listens on (plaintext, so failures are quick). */
static nc_client *offline_client(void) {
  char target[64];
  nc_options *opts = NULL;
  nc_client *client = NULL;
  nc_error err;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
  socklen_t alen = sizeof(addr);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &alen), 0);
  snprintf(target, sizeof(target), "127.0.0.1:%u", (unsigned)ntohs(addr.sin_port));
  close(fd);
  assert_int_equal(nc_options_new(&opts), NC_OK);
  assert_int_equal(nc_options_set_target(opts, target), NC_OK);
  assert_int_equal(nc_options_set_insecure(opts, true), NC_OK);
  assert_int_equal(nc_options_set_default_deadline_ms(opts, 2000), NC_OK);
  assert_int_equal(nc_client_new(opts, &client, &err), NC_OK);
  nc_options_free(opts);
  return client;
}

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

  EXPECT_WRONG_TYPE(nc_pool_create, Novacron__V1__CreatePoolResponse,
                    "novacron.v1.StorageService/CreatePool");
  EXPECT_WRONG_TYPE(nc_pool_get, Novacron__V1__GetPoolResponse, "GetPool");
  EXPECT_WRONG_TYPE(nc_pool_list, Novacron__V1__ListPoolsResponse, "ListPools");
  EXPECT_WRONG_TYPE(nc_pool_delete, Novacron__V1__DeletePoolResponse, "DeletePool");
  EXPECT_WRONG_TYPE(nc_volume_create, Novacron__V1__CreateVolumeResponse, "CreateVolume");
  EXPECT_WRONG_TYPE(nc_volume_get, Novacron__V1__GetVolumeResponse, "GetVolume");
  EXPECT_WRONG_TYPE(nc_volume_list, Novacron__V1__ListVolumesResponse, "ListVolumes");
  EXPECT_WRONG_TYPE(nc_volume_resize, Novacron__V1__ResizeVolumeResponse, "ResizeVolume");
  EXPECT_WRONG_TYPE(nc_volume_clone, Novacron__V1__CloneVolumeResponse, "CloneVolume");
  EXPECT_WRONG_TYPE(nc_volume_delete, Novacron__V1__DeleteVolumeResponse, "DeleteVolume");

  EXPECT_WRONG_TYPE(nc_network_create, Novacron__V1__CreateNetworkResponse,
                    "novacron.v1.NetworkService/CreateNetwork");
  EXPECT_WRONG_TYPE(nc_network_get, Novacron__V1__GetNetworkResponse, "GetNetwork");
  EXPECT_WRONG_TYPE(nc_network_list, Novacron__V1__ListNetworksResponse, "ListNetworks");
  EXPECT_WRONG_TYPE(nc_network_update, Novacron__V1__UpdateNetworkResponse, "UpdateNetwork");
  EXPECT_WRONG_TYPE(nc_network_delete, Novacron__V1__DeleteNetworkResponse, "DeleteNetwork");
  EXPECT_WRONG_TYPE(nc_network_list_leases, Novacron__V1__ListLeasesResponse, "ListLeases");
  EXPECT_WRONG_TYPE(nc_network_add_reservation, Novacron__V1__AddReservationResponse,
                    "AddReservation");
  EXPECT_WRONG_TYPE(nc_network_remove_reservation, Novacron__V1__RemoveReservationResponse,
                    "RemoveReservation");
  nc_client_free(client);
}

static void test_wrappers_bad_arguments(void **state) {
  Novacron__V1__GetVolumeRequest req = NOVACRON__V1__GET_VOLUME_REQUEST__INIT;
  Novacron__V1__GetVolumeResponse *resp = (Novacron__V1__GetVolumeResponse *)&req;
  Novacron__V1__GetNetworkRequest nreq = NOVACRON__V1__GET_NETWORK_REQUEST__INIT;
  Novacron__V1__GetNetworkResponse *nresp = (Novacron__V1__GetNetworkResponse *)&nreq;
  nc_error err;
  req.name = PROJECT "/volumes/data-1";
  nreq.name = PROJECT "/networks/lan";
  /* no client, no request, no output: refused locally, never a crash */
  assert_int_equal(nc_volume_get(NULL, &req, &resp, NULL, &err), NC_ERR_INVALID_ARGUMENT);
  assert_null(resp);
  assert_non_null(strstr(err.message, "client"));
  assert_int_equal(nc_network_get(NULL, &nreq, &nresp, NULL, &err), NC_ERR_INVALID_ARGUMENT);
  assert_null(nresp);
  nc_client *client = offline_client();
  assert_int_equal(nc_volume_get(client, NULL, &resp, NULL, &err), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_volume_get(client, &req, NULL, NULL, NULL), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_network_get(client, NULL, &nresp, NULL, &err), NC_ERR_INVALID_ARGUMENT);
  nc_call_options bad = {.deadline_ms = 0, .request_id = "bad\nid"};
  assert_int_equal(nc_network_get(client, &nreq, &nresp, &bad, &err), NC_ERR_INVALID_ARGUMENT);
  /* a good request to nobody: the transport's failure as an RPC error */
  assert_int_equal(nc_volume_get(client, &req, &resp, NULL, &err), NC_ERR_RPC);
  assert_true(err.code == NC_GRPC_UNAVAILABLE || err.code == NC_GRPC_DEADLINE_EXCEEDED);
  assert_null(resp);
  nc_client_free(client);
}

/* ================= against the server ================= */

static harness_server server;
static nc_client *admin;
static char suffix[16]; /* makes this run's ids unique */
static char pool_name[128];
static char network_name[128];
static char volume_a[128]; /* lives until the VM test is done with it */

static int start_server(void **state) {
  static const char *const args[] = {"--rate-limit-rps", "0", "--rate-limit-anonymous-rps", "0",
                                     NULL};
  harness_options opts = {.insecure = false, .mtls = false, .extra_args = args};
  char ca[512];
  nc_options *o = NULL;
  nc_error err;
  char uuid[NC_UUID_LEN + 1];
  if (harness_server_start(&server, &opts) != 0) return -1;
  if (!harness_cert_path("ca.crt", ca, sizeof(ca)) || nc_options_new(&o) != NC_OK ||
      nc_options_set_target(o, server.address) != NC_OK ||
      nc_options_set_tls_ca_file(o, ca) != NC_OK || nc_client_new(o, &admin, &err) != NC_OK) {
    nc_options_free(o);
    return -1;
  }
  nc_options_free(o);
  nc_status st = nc_client_login(admin, "admin", harness_admin_password(), &err);
  if (st != NC_OK) {
    fprintf(stderr, "login: %s: %s\n", nc_strerror(st), err.message);
    return -1;
  }
  nc_new_request_id(uuid, sizeof(uuid));
  snprintf(suffix, sizeof(suffix), "%.8s", uuid);
  return 0;
}

static int stop_server(void **state) {
  nc_client_free(admin);
  return harness_server_stop(&server, 15000) == 0 ? 0 : -1;
}

/* ---- helpers ---- */

/* Fails the test with the call's error. */
#define CHECK_OK(st, err, what)                                                        \
  do {                                                                                 \
    if ((st) != NC_OK)                                                                 \
      fail_msg("%s: %s: %s: %s", what, nc_strerror(st), nc_grpc_code_name((err).code), \
               (err).message);                                                         \
  } while (0)

/* A call that must fail with the gRPC `code`, its message containing `needle` (unless NULL). */
static void expect_rpc(nc_status st, const nc_error *err, int code, const char *needle,
                       const char *what) {
  if (st != NC_ERR_RPC)
    fail_msg("%s: expected %s, got status %s", what, nc_grpc_code_name(code), nc_strerror(st));
  if (err->code != code)
    fail_msg("%s: expected %s, got %s: %s", what, nc_grpc_code_name(code),
             nc_grpc_code_name(err->code), err->message);
  if (needle && !strstr(err->message, needle))
    fail_msg("%s: the %s message does not name \"%s\": %s", what, nc_grpc_code_name(code), needle,
             err->message);
}

static void new_request_id(char buf[NC_UUID_LEN + 1]) {
  assert_int_equal(nc_new_request_id(buf, NC_UUID_LEN + 1), NC_OK);
}

/* The `operation` of an operation-returning response (still owned by it). */
static const Novacron__V1__Operation *operation_of(const ProtobufCMessage *resp) {
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field_by_name(resp->descriptor, "operation");
  assert_non_null(f);
  return *(Novacron__V1__Operation *const *)((const char *)resp + f->offset);
}

/* Finishes a call that answered with an Operation: checks the call
 * succeeded, waits for the operation and returns its `type` result (free
 * it with nc_message_free); the response is freed. */
static ProtobufCMessage *finish(nc_status st, const nc_error *call_err, ProtobufCMessage *resp,
                                const ProtobufCMessageDescriptor *type, const char *what) {
  Novacron__V1__Operation *done = NULL;
  ProtobufCMessage *result = NULL;
  nc_error err;
  CHECK_OK(st, *call_err, what);
  const Novacron__V1__Operation *op = operation_of(resp);
  assert_non_null(op);
  assert_true(op->name[0] != '\0');
  st = nc_operation_wait(admin, op->name, WAIT_MS, 0, &done, &err);
  CHECK_OK(st, err, op->name);
  assert_true(done->done);
  st = nc_operation_result(done, type, &result, &err);
  if (st != NC_OK)
    fail_msg("%s: operation %s (%s) failed: %s: %s", what, done->name, done->verb,
             nc_grpc_code_name(err.code), err.message);
  assert_int_equal(done->state, NOVACRON__V1__OPERATION__STATE__STATE_SUCCEEDED);
  nc_message_free(&done->base);
  nc_message_free(resp);
  return result;
}

/* A change that must be refused with `code` (message containing `needle`):
 * either by the call itself, or by the Operation it started, which then
 * ends failed with that status. The response (if any) is freed. */
static void expect_refused(nc_status st, const nc_error *call_err, ProtobufCMessage *resp, int code,
                           const char *needle, const char *what) {
  Novacron__V1__Operation *done = NULL;
  nc_error err;
  if (st != NC_OK) {
    expect_rpc(st, call_err, code, needle, what);
    return;
  }
  st = nc_operation_wait(admin, operation_of(resp)->name, WAIT_MS, 0, &done, &err);
  CHECK_OK(st, err, what);
  assert_int_equal(done->state, NOVACRON__V1__OPERATION__STATE__STATE_FAILED);
  st = nc_operation_result(done, NULL, NULL, &err);
  expect_rpc(st, &err, code, needle, what);
  nc_message_free(&done->base);
  nc_message_free(resp);
}

#define POOL_T &novacron__v1__pool__descriptor
#define VOLUME_T &novacron__v1__volume__descriptor
#define NETWORK_T &novacron__v1__network__descriptor
#define VM_T &novacron__v1__vm__descriptor

static Novacron__V1__Volume *get_volume(const char *name) {
  Novacron__V1__GetVolumeRequest req = NOVACRON__V1__GET_VOLUME_REQUEST__INIT;
  Novacron__V1__GetVolumeResponse *resp = NULL;
  nc_error err;
  req.name = (char *)name;
  nc_status st = nc_volume_get(admin, &req, &resp, NULL, &err);
  CHECK_OK(st, err, name);
  assert_non_null(resp->volume);
  Novacron__V1__Volume *v = resp->volume;
  resp->volume = NULL;
  nc_message_free(&resp->base);
  assert_string_equal(v->name, name);
  return v;
}

static Novacron__V1__Network *get_network(const char *name) {
  Novacron__V1__GetNetworkRequest req = NOVACRON__V1__GET_NETWORK_REQUEST__INIT;
  Novacron__V1__GetNetworkResponse *resp = NULL;
  nc_error err;
  req.name = (char *)name;
  nc_status st = nc_network_get(admin, &req, &resp, NULL, &err);
  CHECK_OK(st, err, name);
  assert_non_null(resp->network);
  Novacron__V1__Network *n = resp->network;
  resp->network = NULL;
  nc_message_free(&resp->base);
  assert_string_equal(n->name, name);
  return n;
}

/* CreateVolume in the test pool; returns the Volume (free it). size 0 with a source. */
static Novacron__V1__Volume *create_volume(const char *id, int64_t size, const char *from) {
  Novacron__V1__CreateVolumeRequest req = NOVACRON__V1__CREATE_VOLUME_REQUEST__INIT;
  Novacron__V1__Volume v = NOVACRON__V1__VOLUME__INIT;
  Novacron__V1__CreateVolumeResponse *resp = NULL;
  char request_id[NC_UUID_LEN + 1];
  nc_error err;
  new_request_id(request_id);
  v.pool = pool_name;
  v.size_bytes = size;
  if (from) {
    v.source_case = NOVACRON__V1__VOLUME__SOURCE_SOURCE_VOLUME;
    v.source_volume = (char *)from;
  }
  req.parent = PROJECT;
  req.volume_id = (char *)id;
  req.volume = &v;
  req.request_id = request_id;
  nc_status st = nc_volume_create(admin, &req, &resp, NULL, &err);
  return (Novacron__V1__Volume *)finish(st, &err, resp ? &resp->base : NULL, VOLUME_T,
                                        "CreateVolume");
}

/* DeleteVolume (optionally wiping) and checks it is gone. */
static void delete_volume(const char *name, bool wipe) {
  Novacron__V1__DeleteVolumeRequest req = NOVACRON__V1__DELETE_VOLUME_REQUEST__INIT;
  Novacron__V1__DeleteVolumeResponse *resp = NULL;
  Novacron__V1__GetVolumeRequest get = NOVACRON__V1__GET_VOLUME_REQUEST__INIT;
  Novacron__V1__GetVolumeResponse *got = NULL;
  char request_id[NC_UUID_LEN + 1];
  nc_error err;
  new_request_id(request_id);
  req.name = (char *)name;
  req.wipe = wipe;
  req.request_id = request_id;
  nc_status st = nc_volume_delete(admin, &req, &resp, NULL, &err);
  Novacron__V1__Volume *last =
      (Novacron__V1__Volume *)finish(st, &err, resp ? &resp->base : NULL, VOLUME_T, "DeleteVolume");
  assert_string_equal(last->name, name);
  nc_message_free(&last->base);
  get.name = (char *)name;
  st = nc_volume_get(admin, &get, &got, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_NOT_FOUND, NULL, "GetVolume after delete");
  assert_null(got);
}

/* ---- pools ---- */

static void test_pool_create_get_list(void **state) {
  Novacron__V1__CreatePoolRequest req = NOVACRON__V1__CREATE_POOL_REQUEST__INIT;
  Novacron__V1__Pool pool = NOVACRON__V1__POOL__INIT;
  Novacron__V1__Label label = NOVACRON__V1__LABEL__INIT;
  Novacron__V1__Label *labels[] = {&label};
  Novacron__V1__CreatePoolResponse *first = NULL, *again = NULL;
  char request_id[NC_UUID_LEN + 1];
  char pool_id[32];
  char target[64];
  nc_error err;

  snprintf(pool_id, sizeof(pool_id), "sdkst-%s", suffix);
  snprintf(target, sizeof(target), "/var/lib/novacron/test-%s", pool_id);
  snprintf(pool_name, sizeof(pool_name), HOST "/pools/%s", pool_id);
  new_request_id(request_id);
  label.key = "suite";
  label.value = "sdk-storage";
  pool.type = NOVACRON__V1__POOL__TYPE__TYPE_DIR;
  pool.target_path = target;
  pool.autostart = true;
  pool.description = "from test_sdk_storage";
  pool.labels = labels;
  pool.n_labels = 1;
  req.parent = HOST;
  req.pool_id = pool_id;
  req.pool = &pool;
  req.request_id = request_id;
  nc_status st = nc_pool_create(admin, &req, &first, NULL, &err);
  CHECK_OK(st, err, "CreatePool");
  assert_non_null(first->operation);
  assert_string_equal(first->operation->target, pool_name);
  assert_non_null(strstr(first->operation->verb, "StorageService.CreatePool"));
  /* the same request id: the same operation */
  st = nc_pool_create(admin, &req, &again, NULL, &err);
  CHECK_OK(st, err, "CreatePool retried");
  assert_string_equal(again->operation->name, first->operation->name);
  nc_message_free(&again->base);
  Novacron__V1__Pool *created =
      (Novacron__V1__Pool *)finish(st, &err, &first->base, POOL_T, "CreatePool");
  assert_string_equal(created->name, pool_name);
  assert_int_equal(created->type, NOVACRON__V1__POOL__TYPE__TYPE_DIR);
  assert_int_equal(created->state, NOVACRON__V1__POOL__STATE__STATE_ACTIVE);
  assert_string_equal(created->target_path, target);
  assert_true(created->autostart);
  assert_string_equal(created->description, "from test_sdk_storage");
  assert_int_equal(created->n_labels, 1);
  assert_true(created->uid[0] && created->etag[0]);
  nc_message_free(&created->base);

  /* a new request id for a taken pool id */
  new_request_id(request_id);
  st = nc_pool_create(admin, &req, &again, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_ALREADY_EXISTS, NULL, "CreatePool twice");

  /* get: capacity figures from the host */
  Novacron__V1__GetPoolRequest get = NOVACRON__V1__GET_POOL_REQUEST__INIT;
  Novacron__V1__GetPoolResponse *got = NULL;
  get.name = pool_name;
  st = nc_pool_get(admin, &get, &got, NULL, &err);
  CHECK_OK(st, err, "GetPool");
  assert_string_equal(got->pool->name, pool_name);
  assert_int_equal(got->pool->state, NOVACRON__V1__POOL__STATE__STATE_ACTIVE);
  assert_true(got->pool->capacity_bytes > 0);
  assert_true(got->pool->available_bytes > 0);
  assert_true(got->pool->available_bytes <= got->pool->capacity_bytes);
  nc_message_free(&got->base);

  /* list: the host's pools and every host's */
  const char *parents[] = {HOST, "hosts/-"};
  for (size_t p = 0; p < 2; p++) {
    Novacron__V1__ListPoolsRequest list = NOVACRON__V1__LIST_POOLS_REQUEST__INIT;
    Novacron__V1__ListPoolsResponse *pools = NULL;
    bool found = false;
    list.parent = (char *)parents[p];
    list.filter = "labels.suite = \"sdk-storage\"";
    st = nc_pool_list(admin, &list, &pools, NULL, &err);
    CHECK_OK(st, err, parents[p]);
    for (size_t i = 0; i < pools->n_pools; i++)
      found = found || strcmp(pools->pools[i]->name, pool_name) == 0;
    if (!found) fail_msg("ListPools %s: %s missing", parents[p], pool_name);
    assert_true(pools->total_size >= 1);
    nc_message_free(&pools->base);
  }

  /* errors: unknown pool, unknown host, a field that does not fit the type */
  get.name = HOST "/pools/no-such-pool";
  st = nc_pool_get(admin, &get, &got, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_NOT_FOUND, NULL, "GetPool unknown");
  assert_null(got);
  Novacron__V1__CreatePoolResponse *bad = NULL;
  new_request_id(request_id);
  req.parent = "hosts/no-such-host";
  req.pool_id = "other";
  st = nc_pool_create(admin, &req, &bad, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_NOT_FOUND, NULL, "CreatePool on an unknown host");
  new_request_id(request_id);
  req.parent = HOST;
  pool.target_path = "";
  st = nc_pool_create(admin, &req, &bad, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_INVALID_ARGUMENT, "target_path", "CreatePool without target_path");
  new_request_id(request_id);
  pool.target_path = target;
  pool.type = NOVACRON__V1__POOL__TYPE__TYPE_UNSPECIFIED;
  st = nc_pool_create(admin, &req, &bad, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_INVALID_ARGUMENT, "type", "CreatePool without type");
  assert_null(bad);
}

/* ---- volumes ---- */

static void test_volumes(void **state) {
  char id[32], name_b[128], name_c[128];
  nc_error err;
  nc_status st;
  char request_id[NC_UUID_LEN + 1];

  /* A: blank, 64 MiB, qcow2 by default */
  snprintf(id, sizeof(id), "vol-a-%s", suffix);
  snprintf(volume_a, sizeof(volume_a), PROJECT "/volumes/%s", id);
  Novacron__V1__Volume *a = create_volume(id, 64 * MIB, NULL);
  assert_string_equal(a->name, volume_a);
  assert_string_equal(a->pool, pool_name);
  assert_int_equal(a->size_bytes, 64 * MIB);
  assert_int_equal(a->format, NOVACRON__V1__VOLUME__FORMAT__FORMAT_QCOW2);
  assert_int_equal(a->state, NOVACRON__V1__VOLUME__STATE__STATE_READY);
  assert_null(a->attachment);
  nc_message_free(&a->base);
  a = get_volume(volume_a);
  assert_int_equal(a->size_bytes, 64 * MIB);
  char etag[128];
  snprintf(etag, sizeof(etag), "%s", a->etag);
  nc_message_free(&a->base);

  /* list, with a filter on the pool */
  Novacron__V1__ListVolumesRequest list = NOVACRON__V1__LIST_VOLUMES_REQUEST__INIT;
  Novacron__V1__ListVolumesResponse *volumes = NULL;
  char filter[256];
  bool found = false;
  snprintf(filter, sizeof(filter), "pool = \"%s\"", pool_name);
  list.parent = PROJECT;
  list.filter = filter;
  st = nc_volume_list(admin, &list, &volumes, NULL, &err);
  CHECK_OK(st, err, "ListVolumes");
  for (size_t i = 0; i < volumes->n_volumes; i++)
    found = found || strcmp(volumes->volumes[i]->name, volume_a) == 0;
  assert_true(found);
  nc_message_free(&volumes->base);

  /* grow; shrink refused without allow_shrink, done with it */
  Novacron__V1__ResizeVolumeRequest resize = NOVACRON__V1__RESIZE_VOLUME_REQUEST__INIT;
  Novacron__V1__ResizeVolumeResponse *resized = NULL;
  new_request_id(request_id);
  resize.name = volume_a;
  resize.size_bytes = 128 * MIB;
  resize.etag = etag;
  resize.request_id = request_id;
  st = nc_volume_resize(admin, &resize, &resized, NULL, &err);
  a = (Novacron__V1__Volume *)finish(st, &err, resized ? &resized->base : NULL, VOLUME_T,
                                     "ResizeVolume grow");
  assert_int_equal(a->size_bytes, 128 * MIB);
  assert_string_not_equal(a->etag, etag);
  nc_message_free(&a->base);
  new_request_id(request_id);
  resize.size_bytes = 96 * MIB;
  resize.etag = NULL;
  resized = NULL;
  st = nc_volume_resize(admin, &resize, &resized, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_INVALID_ARGUMENT, NULL, "ResizeVolume shrink");
  new_request_id(request_id);
  resize.allow_shrink = true;
  st = nc_volume_resize(admin, &resize, &resized, NULL, &err);
  a = (Novacron__V1__Volume *)finish(st, &err, resized ? &resized->base : NULL, VOLUME_T,
                                     "ResizeVolume shrink");
  assert_int_equal(a->size_bytes, 96 * MIB);
  nc_message_free(&a->base);
  /* a stale etag */
  new_request_id(request_id);
  resize.size_bytes = 100 * MIB;
  resize.etag = etag;
  resized = NULL;
  st = nc_volume_resize(admin, &resize, &resized, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_ABORTED, NULL, "ResizeVolume stale etag");

  /* B: a clone of A; C: created from A, 128 MiB */
  Novacron__V1__CloneVolumeRequest clone = NOVACRON__V1__CLONE_VOLUME_REQUEST__INIT;
  Novacron__V1__CloneVolumeResponse *cloned = NULL;
  char id_b[32];
  snprintf(id_b, sizeof(id_b), "vol-b-%s", suffix);
  snprintf(name_b, sizeof(name_b), PROJECT "/volumes/%s", id_b);
  new_request_id(request_id);
  clone.name = volume_a;
  clone.volume_id = id_b;
  clone.request_id = request_id;
  st = nc_volume_clone(admin, &clone, &cloned, NULL, &err);
  Novacron__V1__Volume *b = (Novacron__V1__Volume *)finish(st, &err, cloned ? &cloned->base : NULL,
                                                           VOLUME_T, "CloneVolume");
  assert_string_equal(b->name, name_b);
  assert_string_equal(b->pool, pool_name);
  assert_int_equal(b->size_bytes, 96 * MIB);
  assert_int_equal(b->state, NOVACRON__V1__VOLUME__STATE__STATE_READY);
  assert_string_not_equal(b->uid, "");
  nc_message_free(&b->base);
  snprintf(id, sizeof(id), "vol-c-%s", suffix);
  snprintf(name_c, sizeof(name_c), PROJECT "/volumes/%s", id);
  Novacron__V1__Volume *c = create_volume(id, 128 * MIB, volume_a);
  assert_int_equal(c->size_bytes, 128 * MIB);
  assert_int_equal(c->source_case, NOVACRON__V1__VOLUME__SOURCE_SOURCE_VOLUME);
  assert_string_equal(c->source_volume, volume_a);
  nc_message_free(&c->base);

  /* errors: unknown volume, a size that is not whole MiB, an unknown pool, a taken id */
  Novacron__V1__GetVolumeRequest get = NOVACRON__V1__GET_VOLUME_REQUEST__INIT;
  Novacron__V1__GetVolumeResponse *got = NULL;
  get.name = PROJECT "/volumes/no-such-volume";
  st = nc_volume_get(admin, &get, &got, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_NOT_FOUND, NULL, "GetVolume unknown");
  Novacron__V1__CreateVolumeRequest req = NOVACRON__V1__CREATE_VOLUME_REQUEST__INIT;
  Novacron__V1__Volume v = NOVACRON__V1__VOLUME__INIT;
  Novacron__V1__CreateVolumeResponse *created = NULL;
  new_request_id(request_id);
  v.pool = pool_name;
  v.size_bytes = MIB + 512;
  req.parent = PROJECT;
  req.volume_id = "vol-odd";
  req.volume = &v;
  req.request_id = request_id;
  st = nc_volume_create(admin, &req, &created, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_INVALID_ARGUMENT, "size_bytes", "CreateVolume odd size");
  new_request_id(request_id);
  v.size_bytes = 64 * MIB;
  v.pool = HOST "/pools/no-such-pool";
  st = nc_volume_create(admin, &req, &created, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_NOT_FOUND, NULL, "CreateVolume unknown pool");
  new_request_id(request_id);
  v.pool = pool_name;
  req.volume_id = id_b;
  st = nc_volume_create(admin, &req, &created, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_ALREADY_EXISTS, NULL, "CreateVolume taken id");
  assert_null(created);

  /* an image outside the server's storage.image_dirs: PERMISSION_DENIED */
  new_request_id(request_id);
  v.size_bytes = 0;
  v.source_case = NOVACRON__V1__VOLUME__SOURCE_SOURCE_IMAGE;
  v.source_image = "/etc/passwd";
  req.volume_id = "vol-image";
  st = nc_volume_create(admin, &req, &created, NULL, &err);
  expect_refused(st, &err, created ? &created->base : NULL, NC_GRPC_PERMISSION_DENIED, NULL,
                 "CreateVolume from an image outside image_dirs");
  get.name = PROJECT "/volumes/vol-image";
  got = NULL;
  st = nc_volume_get(admin, &get, &got, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_NOT_FOUND, NULL, "GetVolume of a refused import");

  /* the pool cannot go while volumes remain in it */
  Novacron__V1__DeletePoolRequest dp = NOVACRON__V1__DELETE_POOL_REQUEST__INIT;
  Novacron__V1__DeletePoolResponse *dresp = NULL;
  new_request_id(request_id);
  dp.name = pool_name;
  dp.request_id = request_id;
  st = nc_pool_delete(admin, &dp, &dresp, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_FAILED_PRECONDITION, NULL, "DeletePool with volumes");

  /* a stale etag on delete, then the deletes (one wiped) */
  Novacron__V1__DeleteVolumeRequest dv = NOVACRON__V1__DELETE_VOLUME_REQUEST__INIT;
  Novacron__V1__DeleteVolumeResponse *dvresp = NULL;
  new_request_id(request_id);
  dv.name = name_b;
  dv.etag = "stale";
  dv.request_id = request_id;
  st = nc_volume_delete(admin, &dv, &dvresp, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_ABORTED, NULL, "DeleteVolume stale etag");
  delete_volume(name_b, true);
  delete_volume(name_c, false);
}

/* ---- networks ---- */

static void test_networks(void **state) {
  Novacron__V1__CreateNetworkRequest req = NOVACRON__V1__CREATE_NETWORK_REQUEST__INIT;
  Novacron__V1__Network net = NOVACRON__V1__NETWORK__INIT;
  Novacron__V1__Network__Reservation r1 = NOVACRON__V1__NETWORK__RESERVATION__INIT;
  Novacron__V1__Network__Reservation *reservations[] = {&r1};
  Novacron__V1__CreateNetworkResponse *resp = NULL;
  char request_id[NC_UUID_LEN + 1];
  char id[32];
  nc_error err;
  nc_status st;

  snprintf(id, sizeof(id), "net-%s", suffix);
  snprintf(network_name, sizeof(network_name), PROJECT "/networks/%s", id);
  new_request_id(request_id);
  net.host = HOST;
  net.mode = NOVACRON__V1__NETWORK__MODE__MODE_NAT;
  net.ipv4_cidr = "10.77.31.0/24";
  net.dhcp_start = "10.77.31.100";
  net.dhcp_end = "10.77.31.199";
  net.description = "sdk";
  r1.mac = "52:54:00:aa:00:01";
  r1.ip = "10.77.31.10";
  r1.hostname = "db-1";
  req.parent = PROJECT;
  req.network_id = id;
  req.network = &net;
  req.reservations = reservations;
  req.n_reservations = 1;
  req.request_id = request_id;

  /* errors first: a gateway outside the subnet, no mode */
  net.gateway = "10.99.0.1";
  st = nc_network_create(admin, &req, &resp, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_INVALID_ARGUMENT, "gateway", "CreateNetwork gateway outside");
  net.gateway = NULL;
  net.mode = NOVACRON__V1__NETWORK__MODE__MODE_UNSPECIFIED;
  new_request_id(request_id);
  st = nc_network_create(admin, &req, &resp, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_INVALID_ARGUMENT, "mode", "CreateNetwork without mode");
  assert_null(resp);

  net.mode = NOVACRON__V1__NETWORK__MODE__MODE_NAT;
  new_request_id(request_id);
  st = nc_network_create(admin, &req, &resp, NULL, &err);
  Novacron__V1__Network *n =
      (Novacron__V1__Network *)finish(st, &err, resp ? &resp->base : NULL, NETWORK_T, "Create");
  assert_string_equal(n->name, network_name);
  assert_string_equal(n->host, HOST);
  assert_int_equal(n->mode, NOVACRON__V1__NETWORK__MODE__MODE_NAT);
  assert_int_equal(n->state, NOVACRON__V1__NETWORK__STATE__STATE_ACTIVE);
  assert_string_equal(n->ipv4_cidr, "10.77.31.0/24");
  assert_string_equal(n->gateway, "10.77.31.1"); /* the first usable address */
  assert_true(n->bridge[0] != '\0');
  assert_int_equal(n->n_reservations, 1);
  assert_string_equal(n->reservations[0]->mac, "52:54:00:aa:00:01");
  assert_string_equal(n->reservations[0]->ip, "10.77.31.10");
  assert_string_equal(n->reservations[0]->hostname, "db-1");
  nc_message_free(&n->base);

  /* the same id again; an overlapping subnet on the same host */
  resp = NULL;
  new_request_id(request_id);
  st = nc_network_create(admin, &req, &resp, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_ALREADY_EXISTS, NULL, "CreateNetwork twice");
  new_request_id(request_id);
  req.network_id = "net-overlap";
  req.n_reservations = 0;
  net.ipv4_cidr = "10.77.31.128/25";
  net.dhcp_start = net.dhcp_end = NULL;
  st = nc_network_create(admin, &req, &resp, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_FAILED_PRECONDITION, NULL, "CreateNetwork overlapping");

  /* get and list */
  n = get_network(network_name);
  assert_int_equal(n->n_reservations, 1);
  char etag[128];
  snprintf(etag, sizeof(etag), "%s", n->etag);
  nc_message_free(&n->base);
  Novacron__V1__ListNetworksRequest list = NOVACRON__V1__LIST_NETWORKS_REQUEST__INIT;
  Novacron__V1__ListNetworksResponse *nets = NULL;
  bool found = false;
  list.parent = PROJECT;
  list.filter = "mode = MODE_NAT";
  st = nc_network_list(admin, &list, &nets, NULL, &err);
  CHECK_OK(st, err, "ListNetworks");
  for (size_t i = 0; i < nets->n_networks; i++)
    found = found || strcmp(nets->networks[i]->name, network_name) == 0;
  assert_true(found);
  nc_message_free(&nets->base);

  /* update by mask: description and MTU; no mask and immutable paths are refused */
  Novacron__V1__UpdateNetworkRequest up = NOVACRON__V1__UPDATE_NETWORK_REQUEST__INIT;
  Novacron__V1__Network changes = NOVACRON__V1__NETWORK__INIT;
  Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
  Novacron__V1__UpdateNetworkResponse *updated = NULL;
  char *paths[] = {"description", "mtu"};
  changes.name = network_name;
  changes.etag = etag;
  changes.description = "updated by the SDK";
  changes.mtu = 1400;
  changes.ipv4_cidr = "10.1.0.0/16"; /* not in the mask: ignored */
  up.network = &changes;
  up.request_id = request_id;
  new_request_id(request_id);
  st = nc_network_update(admin, &up, &updated, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_INVALID_ARGUMENT, NULL, "UpdateNetwork without a mask");
  char *bad_paths[] = {"ipv4_cidr"};
  mask.paths = bad_paths;
  mask.n_paths = 1;
  up.update_mask = &mask;
  new_request_id(request_id);
  st = nc_network_update(admin, &up, &updated, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_INVALID_ARGUMENT, "ipv4_cidr", "UpdateNetwork immutable path");
  mask.paths = paths;
  mask.n_paths = 2;
  new_request_id(request_id);
  st = nc_network_update(admin, &up, &updated, NULL, &err);
  n = (Novacron__V1__Network *)finish(st, &err, updated ? &updated->base : NULL, NETWORK_T,
                                      "UpdateNetwork");
  assert_string_equal(n->description, "updated by the SDK");
  assert_int_equal(n->mtu, 1400);
  assert_string_equal(n->ipv4_cidr, "10.77.31.0/24");
  assert_string_not_equal(n->etag, etag);
  nc_message_free(&n->base);
  updated = NULL;
  new_request_id(request_id); /* the etag read before is stale now */
  st = nc_network_update(admin, &up, &updated, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_ABORTED, NULL, "UpdateNetwork stale etag");

  /* reservations: add, the same MAC again, remove, an unknown MAC */
  Novacron__V1__AddReservationRequest add = NOVACRON__V1__ADD_RESERVATION_REQUEST__INIT;
  Novacron__V1__Network__Reservation r2 = NOVACRON__V1__NETWORK__RESERVATION__INIT;
  Novacron__V1__AddReservationResponse *added = NULL;
  r2.mac = "52:54:00:aa:00:02";
  r2.ip = "10.77.31.11";
  add.name = network_name;
  add.reservation = &r2;
  add.request_id = request_id;
  new_request_id(request_id);
  st = nc_network_add_reservation(admin, &add, &added, NULL, &err);
  n = (Novacron__V1__Network *)finish(st, &err, added ? &added->base : NULL, NETWORK_T,
                                      "AddReservation");
  assert_int_equal(n->n_reservations, 2);
  nc_message_free(&n->base);
  added = NULL;
  new_request_id(request_id);
  r2.ip = "10.77.31.12";
  st = nc_network_add_reservation(admin, &add, &added, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_ALREADY_EXISTS, NULL, "AddReservation same MAC");
  Novacron__V1__RemoveReservationRequest rm = NOVACRON__V1__REMOVE_RESERVATION_REQUEST__INIT;
  Novacron__V1__RemoveReservationResponse *removed = NULL;
  rm.name = network_name;
  rm.mac = "52:54:00:aa:00:01";
  rm.request_id = request_id;
  new_request_id(request_id);
  st = nc_network_remove_reservation(admin, &rm, &removed, NULL, &err);
  n = (Novacron__V1__Network *)finish(st, &err, removed ? &removed->base : NULL, NETWORK_T,
                                      "RemoveReservation");
  assert_int_equal(n->n_reservations, 1);
  assert_string_equal(n->reservations[0]->mac, "52:54:00:aa:00:02");
  nc_message_free(&n->base);
  removed = NULL;
  new_request_id(request_id);
  st = nc_network_remove_reservation(admin, &rm, &removed, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_NOT_FOUND, NULL, "RemoveReservation unknown MAC");

  /* leases: read live from the host (none on the test driver, but the call works) */
  Novacron__V1__ListLeasesRequest leases = NOVACRON__V1__LIST_LEASES_REQUEST__INIT;
  Novacron__V1__ListLeasesResponse *held = NULL;
  leases.parent = network_name;
  st = nc_network_list_leases(admin, &leases, &held, NULL, &err);
  CHECK_OK(st, err, "ListLeases");
  for (size_t i = 0; i < held->n_leases; i++)
    assert_true(held->leases[i]->mac[0] != '\0');
  nc_message_free(&held->base);
  leases.parent = PROJECT "/networks/no-such-network";
  held = NULL;
  st = nc_network_list_leases(admin, &leases, &held, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_NOT_FOUND, NULL, "ListLeases unknown network");

  Novacron__V1__GetNetworkRequest get = NOVACRON__V1__GET_NETWORK_REQUEST__INIT;
  Novacron__V1__GetNetworkResponse *got = NULL;
  get.name = PROJECT "/networks/no-such-network";
  st = nc_network_get(admin, &get, &got, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_NOT_FOUND, NULL, "GetNetwork unknown");
}

/* ---- a VM using a volume and the network ---- */

static void test_vm_with_volume_and_nic(void **state) {
  Novacron__V1__CreateVmRequest req = NOVACRON__V1__CREATE_VM_REQUEST__INIT;
  Novacron__V1__Vm vm = NOVACRON__V1__VM__INIT;
  Novacron__V1__VmDisk disk = NOVACRON__V1__VM_DISK__INIT;
  Novacron__V1__VmDisk *disks[] = {&disk};
  Novacron__V1__VmNic nic = NOVACRON__V1__VM_NIC__INIT;
  Novacron__V1__VmNic *nics[] = {&nic};
  Novacron__V1__CreateVmResponse *resp = NULL;
  char request_id[NC_UUID_LEN + 1];
  char id[32], vm_name[128], mac[32];
  nc_error err;
  nc_status st;

  snprintf(id, sizeof(id), "vm-%s", suffix);
  snprintf(vm_name, sizeof(vm_name), PROJECT "/vms/%s", id);
  new_request_id(request_id);
  disk.source_case = NOVACRON__V1__VM_DISK__SOURCE_VOLUME;
  disk.volume = volume_a;
  nic.network = network_name;
  vm.vcpus = 1;
  vm.memory_mib = 128;
  vm.disks = disks;
  vm.n_disks = 1;
  vm.nics = nics;
  vm.n_nics = 1;
  req.parent = PROJECT;
  req.vm_id = id;
  req.vm = &vm;
  req.request_id = request_id;
  st = nc_vm_create(admin, &req, &resp, NULL, &err);
  Novacron__V1__Vm *created =
      (Novacron__V1__Vm *)finish(st, &err, resp ? &resp->base : NULL, VM_T, "CreateVm");
  assert_string_equal(created->host, HOST);
  assert_int_equal(created->n_disks, 1);
  assert_int_equal(created->disks[0]->source_case, NOVACRON__V1__VM_DISK__SOURCE_VOLUME);
  assert_string_equal(created->disks[0]->volume, volume_a);
  assert_true(created->disks[0]->target_device[0] != '\0');
  assert_int_equal(created->n_nics, 1);
  assert_string_equal(created->nics[0]->network, network_name);
  assert_true(created->nics[0]->mac[0] != '\0');
  snprintf(mac, sizeof(mac), "%s", created->nics[0]->mac);
  char device[16];
  snprintf(device, sizeof(device), "%s", created->disks[0]->target_device);
  nc_message_free(&created->base);

  /* the volume knows where it is attached */
  Novacron__V1__Volume *a = get_volume(volume_a);
  assert_int_equal(a->state, NOVACRON__V1__VOLUME__STATE__STATE_ATTACHED);
  assert_non_null(a->attachment);
  assert_string_equal(a->attachment->vm, vm_name);
  assert_string_equal(a->attachment->target_device, device);
  nc_message_free(&a->base);

  /* neither can go while in use */
  Novacron__V1__DeleteVolumeRequest dv = NOVACRON__V1__DELETE_VOLUME_REQUEST__INIT;
  Novacron__V1__DeleteVolumeResponse *dvresp = NULL;
  new_request_id(request_id);
  dv.name = volume_a;
  dv.request_id = request_id;
  st = nc_volume_delete(admin, &dv, &dvresp, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_FAILED_PRECONDITION, NULL, "DeleteVolume attached");
  Novacron__V1__DeleteNetworkRequest dn = NOVACRON__V1__DELETE_NETWORK_REQUEST__INIT;
  Novacron__V1__DeleteNetworkResponse *dnresp = NULL;
  new_request_id(request_id);
  dn.name = network_name;
  dn.request_id = request_id;
  st = nc_network_delete(admin, &dn, &dnresp, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_FAILED_PRECONDITION, NULL, "DeleteNetwork in use");

  /* detach both through the VM wrappers */
  Novacron__V1__DetachNicRequest dnic = NOVACRON__V1__DETACH_NIC_REQUEST__INIT;
  Novacron__V1__DetachNicResponse *dnicresp = NULL;
  new_request_id(request_id);
  dnic.name = vm_name;
  dnic.mac = mac;
  dnic.request_id = request_id;
  st = nc_vm_detach_nic(admin, &dnic, &dnicresp, NULL, &err);
  Novacron__V1__Vm *v =
      (Novacron__V1__Vm *)finish(st, &err, dnicresp ? &dnicresp->base : NULL, VM_T, "DetachNic");
  assert_int_equal(v->n_nics, 0);
  nc_message_free(&v->base);
  Novacron__V1__DetachVolumeRequest dvol = NOVACRON__V1__DETACH_VOLUME_REQUEST__INIT;
  Novacron__V1__DetachVolumeResponse *dvolresp = NULL;
  new_request_id(request_id);
  dvol.name = vm_name;
  dvol.volume = volume_a;
  dvol.request_id = request_id;
  st = nc_vm_detach_volume(admin, &dvol, &dvolresp, NULL, &err);
  v = (Novacron__V1__Vm *)finish(st, &err, dvolresp ? &dvolresp->base : NULL, VM_T, "DetachVolume");
  assert_int_equal(v->n_disks, 0);
  nc_message_free(&v->base);
  a = get_volume(volume_a);
  assert_int_equal(a->state, NOVACRON__V1__VOLUME__STATE__STATE_READY);
  assert_null(a->attachment);
  nc_message_free(&a->base);

  /* attached again, then the VM deleted: the volume is kept */
  Novacron__V1__AttachVolumeRequest avol = NOVACRON__V1__ATTACH_VOLUME_REQUEST__INIT;
  Novacron__V1__AttachVolumeResponse *avolresp = NULL;
  new_request_id(request_id);
  avol.name = vm_name;
  avol.disk = &disk;
  avol.request_id = request_id;
  st = nc_vm_attach_volume(admin, &avol, &avolresp, NULL, &err);
  v = (Novacron__V1__Vm *)finish(st, &err, avolresp ? &avolresp->base : NULL, VM_T, "AttachVolume");
  assert_int_equal(v->n_disks, 1);
  nc_message_free(&v->base);
  Novacron__V1__DeleteVmRequest dvm = NOVACRON__V1__DELETE_VM_REQUEST__INIT;
  Novacron__V1__DeleteVmResponse *dvmresp = NULL;
  new_request_id(request_id);
  dvm.name = vm_name;
  dvm.request_id = request_id;
  st = nc_vm_delete(admin, &dvm, &dvmresp, NULL, &err);
  v = (Novacron__V1__Vm *)finish(st, &err, dvmresp ? &dvmresp->base : NULL, VM_T, "DeleteVm");
  nc_message_free(&v->base);
  a = get_volume(volume_a); /* kept, and free again */
  assert_int_equal(a->state, NOVACRON__V1__VOLUME__STATE__STATE_READY);
  nc_message_free(&a->base);

  /* now both go */
  dnresp = NULL;
  new_request_id(request_id);
  st = nc_network_delete(admin, &dn, &dnresp, NULL, &err);
  Novacron__V1__Network *n = (Novacron__V1__Network *)finish(
      st, &err, dnresp ? &dnresp->base : NULL, NETWORK_T, "DeleteNetwork");
  assert_string_equal(n->name, network_name);
  nc_message_free(&n->base);
  Novacron__V1__GetNetworkRequest gn = NOVACRON__V1__GET_NETWORK_REQUEST__INIT;
  Novacron__V1__GetNetworkResponse *gnresp = NULL;
  gn.name = network_name;
  st = nc_network_get(admin, &gn, &gnresp, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_NOT_FOUND, NULL, "GetNetwork after delete");
  delete_volume(volume_a, false);
}

/* ---- the pool goes last ---- */

static void test_pool_delete(void **state) {
  Novacron__V1__DeletePoolRequest req = NOVACRON__V1__DELETE_POOL_REQUEST__INIT;
  Novacron__V1__DeletePoolResponse *resp = NULL;
  char request_id[NC_UUID_LEN + 1];
  nc_error err;
  new_request_id(request_id);
  req.name = pool_name;
  req.etag = "stale";
  req.request_id = request_id;
  nc_status st = nc_pool_delete(admin, &req, &resp, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_ABORTED, NULL, "DeletePool stale etag");
  new_request_id(request_id);
  req.etag = NULL;
  req.delete_storage = true;
  st = nc_pool_delete(admin, &req, &resp, NULL, &err);
  Novacron__V1__Pool *last =
      (Novacron__V1__Pool *)finish(st, &err, resp ? &resp->base : NULL, POOL_T, "DeletePool");
  assert_string_equal(last->name, pool_name);
  nc_message_free(&last->base);
  Novacron__V1__GetPoolRequest get = NOVACRON__V1__GET_POOL_REQUEST__INIT;
  Novacron__V1__GetPoolResponse *got = NULL;
  get.name = pool_name;
  st = nc_pool_get(admin, &get, &got, NULL, &err);
  expect_rpc(st, &err, NC_GRPC_NOT_FOUND, NULL, "GetPool after delete");
}

int main(int argc, char **argv) {
  const struct CMUnitTest offline[] = {
      cmocka_unit_test(test_wrappers_check_request_type),
      cmocka_unit_test(test_wrappers_bad_arguments),
  };
  /* in order: each leaves what the next one uses */
  const struct CMUnitTest online[] = {
      cmocka_unit_test(test_pool_create_get_list),
      cmocka_unit_test(test_volumes),
      cmocka_unit_test(test_networks),
      cmocka_unit_test(test_vm_with_volume_and_nic),
      cmocka_unit_test(test_pool_delete),
  };
  if (argc > 1 && strcmp(argv[1], "server") == 0)
    return cmocka_run_group_tests_name("sdk_storage_server", online, start_server, stop_server);
  return cmocka_run_group_tests_name("sdk_storage", offline, NULL, NULL);
}
