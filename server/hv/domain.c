/*
 * domain.c - calls on one domain (by UUID) of one host: define/undefine,
 * lifecycle, resources, statistics, snapshots and migration.
 *
 * Every call borrows its host's connection (hv_conn_get), looks the
 * domain up, checks the state the call needs (drivers disagree on how
 * they report a wrong state, so FAILED_PRECONDITION is decided here) and
 * converts libvirt's error once, where it happens.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "hv/internal.h"
#include "util/log.h"

static const char *state_name(int state) {
  switch (state) {
  case HV_DOM_RUNNING: return "running";
  case HV_DOM_BLOCKED: return "blocked";
  case HV_DOM_PAUSED: return "paused";
  case HV_DOM_SHUTDOWN: return "shutting down";
  case HV_DOM_SHUTOFF: return "shut off";
  case HV_DOM_CRASHED: return "crashed";
  case HV_DOM_PMSUSPENDED: return "suspended by the guest";
  default: return "in no state";
  }
}

void hv_dcall_end(hv_dcall *d) {
  if (d->dom) virDomainFree(d->dom);
  d->dom = NULL;
  hv_conn_put(&d->c);
}

int hv_dcall_begin(hv *h, const char *host_id, const char *uuid, hv_dcall *d, char *err,
                   size_t errlen) {
  memset(d, 0, sizeof(*d));
  if (!uuid || !hv_uuid_valid(uuid))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "uuid: not a UUID");
  int rc = hv_conn_get(h, host_id, &d->c, err, errlen);
  if (rc != HV_OK) return rc;
  d->dom = virDomainLookupByUUIDString(d->c.conn, uuid);
  if (!d->dom) {
    rc = hv_conn_fail(&d->c, "looking up the domain", err, errlen);
    if (rc == HV_NOT_FOUND) hv_fail(rc, err, errlen, "domain %s not found", uuid);
  } else if (virDomainGetState(d->dom, &d->state, &d->reason, 0) < 0) {
    rc = hv_conn_fail(&d->c, "reading the domain state", err, errlen);
  }
  if (rc != HV_OK) hv_dcall_end(d);
  return rc;
}

static int dcall_fail(hv_dcall *d, const char *what, char *err, size_t errlen) {
  return hv_conn_fail(&d->c, what, err, errlen);
}

static bool is_active(int state) { return state != HV_DOM_SHUTOFF && state != HV_DOM_NOSTATE; }

static int wrong_state(const hv_dcall *d, const char *what, char *err, size_t errlen) {
  return hv_fail(HV_FAILED_PRECONDITION, err, errlen, "cannot %s: the domain is %s", what,
                 state_name(d->state));
}

/* ---------------------------------------------------------------------- */
/* definition                                                              */

int hv_domain_define(hv *h, const char *host_id, const hv_domain_spec *spec, char *err,
                     size_t errlen) {
  if (!spec) return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "spec required");
  hv_conn c;
  int rc = hv_conn_get(h, host_id, &c, err, errlen);
  if (rc != HV_OK) return rc;
  char *xml = hv_domain_xml(spec, &c.info, err, errlen);
  if (!xml) {
    hv_conn_put(&c);
    return HV_INVALID_ARGUMENT;
  }
  /* A different domain with this name: libvirt would say "operation
   * failed"; the caller deserves ALREADY_EXISTS. */
  virDomainPtr other = virDomainLookupByName(c.conn, spec->name);
  if (other) {
    char uuid[VIR_UUID_STRING_BUFLEN] = "";
    virDomainGetUUIDString(other, uuid);
    virDomainFree(other);
    if (strcasecmp(uuid, spec->uuid) != 0)
      rc = hv_fail(HV_ALREADY_EXISTS, err, errlen, "a domain named %s already exists (%s)",
                   spec->name, uuid);
  } else if (hv_virerr_code() != VIR_ERR_NO_DOMAIN) {
    rc = hv_conn_fail(&c, "looking up the domain name", err, errlen);
  }
  if (rc == HV_OK) {
    virDomainPtr dom = virDomainDefineXML(c.conn, xml);
    if (!dom)
      rc = hv_conn_fail(&c, "defining the domain", err, errlen);
    else
      virDomainFree(dom);
  }
  free(xml);
  hv_conn_put(&c);
  return rc;
}

/* Undefines with everything libvirt keeps beside the definition
 * (snapshot and checkpoint metadata, managed save, NVRAM), falling back to
 * the flags every driver knows when one is rejected (the test driver has
 * no NVRAM or checkpoints). The libvirt error is left for the caller. */
static int undefine_all(virDomainPtr dom) {
  unsigned basic = VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | VIR_DOMAIN_UNDEFINE_MANAGED_SAVE;
  unsigned full = basic | VIR_DOMAIN_UNDEFINE_NVRAM | VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA;
  if (virDomainUndefineFlags(dom, full) == 0) return 0;
  int code = hv_virerr_code();
  bool flag_rejected = code == VIR_ERR_INVALID_ARG || code == VIR_ERR_NO_SUPPORT ||
                       code == VIR_ERR_ARGUMENT_UNSUPPORTED ||
                       code == VIR_ERR_OPERATION_UNSUPPORTED;
  if (!flag_rejected) return -1;
  return virDomainUndefineFlags(dom, basic);
}

