/*
 * projects.c - log in with the C SDK and list the projects you can see.
 * The client keeps the session itself: it sends the access token with
 * every call and refreshes it before it expires.
 *
 *   cc projects.c $(pkg-config --cflags --libs novacron) -o projects
 *   NOVACRON_PASSWORD=... ./projects [TARGET [CA_FILE [USER]]]
 *
 * TARGET defaults to $NOVACRON_TARGET, then localhost:8443; CA_FILE to
 * $NOVACRON_CA, then the system roots; USER to admin. The password comes
 * from $NOVACRON_PASSWORD (never from the command line, where ps shows it).
 * With scripts/run: NOVACRON_PASSWORD=$(cat .state/admin-password)
 *   ./projects localhost:8443 .state/certs/ca.crt
 * Exit 0 on success, 1 when a call failed.
 */
#include <novacron/novacron.h>
#include <stdio.h>
#include <stdlib.h>

static int fail(const char *what, nc_status st, const nc_error *err) {
  fprintf(stderr, "projects: %s: %s", what, nc_strerror(st));
  if (st == NC_ERR_RPC) fprintf(stderr, " (%s)", nc_grpc_code_name(err->code));
  if (err->message[0]) fprintf(stderr, ": %s", err->message);
  fputc('\n', stderr);
  return 1;
}

int main(int argc, char **argv) {
  const char *target = argc > 1 ? argv[1] : getenv("NOVACRON_TARGET");
  const char *ca = argc > 2 ? argv[2] : getenv("NOVACRON_CA");
  const char *user = argc > 3 ? argv[3] : "admin";
  const char *password = getenv("NOVACRON_PASSWORD");
  nc_options *opts = NULL;
  nc_client *client = NULL;
  nc_error err;
  nc_status st;
  int rc = 1;

  if (!password) {
    fprintf(stderr, "projects: set NOVACRON_PASSWORD to the password of %s\n", user);
    return 1;
  }
  if ((st = nc_options_new(&opts)) != NC_OK ||
      (st = nc_options_set_target(opts, target ? target : "localhost:8443")) != NC_OK ||
      (ca && (st = nc_options_set_tls_ca_file(opts, ca)) != NC_OK)) {
    fprintf(stderr, "projects: options: %s\n", nc_strerror(st));
    goto out;
  }
  if ((st = nc_client_new(opts, &client, &err)) != NC_OK) {
    rc = fail("connect", st, &err);
    goto out;
  }
  /* 1. log in: the client now holds the session */
  if ((st = nc_client_login(client, user, password, &err)) != NC_OK) {
    rc = fail("login", st, &err);
    goto out;
  }
  /* 2. who am I */
  Novacron__V1__WhoAmIRequest who_req = NOVACRON__V1__WHO_AM_IREQUEST__INIT;
  Novacron__V1__WhoAmIResponse *who = NULL;
  if ((st = nc_identity_whoami(client, &who_req, &who, NULL, &err)) != NC_OK) {
    rc = fail("WhoAmI", st, &err);
    goto out;
  }
  printf("logged in as %s%s\n", who->principal->name,
         who->principal->system_admin ? " (system administrator)" : "");
  nc_message_free(&who->base);
  /* 3. every project visible to us, page by page */
  Novacron__V1__ListProjectsRequest req = NOVACRON__V1__LIST_PROJECTS_REQUEST__INIT;
  req.page_size = 100;
  char token[128] = "";
  do {
    Novacron__V1__ListProjectsResponse *page = NULL;
    req.page_token = token;
    if ((st = nc_identity_list_projects(client, &req, &page, NULL, &err)) != NC_OK) {
      rc = fail("ListProjects", st, &err);
      goto out;
    }
    for (size_t i = 0; i < page->n_projects; i++)
      printf("%s\t%s\n", page->projects[i]->name, page->projects[i]->display_name);
    snprintf(token, sizeof(token), "%s", page->next_page_token);
    nc_message_free(&page->base);
  } while (token[0]);
  /* 4. end the session on the server */
  if ((st = nc_client_logout(client, &err)) != NC_OK) {
    rc = fail("logout", st, &err);
    goto out;
  }
  rc = 0;
out:
  nc_client_free(client);
  nc_options_free(opts);
  return rc;
}
