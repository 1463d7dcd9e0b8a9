/*
 * password.c - scrypt password hashes in a PHC-style string.
 *
 * The derivation goes through OpenSSL's EVP_KDF "SCRYPT"; salts come from
 * RAND_bytes; the comparison is CRYPTO_memcmp. Parsing is strict (exact
 * field order, decimal numbers without leading zeros, canonical base64,
 * bounded parameters) because the string is read back from storage. Derived
 * keys are wiped with OPENSSL_cleanse before their buffers are released.
 */
#include "auth/password.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "auth/b64.h"

#define SALT_LEN 16
#define KEY_LEN 32
#define SALT_MIN 8
#define SALT_MAX 64
#define KEY_MIN KEY_LEN
#define KEY_MAX KEY_LEN
#define MEM_MAX ((uint64_t)1 << 30)
#define PREFIX "$scrypt$"

const auth_kdf_params auth_kdf_default = {.ln = 15, .r = 8, .p = 1};

/* Bytes OpenSSL's scrypt allocates for these parameters (B plus V and XY). */
static uint64_t kdf_memory(const auth_kdf_params *p) {
  uint64_t n = (uint64_t)1 << p->ln;
  return 128u * (uint64_t)p->r * (n + (uint64_t)p->p + 2);
}

bool auth_kdf_params_valid(const auth_kdf_params *p) {
  return p && p->ln >= 1 && p->ln <= 20 && p->r >= 1 && p->r <= 32 && p->p >= 1 && p->p <= 16 &&
         kdf_memory(p) <= MEM_MAX;
}

static bool derive(const char *password, const unsigned char *salt, size_t saltlen,
                   const auth_kdf_params *p, unsigned char *key, size_t keylen) {
  EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
  EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
  bool ok = false;
  if (ctx) {
    uint64_t n = (uint64_t)1 << p->ln;
    uint32_t r = p->r, par = p->p;
    uint64_t maxmem = kdf_memory(p) + (1u << 20);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)password,
                                          strlen(password)),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, saltlen),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
        OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &par),
        OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
        OSSL_PARAM_construct_end(),
    };
    ok = EVP_KDF_derive(ctx, key, keylen, params) == 1;
  }
  EVP_KDF_CTX_free(ctx);
  EVP_KDF_free(kdf);
  if (!ok) OPENSSL_cleanse(key, keylen);
  return ok;
}

auth_status auth_password_hash(const char *password, const auth_kdf_params *p, char *out,
                               size_t outlen) {
  if (!p) p = &auth_kdf_default;
  if (!password || !out || !auth_kdf_params_valid(p)) return AUTH_ERR_INVALID;
  unsigned char salt[SALT_LEN], key[KEY_LEN];
  char salt64[SALT_LEN * 2], key64[KEY_LEN * 2];
  auth_status st = AUTH_ERR_CRYPTO;
  if (RAND_bytes(salt, sizeof salt) != 1) goto cleanup;
  if (!derive(password, salt, sizeof salt, p, key, sizeof key)) goto cleanup;
  if (!auth_b64_encode(salt, sizeof salt, false, salt64, sizeof salt64) ||
      !auth_b64_encode(key, sizeof key, false, key64, sizeof key64))
    goto cleanup;
  int len = snprintf(out, outlen, PREFIX "ln=%u,r=%u,p=%u$%s$%s", p->ln, p->r, p->p, salt64, key64);
  if (len < 0 || (size_t)len >= outlen) {
    if (outlen) OPENSSL_cleanse(out, outlen);
    st = AUTH_ERR_SPACE;
    goto cleanup;
  }
  st = AUTH_OK;
cleanup:
  OPENSSL_cleanse(key, sizeof key);
  OPENSSL_cleanse(key64, sizeof key64);
  return st;
}

/* Reads "<name>=<decimal>" at *s, advancing past it. No sign, no leading zero. */
static bool parse_field(const char **s, const char *name, unsigned *out) {
  size_t nlen = strlen(name);
  if (strncmp(*s, name, nlen) != 0 || (*s)[nlen] != '=') return false;
  const char *d = *s + nlen + 1;
  if (*d < '1' || *d > '9') return false;
  unsigned v = 0;
  size_t digits = 0;
  while (*d >= '0' && *d <= '9') {
    if (++digits > 4) return false;
    v = v * 10 + (unsigned)(*d - '0');
    d++;
  }
  *out = v;
  *s = d;
  return true;
}

typedef struct parsed_hash {
  auth_kdf_params params;
  unsigned char salt[SALT_MAX + 3];
  size_t saltlen;
  unsigned char key[KEY_MAX + 3];
  size_t keylen;
} parsed_hash;

static bool parse_hash(const char *encoded, parsed_hash *h) {
  if (!encoded || strncmp(encoded, PREFIX, strlen(PREFIX)) != 0) return false;
  const char *s = encoded + strlen(PREFIX);
  if (!parse_field(&s, "ln", &h->params.ln) || *s++ != ',') return false;
  if (!parse_field(&s, "r", &h->params.r) || *s++ != ',') return false;
  if (!parse_field(&s, "p", &h->params.p) || *s++ != '$') return false;
  if (!auth_kdf_params_valid(&h->params)) return false;
  const char *dollar = strchr(s, '$');
  if (!dollar) return false;
  if (!auth_b64_decode(s, (size_t)(dollar - s), false, h->salt, sizeof h->salt, &h->saltlen))
    return false;
  const char *k = dollar + 1;
  if (!auth_b64_decode(k, strlen(k), false, h->key, sizeof h->key, &h->keylen)) return false;
  return h->saltlen >= SALT_MIN && h->saltlen <= SALT_MAX && h->keylen >= KEY_MIN &&
         h->keylen <= KEY_MAX;
}

auth_status auth_password_params(const char *encoded, auth_kdf_params *out) {
  parsed_hash h;
  if (!out || !parse_hash(encoded, &h)) return AUTH_ERR_INVALID;
  *out = h.params;
  OPENSSL_cleanse(&h, sizeof h);
  return AUTH_OK;
}

auth_status auth_password_verify(const char *password, const char *encoded,
                                 const auth_kdf_params *current, bool *ok, bool *needs_rehash) {
  if (!ok) return AUTH_ERR_INVALID;
  *ok = false;
  if (needs_rehash) *needs_rehash = false;
  if (!current) current = &auth_kdf_default;
  if (!password) return AUTH_ERR_INVALID;
  parsed_hash h;
  unsigned char key[KEY_MAX];
  auth_status st = AUTH_ERR_INVALID;
  if (!parse_hash(encoded, &h)) goto cleanup;
  st = AUTH_ERR_CRYPTO;
  if (!derive(password, h.salt, h.saltlen, &h.params, key, h.keylen)) goto cleanup;
  *ok = CRYPTO_memcmp(key, h.key, h.keylen) == 0;
  if (needs_rehash)
    *needs_rehash = h.params.ln < current->ln || h.params.r < current->r ||
                    h.params.p < current->p || h.saltlen < SALT_LEN || h.keylen < KEY_LEN;
  st = AUTH_OK;
cleanup:
  OPENSSL_cleanse(key, sizeof key);
  OPENSSL_cleanse(&h, sizeof h);
  return st;
}
