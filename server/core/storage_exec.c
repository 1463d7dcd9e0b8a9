/*
 * storage_exec.c - the executors of StorageService operations, the libvirt
 * side of volumes that VmService shares (new volumes of CreateVm and
 * AttachVolume), and the heartbeat / restart work on pools.
 *
 * Like the VM executors they converge: a pool or volume that libvirt
 * already has under our name and UUID is taken, not failed, so an
 * operation run again after a crash finishes. A failed creation removes
 * what it made on the host and then the row, in that order: a database
 * row and a libvirt object exist both or neither.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/storage_int.h"
#include "util/fetch.h"
#include "util/log.h"

#define PS(x) NOVACRON__V1__POOL__STATE__STATE_##x
#define VS(x) NOVACRON__V1__VOLUME__STATE__STATE_##x
#define EV(x) NOVACRON__V1__EVENT__TYPE__TYPE_##x

/* ================= pools ================= */

typedef struct pool_ctx {
  Novacron__V1__Pool *pool;
  char uid[40], host[64];
} pool_ctx;

typedef struct pool_load_arg {
  pool_ctx *p;
  const char *uid;
} pool_load_arg;

static int pool_load_tx(store_conn *conn, core_tx *tx) {
  pool_load_arg *a = tx->arg;
  PGresult *r;
  int code =
      core_q_one(tx, conn, "pool_get_by_uid",
                 "SELECT " POOL_COLS POOL_FROM " WHERE pl.id = $1::uuid", a->uid, "pool", &r);
  if (code) return code;
  a->p->pool = core_pool_from_row(tx->call, r, 0);
  snprintf(a->p->uid, sizeof(a->p->uid), "%s", PQgetvalue(r, 0, 0));
  snprintf(a->p->host, sizeof(a->p->host), "%s", PQgetvalue(r, 0, 1));
  PQclear(r);
  return a->p->pool ? CORE_OK : core_fail(tx->call, CORE_INTERNAL, "out of memory");
}

static int pool_load(core_compute *c, core_call *call, const char *uid, pool_ctx *p) {
  memset(p, 0, sizeof(*p));
  pool_load_arg a = {.p = p, .uid = uid};
  return core_run_ro(c->db, call, pool_load_tx, &a);
}

static void pool_spec(const pool_ctx *p, hv_pool_spec *s) {
  memset(s, 0, sizeof(*s));
  const Novacron__V1__Pool *pl = p->pool;
  const char *id = strrchr(pl->name, '/');
  snprintf(s->name, sizeof(s->name), "%s", id ? id + 1 : pl->name);
  snprintf(s->uuid, sizeof(s->uuid), "%.36s", p->uid);
  s->type = (int)pl->type; /* Pool.Type numbers are HV_POOL_* */
  snprintf(s->target_path, sizeof(s->target_path), "%s", pl->target_path);
  for (size_t i = 0; i < pl->n_source_devices && i < HV_MAX_POOL_DEVICES; i++)
    snprintf(s->devices[s->ndevices++], sizeof(s->devices[0]), "%s", pl->source_devices[i]);
  snprintf(s->source_host, sizeof(s->source_host), "%s", pl->source_host);
  snprintf(s->source_export, sizeof(s->source_export), "%s", pl->source_export);
  s->autostart = pl->autostart;
}

typedef struct pool_apply {
  const char *uid;
  int state; /* 0: delete the row */
  const char *message;
  const hv_pool_info *info;
} pool_apply;

/* Records a pool's state (and figures), or removes its row, with its
 * event; the response is the pool. */
static int apply_pool(store_conn *conn, core_tx *tx, core_op *op, ProtobufCMessage **resp,
                      void *arg) {
  pool_apply *a = arg;
  const char *k[] = {a->uid};
  PGresult *r;
  int code =
      core_q(tx, conn, "pool_lock_by_uid",
             "SELECT " POOL_COLS POOL_FROM " WHERE pl.id = $1::uuid FOR UPDATE OF pl", 1, k, &r);
  if (code) return code;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return CORE_OK;
  }
  Novacron__V1__Pool *pool = core_pool_from_row(tx->call, r, 0);
  PQclear(r);
  if (!pool) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  if (a->state == 0) {
    if ((code = core_q(tx, conn, "pool_delete", "DELETE FROM pools WHERE id = $1::uuid", 1, k, &r)))
      return code;
    PQclear(r);
    pool->state = PS(DELETING);
    *resp = &pool->base;
    return core_emit(tx, conn, op, EV(RESOURCE_DELETED), pool->name, "", "deleted", &pool->base);
  }
  char st[8], cap[24], alloc[24], avail[24];
  snprintf(st, sizeof(st), "%d", a->state);
  snprintf(cap, sizeof(cap), "%" PRId64, a->info ? a->info->capacity : pool->capacity_bytes);
  snprintf(alloc, sizeof(alloc), "%" PRId64,
           a->info ? a->info->allocation : pool->allocation_bytes);
  snprintf(avail, sizeof(avail), "%" PRId64, a->info ? a->info->available : pool->available_bytes);
  const char *p[] = {a->uid, st, a->message ? a->message : "", cap, alloc, avail};
  if ((code = core_q(tx, conn, "pool_set",
                     "WITH pl AS (UPDATE pools SET state = $2::smallint, state_message = $3, "
                     "capacity_bytes = $4::bigint, allocation_bytes = $5::bigint, "
                     "available_bytes = $6::bigint, version = version + 1, updated_at = now() "
                     "WHERE id = $1::uuid RETURNING *) SELECT " POOL_COLS
                     " FROM pl JOIN hosts h ON h.id = pl.host",
                     6, p, &r)))
    return code;
  Novacron__V1__Pool *now = core_pool_from_row(tx->call, r, 0);
  PQclear(r);
  if (!now) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  *resp = &now->base;
  static const char *const names[] = {"UNSPECIFIED", "CREATING", "ACTIVE",
                                      "INACTIVE",    "ERROR",    "DELETING"};
  char msg[96];
  snprintf(msg, sizeof(msg), "state %s -> %s", names[pool->state <= 5 ? pool->state : 0],
           names[a->state <= 5 ? a->state : 0]);
  return core_emit(tx, conn, op, EV(RESOURCE_UPDATED), now->name, "", msg, &now->base);
}

