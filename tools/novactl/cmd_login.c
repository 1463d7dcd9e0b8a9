/*
 * cmd_login.c - "novactl login", "novactl logout" and "novactl whoami":
 * starting, ending and inspecting the session kept in the credentials file
 * (creds.c). Passwords come from the terminal without echo or from stdin
 * (--password-stdin), never from the command line; tokens are never shown.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "creds.h"
#include "prompt.h"
#include "resource.h"

int cmd_login(cli_ctx *ctx) {
  const char *cmd = ctx->name;
  const char *username = ctx->argc > 0 ? ctx->argv[0] : cli_get(ctx, "username");
  char password[PROMPT_MAX_PASSWORD + 2];
  char prompt[512];
  char why[PATH_MAX + 128];
  char path[PATH_MAX];
  nc_client *client = NULL;
  nc_session session;
  nc_error err;
  nc_status st;
  int rc;

  memset(&session, 0, sizeof(session));
  password[0] = '\0';
  if (ctx->argc > 0 && cli_given(ctx, "username") &&
      strcmp(ctx->argv[0], cli_get(ctx, "username")) != 0)
    return out_usage_error(cmd, "the username is given twice, differently");
  if (!username || !*username) return out_usage_error(cmd, "give USERNAME (or --username)");
  if ((rc = creds_resolve_path(ctx, path, sizeof(path))) != 0) return rc;
  if ((rc = cli_connect_auth(ctx, CLI_AUTH_NONE, &client)) != 0) goto cleanup;
  const char *target = cli_target(ctx);

  snprintf(prompt, sizeof(prompt), "Password for %s at %s: ", username, target);
  rc = prompt_password(cmd, prompt, cli_switch(ctx, "password-stdin"), password, sizeof(password));
  if (rc != 0) goto cleanup;
  st = nc_client_login(client, username, password, &err);
  explicit_bzero(password, sizeof(password));
  if (st != NC_OK) {
    rc = out_sdk_error(cmd, st, &err);
    goto cleanup;
  }
  if ((st = nc_client_get_session(client, &session)) != NC_OK) {
    rc = out_sdk_error(cmd, st, NULL);
    goto cleanup;
  }
  if (creds_save(path, target, username, &session, why, sizeof(why)) != 0) {
    fprintf(stderr, "novactl: %s: logged in, but the session could not be saved: %s\n", cmd, why);
    /* an unsaved session is of no use to anyone: end it */
    if (nc_client_logout(client, &err) != NC_OK)
      fprintf(stderr, "novactl: %s: the session could not be revoked either: %s\n", cmd,
              err.message);
    rc = EXIT_FAILURE_RPC;
    goto cleanup;
  }

  static const out_column cols[] = {{"Logged in as", "username"},
                                    {"Server", "target"},
                                    {"Session", "session"},
                                    {"Session ends", "sessionExpireTime"},
                                    {"Credentials", "credentials"}};
  char ends[64];
  char access_ends[64];
  pbjson_time_text(session.refresh_token_expire_time, 0, ends, sizeof(ends));
  pbjson_time_text(session.access_token_expire_time, 0, access_ends, sizeof(access_ends));
  json_t *obj = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "username", username, "target", target,
                          "session", session.session ? session.session : "", "sessionExpireTime",
                          ends, "accessTokenExpireTime", access_ends, "credentials", path);
  if (obj) out_object(ctx->format, obj, cols, sizeof(cols) / sizeof(cols[0]));
  rc = EXIT_OK;
cleanup:
  explicit_bzero(password, sizeof(password));
  nc_session_clear(&session);
  nc_client_free(client);
  return rc;
}

