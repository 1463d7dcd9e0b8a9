/*
 * reconcile.c - desired state (PostgreSQL) against actual state (libvirt),
 * and the background loop that drives it: lifecycle events from libvirt,
 * host heartbeats and a periodic full pass.
 *
 * Drift is repaired in the database, never on the hypervisor: a domain
 * whose state changed behind NovaCron's back updates its VM; a VM whose
 * domain vanished turns ERROR with a message saying so; a domain NovaCron
 * does not know is logged as unmanaged and left alone. VMs with an
 * operation in progress are skipped: the operation reports their state.
 *
 * The one exception is an ephemeral host (libvirt's in-process test
 * driver), which loses every domain when the server restarts: there the
 * domains are defined again from the database and their power state
 * restored, so the embedded hypervisor behaves like a real one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/compute_int.h"
#include "core/vm_dev.h"
#include "util/log.h"

#define S(x) NOVACRON__V1__VM__STATE__STATE_##x

/* ---- unmanaged domains are reported once per process ---- */

#define SEEN_MAX 4096
static pthread_mutex_t seen_mu = PTHREAD_MUTEX_INITIALIZER;
static char seen[SEEN_MAX][37];
static int nseen;

static bool first_sight(const char *uuid) {
  pthread_mutex_lock(&seen_mu);
  for (int i = 0; i < nseen; i++)
    if (strcmp(seen[i], uuid) == 0) {
      pthread_mutex_unlock(&seen_mu);
      return false;
    }
  if (nseen < SEEN_MAX) snprintf(seen[nseen++], 37, "%s", uuid);
  pthread_mutex_unlock(&seen_mu);
  return true;
}

/* ---- rows of one host ---- */

typedef struct host_rows {
  const char *host;
  const char *uuid; /* only this VM, or NULL for all */
  PGresult *r;
} host_rows;

static int rows_tx(store_conn *conn, core_tx *tx) {
  host_rows *a = tx->arg;
  const char *p[] = {a->host, a->uuid};
  return core_q(tx, conn, "reconcile_rows",
                "SELECT " VM_COLS ", " VM_BUSY_SQL("v") VM_FROM
                " WHERE ($1 = '' OR h.host_id = $1) AND ($2::uuid IS NULL OR v.id = $2::uuid)",
                2, p, &a->r);
}

typedef struct fix_arg {
  const char *uid;
  int state;
  const char *message;
  const char *version; /* the row's version when it was compared */
} fix_arg;

static int fix_tx(store_conn *conn, core_tx *tx) {
  fix_arg *a = tx->arg;
  /* re-check under the row lock: an operation may have started, or
   * changed the row, since it was compared with the domain */
  const char *p[] = {a->uid, a->version};
  PGresult *r;
  int code = core_q(tx, conn, "reconcile_lock",
                    "SELECT " VM_BUSY_SQL("v") " OR v.version <> $2::bigint FROM vms v WHERE "
                    "v.id = $1::uuid FOR UPDATE",
                    2, p, &r);
  if (code) return code;
  bool skip = PQntuples(r) == 0 || core_bool(r, 0, 0);
  PQclear(r);
  if (skip) return CORE_OK;
  return core_vm_set_state(tx, conn, NULL, a->uid, a->state, a->message, NULL);
}

static void set_state(core_compute *c, const char *uid, const char *version, int state,
                      const char *message) {
  fix_arg a = {.uid = uid, .state = state, .message = message, .version = version};
  char msg[256];
  core_arena arena;
  core_arena_init(&arena);
  core_call call = {.alloc = &arena.alloc, .msg = msg, .msglen = sizeof(msg)};
  if (core_run_tx(c->db, &call, fix_tx, &a) == CORE_OK)
    core_events_kick(c->ev);
  else
    nc_warnf("reconcile: cannot record the state of VM %s: %s", uid, msg);
  core_arena_free(&arena);
}

/* Defines a lost domain again on an ephemeral host and restores its power
 * state; returns the state it reached. */
static int restore(core_compute *c, const char *host, const Novacron__V1__Vm *vm, const char *uid) {
  hv_domain_spec spec;
  char err[512], msg[256];
  core_arena arena;
  core_arena_init(&arena);
  core_call call = {.alloc = &arena.alloc, .msg = msg, .msglen = sizeof(msg)};
  int code = core_vm_full_spec(c, &call, vm, uid, &spec);
  core_arena_free(&arena);
  if (code) {
    nc_warnf("reconcile: cannot restore %s on hosts/%s: %s", vm->name, host, msg);
    return S(ERROR);
  }
  if (hv_domain_define(c->hv, host, &spec, err, sizeof(err))) {
    nc_warnf("reconcile: cannot restore %s on hosts/%s: %s", vm->name, host, err);
    return S(ERROR);
  }
  int want = vm->state;
  if (want == S(RUNNING) || want == S(PAUSED) || want == S(STARTING) || want == S(STOPPING)) {
    if (hv_domain_start(c->hv, host, uid, err, sizeof(err))) return S(STOPPED);
    if (want == S(PAUSED) && hv_domain_suspend(c->hv, host, uid, err, sizeof(err)) == HV_OK)
      return S(PAUSED);
    return S(RUNNING);
  }
  return want == S(ERROR) ? S(ERROR) : S(STOPPED);
}

