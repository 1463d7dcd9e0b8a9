/* test_policy.c - password policy: length, control characters, username, common list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <string.h>

#include "auth/policy.h"

static void expect_refused(const auth_password_policy *p, const char *user, const char *pw,
                           const char *reason_part) {
  char why[128] = "";
  assert_false(auth_password_check(p, user, pw, why, sizeof why));
  assert_non_null(strstr(why, reason_part));
  /* The reason never repeats the password. */
  if (pw && strlen(pw) >= 4) assert_null(strstr(why, pw));
}

static void accepts_good_passwords(void **state) {
  (void)state;
  char why[128];
  assert_true(auth_password_check(NULL, "alice", "violet-kettle-orbit-42", why, sizeof why));
  assert_true(auth_password_check(NULL, NULL, "violet-kettle-orbit-42", why, sizeof why));
  /* Twelve characters, some of them multi-byte. */
  assert_true(auth_password_check(NULL, "bob", "\xc3\xa9t\xc3\xa9-dans-l'air", why, sizeof why));
}

static void length_limits(void **state) {
  (void)state;
  expect_refused(NULL, "alice", "short-pw", "too short");
  expect_refused(NULL, "alice", "elevenchars", "too short");
  char why[128];
  assert_true(auth_password_check(NULL, "alice", "twelve-chars", why, sizeof why));
  /* Twelve bytes but only six characters. */
  expect_refused(NULL, "alice", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", "too short");
  char big[1100];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  for (size_t i = 0; i < sizeof big - 1; i += 7)
    big[i] = (char)('a' + i % 26);
  expect_refused(NULL, "alice", big, "too long");
  big[1024] = '\0';
  assert_true(auth_password_check(NULL, "alice", big, why, sizeof why));

  auth_password_policy p;
  auth_password_policy_default(&p);
  assert_int_equal(p.min_length, 12);
  assert_int_equal(p.max_length, 1024);
  p.min_length = 20;
  expect_refused(&p, "alice", "violet-kettle-orbit", "at least 20");
  expect_refused(NULL, "alice", NULL, "no password");
}

static void control_characters(void **state) {
  (void)state;
  expect_refused(NULL, "alice", "violet\tkettle-orbit", "control character");
  expect_refused(NULL, "alice", "violet-kettle\norbit", "control character");
  expect_refused(NULL, "alice", "violet-kettle\x7forbit", "control character");
}

static void username_rejected(void **state) {
  (void)state;
  expect_refused(NULL, "administrator-jo", "Administrator-Jo", "the username");
  expect_refused(NULL, "margaret", "xxMARGARETxx2024", "contain the username");
  char why[128];
  /* Very short usernames only block equality, not containment. */
  assert_true(auth_password_check(NULL, "al", "always-alert-albatross", why, sizeof why));
  auth_password_policy p;
  auth_password_policy_default(&p);
  p.reject_username = false;
  assert_true(auth_password_check(&p, "margaret", "xxMARGARETxx2024", why, sizeof why));
}

static void common_rejected(void **state) {
  (void)state;
  assert_true(auth_common_passwords_count >= 100);
  expect_refused(NULL, "alice", "password1234", "too common");
  expect_refused(NULL, "alice", "PassWord1234", "too common");
  expect_refused(NULL, "alice", "QWERTYUIOP123", "too common");
  expect_refused(NULL, "alice", "123456789012", "too common");
  /* With a lowered minimum, the classic short ones are refused by the list. */
  auth_password_policy p;
  auth_password_policy_default(&p);
  p.min_length = 4;
  expect_refused(&p, "alice", "letmein", "too common");
  expect_refused(&p, "alice", "Dragon", "too common");
  /* Every entry is refused. */
  for (size_t i = 0; i < auth_common_passwords_count; i++)
    assert_false(auth_password_check(&p, NULL, auth_common_passwords[i], NULL, 0));
  /* A caller-supplied list. */
  static const char *const extra[] = {"Acme-Corp-2024!"};
  p.extra = extra;
  p.n_extra = 1;
  expect_refused(&p, "alice", "acme-corp-2024!", "too common");
  p.reject_common = false;
  char why[128];
  assert_true(auth_password_check(&p, "alice", "letmein", why, sizeof why));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(accepts_good_passwords), cmocka_unit_test(length_limits),
      cmocka_unit_test(control_characters),     cmocka_unit_test(username_rejected),
      cmocka_unit_test(common_rejected),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
