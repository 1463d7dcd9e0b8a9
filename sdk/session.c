/*
 * session.c - the credential an nc_client sends and the session behind it:
 * login, single-flight refresh with rotating refresh tokens, logout, the
 * session callback, saving and restoring a session, and request ids.
 *
 * All session state lives in the client under token_mu. One thread at a
 * time calls RefreshToken (`refreshing`, waited for on refresh_cv); the
 * others wait and use its result. The request id of a refresh is recorded
 * (and reported to the callback) before the call, so a refresh whose answer
 * was lost is retried with the same id - idempotent on the server - rather
 * than presenting a spent refresh token under a new id, which the server
 * treats as theft. Callbacks run with notify_mu held and token_mu released,
 * always with the newest state, so a holder persisting them never goes
 * back to an older token. Secrets are wiped before their memory is freed;
 * none is ever put in an error message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "internal.h"
#include "novacron/identity.h"

static bool client_ok(const nc_client *client) {
  return client && client->magic == NC_CLIENT_MAGIC;
}

void nc_free_secret(char *secret) {
  if (!secret) return;
  explicit_bzero(secret, strlen(secret));
  free(secret);
}

/* Wipes a string owned by a message that is about to be freed. */
static void wipe_string(char *s) {
  if (s) explicit_bzero(s, strlen(s));
}

/* strdup that keeps NULL and maps "" to NULL; false when out of memory. */
static bool dup_optional(const char *in, char **out) {
  *out = NULL;
  if (!in || !*in) return true;
  *out = strdup(in);
  return *out != NULL;
}

nc_status nc_new_request_id(char *buf, size_t len) {
  static const char hex[] = "0123456789abcdef";
  unsigned char b[16];
  size_t got = 0;
  if (!buf || len < NC_UUID_LEN + 1) return NC_ERR_INVALID_ARGUMENT;
  while (got < sizeof(b)) {
    ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return NC_ERR_IO;
    got += (size_t)n;
  }
  b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
  b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  size_t o = 0;
  for (size_t i = 0; i < sizeof(b); i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) buf[o++] = '-';
    buf[o++] = hex[b[i] >> 4];
    buf[o++] = hex[b[i] & 0x0f];
  }
  buf[o] = '\0';
  explicit_bzero(b, sizeof(b));
  return NC_OK;
}

bool nc_method_is_anonymous(const char *method) {
  return strcmp(method, "/" NC_IDENTITY_SERVICE "/Login") == 0 ||
         strcmp(method, "/" NC_IDENTITY_SERVICE "/RefreshToken") == 0;
}

static int64_t unix_seconds(const Google__Protobuf__Timestamp *ts) { return ts ? ts->seconds : 0; }

void nc_session_forget_locked(nc_client *client) {
  client->has_session = false;
  nc_free_secret(client->refresh_token);
  client->refresh_token = NULL;
  free(client->session_name);
  client->session_name = NULL;
  client->access_expire = client->access_issued = client->refresh_expire = 0;
  client->refresh_request_id[0] = '\0';
}

/* Forgets the session and the credential it provided; bumps the versions. */
static void end_session_locked(nc_client *client) {
  nc_session_forget_locked(client);
  nc_free_secret(client->token);
  client->token = NULL;
  client->credential_gen++;
  client->state_version++;
}

/* Waits until no thread is refreshing; token_mu held. */
static void wait_refresh_locked(nc_client *client) {
  while (client->refreshing)
    pthread_cond_wait(&client->refresh_cv, &client->token_mu);
}

/* True when a call should refresh the session first. */
static bool session_due_locked(const nc_client *client, int64_t now) {
  if (!client->has_session || !client->refresh_token || !client->token ||
      client->access_expire == 0)
    return false;
  /* a session past its end cannot be refreshed; the server will say so */
  if (client->refresh_expire != 0 && now >= client->refresh_expire) return false;
  int64_t margin = NC_REFRESH_MARGIN_S;
  if (client->access_issued != 0 && client->access_expire > client->access_issued) {
    int64_t half_life = (client->access_expire - client->access_issued) / 2;
    if (half_life < margin) margin = half_life;
  }
  return now >= client->access_expire - margin;
}

