/*
 * vm.c - VmService: validation, reads, metadata updates and the journaling
 * of hypervisor work (the executors are in core/vm_exec.c).
 *
 * Every verb that acts on a VM runs one transaction: replay a retried
 * request_id; lock the VM row; check the etag, that no other operation is
 * in progress on it and that its state allows the verb
 * (FAILED_PRECONDITION naming the current state); move it into its
 * transitional state; journal the Operation. One operation per VM at a
 * time keeps the executors simple and the outcome predictable.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/compute_int.h"
#include "core/storage_int.h"
#include "core/vm_dev.h"
#include "google/protobuf/any.pb-c.h"
#include "util/log.h"

#define S(x) NOVACRON__V1__VM__STATE__STATE_##x
#define BIT(s) (1u << (s))

static const char *const state_names[] = {"STATE_UNSPECIFIED", "STATE_PENDING",   "STATE_STOPPED",
                                          "STATE_STARTING",    "STATE_RUNNING",   "STATE_PAUSED",
                                          "STATE_STOPPING",    "STATE_MIGRATING", "STATE_ERROR",
                                          "STATE_UNKNOWN",     "STATE_DELETING"};

const char *core_vm_state_name(int s) {
  return s >= 0 && s <= 10 ? state_names[s] : "STATE_UNSPECIFIED";
}

/* ================= rows ================= */

Novacron__V1__Vm *core_vm_from_row(core_call *call, const PGresult *r, int i) {
  Novacron__V1__Vm *v = core_alloc(call, sizeof(*v));
  if (!v) return NULL;
  novacron__v1__vm__init(v);
  char name[160];
  snprintf(name, sizeof(name), "projects/%s/vms/%s", PQgetvalue(r, i, 1), PQgetvalue(r, i, 2));
  v->name = core_strdup(call, name);
  v->uid = core_strdup(call, PQgetvalue(r, i, 0));
  v->description = core_strdup(call, PQgetvalue(r, i, 3));
  v->labels = core_labels_from_json(call, PQgetvalue(r, i, 4), &v->n_labels);
  v->state = (Novacron__V1__Vm__State)core_i64(r, i, 5);
  v->state_message = core_strdup(call, PQgetvalue(r, i, 6));
  v->vcpus = (int32_t)core_i64(r, i, 7);
  v->memory_mib = core_i64(r, i, 8);
  v->max_vcpus = (int32_t)core_i64(r, i, 9);
  v->max_memory_mib = core_i64(r, i, 10);
  Novacron__V1__Vm *dev = (Novacron__V1__Vm *)core_unpack_bytea(call, &novacron__v1__vm__descriptor,
                                                                PQgetvalue(r, i, 11));
  if (dev) {
    v->disks = dev->disks;
    v->n_disks = dev->n_disks;
  }
  dev = (Novacron__V1__Vm *)core_unpack_bytea(call, &novacron__v1__vm__descriptor,
                                              PQgetvalue(r, i, 12));
  if (dev) {
    v->nics = dev->nics;
    v->n_nics = dev->n_nics;
    core_nics_render(call, v, PQgetvalue(r, i, 23));
  }
  v->placement = (Novacron__V1__VmPlacement *)core_unpack_bytea(
      call, &novacron__v1__vm_placement__descriptor, PQgetvalue(r, i, 13));
  v->user_data = core_strdup(call, PQgetvalue(r, i, 14));
  v->machine_type = core_strdup(call, PQgetvalue(r, i, 15));
  v->firmware = (Novacron__V1__Vm__Firmware)core_i64(r, i, 16);
  if (core_val(r, i, 17)) {
    char host[96];
    snprintf(host, sizeof(host), "hosts/%s", PQgetvalue(r, i, 17));
    v->host = core_strdup(call, host);
  } else {
    v->host = core_strdup(call, "");
  }
  v->etag = core_etag(call, core_i64(r, i, 18));
  v->create_time = core_ts(call, r, i, 19);
  v->update_time = core_ts(call, r, i, 20);
  return v;
}

int core_vm_load_uid(core_tx *tx, store_conn *conn, const char *uid, bool lock, PGresult **res) {
  return core_q_one(tx, conn, lock ? "vm_lock_uid" : "vm_get_uid",
                    lock ? "SELECT " VM_COLS VM_FROM " WHERE v.id = $1::uuid FOR UPDATE OF v"
                         : "SELECT " VM_COLS VM_FROM " WHERE v.id = $1::uuid",
                    uid, "VM", res);
}

static int load_vm(core_tx *tx, store_conn *conn, const char *project, const char *vm, bool lock,
                   PGresult **res) {
  const char *p[] = {project, vm};
  int code = core_q(tx, conn, lock ? "vm_lock" : "vm_get",
                    lock ? "SELECT " VM_COLS VM_FROM
                           " WHERE p.project_id = $1 AND v.vm_id = $2 FOR UPDATE OF v"
                         : "SELECT " VM_COLS VM_FROM " WHERE p.project_id = $1 AND v.vm_id = $2",
                    2, p, res);
  if (code) return code;
  if (PQntuples(*res) == 0) {
    PQclear(*res);
    *res = NULL;
    return core_fail(tx->call, CORE_NOT_FOUND, "VM projects/%s/vms/%s not found", project, vm);
  }
  return CORE_OK;
}

int core_vm_set_state(core_tx *tx, store_conn *conn, core_op *op, const char *uid, int state,
                      const char *message, Novacron__V1__Vm **out) {
  char st[8];
  snprintf(st, sizeof(st), "%d", state);
  const char *p[] = {uid, st, message ? message : ""};
  PGresult *r;
  /* the previous state, read under the row lock first (a CTE beside the
   * UPDATE would not reliably see the row before it) */
  int code = core_vm_load_uid(tx, conn, uid, true, &r);
  if (code) return code;
  int old = (int)core_i64(r, 0, 5);
  PQclear(r);
  code = core_q(tx, conn, "vm_set_state",
                "WITH v AS (UPDATE vms SET state = $2::smallint, state_message = $3, version = "
                "version + CASE WHEN state <> $2::smallint OR state_message <> $3 THEN 1 ELSE 0 "
                "END, updated_at = CASE WHEN state <> $2::smallint OR state_message <> $3 THEN "
                "now() ELSE updated_at END WHERE id = $1::uuid RETURNING *) "
                "SELECT " VM_COLS
                " FROM v JOIN projects p ON p.id = v.project LEFT JOIN hosts h ON h.id = v.host",
                3, p, &r);
  if (code) return code;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return core_fail(tx->call, CORE_NOT_FOUND, "VM %s not found", uid);
  }
  Novacron__V1__Vm *vm = core_vm_from_row(tx->call, r, 0);
  const char *project = PQgetvalue(r, 0, 1);
  char proj[64];
  snprintf(proj, sizeof(proj), "%s", project);
  PQclear(r);
  if (!vm) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  if (out) *out = vm;
  if (old == state) return CORE_OK;
  char msg[160];
  snprintf(msg, sizeof(msg), "state %s -> %s", core_vm_state_name(old) + 6,
           core_vm_state_name(state) + 6);
  return core_emit(tx, conn, op, NOVACRON__V1__EVENT__TYPE__TYPE_VM_STATE_CHANGED, vm->name, proj,
                   msg, &vm->base);
}

void core_vm_spec(const Novacron__V1__Vm *vm, const char *uid, hv_domain_spec *spec) {
  memset(spec, 0, sizeof(*spec));
  snprintf(spec->uuid, sizeof(spec->uuid), "%s", uid);
  char project[64] = "", id[64] = "";
  core_name2(vm->name, "vms", project, sizeof(project), id, sizeof(id));
  snprintf(spec->name, sizeof(spec->name), "%s.%s", project, id);
  snprintf(spec->vm, sizeof(spec->vm), "%s", vm->name);
  spec->vcpus = vm->vcpus;
  spec->max_vcpus = vm->max_vcpus > vm->vcpus ? vm->max_vcpus : vm->vcpus;
  spec->memory_mib = vm->memory_mib;
  spec->max_memory_mib = vm->max_memory_mib > vm->memory_mib ? vm->max_memory_mib : vm->memory_mib;
  snprintf(spec->machine_type, sizeof(spec->machine_type), "%s",
           vm->machine_type ? vm->machine_type : "");
  spec->firmware =
      vm->firmware == NOVACRON__V1__VM__FIRMWARE__FIRMWARE_UEFI ? HV_FW_UEFI : HV_FW_BIOS;
  /* Disks and NICs come from volumes and networks (StorageService,
   * NetworkService); a VM without them is a diskless domain. */
}

/* ================= validation ================= */

static bool mac_valid(const char *m) {
  if (!m || strlen(m) != 17) return false;
  for (int i = 0; i < 17; i++) {
    char c = m[i];
    if (i % 3 == 2) {
      if (c != ':') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  int first = (int)strtol(m, NULL, 16);
  return (first & 1) == 0; /* unicast */
}

static int check_sizes(core_call *call, int32_t vcpus, int64_t mem, int32_t max_vcpus,
                       int64_t max_mem, const char *prefix) {
  if (vcpus < 1 || vcpus > 256)
    return core_fail(call, CORE_INVALID_ARGUMENT, "%svcpus: must be 1 to 256 (got %d)", prefix,
                     vcpus);
  if (mem < 64 || mem > 4194304)
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "%smemory_mib: must be 64 to 4194304 (got %" PRId64 ")", prefix, mem);
  if (max_vcpus != 0 && (max_vcpus < vcpus || max_vcpus > 256))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "%smax_vcpus: must be 0 or between vcpus (%d) and 256 (got %d)", prefix, vcpus,
                     max_vcpus);
  if (max_mem != 0 && (max_mem < mem || max_mem > 4194304))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "%smax_memory_mib: must be 0 or between memory_mib (%" PRId64
                     ") and 4194304 (got %" PRId64 ")",
                     prefix, mem, max_mem);
  return CORE_OK;
}

