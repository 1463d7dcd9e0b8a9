/*
 * host.c - HostService: registration, reads, metadata, drain and
 * deregistration, plus the heartbeat that keeps each host's state and
 * capacity current.
 *
 * A host is a libvirt URI and what the server learns through it. The
 * first connection happens in the RegisterHost operation: if it fails,
 * the row reserved for the host is removed with the failed operation. A
 * host whose heartbeat fails turns UNREACHABLE and its VMs UNKNOWN; when
 * it answers again it turns READY and the reconciler compares its domains
 * with the database.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/compute_int.h"
#include "util/log.h"

#define HS(x) NOVACRON__V1__HOST__STATE__STATE_##x

/* ================= rows ================= */

Novacron__V1__Host *core_host_from_row(core_call *call, const PGresult *r, int i, bool show_uri) {
  Novacron__V1__Host *h = core_alloc(call, sizeof(*h));
  if (!h) return NULL;
  novacron__v1__host__init(h);
  char name[96];
  snprintf(name, sizeof(name), "hosts/%s", PQgetvalue(r, i, 1));
  h->name = core_strdup(call, name);
  h->uid = core_strdup(call, PQgetvalue(r, i, 0));
  h->description = core_strdup(call, PQgetvalue(r, i, 2));
  h->labels = core_labels_from_json(call, PQgetvalue(r, i, 3), &h->n_labels);
  h->etag = core_etag(call, core_i64(r, i, 4));
  h->create_time = core_ts(call, r, i, 5);
  h->update_time = core_ts(call, r, i, 6);
  h->state = (Novacron__V1__Host__State)core_i64(r, i, 7);
  h->state_message = core_strdup(call, PQgetvalue(r, i, 8));
  h->uri = core_strdup(call, show_uri ? PQgetvalue(r, i, 9) : "");
  h->cordoned = core_bool(r, i, 10);
  h->hypervisor_type = core_strdup(call, PQgetvalue(r, i, 11));
  h->hypervisor_version = core_strdup(call, PQgetvalue(r, i, 12));
  h->libvirt_version = core_strdup(call, PQgetvalue(r, i, 13));
  h->hostname = core_strdup(call, PQgetvalue(r, i, 14));
  h->arch = core_strdup(call, PQgetvalue(r, i, 15));
  h->cpu_count = (int32_t)core_i64(r, i, 16);
  h->memory_mib = core_i64(r, i, 17);
  h->free_memory_mib = core_i64(r, i, 18);
  h->allocated_vcpus = (int32_t)core_i64(r, i, 19);
  h->allocated_memory_mib = core_i64(r, i, 20);
  h->vm_count = (int32_t)core_i64(r, i, 21);
  h->last_heartbeat_time = core_ts(call, r, i, 22);
  return h;
}

static int load_host(core_tx *tx, store_conn *conn, const char *host_id, bool lock,
                     PGresult **res) {
  return core_q_one(tx, conn, lock ? "host_lock" : "host_get",
                    lock ? "SELECT " HOST_COLS HOST_FROM " WHERE h.host_id = $1 FOR UPDATE OF h"
                         : "SELECT " HOST_COLS HOST_FROM " WHERE h.host_id = $1",
                    host_id, "host", res);
}

static const char *const host_state_names[] = {
    "STATE_UNSPECIFIED", "STATE_PENDING",  "STATE_READY",        "STATE_NOT_READY",
    "STATE_UNREACHABLE", "STATE_DRAINING", "STATE_DEREGISTERING"};

int core_host_set_state(core_tx *tx, store_conn *conn, core_op *op, const char *host_id, int state,
                        const char *message) {
  char st[8];
  snprintf(st, sizeof(st), "%d", state);
  const char *p[] = {host_id, st, message ? message : ""};
  PGresult *r;
  int code =
      core_q_one(tx, conn, "host_state_lock",
                 "SELECT state FROM hosts WHERE host_id = $1 FOR UPDATE", host_id, "host", &r);
  if (code) return code;
  int old = (int)core_i64(r, 0, 0);
  PQclear(r);
  code = core_q(tx, conn, "host_set_state",
                "UPDATE hosts SET state = $2::smallint, state_message = $3, version = version + "
                "CASE WHEN state <> $2::smallint THEN 1 ELSE 0 END, updated_at = CASE WHEN state "
                "<> $2::smallint THEN now() ELSE updated_at END WHERE host_id = $1",
                3, p, &r);
  if (code) return code;
  PQclear(r);
  if (old == state) return CORE_OK;
  if ((code = load_host(tx, conn, host_id, false, &r))) return code;
  Novacron__V1__Host *h = core_host_from_row(tx->call, r, 0, false);
  PQclear(r);
  if (!h) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  char msg[128];
  snprintf(msg, sizeof(msg), "state %s -> %s", host_state_names[old > 0 && old <= 6 ? old : 0] + 6,
           host_state_names[state > 0 && state <= 6 ? state : 0] + 6);
  return core_emit(tx, conn, op, NOVACRON__V1__EVENT__TYPE__TYPE_HOST_STATE_CHANGED, h->name, "",
                   msg, &h->base);
}

static int host_info_params(const hv_host_info *in, char cpu[16], char mem[24], char freem[24]) {
  snprintf(cpu, 16, "%d", in->cpu_count);
  snprintf(mem, 24, "%" PRId64, in->memory_mib);
  snprintf(freem, 24, "%" PRId64, in->free_memory_mib);
  return 0;
}

/* Records what a probe learned (no version bump: heartbeats do not count
 * as changes). */
static int store_info(core_tx *tx, store_conn *conn, const char *host_id, const hv_host_info *in) {
  char cpu[16], mem[24], freem[24];
  host_info_params(in, cpu, mem, freem);
  const char *p[] = {host_id,
                     in->hypervisor_type,
                     in->hypervisor_version,
                     in->libvirt_version,
                     in->hostname,
                     in->arch,
                     cpu,
                     mem,
                     freem};
  PGresult *r;
  int code = core_q(tx, conn, "host_info",
                    "UPDATE hosts SET hypervisor_type = $2, hypervisor_version = $3, "
                    "libvirt_version = $4, hostname = $5, arch = $6, cpu_count = $7::int, "
                    "memory_mib = $8::bigint, free_memory_mib = $9::bigint, last_heartbeat_at = "
                    "now() WHERE host_id = $1",
                    9, p, &r);
  if (code) return code;
  PQclear(r);
  return CORE_OK;
}

