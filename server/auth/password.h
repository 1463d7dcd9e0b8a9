/*
 * password.h - password hashing with scrypt (OpenSSL 3 EVP_KDF "SCRYPT").
 *
 * A hash is a self-describing string
 *     $scrypt$ln=15,r=8,p=1$<salt>$<hash>
 * (salt and hash in standard base64 without padding, 16-byte random salt,
 * 32-byte derived key), so the cost parameters travel with each hash and can
 * be raised later: verification reports when a stored hash was made with
 * weaker parameters than the current ones, and the caller re-hashes the
 * password it has just verified. Comparison is constant-time.
 */
#ifndef NC_AUTH_PASSWORD_H
#define NC_AUTH_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/auth.h"

/* scrypt cost: N = 2^ln, block size r, parallelism p. */
typedef struct auth_kdf_params {
  unsigned ln;
  unsigned r;
  unsigned p;
} auth_kdf_params;

/* The production default: ln=15 (N=32768), r=8, p=1 (32 MiB per hash). */
extern const auth_kdf_params auth_kdf_default;

/* Accepted ranges (also applied to parsed hashes, so a stored string cannot
 * ask for unbounded memory): ln 1..20, r 1..32, p 1..16, memory <= 1 GiB. */
bool auth_kdf_params_valid(const auth_kdf_params *p);

/* Room for any hash string this module produces, with its NUL. */
#define AUTH_PASSWORD_HASH_MAX 128

/* Hashes `password` with a fresh random salt and `p` (NULL: auth_kdf_default)
 * into `out`. AUTH_ERR_INVALID for bad parameters or a NULL password,
 * AUTH_ERR_SPACE if `outlen` is too small, AUTH_ERR_CRYPTO if OpenSSL fails. */
auth_status auth_password_hash(const char *password, const auth_kdf_params *p, char *out,
                               size_t outlen);

/* Checks `password` against `encoded`. On AUTH_OK, `*ok` says whether it
 * matched, and `*needs_rehash` (may be NULL) whether any cost parameter of
 * the stored hash is below `current` (NULL: auth_kdf_default) or its salt is
 * shorter than 16 bytes - meaningful only when `*ok`. Parsed strings accept
 * salts of 8-64 bytes and exactly a 32-byte key. A malformed or out-of-range `encoded` gives
 * AUTH_ERR_INVALID and `*ok` false; it never crashes. */
auth_status auth_password_verify(const char *password, const char *encoded,
                                 const auth_kdf_params *current, bool *ok, bool *needs_rehash);

/* Parses only the parameters of `encoded`. AUTH_ERR_INVALID if malformed. */
auth_status auth_password_params(const char *encoded, auth_kdf_params *out);

#endif
