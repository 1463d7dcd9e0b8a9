/*
 * cmd_pool.c - "novactl pool list|get|create|delete": storage pools
 * (StorageService), which live on one host. POOL may be given as its full
 * name hosts/H/pools/P, as H/P, or as P with --host H. Creation and
 * deletion start an Operation and, unless --no-wait, wait for it
 * (cmd_op_call); reads answer directly. Changes need a system
 * administrator. Also what the storage commands share: pool names and
 * sizes shown in KiB, MiB, GiB, ... (cmd_volume.c uses them).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "resource.h"

#define NAME_LEN 512
#define MAX_SOURCE_DEVICES 64

/* ---- shared with cmd_volume.c ---- */

/* Whether the running command has a --NAME flag. */
static bool has_flag(const cli_ctx *ctx, const char *name) {
  for (size_t i = 0; i < ctx->command->nflags; i++) {
    if (strcmp(ctx->command->flags[i].name, name) == 0) return true;
  }
  return false;
}

int cmd_pool_name(const cli_ctx *ctx, const char *arg, char *buf, size_t len) {
  const char *slash = strchr(arg, '/');
  const char *host = cli_get(ctx, "host");
  if (strncmp(arg, "hosts/", 6) == 0 && strstr(arg, "/pools/")) {
    snprintf(buf, len, "%s", arg);
  } else if (slash && slash != arg && slash[1] && !strchr(slash + 1, '/')) {
    snprintf(buf, len, "hosts/%.*s/pools/%s", (int)(slash - arg), arg, slash + 1);
  } else if (!slash && host && *host) {
    char host_name[NAME_LEN];
    res_name(host_name, sizeof(host_name), "hosts/", host);
    snprintf(buf, len, "%s/pools/%s", host_name, arg);
  } else {
    return out_usage_error(ctx->name,
                           "give the pool as HOST/POOL, hosts/HOST/pools/POOL%s, not \"%s\"",
                           has_flag(ctx, "host") ? " or POOL with --host HOST" : "", arg);
  }
  return 0;
}

void cmd_size_text(json_t *obj, const char *key_from, const char *key_to) {
  static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  json_t *v = json_object_get(obj, key_from);
  char text[32];
  if (!json_is_integer(v)) return;
  json_int_t bytes = json_integer_value(v);
  if (bytes < 1024) {
    snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT " B", bytes);
  } else {
    size_t u = 0;
    json_int_t scale = 1;
    while (u + 1 < sizeof(units) / sizeof(units[0]) && bytes / scale >= 1024) {
      scale *= 1024;
      u++;
    }
    if (bytes % scale == 0)
      snprintf(text, sizeof(text), "%" JSON_INTEGER_FORMAT " %s", bytes / scale, units[u]);
    else
      snprintf(text, sizeof(text), "%.1f %s", (double)bytes / (double)scale, units[u]);
  }
  json_object_set_new(obj, key_to, json_string(text));
}

/* ---- showing ---- */

static const out_column pool_cols[] = {
    {"Name", "name"},
    {"Type", "_type"},
    {"State", "_state"},
    {"State message", "stateMessage"},
    {"Target path", "targetPath"},
    {"Source devices", "_devices"},
    {"Source host", "sourceHost"},
    {"Source export", "sourceExport"},
    {"Autostart", "autostart"},
    {"Capacity", "_capacity"},
    {"Allocation", "_allocation"},
    {"Available", "_available"},
    {"Labels", "_labels"},
    {"Description", "description"},
    {"Created", "createTime"},
    {"Updated", "updateTime"},
    {"Etag", "etag"},
    {"UID", "uid"},
};

static const out_column pool_list_cols[] = {
    {"NAME", "name"},          {"TYPE", "_type"},           {"STATE", "_state"},
    {"CAPACITY", "_capacity"}, {"AVAILABLE", "_available"}, {"AUTOSTART", "autostart"},
    {"TARGET", "targetPath"},
};

/* Table-only keys: short enums, human sizes, the devices and labels. */
static void decorate_pool(json_t *p) {
  json_t *devices = json_object_get(p, "sourceDevices");
  json_t *device;
  size_t i;
  char text[1024] = "";
  size_t o = 0;
  res_short_enum(p, "type", "TYPE_", "_type");
  res_short_enum(p, "state", "STATE_", "_state");
  res_labels_text(p, "labels", "_labels");
  cmd_size_text(p, "capacityBytes", "_capacity");
  cmd_size_text(p, "allocationBytes", "_allocation");
  cmd_size_text(p, "availableBytes", "_available");
  json_array_foreach(devices, i, device) {
    const char *d = json_string_value(device);
    int n = snprintf(text + o, sizeof(text) - o, "%s%s", i ? "," : "", d ? d : "?");
    if (n < 0 || (size_t)n >= sizeof(text) - o) break;
    o += (size_t)n;
  }
  json_object_set_new(p, "_devices", json_string(o ? text : "-"));
}

static int show_pool(const cli_ctx *ctx, const ProtobufCMessage *pool) {
  if (!pool) return out_usage_error(ctx->name, "the server sent no pool");
  return res_show(ctx, pool, pool_cols, sizeof(pool_cols) / sizeof(pool_cols[0]), decorate_pool);
}

static int show_pool_deleted(const cli_ctx *ctx, const ProtobufCMessage *pool) {
  return res_show_deleted(ctx, ((const Novacron__V1__Pool *)pool)->name);
}

