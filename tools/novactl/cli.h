/*
 * cli.h - the frame every novactl command plugs into: a command is a row
 * (name, synopsis, summary, its own flags, handler) in main.c's table - or
 * a group row ("user") whose subcommands are rows of their own - and the
 * shared code parses global and command flags, prints help, and turns the
 * global flags and the saved credentials into an nc_client. Handlers hold
 * only their command's logic. novactl uses the public SDK
 * (include/novacron) and nothing else.
 */
#ifndef NOVACTL_CLI_H
#define NOVACTL_CLI_H

#include <novacron/compute.h>
#include <novacron/novacron.h>
#include <stdbool.h>
#include <stddef.h>

#include "output.h"

#define CLI_NAME "novactl"
#define CLI_MAX_FLAGS 32

/* A --flag. metavar NULL makes it a switch (no value). */
typedef struct cli_flag {
  const char *name;    /* without the dashes: "target" */
  const char *metavar; /* value placeholder in help ("HOST:PORT"); NULL: switch */
  const char *env;     /* environment variable read when the flag is absent */
  const char *def;     /* default value, or NULL */
  const char *help;
} cli_flag;

typedef struct cli_ctx cli_ctx;
typedef struct cli_creds cli_creds;

typedef struct cli_command {
  const char *name;
  const char *synopsis; /* positional arguments, e.g. "[SERVICE]" */
  const char *summary;  /* one line for the command list */
  const char *details;  /* paragraph for "novactl CMD --help", or NULL */
  const cli_flag *flags;
  size_t nflags;
  int min_args;
  int max_args;
  int (*run)(cli_ctx *ctx); /* returns the exit code; NULL for a group */
  /* a group ("user"): its subcommands ("create", "get", ...) */
  const struct cli_command *subcommands;
  size_t nsubcommands;
} cli_command;

/* A flag as given on the command line, in order (repeatable flags). */
typedef struct cli_occurrence {
  const cli_flag *flag;
  const char *value;
} cli_occurrence;

struct cli_ctx {
  const cli_command *command;  /* the command run (a subcommand in a group) */
  const cli_command *group;    /* its (innermost) group, or NULL */
  char name[64];               /* "health", "user create", "vm snapshot list": for messages */
  const cli_command *commands; /* the whole table, for help */
  size_t ncommands;
  const char *global_values[CLI_MAX_FLAGS]; /* as given on the command line */
  const char *command_values[CLI_MAX_FLAGS];
  cli_occurrence *occurrences; /* every flag given, in order */
  size_t noccurrences;
  int argc; /* positional arguments after the command name */
  char **argv;
  out_format format;
  cli_creds *creds; /* the credentials file, once cli_connect read it */
};

/* Parses argv into ctx; runs the command (or help) and returns the exit
 * code. */
int cli_main(const cli_command *commands, size_t ncommands, int argc, char **argv);

/* A flag's value: the command line, else its environment variable, else
 * its default; NULL when none. Global and command flags alike. */
const char *cli_get(const cli_ctx *ctx, const char *name);
/* True when the flag was given on the command line. */
bool cli_given(const cli_ctx *ctx, const char *name);
/* True when the flag was given or its environment variable is set. */
bool cli_explicit(const cli_ctx *ctx, const char *name);
/* The n-th value (from 0) of a flag given several times, in command-line
 * order; NULL past the last. */
const char *cli_get_nth(const cli_ctx *ctx, const char *name, size_t n);
/* A switch's value. */
bool cli_switch(const cli_ctx *ctx, const char *name);

/* Which credential cli_connect gives the client. */
typedef enum cli_auth {
  /* --token, --api-key-file, $NOVACRON_TOKEN, $NOVACRON_API_KEY, else the
   * session in the credentials file (refreshed, and saved on rotation) */
  CLI_AUTH_DEFAULT,
  CLI_AUTH_NONE,    /* login: nothing (the target may come from the file) */
  CLI_AUTH_SESSION, /* logout: the credentials file's session only */
} cli_auth;

/* Builds a client from the global flags with the default credential. On
 * failure prints the error and returns the exit code; 0 on success. */
int cli_connect(const cli_ctx *ctx, nc_client **client);
/* The same with a chosen credential. With CLI_AUTH_SESSION and no saved
 * session, *client stays NULL and 0 is returned. */
int cli_connect_auth(const cli_ctx *ctx, cli_auth auth, nc_client **client);
/* The server address cli_connect uses. */
const char *cli_target(const cli_ctx *ctx);

/* Prints help: the command list (command NULL), a group's subcommands, or
 * one command's usage (group: the command's group, or NULL). */
void cli_print_help(const cli_ctx *ctx, const cli_command *group, const cli_command *command);

