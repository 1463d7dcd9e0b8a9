/*
 * identity.c - configuration, bootstrap, authentication, and the session
 * methods of IdentityService (Login, RefreshToken, Logout, WhoAmI,
 * ListSessions, RevokeSession). Users, projects, quotas, role bindings and
 * API keys are in identity_admin.c.
 */
#include <errno.h>
#include <openssl/evp.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/token.h"
#include "core/internal.h"
#include "util/log.h"

void core_identity_config_default(core_identity_config *c) {
  memset(c, 0, sizeof(*c));
  c->issuer = "novacron";
  c->access_ttl_s = 900;
  c->session_ttl_s = 7 * 24 * 3600;
  c->login_max_failures = 5;
  c->login_window_s = 900;
  c->lockout_s = 900;
  c->replay_window_s = 600;
  auth_password_policy_default(&c->policy);
  c->kdf = auth_kdf_default;
}

/* "cn=system-admin,cn2=projects/p:operator" */
static int parse_services(core_identity *id, const char *spec, char *err, size_t errlen) {
  if (!spec || !*spec) return 0;
  char *copy = strdup(spec);
  if (!copy) return -1;
  int rc = 0;
  char *save = NULL;
  for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
    while (*item == ' ')
      item++;
    char *eq = strchr(item, '=');
    if (!eq || eq == item || eq - item >= 128) {
      snprintf(err, errlen, "service principals: \"%s\" is not CN=ROLE", item);
      rc = -1;
      break;
    }
    core_service_map m = {0};
    snprintf(m.cn, sizeof(m.cn), "%.*s", (int)(eq - item), item);
    const char *role = eq + 1;
    if (strcmp(role, "system-admin") == 0) {
      m.system_admin = true;
    } else {
      const char *colon = strrchr(role, ':');
      char proj[64];
      if (!colon || strncmp(role, "projects/", 9) != 0 ||
          (size_t)(colon - role - 9) >= sizeof(proj)) {
        snprintf(err, errlen,
                 "service principals: role of %s must be system-admin or projects/P:ROLE", m.cn);
        rc = -1;
        break;
      }
      snprintf(proj, sizeof(proj), "%.*s", (int)(colon - role - 9), role + 9);
      const char *r = colon + 1;
      m.role = strcmp(r, "viewer") == 0     ? CORE_ROLE_VIEWER
               : strcmp(r, "operator") == 0 ? CORE_ROLE_OPERATOR
               : strcmp(r, "admin") == 0    ? CORE_ROLE_ADMIN
                                            : 0;
      if (!core_id_valid(proj) || !m.role) {
        snprintf(err, errlen,
                 "service principals: %s: bad project or role (viewer, operator, admin)", m.cn);
        rc = -1;
        break;
      }
      snprintf(m.project, sizeof(m.project), "%s", proj);
    }
    core_service_map *grown = realloc(id->services, sizeof(*grown) * (size_t)(id->nservices + 1));
    if (!grown) {
      rc = -1;
      break;
    }
    id->services = grown;
    id->services[id->nservices++] = m;
  }
  free(copy);
  return rc;
}

static void key_id_of(const char *secret, char out[17]) {
  unsigned char d[CORE_DIGEST_LEN];
  core_sha256(secret, strlen(secret), d);
  char hex[2 * CORE_DIGEST_LEN + 1];
  core_hex(d, CORE_DIGEST_LEN, hex);
  snprintf(out, 17, "%.16s", hex);
}

int core_identity_new(store_pool *db, const core_identity_config *cfg, core_identity **out,
                      char *err, size_t errlen) {
  *out = NULL;
  char why[256];
  if (!auth_secret_check(cfg->signing_secret, why, sizeof(why))) {
    snprintf(err, errlen, "token signing secret refused: %s", why);
    return -1;
  }
  if (cfg->previous_secret && *cfg->previous_secret &&
      !auth_secret_check(cfg->previous_secret, why, sizeof(why))) {
    snprintf(err, errlen, "previous token signing secret refused: %s", why);
    return -1;
  }
  core_identity *id = calloc(1, sizeof(*id));
  if (!id) return -1;
  id->db = db;
  id->cfg = *cfg;
  snprintf(id->issuer, sizeof(id->issuer), "%s", cfg->issuer ? cfg->issuer : "novacron");
  id->cfg.issuer = id->issuer;
  id->cfg.signing_secret = NULL; /* not kept beyond the keyring */
  id->cfg.previous_secret = NULL;
  id->cfg.service_principals = NULL;
  id->cfg.signing_key_pem = NULL;
  if (parse_services(id, cfg->service_principals, err, errlen) != 0) goto fail;
  if (auth_keyring_new(&id->kr) != AUTH_OK) goto fail;
  char kid[17];
  key_id_of(cfg->signing_secret, kid);
  auth_key_spec spec = {.kid = kid,
                        .alg = AUTH_ALG_HS256,
                        .secret = (const unsigned char *)cfg->signing_secret,
                        .secret_len = strlen(cfg->signing_secret)};
  if (auth_keyring_add(id->kr, &spec, why, sizeof(why)) != AUTH_OK ||
      auth_keyring_set_signing(id->kr, kid) != AUTH_OK) {
    snprintf(err, errlen, "token signing key: %s", why);
    goto fail;
  }
  if (cfg->signing_key_pem && *cfg->signing_key_pem) {
    /* an asymmetric signing key: RS256 for RSA, ES256 for P-256 */
    char akid[17];
    key_id_of(cfg->signing_key_pem, akid);
    akid[0] = 'k'; /* never equal to a secret's id */
    auth_key_spec ak = {.kid = akid, .alg = AUTH_ALG_RS256, .private_pem = cfg->signing_key_pem};
    if (auth_keyring_add(id->kr, &ak, why, sizeof(why)) != AUTH_OK) {
      ak.alg = AUTH_ALG_ES256;
      if (auth_keyring_add(id->kr, &ak, why, sizeof(why)) != AUTH_OK) {
        snprintf(err, errlen,
                 "token signing key: not an RSA (2048 bits or more) or EC P-256 "
                 "private key in PEM");
        goto fail;
      }
    }
    if (auth_keyring_set_signing(id->kr, akid) != AUTH_OK) {
      snprintf(err, errlen, "token signing key: cannot sign with it");
      goto fail;
    }
  }
  if (cfg->previous_secret && *cfg->previous_secret) {
    char pkid[17];
    key_id_of(cfg->previous_secret, pkid);
    auth_key_spec prev = {.kid = pkid,
                          .alg = AUTH_ALG_HS256,
                          .secret = (const unsigned char *)cfg->previous_secret,
                          .secret_len = strlen(cfg->previous_secret),
                          .not_after = cfg->previous_not_after};
    if (strcmp(pkid, kid) == 0 || auth_keyring_add(id->kr, &prev, why, sizeof(why)) != AUTH_OK) {
      snprintf(err, errlen, "previous signing secret: %s",
               strcmp(pkid, kid) == 0 ? "equals the current one" : why);
      goto fail;
    }
  }
  /* The derivation key (refresh-token chains, replayable API key secrets)
   * is bound to the signing secret: rotating the secret retires them. */
  const char *label = "novacron token derivation v1";
  unsigned int n = CORE_DIGEST_LEN;
  unsigned char buf[512];
  size_t sl = strlen(cfg->signing_secret), ll = strlen(label);
  if (sl + ll + 1 > sizeof(buf)) sl = sizeof(buf) - ll - 1;
  memcpy(buf, label, ll + 1);
  memcpy(buf + ll + 1, cfg->signing_secret, sl);
  EVP_Digest(buf, ll + 1 + sl, id->derive_key, &n, EVP_sha256(), NULL);
  explicit_bzero(buf, sizeof(buf));
  *out = id;
  return 0;
fail:
  core_identity_free(id);
  return -1;
}

