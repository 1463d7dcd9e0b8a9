/*
 * workers.c - the handler thread pool. Handlers may block on PostgreSQL or
 * libvirt, so they never run on completion-queue threads (unless their row
 * says RPC_INLINE). The queue is bounded: when it is full the call is
 * answered UNAVAILABLE at once instead of waiting without limit.
 */
#include <stdlib.h>

#include "rpc/internal.h"
#include "util/log.h"

typedef struct job {
  struct job *next;
  rpc_call *call;
} job;

struct rpc_workers {
  pthread_mutex_t mu;
  pthread_cond_t cond;
  job *head, *tail;
  int queued, limit;
  bool stopping;
  pthread_t *threads;
  int nthreads;
};

static void *worker_main(void *arg) {
  rpc_workers *w = arg;
  for (;;) {
    pthread_mutex_lock(&w->mu);
    while (!w->head && !w->stopping)
      pthread_cond_wait(&w->cond, &w->mu);
    job *j = w->head;
    if (!j) {
      pthread_mutex_unlock(&w->mu);
      return NULL;
    }
    w->head = j->next;
    if (!w->head) w->tail = NULL;
    w->queued--;
    pthread_mutex_unlock(&w->mu);
    rpc_call *call = j->call;
    free(j);
    rpc_call_run_job(call);
  }
}

rpc_workers *rpc_workers_create(int nthreads, int queue_limit) {
  rpc_workers *w = calloc(1, sizeof(*w));
  if (!w) return NULL;
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cond, NULL);
  w->limit = queue_limit;
  w->threads = calloc((size_t)nthreads, sizeof(pthread_t));
  if (!w->threads) {
    free(w);
    return NULL;
  }
  for (int i = 0; i < nthreads; i++) {
    if (pthread_create(&w->threads[i], NULL, worker_main, w) != 0) {
      nc_errorf("could not start worker thread %d", i);
      break;
    }
    w->nthreads++;
  }
  if (w->nthreads == 0) {
    free(w->threads);
    free(w);
    return NULL;
  }
  return w;
}

bool rpc_workers_submit(rpc_workers *w, rpc_call *call) {
  job *j = malloc(sizeof(*j));
  if (!j) return false;
  j->call = call;
  j->next = NULL;
  pthread_mutex_lock(&w->mu);
  if (w->stopping || w->queued >= w->limit) {
    pthread_mutex_unlock(&w->mu);
    free(j);
    return false;
  }
  if (w->tail)
    w->tail->next = j;
  else
    w->head = j;
  w->tail = j;
  w->queued++;
  pthread_cond_signal(&w->cond);
  pthread_mutex_unlock(&w->mu);
  return true;
}

void rpc_workers_destroy(rpc_workers *w) {
  if (!w) return;
  pthread_mutex_lock(&w->mu);
  w->stopping = true;
  pthread_cond_broadcast(&w->cond);
  pthread_mutex_unlock(&w->mu);
  for (int i = 0; i < w->nthreads; i++)
    pthread_join(w->threads[i], NULL);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cond);
  free(w->threads);
  free(w);
}
