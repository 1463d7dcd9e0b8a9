/*
 * ops.c - the operations engine and OperationsService.
 *
 * An operation is a row of `operations` written in the same transaction
 * that validated the request and moved its resource into a transitional
 * state. Workers claim the oldest claimable row with FOR UPDATE SKIP
 * LOCKED: PENDING rows, RUNNING rows whose lease ran out (their replica
 * died) and RUNNING rows this replica claimed before it restarted. The
 * claim is committed at once, so hypervisor work never runs inside a
 * transaction; the worker renews the lease with every progress report and
 * ends the row, the resource changes and the events in one transaction.
 * Executors converge on the requested outcome from whatever state they
 * find, so running an interrupted operation again finishes it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/compute_int.h"
#include "google/protobuf/any.pb-c.h"
#include "util/log.h"

/* ================= arena ================= */

typedef struct arena_block {
  struct arena_block *next;
  max_align_t data[];
} arena_block;

static void *arena_alloc(void *ud, size_t n) {
  core_arena *a = ud;
  arena_block *b = calloc(1, sizeof(*b) + n);
  if (!b) return NULL;
  b->next = a->blocks;
  a->blocks = b;
  return b->data;
}

static void arena_nofree(void *ud, void *p) {
  (void)ud;
  (void)p;
}

void core_arena_init(core_arena *a) {
  a->blocks = NULL;
  a->alloc.alloc = arena_alloc;
  a->alloc.free = arena_nofree;
  a->alloc.allocator_data = a;
}

void core_arena_free(core_arena *a) {
  arena_block *b = a->blocks;
  while (b) {
    arena_block *n = b->next;
    free(b);
    b = n;
  }
  a->blocks = NULL;
}

/* ================= packing ================= */

Google__Protobuf__Any *core_any_pack(core_call *call, const ProtobufCMessage *msg) {
  Google__Protobuf__Any *any = core_alloc(call, sizeof(*any));
  if (!any) return NULL;
  google__protobuf__any__init(any);
  char url[160];
  snprintf(url, sizeof(url), "type.googleapis.com/%s", msg->descriptor->name);
  any->type_url = core_strdup(call, url);
  size_t n = protobuf_c_message_get_packed_size(msg);
  any->value.data = core_alloc(call, n ? n : 1);
  if (!any->value.data) return NULL;
  any->value.len = protobuf_c_message_pack(msg, any->value.data);
  return any;
}

char *core_pack_bytea(const ProtobufCMessage *msg) {
  size_t n = msg ? protobuf_c_message_get_packed_size(msg) : 0;
  unsigned char *buf = malloc(n ? n : 1);
  char *out = malloc(2 * n + 3);
  if (!buf || !out) {
    free(buf);
    free(out);
    return NULL;
  }
  if (n) protobuf_c_message_pack(msg, buf);
  out[0] = '\\';
  out[1] = 'x';
  core_hex(buf, n, out + 2);
  free(buf);
  return out;
}

ProtobufCMessage *core_unpack_bytea(core_call *call, const ProtobufCMessageDescriptor *d,
                                    const char *text) {
  if (!text) return NULL;
  size_t n = 0;
  unsigned char *raw = PQunescapeBytea((const unsigned char *)text, &n);
  if (!raw) return NULL;
  ProtobufCMessage *m = protobuf_c_message_unpack(d, call->alloc, n, raw);
  PQfreemem(raw);
  return m;
}

/* ================= rows ================= */

#define OP_COLS \
  "o.id, coalesce(p.project_id, ''), o.verb, o.target, o.state, o.progress, "              \
  "o.status_message, o.cancel_requested, o.principal, o.request_id, " CORE_TS(             \
      "o.created_at") ", " CORE_TS("o.started_at") ", " CORE_TS("o.ended_at")              \
                      ", o.response_type, o.response, o.error_code, o.error_message, o.attempts"
#define OP_FROM " FROM operations o LEFT JOIN projects p ON p.id = o.project"

