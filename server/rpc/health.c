/*
 * health.c - grpc.health.v1.Health: Check and Watch, per service.
 *
 * The empty service name is the whole server. Every registered service
 * starts SERVING; shutdown turns everything NOT_SERVING first, so load
 * balancers and watchers stop sending work before calls are refused.
 * Watchers hold a reference to their call and are dropped when it ends.
 */
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "rpc/internal.h"

typedef struct entry {
  struct entry *next;
  char *service;
  rpc_health_status status;
} entry;

typedef struct watcher {
  struct watcher *next;
  rpc_call *call;
  char *service;
} watcher;

struct rpc_health {
  pthread_mutex_t mu;
  entry *entries;
  watcher *watchers;
  bool shut;
};

rpc_health *rpc_health_create(void) {
  rpc_health *h = calloc(1, sizeof(*h));
  if (!h) return NULL;
  pthread_mutex_init(&h->mu, NULL);
  return h;
}

void rpc_health_destroy(rpc_health *h) {
  if (!h) return;
  for (entry *e = h->entries; e;) {
    entry *n = e->next;
    free(e->service);
    free(e);
    e = n;
  }
  for (watcher *w = h->watchers; w;) {
    watcher *n = w->next;
    free(w->service);
    free(w);
    w = n;
  }
  pthread_mutex_destroy(&h->mu);
  free(h);
}

static entry *find(rpc_health *h, const char *service) {
  for (entry *e = h->entries; e; e = e->next) {
    if (strcmp(e->service, service) == 0) return e;
  }
  return NULL;
}

static void send_status(rpc_call *call, rpc_health_status st) {
  Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
  resp.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)st;
  rpc_stream_send(call, &resp.base);
}

static void set_locked(rpc_health *h, const char *service, rpc_health_status status) {
  entry *e = find(h, service);
  if (!e) {
    e = calloc(1, sizeof(*e));
    if (!e) return;
    e->service = strdup(service);
    if (!e->service) {
      free(e);
      return;
    }
    e->next = h->entries;
    h->entries = e;
  } else if (e->status == status) {
    return;
  }
  e->status = status;
  for (watcher *w = h->watchers; w; w = w->next) {
    if (strcmp(w->service, service) == 0) send_status(w->call, status);
  }
}

void rpc_health_set(rpc_server *srv, const char *service, rpc_health_status status) {
  rpc_health *h = srv->health;
  pthread_mutex_lock(&h->mu);
  /* after shutdown began nothing may turn SERVING again */
  if (!h->shut || status != RPC_HEALTH_SERVING) set_locked(h, service, status);
  pthread_mutex_unlock(&h->mu);
}

void rpc_health_shutdown(rpc_health *h) {
  pthread_mutex_lock(&h->mu);
  h->shut = true;
  for (entry *e = h->entries; e; e = e->next)
    set_locked(h, e->service, RPC_HEALTH_NOT_SERVING);
  pthread_mutex_unlock(&h->mu);
}

static int check(rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp, void *ctx) {
  rpc_health *h = ctx;
  const Grpc__Health__V1__HealthCheckRequest *in = (const void *)req;
  Grpc__Health__V1__HealthCheckResponse *out = (void *)resp;
  pthread_mutex_lock(&h->mu);
  entry *e = find(h, in->service);
  rpc_health_status st = e ? e->status : RPC_HEALTH_SERVICE_UNKNOWN;
  pthread_mutex_unlock(&h->mu);
  if (!e) return rpc_fail(call, GRPC_STATUS_NOT_FOUND, "unknown service \"%s\"", in->service);
  out->status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)st;
  return GRPC_STATUS_OK;
}

static void watch_done(rpc_call *call, void *arg) {
  rpc_health *h = arg;
  pthread_mutex_lock(&h->mu);
  for (watcher **pp = &h->watchers; *pp; pp = &(*pp)->next) {
    if ((*pp)->call == call) {
      watcher *w = *pp;
      *pp = w->next;
      free(w->service);
      free(w);
      break;
    }
  }
  pthread_mutex_unlock(&h->mu);
  rpc_call_unref(call);
}

static int watch(rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp, void *ctx) {
  rpc_health *h = ctx;
  const Grpc__Health__V1__HealthCheckRequest *in = (const void *)req;
  watcher *w = calloc(1, sizeof(*w));
  if (!w || !(w->service = strdup(in->service))) {
    free(w);
    return rpc_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  }
  w->call = call;
  rpc_call_ref(call);
  pthread_mutex_lock(&h->mu);
  entry *e = find(h, in->service);
  send_status(call, e ? e->status : RPC_HEALTH_SERVICE_UNKNOWN);
  w->next = h->watchers;
  h->watchers = w;
  pthread_mutex_unlock(&h->mu);
  if (rpc_call_on_done(call, watch_done, h) != 0) {
    watch_done(call, h); /* drops the watcher and its reference */
    return rpc_fail(call, GRPC_STATUS_INTERNAL, "internal error");
  }
  return RPC_PENDING;
}

static const rpc_method_row health_rows[] = {
    {.name = "Check",
     .kind = RPC_UNARY,
     .handler = check,
     .flags = RPC_INLINE | RPC_IDEMPOTENT | RPC_PUBLIC},
    {.name = "Watch",
     .kind = RPC_SERVER_STREAMING,
     .handler = watch,
     .flags = RPC_INLINE | RPC_PUBLIC},
};

int rpc_health_register(rpc_server *srv, char *errbuf, size_t errlen) {
  rpc_health_set(srv, "", RPC_HEALTH_SERVING);
  return rpc_server_add_service(srv, &grpc__health__v1__health__descriptor, health_rows,
                                sizeof(health_rows) / sizeof(health_rows[0]), srv->health, errbuf,
                                errlen);
}
