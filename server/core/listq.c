/*
 * listq.c - List request (filter, order_by, page_size, page_token) -> SQL
 * fragments and parameters; next_page_token. The grammar and the safety
 * contract are in listq.h.
 *
 * Every byte written to where/order/limit comes from a string literal in
 * this file, a column of the caller's spec, or a placeholder number; input
 * text only ever lands in `storage`, behind params. Keep it that way: never
 * format anything taken from the request into the SQL buffers.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/listq.h"

#define TOKEN_VERSION 1
#define TOKEN_BYTES 17 /* version, offset (8, little-endian), request hash (8) */
#define TOKEN_CHARS 23 /* base64url of 17 bytes, unpadded */
#define MAX_NAME 128   /* longer field names are unknown without a lookup */
#define ECHO "%.64s"   /* how much input an error message quotes */

typedef struct builder {
  const lq_spec *spec;
  lq_query *q;
  int first_param;
  size_t where_len, storage_used;
  char *err;
  size_t errlen;
} builder;

typedef enum op_kind { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE } op_kind;

/* The only operators that reach the SQL, indexed by op_kind. */
static const struct {
  const char *text, *sql;
} ops[] = {
    [OP_EQ] = {"=", "="}, [OP_NE] = {"!=", "IS DISTINCT FROM"},
    [OP_LT] = {"<", "<"}, [OP_LE] = {"<=", "<="},
    [OP_GT] = {">", ">"}, [OP_GE] = {">=", ">="},
};

__attribute__((format(printf, 2, 3))) static int fail(builder *b, const char *fmt, ...) {
  if (b->err && b->errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err, b->errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* Appends to buf (size bytes, *len used); -1 when it does not fit. */
__attribute__((format(printf, 4, 5))) static int append(char *buf, size_t size, size_t *len,
                                                        const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + *len, size - *len, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= size - *len) {
    buf[*len] = '\0';
    return -1;
  }
  *len += (size_t)n;
  return 0;
}

/* Copies len bytes into storage as the next parameter; its $N, or -1 when full. */
static int add_param(builder *b, const char *text, size_t len) {
  lq_query *q = b->q;
  if (q->nparams >= LQ_MAX_PARAMS || len + 1 > sizeof(q->storage) - b->storage_used) return -1;
  char *p = q->storage + b->storage_used;
  memcpy(p, text, len);
  p[len] = '\0';
  b->storage_used += len + 1;
  q->params[q->nparams] = p;
  return b->first_param + q->nparams++;
}

static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_name_start(char c) { return is_alpha(c) || c == '_'; }
/* c is one of the characters in set (never true for NUL, unlike a bare strchr). */
static bool in_set(char c, const char *set) { return c != '\0' && strchr(set, c) != NULL; }
static bool is_name_char(char c) { return is_alpha(c) || is_digit(c) || in_set(c, "_.-"); }
static bool is_bare_char(char c) { return is_alpha(c) || is_digit(c) || in_set(c, "_.-:+"); }
static bool is_op_char(char c) { return in_set(c, "=!<>:~"); }

static bool word_is(const char *s, size_t n, const char *word) {
  return strlen(word) == n && memcmp(s, word, n) == 0;
}

static size_t skip_spaces(const char *s, size_t i) {
  while (s[i] == ' ')
    i++;
  return i;
}

/* Rejects control characters and invalid UTF-8 (overlong, surrogate, > U+10FFFF). */
static int check_text(builder *b, const char *what, const char *s) {
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; u[i];) {
    unsigned c = u[i];
    if (c < 0x20 || c == 0x7f) return fail(b, "%s: control character at offset %zu", what, i);
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t n = c >= 0xc2 && c <= 0xdf   ? 2
               : c >= 0xe0 && c <= 0xef ? 3
               : c >= 0xf0 && c <= 0xf4 ? 4
                                        : 0;
    if (n == 0) return fail(b, "%s: not valid UTF-8", what);
    for (size_t k = 1; k < n; k++)
      if ((u[i + k] & 0xc0) != 0x80) return fail(b, "%s: not valid UTF-8", what);
    if ((c == 0xe0 && u[i + 1] < 0xa0) || (c == 0xed && u[i + 1] > 0x9f) ||
        (c == 0xf0 && u[i + 1] < 0x90) || (c == 0xf4 && u[i + 1] > 0x8f))
      return fail(b, "%s: not valid UTF-8", what);
    i += n;
  }
  return 0;
}

