/*
 * compute.c - the compute services' client side (include/novacron/compute.h):
 * one row per HostService, VmService and OperationsService method, each
 * expanding to a typed wrapper of nc_call_unary (in proto order, so a
 * missing method is easy to spot); nc_operation_wait's WaitOperation loop
 * and the reading of an Operation's result; and the WatchEvents iterator,
 * an nc_stream plus the request copy and position needed to resume it.
 *
 * Nothing here retries a mutating call: only WaitOperation (a read) is
 * repeated, and a watch is reopened only when the caller asks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "novacron/compute.h"

#define NC_EVENT_WATCH_MAGIC 0x4e434557u /* "NCEW" */

/* Slack a WaitOperation call's deadline gets beyond the wait it asks for,
 * so the server answers (with the operation) before the deadline ends it. */
#define WAIT_DEADLINE_SLACK_MS 10000
#define WAIT_BACKOFF_MIN_MS 100
#define WAIT_BACKOFF_MAX_MS 5000

/* ---- typed wrappers ---- */

#define HOST(fn, METHOD, REQ, RESP, req_desc, resp_desc) \
  NC_TYPED_METHOD(host_##fn, NC_HOST_SERVICE, METHOD, REQ, RESP, req_desc, resp_desc)
#define VM(fn, METHOD, REQ, RESP, req_desc, resp_desc) \
  NC_TYPED_METHOD(vm_##fn, NC_VM_SERVICE, METHOD, REQ, RESP, req_desc, resp_desc)
#define OPERATION(fn, METHOD, REQ, RESP, req_desc, resp_desc) \
  NC_TYPED_METHOD(operation_##fn, NC_OPERATIONS_SERVICE, METHOD, REQ, RESP, req_desc, resp_desc)

HOST(register, RegisterHost, RegisterHostRequest, RegisterHostResponse,
     novacron__v1__register_host_request__descriptor,
     novacron__v1__register_host_response__descriptor)
HOST(get, GetHost, GetHostRequest, GetHostResponse, novacron__v1__get_host_request__descriptor,
     novacron__v1__get_host_response__descriptor)
HOST(list, ListHosts, ListHostsRequest, ListHostsResponse,
     novacron__v1__list_hosts_request__descriptor, novacron__v1__list_hosts_response__descriptor)
HOST(update, UpdateHost, UpdateHostRequest, UpdateHostResponse,
     novacron__v1__update_host_request__descriptor, novacron__v1__update_host_response__descriptor)
HOST(drain, DrainHost, DrainHostRequest, DrainHostResponse,
     novacron__v1__drain_host_request__descriptor, novacron__v1__drain_host_response__descriptor)
HOST(deregister, DeregisterHost, DeregisterHostRequest, DeregisterHostResponse,
     novacron__v1__deregister_host_request__descriptor,
     novacron__v1__deregister_host_response__descriptor)

VM(create, CreateVm, CreateVmRequest, CreateVmResponse, novacron__v1__create_vm_request__descriptor,
   novacron__v1__create_vm_response__descriptor)
VM(get, GetVm, GetVmRequest, GetVmResponse, novacron__v1__get_vm_request__descriptor,
   novacron__v1__get_vm_response__descriptor)
VM(list, ListVms, ListVmsRequest, ListVmsResponse, novacron__v1__list_vms_request__descriptor,
   novacron__v1__list_vms_response__descriptor)
VM(update, UpdateVm, UpdateVmRequest, UpdateVmResponse, novacron__v1__update_vm_request__descriptor,
   novacron__v1__update_vm_response__descriptor)
VM(delete, DeleteVm, DeleteVmRequest, DeleteVmResponse, novacron__v1__delete_vm_request__descriptor,
   novacron__v1__delete_vm_response__descriptor)
VM(start, StartVm, StartVmRequest, StartVmResponse, novacron__v1__start_vm_request__descriptor,
   novacron__v1__start_vm_response__descriptor)
VM(stop, StopVm, StopVmRequest, StopVmResponse, novacron__v1__stop_vm_request__descriptor,
   novacron__v1__stop_vm_response__descriptor)
VM(reboot, RebootVm, RebootVmRequest, RebootVmResponse, novacron__v1__reboot_vm_request__descriptor,
   novacron__v1__reboot_vm_response__descriptor)
VM(pause, PauseVm, PauseVmRequest, PauseVmResponse, novacron__v1__pause_vm_request__descriptor,
   novacron__v1__pause_vm_response__descriptor)
VM(resume, ResumeVm, ResumeVmRequest, ResumeVmResponse, novacron__v1__resume_vm_request__descriptor,
   novacron__v1__resume_vm_response__descriptor)
VM(resize, ResizeVm, ResizeVmRequest, ResizeVmResponse, novacron__v1__resize_vm_request__descriptor,
   novacron__v1__resize_vm_response__descriptor)
VM(migrate, MigrateVm, MigrateVmRequest, MigrateVmResponse,
   novacron__v1__migrate_vm_request__descriptor, novacron__v1__migrate_vm_response__descriptor)
VM(clone, CloneVm, CloneVmRequest, CloneVmResponse, novacron__v1__clone_vm_request__descriptor,
   novacron__v1__clone_vm_response__descriptor)
VM(create_snapshot, CreateSnapshot, CreateSnapshotRequest, CreateSnapshotResponse,
   novacron__v1__create_snapshot_request__descriptor,
   novacron__v1__create_snapshot_response__descriptor)
VM(get_snapshot, GetSnapshot, GetSnapshotRequest, GetSnapshotResponse,
   novacron__v1__get_snapshot_request__descriptor, novacron__v1__get_snapshot_response__descriptor)
VM(list_snapshots, ListSnapshots, ListSnapshotsRequest, ListSnapshotsResponse,
   novacron__v1__list_snapshots_request__descriptor,
   novacron__v1__list_snapshots_response__descriptor)
VM(revert_snapshot, RevertSnapshot, RevertSnapshotRequest, RevertSnapshotResponse,
   novacron__v1__revert_snapshot_request__descriptor,
   novacron__v1__revert_snapshot_response__descriptor)
VM(delete_snapshot, DeleteSnapshot, DeleteSnapshotRequest, DeleteSnapshotResponse,
   novacron__v1__delete_snapshot_request__descriptor,
   novacron__v1__delete_snapshot_response__descriptor)
VM(attach_volume, AttachVolume, AttachVolumeRequest, AttachVolumeResponse,
   novacron__v1__attach_volume_request__descriptor,
   novacron__v1__attach_volume_response__descriptor)
VM(detach_volume, DetachVolume, DetachVolumeRequest, DetachVolumeResponse,
   novacron__v1__detach_volume_request__descriptor,
   novacron__v1__detach_volume_response__descriptor)
VM(attach_nic, AttachNic, AttachNicRequest, AttachNicResponse,
   novacron__v1__attach_nic_request__descriptor, novacron__v1__attach_nic_response__descriptor)
VM(detach_nic, DetachNic, DetachNicRequest, DetachNicResponse,
   novacron__v1__detach_nic_request__descriptor, novacron__v1__detach_nic_response__descriptor)
VM(get_stats, GetVmStats, GetVmStatsRequest, GetVmStatsResponse,
   novacron__v1__get_vm_stats_request__descriptor, novacron__v1__get_vm_stats_response__descriptor)

OPERATION(get, GetOperation, GetOperationRequest, GetOperationResponse,
          novacron__v1__get_operation_request__descriptor,
          novacron__v1__get_operation_response__descriptor)
OPERATION(list, ListOperations, ListOperationsRequest, ListOperationsResponse,
          novacron__v1__list_operations_request__descriptor,
          novacron__v1__list_operations_response__descriptor)
OPERATION(wait_once, WaitOperation, WaitOperationRequest, WaitOperationResponse,
          novacron__v1__wait_operation_request__descriptor,
          novacron__v1__wait_operation_response__descriptor)
OPERATION(cancel, CancelOperation, CancelOperationRequest, CancelOperationResponse,
          novacron__v1__cancel_operation_request__descriptor,
          novacron__v1__cancel_operation_response__descriptor)

/* ---- waiting for an operation ---- */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms) {
  if (ms <= 0) return;
  struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* Takes the operation out of a Get/WaitOperation response (both have it
 * as field 1) and frees the rest. */
static Novacron__V1__Operation *take_operation(Novacron__V1__Operation **slot,
                                               ProtobufCMessage *response) {
  Novacron__V1__Operation *op = *slot;
  *slot = NULL;
  nc_message_free(response);
  return op;
}

static nc_status wait_timed_out(const char *name, int64_t timeout_ms, nc_error *err) {
  if (err) {
    err->code = NC_GRPC_DEADLINE_EXCEEDED;
    snprintf(err->message, sizeof(err->message), "operation %s not done within %lld ms", name,
             (long long)timeout_ms);
  }
  return NC_ERR_RPC;
}

/* One look at the operation, for timeout_ms == 0. */
static nc_status look_once(nc_client *client, const char *name, Novacron__V1__Operation **operation,
                           nc_error *err) {
  Novacron__V1__GetOperationRequest req = NOVACRON__V1__GET_OPERATION_REQUEST__INIT;
  Novacron__V1__GetOperationResponse *resp = NULL;
  req.name = (char *)name;
  nc_status st = nc_operation_get(client, &req, &resp, NULL, err);
  if (st != NC_OK) return st;
  if (!resp->operation) {
    nc_message_free(&resp->base);
    return nc_fail(err, NC_ERR_DECODE, "GetOperation answered without an operation");
  }
  *operation = take_operation(&resp->operation, &resp->base);
  if (!(*operation)->done) return wait_timed_out(name, 0, err);
  return NC_OK;
}

nc_status nc_operation_wait(nc_client *client, const char *name, int64_t timeout_ms, unsigned flags,
                            Novacron__V1__Operation **operation, nc_error *err) {
  Novacron__V1__Operation *latest = NULL;
  int64_t start = now_ms();
  int64_t backoff = WAIT_BACKOFF_MIN_MS;
  nc_error e; /* the calls' errors, read here whether or not the caller wants them */
  nc_status st;

  nc_error_clear(err);
  nc_error_clear(&e);
  if (operation) *operation = NULL;
  if (!operation) return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "no output for the operation");
  if (!name || !*name)
    return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "no operation name to wait for");
  if (flags & ~(unsigned)NC_WAIT_NO_RETRY)
    return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "unknown nc_operation_wait flags 0x%x", flags);
  if (!client || client->magic != NC_CLIENT_MAGIC)
    return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "invalid client handle");
  if (timeout_ms == 0) {
    st = look_once(client, name, &latest, &e);
    goto done;
  }

  for (;;) {
    Novacron__V1__WaitOperationRequest req = NOVACRON__V1__WAIT_OPERATION_REQUEST__INIT;
    Google__Protobuf__Duration wait = GOOGLE__PROTOBUF__DURATION__INIT;
    Novacron__V1__WaitOperationResponse *resp = NULL;
    int64_t round = NC_WAIT_ROUND_MS;
    int64_t round_start = now_ms();

    if (timeout_ms > 0) {
      int64_t left = start + timeout_ms - round_start;
      if (left <= 0) {
        st = wait_timed_out(name, timeout_ms, &e);
        break;
      }
      if (left < round) round = left;
    }
    wait.seconds = round / 1000;
    wait.nanos = (int32_t)(round % 1000) * 1000000;
    req.name = (char *)name;
    req.timeout = &wait;
    nc_call_options call_opts = {.deadline_ms = round + WAIT_DEADLINE_SLACK_MS, .request_id = NULL};
    st = nc_operation_wait_once(client, &req, &resp, &call_opts, &e);
    if (st == NC_OK) {
      if (!resp->operation) {
        nc_message_free(&resp->base);
        st = nc_fail(&e, NC_ERR_DECODE, "WaitOperation answered without an operation");
        break;
      }
      nc_message_free(latest ? &latest->base : NULL);
      latest = take_operation(&resp->operation, &resp->base);
      if (latest->done) break;
      backoff = WAIT_BACKOFF_MIN_MS;
      /* a server that answers before the wait it was asked for must not
       * make this a busy loop */
      if (now_ms() - round_start < round) sleep_ms(WAIT_BACKOFF_MIN_MS);
      continue;
    }
    bool transient =
        st == NC_ERR_RPC && ((e.code == NC_GRPC_UNAVAILABLE && !(flags & NC_WAIT_NO_RETRY)) ||
                             e.code == NC_GRPC_DEADLINE_EXCEEDED);
    if (!transient) break;
    if (timeout_ms > 0 && now_ms() + backoff >= start + timeout_ms) {
      sleep_ms(start + timeout_ms - now_ms());
      st = wait_timed_out(name, timeout_ms, &e);
      break;
    }
    sleep_ms(backoff);
    backoff = backoff * 2 > WAIT_BACKOFF_MAX_MS ? WAIT_BACKOFF_MAX_MS : backoff * 2;
  }

