/*
 * pgtest.h - a private PostgreSQL cluster for one test process.
 *
 * initdb into a fresh temporary directory, listen on a unix socket in that
 * directory only (no TCP), trust authentication, and a database for the
 * test. As root the server runs as the `postgres` user (initdb refuses
 * root). Tests may stop and start it again to exercise recovery.
 */
#ifndef NC_TESTS_PGTEST_H
#define NC_TESTS_PGTEST_H

#include <stdbool.h>

typedef struct pgtest pgtest;

/* Creates and starts a cluster with database `dbname`. NULL on failure
 * (the reason is printed to stderr). */
pgtest *pgtest_start(const char *dbname);
/* A libpq connection string for the test database. */
const char *pgtest_conninfo(const pgtest *pg);
/* Creates another database in the cluster. */
bool pgtest_createdb(pgtest *pg, const char *dbname);
/* Stops (pg_ctl stop -m fast) / starts (pg_ctl start -w) the server. */
bool pgtest_stop(pgtest *pg);
bool pgtest_resume(pgtest *pg);
/* Stops the server and removes the directory. NULL is ignored. */
void pgtest_destroy(pgtest *pg);

#endif