/* "a, b, c": the names of the fields that can be filtered (or ordered) by. */
static void field_list(const lq_spec *spec, bool orderable, char *buf, size_t size) {
  size_t len = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < spec->nfields; i++) {
    const lq_field *f = &spec->fields[i];
    if (!(orderable ? f->orderable : f->filterable)) continue;
    if (append(buf, size, &len, "%s%s", len ? ", " : "", f->name) != 0) return;
  }
}

static const lq_field *find_field(const lq_spec *spec, const char *name, size_t len) {
  for (size_t i = 0; i < spec->nfields; i++)
    if (word_is(name, len, spec->fields[i].name)) return &spec->fields[i];
  return NULL;
}

/* ---- filter values ---- */

static bool two_digits(const char *s, int *v) {
  if (!is_digit(s[0]) || !is_digit(s[1])) return false;
  *v = (s[0] - '0') * 10 + (s[1] - '0');
  return true;
}

/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm), checked. */
static bool valid_rfc3339(const char *s, size_t n) {
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int yh, yl, mon, day, hour, min, sec, oh, om;
  if (n < 20 || !two_digits(s, &yh) || !two_digits(s + 2, &yl) || s[4] != '-' ||
      !two_digits(s + 5, &mon) || s[7] != '-' || !two_digits(s + 8, &day) ||
      (s[10] != 'T' && s[10] != 't') || !two_digits(s + 11, &hour) || s[13] != ':' ||
      !two_digits(s + 14, &min) || s[16] != ':' || !two_digits(s + 17, &sec))
    return false;
  int year = yh * 100 + yl;
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (year < 1 || mon < 1 || mon > 12 || day < 1 ||
      day > mdays[mon - 1] + (mon == 2 && leap ? 1 : 0) || hour > 23 || min > 59 || sec > 59)
    return false;
  size_t i = 19;
  if (s[i] == '.') {
    size_t start = ++i;
    while (i < n && is_digit(s[i]))
      i++;
    if (i == start || i - start > 9) return false;
  }
  if (i < n && (s[i] == 'Z' || s[i] == 'z')) return i + 1 == n;
  if (i < n && (s[i] == '+' || s[i] == '-'))
    return i + 6 == n && two_digits(s + i + 1, &oh) && s[i + 3] == ':' &&
           two_digits(s + i + 4, &om) && oh <= 23 && om <= 59;
  return false;
}

/* A label key: 1-63 of a-z 0-9 _ . - */
static bool valid_label_key(const char *s, size_t n) {
  if (n < 1 || n > 63) return false;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || is_digit(s[i]) || in_set(s[i], "_.-"))) return false;
  return true;
}

typedef struct value {
  char text[LQ_MAX_FILTER + 1]; /* decoded */
  size_t len;
  bool quoted;
} value;

/* The value at s[*i]: a quoted string (decoded) or a bare word. */
static int scan_value(builder *b, const char *s, size_t *i, const char *name, op_kind op,
                      value *v) {
  size_t p = *i;
  v->len = 0;
  v->quoted = s[p] == '"';
  if (v->quoted) {
    for (p++; s[p] != '"'; p++) {
      if (s[p] == '\0') return fail(b, "filter: unterminated string");
      if (s[p] == '\\') {
        p++;
        if (s[p] != '"' && s[p] != '\\') {
          if (s[p] == '\0') return fail(b, "filter: unterminated string");
          return fail(b, "filter: unsupported escape in string (only \\\" and \\\\)");
        }
      }
      v->text[v->len++] = s[p];
    }
    p++;
  } else {
    while (is_bare_char(s[p]))
      v->text[v->len++] = s[p++];
    if (v->len == 0) {
      if (s[p] == '(' || s[p] == ')') return fail(b, "filter: parentheses are not supported");
      return fail(b, "filter: missing value after \"" ECHO " %s\"", name, ops[op].text);
    }
  }
  v->text[v->len] = '\0';
  *i = p;
  return 0;
}

