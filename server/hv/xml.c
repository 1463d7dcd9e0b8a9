/*
 * xml.c - libvirt XML documents with libxml2: the domain document built
 * from a spec and parsed back, the snapshot document, and what hv.c reads
 * from capabilities and metadata.
 *
 * Documents are built with the tree API only (xmlNewTextChild/xmlNewProp
 * escape text and attributes) and parsed without network access or
 * entity substitution. Nothing here talks to libvirt.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlsave.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "hv/internal.h"

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

/* libxml2 prints parser warnings on stderr (libvirt's parsing of a test
 * driver node file, for one), which would break the one-JSON-object-per-
 * line log. hv/ is the only libxml2 user: silence it for this thread and
 * every thread that starts using libxml2 later. Errors reach callers as
 * libvirt's messages or as our own. */
static void quiet_xml(void *ctx, const char *msg, ...) {
  (void)ctx;
  (void)msg;
}

static void xml_init_once(void) {
  xmlInitParser();
  xmlThrDefSetGenericErrorFunc(NULL, quiet_xml);
  xmlSetGenericErrorFunc(NULL, quiet_xml);
}

void hv_xml_init(void) { pthread_once(&xml_once, xml_init_once); }

/* ---------------------------------------------------------------------- */
/* building                                                                */

/* A builder remembers the first allocation failure so callers can chain
 * calls and check once. */
typedef struct xb {
  bool failed;
} xb;

static xmlNodePtr xb_el(xb *b, xmlNodePtr parent, const char *name, const char *text) {
  if (!parent) {
    b->failed = true;
    return NULL;
  }
  xmlNodePtr n = xmlNewTextChild(parent, NULL, BAD_CAST name, text ? BAD_CAST text : NULL);
  if (!n) b->failed = true;
  return n;
}

static void xb_attr(xb *b, xmlNodePtr node, const char *name, const char *value) {
  if (!node || !xmlNewProp(node, BAD_CAST name, BAD_CAST value)) b->failed = true;
}

static void xb_attr_ll(xb *b, xmlNodePtr node, const char *name, long long value) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%lld", value);
  xb_attr(b, node, name, buf);
}

static xmlNodePtr xb_el_ll(xb *b, xmlNodePtr parent, const char *name, long long value) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%lld", value);
  return xb_el(b, parent, name, buf);
}

/* The document as a malloc'ed string without an XML declaration. */
static char *xb_dump(xmlDocPtr doc) {
  xmlBufferPtr buf = xmlBufferCreate();
  if (!buf) return NULL;
  char *out = NULL;
  xmlSaveCtxtPtr save = xmlSaveToBuffer(buf, "UTF-8", XML_SAVE_FORMAT | XML_SAVE_NO_DECL);
  if (save) {
    long rc = xmlSaveDoc(save, doc);
    if (xmlSaveClose(save) >= 0 && rc >= 0) out = strdup((const char *)xmlBufferContent(buf));
  }
  xmlBufferFree(buf);
  return out;
}

/* A string field of a spec: terminated within its array, valid UTF-8,
 * no control characters (XML 1.0 cannot carry them). */
static bool field_ok(const char *s, size_t size) {
  size_t n = strnlen(s, size);
  if (n == size) return false;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) return false;
  return xmlCheckUTF8((const unsigned char *)s) != 0;
}

#define FIELD_OK(f) field_ok((f), sizeof(f))

