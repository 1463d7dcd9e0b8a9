/*
 * events.c - the event log and bus (core/events.h).
 *
 * Threads. Writers append inside their own transactions, on any thread.
 * One listener thread per core_events owns the LISTEN connection: it reads
 * committed rows after its cursor, fans them out, sends heartbeats and,
 * when it holds the pruning lock, prunes. A subscriber replays the
 * retained log on its own thread (the RPC handler's worker, where the
 * runtime applies backpressure) and then joins the live list.
 *
 * No gap, no duplicate. Sequences are assigned under a transaction-level
 * advisory lock held to commit, so the committed sequences visible to any
 * snapshot form a prefix of the log. The listener moves ev->cursor to the
 * end of a batch and snapshots the subscriber list under ev->mu before it
 * delivers that batch; a subscriber joins under ev->mu only once its own
 * replay cursor has reached ev->cursor (it keeps reading the database
 * until it has). So every event after the join point reaches it live and
 * every event up to it came from the replay.
 *
 * Locks. ev->mu guards the list, the cursor, `stopping` and the counters;
 * sub->mu serialises a subscriber's sink calls with unsubscribe. Neither
 * is taken while holding the other, and no sink runs under ev->mu.
 *
 * Events are decoded once per batch (listener) or page (replay) and the
 * same message is handed to every matching sink, which serializes it
 * right away (rpc_stream_send packs before it returns); nothing keeps a
 * reference after the call, so no reference counting of messages is
 * needed.
 */
#include "core/events.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/internal.h"
#include "novacron/v1/backup.pb-c.h"
#include "novacron/v1/federation.pb-c.h"
#include "novacron/v1/host.pb-c.h"
#include "novacron/v1/identity.pb-c.h"
#include "novacron/v1/network.pb-c.h"
#include "novacron/v1/operations.pb-c.h"
#include "novacron/v1/storage.pb-c.h"
#include "novacron/v1/vm.pb-c.h"
#include "util/log.h"

/* Advisory lock keys: "NCevents" (sequence assignment, per transaction)
 * and "NCevprun" (the pruning replica, per session). */
#define SEQ_LOCK_KEY "5639462717580276851"
#define PRUNE_LOCK_KEY "5639462717765088622"
#define CHANNEL "nc_events"

#define TICK_MS 1000        /* longest listener sleep: heartbeats, stop */
#define SAFETY_READ_MS 2000 /* read even without a notification this often */
#define BACKOFF_MIN_MS 100  /* reconnect backoff */
#define BACKOFF_MAX_MS 2000
#define PRUNE_BATCH 5000 /* rows per DELETE */
#define PRUNE_BATCHES 20 /* DELETEs per pruning round */

typedef Novacron__V1__Event Event;

/* ---- the resource types events may name ---- */

static const ProtobufCMessageDescriptor *const resource_descs[] = {
    &novacron__v1__vm__descriptor,
    &novacron__v1__vm_snapshot__descriptor,
    &novacron__v1__host__descriptor,
    &novacron__v1__operation__descriptor,
    &novacron__v1__volume__descriptor,
    &novacron__v1__pool__descriptor,
    &novacron__v1__network__descriptor,
    &novacron__v1__backup__descriptor,
    &novacron__v1__backup_policy__descriptor,
    &novacron__v1__repository__descriptor,
    &novacron__v1__peer__descriptor,
    &novacron__v1__project__descriptor,
    &novacron__v1__user__descriptor,
    &novacron__v1__role_binding__descriptor,
    &novacron__v1__api_key__descriptor,
    &novacron__v1__quota__descriptor,
};
#define NRESOURCE_TYPES ((int)(sizeof(resource_descs) / sizeof(resource_descs[0])))

static int rtype_index(const char *name) {
  if (!name) return -1;
  for (int i = 0; i < NRESOURCE_TYPES; i++)
    if (strcmp(resource_descs[i]->name, name) == 0) return i;
  return -1;
}

bool core_event_resource_type_known(const char *name) { return rtype_index(name) >= 0; }

static bool type_known(int t) {
  return t > NOVACRON__V1__EVENT__TYPE__TYPE_UNSPECIFIED && t < 128 &&
         protobuf_c_enum_descriptor_get_value(&novacron__v1__event__type__descriptor, t) != NULL;
}

/* ---- small helpers ---- */

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ts_from_micros(Google__Protobuf__Timestamp *ts, int64_t us) {
  google__protobuf__timestamp__init(ts);
  int64_t s = us / 1000000, r = us % 1000000;
  if (r < 0) {
    r += 1000000;
    s--;
  }
  ts->seconds = s;
  ts->nanos = (int32_t)(r * 1000);
}

static int64_t parse_i64(const char *s) { return s ? strtoll(s, NULL, 10) : 0; }

/* A growable string for SQL array literals. */
typedef struct sbuf {
  char *p;
  size_t len, cap;
  bool oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 64;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = true;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* Appends s as a double-quoted element of an array literal. */
static void sb_elem(sbuf *b, const char *s) {
  sb_add(b, b->len > 1 ? ",\"" : "\"", b->len > 1 ? 2 : 1);
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') sb_add(b, "\\", 1);
    sb_add(b, s, 1);
  }
  sb_add(b, "\"", 1);
}

/* ---- filters ---- */

typedef struct ev_filter {
  bool all_projects, system;
  char **projects;
  size_t nprojects;
  bool any_type;
  uint64_t types[2]; /* bit t: Event.Type t (< 128) */
  bool any_rtype;
  uint32_t rtypes; /* bit i: resource_descs[i] */
  char **resources;
  size_t nresources;
  int64_t until_unix; /* 0: never */
  /* the replay query's parameters ($3, $4, $5, $6) */
  char *sql_projects; /* NULL: every project */
  bool sql_system;
  char *sql_types;  /* NULL: every type */
  char *sql_rtypes; /* NULL: every resource type */
} ev_filter;

static void strv_free(char **v, size_t n) {
  for (size_t i = 0; v && i < n; i++)
    free(v[i]);
  free(v);
}