/* ---- typed calls, adapted for cmd_op_call and res_run_list ---- */

RES_LIST_CALL(list_pools, nc_pool_list, ListPoolsRequest, ListPoolsResponse)
RES_LIST_CALL(create_pool, nc_pool_create, CreatePoolRequest, CreatePoolResponse)
RES_LIST_CALL(delete_pool, nc_pool_delete, DeletePoolRequest, DeletePoolResponse)

#define POOL_RESULT &novacron__v1__pool__descriptor

/* ---- commands ---- */

int cmd_pool_list(cli_ctx *ctx) {
  Novacron__V1__ListPoolsRequest req = NOVACRON__V1__LIST_POOLS_REQUEST__INIT;
  static const res_list list = {list_pools, "pools", pool_list_cols,
                                sizeof(pool_list_cols) / sizeof(pool_list_cols[0]), decorate_pool};
  char parent[NAME_LEN];
  nc_client *client = NULL;
  res_name(parent, sizeof(parent), "hosts/", cli_get(ctx, "host") ? cli_get(ctx, "host") : "-");
  req.parent = parent;
  int rc = cli_connect(ctx, &client);
  if (rc == 0) rc = res_run_list(ctx, client, &req.base, &list);
  nc_client_free(client);
  return rc;
}

int cmd_pool_get(cli_ctx *ctx) {
  Novacron__V1__GetPoolRequest req = NOVACRON__V1__GET_POOL_REQUEST__INIT;
  Novacron__V1__GetPoolResponse *resp = NULL;
  char name[NAME_LEN];
  nc_client *client = NULL;
  nc_error err;
  int rc = cmd_pool_name(ctx, ctx->argv[0], name, sizeof(name));
  if (rc != 0) return rc;
  req.name = name;
  if ((rc = cli_connect(ctx, &client)) != 0) goto cleanup;
  nc_status st = nc_pool_get(client, &req, &resp, NULL, &err);
  rc = st != NC_OK ? out_sdk_error(ctx->name, st, &err)
                   : show_pool(ctx, resp->pool ? &resp->pool->base : NULL);
cleanup:
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}

int cmd_pool_create(cli_ctx *ctx) {
  Novacron__V1__CreatePoolRequest req = NOVACRON__V1__CREATE_POOL_REQUEST__INIT;
  Novacron__V1__Pool pool = NOVACRON__V1__POOL__INIT;
  Novacron__V1__Label **labels = NULL;
  Novacron__V1__Label *storage = NULL;
  size_t nlabels = 0;
  char *devices[MAX_SOURCE_DEVICES];
  char name[NAME_LEN];
  char parent[NAME_LEN];
  const char *text;
  int type = 0;
  int rc;

  if (!(text = cli_get(ctx, "type")))
    return out_usage_error(ctx->name, "--type is required: dir, logical or netfs");
  if (!cmd_parse_enum(ctx, "type", text, &novacron__v1__pool__type__descriptor, "TYPE_", &type))
    return EXIT_USAGE;
  if ((rc = cmd_pool_name(ctx, ctx->argv[0], name, sizeof(name))) != 0) return rc;
  /* hosts/H/pools/P -> parent hosts/H, pool_id P */
  const char *pools = strstr(name, "/pools/");
  snprintf(parent, sizeof(parent), "%.*s", (int)(pools - name), name);
  req.parent = parent;
  req.pool_id = (char *)pools + strlen("/pools/");
  req.pool = &pool;
  pool.type = (Novacron__V1__Pool__Type)type;
  if ((text = cli_get(ctx, "target-path"))) pool.target_path = (char *)text;
  for (size_t i = 0; (text = cli_get_nth(ctx, "source-device", i)); i++) {
    if (i == MAX_SOURCE_DEVICES)
      return out_usage_error(ctx->name, "at most %d --source-device", MAX_SOURCE_DEVICES);
    devices[i] = (char *)text;
    pool.n_source_devices = i + 1;
  }
  pool.source_devices = pool.n_source_devices ? devices : NULL;
  if ((text = cli_get(ctx, "source-host"))) pool.source_host = (char *)text;
  if ((text = cli_get(ctx, "source-export"))) pool.source_export = (char *)text;
  pool.autostart = cli_switch(ctx, "autostart");
  if ((text = cli_get(ctx, "description"))) pool.description = (char *)text;
  if ((rc = res_labels(ctx, &labels, &storage, &nlabels)) == 0) {
    pool.labels = labels;
    pool.n_labels = nlabels;
    rc = cmd_op_call(ctx, &req.base, create_pool, POOL_RESULT, show_pool);
  }
  res_labels_free(labels, storage, nlabels);
  return rc;
}

int cmd_pool_delete(cli_ctx *ctx) {
  Novacron__V1__DeletePoolRequest req = NOVACRON__V1__DELETE_POOL_REQUEST__INIT;
  char name[NAME_LEN];
  int rc = cmd_pool_name(ctx, ctx->argv[0], name, sizeof(name));
  if (rc != 0) return rc;
  req.name = name;
  if (cli_get(ctx, "etag")) req.etag = (char *)cli_get(ctx, "etag");
  req.delete_storage = cli_switch(ctx, "delete-storage");
  return cmd_op_call(ctx, &req.base, delete_pool, POOL_RESULT, show_pool_deleted);
}
