/*
 * log.h - structured logging: one JSON object per line on stderr.
 *
 * Every record has "ts" (RFC 3339, UTC, milliseconds), "level" and "msg",
 * followed by typed key/value fields. A record is written with a single
 * write(2) so concurrent threads never interleave within a line. This module
 * depends on nothing else in the project.
 */
#ifndef NC_UTIL_LOG_H
#define NC_UTIL_LOG_H

#include <stdbool.h>
#include <stddef.h>

typedef enum nc_log_level {
  NC_LOG_DEBUG = 0,
  NC_LOG_INFO = 1,
  NC_LOG_WARN = 2,
  NC_LOG_ERROR = 3,
} nc_log_level;

typedef enum nc_log_kv_type {
  NC_KV_STR,
  NC_KV_INT,
  NC_KV_DOUBLE,
  NC_KV_BOOL,
} nc_log_kv_type;

/* One field of a record. Build them with the LKV_* macros. */
typedef struct nc_log_kv {
  const char *key;
  nc_log_kv_type type;
  union {
    const char *s;
    long long i;
    double d;
    bool b;
  } v;
} nc_log_kv;

#define LKV_S(k, val) ((nc_log_kv){.key = (k), .type = NC_KV_STR, .v.s = (val)})
#define LKV_I(k, val) ((nc_log_kv){.key = (k), .type = NC_KV_INT, .v.i = (long long)(val)})
#define LKV_D(k, val) ((nc_log_kv){.key = (k), .type = NC_KV_DOUBLE, .v.d = (double)(val)})
#define LKV_B(k, val) ((nc_log_kv){.key = (k), .type = NC_KV_BOOL, .v.b = (val)})

/* Sets the minimum level written; the default is NC_LOG_INFO. */
void nc_log_set_level(nc_log_level level);
nc_log_level nc_log_get_level(void);
/* Parses "debug", "info", "warn" or "error". Returns false on anything else. */
bool nc_log_parse_level(const char *text, nc_log_level *out);
/* Redirects records to a file descriptor (default 2). For tests. */
void nc_log_set_fd(int fd);

static inline bool nc_log_enabled(nc_log_level level) { return level >= nc_log_get_level(); }

/* Writes one record with `n` fields. */
void nc_log_kv_write(nc_log_level level, const char *msg, const nc_log_kv *fields, size_t n);
/* Writes one record whose message is formatted printf-style. */
void nc_log_printf(nc_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* nc_log(level, "message", LKV_S("key", value), ...) */
#define nc_log(level, msg, ...)                                                \
  do {                                                                         \
    if (nc_log_enabled(level)) {                                               \
      const nc_log_kv nc_log_fields_[] = {LKV_S(NULL, NULL), __VA_ARGS__};     \
      nc_log_kv_write((level), (msg), nc_log_fields_ + 1,                      \
                      sizeof(nc_log_fields_) / sizeof(nc_log_fields_[0]) - 1); \
    }                                                                          \
  } while (0)

#define nc_debugf(...) nc_log_printf(NC_LOG_DEBUG, __VA_ARGS__)
#define nc_infof(...) nc_log_printf(NC_LOG_INFO, __VA_ARGS__)
#define nc_warnf(...) nc_log_printf(NC_LOG_WARN, __VA_ARGS__)
#define nc_errorf(...) nc_log_printf(NC_LOG_ERROR, __VA_ARGS__)

#endif
