/*
 * vm_dev.c - a VM's disks and NICs: resolving the volumes and networks a
 * request names, reserving them in the request's transaction, the domain
 * spec with their host paths and libvirt networks, and the outcomes the
 * executors record (the executors of AttachVolume, DetachVolume, AttachNic
 * and DetachNic are in core/vm_exec.c).
 *
 * Reservation is by row: a volume whose attached_vm is set but whose state
 * is not yet STATE_ATTACHED is pending for that VM (READY: an existing
 * volume; CREATING: one the VM's operation creates), and a vm_nics row
 * whose MAC is not yet in the VM's nics is a pending NIC. Only one
 * operation runs on a VM at a time, so what is pending belongs to the
 * operation in progress: on success it becomes attached, on failure it is
 * released (a created volume removed from the host, then its row), so the
 * database and libvirt agree either way.
 */
#include <inttypes.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/storage_int.h"
#include "core/vm_dev.h"
#include "util/log.h"

#define VS(x) NOVACRON__V1__VOLUME__STATE__STATE_##x
#define S(x) NOVACRON__V1__VM__STATE__STATE_##x
#define EV(x) NOVACRON__V1__EVENT__TYPE__TYPE_##x

/* ================= planning (request transaction) ================= */

static bool is_sd(int bus) {
  return bus == NOVACRON__V1__VM_DISK__BUS__BUS_SATA || bus == NOVACRON__V1__VM_DISK__BUS__BUS_SCSI;
}

/* The first free guest target of the bus family ("vd?" or "sd?"). */
static int pick_target(core_call *call, dev_plan *p, int bus, char out[8]) {
  const char *pre = is_sd(bus) ? "sd" : "vd";
  for (char l = 'a'; l <= 'p'; l++) {
    char t[8];
    snprintf(t, sizeof(t), "%s%c", pre, l);
    bool used = false;
    for (size_t i = 0; i < p->ntargets && !used; i++)
      used = strcmp(p->targets[i], t) == 0;
    if (!used) {
      snprintf(out, 8, "%s", t);
      if (p->ntargets < 32) snprintf(p->targets[p->ntargets++], 8, "%s", t);
      return CORE_OK;
    }
  }
  return core_fail(call, CORE_FAILED_PRECONDITION, "no free %s* device target is left", pre);
}

static int pin(core_call *call, dev_plan *p, const char *host, const char *what) {
  if (!p->pin_host[0]) {
    snprintf(p->pin_host, sizeof(p->pin_host), "%s", host);
    snprintf(p->pin_what, sizeof(p->pin_what), "%s", what);
    return CORE_OK;
  }
  if (strcmp(p->pin_host, host) == 0) return CORE_OK;
  return core_fail(call, CORE_FAILED_PRECONDITION,
                   "%s is on hosts/%s but %s is on hosts/%s; a VM's volumes and networks must be "
                   "on its host",
                   what, host, p->pin_what, p->pin_host);
}

static bool mac_taken(const dev_plan *p, const char *mac) {
  for (size_t i = 0; i < p->nmacs; i++)
    if (strcmp(p->macs[i], mac) == 0) return true;
  return false;
}

static int new_mac(core_call *call, dev_plan *p, char out[18]) {
  for (int tries = 0; tries < 16; tries++) {
    unsigned char b[3];
    if (RAND_bytes(b, sizeof(b)) != 1) break;
    snprintf(out, 18, "52:54:00:%02x:%02x:%02x", b[0], b[1], b[2]);
    if (!mac_taken(p, out)) return CORE_OK;
  }
  return core_fail(call, CORE_INTERNAL, "cannot generate a MAC address");
}

void core_dev_plan_init(dev_plan *p, core_compute *c, const char *project, const char *puid,
                        const char *vm_id, const Novacron__V1__Vm *existing) {
  memset(p, 0, sizeof(*p));
  p->c = c;
  snprintf(p->project, sizeof(p->project), "%s", project);
  snprintf(p->puid, sizeof(p->puid), "%s", puid);
  snprintf(p->vm_id, sizeof(p->vm_id), "%s", vm_id);
  if (!existing) return;
  for (size_t i = 0; i < existing->n_disks; i++)
    if (existing->disks[i]->target_device && p->ntargets < 32)
      snprintf(p->targets[p->ntargets++], 8, "%s", existing->disks[i]->target_device);
  for (size_t i = 0; i < existing->n_nics; i++)
    if (existing->nics[i]->mac && p->nmacs < 16)
      snprintf(p->macs[p->nmacs++], 18, "%s", existing->nics[i]->mac);
  p->ndisks_before = existing->n_disks;
  char h[64];
  if (existing->host && core_name1(existing->host, "hosts/", h, sizeof(h)))
    snprintf(p->pin_host, sizeof(p->pin_host), "%s", h),
        snprintf(p->pin_what, sizeof(p->pin_what), "the VM");
}

