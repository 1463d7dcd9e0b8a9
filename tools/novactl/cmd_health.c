/*
 * cmd_health.c - "novactl health [SERVICE] [--watch]": the gRPC health
 * protocol. Exit 0 when serving, 3 when not, 1 when the call failed.
 */
#include <stdio.h>

#include "cli.h"

/* Shows one status as {"service": ..., "status": ...}. */
static void show(const cli_ctx *ctx, const char *service, nc_health_status status) {
  json_t *obj =
      json_pack("{s:s, s:s}", "service", service, "status", nc_health_status_name(status));
  if (obj) out_scalar(ctx->format, obj, "status");
}

static int check(cli_ctx *ctx, nc_client *client, const char *service) {
  nc_health_status status = NC_HEALTH_UNKNOWN;
  nc_error err;
  nc_status st = nc_health_check(client, service, &status, NULL, &err);
  if (st != NC_OK) return out_sdk_error(ctx->command->name, st, &err);
  show(ctx, service, status);
  return status == NC_HEALTH_SERVING ? EXIT_OK : EXIT_NOT_SERVING;
}

static int watch(cli_ctx *ctx, nc_client *client, const char *service) {
  nc_stream *stream = NULL;
  nc_health_status status = NC_HEALTH_UNKNOWN;
  nc_error err;
  int rc = EXIT_OK;
  /* a watch runs until the server ends it, unless --timeout is given */
  nc_call_options call_opts = {.deadline_ms = cli_given(ctx, "timeout") ? 0 : -1};

  nc_status st = nc_health_watch(client, service, &stream, &call_opts, &err);
  if (st != NC_OK) {
    rc = out_sdk_error(ctx->command->name, st, &err);
    goto cleanup;
  }
  for (;;) {
    nc_health_status next;
    st = nc_health_watch_next(stream, &next, -1, &err);
    if (st == NC_ERR_END_OF_STREAM) {
      rc = status == NC_HEALTH_SERVING ? EXIT_OK : EXIT_NOT_SERVING;
      break;
    }
    if (st != NC_OK) {
      rc = out_sdk_error(ctx->command->name, st, &err);
      break;
    }
    status = next;
    show(ctx, service, status);
  }
cleanup:
  nc_stream_free(stream);
  return rc;
}

int cmd_health(cli_ctx *ctx) {
  nc_client *client = NULL;
  const char *service = ctx->argc > 0 ? ctx->argv[0] : "";
  int rc = cli_connect(ctx, &client);
  if (rc != 0) goto cleanup;
  rc = cli_switch(ctx, "watch") ? watch(ctx, client, service) : check(ctx, client, service);
cleanup:
  nc_client_free(client);
  return rc;
}
