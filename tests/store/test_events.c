/*
 * test_events.c - the event log and bus (server/core/events.c) against a
 * real PostgreSQL (pgtest.h), no mocks: appends from concurrent
 * transactions arrive strictly increasing with no gap and no duplicate,
 * also across the replay -> live handover of a subscriber joining
 * mid-stream; rolled-back events never arrive; filters; a slow consumer is
 * cut off alone; OUT_OF_RANGE above the head and below the retained
 * window; two instances on one database see each other's events (LISTEN/
 * NOTIFY); the listener survives a PostgreSQL restart. It also prints the
 * commit -> delivery latency. The restart test runs last because it stops
 * the server.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/events.h"
#include "core/internal.h"
#include "pgtest.h"
#include "store/migrate.h"
#include "store/pool.h"

static pgtest *g_pg;
static store_pool *g_pool;

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- a core_call with a throw-away allocator ---- */

typedef struct tcall {
  core_call cc;
  ProtobufCAllocator a;
  char msg[512];
  void **blocks;
  size_t n, cap;
} tcall;

static void *t_alloc(void *data, size_t size) {
  tcall *t = data;
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    void **b = realloc(t->blocks, cap * sizeof(*b));
    if (!b) return NULL;
    t->blocks = b;
    t->cap = cap;
  }
  void *p = malloc(size ? size : 1);
  if (p) t->blocks[t->n++] = p;
  return p;
}

static void t_free(void *data, void *p) {}

static void tcall_init(tcall *t) {
  memset(t, 0, sizeof(*t));
  t->a.alloc = t_alloc;
  t->a.free = t_free;
  t->a.allocator_data = t;
  t->cc.alloc = &t->a;
  t->cc.msg = t->msg;
  t->cc.msglen = sizeof(t->msg);
  t->cc.method = "/test/Events";
}

static void tcall_done(tcall *t) {
  for (size_t i = 0; i < t->n; i++)
    free(t->blocks[i]);
  free(t->blocks);
  t->blocks = NULL;
  t->n = t->cap = 0;
}

/* ---- appending ---- */

typedef struct spec {
  int type;
  const char *project; /* "projects/p" or "" */
  const char *resource;
  const char *rtype;
  const char *target; /* operations */
} spec;

typedef struct append_job {
  const spec *specs;
  int n;
  bool rollback;
  int64_t seqs[16];
} append_job;

static int append_fn(store_conn *conn, core_tx *tx) {
  append_job *j = tx->arg;
  for (int i = 0; i < j->n; i++) {
    const spec *s = &j->specs[i];
    Novacron__V1__Event e = NOVACRON__V1__EVENT__INIT;
    e.type = s->type;
    e.project = (char *)s->project;
    e.resource = (char *)s->resource;
    e.resource_type = (char *)s->rtype;
    e.message = "test";
    Novacron__V1__Vm vm = NOVACRON__V1__VM__INIT;
    Novacron__V1__Operation op = NOVACRON__V1__OPERATION__INIT;
    if (strcmp(s->rtype, "novacron.v1.Vm") == 0) {
      vm.name = (char *)s->resource;
      vm.vcpus = 1;
      vm.memory_mib = 128;
      e.payload_case = NOVACRON__V1__EVENT__PAYLOAD_VM;
      e.vm = &vm;
    } else if (strcmp(s->rtype, "novacron.v1.Operation") == 0) {
      op.name = (char *)s->resource;
      op.target = (char *)(s->target ? s->target : "");
      e.payload_case = NOVACRON__V1__EVENT__PAYLOAD_OPERATION;
      e.operation = &op;
    }
    int code = core_event_append(tx, conn, &e, s->target);
    if (code) return code;
    j->seqs[i] = e.sequence;
  }
  return j->rollback ? core_fail(tx->call, CORE_FAILED_PRECONDITION, "rolled back on purpose")
                     : CORE_OK;
}

/* Appends the events in one transaction; returns the CORE code. */
static int append(store_pool *pool, core_events *kick, const spec *specs, int n, bool rollback,
                  int64_t *seqs) {
  tcall t;
  tcall_init(&t);
  append_job j = {.specs = specs, .n = n, .rollback = rollback};
  int code = core_run_tx(pool, &t.cc, append_fn, &j);
  tcall_done(&t);
  if (code == CORE_OK || (rollback && code == CORE_FAILED_PRECONDITION)) {
    for (int i = 0; seqs && i < n; i++)
      seqs[i] = j.seqs[i];
  }
  if (code == CORE_OK) core_events_kick(kick);
  return code;
}

static const spec VM_P = {NOVACRON__V1__EVENT__TYPE__TYPE_VM_CREATED, "projects/p",
                          "projects/p/vms/web-1", "novacron.v1.Vm", NULL};

static int64_t append1(core_events *kick, const spec *s) {
  int64_t seq = 0;
  assert_int_equal(append(g_pool, kick, s, 1, false, &seq), CORE_OK);
  return seq;
}

/* ---- a collecting subscriber ---- */

typedef struct got {
  int64_t seq;
  int type;
  char resource[96];
  char project[48];
  int64_t at_us;
} got;

typedef struct collector {
  pthread_mutex_t mu;
  got *v;
  size_t n, cap;
  int heartbeats;
  int64_t first_hb; /* sequence of the first message (a heartbeat) */
  int first_type;
  int64_t last_hb_seq;
  int limit;    /* deliver refuses after this many events (0: never) */
  int refusals; /* deliver calls after the refusal (must stay 1) */
  int end_code; /* -1 until end() */
  char end_msg[256];
  int ends;
  bool disorder; /* a sequence not above the previous one */
  int64_t last_seq;
} collector;

