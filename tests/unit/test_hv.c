/* test_hv.c - the libvirt layer against libvirt's in-process test driver
 * (no mocks): URI checks, domain XML round trip and escaping, host open
 * and failures, the domain lifecycle with its state checks, resources,
 * statistics, snapshots, offline migration between two private test
 * hosts, and lifecycle events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hv/hv.h"

/* ---------------------------------------------------------------------- */
/* fixtures                                                                */

typedef struct seen_event {
  char host[32], uuid[37];
  int event, state;
} seen_event;

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cond;
  seen_event events[256];
  int nevents;
  int conn_up, conn_down;
} rec = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void on_event(const hv_event *ev, void *arg) {
  (void)arg;
  pthread_mutex_lock(&rec.mu);
  if (rec.nevents < (int)(sizeof(rec.events) / sizeof(rec.events[0]))) {
    seen_event *s = &rec.events[rec.nevents++];
    snprintf(s->host, sizeof(s->host), "%s", ev->host_id);
    snprintf(s->uuid, sizeof(s->uuid), "%s", ev->uuid);
    s->event = ev->event;
    s->state = ev->state;
  }
  pthread_cond_broadcast(&rec.cond);
  pthread_mutex_unlock(&rec.mu);
}

static void on_conn(const char *host_id, bool up, const char *message, void *arg) {
  (void)host_id;
  (void)message;
  (void)arg;
  pthread_mutex_lock(&rec.mu);
  if (up)
    rec.conn_up++;
  else
    rec.conn_down++;
  pthread_mutex_unlock(&rec.mu);
}

/* Waits up to 5 s for `event` on `uuid` of `host`. */
static bool wait_event(const char *host, const char *uuid, int event, int state) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 5;
  bool found = false;
  pthread_mutex_lock(&rec.mu);
  while (!found) {
    for (int i = 0; i < rec.nevents && !found; i++)
      found = strcmp(rec.events[i].host, host) == 0 && strcmp(rec.events[i].uuid, uuid) == 0 &&
              rec.events[i].event == event && rec.events[i].state == state;
    if (!found && pthread_cond_timedwait(&rec.cond, &rec.mu, &deadline) != 0) break;
  }
  pthread_mutex_unlock(&rec.mu);
  return found;
}

static hv *H;
static char dir[64];
static char node_uri[128];
static char err[512];

/* Event types and details from libvirt's virDomainEventType. */
enum { EV_DEFINED = 0, EV_STARTED = 2, EV_SUSPENDED = 3, EV_STOPPED = 5 };

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof(dir), "/tmp/nc-test-hv-XXXXXX");
  if (!mkdtemp(dir)) return -1;
  char path[96];
  snprintf(path, sizeof(path), "%s/node.xml", dir);
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fputs(
      "<node>\n"
      "  <cpu><mhz>2400</mhz><model>x86_64</model><active>4</active><nodes>1</nodes>\n"
      "    <sockets>1</sockets><cores>2</cores><threads>2</threads></cpu>\n"
      "  <memory>8388608</memory>\n"
      "</node>\n",
      f);
  fclose(f);
  snprintf(node_uri, sizeof(node_uri), "test://%s", path);
  if (hv_create(&H, on_event, on_conn, NULL, err, sizeof(err)) != HV_OK) return -1;
  hv_host_info info;
  if (hv_host_open(H, "def", "test:///default", &info, err, sizeof(err)) != HV_OK) return -1;
  if (hv_host_open(H, "a", node_uri, &info, err, sizeof(err)) != HV_OK) return -1;
  if (hv_host_open(H, "b", node_uri, &info, err, sizeof(err)) != HV_OK) return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  hv_destroy(H);
  char path[96];
  snprintf(path, sizeof(path), "%s/node.xml", dir);
  unlink(path);
  rmdir(dir);
  return 0;
}

static void make_spec(hv_domain_spec *s, const char *uuid, const char *name, const char *vm) {
  memset(s, 0, sizeof(*s));
  snprintf(s->uuid, sizeof(s->uuid), "%s", uuid);
  snprintf(s->name, sizeof(s->name), "%s", name);
  snprintf(s->vm, sizeof(s->vm), "%s", vm);
  s->vcpus = 1;
  s->max_vcpus = 2;
  s->memory_mib = 512;
  s->max_memory_mib = 1024;
  s->ndisks = 1;
  snprintf(s->disks[0].path, sizeof(s->disks[0].path), "/var/lib/nc/%s.qcow2", name);
  snprintf(s->disks[0].format, sizeof(s->disks[0].format), "qcow2");
  snprintf(s->disks[0].target, sizeof(s->disks[0].target), "vda");
  snprintf(s->disks[0].volume, sizeof(s->disks[0].volume), "projects/p/volumes/%s", name);
  s->disks[0].boot_index = 1;
  s->nnics = 1;
  snprintf(s->nics[0].mac, sizeof(s->nics[0].mac), "52:54:00:12:34:56");
  snprintf(s->nics[0].network, sizeof(s->nics[0].network), "default");
}

static int state_of(const char *host, const char *uuid) {
  hv_domain_info info;
  int rc = hv_domain_get(H, host, uuid, NULL, &info, err, sizeof(err));
  if (rc != HV_OK) return -rc;
  return info.state;
}

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

/* ---------------------------------------------------------------------- */
/* URIs                                                                    */

