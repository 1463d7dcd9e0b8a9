/*
 * cmd_user.c - "novactl user create|get|list|update|delete|passwd": user
 * accounts (IdentityService *User and ChangePassword). USERNAME may be
 * given as "alice" or "users/alice". Passwords are read like login's.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "prompt.h"
#include "resource.h"

static const out_column user_cols[] = {
    {"Name", "name"},          {"Display name", "displayName"},
    {"Email", "email"},        {"System admin", "systemAdmin"},
    {"Disabled", "disabled"},  {"Last login", "lastLoginTime"},
    {"Created", "createTime"}, {"Updated", "updateTime"},
    {"Etag", "etag"},
};
#define NUSER_COLS (sizeof(user_cols) / sizeof(user_cols[0]))

static const out_column user_list_cols[] = {
    {"USERNAME", "username"}, {"DISPLAY NAME", "displayName"}, {"EMAIL", "email"},
    {"ADMIN", "systemAdmin"}, {"DISABLED", "disabled"},        {"LAST LOGIN", "lastLoginTime"},
};

static int show_user(const cli_ctx *ctx, const Novacron__V1__User *user) {
  if (!user) return out_usage_error(ctx->name, "the server sent no user");
  return res_show(ctx, &user->base, user_cols, NUSER_COLS, NULL);
}

int cmd_user_create(cli_ctx *ctx) {
  Novacron__V1__CreateUserRequest req = NOVACRON__V1__CREATE_USER_REQUEST__INIT;
  Novacron__V1__User user = NOVACRON__V1__USER__INIT;
  Novacron__V1__CreateUserResponse *resp = NULL;
  char request_id[NC_UUID_LEN + 1];
  char password[PROMPT_MAX_PASSWORD + 2] = "";
  nc_client *client = NULL;
  nc_error err;
  int rc;

  req.user_id = (char *)res_last_segment(ctx->argv[0]);
  req.user = &user;
  if (cli_get(ctx, "display-name")) user.display_name = (char *)cli_get(ctx, "display-name");
  if (cli_get(ctx, "email")) user.email = (char *)cli_get(ctx, "email");
  user.system_admin = cli_switch(ctx, "system-admin");
  if ((rc = res_request_id(ctx, request_id)) != 0) goto cleanup;
  req.request_id = request_id;
  if ((rc = cli_connect(ctx, &client)) != 0) goto cleanup;
  rc = prompt_new_password(ctx->name,
                           "Password for the new user: ", cli_switch(ctx, "password-stdin"),
                           password, sizeof(password));
  if (rc != 0) goto cleanup;
  req.password = password;
  nc_call_options call_opts = {.deadline_ms = 0, .request_id = request_id};
  nc_status st = nc_identity_create_user(client, &req, &resp, &call_opts, &err);
  if (st != NC_OK) {
    rc = out_sdk_error(ctx->name, st, &err);
    goto cleanup;
  }
  rc = show_user(ctx, resp->user);
cleanup:
  explicit_bzero(password, sizeof(password));
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}

int cmd_user_get(cli_ctx *ctx) {
  Novacron__V1__GetUserRequest req = NOVACRON__V1__GET_USER_REQUEST__INIT;
  Novacron__V1__GetUserResponse *resp = NULL;
  char name[512];
  nc_client *client = NULL;
  nc_error err;
  res_name(name, sizeof(name), "users/", ctx->argv[0]);
  req.name = name;
  int rc = cli_connect(ctx, &client);
  if (rc != 0) goto cleanup;
  nc_status st = nc_identity_get_user(client, &req, &resp, NULL, &err);
  rc = st != NC_OK ? out_sdk_error(ctx->name, st, &err) : show_user(ctx, resp->user);
cleanup:
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}

RES_LIST_CALL(list_users, nc_identity_list_users, ListUsersRequest, ListUsersResponse)

int cmd_user_list(cli_ctx *ctx) {
  Novacron__V1__ListUsersRequest req = NOVACRON__V1__LIST_USERS_REQUEST__INIT;
  static const res_list list = {list_users, "users", user_list_cols,
                                sizeof(user_list_cols) / sizeof(user_list_cols[0]), NULL};
  nc_client *client = NULL;
  int rc = cli_connect(ctx, &client);
  if (rc == 0) rc = res_run_list(ctx, client, &req.base, &list);
  nc_client_free(client);
  return rc;
}

int cmd_user_update(cli_ctx *ctx) {
  Novacron__V1__UpdateUserRequest req = NOVACRON__V1__UPDATE_USER_REQUEST__INIT;
  Novacron__V1__User user = NOVACRON__V1__USER__INIT;
  Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
  Novacron__V1__UpdateUserResponse *resp = NULL;
  char *paths[4];
  char name[512];
  char request_id[NC_UUID_LEN + 1];
  nc_client *client = NULL;
  nc_error err;
  int rc;

  if (cli_switch(ctx, "disable") && cli_switch(ctx, "enable"))
    return out_usage_error(ctx->name, "--disable and --enable contradict each other");
  if (cli_switch(ctx, "system-admin") && cli_switch(ctx, "no-system-admin"))
    return out_usage_error(ctx->name, "--system-admin and --no-system-admin contradict each other");
  res_name(name, sizeof(name), "users/", ctx->argv[0]);
  user.name = name;
  if (cli_get(ctx, "etag")) user.etag = (char *)cli_get(ctx, "etag");
  if (cli_get(ctx, "display-name")) {
    user.display_name = (char *)cli_get(ctx, "display-name");
    paths[mask.n_paths++] = "display_name";
  }
  if (cli_get(ctx, "email")) {
    user.email = (char *)cli_get(ctx, "email");
    paths[mask.n_paths++] = "email";
  }
  if (cli_switch(ctx, "disable") || cli_switch(ctx, "enable")) {
    user.disabled = cli_switch(ctx, "disable");
    paths[mask.n_paths++] = "disabled";
  }
  if (cli_switch(ctx, "system-admin") || cli_switch(ctx, "no-system-admin")) {
    user.system_admin = cli_switch(ctx, "system-admin");
    paths[mask.n_paths++] = "system_admin";
  }
  if (mask.n_paths == 0)
    return out_usage_error(ctx->name,
                           "nothing to change: give --display-name, --email, --disable, "
                           "--enable, --system-admin or --no-system-admin");
  mask.paths = paths;
  req.user = &user;
  req.update_mask = &mask;
  if ((rc = res_request_id(ctx, request_id)) != 0) return rc;
  req.request_id = request_id;
  if ((rc = cli_connect(ctx, &client)) != 0) goto cleanup;
  nc_call_options call_opts = {.deadline_ms = 0, .request_id = request_id};
  nc_status st = nc_identity_update_user(client, &req, &resp, &call_opts, &err);
  rc = st != NC_OK ? out_sdk_error(ctx->name, st, &err) : show_user(ctx, resp->user);
cleanup:
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}

int cmd_user_delete(cli_ctx *ctx) {
  Novacron__V1__DeleteUserRequest req = NOVACRON__V1__DELETE_USER_REQUEST__INIT;
  Novacron__V1__DeleteUserResponse *resp = NULL;
  char name[512];
  char request_id[NC_UUID_LEN + 1];
  nc_client *client = NULL;
  nc_error err;
  int rc;
  res_name(name, sizeof(name), "users/", ctx->argv[0]);
  req.name = name;
  if (cli_get(ctx, "etag")) req.etag = (char *)cli_get(ctx, "etag");
  if ((rc = res_request_id(ctx, request_id)) != 0) return rc;
  req.request_id = request_id;
  if ((rc = cli_connect(ctx, &client)) != 0) goto cleanup;
  nc_call_options call_opts = {.deadline_ms = 0, .request_id = request_id};
  nc_status st = nc_identity_delete_user(client, &req, &resp, &call_opts, &err);
  rc = st != NC_OK ? out_sdk_error(ctx->name, st, &err) : res_show_deleted(ctx, name);
cleanup:
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}

/* The caller as WhoAmI sees it: its user name ("users/x") into buf, or ""
 * for API keys and services. 0, or the printed failure's exit code. */