static bool mac_ok(const char *mac) {
  if (strnlen(mac, 18) != 17) return false;
  for (int i = 0; i < 17; i++) {
    char c = mac[i];
    if (i % 3 == 2 ? c != ':'
                   : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
      return false;
  }
  return true;
}

static int check_spec(const hv_domain_spec *s, char *err, size_t errlen) {
  if (!FIELD_OK(s->uuid) || !hv_uuid_valid(s->uuid))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "uuid: not a UUID");
  if (!FIELD_OK(s->name) || !s->name[0] || strchr(s->name, '/'))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "name: required, printable UTF-8 without '/'");
  if (!FIELD_OK(s->vm)) return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "vm: invalid text");
  if (s->vcpus < 1 || s->vcpus > 4096)
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "vcpus: must be 1..4096");
  if (s->max_vcpus != 0 && (s->max_vcpus < s->vcpus || s->max_vcpus > 4096))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "max_vcpus: must be vcpus..4096");
  if (s->memory_mib < 1 || s->memory_mib > ((int64_t)1 << 32))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "memory_mib: out of range");
  if (s->max_memory_mib != 0 &&
      (s->max_memory_mib < s->memory_mib || s->max_memory_mib > ((int64_t)1 << 32)))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "max_memory_mib: must be >= memory_mib");
  if (!FIELD_OK(s->machine_type))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "machine_type: invalid text");
  if (s->firmware != HV_FW_BIOS && s->firmware != HV_FW_UEFI)
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "firmware: unknown");
  if (s->ndisks < 0 || s->ndisks > HV_MAX_DISKS)
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "disks: at most %d", HV_MAX_DISKS);
  if (s->nnics < 0 || s->nnics > HV_MAX_NICS)
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "nics: at most %d", HV_MAX_NICS);
  for (int i = 0; i < s->ndisks; i++) {
    const hv_disk *d = &s->disks[i];
    if (!FIELD_OK(d->path) || d->path[0] != '/')
      return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "disks[%d].path: absolute path required", i);
    if (!FIELD_OK(d->format) || (strcmp(d->format, "qcow2") != 0 && strcmp(d->format, "raw")))
      return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "disks[%d].format: qcow2 or raw", i);
    if (d->bus != HV_BUS_VIRTIO && d->bus != HV_BUS_SATA && d->bus != HV_BUS_SCSI)
      return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "disks[%d].bus: unknown", i);
    if (!FIELD_OK(d->target) || !d->target[0])
      return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "disks[%d].target: required", i);
    if (!FIELD_OK(d->volume))
      return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "disks[%d].volume: invalid text", i);
    if (d->boot_index < 0)
      return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "disks[%d].boot_index: negative", i);
    for (int j = 0; j < i; j++)
      if (strcmp(s->disks[j].target, d->target) == 0)
        return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "disks[%d].target: duplicate", i);
  }
  for (int i = 0; i < s->nnics; i++) {
    const hv_nic *n = &s->nics[i];
    if (!mac_ok(n->mac))
      return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "nics[%d].mac: not a MAC address", i);
    if (n->model != HV_NIC_VIRTIO && n->model != HV_NIC_E1000)
      return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "nics[%d].model: unknown", i);
    if (!FIELD_OK(n->network) || !n->network[0])
      return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "nics[%d].network: required", i);
    if (n->boot_index < 0)
      return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "nics[%d].boot_index: negative", i);
  }
  return HV_OK;
}

static const char *bus_name(int bus) {
  switch (bus) {
  case HV_BUS_SATA: return "sata";
  case HV_BUS_SCSI: return "scsi";
  default: return "virtio";
  }
}