static void col_init(collector *c, int limit) {
  memset(c, 0, sizeof(*c));
  pthread_mutex_init(&c->mu, NULL);
  c->limit = limit;
  c->end_code = -1;
  c->first_hb = -1;
  c->first_type = -1;
}

static void col_free(collector *c) {
  free(c->v);
  pthread_mutex_destroy(&c->mu);
}

static bool col_deliver(const Novacron__V1__Event *e, void *arg) {
  collector *c = arg;
  int64_t t = now_us();
  pthread_mutex_lock(&c->mu);
  bool ok = true;
  if (c->first_type < 0) {
    c->first_type = (int)e->type;
    c->first_hb = e->sequence;
  }
  if (e->type == NOVACRON__V1__EVENT__TYPE__TYPE_HEARTBEAT) {
    c->heartbeats++;
    c->last_hb_seq = e->sequence;
  } else if (c->limit && (int)c->n >= c->limit) {
    c->refusals++;
    ok = false;
  } else {
    if (e->sequence <= c->last_seq) c->disorder = true;
    c->last_seq = e->sequence;
    if (c->n == c->cap) {
      c->cap = c->cap ? c->cap * 2 : 256;
      c->v = realloc(c->v, c->cap * sizeof(*c->v));
    }
    got *g = &c->v[c->n++];
    g->seq = e->sequence;
    g->type = (int)e->type;
    snprintf(g->resource, sizeof(g->resource), "%s", e->resource ? e->resource : "");
    snprintf(g->project, sizeof(g->project), "%s", e->project ? e->project : "");
    g->at_us = t;
    /* the payload and time survive the round trip */
    if (!e->event_time || e->event_time->seconds < 1600000000) c->disorder = true;
    if (e->type == NOVACRON__V1__EVENT__TYPE__TYPE_VM_CREATED &&
        (!e->vm || strcmp(e->vm->name, e->resource) != 0 || e->vm->memory_mib != 128))
      c->disorder = true;
  }
  pthread_mutex_unlock(&c->mu);
  return ok;
}

static void col_end(int code, const char *msg, void *arg) {
  collector *c = arg;
  pthread_mutex_lock(&c->mu);
  c->end_code = code;
  c->ends++;
  snprintf(c->end_msg, sizeof(c->end_msg), "%s", msg);
  pthread_mutex_unlock(&c->mu);
}

static size_t col_count(collector *c) {
  pthread_mutex_lock(&c->mu);
  size_t n = c->n;
  pthread_mutex_unlock(&c->mu);
  return n;
}

/* Waits until the collector holds `n` events (or timeout). */
static bool col_wait(collector *c, size_t n, int timeout_ms) {
  int64_t until = now_us() + (int64_t)timeout_ms * 1000;
  while (now_us() < until) {
    if (col_count(c) >= n) return true;
    sleep_ms(5);
  }
  return col_count(c) >= n;
}

static bool col_has(collector *c, int64_t seq) {
  pthread_mutex_lock(&c->mu);
  bool found = false;
  for (size_t i = 0; i < c->n && !found; i++)
    found = c->v[i].seq == seq;
  pthread_mutex_unlock(&c->mu);
  return found;
}

static int subscribe(core_events *ev, const core_event_filter *f, int64_t after, int hb_ms,
                     collector *c, core_event_sub **sub, char *msg, size_t msglen) {
  tcall t;
  tcall_init(&t);
  core_event_filter none = {.all_projects = true, .system = true};
  core_event_sink sink = {.deliver = col_deliver, .end = col_end, .arg = c};
  int code = core_events_subscribe(ev, &t.cc, f ? f : &none, after, hb_ms, &sink, sub);
  if (msg) snprintf(msg, msglen, "%s", t.msg);
  tcall_done(&t);
  return code;
}

static core_events *events_on(store_pool *pool, const char *conninfo, int retention_s, int batch,
                              int prune_s) {
  core_events_config cfg = {.conninfo = conninfo,
                            .retention_s = retention_s,
                            .replay_batch = batch,
                            .prune_interval_s = prune_s};
  char err[256] = "";
  core_events *ev = core_events_new(pool, &cfg, err, sizeof(err));
  if (!ev) fprintf(stderr, "core_events_new: %s\n", err);
  assert_non_null(ev);
  return ev;
}

static core_events *events_new(int batch) {
  return events_on(g_pool, pgtest_conninfo(g_pg), 0, batch, 0);
}

static int64_t head_of(core_events *ev) {
  tcall t;
  tcall_init(&t);
  int64_t h = -1;
  assert_int_equal(core_events_head(ev, &t.cc, &h), CORE_OK);
  tcall_done(&t);
  return h;
}

static void migrate_on(store_pool *pool) {
  store_conn *c = NULL;
  char err[256] = "";
  assert_int_equal(store_pool_acquire(pool, 2000, &c, err, sizeof(err)), STORE_OK);
  int applied = 0;
  store_status st = store_migrate(c, &applied, err, sizeof(err));
  if (st != STORE_OK) fprintf(stderr, "migrate: %s\n", err);
  assert_int_equal(st, STORE_OK);
  store_pool_release(c);
}

