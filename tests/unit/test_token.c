/* test_token.c - JWT keyring, issue and verification, and signing-secret checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "auth/b64.h"
#include "auth/token.h"

#define NOW 1800000000
#define ISS "https://novacron.test"
#define AUD "novacron-api"

static const char hs_secret[] = "k7Qp2vX9mZ4rT8wB1nF6yH3jL5cD0sGa";
static const char hs_old_secret[] = "Vb9Xe3Lr7Tq1Mz5Hk2Pw8Nc4Yf6Ja0Ud";

/* Keys generated once for the whole run. */
static char *rsa_priv, *rsa_pub, *ec_priv, *ec_pub;

static void pem_pair(EVP_PKEY *pkey, char **priv, char **pub) {
  for (int which = 0; which < 2; which++) {
    BIO *bio = BIO_new(BIO_s_mem());
    assert_non_null(bio);
    if (which == 0)
      assert_int_equal(PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL), 1);
    else
      assert_int_equal(PEM_write_bio_PUBKEY(bio, pkey), 1);
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    char *s = calloc(1, (size_t)len + 1);
    assert_non_null(s);
    memcpy(s, data, (size_t)len);
    *(which == 0 ? priv : pub) = s;
    BIO_free(bio);
  }
}

static int setup_keys(void **state) {
  (void)state;
  EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
  EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  if (!rsa || !ec) return -1;
  pem_pair(rsa, &rsa_priv, &rsa_pub);
  pem_pair(ec, &ec_priv, &ec_pub);
  EVP_PKEY_free(rsa);
  EVP_PKEY_free(ec);
  return 0;
}

static int teardown_keys(void **state) {
  (void)state;
  free(rsa_priv);
  free(rsa_pub);
  free(ec_priv);
  free(ec_pub);
  return 0;
}

/* A ring with "hs1" (HS256, signing), "rs1" (RS256 verify-only), "es1" (ES256 verify-only). */
static auth_keyring *make_ring(void) {
  auth_keyring *kr = NULL;
  char why[160];
  assert_int_equal(auth_keyring_new(&kr), AUTH_OK);
  auth_key_spec hs = {.kid = "hs1",
                      .alg = AUTH_ALG_HS256,
                      .secret = (const unsigned char *)hs_secret,
                      .secret_len = strlen(hs_secret)};
  assert_int_equal(auth_keyring_add(kr, &hs, why, sizeof why), AUTH_OK);
  auth_key_spec rs = {.kid = "rs1", .alg = AUTH_ALG_RS256, .public_pem = rsa_pub};
  assert_int_equal(auth_keyring_add(kr, &rs, why, sizeof why), AUTH_OK);
  auth_key_spec es = {.kid = "es1", .alg = AUTH_ALG_ES256, .public_pem = ec_pub};
  assert_int_equal(auth_keyring_add(kr, &es, why, sizeof why), AUTH_OK);
  assert_int_equal(auth_keyring_set_signing(kr, "hs1"), AUTH_OK);
  return kr;
}

static char *issue(const auth_keyring *kr, int64_t now, int64_t ttl) {
  const auth_claim_kv extra[] = {{"sid", "session-7"}, {"scope", "vm:read vm:write"}};
  auth_token_request req = {.sub = "users/alice",
                            .iss = ISS,
                            .aud = AUD,
                            .ttl_s = ttl,
                            .now = now,
                            .extra = extra,
                            .n_extra = 2};
  char *tok = NULL;
  assert_int_equal(auth_token_issue(kr, &req, &tok), AUTH_OK);
  assert_non_null(tok);
  return tok;
}

static void expect_rejected(const auth_keyring *kr, const char *tok, int64_t now, const char *iss,
                            const char *aud, const char *reason_part) {
  auth_claims c;
  char why[160] = "";
  assert_int_equal(auth_token_verify(kr, tok, iss, aud, now, 30, &c, why, sizeof why),
                   AUTH_ERR_REJECTED);
  if (!strstr(why, reason_part)) fail_msg("reason \"%s\" lacks \"%s\"", why, reason_part);
  assert_null(c.sub);
}

