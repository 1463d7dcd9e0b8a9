/*
 * network_exec.c - the host side of NetworkService: the executors of its
 * operations (run by the operations workers, core/ops.c), the heartbeat's
 * refresh of network states and the restore of an ephemeral host's
 * networks at start.
 *
 * Executors converge: libvirt's calls here are idempotent by UUID (define
 * redefines, delete of a missing network is done, a reservation added
 * twice is one), so an operation interrupted by a crash is simply run
 * again. The outcome is recorded with the row and the events in one
 * transaction (core_op_finish). A failed create removes the row it
 * reserved and whatever it defined, so a row and a libvirt network exist
 * both or neither; a failed change leaves the row as it was (the host was
 * not changed, or the rerun of the same change converges it).
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/compute_int.h"
#include "util/log.h"

#define NS(x) NOVACRON__V1__NETWORK__STATE__STATE_##x
#define NM(x) NOVACRON__V1__NETWORK__MODE__MODE_##x

/* ================= the hv spec of a row ================= */

static bool cidr_parts(const char *cidr, char addr[48], int *prefix) {
  const char *slash = cidr ? strchr(cidr, '/') : NULL;
  if (!slash || (size_t)(slash - cidr) >= 48) return false;
  snprintf(addr, 48, "%.*s", (int)(slash - cidr), cidr);
  *prefix = (int)strtol(slash + 1, NULL, 10);
  return true;
}

int core_network_spec(const Novacron__V1__Network *n, const char *uid, hv_net_spec *spec,
                      hv_net_host **hosts) {
  memset(spec, 0, sizeof(*spec));
  *hosts = NULL;
  char project[64] = "", id[64] = "";
  core_name2(n->name, "networks", project, sizeof(project), id, sizeof(id));
  snprintf(spec->name, sizeof(spec->name), "%s.%s", project, id);
  snprintf(spec->uuid, sizeof(spec->uuid), "%s", uid);
  spec->mode = (int)n->mode; /* Network.Mode and HV_NET_* share their numbers */
  snprintf(spec->bridge, sizeof(spec->bridge), "%s", n->bridge);
  spec->vlan_id = n->vlan_id ? n->vlan_id->value : 0;
  spec->mtu = n->mtu;
  spec->autostart = n->autostart;
  if (n->mode == NM(BRIDGE)) return 0;
  char addr[48];
  if (cidr_parts(n->ipv4_cidr, addr, &spec->prefix))
    snprintf(spec->gateway, sizeof(spec->gateway), "%s", n->gateway);
  if (*n->ipv6_cidr && cidr_parts(n->ipv6_cidr, addr, &spec->ipv6_prefix)) {
    /* the host takes the subnet's ::1 */
    unsigned char a[16];
    if (inet_pton(AF_INET6, addr, a) == 1) {
      a[15] = 1;
      inet_ntop(AF_INET6, a, spec->ipv6_gateway, sizeof(spec->ipv6_gateway));
    } else {
      spec->ipv6_prefix = 0;
    }
  }
  snprintf(spec->dhcp_start, sizeof(spec->dhcp_start), "%s", n->dhcp_start);
  snprintf(spec->dhcp_end, sizeof(spec->dhcp_end), "%s", n->dhcp_end);
  if (!n->n_reservations) return 0;
  *hosts = calloc(n->n_reservations, sizeof(**hosts));
  if (!*hosts) return -1;
  for (size_t i = 0; i < n->n_reservations; i++) {
    snprintf((*hosts)[i].mac, sizeof((*hosts)[i].mac), "%s", n->reservations[i]->mac);
    snprintf((*hosts)[i].ip, sizeof((*hosts)[i].ip), "%s", n->reservations[i]->ip);
    snprintf((*hosts)[i].hostname, sizeof((*hosts)[i].hostname), "%s",
             n->reservations[i]->hostname);
  }
  spec->nhosts = (int)n->n_reservations;
  spec->hosts = *hosts;
  return 0;
}

/* ================= loading ================= */

typedef struct net_ctx {
  char uid[40];
  char host[64];
  char project[64];
  Novacron__V1__Network *net;
} net_ctx;

typedef struct load_arg {
  net_ctx *n;
  const char *uid;
} load_arg;

static int load_tx(store_conn *conn, core_tx *tx) {
  load_arg *a = tx->arg;
  PGresult *r;
  int code = core_network_load_uid(tx, conn, a->uid, false, &r);
  if (code) return code;
  a->n->net = core_network_from_row(tx->call, r, 0);
  snprintf(a->n->uid, sizeof(a->n->uid), "%s", PQgetvalue(r, 0, 0));
  snprintf(a->n->project, sizeof(a->n->project), "%s", PQgetvalue(r, 0, 1));
  snprintf(a->n->host, sizeof(a->n->host), "%s", PQgetvalue(r, 0, 3));
  PQclear(r);
  return a->n->net ? CORE_OK : core_fail(tx->call, CORE_INTERNAL, "out of memory");
}

