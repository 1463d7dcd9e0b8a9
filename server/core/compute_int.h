/*
 * compute_int.h - what the files of the compute side share (core/ops.c,
 * core/vm.c, core/vm_exec.c, core/host.c, core/sched.c, core/reconcile.c);
 * not an API.
 */
#ifndef NC_CORE_COMPUTE_INT_H
#define NC_CORE_COMPUTE_INT_H

#include <pthread.h>

#include "core/compute.h"
#include "core/internal.h"
#include "hv/hv.h"

#define VERB_PREFIX "novacron.v1."

/* A heap arena for work done outside an RPC (executors, background loops):
 * a core_call whose allocations are freed together. */
typedef struct core_arena {
  ProtobufCAllocator alloc;
  void *blocks;
} core_arena;
void core_arena_init(core_arena *a);
void core_arena_free(core_arena *a);

/* A queued hypervisor event, handed from the libvirt loop to the reconciler. */
typedef struct hv_note {
  struct hv_note *next;
  char host[64];
  char uuid[37];
  int state;
  bool conn_change, up;
} hv_note;

struct core_compute {
  store_pool *db;
  core_events *ev;
  hv *hv;
  core_compute_config cfg;
  char replica[128];
  char instance[40]; /* this process's row in replicas (core/replica.c) */
  pthread_mutex_t mu;
  pthread_cond_t work;  /* operations may be waiting */
  pthread_cond_t done;  /* an operation finished (WaitOperation) */
  pthread_cond_t bg_cv; /* the background loop has something to do */
  uint64_t work_gen;
  uint64_t done_gen; /* bumped with every `done` broadcast */
  int waiting;       /* WaitOperation calls blocked in a long wait */
  bool stopping;
  pthread_t *workers;
  int nworkers;
  pthread_t bg;
  bool bg_started;
  hv_note *notes, **notes_tail;
  int nnotes;
};

/* One claimed operation, as an executor sees it. */
typedef struct core_op {
  core_compute *c;
  char id[40];
  char verb[96];
  char target[256];
  char target_uid[40];
  char project[64]; /* project id, "" for system-level work */
  char principal[192];
  char request_id[64];
  int attempts; /* 1 on the first run; more after a crash or lost lease */
  ProtobufCMessage *req;
  core_arena arena;
  core_call call; /* allocator = arena, msg = msg */
  char msg[512];
} core_op;

/* ---- operations journal (core/ops.c) ---- */

typedef struct core_op_new {
  const char *verb;        /* "VmService.StartVm" (VERB_PREFIX is prepended) */
  const char *target;      /* resource name */
  const char *target_uid;  /* the row's uuid, or NULL */
  const char *project_uid; /* NULL for system-level work */
  const char *project_id;  /* "" for system-level work */
  const ProtobufCMessage *req;
  const char *request_id;
  const char *status_message;
} core_op_new;

/* Journals an operation in the caller's transaction and appends its
 * TYPE_OPERATION_CREATED event; *out is the Operation (call allocator). */
int core_op_enqueue(core_tx *tx, store_conn *conn, const core_op_new *n,
                    Novacron__V1__Operation **out);
/* An Operation that is already done without being journaled
 * (validate_only): SUCCEEDED with `response`. */
Novacron__V1__Operation *core_op_done_now(core_call *call, const char *verb, const char *target,
                                          const ProtobufCMessage *response);
/* True once the server is stopping: long executor waits return without
 * finishing (the next start resumes the operation). */
bool core_compute_stopping(core_compute *c);
/* Wakes the workers after a commit that journaled operations. */
void core_compute_kick(core_compute *c);
/* The id of an unfinished operation on `target_uid`, or CORE_OK with
 * id[0] == 0 when there is none. */
int core_op_active(core_tx *tx, store_conn *conn, const char *target_uid, char id[40],
                   char verb[96]);
/* FAILED_PRECONDITION naming the operation in progress on a resource. */
int core_op_busy(core_call *call, const char *what, const char *op_id, const char *verb,
                 const char *project);

/* Progress report from an executor: also renews the lease; returns true
 * when cancellation was requested. */