done:
  if (st == NC_OK || (st == NC_ERR_RPC && e.code == NC_GRPC_DEADLINE_EXCEEDED && latest)) {
    *operation = latest;
    latest = NULL;
  }
  nc_message_free(latest ? &latest->base : NULL);
  if (err) *err = e;
  return st;
}

nc_status nc_any_unpack(const Google__Protobuf__Any *any, const ProtobufCMessageDescriptor *type,
                        ProtobufCMessage **out, nc_error *err) {
  nc_error_clear(err);
  if (out) *out = NULL;
  if (!any || !type || type->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC || !out)
    return nc_fail(err, NC_ERR_INVALID_ARGUMENT,
                   "nc_any_unpack needs an Any, a type and an output");
  const char *url = any->type_url ? any->type_url : "";
  const char *slash = strrchr(url, '/');
  const char *name = slash ? slash + 1 : url;
  if (strcmp(name, type->name) != 0)
    return nc_fail(err, NC_ERR_DECODE, "expected a %s, got \"%s\"", type->name, url);
  *out = protobuf_c_message_unpack(type, NULL, any->value.len, any->value.data);
  if (!*out) return nc_fail(err, NC_ERR_DECODE, "the Any does not hold a valid %s", type->name);
  return NC_OK;
}

nc_status nc_operation_result(const Novacron__V1__Operation *operation,
                              const ProtobufCMessageDescriptor *response_type,
                              ProtobufCMessage **response, nc_error *err) {
  nc_error_clear(err);
  if (response) *response = NULL;
  if (!operation || operation->base.descriptor != &novacron__v1__operation__descriptor)
    return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "not an operation");
  const char *name = operation->name && *operation->name ? operation->name : "(unnamed)";
  if (!operation->done) {
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
        &novacron__v1__operation__state__descriptor, (int)operation->state);
    return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "operation %s is not done (%s)", name,
                   v ? v->name : "unknown state");
  }
  if (operation->result_case == NOVACRON__V1__OPERATION__RESULT_ERROR ||
      operation->state == NOVACRON__V1__OPERATION__STATE__STATE_FAILED ||
      operation->state == NOVACRON__V1__OPERATION__STATE__STATE_CANCELLED) {
    const Novacron__V1__Status *e =
        operation->result_case == NOVACRON__V1__OPERATION__RESULT_ERROR ? operation->error : NULL;
    int code = e && e->code > 0 && e->code <= NC_GRPC_UNAUTHENTICATED ? e->code : 0;
    if (code == 0)
      code = operation->state == NOVACRON__V1__OPERATION__STATE__STATE_CANCELLED ? NC_GRPC_CANCELLED
                                                                                 : NC_GRPC_UNKNOWN;
    if (err) {
      err->code = code;
      if (e && e->message && *e->message)
        snprintf(err->message, sizeof(err->message), "%s", e->message);
      else
        snprintf(err->message, sizeof(err->message), "operation %s ended with %s", name,
                 nc_grpc_code_name(code));
    }
    return NC_ERR_RPC;
  }
  if (!response) return NC_OK;
  if (operation->result_case != NOVACRON__V1__OPERATION__RESULT_RESPONSE || !operation->response)
    return nc_fail(err, NC_ERR_DECODE, "operation %s succeeded without a response", name);
  return nc_any_unpack(operation->response, response_type, response, err);
}