/* One disk of a request: an existing volume (locked, READY) or a new one. */
int core_dev_plan_disk(core_tx *tx, store_conn *conn, dev_plan *p, const Novacron__V1__VmDisk *d,
                       size_t index) {
  core_call *call = tx->call;
  if (p->nd >= CORE_MAX_DISKS) return core_fail(call, CORE_INVALID_ARGUMENT, "disks: at most 16");
  plan_disk *pd = &p->d[p->nd];
  memset(pd, 0, sizeof(*pd));
  Novacron__V1__VmDisk *out = core_alloc(call, sizeof(*out));
  if (!out) return core_fail(call, CORE_INTERNAL, "out of memory");
  novacron__v1__vm_disk__init(out);
  out->bus = d->bus;
  out->boot_index = d->boot_index;
  out->read_only = d->read_only;
  out->source_case = NOVACRON__V1__VM_DISK__SOURCE_VOLUME;
  char f[48], pre[32];
  if (index == CORE_DEV_ATTACH)
    snprintf(pre, sizeof(pre), "disk");
  else
    snprintf(pre, sizeof(pre), "disks[%zu]", index);
  PGresult *r;
  int code;
  if (d->source_case == NOVACRON__V1__VM_DISK__SOURCE_VOLUME) {
    snprintf(f, sizeof(f), "%s.volume", pre);
    char vp[64], vid[64];
    core_name2(d->volume, "volumes", vp, sizeof(vp), vid, sizeof(vid));
    if ((code = core_volume_load(tx, conn, vp, vid, true, &r)))
      return core_fail(call, code, "%s: volume %s not found", f, d->volume);
    Novacron__V1__Volume *v = core_volume_from_row(call, r, 0);
    snprintf(pd->uid, sizeof(pd->uid), "%s", PQgetvalue(r, 0, 0));
    char host[64];
    snprintf(host, sizeof(host), "%s", PQgetvalue(r, 0, 3));
    PQclear(r);
    if (!v) return core_fail(call, CORE_INTERNAL, "out of memory");
    if (v->attachment)
      return core_fail(call, CORE_FAILED_PRECONDITION, "%s: volume %s is attached to %s", f,
                       v->name, v->attachment->vm);
    if (v->state != VS(READY))
      return core_fail(call, CORE_FAILED_PRECONDITION, "%s: volume %s is %s; it needs STATE_READY",
                       f, v->name, core_volume_state_name(v->state));
    for (size_t k = 0; k < p->nd; k++)
      if (strcmp(p->d[k].uid, pd->uid) == 0)
        return core_fail(call, CORE_INVALID_ARGUMENT, "%s: volume %s is named twice", f, v->name);
    char busy[40], bverb[96];
    if ((code = core_op_active(tx, conn, pd->uid, busy, bverb))) return code;
    if (busy[0]) return core_op_busy(call, v->name, busy, bverb, p->project);
    if ((code = pin(call, p, host, v->name))) return code;
    out->volume = v->name;
  } else if (d->source_case == NOVACRON__V1__VM_DISK__SOURCE_NEW_VOLUME && d->new_volume) {
    const Novacron__V1__VmDiskNewVolume *nv = d->new_volume;
    snprintf(f, sizeof(f), "%s.new_volume", pre);
    snprintf(pd->field, sizeof(pd->field), "%s", f);
    pd->fresh = true;
    if (nv->volume_id && *nv->volume_id)
      snprintf(pd->volume_id, sizeof(pd->volume_id), "%s", nv->volume_id);
    else
      snprintf(pd->volume_id, sizeof(pd->volume_id), "%.50s-disk%zu", p->vm_id,
               p->ndisks_before + (index == CORE_DEV_ATTACH ? 0 : index));
    if (!core_id_valid(pd->volume_id) || pd->volume_id[strlen(pd->volume_id) - 1] == '-')
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "%s.volume_id: 1-63 characters of a-z, 0-9 and '-', starting with a letter "
                       "and not ending with '-'",
                       f);
    for (size_t k = 0; k < p->nd; k++)
      if (p->d[k].fresh && strcmp(p->d[k].volume_id, pd->volume_id) == 0)
        return core_fail(call, CORE_INVALID_ARGUMENT, "%s.volume_id: %s is used twice", f,
                         pd->volume_id);
    const char *k2[] = {p->puid, pd->volume_id};
    if ((code = core_q(tx, conn, "volume_exists",
                       "SELECT 1 FROM volumes WHERE project = $1::uuid AND volume_id = $2", 2, k2,
                       &r)))
      return code;
    bool dup = PQntuples(r) > 0;
    PQclear(r);
    if (dup)
      return core_fail(call, CORE_ALREADY_EXISTS,
                       "%s: volume projects/%s/volumes/%s already exists", f, p->project,
                       pd->volume_id);
    bool image = nv->source_case == NOVACRON__V1__VM_DISK_NEW_VOLUME__SOURCE_SOURCE_IMAGE;
    bool copy = nv->source_case == NOVACRON__V1__VM_DISK_NEW_VOLUME__SOURCE_SOURCE_VOLUME;
    if (nv->size_gib < 0 || nv->size_gib > 65536 || (nv->size_gib == 0 && !image && !copy))
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "%s.size_gib: must be 1 to 65536 (0 only with a source), got %" PRId64, f,
                       nv->size_gib);
    pd->size = nv->size_gib * GIB;
    if ((int)nv->format < 0 || nv->format > NOVACRON__V1__VOLUME__FORMAT__FORMAT_RAW)
      return core_fail(call, CORE_INVALID_ARGUMENT, "%s.format: unknown value %d", f,
                       (int)nv->format);
    pd->format = (int)nv->format;
    if (image) {
      char ff[80];
      snprintf(ff, sizeof(ff), "%s.source_image", f);
      if ((code = core_check_image(p->c, call, ff, nv->source_image ? nv->source_image : "")))
        return code;
      pd->source_image = nv->source_image;
    }
    if (copy) {
      char sp[64], sv[64];
      if (!core_name2(nv->source_volume, "volumes", sp, sizeof(sp), sv, sizeof(sv)) ||
          strcmp(sp, p->project) != 0)
        return core_fail(call, CORE_INVALID_ARGUMENT,
                         "%s.source_volume: must be projects/%s/volumes/{volume}", f, p->project);
      if ((code = core_volume_load(tx, conn, sp, sv, false, &r)))
        return core_fail(call, code, "%s.source_volume: volume %s not found", f, nv->source_volume);
      Novacron__V1__Volume *src = core_volume_from_row(call, r, 0);
      int vmstate = core_val(r, 0, VOL_C_VM_STATE) ? (int)core_i64(r, 0, VOL_C_VM_STATE) : 0;
      PQclear(r);
      if (!src) return core_fail(call, CORE_INTERNAL, "out of memory");
      if ((src->state != VS(READY) && src->state != VS(ATTACHED)) ||
          (src->attachment && vmstate != S(STOPPED)))
        return core_fail(call, CORE_FAILED_PRECONDITION,
                         "%s.source_volume: volume %s must be READY, or attached to a stopped VM",
                         f, src->name);
      if (pd->size == 0) pd->size = src->size_bytes;
      if (pd->format == 0) pd->format = (int)src->format; /* a copy keeps the format */
      if (pd->size < src->size_bytes)
        return core_fail(call, CORE_INVALID_ARGUMENT,
                         "%s.size_gib: smaller than the source volume (%" PRId64 " bytes)", f,
                         src->size_bytes);
      pd->source_volume = nv->source_volume;
    }
    if (nv->pool && *nv->pool) {
      char h[64], pl[64];
      const char *s = nv->pool + 6, *sl = strncmp(nv->pool, "hosts/", 6) == 0 ? strchr(s, '/') : 0;
      if (!sl || (size_t)(sl - s) >= 64 || strncmp(sl, "/pools/", 7) != 0 || strlen(sl + 7) >= 64)
        return core_fail(call, CORE_INVALID_ARGUMENT, "%s.pool: must be hosts/{host}/pools/{pool}",
                         f);
      snprintf(h, sizeof(h), "%.*s", (int)(sl - s), s);
      snprintf(pl, sizeof(pl), "%s", sl + 7);
      snprintf(pd->pool_host, sizeof(pd->pool_host), "%s", h);
      snprintf(pd->pool_id, sizeof(pd->pool_id), "%s", pl);
      pd->pool_named = true;
      if ((code = pin(call, p, h, nv->pool))) return code;
    }
    char vname[160];
    snprintf(vname, sizeof(vname), "projects/%s/volumes/%s", p->project, pd->volume_id);
    out->volume = core_strdup(call, vname);
  } else {
    return core_fail(call, CORE_INVALID_ARGUMENT, "%s: set exactly one of volume and new_volume",
                     pre);
  }
  char t[8];
  if ((code = pick_target(call, p, d->bus, t))) return code;
  out->target_device = core_strdup(call, t);
  snprintf(pd->target, sizeof(pd->target), "%s", t);
  pd->disk = out;
  p->nd++;
  return CORE_OK;
}

