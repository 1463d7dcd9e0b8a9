/*
 * identity.c - typed wrappers for novacron.v1.IdentityService: one row per
 * method below, each expanding to a function that checks the request's
 * message type and calls nc_call_unary (which adds the credential and the
 * session refresh). Keeping the rows in proto order makes a missing method
 * easy to spot; the prototypes and docs are in include/novacron/identity.h.
 */
#include "internal.h"
#include "novacron/identity.h"

/* Checks that `request` is a `type` message and calls `method`. */
static nc_status identity_call(nc_client *client, const char *method,
                               const ProtobufCMessage *request,
                               const ProtobufCMessageDescriptor *type,
                               const ProtobufCMessageDescriptor *response_type,
                               ProtobufCMessage **response, const nc_call_options *call_opts,
                               nc_error *err) {
  if (response) *response = NULL;
  if (request && request->descriptor != type) {
    nc_error_clear(err);
    return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "%s needs a %s, not a %s", method, type->name,
                   request->descriptor ? request->descriptor->name : "(no descriptor)");
  }
  return nc_call_unary(client, method, request, response_type, response, call_opts, err);
}

/* nc_identity_<fn>: METHOD taking novacron.v1.REQ, answering novacron.v1.RESP.
 * The descriptor names follow protobuf-c's lower_snake spelling of the
 * message names, passed in as `req_desc` and `resp_desc`. */
