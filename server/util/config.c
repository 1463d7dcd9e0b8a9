/*
 * config.c - see config.h. Values are kept as strings and validated when
 * they are set, so accessors never fail on user input.
 */
#include "util/config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct nc_cfg_value {
  char *text; /* NULL = unset */
  nc_cfg_source source;
  long long ival;
  bool bval;
} nc_cfg_value;

struct nc_cfg {
  const nc_cfg_setting *defs;
  size_t ndefs;
  nc_cfg_value *values;
  char **args;
  int nargs;
};

static void seterr(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *errbuf, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errbuf, errlen, fmt, ap);
  va_end(ap);
}

void nc_cfg_env_name(const char *name, char *buf, size_t len) {
  size_t o = 0;
  const char prefix[] = "NOVACRON_";
  for (size_t i = 0; prefix[i] && o + 1 < len; i++)
    buf[o++] = prefix[i];
  for (const char *p = name; *p && o + 1 < len; p++)
    buf[o++] = (*p == '-') ? '_' : (char)toupper((unsigned char)*p);
  if (len) buf[o] = '\0';
}

static long find_def(const nc_cfg_setting *defs, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++) {
    if (strcmp(defs[i].name, name) == 0) return (long)i;
  }
  return -1;
}

/* Accepts '_' for '-' so file keys may be written either way. */
static long find_def_loose(const nc_cfg_setting *defs, size_t n, const char *key) {
  char norm[128];
  size_t len = strlen(key);
  if (len >= sizeof(norm)) return -1;
  for (size_t i = 0; i <= len; i++)
    norm[i] = key[i] == '_' ? '-' : key[i];
  return find_def(defs, n, norm);
}

static bool parse_bool(const char *s, bool *out) {
  static const char *const yes[] = {"1", "true", "yes", "on"};
  static const char *const no[] = {"0", "false", "no", "off"};
  for (size_t i = 0; i < 4; i++) {
    if (strcasecmp(s, yes[i]) == 0) {
      *out = true;
      return true;
    }
    if (strcasecmp(s, no[i]) == 0) {
      *out = false;
      return true;
    }
  }
  return false;
}

static bool in_choices(const char *choices, const char *s) {
  size_t len = strlen(s);
  const char *p = choices;
  while (*p) {
    const char *bar = strchr(p, '|');
    size_t n = bar ? (size_t)(bar - p) : strlen(p);
    if (n == len && strncmp(p, s, n) == 0) return true;
    if (!bar) break;
    p = bar + 1;
  }
  return false;
}

/* Validates and stores `text` for setting i. `where` names the source for
 * error messages ("flag --x", "NOVACRON_X", "file.conf:12"). */
static bool set_value(nc_cfg *cfg, size_t i, const char *text, nc_cfg_source src, const char *where,
                      char *errbuf, size_t errlen) {
  const nc_cfg_setting *d = &cfg->defs[i];
  nc_cfg_value *v = &cfg->values[i];
  long long ival = 0;
  bool bval = false;
  switch (d->type) {
  case NC_CFG_INT: {
    char *end = NULL;
    errno = 0;
    ival = strtoll(text, &end, 10);
    if (errno || end == text || *end != '\0') {
      seterr(errbuf, errlen, "%s: \"%s\" is not an integer", where, text);
      return false;
    }
    if (ival < d->min || ival > d->max) {
      seterr(errbuf, errlen, "%s: %lld is out of range [%lld, %lld]", where, ival, d->min, d->max);
      return false;
    }
    break;
  }
  case NC_CFG_BOOL:
    if (!parse_bool(text, &bval)) {
      seterr(errbuf, errlen, "%s: \"%s\" is not a boolean (true/false)", where, text);
      return false;
    }
    break;
  case NC_CFG_STRING:
    if (d->choices && !in_choices(d->choices, text)) {
      seterr(errbuf, errlen, "%s: \"%s\" is not one of %s", where, text, d->choices);
      return false;
    }
    break;
  }
  char *copy = strdup(text);
  if (!copy) {
    seterr(errbuf, errlen, "out of memory");
    return false;
  }
  free(v->text);
  v->text = copy;
  v->source = src;
  v->ival = ival;
  v->bval = bval;
  return true;
}

typedef struct file_ctx {
  nc_cfg *cfg;
  char msg[512]; /* what was wrong; the caller adds file and line */
  bool failed;
} file_ctx;

