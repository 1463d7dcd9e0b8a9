/*
 * cmd_host.c - "novactl host list|get|register|update|cordon|uncordon|
 * drain|deregister": hypervisor hosts (HostService). HOST may be given as
 * "kvm1" or "hosts/kvm1". Registration, drain and deregistration start an
 * Operation and, unless --no-wait, wait for it (cmd_op_call); the rest
 * answers directly. Changes need a system administrator.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "resource.h"

#define NAME_LEN 512
#define MAX_TARGETS 32

static const out_column host_cols[] = {
    {"Name", "name"},
    {"State", "_state"},
    {"State message", "stateMessage"},
    {"URI", "uri"},
    {"Cordoned", "cordoned"},
    {"Hypervisor", "_hypervisor"},
    {"libvirt", "libvirtVersion"},
    {"Hostname", "hostname"},
    {"Arch", "arch"},
    {"CPUs", "cpuCount"},
    {"Memory MiB", "memoryMib"},
    {"Free memory MiB", "freeMemoryMib"},
    {"Allocated vCPUs", "allocatedVcpus"},
    {"Allocated MiB", "allocatedMemoryMib"},
    {"VMs", "vmCount"},
    {"Labels", "_labels"},
    {"Description", "description"},
    {"Last heartbeat", "lastHeartbeatTime"},
    {"Created", "createTime"},
    {"Updated", "updateTime"},
    {"Etag", "etag"},
    {"UID", "uid"},
};

static const out_column host_list_cols[] = {
    {"NAME", "name"},         {"STATE", "_state"},
    {"CORDONED", "cordoned"}, {"HYPERVISOR", "_hypervisor"},
    {"CPUS", "cpuCount"},     {"MEMORY MIB", "memoryMib"},
    {"VMS", "vmCount"},       {"HEARTBEAT", "lastHeartbeatTime"},
};

/* Table-only keys: the state in short, "QEMU 8.2.2", the labels. */
static void decorate_host(json_t *h) {
  const char *type = json_string_value(json_object_get(h, "hypervisorType"));
  const char *version = json_string_value(json_object_get(h, "hypervisorVersion"));
  char text[128];
  res_short_enum(h, "state", "STATE_", "_state");
  res_labels_text(h, "labels", "_labels");
  snprintf(text, sizeof(text), "%s%s%s", type && *type ? type : "-", version && *version ? " " : "",
           version ? version : "");
  json_object_set_new(h, "_hypervisor", json_string(text));
}

static int show_host(const cli_ctx *ctx, const ProtobufCMessage *host) {
  if (!host) return out_usage_error(ctx->name, "the server sent no host");
  return res_show(ctx, host, host_cols, sizeof(host_cols) / sizeof(host_cols[0]), decorate_host);
}

static int show_host_deregistered(const cli_ctx *ctx, const ProtobufCMessage *host) {
  return res_show_deleted(ctx, ((const Novacron__V1__Host *)host)->name);
}

RES_LIST_CALL(list_hosts, nc_host_list, ListHostsRequest, ListHostsResponse)
RES_LIST_CALL(register_host, nc_host_register, RegisterHostRequest, RegisterHostResponse)
RES_LIST_CALL(drain_host, nc_host_drain, DrainHostRequest, DrainHostResponse)
RES_LIST_CALL(deregister_host, nc_host_deregister, DeregisterHostRequest, DeregisterHostResponse)

#define HOST_RESULT &novacron__v1__host__descriptor

int cmd_host_list(cli_ctx *ctx) {
  Novacron__V1__ListHostsRequest req = NOVACRON__V1__LIST_HOSTS_REQUEST__INIT;
  static const res_list list = {list_hosts, "hosts", host_list_cols,
                                sizeof(host_list_cols) / sizeof(host_list_cols[0]), decorate_host};
  nc_client *client = NULL;
  int rc = cli_connect(ctx, &client);
  if (rc == 0) rc = res_run_list(ctx, client, &req.base, &list);
  nc_client_free(client);
  return rc;
}

