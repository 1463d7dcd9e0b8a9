/*
 * rpc.h - the generic gRPC-core server runtime.
 *
 * Services are registered as a protobuf-c service descriptor plus a table of
 * method rows (handler, streaming kind, flags). The runtime owns the
 * completion queues, the per-call state machines, the worker pool that runs
 * blocking handlers, the interceptor chain (access log now; authentication,
 * authorization, rate limiting and metrics plug in the same way), the
 * standard health and reflection services, TLS and graceful shutdown.
 *
 * This module knows nothing about NovaCron's services: it depends only on
 * util/ and the gRPC/protobuf-c libraries.
 */
#ifndef NC_RPC_RPC_H
#define NC_RPC_RPC_H

#include <protobuf-c/protobuf-c.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rpc_server rpc_server;
typedef struct rpc_call rpc_call;

/* The cardinality of a method, as declared in its .proto. */
typedef enum rpc_kind {
  RPC_UNARY = 0,
  RPC_SERVER_STREAMING = 1,
  RPC_CLIENT_STREAMING = 2,
  RPC_BIDI_STREAMING = 3,
} rpc_kind;

/* Method row flags. */
enum {
  /* The handler never blocks: run it on the completion-queue thread. */
  RPC_INLINE = 1u << 0,
  /* Safe to retry: the method has no side effects or is keyed by request_id. */
  RPC_IDEMPOTENT = 1u << 1,
  /* Callable without credentials (health, reflection, Login). */
  RPC_PUBLIC = 1u << 2,
  /* Changes state: the audit interceptor records every such call, allowed
   * or refused. */
  RPC_MUTATING = 1u << 3,
};

/* Returned by a server-streaming handler that will finish the call later
 * with rpc_stream_finish(). */
#define RPC_PENDING (-1)

/*
 * A method handler. Returns a grpc_status_code (set a message with
 * rpc_fail()) or RPC_PENDING.
 *  - unary: `req` is the decoded request, `resp` an initialised response
 *    allocated in the call's arena; returning 0 (OK) sends `resp`.
 *  - server streaming: `resp` is NULL; send with rpc_stream_send() and
 *    return the final status, or RPC_PENDING and finish later.
 *  - bidi streaming: called once per request with an initialised `resp`;
 *    returning OK sends `resp` and reads the next request; any other status
 *    ends the call. The call ends with OK when the client half-closes.
 *  - client streaming: called per request with `resp` NULL, then once with
 *    `req` NULL at half-close, with `resp` set, to produce the reply.
 */
typedef int (*rpc_handler_fn)(rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp,
                              void *service_ctx);

/* One method of a service. Methods of the descriptor without a row, or with
 * a NULL handler, answer UNIMPLEMENTED naming the method. */
typedef struct rpc_method_row {
  const char *name; /* as in the .proto, e.g. "GetVm" */
  rpc_kind kind;
  rpc_handler_fn handler;
  unsigned flags;
  /* What the authorization interceptor requires of the caller. The runtime
   * does not interpret it; the interceptor that reads it defines the values
   * (server/api/authz.h). */
  int access;
  /* Dotted path of the request's string field that names the resource or
   * parent the call acts on ("name", "parent", "quota.name"); NULL when the
   * call names none. The authorizer derives the project from it and the
   * audit log records it. */
  const char *scope;
} rpc_method_row;

/* Interceptors run in registration order before the handler (on the thread
 * that runs the handler, after the request was decoded; also for rows
 * without a handler, which answer UNIMPLEMENTED only after the interceptors
 * let them through) and after the call has ended (on a completion-queue
 * thread: `after` must not block). `before` returns
 * GRPC_STATUS_OK (0) to continue or a status (with rpc_fail()) to end the
 * call without running the handler. */
typedef struct rpc_interceptor {
  const char *name;
  int (*before)(rpc_call *call, void *arg);
  void (*after)(rpc_call *call, int status, const char *message, void *arg);
  void *arg;
} rpc_interceptor;

typedef enum rpc_client_auth {
  RPC_CLIENT_AUTH_NONE = 0, /* do not ask for client certificates */
  RPC_CLIENT_AUTH_OPTIONAL, /* verify a client certificate when one is sent */
  RPC_CLIENT_AUTH_REQUIRE,  /* mTLS: require and verify */
} rpc_client_auth;

typedef struct rpc_server_options {
  const char *listen_addr;        /* "host:port"; port 0 picks a free port */
  bool insecure;                  /* plaintext; only behind an explicit flag */
  const char *tls_cert_file;      /* PEM server certificate chain */
  const char *tls_key_file;       /* PEM private key */
  const char *tls_client_ca_file; /* PEM CA bundle for client certificates */
  rpc_client_auth client_auth;
  int cq_threads;          /* completion-queue threads (>= 1) */
  int workers;             /* handler threads (>= 1) */
  int worker_queue_limit;  /* calls waiting for a worker before UNAVAILABLE */
  int requests_per_method; /* requests kept posted per method per queue */
  int max_recv_message_bytes;
  int max_send_message_bytes;
  int stream_queue_limit;        /* messages buffered per stream before overflow */
  int shutdown_delay_ms;         /* NOT_SERVING this long before calls are refused */
  const unsigned char *protoset; /* FileDescriptorSet of every served file */
  size_t protoset_len;
} rpc_server_options;

/* Creates a server (nothing is bound yet). On failure returns -1 with a
 * message in errbuf. */
int rpc_server_create(const rpc_server_options *opts, rpc_server **out, char *errbuf,
                      size_t errlen);
