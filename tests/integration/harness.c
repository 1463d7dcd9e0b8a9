/*
 * harness.c - a real novacron-server as a child process for integration
 * tests (see harness.h). The child gets PR_SET_PDEATHSIG so a crashed test
 * never leaves a server behind.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HARNESS_READY_TIMEOUT_MS 10000
#define HARNESS_MAX_ARGS 48

static void sleep_ms(int ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *harness_cert_path(const char *name, char *buf, size_t len) {
  const char *dir = getenv("NC_CERT_DIR");
  if (!dir || !*dir) return NULL;
  int n = snprintf(buf, len, "%s/%s", dir, name);
  return n > 0 && (size_t)n < len ? buf : NULL;
}

/* Reads the bound address from the ready file; false until it exists. */
static bool read_ready(harness_server *srv) {
  char buf[sizeof(srv->address)];
  bool ok = false;
  int fd = open(srv->ready, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  if (n > 0) {
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    if (buf[0]) {
      snprintf(srv->address, sizeof(srv->address), "%s", buf);
      ok = true;
    }
  }
  close(fd);
  return ok;
}

int harness_server_wait(harness_server *srv, int timeout_ms) {
  long long until = now_ms() + timeout_ms;
  if (srv->pid <= 0) return 0;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(srv->pid, &status, WNOHANG);
    if (r == srv->pid || (r < 0 && errno == ECHILD)) {
      srv->exit_status = status;
      srv->pid = 0;
      return 0;
    }
    if (now_ms() >= until) return -1;
    sleep_ms(10);
  }
}

int harness_server_signal(harness_server *srv, int sig) {
  return srv->pid > 0 ? kill(srv->pid, sig) : -1;
}

int harness_server_stop(harness_server *srv, int timeout_ms) {
  int rc = -1;
  bool killed = false;
  if (srv->pid > 0) {
    kill(srv->pid, SIGTERM);
    if (harness_server_wait(srv, timeout_ms) != 0) {
      fprintf(stderr, "harness: server %d ignored SIGTERM for %d ms; killing it\n", (int)srv->pid,
              timeout_ms);
      kill(srv->pid, SIGKILL);
      harness_server_wait(srv, 60000);
      killed = true;
    }
  }
  if (!killed && WIFEXITED(srv->exit_status)) rc = WEXITSTATUS(srv->exit_status);
  if (srv->dir[0]) {
    unlink(srv->ready);
    char tmp[sizeof(srv->ready) + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", srv->ready);
    unlink(tmp);
    rmdir(srv->dir);
    srv->dir[0] = '\0';
  }
  return rc;
}

const char *harness_admin_password(void) {
  const char *pw = getenv("NC_ADMIN_PASSWORD");
  return pw && *pw ? pw : "e2e-Bootstrap-Passw0rd-7x";
}

int harness_server_start(harness_server *srv, const harness_options *opts) {
  static const harness_options defaults = {0};
  const char *bin = getenv("NC_SERVER_BIN");
  const char *args[HARNESS_MAX_ARGS];
  char cert[512], key[512], ca[512];
  size_t n = 0;

  memset(srv, 0, sizeof(*srv));
  if (!opts) opts = &defaults;
  if (!bin || !*bin) {
    fprintf(stderr, "harness: NC_SERVER_BIN is not set\n");
    return -1;
  }
  const char *tmpdir = getenv("TMPDIR");
  snprintf(srv->dir, sizeof(srv->dir), "%s/nc-test-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
  if (!mkdtemp(srv->dir)) {
    fprintf(stderr, "harness: mkdtemp %s: %s\n", srv->dir, strerror(errno));
    srv->dir[0] = '\0';
    return -1;
  }
  snprintf(srv->ready, sizeof(srv->ready), "%s/ready", srv->dir);

  args[n++] = bin;
  args[n++] = "--listen";
  args[n++] = "127.0.0.1:0";
  args[n++] = "--ready-file";
  args[n++] = srv->ready;
  args[n++] = "--log-level";
  args[n++] = "warn";
  /* servers of concurrent tests share databases: each its own replica */
  const char *base = strrchr(srv->dir, '/');
  args[n++] = "--replica-id";
  args[n++] = base ? base + 1 : srv->dir;
  if (opts->insecure) {
    args[n++] = "--insecure";
  } else {
    if (!harness_cert_path("server.crt", cert, sizeof(cert)) ||
        !harness_cert_path("server.key", key, sizeof(key)) ||
        !harness_cert_path("ca.crt", ca, sizeof(ca))) {
      fprintf(stderr, "harness: NC_CERT_DIR is not set\n");
      harness_server_stop(srv, 0);
      return -1;
    }
    args[n++] = "--tls-cert";
    args[n++] = cert;
    args[n++] = "--tls-key";
    args[n++] = key;
    if (opts->mtls) {
      args[n++] = "--tls-client-ca";
      args[n++] = ca;
      args[n++] = "--tls-client-auth";
      args[n++] = "require";
    }
  }
  for (size_t i = 0; opts->extra_args && opts->extra_args[i]; i++) {
    if (n + 1 >= HARNESS_MAX_ARGS) {
      fprintf(stderr, "harness: too many server arguments\n");
      harness_server_stop(srv, 0);
      return -1;
    }
    args[n++] = opts->extra_args[i];
  }
  args[n] = NULL;

  pid_t parent = getpid();
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) {
    fprintf(stderr, "harness: fork: %s\n", strerror(errno));
    harness_server_stop(srv, 0);
    return -1;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    /* identity: the fixture's database, a signing secret and the first
     * administrator's password (the same ones harness.py uses) */
    const char *url = getenv("NC_DATABASE_URL");
    if (url) setenv("NOVACRON_DATABASE_URL", url, 1);
    const char *secret = getenv("NC_TOKEN_SECRET");
    setenv("NOVACRON_TOKEN_SECRET",
           secret && *secret ? secret : "integration-test-signing-secret-3f9c1e7a5b2d8046", 1);
    setenv("NOVACRON_ADMIN_PASSWORD", harness_admin_password(), 1);
    execv(bin, (char *const *)args);
    fprintf(stderr, "harness: exec %s: %s\n", bin, strerror(errno));
    _exit(127);
  }
  srv->pid = pid;

  long long until = now_ms() + HARNESS_READY_TIMEOUT_MS;
  while (!read_ready(srv)) {
    if (harness_server_wait(srv, 0) == 0) {
      fprintf(stderr, "harness: %s exited before serving (status 0x%x)\n", bin,
              (unsigned)srv->exit_status);
      harness_server_stop(srv, 0);
      return -1;
    }
    if (now_ms() >= until) {
      fprintf(stderr, "harness: %s not ready after %d ms\n", bin, HARNESS_READY_TIMEOUT_MS);
      harness_server_stop(srv, 5000);
      return -1;
    }
    sleep_ms(20);
  }
  return 0;
}
