/*
 * cli.c - the shared frame of novactl: flag parsing (global flags anywhere,
 * a command's own flags after its name - after the subcommand in a group -,
 * --flag VALUE or --flag=VALUE, "--" ends flags, repeatable flags kept in
 * order), help text from the tables, and the client built from the global
 * flags with the credential they select (creds.c holds the file side).
 * Nothing command-specific lives here.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "creds.h"

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
    {"api-key-file", "FILE", NULL, NULL,
     "Authenticate with the API key in FILE (or its secret in $NOVACRON_API_KEY)."},
    {"credentials", "FILE", "NOVACTL_CREDENTIALS", NULL,
     "Session file written by login (default $XDG_CONFIG_HOME/novactl/credentials)."},
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

bool cli_explicit(const cli_ctx *ctx, const char *name) {
  const cli_flag *flag;
  const char *value;
  if (!lookup(ctx, name, &flag, &value)) return false;
  if (value) return true;
  const char *env = flag->env ? getenv(flag->env) : NULL;
  return env && *env;
}

const char *cli_get_nth(const cli_ctx *ctx, const char *name, size_t n) {
  for (size_t i = 0; i < ctx->noccurrences; i++) {
    if (strcmp(ctx->occurrences[i].flag->name, name) == 0 && n-- == 0)
      return ctx->occurrences[i].value;
  }
  return NULL;
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

void cli_print_help(const cli_ctx *ctx, const cli_command *group, const cli_command *command) {
  char path[sizeof(ctx->name)]; /* "vm snapshot create": the words that name the command */
  if (command == ctx->command && ctx->name[0])
    snprintf(path, sizeof(path), "%s", ctx->name);
  else if (command)
    snprintf(path, sizeof(path), "%s%s%s", group ? group->name : "", group ? " " : "",
             command->name);
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
    printf(
        "\nAuthentication: the first of --token, --api-key-file, $NOVACRON_TOKEN,\n"
        "$NOVACRON_API_KEY, else the session saved by 'novactl login' in the\n"
        "credentials file (mode 0600; its tokens are refreshed and saved again as\n"
        "they rotate). Without --target the saved session's server is used.\n");
    printf("\nExit codes: 0 ok, 1 call or connection failed, 2 usage error, 3 not serving.\n");
    return;
  }
  if (command->nsubcommands) {
    printf("Usage: %s %s COMMAND [arguments] [flags]\n\n%s\n", CLI_NAME, path, command->summary);
    if (command->details) printf("\n%s\n", command->details);
    printf("\nCommands:\n");
    for (size_t i = 0; i < command->nsubcommands; i++)
      printf("  %-13s %s\n", command->subcommands[i].name, command->subcommands[i].summary);
    printf("\nRun '%s %s COMMAND --help' for a command's flags.\n", CLI_NAME, path);
    return;
  }
  printf("Usage: %s %s%s%s [flags]\n\n%s\n", CLI_NAME, path, command->synopsis ? " " : "",
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
  const char *where = ctx->command ? ctx->name : NULL;
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
  } else if (eq) {
    *slot = eq + 1;
  } else if (*i + 1 < argc) {
    *slot = argv[++*i];
  } else {
    return out_usage_error(where, "--%s needs a value (%s)", flag->name, flag->metavar);
  }
  ctx->occurrences[ctx->noccurrences].flag = flag;
  ctx->occurrences[ctx->noccurrences].value = *slot;
  ctx->noccurrences++;
  return 0;
}

/* Checks a table (and its groups) against the fixed limits. */
static bool table_ok(const cli_command *commands, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (commands[i].nflags > CLI_MAX_FLAGS ||
        !table_ok(commands[i].subcommands, commands[i].nsubcommands)) {
      fprintf(stderr, "novactl: %s: too many flags\n", commands[i].name);
      return false;
    }
  }
  return true;
}

