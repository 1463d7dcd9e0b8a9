/*
 * listq.h - the shared half of every List RPC (DESIGN.md section 3): turns a
 * request's filter, order_by, page_size and page_token into SQL fragments
 * with $N placeholders plus the parameter texts, and makes next_page_token.
 *
 * Safety contract: no byte of the request ever reaches the SQL text. The
 * fragments contain only column expressions from the caller's constant
 * lq_spec, operators from a fixed table, casts, and $N placeholders; every
 * value from the request is a parameter. The module needs no libpq.
 *
 * Filter grammar (a subset of AIP-160):
 *
 *   filter := "" | term { " AND " term }
 *   term   := field op value | "labels." key op value
 *   op     := "=" | "!=" | "<" | "<=" | ">" | ">="
 *
 * - Terms are joined only by AND, which is case-sensitive as in AIP-160:
 *   a lower-case "and" is rejected with a hint, not taken as a keyword. OR,
 *   NOT, "-" negation, parentheses and the ":" (has) operator are rejected
 *   as "not supported". Spaces around tokens are optional; the only
 *   whitespace is the space character.
 * - Values by field type:
 *     LQ_STRING  a double-quoted string; the escapes are \" and \\ only.
 *                All six operators. On a field with `wildcard` set,
 *                `= "abc*"` is a prefix match (LIKE, with % _ \ escaped);
 *                a trailing * anywhere else is an error, never a literal.
 *     LQ_INT     a bare 64-bit integer, e.g. 42 or -7. All six operators.
 *     LQ_BOOL    bare true or false. = and != only.
 *     LQ_ENUM    a bare name from the field's enums, e.g. STATE_ACTIVE
 *                (case-sensitive). = and != only.
 *     LQ_TIME    a quoted RFC 3339 timestamp, "2024-01-31T12:00:00Z" or with
 *                a fraction and a +hh:mm / -hh:mm offset; validated here
 *                (calendar and ranges) and cast with ::timestamptz. All six.
 *     LQ_LABELS  `labels.KEY = "value"` on a jsonb column; KEY is 1-63 of
 *                a-z 0-9 _ . -; = and != only.
 * - `!=` is IS DISTINCT FROM: it also matches rows where the column (or the
 *   label) is NULL/absent.
 * - Rejected outright: unknown or non-filterable fields, values of the
 *   wrong type, empty terms, control characters, invalid UTF-8, filters
 *   longer than LQ_MAX_FILTER bytes, more values than LQ_MAX_PARAMS - 2
 *   (a labels term uses two).
 *
 * order_by (AIP-132): up to LQ_MAX_ORDER comma-separated `field [asc|desc]`
 * items (the direction in lower or upper case) naming orderable fields,
 * each at most once. Empty means the spec's default_order. The spec's
 * tiebreak column is always appended so that OFFSET paging is stable.
 *
 * Paging: offset based. The page token is opaque URL-safe base64 (no
 * padding) of a version byte, the offset and a 64-bit hash of filter,
 * order_by and the caller's fingerprint, so a token works only with the
 * request that produced it (page_size may change between pages, as AIP-158
 * allows). Tokens are not secret and not signed: forging one only selects
 * another offset of a query the caller may run anyway.
 */
#ifndef NC_CORE_LISTQ_H
#define NC_CORE_LISTQ_H

#include <stdbool.h>
#include <stddef.h>

/* Longest filter accepted, in bytes. */
#define LQ_MAX_FILTER 1024
/* Longest order_by accepted, in bytes, and most fields it may name. */
#define LQ_MAX_ORDER_BY 256
#define LQ_MAX_ORDER 3
/* Parameters one lq_query may hold; the last two are LIMIT and OFFSET. */
#define LQ_MAX_PARAMS 32
/* Buffer size that always holds a page token and its terminating NUL. */
#define LQ_PAGE_TOKEN_SIZE 32

typedef enum lq_type { LQ_STRING, LQ_BOOL, LQ_INT, LQ_ENUM, LQ_TIME, LQ_LABELS } lq_type;

/* One name an LQ_ENUM filter accepts and the integer stored in the column. */
typedef struct lq_enum_value {
  const char *name; /* e.g. "STATE_ACTIVE" */
  int value;
} lq_enum_value;

