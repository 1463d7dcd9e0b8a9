/*
 * raw_storage.c - the baselines for bench/storage.sh: with plain libvirt
 * calls, in its own process, what NovaCron's CreateVolume, AttachVolume
 * and CreateNetwork do underneath, timed per call.
 *
 *   raw_storage create  URI POOL COUNT SIZE_BYTES
 *       COUNT x virStorageVolCreateXML of a qcow2 volume (allocation 0, as
 *       NovaCron asks for) in the running pool POOL; the volumes are deleted
 *       afterwards (not timed).
 *   raw_storage attach  URI POOL COUNT SIZE_BYTES DOMAIN-XML-FILE PER_VM SETTLE_S
 *       defines and starts the domain (its <name> gets a number appended)
 *       and waits SETTLE_S seconds (a fresh guest's firmware keeps a CPU
 *       busy for its first ~3 s), then COUNT times: a fresh qcow2 volume
 *       (not timed), and virDomainAttachDeviceFlags(LIVE|CONFIG) of it as
 *       the next virtio disk vda, vdb, ... (timed). After PER_VM disks the next domain is
 *       started (not timed): a guest without an OS does not release
 *       hot-plugged disks, and NovaCron allows 16 disks per VM. At the end
 *       every domain is destroyed and undefined and every volume deleted.
 *   raw_storage network URI COUNT PREFIX NET_BASE
 *       COUNT (at most 255) x virNetworkDefineXML + virNetworkCreate of an
 *       isolated network PREFIX-<i> on bridge rstbr<i> with the subnet
 *       NET_BASE.<i>.0/24 (NET_BASE: two octets, e.g. 10.202) and a DHCP
 *       range .100-.200, shaped like NovaCron's (server/hv/xml.c); all are
 *       destroyed and undefined afterwards.
 *
 * Prints one `raw <what> op=<i> ms=<ms>` line per timed call, then
 * `raw <what> n=.. mean_ms=.. p50_ms=.. p99_ms=.. max_ms=..`. Built by
 * bench/storage.sh with cc and pkg-config libvirt.
 */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, int n) {
  if (n < 1) return;
  qsort(v, (size_t)n, sizeof(double), cmp);
  double sum = 0;
  for (int i = 0; i < n; i++)
    sum += v[i];
  printf("raw %s n=%d mean_ms=%.3f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n", what, n, sum / n,
         v[n / 2], v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1], v[n - 1]);
  fflush(stdout);
}

static void sample(const char *what, int i, double ms) {
  printf("raw %s op=%d ms=%.3f\n", what, i, ms);
}

static int fail(const char *what) {
  fprintf(stderr, "raw_storage: %s: %s\n", what, virGetLastErrorMessage());
  return 1;
}

static char *vol_xml(const char *name, long long size) {
  static char xml[1024];
  snprintf(xml, sizeof(xml),
           "<volume><name>%s</name><capacity unit='bytes'>%lld</capacity>"
           "<allocation unit='bytes'>0</allocation><target><format type='qcow2'/></target>"
           "</volume>",
           name, size);
  return xml;
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return perror(path), NULL;
  static char buf[1 << 16];
  size_t len = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[len] = 0;
  return buf;
}

/* The domain XML with "-<k>" appended to its <name>. */
static char *domain_k(const char *xml, int k) {
  static char out[(1 << 16) + 64];
  const char *end = strstr(xml, "</name>");
  if (!end) return NULL;
  snprintf(out, sizeof(out), "%.*s-%d%s", (int)(end - xml), xml, k, end);
  return out;
}

static int create_vols(virStoragePoolPtr pool, int n, long long size) {
  virStorageVolPtr *vols = calloc((size_t)n, sizeof(*vols));
  double *ms = calloc((size_t)n, sizeof(double));
  int rc = 0, made = 0;
  for (int i = 0; i < n && vols && ms; i++) {
    char name[64];
    snprintf(name, sizeof(name), "raw-st-%d-%d", (int)getpid(), i);
    double t0 = now_ms();
    vols[i] = virStorageVolCreateXML(pool, vol_xml(name, size), 0);
    ms[i] = now_ms() - t0;
    if (!vols[i]) {
      rc = fail("virStorageVolCreateXML");
      break;
    }
    made++;
    sample("volume-create", i, ms[i]);
  }
  if (!rc) report("volume-create", ms, n);
  for (int i = 0; i < made; i++) {
    if (virStorageVolDelete(vols[i], 0) < 0) rc = fail("virStorageVolDelete");
    virStorageVolFree(vols[i]);
  }
  free(vols);
  free(ms);
  return rc;
}

