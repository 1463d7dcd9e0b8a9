/*
 * util.c - the shared helpers of server/core (core/internal.h).
 */
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "util/log.h"

int core_fail(core_call *call, int code, const char *fmt, ...) {
  if (call && call->msg && call->msglen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(call->msg, call->msglen, fmt, ap);
    va_end(ap);
  }
  return code;
}

void *core_alloc(core_call *call, size_t n) {
  void *p = call->alloc->alloc(call->alloc->allocator_data, n ? n : 1);
  if (p) memset(p, 0, n ? n : 1);
  return p;
}

char *core_strdup(core_call *call, const char *s) {
  if (!s) s = "";
  size_t n = strlen(s) + 1;
  char *p = core_alloc(call, n);
  if (p) memcpy(p, s, n);
  return p;
}

int core_principal_role(const core_principal *p, const char *project) {
  if (!p) return CORE_ROLE_NONE;
  if (p->system_admin) return CORE_ROLE_ADMIN;
  for (int i = 0; i < p->nbindings; i++)
    if (strcmp(p->bindings[i].project, project) == 0) return p->bindings[i].role;
  return CORE_ROLE_NONE;
}

const char *core_who(const core_call *call) { return call->who ? call->who->name : "anonymous"; }

/* ---- transactions ---- */

int core_from_store(store_status st) {
  switch (st) {
  case STORE_OK: return CORE_OK;
  case STORE_UNAVAILABLE: return CORE_UNAVAILABLE;
  case STORE_NOT_FOUND: return CORE_NOT_FOUND;
  case STORE_CONFLICT: return CORE_ALREADY_EXISTS;
  case STORE_ABORTED: return CORE_ABORTED;
  case STORE_INVALID: return CORE_INVALID_ARGUMENT;
  default: return CORE_INTERNAL;
  }
}

typedef struct tx_box {
  core_tx tx;
  int (*fn)(store_conn *, core_tx *);
  int code;
} tx_box;

static int tx_trampoline(store_conn *conn, void *arg) {
  tx_box *b = arg;
  b->tx.st = STORE_OK;
  b->code = b->fn(conn, &b->tx);
  if (b->code == CORE_OK) return STORE_OK;
  /* A failed statement decides (ABORTED is retried by store_tx); a domain
   * refusal just rolls back. */
  return b->tx.st != STORE_OK ? (int)b->tx.st : (int)STORE_INVALID;
}

int core_run_tx(store_pool *db, core_call *call, int (*fn)(store_conn *conn, core_tx *tx),
                void *arg) {
  tx_box b = {.tx = {.call = call, .arg = arg}, .fn = fn, .code = -1};
  char err[256] = "";
  store_status st = store_tx(db, tx_trampoline, &b, 3, err, sizeof(err));
  if (st == STORE_OK) return CORE_OK;
  /* fn ran and refused, or one of its statements failed (message set) */
  if (b.code > 0) return b.code;
  /* BEGIN or COMMIT failed, or no connection */
  int code = core_from_store(st);
  if (code == CORE_UNAVAILABLE)
    return core_fail(call, code, "the database is unavailable; retry later");
  if (code == CORE_ABORTED)
    return core_fail(call, code, "a concurrent change conflicted with this one; retry");
  nc_log(NC_LOG_ERROR, "store: transaction failed", LKV_S("error", err));
  return core_fail(call, CORE_INTERNAL, "internal database error");
}

int core_run_ro(store_pool *db, core_call *call, int (*fn)(store_conn *conn, core_tx *tx),
                void *arg) {
  core_tx tx = {.call = call, .arg = arg};
  store_conn *conn = NULL;
  char err[256] = "";
  store_status st =
      store_pool_acquire(db, STORE_POOL_DEFAULT_ACQUIRE_TIMEOUT_MS, &conn, err, sizeof(err));
  if (st != STORE_OK)
    return core_fail(call,
                     core_from_store(st) == CORE_UNAVAILABLE ? CORE_UNAVAILABLE : CORE_INTERNAL,
                     "the database is unavailable; retry later");
  int code = fn(conn, &tx);
  store_pool_release(conn);
  if (code == CORE_UNAVAILABLE && tx.st == STORE_UNAVAILABLE) {
    /* a pooled connection that died while idle: the read is safe to run
     * again, and the next acquire reconnects */
    tx.st = STORE_OK;
    if (store_pool_acquire(db, STORE_POOL_DEFAULT_ACQUIRE_TIMEOUT_MS, &conn, err, sizeof(err)) !=
        STORE_OK)
      return core_fail(call, CORE_UNAVAILABLE, "the database is unavailable; retry later");
    code = fn(conn, &tx);
    store_pool_release(conn);
  }
  return code;
}