/* ---- the WatchEvents iterator ---- */

struct nc_event_watch {
  unsigned magic;
  nc_client *client;
  unsigned flags;
  Novacron__V1__WatchEventsRequest *request; /* our copy; after_sequence follows the position */
  int64_t deadline_ms;                       /* per stream; -1: none */
  char *request_id;                          /* x-request-id of every stream, or NULL */
  pthread_mutex_t mu;                        /* guards `stream` against nc_event_watch_cancel */
  nc_stream *stream;
  bool first_seen; /* the current stream's first message has arrived */
  bool ended;      /* the current stream's final status was returned */
  int64_t last_sequence;
};

static bool watch_ok(const nc_event_watch *w) { return w && w->magic == NC_EVENT_WATCH_MAGIC; }

/* A deep copy of a request (NULL: an empty one), through its encoding. */
static nc_status copy_request(const Novacron__V1__WatchEventsRequest *request,
                              Novacron__V1__WatchEventsRequest **out, nc_error *err) {
  Novacron__V1__WatchEventsRequest empty = NOVACRON__V1__WATCH_EVENTS_REQUEST__INIT;
  const ProtobufCMessage *src = request ? &request->base : &empty.base;
  size_t n = protobuf_c_message_get_packed_size(src);
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) return nc_fail(err, NC_ERR_NO_MEMORY, "out of memory");
  protobuf_c_message_pack(src, buf);
  *out = (Novacron__V1__WatchEventsRequest *)protobuf_c_message_unpack(
      &novacron__v1__watch_events_request__descriptor, NULL, n, buf);
  free(buf);
  if (!*out) return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "the watch request could not be copied");
  return NC_OK;
}