static void filter_free(ev_filter *f) {
  strv_free(f->projects, f->nprojects);
  strv_free(f->resources, f->nresources);
  free(f->sql_projects);
  free(f->sql_types);
  free(f->sql_rtypes);
  memset(f, 0, sizeof(*f));
}

static char **strv_dup(const char *const *v, size_t n) {
  char **out = calloc(n ? n : 1, sizeof(*out));
  if (!out) return NULL;
  for (size_t i = 0; i < n; i++) {
    if (!(out[i] = strdup(v[i] ? v[i] : ""))) {
      strv_free(out, i);
      return NULL;
    }
  }
  return out;
}

/* Checks and copies a filter; INVALID_ARGUMENT names the field. */
static int filter_init(core_call *call, const core_event_filter *in, ev_filter *f) {
  memset(f, 0, sizeof(*f));
  if (in->nresources > CORE_EVENTS_MAX_RESOURCES)
    return core_fail(call, CORE_INVALID_ARGUMENT, "resources: at most %d entries (got %zu)",
                     CORE_EVENTS_MAX_RESOURCES, in->nresources);
  f->all_projects = in->all_projects;
  f->system = in->system;
  f->until_unix = in->until_unix;
  f->any_type = true;
  for (size_t i = 0; i < in->ntypes; i++) {
    int t = in->types[i];
    if (!type_known(t))
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "types[%zu]: %d is not an Event.Type (TYPE_UNSPECIFIED is not allowed)", i,
                       t);
    if (t == NOVACRON__V1__EVENT__TYPE__TYPE_HEARTBEAT) continue; /* always sent */
    f->any_type = false;
    f->types[t / 64] |= 1ull << (t % 64);
  }
  if (in->ntypes && f->any_type) {
    /* only TYPE_HEARTBEAT: heartbeats and nothing else */
    f->any_type = false;
  }
  f->any_rtype = in->nresource_types == 0;
  for (size_t i = 0; i < in->nresource_types; i++) {
    int k = rtype_index(in->resource_types[i]);
    if (k < 0)
      return core_fail(call, CORE_INVALID_ARGUMENT,
                       "resource_types[%zu]: \"%.100s\" is not a NovaCron resource type (e.g. "
                       "novacron.v1.Vm, novacron.v1.Host, novacron.v1.Operation)",
                       i, in->resource_types[i] ? in->resource_types[i] : "");
    f->rtypes |= 1u << k;
  }
  for (size_t i = 0; i < in->nresources; i++) {
    const char *r = in->resources[i];
    if (!r || !*r) return core_fail(call, CORE_INVALID_ARGUMENT, "resources[%zu]: empty", i);
  }
  f->projects = strv_dup(in->projects, in->nprojects);
  f->nprojects = f->projects ? in->nprojects : 0;
  f->resources = strv_dup(in->resources, in->nresources);
  f->nresources = f->resources ? in->nresources : 0;
  if (!f->projects || !f->resources) goto oom;

  /* the same filter as SQL parameters, for the replay */
  f->sql_system = f->system;
  if (!f->all_projects) {
    sbuf b = {0};
    sb_str(&b, "{");
    for (size_t i = 0; i < f->nprojects; i++)
      sb_elem(&b, f->projects[i]);
    sb_str(&b, "}");
    if (b.oom) {
      free(b.p);
      goto oom;
    }
    f->sql_projects = b.p;
  }
  if (!f->any_type) {
    sbuf b = {0};
    sb_str(&b, "{");
    for (int t = 0; t < 128; t++) {
      if (!(f->types[t / 64] & (1ull << (t % 64)))) continue;
      char num[16];
      snprintf(num, sizeof(num), "%s%d", b.len > 1 ? "," : "", t);
      sb_str(&b, num);
    }
    sb_str(&b, "}");
    if (b.oom) {
      free(b.p);
      goto oom;
    }
    f->sql_types = b.p;
  }
  if (!f->any_rtype) {
    sbuf b = {0};
    sb_str(&b, "{");
    for (int k = 0; k < NRESOURCE_TYPES; k++)
      if (f->rtypes & (1u << k)) sb_elem(&b, resource_descs[k]->name);
    sb_str(&b, "}");
    if (b.oom) {
      free(b.p);
      goto oom;
    }
    f->sql_rtypes = b.p;
  }
  return CORE_OK;
oom:
  filter_free(f);
  return core_fail(call, CORE_RESOURCE_EXHAUSTED, "out of memory");
}

/* `name` equals `prefix` or lies below it ("prefix/..."). */
static bool name_within(const char *name, const char *prefix) {
  size_t n = strlen(prefix);
  return strncmp(name, prefix, n) == 0 && (name[n] == '\0' || name[n] == '/');
}

static bool filter_match(const ev_filter *f, const Event *e, const char *target) {
  const char *project = e->project ? e->project : "";
  if (!*project) {
    if (!f->system) return false;
  } else if (!f->all_projects) {
    bool found = false;
    for (size_t i = 0; i < f->nprojects && !found; i++)
      found = strcmp(f->projects[i], project) == 0;
    if (!found) return false;
  }
  if (!f->any_type) {
    int t = (int)e->type;
    if (t < 0 || t >= 128 || !(f->types[t / 64] & (1ull << (t % 64)))) return false;
  }
  if (!f->any_rtype) {
    int k = rtype_index(e->resource_type);
    if (k < 0 || !(f->rtypes & (1u << k))) return false;
  }
  if (f->nresources) {
    const char *res = e->resource ? e->resource : "";
    for (size_t i = 0; i < f->nresources; i++) {
      if (name_within(res, f->resources[i])) return true;
      if (target && *target && name_within(target, f->resources[i])) return true;
    }
    return false;
  }
  return true;
}

/* ---- the log and its subscribers ---- */

struct core_event_sub {
  core_events *ev;
  atomic_int refs; /* the owner's handle, list membership, listener snapshots */
  pthread_mutex_t mu;
  bool closed;          /* unsubscribe began: the sink is never called again */
  bool ended;           /* end() ran or deliver() refused */
  bool linked;          /* in ev->subs (ev->mu) */
  int64_t cursor;       /* every event up to here was delivered or filtered out */
  int64_t last_sent_ms; /* monotonic time of the last message */
  int heartbeat_ms;
  ev_filter f;
  core_event_sink sink;
  core_event_sub *prev, *next;
};

