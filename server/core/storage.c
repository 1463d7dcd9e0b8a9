/*
 * storage.c - StorageService: validation, reads and the journaling of
 * pool and volume work (the executors are in core/storage_exec.c).
 *
 * Pools are host infrastructure (hosts/{host}/pools/{pool}); volumes
 * belong to projects and live in one pool. As with VMs, every change that
 * touches a hypervisor runs one transaction: replay a retried request_id,
 * lock the row, check the etag, that no other operation is in progress on
 * it and that its state allows the change, move it into its transitional
 * state and journal the Operation. Creation reserves the row (state
 * CREATING) in that transaction; a failed creation removes it again, so a
 * row and its libvirt object exist both or neither.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/storage_int.h"
#include "util/fetch.h"
#include "util/log.h"

#define PS(x) NOVACRON__V1__POOL__STATE__STATE_##x
#define VS(x) NOVACRON__V1__VOLUME__STATE__STATE_##x
#define EV(x) NOVACRON__V1__EVENT__TYPE__TYPE_##x

static const char *const pool_state_names[] = {"STATE_UNSPECIFIED", "STATE_CREATING",
                                               "STATE_ACTIVE",      "STATE_INACTIVE",
                                               "STATE_ERROR",       "STATE_DELETING"};
static const char *const vol_state_names[] = {"STATE_UNSPECIFIED", "STATE_CREATING",
                                              "STATE_READY",       "STATE_ATTACHED",
                                              "STATE_ERROR",       "STATE_DELETING"};

static const char *pool_state_name(int s) {
  return s >= 0 && s <= 5 ? pool_state_names[s] : "STATE_UNSPECIFIED";
}
const char *core_volume_state_name(int s) {
  return s >= 0 && s <= 5 ? vol_state_names[s] : "STATE_UNSPECIFIED";
}

int64_t core_gib_up(int64_t bytes) { return bytes <= 0 ? 0 : (bytes + GIB - 1) / GIB; }

void core_volume_lvname(const char *project, const char *volume, char *out, size_t len) {
  snprintf(out, len, "%s.%s", project, volume);
}

/* ================= rows ================= */

Novacron__V1__Pool *core_pool_from_row(core_call *call, const PGresult *r, int i) {
  Novacron__V1__Pool *p = core_alloc(call, sizeof(*p));
  if (!p) return NULL;
  novacron__v1__pool__init(p);
  char name[160];
  snprintf(name, sizeof(name), "hosts/%s/pools/%s", PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
  p->name = core_strdup(call, name);
  p->uid = core_strdup(call, PQgetvalue(r, i, 0));
  p->type = (Novacron__V1__Pool__Type)core_i64(r, i, 3);
  p->target_path = core_strdup(call, PQgetvalue(r, i, 4));
  const char *devs = PQgetvalue(r, i, 5);
  if (*devs) { /* newline-separated (paths hold no control characters) */
    size_t n = 1;
    for (const char *s = devs; *s; s++)
      n += *s == '\n';
    p->source_devices = core_alloc(call, n * sizeof(char *));
    char *copy = core_strdup(call, devs);
    if (!p->source_devices || !copy) return NULL;
    for (char *s = copy, *nl; s; s = nl) {
      nl = strchr(s, '\n');
      if (nl) *nl++ = 0;
      p->source_devices[p->n_source_devices++] = s;
    }
  }
  p->source_host = core_strdup(call, PQgetvalue(r, i, 6));
  p->source_export = core_strdup(call, PQgetvalue(r, i, 7));
  p->autostart = core_bool(r, i, 8);
  p->state = (Novacron__V1__Pool__State)core_i64(r, i, 9);
  p->state_message = core_strdup(call, PQgetvalue(r, i, 10));
  p->capacity_bytes = core_i64(r, i, 11);
  p->allocation_bytes = core_i64(r, i, 12);
  p->available_bytes = core_i64(r, i, 13);
  p->description = core_strdup(call, PQgetvalue(r, i, 14));
  p->labels = core_labels_from_json(call, PQgetvalue(r, i, 15), &p->n_labels);
  p->etag = core_etag(call, core_i64(r, i, 16));
  p->create_time = core_ts(call, r, i, 17);
  p->update_time = core_ts(call, r, i, 18);
  return p;
}

Novacron__V1__Volume *core_volume_from_row(core_call *call, const PGresult *r, int i) {
  Novacron__V1__Volume *v = core_alloc(call, sizeof(*v));
  if (!v) return NULL;
  novacron__v1__volume__init(v);
  char buf[200];
  snprintf(buf, sizeof(buf), "projects/%s/volumes/%s", PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
  v->name = core_strdup(call, buf);
  v->uid = core_strdup(call, PQgetvalue(r, i, 0));
  snprintf(buf, sizeof(buf), "hosts/%s/pools/%s", PQgetvalue(r, i, 3), PQgetvalue(r, i, 4));
  v->pool = core_strdup(call, buf);
  v->format = (Novacron__V1__Volume__Format)core_i64(r, i, 5);
  v->size_bytes = core_i64(r, i, 6);
  v->allocation_bytes = core_i64(r, i, 7);
  if (*PQgetvalue(r, i, 8)) {
    v->source_case = NOVACRON__V1__VOLUME__SOURCE_SOURCE_VOLUME;
    v->source_volume = core_strdup(call, PQgetvalue(r, i, 8));
  } else if (*PQgetvalue(r, i, 9)) {
    v->source_case = NOVACRON__V1__VOLUME__SOURCE_SOURCE_IMAGE;
    v->source_image = core_strdup(call, PQgetvalue(r, i, 9));
  }
  if (core_val(r, i, 10)) {
    Novacron__V1__Volume__Attachment *a = core_alloc(call, sizeof(*a));
    if (!a) return NULL;
    novacron__v1__volume__attachment__init(a);
    snprintf(buf, sizeof(buf), "projects/%s/vms/%s", PQgetvalue(r, i, 1), PQgetvalue(r, i, 10));
    a->vm = core_strdup(call, buf);
    a->target_device = core_strdup(call, PQgetvalue(r, i, 11));
    v->attachment = a;
  }
  v->state = (Novacron__V1__Volume__State)core_i64(r, i, 12);
  v->state_message = core_strdup(call, PQgetvalue(r, i, 13));
  v->description = core_strdup(call, PQgetvalue(r, i, 14));
  v->labels = core_labels_from_json(call, PQgetvalue(r, i, 15), &v->n_labels);
  v->etag = core_etag(call, core_i64(r, i, 16));
  v->create_time = core_ts(call, r, i, 17);
  v->update_time = core_ts(call, r, i, 18);
  return v;
}

static int load_pool(core_tx *tx, store_conn *conn, const char *host, const char *pool, bool lock,
                     PGresult **res) {
  const char *p[] = {host, pool};
  int code =
      core_q(tx, conn, lock ? "pool_lock" : "pool_get",
             lock ? "SELECT " POOL_COLS POOL_FROM
                    " WHERE h.host_id = $1 AND pl.pool_id = $2 FOR UPDATE OF pl"
                  : "SELECT " POOL_COLS POOL_FROM " WHERE h.host_id = $1 AND pl.pool_id = $2",
             2, p, res);
  if (code) return code;
  if (PQntuples(*res) == 0) {
    PQclear(*res);
    *res = NULL;
    return core_fail(tx->call, CORE_NOT_FOUND, "pool hosts/%s/pools/%s not found", host, pool);
  }
  return CORE_OK;
}

int core_volume_load(core_tx *tx, store_conn *conn, const char *project, const char *volume,
                     bool lock, PGresult **res) {
  const char *p[] = {project, volume};
  int code =
      core_q(tx, conn, lock ? "volume_lock" : "volume_get",
             lock ? "SELECT " VOL_COLS VOL_FROM
                    " WHERE p.project_id = $1 AND vo.volume_id = $2 FOR UPDATE OF vo"
                  : "SELECT " VOL_COLS VOL_FROM " WHERE p.project_id = $1 AND vo.volume_id = $2",
             2, p, res);
  if (code) return code;
  if (PQntuples(*res) == 0) {
    PQclear(*res);
    *res = NULL;
    return core_fail(tx->call, CORE_NOT_FOUND, "volume projects/%s/volumes/%s not found", project,
                     volume);
  }
  return CORE_OK;
}

int core_volume_set(core_tx *tx, store_conn *conn, core_op *op, const char *uid, int state,
                    const char *message, Novacron__V1__Volume **out) {
  char st[8];
  snprintf(st, sizeof(st), "%d", state);
  const char *p[] = {uid, st, message ? message : ""};
  PGresult *r;
  int code = core_q(tx, conn, "volume_prev_state",
                    "SELECT state FROM volumes WHERE id = $1::uuid FOR UPDATE", 1, p, &r);
  if (code) return code;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return core_fail(tx->call, CORE_NOT_FOUND, "volume %s not found", uid);
  }
  int old = (int)core_i64(r, 0, 0);
  PQclear(r);
  if ((code = core_q(tx, conn, "volume_set_state",
                     "UPDATE volumes SET state = $2::smallint, state_message = $3, version = "
                     "version + 1, updated_at = now() WHERE id = $1::uuid",
                     3, p, &r)))
    return code;
  PQclear(r);
  if ((code = core_q(tx, conn, "volume_get_uid",
                     "SELECT " VOL_COLS VOL_FROM " WHERE vo.id = $1::uuid", 1, p, &r)))
    return code;
  Novacron__V1__Volume *v = core_volume_from_row(tx->call, r, 0);
  char project[64];
  snprintf(project, sizeof(project), "%s", PQgetvalue(r, 0, 1));
  PQclear(r);
  if (!v) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  if (out) *out = v;
  char msg[160];
  if (old != state)
    snprintf(msg, sizeof(msg), "state %s -> %s", core_volume_state_name(old) + 6,
             core_volume_state_name(state) + 6);
  else
    snprintf(msg, sizeof(msg), "updated");
  return core_emit(tx, conn, op, EV(RESOURCE_UPDATED), v->name, project, msg, &v->base);
}

int core_quota_lock(core_tx *tx, store_conn *conn, const char *project_uid) {
  const char *p[] = {project_uid};
  PGresult *r;
  int code = core_q(tx, conn, "quota_lock_project",
                    "SELECT 1 FROM quotas WHERE project = $1::uuid FOR UPDATE", 1, p, &r);
  if (code == CORE_OK) PQclear(r);
  return code;
}

int core_pool_book(core_tx *tx, store_conn *conn, const char *pool_uid, int64_t bytes) {
  if (bytes <= 0) return CORE_OK;
  char b[24];
  snprintf(b, sizeof(b), "%" PRId64, bytes);
  const char *p[] = {pool_uid, b};
  PGresult *r;
  int code = core_q(tx, conn, "pool_book",
                    "UPDATE pools SET available_bytes = greatest(available_bytes - $2::bigint, 0), "
                    "allocation_bytes = allocation_bytes + $2::bigint WHERE id = $1::uuid",
                    2, p, &r);
  if (code == CORE_OK) PQclear(r);
  return code;
}

/* ================= validation ================= */

/* An absolute host path: no "." or ".." segment, no empty segment, no
 * control characters; XML metacharacters are fine (libxml2 escapes). */
static int check_path(core_call *call, const char *field, const char *path, size_t max) {
  int code = core_check_text(call, field, path, max);
  if (code) return code;
  if (!path || path[0] != '/')
    return core_fail(call, CORE_INVALID_ARGUMENT, "%s: must be an absolute path", field);
  for (const char *s = path; *s;) {
    const char *e = strchr(s + 1, '/');
    size_t n = e ? (size_t)(e - s - 1) : strlen(s + 1);
    if ((n == 0 && e) || (n == 1 && s[1] == '.') || (n == 2 && s[1] == '.' && s[2] == '.'))
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "%s: must not contain empty, \".\" or \"..\" segments", field);
    if (!e) break;
    s = e;
  }
  return CORE_OK;
}