int core_dev_plan_nic(core_tx *tx, store_conn *conn, dev_plan *p, const Novacron__V1__VmNic *n,
                      size_t index) {
  core_call *call = tx->call;
  if (p->nn >= HV_MAX_NICS) return core_fail(call, CORE_INVALID_ARGUMENT, "nics: at most 8");
  plan_nic *pn = &p->n[p->nn];
  memset(pn, 0, sizeof(*pn));
  char pre[32];
  if (index == CORE_DEV_ATTACH)
    snprintf(pre, sizeof(pre), "nic");
  else
    snprintf(pre, sizeof(pre), "nics[%zu]", index);
  char np[64], nid[64];
  core_name2(n->network, "networks", np, sizeof(np), nid, sizeof(nid));
  const char *k[] = {np, nid};
  PGresult *r;
  int code = core_q(tx, conn, "vm_nic_network",
                    "SELECT n.id, h.host_id, n.state, n.mode FROM networks n JOIN projects p ON "
                    "p.id = n.project JOIN hosts h ON h.id = n.host WHERE p.project_id = $1 AND "
                    "n.network_id = $2 FOR SHARE OF n",
                    2, k, &r);
  if (code) return code;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return core_fail(call, CORE_NOT_FOUND, "%s.network: network %s not found", pre, n->network);
  }
  snprintf(pn->net_uid, sizeof(pn->net_uid), "%s", PQgetvalue(r, 0, 0));
  char host[64];
  snprintf(host, sizeof(host), "%s", PQgetvalue(r, 0, 1));
  int state = (int)core_i64(r, 0, 2);
  PQclear(r);
  if (state != NOVACRON__V1__NETWORK__STATE__STATE_ACTIVE)
    return core_fail(call, CORE_FAILED_PRECONDITION, "%s.network: network %s is not STATE_ACTIVE",
                     pre, n->network);
  if ((code = pin(call, p, host, n->network))) return code;
  Novacron__V1__VmNic *out = core_alloc(call, sizeof(*out));
  if (!out) return core_fail(call, CORE_INTERNAL, "out of memory");
  novacron__v1__vm_nic__init(out);
  out->network = n->network;
  out->model = n->model;
  out->boot_index = n->boot_index;
  if (n->mac && *n->mac) {
    if (mac_taken(p, n->mac))
      return core_fail(call, CORE_ALREADY_EXISTS, "%s.mac: %s is already used in the VM", pre,
                       n->mac);
    snprintf(pn->mac, sizeof(pn->mac), "%s", n->mac);
  } else if ((code = new_mac(call, p, pn->mac))) {
    return code;
  }
  if (p->nmacs < 16) snprintf(p->macs[p->nmacs++], 18, "%s", pn->mac);
  out->mac = core_strdup(call, pn->mac);
  pn->nic = out;
  p->nn++;
  return CORE_OK;
}

