/*
 * cmd_volume.c - "novactl volume list|get|create|resize|clone|delete":
 * a project's virtual disks (StorageService). VOLUME may be given as its
 * id (in --project) or its full name projects/P/volumes/ID; POOL as
 * HOST/POOL or hosts/HOST/pools/POOL. Sizes are bytes or a number with a
 * binary suffix (512MiB, 20GiB); the server checks that they are whole
 * MiB. Every change starts an Operation and, unless --no-wait, waits for
 * it and shows the volume (cmd_op_call); reads answer directly.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "resource.h"

#define NAME_LEN 512

/* ---- showing ---- */

static const out_column volume_cols[] = {
    {"Name", "name"},
    {"State", "_state"},
    {"State message", "stateMessage"},
    {"Pool", "pool"},
    {"Format", "_format"},
    {"Size", "_size"},
    {"Allocation", "_allocation"},
    {"Source", "_source"},
    {"Attached to", "_attachment"},
    {"Labels", "_labels"},
    {"Description", "description"},
    {"Created", "createTime"},
    {"Updated", "updateTime"},
    {"Etag", "etag"},
    {"UID", "uid"},
};

static const out_column volume_list_cols[] = {
    {"NAME", "name"},          {"STATE", "_state"}, {"SIZE", "_size"},
    {"FORMAT", "_format"},     {"POOL", "pool"},    {"ATTACHED TO", "_attachment"},
    {"CREATED", "createTime"},
};

/* Table-only keys: short enums, human sizes, origin, attachment, labels. */
static void decorate_volume(json_t *v) {
  const char *source_volume = json_string_value(json_object_get(v, "sourceVolume"));
  const char *source_image = json_string_value(json_object_get(v, "sourceImage"));
  json_t *attachment = json_object_get(v, "attachment");
  const char *vm = json_string_value(json_object_get(attachment, "vm"));
  const char *device = json_string_value(json_object_get(attachment, "targetDevice"));
  char text[NAME_LEN + 64];
  res_short_enum(v, "state", "STATE_", "_state");
  res_short_enum(v, "format", "FORMAT_", "_format");
  res_labels_text(v, "labels", "_labels");
  cmd_size_text(v, "sizeBytes", "_size");
  cmd_size_text(v, "allocationBytes", "_allocation");
  if (source_volume && *source_volume)
    snprintf(text, sizeof(text), "volume %s", source_volume);
  else if (source_image && *source_image)
    snprintf(text, sizeof(text), "image %s", source_image);
  else
    snprintf(text, sizeof(text), "blank");
  json_object_set_new(v, "_source", json_string(text));
  if (vm && *vm)
    snprintf(text, sizeof(text), "%s%s%s", vm, device && *device ? " as " : "",
             device ? device : "");
  else
    snprintf(text, sizeof(text), "-");
  json_object_set_new(v, "_attachment", json_string(text));
}

static int show_volume(const cli_ctx *ctx, const ProtobufCMessage *volume) {
  if (!volume) return out_usage_error(ctx->name, "the server sent no volume");
  return res_show(ctx, volume, volume_cols, sizeof(volume_cols) / sizeof(volume_cols[0]),
                  decorate_volume);
}

static int show_volume_deleted(const cli_ctx *ctx, const ProtobufCMessage *volume) {
  return res_show_deleted(ctx, ((const Novacron__V1__Volume *)volume)->name);
}

/* ---- names and flags ---- */

/* "projects/{--project}/volumes/{arg}" unless arg is a full name. */
static void volume_name(const cli_ctx *ctx, char *buf, size_t len, const char *arg) {
  char project[NAME_LEN];
  char prefix[NAME_LEN + 16];
  res_project(ctx, project, sizeof(project));
  snprintf(prefix, sizeof(prefix), "%s/volumes/", project);
  res_name(buf, len, prefix, arg);
}

/* "1073741824", "512MiB", "20 GiB", "1g" -> bytes: a positive whole number
 * with an optional binary suffix (B, K/KiB, M/MiB, G/GiB, T/TiB, any case).
 * False when malformed or too large. */
