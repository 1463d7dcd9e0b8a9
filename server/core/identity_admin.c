/*
 * identity_admin.c - users, projects, quotas, role bindings and API keys:
 * the administrative methods of IdentityService.
 *
 * Authorization by role happens before these run (api/authz.c, from the
 * method table); what remains here are the rules that depend on the
 * request's content: self versus others, the last system administrator,
 * an API key's role not above its creator's.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/password.h"
#include "auth/policy.h"
#include "core/internal.h"
#include "core/listq.h"
#include "util/log.h"

static int mask_check(core_call *call, const Google__Protobuf__FieldMask *m,
                      const char *const *allowed, size_t n) {
  if (!m || m->n_paths == 0)
    return core_fail(call, CORE_INVALID_ARGUMENT, "update_mask: list the fields to change");
  for (size_t i = 0; i < m->n_paths; i++) {
    bool ok = false;
    for (size_t k = 0; k < n && !ok; k++)
      ok = strcmp(m->paths[i], allowed[k]) == 0;
    if (!ok) {
      char list[256] = "";
      size_t o = 0;
      for (size_t k = 0; k < n && o < sizeof(list); k++)
        o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", k ? ", " : "", allowed[k]);
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "update_mask: \"%.64s\" cannot be changed (allowed: %s)", m->paths[i], list);
    }
  }
  return CORE_OK;
}

static int check_email(core_call *call, const char *e) {
  int code = core_check_text(call, "email", e, 254);
  if (code || !e || !*e) return code;
  const char *at = strchr(e, '@');
  if (!at || at == e || strchr(at + 1, '@') || !strchr(at + 1, '.') || at[1] == '.' ||
      e[strlen(e) - 1] == '.' || strpbrk(e, " <>()[],;:\\\""))
    return core_fail(call, CORE_INVALID_ARGUMENT, "email: not a valid address");
  return CORE_OK;
}

/* ================= users ================= */

#define USER_COLS                                                                    \
  "u.id, u.username, u.display_name, u.email, u.disabled, u.system_admin, " CORE_TS( \
      "u.last_login_at") ", u.version, " CORE_TS("u.created_at") ", " CORE_TS("u.updated_at")
#define USER_NCOLS 10

static Novacron__V1__User *user_from_row(core_call *call, const PGresult *r, int i) {
  Novacron__V1__User *u = core_alloc(call, sizeof(*u));
  if (!u) return NULL;
  novacron__v1__user__init(u);
  char name[96];
  snprintf(name, sizeof(name), "users/%s", PQgetvalue(r, i, 1));
  u->name = core_strdup(call, name);
  u->uid = core_strdup(call, PQgetvalue(r, i, 0));
  u->username = core_strdup(call, PQgetvalue(r, i, 1));
  u->display_name = core_strdup(call, PQgetvalue(r, i, 2));
  u->email = core_strdup(call, PQgetvalue(r, i, 3));
  u->disabled = core_bool(r, i, 4);
  u->system_admin = core_bool(r, i, 5);
  u->last_login_time = core_ts(call, r, i, 6);
  u->etag = core_etag(call, core_i64(r, i, 7));
  u->create_time = core_ts(call, r, i, 8);
  u->update_time = core_ts(call, r, i, 9);
  return u;
}

typedef struct user_arg {
  core_identity *id;
  const char *username;
  const char *rid;
  const ProtobufCMessage *req;
  ProtobufCMessage *resp;
  Novacron__V1__User **out;
  const Novacron__V1__User *in;
  const Google__Protobuf__FieldMask *mask;
  const char *etag;
  const char *hash;
  const char *old_password;
  bool need_old;
} user_arg;

static int create_user_tx(store_conn *conn, core_tx *tx) {
  user_arg *a = tx->arg;
  bool found;
  int code = core_idem_replay(tx, conn, a->rid, a->req, a->resp, &found);
  if (code || found) return code;
  const char *p[] = {a->username,
                     a->in && a->in->display_name ? a->in->display_name : "",
                     a->in && a->in->email ? a->in->email : "",
                     a->in && a->in->disabled ? "t" : "f",
                     a->in && a->in->system_admin ? "t" : "f",
                     a->hash};
  PGresult *r;
  code = core_q(tx, conn, "user_insert",
                "INSERT INTO users AS u (username, display_name, email, disabled, system_admin, "
                "password_hash) VALUES ($1, $2, $3, $4::bool, $5::bool, $6) "
                "ON CONFLICT (username) DO NOTHING RETURNING " USER_COLS,
                6, p, &r);
  if (code) return code;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return core_fail(tx->call, CORE_ALREADY_EXISTS, "user %s already exists", a->username);
  }
  *a->out = user_from_row(tx->call, r, 0);
  PQclear(r);
  return core_idem_store(tx, conn, a->rid, a->req, a->resp);
}

int core_identity_create_user(core_identity *id, core_call *call,
                              const Novacron__V1__CreateUserRequest *req,
                              Novacron__V1__CreateUserResponse *resp) {
  int code = core_check_request_id(call, req->request_id);
  if (code) return code;
  if (!core_id_valid(req->user_id))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "user_id: 1-63 characters of a-z, 0-9 and '-', starting with a letter");
  if (req->user) {
    if ((code = core_check_text(call, "user.display_name", req->user->display_name, 128)) ||
        (code = check_email(call, req->user->email)))
      return code;
  }
  char why[256];
  if (!req->password || !*req->password)
    return core_fail(call, CORE_INVALID_ARGUMENT, "password: required");
  if (!auth_password_check(&id->cfg.policy, req->user_id, req->password, why, sizeof(why)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "password: %s", why);
  char hash[AUTH_PASSWORD_HASH_MAX];
  if (auth_password_hash(req->password, &id->cfg.kdf, hash, sizeof(hash)) != AUTH_OK)
    return core_fail(call, CORE_INTERNAL, "cannot hash the password");
  user_arg a = {.id = id,
                .username = req->user_id,
                .rid = req->request_id,
                .req = &req->base,
                .resp = &resp->base,
                .out = &resp->user,
                .in = req->user,
                .hash = hash};
  return core_run_tx(id->db, call, create_user_tx, &a);
}

static bool may_see_user(const core_call *call, const char *username) {
  return call->who->system_admin ||
         (call->who->kind == CORE_PRINCIPAL_USER && strcmp(call->who->username, username) == 0);
}

static int get_user_tx(store_conn *conn, core_tx *tx) {
  user_arg *a = tx->arg;
  PGresult *r;
  int code =
      core_q_one(tx, conn, "user_get", "SELECT " USER_COLS " FROM users u WHERE username = $1",
                 a->username, "user", &r);
  if (code) return code;
  *a->out = user_from_row(tx->call, r, 0);
  PQclear(r);
  return CORE_OK;
}

