/*
 * main.c - novactl, the NovaCron command-line client: the command table.
 *
 * Each command is one row: name, synopsis, summary, its flags and handler.
 * Adding a command (login, user, project, vm, ...) means adding a row here
 * and a cmd_<name>.c with the handler; flag parsing, help, connecting and
 * output are shared (cli.c, output.c).
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int cmd_help(cli_ctx *ctx);

static const cli_flag health_flags[] = {
    {"watch", NULL, NULL, NULL,
     "Stream every status change until the server ends the watch (no deadline unless "
     "--timeout is given)."},
};

static const cli_command commands[] = {
    {"health", "[SERVICE]", "Check whether the server (or one of its services) is serving.",
     "Uses grpc.health.v1.Health. SERVICE is a full service name such as\n"
     "novacron.v1.VmService; without it the whole server is checked.\n"
     "Exit code 0 when SERVING, 3 when not, 1 when the call failed.",
     health_flags, sizeof(health_flags) / sizeof(health_flags[0]), 0, 1, cmd_health},
    {"version", NULL, "Print the versions of novactl and of the SDK (libnovacron).", NULL, NULL, 0,
     0, 0, cmd_version},
    {"help", "[COMMAND]", "Show the commands, or one command's usage.", NULL, NULL, 0, 0, 1,
     cmd_help},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static int cmd_help(cli_ctx *ctx) {
  const cli_command *target = NULL;
  if (ctx->argc == 1) {
    for (size_t i = 0; i < NCOMMANDS; i++) {
      if (strcmp(commands[i].name, ctx->argv[0]) == 0) target = &commands[i];
    }
    if (!target) return out_usage_error("help", "unknown command \"%s\"", ctx->argv[0]);
  }
  cli_print_help(ctx, target);
  return EXIT_OK;
}

int main(int argc, char **argv) {
  /* gRPC's own log lines would repeat our error messages; GRPC_VERBOSITY
   * set by the user (e.g. debug) still wins */
  setenv("GRPC_VERBOSITY", "NONE", 0);
  return cli_main(commands, NCOMMANDS, argc, argv);
}