static void test_uri_check(void **state) {
  (void)state;
  static const char *good[] = {
      "qemu:///system",
      "qemu:///session",
      "qemu+ssh://root@kvm1.example.com/system",
      "qemu+ssh://admin@10.0.0.5:2222/system?keyfile=/etc/nc/id_ed25519&no_verify=1",
      "qemu+tls://kvm2.example.com:16514/system",
      "qemu+tcp://kvm3/system",
      "qemu+unix:///system?socket=/run/libvirt/libvirt-sock",
      "qemu+libssh2://u@h/system",
      "qemu+libssh://u@h/system",
      "qemu+ssh://[fe80::1]:22/system",
      "test:///default",
      "test:///tmp/node.xml",
      "test+unix:///default",
      "test+tcp://h/default",
  };
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    if (hv_uri_check(good[i], err, sizeof(err)) != HV_OK) fail_msg("%s: %s", good[i], err);
  char longuri[1100];
  memset(longuri, 'a', sizeof(longuri) - 1);
  longuri[sizeof(longuri) - 1] = '\0';
  memcpy(longuri, "qemu:///", 8);
  static const char *bad[] = {"",
                              "qemu",
                              "qemu:/system",
                              "http://example.com/",
                              "xen:///system",
                              "QEMU:///system",
                              "qemu+ssh://host",
                              "qemu:///sys tem",
                              "qemu:///sys\"tem",
                              "qemu:///sys'tem",
                              "qemu:///sys\\tem",
                              "qemu:///sys\ntem",
                              "qemu:///sys\ttem",
                              "qemu+ssh://@host/system",
                              "qemu+ssh://user@/system",
                              "qemu+ssh://ho$t/system",
                              "qemu+ssh://host:/system",
                              "qemu+ssh://host:0/system",
                              "qemu+ssh://host:65536/system",
                              "qemu+ssh://host:22a/system",
                              "qemu+ssh://[fe80::1/system",
                              "qemu:///system?",
                              "qemu:///system#frag",
                              "test:///",
                              "test://"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    err[0] = '\0';
    if (hv_uri_check(bad[i], err, sizeof(err)) != HV_INVALID_ARGUMENT)
      fail_msg("accepted bad uri '%s'", bad[i]);
    assert_true(strncmp(err, "uri:", 4) == 0);
  }
  assert_int_equal(hv_uri_check(longuri, err, sizeof(err)), HV_INVALID_ARGUMENT);
  assert_int_equal(hv_uri_check(NULL, err, sizeof(err)), HV_INVALID_ARGUMENT);

  assert_true(hv_uri_is_ephemeral("test:///default"));
  assert_true(hv_uri_is_ephemeral("test:///tmp/node.xml"));
  assert_false(hv_uri_is_ephemeral("test+tcp://h/default"));
  assert_false(hv_uri_is_ephemeral("qemu:///system"));
  assert_false(hv_uri_is_ephemeral(NULL));
}

/* ---------------------------------------------------------------------- */
/* XML                                                                     */

static const char *const META_NAME = "projects/p<1>/vms/a&b\"c'd";

