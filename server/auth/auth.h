/*
 * auth.h - status codes shared by the auth module (passwords, policy, tokens).
 *
 * Every auth_* function returns an auth_status and writes results through
 * out-parameters. A status says what kind of failure happened; the human
 * reason, where a caller needs one, goes to a `why` buffer. Nothing here ever
 * echoes a password, secret or token into a message or a log.
 */
#ifndef NC_AUTH_AUTH_H
#define NC_AUTH_AUTH_H

#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>

typedef enum auth_status {
  AUTH_OK = 0,
  AUTH_ERR_INVALID = 1, /* bad argument or malformed input (hash string, token, key) */
  AUTH_ERR_SPACE = 2,   /* the output buffer is too small */
  AUTH_ERR_CRYPTO = 3,  /* OpenSSL or libjwt failed */
  AUTH_ERR_NOMEM = 4,   /* allocation failed */
  AUTH_ERR_REJECTED = 5 /* well-formed but refused: bad signature, expired, wrong audience... */
} auth_status;

/* A static English description of `s`. */
const char *auth_strerror(auth_status s);

/* Writes a printf-style reason into `why` (when given) and returns false:
 * `return auth_refuse(why, len, "too short");` in the checks. */
bool auth_refuse(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The va_list form: formats into `why` when given. */
void auth_vreason(char *why, size_t whylen, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