/* New volumes without a pool go to --default-pool on the VM's host. */
int core_dev_plan_host(core_tx *tx, store_conn *conn, dev_plan *p, const char *host_id) {
  core_call *call = tx->call;
  int64_t gib = 0, count = 0;
  /* space asked of each pool by this request's earlier disks */
  char pools[HV_MAX_DISKS][40];
  int64_t asked[HV_MAX_DISKS];
  size_t npools = 0;
  for (size_t i = 0; i < p->nd; i++) {
    plan_disk *pd = &p->d[i];
    if (!pd->fresh) continue;
    if (!pd->pool_id[0]) {
      snprintf(pd->pool_host, sizeof(pd->pool_host), "%s", host_id);
      snprintf(
          pd->pool_id, sizeof(pd->pool_id), "%s",
          p->c->cfg.default_pool && *p->c->cfg.default_pool ? p->c->cfg.default_pool : "default");
    }
    const char *k[] = {pd->pool_host, pd->pool_id};
    PGresult *r;
    int code = core_q(tx, conn, "vm_new_volume_pool",
                      "SELECT pl.id, pl.state, pl.type, pl.available_bytes, pl.capacity_bytes FROM "
                      "pools pl JOIN hosts h ON h.id = pl.host WHERE h.host_id = $1 AND "
                      "pl.pool_id = $2 FOR UPDATE OF pl",
                      2, k, &r);
    if (code) return code;
    if (PQntuples(r) == 0) {
      PQclear(r);
      if (pd->pool_named) /* as CreateVolume answers for its pool */
        return core_fail(call, CORE_NOT_FOUND, "%s.pool: pool hosts/%s/pools/%s not found",
                         pd->field, pd->pool_host, pd->pool_id);
      return core_fail(call, CORE_FAILED_PRECONDITION,
                       "%s: there is no pool hosts/%s/pools/%s (--default-pool) to create %s "
                       "in; create it or name a pool",
                       pd->field, pd->pool_host, pd->pool_id, pd->disk->volume);
    }
    snprintf(pd->pool_uid, sizeof(pd->pool_uid), "%s", PQgetvalue(r, 0, 0));
    int st = (int)core_i64(r, 0, 1);
    bool logical = core_i64(r, 0, 2) == NOVACRON__V1__POOL__TYPE__TYPE_LOGICAL;
    int64_t avail = core_i64(r, 0, 3), cap = core_i64(r, 0, 4);
    PQclear(r);
    if (cap > 0 && pd->size > cap)
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "%s.size_gib: %" PRId64
                       " bytes is beyond pool hosts/%s/pools/%s's capacity of %" PRId64 " bytes",
                       pd->field, pd->size, pd->pool_host, pd->pool_id, cap);
    if (st != NOVACRON__V1__POOL__STATE__STATE_ACTIVE)
      return core_fail(call, CORE_FAILED_PRECONDITION,
                       "%s: pool hosts/%s/pools/%s is not STATE_ACTIVE", pd->field, pd->pool_host,
                       pd->pool_id);
    if (pd->format == 0) pd->format = logical ? 2 : 1;
    if (logical && pd->format != 2)
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "%s.format: pool hosts/%s/pools/%s is TYPE_LOGICAL, whose volumes are "
                       "FORMAT_RAW",
                       pd->field, pd->pool_host, pd->pool_id);
    size_t slot = 0;
    while (slot < npools && strcmp(pools[slot], pd->pool_uid) != 0)
      slot++;
    if (slot == npools) {
      snprintf(pools[npools], sizeof(pools[0]), "%s", pd->pool_uid);
      asked[npools++] = 0;
    }
    avail -= asked[slot];
    asked[slot] += pd->size;
    if (pd->size > avail)
      return core_fail(call, CORE_RESOURCE_EXHAUSTED,
                       "%s: pool hosts/%s/pools/%s has %" PRId64 " bytes available, %" PRId64
                       " needed",
                       pd->field, pd->pool_host, pd->pool_id, avail, pd->size);
    gib += core_gib_up(pd->size);
    count++;
  }
  return count ? core_volume_quota(tx, conn, p->puid, count, gib) : CORE_OK;
}

