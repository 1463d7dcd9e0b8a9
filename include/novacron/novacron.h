/*
 * novacron.h - libnovacron, the NovaCron C SDK. This directory is the
 * SDK's whole public surface; sdk/ implements it and novactl uses nothing
 * else.
 *
 * Model: an opaque nc_client owns one gRPC channel (TLS by default) and is
 * safe to share between threads. Requests and responses are the protobuf-c
 * messages generated from proto/novacron/v1 (installed next to this header
 * under novacron/gen/). Every function returns an nc_status; when a call
 * reached the server and failed there, the gRPC code and message are in the
 * nc_error passed in (optional: NULL is allowed).
 *
 * Memory: responses are allocated by the SDK; release them with
 * nc_message_free(). Strings passed in are copied.
 *
 * Credentials: a client sends one bearer credential - a token or API key
 * set in the options, or a session from nc_client_login() that it refreshes
 * by itself (rotating refresh tokens; see "sessions and credentials" below
 * for saving and restoring it). Typed wrappers of IdentityService are in
 * novacron/identity.h, those of HostService, VmService, OperationsService
 * and the EventService watch in novacron/compute.h, StorageService in
 * novacron/storage.h and NetworkService in novacron/network.h; all are
 * included at the end of this file.
 */
#ifndef NOVACRON_NOVACRON_H
#define NOVACRON_NOVACRON_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NC_API __attribute__((visibility("default")))

/* ---- versions ---- */

#define NC_VERSION_MAJOR 0
#define NC_VERSION_MINOR 1
#define NC_VERSION_PATCH 0

/* The library's version string, e.g. "0.1.0". Added in 0.1. */
NC_API const char *nc_version(void);

/* ---- status codes (append-only: values never change meaning) ---- */

typedef enum nc_status {
  NC_OK = 0,
  NC_ERR_INVALID_ARGUMENT = 1, /* a bad argument to an SDK function */
  NC_ERR_NO_MEMORY = 2,
  NC_ERR_TLS = 3,           /* TLS material could not be loaded */
  NC_ERR_RPC = 4,           /* the call failed with a gRPC status: see nc_error */
  NC_ERR_DECODE = 5,        /* the response was not a valid message */
  NC_ERR_END_OF_STREAM = 6, /* nc_stream_next: the stream ended with OK */
  NC_ERR_CLOSED = 7,        /* the client or stream was closed */
  NC_ERR_IO = 8,            /* a local file could not be read */
  NC_ERR_NOT_FOUND = 9,     /* a local lookup found nothing */
} nc_status;

/* A static English description of a status ("RPC failed", ...). Never NULL. */
NC_API const char *nc_strerror(nc_status status);

/* gRPC status codes, as carried in nc_error.code (same numbering). */
typedef enum nc_grpc_code {
  NC_GRPC_OK = 0,
  NC_GRPC_CANCELLED = 1,
  NC_GRPC_UNKNOWN = 2,
  NC_GRPC_INVALID_ARGUMENT = 3,
  NC_GRPC_DEADLINE_EXCEEDED = 4,
  NC_GRPC_NOT_FOUND = 5,
  NC_GRPC_ALREADY_EXISTS = 6,
  NC_GRPC_PERMISSION_DENIED = 7,
  NC_GRPC_RESOURCE_EXHAUSTED = 8,
  NC_GRPC_FAILED_PRECONDITION = 9,
  NC_GRPC_ABORTED = 10,
  NC_GRPC_OUT_OF_RANGE = 11,
  NC_GRPC_UNIMPLEMENTED = 12,
  NC_GRPC_INTERNAL = 13,
  NC_GRPC_UNAVAILABLE = 14,
  NC_GRPC_DATA_LOSS = 15,
  NC_GRPC_UNAUTHENTICATED = 16,
} nc_grpc_code;

/* "OK", "INVALID_ARGUMENT", ...; "UNKNOWN_CODE" out of range. */
NC_API const char *nc_grpc_code_name(int code);

/* Details of a failure. `code` is the gRPC status code (NC_GRPC_*) when the
 * status is NC_ERR_RPC, else NC_GRPC_UNKNOWN with a local explanation in
 * `message`. `request_id` is the server's x-request-id when known (quote it
 * when reporting a problem). */
typedef struct nc_error {
  int code;
  char message[512];
  char request_id[40];
} nc_error;

/* ---- client options ---- */

typedef struct nc_options nc_options;

NC_API nc_status nc_options_new(nc_options **out);
NC_API void nc_options_free(nc_options *opts);
/* "host:port" (required). */
NC_API nc_status nc_options_set_target(nc_options *opts, const char *target);
/* PEM file of CA certificates that sign the server certificate. Without it
 * the system roots are used. */