int hv_domain_undefine(hv *h, const char *host_id, const char *uuid, char *err, size_t errlen) {
  hv_dcall d;
  int rc = hv_dcall_begin(h, host_id, uuid, &d, err, errlen);
  if (rc != HV_OK) return rc;
  int persistent = virDomainIsPersistent(d.dom);
  if (persistent < 0) rc = dcall_fail(&d, "reading the domain", err, errlen);
  /* a transient domain vanishes when it stops */
  if (rc == HV_OK && is_active(d.state) && virDomainDestroy(d.dom) < 0)
    rc = dcall_fail(&d, "stopping the domain", err, errlen);
  if (rc == HV_OK && persistent == 1 && undefine_all(d.dom) < 0)
    rc = dcall_fail(&d, "undefining the domain", err, errlen);
  hv_dcall_end(&d);
  return rc;
}

static int fill_info(hv_dcall *d, const hv_domain_spec *spec, hv_domain_info *info, char *err,
                     size_t errlen) {
  memset(info, 0, sizeof(*info));
  virDomainGetUUIDString(d->dom, info->uuid);
  const char *name = virDomainGetName(d->dom);
  snprintf(info->name, sizeof(info->name), "%s", name ? name : "");
  snprintf(info->vm, sizeof(info->vm), "%s", spec->vm);
  info->state = d->state;
  info->reason = d->reason;
  int persistent = virDomainIsPersistent(d->dom);
  if (persistent < 0) return dcall_fail(d, "reading the domain", err, errlen);
  info->persistent = persistent == 1;
  return HV_OK;
}

int hv_domain_get(hv *h, const char *host_id, const char *uuid, hv_domain_spec *out,
                  hv_domain_info *info, char *err, size_t errlen) {
  hv_dcall d;
  int rc = hv_dcall_begin(h, host_id, uuid, &d, err, errlen);
  if (rc != HV_OK) return rc;
  char *xml = virDomainGetXMLDesc(d.dom, 0);
  if (!xml) {
    rc = dcall_fail(&d, "reading the domain XML", err, errlen);
  } else {
    hv_domain_spec local;
    hv_domain_spec *spec = out ? out : &local;
    rc = hv_domain_parse(xml, spec, err, errlen);
    if (rc == HV_OK && info) rc = fill_info(&d, spec, info, err, errlen);
    free(xml);
  }
  hv_dcall_end(&d);
  return rc;
}

int hv_domain_list(hv *h, const char *host_id, hv_domain_info **out, int *n, char *err,
                   size_t errlen) {
  *out = NULL;
  *n = 0;
  hv_conn c;
  int rc = hv_conn_get(h, host_id, &c, err, errlen);
  if (rc != HV_OK) return rc;
  virDomainPtr *doms = NULL;
  int count = virConnectListAllDomains(c.conn, &doms, 0);
  if (count < 0) {
    rc = hv_conn_fail(&c, "listing domains", err, errlen);
    hv_conn_put(&c);
    return rc;
  }
  hv_domain_info *list = calloc((size_t)(count > 0 ? count : 1), sizeof(*list));
  if (!list) rc = hv_fail(HV_INTERNAL, err, errlen, "out of memory");
  int filled = 0;
  for (int i = 0; i < count && rc == HV_OK; i++) {
    hv_domain_info *e = &list[filled];
    virDomainPtr dom = doms[i];
    virDomainGetUUIDString(dom, e->uuid);
    const char *name = virDomainGetName(dom);
    snprintf(e->name, sizeof(e->name), "%s", name ? name : "");
    int persistent = virDomainIsPersistent(dom);
    if (persistent < 0 || virDomainGetState(dom, &e->state, &e->reason, 0) < 0) {
      if (hv_virerr_code() == VIR_ERR_NO_DOMAIN) continue; /* gone meanwhile */
      rc = hv_conn_fail(&c, "reading a domain", err, errlen);
      break;
    }
    e->persistent = persistent == 1;
    char *meta =
        virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, HV_XMLNS, VIR_DOMAIN_AFFECT_CURRENT);
    if (meta) {
      hv_xml_metadata_vm(meta, e->vm, sizeof(e->vm));
      free(meta);
    } else if (hv_virerr_code() == VIR_ERR_NO_DOMAIN) {
      continue;
    } else if (hv_virerr_code() != VIR_ERR_NO_DOMAIN_METADATA) {
      rc = hv_conn_fail(&c, "reading a domain's metadata", err, errlen);
      break;
    }
    filled++;
  }
  for (int i = 0; i < count; i++)
    virDomainFree(doms[i]);
  free(doms);
  hv_conn_put(&c);
  if (rc != HV_OK) {
    free(list);
    return rc;
  }
  *out = list;
  *n = filled;
  return HV_OK;
}

/* ---------------------------------------------------------------------- */
/* lifecycle                                                               */

