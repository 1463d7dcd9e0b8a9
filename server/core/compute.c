/*
 * compute.c - the lifetime of the compute side: hypervisor connections,
 * journal recovery, the operation workers and the background loop.
 *
 * Start order: connect libvirt (events flow from here on), release the
 * claims this replica held before it stopped so they run again at once,
 * register the default host and connect every host (restoring the domains
 * of ephemeral hosts), then start the workers and the background loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/compute_int.h"
#include "core/storage_int.h"
#include "util/log.h"

typedef struct recover_arg {
  const char *replica;
  int n;
} recover_arg;

static int recover_tx(store_conn *conn, core_tx *tx) {
  recover_arg *a = tx->arg;
  const char *p[] = {a->replica};
  PGresult *r;
  /* Our own claims from before a crash or restart: nobody else runs them,
   * so they need not wait for their lease to run out. */
  int code = core_q(tx, conn, "op_recover",
                    "UPDATE operations SET lease_until = NULL WHERE state = 2 AND claimed_by = $1 "
                    "RETURNING id",
                    1, p, &r);
  if (code) return code;
  a->n = PQntuples(r);
  PQclear(r);
  return CORE_OK;
}

core_compute *core_compute_new(store_pool *db, core_events *events, const core_compute_config *cfg,
                               char *err, size_t errlen) {
  core_compute *c = calloc(1, sizeof(*c));
  if (!c) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  c->db = db;
  c->ev = events;
  c->cfg = *cfg;
  if (c->cfg.lease_s <= 0) c->cfg.lease_s = 30;
  if (c->cfg.heartbeat_s <= 0) c->cfg.heartbeat_s = 10;
  if (c->cfg.reconcile_s <= 0) c->cfg.reconcile_s = 60;
  if (c->cfg.detach_timeout_s <= 0) c->cfg.detach_timeout_s = 30;
  if (cfg->replica_id && *cfg->replica_id) {
    snprintf(c->replica, sizeof(c->replica), "%s", cfg->replica_id);
  } else {
    char host[100] = "localhost";
    gethostname(host, sizeof(host) - 1);
    snprintf(c->replica, sizeof(c->replica), "%s", host);
  }
  c->cfg.replica_id = c->replica;
  if (core_check_image_urls(c->cfg.image_urls, err, errlen) != CORE_OK) {
    free(c);
    return NULL;
  }
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->work, NULL);
  pthread_cond_init(&c->done, NULL);
  pthread_cond_init(&c->bg_cv, NULL);
  c->notes_tail = &c->notes;
  if (hv_create(&c->hv, core_compute_on_event, core_compute_on_conn, c, err, errlen) != HV_OK) {
    core_compute_free(c);
    return NULL;
  }
  /* before the journal: recovering resumes this replica id's operations */
  if (core_replica_claim(c, err, errlen) != CORE_OK) {
    core_compute_free(c);
    return NULL;
  }
  recover_arg ra = {.replica = c->replica};
  char msg[256];
  core_arena arena;
  core_arena_init(&arena);
  core_call call = {.alloc = &arena.alloc, .msg = msg, .msglen = sizeof(msg)};
  int code = core_run_tx(db, &call, recover_tx, &ra);
  core_arena_free(&arena);
  if (code) {
    snprintf(err, errlen, "recovering the operations journal: %s", msg);
    core_compute_free(c);
    return NULL;
  }
  if (ra.n)
    nc_infof("operations: %d interrupted operation(s) of replica %s will be resumed", ra.n,
             c->replica);
  if (core_hosts_start(c, err, errlen) != 0) {
    core_compute_free(c);
    return NULL;
  }
  if (core_ops_start(c) != 0) {
    snprintf(err, errlen, "cannot start the operation workers");
    core_compute_free(c);
    return NULL;
  }
  if (pthread_create(&c->bg, NULL, core_compute_bg, c) != 0) {
    snprintf(err, errlen, "cannot start the reconciler");
    core_compute_free(c);
    return NULL;
  }
  c->bg_started = true;
  return c;
}

void core_compute_free(core_compute *c) {
  if (!c) return;
  core_ops_stop(c);
  if (c->bg_started) pthread_join(c->bg, NULL);
  core_replica_release(c);
  if (c->hv) hv_destroy(c->hv);
  while (c->notes) {
    hv_note *n = c->notes;
    c->notes = n->next;
    free(n);
  }
  pthread_mutex_destroy(&c->mu);
  pthread_cond_destroy(&c->work);
  pthread_cond_destroy(&c->done);
  pthread_cond_destroy(&c->bg_cv);
  free(c);
}
