/*
 * authz.c - authentication, authorization and audit (api/authz.h).
 */
#include "api/authz.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/access.h"
#include "util/log.h"

const char *api_field_string(const ProtobufCMessage *msg, const char *path) {
  if (!msg || !path) return NULL;
  char seg[64];
  const char *p = path;
  while (msg) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    if (n == 0 || n >= sizeof(seg)) return NULL;
    memcpy(seg, p, n);
    seg[n] = '\0';
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, seg);
    if (!f || f->label == PROTOBUF_C_LABEL_REPEATED) return NULL;
    const char *base = (const char *)msg + f->offset;
    if (!dot) {
      if (f->type != PROTOBUF_C_TYPE_STRING) return NULL;
      const char *s = *(const char *const *)base;
      return s ? s : "";
    }
    if (f->type != PROTOBUF_C_TYPE_MESSAGE) return NULL;
    msg = *(const ProtobufCMessage *const *)base;
    p = dot + 1;
  }
  return ""; /* an unset parent message: the field is empty */
}

const core_principal *api_caller(rpc_call *call) {
  api_auth *a = rpc_call_auth(call);
  return a ? &a->who : NULL;
}

void api_core_call(rpc_call *call, core_call *cc, char *msg, size_t msglen) {
  memset(cc, 0, sizeof(*cc));
  cc->who = api_caller(call);
  cc->method = rpc_call_method(call);
  cc->peer = rpc_call_peer(call);
  cc->user_agent = rpc_call_metadata(call, "user-agent");
  cc->alloc = rpc_call_allocator(call);
  cc->msg = msg;
  cc->msglen = msglen;
  msg[0] = '\0';
}

static const char *bearer_of(rpc_call *call) {
  const char *h = rpc_call_metadata(call, "authorization");
  if (!h) return NULL;
  if (strncasecmp(h, "Bearer ", 7) != 0) return "";
  h += 7;
  while (*h == ' ')
    h++;
  return h;
}

/* "projects/{p}..." -> p; false for anything else. */
static bool project_of(const char *v, char *out, size_t len) {
  if (strncmp(v, "projects/", 9) != 0) return false;
  const char *s = v + 9;
  size_t n = strcspn(s, "/");
  if (n == 0 || n >= len) return false;
  memcpy(out, s, n);
  out[n] = '\0';
  return true;
}

static const char *role_name(int access) {
  switch (access) {
  case API_VIEWER: return "ROLE_VIEWER";
  case API_OPERATOR: return "ROLE_OPERATOR";
  default: return "ROLE_ADMIN";
  }
}

void api_note_result(rpc_call *call, const ProtobufCMessage *resp) {
  api_auth *a = rpc_call_auth(call);
  if (!a || !resp || resp->descriptor->n_fields == 0) return;
  const ProtobufCFieldDescriptor *f = &resp->descriptor->fields[0];
  if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED) return;
  const ProtobufCMessage *m = *(const ProtobufCMessage *const *)((const char *)resp + f->offset);
  const char *name = api_field_string(m, "name");
  if (name && *name) a->resource = rpc_call_strdup(call, name);
}

/* The audit name of a create call's scope when it is a bare id field:
 * project_id "web" -> "projects/web" (likewise users, hosts, peers). */
static const char *resource_name(rpc_call *call, const rpc_method_row *row, const char *v) {
  if (!v || !*v || strchr(v, '/') || !row->scope) return v;
  const char *field = strrchr(row->scope, '.') ? strrchr(row->scope, '.') + 1 : row->scope;
  size_t n = strlen(field);
  if (n < 4 || strcmp(field + n - 3, "_id") != 0 || n - 3 > 32) return v;
  char buf[320];
  snprintf(buf, sizeof(buf), "%.*ss/%s", (int)(n - 3), field, v);
  return rpc_call_strdup(call, buf);
}