static int attach(virConnectPtr conn, virStoragePoolPtr pool, int n, long long size,
                  const char *xml, int per_vm, int settle_s) {
  int ndoms = (n + per_vm - 1) / per_vm;
  virStorageVolPtr *vols = calloc((size_t)n, sizeof(*vols));
  virDomainPtr *doms = calloc((size_t)ndoms, sizeof(*doms));
  double *ms = calloc((size_t)n, sizeof(double));
  int rc = 0, made = 0, started = 0;
  for (int i = 0; i < n && vols && doms && ms; i++) {
    int k = i / per_vm, slot = i % per_vm;
    if (slot == 0) {
      char *dx = domain_k(xml, k);
      if (!dx || !(doms[k] = virDomainDefineXML(conn, dx))) {
        rc = dx ? fail("virDomainDefineXML") : (fprintf(stderr, "no <name> in the XML\n"), 1);
        break;
      }
      started = k + 1;
      if (virDomainCreate(doms[k]) < 0) {
        rc = fail("virDomainCreate");
        break;
      }
      sleep((unsigned)settle_s);
    }
    char name[64];
    snprintf(name, sizeof(name), "raw-st-%d-a%d", (int)getpid(), i);
    if (!(vols[i] = virStorageVolCreateXML(pool, vol_xml(name, size), 0))) {
      rc = fail("virStorageVolCreateXML");
      break;
    }
    made++;
    char *path = virStorageVolGetPath(vols[i]);
    if (!path) {
      rc = fail("virStorageVolGetPath");
      break;
    }
    char disk[1024];
    /* vda..vdz, then vdaa.. (only with PER_VM > 26) */
    char dev[8];
    if (slot < 26)
      snprintf(dev, sizeof(dev), "vd%c", 'a' + slot);
    else
      snprintf(dev, sizeof(dev), "vd%c%c", 'a' + slot / 26 - 1, 'a' + slot % 26);
    snprintf(disk, sizeof(disk),
             "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
             "<source file='%s'/><target dev='%s' bus='virtio'/></disk>",
             path, dev);
    free(path);
    double t0 = now_ms();
    int r = virDomainAttachDeviceFlags(doms[k], disk,
                                       VIR_DOMAIN_AFFECT_LIVE | VIR_DOMAIN_AFFECT_CONFIG);
    ms[i] = now_ms() - t0;
    if (r < 0) {
      rc = fail("virDomainAttachDeviceFlags");
      break;
    }
    sample("volume-attach", i, ms[i]);
  }
  if (!rc) report("volume-attach", ms, n);
  for (int k = 0; k < started; k++) {
    if (!doms[k]) continue;
    if (virDomainIsActive(doms[k]) == 1 && virDomainDestroy(doms[k]) < 0)
      rc = fail("virDomainDestroy");
    if (virDomainUndefine(doms[k]) < 0) rc = fail("virDomainUndefine");
    virDomainFree(doms[k]);
  }
  for (int i = 0; i < made; i++) {
    if (virStorageVolDelete(vols[i], 0) < 0) rc = fail("virStorageVolDelete");
    virStorageVolFree(vols[i]);
  }
  free(vols);
  free(doms);
  free(ms);
  return rc;
}

static int networks(virConnectPtr conn, int n, const char *prefix, const char *base) {
  virNetworkPtr *nets = calloc((size_t)n, sizeof(*nets));
  double *ms = calloc((size_t)n, sizeof(double));
  int rc = 0, made = 0;
  for (int i = 0; i < n && nets && ms; i++) {
    char xml[1024];
    /* shaped like hv_network_xml's isolated network: no <forward>, an
     * STP bridge with delay 0, the gateway .1 and a DHCP range */
    snprintf(xml, sizeof(xml),
             "<network><name>%s-%d</name><bridge name='rstbr%d' stp='on' delay='0'/>"
             "<ip address='%s.%d.1' prefix='24'><dhcp><range start='%s.%d.100' "
             "end='%s.%d.200'/></dhcp></ip></network>",
             prefix, i, i, base, i, base, i, base, i);
    double t0 = now_ms();
    nets[i] = virNetworkDefineXML(conn, xml);
    if (!nets[i]) {
      rc = fail("virNetworkDefineXML");
      break;
    }
    made++;
    int r = virNetworkCreate(nets[i]);
    ms[i] = now_ms() - t0;
    if (r < 0) {
      rc = fail("virNetworkCreate");
      break;
    }
    sample("network-create", i, ms[i]);
  }
  if (!rc) report("network-create", ms, n);
  for (int i = 0; i < made; i++) {
    if (virNetworkIsActive(nets[i]) == 1 && virNetworkDestroy(nets[i]) < 0)
      rc = fail("virNetworkDestroy");
    if (virNetworkUndefine(nets[i]) < 0) rc = fail("virNetworkUndefine");
    virNetworkFree(nets[i]);
  }
  free(nets);
  free(ms);
  return rc;
}

static void usage(void) {
  fprintf(stderr,
          "usage: raw_storage create URI POOL COUNT SIZE_BYTES\n"
          "       raw_storage attach URI POOL COUNT SIZE_BYTES DOMAIN-XML-FILE PER_VM "
          "SETTLE_S\n"
          "       raw_storage network URI COUNT PREFIX NET_BASE\n");
}

int main(int argc, char **argv) {
  if (argc < 2) return usage(), 2;
  const char *mode = argv[1];
  bool is_create = strcmp(mode, "create") == 0, is_attach = strcmp(mode, "attach") == 0,
       is_net = strcmp(mode, "network") == 0;
  if (!((is_create && argc == 6) || (is_attach && argc == 9) || (is_net && argc == 6)))
    return usage(), 2;
  int n = (int)strtol(argv[is_net ? 3 : 4], NULL, 10);
  if (n < 1 || n > 100000 || (is_net && n > 255)) return usage(), 2;
  virConnectPtr conn = virConnectOpen(argv[2]);
  if (!conn) return fprintf(stderr, "cannot connect to %s\n", argv[2]), 1;
  int rc;
  if (is_net) {
    rc = networks(conn, n, argv[4], argv[5]);
  } else {
    long long size = strtoll(argv[5], NULL, 10);
    virStoragePoolPtr pool = virStoragePoolLookupByName(conn, argv[3]);
    if (!pool) {
      rc = fail("virStoragePoolLookupByName");
    } else if (is_create) {
      rc = create_vols(pool, n, size);
    } else {
      int per_vm = (int)strtol(argv[7], NULL, 10), settle = (int)strtol(argv[8], NULL, 10);
      const char *xml = read_file(argv[6]);
      rc = !xml || per_vm < 1 || per_vm > 64 || settle < 0 || settle > 600
               ? 2
               : attach(conn, pool, n, size, xml, per_vm, settle);
    }
    if (pool) virStoragePoolFree(pool);
  }
  virConnectClose(conn);
  return rc;
}