/* libinih calls this per key; returning 0 stops with that line's number. */
static int on_ini_line(void *user, const char *section, const char *name, const char *value) {
  file_ctx *fc = user;
  if (section && section[0]) {
    seterr(fc->msg, sizeof(fc->msg), "sections are not used ([%s])", section);
    fc->failed = true;
    return 0;
  }
  long i = find_def_loose(fc->cfg->defs, fc->cfg->ndefs, name);
  if (i < 0 || strcmp(name, "config") == 0) {
    seterr(fc->msg, sizeof(fc->msg), "unknown setting \"%s\"", name);
    fc->failed = true;
    return 0;
  }
  char where[160];
  snprintf(where, sizeof(where), "key %s", name);
  if (!set_value(fc->cfg, (size_t)i, value, NC_CFG_FROM_FILE, where, fc->msg, sizeof(fc->msg))) {
    fc->failed = true;
    return 0;
  }
  return 1;
}

static const char *env_lookup(char **environ_, const char *var) {
  size_t n = strlen(var);
  for (char **e = environ_; e && *e; e++) {
    if (strncmp(*e, var, n) == 0 && (*e)[n] == '=') return *e + n + 1;
  }
  return NULL;
}

static int opt_index_base(void) { return 256; }

nc_cfg_result nc_cfg_load(const nc_cfg_setting *defs, size_t ndefs, int argc, char **argv,
                          char **environ_, nc_cfg **out, char *errbuf, size_t errlen) {
  *out = NULL;
  nc_cfg_result result = NC_CFG_ERROR;
  struct option *opts = NULL;
  nc_cfg *cfg = calloc(1, sizeof(*cfg));
  if (!cfg) goto cleanup;
  cfg->defs = defs;
  cfg->ndefs = ndefs;
  cfg->values = calloc(ndefs ? ndefs : 1, sizeof(*cfg->values));
  opts = calloc(ndefs + 3, sizeof(*opts));
  if (!cfg->values || !opts) {
    seterr(errbuf, errlen, "out of memory");
    goto cleanup;
  }

  /* 1. defaults */
  for (size_t i = 0; i < ndefs; i++) {
    if (defs[i].default_value && !set_value(cfg, i, defs[i].default_value, NC_CFG_FROM_DEFAULT,
                                            defs[i].name, errbuf, errlen))
      goto cleanup;
  }

  /* 2. parse flags into a side table first: --config must be known before
   *    the file is read, and flags must win over the file. */
  size_t k = 0;
  for (size_t i = 0; i < ndefs; i++) {
    opts[k].name = defs[i].name;
    opts[k].has_arg = defs[i].type == NC_CFG_BOOL ? optional_argument : required_argument;
    opts[k].flag = NULL;
    opts[k].val = opt_index_base() + (int)i;
    k++;
  }
  opts[k++] = (struct option){"help", no_argument, NULL, 'h'};
  opts[k++] = (struct option){"version", no_argument, NULL, 'V'};
  opts[k] = (struct option){0};

  const char **flagvals = calloc(ndefs ? ndefs : 1, sizeof(*flagvals));
  if (!flagvals) {
    seterr(errbuf, errlen, "out of memory");
    goto cleanup;
  }
  optind = 0; /* full reinitialisation (GNU) so repeated calls work */
  opterr = 0;
  for (;;) {
    int longidx = -1;
    int c = getopt_long(argc, argv, "+hV", opts, &longidx);
    if (c == -1) break;
    if (c == 'h') {
      result = NC_CFG_HELP;
      free(flagvals);
      goto cleanup_keep_err;
    }
    if (c == 'V') {
      result = NC_CFG_VERSION;
      free(flagvals);
      goto cleanup_keep_err;
    }
    if (c == '?' || c == ':') {
      const char *bad = argv[optind - 1] ? argv[optind - 1] : "?";
      if (c == ':' || (optopt && optopt >= opt_index_base()))
        seterr(errbuf, errlen, "flag %s needs a value", bad);
      else
        seterr(errbuf, errlen, "unknown flag %s (see --help)", bad);
      free(flagvals);
      goto cleanup;
    }
    size_t i = (size_t)(c - opt_index_base());
    flagvals[i] = optarg ? optarg : (defs[i].type == NC_CFG_BOOL ? "true" : "");
  }

  /* 3. config file */
  long cfg_idx = find_def(defs, ndefs, "config");
  const char *path = NULL;
  if (cfg_idx >= 0) {
    char var[128];
    nc_cfg_env_name("config", var, sizeof(var));
    path = flagvals[cfg_idx] ? flagvals[cfg_idx] : env_lookup(environ_, var);
    if (!path) path = cfg->values[cfg_idx].text;
  }
  if (path && path[0]) {
    FILE *fp = fopen(path, "r");
    if (!fp) {
      seterr(errbuf, errlen, "config file %s: %s", path, strerror(errno));
      free(flagvals);
      goto cleanup;
    }
    file_ctx fc = {.cfg = cfg, .failed = false};
    int rc = ini_parse_file(fp, on_ini_line, &fc);
    fclose(fp);
    if (fc.failed) {
      seterr(errbuf, errlen, "%s:%d: %s", path, rc, fc.msg);
      free(flagvals);
      goto cleanup;
    }
    if (rc != 0) {
      seterr(errbuf, errlen, "%s:%d: syntax error (expected key = value)", path, rc);
      free(flagvals);
      goto cleanup;
    }
  }

  /* 4. environment, then 5. flags */
  for (size_t i = 0; i < ndefs; i++) {
    char var[128];
    nc_cfg_env_name(defs[i].name, var, sizeof(var));
    const char *ev = env_lookup(environ_, var);
    if (ev && !set_value(cfg, i, ev, NC_CFG_FROM_ENV, var, errbuf, errlen)) {
      free(flagvals);
      goto cleanup;
    }
  }
  for (size_t i = 0; i < ndefs; i++) {
    if (!flagvals[i]) continue;
    char where[160];
    snprintf(where, sizeof(where), "flag --%s", defs[i].name);
    if (!set_value(cfg, i, flagvals[i], NC_CFG_FROM_FLAG, where, errbuf, errlen)) {
      free(flagvals);
      goto cleanup;
    }
  }
  free(flagvals);

  cfg->nargs = argc - optind;
  if (cfg->nargs > 0) {
    cfg->args = calloc((size_t)cfg->nargs, sizeof(char *));
    if (!cfg->args) goto cleanup;
    for (int i = 0; i < cfg->nargs; i++)
      cfg->args[i] = argv[optind + i];
  }
  free(opts);
  *out = cfg;
  return NC_CFG_OK;

cleanup:
  if (result != NC_CFG_ERROR) result = NC_CFG_ERROR;
cleanup_keep_err:
  free(opts);
  nc_cfg_free(cfg);
  return result;
}