static int before(rpc_call *call, void *arg) {
  api_ctx *ctx = arg;
  const rpc_method_row *row = rpc_call_row(call);
  if (!row || (row->flags & RPC_PUBLIC)) return 0;
  api_auth *a = rpc_call_alloc(call, sizeof(*a));
  if (!a) return rpc_fail(call, CORE_RESOURCE_EXHAUSTED, "out of memory");
  memset(a, 0, sizeof(*a));
  char msg[256] = "";
  core_call cc = {.method = rpc_call_method(call),
                  .peer = rpc_call_peer(call),
                  .msg = msg,
                  .msglen = sizeof(msg)};
  const char *bearer = bearer_of(call);
  int code;
  if (bearer) {
    code = *bearer ? core_identity_authenticate(ctx->identity, &cc, bearer, &a->who)
                   : core_fail(&cc, CORE_UNAUTHENTICATED,
                               "the authorization header must be \"Bearer <credential>\"");
  } else {
    const char *cn = rpc_call_peer_cert_cn(call);
    code = cn ? core_identity_service(ctx->identity, &cc, cn, &a->who)
              : core_fail(&cc, CORE_UNAUTHENTICATED,
                          "missing credentials: send \"authorization: Bearer <token or API "
                          "key>\" (see IdentityService.Login)");
  }
  if (code) return rpc_fail(call, code, "%s", msg);
  rpc_call_set_auth(call, a);
  rpc_call_set_principal(call, a->who.name);

  const char *scope = row->scope ? api_field_string(rpc_call_request(call), row->scope) : NULL;
  a->resource = scope;
  if (scope && project_of(scope, a->project, sizeof(a->project)) && strcmp(a->project, "-") == 0)
    a->project[0] = '\0';
  int level = API_ACCESS_LEVEL(row->access);
  switch (level) {
  case API_AUTHENTICATED: return 0;
  case API_VIEWER:
  case API_OPERATOR:
  case API_ADMIN: break;
  default:
    if (a->who.system_admin) return 0;
    return rpc_fail(call, CORE_PERMISSION_DENIED, "%s requires a system administrator",
                    rpc_call_method(call));
  }
  /* project-scoped: system administrators pass whatever the scope says
   * (the handler reports a malformed one) */
  if (a->who.system_admin) return 0;
  if (!scope || !*scope)
    return rpc_fail(call, CORE_PERMISSION_DENIED,
                    "%s with an empty %s acts across all projects: system administrators only "
                    "(name a project as projects/{project})",
                    rpc_call_method(call), row->scope);
  bool wildcard = strcmp(scope, "projects/-") == 0 || strncmp(scope, "projects/-/", 11) == 0;
  if (wildcard && strcmp(scope, "projects/-") == 0 && (row->access & API_ACROSS_PROJECTS))
    return 0; /* across the caller's projects: the handler filters */
  if (wildcard)
    return rpc_fail(call, CORE_PERMISSION_DENIED,
                    "%s across all projects (projects/-) is for system administrators only; "
                    "name a project",
                    rpc_call_method(call));
  if (!a->project[0])
    return rpc_fail(call, CORE_PERMISSION_DENIED,
                    "%s on %.128s, which is outside any project, is for system administrators "
                    "only",
                    rpc_call_method(call), scope);
  int need = level == API_VIEWER     ? CORE_ROLE_VIEWER
             : level == API_OPERATOR ? CORE_ROLE_OPERATOR
                                     : CORE_ROLE_ADMIN;
  int have = core_principal_role(&a->who, a->project);
  if (have >= need) return 0;
  if (have == CORE_ROLE_NONE)
    return rpc_fail(call, CORE_PERMISSION_DENIED,
                    "%s has no role on projects/%s, or the project does not exist", a->who.name,
                    a->project);
  return rpc_fail(call, CORE_PERMISSION_DENIED, "%s needs %s on projects/%s", rpc_call_method(call),
                  role_name(level), a->project);
}

static void after(rpc_call *call, int status, const char *message, void *arg) {
  api_ctx *ctx = arg;
  const rpc_method_row *row = rpc_call_row(call);
  if (!row || !(row->flags & RPC_MUTATING)) return;
  api_auth *a = rpc_call_auth(call);
  const ProtobufCMessage *req = rpc_call_request(call);
  const char *rid = api_field_string(req, "request_id");
  const char *resource = a ? a->resource : (row->scope ? api_field_string(req, row->scope) : NULL);
  resource = resource_name(call, row, resource);
  char project[96] = "";
  if (a && a->project[0]) snprintf(project, sizeof(project), "projects/%s", a->project);
  const char *principal = rpc_call_principal(call);
  const char *peer = rpc_call_peer(call);
  if (peer && (strncmp(peer, "ipv4:", 5) == 0 || strncmp(peer, "ipv6:", 5) == 0)) peer += 5;
  core_audit_record rec = {.principal = principal ? principal : "anonymous",
                           .project = project,
                           .method = rpc_call_method(call),
                           .resource = resource ? resource : "",
                           .code = status,
                           .message = message,
                           .request_id = rid && *rid ? rid : rpc_call_request_id(call),
                           .peer = peer};
  core_audit_add(ctx->audit, &rec);
}

rpc_interceptor api_authz_interceptor(api_ctx *ctx) {
  return (rpc_interceptor){.name = "authz", .before = before, .after = after, .arg = ctx};
}
