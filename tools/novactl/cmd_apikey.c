/*
 * cmd_apikey.c - "novactl apikey create|list|revoke": project API keys
 * (IdentityService *ApiKey). create prints the secret exactly once - the
 * server keeps only a hash - with a warning on stderr; use the key with
 * --api-key-file FILE or $NOVACRON_API_KEY.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "resource.h"

static const out_column key_cols[] = {
    {"Name", "name"},
    {"Role", "_role"},
    {"State", "_state"},
    {"Description", "description"},
    {"Secret prefix", "secretPrefix"},
    {"Creator", "creator"},
    {"Expires", "expireTime"},
    {"Last used", "lastUsedTime"},
    {"Created", "createTime"},
    {"Revoked", "revokeTime"},
    {"Etag", "etag"},
};
#define NKEY_COLS (sizeof(key_cols) / sizeof(key_cols[0]))

static const out_column key_list_cols[] = {
    {"KEY", "_id"},
    {"ROLE", "_role"},
    {"STATE", "_state"},
    {"PREFIX", "secretPrefix"},
    {"EXPIRES", "expireTime"},
    {"LAST USED", "lastUsedTime"},
    {"DESCRIPTION", "description"},
};

static void decorate_key(json_t *k) {
  const char *name = json_string_value(json_object_get(k, "name"));
  res_short_enum(k, "role", "ROLE_", "_role");
  res_short_enum(k, "state", "STATE_", "_state");
  if (name) json_object_set_new(k, "_id", json_string(res_last_segment(name)));
}

/* "projects/P/apiKeys/ID" from an id (with --project) or a full name. */
static void key_name(const cli_ctx *ctx, const char *arg, char *buf, size_t len) {
  char parent[512];
  char prefix[600];
  res_project(ctx, parent, sizeof(parent));
  snprintf(prefix, sizeof(prefix), "%s/apiKeys/", parent);
  res_name(buf, len, prefix, arg);
}

int cmd_apikey_create(cli_ctx *ctx) {
  Novacron__V1__CreateApiKeyRequest req = NOVACRON__V1__CREATE_API_KEY_REQUEST__INIT;
  Novacron__V1__ApiKey key = NOVACRON__V1__API_KEY__INIT;
  Google__Protobuf__Timestamp expire = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Novacron__V1__CreateApiKeyResponse *resp = NULL;
  char parent[512];
  char request_id[NC_UUID_LEN + 1];
  nc_client *client = NULL;
  nc_error err;
  int role;
  int rc;

  if (!cli_get(ctx, "role") || !res_parse_role(cli_get(ctx, "role"), &role))
    return out_usage_error(ctx->name, "--role must be viewer, operator or admin");
  if (cli_get(ctx, "ttl") && cli_get(ctx, "expire-time"))
    return out_usage_error(ctx->name, "--ttl and --expire-time contradict each other");
  if (cli_get(ctx, "ttl")) {
    int64_t ttl;
    if (!res_parse_duration(cli_get(ctx, "ttl"), &ttl))
      return out_usage_error(ctx->name, "--ttl must look like 3600s, 90m, 12h or 30d");
    expire.seconds = (int64_t)time(NULL) + ttl;
    key.expire_time = &expire;
  } else if (cli_get(ctx, "expire-time")) {
    if (!res_parse_time(cli_get(ctx, "expire-time"), &expire.seconds))
      return out_usage_error(ctx->name, "--expire-time must look like 2030-01-31T00:00:00Z");
    key.expire_time = &expire;
  }
  res_project(ctx, parent, sizeof(parent));
  req.parent = parent;
  req.api_key_id = (char *)res_last_segment(ctx->argv[0]);
  key.role = (Novacron__V1__Role)role;
  if (cli_get(ctx, "description")) key.description = (char *)cli_get(ctx, "description");
  req.api_key = &key;
  if ((rc = res_request_id(ctx, request_id)) != 0) return rc;
  req.request_id = request_id;
  if ((rc = cli_connect(ctx, &client)) != 0) goto cleanup;
  nc_call_options call_opts = {.deadline_ms = 0, .request_id = request_id};
  nc_status st = nc_identity_create_api_key(client, &req, &resp, &call_opts, &err);
  if (st != NC_OK) {
    rc = out_sdk_error(ctx->name, st, &err);
    goto cleanup;
  }
  json_t *obj = ctx->format == OUT_JSON ? pbjson_message(&resp->base)
                : resp->api_key         ? pbjson_message(&resp->api_key->base)
                                        : json_object();
  if (!obj) {
    rc = out_usage_error(ctx->name, "out of memory");
    goto cleanup;
  }
  if (ctx->format == OUT_TABLE) {
    decorate_key(obj);
    json_object_set_new(obj, "secret", json_string(resp->secret ? resp->secret : ""));
  }
  static const out_column secret_col = {"Secret", "secret"};
  out_column cols[NKEY_COLS + 1];
  memcpy(cols, key_cols, sizeof(key_cols));
  cols[NKEY_COLS] = secret_col;
  out_object(ctx->format, obj, cols, NKEY_COLS + 1);
  fprintf(stderr,
          "novactl: %s: this is the only time the secret is shown: store it now, it cannot "
          "be retrieved again.\n",
          ctx->name);
  rc = EXIT_OK;
cleanup:
  if (resp && resp->secret) explicit_bzero(resp->secret, strlen(resp->secret));
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}

RES_LIST_CALL(list_keys, nc_identity_list_api_keys, ListApiKeysRequest, ListApiKeysResponse)

int cmd_apikey_list(cli_ctx *ctx) {
  Novacron__V1__ListApiKeysRequest req = NOVACRON__V1__LIST_API_KEYS_REQUEST__INIT;
  static const res_list list = {list_keys, "api_keys", key_list_cols,
                                sizeof(key_list_cols) / sizeof(key_list_cols[0]), decorate_key};
  char parent[512];
  nc_client *client = NULL;
  res_project(ctx, parent, sizeof(parent));
  req.parent = parent;
  int rc = cli_connect(ctx, &client);
  if (rc == 0) rc = res_run_list(ctx, client, &req.base, &list);
  nc_client_free(client);
  return rc;
}

int cmd_apikey_revoke(cli_ctx *ctx) {
  Novacron__V1__RevokeApiKeyRequest req = NOVACRON__V1__REVOKE_API_KEY_REQUEST__INIT;
  Novacron__V1__RevokeApiKeyResponse *resp = NULL;
  char name[1024];
  char request_id[NC_UUID_LEN + 1];
  nc_client *client = NULL;
  nc_error err;
  int rc;
  key_name(ctx, ctx->argv[0], name, sizeof(name));
  req.name = name;
  if (cli_get(ctx, "etag")) req.etag = (char *)cli_get(ctx, "etag");
  if ((rc = res_request_id(ctx, request_id)) != 0) return rc;
  req.request_id = request_id;
  if ((rc = cli_connect(ctx, &client)) != 0) goto cleanup;
  nc_call_options call_opts = {.deadline_ms = 0, .request_id = request_id};
  nc_status st = nc_identity_revoke_api_key(client, &req, &resp, &call_opts, &err);
  if (st != NC_OK)
    rc = out_sdk_error(ctx->name, st, &err);
  else if (!resp->api_key)
    rc = out_usage_error(ctx->name, "the server sent no API key");
  else
    rc = res_show(ctx, &resp->api_key->base, key_cols, NKEY_COLS, decorate_key);
cleanup:
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}
