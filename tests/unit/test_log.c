/* test_log.c - structured log records are one valid JSON object per line. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

static char out[65536];

static size_t capture(void (*emit)(void)) {
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  nc_log_set_fd(fds[1]);
  emit();
  nc_log_set_fd(2);
  close(fds[1]);
  size_t n = 0;
  ssize_t r;
  while ((r = read(fds[0], out + n, sizeof(out) - 1 - n)) > 0)
    n += (size_t)r;
  close(fds[0]);
  out[n] = '\0';
  return n;
}

static void emit_fields(void) {
  nc_log_set_level(NC_LOG_INFO);
  nc_log(NC_LOG_INFO, "rpc \"done\"", LKV_S("method", "/a.B/C"), LKV_I("code", 5),
         LKV_D("latency_ms", 1.5), LKV_B("tls", true), LKV_S("principal", NULL),
         LKV_S("ctl", "line1\nline2\t\x01"));
  nc_log(NC_LOG_DEBUG, "hidden");
}

static void records_are_json(void **state) {
  capture(emit_fields);
  char *nl = strchr(out, '\n');
  assert_non_null(nl);
  assert_string_equal(nl + 1, ""); /* debug record filtered */
  json_error_t jerr;
  json_t *rec = json_loadb(out, (size_t)(nl - out), 0, &jerr);
  assert_non_null(rec);
  assert_string_equal(json_string_value(json_object_get(rec, "level")), "info");
  assert_string_equal(json_string_value(json_object_get(rec, "msg")), "rpc \"done\"");
  assert_string_equal(json_string_value(json_object_get(rec, "method")), "/a.B/C");
  assert_int_equal(json_integer_value(json_object_get(rec, "code")), 5);
  assert_true(json_is_true(json_object_get(rec, "tls")));
  assert_true(json_is_null(json_object_get(rec, "principal")));
  assert_string_equal(json_string_value(json_object_get(rec, "ctl")), "line1\nline2\t\x01");
  assert_non_null(json_object_get(rec, "ts"));
  json_decref(rec);
}

static void emit_huge(void) {
  static char big[20000];
  memset(big, 'x', sizeof(big) - 1);
  nc_log(NC_LOG_ERROR, "big", LKV_S("payload", big), LKV_I("after", 1));
}

static void oversized_records_stay_valid(void **state) {
  size_t n = capture(emit_huge);
  assert_true(n <= 8192);
  json_error_t jerr;
  json_t *rec = json_loadb(out, n - 1, 0, &jerr);
  assert_non_null(rec);
  assert_true(json_is_true(json_object_get(rec, "truncated")));
  json_decref(rec);
}

static void levels_parse(void **state) {
  nc_log_level l;
  assert_true(nc_log_parse_level("debug", &l));
  assert_int_equal(l, NC_LOG_DEBUG);
  assert_true(nc_log_parse_level("warn", &l));
  assert_int_equal(l, NC_LOG_WARN);
  assert_false(nc_log_parse_level("loud", &l));
  assert_false(nc_log_parse_level(NULL, &l));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(records_are_json),
      cmocka_unit_test(oversized_records_stay_valid),
      cmocka_unit_test(levels_parse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