/* header.payload.HMAC-SHA256(secret) built by hand, for claims libjwt would not produce. */
static char *craft_hs(const char *header, const char *payload, const char *secret) {
  char h64[512], p64[1024], s64[64];
  assert_true(
      auth_b64_encode((const unsigned char *)header, strlen(header), true, h64, sizeof h64));
  assert_true(
      auth_b64_encode((const unsigned char *)payload, strlen(payload), true, p64, sizeof p64));
  char *tok = malloc(2048);
  assert_non_null(tok);
  snprintf(tok, 2048, "%s.%s", h64, p64);
  unsigned char mac[32];
  size_t maclen = 0;
  assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, strlen(secret),
                            (const unsigned char *)tok, strlen(tok), mac, sizeof mac, &maclen));
  assert_true(auth_b64_encode(mac, maclen, true, s64, sizeof s64));
  size_t n = strlen(tok);
  snprintf(tok + n, 2048 - n, ".%s", s64);
  return tok;
}

static void valid_token(void **state) {
  (void)state;
  auth_keyring *kr = make_ring();
  char *tok = issue(kr, NOW, 900);
  auth_claims c;
  char why[160] = "";
  assert_int_equal(auth_token_verify(kr, tok, ISS, AUD, NOW + 10, 30, &c, why, sizeof why),
                   AUTH_OK);
  assert_string_equal(c.sub, "users/alice");
  assert_string_equal(c.iss, ISS);
  assert_string_equal(c.kid, "hs1");
  assert_non_null(c.jti);
  assert_int_equal(strlen(c.jti), 22);
  assert_int_equal(c.iat, NOW);
  assert_int_equal(c.nbf, NOW);
  assert_int_equal(c.exp, NOW + 900);
  assert_string_equal(auth_claims_get(&c, "sid"), "session-7");
  assert_string_equal(auth_claims_get(&c, "scope"), "vm:read vm:write");
  assert_null(auth_claims_get(&c, "exp")); /* not a string */
  assert_null(auth_claims_get(&c, "missing"));
  auth_claims_free(&c);
  /* Two tokens never share a jti. */
  char *tok2 = issue(kr, NOW, 900);
  assert_string_not_equal(tok, tok2);
  free(tok2);
  free(tok);
  auth_keyring_free(kr);
}

static void audience_array_and_types(void **state) {
  (void)state;
  auth_keyring *kr = make_ring();
  const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"hs1\"}";
  char *tok = craft_hs(
      hdr, "{\"iss\":\"" ISS "\",\"sub\":\"u\",\"aud\":[\"other\",\"" AUD "\"],\"exp\":1800000900}",
      hs_secret);
  auth_claims c;
  char why[160];
  assert_int_equal(auth_token_verify(kr, tok, ISS, AUD, NOW, 0, &c, why, sizeof why), AUTH_OK);
  assert_int_equal(c.iat, 0);
  assert_null(c.jti);
  auth_claims_free(&c);
  free(tok);
  tok = craft_hs(hdr, "{\"iss\":\"" ISS "\",\"sub\":\"u\",\"aud\":[\"other\"],\"exp\":1800000900}",
                 hs_secret);
  expect_rejected(kr, tok, NOW, ISS, AUD, "audience");
  free(tok);
  tok = craft_hs(hdr, "{\"iss\":\"" ISS "\",\"sub\":\"u\",\"aud\":\"" AUD "\"}", hs_secret);
  expect_rejected(kr, tok, NOW, ISS, AUD, "no expiry");
  free(tok);
  tok = craft_hs(hdr,
                 "{\"iss\":\"" ISS "\",\"sub\":\"u\",\"aud\":\"" AUD "\",\"exp\":\"1900000000\"}",
                 hs_secret);
  expect_rejected(kr, tok, NOW, ISS, AUD, "malformed");
  free(tok);
  tok = craft_hs(hdr, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":1800000900}", hs_secret);
  expect_rejected(kr, tok, NOW, ISS, AUD, "subject");
  free(tok);
  tok = craft_hs(hdr,
                 "{\"iss\":\"" ISS "\",\"sub\":\"u\",\"aud\":\"" AUD
                 "\",\"exp\":1800000900,\"exp\":1900000000}",
                 hs_secret);
  expect_rejected(kr, tok, NOW, ISS, AUD, "");
  free(tok);
  tok = craft_hs(hdr,
                 "{\"iss\":\"" ISS "\",\"sub\":\"u\",\"aud\":\"" AUD
                 "\",\"exp\":1800000900,\"iat\":1800000500}",
                 hs_secret);
  expect_rejected(kr, tok, NOW, ISS, AUD, "issued in the future");
  free(tok);
  tok = craft_hs("{\"alg\":\"HS256\",\"kid\":\"hs1\",\"crit\":[\"b64\"]}",
                 "{\"iss\":\"" ISS "\",\"sub\":\"u\",\"aud\":\"" AUD "\",\"exp\":1800000900}",
                 hs_secret);
  expect_rejected(kr, tok, NOW, ISS, AUD, "critical");
  free(tok);
  auth_keyring_free(kr);
}