/* Handlers (one file per command group). */
int cmd_health(cli_ctx *ctx);
int cmd_version(cli_ctx *ctx);
int cmd_login(cli_ctx *ctx);
int cmd_logout(cli_ctx *ctx);
int cmd_whoami(cli_ctx *ctx);
int cmd_user_create(cli_ctx *ctx);
int cmd_user_get(cli_ctx *ctx);
int cmd_user_list(cli_ctx *ctx);
int cmd_user_update(cli_ctx *ctx);
int cmd_user_delete(cli_ctx *ctx);
int cmd_user_passwd(cli_ctx *ctx);
int cmd_project_create(cli_ctx *ctx);
int cmd_project_get(cli_ctx *ctx);
int cmd_project_list(cli_ctx *ctx);
int cmd_project_update(cli_ctx *ctx);
int cmd_project_delete(cli_ctx *ctx);
int cmd_role_grant(cli_ctx *ctx);
int cmd_role_list(cli_ctx *ctx);
int cmd_role_revoke(cli_ctx *ctx);
int cmd_apikey_create(cli_ctx *ctx);
int cmd_apikey_list(cli_ctx *ctx);
int cmd_apikey_revoke(cli_ctx *ctx);
int cmd_quota_get(cli_ctx *ctx);
int cmd_quota_set(cli_ctx *ctx);
int cmd_audit_list(cli_ctx *ctx);
int cmd_session_list(cli_ctx *ctx);
int cmd_session_revoke(cli_ctx *ctx);
int cmd_host_list(cli_ctx *ctx);
int cmd_host_get(cli_ctx *ctx);
int cmd_host_register(cli_ctx *ctx);
int cmd_host_update(cli_ctx *ctx);
int cmd_host_cordon(cli_ctx *ctx);
int cmd_host_uncordon(cli_ctx *ctx);
int cmd_host_drain(cli_ctx *ctx);
int cmd_host_deregister(cli_ctx *ctx);
int cmd_vm_list(cli_ctx *ctx);
int cmd_vm_get(cli_ctx *ctx);
int cmd_vm_create(cli_ctx *ctx);
int cmd_vm_update(cli_ctx *ctx);
int cmd_vm_delete(cli_ctx *ctx);
int cmd_vm_start(cli_ctx *ctx);
int cmd_vm_stop(cli_ctx *ctx);
int cmd_vm_reboot(cli_ctx *ctx);
int cmd_vm_pause(cli_ctx *ctx);
int cmd_vm_resume(cli_ctx *ctx);
int cmd_vm_resize(cli_ctx *ctx);
int cmd_vm_migrate(cli_ctx *ctx);
int cmd_vm_clone(cli_ctx *ctx);
int cmd_vm_stats(cli_ctx *ctx);
int cmd_vm_snapshot_create(cli_ctx *ctx);
int cmd_vm_snapshot_list(cli_ctx *ctx);
int cmd_vm_snapshot_get(cli_ctx *ctx);
int cmd_vm_snapshot_revert(cli_ctx *ctx);
int cmd_vm_snapshot_delete(cli_ctx *ctx);
int cmd_vm_attach_volume(cli_ctx *ctx);
int cmd_vm_detach_volume(cli_ctx *ctx);
int cmd_vm_attach_nic(cli_ctx *ctx);
int cmd_vm_detach_nic(cli_ctx *ctx);
int cmd_op_list(cli_ctx *ctx);
int cmd_op_get(cli_ctx *ctx);
int cmd_op_wait(cli_ctx *ctx);
int cmd_op_cancel(cli_ctx *ctx);
int cmd_events(cli_ctx *ctx);
int cmd_pool_list(cli_ctx *ctx);
int cmd_pool_get(cli_ctx *ctx);
int cmd_pool_create(cli_ctx *ctx);
int cmd_pool_delete(cli_ctx *ctx);
int cmd_volume_list(cli_ctx *ctx);
int cmd_volume_get(cli_ctx *ctx);
int cmd_volume_create(cli_ctx *ctx);
int cmd_volume_resize(cli_ctx *ctx);
int cmd_volume_clone(cli_ctx *ctx);
int cmd_volume_delete(cli_ctx *ctx);
int cmd_network_list(cli_ctx *ctx);
int cmd_network_get(cli_ctx *ctx);
int cmd_network_create(cli_ctx *ctx);
int cmd_network_update(cli_ctx *ctx);
int cmd_network_delete(cli_ctx *ctx);
int cmd_network_leases(cli_ctx *ctx);
int cmd_network_reserve(cli_ctx *ctx);
int cmd_network_unreserve(cli_ctx *ctx);

/* What the host and vm commands share from cmd_op.c: a mutating call that
 * answers with an Operation, run to its end. `call` is a typed wrapper
 * adapted to generic messages (RES_LIST_CALL in resource.h makes one);
 * a request_id field of `request` is filled with a fresh UUID. Then, with
 * --no-wait, the operation is shown (its name; JSON: the operation);
 * otherwise it is waited for (--wait-timeout) and its result, a
 * `result_type` message, is handed to `show`. A failed operation prints
 * its error like a failed call. Returns the exit code. */
int cmd_op_call(const cli_ctx *ctx, ProtobufCMessage *request,
                nc_status (*call)(nc_client *client, const ProtobufCMessage *request,
                                  ProtobufCMessage **response, const nc_call_options *call_opts,
                                  nc_error *err),
                const ProtobufCMessageDescriptor *result_type,
                int (*show)(const cli_ctx *ctx, const ProtobufCMessage *result));
/* An enum value from a flag: its full name ("BUS_VIRTIO") or the name
 * without `prefix` ("virtio"), in any case, '-' standing for '_'. The
 * *_UNSPECIFIED value never matches. False (and a usage error printed,
 * listing the choices) when nothing matches. */
bool cmd_parse_enum(const cli_ctx *ctx, const char *flag, const char *text,
                    const ProtobufCEnumDescriptor *e, const char *prefix, int *value);

/* What the storage commands share from cmd_pool.c: the pool named by
 * `arg` - hosts/H/pools/P, H/P, or P with the command's --host H - into
 * buf (0, or prints and returns EXIT_USAGE); and a table-only key with the
 * integer byte count at key_from in KiB, MiB, GiB, ... ("20 GiB",
 * "1.5 MiB"; no-op if key_from is absent). */
int cmd_pool_name(const cli_ctx *ctx, const char *arg, char *buf, size_t len);
void cmd_size_text(json_t *obj, const char *key_from, const char *key_to);

#endif