static bool parse_size(const char *text, int64_t *bytes) {
  static const struct {
    const char *suffix;
    int shift;
  } units[] = {{"", 0},     {"b", 0},  {"k", 10},   {"kib", 10}, {"m", 20},
               {"mib", 20}, {"g", 30}, {"gib", 30}, {"t", 40},   {"tib", 40}};
  char *end = NULL;
  if (!isdigit((unsigned char)text[0])) return false;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (errno == ERANGE || v <= 0) return false;
  while (*end == ' ')
    end++;
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
    if (strcasecmp(end, units[i].suffix) != 0) continue;
    if (v > (long long)(INT64_MAX >> units[i].shift)) return false;
    *bytes = (int64_t)v << units[i].shift;
    return true;
  }
  return false;
}

/* --size into *bytes (untouched when absent). 0, or prints and returns EXIT_USAGE. */
static int size_flag(const cli_ctx *ctx, int64_t *bytes) {
  const char *text = cli_get(ctx, "size");
  if (!text) return 0;
  if (!parse_size(text, bytes))
    return out_usage_error(ctx->name,
                           "--size must be a positive number of bytes, or of KiB, MiB, GiB or TiB "
                           "(e.g. 512MiB, 20GiB), not \"%s\"",
                           text);
  return 0;
}

/* ---- typed calls, adapted for cmd_op_call and res_run_list ---- */

RES_LIST_CALL(list_volumes, nc_volume_list, ListVolumesRequest, ListVolumesResponse)
RES_LIST_CALL(create_volume, nc_volume_create, CreateVolumeRequest, CreateVolumeResponse)
RES_LIST_CALL(resize_volume, nc_volume_resize, ResizeVolumeRequest, ResizeVolumeResponse)
RES_LIST_CALL(clone_volume, nc_volume_clone, CloneVolumeRequest, CloneVolumeResponse)
RES_LIST_CALL(delete_volume, nc_volume_delete, DeleteVolumeRequest, DeleteVolumeResponse)

#define VOLUME_RESULT &novacron__v1__volume__descriptor

/* ---- reads ---- */

int cmd_volume_list(cli_ctx *ctx) {
  Novacron__V1__ListVolumesRequest req = NOVACRON__V1__LIST_VOLUMES_REQUEST__INIT;
  static const res_list list = {list_volumes, "volumes", volume_list_cols,
                                sizeof(volume_list_cols) / sizeof(volume_list_cols[0]),
                                decorate_volume};
  char parent[NAME_LEN];
  nc_client *client = NULL;
  res_project(ctx, parent, sizeof(parent));
  req.parent = parent;
  int rc = cli_connect(ctx, &client);
  if (rc == 0) rc = res_run_list(ctx, client, &req.base, &list);
  nc_client_free(client);
  return rc;
}

int cmd_volume_get(cli_ctx *ctx) {
  Novacron__V1__GetVolumeRequest req = NOVACRON__V1__GET_VOLUME_REQUEST__INIT;
  Novacron__V1__GetVolumeResponse *resp = NULL;
  char name[NAME_LEN];
  nc_client *client = NULL;
  nc_error err;
  volume_name(ctx, name, sizeof(name), ctx->argv[0]);
  req.name = name;
  int rc = cli_connect(ctx, &client);
  if (rc != 0) goto cleanup;
  nc_status st = nc_volume_get(client, &req, &resp, NULL, &err);
  rc = st != NC_OK ? out_sdk_error(ctx->name, st, &err)
                   : show_volume(ctx, resp->volume ? &resp->volume->base : NULL);
cleanup:
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}

/* ---- changes ---- */