static int exec_create_pool(core_op *op) {
  pool_ctx p;
  int code = pool_load(op->c, &op->call, op->target_uid, &p);
  if (code) return core_op_finish(op, code, op->msg, NULL, NULL);
  pool_apply rm = {.uid = p.uid, .state = 0};
  if (core_op_progress(op, 10, "defining the pool")) {
    char e[256];
    hv_pool_delete(op->c->hv, p.host, p.uid, false, e, sizeof(e));
    return core_op_finish(op, CORE_CANCELLED, "cancelled", apply_pool, &rm);
  }
  hv_pool_spec spec;
  pool_spec(&p, &spec);
  hv_pool_info info;
  char err[512];
  code = hv_pool_create(op->c->hv, p.host, &spec, &info, err, sizeof(err));
  if (code) {
    char m[700];
    core_hv_failed(m, sizeof(m), code, "creating the pool", p.host, err);
    /* both or neither: remove whatever libvirt kept under our UUID (a
     * defined pool whose build failed), then the row */
    if (code == HV_UNAVAILABLE) { /* kept, in ERROR, for DeletePool to converge */
      pool_apply keep = {.uid = p.uid, .state = PS(ERROR), .message = m};
      return core_op_finish(op, code, m, apply_pool, &keep);
    }
    if (code != HV_ALREADY_EXISTS) {
      char e[256];
      hv_pool_delete(op->c->hv, p.host, p.uid, false, e, sizeof(e));
    }
    return core_op_finish(op, code, m, apply_pool, &rm);
  }
  pool_apply ok = {.uid = p.uid, .state = info.active ? PS(ACTIVE) : PS(INACTIVE), .info = &info};
  return core_op_finish(op, CORE_OK, NULL, apply_pool, &ok);
}

static int exec_delete_pool(core_op *op) {
  const Novacron__V1__DeletePoolRequest *req = (const void *)op->req;
  pool_ctx p;
  int code = pool_load(op->c, &op->call, op->target_uid, &p);
  if (code) return core_op_finish(op, code, op->msg, NULL, NULL);
  char err[512];
  core_op_progress(op, 20,
                   req->delete_storage ? "stopping the pool and removing its storage"
                                       : "stopping and undefining the pool");
  code = hv_pool_delete(op->c->hv, p.host, p.uid, req->delete_storage, err, sizeof(err));
  if (code == HV_NOT_FOUND) code = HV_OK; /* gone already: converged */
  if (code) {
    char m[700];
    core_hv_failed(m, sizeof(m), code, "deleting the pool", p.host, err);
    hv_pool_info info;
    char e[256];
    int st = PS(ERROR);
    if (hv_pool_info_get(op->c->hv, p.host, p.uid, false, &info, e, sizeof(e)) == HV_OK)
      st = info.active ? PS(ACTIVE) : PS(INACTIVE);
    pool_apply back = {.uid = p.uid, .state = st, .message = m};
    return core_op_finish(op, code, m, apply_pool, &back);
  }
  pool_apply rm = {.uid = p.uid, .state = 0};
  return core_op_finish(op, CORE_OK, NULL, apply_pool, &rm);
}

/* ================= volumes: the libvirt side ================= */

/* What a volume's libvirt work needs, read from its row (and its source's). */
typedef struct vol_ctx {
  Novacron__V1__Volume *vol;
  char uid[40], host[64], pool_uid[40], lvname[140], path[512];
  char vm_uid[40];
  int vm_state;
  char src_host[64], src_pool_uid[40], src_lvname[140];
  bool have_src;
  bool src_missing; /* the source volume was deleted since */
} vol_ctx;

typedef struct vol_load_arg {
  vol_ctx *v;
  const char *uid;
} vol_load_arg;

