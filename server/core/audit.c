/*
 * audit.c - the audit log writer and ListAuditEvents (core/audit.h).
 */
#include "core/audit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "util/log.h"
#include "util/timeutil.h"

#define BATCH 64

typedef struct rec {
  struct rec *next;
  long seq;
  char *f[7]; /* principal, project, method, resource, message, request_id, peer */
  int code;
} rec;

struct core_audit {
  store_pool *db;
  int limit;
  pthread_mutex_t mu;
  pthread_cond_t wake;    /* the writer: records queued or stopping */
  pthread_cond_t written; /* readers waiting for their records */
  rec *head, *tail;
  int len;
  long queued_seq, written_seq;
  long dropped;
  bool stop;
  pthread_t thread;
};

static void rec_free(rec *r) {
  for (int i = 0; i < 7; i++)
    free(r->f[i]);
  free(r);
}

typedef struct batch {
  rec *first;
  int n; /* counted under the lock: records queued later are not ours */
} batch;

static int write_batch(store_conn *conn, void *arg) {
  const batch *b = arg;
  rec *r = b->first;
  for (int i = 0; i < b->n; i++) {
    if (i) r = r->next; /* never read the last record's next: add() writes it */
    char code[16];
    snprintf(code, sizeof(code), "%d", r->code);
    const char *p[] = {r->f[0], r->f[1], r->f[2], r->f[3], code, r->f[4], r->f[5], r->f[6]};
    PGresult *res = NULL;
    store_status st = store_exec(conn, "audit_insert",
                                 "INSERT INTO audit_events (principal, project, method, resource, "
                                 "result_code, message, request_id, peer) "
                                 "VALUES ($1, $2, $3, $4, $5::int, $6, $7, $8)",
                                 8, p, &res);
    if (res) PQclear(res);
    if (st != STORE_OK) return st;
  }
  return STORE_OK;
}

static void *writer(void *arg) {
  core_audit *a = arg;
  pthread_mutex_lock(&a->mu);
  for (;;) {
    while (!a->head && !a->stop)
      pthread_cond_wait(&a->wake, &a->mu);
    if (!a->head && a->stop) break;
    batch b = {a->head, 1};
    long last = b.first->seq;
    for (rec *r = b.first; r->next && b.n < BATCH; r = r->next, b.n++)
      last = r->next->seq;
    bool stopping = a->stop;
    pthread_mutex_unlock(&a->mu);
    char err[256];
    store_status st = store_tx(a->db, write_batch, &b, 3, err, sizeof(err));
    pthread_mutex_lock(&a->mu);
    if (st == STORE_OK) {
      for (int i = 0; i < b.n; i++) {
        rec *r = a->head;
        a->head = r->next;
        if (!a->head) a->tail = NULL;
        a->len--;
        rec_free(r);
      }
      a->written_seq = last;
      pthread_cond_broadcast(&a->written);
    } else {
      if (stopping) break; /* shutting down with the database away: give up */
      nc_log(NC_LOG_WARN, "audit: cannot write; will retry", LKV_S("error", err),
             LKV_I("queued", a->len));
      struct timespec until = nc_monotonic_after_ms(1000);
      pthread_cond_timedwait(&a->wake, &a->mu, &until);
    }
  }
  pthread_mutex_unlock(&a->mu);
  return NULL;
}

core_audit *core_audit_new(store_pool *db, int queue_limit) {
  core_audit *a = calloc(1, sizeof(*a));
  if (!a) return NULL;
  a->db = db;
  a->limit = queue_limit > 0 ? queue_limit : 100000;
  pthread_mutex_init(&a->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&a->wake, &ca);
  pthread_cond_init(&a->written, &ca);
  pthread_condattr_destroy(&ca);
  if (pthread_create(&a->thread, NULL, writer, a) != 0) {
    free(a);
    return NULL;
  }
  return a;
}

void core_audit_free(core_audit *a, int grace_ms) {
  if (!a) return;
  pthread_mutex_lock(&a->mu);
  struct timespec until = nc_monotonic_after_ms(grace_ms > 0 ? grace_ms : 0);
  while (a->head && a->written_seq < a->queued_seq) {
    if (pthread_cond_timedwait(&a->written, &a->mu, &until) != 0) break;
  }
  a->stop = true;
  pthread_cond_broadcast(&a->wake);
  pthread_mutex_unlock(&a->mu);
  pthread_join(a->thread, NULL);
  if (a->len)
    nc_log(NC_LOG_ERROR, "audit: records not written at shutdown", LKV_I("count", a->len));
  while (a->head) {
    rec *r = a->head;
    a->head = r->next;
    rec_free(r);
  }
  pthread_cond_destroy(&a->wake);
  pthread_cond_destroy(&a->written);
  pthread_mutex_destroy(&a->mu);
  free(a);
}

