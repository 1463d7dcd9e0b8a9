/*
 * token.c - keyring, token issue and verification (see token.h).
 *
 * libjwt 1.10 picks the verification algorithm from the token's own header
 * and, given an RSA public PEM as "key", would happily use it as an HMAC
 * secret for an HS256 token; with no key it skips signature checks. So this
 * file never lets the token choose: it decodes the header with OpenSSL and
 * jansson, resolves the kid to one key with one pinned algorithm, refuses
 * any mismatch, and only then calls jwt_decode with that key. Claims are
 * read from the payload with jansson (JSON_REJECT_DUPLICATES) after the
 * signature is known good, so their JSON types are checked exactly.
 */
#include "auth/token.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "auth/b64.h"

#define SECRET_MIN 32
#define TOKEN_MAX 8192
#define KID_MAX 64

typedef struct auth_key {
  char *kid;
  auth_alg alg;
  unsigned char *secret; /* HS256 */
  size_t secret_len;
  char *private_pem; /* RS256/ES256, may be NULL (verify only) */
  char *public_pem;  /* RS256/ES256 */
  int64_t not_after;
} auth_key;

struct auth_keyring {
  auth_key *keys;
  size_t n, cap;
  size_t signing; /* index into keys */
  bool has_signing;
};

static const jwt_alg_t jwt_algs[] = {JWT_ALG_HS256, JWT_ALG_RS256, JWT_ALG_ES256};

const char *auth_alg_name(auth_alg alg) {
  switch (alg) {
  case AUTH_ALG_HS256: return "HS256";
  case AUTH_ALG_RS256: return "RS256";
  case AUTH_ALG_ES256: return "ES256";
  }
  return "?";
}

static bool alg_valid(auth_alg alg) {
  return alg == AUTH_ALG_HS256 || alg == AUTH_ALG_RS256 || alg == AUTH_ALG_ES256;
}

