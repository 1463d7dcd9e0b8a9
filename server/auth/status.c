/*
 * status.c - descriptions of auth_status values.
 */
#include "auth/auth.h"

#include <stdarg.h>
#include <stdio.h>

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

void auth_vreason(char *why, size_t whylen, const char *fmt, va_list ap) {
  if (why && whylen) vsnprintf(why, whylen, fmt, ap);
}

bool auth_refuse(char *why, size_t whylen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  auth_vreason(why, whylen, fmt, ap);
  va_end(ap);
  return false;
}