char *hv_domain_xml(const hv_domain_spec *spec, const hv_host_info *host, char *err,
                    size_t errlen) {
  if (!spec || !host) {
    hv_fail(HV_INVALID_ARGUMENT, err, errlen, "spec and host required");
    return NULL;
  }
  if (check_spec(spec, err, errlen) != HV_OK) return NULL;
  const char *type = host->domain_type;
  if (strcmp(type, "kvm") != 0 && strcmp(type, "qemu") != 0 && strcmp(type, "test") != 0) {
    hv_fail(HV_INVALID_ARGUMENT, err, errlen, "domain type '%s' unknown (kvm, qemu, test)", type);
    return NULL;
  }
  bool qemu = strcmp(type, "test") != 0;
  hv_xml_init();

  xb b = {false};
  xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
  xmlNodePtr root = doc ? xmlNewDocNode(doc, NULL, BAD_CAST "domain", NULL) : NULL;
  if (!root) {
    xmlFreeDoc(doc);
    hv_fail(HV_INTERNAL, err, errlen, "out of memory");
    return NULL;
  }
  xmlDocSetRootElement(doc, root);
  xb_attr(&b, root, "type", type);
  xb_el(&b, root, "name", spec->name);
  xb_el(&b, root, "uuid", spec->uuid);

  /* <metadata><nc:vm name=...><nc:disk target=... volume=.../></nc:vm> */
  xmlNodePtr meta = xb_el(&b, root, "metadata", NULL);
  xmlNodePtr vm = xb_el(&b, meta, "vm", NULL);
  xmlNsPtr ns = vm ? xmlNewNs(vm, BAD_CAST HV_XMLNS, BAD_CAST "nc") : NULL;
  if (!ns) b.failed = true;
  xmlSetNs(vm, ns);
  xb_attr(&b, vm, "name", spec->vm);
  for (int i = 0; i < spec->ndisks && vm; i++) {
    if (!spec->disks[i].volume[0]) continue;
    xmlNodePtr d = xmlNewChild(vm, ns, BAD_CAST "disk", NULL);
    xb_attr(&b, d, "target", spec->disks[i].target);
    xb_attr(&b, d, "volume", spec->disks[i].volume);
  }

  int64_t max_mib = spec->max_memory_mib ? spec->max_memory_mib : spec->memory_mib;
  xmlNodePtr mem = xb_el_ll(&b, root, "memory", (long long)max_mib * 1024);
  xb_attr(&b, mem, "unit", "KiB");
  mem = xb_el_ll(&b, root, "currentMemory", (long long)spec->memory_mib * 1024);
  xb_attr(&b, mem, "unit", "KiB");
  int max_vcpus = spec->max_vcpus ? spec->max_vcpus : spec->vcpus;
  xmlNodePtr vcpu = xb_el_ll(&b, root, "vcpu", max_vcpus);
  xb_attr_ll(&b, vcpu, "current", spec->vcpus);

  xmlNodePtr os = xb_el(&b, root, "os", NULL);
  if (spec->firmware == HV_FW_UEFI) xb_attr(&b, os, "firmware", "efi");
  xmlNodePtr ostype = xb_el(&b, os, "type", "hvm");
  if (host->arch[0]) xb_attr(&b, ostype, "arch", host->arch);
  if (spec->machine_type[0]) xb_attr(&b, ostype, "machine", spec->machine_type);

  xmlNodePtr features = xb_el(&b, root, "features", NULL);
  xb_el(&b, features, "acpi", NULL);
  xb_el(&b, features, "apic", NULL);
  xb_el(&b, root, "on_poweroff", "destroy");
  xb_el(&b, root, "on_reboot", "restart");
  xb_el(&b, root, "on_crash", "destroy");

  xmlNodePtr devices = xb_el(&b, root, "devices", NULL);
  for (int i = 0; i < spec->ndisks; i++) {
    const hv_disk *d = &spec->disks[i];
    xmlNodePtr disk = xb_el(&b, devices, "disk", NULL);
    xb_attr(&b, disk, "type", "file");
    xb_attr(&b, disk, "device", "disk");
    xmlNodePtr driver = xb_el(&b, disk, "driver", NULL);
    xb_attr(&b, driver, "name", "qemu");
    xb_attr(&b, driver, "type", d->format);
    xb_attr(&b, xb_el(&b, disk, "source", NULL), "file", d->path);
    xmlNodePtr target = xb_el(&b, disk, "target", NULL);
    xb_attr(&b, target, "dev", d->target);
    xb_attr(&b, target, "bus", bus_name(d->bus));
    if (d->read_only) xb_el(&b, disk, "readonly", NULL);
    if (d->boot_index > 0) xb_attr_ll(&b, xb_el(&b, disk, "boot", NULL), "order", d->boot_index);
  }
  for (int i = 0; i < spec->nnics; i++) {
    const hv_nic *n = &spec->nics[i];
    xmlNodePtr nic = xb_el(&b, devices, "interface", NULL);
    xb_attr(&b, nic, "type", "network");
    xb_attr(&b, xb_el(&b, nic, "mac", NULL), "address", n->mac);
    xb_attr(&b, xb_el(&b, nic, "source", NULL), "network", n->network);
    xb_attr(&b, xb_el(&b, nic, "model", NULL), "type",
            n->model == HV_NIC_E1000 ? "e1000" : "virtio");
    if (n->boot_index > 0) xb_attr_ll(&b, xb_el(&b, nic, "boot", NULL), "order", n->boot_index);
  }
  xmlNodePtr serial = xb_el(&b, devices, "serial", NULL);
  xb_attr(&b, serial, "type", "pty");
  xb_attr(&b, xb_el(&b, serial, "target", NULL), "port", "0");
  xmlNodePtr console = xb_el(&b, devices, "console", NULL);
  xb_attr(&b, console, "type", "pty");
  xmlNodePtr ctarget = xb_el(&b, console, "target", NULL);
  xb_attr(&b, ctarget, "type", "serial");
  xb_attr(&b, ctarget, "port", "0");
  if (qemu) xb_attr(&b, xb_el(&b, devices, "memballoon", NULL), "model", "virtio");

  char *out = b.failed ? NULL : xb_dump(doc);
  xmlFreeDoc(doc);
  if (!out) hv_fail(HV_INTERNAL, err, errlen, "out of memory building the domain XML");
  return out;
}

