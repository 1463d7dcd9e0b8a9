/*
 * network.c - NetworkService's client side (include/novacron/network.h):
 * one row per method, each expanding to a typed wrapper of nc_call_unary
 * that first checks the request's message type (in proto order, so a
 * missing method is easy to spot). Waiting for the Operations these calls
 * return is compute.c's nc_operation_wait; nothing here retries.
 */
#include "internal.h"
#include "novacron/network.h"

#define NETWORK(fn, METHOD, REQ, RESP, req_desc, resp_desc) \
  NC_TYPED_METHOD(network_##fn, NC_NETWORK_SERVICE, METHOD, REQ, RESP, req_desc, resp_desc)

NETWORK(create, CreateNetwork, CreateNetworkRequest, CreateNetworkResponse,
        novacron__v1__create_network_request__descriptor,
        novacron__v1__create_network_response__descriptor)
NETWORK(get, GetNetwork, GetNetworkRequest, GetNetworkResponse,
        novacron__v1__get_network_request__descriptor,
        novacron__v1__get_network_response__descriptor)
NETWORK(list, ListNetworks, ListNetworksRequest, ListNetworksResponse,
        novacron__v1__list_networks_request__descriptor,
        novacron__v1__list_networks_response__descriptor)
NETWORK(update, UpdateNetwork, UpdateNetworkRequest, UpdateNetworkResponse,
        novacron__v1__update_network_request__descriptor,
        novacron__v1__update_network_response__descriptor)
NETWORK(delete, DeleteNetwork, DeleteNetworkRequest, DeleteNetworkResponse,
        novacron__v1__delete_network_request__descriptor,
        novacron__v1__delete_network_response__descriptor)
NETWORK(list_leases, ListLeases, ListLeasesRequest, ListLeasesResponse,
        novacron__v1__list_leases_request__descriptor,
        novacron__v1__list_leases_response__descriptor)
NETWORK(add_reservation, AddReservation, AddReservationRequest, AddReservationResponse,
        novacron__v1__add_reservation_request__descriptor,
        novacron__v1__add_reservation_response__descriptor)
NETWORK(remove_reservation, RemoveReservation, RemoveReservationRequest, RemoveReservationResponse,
        novacron__v1__remove_reservation_request__descriptor,
        novacron__v1__remove_reservation_response__descriptor)