int hv_domain_start(hv *h, const char *host_id, const char *uuid, char *err, size_t errlen) {
  hv_dcall d;
  int rc = hv_dcall_begin(h, host_id, uuid, &d, err, errlen);
  if (rc != HV_OK) return rc;
  if (is_active(d.state))
    rc = wrong_state(&d, "start", err, errlen);
  else if (virDomainCreate(d.dom) < 0)
    rc = dcall_fail(&d, "starting the domain", err, errlen);
  hv_dcall_end(&d);
  return rc;
}

int hv_domain_shutdown(hv *h, const char *host_id, const char *uuid, char *err, size_t errlen) {
  hv_dcall d;
  int rc = hv_dcall_begin(h, host_id, uuid, &d, err, errlen);
  if (rc != HV_OK) return rc;
  if (d.state != HV_DOM_RUNNING && d.state != HV_DOM_BLOCKED && d.state != HV_DOM_SHUTDOWN &&
      d.state != HV_DOM_PAUSED)
    rc = wrong_state(&d, "shut down", err, errlen);
  else if (virDomainShutdown(d.dom) < 0)
    rc = dcall_fail(&d, "shutting the domain down", err, errlen);
  hv_dcall_end(&d);
  return rc;
}

int hv_domain_destroy(hv *h, const char *host_id, const char *uuid, char *err, size_t errlen) {
  hv_dcall d;
  int rc = hv_dcall_begin(h, host_id, uuid, &d, err, errlen);
  if (rc != HV_OK) return rc;
  if (!is_active(d.state))
    rc = wrong_state(&d, "power off", err, errlen);
  else if (virDomainDestroy(d.dom) < 0)
    rc = dcall_fail(&d, "powering the domain off", err, errlen);
  hv_dcall_end(&d);
  return rc;
}

int hv_domain_reboot(hv *h, const char *host_id, const char *uuid, bool force, char *err,
                     size_t errlen) {
  hv_dcall d;
  int rc = hv_dcall_begin(h, host_id, uuid, &d, err, errlen);
  if (rc != HV_OK) return rc;
  if (d.state != HV_DOM_RUNNING && d.state != HV_DOM_BLOCKED &&
      !(force && d.state == HV_DOM_PAUSED))
    rc = wrong_state(&d, "reboot", err, errlen);
  else if ((force ? virDomainReset(d.dom, 0) : virDomainReboot(d.dom, 0)) < 0)
    rc = dcall_fail(&d, force ? "resetting the domain" : "rebooting the domain", err, errlen);
  hv_dcall_end(&d);
  return rc;
}

int hv_domain_suspend(hv *h, const char *host_id, const char *uuid, char *err, size_t errlen) {
  hv_dcall d;
  int rc = hv_dcall_begin(h, host_id, uuid, &d, err, errlen);
  if (rc != HV_OK) return rc;
  if (d.state != HV_DOM_RUNNING && d.state != HV_DOM_BLOCKED)
    rc = wrong_state(&d, "suspend", err, errlen);
  else if (virDomainSuspend(d.dom) < 0)
    rc = dcall_fail(&d, "suspending the domain", err, errlen);
  hv_dcall_end(&d);
  return rc;
}

int hv_domain_resume(hv *h, const char *host_id, const char *uuid, char *err, size_t errlen) {
  hv_dcall d;
  int rc = hv_dcall_begin(h, host_id, uuid, &d, err, errlen);
  if (rc != HV_OK) return rc;
  if (d.state != HV_DOM_PAUSED)
    rc = wrong_state(&d, "resume", err, errlen);
  else if (virDomainResume(d.dom) < 0)
    rc = dcall_fail(&d, "resuming the domain", err, errlen);
  hv_dcall_end(&d);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* resources                                                               */

/* The persistent definition's maxima. */
static int config_max(hv_dcall *d, int *vcpus, int64_t *memory_kib, char *err, size_t errlen) {
  int persistent = virDomainIsPersistent(d->dom);
  if (persistent < 0) return dcall_fail(d, "reading the domain", err, errlen);
  if (persistent == 0)
    return hv_fail(HV_FAILED_PRECONDITION, err, errlen, "the domain has no persistent definition");
  char *xml = virDomainGetXMLDesc(d->dom, VIR_DOMAIN_XML_INACTIVE);
  if (!xml) return dcall_fail(d, "reading the domain XML", err, errlen);
  hv_domain_spec *spec = malloc(sizeof(*spec));
  int rc = spec ? hv_domain_parse(xml, spec, err, errlen)
                : hv_fail(HV_INTERNAL, err, errlen, "out of memory");
  if (rc == HV_OK) {
    *vcpus = spec->max_vcpus;
    *memory_kib = spec->max_memory_mib * 1024;
  }
  free(spec);
  free(xml);
  return rc;
}

int hv_domain_set_vcpus(hv *h, const char *host_id, const char *uuid, int vcpus, bool live,
                        char *err, size_t errlen) {
  if (vcpus < 1 || vcpus > 4096)
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "vcpus: must be 1..4096");
  hv_dcall d;
  int rc = hv_dcall_begin(h, host_id, uuid, &d, err, errlen);
  if (rc != HV_OK) return rc;
  int max_vcpus = 0;
  int64_t max_kib = 0;
  rc = config_max(&d, &max_vcpus, &max_kib, err, errlen);
  /* Live first: when the running domain refuses, nothing changed. Drivers
   * differ on LIVE|CONFIG together, so they are separate calls. */
  if (rc == HV_OK && live && is_active(d.state) &&
      virDomainSetVcpusFlags(d.dom, (unsigned)vcpus, VIR_DOMAIN_AFFECT_LIVE) < 0)
    rc = dcall_fail(&d, "setting the running domain's vCPUs", err, errlen);
  if (rc == HV_OK && vcpus > max_vcpus &&
      virDomainSetVcpusFlags(d.dom, (unsigned)vcpus,
                             VIR_DOMAIN_AFFECT_CONFIG | VIR_DOMAIN_VCPU_MAXIMUM) < 0)
    rc = dcall_fail(&d, "raising the domain's maximum vCPUs", err, errlen);
  if (rc == HV_OK && virDomainSetVcpusFlags(d.dom, (unsigned)vcpus, VIR_DOMAIN_AFFECT_CONFIG) < 0)
    rc = dcall_fail(&d, "setting the domain's vCPUs", err, errlen);
  hv_dcall_end(&d);
  return rc;
}