int core_q(core_tx *tx, store_conn *conn, const char *name, const char *sql, int n,
           const char *const *params, PGresult **res) {
  PGresult *r = NULL;
  store_status st = store_exec(conn, name, sql, n, params, &r);
  if (res)
    *res = r;
  else if (r)
    PQclear(r);
  if (st == STORE_OK) return CORE_OK;
  if (tx->st == STORE_OK) tx->st = st;
  int code = core_from_store(st);
  switch (code) {
  case CORE_UNAVAILABLE:
    return core_fail(tx->call, code, "the database is unavailable; retry later");
  case CORE_ABORTED: return core_fail(tx->call, code, "a concurrent change conflicted; retry");
  case CORE_ALREADY_EXISTS: return core_fail(tx->call, code, "already exists");
  case CORE_INVALID_ARGUMENT: return core_fail(tx->call, code, "invalid value");
  default:
    nc_log(NC_LOG_ERROR, "store: statement failed", LKV_S("statement", name),
           LKV_S("error", store_conn_error(conn)));
    return core_fail(tx->call, CORE_INTERNAL, "internal database error");
  }
}

int core_q_one(core_tx *tx, store_conn *conn, const char *name, const char *sql, const char *key,
               const char *what, PGresult **res) {
  const char *p[] = {key};
  int code = core_q(tx, conn, name, sql, 1, p, res);
  if (code) return code;
  if (PQntuples(*res) > 0) return CORE_OK;
  PQclear(*res);
  *res = NULL;
  return core_fail(tx->call, CORE_NOT_FOUND, "%s %s not found", what, key);
}

const char *core_val(const PGresult *res, int r, int c) {
  return PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c);
}
bool core_bool(const PGresult *res, int r, int c) {
  const char *v = core_val(res, r, c);
  return v && v[0] == 't';
}
int64_t core_i64(const PGresult *res, int r, int c) {
  const char *v = core_val(res, r, c);
  return v ? strtoll(v, NULL, 10) : 0;
}

Google__Protobuf__Timestamp *core_ts(core_call *call, const PGresult *res, int r, int c) {
  const char *v = core_val(res, r, c);
  if (!v) return NULL;
  long long us = strtoll(v, NULL, 10);
  Google__Protobuf__Timestamp *ts = core_alloc(call, sizeof(*ts));
  if (!ts) return NULL;
  google__protobuf__timestamp__init(ts);
  long long s = us / 1000000, rem = us % 1000000;
  if (rem < 0) {
    rem += 1000000;
    s -= 1;
  }
  ts->seconds = s;
  ts->nanos = (int32_t)(rem * 1000);
  return ts;
}

Google__Protobuf__Timestamp *core_ts_s(core_call *call, int64_t seconds) {
  Google__Protobuf__Timestamp *ts = core_alloc(call, sizeof(*ts));
  if (!ts) return NULL;
  google__protobuf__timestamp__init(ts);
  ts->seconds = seconds;
  return ts;
}

void core_ts_text(const Google__Protobuf__Timestamp *ts, char *buf, size_t len) {
  snprintf(buf, len, "%" PRId64 ".%06d", ts->seconds, ts->nanos / 1000);
}

/* ---- names and text ---- */