/* Makes new tokens the client's session. Nothing changes on failure. */
static nc_status install_locked(nc_client *client, const char *access, int64_t access_expire,
                                const char *refresh, int64_t refresh_expire, const char *session,
                                int64_t now, nc_error *err) {
  char *a = NULL;
  char *r = NULL;
  char *s = NULL;
  if (!access || !*access || !nc_metadata_value_ok(access))
    return nc_fail(err, NC_ERR_DECODE, "the server returned an unusable access token");
  if (!(a = strdup(access)) || !dup_optional(refresh, &r) || !dup_optional(session, &s)) {
    nc_free_secret(a);
    nc_free_secret(r);
    free(s);
    return nc_fail(err, NC_ERR_NO_MEMORY, "out of memory");
  }
  nc_session_forget_locked(client);
  nc_free_secret(client->token);
  client->token = a;
  client->refresh_token = r;
  client->session_name = s;
  client->access_expire = access_expire;
  client->access_issued = now;
  client->refresh_expire = refresh_expire;
  client->has_session = true;
  client->credential_gen++;
  client->state_version++;
  return NC_OK;
}

/* Copies the session into *out; token_mu held and has_session true. */
static nc_status snapshot_locked(const nc_client *client, nc_session *out) {
  memset(out, 0, sizeof(*out));
  out->access_token_expire_time = client->access_expire;
  out->refresh_token_expire_time = client->refresh_expire;
  if (!dup_optional(client->token, &out->access_token) ||
      !dup_optional(client->refresh_token, &out->refresh_token) ||
      !dup_optional(client->session_name, &out->session) ||
      !dup_optional(client->refresh_request_id, &out->refresh_request_id)) {
    nc_session_clear(out);
    return NC_ERR_NO_MEMORY;
  }
  return NC_OK;
}

void nc_session_notify(nc_client *client) {
  nc_session snap;
  nc_status st = NC_ERR_NOT_FOUND;
  if (!client->session_cb) return;
  pthread_mutex_lock(&client->notify_mu);
  pthread_mutex_lock(&client->token_mu);
  uint64_t version = client->state_version;
  bool changed = version != client->notified_version;
  if (changed && client->has_session && client->token) st = snapshot_locked(client, &snap);
  pthread_mutex_unlock(&client->token_mu);
  /* out of memory: report at the next change rather than report nothing */
  if (changed && st != NC_ERR_NO_MEMORY) {
    client->notified_version = version;
    client->session_cb(st == NC_OK ? &snap : NULL, client->session_cb_arg);
    if (st == NC_OK) nc_session_clear(&snap);
  }
  pthread_mutex_unlock(&client->notify_mu);
}

void nc_credential_destroy(nc_credential *cred) {
  nc_free_secret(cred->authorization);
  cred->authorization = NULL;
}

/* Prefixes a refresh failure so the caller of an unrelated method sees why
 * its call could not go on. */
static void explain_refresh_failure(nc_error *err) {
  static const char prefix[] = "session refresh failed: ";
  size_t n = strnlen(err->message, sizeof(err->message) - 1);
  if (n + sizeof(prefix) > sizeof(err->message)) n = sizeof(err->message) - sizeof(prefix);
  memmove(err->message + sizeof(prefix) - 1, err->message, n);
  memcpy(err->message, prefix, sizeof(prefix) - 1);
  err->message[sizeof(prefix) - 1 + n] = '\0';
}

