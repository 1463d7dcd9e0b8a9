/*
 * vm_nics.c - what a VM's NICs look like on their host: the host-side
 * device (VmNic.target_device) while the domain runs, and the addresses
 * the networks' DHCP leases give their MACs (VmNic.ip_addresses).
 *
 * Both are observations, not desired state: they are read from libvirt
 * by the executors that change a VM's power state and by the reconciler,
 * stored in vm_nics beside the NIC's reservation, and rendered into the
 * VM by core_vm_from_row. Recording them does not change the VM's
 * version (an etag does not go stale because a lease was renewed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/vm_dev.h"
#include "util/log.h"

/* ---- leases, read once per network per pass ---- */

#define CACHE_MAX 64

typedef struct cached_net {
  char uuid[40];
  int rc; /* HV code of the read */
  hv_lease *leases;
  int n;
} cached_net;

struct core_lease_cache {
  cached_net net[CACHE_MAX];
  int n;
};

core_lease_cache *core_lease_cache_new(void) { return calloc(1, sizeof(core_lease_cache)); }

void core_lease_cache_free(core_lease_cache *lc) {
  if (!lc) return;
  for (int i = 0; i < lc->n; i++)
    free(lc->net[i].leases);
  free(lc);
}

/* The leases of network `uuid` on `host`; NULL when they cannot be read. */
static const cached_net *leases_of(core_compute *c, core_lease_cache *lc, const char *host,
                                   const char *uuid, cached_net *scratch) {
  for (int i = 0; lc && i < lc->n; i++)
    if (strcmp(lc->net[i].uuid, uuid) == 0) return lc->net[i].rc == HV_OK ? &lc->net[i] : NULL;
  cached_net *e = lc && lc->n < CACHE_MAX ? &lc->net[lc->n++] : scratch;
  memset(e, 0, sizeof(*e));
  snprintf(e->uuid, sizeof(e->uuid), "%s", uuid);
  char err[256];
  e->rc = hv_net_leases(c->hv, host, uuid, &e->leases, &e->n, err, sizeof(err));
  if (e->rc != HV_OK && e->rc != HV_UNAVAILABLE)
    nc_log(NC_LOG_WARN, "cannot read DHCP leases", LKV_S("host", host), LKV_S("network", uuid),
           LKV_S("error", err));
  return e->rc == HV_OK ? e : NULL;
}

/* ---- observing ---- */

typedef struct nic_rows {
  const char *uid;
  PGresult *r;
} nic_rows;

static int nic_rows_tx(store_conn *conn, core_tx *tx) {
  nic_rows *a = tx->arg;
  const char *p[] = {a->uid};
  return core_q(tx, conn, "vm_nic_networks",
                "SELECT n.mac::text, n.network::text FROM vm_nics n WHERE n.vm = $1::uuid "
                "ORDER BY n.mac",
                1, p, &a->r);
}

static bool ip_text_ok(const char *s) {
  size_t n = strlen(s);
  return n > 0 && n < 46 && strspn(s, "0123456789abcdefABCDEF.:") == n;
}

void core_nics_observe(core_compute *c, core_call *call, const char *host, const char *uid,
                       const hv_domain_spec *live, bool running, core_lease_cache *lc,
                       core_nics_seen *out) {
  memset(out, 0, sizeof(*out));
  nic_rows rows = {.uid = uid};
  if (core_run_ro(c->db, call, nic_rows_tx, &rows) != CORE_OK) return;
  hv_domain_spec *spec = NULL;
  if (running && !live && PQntuples(rows.r) > 0) {
    /* the targets are only in the running domain's live definition */
    spec = malloc(sizeof(*spec));
    hv_domain_info info;
    char err[256];
    if (spec && hv_domain_get(c->hv, host, uid, spec, &info, err, sizeof(err)) == HV_OK) {
      live = spec;
    } else {
      free(spec);
      PQclear(rows.r);
      return; /* not observed: keep what is recorded */
    }
  }
  cached_net scratch = {0};
  for (int i = 0; i < PQntuples(rows.r) && out->n < HV_MAX_NICS; i++) {
    core_nic_seen *s = &out->nic[out->n++];
    snprintf(s->mac, sizeof(s->mac), "%s", PQgetvalue(rows.r, i, 0));
    for (int k = 0; running && live && k < live->nnics; k++)
      if (strcasecmp(live->nics[k].mac, s->mac) == 0)
        snprintf(s->target, sizeof(s->target), "%s", live->nics[k].target);
    const cached_net *cn = leases_of(c, lc, host, PQgetvalue(rows.r, i, 1), &scratch);
    if (!cn) {
      s->keep_ips = true; /* unreadable now: not "no lease" */
    } else {
      for (int k = 0; k < cn->n && s->nips < CORE_NIC_IPS; k++)
        if (strcasecmp(cn->leases[k].mac, s->mac) == 0 && ip_text_ok(cn->leases[k].ip))
          snprintf(s->ips[s->nips++], sizeof(s->ips[0]), "%s", cn->leases[k].ip);
    }
    if (!lc || cn == &scratch) { /* not kept by a cache */
      free(scratch.leases);
      scratch.leases = NULL;
    }
  }
  free(spec);
  PQclear(rows.r);
  out->ok = true;
}

