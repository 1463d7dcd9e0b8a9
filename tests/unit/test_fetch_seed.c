/* test_fetch_seed.c - the URL allow-list checks of util/fetch.c and the
 * NoCloud images of util/seed.c (read back byte by byte: ISO 9660 primary
 * volume descriptor, Rock Ridge names, file contents). The downloads
 * themselves run against a real HTTP server in e2e.storage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/fetch.h"
#include "util/seed.h"

static void normalize_ok(const char *in, const char *want) {
  char out[2100], why[200] = "";
  if (!nc_url_normalize(in, out, sizeof(out), why, sizeof(why)))
    fail_msg("%s refused: %s", in, why);
  assert_string_equal(out, want);
}

static void normalize_refused(const char *in, const char *part) {
  char out[2100], why[200] = "";
  if (nc_url_normalize(in, out, sizeof(out), why, sizeof(why))) fail_msg("%s accepted", in);
  if (!strstr(why, part)) fail_msg("%s: \"%s\" does not say %s", in, why, part);
}

static void test_normalize(void **state) {
  (void)state;
  normalize_ok("HTTPS://Images.Example.ORG/a/b.img", "https://images.example.org/a/b.img");
  normalize_ok("http://h/a/../b/./c.img", "http://h/b/c.img");
  normalize_ok("http://h", "http://h/");
  normalize_ok("http://h:8080/x?y=1", "http://h:8080/x?y=1");
  normalize_refused("ftp://h/x", "http");
  normalize_refused("file:///etc/passwd", "http");
  normalize_refused("http://user:pw@h/x", "credentials");
  normalize_refused("http://user@h/x", "credentials");
  normalize_refused("http://h/x#f", "fragment");
  normalize_refused("http://h/a b", "encoded");
  normalize_refused("h/x", "valid");
  /* encoded dots and slashes a web server might resolve after the check */
  normalize_refused("https://h/pub/%2e%2e/private/x", "encoded");
  normalize_refused("https://h/pub/.%2E/private/x", "encoded");
  normalize_refused("https://h/pub/%2E./x", "encoded");
  normalize_refused("https://h/pub%2f..%2fprivate", "encoded");
  normalize_refused("https://h/pub/..%5cprivate", "encoded");
  normalize_ok("https://h/pub/a%20b.img?x=%2e", "https://h/pub/a%20b.img?x=%2e");
  normalize_refused("", "required");
  char longurl[2200];
  memset(longurl, 'a', sizeof(longurl) - 1);
  memcpy(longurl, "http://h/", 9);
  longurl[sizeof(longurl) - 1] = '\0';
  normalize_refused(longurl, "2048");
}

static void test_under(void **state) {
  (void)state;
  assert_true(nc_url_under("https://a/img/x.img", "https://a/img/"));
  assert_true(nc_url_under("https://a/img/x.img", "https://a/img"));
  assert_true(nc_url_under("https://a/img", "https://a/img"));
  assert_true(nc_url_under("https://a/x.img?v=2", "https://a/x.img"));
  assert_false(nc_url_under("https://a/imgx/x.img", "https://a/img"));
  assert_false(nc_url_under("https://a.example.evil/x", "https://a.example"));
  assert_false(nc_url_under("https://a.example.evil/x", "https://a.example/"));
  assert_false(nc_url_under("http://a/img/x", "https://a/img/"));
  assert_false(nc_url_under("https://a/x", ""));
}

static const unsigned char *find(const unsigned char *hay, size_t n, const char *needle) {
  size_t m = strlen(needle);
  for (size_t i = 0; i + m <= n; i++)
    if (memcmp(hay + i, needle, m) == 0) return hay + i;
  return NULL;
}

static void test_seed_image(void **state) {
  (void)state;
  const char *ud = "#cloud-config\nhostname: seeded\n";
  unsigned char *img = NULL;
  size_t len = 0;
  char err[256];
  assert_int_equal(nc_seed_image(ud, strlen(ud), "instance-id: u-1\nlocal-hostname: vm1\n", &img,
                                 &len, err, sizeof(err)),
                   0);
  assert_true(len >= 32768 + 2048 && len % 2048 == 0);
  /* the primary volume descriptor at sector 16: type 1, "CD001", and the
   * volume id cloud-init looks for, space-padded to 32 bytes (ISO 9660
   * d-characters are upper case; cloud-init takes CIDATA as cidata, and
   * the Joliet descriptor carries "cidata") */
  const unsigned char *pvd = img + 16 * 2048;
  assert_int_equal(pvd[0], 1);
  assert_memory_equal(pvd + 1, "CD001", 5);
  char volid[33];
  memcpy(volid, pvd + 40, 32);
  volid[32] = '\0';
  for (int i = 31; i >= 0 && volid[i] == ' '; i--)
    volid[i] = '\0';
  assert_string_equal(volid, "CIDATA");
  /* Rock Ridge keeps the real names; the contents are stored as given */
  assert_non_null(find(img, len, "user-data"));
  assert_non_null(find(img, len, "meta-data"));
  assert_non_null(find(img, len, ud));
  assert_non_null(find(img, len, "instance-id: u-1\nlocal-hostname: vm1\n"));
  free(img);
  /* empty user data still makes an image with an empty file */
  assert_int_equal(nc_seed_image("", 0, "instance-id: u-2\n", &img, &len, err, sizeof(err)), 0);
  assert_non_null(find(img, len, "instance-id: u-2\n"));
  free(img);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_normalize),
      cmocka_unit_test(test_under),
      cmocka_unit_test(test_seed_image),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
