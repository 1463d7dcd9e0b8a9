/*
 * cmd_session.c - "novactl session list|revoke": login sessions
 * (IdentityService ListSessions/RevokeSession). list shows the caller's own
 * sessions unless USER is given ("-" for every user's, administrators).
 */
#include <stdio.h>

#include "cli.h"
#include "resource.h"

static const out_column session_cols[] = {
    {"Name", "name"},
    {"State", "_state"},
    {"Current", "current"},
    {"Peer", "peer"},
    {"User agent", "userAgent"},
    {"Created", "createTime"},
    {"Last refresh", "lastRefreshTime"},
    {"Expires", "expireTime"},
    {"Revoked", "revokeTime"},
    {"Reason", "revokeReason"},
};

static const out_column session_list_cols[] = {
    {"NAME", "name"},           {"STATE", "_state"},       {"CURRENT", "current"},
    {"PEER", "peer"},           {"CREATED", "createTime"}, {"EXPIRES", "expireTime"},
    {"REASON", "revokeReason"},
};

static void decorate_session(json_t *s) { res_short_enum(s, "state", "STATE_", "_state"); }

RES_LIST_CALL(list_sessions, nc_identity_list_sessions, ListSessionsRequest, ListSessionsResponse)

int cmd_session_list(cli_ctx *ctx) {
  Novacron__V1__ListSessionsRequest req = NOVACRON__V1__LIST_SESSIONS_REQUEST__INIT;
  Novacron__V1__WhoAmIRequest who_req = NOVACRON__V1__WHO_AM_IREQUEST__INIT;
  Novacron__V1__WhoAmIResponse *who = NULL;
  static const res_list list = {list_sessions, "sessions", session_list_cols,
                                sizeof(session_list_cols) / sizeof(session_list_cols[0]),
                                decorate_session};
  char parent[512];
  nc_client *client = NULL;
  nc_error err;
  int rc = cli_connect(ctx, &client);
  if (rc != 0) goto cleanup;
  if (ctx->argc > 0) {
    res_name(parent, sizeof(parent), "users/", ctx->argv[0]);
  } else {
    nc_status st = nc_identity_whoami(client, &who_req, &who, NULL, &err);
    if (st != NC_OK) {
      rc = out_sdk_error(ctx->name, st, &err);
      goto cleanup;
    }
    if (!who->principal || who->principal->kind != NOVACRON__V1__PRINCIPAL__KIND__KIND_USER) {
      rc = out_usage_error(ctx->name, "give USER: the caller is not a user");
      goto cleanup;
    }
    snprintf(parent, sizeof(parent), "%s", who->principal->name);
  }
  req.parent = parent;
  rc = res_run_list(ctx, client, &req.base, &list);
cleanup:
  nc_message_free(who ? &who->base : NULL);
  nc_client_free(client);
  return rc;
}

int cmd_session_revoke(cli_ctx *ctx) {
  Novacron__V1__RevokeSessionRequest req = NOVACRON__V1__REVOKE_SESSION_REQUEST__INIT;
  Novacron__V1__RevokeSessionResponse *resp = NULL;
  char request_id[NC_UUID_LEN + 1];
  nc_client *client = NULL;
  nc_error err;
  int rc;
  req.name = ctx->argv[0];
  if ((rc = res_request_id(ctx, request_id)) != 0) return rc;
  req.request_id = request_id;
  if ((rc = cli_connect(ctx, &client)) != 0) goto cleanup;
  nc_call_options call_opts = {.deadline_ms = 0, .request_id = request_id};
  nc_status st = nc_identity_revoke_session(client, &req, &resp, &call_opts, &err);
  if (st != NC_OK)
    rc = out_sdk_error(ctx->name, st, &err);
  else if (!resp->session)
    rc = out_usage_error(ctx->name, "the server sent no session");
  else
    rc = res_show(ctx, &resp->session->base, session_cols,
                  sizeof(session_cols) / sizeof(session_cols[0]), decorate_session);
cleanup:
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}
