/*
 * cmd_op.c - "novactl op list|get|wait|cancel": long-running operations
 * (OperationsService), and how every mutating host and vm command ends
 * (cmd_op_call): start the work, then wait for its Operation and show the
 * result, or with --no-wait show the operation. OPERATION may be given as
 * its id (in --project) or its full name (projects/P/operations/ID,
 * operations/ID for system work).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "resource.h"

#define DEFAULT_WAIT_TIMEOUT "10m"

static const out_column op_cols[] = {
    {"Name", "name"},
    {"Verb", "verb"},
    {"Target", "target"},
    {"State", "_state"},
    {"Done", "done"},
    {"Progress", "_progress"},
    {"Status", "statusMessage"},
    {"Error", "_error"},
    {"Cancel requested", "cancelRequested"},
    {"Principal", "principal"},
    {"Request ID", "requestId"},
    {"Created", "createTime"},
    {"Started", "startTime"},
    {"Ended", "endTime"},
};

static const out_column op_list_cols[] = {
    {"NAME", "name"},    {"VERB", "_verb"},         {"TARGET", "target"},
    {"STATE", "_state"}, {"PROGRESS", "_progress"}, {"CREATED", "createTime"},
};

/* The result types an operation's `response` may hold, to show them as
 * objects instead of base64 bytes. */
static const ProtobufCMessageDescriptor *const result_types[] = {
    &novacron__v1__vm__descriptor,     &novacron__v1__vm_snapshot__descriptor,
    &novacron__v1__host__descriptor,   &novacron__v1__pool__descriptor,
    &novacron__v1__volume__descriptor, &novacron__v1__network__descriptor,
};

/* Table-only keys of an operation record. */
static void decorate_op(json_t *op) {
  const char *verb = json_string_value(json_object_get(op, "verb"));
  json_t *progress = json_object_get(op, "progressPercent");
  json_t *error = json_object_get(op, "error");
  res_short_enum(op, "state", "STATE_", "_state");
  if (verb) {
    /* "novacron.v1.VmService.StartVm" -> "VmService.StartVm" */
    const char *method = strrchr(verb, '.');
    const char *service = method;
    while (service && service > verb && service[-1] != '.')
      service--;
    json_object_set_new(op, "_verb", json_string(service ? service : verb));
  }
  if (json_is_integer(progress)) {
    char text[16];
    snprintf(text, sizeof(text), "%d%%", (int)json_integer_value(progress));
    json_object_set_new(op, "_progress", json_string(text));
  }
  if (json_is_object(error)) {
    char text[600];
    const char *message = json_string_value(json_object_get(error, "message"));
    snprintf(text, sizeof(text), "%s: %s",
             nc_grpc_code_name((int)json_integer_value(json_object_get(error, "code"))),
             message ? message : "");
    json_object_set_new(op, "_error", json_string(text));
  }
}

/* The operation as JSON, its `response` unpacked when its type is known:
 * {"@type": "type.googleapis.com/novacron.v1.Vm", ...the Vm...}. */
static json_t *op_json(const Novacron__V1__Operation *op) {
  json_t *obj = pbjson_message(&op->base);
  if (!obj || op->result_case != NOVACRON__V1__OPERATION__RESULT_RESPONSE || !op->response)
    return obj;
  for (size_t i = 0; i < sizeof(result_types) / sizeof(result_types[0]); i++) {
    ProtobufCMessage *msg = NULL;
    if (nc_any_unpack(op->response, result_types[i], &msg, NULL) != NC_OK) continue;
    json_t *resp = pbjson_message(msg);
    nc_message_free(msg);
    if (resp) {
      json_object_set_new(resp, "@type", json_string(op->response->type_url));
      json_object_set_new(obj, "response", resp);
    }
    break;
  }
  return obj;
}

