/*
 * identity.c - novacron.v1.IdentityService: the method table and thin
 * handlers over core/identity (the rules live there; authorization by
 * role happened in api/authz.c before a handler runs).
 */
#include <stdio.h>
#include <string.h>

#include "api/authz.h"
#include "api/services.h"
#include "core/identity.h"
#include "novacron/v1/identity.pb-c.h"

#define HANDLER(fn, Req, Resp)                                                           \
  static int h_##fn(rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp, \
                    void *ctx) {                                                         \
    api_ctx *c = ctx;                                                                    \
    char msg[512];                                                                       \
    core_call cc;                                                                        \
    api_core_call(call, &cc, msg, sizeof(msg));                                          \
    int code = core_identity_##fn(c->identity, &cc, (const Novacron__V1__##Req *)req,    \
                                  (Novacron__V1__##Resp *)resp);                         \
    if (code) return rpc_fail(call, code, "%s", msg);                                    \
    api_note_result(call, resp);                                                         \
    return 0;                                                                            \
  }

HANDLER(refresh_token, RefreshTokenRequest, RefreshTokenResponse)
HANDLER(logout, LogoutRequest, LogoutResponse)
HANDLER(who_am_i, WhoAmIRequest, WhoAmIResponse)
HANDLER(create_user, CreateUserRequest, CreateUserResponse)
HANDLER(get_user, GetUserRequest, GetUserResponse)
HANDLER(list_users, ListUsersRequest, ListUsersResponse)
HANDLER(update_user, UpdateUserRequest, UpdateUserResponse)
HANDLER(delete_user, DeleteUserRequest, DeleteUserResponse)
HANDLER(change_password, ChangePasswordRequest, ChangePasswordResponse)
HANDLER(create_project, CreateProjectRequest, CreateProjectResponse)
HANDLER(get_project, GetProjectRequest, GetProjectResponse)
HANDLER(list_projects, ListProjectsRequest, ListProjectsResponse)
HANDLER(update_project, UpdateProjectRequest, UpdateProjectResponse)
HANDLER(delete_project, DeleteProjectRequest, DeleteProjectResponse)
HANDLER(get_quota, GetQuotaRequest, GetQuotaResponse)
HANDLER(set_quota, SetQuotaRequest, SetQuotaResponse)
HANDLER(create_role_binding, CreateRoleBindingRequest, CreateRoleBindingResponse)
HANDLER(list_role_bindings, ListRoleBindingsRequest, ListRoleBindingsResponse)
HANDLER(delete_role_binding, DeleteRoleBindingRequest, DeleteRoleBindingResponse)
HANDLER(create_api_key, CreateApiKeyRequest, CreateApiKeyResponse)
HANDLER(list_api_keys, ListApiKeysRequest, ListApiKeysResponse)
HANDLER(revoke_api_key, RevokeApiKeyRequest, RevokeApiKeyResponse)
HANDLER(list_sessions, ListSessionsRequest, ListSessionsResponse)
HANDLER(revoke_session, RevokeSessionRequest, RevokeSessionResponse)

/* Login is public: the audit record names the attempted user. */
static int h_login(rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp, void *ctx) {
  api_ctx *c = ctx;
  const Novacron__V1__LoginRequest *in = (const Novacron__V1__LoginRequest *)req;
  char msg[512], who[96];
  core_call cc;
  api_core_call(call, &cc, msg, sizeof(msg));
  int code = core_identity_login(c->identity, &cc, in, (Novacron__V1__LoginResponse *)resp);
  bool valid =
      in->username && strlen(in->username) < 64 &&
      strspn(in->username, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(in->username);
  snprintf(who, sizeof(who), "%s%s", code ? "anonymous:" : "users/",
           valid && *in->username ? in->username : "(invalid)");
  rpc_call_set_principal(call, who);
  return code ? rpc_fail(call, code, "%s", msg) : 0;
}

/* Project admins read their project's events; all events need a system
 * administrator. */
static int h_list_audit_events(rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp,
                               void *ctx) {
  api_ctx *c = ctx;
  const Novacron__V1__ListAuditEventsRequest *in =
      (const Novacron__V1__ListAuditEventsRequest *)req;
  char msg[512];
  core_call cc;
  api_core_call(call, &cc, msg, sizeof(msg));
  const char *parent = in->parent ? in->parent : "";
  char project[64];
  const char *scope = NULL;
  if (*parent) {
    size_t n = strlen(parent);
    if (strncmp(parent, "projects/", 9) != 0 || n - 9 >= sizeof(project) || n == 9 ||
        strchr(parent + 9, '/'))
      return rpc_fail(call, CORE_INVALID_ARGUMENT,
                      "parent: must be projects/{project}, or empty for all events");
    snprintf(project, sizeof(project), "%s", parent + 9);
    if (core_principal_role(cc.who, project) < CORE_ROLE_ADMIN)
      return rpc_fail(call, CORE_PERMISSION_DENIED,
                      "%s has no ROLE_ADMIN on projects/%s, or the project does not exist",
                      cc.who->name, project);
    scope = project;
  } else if (!cc.who->system_admin) {
    return rpc_fail(call, CORE_PERMISSION_DENIED,
                    "listing all audit events requires a system administrator; project admins "
                    "set parent to projects/{project}");
  }
  int code =
      core_audit_list(c->audit, &cc, scope, in, (Novacron__V1__ListAuditEventsResponse *)resp);
  return code ? rpc_fail(call, code, "%s", msg) : 0;
}

#define ROW(n, h, f, acc, sc) \
  { .name = n, .kind = RPC_UNARY, .handler = h, .flags = f, .access = acc, .scope = sc }
enum { RO = RPC_IDEMPOTENT, MUT = RPC_MUTATING | RPC_IDEMPOTENT };

static const rpc_method_row rows[] = {
    ROW("Login", h_login, RPC_PUBLIC | RPC_MUTATING, API_AUTHENTICATED, NULL),
    ROW("RefreshToken", h_refresh_token, RPC_PUBLIC | MUT, API_AUTHENTICATED, NULL),
    ROW("Logout", h_logout, MUT, API_AUTHENTICATED, NULL),
    ROW("WhoAmI", h_who_am_i, RO, API_AUTHENTICATED, NULL),
    ROW("CreateUser", h_create_user, MUT, API_SYSTEM_ADMIN, "user_id"),
    ROW("GetUser", h_get_user, RO, API_AUTHENTICATED, "name"),
    ROW("ListUsers", h_list_users, RO, API_AUTHENTICATED, NULL),
    ROW("UpdateUser", h_update_user, MUT, API_AUTHENTICATED, "user.name"),
    ROW("DeleteUser", h_delete_user, MUT, API_SYSTEM_ADMIN, "name"),
    ROW("ChangePassword", h_change_password, MUT, API_AUTHENTICATED, "name"),
    ROW("CreateProject", h_create_project, MUT, API_SYSTEM_ADMIN, "project_id"),
    ROW("GetProject", h_get_project, RO, API_VIEWER, "name"),
    ROW("ListProjects", h_list_projects, RO, API_AUTHENTICATED, NULL),
    ROW("UpdateProject", h_update_project, MUT, API_ADMIN, "project.name"),
    ROW("DeleteProject", h_delete_project, MUT, API_SYSTEM_ADMIN, "name"),
    ROW("GetQuota", h_get_quota, RO, API_VIEWER, "name"),
    ROW("SetQuota", h_set_quota, MUT, API_SYSTEM_ADMIN, "quota.name"),
    ROW("CreateRoleBinding", h_create_role_binding, MUT, API_ADMIN, "parent"),
    ROW("ListRoleBindings", h_list_role_bindings, RO, API_VIEWER | API_ACROSS_PROJECTS, "parent"),
    ROW("DeleteRoleBinding", h_delete_role_binding, MUT, API_ADMIN, "name"),
    ROW("CreateApiKey", h_create_api_key, MUT, API_ADMIN, "parent"),
    ROW("ListApiKeys", h_list_api_keys, RO, API_ADMIN, "parent"),
    ROW("RevokeApiKey", h_revoke_api_key, MUT, API_ADMIN, "name"),
    ROW("ListSessions", h_list_sessions, RO, API_AUTHENTICATED, "parent"),
    ROW("RevokeSession", h_revoke_session, MUT, API_AUTHENTICATED, "name"),
    ROW("ListAuditEvents", h_list_audit_events, RO, API_AUTHENTICATED, "parent"),
};

const api_service api_identity_service = {&novacron__v1__identity_service__descriptor,
                                          API_ROWS(rows)};