/* Starts a stream with the watch's request; the old one must be gone. */
static nc_status watch_start(nc_event_watch *w, nc_error *err) {
  nc_stream *stream = NULL;
  nc_call_options call_opts = {.deadline_ms = w->deadline_ms, .request_id = w->request_id};
  nc_status st = nc_call_server_stream(
      w->client, "/" NC_EVENT_SERVICE "/WatchEvents", &w->request->base,
      &novacron__v1__watch_events_response__descriptor, &stream, &call_opts, err);
  if (st != NC_OK) return st;
  pthread_mutex_lock(&w->mu);
  w->stream = stream;
  w->first_seen = false;
  w->ended = false;
  pthread_mutex_unlock(&w->mu);
  return NC_OK;
}

/* Detaches and frees the current stream (cancelling it if still open). */
static void watch_stop(nc_event_watch *w) {
  pthread_mutex_lock(&w->mu);
  nc_stream *stream = w->stream;
  w->stream = NULL;
  pthread_mutex_unlock(&w->mu);
  nc_stream_free(stream);
}

static void watch_destroy(nc_event_watch *w) {
  watch_stop(w);
  nc_message_free(w->request ? &w->request->base : NULL);
  free(w->request_id);
  pthread_mutex_destroy(&w->mu);
  w->magic = 0;
  free(w);
}