/* Calls fn on each entry of a comma-separated list (empty ones skipped);
 * stops at the first nonzero answer and returns it. */
static int each_entry(const char *list, int (*fn)(const char *entry, void *arg), void *arg) {
  for (const char *s = list ? list : ""; *s;) {
    size_t n = strcspn(s, ",");
    char entry[2100];
    snprintf(entry, sizeof(entry), "%.*s", (int)(n < sizeof(entry) ? n : sizeof(entry) - 1), s);
    int r = *entry ? fn(entry, arg) : 0;
    if (r) return r;
    s += n + (s[n] == ',');
  }
  return 0;
}

typedef struct url_check {
  const char *url; /* normalized */
  char *err;
  size_t errlen;
} url_check;

static int prefix_valid(const char *entry, void *arg) {
  url_check *u = arg;
  char norm[2100], why[200];
  if (nc_url_normalize(entry, norm, sizeof(norm), why, sizeof(why))) return 0;
  snprintf(u->err, u->errlen, "--storage-image-urls: \"%.200s\": %s", entry, why);
  return 1;
}

int core_check_image_urls(const char *list, char *err, size_t errlen) {
  url_check u = {.err = err, .errlen = errlen};
  return each_entry(list, prefix_valid, &u) ? CORE_INVALID_ARGUMENT : CORE_OK;
}

static int prefix_covers(const char *entry, void *arg) {
  url_check *u = arg;
  char norm[2100], why[8];
  return nc_url_normalize(entry, norm, sizeof(norm), why, sizeof(why)) &&
         nc_url_under(u->url, norm);
}

static int check_image_url(core_compute *c, core_call *call, const char *field, const char *image) {
  char norm[2100], why[200];
  if (!nc_url_normalize(image, norm, sizeof(norm), why, sizeof(why)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "%s: %s", field, why);
  if (!c->cfg.image_urls || !*c->cfg.image_urls)
    return core_fail(call, CORE_PERMISSION_DENIED,
                     "%s: URL imports are disabled on this server (--storage-image-urls is empty)",
                     field);
  url_check u = {.url = norm};
  if (!each_entry(c->cfg.image_urls, prefix_covers, &u))
    return core_fail(call, CORE_PERMISSION_DENIED,
                     "%s: %.300s is not under a URL prefix listed in --storage-image-urls", field,
                     norm);
  return CORE_OK;
}

bool core_image_is_url(const char *image) {
  return image && (strncasecmp(image, "http://", 7) == 0 || strncasecmp(image, "https://", 8) == 0);
}

int core_check_image(core_compute *c, core_call *call, const char *field, const char *image) {
  if (core_image_is_url(image)) return check_image_url(c, call, field, image);
  int code = check_path(call, field, image, 511);
  if (code) return code;
  const char *dirs = c->cfg.image_dirs ? c->cfg.image_dirs : "";
  if (!*dirs)
    return core_fail(call, CORE_PERMISSION_DENIED,
                     "%s: image imports are disabled on this server (--storage-image-dirs is "
                     "empty)",
                     field);
  for (const char *s = dirs; *s;) {
    const char *e = strchr(s, ',');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    while (n > 1 && s[n - 1] == '/')
      n--;
    if (n > 0 && strncmp(image, s, n) == 0 && image[n] == '/') return CORE_OK;
    if (!e) break;
    s = e + 1;
  }
  return core_fail(call, CORE_PERMISSION_DENIED,
                   "%s: %s is not under a directory listed in --storage-image-dirs", field, image);
}

static int check_size(core_call *call, const char *field, int64_t size, bool zero_ok) {
  if (size == 0 && zero_ok) return CORE_OK;
  if (size <= 0 || size % MIB != 0)
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "%s: must be a positive multiple of 1 MiB (1048576), got %" PRId64, field,
                     size);
  if (size > VOLUME_MAX_BYTES)
    return core_fail(call, CORE_INVALID_ARGUMENT, "%s: at most 64 TiB (%" PRId64 "), got %" PRId64,
                     field, VOLUME_MAX_BYTES, size);
  return CORE_OK;
}

