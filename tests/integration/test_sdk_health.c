/*
 * test_sdk_health.c - libnovacron against a real novacron-server: health
 * Check and Watch over TLS, errors from the server (NOT_FOUND,
 * UNIMPLEMENTED), deadlines, the watch across a graceful shutdown, and the
 * TLS variants (wrong CA, plaintext against TLS, mTLS, plaintext server).
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "harness.h"
#include "novacron/novacron.h"
#include "novacron/v1/backup.pb-c.h"
#include "novacron/v1/vm.pb-c.h"

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Client settings for a test: which certificates, plaintext or not. */
typedef struct client_spec {
  const char *ca;   /* file name in NC_CERT_DIR, NULL: none */
  const char *cert; /* with key */
  const char *key;
  bool insecure;
} client_spec;

static nc_client *connect_to(const harness_server *srv, client_spec spec) {
  char path[512], cert[512], key[512];
  nc_options *opts = NULL;
  nc_client *client = NULL;
  nc_error err;
  assert_int_equal(nc_options_new(&opts), NC_OK);
  assert_int_equal(nc_options_set_target(opts, srv->address), NC_OK);
  assert_int_equal(nc_options_set_insecure(opts, spec.insecure), NC_OK);
  assert_int_equal(nc_options_set_user_agent(opts, "test_sdk_health"), NC_OK);
  if (spec.ca) {
    assert_non_null(harness_cert_path(spec.ca, path, sizeof(path)));
    assert_int_equal(nc_options_set_tls_ca_file(opts, path), NC_OK);
  }
  if (spec.cert) {
    assert_non_null(harness_cert_path(spec.cert, cert, sizeof(cert)));
    assert_non_null(harness_cert_path(spec.key, key, sizeof(key)));
    assert_int_equal(nc_options_set_tls_client_cert(opts, cert, key), NC_OK);
  }
  nc_status st = nc_client_new(opts, &client, &err);
  if (st != NC_OK) fail_msg("nc_client_new: %s: %s", nc_strerror(st), err.message);
  nc_options_free(opts);
  return client;
}

static const client_spec tls_client = {.ca = "ca.crt"};

/* ---- the shared TLS server ---- */

static harness_server shared;

static int start_shared(void **state) { return harness_server_start(&shared, NULL); }

static int stop_shared(void **state) {
  int rc = harness_server_stop(&shared, 15000);
  if (rc != 0) fprintf(stderr, "server exit code %d\n", rc);
  return rc == 0 ? 0 : -1;
}

static void test_check_serving(void **state) {
  nc_client *client = connect_to(&shared, tls_client);
  nc_health_status hs = NC_HEALTH_UNKNOWN;
  nc_error err;
  nc_status st = nc_health_check(client, "", &hs, NULL, &err);
  if (st != NC_OK) fail_msg("%s: %s %s", nc_strerror(st), nc_grpc_code_name(err.code), err.message);
  assert_int_equal(hs, NC_HEALTH_SERVING);
  assert_int_equal(err.code, NC_GRPC_OK);
  assert_true(err.request_id[0] != '\0'); /* x-request-id from the server */
  /* NULL means the whole server too; a bearer token rides along */
  assert_int_equal(nc_client_set_bearer_token(client, "not-checked-by-health"), NC_OK);
  assert_int_equal(nc_health_check(client, NULL, &hs, NULL, NULL), NC_OK);
  assert_int_equal(hs, NC_HEALTH_SERVING);
  nc_client_free(client);
}