static int check_placement(core_call *call, const Novacron__V1__VmPlacement *pl) {
  if (!pl) return CORE_OK;
  char host[64];
  if (pl->host && *pl->host && !core_name1(pl->host, "hosts/", host, sizeof(host)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "placement.host: must be hosts/{host}");
  char *j = NULL;
  int code;
  if ((code = core_labels_json(call, pl->host_selector, pl->n_host_selector, &j))) goto out;
  free(j);
  j = NULL;
  if ((code = core_labels_json(call, pl->affinity, pl->n_affinity, &j))) goto out;
  free(j);
  j = NULL;
  code = core_labels_json(call, pl->anti_affinity, pl->n_anti_affinity, &j);
out:
  free(j);
  if (code) {
    char m[512];
    snprintf(m, sizeof(m), "%s", call->msg);
    return core_fail(call, code, "placement: %s", m);
  }
  return CORE_OK;
}

/* The syntax of disks and NICs: references to volumes and networks of the
 * VM's project, buses, models, MACs, boot indexes. Whether they exist and
 * are free is checked under their row locks (core/vm_dev.c). */
static int check_devices(core_call *call, const char *project, Novacron__V1__VmDisk **disks,
                         size_t nd, Novacron__V1__VmNic **nics, size_t nn) {
  if (nd > 16) return core_fail(call, CORE_INVALID_ARGUMENT, "disks: at most 16");
  if (nn > 8) return core_fail(call, CORE_INVALID_ARGUMENT, "nics: at most 8");
  int boots[32] = {0};
  size_t nb = 0;
  for (size_t i = 0; i < nd; i++) {
    const Novacron__V1__VmDisk *d = disks[i];
    if (d->boot_index < 0)
      return core_fail(call, CORE_INVALID_ARGUMENT, "disks[%zu].boot_index: must be >= 0", i);
    if (d->boot_index) boots[nb++] = d->boot_index;
    if (d->source_case == NOVACRON__V1__VM_DISK__SOURCE_VOLUME) {
      char vp[64], vid[64];
      if (!core_name2(d->volume, "volumes", vp, sizeof(vp), vid, sizeof(vid)))
        return core_fail(call, CORE_INVALID_ARGUMENT,
                         "disks[%zu].volume: must be projects/{project}/volumes/{volume}", i);
      if (strcmp(vp, project) != 0)
        return core_fail(call, CORE_INVALID_ARGUMENT,
                         "disks[%zu].volume: must be a volume of the VM's project %s", i, project);
    } else if (d->source_case != NOVACRON__V1__VM_DISK__SOURCE_NEW_VOLUME || !d->new_volume) {
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "disks[%zu]: set exactly one of volume and new_volume", i);
    }
    if ((int)d->bus < 0 || d->bus > NOVACRON__V1__VM_DISK__BUS__BUS_SCSI)
      return core_fail(call, CORE_INVALID_ARGUMENT, "disks[%zu].bus: unknown value %d", i,
                       (int)d->bus);
  }
  for (size_t i = 0; i < nn; i++) {
    const Novacron__V1__VmNic *n = nics[i];
    if (n->boot_index < 0)
      return core_fail(call, CORE_INVALID_ARGUMENT, "nics[%zu].boot_index: must be >= 0", i);
    if (n->boot_index) boots[nb++] = n->boot_index;
    if (n->mac && *n->mac && !mac_valid(n->mac))
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "nics[%zu].mac: must be a unicast xx:xx:xx:xx:xx:xx in lower case", i);
    char np[64], nid[64];
    if (!n->network || !*n->network)
      return core_fail(call, CORE_INVALID_ARGUMENT, "nics[%zu].network: required", i);
    if (!core_name2(n->network, "networks", np, sizeof(np), nid, sizeof(nid)))
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "nics[%zu].network: must be projects/{project}/networks/{network}", i);
    if (strcmp(np, project) != 0)
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "nics[%zu].network: must be a network of the VM's project %s", i, project);
    if ((int)n->model < 0 || n->model > NOVACRON__V1__VM_NIC__MODEL__MODEL_E1000)
      return core_fail(call, CORE_INVALID_ARGUMENT, "nics[%zu].model: unknown value %d", i,
                       (int)n->model);
  }
  for (size_t i = 0; i < nb; i++)
    for (size_t k = i + 1; k < nb; k++)
      if (boots[i] == boots[k])
        return core_fail(call, CORE_INVALID_ARGUMENT,
                         "boot_index %d is used twice; boot indexes must be unique", boots[i]);
  return CORE_OK;
}