int core_identity_get_user(core_identity *id, core_call *call,
                           const Novacron__V1__GetUserRequest *req,
                           Novacron__V1__GetUserResponse *resp) {
  char user[64];
  if (!core_name1(req->name, "users/", user, sizeof(user)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "name: must be users/{user}");
  if (!may_see_user(call, user))
    return core_fail(call, CORE_PERMISSION_DENIED,
                     "reading other users requires system administrator");
  user_arg a = {.id = id, .username = user, .out = &resp->user};
  return core_run_tx(id->db, call, get_user_tx, &a);
}

static const lq_field user_fields[] = {
    {.name = "name", .column = "u.username", .type = LQ_STRING, .orderable = true},
    {.name = "username",
     .column = "u.username",
     .type = LQ_STRING,
     .filterable = true,
     .wildcard = true},
    {.name = "email", .column = "u.email", .type = LQ_STRING, .filterable = true, .wildcard = true},
    {.name = "disabled", .column = "u.disabled", .type = LQ_BOOL, .filterable = true},
    {.name = "system_admin", .column = "u.system_admin", .type = LQ_BOOL, .filterable = true},
    {.name = "create_time", .column = "u.created_at", .type = LQ_TIME, .orderable = true},
    {.name = "last_login_time", .column = "u.last_login_at", .type = LQ_TIME, .orderable = true},
};
static const lq_spec user_spec = {
    user_fields, sizeof(user_fields) / sizeof(user_fields[0]), "name", "u.id", 50, 500};

CORE_LIST_ROW(user_row, Novacron__V1__ListUsersResponse, users, user_from_row)

int core_identity_list_users(core_identity *id, core_call *call,
                             const Novacron__V1__ListUsersRequest *req,
                             Novacron__V1__ListUsersResponse *resp) {
  bool all = call->who->system_admin;
  core_list_req l = {
      .spec = &user_spec,
      .select = "SELECT " USER_COLS
                ", count(*) OVER () FROM users u "
                "WHERE ($1::text IS NULL OR u.username = $1)",
      .fixed = {all ? NULL : (call->who->kind == CORE_PRINCIPAL_USER ? call->who->username : "-")},
      .nfixed = 1,
      CORE_LIST_PAGE(req, resp),
      .fingerprint = "users",
      .ncols = USER_NCOLS,
      .row = user_row,
      .total_size = &resp->total_size};
  return core_run_tx(id->db, call, core_list_tx, &l);
}

/* Locks the user row; fills `*version`, `*uid`, admin and disabled flags. */

static int lock_user(core_tx *tx, store_conn *conn, const char *username, int64_t *version,
                     char uid[40], bool *admin, bool *disabled) {
  PGresult *r;
  int code = core_q_one(tx, conn, "user_lock",
                        "SELECT id, version, system_admin, disabled FROM users WHERE username = $1 "
                        "FOR UPDATE",
                        username, "user", &r);
  if (code) return code;
  snprintf(uid, 40, "%s", PQgetvalue(r, 0, 0));
  *version = core_i64(r, 0, 1);
  if (admin) *admin = core_bool(r, 0, 2);
  if (disabled) *disabled = core_bool(r, 0, 3);
  PQclear(r);
  return CORE_OK;
}

/* Whether another enabled system administrator than `uid` exists. */

static int other_admin(core_tx *tx, store_conn *conn, const char *uid, bool *exists) {
  const char *p[] = {uid};
  PGresult *r;
  /* lock every admin row so two concurrent demotions cannot both pass */
  int code = core_q(tx, conn, "user_other_admin",
                    "SELECT count(*) FROM (SELECT 1 FROM users WHERE system_admin AND NOT disabled "
                    "AND id <> $1::uuid FOR UPDATE) a",
                    1, p, &r);
  if (code) return code;
  *exists = core_i64(r, 0, 0) > 0;
  PQclear(r);
  return CORE_OK;
}

static int update_user_tx(store_conn *conn, core_tx *tx) {
  user_arg *a = tx->arg;
  bool found;
  int code = core_idem_replay(tx, conn, a->rid, a->req, a->resp, &found);
  if (code || found) return code;
  int64_t version;
  char uid[40];
  bool admin, disabled;
  if ((code = lock_user(tx, conn, a->username, &version, uid, &admin, &disabled))) return code;
  if ((code = core_check_etag(tx->call, a->in->etag, version, "the user"))) return code;
  bool set_disabled = core_mask_has(a->mask, "disabled"),
       set_admin = core_mask_has(a->mask, "system_admin");
  bool new_disabled = set_disabled ? a->in->disabled : disabled;
  bool new_admin = set_admin ? a->in->system_admin : admin;
  if (admin && !disabled && (new_disabled || !new_admin)) {
    bool others;
    if ((code = other_admin(tx, conn, uid, &others))) return code;
    if (!others)
      return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                       "%s is the last enabled system administrator: make another user system "
                       "administrator first",
                       a->username);
  }
  const char *p[] = {uid,
                     core_mask_has(a->mask, "display_name") ? "t" : "f",
                     a->in->display_name ? a->in->display_name : "",
                     core_mask_has(a->mask, "email") ? "t" : "f",
                     a->in->email ? a->in->email : "",
                     new_disabled ? "t" : "f",
                     new_admin ? "t" : "f"};
  PGresult *r;
  code =
      core_q(tx, conn, "user_update",
             "UPDATE users u SET display_name = CASE WHEN $2::bool THEN $3 ELSE display_name END, "
             "email = CASE WHEN $4::bool THEN $5 ELSE email END, disabled = $6::bool, "
             "system_admin = $7::bool, version = version + 1, updated_at = now() "
             "WHERE id = $1::uuid RETURNING " USER_COLS,
             7, p, &r);
  if (code) return code;
  *a->out = user_from_row(tx->call, r, 0);
  PQclear(r);
  if (new_disabled && !disabled) {
    const char *s[] = {uid};
    if ((code = core_q(tx, conn, "user_revoke_all",
                       "UPDATE sessions SET revoked_at = now(), revoke_reason = 'user disabled' "
                       "WHERE user_id = $1::uuid AND revoked_at IS NULL",
                       1, s, NULL)))
      return code;
  }
  return core_idem_store(tx, conn, a->rid, a->req, a->resp);
}

int core_identity_update_user(core_identity *id, core_call *call,
                              const Novacron__V1__UpdateUserRequest *req,
                              Novacron__V1__UpdateUserResponse *resp) {
  static const char *const allowed[] = {"display_name", "email", "disabled", "system_admin"};
  int code = core_check_request_id(call, req->request_id);
  if (code) return code;
  char user[64];
  if (!req->user || !core_name1(req->user->name, "users/", user, sizeof(user)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "user.name: must be users/{user}");
  if ((code = mask_check(call, req->update_mask, allowed, 4))) return code;
  if (!may_see_user(call, user))
    return core_fail(call, CORE_PERMISSION_DENIED,
                     "changing other users requires system administrator");
  if ((core_mask_has(req->update_mask, "disabled") ||
       core_mask_has(req->update_mask, "system_admin")) &&
      !call->who->system_admin)
    return core_fail(call, CORE_PERMISSION_DENIED,
                     "disabled and system_admin can only be changed by a system administrator");
  if ((code = core_check_text(call, "user.display_name", req->user->display_name, 128)) ||
      (code = check_email(call, req->user->email)))
    return code;
  user_arg a = {.id = id,
                .username = user,
                .rid = req->request_id,
                .req = &req->base,
                .resp = &resp->base,
                .out = &resp->user,
                .in = req->user,
                .mask = req->update_mask};
  return core_run_tx(id->db, call, update_user_tx, &a);
}

static int delete_user_tx(store_conn *conn, core_tx *tx) {
  user_arg *a = tx->arg;
  bool found;
  int code = core_idem_replay(tx, conn, a->rid, a->req, a->resp, &found);
  if (code || found) return code;
  int64_t version;
  char uid[40];
  bool admin, disabled;
  if ((code = lock_user(tx, conn, a->username, &version, uid, &admin, &disabled))) return code;
  if ((code = core_check_etag(tx->call, a->etag, version, "the user"))) return code;
  if (admin && !disabled) {
    bool others;
    if ((code = other_admin(tx, conn, uid, &others))) return code;
    if (!others)
      return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                       "%s is the last enabled system administrator and cannot be deleted",
                       a->username);
  }
  const char *p[] = {uid};
  if ((code = core_q(tx, conn, "user_delete", "DELETE FROM users WHERE id = $1::uuid", 1, p, NULL)))
    return code;
  return core_idem_store(tx, conn, a->rid, a->req, a->resp);
}

