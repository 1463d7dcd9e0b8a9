/*
 * migrate.h - the schema migration runner.
 *
 * Migrations are the numbered files server/store/migrations/NNNN_name.sql,
 * embedded in the binary at build time (cmake/migrations.cmake). Each is
 * applied in its own transaction and recorded in schema_migrations; a
 * PostgreSQL advisory lock makes replicas starting together migrate once.
 * A database whose schema is newer than the newest embedded migration is
 * refused, so an old server never runs against a schema it does not know.
 */
#ifndef NC_STORE_MIGRATE_H
#define NC_STORE_MIGRATE_H

#include <stddef.h>

#include "store/pool.h"

/* One embedded migration. The generated table lists them by version. */
typedef struct store_migration {
  int version;
  const char *name; /* the file name's part after NNNN_, without .sql */
  const char *sql;
} store_migration;

/* The advisory lock key held while migrating ("NCmigrat"). */
#define STORE_MIGRATE_LOCK_KEY "5639471457872535924"

/* The embedded migrations, ascending by version, and how many there are. */
const store_migration *store_migrations(size_t *count);
/* The newest embedded version (0 when there are none). */
int store_migrations_latest(void);

/* Brings the database's schema up to date on `conn` (outside any
 * transaction). STORE_SCHEMA_TOO_NEW when the database holds a version newer
 * than store_migrations_latest(); otherwise the status of the first failure.
 * `applied` (may be NULL) gets how many migrations this call applied. */
store_status store_migrate(store_conn *conn, int *applied, char *err, size_t errlen);

#endif
