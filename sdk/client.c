/*
 * client.c - nc_client: one gRPC channel (TLS unless asked otherwise) plus
 * the settings every call on it shares (credential, default deadline). The
 * session behind a credential (login, refresh, callback) is session.c's.
 *
 * TLS material is read here, from the paths in the options, so a bad file
 * is reported once with its path; the core only ever sees PEM text. The
 * channel connects lazily: creating a client never touches the network.
 */
#include <errno.h>
#include <grpc/grpc_security.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static bool client_ok(const nc_client *client) {
  return client && client->magic == NC_CLIENT_MAGIC;
}

bool nc_metadata_value_ok(const char *value) {
  for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
    if (*p < 0x20 || *p > 0x7e) return false;
  }
  return true;
}

/* Reads a whole PEM file into a NUL-terminated string; `what` names it in
 * errors ("CA file"). `marker` must appear in it ("CERTIFICATE-----"). */
static nc_status read_pem(const char *path, const char *what, const char *marker, char **out,
                          nc_error *err) {
  nc_status st = NC_OK;
  char *buf = NULL;
  size_t len = 0;
  FILE *f = fopen(path, "rb");
  *out = NULL;
  if (!f) {
    st = nc_fail(err, NC_ERR_IO, "cannot read %s %s: %s", what, path, strerror(errno));
    goto cleanup;
  }
  buf = malloc(NC_MAX_PEM_BYTES + 1);
  if (!buf) {
    st = nc_fail(err, NC_ERR_NO_MEMORY, "out of memory reading %s %s", what, path);
    goto cleanup;
  }
  len = fread(buf, 1, NC_MAX_PEM_BYTES + 1, f);
  if (ferror(f)) {
    st = nc_fail(err, NC_ERR_IO, "cannot read %s %s: %s", what, path, strerror(errno));
    goto cleanup;
  }
  if (len > NC_MAX_PEM_BYTES) {
    st = nc_fail(err, NC_ERR_TLS, "%s %s is larger than %d bytes: not a PEM file", what, path,
                 NC_MAX_PEM_BYTES);
    goto cleanup;
  }
  buf[len] = '\0';
  if (strlen(buf) != len || !strstr(buf, "-----BEGIN ") || !strstr(buf, marker)) {
    st = nc_fail(err, NC_ERR_TLS, "%s %s is not PEM (no \"%s\" block)", what, path, marker);
    goto cleanup;
  }
  *out = buf;
  buf = NULL;
cleanup:
  if (f) fclose(f);
  free(buf);
  return st;
}

static nc_status make_credentials(const nc_options *opts, grpc_channel_credentials **out,
                                  nc_error *err) {
  nc_status st = NC_OK;
  char *roots = NULL;
  char *cert = NULL;
  char *key = NULL;
  grpc_ssl_pem_key_cert_pair pair;
  *out = NULL;
  if (opts->insecure) {
    *out = grpc_insecure_credentials_create();
    goto cleanup;
  }
  if (opts->ca_file &&
      (st = read_pem(opts->ca_file, "CA file", "CERTIFICATE-----", &roots, err)) != NC_OK)
    goto cleanup;
  if (opts->cert_file) {
    st = read_pem(opts->cert_file, "client certificate", "CERTIFICATE-----", &cert, err);
    if (st != NC_OK) goto cleanup;
    st = read_pem(opts->key_file, "client key", "PRIVATE KEY-----", &key, err);
    if (st != NC_OK) goto cleanup;
  }
  pair.private_key = key;
  pair.cert_chain = cert;
  *out = grpc_ssl_credentials_create(roots, cert ? &pair : NULL, NULL, NULL);
  if (!*out) st = nc_fail(err, NC_ERR_TLS, "the TLS credentials could not be created");
cleanup:
  free(roots);
  free(cert);
  if (key) {
    explicit_bzero(key, strlen(key));
    free(key);
  }
  return st;
}

/* Frees the client's memory, wiping its secrets (the channel is gone). */
static void client_release(nc_client *client) {
  nc_session_forget_locked(client);
  nc_free_secret(client->token);
  pthread_cond_destroy(&client->refresh_cv);
  pthread_mutex_destroy(&client->notify_mu);
  pthread_mutex_destroy(&client->token_mu);
  free(client);
}

