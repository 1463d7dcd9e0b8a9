/*
 * hv.h - the libvirt layer: one connection per registered host, domain XML
 * built from a VM spec and parsed back with libxml2, domain lifecycle
 * calls, statistics, snapshots, migration and lifecycle events.
 *
 * hv/ depends only on util/, libvirt and libxml2 (DESIGN.md section 1): it
 * knows hosts by their id and domains by their UUID, nothing about
 * projects, PostgreSQL or gRPC. Results are HV_* codes numbered like gRPC
 * statuses (so core/ passes them through) with a human message in `err`
 * that never contains a libvirt stack, only libvirt's own message.
 *
 * Thread safety: every function may be called from any thread; libvirt
 * connections are shared and internally locked.
 */
#ifndef NC_HV_HV_H
#define NC_HV_HV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Result codes: the gRPC status numbering. */
enum {
  HV_OK = 0,
  HV_CANCELLED = 1,           /* the caller gave up (an upload it stopped) */
  HV_DEADLINE_EXCEEDED = 4,   /* a wait (graceful shutdown) timed out */
  HV_NOT_FOUND = 5,           /* no such domain / snapshot; probe: host id not open */
  HV_ALREADY_EXISTS = 6,      /* a domain or snapshot of that name exists */
  HV_INVALID_ARGUMENT = 3,    /* the spec cannot be expressed */
  HV_RESOURCE_EXHAUSTED = 8,  /* no room (a pool too full for an upload) */
  HV_FAILED_PRECONDITION = 9, /* wrong domain state for the call */
  HV_UNIMPLEMENTED = 12,      /* the driver does not support the call */
  HV_INTERNAL = 13,           /* anything else libvirt refused */
  HV_UNAVAILABLE = 14,        /* the host's connection is down */
};

typedef struct hv hv;

/* Domain states, as libvirt's virDomainState. */
typedef enum hv_dom_state {
  HV_DOM_NOSTATE = 0,
  HV_DOM_RUNNING = 1,
  HV_DOM_BLOCKED = 2,
  HV_DOM_PAUSED = 3,
  HV_DOM_SHUTDOWN = 4, /* being shut down */
  HV_DOM_SHUTOFF = 5,
  HV_DOM_CRASHED = 6,
  HV_DOM_PMSUSPENDED = 7,
} hv_dom_state;

/* What a host reports about itself (capabilities, node info, versions). */
typedef struct hv_host_info {
  char hypervisor_type[32];    /* virConnectGetType: "QEMU", "TEST" */
  char hypervisor_version[32]; /* "7.2.0" */
  char libvirt_version[32];    /* "9.0.0" */
  char hostname[256];
  char arch[32]; /* "x86_64" */
  int cpu_count;
  int64_t memory_mib;
  int64_t free_memory_mib;
  char domain_type[16]; /* what define uses: "kvm", "qemu" or "test" */
} hv_host_info;

enum { HV_BUS_VIRTIO = 0, HV_BUS_SATA = 1, HV_BUS_SCSI = 2 };
enum { HV_NIC_VIRTIO = 0, HV_NIC_E1000 = 1 };
enum { HV_FW_BIOS = 0, HV_FW_UEFI = 1 };

#define HV_MAX_DISKS 17 /* a VM's 16 volumes and its config drive */
#define HV_MAX_NICS 8

typedef struct hv_disk {
  char path[512];  /* backing file or block device on the host */
  char format[8];  /* "qcow2" or "raw" */
  int bus;         /* HV_BUS_* */
  char target[16]; /* "vda", "sdb": chosen by the caller */
  int boot_index;  /* 0: not bootable */
  bool read_only;
  char volume[192]; /* the NovaCron volume name (kept in metadata) */
} hv_disk;

typedef struct hv_nic {
  char mac[18];      /* "52:54:00:xx:xx:xx" */
  int model;         /* HV_NIC_* */
  char network[128]; /* libvirt network name */
  int boot_index;
  char target[16]; /* host-side device; output of hv_domain_get */
} hv_nic;

