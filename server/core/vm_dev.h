/*
 * vm_dev.h - a VM's disks and NICs (core/vm_dev.c), shared by core/vm.c
 * (requests) and core/vm_exec.c (executors); not an API.
 */
#ifndef NC_CORE_VM_DEV_H
#define NC_CORE_VM_DEV_H

#include "core/compute_int.h"

/* Volumes per VM (the hypervisor layer has room for one more disk: the
 * config drive of a VM with user data, at CORE_SEED_TARGET). */
#define CORE_MAX_DISKS 16
#define CORE_SEED_TARGET "vdz"

typedef struct plan_disk {
  Novacron__V1__VmDisk *disk; /* as the VM records it: volume name, target */
  bool fresh;                 /* a new volume the operation creates */
  char uid[40];               /* the volume row (existing; new ones once recorded) */
  char target[8];
  /* new volumes */
  char volume_id[64];
  char pool_host[64], pool_id[64], pool_uid[40];
  bool pool_named; /* the request named the pool (else --default-pool) */
  char field[48];  /* "disks[0].new_volume", for messages */
  int format;
  int64_t size;
  const char *source_volume, *source_image;
} plan_disk;

typedef struct plan_nic {
  Novacron__V1__VmNic *nic; /* as the VM records it: network, MAC */
  char net_uid[40];
  char mac[18];
} plan_nic;

/* The devices of one request, resolved and locked in its transaction. */
typedef struct dev_plan {
  core_compute *c;
  char project[64], puid[40], vm_id[64];
  char pin_host[64];  /* the host every device (and the VM) is on; "" = any */
  char pin_what[200]; /* what pinned it, for messages */
  size_t ndisks_before;
  char targets[32][8];
  size_t ntargets;
  char macs[16][18];
  size_t nmacs;
  plan_disk d[HV_MAX_DISKS];
  size_t nd;
  plan_nic n[HV_MAX_NICS];
  size_t nn;
} dev_plan;

/* The `index` of the one device an Attach request adds ("disk", "nic" in
 * messages). */
#define CORE_DEV_ATTACH ((size_t)-1)

/* `existing`: the VM a device is added to (its targets, MACs and host), or
 * NULL for CreateVm. */
void core_dev_plan_init(dev_plan *p, core_compute *c, const char *project, const char *puid,
                        const char *vm_id, const Novacron__V1__Vm *existing);
int core_dev_plan_disk(core_tx *tx, store_conn *conn, dev_plan *p, const Novacron__V1__VmDisk *d,
                       size_t index);
int core_dev_plan_nic(core_tx *tx, store_conn *conn, dev_plan *p, const Novacron__V1__VmNic *n,
                      size_t index);
/* Once the VM's host is known: pools of new volumes, space, quota. */
int core_dev_plan_host(core_tx *tx, store_conn *conn, dev_plan *p, const char *host_id);
/* Writes the reservations for VM `vm_uid`. */
int core_dev_plan_record(core_tx *tx, store_conn *conn, dev_plan *p, const char *vm_uid);

/* Marks the plan's reservations as the operation's (after it is
 * journaled): its executor finds them, its outcome attaches or frees them. */
int core_dev_plan_tag(core_tx *tx, store_conn *conn, const dev_plan *p, const char *vm_uid,
                      const Novacron__V1__Operation *operation);
/* Frees what operations that ended without an outcome left reserved on a
 * VM (called under the VM's row lock, with no operation in progress). */
int core_dev_release_stale(core_tx *tx, store_conn *conn, core_op *op, const char *vm_uid);

/* Outcomes, in the operation's transaction. `pending_only` releases what
 * `op` reserved. */
int core_vm_devices_commit(core_tx *tx, store_conn *conn, core_op *op, const char *vm_uid);
int core_vm_devices_release(core_tx *tx, store_conn *conn, core_op *op, const char *vm_uid,
                            bool pending_only, bool delete_all);

/* The libvirt side: create the VM's pending new volumes; delete them (or
 * all its volumes) from their hosts. */
int core_vm_volumes_materialize(core_op *op, const char *vm_uid, char *err, size_t errlen);
void core_vm_volumes_unmaterialize(core_op *op, const char *vm_uid, bool all, bool wipe);

/* The domain spec of a VM with its disks' host paths and NICs' libvirt
 * networks. FAILED_PRECONDITION when a volume or network is missing. */
int core_vm_full_spec(core_compute *c, core_call *call, const Novacron__V1__Vm *vm, const char *uid,
                      hv_domain_spec *spec);
void core_disk_hv(const Novacron__V1__VmDisk *d, const char *path, int format, hv_disk *out);
void core_nic_hv(const Novacron__V1__VmNic *n, const char *libvirt_network, hv_nic *out);

/* ---- the cloud-init config drive (core/vm_seed.c) ---- */

/* The pool that takes the config drive of a VM on `host_id` (the
 * --default-pool there; FAILED_PRECONDITION when missing or inactive). */
int core_seed_pool(core_tx *tx, store_conn *conn, core_compute *c, const char *host_id,
                   char pool_uid[40]);
/* Writes the VM's config drive on `host` and records its path (nothing
 * when the VM has no seed pool). No transaction of the caller's. */
int core_vm_seed_make(core_op *op, const char *host, const char *uid, const char *user_data,
                      char *err, size_t errlen);
/* Deletes it from `host` (failures are logged). */
void core_vm_seed_remove(core_op *op, const char *host, const char *uid);
/* Adds the recorded drive to a domain spec as a read-only virtio disk. */
int core_vm_seed_disk(core_compute *c, core_call *call, const Novacron__V1__Vm *vm, const char *uid,
                      hv_domain_spec *spec);

/* ---- what the NICs look like on the host (core/vm_nics.c) ---- */

#define CORE_NIC_IPS 4

typedef struct core_nic_seen {
  char mac[18];
  char target[16]; /* host-side device while the domain runs, else "" */
  char ips[CORE_NIC_IPS][46];
  int nips;
  bool keep_ips; /* the leases could not be read: keep the recorded ones */
} core_nic_seen;

typedef struct core_nics_seen {
  bool ok; /* observed (else there is nothing to record) */
  int n;
  core_nic_seen nic[HV_MAX_NICS];
} core_nics_seen;

/* Leases read during one pass, one read per network. */
typedef struct core_lease_cache core_lease_cache;
core_lease_cache *core_lease_cache_new(void);
void core_lease_cache_free(core_lease_cache *lc);

/* Observes VM `uid`'s NICs on `host`: devices from `live` (the running
 * domain's definition; read here when NULL and `running`), addresses from
 * the DHCP leases of their networks (through `lc` when given). Leaves
 * out->ok false when nothing could be observed. No transaction. */
void core_nics_observe(core_compute *c, core_call *call, const char *host, const char *uid,
                       const hv_domain_spec *live, bool running, core_lease_cache *lc,
                       core_nics_seen *out);
/* Records an observation in the caller's transaction (no version bump). */
int core_nics_record(core_tx *tx, store_conn *conn, const char *uid, const core_nics_seen *s);
/* core_nics_record in a transaction of its own; failures are logged. */
void core_nics_save(core_compute *c, core_call *call, const char *uid, const core_nics_seen *s);
/* Fills VmNic.target_device and ip_addresses from VM_COLS' NIC column. */
void core_nics_render(core_call *call, Novacron__V1__Vm *vm, const char *seen);

#endif