static bool host_ok(const char *s) {
  size_t n = strlen(s);
  return n > 0 && n <= 253 &&
         strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") == n;
}

int core_volume_quota(core_tx *tx, store_conn *conn, const char *project_uid, int64_t add_count,
                      int64_t add_gib) {
  const char *p[] = {project_uid};
  PGresult *r;
  int code = core_q(tx, conn, "quota_volume_count_lock",
                    "SELECT q.volumes, q.volume_gib, u.n, u.gib FROM quotas q, LATERAL (SELECT "
                    "count(*) AS n, coalesce(sum((size_bytes + 1073741823) / 1073741824), 0) AS "
                    "gib FROM volumes WHERE project = q.project) u WHERE q.project = $1::uuid "
                    "FOR UPDATE OF q",
                    1, p, &r);
  if (code) return code;
  static const char *const what[] = {"volumes", "volume_gib"};
  const int64_t add[] = {add_count, add_gib};
  return core_quota_check(tx, r, what, add, 2, 2);
}

static int check_id(core_call *call, const char *field, const char *id) {
  if (!core_id_valid(id) || id[strlen(id) - 1] == '-')
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "%s: 1-63 characters of a-z, 0-9 and '-', starting with a letter and not "
                     "ending with '-'",
                     field);
  return CORE_OK;
}

/* hosts/{host}/pools/{pool} */
static bool parse_pool_name(const char *name, char host[64], char pool[64]) {
  if (!name || strncmp(name, "hosts/", 6) != 0) return false;
  const char *s = name + 6, *slash = strchr(s, '/');
  if (!slash || (size_t)(slash - s) >= 64 || strncmp(slash, "/pools/", 7) != 0) return false;
  snprintf(host, 64, "%.*s", (int)(slash - s), s);
  const char *p = slash + 7;
  if (strlen(p) >= 64 || strchr(p, '/')) return false;
  snprintf(pool, 64, "%s", p);
  return core_id_valid(host) && core_id_valid(pool);
}

static int pool_name_arg(core_call *call, const char *field, const char *name, char host[64],
                         char pool[64]) {
  if (!parse_pool_name(name, host, pool))
    return core_fail(call, CORE_INVALID_ARGUMENT, "%s: must be hosts/{host}/pools/{pool}", field);
  return CORE_OK;
}

static int volume_name_arg(core_call *call, const char *field, const char *name, char project[64],
                           char vol[64]) {
  if (!core_name2(name, "volumes", project, 64, vol, 64))
    return core_fail(call, CORE_INVALID_ARGUMENT, "%s: must be projects/{project}/volumes/{volume}",
                     field);
  return CORE_OK;
}

/* ================= CreatePool ================= */

typedef struct pool_create_arg {
  const Novacron__V1__CreatePoolRequest *req;
  ProtobufCMessage *resp;
  const char *host, *labels, *target, *devices;
  Novacron__V1__Operation **out;
} pool_create_arg;

static int pool_create_tx(store_conn *conn, core_tx *tx) {
  pool_create_arg *a = tx->arg;
  const Novacron__V1__CreatePoolRequest *req = a->req;
  const Novacron__V1__Pool *in = req->pool;
  bool found;
  int code = core_idem_replay(tx, conn, req->request_id, &req->base, a->resp, &found);
  if (code || found) return code;
  PGresult *r;
  if ((code = core_q_one(tx, conn, "pool_host", "SELECT id, state FROM hosts WHERE host_id = $1",
                         a->host, "host", &r)))
    return core_fail(tx->call, code, "host hosts/%s not found", a->host);
  char host_uid[40];
  snprintf(host_uid, sizeof(host_uid), "%s", PQgetvalue(r, 0, 0));
  int hstate = (int)core_i64(r, 0, 1);
  PQclear(r);
  if (hstate == NOVACRON__V1__HOST__STATE__STATE_UNREACHABLE)
    return core_fail(tx->call, CORE_UNAVAILABLE, "hosts/%s is unreachable", a->host);
  if (hstate == NOVACRON__V1__HOST__STATE__STATE_DEREGISTERING)
    return core_fail(tx->call, CORE_FAILED_PRECONDITION, "hosts/%s is being deregistered", a->host);
  char type[8], autostart[2];
  snprintf(type, sizeof(type), "%d", (int)in->type);
  snprintf(autostart, sizeof(autostart), "%s", in->autostart ? "t" : "f");
  const char *p[] = {host_uid,
                     req->pool_id,
                     type,
                     a->target,
                     a->devices,
                     in->source_host ? in->source_host : "",
                     in->source_export ? in->source_export : "",
                     autostart,
                     in->description ? in->description : "",
                     a->labels};
  code = core_q(tx, conn, "pool_insert",
                "WITH pl AS (INSERT INTO pools (host, pool_id, type, target_path, source_devices, "
                "source_host, source_export, autostart, description, labels) VALUES ($1::uuid, "
                "$2, $3::smallint, $4, CASE WHEN $5 = '' THEN '{}'::text[] ELSE "
                "string_to_array($5, E'\\n') END, $6, $7, $8::bool, $9, $10::jsonb) ON CONFLICT "
                "(host, pool_id) DO NOTHING RETURNING *) SELECT " POOL_COLS
                " FROM pl JOIN hosts h ON h.id = pl.host",
                10, p, &r);
  if (code) return code;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return core_fail(tx->call, CORE_ALREADY_EXISTS, "pool hosts/%s/pools/%s already exists",
                     a->host, req->pool_id);
  }
  Novacron__V1__Pool *pool = core_pool_from_row(tx->call, r, 0);
  char uid[40];
  snprintf(uid, sizeof(uid), "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  if (!pool) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  if ((code =
           core_emit(tx, conn, NULL, EV(RESOURCE_CREATED), pool->name, "", "created", &pool->base)))
    return code;
  core_op_new n = {.verb = "StorageService.CreatePool",
                   .target = pool->name,
                   .target_uid = uid,
                   .project_uid = NULL,
                   .project_id = "",
                   .req = &req->base,
                   .request_id = req->request_id,
                   .status_message = "queued: define, build and start the pool"};
  if ((code = core_op_enqueue(tx, conn, &n, a->out))) return code;
  return core_idem_store(tx, conn, req->request_id, &req->base, a->resp);
}