static int group_setup(void **state) {
  g_pg = pgtest_start("novacron_events");
  if (!g_pg) return -1;
  char err[256];
  if (store_pool_new(pgtest_conninfo(g_pg), 12, 2000, &g_pool, err, sizeof(err)) != STORE_OK) {
    fprintf(stderr, "pool: %s\n", err);
    return -1;
  }
  store_conn *c = NULL;
  int applied = 0;
  if (store_pool_acquire(g_pool, 2000, &c, err, sizeof(err)) != STORE_OK ||
      store_migrate(c, &applied, err, sizeof(err)) != STORE_OK) {
    fprintf(stderr, "migrate: %s\n", err);
    store_pool_release(c);
    return -1;
  }
  store_pool_release(c);
  return 0;
}

static int group_teardown(void **state) {
  store_pool_free(g_pool);
  pgtest_destroy(g_pg);
  return 0;
}

/* ---- tests ---- */

static void test_heartbeat_first_then_live_events(void **state) {
  core_events *ev = events_new(0);
  int64_t before = head_of(ev);
  collector c;
  col_init(&c, 0);
  core_event_sub *sub = NULL;
  assert_int_equal(subscribe(ev, NULL, 0, 60000, &c, &sub, NULL, 0), CORE_OK);
  assert_int_equal(c.first_type, NOVACRON__V1__EVENT__TYPE__TYPE_HEARTBEAT);
  assert_int_equal(c.first_hb, before);

  spec s[3] = {VM_P, VM_P, VM_P};
  s[1].type = NOVACRON__V1__EVENT__TYPE__TYPE_VM_STATE_CHANGED;
  int64_t seqs[3];
  assert_int_equal(append(g_pool, ev, s, 3, false, seqs), CORE_OK);
  assert_true(seqs[0] > before && seqs[1] == seqs[0] + 1 && seqs[2] == seqs[1] + 1);
  assert_true(col_wait(&c, 3, 5000));
  assert_int_equal(c.v[0].seq, seqs[0]);
  assert_int_equal(c.v[1].type, NOVACRON__V1__EVENT__TYPE__TYPE_VM_STATE_CHANGED);
  assert_int_equal(c.v[2].seq, seqs[2]);
  assert_string_equal(c.v[0].project, "projects/p");
  assert_false(c.disorder);
  assert_int_equal(head_of(ev), seqs[2]);
  core_events_unsubscribe(sub);
  core_events_free(ev);
  assert_int_equal(c.ends, 0); /* unsubscribed before: no end() */
  col_free(&c);
}

static void test_periodic_heartbeats_carry_the_cursor(void **state) {
  core_events *ev = events_new(0);
  int64_t seq = append1(ev, &VM_P);
  collector c;
  col_init(&c, 0);
  core_event_sub *sub = NULL;
  assert_int_equal(subscribe(ev, NULL, 0, 200, &c, &sub, NULL, 0), CORE_OK);
  sleep_ms(1500);
  pthread_mutex_lock(&c.mu);
  int hb = c.heartbeats;
  int64_t last = c.last_hb_seq;
  pthread_mutex_unlock(&c.mu);
  assert_true(hb >= 3); /* the first plus at least two periodic ones */
  assert_true(last >= seq);
  core_events_unsubscribe(sub);
  core_events_free(ev);
  col_free(&c);
}

static void test_rolled_back_events_never_arrive(void **state) {
  core_events *ev = events_new(0);
  collector c;
  col_init(&c, 0);
  core_event_sub *sub = NULL;
  assert_int_equal(subscribe(ev, NULL, 0, 60000, &c, &sub, NULL, 0), CORE_OK);
  int64_t gone = 0;
  assert_int_equal(append(g_pool, ev, &VM_P, 1, true, &gone), CORE_FAILED_PRECONDITION);
  assert_true(gone > 0);
  int64_t kept = append1(ev, &VM_P);
  assert_true(kept > gone);
  assert_true(col_wait(&c, 1, 5000));
  sleep_ms(100);
  assert_int_equal(col_count(&c), 1);
  assert_int_equal(c.v[0].seq, kept);
  core_events_unsubscribe(sub);

  /* nor in a replay */
  collector r;
  col_init(&r, 0);
  assert_int_equal(subscribe(ev, NULL, gone - 1, 60000, &r, &sub, NULL, 0), CORE_OK);
  assert_int_equal(col_count(&r), 1);
  assert_int_equal(r.v[0].seq, kept);
  core_events_unsubscribe(sub);
  core_events_free(ev);
  col_free(&c);
  col_free(&r);
}

/* Concurrent writers, some rolling back; subscribers from the start, one
 * resuming mid-stream (replay -> live while appends go on, with a tiny
 * replay page) and one joining live mid-stream. */
#define WRITERS 4
#define TXS 120

typedef struct writer {
  core_events *ev;
  int id;
  int64_t committed[TXS * 2];
  int ncommitted;
  int64_t rolled[TXS * 2];
  int nrolled;
  int failures;
} writer;

