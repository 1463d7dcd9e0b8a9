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
  HV_DEADLINE_EXCEEDED = 4,   /* a wait (graceful shutdown) timed out */
  HV_NOT_FOUND = 5,           /* no such domain / snapshot; probe: host id not open */
  HV_ALREADY_EXISTS = 6,      /* a domain or snapshot of that name exists */
  HV_INVALID_ARGUMENT = 3,    /* the spec cannot be expressed */
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

#define HV_MAX_DISKS 16
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

#endif