/* ================= RegisterHost ================= */

typedef struct reg_arg {
  core_compute *c;
  const Novacron__V1__RegisterHostRequest *req;
  ProtobufCMessage *resp;
  const char *labels;
  Novacron__V1__Operation **out;
} reg_arg;

static int reg_tx(store_conn *conn, core_tx *tx) {
  reg_arg *a = tx->arg;
  const Novacron__V1__RegisterHostRequest *req = a->req;
  bool found;
  int code = core_idem_replay(tx, conn, req->request_id, &req->base, a->resp, &found);
  if (code || found) return code;
  const char *k[] = {req->host_id, req->host->uri};
  PGresult *r;
  if ((code = core_q(tx, conn, "host_dup",
                     "SELECT host_id = $1, uri = $2, host_id FROM hosts WHERE host_id = $1 OR uri "
                     "= $2",
                     2, k, &r)))
    return code;
  if (PQntuples(r)) {
    bool same_id = core_bool(r, 0, 0);
    char other[64];
    snprintf(other, sizeof(other), "%s", PQgetvalue(r, 0, 2));
    PQclear(r);
    return same_id ? core_fail(tx->call, CORE_ALREADY_EXISTS, "host hosts/%s already exists",
                               req->host_id)
                   : core_fail(tx->call, CORE_ALREADY_EXISTS,
                               "the URI is already registered as hosts/%s", other);
  }
  PQclear(r);
  char name[96];
  snprintf(name, sizeof(name), "hosts/%s", req->host_id);
  if (req->validate_only) {
    Novacron__V1__Host *h = core_alloc(tx->call, sizeof(*h));
    if (!h) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
    *h = *req->host;
    h->name = core_strdup(tx->call, "");
    h->state = HS(PENDING);
    *a->out = core_op_done_now(tx->call, "HostService.RegisterHost", name, &h->base);
    return *a->out ? CORE_OK : core_fail(tx->call, CORE_INTERNAL, "out of memory");
  }
  const char *p[] = {req->host_id, req->host->uri,
                     req->host->description ? req->host->description : "", a->labels,
                     req->host->cordoned ? "t" : "f"};
  if ((code = core_q(tx, conn, "host_insert",
                     "INSERT INTO hosts (host_id, uri, description, labels, cordoned) VALUES ($1, "
                     "$2, $3, $4::jsonb, $5::bool) RETURNING id",
                     5, p, &r)))
    return code;
  char uid[40];
  snprintf(uid, sizeof(uid), "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  if ((code = load_host(tx, conn, req->host_id, false, &r))) return code;
  Novacron__V1__Host *h = core_host_from_row(tx->call, r, 0, true);
  PQclear(r);
  if (!h) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  if ((code = core_emit(tx, conn, NULL, NOVACRON__V1__EVENT__TYPE__TYPE_HOST_REGISTERED, name, "",
                        "registering", &h->base)))
    return code;
  core_op_new n = {.verb = "HostService.RegisterHost",
                   .target = name,
                   .target_uid = uid,
                   .project_id = "",
                   .req = &req->base,
                   .request_id = req->request_id,
                   .status_message = "queued: connect and probe"};
  if ((code = core_op_enqueue(tx, conn, &n, a->out))) return code;
  return core_idem_store(tx, conn, req->request_id, &req->base, a->resp);
}

CORE_COMPUTE_FN(register_host, RegisterHostRequest, RegisterHostResponse) {
  int code = core_check_request_id(call, req->request_id);
  if (code) return code;
  if (!core_id_valid(req->host_id))
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "host_id: 1-63 characters of a-z, 0-9 and '-', starting with a letter");
  if (!req->host || !req->host->uri || !*req->host->uri)
    return core_fail(call, CORE_INVALID_ARGUMENT, "host.uri: required");
  char err[256];
  if (hv_uri_check(req->host->uri, err, sizeof(err)) != HV_OK)
    return core_fail(call, CORE_INVALID_ARGUMENT, "host.uri: %s", err);
  if ((code = core_check_text(call, "host.description", req->host->description, 1024))) return code;
  char *labels = NULL;
  if ((code = core_labels_json(call, req->host->labels, req->host->n_labels, &labels))) return code;
  reg_arg a = {.c = c, .req = req, .resp = &resp->base, .labels = labels, .out = &resp->operation};
  code = core_run_tx(c->db, call, reg_tx, &a);
  free(labels);
  if (code == CORE_OK && !req->validate_only) {
    core_events_kick(c->ev);
    core_compute_kick(c);
  }
  return code;
}

typedef struct host_apply {
  const char *host_id;
  const hv_host_info *info;
  int state;
  const char *message;
  bool remove;
} host_apply;

static int apply_host(store_conn *conn, core_tx *tx, core_op *op, ProtobufCMessage **resp,
                      void *arg) {
  host_apply *a = arg;
  PGresult *r;
  int code;
  if (a->remove) {
    if ((code = load_host(tx, conn, a->host_id, true, &r)))
      return code == CORE_NOT_FOUND ? 0 : code;
    Novacron__V1__Host *h = core_host_from_row(tx->call, r, 0, true);
    PQclear(r);
    if (!h) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
    const char *p[] = {a->host_id};
    /* forced deregistration keeps the host's VMs, in STATE_ERROR without a
     * host (host.proto; StartVm places them again); their domains stay on
     * the host untouched */
    if ((code = core_q(tx, conn, "host_orphan_vms",
                       "SELECT v.id FROM vms v JOIN hosts h ON h.id = v.host WHERE h.host_id = $1 "
                       "ORDER BY v.id FOR UPDATE OF v",
                       1, p, &r)))
      return code;
    for (int i = 0; i < PQntuples(r) && !code; i++) {
      const char *q[] = {PQgetvalue(r, i, 0)};
      PGresult *u;
      if (!(code = core_q(tx, conn, "vm_clear_host",
                          "UPDATE vms SET host = NULL WHERE id = $1::uuid", 1, q, &u))) {
        PQclear(u);
        code = core_vm_set_state(tx, conn, op, q[0], NOVACRON__V1__VM__STATE__STATE_ERROR,
                                 "its host was deregistered; StartVm places it again", NULL);
      }
    }
    PQclear(r);
    if (code) return code;
    if ((code = core_q(tx, conn, "host_delete", "DELETE FROM hosts WHERE host_id = $1", 1, p, &r)))
      return code;
    PQclear(r);
    h->state = HS(DEREGISTERING);
    *resp = &h->base;
    return core_emit(tx, conn, op, NOVACRON__V1__EVENT__TYPE__TYPE_HOST_DEREGISTERED, h->name, "",
                     "deregistered", &h->base);
  }
  if (a->info && (code = store_info(tx, conn, a->host_id, a->info))) return code;
  if ((code = core_host_set_state(tx, conn, op, a->host_id, a->state, a->message))) return code;
  if ((code = load_host(tx, conn, a->host_id, false, &r))) return code;
  Novacron__V1__Host *h = core_host_from_row(tx->call, r, 0, true);
  PQclear(r);
  if (!h) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  *resp = &h->base;
  return CORE_OK;
}

