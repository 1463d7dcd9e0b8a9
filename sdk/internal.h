/*
 * internal.h - libnovacron's private declarations: the structs behind the
 * opaque handles, their magic numbers, and the helpers the files in sdk/
 * share (error filling, PEM loading, message coding, call metadata, the
 * credential a call sends and the session behind it).
 *
 * Nothing here is installed or visible outside the library: every symbol is
 * hidden (-fvisibility=hidden); only NC_API functions are exported.
 */
#ifndef NOVACRON_SDK_INTERNAL_H
#define NOVACRON_SDK_INTERNAL_H

#include <grpc/grpc.h>
#include <grpc/support/time.h>
#include <pthread.h>

#include "novacron/novacron.h"

/* Magic numbers checked at every entry point; cleared when freed. */
#define NC_OPTIONS_MAGIC 0x4e434f50u /* "NCOP" */
#define NC_CLIENT_MAGIC 0x4e43434cu  /* "NCCL" */
#define NC_STREAM_MAGIC 0x4e435354u  /* "NCST" */

#define NC_DEFAULT_DEADLINE_MS 30000
#define NC_MAX_RECV_MESSAGE_BYTES (64 * 1024 * 1024)
#define NC_MAX_PEM_BYTES (1024 * 1024)
/* Extra time a completion-queue wait gets beyond the call's deadline: the
 * core ends the call at its deadline, so the batch always completes first. */
#define NC_PLUCK_SLACK_MS 5000

struct nc_options {
  unsigned magic;
  char *target;
  char *ca_file;
  char *cert_file;
  char *key_file;
  char *server_name;
  char *token; /* bearer token or API key (secret: wiped when freed) */
  char *user_agent;
  bool insecure;
  int64_t default_deadline_ms;
  nc_session_callback session_cb;
  void *session_cb_arg;
};

/* A session is refreshed before a call once its access token expires within
 * this many seconds (or within half its lifetime, if that is shorter). */
#define NC_REFRESH_MARGIN_S 60

struct nc_client {
  unsigned magic;
  grpc_channel *channel;
  int64_t default_deadline_ms;

  pthread_mutex_t token_mu;  /* guards the credential and session below */
  pthread_cond_t refresh_cv; /* signalled when a refresh ends */
  char *token;               /* the bearer credential sent; NULL: none */
  /* the session behind `token` (has_session), from Login or restored */
  bool has_session;
  char *refresh_token;
  char *session_name;
  int64_t access_expire;                    /* Unix seconds; 0: unknown */
  int64_t access_issued;                    /* local Unix seconds it arrived; 0: unknown */
  int64_t refresh_expire;                   /* Unix seconds; 0: unknown */
  char refresh_request_id[NC_UUID_LEN + 1]; /* pending refresh to retry; "" */
  bool refreshing;                          /* one thread is calling RefreshToken */
  uint64_t credential_gen;                  /* bumped whenever `token` changes */
  uint64_t state_version;                   /* bumped whenever anything above changes */

  nc_session_callback session_cb;
  void *session_cb_arg;
  pthread_mutex_t notify_mu; /* serialises callbacks; taken before token_mu */
  uint64_t notified_version; /* the state_version last reported */
};

/* The credential a call sends, snapshotted under the client's lock. */
typedef struct nc_credential {
  char *authorization; /* "Bearer ..." or NULL; wiped when destroyed */
  uint64_t generation; /* the client's credential_gen it came from */
} nc_credential;

/* What a call sends in its initial metadata; owned by the call. */
typedef struct nc_outgoing_md {
  grpc_metadata md[2];
  size_t count;
} nc_outgoing_md;

/* The state of the stream's reads. */
typedef enum nc_stream_state {
  NC_STREAM_READING, /* messages may still arrive */
  NC_STREAM_ENDED,   /* the final status was returned; nothing more */
} nc_stream_state;

struct nc_stream {
  unsigned magic;
  grpc_call *call;
  grpc_completion_queue *cq;
  const ProtobufCMessageDescriptor *response_type;
  gpr_timespec deadline; /* the call's, on GPR_CLOCK_MONOTONIC */
  nc_stream_state state;

  /* batches in flight; each is plucked exactly once before the stream goes */
  bool start_pending;  /* send metadata + message + close, recv metadata */
  bool recv_pending;   /* one RECV_MESSAGE */
  bool status_pending; /* RECV_STATUS_ON_CLIENT, started with the call */
  bool start_ok;

  nc_outgoing_md out_md;
  grpc_byte_buffer *request;
  grpc_byte_buffer *response;
  grpc_metadata_array initial_md;
  grpc_metadata_array trailing_md;
  grpc_status_code status;
  grpc_slice status_details;
  char request_id[40];
};

/* ---- errors (status.c) ---- */

/* Resets *err (may be NULL) to "no error". */
void nc_error_clear(nc_error *err);
/* Fills *err (may be NULL) with a local failure: code UNKNOWN and a printf
 * message. Returns `status` so callers can `return nc_fail(...)`. */