int hv_domain_set_memory(hv *h, const char *host_id, const char *uuid, int64_t memory_mib,
                         bool live, char *err, size_t errlen) {
  if (memory_mib < 1 || memory_mib > ((int64_t)1 << 32))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "memory_mib: out of range");
  unsigned long kib = (unsigned long)memory_mib * 1024;
  hv_dcall d;
  int rc = hv_dcall_begin(h, host_id, uuid, &d, err, errlen);
  if (rc != HV_OK) return rc;
  int max_vcpus = 0;
  int64_t max_kib = 0;
  rc = config_max(&d, &max_vcpus, &max_kib, err, errlen);
  if (rc == HV_OK && live && is_active(d.state) &&
      virDomainSetMemoryFlags(d.dom, kib, VIR_DOMAIN_AFFECT_LIVE) < 0)
    rc = dcall_fail(&d, "setting the running domain's memory", err, errlen);
  if (rc == HV_OK && (int64_t)kib > max_kib &&
      virDomainSetMemoryFlags(d.dom, kib, VIR_DOMAIN_AFFECT_CONFIG | VIR_DOMAIN_MEM_MAXIMUM) < 0)
    rc = dcall_fail(&d, "raising the domain's maximum memory", err, errlen);
  if (rc == HV_OK && virDomainSetMemoryFlags(d.dom, kib, VIR_DOMAIN_AFFECT_CONFIG) < 0)
    rc = dcall_fail(&d, "setting the domain's memory", err, errlen);
  hv_dcall_end(&d);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* statistics                                                              */

/* A numeric typed parameter by name, whatever its integer type. */
static bool param_u64(const virTypedParameter *p, int n, const char *name, uint64_t *out) {
  for (int i = 0; i < n; i++) {
    if (strcmp(p[i].field, name) != 0) continue;
    switch (p[i].type) {
    case VIR_TYPED_PARAM_INT: *out = p[i].value.i < 0 ? 0 : (uint64_t)p[i].value.i; return true;
    case VIR_TYPED_PARAM_UINT: *out = p[i].value.ui; return true;
    case VIR_TYPED_PARAM_LLONG: *out = p[i].value.l < 0 ? 0 : (uint64_t)p[i].value.l; return true;
    case VIR_TYPED_PARAM_ULLONG: *out = p[i].value.ul; return true;
    default: return false;
    }
  }
  return false;
}

static const char *param_str(const virTypedParameter *p, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (p[i].type == VIR_TYPED_PARAM_STRING && strcmp(p[i].field, name) == 0) return p[i].value.s;
  return NULL;
}

static uint64_t param_idx(const virTypedParameter *p, int n, const char *group, unsigned idx,
                          const char *field) {
  char name[VIR_TYPED_PARAM_FIELD_LENGTH];
  snprintf(name, sizeof(name), "%s.%u.%s", group, idx, field);
  uint64_t v = 0;
  param_u64(p, n, name, &v);
  return v;
}

static uint64_t nonneg(long long v) { return v < 0 ? 0 : (uint64_t)v; }

/* Per-device counters the bulk call did not report (the test driver
 * reports only the state there): ask each device. */
