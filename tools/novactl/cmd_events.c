/*
 * cmd_events.c - "novactl events": the change feed (EventService
 * WatchEvents) through the SDK's resumable watch, one line per event (or
 * one JSON document per line).
 *
 * Without --follow it prints what is retained after --after SEQ up to the
 * head at the time of the call and exits: the stream's first heartbeat
 * names the head, and the end of the replay shows as an event past the head
 * or another heartbeat (sent after 5 s without events). With --follow it
 * goes on with live events, and when the stream ends for a transient
 * reason (server restart, connection lost, a slow reader cut off) it
 * reconnects with a growing pause and resumes after the last sequence
 * printed, so nothing is missed or printed twice.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "resource.h"

#define MAX_TYPES 32
#define MAX_RESOURCES 100
#define MAX_RESOURCE_TYPES 16
#define NAME_LEN 512
#define REPLAY_HEARTBEAT_S 5
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 15000

static void sleep_ms(int64_t ms) {
  struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* One event: "SEQ  TIME  TYPE  RESOURCE  MESSAGE", or its JSON. */
static int print_event(const cli_ctx *ctx, bool json, const Novacron__V1__Event *e) {
  if (json) {
    json_t *obj = pbjson_message(&e->base);
    if (!obj) return out_usage_error(ctx->name, "out of memory");
    out_scalar(OUT_JSON, obj, NULL);
    return 0;
  }
  char when[64];
  const ProtobufCEnumValue *type =
      protobuf_c_enum_descriptor_get_value(&novacron__v1__event__type__descriptor, (int)e->type);
  const char *type_name = type ? type->name : "TYPE_UNKNOWN";
  if (strncmp(type_name, "TYPE_", 5) == 0) type_name += 5;
  pbjson_time_text(e->event_time ? e->event_time->seconds : 0,
                   e->event_time ? e->event_time->nanos : 0, when, sizeof(when));
  printf("%lld  %s  %-24s %s%s%s\n", (long long)e->sequence, when, type_name,
         e->resource[0] ? e->resource : "-", e->message[0] ? "  " : "", e->message);
  fflush(stdout);
  return 0;
}

/* Fills the request's filters from the flags. 0, or prints and returns the
 * exit code. The arrays and names live in the caller's buffers. */
typedef struct filters {
  Novacron__V1__Event__Type types[MAX_TYPES];
  char *resources[MAX_RESOURCES];
  char resource_names[MAX_RESOURCES][NAME_LEN];
  char *resource_types[MAX_RESOURCE_TYPES];
  char resource_type_names[MAX_RESOURCE_TYPES][128];
  char parent[NAME_LEN];
} filters;