static int show_op(const cli_ctx *ctx, const Novacron__V1__Operation *op) {
  if (!op) return out_usage_error(ctx->name, "the server sent no operation");
  json_t *obj = op_json(op);
  if (!obj) return out_usage_error(ctx->name, "out of memory");
  if (ctx->format == OUT_TABLE) decorate_op(obj);
  out_object(ctx->format, obj, op_cols, sizeof(op_cols) / sizeof(op_cols[0]));
  return EXIT_OK;
}

/* --wait-timeout in milliseconds; -1 after printing a usage error. */
static int64_t wait_timeout_ms(const cli_ctx *ctx) {
  const char *text = cli_get(ctx, "wait-timeout");
  int64_t seconds;
  if (!text) text = DEFAULT_WAIT_TIMEOUT;
  if (!res_parse_duration(text, &seconds) || seconds > INT64_MAX / 1000) {
    out_usage_error(ctx->name, "--wait-timeout must be a duration like 90s, 10m or 1h, not \"%s\"",
                    text);
    return -1;
  }
  return seconds * 1000;
}

/* Prints a failure of the operation `name` like a failed call, naming the
 * operation. */
static int op_error(const cli_ctx *ctx, nc_status st, nc_error *err, const char *name) {
  size_t used = strlen(err->message);
  if (name && *name && used + 16 + strlen(name) < sizeof(err->message))
    snprintf(err->message + used, sizeof(err->message) - used, " (operation %s)", name);
  return out_sdk_error(ctx->name, st, err);
}

/* Waits for `name` (--wait-timeout); *done is the finished operation.
 * 0, or prints and returns the exit code. */
static int wait_for(const cli_ctx *ctx, nc_client *client, const char *name,
                    Novacron__V1__Operation **done) {
  int64_t timeout_ms = wait_timeout_ms(ctx);
  nc_error err;
  *done = NULL;
  if (timeout_ms < 0) return EXIT_USAGE;
  if (isatty(STDERR_FILENO))
    fprintf(stderr, "Waiting for %s (interrupting stops the wait, not the work)...\n", name);
  nc_status st = nc_operation_wait(client, name, timeout_ms, 0, done, &err);
  if (st == NC_OK) return 0;
  if (st == NC_ERR_RPC && err.code == NC_GRPC_DEADLINE_EXCEEDED && *done) {
    fprintf(stderr,
            "novactl: %s: operation %s is not done after %s (%d%%%s%s); follow it with "
            "'novactl op wait %s'\n",
            ctx->name, name,
            cli_get(ctx, "wait-timeout") ? cli_get(ctx, "wait-timeout") : DEFAULT_WAIT_TIMEOUT,
            (int)(*done)->progress_percent, (*done)->status_message[0] ? ": " : "",
            (*done)->status_message, name);
    nc_message_free(&(*done)->base);
    *done = NULL;
    return EXIT_FAILURE_RPC;
  }
  return op_error(ctx, st, &err, name);
}

/* The end of a mutating command once its call returned `op`. */
static int op_finish(const cli_ctx *ctx, nc_client *client, const Novacron__V1__Operation *op,
                     const ProtobufCMessageDescriptor *result_type,
                     int (*show)(const cli_ctx *ctx, const ProtobufCMessage *result)) {
  Novacron__V1__Operation *waited = NULL;
  ProtobufCMessage *result = NULL;
  nc_error err;
  int rc;

  if (!op) return out_usage_error(ctx->name, "the server sent no operation");
  if (!op->done && cli_switch(ctx, "no-wait")) {
    json_t *obj = op_json(op);
    if (!obj) return out_usage_error(ctx->name, "out of memory");
    out_scalar(ctx->format, obj, "name");
    return EXIT_OK;
  }
  if (!op->done) {
    if ((rc = wait_for(ctx, client, op->name, &waited)) != 0) return rc;
    op = waited;
  }
  nc_status st = nc_operation_result(op, result_type, &result, &err);
  rc = st != NC_OK ? op_error(ctx, st, &err, op->name) : show(ctx, result);
  nc_message_free(result);
  nc_message_free(waited ? &waited->base : NULL);
  return rc;
}

