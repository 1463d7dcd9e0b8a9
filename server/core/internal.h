/*
 * internal.h - helpers shared by the files of server/core (not an API):
 * transactions that carry a domain code, query shortcuts, names, etags,
 * timestamps, digests and the request_id idempotency records.
 */
#ifndef NC_CORE_INTERNAL_H
#define NC_CORE_INTERNAL_H

#include <libpq-fe.h>

#include "auth/token.h"
#include "core/core.h"
#include "core/identity.h"
#include "google/protobuf/field_mask.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "novacron/v1/common.pb-c.h"
#include "store/pool.h"

#define CORE_DIGEST_LEN 32
#define CORE_TOKEN_HEX 64 /* hex characters of a 256-bit token body */

typedef struct core_service_map {
  char cn[128];
  bool system_admin;
  char project[64];
  int role;
} core_service_map;

struct core_identity {
  store_pool *db;
  core_identity_config cfg;
  char issuer[64];
  auth_keyring *kr;
  unsigned char derive_key[CORE_DIGEST_LEN]; /* HMAC key for derived tokens */
  core_service_map *services;
  int nservices;
};

/* A transaction run for a domain function: the callback returns a CORE_*
 * code; a failed statement inside records its store status so that
 * serialization failures are retried and outages become UNAVAILABLE. */
typedef struct core_tx {
  core_call *call;
  store_status st; /* first failed statement's status, STORE_OK if none */
  void *arg;
} core_tx;

/* Runs fn(conn, tx) in a transaction (rolled back unless it returns
 * CORE_OK), retrying serialization failures. */
int core_run_tx(store_pool *db, core_call *call, int (*fn)(store_conn *conn, core_tx *tx),
                void *arg);

/* Runs fn(conn, tx) on a pooled connection without a transaction: for
 * read-only work whose statements need no common snapshot (authentication
 * on every call), saving BEGIN and COMMIT round trips. */
int core_run_ro(store_pool *db, core_call *call, int (*fn)(store_conn *conn, core_tx *tx),
                void *arg);

/* Runs one prepared statement; on failure records the status in `tx`, sets
 * the call's message and returns the CORE code (UNAVAILABLE, ALREADY_EXISTS,
 * ...), with *res NULL. */
int core_q(core_tx *tx, store_conn *conn, const char *name, const char *sql, int n,
           const char *const *params, PGresult **res);

/* core_q for the lookup of one resource by `key` ($1): NOT_FOUND "`what`
 * `key` not found" when no row comes back (then *res is NULL). */
int core_q_one(core_tx *tx, store_conn *conn, const char *name, const char *sql, const char *key,
               const char *what, PGresult **res);

/* CORE code for a store status. */
int core_from_store(store_status st);

/* Value of row r, column c, or NULL when SQL NULL. */
const char *core_val(const PGresult *res, int r, int c);
bool core_bool(const PGresult *res, int r, int c);
int64_t core_i64(const PGresult *res, int r, int c);

/* SQL expression giving a timestamptz column as integer microseconds. */
#define CORE_TS(col) "(extract(epoch from " col ") * 1000000)::bigint"
/* A Timestamp from a CORE_TS column (NULL when SQL NULL). */
Google__Protobuf__Timestamp *core_ts(core_call *call, const PGresult *res, int r, int c);
/* A Timestamp from Unix seconds. */
Google__Protobuf__Timestamp *core_ts_s(core_call *call, int64_t seconds);
/* Timestamp -> "seconds.micros" text for to_timestamp($n::float8). */
void core_ts_text(const Google__Protobuf__Timestamp *ts, char *buf, size_t len);

/* The uuid of project `project` (its id); NOT_FOUND "project ... not found". */
int core_project_uid(core_tx *tx, store_conn *conn, const char *project, char uid[40]);
/* The quota check every create and grow shares: row 0 of `r` holds n
 * limits (columns 0..n-1, NULL = unlimited) and their usage (columns
 * used_col..used_col+n-1); RESOURCE_EXHAUSTED naming the first limit that
 * add[i] more (only positive ones count) would pass. Frees r. */
int core_quota_check(core_tx *tx, PGresult *r, const char *const *names, const int64_t *add, int n,
                     int used_col);

/* Resource ids: 1-63 of [a-z0-9-], starting with a letter. */
bool core_id_valid(const char *id);
/* Parses `prefix{id}` exactly (e.g. "users/" + "alice"); false if not. */
bool core_name1(const char *name, const char *prefix, char *id, size_t idlen);
/* Parses `projects/{p}/{collection}/{id}`. */
bool core_name2(const char *name, const char *collection, char *project, size_t plen, char *id,
                size_t idlen);
/* Checks a free-text field: valid UTF-8, no control characters, at most
 * `max` bytes. Fails INVALID_ARGUMENT naming `field`. */
int core_check_text(core_call *call, const char *field, const char *s, size_t max);
/* request_id: empty or a UUID. */
int core_check_request_id(core_call *call, const char *rid);
/* The etag text of a version, and the check of a client's etag against it
 * (empty etag skips). ABORTED when stale. */
char *core_etag(core_call *call, int64_t version);
int core_check_etag(core_call *call, const char *etag, int64_t version, const char *what);

