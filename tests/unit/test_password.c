/* test_password.c - scrypt hash strings: round trip, salts, tampering, parsing, rehash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "auth/password.h"

/* Cheap parameters so the suite stays fast; one test uses the defaults. */
static const auth_kdf_params fast = {.ln = 4, .r = 8, .p = 1};

static void hash_fast(const char *pw, char *out) {
  assert_int_equal(auth_password_hash(pw, &fast, out, AUTH_PASSWORD_HASH_MAX), AUTH_OK);
}

static void verify_expect(const char *pw, const char *enc, auth_status want_st, bool want_ok) {
  bool ok = true, rehash = true;
  assert_int_equal(auth_password_verify(pw, enc, &fast, &ok, &rehash), want_st);
  assert_int_equal(ok, want_ok);
}

static void round_trip(void **state) {
  (void)state;
  char h[AUTH_PASSWORD_HASH_MAX];
  hash_fast("correct horse battery", h);
  assert_true(strncmp(h, "$scrypt$ln=4,r=8,p=1$", 21) == 0);
  bool ok = false, rehash = true;
  assert_int_equal(auth_password_verify("correct horse battery", h, &fast, &ok, &rehash), AUTH_OK);
  assert_true(ok);
  assert_false(rehash);
  verify_expect("correct horse batterY", h, AUTH_OK, false);
  verify_expect("", h, AUTH_OK, false);
}

static void default_params(void **state) {
  (void)state;
  char h[AUTH_PASSWORD_HASH_MAX];
  assert_int_equal(auth_password_hash("default cost password", NULL, h, sizeof h), AUTH_OK);
  assert_true(strncmp(h, "$scrypt$ln=15,r=8,p=1$", 22) == 0);
  bool ok = false, rehash = true;
  assert_int_equal(auth_password_verify("default cost password", h, NULL, &ok, &rehash), AUTH_OK);
  assert_true(ok);
  assert_false(rehash);
}

static void salts_differ(void **state) {
  (void)state;
  char a[AUTH_PASSWORD_HASH_MAX], b[AUTH_PASSWORD_HASH_MAX];
  hash_fast("same password twice", a);
  hash_fast("same password twice", b);
  assert_string_not_equal(a, b);
  /* Salt fields differ, not just the hash. */
  const char *sa = strrchr(a, '$'), *sb = strrchr(b, '$');
  assert_false(strncmp(a, b, (size_t)(sa - a)) == 0 && strncmp(a, b, (size_t)(sb - b)) == 0);
  verify_expect("same password twice", a, AUTH_OK, true);
  verify_expect("same password twice", b, AUTH_OK, true);
}

/* Flips one base64 character at `pos` to another valid one. */
static void flip(char *s, size_t pos) { s[pos] = s[pos] == 'A' ? 'B' : 'A'; }

static void tampering_detected(void **state) {
  (void)state;
  char h[AUTH_PASSWORD_HASH_MAX], t[AUTH_PASSWORD_HASH_MAX];
  hash_fast("tamper with me please", h);
  size_t salt_at = strlen("$scrypt$ln=4,r=8,p=1$");
  size_t hash_at = (size_t)(strrchr(h, '$') - h) + 1;

  memcpy(t, h, sizeof t);
  flip(t, hash_at);
  verify_expect("tamper with me please", t, AUTH_OK, false);

  memcpy(t, h, sizeof t);
  flip(t, salt_at);
  verify_expect("tamper with me please", t, AUTH_OK, false);

  /* Different parameters derive a different key. */
  memcpy(t, h, sizeof t);
  t[strlen("$scrypt$ln=")] = '5';
  verify_expect("tamper with me please", t, AUTH_OK, false);
  memcpy(t, h, sizeof t);
  t[strlen("$scrypt$ln=4,r=8,p=")] = '2';
  verify_expect("tamper with me please", t, AUTH_OK, false);

  /* A truncated key is malformed, not a shorter key (scrypt's output for a
   * shorter length is a prefix of the longer one). */
  memcpy(t, h, sizeof t);
  t[strlen(t) - 3] = '\0'; /* 40 characters: a canonical 30-byte key */
  verify_expect("tamper with me please", t, AUTH_ERR_INVALID, false);
}