CORE_COMPUTE_FN(create_pool, CreatePoolRequest, CreatePoolResponse) {
  int code = core_check_request_id(call, req->request_id);
  if (code) return code;
  char host[64];
  if (!core_name1(req->parent, "hosts/", host, sizeof(host)) || !core_id_valid(host))
    return core_fail(call, CORE_INVALID_ARGUMENT, "parent: must be hosts/{host}");
  if ((code = check_id(call, "pool_id", req->pool_id))) return code;
  const Novacron__V1__Pool *in = req->pool;
  if (!in) return core_fail(call, CORE_INVALID_ARGUMENT, "pool: required");
  const char *target = in->target_path ? in->target_path : "";
  const char *shost = in->source_host ? in->source_host : "";
  const char *sexp = in->source_export ? in->source_export : "";
  char lvtarget[80];
  switch (in->type) {
  case NOVACRON__V1__POOL__TYPE__TYPE_DIR:
  case NOVACRON__V1__POOL__TYPE__TYPE_NETFS:
    if (!*target)
      return core_fail(call, CORE_INVALID_ARGUMENT, "pool.target_path: required for %s",
                       in->type == NOVACRON__V1__POOL__TYPE__TYPE_DIR ? "TYPE_DIR" : "TYPE_NETFS");
    if ((code = check_path(call, "pool.target_path", target, 511))) return code;
    if (in->n_source_devices)
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "pool.source_devices: only for TYPE_LOGICAL pools");
    if (in->type == NOVACRON__V1__POOL__TYPE__TYPE_DIR && (*shost || *sexp))
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "pool.source_host, pool.source_export: only for TYPE_NETFS pools");
    if (in->type == NOVACRON__V1__POOL__TYPE__TYPE_NETFS) {
      if (!host_ok(shost))
        return core_fail(call, CORE_INVALID_ARGUMENT,
                         "pool.source_host: required for TYPE_NETFS: a host name or IP address");
      if (!*sexp)
        return core_fail(call, CORE_INVALID_ARGUMENT,
                         "pool.source_export: required for TYPE_NETFS");
      if ((code = check_path(call, "pool.source_export", sexp, 511))) return code;
    }
    break;
  case NOVACRON__V1__POOL__TYPE__TYPE_LOGICAL:
    snprintf(lvtarget, sizeof(lvtarget), "/dev/%s", req->pool_id);
    if (*target && strcmp(target, lvtarget) != 0)
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "pool.target_path: a TYPE_LOGICAL pool's volumes appear in %s; leave it "
                       "empty or give that",
                       lvtarget);
    target = lvtarget;
    if (*shost || *sexp)
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "pool.source_host, pool.source_export: only for TYPE_NETFS pools");
    if (in->n_source_devices > HV_MAX_POOL_DEVICES)
      return core_fail(call, CORE_INVALID_ARGUMENT, "pool.source_devices: at most %d",
                       HV_MAX_POOL_DEVICES);
    for (size_t i = 0; i < in->n_source_devices; i++) {
      char f[48];
      snprintf(f, sizeof(f), "pool.source_devices[%zu]", i);
      if ((code = check_path(call, f, in->source_devices[i], 255))) return code;
      if (strncmp(in->source_devices[i], "/dev/", 5) != 0)
        return core_fail(call, CORE_INVALID_ARGUMENT, "%s: must be a block device under /dev/", f);
    }
    break;
  default:
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "pool.type: required: TYPE_DIR, TYPE_LOGICAL or TYPE_NETFS");
  }
  if ((code = core_check_text(call, "pool.description", in->description, 1024))) return code;
  char *labels = NULL;
  if ((code = core_labels_json(call, in->labels, in->n_labels, &labels))) return code;
  size_t dl = 1;
  for (size_t i = 0; i < in->n_source_devices; i++)
    dl += strlen(in->source_devices[i]) + 1;
  char *devices = calloc(1, dl);
  for (size_t i = 0, off = 0; devices && i < in->n_source_devices; i++)
    off += (size_t)snprintf(devices + off, dl - off, "%s%s", i ? "\n" : "", in->source_devices[i]);
  pool_create_arg a = {.req = req,
                       .resp = &resp->base,
                       .host = host,
                       .labels = labels,
                       .target = target,
                       .devices = devices,
                       .out = &resp->operation};
  code = devices ? core_run_tx(c->db, call, pool_create_tx, &a)
                 : core_fail(call, CORE_INTERNAL, "out of memory");
  free(labels);
  free(devices);
  if (code == CORE_OK) {
    core_events_kick(c->ev);
    core_compute_kick(c);
  }
  return code;
}

/* ================= GetPool / ListPools ================= */

typedef struct pool_get_arg {
  core_compute *c;
  const char *host, *pool;
  Novacron__V1__Pool **out;
  hv_pool_info live;
  bool have_live;
  char uid[40];
} pool_get_arg;