static void test_xml_roundtrip(void **state) {
  (void)state;
  hv_domain_spec s;
  make_spec(&s, "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", "p1.<web>&'\"", META_NAME);
  s.vcpus = 2;
  s.max_vcpus = 4;
  s.memory_mib = 1536;
  s.max_memory_mib = 4096;
  snprintf(s.machine_type, sizeof(s.machine_type), "pc-q35-7.2");
  s.firmware = HV_FW_UEFI;
  s.ndisks = 2;
  snprintf(s.disks[0].path, sizeof(s.disks[0].path), "/var/lib/nc/a b&<c>.qcow2");
  s.disks[0].bus = HV_BUS_VIRTIO;
  s.disks[0].boot_index = 2;
  snprintf(s.disks[1].path, sizeof(s.disks[1].path), "/var/lib/nc/data.raw");
  snprintf(s.disks[1].format, sizeof(s.disks[1].format), "raw");
  snprintf(s.disks[1].target, sizeof(s.disks[1].target), "sdb");
  snprintf(s.disks[1].volume, sizeof(s.disks[1].volume), "projects/p/volumes/<data>&\"'");
  s.disks[1].bus = HV_BUS_SCSI;
  s.disks[1].read_only = true;
  s.nnics = 2;
  s.nics[0].boot_index = 1;
  snprintf(s.nics[1].mac, sizeof(s.nics[1].mac), "52:54:00:ab:cd:ef");
  snprintf(s.nics[1].network, sizeof(s.nics[1].network), "net&<2>");
  s.nics[1].model = HV_NIC_E1000;

  hv_host_info host = {0};
  snprintf(host.domain_type, sizeof(host.domain_type), "kvm");
  snprintf(host.arch, sizeof(host.arch), "x86_64");
  char *xml = hv_domain_xml(&s, &host, err, sizeof(err));
  if (!xml) fail_msg("hv_domain_xml: %s", err);
  /* escaped by the library, never pasted */
  assert_null(strstr(xml, "p<1>"));
  assert_null(strstr(xml, "a&b"));
  assert_null(strstr(xml, "<web>"));
  assert_non_null(strstr(xml, "p&lt;1&gt;/vms/a&amp;b&quot;c'd"));
  assert_non_null(strstr(xml, "<name>p1.&lt;web&gt;&amp;'\"</name>"));
  assert_non_null(strstr(xml, "a b&amp;&lt;c&gt;.qcow2"));
  assert_non_null(strstr(xml, "<domain type=\"kvm\">"));
  assert_non_null(strstr(xml, "xmlns:nc=\"https://novacron.dev/xmlns/vm/1\""));
  assert_non_null(strstr(xml, "<memory unit=\"KiB\">4194304</memory>"));
  assert_non_null(strstr(xml, "<currentMemory unit=\"KiB\">1572864</currentMemory>"));
  assert_non_null(strstr(xml, "<vcpu current=\"2\">4</vcpu>"));
  assert_non_null(strstr(xml, "<os firmware=\"efi\">"));
  assert_non_null(strstr(xml, "<type arch=\"x86_64\" machine=\"pc-q35-7.2\">hvm</type>"));
  assert_non_null(strstr(xml, "<memballoon model=\"virtio\"/>"));
  assert_non_null(strstr(xml, "<serial type=\"pty\">"));
  assert_non_null(strstr(xml, "<boot order=\"1\"/>"));
  assert_non_null(strstr(xml, "<readonly/>"));
  assert_non_null(strstr(xml, "<on_crash>destroy</on_crash>"));

  hv_domain_spec p;
  ASSERT_OK(hv_domain_parse(xml, &p, err, sizeof(err)));
  free(xml);
  assert_string_equal(p.uuid, s.uuid);
  assert_string_equal(p.name, s.name);
  assert_string_equal(p.vm, META_NAME);
  assert_int_equal(p.vcpus, 2);
  assert_int_equal(p.max_vcpus, 4);
  assert_int_equal(p.memory_mib, 1536);
  assert_int_equal(p.max_memory_mib, 4096);
  assert_string_equal(p.machine_type, "pc-q35-7.2");
  assert_int_equal(p.firmware, HV_FW_UEFI);
  assert_int_equal(p.ndisks, 2);
  for (int i = 0; i < 2; i++) {
    assert_string_equal(p.disks[i].path, s.disks[i].path);
    assert_string_equal(p.disks[i].format, s.disks[i].format);
    assert_string_equal(p.disks[i].target, s.disks[i].target);
    assert_string_equal(p.disks[i].volume, s.disks[i].volume);
    assert_int_equal(p.disks[i].bus, s.disks[i].bus);
    assert_int_equal(p.disks[i].boot_index, s.disks[i].boot_index);
    assert_int_equal(p.disks[i].read_only, s.disks[i].read_only);
  }
  assert_int_equal(p.nnics, 2);
  for (int i = 0; i < 2; i++) {
    assert_string_equal(p.nics[i].mac, s.nics[i].mac);
    assert_string_equal(p.nics[i].network, s.nics[i].network);
    assert_int_equal(p.nics[i].model, s.nics[i].model);
    assert_int_equal(p.nics[i].boot_index, s.nics[i].boot_index);
    assert_string_equal(p.nics[i].target, "");
  }

  /* the test driver's document: no balloon, BIOS, no arch when unknown */
  snprintf(host.domain_type, sizeof(host.domain_type), "test");
  host.arch[0] = '\0';
  s.firmware = HV_FW_BIOS;
  xml = hv_domain_xml(&s, &host, err, sizeof(err));
  assert_non_null(xml);
  assert_non_null(strstr(xml, "<domain type=\"test\">"));
  assert_null(strstr(xml, "memballoon"));
  assert_null(strstr(xml, "firmware"));
  assert_non_null(strstr(xml, "<type machine=\"pc-q35-7.2\">hvm</type>"));
  free(xml);

  /* foreign documents: units, targets, defaults */
  const char *foreign =
      "<domain type='kvm'><name>other</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid>"
      "<memory unit='GiB'>2</memory><vcpu>3</vcpu><os><type>hvm</type>"
      "<loader type='pflash'>/x.fd</loader></os><devices>"
      "<disk type='block' device='disk'><source dev='/dev/sdz'/><target dev='sda' bus='sata'/>"
      "</disk><disk type='file' device='cdrom'><target dev='hdc'/></disk>"
      "<interface type='network'><mac address='52:54:00:00:00:09'/><source network='n'/>"
      "<target dev='vnet3'/><model type='e1000e'/></interface></devices></domain>";
  ASSERT_OK(hv_domain_parse(foreign, &p, err, sizeof(err)));
  assert_string_equal(p.vm, "");
  assert_int_equal(p.vcpus, 3);
  assert_int_equal(p.max_vcpus, 3);
  assert_int_equal(p.memory_mib, 2048);
  assert_int_equal(p.max_memory_mib, 2048);
  assert_int_equal(p.firmware, HV_FW_UEFI);
  assert_int_equal(p.ndisks, 1);
  assert_string_equal(p.disks[0].path, "/dev/sdz");
  assert_int_equal(p.disks[0].bus, HV_BUS_SATA);
  assert_int_equal(p.nnics, 1);
  assert_string_equal(p.nics[0].target, "vnet3");
  assert_int_equal(p.nics[0].model, HV_NIC_E1000);

  ASSERT_RC(hv_domain_parse("<network><name>x</name></network>", &p, err, sizeof(err)),
            HV_INVALID_ARGUMENT);
  ASSERT_RC(hv_domain_parse("not xml <", &p, err, sizeof(err)), HV_INVALID_ARGUMENT);
  ASSERT_RC(hv_domain_parse("<!DOCTYPE d [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>"
                            "<domain><name>&e;</name></domain>",
                            &p, err, sizeof(err)),
            HV_OK);
  assert_null(strstr(p.name, "root"));

  /* specs that cannot be expressed */
  hv_domain_spec bad;
  make_spec(&bad, "not-a-uuid", "x", "");
  assert_null(hv_domain_xml(&bad, &host, err, sizeof(err)));
  assert_non_null(strstr(err, "uuid"));
  make_spec(&bad, "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", "x", "");
  bad.vcpus = 3;
  assert_null(hv_domain_xml(&bad, &host, err, sizeof(err)));
  assert_non_null(strstr(err, "max_vcpus"));
  make_spec(&bad, "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", "x", "");
  snprintf(bad.nics[0].mac, sizeof(bad.nics[0].mac), "52:54:00:zz:00:01");
  assert_null(hv_domain_xml(&bad, &host, err, sizeof(err)));
  assert_non_null(strstr(err, "mac"));
  make_spec(&bad, "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", "x\001", "");
  assert_null(hv_domain_xml(&bad, &host, err, sizeof(err)));
  make_spec(&bad, "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", "x", "\xff\xfe");
  assert_null(hv_domain_xml(&bad, &host, err, sizeof(err)));
  make_spec(&bad, "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", "x", "");
  snprintf(bad.disks[0].format, sizeof(bad.disks[0].format), "vmdk");
  assert_null(hv_domain_xml(&bad, &host, err, sizeof(err)));
}

