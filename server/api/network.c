/*
 * network.c - the method table of novacron.v1.NetworkService: per method,
 * the access the authorization interceptor (api/authz.c) requires, the
 * request field naming the network or project it acts on, and the handler
 * (core/network.c). Reads need ROLE_VIEWER, changes ROLE_OPERATOR
 * (network.proto).
 */
#include "api/compute.h"
#include "api/services.h"
#include "novacron/v1/network.pb-c.h"

#define ROW(n, f, acc, sc, h) \
  { .name = n, .kind = RPC_UNARY, .handler = h, .flags = f, .access = acc, .scope = sc }
/* Every change is keyed by request_id, so it is retry-safe too. */
enum { RO = RPC_IDEMPOTENT, MUT = RPC_MUTATING | RPC_IDEMPOTENT };

API_COMPUTE_HANDLER(create_network, CreateNetworkRequest, CreateNetworkResponse)
API_COMPUTE_HANDLER(get_network, GetNetworkRequest, GetNetworkResponse)
API_COMPUTE_HANDLER(list_networks, ListNetworksRequest, ListNetworksResponse)
API_COMPUTE_HANDLER(update_network, UpdateNetworkRequest, UpdateNetworkResponse)
API_COMPUTE_HANDLER(delete_network, DeleteNetworkRequest, DeleteNetworkResponse)
API_COMPUTE_HANDLER(list_leases, ListLeasesRequest, ListLeasesResponse)
API_COMPUTE_HANDLER(add_reservation, AddReservationRequest, AddReservationResponse)
API_COMPUTE_HANDLER(remove_reservation, RemoveReservationRequest, RemoveReservationResponse)

static const rpc_method_row rows[] = {
    ROW("CreateNetwork", MUT, API_OPERATOR, "parent", h_create_network),
    ROW("GetNetwork", RO, API_VIEWER, "name", h_get_network),
    ROW("ListNetworks", RO, API_VIEWER, "parent", h_list_networks),
    ROW("UpdateNetwork", MUT, API_OPERATOR, "network.name", h_update_network),
    ROW("DeleteNetwork", MUT, API_OPERATOR, "name", h_delete_network),
    ROW("ListLeases", RO, API_VIEWER, "parent", h_list_leases), /* the network */
    ROW("AddReservation", MUT, API_OPERATOR, "name", h_add_reservation),
    ROW("RemoveReservation", MUT, API_OPERATOR, "name", h_remove_reservation),
};

const api_service api_network_service = {&novacron__v1__network_service__descriptor,
                                         API_ROWS(rows)};