static int load_ctx(core_op *op, net_ctx *n) {
  memset(n, 0, sizeof(*n));
  load_arg a = {.n = n, .uid = op->target_uid};
  return core_run_ro(op->c->db, &op->call, load_tx, &a);
}

/* What libvirt reports: ACTIVE or INACTIVE, ERROR when the network is
 * missing, or 0 when the host cannot tell (unreachable). */
static int live_state(core_compute *c, const char *host, const char *uid) {
  bool active = false, autostart = false;
  char bridge[16], err[256];
  int hc = hv_net_info(c->hv, host, uid, &active, &autostart, bridge, err, sizeof(err));
  if (hc == HV_OK) return active ? NS(ACTIVE) : NS(INACTIVE);
  if (hc == HV_NOT_FOUND) return NS(ERROR);
  return 0;
}

/* ================= outcomes ================= */

typedef struct state_apply {
  const char *uid;
  int state;
  const char *message;
} state_apply;

static int apply_state(store_conn *conn, core_tx *tx, core_op *op, ProtobufCMessage **resp,
                       void *arg) {
  state_apply *s = arg;
  Novacron__V1__Network *n = NULL;
  int code = core_network_set_state(tx, conn, op, s->uid, s->state, s->message, &n);
  if (code) return code;
  *resp = &n->base;
  return CORE_OK;
}

/* The state after a failure on the host: libvirt's, with the error. */
static void failed_state(core_op *op, const net_ctx *n, state_apply *s, const char *message) {
  int st = live_state(op->c, n->host, n->uid);
  s->uid = n->uid;
  s->state = st ? st : NS(ERROR);
  s->message = message;
}

typedef struct remove_apply {
  const char *uid;
  const char *project;
  const char *message;
} remove_apply;

/* Removes a network row (failed create, or a delete) with its event. */
static int apply_remove(store_conn *conn, core_tx *tx, core_op *op, ProtobufCMessage **resp,
                        void *arg) {
  remove_apply *a = arg;
  PGresult *r;
  int code = core_network_load_uid(tx, conn, a->uid, true, &r);
  if (code == CORE_NOT_FOUND) return CORE_OK;
  if (code) return code;
  Novacron__V1__Network *n = core_network_from_row(tx->call, r, 0);
  PQclear(r);
  if (!n) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  const char *p[] = {a->uid};
  /* a NIC connected since the delete was accepted would make the FK refuse;
   * VmService does not connect NICs to a DELETING network, this is the
   * last line of defence */
  if ((code = core_q(tx, conn, "net_delete",
                     "DELETE FROM networks n WHERE id = $1::uuid AND NOT EXISTS (SELECT 1 FROM "
                     "vm_nics x WHERE x.network = n.id)",
                     1, p, &r)))
    return code;
  bool deleted = strcmp(PQcmdTuples(r), "1") == 0;
  PQclear(r);
  if (!deleted)
    return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                     "network %s got a VM NIC while it was being deleted", n->name);
  *resp = &n->base;
  return core_emit(tx, conn, op, NOVACRON__V1__EVENT__TYPE__TYPE_RESOURCE_DELETED, n->name,
                   a->project, a->message, &n->base);
}

/* The message of a failed host call: "<what> on hosts/<host> failed: <libvirt's
 * words>". When the host is unreachable libvirt names its address, port and
 * user, which the API hides from project members: the log gets it and the
 * message says only that. */

/* Honours a cancellation that arrived while the operation waited. */
static bool cancelled(core_op *op, int percent, const char *status) {
  return core_op_progress(op, percent, status);
}

/* ================= CreateNetwork ================= */

static uint32_t ip4(const char *s, bool *ok) {
  struct in_addr a;
  *ok = s && inet_pton(AF_INET, s, &a) == 1;
  return *ok ? ntohl(a.s_addr) : 0;
}

/* A libvirt network on the host, other than this one, whose IPv4 subnet
 * overlaps; writes a description of it. Our own networks never overlap
 * (CreateNetwork checked them under the host's lock), so whatever is found
 * is managed outside NovaCron, like the test driver's "default". */