void core_identity_free(core_identity *id) {
  if (!id) return;
  auth_keyring_free(id->kr);
  free(id->services);
  explicit_bzero(id->derive_key, sizeof(id->derive_key));
  free(id);
}

/* ---- bootstrap ---- */

typedef struct boot_arg {
  core_identity *id;
  const char *hash;
  bool created;
} boot_arg;

static int boot_tx(store_conn *conn, core_tx *tx) {
  boot_arg *a = tx->arg;
  PGresult *r;
  int code =
      core_q(tx, conn, "boot_lock", "SELECT pg_advisory_xact_lock(7244015212)", 0, NULL, NULL);
  if (code) return code;
  if ((code = core_q(tx, conn, "boot_users", "SELECT count(*) FROM users", 0, NULL, &r)))
    return code;
  bool empty = core_i64(r, 0, 0) == 0;
  PQclear(r);
  if (empty && a->hash) {
    const char *p[] = {a->hash};
    code = core_q(tx, conn, "boot_admin",
                  "INSERT INTO users (username, display_name, system_admin, password_hash) "
                  "VALUES ('admin', 'Administrator', true, $1)",
                  1, p, NULL);
    if (code) return code;
    a->created = true;
  }
  if ((code = core_q(tx, conn, "boot_projects", "SELECT count(*) FROM projects", 0, NULL, &r)))
    return code;
  bool noproj = core_i64(r, 0, 0) == 0;
  PQclear(r);
  if (noproj) {
    code = core_q(tx, conn, "boot_default",
                  "WITH p AS (INSERT INTO projects (project_id, display_name, description) "
                  "VALUES ('default', 'Default', 'Created at first start') RETURNING id) "
                  "INSERT INTO quotas (project) SELECT id FROM p",
                  0, NULL, NULL);
  }
  return code;
}

static int write_secret_file(const char *path, const char *secret, char *err, size_t errlen) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    return -1;
  }
  int rc = 0;
  size_t n = strlen(secret);
  if (fchmod(fd, 0600) != 0 || write(fd, secret, n) != (ssize_t)n || write(fd, "\n", 1) != 1 ||
      fsync(fd) != 0) {
    snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
    rc = -1;
  }
  close(fd);
  return rc;
}

static int users_exist(core_identity *id, bool *exist, char *err, size_t errlen) {
  store_conn *c = NULL;
  if (store_pool_acquire(id->db, 5000, &c, err, errlen) != STORE_OK) return -1;
  PGresult *r = NULL;
  store_status st =
      store_exec(c, "boot_any_user", "SELECT EXISTS (SELECT 1 FROM users)", 0, NULL, &r);
  if (st == STORE_OK)
    *exist = core_bool(r, 0, 0);
  else
    snprintf(err, errlen, "%s", store_conn_error(c));
  if (r) PQclear(r);
  store_pool_release(c);
  return st == STORE_OK ? 0 : -1;
}

int core_identity_bootstrap(core_identity *id, const char *env_password, const char *password_file,
                            bool *created, char *err, size_t errlen) {
  *created = false;
  bool exist = false;
  if (users_exist(id, &exist, err, errlen) != 0) return -1;
  char generated[40] = "";
  const char *password = NULL;
  char hash[AUTH_PASSWORD_HASH_MAX];
  if (!exist) {
    if (env_password && *env_password) {
      char why[256];
      if (!auth_password_check(&id->cfg.policy, "admin", env_password, why, sizeof(why))) {
        snprintf(err, errlen, "the bootstrap admin password is refused: %s", why);
        return -1;
      }
      password = env_password;
    } else if (password_file && *password_file) {
      char tok[80];
      if (core_random_token("", tok, sizeof(tok)) != 0) return -1;
      snprintf(generated, sizeof(generated), "%.32s", tok);
      password = generated;
    } else {
      snprintf(err, errlen,
               "no user exists yet: set NOVACRON_ADMIN_PASSWORD or --admin-password-file so the "
               "first administrator can be created");
      return -1;
    }
    if (auth_password_hash(password, &id->cfg.kdf, hash, sizeof(hash)) != AUTH_OK) {
      snprintf(err, errlen, "cannot hash the bootstrap password");
      return -1;
    }
  }
  core_call call = {.method = "bootstrap", .msg = err, .msglen = errlen};
  boot_arg a = {.id = id, .hash = exist ? NULL : hash};
  int code = core_run_tx(id->db, &call, boot_tx, &a);
  if (code != CORE_OK) return -1;
  if (a.created && generated[0] && write_secret_file(password_file, generated, err, errlen) != 0) {
    explicit_bzero(generated, sizeof(generated));
    return -1;
  }
  explicit_bzero(generated, sizeof(generated));
  *created = a.created;
  return 0;
}