/* add_param for a filter value: the last two parameters stay free for LIMIT and OFFSET. */
static int filter_param(builder *b, const char *text, size_t len) {
  return b->q->nparams < LQ_MAX_PARAMS - 2 ? add_param(b, text, len) : -1;
}

/* Emits " AND (column op $n[cast])" for a one-parameter term. */
static int emit(builder *b, const lq_field *f, const char *sqlop, const char *text, size_t len,
                const char *cast) {
  int n = filter_param(b, text, len);
  if (n < 0) return fail(b, "filter: too many terms");
  if (append(b->q->where, sizeof(b->q->where), &b->where_len, " AND (%s %s $%d%s)", f->column,
             sqlop, n, cast) != 0)
    return fail(b, "filter: too many terms");
  return 0;
}

static int term_string(builder *b, const lq_field *f, op_kind op, const value *v) {
  if (!v->quoted)
    return fail(b, "filter: field \"%s\" expects a quoted string, e.g. %s = \"abc\"", f->name,
                f->name);
  if (v->len == 0 || v->text[v->len - 1] != '*')
    return emit(b, f, ops[op].sql, v->text, v->len, "");
  if (!f->wildcard)
    return fail(b, "filter: field \"%s\" does not support prefix match (\"...*\")", f->name);
  if (op != OP_EQ) return fail(b, "filter: prefix match (\"...*\") works only with =");
  /* LIKE pattern: the prefix with LIKE's default escape (\) before % _ \, then %. */
  char pat[2 * LQ_MAX_FILTER + 2];
  size_t n = 0;
  for (size_t i = 0; i + 1 < v->len; i++) {
    if (in_set(v->text[i], "%_\\")) pat[n++] = '\\';
    pat[n++] = v->text[i];
  }
  pat[n++] = '%';
  return emit(b, f, "LIKE", pat, n, "");
}

static int term_int(builder *b, const lq_field *f, op_kind op, const value *v) {
  const char *t = v->text;
  bool ok = !v->quoted && (is_digit(t[0]) || (t[0] == '-' && is_digit(t[1])));
  for (size_t i = 1; ok && t[i]; i++)
    ok = is_digit(t[i]);
  if (!ok) return fail(b, "filter: field \"%s\" expects an integer", f->name);
  errno = 0;
  long long x = strtoll(t, NULL, 10);
  if (errno == ERANGE) return fail(b, "filter: value for \"%s\" is out of range", f->name);
  char num[32];
  int len = snprintf(num, sizeof(num), "%lld", x);
  return emit(b, f, ops[op].sql, num, (size_t)len, "::bigint");
}

static int term_bool(builder *b, const lq_field *f, op_kind op, const value *v) {
  if (v->quoted || !(word_is(v->text, v->len, "true") || word_is(v->text, v->len, "false")))
    return fail(b, "filter: field \"%s\" expects true or false", f->name);
  return emit(b, f, ops[op].sql, v->text, v->len, "::boolean");
}

static int term_enum(builder *b, const lq_field *f, op_kind op, const value *v) {
  for (size_t i = 0; !v->quoted && i < f->nenums; i++) {
    if (!word_is(v->text, v->len, f->enums[i].name)) continue;
    char num[16];
    int len = snprintf(num, sizeof(num), "%d", f->enums[i].value);
    return emit(b, f, ops[op].sql, num, (size_t)len, "::integer");
  }
  char names[512];
  size_t len = 0;
  names[0] = '\0';
  for (size_t i = 0; i < f->nenums; i++)
    if (append(names, sizeof(names), &len, "%s%s", i ? ", " : "", f->enums[i].name) != 0) break;
  return fail(b, "filter: field \"%s\" expects one of %s", f->name, names);
}

