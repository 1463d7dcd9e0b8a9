/*
 * core.h - what every domain module in server/core shares: result codes
 * (numbered like gRPC's, so api/ passes them through unchanged), the
 * description of the call a domain function acts for, and the principal.
 *
 * core/ sits between api/ (decode, authorize, encode) and store/, auth/
 * (and later hv/). Domain functions take the decoded request and fill the
 * response in the call's allocator; they never see gRPC.
 */
#ifndef NC_CORE_CORE_H
#define NC_CORE_CORE_H

#include <protobuf-c/protobuf-c.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Result codes: the gRPC status numbering. */
enum {
  CORE_OK = 0,
  CORE_CANCELLED = 1,
  CORE_UNKNOWN = 2,
  CORE_INVALID_ARGUMENT = 3,
  CORE_DEADLINE_EXCEEDED = 4,
  CORE_NOT_FOUND = 5,
  CORE_ALREADY_EXISTS = 6,
  CORE_PERMISSION_DENIED = 7,
  CORE_RESOURCE_EXHAUSTED = 8,
  CORE_FAILED_PRECONDITION = 9,
  CORE_ABORTED = 10,
  CORE_OUT_OF_RANGE = 11,
  CORE_UNIMPLEMENTED = 12,
  CORE_INTERNAL = 13,
  CORE_UNAVAILABLE = 14,
  CORE_DATA_LOSS = 15,
  CORE_UNAUTHENTICATED = 16,
};

/* Project roles, as in novacron.v1.Role. */
enum { CORE_ROLE_NONE = 0, CORE_ROLE_VIEWER = 1, CORE_ROLE_OPERATOR = 2, CORE_ROLE_ADMIN = 3 };

typedef enum core_principal_kind {
  CORE_PRINCIPAL_USER = 1,
  CORE_PRINCIPAL_API_KEY = 2,
  CORE_PRINCIPAL_SERVICE = 3,
} core_principal_kind;

/* One project role of a principal. */
typedef struct core_binding {
  char project[64]; /* the {project} id */
  char id[64];      /* the binding's {binding} id; "" when synthesized (API keys, services) */
  int role;         /* CORE_ROLE_* */
} core_binding;

#define CORE_MAX_BINDINGS 256

/* An authenticated caller. */
typedef struct core_principal {
  core_principal_kind kind;
  char name[192];    /* users/alice, projects/p/apiKeys/ci, services/cn */
  char display[160]; /* display name, key description or certificate CN */
  char username[64]; /* users: the username */
  char user_uid[40]; /* users: users.id */
  char session[40];  /* users with an access token: the session uid */
  char key_uid[40];  /* API keys: api_keys.id */
  bool system_admin;
  int64_t expire; /* when the credential expires (Unix s); 0 = never */
  int nbindings;
  core_binding bindings[CORE_MAX_BINDINGS];
} core_principal;

/* The role `p` holds on `project` (CORE_ROLE_NONE if none); system
 * administrators hold CORE_ROLE_ADMIN everywhere. */
int core_principal_role(const core_principal *p, const char *project);

/* The call a domain function runs for. */
typedef struct core_call {
  const core_principal *who; /* NULL for unauthenticated calls (Login) */
  const char *method;        /* full method path, for idempotency records */
  const char *peer;          /* "ipv4:1.2.3.4:5678" */
  const char *user_agent;    /* may be NULL */
  ProtobufCAllocator *alloc; /* response memory (the call arena) */
  char *msg;                 /* human status message on failure */
  size_t msglen;
} core_call;

/* Writes a printf-style message into call->msg and returns `code`. */
int core_fail(core_call *call, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies `s` (NULL -> "") with the call's allocator; NULL when out of memory. */
char *core_strdup(core_call *call, const char *s);
/* Allocates zeroed memory with the call's allocator. */
void *core_alloc(core_call *call, size_t n);

#endif