/* ---- principals ---- */

static int load_bindings(core_tx *tx, store_conn *conn, const char *user_uid, core_principal *p) {
  const char *params[] = {user_uid};
  PGresult *r;
  int code = core_q(tx, conn, "auth_bindings",
                    "SELECT p.project_id, rb.role, rb.binding_id FROM role_bindings rb "
                    "JOIN projects p ON p.id = rb.project WHERE rb.user_id = $1 "
                    "ORDER BY p.project_id LIMIT 256",
                    1, params, &r);
  if (code) return code;
  p->nbindings = 0;
  for (int i = 0; i < PQntuples(r) && i < CORE_MAX_BINDINGS; i++) {
    snprintf(p->bindings[i].project, sizeof(p->bindings[i].project), "%s", PQgetvalue(r, i, 0));
    p->bindings[i].role = (int)core_i64(r, i, 1);
    snprintf(p->bindings[i].id, sizeof(p->bindings[i].id), "%s", PQgetvalue(r, i, 2));
    p->nbindings++;
  }
  PQclear(r);
  return CORE_OK;
}

typedef struct auth_arg {
  core_identity *id;
  const char *username;
  const char *session;
  const char *key_digest;
  core_principal *out;
} auth_arg;

static int auth_user_tx(store_conn *conn, core_tx *tx) {
  auth_arg *a = tx->arg;
  const char *p[] = {a->session, a->username};
  PGresult *r;
  int code = core_q(tx, conn, "auth_session",
                    "SELECT u.id, u.display_name, u.system_admin, "
                    "(s.revoked_at IS NULL AND s.expire_at > now() AND NOT u.disabled) "
                    "FROM sessions s JOIN users u ON u.id = s.user_id "
                    "WHERE s.id = $1::uuid AND u.username = $2",
                    2, p, &r);
  if (code) return code;
  if (PQntuples(r) != 1 || !core_bool(r, 0, 3)) {
    PQclear(r);
    return core_fail(tx->call, CORE_UNAUTHENTICATED,
                     "the session of this access token has ended; log in again");
  }
  core_principal *o = a->out;
  snprintf(o->user_uid, sizeof(o->user_uid), "%s", PQgetvalue(r, 0, 0));
  snprintf(o->display, sizeof(o->display), "%s", PQgetvalue(r, 0, 1));
  o->system_admin = core_bool(r, 0, 2);
  PQclear(r);
  return load_bindings(tx, conn, o->user_uid, o);
}

static int auth_key_tx(store_conn *conn, core_tx *tx) {
  auth_arg *a = tx->arg;
  const char *p[] = {a->key_digest};
  PGresult *r;
  int code = core_q(tx, conn, "auth_key",
                    "SELECT k.id, p.project_id, k.key_id, k.description, k.role, "
                    "(k.revoked_at IS NULL AND (k.expire_at IS NULL OR k.expire_at > now())), "
                    "extract(epoch from k.expire_at)::bigint, "
                    "(k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute') "
                    "FROM api_keys k JOIN projects p ON p.id = k.project "
                    "WHERE k.secret_digest = $1::bytea",
                    1, p, &r);
  if (code) return code;
  if (PQntuples(r) != 1 || !core_bool(r, 0, 5)) {
    PQclear(r);
    return core_fail(tx->call, CORE_UNAUTHENTICATED, "the API key is unknown, revoked or expired");
  }
  core_principal *o = a->out;
  o->kind = CORE_PRINCIPAL_API_KEY;
  snprintf(o->key_uid, sizeof(o->key_uid), "%s", PQgetvalue(r, 0, 0));
  snprintf(o->name, sizeof(o->name), "projects/%s/apiKeys/%s", PQgetvalue(r, 0, 1),
           PQgetvalue(r, 0, 2));
  snprintf(o->display, sizeof(o->display), "%s", PQgetvalue(r, 0, 3));
  snprintf(o->bindings[0].project, sizeof(o->bindings[0].project), "%s", PQgetvalue(r, 0, 1));
  o->bindings[0].role = (int)core_i64(r, 0, 4);
  o->nbindings = 1;
  o->expire = core_i64(r, 0, 6);
  bool touch = core_bool(r, 0, 7);
  PQclear(r);
  if (touch) {
    const char *q[] = {o->key_uid};
    code = core_q(tx, conn, "auth_key_touch",
                  "UPDATE api_keys SET last_used_at = now() WHERE id = $1::uuid", 1, q, NULL);
  }
  return code;
}