static void alg_none_rejected(void **state) {
  (void)state;
  auth_keyring *kr = make_ring();
  char p64[512], h64[128], tok[1024];
  const char *payload =
      "{\"iss\":\"" ISS "\",\"sub\":\"users/alice\",\"aud\":\"" AUD "\",\"exp\":1900000000}";
  assert_true(
      auth_b64_encode((const unsigned char *)payload, strlen(payload), true, p64, sizeof p64));
  /* {"alg":"none"} with and without a kid, with and without a signature. */
  snprintf(tok, sizeof tok, "eyJhbGciOiJub25lIn0.%s.", p64);
  expect_rejected(kr, tok, NOW, ISS, AUD, "not a signed");
  const char *hdrs[] = {"{\"alg\":\"none\",\"kid\":\"hs1\"}", "{\"alg\":\"None\",\"kid\":\"hs1\"}",
                        "{\"alg\":\"NONE\",\"kid\":\"rs1\"}"};
  for (size_t i = 0; i < 3; i++) {
    assert_true(
        auth_b64_encode((const unsigned char *)hdrs[i], strlen(hdrs[i]), true, h64, sizeof h64));
    snprintf(tok, sizeof tok, "%s.%s.", h64, p64);
    expect_rejected(kr, tok, NOW, ISS, AUD, "not a signed");
    snprintf(tok, sizeof tok, "%s.%s.AAAA", h64, p64);
    expect_rejected(kr, tok, NOW, ISS, AUD, "does not match");
  }
  /* A header with no alg at all. */
  char *t = craft_hs("{\"kid\":\"hs1\"}", payload, hs_secret);
  expect_rejected(kr, t, NOW, ISS, AUD, "no algorithm");
  free(t);
  auth_keyring_free(kr);
}

static void key_confusion_rejected(void **state) {
  (void)state;
  auth_keyring *kr = make_ring();
  /* HS256 signed with the RSA public key's PEM text as HMAC secret, claiming the RS256 kid. */
  jwt_t *jwt = NULL;
  assert_int_equal(jwt_new(&jwt), 0);
  assert_int_equal(jwt_add_header(jwt, "kid", "rs1"), 0);
  assert_int_equal(jwt_add_grant(jwt, "iss", ISS), 0);
  assert_int_equal(jwt_add_grant(jwt, "sub", "users/root"), 0);
  assert_int_equal(jwt_add_grant(jwt, "aud", AUD), 0);
  assert_int_equal(jwt_add_grant_int(jwt, "exp", NOW + 900), 0);
  assert_int_equal(
      jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)rsa_pub, (int)strlen(rsa_pub)), 0);
  char *tok = jwt_encode_str(jwt);
  assert_non_null(tok);
  expect_rejected(kr, tok, NOW, ISS, AUD, "does not match its key (expected RS256)");
  free(tok);
  jwt_free(jwt);
  /* Any other mismatch: an ES256 kid with an RS256 header, an HS kid with HS512. */
  const char *payload =
      "{\"iss\":\"" ISS "\",\"sub\":\"u\",\"aud\":\"" AUD "\",\"exp\":1800000900}";
  tok = craft_hs("{\"alg\":\"RS256\",\"kid\":\"es1\"}", payload, hs_secret);
  expect_rejected(kr, tok, NOW, ISS, AUD, "does not match");
  free(tok);
  tok = craft_hs("{\"alg\":\"HS512\",\"kid\":\"hs1\"}", payload, hs_secret);
  expect_rejected(kr, tok, NOW, ISS, AUD, "does not match");
  free(tok);
  tok = craft_hs("{\"alg\":\"hs256\",\"kid\":\"hs1\"}", payload, hs_secret);
  expect_rejected(kr, tok, NOW, ISS, AUD, "does not match");
  free(tok);
  auth_keyring_free(kr);
}

