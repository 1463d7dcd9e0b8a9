/*
 * list.c - the List method runner: filter, order and paging through
 * core/listq, one SELECT with count(*) OVER () for total_size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

void **core_push(core_call *call, void ***arr, size_t *n) {
  void **grown = core_alloc(call, sizeof(void *) * (*n + 1));
  if (!grown) return NULL;
  if (*n) memcpy(grown, *arr, sizeof(void *) * *n);
  *arr = grown;
  return &grown[(*n)++];
}

int core_list_tx(store_conn *conn, core_tx *tx) {
  core_list_req *l = tx->arg;
  lq_query q;
  char err[256];
  if (lq_build(l->spec, l->filter, l->order_by, l->page_size, l->page_token, l->fingerprint,
               l->nfixed + 1, &q, err, sizeof(err)) != 0)
    return core_fail(tx->call, CORE_INVALID_ARGUMENT, "%s", err);
  const char *params[LQ_MAX_PARAMS + 8];
  int n = 0;
  for (int i = 0; i < l->nfixed; i++)
    params[n++] = l->fixed[i];
  for (int i = 0; i < q.nparams; i++)
    params[n++] = q.params[i];
  size_t len = strlen(l->select) + strlen(q.where) + strlen(q.order) + strlen(q.limit) + 1;
  char *sql = malloc(len);
  if (!sql) return core_fail(tx->call, CORE_INTERNAL, "out of memory");
  snprintf(sql, len, "%s%s%s%s", l->select, q.where, q.order, q.limit);
  PGresult *r;
  int code = core_q(tx, conn, NULL, sql, n, params, &r);
  free(sql);
  if (code) return code;
  int rows = PQntuples(r);
  long total = 0;
  if (rows > 0) {
    total = (long)core_i64(r, 0, l->ncols);
  } else if (q.offset > 0) {
    total = q.offset; /* past the end: nothing more */
  }
  for (int i = 0; i < rows && code == CORE_OK; i++)
    code = l->row(tx->call, r, i, l->resp);
  PQclear(r);
  if (code) return code;
  *l->total_size = (int32_t)total;
  char tok[LQ_PAGE_TOKEN_SIZE];
  lq_next_token(&q, l->filter, l->order_by, l->fingerprint, rows, total, tok, sizeof(tok));
  *l->next_page_token = core_strdup(tx->call, tok);
  return CORE_OK;
}