static int term_time(builder *b, const lq_field *f, op_kind op, const value *v) {
  char ts[48];
  if (!v->quoted || v->len >= sizeof(ts) || !valid_rfc3339(v->text, v->len))
    return fail(b,
                "filter: field \"%s\" expects a quoted RFC 3339 timestamp, "
                "e.g. \"2024-01-31T12:00:00Z\"",
                f->name);
  /* RFC 3339 allows a lower-case t and z; hand PostgreSQL the usual form. */
  for (size_t i = 0; i <= v->len; i++)
    ts[i] = v->text[i] == 't' ? 'T' : v->text[i] == 'z' ? 'Z' : v->text[i];
  return emit(b, f, ops[op].sql, ts, v->len, "::timestamptz");
}

static int term_label(builder *b, const lq_field *f, const char *key, size_t keylen, op_kind op,
                      const value *v) {
  if (!v->quoted)
    return fail(b, "filter: label values are quoted strings, e.g. %s.env = \"prod\"", f->name);
  if (v->len && v->text[v->len - 1] == '*')
    return fail(b, "filter: field \"%s\" does not support prefix match (\"...*\")", f->name);
  int nk = filter_param(b, key, keylen);
  int nv = nk < 0 ? -1 : filter_param(b, v->text, v->len);
  if (nv < 0 ||
      append(b->q->where, sizeof(b->q->where), &b->where_len,
             " AND ((%s ->> $%d::text) %s $%d::text)", f->column, nk, ops[op].sql, nv) != 0)
    return fail(b, "filter: too many terms");
  return 0;
}

/* ---- filter terms ---- */

/* Reports what stands where a term or AND was expected, if it is a known mistake. */
static int unsupported(builder *b, const char *s, size_t i) {
  size_t n = 0;
  while (is_name_char(s[i + n]))
    n++;
  const char *w = s + i;
  if (s[i] == '(' || s[i] == ')') return fail(b, "filter: parentheses are not supported");
  if (s[i] == '-') return fail(b, "filter: negation (\"-\") is not supported");
  if (word_is(w, n, "OR") || word_is(w, n, "or"))
    return fail(b, "filter: OR is not supported (join terms with AND)");
  if (word_is(w, n, "NOT") || word_is(w, n, "not")) return fail(b, "filter: NOT is not supported");
  return 0;
}

static int unexpected(builder *b, const char *s, size_t i) {
  unsigned char c = (unsigned char)s[i];
  if (c > 0x20 && c < 0x7f) return fail(b, "filter: unexpected \"%c\" at offset %zu", c, i);
  return fail(b, "filter: unexpected character at offset %zu", i);
}

