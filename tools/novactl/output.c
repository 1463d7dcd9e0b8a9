/*
 * output.c - rendering of command results (table or JSON) and of errors.
 * Commands never printf results themselves, so every command gets both
 * formats and the same error shape for free.
 */
#include "output.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool out_parse_format(const char *text, out_format *format) {
  if (strcmp(text, "table") == 0) {
    *format = OUT_TABLE;
    return true;
  }
  if (strcmp(text, "json") == 0) {
    *format = OUT_JSON;
    return true;
  }
  return false;
}

/* The text a table shows for a JSON value; free() it. */
static char *cell_text(const json_t *v) {
  char *text = NULL;
  if (!v || json_is_null(v)) return strdup("-");
  if (json_is_string(v)) return strdup(json_string_value(v));
  if (json_is_true(v)) return strdup("true");
  if (json_is_false(v)) return strdup("false");
  if (json_is_integer(v)) {
    char buf[32];
    snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    return strdup(buf);
  }
  text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  return text ? text : strdup("?");
}

static void print_json(json_t *v) {
  char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  if (text) {
    fputs(text, stdout);
    fputc('\n', stdout);
    free(text);
  }
  fflush(stdout);
}

void out_scalar(out_format format, json_t *obj, const char *key) {
  if (format == OUT_JSON) {
    print_json(obj);
  } else {
    char *text = cell_text(json_object_get(obj, key));
    if (text) puts(text);
    free(text);
    fflush(stdout);
  }
  json_decref(obj);
}

void out_object(out_format format, json_t *obj, const out_column *cols, size_t ncols) {
  if (format == OUT_JSON) {
    print_json(obj);
    json_decref(obj);
    return;
  }
  int width = 0;
  for (size_t c = 0; c < ncols; c++) {
    int n = (int)strlen(cols[c].header);
    if (n > width) width = n;
  }
  for (size_t c = 0; c < ncols; c++) {
    char *text = cell_text(json_object_get(obj, cols[c].key));
    printf("%-*s  %s\n", width, cols[c].header, text ? text : "?");
    free(text);
  }
  fflush(stdout);
  json_decref(obj);
}

void out_list(out_format format, json_t *rows, const out_column *cols, size_t ncols) {
  size_t nrows = json_array_size(rows);
  char **cells = NULL;
  int *widths = NULL;
  if (format == OUT_JSON) {
    print_json(rows);
    goto cleanup;
  }
  cells = calloc(nrows * ncols + 1, sizeof(*cells));
  widths = calloc(ncols + 1, sizeof(*widths));
  if (!cells || !widths) {
    fputs("novactl: out of memory\n", stderr);
    goto cleanup;
  }
  for (size_t c = 0; c < ncols; c++)
    widths[c] = (int)strlen(cols[c].header);
  for (size_t r = 0; r < nrows; r++) {
    for (size_t c = 0; c < ncols; c++) {
      char *text = cell_text(json_object_get(json_array_get(rows, r), cols[c].key));
      cells[r * ncols + c] = text;
      if (text && (int)strlen(text) > widths[c]) widths[c] = (int)strlen(text);
    }
  }
  for (size_t c = 0; c < ncols; c++)
    printf("%-*s%s", c + 1 < ncols ? widths[c] : 0, cols[c].header, c + 1 < ncols ? "  " : "\n");
  for (size_t r = 0; r < nrows; r++) {
    for (size_t c = 0; c < ncols; c++) {
      const char *text = cells[r * ncols + c] ? cells[r * ncols + c] : "?";
      printf("%-*s%s", c + 1 < ncols ? widths[c] : 0, text, c + 1 < ncols ? "  " : "\n");
    }
  }
  fflush(stdout);
cleanup:
  if (cells) {
    for (size_t i = 0; i < nrows * ncols; i++)
      free(cells[i]);
  }
  free(cells);
  free(widths);
  json_decref(rows);
}

int out_sdk_error(const char *command, nc_status status, const nc_error *err) {
  const char *message = err && err->message[0] ? err->message : nc_strerror(status);
  fprintf(stderr, "novactl: %s: ", command);
  if (status == NC_ERR_RPC && err) {
    const char *code = nc_grpc_code_name(err->code);
    /* an empty status message comes back as the code name: say it once */
    if (strcmp(code, message) == 0)
      fputs(code, stderr);
    else
      fprintf(stderr, "%s: %s", code, message);
  } else {
    fputs(message, stderr);
  }
  if (err && err->request_id[0]) fprintf(stderr, " (request id %s)", err->request_id);
  fputc('\n', stderr);
  if (status == NC_ERR_RPC && err && err->code == NC_GRPC_UNAUTHENTICATED &&
      strcmp(command, "login") != 0 && strcmp(command, "user passwd") != 0)
    fputs(
        "novactl: log in with 'novactl login', or give an API key (--api-key-file or "
        "$NOVACRON_API_KEY)\n",
        stderr);
  return status == NC_ERR_INVALID_ARGUMENT ? EXIT_USAGE : EXIT_FAILURE_RPC;
}

int out_usage_error(const char *command, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "novactl: %s%s", command ? command : "", command ? ": " : "");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nRun 'novactl %s%s--help' for usage.\n", command ? command : "",
          command ? " " : "");
  return EXIT_USAGE;
}