nc_status nc_event_watch_open(nc_client *client, const Novacron__V1__WatchEventsRequest *request,
                              unsigned flags, nc_event_watch **out,
                              const nc_call_options *call_opts, nc_error *err) {
  nc_event_watch *w = NULL;
  nc_status st;

  nc_error_clear(err);
  if (out) *out = NULL;
  if (!out) return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "no output for the watch");
  if (!client || client->magic != NC_CLIENT_MAGIC)
    return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "invalid client handle");
  if (request && request->base.descriptor != &novacron__v1__watch_events_request__descriptor)
    return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "WatchEvents needs a %s, not a %s",
                   novacron__v1__watch_events_request__descriptor.name,
                   request->base.descriptor ? request->base.descriptor->name : "(no descriptor)");
  if (flags & ~(unsigned)NC_WATCH_HEARTBEATS)
    return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "unknown nc_event_watch_open flags 0x%x", flags);
  if (request && request->after_sequence < 0)
    return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "after_sequence must not be negative");
  if (!(w = calloc(1, sizeof(*w)))) return nc_fail(err, NC_ERR_NO_MEMORY, "out of memory");
  w->magic = NC_EVENT_WATCH_MAGIC;
  w->client = client;
  w->flags = flags;
  w->deadline_ms = call_opts && call_opts->deadline_ms > 0 ? call_opts->deadline_ms : -1;
  pthread_mutex_init(&w->mu, NULL);
  if (call_opts && call_opts->request_id && !(w->request_id = strdup(call_opts->request_id))) {
    st = nc_fail(err, NC_ERR_NO_MEMORY, "out of memory");
    goto cleanup;
  }
  if ((st = copy_request(request, &w->request, err)) != NC_OK) goto cleanup;
  w->last_sequence = w->request->after_sequence;
  if ((st = watch_start(w, err)) != NC_OK) goto cleanup;
  *out = w;
  w = NULL;