static int pool_get_tx(store_conn *conn, core_tx *tx) {
  pool_get_arg *a = tx->arg;
  PGresult *r;
  int code = load_pool(tx, conn, a->host, a->pool, false, &r);
  if (code) return code;
  *a->out = core_pool_from_row(tx->call, r, 0);
  snprintf(a->uid, sizeof(a->uid), "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  return *a->out ? CORE_OK : core_fail(tx->call, CORE_INTERNAL, "out of memory");
}

static int pool_figures_tx(store_conn *conn, core_tx *tx) {
  pool_get_arg *a = tx->arg;
  char cap[24], alloc[24], avail[24];
  snprintf(cap, sizeof(cap), "%" PRId64, a->live.capacity);
  snprintf(alloc, sizeof(alloc), "%" PRId64, a->live.allocation);
  snprintf(avail, sizeof(avail), "%" PRId64, a->live.available);
  const char *p[] = {a->uid, cap, alloc, avail};
  PGresult *r;
  /* figures only: no version bump (Pool.update_time excludes refreshes) */
  int code = core_q(tx, conn, "pool_figures",
                    "UPDATE pools SET capacity_bytes = $2::bigint, allocation_bytes = $3::bigint, "
                    "available_bytes = $4::bigint WHERE id = $1::uuid",
                    4, p, &r);
  if (code == CORE_OK) PQclear(r);
  return code;
}

void core_pool_figures_now(core_compute *c, core_call *call, const char *host,
                           const char *pool_uid) {
  pool_get_arg a = {.c = c};
  snprintf(a.uid, sizeof(a.uid), "%s", pool_uid);
  char err[256], msg[256];
  /* libvirt's own figures, which it adjusts on every volume it makes or
   * deletes: no rescan of the pool */
  if (hv_pool_info_get(c->hv, host, pool_uid, false, &a.live, err, sizeof(err)) != HV_OK) return;
  core_call fc = {.alloc = call->alloc, .msg = msg, .msglen = sizeof(msg)};
  core_run_tx(c->db, &fc, pool_figures_tx, &a);
}

CORE_COMPUTE_FN(get_pool, GetPoolRequest, GetPoolResponse) {
  char host[64], pool[64];
  int code = pool_name_arg(call, "name", req->name, host, pool);
  if (code) return code;
  pool_get_arg a = {.c = c, .host = host, .pool = pool, .out = &resp->pool};
  if ((code = core_run_ro(c->db, call, pool_get_tx, &a))) return code;
  Novacron__V1__Pool *p = resp->pool;
  if (p->state != PS(ACTIVE) && p->state != PS(INACTIVE)) return CORE_OK;
  /* the latest figures, read live (best effort: an unreachable host
   * leaves the last recorded ones) */
  char err[256];
  if (hv_pool_info_get(c->hv, host, a.uid, true, &a.live, err, sizeof(err)) != HV_OK)
    return CORE_OK;
  p->capacity_bytes = a.live.capacity;
  p->allocation_bytes = a.live.allocation;
  p->available_bytes = a.live.available;
  char msg[256];
  core_call fc = {.alloc = call->alloc, .msg = msg, .msglen = sizeof(msg)};
  core_run_tx(c->db, &fc, pool_figures_tx, &a);
  return CORE_OK;
}

static const lq_enum_value pool_types[] = {{"TYPE_DIR", 1}, {"TYPE_LOGICAL", 2}, {"TYPE_NETFS", 3}};
static const lq_enum_value pool_states[] = {{"STATE_CREATING", 1},
                                            {"STATE_ACTIVE", 2},
                                            {"STATE_INACTIVE", 3},
                                            {"STATE_ERROR", 4},
                                            {"STATE_DELETING", 5}};
static const lq_field pool_fields[] = {
    LQ_NAME_FIELD("('hosts/' || h.host_id || '/pools/' || pl.pool_id)"),
    LQ_ENUM_FIELD("type", "pl.type", pool_types),
    LQ_ENUM_FIELD("state", "pl.state", pool_states),
    {.name = "autostart", .column = "pl.autostart", .type = LQ_BOOL, .filterable = true},
    {.name = "available_bytes",
     .column = "pl.available_bytes",
     .type = LQ_INT,
     .filterable = true,
     .orderable = true},
    {.name = "create_time",
     .column = "pl.created_at",
     .type = LQ_TIME,
     .filterable = true,
     .orderable = true},
    {.name = "labels", .column = "pl.labels", .type = LQ_LABELS, .filterable = true},
};
static const lq_spec pool_spec = {
    pool_fields, sizeof(pool_fields) / sizeof(pool_fields[0]), "name", "pl.id", 50, 500};

CORE_LIST_ROW(pool_row, Novacron__V1__ListPoolsResponse, pools, core_pool_from_row)

CORE_COMPUTE_FN(list_pools, ListPoolsRequest, ListPoolsResponse) {
  const char *parent = req->parent ? req->parent : "";
  char host[64] = "";
  bool all = strcmp(parent, "hosts/-") == 0;
  if (!all && (!core_name1(parent, "hosts/", host, sizeof(host)) || !core_id_valid(host)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "parent: must be hosts/{host} or hosts/-");
  char fp[96];
  snprintf(fp, sizeof(fp), "pools|%s", parent);
  core_list_req l = {.spec = &pool_spec,
                     .select = "SELECT " POOL_COLS ", count(*) OVER ()" POOL_FROM
                               " WHERE ($1::text IS NULL OR h.host_id = $1)",
                     .fixed = {all ? NULL : host},
                     .nfixed = 1,
                     CORE_LIST_PAGE(req, resp),
                     .fingerprint = fp,
                     .ncols = POOL_NCOLS,
                     .row = pool_row,
                     .total_size = &resp->total_size};
  return core_run_ro(c->db, call, core_list_tx, &l);
}

/* ================= DeletePool ================= */

typedef struct pool_delete_arg {
  const Novacron__V1__DeletePoolRequest *req;
  ProtobufCMessage *resp;
  const char *host, *pool;
  Novacron__V1__Operation **out;
} pool_delete_arg;

static int pool_delete_tx(store_conn *conn, core_tx *tx) {
  pool_delete_arg *a = tx->arg;
  const Novacron__V1__DeletePoolRequest *req = a->req;
  bool found;
  int code = core_idem_replay(tx, conn, req->request_id, &req->base, a->resp, &found);
  if (code || found) return code;
  PGresult *r;
  if ((code = load_pool(tx, conn, a->host, a->pool, true, &r))) return code;
  Novacron__V1__Pool *pool = core_pool_from_row(tx->call, r, 0);
  char uid[40];
  snprintf(uid, sizeof(uid), "%s", PQgetvalue(r, 0, 0));
  int64_t version = core_i64(r, 0, 16);
  PQclear(r);
  if (!pool) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  if ((code = core_check_etag(tx->call, req->etag, version, "the pool"))) return code;
  char busy[40], bverb[96];
  if ((code = core_op_active(tx, conn, uid, busy, bverb))) return code;
  if (busy[0]) return core_op_busy(tx->call, pool->name, busy, bverb, "");
  if (pool->state == PS(CREATING) || pool->state == PS(DELETING))
    return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                     "pool %s is %s; DeletePool needs it settled", pool->name,
                     pool_state_name(pool->state));
  const char *p[] = {uid};
  if ((code = core_q(tx, conn, "pool_volume_count",
                     "SELECT count(*) FROM volumes WHERE pool = $1::uuid", 1, p, &r)))
    return code;
  int64_t nvol = core_i64(r, 0, 0);
  PQclear(r);
  if (nvol > 0)
    return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                     "pool %s still holds %" PRId64 " volume%s; delete them first", pool->name,
                     nvol, nvol == 1 ? "" : "s");
  if ((code = core_q(tx, conn, "pool_seed_count",
                     "SELECT count(*), min(p.project_id || '/vms/' || v.vm_id) FROM vms v JOIN "
                     "projects p ON p.id = v.project WHERE v.seed_pool = $1::uuid",
                     1, p, &r)))
    return code;
  int64_t nseed = core_i64(r, 0, 0);
  char first[200];
  snprintf(first, sizeof(first), "projects/%s", PQgetvalue(r, 0, 1));
  PQclear(r);
  if (nseed > 0)
    return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                     "pool %s holds the cloud-init config drive%s of %" PRId64
                     " VM%s (%s%s); delete them first",
                     pool->name, nseed == 1 ? "" : "s", nseed, nseed == 1 ? "" : "s", first,
                     nseed > 1 ? ", ..." : "");
  if ((code = core_q(
           tx, conn, "pool_set_deleting",
           "WITH pl AS (UPDATE pools SET state = 5, state_message = '', version = "
           "version + 1, updated_at = now() WHERE id = $1::uuid RETURNING *) SELECT " POOL_COLS
           " FROM pl JOIN hosts h ON h.id = pl.host",
           1, p, &r)))
    return code;
  Novacron__V1__Pool *now = core_pool_from_row(tx->call, r, 0);
  PQclear(r);
  if (!now) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  char msg[80];
  snprintf(msg, sizeof(msg), "state %s -> DELETING", pool_state_name(pool->state) + 6);
  if ((code = core_emit(tx, conn, NULL, EV(RESOURCE_UPDATED), now->name, "", msg, &now->base)))
    return code;
  core_op_new n = {.verb = "StorageService.DeletePool",
                   .target = pool->name,
                   .target_uid = uid,
                   .project_id = "",
                   .req = &req->base,
                   .request_id = req->request_id,
                   .status_message = "queued: stop and undefine the pool"};
  if ((code = core_op_enqueue(tx, conn, &n, a->out))) return code;
  return core_idem_store(tx, conn, req->request_id, &req->base, a->resp);
}

CORE_COMPUTE_FN(delete_pool, DeletePoolRequest, DeletePoolResponse) {
  int code = core_check_request_id(call, req->request_id);
  if (code) return code;
  char host[64], pool[64];
  if ((code = pool_name_arg(call, "name", req->name, host, pool))) return code;
  pool_delete_arg a = {
      .req = req, .resp = &resp->base, .host = host, .pool = pool, .out = &resp->operation};
  code = core_run_tx(c->db, call, pool_delete_tx, &a);
  if (code == CORE_OK) {
    core_events_kick(c->ev);
    core_compute_kick(c);
  }
  return code;
}

/* ================= CreateVolume / CloneVolume ================= */

typedef struct vol_new {
  const char *project, *volume_id;
  const char *pool_name; /* hosts/h/pools/p; "" = the source's pool */
  int format;
  int64_t size;
  const char *source_volume, *source_image;
  const char *description;
  const char *labels; /* JSON; NULL = the source's */
  const char *verb;   /* "CreateVolume", "CloneVolume" */
  const ProtobufCMessage *req;
  const char *rid;
  ProtobufCMessage *resp;
  Novacron__V1__Operation **out;
} vol_new;