static Novacron__V1__Operation *op_from_row(core_call *call, const PGresult *r, int i) {
  Novacron__V1__Operation *o = core_alloc(call, sizeof(*o));
  if (!o) return NULL;
  novacron__v1__operation__init(o);
  char name[192];
  const char *project = PQgetvalue(r, i, 1);
  if (*project)
    snprintf(name, sizeof(name), "projects/%s/operations/%s", project, PQgetvalue(r, i, 0));
  else
    snprintf(name, sizeof(name), "operations/%s", PQgetvalue(r, i, 0));
  o->name = core_strdup(call, name);
  o->verb = core_strdup(call, PQgetvalue(r, i, 2));
  o->target = core_strdup(call, PQgetvalue(r, i, 3));
  o->state = (Novacron__V1__Operation__State)core_i64(r, i, 4);
  o->done = o->state >= NOVACRON__V1__OPERATION__STATE__STATE_SUCCEEDED;
  o->progress_percent = (int32_t)core_i64(r, i, 5);
  o->status_message = core_strdup(call, PQgetvalue(r, i, 6));
  o->cancel_requested = core_bool(r, i, 7);
  o->principal = core_strdup(call, PQgetvalue(r, i, 8));
  o->request_id = core_strdup(call, PQgetvalue(r, i, 9));
  o->create_time = core_ts(call, r, i, 10);
  o->start_time = core_ts(call, r, i, 11);
  o->end_time = core_ts(call, r, i, 12);
  if (core_val(r, i, 14) && o->state == NOVACRON__V1__OPERATION__STATE__STATE_SUCCEEDED) {
    Google__Protobuf__Any *any = core_alloc(call, sizeof(*any));
    size_t n = 0;
    unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 14), &n);
    if (any && raw) {
      google__protobuf__any__init(any);
      char url[160];
      snprintf(url, sizeof(url), "type.googleapis.com/%s", PQgetvalue(r, i, 13));
      any->type_url = core_strdup(call, url);
      any->value.data = core_alloc(call, n ? n : 1);
      if (any->value.data) {
        memcpy(any->value.data, raw, n);
        any->value.len = n;
        o->response = any;
        o->result_case = NOVACRON__V1__OPERATION__RESULT_RESPONSE;
      }
    }
    if (raw) PQfreemem(raw);
  } else if (core_val(r, i, 15)) {
    Novacron__V1__Status *st = core_alloc(call, sizeof(*st));
    if (st) {
      novacron__v1__status__init(st);
      st->code = (int32_t)core_i64(r, i, 15);
      st->message = core_strdup(call, core_val(r, i, 16) ? PQgetvalue(r, i, 16) : "");
      o->error = st;
      o->result_case = NOVACRON__V1__OPERATION__RESULT_ERROR;
    }
  }
  return o;
}

static int op_event(core_tx *tx, store_conn *conn, const Novacron__V1__Operation *o,
                    const char *project, int type, const char *message) {
  Novacron__V1__Event e = NOVACRON__V1__EVENT__INIT;
  char proj[80] = "";
  if (project && *project) snprintf(proj, sizeof(proj), "projects/%s", project);
  e.type = (Novacron__V1__Event__Type)type;
  e.resource = o->name;
  e.resource_type = "novacron.v1.Operation";
  e.project = proj;
  e.principal = o->principal;
  e.source_operation = o->name;
  e.message = (char *)(message ? message : "");
  e.payload_case = NOVACRON__V1__EVENT__PAYLOAD_OPERATION;
  e.operation = (Novacron__V1__Operation *)o;
  return core_event_append(tx, conn, &e, o->target);
}

int core_emit(core_tx *tx, store_conn *conn, core_op *op, int type, const char *resource,
              const char *project, const char *message, const ProtobufCMessage *payload) {
  Novacron__V1__Event e = NOVACRON__V1__EVENT__INIT;
  char proj[80] = "", opname[192] = "";
  if (project && *project) snprintf(proj, sizeof(proj), "projects/%s", project);
  if (op) {
    if (*op->project)
      snprintf(opname, sizeof(opname), "projects/%s/operations/%s", op->project, op->id);
    else
      snprintf(opname, sizeof(opname), "operations/%s", op->id);
  }
  e.type = (Novacron__V1__Event__Type)type;
  e.resource = (char *)resource;
  e.project = proj;
  e.principal = op ? op->principal : (char *)core_who(tx->call);
  if (!op && !tx->call->who) e.principal = "";
  e.source_operation = opname;
  e.message = (char *)(message ? message : "");
  if (payload && payload->descriptor == &novacron__v1__vm__descriptor) {
    e.payload_case = NOVACRON__V1__EVENT__PAYLOAD_VM;
    e.vm = (Novacron__V1__Vm *)payload;
    e.resource_type = "novacron.v1.Vm";
  } else if (payload && payload->descriptor == &novacron__v1__vm_snapshot__descriptor) {
    e.payload_case = NOVACRON__V1__EVENT__PAYLOAD_VM_SNAPSHOT;
    e.vm_snapshot = (Novacron__V1__VmSnapshot *)payload;
    e.resource_type = "novacron.v1.VmSnapshot";
  } else if (payload && payload->descriptor == &novacron__v1__host__descriptor) {
    e.payload_case = NOVACRON__V1__EVENT__PAYLOAD_HOST;
    e.host = (Novacron__V1__Host *)payload;
    e.resource_type = "novacron.v1.Host";
  } else if (payload) { /* volumes, pools, networks: packed in an Any */
    e.payload_case = NOVACRON__V1__EVENT__PAYLOAD_OTHER_RESOURCE;
    e.other_resource = core_any_pack(tx->call, payload);
    if (!e.other_resource) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
    e.resource_type = (char *)payload->descriptor->name;
  } else {
    e.resource_type = "";
  }
  return core_event_append(tx, conn, &e, NULL);
}

void core_hv_failed(char *m, size_t mlen, int code, const char *what, const char *host,
                    const char *err) {
  if (code == HV_UNAVAILABLE) {
    nc_warnf("%s on hosts/%s: %s", what, host, err);
    snprintf(m, mlen, "%s on hosts/%s failed: the host cannot be reached", what, host);
  } else {
    snprintf(m, mlen, "%s on hosts/%s failed: %s", what, host, err);
  }
}

/* ================= journal ================= */

