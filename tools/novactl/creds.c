/*
 * creds.c - reading, writing and locking novactl's credentials file (see
 * creds.h). Secrets pass through jansson, whose allocator main.c makes
 * wipe memory before freeing it, and through local buffers wiped here.
 */
#include "creds.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define CREDS_FORMAT_VERSION 1

int creds_resolve_path(const cli_ctx *ctx, char *buf, size_t len) {
  const char *explicit_path = cli_get(ctx, "credentials");
  const char *xdg = getenv("XDG_CONFIG_HOME");
  const char *home = getenv("HOME");
  int n;
  if (explicit_path && *explicit_path)
    n = snprintf(buf, len, "%s", explicit_path);
  else if (xdg && *xdg == '/')
    n = snprintf(buf, len, "%s/novactl/credentials", xdg);
  else if (home && *home)
    n = snprintf(buf, len, "%s/.config/novactl/credentials", home);
  else
    return out_usage_error(ctx->name, "no home directory: give --credentials FILE");
  if (n < 0 || (size_t)n >= len)
    return out_usage_error(ctx->name, "the credentials path is too long");
  return 0;
}

static void free_secret(char *s) {
  if (!s) return;
  explicit_bzero(s, strlen(s));
  free(s);
}

void creds_clear(cli_creds *creds) {
  free(creds->target);
  free(creds->username);
  free_secret(creds->session.access_token);
  free_secret(creds->session.refresh_token);
  free(creds->session.session);
  free(creds->session.refresh_request_id);
  creds->target = creds->username = NULL;
  memset(&creds->session, 0, sizeof(creds->session));
  creds->loaded = false;
}

/* A string member of the file; NULL when absent, empty or not a string. */
static bool take_string(json_t *obj, const char *key, char **out) {
  const char *v = json_string_value(json_object_get(obj, key));
  *out = NULL;
  if (!v || !*v) return true;
  return (*out = strdup(v)) != NULL;
}

static int64_t take_time(json_t *obj, const char *key) {
  json_t *v = json_object_get(obj, key);
  return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

/* Prints a refusal (unless command is NULL: quiet) and returns EXIT_USAGE. */
__attribute__((format(printf, 2, 3))) static int refuse(const char *command, const char *fmt, ...) {
  if (command) {
    va_list ap;
    fprintf(stderr, "novactl: %s: ", command);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
  }
  return EXIT_USAGE;
}

int creds_load(const char *command, const char *path, cli_creds *creds, bool *found) {
  struct stat st;
  json_error_t jerr;
  json_t *doc = NULL;
  int rc = 0;

  *found = false;
  if (path != creds->path) snprintf(creds->path, sizeof(creds->path), "%s", path);
  creds_clear(creds);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) return 0;
    return refuse(command, "cannot read the credentials file %s: %s", path, strerror(errno));
  }
  *found = true;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    rc = refuse(command, "the credentials file %s is not a regular file", path);
    goto cleanup;
  }
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    rc = refuse(command,
                "refusing the credentials file %s: group or others may access it (mode %04o) "
                "and its tokens may have been exposed. Run 'chmod 600 %s' (or log in again)",
                path, (unsigned)(st.st_mode & 07777), path);
    goto cleanup;
  }
  doc = json_loadfd(fd, JSON_REJECT_DUPLICATES, &jerr);
  if (!json_is_object(doc)) {
    rc = refuse(command, "the credentials file %s is not valid (%s): run 'novactl login' again",
                path, doc ? "not an object" : jerr.text);
    goto cleanup;
  }
  if (!take_string(doc, "target", &creds->target) ||
      !take_string(doc, "username", &creds->username) ||
      !take_string(doc, "access_token", &creds->session.access_token) ||
      !take_string(doc, "refresh_token", &creds->session.refresh_token) ||
      !take_string(doc, "session", &creds->session.session) ||
      !take_string(doc, "refresh_request_id", &creds->session.refresh_request_id)) {
    rc = refuse(command, "out of memory reading %s", path);
    goto cleanup;
  }
  creds->session.access_token_expire_time = take_time(doc, "access_token_expire_time");
  creds->session.refresh_token_expire_time = take_time(doc, "refresh_token_expire_time");
  if (!creds->target || !creds->session.access_token) {
    rc = refuse(command, "the credentials file %s has no %s: run 'novactl login' again", path,
                !creds->target ? "target" : "access token");
    goto cleanup;
  }
  creds->loaded = true;
cleanup:
  if (rc != 0) creds_clear(creds);
  json_decref(doc);
  close(fd);
  return rc;
}

/* mkdir -p for the directory part of `path`, new directories 0700. */
static int make_parents(const char *path, char *why, size_t len) {
  char dir[PATH_MAX];
  snprintf(dir, sizeof(dir), "%s", path);
  char *slash = strrchr(dir, '/');
  if (!slash || slash == dir) return 0;
  *slash = '\0';
  for (char *p = dir + 1;; p++) {
    bool end = *p == '\0';
    if (*p == '/' || end) {
      *p = '\0';
      if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(why, len, "cannot create %s: %s", dir, strerror(errno));
        return -1;
      }
      if (end) break;
      *p = '/';
    }
  }
  return 0;
}

