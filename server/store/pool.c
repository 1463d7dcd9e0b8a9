/*
 * pool.c - see pool.h. A fixed array of slots guarded by one mutex and
 * condition variable; free slots form a stack so the most recently used
 * (already connected) connection is handed out first. Connecting, health
 * checks and queries run outside the lock. Connections are opened with the
 * non-blocking libpq API so the connect timeout has millisecond resolution.
 */
#include "store/pool.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/log.h"
#include "util/timeutil.h"

struct store_conn {
  store_pool *pool;
  PGconn *pg;          /* NULL until first use */
  bool broken;         /* reconnect at next acquire */
  long long last_used; /* monotonic ms */
  char **prepared;     /* statement names prepared on this session */
  size_t nprepared, capprepared;
  char err[256];
};

struct store_pool {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  char *conninfo;
  int size;
  int connect_timeout_ms;
  int idle_check_s;
  int acquire_timeout_ms;
  store_conn *conns;
  int *free_stack; /* indices of free slots */
  int nfree;
};

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_err(char *err, size_t errlen, const char *msg) {
  if (err && errlen) snprintf(err, errlen, "%s", msg);
}

/* Copies the first line of a libpq message (they end in newlines and may
 * carry hints on further lines). */
static void first_line(char *dst, size_t dstlen, const char *prefix, const char *msg) {
  size_t n = strcspn(msg ? msg : "", "\n");
  snprintf(dst, dstlen, "%s%.*s", prefix, (int)n, msg ? msg : "");
}

const char *store_status_name(store_status status) {
  switch (status) {
  case STORE_OK: return "OK";
  case STORE_UNAVAILABLE: return "UNAVAILABLE";
  case STORE_NOT_FOUND: return "NOT_FOUND";
  case STORE_CONFLICT: return "CONFLICT";
  case STORE_ABORTED: return "ABORTED";
  case STORE_INVALID: return "INVALID";
  case STORE_INTERNAL: return "INTERNAL";
  case STORE_SCHEMA_TOO_NEW: return "SCHEMA_TOO_NEW";
  }
  return "UNKNOWN";
}

/* NOTICEs (e.g. "relation already exists, skipping") go to the debug log,
 * not to stderr. */
static void notice_to_log(void *arg, const char *message) {
  size_t n = strcspn(message, "\n");
  nc_debugf("postgres notice: %.*s", (int)n, message);
}

static void forget_prepared(store_conn *c) {
  for (size_t i = 0; i < c->nprepared; i++)
    free(c->prepared[i]);
  c->nprepared = 0;
}

static void disconnect(store_conn *c) {
  if (c->pg) PQfinish(c->pg);
  c->pg = NULL;
  c->broken = false;
  forget_prepared(c);
}

/* Opens c->pg within the pool's connect timeout. */
static store_status connect_conn(store_conn *c, char *err, size_t errlen) {
  disconnect(c);
  long long deadline = now_ms() + c->pool->connect_timeout_ms;
  PGconn *pg = PQconnectStart(c->pool->conninfo);
  if (!pg) {
    set_err(err, errlen, "database unavailable: out of memory");
    return STORE_UNAVAILABLE;
  }
  PostgresPollingStatusType st = PGRES_POLLING_WRITING;
  if (PQstatus(pg) == CONNECTION_BAD) st = PGRES_POLLING_FAILED;
  while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
    long long left = deadline - now_ms();
    if (left <= 0) {
      PQfinish(pg);
      snprintf(err, errlen, "database unavailable: no connection within %d ms",
               c->pool->connect_timeout_ms);
      return STORE_UNAVAILABLE;
    }
    struct pollfd pfd = {.fd = PQsocket(pg),
                         .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT};
    int r = poll(&pfd, 1, (int)left);
    if (r < 0 && errno != EINTR) break;
    if (r > 0) st = PQconnectPoll(pg);
  }
  if (st != PGRES_POLLING_OK || PQstatus(pg) != CONNECTION_OK) {
    first_line(err, errlen, "database unavailable: ", PQerrorMessage(pg));
    PQfinish(pg);
    return STORE_UNAVAILABLE;
  }
  PQsetNoticeProcessor(pg, notice_to_log, NULL);
  c->pg = pg;
  return STORE_OK;
}