int cmd_host_get(cli_ctx *ctx) {
  Novacron__V1__GetHostRequest req = NOVACRON__V1__GET_HOST_REQUEST__INIT;
  Novacron__V1__GetHostResponse *resp = NULL;
  char name[NAME_LEN];
  nc_client *client = NULL;
  nc_error err;
  res_name(name, sizeof(name), "hosts/", ctx->argv[0]);
  req.name = name;
  int rc = cli_connect(ctx, &client);
  if (rc != 0) goto cleanup;
  nc_status st = nc_host_get(client, &req, &resp, NULL, &err);
  rc = st != NC_OK ? out_sdk_error(ctx->name, st, &err)
                   : show_host(ctx, resp->host ? &resp->host->base : NULL);
cleanup:
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}

int cmd_host_register(cli_ctx *ctx) {
  Novacron__V1__RegisterHostRequest req = NOVACRON__V1__REGISTER_HOST_REQUEST__INIT;
  Novacron__V1__Host host = NOVACRON__V1__HOST__INIT;
  Novacron__V1__Label **labels = NULL;
  Novacron__V1__Label *storage = NULL;
  size_t nlabels = 0;
  int rc;
  if (!cli_get(ctx, "uri"))
    return out_usage_error(ctx->name, "--uri is required, e.g. qemu+ssh://root@kvm1/system");
  req.host_id = (char *)res_last_segment(ctx->argv[0]);
  req.host = &host;
  req.validate_only = cli_switch(ctx, "validate-only");
  host.uri = (char *)cli_get(ctx, "uri");
  host.cordoned = cli_switch(ctx, "cordoned");
  if (cli_get(ctx, "description")) host.description = (char *)cli_get(ctx, "description");
  if ((rc = res_labels(ctx, &labels, &storage, &nlabels)) == 0) {
    host.labels = labels;
    host.n_labels = nlabels;
    rc = cmd_op_call(ctx, &req.base, register_host, HOST_RESULT, show_host);
  }
  res_labels_free(labels, storage, nlabels);
  return rc;
}

/* UpdateHost with the fields of `host` named by `paths`. */
static int update_host(cli_ctx *ctx, Novacron__V1__Host *host, char **paths, size_t npaths) {
  Novacron__V1__UpdateHostRequest req = NOVACRON__V1__UPDATE_HOST_REQUEST__INIT;
  Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
  Novacron__V1__UpdateHostResponse *resp = NULL;
  char name[NAME_LEN];
  char request_id[NC_UUID_LEN + 1];
  nc_client *client = NULL;
  nc_error err;
  int rc;
  res_name(name, sizeof(name), "hosts/", ctx->argv[0]);
  host->name = name;
  if (cli_get(ctx, "etag")) host->etag = (char *)cli_get(ctx, "etag");
  mask.paths = paths;
  mask.n_paths = npaths;
  req.host = host;
  req.update_mask = &mask;
  if ((rc = res_request_id(ctx, request_id)) != 0) return rc;
  req.request_id = request_id;
  if ((rc = cli_connect(ctx, &client)) != 0) goto cleanup;
  nc_call_options call_opts = {.deadline_ms = 0, .request_id = request_id};
  nc_status st = nc_host_update(client, &req, &resp, &call_opts, &err);
  rc = st != NC_OK ? out_sdk_error(ctx->name, st, &err)
                   : show_host(ctx, resp->host ? &resp->host->base : NULL);
cleanup:
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}

