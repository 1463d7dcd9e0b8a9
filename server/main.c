/*
 * main.c - novacron-server: settings (flags > NOVACRON_* environment >
 * config file > defaults) -> logging -> RPC runtime with every service ->
 * run until SIGTERM/SIGINT -> graceful shutdown -> exit 0.
 *
 * Signals are blocked in every thread and taken synchronously with
 * sigwait() here, so no work happens in a signal handler.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "rpc/accesslog.h"
#include "rpc/rpc.h"
#include "store/migrate.h"
#include "store/pool.h"
#include "util/config.h"
#include "util/log.h"

extern char **environ;
extern const unsigned char nc_protoset[];
extern const size_t nc_protoset_len;

#define MIB (1024LL * 1024LL)

static const nc_cfg_setting settings[] = {
    {"config", NC_CFG_STRING, NULL, 0, 0,
     "Config file of key = value lines (keys are these flag names).", NULL},
    {"listen", NC_CFG_STRING, "0.0.0.0:8443", 0, 0,
     "Address to serve gRPC on (host:port; port 0 picks one).", NULL},
    {"tls-cert", NC_CFG_STRING, NULL, 0, 0,
     "PEM server certificate chain. Required unless --insecure.", NULL},
    {"tls-key", NC_CFG_STRING, NULL, 0, 0, "PEM private key of the server certificate.", NULL},
    {"tls-client-ca", NC_CFG_STRING, NULL, 0, 0,
     "PEM CA bundle that signs client certificates (mTLS).", NULL},
    {"tls-client-auth", NC_CFG_STRING, "none", 0, 0,
     "Client certificates: none, optional (verified when sent) or require (mTLS).",
     "none|optional|require"},
    {"insecure", NC_CFG_BOOL, "false", 0, 0,
     "Serve plaintext without TLS. For local experiments only; logs a warning.", NULL},
    {"log-level", NC_CFG_STRING, "info", 0, 0, "Minimum level of log records.",
     "debug|info|warn|error"},
    {"access-log", NC_CFG_BOOL, "true", 0, 0, "Log one record per finished call.", NULL},
    {"cq-threads", NC_CFG_INT, "0", 0, 64, "Completion-queue threads; 0 means one per CPU.", NULL},
    {"workers", NC_CFG_INT, "16", 1, 1024, "Threads that run blocking handlers.", NULL},
    {"worker-queue", NC_CFG_INT, "4096", 1, 1000000,
     "Calls that may wait for a worker before UNAVAILABLE.", NULL},
    {"requests-per-method", NC_CFG_INT, "4", 1, 64,
     "Requests kept posted per method per completion queue.", NULL},
    {"max-recv-message-bytes", NC_CFG_INT, "4194304", 1024, 256 * MIB,
     "Largest request message accepted.", NULL},
    {"max-send-message-bytes", NC_CFG_INT, "16777216", 1024, 256 * MIB,
     "Largest response message sent.", NULL},
    {"stream-queue", NC_CFG_INT, "256", 1, 1000000,
     "Messages buffered per stream before a slow consumer is cut off.", NULL},
    {"shutdown-grace-ms", NC_CFG_INT, "10000", 0, 600000,
     "How long in-flight calls may drain on shutdown before they are cancelled.", NULL},
    {"shutdown-delay-ms", NC_CFG_INT, "0", 0, 600000,
     "On shutdown, report NOT_SERVING for this long while still serving, so load balancers "
     "move away before calls are refused.",
     NULL},
    {"database-url", NC_CFG_STRING, NULL, 0, 0,
     "PostgreSQL connection string (libpq URI or key=value). When set, the schema is migrated "
     "at start and a schema newer than this server stops the start.",
     NULL},
    {"database-pool-size", NC_CFG_INT, "25", 1, 1000, "PostgreSQL connections kept by the server.",
     NULL},
    {"database-connect-timeout-ms", NC_CFG_INT, "5000", 100, 600000,
     "How long opening one PostgreSQL connection may take.", NULL},
    {"ready-file", NC_CFG_STRING, NULL, 0, 0,
     "Write the bound address here once serving (for scripts and tests).", NULL},
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

static int write_ready_file(const char *path, const char *addr) {
  char tmp[4096];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  size_t len = strlen(addr);
  bool ok = write(fd, addr, len) == (ssize_t)len && write(fd, "\n", 1) == 1;
  ok = (close(fd) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

/* Opens the pool and brings the schema up to date. NULL (logged) when the
 * database is unreachable, a migration fails or the schema is newer than
 * this server: the server does not start on a database it cannot use. */
static store_pool *open_database(const nc_cfg *cfg) {
  const char *url = nc_cfg_str(cfg, "database-url");
  char err[512] = "";
  store_pool *pool = NULL;
  store_conn *conn = NULL;
  int timeout = (int)nc_cfg_int(cfg, "database-connect-timeout-ms");
  store_status st = store_pool_new(url, (int)nc_cfg_int(cfg, "database-pool-size"), timeout, &pool,
                                   err, sizeof(err));
  if (st == STORE_OK) st = store_pool_acquire(pool, timeout, &conn, err, sizeof(err));
  int applied = 0;
  if (st == STORE_OK) st = store_migrate(conn, &applied, err, sizeof(err));
  store_pool_release(conn);
  if (st != STORE_OK) {
    nc_log(NC_LOG_ERROR, "cannot use the database", LKV_S("status", store_status_name(st)),
           LKV_S("error", err));
    store_pool_free(pool);
    return NULL;
  }
  nc_log(NC_LOG_INFO, "database ready", LKV_I("schema_version", store_migrations_latest()),
         LKV_I("migrations_applied", applied),
         LKV_I("pool_size", nc_cfg_int(cfg, "database-pool-size")));
  return pool;
}

