/*
 * identity.h - users, projects, quotas, role bindings, API keys, sessions
 * and authentication: the domain side of IdentityService.
 *
 * Credentials (DESIGN.md section 5, docs/security.md):
 *  - access tokens: JWTs signed by the auth keyring (HS256 with the signing
 *    secret, or RS256/ES256 with a configured private key; a previous
 *    secret stays accepted until its retirement time),
 *    `sub` = username, `sid` = session uid. Every call re-reads the session
 *    and the user, so a revoked session, a disabled user or a removed role
 *    binding takes effect at the next call.
 *  - refresh tokens (`ncr_...`) and API key secrets (`nck_...`): 256-bit
 *    random strings stored as SHA-256 digests. A refresh token is single
 *    use; the token an exchange produces is HMAC(secret, old token,
 *    request_id), so a retry of a lost response with the same request_id
 *    gets the same token back without the server storing it, while any
 *    other second use revokes the session.
 *  - service principals: the CN of a verified TLS client certificate,
 *    mapped to a role by configuration.
 *
 * Every function returns a CORE_* code with a human message in call->msg.
 */
#ifndef NC_CORE_IDENTITY_H
#define NC_CORE_IDENTITY_H

#include "auth/password.h"
#include "auth/policy.h"
#include "core/core.h"
#include "novacron/v1/identity.pb-c.h"
#include "store/pool.h"

typedef struct core_identity_config {
  const char *issuer;             /* JWT iss and aud; default "novacron" */
  int64_t access_ttl_s;           /* default 900 */
  int64_t session_ttl_s;          /* default 7 days */
  int login_max_failures;         /* failures within login_window_s before lockout; default 5 */
  int64_t login_window_s;         /* default 900 */
  int64_t lockout_s;              /* default 900 */
  int64_t replay_window_s;        /* CreateApiKey secret replay window; default 600 */
  const char *signing_secret;     /* required: >= 32 bytes, not a known default */
  const char *previous_secret;    /* optional: still accepted until previous_not_after */
  int64_t previous_not_after;     /* Unix seconds */
  const char *signing_key_pem;    /* optional PEM private key (RSA >= 2048 bits or EC P-256):
                                     sign with RS256/ES256 instead of HS256 */
  const char *service_principals; /* "cn=system-admin,cn2=projects/p:operator" or NULL */
  auth_password_policy policy;
  auth_kdf_params kdf;
} core_identity_config;

typedef struct core_identity core_identity;

/* Fills `c` with the defaults (no secrets). */
void core_identity_config_default(core_identity_config *c);

/* Checks the configuration (secret strength, service map) and builds the
 * keyring. Returns -1 with a reason in err. */
int core_identity_new(store_pool *db, const core_identity_config *cfg, core_identity **out,
                      char *err, size_t errlen);
void core_identity_free(core_identity *id);

/* First start: when no user exists, creates the system administrator
 * `admin` with the password from `env_password` (checked against the
 * policy) or a generated one written to `password_file` (mode 0600), and the
 * `default` project when no project exists. Safe with several replicas
 * starting at once. Returns -1 with a reason in err. `*created` says whether
 * the administrator was created now. */
int core_identity_bootstrap(core_identity *id, const char *env_password, const char *password_file,
                            bool *created, char *err, size_t errlen);

/* Authenticates a bearer credential (access token or API key secret) into
 * `out`. CORE_UNAUTHENTICATED with a message that never echoes the
 * credential; CORE_UNAVAILABLE when the database is down. */
int core_identity_authenticate(core_identity *id, core_call *call, const char *bearer,
                               core_principal *out);
/* A service principal from a verified client certificate CN; CORE_OK and
 * `out` filled when the CN is configured, else CORE_UNAUTHENTICATED. */
int core_identity_service(core_identity *id, core_call *call, const char *cn, core_principal *out);

/* ---- IdentityService methods ---- */
#define CORE_ID_METHOD(fn, Req, Resp)                                                        \
  int core_identity_##fn(core_identity *id, core_call *call, const Novacron__V1__##Req *req, \
                         Novacron__V1__##Resp *resp)
CORE_ID_METHOD(login, LoginRequest, LoginResponse);
CORE_ID_METHOD(refresh_token, RefreshTokenRequest, RefreshTokenResponse);
CORE_ID_METHOD(logout, LogoutRequest, LogoutResponse);
CORE_ID_METHOD(who_am_i, WhoAmIRequest, WhoAmIResponse);
CORE_ID_METHOD(create_user, CreateUserRequest, CreateUserResponse);
CORE_ID_METHOD(get_user, GetUserRequest, GetUserResponse);
CORE_ID_METHOD(list_users, ListUsersRequest, ListUsersResponse);
CORE_ID_METHOD(update_user, UpdateUserRequest, UpdateUserResponse);
CORE_ID_METHOD(delete_user, DeleteUserRequest, DeleteUserResponse);
CORE_ID_METHOD(change_password, ChangePasswordRequest, ChangePasswordResponse);
CORE_ID_METHOD(create_project, CreateProjectRequest, CreateProjectResponse);
CORE_ID_METHOD(get_project, GetProjectRequest, GetProjectResponse);
CORE_ID_METHOD(list_projects, ListProjectsRequest, ListProjectsResponse);
CORE_ID_METHOD(update_project, UpdateProjectRequest, UpdateProjectResponse);
CORE_ID_METHOD(delete_project, DeleteProjectRequest, DeleteProjectResponse);
CORE_ID_METHOD(get_quota, GetQuotaRequest, GetQuotaResponse);
CORE_ID_METHOD(set_quota, SetQuotaRequest, SetQuotaResponse);
CORE_ID_METHOD(create_role_binding, CreateRoleBindingRequest, CreateRoleBindingResponse);
CORE_ID_METHOD(list_role_bindings, ListRoleBindingsRequest, ListRoleBindingsResponse);
CORE_ID_METHOD(delete_role_binding, DeleteRoleBindingRequest, DeleteRoleBindingResponse);
CORE_ID_METHOD(create_api_key, CreateApiKeyRequest, CreateApiKeyResponse);
CORE_ID_METHOD(list_api_keys, ListApiKeysRequest, ListApiKeysResponse);
CORE_ID_METHOD(revoke_api_key, RevokeApiKeyRequest, RevokeApiKeyResponse);
CORE_ID_METHOD(list_sessions, ListSessionsRequest, ListSessionsResponse);
CORE_ID_METHOD(revoke_session, RevokeSessionRequest, RevokeSessionResponse);
#undef CORE_ID_METHOD

#endif