/* ---------------------------------------------------------------------- */
/* parsing                                                                 */

static xmlDocPtr parse_doc(const char *xml) {
  hv_xml_init();
  size_t len = strlen(xml);
  if (len > 64u * 1024 * 1024) return NULL;
  return xmlReadMemory(xml, (int)len, "libvirt.xml", NULL,
                       XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
}

/* string(expr) evaluated at `node`, copied (truncated) into out. */
static void xp_str(xmlXPathContextPtr ctx, xmlNodePtr node, const char *expr, char *out,
                   size_t size) {
  out[0] = '\0';
  ctx->node = node;
  xmlXPathObjectPtr r = xmlXPathEvalExpression(BAD_CAST expr, ctx);
  if (r && r->type == XPATH_STRING && r->stringval)
    snprintf(out, size, "%s", (const char *)r->stringval);
  xmlXPathFreeObject(r);
}

static long long xp_ll(xmlXPathContextPtr ctx, xmlNodePtr node, const char *expr, long long dflt) {
  char buf[64];
  xp_str(ctx, node, expr, buf, sizeof(buf));
  if (!buf[0]) return dflt;
  char *end;
  long long v = strtoll(buf, &end, 10);
  while (*end == ' ' || *end == '\n' || *end == '\t')
    end++;
  return *end ? dflt : v;
}

static bool xp_exists(xmlXPathContextPtr ctx, xmlNodePtr node, const char *expr) {
  ctx->node = node;
  xmlXPathObjectPtr r = xmlXPathEvalExpression(BAD_CAST expr, ctx);
  bool yes = r && r->type == XPATH_NODESET && r->nodesetval && r->nodesetval->nodeNr > 0;
  xmlXPathFreeObject(r);
  return yes;
}

static xmlXPathObjectPtr xp_nodes(xmlXPathContextPtr ctx, xmlNodePtr node, const char *expr) {
  ctx->node = node;
  xmlXPathObjectPtr r = xmlXPathEvalExpression(BAD_CAST expr, ctx);
  if (r && (r->type != XPATH_NODESET || !r->nodesetval)) {
    xmlXPathFreeObject(r);
    return NULL;
  }
  return r;
}

/* A libvirt memory element in KiB, honouring its unit attribute. */
static int64_t memory_kib(xmlXPathContextPtr ctx, xmlNodePtr root, const char *el) {
  char expr[64], unit[16];
  snprintf(expr, sizeof(expr), "string(%s)", el);
  long long v = xp_ll(ctx, root, expr, -1);
  if (v < 0) return -1;
  snprintf(expr, sizeof(expr), "string(%s/@unit)", el);
  xp_str(ctx, root, expr, unit, sizeof(unit));
  static const struct {
    const char *unit;
    long double kib;
  } units[] = {{"", 1},
               {"KiB", 1},
               {"k", 1},
               {"K", 1},
               {"b", 1.0 / 1024},
               {"bytes", 1.0 / 1024},
               {"KB", 1000.0 / 1024},
               {"MB", 1e6 / 1024},
               {"M", 1024},
               {"MiB", 1024},
               {"GB", 1e9 / 1024},
               {"G", 1024 * 1024},
               {"GiB", 1024 * 1024},
               {"TB", 1e12 / 1024},
               {"T", 1024.0 * 1024 * 1024},
               {"TiB", 1024.0 * 1024 * 1024}};
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
    if (strcmp(unit, units[i].unit) == 0) return (int64_t)((long double)v * units[i].kib);
  return -1;
}

int hv_domain_parse(const char *xml, hv_domain_spec *out, char *err, size_t errlen) {
  memset(out, 0, sizeof(*out));
  if (!xml) return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "no document");
  xmlDocPtr doc = parse_doc(xml);
  xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
  if (!root || root->ns || xmlStrcmp(root->name, BAD_CAST "domain") != 0) {
    xmlFreeDoc(doc);
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "not a libvirt domain document");
  }
  xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
  if (!ctx || xmlXPathRegisterNs(ctx, BAD_CAST "nc", BAD_CAST HV_XMLNS) != 0) {
    xmlXPathFreeContext(ctx);
    xmlFreeDoc(doc);
    return hv_fail(HV_INTERNAL, err, errlen, "out of memory parsing the domain XML");
  }

  xp_str(ctx, root, "string(uuid)", out->uuid, sizeof(out->uuid));
  xp_str(ctx, root, "string(name)", out->name, sizeof(out->name));
  xp_str(ctx, root, "string(metadata/nc:vm/@name)", out->vm, sizeof(out->vm));
  out->max_vcpus = (int)xp_ll(ctx, root, "string(vcpu)", 1);
  out->vcpus = (int)xp_ll(ctx, root, "string(vcpu/@current)", out->max_vcpus);
  int64_t kib = memory_kib(ctx, root, "memory");
  out->max_memory_mib = kib > 0 ? kib / 1024 : 0;
  kib = memory_kib(ctx, root, "currentMemory");
  out->memory_mib = kib > 0 ? kib / 1024 : out->max_memory_mib;
  xp_str(ctx, root, "string(os/type/@machine)", out->machine_type, sizeof(out->machine_type));
  char fw[16];
  xp_str(ctx, root, "string(os/@firmware)", fw, sizeof(fw));
  out->firmware = strcmp(fw, "efi") == 0 || xp_exists(ctx, root, "os/loader[@type='pflash']")
                      ? HV_FW_UEFI
                      : HV_FW_BIOS;

  /* Disks: only device='disk' (the default); cdroms and floppies are not
   * part of a spec. Buses other than sata and scsi read as virtio. */
  xmlXPathObjectPtr set = xp_nodes(ctx, root, "devices/disk[not(@device) or @device='disk']");
  for (int i = 0; set && i < set->nodesetval->nodeNr && out->ndisks < HV_MAX_DISKS; i++) {
    xmlNodePtr n = set->nodesetval->nodeTab[i];
    hv_disk *d = &out->disks[out->ndisks++];
    xp_str(ctx, n, "string(source/@file | source/@dev)", d->path, sizeof(d->path));
    xp_str(ctx, n, "string(driver/@type)", d->format, sizeof(d->format));
    xp_str(ctx, n, "string(target/@dev)", d->target, sizeof(d->target));
    char bus[16];
    xp_str(ctx, n, "string(target/@bus)", bus, sizeof(bus));
    d->bus = strcmp(bus, "sata") == 0   ? HV_BUS_SATA
             : strcmp(bus, "scsi") == 0 ? HV_BUS_SCSI
                                        : HV_BUS_VIRTIO;
    d->boot_index = (int)xp_ll(ctx, n, "string(boot/@order)", 0);
    d->read_only = xp_exists(ctx, n, "readonly");
  }
  xmlXPathFreeObject(set);
  /* volume names from our metadata, by target */
  set = xp_nodes(ctx, root, "metadata/nc:vm/nc:disk");
  for (int i = 0; set && i < set->nodesetval->nodeNr; i++) {
    xmlNodePtr n = set->nodesetval->nodeTab[i];
    char target[sizeof(out->disks[0].target)];
    xp_str(ctx, n, "string(@target)", target, sizeof(target));
    for (int j = 0; j < out->ndisks; j++)
      if (strcmp(out->disks[j].target, target) == 0)
        xp_str(ctx, n, "string(@volume)", out->disks[j].volume, sizeof(out->disks[j].volume));
  }
  xmlXPathFreeObject(set);

  set = xp_nodes(ctx, root, "devices/interface");
  for (int i = 0; set && i < set->nodesetval->nodeNr && out->nnics < HV_MAX_NICS; i++) {
    xmlNodePtr n = set->nodesetval->nodeTab[i];
    hv_nic *nic = &out->nics[out->nnics++];
    xp_str(ctx, n, "string(mac/@address)", nic->mac, sizeof(nic->mac));
    char model[32];
    xp_str(ctx, n, "string(model/@type)", model, sizeof(model));
    nic->model = strncmp(model, "e1000", 5) == 0 ? HV_NIC_E1000 : HV_NIC_VIRTIO;
    xp_str(ctx, n, "string(source/@network)", nic->network, sizeof(nic->network));
    nic->boot_index = (int)xp_ll(ctx, n, "string(boot/@order)", 0);
    xp_str(ctx, n, "string(target/@dev)", nic->target, sizeof(nic->target));
  }
  xmlXPathFreeObject(set);

  xmlXPathFreeContext(ctx);
  xmlFreeDoc(doc);
  return HV_OK;
}