/* Parses one term at s[*i] (not a space, not the end) and emits its SQL. */
static int parse_term(builder *b, const char *s, size_t *i) {
  size_t p = *i;
  if (unsupported(b, s, p) != 0) return -1;
  if (!is_name_start(s[p])) return unexpected(b, s, p);
  size_t namelen = 0;
  while (is_name_char(s[p + namelen]))
    namelen++;
  if (word_is(s + p, namelen, "AND")) return fail(b, "filter: empty term before AND");
  char name[MAX_NAME + 1];
  if (namelen > MAX_NAME) return fail(b, "filter: unknown field \"%.*s\"", 64, s + p);
  memcpy(name, s + p, namelen);
  name[namelen] = '\0';
  p += namelen;

  /* The field (a dotted name such as attachment.vm names a field of its
   * own), else a label key after the first dot. */
  const lq_field *f = find_field(b->spec, name, namelen);
  const char *dot = f ? NULL : memchr(name, '.', namelen);
  size_t baselen = dot ? (size_t)(dot - name) : namelen;
  if (!f) f = find_field(b->spec, name, baselen);
  char list[512];
  if (!f || !f->filterable) {
    field_list(b->spec, false, list, sizeof(list));
    if (!f) return fail(b, "filter: unknown field \"" ECHO "\" (filterable: %s)", name, list);
    return fail(b, "filter: field \"%s\" is not filterable (filterable: %s)", f->name, list);
  }
  if (f->type == LQ_LABELS && !dot)
    return fail(b, "filter: filter by label as %s.KEY = \"value\"", f->name);
  if (f->type != LQ_LABELS && dot) return fail(b, "filter: field \"%s\" has no subfields", f->name);
  const char *key = dot ? dot + 1 : NULL;
  size_t keylen = dot ? namelen - baselen - 1 : 0;
  if (key && !valid_label_key(key, keylen))
    return fail(b, "filter: invalid label key \"" ECHO "\" (1-63 of a-z, 0-9, _ . -)", key);

  /* The operator. */
  p = skip_spaces(s, p);
  size_t oplen = 0;
  while (is_op_char(s[p + oplen]))
    oplen++;
  if (oplen == 0)
    return fail(b, "filter: expected an operator (=, !=, <, <=, >, >=) after \"" ECHO "\"", name);
  op_kind op = OP_EQ;
  while (op <= OP_GE && !word_is(s + p, oplen, ops[op].text))
    op++;
  if (op > OP_GE)
    return fail(b, "filter: operator \"%.*s\" is not supported (use =, !=, <, <=, >, >=)",
                (int)(oplen > 8 ? 8 : oplen), s + p);
  p += oplen;
  bool equality_only = f->type == LQ_BOOL || f->type == LQ_ENUM || f->type == LQ_LABELS;
  if (equality_only && op != OP_EQ && op != OP_NE)
    return fail(b, "filter: field \"%s\" supports only = and !=", f->name);

  /* The value. */
  p = skip_spaces(s, p);
  if (s[p] == '\0')
    return fail(b, "filter: missing value after \"" ECHO " %s\"", name, ops[op].text);
  value v;
  if (scan_value(b, s, &p, name, op, &v) != 0) return -1;
  *i = p;
  switch (f->type) {
  case LQ_STRING: return term_string(b, f, op, &v);
  case LQ_INT: return term_int(b, f, op, &v);
  case LQ_BOOL: return term_bool(b, f, op, &v);
  case LQ_ENUM: return term_enum(b, f, op, &v);
  case LQ_TIME: return term_time(b, f, op, &v);
  case LQ_LABELS: return term_label(b, f, key, keylen, op, &v);
  }
  return fail(b, "filter: field \"%s\" cannot be filtered", f->name);
}

static int parse_filter(builder *b, const char *s) {
  if (strlen(s) > LQ_MAX_FILTER) return fail(b, "filter: longer than %d bytes", LQ_MAX_FILTER);
  if (check_text(b, "filter", s) != 0) return -1;
  size_t i = skip_spaces(s, 0);
  if (s[i] == '\0') return 0;
  for (;;) {
    if (parse_term(b, s, &i) != 0) return -1;
    i = skip_spaces(s, i);
    if (s[i] == '\0') return 0;
    size_t n = 0;
    while (is_name_char(s[i + n]))
      n++;
    if (!word_is(s + i, n, "AND")) {
      if (unsupported(b, s, i) != 0) return -1;
      if (word_is(s + i, n, "and")) return fail(b, "filter: write AND in upper case");
      if (n == 0) return unexpected(b, s, i);
      return fail(b, "filter: expected AND between terms, found \"%.*s\"", (int)(n > 64 ? 64 : n),
                  s + i);
    }
    i = skip_spaces(s, i + n);
    if (s[i] == '\0') return fail(b, "filter: empty term after AND");
  }
}

/* ---- order_by ---- */

