/*
 * health.c - the smallest useful libnovacron program: ask a NovaCron
 * server whether it is serving (grpc.health.v1 Check), then optionally
 * follow changes (Watch). Built against the installed SDK:
 *
 *   cc health.c $(pkg-config --cflags --libs novacron) -o health
 *   ./health [TARGET [CA_FILE]] [--watch]
 *
 * TARGET defaults to $NOVACRON_TARGET, then localhost:8443; CA_FILE to
 * $NOVACRON_CA, then the system roots. Exit 0 when serving, 3 when not,
 * 1 when the call failed.
 */
#include <novacron/novacron.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, nc_status st, const nc_error *err) {
  fprintf(stderr, "health: %s: %s", what, nc_strerror(st));
  if (st == NC_ERR_RPC) fprintf(stderr, " (%s)", nc_grpc_code_name(err->code));
  if (err->message[0]) fprintf(stderr, ": %s", err->message);
  if (err->request_id[0]) fprintf(stderr, " [request id %s]", err->request_id);
  fputc('\n', stderr);
  return 1;
}

int main(int argc, char **argv) {
  const char *target = getenv("NOVACRON_TARGET");
  const char *ca = getenv("NOVACRON_CA");
  int watch = 0, positional = 0, rc = 1;
  nc_options *opts = NULL;
  nc_client *client = NULL;
  nc_stream *stream = NULL;
  nc_health_status status = NC_HEALTH_UNKNOWN;
  nc_error err;
  nc_status st;

  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--watch") == 0)
      watch = 1;
    else if (positional == 0 && ++positional)
      target = argv[i];
    else if (positional == 1 && ++positional)
      ca = argv[i];
    else {
      fprintf(stderr, "usage: %s [TARGET [CA_FILE]] [--watch]\n", argv[0]);
      return 2;
    }
  }
  if (!target || !*target) target = "localhost:8443";
  printf("libnovacron %s, checking %s\n", nc_version(), target);

  /* options are copied into the client: free them right after */
  if (nc_options_new(&opts) != NC_OK || nc_options_set_target(opts, target) != NC_OK ||
      (ca && *ca && nc_options_set_tls_ca_file(opts, ca) != NC_OK) ||
      nc_options_set_user_agent(opts, "health-example/1.0") != NC_OK) {
    fprintf(stderr, "health: bad options\n");
    goto cleanup;
  }
  if ((st = nc_client_new(opts, &client, &err)) != NC_OK) {
    rc = fail("connect", st, &err);
    goto cleanup;
  }

  /* one Check with a 5 s deadline */
  nc_call_options call = {.deadline_ms = 5000, .request_id = NULL};
  if ((st = nc_health_check(client, "", &status, &call, &err)) != NC_OK) {
    rc = fail("check", st, &err);
    goto cleanup;
  }
  printf("%s (request id %s)\n", nc_health_status_name(status), err.request_id);
  rc = status == NC_HEALTH_SERVING ? 0 : 3;
  if (!watch) goto cleanup;

  /* Watch: the current status, then every change until the server ends it */
  call.deadline_ms = -1; /* no deadline: watch until the server goes away */
  if ((st = nc_health_watch(client, "", &stream, &call, &err)) != NC_OK) {
    rc = fail("watch", st, &err);
    goto cleanup;
  }
  while ((st = nc_health_watch_next(stream, &status, -1, &err)) == NC_OK) {
    printf("%s\n", nc_health_status_name(status));
    fflush(stdout);
  }
  if (st != NC_ERR_END_OF_STREAM) rc = fail("watch", st, &err);

cleanup:
  nc_stream_free(stream);
  nc_client_free(client);
  nc_options_free(opts);
  return rc;
}
