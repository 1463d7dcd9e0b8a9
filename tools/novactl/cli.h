/*
 * cli.h - the frame every novactl command plugs into: a command is a row
 * (name, synopsis, summary, its own flags, handler) in main.c's table, and
 * the shared code parses global and command flags, prints help, and turns
 * the global flags into an nc_client. Handlers hold only their command's
 * logic. novactl uses the public SDK (include/novacron) and nothing else.
 */
#ifndef NOVACTL_CLI_H
#define NOVACTL_CLI_H

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

typedef struct cli_command {
  const char *name;
  const char *synopsis; /* positional arguments, e.g. "[SERVICE]" */
  const char *summary;  /* one line for the command list */
  const char *details;  /* paragraph for "novactl CMD --help", or NULL */
  const cli_flag *flags;
  size_t nflags;
  int min_args;
  int max_args;
  int (*run)(cli_ctx *ctx); /* returns the exit code */
} cli_command;

struct cli_ctx {
  const cli_command *command;
  const cli_command *commands; /* the whole table, for help */
  size_t ncommands;
  const char *global_values[CLI_MAX_FLAGS]; /* as given on the command line */
  const char *command_values[CLI_MAX_FLAGS];
  int argc; /* positional arguments after the command name */
  char **argv;
  out_format format;
};

/* Parses argv into ctx; runs the command (or help) and returns the exit
 * code. */
int cli_main(const cli_command *commands, size_t ncommands, int argc, char **argv);

/* A flag's value: the command line, else its environment variable, else
 * its default; NULL when none. Global and command flags alike. */
const char *cli_get(const cli_ctx *ctx, const char *name);
/* True when the flag was given on the command line. */
bool cli_given(const cli_ctx *ctx, const char *name);
/* A switch's value. */
bool cli_switch(const cli_ctx *ctx, const char *name);

/* Builds a client from the global flags. On failure prints the error and
 * returns the exit code; 0 on success. */
int cli_connect(const cli_ctx *ctx, nc_client **client);

/* Prints help: the command list (command NULL) or one command's usage. */
void cli_print_help(const cli_ctx *ctx, const cli_command *command);

/* Handlers (one file per command group). */
int cmd_health(cli_ctx *ctx);
int cmd_version(cli_ctx *ctx);

#endif
