/*
 * harness.h - runs a real novacron-server for integration tests: fork/exec
 * of $NC_SERVER_BIN on 127.0.0.1:0 with a ready file in a private temporary
 * directory, waiting until it serves, and stopping it (SIGTERM, bounded
 * wait, SIGKILL as a last resort). Certificates come from $NC_CERT_DIR
 * (the files scripts/gen-certs makes).
 */
#ifndef NC_TEST_HARNESS_H
#define NC_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct harness_server {
  pid_t pid;         /* 0 once reaped */
  char dir[256];     /* private temporary directory */
  char ready[320];   /* the ready file in it */
  char address[128]; /* "127.0.0.1:PORT" once serving */
  int exit_status;   /* waitpid status once reaped */
} harness_server;

/* How the server is started. */
typedef struct harness_options {
  bool insecure;                 /* --insecure instead of TLS with server.crt/key */
  bool mtls;                     /* --tls-client-auth require --tls-client-ca ca.crt */
  const char *const *extra_args; /* more flags, NULL-terminated; may be NULL */
} harness_options;

/* The path of NAME in $NC_CERT_DIR, written into buf; NULL when the
 * variable is unset or the path does not fit. */
const char *harness_cert_path(const char *name, char *buf, size_t len);

/* Starts the server and waits (up to 10 s) until its ready file names the
 * bound address. 0 on success; -1 after explaining on stderr (the server
 * is then stopped and reaped). opts may be NULL. */
int harness_server_start(harness_server *srv, const harness_options *opts);

/* Sends a signal to the running server. */
int harness_server_signal(harness_server *srv, int sig);

/* Waits up to timeout_ms for the server to exit; 0 and srv->exit_status
 * set when it did, -1 on timeout. */
int harness_server_wait(harness_server *srv, int timeout_ms);

/* SIGTERM, wait up to timeout_ms, then SIGKILL; removes the temporary
 * directory. Returns the exit code (0-255) of a normal exit, -1 when the
 * server had to be killed or died of a signal. Safe to call twice. */
int harness_server_stop(harness_server *srv, int timeout_ms);

/* The password of the `admin` user the first server on the test database
 * created (NC_ADMIN_PASSWORD or the suite's default). */
const char *harness_admin_password(void);

#endif
