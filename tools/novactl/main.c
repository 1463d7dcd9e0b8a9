/*
 * main.c - novactl, the NovaCron command-line client: the command table.
 *
 * Each command is one row: name, synopsis, summary, its flags and handler;
 * a group row (user, project, ...) lists its subcommands, which are rows
 * of their own. Adding a command (vm, volume, ...) means adding a row here
 * and a cmd_<name>.c with the handlers; flag parsing, help, connecting,
 * credentials and output are shared (cli.c, creds.c, output.c, resource.c).
 */
#include <jansson.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "resource.h"

static int cmd_help(cli_ctx *ctx);

#define FLAGS(table) table, sizeof(table) / sizeof(table[0])
#define NO_FLAGS NULL, 0
#define NO_SUBCOMMANDS NULL, 0
/* A group row: no flags, arguments or handler of its own. */
#define SUBCOMMANDS(table) NULL, 0, 0, 0, NULL, table, sizeof(table) / sizeof(table[0])

/* ---- flags ---- */

static const cli_flag health_flags[] = {
    {"watch", NULL, NULL, NULL,
     "Stream every status change until the server ends the watch (no deadline unless "
     "--timeout is given)."},
};

static const cli_flag login_flags[] = {
    {"username", "NAME", NULL, NULL, "The user to log in as (instead of the USERNAME argument)."},
    {"password-stdin", NULL, NULL, NULL,
     "Read the password from the first line of stdin instead of the terminal."},
};

static const cli_flag list_flags[] = {RES_LIST_FLAGS};

static const cli_flag etag_flags[] = {
    {"etag", "ETAG", NULL, NULL, "Only if unchanged since read with this etag (else ABORTED)."},
};

static const cli_flag user_create_flags[] = {
    {"display-name", "TEXT", NULL, NULL, "Human-readable name."},
    {"email", "ADDRESS", NULL, NULL, "Contact email address."},
    {"system-admin", NULL, NULL, NULL, "Make the user a system administrator."},
    {"password-stdin", NULL, NULL, NULL,
     "Read the initial password from stdin (else asked twice on the terminal)."},
};

static const cli_flag user_update_flags[] = {
    {"display-name", "TEXT", NULL, NULL, "New human-readable name."},
    {"email", "ADDRESS", NULL, NULL, "New contact email address (\"\" clears it)."},
    {"disable", NULL, NULL, NULL, "Disable the user (ends their sessions)."},
    {"enable", NULL, NULL, NULL, "Enable the user again."},
    {"system-admin", NULL, NULL, NULL, "Grant system administrator rights."},
    {"no-system-admin", NULL, NULL, NULL, "Withdraw system administrator rights."},
    {"etag", "ETAG", NULL, NULL, "Only if unchanged since read with this etag (else ABORTED)."},
};

static const cli_flag passwd_flags[] = {
    {"password-stdin", NULL, NULL, NULL,
     "Read from stdin: the current password on the first line when changing one's own, then "
     "the new one."},
};

static const cli_flag project_create_flags[] = {
    {"display-name", "TEXT", NULL, NULL, "Human-readable name."},
    {"description", "TEXT", NULL, NULL, "Free-form description."},
    {"label", "KEY=VALUE", NULL, NULL, "A label; repeat for several."},
};

static const cli_flag project_update_flags[] = {
    {"display-name", "TEXT", NULL, NULL, "New human-readable name."},
    {"description", "TEXT", NULL, NULL, "New description."},
    {"label", "KEY=VALUE", NULL, NULL, "Replace all labels by these; repeat for several."},
    {"clear-labels", NULL, NULL, NULL, "Remove every label."},
    {"etag", "ETAG", NULL, NULL, "Only if unchanged since read with this etag (else ABORTED)."},
};

static const cli_flag role_grant_flags[] = {
    RES_PROJECT_FLAG,
    {"id", "ID", NULL, NULL, "The binding's id (default: the username)."},
};

static const cli_flag role_list_flags[] = {
    {"project", "PROJECT", "NOVACRON_PROJECT", "default",
     "The project (id or projects/ID); \"-\" for every project you have a role on."},
    RES_LIST_FLAGS,
};