static int check_machine_type(core_call *call, const char *m) {
  size_t n = m ? strlen(m) : 0;
  if (n > 31 ||
      strspn(m ? m : "", "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != n)
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "vm.machine_type: at most 31 characters of letters, digits, '.', '-', '_'");
  return CORE_OK;
}

/* ================= CreateVm ================= */

typedef struct create_arg {
  core_compute *c;
  const Novacron__V1__CreateVmRequest *req;
  ProtobufCMessage *resp;
  const char *project, *labels;
  char *placement;
  Novacron__V1__Operation **out;
  Novacron__V1__Vm *would_be;
} create_arg;

/* RESOURCE_EXHAUSTED when adding `vcpus`/`mem`/`n` VMs would exceed the
 * project's quota. Locks the quota row, so concurrent creates queue. */
static int check_quota(core_tx *tx, store_conn *conn, const char *project_uid, int64_t vcpus,
                       int64_t mem, int64_t nvms) {
  const char *p[] = {project_uid};
  PGresult *r;
  int code = core_q(tx, conn, "quota_vm_lock",
                    "SELECT q.vcpus, q.memory_mib, q.vms, coalesce(u.vcpus, 0), coalesce(u.mem, "
                    "0), coalesce(u.n, 0) FROM quotas q LEFT JOIN (SELECT project, sum(vcpus) AS "
                    "vcpus, sum(memory_mib) AS mem, count(*) AS n FROM vms WHERE project = "
                    "$1::uuid GROUP BY project) u ON u.project = q.project WHERE q.project = "
                    "$1::uuid FOR UPDATE OF q",
                    1, p, &r);
  if (code) return code;
  static const char *const what[] = {"vcpus", "memory_mib", "vms"};
  const int64_t want[] = {vcpus, mem, nvms};
  return core_quota_check(tx, r, what, want, 3, 3);
}

static int create_tx(store_conn *conn, core_tx *tx) {
  create_arg *a = tx->arg;
  const Novacron__V1__CreateVmRequest *req = a->req;
  const Novacron__V1__Vm *in = req->vm;
  bool found;
  int code = core_idem_replay(tx, conn, req->request_id, &req->base, a->resp, &found);
  if (code || found) return code;
  char puid[40];
  if ((code = core_project_uid(tx, conn, a->project, puid))) return code;
  const char *k[] = {puid, req->vm_id};
  PGresult *r;
  if ((code = core_q(tx, conn, "vm_exists",
                     "SELECT 1 FROM vms WHERE project = $1::uuid AND vm_id = $2", 2, k, &r)))
    return code;
  bool dup = PQntuples(r) > 0;
  PQclear(r);
  if (dup)
    return core_fail(tx->call, CORE_ALREADY_EXISTS, "VM projects/%s/vms/%s already exists",
                     a->project, req->vm_id);
  if ((code = check_quota(tx, conn, puid, in->vcpus, in->memory_mib, 1))) return code;
  /* the devices: volumes and networks locked, targets and MACs chosen;
   * they pin the VM to their host */
  dev_plan *dp = core_alloc(tx->call, sizeof(*dp));
  if (!dp) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  core_dev_plan_init(dp, a->c, a->project, puid, req->vm_id, NULL);
  for (size_t i = 0; i < in->n_disks; i++)
    if ((code = core_dev_plan_disk(tx, conn, dp, in->disks[i], i))) return code;
  for (size_t i = 0; i < in->n_nics; i++)
    if ((code = core_dev_plan_nic(tx, conn, dp, in->nics[i], i))) return code;
  /* the would-be VM, for placement and validate_only */
  Novacron__V1__Vm *vm = core_alloc(tx->call, sizeof(*vm));
  if (!vm) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  *vm = *in;
  Novacron__V1__VmDisk **disks = core_alloc(tx->call, (dp->nd + 1) * sizeof(*disks));
  Novacron__V1__VmNic **nics = core_alloc(tx->call, (dp->nn + 1) * sizeof(*nics));
  if (!disks || !nics) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  for (size_t i = 0; i < dp->nd; i++)
    disks[i] = dp->d[i].disk;
  for (size_t i = 0; i < dp->nn; i++)
    nics[i] = dp->n[i].nic;
  vm->disks = disks;
  vm->n_disks = dp->nd;
  vm->nics = nics;
  vm->n_nics = dp->nn;
  if (dp->pin_host[0]) {
    char pinned[64] = "";
    if (in->placement && in->placement->host && *in->placement->host)
      core_name1(in->placement->host, "hosts/", pinned, sizeof(pinned));
    if (*pinned && strcmp(pinned, dp->pin_host) != 0)
      return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                       "placement.host: the VM is pinned to hosts/%s, but %s is on hosts/%s",
                       pinned, dp->pin_what, dp->pin_host);
    Novacron__V1__VmPlacement *pl = core_alloc(tx->call, sizeof(*pl));
    if (!pl) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
    if (in->placement)
      *pl = *in->placement;
    else
      novacron__v1__vm_placement__init(pl);
    char hn[80];
    snprintf(hn, sizeof(hn), "hosts/%s", dp->pin_host);
    pl->host = core_strdup(tx->call, hn);
    vm->placement = pl;
  }
  char name[160];
  snprintf(name, sizeof(name), "projects/%s/vms/%s", a->project, req->vm_id);
  vm->name = core_strdup(tx->call, name);
  vm->max_vcpus = in->max_vcpus ? in->max_vcpus : in->vcpus;
  vm->max_memory_mib = in->max_memory_mib ? in->max_memory_mib : in->memory_mib;
  vm->state = S(PENDING);
  char host_id[64], host_uid[40];
  if ((code = core_place(tx, conn, a->c, vm, puid, NULL, NULL, host_id, host_uid))) return code;
  char hname[96];
  snprintf(hname, sizeof(hname), "hosts/%s", host_id);
  vm->host = core_strdup(tx->call, hname);
  if ((code = core_dev_plan_host(tx, conn, dp, host_id))) return code;
  char seed_pool[40] = "";
  if (in->user_data && *in->user_data &&
      (code = core_seed_pool(tx, conn, a->c, host_id, seed_pool)))
    return code;
  vm->placement = in->placement; /* the pin is implied by the devices, not recorded */
  if (req->validate_only) {
    vm->name = core_strdup(tx->call, "");
    a->would_be = vm;
    *a->out = core_op_done_now(tx->call, "VmService.CreateVm", name, &vm->base);
    return *a->out ? CORE_OK : core_fail(tx->call, CORE_INTERNAL, "out of memory");
  }
  char vcpus[16], mem[24], maxv[16], maxm[24], fw[8];
  snprintf(vcpus, sizeof(vcpus), "%d", vm->vcpus);
  snprintf(mem, sizeof(mem), "%" PRId64, vm->memory_mib);
  snprintf(maxv, sizeof(maxv), "%d", vm->max_vcpus);
  snprintf(maxm, sizeof(maxm), "%" PRId64, vm->max_memory_mib);
  snprintf(fw, sizeof(fw), "%d", (int)vm->firmware);
  const char *p[] = {puid,
                     req->vm_id,
                     in->description ? in->description : "",
                     a->labels,
                     vcpus,
                     mem,
                     maxv,
                     maxm,
                     NULL,
                     NULL,
                     a->placement,
                     in->user_data ? in->user_data : "",
                     in->machine_type ? in->machine_type : "",
                     fw,
                     host_uid};
  Novacron__V1__Vm devs = NOVACRON__V1__VM__INIT, nicm = NOVACRON__V1__VM__INIT;
  devs.disks = vm->disks;
  devs.n_disks = vm->n_disks;
  nicm.nics = vm->nics;
  nicm.n_nics = vm->n_nics;
  char *pdisks = core_pack_bytea(&devs.base), *pnics = core_pack_bytea(&nicm.base);
  p[8] = pdisks;
  p[9] = pnics;
  if (!pdisks || !pnics) {
    free(pdisks);
    free(pnics);
    return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  }
  code = core_q(tx, conn, "vm_insert",
                "WITH v AS (INSERT INTO vms (project, vm_id, description, labels, vcpus, "
                "memory_mib, max_vcpus, max_memory_mib, disks, nics, placement, user_data, "
                "machine_type, firmware, host, state) VALUES ($1::uuid, $2, $3, $4::jsonb, "
                "$5::int, $6::bigint, $7::int, $8::bigint, $9::bytea, $10::bytea, $11::bytea, "
                "$12, $13, $14::smallint, $15::uuid, 1) RETURNING *) SELECT " VM_COLS
                " FROM v JOIN projects p ON p.id = v.project LEFT JOIN hosts h ON h.id = v.host",
                15, p, &r);
  free(pdisks);
  free(pnics);
  if (code) return code;
  Novacron__V1__Vm *row = core_vm_from_row(tx->call, r, 0);
  char uid[40];
  snprintf(uid, sizeof(uid), "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  if (!row) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  if ((code = core_dev_plan_record(tx, conn, dp, uid))) return code;
  if (*seed_pool) {
    const char *sp[] = {uid, seed_pool};
    if ((code = core_q(tx, conn, "vm_seed_pool_set",
                       "UPDATE vms SET seed_pool = $2::uuid WHERE id = $1::uuid", 2, sp, &r)))
      return code;
    PQclear(r);
  }
  if ((code = core_emit(tx, conn, NULL, NOVACRON__V1__EVENT__TYPE__TYPE_VM_CREATED, row->name,
                        a->project, "created", &row->base)))
    return code;
  core_op_new n = {.verb = "VmService.CreateVm",
                   .target = row->name,
                   .target_uid = uid,
                   .project_uid = puid,
                   .project_id = a->project,
                   .req = &req->base,
                   .request_id = req->request_id,
                   .status_message = "queued: define the domain"};
  if ((code = core_op_enqueue(tx, conn, &n, a->out)) ||
      (code = core_dev_plan_tag(tx, conn, dp, uid, *a->out)))
    return code;
  return core_idem_store(tx, conn, req->request_id, &req->base, a->resp);
}

CORE_COMPUTE_FN(create_vm, CreateVmRequest, CreateVmResponse) {
  int code = core_check_request_id(call, req->request_id);
  if (code) return code;
  char project[64];
  if (!core_name1(req->parent, "projects/", project, sizeof(project)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "parent: must be projects/{project}");
  if (!core_id_valid(req->vm_id))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "vm_id: 1-63 characters of a-z, 0-9 and '-', starting with a letter and not "
                     "ending with '-'");
  if (req->vm_id[strlen(req->vm_id) - 1] == '-')
    return core_fail(call, CORE_INVALID_ARGUMENT, "vm_id: must not end with '-'");
  const Novacron__V1__Vm *in = req->vm;
  if (!in) return core_fail(call, CORE_INVALID_ARGUMENT, "vm: required");
  if ((code = check_sizes(call, in->vcpus, in->memory_mib, in->max_vcpus, in->max_memory_mib,
                          "vm.")) ||
      (code = core_check_text(call, "vm.description", in->description, 1024)) ||
      (code = check_machine_type(call, in->machine_type)) ||
      (code = check_placement(call, in->placement)) ||
      (code = check_devices(call, project, in->disks, in->n_disks, in->nics, in->n_nics)))
    return code;
  if (in->user_data && strlen(in->user_data) > 65536)
    return core_fail(call, CORE_INVALID_ARGUMENT, "vm.user_data: at most 64 KiB");
  if (in->firmware > NOVACRON__V1__VM__FIRMWARE__FIRMWARE_UEFI || (int)in->firmware < 0)
    return core_fail(call, CORE_INVALID_ARGUMENT, "vm.firmware: unknown value %d",
                     (int)in->firmware);
  if (in->firmware == NOVACRON__V1__VM__FIRMWARE__FIRMWARE_UEFI && in->machine_type &&
      *in->machine_type && strstr(in->machine_type, "q35") == NULL)
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "vm.firmware: FIRMWARE_UEFI needs machine type q35 (got %s)",
                     in->machine_type);
  char *labels = NULL;
  if ((code = core_labels_json(call, in->labels, in->n_labels, &labels))) return code;
  Novacron__V1__VmPlacement nopl = NOVACRON__V1__VM_PLACEMENT__INIT;
  create_arg a = {.c = c,
                  .req = req,
                  .resp = &resp->base,
                  .project = project,
                  .labels = labels,
                  .placement = core_pack_bytea(in->placement ? &in->placement->base : &nopl.base),
                  .out = &resp->operation};
  if (!a.placement)
    code = core_fail(call, CORE_INTERNAL, "out of memory");
  else
    code = core_run_tx(c->db, call, create_tx, &a);
  free(labels);
  free(a.placement);
  if (code == CORE_OK && !req->validate_only) {
    core_events_kick(c->ev);
    core_compute_kick(c);
  }
  return code;
}

/* ================= Get / List / Update ================= */

typedef struct get_arg {
  const char *project, *vm;
  Novacron__V1__Vm **out;
} get_arg;

static int get_tx(store_conn *conn, core_tx *tx) {
  get_arg *a = tx->arg;
  PGresult *r;
  int code = load_vm(tx, conn, a->project, a->vm, false, &r);
  if (code) return code;
  *a->out = core_vm_from_row(tx->call, r, 0);
  PQclear(r);
  return *a->out ? CORE_OK : core_fail(tx->call, CORE_INTERNAL, "out of memory");
}

static int parse_vm_name(core_call *call, const char *field, const char *name, char project[64],
                         char vm[64]) {
  if (!core_name2(name, "vms", project, 64, vm, 64))
    return core_fail(call, CORE_INVALID_ARGUMENT, "%s: must be projects/{project}/vms/{vm}", field);
  return CORE_OK;
}

CORE_COMPUTE_FN(get_vm, GetVmRequest, GetVmResponse) {
  char project[64], vm[64];
  int code = parse_vm_name(call, "name", req->name, project, vm);
  if (code) return code;
  get_arg a = {.project = project, .vm = vm, .out = &resp->vm};
  return core_run_ro(c->db, call, get_tx, &a);
}

static const lq_enum_value vm_states[] = {
    {"STATE_PENDING", 1}, {"STATE_STOPPED", 2},   {"STATE_STARTING", 3},  {"STATE_RUNNING", 4},
    {"STATE_PAUSED", 5},  {"STATE_STOPPING", 6},  {"STATE_MIGRATING", 7}, {"STATE_ERROR", 8},
    {"STATE_UNKNOWN", 9}, {"STATE_DELETING", 10},
};
static const lq_field vm_fields[] = {
    LQ_NAME_FIELD("('projects/' || p.project_id || '/vms/' || v.vm_id)"),
    LQ_ENUM_FIELD("state", "v.state", vm_states),
    {.name = "host",
     .column = "('hosts/' || h.host_id)",
     .type = LQ_STRING,
     .filterable = true,
     .wildcard = true},
    {.name = "vcpus", .column = "v.vcpus", .type = LQ_INT, .filterable = true},
    {.name = "memory_mib", .column = "v.memory_mib", .type = LQ_INT, .filterable = true},
    {.name = "create_time",
     .column = "v.created_at",
     .type = LQ_TIME,
     .filterable = true,
     .orderable = true},
    {.name = "update_time",
     .column = "v.updated_at",
     .type = LQ_TIME,
     .filterable = true,
     .orderable = true},
    {.name = "labels", .column = "v.labels", .type = LQ_LABELS, .filterable = true},
};
static const lq_spec vm_spec = {
    vm_fields, sizeof(vm_fields) / sizeof(vm_fields[0]), "name", "v.id", 50, 500};

CORE_LIST_ROW(vm_row, Novacron__V1__ListVmsResponse, vms, core_vm_from_row)

CORE_COMPUTE_FN(list_vms, ListVmsRequest, ListVmsResponse) {
  const char *parent = req->parent ? req->parent : "";
  char project[64] = "";
  bool all = strcmp(parent, "projects/-") == 0;
  if (!all && !core_name1(parent, "projects/", project, sizeof(project)))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "parent: must be projects/{project} or "
                     "projects/-");
  /* projects/-: the projects the caller has a role on (all for system
   * administrators) */
  char vis[CORE_MAX_BINDINGS * 66 + 4];
  core_visible_projects(call->who, vis, sizeof(vis));
  char fp[96];
  snprintf(fp, sizeof(fp), "vms|%s", parent);
  core_list_req l = {.spec = &vm_spec,
                     .select = "SELECT " VM_COLS ", count(*) OVER ()" VM_FROM
                               " WHERE ($1::text IS NULL OR p.project_id = $1) AND ($2::text[] IS "
                               "NULL OR p.project_id = ANY($2::text[]))",
                     .fixed = {all ? NULL : project, all && !call->who->system_admin ? vis : NULL},
                     .nfixed = 2,
                     CORE_LIST_PAGE(req, resp),
                     .fingerprint = fp,
                     .ncols = VM_NCOLS,
                     .row = vm_row,
                     .total_size = &resp->total_size};
  return core_run_ro(c->db, call, core_list_tx, &l);
}