/* Registers a service. Fails (-1, errbuf) when a row names a method the
 * descriptor lacks or declares a kind that contradicts the descriptor set. */
int rpc_server_add_service(rpc_server *srv, const ProtobufCServiceDescriptor *desc,
                           const rpc_method_row *rows, size_t nrows, void *service_ctx,
                           char *errbuf, size_t errlen);
/* The row a method path ("/pkg.Service/Method") dispatches to, after
 * defaults were filled in; NULL when no registered service has it. */
const rpc_method_row *rpc_server_lookup(const rpc_server *srv, const char *path);
/* Calls fn for every registered method, in registration order. */
void rpc_server_foreach_method(const rpc_server *srv,
                               void (*fn)(const char *path, const rpc_method_row *row, void *arg),
                               void *arg);
/* Appends an interceptor; call before rpc_server_start. */
int rpc_server_add_interceptor(rpc_server *srv, const rpc_interceptor *ic);
/* Binds, registers health and reflection, starts the threads. The bound
 * address (with the real port) is written to `bound`. */
int rpc_server_start(rpc_server *srv, char *bound, size_t boundlen, char *errbuf, size_t errlen);
/* Graceful shutdown: health NOT_SERVING (calls are still served for
 * shutdown_delay_ms, so load balancers can move away), open streams ended
 * with UNAVAILABLE, new calls refused, in-flight calls drained for up to
 * `grace_ms`, then cancelled; returns when every call has been released. */
void rpc_server_shutdown(rpc_server *srv, int grace_ms);
void rpc_server_destroy(rpc_server *srv);

/* Health: per-service status ("" is the whole server). Registered services
 * start SERVING. */
typedef enum rpc_health_status {
  RPC_HEALTH_UNKNOWN = 0,
  RPC_HEALTH_SERVING = 1,
  RPC_HEALTH_NOT_SERVING = 2,
  RPC_HEALTH_SERVICE_UNKNOWN = 3,
} rpc_health_status;
void rpc_health_set(rpc_server *srv, const char *service, rpc_health_status status);

/* ---- inside a call ---- */

/* Sets the call's status message (printf-style) and returns `code`. */
int rpc_fail(rpc_call *call, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int rpc_failv(rpc_call *call, int code, const char *fmt, va_list ap);

const char *rpc_call_method(const rpc_call *call); /* "/pkg.Service/Method" */
const char *rpc_call_peer(const rpc_call *call);   /* "ipv4:127.0.0.1:5555" */
const char *rpc_call_request_id(const rpc_call *call);
const char *rpc_call_principal(const rpc_call *call); /* NULL until authenticated */
void rpc_call_set_principal(rpc_call *call, const char *principal);
/* Whatever the authentication interceptor attached to the call (allocated
 * in the call arena or owned elsewhere); NULL until set. */
void rpc_call_set_auth(rpc_call *call, void *auth);
void *rpc_call_auth(const rpc_call *call);
/* The decoded request of a unary or server-streaming call (the first
 * request of the others, while it is being handled); NULL before decoding. */
const ProtobufCMessage *rpc_call_request(const rpc_call *call);
/* The common name of the client certificate the TLS layer verified, copied
 * into the call arena; NULL without a verified client certificate. */
const char *rpc_call_peer_cert_cn(rpc_call *call);
const rpc_method_row *rpc_call_row(const rpc_call *call); /* NULL: unknown method */
void *rpc_call_service_ctx(const rpc_call *call);
/* First value of a request metadata key (lower case), NUL-terminated copy in
 * the call arena; NULL when absent. */
const char *rpc_call_metadata(rpc_call *call, const char *key);
/* Milliseconds until the deadline; INT64_MAX without a deadline; <= 0 once
 * it has passed. */
int64_t rpc_call_deadline_remaining_ms(const rpc_call *call);
/* True once the client cancelled, the deadline passed or the server is
 * cancelling calls. Long handlers poll it. */
bool rpc_call_cancelled(const rpc_call *call);
/* Adds trailing metadata sent with the status (key lower case). */
int rpc_call_add_trailer(rpc_call *call, const char *key, const char *value);

/* Per-call handler state, e.g. what a client-streaming handler gathers
 * across messages (allocate it in the arena). NULL until set. */
void rpc_call_set_data(rpc_call *call, void *data);
void *rpc_call_data(const rpc_call *call);

/* The call arena: freed as a whole when the call ends (for bidi streams,
 * reset before each request: keep nothing in it across messages). */
void *rpc_call_alloc(rpc_call *call, size_t size);
char *rpc_call_strdup(rpc_call *call, const char *s);
ProtobufCAllocator *rpc_call_allocator(rpc_call *call);

/* References for code that keeps a call beyond its handler (stream
 * subscribers). */
void rpc_call_ref(rpc_call *call);
void rpc_call_unref(rpc_call *call);
/* Registers a callback run once when the call ends (client gone, cancelled
 * or finished). At most 4 per call. */
int rpc_call_on_done(rpc_call *call, void (*fn)(rpc_call *call, void *arg), void *arg);

/* Server streaming: queues one message. Returns false when the call has
 * ended or its queue overflowed (the call then ends RESOURCE_EXHAUSTED). */
bool rpc_stream_send(rpc_call *call, const ProtobufCMessage *msg);
/* Ends a stream after the queued messages have been sent. */
void rpc_stream_finish(rpc_call *call, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Status code names ("OK", "INVALID_ARGUMENT", ...); "UNKNOWN_CODE" beyond. */
const char *rpc_status_name(int code);
/* Parses a name (case-insensitive) or a number; -1 when unknown. */
int rpc_status_from_name(const char *name);

#endif