/* Writes the reservations: new volume rows (CREATING), existing volumes
 * pending for the VM, vm_nics rows. */
int core_dev_plan_record(core_tx *tx, store_conn *conn, dev_plan *p, const char *vm_uid) {
  PGresult *r;
  int code;
  for (size_t i = 0; i < p->nd; i++) {
    plan_disk *pd = &p->d[i];
    if (pd->fresh) {
      char fmt[4], sz[24];
      snprintf(fmt, sizeof(fmt), "%d", pd->format ? pd->format : 1);
      snprintf(sz, sizeof(sz), "%" PRId64, pd->size);
      const char *q[] = {p->puid,
                         pd->volume_id,
                         pd->pool_uid,
                         fmt,
                         sz,
                         pd->source_volume ? pd->source_volume : "",
                         pd->source_image ? pd->source_image : "",
                         vm_uid,
                         pd->target};
      if ((code = core_q(tx, conn, "vm_volume_insert",
                         "INSERT INTO volumes (project, volume_id, pool, format, size_bytes, "
                         "source_volume, source_image, attached_vm, target_device) VALUES "
                         "($1::uuid, $2, $3::uuid, $4::smallint, $5::bigint, $6, $7, $8::uuid, $9) "
                         "RETURNING id",
                         9, q, &r)))
        return code;
      snprintf(pd->uid, sizeof(pd->uid), "%s", PQgetvalue(r, 0, 0));
      PQclear(r);
      if (pd->format == NOVACRON__V1__VOLUME__FORMAT__FORMAT_RAW &&
          (code = core_pool_book(tx, conn, pd->pool_uid, pd->size)))
        return code;
    } else {
      const char *q[] = {pd->uid, vm_uid, pd->target};
      if ((code = core_q(tx, conn, "vm_volume_reserve",
                         "UPDATE volumes SET attached_vm = $2::uuid, target_device = $3, version = "
                         "version + 1, updated_at = now() WHERE id = $1::uuid",
                         3, q, &r)))
        return code;
      PQclear(r);
    }
    const char *k[] = {pd->uid};
    if ((code = core_q(tx, conn, "volume_get_uid",
                       "SELECT " VOL_COLS VOL_FROM " WHERE vo.id = $1::uuid", 1, k, &r)))
      return code;
    Novacron__V1__Volume *v = core_volume_from_row(tx->call, r, 0);
    PQclear(r);
    if (!v) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
    if ((code = core_emit(tx, conn, NULL, pd->fresh ? EV(RESOURCE_CREATED) : EV(RESOURCE_UPDATED),
                          v->name, p->project, pd->fresh ? "created for a VM" : "reserved for a VM",
                          &v->base)))
      return code;
  }
  for (size_t i = 0; i < p->nn; i++) {
    const char *q[] = {vm_uid, p->n[i].mac, p->n[i].net_uid};
    if ((code = core_q(tx, conn, "vm_nic_insert",
                       "INSERT INTO vm_nics (vm, mac, network) VALUES ($1::uuid, $2::macaddr, "
                       "$3::uuid)",
                       3, q, &r)))
      return code;
    PQclear(r);
  }
  return CORE_OK;
}

