/*
 * hv.c - libvirt connections: the process-wide event loop thread, the
 * table of hosts (one connection each, reconnected when lost), lifecycle
 * events, host info, URI checks and libvirt error conversion.
 *
 * Locking: hv.mu guards the host table; each host has `mu` for its fields
 * (held only briefly, never across a libvirt call) and `cmu`, which
 * serializes connecting and tearing down. A call borrows the connection
 * with its own virConnectRef, so a close or reconnect never pulls it away
 * mid-call. Host entries are refcounted: the table, each borrowing call,
 * an installed connection and its lifecycle event registration each hold
 * one.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "hv/internal.h"
#include "util/log.h"
#include "util/timeutil.h"

struct hv_host {
  hv *h;
  char *id;
  atomic_int refs;
  pthread_mutex_t cmu; /* connect/teardown */
  pthread_mutex_t mu;  /* the fields below */
  char *uri;
  virConnectPtr conn; /* NULL when not connected */
  int event_id;       /* lifecycle callback id on conn, -1 when none */
  bool lost;          /* conn is dead; torn down at the next attempt */
  bool down_reported; /* on_conn(false) told (or the first open failed) */
  bool removed;       /* hv_host_close ran */
  long long last_try_ms;
  char last_error[256];
  hv_host_info info;
  hv_host *next;
};

struct hv {
  hv_event_fn on_event;
  hv_conn_fn on_conn;
  void *arg;
  pthread_mutex_t mu;
  pthread_cond_t cond; /* signalled when a host entry is freed */
  hv_host *hosts;
  int nhosts_alive; /* entries not yet freed, in or out of the table */
};

enum { RECONNECT_INTERVAL_MS = 1000, LOOP_TICK_MS = 500, KEEPALIVE_S = 5, KEEPALIVE_COUNT = 3 };

/* ---------------------------------------------------------------------- */
/* errors                                                                  */

int hv_fail(int code, char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return code;
}

static int code_of(const virError *e) {
  if (!e) return HV_INTERNAL;
  switch (e->code) {
  case VIR_ERR_OK: return HV_INTERNAL;
  case VIR_ERR_NO_DOMAIN:
  case VIR_ERR_NO_DOMAIN_SNAPSHOT:
  case VIR_ERR_NO_DOMAIN_CHECKPOINT: return HV_NOT_FOUND;
  case VIR_ERR_DOM_EXIST: return HV_ALREADY_EXISTS;
  case VIR_ERR_OPERATION_INVALID:
  case VIR_ERR_NO_NETWORK:
  case VIR_ERR_NO_STORAGE_POOL:
  case VIR_ERR_NO_STORAGE_VOL:
  case VIR_ERR_SNAPSHOT_REVERT_RISKY:
  case VIR_ERR_MIGRATE_UNSAFE: return HV_FAILED_PRECONDITION;
  case VIR_ERR_NO_SUPPORT:
  case VIR_ERR_OPERATION_UNSUPPORTED:
  case VIR_ERR_ARGUMENT_UNSUPPORTED: return HV_UNIMPLEMENTED;
  case VIR_ERR_INVALID_ARG:
  case VIR_ERR_XML_ERROR:
  case VIR_ERR_XML_DETAIL:
  case VIR_ERR_CONFIG_UNSUPPORTED:
  case VIR_ERR_INVALID_MAC: return HV_INVALID_ARGUMENT;
  case VIR_ERR_SYSTEM_ERROR:
  case VIR_ERR_RPC:
  case VIR_ERR_NO_CONNECT:
  case VIR_ERR_INVALID_CONN:
  case VIR_ERR_AUTH_FAILED:
  case VIR_ERR_AUTH_UNAVAILABLE:
  case VIR_ERR_AUTH_CANCELLED:
  case VIR_ERR_OPERATION_TIMEOUT:
  case VIR_ERR_AGENT_UNRESPONSIVE: return HV_UNAVAILABLE;
  default: break;
  }
  /* "client socket is closed" and friends come as internal errors of the
   * RPC layer. */
  if (e->domain == VIR_FROM_RPC || e->domain == VIR_FROM_REMOTE) return HV_UNAVAILABLE;
  return HV_INTERNAL;
}

static int convert(const virError *e, const char *what, char *err, size_t errlen) {
  int code = code_of(e);
  if (e && e->message)
    hv_fail(code, err, errlen, "%s: %s", what, e->message);
  else
    hv_fail(code, err, errlen, "%s failed", what);
  return code;
}