int core_op_enqueue(core_tx *tx, store_conn *conn, const core_op_new *n,
                    Novacron__V1__Operation **out) {
  char verb[128];
  snprintf(verb, sizeof(verb), VERB_PREFIX "%s", n->verb);
  char *req = core_pack_bytea(n->req);
  if (!req) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  const char *p[] = {n->project_uid,
                     verb,
                     n->target,
                     n->target_uid,
                     core_who(tx->call),
                     n->request_id ? n->request_id : "",
                     req,
                     n->status_message ? n->status_message : "queued"};
  PGresult *r;
  int code = core_q(tx, conn, "op_insert",
                    "WITH o AS (INSERT INTO operations (project, verb, target, target_uid, "
                    "principal, request_id, request, status_message) VALUES ($1::uuid, $2, $3, "
                    "$4::uuid, $5, $6, $7::bytea, $8) RETURNING *) SELECT " OP_COLS
                    " FROM o LEFT JOIN projects p ON p.id = o.project",
                    8, p, &r);
  free(req);
  if (code) return code;
  *out = op_from_row(tx->call, r, 0);
  PQclear(r);
  if (!*out) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  return op_event(tx, conn, *out, n->project_id, NOVACRON__V1__EVENT__TYPE__TYPE_OPERATION_CREATED,
                  "operation queued");
}

Novacron__V1__Operation *core_op_done_now(core_call *call, const char *verb, const char *target,
                                          const ProtobufCMessage *response) {
  Novacron__V1__Operation *o = core_alloc(call, sizeof(*o));
  if (!o) return NULL;
  novacron__v1__operation__init(o);
  char v[128];
  snprintf(v, sizeof(v), VERB_PREFIX "%s", verb);
  o->name = core_strdup(call, "");
  o->verb = core_strdup(call, v);
  o->target = core_strdup(call, target);
  o->state = NOVACRON__V1__OPERATION__STATE__STATE_SUCCEEDED;
  o->done = true;
  o->progress_percent = 100;
  o->status_message = core_strdup(call, "validated; nothing was created");
  o->principal = core_strdup(call, core_who(call));
  o->response = core_any_pack(call, response);
  o->result_case = NOVACRON__V1__OPERATION__RESULT_RESPONSE;
  return o;
}

bool core_compute_stopping(core_compute *c) {
  pthread_mutex_lock(&c->mu);
  bool stop = c->stopping;
  pthread_mutex_unlock(&c->mu);
  return stop;
}

void core_compute_kick(core_compute *c) {
  pthread_mutex_lock(&c->mu);
  c->work_gen++;
  pthread_cond_broadcast(&c->work);
  pthread_mutex_unlock(&c->mu);
}

int core_op_active(core_tx *tx, store_conn *conn, const char *target_uid, char id[40],
                   char verb[96]) {
  id[0] = 0;
  PGresult *r;
  const char *p[] = {target_uid};
  int code = core_q(tx, conn, "op_active",
                    "SELECT id, verb FROM operations WHERE (target_uid = $1::uuid OR id = "
                    "(SELECT migrating_op FROM vms WHERE id = $1::uuid)) AND state IN (1, 2) "
                    "ORDER BY seq LIMIT 1",
                    1, p, &r);
  if (code) return code;
  if (PQntuples(r)) {
    snprintf(id, 40, "%s", PQgetvalue(r, 0, 0));
    if (verb) snprintf(verb, 96, "%s", PQgetvalue(r, 0, 1));
  }
  PQclear(r);
  return CORE_OK;
}

int core_op_busy(core_call *call, const char *what, const char *op_id, const char *verb,
                 const char *project) {
  const char *short_verb = strrchr(verb, '.');
  if (strstr(verb, ".HostService.")) project = ""; /* a drain: system-level */
  return core_fail(call, CORE_FAILED_PRECONDITION,
                   "%s has an operation in progress (%s, %s%s%soperations/%s); wait for it or "
                   "cancel it",
                   what, short_verb ? short_verb + 1 : verb, *project ? "projects/" : "",
                   *project ? project : "", *project ? "/" : "", op_id);
}

/* ================= workers ================= */

static const core_verb *find_verb(const char *verb) {
  if (strncmp(verb, VERB_PREFIX, strlen(VERB_PREFIX)) != 0) return NULL;
  verb += strlen(VERB_PREFIX);
  for (size_t i = 0; i < core_vm_nverbs; i++)
    if (strcmp(core_vm_verbs[i].verb, verb) == 0) return &core_vm_verbs[i];
  for (size_t i = 0; i < core_host_nverbs; i++)
    if (strcmp(core_host_verbs[i].verb, verb) == 0) return &core_host_verbs[i];
  for (size_t i = 0; i < core_storage_nverbs; i++)
    if (strcmp(core_storage_verbs[i].verb, verb) == 0) return &core_storage_verbs[i];
  for (size_t i = 0; i < core_network_nverbs; i++)
    if (strcmp(core_network_verbs[i].verb, verb) == 0) return &core_network_verbs[i];
  return NULL;
}

typedef struct claim_arg {
  core_compute *c;
  core_op *op;
  bool got;
  char request[1]; /* unused */
  PGresult *row;
} claim_arg;

