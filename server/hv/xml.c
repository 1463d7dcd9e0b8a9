/*
 * xml.c - libvirt XML documents with libxml2: the domain document built
 * from a spec and parsed back, single devices and the edits device.c
 * makes to a definition, the snapshot document, pool, volume and network
 * documents, and what the other files read from capabilities, metadata,
 * pools, volumes and networks.
 *
 * Documents are built with the tree API only (xmlNewTextChild/xmlNewProp
 * escape text and attributes) and parsed without network access or
 * entity substitution. Nothing here talks to libvirt.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* One element of a document (a device, a host entry) as a malloc'ed
 * string, formatted like xb_dump. */
static char *xb_dump_node(xmlNodePtr node) {
  xmlBufferPtr buf = xmlBufferCreate();
  if (!buf) return NULL;
  char *out = NULL;
  xmlSaveCtxtPtr save = xmlSaveToBuffer(buf, "UTF-8", XML_SAVE_FORMAT | XML_SAVE_NO_DECL);
  if (save) {
    long rc = xmlSaveTree(save, node);
    if (xmlSaveClose(save) >= 0 && rc >= 0) out = strdup((const char *)xmlBufferContent(buf));
  }
  xmlBufferFree(buf);
  return out;
}

/* A new document whose root element is `name`; NULL when out of memory. */
static xmlNodePtr xb_new_doc(const char *name, xmlDocPtr *doc) {
  *doc = xmlNewDoc(BAD_CAST "1.0");
  xmlNodePtr root = *doc ? xmlNewDocNode(*doc, NULL, BAD_CAST name, NULL) : NULL;
  if (root) xmlDocSetRootElement(*doc, root);
  return root;
}

/* Dumps the document `doc` (or only `node` of it) and frees it; NULL with
 * err set when building failed. */
static char *xb_finish(xb *b, xmlDocPtr doc, xmlNodePtr node, const char *what, char *err,
                       size_t errlen) {
  char *out = NULL;
  if (doc && !b->failed) out = node ? xb_dump_node(node) : xb_dump(doc);
  xmlFreeDoc(doc);
  if (!out) hv_fail(HV_INTERNAL, err, errlen, "out of memory building the %s XML", what);
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

bool hv_text_ok(const char *s, size_t max) { return s && field_ok(s, max + 1); }

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

bool hv_mac_ok(const char *mac) { return mac && mac_ok(mac); }

/* One disk of a spec; `label` names it in messages ("disks[1]", "disk"). */
static int check_disk(const hv_disk *d, const char *label, char *err, size_t errlen) {
  if (!FIELD_OK(d->path) || d->path[0] != '/')
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "%s.path: absolute path required", label);
  if (!FIELD_OK(d->format) || (strcmp(d->format, "qcow2") != 0 && strcmp(d->format, "raw")))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "%s.format: qcow2 or raw", label);
  if (d->bus != HV_BUS_VIRTIO && d->bus != HV_BUS_SATA && d->bus != HV_BUS_SCSI)
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "%s.bus: unknown", label);
  if (!FIELD_OK(d->target) || !d->target[0])
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "%s.target: required", label);
  if (!FIELD_OK(d->volume))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "%s.volume: invalid text", label);
  if (d->boot_index < 0)
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "%s.boot_index: negative", label);
  return HV_OK;
}

