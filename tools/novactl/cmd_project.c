/*
 * cmd_project.c - "novactl project create|get|list|update|delete":
 * projects (IdentityService *Project). PROJECT may be given as "web" or
 * "projects/web"; labels as repeated --label KEY=VALUE.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "resource.h"

static const out_column project_cols[] = {
    {"Name", "name"},
    {"Display name", "displayName"},
    {"Description", "description"},
    {"Labels", "_labels"},
    {"Created", "createTime"},
    {"Updated", "updateTime"},
    {"Etag", "etag"},
    {"UID", "uid"},
};

static const out_column project_list_cols[] = {
    {"NAME", "name"},
    {"DISPLAY NAME", "displayName"},
    {"LABELS", "_labels"},
    {"CREATED", "createTime"},
};

static void decorate_project(json_t *p) { res_labels_text(p, "labels", "_labels"); }

static int show_project(const cli_ctx *ctx, const Novacron__V1__Project *project) {
  if (!project) return out_usage_error(ctx->name, "the server sent no project");
  return res_show(ctx, &project->base, project_cols, sizeof(project_cols) / sizeof(project_cols[0]),
                  decorate_project);
}

int cmd_project_create(cli_ctx *ctx) {
  Novacron__V1__CreateProjectRequest req = NOVACRON__V1__CREATE_PROJECT_REQUEST__INIT;
  Novacron__V1__Project project = NOVACRON__V1__PROJECT__INIT;
  Novacron__V1__CreateProjectResponse *resp = NULL;
  Novacron__V1__Label **labels = NULL;
  Novacron__V1__Label *storage = NULL;
  size_t nlabels = 0;
  char request_id[NC_UUID_LEN + 1];
  nc_client *client = NULL;
  nc_error err;
  int rc;

  req.project_id = (char *)res_last_segment(ctx->argv[0]);
  req.project = &project;
  if (cli_get(ctx, "display-name")) project.display_name = (char *)cli_get(ctx, "display-name");
  if (cli_get(ctx, "description")) project.description = (char *)cli_get(ctx, "description");
  if ((rc = res_labels(ctx, &labels, &storage, &nlabels)) != 0) goto cleanup;
  project.labels = labels;
  project.n_labels = nlabels;
  if ((rc = res_request_id(ctx, request_id)) != 0) goto cleanup;
  req.request_id = request_id;
  if ((rc = cli_connect(ctx, &client)) != 0) goto cleanup;
  nc_call_options call_opts = {.deadline_ms = 0, .request_id = request_id};
  nc_status st = nc_identity_create_project(client, &req, &resp, &call_opts, &err);
  rc = st != NC_OK ? out_sdk_error(ctx->name, st, &err) : show_project(ctx, resp->project);
cleanup:
  res_labels_free(labels, storage, nlabels);
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}

int cmd_project_get(cli_ctx *ctx) {
  Novacron__V1__GetProjectRequest req = NOVACRON__V1__GET_PROJECT_REQUEST__INIT;
  Novacron__V1__GetProjectResponse *resp = NULL;
  char name[512];
  nc_client *client = NULL;
  nc_error err;
  res_name(name, sizeof(name), "projects/", ctx->argv[0]);
  req.name = name;
  int rc = cli_connect(ctx, &client);
  if (rc != 0) goto cleanup;
  nc_status st = nc_identity_get_project(client, &req, &resp, NULL, &err);
  rc = st != NC_OK ? out_sdk_error(ctx->name, st, &err) : show_project(ctx, resp->project);
cleanup:
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}

RES_LIST_CALL(list_projects, nc_identity_list_projects, ListProjectsRequest, ListProjectsResponse)

int cmd_project_list(cli_ctx *ctx) {
  Novacron__V1__ListProjectsRequest req = NOVACRON__V1__LIST_PROJECTS_REQUEST__INIT;
  static const res_list list = {list_projects, "projects", project_list_cols,
                                sizeof(project_list_cols) / sizeof(project_list_cols[0]),
                                decorate_project};
  nc_client *client = NULL;
  int rc = cli_connect(ctx, &client);
  if (rc == 0) rc = res_run_list(ctx, client, &req.base, &list);
  nc_client_free(client);
  return rc;
}

int cmd_project_update(cli_ctx *ctx) {
  Novacron__V1__UpdateProjectRequest req = NOVACRON__V1__UPDATE_PROJECT_REQUEST__INIT;
  Novacron__V1__Project project = NOVACRON__V1__PROJECT__INIT;
  Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
  Novacron__V1__UpdateProjectResponse *resp = NULL;
  Novacron__V1__Label **labels = NULL;
  Novacron__V1__Label *storage = NULL;
  size_t nlabels = 0;
  char *paths[3];
  char name[512];
  char request_id[NC_UUID_LEN + 1];
  nc_client *client = NULL;
  nc_error err;
  int rc;

  if (cli_switch(ctx, "clear-labels") && cli_get_nth(ctx, "label", 0))
    return out_usage_error(ctx->name, "--clear-labels contradicts --label");
  res_name(name, sizeof(name), "projects/", ctx->argv[0]);
  project.name = name;
  if (cli_get(ctx, "etag")) project.etag = (char *)cli_get(ctx, "etag");
  if (cli_get(ctx, "display-name")) {
    project.display_name = (char *)cli_get(ctx, "display-name");
    paths[mask.n_paths++] = "display_name";
  }
  if (cli_get(ctx, "description")) {
    project.description = (char *)cli_get(ctx, "description");
    paths[mask.n_paths++] = "description";
  }
  if ((rc = res_labels(ctx, &labels, &storage, &nlabels)) != 0) goto cleanup;
  if (nlabels || cli_switch(ctx, "clear-labels")) {
    project.labels = labels;
    project.n_labels = nlabels;
    paths[mask.n_paths++] = "labels";
  }
  if (mask.n_paths == 0) {
    rc = out_usage_error(ctx->name,
                         "nothing to change: give --display-name, --description, --label or "
                         "--clear-labels");
    goto cleanup;
  }
  mask.paths = paths;
  req.project = &project;
  req.update_mask = &mask;
  if ((rc = res_request_id(ctx, request_id)) != 0) goto cleanup;
  req.request_id = request_id;
  if ((rc = cli_connect(ctx, &client)) != 0) goto cleanup;
  nc_call_options call_opts = {.deadline_ms = 0, .request_id = request_id};
  nc_status st = nc_identity_update_project(client, &req, &resp, &call_opts, &err);
  rc = st != NC_OK ? out_sdk_error(ctx->name, st, &err) : show_project(ctx, resp->project);
cleanup:
  res_labels_free(labels, storage, nlabels);
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}

int cmd_project_delete(cli_ctx *ctx) {
  Novacron__V1__DeleteProjectRequest req = NOVACRON__V1__DELETE_PROJECT_REQUEST__INIT;
  Novacron__V1__DeleteProjectResponse *resp = NULL;
  char name[512];
  char request_id[NC_UUID_LEN + 1];
  nc_client *client = NULL;
  nc_error err;
  int rc;
  res_name(name, sizeof(name), "projects/", ctx->argv[0]);
  req.name = name;
  if (cli_get(ctx, "etag")) req.etag = (char *)cli_get(ctx, "etag");
  if ((rc = res_request_id(ctx, request_id)) != 0) return rc;
  req.request_id = request_id;
  if ((rc = cli_connect(ctx, &client)) != 0) goto cleanup;
  nc_call_options call_opts = {.deadline_ms = 0, .request_id = request_id};
  nc_status st = nc_identity_delete_project(client, &req, &resp, &call_opts, &err);
  rc = st != NC_OK ? out_sdk_error(ctx->name, st, &err) : res_show_deleted(ctx, name);
cleanup:
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}
