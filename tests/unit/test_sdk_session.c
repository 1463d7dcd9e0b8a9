/*
 * test_sdk_session.c - unit tests of libnovacron's credentials and
 * sessions that need no server: request ids, API key and callback options,
 * saving and restoring a session, the typed identity wrappers' argument
 * checks, and what login, logout and refresh do when the server cannot be
 * reached (the session survives a failed refresh, whose request id is
 * reported before the call and reused by the next attempt).
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

#include "novacron/novacron.h"

/* ---- helpers ---- */

/* "127.0.0.1:PORT" of a port nothing listens on. */
static void closed_port(char *target, size_t len) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
  socklen_t alen = sizeof(addr);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &alen), 0);
  snprintf(target, len, "127.0.0.1:%u", (unsigned)ntohs(addr.sin_port));
  close(fd);
}

/* What the session callback saw. */
typedef struct seen {
  int calls;
  int ended; /* calls with NULL */
  char access_token[256];
  char refresh_token[256];
  char refresh_request_id[64];
} seen;

static void record(const nc_session *session, void *arg) {
  seen *s = arg;
  s->calls++;
  if (!session) {
    s->ended++;
    return;
  }
  snprintf(s->access_token, sizeof(s->access_token), "%s", session->access_token);
  snprintf(s->refresh_token, sizeof(s->refresh_token), "%s",
           session->refresh_token ? session->refresh_token : "");
  snprintf(s->refresh_request_id, sizeof(s->refresh_request_id), "%s",
           session->refresh_request_id ? session->refresh_request_id : "");
}

/* A client of a closed port with a short deadline and the callback. */
static nc_client *offline_client(seen *s) {
  char target[64];
  nc_options *opts = NULL;
  nc_client *client = NULL;
  nc_error err;
  closed_port(target, sizeof(target));
  assert_int_equal(nc_options_new(&opts), NC_OK);
  assert_int_equal(nc_options_set_target(opts, target), NC_OK);
  assert_int_equal(nc_options_set_insecure(opts, true), NC_OK);
  assert_int_equal(nc_options_set_default_deadline_ms(opts, 2000), NC_OK);
  if (s) assert_int_equal(nc_options_set_session_callback(opts, record, s), NC_OK);
  assert_int_equal(nc_client_new(opts, &client, &err), NC_OK);
  nc_options_free(opts);
  return client;
}

static nc_session make_session(const char *access, int64_t access_expire, const char *refresh) {
  nc_session s;
  memset(&s, 0, sizeof(s));
  s.access_token = (char *)access;
  s.access_token_expire_time = access_expire;
  s.refresh_token = (char *)refresh;
  s.refresh_token_expire_time = (int64_t)time(NULL) + 86400;
  s.session = "users/alice/sessions/s1";
  return s;
}

/* ---- request ids ---- */

static void test_request_id(void **state) {
  char a[NC_UUID_LEN + 1];
  char b[NC_UUID_LEN + 1];
  assert_int_equal(nc_new_request_id(a, sizeof(a)), NC_OK);
  assert_int_equal(nc_new_request_id(b, sizeof(b)), NC_OK);
  assert_int_equal(strlen(a), NC_UUID_LEN);
  assert_string_not_equal(a, b);
  for (int i = 0; i < NC_UUID_LEN; i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23)
      assert_int_equal(a[i], '-');
    else
      assert_non_null(strchr("0123456789abcdef", a[i]));
  }
  assert_int_equal(a[14], '4');           /* version 4 */
  assert_non_null(strchr("89ab", a[19])); /* RFC 4122 variant */
  assert_int_equal(nc_new_request_id(a, NC_UUID_LEN), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_new_request_id(NULL, 64), NC_ERR_INVALID_ARGUMENT);
}

/* ---- options ---- */

