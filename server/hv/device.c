/*
 * device.c - disks and NICs of one domain: added to and removed from its
 * persistent definition and, while it runs, hot-plugged; and the online
 * growth of a disk.
 *
 * Device elements come from xml.c, built as hv_domain_xml builds them. A
 * driver that cannot hot-plug a device keeps the persistent change only
 * (*live false: the device follows at the next start). The test driver
 * has no attach, detach or block resize: its persistent definition is
 * edited instead, as hv.h documents. A disk's NovaCron volume is recorded
 * in the domain's metadata, as hv_domain_xml records it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "hv/internal.h"
#include "util/log.h"

enum { DETACH_POLL_MS = 100 };

static bool running(const hv_dcall *d) {
  return d->state != HV_DOM_SHUTOFF && d->state != HV_DOM_NOSTATE;
}

/* Where a device is: in the persistent definition and in the running
 * domain, with its element and (disk) source path in each. */
typedef struct place {
  bool persistent, running; /* the domain has a definition / runs */
  bool in_config, in_live;
  char *config_el, *live_el;
  char config_source[512], live_source[512];
} place;

static void place_free(place *p) {
  free(p->config_el);
  free(p->live_el);
  memset(p, 0, sizeof(*p));
}

static int locate(hv_dcall *d, int kind, const char *key, place *p, char *err, size_t errlen) {
  memset(p, 0, sizeof(*p));
  int persistent = virDomainIsPersistent(d->dom);
  if (persistent < 0) return hv_conn_fail_op(&d->c, "reading the domain", err, errlen);
  p->persistent = persistent == 1;
  p->running = running(d);
  for (int i = 0; i < 2; i++) {
    bool config = i == 0;
    if (config ? !p->persistent : !p->running) continue;
    char *xml = virDomainGetXMLDesc(d->dom, config ? VIR_DOMAIN_XML_INACTIVE : 0);
    if (!xml) return hv_conn_fail_op(&d->c, "reading the domain XML", err, errlen);
    int rc =
        hv_xml_domain_device(xml, kind, key, config ? &p->config_el : &p->live_el,
                             config ? p->config_source : p->live_source, sizeof(p->config_source));
    free(xml);
    if (rc != HV_OK && rc != HV_NOT_FOUND)
      return hv_fail(HV_INTERNAL, err, errlen, "cannot read the domain's devices");
    if (config)
      p->in_config = rc == HV_OK;
    else
      p->in_live = rc == HV_OK;
  }
  return HV_OK;
}

/* The test driver's attach and detach: its persistent definition, edited
 * (`add` appended, or the device `kind`/`key` removed) and defined
 * again. */
