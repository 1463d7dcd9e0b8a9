/*
 * test_sdk_session.c - libnovacron's sessions against a real
 * novacron-server (TLS, the fixture's PostgreSQL): login, the session
 * callback, single-flight refresh under concurrent calls, refresh and retry
 * after an UNAUTHENTICATED answer, reuse detection ending the session in
 * every client holding it, logout, and API keys.
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
#include "novacron/novacron.h"

/* ---- fixture ---- */

static harness_server server;

static int start_server(void **state) {
  static const char *const args[] = {"--access-token-ttl-s",
                                     "30",
                                     "--rate-limit-rps",
                                     "0",
                                     "--rate-limit-anonymous-rps",
                                     "0",
                                     NULL};
  harness_options opts = {.insecure = false, .mtls = false, .extra_args = args};
  return harness_server_start(&server, &opts);
}

static int stop_server(void **state) { return harness_server_stop(&server, 15000) == 0 ? 0 : -1; }

/* What the session callback saw (calls come from any thread). */
typedef struct seen {
  pthread_mutex_t mu;
  int calls;
  int ended;
  char refresh_token[512];
} seen;

static void record(const nc_session *session, void *arg) {
  seen *s = arg;
  pthread_mutex_lock(&s->mu);
  s->calls++;
  if (session)
    snprintf(s->refresh_token, sizeof(s->refresh_token), "%s",
             session->refresh_token ? session->refresh_token : "");
  else
    s->ended++;
  pthread_mutex_unlock(&s->mu);
}

static nc_client *new_client(seen *s, const char *api_key) {
  char ca[512];
  nc_options *opts = NULL;
  nc_client *client = NULL;
  nc_error err;
  assert_int_equal(nc_options_new(&opts), NC_OK);
  assert_int_equal(nc_options_set_target(opts, server.address), NC_OK);
  assert_non_null(harness_cert_path("ca.crt", ca, sizeof(ca)));
  assert_int_equal(nc_options_set_tls_ca_file(opts, ca), NC_OK);
  if (s) assert_int_equal(nc_options_set_session_callback(opts, record, s), NC_OK);
  if (api_key) assert_int_equal(nc_options_set_api_key(opts, api_key), NC_OK);
  nc_status st = nc_client_new(opts, &client, &err);
  if (st != NC_OK) fail_msg("nc_client_new: %s", err.message);
  nc_options_free(opts);
  return client;
}

static nc_client *admin_client(seen *s) {
  nc_client *client = new_client(s, NULL);
  nc_error err;
  nc_status st = nc_client_login(client, "admin", harness_admin_password(), &err);
  if (st != NC_OK) fail_msg("login: %s: %s", nc_strerror(st), err.message);
  return client;
}

/* WhoAmI's principal name into buf; the status of the call. */
static nc_status whoami(nc_client *client, char *buf, size_t len, nc_error *err) {
  Novacron__V1__WhoAmIRequest req = NOVACRON__V1__WHO_AM_IREQUEST__INIT;
  Novacron__V1__WhoAmIResponse *resp = NULL;
  nc_status st = nc_identity_whoami(client, &req, &resp, NULL, err);
  buf[0] = '\0';
  if (st == NC_OK && resp->principal) snprintf(buf, len, "%s", resp->principal->name);
  nc_message_free(resp ? &resp->base : NULL);
  return st;
}

static void seen_init(seen *s) {
  memset(s, 0, sizeof(*s));
  pthread_mutex_init(&s->mu, NULL);
}

/* ---- tests ---- */