/* ---------------------------------------------------------------------- */
/* hosts                                                                   */

static void test_hosts(void **state) {
  (void)state;
  hv_host_info info;
  ASSERT_OK(hv_host_open(H, "def", "test:///default", &info, err, sizeof(err)));
  assert_string_equal(info.hypervisor_type, "TEST");
  assert_string_equal(info.domain_type, "test");
  assert_true(info.hypervisor_version[0] && info.libvirt_version[0] && info.hostname[0]);
  assert_non_null(strchr(info.libvirt_version, '.'));
  assert_true(info.arch[0]);
  assert_true(info.cpu_count > 0);
  assert_true(info.memory_mib > 0);
  ASSERT_OK(hv_host_probe(H, "def", &info, err, sizeof(err)));
  assert_string_equal(info.hypervisor_type, "TEST");

  ASSERT_OK(hv_host_probe(H, "a", &info, err, sizeof(err)));
  assert_int_equal(info.cpu_count, 4);
  assert_int_equal(info.memory_mib, 8192);

  /* unreachable: remembered, and calls say UNAVAILABLE */
  err[0] = '\0';
  int rc = hv_host_open(H, "bad", "test:///nonexistent.xml", &info, err, sizeof(err));
  assert_true(rc == HV_UNAVAILABLE || rc == HV_INVALID_ARGUMENT);
  assert_true(err[0]);
  hv_domain_info *list = NULL;
  int n = 0;
  ASSERT_RC(hv_domain_list(H, "bad", &list, &n, err, sizeof(err)), HV_UNAVAILABLE);
  ASSERT_RC(hv_host_probe(H, "bad", &info, err, sizeof(err)), HV_UNAVAILABLE);
  hv_host_close(H, "bad");
  hv_host_close(H, "never-opened");

  ASSERT_RC(hv_domain_list(H, "nope", &list, &n, err, sizeof(err)), HV_UNAVAILABLE);
  ASSERT_RC(hv_host_probe(H, "nope", &info, err, sizeof(err)), HV_NOT_FOUND);
  ASSERT_RC(hv_host_probe(H, "bad", &info, err, sizeof(err)), HV_NOT_FOUND); /* closed */
  ASSERT_RC(hv_domain_start(H, "nope", "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0", err, sizeof(err)),
            HV_UNAVAILABLE);
  ASSERT_RC(hv_host_open(H, "x", "http://example.com/", &info, err, sizeof(err)),
            HV_INVALID_ARGUMENT);

  /* a second hv shares the process's event loop */
  hv *other = NULL;
  ASSERT_OK(hv_create(&other, NULL, NULL, NULL, err, sizeof(err)));
  ASSERT_OK(hv_host_open(other, "d2", "test:///default", &info, err, sizeof(err)));
  hv_destroy(other);
  ASSERT_OK(hv_host_probe(H, "def", &info, err, sizeof(err)));
}

/* ---------------------------------------------------------------------- */
/* domains                                                                 */

#define U1 "11111111-2222-4333-8444-555555555501"
#define U2 "11111111-2222-4333-8444-555555555502"
#define UNKNOWN "11111111-2222-4333-8444-5555555555ff"

