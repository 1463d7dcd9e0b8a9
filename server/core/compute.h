/*
 * compute.h - hosts, VMs, snapshots and the operations engine: the domain
 * side of HostService, VmService and OperationsService.
 *
 * Reads (Get/List, GetVmStats) answer directly. Everything that talks to a
 * hypervisor is validated, then journaled as an Operation in the same
 * transaction that moves the resource into its transitional state; a
 * worker pool claims operations with FOR UPDATE SKIP LOCKED, does the
 * libvirt work through hv/ and records the outcome and the events in one
 * transaction. Executors converge (they look at the domain's real state
 * before acting), so an operation interrupted by a crash is simply run
 * again by the next worker that claims it: every operation ends SUCCEEDED,
 * FAILED or CANCELLED, deterministically.
 */
#ifndef NC_CORE_COMPUTE_H
#define NC_CORE_COMPUTE_H

#include "core/core.h"
#include "core/events.h"
#include "novacron/v1/host.pb-c.h"
#include "novacron/v1/network.pb-c.h"
#include "novacron/v1/operations.pb-c.h"
#include "novacron/v1/storage.pb-c.h"
#include "novacron/v1/vm.pb-c.h"
#include "store/pool.h"

typedef struct core_compute core_compute;

typedef struct core_compute_config {
  const char *replica_id;       /* names this server's claims; stable across restarts */
  int workers;                  /* operation worker threads */
  int lease_s;                  /* a claim not renewed for this long is taken over */
  int heartbeat_s;              /* host probe interval */
  int reconcile_s;              /* full reconciliation interval */
  const char *default_host_uri; /* registered as hosts/default on first start; "" = none */
  bool placement_pack;          /* pack (fill hosts) instead of spreading */
  double cpu_overcommit;        /* vCPUs per host CPU the scheduler may allocate */
  double memory_overcommit;     /* likewise for memory */
  int wait_max_s;               /* longest single WaitOperation without a deadline */
  int wait_slots;               /* WaitOperation calls that may block at once (0: 8); the
                                 * rest wait at most 1 s, so handler threads stay free */
  const char *default_pool;     /* pool id new volumes use when none is named ("default") */
  const char *image_dirs;       /* comma-separated host directories images may be imported
                                 * from; "" disables image imports */
  int detach_timeout_s;         /* how long a hot-unplug waits for the guest (0: 30) */
  const char *image_urls;       /* comma-separated http(s) URL prefixes images may be
                                 * downloaded from; "" disables URL imports */
} core_compute_config;

/* Connects the registered hosts, recovers the journal and starts the
 * workers, heartbeats and the reconciler. NULL on failure (err set). */
core_compute *core_compute_new(store_pool *db, core_events *events, const core_compute_config *cfg,
                               char *err, size_t errlen);
/* Stops the threads (running executors finish their current step; their
 * operations stay claimed and are resumed by the next start) and closes
 * the hypervisor connections. NULL is ignored. */
void core_compute_free(core_compute *c);

#define CORE_COMPUTE_FN(fn, Req, Resp)                                            \
  int core_##fn(core_compute *c, core_call *call, const Novacron__V1__##Req *req, \
                Novacron__V1__##Resp *resp)

/* HostService */
CORE_COMPUTE_FN(register_host, RegisterHostRequest, RegisterHostResponse);
CORE_COMPUTE_FN(get_host, GetHostRequest, GetHostResponse);
CORE_COMPUTE_FN(list_hosts, ListHostsRequest, ListHostsResponse);
CORE_COMPUTE_FN(update_host, UpdateHostRequest, UpdateHostResponse);
CORE_COMPUTE_FN(drain_host, DrainHostRequest, DrainHostResponse);
CORE_COMPUTE_FN(deregister_host, DeregisterHostRequest, DeregisterHostResponse);

