/*
 * vm_seed.c - the cloud-init NoCloud config drive of a VM with user data
 * (vm.proto: Vm.user_data).
 *
 * CreateVm chooses the pool (--default-pool on the VM's host) in its
 * transaction and records it as vms.seed_pool; the executor builds the ISO
 * (util/seed.c: user-data as given, meta-data with instance-id = the VM's
 * uid and local-hostname = its id), writes it into that pool as
 * "{project}.{vm}.cidata" and records the path (vms.seed_path) before the
 * domain is defined, which then has it as a read-only virtio disk "vdz".
 * The drive is derived data: made again whenever the domain is defined,
 * deleted with the VM. It ties the VM to its host like a volume does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/vm_dev.h"
#include "util/log.h"
#include "util/seed.h"

int core_seed_pool(core_tx *tx, store_conn *conn, core_compute *c, const char *host_id,
                   char pool_uid[40]) {
  const char *pool_id =
      c->cfg.default_pool && *c->cfg.default_pool ? c->cfg.default_pool : "default";
  const char *k[] = {host_id, pool_id};
  PGresult *r;
  int code = core_q(tx, conn, "vm_seed_pool",
                    "SELECT pl.id, pl.state FROM pools pl JOIN hosts h ON h.id = pl.host WHERE "
                    "h.host_id = $1 AND pl.pool_id = $2 FOR SHARE OF pl",
                    2, k, &r);
  if (code) return code;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                     "vm.user_data: the config drive goes into pool hosts/%s/pools/%s "
                     "(--default-pool), which does not exist; create it",
                     host_id, pool_id);
  }
  int state = (int)core_i64(r, 0, 1);
  snprintf(pool_uid, 40, "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  if (state != NOVACRON__V1__POOL__STATE__STATE_ACTIVE)
    return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                     "vm.user_data: pool hosts/%s/pools/%s, which takes the config drive, is "
                     "not active",
                     host_id, pool_id);
  return CORE_OK;
}

typedef struct seed_row {
  const char *uid;
  const char *path; /* to record, or NULL to read */
  char pool_uid[40], path_now[512], project[64], vm_id[64];
  bool found;
} seed_row;

static int seed_read_tx(store_conn *conn, core_tx *tx) {
  seed_row *a = tx->arg;
  const char *k[] = {a->uid};
  PGresult *r;
  int code = core_q(tx, conn, "vm_seed_get",
                    "SELECT v.seed_pool::text, v.seed_path, p.project_id, v.vm_id FROM vms v JOIN "
                    "projects p ON p.id = v.project WHERE v.id = $1::uuid AND v.seed_pool IS NOT "
                    "NULL",
                    1, k, &r);
  if (code) return code;
  if ((a->found = PQntuples(r) > 0)) {
    snprintf(a->pool_uid, sizeof(a->pool_uid), "%s", PQgetvalue(r, 0, 0));
    snprintf(a->path_now, sizeof(a->path_now), "%s", PQgetvalue(r, 0, 1));
    snprintf(a->project, sizeof(a->project), "%s", PQgetvalue(r, 0, 2));
    snprintf(a->vm_id, sizeof(a->vm_id), "%s", PQgetvalue(r, 0, 3));
  }
  PQclear(r);
  return CORE_OK;
}

static int seed_record_tx(store_conn *conn, core_tx *tx) {
  seed_row *a = tx->arg;
  const char *k[] = {a->uid, a->path};
  PGresult *r;
  int code = core_q(tx, conn, "vm_seed_set", "UPDATE vms SET seed_path = $2 WHERE id = $1::uuid", 2,
                    k, &r);
  if (code == CORE_OK) PQclear(r);
  return code;
}

static void seed_name(const seed_row *s, char *out, size_t len) {
  snprintf(out, len, "%s.%s.cidata", s->project, s->vm_id);
}

int core_vm_seed_make(core_op *op, const char *host, const char *uid, const char *user_data,
                      char *err, size_t errlen) {
  seed_row s = {.uid = uid};
  int code = core_run_ro(op->c->db, &op->call, seed_read_tx, &s);
  if (code) return snprintf(err, errlen, "%s", op->msg), code;
  if (!s.found) return CORE_OK; /* no user data, no drive */
  char meta[256], name[160];
  snprintf(meta, sizeof(meta), "instance-id: %s\nlocal-hostname: %s\n", uid, s.vm_id);
  seed_name(&s, name, sizeof(name));
  unsigned char *iso = NULL;
  size_t len = 0;
  const char *ud = user_data ? user_data : "";
  if (nc_seed_image(ud, strlen(ud), meta, &iso, &len, err, errlen) != 0) return CORE_INTERNAL;
  hv_vol_info info;
  char e[512];
  code = hv_vol_put(op->c->hv, host, s.pool_uid, name, iso, len, &info, e, sizeof(e));
  free(iso);
  if (code) {
    core_hv_failed(err, errlen, code, "writing the config drive", host, e);
    return code;
  }
  s.path = info.path;
  char msg[256];
  core_call call = {.alloc = op->call.alloc, .msg = msg, .msglen = sizeof(msg)};
  if ((code = core_run_tx(op->c->db, &call, seed_record_tx, &s)))
    return snprintf(err, errlen, "%s", msg), code;
  return CORE_OK;
}

void core_vm_seed_remove(core_op *op, const char *host, const char *uid) {
  seed_row s = {.uid = uid};
  if (!host || !*host || core_run_ro(op->c->db, &op->call, seed_read_tx, &s) || !s.found) return;
  char name[160], e[512];
  seed_name(&s, name, sizeof(name));
  int code = hv_vol_delete(op->c->hv, host, s.pool_uid, name, false, e, sizeof(e));
  if (code != HV_OK && code != HV_NOT_FOUND)
    nc_log(NC_LOG_WARN, "cannot delete a VM's config drive", LKV_S("host", host),
           LKV_S("volume", name), LKV_S("error", e));
}

typedef struct path_arg {
  const char *uid;
  char path[512];
} path_arg;

static int path_tx(store_conn *conn, core_tx *tx) {
  path_arg *a = tx->arg;
  const char *k[] = {a->uid};
  PGresult *r;
  int code =
      core_q(tx, conn, "vm_seed_path",
             "SELECT seed_path FROM vms WHERE id = $1::uuid AND seed_pool IS NOT NULL", 1, k, &r);
  if (code) return code;
  if (PQntuples(r)) snprintf(a->path, sizeof(a->path), "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  return CORE_OK;
}

int core_vm_seed_disk(core_compute *c, core_call *call, const Novacron__V1__Vm *vm, const char *uid,
                      hv_domain_spec *spec) {
  if (!vm->user_data || !*vm->user_data) return CORE_OK;
  path_arg a = {.uid = uid};
  int code = core_run_ro(c->db, call, path_tx, &a);
  if (code) return code;
  if (!a.path[0]) /* not written (yet): the domain goes without it */
    return CORE_OK;
  if (spec->ndisks >= HV_MAX_DISKS)
    return core_fail(call, CORE_FAILED_PRECONDITION,
                     "the VM has %d disks and no room is left for its config drive", spec->ndisks);
  hv_disk *d = &spec->disks[spec->ndisks++];
  memset(d, 0, sizeof(*d));
  snprintf(d->path, sizeof(d->path), "%s", a.path);
  snprintf(d->format, sizeof(d->format), "raw");
  d->bus = HV_BUS_VIRTIO;
  snprintf(d->target, sizeof(d->target), "%s", CORE_SEED_TARGET);
  d->read_only = true;
  return CORE_OK;
}