static void bad_signature_rejected(void **state) {
  (void)state;
  auth_keyring *kr = make_ring();
  char *tok = issue(kr, NOW, 900);
  /* Flip a character in the middle of the signature. */
  char *sig = strrchr(tok, '.') + 1;
  sig[5] = sig[5] == 'A' ? 'B' : 'A';
  expect_rejected(kr, tok, NOW, ISS, AUD, "signature");
  free(tok);
  /* Right kid, signed with another secret. */
  const char *payload =
      "{\"iss\":\"" ISS "\",\"sub\":\"u\",\"aud\":\"" AUD "\",\"exp\":1800000900}";
  tok = craft_hs("{\"alg\":\"HS256\",\"kid\":\"hs1\"}", payload, hs_old_secret);
  expect_rejected(kr, tok, NOW, ISS, AUD, "signature");
  free(tok);
  /* Payload swapped under a valid signature. */
  char *good = issue(kr, NOW, 900);
  char *other = craft_hs("{\"alg\":\"HS256\",\"kid\":\"hs1\"}", payload, hs_secret);
  char spliced[2048];
  const char *g1 = strchr(good, '.'), *o1 = strchr(other, '.'), *o2 = strrchr(other, '.');
  snprintf(spliced, sizeof spliced, "%.*s%.*s%s", (int)(g1 - good), good, (int)(o2 - o1), o1,
           strrchr(good, '.'));
  expect_rejected(kr, spliced, NOW, ISS, AUD, "signature");
  free(good);
  free(other);
  /* Garbage. */
  const char *junk[] = {"",     "a",    "a.b",         "a.b.c.d",
                        ".x.y", "x..y", "!!!.???.***", "eyJhbGciOiJIUzI1NiJ9.e30.sig"};
  for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
    expect_rejected(kr, junk[i], NOW, ISS, AUD, "");
  expect_rejected(kr, NULL, NOW, ISS, AUD, "no token");
  auth_keyring_free(kr);
}

static void time_claims(void **state) {
  (void)state;
  auth_keyring *kr = make_ring();
  char *tok = issue(kr, NOW, 900);
  /* Expired (exp = NOW+900, leeway 30). */
  expect_rejected(kr, tok, NOW + 930, ISS, AUD, "expired");
  expect_rejected(kr, tok, NOW + 5000, ISS, AUD, "expired");
  auth_claims c;
  char why[160];
  assert_int_equal(auth_token_verify(kr, tok, ISS, AUD, NOW + 929, 30, &c, why, sizeof why),
                   AUTH_OK);
  auth_claims_free(&c);
  /* Not yet valid (nbf = NOW). */
  expect_rejected(kr, tok, NOW - 31, ISS, AUD, "not yet valid");
  assert_int_equal(auth_token_verify(kr, tok, ISS, AUD, NOW - 30, 30, &c, why, sizeof why),
                   AUTH_OK);
  auth_claims_free(&c);
  free(tok);
  auth_keyring_free(kr);
}

static void wrong_issuer_audience_kid(void **state) {
  (void)state;
  auth_keyring *kr = make_ring();
  char *tok = issue(kr, NOW, 900);
  expect_rejected(kr, tok, NOW, "https://evil.test", AUD, "issuer");
  expect_rejected(kr, tok, NOW, ISS, "other-service", "audience");
  free(tok);
  const char *payload =
      "{\"iss\":\"" ISS "\",\"sub\":\"u\",\"aud\":\"" AUD "\",\"exp\":1800000900}";
  tok = craft_hs("{\"alg\":\"HS256\",\"kid\":\"hs9\"}", payload, hs_secret);
  expect_rejected(kr, tok, NOW, ISS, AUD, "unknown key");
  free(tok);
  tok = craft_hs("{\"alg\":\"HS256\"}", payload, hs_secret);
  expect_rejected(kr, tok, NOW, ISS, AUD, "no key id");
  free(tok);
  auth_keyring_free(kr);
}