static void stats_fallback(hv_dcall *d, const hv_domain_spec *spec, bool have_cpu, bool have_nets,
                           bool have_blocks, hv_stats *out) {
  if (!have_cpu) {
    virDomainInfo di;
    if (virDomainGetInfo(d->dom, &di) == 0) {
      out->cpu_time_ns = di.cpuTime;
      if (!out->memory_actual_kib) out->memory_actual_kib = di.memory;
      if (!out->vcpus_online) out->vcpus_online = di.nrVirtCpu;
    }
  }
  if (!have_nets) {
    for (int i = 0; i < spec->nnics && out->nnics < HV_MAX_NICS; i++) {
      virDomainInterfaceStatsStruct s;
      if (!spec->nics[i].target[0] ||
          virDomainInterfaceStats(d->dom, spec->nics[i].target, &s, sizeof(s)) < 0)
        continue;
      int k = out->nnics++;
      snprintf(out->nics[k].target, sizeof(out->nics[k].target), "%s", spec->nics[i].target);
      out->nics[k].rx_bytes = nonneg(s.rx_bytes);
      out->nics[k].rx_packets = nonneg(s.rx_packets);
      out->nics[k].rx_errors = nonneg(s.rx_errs);
      out->nics[k].rx_drops = nonneg(s.rx_drop);
      out->nics[k].tx_bytes = nonneg(s.tx_bytes);
      out->nics[k].tx_packets = nonneg(s.tx_packets);
      out->nics[k].tx_errors = nonneg(s.tx_errs);
      out->nics[k].tx_drops = nonneg(s.tx_drop);
    }
  }
  if (!have_blocks) {
    for (int i = 0; i < spec->ndisks && out->ndisks < HV_MAX_DISKS; i++) {
      virDomainBlockStatsStruct s;
      if (virDomainBlockStats(d->dom, spec->disks[i].target, &s, sizeof(s)) < 0) continue;
      int k = out->ndisks++;
      snprintf(out->disks[k].target, sizeof(out->disks[k].target), "%s", spec->disks[i].target);
      out->disks[k].read_bytes = nonneg(s.rd_bytes);
      out->disks[k].write_bytes = nonneg(s.wr_bytes);
      out->disks[k].read_requests = nonneg(s.rd_req);
      out->disks[k].write_requests = nonneg(s.wr_req);
    }
  }
  virResetLastError();
}

