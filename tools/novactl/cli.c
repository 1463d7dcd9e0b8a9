/*
 * cli.c - the shared frame of novactl: flag parsing (global flags anywhere,
 * a command's own flags after its name, --flag VALUE or --flag=VALUE, "--"
 * ends flags), help text from the tables, and the client built from the
 * global flags. Nothing command-specific lives here.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const cli_flag global_flags[] = {
    {"target", "HOST:PORT", "NOVACRON_TARGET", "localhost:8443", "Server address."},
    {"ca", "FILE", "NOVACRON_CA", NULL,
     "PEM CA bundle that signs the server certificate (default: system roots)."},
    {"cert", "FILE", "NOVACRON_CERT", NULL, "PEM client certificate for mTLS (with --key)."},
    {"key", "FILE", "NOVACRON_KEY", NULL, "PEM private key of --cert."},
    {"server-name", "NAME", NULL, NULL, "Name to verify in the server certificate."},
    {"insecure", NULL, NULL, NULL, "Plaintext, no TLS (servers started with --insecure only)."},
    {"token", "TOKEN", "NOVACRON_TOKEN", NULL,
     "Bearer token or API key (prefer the environment: flags show in ps)."},
    {"timeout", "SECONDS", NULL, "30", "Deadline of each call; 0 means none."},
    {"output", "FORMAT", NULL, "table", "Output format: table or json."},
};
#define NGLOBAL (sizeof(global_flags) / sizeof(global_flags[0]))

_Static_assert(NGLOBAL <= CLI_MAX_FLAGS, "too many global flags");

/* Finds a flag by name in a table; -1 if absent. */
static int find_flag(const cli_flag *flags, size_t n, const char *name, size_t len) {
  for (size_t i = 0; i < n; i++) {
    if (strlen(flags[i].name) == len && strncmp(flags[i].name, name, len) == 0) return (int)i;
  }
  return -1;
}

static const cli_command *find_command(const cli_command *commands, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++) {
    if (strcmp(commands[i].name, name) == 0) return &commands[i];
  }
  return NULL;
}

/* Locates a flag's definition and value slot by name. */
static bool lookup(const cli_ctx *ctx, const char *name, const cli_flag **flag,
                   const char **value) {
  int i;
  if (ctx->command &&
      (i = find_flag(ctx->command->flags, ctx->command->nflags, name, strlen(name))) >= 0) {
    *flag = &ctx->command->flags[i];
    *value = ctx->command_values[i];
    return true;
  }
  if ((i = find_flag(global_flags, NGLOBAL, name, strlen(name))) >= 0) {
    *flag = &global_flags[i];
    *value = ctx->global_values[i];
    return true;
  }
  return false;
}

const char *cli_get(const cli_ctx *ctx, const char *name) {
  const cli_flag *flag;
  const char *value;
  if (!lookup(ctx, name, &flag, &value)) return NULL;
  if (value) return value;
  if (flag->env) {
    const char *env = getenv(flag->env);
    if (env && *env) return env;
  }
  return flag->def;
}

bool cli_given(const cli_ctx *ctx, const char *name) {
  const cli_flag *flag;
  const char *value;
  return lookup(ctx, name, &flag, &value) && value != NULL;
}

bool cli_switch(const cli_ctx *ctx, const char *name) { return cli_get(ctx, name) != NULL; }

static void print_flags(const cli_flag *flags, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char left[64];
    snprintf(left, sizeof(left), "--%s%s%s", flags[i].name, flags[i].metavar ? " " : "",
             flags[i].metavar ? flags[i].metavar : "");
    printf("  %-22s %s", left, flags[i].help);
    if (flags[i].env) printf(" [$%s]", flags[i].env);
    if (flags[i].def) printf(" (default %s)", flags[i].def);
    putchar('\n');
  }
}

