/*
 * internal.h - state shared by the runtime's files (server.c, call.c,
 * workers.c, health.c, reflection.c). Nothing outside server/rpc includes it.
 */
#ifndef NC_RPC_INTERNAL_H
#define NC_RPC_INTERNAL_H

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "rpc/arena.h"
#include "rpc/rpc.h"

typedef struct rpc_service rpc_service;
typedef struct rpc_method rpc_method;
typedef struct rpc_reflection rpc_reflection;
typedef struct rpc_health rpc_health;
typedef struct rpc_workers rpc_workers;

struct rpc_method {
  rpc_service *service;
  const ProtobufCMethodDescriptor *desc;
  rpc_method_row row; /* copy; handler NULL => UNIMPLEMENTED */
  char *path;         /* "/pkg.Service/Method" */
  void *handle;       /* grpc_server_register_method */
};

struct rpc_service {
  const ProtobufCServiceDescriptor *desc;
  void *ctx;
  rpc_method *methods;
  size_t nmethods;
};

typedef enum rpc_tag_kind {
  TAG_NEW_CALL,
  TAG_CLOSE,
  TAG_SEND,
  TAG_RECV,
  TAG_STATUS,
  TAG_SERVER_SHUTDOWN,
} rpc_tag_kind;

typedef struct rpc_tag {
  rpc_call *call;
  rpc_tag_kind kind;
} rpc_tag;

typedef struct rpc_out_msg {
  struct rpc_out_msg *next;
  grpc_byte_buffer *buf;
} rpc_out_msg;

#define RPC_MAX_DONE_CALLBACKS 4
#define RPC_MAX_TRAILERS 8

struct rpc_call {
  rpc_server *srv;
  rpc_method *method; /* NULL: arrived through the unknown-method request */
  grpc_call *call;
  grpc_call_details details; /* unknown-method requests only */
  gpr_timespec deadline;
  grpc_metadata_array md_in;
  grpc_byte_buffer *payload;      /* initial request payload / current bidi read */
  grpc_byte_buffer *inflight_buf; /* the SEND_MESSAGE in flight */
  grpc_byte_buffer *payload_out;  /* the last message sent with the status */
  char *unknown_path;             /* method path of an unknown-method call */
  bool intercepted;               /* before-interceptors have run */
  void *data;                     /* rpc_call_set_data */

  rpc_tag t_new, t_close, t_send, t_recv, t_status;
  atomic_int refs;
  atomic_bool cancelled;
  atomic_bool closed;
  int close_cancelled; /* written by the RECV_CLOSE_ON_SERVER op */

  pthread_mutex_t mu;   /* guards everything below */
  pthread_cond_t room;  /* a send completed or the call ended */
  bool handler_running; /* a worker runs the handler: it may wait for room */
  pthread_t handler_thread;
  bool initial_md_sent;
  bool send_inflight;
  rpc_out_msg *q_head, *q_tail;
  int q_len;
  bool finish_requested;
  bool status_started;
  bool stream_open; /* a streaming handler returned RPC_PENDING */
  bool half_closed; /* bidi/client streaming: client finished sending */
  bool recv_paused; /* bidi: the next read waits for room in the queue */
  int final_code;
  char *final_msg;
  grpc_slice final_details;
  grpc_metadata initial_md[1];
  grpc_metadata trailers[RPC_MAX_TRAILERS];
  int ntrailers;
  struct {
    void (*fn)(rpc_call *, void *);
    void *arg;
  } done[RPC_MAX_DONE_CALLBACKS];
  int ndone;
  bool done_ran;

  /* call context */
  struct timespec started;
  char *peer; /* gpr_malloc'd */
  char request_id[40];
  char *principal;
  void *auth;    /* rpc_call_set_auth */
  char *message; /* rpc_fail() text, in the arena */
  int logged_code;
  rpc_arena arena;
  const ProtobufCMessage *request;
  ProtobufCMessage *response;
  struct rpc_call *open_next, *open_prev; /* server's list of open streams */
  bool in_open_list;
};

#define RPC_MAX_INTERCEPTORS 8

struct rpc_server {
  rpc_server_options opts;
  grpc_server *server;
  /* One completion queue polled by every completion-queue thread: a call's
   * events are handled by whichever thread is free, instead of bouncing
   * between per-thread queues (measured: fewer context switches, +4-13%). */
  grpc_completion_queue *cq;
  pthread_t *cq_threads;
  int ncq_threads;     /* wanted */
  int cq_threads_live; /* started */
  rpc_service **services;
  size_t nservices;
  rpc_interceptor interceptors[RPC_MAX_INTERCEPTORS];
  int ninterceptors;
  rpc_workers *workers;
  rpc_health *health;
  rpc_reflection *reflection;

  pthread_rwlock_t arm_lock; /* re-arming vs. shutdown */
  bool shutting_down;        /* under arm_lock (write) */
  atomic_bool draining;

  pthread_mutex_t mu; /* live calls, open streams, shutdown notification */
  pthread_cond_t cond;
  long live_calls;
  rpc_call *open_streams;
  bool shutdown_notified;
  bool started;
  rpc_tag shutdown_tag;
};

/* call.c */
rpc_call *rpc_call_new(rpc_server *srv, rpc_method *method);
void rpc_call_handle_tag(rpc_tag *tag, bool ok);
void rpc_call_post(rpc_server *srv, rpc_method *method);
void rpc_call_run_job(rpc_call *call); /* worker entry point */
void rpc_call_finish_open_stream(rpc_call *call, int code, const char *msg);

/* workers.c */
rpc_workers *rpc_workers_create(int nthreads, int queue_limit);
bool rpc_workers_submit(rpc_workers *w, rpc_call *call);
void rpc_workers_destroy(rpc_workers *w); /* joins after draining the queue */

/* health.c */
rpc_health *rpc_health_create(void);
void rpc_health_destroy(rpc_health *h);
int rpc_health_register(rpc_server *srv, char *errbuf, size_t errlen);
void rpc_health_shutdown(rpc_health *h); /* everything NOT_SERVING */

/* reflection.c */
rpc_reflection *rpc_reflection_create(const unsigned char *set, size_t len, char *errbuf,
                                      size_t errlen);
void rpc_reflection_destroy(rpc_reflection *r);
int rpc_reflection_register(rpc_server *srv, char *errbuf, size_t errlen);
/* The declared cardinality of "/pkg.Service/Method"; -1 when unknown. */
int rpc_reflection_method_kind(const rpc_reflection *r, const char *service_full_name,
                               const char *method);

/* server.c */
void rpc_server_call_released(rpc_server *srv);
/* Adds a stream to the open list (called with the call's mutex held);
 * false once shutdown has begun: the caller ends the stream itself. */
bool rpc_server_stream_opened(rpc_server *srv, rpc_call *call);
void rpc_server_stream_closed(rpc_server *srv, rpc_call *call);

#endif