typedef struct update_arg {
  const Novacron__V1__UpdateVmRequest *req;
  ProtobufCMessage *resp;
  const char *project, *vm, *labels, *placement;
  Novacron__V1__Vm **out;
} update_arg;

static int update_tx(store_conn *conn, core_tx *tx) {
  update_arg *a = tx->arg;
  bool found;
  int code = core_idem_replay(tx, conn, a->req->request_id, &a->req->base, a->resp, &found);
  if (code || found) return code;
  PGresult *r;
  if ((code = load_vm(tx, conn, a->project, a->vm, true, &r))) return code;
  char uid[40];
  snprintf(uid, sizeof(uid), "%s", PQgetvalue(r, 0, 0));
  int64_t version = core_i64(r, 0, 18);
  PQclear(r);
  if ((code = core_check_etag(tx->call, a->req->vm->etag, version, "the VM"))) return code;
  const Google__Protobuf__FieldMask *m = a->req->update_mask;
  const char *p[] = {uid,
                     core_mask_has(m, "description") ? "t" : "f",
                     a->req->vm->description ? a->req->vm->description : "",
                     core_mask_has(m, "labels") ? "t" : "f",
                     a->labels,
                     core_mask_has(m, "placement") ? "t" : "f",
                     a->placement};
  code = core_q(tx, conn, "vm_update",
                "WITH v AS (UPDATE vms SET description = CASE WHEN $2::bool THEN $3 ELSE "
                "description END, labels = CASE WHEN $4::bool THEN $5::jsonb ELSE labels END, "
                "placement = CASE WHEN $6::bool THEN $7::bytea ELSE placement END, version = "
                "version + 1, updated_at = now() WHERE id = $1::uuid RETURNING *) SELECT " VM_COLS
                " FROM v JOIN projects p ON p.id = v.project LEFT JOIN hosts h ON h.id = v.host",
                7, p, &r);
  if (code) return code;
  *a->out = core_vm_from_row(tx->call, r, 0);
  PQclear(r);
  if (!*a->out) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  if ((code = core_emit(tx, conn, NULL, NOVACRON__V1__EVENT__TYPE__TYPE_VM_UPDATED, (*a->out)->name,
                        a->project, "metadata updated", &(*a->out)->base)))
    return code;
  return core_idem_store(tx, conn, a->req->request_id, &a->req->base, a->resp);
}

CORE_COMPUTE_FN(update_vm, UpdateVmRequest, UpdateVmResponse) {
  int code = core_check_request_id(call, req->request_id);
  if (code) return code;
  if (!req->vm) return core_fail(call, CORE_INVALID_ARGUMENT, "vm: required");
  char project[64], vm[64];
  if ((code = parse_vm_name(call, "vm.name", req->vm->name, project, vm))) return code;
  const Google__Protobuf__FieldMask *m = req->update_mask;
  if (!m || m->n_paths == 0)
    return core_fail(call, CORE_INVALID_ARGUMENT, "update_mask: list the fields to change");
  for (size_t i = 0; i < m->n_paths; i++)
    if (strcmp(m->paths[i], "description") && strcmp(m->paths[i], "labels") &&
        strcmp(m->paths[i], "placement"))
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "update_mask: \"%.64s\" cannot be changed (allowed: description, labels, "
                       "placement)",
                       m->paths[i]);
  if ((code = core_check_text(call, "vm.description", req->vm->description, 1024)) ||
      (code = check_placement(call, req->vm->placement)))
    return code;
  char *labels = NULL;
  if ((code = core_labels_json(call, req->vm->labels, req->vm->n_labels, &labels))) return code;
  Novacron__V1__VmPlacement nopl = NOVACRON__V1__VM_PLACEMENT__INIT;
  char *pl = core_pack_bytea(req->vm->placement ? &req->vm->placement->base : &nopl.base);
  update_arg a = {.req = req,
                  .resp = &resp->base,
                  .project = project,
                  .vm = vm,
                  .labels = labels,
                  .placement = pl,
                  .out = &resp->vm};
  code = pl ? core_run_tx(c->db, call, update_tx, &a)
            : core_fail(call, CORE_INTERNAL, "out of memory");
  free(labels);
  free(pl);
  if (code == CORE_OK) core_events_kick(c->ev);
  return code;
}

/* ================= verbs that journal an operation ================= */

typedef struct verb_arg {
  core_compute *c;
  const char *verb; /* "StartVm" */
  const char *name; /* the VM name in the request */
  const char *rid;
  const char *etag;
  const ProtobufCMessage *req;
  ProtobufCMessage *resp;
  Novacron__V1__Operation **out;
  unsigned allowed;  /* BIT(state) mask */
  const char *needs; /* "STATE_STOPPED or STATE_ERROR" */
  int transitional;  /* 0: keep the state */
  const char *queued;
  /* extra checks on the locked VM; may fill `extra` */
  int (*check)(core_tx *tx, store_conn *conn, struct verb_arg *a, const Novacron__V1__Vm *vm,
               const char *uid, const char *puid);
  void *extra;
  char project[64], vm[64];
  char target[256];    /* set by `check` when the operation targets a child */
  char target_uid[40]; /* set by `check` when the operation's work is another row's */
  bool overtake;       /* StopVm with force: may cancel a graceful StopVm in progress */
} verb_arg;

static int devices_check(core_tx *tx, store_conn *conn, struct verb_arg *a,
                         const Novacron__V1__Vm *vm, const char *uid, const char *puid);

static int verb_tx(store_conn *conn, core_tx *tx) {
  verb_arg *a = tx->arg;
  bool found;
  int code = core_idem_replay(tx, conn, a->rid, a->req, a->resp, &found);
  if (code || found) return code;
  PGresult *r;
  if ((code = load_vm(tx, conn, a->project, a->vm, true, &r))) return code;
  Novacron__V1__Vm *vm = core_vm_from_row(tx->call, r, 0);
  char uid[40], puid[40];
  snprintf(uid, sizeof(uid), "%s", PQgetvalue(r, 0, 0));
  snprintf(puid, sizeof(puid), "%s", PQgetvalue(r, 0, 21));
  int64_t version = core_i64(r, 0, 18);
  PQclear(r);
  if (!vm) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  if (a->etag && (code = core_check_etag(tx->call, a->etag, version, "the VM"))) return code;
  char busy[40], bverb[96];
  if ((code = core_op_active(tx, conn, uid, busy, bverb))) return code;
  if (busy[0] && a->overtake && strcmp(bverb, VERB_PREFIX "VmService.StopVm") == 0) {
    /* a forced stop queued behind a graceful one: the graceful one is
     * cancelled (it stops waiting for the guest within a second) and the
     * forced one runs next */
    const char *q[] = {busy};
    PGresult *cr;
    if ((code = core_q(tx, conn, "op_cancel_for_force",
                       "UPDATE operations SET cancel_requested = true WHERE id = $1::uuid", 1, q,
                       &cr)))
      return code;
    PQclear(cr);
  } else if (busy[0]) {
    return core_op_busy(tx->call, vm->name, busy, bverb, a->project);
  }
  /* no operation runs on the VM: what finished ones left reserved is freed */
  if ((code = core_dev_release_stale(tx, conn, NULL, uid))) return code;
  if (!(a->allowed & BIT(vm->state)))
    return core_fail(tx->call, CORE_FAILED_PRECONDITION, "VM %s is %s; %s needs %s", vm->name,
                     core_vm_state_name(vm->state), a->verb, a->needs);
  if (a->check && (code = a->check(tx, conn, a, vm, uid, puid))) return code;
  if (a->transitional && (code = core_vm_set_state(tx, conn, NULL, uid, a->transitional, "", NULL)))
    return code;
  char verb[64];
  snprintf(verb, sizeof(verb), "VmService.%s", a->verb);
  core_op_new n = {.verb = verb,
                   .target = a->target[0] ? a->target : vm->name,
                   .target_uid = a->target_uid[0] ? a->target_uid : uid,
                   .project_uid = puid,
                   .project_id = a->project,
                   .req = a->req,
                   .request_id = a->rid,
                   .status_message = a->queued};
  if ((code = core_op_enqueue(tx, conn, &n, a->out))) return code;
  if (a->check == devices_check && a->extra &&
      (code = core_dev_plan_tag(tx, conn, a->extra, uid, *a->out)))
    return code;
  return core_idem_store(tx, conn, a->rid, a->req, a->resp);
}

static int run_verb(core_compute *c, core_call *call, verb_arg *a) {
  int code = core_check_request_id(call, a->rid);
  if (code) return code;
  if ((code = parse_vm_name(call, "name", a->name, a->project, a->vm))) return code;
  a->c = c;
  code = core_run_tx(c->db, call, verb_tx, a);
  if (code == CORE_OK) {
    core_events_kick(c->ev);
    core_compute_kick(c);
  }
  return code;
}

#define VERB_INIT(V, field)                                                                      \
  .verb = V, .name = req->field, .rid = req->request_id, .req = &req->base, .resp = &resp->base, \
  .out = &resp->operation

CORE_COMPUTE_FN(start_vm, StartVmRequest, StartVmResponse) {
  verb_arg a = {VERB_INIT("StartVm", name), .allowed = BIT(S(STOPPED)) | BIT(S(ERROR)),
                .needs = "STATE_STOPPED or STATE_ERROR", .transitional = S(STARTING),
                .queued = "queued: boot the domain"};
  return run_verb(c, call, &a);
}