int core_identity_authenticate(core_identity *id, core_call *call, const char *bearer,
                               core_principal *out) {
  memset(out, 0, sizeof(*out));
  if (!bearer || !*bearer) return core_fail(call, CORE_UNAUTHENTICATED, "missing credentials");
  if (strncmp(bearer, "nck_", 4) == 0) {
    if (strlen(bearer) != 4 + CORE_TOKEN_HEX)
      return core_fail(call, CORE_UNAUTHENTICATED, "the API key is malformed");
    unsigned char d[CORE_DIGEST_LEN];
    char dtxt[2 * CORE_DIGEST_LEN + 3];
    core_sha256(bearer, strlen(bearer), d);
    core_bytea(d, dtxt);
    auth_arg a = {.id = id, .key_digest = dtxt, .out = out};
    return core_run_ro(id->db, call, auth_key_tx, &a);
  }
  auth_claims claims;
  char why[160];
  auth_status st = auth_token_verify(id->kr, bearer, id->issuer, id->issuer, (int64_t)time(NULL),
                                     30, &claims, why, sizeof(why));
  if (st != AUTH_OK) return core_fail(call, CORE_UNAUTHENTICATED, "invalid access token: %s", why);
  const char *sid = auth_claims_get(&claims, "sid");
  char user[64];
  int code = CORE_OK;
  if (!sid || strlen(sid) != 36 || !core_name1(claims.sub, "users/", user, sizeof(user))) {
    code = core_fail(call, CORE_UNAUTHENTICATED, "invalid access token: unexpected claims");
  } else {
    out->kind = CORE_PRINCIPAL_USER;
    snprintf(out->name, sizeof(out->name), "users/%s", user);
    snprintf(out->username, sizeof(out->username), "%s", user);
    snprintf(out->session, sizeof(out->session), "%s", sid);
    out->expire = claims.exp;
    auth_arg a = {.id = id, .username = user, .session = out->session, .out = out};
    code = core_run_ro(id->db, call, auth_user_tx, &a);
  }
  auth_claims_free(&claims);
  return code;
}

int core_identity_service(core_identity *id, core_call *call, const char *cn, core_principal *out) {
  memset(out, 0, sizeof(*out));
  for (int i = 0; cn && i < id->nservices; i++) {
    const core_service_map *m = &id->services[i];
    if (strcmp(m->cn, cn) != 0) continue;
    out->kind = CORE_PRINCIPAL_SERVICE;
    snprintf(out->name, sizeof(out->name), "services/%s", cn);
    snprintf(out->display, sizeof(out->display), "%s", cn);
    out->system_admin = m->system_admin;
    if (!m->system_admin) {
      snprintf(out->bindings[0].project, sizeof(out->bindings[0].project), "%s", m->project);
      out->bindings[0].role = m->role;
      out->nbindings = 1;
    }
    return CORE_OK;
  }
  return core_fail(call, CORE_UNAUTHENTICATED, "missing credentials");
}

/* ---- tokens ---- */

static int issue_access(core_identity *id, core_call *call, const char *username,
                        const char *session, char **token, int64_t *exp) {
  char sub[80];
  snprintf(sub, sizeof(sub), "users/%s", username);
  auth_claim_kv sid = {"sid", session};
  int64_t now = (int64_t)time(NULL);
  auth_token_request rq = {.sub = sub,
                           .iss = id->issuer,
                           .aud = id->issuer,
                           .ttl_s = id->cfg.access_ttl_s,
                           .now = now,
                           .extra = &sid,
                           .n_extra = 1};
  char *t = NULL;
  if (auth_token_issue(id->kr, &rq, &t) != AUTH_OK)
    return core_fail(call, CORE_INTERNAL, "cannot sign the access token");
  *token = core_strdup(call, t);
  explicit_bzero(t, strlen(t));
  free(t);
  *exp = now + id->cfg.access_ttl_s;
  return *token ? CORE_OK : core_fail(call, CORE_INTERNAL, "out of memory");
}

static bool refresh_format_ok(const char *t) {
  if (!t || strncmp(t, "ncr_", 4) != 0 || strlen(t) != 4 + CORE_TOKEN_HEX) return false;
  for (const char *p = t + 4; *p; p++)
    if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return false;
  return true;
}

static void derive_refresh(const core_identity *id, const char *old, const char *rid,
                           char out[4 + CORE_TOKEN_HEX + 1]) {
  const char *parts[] = {"refresh", old, rid};
  unsigned char d[CORE_DIGEST_LEN];
  core_derive(id, parts, 3, d);
  memcpy(out, "ncr_", 4);
  core_hex(d, CORE_DIGEST_LEN, out + 4);
}

static void digest_text(const char *token, char out[2 * CORE_DIGEST_LEN + 3]) {
  unsigned char d[CORE_DIGEST_LEN];
  core_sha256(token, strlen(token), d);
  core_bytea(d, out);
}

/* ---- Login ---- */

typedef struct login_arg {
  core_identity *id;
  const Novacron__V1__LoginRequest *req;
  /* phase 1: what the password is checked against */
  bool found;
  char uid[40];
  char hash[AUTH_PASSWORD_HASH_MAX];
  bool disabled;
  int64_t locked_for;
  /* phase 2: the check, done without holding a connection or a lock */
  bool ok, rehash;
  char new_hash[AUTH_PASSWORD_HASH_MAX];
  /* phase 3 */
  int outcome; /* CORE_OK, or the refusal to return after COMMIT */
  char session[40];
  int64_t session_exp;
  char refresh[4 + CORE_TOKEN_HEX + 1];
} login_arg;

#define LOCKED_FOR                                                                     \
  "CASE WHEN locked_until > now() THEN ceil(extract(epoch from locked_until - now()))" \
  "::bigint ELSE 0 END"

static int login_read(store_conn *conn, core_tx *tx) {
  login_arg *a = tx->arg;
  const char *p[] = {a->req->username};
  PGresult *r;
  int code =
      core_q(tx, conn, "login_read",
             "SELECT id, password_hash, disabled, " LOCKED_FOR " FROM users WHERE username = $1", 1,
             p, &r);
  if (code) return code;
  a->found = PQntuples(r) == 1;
  if (a->found) {
    snprintf(a->uid, sizeof(a->uid), "%s", PQgetvalue(r, 0, 0));
    snprintf(a->hash, sizeof(a->hash), "%s", PQgetvalue(r, 0, 1));
    a->disabled = core_bool(r, 0, 2);
    a->locked_for = core_i64(r, 0, 3);
  }
  PQclear(r);
  return CORE_OK;
}

/* Records the outcome under the row lock: counts a failure (locking the
 * user at the limit), or starts the session. */