static void reconcile(core_compute *c, const char *host, const char *only_uuid,
                      bool restore_ephemeral) {
  /* rows first, then domains: a domain state read after the row can only
   * be newer, and a row changed in between is caught by its version */
  host_rows hr = {.host = host, .uuid = only_uuid};
  char msg[256];
  core_arena arena;
  core_arena_init(&arena);
  core_call call = {.alloc = &arena.alloc, .msg = msg, .msglen = sizeof(msg)};
  if (core_run_ro(c->db, &call, rows_tx, &hr) != CORE_OK) {
    core_arena_free(&arena);
    return;
  }
  char row_host[64];
  if (!host[0]) { /* one VM, wherever it is (after one of its operations) */
    if (!only_uuid || PQntuples(hr.r) != 1 || !core_val(hr.r, 0, 17)) {
      PQclear(hr.r);
      core_arena_free(&arena);
      return;
    }
    snprintf(row_host, sizeof(row_host), "%s", PQgetvalue(hr.r, 0, 17));
    host = row_host;
  }
  hv_domain_info *doms = NULL;
  int ndoms = 0;
  char err[512];
  int hc;
  hv_domain_spec *spec = NULL; /* the one VM's live definition */
  if (only_uuid) {             /* one VM (a libvirt event): look it up, not the whole host */
    doms = calloc(1, sizeof(*doms));
    spec = malloc(sizeof(*spec));
    hc = doms && spec ? hv_domain_get(c->hv, host, only_uuid, spec, doms, err, sizeof(err))
                      : HV_INTERNAL;
    if (hc == HV_OK) {
      ndoms = 1;
      snprintf(doms->uuid, sizeof(doms->uuid), "%s", only_uuid);
    }
    if (hc == HV_NOT_FOUND) hc = HV_OK;
  } else {
    hc = hv_domain_list(c->hv, host, &doms, &ndoms, err, sizeof(err));
  }
  if (hc != HV_OK) {
    free(doms);
    free(spec);
    PQclear(hr.r); /* unreachable: the heartbeat reports it */
    core_arena_free(&arena);
    return;
  }
  core_lease_cache *leases = core_lease_cache_new();
  int n = PQntuples(hr.r);
  bool *known = calloc((size_t)ndoms + 1, sizeof(bool));
  for (int i = 0; i < n; i++) {
    const char *uid = PQgetvalue(hr.r, i, 0);
    const char *ver = PQgetvalue(hr.r, i, 18);
    bool busy = core_bool(hr.r, i, VM_NCOLS);
    int d = -1;
    for (int k = 0; k < ndoms; k++)
      if (strcmp(doms[k].uuid, uid) == 0) {
        d = k;
        if (known) known[k] = true;
      }
    Novacron__V1__Vm *vm = core_vm_from_row(&call, hr.r, i);
    if (!vm) continue;
    int cur = vm->state;
    if (busy) {
      /* an operation owns the state; an ephemeral host still gets the
       * domain back, so that the operation finds it (a create defines its
       * own) */
      if (d < 0 && restore_ephemeral && cur != S(PENDING)) restore(c, host, vm, uid);
      continue;
    }
    /* (STARTING, STOPPING, MIGRATING, DELETING without an operation: the
     * operation ended without restoring it; libvirt's state wins below) */
    if (d < 0) {
      if (restore_ephemeral) {
        int st = restore(c, host, vm, uid);
        if (st != cur)
          set_state(c, uid, ver, st, st == S(ERROR) ? "the domain could not be restored" : "");
        continue;
      }
      if (cur == S(PENDING)) {
        set_state(c, uid, ver, S(ERROR), "creation did not complete: no domain was defined");
        continue;
      }
      char m[200];
      snprintf(m, sizeof(m), "the domain is missing on hosts/%s (removed outside NovaCron)", host);
      if (cur != S(ERROR) || strcmp(vm->state_message, m) != 0) {
        nc_warnf("reconcile: %s: %s", vm->name, m);
        set_state(c, uid, ver, S(ERROR), m);
      }
      continue;
    }
    int actual = core_vm_state_of(doms[d].state);
    if (vm->n_nics > 0) { /* devices and leases, as observations */
      core_nics_seen nics;
      core_nics_observe(c, &call, host, uid, only_uuid ? spec : NULL,
                        actual == S(RUNNING) || actual == S(PAUSED), leases, &nics);
      core_nics_save(c, &call, uid, &nics);
    }
    if (cur == S(ERROR) && actual == S(STOPPED)) continue; /* keeps the failure's message */
    if (actual != cur) {
      char m[200];
      snprintf(m, sizeof(m), "%s", cur == S(UNKNOWN) ? "" : "changed outside NovaCron");
      if (cur != S(UNKNOWN))
        nc_infof("reconcile: %s is %s on hosts/%s, recorded %s", vm->name,
                 core_vm_state_name(actual), host, core_vm_state_name(cur));
      set_state(c, uid, ver, actual, m);
    }
  }
  if (!only_uuid)
    for (int k = 0; k < ndoms; k++) {
      if (known && known[k]) continue;
      if (!first_sight(doms[k].uuid)) continue;
      if (doms[k].vm[0])
        nc_warnf(
            "reconcile: hosts/%s has domain %s (%s) carrying NovaCron metadata for %s but no "
            "such VM is recorded; left untouched",
            host, doms[k].name, doms[k].uuid, doms[k].vm);
      else
        nc_infof("reconcile: hosts/%s has unmanaged domain %s (%s); left untouched", host,
                 doms[k].name, doms[k].uuid);
    }
  free(known);
  core_lease_cache_free(leases);
  free(spec);
  PQclear(hr.r);
  free(doms);
  core_arena_free(&arena);
}