static int exec_register(core_op *op) {
  const Novacron__V1__RegisterHostRequest *req = (const void *)op->req;
  host_apply rm = {.host_id = req->host_id, .remove = true};
  if (core_op_progress(op, 10, "connecting"))
    return core_op_finish(op, CORE_CANCELLED, "cancelled", apply_host, &rm);
  hv_host_info info;
  char err[512];
  int code = hv_host_open(op->c->hv, req->host_id, req->host->uri, &info, err, sizeof(err));
  if (code) {
    hv_host_close(op->c->hv, req->host_id);
    char m[640];
    snprintf(m, sizeof(m), "cannot connect to %s: %s", req->host->uri, err);
    /* nothing half-created: the reserved row goes with the failure */
    return core_op_finish(op, code == HV_INVALID_ARGUMENT ? CORE_INVALID_ARGUMENT : code, m,
                          apply_host, &rm);
  }
  host_apply a = {.host_id = req->host_id, .info = &info, .state = HS(READY), .message = ""};
  int rc = core_op_finish(op, CORE_OK, NULL, apply_host, &a);
  core_reconcile_host(op->c, req->host_id, false);
  return rc;
}

/* ================= Get / List / Update ================= */

typedef struct get_arg {
  const char *host;
  bool admin;
  Novacron__V1__Host **out;
} get_arg;

static int get_tx(store_conn *conn, core_tx *tx) {
  get_arg *a = tx->arg;
  PGresult *r;
  int code = load_host(tx, conn, a->host, false, &r);
  if (code) return code;
  *a->out = core_host_from_row(tx->call, r, 0, a->admin);
  PQclear(r);
  return *a->out ? CORE_OK : core_fail(tx->call, CORE_INTERNAL, "out of memory");
}

