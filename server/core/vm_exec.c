/*
 * vm_exec.c - the executors of VmService operations: the hypervisor side
 * of each verb, run by the operations workers (core/ops.c).
 *
 * Each executor converges: it looks at the domain's real state first and
 * only acts when needed, so running it again after a crash finishes the
 * work instead of repeating it. The outcome is recorded in one transaction
 * with the VM row and the events (core_op_finish); a failure leaves the
 * VM in the state libvirt reports, with the error in `state_message`, and
 * a failed create or clone removes the row it reserved, so a database row
 * and a libvirt domain exist both or neither.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/compute_int.h"
#include "core/storage_int.h"
#include "core/vm_dev.h"
#include "util/log.h"

#define S(x) NOVACRON__V1__VM__STATE__STATE_##x

typedef struct vm_ctx {
  char uid[40];
  char host[64];
  char project[64];
  Novacron__V1__Vm *vm;
} vm_ctx;

typedef struct load_arg {
  vm_ctx *v;
  const char *uid;
} load_arg;

static int load_tx(store_conn *conn, core_tx *tx) {
  load_arg *a = tx->arg;
  PGresult *r;
  int code = core_vm_load_uid(tx, conn, a->uid, false, &r);
  if (code) return code;
  a->v->vm = core_vm_from_row(tx->call, r, 0);
  snprintf(a->v->uid, sizeof(a->v->uid), "%s", PQgetvalue(r, 0, 0));
  snprintf(a->v->project, sizeof(a->v->project), "%s", PQgetvalue(r, 0, 1));
  snprintf(a->v->host, sizeof(a->v->host), "%s", core_val(r, 0, 17) ? PQgetvalue(r, 0, 17) : "");
  PQclear(r);
  return a->v->vm ? CORE_OK : core_fail(tx->call, CORE_INTERNAL, "out of memory");
}

static int load_vm_uid(core_op *op, const char *uid, vm_ctx *v) {
  memset(v, 0, sizeof(*v));
  load_arg a = {.v = v, .uid = uid};
  return core_run_ro(op->c->db, &op->call, load_tx, &a);
}

/* Vm.State for what libvirt reports. */
int core_vm_state_of(int hvs) {
  switch (hvs) {
  case HV_DOM_RUNNING:
  case HV_DOM_BLOCKED:
  case HV_DOM_SHUTDOWN: return S(RUNNING);
  case HV_DOM_PAUSED:
  case HV_DOM_PMSUSPENDED: return S(PAUSED);
  case HV_DOM_SHUTOFF: return S(STOPPED);
  default: return S(ERROR);
  }
}

/* The domain's state: HV code (NOT_FOUND when it has no domain). */
static int dom_state(core_op *op, const vm_ctx *v, int *state, char *err, size_t errlen) {
  hv_domain_spec spec;
  hv_domain_info info;
  int code = hv_domain_get(op->c->hv, v->host, v->uid, &spec, &info, err, errlen);
  if (code == HV_OK) *state = info.state;
  return code;
}

/* True when the domain reaches `want` within 2 s: after a call refused
 * because the domain was changing state anyway (e.g. still starting). */