static int claim_tx(store_conn *conn, core_tx *tx) {
  claim_arg *a = tx->arg;
  /* a retried transaction starts over: nothing of an aborted try counts */
  if (a->row) PQclear(a->row);
  a->row = NULL;
  a->got = false;
  char lease[16];
  snprintf(lease, sizeof(lease), "%d", a->c->cfg.lease_s);
  const char *p[] = {a->c->replica, lease};
  PGresult *r;
  /* Work on one target runs in journal order: a row is claimable only
   * when no older unfinished row acts on the same target. */
  int code = core_q(
      tx, conn, "op_claim",
      "WITH c AS (SELECT o.id FROM operations o WHERE (o.state = 1 OR (o.state = 2 AND "
      "(o.lease_until < now() OR o.claimed_by = $1 AND o.lease_until IS NULL))) AND NOT EXISTS "
      "(SELECT 1 FROM operations x WHERE x.target_uid = o.target_uid AND x.state IN (1, 2) AND "
      "x.seq < o.seq) ORDER BY o.seq LIMIT 1 FOR UPDATE SKIP LOCKED) "
      "UPDATE operations o SET state = 2, claimed_by = $1, lease_until = now() + "
      "make_interval(secs => $2::int), started_at = coalesce(started_at, now()), attempts = "
      "attempts + 1 FROM c WHERE o.id = c.id RETURNING o.id, o.verb, o.target, "
      "coalesce(o.target_uid::text, ''), coalesce((SELECT project_id FROM projects WHERE id = "
      "o.project), ''), o.principal, o.request_id, o.attempts, o.request",
      2, p, &r);
  if (code) return code;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return CORE_OK;
  }
  core_op *op = a->op;
  snprintf(op->id, sizeof(op->id), "%s", PQgetvalue(r, 0, 0));
  snprintf(op->verb, sizeof(op->verb), "%s", PQgetvalue(r, 0, 1));
  snprintf(op->target, sizeof(op->target), "%s", PQgetvalue(r, 0, 2));
  snprintf(op->target_uid, sizeof(op->target_uid), "%s", PQgetvalue(r, 0, 3));
  snprintf(op->project, sizeof(op->project), "%s", PQgetvalue(r, 0, 4));
  snprintf(op->principal, sizeof(op->principal), "%s", PQgetvalue(r, 0, 5));
  snprintf(op->request_id, sizeof(op->request_id), "%s", PQgetvalue(r, 0, 6));
  op->attempts = (int)core_i64(r, 0, 7);
  a->row = r;
  a->got = true;
  /* the RUNNING transition is an event too */
  PGresult *o;
  const char *q[] = {op->id};
  code =
      core_q(tx, conn, "op_get_id", "SELECT " OP_COLS OP_FROM " WHERE o.id = $1::uuid", 1, q, &o);
  if (code) return code;
  Novacron__V1__Operation *m = op_from_row(tx->call, o, 0);
  PQclear(o);
  if (!m) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  return op_event(tx, conn, m, op->project, NOVACRON__V1__EVENT__TYPE__TYPE_OPERATION_PROGRESS,
                  op->attempts > 1 ? "resumed after an interruption" : "started");
}

/* Claims one operation; true when `op` was filled. */
static bool claim(core_compute *c, core_op *op) {
  claim_arg a = {.c = c, .op = op};
  char msg[256];
  core_call call = {.alloc = &op->arena.alloc, .msg = msg, .msglen = sizeof(msg)};
  int code = core_run_tx(c->db, &call, claim_tx, &a);
  if (code) {
    if (a.row) PQclear(a.row);
    if (code != CORE_UNAVAILABLE) nc_warnf("operations: claim failed: %s", msg);
    return false;
  }
  if (!a.got) return false;
  const core_verb *v = find_verb(op->verb);
  if (v) op->req = core_unpack_bytea(&op->call, v->req, PQgetvalue(a.row, 0, 8));
  PQclear(a.row);
  return true;
}

static void run_one(core_compute *c, core_op *op) {
  const core_verb *v = find_verb(op->verb);
  int code;
  if (!v || !op->req) {
    code = core_fail(&op->call, CORE_INTERNAL, "this server cannot run %s", op->verb);
  } else if (op->attempts > CORE_OP_MAX_ATTEMPTS) {
    /* interrupted or unrecordable this often: stop trying; the
     * reconciler brings the resource back to what libvirt reports */
    code = core_fail(&op->call, CORE_ABORTED, "gave up after %d interrupted attempts",
                     op->attempts - 1);
  } else {
    nc_infof("operation %s: %s %s (attempt %d)", op->id, op->verb, op->target, op->attempts);
    code = v->exec(op);
  }
  if (code > 0) {
    /* the executor returned without finishing: fail the operation */
    char m[512];
    snprintf(m, sizeof(m), "%s", op->msg[0] ? op->msg : "failed");
    if (core_op_finish(op, code, m, NULL, NULL))
      nc_warnf("operation %s: cannot record its failure: %s", op->id, op->msg);
  }
  (void)c;
}