static void test_options_api_key_and_callback(void **state) {
  nc_options *opts = NULL;
  seen s = {0};
  assert_int_equal(nc_options_set_api_key(NULL, "k"), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_options_set_session_callback(NULL, record, &s), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_options_new(&opts), NC_OK);
  assert_int_equal(nc_options_set_api_key(opts, ""), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_options_set_api_key(opts, "bad\nkey"), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_options_set_api_key(opts, "nck_0123456789abcdef"), NC_OK);
  assert_int_equal(nc_options_set_api_key(opts, "nck_replaced"), NC_OK);
  assert_int_equal(nc_options_set_api_key(opts, NULL), NC_OK);
  assert_int_equal(nc_options_set_session_callback(opts, record, &s), NC_OK);
  assert_int_equal(nc_options_set_session_callback(opts, NULL, NULL), NC_OK);
  nc_options_free(opts);
}

static void test_api_key_client_has_no_session(void **state) {
  char target[64];
  nc_options *opts = NULL;
  nc_client *client = NULL;
  nc_session out;
  nc_error err;
  closed_port(target, sizeof(target));
  assert_int_equal(nc_options_new(&opts), NC_OK);
  assert_int_equal(nc_options_set_target(opts, target), NC_OK);
  assert_int_equal(nc_options_set_insecure(opts, true), NC_OK);
  assert_int_equal(nc_options_set_api_key(opts, "nck_secret"), NC_OK);
  assert_int_equal(nc_client_new(opts, &client, &err), NC_OK);
  nc_options_free(opts);
  assert_int_equal(nc_client_get_session(client, &out), NC_ERR_NOT_FOUND);
  assert_null(out.access_token);
  assert_int_equal(nc_client_refresh_session(client, &err), NC_ERR_NOT_FOUND);
  nc_client_free(client);
}

/* ---- saving and restoring ---- */

static void test_session_round_trip(void **state) {
  seen s = {0};
  nc_client *client = offline_client(&s);
  nc_session in = make_session("access-1", 1700000000, "refresh-1");
  nc_session out;
  in.refresh_request_id = "0b7c9d2e-1f3a-4b5c-8d6e-7f8091a2b3c4";

  assert_int_equal(nc_client_get_session(client, &out), NC_ERR_NOT_FOUND);
  assert_int_equal(nc_client_set_session(client, &in), NC_OK);
  assert_int_equal(nc_client_get_session(client, &out), NC_OK);
  assert_string_equal(out.access_token, "access-1");
  assert_int_equal(out.access_token_expire_time, 1700000000);
  assert_string_equal(out.refresh_token, "refresh-1");
  assert_int_equal(out.refresh_token_expire_time, in.refresh_token_expire_time);
  assert_string_equal(out.session, "users/alice/sessions/s1");
  assert_string_equal(out.refresh_request_id, in.refresh_request_id);
  nc_session_clear(&out);
  assert_null(out.access_token);
  assert_null(out.refresh_token);

  /* optional fields may be absent; "" counts as absent */
  in = make_session("access-2", 0, NULL);
  in.session = "";
  assert_int_equal(nc_client_set_session(client, &in), NC_OK);
  assert_int_equal(nc_client_get_session(client, &out), NC_OK);
  assert_string_equal(out.access_token, "access-2");
  assert_null(out.refresh_token);
  assert_null(out.session);
  assert_null(out.refresh_request_id);
  nc_session_clear(&out);

  /* restoring never reports to the callback */
  assert_int_equal(s.calls, 0);

  /* a plain bearer token replaces the session */
  assert_int_equal(nc_client_set_bearer_token(client, "plain"), NC_OK);
  assert_int_equal(nc_client_get_session(client, &out), NC_ERR_NOT_FOUND);
  assert_int_equal(nc_client_set_session(client, &in), NC_OK);
  assert_int_equal(nc_client_set_session(client, NULL), NC_OK);
  assert_int_equal(nc_client_get_session(client, &out), NC_ERR_NOT_FOUND);
  nc_client_free(client);
}