/* A domain as NovaCron defines it. */
typedef struct hv_domain_spec {
  char uuid[37];          /* the VM uid; also the libvirt domain UUID */
  char name[130];         /* libvirt domain name: "{project}.{vm}" */
  char vm[192];           /* NovaCron name "projects/p/vms/v", kept in <metadata> */
  int vcpus;              /* current */
  int max_vcpus;          /* >= vcpus */
  int64_t memory_mib;     /* current (balloon) */
  int64_t max_memory_mib; /* >= memory_mib */
  char machine_type[32];  /* "" = the host's default */
  int firmware;           /* HV_FW_* */
  int ndisks;
  hv_disk disks[HV_MAX_DISKS];
  int nnics;
  hv_nic nics[HV_MAX_NICS];
} hv_domain_spec;

/* A domain found on a host. */
typedef struct hv_domain_info {
  char uuid[37];
  char name[256];
  char vm[192]; /* from NovaCron's <metadata>; "" = not ours (unmanaged) */
  int state;    /* hv_dom_state */
  int reason;   /* libvirt's state reason */
  bool persistent;
} hv_domain_info;

/* Counters of one running domain (virDomainListGetStats). */
typedef struct hv_stats {
  uint64_t cpu_time_ns;
  int vcpus_online, vcpus_max;
  uint64_t memory_actual_kib, memory_rss_kib, memory_available_kib, memory_unused_kib;
  int ndisks;
  struct {
    char target[16];
    uint64_t read_bytes, write_bytes, read_requests, write_requests;
  } disks[HV_MAX_DISKS];
  int nnics;
  struct {
    char target[16];
    char mac[18]; /* matched from the domain XML */
    uint64_t rx_bytes, rx_packets, rx_errors, rx_drops;
    uint64_t tx_bytes, tx_packets, tx_errors, tx_drops;
  } nics[HV_MAX_NICS];
} hv_stats;

/* A lifecycle event of a domain (VIR_DOMAIN_EVENT_ID_LIFECYCLE). */
typedef struct hv_event {
  const char *host_id;
  const char *uuid;
  const char *domain_name;
  int event;  /* virDomainEventType: DEFINED, UNDEFINED, STARTED, SUSPENDED, ... */
  int detail; /* its detail code */
  int state;  /* hv_dom_state after the event, as best known */
} hv_event;

/* Called on the event-loop thread: must not block for long and must not
 * call back into hv for the same host synchronously in a way that waits
 * on the loop (queue work instead). */
typedef void (*hv_event_fn)(const hv_event *ev, void *arg);
/* A host's connection went down (up=false, with libvirt's reason) or came
 * back (up=true). Called from the thread that noticed (the event loop, or
 * a thread inside an hv call): must not block and must not call hv
 * synchronously (queue work instead). */
typedef void (*hv_conn_fn)(const char *host_id, bool up, const char *message, void *arg);

/* Starts the libvirt event loop thread. The callbacks may be NULL. */
int hv_create(hv **out, hv_event_fn on_event, hv_conn_fn on_conn, void *arg, char *err,
              size_t errlen);
/* Closes every connection and stops the loop. */
void hv_destroy(hv *h);

/* Opens (or re-opens) the connection of `host_id` to `uri` and reads its
 * info. A host that is already open with the same URI just refreshes
 * `info`. UNAVAILABLE (with libvirt's reason) when it cannot connect; the
 * host id is then still remembered with its URI, and later calls retry the
 * connection (at most once per second per host). */
int hv_host_open(hv *h, const char *host_id, const char *uri, hv_host_info *info, char *err,
                 size_t errlen);
/* Forgets a host and closes its connection (no-op when unknown). */
void hv_host_close(hv *h, const char *host_id);
/* Heartbeat: checks the connection (reconnecting if it was lost) and
 * refreshes `info` (free memory). UNAVAILABLE when unreachable; NOT_FOUND
 * when `host_id` was never opened or was closed (every other call says
 * UNAVAILABLE for an unknown host id). */
