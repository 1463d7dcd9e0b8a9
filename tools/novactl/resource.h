/*
 * resource.h - what the resource commands (user, project, role, apikey,
 * quota, audit, session) share: resource names from short arguments,
 * request ids, field masks, labels, roles and numbers from flags, showing
 * a message as a record, and the list runner with paging (--page-size,
 * --page-token, --filter, --order-by, --all). Commands keep only their own
 * request building and columns.
 */
#ifndef NOVACTL_RESOURCE_H
#define NOVACTL_RESOURCE_H

#include <novacron/novacron.h>

#include "cli.h"
#include "pbjson.h"

/* Flags every list command takes; spliced into their flag tables. */
#define RES_LIST_FLAGS                                                                         \
  {"page-size", "N", NULL, NULL, "Results per page (server default 50, at most 500)."},        \
      {"page-token", "TOKEN", NULL, NULL, "Continue from a previous page's next page token."}, \
      {"filter", "EXPR", NULL, NULL, "AIP-160 filter, e.g. 'state = STATE_ACTIVE'."},          \
      {"order-by", "FIELD", NULL, NULL, "Sort order, e.g. 'create_time desc'."}, {             \
    "all", NULL, NULL, NULL, "Follow next page tokens and show every page."                    \
  }

/* "--project P" for project-scoped commands. */
#define RES_PROJECT_FLAG \
  { "project", "PROJECT", "NOVACRON_PROJECT", "default", "The project (id or projects/ID)." }

/* "{prefix}{arg}" unless arg is already a full name (contains '/'). */
void res_name(char *buf, size_t len, const char *prefix, const char *arg);
/* "projects/{id}" from --project (id or full name). */
void res_project(const cli_ctx *ctx, char *buf, size_t len);
/* The last segment of a resource name ("alice" of "users/alice"). */
const char *res_last_segment(const char *name);

/* A fresh UUID v4 for request_id; 0, or prints and returns the exit code. */
int res_request_id(const cli_ctx *ctx, char buf[NC_UUID_LEN + 1]);

/* "admin", "ROLE_ADMIN" (any case) -> the role; false when unknown. */
bool res_parse_role(const char *text, int *role);
/* A decimal int64; false when not entirely a number or out of range. */
bool res_parse_int64(const char *text, int64_t *out);
/* A duration like 90s, 15m, 12h, 30d; false when malformed. */
bool res_parse_duration(const char *text, int64_t *seconds);
/* "2024-05-01T00:00:00Z" -> Unix seconds; false when malformed. */
bool res_parse_time(const char *text, int64_t *seconds);

/* The labels from every --label k=v; *labels is an array of *n pointers
 * into *storage. Free both with res_labels_free(*labels, *storage, *n),
 * also after a failure. 0, or prints and returns the exit code. */
int res_labels(const cli_ctx *ctx, Novacron__V1__Label ***labels, Novacron__V1__Label **storage,
               size_t *n);
void res_labels_free(Novacron__V1__Label **labels, Novacron__V1__Label *storage, size_t n);

/* Adds a table-only derived key: `value` with `prefix` cut off and
 * lowercased ("ROLE_ADMIN" -> "admin"). No-op if key_from is absent. */
void res_short_enum(json_t *obj, const char *key_from, const char *prefix, const char *key_to);
/* Adds a table-only "k=v,k2=v2" rendering of a labels array. */
void res_labels_text(json_t *obj, const char *key_from, const char *key_to);

/* Adds table-only keys to a record before it is shown. */
typedef void (*res_decorate)(json_t *record);

/* Shows `msg` as a record (table: cols; JSON: the whole message), after
 * decorate (table only; may be NULL). Returns EXIT_OK. */
int res_show(const cli_ctx *ctx, const ProtobufCMessage *msg, const out_column *cols, size_t ncols,
             res_decorate decorate);
/* Shows "Deleted  NAME" (table) or {"name": NAME, "deleted": true}. */
int res_show_deleted(const cli_ctx *ctx, const char *name);

/* One call of a list method through its typed wrapper. */
typedef nc_status (*res_list_call)(nc_client *client, const ProtobufCMessage *request,
                                   ProtobufCMessage **response, const nc_call_options *call_opts,
                                   nc_error *err);

/* Defines `static nc_status name(...)`, a res_list_call for a typed list
 * wrapper of REQ -> RESP (novacron.v1 message names). */
#define RES_LIST_CALL(name, wrapper, REQ, RESP)                                                   \
  static nc_status name(nc_client *client, const ProtobufCMessage *request,                       \
                        ProtobufCMessage **response, const nc_call_options *call_opts,            \
                        nc_error *err) {                                                          \
    Novacron__V1__##RESP *typed = NULL;                                                           \
    nc_status st = wrapper(client, (const Novacron__V1__##REQ *)request, &typed, call_opts, err); \
    *response = typed ? &typed->base : NULL;                                                      \
    return st;                                                                                    \
  }

typedef struct res_list {
  res_list_call call;
  const char *items; /* the repeated field of the response, e.g. "users" */
  const out_column *cols;
  size_t ncols;
  res_decorate decorate; /* per row, table only; may be NULL */
} res_list;

/* Runs a list: fills page_size, page_token, filter and order_by of
 * `request` from the flags, calls, and shows the rows (table; a hint with
 * the next page token on stderr) or the response (JSON). With --all it
 * follows next_page_token and shows one merged response. Returns the exit
 * code. */
int res_run_list(const cli_ctx *ctx, nc_client *client, ProtobufCMessage *request,
                 const res_list *list);

#endif