static bool settled_in(core_op *op, const vm_ctx *v, int want) {
  for (int i = 0; i < 40; i++) {
    int hs = -1;
    char err[256];
    if (dom_state(op, v, &hs, err, sizeof(err)) != HV_OK) return false;
    if (hs == want) return true;
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return false;
}

/* ---- outcomes ---- */

typedef struct state_apply {
  const char *uid;
  int state;
  const char *message;
  const core_nics_seen *nics; /* observed NIC devices and addresses, or NULL */
} state_apply;

static int apply_state(store_conn *conn, core_tx *tx, core_op *op, ProtobufCMessage **resp,
                       void *arg) {
  state_apply *s = arg;
  Novacron__V1__Vm *vm = NULL;
  int code = core_nics_record(tx, conn, s->uid, s->nics);
  if (code) return code;
  code = core_vm_set_state(tx, conn, op, s->uid, s->state, s->message, &vm);
  if (code) return code;
  *resp = &vm->base;
  return CORE_OK;
}

/* Ends the operation: success moves the VM to `ok_state`; failure leaves it
 * in the state libvirt reports (UNKNOWN when the host is unreachable,
 * ERROR when `error_state` says so) with the error as its message. */
static int finish(core_op *op, const vm_ctx *v, int code, const char *msg, int ok_state,
                  bool error_state) {
  state_apply s = {.uid = v->uid, .state = ok_state, .message = ""};
  char m[1024];
  if (code) {
    snprintf(m, sizeof(m), "%s", msg);
    int hs;
    char err[256];
    int hc = dom_state(op, v, &hs, err, sizeof(err));
    if (hc == HV_UNAVAILABLE)
      s.state = S(UNKNOWN);
    else if (hc != HV_OK || error_state)
      s.state = S(ERROR);
    else
      s.state = core_vm_state_of(hs);
    s.message = code == CORE_CANCELLED ? "" : m;
  }
  /* the NICs' host devices come and go with the domain: the VM this
   * operation returns shows them (addresses follow from the leases) */
  core_nics_seen seen = {0};
  if (v->vm && v->vm->n_nics > 0 && s.state != S(UNKNOWN)) {
    core_nics_observe(op->c, &op->call, v->host, v->uid, NULL,
                      s.state == S(RUNNING) || s.state == S(PAUSED), NULL, &seen);
    s.nics = &seen;
  }
  return core_op_finish(op, code, code ? m : NULL, apply_state, &s);
}

static int hv_fail(core_op *op, const vm_ctx *v, int code, const char *what, const char *err,
                   bool error_state) {
  char m[800];
  snprintf(m, sizeof(m), "%s: %s", what, err);
  return finish(op, v, code, m, 0, error_state);
}

/* Common start: load the VM and honour a cancellation that arrived while
 * the operation waited. Returns 1 when the operation already ended. */
static int begin(core_op *op, vm_ctx *v, const char *status) {
  int code = load_vm_uid(op, op->target_uid, v);
  if (code) return core_op_finish(op, code, op->msg, NULL, NULL), 1;
  if (!v->host[0]) {
    core_op_finish(op, CORE_FAILED_PRECONDITION, "the VM has no host", NULL, NULL);
    return 1;
  }
  if (core_op_progress(op, 5, status)) {
    finish(op, v, CORE_CANCELLED, "cancelled before it started", 0, false);
    return 1;
  }
  return 0;
}

/* ---- CreateVm and CloneVm ---- */

typedef struct remove_apply {
  const char *uid;
  const char *project;
  bool delete_volumes; /* DeleteVm's delete_volumes: the volume rows go too */
} remove_apply;

/* Removes a VM row (failed create/clone, or a delete) with its event. */
static int apply_remove(store_conn *conn, core_tx *tx, core_op *op, ProtobufCMessage **resp,
                        void *arg) {
  remove_apply *a = arg;
  PGresult *r;
  int code = core_vm_load_uid(tx, conn, a->uid, true, &r);
  if (code == CORE_NOT_FOUND) return CORE_OK;
  if (code) return code;
  Novacron__V1__Vm *vm = core_vm_from_row(tx->call, r, 0);
  PQclear(r);
  if (!vm) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  /* its volumes are freed (new ones of a failed create deleted) first */
  if ((code = core_vm_devices_release(tx, conn, op, a->uid, false, a->delete_volumes))) return code;
  const char *p[] = {a->uid};
  if ((code = core_q(tx, conn, "vm_delete", "DELETE FROM vms WHERE id = $1::uuid", 1, p, &r)))
    return code;
  PQclear(r);
  vm->state = S(DELETING);
  *resp = &vm->base;
  return core_emit(tx, conn, op, NOVACRON__V1__EVENT__TYPE__TYPE_VM_DELETED, vm->name, a->project,
                   "deleted", &vm->base);
}

typedef struct created_apply {
  const char *uid;
  int state;
  const char *message;
  const core_nics_seen *nics; /* observed once started, or NULL */
} created_apply;

/* A created VM: its new and reserved volumes are attached, its state set. */
static int apply_created(store_conn *conn, core_tx *tx, core_op *op, ProtobufCMessage **resp,
                         void *arg) {
  created_apply *a = arg;
  int code = core_vm_devices_commit(tx, conn, op, a->uid);
  if (code || (code = core_nics_record(tx, conn, a->uid, a->nics))) return code;
  Novacron__V1__Vm *vm = NULL;
  if ((code = core_vm_set_state(tx, conn, op, a->uid, a->state, a->message, &vm))) return code;
  *resp = &vm->base;
  return CORE_OK;
}

/* Defines (and optionally starts) the domain of VM `uid`. */
static int define_vm(core_op *op, const char *uid, bool start, const char *what) {
  vm_ctx v;
  int code = load_vm_uid(op, uid, &v);
  if (code) return core_op_finish(op, code, op->msg, NULL, NULL);
  remove_apply rm = {.uid = v.uid, .project = v.project};
  if (core_op_progress(op, 10, "defining the domain")) {
    /* nothing on the hypervisor yet (or only a domain to remove) */
    char err[256];
    hv_domain_undefine(op->c->hv, v.host, v.uid, err, sizeof(err));
    core_vm_seed_remove(op, v.host, v.uid);
    core_vm_volumes_unmaterialize(op, v.uid, false, false);
    return core_op_finish(op, CORE_CANCELLED, "cancelled", apply_remove, &rm);
  }
  char err[512];
  /* the VM's new volumes and its config drive first: a domain needs its
   * disks */
  if ((code = core_vm_volumes_materialize(op, v.uid, err, sizeof(err))) ||
      (code = core_vm_seed_make(op, v.host, v.uid, v.vm->user_data, err, sizeof(err)))) {
    char m[700];
    snprintf(m, sizeof(m), "%s: %s", what, err);
    core_vm_seed_remove(op, v.host, v.uid);
    core_vm_volumes_unmaterialize(op, v.uid, false, false);
    return core_op_finish(op, code, m, apply_remove, &rm);
  }
  hv_domain_spec spec;
  if ((code = core_vm_full_spec(op->c, &op->call, v.vm, v.uid, &spec)) == CORE_OK)
    code = hv_domain_define(op->c->hv, v.host, &spec, err, sizeof(err));
  else
    snprintf(err, sizeof(err), "%s", op->msg);
  if (code) {
    char m[640];
    snprintf(m, sizeof(m), "%s: defining the domain on hosts/%s failed: %s", what, v.host, err);
    /* both or neither: no domain, so no row, and no volume it created */
    char e2[256];
    hv_domain_undefine(op->c->hv, v.host, v.uid, e2, sizeof(e2));
    core_vm_seed_remove(op, v.host, v.uid);
    core_vm_volumes_unmaterialize(op, v.uid, false, false);
    return core_op_finish(op, code, m, apply_remove, &rm);
  }
  int hs = HV_DOM_SHUTOFF;
  created_apply ok = {.uid = v.uid, .state = start ? S(RUNNING) : S(STOPPED)};
  if (start) {
    core_op_progress(op, 60, "starting the domain");
    char e2[256];
    dom_state(op, &v, &hs, e2, sizeof(e2));
    if (hs != HV_DOM_RUNNING &&
        (code = hv_domain_start(op->c->hv, v.host, v.uid, err, sizeof(err)))) {
      /* the VM exists (row, domain, volumes) but is not running */
      char m[700];
      snprintf(m, sizeof(m), "the VM was created but did not start: %s", err);
      created_apply bad = {.uid = v.uid, .state = S(ERROR), .message = m};
      return core_op_finish(op, code, m, apply_created, &bad);
    }
    core_nics_seen seen = {0};
    if (spec.nnics > 0) {
      core_nics_observe(op->c, &op->call, v.host, v.uid, NULL, true, NULL, &seen);
      ok.nics = &seen;
    }
    return core_op_finish(op, CORE_OK, NULL, apply_created, &ok);
  }
  return core_op_finish(op, CORE_OK, NULL, apply_created, &ok);
}

static int exec_create(core_op *op) {
  const Novacron__V1__CreateVmRequest *req = (const void *)op->req;
  return define_vm(op, op->target_uid, req->start, "create");
}

/* The operation targets the clone's own row (reserved with it). */
static int exec_clone(core_op *op) {
  const Novacron__V1__CloneVmRequest *req = (const void *)op->req;
  return define_vm(op, op->target_uid, req->start, "clone");
}

/* ---- power ---- */

typedef struct pick_arg {
  core_compute *c;
  const Novacron__V1__Vm *vm;
  const char *uid, *exclude;
  const char *pin;   /* a migration's explicit target: only its room counts */
  const char *op_id; /* a move: reserve the room for this operation */
  char host[64], host_uid[40], puid[40];
  bool assign; /* record the choice as the VM's host */
} pick_arg;

static int pick_tx(store_conn *conn, core_tx *tx) {
  pick_arg *a = tx->arg;
  PGresult *r;
  int code = core_vm_load_uid(tx, conn, a->uid, false, &r);
  if (code) return code;
  snprintf(a->puid, sizeof(a->puid), "%s", PQgetvalue(r, 0, 21));
  PQclear(r);
  const Novacron__V1__Vm *vm = a->vm;
  Novacron__V1__Vm pinned;
  Novacron__V1__VmPlacement pl = NOVACRON__V1__VM_PLACEMENT__INIT;
  char hn[80];
  if (a->pin && *a->pin) { /* the caller chose the host: its rules do not apply */
    pinned = *a->vm;
    snprintf(hn, sizeof(hn), "hosts/%s", a->pin);
    pl.host = hn;
    pinned.placement = &pl;
    vm = &pinned;
  }
  code = core_place(tx, conn, a->c, vm, a->puid, a->uid, a->exclude, a->host, a->host_uid);
  if (code == CORE_OK && a->op_id) {
    /* held until the move is recorded or the operation ends */
    const char *p[] = {a->uid, a->host_uid, a->op_id};
    if ((code = core_q(tx, conn, "vm_reserve_move",
                       "UPDATE vms SET migrating_to = $2::uuid, migrating_op = $3::uuid WHERE id = "
                       "$1::uuid",
                       3, p, &r)))
      return code;
    PQclear(r);
  }
  if (code || !a->assign) return code;
  /* a VM without a host (its host was deregistered): place it for good */
  const char *p[] = {a->uid, a->host_uid};
  if ((code = core_q(tx, conn, "vm_assign_host",
                     "UPDATE vms SET host = $2::uuid, version = version + 1, updated_at = now() "
                     "WHERE id = $1::uuid AND host IS NULL",
                     2, p, &r)))
    return code;
  PQclear(r);
  return CORE_OK;
}

static int exec_start(core_op *op) {
  vm_ctx v;
  int code = load_vm_uid(op, op->target_uid, &v);
  if (code == CORE_OK && !v.host[0]) {
    /* StartVm places a VM without a host first (vm.proto), then defines it */
    pick_arg pa = {.c = op->c, .vm = v.vm, .uid = v.uid, .assign = true};
    char e[512];
    hv_domain_spec spec;
    if ((code = core_run_tx(op->c->db, &op->call, pick_tx, &pa)) == CORE_OK &&
        (code = core_vm_full_spec(op->c, &op->call, v.vm, v.uid, &spec)) == CORE_OK) {
      if ((code = hv_domain_define(op->c->hv, pa.host, &spec, e, sizeof(e))))
        core_fail(&op->call, code, "defining the domain on hosts/%s failed: %s", pa.host, e);
    }
    if (code) {
      char m[600];
      snprintf(m, sizeof(m), "%s", op->msg);
      state_apply back = {.uid = v.uid, .state = S(ERROR), .message = m};
      return core_op_finish(op, code, m, apply_state, &back);
    }
  }
  if (begin(op, &v, "booting")) return 0;
  char err[512];
  int hs = 0;
  code = dom_state(op, &v, &hs, err, sizeof(err));
  if (code) return hv_fail(op, &v, code, "cannot read the domain", err, code != HV_UNAVAILABLE);
  if (hs == HV_DOM_PAUSED)
    code = hv_domain_resume(op->c->hv, v.host, v.uid, err, sizeof(err));
  else if (hs != HV_DOM_RUNNING)
    code = hv_domain_start(op->c->hv, v.host, v.uid, err, sizeof(err));
  /* a domain caught while it was starting (qemu starts paused, then
   * resumes) refuses the call but gets where we want it */
  if (code && settled_in(op, &v, HV_DOM_RUNNING)) code = HV_OK;
  if (code) return hv_fail(op, &v, code, "start failed", err, true);
  return finish(op, &v, CORE_OK, NULL, S(RUNNING), false);
}

static int exec_stop(core_op *op) {
  const Novacron__V1__StopVmRequest *req = (const void *)op->req;
  vm_ctx v;
  if (begin(op, &v, req->force ? "powering off" : "asking the guest to shut down")) return 0;
  char err[512];
  int hs = 0;
  int code = dom_state(op, &v, &hs, err, sizeof(err));
  if (code) return hv_fail(op, &v, code, "cannot read the domain", err, code != HV_UNAVAILABLE);
  if (hs == HV_DOM_SHUTOFF) return finish(op, &v, CORE_OK, NULL, S(STOPPED), false);
  if (req->force) {
    if ((code = hv_domain_destroy(op->c->hv, v.host, v.uid, err, sizeof(err))))
      return hv_fail(op, &v, code, "power off failed", err, false);
    return finish(op, &v, CORE_OK, NULL, S(STOPPED), false);
  }
  if ((code = hv_domain_shutdown(op->c->hv, v.host, v.uid, err, sizeof(err))))
    return hv_fail(op, &v, code, "shutdown request failed", err, false);
  int64_t timeout_ms = req->timeout ? req->timeout->seconds * 1000 : 60000;
  struct timespec t0, now;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int64_t last_report = 0;
  for (;;) {
    if ((code = dom_state(op, &v, &hs, err, sizeof(err))))
      return hv_fail(op, &v, code, "cannot read the domain", err, false);
    if (hs == HV_DOM_SHUTOFF) return finish(op, &v, CORE_OK, NULL, S(STOPPED), false);
    if (core_compute_stopping(op->c)) return 0; /* resumed by the next start */
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t el = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
    if (el >= timeout_ms) break;
    if (el - last_report >= 1000) {
      last_report = el;
      int pct = 10 + (int)(80 * el / timeout_ms);
      if (core_op_progress(op, pct, NULL))
        return finish(op, &v, CORE_CANCELLED, "cancelled while waiting for the guest", 0, false);
    }
    usleep(50 * 1000);
  }
  if (req->force_on_timeout) {
    core_op_progress(op, 95, "the guest did not shut down in time: powering off");
    if ((code = hv_domain_destroy(op->c->hv, v.host, v.uid, err, sizeof(err))))
      return hv_fail(op, &v, code, "power off failed", err, false);
    return finish(op, &v, CORE_OK, NULL, S(STOPPED), false);
  }
  char m[160];
  snprintf(m, sizeof(m), "the guest did not shut down within %" PRId64 " s", timeout_ms / 1000);
  return finish(op, &v, CORE_DEADLINE_EXCEEDED, m, 0, false);
}

static int exec_simple(core_op *op, const char *status, int want_hv, int ok_state,
                       int (*fn)(hv *, const char *, const char *, char *, size_t),
                       const char *what) {
  vm_ctx v;
  if (begin(op, &v, status)) return 0;
  char err[512];
  int hs = 0;
  int code = dom_state(op, &v, &hs, err, sizeof(err));
  if (code) return hv_fail(op, &v, code, "cannot read the domain", err, code != HV_UNAVAILABLE);
  if (want_hv < 0 || hs != want_hv) {
    if ((code = fn(op->c->hv, v.host, v.uid, err, sizeof(err))) &&
        !(want_hv >= 0 && settled_in(op, &v, want_hv)))
      return hv_fail(op, &v, code, what, err, false);
  }
  return finish(op, &v, CORE_OK, NULL, ok_state, false);
}

static int exec_pause(core_op *op) {
  return exec_simple(op, "suspending the vCPUs", HV_DOM_PAUSED, S(PAUSED), hv_domain_suspend,
                     "pause failed");
}

static int exec_resume(core_op *op) {
  return exec_simple(op, "resuming the vCPUs", HV_DOM_RUNNING, S(RUNNING), hv_domain_resume,
                     "resume failed");
}

static int exec_reboot(core_op *op) {
  const Novacron__V1__RebootVmRequest *req = (const void *)op->req;
  vm_ctx v;
  if (begin(op, &v, req->force ? "resetting" : "asking the guest to reboot")) return 0;
  char err[512];
  int code = hv_domain_reboot(op->c->hv, v.host, v.uid, req->force, err, sizeof(err));
  if (code) return hv_fail(op, &v, code, "reboot failed", err, false);
  return finish(op, &v, CORE_OK, NULL, S(RUNNING), false);
}

static int exec_delete(core_op *op) {
  const Novacron__V1__DeleteVmRequest *req = (const void *)op->req;
  vm_ctx v;
  int code = load_vm_uid(op, op->target_uid, &v);
  if (code == CORE_NOT_FOUND) return core_op_finish(op, CORE_OK, NULL, NULL, NULL);
  if (code) return core_op_finish(op, code, op->msg, NULL, NULL);
  remove_apply rm = {.uid = v.uid, .project = v.project};
  if (core_op_progress(op, 10, "undefining the domain"))
    return finish(op, &v, CORE_CANCELLED, "cancelled", 0, false);
  char err[512];
  if (v.host[0]) {
    code = hv_domain_undefine(op->c->hv, v.host, v.uid, err, sizeof(err));
    if (code == HV_UNAVAILABLE && req->force) {
      nc_warnf(
          "VM %s deleted while hosts/%s is unreachable: its domain stays there and is "
          "reported as unmanaged once the host is back",
          v.vm->name, v.host);
      code = HV_OK;
    }
    if (code && code != HV_NOT_FOUND) return hv_fail(op, &v, code, "delete failed", err, false);
    core_vm_seed_remove(op, v.host, v.uid); /* derived: it goes with the VM */
  }
  if (req->delete_volumes) {
    core_op_progress(op, 60, "deleting the VM's volumes");
    core_vm_volumes_unmaterialize(op, v.uid, true, false);
    rm.delete_volumes = true;
  } else {
    /* new volumes a failed create left behind go; reserved ones are kept */
    core_vm_volumes_unmaterialize(op, v.uid, false, false);
  }
  return core_op_finish(op, CORE_OK, NULL, apply_remove, &rm);
}

/* ---- resize ---- */

typedef struct resize_apply {
  const char *uid;
  int32_t vcpus, max_vcpus;
  int64_t mem, max_mem;
  int state;
} resize_apply;

static int apply_resize(store_conn *conn, core_tx *tx, core_op *op, ProtobufCMessage **resp,
                        void *arg) {
  resize_apply *a = arg;
  char v[16], m[24], mv[16], mm[24];
  snprintf(v, sizeof(v), "%d", a->vcpus);
  snprintf(m, sizeof(m), "%" PRId64, a->mem);
  snprintf(mv, sizeof(mv), "%d", a->max_vcpus);
  snprintf(mm, sizeof(mm), "%" PRId64, a->max_mem);
  const char *p[] = {a->uid, v, m, mv, mm};
  PGresult *r;
  int code = core_q(tx, conn, "vm_resize",
                    "UPDATE vms SET vcpus = $2::int, memory_mib = $3::bigint, max_vcpus = $4::int, "
                    "max_memory_mib = $5::bigint, version = version + 1, updated_at = now() WHERE "
                    "id = $1::uuid",
                    5, p, &r);
  if (code) return code;
  PQclear(r);
  Novacron__V1__Vm *vm = NULL;
  if ((code = core_vm_set_state(tx, conn, op, a->uid, a->state, "", &vm))) return code;
  *resp = &vm->base;
  char proj[64] = "", id[64];
  core_name2(vm->name, "vms", proj, sizeof(proj), id, sizeof(id));
  return core_emit(tx, conn, op, NOVACRON__V1__EVENT__TYPE__TYPE_VM_UPDATED, vm->name, proj,
                   "resized", &vm->base);
}

static int exec_resize(core_op *op) {
  const Novacron__V1__ResizeVmRequest *req = (const void *)op->req;
  vm_ctx v;
  if (begin(op, &v, "resizing")) return 0;
  Novacron__V1__Vm *vm = v.vm;
  resize_apply a = {.uid = v.uid,
                    .vcpus = req->vcpus ? req->vcpus : vm->vcpus,
                    .mem = req->memory_mib ? req->memory_mib : vm->memory_mib,
                    .max_vcpus = req->max_vcpus ? req->max_vcpus : vm->max_vcpus,
                    .max_mem = req->max_memory_mib ? req->max_memory_mib : vm->max_memory_mib,
                    .state = req->live ? S(RUNNING) : S(STOPPED)};
  if (a.max_vcpus < a.vcpus) a.max_vcpus = a.vcpus;
  if (a.max_mem < a.mem) a.max_mem = a.mem;
  char err[512];
  int code;
  if (req->live) {
    if (a.vcpus != vm->vcpus &&
        (code = hv_domain_set_vcpus(op->c->hv, v.host, v.uid, a.vcpus, true, err, sizeof(err))))
      return hv_fail(op, &v, code, "live vCPU change failed", err, false);
    if (a.mem != vm->memory_mib &&
        (code = hv_domain_set_memory(op->c->hv, v.host, v.uid, a.mem, true, err, sizeof(err))))
      return hv_fail(op, &v, code, "live memory change failed", err, false);
  } else {
    hv_domain_spec spec;
    vm->vcpus = a.vcpus;
    vm->memory_mib = a.mem;
    vm->max_vcpus = a.max_vcpus;
    vm->max_memory_mib = a.max_mem;
    if ((code = core_vm_full_spec(op->c, &op->call, vm, v.uid, &spec)))
      return hv_fail(op, &v, code, "redefining the domain failed", op->msg, false);
    if ((code = hv_domain_define(op->c->hv, v.host, &spec, err, sizeof(err))))
      return hv_fail(op, &v, code, "redefining the domain failed", err, false);
  }
  return core_op_finish(op, CORE_OK, NULL, apply_resize, &a);
}

/* ---- migration ---- */

typedef struct migrate_apply {
  const char *uid;
  const char *host_uid;
  int state;
  const char *message;
} migrate_apply;

int core_vm_record_move(core_tx *tx, store_conn *conn, core_op *op, const char *uid,
                        const char *host_uid, int state, const char *message,
                        Novacron__V1__Vm **out) {
  PGresult *r;
  if (host_uid) {
    const char *p[] = {uid, host_uid};
    int code = core_q(tx, conn, "vm_set_host",
                      "UPDATE vms SET host = $2::uuid, migrating_to = NULL, migrating_op = NULL, "
                      "version = version + 1, updated_at = now() WHERE id = $1::uuid",
                      2, p, &r);
    if (code) return code;
    PQclear(r);
  }
  Novacron__V1__Vm *vm = NULL;
  int code = core_vm_set_state(tx, conn, op, uid, state, message, &vm);
  if (code) return code;
  if (out) *out = vm;
  if (!host_uid) return CORE_OK;
  char proj[64] = "", id[64];
  core_name2(vm->name, "vms", proj, sizeof(proj), id, sizeof(id));
  return core_emit(tx, conn, op, NOVACRON__V1__EVENT__TYPE__TYPE_VM_UPDATED, vm->name, proj,
                   "moved to a new host", &vm->base);
}

static int apply_migrate(store_conn *conn, core_tx *tx, core_op *op, ProtobufCMessage **resp,
                         void *arg) {
  migrate_apply *a = arg;
  Novacron__V1__Vm *vm = NULL;
  int code = core_vm_record_move(tx, conn, op, a->uid, a->host_uid, a->state, a->message, &vm);
  if (code == CORE_OK) *resp = &vm->base;
  return code;
}

typedef struct host_uid_arg {
  const char *host;
  char uid[40];
  int state;
  bool cordoned;
} host_uid_arg;

static int host_uid_tx(store_conn *conn, core_tx *tx) {
  host_uid_arg *a = tx->arg;
  PGresult *r;
  int code =
      core_q_one(tx, conn, "host_uid", "SELECT id, state, cordoned FROM hosts WHERE host_id = $1",
                 a->host, "host", &r);
  if (code) return code;
  snprintf(a->uid, sizeof(a->uid), "%s", PQgetvalue(r, 0, 0));
  a->state = (int)core_i64(r, 0, 1);
  a->cordoned = core_bool(r, 0, 2);
  PQclear(r);
  return CORE_OK;
}

/* Moves VM `v` to `target` (a host id, or "" for the scheduler's choice);
 * shared by MigrateVm and DrainHost. On return the operation is NOT
 * finished; *final_state and the destination are filled. */
int core_vm_move(core_op *op, const char *vm_uid, const char *target, bool live, char dst[64],
                 char dst_uid[40], int *final_state, char *err, size_t errlen) {
  vm_ctx v;
  int code = load_vm_uid(op, vm_uid, &v);
  if (code) {
    snprintf(err, errlen, "%s", op->msg);
    return code;
  }
  if (v.vm->n_disks || v.vm->n_nics) {
    snprintf(err, errlen,
             "%s uses volumes and networks of hosts/%s, which do not move with it; detach them "
             "first",
             v.vm->name, v.host);
    return CORE_FAILED_PRECONDITION;
  }
  if (v.vm->user_data && *v.vm->user_data) {
    snprintf(err, errlen, "%s has a cloud-init config drive in a pool of hosts/%s", v.vm->name,
             v.host);
    return CORE_FAILED_PRECONDITION;
  }
  if (target && *target) {
    host_uid_arg h = {.host = target};
    if ((code = core_run_ro(op->c->db, &op->call, host_uid_tx, &h))) {
      snprintf(err, errlen, "%s", op->msg);
      return code;
    }
    /* checked again now: the host may have changed since the request */
    if (h.state != NOVACRON__V1__HOST__STATE__STATE_READY || h.cordoned) {
      snprintf(err, errlen, "hosts/%s is %s; a migration needs a READY, uncordoned host", target,
               h.cordoned ? "cordoned" : "not ready");
      return CORE_FAILED_PRECONDITION;
    }
    /* and its room, which this move then holds (other moves see it) */
    pick_arg p = {
        .c = op->c, .vm = v.vm, .uid = v.uid, .exclude = v.host, .pin = target, .op_id = op->id};
    if ((code = core_run_tx(op->c->db, &op->call, pick_tx, &p))) {
      snprintf(err, errlen, "%s", op->msg);
      return code;
    }
    snprintf(dst, 64, "%s", target);
    snprintf(dst_uid, 40, "%s", h.uid);
  } else {
    pick_arg p = {.c = op->c, .vm = v.vm, .uid = v.uid, .exclude = v.host, .op_id = op->id};
    if ((code = core_run_tx(op->c->db, &op->call, pick_tx, &p))) {
      snprintf(err, errlen, "%s", op->msg);
      return code;
    }
    snprintf(dst, 64, "%s", p.host);
    snprintf(dst_uid, 40, "%s", p.host_uid);
  }
  code = hv_domain_migrate(op->c->hv, v.host, dst, v.uid, live, err, errlen);
  if (code) return code;
  hv_domain_spec spec;
  hv_domain_info info;
  char e2[256];
  *final_state = hv_domain_get(op->c->hv, dst, v.uid, &spec, &info, e2, sizeof(e2)) == HV_OK
                     ? core_vm_state_of(info.state)
                     : S(ERROR);
  return HV_OK;
}

typedef struct hosts_list_arg {
  PGresult *r;
} hosts_list_arg;

static int hosts_list_tx(store_conn *conn, core_tx *tx) {
  hosts_list_arg *a = tx->arg;
  return core_q(tx, conn, "hosts_ids", "SELECT host_id, id FROM hosts ORDER BY host_id", 0, NULL,
                &a->r);
}

/* Looks for the VM's domain on the other registered hosts; true with the
 * host, its uuid and the domain's state when found. */
static bool find_elsewhere(core_op *op, const vm_ctx *v, char dst[64], char dst_uid[40],
                           int *state) {
  hosts_list_arg a = {0};
  if (core_run_ro(op->c->db, &op->call, hosts_list_tx, &a) != CORE_OK) return false;
  bool found = false;
  for (int i = 0; i < PQntuples(a.r) && !found; i++) {
    const char *h = PQgetvalue(a.r, i, 0);
    if (strcmp(h, v->host) == 0) continue;
    hv_domain_spec spec;
    hv_domain_info info;
    char err[256];
    if (hv_domain_get(op->c->hv, h, v->uid, &spec, &info, err, sizeof(err)) == HV_OK) {
      snprintf(dst, 64, "%s", h);
      snprintf(dst_uid, 40, "%s", PQgetvalue(a.r, i, 1));
      *state = core_vm_state_of(info.state);
      found = true;
    }
  }
  PQclear(a.r);
  return found;
}

static int exec_migrate(core_op *op) {
  const Novacron__V1__MigrateVmRequest *req = (const void *)op->req;
  vm_ctx v;
  if (begin(op, &v, req->live ? "live migration" : "migration")) return 0;
  char target[64] = "";
  if (req->target_host && *req->target_host)
    core_name1(req->target_host, "hosts/", target, sizeof(target));
  char err[512], dst[64], dst_uid[40];
  int fs = 0;
  /* converge: after a crash the migration may have completed without
   * being recorded; the domain is then on another host already */
  int hs = 0;
  if (op->attempts > 1 && dom_state(op, &v, &hs, err, sizeof(err)) == HV_NOT_FOUND &&
      find_elsewhere(op, &v, dst, dst_uid, &fs)) {
    migrate_apply a = {.uid = v.uid, .host_uid = dst_uid, .state = fs, .message = ""};
    return core_op_finish(op, CORE_OK, NULL, apply_migrate, &a);
  }
  core_op_progress(op, 20, "moving the domain");
  int code = core_vm_move(op, v.uid, target, req->live, dst, dst_uid, &fs, err, sizeof(err));
  if (code) return hv_fail(op, &v, code, "migration failed", err, false);
  migrate_apply a = {.uid = v.uid, .host_uid = dst_uid, .state = fs, .message = ""};
  return core_op_finish(op, CORE_OK, NULL, apply_migrate, &a);
}

/* ---- snapshots ---- */

typedef struct snap_apply {
  const char *vm_uid;
  const char *snap; /* snapshot_id */
  int state;        /* VmSnapshot.State to set, or 0 to delete */
  const char *message;
  bool children;
  bool revert; /* restore the VM's configuration from the snapshot */
  int vm_state;
} snap_apply;

static int apply_snap(store_conn *conn, core_tx *tx, core_op *op, ProtobufCMessage **resp,
                      void *arg) {
  snap_apply *a = arg;
  PGresult *r;
  int code = core_snapshot_load(tx, conn, a->vm_uid, a->snap, true, &r);
  if (code) return code;
  Novacron__V1__VmSnapshot *s = core_snapshot_from_row(tx->call, r, 0);
  char suid[40];
  snprintf(suid, sizeof(suid), "%s", PQgetvalue(r, 0, 0));
  Novacron__V1__Vm *cfg = (Novacron__V1__Vm *)core_unpack_bytea(
      tx->call, &novacron__v1__vm__descriptor, PQgetvalue(r, 0, SNAP_CONFIG_COL));
  PQclear(r);
  if (!s) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  const char *proj = op->project; /* the target may be a snapshot's name */
  const char *p[] = {suid};
  if (a->revert) {
    if (cfg) {
      char v[16], m[24], mv[16], mm[24];
      snprintf(v, sizeof(v), "%d", cfg->vcpus);
      snprintf(m, sizeof(m), "%" PRId64, cfg->memory_mib);
      snprintf(mv, sizeof(mv), "%d", cfg->max_vcpus);
      snprintf(mm, sizeof(mm), "%" PRId64, cfg->max_memory_mib);
      const char *q[] = {a->vm_uid, v, m, mv, mm, suid};
      if ((code = core_q(tx, conn, "vm_revert_cfg",
                         "UPDATE vms SET vcpus = $2::int, memory_mib = $3::bigint, max_vcpus = "
                         "$4::int, max_memory_mib = $5::bigint, current_snapshot = $6::uuid, "
                         "version = version + 1, updated_at = now() WHERE id = $1::uuid",
                         6, q, &r)))
        return code;
      PQclear(r);
    }
    Novacron__V1__Vm *vm = NULL;
    if ((code = core_vm_set_state(tx, conn, op, a->vm_uid, a->vm_state, "", &vm))) return code;
    *resp = &vm->base;
    return core_emit(tx, conn, op, NOVACRON__V1__EVENT__TYPE__TYPE_VM_UPDATED, vm->name, proj,
                     "reverted to a snapshot", &vm->base);
  }
  if (a->state) {
    char st[8];
    snprintf(st, sizeof(st), "%d", a->state);
    const char *q[] = {suid, st, a->message ? a->message : ""};
    if ((code = core_q(tx, conn, "snap_set_state",
                       "UPDATE vm_snapshots SET state = $2::smallint, state_message = $3, version "
                       "= version + 1, updated_at = now() WHERE id = $1::uuid",
                       3, q, &r)))
      return code;
    PQclear(r);
    if (a->state == NOVACRON__V1__VM_SNAPSHOT__STATE__STATE_READY) {
      const char *q2[] = {suid, a->vm_uid};
      if ((code =
               core_q(tx, conn, "vm_current_snap",
                      "UPDATE vms SET current_snapshot = $1::uuid WHERE id = $2::uuid", 2, q2, &r)))
        return code;
      PQclear(r);
    }
    s->state = (Novacron__V1__VmSnapshot__State)a->state;
    s->state_message = (char *)(a->message ? a->message : "");
    *resp = &s->base;
    return core_emit(
        tx, conn, op, NOVACRON__V1__EVENT__TYPE__TYPE_VM_SNAPSHOT_UPDATED, s->name, proj,
        a->state == NOVACRON__V1__VM_SNAPSHOT__STATE__STATE_READY ? "ready" : "failed", &s->base);
  }
  /* delete: the snapshot (and its descendants if asked); otherwise its
   * children move up to its parent */
  if (a->children)
    code = core_q(tx, conn, "snap_delete_tree",
                  "WITH RECURSIVE t AS (SELECT id FROM vm_snapshots WHERE id = $1::uuid UNION "
                  "SELECT c.id FROM vm_snapshots c JOIN t ON c.parent = t.id) DELETE FROM "
                  "vm_snapshots WHERE id IN (SELECT id FROM t)",
                  1, p, &r);
  else
    code = core_q(tx, conn, "snap_reparent",
                  "UPDATE vm_snapshots SET parent = (SELECT parent FROM vm_snapshots WHERE id = "
                  "$1::uuid) WHERE parent = $1::uuid",
                  1, p, &r);
  if (code) return code;
  PQclear(r);
  if (!a->children) {
    if ((code = core_q(tx, conn, "snap_delete", "DELETE FROM vm_snapshots WHERE id = $1::uuid", 1,
                       p, &r)))
      return code;
    PQclear(r);
  }
  const char *q[] = {a->vm_uid};
  if ((code =
           core_q(tx, conn, "vm_current_snap_clear",
                  "UPDATE vms SET current_snapshot = NULL WHERE id = $1::uuid AND "
                  "current_snapshot IS NOT NULL AND NOT EXISTS (SELECT 1 FROM vm_snapshots WHERE "
                  "id = current_snapshot)",
                  1, q, &r)))
    return code;
  PQclear(r);
  s->state = NOVACRON__V1__VM_SNAPSHOT__STATE__STATE_DELETING;
  *resp = &s->base;
  return core_emit(tx, conn, op, NOVACRON__V1__EVENT__TYPE__TYPE_VM_SNAPSHOT_DELETED, s->name, proj,
                   "deleted", &s->base);
}

typedef struct snap_uid_arg {
  const char *vm_uid, *snap;
  char uid[40];
} snap_uid_arg;

static int snap_uid_tx(store_conn *conn, core_tx *tx) {
  snap_uid_arg *a = tx->arg;
  PGresult *r;
  int code = core_snapshot_load(tx, conn, a->vm_uid, a->snap, false, &r);
  if (code) return code;
  snprintf(a->uid, sizeof(a->uid), "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  return CORE_OK;
}

static const char *snap_id_of(const char *name) {
  const char *at = name ? strstr(name, "/snapshots/") : NULL;
  return at ? at + 11 : "";
}

static int exec_snapshot(core_op *op) {
  const Novacron__V1__CreateSnapshotRequest *req = (const void *)op->req;
  vm_ctx v;
  if (begin(op, &v, "taking the snapshot")) return 0;
  snap_uid_arg su = {.vm_uid = v.uid, .snap = req->snapshot_id};
  int code = core_run_ro(op->c->db, &op->call, snap_uid_tx, &su);
  if (code) return core_op_finish(op, code, op->msg, NULL, NULL);
  bool mem = req->snapshot && req->snapshot->include_memory && v.vm->state != S(STOPPED);
  char err[512];
  code = hv_snapshot_create(
      op->c->hv, v.host, v.uid, su.uid,
      req->snapshot && req->snapshot->description ? req->snapshot->description : "", mem, err,
      sizeof(err));
  snap_apply a = {.vm_uid = v.uid, .snap = req->snapshot_id};
  if (code && code != HV_ALREADY_EXISTS) {
    char m[600];
    snprintf(m, sizeof(m), "snapshot failed: %s", err);
    a.state = NOVACRON__V1__VM_SNAPSHOT__STATE__STATE_ERROR;
    a.message = m;
    return core_op_finish(op, code, m, apply_snap, &a);
  }
  a.state = NOVACRON__V1__VM_SNAPSHOT__STATE__STATE_READY;
  return core_op_finish(op, CORE_OK, NULL, apply_snap, &a);
}

static int exec_revert(core_op *op) {
  vm_ctx v;
  if (begin(op, &v, "reverting")) return 0;
  snap_uid_arg su = {.vm_uid = v.uid, .snap = snap_id_of(op->target)};
  int code = core_run_ro(op->c->db, &op->call, snap_uid_tx, &su);
  if (code) return core_op_finish(op, code, op->msg, NULL, NULL);
  char err[512];
  if ((code = hv_snapshot_revert(op->c->hv, v.host, v.uid, su.uid, err, sizeof(err))))
    return hv_fail(op, &v, code, "revert failed", err, false);
  int hs = HV_DOM_SHUTOFF;
  dom_state(op, &v, &hs, err, sizeof(err));
  snap_apply a = {
      .vm_uid = v.uid, .snap = su.snap, .revert = true, .vm_state = core_vm_state_of(hs)};
  return core_op_finish(op, CORE_OK, NULL, apply_snap, &a);
}

static int exec_delete_snapshot(core_op *op) {
  const Novacron__V1__DeleteSnapshotRequest *req = (const void *)op->req;
  vm_ctx v;
  if (begin(op, &v, "deleting the snapshot")) return 0;
  snap_uid_arg su = {.vm_uid = v.uid, .snap = snap_id_of(op->target)};
  int code = core_run_ro(op->c->db, &op->call, snap_uid_tx, &su);
  if (code == CORE_NOT_FOUND) return core_op_finish(op, CORE_OK, NULL, NULL, NULL);
  if (code) return core_op_finish(op, code, op->msg, NULL, NULL);
  char err[512];
  code =
      hv_snapshot_delete(op->c->hv, v.host, v.uid, su.uid, req->delete_children, err, sizeof(err));
  snap_apply a = {.vm_uid = v.uid, .snap = su.snap, .children = req->delete_children};
  if (code && code != HV_NOT_FOUND) {
    char m[600];
    snprintf(m, sizeof(m), "deleting the snapshot failed: %s", err);
    a.state = NOVACRON__V1__VM_SNAPSHOT__STATE__STATE_ERROR;
    a.message = m;
    return core_op_finish(op, code, m, apply_snap, &a);
  }
  return core_op_finish(op, CORE_OK, NULL, apply_snap, &a);
}

/* ---- devices ---- */

/* The device change an operation records: one disk or NIC added or
 * removed. Failure releases what the request reserved. */
typedef struct dev_apply {
  const char *uid;
  bool ok;
  const Novacron__V1__VmDisk *add_disk; /* as the VM records it */
  const char *remove_volume;            /* volume name */
  const Novacron__V1__VmNic *add_nic;
  const char *remove_mac;
  const char *message;        /* the VM event's */
  int state;                  /* the VM's state after (libvirt's) */
  const core_nics_seen *nics; /* observed after a NIC attach, or NULL */
} dev_apply;

static int apply_devices(store_conn *conn, core_tx *tx, core_op *op, ProtobufCMessage **resp,
                         void *arg) {
  dev_apply *a = arg;
  PGresult *r;
  int code = core_vm_load_uid(tx, conn, a->uid, true, &r);
  if (code) return code;
  Novacron__V1__Vm *vm = core_vm_from_row(tx->call, r, 0);
  char project[64];
  snprintf(project, sizeof(project), "%s", PQgetvalue(r, 0, 1));
  PQclear(r);
  if (!vm) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  if (!a->ok) { /* release the reservation */
    if ((code = core_vm_devices_release(tx, conn, op, a->uid, true, false))) return code;
    /* a pending NIC is a vm_nics row whose MAC the VM does not list */
    char macs[HV_MAX_NICS * 18 + 4];
    size_t ml = (size_t)snprintf(macs, sizeof(macs), "{");
    for (size_t i = 0; i < vm->n_nics && i < HV_MAX_NICS && ml < sizeof(macs); i++)
      ml +=
          (size_t)snprintf(macs + ml, sizeof(macs) - ml, "%s%.17s", i ? "," : "", vm->nics[i]->mac);
    if (ml < sizeof(macs)) snprintf(macs + ml, sizeof(macs) - ml, "}");
    const char *k[] = {a->uid, macs};
    (void)k;
    const char *kk[] = {a->uid, op->id};
    if ((code = core_q(tx, conn, "vm_nics_reserved_drop",
                       "DELETE FROM vm_nics WHERE vm = $1::uuid AND reserved_by = $2::uuid", 2, kk,
                       &r)))
      return code;
    PQclear(r);
  }
  Novacron__V1__Vm lists = NOVACRON__V1__VM__INIT;
  size_t nd = vm->n_disks + 1, nn = vm->n_nics + 1;
  lists.disks = core_alloc(tx->call, nd * sizeof(*lists.disks));
  lists.nics = core_alloc(tx->call, nn * sizeof(*lists.nics));
  if (!lists.disks || !lists.nics) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  for (size_t i = 0; i < vm->n_disks; i++)
    if (!(a->ok && a->remove_volume && strcmp(vm->disks[i]->volume, a->remove_volume) == 0))
      lists.disks[lists.n_disks++] = vm->disks[i];
  if (a->ok && a->add_disk) lists.disks[lists.n_disks++] = (Novacron__V1__VmDisk *)a->add_disk;
  for (size_t i = 0; i < vm->n_nics; i++)
    if (!(a->ok && a->remove_mac && strcmp(vm->nics[i]->mac, a->remove_mac) == 0))
      lists.nics[lists.n_nics++] = vm->nics[i];
  if (a->ok && a->add_nic) lists.nics[lists.n_nics++] = (Novacron__V1__VmNic *)a->add_nic;
  for (size_t i = 0; i < lists.n_nics; i++) { /* observations live in vm_nics, not here */
    lists.nics[i]->target_device = (char *)"";
    lists.nics[i]->n_ip_addresses = 0;
  }
  if (a->ok) {
    Novacron__V1__Vm dm = NOVACRON__V1__VM__INIT, nm = NOVACRON__V1__VM__INIT;
    dm.disks = lists.disks;
    dm.n_disks = lists.n_disks;
    nm.nics = lists.nics;
    nm.n_nics = lists.n_nics;
    char *pd = core_pack_bytea(&dm.base), *pn = core_pack_bytea(&nm.base);
    const char *q[] = {a->uid, pd, pn};
    code = pd && pn ? core_q(tx, conn, "vm_set_devices",
                             "UPDATE vms SET disks = $2::bytea, nics = $3::bytea, version = "
                             "version + 1, updated_at = now() WHERE id = $1::uuid",
                             3, q, &r)
                    : core_fail(tx->call, CORE_INTERNAL, "out of memory");
    free(pd);
    free(pn);
    if (code) return code;
    PQclear(r);
    if (a->add_disk && (code = core_vm_devices_commit(tx, conn, op, a->uid))) return code;
    if (a->remove_volume) {
      char vp[64], vid[64];
      core_name2(a->remove_volume, "volumes", vp, sizeof(vp), vid, sizeof(vid));
      const char *q2[] = {a->uid, vp, vid};
      if ((code = core_q(tx, conn, "volume_detach",
                         "UPDATE volumes vo SET attached_vm = NULL, target_device = '' FROM "
                         "projects p WHERE p.id = vo.project AND vo.attached_vm = $1::uuid AND "
                         "p.project_id = $2 AND vo.volume_id = $3 RETURNING vo.id",
                         3, q2, &r)))
        return code;
      for (int i = 0; i < PQntuples(r) && code == CORE_OK; i++)
        code = core_volume_set(tx, conn, op, PQgetvalue(r, i, 0),
                               NOVACRON__V1__VOLUME__STATE__STATE_READY, "", NULL);
      PQclear(r);
      if (code) return code;
    }
    if (a->remove_mac) {
      const char *q3[] = {a->uid, a->remove_mac};
      if ((code =
               core_q(tx, conn, "vm_nic_delete",
                      "DELETE FROM vm_nics WHERE vm = $1::uuid AND mac = $2::macaddr", 2, q3, &r)))
        return code;
      PQclear(r);
    }
  }
  if ((code = core_nics_record(tx, conn, a->uid, a->nics))) return code;
  Novacron__V1__Vm *now = NULL;
  if ((code = core_vm_set_state(tx, conn, op, a->uid, a->state, "", &now))) return code;
  *resp = &now->base;
  if (!a->ok) return CORE_OK;
  return core_emit(tx, conn, op, NOVACRON__V1__EVENT__TYPE__TYPE_VM_UPDATED, now->name, project,
                   a->message, &now->base);
}

/* The VM's pending volume (reserved by AttachVolume). */
typedef struct pending_arg {
  const char *vm_uid, *op_id;
  char uid[40], name[200], path[512], target[16];
  int state, format;
  bool found;
} pending_arg;

static int pending_tx(store_conn *conn, core_tx *tx) {
  pending_arg *a = tx->arg;
  const char *k[] = {a->vm_uid, a->op_id};
  PGresult *r;
  int code = core_q(tx, conn, "vm_reserved_volume",
                    "SELECT vo.id, 'projects/' || p.project_id || '/volumes/' || vo.volume_id, "
                    "vo.path, vo.target_device, vo.state, vo.format FROM volumes vo JOIN projects "
                    "p ON p.id = vo.project WHERE vo.attached_vm = $1::uuid AND vo.reserved_by = "
                    "$2::uuid",
                    2, k, &r);
  if (code) return code;
  if ((a->found = PQntuples(r) > 0)) {
    snprintf(a->uid, sizeof(a->uid), "%s", PQgetvalue(r, 0, 0));
    snprintf(a->name, sizeof(a->name), "%s", PQgetvalue(r, 0, 1));
    snprintf(a->path, sizeof(a->path), "%s", PQgetvalue(r, 0, 2));
    snprintf(a->target, sizeof(a->target), "%s", PQgetvalue(r, 0, 3));
    a->state = (int)core_i64(r, 0, 4);
    a->format = (int)core_i64(r, 0, 5);
  }
  PQclear(r);
  return CORE_OK;
}

/* libvirt's state of the VM's domain, for the outcome. */
static int vm_state_now(core_op *op, const vm_ctx *v) {
  int hs;
  char err[256];
  int hc = dom_state(op, v, &hs, err, sizeof(err));
  if (hc == HV_UNAVAILABLE) return S(UNKNOWN);
  return hc == HV_OK ? core_vm_state_of(hs) : S(ERROR);
}

static int dev_fail(core_op *op, const vm_ctx *v, int code, const char *what, const char *err) {
  char m[800];
  if (code == CORE_CANCELLED || !v->host[0])
    snprintf(m, sizeof(m), "%s: %s", what, err);
  else
    core_hv_failed(m, sizeof(m), code, what, v->host, err);
  /* a volume this attach created goes with it (both or neither) */
  core_vm_volumes_unmaterialize(op, v->uid, false, false);
  dev_apply a = {.uid = v->uid, .ok = false, .state = vm_state_now(op, v)};
  return core_op_finish(op, code, m, apply_devices, &a);
}

/* begin() for the attach verbs: an attach that ends before it ran (a
 * cancellation, a VM without a host) frees what its request reserved. */
static int dev_begin(core_op *op, vm_ctx *v, const char *status) {
  int code = load_vm_uid(op, op->target_uid, v);
  if (code) return core_op_finish(op, code, op->msg, NULL, NULL), 1;
  if (!v->host[0]) {
    dev_fail(op, v, CORE_FAILED_PRECONDITION, "the attach cannot run", "the VM has no host");
    return 1;
  }
  if (core_op_progress(op, 5, status)) {
    dev_fail(op, v, CORE_CANCELLED, "cancelled", "before it started");
    return 1;
  }
  return 0;
}

static int exec_attach_volume(core_op *op) {
  const Novacron__V1__AttachVolumeRequest *req = (const void *)op->req;
  vm_ctx v;
  if (dev_begin(op, &v, "attaching the volume")) return 0;
  pending_arg pa = {.vm_uid = v.uid, .op_id = op->id};
  int code = core_run_ro(op->c->db, &op->call, pending_tx, &pa);
  if (code) return core_op_finish(op, code, op->msg, NULL, NULL);
  if (!pa.found)
    return dev_fail(op, &v, CORE_FAILED_PRECONDITION, "attaching the volume",
                    "the reserved volume is gone");
  char err[512];
  bool fresh = pa.state == NOVACRON__V1__VOLUME__STATE__STATE_CREATING;
  if (fresh) {
    core_op_progress(op, 20, "creating the volume");
    if ((code = core_vm_volumes_materialize(op, v.uid, err, sizeof(err))))
      return dev_fail(op, &v, code, "attaching the volume", err);
    if ((code = core_run_ro(op->c->db, &op->call, pending_tx, &pa)) || !pa.found)
      return dev_fail(op, &v, code ? code : CORE_INTERNAL, "attaching the volume", "volume lost");
  }
  core_op_progress(op, 60, "attaching the disk");
  Novacron__V1__VmDisk *d = core_alloc(&op->call, sizeof(*d));
  if (!d) return core_op_finish(op, CORE_INTERNAL, "out of memory", NULL, NULL);
  novacron__v1__vm_disk__init(d);
  d->source_case = NOVACRON__V1__VM_DISK__SOURCE_VOLUME;
  d->volume = core_strdup(&op->call, pa.name);
  d->bus = req->disk->bus;
  d->boot_index = req->disk->boot_index;
  d->read_only = req->disk->read_only;
  d->target_device = core_strdup(&op->call, pa.target);
  hv_disk hd;
  core_disk_hv(d, pa.path, pa.format, &hd);
  bool live = false;
  code = hv_domain_attach_disk(op->c->hv, v.host, v.uid, &hd, &live, err, sizeof(err));
  if (code) {
    /* libvirt may have applied part of it (e.g. the definition) before
     * failing: the disk is taken out again before its volume is freed */
    bool live2;
    char e2[256];
    if (code != HV_ALREADY_EXISTS && /* (the target holds another disk: not ours to remove) */
        hv_domain_detach_disk(op->c->hv, v.host, v.uid, pa.target, 5, &live2, e2, sizeof(e2)) ==
            HV_UNAVAILABLE)
      nc_warnf("%s: attach failed and hosts/%s is unreachable: %s may still be in the domain",
               v.vm->name, v.host, pa.name);
    return dev_fail(op, &v, code, "attaching the volume", err);
  }
  int st = vm_state_now(op, &v);
  char m[300];
  snprintf(m, sizeof(m), "volume %s attached as %s%s", pa.name, pa.target,
           !live && st == S(RUNNING) ? " (the guest sees it after the next start)" : "");
  dev_apply a = {.uid = v.uid, .ok = true, .add_disk = d, .message = m, .state = st};
  return core_op_finish(op, CORE_OK, NULL, apply_devices, &a);
}

static int exec_detach_volume(core_op *op) {
  const Novacron__V1__DetachVolumeRequest *req = (const void *)op->req;
  vm_ctx v;
  if (begin(op, &v, "detaching the volume")) return 0;
  const char *target = NULL;
  for (size_t i = 0; i < v.vm->n_disks; i++)
    if (strcmp(v.vm->disks[i]->volume, req->volume) == 0) target = v.vm->disks[i]->target_device;
  if (!target) /* gone already (a rerun): nothing left to do */
    return core_op_finish(op, CORE_OK, NULL, NULL, NULL);
  char err[512];
  bool live = false;
  int code = hv_domain_detach_disk(op->c->hv, v.host, v.uid, target, op->c->cfg.detach_timeout_s,
                                   &live, err, sizeof(err));
  if (code) return dev_fail(op, &v, code, "detaching the volume", err);
  char m[300];
  snprintf(m, sizeof(m), "volume %s detached from %s", req->volume, target);
  dev_apply a = {.uid = v.uid,
                 .ok = true,
                 .remove_volume = req->volume,
                 .message = m,
                 .state = vm_state_now(op, &v)};
  return core_op_finish(op, CORE_OK, NULL, apply_devices, &a);
}

typedef struct pending_nic_arg {
  const char *vm_uid, *op_id;
  const Novacron__V1__Vm *vm;
  char mac[18], network[200], lvnet[140];
  bool found;
} pending_nic_arg;

static int pending_nic_tx(store_conn *conn, core_tx *tx) {
  pending_nic_arg *a = tx->arg;
  const char *k[] = {a->vm_uid, a->op_id};
  PGresult *r;
  int code = core_q(tx, conn, "vm_reserved_nics",
                    "SELECT n.mac::text, 'projects/' || p.project_id || '/networks/' || "
                    "nw.network_id, p.project_id || '.' || nw.network_id FROM vm_nics n JOIN "
                    "networks nw ON nw.id = n.network JOIN projects p ON p.id = nw.project WHERE "
                    "n.vm = $1::uuid AND n.reserved_by = $2::uuid",
                    2, k, &r);
  if (code) return code;
  for (int i = 0; i < PQntuples(r) && !a->found; i++) {
    bool known = false;
    for (size_t k2 = 0; k2 < a->vm->n_nics; k2++)
      known |= strcmp(a->vm->nics[k2]->mac, PQgetvalue(r, i, 0)) == 0;
    if (known) continue;
    a->found = true;
    snprintf(a->mac, sizeof(a->mac), "%s", PQgetvalue(r, i, 0));
    snprintf(a->network, sizeof(a->network), "%s", PQgetvalue(r, i, 1));
    snprintf(a->lvnet, sizeof(a->lvnet), "%s", PQgetvalue(r, i, 2));
  }
  PQclear(r);
  return CORE_OK;
}

static int exec_attach_nic(core_op *op) {
  const Novacron__V1__AttachNicRequest *req = (const void *)op->req;
  vm_ctx v;
  if (dev_begin(op, &v, "attaching the NIC")) return 0;
  pending_nic_arg pa = {.vm_uid = v.uid, .op_id = op->id, .vm = v.vm};
  int code = core_run_ro(op->c->db, &op->call, pending_nic_tx, &pa);
  if (code) return core_op_finish(op, code, op->msg, NULL, NULL);
  if (!pa.found)
    return dev_fail(op, &v, CORE_FAILED_PRECONDITION, "attaching the NIC",
                    "the reserved NIC is gone");
  Novacron__V1__VmNic *n = core_alloc(&op->call, sizeof(*n));
  if (!n) return core_op_finish(op, CORE_INTERNAL, "out of memory", NULL, NULL);
  novacron__v1__vm_nic__init(n);
  n->network = core_strdup(&op->call, pa.network);
  n->mac = core_strdup(&op->call, pa.mac);
  n->model = req->nic->model;
  n->boot_index = req->nic->boot_index;
  hv_nic hn;
  core_nic_hv(n, pa.lvnet, &hn);
  char err[512];
  bool live = false;
  if ((code = hv_domain_attach_nic(op->c->hv, v.host, v.uid, &hn, &live, err, sizeof(err))))
    return dev_fail(op, &v, code, "attaching the NIC", err);
  int st = vm_state_now(op, &v);
  char m[300];
  snprintf(m, sizeof(m), "NIC %s on %s attached%s", pa.mac, pa.network,
           !live && st == S(RUNNING) ? " (the guest sees it after the next start)" : "");
  /* a hot-plugged NIC has its host device now */
  core_nics_seen seen = {0};
  if (st != S(UNKNOWN))
    core_nics_observe(op->c, &op->call, v.host, v.uid, NULL, st == S(RUNNING) || st == S(PAUSED),
                      NULL, &seen);
  dev_apply a = {.uid = v.uid, .ok = true, .add_nic = n, .message = m, .state = st, .nics = &seen};
  return core_op_finish(op, CORE_OK, NULL, apply_devices, &a);
}

static int exec_detach_nic(core_op *op) {
  const Novacron__V1__DetachNicRequest *req = (const void *)op->req;
  vm_ctx v;
  if (begin(op, &v, "detaching the NIC")) return 0;
  bool have = false;
  for (size_t i = 0; i < v.vm->n_nics; i++)
    have |= strcmp(v.vm->nics[i]->mac, req->mac) == 0;
  if (!have) return core_op_finish(op, CORE_OK, NULL, NULL, NULL);
  char err[512];
  bool live = false;
  int code = hv_domain_detach_nic(op->c->hv, v.host, v.uid, req->mac, op->c->cfg.detach_timeout_s,
                                  &live, err, sizeof(err));
  if (code) return dev_fail(op, &v, code, "detaching the NIC", err);
  char m[200];
  snprintf(m, sizeof(m), "NIC %s detached", req->mac);
  dev_apply a = {.uid = v.uid,
                 .ok = true,
                 .remove_mac = req->mac,
                 .message = m,
                 .state = vm_state_now(op, &v)};
  return core_op_finish(op, CORE_OK, NULL, apply_devices, &a);
}

#define V(name, Req, fn) \
  { name, &novacron__v1__##Req##__descriptor, fn }
const core_verb core_vm_verbs[] = {
    V("VmService.CreateVm", create_vm_request, exec_create),
    V("VmService.DeleteVm", delete_vm_request, exec_delete),
    V("VmService.StartVm", start_vm_request, exec_start),
    V("VmService.StopVm", stop_vm_request, exec_stop),
    V("VmService.RebootVm", reboot_vm_request, exec_reboot),
    V("VmService.PauseVm", pause_vm_request, exec_pause),
    V("VmService.ResumeVm", resume_vm_request, exec_resume),
    V("VmService.ResizeVm", resize_vm_request, exec_resize),
    V("VmService.MigrateVm", migrate_vm_request, exec_migrate),
    V("VmService.CloneVm", clone_vm_request, exec_clone),
    V("VmService.CreateSnapshot", create_snapshot_request, exec_snapshot),
    V("VmService.RevertSnapshot", revert_snapshot_request, exec_revert),
    V("VmService.DeleteSnapshot", delete_snapshot_request, exec_delete_snapshot),
    V("VmService.AttachVolume", attach_volume_request, exec_attach_volume),
    V("VmService.DetachVolume", detach_volume_request, exec_detach_volume),
    V("VmService.AttachNic", attach_nic_request, exec_attach_nic),
    V("VmService.DetachNic", detach_nic_request, exec_detach_nic),
};
const size_t core_vm_nverbs = sizeof(core_vm_verbs) / sizeof(core_vm_verbs[0]);