static int vol_load_tx(store_conn *conn, core_tx *tx) {
  vol_load_arg *a = tx->arg;
  vol_ctx *v = a->v;
  PGresult *r;
  int code =
      core_q_one(tx, conn, "volume_get_by_uid",
                 "SELECT " VOL_COLS VOL_FROM " WHERE vo.id = $1::uuid", a->uid, "volume", &r);
  if (code) return code;
  v->vol = core_volume_from_row(tx->call, r, 0);
  snprintf(v->uid, sizeof(v->uid), "%s", PQgetvalue(r, 0, 0));
  snprintf(v->host, sizeof(v->host), "%s", PQgetvalue(r, 0, 3));
  snprintf(v->pool_uid, sizeof(v->pool_uid), "%s", PQgetvalue(r, 0, VOL_C_POOL_UID));
  snprintf(v->path, sizeof(v->path), "%s", PQgetvalue(r, 0, VOL_C_PATH));
  core_volume_lvname(PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2), v->lvname, sizeof(v->lvname));
  snprintf(v->vm_uid, sizeof(v->vm_uid), "%s",
           core_val(r, 0, VOL_C_VM_UID) ? PQgetvalue(r, 0, VOL_C_VM_UID) : "");
  v->vm_state = core_val(r, 0, VOL_C_VM_STATE) ? (int)core_i64(r, 0, VOL_C_VM_STATE) : 0;
  PQclear(r);
  if (!v->vol) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  if (v->vol->source_case == NOVACRON__V1__VOLUME__SOURCE_SOURCE_VOLUME) {
    char sp[64], sv[64];
    if (!core_name2(v->vol->source_volume, "volumes", sp, sizeof(sp), sv, sizeof(sv)))
      return core_fail(tx->call, CORE_INTERNAL, "bad source volume name");
    if ((code = core_volume_load(tx, conn, sp, sv, false, &r)) == CORE_NOT_FOUND) {
      /* only a copy still to be made needs it (Volume.source_volume stays
       * as the record of the origin after the source is deleted) */
      v->src_missing = true;
      return CORE_OK;
    }
    if (code) return code;
    snprintf(v->src_host, sizeof(v->src_host), "%s", PQgetvalue(r, 0, 3));
    snprintf(v->src_pool_uid, sizeof(v->src_pool_uid), "%s", PQgetvalue(r, 0, VOL_C_POOL_UID));
    core_volume_lvname(sp, sv, v->src_lvname, sizeof(v->src_lvname));
    v->have_src = true;
    PQclear(r);
  }
  return CORE_OK;
}

static int vol_load(core_compute *c, core_call *call, const char *uid, vol_ctx *v) {
  memset(v, 0, sizeof(*v));
  vol_load_arg a = {.v = v, .uid = uid};
  return core_run_ro(c->db, call, vol_load_tx, &a);
}

typedef struct vol_made {
  const char *uid;
  const hv_vol_info *info;
} vol_made;

static int vol_made_tx(store_conn *conn, core_tx *tx) {
  vol_made *a = tx->arg;
  char alloc[24], cap[24];
  snprintf(alloc, sizeof(alloc), "%" PRId64, a->info->allocation);
  /* an import of size 0 takes the image's size, in whole MiB */
  int64_t size = (a->info->capacity + MIB - 1) / MIB * MIB;
  snprintf(cap, sizeof(cap), "%" PRId64, size);
  const char *k[] = {a->uid};
  PGresult *r;
  /* the project's quota row first, in the order every volume
   * transaction takes its locks */
  int code = core_q(tx, conn, "volume_project", "SELECT project FROM volumes WHERE id = $1::uuid",
                    1, k, &r);
  if (code) return code;
  if (PQntuples(r) && (code = core_quota_lock(tx, conn, PQgetvalue(r, 0, 0)))) {
    PQclear(r);
    return code;
  }
  PQclear(r);
  code = core_q(tx, conn, "volume_size_lock",
                "SELECT size_bytes, project FROM volumes WHERE id = $1::uuid FOR UPDATE", 1, k, &r);
  if (code) return code;
  bool sized_now = PQntuples(r) > 0 && core_i64(r, 0, 0) == 0;
  char project[40];
  snprintf(project, sizeof(project), "%s", PQntuples(r) ? PQgetvalue(r, 0, 1) : "");
  PQclear(r);
  /* an import's size is only known now: the quota is checked before it is
   * recorded (the transaction rolls back if over) */
  if (sized_now && (code = core_volume_quota(tx, conn, project, 0, core_gib_up(size)))) return code;
  const char *p[] = {a->uid, a->info->path, alloc, cap};
  code = core_q(tx, conn, "volume_made",
                "UPDATE volumes SET path = $2, allocation_bytes = $3::bigint, size_bytes = CASE "
                "WHEN size_bytes = 0 THEN $4::bigint ELSE size_bytes END WHERE id = $1::uuid",
                4, p, &r);
  if (code == CORE_OK) PQclear(r);
  return code;
}

/* ---- an image downloaded from a URL ---- */