/* ---------------------------------------------------------------------- */
/* capabilities, metadata, snapshots                                       */

int hv_xml_caps(const char *caps, char *arch, size_t archlen, bool *kvm) {
  arch[0] = '\0';
  *kvm = false;
  xmlDocPtr doc = parse_doc(caps);
  xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
  xmlXPathContextPtr ctx = root ? xmlXPathNewContext(doc) : NULL;
  if (!ctx) {
    xmlFreeDoc(doc);
    return HV_INVALID_ARGUMENT;
  }
  xp_str(ctx, root, "string(/capabilities/host/cpu/arch)", arch, archlen);
  /* kvm for the host arch's hvm guest: compare names here rather than
   * pasting the arch into an expression */
  xmlXPathObjectPtr set = xp_nodes(ctx, root, "/capabilities/guest[os_type='hvm']/arch");
  for (int i = 0; set && i < set->nodesetval->nodeNr; i++) {
    xmlNodePtr n = set->nodesetval->nodeTab[i];
    char name[64];
    xp_str(ctx, n, "string(@name)", name, sizeof(name));
    if (strcmp(name, arch) == 0 && xp_exists(ctx, n, "domain[@type='kvm']")) *kvm = true;
  }
  xmlXPathFreeObject(set);
  xmlXPathFreeContext(ctx);
  xmlFreeDoc(doc);
  return HV_OK;
}

