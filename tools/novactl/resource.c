/*
 * resource.c - helpers shared by the resource commands (see resource.h).
 * The list runner reaches the paging fields of any List*Request through the
 * protobuf-c descriptors, so one loop serves every list command.
 */
#include "resource.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

void res_name(char *buf, size_t len, const char *prefix, const char *arg) {
  if (strchr(arg, '/'))
    snprintf(buf, len, "%s", arg);
  else
    snprintf(buf, len, "%s%s", prefix, arg);
}

void res_project(const cli_ctx *ctx, char *buf, size_t len) {
  res_name(buf, len, "projects/", cli_get(ctx, "project"));
}

const char *res_last_segment(const char *name) {
  const char *slash = strrchr(name, '/');
  return slash ? slash + 1 : name;
}

int res_request_id(const cli_ctx *ctx, char buf[NC_UUID_LEN + 1]) {
  nc_status st = nc_new_request_id(buf, NC_UUID_LEN + 1);
  if (st != NC_OK) return out_sdk_error(ctx->name, st, NULL);
  return 0;
}

bool res_parse_role(const char *text, int *role) {
  static const char *const names[] = {"viewer", "operator", "admin"};
  static const int values[] = {NOVACRON__V1__ROLE__ROLE_VIEWER, NOVACRON__V1__ROLE__ROLE_OPERATOR,
                               NOVACRON__V1__ROLE__ROLE_ADMIN};
  if (strncasecmp(text, "ROLE_", 5) == 0) text += 5;
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    if (strcasecmp(text, names[i]) == 0) {
      *role = values[i];
      return true;
    }
  }
  return false;
}

bool res_parse_int64(const char *text, int64_t *out) {
  char *end = NULL;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (end == text || *end != '\0' || errno == ERANGE) return false;
  *out = (int64_t)v;
  return true;
}

bool res_parse_duration(const char *text, int64_t *seconds) {
  char *end = NULL;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (end == text || v <= 0 || errno == ERANGE) return false;
  long long unit;
  if (strcmp(end, "s") == 0 || *end == '\0')
    unit = 1;
  else if (strcmp(end, "m") == 0)
    unit = 60;
  else if (strcmp(end, "h") == 0)
    unit = 3600;
  else if (strcmp(end, "d") == 0)
    unit = 86400;
  else
    return false;
  if (v > (long long)(INT64_MAX / unit)) return false;
  *seconds = (int64_t)(v * unit);
  return true;
}

bool res_parse_time(const char *text, int64_t *seconds) {
  struct tm tm;
  memset(&tm, 0, sizeof(tm));
  const char *end = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end) return false;
  if (*end == '.') { /* fractions are ignored */
    end++;
    while (isdigit((unsigned char)*end))
      end++;
  }
  if (strcmp(end, "Z") != 0 && strcmp(end, "z") != 0) return false;
  *seconds = (int64_t)timegm(&tm);
  return true;
}

int res_labels(const cli_ctx *ctx, Novacron__V1__Label ***labels, Novacron__V1__Label **storage,
               size_t *n) {
  size_t count = 0;
  *labels = NULL;
  *storage = NULL;
  *n = 0;
  while (cli_get_nth(ctx, "label", count))
    count++;
  if (count == 0) return 0;
  *labels = calloc(count, sizeof(**labels));
  *storage = calloc(count, sizeof(**storage));
  *n = count;
  if (!*labels || !*storage) return out_usage_error(ctx->name, "out of memory");
  for (size_t i = 0; i < count; i++) {
    const char *text = cli_get_nth(ctx, "label", i);
    const char *eq = strchr(text, '=');
    Novacron__V1__Label *label = &(*storage)[i];
    novacron__v1__label__init(label);
    label->key = label->value = NULL; /* not protobuf-c's static "": freed below */
    (*labels)[i] = label;
    if (!eq || eq == text)
      return out_usage_error(ctx->name, "--label needs KEY=VALUE, not \"%s\"", text);
    label->key = strndup(text, (size_t)(eq - text));
    label->value = strdup(eq + 1);
    if (!label->key || !label->value) return out_usage_error(ctx->name, "out of memory");
  }
  return 0;
}

void res_labels_free(Novacron__V1__Label **labels, Novacron__V1__Label *storage, size_t n) {
  for (size_t i = 0; storage && i < n; i++) {
    /* entries past a failure were never initialised: calloc left them NULL */
    free(storage[i].key);
    free(storage[i].value);
  }
  free(labels);
  free(storage);
}

void res_short_enum(json_t *obj, const char *key_from, const char *prefix, const char *key_to) {
  const char *v = json_string_value(json_object_get(obj, key_from));
  if (!v) return;
  size_t plen = strlen(prefix);
  if (strncmp(v, prefix, plen) == 0) v += plen;
  char buf[64];
  size_t i = 0;
  for (; v[i] && i + 1 < sizeof(buf); i++)
    buf[i] = (char)tolower((unsigned char)v[i]);
  buf[i] = '\0';
  json_object_set_new(obj, key_to, json_string(buf));
}