static auth_status fail(auth_status st, char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static auth_status fail(auth_status st, char *why, size_t whylen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  auth_vreason(why, whylen, fmt, ap);
  va_end(ap);
  return st;
}

/* ---- secrets ---- */

/* Exact well-known defaults (compared case-insensitively). */
static const char *const known_secrets[] = {
    "changeme_in_production",
    "secret",
    "changeme",
    "your-256-bit-secret",
    "your-384-bit-secret",
    "your-512-bit-secret",
    "a-string-secret-at-least-256-bits-long",
    "your-super-secret-jwt-token-with-at-least-32-characters-long",
    "development",
    "jwt_secret",
    "jwt-secret",
    "secretkey",
    "supersecret",
    "mysecret",
    "your-secret-key",
    "your_secret_key",
    "default",
    "password",
    "novacron",
    "test",
};

/* Placeholder markers that give a long default away wherever they appear. */
static const char *const placeholder_parts[] = {
    "changeme",       "change_me",   "change-me",    "changeit",      "your-256-bit-secret",
    "your-secret",    "your_secret", "yoursecret",   "replace-me",    "replace_me",
    "replaceme",      "placeholder", "secret-here",  "secret_here",   "insert-secret",
    "example-secret", "notasecret",  "not-a-secret", "in_production", "in-production",
};

static bool contains_ci(const unsigned char *s, size_t n, const char *needle) {
  size_t nn = strlen(needle);
  for (size_t i = 0; nn <= n && i + nn <= n; i++)
    if (strncasecmp((const char *)s + i, needle, nn) == 0) return true;
  return false;
}

/* True if `s` is a repetition of its first `period` bytes. */
static bool periodic(const unsigned char *s, size_t n, size_t period) {
  for (size_t i = period; i < n; i++)
    if (s[i] != s[i - period]) return false;
  return true;
}

static bool secret_ok(const unsigned char *s, size_t n, char *why, size_t whylen) {
  if (!s || n == 0) return auth_refuse(why, whylen, "no signing secret configured");
  for (size_t i = 0; i < sizeof known_secrets / sizeof known_secrets[0]; i++)
    if (strlen(known_secrets[i]) == n && strncasecmp((const char *)s, known_secrets[i], n) == 0)
      return auth_refuse(why, whylen, "signing secret is a well-known default");
  if (n < SECRET_MIN)
    return auth_refuse(why, whylen, "signing secret is shorter than %d bytes", SECRET_MIN);
  for (size_t i = 0; i < sizeof placeholder_parts / sizeof placeholder_parts[0]; i++)
    if (contains_ci(s, n, placeholder_parts[i]))
      return auth_refuse(why, whylen, "signing secret contains a placeholder (%s)",
                         placeholder_parts[i]);
  for (size_t period = 1; period <= 8; period++)
    if (periodic(s, n, period))
      return auth_refuse(why, whylen, "signing secret is a short repeated pattern");
  bool seen[256] = {false};
  size_t distinct = 0;
  for (size_t i = 0; i < n; i++)
    if (!seen[s[i]]) seen[s[i]] = true, distinct++;
  if (distinct < 8) return auth_refuse(why, whylen, "signing secret has too little variety");
  return true;
}

bool auth_secret_check(const char *secret, char *why, size_t whylen) {
  return secret_ok((const unsigned char *)secret, secret ? strlen(secret) : 0, why, whylen);
}

/* ---- keyring ---- */

static void key_wipe(auth_key *k) {
  free(k->kid);
  if (k->secret) OPENSSL_clear_free(k->secret, k->secret_len);
  if (k->private_pem) OPENSSL_cleanse(k->private_pem, strlen(k->private_pem));
  free(k->private_pem);
  free(k->public_pem);
  memset(k, 0, sizeof *k);
}

auth_status auth_keyring_new(auth_keyring **out) {
  if (!out) return AUTH_ERR_INVALID;
  *out = calloc(1, sizeof **out);
  return *out ? AUTH_OK : AUTH_ERR_NOMEM;
}

void auth_keyring_free(auth_keyring *kr) {
  if (!kr) return;
  for (size_t i = 0; i < kr->n; i++)
    key_wipe(&kr->keys[i]);
  free(kr->keys);
  free(kr);
}

static auth_key *find_key(const auth_keyring *kr, const char *kid) {
  for (size_t i = 0; i < kr->n; i++)
    if (strcmp(kr->keys[i].kid, kid) == 0) return &kr->keys[i];
  return NULL;
}

static bool kid_valid(const char *kid) {
  size_t n = kid ? strlen(kid) : 0;
  if (n == 0 || n > KID_MAX) return false;
  for (size_t i = 0; i < n; i++) {
    char c = kid[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_' || c == '.'))
      return false;
  }
  return true;
}

/* Whether `pkey` is the right kind of key for `alg`. */
static bool pkey_fits(EVP_PKEY *pkey, auth_alg alg) {
  if (alg == AUTH_ALG_RS256) return EVP_PKEY_is_a(pkey, "RSA") && EVP_PKEY_get_bits(pkey) >= 2048;
  char group[64];
  size_t glen = 0;
  return EVP_PKEY_is_a(pkey, "EC") &&
         EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                        &glen) == 1 &&
         strcmp(group, "prime256v1") == 0;
}

static char *pubkey_pem(EVP_PKEY *pkey) {
  BIO *bio = BIO_new(BIO_s_mem());
  char *out = NULL;
  if (bio && PEM_write_bio_PUBKEY(bio, pkey) == 1) {
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    if (len > 0 && (out = malloc((size_t)len + 1))) {
      memcpy(out, data, (size_t)len);
      out[len] = '\0';
    }
  }
  BIO_free(bio);
  return out;
}

/* Validates the PEM material of an RS256/ES256 spec into `k`. */
static auth_status load_pem_key(const auth_key_spec *spec, auth_key *k, char *why, size_t whylen) {
  EVP_PKEY *priv = NULL, *pub = NULL;
  auth_status st = AUTH_ERR_INVALID;
  if (!spec->private_pem && !spec->public_pem) {
    fail(st, why, whylen, "key %s: a PEM key is required for %s", spec->kid,
         auth_alg_name(spec->alg));
    goto cleanup;
  }
  if (spec->private_pem) {
    BIO *bio = BIO_new_mem_buf(spec->private_pem, -1);
    priv = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!priv || !pkey_fits(priv, spec->alg)) {
      fail(st, why, whylen, "key %s: private key is not a valid %s key", spec->kid,
           auth_alg_name(spec->alg));
      goto cleanup;
    }
  }
  if (spec->public_pem) {
    BIO *bio = BIO_new_mem_buf(spec->public_pem, -1);
    pub = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if (!pub || !pkey_fits(pub, spec->alg)) {
      fail(st, why, whylen, "key %s: public key is not a valid %s key", spec->kid,
           auth_alg_name(spec->alg));
      goto cleanup;
    }
  }
  if (priv && pub && EVP_PKEY_eq(priv, pub) != 1) {
    fail(st, why, whylen, "key %s: public key does not match private key", spec->kid);
    goto cleanup;
  }
  st = AUTH_ERR_NOMEM;
  if (spec->private_pem && !(k->private_pem = strdup(spec->private_pem))) goto cleanup;
  if (!(k->public_pem = pub ? strdup(spec->public_pem) : pubkey_pem(priv))) goto cleanup;
  st = AUTH_OK;
cleanup:
  EVP_PKEY_free(priv);
  EVP_PKEY_free(pub);
  return st;
}