static int check_nic(const hv_nic *n, const char *label, char *err, size_t errlen) {
  if (!mac_ok(n->mac))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "%s.mac: not a MAC address", label);
  if (n->model != HV_NIC_VIRTIO && n->model != HV_NIC_E1000)
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "%s.model: unknown", label);
  if (!FIELD_OK(n->network) || !n->network[0])
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "%s.network: required", label);
  if (n->boot_index < 0)
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "%s.boot_index: negative", label);
  return HV_OK;
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
    char label[24];
    snprintf(label, sizeof(label), "disks[%d]", i);
    int rc = check_disk(&s->disks[i], label, err, errlen);
    if (rc != HV_OK) return rc;
    for (int j = 0; j < i; j++)
      if (strcmp(s->disks[j].target, s->disks[i].target) == 0)
        return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "disks[%d].target: duplicate", i);
  }
  for (int i = 0; i < s->nnics; i++) {
    char label[24];
    snprintf(label, sizeof(label), "nics[%d]", i);
    int rc = check_nic(&s->nics[i], label, err, errlen);
    if (rc != HV_OK) return rc;
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

/* <disk type='file' device='disk'> with its driver, source, target, and
 * readonly and boot order when set. */
static void add_disk(xb *b, xmlNodePtr devices, const hv_disk *d) {
  xmlNodePtr disk = xb_el(b, devices, "disk", NULL);
  xb_attr(b, disk, "type", "file");
  xb_attr(b, disk, "device", "disk");
  /* nothing to keep of a disk the guest cannot write (a config drive);
   * qemu could not snapshot a raw one internally anyway */
  if (d->read_only) xb_attr(b, disk, "snapshot", "no");
  xmlNodePtr driver = xb_el(b, disk, "driver", NULL);
  xb_attr(b, driver, "name", "qemu");
  xb_attr(b, driver, "type", d->format);
  xb_attr(b, xb_el(b, disk, "source", NULL), "file", d->path);
  xmlNodePtr target = xb_el(b, disk, "target", NULL);
  xb_attr(b, target, "dev", d->target);
  xb_attr(b, target, "bus", bus_name(d->bus));
  if (d->read_only) xb_el(b, disk, "readonly", NULL);
  if (d->boot_index > 0) xb_attr_ll(b, xb_el(b, disk, "boot", NULL), "order", d->boot_index);
}

/* <interface type='network'> with its MAC, network, model and boot order. */
static void add_nic(xb *b, xmlNodePtr devices, const hv_nic *n) {
  xmlNodePtr nic = xb_el(b, devices, "interface", NULL);
  xb_attr(b, nic, "type", "network");
  xb_attr(b, xb_el(b, nic, "mac", NULL), "address", n->mac);
  xb_attr(b, xb_el(b, nic, "source", NULL), "network", n->network);
  xb_attr(b, xb_el(b, nic, "model", NULL), "type", n->model == HV_NIC_E1000 ? "e1000" : "virtio");
  if (n->boot_index > 0) xb_attr_ll(b, xb_el(b, nic, "boot", NULL), "order", n->boot_index);
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
  for (int i = 0; i < spec->ndisks; i++)
    add_disk(&b, devices, &spec->disks[i]);
  for (int i = 0; i < spec->nnics; i++)
    add_nic(&b, devices, &spec->nics[i]);
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
           !xp_exists(ctx, root,
                      "domain/devices/disk[(not(@device) or @device='disk') and "
                      "not(@snapshot='no')]");
  }
  xmlXPathFreeContext(ctx);
  xmlFreeDoc(doc);
  return only;
}

/* ---------------------------------------------------------------------- */
/* devices of a domain                                                     */

/* A parsed document with its XPath context. */
typedef struct xdoc {
  xmlDocPtr doc;
  xmlNodePtr root;
  xmlXPathContextPtr ctx;
} xdoc;

static void xdoc_close(xdoc *x) {
  xmlXPathFreeContext(x->ctx);
  xmlFreeDoc(x->doc);
  memset(x, 0, sizeof(*x));
}

/* Parses `xml`; false (nothing to close) unless its root element is
 * `root` without a namespace. */
static bool xdoc_open(xdoc *x, const char *xml, const char *root) {
  memset(x, 0, sizeof(*x));
  if (!xml) return false;
  x->doc = parse_doc(xml);
  x->root = x->doc ? xmlDocGetRootElement(x->doc) : NULL;
  if (x->root && !x->root->ns && xmlStrcmp(x->root->name, BAD_CAST root) == 0)
    x->ctx = xmlXPathNewContext(x->doc);
  if (!x->ctx) {
    xdoc_close(x);
    return false;
  }
  return true;
}

char *hv_xml_disk(const hv_disk *disk, char *err, size_t errlen) {
  if (check_disk(disk, "disk", err, errlen) != HV_OK) return NULL;
  hv_xml_init();
  xb b = {false};
  xmlDocPtr doc;
  xmlNodePtr devices = xb_new_doc("devices", &doc);
  add_disk(&b, devices, disk);
  return xb_finish(&b, doc, devices ? devices->children : NULL, "disk", err, errlen);
}