static const cli_flag project_etag_flags[] = {
    RES_PROJECT_FLAG,
    {"etag", "ETAG", NULL, NULL, "Only if unchanged since read with this etag (else ABORTED)."},
};

static const cli_flag apikey_create_flags[] = {
    RES_PROJECT_FLAG,
    {"role", "ROLE", NULL, NULL, "The key's role: viewer, operator or admin (required)."},
    {"description", "TEXT", NULL, NULL, "What the key is for."},
    {"ttl", "DURATION", NULL, NULL, "Expire after this long: 3600s, 90m, 12h, 30d."},
    {"expire-time", "TIME", NULL, NULL, "Expire at this time, e.g. 2030-01-31T00:00:00Z."},
};

static const cli_flag project_list_flags[] = {RES_PROJECT_FLAG, RES_LIST_FLAGS};

static const cli_flag project_flags[] = {RES_PROJECT_FLAG};

static const cli_flag quota_set_flags[] = {
    RES_PROJECT_FLAG,
    {"vcpus", "N", NULL, NULL, "Total virtual CPUs of all VMs (a number or unlimited)."},
    {"memory-mib", "N", NULL, NULL, "Total memory of all VMs in MiB (or unlimited)."},
    {"vms", "N", NULL, NULL, "Number of VMs (or unlimited)."},
    {"volume-gib", "N", NULL, NULL, "Total size of all volumes in GiB (or unlimited)."},
    {"networks", "N", NULL, NULL, "Number of networks (or unlimited)."},
    {"backup-gib", "N", NULL, NULL, "Total stored size of all backups in GiB (or unlimited)."},
    {"etag", "ETAG", NULL, NULL, "Only if unchanged since read with this etag (else ABORTED)."},
};

static const cli_flag audit_list_flags[] = {
    {"project", "PROJECT", NULL, NULL,
     "Only this project's events (needs admin on it); default: all events (system "
     "administrators)."},
    RES_LIST_FLAGS,
};

/* ---- groups ---- */

static const cli_command user_commands[] = {
    {"create", "USERNAME", "Create a user (system administrators).",
     "USERNAME: 1-63 characters of [a-z0-9-], starting with a letter. The password (12-1024\n"
     "bytes) is asked twice on the terminal, or read from stdin with --password-stdin.",
     FLAGS(user_create_flags), 1, 1, cmd_user_create, NO_SUBCOMMANDS},
    {"get", "USERNAME", "Show a user.", NULL, NO_FLAGS, 1, 1, cmd_user_get, NO_SUBCOMMANDS},
    {"list", NULL, "List users (all for system administrators, else yourself).",
     "Filter over username, email, disabled and system_admin, e.g.\n"
     "  --filter 'disabled = false AND username = \"ops-*\"'",
     FLAGS(list_flags), 0, 0, cmd_user_list, NO_SUBCOMMANDS},
    {"update", "USERNAME", "Change a user's profile or flags.",
     "Only the fields given change. --disable, --enable, --system-admin and\n"
     "--no-system-admin need a system administrator.",
     FLAGS(user_update_flags), 1, 1, cmd_user_update, NO_SUBCOMMANDS},
    {"delete", "USERNAME", "Delete a user with their sessions and role bindings.", NULL,
     FLAGS(etag_flags), 1, 1, cmd_user_delete, NO_SUBCOMMANDS},
    {"passwd", "[USERNAME]", "Change your password, or reset another user's (administrators).",
     "Without USERNAME, your own. Changing your own asks for the current password; the\n"
     "new one is asked twice. Your other sessions are revoked.",
     FLAGS(passwd_flags), 0, 1, cmd_user_passwd, NO_SUBCOMMANDS},
};