int cmd_host_update(cli_ctx *ctx) {
  Novacron__V1__Host host = NOVACRON__V1__HOST__INIT;
  Novacron__V1__Label **labels = NULL;
  Novacron__V1__Label *storage = NULL;
  size_t nlabels = 0;
  char *paths[2];
  size_t npaths = 0;
  int rc;
  if (cli_switch(ctx, "clear-labels") && cli_get_nth(ctx, "label", 0))
    return out_usage_error(ctx->name, "--clear-labels contradicts --label");
  if (cli_get(ctx, "description")) {
    host.description = (char *)cli_get(ctx, "description");
    paths[npaths++] = "description";
  }
  if ((rc = res_labels(ctx, &labels, &storage, &nlabels)) != 0) goto cleanup;
  if (nlabels || cli_switch(ctx, "clear-labels")) {
    host.labels = labels;
    host.n_labels = nlabels;
    paths[npaths++] = "labels";
  }
  if (npaths == 0)
    rc = out_usage_error(ctx->name,
                         "nothing to change: give --description, --label or --clear-labels "
                         "(cordon with 'host cordon')");
  else
    rc = update_host(ctx, &host, paths, npaths);
cleanup:
  res_labels_free(labels, storage, nlabels);
  return rc;
}

int cmd_host_cordon(cli_ctx *ctx) {
  Novacron__V1__Host host = NOVACRON__V1__HOST__INIT;
  char *paths[] = {"cordoned"};
  host.cordoned = true;
  return update_host(ctx, &host, paths, 1);
}

int cmd_host_uncordon(cli_ctx *ctx) {
  Novacron__V1__Host host = NOVACRON__V1__HOST__INIT;
  char *paths[] = {"cordoned"};
  host.cordoned = false;
  return update_host(ctx, &host, paths, 1);
}

int cmd_host_drain(cli_ctx *ctx) {
  Novacron__V1__DrainHostRequest req = NOVACRON__V1__DRAIN_HOST_REQUEST__INIT;
  Google__Protobuf__Duration stop_timeout = GOOGLE__PROTOBUF__DURATION__INIT;
  char name[NAME_LEN];
  char targets[MAX_TARGETS][NAME_LEN];
  char *target_ptrs[MAX_TARGETS];
  const char *text;
  int mode = 0;
  res_name(name, sizeof(name), "hosts/", ctx->argv[0]);
  req.name = name;
  if ((text = cli_get(ctx, "mode")) &&
      !cmd_parse_enum(ctx, "mode", text, &novacron__v1__drain_host_request__mode__descriptor,
                      "MODE_", &mode))
    return EXIT_USAGE;
  req.mode = (Novacron__V1__DrainHostRequest__Mode)mode;
  for (size_t i = 0; (text = cli_get_nth(ctx, "target-host", i)); i++) {
    if (i == MAX_TARGETS)
      return out_usage_error(ctx->name, "at most %d --target-host", MAX_TARGETS);
    res_name(targets[i], NAME_LEN, "hosts/", text);
    target_ptrs[i] = targets[i];
    req.n_target_hosts = i + 1;
  }
  req.target_hosts = req.n_target_hosts ? target_ptrs : NULL;
  if ((text = cli_get(ctx, "stop-timeout"))) {
    int64_t seconds;
    if (!res_parse_duration(text, &seconds))
      return out_usage_error(ctx->name, "--stop-timeout must be a duration like 60s, not \"%s\"",
                             text);
    stop_timeout.seconds = seconds;
    req.stop_timeout = &stop_timeout;
  }
  return cmd_op_call(ctx, &req.base, drain_host, HOST_RESULT, show_host);
}

int cmd_host_deregister(cli_ctx *ctx) {
  Novacron__V1__DeregisterHostRequest req = NOVACRON__V1__DEREGISTER_HOST_REQUEST__INIT;
  char name[NAME_LEN];
  res_name(name, sizeof(name), "hosts/", ctx->argv[0]);
  req.name = name;
  if (cli_get(ctx, "etag")) req.etag = (char *)cli_get(ctx, "etag");
  req.force = cli_switch(ctx, "force");
  return cmd_op_call(ctx, &req.base, deregister_host, HOST_RESULT, show_host_deregistered);
}
