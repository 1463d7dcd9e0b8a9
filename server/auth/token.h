/*
 * token.h - signed access tokens (JWS compact JWTs) with libjwt.
 *
 * A keyring holds the keys the server trusts, each with a key id ("kid"),
 * one pinned algorithm (HS256, RS256 or ES256) and an optional not_after
 * after which a retired key is no longer accepted. One key is the current
 * signing key. Verification decodes the token header itself first and
 * requires a known kid whose algorithm equals the header's "alg" exactly -
 * so "none", HS256-with-an-RSA-public-key (key confusion) and any other
 * mismatch are refused before libjwt sees the token - then lets libjwt check
 * the signature with that key, then checks exp (required), nbf, iat, iss,
 * aud and sub.
 *
 * A keyring is built once at startup and is read-only afterwards: concurrent
 * auth_token_issue/auth_token_verify calls on it are safe; adding keys is not.
 */
#ifndef NC_AUTH_TOKEN_H
#define NC_AUTH_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"

typedef enum auth_alg {
  AUTH_ALG_HS256 = 0,
  AUTH_ALG_RS256 = 1,
  AUTH_ALG_ES256 = 2,
} auth_alg;

/* "HS256", "RS256", "ES256". */
const char *auth_alg_name(auth_alg alg);

/* A key to add. HS256 takes `secret` bytes (held to the same rules as
 * auth_secret_check);
 * RS256 (RSA >= 2048 bits) and ES256 (P-256) take a PEM `private_pem`
 * (needed to sign; the public key is derived from it) and/or a PEM
 * `public_pem` (enough to verify). `not_after` (Unix seconds, 0 = none) is
 * when a retired key stops being accepted. */
typedef struct auth_key_spec {
  const char *kid;
  auth_alg alg;
  const unsigned char *secret;
  size_t secret_len;
  const char *private_pem;
  const char *public_pem;
  int64_t not_after;
} auth_key_spec;

typedef struct auth_keyring auth_keyring;

auth_status auth_keyring_new(auth_keyring **out);
/* Wipes and frees all key material. NULL is allowed. */
void auth_keyring_free(auth_keyring *kr);
/* Copies `spec` into the ring. AUTH_ERR_INVALID (reason in `why`) for a
 * duplicate or malformed kid, a weak secret, or a key of the wrong type. */
auth_status auth_keyring_add(auth_keyring *kr, const auth_key_spec *spec, char *why, size_t whylen);
/* Makes `kid` the signing key; it must have private material (or a secret). */
auth_status auth_keyring_set_signing(auth_keyring *kr, const char *kid);
/* Sets `kid`'s not_after, e.g. when rotating it out. */
auth_status auth_keyring_retire(auth_keyring *kr, const char *kid, int64_t not_after);

/* One extra string claim such as "sid" or "scope". */
typedef struct auth_claim_kv {
  const char *name;
  const char *value;
} auth_claim_kv;

typedef struct auth_token_request {
  const char *sub; /* required */
  const char *iss; /* required */
  const char *aud; /* required */
  int64_t ttl_s;   /* > 0 */
  int64_t now;     /* issue time, Unix seconds; 0 = the current time */
  const auth_claim_kv *extra;
  size_t n_extra; /* names must not be registered claims (iss, sub, aud, exp, nbf, iat, jti) */
} auth_token_request;

/* Signs a token with the signing key: header alg, typ, kid; claims iss, sub,
 * aud, iat = nbf = now, exp = now + ttl_s, jti (128 random bits), extras.
 * `*out` is malloc'ed; free it with free(). */
auth_status auth_token_issue(const auth_keyring *kr, const auth_token_request *req, char **out);

/* What a verified token says. Strings are owned by the struct. */
typedef struct auth_claims {
  char *sub;
  char *iss;
  char *jti; /* NULL if the token has none */
  char *kid;
  int64_t iat; /* 0 if absent */
  int64_t nbf; /* 0 if absent */
  int64_t exp;
  void *payload_; /* private */
} auth_claims;

/* Verifies `token` at time `now` (Unix seconds) with `leeway_s` seconds of
 * clock skew allowed. AUTH_OK fills `*out` (release with auth_claims_free);
 * AUTH_ERR_REJECTED or AUTH_ERR_INVALID write a reason to `why`. Reasons
 * describe the failure, never the token or a key. */
auth_status auth_token_verify(const auth_keyring *kr, const char *token, const char *expected_iss,
                              const char *expected_aud, int64_t now, int64_t leeway_s,
                              auth_claims *out, char *why, size_t whylen);

/* A string claim of a verified token (e.g. "sid", "scope"), or NULL. */
const char *auth_claims_get(const auth_claims *c, const char *name);
void auth_claims_free(auth_claims *c);

/* Whether `secret` may sign tokens: refuses NULL/empty, fewer than 32 bytes,
 * well-known defaults and placeholders (changeme_in_production,
 * your-256-bit-secret, ...), and low-variety strings (one repeated
 * character, short repeated patterns). On false, writes a reason to `why`.
 * The server refuses to start when this fails. */
bool auth_secret_check(const char *secret, char *why, size_t whylen);

#endif
