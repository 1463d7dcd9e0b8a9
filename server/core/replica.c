/*
 * replica.c - one live server per --replica-id (table replicas).
 *
 * A replica id names the claims on operations that a server resumes when
 * it starts again: two live servers with one id would each resume (and
 * run) the other's operations. At start a server records itself; an id
 * held by a live server is refused. Live means: in this machine's pid
 * namespace (same hostname, kernel boot id and /proc/self/ns/pid), the
 * recorded process still runs (same start time, not a zombie); anywhere
 * else, it refreshed its row within twice its own --operation-lease-s. So
 * a server killed here can be restarted at once, and one that died
 * elsewhere is replaced after its lease.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "core/compute_int.h"
#include "util/log.h"

static void read_boot_id(char *out, size_t len) {
  out[0] = '\0';
  FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
  if (!f) return;
  if (fgets(out, (int)len, f)) out[strcspn(out, "\n")] = '\0';
  fclose(f);
}

static void read_pidns(char *out, size_t len) {
  ssize_t n = readlink("/proc/self/ns/pid", out, len - 1);
  out[n > 0 ? n : 0] = '\0';
}

/* A process's state and start time (clock ticks since boot) from
 * /proc/<pid>/stat; false when there is no such process. */
static bool proc_stat(long pid, char *state, long long *start) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return false;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* "pid (comm) S ...": comm may hold spaces and parentheses */
  char *p = strrchr(buf, ')');
  if (!p || p[1] != ' ') return false;
  *state = p[2];
  p += 3;
  for (int field = 4; field < 22 && p; field++) {
    p = strchr(p, ' ');
    if (p) p++;
  }
  *start = p ? strtoll(p, NULL, 10) : 0;
  return p != NULL;
}

typedef struct claim_arg {
  core_compute *c;
  char hostname[256], boot_id[64], pidns[64], pid[16], start[24], lease[16];
  char instance[40];
  char why[400]; /* set when a live server holds the id */
} claim_arg;

static int claim_tx(store_conn *conn, core_tx *tx) {
  claim_arg *a = tx->arg;
  const char *k[] = {a->c->replica};
  PGresult *r;
  /* claims of one id queue: two servers starting together cannot both win */
  int code = core_q(tx, conn, "replica_lock",
                    "SELECT pg_advisory_xact_lock(hashtext('novacron-replica:' || $1))", 1, k, &r);
  if (code) return code;
  PQclear(r);
  if ((code = core_q(tx, conn, "replica_get",
                     "SELECT hostname, boot_id, pid, extract(epoch FROM now() - seen_at)::bigint, "
                     "pidns, start_ticks, lease_s FROM replicas WHERE id = $1",
                     1, k, &r)))
    return code;
  if (PQntuples(r) > 0) {
    const char *host = PQgetvalue(r, 0, 0), *boot = PQgetvalue(r, 0, 1);
    long pid = (long)core_i64(r, 0, 2);
    int64_t age = core_i64(r, 0, 3);
    long long start = (long long)core_i64(r, 0, 5), now_start = 0;
    bool here = strcmp(host, a->hostname) == 0 && *a->boot_id && strcmp(boot, a->boot_id) == 0 &&
                *a->pidns && strcmp(PQgetvalue(r, 0, 4), a->pidns) == 0;
    char st = 0;
    bool live = here ? pid > 0 && pid != (long)getpid() && proc_stat(pid, &st, &now_start) &&
                           st != 'Z' && now_start == start
                     : age < 2 * core_i64(r, 0, 6);
    if (live)
      snprintf(a->why, sizeof(a->why),
               "--replica-id %s is in use by a running server (host %s, pid %ld, seen %lld s "
               "ago): give every server sharing a database its own --replica-id%s",
               a->c->replica, host, pid, (long long)age,
               here ? "" : ", or wait for that server's lease to run out if it is gone");
  }
  PQclear(r);
  if (a->why[0]) return CORE_OK;
  const char *p[] = {a->c->replica, a->hostname, a->boot_id, a->pid, a->pidns, a->start, a->lease};
  if ((code = core_q(tx, conn, "replica_claim",
                     "INSERT INTO replicas (id, instance, hostname, boot_id, pid, pidns, "
                     "start_ticks, lease_s) VALUES ($1, gen_random_uuid(), $2, $3, $4::int, $5, "
                     "$6::bigint, $7::int) ON CONFLICT (id) DO UPDATE SET instance = "
                     "EXCLUDED.instance, hostname = EXCLUDED.hostname, boot_id = "
                     "EXCLUDED.boot_id, pid = EXCLUDED.pid, pidns = EXCLUDED.pidns, start_ticks = "
                     "EXCLUDED.start_ticks, lease_s = EXCLUDED.lease_s, started_at = now(), "
                     "seen_at = now() RETURNING instance",
                     7, p, &r)))
    return code;
  snprintf(a->instance, sizeof(a->instance), "%s", PQgetvalue(r, 0, 0));
  PQclear(r);
  return CORE_OK;
}

int core_replica_claim(core_compute *c, char *err, size_t errlen) {
  claim_arg a = {.c = c};
  if (gethostname(a.hostname, sizeof(a.hostname) - 1) != 0) a.hostname[0] = '\0';
  read_boot_id(a.boot_id, sizeof(a.boot_id));
  read_pidns(a.pidns, sizeof(a.pidns));
  snprintf(a.pid, sizeof(a.pid), "%ld", (long)getpid());
  char st;
  long long start = 0;
  proc_stat((long)getpid(), &st, &start);
  snprintf(a.start, sizeof(a.start), "%lld", start);
  snprintf(a.lease, sizeof(a.lease), "%d", c->cfg.lease_s);
  char msg[256];
  core_arena arena;
  core_arena_init(&arena);
  core_call call = {.alloc = &arena.alloc, .msg = msg, .msglen = sizeof(msg)};
  int code = core_run_tx(c->db, &call, claim_tx, &a);
  core_arena_free(&arena);
  if (code) return snprintf(err, errlen, "recording this replica: %s", msg), code;
  if (a.why[0]) return snprintf(err, errlen, "%s", a.why), CORE_FAILED_PRECONDITION;
  snprintf(c->instance, sizeof(c->instance), "%s", a.instance);
  return CORE_OK;
}

/* With the operation leases: the row says this replica is alive. */
void core_replica_beat(core_compute *c, store_conn *conn) {
  if (!c->instance[0]) return;
  const char *p[] = {c->replica, c->instance};
  PGresult *r = NULL;
  if (store_exec(conn, "replica_beat",
                 "UPDATE replicas SET seen_at = now() WHERE id = $1 AND instance = $2::uuid", 2, p,
                 &r) != STORE_OK)
    return;
  bool gone = strcmp(PQcmdTuples(r), "0") == 0;
  PQclear(r);
  if (gone)
    nc_log(NC_LOG_ERROR,
           "another server took over this --replica-id; two servers now resume each other's "
           "operations: stop one and give every server its own --replica-id",
           LKV_S("replica_id", c->replica));
}

void core_replica_release(core_compute *c) {
  if (!c->instance[0]) return;
  store_conn *conn = NULL;
  char err[256];
  if (store_pool_acquire(c->db, 2000, &conn, err, sizeof(err)) != STORE_OK) return;
  const char *p[] = {c->replica, c->instance};
  PGresult *r = NULL;
  if (store_exec(conn, "replica_release",
                 "DELETE FROM replicas WHERE id = $1 AND instance = $2::uuid", 2, p,
                 &r) == STORE_OK)
    PQclear(r);
  store_pool_release(conn);
}