int core_identity_delete_user(core_identity *id, core_call *call,
                              const Novacron__V1__DeleteUserRequest *req,
                              Novacron__V1__DeleteUserResponse *resp) {
  int code = core_check_request_id(call, req->request_id);
  if (code) return code;
  char user[64];
  if (!core_name1(req->name, "users/", user, sizeof(user)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "name: must be users/{user}");
  if (call->who->kind == CORE_PRINCIPAL_USER && strcmp(call->who->username, user) == 0)
    return core_fail(call, CORE_FAILED_PRECONDITION, "you cannot delete yourself");
  user_arg a = {.id = id,
                .username = user,
                .rid = req->request_id,
                .req = &req->base,
                .resp = &resp->base,
                .etag = req->etag};
  return core_run_tx(id->db, call, delete_user_tx, &a);
}

static int change_password_tx(store_conn *conn, core_tx *tx) {
  user_arg *a = tx->arg;
  bool found;
  int code = core_idem_replay(tx, conn, a->rid, a->req, a->resp, &found);
  if (code || found) return code;
  const char *p[] = {a->username};
  PGresult *r;
  if ((code =
           core_q(tx, conn, "user_pw_get",
                  "SELECT id, password_hash FROM users WHERE username = $1 FOR UPDATE", 1, p, &r)))
    return code;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return core_fail(tx->call, CORE_NOT_FOUND, "user %s not found", a->username);
  }
  char uid[40];
  snprintf(uid, sizeof(uid), "%s", PQgetvalue(r, 0, 0));
  if (a->need_old) {
    bool ok = false;
    auth_password_verify(a->old_password ? a->old_password : "", PQgetvalue(r, 0, 1), NULL, &ok,
                         NULL);
    if (!ok) {
      PQclear(r);
      return core_fail(tx->call, CORE_UNAUTHENTICATED, "old_password: does not match");
    }
  }
  PQclear(r);
  const char *caller_session = tx->call->who->session[0] ? tx->call->who->session : NULL;
  const char *u[] = {uid, a->hash, caller_session};
  if ((code = core_q(tx, conn, "user_pw_set",
                     "UPDATE users u SET password_hash = $2, version = version + 1, "
                     "updated_at = now(), failed_logins = 0, locked_until = NULL "
                     "WHERE id = $1::uuid RETURNING " USER_COLS,
                     2, u, &r)))
    return code;
  *a->out = user_from_row(tx->call, r, 0);
  PQclear(r);
  if ((code = core_q(tx, conn, "user_pw_revoke",
                     "UPDATE sessions SET revoked_at = now(), revoke_reason = 'password changed' "
                     "WHERE user_id = $1::uuid AND revoked_at IS NULL "
                     "AND ($3::uuid IS NULL OR id <> $3::uuid) AND $2::text IS NOT NULL",
                     3, u, NULL)))
    return code;
  return core_idem_store(tx, conn, a->rid, a->req, a->resp);
}

int core_identity_change_password(core_identity *id, core_call *call,
                                  const Novacron__V1__ChangePasswordRequest *req,
                                  Novacron__V1__ChangePasswordResponse *resp) {
  int code = core_check_request_id(call, req->request_id);
  if (code) return code;
  char user[64];
  if (!core_name1(req->name, "users/", user, sizeof(user)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "name: must be users/{user}");
  bool self = call->who->kind == CORE_PRINCIPAL_USER && strcmp(call->who->username, user) == 0;
  if (!self && !call->who->system_admin)
    return core_fail(call, CORE_PERMISSION_DENIED,
                     "changing another user's password requires system administrator");
  char why[256];
  if (!req->new_password || !*req->new_password)
    return core_fail(call, CORE_INVALID_ARGUMENT, "new_password: required");
  if (!auth_password_check(&id->cfg.policy, user, req->new_password, why, sizeof(why)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "new_password: %s", why);
  if (self && req->old_password && strcmp(req->old_password, req->new_password) == 0)
    return core_fail(call, CORE_INVALID_ARGUMENT, "new_password: must differ from the old one");
  char hash[AUTH_PASSWORD_HASH_MAX];
  if (auth_password_hash(req->new_password, &id->cfg.kdf, hash, sizeof(hash)) != AUTH_OK)
    return core_fail(call, CORE_INTERNAL, "cannot hash the password");
  user_arg a = {.id = id,
                .username = user,
                .rid = req->request_id,
                .req = &req->base,
                .resp = &resp->base,
                .out = &resp->user,
                .hash = hash,
                .old_password = req->old_password,
                .need_old = self};
  return core_run_tx(id->db, call, change_password_tx, &a);
}

/* ================= projects ================= */

#define PROJECT_COLS                                                                        \
  "p.id, p.project_id, p.display_name, p.description, p.labels::text, p.version, " CORE_TS( \
      "p.created_at") ", " CORE_TS("p.updated_at")
#define PROJECT_NCOLS 8

static Novacron__V1__Project *project_from_row(core_call *call, const PGresult *r, int i) {
  Novacron__V1__Project *p = core_alloc(call, sizeof(*p));
  if (!p) return NULL;
  novacron__v1__project__init(p);
  char name[96];
  snprintf(name, sizeof(name), "projects/%s", PQgetvalue(r, i, 1));
  p->name = core_strdup(call, name);
  p->uid = core_strdup(call, PQgetvalue(r, i, 0));
  p->display_name = core_strdup(call, PQgetvalue(r, i, 2));
  p->description = core_strdup(call, PQgetvalue(r, i, 3));
  p->etag = core_etag(call, core_i64(r, i, 5));
  p->create_time = core_ts(call, r, i, 6);
  p->update_time = core_ts(call, r, i, 7);
  p->labels = core_labels_from_json(call, PQgetvalue(r, i, 4), &p->n_labels);
  return p;
}

typedef struct project_arg {
  core_identity *id;
  const char *project;
  const char *rid;
  const ProtobufCMessage *req;
  ProtobufCMessage *resp;
  Novacron__V1__Project **out;
  const Novacron__V1__Project *in;
  const Google__Protobuf__FieldMask *mask;
  const char *labels;
  const char *etag;
} project_arg;

static int create_project_tx(store_conn *conn, core_tx *tx) {
  project_arg *a = tx->arg;
  bool found;
  int code = core_idem_replay(tx, conn, a->rid, a->req, a->resp, &found);
  if (code || found) return code;
  const char *p[] = {a->project, a->in && a->in->display_name ? a->in->display_name : "",
                     a->in && a->in->description ? a->in->description : "", a->labels};
  PGresult *r;
  code = core_q(tx, conn, "project_insert",
                "WITH p AS (INSERT INTO projects (project_id, display_name, description, labels) "
                "VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT (project_id) DO NOTHING RETURNING *), "
                "q AS (INSERT INTO quotas (project) SELECT id FROM p) "
                "SELECT " PROJECT_COLS " FROM p",
                4, p, &r);
  if (code) return code;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return core_fail(tx->call, CORE_ALREADY_EXISTS, "project %s already exists", a->project);
  }
  *a->out = project_from_row(tx->call, r, 0);
  PQclear(r);
  return core_idem_store(tx, conn, a->rid, a->req, a->resp);
}

static int check_project_text(core_call *call, const Novacron__V1__Project *p, const char *prefix) {
  char f[64];
  snprintf(f, sizeof(f), "%s.display_name", prefix);
  int code = core_check_text(call, f, p->display_name, 128);
  if (code) return code;
  snprintf(f, sizeof(f), "%s.description", prefix);
  return core_check_text(call, f, p->description, 1024);
}

int core_identity_create_project(core_identity *id, core_call *call,
                                 const Novacron__V1__CreateProjectRequest *req,
                                 Novacron__V1__CreateProjectResponse *resp) {
  int code = core_check_request_id(call, req->request_id);
  if (code) return code;
  if (!core_id_valid(req->project_id))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "project_id: 1-63 characters of a-z, 0-9 and '-', starting with a letter");
  if (strcmp(req->project_id, "-") == 0)
    return core_fail(call, CORE_INVALID_ARGUMENT, "project_id: '-' is reserved");
  char *labels = NULL;
  if (req->project && (code = check_project_text(call, req->project, "project"))) return code;
  if ((code = core_labels_json(call, req->project ? req->project->labels : NULL,
                               req->project ? req->project->n_labels : 0, &labels)))
    return code;
  project_arg a = {.id = id,
                   .project = req->project_id,
                   .rid = req->request_id,
                   .req = &req->base,
                   .resp = &resp->base,
                   .out = &resp->project,
                   .in = req->project,
                   .labels = labels};
  code = core_run_tx(id->db, call, create_project_tx, &a);
  free(labels);
  return code;
}

