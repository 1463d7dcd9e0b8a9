/*
 * test_dispatch.c - the method table: every method of every registered
 * service is dispatchable, rows are checked against the descriptor set, and
 * methods without a handler answer UNIMPLEMENTED (handler NULL).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "api/api.h"
#include "grpc/health/v1/health.pb-c.h"
#include "novacron/v1/event.pb-c.h"
#include "novacron/v1/vm.pb-c.h"
#include "rpc/rpc.h"

extern const unsigned char nc_protoset[];
extern const size_t nc_protoset_len;

static rpc_server *new_server(void) {
  rpc_server_options o = {.listen_addr = "127.0.0.1:0",
                          .insecure = true,
                          .protoset = nc_protoset,
                          .protoset_len = nc_protoset_len};
  rpc_server *srv = NULL;
  char err[256];
  assert_int_equal(rpc_server_create(&o, &srv, err, sizeof(err)), 0);
  return srv;
}

static int dummy(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *resp, void *ctx) {
  return 0;
}

typedef struct counts {
  int methods, novacron, streaming;
} counts;

static void count(const char *path, const rpc_method_row *row, void *arg) {
  counts *c = arg;
  c->methods++;
  if (strncmp(path, "/novacron.v1.", 13) == 0) {
    c->novacron++;
    /* Identity, compute (VMs, hosts, operations), storage, networks and
     * events are built; the rest answer UNIMPLEMENTED after authorization */
    static const char *const built[] = {"IdentityService/",   "VmService/",    "HostService/",
                                        "OperationsService/", "EventService/", "StorageService/",
                                        "NetworkService/"};
    bool is_built = false;
    for (size_t i = 0; i < sizeof(built) / sizeof(built[0]); i++)
      is_built = is_built || strncmp(path + 13, built[i], strlen(built[i])) == 0;
    if (is_built)
      assert_non_null(row->handler);
    else
      assert_null(row->handler);
  }
  if (row->kind == RPC_SERVER_STREAMING) c->streaming++;
}

static void every_api_method_is_registered(void **state) {
  rpc_server *srv = new_server();
  char err[256];
  assert_int_equal(api_register_all(srv, NULL, err, sizeof(err)), 0);
  counts c = {0};
  rpc_server_foreach_method(srv, count, &c);
  /* VmService 23 (with GetSnapshot), Host 6, Storage 10, Network 8, Identity 26,
   * Backup 15, Federation 7, Operations 4, Event 1 */
  size_t expect = novacron__v1__vm_service__descriptor.n_methods;
  assert_true(expect >= 22);
  assert_true(c.novacron >= 22 + 6 + 10 + 8 + 26 + 15 + 7 + 4 + 1);
  /* Health.Watch and EventService.WatchEvents stream from the server */
  assert_int_equal(c.streaming, 2);
  const rpc_method_row *row = rpc_server_lookup(srv, "/novacron.v1.EventService/WatchEvents");
  assert_non_null(row);
  assert_int_equal(row->kind, RPC_SERVER_STREAMING);
  row = rpc_server_lookup(srv, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo");
  assert_non_null(row);
  assert_int_equal(row->kind, RPC_BIDI_STREAMING);
  assert_non_null(row->handler);
  row = rpc_server_lookup(srv, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo");
  assert_non_null(row);
  row = rpc_server_lookup(srv, "/grpc.health.v1.Health/Check");
  assert_non_null(row);
  assert_true(row->flags & RPC_INLINE);
  assert_null(rpc_server_lookup(srv, "/novacron.v1.VmService/NoSuchMethod"));
  rpc_server_destroy(srv);
}

static void rows_must_match_the_proto(void **state) {
  rpc_server *srv = new_server();
  char err[256];
  const rpc_method_row wrong_kind[] = {
      {.name = "WatchEvents", .kind = RPC_UNARY, .handler = dummy, .flags = 0}};
  assert_int_equal(rpc_server_add_service(srv, &novacron__v1__event_service__descriptor, wrong_kind,
                                          1, NULL, err, sizeof(err)),
                   -1);
  assert_non_null(strstr(err, "WatchEvents"));
  const rpc_method_row unknown[] = {
      {.name = "Frobnicate", .kind = RPC_UNARY, .handler = dummy, .flags = 0}};
  assert_int_equal(rpc_server_add_service(srv, &novacron__v1__vm_service__descriptor, unknown, 1,
                                          NULL, err, sizeof(err)),
                   -1);
  assert_non_null(strstr(err, "no method Frobnicate"));
  const rpc_method_row twice[] = {
      {.name = "GetVm", .kind = RPC_UNARY, .handler = dummy, .flags = 0},
      {.name = "GetVm", .kind = RPC_UNARY, .handler = dummy, .flags = 0}};
  assert_int_equal(rpc_server_add_service(srv, &novacron__v1__vm_service__descriptor, twice, 2,
                                          NULL, err, sizeof(err)),
                   -1);
  /* nothing half-registered after the failures */
  assert_null(rpc_server_lookup(srv, "/novacron.v1.VmService/GetVm"));
  const rpc_method_row good[] = {
      {.name = "GetVm", .kind = RPC_UNARY, .handler = dummy, .flags = RPC_IDEMPOTENT}};
  assert_int_equal(rpc_server_add_service(srv, &novacron__v1__vm_service__descriptor, good, 1, NULL,
                                          err, sizeof(err)),
                   0);
  const rpc_method_row *row = rpc_server_lookup(srv, "/novacron.v1.VmService/GetVm");
  assert_non_null(row);
  assert_ptr_equal(row->handler, dummy);
  assert_false(row->flags & RPC_INLINE); /* a real handler runs on the worker pool */
  row = rpc_server_lookup(srv, "/novacron.v1.VmService/CreateVm");
  assert_non_null(row);
  assert_null(row->handler);
  assert_int_equal(rpc_server_add_service(srv, &novacron__v1__vm_service__descriptor, NULL, 0, NULL,
                                          err, sizeof(err)),
                   -1);
  assert_non_null(strstr(err, "registered twice"));
  rpc_server_destroy(srv);
}

static void garbage_descriptor_set_is_refused(void **state) {
  static const unsigned char junk[] = {0x0a, 0xff, 0xff, 0x01};
  rpc_server_options o = {.listen_addr = "127.0.0.1:0",
                          .insecure = true,
                          .protoset = junk,
                          .protoset_len = sizeof(junk)};
  rpc_server *srv = NULL;
  char err[256] = "";
  assert_int_equal(rpc_server_create(&o, &srv, err, sizeof(err)), -1);
  assert_null(srv);
  assert_non_null(strstr(err, "descriptor set"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_api_method_is_registered),
      cmocka_unit_test(rows_must_match_the_proto),
      cmocka_unit_test(garbage_descriptor_set_is_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