static void rotation_grace(void **state) {
  (void)state;
  char why[160];
  auth_keyring *old_ring = NULL;
  assert_int_equal(auth_keyring_new(&old_ring), AUTH_OK);
  auth_key_spec old = {.kid = "2026-01",
                       .alg = AUTH_ALG_HS256,
                       .secret = (const unsigned char *)hs_old_secret,
                       .secret_len = strlen(hs_old_secret)};
  assert_int_equal(auth_keyring_add(old_ring, &old, why, sizeof why), AUTH_OK);
  assert_int_equal(auth_keyring_set_signing(old_ring, "2026-01"), AUTH_OK);
  char *old_tok = issue(old_ring, NOW, 7200);

  /* The rotated ring: new signing key, old one retired at NOW + 3600. */
  auth_keyring *kr = make_ring();
  old.not_after = NOW + 3600;
  assert_int_equal(auth_keyring_add(kr, &old, why, sizeof why), AUTH_OK);
  auth_claims c;
  assert_int_equal(auth_token_verify(kr, old_tok, ISS, AUD, NOW + 3600, 30, &c, why, sizeof why),
                   AUTH_OK);
  assert_string_equal(c.kid, "2026-01");
  auth_claims_free(&c);
  expect_rejected(kr, old_tok, NOW + 3601, ISS, AUD, "retired");
  assert_int_equal(auth_keyring_retire(kr, "2026-01", NOW + 10), AUTH_OK);
  expect_rejected(kr, old_tok, NOW + 11, ISS, AUD, "retired");
  assert_int_equal(auth_keyring_retire(kr, "nope", NOW), AUTH_ERR_INVALID);
  /* New tokens carry the new kid. */
  char *new_tok = issue(kr, NOW, 60);
  assert_int_equal(auth_token_verify(kr, new_tok, ISS, AUD, NOW, 30, &c, why, sizeof why), AUTH_OK);
  assert_string_equal(c.kid, "hs1");
  auth_claims_free(&c);
  free(new_tok);
  free(old_tok);
  auth_keyring_free(kr);
  auth_keyring_free(old_ring);
}

static void asymmetric_round_trip(auth_alg alg, const char *priv, const char *kid_pub) {
  char why[160];
  auth_keyring *signer = NULL;
  assert_int_equal(auth_keyring_new(&signer), AUTH_OK);
  auth_key_spec spec = {.kid = kid_pub, .alg = alg, .private_pem = priv};
  assert_int_equal(auth_keyring_add(signer, &spec, why, sizeof why), AUTH_OK);
  assert_int_equal(auth_keyring_set_signing(signer, kid_pub), AUTH_OK);
  char *tok = issue(signer, NOW, 600);
  /* The signer verifies with its derived public key... */
  auth_claims c;
  assert_int_equal(auth_token_verify(signer, tok, ISS, AUD, NOW, 30, &c, why, sizeof why), AUTH_OK);
  auth_claims_free(&c);
  /* ...and a verify-only ring holding just the public PEM does too. */
  auth_keyring *kr = make_ring();
  assert_int_equal(auth_token_verify(kr, tok, ISS, AUD, NOW, 30, &c, why, sizeof why), AUTH_OK);
  assert_string_equal(c.sub, "users/alice");
  assert_string_equal(c.kid, kid_pub);
  auth_claims_free(&c);
  /* Tampered signature. */
  char *sig = strrchr(tok, '.') + 1;
  sig[3] = sig[3] == 'A' ? 'B' : 'A';
  expect_rejected(kr, tok, NOW, ISS, AUD, "signature");
  free(tok);
  /* A verify-only key cannot sign. */
  assert_int_equal(auth_keyring_set_signing(kr, kid_pub), AUTH_ERR_INVALID);
  auth_keyring_free(kr);
  auth_keyring_free(signer);
}

static void rs256_round_trip(void **state) {
  (void)state;
  asymmetric_round_trip(AUTH_ALG_RS256, rsa_priv, "rs1");
}

static void es256_round_trip(void **state) {
  (void)state;
  asymmetric_round_trip(AUTH_ALG_ES256, ec_priv, "es1");
}