void *core_ops_worker(void *arg) {
  core_compute *c = arg;
  for (;;) {
    pthread_mutex_lock(&c->mu);
    bool stop = c->stopping;
    uint64_t gen = c->work_gen;
    pthread_mutex_unlock(&c->mu);
    if (stop) break;
    core_op op;
    memset(&op, 0, sizeof(op));
    op.c = c;
    core_arena_init(&op.arena);
    op.call.alloc = &op.arena.alloc;
    op.call.msg = op.msg;
    op.call.msglen = sizeof(op.msg);
    bool got = claim(c, &op);
    if (got) run_one(c, &op);
    core_arena_free(&op.arena);
    if (got) continue;
    /* nothing claimable: sleep until kicked, or poll (other replicas,
     * leases running out) every second */
    pthread_mutex_lock(&c->mu);
    if (!c->stopping && c->work_gen == gen) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_sec += 1;
      pthread_cond_timedwait(&c->work, &c->mu, &ts);
    }
    pthread_mutex_unlock(&c->mu);
  }
  return NULL;
}

void core_ops_renew_leases(core_compute *c) {
  char lease[16];
  snprintf(lease, sizeof(lease), "%d", c->cfg.lease_s);
  const char *p[] = {c->replica, lease};
  store_conn *conn = NULL;
  char err[256];
  if (store_pool_acquire(c->db, 2000, &conn, err, sizeof(err)) != STORE_OK) return;
  PGresult *r = NULL;
  /* every claim this replica still runs: a long libvirt call (a migration,
   * a guest that takes its time to shut down) must not lose its claim */
  if (store_exec(conn, "op_renew_leases",
                 "UPDATE operations SET lease_until = now() + make_interval(secs => $2::int) "
                 "WHERE state = 2 AND claimed_by = $1 AND lease_until IS NOT NULL",
                 2, p, &r) == STORE_OK)
    PQclear(r);
  core_replica_beat(c, conn);
  store_pool_release(conn);
}

int core_ops_start(core_compute *c) {
  c->nworkers = c->cfg.workers > 0 ? c->cfg.workers : 4;
  c->workers = calloc((size_t)c->nworkers, sizeof(*c->workers));
  if (!c->workers) return -1;
  for (int i = 0; i < c->nworkers; i++)
    if (pthread_create(&c->workers[i], NULL, core_ops_worker, c) != 0) {
      c->nworkers = i;
      return -1;
    }
  return 0;
}

void core_ops_stop(core_compute *c) {
  pthread_mutex_lock(&c->mu);
  c->stopping = true;
  pthread_cond_broadcast(&c->work);
  pthread_cond_broadcast(&c->done);
  pthread_mutex_unlock(&c->mu);
  for (int i = 0; i < c->nworkers; i++)
    pthread_join(c->workers[i], NULL);
  free(c->workers);
  c->workers = NULL;
  c->nworkers = 0;
}

/* ================= progress and finishing ================= */

typedef struct progress_arg {
  core_op *op;
  int percent;
  const char *status;
  bool cancel;
} progress_arg;

static int progress_tx(store_conn *conn, core_tx *tx) {
  progress_arg *a = tx->arg;
  char pct[16], lease[16];
  snprintf(pct, sizeof(pct), "%d", a->percent);
  snprintf(lease, sizeof(lease), "%d", a->op->c->cfg.lease_s);
  char attempts[16];
  snprintf(attempts, sizeof(attempts), "%d", a->op->attempts);
  const char *p[] = {a->op->id,         pct,     a->status ? a->status : "", lease,
                     a->op->c->replica, attempts};
  PGresult *r;
  int code =
      core_q(tx, conn, "op_progress",
             "WITH o AS (UPDATE operations SET progress = greatest(progress, $2::int), "
             "status_message = CASE WHEN $3 = '' THEN status_message ELSE $3 END, "
             "lease_until = now() + make_interval(secs => $4::int) WHERE id = $1::uuid AND "
             "state = 2 AND claimed_by = $5 AND attempts = $6::int RETURNING *) SELECT " OP_COLS
             " FROM o LEFT JOIN projects p ON p.id = o.project",
             6, p, &r);
  if (code) return code;
  if (PQntuples(r) == 0) { /* the claim was taken over: stop as if cancelled */
    PQclear(r);
    a->cancel = true;
    return CORE_OK;
  }
  Novacron__V1__Operation *m = op_from_row(tx->call, r, 0);
  PQclear(r);
  if (!m) return CORE_OK;
  a->cancel = m->cancel_requested;
  if (!a->status || !*a->status) return CORE_OK;
  return op_event(tx, conn, m, a->op->project, NOVACRON__V1__EVENT__TYPE__TYPE_OPERATION_PROGRESS,
                  a->status);
}

bool core_op_progress(core_op *op, int percent, const char *status) {
  progress_arg a = {.op = op, .percent = percent, .status = status};
  char msg[256];
  core_call call = {.alloc = &op->arena.alloc, .msg = msg, .msglen = sizeof(msg)};
  if (core_run_tx(op->c->db, &call, progress_tx, &a) == CORE_OK) core_events_kick(op->c->ev);
  return a.cancel;
}

typedef struct finish_arg {
  core_op *op;
  int code;
  const char *message;
  core_op_apply_fn apply;
  void *arg;
  bool lost; /* another run holds the claim now */
} finish_arg;