char *hv_xml_nic(const hv_nic *nic, char *err, size_t errlen) {
  if (check_nic(nic, "nic", err, errlen) != HV_OK) return NULL;
  hv_xml_init();
  xb b = {false};
  xmlDocPtr doc;
  xmlNodePtr devices = xb_new_doc("devices", &doc);
  add_nic(&b, devices, nic);
  return xb_finish(&b, doc, devices ? devices->children : NULL, "interface", err, errlen);
}

/* The <disk> with guest target `key`, or the <interface> with MAC `key`
 * (in any case), among a domain document's devices; NULL when absent. */
static xmlNodePtr find_device(xdoc *x, int kind, const char *key) {
  bool disk = kind == HV_XML_DISK;
  xmlXPathObjectPtr set = xp_nodes(x->ctx, x->root, disk ? "devices/disk" : "devices/interface");
  xmlNodePtr found = NULL;
  for (int i = 0; set && !found && i < set->nodesetval->nodeNr; i++) {
    xmlNodePtr n = set->nodesetval->nodeTab[i];
    char value[64];
    xp_str(x->ctx, n, disk ? "string(target/@dev)" : "string(mac/@address)", value, sizeof(value));
    if (disk ? strcmp(value, key) == 0 : strcasecmp(value, key) == 0) found = n;
  }
  xmlXPathFreeObject(set);
  return found;
}

int hv_xml_domain_device(const char *domain_xml, int kind, const char *key, char **element,
                         char *source, size_t size) {
  *element = NULL;
  if (source && size) source[0] = '\0';
  xdoc x;
  if (!xdoc_open(&x, domain_xml, "domain")) return HV_INVALID_ARGUMENT;
  xmlNodePtr n = find_device(&x, kind, key);
  int rc = HV_NOT_FOUND;
  if (n) {
    if (source && size) xp_str(x.ctx, n, "string(source/@file | source/@dev)", source, size);
    *element = xb_dump_node(n);
    rc = *element ? HV_OK : HV_INTERNAL;
  }
  xdoc_close(&x);
  return rc;
}

char *hv_xml_domain_add_device(const char *domain_xml, const char *device_xml, char *err,
                               size_t errlen) {
  xdoc x;
  if (!xdoc_open(&x, domain_xml, "domain")) {
    hv_fail(HV_INVALID_ARGUMENT, err, errlen, "not a libvirt domain document");
    return NULL;
  }
  xb b = {false};
  xmlNodePtr devices = NULL;
  for (xmlNodePtr n = x.root->children; n && !devices; n = n->next)
    if (n->type == XML_ELEMENT_NODE && xmlStrcmp(n->name, BAD_CAST "devices") == 0) devices = n;
  if (!devices) devices = xb_el(&b, x.root, "devices", NULL);
  xmlDocPtr dev = parse_doc(device_xml);
  xmlNodePtr droot = dev ? xmlDocGetRootElement(dev) : NULL;
  xmlNodePtr copy = droot && devices ? xmlDocCopyNode(droot, x.doc, 1) : NULL;
  if (!copy || !xmlAddChild(devices, copy)) {
    xmlFreeNode(copy);
    b.failed = true;
  }
  xmlFreeDoc(dev);
  char *out = b.failed ? NULL : xb_dump(x.doc);
  xdoc_close(&x);
  if (!out) hv_fail(HV_INTERNAL, err, errlen, "cannot add the device to the domain XML");
  return out;
}

char *hv_xml_domain_remove_device(const char *domain_xml, int kind, const char *key, char *err,
                                  size_t errlen) {
  xdoc x;
  if (!xdoc_open(&x, domain_xml, "domain")) {
    hv_fail(HV_INVALID_ARGUMENT, err, errlen, "not a libvirt domain document");
    return NULL;
  }
  xmlNodePtr n = find_device(&x, kind, key);
  if (n) {
    xmlUnlinkNode(n);
    xmlFreeNode(n);
  }
  char *out = xb_dump(x.doc);
  xdoc_close(&x);
  if (!out) hv_fail(HV_INTERNAL, err, errlen, "cannot remove the device from the domain XML");
  return out;
}

