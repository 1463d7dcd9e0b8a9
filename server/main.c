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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "core/audit.h"
#include "core/compute.h"
#include "core/events.h"
#include "core/identity.h"
#include "rpc/accesslog.h"
#include "rpc/ratelimit.h"
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
     "PostgreSQL connection string (libpq URI or key=value). Required. The schema is migrated "
     "at start; a schema newer than this server stops the start.",
     NULL},
    {"database-pool-size", NC_CFG_INT, "25", 1, 1000, "PostgreSQL connections kept by the server.",
     NULL},
    {"database-connect-timeout-ms", NC_CFG_INT, "5000", 100, 600000,
     "How long opening one PostgreSQL connection may take.", NULL},
    {"token-secret-file", NC_CFG_STRING, NULL, 0, 0,
     "File holding the secret that signs access tokens (at least 32 bytes, not a known "
     "default). Required unless NOVACRON_TOKEN_SECRET is set.",
     NULL},
    {"token-key-file", NC_CFG_STRING, NULL, 0, 0,
     "PEM private key (RSA of 2048+ bits, or EC P-256; mode 0600) to sign access tokens with "
     "RS256/ES256 instead of HS256. The secret is still required.",
     NULL},
    {"token-previous-secret-file", NC_CFG_STRING, NULL, 0, 0,
     "File holding the previous signing secret, still accepted for --token-previous-grace-s "
     "after start (secret rotation).",
     NULL},
    {"token-previous-grace-s", NC_CFG_INT, "86400", 0, 31 * 86400,
     "How long tokens signed with the previous secret stay valid after start.", NULL},
    {"token-issuer", NC_CFG_STRING, "novacron", 0, 0,
     "The iss and aud claim of access tokens (give each cluster its own).", NULL},
    {"access-token-ttl-s", NC_CFG_INT, "900", 30, 86400, "Lifetime of an access token.", NULL},
    {"session-ttl-s", NC_CFG_INT, "604800", 300, 90 * 86400,
     "Lifetime of a login session (its refresh tokens), from login.", NULL},
    {"password-min-length", NC_CFG_INT, "12", 8, 256, "Minimum password length in characters.",
     NULL},
    {"login-max-failures", NC_CFG_INT, "5", 1, 1000,
     "Failed logins within --login-window-s that lock a user out.", NULL},
    {"login-window-s", NC_CFG_INT, "900", 1, 86400, "Window in which failed logins count.", NULL},
    {"login-lockout-s", NC_CFG_INT, "900", 1, 86400, "How long a locked-out user must wait.", NULL},
    {"service-principals", NC_CFG_STRING, NULL, 0, 0,
     "Client-certificate CNs accepted as service principals: CN=system-admin or "
     "CN=projects/P:viewer|operator|admin, comma-separated.",
     NULL},
    {"admin-password-file", NC_CFG_STRING, NULL, 0, 0,
     "First start only: where to write the generated password of the admin user (mode 0600), "
     "unless NOVACRON_ADMIN_PASSWORD gives one.",
     NULL},
    {"rate-limit-rps", NC_CFG_INT, "100", 0, 1000000,
     "Calls per second allowed to each authenticated principal (0: unlimited).", NULL},
    {"rate-limit-burst", NC_CFG_INT, "200", 1, 1000000, "Burst size of the per-principal limit.",
     NULL},
    {"rate-limit-anonymous-rps", NC_CFG_INT, "10", 0, 1000000,
     "Unauthenticated calls (Login, RefreshToken) per second per client host (0: unlimited).",
     NULL},
    {"rate-limit-anonymous-burst", NC_CFG_INT, "30", 1, 1000000,
     "Burst size of the per-host limit on unauthenticated calls.", NULL},
    {"audit-queue", NC_CFG_INT, "100000", 100, 10000000,
     "Audit records held in memory while PostgreSQL is unreachable.", NULL},
    {"replica-id", NC_CFG_STRING, NULL, 0, 0,
     "Names this server's claims on operations; must be unique among replicas sharing the "
     "database and stable across restarts, so a restarted replica resumes its own work at once "
     "(default: the hostname).",
     NULL},
    {"compute-workers", NC_CFG_INT, "4", 1, 256,
     "Threads that run operations (hypervisor work) on this replica.", NULL},
    {"operation-lease-s", NC_CFG_INT, "30", 5, 3600,
     "An operation whose replica stopped renewing its claim for this long is taken over by "
     "another replica.",
     NULL},
    {"host-heartbeat-s", NC_CFG_INT, "10", 1, 3600,
     "How often every host is probed (liveness, free memory).", NULL},
    {"reconcile-interval-s", NC_CFG_INT, "60", 1, 86400,
     "How often every host's domains are compared with the database (libvirt events trigger it "
     "per VM in between).",
     NULL},
    {"default-host-uri", NC_CFG_STRING, "test:///default", 0, 0,
     "libvirt URI registered as hosts/default on first start (empty: none). The default is "
     "libvirt's built-in test hypervisor.",
     NULL},
    {"placement", NC_CFG_STRING, "spread", 0, 0,
     "Scheduler strategy: spread VMs over the emptiest hosts, or pack them onto the fullest.",
     "spread|pack"},
    {"cpu-overcommit-percent", NC_CFG_INT, "400", 100, 10000,
     "vCPUs the scheduler may allocate per host CPU, in percent.", NULL},
    {"memory-overcommit-percent", NC_CFG_INT, "100", 50, 1000,
     "Memory the scheduler may allocate per host MiB, in percent.", NULL},
    {"default-pool", NC_CFG_STRING, "default", 0, 0,
     "Pool id a VM's new volume uses on the VM's host when it names no pool.", NULL},
    {"storage-image-dirs", NC_CFG_STRING, "", 0, 0,
     "Comma-separated absolute directories on the hosts that CreateVolume may import images "
     "from (empty: image imports are refused).",
     NULL},
    {"device-detach-timeout-s", NC_CFG_INT, "30", 1, 600,
     "How long DetachVolume and DetachNic wait for a running guest to release the device.", NULL},
    {"storage-image-urls", NC_CFG_STRING, "", 0, 0,
     "Comma-separated http(s) URL prefixes CreateVolume may download images from (empty: URL "
     "imports are refused).",
     NULL},
    {"event-retention-s", NC_CFG_INT, "86400", 60, 31536000,
     "How long the event log keeps events for WatchEvents replays.", NULL},
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