int hv_host_probe(hv *h, const char *host_id, hv_host_info *info, char *err, size_t errlen);
/* True when the URI names libvirt's in-process test driver, whose domains
 * vanish with the process ("test:///..."). */
bool hv_uri_is_ephemeral(const char *uri);
/* Checks a URI's syntax (virURIParse-level: scheme, known drivers qemu,
 * qemu+ssh, qemu+tls, qemu+tcp, test, ...). INVALID_ARGUMENT otherwise. */
int hv_uri_check(const char *uri, char *err, size_t errlen);

/* Domain XML from a spec, for `domain_type` ("kvm", "qemu", "test") and
 * the host's arch; a malloc'ed string, NULL on failure (err set). Built
 * with libxml2: names and paths are escaped by the library. */
char *hv_domain_xml(const hv_domain_spec *spec, const hv_host_info *host, char *err, size_t errlen);
/* Parses a domain XML document (ours or not) back into a spec: uuid, name,
 * vm metadata, vcpus/max, memory/max, machine type, firmware, disks, nics
 * (with their host-side targets when running). INVALID_ARGUMENT when it is
 * not a domain document. */
int hv_domain_parse(const char *xml, hv_domain_spec *out, char *err, size_t errlen);

/* Defines (or redefines, when the UUID exists) the domain persistently. */
int hv_domain_define(hv *h, const char *host_id, const hv_domain_spec *spec, char *err,
                     size_t errlen);
/* Undefines a stopped domain with its snapshot metadata and NVRAM; a
 * running one is destroyed first. NOT_FOUND when the UUID is unknown. */
int hv_domain_undefine(hv *h, const char *host_id, const char *uuid, char *err, size_t errlen);
/* The domain's current definition (live XML parsed; targets filled). */
int hv_domain_get(hv *h, const char *host_id, const char *uuid, hv_domain_spec *out,
                  hv_domain_info *info, char *err, size_t errlen);
/* Every domain on the host (ours and unmanaged). *out is malloc'ed. */
int hv_domain_list(hv *h, const char *host_id, hv_domain_info **out, int *n, char *err,
                   size_t errlen);

int hv_domain_start(hv *h, const char *host_id, const char *uuid, char *err, size_t errlen);
/* ACPI shutdown request; returns at once (poll hv_domain_get for SHUTOFF). */
int hv_domain_shutdown(hv *h, const char *host_id, const char *uuid, char *err, size_t errlen);
/* Power off (virDomainDestroy). */
int hv_domain_destroy(hv *h, const char *host_id, const char *uuid, char *err, size_t errlen);
/* ACPI reboot, or a hard reset with `force`. */
int hv_domain_reboot(hv *h, const char *host_id, const char *uuid, bool force, char *err,
                     size_t errlen);
int hv_domain_suspend(hv *h, const char *host_id, const char *uuid, char *err, size_t errlen);
int hv_domain_resume(hv *h, const char *host_id, const char *uuid, char *err, size_t errlen);
/* Sets vCPUs / memory: `live` applies to the running domain too (within
 * its maxima), the persistent definition always changes. */
int hv_domain_set_vcpus(hv *h, const char *host_id, const char *uuid, int vcpus, bool live,
                        char *err, size_t errlen);
int hv_domain_set_memory(hv *h, const char *host_id, const char *uuid, int64_t memory_mib,
                         bool live, char *err, size_t errlen);

int hv_domain_stats(hv *h, const char *host_id, const char *uuid, hv_stats *out, char *err,
                    size_t errlen);

/* Snapshots, named by `snap` (the NovaCron snapshot uid). */
int hv_snapshot_create(hv *h, const char *host_id, const char *uuid, const char *snap,
                       const char *description, bool include_memory, char *err, size_t errlen);
int hv_snapshot_revert(hv *h, const char *host_id, const char *uuid, const char *snap, char *err,
                       size_t errlen);