/* ================= outcomes (operation transactions) ================= */

int core_dev_plan_tag(core_tx *tx, store_conn *conn, const dev_plan *p, const char *vm_uid,
                      const Novacron__V1__Operation *operation) {
  const char *slash = operation && operation->name ? strrchr(operation->name, '/') : NULL;
  if (!slash) return core_fail(tx->call, CORE_INTERNAL, "the operation has no name");
  PGresult *r;
  int code;
  for (size_t i = 0; i < p->nd; i++) {
    const char *q[] = {p->d[i].uid, slash + 1};
    if ((code = core_q(tx, conn, "volume_tag",
                       "UPDATE volumes SET reserved_by = $2::uuid WHERE id = $1::uuid", 2, q, &r)))
      return code;
    PQclear(r);
  }
  for (size_t i = 0; i < p->nn; i++) {
    const char *q[] = {vm_uid, p->n[i].mac, slash + 1};
    if ((code = core_q(tx, conn, "vm_nic_tag",
                       "UPDATE vm_nics SET reserved_by = $3::uuid WHERE vm = $1::uuid AND mac = "
                       "$2::macaddr",
                       3, q, &r)))
      return code;
    PQclear(r);
  }
  return CORE_OK;
}

int core_dev_release_stale(core_tx *tx, store_conn *conn, core_op *op, const char *vm_uid) {
  const char *k[] = {vm_uid};
  PGresult *r;
  /* reserved by an operation that ended without recording the outcome
   * (cancelled before it ran, given up after crashes): a new volume whose
   * libvirt object may exist stays as STATE_ERROR for DeleteVolume, the
   * rest is freed */
  int code = core_q(tx, conn, "vm_stale_volumes",
                    "SELECT vo.id, vo.state, vo.path FROM volumes vo WHERE vo.attached_vm = "
                    "$1::uuid AND vo.reserved_by IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
                    "operations o WHERE o.id = vo.reserved_by AND o.state IN (1, 2)) FOR UPDATE "
                    "OF vo",
                    1, k, &r);
  if (code) return code;
  for (int i = 0; i < PQntuples(r) && code == CORE_OK; i++) {
    const char *q[] = {PQgetvalue(r, i, 0)};
    bool fresh = core_i64(r, i, 1) == VS(CREATING);
    bool made = *PQgetvalue(r, i, 2) != 0;
    PGresult *x;
    if (fresh && !made) {
      code = core_q(tx, conn, "volume_delete", "DELETE FROM volumes WHERE id = $1::uuid", 1, q, &x);
      if (code == CORE_OK) PQclear(x);
      continue;
    }
    if ((code = core_q(tx, conn, "volume_unreserve",
                       "UPDATE volumes SET attached_vm = NULL, target_device = '', reserved_by = "
                       "NULL WHERE id = $1::uuid",
                       1, q, &x)))
      break;
    PQclear(x);
    code = core_volume_set(tx, conn, op, q[0], fresh ? VS(ERROR) : VS(READY),
                           fresh ? "left behind by an interrupted operation; delete it" : "", NULL);
  }
  PQclear(r);
  if (code) return code;
  if ((code = core_q(tx, conn, "vm_stale_nics",
                     "DELETE FROM vm_nics n WHERE n.vm = $1::uuid AND n.reserved_by IS NOT NULL "
                     "AND NOT EXISTS (SELECT 1 FROM operations o WHERE o.id = n.reserved_by AND "
                     "o.state IN (1, 2))",
                     1, k, &r)))
    return code;
  PQclear(r);
  return CORE_OK;
}

/* The volumes and NICs `op` reserved become attached (a create or attach
 * succeeded). */
int core_vm_devices_commit(core_tx *tx, store_conn *conn, core_op *op, const char *vm_uid) {
  const char *k[] = {vm_uid, op->id};
  PGresult *r;
  int code = core_q(tx, conn, "vm_reserved_volumes",
                    "UPDATE volumes SET reserved_by = NULL WHERE attached_vm = $1::uuid AND "
                    "reserved_by = $2::uuid RETURNING id",
                    2, k, &r);
  if (code) return code;
  for (int i = 0; i < PQntuples(r) && code == CORE_OK; i++)
    code = core_volume_set(tx, conn, op, PQgetvalue(r, i, 0), VS(ATTACHED), "", NULL);
  PQclear(r);
  if (code) return code;
  if ((code = core_q(tx, conn, "vm_nics_reserved_commit",
                     "UPDATE vm_nics SET reserved_by = NULL WHERE vm = $1::uuid AND reserved_by = "
                     "$2::uuid",
                     2, k, &r)))
    return code;
  PQclear(r);
  return CORE_OK;
}

