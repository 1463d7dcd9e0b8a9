/*
 * storage.c - StorageService's client side (include/novacron/storage.h):
 * one row per method, each expanding to a typed wrapper of nc_call_unary
 * that first checks the request's message type (in proto order, so a
 * missing method is easy to spot). Waiting for the Operations these calls
 * return is compute.c's nc_operation_wait; nothing here retries.
 */
#include "internal.h"
#include "novacron/storage.h"

#define STORAGE(fn, METHOD, REQ, RESP, req_desc, resp_desc) \
  NC_TYPED_METHOD(fn, NC_STORAGE_SERVICE, METHOD, REQ, RESP, req_desc, resp_desc)

STORAGE(pool_create, CreatePool, CreatePoolRequest, CreatePoolResponse,
        novacron__v1__create_pool_request__descriptor,
        novacron__v1__create_pool_response__descriptor)
STORAGE(pool_get, GetPool, GetPoolRequest, GetPoolResponse,
        novacron__v1__get_pool_request__descriptor, novacron__v1__get_pool_response__descriptor)
STORAGE(pool_list, ListPools, ListPoolsRequest, ListPoolsResponse,
        novacron__v1__list_pools_request__descriptor, novacron__v1__list_pools_response__descriptor)
STORAGE(pool_delete, DeletePool, DeletePoolRequest, DeletePoolResponse,
        novacron__v1__delete_pool_request__descriptor,
        novacron__v1__delete_pool_response__descriptor)
STORAGE(volume_create, CreateVolume, CreateVolumeRequest, CreateVolumeResponse,
        novacron__v1__create_volume_request__descriptor,
        novacron__v1__create_volume_response__descriptor)
STORAGE(volume_get, GetVolume, GetVolumeRequest, GetVolumeResponse,
        novacron__v1__get_volume_request__descriptor, novacron__v1__get_volume_response__descriptor)
STORAGE(volume_list, ListVolumes, ListVolumesRequest, ListVolumesResponse,
        novacron__v1__list_volumes_request__descriptor,
        novacron__v1__list_volumes_response__descriptor)
STORAGE(volume_resize, ResizeVolume, ResizeVolumeRequest, ResizeVolumeResponse,
        novacron__v1__resize_volume_request__descriptor,
        novacron__v1__resize_volume_response__descriptor)
STORAGE(volume_clone, CloneVolume, CloneVolumeRequest, CloneVolumeResponse,
        novacron__v1__clone_volume_request__descriptor,
        novacron__v1__clone_volume_response__descriptor)
STORAGE(volume_delete, DeleteVolume, DeleteVolumeRequest, DeleteVolumeResponse,
        novacron__v1__delete_volume_request__descriptor,
        novacron__v1__delete_volume_response__descriptor)