int hv_domain_stats(hv *h, const char *host_id, const char *uuid, hv_stats *out, char *err,
                    size_t errlen) {
  memset(out, 0, sizeof(*out));
  hv_dcall d;
  int rc = hv_dcall_begin(h, host_id, uuid, &d, err, errlen);
  if (rc != HV_OK) return rc;
  if (!is_active(d.state)) {
    rc = wrong_state(&d, "read statistics", err, errlen);
    hv_dcall_end(&d);
    return rc;
  }
  /* The live XML maps interface targets to MACs and feeds the fallback. */
  hv_domain_spec *spec = calloc(1, sizeof(*spec));
  char *xml = spec ? virDomainGetXMLDesc(d.dom, 0) : NULL;
  if (!spec)
    rc = hv_fail(HV_INTERNAL, err, errlen, "out of memory");
  else if (!xml)
    rc = dcall_fail(&d, "reading the domain XML", err, errlen);
  else
    rc = hv_domain_parse(xml, spec, err, errlen);
  free(xml);

  virDomainStatsRecordPtr *records = NULL;
  if (rc == HV_OK) {
    virDomainPtr doms[] = {d.dom, NULL};
    unsigned stats = VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_CPU_TOTAL |
                     VIR_DOMAIN_STATS_BALLOON | VIR_DOMAIN_STATS_VCPU | VIR_DOMAIN_STATS_INTERFACE |
                     VIR_DOMAIN_STATS_BLOCK;
    if (virDomainListGetStats(doms, stats, &records, 0) < 0)
      rc = dcall_fail(&d, "reading the domain statistics", err, errlen);
  }
  if (rc == HV_OK) {
    virTypedParameterPtr p = records[0] ? records[0]->params : NULL;
    int n = records[0] ? records[0]->nparams : 0;
    uint64_t v;
    bool have_cpu = param_u64(p, n, "cpu.time", &out->cpu_time_ns);
    if (param_u64(p, n, "vcpu.current", &v)) out->vcpus_online = (int)v;
    out->vcpus_max = param_u64(p, n, "vcpu.maximum", &v) ? (int)v : spec->max_vcpus;
    param_u64(p, n, "balloon.current", &out->memory_actual_kib);
    param_u64(p, n, "balloon.rss", &out->memory_rss_kib);
    param_u64(p, n, "balloon.available", &out->memory_available_kib);
    param_u64(p, n, "balloon.unused", &out->memory_unused_kib);
    uint64_t count = 0;
    bool have_nets = param_u64(p, n, "net.count", &count);
    for (unsigned i = 0; i < count && out->nnics < HV_MAX_NICS; i++) {
      char name[VIR_TYPED_PARAM_FIELD_LENGTH];
      snprintf(name, sizeof(name), "net.%u.name", i);
      const char *target = param_str(p, n, name);
      int k = out->nnics++;
      snprintf(out->nics[k].target, sizeof(out->nics[k].target), "%s", target ? target : "");
      out->nics[k].rx_bytes = param_idx(p, n, "net", i, "rx.bytes");
      out->nics[k].rx_packets = param_idx(p, n, "net", i, "rx.pkts");
      out->nics[k].rx_errors = param_idx(p, n, "net", i, "rx.errs");
      out->nics[k].rx_drops = param_idx(p, n, "net", i, "rx.drop");
      out->nics[k].tx_bytes = param_idx(p, n, "net", i, "tx.bytes");
      out->nics[k].tx_packets = param_idx(p, n, "net", i, "tx.pkts");
      out->nics[k].tx_errors = param_idx(p, n, "net", i, "tx.errs");
      out->nics[k].tx_drops = param_idx(p, n, "net", i, "tx.drop");
    }
    count = 0;
    bool have_blocks = param_u64(p, n, "block.count", &count);
    for (unsigned i = 0; i < count && out->ndisks < HV_MAX_DISKS; i++) {
      char name[VIR_TYPED_PARAM_FIELD_LENGTH];
      snprintf(name, sizeof(name), "block.%u.name", i);
      const char *target = param_str(p, n, name);
      int k = out->ndisks++;
      snprintf(out->disks[k].target, sizeof(out->disks[k].target), "%s", target ? target : "");
      out->disks[k].read_bytes = param_idx(p, n, "block", i, "rd.bytes");
      out->disks[k].write_bytes = param_idx(p, n, "block", i, "wr.bytes");
      out->disks[k].read_requests = param_idx(p, n, "block", i, "rd.reqs");
      out->disks[k].write_requests = param_idx(p, n, "block", i, "wr.reqs");
    }
    stats_fallback(&d, spec, have_cpu, have_nets, have_blocks, out);
    if (!out->vcpus_online) out->vcpus_online = spec->vcpus;
    if (!out->vcpus_max) out->vcpus_max = spec->max_vcpus;
    for (int i = 0; i < out->nnics; i++)
      for (int j = 0; j < spec->nnics; j++)
        if (strcmp(out->nics[i].target, spec->nics[j].target) == 0)
          snprintf(out->nics[i].mac, sizeof(out->nics[i].mac), "%s", spec->nics[j].mac);
  }
  if (records) virDomainStatsRecordListFree(records);
  free(spec);
  hv_dcall_end(&d);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* snapshots                                                               */

static bool snap_name_ok(const char *snap) {
  if (!snap || !snap[0] || strlen(snap) > 255 || strchr(snap, '/')) return false;
  for (const char *p = snap; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f) return false;
  return true;
}

static int snapshot_lookup(hv_dcall *d, const char *snap, virDomainSnapshotPtr *out, char *err,
                           size_t errlen) {
  *out = virDomainSnapshotLookupByName(d->dom, snap, 0);
  if (*out) return HV_OK;
  int rc = dcall_fail(d, "looking up the snapshot", err, errlen);
  if (rc == HV_NOT_FOUND) hv_fail(rc, err, errlen, "snapshot %s not found", snap);
  return rc;
}

/* Snapshot paths, as found on libvirt 9.0 / qemu 7.2:
 *  - test driver: a plain create in every state; <memory snapshot='no'/>
 *    when memory is not wanted for an active domain.
 *  - qemu, domain with disks: a plain create, i.e. internal qcow2
 *    snapshots. An active domain's internal snapshot always includes its
 *    memory ("internal snapshot of a running VM must include the memory
 *    state"), whatever include_memory says.
 *  - qemu, domain without disks: libvirt refuses a plain create in every
 *    state ("nothing selected for snapshot" shut off; "internal and full
 *    system snapshots require all disks to be selected" running; and qemu
 *    itself has "no block device can store vmstate"). External memory
 *    snapshots can be made but neither reverted nor deleted in 9.0. So
 *    the snapshot is metadata: VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE of a
 *    document holding the persistent definition, with <state>shutoff</>
 *    even for an active domain, because reverting a running-state
 *    snapshot makes qemu -loadvm, which fails and leaves the domain off.
 *    The state the domain really had is kept in a marker in the embedded
 *    definition's metadata (HV_SNAPSHOT_XMLNS); hv_snapshot_revert turns
 *    it into VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING/PAUSED, so the domain is
 *    restored to its definition and boots afresh into that state, and
 *    then removes the marker from the domain. Memory of a diskless domain
 *    cannot be kept: UNIMPLEMENTED.
 */
int hv_snapshot_create(hv *h, const char *host_id, const char *uuid, const char *snap,
                       const char *description, bool include_memory, char *err, size_t errlen) {
  if (!snap_name_ok(snap))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "snapshot name: invalid");
  if (description && strlen(description) > 4096)
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "snapshot description: too long");
  hv_dcall d;
  int rc = hv_dcall_begin(h, host_id, uuid, &d, err, errlen);
  if (rc != HV_OK) return rc;
  virDomainSnapshotPtr existing = virDomainSnapshotLookupByName(d.dom, snap, 0);
  if (existing) {
    virDomainSnapshotFree(existing);
    rc = hv_fail(HV_ALREADY_EXISTS, err, errlen, "snapshot %s already exists", snap);
  } else if (hv_virerr_code() != VIR_ERR_NO_DOMAIN_SNAPSHOT) {
    rc = dcall_fail(&d, "looking up the snapshot", err, errlen);
  }
  bool active = is_active(d.state);
  bool qemu = strcmp(d.c.info.domain_type, "test") != 0;
  char *domxml = NULL, *xml = NULL;
  hv_domain_spec *spec = NULL;
  if (rc == HV_OK && qemu) {
    domxml = virDomainGetXMLDesc(d.dom, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
    spec = calloc(1, sizeof(*spec));
    if (!domxml)
      rc = dcall_fail(&d, "reading the domain XML", err, errlen);
    else if (!spec)
      rc = hv_fail(HV_INTERNAL, err, errlen, "out of memory");
    else
      rc = hv_domain_parse(domxml, spec, err, errlen);
  }
  unsigned flags = 0;
  if (rc == HV_OK) {
    hv_snapshot_doc doc = {.name = snap, .description = description};
    int writable = 0;                              /* read-only disks are not snapshotted */
    for (int i = 0; spec && i < spec->ndisks; i++) /* spec: qemu only */
      writable += !spec->disks[i].read_only;
    if (qemu && writable == 0) {
      if (include_memory && active) {
        rc = hv_fail(HV_UNIMPLEMENTED, err, errlen,
                     "a domain without disks cannot keep its memory in a snapshot");
      } else {
        virDomainSnapshotPtr cur = virDomainSnapshotCurrent(d.dom, 0);
        doc.state = "shutoff";
        doc.run_state = d.state == HV_DOM_PAUSED ? "paused" : active ? "running" : "shutoff";
        doc.created = (long long)time(NULL);
        doc.memory_no = true;
        doc.domain_xml = domxml;
        doc.parent = cur ? virDomainSnapshotGetName(cur) : NULL;
        flags = VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE | VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT;
        xml = hv_xml_snapshot(&doc, err, errlen);
        if (cur) virDomainSnapshotFree(cur);
        virResetLastError();
      }
    } else {
      doc.memory_no = !qemu && active && !include_memory;
      xml = hv_xml_snapshot(&doc, err, errlen);
    }
    if (rc == HV_OK && !xml) rc = HV_INTERNAL;
  }
  if (rc == HV_OK) {
    virDomainSnapshotPtr s = virDomainSnapshotCreateXML(d.dom, xml, flags);
    if (!s)
      rc = dcall_fail(&d, "creating the snapshot", err, errlen);
    else
      virDomainSnapshotFree(s);
  }
  free(xml);
  free(domxml);
  free(spec);
  hv_dcall_end(&d);
  return rc;
}