auth_status auth_keyring_add(auth_keyring *kr, const auth_key_spec *spec, char *why,
                             size_t whylen) {
  if (!kr || !spec) return fail(AUTH_ERR_INVALID, why, whylen, "no key given");
  if (!kid_valid(spec->kid))
    return fail(AUTH_ERR_INVALID, why, whylen, "key id must be 1-%d characters of [A-Za-z0-9._-]",
                KID_MAX);
  if (!alg_valid(spec->alg))
    return fail(AUTH_ERR_INVALID, why, whylen, "key %s: unsupported algorithm", spec->kid);
  if (find_key(kr, spec->kid))
    return fail(AUTH_ERR_INVALID, why, whylen, "key %s: duplicate key id", spec->kid);
  if (kr->n == kr->cap) {
    size_t cap = kr->cap ? kr->cap * 2 : 4;
    auth_key *keys = realloc(kr->keys, cap * sizeof *keys);
    if (!keys) return AUTH_ERR_NOMEM;
    kr->keys = keys;
    kr->cap = cap;
  }
  auth_key k = {.alg = spec->alg, .not_after = spec->not_after};
  auth_status st = AUTH_ERR_NOMEM;
  if (!(k.kid = strdup(spec->kid))) goto cleanup;
  if (spec->alg == AUTH_ALG_HS256) {
    char reason[128];
    if (!secret_ok(spec->secret, spec->secret_len, reason, sizeof reason)) {
      st = fail(AUTH_ERR_INVALID, why, whylen, "key %s: %s", spec->kid, reason);
      goto cleanup;
    }
    if (!(k.secret = OPENSSL_malloc(spec->secret_len))) goto cleanup;
    memcpy(k.secret, spec->secret, spec->secret_len);
    k.secret_len = spec->secret_len;
  } else if ((st = load_pem_key(spec, &k, why, whylen)) != AUTH_OK) {
    goto cleanup;
  }
  kr->keys[kr->n++] = k;
  return AUTH_OK;
cleanup:
  key_wipe(&k);
  return st;
}

auth_status auth_keyring_set_signing(auth_keyring *kr, const char *kid) {
  const auth_key *k = kr && kid ? find_key(kr, kid) : NULL;
  if (!k || (k->alg == AUTH_ALG_HS256 ? !k->secret : !k->private_pem)) return AUTH_ERR_INVALID;
  kr->signing = (size_t)(k - kr->keys);
  kr->has_signing = true;
  return AUTH_OK;
}

auth_status auth_keyring_retire(auth_keyring *kr, const char *kid, int64_t not_after) {
  auth_key *k = kr && kid ? find_key(kr, kid) : NULL;
  if (!k) return AUTH_ERR_INVALID;
  k->not_after = not_after;
  return AUTH_OK;
}

/* ---- issue ---- */

static const char *const registered_claims[] = {"iss", "sub", "aud", "exp", "nbf", "iat", "jti"};

static bool is_registered(const char *name) {
  for (size_t i = 0; i < sizeof registered_claims / sizeof registered_claims[0]; i++)
    if (strcmp(name, registered_claims[i]) == 0) return true;
  return false;
}