bool core_id_valid(const char *id) {
  size_t n = id ? strlen(id) : 0;
  if (n < 1 || n > 63 || id[0] < 'a' || id[0] > 'z') return false;
  for (size_t i = 0; i < n; i++) {
    char c = id[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

bool core_name1(const char *name, const char *prefix, char *id, size_t idlen) {
  size_t pl = strlen(prefix);
  if (!name || strncmp(name, prefix, pl) != 0) return false;
  const char *rest = name + pl;
  if (!core_id_valid(rest) || strlen(rest) >= idlen) return false;
  snprintf(id, idlen, "%s", rest);
  return true;
}

bool core_name2(const char *name, const char *collection, char *project, size_t plen, char *id,
                size_t idlen) {
  if (!name || strncmp(name, "projects/", 9) != 0) return false;
  const char *p = name + 9;
  const char *slash = strchr(p, '/');
  if (!slash || (size_t)(slash - p) >= plen) return false;
  char proj[64];
  size_t n = (size_t)(slash - p);
  if (n >= sizeof(proj)) return false;
  memcpy(proj, p, n);
  proj[n] = '\0';
  if (!core_id_valid(proj)) return false;
  size_t cl = strlen(collection);
  if (strncmp(slash + 1, collection, cl) != 0 || slash[1 + cl] != '/') return false;
  const char *rest = slash + 2 + cl;
  if (!core_id_valid(rest) || strlen(rest) >= idlen) return false;
  snprintf(project, plen, "%s", proj);
  snprintf(id, idlen, "%s", rest);
  return true;
}

static bool utf8_clean(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    unsigned c = p[i];
    if (c < 0x20 || c == 0x7f) return false;
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t len = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (!len || i + len > n || c == 0xc0 || c == 0xc1 || c > 0xf4) return false;
    for (size_t k = 1; k < len; k++)
      if ((p[i + k] & 0xc0) != 0x80) return false;
    /* C1 control characters U+0080..U+009F */
    if (c == 0xc2 && p[i + 1] < 0xa0) return false;
    i += len;
  }
  return true;
}

int core_check_text(core_call *call, const char *field, const char *s, size_t max) {
  size_t n = s ? strlen(s) : 0;
  if (n > max) return core_fail(call, CORE_INVALID_ARGUMENT, "%s: at most %zu bytes", field, max);
  if (!utf8_clean(s ? s : "", n))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "%s: must be UTF-8 text without control characters", field);
  return CORE_OK;
}

int core_check_request_id(core_call *call, const char *rid) {
  if (!rid || !*rid) return CORE_OK;
  static const char tmpl[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
  if (strlen(rid) != sizeof(tmpl) - 1) goto bad;
  for (size_t i = 0; i < sizeof(tmpl) - 1; i++) {
    char c = rid[i];
    if (tmpl[i] == '-') {
      if (c != '-') goto bad;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      goto bad;
    }
  }
  return CORE_OK;
bad:
  return core_fail(call, CORE_INVALID_ARGUMENT, "request_id: must be a UUID");
}

char *core_etag(core_call *call, int64_t version) {
  char buf[32];
  snprintf(buf, sizeof(buf), "v%" PRId64, version);
  return core_strdup(call, buf);
}

int core_check_etag(core_call *call, const char *etag, int64_t version, const char *what) {
  if (!etag || !*etag) return CORE_OK;
  char buf[32];
  snprintf(buf, sizeof(buf), "v%" PRId64, version);
  if (strcmp(buf, etag) == 0) return CORE_OK;
  return core_fail(call, CORE_ABORTED,
                   "%s was changed since it was read (etag %s is stale; current is %s): read it "
                   "again and retry",
                   what, etag, buf);
}

/* ---- digests and random ---- */

void core_sha256(const void *data, size_t n, unsigned char out[CORE_DIGEST_LEN]) {
  unsigned int len = CORE_DIGEST_LEN;
  EVP_Digest(data, n, out, &len, EVP_sha256(), NULL);
}

void core_derive(const core_identity *id, const char *const *parts, size_t nparts,
                 unsigned char out[CORE_DIGEST_LEN]) {
  /* HMAC over the parts, each followed by a NUL so boundaries are fixed. */
  EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
                         OSSL_PARAM_construct_end()};
  size_t outl = 0;
  memset(out, 0, CORE_DIGEST_LEN);
  if (ctx && EVP_MAC_init(ctx, id->derive_key, CORE_DIGEST_LEN, params)) {
    for (size_t i = 0; i < nparts; i++)
      EVP_MAC_update(ctx, (const unsigned char *)parts[i], strlen(parts[i]) + 1);
    EVP_MAC_final(ctx, out, &outl, CORE_DIGEST_LEN);
  }
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
}

void core_hex(const unsigned char *in, size_t n, char *out) {
  static const char hx[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hx[in[i] >> 4];
    out[2 * i + 1] = hx[in[i] & 15];
  }
  out[2 * n] = '\0';
}

void core_bytea(const unsigned char d[CORE_DIGEST_LEN], char out[2 * CORE_DIGEST_LEN + 3]) {
  out[0] = '\\';
  out[1] = 'x';
  core_hex(d, CORE_DIGEST_LEN, out + 2);
}

int core_random_token(const char *prefix, char *out, size_t outlen) {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof(raw)) != 1) return -1;
  size_t pl = strlen(prefix);
  if (outlen < pl + 2 * sizeof(raw) + 1) return -1;
  memcpy(out, prefix, pl);
  core_hex(raw, sizeof(raw), out + pl);
  return 0;
}