static int foreign_overlap(core_op *op, const net_ctx *n, char *what, size_t whatlen, char *err,
                           size_t errlen) {
  hv_net_summary *list = NULL;
  int count = 0;
  int hc = hv_net_list(op->c->hv, n->host, &list, &count, err, errlen);
  if (hc) return hc;
  char addr[48] = "";
  int prefix = 0;
  bool ok = false;
  uint32_t mine = cidr_parts(n->net->ipv4_cidr, addr, &prefix) ? ip4(addr, &ok) : 0;
  what[0] = '\0';
  for (int i = 0; ok && i < count && !what[0]; i++) {
    const hv_net_summary *s = &list[i];
    bool tok;
    uint32_t theirs = ip4(s->ipv4, &tok);
    if (!tok || strcmp(s->uuid, n->uid) == 0 || s->prefix < 0 || s->prefix > 32) continue;
    int p = prefix < s->prefix ? prefix : s->prefix;
    uint32_t m = p ? 0xffffffffu << (32 - p) : 0;
    if ((mine & m) == (theirs & m)) {
      uint32_t net = theirs & (s->prefix ? 0xffffffffu << (32 - s->prefix) : 0);
      struct in_addr na = {.s_addr = htonl(net)};
      char t[16];
      inet_ntop(AF_INET, &na, t, sizeof(t));
      snprintf(what, whatlen, "libvirt network \"%s\" (%s/%d)", s->name, t, s->prefix);
    }
  }
  free(list);
  return HV_OK;
}

typedef struct rebridge_arg {
  const char *uid;
  char bridge[16];
} rebridge_arg;

/* A new bridge name for a network whose name was taken on its host. */
static int rebridge_tx(store_conn *conn, core_tx *tx) {
  rebridge_arg *a = tx->arg;
  const char *p[] = {a->uid};
  PGresult *r;
  int code = core_q(tx, conn, "network_rebridge",
                    "UPDATE networks SET bridge = 'ncbr' || nextval('network_bridge_seq') WHERE "
                    "id = $1::uuid RETURNING bridge",
                    1, p, &r);
  if (code) return code;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return core_fail(tx->call, CORE_NOT_FOUND, "the network is gone");
  }
  snprintf(a->bridge, sizeof(a->bridge), "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  return CORE_OK;
}

static int exec_create(core_op *op) {
  net_ctx n;
  int code = load_ctx(op, &n);
  if (code) return core_op_finish(op, code, op->msg, NULL, NULL);
  remove_apply rm = {.uid = n.uid, .project = n.project, .message = "creation failed: removed"};
  char err[512], m[800];
  if (cancelled(op, 10, "checking the host's networks")) {
    /* nothing defined yet, or (a rerun) something to take back */
    hv_net_delete(op->c->hv, n.host, n.uid, err, sizeof(err));
    rm.message = "creation cancelled: removed";
    return core_op_finish(op, CORE_CANCELLED, "cancelled", apply_remove, &rm);
  }
  if (n.net->mode != NM(BRIDGE)) {
    char what[320];
    int hc = foreign_overlap(op, &n, what, sizeof(what), err, sizeof(err));
    if (hc) {
      core_hv_failed(m, sizeof(m), hc, "listing the networks", n.host, err);
      return core_op_finish(op, hc, m, apply_remove, &rm);
    }
    if (what[0]) {
      hv_net_delete(op->c->hv, n.host, n.uid, err, sizeof(err)); /* a rerun's */
      snprintf(m, sizeof(m),
               "network.ipv4_cidr: %s overlaps %s on hosts/%s, which NovaCron does not manage; "
               "choose another subnet",
               n.net->ipv4_cidr, what, n.host);
      return core_op_finish(op, CORE_FAILED_PRECONDITION, m, apply_remove, &rm);
    }
  }
  core_op_progress(op, 40, "defining and starting the network");
  hv_net_spec spec;
  hv_net_host *hosts = NULL;
  if (core_network_spec(n.net, n.uid, &spec, &hosts) != 0)
    return core_op_finish(op, CORE_INTERNAL, "out of memory", NULL, NULL);
  for (int tries = 0;; tries++) {
    code = hv_net_create(op->c->hv, n.host, &spec, err, sizeof(err));
    /* A bridge of that name exists on the host already (left by another
     * installation, or created by hand): the next number is tried. */
    bool taken = strstr(err, "already in use") ||                       /* another network's */
                 (strstr(err, "bridge") && strstr(err, "File exists")); /* a device's */
    if (!code || n.net->mode == NM(BRIDGE) || tries >= 4 || !taken) break;
    char e2[256];
    hv_net_delete(op->c->hv, n.host, n.uid, e2, sizeof(e2));
    rebridge_arg rb = {.uid = n.uid};
    if (core_run_tx(op->c->db, &op->call, rebridge_tx, &rb) != CORE_OK) break;
    nc_infof("networks: bridge %s is taken on hosts/%s; trying %s", spec.bridge, n.host, rb.bridge);
    snprintf(spec.bridge, sizeof(spec.bridge), "%s", rb.bridge);
  }
  free(hosts);
  if (code) {
    core_hv_failed(m, sizeof(m), code, "creating the network", n.host, err);
    /* both or neither: take back whatever was defined under our UUID; a
     * host that cannot be reached may hold it or not, so the row stays,
     * in ERROR, for DeleteNetwork to converge once the host answers */
    char e2[256];
    int dc = hv_net_delete(op->c->hv, n.host, n.uid, e2, sizeof(e2));
    if (code == HV_UNAVAILABLE || (dc != HV_OK && dc != HV_NOT_FOUND)) {
      state_apply keep = {.uid = n.uid, .state = NS(ERROR), .message = m};
      return core_op_finish(op, code, m, apply_state, &keep);
    }
    return core_op_finish(op, code, m, apply_remove, &rm);
  }
  state_apply ok = {.uid = n.uid, .state = NS(ACTIVE), .message = ""};
  return core_op_finish(op, CORE_OK, NULL, apply_state, &ok);
}