static void test_lifecycle(void **state) {
  (void)state;
  hv_domain_spec s;
  make_spec(&s, U1, "p.web", META_NAME);
  ASSERT_OK(hv_domain_define(H, "def", &s, err, sizeof(err)));
  ASSERT_OK(hv_domain_define(H, "def", &s, err, sizeof(err))); /* redefine */

  hv_domain_spec got;
  hv_domain_info info;
  ASSERT_OK(hv_domain_get(H, "def", U1, &got, &info, err, sizeof(err)));
  assert_string_equal(info.uuid, U1);
  assert_string_equal(info.name, "p.web");
  assert_string_equal(info.vm, META_NAME);
  assert_string_equal(got.vm, META_NAME);
  assert_int_equal(info.state, HV_DOM_SHUTOFF);
  assert_true(info.persistent);
  assert_int_equal(got.memory_mib, 512);
  assert_string_equal(got.disks[0].volume, "projects/p/volumes/p.web");

  /* same name, other UUID */
  hv_domain_spec clash;
  make_spec(&clash, U2, "p.web", "projects/p/vms/other");
  ASSERT_RC(hv_domain_define(H, "def", &clash, err, sizeof(err)), HV_ALREADY_EXISTS);

  /* ours and the test driver's own unmanaged "test" domain */
  hv_domain_info *list = NULL;
  int n = 0;
  ASSERT_OK(hv_domain_list(H, "def", &list, &n, err, sizeof(err)));
  bool ours = false, unmanaged = false;
  for (int i = 0; i < n; i++) {
    if (strcmp(list[i].uuid, U1) == 0) {
      ours = true;
      assert_string_equal(list[i].vm, META_NAME);
      assert_int_equal(list[i].state, HV_DOM_SHUTOFF);
      assert_true(list[i].persistent);
    }
    if (strcmp(list[i].name, "test") == 0) {
      unmanaged = true;
      assert_string_equal(list[i].vm, "");
      assert_int_equal(list[i].state, HV_DOM_RUNNING);
    }
  }
  free(list);
  assert_true(ours && unmanaged);

  /* legal and illegal transitions */
  ASSERT_RC(hv_domain_suspend(H, "def", U1, err, sizeof(err)), HV_FAILED_PRECONDITION);
  ASSERT_RC(hv_domain_resume(H, "def", U1, err, sizeof(err)), HV_FAILED_PRECONDITION);
  ASSERT_RC(hv_domain_shutdown(H, "def", U1, err, sizeof(err)), HV_FAILED_PRECONDITION);
  ASSERT_RC(hv_domain_destroy(H, "def", U1, err, sizeof(err)), HV_FAILED_PRECONDITION);
  ASSERT_RC(hv_domain_reboot(H, "def", U1, false, err, sizeof(err)), HV_FAILED_PRECONDITION);
  ASSERT_OK(hv_domain_start(H, "def", U1, err, sizeof(err)));
  assert_int_equal(state_of("def", U1), HV_DOM_RUNNING);
  ASSERT_RC(hv_domain_start(H, "def", U1, err, sizeof(err)), HV_FAILED_PRECONDITION);
  ASSERT_OK(hv_domain_get(H, "def", U1, &got, NULL, err, sizeof(err)));
  assert_true(got.nics[0].target[0]); /* the live XML has host-side targets */
  ASSERT_OK(hv_domain_suspend(H, "def", U1, err, sizeof(err)));
  assert_int_equal(state_of("def", U1), HV_DOM_PAUSED);
  ASSERT_RC(hv_domain_suspend(H, "def", U1, err, sizeof(err)), HV_FAILED_PRECONDITION);
  ASSERT_OK(hv_domain_resume(H, "def", U1, err, sizeof(err)));
  assert_int_equal(state_of("def", U1), HV_DOM_RUNNING);
  ASSERT_OK(hv_domain_reboot(H, "def", U1, false, err, sizeof(err)));
  ASSERT_OK(hv_domain_reboot(H, "def", U1, true, err, sizeof(err)));
  assert_int_equal(state_of("def", U1), HV_DOM_RUNNING);
  ASSERT_OK(hv_domain_shutdown(H, "def", U1, err, sizeof(err)));
  assert_int_equal(state_of("def", U1), HV_DOM_SHUTOFF);
  ASSERT_OK(hv_domain_start(H, "def", U1, err, sizeof(err)));
  ASSERT_OK(hv_domain_destroy(H, "def", U1, err, sizeof(err)));
  assert_int_equal(state_of("def", U1), HV_DOM_SHUTOFF);

  /* resources of a stopped domain: the definition changes */
  ASSERT_OK(hv_domain_set_vcpus(H, "def", U1, 2, false, err, sizeof(err)));
  ASSERT_OK(hv_domain_set_memory(H, "def", U1, 768, false, err, sizeof(err)));
  ASSERT_OK(hv_domain_get(H, "def", U1, &got, NULL, err, sizeof(err)));
  assert_int_equal(got.vcpus, 2);
  assert_int_equal(got.max_vcpus, 2);
  assert_int_equal(got.memory_mib, 768);
  assert_int_equal(got.max_memory_mib, 1024);
  ASSERT_OK(hv_domain_set_memory(H, "def", U1, 2048, true, err, sizeof(err)));
  ASSERT_OK(hv_domain_get(H, "def", U1, &got, NULL, err, sizeof(err)));
  assert_int_equal(got.memory_mib, 2048);
  assert_int_equal(got.max_memory_mib, 2048);
  ASSERT_RC(hv_domain_set_vcpus(H, "def", U1, 0, false, err, sizeof(err)), HV_INVALID_ARGUMENT);

  /* not found, bad uuid */
  ASSERT_RC(hv_domain_start(H, "def", UNKNOWN, err, sizeof(err)), HV_NOT_FOUND);
  ASSERT_RC(hv_domain_get(H, "def", UNKNOWN, &got, &info, err, sizeof(err)), HV_NOT_FOUND);
  ASSERT_RC(hv_domain_undefine(H, "def", UNKNOWN, err, sizeof(err)), HV_NOT_FOUND);
  ASSERT_RC(hv_domain_start(H, "def", "nonsense", err, sizeof(err)), HV_INVALID_ARGUMENT);

  /* undefine a running domain: destroyed first */
  ASSERT_OK(hv_domain_start(H, "def", U1, err, sizeof(err)));
  ASSERT_OK(hv_domain_undefine(H, "def", U1, err, sizeof(err)));
  ASSERT_RC(hv_domain_get(H, "def", U1, &got, &info, err, sizeof(err)), HV_NOT_FOUND);
  ASSERT_RC(hv_domain_undefine(H, "def", U1, err, sizeof(err)), HV_NOT_FOUND);
}

static void test_stats(void **state) {
  (void)state;
  hv_domain_spec s;
  make_spec(&s, U2, "p.stats", "projects/p/vms/stats");
  s.vcpus = 2;
  ASSERT_OK(hv_domain_define(H, "a", &s, err, sizeof(err)));
  hv_stats st;
  ASSERT_RC(hv_domain_stats(H, "a", U2, &st, err, sizeof(err)), HV_FAILED_PRECONDITION);
  ASSERT_OK(hv_domain_start(H, "a", U2, err, sizeof(err)));
  ASSERT_OK(hv_domain_stats(H, "a", U2, &st, err, sizeof(err)));
  /* The 9.0 test driver reports only the state in bulk stats; the rest
   * comes from the per-device calls, which it answers with invented
   * counters. */
  assert_true(st.cpu_time_ns > 0);
  assert_int_equal(st.vcpus_online, 2);
  assert_int_equal(st.vcpus_max, 2);
  assert_int_equal(st.memory_actual_kib, 512 * 1024);
  assert_int_equal(st.nnics, 1);
  assert_string_equal(st.nics[0].mac, "52:54:00:12:34:56");
  assert_true(st.nics[0].target[0]);
  assert_true(st.nics[0].rx_bytes > 0 && st.nics[0].tx_packets > 0);
  assert_int_equal(st.ndisks, 1);
  assert_string_equal(st.disks[0].target, "vda");
  assert_true(st.disks[0].read_bytes > 0 && st.disks[0].write_requests > 0);
  ASSERT_OK(hv_domain_undefine(H, "a", U2, err, sizeof(err)));
}