#define NC_IDENTITY_METHOD(fn, METHOD, REQ, RESP, req_desc, resp_desc)                          \
  nc_status nc_identity_##fn(nc_client *client, const Novacron__V1__##REQ *request,             \
                             Novacron__V1__##RESP **response, const nc_call_options *call_opts, \
                             nc_error *err) {                                                   \
    ProtobufCMessage *msg = NULL;                                                               \
    nc_status st = identity_call(client, "/" NC_IDENTITY_SERVICE "/" #METHOD,                   \
                                 request ? &request->base : NULL, &req_desc, &resp_desc,        \
                                 response ? &msg : NULL, call_opts, err);                       \
    if (response) *response = (Novacron__V1__##RESP *)msg;                                      \
    return st;                                                                                  \
  }

NC_IDENTITY_METHOD(login, Login, LoginRequest, LoginResponse,
                   novacron__v1__login_request__descriptor,
                   novacron__v1__login_response__descriptor)
NC_IDENTITY_METHOD(refresh_token, RefreshToken, RefreshTokenRequest, RefreshTokenResponse,
                   novacron__v1__refresh_token_request__descriptor,
                   novacron__v1__refresh_token_response__descriptor)
NC_IDENTITY_METHOD(logout, Logout, LogoutRequest, LogoutResponse,
                   novacron__v1__logout_request__descriptor,
                   novacron__v1__logout_response__descriptor)
NC_IDENTITY_METHOD(whoami, WhoAmI, WhoAmIRequest, WhoAmIResponse,
                   novacron__v1__who_am_irequest__descriptor,
                   novacron__v1__who_am_iresponse__descriptor)
NC_IDENTITY_METHOD(create_user, CreateUser, CreateUserRequest, CreateUserResponse,
                   novacron__v1__create_user_request__descriptor,
                   novacron__v1__create_user_response__descriptor)
NC_IDENTITY_METHOD(get_user, GetUser, GetUserRequest, GetUserResponse,
                   novacron__v1__get_user_request__descriptor,
                   novacron__v1__get_user_response__descriptor)
NC_IDENTITY_METHOD(list_users, ListUsers, ListUsersRequest, ListUsersResponse,
                   novacron__v1__list_users_request__descriptor,
                   novacron__v1__list_users_response__descriptor)
NC_IDENTITY_METHOD(update_user, UpdateUser, UpdateUserRequest, UpdateUserResponse,
                   novacron__v1__update_user_request__descriptor,
                   novacron__v1__update_user_response__descriptor)
NC_IDENTITY_METHOD(delete_user, DeleteUser, DeleteUserRequest, DeleteUserResponse,
                   novacron__v1__delete_user_request__descriptor,
                   novacron__v1__delete_user_response__descriptor)
NC_IDENTITY_METHOD(change_password, ChangePassword, ChangePasswordRequest, ChangePasswordResponse,
                   novacron__v1__change_password_request__descriptor,
                   novacron__v1__change_password_response__descriptor)
NC_IDENTITY_METHOD(create_project, CreateProject, CreateProjectRequest, CreateProjectResponse,
                   novacron__v1__create_project_request__descriptor,
                   novacron__v1__create_project_response__descriptor)
NC_IDENTITY_METHOD(get_project, GetProject, GetProjectRequest, GetProjectResponse,
                   novacron__v1__get_project_request__descriptor,
                   novacron__v1__get_project_response__descriptor)
NC_IDENTITY_METHOD(list_projects, ListProjects, ListProjectsRequest, ListProjectsResponse,
                   novacron__v1__list_projects_request__descriptor,
                   novacron__v1__list_projects_response__descriptor)
NC_IDENTITY_METHOD(update_project, UpdateProject, UpdateProjectRequest, UpdateProjectResponse,
                   novacron__v1__update_project_request__descriptor,
                   novacron__v1__update_project_response__descriptor)
NC_IDENTITY_METHOD(delete_project, DeleteProject, DeleteProjectRequest, DeleteProjectResponse,
                   novacron__v1__delete_project_request__descriptor,
                   novacron__v1__delete_project_response__descriptor)
NC_IDENTITY_METHOD(get_quota, GetQuota, GetQuotaRequest, GetQuotaResponse,
                   novacron__v1__get_quota_request__descriptor,
                   novacron__v1__get_quota_response__descriptor)
NC_IDENTITY_METHOD(set_quota, SetQuota, SetQuotaRequest, SetQuotaResponse,
                   novacron__v1__set_quota_request__descriptor,
                   novacron__v1__set_quota_response__descriptor)
NC_IDENTITY_METHOD(create_role_binding, CreateRoleBinding, CreateRoleBindingRequest,
                   CreateRoleBindingResponse, novacron__v1__create_role_binding_request__descriptor,
                   novacron__v1__create_role_binding_response__descriptor)
NC_IDENTITY_METHOD(list_role_bindings, ListRoleBindings, ListRoleBindingsRequest,
                   ListRoleBindingsResponse, novacron__v1__list_role_bindings_request__descriptor,
                   novacron__v1__list_role_bindings_response__descriptor)
NC_IDENTITY_METHOD(delete_role_binding, DeleteRoleBinding, DeleteRoleBindingRequest,
                   DeleteRoleBindingResponse, novacron__v1__delete_role_binding_request__descriptor,
                   novacron__v1__delete_role_binding_response__descriptor)
NC_IDENTITY_METHOD(create_api_key, CreateApiKey, CreateApiKeyRequest, CreateApiKeyResponse,
                   novacron__v1__create_api_key_request__descriptor,
                   novacron__v1__create_api_key_response__descriptor)
NC_IDENTITY_METHOD(list_api_keys, ListApiKeys, ListApiKeysRequest, ListApiKeysResponse,
                   novacron__v1__list_api_keys_request__descriptor,
                   novacron__v1__list_api_keys_response__descriptor)
NC_IDENTITY_METHOD(revoke_api_key, RevokeApiKey, RevokeApiKeyRequest, RevokeApiKeyResponse,
                   novacron__v1__revoke_api_key_request__descriptor,
                   novacron__v1__revoke_api_key_response__descriptor)
NC_IDENTITY_METHOD(list_sessions, ListSessions, ListSessionsRequest, ListSessionsResponse,
                   novacron__v1__list_sessions_request__descriptor,
                   novacron__v1__list_sessions_response__descriptor)
NC_IDENTITY_METHOD(revoke_session, RevokeSession, RevokeSessionRequest, RevokeSessionResponse,
                   novacron__v1__revoke_session_request__descriptor,
                   novacron__v1__revoke_session_response__descriptor)
NC_IDENTITY_METHOD(list_audit_events, ListAuditEvents, ListAuditEventsRequest,
                   ListAuditEventsResponse, novacron__v1__list_audit_events_request__descriptor,
                   novacron__v1__list_audit_events_response__descriptor)