/* ================= DeleteNetwork ================= */

typedef struct users_arg {
  const char *uid;
  int n;
} users_arg;

static int users_tx(store_conn *conn, core_tx *tx) {
  users_arg *a = tx->arg;
  const char *p[] = {a->uid};
  PGresult *r;
  int code = core_q(tx, conn, "net_nics",
                    "SELECT count(DISTINCT vm) FROM vm_nics WHERE network = $1::uuid", 1, p, &r);
  if (code) return code;
  a->n = (int)core_i64(r, 0, 0);
  PQclear(r);
  return CORE_OK;
}

static int exec_delete(core_op *op) {
  net_ctx n;
  int code = load_ctx(op, &n);
  if (code == CORE_NOT_FOUND) return core_op_finish(op, CORE_OK, NULL, NULL, NULL); /* done */
  if (code) return core_op_finish(op, code, op->msg, NULL, NULL);
  state_apply back;
  if (cancelled(op, 10, "stopping and undefining the network")) {
    failed_state(op, &n, &back, "");
    return core_op_finish(op, CORE_CANCELLED, "cancelled", apply_state, &back);
  }
  /* a NIC may have been connected between the request and now */
  users_arg u = {.uid = n.uid};
  if ((code = core_run_ro(op->c->db, &op->call, users_tx, &u)))
    return core_op_finish(op, code, op->msg, NULL, NULL);
  char m[800];
  if (u.n) {
    snprintf(m, sizeof(m), "network %s is in use by %d VM%s; detach their NICs first", n.net->name,
             u.n, u.n == 1 ? "" : "s");
    failed_state(op, &n, &back, "");
    return core_op_finish(op, CORE_FAILED_PRECONDITION, m, apply_state, &back);
  }
  char err[512];
  code = hv_net_delete(op->c->hv, n.host, n.uid, err, sizeof(err));
  if (code && code != HV_NOT_FOUND) {
    core_hv_failed(m, sizeof(m), code, "deleting the network", n.host, err);
    failed_state(op, &n, &back, m);
    return core_op_finish(op, code, m, apply_state, &back);
  }
  remove_apply rm = {.uid = n.uid, .project = n.project, .message = "deleted"};
  return core_op_finish(op, CORE_OK, NULL, apply_remove, &rm);
}

/* ================= UpdateNetwork ================= */

typedef struct update_apply {
  const char *uid, *project;
  const Novacron__V1__UpdateNetworkRequest *req;
  const char *labels;
  const char *changed; /* "description, mtu" */
  const char *message; /* the new state_message, or NULL to keep it */
} update_apply;