nc_status nc_session_refresh(nc_client *client, nc_refresh_mode mode, uint64_t seen_gen,
                             nc_error *err) {
  Novacron__V1__RefreshTokenRequest req = NOVACRON__V1__REFRESH_TOKEN_REQUEST__INIT;
  Novacron__V1__RefreshTokenResponse *resp = NULL;
  char request_id[NC_UUID_LEN + 1];
  char *refresh = NULL;
  bool new_id = false;
  nc_error local;
  nc_status st;

  if (!err) err = &local; /* the outcome depends on the code */
  nc_error_clear(err);
  pthread_mutex_lock(&client->token_mu);
  wait_refresh_locked(client);
  if (!client->has_session || !client->refresh_token) {
    pthread_mutex_unlock(&client->token_mu);
    return nc_fail(err, NC_ERR_NOT_FOUND, "no session to refresh: log in first");
  }
  if ((mode == NC_REFRESH_IF_DUE && !session_due_locked(client, (int64_t)time(NULL))) ||
      (mode == NC_REFRESH_IF_SAME && client->credential_gen != seen_gen)) {
    pthread_mutex_unlock(&client->token_mu); /* another thread did it */
    return NC_OK;
  }
  if (!client->refresh_request_id[0]) {
    if (nc_new_request_id(client->refresh_request_id, sizeof(client->refresh_request_id)) !=
        NC_OK) {
      client->refresh_request_id[0] = '\0';
      pthread_mutex_unlock(&client->token_mu);
      return nc_fail(err, NC_ERR_IO, "no random bytes for a request id");
    }
    new_id = true;
    client->state_version++;
  }
  refresh = strdup(client->refresh_token);
  memcpy(request_id, client->refresh_request_id, sizeof(request_id));
  if (refresh) client->refreshing = true;
  pthread_mutex_unlock(&client->token_mu);
  if (!refresh) return nc_fail(err, NC_ERR_NO_MEMORY, "out of memory");

  /* write-ahead: the holder records the request id before the token is spent */
  if (new_id) nc_session_notify(client);

  req.refresh_token = refresh;
  req.request_id = request_id;
  nc_call_options call_opts = {.deadline_ms = 0, .request_id = request_id};
  st = nc_identity_refresh_token(client, &req, &resp, &call_opts, err);

  pthread_mutex_lock(&client->token_mu);
  if (st == NC_OK) {
    st = install_locked(client, resp->access_token, unix_seconds(resp->access_token_expire_time),
                        resp->refresh_token, unix_seconds(resp->refresh_token_expire_time),
                        resp->session, (int64_t)time(NULL), err);
    /* the answer arrived: the id is used up even if it was unusable */
    client->refresh_request_id[0] = '\0';
    client->state_version++;
  } else if (st == NC_ERR_RPC && err->code == NC_GRPC_UNAUTHENTICATED) {
    end_session_locked(client); /* expired, revoked, or a reused token */
  }
  /* any other failure may have lost an answer: the request id stays for
   * the next attempt */
  client->refreshing = false;
  pthread_cond_broadcast(&client->refresh_cv);
  pthread_mutex_unlock(&client->token_mu);

  if (resp) {
    wipe_string(resp->access_token);
    wipe_string(resp->refresh_token);
    nc_message_free(&resp->base);
  }
  nc_free_secret(refresh);
  nc_session_notify(client);
  if (st != NC_OK) explain_refresh_failure(err);
  return st;
}

nc_status nc_session_credential(nc_client *client, const char *method, nc_credential *out,
                                nc_error *err) {
  out->authorization = NULL;
  out->generation = 0;
  if (nc_method_is_anonymous(method)) return NC_OK;

  int64_t now = (int64_t)time(NULL);
  pthread_mutex_lock(&client->token_mu);
  bool due = session_due_locked(client, now);
  pthread_mutex_unlock(&client->token_mu);
  if (due) {
    nc_error refresh_err;
    nc_status st = nc_session_refresh(client, NC_REFRESH_IF_DUE, 0, &refresh_err);
    if (st != NC_OK) {
      /* a token that has not expired yet is still worth sending */
      pthread_mutex_lock(&client->token_mu);
      bool usable = client->token && (!client->has_session || client->access_expire == 0 ||
                                      now < client->access_expire);
      pthread_mutex_unlock(&client->token_mu);
      if (!usable) {
        if (err) *err = refresh_err;
        return st;
      }
    }
  }

  nc_status st = NC_OK;
  pthread_mutex_lock(&client->token_mu);
  if (client->token) {
    size_t n = strlen(client->token) + sizeof("Bearer ");
    out->authorization = malloc(n);
    if (out->authorization)
      snprintf(out->authorization, n, "Bearer %s", client->token);
    else
      st = NC_ERR_NO_MEMORY;
  }
  out->generation = client->credential_gen;
  pthread_mutex_unlock(&client->token_mu);
  if (st != NC_OK) return nc_fail(err, st, "out of memory");
  return NC_OK;
}

/* ---- public: login, refresh, logout ---- */

nc_status nc_client_login(nc_client *client, const char *username, const char *password,
                          nc_error *err) {
  Novacron__V1__LoginRequest req = NOVACRON__V1__LOGIN_REQUEST__INIT;
  Novacron__V1__LoginResponse *resp = NULL;
  nc_status st;

  nc_error_clear(err);
  if (!client_ok(client)) return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "invalid client handle");
  if (!username || !*username || !password)
    return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "a username and a password are required");
  req.username = (char *)username;
  req.password = (char *)password;
  st = nc_identity_login(client, &req, &resp, NULL, err);
  if (st != NC_OK) return st;

  pthread_mutex_lock(&client->token_mu);
  wait_refresh_locked(client);
  st = install_locked(client, resp->access_token, unix_seconds(resp->access_token_expire_time),
                      resp->refresh_token, unix_seconds(resp->refresh_token_expire_time),
                      resp->session, (int64_t)time(NULL), err);
  pthread_mutex_unlock(&client->token_mu);

  wipe_string(resp->access_token);
  wipe_string(resp->refresh_token);
  nc_message_free(&resp->base);
  if (st == NC_OK) nc_session_notify(client);
  return st;
}