void res_labels_text(json_t *obj, const char *key_from, const char *key_to) {
  json_t *labels = json_object_get(obj, key_from);
  size_t i;
  json_t *label;
  char buf[1024] = "";
  size_t o = 0;
  if (!json_is_array(labels)) return;
  json_array_foreach(labels, i, label) {
    const char *k = json_string_value(json_object_get(label, "key"));
    const char *v = json_string_value(json_object_get(label, "value"));
    int n = snprintf(buf + o, sizeof(buf) - o, "%s%s=%s", i ? "," : "", k ? k : "", v ? v : "");
    if (n < 0 || (size_t)n >= sizeof(buf) - o) break;
    o += (size_t)n;
  }
  json_object_set_new(obj, key_to, json_string(o ? buf : "-"));
}

int res_show(const cli_ctx *ctx, const ProtobufCMessage *msg, const out_column *cols, size_t ncols,
             res_decorate decorate) {
  json_t *obj = pbjson_message(msg);
  if (!obj) return out_usage_error(ctx->name, "out of memory");
  if (ctx->format == OUT_TABLE && decorate) decorate(obj);
  out_object(ctx->format, obj, cols, ncols);
  return EXIT_OK;
}

int res_show_deleted(const cli_ctx *ctx, const char *name) {
  static const out_column cols[] = {{"Deleted", "name"}};
  json_t *obj = json_pack("{s:s, s:b}", "name", name, "deleted", 1);
  if (!obj) return out_usage_error(ctx->name, "out of memory");
  out_object(ctx->format, obj, cols, 1);
  return EXIT_OK;
}

/* The address of a string or int32 field of `msg`, by name. */
static void *field(ProtobufCMessage *msg, const char *name, ProtobufCType type) {
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, name);
  if (!f || f->type != type || f->label == PROTOBUF_C_LABEL_REPEATED) return NULL;
  return (char *)msg + f->offset;
}

static const char *next_token(const ProtobufCMessage *resp) {
  const char *const *slot =
      field((ProtobufCMessage *)resp, "next_page_token", PROTOBUF_C_TYPE_STRING);
  return slot && *slot ? *slot : "";
}

int res_run_list(const cli_ctx *ctx, nc_client *client, ProtobufCMessage *request,
                 const res_list *list) {
  const char *cmd = ctx->name;
  bool all = cli_switch(ctx, "all");
  char **page_token = field(request, "page_token", PROTOBUF_C_TYPE_STRING);
  int32_t *page_size = field(request, "page_size", PROTOBUF_C_TYPE_INT32);
  char **filter = field(request, "filter", PROTOBUF_C_TYPE_STRING);
  char **order_by = field(request, "order_by", PROTOBUF_C_TYPE_STRING);
  char items_key[64];
  char *token_copy = NULL;
  json_t *merged = NULL; /* the last page, its items replaced by all items */
  json_t *rows = NULL;
  int rc = EXIT_OK;

  pbjson_key(list->items, items_key, sizeof(items_key));
  if (!page_token || !page_size || !filter || !order_by)
    return out_usage_error(cmd, "internal: %s is not a list request", request->descriptor->name);
  if (cli_get(ctx, "page-size")) {
    int64_t n;
    if (!res_parse_int64(cli_get(ctx, "page-size"), &n) || n < 1 || n > INT32_MAX)
      return out_usage_error(cmd, "--page-size must be a positive number");
    *page_size = (int32_t)n;
  }
  if (cli_get(ctx, "page-token")) *page_token = (char *)cli_get(ctx, "page-token");
  if (cli_get(ctx, "filter")) *filter = (char *)cli_get(ctx, "filter");
  if (cli_get(ctx, "order-by")) *order_by = (char *)cli_get(ctx, "order-by");
  if (!(rows = json_array())) return out_usage_error(cmd, "out of memory");

  for (;;) {
    ProtobufCMessage *resp = NULL;
    nc_error err;
    nc_status st = list->call(client, request, &resp, NULL, &err);
    if (st != NC_OK) {
      rc = out_sdk_error(cmd, st, &err);
      goto cleanup;
    }
    json_t *page = pbjson_message(resp);
    const char *next = next_token(resp);
    bool repeated = token_copy && strcmp(next, token_copy) == 0 && *next;
    free(token_copy);
    token_copy = strdup(next);
    nc_message_free(resp);
    if (!page || !token_copy) {
      json_decref(page);
      rc = out_usage_error(cmd, "out of memory");
      goto cleanup;
    }
    json_array_extend(rows, json_object_get(page, items_key));
    json_decref(merged);
    merged = page;
    if (!all || !token_copy[0]) break;
    if (repeated) {
      fprintf(stderr, "novactl: %s: the server repeated page token; stopping\n", cmd);
      rc = EXIT_FAILURE_RPC;
      goto cleanup;
    }
    *page_token = token_copy;
  }

  if (ctx->format == OUT_JSON) {
    json_object_set(merged, items_key, rows);
    if (all) json_object_set_new(merged, "nextPageToken", json_string(""));
    out_object(OUT_JSON, merged, NULL, 0);
    merged = NULL;
  } else {
    if (list->decorate) {
      size_t i;
      json_t *row;
      json_array_foreach(rows, i, row) list->decorate(row);
    }
    out_list(OUT_TABLE, rows, list->cols, list->ncols);
    rows = NULL;
    if (!all && token_copy[0])
      fprintf(stderr, "(more results: add --page-token %s, or --all)\n", token_copy);
  }
cleanup:
  free(token_copy);
  json_decref(rows);
  json_decref(merged);
  return rc;
}