static int login_tx(store_conn *conn, core_tx *tx) {
  login_arg *a = tx->arg;
  core_identity *id = a->id;
  char window[32];
  snprintf(window, sizeof(window), "%" PRId64, id->cfg.login_window_s);
  const char *p[] = {a->uid, window};
  PGresult *r;
  int code = core_q(tx, conn, "login_lock",
                    "SELECT password_hash, " LOCKED_FOR
                    ", (failure_window_start IS NULL OR failure_window_start < now() - "
                    "make_interval(secs => $2::float8)) FROM users WHERE id = $1::uuid FOR UPDATE",
                    2, p, &r);
  if (code) return code;
  if (PQntuples(r) == 0) { /* deleted meanwhile */
    PQclear(r);
    a->outcome = core_fail(tx->call, CORE_UNAUTHENTICATED, "invalid username or password");
    return CORE_OK;
  }
  /* a password changed while this one was being checked counts as wrong */
  bool same_hash = strcmp(PQgetvalue(r, 0, 0), a->hash) == 0;
  int64_t locked_for = core_i64(r, 0, 1);
  bool window_over = core_bool(r, 0, 2);
  PQclear(r);
  if (locked_for > 0) {
    a->outcome =
        core_fail(tx->call, CORE_RESOURCE_EXHAUSTED,
                  "too many failed logins for this user; try again in %" PRId64 " s", locked_for);
    return CORE_OK;
  }
  if (!a->ok || !same_hash) {
    char max[16], lock[32];
    snprintf(max, sizeof(max), "%d", id->cfg.login_max_failures);
    snprintf(lock, sizeof(lock), "%" PRId64, id->cfg.lockout_s);
    const char *u[] = {a->uid, window_over ? "t" : "f", max, lock};
    code = core_q(tx, conn, "login_fail",
                  "UPDATE users SET "
                  "failed_logins = CASE WHEN $2::bool THEN 1 ELSE failed_logins + 1 END, "
                  "failure_window_start = CASE WHEN $2::bool THEN now() "
                  "ELSE failure_window_start END, "
                  "locked_until = CASE WHEN (CASE WHEN $2::bool THEN 1 ELSE failed_logins + 1 "
                  "END) >= $3::int THEN now() + make_interval(secs => $4::float8) "
                  "ELSE locked_until END WHERE id = $1::uuid",
                  4, u, NULL);
    if (code) return code;
    a->outcome = core_fail(tx->call, CORE_UNAUTHENTICATED, "invalid username or password");
    return CORE_OK;
  }
  if (a->disabled) {
    a->outcome = core_fail(tx->call, CORE_UNAUTHENTICATED, "invalid username or password");
    return CORE_OK;
  }
  const char *u[] = {a->uid, a->new_hash[0] ? a->new_hash : NULL};
  if ((code = core_q(tx, conn, "login_ok",
                     "UPDATE users SET failed_logins = 0, failure_window_start = NULL, "
                     "locked_until = NULL, last_login_at = now(), "
                     "password_hash = coalesce($2, password_hash) WHERE id = $1::uuid",
                     2, u, NULL)))
    return code;
  char ttl[32];
  snprintf(ttl, sizeof(ttl), "%" PRId64, id->cfg.session_ttl_s);
  const char *peer = tx->call->peer ? tx->call->peer : "";
  if (strncmp(peer, "ipv4:", 5) == 0 || strncmp(peer, "ipv6:", 5) == 0) peer += 5;
  char ua[256];
  snprintf(ua, sizeof(ua), "%s", tx->call->user_agent ? tx->call->user_agent : "");
  const char *s[] = {a->uid, peer, ua, ttl};
  if ((code = core_q(tx, conn, "login_session",
                     "INSERT INTO sessions (user_id, peer, user_agent, expire_at) VALUES "
                     "($1::uuid, $2, $3, now() + make_interval(secs => $4::float8)) "
                     "RETURNING id, extract(epoch from expire_at)::bigint",
                     4, s, &r)))
    return code;
  snprintf(a->session, sizeof(a->session), "%s", PQgetvalue(r, 0, 0));
  a->session_exp = core_i64(r, 0, 1);
  PQclear(r);
  if (core_random_token("ncr_", a->refresh, sizeof(a->refresh)) != 0)
    return core_fail(tx->call, CORE_INTERNAL, "no randomness");
  char dg[2 * CORE_DIGEST_LEN + 3];
  digest_text(a->refresh, dg);
  const char *t[] = {dg, a->session};
  if ((code = core_q(tx, conn, "login_refresh",
                     "INSERT INTO refresh_tokens (digest, session) VALUES ($1::bytea, $2::uuid)", 2,
                     t, NULL)))
    return code;
  a->outcome = CORE_OK;
  return CORE_OK;
}

int core_identity_login(core_identity *id, core_call *call, const Novacron__V1__LoginRequest *req,
                        Novacron__V1__LoginResponse *resp) {
  if (!core_id_valid(req->username) || !req->password || !*req->password ||
      strlen(req->password) > id->cfg.policy.max_length)
    return core_fail(call, CORE_UNAUTHENTICATED, "invalid username or password");
  login_arg *a = calloc(1, sizeof(*a));
  if (!a) return core_fail(call, CORE_INTERNAL, "out of memory");
  a->id = id;
  a->req = req;
  a->outcome = CORE_INTERNAL;
  int code = core_run_ro(id->db, call, login_read, a);
  if (code == CORE_OK && !a->found) {
    /* the same work as a real check, so timing does not reveal unknown users */
    bool dummy;
    static const char fake[] =
        "$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    auth_password_verify(req->password, fake, NULL, &dummy, NULL);
    code = core_fail(call, CORE_UNAUTHENTICATED, "invalid username or password");
  } else if (code == CORE_OK && a->locked_for > 0) {
    code = core_fail(call, CORE_RESOURCE_EXHAUSTED,
                     "too many failed logins for this user; try again in %" PRId64 " s",
                     a->locked_for);
  } else if (code == CORE_OK) {
    /* scrypt without a connection or a row lock held: a burst of logins
     * neither drains the pool nor queues on one user's row */
    auth_password_verify(req->password, a->hash, &id->cfg.kdf, &a->ok, &a->rehash);
    if (a->ok && a->rehash &&
        auth_password_hash(req->password, &id->cfg.kdf, a->new_hash, sizeof(a->new_hash)) !=
            AUTH_OK)
      a->new_hash[0] = '\0';
    code = core_run_tx(id->db, call, login_tx, a);
    if (code == CORE_OK) code = a->outcome;
  }
  if (code == CORE_OK) {
    int64_t exp;
    code = issue_access(id, call, req->username, a->session, &resp->access_token, &exp);
    if (code == CORE_OK) {
      resp->access_token_expire_time = core_ts_s(call, exp);
      resp->refresh_token = core_strdup(call, a->refresh);
      resp->refresh_token_expire_time = core_ts_s(call, a->session_exp);
      char name[160];
      snprintf(name, sizeof(name), "users/%s/sessions/%s", req->username, a->session);
      resp->session = core_strdup(call, name);
    }
  }
  explicit_bzero(a, sizeof(*a));
  free(a);
  return code;
}