static int edit_config(hv_dcall *d, const char *add, int kind, const char *key, char *err,
                       size_t errlen) {
  char *xml = virDomainGetXMLDesc(d->dom, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
  if (!xml) return hv_conn_fail_op(&d->c, "reading the domain XML", err, errlen);
  char *edited = add ? hv_xml_domain_add_device(xml, add, err, errlen)
                     : hv_xml_domain_remove_device(xml, kind, key, err, errlen);
  free(xml);
  if (!edited) return HV_INTERNAL;
  virDomainPtr dom = virDomainDefineXML(d->c.conn, edited);
  free(edited);
  if (!dom) return hv_conn_fail_op(&d->c, "redefining the domain", err, errlen);
  virDomainFree(dom);
  return HV_OK;
}

/* Attaches the element `dev` where the device is missing: the persistent
 * definition and, when `hotplug`, the running domain. A live part the
 * driver cannot do (NO_SUPPORT, OPERATION_UNSUPPORTED: the test driver)
 * is dropped; the test driver then gets its definition edited. */
static int attach(hv_dcall *d, const place *p, const char *dev, bool hotplug, bool *live, char *err,
                  size_t errlen) {
  unsigned flags = (p->persistent && !p->in_config ? VIR_DOMAIN_AFFECT_CONFIG : 0) |
                   (hotplug && p->running && !p->in_live ? VIR_DOMAIN_AFFECT_LIVE : 0);
  *live = p->running && p->in_live;
  if (!flags) return HV_OK;
  if (virDomainAttachDeviceFlags(d->dom, dev, flags) == 0) {
    *live = *live || (flags & VIR_DOMAIN_AFFECT_LIVE);
    return HV_OK;
  }
  if (!hv_virerr_unsupported()) return hv_conn_fail_op(&d->c, "attaching the device", err, errlen);
  virResetLastError();
  flags &= ~(unsigned)VIR_DOMAIN_AFFECT_LIVE;
  if (!flags) return HV_OK; /* in the definition already; the next start has it */
  if (virDomainAttachDeviceFlags(d->dom, dev, flags) == 0) return HV_OK;
  if (!hv_virerr_unsupported() || !hv_conn_is_test(&d->c))
    return hv_conn_fail_op(&d->c, "attaching the device", err, errlen);
  virResetLastError();
  return edit_config(d, dev, 0, NULL, err, errlen);
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until the running domain no longer has the device: the guest has
 * to release it (for PCI devices, by answering the unplug request). */
static int wait_gone(hv_dcall *d, int kind, const char *key, int timeout_s, char *err,
                     size_t errlen) {
  long long deadline = now_ms() + (timeout_s > 0 ? (long long)timeout_s * 1000 : 0);
  for (;;) {
    char *xml = virDomainGetXMLDesc(d->dom, 0);
    if (!xml) return hv_conn_fail_op(&d->c, "reading the domain XML", err, errlen);
    char *el = NULL;
    int rc = hv_xml_domain_device(xml, kind, key, &el, NULL, 0);
    free(el);
    free(xml);
    if (rc == HV_NOT_FOUND) return HV_OK;
    if (rc != HV_OK) return hv_fail(HV_INTERNAL, err, errlen, "cannot read the domain's devices");
    if (now_ms() >= deadline)
      return hv_fail(HV_DEADLINE_EXCEEDED, err, errlen,
                     "the guest has not released %s %s after %d s; it stays attached",
                     kind == HV_XML_DISK ? "disk" : "NIC", key, timeout_s);
    struct timespec pause = {0, DETACH_POLL_MS * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
}

/* Detaches the device from where it is: the persistent definition first
 * (that change stays whatever the guest does), then the running domain,
 * waiting for the guest. A driver that cannot hot-unplug leaves the
 * running domain as it is; the test driver gets its definition edited. */
static int detach(hv_dcall *d, const place *p, int kind, const char *key, int timeout_s, bool *live,
                  char *err, size_t errlen) {
  *live = false;
  if (p->in_config &&
      virDomainDetachDeviceFlags(d->dom, p->config_el, VIR_DOMAIN_AFFECT_CONFIG) < 0) {
    if (!hv_virerr_unsupported() || !hv_conn_is_test(&d->c))
      return hv_conn_fail_op(&d->c, "detaching the device", err, errlen);
    virResetLastError();
    int rc = edit_config(d, NULL, kind, key, err, errlen);
    if (rc != HV_OK) return rc;
  }
  if (!p->in_live) return HV_OK;
  if (virDomainDetachDeviceFlags(d->dom, p->live_el, VIR_DOMAIN_AFFECT_LIVE) < 0) {
    if (!hv_virerr_unsupported())
      return hv_conn_fail_op(&d->c, "detaching the device from the running domain", err, errlen);
    virResetLastError();
    return HV_OK;
  }
  int rc = wait_gone(d, kind, key, timeout_s, err, errlen);
  *live = rc == HV_OK;
  /* The guest has not let go (it may still, later): the detach failed, so
   * the device goes back into the definition it was taken out of, and the
   * domain stays what NovaCron records, the device attached. */
  if (rc == HV_DEADLINE_EXCEEDED && p->in_config &&
      virDomainAttachDeviceFlags(d->dom, p->config_el, VIR_DOMAIN_AFFECT_CONFIG) < 0) {
    virErrorPtr e = virGetLastError();
    nc_log(NC_LOG_ERROR, "a device the guest kept could not be put back into the definition",
           LKV_S("device", key), LKV_S("error", e && e->message ? e->message : "?"));
    virResetLastError();
  }
  return rc;
}

/* Records the NovaCron volume of disk `target` in the domain's metadata
 * (`volume` "" or NULL: forgets it) where `flags` say (AFFECT_CONFIG,
 * AFFECT_LIVE), as hv_domain_xml records it. */
static int set_volume(hv_dcall *d, unsigned flags, const char *target, const char *volume,
                      char *err, size_t errlen) {
  static const unsigned places[] = {VIR_DOMAIN_AFFECT_CONFIG, VIR_DOMAIN_AFFECT_LIVE};
  for (size_t i = 0; i < sizeof(places) / sizeof(places[0]); i++) {
    if (!(flags & places[i])) continue;
    char *cur = virDomainGetMetadata(d->dom, VIR_DOMAIN_METADATA_ELEMENT, HV_XMLNS, places[i]);
    if (!cur && hv_virerr_code() != VIR_ERR_NO_DOMAIN_METADATA)
      return hv_conn_fail_op(&d->c, "reading the domain's metadata", err, errlen);
    virResetLastError();
    char *next = NULL;
    int rc = hv_xml_metadata_disk(cur, target, volume, &next);
    free(cur);
    if (rc != HV_OK)
      return hv_fail(HV_INTERNAL, err, errlen, "cannot update the domain's metadata");
    if (next && virDomainSetMetadata(d->dom, VIR_DOMAIN_METADATA_ELEMENT, next, "nc", HV_XMLNS,
                                     places[i]) < 0)
      rc = hv_conn_fail_op(&d->c, "recording the disk's volume", err, errlen);
    free(next);
    if (rc != HV_OK) return rc;
  }
  return HV_OK;
}

int hv_domain_attach_disk(hv *h, const char *host_id, const char *uuid, const hv_disk *disk,
                          bool *live, char *err, size_t errlen) {
  bool ignored;
  if (!live) live = &ignored;
  *live = false;
  if (!disk) return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "disk required");
  char *dev = hv_xml_disk(disk, err, errlen);
  if (!dev) return HV_INVALID_ARGUMENT;
  hv_dcall d;
  int rc = hv_dcall_begin(h, host_id, uuid, &d, err, errlen);
  if (rc != HV_OK) {
    free(dev);
    return rc;
  }
  place p;
  rc = locate(&d, HV_XML_DISK, disk->target, &p, err, errlen);
  if (rc == HV_OK && ((p.in_config && strcmp(p.config_source, disk->path) != 0) ||
                      (p.in_live && strcmp(p.live_source, disk->path) != 0)))
    rc = hv_fail(HV_ALREADY_EXISTS, err, errlen, "disk %s of the domain holds %s", disk->target,
                 p.in_config ? p.config_source : p.live_source);
  /* qemu cannot hot-plug SATA (AHCI) disks; on a machine without a SATA
   * controller libvirt fails before saying so, with an internal error */
  if (rc == HV_OK) rc = attach(&d, &p, dev, disk->bus != HV_BUS_SATA, live, err, errlen);
  unsigned recorded =
      (p.persistent ? VIR_DOMAIN_AFFECT_CONFIG : 0) | (*live ? VIR_DOMAIN_AFFECT_LIVE : 0);
  if (rc == HV_OK) rc = set_volume(&d, recorded, disk->target, disk->volume, err, errlen);
  place_free(&p);
  hv_dcall_end(&d);
  free(dev);
  return rc;
}

int hv_domain_attach_nic(hv *h, const char *host_id, const char *uuid, const hv_nic *nic,
                         bool *live, char *err, size_t errlen) {
  bool ignored;
  if (!live) live = &ignored;
  *live = false;
  if (!nic) return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "nic required");
  char *dev = hv_xml_nic(nic, err, errlen);
  if (!dev) return HV_INVALID_ARGUMENT;
  hv_dcall d;
  int rc = hv_dcall_begin(h, host_id, uuid, &d, err, errlen);
  if (rc != HV_OK) {
    free(dev);
    return rc;
  }
  place p;
  rc = locate(&d, HV_XML_NIC, nic->mac, &p, err, errlen);
  if (rc == HV_OK) rc = attach(&d, &p, dev, true, live, err, errlen);
  place_free(&p);
  hv_dcall_end(&d);
  free(dev);
  return rc;
}

int hv_domain_detach_disk(hv *h, const char *host_id, const char *uuid, const char *target,
                          int timeout_s, bool *live, char *err, size_t errlen) {
  bool ignored;
  if (!live) live = &ignored;
  *live = false;
  if (!target || !target[0] || !hv_text_ok(target, 15))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "target: required");
  hv_dcall d;
  int rc = hv_dcall_begin(h, host_id, uuid, &d, err, errlen);
  if (rc != HV_OK) return rc;
  place p;
  rc = locate(&d, HV_XML_DISK, target, &p, err, errlen);
  if (rc == HV_OK) rc = detach(&d, &p, HV_XML_DISK, target, timeout_s, live, err, errlen);
  /* The volume record follows the disk: out of the definition, and out of
   * the running domain unless the guest still holds the disk (a timed-out
   * detach changed nothing). */
  if (rc == HV_OK) {
    unsigned flags = p.persistent ? VIR_DOMAIN_AFFECT_CONFIG : 0;
    if (p.running && (*live || !p.in_live)) flags |= VIR_DOMAIN_AFFECT_LIVE;
    char merr[256];
    int mrc = set_volume(&d, flags, target, NULL, merr, sizeof(merr));
    if (rc == HV_OK && mrc != HV_OK) rc = hv_fail(mrc, err, errlen, "%s", merr);
  }
  place_free(&p);
  hv_dcall_end(&d);
  return rc;
}

int hv_domain_detach_nic(hv *h, const char *host_id, const char *uuid, const char *mac,
                         int timeout_s, bool *live, char *err, size_t errlen) {
  bool ignored;
  if (!live) live = &ignored;
  *live = false;
  if (!mac || !hv_mac_ok(mac))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "mac: not a MAC address");
  hv_dcall d;
  int rc = hv_dcall_begin(h, host_id, uuid, &d, err, errlen);
  if (rc != HV_OK) return rc;
  place p;
  rc = locate(&d, HV_XML_NIC, mac, &p, err, errlen);
  if (rc == HV_OK) rc = detach(&d, &p, HV_XML_NIC, mac, timeout_s, live, err, errlen);
  place_free(&p);
  hv_dcall_end(&d);
  return rc;
}