int hv_virerr(const char *what, char *err, size_t errlen) {
  return convert(virGetLastError(), what, err, errlen);
}

int hv_virerr_code(void) {
  virErrorPtr e = virGetLastError();
  return e ? e->code : 0;
}

bool hv_uuid_valid(const char *uuid) {
  if (!uuid || strlen(uuid) != 36) return false;
  for (int i = 0; i < 36; i++) {
    char c = uuid[i];
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? c != '-'
             : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
      return false;
  }
  return true;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void copy_str(char *dst, size_t size, const char *src) {
  snprintf(dst, size, "%s", src ? src : "");
}

/* ---------------------------------------------------------------------- */
/* the event loop: one thread per process, shared by every hv              */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc = -1;
static pthread_mutex_t loop_mu = PTHREAD_MUTEX_INITIALIZER;
static int loop_refs;
static pthread_t loop_thread;
static atomic_bool loop_quit;
static int loop_timer = -1;

/* libvirt prints every error on stderr by default; ours are converted. */
static void quiet_errors(void *arg, virErrorPtr e) {
  (void)arg;
  (void)e;
}

static void init_process(void) {
  hv_xml_init();
  if (virInitialize() < 0) return;
  virSetErrorFunc(NULL, quiet_errors);
  if (virEventRegisterDefaultImpl() < 0) return;
  init_rc = 0;
}

/* The periodic tick wakes the loop so it notices loop_quit. */
static void loop_tick(int timer, void *arg) {
  (void)timer;
  (void)arg;
}

static void *loop_main(void *arg) {
  (void)arg;
  while (!atomic_load(&loop_quit)) {
    if (virEventRunDefaultImpl() < 0) {
      virErrorPtr e = virGetLastError();
      nc_log(NC_LOG_ERROR, "libvirt event loop iteration failed",
             LKV_S("error", e && e->message ? e->message : "unknown"));
      struct timespec pause = {0, 100 * 1000 * 1000};
      nanosleep(&pause, NULL);
    }
  }
  return NULL;
}

static int loop_acquire(char *err, size_t errlen) {
  pthread_once(&init_once, init_process);
  if (init_rc < 0) return hv_virerr("initializing libvirt", err, errlen);
  int rc = HV_OK;
  pthread_mutex_lock(&loop_mu);
  if (loop_refs == 0) {
    atomic_store(&loop_quit, false);
    loop_timer = virEventAddTimeout(LOOP_TICK_MS, loop_tick, NULL, NULL);
    if (loop_timer < 0) {
      rc = hv_virerr("adding the event loop timer", err, errlen);
    } else if ((errno = pthread_create(&loop_thread, NULL, loop_main, NULL)) != 0) {
      rc = hv_fail(HV_INTERNAL, err, errlen, "starting the event loop thread: %s", strerror(errno));
      virEventRemoveTimeout(loop_timer);
      loop_timer = -1;
    }
  }
  if (rc == HV_OK) loop_refs++;
  pthread_mutex_unlock(&loop_mu);
  return rc;
}

static void loop_release(void) {
  pthread_mutex_lock(&loop_mu);
  if (--loop_refs == 0) {
    atomic_store(&loop_quit, true);
    virEventUpdateTimeout(loop_timer, 0); /* wake it now */
    pthread_join(loop_thread, NULL);
    virEventRemoveTimeout(loop_timer);
    loop_timer = -1;
  }
  pthread_mutex_unlock(&loop_mu);
}

/* ---------------------------------------------------------------------- */
/* host entries                                                            */

static void host_ref(hv_host *host) { atomic_fetch_add(&host->refs, 1); }

static void host_unref(hv_host *host) {
  if (atomic_fetch_sub(&host->refs, 1) != 1) return;
  hv *h = host->h;
  pthread_mutex_destroy(&host->mu);
  pthread_mutex_destroy(&host->cmu);
  free(host->uri);
  free(host->id);
  free(host);
  pthread_mutex_lock(&h->mu);
  h->nhosts_alive--;
  pthread_cond_broadcast(&h->cond);
  pthread_mutex_unlock(&h->mu);
}

/* libvirt's free callback of an event registration. */
static void host_unref_cb(void *opaque) { host_unref(opaque); }

/* Finds a host in the table and takes a reference; NULL when unknown. */
static hv_host *host_find(hv *h, const char *id) {
  pthread_mutex_lock(&h->mu);
  hv_host *host = h->hosts;
  while (host && strcmp(host->id, id) != 0)
    host = host->next;
  if (host) host_ref(host);
  pthread_mutex_unlock(&h->mu);
  return host;
}

/* Finds or adds a host (with `uri` when added); takes a reference. */
static hv_host *host_find_or_add(hv *h, const char *id, const char *uri) {
  pthread_mutex_lock(&h->mu);
  hv_host *host = h->hosts;
  while (host && strcmp(host->id, id) != 0)
    host = host->next;
  if (!host) {
    host = calloc(1, sizeof(*host));
    if (host) {
      host->id = strdup(id);
      host->uri = strdup(uri);
      if (!host->id || !host->uri) {
        free(host->id);
        free(host->uri);
        free(host);
        host = NULL;
      }
    }
    if (host) {
      host->h = h;
      atomic_init(&host->refs, 1); /* the table's */
      pthread_mutex_init(&host->mu, NULL);
      pthread_mutex_init(&host->cmu, NULL);
      host->event_id = -1;
      host->next = h->hosts;
      h->hosts = host;
      h->nhosts_alive++;
    }
  }
  if (host) host_ref(host);
  pthread_mutex_unlock(&h->mu);
  return host;
}

/* ---------------------------------------------------------------------- */
/* connection callbacks                                                    */

static const char *close_reason(int reason) {
  switch (reason) {
  case VIR_CONNECT_CLOSE_REASON_ERROR: return "connection error";
  case VIR_CONNECT_CLOSE_REASON_EOF: return "connection closed by the host";
  case VIR_CONNECT_CLOSE_REASON_KEEPALIVE: return "keepalive timeout";
  case VIR_CONNECT_CLOSE_REASON_CLIENT: return "closed by the client";
  default: return "connection closed";
  }
}

/* Marks `conn` of `host` lost; tells on_conn once per outage. Never calls
 * libvirt on conn (we may be inside its close callback). */
static void host_mark_lost(hv_host *host, virConnectPtr conn, const char *why) {
  bool notify = false;
  pthread_mutex_lock(&host->mu);
  if (host->conn == conn && !host->lost && !host->removed) {
    host->lost = true;
    copy_str(host->last_error, sizeof(host->last_error), why);
    notify = !host->down_reported;
    host->down_reported = true;
  }
  pthread_mutex_unlock(&host->mu);
  if (!notify) return;
  nc_log(NC_LOG_WARN, "hypervisor connection lost", LKV_S("host", host->id), LKV_S("reason", why));
  if (host->h->on_conn) host->h->on_conn(host->id, false, why, host->h->arg);
}

static void on_close(virConnectPtr conn, int reason, void *opaque) {
  host_mark_lost(opaque, conn, close_reason(reason));
}

/* The state a lifecycle event leaves the domain in, as far as it says. */
static int state_after(int event, int detail) {
  switch (event) {
  case VIR_DOMAIN_EVENT_STARTED:
  case VIR_DOMAIN_EVENT_RESUMED: return HV_DOM_RUNNING;
  case VIR_DOMAIN_EVENT_SUSPENDED: return HV_DOM_PAUSED;
  case VIR_DOMAIN_EVENT_STOPPED:
    return detail == VIR_DOMAIN_EVENT_STOPPED_CRASHED ? HV_DOM_CRASHED : HV_DOM_SHUTOFF;
  case VIR_DOMAIN_EVENT_SHUTDOWN: return HV_DOM_SHUTDOWN;
  case VIR_DOMAIN_EVENT_PMSUSPENDED: return HV_DOM_PMSUSPENDED;
  case VIR_DOMAIN_EVENT_CRASHED: return HV_DOM_CRASHED;
  default: return HV_DOM_NOSTATE; /* DEFINED, UNDEFINED: unknown here */
  }
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque) {
  (void)conn;
  hv_host *host = opaque;
  hv *h = host->h;
  pthread_mutex_lock(&host->mu);
  bool removed = host->removed;
  pthread_mutex_unlock(&host->mu);
  if (removed || !h->on_event) return 0;
  char uuid[VIR_UUID_STRING_BUFLEN] = "";
  virDomainGetUUIDString(dom, uuid);
  const char *name = virDomainGetName(dom);
  hv_event ev = {.host_id = host->id,
                 .uuid = uuid,
                 .domain_name = name ? name : "",
                 .event = event,
                 .detail = detail,
                 .state = state_after(event, detail)};
  h->on_event(&ev, h->arg);
  return 0;
}

/* ---------------------------------------------------------------------- */
/* host info                                                               */

static void version_str(char *out, size_t size, unsigned long v) {
  snprintf(out, size, "%lu.%lu.%lu", v / 1000000, v / 1000 % 1000, v % 1000);
}

static int read_info(virConnectPtr conn, hv_host_info *info, char *err, size_t errlen) {
  memset(info, 0, sizeof(*info));
  const char *type = virConnectGetType(conn);
  if (!type) return hv_virerr("reading the hypervisor type", err, errlen);
  copy_str(info->hypervisor_type, sizeof(info->hypervisor_type), type);
  unsigned long v = 0;
  if (virConnectGetVersion(conn, &v) < 0)
    return hv_virerr("reading the hypervisor version", err, errlen);
  version_str(info->hypervisor_version, sizeof(info->hypervisor_version), v);
  if (virConnectGetLibVersion(conn, &v) < 0)
    return hv_virerr("reading the libvirt version", err, errlen);
  version_str(info->libvirt_version, sizeof(info->libvirt_version), v);
  char *hostname = virConnectGetHostname(conn);
  if (!hostname) return hv_virerr("reading the host name", err, errlen);
  copy_str(info->hostname, sizeof(info->hostname), hostname);
  free(hostname);
  virNodeInfo node;
  if (virNodeGetInfo(conn, &node) < 0) return hv_virerr("reading the node info", err, errlen);
  info->cpu_count = (int)node.cpus;
  info->memory_mib = (int64_t)(node.memory / 1024);
  unsigned long long free_bytes = virNodeGetFreeMemory(conn);
  if (free_bytes == 0 && hv_virerr_code() != VIR_ERR_OK) {
    /* Not every driver reports it: leave 0, but a dead link is an error. */
    if (code_of(virGetLastError()) == HV_UNAVAILABLE)
      return hv_virerr("reading the free memory", err, errlen);
    virResetLastError();
  }
  info->free_memory_mib = (int64_t)(free_bytes / (1024 * 1024));
  char *caps = virConnectGetCapabilities(conn);
  if (!caps) return hv_virerr("reading the capabilities", err, errlen);
  bool kvm = false;
  int rc = hv_xml_caps(caps, info->arch, sizeof(info->arch), &kvm);
  free(caps);
  if (rc != HV_OK) return hv_fail(HV_INTERNAL, err, errlen, "unreadable capabilities document");
  if (strcmp(type, "TEST") == 0)
    copy_str(info->domain_type, sizeof(info->domain_type), "test");
  else if (strcmp(type, "QEMU") == 0)
    copy_str(info->domain_type, sizeof(info->domain_type), kvm ? "kvm" : "qemu");
  else
    return hv_fail(HV_UNIMPLEMENTED, err, errlen, "unsupported hypervisor type %s", type);
  return HV_OK;
}

/* ---------------------------------------------------------------------- */
/* connecting                                                              */

/* A URI that reaches libvirt over the network (a transport or a host). */
static bool uri_is_remote(const char *uri) {
  const char *colon = strchr(uri, ':');
  if (!colon) return false;
  if (memchr(uri, '+', (size_t)(colon - uri))) return true;
  return strncmp(colon, ":///", 4) != 0;
}

/* Closes a connection we installed: callbacks first so none fires after. */
static void teardown(hv_host *host, virConnectPtr conn, int event_id) {
  if (!conn) return;
  if (event_id >= 0) virConnectDomainEventDeregisterAny(conn, event_id);
  virConnectUnregisterCloseCallback(conn, on_close);
  virConnectClose(conn);
  virResetLastError();
  host_unref(host); /* the installed connection's reference */
}

/* Takes the host's connection out of it (caller holds cmu) and closes it. */
static void host_disconnect(hv_host *host) {
  pthread_mutex_lock(&host->mu);
  virConnectPtr conn = host->conn;
  int event_id = host->event_id;
  host->conn = NULL;
  host->event_id = -1;
  host->lost = false;
  pthread_mutex_unlock(&host->mu);
  teardown(host, conn, event_id);
}

/* Opens host->uri and installs the connection (caller holds cmu and has
 * disconnected the old one). */
static int host_connect(hv_host *host, char *err, size_t errlen) {
  hv *h = host->h;
  pthread_mutex_lock(&host->mu);
  char *uri = strdup(host->uri);
  host->last_try_ms = now_ms();
  pthread_mutex_unlock(&host->mu);
  if (!uri) return hv_fail(HV_INTERNAL, err, errlen, "out of memory");

  char why[256] = "";
  int rc = HV_OK;
  hv_host_info info;
  bool remote = uri_is_remote(uri);
  virConnectPtr conn =
      remote ? virConnectOpenAuth(uri, virConnectAuthPtrDefault, 0) : virConnectOpen(uri);
  if (!conn) {
    virErrorPtr e = virGetLastError();
    copy_str(why, sizeof(why), e && e->message ? e->message : "cannot connect");
    rc = hv_fail(HV_UNAVAILABLE, err, errlen, "connecting to %s: %s", uri, why);
  } else if ((rc = read_info(conn, &info, why, sizeof(why))) != HV_OK) {
    /* an unsupported driver stays unsupported; anything else may heal */
    if (rc != HV_UNIMPLEMENTED) rc = HV_UNAVAILABLE;
    hv_fail(rc, err, errlen, "%s", why);
    virConnectClose(conn);
    conn = NULL;
  }
  if (!conn) {
    pthread_mutex_lock(&host->mu);
    copy_str(host->last_error, sizeof(host->last_error), why);
    host->down_reported = true; /* a later success is news */
    pthread_mutex_unlock(&host->mu);
    free(uri);
    return rc;
  }

  host_ref(host); /* the installed connection's */
  if (virConnectRegisterCloseCallback(conn, on_close, host, NULL) < 0) {
    virErrorPtr e = virGetLastError();
    nc_log(NC_LOG_WARN, "cannot watch the hypervisor connection", LKV_S("host", host->id),
           LKV_S("error", e && e->message ? e->message : "unknown"));
  }
  if (remote && virConnectSetKeepAlive(conn, KEEPALIVE_S, KEEPALIVE_COUNT) < 0) virResetLastError();
  host_ref(host); /* the event registration's, dropped by libvirt's free callback */
  int event_id = virConnectDomainEventRegisterAny(conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                  VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), host,
                                                  host_unref_cb);
  if (event_id < 0) {
    virErrorPtr e = virGetLastError();
    nc_log(NC_LOG_WARN, "cannot receive lifecycle events", LKV_S("host", host->id),
           LKV_S("error", e && e->message ? e->message : "unknown"));
    host_unref(host);
  }

  pthread_mutex_lock(&host->mu);
  bool removed = host->removed;
  bool was_down = host->down_reported;
  if (!removed) {
    host->conn = conn;
    host->event_id = event_id;
    host->lost = false;
    host->down_reported = false;
    host->info = info;
    host->last_error[0] = '\0';
  }
  pthread_mutex_unlock(&host->mu);
  if (removed) {
    teardown(host, conn, event_id);
    free(uri);
    return hv_fail(HV_UNAVAILABLE, err, errlen, "host %s was closed", host->id);
  }
  nc_log(was_down ? NC_LOG_INFO : NC_LOG_DEBUG,
         was_down ? "hypervisor connection up" : "hypervisor connected", LKV_S("host", host->id),
         LKV_S("uri", uri), LKV_S("type", info.hypervisor_type));
  free(uri);
  if (was_down && h->on_conn) h->on_conn(host->id, true, "connected", h->arg);
  return HV_OK;
}

