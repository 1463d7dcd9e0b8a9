/*
 * event.c - novacron.v1.EventService: the WatchEvents change feed over
 * the event bus (core/events.h).
 *
 * The authorization interceptor (api/authz.c) has checked ROLE_VIEWER on
 * `parent`, let `projects/-` through for any authenticated caller and kept
 * an empty parent for system administrators. The handler validates the
 * request, turns the caller's roles into the project filter (a snapshot
 * taken when the stream opens), subscribes and returns RPC_PENDING: the
 * stream then belongs to the bus until the call ends, when on_done
 * unsubscribes. The first heartbeat and the replay are sent from the
 * handler's worker, with the runtime's backpressure; live events come from
 * the listener thread, which never waits for a slow client (the runtime
 * cuts it off with RESOURCE_EXHAUSTED instead). A stream ends with
 * UNAUTHENTICATED when the credential it was opened with expires, so
 * neither a token nor the role snapshot outlives its validity.
 */
#include <stdio.h>
#include <string.h>

#include "api/authz.h"
#include "api/services.h"
#include "core/events.h"
#include "novacron/v1/event.pb-c.h"

#define HEARTBEAT_DEFAULT_MS 30000
#define HEARTBEAT_MIN_MS 5000
#define HEARTBEAT_MAX_MS 300000
#define RESOURCE_MAX_LEN 1024

typedef struct watch {
  rpc_call *call;
  core_event_sub *sub;
} watch;

static bool deliver(const Novacron__V1__Event *e, void *arg) {
  watch *w = arg;
  Novacron__V1__WatchEventsResponse r = NOVACRON__V1__WATCH_EVENTS_RESPONSE__INIT;
  r.event = (Novacron__V1__Event *)e; /* packed right away, never written */
  return rpc_stream_send(w->call, &r.base);
}

static void end(int code, const char *message, void *arg) {
  watch *w = arg;
  rpc_stream_finish(w->call, code, "%s", message);
}

static void on_done(rpc_call *call, void *arg) {
  watch *w = arg;
  core_events_unsubscribe(w->sub);
  w->sub = NULL;
}

/* A project id as in `projects/{project}`. */
static bool project_id_valid(const char *id, size_t n) {
  if (n == 0 || n > 63 || id[0] < 'a' || id[0] > 'z') return false;
  for (size_t i = 0; i < n; i++) {
    char ch = id[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-')) return false;
  }
  return true;
}

/* A resource name: printable ASCII segments separated by single slashes. */
static bool resource_name_valid(const char *r) {
  size_t n = strlen(r);
  if (n == 0 || n > RESOURCE_MAX_LEN || r[0] == '/' || r[n - 1] == '/') return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)r[i];
    if (ch <= ' ' || ch >= 0x7f) return false;
    if (ch == '/' && r[i + 1] == '/') return false;
  }
  return true;
}

/* The project of `projects/{p}/...`: its length, 0 if none. */
static size_t project_len(const char *r) {
  if (strncmp(r, "projects/", 9) != 0) return 0;
  return strcspn(r + 9, "/");
}

