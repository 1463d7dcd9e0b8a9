/*
 * test_sdk.c - unit tests of libnovacron that need no server: static
 * strings, option validation, client creation errors, argument checks, and
 * calls that fail locally (closed port, a listener that never answers).
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

#include "grpc/health/v1/health.pb-c.h"
#include "novacron/novacron.h"

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

/* A port nothing listens on: bound, then closed. */
static void closed_port(char *target, size_t len) { close(local_socket(false, target, len)); }

static nc_client *new_client(const char *target, bool insecure) {
  nc_options *opts = NULL;
  nc_client *client = NULL;
  nc_error err;
  assert_int_equal(nc_options_new(&opts), NC_OK);
  assert_int_equal(nc_options_set_target(opts, target), NC_OK);
  assert_int_equal(nc_options_set_insecure(opts, insecure), NC_OK);
  assert_int_equal(nc_client_new(opts, &client, &err), NC_OK);
  nc_options_free(opts);
  assert_non_null(client);
  return client;
}

/* ---- static strings ---- */

static void test_version(void **state) {
  char expect[32];
  snprintf(expect, sizeof(expect), "%d.%d.%d", NC_VERSION_MAJOR, NC_VERSION_MINOR,
           NC_VERSION_PATCH);
  assert_string_equal(nc_version(), expect);
}

static void test_strerror_every_status(void **state) {
  const char *seen[NC_ERR_NOT_FOUND + 1];
  for (int s = NC_OK; s <= NC_ERR_NOT_FOUND; s++) {
    const char *text = nc_strerror((nc_status)s);
    assert_non_null(text);
    assert_true(text[0] != '\0');
    for (int k = 0; k < s; k++)
      assert_string_not_equal(text, seen[k]);
    seen[s] = text;
  }
  assert_non_null(nc_strerror((nc_status)999));
  assert_non_null(nc_strerror((nc_status)-1));
}

static void test_grpc_code_names(void **state) {
  assert_string_equal(nc_grpc_code_name(NC_GRPC_OK), "OK");
  assert_string_equal(nc_grpc_code_name(NC_GRPC_INVALID_ARGUMENT), "INVALID_ARGUMENT");
  assert_string_equal(nc_grpc_code_name(NC_GRPC_DEADLINE_EXCEEDED), "DEADLINE_EXCEEDED");
  assert_string_equal(nc_grpc_code_name(NC_GRPC_UNIMPLEMENTED), "UNIMPLEMENTED");
  assert_string_equal(nc_grpc_code_name(NC_GRPC_UNAVAILABLE), "UNAVAILABLE");
  assert_string_equal(nc_grpc_code_name(NC_GRPC_UNAUTHENTICATED), "UNAUTHENTICATED");
  assert_string_equal(nc_grpc_code_name(-1), "UNKNOWN_CODE");
  assert_string_equal(nc_grpc_code_name(17), "UNKNOWN_CODE");
  for (int c = 0; c <= NC_GRPC_UNAUTHENTICATED; c++) {
    for (int k = 0; k < c; k++)
      assert_string_not_equal(nc_grpc_code_name(c), nc_grpc_code_name(k));
  }
}

static void test_health_status_names(void **state) {
  assert_string_equal(nc_health_status_name(NC_HEALTH_UNKNOWN), "UNKNOWN");
  assert_string_equal(nc_health_status_name(NC_HEALTH_SERVING), "SERVING");
  assert_string_equal(nc_health_status_name(NC_HEALTH_NOT_SERVING), "NOT_SERVING");
  assert_string_equal(nc_health_status_name(NC_HEALTH_SERVICE_UNKNOWN), "SERVICE_UNKNOWN");
  assert_non_null(nc_health_status_name((nc_health_status)42));
}

/* ---- options ---- */