NC_API nc_status nc_options_set_tls_ca_file(nc_options *opts, const char *path);
/* Client certificate and key (PEM files) for mTLS. */
NC_API nc_status nc_options_set_tls_client_cert(nc_options *opts, const char *cert_path,
                                                const char *key_path);
/* Overrides the name checked against the server certificate. */
NC_API nc_status nc_options_set_tls_server_name(nc_options *opts, const char *name);
/* Plaintext; only for servers started with --insecure. */
NC_API nc_status nc_options_set_insecure(nc_options *opts, bool insecure);
/* Sends "authorization: Bearer <token>" on every call (an access token or
 * an API key). NULL clears it. */
NC_API nc_status nc_options_set_bearer_token(nc_options *opts, const char *token);
/* Deadline applied to calls that do not set their own; 0 means none.
 * Default 30000 ms. */
NC_API nc_status nc_options_set_default_deadline_ms(nc_options *opts, int64_t ms);
/* Prefixed to the gRPC user agent. */
NC_API nc_status nc_options_set_user_agent(nc_options *opts, const char *user_agent);

/* ---- the client ---- */

typedef struct nc_client nc_client;

/* Creates a client; connects lazily on the first call. The options are
 * copied: free them whenever convenient. */
NC_API nc_status nc_client_new(const nc_options *opts, nc_client **out, nc_error *err);
/* Cancels nothing; waits for nothing. Call after every call and stream on
 * it has ended. */
NC_API void nc_client_free(nc_client *client);
/* Replaces the bearer token for later calls (thread-safe). */
NC_API nc_status nc_client_set_bearer_token(nc_client *client, const char *token);

/* Per-call settings; pass NULL for the defaults. */
typedef struct nc_call_options {
  int64_t deadline_ms;    /* 0: the client's default; < 0: no deadline */
  const char *request_id; /* sent as x-request-id; NULL: none */
} nc_call_options;

/* ---- generic calls (used by the typed wrappers; usable for any method) ---- */

/* Calls a unary method, e.g. "/grpc.health.v1.Health/Check". On NC_OK
 * *response is a message of type `response_type`; free it with
 * nc_message_free(). */
NC_API nc_status nc_call_unary(nc_client *client, const char *method,
                               const ProtobufCMessage *request,
                               const ProtobufCMessageDescriptor *response_type,
                               ProtobufCMessage **response, const nc_call_options *call_opts,
                               nc_error *err);

typedef struct nc_stream nc_stream;

/* Starts a server-streaming call. */
NC_API nc_status nc_call_server_stream(nc_client *client, const char *method,
                                       const ProtobufCMessage *request,
                                       const ProtobufCMessageDescriptor *response_type,
                                       nc_stream **out, const nc_call_options *call_opts,
                                       nc_error *err);
/* Waits for the next message. NC_OK: *message set (free with
 * nc_message_free); NC_ERR_END_OF_STREAM: the server ended the stream with
 * OK; NC_ERR_RPC: it ended with an error (in err). `timeout_ms` < 0 waits
 * until the call's deadline; a timeout returns NC_ERR_RPC with
 * DEADLINE_EXCEEDED without ending the stream. */
NC_API nc_status nc_stream_next(nc_stream *stream, ProtobufCMessage **message, int64_t timeout_ms,
                                nc_error *err);
/* Cancels the call (the server sees CANCELLED). Safe from another thread. */
NC_API void nc_stream_cancel(nc_stream *stream);
/* Cancels if still running and releases the stream. */
NC_API void nc_stream_free(nc_stream *stream);

/* Frees a message returned by the SDK. NULL is ignored. */
NC_API void nc_message_free(ProtobufCMessage *message);

/* ---- typed wrappers: grpc.health.v1.Health ---- */

typedef enum nc_health_status {
  NC_HEALTH_UNKNOWN = 0,
  NC_HEALTH_SERVING = 1,
  NC_HEALTH_NOT_SERVING = 2,
  NC_HEALTH_SERVICE_UNKNOWN = 3,
} nc_health_status;

/* "UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN". */
NC_API const char *nc_health_status_name(nc_health_status status);

/* Health.Check for `service` ("" or NULL: the whole server). */
NC_API nc_status nc_health_check(nc_client *client, const char *service, nc_health_status *status,
                                 const nc_call_options *call_opts, nc_error *err);
/* Health.Watch: a stream of grpc.health.v1.HealthCheckResponse messages;
 * nc_health_watch_next() unwraps each into a status. */
NC_API nc_status nc_health_watch(nc_client *client, const char *service, nc_stream **out,
                                 const nc_call_options *call_opts, nc_error *err);
