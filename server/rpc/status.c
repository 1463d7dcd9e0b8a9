/* status.c - gRPC status code names, for logs, novactl and tests. */
#include <stddef.h>
#include <stdlib.h>
#include <strings.h>

#include "rpc/rpc.h"

static const char *const names[] = {
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

#define NNAMES ((int)(sizeof(names) / sizeof(names[0])))

const char *rpc_status_name(int code) {
  return (code >= 0 && code < NNAMES) ? names[code] : "UNKNOWN_CODE";
}

int rpc_status_from_name(const char *name) {
  if (!name || !*name) return -1;
  char *end = NULL;
  long v = strtol(name, &end, 10);
  if (*end == '\0') return (v >= 0 && v < NNAMES) ? (int)v : -1;
  for (int i = 0; i < NNAMES; i++) {
    if (strcasecmp(name, names[i]) == 0) return i;
  }
  return -1;
}
