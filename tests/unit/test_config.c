/* test_config.c - layered configuration: precedence, validation, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/config.h"

static const nc_cfg_setting defs[] = {
    {"config", NC_CFG_STRING, NULL, 0, 0, "config file", NULL},
    {"listen", NC_CFG_STRING, "0.0.0.0:8443", 0, 0, "listen address", NULL},
    {"workers", NC_CFG_INT, "16", 1, 1024, "workers", NULL},
    {"insecure", NC_CFG_BOOL, "false", 0, 0, "plaintext", NULL},
    {"log-level", NC_CFG_STRING, "info", 0, 0, "level", "debug|info|warn|error"},
    {"tls-cert", NC_CFG_STRING, NULL, 0, 0, "cert", NULL},
};
#define NDEFS (sizeof(defs) / sizeof(defs[0]))

static nc_cfg_result load(char **argv, char **env, nc_cfg **out, char *err) {
  int argc = 0;
  while (argv[argc])
    argc++;
  return nc_cfg_load(defs, NDEFS, argc, argv, env, out, err, 512);
}

static char *write_file(const char *text) {
  char *path = strdup("/tmp/nc-test-config-XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  return path;
}

static void defaults_apply(void **state) {
  char *argv[] = {"prog", NULL};
  char *env[] = {NULL};
  nc_cfg *cfg;
  char err[512];
  assert_int_equal(load(argv, env, &cfg, err), NC_CFG_OK);
  assert_string_equal(nc_cfg_str(cfg, "listen"), "0.0.0.0:8443");
  assert_int_equal(nc_cfg_int(cfg, "workers"), 16);
  assert_false(nc_cfg_bool(cfg, "insecure"));
  assert_null(nc_cfg_str(cfg, "tls-cert"));
  assert_int_equal(nc_cfg_source_of(cfg, "workers"), NC_CFG_FROM_DEFAULT);
  nc_cfg_free(cfg);
}

static void flags_override_env_override_file(void **state) {
  char *path = write_file(
      "# comment\nlisten = 10.0.0.1:1\nworkers = 3\ntls_cert = /f/cert\n"
      "log-level = debug\n");
  char cfgenv[300];
  snprintf(cfgenv, sizeof(cfgenv), "NOVACRON_CONFIG=%s", path);
  char *argv[] = {"prog", "--workers", "7", NULL};
  char *env[] = {cfgenv, "NOVACRON_WORKERS=5", "NOVACRON_LISTEN=10.0.0.2:2", NULL};
  nc_cfg *cfg;
  char err[512];
  assert_int_equal(load(argv, env, &cfg, err), NC_CFG_OK);
  assert_int_equal(nc_cfg_int(cfg, "workers"), 7);
  assert_int_equal(nc_cfg_source_of(cfg, "workers"), NC_CFG_FROM_FLAG);
  assert_string_equal(nc_cfg_str(cfg, "listen"), "10.0.0.2:2");
  assert_int_equal(nc_cfg_source_of(cfg, "listen"), NC_CFG_FROM_ENV);
  assert_string_equal(nc_cfg_str(cfg, "tls-cert"), "/f/cert");
  assert_int_equal(nc_cfg_source_of(cfg, "tls-cert"), NC_CFG_FROM_FILE);
  assert_string_equal(nc_cfg_str(cfg, "log-level"), "debug");
  nc_cfg_free(cfg);
  unlink(path);
  free(path);
}

static void config_flag_beats_env_for_the_file(void **state) {
  char *a = write_file("workers = 11\n");
  char *b = write_file("workers = 12\n");
  char flag[300], envv[300];
  snprintf(flag, sizeof(flag), "--config=%s", a);
  snprintf(envv, sizeof(envv), "NOVACRON_CONFIG=%s", b);
  char *argv[] = {"prog", flag, NULL};
  char *env[] = {envv, NULL};
  nc_cfg *cfg;
  char err[512];
  assert_int_equal(load(argv, env, &cfg, err), NC_CFG_OK);
  assert_int_equal(nc_cfg_int(cfg, "workers"), 11);
  nc_cfg_free(cfg);
  unlink(a);
  unlink(b);
  free(a);
  free(b);
}

static void bool_flags(void **state) {
  char *argv[] = {"prog", "--insecure", NULL};
  char *env[] = {NULL};
  nc_cfg *cfg;
  char err[512];
  assert_int_equal(load(argv, env, &cfg, err), NC_CFG_OK);
  assert_true(nc_cfg_bool(cfg, "insecure"));
  nc_cfg_free(cfg);
  char *argv2[] = {"prog", "--insecure=false", NULL};
  char *env2[] = {"NOVACRON_INSECURE=yes", NULL};
  assert_int_equal(load(argv2, env2, &cfg, err), NC_CFG_OK);
  assert_false(nc_cfg_bool(cfg, "insecure"));
  nc_cfg_free(cfg);
  char *argv3[] = {"prog", "--insecure=maybe", NULL};
  assert_int_equal(load(argv3, env, &cfg, err), NC_CFG_ERROR);
  assert_null(cfg);
  assert_non_null(strstr(err, "--insecure"));
  assert_non_null(strstr(err, "maybe"));
}

static void bad_values_name_their_source(void **state) {
  nc_cfg *cfg;
  char err[512];
  char *env[] = {NULL};
  char *a1[] = {"prog", "--workers", "12x", NULL};
  assert_int_equal(load(a1, env, &cfg, err), NC_CFG_ERROR);
  assert_non_null(strstr(err, "--workers"));
  assert_non_null(strstr(err, "not an integer"));
  char *a2[] = {"prog", "--workers=0", NULL};
  assert_int_equal(load(a2, env, &cfg, err), NC_CFG_ERROR);
  assert_non_null(strstr(err, "out of range"));
  char *a3[] = {"prog", NULL};
  char *e3[] = {"NOVACRON_LOG_LEVEL=loud", NULL};
  assert_int_equal(load(a3, e3, &cfg, err), NC_CFG_ERROR);
  assert_non_null(strstr(err, "NOVACRON_LOG_LEVEL"));
  assert_non_null(strstr(err, "debug|info|warn|error"));
  char *a4[] = {"prog", "--no-such-flag", NULL};
  assert_int_equal(load(a4, env, &cfg, err), NC_CFG_ERROR);
  assert_non_null(strstr(err, "unknown flag --no-such-flag"));
  char *a5[] = {"prog", "--workers", NULL};
  assert_int_equal(load(a5, env, &cfg, err), NC_CFG_ERROR);
  assert_non_null(strstr(err, "needs a value"));
}

static void file_errors_carry_the_line(void **state) {
  nc_cfg *cfg;
  char err[512];
  char *env[] = {NULL};
  char *path = write_file("listen = a:1\n\nbogus = 1\n");
  char flag[300];
  snprintf(flag, sizeof(flag), "--config=%s", path);
  char *argv[] = {"prog", flag, NULL};
  assert_int_equal(load(argv, env, &cfg, err), NC_CFG_ERROR);
  char want[400];
  snprintf(want, sizeof(want), "%s:3: unknown setting \"bogus\"", path);
  assert_string_equal(err, want);
  unlink(path);
  free(path);

  path = write_file("workers = lots\n");
  snprintf(flag, sizeof(flag), "--config=%s", path);
  char *argv2[] = {"prog", flag, NULL};
  assert_int_equal(load(argv2, env, &cfg, err), NC_CFG_ERROR);
  assert_non_null(strstr(err, ":1: key workers"));
  unlink(path);
  free(path);

  char *argv3[] = {"prog", "--config=/nonexistent/nc.conf", NULL};
  assert_int_equal(load(argv3, env, &cfg, err), NC_CFG_ERROR);
  assert_non_null(strstr(err, "/nonexistent/nc.conf"));
}

static void help_and_version(void **state) {
  nc_cfg *cfg;
  char err[512];
  char *env[] = {NULL};
  char *a1[] = {"prog", "--help", NULL};
  assert_int_equal(load(a1, env, &cfg, err), NC_CFG_HELP);
  char *a2[] = {"prog", "--version", NULL};
  assert_int_equal(load(a2, env, &cfg, err), NC_CFG_VERSION);
  char *buf = NULL;
  size_t len = 0;
  FILE *fp = open_memstream(&buf, &len);
  nc_cfg_print_help(fp, defs, NDEFS, "prog", "summary");
  fclose(fp);
  for (size_t i = 0; i < NDEFS; i++) {
    char flag[64], var[64];
    snprintf(flag, sizeof(flag), "--%s", defs[i].name);
    nc_cfg_env_name(defs[i].name, var, sizeof(var));
    assert_non_null(strstr(buf, flag));
    assert_non_null(strstr(buf, var));
  }
  assert_non_null(strstr(buf, "default 0.0.0.0:8443"));
  assert_non_null(strstr(buf, "range 1..1024"));
  free(buf);
}

static void positional_arguments_are_kept(void **state) {
  nc_cfg *cfg;
  char err[512];
  char *env[] = {NULL};
  char *argv[] = {"prog", "--workers=2", "extra", NULL};
  assert_int_equal(load(argv, env, &cfg, err), NC_CFG_OK);
  assert_int_equal(nc_cfg_argc(cfg), 1);
  assert_string_equal(nc_cfg_arg(cfg, 0), "extra");
  nc_cfg_free(cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(defaults_apply),
      cmocka_unit_test(flags_override_env_override_file),
      cmocka_unit_test(config_flag_beats_env_for_the_file),
      cmocka_unit_test(bool_flags),
      cmocka_unit_test(bad_values_name_their_source),
      cmocka_unit_test(file_errors_carry_the_line),
      cmocka_unit_test(help_and_version),
      cmocka_unit_test(positional_arguments_are_kept),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