/* Reads a secret file (trailing newlines dropped) into buf. -1 with a
 * reason when unreadable, empty or readable by others. */
static int read_secret_file(const char *path, char *buf, size_t len, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  if (st.st_mode & 0077) {
    close(fd);
    snprintf(err, errlen, "%s is readable by other users: chmod 600 it", path);
    return -1;
  }
  ssize_t n = read(fd, buf, len - 1);
  close(fd);
  if (n <= 0) {
    snprintf(err, errlen, "%s is empty", path);
    return -1;
  }
  buf[n] = '\0';
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
    buf[--n] = '\0';
  return 0;
}

/* The identity service: signing secrets, policy, lockout, service
 * principals, then the first-start bootstrap. NULL (logged) on failure. */
static core_identity *open_identity(const nc_cfg *cfg, store_pool *db) {
  char err[512] = "";
  char secret[4096] = "", previous[4096] = "", keypem[16384] = "";
  const char *file = nc_cfg_str(cfg, "token-secret-file");
  const char *env = getenv("NOVACRON_TOKEN_SECRET");
  core_identity *id = NULL;
  if (file) {
    if (read_secret_file(file, secret, sizeof(secret), err, sizeof(err)) != 0) goto out;
  } else if (env && *env) {
    snprintf(secret, sizeof(secret), "%s", env);
  } else {
    snprintf(err, sizeof(err),
             "no token signing secret: set --token-secret-file or NOVACRON_TOKEN_SECRET (at least "
             "32 random bytes, e.g. openssl rand -base64 48)");
    goto out;
  }
  const char *pfile = nc_cfg_str(cfg, "token-previous-secret-file");
  if (pfile && read_secret_file(pfile, previous, sizeof(previous), err, sizeof(err)) != 0) goto out;
  const char *kfile = nc_cfg_str(cfg, "token-key-file");
  if (kfile && read_secret_file(kfile, keypem, sizeof(keypem), err, sizeof(err)) != 0) goto out;
  core_identity_config ic;
  core_identity_config_default(&ic);
  ic.issuer = nc_cfg_str(cfg, "token-issuer");
  ic.access_ttl_s = nc_cfg_int(cfg, "access-token-ttl-s");
  ic.session_ttl_s = nc_cfg_int(cfg, "session-ttl-s");
  ic.login_max_failures = (int)nc_cfg_int(cfg, "login-max-failures");
  ic.login_window_s = nc_cfg_int(cfg, "login-window-s");
  ic.lockout_s = nc_cfg_int(cfg, "login-lockout-s");
  ic.policy.min_length = (size_t)nc_cfg_int(cfg, "password-min-length");
  ic.signing_secret = secret;
  ic.previous_secret = previous[0] ? previous : NULL;
  ic.previous_not_after = (int64_t)time(NULL) + nc_cfg_int(cfg, "token-previous-grace-s");
  ic.service_principals = nc_cfg_str(cfg, "service-principals");
  ic.signing_key_pem = keypem[0] ? keypem : NULL;
  if (core_identity_new(db, &ic, &id, err, sizeof(err)) != 0) goto out;
  bool created = false;
  const char *pwfile = nc_cfg_str(cfg, "admin-password-file");
  if (core_identity_bootstrap(id, getenv("NOVACRON_ADMIN_PASSWORD"), pwfile, &created, err,
                              sizeof(err)) != 0) {
    core_identity_free(id);
    id = NULL;
    goto out;
  }
  if (created)
    nc_log(NC_LOG_INFO, "first start: created the system administrator \"admin\"",
           LKV_S("password",
                 getenv("NOVACRON_ADMIN_PASSWORD") ? "from NOVACRON_ADMIN_PASSWORD" : pwfile));
out:
  explicit_bzero(secret, sizeof(secret));
  explicit_bzero(previous, sizeof(previous));
  explicit_bzero(keypem, sizeof(keypem));
  if (!id) nc_log(NC_LOG_ERROR, "cannot start", LKV_S("error", err));
  return id;
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
  api_ctx actx = {0};
  rpc_ratelimit *rl = NULL;
  const char *dburl = nc_cfg_str(cfg, "database-url");
  if (!dburl || !*dburl) {
    nc_log(NC_LOG_ERROR, "cannot start",
           LKV_S("error",
                 "--database-url (or NOVACRON_DATABASE_URL) is required: identity, "
                 "audit and every resource live in PostgreSQL"));
    goto out;
  }
  if (!(db = open_database(cfg))) goto out;
  if (!(actx.identity = open_identity(cfg, db))) goto out;
  if (!(actx.audit = core_audit_new(db, (int)nc_cfg_int(cfg, "audit-queue")))) goto out;
  core_events_config ecfg = {.conninfo = dburl,
                             .retention_s = (int)nc_cfg_int(cfg, "event-retention-s")};
  if (!(actx.events = core_events_new(db, &ecfg, err, sizeof(err)))) {
    nc_log(NC_LOG_ERROR, "cannot start", LKV_S("error", err));
    goto out;
  }
  core_compute_config ccfg = {
      .replica_id = nc_cfg_str(cfg, "replica-id"),
      .workers = (int)nc_cfg_int(cfg, "compute-workers"),
      .lease_s = (int)nc_cfg_int(cfg, "operation-lease-s"),
      .heartbeat_s = (int)nc_cfg_int(cfg, "host-heartbeat-s"),
      .reconcile_s = (int)nc_cfg_int(cfg, "reconcile-interval-s"),
      .default_host_uri = nc_cfg_str(cfg, "default-host-uri"),
      .placement_pack = strcmp(nc_cfg_str(cfg, "placement"), "pack") == 0,
      .cpu_overcommit = (double)nc_cfg_int(cfg, "cpu-overcommit-percent") / 100.0,
      .memory_overcommit = (double)nc_cfg_int(cfg, "memory-overcommit-percent") / 100.0,
      /* half the handler threads may block in WaitOperation */
      .wait_slots = (int)(nc_cfg_int(cfg, "workers") / 2 > 0 ? nc_cfg_int(cfg, "workers") / 2 : 1),
      .default_pool = nc_cfg_str(cfg, "default-pool"),
      .image_dirs = nc_cfg_str(cfg, "storage-image-dirs"),
      .image_urls = nc_cfg_str(cfg, "storage-image-urls"),
      .detach_timeout_s = (int)nc_cfg_int(cfg, "device-detach-timeout-s"),
  };
  if (!(actx.compute = core_compute_new(db, actx.events, &ccfg, err, sizeof(err)))) {
    nc_log(NC_LOG_ERROR, "cannot start", LKV_S("error", err));
    goto out;
  }
  rpc_ratelimit_options rlo = {
      .rate = (double)nc_cfg_int(cfg, "rate-limit-rps"),
      .burst = (double)nc_cfg_int(cfg, "rate-limit-burst"),
      .anon_rate = (double)nc_cfg_int(cfg, "rate-limit-anonymous-rps"),
      .anon_burst = (double)nc_cfg_int(cfg, "rate-limit-anonymous-burst"),
  };
  if (!(rl = rpc_ratelimit_new(&rlo))) goto out;
  if (rpc_server_create(&opts, &srv, err, sizeof(err)) != 0 ||
      api_register_all(srv, &actx, err, sizeof(err)) != 0) {
    nc_log(NC_LOG_ERROR, "cannot start", LKV_S("error", err));
    goto out;
  }
  /* access log first (it sees every call), then who is calling, then how
   * often they may */
  if (nc_cfg_bool(cfg, "access-log")) rpc_server_add_interceptor(srv, &rpc_access_log_interceptor);
  rpc_interceptor authz = api_authz_interceptor(&actx);
  rpc_server_add_interceptor(srv, &authz);
  rpc_interceptor limit = rpc_ratelimit_interceptor(rl);
  rpc_server_add_interceptor(srv, &limit);
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
  core_compute_free(actx.compute);
  core_events_free(actx.events);
  core_audit_free(actx.audit, 5000);
  core_identity_free(actx.identity);
  rpc_ratelimit_free(rl);
  store_pool_free(db);
  nc_cfg_free(cfg);
  return rc;
}
