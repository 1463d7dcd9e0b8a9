/*
 * config.h - layered configuration: command-line flags override NOVACRON_*
 * environment variables, which override a key = value config file, which
 * overrides built-in defaults.
 *
 * The set of settings is a caller-supplied table, so this module knows
 * nothing about the server. A setting named "tls-cert" is the flag
 * --tls-cert, the variable NOVACRON_TLS_CERT and the file key tls-cert (or
 * tls_cert). The file is INI syntax parsed by libinih, without sections.
 */
#ifndef NC_UTIL_CONFIG_H
#define NC_UTIL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum nc_cfg_type {
  NC_CFG_STRING,
  NC_CFG_INT,
  NC_CFG_BOOL,
} nc_cfg_type;

/* Where a value came from, lowest precedence first. */
typedef enum nc_cfg_source {
  NC_CFG_FROM_DEFAULT,
  NC_CFG_FROM_FILE,
  NC_CFG_FROM_ENV,
  NC_CFG_FROM_FLAG,
} nc_cfg_source;

typedef struct nc_cfg_setting {
  const char *name; /* lower-case words joined by '-' */
  nc_cfg_type type;
  const char *default_value; /* textual default, NULL for "unset" */
  long long min, max;        /* inclusive bounds for NC_CFG_INT */
  const char *help;          /* one line for --help */
  const char *choices;       /* optional "a|b|c" list of allowed strings */
} nc_cfg_setting;

typedef struct nc_cfg nc_cfg;

typedef enum nc_cfg_result {
  NC_CFG_OK = 0,
  NC_CFG_HELP,    /* --help was given */
  NC_CFG_VERSION, /* --version was given */
  NC_CFG_ERROR,   /* message in errbuf */
} nc_cfg_result;

/*
 * Resolves every setting. The file named by --config / NOVACRON_CONFIG (the
 * reserved setting "config") is read when given. `environ_` is a
 * NULL-terminated "NAME=value" array (pass `environ`). On NC_CFG_ERROR a
 * human message naming the offending flag, variable or file line is in
 * `errbuf` and *out is NULL.
 */
nc_cfg_result nc_cfg_load(const nc_cfg_setting *defs, size_t ndefs, int argc, char **argv,
                          char **environ_, nc_cfg **out, char *errbuf, size_t errlen);
void nc_cfg_free(nc_cfg *cfg);

/* Accessors abort() on a name that is not in the table (a programming error). */
const char *nc_cfg_str(const nc_cfg *cfg, const char *name); /* NULL when unset */
long long nc_cfg_int(const nc_cfg *cfg, const char *name);
bool nc_cfg_bool(const nc_cfg *cfg, const char *name);
nc_cfg_source nc_cfg_source_of(const nc_cfg *cfg, const char *name);
/* Positional arguments left after the flags. */
int nc_cfg_argc(const nc_cfg *cfg);
const char *nc_cfg_arg(const nc_cfg *cfg, int i);

/* Writes the --help text: usage line, then every setting with its flag,
 * variable, default and help. */
void nc_cfg_print_help(FILE *fp, const nc_cfg_setting *defs, size_t ndefs, const char *prog,
                       const char *summary);

/* "tls-cert" -> "NOVACRON_TLS_CERT" into buf. */
void nc_cfg_env_name(const char *name, char *buf, size_t len);

#endif
