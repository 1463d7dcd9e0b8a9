/*
 * vm.c - the method table of novacron.v1.VmService: per method, the access
 * the authorization interceptor (api/authz.c) requires and the request
 * field naming the VM, snapshot or project it acts on. Reads need
 * ROLE_VIEWER, everything else ROLE_OPERATOR (vm.proto). No handlers yet:
 * the methods answer UNIMPLEMENTED after authorization.
 */
#include "api/compute.h"
#include "api/services.h"
#include "novacron/v1/vm.pb-c.h"

#define ROW(n, f, acc, sc, h) \
  { .name = n, .kind = RPC_UNARY, .handler = h, .flags = f, .access = acc, .scope = sc }
/* Every change is keyed by request_id, so it is retry-safe too. */
enum { RO = RPC_IDEMPOTENT, MUT = RPC_MUTATING | RPC_IDEMPOTENT };

API_COMPUTE_HANDLER(create_vm, CreateVmRequest, CreateVmResponse)
API_COMPUTE_HANDLER(get_vm, GetVmRequest, GetVmResponse)
API_COMPUTE_HANDLER(list_vms, ListVmsRequest, ListVmsResponse)
API_COMPUTE_HANDLER(update_vm, UpdateVmRequest, UpdateVmResponse)
API_COMPUTE_HANDLER(delete_vm, DeleteVmRequest, DeleteVmResponse)
API_COMPUTE_HANDLER(start_vm, StartVmRequest, StartVmResponse)
API_COMPUTE_HANDLER(stop_vm, StopVmRequest, StopVmResponse)
API_COMPUTE_HANDLER(reboot_vm, RebootVmRequest, RebootVmResponse)
API_COMPUTE_HANDLER(pause_vm, PauseVmRequest, PauseVmResponse)
API_COMPUTE_HANDLER(resume_vm, ResumeVmRequest, ResumeVmResponse)
API_COMPUTE_HANDLER(resize_vm, ResizeVmRequest, ResizeVmResponse)
API_COMPUTE_HANDLER(migrate_vm, MigrateVmRequest, MigrateVmResponse)
API_COMPUTE_HANDLER(clone_vm, CloneVmRequest, CloneVmResponse)
API_COMPUTE_HANDLER(create_snapshot, CreateSnapshotRequest, CreateSnapshotResponse)
API_COMPUTE_HANDLER(get_snapshot, GetSnapshotRequest, GetSnapshotResponse)
API_COMPUTE_HANDLER(list_snapshots, ListSnapshotsRequest, ListSnapshotsResponse)
API_COMPUTE_HANDLER(revert_snapshot, RevertSnapshotRequest, RevertSnapshotResponse)
API_COMPUTE_HANDLER(delete_snapshot, DeleteSnapshotRequest, DeleteSnapshotResponse)
API_COMPUTE_HANDLER(attach_volume, AttachVolumeRequest, AttachVolumeResponse)
API_COMPUTE_HANDLER(detach_volume, DetachVolumeRequest, DetachVolumeResponse)
API_COMPUTE_HANDLER(attach_nic, AttachNicRequest, AttachNicResponse)
API_COMPUTE_HANDLER(detach_nic, DetachNicRequest, DetachNicResponse)
API_COMPUTE_HANDLER(get_vm_stats, GetVmStatsRequest, GetVmStatsResponse)

static const rpc_method_row rows[] = {
    ROW("CreateVm", MUT, API_OPERATOR, "parent", h_create_vm),
    ROW("GetVm", RO, API_VIEWER, "name", h_get_vm),
    ROW("ListVms", RO, API_VIEWER | API_ACROSS_PROJECTS, "parent",
        h_list_vms), /* the handler filters */
    ROW("UpdateVm", MUT, API_OPERATOR, "vm.name", h_update_vm),
    ROW("DeleteVm", MUT, API_OPERATOR, "name", h_delete_vm),
    ROW("StartVm", MUT, API_OPERATOR, "name", h_start_vm),
    ROW("StopVm", MUT, API_OPERATOR, "name", h_stop_vm),
    ROW("RebootVm", MUT, API_OPERATOR, "name", h_reboot_vm),
    ROW("PauseVm", MUT, API_OPERATOR, "name", h_pause_vm),
    ROW("ResumeVm", MUT, API_OPERATOR, "name", h_resume_vm),
    ROW("ResizeVm", MUT, API_OPERATOR, "name", h_resize_vm),
    ROW("MigrateVm", MUT, API_OPERATOR, "name", h_migrate_vm),
    ROW("CloneVm", MUT, API_OPERATOR, "name", h_clone_vm),
    /* a snapshot's parent is its VM, projects/{project}/vms/{vm} */
    ROW("CreateSnapshot", MUT, API_OPERATOR, "parent", h_create_snapshot),
    ROW("GetSnapshot", RO, API_VIEWER, "name", h_get_snapshot),
    ROW("ListSnapshots", RO, API_VIEWER, "parent", h_list_snapshots),
    ROW("RevertSnapshot", MUT, API_OPERATOR, "name", h_revert_snapshot),
    ROW("DeleteSnapshot", MUT, API_OPERATOR, "name", h_delete_snapshot),
    ROW("AttachVolume", MUT, API_OPERATOR, "name", h_attach_volume),
    ROW("DetachVolume", MUT, API_OPERATOR, "name", h_detach_volume),
    ROW("AttachNic", MUT, API_OPERATOR, "name", h_attach_nic),
    ROW("DetachNic", MUT, API_OPERATOR, "name", h_detach_nic),
    ROW("GetVmStats", RO, API_VIEWER, "name", h_get_vm_stats),
};

const api_service api_vm_service = {&novacron__v1__vm_service__descriptor, API_ROWS(rows)};