static int apply_update(store_conn *conn, core_tx *tx, core_op *op, ProtobufCMessage **resp,
                        void *arg) {
  update_apply *a = arg;
  const Google__Protobuf__FieldMask *m = a->req->update_mask;
  const Novacron__V1__Network *in = a->req->network;
  char mtu[16];
  snprintf(mtu, sizeof(mtu), "%d", in->mtu);
  const char *start = in->dhcp_start && *in->dhcp_start ? in->dhcp_start : NULL;
  const char *end = in->dhcp_end && *in->dhcp_end ? in->dhcp_end : NULL;
  const char *p[] = {a->uid,
                     core_mask_has(m, "description") ? "t" : "f",
                     in->description ? in->description : "",
                     core_mask_has(m, "labels") ? "t" : "f",
                     a->labels,
                     core_mask_has(m, "autostart") ? "t" : "f",
                     in->autostart ? "t" : "f",
                     core_mask_has(m, "mtu") ? "t" : "f",
                     mtu,
                     core_mask_has(m, "dhcp_start") ? "t" : "f",
                     start,
                     core_mask_has(m, "dhcp_end") ? "t" : "f",
                     end,
                     a->message};
  int code = core_q(
      tx, conn, "net_update",
      "UPDATE networks SET description = CASE WHEN $2::bool THEN $3 ELSE description END, labels "
      "= CASE WHEN $4::bool THEN $5::jsonb ELSE labels END, autostart = CASE WHEN $6::bool THEN "
      "$7::bool ELSE autostart END, mtu = CASE WHEN $8::bool THEN $9::int ELSE mtu END, "
      "dhcp_start = CASE WHEN $10::bool THEN $11::inet ELSE dhcp_start END, dhcp_end = CASE WHEN "
      "$12::bool THEN $13::inet ELSE dhcp_end END, state_message = coalesce($14, state_message), "
      "version = version + 1, updated_at = now() WHERE id = $1::uuid",
      14, p, NULL);
  if (code) return code;
  PGresult *r;
  if ((code = core_network_load_uid(tx, conn, a->uid, false, &r))) return code;
  Novacron__V1__Network *n = core_network_from_row(tx->call, r, 0);
  PQclear(r);
  if (!n) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  *resp = &n->base;
  char msg[160];
  snprintf(msg, sizeof(msg), "updated %s", a->changed);
  return core_emit(tx, conn, op, NOVACRON__V1__EVENT__TYPE__TYPE_RESOURCE_UPDATED, n->name,
                   a->project, msg, &n->base);
}

typedef struct running_arg {
  const char *uid;
  int n;
} running_arg;

/* VMs connected to the network whose guests may be running: a restart of
 * the network's bridge would cut their link. */
static int running_tx(store_conn *conn, core_tx *tx) {
  running_arg *a = tx->arg;
  const char *p[] = {a->uid};
  PGresult *r;
  int code = core_q(tx, conn, "net_running_vms",
                    "SELECT count(DISTINCT v.id) FROM vm_nics x JOIN vms v ON v.id = x.vm WHERE "
                    "x.network = $1::uuid AND v.state NOT IN (1, 2, 8)",
                    1, p, &r);
  if (code) return code;
  a->n = (int)core_i64(r, 0, 0);
  PQclear(r);
  return CORE_OK;
}

static void add_name(char *buf, size_t len, const char *name) {
  size_t used = strlen(buf);
  if (used < len) snprintf(buf + used, len - used, "%s%s", used ? ", " : "", name);
}

static int exec_update(core_op *op) {
  const Novacron__V1__UpdateNetworkRequest *req = (const void *)op->req;
  net_ctx n;
  int code = load_ctx(op, &n);
  if (code) return core_op_finish(op, code, op->msg, NULL, NULL);
  if (cancelled(op, 10, "updating"))
    return core_op_finish(op, CORE_CANCELLED, "cancelled", NULL, NULL);
  const Google__Protobuf__FieldMask *m = req->update_mask;
  const Novacron__V1__Network *in = req->network;
  /* the network as it will be, and what changes on the host */
  Novacron__V1__Network want = *n.net;
  char changed[160] = "", restart_fields[64] = "";
  for (size_t i = 0; i < m->n_paths; i++)
    add_name(changed, sizeof(changed), m->paths[i]);
  if (core_mask_has(m, "autostart")) want.autostart = in->autostart;
  if (core_mask_has(m, "mtu")) want.mtu = in->mtu;
  if (core_mask_has(m, "dhcp_start")) want.dhcp_start = in->dhcp_start ? in->dhcp_start : "";
  if (core_mask_has(m, "dhcp_end")) want.dhcp_end = in->dhcp_end ? in->dhcp_end : "";
  if (want.mtu != n.net->mtu) add_name(restart_fields, sizeof(restart_fields), "mtu");
  if (strcmp(want.dhcp_start, n.net->dhcp_start) || strcmp(want.dhcp_end, n.net->dhcp_end))
    add_name(restart_fields, sizeof(restart_fields), "the DHCP range");
  bool redefine = restart_fields[0] || want.autostart != n.net->autostart;
  char *labels = NULL;
  if (core_mask_has(m, "labels") &&
      core_labels_json(&op->call, in->labels, in->n_labels, &labels) != CORE_OK)
    return core_op_finish(op, CORE_INVALID_ARGUMENT, op->msg, NULL, NULL);
  update_apply ua = {.uid = n.uid,
                     .project = n.project,
                     .req = req,
                     .labels = labels ? labels : "{}",
                     .changed = changed};
  char note[256];
  if (redefine) {
    /* Changing the MTU or the DHCP range takes a restart of the bridge and
     * dnsmasq, which cuts running guests off until libvirt reconnects
     * them: with such guests the new definition waits for the network's
     * next start instead, and the network says so. */
    bool restart = false;
    if (restart_fields[0]) {
      running_arg ra = {.uid = n.uid};
      if ((code = core_run_ro(op->c->db, &op->call, running_tx, &ra))) {
        free(labels);
        return core_op_finish(op, code, op->msg, NULL, NULL);
      }
      restart = ra.n == 0;
      if (restart) {
        ua.message = "";
      } else if (n.net->state == NS(ACTIVE)) {
        snprintf(note, sizeof(note),
                 "%s change%s when the network restarts: %d running VM%s connected to it",
                 restart_fields, strchr(restart_fields, ',') ? "" : "s", ra.n,
                 ra.n == 1 ? " is" : "s are");
        ua.message = note;
      }
    }
    core_op_progress(op, 40,
                     restart ? "redefining and restarting the network" : "redefining the network");
    hv_net_spec spec;
    hv_net_host *hosts = NULL;
    if (core_network_spec(&want, n.uid, &spec, &hosts) != 0) {
      free(labels);
      return core_op_finish(op, CORE_INTERNAL, "out of memory", NULL, NULL);
    }
    char err[512];
    code = hv_net_redefine(op->c->hv, n.host, &spec, restart, err, sizeof(err));
    free(hosts);
    if (code) {
      free(labels);
      char msg[800];
      core_hv_failed(msg, sizeof(msg), code, "updating the network", n.host, err);
      return core_op_finish(op, code, msg, NULL, NULL);
    }
  }
  code = core_op_finish(op, CORE_OK, NULL, apply_update, &ua);
  free(labels);
  return code;
}