/* Checks the link of a connected host with a round trip (free memory);
 * a dead one is marked lost. Fills `info` on success. */
static int host_refresh(hv_conn *c, hv_host_info *info, char *err, size_t errlen) {
  unsigned long long free_bytes = virNodeGetFreeMemory(c->conn);
  if (free_bytes == 0 && hv_virerr_code() != VIR_ERR_OK) {
    int rc = hv_conn_fail(c, "reading the free memory", err, errlen);
    if (rc == HV_UNAVAILABLE) return rc;
    virResetLastError();
  } else {
    c->info.free_memory_mib = (int64_t)(free_bytes / (1024 * 1024));
  }
  if (virConnectIsAlive(c->conn) == 0) {
    host_mark_lost(c->host, c->conn, "connection closed");
    return hv_fail(HV_UNAVAILABLE, err, errlen, "host %s: connection closed", c->host->id);
  }
  pthread_mutex_lock(&c->host->mu);
  c->host->info.free_memory_mib = c->info.free_memory_mib;
  pthread_mutex_unlock(&c->host->mu);
  if (info) *info = c->info;
  return HV_OK;
}

/* ---------------------------------------------------------------------- */
/* borrowing a connection                                                  */

int hv_conn_get(hv *h, const char *host_id, hv_conn *c, char *err, size_t errlen) {
  memset(c, 0, sizeof(*c));
  if (!h || !host_id) return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "host id required");
  hv_host *host = host_find(h, host_id);
  if (!host) return hv_fail(HV_UNAVAILABLE, err, errlen, "host %s is not connected", host_id);
  for (int attempt = 0; attempt < 2; attempt++) {
    pthread_mutex_lock(&host->mu);
    if (host->conn && !host->lost) {
      c->h = h;
      c->host = host;
      c->conn = host->conn;
      c->info = host->info;
      virConnectRef(c->conn);
      pthread_mutex_unlock(&host->mu);
      return HV_OK;
    }
    bool due = now_ms() - host->last_try_ms >= RECONNECT_INTERVAL_MS;
    char why[sizeof(host->last_error)];
    copy_str(why, sizeof(why), host->last_error[0] ? host->last_error : "not connected");
    pthread_mutex_unlock(&host->mu);
    /* One reconnect attempt per interval; a caller never waits on another's. */
    if (attempt > 0 || !due || pthread_mutex_trylock(&host->cmu) != 0) {
      host_unref(host);
      return hv_fail(HV_UNAVAILABLE, err, errlen, "host %s is unreachable: %s", host_id, why);
    }
    pthread_mutex_lock(&host->mu);
    bool still_down = !host->conn || host->lost;
    due = now_ms() - host->last_try_ms >= RECONNECT_INTERVAL_MS;
    pthread_mutex_unlock(&host->mu);
    if (still_down && due) {
      host_disconnect(host);
      char cerr[512];
      if (host_connect(host, cerr, sizeof(cerr)) != HV_OK)
        nc_log(NC_LOG_DEBUG, "hypervisor reconnect failed", LKV_S("host", host_id),
               LKV_S("error", cerr));
    }
    pthread_mutex_unlock(&host->cmu);
  }
  host_unref(host);
  return hv_fail(HV_UNAVAILABLE, err, errlen, "host %s is unreachable", host_id);
}