int main(int argc, char **argv) {
  char err[1024] = "";
  nc_cfg *cfg = NULL;
  switch (nc_cfg_load(settings, NSETTINGS, argc, argv, environ, &cfg, err, sizeof(err))) {
  case NC_CFG_HELP:
    nc_cfg_print_help(stdout, settings, NSETTINGS, "novacron-server",
                      "NovaCron control plane: gRPC services for VMs, hosts, storage, networks,\n"
                      "identity, federation and backup, over libvirt and PostgreSQL.");
    return 0;
  case NC_CFG_VERSION: printf("novacron-server %s\n", NC_VERSION); return 0;
  case NC_CFG_ERROR: fprintf(stderr, "novacron-server: %s\n", err); return 2;
  case NC_CFG_OK: break;
  }
  if (nc_cfg_argc(cfg) > 0) {
    fprintf(stderr, "novacron-server: unexpected argument \"%s\" (see --help)\n",
            nc_cfg_arg(cfg, 0));
    nc_cfg_free(cfg);
    return 2;
  }
  nc_log_level level = NC_LOG_INFO;
  nc_log_parse_level(nc_cfg_str(cfg, "log-level"), &level);
  nc_log_set_level(level);

  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);

  const char *auth = nc_cfg_str(cfg, "tls-client-auth");
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  int cq_threads = (int)nc_cfg_int(cfg, "cq-threads");
  rpc_server_options opts = {
      .listen_addr = nc_cfg_str(cfg, "listen"),
      .insecure = nc_cfg_bool(cfg, "insecure"),
      .tls_cert_file = nc_cfg_str(cfg, "tls-cert"),
      .tls_key_file = nc_cfg_str(cfg, "tls-key"),
      .tls_client_ca_file = nc_cfg_str(cfg, "tls-client-ca"),
      .client_auth = strcmp(auth, "require") == 0    ? RPC_CLIENT_AUTH_REQUIRE
                     : strcmp(auth, "optional") == 0 ? RPC_CLIENT_AUTH_OPTIONAL
                                                     : RPC_CLIENT_AUTH_NONE,
      .cq_threads = cq_threads > 0 ? cq_threads : (ncpu > 0 ? (int)ncpu : 1),
      .workers = (int)nc_cfg_int(cfg, "workers"),
      .worker_queue_limit = (int)nc_cfg_int(cfg, "worker-queue"),
      .requests_per_method = (int)nc_cfg_int(cfg, "requests-per-method"),
      .max_recv_message_bytes = (int)nc_cfg_int(cfg, "max-recv-message-bytes"),
      .max_send_message_bytes = (int)nc_cfg_int(cfg, "max-send-message-bytes"),
      .stream_queue_limit = (int)nc_cfg_int(cfg, "stream-queue"),
      .shutdown_delay_ms = (int)nc_cfg_int(cfg, "shutdown-delay-ms"),
      .protoset = nc_protoset,
      .protoset_len = nc_protoset_len,
  };
  if (!opts.listen_addr) {
    fprintf(stderr, "novacron-server: --listen must not be empty\n");
    nc_cfg_free(cfg);
    return 2;
  }
  if (opts.insecure && (opts.tls_cert_file || opts.client_auth != RPC_CLIENT_AUTH_NONE)) {
    fprintf(stderr, "novacron-server: --insecure contradicts the TLS settings given\n");
    nc_cfg_free(cfg);
    return 2;
  }

  int rc = 1;
  rpc_server *srv = NULL;
  store_pool *db = NULL;
  if (nc_cfg_str(cfg, "database-url") && !(db = open_database(cfg))) goto out;
  if (rpc_server_create(&opts, &srv, err, sizeof(err)) != 0 ||
      api_register_all(srv, err, sizeof(err)) != 0) {
    nc_log(NC_LOG_ERROR, "cannot start", LKV_S("error", err));
    goto out;
  }
  if (nc_cfg_bool(cfg, "access-log")) rpc_server_add_interceptor(srv, &rpc_access_log_interceptor);
  char bound[256];
  if (rpc_server_start(srv, bound, sizeof(bound), err, sizeof(err)) != 0) {
    nc_log(NC_LOG_ERROR, "cannot start", LKV_S("error", err));
    goto out;
  }
  if (opts.insecure)
    nc_log(NC_LOG_WARN,
           "serving PLAINTEXT without TLS (--insecure): credentials and data cross "
           "the network unencrypted",
           LKV_S("listen", bound));
  nc_log(NC_LOG_INFO, "serving", LKV_S("version", NC_VERSION), LKV_S("listen", bound),
         LKV_B("tls", !opts.insecure), LKV_S("client_auth", auth),
         LKV_I("cq_threads", opts.cq_threads), LKV_I("workers", opts.workers));
  const char *ready = nc_cfg_str(cfg, "ready-file");
  if (ready && write_ready_file(ready, bound) != 0)
    nc_log(NC_LOG_WARN, "could not write the ready file", LKV_S("path", ready),
           LKV_S("error", strerror(errno)));

  int sig = 0;
  while (sigwait(&sigs, &sig) != 0) {
  }
  nc_log(NC_LOG_INFO, "shutting down", LKV_S("signal", strsignal(sig)),
         LKV_I("grace_ms", nc_cfg_int(cfg, "shutdown-grace-ms")));
  rpc_server_shutdown(srv, (int)nc_cfg_int(cfg, "shutdown-grace-ms"));
  if (ready) unlink(ready);
  nc_log(NC_LOG_INFO, "stopped");
  rc = 0;
out:
  rpc_server_destroy(srv);
  store_pool_free(db);
  nc_cfg_free(cfg);
  return rc;
}