/* Validates labels (at most 64; keys 1-63 of a-z 0-9 - _ ., starting with a
 * letter or digit; values at most 63 characters) and renders them as a
 * JSON object (malloc'ed) for a jsonb column. */
int core_labels_json(core_call *call, Novacron__V1__Label **labels, size_t n, char **out);
/* Labels from a jsonb column's text (call allocator). */
Novacron__V1__Label **core_labels_from_json(core_call *call, const char *text, size_t *n);

/* True when the FieldMask lists `path`. */
bool core_mask_has(const Google__Protobuf__FieldMask *m, const char *path);
/* The projects a principal has any role on, as a text[] literal (ids are
 * [a-z0-9-] only, so they need no quoting), for `= ANY($n::text[])`. */
void core_visible_projects(const core_principal *p, char *buf, size_t len);

/* SHA-256 of s; HMAC-SHA256 with the identity's derivation key. */
void core_sha256(const void *data, size_t n, unsigned char out[CORE_DIGEST_LEN]);
void core_derive(const core_identity *id, const char *const *parts, size_t nparts,
                 unsigned char out[CORE_DIGEST_LEN]);
/* Lower-case hex, NUL-terminated (out holds 2n+1). */
void core_hex(const unsigned char *in, size_t n, char *out);
/* "\\x..." bytea literal text of a digest for a parameter. */
void core_bytea(const unsigned char d[CORE_DIGEST_LEN], char out[2 * CORE_DIGEST_LEN + 3]);
/* 32 random bytes, hex, with a prefix: "ncr_..." / "nck_...". */
int core_random_token(const char *prefix, char *out, size_t outlen);

/* Idempotency: when `rid` is non-empty, looks up an earlier response of the
 * same principal+method; CORE_OK with *found and the response unpacked into
 * `*replay` (allocated with the call allocator). A different request under
 * the same id is INVALID_ARGUMENT. */
int core_idem_lookup(core_tx *tx, store_conn *conn, const char *rid, const ProtobufCMessage *req,
                     const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **replay,
                     bool *found);
/* core_idem_lookup for the usual case: on a hit, the earlier response is
 * copied into `resp` and `*found` is set; the caller returns at once. */
int core_idem_replay(core_tx *tx, store_conn *conn, const char *rid, const ProtobufCMessage *req,
                     ProtobufCMessage *resp, bool *found);
/* Records `resp` as the response to `req` under `rid` (no-op when empty). */
int core_idem_store(core_tx *tx, store_conn *conn, const char *rid, const ProtobufCMessage *req,
                    const ProtobufCMessage *resp);
/* The principal name used for idempotency and audit ("anonymous" if none). */
const char *core_who(const core_call *call);

/* Copies the fields of a replayed response into the caller's response
 * (shallow: the memory belongs to the call allocator). */
void core_copy_message(ProtobufCMessage *dst, const ProtobufCMessage *src);

/* A List call: the fixed part of the query plus the request's filter,
 * order and paging (core/listq.h). */
#include "core/listq.h"
typedef struct core_list_req {
  const lq_spec *spec;
  const char *select;   /* "SELECT cols, count(*) OVER () FROM ... WHERE <fixed>" */
  const char *fixed[4]; /* parameters of the fixed part ($1..) */
  int nfixed;
  const char *filter, *order_by, *page_token, *fingerprint;
  int32_t page_size;
  int ncols; /* the count(*) column is at index ncols */
  /* appends row i to the response */
  int (*row)(core_call *call, const PGresult *r, int i, void *resp);
  void *resp;
  char **next_page_token;
  int32_t *total_size;
} core_list_req;
/* Appends one pointer to a repeated message field (protobuf-c keeps the
 * array and its n_ count apart); NULL when out of memory. */
void **core_push(core_call *call, void ***arr, size_t *n);

/* Defines `fn`, a core_list_req row callback that converts row i with
 * `make(call, res, i)` and appends it to the response's repeated `field`. */
#define CORE_LIST_ROW(fn, Resp, field, make)                                                 \
  static int fn(core_call *call, const PGresult *r, int i, void *resp) {                     \
    Resp *out_ = resp;                                                                       \
    void *item_ = make(call, r, i);                                                          \
    void **slot_ = item_ ? core_push(call, (void ***)&out_->field, &out_->n_##field) : NULL; \
    if (!slot_) return core_fail(call, CORE_INTERNAL, "out of memory");                      \
    *slot_ = item_;                                                                          \
    return CORE_OK;                                                                          \
  }

/* The paging fields of a core_list_req from a List request and response
 * that follow the AIP shape (filter, order_by, page_token, page_size;
 * next_page_token): CORE_LIST_PAGE(req, resp), inside the initializer. */
#define CORE_LIST_PAGE(req, resp)                                                        \
  .filter = (req)->filter, .order_by = (req)->order_by, .page_token = (req)->page_token, \
  .page_size = (req)->page_size, .resp = (resp), .next_page_token = &(resp)->next_page_token

/* Runs a core_list_req (tx->arg) inside core_run_tx. */
int core_list_tx(store_conn *conn, core_tx *tx);

#endif