bool core_op_progress(core_op *op, int percent, const char *status);
/* Ends the operation. With code CORE_OK, `apply` runs first in the same
 * transaction: it records the resource changes and returns the response
 * message (call allocator of the tx). With an error code, `apply` (if not
 * NULL) still runs, to record the resource's state after the failure, and
 * the operation fails with `message`. */
typedef int (*core_op_apply_fn)(store_conn *conn, core_tx *tx, core_op *op,
                                ProtobufCMessage **response, void *arg);
int core_op_finish(core_op *op, int code, const char *message, core_op_apply_fn apply, void *arg);

/* The executor of one verb. Returns after core_op_finish, or with an
 * error the engine finishes the operation with. */
typedef int (*core_exec_fn)(core_op *op);
typedef struct core_verb {
  const char *verb; /* without VERB_PREFIX */
  const ProtobufCMessageDescriptor *req;
  core_exec_fn exec;
} core_verb;
extern const core_verb core_vm_verbs[];
extern const size_t core_vm_nverbs;
extern const core_verb core_host_verbs[];
extern const size_t core_host_nverbs;
extern const core_verb core_storage_verbs[];
extern const size_t core_storage_nverbs;
extern const core_verb core_network_verbs[];
extern const size_t core_network_nverbs;

void *core_ops_worker(void *arg);
/* Renews the lease of every operation this replica is running (called by
 * the background loop every lease/3 seconds). */
void core_ops_renew_leases(core_compute *c);
/* Runs of one operation (crashes, lost leases) before it is failed. */
#define CORE_OP_MAX_ATTEMPTS 5
/* Starts and stops the worker pool. */
int core_ops_start(core_compute *c);
void core_ops_stop(core_compute *c);

/* An Any holding `msg`, with type URL type.googleapis.com/<full name>. */
Google__Protobuf__Any *core_any_pack(core_call *call, const ProtobufCMessage *msg);
/* "\\x<hex>" text of a packed message, for a bytea parameter (malloc'ed). */
char *core_pack_bytea(const ProtobufCMessage *msg);
/* Unpacks a bytea column's value (libpq text form); NULL on empty/invalid. */
ProtobufCMessage *core_unpack_bytea(core_call *call, const ProtobufCMessageDescriptor *d,
                                    const char *text);

/* The message of a failed hypervisor call for users: libvirt's text, or,
 * when the host cannot be reached, only that (libvirt's text then names
 * the host's address and user, which the API shows only to system
 * administrators); the full text goes to the log. */
void core_hv_failed(char *m, size_t mlen, int code, const char *what, const char *host,
                    const char *err);

/* ---- events of the compute side ---- */
int core_emit(core_tx *tx, store_conn *conn, core_op *op, int type, const char *resource,
              const char *project, const char *message, const ProtobufCMessage *payload);

/* ---- VMs (core/vm.c) ---- */

/* The columns vm_from_row reads (FROM vms v JOIN projects p ... LEFT JOIN
 * hosts h ...). */
#define VM_COLS \
  "v.id, p.project_id, v.vm_id, v.description, v.labels::text, v.state, v.state_message, " \
  "v.vcpus, v.memory_mib, v.max_vcpus, v.max_memory_mib, v.disks, v.nics, v.placement, "   \
  "v.user_data, v.machine_type, v.firmware, h.host_id, v.version, " CORE_TS(               \
      "v.created_at") ", " CORE_TS("v.updated_at") ", v.project, v.host, (SELECT "           \
                                                   "string_agg(n.mac::text || '|' || "          \
                                                   "n.target_device || '|' || "                 \
                                                   "array_to_string(n.ip_addresses, ','), ';') " \
                                                   "FROM vm_nics n WHERE n.vm = v.id)"
#define VM_NCOLS 24
/* SQL: VM row `v` has an operation in progress, its own or the drain that
 * is moving it (vms.migrating_op). */
#define VM_BUSY_SQL(v)                                                             \
  "EXISTS (SELECT 1 FROM operations o WHERE (o.target_uid = " v ".id OR o.id = " v \
  ".migrating_op) AND o.state IN (1, 2))"