struct core_events {
  store_pool *db;
  char *conninfo;
  int retention_s, batch, prune_interval_s;
  atomic_int refs; /* the owner plus one per subscription */
  int wake_fd;     /* eventfd: kicks and stop */

  pthread_mutex_t mu;
  core_event_sub *subs;
  int nsubs;
  int64_t cursor; /* newest sequence fanned out */
  bool stopping;
  long reconnects, pruned;
  bool pruner;

  /* listener thread only */
  pthread_t thread;
  bool thread_started;
  PGconn *conn;
  bool have_lock; /* the pruning advisory lock, on `conn` */
  core_event_sub **snap;
  size_t snapcap;
};

static void ev_unref(core_events *ev);

static void sub_unref(core_event_sub *s) {
  if (atomic_fetch_sub(&s->refs, 1) != 1) return;
  core_events *ev = s->ev;
  filter_free(&s->f);
  pthread_mutex_destroy(&s->mu);
  free(s);
  ev_unref(ev);
}

static void ev_unref(core_events *ev) {
  if (atomic_fetch_sub(&ev->refs, 1) != 1) return;
  if (ev->wake_fd >= 0) close(ev->wake_fd);
  pthread_mutex_destroy(&ev->mu);
  free(ev->snap);
  free(ev->conninfo);
  free(ev);
}

/* Takes references to the live subscribers (ev->mu held). */
static size_t snapshot_locked(core_events *ev) {
  if ((size_t)ev->nsubs > ev->snapcap) {
    size_t cap = (size_t)ev->nsubs * 2;
    core_event_sub **p = realloc(ev->snap, cap * sizeof(*p));
    if (!p) return 0; /* fan_out then keeps its cursor and reads the batch again */
    ev->snap = p;
    ev->snapcap = cap;
  }
  size_t n = 0;
  for (core_event_sub *s = ev->subs; s; s = s->next) {
    atomic_fetch_add(&s->refs, 1);
    ev->snap[n++] = s;
  }
  return n;
}

static void build_heartbeat(Event *hb, Google__Protobuf__Timestamp *ts, int64_t seq) {
  novacron__v1__event__init(hb);
  hb->type = NOVACRON__V1__EVENT__TYPE__TYPE_HEARTBEAT;
  hb->sequence = seq;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  google__protobuf__timestamp__init(ts);
  ts->seconds = now.tv_sec;
  ts->nanos = (int32_t)now.tv_nsec;
  hb->event_time = ts;
}

/* Ends a subscriber from the core side (sub->mu held). */
static void end_locked(core_event_sub *s, int code, const char *msg) {
  if (s->closed || s->ended) return;
  s->ended = true;
  if (s->sink.end) s->sink.end(code, msg, s->sink.arg);
}

static const char overflow_msg[] =
    "the stream's consumer fell too far behind; reconnect and resume with after_sequence";

/* ---- rows ---- */

typedef struct ev_item {
  int64_t seq;
  Event *e; /* NULL when the stored bytes did not decode */
  char *target;
} ev_item;

static void items_free(ev_item *it, int n) {
  for (int i = 0; i < n; i++) {
    if (it[i].e) novacron__v1__event__free_unpacked(it[i].e, NULL);
    free(it[i].target);
  }
  free(it);
}

/* Decodes column `c` (bytea text) of row r; the row's sequence and time
 * are authoritative. */
static Event *decode_row(const PGresult *res, int r, int c, int64_t seq, int tcol) {
  size_t len = 0;
  unsigned char *bytes = PQunescapeBytea((const unsigned char *)PQgetvalue(res, r, c), &len);
  if (!bytes) return NULL;
  Event *e = novacron__v1__event__unpack(NULL, len, bytes);
  PQfreemem(bytes);
  if (!e) {
    nc_log(NC_LOG_ERROR, "events: a stored event does not decode; skipped", LKV_I("seq", seq));
    return NULL;
  }
  e->sequence = seq;
  if (!e->event_time && !PQgetisnull(res, r, tcol)) {
    Google__Protobuf__Timestamp *ts = malloc(sizeof(*ts));
    if (ts) {
      ts_from_micros(ts, parse_i64(PQgetvalue(res, r, tcol)));
      e->event_time = ts;
    }
  }
  return e;
}

/* Turns the event columns of a result (seq, target, event, time from
 * column `c0`; rows whose seq is NULL are skipped) into items. */
static int rows_to_items(const PGresult *res, int c0, ev_item **out, int *n) {
  int rows = PQntuples(res);
  *out = NULL;
  *n = 0;
  ev_item *it = calloc(rows ? (size_t)rows : 1, sizeof(*it));
  if (!it) return -1;
  int k = 0;
  for (int r = 0; r < rows; r++) {
    if (PQgetisnull(res, r, c0)) continue;
    it[k].seq = parse_i64(PQgetvalue(res, r, c0));
    it[k].target = strdup(PQgetvalue(res, r, c0 + 1));
    it[k].e = decode_row(res, r, c0 + 2, it[k].seq, c0 + 3);
    if (!it[k].target) {
      items_free(it, k + 1);
      return -1;
    }
    k++;
  }
  *out = it;
  *n = k;
  return 0;
}

/* ---- appending ---- */