void hv_conn_put(hv_conn *c) {
  if (c->conn) virConnectClose(c->conn);
  if (c->host) host_unref(c->host);
  memset(c, 0, sizeof(*c));
}

int hv_conn_fail(hv_conn *c, const char *what, char *err, size_t errlen) {
  virError e;
  memset(&e, 0, sizeof(e));
  virCopyLastError(&e);
  int code = convert(e.code != VIR_ERR_OK ? &e : NULL, what, err, errlen);
  if (c->conn && virConnectIsAlive(c->conn) == 0) {
    host_mark_lost(c->host, c->conn, e.message ? e.message : "connection closed");
    code = HV_UNAVAILABLE;
  }
  virResetError(&e);
  virResetLastError();
  return code;
}

int hv_conn_fail_op(hv_conn *c, const char *what, char *err, size_t errlen) {
  virErrorPtr e = virGetLastError();
  bool host_call = e && e->code == VIR_ERR_SYSTEM_ERROR && e->domain != VIR_FROM_RPC &&
                   e->domain != VIR_FROM_REMOTE;
  int code = hv_conn_fail(c, what, err, errlen);
  if (code == HV_UNAVAILABLE && host_call && c->conn && virConnectIsAlive(c->conn) == 1)
    code = HV_INTERNAL;
  return code;
}