int hv_xml_metadata_disk(const char *element, const char *target, const char *volume, char **out) {
  *out = NULL;
  bool add = volume && volume[0];
  if (!element && !add) return HV_OK;
  hv_xml_init();
  xmlDocPtr doc = element ? parse_doc(element) : NULL;
  xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
  if (!element) root = xb_new_doc("vm", &doc);
  if (!root) {
    xmlFreeDoc(doc);
    return element ? HV_INVALID_ARGUMENT : HV_INTERNAL;
  }
  bool changed = false, present = false;
  for (xmlNodePtr n = root->children, next; n; n = next) {
    next = n->next;
    if (n->type != XML_ELEMENT_NODE || xmlStrcmp(n->name, BAD_CAST "disk") != 0) continue;
    xmlChar *t = xmlGetProp(n, BAD_CAST "target");
    xmlChar *v = xmlGetProp(n, BAD_CAST "volume");
    bool match = t && strcmp((const char *)t, target) == 0;
    if (match && add && !present && v && strcmp((const char *)v, volume) == 0) {
      present = true;
    } else if (match) {
      xmlUnlinkNode(n);
      xmlFreeNode(n);
      changed = true;
    }
    xmlFree(t);
    xmlFree(v);
  }
  xb b = {false};
  if (add && !present) {
    xmlNodePtr d = xmlNewChild(root, root->ns, BAD_CAST "disk", NULL);
    xb_attr(&b, d, "target", target);
    xb_attr(&b, d, "volume", volume);
    changed = true;
  }
  if (!changed) {
    xmlFreeDoc(doc);
    return HV_OK;
  }
  *out = b.failed ? NULL : xb_dump_node(root);
  xmlFreeDoc(doc);
  return *out ? HV_OK : HV_INTERNAL;
}

/* ---------------------------------------------------------------------- */
/* storage pools and volumes                                               */

bool hv_xml_name_ok(const char *name, size_t max) {
  return hv_text_ok(name, max) && name[0] && !strchr(name, '/') && strcmp(name, ".") != 0 &&
         strcmp(name, "..") != 0;
}

/* LVM's volume group names: letters, digits and "+_.-", not starting
 * with '-'. */
static bool vg_name_ok(const char *name) {
  if (name[0] == '-') return false;
  for (const char *p = name; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          strchr("+_.-", *p)))
      return false;
  return true;
}

static bool host_name_ok(const char *name) {
  if (!name[0]) return false;
  for (const char *p = name; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          strchr(".-_:[]", *p)))
      return false;
  return true;
}

static int check_pool(const hv_pool_spec *s, bool uuid, char *err, size_t errlen) {
  if (!FIELD_OK(s->name) || !hv_xml_name_ok(s->name, sizeof(s->name) - 1))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "name: required, printable UTF-8 without '/'");
  if (uuid && (!FIELD_OK(s->uuid) || !hv_uuid_valid(s->uuid)))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "uuid: not a UUID");
  if (s->type != HV_POOL_DIR && s->type != HV_POOL_LOGICAL && s->type != HV_POOL_NETFS)
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "type: unknown");
  if (s->type != HV_POOL_LOGICAL && (!FIELD_OK(s->target_path) || s->target_path[0] != '/'))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "target_path: absolute path required");
  if (s->type == HV_POOL_LOGICAL) {
    if (!vg_name_ok(s->name))
      return hv_fail(HV_INVALID_ARGUMENT, err, errlen,
                     "name: a volume group name has only letters, digits and '+_.-'");
    if (s->ndevices < 0 || s->ndevices > HV_MAX_POOL_DEVICES)
      return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "devices: at most %d", HV_MAX_POOL_DEVICES);
    for (int i = 0; i < s->ndevices; i++)
      if (!FIELD_OK(s->devices[i]) || s->devices[i][0] != '/')
        return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "devices[%d]: absolute path required", i);
  }
  if (s->type == HV_POOL_NETFS) {
    if (!FIELD_OK(s->source_host) || !host_name_ok(s->source_host))
      return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "source_host: a host name or address");
    if (!FIELD_OK(s->source_export) || s->source_export[0] != '/')
      return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "source_export: absolute path required");
  }
  return HV_OK;
}