static void keyring_validation(void **state) {
  (void)state;
  auth_keyring *kr = make_ring();
  char why[160] = "";
  auth_key_spec dup = {.kid = "hs1",
                       .alg = AUTH_ALG_HS256,
                       .secret = (const unsigned char *)hs_old_secret,
                       .secret_len = strlen(hs_old_secret)};
  assert_int_equal(auth_keyring_add(kr, &dup, why, sizeof why), AUTH_ERR_INVALID);
  assert_non_null(strstr(why, "duplicate"));
  auth_key_spec weak = {.kid = "weak",
                        .alg = AUTH_ALG_HS256,
                        .secret = (const unsigned char *)"changeme_in_production",
                        .secret_len = 22};
  assert_int_equal(auth_keyring_add(kr, &weak, why, sizeof why), AUTH_ERR_INVALID);
  auth_key_spec bad_kid = dup;
  bad_kid.kid = "has space";
  assert_int_equal(auth_keyring_add(kr, &bad_kid, why, sizeof why), AUTH_ERR_INVALID);
  /* Wrong key type for the algorithm, garbage PEM, mismatched pair. */
  auth_key_spec wrong = {.kid = "x1", .alg = AUTH_ALG_ES256, .public_pem = rsa_pub};
  assert_int_equal(auth_keyring_add(kr, &wrong, why, sizeof why), AUTH_ERR_INVALID);
  wrong = (auth_key_spec){.kid = "x2", .alg = AUTH_ALG_RS256, .private_pem = ec_priv};
  assert_int_equal(auth_keyring_add(kr, &wrong, why, sizeof why), AUTH_ERR_INVALID);
  wrong = (auth_key_spec){.kid = "x3", .alg = AUTH_ALG_RS256, .public_pem = "-----BEGIN junk"};
  assert_int_equal(auth_keyring_add(kr, &wrong, why, sizeof why), AUTH_ERR_INVALID);
  wrong = (auth_key_spec){.kid = "x4", .alg = AUTH_ALG_RS256};
  assert_int_equal(auth_keyring_add(kr, &wrong, why, sizeof why), AUTH_ERR_INVALID);
  EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  char *other_priv, *other_pub;
  pem_pair(other, &other_priv, &other_pub);
  EVP_PKEY_free(other);
  wrong = (auth_key_spec){
      .kid = "x5", .alg = AUTH_ALG_ES256, .private_pem = ec_priv, .public_pem = other_pub};
  assert_int_equal(auth_keyring_add(kr, &wrong, why, sizeof why), AUTH_ERR_INVALID);
  assert_non_null(strstr(why, "does not match"));
  free(other_priv);
  free(other_pub);
  /* Issue refuses reserved extra claims and missing fields. */
  const auth_claim_kv extra[] = {{"exp", "1"}};
  auth_token_request req = {
      .sub = "u", .iss = ISS, .aud = AUD, .ttl_s = 60, .extra = extra, .n_extra = 1};
  char *tok = NULL;
  assert_int_equal(auth_token_issue(kr, &req, &tok), AUTH_ERR_INVALID);
  req.n_extra = 0;
  req.ttl_s = 0;
  assert_int_equal(auth_token_issue(kr, &req, &tok), AUTH_ERR_INVALID);
  req.ttl_s = 60;
  req.sub = NULL;
  assert_int_equal(auth_token_issue(kr, &req, &tok), AUTH_ERR_INVALID);
  assert_null(tok);
  auth_keyring_free(kr);
  /* No signing key. */
  assert_int_equal(auth_keyring_new(&kr), AUTH_OK);
  req.sub = "u";
  assert_int_equal(auth_token_issue(kr, &req, &tok), AUTH_ERR_INVALID);
  auth_keyring_free(kr);
}

static void secret_check(void **state) {
  (void)state;
  char why[160];
  assert_true(auth_secret_check(hs_secret, why, sizeof why));
  assert_true(auth_secret_check("3q2+7wABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhs=", why, sizeof why));
  struct {
    const char *secret;
    const char *reason;
  } bad[] = {
      {NULL, "no signing secret"},
      {"", "no signing secret"},
      {"changeme_in_production", "well-known default"},
      {"CHANGEME_IN_PRODUCTION", "well-known default"},
      {"secret", "well-known default"},
      {"changeme", "well-known default"},
      {"your-256-bit-secret", "well-known default"},
      {"development", "well-known default"},
      {"a-string-secret-at-least-256-bits-long", "well-known default"},
      {"Xk2pQ9vT4mW8zR1nB6yH3jL5cD0sGa7", "shorter than 32"},
      {"changeme_in_production_changeme_in_production", "placeholder"},
      {"please-replace-me-with-a-real-random-value", "placeholder"},
      {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "repeated"},
      {"abababababababababababababababababababab", "repeated"},
      {"0123456701234567012345670123456701234567", "repeated"},
      {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "variety"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    why[0] = '\0';
    assert_false(auth_secret_check(bad[i].secret, why, sizeof why));
    if (!strstr(why, bad[i].reason)) fail_msg("case %zu: \"%s\"", i, why);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(valid_token),
      cmocka_unit_test(audience_array_and_types),
      cmocka_unit_test(alg_none_rejected),
      cmocka_unit_test(key_confusion_rejected),
      cmocka_unit_test(bad_signature_rejected),
      cmocka_unit_test(time_claims),
      cmocka_unit_test(wrong_issuer_audience_kid),
      cmocka_unit_test(rotation_grace),
      cmocka_unit_test(rs256_round_trip),
      cmocka_unit_test(es256_round_trip),
      cmocka_unit_test(keyring_validation),
      cmocka_unit_test(secret_check),
  };
  return cmocka_run_group_tests(tests, setup_keys, teardown_keys);
}