void core_audit_add(core_audit *a, const core_audit_record *in) {
  if (!a) return;
  rec *r = calloc(1, sizeof(*r));
  if (!r) return;
  const char *f[7] = {in->principal, in->project,    in->method, in->resource,
                      in->message,   in->request_id, in->peer};
  bool ok = true;
  for (int i = 0; i < 7; i++) {
    char buf[1024];
    /* bound every field; messages are the human status texts */
    snprintf(buf, sizeof(buf), "%s", f[i] ? f[i] : "");
    ok = ok && (r->f[i] = strdup(buf));
  }
  r->code = in->code;
  if (!ok) {
    rec_free(r);
    return;
  }
  pthread_mutex_lock(&a->mu);
  if (a->len >= a->limit) {
    long d = ++a->dropped;
    pthread_mutex_unlock(&a->mu);
    nc_log(NC_LOG_ERROR, "audit: queue full; record dropped", LKV_S("method", r->f[2]),
           LKV_S("principal", r->f[0]), LKV_I("dropped_total", d));
    rec_free(r);
    return;
  }
  r->seq = ++a->queued_seq;
  if (a->tail)
    a->tail->next = r;
  else
    a->head = r;
  a->tail = r;
  a->len++;
  pthread_cond_signal(&a->wake);
  pthread_mutex_unlock(&a->mu);
}

/* ---- ListAuditEvents ---- */

#define AUDIT_COLS \
  "e.id, " CORE_TS("e.time") ", e.principal, e.project, e.method, e.resource, e.result_code, " \
                             "e.message, e.request_id, e.peer, e.operation"
#define AUDIT_NCOLS 11

static Novacron__V1__AuditEvent *audit_from_row(core_call *call, const PGresult *r, int i) {
  Novacron__V1__AuditEvent *e = core_alloc(call, sizeof(*e));
  if (!e) return NULL;
  novacron__v1__audit_event__init(e);
  char name[48];
  snprintf(name, sizeof(name), "auditEvents/%s", PQgetvalue(r, i, 0));
  e->name = core_strdup(call, name);
  e->time = core_ts(call, r, i, 1);
  e->principal = core_strdup(call, PQgetvalue(r, i, 2));
  e->project = core_strdup(call, PQgetvalue(r, i, 3));
  e->method = core_strdup(call, PQgetvalue(r, i, 4));
  e->resource = core_strdup(call, PQgetvalue(r, i, 5));
  e->result_code = (int32_t)core_i64(r, i, 6);
  e->message = core_strdup(call, PQgetvalue(r, i, 7));
  e->request_id = core_strdup(call, PQgetvalue(r, i, 8));
  e->peer = core_strdup(call, PQgetvalue(r, i, 9));
  e->operation = core_strdup(call, PQgetvalue(r, i, 10));
  return e;
}

CORE_LIST_ROW(audit_row, Novacron__V1__ListAuditEventsResponse, audit_events, audit_from_row)

static const lq_field audit_fields[] = {
    {.name = "time", .column = "e.time", .type = LQ_TIME, .filterable = true, .orderable = true},
    {.name = "principal",
     .column = "e.principal",
     .type = LQ_STRING,
     .filterable = true,
     .wildcard = true},
    {.name = "project", .column = "e.project", .type = LQ_STRING, .filterable = true},
    {.name = "method",
     .column = "e.method",
     .type = LQ_STRING,
     .filterable = true,
     .wildcard = true},
    {.name = "resource",
     .column = "e.resource",
     .type = LQ_STRING,
     .filterable = true,
     .wildcard = true},
    {.name = "result_code", .column = "e.result_code", .type = LQ_INT, .filterable = true},
    {.name = "request_id", .column = "e.request_id", .type = LQ_STRING, .filterable = true},
};
static const lq_spec audit_spec = {
    audit_fields, sizeof(audit_fields) / sizeof(audit_fields[0]), "time desc", "e.id", 50, 500};

int core_audit_list(core_audit *a, core_call *call, const char *project,
                    const Novacron__V1__ListAuditEventsRequest *req,
                    Novacron__V1__ListAuditEventsResponse *resp) {
  /* read your writes: wait (up to 2 s) for what was queued before now */
  pthread_mutex_lock(&a->mu);
  long want = a->queued_seq;
  struct timespec until = nc_monotonic_after_ms(2000);
  while (a->written_seq < want && a->head) {
    if (pthread_cond_timedwait(&a->written, &a->mu, &until) != 0) break;
  }
  pthread_mutex_unlock(&a->mu);
  char proj[96] = "";
  if (project) snprintf(proj, sizeof(proj), "projects/%s", project);
  core_list_req l = {.spec = &audit_spec,
                     .select = "SELECT " AUDIT_COLS
                               ", count(*) OVER () FROM audit_events e "
                               "WHERE ($1::text IS NULL OR e.project = $1)",
                     .fixed = {project ? proj : NULL},
                     .nfixed = 1,
                     CORE_LIST_PAGE(req, resp),
                     .fingerprint = req->parent,
                     .ncols = AUDIT_NCOLS,
                     .row = audit_row,
                     .total_size = &resp->total_size};
  return core_run_tx(a->db, call, core_list_tx, &l);
}
