/*
 * pool.h - the PostgreSQL connection pool, prepared statements and the
 * transaction helper every typed query in server/store is built on.
 *
 * Connections open lazily and are checked before they are handed out: one
 * found broken (or failing a `SELECT 1` after being idle too long) is
 * reconnected, so after a PostgreSQL restart calls fail with
 * STORE_UNAVAILABLE while it is down and recover by themselves. SQL is only
 * ever run with parameters; error messages never contain SQL text. This
 * module depends on util and libpq only.
 */
#ifndef NC_STORE_POOL_H
#define NC_STORE_POOL_H

#include <libpq-fe.h>
#include <stddef.h>

/* Outcome of a store call; decided from SQLSTATE. Append-only. */
typedef enum store_status {
  STORE_OK = 0,
  STORE_UNAVAILABLE = 1,    /* database down, connection lost, or no connection free */
  STORE_NOT_FOUND = 2,      /* for typed queries: no such row */
  STORE_CONFLICT = 3,       /* unique violation (23505) */
  STORE_ABORTED = 4,        /* serialization failure (40001) or deadlock (40P01): retry */
  STORE_INVALID = 5,        /* data exception (22xxx) or other integrity violation (23xxx) */
  STORE_INTERNAL = 6,       /* anything else: a bug or an unexpected schema */
  STORE_SCHEMA_TOO_NEW = 7, /* the database's schema is newer than this server */
} store_status;

#define STORE_POOL_DEFAULT_SIZE 25
#define STORE_POOL_DEFAULT_CONNECT_TIMEOUT_MS 5000
#define STORE_POOL_DEFAULT_IDLE_CHECK_S 30
#define STORE_POOL_DEFAULT_ACQUIRE_TIMEOUT_MS 5000

typedef struct store_pool store_pool;
typedef struct store_conn store_conn;

/* A constant name for the status ("OK", "UNAVAILABLE", ...). */
const char *store_status_name(store_status status);

/* Creates a pool of up to `size` connections (<= 0: 25) to `conninfo`;
 * opening one gives up after `connect_timeout_ms` (<= 0: 5000). No connection
 * is opened yet; a malformed conninfo is STORE_INVALID. */
store_status store_pool_new(const char *conninfo, int size, int connect_timeout_ms,
                            store_pool **out, char *err, size_t errlen);
/* Closes every connection. All must have been released. NULL is ignored. */
void store_pool_free(store_pool *pool);
/* A connection idle longer than `seconds` is checked with SELECT 1 before it
 * is handed out (0: every time). Default 30. */
void store_pool_set_idle_check(store_pool *pool, int seconds);
/* How long store_tx waits for a free connection. Default 5000 ms. */
void store_pool_set_acquire_timeout(store_pool *pool, int timeout_ms);

/* Takes a healthy connection, waiting up to `timeout_ms` for one to be free.
 * STORE_UNAVAILABLE when none frees up in time or the database is down. */
store_status store_pool_acquire(store_pool *pool, int timeout_ms, store_conn **out, char *err,
                                size_t errlen);
/* Returns a connection to its pool. NULL is ignored. */
void store_pool_release(store_conn *conn);

/* Runs the statement `name` (prepared from `sql` the first time this
 * connection sees the name) with `nparams` text parameters (NULL = SQL NULL).
 * On STORE_OK `*out` is the result (PQclear it); otherwise `*out` is NULL and
 * store_conn_error() says why. A connection-class failure marks the
 * connection for reconnection at its next acquire. A NULL `name` runs `sql`
 * unprepared (still with parameters): for statements whose text varies, such
 * as list queries assembled from a filter, so they do not pile up as
 * prepared statements on long-lived connections. */
store_status store_exec(store_conn *conn, const char *name, const char *sql, int nparams,
                        const char *const *params, PGresult **out);
/* Runs trusted, parameterless SQL that may hold several statements: the
 * embedded migration files and transaction control. Never pass it text
 * built from input; queries go through store_exec. */
store_status store_exec_script(store_conn *conn, const char *sql);
/* The human message of the last failure on `conn` (never SQL text). */
const char *store_conn_error(const store_conn *conn);

/* Runs `fn` between BEGIN and COMMIT on a pooled connection, rolling back
 * when it returns anything but STORE_OK. A transaction ending in
 * STORE_ABORTED is run again, up to `retries` more times. The status is
 * fn's (or BEGIN's/COMMIT's); `err` gets the message. */
store_status store_tx(store_pool *pool, int (*fn)(store_conn *conn, void *arg), void *arg,
                      int retries, char *err, size_t errlen);

#endif