static void test_check_unknown_service(void **state) {
  nc_client *client = connect_to(&shared, tls_client);
  nc_health_status hs;
  nc_error err;
  nc_call_options opts = {.request_id = "sdk-test-0001"};
  assert_int_equal(nc_health_check(client, "no.such.Service", &hs, &opts, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_NOT_FOUND);
  assert_non_null(strstr(err.message, "no.such.Service"));
  assert_string_equal(err.request_id, "sdk-test-0001"); /* the server kept ours */
  nc_client_free(client);
}

static void test_unimplemented_method(void **state) {
  nc_client *client = connect_to(&shared, tls_client);
  Novacron__V1__GetBackupRequest req = NOVACRON__V1__GET_BACKUP_REQUEST__INIT;
  req.name = "projects/default/backups/b";
  ProtobufCMessage *resp = (ProtobufCMessage *)(uintptr_t)1;
  nc_error err;
  int64_t start = now_ms();
  nc_status st = nc_call_unary(client, "/novacron.v1.BackupService/GetBackup", &req.base,
                               &novacron__v1__backup__descriptor, &resp, NULL, &err);
  int64_t took = now_ms() - start;
  /* without credentials nothing but health and reflection runs */
  assert_int_equal(st, NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_UNAUTHENTICATED);
  assert_non_null(strstr(err.message, "missing credentials"));
  assert_null(resp);
  assert_true(took < 1000);
  /* logged in, the call reaches the method, which is not built yet */
  assert_int_equal(nc_client_login(client, "admin", harness_admin_password(), &err), NC_OK);
  resp = (ProtobufCMessage *)(uintptr_t)1;
  start = now_ms();
  st = nc_call_unary(client, "/novacron.v1.BackupService/GetBackup", &req.base,
                     &novacron__v1__backup__descriptor, &resp, NULL, &err);
  took = now_ms() - start;
  assert_int_equal(st, NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_UNIMPLEMENTED);
  assert_non_null(strstr(err.message, "GetBackup"));
  assert_null(resp);
  assert_true(took < 1000);

  /* a method no service has */
  st = nc_call_unary(client, "/novacron.v1.NoService/Nothing", &req.base,
                     &novacron__v1__backup__descriptor, &resp, NULL, &err);
  assert_int_equal(st, NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_UNIMPLEMENTED);
  nc_client_free(client);
}

static void test_watch_deadline(void **state) {
  nc_client *client = connect_to(&shared, tls_client);
  nc_call_options opts = {.deadline_ms = 400};
  nc_stream *stream = NULL;
  nc_health_status hs;
  nc_error err;
  int64_t start = now_ms();
  assert_int_equal(nc_health_watch(client, "", &stream, &opts, &err), NC_OK);
  assert_int_equal(nc_health_watch_next(stream, &hs, -1, &err), NC_OK);
  assert_int_equal(hs, NC_HEALTH_SERVING);
  assert_true(err.request_id[0] != '\0');
  assert_int_equal(nc_health_watch_next(stream, &hs, -1, &err), NC_ERR_RPC);
  int64_t took = now_ms() - start;
  assert_int_equal(err.code, NC_GRPC_DEADLINE_EXCEEDED);
  assert_true(took >= 350 && took < 5000);
  assert_int_equal(nc_health_watch_next(stream, &hs, -1, &err), NC_ERR_CLOSED);
  nc_stream_free(stream);
  nc_client_free(client);
}

static void test_watch_timeout_and_cancel(void **state) {
  nc_client *client = connect_to(&shared, tls_client);
  nc_stream *stream = NULL;
  nc_health_status hs;
  nc_error err;
  assert_int_equal(nc_health_watch(client, NULL, &stream, NULL, &err), NC_OK);
  assert_int_equal(nc_health_watch_next(stream, &hs, 5000, &err), NC_OK);
  assert_int_equal(hs, NC_HEALTH_SERVING);
  int64_t start = now_ms();
  assert_int_equal(nc_health_watch_next(stream, &hs, 200, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_DEADLINE_EXCEEDED);
  assert_true(now_ms() - start >= 150);
  nc_stream_cancel(stream);
  assert_int_equal(nc_health_watch_next(stream, &hs, -1, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_CANCELLED);
  nc_stream_free(stream);

  /* freeing a live stream cancels it */
  assert_int_equal(nc_health_watch(client, NULL, &stream, NULL, &err), NC_OK);
  assert_int_equal(nc_health_watch_next(stream, &hs, 5000, &err), NC_OK);
  nc_stream_free(stream);
  nc_client_free(client);
}

static void test_wrong_ca(void **state) {
  /* client.crt did not sign the server certificate */
  nc_client *client = connect_to(&shared, (client_spec){.ca = "client.crt"});
  nc_health_status hs;
  nc_error err;
  nc_call_options opts = {.deadline_ms = 5000};
  assert_int_equal(nc_health_check(client, "", &hs, &opts, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_UNAVAILABLE);
  nc_client_free(client);
}

static void test_plaintext_against_tls(void **state) {
  nc_client *client = connect_to(&shared, (client_spec){.insecure = true});
  nc_health_status hs;
  nc_error err;
  nc_call_options opts = {.deadline_ms = 5000};
  assert_int_equal(nc_health_check(client, "", &hs, &opts, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_UNAVAILABLE);
  nc_client_free(client);
}

/* One client shared by several threads while the token changes. */
#define SHARED_THREADS 4
#define SHARED_CALLS 50

static void *check_many(void *arg) {
  nc_client *client = arg;
  intptr_t failures = 0;
  for (int i = 0; i < SHARED_CALLS; i++) {
    nc_health_status hs = NC_HEALTH_UNKNOWN;
    nc_error err;
    if (nc_health_check(client, "", &hs, NULL, &err) != NC_OK || hs != NC_HEALTH_SERVING)
      failures++;
  }
  return (void *)failures;
}

static void test_client_shared_between_threads(void **state) {
  nc_client *client = connect_to(&shared, tls_client);
  pthread_t threads[SHARED_THREADS];
  for (int i = 0; i < SHARED_THREADS; i++)
    assert_int_equal(pthread_create(&threads[i], NULL, check_many, client), 0);
  for (int i = 0; i < 200; i++) {
    char token[32];
    snprintf(token, sizeof(token), "token-%d", i);
    assert_int_equal(nc_client_set_bearer_token(client, i % 3 ? token : NULL), NC_OK);
  }
  intptr_t failures = 0;
  for (int i = 0; i < SHARED_THREADS; i++) {
    void *ret = NULL;
    assert_int_equal(pthread_join(threads[i], &ret), 0);
    failures += (intptr_t)ret;
  }
  assert_int_equal(failures, 0);
  nc_client_free(client);
}

/* ---- tests with their own server ---- */

static void test_watch_across_shutdown(void **state) {
  harness_server srv;
  assert_int_equal(harness_server_start(&srv, NULL), 0);
  nc_client *client = connect_to(&srv, tls_client);
  nc_stream *stream = NULL;
  nc_health_status hs;
  nc_error err;
  assert_int_equal(nc_health_watch(client, "", &stream, NULL, &err), NC_OK);
  assert_int_equal(nc_health_watch_next(stream, &hs, 5000, &err), NC_OK);
  assert_int_equal(hs, NC_HEALTH_SERVING);
  /* a local timeout leaves the read pending; the next call picks it up */
  assert_int_equal(nc_health_watch_next(stream, &hs, 100, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_DEADLINE_EXCEEDED);

  assert_int_equal(harness_server_signal(&srv, SIGTERM), 0);
  assert_int_equal(nc_health_watch_next(stream, &hs, 10000, &err), NC_OK);
  assert_int_equal(hs, NC_HEALTH_NOT_SERVING);
  assert_int_equal(nc_health_watch_next(stream, &hs, 15000, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_UNAVAILABLE);
  nc_stream_free(stream);
  nc_client_free(client);

  assert_int_equal(harness_server_wait(&srv, 15000), 0);
  assert_true(WIFEXITED(srv.exit_status));
  assert_int_equal(WEXITSTATUS(srv.exit_status), 0);
  assert_int_equal(harness_server_stop(&srv, 1000), 0);
}

static void test_mtls(void **state) {
  harness_server srv;
  harness_options hopts = {.mtls = true};
  nc_health_status hs;
  nc_error err;
  nc_call_options opts = {.deadline_ms = 5000};
  assert_int_equal(harness_server_start(&srv, &hopts), 0);

  nc_client *anonymous = connect_to(&srv, tls_client);
  assert_int_equal(nc_health_check(anonymous, "", &hs, &opts, &err), NC_ERR_RPC);
  assert_int_equal(err.code, NC_GRPC_UNAVAILABLE);
  nc_client_free(anonymous);

  nc_client *client =
      connect_to(&srv, (client_spec){.ca = "ca.crt", .cert = "client.crt", .key = "client.key"});
  nc_status st = nc_health_check(client, "", &hs, &opts, &err);
  if (st != NC_OK) fail_msg("%s: %s %s", nc_strerror(st), nc_grpc_code_name(err.code), err.message);
  assert_int_equal(hs, NC_HEALTH_SERVING);
  nc_client_free(client);
  assert_int_equal(harness_server_stop(&srv, 15000), 0);
}

static void test_plaintext_server(void **state) {
  harness_server srv;
  harness_options hopts = {.insecure = true};
  nc_health_status hs;
  nc_error err;
  assert_int_equal(harness_server_start(&srv, &hopts), 0);
  nc_client *client = connect_to(&srv, (client_spec){.insecure = true});
  assert_int_equal(nc_health_check(client, "", &hs, NULL, &err), NC_OK);
  assert_int_equal(hs, NC_HEALTH_SERVING);
  nc_client_free(client);
  assert_int_equal(harness_server_stop(&srv, 15000), 0);
}

int main(void) {
  const struct CMUnitTest shared_tests[] = {
      cmocka_unit_test(test_check_serving),
      cmocka_unit_test(test_check_unknown_service),
      cmocka_unit_test(test_unimplemented_method),
      cmocka_unit_test(test_watch_deadline),
      cmocka_unit_test(test_watch_timeout_and_cancel),
      cmocka_unit_test(test_wrong_ca),
      cmocka_unit_test(test_plaintext_against_tls),
      cmocka_unit_test(test_client_shared_between_threads),
  };
  const struct CMUnitTest own_server_tests[] = {
      cmocka_unit_test(test_watch_across_shutdown),
      cmocka_unit_test(test_mtls),
      cmocka_unit_test(test_plaintext_server),
  };
  int failed = cmocka_run_group_tests_name("sdk_health_shared_server", shared_tests, start_shared,
                                           stop_shared);
  failed += cmocka_run_group_tests_name("sdk_health_own_server", own_server_tests, NULL, NULL);
  return failed;
}