CORE_COMPUTE_FN(stop_vm, StopVmRequest, StopVmResponse) {
  if (req->force && req->timeout)
    return core_fail(call, CORE_INVALID_ARGUMENT, "timeout: cannot be combined with force");
  if (req->timeout) {
    int64_t s = req->timeout->seconds;
    if (s < 1 || s > 3600 || req->timeout->nanos < 0)
      return core_fail(call, CORE_INVALID_ARGUMENT, "timeout: must be 1 s to 1 h");
  }
  unsigned allowed = BIT(S(RUNNING)) | BIT(S(STARTING)) | BIT(S(STOPPING));
  if (req->force) allowed |= BIT(S(PAUSED)) | BIT(S(ERROR));
  verb_arg a = {VERB_INIT("StopVm", name),
                .allowed = allowed,
                .needs = req->force ? "STATE_RUNNING, STATE_STARTING, STATE_STOPPING, "
                                      "STATE_PAUSED or STATE_ERROR"
                                    : "STATE_RUNNING, STATE_STARTING or STATE_STOPPING (PAUSED "
                                      "and ERROR need force)",
                .transitional = S(STOPPING),
                .overtake = req->force,
                .queued = req->force ? "queued: power off" : "queued: ACPI shutdown"};
  return run_verb(c, call, &a);
}

CORE_COMPUTE_FN(reboot_vm, RebootVmRequest, RebootVmResponse) {
  verb_arg a = {VERB_INIT("RebootVm", name), .allowed = BIT(S(RUNNING)), .needs = "STATE_RUNNING",
                .queued = "queued: reboot"};
  return run_verb(c, call, &a);
}

CORE_COMPUTE_FN(pause_vm, PauseVmRequest, PauseVmResponse) {
  verb_arg a = {VERB_INIT("PauseVm", name), .allowed = BIT(S(RUNNING)), .needs = "STATE_RUNNING",
                .queued = "queued: suspend the vCPUs"};
  return run_verb(c, call, &a);
}

CORE_COMPUTE_FN(resume_vm, ResumeVmRequest, ResumeVmResponse) {
  verb_arg a = {VERB_INIT("ResumeVm", name), .allowed = BIT(S(PAUSED)), .needs = "STATE_PAUSED",
                .queued = "queued: resume the vCPUs"};
  return run_verb(c, call, &a);
}

/* DeleteVm with delete_volumes: the volumes go with the VM's operation,
 * so none may have an operation of its own in progress. */
static int delete_check(core_tx *tx, store_conn *conn, verb_arg *a, const Novacron__V1__Vm *vm,
                        const char *uid, const char *puid) {
  (void)puid;
  const Novacron__V1__DeleteVmRequest *req = (const void *)a->req;
  if (!req->delete_volumes) return CORE_OK;
  const char *k[] = {uid};
  PGresult *r;
  int code = core_q(tx, conn, "vm_volumes_busy",
                    "SELECT 'projects/' || p.project_id || '/volumes/' || vo.volume_id FROM "
                    "volumes vo JOIN projects p ON p.id = vo.project WHERE vo.attached_vm = "
                    "$1::uuid AND EXISTS (SELECT 1 FROM operations o WHERE o.target_uid = vo.id "
                    "AND o.state IN (1, 2)) LIMIT 1",
                    1, k, &r);
  if (code) return code;
  if (PQntuples(r)) {
    code = core_fail(tx->call, CORE_FAILED_PRECONDITION,
                     "volume %s of %s has an operation in progress; wait for it before deleting "
                     "the VM with its volumes",
                     PQgetvalue(r, 0, 0), vm->name);
  }
  PQclear(r);
  return code;
}

CORE_COMPUTE_FN(delete_vm, DeleteVmRequest, DeleteVmResponse) {
  unsigned allowed = BIT(S(STOPPED)) | BIT(S(ERROR));
  if (req->force)
    allowed |= BIT(S(RUNNING)) | BIT(S(PAUSED)) | BIT(S(UNKNOWN)) | BIT(S(STARTING)) |
               BIT(S(STOPPING)) | BIT(S(PENDING));
  verb_arg a = {VERB_INIT("DeleteVm", name),
                .etag = req->etag,
                .allowed = allowed,
                .needs = req->force ? "a state other than STATE_MIGRATING or STATE_DELETING"
                                    : "STATE_STOPPED or STATE_ERROR (or force)",
                .transitional = S(DELETING),
                .check = delete_check,
                .queued = "queued: undefine the domain"};
  return run_verb(c, call, &a);
}

static int resize_check(core_tx *tx, store_conn *conn, verb_arg *a, const Novacron__V1__Vm *vm,
                        const char *uid, const char *puid) {
  const Novacron__V1__ResizeVmRequest *req = (const Novacron__V1__ResizeVmRequest *)a->req;
  int32_t vcpus = req->vcpus ? req->vcpus : vm->vcpus;
  int64_t mem = req->memory_mib ? req->memory_mib : vm->memory_mib;
  int32_t maxv = req->max_vcpus ? req->max_vcpus : vm->max_vcpus;
  int64_t maxm = req->max_memory_mib ? req->max_memory_mib : vm->max_memory_mib;
  if (req->live) {
    if (vcpus > vm->max_vcpus)
      return core_fail(tx->call, CORE_INVALID_ARGUMENT,
                       "vcpus: %d is above the VM's max_vcpus %d (a live resize stays within it)",
                       vcpus, vm->max_vcpus);
    if (mem > vm->max_memory_mib)
      return core_fail(tx->call, CORE_INVALID_ARGUMENT,
                       "memory_mib: %" PRId64 " is above the VM's max_memory_mib %" PRId64
                       " (a live resize stays within it)",
                       mem, vm->max_memory_mib);
  } else {
    if (maxv < vcpus) maxv = req->max_vcpus ? maxv : vcpus;
    if (maxm < mem) maxm = req->max_memory_mib ? maxm : mem;
    int code = check_sizes(tx->call, vcpus, mem, maxv, maxm, "");
    if (code) return code;
  }
  (void)uid;
  /* growth counts against the quota */
  int64_t dv = vcpus - vm->vcpus, dm = mem - vm->memory_mib;
  if (dv > 0 || dm > 0) return check_quota(tx, conn, puid, dv > 0 ? dv : 0, dm > 0 ? dm : 0, 0);
  return CORE_OK;
}

CORE_COMPUTE_FN(resize_vm, ResizeVmRequest, ResizeVmResponse) {
  if (!req->vcpus && !req->memory_mib && !req->max_vcpus && !req->max_memory_mib)
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "set at least one of vcpus, memory_mib, max_vcpus and max_memory_mib");
  if (req->vcpus < 0 || req->vcpus > 256)
    return core_fail(call, CORE_INVALID_ARGUMENT, "vcpus: must be 1 to 256 (or 0 to keep)");
  if (req->memory_mib < 0 || (req->memory_mib && req->memory_mib < 64) || req->memory_mib > 4194304)
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "memory_mib: must be 64 to 4194304 (or 0 to keep)");
  if (req->max_vcpus < 0 || req->max_vcpus > 256 || req->max_memory_mib < 0 ||
      req->max_memory_mib > 4194304)
    return core_fail(call, CORE_INVALID_ARGUMENT, "max_vcpus/max_memory_mib: out of range");
  if (req->live && (req->max_vcpus || req->max_memory_mib))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "max_vcpus and max_memory_mib change only on a stopped VM (live = false)");
  verb_arg a = {VERB_INIT("ResizeVm", name),
                .allowed = req->live ? BIT(S(RUNNING)) : BIT(S(STOPPED)),
                .needs = req->live ? "STATE_RUNNING for a live resize"
                                   : "STATE_STOPPED (or live = true on a running VM)",
                .check = resize_check, .queued = "queued: resize"};
  return run_verb(c, call, &a);
}

/* Volumes live in host-local pools and networks on one host: a VM that
 * uses them cannot move or be copied to another host by itself. */
static int devices_pin(core_call *call, const Novacron__V1__Vm *vm, const char *verb) {
  if (vm->n_disks == 0 && vm->n_nics == 0 && vm->user_data && *vm->user_data)
    return core_fail(call, CORE_FAILED_PRECONDITION,
                     "VM %s has a cloud-init config drive in a pool of its host; %s needs a VM "
                     "without user_data",
                     vm->name, verb);
  if (vm->n_disks == 0 && vm->n_nics == 0) return CORE_OK;
  return core_fail(call, CORE_FAILED_PRECONDITION,
                   "VM %s has %zu disk(s) and %zu NIC(s) on volumes and networks of its host; "
                   "%s needs a VM without them (detach them first)",
                   vm->name, vm->n_disks, vm->n_nics, verb);
}

static int migrate_check(core_tx *tx, store_conn *conn, verb_arg *a, const Novacron__V1__Vm *vm,
                         const char *uid, const char *puid) {
  const Novacron__V1__MigrateVmRequest *req = (const Novacron__V1__MigrateVmRequest *)a->req;
  int dcode = devices_pin(tx->call, vm, "MigrateVm");
  if (dcode) return dcode;
  char cur[64] = "";
  core_name1(vm->host, "hosts/", cur, sizeof(cur));
  if (req->target_host && *req->target_host) {
    char dst[64];
    core_name1(req->target_host, "hosts/", dst, sizeof(dst));
    if (strcmp(dst, cur) == 0)
      return core_fail(tx->call, CORE_FAILED_PRECONDITION, "target_host: the VM already runs on %s",
                       req->target_host);
    const char *p[] = {dst};
    PGresult *r;
    int code = core_q(tx, conn, "host_sched",
                      "SELECT state, cordoned FROM hosts WHERE host_id = $1", 1, p, &r);
    if (code) return code;
    if (PQntuples(r) == 0) {
      PQclear(r);
      return core_fail(tx->call, CORE_NOT_FOUND, "target_host: host %s not found",
                       req->target_host);
    }
    int st = (int)core_i64(r, 0, 0);
    bool cordoned = core_bool(r, 0, 1);
    PQclear(r);
    if (st != NOVACRON__V1__HOST__STATE__STATE_READY || cordoned)
      return core_fail(
          tx->call, CORE_FAILED_PRECONDITION,
          "target_host: %s is %s%s; migrations need a READY, uncordoned host", req->target_host,
          cordoned ? "cordoned" : "not ready",
          cordoned && st != NOVACRON__V1__HOST__STATE__STATE_READY ? " and not ready" : "");
    /* its room now, as an early answer (the operation checks it again and
     * holds it while it moves the VM) */
    Novacron__V1__Vm pinned = *vm;
    Novacron__V1__VmPlacement pl = NOVACRON__V1__VM_PLACEMENT__INIT;
    pl.host = req->target_host;
    pinned.placement = &pl;
    char h[64], hu[40];
    if ((code = core_place(tx, conn, a->c, &pinned, puid, uid, cur, h, hu))) return code;
  } else {
    char h[64], hu[40];
    int code = core_place(tx, conn, a->c, vm, puid, uid, cur, h, hu);
    if (code) return code;
  }
  return CORE_OK;
}