static int get_project_tx(store_conn *conn, core_tx *tx) {
  project_arg *a = tx->arg;
  PGresult *r;
  int code = core_q_one(tx, conn, "project_get",
                        "SELECT " PROJECT_COLS " FROM projects p WHERE project_id = $1", a->project,
                        "project", &r);
  if (code) return code;
  *a->out = project_from_row(tx->call, r, 0);
  PQclear(r);
  return CORE_OK;
}

int core_identity_get_project(core_identity *id, core_call *call,
                              const Novacron__V1__GetProjectRequest *req,
                              Novacron__V1__GetProjectResponse *resp) {
  char proj[64];
  if (!core_name1(req->name, "projects/", proj, sizeof(proj)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "name: must be projects/{project}");
  project_arg a = {.id = id, .project = proj, .out = &resp->project};
  return core_run_tx(id->db, call, get_project_tx, &a);
}

static const lq_field project_fields[] = {
    {.name = "name", .column = "p.project_id", .type = LQ_STRING, .orderable = true},
    {.name = "display_name",
     .column = "p.display_name",
     .type = LQ_STRING,
     .filterable = true,
     .wildcard = true},
    {.name = "labels", .column = "p.labels", .type = LQ_LABELS, .filterable = true},
    {.name = "create_time", .column = "p.created_at", .type = LQ_TIME, .orderable = true},
};
static const lq_spec project_spec = {
    project_fields, sizeof(project_fields) / sizeof(project_fields[0]), "name", "p.id", 50, 500};

CORE_LIST_ROW(project_row, Novacron__V1__ListProjectsResponse, projects, project_from_row)

int core_identity_list_projects(core_identity *id, core_call *call,
                                const Novacron__V1__ListProjectsRequest *req,
                                Novacron__V1__ListProjectsResponse *resp) {
  char vis[CORE_MAX_BINDINGS * 66 + 4];
  core_visible_projects(call->who, vis, sizeof(vis));
  core_list_req l = {.spec = &project_spec,
                     .select = "SELECT " PROJECT_COLS
                               ", count(*) OVER () FROM projects p "
                               "WHERE ($1::text[] IS NULL OR p.project_id = ANY($1::text[]))",
                     .fixed = {call->who->system_admin ? NULL : vis},
                     .nfixed = 1,
                     CORE_LIST_PAGE(req, resp),
                     .fingerprint = "projects",
                     .ncols = PROJECT_NCOLS,
                     .row = project_row,
                     .total_size = &resp->total_size};
  return core_run_tx(id->db, call, core_list_tx, &l);
}

static int lock_project(core_tx *tx, store_conn *conn, const char *project, char uid[40],
                        int64_t *version) {
  PGresult *r;
  int code = core_q_one(tx, conn, "project_lock",
                        "SELECT id, version FROM projects WHERE project_id = $1 FOR UPDATE",
                        project, "project", &r);
  if (code) return code;
  snprintf(uid, 40, "%s", PQgetvalue(r, 0, 0));
  if (version) *version = core_i64(r, 0, 1);
  PQclear(r);
  return CORE_OK;
}

static int update_project_tx(store_conn *conn, core_tx *tx) {
  project_arg *a = tx->arg;
  bool found;
  int code = core_idem_replay(tx, conn, a->rid, a->req, a->resp, &found);
  if (code || found) return code;
  char uid[40];
  int64_t version;
  if ((code = lock_project(tx, conn, a->project, uid, &version))) return code;
  if ((code = core_check_etag(tx->call, a->in->etag, version, "the project"))) return code;
  const char *p[] = {uid,
                     core_mask_has(a->mask, "display_name") ? "t" : "f",
                     a->in->display_name ? a->in->display_name : "",
                     core_mask_has(a->mask, "description") ? "t" : "f",
                     a->in->description ? a->in->description : "",
                     core_mask_has(a->mask, "labels") ? "t" : "f",
                     a->labels};
  PGresult *r;
  code = core_q(tx, conn, "project_update",
                "UPDATE projects p SET display_name = CASE WHEN $2::bool THEN $3 ELSE display_name "
                "END, description = CASE WHEN $4::bool THEN $5 ELSE description END, "
                "labels = CASE WHEN $6::bool THEN $7::jsonb ELSE labels END, "
                "version = version + 1, updated_at = now() WHERE id = $1::uuid "
                "RETURNING " PROJECT_COLS,
                7, p, &r);
  if (code) return code;
  *a->out = project_from_row(tx->call, r, 0);
  PQclear(r);
  return core_idem_store(tx, conn, a->rid, a->req, a->resp);
}

int core_identity_update_project(core_identity *id, core_call *call,
                                 const Novacron__V1__UpdateProjectRequest *req,
                                 Novacron__V1__UpdateProjectResponse *resp) {
  static const char *const allowed[] = {"display_name", "description", "labels"};
  int code = core_check_request_id(call, req->request_id);
  if (code) return code;
  char proj[64];
  if (!req->project || !core_name1(req->project->name, "projects/", proj, sizeof(proj)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "project.name: must be projects/{project}");
  if ((code = mask_check(call, req->update_mask, allowed, 3))) return code;
  if ((code = check_project_text(call, req->project, "project"))) return code;
  char *labels = NULL;
  if ((code = core_labels_json(call, req->project->labels, req->project->n_labels, &labels)))
    return code;
  project_arg a = {.id = id,
                   .project = proj,
                   .rid = req->request_id,
                   .req = &req->base,
                   .resp = &resp->base,
                   .out = &resp->project,
                   .in = req->project,
                   .mask = req->update_mask,
                   .labels = labels};
  code = core_run_tx(id->db, call, update_project_tx, &a);
  free(labels);
  return code;
}

static int delete_project_tx(store_conn *conn, core_tx *tx) {
  project_arg *a = tx->arg;
  bool found;
  int code = core_idem_replay(tx, conn, a->rid, a->req, a->resp, &found);
  if (code || found) return code;
  char uid[40];
  int64_t version;
  if ((code = lock_project(tx, conn, a->project, uid, &version))) return code;
  if ((code = core_check_etag(tx->call, a->etag, version, "the project"))) return code;
  /* VMs, volumes, networks and backups arrive with later schema versions;
   * their tables reference projects without ON DELETE CASCADE, so a project
   * that still holds any is refused by the foreign key below. */
  const char *p[] = {uid};
  code = core_q(tx, conn, "project_delete", "DELETE FROM projects WHERE id = $1::uuid", 1, p, NULL);
  if (code == CORE_INVALID_ARGUMENT)
    return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                     "project %s still holds resources: delete them first", a->project);
  if (code) return code;
  return core_idem_store(tx, conn, a->rid, a->req, a->resp);
}

int core_identity_delete_project(core_identity *id, core_call *call,
                                 const Novacron__V1__DeleteProjectRequest *req,
                                 Novacron__V1__DeleteProjectResponse *resp) {
  int code = core_check_request_id(call, req->request_id);
  if (code) return code;
  char proj[64];
  if (!core_name1(req->name, "projects/", proj, sizeof(proj)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "name: must be projects/{project}");
  project_arg a = {.id = id,
                   .project = proj,
                   .rid = req->request_id,
                   .req = &req->base,
                   .resp = &resp->base,
                   .etag = req->etag};
  return core_run_tx(id->db, call, delete_project_tx, &a);
}

/* ================= quotas ================= */

static const char *const quota_names[] = {"vcpus",    "memory_mib", "vms",    "volume_gib",
                                          "networks", "backup_gib", "volumes"};
#define NQUOTA ((int)(sizeof(quota_names) / sizeof(quota_names[0])))

static Google__Protobuf__Int64Value **quota_slot(Novacron__V1__Quota__Limits *l, int i) {
  switch (i) {
  case 0: return &l->vcpus;
  case 1: return &l->memory_mib;
  case 2: return &l->vms;
  case 3: return &l->volume_gib;
  case 4: return &l->networks;
  case 5: return &l->backup_gib;
  default: return &l->volumes;
  }
}

#define QUOTA_COLS \
  "p.project_id, q.vcpus, q.memory_mib, q.vms, q.volume_gib, q.networks, q.backup_gib, " \
  "q.volumes, q.version, " CORE_TS("q.updated_at") ", (SELECT coalesce(sum(v.vcpus), 0) FROM vms v "  \
  "WHERE v.project = q.project), (SELECT coalesce(sum(v.memory_mib), 0) FROM vms v WHERE " \
  "v.project = q.project), (SELECT count(*) FROM vms v WHERE v.project = q.project), "     \
  "(SELECT coalesce(sum((vo.size_bytes + 1073741823) / 1073741824), 0) FROM volumes vo "   \
  "WHERE vo.project = q.project), (SELECT count(*) FROM networks n WHERE n.project = "      \
  "q.project), (SELECT count(*) FROM volumes vo WHERE vo.project = q.project)"

static Novacron__V1__Quota *quota_from_row(core_call *call, const PGresult *r) {
  Novacron__V1__Quota *q = core_alloc(call, sizeof(*q));
  Novacron__V1__Quota__Limits *l = core_alloc(call, sizeof(*l));
  Novacron__V1__Quota__Usage *u = core_alloc(call, sizeof(*u));
  if (!q || !l || !u) return NULL;
  novacron__v1__quota__init(q);
  novacron__v1__quota__limits__init(l);
  novacron__v1__quota__usage__init(u);
  char name[96];
  snprintf(name, sizeof(name), "projects/%s/quota", PQgetvalue(r, 0, 0));
  q->name = core_strdup(call, name);
  for (int i = 0; i < NQUOTA; i++) {
    if (!core_val(r, 0, 1 + i)) continue;
    Google__Protobuf__Int64Value *v = core_alloc(call, sizeof(*v));
    if (!v) return NULL;
    google__protobuf__int64_value__init(v);
    v->value = core_i64(r, 0, 1 + i);
    *quota_slot(l, i) = v;
  }
  /* Usage: what the project's VMs, volumes (whole GiB each, as the quota
   * counts them) and networks hold; backups arrive with their service. */
  u->vcpus = core_i64(r, 0, 10);
  u->memory_mib = core_i64(r, 0, 11);
  u->vms = core_i64(r, 0, 12);
  u->volume_gib = core_i64(r, 0, 13);
  u->networks = core_i64(r, 0, 14);
  u->volumes = core_i64(r, 0, 15);
  q->limits = l;
  q->usage = u;
  q->etag = core_etag(call, core_i64(r, 0, 8));
  q->update_time = core_ts(call, r, 0, 9);
  return q;
}

typedef struct quota_arg {
  const char *project;
  const char *rid;
  const ProtobufCMessage *req;
  ProtobufCMessage *resp;
  Novacron__V1__Quota **out;
  const Novacron__V1__Quota *in;
  bool set[NQUOTA];
} quota_arg;

static int get_quota_tx(store_conn *conn, core_tx *tx) {
  quota_arg *a = tx->arg;
  PGresult *r;
  int code = core_q_one(tx, conn, "quota_get",
                        "SELECT " QUOTA_COLS
                        " FROM quotas q JOIN projects p ON p.id = q.project "
                        "WHERE p.project_id = $1",
                        a->project, "project", &r);
  if (code) return code;
  *a->out = quota_from_row(tx->call, r);
  PQclear(r);
  return *a->out ? CORE_OK : core_fail(tx->call, CORE_INTERNAL, "out of memory");
}

static int quota_name(core_call *call, const char *name, char *proj, size_t len) {
  const char *n = name ? name : "";
  size_t nl = strlen(n);
  if (nl < 15 || strncmp(n, "projects/", 9) != 0 || strcmp(n + nl - 6, "/quota") != 0 ||
      nl - 15 >= len)
    return core_fail(call, CORE_INVALID_ARGUMENT, "name: must be projects/{project}/quota");
  snprintf(proj, len, "%.*s", (int)(nl - 15), n + 9);
  if (!core_id_valid(proj))
    return core_fail(call, CORE_INVALID_ARGUMENT, "name: must be projects/{project}/quota");
  return CORE_OK;
}

int core_identity_get_quota(core_identity *id, core_call *call,
                            const Novacron__V1__GetQuotaRequest *req,
                            Novacron__V1__GetQuotaResponse *resp) {
  char proj[64];
  int code = quota_name(call, req->name, proj, sizeof(proj));
  if (code) return code;
  quota_arg a = {.project = proj, .out = &resp->quota};
  return core_run_tx(id->db, call, get_quota_tx, &a);
}

static int set_quota_tx(store_conn *conn, core_tx *tx) {
  quota_arg *a = tx->arg;
  bool found;
  int code = core_idem_replay(tx, conn, a->rid, a->req, a->resp, &found);
  if (code || found) return code;
  const char *pp[] = {a->project};
  PGresult *r;
  if ((code = core_q(tx, conn, "quota_lock",
                     "SELECT q.version FROM quotas q JOIN projects p ON p.id = q.project "
                     "WHERE p.project_id = $1 FOR UPDATE OF q",
                     1, pp, &r)))
    return code;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return core_fail(tx->call, CORE_NOT_FOUND, "project %s not found", a->project);
  }
  int64_t version = core_i64(r, 0, 0);
  PQclear(r);
  if ((code = core_check_etag(tx->call, a->in->etag, version, "the quota"))) return code;
  char vals[NQUOTA][24];
  const char *p[1 + 2 * NQUOTA];
  p[0] = a->project;
  for (int i = 0; i < NQUOTA; i++) {
    Google__Protobuf__Int64Value *v =
        a->in->limits ? *quota_slot((Novacron__V1__Quota__Limits *)a->in->limits, i) : NULL;
    p[1 + 2 * i] = a->set[i] ? "t" : "f";
    if (v) snprintf(vals[i], sizeof(vals[i]), "%" PRId64, v->value);
    p[2 + 2 * i] = v ? vals[i] : NULL;
  }
  code = core_q(tx, conn, "quota_set",
                "UPDATE quotas q SET "
                "vcpus = CASE WHEN $2::bool THEN $3::bigint ELSE vcpus END, "
                "memory_mib = CASE WHEN $4::bool THEN $5::bigint ELSE memory_mib END, "
                "vms = CASE WHEN $6::bool THEN $7::bigint ELSE vms END, "
                "volume_gib = CASE WHEN $8::bool THEN $9::bigint ELSE volume_gib END, "
                "networks = CASE WHEN $10::bool THEN $11::bigint ELSE networks END, "
                "backup_gib = CASE WHEN $12::bool THEN $13::bigint ELSE backup_gib END, "
                "volumes = CASE WHEN $14::bool THEN $15::bigint ELSE volumes END, "
                "version = q.version + 1, updated_at = now() FROM projects p "
                "WHERE p.id = q.project AND p.project_id = $1 RETURNING " QUOTA_COLS,
                1 + 2 * NQUOTA, p, &r);
  if (code) return code;
  *a->out = quota_from_row(tx->call, r);
  PQclear(r);
  return core_idem_store(tx, conn, a->rid, a->req, a->resp);
}

int core_identity_set_quota(core_identity *id, core_call *call,
                            const Novacron__V1__SetQuotaRequest *req,
                            Novacron__V1__SetQuotaResponse *resp) {
  int code = core_check_request_id(call, req->request_id);
  if (code) return code;
  if (!req->quota) return core_fail(call, CORE_INVALID_ARGUMENT, "quota: required");
  char proj[64];
  if ((code = quota_name(call, req->quota->name, proj, sizeof(proj)))) return code;
  quota_arg a = {.project = proj,
                 .rid = req->request_id,
                 .req = &req->base,
                 .resp = &resp->base,
                 .out = &resp->quota,
                 .in = req->quota};
  const Google__Protobuf__FieldMask *m = req->update_mask;
  if (!m || m->n_paths == 0)
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "update_mask: list the limits to change (limits or limits.vcpus, ...)");
  for (size_t k = 0; k < m->n_paths; k++) {
    bool ok = false;
    if (strcmp(m->paths[k], "limits") == 0) {
      for (int i = 0; i < NQUOTA; i++)
        a.set[i] = true;
      ok = true;
    }
    for (int i = 0; i < NQUOTA && !ok; i++) {
      if (strncmp(m->paths[k], "limits.", 7) == 0 && strcmp(m->paths[k] + 7, quota_names[i]) == 0) {
        a.set[i] = ok = true;
      }
    }
    if (!ok)
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "update_mask: \"%.64s\" is not a quota limit (limits, limits.vcpus, "
                       "limits.memory_mib, limits.vms, limits.volumes, limits.volume_gib, "
                       "limits.networks, limits.backup_gib)",
                       m->paths[k]);
  }
  for (int i = 0; i < NQUOTA && req->quota->limits; i++) {
    Google__Protobuf__Int64Value *v =
        *quota_slot((Novacron__V1__Quota__Limits *)req->quota->limits, i);
    if (v && v->value < 0)
      return core_fail(call, CORE_INVALID_ARGUMENT, "quota.limits.%s: must not be negative",
                       quota_names[i]);
  }
  return core_run_tx(id->db, call, set_quota_tx, &a);
}