static const cli_command project_commands[] = {
    {"create", "PROJECT", "Create a project (system administrators).",
     "PROJECT: 1-63 characters of [a-z0-9-], starting with a letter.", FLAGS(project_create_flags),
     1, 1, cmd_project_create, NO_SUBCOMMANDS},
    {"get", "PROJECT", "Show a project.", NULL, NO_FLAGS, 1, 1, cmd_project_get, NO_SUBCOMMANDS},
    {"list", NULL, "List the projects you have a role on (all for administrators).",
     "Filter over display_name and labels.KEY, e.g. --filter 'labels.team = \"web\"'.",
     FLAGS(list_flags), 0, 0, cmd_project_list, NO_SUBCOMMANDS},
    {"update", "PROJECT", "Change a project's display name, description or labels.",
     "Only the fields given change; --label replaces the whole label set.",
     FLAGS(project_update_flags), 1, 1, cmd_project_update, NO_SUBCOMMANDS},
    {"delete", "PROJECT", "Delete an empty project (system administrators).", NULL,
     FLAGS(etag_flags), 1, 1, cmd_project_delete, NO_SUBCOMMANDS},
};

static const cli_command role_commands[] = {
    {"grant", "USER ROLE", "Grant USER a ROLE (viewer, operator, admin) on the project.",
     "A user has at most one binding per project: revoke it to change the role.",
     FLAGS(role_grant_flags), 2, 2, cmd_role_grant, NO_SUBCOMMANDS},
    {"list", NULL, "List the project's role bindings.",
     "Filter over user and role, e.g. --filter 'role = ROLE_ADMIN'.", FLAGS(role_list_flags), 0, 0,
     cmd_role_list, NO_SUBCOMMANDS},
    {"revoke", "BINDING", "Remove a role binding (its id, usually the username, or full name).",
     NULL, FLAGS(project_etag_flags), 1, 1, cmd_role_revoke, NO_SUBCOMMANDS},
};

static const cli_command apikey_commands[] = {
    {"create", "KEY", "Create an API key; its secret is shown this once.",
     "KEY: 1-63 characters of [a-z0-9-], starting with a letter. Use the secret with\n"
     "--api-key-file FILE or the NOVACRON_API_KEY environment variable.",
     FLAGS(apikey_create_flags), 1, 1, cmd_apikey_create, NO_SUBCOMMANDS},
    {"list", NULL, "List the project's API keys (never their secrets).",
     "Filter over state, role and creator, e.g. --filter 'state = STATE_ACTIVE'.",
     FLAGS(project_list_flags), 0, 0, cmd_apikey_list, NO_SUBCOMMANDS},
    {"revoke", "KEY", "Revoke an API key immediately and for good.", NULL,
     FLAGS(project_etag_flags), 1, 1, cmd_apikey_revoke, NO_SUBCOMMANDS},
};

static const cli_command quota_commands[] = {
    {"get", "[PROJECT]", "Show a project's limits and usage.", NULL, FLAGS(project_flags), 0, 1,
     cmd_quota_get, NO_SUBCOMMANDS},
    {"set", "[PROJECT]", "Change a project's limits (system administrators).",
     "Only the limits given change; \"unlimited\" removes one. Example:\n"
     "  novactl quota set default --vcpus 64 --memory-mib 131072 --vms 20 --volume-gib 2000",
     FLAGS(quota_set_flags), 0, 1, cmd_quota_set, NO_SUBCOMMANDS},
};

static const cli_command audit_commands[] = {
    {"list", NULL, "List audit events, newest first.",
     "Filter over time, principal, method, resource, result_code and request_id, e.g.\n"
     "  --filter 'time >= \"2024-05-01T00:00:00Z\" AND result_code != 0'",
     FLAGS(audit_list_flags), 0, 0, cmd_audit_list, NO_SUBCOMMANDS},
};

static const cli_command session_commands[] = {
    {"list", "[USER]", "List your login sessions (or USER's; \"-\" for everyone's).",
     "Filter over state and create_time, e.g. --filter 'state = STATE_ACTIVE'.", FLAGS(list_flags),
     0, 1, cmd_session_list, NO_SUBCOMMANDS},
    {"revoke", "SESSION", "Revoke a session (users/USER/sessions/ID).", NULL, NO_FLAGS, 1, 1,
     cmd_session_revoke, NO_SUBCOMMANDS},
};

/* ---- the table ---- */

