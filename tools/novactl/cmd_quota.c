/*
 * cmd_quota.c - "novactl quota get|set [PROJECT]": a project's resource
 * limits and usage (IdentityService GetQuota/SetQuota). set changes only
 * the limits given; "unlimited" removes a limit.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "resource.h"

/* One limit: its flag, its JSON key and its field in Quota.Limits. */
typedef struct quota_limit {
  const char *flag;     /* "memory-mib" */
  const char *path;     /* update mask path, "limits.memory_mib" */
  const char *json_key; /* "memoryMib" */
  size_t offset;        /* of the Int64Value pointer in Quota.Limits */
} quota_limit;

static const quota_limit limits[] = {
    {"vcpus", "limits.vcpus", "vcpus", offsetof(Novacron__V1__Quota__Limits, vcpus)},
    {"memory-mib", "limits.memory_mib", "memoryMib",
     offsetof(Novacron__V1__Quota__Limits, memory_mib)},
    {"vms", "limits.vms", "vms", offsetof(Novacron__V1__Quota__Limits, vms)},
    {"volumes", "limits.volumes", "volumes", offsetof(Novacron__V1__Quota__Limits, volumes)},
    {"volume-gib", "limits.volume_gib", "volumeGib",
     offsetof(Novacron__V1__Quota__Limits, volume_gib)},
    {"networks", "limits.networks", "networks", offsetof(Novacron__V1__Quota__Limits, networks)},
    {"backup-gib", "limits.backup_gib", "backupGib",
     offsetof(Novacron__V1__Quota__Limits, backup_gib)},
};
#define NLIMITS (sizeof(limits) / sizeof(limits[0]))

/* "projects/P/quota" from the argument or --project. */
static void quota_name(const cli_ctx *ctx, char *buf, size_t len) {
  char project[512];
  res_name(project, sizeof(project), "projects/",
           ctx->argc > 0 ? ctx->argv[0] : cli_get(ctx, "project"));
  snprintf(buf, len, "%s/quota", project);
}

/* Table: one row per resource with its limit and usage; JSON: the quota. */
static int show_quota(const cli_ctx *ctx, const Novacron__V1__Quota *quota) {
  static const out_column cols[] = {
      {"RESOURCE", "resource"}, {"LIMIT", "limit"}, {"USAGE", "usage"}};
  if (!quota) return out_usage_error(ctx->name, "the server sent no quota");
  json_t *obj = pbjson_message(&quota->base);
  if (!obj) return out_usage_error(ctx->name, "out of memory");
  if (ctx->format == OUT_JSON) {
    out_object(OUT_JSON, obj, NULL, 0);
    return EXIT_OK;
  }
  json_t *rows = json_array();
  json_t *lim = json_object_get(obj, "limits");
  json_t *use = json_object_get(obj, "usage");
  for (size_t i = 0; rows && i < NLIMITS; i++) {
    json_t *l = json_object_get(lim, limits[i].json_key);
    json_t *u = json_object_get(use, limits[i].json_key);
    /* "o" takes a reference: borrowed values get one first */
    json_array_append_new(rows, json_pack("{s:s, s:o, s:o}", "resource", limits[i].flag, "limit",
                                          l ? json_incref(l) : json_string("unlimited"), "usage",
                                          u ? json_incref(u) : json_integer(0)));
  }
  json_decref(obj);
  if (!rows) return out_usage_error(ctx->name, "out of memory");
  out_list(OUT_TABLE, rows, cols, sizeof(cols) / sizeof(cols[0]));
  return EXIT_OK;
}

int cmd_quota_get(cli_ctx *ctx) {
  Novacron__V1__GetQuotaRequest req = NOVACRON__V1__GET_QUOTA_REQUEST__INIT;
  Novacron__V1__GetQuotaResponse *resp = NULL;
  char name[600];
  nc_client *client = NULL;
  nc_error err;
  quota_name(ctx, name, sizeof(name));
  req.name = name;
  int rc = cli_connect(ctx, &client);
  if (rc != 0) goto cleanup;
  nc_status st = nc_identity_get_quota(client, &req, &resp, NULL, &err);
  rc = st != NC_OK ? out_sdk_error(ctx->name, st, &err) : show_quota(ctx, resp->quota);
cleanup:
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}

int cmd_quota_set(cli_ctx *ctx) {
  Novacron__V1__SetQuotaRequest req = NOVACRON__V1__SET_QUOTA_REQUEST__INIT;
  Novacron__V1__Quota quota = NOVACRON__V1__QUOTA__INIT;
  Novacron__V1__Quota__Limits lims = NOVACRON__V1__QUOTA__LIMITS__INIT;
  Google__Protobuf__Int64Value values[NLIMITS];
  Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
  Novacron__V1__SetQuotaResponse *resp = NULL;
  char *paths[NLIMITS];
  char name[600];
  char request_id[NC_UUID_LEN + 1];
  nc_client *client = NULL;
  nc_error err;
  int rc;

  for (size_t i = 0; i < NLIMITS; i++) {
    const char *text = cli_get(ctx, limits[i].flag);
    if (!text) continue;
    google__protobuf__int64_value__init(&values[i]);
    if (strcmp(text, "unlimited") != 0) {
      if (!res_parse_int64(text, &values[i].value) || values[i].value < 0)
        return out_usage_error(ctx->name, "--%s must be a number >= 0 or \"unlimited\"",
                               limits[i].flag);
      /* a listed limit left unset becomes unlimited */
      *(Google__Protobuf__Int64Value **)((char *)&lims + limits[i].offset) = &values[i];
    }
    paths[mask.n_paths++] = (char *)limits[i].path;
  }
  if (mask.n_paths == 0)
    return out_usage_error(ctx->name,
                           "nothing to change: give --vcpus, --memory-mib, --vms, --volumes, "
                           "--volume-gib, --networks or --backup-gib");
  quota_name(ctx, name, sizeof(name));
  quota.name = name;
  quota.limits = &lims;
  if (cli_get(ctx, "etag")) quota.etag = (char *)cli_get(ctx, "etag");
  mask.paths = paths;
  req.quota = &quota;
  req.update_mask = &mask;
  if ((rc = res_request_id(ctx, request_id)) != 0) return rc;
  req.request_id = request_id;
  if ((rc = cli_connect(ctx, &client)) != 0) goto cleanup;
  nc_call_options call_opts = {.deadline_ms = 0, .request_id = request_id};
  nc_status st = nc_identity_set_quota(client, &req, &resp, &call_opts, &err);
  rc = st != NC_OK ? out_sdk_error(ctx->name, st, &err) : show_quota(ctx, resp->quota);
cleanup:
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}