static int parse_filters(const cli_ctx *ctx, filters *f, Novacron__V1__WatchEventsRequest *req) {
  const char *text;
  if (cli_switch(ctx, "system")) {
    if (cli_given(ctx, "project"))
      return out_usage_error(ctx->name, "--system contradicts --project");
    req->parent = "";
  } else {
    res_project(ctx, f->parent, sizeof(f->parent));
    req->parent = f->parent;
  }
  /* --type T, repeated or comma-separated */
  for (size_t i = 0; (text = cli_get_nth(ctx, "type", i)); i++) {
    while (*text) {
      char one[64];
      size_t n = strcspn(text, ",");
      int value;
      if (n == 0 || n >= sizeof(one))
        return out_usage_error(ctx->name, "--type takes event types like vm-state-changed");
      memcpy(one, text, n);
      one[n] = '\0';
      if (!cmd_parse_enum(ctx, "type", one, &novacron__v1__event__type__descriptor, "TYPE_",
                          &value))
        return EXIT_USAGE;
      if (req->n_types == MAX_TYPES)
        return out_usage_error(ctx->name, "at most %d --type", MAX_TYPES);
      f->types[req->n_types++] = (Novacron__V1__Event__Type)value;
      text += n;
      if (*text == ',') text++;
    }
  }
  req->types = req->n_types ? f->types : NULL;
  /* --resource: full names, or VM ids in --project */
  for (size_t i = 0; (text = cli_get_nth(ctx, "resource", i)); i++) {
    if (i == MAX_RESOURCES)
      return out_usage_error(ctx->name, "at most %d --resource", MAX_RESOURCES);
    if (strchr(text, '/')) {
      snprintf(f->resource_names[i], NAME_LEN, "%s", text);
    } else {
      char project[NAME_LEN];
      res_project(ctx, project, sizeof(project));
      snprintf(f->resource_names[i], NAME_LEN, "%.*s/vms/%s", NAME_LEN / 2, project, text);
    }
    f->resources[i] = f->resource_names[i];
    req->n_resources = i + 1;
  }
  req->resources = req->n_resources ? f->resources : NULL;
  /* --resource-type: novacron.v1.Vm, or just Vm */
  for (size_t i = 0; (text = cli_get_nth(ctx, "resource-type", i)); i++) {
    if (i == MAX_RESOURCE_TYPES)
      return out_usage_error(ctx->name, "at most %d --resource-type", MAX_RESOURCE_TYPES);
    snprintf(f->resource_type_names[i], sizeof(f->resource_type_names[i]), "%s%s",
             strchr(text, '.') ? "" : "novacron.v1.", text);
    f->resource_types[i] = f->resource_type_names[i];
    req->n_resource_types = i + 1;
  }
  req->resource_types = req->n_resource_types ? f->resource_types : NULL;
  if ((text = cli_get(ctx, "after"))) {
    int64_t after;
    if (!res_parse_int64(text, &after) || after < 0)
      return out_usage_error(ctx->name, "--after takes a sequence number >= 0, not \"%s\"", text);
    req->after_sequence = after;
  }
  return 0;
}

/* Statuses after which --follow reconnects and resumes. */
static bool transient(nc_status st, const nc_error *err) {
  if (st == NC_ERR_END_OF_STREAM) return true;
  if (st != NC_ERR_RPC) return false;
  switch (err->code) {
  case NC_GRPC_UNAVAILABLE:
  case NC_GRPC_RESOURCE_EXHAUSTED:
  case NC_GRPC_DEADLINE_EXCEEDED:
  case NC_GRPC_ABORTED:
  case NC_GRPC_INTERNAL: return true;
  default: return false;
  }
}

static int stream_failed(const cli_ctx *ctx, nc_event_watch *w, nc_status st, nc_error *err) {
  int rc = out_sdk_error(ctx->name, st, err);
  if (st == NC_ERR_RPC && err->code == NC_GRPC_OUT_OF_RANGE)
    fprintf(stderr,
            "novactl: %s: the events after %lld are no longer retained (or not yet assigned): "
            "list the resources again and watch without --after\n",
            ctx->name, (long long)nc_event_watch_last_sequence(w));
  return rc;
}

/* Prints the retained events up to the head at the start, then returns. */
static int replay(const cli_ctx *ctx, nc_event_watch *w, bool json, bool heartbeats,
                  int64_t after) {
  int64_t head = -1;
  for (;;) {
    Novacron__V1__Event *e = NULL;
    nc_error err;
    nc_status st = nc_event_watch_next(w, &e, -1, &err);
    if (st == NC_ERR_END_OF_STREAM) return EXIT_OK;
    if (st != NC_OK) return stream_failed(ctx, w, st, &err);
    bool stop = false;
    bool show = true;
    if (e->type == NOVACRON__V1__EVENT__TYPE__TYPE_HEARTBEAT) {
      show = heartbeats && head < 0;
      if (head < 0) {
        head = e->sequence;
        stop = after == 0 || after >= head; /* live only, or nothing retained to replay */
      } else {
        stop = true; /* a heartbeat after the first: the replay is over */
      }
    } else if (head >= 0 && e->sequence > head) {
      show = false; /* a live event: past what this call prints */
      stop = true;
    } else {
      stop = head >= 0 && e->sequence == head;
    }
    int rc = show ? print_event(ctx, json, e) : 0;
    nc_message_free(&e->base);
    if (rc != 0) return rc;
    if (stop) return EXIT_OK;
  }
}