static void test_options_null_arguments(void **state) {
  nc_options *opts = NULL;
  assert_int_equal(nc_options_new(NULL), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_options_set_target(NULL, "h:1"), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_options_set_tls_ca_file(NULL, "x"), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_options_set_tls_client_cert(NULL, "c", "k"), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_options_set_tls_server_name(NULL, "n"), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_options_set_insecure(NULL, true), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_options_set_bearer_token(NULL, "t"), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_options_set_default_deadline_ms(NULL, 1), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_options_set_user_agent(NULL, "ua"), NC_ERR_INVALID_ARGUMENT);
  nc_options_free(NULL);

  assert_int_equal(nc_options_new(&opts), NC_OK);
  assert_int_equal(nc_options_set_target(opts, NULL), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_options_set_target(opts, ""), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_options_set_tls_client_cert(opts, "c", NULL), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_options_set_tls_client_cert(opts, NULL, "k"), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_options_set_tls_client_cert(opts, NULL, NULL), NC_OK);
  assert_int_equal(nc_options_set_default_deadline_ms(opts, -1), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_options_set_bearer_token(opts, "a\nb"), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_options_set_bearer_token(opts, "good-token"), NC_OK);
  assert_int_equal(nc_options_set_bearer_token(opts, NULL), NC_OK);
  assert_int_equal(nc_options_set_target(opts, "localhost:8443"), NC_OK);
  assert_int_equal(nc_options_set_target(opts, "localhost:9443"), NC_OK); /* replaces */
  nc_options_free(opts);
}

static void test_options_wrong_handle(void **state) {
  /* something that is not an nc_options (the magic number does not match) */
  unsigned long long not_options[16] = {0};
  nc_options *fake = (nc_options *)(void *)not_options;
  nc_client *client = NULL;
  nc_error err;
  assert_int_equal(nc_options_set_target(fake, "h:1"), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_client_new(fake, &client, &err), NC_ERR_INVALID_ARGUMENT);
  assert_null(client);
  nc_options_free(fake); /* ignored */
}

static void test_client_needs_target(void **state) {
  nc_options *opts = NULL;
  nc_client *client = (nc_client *)(uintptr_t)1; /* must be reset to NULL */
  nc_error err;
  assert_int_equal(nc_options_new(&opts), NC_OK);
  assert_int_equal(nc_client_new(opts, &client, &err), NC_ERR_INVALID_ARGUMENT);
  assert_null(client);
  assert_int_equal(err.code, NC_GRPC_UNKNOWN);
  assert_non_null(strstr(err.message, "target"));
  assert_int_equal(nc_client_new(NULL, &client, &err), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_client_new(opts, NULL, NULL), NC_ERR_INVALID_ARGUMENT);
  nc_options_free(opts);
}

static void test_client_unreadable_ca(void **state) {
  const char *path = "/nonexistent/novacron-test/ca.crt";
  nc_options *opts = NULL;
  nc_client *client = NULL;
  nc_error err;
  assert_int_equal(nc_options_new(&opts), NC_OK);
  assert_int_equal(nc_options_set_target(opts, "localhost:8443"), NC_OK);
  assert_int_equal(nc_options_set_tls_ca_file(opts, path), NC_OK);
  assert_int_equal(nc_client_new(opts, &client, &err), NC_ERR_IO);
  assert_null(client);
  assert_non_null(strstr(err.message, path));
  assert_non_null(strstr(err.message, "No such file"));
  nc_options_free(opts);
}

static void test_client_not_pem(void **state) {
  char path[] = "/tmp/nc-test-notpem-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "hello\n", 6), 6);
  close(fd);
  nc_options *opts = NULL;
  nc_client *client = NULL;
  nc_error err;
  assert_int_equal(nc_options_new(&opts), NC_OK);
  assert_int_equal(nc_options_set_target(opts, "localhost:8443"), NC_OK);
  assert_int_equal(nc_options_set_tls_ca_file(opts, path), NC_OK);
  assert_int_equal(nc_client_new(opts, &client, &err), NC_ERR_TLS);
  assert_non_null(strstr(err.message, path));
  /* a client certificate whose key is unreadable */
  assert_int_equal(nc_options_set_tls_ca_file(opts, NULL), NC_OK);
  assert_int_equal(nc_options_set_tls_client_cert(opts, path, "/nonexistent/key.pem"), NC_OK);
  assert_int_equal(nc_client_new(opts, &client, &err), NC_ERR_TLS); /* the cert is checked first */
  nc_options_free(opts);
  unlink(path);
}

static void test_client_insecure_contradicts_tls(void **state) {
  nc_options *opts = NULL;
  nc_client *client = NULL;
  nc_error err;
  assert_int_equal(nc_options_new(&opts), NC_OK);
  assert_int_equal(nc_options_set_target(opts, "localhost:8443"), NC_OK);
  assert_int_equal(nc_options_set_insecure(opts, true), NC_OK);
  assert_int_equal(nc_options_set_tls_ca_file(opts, "/etc/hostname"), NC_OK);
  assert_int_equal(nc_client_new(opts, &client, &err), NC_ERR_INVALID_ARGUMENT);
  assert_null(client);
  nc_options_free(opts);
}

