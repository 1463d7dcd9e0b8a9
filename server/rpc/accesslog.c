/*
 * accesslog.c - the access-log interceptor: one structured record per
 * finished call with request id, method, peer, principal, status and
 * latency. Failed calls carry their status message too.
 */
#include <time.h>

#include "rpc/accesslog.h"
#include "rpc/internal.h"
#include "util/log.h"

static void after(rpc_call *call, int status, const char *message, void *arg) {
  (void)arg;
  nc_log_level level = NC_LOG_INFO;
  if (status == GRPC_STATUS_INTERNAL || status == GRPC_STATUS_UNKNOWN ||
      status == GRPC_STATUS_DATA_LOSS)
    level = NC_LOG_ERROR;
  if (!nc_log_enabled(level)) return;
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  double ms = (double)(now.tv_sec - call->started.tv_sec) * 1e3 +
              (double)(now.tv_nsec - call->started.tv_nsec) / 1e6;
  const char *principal = rpc_call_principal(call);
  if (status == GRPC_STATUS_OK) {
    nc_log(level, "rpc", LKV_S("request_id", rpc_call_request_id(call)),
           LKV_S("method", rpc_call_method(call)), LKV_S("peer", rpc_call_peer(call)),
           LKV_S("principal", principal), LKV_S("status", rpc_status_name(status)),
           LKV_D("latency_ms", ms));
  } else {
    nc_log(level, "rpc", LKV_S("request_id", rpc_call_request_id(call)),
           LKV_S("method", rpc_call_method(call)), LKV_S("peer", rpc_call_peer(call)),
           LKV_S("principal", principal), LKV_S("status", rpc_status_name(status)),
           LKV_D("latency_ms", ms), LKV_S("error", message));
  }
}

const rpc_interceptor rpc_access_log_interceptor = {"access-log", NULL, after, NULL};
