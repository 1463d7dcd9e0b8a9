/*
 * events.h - the event log and bus behind EventService.WatchEvents.
 *
 * Writers append an event inside the transaction that makes the change
 * (core_event_append): the sequence is assigned under a transaction-level
 * advisory lock, so sequences are in commit order, and NOTIFY nc_events
 * wakes every replica's listener at commit. One listener thread per server
 * holds a dedicated LISTEN connection, reads the committed rows after the
 * last sequence it delivered and fans each event out to the subscribers
 * whose filters match. A subscriber is a WatchEvents stream: its queue is
 * bounded by the RPC runtime (rpc_stream_send), and a stream that cannot
 * keep up ends with RESOURCE_EXHAUSTED without slowing the others.
 *
 * Subscribers replay the retained log after their `after_sequence` before
 * joining the live feed, without a gap or a duplicate. Events older than
 * the retention are pruned by whichever replica holds the pruning advisory
 * lock.
 *
 * The retained window: pruning deletes the rows before the newest row
 * that is older than the retention and keeps that row as the boundary, so
 * the log is never emptied and min(seq) says exactly what is gone. A
 * resume point below min(seq) - 1 is OUT_OF_RANGE; so is one above the
 * newest committed sequence.
 *
 * This module knows nothing about gRPC: a subscriber is a pair of
 * callbacks (core_event_sink).
 */
#ifndef NC_CORE_EVENTS_H
#define NC_CORE_EVENTS_H

#include "core/core.h"
#include "novacron/v1/event.pb-c.h"
#include "store/pool.h"

typedef struct core_events core_events;
typedef struct core_event_sub core_event_sub;
struct core_tx;

typedef struct core_events_config {
  const char *conninfo; /* for the dedicated LISTEN connection */
  int retention_s;      /* events older than this are pruned; <= 0: 86400 */
  int replay_batch;     /* rows per replay query; <= 0: 500 */
  int prune_interval_s; /* how often the pruning replica looks; <= 0: 60 */
} core_events_config;

/* At most this many WatchEventsRequest.resources. */
#define CORE_EVENTS_MAX_RESOURCES 100

/* Connects the listener (LISTEN nc_events), reads the head and starts the
 * listener thread. NULL on failure (err set): the database must be
 * reachable at start; afterwards the listener reconnects by itself. */
core_events *core_events_new(store_pool *db, const core_events_config *cfg, char *err,
                             size_t errlen);
/* Stops the listener and ends every open subscription with UNAVAILABLE
 * (end callbacks run here). Call it after the RPC server has shut down
 * (no handler may still be inside core_events_subscribe) and before the
 * pool is freed. Subscriptions not yet unsubscribed keep the memory alive
 * until they are. NULL is ignored. */
void core_events_free(core_events *ev);

/* Appends `e` to the log inside the caller's transaction: sets
 * e->sequence and e->event_time (allocated with tx->call's allocator),
 * writes the row and queues NOTIFY. The caller fills type, resource,
 * resource_type, project ("projects/p" or ""), principal, source_operation,
 * message and the payload. For operation events `target` is the
 * operation's target (resource filters match it); NULL otherwise.
 *
 * The sequence lock is held until the transaction ends and serializes
 * every appending transaction: append as the last statements of the
 * transaction, never before slow work. */
int core_event_append(struct core_tx *tx, store_conn *conn, Novacron__V1__Event *e,
                      const char *target);

/* Nudges the listener after a commit that appended events, so that the
 * local replica does not wait for its own NOTIFY round trip. Never blocks.
 * NULL is ignored. */
void core_events_kick(core_events *ev);

/* The newest committed sequence (0 when the log is empty). */
int core_events_head(core_events *ev, core_call *call, int64_t *head);

/* True for the fully qualified resource message names events may carry
 * in Event.resource_type ("novacron.v1.Vm", ...). */
bool core_event_resource_type_known(const char *name);

/* What a subscription receives. All lists are copied; empty ones do not
 * filter. */
typedef struct core_event_filter {
  bool all_projects;           /* every project's events (else only `projects`) */
  bool system;                 /* plus system-level events (project "") */
  const char *const *projects; /* "projects/{p}" names */
  size_t nprojects;
  const int *types; /* Event.Type values; TYPE_HEARTBEAT is ignored */
  size_t ntypes;
  const char *const *resource_types; /* core_event_resource_type_known names */
  size_t nresource_types;
  /* an entry matches a resource equal to it or below it ("r/..."), and an
   * operation event whose target does */
  const char *const *resources;
  size_t nresources;
  /* When the subscriber's credentials expire (Unix seconds; 0: never): the
   * subscription then ends with UNAUTHENTICATED, so a stream never outlives
   * the token that authorized it nor the role snapshot in this filter. */
  int64_t until_unix;
} core_event_filter;

/* The consumer of a subscription. `e` is valid only during the call (copy
 * or serialize what you keep); it is shared by every subscriber. */
typedef struct core_event_sink {
  /* Delivers one event or heartbeat, in sequence order, never two at once.
   * Runs on the subscribing thread during core_events_subscribe (where it
   * may block: backpressure) and on the listener thread afterwards (where
   * it must not block). Returns false when the consumer cannot take more:
   * the subscription ends (end(RESOURCE_EXHAUSTED) when live). */
  bool (*deliver)(const Novacron__V1__Event *e, void *arg);
  /* The subscription ended from this side (consumer overflow,
   * RESOURCE_EXHAUSTED; events pruned before delivery, OUT_OF_RANGE;
   * credentials expired, UNAUTHENTICATED; shutdown, UNAVAILABLE). At most
   * once; never after unsubscribe began. */
  void (*end)(int code, const char *message, void *arg);
  void *arg;
} core_event_sink;

/* Subscribes: delivers a TYPE_HEARTBEAT carrying the head sequence, then
 * (after_sequence > 0) the retained events after after_sequence that
 * match, then live ones; a heartbeat every `heartbeat_ms` without other
 * messages. The replay runs on the calling thread before this returns.
 *
 * CORE_OK: *out is live; the caller must core_events_unsubscribe it
 * exactly once (also after end). Otherwise nothing is registered (some
 * events may have been delivered) and call->msg says why:
 * INVALID_ARGUMENT (filter), OUT_OF_RANGE (after_sequence older than the
 * retained window or newer than the head), UNAVAILABLE (database down,
 * shutting down), RESOURCE_EXHAUSTED (deliver returned false). */
int core_events_subscribe(core_events *ev, core_call *call, const core_event_filter *f,
                          int64_t after_sequence, int heartbeat_ms, const core_event_sink *sink,
                          core_event_sub **out);
/* Ends a subscription: once it returns, the sink is never called again.
 * Never blocks for long (waits for an in-progress delivery to it). May
 * run on any thread, also after core_events_free. NULL is ignored. */
void core_events_unsubscribe(core_event_sub *sub);

/* Counters, for tests and metrics. */
typedef struct core_events_stats {
  int64_t cursor;  /* newest sequence the listener has fanned out */
  int subscribers; /* live subscriptions */
  long reconnects; /* listener connections re-established */
  long pruned;     /* rows this replica deleted */
  bool pruner;     /* this replica holds the pruning lock */
} core_events_stats;
void core_events_get_stats(core_events *ev, core_events_stats *out);

#endif