/* The pool document of a checked spec; with its UUID unless "". */
static char *pool_doc(const hv_pool_spec *s, char *err, size_t errlen) {
  static const char *const types[] = {
      [HV_POOL_DIR] = "dir", [HV_POOL_LOGICAL] = "logical", [HV_POOL_NETFS] = "netfs"};
  hv_xml_init();
  xb b = {false};
  xmlDocPtr doc;
  xmlNodePtr root = xb_new_doc("pool", &doc);
  xb_attr(&b, root, "type", types[s->type]);
  xb_el(&b, root, "name", s->name);
  if (s->uuid[0]) xb_el(&b, root, "uuid", s->uuid);
  char target[sizeof(s->target_path)];
  snprintf(target, sizeof(target), "%s", s->target_path);
  if (s->type == HV_POOL_LOGICAL) {
    /* the volume group is named after the pool; its volumes appear under
     * /dev/<vg> */
    xmlNodePtr source = xb_el(&b, root, "source", NULL);
    for (int i = 0; i < s->ndevices; i++)
      xb_attr(&b, xb_el(&b, source, "device", NULL), "path", s->devices[i]);
    xb_el(&b, source, "name", s->name);
    xb_attr(&b, xb_el(&b, source, "format", NULL), "type", "lvm2");
    snprintf(target, sizeof(target), "/dev/%s", s->name);
  } else if (s->type == HV_POOL_NETFS) {
    xmlNodePtr source = xb_el(&b, root, "source", NULL);
    xb_attr(&b, xb_el(&b, source, "host", NULL), "name", s->source_host);
    xb_attr(&b, xb_el(&b, source, "dir", NULL), "path", s->source_export);
    xb_attr(&b, xb_el(&b, source, "format", NULL), "type", "nfs");
  }
  xb_el(&b, xb_el(&b, root, "target", NULL), "path", target);
  return xb_finish(&b, doc, NULL, "pool", err, errlen);
}

char *hv_pool_xml(const hv_pool_spec *spec, char *err, size_t errlen) {
  if (!spec) {
    hv_fail(HV_INVALID_ARGUMENT, err, errlen, "spec required");
    return NULL;
  }
  if (check_pool(spec, true, err, errlen) != HV_OK) return NULL;
  return pool_doc(spec, err, errlen);
}

char *hv_xml_dir_pool(const char *name, const char *dir, char *err, size_t errlen) {
  hv_pool_spec *s = calloc(1, sizeof(*s));
  if (!s) {
    hv_fail(HV_INTERNAL, err, errlen, "out of memory");
    return NULL;
  }
  s->type = HV_POOL_DIR;
  char *out = NULL;
  if ((size_t)snprintf(s->name, sizeof(s->name), "%s", name) >= sizeof(s->name) ||
      (size_t)snprintf(s->target_path, sizeof(s->target_path), "%s", dir) >= sizeof(s->target_path))
    hv_fail(HV_INVALID_ARGUMENT, err, errlen, "directory path too long");
  else if (check_pool(s, false, err, errlen) == HV_OK)
    out = pool_doc(s, err, errlen);
  free(s);
  return out;
}

void hv_xml_pool_parse(const char *pool_xml, char *type, size_t tsize, char *path, size_t psize) {
  type[0] = '\0';
  path[0] = '\0';
  xdoc x;
  if (!xdoc_open(&x, pool_xml, "pool")) return;
  xp_str(x.ctx, x.root, "string(@type)", type, tsize);
  xp_str(x.ctx, x.root, "string(target/path)", path, psize);
  xdoc_close(&x);
}

char *hv_xml_volume(const char *name, const char *format, int64_t capacity, char *err,
                    size_t errlen) {
  if (!hv_xml_name_ok(name, 255)) {
    hv_fail(HV_INVALID_ARGUMENT, err, errlen,
            "volume name: required, at most 255 bytes of printable UTF-8 without '/'");
    return NULL;
  }
  if (!format || (strcmp(format, "qcow2") != 0 && strcmp(format, "raw") != 0)) {
    hv_fail(HV_INVALID_ARGUMENT, err, errlen, "format: qcow2 or raw");
    return NULL;
  }
  if (capacity <= 0) {
    hv_fail(HV_INVALID_ARGUMENT, err, errlen, "capacity: must be positive");
    return NULL;
  }
  hv_xml_init();
  xb b = {false};
  xmlDocPtr doc;
  xmlNodePtr root = xb_new_doc("volume", &doc);
  xb_el(&b, root, "name", name);
  xb_attr(&b, xb_el_ll(&b, root, "capacity", capacity), "unit", "bytes");
  /* qcow2 grows on demand; a raw volume without an allocation is fully
   * allocated, which is also what makes CreateXMLFrom copy all of its
   * source (it copies at most `allocation` bytes into a raw file) */
  if (strcmp(format, "qcow2") == 0)
    xb_attr(&b, xb_el(&b, root, "allocation", "0"), "unit", "bytes");
  xb_attr(&b, xb_el(&b, xb_el(&b, root, "target", NULL), "format", NULL), "type", format);
  return xb_finish(&b, doc, NULL, "volume", err, errlen);
}