int core_event_append(struct core_tx *tx, store_conn *conn, Novacron__V1__Event *e,
                      const char *target) {
  core_call *call = tx->call;
  const char *project = e && e->project ? e->project : "";
  if (!e || !type_known((int)e->type) || e->type == NOVACRON__V1__EVENT__TYPE__TYPE_HEARTBEAT ||
      !e->resource || !*e->resource || !core_event_resource_type_known(e->resource_type) ||
      (*project && strncmp(project, "projects/", 9) != 0)) {
    nc_log(NC_LOG_ERROR, "events: refusing a malformed event (a bug in its producer)",
           LKV_I("type", e ? (int)e->type : -1),
           LKV_S("resource", e && e->resource ? e->resource : ""),
           LKV_S("resource_type", e && e->resource_type ? e->resource_type : ""),
           LKV_S("project", project));
    return core_fail(call, CORE_INTERNAL, "internal error: malformed event");
  }
  PGresult *r = NULL;
  /* the lock first (a MATERIALIZED CTE is evaluated before the outer
   * target list), then the number and the time, both in commit order */
  int code = core_q(tx, conn, "events_next",
                    "WITH l AS MATERIALIZED (SELECT pg_advisory_xact_lock(" SEQ_LOCK_KEY
                    ")) SELECT nextval('events_seq'), " CORE_TS("clock_timestamp()") " FROM l",
                    0, NULL, &r);
  if (code) return code;
  int64_t seq = parse_i64(PQgetvalue(r, 0, 0));
  int64_t us = parse_i64(PQgetvalue(r, 0, 1));
  PQclear(r);
  Google__Protobuf__Timestamp *ts = core_alloc(call, sizeof(*ts));
  if (!ts) return core_fail(call, CORE_RESOURCE_EXHAUSTED, "out of memory");
  ts_from_micros(ts, us);
  e->sequence = seq;
  e->event_time = ts;

  size_t len = novacron__v1__event__get_packed_size(e);
  uint8_t *bin = malloc(len ? len : 1);
  char *hex = malloc(2 * len + 3);
  if (!bin || !hex) {
    free(bin);
    free(hex);
    return core_fail(call, CORE_RESOURCE_EXHAUSTED, "out of memory");
  }
  novacron__v1__event__pack(e, bin);
  static const char digits[] = "0123456789abcdef";
  hex[0] = '\\';
  hex[1] = 'x';
  for (size_t i = 0; i < len; i++) {
    hex[2 + 2 * i] = digits[bin[i] >> 4];
    hex[3 + 2 * i] = digits[bin[i] & 15];
  }
  hex[2 + 2 * len] = '\0';
  free(bin);
  char s_seq[24], s_type[16], s_us[24];
  snprintf(s_seq, sizeof(s_seq), "%" PRId64, seq);
  snprintf(s_type, sizeof(s_type), "%d", (int)e->type);
  snprintf(s_us, sizeof(s_us), "%" PRId64, us);
  const char *p[] = {s_seq,       s_type,
                     e->resource, e->resource_type ? e->resource_type : "",
                     project,     target ? target : "",
                     s_us,        hex};
  code = core_q(tx, conn, "events_insert",
                "WITH ins AS (INSERT INTO events (seq, type, resource, resource_type, project, "
                "target, time, event) VALUES ($1::bigint, $2::smallint, $3, $4, $5, $6, "
                "timestamptz 'epoch' + $7::bigint * interval '1 microsecond', $8::bytea) "
                "RETURNING seq) SELECT pg_notify('" CHANNEL "', seq::text) FROM ins",
                8, p, NULL);
  free(hex);
  return code;
}

void core_events_kick(core_events *ev) {
  if (!ev) return;
  uint64_t one = 1;
  /* non-blocking: when it fails (EAGAIN), the counter is already set */
  ssize_t n = write(ev->wake_fd, &one, sizeof(one));
  (void)n;
}

/* ---- the listener ---- */

/* Server notices on the listener connection (e.g. "terminating connection
 * due to administrator command" at a restart) would go to stderr: the
 * failure itself is logged where it is handled. */
static void quiet_notice(void *arg, const char *message) {}

/* The listener's connection: our defaults first, so that the conninfo's
 * own settings win. */
/* A libpq message on one line, for the log. */
static void one_line(const char *msg, char *out, size_t len) {
  snprintf(out, len, "%s", msg ? msg : "");
  for (char *p = out; *p; p++)
    if (*p == '\n' || *p == '\t') *p = ' ';
  size_t n = strlen(out);
  while (n && out[n - 1] == ' ')
    out[--n] = '\0';
}

static PGconn *listener_connect(const char *conninfo, char *err, size_t errlen) {
  const char *const keys[] = {
      "connect_timeout",  "keepalives",       "keepalives_idle", "keepalives_interval",
      "keepalives_count", "application_name", "dbname",          NULL};
  const char *const vals[] = {"5", "1", "10", "5", "3", "novacron-events", conninfo, NULL};
  PGconn *c = PQconnectdbParams(keys, vals, 1);
  if (!c || PQstatus(c) != CONNECTION_OK) {
    one_line(c ? PQerrorMessage(c) : "out of memory", err, errlen);
    PQfinish(c);
    return NULL;
  }
  PQsetNoticeProcessor(c, quiet_notice, NULL);
  PGresult *r = PQexec(c, "LISTEN " CHANNEL);
  bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok) snprintf(err, errlen, "LISTEN failed: %s", PQresultErrorMessage(r));
  PQclear(r);
  if (!ok) {
    PQfinish(c);
    return NULL;
  }
  return c;
}

/* Runs a statement on the listener connection; NULL (logged) on failure. */
static PGresult *lexec(core_events *ev, const char *sql, int n, const char *const *params,
                       ExecStatusType want) {
  PGresult *r = PQexecParams(ev->conn, sql, n, NULL, params, NULL, NULL, 0);
  if (PQresultStatus(r) == want) return r;
  char err[256];
  one_line(r ? PQresultErrorMessage(r) : PQerrorMessage(ev->conn), err, sizeof(err));
  nc_log(NC_LOG_WARN, "events: listener query failed", LKV_S("error", err));
  PQclear(r);
  return NULL;
}

static void drop_connection(core_events *ev) {
  if (!ev->conn) return;
  PQfinish(ev->conn);
  ev->conn = NULL;
  ev->have_lock = false;
  pthread_mutex_lock(&ev->mu);
  ev->pruner = false;
  pthread_mutex_unlock(&ev->mu);
}

/* Ends every live subscriber (ev->mu not held). */
static void end_all(core_events *ev, int code, const char *msg) {
  pthread_mutex_lock(&ev->mu);
  size_t n = snapshot_locked(ev);
  pthread_mutex_unlock(&ev->mu);
  for (size_t i = 0; i < n; i++) {
    core_event_sub *s = ev->snap[i];
    pthread_mutex_lock(&s->mu);
    end_locked(s, code, msg);
    pthread_mutex_unlock(&s->mu);
    sub_unref(s);
  }
}

