/*
 * identity.h - libnovacron's typed wrappers for novacron.v1.IdentityService
 * (proto/novacron/v1/identity.proto) and the calls that give an nc_client a
 * session: nc_client_login, nc_client_refresh_session, nc_client_logout.
 * Included by novacron.h; see its "sessions and credentials" section for
 * how a client holds, refreshes and hands out its tokens.
 *
 * Every wrapper has the same shape: the request message in, on NC_OK a new
 * response message out (release it with nc_message_free), optional
 * per-call options, optional nc_error. A request of the wrong message type
 * is NC_ERR_INVALID_ARGUMENT. Mutating requests carry a request_id field:
 * fill it with nc_new_request_id() so a retry is idempotent.
 */
#ifndef NOVACRON_IDENTITY_H
#define NOVACRON_IDENTITY_H

#include "novacron/novacron.h"
#include "novacron/v1/identity.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The service's full name; methods are "/" NC_IDENTITY_SERVICE "/Login", ... */
#define NC_IDENTITY_SERVICE "novacron.v1.IdentityService"

/* ---- the client's session ---- */

/* Calls Login (without sending any credential) and, on success, makes the
 * new session the client's credential - replacing a previous session,
 * bearer token or API key - and reports it to the session callback. A
 * failed login leaves the client as it was. Wrong password, unknown and
 * disabled users all answer NC_ERR_RPC with UNAUTHENTICATED. Added in 0.1. */
NC_API nc_status nc_client_login(nc_client *client, const char *username, const char *password,
                                 nc_error *err);
/* Rotates the session's tokens now (single-flight: if another thread is
 * refreshing, waits and reuses its result). NC_ERR_NOT_FOUND without a
 * session that has a refresh token. Added in 0.1. */
NC_API nc_status nc_client_refresh_session(nc_client *client, nc_error *err);
/* Calls Logout (revoking the session on the server) and then forgets the
 * session whatever the outcome, reporting NULL to the session callback.
 * A bearer token or API key is kept (Logout answers FAILED_PRECONDITION
 * for them). The status is the Logout call's. Added in 0.1. */
NC_API nc_status nc_client_logout(nc_client *client, nc_error *err);

/* ---- typed wrappers: one per IdentityService method (added in 0.1) ---- */

/* Login: exchanges a username and password for a session. Sends no credential. Keeps nothing:
 * use nc_client_login() for a client that holds and refreshes the session. */
NC_API nc_status nc_identity_login(nc_client *client, const Novacron__V1__LoginRequest *request,
                                   Novacron__V1__LoginResponse **response,
                                   const nc_call_options *call_opts, nc_error *err);

/* RefreshToken: rotates a session's tokens (the presented refresh token is spent). Sends no
 * credential and changes nothing in the client: use nc_client_refresh_session() for the
 * client's own session. */
NC_API nc_status nc_identity_refresh_token(nc_client *client,
                                           const Novacron__V1__RefreshTokenRequest *request,
                                           Novacron__V1__RefreshTokenResponse **response,
                                           const nc_call_options *call_opts, nc_error *err);

/* Logout: revokes the caller's session on the server; the client keeps its tokens
 * (nc_client_logout() also forgets them). */
NC_API nc_status nc_identity_logout(nc_client *client, const Novacron__V1__LogoutRequest *request,
                                    Novacron__V1__LogoutResponse **response,
                                    const nc_call_options *call_opts, nc_error *err);

/* WhoAmI: the authenticated caller, its system administrator flag and its role bindings. */
NC_API nc_status nc_identity_whoami(nc_client *client, const Novacron__V1__WhoAmIRequest *request,
                                    Novacron__V1__WhoAmIResponse **response,
                                    const nc_call_options *call_opts, nc_error *err);

/* CreateUser (system administrators). */
NC_API nc_status nc_identity_create_user(nc_client *client,
                                         const Novacron__V1__CreateUserRequest *request,
                                         Novacron__V1__CreateUserResponse **response,
                                         const nc_call_options *call_opts, nc_error *err);

/* GetUser. */
NC_API nc_status nc_identity_get_user(nc_client *client,
                                      const Novacron__V1__GetUserRequest *request,
                                      Novacron__V1__GetUserResponse **response,
                                      const nc_call_options *call_opts, nc_error *err);

/* ListUsers (one page; follow next_page_token). */
NC_API nc_status nc_identity_list_users(nc_client *client,
                                        const Novacron__V1__ListUsersRequest *request,
                                        Novacron__V1__ListUsersResponse **response,
                                        const nc_call_options *call_opts, nc_error *err);

/* UpdateUser (fields named by update_mask). */
NC_API nc_status nc_identity_update_user(nc_client *client,
                                         const Novacron__V1__UpdateUserRequest *request,
                                         Novacron__V1__UpdateUserResponse **response,
                                         const nc_call_options *call_opts, nc_error *err);

/* DeleteUser (system administrators). */
NC_API nc_status nc_identity_delete_user(nc_client *client,
                                         const Novacron__V1__DeleteUserRequest *request,
                                         Novacron__V1__DeleteUserResponse **response,
                                         const nc_call_options *call_opts, nc_error *err);

/* ChangePassword. UNAUTHENTICATED here means a wrong old password: it never triggers a
 * session refresh. */
