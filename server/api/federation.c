/*
 * federation.c - the method table of novacron.v1.FederationService: per
 * method, the access the authorization interceptor (api/authz.c) requires
 * and the request field naming the peer, VM or project it acts on.
 * Managing peers needs a system administrator; cluster info and peers are
 * readable by any authenticated principal (peers probe each other with
 * GetClusterInfo using their API key); the federated VM list and
 * transfers are project-scoped (federation.proto). No handlers yet: the
 * methods answer UNIMPLEMENTED after authorization.
 */
#include "api/services.h"
#include "novacron/v1/federation.pb-c.h"

#define ROW(n, f, acc, sc) \
  { .name = n, .kind = RPC_UNARY, .flags = f, .access = acc, .scope = sc }
/* Every change is keyed by request_id, so it is retry-safe too. */
enum { RO = RPC_IDEMPOTENT, MUT = RPC_MUTATING | RPC_IDEMPOTENT };

static const rpc_method_row rows[] = {
    ROW("GetClusterInfo", RO, API_AUTHENTICATED, NULL),
    /* the new peer's id (as CreateUser's user_id): no name exists yet */
    ROW("RegisterPeer", MUT, API_SYSTEM_ADMIN, "peer_id"),
    ROW("GetPeer", RO, API_AUTHENTICATED, "name"),
    ROW("ListPeers", RO, API_AUTHENTICATED, NULL),
    ROW("RemovePeer", MUT, API_SYSTEM_ADMIN, "name"),
    /* local VMs: ROLE_VIEWER on parent, or projects/- and the handler filters */
    ROW("ListFederatedVms", RO, API_VIEWER | API_ACROSS_PROJECTS, "parent"),
    /* ROLE_OPERATOR on the local VM's project; any registered peer may be
     * the target (its API key limits what happens there) */
    ROW("TransferVm", MUT, API_OPERATOR, "name"),
};

const api_service api_federation_service = {&novacron__v1__federation_service__descriptor,
                                            API_ROWS(rows)};