NC_API nc_status nc_health_watch_next(nc_stream *stream, nc_health_status *status,
                                      int64_t timeout_ms, nc_error *err);

/* ---- request ids ---- */

/* Length of a UUID string without its NUL ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"). */
#define NC_UUID_LEN 36

/* Writes a new random UUID v4 into buf (at least NC_UUID_LEN + 1 bytes):
 * the request_id that makes a mutating request idempotent, also usable as
 * nc_call_options.request_id. Added in 0.1. */
NC_API nc_status nc_new_request_id(char *buf, size_t len);

/* ---- sessions and credentials ----
 *
 * A client holds at most one credential, sent as "authorization: Bearer
 * ..." on every call except IdentityService.Login and RefreshToken:
 *   - a static bearer token or API key (nc_options_set_bearer_token,
 *     nc_options_set_api_key, nc_client_set_bearer_token): never refreshed;
 *   - a session (nc_client_login, or one restored with
 *     nc_client_set_session): an access token, its refresh token and their
 *     expiry times.
 * With a session, a call made when the access token is within 60 s of its
 * expiry (half its lifetime for tokens living under two minutes) first
 * calls RefreshToken; one thread refreshes while the others wait and reuse
 * the result. A call that fails UNAUTHENTICATED is retried once after a
 * refresh (except Login, RefreshToken and ChangePassword, whose
 * UNAUTHENTICATED is an answer about the request). Refresh tokens rotate:
 * each refresh spends the held one, so the holder must persist the newest
 * (see nc_options_set_session_callback). A refresh whose outcome is unknown
 * (the server could not be reached or did not answer) keeps its request id
 * in the session, so that retrying it - even from another process after
 * nc_client_set_session - is idempotent instead of looking like reuse. A
 * refresh answered UNAUTHENTICATED ends the session: the client forgets
 * its tokens. Tokens never appear in nc_error messages or logs, and the
 * library wipes its copies before freeing them. */

/* A session's state as the SDK hands it out and takes it back. Times are
 * Unix seconds, 0 when unknown. Strings other than access_token may be
 * NULL. */
typedef struct nc_session {
  char *access_token; /* JWT sent as the bearer credential */
  int64_t access_token_expire_time;
  char *refresh_token;               /* single-use; NULL: the session is never refreshed */
  int64_t refresh_token_expire_time; /* the end of the session */
  char *session;                     /* "users/{user}/sessions/{id}" */
  char *refresh_request_id;          /* a refresh whose outcome is unknown, to retry */
} nc_session;

/* Called whenever the client's session changes by itself - after Login,
 * every token rotation, before a refresh (to record its request id), and
 * when the session ends (logout, or a refresh answered UNAUTHENTICATED:
 * `session` is then NULL) - always with the newest state. `session` is
 * valid during the call only. Calls are serialised and run on the thread
 * that changed the session, without the client's token lock held; the
 * callback may call nc_client_get_session but must not make calls on the
 * client or log in, log out, refresh or set the session (it would
 * deadlock). */
typedef void (*nc_session_callback)(const nc_session *session, void *arg);

/* Sends the API key `secret` as the bearer credential on every call; it is
 * never refreshed. NULL clears it. Replaces a bearer token. Added in 0.1. */
NC_API nc_status nc_options_set_api_key(nc_options *opts, const char *secret);
/* Sets the session callback (fn NULL: none). Added in 0.1. */
NC_API nc_status nc_options_set_session_callback(nc_options *opts, nc_session_callback fn,
                                                 void *arg);

/* Restores a saved session (access_token required); the strings are
 * copied. NULL forgets the session. Replaces any bearer token or API key;
 * waits for a refresh in progress. Does not call the session callback.
 * Added in 0.1. */
NC_API nc_status nc_client_set_session(nc_client *client, const nc_session *session);
/* Copies the current session into *out (release with nc_session_clear).
 * NC_ERR_NOT_FOUND when the client holds no session (none yet, logged out,
 * ended, or only a bearer token or API key). Added in 0.1. */
NC_API nc_status nc_client_get_session(nc_client *client, nc_session *out);
/* Wipes and frees the strings of a session from nc_client_get_session and
 * zeroes it. NULL is ignored. Added in 0.1. */
NC_API void nc_session_clear(nc_session *session);

#ifdef __cplusplus
}
#endif

/* Typed wrappers of novacron.v1.IdentityService, login and logout. */
#include "novacron/identity.h"
/* Hosts, VMs, operations (waiting for them) and the event watch. */
#include "novacron/compute.h"
/* Storage pools and volumes. */
#include "novacron/storage.h"
/* Virtual networks, DHCP leases and reservations. */
#include "novacron/network.h"

#endif
