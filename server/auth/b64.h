/*
 * b64.h - base64 helpers for the auth module, built on OpenSSL's
 * EVP_EncodeBlock/EVP_DecodeBlock (no hand-written codec).
 *
 * Two alphabets: standard without padding (the PHC-style password hash
 * strings) and base64url without padding (JWT segments). Decoding is strict:
 * it rejects characters outside the alphabet, impossible lengths and
 * non-canonical trailing bits, so one byte string has exactly one encoding.
 * Internal to server/auth; not part of its API.
 */
#ifndef NC_AUTH_B64_H
#define NC_AUTH_B64_H

#include <stdbool.h>
#include <stddef.h>

/* Encodes `n` bytes into `out` (NUL-terminated, no padding). False if `outlen` is too small. */
bool auth_b64_encode(const unsigned char *in, size_t n, bool url, char *out, size_t outlen);
/* Decodes `inlen` characters; writes the byte count to `*n`. False on malformed input or if
 * `outlen` is too small. */
bool auth_b64_decode(const char *in, size_t inlen, bool url, unsigned char *out, size_t outlen,
                     size_t *n);
/* Bytes needed to decode `inlen` characters. */
static inline size_t auth_b64_decoded_max(size_t inlen) { return (inlen + 3) / 4 * 3 + 3; }

#endif