typedef struct download {
  core_op *op;
  const vol_ctx *v;
  hv_upload *up;
  hv_vol_info *info; /* an ALREADY_EXISTS answer's */
  int code;          /* the HV code of a failure the sink met */
  int64_t length, got;
  int64_t next_report_ms;
} download;

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int dl_begin(void *arg, int64_t length, char *err, size_t errlen) {
  download *d = arg;
  const vol_ctx *v = d->v;
  d->length = length;
  if (length < 0) {
    d->code = HV_FAILED_PRECONDITION;
    snprintf(err, errlen,
             "the server sent no Content-Length; NovaCron needs the image's size "
             "before it stores it");
    return 1;
  }
  if (length > VOLUME_MAX_BYTES) {
    d->code = HV_INVALID_ARGUMENT;
    snprintf(err, errlen, "the image is %" PRId64 " bytes, more than the 64 TiB a volume holds",
             length);
    return 1;
  }
  hv_pool_info pi;
  char e[256];
  if (hv_pool_info_get(d->op->c->hv, v->host, v->pool_uid, false, &pi, e, sizeof(e)) == HV_OK &&
      length > pi.available) {
    d->code = HV_RESOURCE_EXHAUSTED;
    snprintf(err, errlen,
             "the image is %" PRId64 " bytes; pool %s has %" PRId64 " available to receive it",
             length, v->vol->pool, pi.available);
    return 1;
  }
  d->code = hv_vol_upload_open(d->op->c->hv, v->host, v->pool_uid, v->lvname, length, &d->up,
                               d->info, err, errlen);
  return d->code != HV_OK;
}

static int dl_data(void *arg, const void *buf, size_t n, char *err, size_t errlen) {
  download *d = arg;
  if ((d->code = hv_vol_upload_write(d->up, buf, n, err, errlen)) != HV_OK) return 1;
  d->got += (int64_t)n;
  return 0;
}

/* Progress every 5 s (each report is an event), and the cancellation
 * check, also while nothing arrives. */
static int dl_tick(void *arg, char *err, size_t errlen) {
  download *d = arg;
  int64_t now = mono_ms();
  if (now >= d->next_report_ms) {
    d->next_report_ms = now + 5000;
    char status[96];
    snprintf(status, sizeof(status), "downloaded %" PRId64 " of %" PRId64 " MiB", d->got / MIB,
             d->length / MIB);
    int pct = d->length > 0 ? 5 + (int)(85 * d->got / d->length) : 5;
    if (core_op_progress(d->op, pct, status)) {
      d->code = HV_CANCELLED;
      snprintf(err, errlen, "cancelled during the download");
      return 1;
    }
  }
  return 0;
}

static int fetch_volume(core_op *op, const vol_ctx *v, const char *fmt, hv_vol_info *info,
                        char *err, size_t errlen) {
  char url[2100], why[200];
  if (!nc_url_normalize(v->vol->source_image, url, sizeof(url), why, sizeof(why)))
    return snprintf(err, errlen, "source_image: %s", why), HV_INVALID_ARGUMENT;
  core_op_progress(op, 5, "downloading the image");
  /* the list may have narrowed since the request (a restart in between) */
  int code = core_check_image(op->c, &op->call, "source_image", url);
  if (code) return snprintf(err, errlen, "%s", op->msg), code;
  download d = {.op = op, .v = v, .info = info, .next_report_ms = mono_ms() + 5000};
  nc_fetch_sink sink = {.begin = dl_begin, .data = dl_data, .tick = dl_tick, .arg = &d};
  nc_fetch_status st = nc_fetch(url, NULL, &sink, err, errlen);
  switch (st) {
  case NC_FETCH_OK: break;
  case NC_FETCH_ABORTED: code = d.code ? d.code : HV_INTERNAL; break;
  case NC_FETCH_NOT_FOUND: code = HV_NOT_FOUND; break;
  case NC_FETCH_INTERNAL: code = HV_INTERNAL; break;
  /* the image's server, not the host: the volume's row is not in doubt */
  case NC_FETCH_REFUSED:
  case NC_FETCH_UNREACHABLE: code = HV_FAILED_PRECONDITION; break;
  }
  if (!d.up) return code; /* nothing was made (or ALREADY_EXISTS with *info) */
  char e2[512];
  if (code) {
    hv_vol_upload_finish(d.up, false, fmt, 0, NULL, e2, sizeof(e2));
    return code;
  }
  core_op_progress(op, 92, "converting the image");
  return hv_vol_upload_finish(d.up, true, fmt, v->vol->size_bytes, info, err, errlen);
}

/* The libvirt call that makes a volume's content: blank, a copy (same or
 * another host) or an image import. */
static int make_volume(core_op *op, const vol_ctx *v, const char *fmt, hv_vol_info *info, char *err,
                       size_t errlen) {
  const Novacron__V1__Volume *vol = v->vol;
  hv *h = op->c->hv;
  if (v->have_src && strcmp(v->src_host, v->host) == 0)
    return hv_vol_clone(h, v->host, v->pool_uid, v->lvname, fmt, vol->size_bytes, v->src_pool_uid,
                        v->src_lvname, info, err, errlen);
  if (v->have_src)
    return hv_vol_copy(h, v->host, v->pool_uid, v->lvname, fmt, vol->size_bytes, v->src_host,
                       v->src_pool_uid, v->src_lvname, info, err, errlen);
  if (vol->source_case == NOVACRON__V1__VOLUME__SOURCE_SOURCE_IMAGE &&
      core_image_is_url(vol->source_image))
    return fetch_volume(op, v, fmt, info, err, errlen);
  if (vol->source_case == NOVACRON__V1__VOLUME__SOURCE_SOURCE_IMAGE)
    return hv_vol_import(h, v->host, v->pool_uid, v->lvname, fmt, vol->size_bytes,
                         vol->source_image, info, err, errlen);
  return hv_vol_create(h, v->host, v->pool_uid, v->lvname, fmt, vol->size_bytes, info, err, errlen);
}