cleanup:
  if (w) watch_destroy(w);
  return st;
}

nc_status nc_event_watch_next(nc_event_watch *watch, Novacron__V1__Event **event,
                              int64_t timeout_ms, nc_error *err) {
  nc_event_watch *w = watch;
  int64_t until = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;

  nc_error_clear(err);
  if (event) *event = NULL;
  if (!watch_ok(w) || !event)
    return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "invalid watch handle or output");
  if (w->ended || !w->stream)
    return nc_fail(err, NC_ERR_CLOSED, "the watch's stream has ended: resume or free it");

  for (;;) {
    ProtobufCMessage *msg = NULL;
    int64_t wait = until < 0 ? -1 : until - now_ms();
    if (until >= 0 && wait < 0) wait = 0;
    nc_status st = nc_stream_next(w->stream, &msg, wait, err);
    if (st != NC_OK) {
      if (w->stream->state == NC_STREAM_ENDED) w->ended = true;
      return st;
    }
    Novacron__V1__WatchEventsResponse *resp = (Novacron__V1__WatchEventsResponse *)msg;
    Novacron__V1__Event *e = resp->event;
    bool first = !w->first_seen;
    w->first_seen = true;
    if (!e) {
      nc_message_free(msg);
      continue; /* nothing to report; the stream goes on */
    }
    resp->event = NULL;
    nc_message_free(msg);
    if (e->type == NOVACRON__V1__EVENT__TYPE__TYPE_HEARTBEAT) {
      /* a live-only watch starts at the head its first heartbeat names */
      if (first && w->request->after_sequence == 0 && e->sequence > w->last_sequence)
        w->last_sequence = e->sequence;
      if (!(w->flags & NC_WATCH_HEARTBEATS)) {
        nc_message_free(&e->base);
        continue;
      }
    } else if (e->sequence > w->last_sequence) {
      w->last_sequence = e->sequence;
    }
    *event = e;
    return NC_OK;
  }
}

nc_status nc_event_watch_resume(nc_event_watch *watch, nc_error *err) {
  nc_error_clear(err);
  if (!watch_ok(watch)) return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "invalid watch handle");
  watch_stop(watch);
  watch->request->after_sequence = watch->last_sequence;
  watch->ended = true; /* until the new stream exists */
  return watch_start(watch, err);
}

int64_t nc_event_watch_last_sequence(const nc_event_watch *watch) {
  return watch_ok(watch) ? watch->last_sequence : 0;
}

bool nc_event_watch_ended(const nc_event_watch *watch) {
  return watch_ok(watch) && (watch->ended || !watch->stream);
}

void nc_event_watch_cancel(nc_event_watch *watch) {
  if (!watch_ok(watch)) return;
  pthread_mutex_lock(&watch->mu);
  nc_stream_cancel(watch->stream);
  pthread_mutex_unlock(&watch->mu);
}

void nc_event_watch_free(nc_event_watch *watch) {
  if (watch_ok(watch)) watch_destroy(watch);
}