/* VmService */
CORE_COMPUTE_FN(create_vm, CreateVmRequest, CreateVmResponse);
CORE_COMPUTE_FN(get_vm, GetVmRequest, GetVmResponse);
CORE_COMPUTE_FN(list_vms, ListVmsRequest, ListVmsResponse);
CORE_COMPUTE_FN(update_vm, UpdateVmRequest, UpdateVmResponse);
CORE_COMPUTE_FN(delete_vm, DeleteVmRequest, DeleteVmResponse);
CORE_COMPUTE_FN(start_vm, StartVmRequest, StartVmResponse);
CORE_COMPUTE_FN(stop_vm, StopVmRequest, StopVmResponse);
CORE_COMPUTE_FN(reboot_vm, RebootVmRequest, RebootVmResponse);
CORE_COMPUTE_FN(pause_vm, PauseVmRequest, PauseVmResponse);
CORE_COMPUTE_FN(resume_vm, ResumeVmRequest, ResumeVmResponse);
CORE_COMPUTE_FN(resize_vm, ResizeVmRequest, ResizeVmResponse);
CORE_COMPUTE_FN(migrate_vm, MigrateVmRequest, MigrateVmResponse);
CORE_COMPUTE_FN(clone_vm, CloneVmRequest, CloneVmResponse);
CORE_COMPUTE_FN(create_snapshot, CreateSnapshotRequest, CreateSnapshotResponse);
CORE_COMPUTE_FN(get_snapshot, GetSnapshotRequest, GetSnapshotResponse);
CORE_COMPUTE_FN(list_snapshots, ListSnapshotsRequest, ListSnapshotsResponse);
CORE_COMPUTE_FN(revert_snapshot, RevertSnapshotRequest, RevertSnapshotResponse);
CORE_COMPUTE_FN(delete_snapshot, DeleteSnapshotRequest, DeleteSnapshotResponse);
CORE_COMPUTE_FN(attach_volume, AttachVolumeRequest, AttachVolumeResponse);
CORE_COMPUTE_FN(detach_volume, DetachVolumeRequest, DetachVolumeResponse);
CORE_COMPUTE_FN(attach_nic, AttachNicRequest, AttachNicResponse);
CORE_COMPUTE_FN(detach_nic, DetachNicRequest, DetachNicResponse);
CORE_COMPUTE_FN(get_vm_stats, GetVmStatsRequest, GetVmStatsResponse);

/* StorageService (core/storage.c, core/storage_exec.c) */
CORE_COMPUTE_FN(create_pool, CreatePoolRequest, CreatePoolResponse);
CORE_COMPUTE_FN(get_pool, GetPoolRequest, GetPoolResponse);
CORE_COMPUTE_FN(list_pools, ListPoolsRequest, ListPoolsResponse);
CORE_COMPUTE_FN(delete_pool, DeletePoolRequest, DeletePoolResponse);
CORE_COMPUTE_FN(create_volume, CreateVolumeRequest, CreateVolumeResponse);
CORE_COMPUTE_FN(get_volume, GetVolumeRequest, GetVolumeResponse);
CORE_COMPUTE_FN(list_volumes, ListVolumesRequest, ListVolumesResponse);
CORE_COMPUTE_FN(resize_volume, ResizeVolumeRequest, ResizeVolumeResponse);
CORE_COMPUTE_FN(clone_volume, CloneVolumeRequest, CloneVolumeResponse);
CORE_COMPUTE_FN(delete_volume, DeleteVolumeRequest, DeleteVolumeResponse);

/* NetworkService (core/network.c, core/network_exec.c) */
CORE_COMPUTE_FN(create_network, CreateNetworkRequest, CreateNetworkResponse);
CORE_COMPUTE_FN(get_network, GetNetworkRequest, GetNetworkResponse);
CORE_COMPUTE_FN(list_networks, ListNetworksRequest, ListNetworksResponse);
CORE_COMPUTE_FN(update_network, UpdateNetworkRequest, UpdateNetworkResponse);
CORE_COMPUTE_FN(delete_network, DeleteNetworkRequest, DeleteNetworkResponse);
CORE_COMPUTE_FN(list_leases, ListLeasesRequest, ListLeasesResponse);
CORE_COMPUTE_FN(add_reservation, AddReservationRequest, AddReservationResponse);
CORE_COMPUTE_FN(remove_reservation, RemoveReservationRequest, RemoveReservationResponse);

/* OperationsService */
CORE_COMPUTE_FN(get_operation, GetOperationRequest, GetOperationResponse);
CORE_COMPUTE_FN(list_operations, ListOperationsRequest, ListOperationsResponse);
/* `deadline_ms`: what is left of the caller's deadline (INT64_MAX: none). */
int core_wait_operation(core_compute *c, core_call *call,
                        const Novacron__V1__WaitOperationRequest *req, int64_t deadline_ms,
                        Novacron__V1__WaitOperationResponse *resp);
CORE_COMPUTE_FN(cancel_operation, CancelOperationRequest, CancelOperationResponse);

#endif