/* Releases a VM's volumes: pending ones (a failed create/attach: created
 * rows are deleted, existing ones freed), or all of them (the VM is
 * deleted: `delete_all` deletes the rows too, else they are kept READY). */
int core_vm_devices_release(core_tx *tx, store_conn *conn, core_op *op, const char *vm_uid,
                            bool pending_only, bool delete_all) {
  const char *k[] = {vm_uid, pending_only ? op->id : NULL};
  PGresult *r;
  int code = core_q(tx, conn, "vm_release_volumes",
                    "SELECT " VOL_COLS VOL_FROM
                    " WHERE vo.attached_vm = $1::uuid AND ($2::uuid IS NULL OR vo.reserved_by = "
                    "$2::uuid) FOR UPDATE OF vo",
                    2, k, &r);
  if (code) return code;
  for (int i = 0; i < PQntuples(r) && code == CORE_OK; i++) {
    Novacron__V1__Volume *v = core_volume_from_row(tx->call, r, i);
    if (!v) return PQclear(r), core_fail(tx->call, CORE_INTERNAL, "out of memory");
    const char *q[] = {PQgetvalue(r, i, 0)};
    PGresult *x;
    bool drop = delete_all || v->state == VS(CREATING);
    if (drop) {
      if ((code = core_q(tx, conn, "volume_delete", "DELETE FROM volumes WHERE id = $1::uuid", 1, q,
                         &x)))
        break;
      PQclear(x);
      v->state = VS(DELETING);
      code = core_emit(tx, conn, op, EV(RESOURCE_DELETED), v->name, PQgetvalue(r, i, 1),
                       "deleted with its VM", &v->base);
      continue;
    }
    if ((code = core_q(tx, conn, "volume_release",
                       "UPDATE volumes SET attached_vm = NULL, target_device = '', reserved_by = "
                       "NULL WHERE id = $1::uuid",
                       1, q, &x)))
      break;
    PQclear(x);
    code = core_volume_set(tx, conn, op, q[0], VS(READY), "", NULL);
  }
  PQclear(r);
  return code;
}

/* ================= the libvirt side ================= */

typedef struct vol_list_arg {
  const char *vm_uid;
  bool creating_only;
  PGresult *r;
} vol_list_arg;

static int vol_list_tx(store_conn *conn, core_tx *tx) {
  vol_list_arg *a = tx->arg;
  const char *k[] = {a->vm_uid, a->creating_only ? "t" : "f"};
  return core_q(tx, conn, "vm_volumes",
                "SELECT " VOL_COLS VOL_FROM
                " WHERE vo.attached_vm = $1::uuid AND (NOT $2::bool OR vo.state = 1)",
                2, k, &a->r);
}

int core_vm_volumes_materialize(core_op *op, const char *vm_uid, char *err, size_t errlen) {
  vol_list_arg a = {.vm_uid = vm_uid, .creating_only = true};
  int code = core_run_ro(op->c->db, &op->call, vol_list_tx, &a);
  if (code) return snprintf(err, errlen, "%s", op->msg), code;
  for (int i = 0; i < PQntuples(a.r) && code == CORE_OK; i++) {
    char e[512];
    code = core_volume_materialize(op, PQgetvalue(a.r, i, 0), e, sizeof(e));
    if (code)
      snprintf(err, errlen, "creating volume projects/%s/volumes/%s failed: %s",
               PQgetvalue(a.r, i, 1), PQgetvalue(a.r, i, 2), e);
  }
  PQclear(a.r);
  return code;
}

void core_vm_volumes_unmaterialize(core_op *op, const char *vm_uid, bool all, bool wipe) {
  vol_list_arg a = {.vm_uid = vm_uid, .creating_only = !all};
  if (core_run_ro(op->c->db, &op->call, vol_list_tx, &a)) return;
  for (int i = 0; i < PQntuples(a.r); i++) {
    char e[512];
    if (core_volume_unmaterialize(op, PQgetvalue(a.r, i, 0), wipe, e, sizeof(e)))
      nc_warnf("cannot delete volume projects/%s/volumes/%s on its host: %s", PQgetvalue(a.r, i, 1),
               PQgetvalue(a.r, i, 2), e);
  }
  PQclear(a.r);
}

typedef struct spec_arg {
  const char *vm_uid;
  PGresult *vols, *nets;
} spec_arg;