auth_status auth_token_issue(const auth_keyring *kr, const auth_token_request *req, char **out) {
  if (!out) return AUTH_ERR_INVALID;
  *out = NULL;
  if (!kr || !kr->has_signing || !req || !req->sub || !*req->sub || !req->iss || !*req->iss ||
      !req->aud || !*req->aud || req->ttl_s <= 0 || req->ttl_s > (int64_t)1 << 31)
    return AUTH_ERR_INVALID;
  for (size_t i = 0; i < req->n_extra; i++)
    if (!req->extra[i].name || !req->extra[i].value || is_registered(req->extra[i].name))
      return AUTH_ERR_INVALID;
  const auth_key *k = &kr->keys[kr->signing];
  int64_t now = req->now ? req->now : (int64_t)time(NULL);
  unsigned char rnd[16];
  char jti[32];
  if (RAND_bytes(rnd, sizeof rnd) != 1 || !auth_b64_encode(rnd, sizeof rnd, true, jti, sizeof jti))
    return AUTH_ERR_CRYPTO;

  jwt_t *jwt = NULL;
  char *encoded = NULL;
  auth_status st = AUTH_ERR_NOMEM;
  if (jwt_new(&jwt) != 0) goto cleanup;
  st = AUTH_ERR_CRYPTO;
  if (jwt_add_header(jwt, "kid", k->kid) != 0 || jwt_add_grant(jwt, "iss", req->iss) != 0 ||
      jwt_add_grant(jwt, "sub", req->sub) != 0 || jwt_add_grant(jwt, "aud", req->aud) != 0 ||
      jwt_add_grant_int(jwt, "iat", (long)now) != 0 ||
      jwt_add_grant_int(jwt, "nbf", (long)now) != 0 ||
      jwt_add_grant_int(jwt, "exp", (long)(now + req->ttl_s)) != 0 ||
      jwt_add_grant(jwt, "jti", jti) != 0)
    goto cleanup;
  for (size_t i = 0; i < req->n_extra; i++)
    if (jwt_add_grant(jwt, req->extra[i].name, req->extra[i].value) != 0) goto cleanup;
  const unsigned char *key =
      k->alg == AUTH_ALG_HS256 ? k->secret : (const unsigned char *)k->private_pem;
  size_t keylen = k->alg == AUTH_ALG_HS256 ? k->secret_len : strlen(k->private_pem);
  if (jwt_set_alg(jwt, jwt_algs[k->alg], key, (int)keylen) != 0) goto cleanup;
  if (!(encoded = jwt_encode_str(jwt))) goto cleanup;
  st = (*out = strdup(encoded)) ? AUTH_OK : AUTH_ERR_NOMEM;
cleanup:
  free(encoded);
  jwt_free(jwt); /* libjwt scrubs its copy of the key */
  return st;
}

/* ---- verify ---- */

/* Decodes one base64url segment of a token into a JSON object. */
static json_t *decode_segment(const char *seg, size_t len) {
  size_t cap = auth_b64_decoded_max(len), n = 0;
  unsigned char *buf = malloc(cap);
  json_t *obj = NULL;
  if (buf && auth_b64_decode(seg, len, true, buf, cap, &n))
    obj = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, NULL);
  free(buf);
  if (obj && !json_is_object(obj)) {
    json_decref(obj);
    obj = NULL;
  }
  return obj;
}

/* An integer NumericDate claim. Returns false if present but not an integer. */
static bool get_time(json_t *payload, const char *name, int64_t *out, bool *present) {
  json_t *v = json_object_get(payload, name);
  *present = v != NULL;
  *out = 0;
  if (!v) return true;
  if (!json_is_integer(v)) return false;
  *out = (int64_t)json_integer_value(v);
  return true;
}

static bool aud_matches(json_t *aud, const char *expected) {
  if (json_is_string(aud)) return strcmp(json_string_value(aud), expected) == 0;
  if (!json_is_array(aud)) return false;
  size_t i;
  json_t *v;
  json_array_foreach(aud, i, v) {
    if (json_is_string(v) && strcmp(json_string_value(v), expected) == 0) return true;
  }
  return false;
}

static char *dup_string_claim(json_t *obj, const char *name) {
  const char *v = json_string_value(json_object_get(obj, name));
  return v ? strdup(v) : NULL;
}

void auth_claims_free(auth_claims *c) {
  if (!c) return;
  free(c->sub);
  free(c->iss);
  free(c->jti);
  free(c->kid);
  json_decref(c->payload_);
  memset(c, 0, sizeof *c);
}

const char *auth_claims_get(const auth_claims *c, const char *name) {
  return c && c->payload_ && name ? json_string_value(json_object_get(c->payload_, name)) : NULL;
}

#define REJECT(...)                                         \
  do {                                                      \
    st = fail(AUTH_ERR_REJECTED, why, whylen, __VA_ARGS__); \
    goto cleanup;                                           \
  } while (0)