/* ---- argument checks on handles ---- */

static void test_null_handles(void **state) {
  Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  ProtobufCMessage *resp = NULL;
  nc_stream *stream = NULL;
  nc_health_status hs;
  nc_error err;
  const ProtobufCMessageDescriptor *type = &grpc__health__v1__health_check_response__descriptor;

  assert_int_equal(nc_call_unary(NULL, "/a.B/C", &req.base, type, &resp, NULL, &err),
                   NC_ERR_INVALID_ARGUMENT);
  assert_null(resp);
  assert_int_equal(nc_call_server_stream(NULL, "/a.B/C", &req.base, type, &stream, NULL, &err),
                   NC_ERR_INVALID_ARGUMENT);
  assert_null(stream);
  assert_int_equal(nc_health_check(NULL, "", &hs, NULL, &err), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_health_watch(NULL, "", &stream, NULL, NULL), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_stream_next(NULL, &resp, 0, &err), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_health_watch_next(NULL, &hs, 0, &err), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_client_set_bearer_token(NULL, "t"), NC_ERR_INVALID_ARGUMENT);
  nc_stream_cancel(NULL);
  nc_stream_free(NULL);
  nc_client_free(NULL);
  nc_message_free(NULL);
}

static void test_call_argument_checks(void **state) {
  char target[64];
  closed_port(target, sizeof(target));
  nc_client *client = new_client(target, true);
  Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  const ProtobufCMessageDescriptor *type = &grpc__health__v1__health_check_response__descriptor;
  ProtobufCMessage *resp = NULL;
  nc_error err;

  assert_int_equal(nc_call_unary(client, "no-slash", &req.base, type, &resp, NULL, &err),
                   NC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(err.message, "no-slash"));
  assert_int_equal(nc_call_unary(client, NULL, &req.base, type, &resp, NULL, &err),
                   NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_call_unary(client, "/a.B/C", NULL, type, &resp, NULL, &err),
                   NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_call_unary(client, "/a.B/C", &req.base, NULL, &resp, NULL, &err),
                   NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_call_unary(client, "/a.B/C", &req.base, type, NULL, NULL, &err),
                   NC_ERR_INVALID_ARGUMENT);
  nc_call_options bad_id = {.deadline_ms = 100, .request_id = "bad\nid"};
  assert_int_equal(nc_call_unary(client, "/a.B/C", &req.base, type, &resp, &bad_id, &err),
                   NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_client_set_bearer_token(client, "x\r\ny"), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_client_set_bearer_token(client, "token-1"), NC_OK);
  assert_int_equal(nc_client_set_bearer_token(client, NULL), NC_OK);
  nc_health_status hs;
  assert_int_equal(nc_health_check(client, "", NULL, NULL, &err), NC_ERR_INVALID_ARGUMENT);
  /* a stream of another type is refused by the health unwrapper */
  nc_stream *stream = NULL;
  assert_int_equal(nc_call_server_stream(client, "/a.B/C", &req.base,
                                         &grpc__health__v1__health_check_request__descriptor,
                                         &stream, NULL, &err),
                   NC_OK);
  assert_int_equal(nc_health_watch_next(stream, &hs, 0, &err), NC_ERR_INVALID_ARGUMENT);
  nc_stream_free(stream);
  nc_client_free(client);
}

/* ---- local failures of real calls ---- */

static void test_closed_port_fails_fast(void **state) {
  char target[64];
  closed_port(target, sizeof(target));
  nc_client *client = new_client(target, false); /* TLS with the system roots */
  nc_call_options opts = {.deadline_ms = 300};
  nc_health_status hs = NC_HEALTH_SERVING;
  nc_error err;
  int64_t start = now_ms();
  assert_int_equal(nc_health_check(client, NULL, &hs, &opts, &err), NC_ERR_RPC);
  assert_true(err.code == NC_GRPC_UNAVAILABLE || err.code == NC_GRPC_DEADLINE_EXCEEDED);
  assert_true(err.message[0] != '\0');
  assert_int_equal(hs, NC_HEALTH_UNKNOWN);
  assert_true(now_ms() - start < 5000);
  nc_client_free(client);
}