static int vol_new_tx(store_conn *conn, core_tx *tx) {
  vol_new *a = tx->arg;
  bool found;
  int code = core_idem_replay(tx, conn, a->rid, a->req, a->resp, &found);
  if (code || found) return code;
  char puid[40];
  if ((code = core_project_uid(tx, conn, a->project, puid)) ||
      (code = core_quota_lock(tx, conn, puid)))
    return code;
  PGresult *r;
  /* the source volume first: it supplies the default pool, size, labels */
  int64_t size = a->size;
  const char *labels = a->labels;
  char src_pool[160] = "";
  int src_format = 0;
  if (a->source_volume && *a->source_volume) {
    char sp[64], sv[64];
    if (!core_name2(a->source_volume, "volumes", sp, sizeof(sp), sv, sizeof(sv)))
      return core_fail(tx->call, CORE_INVALID_ARGUMENT,
                       "source_volume: must be projects/{project}/volumes/{volume}");
    if (strcmp(sp, a->project) != 0)
      return core_fail(tx->call, CORE_INVALID_ARGUMENT,
                       "source_volume: must be a volume of project %s", a->project);
    if ((code = core_volume_load(tx, conn, sp, sv, true, &r))) return code;
    Novacron__V1__Volume *src = core_volume_from_row(tx->call, r, 0);
    int vmstate = core_val(r, 0, VOL_C_VM_STATE) ? (int)core_i64(r, 0, VOL_C_VM_STATE) : 0;
    char suid[40];
    snprintf(suid, sizeof(suid), "%s", PQgetvalue(r, 0, 0));
    const char *slabels = PQgetvalue(r, 0, 15);
    if (!labels) labels = core_strdup(tx->call, slabels);
    PQclear(r);
    if (!src) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
    if (src->state != VS(READY) && src->state != VS(ATTACHED))
      return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                       "volume %s is %s; copying it needs STATE_READY or STATE_ATTACHED", src->name,
                       core_volume_state_name(src->state));
    if (src->state == VS(ATTACHED) && vmstate != NOVACRON__V1__VM__STATE__STATE_STOPPED)
      return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                       "volume %s is attached to %s, which is not stopped; stop the VM or detach "
                       "the volume so the copy is consistent",
                       src->name, src->attachment ? src->attachment->vm : "a VM");
    char busy[40], bverb[96];
    if ((code = core_op_active(tx, conn, suid, busy, bverb))) return code;
    if (busy[0]) return core_op_busy(tx->call, src->name, busy, bverb, a->project);
    if (size == 0) size = src->size_bytes;
    if (a->format == 0) src_format = (int)src->format; /* a copy keeps the format */
    if (size < src->size_bytes)
      return core_fail(tx->call, CORE_INVALID_ARGUMENT,
                       "size_bytes: %" PRId64 " is smaller than the source's %" PRId64
                       " (a copy can only grow)",
                       size, src->size_bytes);
    snprintf(src_pool, sizeof(src_pool), "%s", src->pool);
  }
  const char *pname = a->pool_name && *a->pool_name ? a->pool_name : src_pool;
  char host[64], pool[64];
  if ((code = pool_name_arg(tx->call, "pool", pname, host, pool))) return code;
  if ((code = load_pool(tx, conn, host, pool, true, &r))) return code;
  Novacron__V1__Pool *pl = core_pool_from_row(tx->call, r, 0);
  char pool_uid[40];
  snprintf(pool_uid, sizeof(pool_uid), "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  if (!pl) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  if (pl->state != PS(ACTIVE))
    return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                     "pool %s is %s; new volumes need STATE_ACTIVE", pl->name,
                     pool_state_name(pl->state));
  int format = a->format ? a->format : src_format;
  bool logical = pl->type == NOVACRON__V1__POOL__TYPE__TYPE_LOGICAL;
  if (format == 0) format = logical ? 2 : 1;
  if (logical && format != 2)
    return core_fail(tx->call, CORE_INVALID_ARGUMENT,
                     "format: pool %s is TYPE_LOGICAL, whose volumes are FORMAT_RAW", pl->name);
  if (size > pl->capacity_bytes && pl->capacity_bytes > 0)
    return core_fail(tx->call, CORE_INVALID_ARGUMENT,
                     "size_bytes: %" PRId64 " is beyond pool %s's capacity of %" PRId64 " bytes",
                     size, pl->name, pl->capacity_bytes);
  if (size > pl->available_bytes)
    return core_fail(tx->call, CORE_RESOURCE_EXHAUSTED,
                     "pool %s has %" PRId64 " bytes available; the volume needs %" PRId64, pl->name,
                     pl->available_bytes, size);
  if ((code = core_volume_quota(tx, conn, puid, 1, core_gib_up(size)))) return code;
  char fmt[4], sz[24];
  snprintf(fmt, sizeof(fmt), "%d", format);
  snprintf(sz, sizeof(sz), "%" PRId64, size);
  const char *p[] = {puid,
                     a->volume_id,
                     pool_uid,
                     fmt,
                     sz,
                     a->source_volume ? a->source_volume : "",
                     a->source_image ? a->source_image : "",
                     a->description ? a->description : "",
                     labels ? labels : "{}"};
  if ((code = core_q(tx, conn, "volume_insert",
                     "INSERT INTO volumes (project, volume_id, pool, format, size_bytes, "
                     "source_volume, source_image, description, labels) VALUES ($1::uuid, $2, "
                     "$3::uuid, $4::smallint, $5::bigint, $6, $7, $8, $9::jsonb) ON CONFLICT "
                     "(project, volume_id) DO NOTHING RETURNING id",
                     9, p, &r)))
    return code;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return core_fail(tx->call, CORE_ALREADY_EXISTS, "volume projects/%s/volumes/%s already exists",
                     a->project, a->volume_id);
  }
  char uid[40];
  snprintf(uid, sizeof(uid), "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  if (format == NOVACRON__V1__VOLUME__FORMAT__FORMAT_RAW &&
      (code = core_pool_book(tx, conn, pool_uid, size)))
    return code;
  const char *q[] = {uid};
  if ((code = core_q(tx, conn, "volume_get_uid",
                     "SELECT " VOL_COLS VOL_FROM " WHERE vo.id = $1::uuid", 1, q, &r)))
    return code;
  Novacron__V1__Volume *v = core_volume_from_row(tx->call, r, 0);
  PQclear(r);
  if (!v) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  if ((code = core_emit(tx, conn, NULL, EV(RESOURCE_CREATED), v->name, a->project, "created",
                        &v->base)))
    return code;
  char verb[64];
  snprintf(verb, sizeof(verb), "StorageService.%s", a->verb);
  core_op_new n = {
      .verb = verb,
      .target = v->name,
      .target_uid = uid,
      .project_uid = puid,
      .project_id = a->project,
      .req = a->req,
      .request_id = a->rid,
      .status_message = a->source_volume && *a->source_volume ? "queued: copy the volume"
                        : a->source_image && *a->source_image ? "queued: import the image"
                                                              : "queued: allocate the volume"};
  if ((code = core_op_enqueue(tx, conn, &n, a->out))) return code;
  return core_idem_store(tx, conn, a->rid, a->req, a->resp);
}

static int run_vol_new(core_compute *c, core_call *call, vol_new *a) {
  int code = core_run_tx(c->db, call, vol_new_tx, a);
  if (code == CORE_OK) {
    core_events_kick(c->ev);
    core_compute_kick(c);
  }
  return code;
}

