/*
 * storage_int.h - what core/storage.c, core/storage_exec.c and the VM side
 * (core/vm.c, core/vm_exec.c, core/vm_dev.c) share about pools and
 * volumes; not an API.
 */
#ifndef NC_CORE_STORAGE_INT_H
#define NC_CORE_STORAGE_INT_H

#include "core/compute_int.h"

#define GIB INT64_C(1073741824)
#define MIB INT64_C(1048576)
/* The largest volume: 64 TiB (VmDiskNewVolume.size_gib's 65536). */
#define VOLUME_MAX_BYTES (INT64_C(65536) * GIB)

/* pool_from_row's columns (FROM pools pl JOIN hosts h). */
#define POOL_COLS                                                                                 \
  "pl.id, h.host_id, pl.pool_id, pl.type, pl.target_path, array_to_string(pl.source_devices, "    \
  "E'\\n'), pl.source_host, pl.source_export, pl.autostart, pl.state, pl.state_message, "         \
  "pl.capacity_bytes, pl.allocation_bytes, pl.available_bytes, pl.description, pl.labels::text, " \
  "pl.version, " CORE_TS("pl.created_at") ", " CORE_TS("pl.updated_at") ", pl.host"
#define POOL_NCOLS 20
#define POOL_FROM " FROM pools pl JOIN hosts h ON h.id = pl.host"
Novacron__V1__Pool *core_pool_from_row(core_call *call, const PGresult *r, int i);

/* volume_from_row's columns (VOL_FROM). */
#define VOL_COLS \
  "vo.id, p.project_id, vo.volume_id, h.host_id, pl.pool_id, vo.format, vo.size_bytes, "      \
  "vo.allocation_bytes, vo.source_volume, vo.source_image, av.vm_id, vo.target_device, "      \
  "vo.state, vo.state_message, vo.description, vo.labels::text, vo.version, " CORE_TS(        \
      "vo.created_at") ", " CORE_TS("vo.updated_at") ", vo.path, vo.pool, vo.project, "       \
                         "vo.attached_vm, pl.host, pl.state, av.state"
#define VOL_NCOLS 26
#define VOL_FROM                                                                            \
  " FROM volumes vo JOIN projects p ON p.id = vo.project JOIN pools pl ON pl.id = vo.pool " \
  "JOIN hosts h ON h.id = pl.host LEFT JOIN vms av ON av.id = vo.attached_vm"
/* column indexes past the proto's */
enum {
  VOL_C_PATH = 19,
  VOL_C_POOL_UID = 20,
  VOL_C_PROJECT_UID = 21,
  VOL_C_VM_UID = 22,
  VOL_C_HOST_UID = 23,
  VOL_C_POOL_STATE = 24,
  VOL_C_VM_STATE = 25,
};
Novacron__V1__Volume *core_volume_from_row(core_call *call, const PGresult *r, int i);
/* Loads a volume by project id and volume id (optionally FOR UPDATE OF
 * vo); NOT_FOUND naming it. */
int core_volume_load(core_tx *tx, store_conn *conn, const char *project, const char *volume,
                     bool lock, PGresult **res);
const char *core_volume_state_name(int state);
/* The libvirt volume name of a volume: "{project}.{volume}". */
void core_volume_lvname(const char *project, const char *volume, char *out, size_t len);
/* Size rounded up to whole GiB, as the quota counts it. */
int64_t core_gib_up(int64_t bytes);
/* RESOURCE_EXHAUSTED when `add_count` more volumes or `add_gib` more GiB
 * of them would exceed the project's volumes or volume_gib quota (locks
 * the quota row). */
int core_volume_quota(core_tx *tx, store_conn *conn, const char *project_uid, int64_t add_count,
                      int64_t add_gib);
/* Locks a project's quota row: every transaction that locks volumes or
 * pools of a project takes it first, so they queue in one order. */
int core_quota_lock(core_tx *tx, store_conn *conn, const char *project_uid);
/* Books `bytes` of a pool's space for a new or grown raw volume (fully
 * allocated), so the next request sees it before the heartbeat refreshes
 * the pool's figures from the host. */
int core_pool_book(core_tx *tx, store_conn *conn, const char *pool_uid, int64_t bytes);
/* Sets a volume's state and message (version bump, TYPE_RESOURCE_UPDATED
 * event); *out (may be NULL) receives the volume afterwards. */
int core_volume_set(core_tx *tx, store_conn *conn, core_op *op, const char *uid, int state,
                    const char *message, Novacron__V1__Volume **out);

/* The libvirt side of a volume to create: blank, a clone of another
 * volume, or an image import; used by CreateVolume, CloneVolume and the
 * new volumes of CreateVm / AttachVolume. Converges (an existing libvirt
 * volume of the name is taken). On success the row records the path and
 * allocation (state unchanged). */
int core_volume_materialize(core_op *op, const char *vol_uid, char *err, size_t errlen);
/* Deletes a volume's libvirt volume (NOT_FOUND counts as done). */
int core_volume_unmaterialize(core_op *op, const char *vol_uid, bool wipe, char *err,
                              size_t errlen);

/* Records pool `pool_uid`'s figures as libvirt has them now (after a
 * volume was made or deleted), so the next request sees the space;
 * best effort, no version bump. */
void core_pool_figures_now(core_compute *c, core_call *call, const char *host,
                           const char *pool_uid);

/* Validation shared by CreateVolume and VmDiskNewVolume. */
int core_check_image(core_compute *c, core_call *call, const char *field, const char *image);
/* An http:// or https:// source_image (else a host path). */
bool core_image_is_url(const char *image);
/* --storage-image-urls at start: every entry an http(s) URL prefix. */
int core_check_image_urls(const char *list, char *err, size_t errlen);

#endif