int core_volume_materialize(core_op *op, const char *vol_uid, char *err, size_t errlen) {
  vol_ctx v;
  int code = vol_load(op->c, &op->call, vol_uid, &v);
  if (code) return snprintf(err, errlen, "%s", op->msg), code;
  const Novacron__V1__Volume *vol = v.vol;
  if (v.src_missing && !v.path[0])
    return snprintf(err, errlen, "the source volume %s is gone", vol->source_volume),
           CORE_FAILED_PRECONDITION;
  const char *fmt = vol->format == NOVACRON__V1__VOLUME__FORMAT__FORMAT_RAW ? "raw" : "qcow2";
  hv_vol_info info;
  memset(&info, 0, sizeof(info));
  for (int round = 0; round < 2; round++) {
    code = make_volume(op, &v, fmt, &info, err, errlen);
    if (code != HV_ALREADY_EXISTS) break;
    /* A volume of our name is there already. Recorded: an earlier run made
     * it, and the rerun converges. Not recorded, on a rerun: an earlier run
     * was interrupted while making it, so its content cannot be trusted and
     * it is made again. On the first run: it is someone else's, and stays
     * untouched. */
    if (v.path[0]) {
      code = HV_OK;
      break;
    }
    if (op->attempts <= 1 || round > 0) {
      snprintf(err, errlen,
               "the pool on hosts/%s already has a volume named %s that NovaCron did not make",
               v.host, v.lvname);
      return CORE_ALREADY_EXISTS;
    }
    char e[256];
    hv_vol_delete(op->c->hv, v.host, v.pool_uid, v.lvname, false, e, sizeof(e));
  }
  if (code) return code;
  vol_made m = {.uid = v.uid, .info = &info};
  char msg[256];
  core_call call = {.alloc = op->call.alloc, .msg = msg, .msglen = sizeof(msg)};
  if ((code = core_run_tx(op->c->db, &call, vol_made_tx, &m))) {
    /* not recorded (an import over the quota, the database away): made by
     * this run, so it goes, or nobody would ever delete it */
    if (!v.path[0]) {
      char e[256];
      hv_vol_delete(op->c->hv, v.host, v.pool_uid, v.lvname, false, e, sizeof(e));
    }
    return snprintf(err, errlen, "%s", msg), code;
  }
  core_pool_figures_now(op->c, &op->call, v.host, v.pool_uid);
  return CORE_OK;
}

int core_volume_unmaterialize(core_op *op, const char *vol_uid, bool wipe, char *err,
                              size_t errlen) {
  vol_ctx v;
  int code = vol_load(op->c, &op->call, vol_uid, &v);
  if (code == CORE_NOT_FOUND) return CORE_OK;
  if (code) return snprintf(err, errlen, "%s", op->msg), code;
  if (v.vol->source_case == NOVACRON__V1__VOLUME__SOURCE_SOURCE_IMAGE &&
      core_image_is_url(v.vol->source_image)) {
    /* what an interrupted download left: "<name>.part" is always ours */
    char part[300], e[256];
    snprintf(part, sizeof(part), "%s.part", v.lvname);
    hv_vol_delete(op->c->hv, v.host, v.pool_uid, part, false, e, sizeof(e));
  }
  /* only a volume whose making was recorded is ours to delete: a name
   * clash with someone else's volume fails the create without touching it */
  if (!v.path[0]) return CORE_OK;
  code = hv_vol_delete(op->c->hv, v.host, v.pool_uid, v.lvname, wipe, err, errlen);
  if (code == HV_OK) core_pool_figures_now(op->c, &op->call, v.host, v.pool_uid);
  return code == HV_NOT_FOUND ? CORE_OK : code;
}

/* ================= volume operations ================= */

typedef struct vol_apply {
  const char *uid;
  int state;     /* 0: delete the row */
  int64_t size;  /* > 0: record the new size */
  int64_t alloc; /* >= 0: record the allocation (with size) */
  const char *message;
} vol_apply;

static int apply_volume(store_conn *conn, core_tx *tx, core_op *op, ProtobufCMessage **resp,
                        void *arg) {
  vol_apply *a = arg;
  const char *k[] = {a->uid};
  PGresult *r;
  int code =
      core_q(tx, conn, "volume_lock_by_uid",
             "SELECT " VOL_COLS VOL_FROM " WHERE vo.id = $1::uuid FOR UPDATE OF vo", 1, k, &r);
  if (code) return code;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return CORE_OK;
  }
  Novacron__V1__Volume *v = core_volume_from_row(tx->call, r, 0);
  char project[64];
  snprintf(project, sizeof(project), "%s", PQgetvalue(r, 0, 1));
  PQclear(r);
  if (!v) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  if (a->state == 0) {
    if ((code = core_q(tx, conn, "volume_delete", "DELETE FROM volumes WHERE id = $1::uuid", 1, k,
                       &r)))
      return code;
    PQclear(r);
    v->state = VS(DELETING);
    *resp = &v->base;
    return core_emit(tx, conn, op, EV(RESOURCE_DELETED), v->name, project, "deleted", &v->base);
  }
  if (a->size > 0) {
    char sz[24], al[24];
    snprintf(sz, sizeof(sz), "%" PRId64, a->size);
    snprintf(al, sizeof(al), "%" PRId64, a->alloc);
    const char *p[] = {a->uid, sz, al};
    if ((code = core_q(tx, conn, "volume_set_size",
                       "UPDATE volumes SET size_bytes = $2::bigint, allocation_bytes = CASE WHEN "
                       "$3::bigint >= 0 THEN $3::bigint ELSE allocation_bytes END WHERE id = "
                       "$1::uuid",
                       3, p, &r)))
      return code;
    PQclear(r);
  }
  Novacron__V1__Volume *now = NULL;
  if ((code = core_volume_set(tx, conn, op, a->uid, a->state, a->message, &now))) return code;
  *resp = &now->base;
  return CORE_OK;
}