static void test_closed_port_stream(void **state) {
  char target[64];
  closed_port(target, sizeof(target));
  nc_client *client = new_client(target, true);
  nc_call_options opts = {.deadline_ms = 300};
  nc_stream *stream = NULL;
  nc_health_status hs;
  nc_error err;
  assert_int_equal(nc_health_watch(client, "", &stream, &opts, &err), NC_OK);
  assert_int_equal(nc_health_watch_next(stream, &hs, -1, &err), NC_ERR_RPC);
  assert_true(err.code == NC_GRPC_UNAVAILABLE || err.code == NC_GRPC_DEADLINE_EXCEEDED);
  /* the stream is over: nothing more comes */
  assert_int_equal(nc_health_watch_next(stream, &hs, -1, &err), NC_ERR_CLOSED);
  nc_stream_free(stream);
  nc_client_free(client);
}

/* A listener that never accepts: the TLS handshake never completes, so
 * only the deadline ends the call. */
static void test_unary_deadline_silent_peer(void **state) {
  char target[64];
  int fd = local_socket(true, target, sizeof(target));
  nc_client *client = new_client(target, false);
  nc_call_options opts = {.deadline_ms = 300, .request_id = "unit-test-1"};
  nc_health_status hs;
  nc_error err;
  int64_t start = now_ms();
  assert_int_equal(nc_health_check(client, "", &hs, &opts, &err), NC_ERR_RPC);
  int64_t took = now_ms() - start;
  assert_int_equal(err.code, NC_GRPC_DEADLINE_EXCEEDED);
  assert_true(took >= 250 && took < 5000);
  nc_client_free(client);
  close(fd);
}

/* nc_stream_next timeouts keep the stream; the call's deadline ends it. */
static void test_stream_timeout_then_deadline(void **state) {
  char target[64];
  int fd = local_socket(true, target, sizeof(target));
  nc_client *client = new_client(target, false);
  nc_call_options opts = {.deadline_ms = 600};
  nc_stream *stream = NULL;
  nc_health_status hs;
  nc_error err;
  int64_t start = now_ms();
  assert_int_equal(nc_health_watch(client, "", &stream, &opts, &err), NC_OK);
  assert_int_equal(nc_health_watch_next(stream, &hs, 100, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_DEADLINE_EXCEEDED);
  assert_non_null(strstr(err.message, "continues"));
  assert_int_equal(nc_health_watch_next(stream, &hs, 0, &err), NC_ERR_RPC); /* a poll */
  assert_int_equal(err.code, NC_GRPC_DEADLINE_EXCEEDED);
  assert_true(now_ms() - start < 550);
  assert_int_equal(nc_health_watch_next(stream, &hs, -1, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_DEADLINE_EXCEEDED);
  assert_true(now_ms() - start >= 550);
  assert_int_equal(nc_health_watch_next(stream, &hs, -1, &err), NC_ERR_CLOSED);
  nc_stream_free(stream);

  /* freed while a read is pending: cancelled and drained */
  assert_int_equal(nc_health_watch(client, "", &stream, NULL, &err), NC_OK);
  assert_int_equal(nc_health_watch_next(stream, &hs, 50, &err), NC_ERR_RPC);
  nc_stream_free(stream);

  /* cancelled from "another thread" while waiting */
  assert_int_equal(nc_health_watch(client, "", &stream, NULL, &err), NC_OK);
  nc_stream_cancel(stream);
  assert_int_equal(nc_health_watch_next(stream, &hs, -1, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_CANCELLED);
  nc_stream_free(stream);
  nc_client_free(client);
  close(fd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_version),
      cmocka_unit_test(test_strerror_every_status),
      cmocka_unit_test(test_grpc_code_names),
      cmocka_unit_test(test_health_status_names),
      cmocka_unit_test(test_options_null_arguments),
      cmocka_unit_test(test_options_wrong_handle),
      cmocka_unit_test(test_client_needs_target),
      cmocka_unit_test(test_client_unreadable_ca),
      cmocka_unit_test(test_client_not_pem),
      cmocka_unit_test(test_client_insecure_contradicts_tls),
      cmocka_unit_test(test_null_handles),
      cmocka_unit_test(test_call_argument_checks),
      cmocka_unit_test(test_closed_port_fails_fast),
      cmocka_unit_test(test_closed_port_stream),
      cmocka_unit_test(test_unary_deadline_silent_peer),
      cmocka_unit_test(test_stream_timeout_then_deadline),
  };
  return cmocka_run_group_tests_name("sdk", tests, NULL, NULL);
}