void core_reconcile_host(core_compute *c, const char *host_id, bool restore_ephemeral) {
  if (restore_ephemeral) { /* the domains' volumes and networks first */
    core_storage_restore(c, host_id);
    core_networks_restore(c, host_id);
  }
  reconcile(c, host_id, NULL, restore_ephemeral);
}

void core_reconcile_note(core_compute *c, const char *host, const char *uuid, int state) {
  hv_note *n = calloc(1, sizeof(*n));
  if (!n) return;
  snprintf(n->host, sizeof(n->host), "%s", host ? host : "");
  snprintf(n->uuid, sizeof(n->uuid), "%s", uuid ? uuid : "");
  n->state = state;
  pthread_mutex_lock(&c->mu);
  if (c->nnotes >= 10000) { /* a storm: the periodic pass catches up */
    pthread_mutex_unlock(&c->mu);
    free(n);
    return;
  }
  *c->notes_tail = n;
  c->notes_tail = &n->next;
  c->nnotes++;
  pthread_cond_signal(&c->bg_cv);
  pthread_mutex_unlock(&c->mu);
}

static void note_conn(core_compute *c, const char *host, bool up) {
  hv_note *n = calloc(1, sizeof(*n));
  if (!n) return;
  snprintf(n->host, sizeof(n->host), "%s", host);
  n->conn_change = true;
  n->up = up;
  pthread_mutex_lock(&c->mu);
  *c->notes_tail = n;
  c->notes_tail = &n->next;
  c->nnotes++;
  pthread_cond_signal(&c->bg_cv);
  pthread_mutex_unlock(&c->mu);
}

void core_compute_on_event(const hv_event *ev, void *arg) {
  core_reconcile_note(arg, ev->host_id, ev->uuid, ev->state);
}

void core_compute_on_conn(const char *host_id, bool up, const char *message, void *arg) {
  (void)message;
  note_conn(arg, host_id, up);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void *core_compute_bg(void *arg) {
  core_compute *c = arg;
  int64_t next_beat = now_ms() + (int64_t)c->cfg.heartbeat_s * 1000;
  int64_t next_full = now_ms() + (int64_t)c->cfg.reconcile_s * 1000;
  int64_t lease_every = (int64_t)c->cfg.lease_s * 1000 / 3;
  int64_t next_lease = now_ms() + lease_every;
  for (;;) {
    pthread_mutex_lock(&c->mu);
    if (!c->stopping && !c->notes) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += 200 * 1000000;
      if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
      }
      pthread_cond_timedwait(&c->bg_cv, &c->mu, &ts);
    }
    if (c->stopping) {
      pthread_mutex_unlock(&c->mu);
      break;
    }
    hv_note *list = c->notes;
    c->notes = NULL;
    c->notes_tail = &c->notes;
    c->nnotes = 0;
    pthread_mutex_unlock(&c->mu);
    while (list) {
      hv_note *n = list;
      list = n->next;
      if (n->conn_change)
        core_hosts_heartbeat(c);
      else if (n->uuid[0])
        reconcile(c, n->host, n->uuid, false);
      free(n);
    }
    int64_t t = now_ms();
    if (t >= next_lease) {
      core_ops_renew_leases(c);
      next_lease = t + lease_every;
    }
    if (c->cfg.heartbeat_s > 0 && t >= next_beat) {
      core_hosts_heartbeat(c);
      next_beat = t + (int64_t)c->cfg.heartbeat_s * 1000;
    }
    if (c->cfg.reconcile_s > 0 && t >= next_full) {
      core_reconcile_all(c);
      next_full = t + (int64_t)c->cfg.reconcile_s * 1000;
    }
  }
  return NULL;
}
