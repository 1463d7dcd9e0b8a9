/* test_hv_storage.c - the libvirt layer's storage pools and volumes,
 * virtual networks and domain devices against libvirt's in-process test
 * driver (no mocks): the pool and network documents parsed back, pools
 * converging, volumes with the test driver's emulated resize and wipe,
 * copies and imports failing cleanly, networks of every mode with their
 * DHCP hosts, and disks and NICs attached to stopped and running domains
 * (the test driver's definitions edited, *live false). A second libvirt
 * connection to test:///default (shared within the process) looks at
 * what the calls did. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "hv/hv.h"

static hv *H;
static virConnectPtr V; /* our own view of test:///default */
static char dir[64];
static char err[512];

#define ASSERT_OK(expr)                                          \
  do {                                                           \
    err[0] = '\0';                                               \
    int rc_ = (expr);                                            \
    if (rc_ != HV_OK) fail_msg("%s -> %d: %s", #expr, rc_, err); \
  } while (0)

#define ASSERT_RC(expr, code)                                                      \
  do {                                                                             \
    err[0] = '\0';                                                                 \
    int rc_ = (expr);                                                              \
    if (rc_ != (code)) fail_msg("%s -> %d, want %d: %s", #expr, rc_, (code), err); \
    if (rc_ != HV_OK && !err[0]) fail_msg("%s: no message", #expr);                \
  } while (0)

static void quiet(void *arg, virErrorPtr e) {
  (void)arg;
  (void)e;
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof(dir), "/tmp/nc-test-hvs-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  char path[96];
  snprintf(path, sizeof(path), "%s/node.xml", dir);
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fputs("<node><cpu><active>2</active></cpu><memory>4194304</memory></node>\n", f);
  fclose(f);
  char uri[128];
  snprintf(uri, sizeof(uri), "test://%s", path);
  if (hv_create(&H, NULL, NULL, NULL, err, sizeof(err)) != HV_OK) return -1;
  hv_host_info info;
  if (hv_host_open(H, "def", "test:///default", &info, err, sizeof(err)) != HV_OK) return -1;
  if (hv_host_open(H, "a", uri, &info, err, sizeof(err)) != HV_OK) return -1;
  if (hv_host_open(H, "b", uri, &info, err, sizeof(err)) != HV_OK) return -1;
  virSetErrorFunc(NULL, quiet);
  V = virConnectOpen("test:///default");
  return V ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  virConnectClose(V);
  hv_destroy(H);
  char path[96];
  snprintf(path, sizeof(path), "%s/node.xml", dir);
  unlink(path);
  rmdir(dir);
  return 0;
}

/* An XPath expression's value on a document as a string, malloc'ed. */
static char *xp(const char *xml, const char *expr) {
  xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "t.xml", NULL, XML_PARSE_NONET);
  assert_non_null(doc);
  xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
  xmlXPathObjectPtr r = xmlXPathEvalExpression(BAD_CAST expr, ctx);
  xmlChar *text = r ? xmlXPathCastToString(r) : NULL;
  char *out = strdup(text ? (const char *)text : "");
  xmlFree(text);
  xmlXPathFreeObject(r);
  xmlXPathFreeContext(ctx);
  xmlFreeDoc(doc);
  return out;
}

#define ASSERT_XP(xml, expr, want)                                                         \
  do {                                                                                     \
    char *got_ = xp((xml), (expr));                                                        \
    if (strcmp(got_, (want)) != 0) fail_msg("%s = '%s', want '%s'", (expr), got_, (want)); \
    free(got_);                                                                            \
  } while (0)

/* ---------------------------------------------------------------------- */
/* pools                                                                   */

#define P1 "22222222-0000-4000-8000-000000000001"
#define P2 "22222222-0000-4000-8000-000000000002"
#define P3 "22222222-0000-4000-8000-000000000003"
#define P4 "22222222-0000-4000-8000-000000000004"
#define PX "22222222-0000-4000-8000-0000000000ff"
#define GIB (1024LL * 1024 * 1024)

static void dir_pool(hv_pool_spec *s, const char *uuid, const char *name, const char *path) {
  memset(s, 0, sizeof(*s));
  snprintf(s->uuid, sizeof(s->uuid), "%s", uuid);
  snprintf(s->name, sizeof(s->name), "%s", name);
  s->type = HV_POOL_DIR;
  snprintf(s->target_path, sizeof(s->target_path), "%s", path);
  s->autostart = true;
}

static void test_pool_xml(void **state) {
  (void)state;
  hv_pool_spec s;
  dir_pool(&s, P1, "p<1>&'\"", "/srv/a&b/<c>");
  char *xml = hv_pool_xml(&s, err, sizeof(err));
  if (!xml) fail_msg("hv_pool_xml: %s", err);
  assert_null(strstr(xml, "<c>"));
  assert_non_null(strstr(xml, "/srv/a&amp;b/&lt;c&gt;"));
  ASSERT_XP(xml, "string(/pool/@type)", "dir");
  ASSERT_XP(xml, "string(/pool/name)", "p<1>&'\"");
  ASSERT_XP(xml, "string(/pool/uuid)", P1);
  ASSERT_XP(xml, "string(/pool/target/path)", "/srv/a&b/<c>");
  ASSERT_XP(xml, "count(/pool/source)", "0");
  free(xml);

  memset(&s, 0, sizeof(s));
  snprintf(s.uuid, sizeof(s.uuid), P2);
  snprintf(s.name, sizeof(s.name), "vg_nc-1");
  s.type = HV_POOL_LOGICAL;
  s.ndevices = 2;
  snprintf(s.devices[0], sizeof(s.devices[0]), "/dev/sdb");
  snprintf(s.devices[1], sizeof(s.devices[1]), "/dev/disk/by-id/x&y");
  xml = hv_pool_xml(&s, err, sizeof(err));
  if (!xml) fail_msg("hv_pool_xml: %s", err);
  ASSERT_XP(xml, "string(/pool/@type)", "logical");
  ASSERT_XP(xml, "string(/pool/source/device[1]/@path)", "/dev/sdb");
  ASSERT_XP(xml, "string(/pool/source/device[2]/@path)", "/dev/disk/by-id/x&y");
  ASSERT_XP(xml, "string(/pool/source/name)", "vg_nc-1");
  ASSERT_XP(xml, "string(/pool/source/format/@type)", "lvm2");
  ASSERT_XP(xml, "string(/pool/target/path)", "/dev/vg_nc-1");
  free(xml);

  memset(&s, 0, sizeof(s));
  snprintf(s.uuid, sizeof(s.uuid), P3);
  snprintf(s.name, sizeof(s.name), "nfs");
  s.type = HV_POOL_NETFS;
  snprintf(s.target_path, sizeof(s.target_path), "/mnt/nfs");
  snprintf(s.source_host, sizeof(s.source_host), "nfs.example.com");
  snprintf(s.source_export, sizeof(s.source_export), "/export/vms");
  xml = hv_pool_xml(&s, err, sizeof(err));
  if (!xml) fail_msg("hv_pool_xml: %s", err);
  ASSERT_XP(xml, "string(/pool/@type)", "netfs");
  ASSERT_XP(xml, "string(/pool/source/host/@name)", "nfs.example.com");
  ASSERT_XP(xml, "string(/pool/source/dir/@path)", "/export/vms");
  ASSERT_XP(xml, "string(/pool/source/format/@type)", "nfs");
  ASSERT_XP(xml, "string(/pool/target/path)", "/mnt/nfs");
  free(xml);

  /* specs that cannot be expressed */
  dir_pool(&s, "nope", "x", "/x");
  assert_null(hv_pool_xml(&s, err, sizeof(err)));
  assert_non_null(strstr(err, "uuid"));
  dir_pool(&s, P1, "x", "relative");
  assert_null(hv_pool_xml(&s, err, sizeof(err)));
  assert_non_null(strstr(err, "target_path"));
  dir_pool(&s, P1, "a/b", "/x");
  assert_null(hv_pool_xml(&s, err, sizeof(err)));
  assert_non_null(strstr(err, "name"));
  dir_pool(&s, P1, "x", "/x");
  s.type = 9;
  assert_null(hv_pool_xml(&s, err, sizeof(err)));
  dir_pool(&s, P1, "vg with space", "");
  s.type = HV_POOL_LOGICAL;
  assert_null(hv_pool_xml(&s, err, sizeof(err)));
  assert_non_null(strstr(err, "volume group"));
  dir_pool(&s, P1, "nfs", "/mnt/x");
  s.type = HV_POOL_NETFS;
  snprintf(s.source_export, sizeof(s.source_export), "/e");
  assert_null(hv_pool_xml(&s, err, sizeof(err)));
  assert_non_null(strstr(err, "source_host"));
}

static bool pool_active(const char *uuid) {
  virStoragePoolPtr p = virStoragePoolLookupByUUIDString(V, uuid);
  assert_non_null(p);
  bool active = virStoragePoolIsActive(p) == 1;
  virStoragePoolFree(p);
  return active;
}

static void test_pools(void **state) {
  (void)state;
  hv_pool_spec s;
  hv_pool_info info;
  dir_pool(&s, P1, "nc-p1", "/var/lib/nc/p1");
  ASSERT_OK(hv_pool_create(H, "def", &s, &info, err, sizeof(err)));
  assert_true(info.active);
  assert_true(info.autostart);
  assert_int_equal(info.capacity, 100 * GIB); /* the test driver's fixed figure */
  assert_true(info.available > 0);
  /* again: converges */
  ASSERT_OK(hv_pool_create(H, "def", &s, &info, err, sizeof(err)));
  assert_true(info.active);

  /* a stopped pool is started again, with autostart as asked */
  virStoragePoolPtr p = virStoragePoolLookupByUUIDString(V, P1);
  assert_int_equal(virStoragePoolDestroy(p), 0);
  virStoragePoolFree(p);
  ASSERT_OK(hv_pool_info_get(H, "def", P1, true, &info, err, sizeof(err)));
  assert_false(info.active);
  s.autostart = false;
  ASSERT_OK(hv_pool_create(H, "def", &s, &info, err, sizeof(err)));
  assert_true(info.active);
  assert_false(info.autostart);
  assert_true(pool_active(P1));

  /* the name or the directory of another pool */
  hv_pool_spec clash;
  dir_pool(&clash, P2, "nc-p1", "/var/lib/nc/other");
  ASSERT_RC(hv_pool_create(H, "def", &clash, &info, err, sizeof(err)), HV_ALREADY_EXISTS);
  assert_non_null(strstr(err, "the host already has a storage pool named nc-p1"));
  dir_pool(&clash, P2, "nc-p2", "/var/lib/nc/p1");
  ASSERT_RC(hv_pool_create(H, "def", &clash, &info, err, sizeof(err)), HV_ALREADY_EXISTS);
  dir_pool(&clash, P2, "nc-p2", "/default-pool");
  ASSERT_RC(hv_pool_create(H, "def", &clash, &info, err, sizeof(err)), HV_ALREADY_EXISTS);
  assert_non_null(strstr(err, "default-pool"));

  /* logical over devices, netfs */
  hv_pool_spec lvm = {0};
  snprintf(lvm.uuid, sizeof(lvm.uuid), P2);
  snprintf(lvm.name, sizeof(lvm.name), "nc-vg");
  lvm.type = HV_POOL_LOGICAL;
  lvm.ndevices = 2;
  snprintf(lvm.devices[0], sizeof(lvm.devices[0]), "/dev/vdb");
  snprintf(lvm.devices[1], sizeof(lvm.devices[1]), "/dev/vdc");
  ASSERT_OK(hv_pool_create(H, "def", &lvm, &info, err, sizeof(err)));
  assert_true(info.active);
  p = virStoragePoolLookupByUUIDString(V, P2);
  char *xml = virStoragePoolGetXMLDesc(p, 0);
  virStoragePoolFree(p);
  ASSERT_XP(xml, "string(/pool/source/device[2]/@path)", "/dev/vdc");
  ASSERT_XP(xml, "string(/pool/target/path)", "/dev/nc-vg");
  free(xml);

  hv_pool_spec nfs = {0};
  snprintf(nfs.uuid, sizeof(nfs.uuid), P3);
  snprintf(nfs.name, sizeof(nfs.name), "nc-nfs");
  nfs.type = HV_POOL_NETFS;
  snprintf(nfs.target_path, sizeof(nfs.target_path), "/mnt/nc-nfs");
  snprintf(nfs.source_host, sizeof(nfs.source_host), "10.0.0.9");
  snprintf(nfs.source_export, sizeof(nfs.source_export), "/export");
  ASSERT_OK(hv_pool_create(H, "def", &nfs, NULL, err, sizeof(err)));

  ASSERT_OK(hv_pool_start(H, "def", P3, err, sizeof(err))); /* active: no-op */
  ASSERT_OK(hv_pool_delete(H, "def", P3, true, err, sizeof(err)));
  ASSERT_OK(hv_pool_delete(H, "def", P2, true, err, sizeof(err)));
  ASSERT_RC(hv_pool_delete(H, "def", P2, true, err, sizeof(err)), HV_NOT_FOUND);
  ASSERT_RC(hv_pool_info_get(H, "def", P2, false, &info, err, sizeof(err)), HV_NOT_FOUND);
  ASSERT_RC(hv_pool_start(H, "def", PX, err, sizeof(err)), HV_NOT_FOUND);
  ASSERT_RC(hv_pool_start(H, "def", "bad", err, sizeof(err)), HV_INVALID_ARGUMENT);
  ASSERT_RC(hv_pool_create(H, "nope", &s, &info, err, sizeof(err)), HV_UNAVAILABLE);
  ASSERT_RC(hv_pool_info_get(H, "nope", P1, false, &info, err, sizeof(err)), HV_UNAVAILABLE);

  /* a stopped pool starts */
  p = virStoragePoolLookupByUUIDString(V, P1);
  assert_int_equal(virStoragePoolDestroy(p), 0);
  virStoragePoolFree(p);
  ASSERT_OK(hv_pool_start(H, "def", P1, err, sizeof(err)));
  assert_true(pool_active(P1));
}

/* ---------------------------------------------------------------------- */
/* volumes                                                                 */

/* Two dir pools on `host`: P1 and P4. */
static void two_pools(const char *host) {
  hv_pool_spec s;
  dir_pool(&s, P1, "nc-p1", "/var/lib/nc/p1");
  ASSERT_OK(hv_pool_create(H, host, &s, NULL, err, sizeof(err)));
  dir_pool(&s, P4, "nc-p4", "/var/lib/nc/p4");
  ASSERT_OK(hv_pool_create(H, host, &s, NULL, err, sizeof(err)));
}

static void test_volumes(void **state) {
  (void)state;
  two_pools("def");
  hv_vol_info info;
  const char *odd = "v&<1>'\".qcow2";
  ASSERT_OK(hv_vol_create(H, "def", P1, odd, "qcow2", 2 * GIB, &info, err, sizeof(err)));
  assert_string_equal(info.path, "/var/lib/nc/p1/v&<1>'\".qcow2");
  assert_string_equal(info.format, "qcow2");
  assert_int_equal(info.capacity, 2 * GIB);
  assert_int_equal(info.allocation, 0); /* thin */
  ASSERT_OK(hv_vol_create(H, "def", P1, "r.raw", "raw", GIB, &info, err, sizeof(err)));
  assert_string_equal(info.format, "raw");
  assert_int_equal(info.allocation, GIB); /* fully allocated */

  /* again: ALREADY_EXISTS with what is there */
  memset(&info, 0, sizeof(info));
  ASSERT_RC(hv_vol_create(H, "def", P1, odd, "qcow2", 2 * GIB, &info, err, sizeof(err)),
            HV_ALREADY_EXISTS);
  assert_int_equal(info.capacity, 2 * GIB);
  assert_string_equal(info.format, "qcow2");

  /* clone into another pool: converted, grown; 0 keeps the size */
  ASSERT_OK(hv_vol_clone(H, "def", P4, "c.raw", "raw", 3 * GIB, P1, odd, &info, err, sizeof(err)));
  assert_string_equal(info.path, "/var/lib/nc/p4/c.raw");
  assert_string_equal(info.format, "raw");
  assert_int_equal(info.capacity, 3 * GIB);
  ASSERT_OK(hv_vol_clone(H, "def", P1, "c2", "qcow2", 0, P1, odd, &info, err, sizeof(err)));
  assert_int_equal(info.capacity, 2 * GIB);
  ASSERT_RC(hv_vol_clone(H, "def", P1, "c2", "qcow2", 0, P1, odd, &info, err, sizeof(err)),
            HV_ALREADY_EXISTS);
  ASSERT_RC(hv_vol_clone(H, "def", P1, "c3", "qcow2", 0, P1, "missing", &info, err, sizeof(err)),
            HV_NOT_FOUND);
  ASSERT_RC(hv_vol_clone(H, "def", P1, "c3", "qcow2", 0, PX, odd, &info, err, sizeof(err)),
            HV_NOT_FOUND);

  /* resize (emulated: made again) keeps the format */
  ASSERT_OK(hv_vol_resize(H, "def", P1, odd, 5 * GIB, err, sizeof(err)));
  ASSERT_OK(hv_vol_info_get(H, "def", P1, odd, &info, err, sizeof(err)));
  assert_int_equal(info.capacity, 5 * GIB);
  assert_string_equal(info.format, "qcow2");
  ASSERT_OK(hv_vol_resize(H, "def", P1, odd, GIB, err, sizeof(err))); /* shrink */
  ASSERT_OK(hv_vol_info_get(H, "def", P1, odd, &info, err, sizeof(err)));
  assert_int_equal(info.capacity, GIB);
  ASSERT_OK(hv_vol_resize(H, "def", P1, odd, GIB, err, sizeof(err))); /* same: no-op */
  ASSERT_RC(hv_vol_resize(H, "def", P1, "missing", GIB, err, sizeof(err)), HV_NOT_FOUND);
  ASSERT_RC(hv_vol_resize(H, "def", P1, odd, 0, err, sizeof(err)), HV_INVALID_ARGUMENT);

  /* delete with wipe (skipped on the test driver), then it is gone */
  ASSERT_OK(hv_vol_delete(H, "def", P1, odd, true, err, sizeof(err)));
  ASSERT_RC(hv_vol_delete(H, "def", P1, odd, true, err, sizeof(err)), HV_NOT_FOUND);
  ASSERT_RC(hv_vol_info_get(H, "def", P1, odd, &info, err, sizeof(err)), HV_NOT_FOUND);
  ASSERT_OK(hv_vol_delete(H, "def", P1, "c2", false, err, sizeof(err)));
  ASSERT_RC(hv_vol_info_get(H, "def", PX, "r.raw", &info, err, sizeof(err)), HV_NOT_FOUND);

  /* arguments */
  static const char *const bad_names[] = {"", "a/b", ".", "..", "x\ny"};
  for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
    ASSERT_RC(hv_vol_create(H, "def", P1, bad_names[i], "raw", GIB, &info, err, sizeof(err)),
              HV_INVALID_ARGUMENT);
  ASSERT_RC(hv_vol_create(H, "def", P1, "x", "vmdk", GIB, &info, err, sizeof(err)),
            HV_INVALID_ARGUMENT);
  ASSERT_RC(hv_vol_create(H, "def", P1, "x", "raw", 0, &info, err, sizeof(err)),
            HV_INVALID_ARGUMENT);
  ASSERT_RC(hv_vol_create(H, "def", PX, "x", "raw", GIB, &info, err, sizeof(err)), HV_NOT_FOUND);
  ASSERT_RC(hv_vol_create(H, "nope", P1, "x", "raw", GIB, &info, err, sizeof(err)), HV_UNAVAILABLE);

  /* a stopped pool's volumes are out of reach */
  virStoragePoolPtr p = virStoragePoolLookupByUUIDString(V, P4);
  assert_int_equal(virStoragePoolDestroy(p), 0);
  ASSERT_RC(hv_vol_create(H, "def", P4, "x", "raw", GIB, &info, err, sizeof(err)),
            HV_FAILED_PRECONDITION);
  ASSERT_RC(hv_vol_info_get(H, "def", P4, "c.raw", &info, err, sizeof(err)),
            HV_FAILED_PRECONDITION);
  assert_int_equal(virStoragePoolCreate(p, 0), 0);
  virStoragePoolFree(p);
  ASSERT_OK(hv_vol_info_get(H, "def", P4, "c.raw", &info, err, sizeof(err)));
  ASSERT_OK(hv_vol_delete(H, "def", P4, "c.raw", false, err, sizeof(err)));
}

static int count_import_pools(void) {
  virStoragePoolPtr *pools = NULL;
  int n = virConnectListAllStoragePools(V, &pools, 0);
  assert_true(n >= 0);
  int found = 0;
  for (int i = 0; i < n; i++) {
    if (strncmp(virStoragePoolGetName(pools[i]), "nc-import-", 10) == 0) found++;
    virStoragePoolFree(pools[i]);
  }
  free(pools);
  return found;
}

static void test_copy_import(void **state) {
  (void)state;
  /* two private hosts: the test driver cannot stream */
  two_pools("a");
  two_pools("b");
  hv_vol_info info;
  ASSERT_OK(hv_vol_create(H, "a", P1, "src", "qcow2", GIB, &info, err, sizeof(err)));
  ASSERT_RC(hv_vol_copy(H, "b", P1, "dst", "qcow2", 0, "a", P1, "src", &info, err, sizeof(err)),
            HV_UNIMPLEMENTED);
  ASSERT_RC(hv_vol_info_get(H, "b", P1, "dst", &info, err, sizeof(err)), HV_NOT_FOUND);
  ASSERT_RC(hv_vol_copy(H, "b", P1, "dst", "raw", 0, "a", P1, "src", &info, err, sizeof(err)),
            HV_INVALID_ARGUMENT);
  assert_non_null(strstr(err, "format"));
  ASSERT_RC(hv_vol_copy(H, "b", P1, "dst", "qcow2", 0, "a", P1, "nope", &info, err, sizeof(err)),
            HV_NOT_FOUND);
  ASSERT_RC(hv_vol_copy(H, "b", PX, "dst", "qcow2", 0, "a", P1, "src", &info, err, sizeof(err)),
            HV_NOT_FOUND);
  /* one host: a clone */
  ASSERT_OK(hv_vol_copy(H, "a", P4, "dst", "raw", 0, "a", P1, "src", &info, err, sizeof(err)));
  assert_string_equal(info.format, "raw");
  assert_int_equal(info.capacity, GIB);

  /* imports: the test driver's transient pool holds no files */
  ASSERT_RC(hv_vol_import(H, "def", P1, "img", "raw", 0, "/var/images/base.qcow2", &info, err,
                          sizeof(err)),
            HV_NOT_FOUND);
  assert_non_null(strstr(err, "no image at /var/images/base.qcow2 on host def"));
  assert_int_equal(count_import_pools(), 0);
  ASSERT_RC(
      hv_vol_import(H, "def", P1, "img", "raw", 0, "//var//images//b.img", &info, err, sizeof(err)),
      HV_NOT_FOUND);
  assert_non_null(strstr(err, "/var/images/b.img"));
  /* an image in a pool's own directory: that pool is used (and kept) */
  ASSERT_RC(hv_vol_import(H, "def", P1, "img", "raw", 0, "/default-pool/missing.img", &info, err,
                          sizeof(err)),
            HV_NOT_FOUND);
  assert_true(pool_active("dfe224cb-28fb-8dd0-c4b2-64eb3f0f4566"));
  static const char *const bad_paths[] = {"relative/x.qcow2", "/var/../etc/shadow",
                                          "/var/images/..",   "/var/./x.img",
                                          "/var/images/",     ""};
  for (size_t i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++)
    ASSERT_RC(hv_vol_import(H, "def", P1, "img", "raw", 0, bad_paths[i], &info, err, sizeof(err)),
              HV_INVALID_ARGUMENT);
  ASSERT_RC(hv_vol_import(H, "def", P1, "img", "raw", 0, NULL, &info, err, sizeof(err)),
            HV_INVALID_ARGUMENT);
  /* an existing name converges before any image is looked at */
  ASSERT_OK(hv_vol_create(H, "def", P1, "img", "raw", GIB, &info, err, sizeof(err)));
  ASSERT_RC(hv_vol_import(H, "def", P1, "img", "raw", 0, "/var/images/base.qcow2", &info, err,
                          sizeof(err)),
            HV_ALREADY_EXISTS);
  assert_int_equal(info.capacity, GIB);
  ASSERT_OK(hv_vol_delete(H, "def", P1, "img", false, err, sizeof(err)));
}

/* ---------------------------------------------------------------------- */
/* networks                                                                */

#define N1 "33333333-0000-4000-8000-000000000001"
#define N2 "33333333-0000-4000-8000-000000000002"
#define N3 "33333333-0000-4000-8000-000000000003"
#define N4 "33333333-0000-4000-8000-000000000004"
#define N5 "33333333-0000-4000-8000-000000000005"
#define NX "33333333-0000-4000-8000-0000000000ff"

static const hv_net_host HOSTS[] = {
    {"52:54:00:00:00:01", "10.20.0.11", "web-1"},
    {"52:54:00:00:00:02", "10.20.0.12", ""},
};

static void nat_spec(hv_net_spec *s, const char *uuid, const char *name) {
  memset(s, 0, sizeof(*s));
  snprintf(s->uuid, sizeof(s->uuid), "%s", uuid);
  snprintf(s->name, sizeof(s->name), "%s", name);
  s->mode = HV_NET_NAT;
  snprintf(s->bridge, sizeof(s->bridge), "ncbr1");
  s->mtu = 9000;
  snprintf(s->gateway, sizeof(s->gateway), "10.20.0.1");
  s->prefix = 24;
  snprintf(s->dhcp_start, sizeof(s->dhcp_start), "10.20.0.100");
  snprintf(s->dhcp_end, sizeof(s->dhcp_end), "10.20.0.200");
  s->nhosts = 2;
  s->hosts = HOSTS;
  snprintf(s->ipv6_gateway, sizeof(s->ipv6_gateway), "fd00:20::1");
  s->ipv6_prefix = 64;
  s->autostart = true;
}

static void test_network_xml(void **state) {
  (void)state;
  hv_net_spec s;
  nat_spec(&s, N1, "p.net&<1>");
  char *xml = hv_network_xml(&s, err, sizeof(err));
  if (!xml) fail_msg("hv_network_xml: %s", err);
  assert_null(strstr(xml, "<1>"));
  assert_non_null(strstr(xml, "p.net&amp;&lt;1&gt;"));
  ASSERT_XP(xml, "string(/network/name)", "p.net&<1>");
  ASSERT_XP(xml, "string(/network/uuid)", N1);
  ASSERT_XP(xml, "string(/network/forward/@mode)", "nat");
  ASSERT_XP(xml, "string(/network/bridge/@name)", "ncbr1");
  ASSERT_XP(xml, "string(/network/bridge/@stp)", "on");
  ASSERT_XP(xml, "string(/network/bridge/@delay)", "0");
  ASSERT_XP(xml, "string(/network/mtu/@size)", "9000");
  ASSERT_XP(xml, "string(/network/ip[not(@family)]/@address)", "10.20.0.1");
  ASSERT_XP(xml, "string(/network/ip[not(@family)]/@prefix)", "24");
  ASSERT_XP(xml, "string(/network/ip/dhcp/range/@start)", "10.20.0.100");
  ASSERT_XP(xml, "string(/network/ip/dhcp/range/@end)", "10.20.0.200");
  ASSERT_XP(xml, "string(count(/network/ip/dhcp/host))", "2");
  ASSERT_XP(xml, "string(/network/ip/dhcp/host[1]/@mac)", "52:54:00:00:00:01");
  ASSERT_XP(xml, "string(/network/ip/dhcp/host[1]/@ip)", "10.20.0.11");
  ASSERT_XP(xml, "string(/network/ip/dhcp/host[1]/@name)", "web-1");
  ASSERT_XP(xml, "string(count(/network/ip/dhcp/host[2]/@name))", "0");
  ASSERT_XP(xml, "string(/network/ip[@family='ipv6']/@address)", "fd00:20::1");
  ASSERT_XP(xml, "string(/network/ip[@family='ipv6']/@prefix)", "64");
  ASSERT_XP(xml, "string(count(/network/vlan | /network/virtualport))", "0");
  free(xml);

  /* routed; isolated with hosts but no range; no mtu, no IPv6 */
  s.mode = HV_NET_ROUTED;
  s.mtu = 0;
  s.ipv6_prefix = 0;
  xml = hv_network_xml(&s, err, sizeof(err));
  ASSERT_XP(xml, "string(/network/forward/@mode)", "route");
  ASSERT_XP(xml, "string(count(/network/mtu))", "0");
  ASSERT_XP(xml, "string(count(/network/ip))", "1");
  free(xml);
  s.mode = HV_NET_ISOLATED;
  s.dhcp_start[0] = s.dhcp_end[0] = '\0';
  xml = hv_network_xml(&s, err, sizeof(err));
  ASSERT_XP(xml, "string(count(/network/forward))", "0");
  ASSERT_XP(xml, "string(/network/bridge/@stp)", "on");
  /* without a range there is no DHCP: reservations have no effect */
  ASSERT_XP(xml, "string(count(/network/ip/dhcp))", "0");
  free(xml);
  s.nhosts = 0;
  xml = hv_network_xml(&s, err, sizeof(err));
  ASSERT_XP(xml, "string(count(/network/ip/dhcp))", "0");
  ASSERT_XP(xml, "string(/network/ip/@address)", "10.20.0.1");
  free(xml);

  /* bridge: the host's Open vSwitch bridge with a VLAN; addresses and MTU
   * are the host bridge's */
  nat_spec(&s, N2, "p.br");
  s.mode = HV_NET_BRIDGE;
  snprintf(s.bridge, sizeof(s.bridge), "ovs-br0");
  s.openvswitch = true;
  s.vlan_id = 42;
  xml = hv_network_xml(&s, err, sizeof(err));
  if (!xml) fail_msg("hv_network_xml: %s", err);
  ASSERT_XP(xml, "string(/network/forward/@mode)", "bridge");
  ASSERT_XP(xml, "string(/network/bridge/@name)", "ovs-br0");
  ASSERT_XP(xml, "string(count(/network/bridge/@stp))", "0");
  ASSERT_XP(xml, "string(/network/virtualport/@type)", "openvswitch");
  ASSERT_XP(xml, "string(/network/vlan/tag/@id)", "42");
  ASSERT_XP(xml, "string(count(/network/ip | /network/mtu))", "0");
  free(xml);
  s.openvswitch = false;
  s.vlan_id = 0;
  xml = hv_network_xml(&s, err, sizeof(err));
  ASSERT_XP(xml, "string(count(/network/virtualport | /network/vlan))", "0");
  free(xml);

  /* specs that cannot be expressed, naming the field */
  static const char *const fields[] = {"uuid",       "name",     "mode",        "bridge",
                                       "vlan_id",    "mtu",      "gateway",     "prefix",
                                       "dhcp_start", "hosts[1]", "ipv6_gateway"};
  for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
    hv_net_host bad_hosts[2];
    memcpy(bad_hosts, HOSTS, sizeof(bad_hosts));
    nat_spec(&s, N1, "n");
    switch (i) {
    case 0: snprintf(s.uuid, sizeof(s.uuid), "x"); break;
    case 1: snprintf(s.name, sizeof(s.name), "a/b"); break;
    case 2: s.mode = 9; break;
    case 3: snprintf(s.bridge, sizeof(s.bridge), "br 0"); break;
    case 4: s.vlan_id = 5; break; /* not on Open vSwitch */
    case 5: s.mtu = 20; break;
    case 6: snprintf(s.gateway, sizeof(s.gateway), "10.20.0"); break;
    case 7: s.prefix = 33; break;
    case 8: s.dhcp_end[0] = '\0'; break;
    case 9:
      snprintf(bad_hosts[1].mac, sizeof(bad_hosts[1].mac), "52:54:00:00:00");
      s.hosts = bad_hosts;
      break;
    default: snprintf(s.ipv6_gateway, sizeof(s.ipv6_gateway), "10.0.0.1"); break;
    }
    err[0] = '\0';
    char *out = hv_network_xml(&s, err, sizeof(err));
    if (out) fail_msg("accepted a bad %s", fields[i]);
    if (!strstr(err, fields[i])) fail_msg("%s: message '%s'", fields[i], err);
  }
  nat_spec(&s, N2, "b");
  s.mode = HV_NET_BRIDGE;
  s.bridge[0] = '\0';
  assert_null(hv_network_xml(&s, err, sizeof(err)));
  nat_spec(&s, N2, "b");
  s.openvswitch = true;
  assert_null(hv_network_xml(&s, err, sizeof(err)));
  assert_non_null(strstr(err, "openvswitch"));
}

/* Whether the network has the DHCP host `mac`/`ip`, seen from our own
 * connection. */
static bool net_has_host(const char *uuid, const char *mac, const char *ip) {
  virNetworkPtr n = virNetworkLookupByUUIDString(V, uuid);
  assert_non_null(n);
  char *xml = virNetworkGetXMLDesc(n, 0);
  virNetworkFree(n);
  char expr[160];
  snprintf(expr, sizeof(expr), "string(count(/network/ip/dhcp/host[@mac='%s' and @ip='%s']))", mac,
           ip);
  char *count = xp(xml, expr);
  bool yes = strcmp(count, "1") == 0;
  free(count);
  free(xml);
  return yes;
}

static void test_networks(void **state) {
  (void)state;
  hv_net_spec s;
  nat_spec(&s, N1, "p.net&<1>");
  ASSERT_OK(hv_net_create(H, "def", &s, err, sizeof(err)));
  bool active = false, autostart = false;
  char bridge[16];
  ASSERT_OK(hv_net_info(H, "def", N1, &active, &autostart, bridge, err, sizeof(err)));
  assert_true(active);
  assert_true(autostart);
  assert_string_equal(bridge, "ncbr1");
  assert_true(net_has_host(N1, "52:54:00:00:00:01", "10.20.0.11"));

  /* again with a change: converges on the new definition */
  s.autostart = false;
  s.nhosts = 1;
  ASSERT_OK(hv_net_create(H, "def", &s, err, sizeof(err)));
  ASSERT_OK(hv_net_info(H, "def", N1, &active, &autostart, bridge, err, sizeof(err)));
  assert_true(active);
  assert_false(autostart);

  /* a stopped network is started */
  virNetworkPtr n = virNetworkLookupByUUIDString(V, N1);
  assert_int_equal(virNetworkDestroy(n), 0);
  ASSERT_OK(hv_net_info(H, "def", N1, &active, NULL, NULL, err, sizeof(err)));
  assert_false(active);
  ASSERT_OK(hv_net_create(H, "def", &s, err, sizeof(err)));
  assert_int_equal(virNetworkIsActive(n), 1);
  virNetworkFree(n);

  /* the name of another network */
  hv_net_spec clash;
  nat_spec(&clash, N2, "p.net&<1>");
  snprintf(clash.bridge, sizeof(clash.bridge), "ncbr2");
  ASSERT_RC(hv_net_create(H, "def", &clash, err, sizeof(err)), HV_ALREADY_EXISTS);
  nat_spec(&clash, N2, "default");
  ASSERT_RC(hv_net_create(H, "def", &clash, err, sizeof(err)), HV_ALREADY_EXISTS);

  /* redefine, with and without a restart */
  s.mtu = 1400;
  ASSERT_OK(hv_net_redefine(H, "def", &s, true, err, sizeof(err)));
  s.mtu = 1450;
  ASSERT_OK(hv_net_redefine(H, "def", &s, false, err, sizeof(err)));
  /* (the test driver keeps showing a network's first definition once it
   * ran, so the new MTU is not visible here) */
  hv_net_spec unknown;
  nat_spec(&unknown, NX, "p.unknown");
  ASSERT_RC(hv_net_redefine(H, "def", &unknown, false, err, sizeof(err)), HV_NOT_FOUND);

  /* static hosts: idempotent both ways, conflicts refused */
  hv_net_host h2 = HOSTS[1];
  ASSERT_OK(hv_net_host_add(H, "def", N1, &h2, err, sizeof(err)));
  assert_true(net_has_host(N1, h2.mac, h2.ip));
  ASSERT_OK(hv_net_host_add(H, "def", N1, &h2, err, sizeof(err)));
  hv_net_host moved = h2;
  snprintf(moved.ip, sizeof(moved.ip), "10.20.0.13");
  ASSERT_RC(hv_net_host_add(H, "def", N1, &moved, err, sizeof(err)), HV_ALREADY_EXISTS);
  hv_net_host taken = h2;
  snprintf(taken.mac, sizeof(taken.mac), "52:54:00:00:00:03");
  ASSERT_RC(hv_net_host_add(H, "def", N1, &taken, err, sizeof(err)), HV_ALREADY_EXISTS);
  ASSERT_OK(hv_net_host_remove(H, "def", N1, "52:54:00:00:00:02", err, sizeof(err)));
  assert_false(net_has_host(N1, h2.mac, h2.ip));
  ASSERT_OK(hv_net_host_remove(H, "def", N1, "52:54:00:00:00:02", err, sizeof(err)));
  /* one with a name, removed by its MAC in the other case */
  ASSERT_OK(hv_net_host_remove(H, "def", N1, "52:54:00:00:00:01", err, sizeof(err)));
  assert_false(net_has_host(N1, "52:54:00:00:00:01", "10.20.0.11"));
  hv_net_host named = {"52:54:00:AA:BB:CC", "10.20.0.50", "db-1"};
  ASSERT_OK(hv_net_host_add(H, "def", N1, &named, err, sizeof(err)));
  ASSERT_OK(hv_net_host_remove(H, "def", N1, "52:54:00:aa:bb:cc", err, sizeof(err)));
  assert_false(net_has_host(N1, "52:54:00:aa:bb:cc", "10.20.0.50"));
  ASSERT_RC(hv_net_host_remove(H, "def", N1, "nope", err, sizeof(err)), HV_INVALID_ARGUMENT);
  hv_net_host bad = {"52:54:00:00:00:09", "10.20.0", ""};
  ASSERT_RC(hv_net_host_add(H, "def", N1, &bad, err, sizeof(err)), HV_INVALID_ARGUMENT);
  ASSERT_RC(hv_net_host_add(H, "def", NX, &h2, err, sizeof(err)), HV_NOT_FOUND);

  /* leases: the test driver serves none */
  hv_lease *leases = NULL;
  int nleases = -1;
  ASSERT_OK(hv_net_leases(H, "def", N1, &leases, &nleases, err, sizeof(err)));
  assert_int_equal(nleases, 0);
  free(leases);
  ASSERT_RC(hv_net_leases(H, "def", NX, &leases, &nleases, err, sizeof(err)), HV_NOT_FOUND);

  /* the other modes define and start on the test driver */
  hv_net_spec iso, routed, br;
  nat_spec(&iso, N2, "p.iso");
  iso.mode = HV_NET_ISOLATED;
  snprintf(iso.bridge, sizeof(iso.bridge), "ncbr2");
  snprintf(iso.gateway, sizeof(iso.gateway), "10.30.0.1");
  iso.prefix = 16;
  snprintf(iso.dhcp_start, sizeof(iso.dhcp_start), "10.30.0.10");
  snprintf(iso.dhcp_end, sizeof(iso.dhcp_end), "10.30.0.20");
  iso.nhosts = 0;
  iso.ipv6_prefix = 0;
  ASSERT_OK(hv_net_create(H, "def", &iso, err, sizeof(err)));
  nat_spec(&routed, N3, "p.routed");
  routed.mode = HV_NET_ROUTED;
  snprintf(routed.bridge, sizeof(routed.bridge), "ncbr3");
  snprintf(routed.gateway, sizeof(routed.gateway), "10.40.0.1");
  routed.nhosts = 0;
  routed.dhcp_start[0] = routed.dhcp_end[0] = '\0';
  ASSERT_OK(hv_net_create(H, "def", &routed, err, sizeof(err)));
  nat_spec(&br, N4, "p.br");
  br.mode = HV_NET_BRIDGE;
  snprintf(br.bridge, sizeof(br.bridge), "ovsbr0");
  br.openvswitch = true;
  br.vlan_id = 7;
  ASSERT_OK(hv_net_create(H, "def", &br, err, sizeof(err)));
  ASSERT_OK(hv_net_info(H, "def", N4, &active, NULL, bridge, err, sizeof(err)));
  assert_true(active);
  assert_string_equal(bridge, "ovsbr0");

  /* the list, with the test driver's own "default" (netmask 255.255.255.0) */
  hv_net_summary *list = NULL;
  int count = 0;
  ASSERT_OK(hv_net_list(H, "def", &list, &count, err, sizeof(err)));
  int seen = 0;
  for (int i = 0; i < count; i++) {
    const hv_net_summary *e = &list[i];
    if (strcmp(e->name, "default") == 0) {
      assert_string_equal(e->ipv4, "192.168.122.1");
      assert_int_equal(e->prefix, 24);
      assert_string_equal(e->bridge, "virbr0");
      seen |= 1;
    } else if (strcmp(e->uuid, N1) == 0) {
      assert_string_equal(e->name, "p.net&<1>");
      assert_string_equal(e->ipv4, "10.20.0.1");
      assert_int_equal(e->prefix, 24);
      assert_string_equal(e->bridge, "ncbr1");
      seen |= 2;
    } else if (strcmp(e->uuid, N2) == 0) {
      assert_int_equal(e->prefix, 16);
      seen |= 4;
    } else if (strcmp(e->uuid, N4) == 0) {
      assert_string_equal(e->ipv4, "");
      assert_int_equal(e->prefix, 0);
      seen |= 8;
    }
  }
  assert_int_equal(seen, 15);
  free(list);

  ASSERT_OK(hv_net_delete(H, "def", N1, err, sizeof(err)));
  ASSERT_RC(hv_net_delete(H, "def", N1, err, sizeof(err)), HV_NOT_FOUND);
  ASSERT_RC(hv_net_info(H, "def", N1, &active, NULL, NULL, err, sizeof(err)), HV_NOT_FOUND);
  ASSERT_RC(hv_net_info(H, "def", "x", &active, NULL, NULL, err, sizeof(err)), HV_INVALID_ARGUMENT);
  ASSERT_OK(hv_net_delete(H, "def", N3, err, sizeof(err)));
  ASSERT_OK(hv_net_delete(H, "def", N4, err, sizeof(err)));
  ASSERT_RC(hv_net_list(H, "nope", &list, &count, err, sizeof(err)), HV_UNAVAILABLE);
}

/* ---------------------------------------------------------------------- */
/* devices                                                                 */

#define D1 "44444444-0000-4000-8000-000000000001"
#define DX "44444444-0000-4000-8000-0000000000ff"

/* Whether XPath `expr` counts anything in the domain's persistent
 * (`config`) or running definition, seen from our own connection. */
static bool dom_has(const char *uuid, bool config, const char *expr) {
  virDomainPtr d = virDomainLookupByUUIDString(V, uuid);
  assert_non_null(d);
  char *xml = virDomainGetXMLDesc(d, config ? VIR_DOMAIN_XML_INACTIVE : 0);
  virDomainFree(d);
  char *count = xp(xml, expr);
  free(xml);
  bool yes = strcmp(count, "0") != 0;
  free(count);
  return yes;
}

static void test_devices(void **state) {
  (void)state;
  /* a domain on a pool volume and a network, which the test driver starts */
  two_pools("def");
  hv_vol_info root, data;
  ASSERT_OK(hv_vol_create(H, "def", P1, "root.qcow2", "qcow2", GIB, &root, err, sizeof(err)));
  ASSERT_OK(hv_vol_create(H, "def", P1, "d&<1>.raw", "raw", GIB, &data, err, sizeof(err)));
  hv_net_spec net;
  nat_spec(&net, N5, "p.lan");
  snprintf(net.bridge, sizeof(net.bridge), "ncbr5");
  ASSERT_OK(hv_net_create(H, "def", &net, err, sizeof(err)));

  hv_domain_spec s = {0};
  snprintf(s.uuid, sizeof(s.uuid), D1);
  snprintf(s.name, sizeof(s.name), "p.dev");
  snprintf(s.vm, sizeof(s.vm), "projects/p/vms/dev");
  s.vcpus = 1;
  s.memory_mib = 256;
  s.ndisks = 1;
  snprintf(s.disks[0].path, sizeof(s.disks[0].path), "%s", root.path);
  snprintf(s.disks[0].format, sizeof(s.disks[0].format), "qcow2");
  snprintf(s.disks[0].target, sizeof(s.disks[0].target), "vda");
  snprintf(s.disks[0].volume, sizeof(s.disks[0].volume), "projects/p/volumes/root");
  s.nnics = 1;
  snprintf(s.nics[0].mac, sizeof(s.nics[0].mac), "52:54:00:10:00:01");
  snprintf(s.nics[0].network, sizeof(s.nics[0].network), "p.lan");
  ASSERT_OK(hv_domain_define(H, "def", &s, err, sizeof(err)));

  /* stopped: the definition changes */
  hv_disk disk = {0};
  snprintf(disk.path, sizeof(disk.path), "%s", data.path);
  snprintf(disk.format, sizeof(disk.format), "raw");
  snprintf(disk.target, sizeof(disk.target), "vdb");
  snprintf(disk.volume, sizeof(disk.volume), "projects/p/volumes/<data>&\"'");
  disk.bus = HV_BUS_VIRTIO;
  bool live = true;
  ASSERT_OK(hv_domain_attach_disk(H, "def", D1, &disk, &live, err, sizeof(err)));
  assert_false(live);
  hv_domain_spec got;
  ASSERT_OK(hv_domain_get(H, "def", D1, &got, NULL, err, sizeof(err)));
  assert_int_equal(got.ndisks, 2);
  assert_string_equal(got.disks[1].path, "/var/lib/nc/p1/d&<1>.raw");
  assert_string_equal(got.disks[1].target, "vdb");
  assert_string_equal(got.disks[1].format, "raw");
  assert_string_equal(got.disks[1].volume, "projects/p/volumes/<data>&\"'");
  assert_string_equal(got.disks[0].volume, "projects/p/volumes/root");
  assert_string_equal(got.vm, "projects/p/vms/dev");
  ASSERT_OK(hv_domain_attach_disk(H, "def", D1, &disk, &live, err, sizeof(err))); /* again */
  hv_disk other = disk;
  snprintf(other.path, sizeof(other.path), "/var/lib/nc/p1/other");
  ASSERT_RC(hv_domain_attach_disk(H, "def", D1, &other, &live, err, sizeof(err)),
            HV_ALREADY_EXISTS);
  other.format[0] = '\0';
  ASSERT_RC(hv_domain_attach_disk(H, "def", D1, &other, &live, err, sizeof(err)),
            HV_INVALID_ARGUMENT);
  assert_non_null(strstr(err, "disk.format"));

  hv_nic nic = {0};
  snprintf(nic.mac, sizeof(nic.mac), "52:54:00:10:00:02");
  snprintf(nic.network, sizeof(nic.network), "p.lan");
  nic.model = HV_NIC_E1000;
  ASSERT_OK(hv_domain_attach_nic(H, "def", D1, &nic, &live, err, sizeof(err)));
  assert_false(live);
  ASSERT_OK(hv_domain_attach_nic(H, "def", D1, &nic, &live, err, sizeof(err)));
  ASSERT_OK(hv_domain_get(H, "def", D1, &got, NULL, err, sizeof(err)));
  assert_int_equal(got.nnics, 2);
  assert_string_equal(got.nics[1].mac, "52:54:00:10:00:02");
  assert_int_equal(got.nics[1].model, HV_NIC_E1000);

  ASSERT_OK(hv_domain_detach_disk(H, "def", D1, "vdb", 5, &live, err, sizeof(err)));
  assert_false(live);
  ASSERT_OK(hv_domain_get(H, "def", D1, &got, NULL, err, sizeof(err)));
  assert_int_equal(got.ndisks, 1);
  assert_false(dom_has(D1, true, "string(count(/domain/metadata/*/*[@target='vdb']))"));
  ASSERT_OK(hv_domain_detach_disk(H, "def", D1, "vdb", 5, &live, err, sizeof(err))); /* again */
  ASSERT_OK(hv_domain_detach_nic(H, "def", D1, "52:54:00:10:00:02", 5, &live, err, sizeof(err)));
  ASSERT_OK(hv_domain_detach_nic(H, "def", D1, "52:54:00:10:00:02", 5, &live, err, sizeof(err)));
  ASSERT_OK(hv_domain_get(H, "def", D1, &got, NULL, err, sizeof(err)));
  assert_int_equal(got.nnics, 1);

  /* running: the running domain keeps its devices until the next start */
  ASSERT_OK(hv_domain_start(H, "def", D1, err, sizeof(err)));
  ASSERT_RC(hv_domain_block_resize(H, "def", D1, "vda", 2 * GIB, err, sizeof(err)), HV_OK);
  ASSERT_RC(hv_domain_block_resize(H, "def", D1, "vdz", 2 * GIB, err, sizeof(err)), HV_NOT_FOUND);
  live = true;
  ASSERT_OK(hv_domain_attach_disk(H, "def", D1, &disk, &live, err, sizeof(err)));
  assert_false(live);
  ASSERT_OK(hv_domain_attach_nic(H, "def", D1, &nic, &live, err, sizeof(err)));
  assert_false(live);
  assert_true(dom_has(D1, true, "count(/domain/devices/disk/target[@dev='vdb'])"));
  assert_false(dom_has(D1, false, "count(/domain/devices/disk/target[@dev='vdb'])"));
  assert_true(
      dom_has(D1, true, "count(/domain/devices/interface/mac[@address='52:54:00:10:00:02'])"));
  ASSERT_OK(hv_domain_destroy(H, "def", D1, err, sizeof(err)));
  ASSERT_OK(hv_domain_start(H, "def", D1, err, sizeof(err)));
  ASSERT_OK(hv_domain_get(H, "def", D1, &got, NULL, err, sizeof(err)));
  assert_int_equal(got.ndisks, 2);
  assert_int_equal(got.nnics, 2);
  assert_string_equal(got.disks[1].volume, "projects/p/volumes/<data>&\"'");
  assert_true(got.nics[1].target[0]); /* running: the host side has a name */

  ASSERT_OK(hv_domain_detach_disk(H, "def", D1, "vdb", 1, &live, err, sizeof(err)));
  assert_false(live);
  ASSERT_OK(hv_domain_detach_nic(H, "def", D1, "52:54:00:10:00:02", 1, &live, err, sizeof(err)));
  assert_false(live);
  assert_false(dom_has(D1, true, "count(/domain/devices/disk/target[@dev='vdb'])"));
  assert_true(dom_has(D1, false, "count(/domain/devices/disk/target[@dev='vdb'])"));
  assert_false(
      dom_has(D1, true, "count(/domain/devices/interface/mac[@address='52:54:00:10:00:02'])"));
  ASSERT_OK(hv_domain_destroy(H, "def", D1, err, sizeof(err)));
  ASSERT_OK(hv_domain_get(H, "def", D1, &got, NULL, err, sizeof(err)));
  assert_int_equal(got.ndisks, 1);
  assert_int_equal(got.nnics, 1);

  /* states, arguments, unknown domains */
  ASSERT_RC(hv_domain_block_resize(H, "def", D1, "vda", 2 * GIB, err, sizeof(err)),
            HV_FAILED_PRECONDITION);
  ASSERT_RC(hv_domain_block_resize(H, "def", D1, "vda", 0, err, sizeof(err)), HV_INVALID_ARGUMENT);
  ASSERT_RC(hv_domain_attach_disk(H, "def", DX, &disk, &live, err, sizeof(err)), HV_NOT_FOUND);
  ASSERT_RC(hv_domain_detach_nic(H, "def", DX, nic.mac, 1, &live, err, sizeof(err)), HV_NOT_FOUND);
  ASSERT_RC(hv_domain_detach_nic(H, "def", D1, "zz", 1, &live, err, sizeof(err)),
            HV_INVALID_ARGUMENT);
  ASSERT_RC(hv_domain_detach_disk(H, "def", D1, "", 1, &live, err, sizeof(err)),
            HV_INVALID_ARGUMENT);
  ASSERT_RC(hv_domain_attach_nic(H, "nope", D1, &nic, &live, err, sizeof(err)), HV_UNAVAILABLE);

  ASSERT_OK(hv_domain_undefine(H, "def", D1, err, sizeof(err)));
  ASSERT_OK(hv_net_delete(H, "def", N5, err, sizeof(err)));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pool_xml),    cmocka_unit_test(test_pools),
      cmocka_unit_test(test_volumes),     cmocka_unit_test(test_copy_import),
      cmocka_unit_test(test_network_xml), cmocka_unit_test(test_networks),
      cmocka_unit_test(test_devices),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