void hv_xml_metadata_vm(const char *element, char *vm, size_t vmlen) {
  vm[0] = '\0';
  if (!element) return;
  xmlDocPtr doc = parse_doc(element);
  xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
  xmlChar *name = root ? xmlGetProp(root, BAD_CAST "name") : NULL;
  if (name) snprintf(vm, vmlen, "%s", (const char *)name);
  xmlFree(name);
  xmlFreeDoc(doc);
}

/* <metadata><ncs:snapshot state=.../></metadata> in a domain definition,
 * replacing an older marker. */
static void add_run_state(xb *b, xmlNodePtr domain, const char *state) {
  xmlNodePtr meta = NULL;
  for (xmlNodePtr n = domain->children; n; n = n->next)
    if (n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, BAD_CAST "metadata") == 0) meta = n;
  if (!meta) meta = xb_el(b, domain, "metadata", NULL);
  for (xmlNodePtr n = meta ? meta->children : NULL, next; n; n = next) {
    next = n->next;
    if (n->type == XML_ELEMENT_NODE && n->ns &&
        xmlStrcmp(n->ns->href, BAD_CAST HV_SNAPSHOT_XMLNS) == 0) {
      xmlUnlinkNode(n);
      xmlFreeNode(n);
    }
  }
  xmlNodePtr mark = xb_el(b, meta, "snapshot", NULL);
  xmlNsPtr ns = mark ? xmlNewNs(mark, BAD_CAST HV_SNAPSHOT_XMLNS, BAD_CAST "ncs") : NULL;
  if (!ns) b->failed = true;
  xmlSetNs(mark, ns);
  xb_attr(b, mark, "state", state);
}