/* ================= reservations ================= */

typedef struct resv_apply {
  const char *uid, *project;
  bool add;
  const char *mac, *ip, *hostname;
} resv_apply;

static int apply_resv(store_conn *conn, core_tx *tx, core_op *op, ProtobufCMessage **resp,
                      void *arg) {
  resv_apply *a = arg;
  int code;
  if (a->add) {
    const char *p[] = {a->uid, a->mac, a->ip, a->hostname};
    code = core_q(tx, conn, "net_resv_add",
                  "INSERT INTO network_reservations (network, mac, ip, hostname) VALUES "
                  "($1::uuid, $2::macaddr, $3::inet, $4) ON CONFLICT DO NOTHING",
                  4, p, NULL);
  } else {
    const char *p[] = {a->uid, a->mac};
    code = core_q(tx, conn, "net_resv_remove",
                  "DELETE FROM network_reservations WHERE network = $1::uuid AND mac = "
                  "$2::macaddr",
                  2, p, NULL);
  }
  if (code) return code;
  const char *q[] = {a->uid};
  if ((code = core_q(tx, conn, "net_bump",
                     "UPDATE networks SET version = version + 1, updated_at = now() WHERE id = "
                     "$1::uuid",
                     1, q, NULL)))
    return code;
  PGresult *r;
  if ((code = core_network_load_uid(tx, conn, a->uid, false, &r))) return code;
  Novacron__V1__Network *n = core_network_from_row(tx->call, r, 0);
  PQclear(r);
  if (!n) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  *resp = &n->base;
  char msg[160];
  if (a->add)
    snprintf(msg, sizeof(msg), "reservation %s -> %s added", a->mac, a->ip);
  else
    snprintf(msg, sizeof(msg), "reservation of %s removed", a->mac);
  return core_emit(tx, conn, op, NOVACRON__V1__EVENT__TYPE__TYPE_RESOURCE_UPDATED, n->name,
                   a->project, msg, &n->base);
}

static void lower_mac(const char *in, char out[18]) {
  snprintf(out, 18, "%s", in ? in : "");
  for (char *p = out; *p; p++)
    if (*p >= 'A' && *p <= 'F') *p = (char)(*p - 'A' + 'a');
}

static bool has_range(const net_ctx *n) {
  return n->net && n->net->dhcp_start && *n->net->dhcp_start;
}

static int exec_add_reservation(core_op *op) {
  const Novacron__V1__AddReservationRequest *req = (const void *)op->req;
  net_ctx n;
  int code = load_ctx(op, &n);
  if (code) return core_op_finish(op, code, op->msg, NULL, NULL);
  if (cancelled(op, 10, "adding the DHCP reservation"))
    return core_op_finish(op, CORE_CANCELLED, "cancelled", NULL, NULL);
  hv_net_host h;
  memset(&h, 0, sizeof(h));
  lower_mac(req->reservation->mac, h.mac);
  /* the request passed the checks as text; libvirt wants the canonical
   * dotted quad the row stores */
  struct in_addr a;
  if (inet_pton(AF_INET, req->reservation->ip, &a) != 1)
    return core_op_finish(op, CORE_INVALID_ARGUMENT, "reservation.ip: not an IPv4 address", NULL,
                          NULL);
  inet_ntop(AF_INET, &a, h.ip, sizeof(h.ip));
  snprintf(h.hostname, sizeof(h.hostname), "%s",
           req->reservation->hostname ? req->reservation->hostname : "");
  char err[512];
  /* without a DHCP range the reservation is only recorded: it reaches
   * dnsmasq with the range (UpdateNetwork redefines the network) */
  if (has_range(&n) && (code = hv_net_host_add(op->c->hv, n.host, n.uid, &h, err, sizeof(err)))) {
    char m[800];
    core_hv_failed(m, sizeof(m), code, "adding the reservation", n.host, err);
    return core_op_finish(op, code, m, NULL, NULL);
  }
  resv_apply ra = {.uid = n.uid,
                   .project = n.project,
                   .add = true,
                   .mac = h.mac,
                   .ip = h.ip,
                   .hostname = h.hostname};
  return core_op_finish(op, CORE_OK, NULL, apply_resv, &ra);
}