static int write_all(int fd, const char *buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    buf += w;
    n -= (size_t)w;
  }
  return 0;
}

int creds_save(const char *path, const char *target, const char *username,
               const nc_session *session, char *why, size_t len) {
  char tmp[PATH_MAX] = "";
  char *text = NULL;
  int fd = -1;
  int rc = -1;
  json_t *doc = json_pack("{s:i, s:s, s:s, s:s, s:I, s:s*, s:I, s:s*, s:s*}", "version",
                          CREDS_FORMAT_VERSION, "target", target, "username",
                          username ? username : "", "access_token", session->access_token,
                          "access_token_expire_time", (json_int_t)session->access_token_expire_time,
                          "refresh_token", session->refresh_token, "refresh_token_expire_time",
                          (json_int_t)session->refresh_token_expire_time, "session",
                          session->session, "refresh_request_id", session->refresh_request_id);
  if (!doc || !(text = json_dumps(doc, JSON_INDENT(2)))) {
    snprintf(why, len, "out of memory");
    goto cleanup;
  }
  if (make_parents(path, why, len) != 0) goto cleanup;
  if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp)) {
    tmp[0] = '\0';
    snprintf(why, len, "the path is too long");
    goto cleanup;
  }
  fd = mkstemp(tmp); /* 0600 */
  if (fd < 0) {
    tmp[0] = '\0';
    snprintf(why, len, "cannot create a file next to %s: %s", path, strerror(errno));
    goto cleanup;
  }
  if (fchmod(fd, 0600) != 0 || write_all(fd, text, strlen(text)) != 0 ||
      write_all(fd, "\n", 1) != 0 || fsync(fd) != 0) {
    snprintf(why, len, "cannot write %s: %s", tmp, strerror(errno));
    goto cleanup;
  }
  if (close(fd) != 0) {
    fd = -1;
    snprintf(why, len, "cannot write %s: %s", tmp, strerror(errno));
    goto cleanup;
  }
  fd = -1;
  if (rename(tmp, path) != 0) {
    snprintf(why, len, "cannot replace %s: %s", path, strerror(errno));
    goto cleanup;
  }
  tmp[0] = '\0';
  /* make the rename durable */
  char dir[PATH_MAX];
  snprintf(dir, sizeof(dir), "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = '\0';
  int dfd = open(slash ? (dir[0] ? dir : "/") : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  rc = 0;
cleanup:
  if (fd >= 0) close(fd);
  if (rc != 0 && tmp[0]) unlink(tmp);
  if (text) {
    explicit_bzero(text, strlen(text));
    free(text);
  }
  json_decref(doc);
  return rc;
}

int creds_remove(const char *path, char *why, size_t len) {
  if (unlink(path) != 0 && errno != ENOENT) {
    snprintf(why, len, "cannot delete %s: %s", path, strerror(errno));
    return -1;
  }
  return 0;
}

int creds_lock(const char *path) {
  char lock_path[PATH_MAX + 8];
  snprintf(lock_path, sizeof(lock_path), "%s.lock", path);
  int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return -1;
  while (flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      close(fd);
      return -1;
    }
  }
  return fd;
}

void creds_unlock(int fd) {
  if (fd < 0) return;
  flock(fd, LOCK_UN);
  close(fd);
}

/* Deep copy of a session into `out` (cleared first); false when out of
 * memory. */
static bool copy_session(nc_session *out, const nc_session *in) {
  memset(out, 0, sizeof(*out));
  out->access_token_expire_time = in->access_token_expire_time;
  out->refresh_token_expire_time = in->refresh_token_expire_time;
  if ((in->access_token && !(out->access_token = strdup(in->access_token))) ||
      (in->refresh_token && !(out->refresh_token = strdup(in->refresh_token))) ||
      (in->session && !(out->session = strdup(in->session))) ||
      (in->refresh_request_id && !(out->refresh_request_id = strdup(in->refresh_request_id))))
    return false;
  return true;
}

void creds_session_changed(const nc_session *session, void *arg) {
  cli_creds *creds = arg;
  char why[PATH_MAX + 128];
  int rc;
  if (!session) {
    rc = creds_remove(creds->path, why, sizeof(why));
    free_secret(creds->session.access_token);
    free_secret(creds->session.refresh_token);
    free(creds->session.session);
    free(creds->session.refresh_request_id);
    memset(&creds->session, 0, sizeof(creds->session));
  } else {
    nc_session copy;
    rc = creds_save(creds->path, creds->target, creds->username, session, why, sizeof(why));
    if (copy_session(&copy, session)) {
      free_secret(creds->session.access_token);
      free_secret(creds->session.refresh_token);
      free(creds->session.session);
      free(creds->session.refresh_request_id);
      creds->session = copy;
    } else {
      free_secret(copy.access_token);
      free_secret(copy.refresh_token);
      free(copy.session);
      free(copy.refresh_request_id);
    }
  }
  if (rc != 0 && !creds->save_warned) {
    creds->save_warned = true;
    fprintf(stderr,
            "novactl: warning: the session changed but could not be saved (%s); the next "
            "command may need 'novactl login'\n",
            why);
  }
}