/* Prints events until interrupted, resuming after transient failures. */
static int follow(const cli_ctx *ctx, nc_client *client, nc_event_watch *w, bool json,
                  bool heartbeats) {
  int64_t backoff = BACKOFF_MIN_MS;
  bool refreshed = false;
  bool reached = false; /* a first stream that never got a message is an error, not a blip */
  for (;;) {
    Novacron__V1__Event *e = NULL;
    nc_error err;
    nc_status st = nc_event_watch_next(w, &e, -1, &err);
    if (st == NC_OK) {
      int rc = 0;
      if (e->type != NOVACRON__V1__EVENT__TYPE__TYPE_HEARTBEAT || heartbeats)
        rc = print_event(ctx, json, e);
      nc_message_free(&e->base);
      if (rc != 0) return rc;
      backoff = BACKOFF_MIN_MS;
      refreshed = false;
      reached = true;
      continue;
    }
    if (reached && transient(st, &err)) {
      fprintf(stderr, "novactl: %s: the stream ended (%s%s%s); resuming after %lld in %.1f s\n",
              ctx->name, st == NC_ERR_RPC ? nc_grpc_code_name(err.code) : "end of stream",
              st == NC_ERR_RPC && err.message[0] ? ": " : "", st == NC_ERR_RPC ? err.message : "",
              (long long)nc_event_watch_last_sequence(w), (double)backoff / 1000.0);
      sleep_ms(backoff);
      backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    } else if (st == NC_ERR_RPC && err.code == NC_GRPC_UNAUTHENTICATED && !refreshed) {
      /* the access token expired while the stream was open: refresh once */
      nc_error rerr;
      if (nc_client_refresh_session(client, &rerr) != NC_OK) return stream_failed(ctx, w, st, &err);
      refreshed = true;
    } else {
      return stream_failed(ctx, w, st, &err);
    }
    if ((st = nc_event_watch_resume(w, &err)) != NC_OK) return out_sdk_error(ctx->name, st, &err);
  }
}

int cmd_events(cli_ctx *ctx) {
  Novacron__V1__WatchEventsRequest req = NOVACRON__V1__WATCH_EVENTS_REQUEST__INIT;
  Google__Protobuf__Duration interval = GOOGLE__PROTOBUF__DURATION__INIT;
  filters *f = calloc(1, sizeof(*f));
  nc_event_watch *w = NULL;
  nc_client *client = NULL;
  nc_error err;
  bool following = cli_switch(ctx, "follow");
  bool json = cli_switch(ctx, "json") || ctx->format == OUT_JSON;
  bool heartbeats = cli_switch(ctx, "heartbeats");
  int rc;

  if (!f) return out_usage_error(ctx->name, "out of memory");
  if ((rc = parse_filters(ctx, f, &req)) != 0) goto cleanup;
  /* a watch has no deadline; without --follow, --timeout bounds the replay */
  nc_call_options call_opts = {.deadline_ms = 0, .request_id = NULL};
  if (!following) {
    double seconds = strtod(cli_get(ctx, "timeout"), NULL);
    if (isfinite(seconds) && seconds > 0) call_opts.deadline_ms = (int64_t)llround(seconds * 1000);
    interval.seconds = REPLAY_HEARTBEAT_S;
    req.heartbeat_interval = &interval;
  }
  if ((rc = cli_connect(ctx, &client)) != 0) goto cleanup;
  nc_status st = nc_event_watch_open(client, &req, NC_WATCH_HEARTBEATS, &w, &call_opts, &err);
  if (st != NC_OK) {
    rc = out_sdk_error(ctx->name, st, &err);
    goto cleanup;
  }
  rc = following ? follow(ctx, client, w, json, heartbeats)
                 : replay(ctx, w, json, heartbeats, req.after_sequence);
cleanup:
  nc_event_watch_free(w);
  nc_client_free(client);
  free(f);
  return rc;
}