static int finish_tx(store_conn *conn, core_tx *tx) {
  finish_arg *a = tx->arg;
  core_op *op = a->op;
  ProtobufCMessage *resp = NULL;
  int code = a->code;
  char message[512];
  snprintf(message, sizeof(message), "%s", a->message ? a->message : "");
  /* The operation row first (the same lock order as CancelOperation), and
   * only while this run still holds the claim: a run whose lease was taken
   * over by another must not record anything (attempts is the fence). */
  char attempts[16];
  snprintf(attempts, sizeof(attempts), "%d", op->attempts);
  const char *q[] = {op->id, op->c->replica, attempts};
  PGresult *r;
  int qc = core_q(tx, conn, "op_lock",
                  "SELECT cancel_requested FROM operations WHERE id = $1::uuid AND state = 2 AND "
                  "claimed_by = $2 AND attempts = $3::int FOR UPDATE",
                  3, q, &r);
  if (qc) return qc;
  if (PQntuples(r) == 0) {
    PQclear(r);
    a->lost = true;
    return core_fail(tx->call, CORE_ABORTED, "the claim was lost");
  }
  /* a cancellation that arrived while the step ran wins over failure */
  bool cancel = core_bool(r, 0, 0);
  PQclear(r);
  if (a->apply) {
    int ac = a->apply(conn, tx, op, &resp, a->arg);
    if (ac && tx->st != STORE_OK) return ac; /* database trouble: retry the whole finish */
    if (ac && code == CORE_OK) {
      code = ac;
      snprintf(message, sizeof(message), "%s", tx->call->msg);
    }
  }
  int state = code == CORE_OK ? NOVACRON__V1__OPERATION__STATE__STATE_SUCCEEDED
              : (code == CORE_CANCELLED || (cancel && code != CORE_OK))
                  ? NOVACRON__V1__OPERATION__STATE__STATE_CANCELLED
                  : NOVACRON__V1__OPERATION__STATE__STATE_FAILED;
  if (state == NOVACRON__V1__OPERATION__STATE__STATE_CANCELLED) {
    code = CORE_CANCELLED;
    if (!*message) snprintf(message, sizeof(message), "cancelled");
  }
  char st[8], ec[8];
  snprintf(st, sizeof(st), "%d", state);
  snprintf(ec, sizeof(ec), "%d", code);
  char *packed = resp && code == CORE_OK ? core_pack_bytea(resp) : NULL;
  const char *p[] = {op->id,
                     st,
                     code == CORE_OK ? NULL : ec,
                     code == CORE_OK ? NULL : message,
                     resp && code == CORE_OK ? resp->descriptor->name : "",
                     packed,
                     code == CORE_OK ? "done" : message};
  qc = core_q(tx, conn, "op_finish",
              "WITH o AS (UPDATE operations SET state = $2::smallint, error_code = $3::int, "
              "error_message = $4, response_type = $5, response = $6::bytea, progress = CASE WHEN "
              "$2::int = 3 THEN 100 ELSE progress END, status_message = $7, ended_at = now(), "
              "lease_until = NULL WHERE id = $1::uuid RETURNING *) SELECT " OP_COLS
              " FROM o LEFT JOIN projects p ON p.id = o.project",
              7, p, &r);
  free(packed);
  if (qc) return qc;
  Novacron__V1__Operation *m = op_from_row(tx->call, r, 0);
  PQclear(r);
  if (!m) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  return op_event(tx, conn, m, op->project, NOVACRON__V1__EVENT__TYPE__TYPE_OPERATION_DONE,
                  code == CORE_OK ? "succeeded" : message);
}

int core_op_finish(core_op *op, int code, const char *message, core_op_apply_fn apply, void *arg) {
  finish_arg a = {.op = op, .code = code, .message = message, .apply = apply, .arg = arg};
  char msg[512];
  core_call call = {.alloc = &op->arena.alloc, .msg = msg, .msglen = sizeof(msg)};
  int rc = core_run_tx(op->c->db, &call, finish_tx, &a);
  if (a.lost) {
    nc_warnf(
        "operation %s: its claim was taken over (lease ran out); this run's outcome is "
        "dropped",
        op->id);
    return 0;
  }
  if (rc) {
    /* The outcome could not be recorded (database down): the claim stays
     * and the lease runs out, so the operation runs again and converges. */
    nc_warnf("operation %s: cannot record its outcome (%s); it will be resumed", op->id, msg);
    return 0;
  }
  nc_infof("operation %s: %s%s%s", op->id, code ? "failed: " : "succeeded", code ? message : "",
           "");
  core_events_kick(op->c->ev);
  pthread_mutex_lock(&op->c->mu);
  op->c->done_gen++;
  pthread_cond_broadcast(&op->c->done);
  pthread_mutex_unlock(&op->c->mu);
  return 0;
}

/* ================= OperationsService ================= */

