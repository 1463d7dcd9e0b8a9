/*
 * internal.h - what the files of hv/ share and nothing outside hv/ may
 * include: a call's borrowed connection (hv.c), libvirt error conversion
 * (hv.c), a call on one domain (domain.c) and the libxml2 helpers for
 * documents other than the domain (xml.c). The public contract is hv.h.
 */
#ifndef NC_HV_INTERNAL_H
#define NC_HV_INTERNAL_H

#include <libvirt/libvirt.h>

#include "hv/hv.h"

/* NovaCron's namespace in a domain's <metadata>. */
#define HV_XMLNS "https://novacron.dev/xmlns/vm/1"
/* The namespace of the marker a metadata-only snapshot keeps in its copy
 * of the definition (one metadata element per namespace in libvirt). */
#define HV_SNAPSHOT_XMLNS "https://novacron.dev/xmlns/snapshot/1"

/* --- hv.c ------------------------------------------------------------- */

typedef struct hv_host hv_host;

/* The connection one call uses: a reference on the host entry and on its
 * libvirt connection, so hv_host_close or a reconnect during the call
 * leave it valid. */
typedef struct hv_conn {
  hv *h;
  hv_host *host;
  virConnectPtr conn;
  hv_host_info info; /* the host's info as of the last (re)connect */
} hv_conn;

/* Borrows the connection of `host_id`, reconnecting a lost one (at most
 * once per second). UNAVAILABLE when the host is unknown or unreachable. */
int hv_conn_get(hv *h, const char *host_id, hv_conn *c, char *err, size_t errlen);
void hv_conn_put(hv_conn *c);
/* Converts the thread's last libvirt error into an HV_* code and "what:
 * libvirt's message" in err. Notices a dead connection (UNAVAILABLE, and
 * the host is marked lost so the next call reconnects). */