int hv_snapshot_revert(hv *h, const char *host_id, const char *uuid, const char *snap, char *err,
                       size_t errlen) {
  if (!snap_name_ok(snap))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "snapshot name: invalid");
  hv_dcall d;
  int rc = hv_dcall_begin(h, host_id, uuid, &d, err, errlen);
  if (rc != HV_OK) return rc;
  virDomainSnapshotPtr s = NULL;
  rc = snapshot_lookup(&d, snap, &s, err, errlen);
  char run_state[16] = "";
  if (rc == HV_OK) {
    char *xml = virDomainSnapshotGetXMLDesc(s, VIR_DOMAIN_SNAPSHOT_XML_SECURE);
    if (!xml)
      rc = dcall_fail(&d, "reading the snapshot", err, errlen);
    else
      hv_xml_snapshot_run_state(xml, run_state, sizeof(run_state));
    free(xml);
  }
  unsigned flags = strcmp(run_state, "running") == 0  ? VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING
                   : strcmp(run_state, "paused") == 0 ? VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED
                                                      : 0;
  if (rc == HV_OK && virDomainRevertToSnapshot(s, flags) < 0)
    rc = dcall_fail(&d, "reverting to the snapshot", err, errlen);
  if (rc == HV_OK && run_state[0]) {
    /* the marker belongs to the snapshot, not to the domain */
    unsigned where = VIR_DOMAIN_AFFECT_CONFIG | (flags ? VIR_DOMAIN_AFFECT_LIVE : 0);
    if (virDomainSetMetadata(d.dom, VIR_DOMAIN_METADATA_ELEMENT, NULL, NULL, HV_SNAPSHOT_XMLNS,
                             where) < 0 &&
        (!(where & VIR_DOMAIN_AFFECT_LIVE) ||
         virDomainSetMetadata(d.dom, VIR_DOMAIN_METADATA_ELEMENT, NULL, NULL, HV_SNAPSHOT_XMLNS,
                              VIR_DOMAIN_AFFECT_CONFIG) < 0))
      virResetLastError();
  }
  if (s) virDomainSnapshotFree(s);
  hv_dcall_end(&d);
  return rc;
}

