/*
 * options.c - nc_options, the settable bag a client is created from.
 *
 * Setters only check and copy their arguments; files are read and settings
 * checked against each other in nc_client_new(), which has an nc_error to
 * explain a failure in.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static bool options_ok(const nc_options *opts) { return opts && opts->magic == NC_OPTIONS_MAGIC; }

/* Replaces *slot by a copy of value (NULL clears it). */
static nc_status replace_string(char **slot, const char *value) {
  char *copy = NULL;
  if (value) {
    copy = strdup(value);
    if (!copy) return NC_ERR_NO_MEMORY;
  }
  free(*slot);
  *slot = copy;
  return NC_OK;
}

nc_status nc_options_new(nc_options **out) {
  if (!out) return NC_ERR_INVALID_ARGUMENT;
  *out = NULL;
  nc_options *opts = calloc(1, sizeof(*opts));
  if (!opts) return NC_ERR_NO_MEMORY;
  opts->magic = NC_OPTIONS_MAGIC;
  opts->default_deadline_ms = NC_DEFAULT_DEADLINE_MS;
  *out = opts;
  return NC_OK;
}

void nc_options_free(nc_options *opts) {
  if (!options_ok(opts)) return;
  free(opts->target);
  free(opts->ca_file);
  free(opts->cert_file);
  free(opts->key_file);
  free(opts->server_name);
  nc_free_secret(opts->token);
  free(opts->user_agent);
  opts->magic = 0;
  free(opts);
}

nc_status nc_options_set_target(nc_options *opts, const char *target) {
  if (!options_ok(opts) || !target || !*target) return NC_ERR_INVALID_ARGUMENT;
  return replace_string(&opts->target, target);
}

nc_status nc_options_set_tls_ca_file(nc_options *opts, const char *path) {
  if (!options_ok(opts) || (path && !*path)) return NC_ERR_INVALID_ARGUMENT;
  return replace_string(&opts->ca_file, path);
}

nc_status nc_options_set_tls_client_cert(nc_options *opts, const char *cert_path,
                                         const char *key_path) {
  if (!options_ok(opts)) return NC_ERR_INVALID_ARGUMENT;
  /* both or neither; NULL, NULL clears */
  if (!cert_path != !key_path) return NC_ERR_INVALID_ARGUMENT;
  if ((cert_path && !*cert_path) || (key_path && !*key_path)) return NC_ERR_INVALID_ARGUMENT;
  char *cert = NULL;
  char *key = NULL;
  nc_status st = NC_ERR_NO_MEMORY;
  if (replace_string(&cert, cert_path) != NC_OK || replace_string(&key, key_path) != NC_OK)
    goto cleanup;
  free(opts->cert_file);
  free(opts->key_file);
  opts->cert_file = cert;
  opts->key_file = key;
  cert = key = NULL;
  st = NC_OK;
cleanup:
  free(cert);
  free(key);
  return st;
}

nc_status nc_options_set_tls_server_name(nc_options *opts, const char *name) {
  if (!options_ok(opts) || (name && !*name)) return NC_ERR_INVALID_ARGUMENT;
  return replace_string(&opts->server_name, name);
}

nc_status nc_options_set_insecure(nc_options *opts, bool insecure) {
  if (!options_ok(opts)) return NC_ERR_INVALID_ARGUMENT;
  opts->insecure = insecure;
  return NC_OK;
}

/* Replaces the credential by a copy of `token` (NULL clears it), wiping
 * the old one. */
static nc_status replace_token(nc_options *opts, const char *token) {
  if (!options_ok(opts)) return NC_ERR_INVALID_ARGUMENT;
  if (token && (!*token || !nc_metadata_value_ok(token))) return NC_ERR_INVALID_ARGUMENT;
  char *copy = NULL;
  if (token && !(copy = strdup(token))) return NC_ERR_NO_MEMORY;
  nc_free_secret(opts->token);
  opts->token = copy;
  return NC_OK;
}

nc_status nc_options_set_bearer_token(nc_options *opts, const char *token) {
  return replace_token(opts, token);
}

/* An API key travels exactly like a bearer token; neither is refreshed. */
nc_status nc_options_set_api_key(nc_options *opts, const char *secret) {
  return replace_token(opts, secret);
}

nc_status nc_options_set_session_callback(nc_options *opts, nc_session_callback fn, void *arg) {
  if (!options_ok(opts)) return NC_ERR_INVALID_ARGUMENT;
  opts->session_cb = fn;
  opts->session_cb_arg = fn ? arg : NULL;
  return NC_OK;
}

nc_status nc_options_set_default_deadline_ms(nc_options *opts, int64_t ms) {
  if (!options_ok(opts) || ms < 0) return NC_ERR_INVALID_ARGUMENT;
  opts->default_deadline_ms = ms;
  return NC_OK;
}

nc_status nc_options_set_user_agent(nc_options *opts, const char *user_agent) {
  if (!options_ok(opts)) return NC_ERR_INVALID_ARGUMENT;
  if (user_agent && (!*user_agent || !nc_metadata_value_ok(user_agent)))
    return NC_ERR_INVALID_ARGUMENT;
  return replace_string(&opts->user_agent, user_agent);
}
