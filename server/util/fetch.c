/*
 * fetch.c - http(s) downloads with libcurl (util/fetch.h).
 */
#include "util/fetch.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define URL_MAX 2048

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static bool init_ok(void) {
  pthread_once(&curl_once, curl_init);
  return curl_init_rc == CURLE_OK;
}

static bool say(char *buf, size_t len, const char *msg) {
  if (buf && len) snprintf(buf, len, "%s", msg);
  return false;
}

/* libcurl resolves literal "." and ".." segments but leaves encoded ones
 * (and backslashes), which web servers may decode and resolve: a path
 * with them could leave an allowed prefix after the comparison. */
static bool path_plain(CURLU *u) {
  char *path = NULL;
  if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) return false;
  bool ok = !strchr(path, '\\');
  for (const char *p = path; ok && (p = strchr(p, '%')); p++)
    if (p[1] && p[2]) {
      char hex[3] = {p[1], p[2], 0};
      long v = strtol(hex, NULL, 16);
      ok = v != '.' && v != '/' && v != '\\';
    }
  curl_free(path);
  return ok;
}

/* Host names compare case-insensitively: the normalized URL has them in
 * lower case (libcurl keeps them as given). */
static bool lower_host(CURLU *u, char *host) {
  for (char *p = host; *p; p++)
    if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
  return curl_url_set(u, CURLUPART_HOST, host, 0) == CURLUE_OK;
}

bool nc_url_normalize(const char *url, char *out, size_t outlen, char *why, size_t whylen) {
  if (!url || !*url) return say(why, whylen, "a URL is required");
  if (strlen(url) > URL_MAX) return say(why, whylen, "longer than 2048 bytes");
  for (const unsigned char *p = (const unsigned char *)url; *p; p++)
    if (*p <= ' ' || *p >= 0x7f)
      return say(why, whylen, "spaces and control or non-ASCII characters must be %-encoded");
  if (!init_ok()) return say(why, whylen, "libcurl did not initialize");
  CURLU *u = curl_url();
  if (!u) return say(why, whylen, "out of memory");
  bool ok = false;
  char *scheme = NULL, *user = NULL, *password = NULL, *fragment = NULL, *host = NULL;
  char *full = NULL;
  CURLUcode rc = curl_url_set(u, CURLUPART_URL, url, 0);
  if (rc != CURLUE_OK) {
    if (why && whylen) snprintf(why, whylen, "not a valid URL (%s)", curl_url_strerror(rc));
  } else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
             (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
    say(why, whylen, "only http:// and https:// URLs are accepted");
  } else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
             curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK) {
    say(why, whylen,
        "credentials in the URL are not accepted (they would be stored with the "
        "volume)");
  } else if (curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0) == CURLUE_OK) {
    say(why, whylen, "a URL with a #fragment is not accepted");
  } else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) {
    say(why, whylen, "the URL has no host");
  } else if (!path_plain(u)) {
    say(why, whylen,
        "backslashes and %-encoded '.', '/' or '\\' are not accepted in the path "
        "(a server could resolve them out of an allowed prefix)");
  } else if (!lower_host(u, host) || curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
    say(why, whylen, "not a valid URL");
  } else if (strlen(full) >= outlen || strlen(full) > URL_MAX) {
    say(why, whylen, "longer than 2048 bytes");
  } else {
    snprintf(out, outlen, "%s", full);
    ok = true;
  }
  curl_free(scheme);
  curl_free(user);
  curl_free(password);
  curl_free(fragment);
  curl_free(host);
  curl_free(full);
  curl_url_cleanup(u);
  return ok;
}

bool nc_url_under(const char *url, const char *prefix) {
  size_t n = strlen(prefix);
  if (n == 0 || strncmp(url, prefix, n) != 0) return false;
  return url[n] == '\0' || prefix[n - 1] == '/' || url[n] == '/' || url[n] == '?';
}

/* ---- the transfer ---- */

typedef struct xfer {
  CURL *curl;
  const nc_fetch_sink *sink;
  bool begun;
  bool refused; /* the status was not 200: the body is not ours */
  bool aborted; /* the sink stopped it */
  long status;
  char *err;
  size_t errlen;
} xfer;