int hv_domain_block_resize(hv *h, const char *host_id, const char *uuid, const char *target,
                           int64_t bytes, char *err, size_t errlen) {
  if (!target || !target[0] || !hv_text_ok(target, 15))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "target: required");
  if (bytes <= 0) return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "bytes: must be positive");
  hv_dcall d;
  int rc = hv_dcall_begin(h, host_id, uuid, &d, err, errlen);
  if (rc != HV_OK) return rc;
  char *xml = NULL, *el = NULL;
  if (!running(&d))
    rc = hv_fail(HV_FAILED_PRECONDITION, err, errlen,
                 "cannot resize a disk online: the domain is not running");
  else if (!(xml = virDomainGetXMLDesc(d.dom, 0)))
    rc = hv_conn_fail_op(&d.c, "reading the domain XML", err, errlen);
  else if (hv_xml_domain_device(xml, HV_XML_DISK, target, &el, NULL, 0) != HV_OK)
    rc = hv_fail(HV_NOT_FOUND, err, errlen, "the domain has no disk %s", target);
  /* the test driver has no block resize, and no guest to tell */
  if (rc == HV_OK && virDomainBlockResize(d.dom, target, (unsigned long long)bytes,
                                          VIR_DOMAIN_BLOCK_RESIZE_BYTES) < 0) {
    if (hv_virerr_unsupported() && hv_conn_is_test(&d.c))
      virResetLastError();
    else
      rc = hv_conn_fail_op(&d.c, "resizing the disk", err, errlen);
  }
  free(el);
  free(xml);
  hv_dcall_end(&d);
  return rc;
}