/* ---- RefreshToken ---- */

typedef struct refresh_arg {
  core_identity *id;
  const Novacron__V1__RefreshTokenRequest *req;
  int outcome;
  char username[64];
  char session[40];
  int64_t session_exp;
  char next[4 + CORE_TOKEN_HEX + 1];
} refresh_arg;

static int revoke_session_sql(core_tx *tx, store_conn *conn, const char *session,
                              const char *reason) {
  const char *p[] = {session, reason};
  return core_q(tx, conn, "session_revoke",
                "UPDATE sessions SET revoked_at = now(), revoke_reason = $2 "
                "WHERE id = $1::uuid AND revoked_at IS NULL",
                2, p, NULL);
}

static int refresh_tx(store_conn *conn, core_tx *tx) {
  refresh_arg *a = tx->arg;
  const char *rid = a->req->request_id ? a->req->request_id : "";
  char dg[2 * CORE_DIGEST_LEN + 3];
  digest_text(a->req->refresh_token, dg);
  const char *p[] = {dg};
  PGresult *r;
  int code = core_q(tx, conn, "refresh_get",
                    "SELECT s.id, u.username, rt.used_at IS NOT NULL, rt.used_request_id, "
                    "rt.next_digest, (s.revoked_at IS NULL AND s.expire_at > now() AND NOT "
                    "u.disabled), extract(epoch from s.expire_at)::bigint "
                    "FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session "
                    "JOIN users u ON u.id = s.user_id WHERE rt.digest = $1::bytea "
                    "FOR UPDATE OF s, rt",
                    1, p, &r);
  if (code) return code;
  if (PQntuples(r) != 1) {
    PQclear(r);
    a->outcome = core_fail(tx->call, CORE_UNAUTHENTICATED, "the refresh token is not valid");
    return CORE_OK;
  }
  snprintf(a->session, sizeof(a->session), "%s", PQgetvalue(r, 0, 0));
  snprintf(a->username, sizeof(a->username), "%s", PQgetvalue(r, 0, 1));
  bool used = core_bool(r, 0, 2);
  const char *used_rid = core_val(r, 0, 3);
  char next_dg[2 * CORE_DIGEST_LEN + 3] = "";
  if (core_val(r, 0, 4)) snprintf(next_dg, sizeof(next_dg), "%s", PQgetvalue(r, 0, 4));
  bool live = core_bool(r, 0, 5);
  a->session_exp = core_i64(r, 0, 6);
  bool same_retry = used && *rid && used_rid && strcmp(used_rid, rid) == 0;
  PQclear(r);
  if (!live) {
    a->outcome = core_fail(tx->call, CORE_UNAUTHENTICATED,
                           "the session has ended (expired, revoked or user disabled); log in "
                           "again");
    return CORE_OK;
  }
  if (used) {
    if (same_retry) {
      /* a retry of a lost response: the same next token, if still unused */
      derive_refresh(a->id, a->req->refresh_token, rid, a->next);
      char d2[2 * CORE_DIGEST_LEN + 3];
      digest_text(a->next, d2);
      const char *q[] = {d2};
      if ((code = core_q(tx, conn, "refresh_next_unused",
                         "SELECT used_at IS NULL FROM refresh_tokens WHERE digest = $1::bytea", 1,
                         q, &r)))
        return code;
      bool fresh = PQntuples(r) == 1 && core_bool(r, 0, 0) && strcmp(d2, next_dg) == 0;
      PQclear(r);
      if (fresh) {
        a->outcome = CORE_OK;
        return CORE_OK;
      }
    }
    nc_log(NC_LOG_WARN, "refresh token reuse: session revoked", LKV_S("session", a->session),
           LKV_S("user", a->username), LKV_S("peer", tx->call->peer ? tx->call->peer : ""));
    if ((code = revoke_session_sql(tx, conn, a->session, "refresh token reuse"))) return code;
    a->outcome = core_fail(tx->call, CORE_UNAUTHENTICATED,
                           "this refresh token was already used: the session has been revoked; "
                           "log in again");
    return CORE_OK;
  }
  if (*rid)
    derive_refresh(a->id, a->req->refresh_token, rid, a->next);
  else if (core_random_token("ncr_", a->next, sizeof(a->next)) != 0)
    return core_fail(tx->call, CORE_INTERNAL, "no randomness");
  char nd[2 * CORE_DIGEST_LEN + 3];
  digest_text(a->next, nd);
  const char *u[] = {dg, rid, nd, a->session};
  if ((code = core_q(tx, conn, "refresh_use",
                     "UPDATE refresh_tokens SET used_at = now(), used_request_id = NULLIF($2, ''), "
                     "next_digest = $3::bytea WHERE digest = $1::bytea",
                     3, u, NULL)))
    return code;
  const char *ins[] = {nd, a->session};
  if ((code = core_q(tx, conn, "refresh_insert",
                     "INSERT INTO refresh_tokens (digest, session) VALUES ($1::bytea, $2::uuid)", 2,
                     ins, NULL)))
    return code;
  const char *s[] = {a->session};
  if ((code =
           core_q(tx, conn, "refresh_touch",
                  "UPDATE sessions SET last_refresh_at = now() WHERE id = $1::uuid", 1, s, NULL)))
    return code;
  a->outcome = CORE_OK;
  return CORE_OK;
}

