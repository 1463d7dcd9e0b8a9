/*
 * authz.h - authentication, authorization and audit for every call, as one
 * interceptor pair driven by the method tables (api/services.h).
 *
 * before: RPC_PUBLIC rows pass. Otherwise the caller is authenticated from
 * `authorization: Bearer <access token or API key>` or, without that
 * header, from a verified TLS client certificate configured as a service
 * principal; then the row's access is checked against the project named by
 * its scope field. A caller without a role on that project gets
 * PERMISSION_DENIED whether or not the resource exists.
 * after: every RPC_MUTATING call, allowed or refused, is queued for the
 * audit log with its principal, project, resource, status and request id.
 */
#ifndef NC_API_AUTHZ_H
#define NC_API_AUTHZ_H

#include "core/audit.h"
#include "core/compute.h"
#include "core/events.h"
#include "core/identity.h"
#include "rpc/rpc.h"

/* What the API handlers need, passed to every service as its context. */
typedef struct api_ctx {
  core_identity *identity;
  core_audit *audit;
  core_events *events;   /* the event bus behind WatchEvents */
  core_compute *compute; /* hosts, VMs and operations */
} api_ctx;

/* The per-call authentication result (in the call arena). */
typedef struct api_auth {
  core_principal who;
  char project[64]; /* the project the call acts in; "" for global calls */
  const char *resource;
} api_auth;

/* The interceptor; `ctx` must outlive the server. */
rpc_interceptor api_authz_interceptor(api_ctx *ctx);

/* The authenticated principal of a call (NULL for public methods). */
const core_principal *api_caller(rpc_call *call);

/* Fills a core_call for a handler: principal, method, peer, user agent,
 * allocator and message buffer. */
void api_core_call(rpc_call *call, core_call *cc, char *msg, size_t msglen);

/* Records the resource a successful call produced or changed, for its audit
 * record: the `name` of the response's first message field (the created
 * user, project, binding, key...). Without it the audit log names the
 * request's scope field. */
void api_note_result(rpc_call *call, const ProtobufCMessage *resp);

/* The value of the string field at the dotted `path` of `msg`; NULL when the
 * path does not name a string field. */
const char *api_field_string(const ProtobufCMessage *msg, const char *path);

#endif
