/*
 * raw_libvirt.c - the baseline for bench/compute.sh: start and power off a
 * domain with plain libvirt calls (virDomainCreate, virDomainDestroy), as
 * NovaCron's StartVm and StopVm(force) do underneath, and print the
 * latencies.
 *
 *   raw_libvirt URI DOMAIN-XML-FILE ITERATIONS
 *
 * Prints `raw start p50_ms=.. p99_ms=..` and `raw stop ...` lines. Built by
 * bench/compute.sh with cc and pkg-config libvirt.
 */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
  qsort(v, (size_t)n, sizeof(double), cmp);
  double sum = 0;
  for (int i = 0; i < n; i++)
    sum += v[i];
  printf("raw %s n=%d mean_ms=%.3f p50_ms=%.3f p99_ms=%.3f\n", what, n, sum / n, v[n / 2],
         v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1]);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: raw_libvirt URI DOMAIN-XML-FILE ITERATIONS\n");
    return 2;
  }
  int n = (int)strtol(argv[3], NULL, 10);
  if (n < 1 || n > 100000) return 2;
  FILE *f = fopen(argv[2], "r");
  if (!f) return perror(argv[2]), 1;
  static char xml[1 << 16];
  size_t len = fread(xml, 1, sizeof(xml) - 1, f);
  fclose(f);
  xml[len] = 0;
  virConnectPtr conn = virConnectOpen(argv[1]);
  if (!conn) return fprintf(stderr, "cannot connect to %s\n", argv[1]), 1;
  virDomainPtr dom = virDomainDefineXML(conn, xml);
  if (!dom) return fprintf(stderr, "define: %s\n", virGetLastErrorMessage()), 1;
  double *start = calloc((size_t)n, sizeof(double)), *stop = calloc((size_t)n, sizeof(double));
  int rc = 0;
  for (int i = 0; i < n && start && stop; i++) {
    double t0 = now_ms();
    if (virDomainCreate(dom) < 0) {
      fprintf(stderr, "start: %s\n", virGetLastErrorMessage());
      rc = 1;
      break;
    }
    start[i] = now_ms() - t0;
    t0 = now_ms();
    if (virDomainDestroy(dom) < 0) {
      fprintf(stderr, "destroy: %s\n", virGetLastErrorMessage());
      rc = 1;
      break;
    }
    stop[i] = now_ms() - t0;
  }
  if (!rc) {
    report("start", start, n);
    report("stop", stop, n);
  }
  virDomainUndefine(dom);
  virDomainFree(dom);
  virConnectClose(conn);
  free(start);
  free(stop);
  return rc;
}