int core_identity_refresh_token(core_identity *id, core_call *call,
                                const Novacron__V1__RefreshTokenRequest *req,
                                Novacron__V1__RefreshTokenResponse *resp) {
  int code = core_check_request_id(call, req->request_id);
  if (code) return code;
  if (!refresh_format_ok(req->refresh_token))
    return core_fail(call, CORE_UNAUTHENTICATED, "the refresh token is not valid");
  refresh_arg a = {.id = id, .req = req, .outcome = CORE_INTERNAL};
  code = core_run_tx(id->db, call, refresh_tx, &a);
  if (code == CORE_OK) code = a.outcome;
  if (code == CORE_OK) {
    int64_t exp;
    code = issue_access(id, call, a.username, a.session, &resp->access_token, &exp);
    if (code == CORE_OK) {
      resp->access_token_expire_time = core_ts_s(call, exp);
      resp->refresh_token = core_strdup(call, a.next);
      resp->refresh_token_expire_time = core_ts_s(call, a.session_exp);
      char name[160];
      snprintf(name, sizeof(name), "users/%s/sessions/%s", a.username, a.session);
      resp->session = core_strdup(call, name);
    }
  }
  explicit_bzero(a.next, sizeof(a.next));
  return code;
}

/* ---- sessions ---- */

#define SESSION_COLS \
  "s.id, u.username, s.peer, s.user_agent, " CORE_TS("s.created_at") ", " CORE_TS(        \
      "s.last_refresh_at") ", " CORE_TS("s.expire_at") ", " CORE_TS("s.revoked_at")       \
      ", s.revoke_reason, (s.revoked_at IS NOT NULL), (s.expire_at <= now())"

static Novacron__V1__Session *session_from_row(core_call *call, const PGresult *r, int i) {
  Novacron__V1__Session *s = core_alloc(call, sizeof(*s));
  if (!s) return NULL;
  novacron__v1__session__init(s);
  char name[160];
  snprintf(name, sizeof(name), "users/%s/sessions/%s", PQgetvalue(r, i, 1), PQgetvalue(r, i, 0));
  s->name = core_strdup(call, name);
  s->uid = core_strdup(call, PQgetvalue(r, i, 0));
  s->peer = core_strdup(call, PQgetvalue(r, i, 2));
  s->user_agent = core_strdup(call, PQgetvalue(r, i, 3));
  s->create_time = core_ts(call, r, i, 4);
  s->last_refresh_time = core_ts(call, r, i, 5);
  s->expire_time = core_ts(call, r, i, 6);
  s->revoke_time = core_ts(call, r, i, 7);
  s->revoke_reason = core_strdup(call, PQgetvalue(r, i, 8));
  s->state = core_bool(r, i, 9)    ? NOVACRON__V1__SESSION__STATE__STATE_REVOKED
             : core_bool(r, i, 10) ? NOVACRON__V1__SESSION__STATE__STATE_EXPIRED
                                   : NOVACRON__V1__SESSION__STATE__STATE_ACTIVE;
  s->current = call->who && strcmp(call->who->session, s->uid) == 0;
  return s;
}

typedef struct sess_arg {
  core_identity *id;
  const char *session;
  const char *reason;
  const char *rid;
  const ProtobufCMessage *req;
  ProtobufCMessage *resp;
  Novacron__V1__Session **out;
} sess_arg;

static int revoke_tx(store_conn *conn, core_tx *tx) {
  sess_arg *a = tx->arg;
  bool found;
  int code = core_idem_replay(tx, conn, a->rid, a->req, a->resp, &found);
  if (code || found) return code;
  if ((code = revoke_session_sql(tx, conn, a->session, a->reason))) return code;
  const char *p[] = {a->session};
  PGresult *r;
  if ((code = core_q(tx, conn, "session_get",
                     "SELECT " SESSION_COLS
                     " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1::uuid",
                     1, p, &r)))
    return code;
  if (PQntuples(r) != 1) {
    PQclear(r);
    return core_fail(tx->call, CORE_NOT_FOUND, "session not found");
  }
  *a->out = session_from_row(tx->call, r, 0);
  PQclear(r);
  return core_idem_store(tx, conn, a->rid, a->req, a->resp);
}

int core_identity_logout(core_identity *id, core_call *call, const Novacron__V1__LogoutRequest *req,
                         Novacron__V1__LogoutResponse *resp) {
  int code = core_check_request_id(call, req->request_id);
  if (code) return code;
  if (!call->who || call->who->kind != CORE_PRINCIPAL_USER || !call->who->session[0])
    return core_fail(call, CORE_FAILED_PRECONDITION,
                     "Logout ends a login session; this caller authenticated without one (API key "
                     "or certificate)");
  sess_arg a = {.id = id,
                .session = call->who->session,
                .reason = "logout",
                .rid = req->request_id,
                .req = &req->base,
                .resp = &resp->base,
                .out = &resp->session};
  return core_run_tx(id->db, call, revoke_tx, &a);
}

