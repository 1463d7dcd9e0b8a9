/*
 * audit.h - the audit log: one append-only record per mutating call (allowed
 * or refused) and per authentication attempt.
 *
 * Records are queued without blocking (the RPC runtime reports a call's end
 * on a completion-queue thread) and written in batches by one writer thread.
 * While PostgreSQL is down they wait in the queue and are written when it
 * returns; only when the queue is full (--audit-queue records) is a record
 * dropped, with an error log line counting the drops. ListAuditEvents first
 * waits (briefly) for the records queued before it, so a caller reads its
 * own writes.
 */
#ifndef NC_CORE_AUDIT_H
#define NC_CORE_AUDIT_H

#include "core/core.h"
#include "novacron/v1/identity.pb-c.h"
#include "store/pool.h"

typedef struct core_audit core_audit;

typedef struct core_audit_record {
  const char *principal;
  const char *project; /* "projects/p" or "" */
  const char *method;
  const char *resource;
  int code;
  const char *message;
  const char *request_id;
  const char *peer;
} core_audit_record;

/* Starts the writer. `queue_limit` <= 0: 100000. NULL on failure. */
core_audit *core_audit_new(store_pool *db, int queue_limit);
/* Writes what is queued (waiting up to `grace_ms` for the database) and
 * stops the writer. NULL is ignored. */
void core_audit_free(core_audit *a, int grace_ms);
/* Copies and queues one record; never blocks on the database. */
void core_audit_add(core_audit *a, const core_audit_record *rec);

/* ListAuditEvents: `project` NULL lists everything (system administrators),
 * otherwise only that project's events. */
int core_audit_list(core_audit *a, core_call *call, const char *project,
                    const Novacron__V1__ListAuditEventsRequest *req,
                    Novacron__V1__ListAuditEventsResponse *resp);

#endif