CORE_COMPUTE_FN(create_volume, CreateVolumeRequest, CreateVolumeResponse) {
  int code = core_check_request_id(call, req->request_id);
  if (code) return code;
  char project[64];
  if (!core_name1(req->parent, "projects/", project, sizeof(project)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "parent: must be projects/{project}");
  if ((code = check_id(call, "volume_id", req->volume_id))) return code;
  const Novacron__V1__Volume *in = req->volume;
  if (!in) return core_fail(call, CORE_INVALID_ARGUMENT, "volume: required");
  if (!in->pool || !*in->pool)
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "volume.pool: required (hosts/{host}/pools/{pool})");
  char h[64], pl[64];
  if ((code = pool_name_arg(call, "volume.pool", in->pool, h, pl))) return code;
  if ((int)in->format < 0 || in->format > NOVACRON__V1__VOLUME__FORMAT__FORMAT_RAW)
    return core_fail(call, CORE_INVALID_ARGUMENT, "volume.format: unknown value %d",
                     (int)in->format);
  bool image = in->source_case == NOVACRON__V1__VOLUME__SOURCE_SOURCE_IMAGE;
  bool copy = in->source_case == NOVACRON__V1__VOLUME__SOURCE_SOURCE_VOLUME;
  if ((code = check_size(call, "volume.size_bytes", in->size_bytes, image || copy))) return code;
  if (image && (code = core_check_image(c, call, "volume.source_image",
                                        in->source_image ? in->source_image : "")))
    return code;
  if (copy && (!in->source_volume || !*in->source_volume))
    return core_fail(call, CORE_INVALID_ARGUMENT, "volume.source_volume: empty");
  if ((code = core_check_text(call, "volume.description", in->description, 1024))) return code;
  char *labels = NULL;
  if ((code = core_labels_json(call, in->labels, in->n_labels, &labels))) return code;
  vol_new a = {.project = project,
               .volume_id = req->volume_id,
               .pool_name = in->pool,
               .format = (int)in->format,
               .size = in->size_bytes,
               .source_volume = copy ? in->source_volume : NULL,
               .source_image = image ? in->source_image : NULL,
               .description = in->description,
               .labels = labels,
               .verb = "CreateVolume",
               .req = &req->base,
               .rid = req->request_id,
               .resp = &resp->base,
               .out = &resp->operation};
  code = run_vol_new(c, call, &a);
  free(labels);
  return code;
}

CORE_COMPUTE_FN(clone_volume, CloneVolumeRequest, CloneVolumeResponse) {
  int code = core_check_request_id(call, req->request_id);
  if (code) return code;
  char project[64], vol[64];
  if ((code = volume_name_arg(call, "name", req->name, project, vol))) return code;
  if ((code = check_id(call, "volume_id", req->volume_id))) return code;
  char h[64], pl[64];
  if (req->pool && *req->pool && (code = pool_name_arg(call, "pool", req->pool, h, pl)))
    return code;
  char *labels = NULL;
  if (req->n_labels && (code = core_labels_json(call, req->labels, req->n_labels, &labels)))
    return code;
  vol_new a = {.project = project,
               .volume_id = req->volume_id,
               .pool_name = req->pool,
               .format = 0,
               .size = 0,
               .source_volume = req->name,
               .description = "",
               .labels = labels,
               .verb = "CloneVolume",
               .req = &req->base,
               .rid = req->request_id,
               .resp = &resp->base,
               .out = &resp->operation};
  code = run_vol_new(c, call, &a);
  free(labels);
  return code;
}

/* ================= GetVolume / ListVolumes ================= */

typedef struct vol_get_arg {
  const char *project, *volume;
  Novacron__V1__Volume **out;
} vol_get_arg;

static int vol_get_tx(store_conn *conn, core_tx *tx) {
  vol_get_arg *a = tx->arg;
  PGresult *r;
  int code = core_volume_load(tx, conn, a->project, a->volume, false, &r);
  if (code) return code;
  *a->out = core_volume_from_row(tx->call, r, 0);
  PQclear(r);
  return *a->out ? CORE_OK : core_fail(tx->call, CORE_INTERNAL, "out of memory");
}

CORE_COMPUTE_FN(get_volume, GetVolumeRequest, GetVolumeResponse) {
  char project[64], vol[64];
  int code = volume_name_arg(call, "name", req->name, project, vol);
  if (code) return code;
  vol_get_arg a = {.project = project, .volume = vol, .out = &resp->volume};
  return core_run_ro(c->db, call, vol_get_tx, &a);
}

static const lq_enum_value vol_states[] = {{"STATE_CREATING", 1},
                                           {"STATE_READY", 2},
                                           {"STATE_ATTACHED", 3},
                                           {"STATE_ERROR", 4},
                                           {"STATE_DELETING", 5}};
static const lq_enum_value vol_formats[] = {{"FORMAT_QCOW2", 1}, {"FORMAT_RAW", 2}};
static const lq_field vol_fields[] = {
    LQ_NAME_FIELD("('projects/' || p.project_id || '/volumes/' || vo.volume_id)"),
    LQ_ENUM_FIELD("state", "vo.state", vol_states),
    LQ_ENUM_FIELD("format", "vo.format", vol_formats),
    {.name = "pool",
     .column = "('hosts/' || h.host_id || '/pools/' || pl.pool_id)",
     .type = LQ_STRING,
     .filterable = true,
     .wildcard = true},
    {.name = "attachment.vm",
     .column = "coalesce('projects/' || p.project_id || '/vms/' || av.vm_id, '')",
     .type = LQ_STRING,
     .filterable = true,
     .wildcard = true},
    {.name = "size_bytes",
     .column = "vo.size_bytes",
     .type = LQ_INT,
     .filterable = true,
     .orderable = true},
    {.name = "create_time",
     .column = "vo.created_at",
     .type = LQ_TIME,
     .filterable = true,
     .orderable = true},
    {.name = "labels", .column = "vo.labels", .type = LQ_LABELS, .filterable = true},
};
static const lq_spec vol_spec = {
    vol_fields, sizeof(vol_fields) / sizeof(vol_fields[0]), "name", "vo.id", 50, 500};

CORE_LIST_ROW(vol_row, Novacron__V1__ListVolumesResponse, volumes, core_volume_from_row)