int core_identity_revoke_session(core_identity *id, core_call *call,
                                 const Novacron__V1__RevokeSessionRequest *req,
                                 Novacron__V1__RevokeSessionResponse *resp) {
  int code = core_check_request_id(call, req->request_id);
  if (code) return code;
  char user[64], sid[64];
  const char *name = req->name ? req->name : "";
  const char *mid = strstr(name, "/sessions/");
  if (!mid || strncmp(name, "users/", 6) != 0 || (size_t)(mid - name - 6) >= sizeof(user))
    return core_fail(call, CORE_INVALID_ARGUMENT, "name: must be users/{user}/sessions/{session}");
  snprintf(user, sizeof(user), "%.*s", (int)(mid - name - 6), name + 6);
  snprintf(sid, sizeof(sid), "%s", mid + 10);
  if (!core_id_valid(user) || strlen(sid) != 36 || core_check_request_id(call, sid) != CORE_OK)
    return core_fail(call, CORE_INVALID_ARGUMENT, "name: must be users/{user}/sessions/{session}");
  bool self = call->who->kind == CORE_PRINCIPAL_USER && strcmp(call->who->username, user) == 0;
  if (!self && !call->who->system_admin)
    return core_fail(call, CORE_NOT_FOUND, "session %s not found", name);
  char reason[200];
  snprintf(reason, sizeof(reason), self ? "revoked by its user" : "revoked by %s", call->who->name);
  sess_arg a = {.id = id,
                .session = sid,
                .reason = reason,
                .rid = req->request_id,
                .req = &req->base,
                .resp = &resp->base,
                .out = &resp->session};
  code = core_run_tx(id->db, call, revoke_tx, &a);
  /* a session of another user is reported as missing, like an unknown one */
  if (code == CORE_OK && resp->session && strncmp(resp->session->name, name, strlen(name)) != 0)
    return core_fail(call, CORE_NOT_FOUND, "session %s not found", name);
  return code;
}

static const lq_enum_value session_states[] = {
    {"STATE_ACTIVE", 1}, {"STATE_EXPIRED", 2}, {"STATE_REVOKED", 3}};
static const lq_field session_fields[] = {
    {.name = "state",
     .column = "(CASE WHEN s.revoked_at IS NOT NULL THEN 3 WHEN s.expire_at <= now() THEN 2 "
               "ELSE 1 END)",
     .type = LQ_ENUM,
     .enums = session_states,
     .nenums = 3,
     .filterable = true},
    {.name = "create_time",
     .column = "s.created_at",
     .type = LQ_TIME,
     .filterable = true,
     .orderable = true},
    {.name = "last_refresh_time",
     .column = "s.last_refresh_at",
     .type = LQ_TIME,
     .orderable = true},
};
static const lq_spec session_spec = {session_fields,
                                     sizeof(session_fields) / sizeof(session_fields[0]),
                                     "create_time desc",
                                     "s.id",
                                     50,
                                     500};

static Novacron__V1__Session *session_item(core_call *call, const PGresult *r, int i) {
  return session_from_row(call, r, i);
}
CORE_LIST_ROW(session_row, Novacron__V1__ListSessionsResponse, sessions, session_item)

int core_identity_list_sessions(core_identity *id, core_call *call,
                                const Novacron__V1__ListSessionsRequest *req,
                                Novacron__V1__ListSessionsResponse *resp) {
  char user[64];
  const char *parent = req->parent ? req->parent : "";
  bool all = strcmp(parent, "users/-") == 0;
  if (!all && !core_name1(parent, "users/", user, sizeof(user)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "parent: must be users/{user} or users/-");
  bool self =
      !all && call->who->kind == CORE_PRINCIPAL_USER && strcmp(call->who->username, user) == 0;
  if (!self && !call->who->system_admin)
    return core_fail(call, CORE_PERMISSION_DENIED,
                     "only system administrators may list other users' sessions");
  core_list_req l = {.spec = &session_spec,
                     .select = "SELECT " SESSION_COLS
                               ", count(*) OVER () FROM sessions s JOIN users u ON u.id = "
                               "s.user_id WHERE ($1::text IS NULL OR u.username = $1)",
                     .fixed = {all ? NULL : user},
                     .nfixed = 1,
                     CORE_LIST_PAGE(req, resp),
                     .fingerprint = parent,
                     .ncols = 11,
                     .row = session_row,
                     .total_size = &resp->total_size};
  return core_run_tx(id->db, call, core_list_tx, &l);
}

/* ---- WhoAmI ---- */

int core_identity_who_am_i(core_identity *id, core_call *call,
                           const Novacron__V1__WhoAmIRequest *req,
                           Novacron__V1__WhoAmIResponse *resp) {
  (void)id;
  (void)req;
  const core_principal *w = call->who;
  Novacron__V1__Principal *p = core_alloc(call, sizeof(*p));
  if (!p) return core_fail(call, CORE_INTERNAL, "out of memory");
  novacron__v1__principal__init(p);
  p->kind = w->kind == CORE_PRINCIPAL_USER      ? NOVACRON__V1__PRINCIPAL__KIND__KIND_USER
            : w->kind == CORE_PRINCIPAL_API_KEY ? NOVACRON__V1__PRINCIPAL__KIND__KIND_API_KEY
                                                : NOVACRON__V1__PRINCIPAL__KIND__KIND_SERVICE;
  p->name = core_strdup(call, w->name);
  p->display_name = core_strdup(call, w->display);
  p->system_admin = w->system_admin;
  if (w->session[0]) {
    char s[256];
    snprintf(s, sizeof(s), "%s/sessions/%s", w->name, w->session);
    p->session = core_strdup(call, s);
  }
  if (w->expire) p->expire_time = core_ts_s(call, w->expire);
  p->role_bindings = core_alloc(call, sizeof(*p->role_bindings) * (size_t)(w->nbindings + 1));
  for (int i = 0; i < w->nbindings; i++) {
    Novacron__V1__RoleBinding *b = core_alloc(call, sizeof(*b));
    if (!b) return core_fail(call, CORE_INTERNAL, "out of memory");
    novacron__v1__role_binding__init(b);
    /* API keys and services get one synthesized binding: no name, no user
     * (the project is in the name of the key, or in the configuration) */
    char name[160] = "";
    if (w->bindings[i].id[0])
      snprintf(name, sizeof(name), "projects/%s/roleBindings/%s", w->bindings[i].project,
               w->bindings[i].id);
    else
      snprintf(name, sizeof(name), "projects/%s", w->bindings[i].project);
    b->name = core_strdup(call, name);
    b->user = core_strdup(call, w->kind == CORE_PRINCIPAL_USER ? w->name : "");
    b->role = (Novacron__V1__Role)w->bindings[i].role;
    p->role_bindings[p->n_role_bindings++] = b;
  }
  resp->principal = p;
  return CORE_OK;
}