/* Deletes one snapshot (children re-parented) or it with its children. */
int hv_snapshot_delete(hv *h, const char *host_id, const char *uuid, const char *snap,
                       bool children, char *err, size_t errlen);

/* Moves a domain from `src` to `dst`: live (virDomainMigrateToURI3 /
 * virDomainMigrate3 with VIR_MIGRATE_LIVE|PERSIST_DEST|UNDEFINE_SOURCE)
 * for a running domain when `live`; a running domain with !live is paused
 * and migrated the same way without LIVE (it runs again on `dst`); a shut
 * off domain moves offline: the definition is defined on `dst` and
 * undefined on `src` (snapshot metadata stays behind). UNIMPLEMENTED when
 * the driver cannot migrate a running domain (the test driver);
 * ALREADY_EXISTS when `dst` has the UUID; INVALID_ARGUMENT when src ==
 * dst. */
int hv_domain_migrate(hv *h, const char *src, const char *dst, const char *uuid, bool live,
                      char *err, size_t errlen);

/* ================= devices of a domain ================= */

/* Adds a disk / NIC to a domain's persistent definition and, when the
 * domain is running, hot-plugs it (virDomainAttachDeviceFlags with
 * AFFECT_CONFIG | AFFECT_LIVE). A driver that cannot hot-plug (the test
 * driver, a SATA disk) still gets the persistent change: *live is then
 * false and the device appears at the next start. Idempotent: a disk whose
 * target already holds the same path, a NIC whose MAC is already there,
 * answer OK; a target holding another path is ALREADY_EXISTS. The disk XML
 * is built like hv_domain_xml's (libxml2), and the disk's `volume` is
 * recorded in NovaCron's metadata as hv_domain_xml records it.
 * Test driver (no virDomainAttachDeviceFlags/DetachDeviceFlags): the
 * persistent definition is edited and defined again; *live is false. */
int hv_domain_attach_disk(hv *h, const char *host_id, const char *uuid, const hv_disk *disk,
                          bool *live, char *err, size_t errlen);
int hv_domain_attach_nic(hv *h, const char *host_id, const char *uuid, const hv_nic *nic,
                         bool *live, char *err, size_t errlen);
/* Removes the disk with guest `target` / the NIC with `mac` from the
 * persistent definition and, when running, hot-unplugs it, waiting up to
 * `timeout_s` for the guest to release it. DEADLINE_EXCEEDED then, and
 * the device is put back into the persistent definition: the domain is as
 * before (the guest may still release the device later; a detach called
 * again finishes then). Absent already: OK. *live as for attach: true
 * when the running domain let the device go. A guest that does not answer
 * PCI unplug requests (no OS, no ACPI hotplug) never releases a virtio
 * disk or NIC. */
int hv_domain_detach_disk(hv *h, const char *host_id, const char *uuid, const char *target,
                          int timeout_s, bool *live, char *err, size_t errlen);
int hv_domain_detach_nic(hv *h, const char *host_id, const char *uuid, const char *mac,
                         int timeout_s, bool *live, char *err, size_t errlen);
/* Grows the disk `target` of a running domain (virDomainBlockResize,
 * bytes) so the guest sees the new size; qemu resizes the image itself,
 * so hv_vol_resize is for volumes no running domain uses (qemu holds a
 * write lock on them). FAILED_PRECONDITION when the domain is not running,
 * NOT_FOUND when it has no disk `target`. Test driver (no block resize, no
 * guest): OK without effect. */
int hv_domain_block_resize(hv *h, const char *host_id, const char *uuid, const char *target,
                           int64_t bytes, char *err, size_t errlen);

/* ================= storage pools and volumes ================= */

enum { HV_POOL_DIR = 1, HV_POOL_LOGICAL = 2, HV_POOL_NETFS = 3 };
#define HV_MAX_POOL_DEVICES 16

