/*
 * output.h - how novactl shows results and errors. Commands build jansson
 * values; these helpers render them as a human table or as JSON (one
 * compact document per line, so streams and lists pipe into jq), and print
 * failures to stderr in one consistent shape.
 */
#ifndef NOVACTL_OUTPUT_H
#define NOVACTL_OUTPUT_H

#include <jansson.h>
#include <novacron/novacron.h>
#include <stddef.h>

typedef enum out_format {
  OUT_TABLE, /* aligned columns for people */
  OUT_JSON,  /* one JSON document per line for programs */
} out_format;

/* A table column: its header and the JSON key it shows. */
typedef struct out_column {
  const char *header;
  const char *key;
} out_column;

/* Exit codes shared by every command. */
enum {
  EXIT_OK = 0,
  EXIT_FAILURE_RPC = 1, /* the call or the connection failed */
  EXIT_USAGE = 2,       /* bad flags or arguments */
  EXIT_NOT_SERVING = 3, /* health: the server or service is not serving */
};

/* "table" or "json" -> *format; false for anything else. */
bool out_parse_format(const char *text, out_format *format);

/* One value of `obj` alone (table) or the whole object (JSON). Takes the
 * reference to obj. Flushes stdout, so it suits streamed items. */
void out_scalar(out_format format, json_t *obj, const char *key);
/* One record: "header  value" lines (table) or the object (JSON). Takes
 * the reference to obj. */
void out_object(out_format format, json_t *obj, const out_column *cols, size_t ncols);
/* Records under a header row (table) or a JSON array. Takes the reference
 * to rows (an array of objects). */
void out_list(out_format format, json_t *rows, const out_column *cols, size_t ncols);

/* Prints "novactl: CMD: CODE: message (request id ID)" for a failed SDK
 * call and returns the exit code for it. */
int out_sdk_error(const char *command, nc_status status, const nc_error *err);
/* Prints "novactl: CMD: message" plus a --help hint; returns EXIT_USAGE. */
int out_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