/* As core_hv_failed, for executors that do not hold the volume's host. */
static void vol_failed(char *m, size_t mlen, int code, const char *what, const char *err) {
  if (code == HV_UNAVAILABLE) {
    nc_warnf("%s: %s", what, err);
    snprintf(m, mlen, "%s failed: its host cannot be reached", what);
  } else {
    snprintf(m, mlen, "%s failed: %s", what, err);
  }
}

/* CreateVolume and CloneVolume: the operation targets the new row. */
static int exec_new_volume(core_op *op) {
  vol_apply rm = {.uid = op->target_uid, .state = 0};
  char err[512];
  if (core_op_progress(op, 10, "creating the volume")) {
    core_volume_unmaterialize(op, op->target_uid, false, err, sizeof(err));
    return core_op_finish(op, CORE_CANCELLED, "cancelled", apply_volume, &rm);
  }
  int code = core_volume_materialize(op, op->target_uid, err, sizeof(err));
  if (code) {
    char m[700];
    vol_failed(m, sizeof(m), code, "creating the volume", err);
    if (code == HV_UNAVAILABLE) {
      /* the host may hold it or not: the row stays, in ERROR, for
       * DeleteVolume to converge once the host answers */
      vol_apply keep = {.uid = op->target_uid, .state = VS(ERROR), .message = m};
      return core_op_finish(op, code, m, apply_volume, &keep);
    }
    char e[256];
    core_volume_unmaterialize(op, op->target_uid, false, e, sizeof(e));
    /* both or neither: the row goes with the failed creation */
    return core_op_finish(op, code, m, apply_volume, &rm);
  }
  vol_apply ok = {.uid = op->target_uid, .state = VS(READY)};
  return core_op_finish(op, CORE_OK, NULL, apply_volume, &ok);
}

static int exec_resize_volume(core_op *op) {
  const Novacron__V1__ResizeVolumeRequest *req = (const void *)op->req;
  vol_ctx v;
  int code = vol_load(op->c, &op->call, op->target_uid, &v);
  if (code) return core_op_finish(op, code, op->msg, NULL, NULL);
  int state = v.vol->state;
  if (core_op_progress(op, 10, "resizing the volume"))
    return core_op_finish(op, CORE_CANCELLED, "cancelled", NULL, NULL);
  char err[512];
  bool live = false;
  if (v.vm_uid[0] && (v.vm_state == NOVACRON__V1__VM__STATE__STATE_RUNNING ||
                      v.vm_state == NOVACRON__V1__VM__STATE__STATE_PAUSED)) {
    /* attached to a running guest: qemu grows the image and tells the
     * guest (virDomainBlockResize) */
    code = hv_domain_block_resize(op->c->hv, v.host, v.vm_uid, v.vol->attachment->target_device,
                                  req->size_bytes, err, sizeof(err));
    live = code == HV_OK;
    /* a disk hot-plugged where the driver could only change the persistent
     * definition (the test driver) is not in the live domain: the volume
     * itself is resized */
    if (code == HV_UNIMPLEMENTED || code == HV_FAILED_PRECONDITION || code == HV_NOT_FOUND)
      code =
          hv_vol_resize(op->c->hv, v.host, v.pool_uid, v.lvname, req->size_bytes, err, sizeof(err));
  } else {
    code =
        hv_vol_resize(op->c->hv, v.host, v.pool_uid, v.lvname, req->size_bytes, err, sizeof(err));
  }
  if (code) {
    char m[700];
    core_hv_failed(m, sizeof(m), code, "resizing the volume", v.host, err);
    vol_apply back = {.uid = op->target_uid, .state = state, .message = m};
    return core_op_finish(op, code, m, apply_volume, &back);
  }
  (void)live;
  hv_vol_info info;
  char e[256];
  vol_apply ok = {.uid = op->target_uid, .state = state, .size = req->size_bytes, .alloc = -1};
  if (hv_vol_info_get(op->c->hv, v.host, v.pool_uid, v.lvname, &info, e, sizeof(e)) == HV_OK)
    ok.alloc = info.allocation;
  core_pool_figures_now(op->c, &op->call, v.host, v.pool_uid);
  return core_op_finish(op, CORE_OK, NULL, apply_volume, &ok);
}