/* operations/{id} or projects/{p}/operations/{id}; the id is a UUID. */
static int parse_op_name(core_call *call, const char *name, char project[64], char id[40]) {
  project[0] = 0;
  const char *rest = name ? name : "";
  if (strncmp(rest, "projects/", 9) == 0) {
    const char *slash = strchr(rest + 9, '/');
    if (!slash || (size_t)(slash - rest - 9) >= 64) goto bad;
    snprintf(project, 64, "%.*s", (int)(slash - rest - 9), rest + 9);
    if (!core_id_valid(project)) goto bad;
    rest = slash + 1;
  }
  if (strncmp(rest, "operations/", 11) != 0) goto bad;
  rest += 11;
  if (strlen(rest) != 36 || strspn(rest, "0123456789abcdef-") != 36) goto bad;
  snprintf(id, 40, "%s", rest);
  return CORE_OK;
bad:
  return core_fail(call, CORE_INVALID_ARGUMENT,
                   "name: must be projects/{project}/operations/{operation} or "
                   "operations/{operation}");
}

typedef struct get_op_arg {
  const char *project, *id;
  Novacron__V1__Operation **out;
} get_op_arg;

static int get_op_tx(store_conn *conn, core_tx *tx) {
  get_op_arg *a = tx->arg;
  const char *p[] = {a->id, a->project};
  PGresult *r;
  int code =
      core_q(tx, conn, "op_get",
             "SELECT " OP_COLS OP_FROM " WHERE o.id = $1::uuid AND coalesce(p.project_id, '') = $2",
             2, p, &r);
  if (code) return code;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return core_fail(tx->call, CORE_NOT_FOUND, "operation %s not found", a->id);
  }
  *a->out = op_from_row(tx->call, r, 0);
  PQclear(r);
  return *a->out ? CORE_OK : core_fail(tx->call, CORE_INTERNAL, "out of memory");
}

static int get_op(core_compute *c, core_call *call, const char *name, Novacron__V1__Operation **out,
                  char project[64], char id[40]) {
  int code = parse_op_name(call, name, project, id);
  if (code) return code;
  get_op_arg a = {.project = project, .id = id, .out = out};
  return core_run_ro(c->db, call, get_op_tx, &a);
}

CORE_COMPUTE_FN(get_operation, GetOperationRequest, GetOperationResponse) {
  char project[64], id[40];
  return get_op(c, call, req->name, &resp->operation, project, id);
}

static const lq_enum_value op_states[] = {
    {"STATE_PENDING", 1}, {"STATE_RUNNING", 2},   {"STATE_SUCCEEDED", 3},
    {"STATE_FAILED", 4},  {"STATE_CANCELLED", 5},
};
static const lq_field op_fields[] = {
    LQ_ENUM_FIELD("state", "o.state", op_states),
    {.name = "verb", .column = "o.verb", .type = LQ_STRING, .filterable = true, .wildcard = true},
    {.name = "target",
     .column = "o.target",
     .type = LQ_STRING,
     .filterable = true,
     .wildcard = true},
    {.name = "done", .column = "(o.state >= 3)", .type = LQ_BOOL, .filterable = true},
    {.name = "create_time",
     .column = "o.created_at",
     .type = LQ_TIME,
     .filterable = true,
     .orderable = true},
};
static const lq_spec op_spec = {
    op_fields, sizeof(op_fields) / sizeof(op_fields[0]), "create_time desc", "o.id", 50, 500};

CORE_LIST_ROW(op_row, Novacron__V1__ListOperationsResponse, operations, op_from_row)

CORE_COMPUTE_FN(list_operations, ListOperationsRequest, ListOperationsResponse) {
  const char *parent = req->parent ? req->parent : "";
  char project[64] = "";
  bool all = strcmp(parent, "projects/-") == 0;
  if (all) {
    if (!call->who->system_admin)
      return core_fail(call, CORE_PERMISSION_DENIED,
                       "listing the operations of every project requires system administrator");
  } else if (!core_name1(parent, "projects/", project, sizeof(project))) {
    return core_fail(call, CORE_INVALID_ARGUMENT,
                     "parent: must be projects/{project} or "
                     "projects/-");
  }
  char fp[96];
  snprintf(fp, sizeof(fp), "ops|%s", parent);
  core_list_req l = {.spec = &op_spec,
                     .select = "SELECT " OP_COLS ", count(*) OVER ()" OP_FROM
                               " WHERE ($1::text IS NULL OR p.project_id = $1)",
                     .fixed = {all ? NULL : project},
                     .nfixed = 1,
                     CORE_LIST_PAGE(req, resp),
                     .fingerprint = fp,
                     .ncols = 18,
                     .row = op_row};
  int32_t total = 0;
  l.total_size = &total;
  return core_run_tx(c->db, call, core_list_tx, &l);
}

static int wait_loop(core_compute *c, core_call *call,
                     const Novacron__V1__WaitOperationRequest *req, int64_t limit_ms,
                     Novacron__V1__WaitOperationResponse *resp);