#define VM_FROM " FROM vms v JOIN projects p ON p.id = v.project LEFT JOIN hosts h ON h.id = v.host"
Novacron__V1__Vm *core_vm_from_row(core_call *call, const PGresult *r, int i);
/* Reads a VM (optionally FOR UPDATE OF v) by its uid; NOT_FOUND if gone. */
int core_vm_load_uid(core_tx *tx, store_conn *conn, const char *uid, bool lock, PGresult **res);
const char *core_vm_state_name(int state);
/* Sets state/message (bumping version) and appends TYPE_VM_STATE_CHANGED
 * when it changed; *out (may be NULL) receives the VM afterwards. */
int core_vm_set_state(core_tx *tx, store_conn *conn, core_op *op, const char *uid, int state,
                      const char *message, Novacron__V1__Vm **out);
/* The hv spec of a VM record (host-independent parts). */
void core_vm_spec(const Novacron__V1__Vm *vm, const char *uid, hv_domain_spec *spec);

/* Snapshots: the row (SNAP columns + config) of `snap` of a VM. */
int core_snapshot_load(core_tx *tx, store_conn *conn, const char *vm_uid, const char *snap,
                       bool lock, PGresult **res);
Novacron__V1__VmSnapshot *core_snapshot_from_row(core_call *call, const PGresult *r, int i);
#define SNAP_CONFIG_COL 14

/* Vm.State for a libvirt domain state (hv_dom_state). */
int core_vm_state_of(int hv_state);
/* Records a VM's new host (when host_uid is set, with TYPE_VM_UPDATED) and
 * state (with TYPE_VM_STATE_CHANGED when it changed); *out (may be NULL)
 * receives the VM. */
int core_vm_record_move(core_tx *tx, store_conn *conn, core_op *op, const char *uid,
                        const char *host_uid, int state, const char *message,
                        Novacron__V1__Vm **out);
/* Moves a VM's domain to `target` (a host id, or "" for the scheduler's
 * choice) without finishing the operation: MigrateVm and DrainHost. */
int core_vm_move(core_op *op, const char *vm_uid, const char *target, bool live, char dst[64],
                 char dst_uid[40], int *final_state, char *err, size_t errlen);

/* ---- hosts (core/host.c) ---- */
#define HOST_COLS \
  "h.id, h.host_id, h.description, h.labels::text, h.version, " CORE_TS(                       \
      "h.created_at") ", " CORE_TS("h.updated_at") ", h.state, h.state_message, h.uri, "       \
                       "h.cordoned, h.hypervisor_type, h.hypervisor_version, h.libvirt_version, " \
                       "h.hostname, h.arch, h.cpu_count, h.memory_mib, h.free_memory_mib, "       \
                       "coalesce(a.vcpus, 0), coalesce(a.mem, 0), coalesce(a.n, 0), " CORE_TS(    \
                           "h.last_heartbeat_at")
#define HOST_FROM                                                                       \
  " FROM hosts h LEFT JOIN (SELECT host, sum(vcpus) AS vcpus, sum(memory_mib) AS mem, " \
  "count(*) AS n FROM vms GROUP BY host) a ON a.host = h.id"
Novacron__V1__Host *core_host_from_row(core_call *call, const PGresult *r, int i, bool show_uri);
int core_host_set_state(core_tx *tx, store_conn *conn, core_op *op, const char *host_id, int state,
                        const char *message);
/* hv info of the host a domain lives on (for define). */
int core_host_info(core_compute *c, core_call *call, const char *host_id, hv_host_info *info);
/* Registers the default host on first start; connects every host. */
int core_hosts_start(core_compute *c, char *err, size_t errlen);
void core_hosts_heartbeat(core_compute *c);

/* ---- placement (core/sched.c) ---- */
/* Chooses a host for `vm` (its placement, vcpus, memory) among READY,
 * uncordoned hosts, excluding `exclude_host` (a host id or NULL); writes
 * the host id and uuid. RESOURCE_EXHAUSTED (no capacity) or
 * FAILED_PRECONDITION (no host matches the rules). */