int cli_main(const cli_command *commands, size_t ncommands, int argc, char **argv) {
  cli_ctx ctx;
  cli_creds creds;
  bool help = false;
  bool flags_done = false;
  int rc = 0;

  memset(&ctx, 0, sizeof(ctx));
  memset(&creds, 0, sizeof(creds));
  ctx.creds = &creds;
  ctx.commands = commands;
  ctx.ncommands = ncommands;
  ctx.argv = calloc((size_t)argc + 1, sizeof(*ctx.argv));
  ctx.occurrences = calloc((size_t)argc + 1, sizeof(*ctx.occurrences));
  if (!ctx.argv || !ctx.occurrences) {
    fputs("novactl: out of memory\n", stderr);
    rc = EXIT_FAILURE_RPC;
    goto cleanup;
  }
  if (!table_ok(commands, ncommands)) {
    rc = EXIT_USAGE;
    goto cleanup;
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
      rc = out_usage_error(ctx.command ? ctx.name : NULL, "unknown flag %s", arg);
      goto cleanup;
    } else if (!ctx.command) {
      ctx.command = find_command(commands, ncommands, arg);
      if (!ctx.command) {
        rc = out_usage_error(NULL, "unknown command \"%s\"", arg);
        goto cleanup;
      }
      snprintf(ctx.name, sizeof(ctx.name), "%s", ctx.command->name);
    } else if (ctx.command->nsubcommands) {
      /* groups nest ("vm snapshot create"): descend until a command runs */
      const cli_command *sub =
          find_command(ctx.command->subcommands, ctx.command->nsubcommands, arg);
      if (!sub) {
        rc = out_usage_error(ctx.name, "unknown command \"%s %s\"", ctx.name, arg);
        goto cleanup;
      }
      ctx.group = ctx.command;
      ctx.command = sub;
      size_t used = strlen(ctx.name);
      snprintf(ctx.name + used, sizeof(ctx.name) - used, " %s", sub->name);
    } else {
      ctx.argv[ctx.argc++] = argv[i];
    }
  }
  if (help || !ctx.command || ctx.command->nsubcommands) {
    cli_print_help(&ctx, ctx.group, ctx.command);
    rc = help ? EXIT_OK : EXIT_USAGE;
    goto cleanup;
  }
  if (!out_parse_format(cli_get(&ctx, "output"), &ctx.format)) {
    rc = out_usage_error(ctx.name, "--output must be table or json, not \"%s\"",
                         cli_get(&ctx, "output"));
    goto cleanup;
  }
  if (ctx.argc < ctx.command->min_args || ctx.argc > ctx.command->max_args) {
    rc = out_usage_error(ctx.name, "expected %s%s%s", ctx.name,
                         ctx.command->synopsis ? " " : " with no arguments",
                         ctx.command->synopsis ? ctx.command->synopsis : "");
    goto cleanup;
  }
  rc = ctx.command->run(&ctx);
cleanup:
  creds_clear(&creds);
  free(ctx.occurrences);
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

/* Seconds before expiry at which a saved session is refreshed up front,
 * under the credentials file's lock (as the SDK would, but once for all
 * novactl processes sharing the file). */
#define CLI_REFRESH_MARGIN_S 60

static bool session_due(const nc_session *s) {
  int64_t now = (int64_t)time(NULL);
  if (!s->refresh_token || s->access_token_expire_time == 0) return false;
  if (s->refresh_token_expire_time != 0 && now >= s->refresh_token_expire_time) return false;
  return now >= s->access_token_expire_time - CLI_REFRESH_MARGIN_S;
}

/* Refreshes a due session with the credentials file locked: a parallel
 * novactl may have rotated the tokens already, and presenting the spent
 * refresh token would revoke the whole session. Failures are left to the
 * command's own call to report. */
static void refresh_if_due(const cli_ctx *ctx, nc_client *client) {
  cli_creds *creds = ctx->creds;
  cli_creds fresh;
  bool found = false;
  if (!session_due(&creds->session)) return;
  int lock = creds_lock(creds->path);
  memset(&fresh, 0, sizeof(fresh));
  if (creds_load(NULL, creds->path, &fresh, &found) == 0 && found && fresh.target &&
      strcmp(fresh.target, creds->target) == 0 && fresh.session.refresh_token &&
      strcmp(fresh.session.refresh_token, creds->session.refresh_token) != 0 &&
      nc_client_set_session(client, &fresh.session) == NC_OK) {
    creds_clear(creds);
    *creds = fresh; /* takes the strings */
    memset(&fresh, 0, sizeof(fresh));
  }
  creds_clear(&fresh);
  if (session_due(&creds->session)) {
    nc_error err;
    nc_client_refresh_session(client, &err); /* the callback saves the result */
  }
  creds_unlock(lock);
}

/* Reads an API key file: its first line, surrounding blanks removed. */
static int read_api_key_file(const char *cmd, const char *path, char **out) {
  char buf[4096];
  size_t len = 0;
  int rc = 0;
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return out_usage_error(cmd, "cannot read the API key file %s: %s", path, strerror(errno));
  for (;;) {
    ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      rc = out_usage_error(cmd, "cannot read the API key file %s: %s", path, strerror(errno));
      goto cleanup;
    }
    if (n == 0) break;
    len += (size_t)n;
    if (len == sizeof(buf) - 1) {
      rc = out_usage_error(cmd, "the API key file %s is too large", path);
      goto cleanup;
    }
  }
  buf[len] = '\0';
  char *start = buf + strspn(buf, " \t\r\n");
  size_t n = strcspn(start, "\r\n");
  while (n > 0 && (start[n - 1] == ' ' || start[n - 1] == '\t'))
    n--;
  start[n] = '\0';
  if (n == 0) {
    rc = out_usage_error(cmd, "the API key file %s is empty", path);
    goto cleanup;
  }
  if (!(*out = strdup(start))) rc = out_usage_error(cmd, "out of memory");
