/*
 * host.c - the method table of novacron.v1.HostService: per method, the
 * access the authorization interceptor (api/authz.c) requires and the
 * request field naming the host. Hosts are system-level (host.proto):
 * changes need a system administrator, any authenticated principal may
 * read them (the handler blanks `uri` for non-administrators). No handlers
 * yet: the methods answer UNIMPLEMENTED after authorization.
 */
#include "api/services.h"
#include "novacron/v1/host.pb-c.h"

#define ROW(n, f, acc, sc) \
  { .name = n, .kind = RPC_UNARY, .flags = f, .access = acc, .scope = sc }
/* Every change is keyed by request_id, so it is retry-safe too. */
enum { RO = RPC_IDEMPOTENT, MUT = RPC_MUTATING | RPC_IDEMPOTENT };

static const rpc_method_row rows[] = {
    /* the new host's id (as CreateUser's user_id): no name exists yet */
    ROW("RegisterHost", MUT, API_SYSTEM_ADMIN, "host_id"),
    ROW("GetHost", RO, API_AUTHENTICATED, "name"),
    ROW("ListHosts", RO, API_AUTHENTICATED, NULL),
    ROW("UpdateHost", MUT, API_SYSTEM_ADMIN, "host.name"),
    ROW("DrainHost", MUT, API_SYSTEM_ADMIN, "name"),
    ROW("DeregisterHost", MUT, API_SYSTEM_ADMIN, "name"),
};

const api_service api_host_service = {&novacron__v1__host_service__descriptor, API_ROWS(rows)};