/* A string field of `msg` by name, or NULL. */
static char **string_field(ProtobufCMessage *msg, const char *name) {
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, name);
  if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED) return NULL;
  return (char **)((char *)msg + f->offset);
}

int cmd_op_call(const cli_ctx *ctx, ProtobufCMessage *request,
                nc_status (*call)(nc_client *client, const ProtobufCMessage *request,
                                  ProtobufCMessage **response, const nc_call_options *call_opts,
                                  nc_error *err),
                const ProtobufCMessageDescriptor *result_type,
                int (*show)(const cli_ctx *ctx, const ProtobufCMessage *result)) {
  char request_id[NC_UUID_LEN + 1];
  char **request_id_field = string_field(request, "request_id");
  ProtobufCMessage *resp = NULL;
  nc_client *client = NULL;
  nc_error err;
  int rc;

  if (wait_timeout_ms(ctx) < 0) return EXIT_USAGE;
  if ((rc = res_request_id(ctx, request_id)) != 0) return rc;
  if (request_id_field) *request_id_field = request_id;
  if ((rc = cli_connect(ctx, &client)) != 0) goto cleanup;
  nc_call_options call_opts = {.deadline_ms = 0, .request_id = request_id};
  nc_status st = call(client, request, &resp, &call_opts, &err);
  if (st != NC_OK) {
    rc = out_sdk_error(ctx->name, st, &err);
    goto cleanup;
  }
  /* every operation-returning response has it as its `operation` field */
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field_by_name(resp->descriptor, "operation");
  const Novacron__V1__Operation *op =
      f && f->type == PROTOBUF_C_TYPE_MESSAGE
          ? *(Novacron__V1__Operation *const *)((const char *)resp + f->offset)
          : NULL;
  rc = op_finish(ctx, client, op, result_type, show);
cleanup:
  if (request_id_field) *request_id_field = NULL;
  nc_message_free(resp);
  nc_client_free(client);
  return rc;
}

/* "projects/{--project}/operations/{arg}" unless arg is a full name. */
static void op_name(const cli_ctx *ctx, char *buf, size_t len, const char *arg) {
  char project[512];
  char prefix[600];
  res_project(ctx, project, sizeof(project));
  snprintf(prefix, sizeof(prefix), "%s/operations/", project);
  res_name(buf, len, prefix, arg);
}

RES_LIST_CALL(list_operations, nc_operation_list, ListOperationsRequest, ListOperationsResponse)

int cmd_op_list(cli_ctx *ctx) {
  Novacron__V1__ListOperationsRequest req = NOVACRON__V1__LIST_OPERATIONS_REQUEST__INIT;
  static const res_list list = {list_operations, "operations", op_list_cols,
                                sizeof(op_list_cols) / sizeof(op_list_cols[0]), decorate_op};
  char parent[512];
  nc_client *client = NULL;
  res_project(ctx, parent, sizeof(parent));
  req.parent = parent;
  int rc = cli_connect(ctx, &client);
  if (rc == 0) rc = res_run_list(ctx, client, &req.base, &list);
  nc_client_free(client);
  return rc;
}

int cmd_op_get(cli_ctx *ctx) {
  Novacron__V1__GetOperationRequest req = NOVACRON__V1__GET_OPERATION_REQUEST__INIT;
  Novacron__V1__GetOperationResponse *resp = NULL;
  char name[512];
  nc_client *client = NULL;
  nc_error err;
  op_name(ctx, name, sizeof(name), ctx->argv[0]);
  req.name = name;
  int rc = cli_connect(ctx, &client);
  if (rc != 0) goto cleanup;
  nc_status st = nc_operation_get(client, &req, &resp, NULL, &err);
  rc = st != NC_OK ? out_sdk_error(ctx->name, st, &err) : show_op(ctx, resp->operation);
cleanup:
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}