static int h_watch_events(rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp,
                          void *ctx) {
  api_ctx *c = ctx;
  const Novacron__V1__WatchEventsRequest *in = (const Novacron__V1__WatchEventsRequest *)req;
  const core_principal *who = api_caller(call);
  if (!c->events || !who)
    return rpc_fail(call, CORE_UNAVAILABLE, "the event feed is not available on this server");

  /* parent: the projects whose events pass */
  const char *parent = in->parent ? in->parent : "";
  core_event_filter f = {0};
  char own[96];
  const char **projects = NULL;
  if (!*parent) {
    if (!who->system_admin)
      return rpc_fail(call, CORE_PERMISSION_DENIED,
                      "watching every project and the system-level events (empty parent) is "
                      "for system administrators only; set parent to projects/{project} or "
                      "projects/-");
    f.all_projects = true;
    f.system = true;
  } else if (strcmp(parent, "projects/-") == 0) {
    if (who->system_admin) {
      f.all_projects = true;
    } else {
      projects = rpc_call_alloc(call, sizeof(*projects) * (size_t)(who->nbindings + 1));
      if (!projects) return rpc_fail(call, CORE_RESOURCE_EXHAUSTED, "out of memory");
      for (int i = 0; i < who->nbindings; i++) {
        if (who->bindings[i].role < CORE_ROLE_VIEWER) continue;
        snprintf(own, sizeof(own), "projects/%s", who->bindings[i].project);
        if (!(projects[f.nprojects++] = rpc_call_strdup(call, own)))
          return rpc_fail(call, CORE_RESOURCE_EXHAUSTED, "out of memory");
      }
      f.projects = projects;
    }
  } else {
    size_t n = project_len(parent);
    if (!n || parent[9 + n] != '\0' || !project_id_valid(parent + 9, n))
      return rpc_fail(call, CORE_INVALID_ARGUMENT,
                      "parent: must be projects/{project}, projects/- or empty (got \"%.100s\")",
                      parent);
    if (core_principal_role(who, parent + 9) < CORE_ROLE_VIEWER)
      return rpc_fail(call, CORE_PERMISSION_DENIED,
                      "%s has no role on %s, or the project does not exist", who->name, parent);
    projects = rpc_call_alloc(call, sizeof(*projects));
    if (!projects) return rpc_fail(call, CORE_RESOURCE_EXHAUSTED, "out of memory");
    projects[0] = parent;
    f.projects = projects;
    f.nprojects = 1;
  }

  /* resources: at most 100, each a name within parent */
  if (in->n_resources > CORE_EVENTS_MAX_RESOURCES)
    return rpc_fail(call, CORE_INVALID_ARGUMENT, "resources: at most %d entries (got %zu)",
                    CORE_EVENTS_MAX_RESOURCES, in->n_resources);
  for (size_t i = 0; i < in->n_resources; i++) {
    const char *r = in->resources[i];
    if (!resource_name_valid(r))
      return rpc_fail(call, CORE_INVALID_ARGUMENT,
                      "resources[%zu]: not a resource name (e.g. projects/p/vms/web-1)", i);
    if (!*parent) continue;
    size_t n = project_len(r);
    bool within;
    if (strcmp(parent, "projects/-") == 0)
      within = n && project_id_valid(r + 9, n);
    else
      within = strncmp(r, parent, strlen(parent)) == 0 &&
               (r[strlen(parent)] == '\0' || r[strlen(parent)] == '/');
    if (!within)
      return rpc_fail(call, CORE_INVALID_ARGUMENT, "resources[%zu]: \"%.200s\" is not within %s", i,
                      r, parent);
    if (strcmp(parent, "projects/-") == 0 && !who->system_admin) {
      char p[64];
      snprintf(p, sizeof(p), "%.*s", (int)n, r + 9);
      if (core_principal_role(who, p) < CORE_ROLE_VIEWER)
        return rpc_fail(call, CORE_PERMISSION_DENIED,
                        "resources[%zu]: %s has no role on projects/%s, or the project does not "
                        "exist",
                        i, who->name, p);
    }
  }
  f.resources = (const char *const *)in->resources;
  f.nresources = in->n_resources;
  f.resource_types = (const char *const *)in->resource_types;
  f.nresource_types = in->n_resource_types;
  int *types = rpc_call_alloc(call, sizeof(*types) * (in->n_types ? in->n_types : 1));
  if (!types) return rpc_fail(call, CORE_RESOURCE_EXHAUSTED, "out of memory");
  for (size_t i = 0; i < in->n_types; i++)
    types[i] = (int)in->types[i];
  f.types = types;
  f.ntypes = in->n_types;
  f.until_unix = who->expire;

  if (in->after_sequence < 0)
    return rpc_fail(call, CORE_INVALID_ARGUMENT, "after_sequence: must not be negative");
  int heartbeat_ms = HEARTBEAT_DEFAULT_MS;
  if (in->heartbeat_interval) {
    const Google__Protobuf__Duration *d = in->heartbeat_interval;
    bool ok = d->seconds >= 0 && d->nanos >= 0 && d->nanos < 1000000000 &&
              d->seconds <= HEARTBEAT_MAX_MS / 1000;
    int64_t ms = ok ? d->seconds * 1000 + d->nanos / 1000000 : 0;
    if (!ok || ms < HEARTBEAT_MIN_MS || ms > HEARTBEAT_MAX_MS ||
        (ms == HEARTBEAT_MAX_MS && d->nanos % 1000000))
      return rpc_fail(call, CORE_INVALID_ARGUMENT,
                      "heartbeat_interval: must be between 5s and 300s (or unset for 30s)");
    heartbeat_ms = (int)ms;
  }

  watch *w = rpc_call_alloc(call, sizeof(*w));
  if (!w) return rpc_fail(call, CORE_RESOURCE_EXHAUSTED, "out of memory");
  w->call = call;
  w->sub = NULL;
  char msg[512];
  core_call cc;
  api_core_call(call, &cc, msg, sizeof(msg));
  core_event_sink sink = {.deliver = deliver, .end = end, .arg = w};
  int code =
      core_events_subscribe(c->events, &cc, &f, in->after_sequence, heartbeat_ms, &sink, &w->sub);
  if (code) return rpc_fail(call, code, "%s", msg);
  if (rpc_call_on_done(call, on_done, w) != 0) {
    core_events_unsubscribe(w->sub);
    w->sub = NULL;
    return rpc_fail(call, CORE_INTERNAL, "internal error");
  }
  return RPC_PENDING;
}

static const rpc_method_row rows[] = {
    {.name = "WatchEvents",
     .kind = RPC_SERVER_STREAMING,
     .handler = h_watch_events,
     .flags = RPC_IDEMPOTENT, /* a read; resumable with after_sequence */
     .access = API_VIEWER | API_ACROSS_PROJECTS,
     .scope = "parent"},
};

const api_service api_event_service = {&novacron__v1__event_service__descriptor, API_ROWS(rows)};