static int exec_delete_volume(core_op *op) {
  const Novacron__V1__DeleteVolumeRequest *req = (const void *)op->req;
  char err[512];
  core_op_progress(op, 10, req->wipe ? "wiping the volume" : "deleting the volume");
  int code = core_volume_unmaterialize(op, op->target_uid, req->wipe, err, sizeof(err));
  if (code) {
    char m[700];
    vol_failed(m, sizeof(m), code, "deleting the volume", err);
    vol_apply back = {.uid = op->target_uid, .state = VS(ERROR), .message = m};
    return core_op_finish(op, code, m, apply_volume, &back);
  }
  vol_apply rm = {.uid = op->target_uid, .state = 0};
  return core_op_finish(op, CORE_OK, NULL, apply_volume, &rm);
}

const core_verb core_storage_verbs[] = {
    {"StorageService.CreatePool", &novacron__v1__create_pool_request__descriptor, exec_create_pool},
    {"StorageService.DeletePool", &novacron__v1__delete_pool_request__descriptor, exec_delete_pool},
    {"StorageService.CreateVolume", &novacron__v1__create_volume_request__descriptor,
     exec_new_volume},
    {"StorageService.CloneVolume", &novacron__v1__clone_volume_request__descriptor,
     exec_new_volume},
    {"StorageService.ResizeVolume", &novacron__v1__resize_volume_request__descriptor,
     exec_resize_volume},
    {"StorageService.DeleteVolume", &novacron__v1__delete_volume_request__descriptor,
     exec_delete_volume},
};
const size_t core_storage_nverbs = sizeof(core_storage_verbs) / sizeof(core_storage_verbs[0]);

/* ================= restart and heartbeat ================= */

typedef struct host_pools_arg {
  const char *host;
  PGresult *pools, *vols;
} host_pools_arg;

static int host_pools_tx(store_conn *conn, core_tx *tx) {
  host_pools_arg *a = tx->arg;
  const char *p[] = {a->host};
  int code = core_q(tx, conn, "pools_of_host",
                    "SELECT " POOL_COLS
                    ", EXISTS (SELECT 1 FROM operations o WHERE o.target_uid "
                    "= pl.id AND o.state IN (1, 2)), h.uri" POOL_FROM " WHERE h.host_id = $1",
                    1, p, &a->pools);
  if (code) return code;
  return core_q(tx, conn, "volumes_of_host",
                "SELECT " VOL_COLS VOL_FROM " WHERE h.host_id = $1 AND vo.path <> ''", 1, p,
                &a->vols);
}

/* Ephemeral (test-driver) hosts whose pools this process has defined
 * again: before that, a pool missing there is expected, not drift. */
static pthread_mutex_t restored_mu = PTHREAD_MUTEX_INITIALIZER;
static char restored[16][64];
static int nrestored;

static void mark_restored(const char *host) {
  pthread_mutex_lock(&restored_mu);
  bool have = false;
  for (int i = 0; i < nrestored && !have; i++)
    have = strcmp(restored[i], host) == 0;
  if (!have && nrestored < 16) snprintf(restored[nrestored++], 64, "%s", host);
  pthread_mutex_unlock(&restored_mu);
}

static bool was_restored(const char *host) {
  pthread_mutex_lock(&restored_mu);
  bool have = false;
  for (int i = 0; i < nrestored && !have; i++)
    have = strcmp(restored[i], host) == 0;
  pthread_mutex_unlock(&restored_mu);
  return have;
}

void core_storage_restore(core_compute *c, const char *host_id) {
  char msg[256];
  core_arena arena;
  core_arena_init(&arena);
  core_call call = {.alloc = &arena.alloc, .msg = msg, .msglen = sizeof(msg)};
  host_pools_arg a = {.host = host_id};
  if (core_run_ro(c->db, &call, host_pools_tx, &a) != CORE_OK) {
    PQclear(a.pools);
    core_arena_free(&arena);
    return;
  }
  char err[512];
  for (int i = 0; i < PQntuples(a.pools); i++) {
    pool_ctx p = {.pool = core_pool_from_row(&call, a.pools, i)};
    if (!p.pool || p.pool->state == PS(CREATING)) continue; /* its operation makes it */
    snprintf(p.uid, sizeof(p.uid), "%s", PQgetvalue(a.pools, i, 0));
    snprintf(p.host, sizeof(p.host), "%s", host_id);
    hv_pool_spec spec;
    pool_spec(&p, &spec);
    hv_pool_info info;
    if (hv_pool_create(c->hv, host_id, &spec, &info, err, sizeof(err)) != HV_OK)
      nc_warnf("restore: cannot define pool %s again: %s", p.pool->name, err);
  }
  for (int i = 0; i < PQntuples(a.vols); i++) {
    Novacron__V1__Volume *v = core_volume_from_row(&call, a.vols, i);
    if (!v) continue;
    char lv[140];
    core_volume_lvname(PQgetvalue(a.vols, i, 1), PQgetvalue(a.vols, i, 2), lv, sizeof(lv));
    hv_vol_info info;
    int hc = hv_vol_create(c->hv, host_id, PQgetvalue(a.vols, i, VOL_C_POOL_UID), lv,
                           v->format == NOVACRON__V1__VOLUME__FORMAT__FORMAT_RAW ? "raw" : "qcow2",
                           v->size_bytes, &info, err, sizeof(err));
    if (hc != HV_OK && hc != HV_ALREADY_EXISTS)
      nc_warnf("restore: cannot create volume %s again: %s", v->name, err);
  }
  mark_restored(host_id);
  PQclear(a.pools);
  PQclear(a.vols);
  core_arena_free(&arena);
}