int cmd_volume_create(cli_ctx *ctx) {
  Novacron__V1__CreateVolumeRequest req = NOVACRON__V1__CREATE_VOLUME_REQUEST__INIT;
  Novacron__V1__Volume volume = NOVACRON__V1__VOLUME__INIT;
  Novacron__V1__Label **labels = NULL;
  Novacron__V1__Label *storage = NULL;
  size_t nlabels = 0;
  char parent[NAME_LEN];
  char pool[NAME_LEN];
  char source[NAME_LEN];
  const char *text;
  int format = 0;
  int rc;

  if (!cli_get(ctx, "pool"))
    return out_usage_error(ctx->name, "--pool is required (HOST/POOL or hosts/HOST/pools/POOL)");
  if (cli_get(ctx, "from-volume") && cli_get(ctx, "from-image"))
    return out_usage_error(ctx->name, "--from-volume contradicts --from-image");
  if (!cli_get(ctx, "size") && !cli_get(ctx, "from-volume") && !cli_get(ctx, "from-image"))
    return out_usage_error(ctx->name, "--size is required for a blank volume");
  if ((rc = size_flag(ctx, &volume.size_bytes)) != 0) return rc;
  if ((text = cli_get(ctx, "format")) &&
      !cmd_parse_enum(ctx, "format", text, &novacron__v1__volume__format__descriptor, "FORMAT_",
                      &format))
    return EXIT_USAGE;
  if ((rc = cmd_pool_name(ctx, cli_get(ctx, "pool"), pool, sizeof(pool))) != 0) return rc;

  /* VOLUME: an id in --project, or a full name projects/P/volumes/ID */
  const char *slash = strstr(ctx->argv[0], "/volumes/");
  if (slash) {
    snprintf(parent, sizeof(parent), "%.*s", (int)(slash - ctx->argv[0]), ctx->argv[0]);
    req.volume_id = (char *)slash + strlen("/volumes/");
  } else {
    res_project(ctx, parent, sizeof(parent));
    req.volume_id = ctx->argv[0];
  }
  req.parent = parent;
  req.volume = &volume;
  volume.pool = pool;
  volume.format = (Novacron__V1__Volume__Format)format;
  if ((text = cli_get(ctx, "from-volume"))) {
    volume_name(ctx, source, sizeof(source), text);
    volume.source_case = NOVACRON__V1__VOLUME__SOURCE_SOURCE_VOLUME;
    volume.source_volume = source;
  } else if ((text = cli_get(ctx, "from-image"))) {
    volume.source_case = NOVACRON__V1__VOLUME__SOURCE_SOURCE_IMAGE;
    volume.source_image = (char *)text;
  }
  if ((text = cli_get(ctx, "description"))) volume.description = (char *)text;
  if ((rc = res_labels(ctx, &labels, &storage, &nlabels)) == 0) {
    volume.labels = labels;
    volume.n_labels = nlabels;
    rc = cmd_op_call(ctx, &req.base, create_volume, VOLUME_RESULT, show_volume);
  }
  res_labels_free(labels, storage, nlabels);
  return rc;
}

int cmd_volume_resize(cli_ctx *ctx) {
  Novacron__V1__ResizeVolumeRequest req = NOVACRON__V1__RESIZE_VOLUME_REQUEST__INIT;
  char name[NAME_LEN];
  int rc;
  if (!cli_get(ctx, "size")) return out_usage_error(ctx->name, "--size is required");
  if ((rc = size_flag(ctx, &req.size_bytes)) != 0) return rc;
  volume_name(ctx, name, sizeof(name), ctx->argv[0]);
  req.name = name;
  req.allow_shrink = cli_switch(ctx, "allow-shrink");
  if (cli_get(ctx, "etag")) req.etag = (char *)cli_get(ctx, "etag");
  return cmd_op_call(ctx, &req.base, resize_volume, VOLUME_RESULT, show_volume);
}

int cmd_volume_clone(cli_ctx *ctx) {
  Novacron__V1__CloneVolumeRequest req = NOVACRON__V1__CLONE_VOLUME_REQUEST__INIT;
  Novacron__V1__Label **labels = NULL;
  Novacron__V1__Label *storage = NULL;
  size_t nlabels = 0;
  char name[NAME_LEN];
  char pool[NAME_LEN];
  int rc;
  if (cli_get(ctx, "pool")) {
    if ((rc = cmd_pool_name(ctx, cli_get(ctx, "pool"), pool, sizeof(pool))) != 0) return rc;
    req.pool = pool;
  }
  volume_name(ctx, name, sizeof(name), ctx->argv[0]);
  req.name = name;
  req.volume_id = (char *)res_last_segment(ctx->argv[1]);
  if ((rc = res_labels(ctx, &labels, &storage, &nlabels)) == 0) {
    req.labels = labels;
    req.n_labels = nlabels;
    rc = cmd_op_call(ctx, &req.base, clone_volume, VOLUME_RESULT, show_volume);
  }
  res_labels_free(labels, storage, nlabels);
  return rc;
}

int cmd_volume_delete(cli_ctx *ctx) {
  Novacron__V1__DeleteVolumeRequest req = NOVACRON__V1__DELETE_VOLUME_REQUEST__INIT;
  char name[NAME_LEN];
  volume_name(ctx, name, sizeof(name), ctx->argv[0]);
  req.name = name;
  if (cli_get(ctx, "etag")) req.etag = (char *)cli_get(ctx, "etag");
  req.wipe = cli_switch(ctx, "wipe");
  return cmd_op_call(ctx, &req.base, delete_volume, VOLUME_RESULT, show_volume_deleted);
}
