/*
 * storage.c - the method table of novacron.v1.StorageService: per method,
 * the access the authorization interceptor (api/authz.c) requires and the
 * request field naming the pool, volume, host or project it acts on.
 * Pools are infrastructure (storage.proto): creating and deleting them
 * needs a system administrator, any authenticated principal may read them.
 * Volumes belong to projects: reads need ROLE_VIEWER, changes
 * ROLE_OPERATOR. The handlers call core/storage.c.
 */
#include "api/compute.h"
#include "api/services.h"
#include "novacron/v1/storage.pb-c.h"

#define ROW(n, f, acc, sc, h) \
  { .name = n, .kind = RPC_UNARY, .handler = h, .flags = f, .access = acc, .scope = sc }
/* Every change is keyed by request_id, so it is retry-safe too. */
enum { RO = RPC_IDEMPOTENT, MUT = RPC_MUTATING | RPC_IDEMPOTENT };

API_COMPUTE_HANDLER(create_pool, CreatePoolRequest, CreatePoolResponse)
API_COMPUTE_HANDLER(get_pool, GetPoolRequest, GetPoolResponse)
API_COMPUTE_HANDLER(list_pools, ListPoolsRequest, ListPoolsResponse)
API_COMPUTE_HANDLER(delete_pool, DeletePoolRequest, DeletePoolResponse)
API_COMPUTE_HANDLER(create_volume, CreateVolumeRequest, CreateVolumeResponse)
API_COMPUTE_HANDLER(get_volume, GetVolumeRequest, GetVolumeResponse)
API_COMPUTE_HANDLER(list_volumes, ListVolumesRequest, ListVolumesResponse)
API_COMPUTE_HANDLER(resize_volume, ResizeVolumeRequest, ResizeVolumeResponse)
API_COMPUTE_HANDLER(clone_volume, CloneVolumeRequest, CloneVolumeResponse)
API_COMPUTE_HANDLER(delete_volume, DeleteVolumeRequest, DeleteVolumeResponse)

static const rpc_method_row rows[] = {
    ROW("CreatePool", MUT, API_SYSTEM_ADMIN, "parent", h_create_pool), /* hosts/{host} */
    ROW("GetPool", RO, API_AUTHENTICATED, "name", h_get_pool),
    ROW("ListPools", RO, API_AUTHENTICATED, "parent", h_list_pools), /* hosts/{host} or hosts/- */
    ROW("DeletePool", MUT, API_SYSTEM_ADMIN, "name", h_delete_pool),
    ROW("CreateVolume", MUT, API_OPERATOR, "parent", h_create_volume),
    ROW("GetVolume", RO, API_VIEWER, "name", h_get_volume),
    ROW("ListVolumes", RO, API_VIEWER, "parent", h_list_volumes),
    ROW("ResizeVolume", MUT, API_OPERATOR, "name", h_resize_volume),
    ROW("CloneVolume", MUT, API_OPERATOR, "name",
        h_clone_volume), /* the source; the copy stays in its project */
    ROW("DeleteVolume", MUT, API_OPERATOR, "name", h_delete_volume),
};

const api_service api_storage_service = {&novacron__v1__storage_service__descriptor,
                                         API_ROWS(rows)};
