/*
 * internal.h - what the files of hv/ share and nothing outside hv/ may
 * include: a call's borrowed connection (hv.c), libvirt error conversion
 * (hv.c) and the libxml2 helpers for documents other than the domain
 * (xml.c). The public contract is hv.h.
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

/* --- xml.c ------------------------------------------------------------ */

/* Initializes libxml2 once per process (thread safety). */
void hv_xml_init(void);
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

#endif