nc_status nc_client_new(const nc_options *opts, nc_client **out, nc_error *err) {
  nc_status st = NC_OK;
  nc_client *client = NULL;
  grpc_channel_credentials *creds = NULL;
  char user_agent[512];
  bool grpc_up = false;

  nc_error_clear(err);
  if (out) *out = NULL;
  if (!opts || opts->magic != NC_OPTIONS_MAGIC || !out) {
    st = nc_fail(err, NC_ERR_INVALID_ARGUMENT, "nc_client_new: invalid options or output");
    goto cleanup;
  }
  if (!opts->target) {
    st = nc_fail(err, NC_ERR_INVALID_ARGUMENT, "no target set (nc_options_set_target)");
    goto cleanup;
  }
  if (opts->insecure && (opts->ca_file || opts->cert_file || opts->server_name)) {
    st = nc_fail(err, NC_ERR_INVALID_ARGUMENT,
                 "insecure (plaintext) contradicts the TLS settings given");
    goto cleanup;
  }
  client = calloc(1, sizeof(*client));
  if (!client) {
    st = nc_fail(err, NC_ERR_NO_MEMORY, "out of memory");
    goto cleanup;
  }
  pthread_mutex_init(&client->token_mu, NULL);
  pthread_mutex_init(&client->notify_mu, NULL);
  pthread_cond_init(&client->refresh_cv, NULL);
  if (opts->token && !(client->token = strdup(opts->token))) {
    st = nc_fail(err, NC_ERR_NO_MEMORY, "out of memory");
    goto cleanup;
  }
  client->default_deadline_ms = opts->default_deadline_ms;
  client->session_cb = opts->session_cb;
  client->session_cb_arg = opts->session_cb_arg;

  grpc_init();
  grpc_up = true;
  if ((st = make_credentials(opts, &creds, err)) != NC_OK) goto cleanup;

  if (opts->user_agent)
    snprintf(user_agent, sizeof(user_agent), "%s libnovacron/%s", opts->user_agent, nc_version());
  else
    snprintf(user_agent, sizeof(user_agent), "libnovacron/%s", nc_version());
  grpc_arg args[3];
  size_t nargs = 0;
  args[nargs].type = GRPC_ARG_STRING;
  args[nargs].key = GRPC_ARG_PRIMARY_USER_AGENT_STRING;
  args[nargs].value.string = user_agent;
  nargs++;
  args[nargs].type = GRPC_ARG_INTEGER;
  args[nargs].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
  args[nargs].value.integer = NC_MAX_RECV_MESSAGE_BYTES;
  nargs++;
  if (opts->server_name) {
    args[nargs].type = GRPC_ARG_STRING;
    args[nargs].key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG;
    args[nargs].value.string = opts->server_name;
    nargs++;
  }
  grpc_channel_args channel_args = {.num_args = nargs, .args = args};
  client->channel = grpc_channel_create(opts->target, creds, &channel_args);
  if (!client->channel) {
    st = nc_fail(err, NC_ERR_INVALID_ARGUMENT, "cannot create a channel to %s", opts->target);
    goto cleanup;
  }
  client->magic = NC_CLIENT_MAGIC;
  *out = client;
  client = NULL;
cleanup:
  if (creds) grpc_channel_credentials_release(creds);
  if (client) {
    if (client->channel) grpc_channel_destroy(client->channel);
    client_release(client);
    if (grpc_up) grpc_shutdown();
  }
  return st;
}

void nc_client_free(nc_client *client) {
  if (!client_ok(client)) return;
  client->magic = 0;
  grpc_channel_destroy(client->channel);
  client_release(client);
  grpc_shutdown();
}

nc_status nc_client_set_bearer_token(nc_client *client, const char *token) {
  if (!client_ok(client)) return NC_ERR_INVALID_ARGUMENT;
  if (token && (!*token || !nc_metadata_value_ok(token))) return NC_ERR_INVALID_ARGUMENT;
  char *copy = NULL;
  if (token && !(copy = strdup(token))) return NC_ERR_NO_MEMORY;
  pthread_mutex_lock(&client->token_mu);
  while (client->refreshing)
    pthread_cond_wait(&client->refresh_cv, &client->token_mu);
  char *old = client->token;
  client->token = copy;
  nc_session_forget_locked(client); /* a plain token is never refreshed */
  client->credential_gen++;
  client->state_version++;
  pthread_mutex_unlock(&client->token_mu);
  nc_free_secret(old);
  return NC_OK;
}

/* Ten years: anything longer is as good as no deadline, and keeps the
 * arithmetic below far from overflow. */
#define NC_MAX_DEADLINE_MS (10LL * 365 * 24 * 3600 * 1000)

gpr_timespec nc_client_deadline(const nc_client *client, const nc_call_options *call_opts) {
  int64_t ms = client->default_deadline_ms;
  if (call_opts && call_opts->deadline_ms != 0) ms = call_opts->deadline_ms;
  if (ms <= 0 || ms > NC_MAX_DEADLINE_MS) return gpr_inf_future(GPR_CLOCK_MONOTONIC);
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}