CORE_COMPUTE_FN(get_host, GetHostRequest, GetHostResponse) {
  char host[64];
  if (!core_name1(req->name, "hosts/", host, sizeof(host)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "name: must be hosts/{host}");
  get_arg a = {.host = host, .admin = call->who && call->who->system_admin, .out = &resp->host};
  return core_run_ro(c->db, call, get_tx, &a);
}

static const lq_enum_value host_states[] = {{"STATE_PENDING", 1},   {"STATE_READY", 2},
                                            {"STATE_NOT_READY", 3}, {"STATE_UNREACHABLE", 4},
                                            {"STATE_DRAINING", 5},  {"STATE_DEREGISTERING", 6}};
static const lq_field host_fields[] = {
    LQ_NAME_FIELD("('hosts/' || h.host_id)"),
    LQ_ENUM_FIELD("state", "h.state", host_states),
    {.name = "cordoned", .column = "h.cordoned", .type = LQ_BOOL, .filterable = true},
    {.name = "hypervisor_type",
     .column = "h.hypervisor_type",
     .type = LQ_STRING,
     .filterable = true},
    {.name = "arch", .column = "h.arch", .type = LQ_STRING, .filterable = true},
    {.name = "create_time",
     .column = "h.created_at",
     .type = LQ_TIME,
     .filterable = true,
     .orderable = true},
    {.name = "free_memory_mib",
     .column = "h.free_memory_mib",
     .type = LQ_INT,
     .filterable = true,
     .orderable = true},
    {.name = "labels", .column = "h.labels", .type = LQ_LABELS, .filterable = true},
};
static const lq_spec host_spec = {
    host_fields, sizeof(host_fields) / sizeof(host_fields[0]), "name", "h.id", 50, 500};

static Novacron__V1__Host *host_row_admin(core_call *call, const PGresult *r, int i) {
  return core_host_from_row(call, r, i, true);
}
static Novacron__V1__Host *host_row_user(core_call *call, const PGresult *r, int i) {
  return core_host_from_row(call, r, i, false);
}
CORE_LIST_ROW(host_row_a, Novacron__V1__ListHostsResponse, hosts, host_row_admin)
CORE_LIST_ROW(host_row_u, Novacron__V1__ListHostsResponse, hosts, host_row_user)

CORE_COMPUTE_FN(list_hosts, ListHostsRequest, ListHostsResponse) {
  core_list_req l = {.spec = &host_spec,
                     .select = "SELECT " HOST_COLS ", count(*) OVER ()" HOST_FROM " WHERE true",
                     .nfixed = 0,
                     CORE_LIST_PAGE(req, resp),
                     .fingerprint = "hosts",
                     .ncols = 23,
                     .row = call->who && call->who->system_admin ? host_row_a : host_row_u,
                     .total_size = &resp->total_size};
  return core_run_ro(c->db, call, core_list_tx, &l);
}

typedef struct update_arg {
  const Novacron__V1__UpdateHostRequest *req;
  ProtobufCMessage *resp;
  const char *host, *labels;
  Novacron__V1__Host **out;
} update_arg;

static int update_tx(store_conn *conn, core_tx *tx) {
  update_arg *a = tx->arg;
  bool found;
  int code = core_idem_replay(tx, conn, a->req->request_id, &a->req->base, a->resp, &found);
  if (code || found) return code;
  PGresult *r;
  if ((code = load_host(tx, conn, a->host, true, &r))) return code;
  int64_t version = core_i64(r, 0, 4);
  PQclear(r);
  if ((code = core_check_etag(tx->call, a->req->host->etag, version, "the host"))) return code;
  const Google__Protobuf__FieldMask *m = a->req->update_mask;
  const Novacron__V1__Host *in = a->req->host;
  const char *p[] = {a->host,
                     core_mask_has(m, "description") ? "t" : "f",
                     in->description ? in->description : "",
                     core_mask_has(m, "labels") ? "t" : "f",
                     a->labels,
                     core_mask_has(m, "cordoned") ? "t" : "f",
                     in->cordoned ? "t" : "f"};
  if ((code = core_q(tx, conn, "host_update",
                     "UPDATE hosts SET description = CASE WHEN $2::bool THEN $3 ELSE description "
                     "END, labels = CASE WHEN $4::bool THEN $5::jsonb ELSE labels END, cordoned = "
                     "CASE WHEN $6::bool THEN $7::bool ELSE cordoned END, version = version + 1, "
                     "updated_at = now() WHERE host_id = $1",
                     7, p, &r)))
    return code;
  PQclear(r);
  if ((code = load_host(tx, conn, a->host, false, &r))) return code;
  *a->out = core_host_from_row(tx->call, r, 0, true);
  PQclear(r);
  if (!*a->out) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  if ((code = core_emit(tx, conn, NULL, NOVACRON__V1__EVENT__TYPE__TYPE_HOST_UPDATED,
                        (*a->out)->name, "", "updated", &(*a->out)->base)))
    return code;
  return core_idem_store(tx, conn, a->req->request_id, &a->req->base, a->resp);
}

CORE_COMPUTE_FN(update_host, UpdateHostRequest, UpdateHostResponse) {
  int code = core_check_request_id(call, req->request_id);
  if (code) return code;
  if (!req->host) return core_fail(call, CORE_INVALID_ARGUMENT, "host: required");
  char host[64];
  if (!core_name1(req->host->name, "hosts/", host, sizeof(host)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "host.name: must be hosts/{host}");
  const Google__Protobuf__FieldMask *m = req->update_mask;
  if (!m || m->n_paths == 0)
    return core_fail(call, CORE_INVALID_ARGUMENT, "update_mask: list the fields to change");
  for (size_t i = 0; i < m->n_paths; i++)
    if (strcmp(m->paths[i], "description") && strcmp(m->paths[i], "labels") &&
        strcmp(m->paths[i], "cordoned"))
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "update_mask: \"%.64s\" cannot be changed (allowed: description, labels, "
                       "cordoned)",
                       m->paths[i]);
  if ((code = core_check_text(call, "host.description", req->host->description, 1024))) return code;
  char *labels = NULL;
  if ((code = core_labels_json(call, req->host->labels, req->host->n_labels, &labels))) return code;
  update_arg a = {
      .req = req, .resp = &resp->base, .host = host, .labels = labels, .out = &resp->host};
  code = core_run_tx(c->db, call, update_tx, &a);
  free(labels);
  if (code == CORE_OK) core_events_kick(c->ev);
  return code;
}

/* ================= Drain / Deregister ================= */

typedef struct host_verb_arg {
  core_compute *c;
  const char *verb, *host, *rid, *etag;
  const ProtobufCMessage *req;
  ProtobufCMessage *resp;
  Novacron__V1__Operation **out;
  bool force, drain;
} host_verb_arg;

static int host_verb_tx(store_conn *conn, core_tx *tx) {
  host_verb_arg *a = tx->arg;
  bool found;
  int code = core_idem_replay(tx, conn, a->rid, a->req, a->resp, &found);
  if (code || found) return code;
  PGresult *r;
  if ((code = load_host(tx, conn, a->host, true, &r))) return code;
  char uid[40];
  snprintf(uid, sizeof(uid), "%s", PQgetvalue(r, 0, 0));
  int64_t version = core_i64(r, 0, 4);
  int state = (int)core_i64(r, 0, 7);
  int nvms = (int)core_i64(r, 0, 21);
  PQclear(r);
  if (a->etag && (code = core_check_etag(tx->call, a->etag, version, "the host"))) return code;
  char busy[40], bverb[96];
  if ((code = core_op_active(tx, conn, uid, busy, bverb))) return code;
  char hname[96];
  snprintf(hname, sizeof(hname), "hosts/%s", a->host);
  if (busy[0]) return core_op_busy(tx->call, hname, busy, bverb, "");
  if (state == HS(PENDING) || state == HS(DEREGISTERING) ||
      (a->drain && state != HS(READY) && state != HS(NOT_READY)))
    return core_fail(tx->call, CORE_FAILED_PRECONDITION, "host %s is %s%s", hname,
                     host_state_names[state],
                     a->drain ? "; DrainHost needs STATE_READY or STATE_NOT_READY" : "");
  if (!a->drain && nvms > 0 && !a->force)
    return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                     "host %s still has %d NovaCron VM%s; move or delete them, drain the host, or "
                     "deregister with force",
                     hname, nvms, nvms == 1 ? "" : "s");
  if (!a->drain) {
    /* pools and networks hold data and addresses on the host: never
     * forgotten silently, even with force */
    const char *q[] = {uid};
    if ((code = core_q(tx, conn, "host_storage_network",
                       "SELECT (SELECT count(*) FROM pools WHERE host = $1::uuid), (SELECT "
                       "count(*) FROM networks WHERE host = $1::uuid)",
                       1, q, &r)))
      return code;
    int64_t npools = core_i64(r, 0, 0), nnets = core_i64(r, 0, 1);
    PQclear(r);
    if (npools || nnets)
      return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                       "host %s still has %" PRId64 " storage pool%s and %" PRId64
                       " network%s; delete them first",
                       hname, npools, npools == 1 ? "" : "s", nnets, nnets == 1 ? "" : "s");
  }
  if (a->drain) {
    /* the destinations must be usable now (they are checked again per VM) */
    const Novacron__V1__DrainHostRequest *dr = (const Novacron__V1__DrainHostRequest *)a->req;
    size_t ntargets =
        dr->mode == NOVACRON__V1__DRAIN_HOST_REQUEST__MODE__MODE_STOP ? 0 : dr->n_target_hosts;
    for (size_t i = 0; i < ntargets; i++) { /* (ignored for MODE_STOP) */
      char t[64];
      core_name1(dr->target_hosts[i], "hosts/", t, sizeof(t));
      const char *q[] = {t};
      PGresult *tr;
      if ((code = core_q(tx, conn, "host_sched",
                         "SELECT state, cordoned FROM hosts WHERE host_id = $1", 1, q, &tr)))
        return code;
      bool ok = PQntuples(tr) && core_i64(tr, 0, 0) == HS(READY) && !core_bool(tr, 0, 1);
      bool exists = PQntuples(tr) > 0;
      PQclear(tr);
      if (!exists)
        return core_fail(tx->call, CORE_NOT_FOUND, "target_hosts[%zu]: host %s not found", i,
                         dr->target_hosts[i]);
      if (!ok)
        return core_fail(tx->call, CORE_FAILED_PRECONDITION,
                         "target_hosts[%zu]: %s must be READY and not cordoned", i,
                         dr->target_hosts[i]);
    }
    const char *p[] = {a->host};
    if ((code =
             core_q(tx, conn, "host_cordon",
                    "UPDATE hosts SET cordoned = true, version = version + 1, updated_at = now() "
                    "WHERE host_id = $1",
                    1, p, &r)))
      return code;
    PQclear(r);
  }
  if ((code = core_host_set_state(tx, conn, NULL, a->host,
                                  a->drain ? HS(DRAINING) : HS(DEREGISTERING), "")))
    return code;
  char verb[64];
  snprintf(verb, sizeof(verb), "HostService.%s", a->verb);
  core_op_new n = {.verb = verb,
                   .target = hname,
                   .target_uid = uid,
                   .project_id = "",
                   .req = a->req,
                   .request_id = a->rid,
                   .status_message = a->drain ? "queued: empty the host" : "queued: deregister"};
  if ((code = core_op_enqueue(tx, conn, &n, a->out))) return code;
  return core_idem_store(tx, conn, a->rid, a->req, a->resp);
}

