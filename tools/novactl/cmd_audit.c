/*
 * cmd_audit.c - "novactl audit list": the audit log (IdentityService
 * ListAuditEvents), newest first; one project's events with --project,
 * all events (system administrators) without.
 */
#include "cli.h"
#include "resource.h"

static const out_column event_cols[] = {
    {"TIME", "time"},         {"PRINCIPAL", "principal"}, {"METHOD", "_method"},
    {"RESOURCE", "resource"}, {"CODE", "_code"},          {"REQUEST ID", "requestId"},
};

/* Table-only keys: the method without its service, the code by name. */
static void decorate_event(json_t *e) {
  const char *method = json_string_value(json_object_get(e, "method"));
  json_t *code = json_object_get(e, "resultCode");
  if (method) json_object_set_new(e, "_method", json_string(res_last_segment(method)));
  if (json_is_integer(code))
    json_object_set_new(e, "_code", json_string(nc_grpc_code_name((int)json_integer_value(code))));
}

RES_LIST_CALL(list_events, nc_identity_list_audit_events, ListAuditEventsRequest,
              ListAuditEventsResponse)

int cmd_audit_list(cli_ctx *ctx) {
  Novacron__V1__ListAuditEventsRequest req = NOVACRON__V1__LIST_AUDIT_EVENTS_REQUEST__INIT;
  static const res_list list = {list_events, "audit_events", event_cols,
                                sizeof(event_cols) / sizeof(event_cols[0]), decorate_event};
  char parent[512];
  nc_client *client = NULL;
  if (cli_get(ctx, "project")) {
    res_project(ctx, parent, sizeof(parent));
    req.parent = parent;
  }
  int rc = cli_connect(ctx, &client);
  if (rc == 0) rc = res_run_list(ctx, client, &req.base, &list);
  nc_client_free(client);
  return rc;
}
