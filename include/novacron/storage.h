/*
 * storage.h - libnovacron's typed wrappers for novacron.v1.StorageService
 * (proto/novacron/v1/storage.proto): storage pools, which live on one
 * hypervisor host (`hosts/{host}/pools/{pool}`), and volumes, the virtual
 * disks a project owns (`projects/{project}/volumes/{volume}`).
 *
 * Include it next to novacron.h (it includes novacron.h and compute.h,
 * whose nc_operation_wait and nc_operation_result finish what these calls
 * start):
 *
 *   #include <novacron/storage.h>
 *
 * Every wrapper has the shape of the compute wrappers: the request message
 * in, on NC_OK a new response message out (release it with
 * nc_message_free), optional per-call options, optional nc_error. A request
 * of the wrong message type is NC_ERR_INVALID_ARGUMENT and no call is made.
 * Mutating requests carry a request_id field: fill it with
 * nc_new_request_id() so a retry returns the first answer (the same
 * Operation) instead of acting twice.
 *
 * Everything that touches a hypervisor answers with an Operation at once;
 * wait for it and read the resource it produced:
 *
 *   Novacron__V1__CreateVolumeResponse *resp = NULL;
 *   Novacron__V1__Operation *op = NULL;
 *   ProtobufCMessage *volume = NULL;
 *   st = nc_volume_create(client, &req, &resp, NULL, &err);
 *   if (st == NC_OK) st = nc_operation_wait(client, resp->operation->name, 600000, 0, &op, &err);
 *   if (st == NC_OK) st = nc_operation_result(op, &novacron__v1__volume__descriptor, &volume,
 * &err);
 *
 * Added in 0.2.
 */
#ifndef NOVACRON_STORAGE_H
#define NOVACRON_STORAGE_H

#include "novacron/compute.h"
#include "novacron/novacron.h"
#include "novacron/v1/storage.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The service's full name; methods are "/" NC_STORAGE_SERVICE "/CreatePool", ... */
#define NC_STORAGE_SERVICE "novacron.v1.StorageService"

/* Volume sizes are whole multiples of this many bytes (1 MiB). */
#define NC_VOLUME_SIZE_UNIT 1048576

/* ---- pools (infrastructure: changes need a system administrator, any
 * authenticated principal may read them) ---- */

/* CreatePool: defines, builds and starts a pool (dir, logical or netfs) on the host named by
 * `parent`. The Operation ends with the novacron.v1.Pool. ALREADY_EXISTS for a taken pool id,
 * NOT_FOUND for an unknown host, INVALID_ARGUMENT naming a field that does not fit the pool
 * type. Added in 0.2. */
NC_API nc_status nc_pool_create(nc_client *client, const Novacron__V1__CreatePoolRequest *request,
                                Novacron__V1__CreatePoolResponse **response,
                                const nc_call_options *call_opts, nc_error *err);

/* GetPool: a pool with its latest capacity figures. Added in 0.2. */
NC_API nc_status nc_pool_get(nc_client *client, const Novacron__V1__GetPoolRequest *request,
                             Novacron__V1__GetPoolResponse **response,
                             const nc_call_options *call_opts, nc_error *err);

/* ListPools of one host, or of every host with parent `hosts/-` (one page; follow
 * next_page_token). Added in 0.2. */
NC_API nc_status nc_pool_list(nc_client *client, const Novacron__V1__ListPoolsRequest *request,
                              Novacron__V1__ListPoolsResponse **response,
                              const nc_call_options *call_opts, nc_error *err);

/* DeletePool: stops and undefines a pool (and with delete_storage removes its directory or
 * volume group). FAILED_PRECONDITION while NovaCron volumes remain in it; a stale etag answers
 * ABORTED. The Operation ends with the novacron.v1.Pool as last seen. Added in 0.2. */
NC_API nc_status nc_pool_delete(nc_client *client, const Novacron__V1__DeletePoolRequest *request,
                                Novacron__V1__DeletePoolResponse **response,
                                const nc_call_options *call_opts, nc_error *err);

/* ---- volumes (reads need ROLE_VIEWER on the project, changes ROLE_OPERATOR) ---- */

/* CreateVolume: blank, copied from another volume of the project (source_volume) or imported
 * from an image (source_image). The Operation ends with the novacron.v1.Volume. NOT_FOUND for
 * the pool or source, RESOURCE_EXHAUSTED when the quota or the pool's free space is too small.
 * Added in 0.2. */
NC_API nc_status nc_volume_create(nc_client *client,
                                  const Novacron__V1__CreateVolumeRequest *request,
                                  Novacron__V1__CreateVolumeResponse **response,
                                  const nc_call_options *call_opts, nc_error *err);

/* GetVolume. PERMISSION_DENIED without a role on its project, whether it exists or not.
 * Added in 0.2. */
NC_API nc_status nc_volume_get(nc_client *client, const Novacron__V1__GetVolumeRequest *request,
                               Novacron__V1__GetVolumeResponse **response,
                               const nc_call_options *call_opts, nc_error *err);

/* ListVolumes of a project (one page; follow next_page_token). Added in 0.2. */
NC_API nc_status nc_volume_list(nc_client *client, const Novacron__V1__ListVolumesRequest *request,
                                Novacron__V1__ListVolumesResponse **response,
                                const nc_call_options *call_opts, nc_error *err);

/* ResizeVolume: a new virtual size (a multiple of NC_VOLUME_SIZE_UNIT). Growing works while
 * attached; shrinking needs allow_shrink and a detached volume. The Operation ends with the
 * novacron.v1.Volume. Added in 0.2. */
NC_API nc_status nc_volume_resize(nc_client *client,
                                  const Novacron__V1__ResizeVolumeRequest *request,
                                  Novacron__V1__ResizeVolumeResponse **response,
                                  const nc_call_options *call_opts, nc_error *err);

/* CloneVolume: copies a volume (not attached to a running VM, else FAILED_PRECONDITION) into a
 * new volume of the same project. The Operation ends with the new novacron.v1.Volume.
 * Added in 0.2. */
NC_API nc_status nc_volume_clone(nc_client *client, const Novacron__V1__CloneVolumeRequest *request,
                                 Novacron__V1__CloneVolumeResponse **response,
                                 const nc_call_options *call_opts, nc_error *err);

/* DeleteVolume: removes a volume and its storage (zeroed first with `wipe`).
 * FAILED_PRECONDITION while attached; a stale etag answers ABORTED. The Operation ends with the
 * novacron.v1.Volume as last seen. Added in 0.2. */
NC_API nc_status nc_volume_delete(nc_client *client,
                                  const Novacron__V1__DeleteVolumeRequest *request,
                                  Novacron__V1__DeleteVolumeResponse **response,
                                  const nc_call_options *call_opts, nc_error *err);

#ifdef __cplusplus
}
#endif

#endif