void cli_print_help(const cli_ctx *ctx, const cli_command *command) {
  if (!command) {
    printf(
        "Usage: %s [flags] COMMAND [arguments] [flags]\n\n"
        "Command-line client of the NovaCron control plane.\n\nCommands:\n",
        CLI_NAME);
    for (size_t i = 0; i < ctx->ncommands; i++)
      printf("  %-10s %s\n", ctx->commands[i].name, ctx->commands[i].summary);
    printf("\nGlobal flags (accepted by every command):\n");
    print_flags(global_flags, NGLOBAL);
    printf("  %-22s %s\n", "--help", "Show help (also: novactl COMMAND --help).");
    printf("\nExit codes: 0 ok, 1 call or connection failed, 2 usage error, 3 not serving.\n");
    return;
  }
  printf("Usage: %s %s%s%s [flags]\n\n%s\n", CLI_NAME, command->name, command->synopsis ? " " : "",
         command->synopsis ? command->synopsis : "", command->summary);
  if (command->details) printf("\n%s\n", command->details);
  if (command->nflags) {
    printf("\nFlags:\n");
    print_flags(command->flags, command->nflags);
  }
  printf("\nGlobal flags:\n");
  print_flags(global_flags, NGLOBAL);
}

/* Parses one "--name[=value]" at argv[*i]; may consume the next argument. */
static int parse_flag(cli_ctx *ctx, int argc, char **argv, int *i) {
  const char *arg = argv[*i] + 2;
  const char *eq = strchr(arg, '=');
  size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
  const char *where = ctx->command ? ctx->command->name : NULL;
  const cli_flag *flag = NULL;
  const char **slot = NULL;
  int k;

  if (ctx->command && (k = find_flag(ctx->command->flags, ctx->command->nflags, arg, len)) >= 0) {
    flag = &ctx->command->flags[k];
    slot = &ctx->command_values[k];
  } else if ((k = find_flag(global_flags, NGLOBAL, arg, len)) >= 0) {
    flag = &global_flags[k];
    slot = &ctx->global_values[k];
  } else {
    return out_usage_error(where, "unknown flag --%.*s", (int)len, arg);
  }
  if (!flag->metavar) {
    if (eq) return out_usage_error(where, "--%s takes no value", flag->name);
    *slot = "true";
    return 0;
  }
  if (eq) {
    *slot = eq + 1;
  } else if (*i + 1 < argc) {
    *slot = argv[++*i];
  } else {
    return out_usage_error(where, "--%s needs a value (%s)", flag->name, flag->metavar);
  }
  return 0;
}

int cli_main(const cli_command *commands, size_t ncommands, int argc, char **argv) {
  cli_ctx ctx;
  bool help = false;
  bool flags_done = false;
  int rc = 0;

  memset(&ctx, 0, sizeof(ctx));
  ctx.commands = commands;
  ctx.ncommands = ncommands;
  ctx.argv = calloc((size_t)argc + 1, sizeof(*ctx.argv));
  if (!ctx.argv) {
    fputs("novactl: out of memory\n", stderr);
    return EXIT_FAILURE_RPC;
  }
  for (size_t i = 0; i < ncommands; i++) {
    if (commands[i].nflags > CLI_MAX_FLAGS) {
      fprintf(stderr, "novactl: %s: too many flags\n", commands[i].name);
      rc = EXIT_USAGE;
      goto cleanup;
    }
  }
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (!flags_done && strcmp(arg, "--") == 0) {
      flags_done = true;
    } else if (!flags_done && (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)) {
      help = true;
    } else if (!flags_done && strncmp(arg, "--", 2) == 0) {
      if ((rc = parse_flag(&ctx, argc, argv, &i)) != 0) goto cleanup;
    } else if (!flags_done && arg[0] == '-' && arg[1] != '\0') {
      rc = out_usage_error(ctx.command ? ctx.command->name : NULL, "unknown flag %s", arg);
      goto cleanup;
    } else if (!ctx.command) {
      ctx.command = find_command(commands, ncommands, arg);
      if (!ctx.command) {
        rc = out_usage_error(NULL, "unknown command \"%s\"", arg);
        goto cleanup;
      }
    } else {
      ctx.argv[ctx.argc++] = argv[i];
    }
  }
  if (help || !ctx.command) {
    cli_print_help(&ctx, ctx.command);
    rc = help ? EXIT_OK : EXIT_USAGE;
    goto cleanup;
  }
  if (!out_parse_format(cli_get(&ctx, "output"), &ctx.format)) {
    rc = out_usage_error(ctx.command->name, "--output must be table or json, not \"%s\"",
                         cli_get(&ctx, "output"));
    goto cleanup;
  }
  if (ctx.argc < ctx.command->min_args || ctx.argc > ctx.command->max_args) {
    rc = out_usage_error(ctx.command->name, "expected %s%s%s", ctx.command->name,
                         ctx.command->synopsis ? " " : " with no arguments",
                         ctx.command->synopsis ? ctx.command->synopsis : "");
    goto cleanup;
  }
  rc = ctx.command->run(&ctx);