static void test_snapshots(void **state) {
  (void)state;
  hv_domain_spec s, got;
  make_spec(&s, U1, "p.snap", "projects/p/vms/snap");
  ASSERT_OK(hv_domain_define(H, "a", &s, err, sizeof(err)));

  /* shut off: s1 records 512 MiB */
  ASSERT_OK(hv_snapshot_create(H, "a", U1, "s1", "first", false, err, sizeof(err)));
  ASSERT_RC(hv_snapshot_create(H, "a", U1, "s1", "again", false, err, sizeof(err)),
            HV_ALREADY_EXISTS);
  ASSERT_OK(hv_domain_set_memory(H, "a", U1, 768, false, err, sizeof(err)));
  ASSERT_OK(hv_domain_start(H, "a", U1, err, sizeof(err)));
  /* running, with and without memory */
  ASSERT_OK(hv_snapshot_create(H, "a", U1, "s2", NULL, false, err, sizeof(err)));
  ASSERT_OK(hv_snapshot_create(H, "a", U1, "s3", "with memory", true, err, sizeof(err)));
  ASSERT_OK(hv_domain_suspend(H, "a", U1, err, sizeof(err)));
  ASSERT_OK(hv_snapshot_create(H, "a", U1, "s4", "paused", false, err, sizeof(err)));
  ASSERT_OK(hv_domain_resume(H, "a", U1, err, sizeof(err)));

  /* back to the shut off 512 MiB definition */
  ASSERT_OK(hv_snapshot_revert(H, "a", U1, "s1", err, sizeof(err)));
  assert_int_equal(state_of("a", U1), HV_DOM_SHUTOFF);
  ASSERT_OK(hv_domain_get(H, "a", U1, &got, NULL, err, sizeof(err)));
  assert_int_equal(got.memory_mib, 512);
  /* and to the running one */
  ASSERT_OK(hv_snapshot_revert(H, "a", U1, "s3", err, sizeof(err)));
  assert_int_equal(state_of("a", U1), HV_DOM_RUNNING);
  ASSERT_OK(hv_domain_get(H, "a", U1, &got, NULL, err, sizeof(err)));
  assert_int_equal(got.memory_mib, 768);

  ASSERT_RC(hv_snapshot_revert(H, "a", U1, "nope", err, sizeof(err)), HV_NOT_FOUND);
  ASSERT_RC(hv_snapshot_delete(H, "a", U1, "nope", false, err, sizeof(err)), HV_NOT_FOUND);
  ASSERT_RC(hv_snapshot_create(H, "a", U1, "", NULL, false, err, sizeof(err)), HV_INVALID_ARGUMENT);
  ASSERT_RC(hv_snapshot_create(H, "a", UNKNOWN, "s9", NULL, false, err, sizeof(err)), HV_NOT_FOUND);

  /* s2 is a child of s1: deleting s1 alone keeps it, s2 with children
   * takes s3 and s4 */
  ASSERT_OK(hv_snapshot_delete(H, "a", U1, "s1", false, err, sizeof(err)));
  ASSERT_RC(hv_snapshot_revert(H, "a", U1, "s1", err, sizeof(err)), HV_NOT_FOUND);
  ASSERT_OK(hv_snapshot_delete(H, "a", U1, "s2", true, err, sizeof(err)));
  ASSERT_RC(hv_snapshot_delete(H, "a", U1, "s3", false, err, sizeof(err)), HV_NOT_FOUND);
  ASSERT_RC(hv_snapshot_delete(H, "a", U1, "s4", false, err, sizeof(err)), HV_NOT_FOUND);

  /* undefine takes remaining snapshot metadata along */
  ASSERT_OK(hv_snapshot_create(H, "a", U1, "s5", NULL, false, err, sizeof(err)));
  ASSERT_OK(hv_domain_undefine(H, "a", U1, err, sizeof(err)));
}