static bool start(xfer *x) {
  x->begun = true;
  curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &x->status);
  if (x->status != 200) {
    x->refused = true;
    return false;
  }
  curl_off_t len = -1;
  if (curl_easy_getinfo(x->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len) != CURLE_OK) len = -1;
  if (x->sink->begin && x->sink->begin(x->sink->arg, (int64_t)len, x->err, x->errlen) != 0) {
    x->aborted = true;
    return false;
  }
  return true;
}

static size_t on_data(char *buf, size_t size, size_t nmemb, void *arg) {
  xfer *x = arg;
  size_t n = size * nmemb;
  if (!x->begun && !start(x)) return 0;
  if (n && x->sink->data && x->sink->data(x->sink->arg, buf, n, x->err, x->errlen) != 0) {
    x->aborted = true;
    return 0;
  }
  return n;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
  (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
  xfer *x = arg;
  if (x->sink->tick && x->sink->tick(x->sink->arg, x->err, x->errlen) != 0) {
    x->aborted = true;
    return 1;
  }
  return 0;
}

/* The end of the headers: the sink learns the length before any body
 * (which a refused length would never reach). */
static size_t on_header(char *buf, size_t size, size_t nitems, void *arg) {
  xfer *x = arg;
  size_t n = size * nitems;
  bool end = (n == 2 && buf[0] == '\r' && buf[1] == '\n') || (n == 1 && buf[0] == '\n');
  long code = 0;
  curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
  if (end && !x->begun && code >= 200 && !start(x)) return 0;
  return n;
}

static nc_fetch_status status_failure(xfer *x, const char *url) {
  if (x->status >= 300 && x->status < 400) {
    char *to = NULL;
    curl_easy_getinfo(x->curl, CURLINFO_REDIRECT_URL, &to);
    snprintf(x->err, x->errlen,
             "%s answered %ld, a redirect to %s; redirects are not followed: give the final URL",
             url, x->status, to ? to : "(no Location)");
    return NC_FETCH_REFUSED;
  }
  snprintf(x->err, x->errlen, "%s answered HTTP %ld", url, x->status);
  return x->status == 404 || x->status == 410 ? NC_FETCH_NOT_FOUND : NC_FETCH_REFUSED;
}

nc_fetch_status nc_fetch(const char *url, const nc_fetch_opts *opts, const nc_fetch_sink *sink,
                         char *err, size_t errlen) {
  char scratch[8];
  if (!err || !errlen) {
    err = scratch;
    errlen = sizeof(scratch);
  }
  err[0] = '\0';
  if (!init_ok()) return snprintf(err, errlen, "libcurl did not initialize"), NC_FETCH_INTERNAL;
  CURL *curl = curl_easy_init();
  if (!curl) return snprintf(err, errlen, "out of memory"), NC_FETCH_INTERNAL;
  xfer x = {.curl = curl, .sink = sink, .err = err, .errlen = errlen};
  char cerr[CURL_ERROR_SIZE] = "";
  long connect_s = opts && opts->connect_timeout_s > 0 ? opts->connect_timeout_s : 30;
  long stall_s = opts && opts->stall_timeout_s > 0 ? opts->stall_timeout_s : 60;
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, connect_s);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, stall_s);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "novacron-server");
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, cerr);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &x);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &x);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &x);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  CURLcode rc = curl_easy_perform(curl);
  nc_fetch_status st = NC_FETCH_OK;
  if (x.aborted) {
    st = NC_FETCH_ABORTED; /* the sink's message is in err */
  } else if (x.refused) {
    st = status_failure(&x, url);
  } else if (rc != CURLE_OK) {
    const char *what = cerr[0] ? cerr : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING: st = NC_FETCH_UNREACHABLE; break;
    default: st = NC_FETCH_REFUSED; break;
    }
    snprintf(err, errlen, "downloading %s failed: %s", url, what);
  } else if (!x.begun && !start(&x)) { /* an answer without a body */
    st = x.aborted ? NC_FETCH_ABORTED : status_failure(&x, url);
  }
  curl_easy_cleanup(curl);
  return st;
}