cleanup:
  free(ctx.argv);
  return rc;
}

/* --timeout in seconds (fractions allowed) -> milliseconds; -1 if bad. */
static int64_t parse_timeout_ms(const char *text) {
  char *end = NULL;
  double seconds = strtod(text, &end);
  if (end == text || *end != '\0' || !isfinite(seconds) || seconds < 0 || seconds > 1e8) return -1;
  return (int64_t)llround(seconds * 1000.0);
}

int cli_connect(const cli_ctx *ctx, nc_client **client) {
  const char *cmd = ctx->command->name;
  nc_options *opts = NULL;
  nc_error err;
  nc_status st = NC_OK;
  int rc = 0;
  bool insecure = cli_switch(ctx, "insecure");
  const char *ca = cli_get(ctx, "ca");
  const char *cert = cli_get(ctx, "cert");
  const char *key = cli_get(ctx, "key");
  const char *token = cli_get(ctx, "token");
  const char *server_name = cli_get(ctx, "server-name");
  int64_t timeout_ms = parse_timeout_ms(cli_get(ctx, "timeout"));
  char user_agent[64];

  *client = NULL;
  if (timeout_ms < 0) {
    rc = out_usage_error(cmd, "--timeout must be a number of seconds >= 0, not \"%s\"",
                         cli_get(ctx, "timeout"));
    goto cleanup;
  }
  if (insecure) {
    /* TLS settings from the environment do not apply to a plaintext call;
     * the same settings given as flags contradict --insecure */
    if (cli_given(ctx, "ca") || cli_given(ctx, "cert") || cli_given(ctx, "key") || server_name) {
      rc = out_usage_error(cmd, "--insecure contradicts --ca/--cert/--key/--server-name");
      goto cleanup;
    }
    ca = cert = key = NULL;
  }
  if (!cert != !key) {
    rc = out_usage_error(cmd, "--cert and --key go together");
    goto cleanup;
  }
  snprintf(user_agent, sizeof(user_agent), "%s/%s", CLI_NAME, NC_VERSION);
  if ((st = nc_options_new(&opts)) != NC_OK ||
      (st = nc_options_set_target(opts, cli_get(ctx, "target"))) != NC_OK ||
      (st = nc_options_set_insecure(opts, insecure)) != NC_OK ||
      (st = nc_options_set_default_deadline_ms(opts, timeout_ms)) != NC_OK ||
      (st = nc_options_set_user_agent(opts, user_agent)) != NC_OK) {
    rc = out_usage_error(cmd, "bad connection settings: %s", nc_strerror(st));
    goto cleanup;
  }
  if (ca && nc_options_set_tls_ca_file(opts, ca) != NC_OK) {
    rc = out_usage_error(cmd, "bad --ca");
    goto cleanup;
  }
  if (cert && nc_options_set_tls_client_cert(opts, cert, key) != NC_OK) {
    rc = out_usage_error(cmd, "bad --cert/--key");
    goto cleanup;
  }
  if (server_name && nc_options_set_tls_server_name(opts, server_name) != NC_OK) {
    rc = out_usage_error(cmd, "bad --server-name");
    goto cleanup;
  }
  if (token && nc_options_set_bearer_token(opts, token) != NC_OK) {
    rc = out_usage_error(cmd, "the token must be printable ASCII");
    goto cleanup;
  }
  if ((st = nc_client_new(opts, client, &err)) != NC_OK) rc = out_sdk_error(cmd, st, &err);
cleanup:
  nc_options_free(opts);
  return rc;
}