static int parse_order(builder *b, const char *s) {
  lq_query *q = b->q;
  size_t len = 0;
  q->order[0] = '\0';
  if (strlen(s) > LQ_MAX_ORDER_BY)
    return fail(b, "order_by: longer than %d bytes", LQ_MAX_ORDER_BY);
  if (check_text(b, "order_by", s) != 0) return -1;
  const lq_field *seen[LQ_MAX_ORDER];
  int nseen = 0;
  for (size_t i = skip_spaces(s, 0); s[i];) {
    /* item: name [dir], up to the next comma */
    size_t start = i, end = i;
    while (s[end] && s[end] != ',')
      end++;
    size_t itemlen = end;
    while (itemlen > start && s[itemlen - 1] == ' ')
      itemlen--;
    if (itemlen == start) return fail(b, "order_by: empty field name");
    if (nseen == LQ_MAX_ORDER) return fail(b, "order_by: at most %d fields", LQ_MAX_ORDER);
    size_t n = 0;
    while (start + n < itemlen && s[start + n] != ' ')
      n++;
    size_t d = skip_spaces(s, start + n), dlen = itemlen - d;
    bool desc = word_is(s + d, dlen, "desc") || word_is(s + d, dlen, "DESC");
    bool asc = dlen == 0 || word_is(s + d, dlen, "asc") || word_is(s + d, dlen, "ASC");
    if (!desc && !asc)
      return fail(b, "order_by: cannot parse \"%.*s\" (expected \"field [asc|desc]\")",
                  (int)(itemlen - start > 64 ? 64 : itemlen - start), s + start);
    const lq_field *f = find_field(b->spec, s + start, n);
    if (!f || !f->orderable) {
      char list[512];
      field_list(b->spec, true, list, sizeof(list));
      if (!f)
        return fail(b, "order_by: unknown field \"%.*s\" (orderable: %s)", (int)(n > 64 ? 64 : n),
                    s + start, list);
      return fail(b, "order_by: field \"%s\" is not orderable (orderable: %s)", f->name, list);
    }
    for (int k = 0; k < nseen; k++)
      if (seen[k] == f) return fail(b, "order_by: field \"%s\" appears twice", f->name);
    seen[nseen++] = f;
    if (append(q->order, sizeof(q->order), &len, "%s%s%s", nseen == 1 ? " ORDER BY " : ", ",
               f->column, desc ? " DESC" : "") != 0)
      return fail(b, "order_by: too long");
    if (s[end] == '\0') break;
    i = skip_spaces(s, end + 1);
    if (s[i] == '\0') return fail(b, "order_by: empty field name");
  }
  if (append(q->order, sizeof(q->order), &len, "%s%s", nseen ? ", " : " ORDER BY ",
             b->spec->tiebreak) != 0)
    return fail(b, "order_by: too long");
  return 0;
}

/* ---- page token ---- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

/* Hash of what a token is bound to; each part length-prefixed so parts cannot shift. */
static uint64_t request_hash(const char *filter, const char *order_by, const char *fingerprint) {
  const char *parts[] = {filter, order_by, fingerprint};
  uint64_t h = fnv1a(0xcbf29ce484222325ull, "novacron-listq-1", 16);
  for (size_t i = 0; i < 3; i++) {
    const char *s = parts[i] ? parts[i] : "";
    uint64_t n = strlen(s);
    unsigned char len[8];
    for (int k = 0; k < 8; k++)
      len[k] = (unsigned char)(n >> (8 * k));
    h = fnv1a(fnv1a(h, len, sizeof(len)), s, n);
  }
  return h;
}

static void put_u64(unsigned char *p, uint64_t v) {
  for (int k = 0; k < 8; k++)
    p[k] = (unsigned char)(v >> (8 * k));
}

static uint64_t get_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int k = 0; k < 8; k++)
    v |= (uint64_t)p[k] << (8 * k);
  return v;
}

/* Decodes a canonical unpadded base64url token into raw; false if it is not one. */
static bool token_decode(const char *s, unsigned char raw[TOKEN_BYTES]) {
  if (strlen(s) != TOKEN_CHARS) return false;
  uint32_t acc = 0;
  int bits = 0;
  size_t n = 0;
  for (size_t i = 0; i < TOKEN_CHARS; i++) {
    const char *c = s[i] ? strchr(b64url, s[i]) : NULL;
    if (!c) return false;
    acc = (acc << 6) | (uint32_t)(c - b64url);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      raw[n++] = (unsigned char)(acc >> bits);
    }
    acc &= (1u << bits) - 1;
  }
  return n == TOKEN_BYTES && acc == 0; /* unused low bits must be zero */
}