bool hv_virerr_unsupported(void) {
  int code = hv_virerr_code();
  return code == VIR_ERR_NO_SUPPORT || code == VIR_ERR_OPERATION_UNSUPPORTED;
}

bool hv_conn_is_test(const hv_conn *c) { return strcmp(c->info.hypervisor_type, "TEST") == 0; }

/* Closes a host taken out of the table and drops the table's reference;
 * calls in flight keep their own. */
static void host_retire(hv_host *host) {
  pthread_mutex_lock(&host->mu);
  host->removed = true;
  pthread_mutex_unlock(&host->mu);
  pthread_mutex_lock(&host->cmu);
  host_disconnect(host);
  pthread_mutex_unlock(&host->cmu);
  host_unref(host);
}

/* ---------------------------------------------------------------------- */
/* public: lifecycle of hv and hosts                                       */

int hv_create(hv **out, hv_event_fn on_event, hv_conn_fn on_conn, void *arg, char *err,
              size_t errlen) {
  *out = NULL;
  hv *h = calloc(1, sizeof(*h));
  if (!h) return hv_fail(HV_INTERNAL, err, errlen, "out of memory");
  int rc = loop_acquire(err, errlen);
  if (rc != HV_OK) {
    free(h);
    return rc;
  }
  h->on_event = on_event;
  h->on_conn = on_conn;
  h->arg = arg;
  pthread_mutex_init(&h->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&h->cond, &ca);
  pthread_condattr_destroy(&ca);
  *out = h;
  return HV_OK;
}

