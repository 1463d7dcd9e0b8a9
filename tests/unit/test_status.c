/* test_status.c - gRPC status names, both directions. */
#include <grpc/status.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "rpc/rpc.h"

static void names_match_grpc_numbering(void **state) {
  assert_string_equal(rpc_status_name(GRPC_STATUS_OK), "OK");
  assert_string_equal(rpc_status_name(GRPC_STATUS_INVALID_ARGUMENT), "INVALID_ARGUMENT");
  assert_string_equal(rpc_status_name(GRPC_STATUS_FAILED_PRECONDITION), "FAILED_PRECONDITION");
  assert_string_equal(rpc_status_name(GRPC_STATUS_UNIMPLEMENTED), "UNIMPLEMENTED");
  assert_string_equal(rpc_status_name(GRPC_STATUS_UNAVAILABLE), "UNAVAILABLE");
  assert_string_equal(rpc_status_name(GRPC_STATUS_UNAUTHENTICATED), "UNAUTHENTICATED");
  assert_string_equal(rpc_status_name(17), "UNKNOWN_CODE");
  assert_string_equal(rpc_status_name(-1), "UNKNOWN_CODE");
}

static void round_trip(void **state) {
  for (int code = 0; code <= 16; code++) {
    assert_int_equal(rpc_status_from_name(rpc_status_name(code)), code);
  }
  assert_int_equal(rpc_status_from_name("not_found"), GRPC_STATUS_NOT_FOUND);
  assert_int_equal(rpc_status_from_name("14"), GRPC_STATUS_UNAVAILABLE);
  assert_int_equal(rpc_status_from_name("17"), -1);
  assert_int_equal(rpc_status_from_name("NOPE"), -1);
  assert_int_equal(rpc_status_from_name(""), -1);
  assert_int_equal(rpc_status_from_name(NULL), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(names_match_grpc_numbering),
      cmocka_unit_test(round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