void nc_cfg_free(nc_cfg *cfg) {
  if (!cfg) return;
  for (size_t i = 0; cfg->values && i < cfg->ndefs; i++)
    free(cfg->values[i].text);
  free(cfg->values);
  free(cfg->args);
  free(cfg);
}

static const nc_cfg_value *lookup(const nc_cfg *cfg, const char *name, nc_cfg_type type) {
  long i = find_def(cfg->defs, cfg->ndefs, name);
  if (i < 0 || cfg->defs[i].type != type) {
    fprintf(stderr, "config: no %s setting named \"%s\"\n",
            type == NC_CFG_INT    ? "int"
            : type == NC_CFG_BOOL ? "bool"
                                  : "string",
            name);
    abort();
  }
  return &cfg->values[i];
}

const char *nc_cfg_str(const nc_cfg *cfg, const char *name) {
  const nc_cfg_value *v = lookup(cfg, name, NC_CFG_STRING);
  return v->text && v->text[0] ? v->text : NULL;
}

long long nc_cfg_int(const nc_cfg *cfg, const char *name) {
  return lookup(cfg, name, NC_CFG_INT)->ival;
}

bool nc_cfg_bool(const nc_cfg *cfg, const char *name) {
  return lookup(cfg, name, NC_CFG_BOOL)->bval;
}

nc_cfg_source nc_cfg_source_of(const nc_cfg *cfg, const char *name) {
  long i = find_def(cfg->defs, cfg->ndefs, name);
  if (i < 0) abort();
  return cfg->values[i].source;
}

int nc_cfg_argc(const nc_cfg *cfg) { return cfg->nargs; }

const char *nc_cfg_arg(const nc_cfg *cfg, int i) {
  return (i >= 0 && i < cfg->nargs) ? cfg->args[i] : NULL;
}

void nc_cfg_print_help(FILE *fp, const nc_cfg_setting *defs, size_t ndefs, const char *prog,
                       const char *summary) {
  fprintf(fp, "Usage: %s [FLAGS]\n\n%s\n\n", prog, summary);
  fprintf(fp,
          "Every setting is a flag, an environment variable and a config file key;\n"
          "flags override the environment, which overrides the config file.\n\n");
  for (size_t i = 0; i < ndefs; i++) {
    const nc_cfg_setting *d = &defs[i];
    char var[128];
    nc_cfg_env_name(d->name, var, sizeof(var));
    const char *arg = d->type == NC_CFG_BOOL ? "[=BOOL]" : d->type == NC_CFG_INT ? " N" : " VALUE";
    fprintf(fp, "  --%s%s\n      %s\n      env %s", d->name, arg, d->help, var);
    if (d->default_value && d->default_value[0])
      fprintf(fp, "; default %s", d->default_value);
    else
      fprintf(fp, "; default unset");
    if (d->type == NC_CFG_INT) fprintf(fp, "; range %lld..%lld", d->min, d->max);
    if (d->choices) fprintf(fp, "; one of %s", d->choices);
    fputc('\n', fp);
  }
  fprintf(fp,
          "  --help\n      Print this help and exit.\n  --version\n      Print the version and "
          "exit.\n");
}