static const cli_command commands[] = {
    {"login", "[USERNAME]", "Log in and save the session in the credentials file.",
     "The password is read from the terminal without echo, or with --password-stdin from\n"
     "stdin; never from the command line. The session (server, user, tokens) is saved\n"
     "with mode 0600 and used by later commands; its tokens are refreshed as needed and\n"
     "saved again as they rotate.",
     FLAGS(login_flags), 0, 1, cmd_login, NO_SUBCOMMANDS},
    {"logout", NULL, "End the saved session on the server and delete the credentials file.",
     "The file is deleted even when the server cannot be reached (with a warning).", NO_FLAGS, 0, 0,
     cmd_logout, NO_SUBCOMMANDS},
    {"whoami", NULL, "Show who the server sees: user or API key, roles, session.", NULL, NO_FLAGS,
     0, 0, cmd_whoami, NO_SUBCOMMANDS},
    {"user", NULL, "Manage users: create, get, list, update, delete, passwd.", NULL,
     SUBCOMMANDS(user_commands)},
    {"project", NULL, "Manage projects: create, get, list, update, delete.", NULL,
     SUBCOMMANDS(project_commands)},
    {"role", NULL, "Manage project role bindings: grant, list, revoke.", NULL,
     SUBCOMMANDS(role_commands)},
    {"apikey", NULL, "Manage project API keys: create, list, revoke.", NULL,
     SUBCOMMANDS(apikey_commands)},
    {"quota", NULL, "Show or change project quotas: get, set.", NULL, SUBCOMMANDS(quota_commands)},
    {"audit", NULL, "Read the audit log: list.", NULL, SUBCOMMANDS(audit_commands)},
    {"session", NULL, "Manage login sessions: list, revoke.", NULL, SUBCOMMANDS(session_commands)},
    {"health", "[SERVICE]", "Check whether the server (or one of its services) is serving.",
     "Uses grpc.health.v1.Health. SERVICE is a full service name such as\n"
     "novacron.v1.VmService; without it the whole server is checked.\n"
     "Exit code 0 when SERVING, 3 when not, 1 when the call failed.",
     FLAGS(health_flags), 0, 1, cmd_health, NO_SUBCOMMANDS},
    {"version", NULL, "Print the versions of novactl and of the SDK (libnovacron).", NULL, NO_FLAGS,
     0, 0, cmd_version, NO_SUBCOMMANDS},
    {"help", "[COMMAND [SUBCOMMAND]]", "Show the commands, or one command's usage.", NULL, NO_FLAGS,
     0, 2, cmd_help, NO_SUBCOMMANDS},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const cli_command *find(const cli_command *table, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++) {
    if (strcmp(table[i].name, name) == 0) return &table[i];
  }
  return NULL;
}

static int cmd_help(cli_ctx *ctx) {
  const cli_command *target = NULL;
  const cli_command *group = NULL;
  if (ctx->argc >= 1) {
    target = find(commands, NCOMMANDS, ctx->argv[0]);
    if (!target) return out_usage_error("help", "unknown command \"%s\"", ctx->argv[0]);
  }
  if (ctx->argc == 2) {
    group = target;
    target = find(group->subcommands, group->nsubcommands, ctx->argv[1]);
    if (!target)
      return out_usage_error("help", "unknown command \"%s %s\"", ctx->argv[0], ctx->argv[1]);
  }
  cli_print_help(ctx, group, target);
  return EXIT_OK;
}

/* jansson's allocator: memory is wiped before it is freed, since tokens,
 * passwords and API key secrets pass through JSON values. */
static void *json_alloc(size_t n) { return malloc(n); }

static void json_wipe_free(void *p) {
  if (!p) return;
  explicit_bzero(p, malloc_usable_size(p));
  free(p);
}

int main(int argc, char **argv) {
  /* gRPC's own log lines would repeat our error messages; GRPC_VERBOSITY
   * set by the user (e.g. debug) still wins */
  setenv("GRPC_VERBOSITY", "NONE", 0);
  json_set_alloc_funcs(json_alloc, json_wipe_free);
  return cli_main(commands, NCOMMANDS, argc, argv);
}