void hv_destroy(hv *h) {
  if (!h) return;
  for (;;) {
    pthread_mutex_lock(&h->mu);
    hv_host *host = h->hosts;
    if (host) h->hosts = host->next;
    pthread_mutex_unlock(&h->mu);
    if (!host) break;
    host_retire(host);
  }
  /* Event registrations are released by libvirt, possibly from the loop:
   * keep it running until every entry is gone. */
  pthread_mutex_lock(&h->mu);
  struct timespec deadline = nc_monotonic_after_ms(5000);
  while (h->nhosts_alive > 0) {
    if (pthread_cond_timedwait(&h->cond, &h->mu, &deadline) == ETIMEDOUT) {
      nc_log(NC_LOG_WARN, "hypervisor hosts still referenced at shutdown",
             LKV_I("count", h->nhosts_alive));
      break;
    }
  }
  int left = h->nhosts_alive;
  pthread_mutex_unlock(&h->mu);
  loop_release();
  if (left > 0) return; /* a straggler would touch h: leak it rather */
  pthread_cond_destroy(&h->cond);
  pthread_mutex_destroy(&h->mu);
  free(h);
}

int hv_host_open(hv *h, const char *host_id, const char *uri, hv_host_info *info, char *err,
                 size_t errlen) {
  if (info) memset(info, 0, sizeof(*info));
  if (!h || !host_id || !host_id[0])
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "host id required");
  int rc = hv_uri_check(uri, err, errlen);
  if (rc != HV_OK) return rc;
  hv_host *host = host_find_or_add(h, host_id, uri);
  if (!host) return hv_fail(HV_INTERNAL, err, errlen, "out of memory");

  pthread_mutex_lock(&host->cmu);
  pthread_mutex_lock(&host->mu);
  virConnectPtr conn = NULL;
  if (strcmp(host->uri, uri) != 0) {
    char *copy = strdup(uri);
    if (copy) {
      free(host->uri);
      host->uri = copy;
    } else {
      rc = hv_fail(HV_INTERNAL, err, errlen, "out of memory");
    }
  } else if (host->conn && !host->lost) {
    conn = host->conn; /* same URI and connected: refresh only */
    virConnectRef(conn);
  }
  pthread_mutex_unlock(&host->mu);

  bool need_connect = rc == HV_OK && !conn;
  if (conn) {
    hv_host_info fresh;
    rc = read_info(conn, &fresh, err, errlen);
    if (rc == HV_OK) {
      pthread_mutex_lock(&host->mu);
      host->info = fresh;
      pthread_mutex_unlock(&host->mu);
    } else if (virConnectIsAlive(conn) == 0) {
      host_mark_lost(host, conn, "connection closed");
      need_connect = true;
    }
    virConnectClose(conn);
  }
  if (need_connect) {
    host_disconnect(host);
    rc = host_connect(host, err, errlen);
  }
  if (rc == HV_OK && info) {
    pthread_mutex_lock(&host->mu);
    *info = host->info;
    pthread_mutex_unlock(&host->mu);
  }
  pthread_mutex_unlock(&host->cmu);
  host_unref(host);
  return rc;
}

