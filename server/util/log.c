/*
 * log.c - JSON-lines logger. Records are assembled in a stack buffer
 * (truncated, never overflowed, at NC_LOG_LINE_MAX) and written at once.
 */
#include "util/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NC_LOG_LINE_MAX 8192

static atomic_int g_level = NC_LOG_INFO;
static atomic_int g_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void nc_log_set_level(nc_log_level level) { atomic_store(&g_level, (int)level); }

nc_log_level nc_log_get_level(void) { return (nc_log_level)atomic_load(&g_level); }

void nc_log_set_fd(int fd) { atomic_store(&g_fd, fd); }

bool nc_log_parse_level(const char *text, nc_log_level *out) {
  if (text == NULL) return false;
  for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
    if (strcmp(text, level_names[i]) == 0) {
      *out = (nc_log_level)i;
      return true;
    }
  }
  if (strcmp(text, "warning") == 0) {
    *out = NC_LOG_WARN;
    return true;
  }
  return false;
}

typedef struct line {
  char buf[NC_LOG_LINE_MAX];
  size_t len;
  bool truncated;
} line;

/* Room kept at the end for ",\"truncated\":true}\n". */
#define NC_LOG_TAIL 24

static void put(line *l, const char *s, size_t n) {
  size_t room = sizeof(l->buf) - NC_LOG_TAIL - l->len;
  if (n > room) {
    n = room;
    l->truncated = true;
  }
  memcpy(l->buf + l->len, s, n);
  l->len += n;
}

static void puts_raw(line *l, const char *s) { put(l, s, strlen(s)); }

static void put_json_string(line *l, const char *s) {
  static const char hex[] = "0123456789abcdef";
  put(l, "\"", 1);
  if (s == NULL) s = "";
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    char esc[6];
    if (sizeof(l->buf) - NC_LOG_TAIL - l->len < 8) { /* keep room to close the string */
      l->truncated = true;
      break;
    }
    switch (*p) {
    case '"': put(l, "\\\"", 2); break;
    case '\\': put(l, "\\\\", 2); break;
    case '\n': put(l, "\\n", 2); break;
    case '\r': put(l, "\\r", 2); break;
    case '\t': put(l, "\\t", 2); break;
    default:
      if (*p < 0x20 || *p == 0x7f) {
        memcpy(esc, "\\u00", 4);
        esc[4] = hex[*p >> 4];
        esc[5] = hex[*p & 0xf];
        put(l, esc, 6);
      } else {
        put(l, (const char *)p, 1);
      }
    }
  }
  put(l, "\"", 1);
}

static void put_key(line *l, const char *key) {
  put(l, ",", 1);
  put_json_string(l, key);
  put(l, ":", 1);
}

static void write_line(line *l) {
  if (l->truncated) {
    /* the partial field was rolled back: say so, and stay valid JSON */
    const char tail[] = ",\"truncated\":true";
    memcpy(l->buf + l->len, tail, sizeof(tail) - 1);
    l->len += sizeof(tail) - 1;
  }
  l->buf[l->len++] = '}';
  l->buf[l->len++] = '\n';
  int fd = atomic_load(&g_fd);
  size_t off = 0;
  while (off < l->len) {
    ssize_t w = write(fd, l->buf + off, l->len - off);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    off += (size_t)w;
  }
}

static void begin(line *l, nc_log_level level, const char *msg) {
  struct timespec ts;
  struct tm tm;
  char tbuf[64];
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(tbuf + n, sizeof(tbuf) - n, ".%03ldZ", ts.tv_nsec / 1000000);
  l->len = 0;
  l->truncated = false;
  puts_raw(l, "{\"ts\":\"");
  puts_raw(l, tbuf);
  puts_raw(l, "\",\"level\":\"");
  puts_raw(l, level_names[level]);
  puts_raw(l, "\",\"msg\":");
  put_json_string(l, msg);
}

void nc_log_kv_write(nc_log_level level, const char *msg, const nc_log_kv *fields, size_t n) {
  if (!nc_log_enabled(level)) return;
  line l;
  begin(&l, level, msg);
  for (size_t i = 0; i < n && !l.truncated; i++) {
    char num[64];
    const nc_log_kv *f = &fields[i];
    size_t mark = l.len;
    put_key(&l, f->key);
    switch (f->type) {
    case NC_KV_STR:
      if (f->v.s == NULL)
        puts_raw(&l, "null");
      else
        put_json_string(&l, f->v.s);
      break;
    case NC_KV_INT:
      snprintf(num, sizeof(num), "%lld", f->v.i);
      puts_raw(&l, num);
      break;
    case NC_KV_DOUBLE:
      snprintf(num, sizeof(num), "%.3f", f->v.d);
      puts_raw(&l, num);
      break;
    case NC_KV_BOOL: puts_raw(&l, f->v.b ? "true" : "false"); break;
    }
    if (l.truncated) l.len = mark; /* drop the field that did not fit */
  }
  write_line(&l);
}

void nc_log_printf(nc_log_level level, const char *fmt, ...) {
  if (!nc_log_enabled(level)) return;
  char msg[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  nc_log_kv_write(level, msg, NULL, 0);
}
