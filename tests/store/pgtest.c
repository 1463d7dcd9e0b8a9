/*
 * pgtest.c - see pgtest.h. Commands run with fork/exec and an argument
 * vector (never a shell); their output goes to <dir>/commands.log, which is
 * printed when one fails. The socket directory is private to the cluster,
 * so the port only names the socket file and cannot collide.
 */
#include "pgtest.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PGTEST_PORT "5432"
#define PGTEST_USER "nctest"

struct pgtest {
  char dir[64];
  char data[96];
  char bindir[256];
  char conninfo[256];
  bool as_postgres;
  bool running;
};

/* The newest /usr/lib/postgresql/<major>/bin (like nc_pg_bindir). */
static bool find_bindir(char *out, size_t outlen) {
  glob_t g;
  if (glob("/usr/lib/postgresql/*/bin", 0, NULL, &g) != 0) return false;
  long best = -1;
  for (size_t i = 0; i < g.gl_pathc; i++) {
    long major = strtol(g.gl_pathv[i] + strlen("/usr/lib/postgresql/"), NULL, 10);
    if (major > best) {
      best = major;
      snprintf(out, outlen, "%s", g.gl_pathv[i]);
    }
  }
  globfree(&g);
  return best >= 0;
}

static void print_log(const pgtest *pg) {
  char path[128];
  snprintf(path, sizeof(path), "%s/commands.log", pg->dir);
  FILE *f = fopen(path, "r");
  if (!f) return;
  char line[512];
  while (fgets(line, sizeof(line), f))
    fprintf(stderr, "  | %s", line);
  fclose(f);
}

/* Runs <bindir>/<prog> args... (as postgres when root); true on exit 0. */
static bool run(const pgtest *pg, const char *prog, const char *const *args) {
  char path[320];
  snprintf(path, sizeof(path), "%s/%s", pg->bindir, prog);
  const char *argv[24];
  size_t n = 0;
  if (pg->as_postgres) {
    argv[n++] = "runuser";
    argv[n++] = "-u";
    argv[n++] = "postgres";
    argv[n++] = "--";
  }
  argv[n++] = path;
  for (size_t i = 0; args[i] && n < 23; i++)
    argv[n++] = args[i];
  argv[n] = NULL;

  char logpath[128];
  snprintf(logpath, sizeof(logpath), "%s/commands.log", pg->dir);
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    execvp(argv[0], (char *const *)argv);
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return true;
  fprintf(stderr, "pgtest: %s failed; log:\n", prog);
  print_log(pg);
  return false;
}

static bool append_conf(const pgtest *pg) {
  char path[160];
  snprintf(path, sizeof(path), "%s/postgresql.conf", pg->data);
  FILE *f = fopen(path, "a");
  if (!f) return false;
  fprintf(f,
          "\n# pgtest: private unix socket only, durability off for speed\n"
          "listen_addresses = ''\n"
          "unix_socket_directories = '%s'\n"
          "port = " PGTEST_PORT
          "\n"
          "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
          "max_connections = 60\n",
          pg->dir);
  return fclose(f) == 0;
}

bool pgtest_resume(pgtest *pg) {
  char logfile[128];
  snprintf(logfile, sizeof(logfile), "%s/server.log", pg->dir);
  const char *args[] = {"start", "-w", "-t", "30", "-s", "-D", pg->data, "-l", logfile, NULL};
  pg->running = run(pg, "pg_ctl", args);
  return pg->running;
}

bool pgtest_stop(pgtest *pg) {
  const char *args[] = {"stop", "-w", "-m", "fast", "-s", "-D", pg->data, NULL};
  bool ok = run(pg, "pg_ctl", args);
  if (ok) pg->running = false;
  return ok;
}

bool pgtest_createdb(pgtest *pg, const char *dbname) {
  const char *args[] = {"-h", pg->dir, "-p", PGTEST_PORT, "-U", PGTEST_USER, dbname, NULL};
  return run(pg, "createdb", args);
}

pgtest *pgtest_start(const char *dbname) {
  pgtest *pg = calloc(1, sizeof(*pg));
  if (!pg) return NULL;
  if (!find_bindir(pg->bindir, sizeof(pg->bindir))) {
    fprintf(stderr, "pgtest: no /usr/lib/postgresql/*/bin (install postgresql)\n");
    free(pg);
    return NULL;
  }
  snprintf(pg->dir, sizeof(pg->dir), "/tmp/nc-pgtest-XXXXXX");
  if (!mkdtemp(pg->dir)) {
    perror("pgtest: mkdtemp");
    free(pg);
    return NULL;
  }
  snprintf(pg->data, sizeof(pg->data), "%s/data", pg->dir);
  if (geteuid() == 0) {
    struct passwd *pw = getpwnam("postgres");
    if (!pw || chown(pg->dir, pw->pw_uid, pw->pw_gid) != 0) {
      fprintf(stderr, "pgtest: running as root needs a `postgres` user to own %s\n", pg->dir);
      pgtest_destroy(pg);
      return NULL;
    }
    pg->as_postgres = true;
  }
  const char *initdb[] = {"-D",   pg->data,           "-U", PGTEST_USER, "-A", "trust", "-E",
                          "UTF8", "--locale=C.UTF-8", "-N", NULL};
  if (!run(pg, "initdb", initdb) || !append_conf(pg) || !pgtest_resume(pg) ||
      !pgtest_createdb(pg, dbname)) {
    pgtest_destroy(pg);
    return NULL;
  }
  snprintf(pg->conninfo, sizeof(pg->conninfo),
           "host=%s port=" PGTEST_PORT " user=" PGTEST_USER " dbname=%s", pg->dir, dbname);
  return pg;
}

const char *pgtest_conninfo(const pgtest *pg) { return pg->conninfo; }

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  return remove(path);
}

void pgtest_destroy(pgtest *pg) {
  if (!pg) return;
  if (pg->running) pgtest_stop(pg);
  nftw(pg->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(pg);
}