int hv_snapshot_delete(hv *h, const char *host_id, const char *uuid, const char *snap,
                       bool children, char *err, size_t errlen) {
  if (!snap_name_ok(snap))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "snapshot name: invalid");
  hv_dcall d;
  int rc = hv_dcall_begin(h, host_id, uuid, &d, err, errlen);
  if (rc != HV_OK) return rc;
  virDomainSnapshotPtr s = NULL;
  rc = snapshot_lookup(&d, snap, &s, err, errlen);
  unsigned flags = children ? VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN : 0;
  if (rc == HV_OK) {
    /* A snapshot that holds no data (a diskless domain's) is only
     * metadata: qemu would otherwise look for a disk to delete it from. */
    char *xml = virDomainSnapshotGetXMLDesc(s, 0);
    int nchildren = virDomainSnapshotNumChildren(s, 0);
    if (xml && hv_xml_snapshot_is_metadata_only(xml) && (!children || nchildren == 0))
      flags |= VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY;
    free(xml);
    virResetLastError();
    int r = virDomainSnapshotDelete(s, flags);
    if (r < 0 && (flags & VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY)) {
      /* drivers without the flag (the test driver) keep metadata only */
      virResetLastError();
      r = virDomainSnapshotDelete(s, flags & ~(unsigned)VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY);
    }
    if (r < 0) rc = dcall_fail(&d, "deleting the snapshot", err, errlen);
  }
  if (s) virDomainSnapshotFree(s);
  hv_dcall_end(&d);
  return rc;
}

/* ---------------------------------------------------------------------- */
/* migration                                                               */

/* Offline: define the inactive definition on dst, then undefine on src;
 * if define fails nothing changed, if undefine fails dst is rolled back.
 * Snapshot metadata stays behind (it is removed with the source). */
static int migrate_offline(hv_dcall *d, hv_conn *dst, const char *uuid, char *err, size_t errlen) {
  char *xml = virDomainGetXMLDesc(d->dom, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE);
  if (!xml) return dcall_fail(d, "reading the domain XML", err, errlen);
  int rc = HV_OK;
  virDomainPtr copy = virDomainDefineXML(dst->conn, xml);
  free(xml);
  if (!copy) return hv_conn_fail(dst, "defining the domain on the destination", err, errlen);
  if (undefine_all(d->dom) < 0) {
    rc = dcall_fail(d, "undefining the domain on the source", err, errlen);
    if (virDomainUndefine(copy) < 0) {
      nc_log(NC_LOG_ERROR, "offline migration left the domain defined on both hosts",
             LKV_S("uuid", uuid));
      virResetLastError();
    }
  }
  virDomainFree(copy);
  return rc;
}

/* Through libvirt's migration: live, or paused first when not live. */
static int migrate_running(hv_dcall *d, hv_conn *dst, bool live, char *err, size_t errlen) {
  int persistent = virDomainIsPersistent(d->dom);
  if (persistent < 0) return dcall_fail(d, "reading the domain", err, errlen);
  unsigned flags = VIR_MIGRATE_PERSIST_DEST | (persistent ? VIR_MIGRATE_UNDEFINE_SOURCE : 0);
  bool paused_here = false;
  if (live) {
    flags |= VIR_MIGRATE_LIVE;
  } else if (d->state != HV_DOM_PAUSED) {
    if (virDomainSuspend(d->dom) < 0)
      return dcall_fail(d, "pausing the domain for migration", err, errlen);
    paused_here = true;
  }
  virDomainPtr moved = virDomainMigrate3(d->dom, dst->conn, NULL, 0, flags);
  if (moved) {
    /* It left paused when we paused it: let it run on the destination. */
    if (paused_here && virDomainResume(moved) < 0) virResetLastError();
    virDomainFree(moved);
    return HV_OK;
  }
  int code = hv_virerr_code();
  int rc = dcall_fail(d, "migrating the domain", err, errlen);
  if (code == VIR_ERR_NO_SUPPORT || code == VIR_ERR_OPERATION_UNSUPPORTED)
    rc = hv_fail(HV_UNIMPLEMENTED, err, errlen,
                 "the hypervisor cannot migrate a running domain; stop it and migrate offline");
  if (paused_here && virDomainResume(d->dom) < 0) virResetLastError();
  return rc;
}

int hv_domain_migrate(hv *h, const char *src, const char *dst, const char *uuid, bool live,
                      char *err, size_t errlen) {
  if (!src || !dst || strcmp(src, dst) == 0)
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen,
                   "source and destination must be two different hosts");
  hv_dcall d;
  int rc = hv_dcall_begin(h, src, uuid, &d, err, errlen);
  if (rc != HV_OK) return rc;
  hv_conn to;
  rc = hv_conn_get(h, dst, &to, err, errlen);
  if (rc != HV_OK) {
    hv_dcall_end(&d);
    return rc;
  }
  virDomainPtr there = virDomainLookupByUUIDString(to.conn, uuid);
  if (there) {
    virDomainFree(there);
    rc = hv_fail(HV_ALREADY_EXISTS, err, errlen, "domain %s already exists on host %s", uuid, dst);
  } else if (hv_virerr_code() != VIR_ERR_NO_DOMAIN) {
    rc = hv_conn_fail(&to, "looking up the domain on the destination", err, errlen);
  }
  if (rc == HV_OK) {
    rc = is_active(d.state) ? migrate_running(&d, &to, live, err, errlen)
                            : migrate_offline(&d, &to, uuid, err, errlen);
  }
  if (rc == HV_OK)
    nc_log(NC_LOG_INFO, "domain migrated", LKV_S("uuid", uuid), LKV_S("from", src),
           LKV_S("to", dst), LKV_B("live", live && is_active(d.state)));
  hv_conn_put(&to);
  hv_dcall_end(&d);
  return rc;
}