/* ================= role bindings ================= */

#define BINDING_COLS \
  "b.id, p.project_id, b.binding_id, u.username, b.role, b.version, " CORE_TS("b.created_at")
#define BINDING_NCOLS 7

static Novacron__V1__RoleBinding *binding_from_row(core_call *call, const PGresult *r, int i) {
  Novacron__V1__RoleBinding *b = core_alloc(call, sizeof(*b));
  if (!b) return NULL;
  novacron__v1__role_binding__init(b);
  char name[200], user[96];
  snprintf(name, sizeof(name), "projects/%s/roleBindings/%s", PQgetvalue(r, i, 1),
           PQgetvalue(r, i, 2));
  snprintf(user, sizeof(user), "users/%s", PQgetvalue(r, i, 3));
  b->name = core_strdup(call, name);
  b->uid = core_strdup(call, PQgetvalue(r, i, 0));
  b->user = core_strdup(call, user);
  b->role = (Novacron__V1__Role)core_i64(r, i, 4);
  b->etag = core_etag(call, core_i64(r, i, 5));
  b->create_time = core_ts(call, r, i, 6);
  return b;
}

typedef struct binding_arg {
  const char *project, *binding, *user;
  int role;
  const char *rid, *etag;
  const ProtobufCMessage *req;
  ProtobufCMessage *resp;
  Novacron__V1__RoleBinding **out;
} binding_arg;

