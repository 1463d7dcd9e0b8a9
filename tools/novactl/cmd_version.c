/*
 * cmd_version.c - "novactl version": the versions of novactl and of the
 * SDK it runs on. Local only: it needs no server.
 */
#include "cli.h"

int cmd_version(cli_ctx *ctx) {
  static const out_column cols[] = {{"novactl", "novactl"}, {"libnovacron", "sdk"}};
  json_t *obj = json_pack("{s:s, s:s}", "novactl", NC_VERSION, "sdk", nc_version());
  if (!obj) return EXIT_FAILURE_RPC;
  out_object(ctx->format, obj, cols, sizeof(cols) / sizeof(cols[0]));
  return EXIT_OK;
}