static void *writer_main(void *arg) {
  writer *w = arg;
  char res[64], proj[32];
  snprintf(proj, sizeof(proj), "projects/w%d", w->id);
  for (int i = 0; i < TXS; i++) {
    snprintf(res, sizeof(res), "projects/w%d/vms/vm-%d", w->id, i);
    spec s[2] = {{NOVACRON__V1__EVENT__TYPE__TYPE_VM_CREATED, proj, res, "novacron.v1.Vm", NULL},
                 {NOVACRON__V1__EVENT__TYPE__TYPE_VM_UPDATED, proj, res, "novacron.v1.Vm", NULL}};
    int n = 1 + (i % 2);
    bool rollback = i % 10 == 3;
    int64_t seqs[2] = {0, 0};
    int code = append(g_pool, w->ev, s, n, rollback, seqs);
    if (rollback) {
      if (code != CORE_FAILED_PRECONDITION) w->failures++;
      for (int k = 0; k < n; k++)
        w->rolled[w->nrolled++] = seqs[k];
    } else if (code == CORE_OK) {
      for (int k = 0; k < n; k++)
        w->committed[w->ncommitted++] = seqs[k];
    } else {
      w->failures++;
    }
  }
  return NULL;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* The collector holds exactly the committed sequences above `after`. */
static void assert_exactly(collector *c, const int64_t *all, size_t nall, int64_t after) {
  size_t want = 0;
  for (size_t i = 0; i < nall; i++)
    want += all[i] > after;
  assert_true(col_wait(c, want, 15000));
  sleep_ms(50);
  pthread_mutex_lock(&c->mu);
  assert_false(c->disorder);
  assert_int_equal(c->n, want);
  size_t k = 0;
  for (size_t i = 0; i < nall; i++) {
    if (all[i] <= after) continue;
    assert_int_equal(c->v[k].seq, all[i]);
    k++;
  }
  pthread_mutex_unlock(&c->mu);
}

static void test_concurrent_appends_no_gap_no_duplicate(void **state) {
  core_events *ev = events_new(7); /* tiny replay pages: many handover rounds */
  collector all, resumed, live;
  col_init(&all, 0);
  col_init(&resumed, 0);
  col_init(&live, 0);
  core_event_sub *s_all = NULL, *s_resumed = NULL, *s_live = NULL;
  assert_int_equal(subscribe(ev, NULL, 0, 60000, &all, &s_all, NULL, 0), CORE_OK);

  writer w[WRITERS];
  pthread_t th[WRITERS];
  for (int i = 0; i < WRITERS; i++) {
    memset(&w[i], 0, sizeof(w[i]));
    w[i].ev = ev;
    w[i].id = i;
    assert_int_equal(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
  }
  /* mid-stream: resume from the 40th event seen, while writers go on */
  assert_true(col_wait(&all, 40, 15000));
  pthread_mutex_lock(&all.mu);
  int64_t resume_at = all.v[39].seq;
  pthread_mutex_unlock(&all.mu);
  assert_int_equal(subscribe(ev, NULL, resume_at, 60000, &resumed, &s_resumed, NULL, 0), CORE_OK);
  assert_true(col_wait(&all, 150, 15000));
  assert_int_equal(subscribe(ev, NULL, 0, 60000, &live, &s_live, NULL, 0), CORE_OK);
  int64_t live_from = live.first_hb;
  for (int i = 0; i < WRITERS; i++)
    pthread_join(th[i], NULL);

  size_t ncommitted = 0;
  int64_t *committed = calloc(WRITERS * TXS * 2, sizeof(*committed));
  for (int i = 0; i < WRITERS; i++) {
    assert_int_equal(w[i].failures, 0);
    memcpy(committed + ncommitted, w[i].committed, w[i].ncommitted * sizeof(int64_t));
    ncommitted += w[i].ncommitted;
  }
  qsort(committed, ncommitted, sizeof(*committed), cmp_i64);
  for (size_t i = 1; i < ncommitted; i++)
    assert_true(committed[i] > committed[i - 1]); /* unique */

  assert_exactly(&all, committed, ncommitted, all.first_hb);
  assert_exactly(&resumed, committed, ncommitted, resume_at);
  assert_exactly(&live, committed, ncommitted, live_from);
  for (int i = 0; i < WRITERS; i++)
    for (int k = 0; k < w[i].nrolled; k++)
      assert_false(col_has(&all, w[i].rolled[k]));
  printf("# %zu events committed by %d writers; resumed after %" PRId64
         " (%zu replayed+live), "
         "joined live after %" PRId64 " (%zu)\n",
         ncommitted, WRITERS, resume_at, resumed.n, live_from, live.n);
  free(committed);
  core_events_unsubscribe(s_all);
  core_events_unsubscribe(s_resumed);
  core_events_unsubscribe(s_live);
  core_events_free(ev);
  col_free(&all);
  col_free(&resumed);
  col_free(&live);
}

/* Filters, in the replay and live alike. */
static const spec FILTER_SET[] = {
    {NOVACRON__V1__EVENT__TYPE__TYPE_VM_CREATED, "projects/fa", "projects/fa/vms/web-1",
     "novacron.v1.Vm", NULL},
    {NOVACRON__V1__EVENT__TYPE__TYPE_VM_STATE_CHANGED, "projects/fa", "projects/fa/vms/web-1",
     "novacron.v1.Vm", NULL},
    {NOVACRON__V1__EVENT__TYPE__TYPE_VM_SNAPSHOT_CREATED, "projects/fa",
     "projects/fa/vms/web-1/snapshots/s1", "novacron.v1.VmSnapshot", NULL},
    {NOVACRON__V1__EVENT__TYPE__TYPE_VM_CREATED, "projects/fa", "projects/fa/vms/web-10",
     "novacron.v1.Vm", NULL},
    {NOVACRON__V1__EVENT__TYPE__TYPE_OPERATION_CREATED, "projects/fa", "projects/fa/operations/o1",
     "novacron.v1.Operation", "projects/fa/vms/web-1"},
    {NOVACRON__V1__EVENT__TYPE__TYPE_VM_CREATED, "projects/fb", "projects/fb/vms/web-1",
     "novacron.v1.Vm", NULL},
    {NOVACRON__V1__EVENT__TYPE__TYPE_HOST_STATE_CHANGED, "", "hosts/h1", "novacron.v1.Host", NULL},
    {NOVACRON__V1__EVENT__TYPE__TYPE_OPERATION_DONE, "", "operations/o2", "novacron.v1.Operation",
     "hosts/h1"},
    {NOVACRON__V1__EVENT__TYPE__TYPE_RESOURCE_CREATED, "projects/fb", "projects/fb/volumes/v1",
     "novacron.v1.Volume", NULL},
};
#define NFILTER_SET (int)(sizeof(FILTER_SET) / sizeof(FILTER_SET[0]))

typedef struct fcase {
  const char *name;
  core_event_filter f;
  bool expect[NFILTER_SET];
} fcase;

static void test_filters(void **state) {
  static const char *const fa[] = {"projects/fa"};
  static const char *const fab[] = {"projects/fa", "projects/fb"};
  static const int vm_types[] = {NOVACRON__V1__EVENT__TYPE__TYPE_VM_CREATED,
                                 NOVACRON__V1__EVENT__TYPE__TYPE_HEARTBEAT};
  static const char *const web1[] = {"projects/fa/vms/web-1"};
  static const char *const hosts[] = {"hosts/h1"};
  static const char *const vol[] = {"novacron.v1.Volume", "novacron.v1.Host"};
  fcase cases[] = {
      {"project fa", {.projects = fa, .nprojects = 1}, {1, 1, 1, 1, 1, 0, 0, 0, 0}},
      {"projects fa+fb", {.projects = fab, .nprojects = 2}, {1, 1, 1, 1, 1, 1, 0, 0, 1}},
      {"all projects, no system", {.all_projects = true}, {1, 1, 1, 1, 1, 1, 0, 0, 1}},
      {"everything", {.all_projects = true, .system = true}, {1, 1, 1, 1, 1, 1, 1, 1, 1}},
      {"no projects", {.nprojects = 0}, {0, 0, 0, 0, 0, 0, 0, 0, 0}},
      {"types",
       {.all_projects = true, .types = vm_types, .ntypes = 2},
       {1, 0, 0, 1, 0, 1, 0, 0, 0}},
      {"resource web-1 (children, operation target; not web-10)",
       {.projects = fa, .nprojects = 1, .resources = web1, .nresources = 1},
       {1, 1, 1, 0, 1, 0, 0, 0, 0}},
      {"system resources",
       {.all_projects = true, .system = true, .resources = hosts, .nresources = 1},
       {0, 0, 0, 0, 0, 0, 1, 1, 0}},
      {"resource types",
       {.all_projects = true, .system = true, .resource_types = vol, .nresource_types = 2},
       {0, 0, 0, 0, 0, 0, 1, 0, 1}},
  };
  size_t ncases = sizeof(cases) / sizeof(cases[0]);
  core_events *ev = events_new(2);
  int64_t base = head_of(ev);
  int64_t first[NFILTER_SET], second[NFILTER_SET];
  assert_int_equal(append(g_pool, ev, FILTER_SET, NFILTER_SET, false, first), CORE_OK);
  collector *c = calloc(ncases, sizeof(*c));
  core_event_sub **subs = calloc(ncases, sizeof(*subs));
  for (size_t i = 0; i < ncases; i++) {
    col_init(&c[i], 0);
    char msg[512];
    int code = subscribe(ev, &cases[i].f, base, 60000, &c[i], &subs[i], msg, sizeof(msg));
    if (code) fprintf(stderr, "%s: %s\n", cases[i].name, msg);
    assert_int_equal(code, CORE_OK);
  }
  /* the same again, live */
  assert_int_equal(append(g_pool, ev, FILTER_SET, NFILTER_SET, false, second), CORE_OK);
  for (size_t i = 0; i < ncases; i++) {
    int64_t want[2 * NFILTER_SET];
    size_t n = 0;
    for (int k = 0; k < NFILTER_SET; k++)
      if (cases[i].expect[k]) want[n++] = first[k];
    for (int k = 0; k < NFILTER_SET; k++)
      if (cases[i].expect[k]) want[n++] = second[k];
    /* wait for the whole live batch to have been fanned out */
    int64_t until = now_us() + 5000000;
    core_events_stats st;
    do {
      core_events_get_stats(ev, &st);
      if (st.cursor >= second[NFILTER_SET - 1]) break;
      sleep_ms(5);
    } while (now_us() < until);
    assert_true(st.cursor >= second[NFILTER_SET - 1]);
    sleep_ms(20);
    pthread_mutex_lock(&c[i].mu);
    if (c[i].n != n)
      fprintf(stderr, "case %s: got %zu events, want %zu\n", cases[i].name, c[i].n, n);
    assert_int_equal(c[i].n, n);
    for (size_t k = 0; k < n; k++)
      assert_int_equal(c[i].v[k].seq, want[k]);
    pthread_mutex_unlock(&c[i].mu);
    core_events_unsubscribe(subs[i]);
    col_free(&c[i]);
  }
  free(c);
  free(subs);
  core_events_free(ev);
}

static void test_invalid_filters(void **state) {
  core_events *ev = events_new(0);
  collector c;
  col_init(&c, 0);
  core_event_sub *sub = NULL;
  char msg[512];
  int zero[] = {0}, bogus[] = {999};
  core_event_filter f = {.all_projects = true, .types = zero, .ntypes = 1};
  assert_int_equal(subscribe(ev, &f, 0, 1000, &c, &sub, msg, sizeof(msg)), CORE_INVALID_ARGUMENT);
  assert_non_null(strstr(msg, "types[0]"));
  f.types = bogus;
  assert_int_equal(subscribe(ev, &f, 0, 1000, &c, &sub, msg, sizeof(msg)), CORE_INVALID_ARGUMENT);
  const char *const rt[] = {"novacron.v1.Vm", "novacron.v1.Nope"};
  core_event_filter g = {.all_projects = true, .resource_types = rt, .nresource_types = 2};
  assert_int_equal(subscribe(ev, &g, 0, 1000, &c, &sub, msg, sizeof(msg)), CORE_INVALID_ARGUMENT);
  assert_non_null(strstr(msg, "resource_types[1]"));
  const char *many[CORE_EVENTS_MAX_RESOURCES + 1];
  for (int i = 0; i <= CORE_EVENTS_MAX_RESOURCES; i++)
    many[i] = "projects/p/vms/x";
  core_event_filter h = {
      .all_projects = true, .resources = many, .nresources = CORE_EVENTS_MAX_RESOURCES + 1};
  assert_int_equal(subscribe(ev, &h, 0, 1000, &c, &sub, msg, sizeof(msg)), CORE_INVALID_ARGUMENT);
  h.nresources = CORE_EVENTS_MAX_RESOURCES;
  assert_int_equal(subscribe(ev, &h, 0, 1000, &c, &sub, msg, sizeof(msg)), CORE_OK);
  core_events_unsubscribe(sub);
  assert_int_equal(subscribe(ev, NULL, -1, 1000, &c, &sub, msg, sizeof(msg)),
                   CORE_INVALID_ARGUMENT);
  assert_null(sub);
  core_events_free(ev);
  col_free(&c);
}

static void test_after_sequence_beyond_head_is_out_of_range(void **state) {
  core_events *ev = events_new(0);
  int64_t head = append1(ev, &VM_P);
  collector c;
  col_init(&c, 0);
  core_event_sub *sub = NULL;
  char msg[512];
  assert_int_equal(subscribe(ev, NULL, head + 1000, 60000, &c, &sub, msg, sizeof(msg)),
                   CORE_OUT_OF_RANGE);
  assert_non_null(strstr(msg, "newer than"));
  assert_null(sub);
  assert_int_equal(subscribe(ev, NULL, head, 60000, &c, &sub, msg, sizeof(msg)), CORE_OK);
  assert_int_equal(c.first_hb, head);
  assert_int_equal(col_count(&c), 0);
  core_events_unsubscribe(sub);
  core_events_free(ev);
  col_free(&c);
}

static void test_slow_subscriber_is_cut_off_alone(void **state) {
  core_events *ev = events_new(0);
  collector slow, fast;
  col_init(&slow, 3);
  col_init(&fast, 0);
  core_event_sub *s_slow = NULL, *s_fast = NULL;
  assert_int_equal(subscribe(ev, NULL, 0, 60000, &slow, &s_slow, NULL, 0), CORE_OK);
  assert_int_equal(subscribe(ev, NULL, 0, 60000, &fast, &s_fast, NULL, 0), CORE_OK);
  int64_t first = 0;
  for (int i = 0; i < 20; i++) {
    int64_t s = append1(ev, &VM_P);
    if (i == 0) first = s;
  }
  assert_true(col_wait(&fast, 20, 5000));
  assert_int_equal(fast.v[0].seq, first);
  assert_false(fast.disorder);
  pthread_mutex_lock(&slow.mu);
  assert_int_equal(slow.n, 3);
  assert_int_equal(slow.refusals, 1); /* nothing was offered after the refusal */
  assert_int_equal(slow.ends, 1);
  assert_int_equal(slow.end_code, CORE_RESOURCE_EXHAUSTED);
  pthread_mutex_unlock(&slow.mu);
  core_events_stats st;
  core_events_get_stats(ev, &st);
  assert_int_equal(st.subscribers, 2); /* until unsubscribed */
  core_events_unsubscribe(s_slow);
  core_events_get_stats(ev, &st);
  assert_int_equal(st.subscribers, 1);

  /* a consumer that refuses during its replay: the subscription fails */
  collector replay;
  col_init(&replay, 5);
  core_event_sub *s_replay = NULL;
  assert_int_equal(subscribe(ev, NULL, first - 1, 60000, &replay, &s_replay, NULL, 0),
                   CORE_RESOURCE_EXHAUSTED);
  assert_null(s_replay);
  assert_int_equal(replay.n, 5);
  core_events_unsubscribe(s_fast);
  core_events_free(ev);
  col_free(&slow);
  col_free(&fast);
  col_free(&replay);
}

static void test_free_ends_streams_unavailable(void **state) {
  core_events *ev = events_new(0);
  collector c;
  col_init(&c, 0);
  core_event_sub *sub = NULL;
  assert_int_equal(subscribe(ev, NULL, 0, 60000, &c, &sub, NULL, 0), CORE_OK);
  core_events_free(ev);
  assert_int_equal(c.ends, 1);
  assert_int_equal(c.end_code, CORE_UNAVAILABLE);
  core_events_unsubscribe(sub); /* after free: still safe */
  col_free(&c);
}

static void test_expired_credentials_end_the_stream(void **state) {
  core_events *ev = events_new(0);
  collector c;
  col_init(&c, 0);
  core_event_sub *sub = NULL;
  core_event_filter f = {.all_projects = true, .until_unix = (int64_t)time(NULL) + 1};
  assert_int_equal(subscribe(ev, &f, 0, 60000, &c, &sub, NULL, 0), CORE_OK);
  int64_t until = now_us() + 5000000;
  while (now_us() < until) {
    pthread_mutex_lock(&c.mu);
    int ends = c.ends;
    pthread_mutex_unlock(&c.mu);
    if (ends) break;
    sleep_ms(20);
  }
  assert_int_equal(c.ends, 1);
  assert_int_equal(c.end_code, CORE_UNAUTHENTICATED);
  append1(ev, &VM_P);
  sleep_ms(100);
  assert_int_equal(col_count(&c), 0); /* nothing after the end */
  core_events_unsubscribe(sub);
  core_events_free(ev);
  col_free(&c);
}

/* Two instances on one database are two replicas: each sees the events
 * appended through the other, by NOTIFY alone (no kick). */
static void test_two_replicas_share_events(void **state) {
  core_events *a = events_new(0), *b = events_new(0);
  collector ca, cb;
  col_init(&ca, 0);
  col_init(&cb, 0);
  core_event_sub *sa = NULL, *sb = NULL;
  assert_int_equal(subscribe(a, NULL, 0, 60000, &ca, &sa, NULL, 0), CORE_OK);
  assert_int_equal(subscribe(b, NULL, 0, 60000, &cb, &sb, NULL, 0), CORE_OK);
  int64_t s1 = append1(a, &VM_P); /* kicks a only */
  int64_t s2 = append1(b, &VM_P);
  int64_t s3 = append1(NULL, &VM_P); /* nobody kicked */
  assert_true(col_wait(&ca, 3, 5000));
  assert_true(col_wait(&cb, 3, 5000));
  int64_t want[] = {s1, s2, s3};
  for (int i = 0; i < 3; i++) {
    assert_int_equal(ca.v[i].seq, want[i]);
    assert_int_equal(cb.v[i].seq, want[i]);
  }
  core_events_unsubscribe(sa);
  core_events_unsubscribe(sb);
  core_events_free(a);
  core_events_free(b);
  col_free(&ca);
  col_free(&cb);
}

static int cmp_lat(const void *a, const void *b) { return cmp_i64(a, b); }

/* Commit -> deliver latency over 1000 sequential single-event
 * transactions: the local replica (kicked) and a second one (NOTIFY). */
static void test_delivery_latency(void **state) {
  enum { N = 1000 };
  core_events *local = events_new(0), *remote = events_new(0);
  collector cl, cr;
  col_init(&cl, 0);
  col_init(&cr, 0);
  core_event_sub *sl = NULL, *sr = NULL;
  assert_int_equal(subscribe(local, NULL, 0, 60000, &cl, &sl, NULL, 0), CORE_OK);
  assert_int_equal(subscribe(remote, NULL, 0, 60000, &cr, &sr, NULL, 0), CORE_OK);
  int64_t *committed_at = calloc(N, sizeof(*committed_at));
  int64_t *seqs = calloc(N, sizeof(*seqs));
  for (int i = 0; i < N; i++) {
    tcall t;
    tcall_init(&t);
    append_job j = {.specs = &VM_P, .n = 1};
    assert_int_equal(core_run_tx(g_pool, &t.cc, append_fn, &j), CORE_OK);
    committed_at[i] = now_us();
    core_events_kick(local);
    seqs[i] = j.seqs[0];
    tcall_done(&t);
  }
  assert_true(col_wait(&cl, N, 10000));
  assert_true(col_wait(&cr, N, 10000));
  collector *cs[] = {&cl, &cr};
  const char *names[] = {"same replica (kick)", "other replica (NOTIFY)"};
  for (int k = 0; k < 2; k++) {
    int64_t *lat = calloc(N, sizeof(*lat));
    pthread_mutex_lock(&cs[k]->mu);
    for (int i = 0; i < N; i++) {
      assert_int_equal(cs[k]->v[i].seq, seqs[i]);
      lat[i] = cs[k]->v[i].at_us - committed_at[i];
    }
    pthread_mutex_unlock(&cs[k]->mu);
    qsort(lat, N, sizeof(*lat), cmp_lat);
    printf("# delivery latency, %s, %d events: p50 %" PRId64 " us, p99 %" PRId64 " us, max %" PRId64
           " us\n",
           names[k], N, lat[N / 2], lat[N * 99 / 100], lat[N - 1]);
    assert_true(lat[N * 99 / 100] < 1000000);
    free(lat);
  }
  free(committed_at);
  free(seqs);
  core_events_unsubscribe(sl);
  core_events_unsubscribe(sr);
  core_events_free(local);
  core_events_free(remote);
  col_free(&cl);
  col_free(&cr);
}

/* Retention on a database of its own (pruning would disturb the others):
 * one of two replicas prunes; resuming below the retained window is
 * OUT_OF_RANGE, resuming at its edge replays what is left. */
static void test_pruning_and_out_of_range(void **state) {
  assert_true(pgtest_createdb(g_pg, "events_prune"));
  char conninfo[512];
  snprintf(conninfo, sizeof(conninfo), "%s", pgtest_conninfo(g_pg));
  char *db = strstr(conninfo, "dbname=");
  assert_non_null(db);
  snprintf(db, sizeof(conninfo) - (size_t)(db - conninfo), "dbname=events_prune");
  store_pool *pool = NULL;
  char err[256];
  assert_int_equal(store_pool_new(conninfo, 4, 2000, &pool, err, sizeof(err)), STORE_OK);
  migrate_on(pool);
  core_events *a = events_on(pool, conninfo, 3, 0, 1), *b = events_on(pool, conninfo, 3, 0, 1);
  int64_t old[3];
  spec three[3] = {VM_P, VM_P, VM_P};
  assert_int_equal(append(pool, a, three, 3, false, old), CORE_OK);
  sleep_ms(3500); /* older than the retention now */
  int64_t fresh = 0;
  assert_int_equal(append(pool, a, &VM_P, 1, false, &fresh), CORE_OK);
  /* old[0] and old[1] go; old[2], the newest expired row, stays as the edge */
  core_events_stats sa, sb;
  int64_t until = now_us() + 8000000;
  do {
    sleep_ms(50);
    core_events_get_stats(a, &sa);
    core_events_get_stats(b, &sb);
  } while (sa.pruned + sb.pruned < 2 && now_us() < until);
  assert_int_equal(sa.pruned + sb.pruned, 2);
  assert_true(sa.pruner != sb.pruner); /* exactly one replica prunes */

  collector c;
  col_init(&c, 0);
  core_event_sub *sub = NULL;
  char msg[512];
  assert_int_equal(subscribe(b, NULL, old[0], 60000, &c, &sub, msg, sizeof(msg)),
                   CORE_OUT_OF_RANGE);
  assert_non_null(strstr(msg, "no longer retained"));
  assert_int_equal(subscribe(b, NULL, old[1], 60000, &c, &sub, msg, sizeof(msg)), CORE_OK);
  assert_int_equal(col_count(&c), 2);
  assert_int_equal(c.v[0].seq, old[2]);
  assert_int_equal(c.v[1].seq, fresh);
  core_events_unsubscribe(sub);
  core_events_free(a);
  core_events_free(b);
  store_pool_free(pool);
  col_free(&c);
}

/* PostgreSQL stops and starts under a live subscription: the stream stays
 * open (heartbeats go on), the listener reconnects and delivers what is
 * committed afterwards, including events committed before it is back. */
static void test_listener_survives_postgres_restart(void **state) {
  core_events *ev = events_new(0);
  collector c;
  col_init(&c, 0);
  core_event_sub *sub = NULL;
  assert_int_equal(subscribe(ev, NULL, 0, 300, &c, &sub, NULL, 0), CORE_OK);
  int64_t before = append1(ev, &VM_P);
  assert_true(col_wait(&c, 1, 5000));
  core_events_stats st0;
  core_events_get_stats(ev, &st0);

  assert_true(pgtest_stop(g_pg));
  sleep_ms(1500);
  pthread_mutex_lock(&c.mu);
  int hb_down = c.heartbeats;
  pthread_mutex_unlock(&c.mu);
  assert_true(pgtest_resume(g_pg));
  /* append as soon as the database answers (the listener may still be in
   * its backoff: it catches up when it reconnects) */
  int64_t after[5];
  for (int i = 0; i < 5; i++) {
    int code = CORE_UNAVAILABLE;
    int64_t until = now_us() + 20000000;
    while (code != CORE_OK && now_us() < until) {
      code = append(g_pool, ev, &VM_P, 1, false, &after[i]);
      if (code != CORE_OK) sleep_ms(100);
    }
    assert_int_equal(code, CORE_OK);
  }
  assert_true(col_wait(&c, 6, 20000));
  assert_int_equal(c.v[0].seq, before);
  for (int i = 0; i < 5; i++)
    assert_int_equal(c.v[1 + i].seq, after[i]);
  assert_false(c.disorder);
  assert_int_equal(c.ends, 0); /* the stream never ended */
  assert_true(hb_down >= 3);   /* heartbeats while the database was away */
  core_events_stats st;
  core_events_get_stats(ev, &st);
  assert_true(st.reconnects > st0.reconnects);
  core_events_unsubscribe(sub);
  core_events_free(ev);
  col_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_heartbeat_first_then_live_events),
      cmocka_unit_test(test_periodic_heartbeats_carry_the_cursor),
      cmocka_unit_test(test_rolled_back_events_never_arrive),
      cmocka_unit_test(test_concurrent_appends_no_gap_no_duplicate),
      cmocka_unit_test(test_filters),
      cmocka_unit_test(test_invalid_filters),
      cmocka_unit_test(test_after_sequence_beyond_head_is_out_of_range),
      cmocka_unit_test(test_slow_subscriber_is_cut_off_alone),
      cmocka_unit_test(test_free_ends_streams_unavailable),
      cmocka_unit_test(test_expired_credentials_end_the_stream),
      cmocka_unit_test(test_two_replicas_share_events),
      cmocka_unit_test(test_delivery_latency),
      cmocka_unit_test(test_pruning_and_out_of_range),
      cmocka_unit_test(test_listener_survives_postgres_restart),
  };
  return cmocka_run_group_tests_name("events", tests, group_setup, group_teardown);
}