/* Makes sure the connection is usable before it is handed out. */
static store_status ensure_healthy(store_conn *c, int idle_check_s, char *err, size_t errlen) {
  if (c->pg && !c->broken && PQstatus(c->pg) == CONNECTION_OK &&
      PQtransactionStatus(c->pg) == PQTRANS_IDLE) {
    if (now_ms() - c->last_used <= (long long)idle_check_s * 1000) return STORE_OK;
    PGresult *res = PQexec(c->pg, "SELECT 1");
    bool ok = res && PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    if (ok) return STORE_OK;
    nc_log(NC_LOG_INFO, "store: idle connection failed its health check; reconnecting");
  }
  return connect_conn(c, err, errlen);
}

store_status store_pool_new(const char *conninfo, int size, int connect_timeout_ms,
                            store_pool **out, char *err, size_t errlen) {
  *out = NULL;
  char *perr = NULL;
  PQconninfoOption *opts = PQconninfoParse(conninfo ? conninfo : "", &perr);
  if (!opts) {
    first_line(err, errlen, "invalid database connection string: ", perr ? perr : "out of memory");
    PQfreemem(perr);
    return STORE_INVALID;
  }
  PQconninfoFree(opts);

  store_pool *p = calloc(1, sizeof(*p));
  if (!p) goto oom;
  p->size = size > 0 ? size : STORE_POOL_DEFAULT_SIZE;
  p->connect_timeout_ms =
      connect_timeout_ms > 0 ? connect_timeout_ms : STORE_POOL_DEFAULT_CONNECT_TIMEOUT_MS;
  p->idle_check_s = STORE_POOL_DEFAULT_IDLE_CHECK_S;
  p->acquire_timeout_ms = STORE_POOL_DEFAULT_ACQUIRE_TIMEOUT_MS;
  p->conninfo = strdup(conninfo);
  p->conns = calloc((size_t)p->size, sizeof(*p->conns));
  p->free_stack = calloc((size_t)p->size, sizeof(*p->free_stack));
  if (!p->conninfo || !p->conns || !p->free_stack) goto oom;
  for (int i = 0; i < p->size; i++) {
    p->conns[i].pool = p;
    p->free_stack[i] = p->size - 1 - i; /* slot 0 on top */
  }
  p->nfree = p->size;

  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&p->mu, NULL);
  *out = p;
  return STORE_OK;

oom:
  if (p) {
    free(p->conninfo);
    free(p->conns);
    free(p->free_stack);
    free(p);
  }
  set_err(err, errlen, "out of memory");
  return STORE_INTERNAL;
}

void store_pool_free(store_pool *pool) {
  if (!pool) return;
  for (int i = 0; i < pool->size; i++) {
    disconnect(&pool->conns[i]);
    free(pool->conns[i].prepared);
  }
  pthread_cond_destroy(&pool->cv);
  pthread_mutex_destroy(&pool->mu);
  free(pool->conninfo);
  free(pool->conns);
  free(pool->free_stack);
  free(pool);
}

void store_pool_set_idle_check(store_pool *pool, int seconds) {
  pthread_mutex_lock(&pool->mu);
  pool->idle_check_s = seconds < 0 ? 0 : seconds;
  pthread_mutex_unlock(&pool->mu);
}

void store_pool_set_acquire_timeout(store_pool *pool, int timeout_ms) {
  pthread_mutex_lock(&pool->mu);
  pool->acquire_timeout_ms = timeout_ms < 0 ? 0 : timeout_ms;
  pthread_mutex_unlock(&pool->mu);
}