char *hv_xml_snapshot(const hv_snapshot_doc *d, char *err, size_t errlen) {
  hv_xml_init();
  xb b = {false};
  xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
  xmlNodePtr root = doc ? xmlNewDocNode(doc, NULL, BAD_CAST "domainsnapshot", NULL) : NULL;
  if (!root) {
    xmlFreeDoc(doc);
    hv_fail(HV_INTERNAL, err, errlen, "out of memory");
    return NULL;
  }
  xmlDocSetRootElement(doc, root);
  xb_el(&b, root, "name", d->name);
  if (d->description && d->description[0]) xb_el(&b, root, "description", d->description);
  if (d->state) {
    xb_el(&b, root, "state", d->state);
    xb_el_ll(&b, root, "creationTime", d->created);
    if (d->parent) xb_el(&b, xb_el(&b, root, "parent", NULL), "name", d->parent);
  }
  if (d->memory_no) xb_attr(&b, xb_el(&b, root, "memory", NULL), "snapshot", "no");
  if (d->domain_xml) {
    xmlDocPtr dom = parse_doc(d->domain_xml);
    xmlNodePtr droot = dom ? xmlDocGetRootElement(dom) : NULL;
    if (droot && d->run_state) add_run_state(&b, droot, d->run_state);
    xmlNodePtr copy = droot ? xmlDocCopyNode(droot, doc, 1) : NULL;
    if (!copy || !xmlAddChild(root, copy)) {
      xmlFreeNode(copy);
      b.failed = true;
    }
    xmlFreeDoc(dom);
  }
  char *out = b.failed ? NULL : xb_dump(doc);
  xmlFreeDoc(doc);
  if (!out) hv_fail(HV_INTERNAL, err, errlen, "cannot build the snapshot XML");
  return out;
}

void hv_xml_snapshot_run_state(const char *snapshot_xml, char *state, size_t size) {
  state[0] = '\0';
  xmlDocPtr doc = parse_doc(snapshot_xml);
  xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
  xmlXPathContextPtr ctx = root ? xmlXPathNewContext(doc) : NULL;
  if (ctx && xmlXPathRegisterNs(ctx, BAD_CAST "ncs", BAD_CAST HV_SNAPSHOT_XMLNS) == 0)
    xp_str(ctx, root, "string(domain/metadata/ncs:snapshot/@state)", state, size);
  xmlXPathFreeContext(ctx);
  xmlFreeDoc(doc);
}

bool hv_xml_snapshot_is_metadata_only(const char *snapshot_xml) {
  xmlDocPtr doc = parse_doc(snapshot_xml);
  xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
  xmlXPathContextPtr ctx = root ? xmlXPathNewContext(doc) : NULL;
  bool only = false;
  if (ctx) {
    char memory[16];
    xp_str(ctx, root, "string(memory/@snapshot)", memory, sizeof(memory));
    only = (memory[0] == '\0' || strcmp(memory, "no") == 0) &&
           !xp_exists(ctx, root, "disks/disk[not(@snapshot='no')]") &&
           !xp_exists(ctx, root, "domain/devices/disk[not(@device) or @device='disk']");
  }
  xmlXPathFreeContext(ctx);
  xmlFreeDoc(doc);
  return only;
}