/* ---- recording ---- */

int core_nics_record(core_tx *tx, store_conn *conn, const char *uid, const core_nics_seen *s) {
  if (!s || !s->ok) return CORE_OK;
  for (int i = 0; i < s->n; i++) {
    const core_nic_seen *n = &s->nic[i];
    char ips[CORE_NIC_IPS * 47 + 3] = "{";
    size_t len = 1;
    for (int k = 0; k < n->nips; k++)
      len += (size_t)snprintf(ips + len, sizeof(ips) - len, "%s%s", k ? "," : "", n->ips[k]);
    snprintf(ips + len, sizeof(ips) - len, "}");
    const char *p[] = {uid, n->mac, n->target, n->keep_ips ? NULL : ips};
    PGresult *r;
    int code = core_q(tx, conn, "vm_nic_seen",
                      "UPDATE vm_nics SET target_device = $3, ip_addresses = coalesce($4::inet[], "
                      "ip_addresses) WHERE vm = $1::uuid AND mac = $2::macaddr AND "
                      "(target_device, ip_addresses) IS DISTINCT FROM ($3, coalesce($4::inet[], "
                      "ip_addresses))",
                      4, p, &r);
    if (code) return code;
    PQclear(r);
  }
  return CORE_OK;
}

typedef struct save_arg {
  const char *uid;
  const core_nics_seen *s;
} save_arg;

static int save_tx(store_conn *conn, core_tx *tx) {
  save_arg *a = tx->arg;
  return core_nics_record(tx, conn, a->uid, a->s);
}

void core_nics_save(core_compute *c, core_call *call, const char *uid, const core_nics_seen *s) {
  if (!s->ok || s->n == 0) return;
  save_arg a = {.uid = uid, .s = s};
  if (core_run_tx(c->db, call, save_tx, &a) != CORE_OK)
    nc_log(NC_LOG_WARN, "cannot record the NICs' devices and addresses", LKV_S("vm", uid),
           LKV_S("error", call->msg));
}

/* ---- rendering ---- */

void core_nics_render(core_call *call, Novacron__V1__Vm *vm, const char *seen) {
  /* "mac|target|ip,ip;mac|target|..." (VM_COLS) */
  for (const char *s = seen; s && *s;) {
    const char *end = strchr(s, ';');
    size_t len = end ? (size_t)(end - s) : strlen(s);
    char item[512];
    snprintf(item, sizeof(item), "%.*s", (int)len, s);
    s += len + (end ? 1 : 0);
    char *bar1 = strchr(item, '|');
    char *bar2 = bar1 ? strchr(bar1 + 1, '|') : NULL;
    if (!bar2) continue;
    *bar1 = *bar2 = '\0';
    for (size_t i = 0; i < vm->n_nics; i++) {
      Novacron__V1__VmNic *n = vm->nics[i];
      if (!n->mac || strcasecmp(n->mac, item) != 0) continue;
      n->target_device = core_strdup(call, bar1 + 1);
      n->n_ip_addresses = 0;
      for (char *ip = bar2 + 1; *ip;) {
        size_t il = strcspn(ip, ",");
        char one[64];
        snprintf(one, sizeof(one), "%.*s", (int)il, ip);
        char **slot = (char **)core_push(call, (void ***)&n->ip_addresses, &n->n_ip_addresses);
        if (slot) *slot = core_strdup(call, one);
        ip += il + (ip[il] == ',' ? 1 : 0);
      }
    }
  }
}
