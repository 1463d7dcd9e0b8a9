/*
 * sched.c - placement: which host a VM goes to.
 *
 * Filters, then scores. A host qualifies when it is READY, not cordoned
 * (unless the VM is pinned to it), carries every host_selector label, has
 * room under the configured overcommit for the VM's vCPUs and memory, and
 * satisfies the VM's affinity (share a host with a VM of the project that
 * carries all the affinity labels, when such a VM exists) and
 * anti-affinity (share none with a VM carrying all the anti-affinity
 * labels). Qualifying hosts are scored by the share of memory and CPU left
 * after placing the VM: spread picks the emptiest, pack the fullest; ties
 * go to the host id, so placement is deterministic.
 *
 * Decisions are serialized by a transaction-level advisory lock, so two
 * concurrent creates never both take the last room on a host. A VM being
 * migrated counts on its destination too (vms.migrating_to) while the
 * operation moving it runs, so migrations and drains reserve their room.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/compute_int.h"

/* True when every label of `want` is in the JSON object text `have`. */
static bool labels_match(Novacron__V1__Label **want, size_t n, json_t *have) {
  for (size_t i = 0; i < n; i++) {
    json_t *v = have ? json_object_get(have, want[i]->key) : NULL;
    const char *val = want[i]->value ? want[i]->value : "";
    if (!v || !json_is_string(v) || strcmp(json_string_value(v), val) != 0) return false;
  }
  return true;
}

int core_place(core_tx *tx, store_conn *conn, core_compute *c, const Novacron__V1__Vm *vm,
               const char *project_uid, const char *vm_uid, const char *exclude_host,
               char host_id[64], char host_uid[40]) {
  PGresult *r;
  int code = core_q(tx, conn, "place_lock", "SELECT pg_advisory_xact_lock(7468002)", 0, NULL, &r);
  if (code) return code;
  PQclear(r);
  const Novacron__V1__VmPlacement *pl = vm->placement;
  char pin[64] = "";
  if (pl && pl->host && *pl->host) core_name1(pl->host, "hosts/", pin, sizeof(pin));
  const char *p[] = {vm_uid};
  code = core_q(tx, conn, "place_hosts",
                "SELECT h.id, h.host_id, h.state, h.cordoned, h.cpu_count, h.memory_mib, "
                "h.labels::text, coalesce(sum(v.vcpus), 0), coalesce(sum(v.memory_mib), 0) FROM "
                "hosts h LEFT JOIN vms v ON (v.host = h.id OR (v.migrating_to = h.id AND "
                "EXISTS (SELECT 1 FROM operations o WHERE o.id = v.migrating_op AND o.state IN "
                "(1, 2)))) AND ($1::uuid IS NULL OR v.id <> $1::uuid) GROUP BY h.id ORDER BY "
                "h.host_id",
                1, p, &r);
  if (code) return code;
  /* the project's VMs with their labels and hosts, for (anti-)affinity */
  PGresult *pv = NULL;
  bool rules = pl && (pl->n_affinity || pl->n_anti_affinity);
  if (rules) {
    const char *q[] = {project_uid, vm_uid};
    code = core_q(tx, conn, "place_peers",
                  "SELECT host::text, labels::text FROM vms WHERE project = $1::uuid AND host IS "
                  "NOT NULL AND ($2::uuid IS NULL OR id <> $2::uuid)",
                  2, q, &pv);
    if (code) {
      PQclear(r);
      return code;
    }
  }
  bool affinity_applies = false;
  if (rules && pl->n_affinity)
    for (int k = 0; k < PQntuples(pv) && !affinity_applies; k++) {
      json_t *lj = json_loads(PQgetvalue(pv, k, 1), 0, NULL);
      affinity_applies = labels_match(pl->affinity, pl->n_affinity, lj);
      json_decref(lj);
    }
  double cpu_oc = c->cfg.cpu_overcommit > 0 ? c->cfg.cpu_overcommit : 4.0;
  double mem_oc = c->cfg.memory_overcommit > 0 ? c->cfg.memory_overcommit : 1.0;
  int best = -1, matched = 0, eligible = 0;
  double best_score = 0;
  for (int i = 0; i < PQntuples(r); i++) {
    const char *hid = PQgetvalue(r, i, 1);
    if (exclude_host && strcmp(hid, exclude_host) == 0) continue;
    if (*pin && strcmp(hid, pin) != 0) continue;
    if (core_i64(r, i, 2) != NOVACRON__V1__HOST__STATE__STATE_READY) continue;
    if (!*pin && core_bool(r, i, 3)) continue;
    json_t *hl = json_loads(PQgetvalue(r, i, 6), 0, NULL);
    bool sel = !pl || labels_match(pl->host_selector, pl->n_host_selector, hl);
    json_decref(hl);
    if (!sel) continue;
    const char *huid = PQgetvalue(r, i, 0);
    bool ok = true;
    if (rules) {
      bool has_aff = false;
      for (int k = 0; k < PQntuples(pv) && ok; k++) {
        if (strcmp(PQgetvalue(pv, k, 0), huid) != 0) continue;
        json_t *lj = json_loads(PQgetvalue(pv, k, 1), 0, NULL);
        if (pl->n_anti_affinity && labels_match(pl->anti_affinity, pl->n_anti_affinity, lj))
          ok = false;
        if (pl->n_affinity && labels_match(pl->affinity, pl->n_affinity, lj)) has_aff = true;
        json_decref(lj);
      }
      if (affinity_applies && !has_aff) ok = false;
    }
    if (!ok) continue;
    matched++;
    double cpus = (double)core_i64(r, i, 4) * cpu_oc, mem = (double)core_i64(r, i, 5) * mem_oc;
    double used_cpu = (double)core_i64(r, i, 7) + vm->vcpus;
    double used_mem = (double)core_i64(r, i, 8) + (double)vm->memory_mib;
    if (used_cpu > cpus || used_mem > mem) continue;
    eligible++;
    double score = (1.0 - used_mem / mem) + (1.0 - used_cpu / cpus);
    if (c->cfg.placement_pack) score = -score;
    if (best < 0 || score > best_score + 1e-9) {
      best = i;
      best_score = score;
    }
  }
  if (pv) PQclear(pv);
  if (best < 0) {
    PQclear(r);
    if (matched)
      return core_fail(tx->call, CORE_RESOURCE_EXHAUSTED,
                       "no host has room for %d vCPUs and %lld MiB (%d host%s match the placement "
                       "rules)",
                       vm->vcpus, (long long)vm->memory_mib, matched, matched == 1 ? "" : "s");
    if (*pin)
      return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                       "placement.host: hosts/%s does not exist, is not READY or breaks the other "
                       "placement rules",
                       pin);
    return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                     "no READY, uncordoned host matches the placement rules");
  }
  snprintf(host_id, 64, "%s", PQgetvalue(r, best, 1));
  snprintf(host_uid, 40, "%s", PQgetvalue(r, best, 0));
  PQclear(r);
  (void)eligible;
  return CORE_OK;
}
