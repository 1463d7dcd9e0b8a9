/*
 * cmd_role.c - "novactl role grant|list|revoke": project role bindings
 * (IdentityService *RoleBinding). ROLE is viewer, operator or admin (or
 * ROLE_VIEWER, ...); the project comes from --project (default "default",
 * "-" lists every project's bindings).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "resource.h"

static const out_column binding_cols[] = {
    {"Name", "name"},          {"User", "user"}, {"Role", "_role"},
    {"Created", "createTime"}, {"Etag", "etag"},
};

static const out_column binding_list_cols[] = {
    {"PROJECT", "_project"}, {"BINDING", "_id"},        {"USER", "user"},
    {"ROLE", "_role"},       {"CREATED", "createTime"},
};

/* Table-only keys: the short role, the project and the binding id. */
static void decorate_binding(json_t *b) {
  const char *name = json_string_value(json_object_get(b, "name"));
  res_short_enum(b, "role", "ROLE_", "_role");
  if (name && strncmp(name, "projects/", 9) == 0) {
    char project[256];
    snprintf(project, sizeof(project), "%.*s", (int)strcspn(name + 9, "/"), name + 9);
    json_object_set_new(b, "_project", json_string(project));
    json_object_set_new(b, "_id", json_string(res_last_segment(name)));
  }
}

int cmd_role_grant(cli_ctx *ctx) {
  Novacron__V1__CreateRoleBindingRequest req = NOVACRON__V1__CREATE_ROLE_BINDING_REQUEST__INIT;
  Novacron__V1__RoleBinding binding = NOVACRON__V1__ROLE_BINDING__INIT;
  Novacron__V1__CreateRoleBindingResponse *resp = NULL;
  char parent[512];
  char user[512];
  char request_id[NC_UUID_LEN + 1];
  nc_client *client = NULL;
  nc_error err;
  int role;
  int rc;

  if (!res_parse_role(ctx->argv[1], &role))
    return out_usage_error(ctx->name, "ROLE must be viewer, operator or admin, not \"%s\"",
                           ctx->argv[1]);
  res_project(ctx, parent, sizeof(parent));
  res_name(user, sizeof(user), "users/", ctx->argv[0]);
  req.parent = parent;
  /* one binding per user and project: the username is a natural id */
  req.role_binding_id = (char *)(cli_get(ctx, "id") ? cli_get(ctx, "id") : res_last_segment(user));
  binding.user = user;
  binding.role = (Novacron__V1__Role)role;
  req.role_binding = &binding;
  if ((rc = res_request_id(ctx, request_id)) != 0) return rc;
  req.request_id = request_id;
  if ((rc = cli_connect(ctx, &client)) != 0) goto cleanup;
  nc_call_options call_opts = {.deadline_ms = 0, .request_id = request_id};
  nc_status st = nc_identity_create_role_binding(client, &req, &resp, &call_opts, &err);
  if (st != NC_OK) {
    rc = out_sdk_error(ctx->name, st, &err);
  } else if (!resp->role_binding) {
    rc = out_usage_error(ctx->name, "the server sent no role binding");
  } else {
    rc = res_show(ctx, &resp->role_binding->base, binding_cols,
                  sizeof(binding_cols) / sizeof(binding_cols[0]), decorate_binding);
  }
cleanup:
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}

RES_LIST_CALL(list_bindings, nc_identity_list_role_bindings, ListRoleBindingsRequest,
              ListRoleBindingsResponse)

int cmd_role_list(cli_ctx *ctx) {
  Novacron__V1__ListRoleBindingsRequest req = NOVACRON__V1__LIST_ROLE_BINDINGS_REQUEST__INIT;
  static const res_list list = {list_bindings, "role_bindings", binding_list_cols,
                                sizeof(binding_list_cols) / sizeof(binding_list_cols[0]),
                                decorate_binding};
  char parent[512];
  nc_client *client = NULL;
  res_project(ctx, parent, sizeof(parent));
  req.parent = parent;
  int rc = cli_connect(ctx, &client);
  if (rc == 0) rc = res_run_list(ctx, client, &req.base, &list);
  nc_client_free(client);
  return rc;
}

int cmd_role_revoke(cli_ctx *ctx) {
  Novacron__V1__DeleteRoleBindingRequest req = NOVACRON__V1__DELETE_ROLE_BINDING_REQUEST__INIT;
  Novacron__V1__DeleteRoleBindingResponse *resp = NULL;
  char parent[512];
  char prefix[600];
  char name[1024];
  char request_id[NC_UUID_LEN + 1];
  nc_client *client = NULL;
  nc_error err;
  int rc;
  res_project(ctx, parent, sizeof(parent));
  snprintf(prefix, sizeof(prefix), "%s/roleBindings/", parent);
  res_name(name, sizeof(name), prefix, ctx->argv[0]);
  req.name = name;
  if (cli_get(ctx, "etag")) req.etag = (char *)cli_get(ctx, "etag");
  if ((rc = res_request_id(ctx, request_id)) != 0) return rc;
  req.request_id = request_id;
  if ((rc = cli_connect(ctx, &client)) != 0) goto cleanup;
  nc_call_options call_opts = {.deadline_ms = 0, .request_id = request_id};
  nc_status st = nc_identity_delete_role_binding(client, &req, &resp, &call_opts, &err);
  rc = st != NC_OK ? out_sdk_error(ctx->name, st, &err) : res_show_deleted(ctx, name);
cleanup:
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}