CORE_COMPUTE_FN(migrate_vm, MigrateVmRequest, MigrateVmResponse) {
  char h[64];
  if (req->target_host && *req->target_host &&
      !core_name1(req->target_host, "hosts/", h, sizeof(h)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "target_host: must be hosts/{host} or empty");
  verb_arg a = {VERB_INIT("MigrateVm", name),
                .allowed = BIT(S(RUNNING)) | BIT(S(PAUSED)) | BIT(S(STOPPED)),
                .needs = "STATE_RUNNING, STATE_PAUSED or STATE_STOPPED",
                .transitional = S(MIGRATING),
                .check = migrate_check,
                .queued = "queued: migrate"};
  return run_verb(c, call, &a);
}

/* CloneVm: the new VM row (PENDING) is created with the operation. */
static int clone_check(core_tx *tx, store_conn *conn, verb_arg *a, const Novacron__V1__Vm *vm,
                       const char *uid, const char *puid) {
  const Novacron__V1__CloneVmRequest *req = (const Novacron__V1__CloneVmRequest *)a->req;
  int dcode = devices_pin(tx->call, vm, "CloneVm");
  if (dcode) return dcode;
  const char *k[] = {puid, req->vm_id};
  PGresult *r;
  int code = core_q(tx, conn, "vm_exists",
                    "SELECT 1 FROM vms WHERE project = $1::uuid AND vm_id = $2", 2, k, &r);
  if (code) return code;
  bool dup = PQntuples(r) > 0;
  PQclear(r);
  if (dup)
    return core_fail(tx->call, CORE_ALREADY_EXISTS, "VM projects/%s/vms/%s already exists",
                     a->project, req->vm_id);
  if ((code = check_quota(tx, conn, puid, vm->vcpus, vm->memory_mib, 1))) return code;
  /* The clone's row is reserved now (PENDING, on a host the scheduler
   * picks under the source's rules); the executor defines its domain. */
  char host_id[64], host_uid[40];
  if ((code = core_place(tx, conn, a->c, vm, puid, NULL, NULL, host_id, host_uid))) return code;
  char *labels = NULL;
  if (req->n_labels && (code = core_labels_json(tx->call, req->labels, req->n_labels, &labels)))
    return code;
  const char *p[] = {uid, req->vm_id,
                     req->description && *req->description ? req->description : NULL, labels,
                     host_uid};
  code = core_q(tx, conn, "vm_clone_insert",
                "WITH v AS (INSERT INTO vms (project, vm_id, description, labels, vcpus, "
                "memory_mib, max_vcpus, max_memory_mib, disks, nics, placement, user_data, "
                "machine_type, firmware, host, state) SELECT project, $2, coalesce($3, "
                "description), coalesce($4::jsonb, labels), vcpus, memory_mib, max_vcpus, "
                "max_memory_mib, disks, nics, placement, user_data, machine_type, firmware, "
                "$5::uuid, 1 FROM vms WHERE id = $1::uuid RETURNING *) SELECT " VM_COLS
                " FROM v JOIN projects p ON p.id = v.project LEFT JOIN hosts h ON h.id = v.host",
                5, p, &r);
  free(labels);
  if (code) return code;
  Novacron__V1__Vm *row = core_vm_from_row(tx->call, r, 0);
  /* the operation acts on the clone's row: the reconciler and other
   * operations see it busy while its domain is being defined */
  snprintf(a->target_uid, sizeof(a->target_uid), "%s", PQgetvalue(r, 0, 0));
  snprintf(a->target, sizeof(a->target), "projects/%s/vms/%s", a->project, req->vm_id);
  PQclear(r);
  if (!row) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  return core_emit(tx, conn, NULL, NOVACRON__V1__EVENT__TYPE__TYPE_VM_CREATED, row->name,
                   a->project, "created (clone)", &row->base);
}

CORE_COMPUTE_FN(clone_vm, CloneVmRequest, CloneVmResponse) {
  if (!core_id_valid(req->vm_id) || req->vm_id[strlen(req->vm_id) - 1] == '-')
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "vm_id: 1-63 characters of a-z, 0-9 and '-', starting with a letter and not "
                     "ending with '-'");
  int code = core_check_text(call, "description", req->description, 1024);
  if (code) return code;
  char *labels = NULL;
  if ((code = core_labels_json(call, req->labels, req->n_labels, &labels))) return code;
  free(labels);
  if ((int)req->disk_mode < 0 ||
      req->disk_mode > NOVACRON__V1__CLONE_VM_REQUEST__DISK_MODE__DISK_MODE_LINKED)
    return core_fail(call, CORE_INVALID_ARGUMENT, "disk_mode: unknown value %d",
                     (int)req->disk_mode);
  verb_arg a = {VERB_INIT("CloneVm", name), .allowed = BIT(S(STOPPED)), .needs = "STATE_STOPPED",
                .check = clone_check, .queued = "queued: clone"};
  return run_verb(c, call, &a);
}

/* ================= devices ================= */

static int devices_check(core_tx *tx, store_conn *conn, verb_arg *a, const Novacron__V1__Vm *vm,
                         const char *uid, const char *puid) {
  dev_plan *dp = core_alloc(tx->call, sizeof(*dp));
  if (!dp) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  core_dev_plan_init(dp, a->c, a->project, puid, a->vm, vm);
  a->extra = dp; /* verb_tx tags the reservations with the operation */
  /* the quota row before volumes and pools, in the order every
   * transaction of the project takes them */
  int code = core_quota_lock(tx, conn, puid);
  if (code) return code;
  if (a->req->descriptor == &novacron__v1__attach_volume_request__descriptor) {
    const Novacron__V1__AttachVolumeRequest *req = (const void *)a->req;
    if (vm->n_disks >= 16)
      return core_fail(tx->call, CORE_FAILED_PRECONDITION, "VM %s already has 16 disks", vm->name);
    if ((code =
             check_devices(tx->call, a->project, (Novacron__V1__VmDisk **)&req->disk, 1, NULL, 0)))
      return code;
    if (req->disk->bus == NOVACRON__V1__VM_DISK__BUS__BUS_SATA &&
        (vm->state == S(RUNNING) || vm->state == S(PAUSED)))
      return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                       "disk.bus: BUS_SATA is not hot-pluggable; stop VM %s first or use "
                       "BUS_VIRTIO or BUS_SCSI",
                       vm->name);
    if (!dp->pin_host[0])
      return core_fail(tx->call, CORE_FAILED_PRECONDITION, "VM %s has no host; start it first",
                       vm->name);
    if ((code = core_dev_plan_disk(tx, conn, dp, req->disk, CORE_DEV_ATTACH)) ||
        (code = core_dev_plan_host(tx, conn, dp, dp->pin_host)))
      return code;
    return core_dev_plan_record(tx, conn, dp, uid);
  }
  if (a->req->descriptor == &novacron__v1__detach_volume_request__descriptor) {
    const Novacron__V1__DetachVolumeRequest *req = (const void *)a->req;
    char vp[64], vid[64];
    if (!core_name2(req->volume, "volumes", vp, sizeof(vp), vid, sizeof(vid)))
      return core_fail(tx->call, CORE_INVALID_ARGUMENT,
                       "volume: must be projects/{project}/volumes/{volume}");
    for (size_t i = 0; i < vm->n_disks; i++)
      if (vm->disks[i]->volume && strcmp(vm->disks[i]->volume, req->volume) == 0) return CORE_OK;
    return core_fail(tx->call, CORE_NOT_FOUND, "volume %s is not attached to %s", req->volume,
                     vm->name);
  }
  if (a->req->descriptor == &novacron__v1__attach_nic_request__descriptor) {
    const Novacron__V1__AttachNicRequest *req = (const void *)a->req;
    if (vm->n_nics >= 8)
      return core_fail(tx->call, CORE_FAILED_PRECONDITION, "VM %s already has 8 NICs", vm->name);
    for (size_t i = 0; i < vm->n_nics; i++)
      if (req->nic->mac && *req->nic->mac && strcmp(vm->nics[i]->mac, req->nic->mac) == 0)
        return core_fail(tx->call, CORE_ALREADY_EXISTS, "VM %s already has a NIC with MAC %s",
                         vm->name, req->nic->mac);
    if ((code = check_devices(tx->call, a->project, NULL, 0, (Novacron__V1__VmNic **)&req->nic, 1)))
      return code;
    if (!dp->pin_host[0])
      return core_fail(tx->call, CORE_FAILED_PRECONDITION, "VM %s has no host; start it first",
                       vm->name);
    if ((code = core_dev_plan_nic(tx, conn, dp, req->nic, CORE_DEV_ATTACH))) return code;
    return core_dev_plan_record(tx, conn, dp, uid);
  }
  const Novacron__V1__DetachNicRequest *req = (const void *)a->req;
  for (size_t i = 0; i < vm->n_nics; i++)
    if (strcmp(vm->nics[i]->mac, req->mac) == 0) return CORE_OK;
  return core_fail(tx->call, CORE_NOT_FOUND, "VM %s has no NIC with MAC %s", vm->name, req->mac);
}

#define DEV_STATES (BIT(S(STOPPED)) | BIT(S(RUNNING)) | BIT(S(PAUSED)))
#define DEV_NEEDS "STATE_STOPPED, STATE_RUNNING or STATE_PAUSED"

CORE_COMPUTE_FN(attach_volume, AttachVolumeRequest, AttachVolumeResponse) {
  if (!req->disk) return core_fail(call, CORE_INVALID_ARGUMENT, "disk: required");
  verb_arg a = {VERB_INIT("AttachVolume", name), .allowed = DEV_STATES, .needs = DEV_NEEDS,
                .check = devices_check, .queued = "queued: attach"};
  return run_verb(c, call, &a);
}

CORE_COMPUTE_FN(detach_volume, DetachVolumeRequest, DetachVolumeResponse) {
  verb_arg a = {VERB_INIT("DetachVolume", name), .allowed = DEV_STATES, .needs = DEV_NEEDS,
                .check = devices_check, .queued = "queued: detach"};
  return run_verb(c, call, &a);
}