/* Delivers a batch (ascending) to every live subscriber. */
static void fan_out(core_events *ev, const ev_item *it, int n, int64_t upto) {
  pthread_mutex_lock(&ev->mu);
  size_t ns = snapshot_locked(ev);
  bool short_snap = ns < (size_t)ev->nsubs;
  if (!short_snap) ev->cursor = upto;
  pthread_mutex_unlock(&ev->mu);
  if (short_snap) {
    /* out of memory for the snapshot: keep the cursor, so the batch is
     * read and delivered again (nobody got it) */
    for (size_t i = 0; i < ns; i++)
      sub_unref(ev->snap[i]);
    return;
  }
  int64_t now = mono_ms();
  for (size_t i = 0; i < ns; i++) {
    core_event_sub *s = ev->snap[i];
    pthread_mutex_lock(&s->mu);
    for (int k = 0; k < n && !s->closed && !s->ended; k++) {
      if (it[k].seq <= s->cursor) continue;
      s->cursor = it[k].seq;
      if (!it[k].e || !filter_match(&s->f, it[k].e, it[k].target)) continue;
      if (!s->sink.deliver(it[k].e, s->sink.arg))
        end_locked(s, CORE_RESOURCE_EXHAUSTED, overflow_msg);
      else
        s->last_sent_ms = now;
    }
    if (!s->closed && !s->ended && s->cursor < upto) s->cursor = upto;
    pthread_mutex_unlock(&s->mu);
    sub_unref(s);
  }
}

/* Reads and fans out everything committed after the cursor. False when
 * the connection failed. */
static bool catch_up(core_events *ev) {
  for (;;) {
    pthread_mutex_lock(&ev->mu);
    int64_t last = ev->cursor;
    pthread_mutex_unlock(&ev->mu);
    char s_last[24], s_lim[16];
    snprintf(s_last, sizeof(s_last), "%" PRId64, last);
    snprintf(s_lim, sizeof(s_lim), "%d", ev->batch);
    const char *p[] = {s_last, s_lim};
    PGresult *r = lexec(ev,
                        "SELECT b.lo, e.seq, e.target, e.event, " CORE_TS("e.time")
                        " FROM (SELECT min(seq) AS lo FROM events) b "
                        "LEFT JOIN LATERAL (SELECT seq, target, event, time FROM events "
                        "WHERE seq > $1::bigint ORDER BY seq LIMIT $2::int) e ON true "
                        "ORDER BY e.seq",
                        2, p, PGRES_TUPLES_OK);
    if (!r) return false;
    if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
      int64_t lo = parse_i64(PQgetvalue(r, 0, 0));
      if (last > 0 && lo > last + 1) {
        /* rows this replica had not delivered yet were pruned (it lagged
         * by more than the retention): say so instead of skipping them */
        nc_log(NC_LOG_WARN, "events: events were pruned before this server delivered them",
               LKV_I("cursor", last), LKV_I("oldest_retained", lo));
        end_all(ev, CORE_OUT_OF_RANGE,
                "events of this stream were pruned before they could be delivered; list again "
                "and watch from a new heartbeat");
        pthread_mutex_lock(&ev->mu);
        if (ev->cursor < lo - 1) ev->cursor = lo - 1;
        pthread_mutex_unlock(&ev->mu);
        PQclear(r);
        continue;
      }
    }
    ev_item *it = NULL;
    int n = 0;
    if (rows_to_items(r, 1, &it, &n) != 0) {
      PQclear(r);
      nc_log(NC_LOG_ERROR, "events: out of memory reading the log", LKV_I("cursor", last));
      return true; /* retried at the next wake */
    }
    PQclear(r);
    if (n > 0) fan_out(ev, it, n, it[n - 1].seq);
    items_free(it, n);
    if (n < ev->batch) return true;
  }
}

/* Heartbeats to the subscribers that sent nothing for their interval.
 * Returns the milliseconds until the next one is due (at most TICK_MS). */
static int64_t heartbeats(core_events *ev) {
  pthread_mutex_lock(&ev->mu);
  size_t ns = snapshot_locked(ev);
  pthread_mutex_unlock(&ev->mu);
  int64_t now = mono_ms(), next = TICK_MS;
  time_t wall = time(NULL);
  for (size_t i = 0; i < ns; i++) {
    core_event_sub *s = ev->snap[i];
    pthread_mutex_lock(&s->mu);
    if (s->f.until_unix > 0 && wall >= s->f.until_unix)
      end_locked(s, CORE_UNAUTHENTICATED,
                 "the credentials this stream was opened with expired; reconnect with fresh "
                 "ones and resume with after_sequence");
    if (!s->closed && !s->ended) {
      int64_t due = s->last_sent_ms + s->heartbeat_ms;
      if (now >= due) {
        Event hb;
        Google__Protobuf__Timestamp ts;
        build_heartbeat(&hb, &ts, s->cursor);
        if (!s->sink.deliver(&hb, s->sink.arg))
          end_locked(s, CORE_RESOURCE_EXHAUSTED, overflow_msg);
        s->last_sent_ms = now;
        due = now + s->heartbeat_ms;
      }
      if (due - now < next) next = due - now;
    }
    pthread_mutex_unlock(&s->mu);
    sub_unref(s);
  }
  return next;
}

/* One pruning round, when this replica holds (or gets) the pruning lock.
 * Returns false when the connection failed; *more when rows are left. */
