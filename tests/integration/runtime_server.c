/*
 * runtime_server.c - a test server for server/rpc itself. The product's
 * services are all UNIMPLEMENTED or inline today, so this binary registers
 * worker-pool handlers of every cardinality on real descriptors and lets
 * tests/e2e/test_runtime.py drive the paths later services depend on:
 * backpressure, status ordering, invalid codes, overload, cancellation,
 * deadlines and shutdown while handlers run.
 *
 * Behaviour is chosen by the request's string field:
 *   GetVm.name            "sleep:MS" | "code:N" | "poll:MS" (sleep in 10 ms
 *                         steps until cancelled; counts cancellations seen)
 *   WatchEvents.parent    "N" (send N messages then OK) | "N/code:C" (send
 *                         N then end with C) | "code:C"
 *   ServerReflectionInfo  v1 as bidi: echo host, "code:N" ends the call;
 *                         v1alpha as client streaming: counts messages
 * Plaintext on 127.0.0.1 (a test fixture, not the product server).
 * Usage: runtime_server READY_FILE WORKERS WORKER_QUEUE GRACE_MS STREAM_QUEUE
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "novacron/v1/event.pb-c.h"
#include "novacron/v1/vm.pb-c.h"
#include "rpc/accesslog.h"
#include "rpc/rpc.h"

static int num(const char *s) { return (int)strtol(s, NULL, 10); }

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int unary(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *resp, void *ctx) {
  const char *what = ((const Novacron__V1__GetVmRequest *)req)->name;
  Novacron__V1__GetVmResponse *out = (void *)resp;
  if (strncmp(what, "sleep:", 6) == 0) {
    fprintf(stderr, "runtime_server: handler sleeping %s ms\n", what + 6);
    sleep_ms(num(what + 6));
  }
  if (strncmp(what, "code:", 5) == 0) return rpc_fail(c, num(what + 5), "asked for %s", what);
  if (strncmp(what, "poll:", 5) == 0) {
    for (int waited = 0; waited < num(what + 5); waited += 10) {
      if (rpc_call_cancelled(c)) {
        fprintf(stderr, "runtime_server: handler saw cancellation after %d ms\n", waited);
        return rpc_fail(c, 1, "cancelled");
      }
      sleep_ms(10);
    }
  }
  static Novacron__V1__Vm vm = NOVACRON__V1__VM__INIT;
  out->vm = &vm;
  return 0;
}

static int server_stream(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *resp,
                         void *ctx) {
  const char *what = ((const Novacron__V1__WatchEventsRequest *)req)->parent;
  if (strncmp(what, "code:", 5) == 0) return rpc_fail(c, num(what + 5), "asked for %s", what);
  int n = num(what);
  const char *code = strstr(what, "/code:");
  Novacron__V1__WatchEventsResponse msg = NOVACRON__V1__WATCH_EVENTS_RESPONSE__INIT;
  Novacron__V1__Event ev = NOVACRON__V1__EVENT__INIT;
  msg.event = &ev;
  for (int i = 0; i < n; i++) {
    ev.sequence = i + 1;
    if (!rpc_stream_send(c, &msg.base)) {
      fprintf(stderr, "runtime_server: stream refused message %d of %d\n", i + 1, n);
      return rpc_fail(c, 10, "stream refused a message");
    }
  }
  return code ? rpc_fail(c, num(code + 6), "ended with %s", code + 1) : 0;
}

static int bidi(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *resp, void *ctx) {
  const char *host = ((const Grpc__Reflection__V1__ServerReflectionRequest *)req)->host;
  if (strncmp(host, "code:", 5) == 0) return rpc_fail(c, num(host + 5), "asked for %s", host);
  ((Grpc__Reflection__V1__ServerReflectionResponse *)resp)->valid_host = (char *)host;
  return 0;
}

static int client_stream(rpc_call *c, const ProtobufCMessage *req, ProtobufCMessage *resp,
                         void *ctx) {
  int *count = rpc_call_data(c);
  if (!count) {
    count = rpc_call_alloc(c, sizeof(*count));
    *count = 0;
    rpc_call_set_data(c, count);
  }
  if (req) {
    (*count)++;
    return 0;
  }
  char buf[32];
  snprintf(buf, sizeof(buf), "%d", *count);
  ((Grpc__Reflection__V1alpha__ServerReflectionResponse *)resp)->valid_host =
      rpc_call_strdup(c, buf);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s READY_FILE WORKERS WORKER_QUEUE GRACE_MS STREAM_QUEUE\n", argv[0]);
    return 2;
  }
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  rpc_server_options o = {.listen_addr = "127.0.0.1:0",
                          .insecure = true,
                          .cq_threads = 2,
                          .workers = num(argv[2]),
                          .worker_queue_limit = num(argv[3]),
                          .stream_queue_limit = num(argv[5]),
                          .requests_per_method = 2};
  rpc_server *srv = NULL;
  char err[256], bound[128];
  const rpc_method_row b[] = {
      {.name = "ServerReflectionInfo", .kind = RPC_BIDI_STREAMING, .handler = bidi, .flags = 0}};
  const rpc_method_row cs[] = {{.name = "ServerReflectionInfo",
                                .kind = RPC_CLIENT_STREAMING,
                                .handler = client_stream,
                                .flags = 0}};
  const rpc_method_row ss[] = {
      {.name = "WatchEvents", .kind = RPC_SERVER_STREAMING, .handler = server_stream, .flags = 0}};
  const rpc_method_row un[] = {{.name = "GetVm", .kind = RPC_UNARY, .handler = unary, .flags = 0}};
  if (rpc_server_create(&o, &srv, err, sizeof(err)) ||
      rpc_server_add_service(srv, &grpc__reflection__v1__server_reflection__descriptor, b, 1, NULL,
                             err, sizeof(err)) ||
      rpc_server_add_service(srv, &grpc__reflection__v1alpha__server_reflection__descriptor, cs, 1,
                             NULL, err, sizeof(err)) ||
      rpc_server_add_service(srv, &novacron__v1__event_service__descriptor, ss, 1, NULL, err,
                             sizeof(err)) ||
      rpc_server_add_service(srv, &novacron__v1__vm_service__descriptor, un, 1, NULL, err,
                             sizeof(err))) {
    fprintf(stderr, "runtime_server: %s\n", err);
    rpc_server_destroy(srv);
    return 1;
  }
  rpc_server_add_interceptor(srv, &rpc_access_log_interceptor);
  if (rpc_server_start(srv, bound, sizeof(bound), err, sizeof(err))) {
    fprintf(stderr, "runtime_server: %s\n", err);
    rpc_server_destroy(srv);
    return 1;
  }
  char tmp[4096];
  snprintf(tmp, sizeof(tmp), "%s.tmp", argv[1]);
  FILE *fp = fopen(tmp, "w");
  if (!fp) return 1;
  fprintf(fp, "%s\n", bound);
  if (fclose(fp) != 0 || rename(tmp, argv[1]) != 0)
    return 1; /* readers never see it half-written */
  int sig = 0;
  sigwait(&sigs, &sig);
  rpc_server_shutdown(srv, num(argv[4]));
  rpc_server_destroy(srv);
  fprintf(stderr, "runtime_server: clean exit\n");
  return 0;
}
