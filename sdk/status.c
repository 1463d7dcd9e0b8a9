/*
 * status.c - the library's static strings (version, status descriptions,
 * gRPC code and health status names) and the nc_error fillers every other
 * file uses, so an error is described once, where it is decided.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define NC_STR2(x) #x
#define NC_STR(x) NC_STR2(x)

const char *nc_version(void) {
  return NC_STR(NC_VERSION_MAJOR) "." NC_STR(NC_VERSION_MINOR) "." NC_STR(NC_VERSION_PATCH);
}

const char *nc_strerror(nc_status status) {
  switch (status) {
  case NC_OK: return "no error";
  case NC_ERR_INVALID_ARGUMENT: return "invalid argument";
  case NC_ERR_NO_MEMORY: return "out of memory";
  case NC_ERR_TLS: return "TLS material could not be loaded";
  case NC_ERR_RPC: return "RPC failed";
  case NC_ERR_DECODE: return "response could not be decoded";
  case NC_ERR_END_OF_STREAM: return "end of stream";
  case NC_ERR_CLOSED: return "client or stream closed";
  case NC_ERR_IO: return "local file could not be read";
  case NC_ERR_NOT_FOUND: return "not found";
  }
  return "unknown status";
}

static const char *const grpc_code_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *nc_grpc_code_name(int code) {
  if (code < 0 || (size_t)code >= sizeof(grpc_code_names) / sizeof(grpc_code_names[0]))
    return "UNKNOWN_CODE";
  return grpc_code_names[code];
}

const char *nc_health_status_name(nc_health_status status) {
  switch (status) {
  case NC_HEALTH_UNKNOWN: return "UNKNOWN";
  case NC_HEALTH_SERVING: return "SERVING";
  case NC_HEALTH_NOT_SERVING: return "NOT_SERVING";
  case NC_HEALTH_SERVICE_UNKNOWN: return "SERVICE_UNKNOWN";
  }
  return "UNKNOWN";
}

void nc_error_clear(nc_error *err) {
  if (!err) return;
  err->code = NC_GRPC_OK;
  err->message[0] = '\0';
  err->request_id[0] = '\0';
}

nc_status nc_fail(nc_error *err, nc_status status, const char *fmt, ...) {
  if (!err) return status;
  va_list ap;
  err->code = NC_GRPC_UNKNOWN;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof(err->message), fmt, ap);
  va_end(ap);
  return status;
}

nc_status nc_fail_rpc(nc_error *err, grpc_status_code code, const grpc_slice *details,
                      const char *request_id) {
  if (err) {
    err->code = (int)code;
    size_t n = details ? GRPC_SLICE_LENGTH(*details) : 0;
    if (n >= sizeof(err->message)) n = sizeof(err->message) - 1;
    if (n > 0) memcpy(err->message, GRPC_SLICE_START_PTR(*details), n);
    err->message[n] = '\0';
    if (n == 0 && code != GRPC_STATUS_OK)
      snprintf(err->message, sizeof(err->message), "%s", nc_grpc_code_name((int)code));
    if (request_id) snprintf(err->request_id, sizeof(err->request_id), "%s", request_id);
  }
  return code == GRPC_STATUS_OK ? NC_OK : NC_ERR_RPC;
}