static void test_login(void **state) {
  seen s;
  seen_init(&s);
  nc_client *client = new_client(&s, NULL);
  nc_session session;
  nc_error err;
  char name[256];

  assert_int_equal(nc_client_login(client, "admin", "definitely-not-the-password", &err),
                   NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_UNAUTHENTICATED);
  assert_int_equal(nc_client_get_session(client, &session), NC_ERR_NOT_FOUND);
  assert_int_equal(whoami(client, name, sizeof(name), &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_UNAUTHENTICATED);

  assert_int_equal(nc_client_login(client, "admin", harness_admin_password(), &err), NC_OK);
  assert_int_equal(s.calls, 1);
  assert_int_equal(nc_client_get_session(client, &session), NC_OK);
  assert_non_null(strstr(session.session, "users/admin/sessions/"));
  assert_true(session.access_token_expire_time > (int64_t)time(NULL));
  assert_true(session.refresh_token_expire_time > session.access_token_expire_time);
  assert_string_equal(session.refresh_token, s.refresh_token);
  assert_null(session.refresh_request_id);
  nc_session_clear(&session);
  assert_int_equal(whoami(client, name, sizeof(name), &err), NC_OK);
  assert_string_equal(name, "users/admin");
  assert_int_equal(s.calls, 1); /* a fresh token is not refreshed */
  nc_client_free(client);
}

typedef struct worker {
  nc_client *client;
  int failures;
} worker;

static void *call_many(void *arg) {
  worker *w = arg;
  char name[256];
  nc_error err;
  for (int i = 0; i < 20; i++) {
    if (whoami(w->client, name, sizeof(name), &err) != NC_OK || strcmp(name, "users/admin") != 0)
      w->failures++;
  }
  return NULL;
}

/* A token due for refresh with eight threads calling: one refresh, the
 * others wait and use it; the rotated token is reported once. */
static void test_single_flight_refresh(void **state) {
  seen s;
  seen_init(&s);
  nc_client *client = admin_client(&s);
  nc_session session;
  assert_int_equal(nc_client_get_session(client, &session), NC_OK);
  char first_refresh[512];
  snprintf(first_refresh, sizeof(first_refresh), "%s", session.refresh_token);
  /* pretend the access token is about to expire */
  session.access_token_expire_time = (int64_t)time(NULL) + 5;
  assert_int_equal(nc_client_set_session(client, &session), NC_OK);
  nc_session_clear(&session);
  s.calls = 0;

  pthread_t threads[8];
  worker workers[8];
  for (int i = 0; i < 8; i++) {
    workers[i].client = client;
    workers[i].failures = 0;
    assert_int_equal(pthread_create(&threads[i], NULL, call_many, &workers[i]), 0);
  }
  for (int i = 0; i < 8; i++) {
    pthread_join(threads[i], NULL);
    assert_int_equal(workers[i].failures, 0);
  }
  /* the write-ahead report of the request id, then the rotated tokens */
  assert_int_equal(s.calls, 2);
  assert_int_equal(s.ended, 0);
  assert_int_equal(nc_client_get_session(client, &session), NC_OK);
  assert_string_not_equal(session.refresh_token, first_refresh);
  assert_string_equal(session.refresh_token, s.refresh_token);
  assert_null(session.refresh_request_id);
  nc_session_clear(&session);
  nc_client_free(client);
}

/* An access token the server rejects: refreshed, and the call retried. */
static void test_rejected_token_refreshed_and_retried(void **state) {
  seen s;
  seen_init(&s);
  nc_client *client = admin_client(&s);
  nc_session session;
  nc_error err;
  char name[256];
  assert_int_equal(nc_client_get_session(client, &session), NC_OK);
  free(session.access_token);
  session.access_token = strdup("not-a-jwt");
  assert_int_equal(nc_client_set_session(client, &session), NC_OK);
  nc_session_clear(&session);
  s.calls = 0;
  assert_int_equal(whoami(client, name, sizeof(name), &err), NC_OK);
  assert_string_equal(name, "users/admin");
  assert_int_equal(s.calls, 2);
  /* a wrong old password answers UNAUTHENTICATED without any refresh */
  Novacron__V1__ChangePasswordRequest req = NOVACRON__V1__CHANGE_PASSWORD_REQUEST__INIT;
  Novacron__V1__ChangePasswordResponse *resp = NULL;
  char request_id[NC_UUID_LEN + 1];
  assert_int_equal(nc_new_request_id(request_id, sizeof(request_id)), NC_OK);
  req.name = "users/admin";
  req.old_password = "wrong-old-password-123";
  req.new_password = "another-new-password-123";
  req.request_id = request_id;
  assert_int_equal(nc_identity_change_password(client, &req, &resp, NULL, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_UNAUTHENTICATED);
  assert_int_equal(s.calls, 2);
  nc_client_free(client);
}

/* Two clients holding one session: when one presents a spent refresh
 * token the server revokes the session, and both end up without it. */
static void test_reuse_ends_the_session_everywhere(void **state) {
  seen s1;
  seen s2;
  seen_init(&s1);
  seen_init(&s2);
  nc_client *first = admin_client(&s1);
  nc_client *thief = new_client(&s2, NULL);
  nc_session copy;
  nc_error err;
  char name[256];
  assert_int_equal(nc_client_get_session(first, &copy), NC_OK);
  assert_int_equal(nc_client_refresh_session(first, &err), NC_OK); /* spends copy's token */
  assert_int_equal(nc_client_set_session(thief, &copy), NC_OK);
  nc_session_clear(&copy);
  assert_int_equal(nc_client_refresh_session(thief, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_UNAUTHENTICATED);
  assert_non_null(strstr(err.message, "session refresh failed"));
  assert_int_equal(s2.ended, 1);
  assert_int_equal(nc_client_get_session(thief, &copy), NC_ERR_NOT_FOUND);
  /* the first client's tokens died with the session */
  assert_int_equal(whoami(first, name, sizeof(name), &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_UNAUTHENTICATED);
  assert_int_equal(s1.ended, 1);
  assert_int_equal(nc_client_get_session(first, &copy), NC_ERR_NOT_FOUND);
  nc_client_free(first);
  nc_client_free(thief);
}

static void test_logout(void **state) {
  seen s;
  seen_init(&s);
  nc_client *client = admin_client(&s);
  nc_client *other = new_client(NULL, NULL);
  nc_session session;
  nc_error err;
  char name[256];
  assert_int_equal(nc_client_get_session(client, &session), NC_OK);
  assert_int_equal(nc_client_logout(client, &err), NC_OK);
  assert_int_equal(s.ended, 1);
  nc_session none;
  assert_int_equal(nc_client_get_session(client, &none), NC_ERR_NOT_FOUND);
  /* the revoked session's tokens no longer work anywhere */
  session.refresh_token_expire_time = 0;
  assert_int_equal(nc_client_set_session(other, &session), NC_OK);
  nc_session_clear(&session);
  assert_int_equal(whoami(other, name, sizeof(name), &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_UNAUTHENTICATED);
  nc_client_free(client);
  nc_client_free(other);
}

static void test_api_key(void **state) {
  nc_client *admin = admin_client(NULL);
  Novacron__V1__CreateApiKeyRequest req = NOVACRON__V1__CREATE_API_KEY_REQUEST__INIT;
  Novacron__V1__ApiKey key = NOVACRON__V1__API_KEY__INIT;
  Novacron__V1__CreateApiKeyResponse *resp = NULL;
  char request_id[NC_UUID_LEN + 1];
  char key_id[32];
  char name[256];
  nc_error err;
  snprintf(key_id, sizeof(key_id), "sdk-%08x", (unsigned)random());
  assert_int_equal(nc_new_request_id(request_id, sizeof(request_id)), NC_OK);
  req.parent = "projects/default";
  req.api_key_id = key_id;
  key.role = NOVACRON__V1__ROLE__ROLE_VIEWER;
  req.api_key = &key;
  req.request_id = request_id;
  nc_status st = nc_identity_create_api_key(admin, &req, &resp, NULL, &err);
  if (st != NC_OK) fail_msg("CreateApiKey: %s", err.message);

  nc_client *client = new_client(NULL, resp->secret);
  nc_session session;
  assert_int_equal(whoami(client, name, sizeof(name), &err), NC_OK);
  assert_non_null(strstr(name, key_id));
  assert_int_equal(nc_client_get_session(client, &session), NC_ERR_NOT_FOUND);
  assert_int_equal(nc_client_logout(client, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_FAILED_PRECONDITION);
  assert_int_equal(whoami(client, name, sizeof(name), &err), NC_OK); /* the key is kept */
  explicit_bzero(resp->secret, strlen(resp->secret));
  nc_message_free(&resp->base);
  nc_client_free(client);
  nc_client_free(admin);
}

int main(void) {
  srandom((unsigned)time(NULL) ^ (unsigned)getpid());
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_login),
      cmocka_unit_test(test_single_flight_refresh),
      cmocka_unit_test(test_rejected_token_refreshed_and_retried),
      cmocka_unit_test(test_reuse_ends_the_session_everywhere),
      cmocka_unit_test(test_logout),
      cmocka_unit_test(test_api_key),
  };
  return cmocka_run_group_tests_name("sdk_session", tests, start_server, stop_server);
}
