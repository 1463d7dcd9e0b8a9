/*
 * policy.h - the password policy applied when a password is set or changed.
 *
 * Checks length (in characters, UTF-8 aware), control characters, the
 * username, and a compiled-in list of the most common passwords plus an
 * optional caller-supplied list. A refusal comes with a human reason that
 * never contains the password.
 */
#ifndef NC_AUTH_POLICY_H
#define NC_AUTH_POLICY_H

#include <stdbool.h>
#include <stddef.h>

typedef struct auth_password_policy {
  size_t min_length; /* characters; default 12 */
  size_t max_length; /* bytes; default 1024 (bounds the KDF input) */
  /* Default true: refuse the username itself, or a password containing it when the
   * username has 3 or more characters. */
  bool reject_username;
  bool reject_common;       /* default true: the built-in common-password list */
  const char *const *extra; /* more forbidden passwords (case-insensitive), may be NULL */
  size_t n_extra;
} auth_password_policy;

/* Fills `p` with the defaults above. */
void auth_password_policy_default(auth_password_policy *p);

/* True if `password` satisfies `policy` (NULL: the defaults) for `username`
 * (may be NULL). On false, writes a reason to `why` (if `whylen` > 0). */
bool auth_password_check(const auth_password_policy *policy, const char *username,
                         const char *password, char *why, size_t whylen);

/* The built-in list, lower case. */
extern const char *const auth_common_passwords[];
extern const size_t auth_common_passwords_count;

#endif