store_status store_pool_acquire(store_pool *pool, int timeout_ms, store_conn **out, char *err,
                                size_t errlen) {
  *out = NULL;
  if (timeout_ms < 0) timeout_ms = 0;
  struct timespec deadline = nc_monotonic_after_ms(timeout_ms);

  pthread_mutex_lock(&pool->mu);
  while (pool->nfree == 0) {
    if (pthread_cond_timedwait(&pool->cv, &pool->mu, &deadline) == ETIMEDOUT && pool->nfree == 0) {
      pthread_mutex_unlock(&pool->mu);
      snprintf(err, errlen, "no database connection free within %d ms", timeout_ms);
      return STORE_UNAVAILABLE;
    }
  }
  store_conn *c = &pool->conns[pool->free_stack[--pool->nfree]];
  int idle_check_s = pool->idle_check_s;
  pthread_mutex_unlock(&pool->mu);

  store_status st = ensure_healthy(c, idle_check_s, err, errlen);
  if (st != STORE_OK) {
    store_pool_release(c);
    return st;
  }
  c->err[0] = '\0';
  *out = c;
  return STORE_OK;
}

void store_pool_release(store_conn *conn) {
  if (!conn) return;
  store_pool *pool = conn->pool;
  /* A connection left inside a transaction (a caller bug or a lost COMMIT)
   * must not leak its state into the next user. */
  if (conn->pg && PQstatus(conn->pg) == CONNECTION_OK &&
      PQtransactionStatus(conn->pg) != PQTRANS_IDLE) {
    PGresult *res = PQexec(conn->pg, "ROLLBACK");
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) conn->broken = true;
    PQclear(res);
  }
  conn->last_used = now_ms();
  pthread_mutex_lock(&pool->mu);
  pool->free_stack[pool->nfree++] = (int)(conn - pool->conns);
  pthread_cond_signal(&pool->cv);
  pthread_mutex_unlock(&pool->mu);
}

/* Maps a failed result to a status and records the message. */
static store_status classify(store_conn *c, const PGresult *res) {
  const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
  bool conn_lost = PQstatus(c->pg) != CONNECTION_OK;
  store_status st = STORE_INTERNAL;
  if (!state) {
    st = conn_lost ? STORE_UNAVAILABLE : STORE_INTERNAL;
  } else if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
             strncmp(state, "57P", 3) == 0) {
    st = STORE_UNAVAILABLE; /* connection exception, resources, shutdown */
  } else if (strcmp(state, "23505") == 0) {
    st = STORE_CONFLICT;
  } else if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0) {
    st = STORE_ABORTED;
  } else if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0) {
    st = STORE_INVALID;
  }
  if (conn_lost || st == STORE_UNAVAILABLE) c->broken = true;
  if (primary) {
    snprintf(c->err, sizeof(c->err), "%s%s (SQLSTATE %s)",
             st == STORE_UNAVAILABLE ? "database unavailable: " : "", primary, state);
  } else {
    first_line(c->err, sizeof(c->err), "database unavailable: ",
               PQerrorMessage(c->pg)[0] ? PQerrorMessage(c->pg) : "connection lost");
  }
  return st;
}

static bool is_prepared(const store_conn *c, const char *name) {
  for (size_t i = 0; i < c->nprepared; i++) {
    if (strcmp(c->prepared[i], name) == 0) return true;
  }
  return false;
}

static bool remember_prepared(store_conn *c, const char *name) {
  if (c->nprepared == c->capprepared) {
    size_t cap = c->capprepared ? c->capprepared * 2 : 16;
    char **grown = realloc(c->prepared, cap * sizeof(*grown));
    if (!grown) return false;
    c->prepared = grown;
    c->capprepared = cap;
  }
  char *copy = strdup(name);
  if (!copy) return false;
  c->prepared[c->nprepared++] = copy;
  return true;
}