nc_status nc_fail(nc_error *err, nc_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Fills *err from a finished call's status. Returns NC_OK for OK, else
 * NC_ERR_RPC. */
nc_status nc_fail_rpc(nc_error *err, grpc_status_code code, const grpc_slice *details,
                      const char *request_id);

/* Wipes a secret string and frees it. NULL is ignored. */
void nc_free_secret(char *secret);

/* ---- client helpers (client.c) ---- */

/* The absolute deadline of a call from its options and the client. */
gpr_timespec nc_client_deadline(const nc_client *client, const nc_call_options *call_opts);
/* True for a string that may go in an ASCII metadata value. */
bool nc_metadata_value_ok(const char *value);

/* ---- call helpers (call.c) ---- */

/* Checks that `request` is a `type` message (INVALID_ARGUMENT naming both
 * otherwise) and calls `method` (sdk/call.c): the body of every typed
 * wrapper. */
nc_status nc_typed_call(nc_client *client, const char *method, const ProtobufCMessage *request,
                        const ProtobufCMessageDescriptor *type,
                        const ProtobufCMessageDescriptor *response_type,
                        ProtobufCMessage **response, const nc_call_options *call_opts,
                        nc_error *err);

/* nc_<fn>: SERVICE's METHOD taking novacron.v1.REQ, answering novacron.v1.RESP; the
 * descriptors are protobuf-c's lower_snake spellings of the message names. */
#define NC_TYPED_METHOD(fn, SERVICE, METHOD, REQ, RESP, req_desc, resp_desc)                       \
  nc_status nc_##fn(nc_client *client, const Novacron__V1__##REQ *request,                         \
                    Novacron__V1__##RESP **response, const nc_call_options *call_opts,             \
                    nc_error *err) {                                                               \
    ProtobufCMessage *msg = NULL;                                                                  \
    nc_status st = nc_typed_call(client, "/" SERVICE "/" #METHOD, request ? &request->base : NULL, \
                                 &req_desc, &resp_desc, response ? &msg : NULL, call_opts, err);   \
    if (response) *response = (Novacron__V1__##RESP *)msg;                                         \
    return st;                                                                                     \
  }

/* Validates the common arguments of nc_call_unary/nc_call_server_stream. */
nc_status nc_call_check_args(nc_client *client, const char *method, const ProtobufCMessage *request,
                             const ProtobufCMessageDescriptor *response_type, const void *out,
                             const nc_call_options *call_opts, nc_error *err);
/* Serialises a message into a new byte buffer. */
nc_status nc_message_encode(const ProtobufCMessage *msg, grpc_byte_buffer **out, nc_error *err);
/* Parses a received byte buffer as `type`. */
nc_status nc_message_decode(grpc_byte_buffer *buf, const ProtobufCMessageDescriptor *type,
                            ProtobufCMessage **out, nc_error *err);
/* Builds the initial metadata of a call: `authorization` (may be NULL)
 * and x-request-id. */
nc_status nc_outgoing_md_init(nc_outgoing_md *md, const char *authorization,
                              const nc_call_options *call_opts, nc_error *err);
void nc_outgoing_md_destroy(nc_outgoing_md *md);
/* Copies x-request-id from initial or trailing metadata into buf[40]. */
void nc_capture_request_id(const grpc_metadata_array *initial, const grpc_metadata_array *trailing,
                           char *buf, size_t len);
/* Creates the grpc_call for `method` on `cq`. */
nc_status nc_call_create(nc_client *client, const char *method, grpc_completion_queue *cq,
                         gpr_timespec deadline, grpc_call **out, nc_error *err);
/* Waits for the batch tagged `tag` until `until` (monotonic). False on
 * timeout: the batch is still pending. */
bool nc_cq_wait(grpc_completion_queue *cq, void *tag, gpr_timespec until, bool *ok);
/* Shuts down, drains and destroys a pluck queue with nothing pending. */
void nc_cq_destroy(grpc_completion_queue *cq);
/* `deadline` plus the pluck slack (infinite stays infinite). */
gpr_timespec nc_deadline_with_slack(gpr_timespec deadline);

/* True for the methods callable without credentials (Login,
 * RefreshToken): no credential is sent to them and no refresh is tried. */
bool nc_method_is_anonymous(const char *method);

/* ---- sessions (session.c) ---- */

/* How nc_session_refresh decides whether to call RefreshToken. */
typedef enum nc_refresh_mode {
  NC_REFRESH_IF_DUE,  /* only if the access token is (nearly) expired */
  NC_REFRESH_IF_SAME, /* unless the credential changed since `seen_gen` */
} nc_refresh_mode;

/* Snapshots the credential for a call to `method`, first refreshing the
 * session when its access token is due. A failed refresh is returned only
 * when the access token cannot be used any more. */
nc_status nc_session_credential(nc_client *client, const char *method, nc_credential *out,
                                nc_error *err);
void nc_credential_destroy(nc_credential *cred);
/* Single-flight refresh (see the modes). NC_ERR_NOT_FOUND without a
 * refreshable session; NC_OK when another thread's refresh made it moot. */
nc_status nc_session_refresh(nc_client *client, nc_refresh_mode mode, uint64_t seen_gen,
                             nc_error *err);
/* Forgets the session's fields (not `token`); caller holds token_mu. */
void nc_session_forget_locked(nc_client *client);
/* Reports the state to the session callback if it changed since the last
 * report. Never called with token_mu held. */
void nc_session_notify(nc_client *client);

#endif