nc_status nc_client_refresh_session(nc_client *client, nc_error *err) {
  nc_error_clear(err);
  if (!client_ok(client)) return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "invalid client handle");
  /* a refresh finishing while this one waits counts as this one */
  pthread_mutex_lock(&client->token_mu);
  uint64_t gen = client->credential_gen;
  pthread_mutex_unlock(&client->token_mu);
  return nc_session_refresh(client, NC_REFRESH_IF_SAME, gen, err);
}

nc_status nc_client_logout(nc_client *client, nc_error *err) {
  Novacron__V1__LogoutRequest req = NOVACRON__V1__LOGOUT_REQUEST__INIT;
  Novacron__V1__LogoutResponse *resp = NULL;
  char request_id[NC_UUID_LEN + 1];
  nc_status st;

  nc_error_clear(err);
  if (!client_ok(client)) return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "invalid client handle");
  if (nc_new_request_id(request_id, sizeof(request_id)) != NC_OK)
    return nc_fail(err, NC_ERR_IO, "no random bytes for a request id");
  req.request_id = request_id;
  nc_call_options call_opts = {.deadline_ms = 0, .request_id = request_id};
  st = nc_identity_logout(client, &req, &resp, &call_opts, err);
  nc_message_free(resp ? &resp->base : NULL);

  pthread_mutex_lock(&client->token_mu);
  wait_refresh_locked(client);
  bool had_session = client->has_session;
  if (had_session) end_session_locked(client);
  pthread_mutex_unlock(&client->token_mu);
  if (had_session) nc_session_notify(client);
  return st;
}

/* ---- public: saving and restoring ---- */

nc_status nc_client_set_session(nc_client *client, const nc_session *session) {
  char *access = NULL;
  char *refresh = NULL;
  char *name = NULL;
  if (!client_ok(client)) return NC_ERR_INVALID_ARGUMENT;
  if (session) {
    const char *id = session->refresh_request_id;
    if (!session->access_token || !*session->access_token ||
        !nc_metadata_value_ok(session->access_token))
      return NC_ERR_INVALID_ARGUMENT;
    if (id && (strlen(id) > NC_UUID_LEN || !nc_metadata_value_ok(id)))
      return NC_ERR_INVALID_ARGUMENT;
    if (!(access = strdup(session->access_token)) ||
        !dup_optional(session->refresh_token, &refresh) || !dup_optional(session->session, &name)) {
      nc_free_secret(access);
      nc_free_secret(refresh);
      free(name);
      return NC_ERR_NO_MEMORY;
    }
  }
  pthread_mutex_lock(&client->token_mu);
  wait_refresh_locked(client);
  end_session_locked(client);
  if (session) {
    client->token = access;
    client->refresh_token = refresh;
    client->session_name = name;
    client->access_expire = session->access_token_expire_time;
    client->refresh_expire = session->refresh_token_expire_time;
    snprintf(client->refresh_request_id, sizeof(client->refresh_request_id), "%s",
             session->refresh_request_id ? session->refresh_request_id : "");
    client->has_session = true;
  }
  pthread_mutex_unlock(&client->token_mu);
  return NC_OK;
}

nc_status nc_client_get_session(nc_client *client, nc_session *out) {
  nc_status st = NC_ERR_NOT_FOUND;
  if (!out) return NC_ERR_INVALID_ARGUMENT;
  memset(out, 0, sizeof(*out));
  if (!client_ok(client)) return NC_ERR_INVALID_ARGUMENT;
  pthread_mutex_lock(&client->token_mu);
  if (client->has_session && client->token) st = snapshot_locked(client, out);
  pthread_mutex_unlock(&client->token_mu);
  return st;
}

void nc_session_clear(nc_session *session) {
  if (!session) return;
  nc_free_secret(session->access_token);
  nc_free_secret(session->refresh_token);
  free(session->session);
  free(session->refresh_request_id);
  memset(session, 0, sizeof(*session));
}