static void test_migrate(void **state) {
  (void)state;
  hv_domain_spec s;
  make_spec(&s, U1, "p.mig", "projects/p/vms/mig");
  ASSERT_OK(hv_domain_define(H, "a", &s, err, sizeof(err)));

  ASSERT_RC(hv_domain_migrate(H, "a", "a", U1, false, err, sizeof(err)), HV_INVALID_ARGUMENT);
  ASSERT_RC(hv_domain_migrate(H, "a", "nope", U1, false, err, sizeof(err)), HV_UNAVAILABLE);
  ASSERT_RC(hv_domain_migrate(H, "a", "b", UNKNOWN, false, err, sizeof(err)), HV_NOT_FOUND);

  /* offline: appears on b, gone from a */
  ASSERT_OK(hv_domain_migrate(H, "a", "b", U1, false, err, sizeof(err)));
  hv_domain_spec got;
  hv_domain_info info;
  ASSERT_OK(hv_domain_get(H, "b", U1, &got, &info, err, sizeof(err)));
  assert_string_equal(info.vm, "projects/p/vms/mig");
  assert_int_equal(info.state, HV_DOM_SHUTOFF);
  assert_true(info.persistent);
  ASSERT_RC(hv_domain_get(H, "a", U1, &got, &info, err, sizeof(err)), HV_NOT_FOUND);

  /* the destination already has it */
  ASSERT_OK(hv_domain_define(H, "a", &s, err, sizeof(err)));
  ASSERT_RC(hv_domain_migrate(H, "a", "b", U1, false, err, sizeof(err)), HV_ALREADY_EXISTS);
  ASSERT_OK(hv_domain_undefine(H, "a", U1, err, sizeof(err)));

  /* running: the test driver cannot migrate, and nothing changes */
  ASSERT_OK(hv_domain_start(H, "b", U1, err, sizeof(err)));
  ASSERT_RC(hv_domain_migrate(H, "b", "a", U1, true, err, sizeof(err)), HV_UNIMPLEMENTED);
  ASSERT_RC(hv_domain_migrate(H, "b", "a", U1, false, err, sizeof(err)), HV_UNIMPLEMENTED);
  assert_int_equal(state_of("b", U1), HV_DOM_RUNNING);
  ASSERT_RC(hv_domain_get(H, "a", U1, &got, &info, err, sizeof(err)), HV_NOT_FOUND);
  ASSERT_OK(hv_domain_undefine(H, "b", U1, err, sizeof(err)));
}

static void test_events(void **state) {
  (void)state;
  hv_domain_spec s;
  make_spec(&s, U2, "p.events", "projects/p/vms/events");
  ASSERT_OK(hv_domain_define(H, "b", &s, err, sizeof(err)));
  ASSERT_OK(hv_domain_start(H, "b", U2, err, sizeof(err)));
  assert_true(wait_event("b", U2, EV_DEFINED, HV_DOM_NOSTATE));
  assert_true(wait_event("b", U2, EV_STARTED, HV_DOM_RUNNING));
  ASSERT_OK(hv_domain_suspend(H, "b", U2, err, sizeof(err)));
  assert_true(wait_event("b", U2, EV_SUSPENDED, HV_DOM_PAUSED));
  ASSERT_OK(hv_domain_destroy(H, "b", U2, err, sizeof(err)));
  assert_true(wait_event("b", U2, EV_STOPPED, HV_DOM_SHUTOFF));
  /* a closed host's events stop: its domain events are not reported */
  ASSERT_OK(hv_domain_undefine(H, "b", U2, err, sizeof(err)));
  pthread_mutex_lock(&rec.mu);
  int down = rec.conn_down;
  pthread_mutex_unlock(&rec.mu);
  assert_int_equal(down, 0);
}

/* A host whose URI cannot be opened yet: calls fail UNAVAILABLE without
 * retrying more than once a second; once it can be opened, the next due
 * call reconnects and on_conn(up) is told. */
static void test_reconnect(void **state) {
  (void)state;
  char path[96], uri[128];
  snprintf(path, sizeof(path), "%s/late.xml", dir);
  snprintf(uri, sizeof(uri), "test://%s", path);
  hv_host_info info;
  ASSERT_RC(hv_host_open(H, "late", uri, &info, err, sizeof(err)), HV_UNAVAILABLE);
  char node[96];
  snprintf(node, sizeof(node), "%s/node.xml", dir);
  assert_int_equal(link(node, path), 0);
  pthread_mutex_lock(&rec.mu);
  int up = rec.conn_up;
  pthread_mutex_unlock(&rec.mu);
  hv_domain_info *list = NULL;
  int n = 0;
  /* within the second after the failed attempt: no new attempt */
  ASSERT_RC(hv_domain_list(H, "late", &list, &n, err, sizeof(err)), HV_UNAVAILABLE);
  struct timespec pause = {1, 100 * 1000 * 1000};
  nanosleep(&pause, NULL);
  ASSERT_OK(hv_domain_list(H, "late", &list, &n, err, sizeof(err)));
  free(list);
  assert_int_equal(n, 0);
  pthread_mutex_lock(&rec.mu);
  assert_int_equal(rec.conn_up, up + 1);
  pthread_mutex_unlock(&rec.mu);
  ASSERT_OK(hv_host_probe(H, "late", &info, err, sizeof(err)));
  assert_int_equal(info.cpu_count, 4);
  hv_host_close(H, "late");
  unlink(path);
}

/* Calls in flight while their host is closed and reopened. */
static atomic_bool stress_stop;

static void *stress_calls(void *arg) {
  (void)arg;
  char e[256];
  while (!atomic_load(&stress_stop)) {
    hv_domain_info *list = NULL;
    int n = 0;
    int rc = hv_domain_list(H, "churn", &list, &n, e, sizeof(e));
    if (rc == HV_OK) free(list);
    hv_host_info info;
    hv_host_probe(H, "churn", &info, e, sizeof(e));
    hv_domain_start(H, "churn", UNKNOWN, e, sizeof(e));
  }
  return NULL;
}

static void test_concurrency(void **state) {
  (void)state;
  hv_host_info info;
  ASSERT_OK(hv_host_open(H, "churn", "test:///default", &info, err, sizeof(err)));
  atomic_store(&stress_stop, false);
  pthread_t threads[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&threads[i], NULL, stress_calls, NULL), 0);
  for (int i = 0; i < 40; i++) {
    hv_host_close(H, "churn");
    ASSERT_OK(
        hv_host_open(H, "churn", i % 2 ? node_uri : "test:///default", &info, err, sizeof(err)));
  }
  atomic_store(&stress_stop, true);
  for (int i = 0; i < 4; i++)
    pthread_join(threads[i], NULL);
  hv_host_close(H, "churn");
}