/* ---- idempotency ---- */

static void message_digest(const ProtobufCMessage *m, unsigned char out[CORE_DIGEST_LEN]) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) {
    memset(out, 0, CORE_DIGEST_LEN);
    return;
  }
  protobuf_c_message_pack(m, buf);
  core_sha256(buf, n, out);
  free(buf);
}

int core_idem_lookup(core_tx *tx, store_conn *conn, const char *rid, const ProtobufCMessage *req,
                     const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **replay,
                     bool *found) {
  *found = false;
  *replay = NULL;
  if (!rid || !*rid) return CORE_OK;
  const char *p[] = {core_who(tx->call), tx->call->method, rid};
  PGresult *r;
  int code = core_q(tx, conn, "idem_get",
                    "SELECT request_digest, response FROM idempotency "
                    "WHERE principal = $1 AND method = $2 AND request_id = $3",
                    3, p, &r);
  if (code) return code;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return CORE_OK;
  }
  unsigned char want[CORE_DIGEST_LEN];
  char want_txt[2 * CORE_DIGEST_LEN + 3];
  message_digest(req, want);
  core_bytea(want, want_txt);
  if (strcmp(PQgetvalue(r, 0, 0), want_txt) != 0) {
    PQclear(r);
    return core_fail(tx->call, CORE_INVALID_ARGUMENT,
                     "request_id %s was already used for a different request", rid);
  }
  size_t n = 0;
  unsigned char *bin = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 1), &n);
  PQclear(r);
  if (!bin) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  *replay = protobuf_c_message_unpack(resp_desc, tx->call->alloc, n, bin);
  PQfreemem(bin);
  if (!*replay) return core_fail(tx->call, CORE_INTERNAL, "stored response is unreadable");
  *found = true;
  return CORE_OK;
}

int core_idem_replay(core_tx *tx, store_conn *conn, const char *rid, const ProtobufCMessage *req,
                     ProtobufCMessage *resp, bool *found) {
  ProtobufCMessage *prev;
  int code = core_idem_lookup(tx, conn, rid, req, resp->descriptor, &prev, found);
  if (code == CORE_OK && *found) core_copy_message(resp, prev);
  return code;
}

int core_idem_store(core_tx *tx, store_conn *conn, const char *rid, const ProtobufCMessage *req,
                    const ProtobufCMessage *resp) {
  if (!rid || !*rid) return CORE_OK;
  unsigned char d[CORE_DIGEST_LEN];
  char dtxt[2 * CORE_DIGEST_LEN + 3];
  message_digest(req, d);
  core_bytea(d, dtxt);
  size_t n = protobuf_c_message_get_packed_size(resp);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  protobuf_c_message_pack(resp, buf);
  char *hex = malloc(2 * n + 3);
  if (!hex) {
    free(buf);
    return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  }
  hex[0] = '\\';
  hex[1] = 'x';
  core_hex(buf, n, hex + 2);
  free(buf);
  const char *p[] = {core_who(tx->call), tx->call->method, rid, dtxt, hex};
  int code = core_q(tx, conn, "idem_put",
                    "INSERT INTO idempotency (principal, method, request_id, request_digest, "
                    "response) VALUES ($1, $2, $3, $4::bytea, $5::bytea)",
                    5, p, NULL);
  free(hex);
  return code;
}