static int caller_user(const cli_ctx *ctx, nc_client *client, char *buf, size_t len) {
  Novacron__V1__WhoAmIRequest req = NOVACRON__V1__WHO_AM_IREQUEST__INIT;
  Novacron__V1__WhoAmIResponse *resp = NULL;
  nc_error err;
  nc_status st = nc_identity_whoami(client, &req, &resp, NULL, &err);
  if (st != NC_OK) return out_sdk_error(ctx->name, st, &err);
  buf[0] = '\0';
  if (resp->principal && resp->principal->kind == NOVACRON__V1__PRINCIPAL__KIND__KIND_USER)
    snprintf(buf, len, "%s", resp->principal->name);
  nc_message_free(&resp->base);
  return 0;
}

int cmd_user_passwd(cli_ctx *ctx) {
  Novacron__V1__ChangePasswordRequest req = NOVACRON__V1__CHANGE_PASSWORD_REQUEST__INIT;
  Novacron__V1__ChangePasswordResponse *resp = NULL;
  char old_password[PROMPT_MAX_PASSWORD + 2] = "";
  char new_password[PROMPT_MAX_PASSWORD + 2] = "";
  char request_id[NC_UUID_LEN + 1];
  char caller[512];
  char name[512];
  bool from_stdin = cli_switch(ctx, "password-stdin");
  nc_client *client = NULL;
  nc_error err;
  int rc;

  if ((rc = res_request_id(ctx, request_id)) != 0) return rc;
  if ((rc = cli_connect(ctx, &client)) != 0) goto cleanup;
  if ((rc = caller_user(ctx, client, caller, sizeof(caller))) != 0) goto cleanup;
  if (ctx->argc > 0) {
    res_name(name, sizeof(name), "users/", ctx->argv[0]);
  } else if (caller[0]) {
    snprintf(name, sizeof(name), "%s", caller);
  } else {
    rc = out_usage_error(ctx->name, "give USERNAME: the caller is not a user");
    goto cleanup;
  }
  /* one's own password needs the current one; an administrator's reset
   * of another user does not */
  if (strcmp(name, caller) == 0) {
    rc = prompt_password(ctx->name, "Current password: ", from_stdin, old_password,
                         sizeof(old_password));
    if (rc != 0) goto cleanup;
    req.old_password = old_password;
  }
  rc = prompt_new_password(ctx->name, "New password: ", from_stdin, new_password,
                           sizeof(new_password));
  if (rc != 0) goto cleanup;
  req.name = name;
  req.new_password = new_password;
  req.request_id = request_id;
  nc_call_options call_opts = {.deadline_ms = 0, .request_id = request_id};
  nc_status st = nc_identity_change_password(client, &req, &resp, &call_opts, &err);
  if (st != NC_OK) {
    rc = out_sdk_error(ctx->name, st, &err);
    goto cleanup;
  }
  fprintf(stderr, "Password changed; the other sessions of %s were revoked.\n", name);
  rc = show_user(ctx, resp->user);
cleanup:
  explicit_bzero(old_password, sizeof(old_password));
  explicit_bzero(new_password, sizeof(new_password));
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}
