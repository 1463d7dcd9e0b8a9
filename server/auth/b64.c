/*
 * b64.c - strict unpadded base64 and base64url over OpenSSL's block codec.
 *
 * OpenSSL's EVP_DecodeBlock wants padded standard base64 and returns a
 * length that counts the padding as zero bytes; this file adds the padding,
 * maps the url alphabet, subtracts the padding, and re-encodes the result to
 * refuse non-canonical input.
 */
#include "auth/b64.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

bool auth_b64_encode(const unsigned char *in, size_t n, bool url, char *out, size_t outlen) {
  size_t padded = (n + 2) / 3 * 4;
  if (n > (size_t)0x3fffffff || outlen < padded + 1) return false;
  int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
  if (len < 0 || (size_t)len != padded) return false;
  while (len > 0 && out[len - 1] == '=')
    len--;
  out[len] = '\0';
  if (url) {
    for (int i = 0; i < len; i++) {
      if (out[i] == '+') out[i] = '-';
      if (out[i] == '/') out[i] = '_';
    }
  }
  return true;
}

static bool in_alphabet(char c, bool url) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) return true;
  return url ? (c == '-' || c == '_') : (c == '+' || c == '/');
}

bool auth_b64_decode(const char *in, size_t inlen, bool url, unsigned char *out, size_t outlen,
                     size_t *n) {
  if (inlen % 4 == 1 || inlen > (size_t)0x3fffffff) return false;
  size_t pad = (4 - inlen % 4) % 4;
  size_t padded = inlen + pad;
  if (outlen < padded / 4 * 3) return false;
  char *buf = malloc(padded + 1);
  char *check = malloc(padded + 1);
  bool ok = false;
  if (!buf || !check) goto cleanup;
  for (size_t i = 0; i < inlen; i++) {
    char c = in[i];
    if (!in_alphabet(c, url)) goto cleanup;
    if (url && c == '-') c = '+';
    if (url && c == '_') c = '/';
    buf[i] = c;
  }
  memset(buf + inlen, '=', pad);
  buf[padded] = '\0';
  int len = padded ? EVP_DecodeBlock(out, (const unsigned char *)buf, (int)padded) : 0;
  if (len < 0 || (size_t)len < pad) goto cleanup;
  *n = (size_t)len - pad;
  /* Canonical form only: unused trailing bits must be zero. */
  if (!auth_b64_encode(out, *n, url, check, padded + 1)) goto cleanup;
  ok = strlen(check) == inlen && memcmp(check, in, inlen) == 0;
cleanup:
  if (buf) OPENSSL_cleanse(buf, padded + 1);
  if (check) OPENSSL_cleanse(check, padded + 1);
  free(buf);
  free(check);
  return ok;
}