static int create_binding_tx(store_conn *conn, core_tx *tx) {
  binding_arg *a = tx->arg;
  bool found;
  int code = core_idem_replay(tx, conn, a->rid, a->req, a->resp, &found);
  if (code || found) return code;
  char puid[40];
  if ((code = lock_project(tx, conn, a->project, puid, NULL))) return code;
  const char *u[] = {a->user};
  PGresult *r;
  if ((code =
           core_q(tx, conn, "binding_user", "SELECT id FROM users WHERE username = $1", 1, u, &r)))
    return code;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return core_fail(tx->call, CORE_NOT_FOUND, "user %s not found", a->user);
  }
  char uuid[40];
  snprintf(uuid, sizeof(uuid), "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  char role[4];
  snprintf(role, sizeof(role), "%d", a->role);
  const char *p[] = {puid, a->binding, uuid, role};
  code = core_q(tx, conn, "binding_insert",
                "WITH b AS (INSERT INTO role_bindings (project, binding_id, user_id, role) "
                "VALUES ($1::uuid, $2, $3::uuid, $4::smallint) ON CONFLICT DO NOTHING RETURNING *) "
                "SELECT " BINDING_COLS
                " FROM b JOIN projects p ON p.id = b.project "
                "JOIN users u ON u.id = b.user_id",
                4, p, &r);
  if (code) return code;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return core_fail(tx->call, CORE_ALREADY_EXISTS,
                     "a role binding %s, or a binding of users/%s, already exists in projects/%s "
                     "(delete it and create a new one to change the role)",
                     a->binding, a->user, a->project);
  }
  *a->out = binding_from_row(tx->call, r, 0);
  PQclear(r);
  return core_idem_store(tx, conn, a->rid, a->req, a->resp);
}

static int role_of(core_call *call, Novacron__V1__Role r, const char *field, int *out) {
  if (r < NOVACRON__V1__ROLE__ROLE_VIEWER || r > NOVACRON__V1__ROLE__ROLE_ADMIN)
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "%s: must be ROLE_VIEWER, ROLE_OPERATOR or ROLE_ADMIN", field);
  *out = (int)r;
  return CORE_OK;
}

int core_identity_create_role_binding(core_identity *id, core_call *call,
                                      const Novacron__V1__CreateRoleBindingRequest *req,
                                      Novacron__V1__CreateRoleBindingResponse *resp) {
  int code = core_check_request_id(call, req->request_id);
  if (code) return code;
  char proj[64], user[64];
  if (!core_name1(req->parent, "projects/", proj, sizeof(proj)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "parent: must be projects/{project}");
  if (!core_id_valid(req->role_binding_id))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "role_binding_id: 1-63 characters of a-z, 0-9 and '-', starting with a "
                     "letter");
  if (!req->role_binding) return core_fail(call, CORE_INVALID_ARGUMENT, "role_binding: required");
  if (!core_name1(req->role_binding->user, "users/", user, sizeof(user)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "role_binding.user: must be users/{user}");
  binding_arg a = {.project = proj,
                   .binding = req->role_binding_id,
                   .user = user,
                   .rid = req->request_id,
                   .req = &req->base,
                   .resp = &resp->base,
                   .out = &resp->role_binding};
  if ((code = role_of(call, req->role_binding->role, "role_binding.role", &a.role))) return code;
  return core_run_tx(id->db, call, create_binding_tx, &a);
}

static const lq_enum_value role_enums[] = {
    {"ROLE_VIEWER", 1}, {"ROLE_OPERATOR", 2}, {"ROLE_ADMIN", 3}};
static const lq_field binding_fields[] = {
    {.name = "name",
     .column = "(p.project_id || '/' || b.binding_id)",
     .type = LQ_STRING,
     .orderable = true},
    {.name = "user",
     .column = "('users/' || u.username)",
     .type = LQ_STRING,
     .filterable = true,
     .orderable = true},
    LQ_ENUM_FIELD("role", "b.role", role_enums),
    {.name = "create_time", .column = "b.created_at", .type = LQ_TIME, .orderable = true},
};
static const lq_spec binding_spec = {
    binding_fields, sizeof(binding_fields) / sizeof(binding_fields[0]), "name", "b.id", 50, 500};

CORE_LIST_ROW(binding_row, Novacron__V1__ListRoleBindingsResponse, role_bindings, binding_from_row)

/* `parent` is projects/{p} or projects/-: the fixed parameters restrict a
 * cross-project list to the caller's projects. */

static int project_scope(core_call *call, const char *parent, char *proj, size_t plen, char *vis,
                         size_t vlen, const char **p1, const char **p2) {
  if (parent && strcmp(parent, "projects/-") == 0) {
    *p1 = NULL;
    if (call->who->system_admin) {
      *p2 = NULL;
    } else {
      core_visible_projects(call->who, vis, vlen);
      *p2 = vis;
    }
    return CORE_OK;
  }
  if (!core_name1(parent, "projects/", proj, plen))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "parent: must be projects/{project} or projects/-");
  *p1 = proj;
  *p2 = NULL;
  return CORE_OK;
}