void core_copy_message(ProtobufCMessage *dst, const ProtobufCMessage *src) {
  memcpy(dst, src, src->descriptor->sizeof_message);
}

/* ================= labels ================= */

static bool label_key_ok(const char *k) {
  size_t n = k ? strlen(k) : 0;
  if (n < 1 || n > 63 || !((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= '0' && k[0] <= '9')))
    return false;
  for (size_t i = 0; i < n; i++) {
    char c = k[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
      return false;
  }
  return true;
}

/* Validates labels and renders them as a JSON object (malloc'ed). */

int core_labels_json(core_call *call, Novacron__V1__Label **labels, size_t n, char **out) {
  *out = NULL;
  if (n > 64) return core_fail(call, CORE_INVALID_ARGUMENT, "labels: at most 64 entries");
  json_t *obj = json_object();
  for (size_t i = 0; i < n; i++) {
    const char *k = labels[i]->key, *v = labels[i]->value ? labels[i]->value : "";
    if (!label_key_ok(k)) {
      json_decref(obj);
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "labels[%zu].key: 1-63 characters of a-z, 0-9, '-', '_' and '.'", i);
    }
    int code = core_check_text(call, "labels.value", v, 63);
    if (code) {
      json_decref(obj);
      return code;
    }
    if (json_object_get(obj, k)) {
      json_decref(obj);
      return core_fail(call, CORE_INVALID_ARGUMENT, "labels: key %s appears twice", k);
    }
    json_object_set_new(obj, k, json_string(v));
  }
  *out = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(obj);
  return *out ? CORE_OK : core_fail(call, CORE_INTERNAL, "out of memory");
}

Novacron__V1__Label **core_labels_from_json(core_call *call, const char *text, size_t *n) {
  *n = 0;
  json_error_t jerr;
  json_t *obj = json_loads(text ? text : "{}", 0, &jerr);
  Novacron__V1__Label **out = NULL;
  const char *k;
  json_t *v;
  if (obj && json_is_object(obj)) {
    out = core_alloc(call, sizeof(*out) * (json_object_size(obj) + 1));
    json_object_foreach(obj, k, v) {
      Novacron__V1__Label *l = core_alloc(call, sizeof(*l));
      if (!l || !out) break;
      novacron__v1__label__init(l);
      l->key = core_strdup(call, k);
      l->value = core_strdup(call, json_is_string(v) ? json_string_value(v) : "");
      out[(*n)++] = l;
    }
  }
  json_decref(obj);
  return out;
}

/* ================= requests ================= */

bool core_mask_has(const Google__Protobuf__FieldMask *m, const char *path) {
  for (size_t i = 0; m && i < m->n_paths; i++)
    if (strcmp(m->paths[i], path) == 0) return true;
  return false;
}

void core_visible_projects(const core_principal *p, char *buf, size_t len) {
  size_t o = (size_t)snprintf(buf, len, "{");
  for (int i = 0; i < p->nbindings && o < len; i++)
    o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? "," : "", p->bindings[i].project);
  if (o < len) snprintf(buf + o, len - o, "}");
}

int core_project_uid(core_tx *tx, store_conn *conn, const char *project, char uid[40]) {
  PGresult *r;
  int code = core_q_one(tx, conn, "project_uid", "SELECT id FROM projects WHERE project_id = $1",
                        project, "project", &r);
  if (code) return code;
  snprintf(uid, 40, "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  return CORE_OK;
}

int core_quota_check(core_tx *tx, PGresult *r, const char *const *names, const int64_t *add, int n,
                     int used_col) {
  for (int i = 0; PQntuples(r) > 0 && i < n; i++) {
    if (add[i] <= 0 || !core_val(r, 0, i)) continue;
    int64_t limit = core_i64(r, 0, i), used = core_i64(r, 0, used_col + i);
    if (used + add[i] > limit) {
      PQclear(r);
      return core_fail(tx->call, CORE_RESOURCE_EXHAUSTED,
                       "quota exceeded: %s would be %" PRId64 " (%" PRId64 " used + %" PRId64
                       " requested), the limit is %" PRId64,
                       names[i], used + add[i], used, add[i], limit);
    }
  }
  PQclear(r);
  return CORE_OK;
}