void hv_host_close(hv *h, const char *host_id) {
  if (!h || !host_id) return;
  pthread_mutex_lock(&h->mu);
  hv_host **pp = &h->hosts;
  while (*pp && strcmp((*pp)->id, host_id) != 0)
    pp = &(*pp)->next;
  hv_host *host = *pp;
  if (host) *pp = host->next;
  pthread_mutex_unlock(&h->mu);
  if (host) host_retire(host);
}

int hv_host_probe(hv *h, const char *host_id, hv_host_info *info, char *err, size_t errlen) {
  if (info) memset(info, 0, sizeof(*info));
  if (!h || !host_id) return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "host id required");
  /* Unlike every other call, a host never opened (or closed) is NOT_FOUND
   * here: the heartbeat then opens it. */
  hv_host *known = host_find(h, host_id);
  if (!known) return hv_fail(HV_NOT_FOUND, err, errlen, "host %s is not open", host_id);
  host_unref(known);
  hv_conn c;
  int rc = hv_conn_get(h, host_id, &c, err, errlen);
  if (rc != HV_OK) return rc;
  rc = host_refresh(&c, info, err, errlen);
  hv_conn_put(&c);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* URIs                                                                    */

bool hv_uri_is_ephemeral(const char *uri) { return uri && strncmp(uri, "test:", 5) == 0; }

static bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int hv_uri_check(const char *uri, char *err, size_t errlen) {
  static const char *const schemes[] = {"qemu",      "qemu+ssh",     "qemu+tls",    "qemu+tcp",
                                        "qemu+unix", "qemu+libssh2", "qemu+libssh", "test",
                                        "test+unix", "test+tcp"};
  if (!uri || !uri[0]) return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "uri: required");
  size_t len = strnlen(uri, 1025);
  if (len > 1024) return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "uri: longer than 1024");
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)uri[i];
    if (ch <= 0x20 || ch >= 0x7f || ch == '"' || ch == '\'' || ch == '\\' || ch == '<' ||
        ch == '>' || ch == '`' || ch == '#')
      return hv_fail(HV_INVALID_ARGUMENT, err, errlen,
                     "uri: character %zu is not allowed (spaces, quotes, backslashes, control "
                     "and non-ASCII characters)",
                     i + 1);
  }
  const char *sep = strstr(uri, "://");
  if (!sep) return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "uri: expected scheme://host/path");
  size_t slen = (size_t)(sep - uri);
  bool known = false;
  for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
    if (strlen(schemes[i]) == slen && strncmp(uri, schemes[i], slen) == 0) known = true;
  if (!known)
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen,
                   "uri: unsupported scheme '%.*s' (qemu, qemu+ssh, qemu+tls, qemu+tcp, "
                   "qemu+unix, qemu+libssh, qemu+libssh2, test, test+unix, test+tcp)",
                   (int)(slen > 32 ? 32 : slen), uri);
  /* authority: [user@]host[:port] */
  const char *p = sep + 3;
  const char *auth_end = p + strcspn(p, "/?");
  const char *at = memchr(p, '@', (size_t)(auth_end - p));
  if (at) {
    if (at == p) return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "uri: empty user name");
    for (const char *q = p; q < at; q++)
      if (!is_alnum(*q) && !strchr("._-~%", *q))
        return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "uri: invalid user name");
    p = at + 1;
  }
  const char *host_end;
  if (*p == '[') { /* IPv6 literal */
    const char *close = memchr(p, ']', (size_t)(auth_end - p));
    if (!close || close == p + 1)
      return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "uri: invalid IPv6 host");
    for (const char *q = p + 1; q < close; q++)
      if (!(is_alnum(*q) || *q == ':' || *q == '.' || *q == '%'))
        return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "uri: invalid IPv6 host");
    host_end = close + 1;
  } else {
    host_end = p;
    while (host_end < auth_end && *host_end != ':') {
      if (!is_alnum(*host_end) && *host_end != '.' && *host_end != '-' && *host_end != '_')
        return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "uri: invalid host name");
      host_end++;
    }
    if (at && host_end == p)
      return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "uri: user given without a host");
  }
  if (host_end < auth_end) {
    if (*host_end != ':' || host_end + 1 == auth_end)
      return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "uri: invalid port");
    long port = 0;
    for (const char *q = host_end + 1; q < auth_end; q++) {
      if (*q < '0' || *q > '9' || port > 65535)
        return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "uri: invalid port");
      port = port * 10 + (*q - '0');
    }
    if (port < 1 || port > 65535)
      return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "uri: port out of range");
  }
  /* path (required, absolute) and optional query */
  if (*auth_end != '/')
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "uri: a path is required (e.g. /system)");
  const char *query = strchr(auth_end, '?');
  if (query && (query[1] == '\0' || strchr(query + 1, '?')))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "uri: invalid query");
  if (slen == 4 && strncmp(uri, "test", 4) == 0 && (query ? query : uri + len) == auth_end + 1)
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen,
                   "uri: the test driver needs /default or an absolute node file path");
  return HV_OK;
}