static void malformed_rejected(void **state) {
  (void)state;
  char h[AUTH_PASSWORD_HASH_MAX];
  hash_fast("a fine password here", h);
  const char *salt_hash = strchr(h + strlen("$scrypt$"), '$'); /* "$<salt>$<hash>" */
  char buf[256];
  const char *bad[] = {
      "",
      "$",
      "$scrypt$",
      "$scrypt$ln=4,r=8,p=1$",
      "$scrypt$ln=4,r=8,p=1$$",
      "$scrypt$ln=4,r=8,p=1$AAAA",
      "$scrypt$ln=4,r=8,p=1$!!!!!!!!!!!$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
      "plaintext-password",
      "$scrypt$ln=4,r=8$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      "$scrypt$r=8,ln=4,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      "$scrypt$ln=04,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      "$scrypt$ln=-4,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      "$scrypt$ln=0,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      "$scrypt$ln=99,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      "$scrypt$ln=20,r=32,p=16$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      "$scrypt$ln=4294967300,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$"
      "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      /* Short salt (3 bytes) and padded base64. */
      "$scrypt$ln=4,r=8,p=1$AAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      "$scrypt$ln=4,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      /* Non-canonical trailing bits in the salt ('B' instead of 'A' at the end). */
      "$scrypt$ln=4,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAB$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    bool ok = true;
    assert_int_equal(auth_password_verify("a fine password here", bad[i], &fast, &ok, NULL),
                     AUTH_ERR_INVALID);
    assert_false(ok);
  }
  /* Trailing garbage and embedded extra fields. */
  snprintf(buf, sizeof buf, "%s$", h);
  verify_expect("a fine password here", buf, AUTH_ERR_INVALID, false);
  snprintf(buf, sizeof buf, "%s ", h);
  verify_expect("a fine password here", buf, AUTH_ERR_INVALID, false);
  snprintf(buf, sizeof buf, "$scrypt$ln=4,r=8,p=1,x=1%s", salt_hash);
  verify_expect("a fine password here", buf, AUTH_ERR_INVALID, false);
  bool ok = true;
  assert_int_equal(auth_password_verify("x", NULL, &fast, &ok, NULL), AUTH_ERR_INVALID);
  assert_int_equal(auth_password_verify(NULL, h, &fast, &ok, NULL), AUTH_ERR_INVALID);
  assert_false(ok);
}

static void params_and_rehash(void **state) {
  (void)state;
  char h[AUTH_PASSWORD_HASH_MAX];
  hash_fast("raise the cost later", h);
  auth_kdf_params got;
  assert_int_equal(auth_password_params(h, &got), AUTH_OK);
  assert_int_equal(got.ln, 4);
  assert_int_equal(got.r, 8);
  assert_int_equal(got.p, 1);
  assert_int_equal(auth_password_params("$scrypt$nope", &got), AUTH_ERR_INVALID);

  const auth_kdf_params stronger[] = {{5, 8, 1}, {4, 9, 1}, {4, 8, 2}};
  for (size_t i = 0; i < 3; i++) {
    bool ok = false, rehash = false;
    assert_int_equal(auth_password_verify("raise the cost later", h, &stronger[i], &ok, &rehash),
                     AUTH_OK);
    assert_true(ok);
    assert_true(rehash);
  }
  const auth_kdf_params weaker = {3, 4, 1};
  bool ok = false, rehash = true;
  assert_int_equal(auth_password_verify("raise the cost later", h, &weaker, &ok, &rehash), AUTH_OK);
  assert_true(ok);
  assert_false(rehash);
  /* Against the production default, fast hashes need re-hashing. */
  assert_int_equal(auth_password_verify("raise the cost later", h, NULL, &ok, &rehash), AUTH_OK);
  assert_true(rehash);
}

static void bad_arguments(void **state) {
  (void)state;
  char h[AUTH_PASSWORD_HASH_MAX];
  const auth_kdf_params zero = {0, 8, 1}, huge = {20, 32, 16};
  assert_int_equal(auth_password_hash("pw", &zero, h, sizeof h), AUTH_ERR_INVALID);
  assert_int_equal(auth_password_hash("pw", &huge, h, sizeof h), AUTH_ERR_INVALID);
  assert_int_equal(auth_password_hash(NULL, &fast, h, sizeof h), AUTH_ERR_INVALID);
  assert_int_equal(auth_password_hash("pw", &fast, h, 20), AUTH_ERR_SPACE);
  assert_true(auth_kdf_params_valid(&auth_kdf_default));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(round_trip),         cmocka_unit_test(default_params),
      cmocka_unit_test(salts_differ),       cmocka_unit_test(tampering_detected),
      cmocka_unit_test(malformed_rejected), cmocka_unit_test(params_and_rehash),
      cmocka_unit_test(bad_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
