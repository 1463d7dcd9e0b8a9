/*
 * status.c - descriptions of auth_status values.
 */
#include "auth/auth.h"

const char *auth_strerror(auth_status s) {
  switch (s) {
  case AUTH_OK: return "ok";
  case AUTH_ERR_INVALID: return "invalid argument or malformed input";
  case AUTH_ERR_SPACE: return "output buffer too small";
  case AUTH_ERR_CRYPTO: return "cryptographic library failure";
  case AUTH_ERR_NOMEM: return "out of memory";
  case AUTH_ERR_REJECTED: return "rejected";
  }
  return "unknown auth status";
}