/* One field of a resource as List exposes it. */
typedef struct lq_field {
  const char *name;   /* filter/order_by name: "username", "create_time", "labels" */
  const char *column; /* trusted SQL expression from a constant table: "u.username" */
  lq_type type;
  const lq_enum_value *enums; /* LQ_ENUM only: the accepted names */
  size_t nenums;
  bool filterable, orderable;
  bool wildcard; /* LQ_STRING only: `= "abc*"` is a prefix match */
} lq_field;

/* The field rows every List table repeats: a filterable enum (its count
 * taken from the array) and the orderable, prefix-matchable `name`. */
#define LQ_ENUM_FIELD(field, col, values)                                 \
  {                                                                       \
    .name = (field), .column = (col), .type = LQ_ENUM, .enums = (values), \
    .nenums = sizeof(values) / sizeof((values)[0]), .filterable = true    \
  }
#define LQ_NAME_FIELD(col)                                                                     \
  {                                                                                            \
    .name = "name", .column = (col), .type = LQ_STRING, .filterable = true, .orderable = true, \
    .wildcard = true                                                                           \
  }

/* What one List RPC allows; a constant next to its handler. */
typedef struct lq_spec {
  const lq_field *fields;
  size_t nfields;
  /* order_by used when the request's is empty, in order_by syntax naming
     orderable fields: "name" or "create_time desc". NULL or "": tiebreak only. */
  const char *default_order;
  const char *tiebreak;  /* unique, non-NULL SQL column ordered last: "u.id" (required) */
  int default_page_size; /* page_size 0 means this, e.g. 50 (> 0) */
  int max_page_size;     /* larger page sizes are lowered to this, e.g. 500 */
} lq_spec;

/*
 * The built fragments. Append them to a query that already has a WHERE
 * clause: "SELECT ... FROM users u WHERE u.project_id = $1" + where + order
 * + limit, and pass the caller's own parameters followed by params[0 ..
 * nparams-1], which are numbered $first_param upwards. The last two
 * parameters belong to `limit`; a COUNT(*) query built from `where` alone
 * passes the first nparams - 2. params point into `storage`, so an lq_query
 * must not be copied by value.
 */
typedef struct lq_query {
  char where[4096]; /* "" or " AND (...) AND (...)" */
  char order[512];  /* " ORDER BY col [DESC], ..., tiebreak" */
  char limit[64];   /* " LIMIT $k OFFSET $k+1" */
  const char *params[LQ_MAX_PARAMS];
  int nparams;
  char storage[4096];
  int page_size; /* rows to fetch: the clamped page_size (also the LIMIT) */
  long offset;   /* rows skipped: from page_token, 0 on the first page */
} lq_query;

/*
 * Validates a List request and builds `out` for it. filter, order_by and
 * page_token may be NULL or "" (absent). fingerprint identifies the request
 * apart from paging (e.g. "users|" + parent); it is mixed into page tokens,
 * so a token is accepted only with the same filter, order_by and
 * fingerprint. first_param (>= 1) is the number of the first placeholder
 * this module may use. Returns 0, or -1 with a message for the client in
 * err (INVALID_ARGUMENT) that names the request field, e.g.
 *   filter: unknown field "passwd" (filterable: username, email, disabled)
 *   page_size must not be negative
 *   page_token is malformed
 *   page_token does not match this request
 * The message quotes at most 64 bytes of the input and never any SQL.
 * On error `out` holds no usable query.
 */
int lq_build(const lq_spec *spec, const char *filter, const char *order_by, int page_size,
             const char *page_token, const char *fingerprint, int first_param, lq_query *out,
             char *err, size_t errlen);

/*
 * Writes next_page_token for the page `q` fetched: "" when it was the last
 * page, that is unless q->offset + returned < total (total: rows matching
 * the filter, e.g. COUNT(*) OVER () or a COUNT query; returned: rows this
 * page got). Also "" when returned is 0, so a shrinking table cannot make a
 * client loop. filter, order_by and fingerprint must be the ones given to
 * lq_build for q. outlen should be LQ_PAGE_TOKEN_SIZE; a smaller buffer
 * gets "".
 */
void lq_next_token(const lq_query *q, const char *filter, const char *order_by,
                   const char *fingerprint, long returned, long total, char *out, size_t outlen);

#endif