typedef struct hv_pool_spec {
  char name[64]; /* libvirt pool name (NovaCron's pool id) */
  char uuid[37]; /* the pool uid; also the libvirt pool UUID */
  int type;      /* HV_POOL_* */
  char target_path[512];
  int ndevices; /* logical: physical volumes the volume group is built on */
  char devices[HV_MAX_POOL_DEVICES][256];
  char source_host[256];   /* netfs */
  char source_export[512]; /* netfs */
  bool autostart;
} hv_pool_spec;

typedef struct hv_pool_info {
  bool active;
  bool autostart;
  int64_t capacity, allocation, available; /* bytes */
} hv_pool_info;

typedef struct hv_vol_info {
  char path[512];   /* the volume's path on the host (what a domain disk uses) */
  char format[8];   /* "qcow2", "raw" */
  int64_t capacity; /* virtual size, bytes */
  int64_t allocation;
} hv_vol_info;

/* Pool XML from a spec (libxml2); malloc'ed, NULL on failure. */
char *hv_pool_xml(const hv_pool_spec *spec, char *err, size_t errlen);
/* Defines (by UUID), builds (dir/netfs: the target directory; logical with
 * devices: the volume group, never over a device holding data), starts
 * and sets autostart. Converges: a pool with this UUID that is already
 * defined/built/active is completed, not failed (its definition is kept:
 * a pool is not redefined). ALREADY_EXISTS when another pool on the host
 * has the name or the target path. A volume's path is the target path,
 * '/', the volume name (logical: /dev/<pool name>/<volume name>). */
int hv_pool_create(hv *h, const char *host_id, const hv_pool_spec *spec, hv_pool_info *info,
                   char *err, size_t errlen);
/* Stops (when active), deletes the underlying storage when
 * `delete_storage` (dir: the directory, which must then be empty of
 * foreign files; logical: the volume group; netfs: ignored) and undefines.
 * NOT_FOUND when no pool has the UUID. */
int hv_pool_delete(hv *h, const char *host_id, const char *uuid, bool delete_storage, char *err,
                   size_t errlen);
/* Capacity figures and state; `refresh` rescans first
 * (virStoragePoolRefresh, active pools only). NOT_FOUND when unknown. */
int hv_pool_info_get(hv *h, const char *host_id, const char *uuid, bool refresh, hv_pool_info *info,
                     char *err, size_t errlen);
/* Starts a defined, inactive pool (no-op when active). */
int hv_pool_start(hv *h, const char *host_id, const char *uuid, char *err, size_t errlen);

/* Creates a blank volume `name` of `capacity` bytes in pool `pool_uuid`
 * (format "qcow2": thin, allocation 0; "raw": fully allocated). When a
 * volume of that name exists already, answers ALREADY_EXISTS with *info
 * filled (so a retried create converges). FAILED_PRECONDITION when the
 * pool is inactive (for every volume call). */
int hv_vol_create(hv *h, const char *host_id, const char *pool_uuid, const char *name,
                  const char *format, int64_t capacity, hv_vol_info *info, char *err,
                  size_t errlen);
/* Creates `name` in `pool_uuid` as a copy of volume `src_name` of pool
 * `src_pool_uuid` on the same host (virStorageVolCreateXMLFrom: converts
 * between qcow2 and raw), growing it to `capacity` when that is larger
 * than the source (0: the source's size). ALREADY_EXISTS as for create.
 * Test driver (which finds a source only in the new volume's own pool, and
 * whose volumes hold no data): a source in another pool gives a blank
 * volume of the same size. */
int hv_vol_clone(hv *h, const char *host_id, const char *pool_uuid, const char *name,
                 const char *format, int64_t capacity, const char *src_pool_uuid,
                 const char *src_name, hv_vol_info *info, char *err, size_t errlen);
/* Copies a volume between two hosts: creates `name` in `pool_uuid` on
 * `host_id` and streams the source's content (virStorageVolDownload /
 * virStorageVolUpload), then grows it to `capacity` when larger. The bytes
 * of the volume file travel as they are: INVALID_ARGUMENT when `format`
 * differs from the source's, FAILED_PRECONDITION when the source has a
 * backing file. A failed copy deletes what it created. UNIMPLEMENTED when
 * a driver cannot stream (the test driver). The same host on both sides
 * is hv_vol_clone. */
