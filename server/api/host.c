/*
 * host.c - the method table of novacron.v1.HostService: per method, the
 * access the authorization interceptor (api/authz.c) requires and the
 * request field naming the host. Hosts are system-level (host.proto):
 * changes need a system administrator, any authenticated principal may
 * read them (the handler blanks `uri` for non-administrators). No handlers
 * yet: the methods answer UNIMPLEMENTED after authorization.
 */
#include "api/compute.h"
#include "api/services.h"
#include "novacron/v1/host.pb-c.h"

#define ROW(n, f, acc, sc, h) \
  { .name = n, .kind = RPC_UNARY, .handler = h, .flags = f, .access = acc, .scope = sc }
/* Every change is keyed by request_id, so it is retry-safe too. */
enum { RO = RPC_IDEMPOTENT, MUT = RPC_MUTATING | RPC_IDEMPOTENT };

API_COMPUTE_HANDLER(register_host, RegisterHostRequest, RegisterHostResponse)
API_COMPUTE_HANDLER(get_host, GetHostRequest, GetHostResponse)
API_COMPUTE_HANDLER(list_hosts, ListHostsRequest, ListHostsResponse)
API_COMPUTE_HANDLER(update_host, UpdateHostRequest, UpdateHostResponse)
API_COMPUTE_HANDLER(drain_host, DrainHostRequest, DrainHostResponse)
API_COMPUTE_HANDLER(deregister_host, DeregisterHostRequest, DeregisterHostResponse)

static const rpc_method_row rows[] = {
    /* the new host's id (as CreateUser's user_id): no name exists yet */
    ROW("RegisterHost", MUT, API_SYSTEM_ADMIN, "host_id", h_register_host),
    ROW("GetHost", RO, API_AUTHENTICATED, "name", h_get_host),
    ROW("ListHosts", RO, API_AUTHENTICATED, NULL, h_list_hosts),
    ROW("UpdateHost", MUT, API_SYSTEM_ADMIN, "host.name", h_update_host),
    ROW("DrainHost", MUT, API_SYSTEM_ADMIN, "name", h_drain_host),
    ROW("DeregisterHost", MUT, API_SYSTEM_ADMIN, "name", h_deregister_host),
};

const api_service api_host_service = {&novacron__v1__host_service__descriptor, API_ROWS(rows)};