int core_place(core_tx *tx, store_conn *conn, core_compute *c, const Novacron__V1__Vm *vm,
               const char *project_uid, const char *vm_uid, const char *exclude_host,
               char host_id[64], char host_uid[40]);

/* ---- storage and networks (core/storage*.c, core/network*.c) ---- */
/* An ephemeral host (the test driver) lost its pools, volumes and networks
 * with the process: define them again from PostgreSQL. Called before its
 * domains are restored. */
void core_storage_restore(core_compute *c, const char *host_id);
void core_networks_restore(core_compute *c, const char *host_id);
/* Heartbeat of a reachable host: refresh pool capacity figures, and pool /
 * network states (ACTIVE / INACTIVE / ERROR when gone) without bumping
 * versions for figures alone. */
void core_storage_refresh(core_compute *c, const char *host_id);
void core_networks_refresh(core_compute *c, const char *host_id);

/* ---- networks (core/network.c, core/network_exec.c) ---- */
/* The columns core_network_from_row reads (NET_FROM). The reservations
 * come as "mac ip hostname" items joined by ',' (no field can hold either
 * separator). */
#define NET_RESV_COL                                                                              \
  "(SELECT coalesce(string_agg(r.mac::text || ' ' || host(r.ip) || ' ' || r.hostname, ',' ORDER " \
  "BY r.ip), '') FROM network_reservations r WHERE r.network = n.id)"
#define NET_COLS                                                                                \
  "n.id, p.project_id, n.network_id, h.host_id, n.mode, n.bridge, coalesce(n.ipv4_cidr::text, " \
  "''), coalesce(host(n.gateway), ''), coalesce(n.ipv6_cidr::text, ''), "                       \
  "coalesce(host(n.dhcp_start), ''), coalesce(host(n.dhcp_end), ''), n.vlan_id, n.mtu, "        \
  "n.autostart, n.state, n.state_message, n.description, n.labels::text, n.version, " CORE_TS(  \
      "n.created_at") ", " CORE_TS("n.updated_at") ", " NET_RESV_COL ", n.project, n.host"
#define NET_NCOLS 24
#define NET_FROM \
  " FROM networks n JOIN projects p ON p.id = n.project JOIN hosts h ON h.id = n.host"
enum { NET_C_VERSION = 18, NET_C_PROJECT_UID = 22 };
Novacron__V1__Network *core_network_from_row(core_call *call, const PGresult *r, int i);
/* Reads a network (optionally FOR UPDATE OF n) by its uid; NOT_FOUND if gone. */
int core_network_load_uid(core_tx *tx, store_conn *conn, const char *uid, bool lock,
                          PGresult **res);
const char *core_network_state_name(int state);
/* Sets a network's state and message (version bump when either changed)
 * and appends TYPE_RESOURCE_UPDATED when the state changed; *out (may be
 * NULL) receives the network afterwards. */
int core_network_set_state(core_tx *tx, store_conn *conn, core_op *op, const char *uid, int state,
                           const char *message, Novacron__V1__Network **out);
/* The hv spec of a network record; *hosts (the reservations, which
 * spec->hosts points to) is malloc'ed. -1 when out of memory. */
int core_network_spec(const Novacron__V1__Network *n, const char *uid, hv_net_spec *spec,
                      hv_net_host **hosts);

/* ---- reconciliation (core/reconcile.c) ---- */
void core_reconcile_host(core_compute *c, const char *host_id, bool restore_ephemeral);
void core_reconcile_note(core_compute *c, const char *host, const char *uuid, int state);

/* ---- one live server per replica id (core/replica.c) ---- */

/* Records this server under its replica id; FAILED_PRECONDITION (err
 * says which server) when a live server holds the id. */
int core_replica_claim(core_compute *c, char *err, size_t errlen);
/* Refreshes the record (with the operation leases); logs a takeover. */
void core_replica_beat(core_compute *c, store_conn *conn);
/* Removes the record at a clean stop. */
void core_replica_release(core_compute *c);
void *core_compute_bg(void *arg);
void core_reconcile_all(core_compute *c);
void core_compute_on_event(const hv_event *ev, void *arg);
void core_compute_on_conn(const char *host_id, bool up, const char *message, void *arg);

#endif