void hv_xml_volume_parse(const char *vol_xml, char *format, size_t size, bool *backing) {
  format[0] = '\0';
  *backing = false;
  xdoc x;
  if (!xdoc_open(&x, vol_xml, "volume")) return;
  xp_str(x.ctx, x.root, "string(target/format/@type)", format, size);
  *backing = xp_exists(x.ctx, x.root, "backingStore/path[normalize-space(.) != '']");
  xdoc_close(&x);
}

/* ---------------------------------------------------------------------- */
/* networks                                                                */

static bool ipv4_ok(const char *s) {
  struct in_addr a;
  return inet_pton(AF_INET, s, &a) == 1;
}

static bool ipv6_ok(const char *s) {
  struct in6_addr a;
  return inet_pton(AF_INET6, s, &a) == 1;
}

static bool ifname_ok(const char *s) {
  for (const char *p = s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          strchr("-_.", *p)))
      return false;
  return true;
}

static int check_net_host(const hv_net_host *h, const char *label, char *err, size_t errlen) {
  if (!mac_ok(h->mac))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "%s.mac: not a MAC address", label);
  if (!FIELD_OK(h->ip) || !ipv4_ok(h->ip))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "%s.ip: not an IPv4 address", label);
  if (!FIELD_OK(h->hostname) || (h->hostname[0] && !host_name_ok(h->hostname)))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen,
                   "%s.hostname: letters, digits, '.', '-' and '_' only", label);
  return HV_OK;
}

static int check_net(const hv_net_spec *s, char *err, size_t errlen) {
  if (!FIELD_OK(s->name) || !hv_xml_name_ok(s->name, sizeof(s->name) - 1))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "name: required, printable UTF-8 without '/'");
  if (!FIELD_OK(s->uuid) || !hv_uuid_valid(s->uuid))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "uuid: not a UUID");
  if (s->mode < HV_NET_NAT || s->mode > HV_NET_BRIDGE)
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "mode: unknown");
  bool bridged = s->mode == HV_NET_BRIDGE;
  if (!FIELD_OK(s->bridge) || !ifname_ok(s->bridge) || (bridged && !s->bridge[0]))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen,
                   bridged ? "bridge: the host bridge's name is required"
                           : "bridge: letters, digits, '-', '_' and '.' only");
  if (s->openvswitch && !bridged)
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "openvswitch: only for a bridge network");
  if (s->vlan_id < 0 || s->vlan_id > 4094 || (s->vlan_id && !s->openvswitch))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen,
                   "vlan_id: 1..4094, on an Open vSwitch bridge only");
  if (s->mtu != 0 && (s->mtu < 68 || s->mtu > 65535))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "mtu: 68..65535");
  if (bridged) return HV_OK; /* addresses and MTU belong to the host's bridge */
  if (!FIELD_OK(s->gateway) || (s->gateway[0] && !ipv4_ok(s->gateway)))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "gateway: not an IPv4 address");
  if (s->gateway[0] && (s->prefix < 1 || s->prefix > 32))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "prefix: 1..32");
  if (!FIELD_OK(s->dhcp_start) || !FIELD_OK(s->dhcp_end) || !s->dhcp_start[0] != !s->dhcp_end[0] ||
      (s->dhcp_start[0] && (!ipv4_ok(s->dhcp_start) || !ipv4_ok(s->dhcp_end))))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen,
                   "dhcp_start, dhcp_end: two IPv4 addresses, or neither");
  if (s->nhosts < 0 || (s->nhosts > 0 && !s->hosts))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "hosts: invalid count");
  if ((s->dhcp_start[0] || s->nhosts > 0) && !s->gateway[0])
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "gateway: required for DHCP");
  for (int i = 0; i < s->nhosts; i++) {
    char label[24];
    snprintf(label, sizeof(label), "hosts[%d]", i);
    int rc = check_net_host(&s->hosts[i], label, err, errlen);
    if (rc != HV_OK) return rc;
  }
  if (s->ipv6_prefix < 0 || s->ipv6_prefix > 128)
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "ipv6_prefix: 0..128");
  if (s->ipv6_prefix > 0 && (!FIELD_OK(s->ipv6_gateway) || !ipv6_ok(s->ipv6_gateway)))
    return hv_fail(HV_INVALID_ARGUMENT, err, errlen, "ipv6_gateway: not an IPv6 address");
  return HV_OK;
}