int hv_conn_fail(hv_conn *c, const char *what, char *err, size_t errlen);
/* The same conversion without a connection. */
int hv_virerr(const char *what, char *err, size_t errlen);
/* The last libvirt error's code (virErrorNumber), 0 when none. */
int hv_virerr_code(void);
/* Writes a formatted message into err and returns code. */
int hv_fail(int code, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* True for a well-formed "8-4-4-4-12" hexadecimal UUID string. */
bool hv_uuid_valid(const char *uuid);
/* hv_conn_fail for calls that make the host work on its storage, networks
 * or devices: libvirt reports the host's own failed system call (a
 * directory not empty, no dnsmasq, an unreadable image) as
 * VIR_ERR_SYSTEM_ERROR, which hv_conn_fail takes for a lost link; while
 * the connection is alive it is INTERNAL here. */
int hv_conn_fail_op(hv_conn *c, const char *what, char *err, size_t errlen);
/* True when the last libvirt error says the driver lacks the call or a
 * flag of it (VIR_ERR_NO_SUPPORT, VIR_ERR_OPERATION_UNSUPPORTED). */
bool hv_virerr_unsupported(void);
/* True on libvirt's in-process test driver (hypervisor type "TEST"),
 * where hv/ emulates the calls it lacks (each documented in hv.h). */
bool hv_conn_is_test(const hv_conn *c);

/* --- domain.c --------------------------------------------------------- */

/* A call on one domain: the borrowed connection and the domain. */
typedef struct hv_dcall {
  hv_conn c;
  virDomainPtr dom;
  int state, reason;
} hv_dcall;

/* Borrows the host and finds the domain with its current state;
 * NOT_FOUND when the UUID is unknown. */
int hv_dcall_begin(hv *h, const char *host_id, const char *uuid, hv_dcall *d, char *err,
                   size_t errlen);
void hv_dcall_end(hv_dcall *d);

/* --- xml.c ------------------------------------------------------------ */

/* Initializes libxml2 once per process (thread safety). */
void hv_xml_init(void);
/* Text libvirt can carry: at most `max` bytes, printable UTF-8. */
bool hv_text_ok(const char *s, size_t max);
/* A MAC address "52:54:00:ab:cd:ef" (either case). */
bool hv_mac_ok(const char *mac);
/* A name of a pool, volume or network: hv_text_ok, not empty, no '/',
 * neither "." nor "..". */
bool hv_xml_name_ok(const char *name, size_t max);
/* From a capabilities document: the host arch and, for the QEMU driver,
 * whether the host arch's hvm guest lists a kvm domain. */
int hv_xml_caps(const char *caps, char *arch, size_t archlen, bool *kvm);
/* The name attribute of NovaCron's metadata element as returned by
 * virDomainGetMetadata; "" when absent. */
void hv_xml_metadata_vm(const char *element, char *vm, size_t vmlen);
/* A <domainsnapshot> document. `memory_no` adds <memory snapshot='no'/>;
 * `state` (with `domain_xml`, for VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE)
 * records the domain's state, creation time, parent and definition;
 * `run_state` adds NovaCron's marker of the state the domain really had
 * to the embedded definition's metadata (see domain.c). */
typedef struct hv_snapshot_doc {
  const char *name;
  const char *description;
  bool memory_no;
  const char *state;      /* NULL, or "running", "paused", "shutoff" */
  const char *parent;     /* NULL or the parent snapshot's name */
  long long created;      /* seconds since the epoch, with state */
  const char *domain_xml; /* NULL or the domain definition to embed */
  const char *run_state;  /* NULL or "running", "paused", "shutoff" */
} hv_snapshot_doc;
char *hv_xml_snapshot(const hv_snapshot_doc *d, char *err, size_t errlen);
/* The run state NovaCron's marker records in a snapshot document ("" when
 * there is none). */
void hv_xml_snapshot_run_state(const char *snapshot_xml, char *state, size_t size);
/* True when a snapshot document records no data of its own (no memory
 * image, no disk snapshot): deleting its metadata deletes all of it. */
bool hv_xml_snapshot_is_metadata_only(const char *snapshot_xml);

/* Devices of a domain, as hv_domain_xml writes them: one <disk> or
 * <interface> element (what virDomainAttachDeviceFlags takes); NULL with
 * err set when the device is invalid (messages name "disk." / "nic."
 * fields). */
char *hv_xml_disk(const hv_disk *disk, char *err, size_t errlen);
char *hv_xml_nic(const hv_nic *nic, char *err, size_t errlen);
enum { HV_XML_DISK = 1, HV_XML_NIC = 2 };
/* Finds the disk with guest target `key` (HV_XML_DISK) or the interface
 * with MAC `key` (HV_XML_NIC, any case) in a domain document: HV_OK with
 * the element in *element (malloc'ed; what virDomainDetachDeviceFlags
 * takes) and, for a disk, its source path in `source`; HV_NOT_FOUND when
 * absent; HV_INVALID_ARGUMENT when not a domain document. */
int hv_xml_domain_device(const char *domain_xml, int kind, const char *key, char **element,
                         char *source, size_t size);
/* A domain document with the element `device_xml` appended to its
 * <devices>, or with the device found as by hv_xml_domain_device removed
 * (unchanged when absent); malloc'ed, NULL with err set on failure. */
char *hv_xml_domain_add_device(const char *domain_xml, const char *device_xml, char *err,
                               size_t errlen);
char *hv_xml_domain_remove_device(const char *domain_xml, int kind, const char *key, char *err,
                                  size_t errlen);
/* NovaCron's metadata element `element` (as virDomainGetMetadata returns
 * it; NULL when the domain has none) with the volume recorded for disk
 * `target` set to `volume` (NULL or "": the record removed). *out is the
 * new element for virDomainSetMetadata (malloc'ed), or NULL when nothing
 * changes. HV_INVALID_ARGUMENT when `element` does not parse. */
int hv_xml_metadata_disk(const char *element, const char *target, const char *volume, char **out);

/* A transient dir pool over `dir` (no UUID: libvirt picks one). */
char *hv_xml_dir_pool(const char *name, const char *dir, char *err, size_t errlen);
/* The type ("dir", "logical", ...) and target path of a pool document
 * ("" when absent). */
void hv_xml_pool_parse(const char *pool_xml, char *type, size_t tsize, char *path, size_t psize);
/* A <volume> document of `capacity` bytes in `format` ("qcow2": thin,
 * allocation 0; "raw": fully allocated); NULL with err set when the name,
 * format or capacity is invalid. */
char *hv_xml_volume(const char *name, const char *format, int64_t capacity, char *err,
                    size_t errlen);
/* A volume document's format ("" when none) and whether it has a
 * backing file. */
void hv_xml_volume_parse(const char *vol_xml, char *format, size_t size, bool *backing);

/* What hv/ reads from a network document. */
typedef struct hv_xml_net {
  char name[256];
  char uuid[37];
  char forward[16]; /* forward/@mode, "" when isolated */
  char bridge[16];
  char ipv4[16]; /* the first IPv4 <ip>, "" when none */
  int prefix;    /* from prefix, netmask or the address class */
} hv_xml_net;
int hv_xml_net_parse(const char *net_xml, hv_xml_net *out);
/* A network's static DHCP host element <host mac ip name/>; NULL with err
 * set when the host is invalid. */
char *hv_xml_net_host(const hv_net_host *host, char *err, size_t errlen);
/* The first static DHCP host of a network document's IPv4 addresses with
 * `mac` (any case) and/or `ip` (NULL: any); false when there is none. */
bool hv_xml_net_host_find(const char *net_xml, const char *mac, const char *ip, hv_net_host *out);

#endif