int hv_vol_copy(hv *h, const char *host_id, const char *pool_uuid, const char *name,
                const char *format, int64_t capacity, const char *src_host_id,
                const char *src_pool_uuid, const char *src_name, hv_vol_info *info, char *err,
                size_t errlen);
/* Creates `name` from the image file `image_path` on the host (qcow2 or
 * raw, detected by libvirt; converted to `format`), through a transient
 * dir pool "nc-import-<hash of the directory>" over the image's directory
 * (or the active pool already there; FAILED_PRECONDITION when a stopped
 * pool has it), removed afterwards. `capacity` 0 keeps the image's
 * virtual size, larger grows it. NOT_FOUND when there is no such image;
 * INVALID_ARGUMENT when the path is not absolute, has "." or ".."
 * components, or the image has a backing file. */
int hv_vol_import(hv *h, const char *host_id, const char *pool_uuid, const char *name,
                  const char *format, int64_t capacity, const char *image_path, hv_vol_info *info,
                  char *err, size_t errlen);
/* Writes `len` bytes as raw volume `name` in pool `pool_uuid`, replacing
 * one of that name (content the server derives, such as a config drive);
 * *info gets its path. A failed write leaves no volume. Test driver: the
 * volume is made with the length, without the bytes. */
int hv_vol_put(hv *h, const char *host_id, const char *pool_uuid, const char *name,
               const void *bytes, size_t len, hv_vol_info *info, char *err, size_t errlen);
/* A volume made from bytes the caller pushes (an image it downloads):
 * hv_vol_upload_open checks that `name` does not exist (ALREADY_EXISTS
 * with *info, as create), replaces the "<name>.part" an interrupted upload
 * left, creates it with `length` bytes and starts virStorageVolUpload;
 * hv_vol_upload_write sends bytes (never more than `length`);
 * hv_vol_upload_finish with `ok` checks that all `length` bytes came, lets
 * libvirt detect the image's format (qcow2 or raw; INVALID_ARGUMENT when it
 * has a backing file) and creates `name` from it in `format`, grown to
 * `capacity` when that is larger than the image. finish always removes the
 * part and frees the upload; without `ok` it only does that. Test driver
 * (no virStorageVolUpload; its volumes hold no data): the bytes are
 * counted, and `name` is made blank at `length` bytes. */
typedef struct hv_upload hv_upload;
int hv_vol_upload_open(hv *h, const char *host_id, const char *pool_uuid, const char *name,
                       int64_t length, hv_upload **out, hv_vol_info *info, char *err,
                       size_t errlen);
int hv_vol_upload_write(hv_upload *u, const void *buf, size_t n, char *err, size_t errlen);
int hv_vol_upload_finish(hv_upload *u, bool ok, const char *format, int64_t capacity,
                         hv_vol_info *info, char *err, size_t errlen);
/* Changes the virtual size (virStorageVolResize; SHRINK when smaller).
 * Test driver (no virStorageVolResize; its volumes hold no data): the
 * volume is deleted and created again at the new size, same format. */
int hv_vol_resize(hv *h, const char *host_id, const char *pool_uuid, const char *name,
                  int64_t capacity, char *err, size_t errlen);
/* Deletes a volume, overwriting it with zeros first when `wipe`. NOT_FOUND
 * when it is gone already. Test driver (no virStorageVolWipe, no data):
 * the wipe is skipped. */
int hv_vol_delete(hv *h, const char *host_id, const char *pool_uuid, const char *name, bool wipe,
                  char *err, size_t errlen);
int hv_vol_info_get(hv *h, const char *host_id, const char *pool_uuid, const char *name,
                    hv_vol_info *info, char *err, size_t errlen);

/* ================= virtual networks ================= */

enum { HV_NET_NAT = 1, HV_NET_ISOLATED = 2, HV_NET_ROUTED = 3, HV_NET_BRIDGE = 4 };