static int run_host_verb(core_compute *c, core_call *call, host_verb_arg *a, const char *name) {
  int code = core_check_request_id(call, a->rid);
  if (code) return code;
  char host[64];
  if (!core_name1(name, "hosts/", host, sizeof(host)))
    return core_fail(call, CORE_INVALID_ARGUMENT, "name: must be hosts/{host}");
  a->c = c;
  a->host = host;
  code = core_run_tx(c->db, call, host_verb_tx, a);
  if (code == CORE_OK) {
    core_events_kick(c->ev);
    core_compute_kick(c);
  }
  return code;
}

CORE_COMPUTE_FN(drain_host, DrainHostRequest, DrainHostResponse) {
  if ((int)req->mode < 0 || req->mode > NOVACRON__V1__DRAIN_HOST_REQUEST__MODE__MODE_STOP)
    return core_fail(call, CORE_INVALID_ARGUMENT, "mode: unknown value %d", (int)req->mode);
  for (size_t i = 0; i < req->n_target_hosts; i++) {
    char h[64];
    if (!core_name1(req->target_hosts[i], "hosts/", h, sizeof(h)))
      return core_fail(call, CORE_INVALID_ARGUMENT, "target_hosts[%zu]: must be hosts/{host}", i);
    if (strcmp(req->target_hosts[i], req->name) == 0)
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "target_hosts[%zu]: cannot be the drained host itself", i);
  }
  if (req->stop_timeout && (req->stop_timeout->seconds < 1 || req->stop_timeout->seconds > 3600))
    return core_fail(call, CORE_INVALID_ARGUMENT, "stop_timeout: must be 1 s to 1 h");
  host_verb_arg a = {.verb = "DrainHost",
                     .rid = req->request_id,
                     .req = &req->base,
                     .resp = &resp->base,
                     .out = &resp->operation,
                     .drain = true};
  return run_host_verb(c, call, &a, req->name);
}

CORE_COMPUTE_FN(deregister_host, DeregisterHostRequest, DeregisterHostResponse) {
  host_verb_arg a = {.verb = "DeregisterHost",
                     .rid = req->request_id,
                     .etag = req->etag,
                     .req = &req->base,
                     .resp = &resp->base,
                     .out = &resp->operation,
                     .force = req->force};
  return run_host_verb(c, call, &a, req->name);
}

typedef struct host_vms_arg {
  const char *host;
  char (*uids)[40];
  int *states;
  char (*names)[160];
  bool *devices; /* uses volumes or networks of the host (cannot move) */
  int n, cap;
} host_vms_arg;

static int host_vms_tx(store_conn *conn, core_tx *tx) {
  host_vms_arg *a = tx->arg;
  const char *p[] = {a->host};
  PGresult *r;
  int code = core_q(tx, conn, "host_vms",
                    "SELECT v.id, v.state, 'projects/' || p.project_id || '/vms/' || v.vm_id, "
                    "octet_length(v.disks) > 0 OR octet_length(v.nics) > 0 OR v.user_data <> '' "
                    "FROM "
                    "vms v JOIN projects p ON p.id = v.project JOIN hosts h ON h.id = v.host WHERE "
                    "h.host_id = $1 ORDER BY v.created_at",
                    1, p, &r);
  if (code) return code;
  int n = PQntuples(r);
  a->uids = calloc((size_t)n + 1, sizeof(*a->uids));
  a->states = calloc((size_t)n + 1, sizeof(*a->states));
  a->names = calloc((size_t)n + 1, sizeof(*a->names));
  a->devices = calloc((size_t)n + 1, sizeof(*a->devices));
  if (!a->uids || !a->states || !a->names || !a->devices) {
    PQclear(r);
    return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  }
  for (int i = 0; i < n; i++) {
    snprintf(a->uids[i], 40, "%s", PQgetvalue(r, i, 0));
    a->states[i] = (int)core_i64(r, i, 1);
    snprintf(a->names[i], 160, "%s", PQgetvalue(r, i, 2));
    a->devices[i] = core_bool(r, i, 3);
  }
  a->n = n;
  PQclear(r);
  return CORE_OK;
}