auth_status auth_token_verify(const auth_keyring *kr, const char *token, const char *expected_iss,
                              const char *expected_aud, int64_t now, int64_t leeway_s,
                              auth_claims *out, char *why, size_t whylen) {
  if (out) memset(out, 0, sizeof *out);
  if (!kr || !expected_iss || !expected_aud || !out || leeway_s < 0)
    return fail(AUTH_ERR_INVALID, why, whylen, "bad arguments");
  if (!token || !*token) return fail(AUTH_ERR_REJECTED, why, whylen, "no token");
  size_t len = strnlen(token, TOKEN_MAX + 1);
  if (len > TOKEN_MAX) return fail(AUTH_ERR_REJECTED, why, whylen, "token too long");
  const char *dot1 = strchr(token, '.');
  const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
  if (!dot1 || !dot2 || strchr(dot2 + 1, '.') || dot1 == token || dot2 == dot1 + 1 ||
      dot2[1] == '\0')
    return fail(AUTH_ERR_REJECTED, why, whylen, "token is not a signed compact JWT");

  json_t *header = NULL, *payload = NULL;
  jwt_t *jwt = NULL;
  auth_status st = AUTH_ERR_REJECTED;
  if (!(header = decode_segment(token, (size_t)(dot1 - token))))
    REJECT("token header is malformed");
  const char *alg = json_string_value(json_object_get(header, "alg"));
  const char *kid = json_string_value(json_object_get(header, "kid"));
  json_t *typ = json_object_get(header, "typ");
  if (!alg) REJECT("token header has no algorithm");
  if (json_object_get(header, "crit")) REJECT("token header has unsupported critical extensions");
  if (typ && !(json_is_string(typ) && strcmp(json_string_value(typ), "JWT") == 0))
    REJECT("token type is not JWT");
  if (!kid) REJECT("token header has no key id");
  const auth_key *k = find_key(kr, kid);
  if (!k) REJECT("token signed with an unknown key");
  if (strcmp(alg, auth_alg_name(k->alg)) != 0)
    REJECT("token algorithm does not match its key (expected %s)", auth_alg_name(k->alg));
  if (k->not_after && now > k->not_after) REJECT("token signed with a retired key");

  const unsigned char *key =
      k->alg == AUTH_ALG_HS256 ? k->secret : (const unsigned char *)k->public_pem;
  size_t keylen = k->alg == AUTH_ALG_HS256 ? k->secret_len : strlen(k->public_pem);
  if (jwt_decode(&jwt, token, key, (int)keylen) != 0 || !jwt) REJECT("token signature is invalid");
  if (jwt_get_alg(jwt) != jwt_algs[k->alg]) REJECT("token algorithm does not match its key");

  if (!(payload = decode_segment(dot1 + 1, (size_t)(dot2 - dot1 - 1))))
    REJECT("token payload is malformed");
  int64_t exp, nbf, iat;
  bool has_exp, has_nbf, has_iat;
  if (!get_time(payload, "exp", &exp, &has_exp) || !get_time(payload, "nbf", &nbf, &has_nbf) ||
      !get_time(payload, "iat", &iat, &has_iat))
    REJECT("token time claims are malformed");
  if (!has_exp) REJECT("token has no expiry");
  if (now - leeway_s >= exp) REJECT("token has expired");
  if (has_nbf && now + leeway_s < nbf) REJECT("token is not yet valid");
  if (has_iat && iat > now + leeway_s) REJECT("token was issued in the future");
  const char *iss = json_string_value(json_object_get(payload, "iss"));
  if (!iss || strcmp(iss, expected_iss) != 0) REJECT("token issuer is not accepted");
  if (!aud_matches(json_object_get(payload, "aud"), expected_aud))
    REJECT("token audience is not accepted");
  const char *sub = json_string_value(json_object_get(payload, "sub"));
  if (!sub || !*sub) REJECT("token has no subject");

  st = AUTH_ERR_NOMEM;
  out->sub = strdup(sub);
  out->iss = strdup(iss);
  out->jti = dup_string_claim(payload, "jti");
  out->kid = strdup(kid);
  if (!out->sub || !out->iss || !out->kid) {
    auth_claims_free(out);
    goto cleanup;
  }
  out->exp = exp;
  out->nbf = nbf;
  out->iat = iat;
  out->payload_ = payload;
  payload = NULL;
  st = AUTH_OK;
cleanup:
  jwt_free(jwt);
  json_decref(header);
  json_decref(payload);
  return st;
}
