/*
 * creds.h - the credentials file novactl login writes: the server target,
 * the username and the session (tokens and their expiry times) as JSON.
 *
 * It holds live secrets, so it is created 0600 inside a directory created
 * 0700, replaced atomically (temporary file + rename) every time the tokens
 * rotate, and never read when group or others have any access to it. A
 * sibling "<file>.lock" serialises refreshes between novactl processes.
 */
#ifndef NOVACTL_CREDS_H
#define NOVACTL_CREDS_H

#include <limits.h>
#include <novacron/novacron.h>
#include <stdbool.h>

#include "cli.h"

struct cli_creds {
  char path[PATH_MAX]; /* the file (resolved even when absent) */
  bool loaded;         /* the fields below came from it */
  char *target;
  char *username;
  nc_session session; /* strings owned here; wiped by creds_clear */
  bool save_warned;   /* a failed save was reported once */
};

/* The file's path: --credentials, $NOVACTL_CREDENTIALS,
 * $XDG_CONFIG_HOME/novactl/credentials, ~/.config/novactl/credentials.
 * 0, or prints and returns EXIT_USAGE (no home directory). */
int creds_resolve_path(const cli_ctx *ctx, char *buf, size_t len);

/* Reads `path` into *creds (its path included); *found false when there is
 * no such file (returns 0). A file accessible by group or others, not a
 * regular file, or not valid is refused: with `command` set the reason is
 * printed and EXIT_USAGE returned; with NULL nothing is printed. */
int creds_load(const char *command, const char *path, cli_creds *creds, bool *found);

/* Writes the file atomically (0600; missing directories made 0700). 0, or
 * -1 with the reason in why. */
int creds_save(const char *path, const char *target, const char *username,
               const nc_session *session, char *why, size_t len);

/* Deletes the file; 0 also when it did not exist, else -1 with why. */
int creds_remove(const char *path, char *why, size_t len);

/* Takes the file's lock (blocking); returns a descriptor for
 * creds_unlock, or -1 when no lock could be had (then nothing is locked). */
int creds_lock(const char *path);
void creds_unlock(int fd);

/* Wipes and frees the loaded fields (the path stays). */
void creds_clear(cli_creds *creds);

/* nc_session_callback: saves a rotated session to creds->path (deletes the
 * file when the session ended) and keeps creds->session current. */
void creds_session_changed(const nc_session *session, void *arg);

#endif