CORE_COMPUTE_FN(attach_nic, AttachNicRequest, AttachNicResponse) {
  if (!req->nic) return core_fail(call, CORE_INVALID_ARGUMENT, "nic: required");
  verb_arg a = {VERB_INIT("AttachNic", name), .allowed = DEV_STATES, .needs = DEV_NEEDS,
                .check = devices_check, .queued = "queued: attach"};
  return run_verb(c, call, &a);
}

CORE_COMPUTE_FN(detach_nic, DetachNicRequest, DetachNicResponse) {
  if (!req->mac || !mac_valid(req->mac))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "mac: must be a unicast xx:xx:xx:xx:xx:xx in lower case");
  verb_arg a = {VERB_INIT("DetachNic", name), .allowed = DEV_STATES, .needs = DEV_NEEDS,
                .check = devices_check, .queued = "queued: detach"};
  return run_verb(c, call, &a);
}

/* ================= stats ================= */

typedef struct stats_arg {
  const char *project, *vm;
  char uid[40], host[64];
  Novacron__V1__Vm *v;
} stats_arg;

static int stats_tx(store_conn *conn, core_tx *tx) {
  stats_arg *a = tx->arg;
  PGresult *r;
  int code = load_vm(tx, conn, a->project, a->vm, false, &r);
  if (code) return code;
  a->v = core_vm_from_row(tx->call, r, 0);
  snprintf(a->uid, sizeof(a->uid), "%s", PQgetvalue(r, 0, 0));
  snprintf(a->host, sizeof(a->host), "%s", core_val(r, 0, 17) ? PQgetvalue(r, 0, 17) : "");
  PQclear(r);
  return a->v ? CORE_OK : core_fail(tx->call, CORE_INTERNAL, "out of memory");
}

CORE_COMPUTE_FN(get_vm_stats, GetVmStatsRequest, GetVmStatsResponse) {
  stats_arg a = {0};
  char project[64], vm[64];
  int code = parse_vm_name(call, "name", req->name, project, vm);
  if (code) return code;
  a.project = project;
  a.vm = vm;
  if ((code = core_run_ro(c->db, call, stats_tx, &a))) return code;
  if (a.v->state == S(UNKNOWN))
    return core_fail(call, CORE_UNAVAILABLE, "the host of VM %s is unreachable", a.v->name);
  if (a.v->state != S(RUNNING) && a.v->state != S(PAUSED))
    return core_fail(call, CORE_FAILED_PRECONDITION,
                     "VM %s is %s; GetVmStats needs "
                     "STATE_RUNNING or STATE_PAUSED",
                     a.v->name, core_vm_state_name(a.v->state));
  hv_stats st;
  char err[256];
  code = hv_domain_stats(c->hv, a.host, a.uid, &st, err, sizeof(err));
  if (code) return core_fail(call, code, "VM %s: %s", a.v->name, err);
  Novacron__V1__VmStats *s = core_alloc(call, sizeof(*s));
  if (!s) return core_fail(call, CORE_INTERNAL, "out of memory");
  novacron__v1__vm_stats__init(s);
  s->vm = a.v->name;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  s->sample_time = core_ts_s(call, now.tv_sec);
  if (s->sample_time) s->sample_time->nanos = (int32_t)now.tv_nsec;
  s->cpu_time_ns = st.cpu_time_ns;
  s->vcpus_online = st.vcpus_online;
  s->vcpus_max = st.vcpus_max;
  s->memory_actual_kib = st.memory_actual_kib;
  s->memory_rss_kib = st.memory_rss_kib;
  s->memory_available_kib = st.memory_available_kib;
  s->memory_unused_kib = st.memory_unused_kib;
  for (int i = 0; i < st.ndisks; i++) {
    Novacron__V1__VmStats__DiskStats *d = core_alloc(call, sizeof(*d));
    void **slot = d ? core_push(call, (void ***)&s->disks, &s->n_disks) : NULL;
    if (!slot) return core_fail(call, CORE_INTERNAL, "out of memory");
    novacron__v1__vm_stats__disk_stats__init(d);
    d->target_device = core_strdup(call, st.disks[i].target);
    d->volume = core_strdup(call, "");
    for (size_t k = 0; k < a.v->n_disks; k++)
      if (a.v->disks[k]->target_device &&
          strcmp(a.v->disks[k]->target_device, st.disks[i].target) == 0)
        d->volume = a.v->disks[k]->volume;
    d->read_bytes = st.disks[i].read_bytes;
    d->write_bytes = st.disks[i].write_bytes;
    d->read_requests = st.disks[i].read_requests;
    d->write_requests = st.disks[i].write_requests;
    *slot = d;
  }
  for (int i = 0; i < st.nnics; i++) {
    Novacron__V1__VmStats__NicStats *n = core_alloc(call, sizeof(*n));
    void **slot = n ? core_push(call, (void ***)&s->nics, &s->n_nics) : NULL;
    if (!slot) return core_fail(call, CORE_INTERNAL, "out of memory");
    novacron__v1__vm_stats__nic_stats__init(n);
    n->mac = core_strdup(call, st.nics[i].mac);
    n->target_device = core_strdup(call, st.nics[i].target);
    n->rx_bytes = st.nics[i].rx_bytes;
    n->rx_packets = st.nics[i].rx_packets;
    n->rx_errors = st.nics[i].rx_errors;
    n->rx_drops = st.nics[i].rx_drops;
    n->tx_bytes = st.nics[i].tx_bytes;
    n->tx_packets = st.nics[i].tx_packets;
    n->tx_errors = st.nics[i].tx_errors;
    n->tx_drops = st.nics[i].tx_drops;
    *slot = n;
  }
  resp->stats = s;
  return CORE_OK;
}

/* ================= snapshots ================= */

#define SNAP_COLS                                                                  \
  "s.id, s.snapshot_id, s.description, s.labels::text, s.state, s.state_message, " \
  "s.include_memory, s.vm_state, ps.snapshot_id, s.version, " CORE_TS(             \
      "s.created_at") ", " CORE_TS("s.updated_at") ", p.project_id, v.vm_id"
#define SNAP_NCOLS 14
#define SNAP_FROM                                                                       \
  " FROM vm_snapshots s JOIN vms v ON v.id = s.vm JOIN projects p ON p.id = v.project " \
  "LEFT JOIN vm_snapshots ps ON ps.id = s.parent"

static Novacron__V1__VmSnapshot *snap_from_row(core_call *call, const PGresult *r, int i) {
  Novacron__V1__VmSnapshot *s = core_alloc(call, sizeof(*s));
  if (!s) return NULL;
  novacron__v1__vm_snapshot__init(s);
  char name[256];
  snprintf(name, sizeof(name), "projects/%s/vms/%s/snapshots/%s", PQgetvalue(r, i, 12),
           PQgetvalue(r, i, 13), PQgetvalue(r, i, 1));
  s->name = core_strdup(call, name);
  s->uid = core_strdup(call, PQgetvalue(r, i, 0));
  s->description = core_strdup(call, PQgetvalue(r, i, 2));
  s->labels = core_labels_from_json(call, PQgetvalue(r, i, 3), &s->n_labels);
  s->state = (Novacron__V1__VmSnapshot__State)core_i64(r, i, 4);
  s->state_message = core_strdup(call, PQgetvalue(r, i, 5));
  s->include_memory = core_bool(r, i, 6);
  s->vm_state = (Novacron__V1__Vm__State)core_i64(r, i, 7);
  if (core_val(r, i, 8)) {
    snprintf(name, sizeof(name), "projects/%s/vms/%s/snapshots/%s", PQgetvalue(r, i, 12),
             PQgetvalue(r, i, 13), PQgetvalue(r, i, 8));
    s->parent_snapshot = core_strdup(call, name);
  } else {
    s->parent_snapshot = core_strdup(call, "");
  }
  s->etag = core_etag(call, core_i64(r, i, 9));
  s->create_time = core_ts(call, r, i, 10);
  s->update_time = core_ts(call, r, i, 11);
  return s;
}

Novacron__V1__VmSnapshot *core_snapshot_from_row(core_call *call, const PGresult *r, int i) {
  return snap_from_row(call, r, i);
}

/* projects/{p}/vms/{v}/snapshots/{s} */
static int parse_snap_name(core_call *call, const char *field, const char *name, char vmname[160],
                           char snap[64]) {
  const char *at = name ? strstr(name, "/snapshots/") : NULL;
  char project[64], vm[64];
  if (!at || (size_t)(at - name) >= 160) goto bad;
  snprintf(vmname, 160, "%.*s", (int)(at - name), name);
  if (!core_name2(vmname, "vms", project, sizeof(project), vm, sizeof(vm))) goto bad;
  if (!core_id_valid(at + 11)) goto bad;
  snprintf(snap, 64, "%s", at + 11);
  return CORE_OK;
bad:
  return core_fail(call, CORE_INVALID_ARGUMENT,
                   "%s: must be projects/{project}/vms/{vm}/snapshots/{snapshot}", field);
}

int core_snapshot_load(core_tx *tx, store_conn *conn, const char *vm_uid, const char *snap,
                       bool lock, PGresult **res) {
  const char *p[] = {vm_uid, snap};
  int code = core_q(tx, conn, lock ? "snap_lock" : "snap_get",
                    lock ? "SELECT " SNAP_COLS ", s.config" SNAP_FROM
                           " WHERE s.vm = $1::uuid AND s.snapshot_id = $2 FOR UPDATE OF s"
                         : "SELECT " SNAP_COLS ", s.config" SNAP_FROM
                           " WHERE s.vm = $1::uuid AND s.snapshot_id = $2",
                    2, p, res);
  if (code) return code;
  if (PQntuples(*res) == 0) {
    PQclear(*res);
    *res = NULL;
    return core_fail(tx->call, CORE_NOT_FOUND, "snapshot %s not found", snap);
  }
  return CORE_OK;
}