int core_identity_list_role_bindings(core_identity *id, core_call *call,
                                     const Novacron__V1__ListRoleBindingsRequest *req,
                                     Novacron__V1__ListRoleBindingsResponse *resp) {
  char proj[64], vis[CORE_MAX_BINDINGS * 66 + 4];
  core_list_req l = {.spec = &binding_spec,
                     .select =
                         "SELECT " BINDING_COLS
                         ", count(*) OVER () FROM role_bindings b "
                         "JOIN projects p ON p.id = b.project JOIN users u ON u.id = b.user_id "
                         "WHERE ($1::text IS NULL OR p.project_id = $1) "
                         "AND ($2::text[] IS NULL OR p.project_id = ANY($2::text[]))",
                     .nfixed = 2,
                     CORE_LIST_PAGE(req, resp),
                     .fingerprint = req->parent,
                     .ncols = BINDING_NCOLS,
                     .row = binding_row,
                     .total_size = &resp->total_size};
  int code = project_scope(call, req->parent, proj, sizeof(proj), vis, sizeof(vis), &l.fixed[0],
                           &l.fixed[1]);
  if (code) return code;
  return core_run_tx(id->db, call, core_list_tx, &l);
}

static int delete_binding_tx(store_conn *conn, core_tx *tx) {
  binding_arg *a = tx->arg;
  bool found;
  int code = core_idem_replay(tx, conn, a->rid, a->req, a->resp, &found);
  if (code || found) return code;
  const char *p[] = {a->project, a->binding};
  PGresult *r;
  if ((code =
           core_q(tx, conn, "binding_lock",
                  "SELECT b.id, b.version FROM role_bindings b JOIN projects p ON "
                  "p.id = b.project WHERE p.project_id = $1 AND b.binding_id = $2 FOR UPDATE OF b",
                  2, p, &r)))
    return code;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return core_fail(tx->call, CORE_NOT_FOUND, "role binding projects/%s/roleBindings/%s not found",
                     a->project, a->binding);
  }
  char uid[40];
  snprintf(uid, sizeof(uid), "%s", PQgetvalue(r, 0, 0));
  int64_t version = core_i64(r, 0, 1);
  PQclear(r);
  if ((code = core_check_etag(tx->call, a->etag, version, "the role binding"))) return code;
  const char *d[] = {uid};
  if ((code = core_q(tx, conn, "binding_delete", "DELETE FROM role_bindings WHERE id = $1::uuid", 1,
                     d, NULL)))
    return code;
  return core_idem_store(tx, conn, a->rid, a->req, a->resp);
}

int core_identity_delete_role_binding(core_identity *id, core_call *call,
                                      const Novacron__V1__DeleteRoleBindingRequest *req,
                                      Novacron__V1__DeleteRoleBindingResponse *resp) {
  int code = core_check_request_id(call, req->request_id);
  if (code) return code;
  char proj[64], b[64];
  if (!core_name2(req->name, "roleBindings", proj, sizeof(proj), b, sizeof(b)))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "name: must be projects/{project}/roleBindings/{binding}");
  binding_arg a = {.project = proj,
                   .binding = b,
                   .rid = req->request_id,
                   .etag = req->etag,
                   .req = &req->base,
                   .resp = &resp->base};
  return core_run_tx(id->db, call, delete_binding_tx, &a);
}

/* ================= API keys ================= */

#define KEY_COLS \
  "k.id, p.project_id, k.key_id, k.description, k.role, " CORE_TS("k.expire_at")          \
  ", k.secret_prefix, k.creator, (k.revoked_at IS NOT NULL), (k.expire_at <= now()), " CORE_TS( \
      "k.last_used_at") ", " CORE_TS("k.revoked_at") ", k.version, " CORE_TS("k.created_at")
#define KEY_NCOLS 14

static Novacron__V1__ApiKey *key_from_row(core_call *call, const PGresult *r, int i) {
  Novacron__V1__ApiKey *k = core_alloc(call, sizeof(*k));
  if (!k) return NULL;
  novacron__v1__api_key__init(k);
  char name[200];
  snprintf(name, sizeof(name), "projects/%s/apiKeys/%s", PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
  k->name = core_strdup(call, name);
  k->uid = core_strdup(call, PQgetvalue(r, i, 0));
  k->description = core_strdup(call, PQgetvalue(r, i, 3));
  k->role = (Novacron__V1__Role)core_i64(r, i, 4);
  k->expire_time = core_ts(call, r, i, 5);
  k->secret_prefix = core_strdup(call, PQgetvalue(r, i, 6));
  k->creator = core_strdup(call, PQgetvalue(r, i, 7));
  k->state = core_bool(r, i, 8)   ? NOVACRON__V1__API_KEY__STATE__STATE_REVOKED
             : core_bool(r, i, 9) ? NOVACRON__V1__API_KEY__STATE__STATE_EXPIRED
                                  : NOVACRON__V1__API_KEY__STATE__STATE_ACTIVE;
  k->last_used_time = core_ts(call, r, i, 10);
  k->revoke_time = core_ts(call, r, i, 11);
  k->etag = core_etag(call, core_i64(r, i, 12));
  k->create_time = core_ts(call, r, i, 13);
  return k;
}

typedef struct key_arg {
  core_identity *id;
  const char *project, *key;
  int role;
  const char *description;
  const char *expire; /* seconds text or NULL */
  const char *rid, *etag;
  const ProtobufCMessage *req;
  ProtobufCMessage *resp;
  Novacron__V1__ApiKey **out;
  char secret[4 + CORE_TOKEN_HEX + 1];
  bool replayed;
} key_arg;

static int create_key_tx(store_conn *conn, core_tx *tx) {
  key_arg *a = tx->arg;
  ProtobufCMessage *prev;
  bool found;
  int code = core_idem_lookup(tx, conn, a->rid, a->req, a->resp->descriptor, &prev, &found);
  if (code) return code;
  if (found) {
    /* the secret is not stored: within the replay window it is derived
     * again from the request; later the retry is refused */
    const char *p[] = {core_who(tx->call), tx->call->method, a->rid};
    char win[24];
    snprintf(win, sizeof(win), "%" PRId64, a->id->cfg.replay_window_s);
    const char *q[] = {p[0], p[1], p[2], win};
    PGresult *r;
    if ((code = core_q(tx, conn, "key_replay_fresh",
                       "SELECT created_at > now() - make_interval(secs => $4::float8) "
                       "FROM idempotency WHERE principal = $1 AND method = $2 AND request_id = $3",
                       4, q, &r)))
      return code;
    bool fresh = PQntuples(r) == 1 && core_bool(r, 0, 0);
    PQclear(r);
    if (!fresh)
      return core_fail(tx->call, CORE_ALREADY_EXISTS,
                       "API key projects/%s/apiKeys/%s was created by this request_id earlier; "
                       "its secret can no longer be shown",
                       a->project, a->key);
    core_copy_message(a->resp, prev);
    a->replayed = true;
    return CORE_OK;
  }
  char puid[40];
  if ((code = lock_project(tx, conn, a->project, puid, NULL))) return code;
  unsigned char d[CORE_DIGEST_LEN];
  char dtxt[2 * CORE_DIGEST_LEN + 3], prefix[16], role[4];
  core_sha256(a->secret, strlen(a->secret), d);
  core_bytea(d, dtxt);
  snprintf(prefix, sizeof(prefix), "%.12s", a->secret);
  snprintf(role, sizeof(role), "%d", a->role);
  const char *p[] = {puid, a->key, a->description,     role,
                     dtxt, prefix, core_who(tx->call), a->expire};
  PGresult *r;
  code = core_q(tx, conn, "key_insert",
                "WITH k AS (INSERT INTO api_keys (project, key_id, description, role, "
                "secret_digest, secret_prefix, creator, expire_at) VALUES ($1::uuid, $2, $3, "
                "$4::smallint, $5::bytea, $6, $7, to_timestamp($8::float8)) "
                "ON CONFLICT (project, key_id) DO NOTHING RETURNING *) "
                "SELECT " KEY_COLS " FROM k JOIN projects p ON p.id = k.project",
                8, p, &r);
  if (code) return code;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return core_fail(tx->call, CORE_ALREADY_EXISTS, "API key projects/%s/apiKeys/%s already exists",
                     a->project, a->key);
  }
  *a->out = key_from_row(tx->call, r, 0);
  PQclear(r);
  return core_idem_store(tx, conn, a->rid, a->req, a->resp);
}