int cmd_logout(cli_ctx *ctx) {
  const char *cmd = ctx->name;
  nc_client *client = NULL;
  nc_error err;
  char why[PATH_MAX + 128];
  char session[512] = "";
  int rc = cli_connect_auth(ctx, CLI_AUTH_SESSION, &client);
  if (rc != 0) return rc;
  if (!client) {
    fprintf(stderr, "novactl: %s: not logged in (no session in %s)\n", cmd, ctx->creds->path);
    return EXIT_OK;
  }
  snprintf(session, sizeof(session), "%s",
           ctx->creds->session.session ? ctx->creds->session.session : "");
  nc_status st = nc_client_logout(client, &err);
  /* the SDK reported the end of the session, which deleted the file; make
   * sure of it even if the callback could not */
  if (creds_remove(ctx->creds->path, why, sizeof(why)) != 0)
    fprintf(stderr, "novactl: %s: warning: %s\n", cmd, why);
  if (st == NC_ERR_RPC && err.code == NC_GRPC_UNAUTHENTICATED) {
    fprintf(stderr, "novactl: %s: the session had already ended (%s)\n", cmd, err.message);
  } else if (st == NC_ERR_RPC &&
             (err.code == NC_GRPC_UNAVAILABLE || err.code == NC_GRPC_DEADLINE_EXCEEDED)) {
    fprintf(stderr,
            "novactl: %s: warning: could not reach %s (%s): the session stays valid on the "
            "server until it expires; the saved credentials were deleted\n",
            cmd, ctx->creds->target, err.message);
  } else if (st != NC_OK) {
    rc = out_sdk_error(cmd, st, &err);
    fprintf(stderr, "novactl: %s: the saved credentials were deleted\n", cmd);
    goto cleanup;
  }
  static const out_column cols[] = {{"Logged out", "session"}};
  json_t *obj = json_pack("{s:s, s:s, s:b}", "session", session, "target", ctx->creds->target,
                          "revoked", st == NC_OK);
  if (obj) out_object(ctx->format, obj, cols, 1);
cleanup:
  nc_client_free(client);
  return rc;
}

/* Table-only keys of a principal: its kind and roles in short. */
static void decorate_principal(json_t *p) {
  json_t *bindings = json_object_get(p, "roleBindings");
  json_t *b;
  size_t i;
  char roles[1024] = "";
  size_t o = 0;
  res_short_enum(p, "kind", "KIND_", "_kind");
  json_array_foreach(bindings, i, b) {
    const char *name = json_string_value(json_object_get(b, "name"));
    const char *role = json_string_value(json_object_get(b, "role"));
    char project[256] = "-";
    /* projects/{project}/roleBindings/{binding} */
    if (name && strncmp(name, "projects/", 9) == 0)
      snprintf(project, sizeof(project), "%.*s", (int)strcspn(name + 9, "/"), name + 9);
    if (role && strncmp(role, "ROLE_", 5) == 0) role += 5;
    int n = snprintf(roles + o, sizeof(roles) - o, "%s%s=%s", i ? ", " : "", project,
                     role ? role : "?");
    if (n < 0 || (size_t)n >= sizeof(roles) - o) break;
    o += (size_t)n;
  }
  json_object_set_new(p, "_roles", json_string(o ? roles : "-"));
}

int cmd_whoami(cli_ctx *ctx) {
  static const out_column cols[] = {
      {"Name", "name"},
      {"Kind", "_kind"},
      {"Display name", "displayName"},
      {"System admin", "systemAdmin"},
      {"Session", "session"},
      {"Expires", "expireTime"},
      {"Roles", "_roles"},
  };
  Novacron__V1__WhoAmIRequest req = NOVACRON__V1__WHO_AM_IREQUEST__INIT;
  Novacron__V1__WhoAmIResponse *resp = NULL;
  nc_client *client = NULL;
  nc_error err;
  int rc = cli_connect(ctx, &client);
  if (rc != 0) goto cleanup;
  nc_status st = nc_identity_whoami(client, &req, &resp, NULL, &err);
  if (st != NC_OK) {
    rc = out_sdk_error(ctx->name, st, &err);
    goto cleanup;
  }
  if (!resp->principal) {
    rc = out_usage_error(ctx->name, "the server sent no principal");
    goto cleanup;
  }
  rc = res_show(ctx, &resp->principal->base, cols, sizeof(cols) / sizeof(cols[0]),
                decorate_principal);
cleanup:
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}