store_status store_exec(store_conn *conn, const char *name, const char *sql, int nparams,
                        const char *const *params, PGresult **out) {
  *out = NULL;
  conn->err[0] = '\0';
  if (!conn->pg || conn->broken) {
    snprintf(conn->err, sizeof(conn->err), "database unavailable: connection lost");
    return STORE_UNAVAILABLE;
  }
  if (name && !is_prepared(conn, name)) {
    PGresult *res = PQprepare(conn->pg, name, sql, nparams, NULL);
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
      store_status st = classify(conn, res);
      PQclear(res);
      return st;
    }
    PQclear(res);
    if (!remember_prepared(conn, name)) {
      /* The session has it but we cannot track it: start afresh next time. */
      conn->broken = true;
      snprintf(conn->err, sizeof(conn->err), "out of memory");
      return STORE_INTERNAL;
    }
  }
  PGresult *res = name ? PQexecPrepared(conn->pg, name, nparams, params, NULL, NULL, 0)
                       : PQexecParams(conn->pg, sql, nparams, NULL, params, NULL, NULL, 0);
  ExecStatusType rs = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (rs != PGRES_TUPLES_OK && rs != PGRES_COMMAND_OK) {
    store_status st = classify(conn, res);
    PQclear(res);
    return st;
  }
  *out = res;
  return STORE_OK;
}

const char *store_conn_error(const store_conn *conn) { return conn->err; }

store_status store_exec_script(store_conn *conn, const char *sql) {
  conn->err[0] = '\0';
  if (!conn->pg || conn->broken) {
    snprintf(conn->err, sizeof(conn->err), "database unavailable: connection lost");
    return STORE_UNAVAILABLE;
  }
  PGresult *res = PQexec(conn->pg, sql);
  ExecStatusType rs = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  store_status st = STORE_OK;
  if (rs != PGRES_TUPLES_OK && rs != PGRES_COMMAND_OK) st = classify(conn, res);
  PQclear(res);
  return st;
}

static store_status tx_command(store_conn *c, const char *cmd) { return store_exec_script(c, cmd); }

store_status store_tx(store_pool *pool, int (*fn)(store_conn *conn, void *arg), void *arg,
                      int retries, char *err, size_t errlen) {
  pthread_mutex_lock(&pool->mu);
  int timeout_ms = pool->acquire_timeout_ms;
  pthread_mutex_unlock(&pool->mu);

  store_status st = STORE_INTERNAL;
  bool begin_retried = false;
  for (int attempt = 0; attempt <= retries; attempt++) {
    store_conn *c = NULL;
    st = store_pool_acquire(pool, timeout_ms, &c, err, errlen);
    if (st != STORE_OK) return st;
    st = tx_command(c, "BEGIN");
    if (st == STORE_UNAVAILABLE && !begin_retried) {
      /* A pooled connection that died while idle (PostgreSQL restarted)
       * fails at BEGIN, before anything ran: try once more, and the next
       * acquire reconnects it. */
      begin_retried = true;
      store_pool_release(c);
      attempt--;
      continue;
    }
    if (st == STORE_OK) {
      st = (store_status)fn(c, arg);
      if (st == STORE_OK && PQtransactionStatus(c->pg) == PQTRANS_INERROR) {
        /* fn ignored a failed statement: COMMIT would silently roll back. */
        snprintf(c->err, sizeof(c->err), "transaction failed but was not reported");
        st = STORE_INTERNAL;
        tx_command(c, "ROLLBACK");
      } else if (st == STORE_OK) {
        st = tx_command(c, "COMMIT");
      } else if (!c->broken && PQstatus(c->pg) == CONNECTION_OK) {
        char keep[sizeof(c->err)];
        snprintf(keep, sizeof(keep), "%s", c->err);
        if (tx_command(c, "ROLLBACK") != STORE_OK) c->broken = true;
        snprintf(c->err, sizeof(c->err), "%s", keep);
      }
    }
    if (st != STORE_OK) set_err(err, errlen, c->err[0] ? c->err : store_status_name(st));
    store_pool_release(c);
    if (st != STORE_ABORTED) break;
    nc_log(NC_LOG_DEBUG, "store: transaction aborted; retrying", LKV_I("attempt", attempt + 1));
  }
  return st;
}