int core_wait_operation(core_compute *c, core_call *call,
                        const Novacron__V1__WaitOperationRequest *req, int64_t deadline_ms,
                        Novacron__V1__WaitOperationResponse *resp) {
  int64_t limit_ms = deadline_ms;
  if (req->timeout) {
    if (req->timeout->seconds < 0 || req->timeout->nanos < 0)
      return core_fail(call, CORE_INVALID_ARGUMENT, "timeout: must not be negative");
    int64_t t = req->timeout->seconds * 1000 + req->timeout->nanos / 1000000;
    if (t < limit_ms) limit_ms = t;
  }
  int64_t cap = (int64_t)(c->cfg.wait_max_s > 0 ? c->cfg.wait_max_s : 600) * 1000;
  if (limit_ms > cap) limit_ms = cap;
  /* answer a little before the caller's deadline so the reply arrives */
  if (limit_ms == deadline_ms && limit_ms > 200) limit_ms -= 100;
  /* Each waiting call holds a handler thread: beyond wait_slots long waits
   * at once, a call waits at most a second (callers loop on the state they
   * get back), so waiters cannot starve every other method. */
  pthread_mutex_lock(&c->mu);
  bool slot = c->waiting < (c->cfg.wait_slots > 0 ? c->cfg.wait_slots : 8);
  if (slot) c->waiting++;
  pthread_mutex_unlock(&c->mu);
  if (!slot && limit_ms > 1000) limit_ms = 1000;
  int code = wait_loop(c, call, req, limit_ms, resp);
  if (slot) {
    pthread_mutex_lock(&c->mu);
    c->waiting--;
    pthread_mutex_unlock(&c->mu);
  }
  return code;
}

static int wait_loop(core_compute *c, core_call *call,
                     const Novacron__V1__WaitOperationRequest *req, int64_t limit_ms,
                     Novacron__V1__WaitOperationResponse *resp) {
  struct timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  char project[64], id[40];
  for (;;) {
    pthread_mutex_lock(&c->mu);
    bool stop = c->stopping;
    uint64_t gen = c->done_gen; /* a completion after this wakes the wait below */
    pthread_mutex_unlock(&c->mu);
    int code = get_op(c, call, req->name, &resp->operation, project, id);
    if (code) return code;
    if (resp->operation->done || stop) return CORE_OK;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    int64_t left = limit_ms - elapsed;
    if (left <= 0) return CORE_OK;
    /* woken by any local completion; other replicas' are seen by polling */
    int64_t nap = left < 250 ? left : 250;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += nap / 1000;
    ts.tv_nsec += (nap % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&c->mu);
    if (!c->stopping && c->done_gen == gen) pthread_cond_timedwait(&c->done, &c->mu, &ts);
    pthread_mutex_unlock(&c->mu);
  }
}

typedef struct cancel_arg {
  const char *project, *id, *rid;
  const ProtobufCMessage *req;
  ProtobufCMessage *resp;
  Novacron__V1__Operation **out;
} cancel_arg;

static int cancel_tx(store_conn *conn, core_tx *tx) {
  cancel_arg *a = tx->arg;
  bool found;
  int code = core_idem_replay(tx, conn, a->rid, a->req, a->resp, &found);
  if (code || found) return code;
  const char *p[] = {a->id, a->project};
  PGresult *r;
  /* A PENDING operation ends at once; a RUNNING one is flagged and ends
   * when its step allows; a finished one keeps its result. */
  code = core_q(tx, conn, "op_cancel",
                "UPDATE operations o SET cancel_requested = CASE WHEN o.state IN (1, 2) THEN true "
                "ELSE o.cancel_requested END FROM (SELECT id FROM operations WHERE id = $1::uuid "
                "FOR UPDATE) l WHERE o.id = l.id AND coalesce((SELECT project_id FROM projects "
                "WHERE id = o.project), '') = $2 RETURNING o.state",
                2, p, &r);
  if (code) return code;
  if (PQntuples(r) == 0) {
    PQclear(r);
    return core_fail(tx->call, CORE_NOT_FOUND, "operation %s not found", a->id);
  }
  PQclear(r);
  get_op_arg g = {.project = a->project, .id = a->id, .out = a->out};
  tx->arg = &g;
  code = get_op_tx(conn, tx);
  tx->arg = a;
  if (code) return code;
  if ((*a->out)->state == NOVACRON__V1__OPERATION__STATE__STATE_PENDING) {
    /* not started: nothing to undo on a hypervisor, but the resource left
     * its transitional state; the worker that claims it sees the flag
     * first and ends it CANCELLED after restoring the resource */
  }
  code = op_event(tx, conn, *a->out, a->project, NOVACRON__V1__EVENT__TYPE__TYPE_OPERATION_PROGRESS,
                  "cancellation requested");
  if (code) return code;
  return core_idem_store(tx, conn, a->rid, a->req, a->resp);
}

CORE_COMPUTE_FN(cancel_operation, CancelOperationRequest, CancelOperationResponse) {
  int code = core_check_request_id(call, req->request_id);
  if (code) return code;
  char project[64], id[40];
  if ((code = parse_op_name(call, req->name, project, id))) return code;
  cancel_arg a = {.project = project,
                  .id = id,
                  .rid = req->request_id,
                  .req = &req->base,
                  .resp = &resp->base,
                  .out = &resp->operation};
  code = core_run_tx(c->db, call, cancel_tx, &a);
  if (code == CORE_OK) {
    core_events_kick(c->ev);
    core_compute_kick(c);
  }
  return code;
}