static void test_session_argument_checks(void **state) {
  nc_client *client = offline_client(NULL);
  nc_session in = make_session(NULL, 0, "r");
  nc_session out;
  assert_int_equal(nc_client_set_session(client, &in), NC_ERR_INVALID_ARGUMENT);
  in.access_token = "";
  assert_int_equal(nc_client_set_session(client, &in), NC_ERR_INVALID_ARGUMENT);
  in.access_token = "bad\r\ntoken";
  assert_int_equal(nc_client_set_session(client, &in), NC_ERR_INVALID_ARGUMENT);
  in.access_token = "good";
  in.refresh_request_id = "0123456789012345678901234567890123456789"; /* too long */
  assert_int_equal(nc_client_set_session(client, &in), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_client_set_session(NULL, &in), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_client_get_session(NULL, &out), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_client_get_session(client, NULL), NC_ERR_INVALID_ARGUMENT);
  nc_session_clear(NULL);
  nc_client_free(client);
}

/* ---- the typed wrappers ---- */

static void test_wrapper_argument_checks(void **state) {
  nc_client *client = offline_client(NULL);
  Novacron__V1__GetUserRequest get = NOVACRON__V1__GET_USER_REQUEST__INIT;
  Novacron__V1__GetProjectRequest wrong = NOVACRON__V1__GET_PROJECT_REQUEST__INIT;
  Novacron__V1__GetUserResponse *resp = (Novacron__V1__GetUserResponse *)(uintptr_t)1;
  nc_error err;

  assert_int_equal(nc_identity_get_user(NULL, &get, &resp, NULL, &err), NC_ERR_INVALID_ARGUMENT);
  assert_null(resp);
  assert_int_equal(nc_identity_get_user(client, NULL, &resp, NULL, &err), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_identity_get_user(client, &get, NULL, NULL, &err), NC_ERR_INVALID_ARGUMENT);
  /* a request of another type, as a careless cast would pass it */
  assert_int_equal(
      nc_identity_get_user(client, (const Novacron__V1__GetUserRequest *)&wrong, &resp, NULL, &err),
      NC_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(err.message, "novacron.v1.GetUserRequest"));
  /* a real call reaches the (absent) server */
  get.name = "users/alice";
  assert_int_equal(nc_identity_get_user(client, &get, &resp, NULL, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_UNAVAILABLE);
  assert_null(resp);
  nc_client_free(client);
}

/* ---- login, logout, refresh without a server ---- */

static void test_login_failure_keeps_the_session(void **state) {
  seen s = {0};
  nc_client *client = offline_client(&s);
  nc_session in = make_session("access-1", (int64_t)time(NULL) + 3600, "refresh-1");
  nc_session out;
  nc_error err;
  assert_int_equal(nc_client_login(client, NULL, "pw", &err), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_client_login(client, "alice", NULL, &err), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_client_login(NULL, "alice", "pw", &err), NC_ERR_INVALID_ARGUMENT);
  assert_int_equal(nc_client_set_session(client, &in), NC_OK);
  assert_int_equal(nc_client_login(client, "alice", "correct horse battery", &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_UNAVAILABLE);
  assert_int_equal(nc_client_get_session(client, &out), NC_OK);
  assert_string_equal(out.access_token, "access-1");
  nc_session_clear(&out);
  assert_int_equal(s.calls, 0);
  nc_client_free(client);
}

static void test_logout_forgets_even_offline(void **state) {
  seen s = {0};
  nc_client *client = offline_client(&s);
  nc_session in = make_session("access-1", (int64_t)time(NULL) + 3600, "refresh-1");
  nc_session out;
  nc_error err;
  assert_int_equal(nc_client_set_session(client, &in), NC_OK);
  assert_int_equal(nc_client_logout(client, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_UNAVAILABLE);
  assert_int_equal(nc_client_get_session(client, &out), NC_ERR_NOT_FOUND);
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.ended, 1);
  /* nothing left to end: no second report */
  assert_int_equal(nc_client_logout(client, &err), NC_ERR_RPC);
  assert_int_equal(s.calls, 1);
  nc_client_free(client);
}

/* An expired access token: the call refreshes first; the refresh cannot
 * reach the server, so the call fails with the refresh's reason, the
 * session stays, and the refresh's request id was reported before the call
 * and is reused by the next attempt. */
static void test_failed_refresh_keeps_session_and_request_id(void **state) {
  seen s = {0};
  nc_client *client = offline_client(&s);
  nc_session in = make_session("access-old", (int64_t)time(NULL) - 10, "refresh-1");
  Novacron__V1__WhoAmIRequest req = NOVACRON__V1__WHO_AM_IREQUEST__INIT;
  Novacron__V1__WhoAmIResponse *resp = NULL;
  nc_session out;
  nc_error err;
  char first_id[64];

  assert_int_equal(nc_client_set_session(client, &in), NC_OK);
  assert_int_equal(nc_identity_whoami(client, &req, &resp, NULL, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_UNAVAILABLE);
  assert_non_null(strstr(err.message, "session refresh failed"));
  assert_null(resp);
  assert_int_equal(s.calls, 1); /* the write-ahead report */
  assert_string_equal(s.refresh_token, "refresh-1");
  assert_int_equal(strlen(s.refresh_request_id), NC_UUID_LEN);
  snprintf(first_id, sizeof(first_id), "%s", s.refresh_request_id);

  assert_int_equal(nc_client_get_session(client, &out), NC_OK);
  assert_string_equal(out.access_token, "access-old");
  assert_string_equal(out.refresh_token, "refresh-1");
  assert_string_equal(out.refresh_request_id, first_id);
  nc_session_clear(&out);

  /* the next attempt reuses the id: nothing new to report */
  assert_int_equal(nc_client_refresh_session(client, &err), NC_ERR_RPC);
  assert_int_equal(s.calls, 1);
  assert_int_equal(nc_client_get_session(client, &out), NC_OK);
  assert_string_equal(out.refresh_request_id, first_id);
  nc_session_clear(&out);
  nc_client_free(client);
}

/* An access token still valid for a while but within the refresh margin:
 * a failed refresh does not stop the call, which goes out with it. */
static void test_refresh_failure_before_expiry_still_calls(void **state) {
  seen s = {0};
  nc_client *client = offline_client(&s);
  nc_session in = make_session("access-1", (int64_t)time(NULL) + 30, "refresh-1");
  Novacron__V1__WhoAmIRequest req = NOVACRON__V1__WHO_AM_IREQUEST__INIT;
  Novacron__V1__WhoAmIResponse *resp = NULL;
  nc_error err;
  assert_int_equal(nc_client_set_session(client, &in), NC_OK);
  assert_int_equal(nc_identity_whoami(client, &req, &resp, NULL, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_UNAVAILABLE);
  assert_null(strstr(err.message, "session refresh failed"));
  assert_int_equal(s.calls, 1);
  nc_client_free(client);
}

/* Far from expiry nothing is refreshed and nothing reported. */
static void test_fresh_token_is_not_refreshed(void **state) {
  seen s = {0};
  nc_client *client = offline_client(&s);
  nc_session in = make_session("access-1", (int64_t)time(NULL) + 3600, "refresh-1");
  Novacron__V1__WhoAmIRequest req = NOVACRON__V1__WHO_AM_IREQUEST__INIT;
  Novacron__V1__WhoAmIResponse *resp = NULL;
  nc_session out;
  nc_error err;
  assert_int_equal(nc_client_set_session(client, &in), NC_OK);
  assert_int_equal(nc_identity_whoami(client, &req, &resp, NULL, &err), NC_ERR_RPC);
  assert_int_equal(s.calls, 0);
  assert_int_equal(nc_client_get_session(client, &out), NC_OK);
  assert_null(out.refresh_request_id);
  nc_session_clear(&out);
  nc_client_free(client);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_request_id),
      cmocka_unit_test(test_options_api_key_and_callback),
      cmocka_unit_test(test_api_key_client_has_no_session),
      cmocka_unit_test(test_session_round_trip),
      cmocka_unit_test(test_session_argument_checks),
      cmocka_unit_test(test_wrapper_argument_checks),
      cmocka_unit_test(test_login_failure_keeps_the_session),
      cmocka_unit_test(test_logout_forgets_even_offline),
      cmocka_unit_test(test_failed_refresh_keeps_session_and_request_id),
      cmocka_unit_test(test_refresh_failure_before_expiry_still_calls),
      cmocka_unit_test(test_fresh_token_is_not_refreshed),
  };
  return cmocka_run_group_tests_name("sdk_session", tests, NULL, NULL);
}