/* ---------------------------------------------------------------------- */
/* real qemu (opt-in): NC_HV_QEMU_URI=qemu:///system, or as an unprivileged
 * user qemu:///embed?root=DIR. A diskless domain, as NovaCron's first
 * real-hypervisor stage uses, snapshotted in each state. */

#define UQ "11111111-2222-4333-8444-5555555555a0"

static bool wait_state(const char *host, const char *uuid, int want) {
  for (int i = 0; i < 100; i++) {
    if (state_of(host, uuid) == want) return true;
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  return false;
}

static void test_qemu_diskless(void **state) {
  (void)state;
  const char *uri = getenv("NC_HV_QEMU_URI");
  if (!uri || !uri[0]) skip();
  hv_host_info info;
  ASSERT_OK(hv_host_open(H, "q", uri, &info, err, sizeof(err)));
  assert_string_equal(info.hypervisor_type, "QEMU");
  assert_true(strcmp(info.domain_type, "kvm") == 0 || strcmp(info.domain_type, "qemu") == 0);
  hv_domain_spec s, got;
  make_spec(&s, UQ, "nc-test-hv.diskless", "projects/p/vms/diskless");
  s.ndisks = 0;
  s.nnics = 0;
  s.memory_mib = s.max_memory_mib = 128;
  if (hv_domain_get(H, "q", UQ, NULL, NULL, err, sizeof(err)) == HV_OK)
    ASSERT_OK(hv_domain_undefine(H, "q", UQ, err, sizeof(err)));
  ASSERT_OK(hv_domain_define(H, "q", &s, err, sizeof(err)));

  /* shut off: the definition comes back, the domain stays off */
  ASSERT_OK(hv_snapshot_create(H, "q", UQ, "off", "shut off", false, err, sizeof(err)));
  ASSERT_OK(hv_domain_set_memory(H, "q", UQ, 96, false, err, sizeof(err)));
  ASSERT_OK(hv_snapshot_revert(H, "q", UQ, "off", err, sizeof(err)));
  ASSERT_OK(hv_domain_get(H, "q", UQ, &got, NULL, err, sizeof(err)));
  assert_int_equal(got.memory_mib, 128);
  assert_int_equal(state_of("q", UQ), HV_DOM_SHUTOFF);

  /* running: memory cannot be kept; without it the domain boots afresh */
  ASSERT_OK(hv_domain_start(H, "q", UQ, err, sizeof(err)));
  assert_true(wait_event("q", UQ, EV_STARTED, HV_DOM_RUNNING));
  hv_stats st;
  ASSERT_OK(hv_domain_stats(H, "q", UQ, &st, err, sizeof(err)));
  assert_true(st.cpu_time_ns > 0);
  assert_int_equal(st.vcpus_online, 1);
  ASSERT_RC(hv_snapshot_create(H, "q", UQ, "mem", NULL, true, err, sizeof(err)), HV_UNIMPLEMENTED);
  ASSERT_OK(hv_snapshot_create(H, "q", UQ, "run", "running", false, err, sizeof(err)));
  ASSERT_OK(hv_domain_set_memory(H, "q", UQ, 96, false, err, sizeof(err)));
  ASSERT_OK(hv_domain_destroy(H, "q", UQ, err, sizeof(err)));
  ASSERT_OK(hv_snapshot_revert(H, "q", UQ, "run", err, sizeof(err)));
  assert_int_equal(state_of("q", UQ), HV_DOM_RUNNING);
  ASSERT_OK(hv_domain_get(H, "q", UQ, &got, NULL, err, sizeof(err)));
  assert_int_equal(got.memory_mib, 128);

  /* paused */
  ASSERT_OK(hv_domain_suspend(H, "q", UQ, err, sizeof(err)));
  ASSERT_OK(hv_snapshot_create(H, "q", UQ, "paused", NULL, false, err, sizeof(err)));
  ASSERT_OK(hv_domain_resume(H, "q", UQ, err, sizeof(err)));
  ASSERT_OK(hv_snapshot_revert(H, "q", UQ, "paused", err, sizeof(err)));
  assert_int_equal(state_of("q", UQ), HV_DOM_PAUSED);
  ASSERT_OK(hv_snapshot_revert(H, "q", UQ, "off", err, sizeof(err)));
  assert_true(wait_state("q", UQ, HV_DOM_SHUTOFF));

  ASSERT_OK(hv_snapshot_delete(H, "q", UQ, "paused", false, err, sizeof(err)));
  ASSERT_OK(hv_snapshot_delete(H, "q", UQ, "off", true, err, sizeof(err)));
  ASSERT_RC(hv_snapshot_delete(H, "q", UQ, "run", false, err, sizeof(err)), HV_NOT_FOUND);

  ASSERT_OK(hv_domain_start(H, "q", UQ, err, sizeof(err)));
  ASSERT_OK(hv_snapshot_create(H, "q", UQ, "last", NULL, false, err, sizeof(err)));
  ASSERT_OK(hv_domain_undefine(H, "q", UQ, err, sizeof(err)));
  ASSERT_RC(hv_domain_get(H, "q", UQ, NULL, NULL, err, sizeof(err)), HV_NOT_FOUND);
  hv_host_close(H, "q");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_uri_check),     cmocka_unit_test(test_xml_roundtrip),
      cmocka_unit_test(test_hosts),         cmocka_unit_test(test_lifecycle),
      cmocka_unit_test(test_stats),         cmocka_unit_test(test_snapshots),
      cmocka_unit_test(test_migrate),       cmocka_unit_test(test_events),
      cmocka_unit_test(test_reconnect),     cmocka_unit_test(test_concurrency),
      cmocka_unit_test(test_qemu_diskless),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