static int exec_remove_reservation(core_op *op) {
  const Novacron__V1__RemoveReservationRequest *req = (const void *)op->req;
  net_ctx n;
  int code = load_ctx(op, &n);
  if (code) return core_op_finish(op, code, op->msg, NULL, NULL);
  if (cancelled(op, 10, "removing the DHCP reservation"))
    return core_op_finish(op, CORE_CANCELLED, "cancelled", NULL, NULL);
  char mac[18], err[512];
  lower_mac(req->mac, mac);
  if (has_range(&n) &&
      (code = hv_net_host_remove(op->c->hv, n.host, n.uid, mac, err, sizeof(err)))) {
    char m[800];
    core_hv_failed(m, sizeof(m), code, "removing the reservation", n.host, err);
    return core_op_finish(op, code, m, NULL, NULL);
  }
  resv_apply ra = {.uid = n.uid, .project = n.project, .mac = mac};
  return core_op_finish(op, CORE_OK, NULL, apply_resv, &ra);
}

#define V(name, Req, fn) \
  { name, &novacron__v1__##Req##__descriptor, fn }
const core_verb core_network_verbs[] = {
    V("NetworkService.CreateNetwork", create_network_request, exec_create),
    V("NetworkService.DeleteNetwork", delete_network_request, exec_delete),
    V("NetworkService.UpdateNetwork", update_network_request, exec_update),
    V("NetworkService.AddReservation", add_reservation_request, exec_add_reservation),
    V("NetworkService.RemoveReservation", remove_reservation_request, exec_remove_reservation),
};
const size_t core_network_nverbs = sizeof(core_network_verbs) / sizeof(core_network_verbs[0]);

/* ================= heartbeat refresh and restore ================= */

/* Ephemeral hosts whose networks this process has restored. Until then a
 * network missing there is expected (the heartbeat at start runs before
 * the restore) and is not reported as drift. */
#define RESTORED_MAX 256
static pthread_mutex_t restored_mu = PTHREAD_MUTEX_INITIALIZER;
static char restored[RESTORED_MAX][64];
static int nrestored;

static void mark_restored(const char *host) {
  pthread_mutex_lock(&restored_mu);
  bool have = false;
  for (int i = 0; i < nrestored && !have; i++)
    have = strcmp(restored[i], host) == 0;
  if (!have && nrestored < RESTORED_MAX) snprintf(restored[nrestored++], 64, "%s", host);
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

typedef struct host_nets {
  const char *host;
  PGresult *r;
} host_nets;

/* NET_COLS of the host's networks, then whether an operation is in
 * progress on each, then the host's URI. */
static int host_nets_tx(store_conn *conn, core_tx *tx) {
  host_nets *a = tx->arg;
  const char *p[] = {a->host};
  return core_q(tx, conn, "net_host_rows",
                "SELECT " NET_COLS
                ", EXISTS (SELECT 1 FROM operations o WHERE o.target_uid = n.id AND o.state IN (1, "
                "2)), h.uri" NET_FROM " WHERE h.host_id = $1 ORDER BY n.created_at",
                1, p, &a->r);
}

typedef struct fix_arg {
  const char *uid, *version;
  int state;
  const char *message;
} fix_arg;

static int fix_tx(store_conn *conn, core_tx *tx) {
  fix_arg *a = tx->arg;
  /* re-check under the row lock: an operation may have started, or the row
   * changed, since libvirt was asked */
  const char *p[] = {a->uid, a->version};
  PGresult *r;
  int code = core_q(tx, conn, "net_fix_lock",
                    "SELECT EXISTS (SELECT 1 FROM operations o WHERE o.target_uid = n.id AND "
                    "o.state IN (1, 2)) OR n.version <> $2::bigint FROM networks n WHERE n.id = "
                    "$1::uuid FOR UPDATE",
                    2, p, &r);
  if (code) return code;
  bool skip = PQntuples(r) == 0 || core_bool(r, 0, 0);
  PQclear(r);
  if (skip) return CORE_OK;
  return core_network_set_state(tx, conn, NULL, a->uid, a->state, a->message, NULL);
}

static void set_state(core_compute *c, const char *uid, const char *version, int state,
                      const char *message) {
  fix_arg a = {.uid = uid, .version = version, .state = state, .message = message};
  char msg[256];
  core_arena arena;
  core_arena_init(&arena);
  core_call call = {.alloc = &arena.alloc, .msg = msg, .msglen = sizeof(msg)};
  if (core_run_tx(c->db, &call, fix_tx, &a) == CORE_OK)
    core_events_kick(c->ev);
  else
    nc_warnf("networks: cannot record the state of network %s: %s", uid, msg);
  core_arena_free(&arena);
}

void core_networks_refresh(core_compute *c, const char *host_id) {
  host_nets hn = {.host = host_id};
  char msg[256];
  core_arena arena;
  core_arena_init(&arena);
  core_call call = {.alloc = &arena.alloc, .msg = msg, .msglen = sizeof(msg)};
  if (core_run_ro(c->db, &call, host_nets_tx, &hn) != CORE_OK) {
    core_arena_free(&arena);
    return;
  }
  int rows = PQntuples(hn.r);
  bool quiet_missing =
      rows > 0 && hv_uri_is_ephemeral(PQgetvalue(hn.r, 0, NET_NCOLS + 1)) && !was_restored(host_id);
  for (int i = 0; i < rows; i++) {
    const char *uid = PQgetvalue(hn.r, i, 0);
    int cur = (int)core_i64(hn.r, i, 14);
    /* an operation owns the state; DELETING without one is left for
     * DeleteNetwork to be called again */
    if (core_bool(hn.r, i, NET_NCOLS) || cur == NS(DELETING)) continue;
    int st = live_state(c, host_id, uid);
    if (!st) break;          /* unreachable: the host's heartbeat reports that */
    if (st == cur) continue; /* unchanged: keeps its message (e.g. a change awaiting a restart) */
    char m[200] = "";
    if (st == NS(ERROR)) {
      if (quiet_missing) continue;
      if (cur == NS(CREATING))
        snprintf(m, sizeof(m), "creation did not complete: the network was not defined");
      else
        snprintf(m, sizeof(m), "the network is missing on hosts/%s (removed outside NovaCron)",
                 host_id);
    }
    nc_infof("networks: projects/%s/networks/%s is %s on hosts/%s, recorded %s",
             PQgetvalue(hn.r, i, 1), PQgetvalue(hn.r, i, 2), core_network_state_name(st), host_id,
             core_network_state_name(cur));
    set_state(c, uid, PQgetvalue(hn.r, i, NET_C_VERSION), st, m);
  }
  PQclear(hn.r);
  core_arena_free(&arena);
}

void core_networks_restore(core_compute *c, const char *host_id) {
  host_nets hn = {.host = host_id};
  char msg[256];
  core_arena arena;
  core_arena_init(&arena);
  core_call call = {.alloc = &arena.alloc, .msg = msg, .msglen = sizeof(msg)};
  if (core_run_ro(c->db, &call, host_nets_tx, &hn) != CORE_OK) {
    core_arena_free(&arena);
    return;
  }
  for (int i = 0; i < PQntuples(hn.r); i++) {
    int cur = (int)core_i64(hn.r, i, 14);
    /* a create defines its own network, and a delete needs none */
    if (cur == NS(CREATING) || cur == NS(DELETING)) continue;
    Novacron__V1__Network *n = core_network_from_row(&call, hn.r, i);
    if (!n) continue;
    const char *uid = PQgetvalue(hn.r, i, 0);
    hv_net_spec spec;
    hv_net_host *hosts = NULL;
    char err[512];
    int hc = core_network_spec(n, uid, &spec, &hosts) == 0
                 ? hv_net_create(c->hv, host_id, &spec, err, sizeof(err))
                 : HV_INTERNAL;
    free(hosts);
    if (hc) nc_warnf("networks: cannot restore %s on hosts/%s: %s", n->name, host_id, err);
    bool busy = core_bool(hn.r, i, NET_NCOLS);
    if (busy) continue; /* its operation records the state */
    int st = hc ? NS(ERROR) : NS(ACTIVE);
    char m[600] = "";
    if (hc) core_hv_failed(m, sizeof(m), hc, "restoring the network", host_id, err);
    if (st != cur || (hc && strcmp(n->state_message, m) != 0))
      set_state(c, uid, PQgetvalue(hn.r, i, NET_C_VERSION), st, m);
  }
  PQclear(hn.r);
  core_arena_free(&arena);
  mark_restored(host_id);
}
