/*
 * policy.c - password policy checks (see policy.h).
 *
 * Comparisons against the username and the common list are ASCII
 * case-insensitive. Reasons name the rule that failed and never include the
 * password itself.
 */
#include "auth/policy.h"

#include "auth/auth.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

void auth_password_policy_default(auth_password_policy *p) {
  *p = (auth_password_policy){
      .min_length = 12,
      .max_length = 1024,
      .reject_username = true,
      .reject_common = true,
  };
}

/* Characters in a UTF-8 string: bytes that are not continuation bytes. */
static size_t utf8_length(const char *s) {
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if ((*p & 0xC0) != 0x80) n++;
  return n;
}

static bool contains_ci(const char *haystack, const char *needle) {
  size_t hn = strlen(haystack), nn = strlen(needle);
  if (nn == 0 || nn > hn) return false;
  for (size_t i = 0; i + nn <= hn; i++)
    if (strncasecmp(haystack + i, needle, nn) == 0) return true;
  return false;
}

static bool in_list(const char *const *list, size_t n, const char *password) {
  for (size_t i = 0; i < n; i++)
    if (list[i] && strcasecmp(list[i], password) == 0) return true;
  return false;
}

bool auth_password_check(const auth_password_policy *policy, const char *username,
                         const char *password, char *why, size_t whylen) {
  auth_password_policy defaults;
  if (!policy) {
    auth_password_policy_default(&defaults);
    policy = &defaults;
  }
  if (!password) return auth_refuse(why, whylen, "no password given");
  size_t bytes = strlen(password);
  if (bytes > policy->max_length)
    return auth_refuse(why, whylen, "password is too long (at most %zu bytes)", policy->max_length);
  if (utf8_length(password) < policy->min_length)
    return auth_refuse(why, whylen, "password is too short (at least %zu characters)",
                       policy->min_length);
  for (size_t i = 0; i < bytes; i++) {
    unsigned char c = (unsigned char)password[i];
    if (c < 0x20 || c == 0x7F)
      return auth_refuse(why, whylen, "password contains a control character");
  }
  if (policy->reject_username && username && *username) {
    if (strcasecmp(password, username) == 0)
      return auth_refuse(why, whylen, "password must not be the username");
    if (strlen(username) >= 3 && contains_ci(password, username))
      return auth_refuse(why, whylen, "password must not contain the username");
  }
  if ((policy->reject_common &&
       in_list(auth_common_passwords, auth_common_passwords_count, password)) ||
      in_list(policy->extra, policy->n_extra, password))
    return auth_refuse(why, whylen, "password is too common");
  return true;
}