static int spec_tx(store_conn *conn, core_tx *tx) {
  spec_arg *a = tx->arg;
  const char *k[] = {a->vm_uid};
  int code = core_q(tx, conn, "vm_spec_volumes",
                    "SELECT 'projects/' || p.project_id || '/volumes/' || vo.volume_id, vo.path, "
                    "vo.format FROM volumes vo JOIN projects p ON p.id = vo.project WHERE "
                    "vo.attached_vm = $1::uuid",
                    1, k, &a->vols);
  if (code) return code;
  return core_q(tx, conn, "vm_spec_networks",
                "SELECT n.mac::text, p.project_id || '.' || nw.network_id, nw.mode, nw.bridge "
                "FROM vm_nics n JOIN networks nw ON nw.id = n.network JOIN projects p ON p.id = "
                "nw.project WHERE n.vm = $1::uuid",
                1, k, &a->nets);
}

void core_disk_hv(const Novacron__V1__VmDisk *d, const char *path, int format, hv_disk *out) {
  memset(out, 0, sizeof(*out));
  snprintf(out->path, sizeof(out->path), "%s", path);
  snprintf(out->format, sizeof(out->format), "%s",
           format == NOVACRON__V1__VOLUME__FORMAT__FORMAT_RAW ? "raw" : "qcow2");
  out->bus = d->bus == NOVACRON__V1__VM_DISK__BUS__BUS_SATA   ? HV_BUS_SATA
             : d->bus == NOVACRON__V1__VM_DISK__BUS__BUS_SCSI ? HV_BUS_SCSI
                                                              : HV_BUS_VIRTIO;
  snprintf(out->target, sizeof(out->target), "%s", d->target_device ? d->target_device : "");
  out->boot_index = d->boot_index;
  out->read_only = d->read_only;
  snprintf(out->volume, sizeof(out->volume), "%s", d->volume ? d->volume : "");
}

void core_nic_hv(const Novacron__V1__VmNic *n, const char *libvirt_network, hv_nic *out) {
  memset(out, 0, sizeof(*out));
  snprintf(out->mac, sizeof(out->mac), "%s", n->mac ? n->mac : "");
  out->model = n->model == NOVACRON__V1__VM_NIC__MODEL__MODEL_E1000 ? HV_NIC_E1000 : HV_NIC_VIRTIO;
  snprintf(out->network, sizeof(out->network), "%s", libvirt_network);
  out->boot_index = n->boot_index;
}

int core_vm_full_spec(core_compute *c, core_call *call, const Novacron__V1__Vm *vm, const char *uid,
                      hv_domain_spec *spec) {
  core_vm_spec(vm, uid, spec);
  if (vm->n_disks == 0 && vm->n_nics == 0) return core_vm_seed_disk(c, call, vm, uid, spec);
  spec_arg a = {.vm_uid = uid};
  int code = core_run_ro(c->db, call, spec_tx, &a);
  if (code) {
    PQclear(a.vols);
    return code;
  }
  bool any_boot = false;
  for (size_t i = 0; i < vm->n_disks; i++)
    any_boot |= vm->disks[i]->boot_index > 0;
  for (size_t i = 0; i < vm->n_nics; i++)
    any_boot |= vm->nics[i]->boot_index > 0;
  for (size_t i = 0; i < vm->n_disks && spec->ndisks < HV_MAX_DISKS && code == CORE_OK; i++) {
    const Novacron__V1__VmDisk *d = vm->disks[i];
    int row = -1;
    for (int k = 0; k < PQntuples(a.vols); k++)
      if (d->volume && strcmp(PQgetvalue(a.vols, k, 0), d->volume) == 0) row = k;
    if (row < 0 || !*PQgetvalue(a.vols, row, 1)) {
      code = core_fail(call, CORE_FAILED_PRECONDITION, "disk %s: volume %s is not available",
                       d->target_device, d->volume);
      break;
    }
    hv_disk *hd = &spec->disks[spec->ndisks++];
    core_disk_hv(d, PQgetvalue(a.vols, row, 1), (int)core_i64(a.vols, row, 2), hd);
    if (!any_boot && i == 0) hd->boot_index = 1; /* the first disk boots */
  }
  for (size_t i = 0; i < vm->n_nics && spec->nnics < HV_MAX_NICS && code == CORE_OK; i++) {
    const Novacron__V1__VmNic *n = vm->nics[i];
    int row = -1;
    for (int k = 0; k < PQntuples(a.nets); k++)
      if (n->mac && strcmp(PQgetvalue(a.nets, k, 0), n->mac) == 0) row = k;
    if (row < 0) {
      code = core_fail(call, CORE_FAILED_PRECONDITION, "NIC %s: its network is gone", n->mac);
      break;
    }
    core_nic_hv(n, PQgetvalue(a.nets, row, 1), &spec->nics[spec->nnics++]);
  }
  PQclear(a.vols);
  PQclear(a.nets);
  return code ? code : core_vm_seed_disk(c, call, vm, uid, spec);
}