CORE_COMPUTE_FN(list_volumes, ListVolumesRequest, ListVolumesResponse) {
  char project[64];
  if (!core_name1(req->parent ? req->parent : "", "projects/", project, sizeof(project)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "parent: must be projects/{project}");
  char fp[96];
  snprintf(fp, sizeof(fp), "volumes|%s", project);
  core_list_req l = {
      .spec = &vol_spec,
      .select = "SELECT " VOL_COLS ", count(*) OVER ()" VOL_FROM " WHERE p.project_id = $1",
      .fixed = {project},
      .nfixed = 1,
      CORE_LIST_PAGE(req, resp),
      .fingerprint = fp,
      .ncols = VOL_NCOLS,
      .row = vol_row,
      .total_size = &resp->total_size};
  return core_run_ro(c->db, call, core_list_tx, &l);
}

/* ================= ResizeVolume / DeleteVolume ================= */

typedef struct vol_verb {
  core_compute *c;
  const char *verb;
  const char *project, *volume;
  const char *etag, *rid;
  const ProtobufCMessage *req;
  ProtobufCMessage *resp;
  Novacron__V1__Operation **out;
  int transitional; /* 0: keep */
  const char *queued;
  int (*check)(core_tx *tx, store_conn *conn, struct vol_verb *a, const Novacron__V1__Volume *v,
               const PGresult *r, const char *puid);
  bool done_now; /* set by check: nothing to do (resize to the same size) */
  Novacron__V1__Volume *vol;
} vol_verb;

static int vol_verb_tx(store_conn *conn, core_tx *tx) {
  vol_verb *a = tx->arg;
  bool found;
  int code = core_idem_replay(tx, conn, a->rid, a->req, a->resp, &found);
  if (code || found) return code;
  PGresult *r;
  char qp[40];
  if ((code = core_project_uid(tx, conn, a->project, qp)) == CORE_OK)
    code = core_quota_lock(tx, conn, qp);
  if (code == CORE_NOT_FOUND)
    return core_fail(tx->call, CORE_NOT_FOUND, "volume projects/%s/volumes/%s not found",
                     a->project, a->volume);
  if (code) return code;
  if ((code = core_volume_load(tx, conn, a->project, a->volume, true, &r))) return code;
  Novacron__V1__Volume *v = core_volume_from_row(tx->call, r, 0);
  char uid[40], puid[40];
  snprintf(uid, sizeof(uid), "%s", PQgetvalue(r, 0, 0));
  snprintf(puid, sizeof(puid), "%s", PQgetvalue(r, 0, VOL_C_PROJECT_UID));
  int64_t version = core_i64(r, 0, 16);
  if (!v) {
    PQclear(r);
    return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  }
  a->vol = v;
  if ((code = core_check_etag(tx->call, a->etag, version, "the volume"))) goto out;
  char busy[40], bverb[96];
  if ((code = core_op_active(tx, conn, uid, busy, bverb))) goto out;
  if (busy[0]) {
    code = core_op_busy(tx->call, v->name, busy, bverb, a->project);
    goto out;
  }
  if ((code = a->check(tx, conn, a, v, r, puid))) goto out;
  PQclear(r);
  r = NULL;
  if (a->done_now) {
    *a->out = core_op_done_now(tx->call, a->verb, v->name, &v->base);
    return *a->out ? core_idem_store(tx, conn, a->rid, a->req, a->resp)
                   : core_fail(tx->call, CORE_INTERNAL, "out of memory");
  }
  if (a->transitional && (code = core_volume_set(tx, conn, NULL, uid, a->transitional, "", NULL)))
    return code;
  char verb[64];
  snprintf(verb, sizeof(verb), "StorageService.%s", a->verb);
  core_op_new n = {.verb = verb,
                   .target = v->name,
                   .target_uid = uid,
                   .project_uid = puid,
                   .project_id = a->project,
                   .req = a->req,
                   .request_id = a->rid,
                   .status_message = a->queued};
  if ((code = core_op_enqueue(tx, conn, &n, a->out))) return code;
  return core_idem_store(tx, conn, a->rid, a->req, a->resp);
out:
  PQclear(r);
  return code;
}

static int run_vol_verb(core_compute *c, core_call *call, vol_verb *a, const char *name) {
  int code = core_check_request_id(call, a->rid);
  if (code) return code;
  char project[64], vol[64];
  if ((code = volume_name_arg(call, "name", name, project, vol))) return code;
  a->c = c;
  a->project = project;
  a->volume = vol;
  code = core_run_tx(c->db, call, vol_verb_tx, a);
  if (code == CORE_OK) {
    core_events_kick(c->ev);
    core_compute_kick(c);
  }
  return code;
}

static int resize_check(core_tx *tx, store_conn *conn, vol_verb *a, const Novacron__V1__Volume *v,
                        const PGresult *r, const char *puid) {
  const Novacron__V1__ResizeVolumeRequest *req = (const void *)a->req;
  if (v->state != VS(READY) && v->state != VS(ATTACHED))
    return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                     "volume %s is %s; ResizeVolume needs STATE_READY or STATE_ATTACHED", v->name,
                     core_volume_state_name(v->state));
  if (req->size_bytes == v->size_bytes) {
    a->done_now = true;
    return CORE_OK;
  }
  if (req->size_bytes < v->size_bytes) {
    if (!req->allow_shrink)
      return core_fail(tx->call, CORE_INVALID_ARGUMENT,
                       "size_bytes: %" PRId64 " is smaller than the current %" PRId64
                       "; shrinking loses data and needs allow_shrink",
                       req->size_bytes, v->size_bytes);
    if (v->attachment)
      return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                       "volume %s is attached to %s; detach it before shrinking", v->name,
                       v->attachment->vm);
    return CORE_OK;
  }
  int64_t grow = req->size_bytes - v->size_bytes;
  int64_t avail = 0;
  const char *p[] = {PQgetvalue(r, 0, VOL_C_POOL_UID)};
  PGresult *pr;
  int code =
      core_q(tx, conn, "pool_available",
             "SELECT available_bytes, capacity_bytes FROM pools WHERE id = $1::uuid FOR UPDATE", 1,
             p, &pr);
  if (code) return code;
  avail = core_i64(pr, 0, 0);
  int64_t cap = core_i64(pr, 0, 1);
  PQclear(pr);
  if (cap > 0 && req->size_bytes > cap)
    return core_fail(tx->call, CORE_INVALID_ARGUMENT,
                     "size_bytes: %" PRId64 " is beyond pool %s's capacity of %" PRId64 " bytes",
                     req->size_bytes, v->pool, cap);
  if (grow > avail)
    return core_fail(tx->call, CORE_RESOURCE_EXHAUSTED,
                     "pool %s has %" PRId64 " bytes available; growing needs %" PRId64, v->pool,
                     avail, grow);
  if (v->format == NOVACRON__V1__VOLUME__FORMAT__FORMAT_RAW &&
      (code = core_pool_book(tx, conn, p[0], grow)))
    return code;
  return core_volume_quota(tx, conn, puid, 0,
                           core_gib_up(req->size_bytes) - core_gib_up(v->size_bytes));
}

CORE_COMPUTE_FN(resize_volume, ResizeVolumeRequest, ResizeVolumeResponse) {
  int code = check_size(call, "size_bytes", req->size_bytes, false);
  if (code) return code;
  vol_verb a = {.verb = "ResizeVolume",
                .etag = req->etag,
                .rid = req->request_id,
                .req = &req->base,
                .resp = &resp->base,
                .out = &resp->operation,
                .queued = "queued: resize the volume",
                .check = resize_check};
  return run_vol_verb(c, call, &a, req->name);
}

static int delete_check(core_tx *tx, store_conn *conn, vol_verb *a, const Novacron__V1__Volume *v,
                        const PGresult *r, const char *puid) {
  (void)conn, (void)r, (void)puid, (void)a;
  if (v->attachment)
    return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                     "volume %s is attached to %s as %s; detach it first", v->name,
                     v->attachment->vm, v->attachment->target_device);
  if (v->state == VS(CREATING) || v->state == VS(DELETING))
    return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                     "volume %s is %s; DeleteVolume needs STATE_READY or STATE_ERROR", v->name,
                     core_volume_state_name(v->state));
  return CORE_OK;
}

CORE_COMPUTE_FN(delete_volume, DeleteVolumeRequest, DeleteVolumeResponse) {
  vol_verb a = {
      .verb = "DeleteVolume",
      .etag = req->etag,
      .rid = req->request_id,
      .req = &req->base,
      .resp = &resp->base,
      .out = &resp->operation,
      .transitional = VS(DELETING),
      .queued = req->wipe ? "queued: wipe and delete the volume" : "queued: delete the volume",
      .check = delete_check};
  return run_vol_verb(c, call, &a, req->name);
}