static void add_net_host(xb *b, xmlNodePtr parent, const hv_net_host *h) {
  xmlNodePtr host = xb_el(b, parent, "host", NULL);
  xb_attr(b, host, "mac", h->mac);
  if (h->hostname[0]) xb_attr(b, host, "name", h->hostname);
  xb_attr(b, host, "ip", h->ip);
}

char *hv_network_xml(const hv_net_spec *spec, char *err, size_t errlen) {
  if (!spec) {
    hv_fail(HV_INVALID_ARGUMENT, err, errlen, "spec required");
    return NULL;
  }
  if (check_net(spec, err, errlen) != HV_OK) return NULL;
  hv_xml_init();
  xb b = {false};
  xmlDocPtr doc;
  xmlNodePtr root = xb_new_doc("network", &doc);
  xb_el(&b, root, "name", spec->name);
  xb_el(&b, root, "uuid", spec->uuid);
  static const char *const forward[] = {
      [HV_NET_NAT] = "nat", [HV_NET_ROUTED] = "route", [HV_NET_BRIDGE] = "bridge"};
  if (spec->mode != HV_NET_ISOLATED)
    xb_attr(&b, xb_el(&b, root, "forward", NULL), "mode", forward[spec->mode]);
  xmlNodePtr bridge = xb_el(&b, root, "bridge", NULL);
  if (spec->bridge[0]) xb_attr(&b, bridge, "name", spec->bridge);
  if (spec->mode != HV_NET_BRIDGE) {
    xb_attr(&b, bridge, "stp", "on");
    xb_attr(&b, bridge, "delay", "0");
  }
  if (spec->mtu > 0 && spec->mode != HV_NET_BRIDGE)
    xb_attr_ll(&b, xb_el(&b, root, "mtu", NULL), "size", spec->mtu);
  if (spec->mode == HV_NET_BRIDGE) {
    if (spec->vlan_id > 0)
      xb_attr_ll(&b, xb_el(&b, xb_el(&b, root, "vlan", NULL), "tag", NULL), "id", spec->vlan_id);
    if (spec->openvswitch) xb_attr(&b, xb_el(&b, root, "virtualport", NULL), "type", "openvswitch");
  } else {
    if (spec->gateway[0]) {
      xmlNodePtr ip = xb_el(&b, root, "ip", NULL);
      xb_attr(&b, ip, "address", spec->gateway);
      xb_attr_ll(&b, ip, "prefix", spec->prefix);
      /* no range, no DHCP: dnsmasq would otherwise serve the static
       * hosts alone, and network.proto says they then have no effect */
      if (spec->dhcp_start[0]) {
        xmlNodePtr dhcp = xb_el(&b, ip, "dhcp", NULL);
        xmlNodePtr range = xb_el(&b, dhcp, "range", NULL);
        xb_attr(&b, range, "start", spec->dhcp_start);
        xb_attr(&b, range, "end", spec->dhcp_end);
        for (int i = 0; i < spec->nhosts; i++)
          add_net_host(&b, dhcp, &spec->hosts[i]);
      }
    }
    if (spec->ipv6_prefix > 0) {
      xmlNodePtr ip6 = xb_el(&b, root, "ip", NULL);
      xb_attr(&b, ip6, "family", "ipv6");
      xb_attr(&b, ip6, "address", spec->ipv6_gateway);
      xb_attr_ll(&b, ip6, "prefix", spec->ipv6_prefix);
    }
  }
  return xb_finish(&b, doc, NULL, "network", err, errlen);
}

