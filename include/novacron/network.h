/*
 * network.h - libnovacron's typed wrappers for novacron.v1.NetworkService
 * (proto/novacron/v1/network.proto): virtual networks of a project
 * (`projects/{project}/networks/{network}`), each defined on one hypervisor
 * host, their live DHCP leases and their fixed DHCP reservations.
 *
 * Include it next to novacron.h (it includes novacron.h and compute.h,
 * whose nc_operation_wait and nc_operation_result finish what these calls
 * start):
 *
 *   #include <novacron/network.h>
 *
 * Every wrapper has the shape of the compute wrappers: the request message
 * in, on NC_OK a new response message out (release it with
 * nc_message_free), optional per-call options, optional nc_error. A request
 * of the wrong message type is NC_ERR_INVALID_ARGUMENT and no call is made.
 * Mutating requests carry a request_id field: fill it with
 * nc_new_request_id() so a retry returns the first answer (the same
 * Operation) instead of acting twice.
 *
 * Reads (Get, List, ListLeases) answer directly; everything that changes
 * the host's network definition answers with an Operation whose response is
 * the novacron.v1.Network (&novacron__v1__network__descriptor for
 * nc_operation_result). Reads need ROLE_VIEWER on the project, changes
 * ROLE_OPERATOR.
 *
 * Added in 0.2.
 */
#ifndef NOVACRON_NETWORK_H
#define NOVACRON_NETWORK_H

#include "novacron/compute.h"
#include "novacron/novacron.h"
#include "novacron/v1/network.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The service's full name; methods are "/" NC_NETWORK_SERVICE "/CreateNetwork", ... */
#define NC_NETWORK_SERVICE "novacron.v1.NetworkService"

/* CreateNetwork: defines and starts a network (NAT, isolated, routed, or joining a host bridge)
 * on its `host`, with optional initial DHCP reservations. The Operation ends with the
 * novacron.v1.Network. INVALID_ARGUMENT names an inconsistent field (e.g. a gateway outside
 * ipv4_cidr); FAILED_PRECONDITION when the subnet overlaps another network on the host;
 * RESOURCE_EXHAUSTED over quota. Added in 0.2. */
NC_API nc_status nc_network_create(nc_client *client,
                                   const Novacron__V1__CreateNetworkRequest *request,
                                   Novacron__V1__CreateNetworkResponse **response,
                                   const nc_call_options *call_opts, nc_error *err);

/* GetNetwork: a network with its reservations. Added in 0.2. */
NC_API nc_status nc_network_get(nc_client *client, const Novacron__V1__GetNetworkRequest *request,
                                Novacron__V1__GetNetworkResponse **response,
                                const nc_call_options *call_opts, nc_error *err);

/* ListNetworks of a project (one page; follow next_page_token). Added in 0.2. */
NC_API nc_status nc_network_list(nc_client *client,
                                 const Novacron__V1__ListNetworksRequest *request,
                                 Novacron__V1__ListNetworksResponse **response,
                                 const nc_call_options *call_opts, nc_error *err);

/* UpdateNetwork: the fields named by update_mask (description, labels, autostart, mtu,
 * dhcp_start, dhcp_end; an empty mask or another path is INVALID_ARGUMENT), applied on the
 * host. A stale etag answers ABORTED. The Operation ends with the novacron.v1.Network.
 * Added in 0.2. */
NC_API nc_status nc_network_update(nc_client *client,
                                   const Novacron__V1__UpdateNetworkRequest *request,
                                   Novacron__V1__UpdateNetworkResponse **response,
                                   const nc_call_options *call_opts, nc_error *err);

/* DeleteNetwork: stops and undefines a network. FAILED_PRECONDITION while a VM interface is
 * connected to it; a stale etag answers ABORTED. The Operation ends with the
 * novacron.v1.Network as last seen. Added in 0.2. */
NC_API nc_status nc_network_delete(nc_client *client,
                                   const Novacron__V1__DeleteNetworkRequest *request,
                                   Novacron__V1__DeleteNetworkResponse **response,
                                   const nc_call_options *call_opts, nc_error *err);

/* ListLeases: the DHCP leases a network's host holds now (one page, a best-effort snapshot).
 * FAILED_PRECONDITION for bridge networks, UNAVAILABLE when the host cannot be reached.
 * Added in 0.2. */
NC_API nc_status nc_network_list_leases(nc_client *client,
                                        const Novacron__V1__ListLeasesRequest *request,
                                        Novacron__V1__ListLeasesResponse **response,
                                        const nc_call_options *call_opts, nc_error *err);

/* AddReservation: a fixed DHCP assignment MAC -> IP (and hostname). ALREADY_EXISTS when the
 * MAC, IP or hostname is reserved already; FAILED_PRECONDITION for bridge networks. The
 * Operation ends with the updated novacron.v1.Network. Added in 0.2. */
NC_API nc_status nc_network_add_reservation(nc_client *client,
                                            const Novacron__V1__AddReservationRequest *request,
                                            Novacron__V1__AddReservationResponse **response,
                                            const nc_call_options *call_opts, nc_error *err);

/* RemoveReservation: the reservation of a MAC address (NOT_FOUND when it has none); a lease
 * already handed out stays valid until it expires. The Operation ends with the updated
 * novacron.v1.Network. Added in 0.2. */
NC_API nc_status nc_network_remove_reservation(
    nc_client *client, const Novacron__V1__RemoveReservationRequest *request,
    Novacron__V1__RemoveReservationResponse **response, const nc_call_options *call_opts,
    nc_error *err);

#ifdef __cplusplus
}
#endif

#endif
