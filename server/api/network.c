/*
 * network.c - the method table of novacron.v1.NetworkService: per method,
 * the access the authorization interceptor (api/authz.c) requires and the
 * request field naming the network or project it acts on. Reads need
 * ROLE_VIEWER, changes ROLE_OPERATOR (network.proto). No handlers yet: the
 * methods answer UNIMPLEMENTED after authorization.
 */
#include "api/services.h"
#include "novacron/v1/network.pb-c.h"

#define ROW(n, f, acc, sc) \
  { .name = n, .kind = RPC_UNARY, .flags = f, .access = acc, .scope = sc }
/* Every change is keyed by request_id, so it is retry-safe too. */
enum { RO = RPC_IDEMPOTENT, MUT = RPC_MUTATING | RPC_IDEMPOTENT };

static const rpc_method_row rows[] = {
    ROW("CreateNetwork", MUT, API_OPERATOR, "parent"),
    ROW("GetNetwork", RO, API_VIEWER, "name"),
    ROW("ListNetworks", RO, API_VIEWER, "parent"),
    ROW("UpdateNetwork", MUT, API_OPERATOR, "network.name"),
    ROW("DeleteNetwork", MUT, API_OPERATOR, "name"),
    ROW("ListLeases", RO, API_VIEWER, "parent"), /* the network */
    ROW("AddReservation", MUT, API_OPERATOR, "name"),
    ROW("RemoveReservation", MUT, API_OPERATOR, "name"),
};

const api_service api_network_service = {&novacron__v1__network_service__descriptor,
                                         API_ROWS(rows)};