static bool prune(core_events *ev, bool *more) {
  *more = false;
  if (!ev->have_lock) {
    PGresult *r =
        lexec(ev, "SELECT pg_try_advisory_lock(" PRUNE_LOCK_KEY ")", 0, NULL, PGRES_TUPLES_OK);
    if (!r) return false;
    ev->have_lock = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    pthread_mutex_lock(&ev->mu);
    ev->pruner = ev->have_lock;
    pthread_mutex_unlock(&ev->mu);
    if (ev->have_lock)
      nc_log(NC_LOG_INFO, "events: this server prunes the event log",
             LKV_I("retention_s", ev->retention_s));
    if (!ev->have_lock) return true;
  }
  char s_ret[16], s_lim[16];
  snprintf(s_ret, sizeof(s_ret), "%d", ev->retention_s);
  snprintf(s_lim, sizeof(s_lim), "%d", PRUNE_BATCH);
  const char *p[] = {s_ret, s_lim};
  long total = 0;
  for (int i = 0; i < PRUNE_BATCHES; i++) {
    /* the newest row older than the retention stays as the boundary */
    PGresult *r = lexec(ev,
                        "WITH cut AS (SELECT max(seq) AS x FROM events "
                        "WHERE time < now() - $1::int * interval '1 second'), "
                        "victims AS (SELECT e.seq FROM events e, cut WHERE e.seq < cut.x "
                        "ORDER BY e.seq LIMIT $2::int) "
                        "DELETE FROM events WHERE seq IN (SELECT seq FROM victims)",
                        2, p, PGRES_COMMAND_OK);
    if (!r) return false;
    long n = strtol(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    total += n;
    if (n < PRUNE_BATCH) break;
    if (i == PRUNE_BATCHES - 1) *more = true;
  }
  if (total > 0) {
    pthread_mutex_lock(&ev->mu);
    ev->pruned += total;
    pthread_mutex_unlock(&ev->mu);
    nc_log(NC_LOG_DEBUG, "events: pruned", LKV_I("rows", total));
  }
  return true;
}

static bool stopping(core_events *ev) {
  pthread_mutex_lock(&ev->mu);
  bool s = ev->stopping;
  pthread_mutex_unlock(&ev->mu);
  return s;
}

static void drain_wake(core_events *ev) {
  uint64_t v;
  while (read(ev->wake_fd, &v, sizeof(v)) == (ssize_t)sizeof(v)) {
  }
}

static void *listener_main(void *arg) {
  core_events *ev = arg;
  int backoff = BACKOFF_MIN_MS;
  bool need_read = true, down = false;
  int64_t next_read = 0, next_prune = mono_ms() + 1000, next_hb = 0, retry_at = 0;
  while (!stopping(ev)) {
    int64_t now = mono_ms();
    if (!ev->conn && now >= retry_at) {
      char err[256];
      ev->conn = listener_connect(ev->conninfo, err, sizeof(err));
      if (ev->conn) {
        pthread_mutex_lock(&ev->mu);
        ev->reconnects++;
        pthread_mutex_unlock(&ev->mu);
        nc_log(NC_LOG_INFO, "events: listener reconnected", LKV_I("backoff_ms", backoff));
        need_read = true; /* whatever committed while we were away */
      } else {
        if (!down)
          nc_log(NC_LOG_WARN, "events: cannot reach the database; retrying", LKV_S("error", err));
        down = true;
        retry_at = now + backoff;
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
      }
    }
    bool failed = false;
    if (ev->conn) {
      PGnotify *nf;
      if (!PQconsumeInput(ev->conn)) {
        char err[256];
        one_line(PQerrorMessage(ev->conn), err, sizeof(err));
        nc_log(NC_LOG_WARN, "events: listener connection lost", LKV_S("error", err));
        failed = true;
      }
      while (!failed && (nf = PQnotifies(ev->conn))) {
        PQfreemem(nf);
        need_read = true;
      }
      now = mono_ms();
      if (!failed && (need_read || now >= next_read)) {
        need_read = false;
        next_read = now + SAFETY_READ_MS;
        failed = !catch_up(ev);
        if (!failed) {
          down = false;
          backoff = BACKOFF_MIN_MS;
        }
        /* a notification that came in during the read may be for a row
         * committed after its snapshot: read again */
        while (!failed && (nf = PQnotifies(ev->conn))) {
          PQfreemem(nf);
          need_read = true;
        }
      }
      now = mono_ms();
      if (!failed && now >= next_prune) {
        bool more = false;
        failed = !prune(ev, &more);
        next_prune = mono_ms() + (more ? 1000 : (int64_t)ev->prune_interval_s * 1000);
      }
      if (failed) {
        drop_connection(ev);
        down = true;
        retry_at = mono_ms() + backoff;
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
      }
    }
    /* heartbeats go on while the database is away: streams stay open */
    now = mono_ms();
    if (now >= next_hb) next_hb = now + heartbeats(ev);
    now = mono_ms();
    int64_t wait = next_hb - now;
    if (ev->conn) {
      if (need_read) wait = 0;
      if (next_read - now < wait) wait = next_read - now;
      if (next_prune - now < wait) wait = next_prune - now;
    } else if (retry_at - now < wait) {
      wait = retry_at - now;
    }
    if (wait > TICK_MS) wait = TICK_MS;
    if (wait < 0) wait = 0;
    struct pollfd pf[2] = {{.fd = ev->wake_fd, .events = POLLIN},
                           {.fd = ev->conn ? PQsocket(ev->conn) : -1, .events = POLLIN}};
    int rc = poll(pf, ev->conn ? 2 : 1, (int)wait);
    if (rc > 0 && (pf[0].revents & POLLIN)) {
      drain_wake(ev);
      need_read = true;
      retry_at = 0; /* a writer just committed: the database is back */
    }
  }
  drop_connection(ev);
  return NULL;
}

/* ---- lifecycle ---- */

core_events *core_events_new(store_pool *db, const core_events_config *cfg, char *err,
                             size_t errlen) {
  if (!cfg || !cfg->conninfo) {
    snprintf(err, errlen, "events: no conninfo");
    return NULL;
  }
  core_events *ev = calloc(1, sizeof(*ev));
  if (!ev) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  ev->db = db;
  ev->retention_s = cfg->retention_s > 0 ? cfg->retention_s : 86400;
  ev->batch = cfg->replay_batch > 0 ? cfg->replay_batch : 500;
  ev->prune_interval_s = cfg->prune_interval_s > 0 ? cfg->prune_interval_s : 60;
  atomic_init(&ev->refs, 1);
  pthread_mutex_init(&ev->mu, NULL);
  ev->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ev->conninfo = strdup(cfg->conninfo);
  if (ev->wake_fd < 0 || !ev->conninfo) {
    snprintf(err, errlen, "events: %s", ev->wake_fd < 0 ? strerror(errno) : "out of memory");
    ev_unref(ev);
    return NULL;
  }
  char cerr[256];
  ev->conn = listener_connect(ev->conninfo, cerr, sizeof(cerr));
  if (!ev->conn) {
    snprintf(err, errlen, "events: cannot open the LISTEN connection: %s", cerr);
    ev_unref(ev);
    return NULL;
  }
  PGresult *r = lexec(ev, "SELECT coalesce(max(seq), 0) FROM events", 0, NULL, PGRES_TUPLES_OK);
  if (!r) {
    snprintf(err, errlen, "events: cannot read the head of the event log");
    PQfinish(ev->conn);
    ev_unref(ev);
    return NULL;
  }
  ev->cursor = parse_i64(PQgetvalue(r, 0, 0));
  PQclear(r);
  if (pthread_create(&ev->thread, NULL, listener_main, ev) != 0) {
    snprintf(err, errlen, "events: cannot start the listener thread");
    PQfinish(ev->conn);
    ev_unref(ev);
    return NULL;
  }
  ev->thread_started = true;
  nc_log(NC_LOG_INFO, "events: listening", LKV_I("head", ev->cursor),
         LKV_I("retention_s", ev->retention_s));
  return ev;
}

void core_events_free(core_events *ev) {
  if (!ev) return;
  pthread_mutex_lock(&ev->mu);
  ev->stopping = true;
  pthread_mutex_unlock(&ev->mu);
  core_events_kick(ev);
  if (ev->thread_started) pthread_join(ev->thread, NULL);
  ev->thread_started = false;
  pthread_mutex_lock(&ev->mu);
  core_event_sub *list = ev->subs;
  ev->subs = NULL;
  ev->nsubs = 0;
  for (core_event_sub *s = list; s; s = s->next)
    s->linked = false;
  pthread_mutex_unlock(&ev->mu);
  while (list) {
    core_event_sub *s = list;
    list = s->next;
    s->next = s->prev = NULL;
    pthread_mutex_lock(&s->mu);
    end_locked(s, CORE_UNAVAILABLE,
               "the server is shutting down; reconnect and resume with after_sequence");
    pthread_mutex_unlock(&s->mu);
    sub_unref(s); /* the list's reference */
  }
  ev_unref(ev);
}

/* ---- subscribing ---- */

typedef struct replay_page {
  bool has_lo, has_hi;
  int64_t lo, hi;
  ev_item *items;
  int n, rows;
} replay_page;

/* One page of the retained log in (from, to] that passes the SQL part of
 * the filter, with the log's bounds read in the same snapshot. */
static int replay_query(core_events *ev, core_call *call, const ev_filter *f, int64_t from,
                        int64_t to, replay_page *pg) {
  memset(pg, 0, sizeof(*pg));
  char s_from[24], s_to[24], s_lim[16];
  snprintf(s_from, sizeof(s_from), "%" PRId64, from);
  snprintf(s_to, sizeof(s_to), "%" PRId64, to);
  snprintf(s_lim, sizeof(s_lim), "%d", ev->batch);
  const char *p[] = {
      s_from,        s_to, f->sql_projects, f->sql_system ? "true" : "false", f->sql_types,
      f->sql_rtypes, s_lim};
  store_conn *conn = NULL;
  char err[256];
  store_status st =
      store_pool_acquire(ev->db, STORE_POOL_DEFAULT_ACQUIRE_TIMEOUT_MS, &conn, err, sizeof(err));
  if (st != STORE_OK)
    return core_fail(call, CORE_UNAVAILABLE, "the database is unavailable; retry later");
  PGresult *r = NULL;
  st = store_exec(conn, "events_replay",
                  "SELECT b.lo, b.hi, e.seq, e.target, e.event, " CORE_TS("e.time")
                  " FROM (SELECT min(seq) AS lo, max(seq) AS hi FROM events) b "
                  "LEFT JOIN LATERAL (SELECT seq, target, event, time FROM events "
                  "WHERE seq > $1::bigint AND seq <= $2::bigint "
                  "AND ((project = '' AND $4::boolean) OR (project <> '' AND "
                  "($3::text[] IS NULL OR project = ANY ($3::text[])))) "
                  "AND ($5::int[] IS NULL OR type = ANY ($5::int[])) "
                  "AND ($6::text[] IS NULL OR resource_type = ANY ($6::text[])) "
                  "ORDER BY seq LIMIT $7::int) e ON true ORDER BY e.seq",
                  7, p, &r);
  if (st != STORE_OK) {
    nc_log(NC_LOG_WARN, "events: replay query failed", LKV_S("error", store_conn_error(conn)));
    store_pool_release(conn);
    return core_fail(call, st == STORE_UNAVAILABLE ? CORE_UNAVAILABLE : CORE_INTERNAL,
                     st == STORE_UNAVAILABLE ? "the database is unavailable; retry later"
                                             : "internal database error");
  }
  store_pool_release(conn);
  if (PQntuples(r) > 0) {
    pg->has_lo = !PQgetisnull(r, 0, 0);
    pg->has_hi = !PQgetisnull(r, 0, 1);
    pg->lo = parse_i64(PQgetvalue(r, 0, 0));
    pg->hi = parse_i64(PQgetvalue(r, 0, 1));
  }
  int rc = rows_to_items(r, 2, &pg->items, &pg->n);
  PQclear(r);
  if (rc != 0) return core_fail(call, CORE_RESOURCE_EXHAUSTED, "out of memory");
  pg->rows = pg->n;
  return CORE_OK;
}

static int out_of_window(core_call *call, int64_t cursor, int64_t lo) {
  return core_fail(call, CORE_OUT_OF_RANGE,
                   "after_sequence: events after %" PRId64
                   " are no longer retained (the oldest retained sequence is %" PRId64
                   "); list again and watch from a new heartbeat",
                   cursor, lo);
}

int core_events_subscribe(core_events *ev, core_call *call, const core_event_filter *f,
                          int64_t after_sequence, int heartbeat_ms, const core_event_sink *sink,
                          core_event_sub **out) {
  *out = NULL;
  if (after_sequence < 0)
    return core_fail(call, CORE_INVALID_ARGUMENT, "after_sequence: must not be negative");
  if (heartbeat_ms <= 0 || !sink || !sink->deliver)
    return core_fail(call, CORE_INVALID_ARGUMENT, "heartbeat_interval: must be positive");
  core_event_sub *s = calloc(1, sizeof(*s));
  if (!s) return core_fail(call, CORE_RESOURCE_EXHAUSTED, "out of memory");
  int code = filter_init(call, f, &s->f);
  if (code) {
    free(s);
    return code;
  }
  atomic_init(&s->refs, 1);
  atomic_fetch_add(&ev->refs, 1);
  s->ev = ev;
  pthread_mutex_init(&s->mu, NULL);
  s->heartbeat_ms = heartbeat_ms;
  s->sink = *sink;

  pthread_mutex_lock(&ev->mu);
  bool stop = ev->stopping;
  int64_t head = ev->cursor;
  pthread_mutex_unlock(&ev->mu);
  if (stop) {
    code = core_fail(call, CORE_UNAVAILABLE, "the server is shutting down");
    goto fail;
  }
  int64_t cursor = head;
  replay_page pg = {0};
  if (after_sequence > 0) {
    code = replay_query(ev, call, &s->f, after_sequence, head, &pg);
    if (code) goto fail;
    if (!pg.has_hi || after_sequence > pg.hi) {
      items_free(pg.items, pg.n);
      code = core_fail(call, CORE_OUT_OF_RANGE,
                       "after_sequence: %" PRId64 " is newer than the newest event (%" PRId64 ")",
                       after_sequence, pg.has_hi ? pg.hi : 0);
      goto fail;
    }
    if (pg.has_lo && after_sequence < pg.lo - 1) {
      items_free(pg.items, pg.n);
      code = out_of_window(call, after_sequence, pg.lo);
      goto fail;
    }
    cursor = after_sequence;
  }
  /* the first message: a heartbeat with the head */
  Event hb;
  Google__Protobuf__Timestamp ts;
  build_heartbeat(&hb, &ts, head > after_sequence ? head : after_sequence);
  if (!s->sink.deliver(&hb, s->sink.arg)) {
    items_free(pg.items, pg.n);
    code = core_fail(call, CORE_RESOURCE_EXHAUSTED, overflow_msg);
    goto fail;
  }
  for (;;) {
    /* deliver the page (none yet when following live only), then advance
     * past the range it covered: all of (cursor, head] unless it was full */
    for (int i = 0; i < pg.n; i++) {
      if (!pg.items[i].e || !filter_match(&s->f, pg.items[i].e, pg.items[i].target)) continue;
      if (!s->sink.deliver(pg.items[i].e, s->sink.arg)) {
        items_free(pg.items, pg.n);
        code = core_fail(call, CORE_RESOURCE_EXHAUSTED, overflow_msg);
        goto fail;
      }
    }
    if (pg.rows == ev->batch)
      cursor = pg.items[pg.n - 1].seq;
    else if (cursor < head)
      cursor = head;
    items_free(pg.items, pg.n);
    memset(&pg, 0, sizeof(pg));
    pthread_mutex_lock(&ev->mu);
    if (ev->stopping) {
      pthread_mutex_unlock(&ev->mu);
      code = core_fail(call, CORE_UNAVAILABLE, "the server is shutting down");
      goto fail;
    }
    if (cursor >= ev->cursor) {
      /* caught up: join the live feed (the listener delivers > cursor) */
      s->cursor = cursor;
      s->last_sent_ms = mono_ms();
      s->linked = true;
      atomic_fetch_add(&s->refs, 1);
      s->next = ev->subs;
      if (ev->subs) ev->subs->prev = s;
      ev->subs = s;
      ev->nsubs++;
      pthread_mutex_unlock(&ev->mu);
      *out = s;
      return CORE_OK;
    }
    head = ev->cursor;
    pthread_mutex_unlock(&ev->mu);
    code = replay_query(ev, call, &s->f, cursor, head, &pg);
    if (code) goto fail;
    if (pg.has_lo && cursor < pg.lo - 1) {
      items_free(pg.items, pg.n);
      code = out_of_window(call, cursor, pg.lo);
      goto fail;
    }
  }
fail:
  sub_unref(s);
  return code;
}

void core_events_unsubscribe(core_event_sub *s) {
  if (!s) return;
  pthread_mutex_lock(&s->mu);
  s->closed = true; /* waits for a delivery in progress */
  pthread_mutex_unlock(&s->mu);
  core_events *ev = s->ev;
  pthread_mutex_lock(&ev->mu);
  bool linked = s->linked;
  if (linked) {
    if (s->prev)
      s->prev->next = s->next;
    else
      ev->subs = s->next;
    if (s->next) s->next->prev = s->prev;
    s->next = s->prev = NULL;
    s->linked = false;
    ev->nsubs--;
  }
  pthread_mutex_unlock(&ev->mu);
  if (linked) sub_unref(s);
  sub_unref(s); /* the owner's handle */
}

/* ---- queries ---- */

int core_events_head(core_events *ev, core_call *call, int64_t *head) {
  *head = 0;
  store_conn *conn = NULL;
  char err[256];
  if (store_pool_acquire(ev->db, STORE_POOL_DEFAULT_ACQUIRE_TIMEOUT_MS, &conn, err, sizeof(err)) !=
      STORE_OK)
    return core_fail(call, CORE_UNAVAILABLE, "the database is unavailable; retry later");
  core_tx tx = {.call = call};
  PGresult *r = NULL;
  int code =
      core_q(&tx, conn, "events_head", "SELECT coalesce(max(seq), 0) FROM events", 0, NULL, &r);
  store_pool_release(conn);
  if (code) return code;
  *head = parse_i64(PQgetvalue(r, 0, 0));
  PQclear(r);
  return CORE_OK;
}

void core_events_get_stats(core_events *ev, core_events_stats *out) {
  memset(out, 0, sizeof(*out));
  pthread_mutex_lock(&ev->mu);
  out->cursor = ev->cursor;
  out->subscribers = ev->nsubs;
  out->reconnects = ev->reconnects;
  out->pruned = ev->pruned;
  out->pruner = ev->pruner;
  pthread_mutex_unlock(&ev->mu);
}
