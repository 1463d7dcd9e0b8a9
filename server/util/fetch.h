/*
 * fetch.h - downloading an http(s) URL into a caller's sink (libcurl),
 * for image imports. Redirects are not followed and only http and https
 * are spoken; https verifies the server against the system's CA store.
 */
#ifndef NC_UTIL_FETCH_H
#define NC_UTIL_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum nc_fetch_status {
  NC_FETCH_OK = 0,
  NC_FETCH_NOT_FOUND,   /* 404 or 410 */
  NC_FETCH_REFUSED,     /* another status, a redirect, a TLS failure, no body */
  NC_FETCH_UNREACHABLE, /* name resolution, connection, timeouts, a cut transfer */
  NC_FETCH_ABORTED,     /* the sink said stop; err holds its message */
  NC_FETCH_INTERNAL,
} nc_fetch_status;

typedef struct nc_fetch_sink {
  /* Once the headers of a 200 answer are in: the body's length (-1 when
   * the server sent none). Nonzero stops the transfer (NC_FETCH_ABORTED,
   * with the message the sink wrote into err). */
  int (*begin)(void *arg, int64_t length, char *err, size_t errlen);
  /* Each piece of the body, in order; nonzero stops as begin. */
  int (*data)(void *arg, const void *buf, size_t n, char *err, size_t errlen);
  /* About once a second, data or not (optional); nonzero stops as begin. */
  int (*tick)(void *arg, char *err, size_t errlen);
  void *arg;
} nc_fetch_sink;

typedef struct nc_fetch_opts {
  int connect_timeout_s; /* 0: 30 */
  int stall_timeout_s;   /* below 1 KiB/s this long ends it; 0: 60 */
} nc_fetch_opts;

/* GETs `url` into `sink`. A body shorter than its Content-Length is
 * NC_FETCH_UNREACHABLE. err gets a human message on failure. */
nc_fetch_status nc_fetch(const char *url, const nc_fetch_opts *opts, const nc_fetch_sink *sink,
                         char *err, size_t errlen);

/* Checks an http(s) URL and writes its normalized form (scheme and host
 * lower-cased, "." and ".." segments resolved, "/" for an empty path) to
 * out. False, with the reason in why, for another scheme, credentials in
 * the URL, a fragment, no host, or more than 2048 bytes. */
bool nc_url_normalize(const char *url, char *out, size_t outlen, char *why, size_t whylen);

/* True when normalized `url` lies under normalized `prefix`: equal, or
 * longer at a "/" boundary ("https://a/img" is under "https://a/", not
 * under "https://a/im"; "https://a.example.evil/" is not under
 * "https://a.example"). */
bool nc_url_under(const char *url, const char *prefix);

#endif