NC_API nc_status nc_identity_change_password(nc_client *client,
                                             const Novacron__V1__ChangePasswordRequest *request,
                                             Novacron__V1__ChangePasswordResponse **response,
                                             const nc_call_options *call_opts, nc_error *err);

/* CreateProject (system administrators). */
NC_API nc_status nc_identity_create_project(nc_client *client,
                                            const Novacron__V1__CreateProjectRequest *request,
                                            Novacron__V1__CreateProjectResponse **response,
                                            const nc_call_options *call_opts, nc_error *err);

/* GetProject. */
NC_API nc_status nc_identity_get_project(nc_client *client,
                                         const Novacron__V1__GetProjectRequest *request,
                                         Novacron__V1__GetProjectResponse **response,
                                         const nc_call_options *call_opts, nc_error *err);

/* ListProjects (one page). */
NC_API nc_status nc_identity_list_projects(nc_client *client,
                                           const Novacron__V1__ListProjectsRequest *request,
                                           Novacron__V1__ListProjectsResponse **response,
                                           const nc_call_options *call_opts, nc_error *err);

/* UpdateProject (fields named by update_mask). */
NC_API nc_status nc_identity_update_project(nc_client *client,
                                            const Novacron__V1__UpdateProjectRequest *request,
                                            Novacron__V1__UpdateProjectResponse **response,
                                            const nc_call_options *call_opts, nc_error *err);

/* DeleteProject (system administrators). */
NC_API nc_status nc_identity_delete_project(nc_client *client,
                                            const Novacron__V1__DeleteProjectRequest *request,
                                            Novacron__V1__DeleteProjectResponse **response,
                                            const nc_call_options *call_opts, nc_error *err);

/* GetQuota: limits and usage. */
NC_API nc_status nc_identity_get_quota(nc_client *client,
                                       const Novacron__V1__GetQuotaRequest *request,
                                       Novacron__V1__GetQuotaResponse **response,
                                       const nc_call_options *call_opts, nc_error *err);

/* SetQuota (limits named by update_mask; unset means unlimited). */
NC_API nc_status nc_identity_set_quota(nc_client *client,
                                       const Novacron__V1__SetQuotaRequest *request,
                                       Novacron__V1__SetQuotaResponse **response,
                                       const nc_call_options *call_opts, nc_error *err);

/* CreateRoleBinding: grants a user a role on a project. */
NC_API nc_status nc_identity_create_role_binding(
    nc_client *client, const Novacron__V1__CreateRoleBindingRequest *request,
    Novacron__V1__CreateRoleBindingResponse **response, const nc_call_options *call_opts,
    nc_error *err);

/* ListRoleBindings (one page; parent `projects/-` for all). */
NC_API nc_status nc_identity_list_role_bindings(
    nc_client *client, const Novacron__V1__ListRoleBindingsRequest *request,
    Novacron__V1__ListRoleBindingsResponse **response, const nc_call_options *call_opts,
    nc_error *err);

/* DeleteRoleBinding. */
NC_API nc_status nc_identity_delete_role_binding(
    nc_client *client, const Novacron__V1__DeleteRoleBindingRequest *request,
    Novacron__V1__DeleteRoleBindingResponse **response, const nc_call_options *call_opts,
    nc_error *err);

/* CreateApiKey. The response carries the secret, once: wipe it (explicit_bzero) before
 * nc_message_free() when done. */
NC_API nc_status nc_identity_create_api_key(nc_client *client,
                                            const Novacron__V1__CreateApiKeyRequest *request,
                                            Novacron__V1__CreateApiKeyResponse **response,
                                            const nc_call_options *call_opts, nc_error *err);

/* ListApiKeys (one page; never secrets). */
NC_API nc_status nc_identity_list_api_keys(nc_client *client,
                                           const Novacron__V1__ListApiKeysRequest *request,
                                           Novacron__V1__ListApiKeysResponse **response,
                                           const nc_call_options *call_opts, nc_error *err);

/* RevokeApiKey. */
NC_API nc_status nc_identity_revoke_api_key(nc_client *client,
                                            const Novacron__V1__RevokeApiKeyRequest *request,
                                            Novacron__V1__RevokeApiKeyResponse **response,
                                            const nc_call_options *call_opts, nc_error *err);

/* ListSessions (one page; parent `users/-` for all). */
NC_API nc_status nc_identity_list_sessions(nc_client *client,
                                           const Novacron__V1__ListSessionsRequest *request,
                                           Novacron__V1__ListSessionsResponse **response,
                                           const nc_call_options *call_opts, nc_error *err);

/* RevokeSession. */
NC_API nc_status nc_identity_revoke_session(nc_client *client,
                                            const Novacron__V1__RevokeSessionRequest *request,
                                            Novacron__V1__RevokeSessionResponse **response,
                                            const nc_call_options *call_opts, nc_error *err);

/* ListAuditEvents (one page, newest first by default). */
NC_API nc_status nc_identity_list_audit_events(nc_client *client,
                                               const Novacron__V1__ListAuditEventsRequest *request,
                                               Novacron__V1__ListAuditEventsResponse **response,
                                               const nc_call_options *call_opts, nc_error *err);

#ifdef __cplusplus
}
#endif

#endif