static void token_encode(const unsigned char raw[TOKEN_BYTES], char out[TOKEN_CHARS + 1]) {
  uint32_t acc = 0;
  int bits = 0;
  size_t n = 0;
  for (size_t i = 0; i < TOKEN_BYTES; i++) {
    acc = (acc << 8) | raw[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out[n++] = b64url[(acc >> bits) & 63];
    }
  }
  if (bits) out[n++] = b64url[(acc << (6 - bits)) & 63];
  out[n] = '\0';
}

static int parse_token(builder *b, const char *token, uint64_t hash) {
  unsigned char raw[TOKEN_BYTES];
  if (!token_decode(token, raw) || raw[0] != TOKEN_VERSION)
    return fail(b, "page_token is malformed");
  uint64_t offset = get_u64(raw + 1);
  if (offset == 0 || offset > LONG_MAX) return fail(b, "page_token is malformed");
  if (get_u64(raw + 9) != hash) return fail(b, "page_token does not match this request");
  b->q->offset = (long)offset;
  return 0;
}

/* ---- entry points ---- */

int lq_build(const lq_spec *spec, const char *filter, const char *order_by, int page_size,
             const char *page_token, const char *fingerprint, int first_param, lq_query *out,
             char *err, size_t errlen) {
  assert(spec && out && spec->tiebreak && first_param >= 1);
  assert(spec->default_page_size > 0 && spec->max_page_size >= spec->default_page_size);
  builder b = {.spec = spec, .q = out, .first_param = first_param, .err = err, .errlen = errlen};
  if (err && errlen) err[0] = '\0';
  out->where[0] = out->order[0] = out->limit[0] = '\0';
  out->nparams = 0;
  out->offset = 0;

  if (page_size < 0) return fail(&b, "page_size must not be negative");
  out->page_size = page_size == 0                    ? spec->default_page_size
                   : page_size > spec->max_page_size ? spec->max_page_size
                                                     : page_size;
  if (filter && parse_filter(&b, filter) != 0) goto bad;
  if (order_by && *order_by) {
    if (parse_order(&b, order_by) != 0) goto bad;
  } else if (parse_order(&b, spec->default_order ? spec->default_order : "") != 0) {
    assert(!"lq_spec.default_order is not a valid order_by");
    goto bad;
  }
  if (page_token && *page_token &&
      parse_token(&b, page_token, request_hash(filter, order_by, fingerprint)) != 0)
    goto bad;

  char num[24];
  int n = snprintf(num, sizeof(num), "%d", out->page_size);
  int limit = add_param(&b, num, (size_t)n);
  n = snprintf(num, sizeof(num), "%ld", out->offset);
  int offset = add_param(&b, num, (size_t)n);
  if (limit < 0 || offset < 0) { /* not reached: filter_param keeps two free, storage fits */
    fail(&b, "filter: too long");
    goto bad;
  }
  snprintf(out->limit, sizeof(out->limit), " LIMIT $%d OFFSET $%d", limit, offset);
  return 0;
bad:
  out->where[0] = out->order[0] = out->limit[0] = '\0';
  out->nparams = 0;
  return -1;
}

void lq_next_token(const lq_query *q, const char *filter, const char *order_by,
                   const char *fingerprint, long returned, long total, char *out, size_t outlen) {
  if (!out || outlen == 0) return;
  out[0] = '\0';
  if (outlen < TOKEN_CHARS + 1 || returned <= 0 || q->offset >= total ||
      returned >= total - q->offset)
    return;
  unsigned char raw[TOKEN_BYTES];
  raw[0] = TOKEN_VERSION;
  put_u64(raw + 1, (uint64_t)(q->offset + returned));
  put_u64(raw + 9, request_hash(filter, order_by, fingerprint));
  token_encode(raw, out);
}