typedef struct hv_net_host {
  char mac[18];
  char ip[16];
  char hostname[64];
} hv_net_host;

typedef struct hv_net_spec {
  char name[130]; /* libvirt network name: "{project}.{network}" */
  char uuid[37];  /* the network uid; also the libvirt network UUID */
  int mode;       /* HV_NET_* */
  /* NAT/ISOLATED/ROUTED: the bridge to create ("": libvirt names it);
   * BRIDGE: the host bridge */
  char bridge[16];
  bool openvswitch; /* BRIDGE: the host bridge is an Open vSwitch bridge */
  int vlan_id;      /* 0: untagged (BRIDGE on Open vSwitch only) */
  int mtu;          /* 0: default */
  /* The host's IPv4 address on the subnet ("": none). BRIDGE networks take
   * addresses and MTU from the host bridge: gateway, DHCP, IPv6 and mtu
   * are ignored (libvirt refuses them). */
  char gateway[16];
  int prefix; /* IPv4 prefix length */
  char ipv6_gateway[46];
  int ipv6_prefix;                   /* 0: no IPv6 */
  char dhcp_start[16], dhcp_end[16]; /* "" = no DHCP */
  int nhosts;
  const hv_net_host *hosts; /* static DHCP reservations */
  bool autostart;
} hv_net_spec;

typedef struct hv_lease {
  char mac[18];
  char ip[46];
  char hostname[64];
  char client_id[128];
  int64_t expiry; /* seconds since the epoch */
} hv_lease;

/* A network defined on a host, as the overlap check needs it. */
typedef struct hv_net_summary {
  char name[256];
  char uuid[37];
  char ipv4[16]; /* "" when it has no IPv4 address */
  int prefix;
  char bridge[16];
} hv_net_summary;

/* Network XML from a spec (libxml2); malloc'ed, NULL on failure. */
char *hv_network_xml(const hv_net_spec *spec, char *err, size_t errlen);
/* Defines (by UUID; redefines when it exists) and starts the network, and
 * sets autostart. Converges like hv_pool_create. ALREADY_EXISTS when
 * another network on the host has the name. */
int hv_net_create(hv *h, const char *host_id, const hv_net_spec *spec, char *err, size_t errlen);
/* Replaces the persistent definition; when the network is active and
 * `restart`, stops and starts it so the change takes effect (connected
 * guests lose their link until libvirt reconnects them). */
int hv_net_redefine(hv *h, const char *host_id, const hv_net_spec *spec, bool restart, char *err,
                    size_t errlen);
/* Stops and undefines. NOT_FOUND when no network has the UUID. */
int hv_net_delete(hv *h, const char *host_id, const char *uuid, char *err, size_t errlen);
int hv_net_info(hv *h, const char *host_id, const char *uuid, bool *active, bool *autostart,
                char bridge[16], char *err, size_t errlen);
/* Adds / removes a static DHCP host (virNetworkUpdate, IP_DHCP_HOST, live
 * and config when active). Idempotent: adding the same MAC and IP again,
 * or removing a MAC that is not there, answers OK. ALREADY_EXISTS when the
 * MAC has another IP, or the IP another MAC. */
int hv_net_host_add(hv *h, const char *host_id, const char *uuid, const hv_net_host *host,
                    char *err, size_t errlen);
int hv_net_host_remove(hv *h, const char *host_id, const char *uuid, const char *mac, char *err,
                       size_t errlen);
/* The current leases (virNetworkGetDHCPLeases); *out is malloc'ed. Test
 * driver (no DHCP server): OK with no leases. */
int hv_net_leases(hv *h, const char *host_id, const char *uuid, hv_lease **out, int *n, char *err,
                  size_t errlen);
/* Every network on the host (ours and others) with its IPv4 subnet: the
 * first IPv4 address, its prefix from prefix= or netmask=. */
int hv_net_list(hv *h, const char *host_id, hv_net_summary **out, int *n, char *err, size_t errlen);

#endif