typedef struct vm_after_apply {
  const char *uid;
  const char *host_uid;
  int state;
} vm_after_apply;

static int vm_after_tx(store_conn *conn, core_tx *tx) {
  vm_after_apply *a = tx->arg;
  return core_vm_record_move(tx, conn, NULL, a->uid, a->host_uid, a->state, "", NULL);
}

/* The drain takes one VM at a time: none while an operation of its own
 * runs (*busy gets a message then); while the drain has it, the VM's own
 * verbs answer that the drain is in progress (core_op_active). */
typedef struct drain_take_arg {
  const char *uid, *op_id, *name;
  bool release;
  char busy[300];
} drain_take_arg;

static int drain_take_tx(store_conn *conn, core_tx *tx) {
  drain_take_arg *a = tx->arg;
  const char *k[] = {a->uid, a->op_id};
  PGresult *r;
  if (a->release) {
    int code = core_q(tx, conn, "drain_release",
                      "UPDATE vms SET migrating_op = NULL, migrating_to = NULL WHERE id = "
                      "$1::uuid AND migrating_op = $2::uuid",
                      2, k, &r);
    if (code == CORE_OK) PQclear(r);
    return code;
  }
  int code = core_q(tx, conn, "drain_lock_vm", "SELECT 1 FROM vms WHERE id = $1::uuid FOR UPDATE",
                    1, k, &r);
  if (code) return code;
  PQclear(r);
  char id[40], verb[96];
  if ((code = core_op_active(tx, conn, a->uid, id, verb))) return code;
  if (id[0] && strcmp(id, a->op_id) != 0) {
    const char *v = strrchr(verb, '.');
    snprintf(a->busy, sizeof(a->busy),
             "%s has an operation in progress (%s, %s); drain again when it has ended", a->name,
             v ? v + 1 : verb, id);
    return CORE_OK;
  }
  if ((code = core_q(tx, conn, "drain_take",
                     "UPDATE vms SET migrating_op = $2::uuid, migrating_to = NULL WHERE id = "
                     "$1::uuid",
                     2, k, &r)))
    return code;
  PQclear(r);
  return CORE_OK;
}

/* Stops a domain: an ACPI request, up to `timeout_s` for the guest, then
 * power off. A domain that is already off is left alone. */