int cmd_op_wait(cli_ctx *ctx) {
  Novacron__V1__Operation *op = NULL;
  char name[512];
  nc_client *client = NULL;
  nc_error err;
  op_name(ctx, name, sizeof(name), ctx->argv[0]);
  if (wait_timeout_ms(ctx) < 0) return EXIT_USAGE;
  int rc = cli_connect(ctx, &client);
  if (rc != 0) goto cleanup;
  if ((rc = wait_for(ctx, client, name, &op)) != 0) goto cleanup;
  rc = show_op(ctx, op);
  /* the exit code says how the operation ended */
  nc_status st = nc_operation_result(op, NULL, NULL, &err);
  if (rc == EXIT_OK && st != NC_OK) rc = op_error(ctx, st, &err, op->name);
cleanup:
  nc_message_free(op ? &op->base : NULL);
  nc_client_free(client);
  return rc;
}

int cmd_op_cancel(cli_ctx *ctx) {
  Novacron__V1__CancelOperationRequest req = NOVACRON__V1__CANCEL_OPERATION_REQUEST__INIT;
  Novacron__V1__CancelOperationResponse *resp = NULL;
  char name[512];
  char request_id[NC_UUID_LEN + 1];
  nc_client *client = NULL;
  nc_error err;
  int rc;
  op_name(ctx, name, sizeof(name), ctx->argv[0]);
  req.name = name;
  if ((rc = res_request_id(ctx, request_id)) != 0) return rc;
  req.request_id = request_id;
  if ((rc = cli_connect(ctx, &client)) != 0) goto cleanup;
  nc_call_options call_opts = {.deadline_ms = 0, .request_id = request_id};
  nc_status st = nc_operation_cancel(client, &req, &resp, &call_opts, &err);
  rc = st != NC_OK ? out_sdk_error(ctx->name, st, &err) : show_op(ctx, resp->operation);
cleanup:
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}

/* Whether `text` names `name` with or without `prefix` (any case, '-' for '_'). */
static bool enum_name_matches(const char *text, const char *name, const char *prefix) {
  size_t plen = strlen(prefix);
  for (int pass = 0; pass < 2; pass++) {
    const char *n = pass == 0 ? name : (strncmp(name, prefix, plen) == 0 ? name + plen : NULL);
    if (!n) continue;
    size_t i = 0;
    for (; text[i] && n[i]; i++) {
      char a = text[i] == '-' ? '_' : text[i];
      if (a >= 'a' && a <= 'z') a = (char)(a - 'a' + 'A');
      if (a != n[i]) break;
    }
    if (!text[i] && !n[i]) return true;
  }
  return false;
}

bool cmd_parse_enum(const cli_ctx *ctx, const char *flag, const char *text,
                    const ProtobufCEnumDescriptor *e, const char *prefix, int *value) {
  char choices[512] = "";
  size_t used = 0;
  for (unsigned i = 0; i < e->n_values; i++) {
    const char *name = e->values[i].name;
    if (strstr(name, "UNSPECIFIED")) continue;
    if (enum_name_matches(text, name, prefix)) {
      *value = e->values[i].value;
      return true;
    }
    /* the short lower-case spelling, for the error message */
    const char *shortname =
        strncmp(name, prefix, strlen(prefix)) == 0 ? name + strlen(prefix) : name;
    int n = snprintf(choices + used, sizeof(choices) - used, "%s", used ? ", " : "");
    for (size_t k = 0; n >= 0 && shortname[k] && used + (size_t)n + 1 < sizeof(choices); k++) {
      char c = shortname[k] == '_' ? '-' : shortname[k];
      choices[used + (size_t)n++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    if (n > 0) used += (size_t)n;
    choices[used] = '\0';
  }
  out_usage_error(ctx->name, "--%s must be one of %s, not \"%s\"", flag, choices, text);
  return false;
}