cleanup:
  explicit_bzero(buf, sizeof(buf));
  close(fd);
  return rc;
}

const char *cli_target(const cli_ctx *ctx) {
  if (!cli_explicit(ctx, "target") && ctx->creds->loaded && ctx->creds->target)
    return ctx->creds->target;
  return cli_get(ctx, "target");
}

int cli_connect(const cli_ctx *ctx, nc_client **client) {
  return cli_connect_auth(ctx, CLI_AUTH_DEFAULT, client);
}

int cli_connect_auth(const cli_ctx *ctx, cli_auth auth, nc_client **client) {
  const char *cmd = ctx->name;
  cli_creds *creds = ctx->creds;
  nc_options *opts = NULL;
  nc_error err;
  nc_status st = NC_OK;
  int rc = 0;
  bool insecure = cli_switch(ctx, "insecure");
  const char *ca = cli_get(ctx, "ca");
  const char *cert = cli_get(ctx, "cert");
  const char *key = cli_get(ctx, "key");
  const char *token = NULL;
  char *api_key = NULL;
  bool use_session = false;
  const char *server_name = cli_get(ctx, "server-name");
  int64_t timeout_ms = parse_timeout_ms(cli_get(ctx, "timeout"));
  const char *env_token = getenv("NOVACRON_TOKEN");
  const char *env_key = getenv("NOVACRON_API_KEY");
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

  /* the credential: explicit flags, then the environment, then the file */
  if (auth == CLI_AUTH_DEFAULT) {
    if (cli_given(ctx, "token")) {
      token = cli_get(ctx, "token");
    } else if (cli_given(ctx, "api-key-file")) {
      if ((rc = read_api_key_file(cmd, cli_get(ctx, "api-key-file"), &api_key)) != 0) goto cleanup;
    } else if (env_token && *env_token) {
      token = env_token;
    } else if (env_key && *env_key) {
      if (!(api_key = strdup(env_key))) {
        rc = out_usage_error(cmd, "out of memory");
        goto cleanup;
      }
    } else {
      use_session = true;
    }
  } else if (auth == CLI_AUTH_SESSION) {
    use_session = true;
  }
  if (use_session || auth == CLI_AUTH_NONE) {
    bool found = false;
    /* login only borrows the saved target: a bad file must not stop it */
    rc = creds_resolve_path(ctx, creds->path, sizeof(creds->path));
    if (rc == 0) rc = creds_load(auth == CLI_AUTH_NONE ? NULL : cmd, creds->path, creds, &found);
    if (rc != 0 && auth != CLI_AUTH_NONE) goto cleanup;
    rc = 0;
    if (auth == CLI_AUTH_NONE) use_session = false;
  }
  const char *target = auth == CLI_AUTH_SESSION && creds->loaded ? creds->target : cli_target(ctx);
  if (use_session && creds->loaded && strcmp(creds->target, target) != 0) {
    fprintf(stderr, "novactl: %s: warning: the session in %s is for %s; not sending it to %s\n",
            cmd, creds->path, creds->target, target);
    use_session = false;
  }
  if (auth == CLI_AUTH_SESSION && !creds->loaded) goto cleanup; /* no session: *client NULL */
  use_session = use_session && creds->loaded;

  snprintf(user_agent, sizeof(user_agent), "%s/%s", CLI_NAME, NC_VERSION);
  if ((st = nc_options_new(&opts)) != NC_OK ||
      (st = nc_options_set_target(opts, target)) != NC_OK ||
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
  if (api_key && nc_options_set_api_key(opts, api_key) != NC_OK) {
    rc = out_usage_error(cmd, "the API key must be printable ASCII");
    goto cleanup;
  }
  if (use_session) nc_options_set_session_callback(opts, creds_session_changed, creds);
  if ((st = nc_client_new(opts, client, &err)) != NC_OK) {
    rc = out_sdk_error(cmd, st, &err);
    goto cleanup;
  }
  if (use_session) {
    if (nc_client_set_session(*client, &creds->session) != NC_OK) {
      rc = out_usage_error(cmd, "the session in %s is unusable: run 'novactl login' again",
                           creds->path);
      nc_client_free(*client);
      *client = NULL;
      goto cleanup;
    }
    refresh_if_due(ctx, *client);
  }
cleanup:
  if (api_key) {
    explicit_bzero(api_key, strlen(api_key));
    free(api_key);
  }
  nc_options_free(opts);
  return rc;
}