static int stop_domain(core_compute *c, const char *host, const char *uid, int timeout_s, char *err,
                       size_t errlen) {
  hv_domain_spec spec;
  hv_domain_info info = {0};
  int code = hv_domain_get(c->hv, host, uid, &spec, &info, err, errlen);
  if (code || info.state == HV_DOM_SHUTOFF) return code;
  if (info.state == HV_DOM_RUNNING && hv_domain_shutdown(c->hv, host, uid, err, errlen) == HV_OK) {
    for (int k = 0; k < timeout_s * 20 && !core_compute_stopping(c); k++) {
      if (hv_domain_get(c->hv, host, uid, &spec, &info, err, errlen) != HV_OK) break;
      if (info.state == HV_DOM_SHUTOFF) return HV_OK;
      struct timespec ts = {0, 50 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  code = hv_domain_destroy(c->hv, host, uid, err, errlen);
  if (code && hv_domain_get(c->hv, host, uid, &spec, &info, err, errlen) == HV_OK &&
      info.state == HV_DOM_SHUTOFF)
    code = HV_OK;
  return code;
}

static int exec_drain(core_op *op) {
  const Novacron__V1__DrainHostRequest *req = (const void *)op->req;
  char host[64];
  core_name1(op->target, "hosts/", host, sizeof(host));
  host_vms_arg vms = {.host = host};
  int code = core_run_ro(op->c->db, &op->call, host_vms_tx, &vms);
  host_apply done = {.host_id = host, .state = HS(READY), .message = ""};
  if (code) {
    free(vms.uids);
    free(vms.states);
    free(vms.names);
    free(vms.devices);
    return core_op_finish(op, code, op->msg, apply_host, &done);
  }
  int failed = 0;
  char first_err[700] = "";
  for (int i = 0; i < vms.n; i++) {
    char status[256];
    snprintf(
        status, sizeof(status), "%s %s (%d of %d)",
        req->mode == NOVACRON__V1__DRAIN_HOST_REQUEST__MODE__MODE_STOP ? "stopping" : "migrating",
        vms.names[i], i + 1, vms.n);
    if (core_op_progress(op, 5 + 90 * i / (vms.n ? vms.n : 1), status)) {
      free(vms.uids);
      free(vms.states);
      free(vms.names);
      free(vms.devices);
      return core_op_finish(op, CORE_CANCELLED, "cancelled; the host stays cordoned", apply_host,
                            &done);
    }
    char err[512] = "";
    vm_after_apply after = {.uid = vms.uids[i]};
    bool stop = req->mode == NOVACRON__V1__DRAIN_HOST_REQUEST__MODE__MODE_STOP;
    bool cold = req->mode == NOVACRON__V1__DRAIN_HOST_REQUEST__MODE__MODE_COLD_MIGRATE;
    bool was_active = vms.states[i] == NOVACRON__V1__VM__STATE__STATE_RUNNING ||
                      vms.states[i] == NOVACRON__V1__VM__STATE__STATE_PAUSED;
    char dst[64] = "", dst_uid[40] = ""; /* after.host_uid points here */
    code = HV_OK;
    if (!stop && vms.devices[i]) {
      /* checked before anything is stopped: its volumes and networks stay */
      failed++;
      if (!first_err[0])
        snprintf(first_err, sizeof(first_err),
                 "%s uses volumes, networks or a config drive of hosts/%s and cannot move; "
                 "detach them or drain with MODE_STOP",
                 vms.names[i], host);
      continue;
    }
    drain_take_arg take = {.uid = vms.uids[i], .op_id = op->id, .name = vms.names[i]};
    char tm[256];
    core_call tc = {.alloc = &op->arena.alloc, .msg = tm, .msglen = sizeof(tm)};
    if (core_run_tx(op->c->db, &tc, drain_take_tx, &take) || take.busy[0]) {
      failed++;
      if (!first_err[0])
        snprintf(first_err, sizeof(first_err), "%s", take.busy[0] ? take.busy : tm);
      continue;
    }
    if (stop || cold) {
      int timeout_s = req->stop_timeout ? (int)req->stop_timeout->seconds : 60;
      code = stop_domain(op->c, host, vms.uids[i], timeout_s, err, sizeof(err));
      after.state = NOVACRON__V1__VM__STATE__STATE_STOPPED;
    }
    if (!stop && code == HV_OK) {
      const char *target = "";
      char tbuf[64] = "";
      if (req->n_target_hosts) {
        core_name1(req->target_hosts[i % req->n_target_hosts], "hosts/", tbuf, sizeof(tbuf));
        target = tbuf;
      }
      int fs = 0;
      code = core_vm_move(op, vms.uids[i], target, !cold, dst, dst_uid, &fs, err, sizeof(err));
      /* a cold migration starts the VM again on its new host */
      if (code == HV_OK && cold && was_active) {
        code = hv_domain_start(op->c->hv, dst, vms.uids[i], err, sizeof(err));
        fs = code == HV_OK ? NOVACRON__V1__VM__STATE__STATE_RUNNING
                           : NOVACRON__V1__VM__STATE__STATE_STOPPED;
        if (code) {
          /* moved but not restarted: record the move, report the failure */
          after.host_uid = dst_uid;
          after.state = fs;
          char m[256];
          core_call cc = {.alloc = &op->arena.alloc, .msg = m, .msglen = sizeof(m)};
          core_run_tx(op->c->db, &cc, vm_after_tx, &after);
        }
      }
      after.host_uid = dst_uid;
      after.state = fs;
    }
    char m[256];
    core_call cc = {.alloc = &op->arena.alloc, .msg = m, .msglen = sizeof(m)};
    if (code == HV_OK && core_run_tx(op->c->db, &cc, vm_after_tx, &after))
      nc_warnf("drain %s: cannot record %s: %s", host, vms.names[i], m);
    take.release = true; /* the VM is its own again */
    core_run_tx(op->c->db, &tc, drain_take_tx, &take);
    if (code) {
      failed++;
      if (!first_err[0]) snprintf(first_err, sizeof(first_err), "%s: %s", vms.names[i], err);
      continue;
    }
  }
  int n = vms.n;
  free(vms.uids);
  free(vms.states);
  free(vms.names);
  free(vms.devices);
  if (failed) {
    char m[800];
    snprintf(m, sizeof(m), "%d of %d VMs could not be moved; first: %s", failed, n, first_err);
    done.message = m;
    return core_op_finish(op, CORE_FAILED_PRECONDITION, m, apply_host, &done);
  }
  return core_op_finish(op, CORE_OK, NULL, apply_host, &done);
}

static int exec_deregister(core_op *op) {
  char host[64];
  core_name1(op->target, "hosts/", host, sizeof(host));
  core_op_progress(op, 50, "closing the connection");
  hv_host_close(op->c->hv, host);
  host_apply rm = {.host_id = host, .remove = true};
  return core_op_finish(op, CORE_OK, NULL, apply_host, &rm);
}

#define V(name, Req, fn) \
  { name, &novacron__v1__##Req##__descriptor, fn }
const core_verb core_host_verbs[] = {
    V("HostService.RegisterHost", register_host_request, exec_register),
    V("HostService.DrainHost", drain_host_request, exec_drain),
    V("HostService.DeregisterHost", deregister_host_request, exec_deregister),
};
const size_t core_host_nverbs = sizeof(core_host_verbs) / sizeof(core_host_verbs[0]);

/* ================= start and heartbeats ================= */

typedef struct hosts_arg {
  int n;
  char (*ids)[64];
  char (*uris)[1025];
  int *states;
} hosts_arg;

static int hosts_tx(store_conn *conn, core_tx *tx) {
  hosts_arg *a = tx->arg;
  PGresult *r;
  int code = core_q(tx, conn, "hosts_all",
                    "SELECT host_id, uri, state FROM hosts WHERE state <> 1 ORDER BY host_id", 0,
                    NULL, &r);
  if (code) return code;
  int n = PQntuples(r);
  a->ids = calloc((size_t)n + 1, sizeof(*a->ids));
  a->uris = calloc((size_t)n + 1, sizeof(*a->uris));
  a->states = calloc((size_t)n + 1, sizeof(*a->states));
  if (!a->ids || !a->uris || !a->states) {
    PQclear(r);
    return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  }
  for (int i = 0; i < n; i++) {
    snprintf(a->ids[i], 64, "%s", PQgetvalue(r, i, 0));
    snprintf(a->uris[i], 1025, "%s", PQgetvalue(r, i, 1));
    a->states[i] = (int)core_i64(r, i, 2);
  }
  a->n = n;
  PQclear(r);
  return CORE_OK;
}

static void hosts_free(hosts_arg *a) {
  free(a->ids);
  free(a->uris);
  free(a->states);
  memset(a, 0, sizeof(*a));
}

typedef struct beat_arg {
  const char *host;
  const hv_host_info *info;
  bool up;
  const char *message;
  int old_state;
  bool changed;
} beat_arg;

static int beat_tx(store_conn *conn, core_tx *tx) {
  beat_arg *a = tx->arg;
  PGresult *r;
  int code = load_host(tx, conn, a->host, true, &r);
  if (code) return code;
  a->old_state = (int)core_i64(r, 0, 7);
  char uid[40];
  snprintf(uid, sizeof(uid), "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  if (a->up) {
    if ((code = store_info(tx, conn, a->host, a->info))) return code;
    if (a->old_state == HS(UNREACHABLE) || a->old_state == HS(NOT_READY)) {
      a->changed = true;
      return core_host_set_state(tx, conn, NULL, a->host, HS(READY), "");
    }
    return CORE_OK;
  }
  if (a->old_state == HS(UNREACHABLE) || a->old_state == HS(DEREGISTERING) ||
      a->old_state == HS(PENDING))
    return CORE_OK;
  a->changed = true;
  /* the libvirt error names hosts, ports and users the API hides from
   * non-administrators: it goes to the log, the state says only this */
  if ((code = core_host_set_state(tx, conn, NULL, a->host, HS(UNREACHABLE),
                                  "the host does not answer (see the server log)")))
    return code;
  /* its VMs' real state is no longer known (VMs with an operation in
   * progress keep theirs: the operation will report) */
  const char *p[] = {uid};
  if ((code = core_q(tx, conn, "host_vms_unknown",
                     "SELECT v.id FROM vms v WHERE v.host = $1::uuid AND v.state <> 9 AND "
                     "NOT " VM_BUSY_SQL("v"),
                     1, p, &r)))
    return code;
  for (int i = 0; i < PQntuples(r) && !code; i++)
    code =
        core_vm_set_state(tx, conn, NULL, PQgetvalue(r, i, 0),
                          NOVACRON__V1__VM__STATE__STATE_UNKNOWN, "the host is unreachable", NULL);
  PQclear(r);
  return code;
}

static void heartbeat_one(core_compute *c, const char *host, const char *uri) {
  hv_host_info info;
  char err[512];
  int code = hv_host_probe(c->hv, host, &info, err, sizeof(err));
  if (code == HV_NOT_FOUND) /* not opened yet (a start that found it down) */
    code = hv_host_open(c->hv, host, uri, &info, err, sizeof(err));
  beat_arg a = {.host = host, .info = &info, .up = code == HV_OK, .message = err};
  char msg[256];
  core_arena arena;
  core_arena_init(&arena);
  core_call call = {.alloc = &arena.alloc, .msg = msg, .msglen = sizeof(msg)};
  int rc = core_run_tx(c->db, &call, beat_tx, &a);
  core_arena_free(&arena);
  if (rc) return;
  if (a.up) {
    core_storage_refresh(c, host);
    core_networks_refresh(c, host);
  }
  if (a.changed) {
    core_events_kick(c->ev);
    if (a.up) {
      nc_infof("hosts/%s is reachable again", host);
      core_reconcile_host(c, host, false);
    } else {
      nc_warnf("hosts/%s is unreachable: %s", host, err);
    }
  }
}

void core_hosts_heartbeat(core_compute *c) {
  hosts_arg a = {0};
  char msg[256];
  core_arena arena;
  core_arena_init(&arena);
  core_call call = {.alloc = &arena.alloc, .msg = msg, .msglen = sizeof(msg)};
  int code = core_run_ro(c->db, &call, hosts_tx, &a);
  core_arena_free(&arena);
  if (code) return;
  for (int i = 0; i < a.n; i++)
    if (a.states[i] != HS(DEREGISTERING)) heartbeat_one(c, a.ids[i], a.uris[i]);
  hosts_free(&a);
}

typedef struct default_arg {
  const char *uri;
  bool created;
} default_arg;

static int default_tx(store_conn *conn, core_tx *tx) {
  default_arg *a = tx->arg;
  PGresult *r;
  /* one replica registers it, even when several start together */
  int code =
      core_q(tx, conn, "host_default_lock", "SELECT pg_advisory_xact_lock(7468001)", 0, NULL, &r);
  if (code) return code;
  PQclear(r);
  const char *p[] = {a->uri};
  if ((code = core_q(tx, conn, "host_default",
                     "INSERT INTO hosts (host_id, uri, description, state) SELECT 'default', $1, "
                     "'the embedded libvirt hypervisor', 2 WHERE NOT EXISTS (SELECT 1 FROM hosts "
                     "WHERE host_id = 'default' OR uri = $1) AND NOT EXISTS (SELECT 1 FROM "
                     "operations WHERE verb = 'novacron.v1.HostService.DeregisterHost' AND target "
                     "= 'hosts/default') "
                     "RETURNING id",
                     1, p, &r)))
    return code;
  a->created = PQntuples(r) > 0;
  PQclear(r);
  if (!a->created) return CORE_OK;
  if ((code = load_host(tx, conn, "default", false, &r))) return code;
  Novacron__V1__Host *h = core_host_from_row(tx->call, r, 0, true);
  PQclear(r);
  if (!h) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  return core_emit(tx, conn, NULL, NOVACRON__V1__EVENT__TYPE__TYPE_HOST_REGISTERED, h->name, "",
                   "registered at first start", &h->base);
}

int core_hosts_start(core_compute *c, char *err, size_t errlen) {
  char msg[256];
  core_arena arena;
  core_arena_init(&arena);
  core_call call = {.alloc = &arena.alloc, .msg = msg, .msglen = sizeof(msg)};
  int code = CORE_OK;
  if (c->cfg.default_host_uri && *c->cfg.default_host_uri) {
    default_arg d = {.uri = c->cfg.default_host_uri};
    code = core_run_tx(c->db, &call, default_tx, &d);
    if (code) {
      snprintf(err, errlen, "registering the default host: %s", msg);
      core_arena_free(&arena);
      return -1;
    }
    if (d.created) nc_infof("registered hosts/default at %s", c->cfg.default_host_uri);
  }
  hosts_arg a = {0};
  code = core_run_ro(c->db, &call, hosts_tx, &a);
  core_arena_free(&arena);
  if (code) {
    snprintf(err, errlen, "reading the hosts: %s", msg);
    return -1;
  }
  for (int i = 0; i < a.n; i++) {
    if (a.states[i] == HS(DEREGISTERING)) continue;
    hv_host_info info;
    char e[512];
    int hc = hv_host_open(c->hv, a.ids[i], a.uris[i], &info, e, sizeof(e));
    if (hc) nc_warnf("hosts/%s: cannot connect at start: %s", a.ids[i], e);
    heartbeat_one(c, a.ids[i], a.uris[i]);
    if (hc == HV_OK) core_reconcile_host(c, a.ids[i], hv_uri_is_ephemeral(a.uris[i]));
  }
  hosts_free(&a);
  return 0;
}

void core_reconcile_all(core_compute *c) {
  hosts_arg a = {0};
  char msg[256];
  core_arena arena;
  core_arena_init(&arena);
  core_call call = {.alloc = &arena.alloc, .msg = msg, .msglen = sizeof(msg)};
  int code = core_run_ro(c->db, &call, hosts_tx, &a);
  core_arena_free(&arena);
  if (code) return;
  for (int i = 0; i < a.n; i++)
    if (a.states[i] == HS(READY) || a.states[i] == HS(DRAINING))
      core_reconcile_host(c, a.ids[i], false);
  hosts_free(&a);
}