static int snap_create_check(core_tx *tx, store_conn *conn, verb_arg *a, const Novacron__V1__Vm *vm,
                             const char *uid, const char *puid) {
  const Novacron__V1__CreateSnapshotRequest *req = (const void *)a->req;
  (void)puid;
  const char *k[] = {uid, req->snapshot_id};
  PGresult *r;
  int code =
      core_q(tx, conn, "snap_exists",
             "SELECT 1 FROM vm_snapshots WHERE vm = $1::uuid AND snapshot_id = $2", 2, k, &r);
  if (code) return code;
  bool dup = PQntuples(r) > 0;
  PQclear(r);
  if (dup)
    return core_fail(tx->call, CORE_ALREADY_EXISTS, "snapshot %s/snapshots/%s already exists",
                     vm->name, req->snapshot_id);
  char *labels = NULL;
  const Novacron__V1__VmSnapshot *in = req->snapshot;
  if (in && (code = core_labels_json(tx->call, in->labels, in->n_labels, &labels))) return code;
  char *config = core_pack_bytea(&vm->base);
  char vst[8];
  snprintf(vst, sizeof(vst), "%d", (int)vm->state);
  bool mem = in && in->include_memory && vm->state != S(STOPPED);
  const char *p[] = {uid,
                     req->snapshot_id,
                     in && in->description ? in->description : "",
                     labels ? labels : "{}",
                     mem ? "t" : "f",
                     vst,
                     config};
  code = core_q(tx, conn, "snap_insert",
                "WITH s AS (INSERT INTO vm_snapshots (vm, snapshot_id, description, labels, "
                "include_memory, vm_state, parent, config) SELECT $1::uuid, $2, $3, $4::jsonb, "
                "$5::bool, $6::smallint, current_snapshot, $7::bytea FROM vms WHERE id = $1::uuid "
                "RETURNING *) SELECT " SNAP_COLS
                " FROM s JOIN vms v ON v.id = s.vm JOIN projects p ON p.id = v.project LEFT JOIN "
                "vm_snapshots ps ON ps.id = s.parent",
                7, p, &r);
  free(labels);
  free(config);
  if (code) return code;
  Novacron__V1__VmSnapshot *snap = snap_from_row(tx->call, r, 0);
  PQclear(r);
  if (!snap) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  snprintf(a->target, sizeof(a->target), "%s", snap->name);
  return core_emit(tx, conn, NULL, NOVACRON__V1__EVENT__TYPE__TYPE_VM_SNAPSHOT_CREATED, snap->name,
                   a->project, "snapshot started", &snap->base);
}

CORE_COMPUTE_FN(create_snapshot, CreateSnapshotRequest, CreateSnapshotResponse) {
  if (!core_id_valid(req->snapshot_id))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "snapshot_id: 1-63 characters of a-z, 0-9 and '-', starting with a letter");
  int code;
  if (req->snapshot &&
      (code = core_check_text(call, "snapshot.description", req->snapshot->description, 1024)))
    return code;
  if (req->quiesce)
    return core_fail(call, CORE_FAILED_PRECONDITION,
                     "quiesce: no QEMU guest agent channel is configured for this VM");
  verb_arg a = {VERB_INIT("CreateSnapshot", parent),
                .allowed = BIT(S(RUNNING)) | BIT(S(PAUSED)) | BIT(S(STOPPED)),
                .needs = "STATE_RUNNING, STATE_PAUSED or STATE_STOPPED", .check = snap_create_check,
                .queued = "queued: take the snapshot"};
  return run_verb(c, call, &a);
}

typedef struct snap_get_arg {
  const char *vmname, *snap;
  char project[64], vm[64];
  Novacron__V1__VmSnapshot **out;
} snap_get_arg;

static int snap_get_tx(store_conn *conn, core_tx *tx) {
  snap_get_arg *a = tx->arg;
  PGresult *r;
  int code = load_vm(tx, conn, a->project, a->vm, false, &r);
  if (code) return code;
  char uid[40];
  snprintf(uid, sizeof(uid), "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  if ((code = core_snapshot_load(tx, conn, uid, a->snap, false, &r))) return code;
  *a->out = snap_from_row(tx->call, r, 0);
  PQclear(r);
  return *a->out ? CORE_OK : core_fail(tx->call, CORE_INTERNAL, "out of memory");
}

CORE_COMPUTE_FN(get_snapshot, GetSnapshotRequest, GetSnapshotResponse) {
  char vmname[160], snap[64];
  int code = parse_snap_name(call, "name", req->name, vmname, snap);
  if (code) return code;
  snap_get_arg a = {.vmname = vmname, .snap = snap, .out = &resp->snapshot};
  core_name2(vmname, "vms", a.project, sizeof(a.project), a.vm, sizeof(a.vm));
  return core_run_ro(c->db, call, snap_get_tx, &a);
}

static const lq_enum_value snap_states[] = {
    {"STATE_CREATING", 1}, {"STATE_READY", 2}, {"STATE_DELETING", 3}, {"STATE_ERROR", 4}};
static const lq_field snap_fields[] = {
    LQ_NAME_FIELD("s.snapshot_id"),
    LQ_ENUM_FIELD("state", "s.state", snap_states),
    {.name = "include_memory", .column = "s.include_memory", .type = LQ_BOOL, .filterable = true},
    {.name = "create_time",
     .column = "s.created_at",
     .type = LQ_TIME,
     .filterable = true,
     .orderable = true},
    {.name = "labels", .column = "s.labels", .type = LQ_LABELS, .filterable = true},
};
static const lq_spec snap_spec = {
    snap_fields, sizeof(snap_fields) / sizeof(snap_fields[0]), "create_time", "s.id", 50, 500};

CORE_LIST_ROW(snap_row, Novacron__V1__ListSnapshotsResponse, snapshots, snap_from_row)

typedef struct snap_list_arg {
  core_list_req l;
  char project[64], vm[64];
} snap_list_arg;

static int snap_list_tx(store_conn *conn, core_tx *tx) {
  snap_list_arg *a = tx->arg;
  PGresult *r;
  int code = load_vm(tx, conn, a->project, a->vm, false, &r);
  if (code) return code;
  PQclear(r);
  tx->arg = &a->l;
  code = core_list_tx(conn, tx);
  tx->arg = a;
  return code;
}

CORE_COMPUTE_FN(list_snapshots, ListSnapshotsRequest, ListSnapshotsResponse) {
  snap_list_arg a;
  memset(&a, 0, sizeof(a));
  int code = parse_vm_name(call, "parent", req->parent, a.project, a.vm);
  if (code) return code;
  char fp[200];
  snprintf(fp, sizeof(fp), "snaps|%s", req->parent);
  a.l = (core_list_req){.spec = &snap_spec,
                        .select = "SELECT " SNAP_COLS ", count(*) OVER ()" SNAP_FROM
                                  " WHERE p.project_id = $1 AND v.vm_id = $2",
                        .fixed = {a.project, a.vm},
                        .nfixed = 2,
                        CORE_LIST_PAGE(req, resp),
                        .fingerprint = fp,
                        .ncols = SNAP_NCOLS,
                        .row = snap_row,
                        .total_size = &resp->total_size};
  return core_run_ro(c->db, call, snap_list_tx, &a);
}

typedef struct snap_verb {
  char snap[64];
  const char *etag;
  bool deleting;
} snap_verb;

static int snap_verb_check(core_tx *tx, store_conn *conn, verb_arg *a, const Novacron__V1__Vm *vm,
                           const char *uid, const char *puid) {
  snap_verb *sv = a->extra;
  (void)puid;
  PGresult *r;
  int code = core_snapshot_load(tx, conn, uid, sv->snap, true, &r);
  if (code) return code;
  Novacron__V1__VmSnapshot *s = snap_from_row(tx->call, r, 0);
  int64_t version = core_i64(r, 0, 9);
  char suid[40];
  snprintf(suid, sizeof(suid), "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  if (!s) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  snprintf(a->target, sizeof(a->target), "%s", s->name);
  if (!sv->deleting) {
    if (s->state != NOVACRON__V1__VM_SNAPSHOT__STATE__STATE_READY)
      return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                       "snapshot %s is not STATE_READY; only ready snapshots can be reverted to",
                       s->name);
    (void)vm;
    return CORE_OK;
  }
  if ((code = core_check_etag(tx->call, sv->etag, version, "the snapshot"))) return code;
  const char *p[] = {suid};
  if ((code = core_q(tx, conn, "snap_deleting",
                     "UPDATE vm_snapshots SET state = 3, version = version + 1, updated_at = now() "
                     "WHERE id = $1::uuid",
                     1, p, &r)))
    return code;
  PQclear(r);
  s->state = NOVACRON__V1__VM_SNAPSHOT__STATE__STATE_DELETING;
  return core_emit(tx, conn, NULL, NOVACRON__V1__EVENT__TYPE__TYPE_VM_SNAPSHOT_UPDATED, s->name,
                   a->project, "deleting", &s->base);
}

CORE_COMPUTE_FN(revert_snapshot, RevertSnapshotRequest, RevertSnapshotResponse) {
  char vmname[160];
  snap_verb sv = {0};
  int code = parse_snap_name(call, "name", req->name, vmname, sv.snap);
  if (code) return code;
  verb_arg a = {.verb = "RevertSnapshot",
                .name = vmname,
                .rid = req->request_id,
                .req = &req->base,
                .resp = &resp->base,
                .out = &resp->operation,
                .allowed = BIT(S(RUNNING)) | BIT(S(PAUSED)) | BIT(S(STOPPED)) | BIT(S(ERROR)),
                .needs = "STATE_RUNNING, STATE_PAUSED, STATE_STOPPED or STATE_ERROR",
                .check = snap_verb_check,
                .extra = &sv,
                .queued = "queued: revert"};
  return run_verb(c, call, &a);
}

CORE_COMPUTE_FN(delete_snapshot, DeleteSnapshotRequest, DeleteSnapshotResponse) {
  char vmname[160];
  snap_verb sv = {.etag = req->etag, .deleting = true};
  int code = parse_snap_name(call, "name", req->name, vmname, sv.snap);
  if (code) return code;
  verb_arg a = {.verb = "DeleteSnapshot",
                .name = vmname,
                .rid = req->request_id,
                .req = &req->base,
                .resp = &resp->base,
                .out = &resp->operation,
                .allowed = BIT(S(RUNNING)) | BIT(S(PAUSED)) | BIT(S(STOPPED)) | BIT(S(ERROR)),
                .needs = "STATE_RUNNING, STATE_PAUSED, STATE_STOPPED or STATE_ERROR",
                .check = snap_verb_check,
                .extra = &sv,
                .queued = "queued: delete the snapshot"};
  return run_verb(c, call, &a);
}