int core_identity_create_api_key(core_identity *id, core_call *call,
                                 const Novacron__V1__CreateApiKeyRequest *req,
                                 Novacron__V1__CreateApiKeyResponse *resp) {
  int code = core_check_request_id(call, req->request_id);
  if (code) return code;
  char proj[64];
  if (!core_name1(req->parent, "projects/", proj, sizeof(proj)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "parent: must be projects/{project}");
  if (!core_id_valid(req->api_key_id))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "api_key_id: 1-63 characters of a-z, 0-9 and '-', starting with a letter");
  if (!req->api_key) return core_fail(call, CORE_INVALID_ARGUMENT, "api_key: required");
  key_arg a = {.id = id,
               .project = proj,
               .key = req->api_key_id,
               .description = req->api_key->description ? req->api_key->description : "",
               .rid = req->request_id,
               .req = &req->base,
               .resp = &resp->base,
               .out = &resp->api_key};
  if ((code = role_of(call, req->api_key->role, "api_key.role", &a.role))) return code;
  if ((code = core_check_text(call, "api_key.description", a.description, 1024))) return code;
  if (a.role > core_principal_role(call->who, proj))
    return core_fail(call, CORE_PERMISSION_DENIED,
                     "api_key.role: a key cannot have a higher role than its creator");
  char exp[48];
  if (req->api_key->expire_time) {
    if (req->api_key->expire_time->seconds <= (int64_t)time(NULL))
      return core_fail(call, CORE_INVALID_ARGUMENT, "api_key.expire_time: must be in the future");
    core_ts_text(req->api_key->expire_time, exp, sizeof(exp));
    a.expire = exp;
  }
  if (req->request_id && *req->request_id) {
    const char *parts[] = {"apikey", core_who(call), proj, req->api_key_id, req->request_id};
    unsigned char d[CORE_DIGEST_LEN];
    core_derive(id, parts, 5, d);
    memcpy(a.secret, "nck_", 4);
    core_hex(d, CORE_DIGEST_LEN, a.secret + 4);
  } else if (core_random_token("nck_", a.secret, sizeof(a.secret)) != 0) {
    return core_fail(call, CORE_INTERNAL, "no randomness");
  }
  resp->secret = NULL; /* never stored in the idempotency record */
  code = core_run_tx(id->db, call, create_key_tx, &a);
  if (code == CORE_OK) resp->secret = core_strdup(call, a.secret);
  explicit_bzero(a.secret, sizeof(a.secret));
  return code;
}

static const lq_enum_value key_state_enums[] = {
    {"STATE_ACTIVE", 1}, {"STATE_EXPIRED", 2}, {"STATE_REVOKED", 3}};
static const lq_field key_fields[] = {
    {.name = "name", .column = "k.key_id", .type = LQ_STRING, .orderable = true},
    {.name = "state",
     .column = "(CASE WHEN k.revoked_at IS NOT NULL THEN 3 WHEN k.expire_at <= now() THEN 2 "
               "ELSE 1 END)",
     .type = LQ_ENUM,
     .enums = key_state_enums,
     .nenums = 3,
     .filterable = true},
    LQ_ENUM_FIELD("role", "k.role", role_enums),
    {.name = "creator", .column = "k.creator", .type = LQ_STRING, .filterable = true},
    {.name = "create_time", .column = "k.created_at", .type = LQ_TIME, .orderable = true},
    {.name = "expire_time", .column = "k.expire_at", .type = LQ_TIME, .orderable = true},
    {.name = "last_used_time", .column = "k.last_used_at", .type = LQ_TIME, .orderable = true},
};
static const lq_spec key_spec = {
    key_fields, sizeof(key_fields) / sizeof(key_fields[0]), "name", "k.id", 50, 500};

CORE_LIST_ROW(key_row, Novacron__V1__ListApiKeysResponse, api_keys, key_from_row)

int core_identity_list_api_keys(core_identity *id, core_call *call,
                                const Novacron__V1__ListApiKeysRequest *req,
                                Novacron__V1__ListApiKeysResponse *resp) {
  char proj[64];
  if (!core_name1(req->parent, "projects/", proj, sizeof(proj)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "parent: must be projects/{project}");
  core_list_req l = {.spec = &key_spec,
                     .select = "SELECT " KEY_COLS
                               ", count(*) OVER () FROM api_keys k "
                               "JOIN projects p ON p.id = k.project WHERE p.project_id = $1",
                     .fixed = {proj},
                     .nfixed = 1,
                     CORE_LIST_PAGE(req, resp),
                     .fingerprint = req->parent,
                     .ncols = KEY_NCOLS,
                     .row = key_row,
                     .total_size = &resp->total_size};
  return core_run_tx(id->db, call, core_list_tx, &l);
}

static int revoke_key_tx(store_conn *conn, core_tx *tx) {
  key_arg *a = tx->arg;
  bool found;
  int code = core_idem_replay(tx, conn, a->rid, a->req, a->resp, &found);
  if (code || found) return code;
  const char *p[] = {a->project, a->key};
  PGresult *r;
  if ((code = core_q(tx, conn, "key_lock",
                     "SELECT k.id, k.version FROM api_keys k JOIN projects p ON p.id = k.project "
                     "WHERE p.project_id = $1 AND k.key_id = $2 FOR UPDATE OF k",
                     2, p, &r)))
    return code;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return core_fail(tx->call, CORE_NOT_FOUND, "API key projects/%s/apiKeys/%s not found",
                     a->project, a->key);
  }
  char uid[40];
  snprintf(uid, sizeof(uid), "%s", PQgetvalue(r, 0, 0));
  int64_t version = core_i64(r, 0, 1);
  PQclear(r);
  if ((code = core_check_etag(tx->call, a->etag, version, "the API key"))) return code;
  const char *u[] = {uid};
  if ((code = core_q(tx, conn, "key_revoke",
                     "WITH k AS (UPDATE api_keys SET revoked_at = now(), version = version + 1 "
                     "WHERE id = $1::uuid AND revoked_at IS NULL RETURNING *) "
                     "SELECT 1 FROM k",
                     1, u, NULL)))
    return code;
  if ((code = core_q(tx, conn, "key_get",
                     "SELECT " KEY_COLS " FROM api_keys k JOIN projects p ON p.id = k.project "
                     "WHERE k.id = $1::uuid",
                     1, u, &r)))
    return code;
  *a->out = key_from_row(tx->call, r, 0);
  PQclear(r);
  return core_idem_store(tx, conn, a->rid, a->req, a->resp);
}

int core_identity_revoke_api_key(core_identity *id, core_call *call,
                                 const Novacron__V1__RevokeApiKeyRequest *req,
                                 Novacron__V1__RevokeApiKeyResponse *resp) {
  int code = core_check_request_id(call, req->request_id);
  if (code) return code;
  char proj[64], key[64];
  if (!core_name2(req->name, "apiKeys", proj, sizeof(proj), key, sizeof(key)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "name: must be projects/{project}/apiKeys/{key}");
  key_arg a = {.id = id,
               .project = proj,
               .key = key,
               .rid = req->request_id,
               .etag = req->etag,
               .req = &req->base,
               .resp = &resp->base,
               .out = &resp->api_key};
  return core_run_tx(id->db, call, revoke_key_tx, &a);
}