typedef struct refresh_arg {
  const char *uid;
  int state;
  const char *message;
  const hv_pool_info *info;
  bool changed;
} refresh_arg;

static int refresh_tx(store_conn *conn, core_tx *tx) {
  refresh_arg *a = tx->arg;
  char st[8], cap[24], alloc[24], avail[24];
  snprintf(st, sizeof(st), "%d", a->state);
  snprintf(cap, sizeof(cap), "%" PRId64, a->info ? a->info->capacity : 0);
  snprintf(alloc, sizeof(alloc), "%" PRId64, a->info ? a->info->allocation : 0);
  snprintf(avail, sizeof(avail), "%" PRId64, a->info ? a->info->available : 0);
  const char *p[] = {a->uid, st, a->message, cap, alloc, avail, a->info ? "t" : "f"};
  PGresult *r;
  /* the state (with a version bump and an event) only when it changed;
   * the figures always, silently; never a pool an operation owns */
  int code = core_q(
      tx, conn, "pool_refresh",
      "WITH old AS (SELECT state, state_message FROM pools WHERE id = $1::uuid AND state IN (2, "
      "3, 4) AND NOT EXISTS (SELECT 1 FROM operations o WHERE o.target_uid = $1::uuid AND o.state "
      "IN "
      "(1, 2)) FOR UPDATE) UPDATE pools pl SET state = $2::smallint, state_message = $3, "
      "capacity_bytes = CASE WHEN $7::bool THEN $4::bigint ELSE capacity_bytes END, "
      "allocation_bytes = CASE WHEN $7::bool THEN $5::bigint ELSE allocation_bytes END, "
      "available_bytes = CASE WHEN $7::bool THEN $6::bigint ELSE available_bytes END, version = "
      "pl.version + CASE WHEN old.state <> $2::smallint OR old.state_message <> $3 THEN 1 ELSE 0 "
      "END, updated_at = CASE WHEN old.state <> $2::smallint OR old.state_message <> $3 THEN "
      "now() ELSE pl.updated_at END FROM old WHERE pl.id = $1::uuid RETURNING old.state <> "
      "$2::smallint OR old.state_message <> $3",
      7, p, &r);
  if (code) return code;
  a->changed = PQntuples(r) > 0 && core_bool(r, 0, 0);
  PQclear(r);
  if (!a->changed) return CORE_OK;
  const char *k[] = {a->uid};
  if ((code = core_q(tx, conn, "pool_get_by_uid",
                     "SELECT " POOL_COLS POOL_FROM " WHERE pl.id = $1::uuid", 1, k, &r)))
    return code;
  Novacron__V1__Pool *pool = core_pool_from_row(tx->call, r, 0);
  PQclear(r);
  if (!pool) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  return core_emit(tx, conn, NULL, EV(RESOURCE_UPDATED), pool->name, "",
                   *a->message ? a->message : "state refreshed from the host", &pool->base);
}

void core_storage_refresh(core_compute *c, const char *host_id) {
  char msg[256];
  core_arena arena;
  core_arena_init(&arena);
  core_call call = {.alloc = &arena.alloc, .msg = msg, .msglen = sizeof(msg)};
  host_pools_arg a = {.host = host_id};
  if (core_run_ro(c->db, &call, host_pools_tx, &a) != CORE_OK) {
    PQclear(a.pools);
    core_arena_free(&arena);
    return;
  }
  bool kick = false;
  bool quiet_missing = PQntuples(a.pools) > 0 &&
                       hv_uri_is_ephemeral(PQgetvalue(a.pools, 0, POOL_NCOLS + 1)) &&
                       !was_restored(host_id);
  for (int i = 0; i < PQntuples(a.pools); i++) {
    int st = (int)core_i64(a.pools, i, 9);
    if (st == PS(CREATING) || st == PS(DELETING) || core_bool(a.pools, i, POOL_NCOLS)) continue;
    const char *uid = PQgetvalue(a.pools, i, 0);
    hv_pool_info info;
    char err[512];
    int hc = hv_pool_info_get(c->hv, host_id, uid, false, &info, err, sizeof(err));
    refresh_arg r = {.uid = uid};
    if (hc == HV_OK) {
      r.state = info.active ? PS(ACTIVE) : PS(INACTIVE);
      r.message = info.active ? "" : "the pool is not running on the host";
      r.info = &info;
    } else if (hc == HV_NOT_FOUND) {
      if (quiet_missing) continue; /* restored at start, after this heartbeat */
      r.state = PS(ERROR);
      r.message = "the pool is missing on the host (removed outside NovaCron)";
    } else {
      continue; /* unreachable: the host's own state says so */
    }
    core_run_tx(c->db, &call, refresh_tx, &r);
    kick |= r.changed;
  }
  PQclear(a.pools);
  PQclear(a.vols);
  if (kick) core_events_kick(c->ev);
  core_arena_free(&arena);
}