char *hv_xml_net_host(const hv_net_host *host, char *err, size_t errlen) {
  if (check_net_host(host, "host", err, errlen) != HV_OK) return NULL;
  hv_xml_init();
  xb b = {false};
  xmlDocPtr doc;
  xmlNodePtr dhcp = xb_new_doc("dhcp", &doc);
  add_net_host(&b, dhcp, host);
  return xb_finish(&b, doc, dhcp ? dhcp->children : NULL, "DHCP host", err, errlen);
}

/* The prefix length of a dotted netmask; -1 when it is not one. */
static int netmask_prefix(const char *mask) {
  struct in_addr a;
  if (inet_pton(AF_INET, mask, &a) != 1) return -1;
  uint32_t m = ntohl(a.s_addr);
  int prefix = 0;
  while (prefix < 32 && (m & (UINT32_C(1) << (31 - prefix))))
    prefix++;
  return prefix == 32 || (m << prefix) == 0 ? prefix : -1;
}

/* libvirt's default for an address without prefix or netmask: its
 * class's. */
static int classful_prefix(const char *address) {
  struct in_addr a;
  if (inet_pton(AF_INET, address, &a) != 1) return 0;
  uint32_t first = ntohl(a.s_addr) >> 24;
  return first < 128 ? 8 : first < 192 ? 16 : 24;
}

/* The IPv4 <ip> elements of a network document. */
#define IPV4_IPS "ip[not(@family) or @family='ipv4']"

int hv_xml_net_parse(const char *net_xml, hv_xml_net *out) {
  memset(out, 0, sizeof(*out));
  xdoc x;
  if (!xdoc_open(&x, net_xml, "network")) return HV_INVALID_ARGUMENT;
  xp_str(x.ctx, x.root, "string(name)", out->name, sizeof(out->name));
  xp_str(x.ctx, x.root, "string(uuid)", out->uuid, sizeof(out->uuid));
  xp_str(x.ctx, x.root, "string(forward/@mode)", out->forward, sizeof(out->forward));
  xp_str(x.ctx, x.root, "string(bridge/@name)", out->bridge, sizeof(out->bridge));
  xmlXPathObjectPtr set = xp_nodes(x.ctx, x.root, IPV4_IPS);
  if (set && set->nodesetval->nodeNr > 0) {
    xmlNodePtr ip = set->nodesetval->nodeTab[0];
    xp_str(x.ctx, ip, "string(@address)", out->ipv4, sizeof(out->ipv4));
    char text[48];
    xp_str(x.ctx, ip, "string(@prefix)", text, sizeof(text));
    if (text[0]) {
      out->prefix = (int)xp_ll(x.ctx, ip, "string(@prefix)", 0);
    } else {
      xp_str(x.ctx, ip, "string(@netmask)", text, sizeof(text));
      out->prefix = text[0] ? netmask_prefix(text) : classful_prefix(out->ipv4);
      if (out->prefix < 0) out->prefix = 0;
    }
  }
  xmlXPathFreeObject(set);
  xdoc_close(&x);
  return HV_OK;
}

bool hv_xml_net_host_find(const char *net_xml, const char *mac, const char *ip, hv_net_host *out) {
  memset(out, 0, sizeof(*out));
  xdoc x;
  if (!xdoc_open(&x, net_xml, "network")) return false;
  xmlXPathObjectPtr set = xp_nodes(x.ctx, x.root, IPV4_IPS "/dhcp/host");
  bool found = false;
  for (int i = 0; set && !found && i < set->nodesetval->nodeNr; i++) {
    xmlNodePtr n = set->nodesetval->nodeTab[i];
    xp_str(x.ctx, n, "string(@mac)", out->mac, sizeof(out->mac));
    xp_str(x.ctx, n, "string(@ip)", out->ip, sizeof(out->ip));
    xp_str(x.ctx, n, "string(@name)", out->hostname, sizeof(out->hostname));
    found = (!mac || strcasecmp(out->mac, mac) == 0) && (!ip || strcmp(out->ip, ip) == 0);
  }
  xmlXPathFreeObject(set);
  xdoc_close(&x);
  if (!found) memset(out, 0, sizeof(*out));
  return found;
}
