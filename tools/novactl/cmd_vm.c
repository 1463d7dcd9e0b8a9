/*
 * cmd_vm.c - "novactl vm ...": virtual machines (VmService). VM may be
 * given as its id (in --project) or its full name projects/P/vms/ID;
 * volumes and networks likewise. Commands that change a VM start an
 * Operation and, unless --no-wait, wait for it and show the VM it left
 * (cmd_op_call); reads answer directly.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "resource.h"

#define MAX_DISKS 16
#define MAX_NICS 8
#define MAX_USER_DATA (64 * 1024)
#define NAME_LEN 512
#define MAX_VCPUS 256
#define MIN_MEMORY_MIB 64
#define MAX_MEMORY_MIB 4194304 /* 4 TiB */

/* ---- showing ---- */

static const out_column vm_cols[] = {
    {"Name", "name"},
    {"State", "_state"},
    {"State message", "stateMessage"},
    {"vCPUs", "vcpus"},
    {"Memory MiB", "memoryMib"},
    {"Max vCPUs", "maxVcpus"},
    {"Max memory MiB", "maxMemoryMib"},
    {"Host", "host"},
    {"Pinned to", "_pin"},
    {"Disks", "_disks"},
    {"NICs", "_nics"},
    {"Machine type", "machineType"},
    {"Firmware", "_firmware"},
    {"Labels", "_labels"},
    {"Description", "description"},
    {"Created", "createTime"},
    {"Updated", "updateTime"},
    {"Etag", "etag"},
    {"UID", "uid"},
};

static const out_column vm_list_cols[] = {
    {"NAME", "name"}, {"STATE", "_state"},       {"VCPUS", "vcpus"}, {"MEMORY MIB", "memoryMib"},
    {"HOST", "host"}, {"CREATED", "createTime"},
};

static const out_column snapshot_cols[] = {
    {"Name", "name"},
    {"State", "_state"},
    {"State message", "stateMessage"},
    {"VM state", "_vm_state"},
    {"Memory included", "includeMemory"},
    {"Parent", "parentSnapshot"},
    {"Labels", "_labels"},
    {"Description", "description"},
    {"Created", "createTime"},
    {"Etag", "etag"},
    {"UID", "uid"},
};

static const out_column snapshot_list_cols[] = {
    {"NAME", "name"},          {"STATE", "_state"},
    {"VM STATE", "_vm_state"}, {"MEMORY", "includeMemory"},
    {"CREATED", "createTime"},
};

static const out_column stats_cols[] = {
    {"VM", "vm"},
    {"Sampled", "sampleTime"},
    {"CPU time ns", "cpuTimeNs"},
    {"vCPUs online", "vcpusOnline"},
    {"vCPUs max", "vcpusMax"},
    {"Memory KiB", "memoryActualKib"},
    {"RSS KiB", "memoryRssKib"},
    {"Available KiB", "memoryAvailableKib"},
    {"Unused KiB", "memoryUnusedKib"},
    {"Disks", "_disks"},
    {"NICs", "_nics"},
};

/* "a=1,b=2" of the `key_a`/`key_b` pairs of an array, or "-". */
static void pairs_text(json_t *obj, const char *array, const char *key_a, const char *sep,
                       const char *key_b, const char *key_to) {
  json_t *items = json_object_get(obj, array);
  json_t *item;
  size_t i;
  char buf[1024] = "";
  size_t o = 0;
  json_array_foreach(items, i, item) {
    const char *a = json_string_value(json_object_get(item, key_a));
    const char *b = json_string_value(json_object_get(item, key_b));
    int n = snprintf(buf + o, sizeof(buf) - o, "%s%s%s%s", i ? "," : "", a && *a ? a : "?", sep,
                     b ? b : "");
    if (n < 0 || (size_t)n >= sizeof(buf) - o) break;
    o += (size_t)n;
  }
  json_object_set_new(obj, key_to, json_string(o ? buf : "-"));
}

static void decorate_vm(json_t *vm) {
  json_t *placement = json_object_get(vm, "placement");
  const char *pin = json_string_value(json_object_get(placement, "host"));
  res_short_enum(vm, "state", "STATE_", "_state");
  res_short_enum(vm, "firmware", "FIRMWARE_", "_firmware");
  res_labels_text(vm, "labels", "_labels");
  pairs_text(vm, "disks", "targetDevice", "=", "volume", "_disks");
  pairs_text(vm, "nics", "mac", "@", "network", "_nics");
  json_object_set_new(vm, "_pin", json_string(pin && *pin ? pin : "-"));
}

static void decorate_snapshot(json_t *s) {
  res_short_enum(s, "state", "STATE_", "_state");
  res_short_enum(s, "vmState", "STATE_", "_vm_state");
  res_labels_text(s, "labels", "_labels");
}

static void decorate_stats(json_t *s) {
  json_t *items = json_object_get(s, "disks");
  json_t *item;
  size_t i;
  char buf[1024] = "";
  size_t o = 0;
  json_array_foreach(items, i, item) {
    const char *dev = json_string_value(json_object_get(item, "targetDevice"));
    int n = snprintf(buf + o, sizeof(buf) - o,
                     "%s%s read %" JSON_INTEGER_FORMAT " B write %" JSON_INTEGER_FORMAT " B",
                     i ? ", " : "", dev ? dev : "?",
                     json_integer_value(json_object_get(item, "readBytes")),
                     json_integer_value(json_object_get(item, "writeBytes")));
    if (n < 0 || (size_t)n >= sizeof(buf) - o) break;
    o += (size_t)n;
  }
  json_object_set_new(s, "_disks", json_string(o ? buf : "-"));
  items = json_object_get(s, "nics");
  o = 0;
  buf[0] = '\0';
  json_array_foreach(items, i, item) {
    const char *mac = json_string_value(json_object_get(item, "mac"));
    int n =
        snprintf(buf + o, sizeof(buf) - o,
                 "%s%s rx %" JSON_INTEGER_FORMAT " B tx %" JSON_INTEGER_FORMAT " B", i ? ", " : "",
                 mac ? mac : "?", json_integer_value(json_object_get(item, "rxBytes")),
                 json_integer_value(json_object_get(item, "txBytes")));
    if (n < 0 || (size_t)n >= sizeof(buf) - o) break;
    o += (size_t)n;
  }
  json_object_set_new(s, "_nics", json_string(o ? buf : "-"));
}

static int show_vm(const cli_ctx *ctx, const ProtobufCMessage *vm) {
  if (!vm) return out_usage_error(ctx->name, "the server sent no VM");
  return res_show(ctx, vm, vm_cols, sizeof(vm_cols) / sizeof(vm_cols[0]), decorate_vm);
}

static int show_vm_deleted(const cli_ctx *ctx, const ProtobufCMessage *vm) {
  return res_show_deleted(ctx, ((const Novacron__V1__Vm *)vm)->name);
}

static int show_snapshot(const cli_ctx *ctx, const ProtobufCMessage *snapshot) {
  if (!snapshot) return out_usage_error(ctx->name, "the server sent no snapshot");
  return res_show(ctx, snapshot, snapshot_cols, sizeof(snapshot_cols) / sizeof(snapshot_cols[0]),
                  decorate_snapshot);
}

static int show_snapshot_deleted(const cli_ctx *ctx, const ProtobufCMessage *snapshot) {
  return res_show_deleted(ctx, ((const Novacron__V1__VmSnapshot *)snapshot)->name);
}

/* ---- names and flags ---- */

/* "projects/{--project}/{collection}/{arg}" unless arg is a full name. */
static void project_child(const cli_ctx *ctx, char *buf, size_t len, const char *collection,
                          const char *arg) {
  char project[NAME_LEN];
  char prefix[NAME_LEN + 32];
  res_project(ctx, project, sizeof(project));
  snprintf(prefix, sizeof(prefix), "%s/%s/", project, collection);
  res_name(buf, len, prefix, arg);
}

static void vm_name(const cli_ctx *ctx, char *buf, size_t len, const char *arg) {
  project_child(ctx, buf, len, "vms", arg);
}

/* The snapshot named by "VM SNAPSHOT" or by one full snapshot name. 0, or
 * prints and returns the exit code. */
static int snapshot_name(const cli_ctx *ctx, char *buf, size_t len) {
  char vm[NAME_LEN];
  if (ctx->argc == 1) {
    if (!strstr(ctx->argv[0], "/snapshots/"))
      return out_usage_error(ctx->name,
                             "give VM SNAPSHOT, or the snapshot's full name "
                             "(projects/P/vms/VM/snapshots/ID)");
    snprintf(buf, len, "%s", ctx->argv[0]);
    return 0;
  }
  vm_name(ctx, vm, sizeof(vm), ctx->argv[0]);
  snprintf(buf, len, "%s/snapshots/%s", vm, res_last_segment(ctx->argv[1]));
  return 0;
}

/* An integer flag in [min, max] into *out (untouched when the flag is
 * absent). 0, or prints and returns EXIT_USAGE. */
static int int_flag(const cli_ctx *ctx, const char *flag, int64_t min, int64_t max, int64_t *out) {
  const char *text = cli_get(ctx, flag);
  int64_t v;
  if (!text) return 0;
  if (!res_parse_int64(text, &v) || v < min || v > max)
    return out_usage_error(ctx->name, "--%s must be a whole number from %lld to %lld, not \"%s\"",
                           flag, (long long)min, (long long)max, text);
  *out = v;
  return 0;
}

/* A duration flag into a google.protobuf.Duration (*set false when absent).
 * 0, or prints and returns EXIT_USAGE. */
static int duration_flag(const cli_ctx *ctx, const char *flag, Google__Protobuf__Duration *d,
                         bool *set) {
  const char *text = cli_get(ctx, flag);
  int64_t seconds;
  *set = false;
  if (!text) return 0;
  if (!res_parse_duration(text, &seconds))
    return out_usage_error(ctx->name, "--%s must be a duration like 30s or 5m, not \"%s\"", flag,
                           text);
  d->seconds = seconds;
  *set = true;
  return 0;
}

/* Reads --user-data-file (at most 64 KiB) into a new string; NULL when
 * the flag is absent. 0, or prints and returns the exit code. */
static int read_user_data(const cli_ctx *ctx, char **out) {
  const char *path = cli_get(ctx, "user-data-file");
  *out = NULL;
  if (!path) return 0;
  FILE *f = fopen(path, "rb");
  if (!f) return out_usage_error(ctx->name, "cannot read %s: %s", path, strerror(errno));
  char *buf = malloc(MAX_USER_DATA + 2);
  size_t n = buf ? fread(buf, 1, MAX_USER_DATA + 1, f) : 0;
  bool failed = buf && ferror(f);
  fclose(f);
  if (!buf) return out_usage_error(ctx->name, "out of memory");
  if (failed || n > MAX_USER_DATA || memchr(buf, '\0', n)) {
    free(buf);
    return out_usage_error(ctx->name, "%s must be a text file of at most 64 KiB", path);
  }
  buf[n] = '\0';
  *out = buf;
  return 0;
}

/* ---- typed calls, adapted for cmd_op_call and res_run_list ---- */

RES_LIST_CALL(list_vms, nc_vm_list, ListVmsRequest, ListVmsResponse)
RES_LIST_CALL(list_snapshots, nc_vm_list_snapshots, ListSnapshotsRequest, ListSnapshotsResponse)
RES_LIST_CALL(create_vm, nc_vm_create, CreateVmRequest, CreateVmResponse)
RES_LIST_CALL(delete_vm, nc_vm_delete, DeleteVmRequest, DeleteVmResponse)
RES_LIST_CALL(start_vm, nc_vm_start, StartVmRequest, StartVmResponse)
RES_LIST_CALL(stop_vm, nc_vm_stop, StopVmRequest, StopVmResponse)
RES_LIST_CALL(reboot_vm, nc_vm_reboot, RebootVmRequest, RebootVmResponse)
RES_LIST_CALL(pause_vm, nc_vm_pause, PauseVmRequest, PauseVmResponse)
RES_LIST_CALL(resume_vm, nc_vm_resume, ResumeVmRequest, ResumeVmResponse)
RES_LIST_CALL(resize_vm, nc_vm_resize, ResizeVmRequest, ResizeVmResponse)
RES_LIST_CALL(migrate_vm, nc_vm_migrate, MigrateVmRequest, MigrateVmResponse)
RES_LIST_CALL(clone_vm, nc_vm_clone, CloneVmRequest, CloneVmResponse)
RES_LIST_CALL(create_snapshot, nc_vm_create_snapshot, CreateSnapshotRequest, CreateSnapshotResponse)
RES_LIST_CALL(revert_snapshot, nc_vm_revert_snapshot, RevertSnapshotRequest, RevertSnapshotResponse)
RES_LIST_CALL(delete_snapshot, nc_vm_delete_snapshot, DeleteSnapshotRequest, DeleteSnapshotResponse)
RES_LIST_CALL(attach_volume, nc_vm_attach_volume, AttachVolumeRequest, AttachVolumeResponse)
RES_LIST_CALL(detach_volume, nc_vm_detach_volume, DetachVolumeRequest, DetachVolumeResponse)
RES_LIST_CALL(attach_nic, nc_vm_attach_nic, AttachNicRequest, AttachNicResponse)
RES_LIST_CALL(detach_nic, nc_vm_detach_nic, DetachNicRequest, DetachNicResponse)

#define VM_RESULT &novacron__v1__vm__descriptor
#define SNAPSHOT_RESULT &novacron__v1__vm_snapshot__descriptor

/* ---- reads ---- */

int cmd_vm_list(cli_ctx *ctx) {
  Novacron__V1__ListVmsRequest req = NOVACRON__V1__LIST_VMS_REQUEST__INIT;
  static const res_list list = {list_vms, "vms", vm_list_cols,
                                sizeof(vm_list_cols) / sizeof(vm_list_cols[0]), decorate_vm};
  char parent[NAME_LEN];
  nc_client *client = NULL;
  res_project(ctx, parent, sizeof(parent));
  req.parent = parent;
  int rc = cli_connect(ctx, &client);
  if (rc == 0) rc = res_run_list(ctx, client, &req.base, &list);
  nc_client_free(client);
  return rc;
}

int cmd_vm_get(cli_ctx *ctx) {
  Novacron__V1__GetVmRequest req = NOVACRON__V1__GET_VM_REQUEST__INIT;
  Novacron__V1__GetVmResponse *resp = NULL;
  char name[NAME_LEN];
  nc_client *client = NULL;
  nc_error err;
  vm_name(ctx, name, sizeof(name), ctx->argv[0]);
  req.name = name;
  int rc = cli_connect(ctx, &client);
  if (rc != 0) goto cleanup;
  nc_status st = nc_vm_get(client, &req, &resp, NULL, &err);
  rc = st != NC_OK ? out_sdk_error(ctx->name, st, &err)
                   : show_vm(ctx, resp->vm ? &resp->vm->base : NULL);
cleanup:
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}

int cmd_vm_stats(cli_ctx *ctx) {
  Novacron__V1__GetVmStatsRequest req = NOVACRON__V1__GET_VM_STATS_REQUEST__INIT;
  Novacron__V1__GetVmStatsResponse *resp = NULL;
  char name[NAME_LEN];
  nc_client *client = NULL;
  nc_error err;
  vm_name(ctx, name, sizeof(name), ctx->argv[0]);
  req.name = name;
  int rc = cli_connect(ctx, &client);
  if (rc != 0) goto cleanup;
  nc_status st = nc_vm_get_stats(client, &req, &resp, NULL, &err);
  if (st != NC_OK)
    rc = out_sdk_error(ctx->name, st, &err);
  else if (!resp->stats)
    rc = out_usage_error(ctx->name, "the server sent no stats");
  else
    rc = res_show(ctx, &resp->stats->base, stats_cols, sizeof(stats_cols) / sizeof(stats_cols[0]),
                  decorate_stats);
cleanup:
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}

/* ---- create, update, delete ---- */

int cmd_vm_create(cli_ctx *ctx) {
  Novacron__V1__CreateVmRequest req = NOVACRON__V1__CREATE_VM_REQUEST__INIT;
  Novacron__V1__Vm vm = NOVACRON__V1__VM__INIT;
  Novacron__V1__VmPlacement placement = NOVACRON__V1__VM_PLACEMENT__INIT;
  Novacron__V1__VmDisk disks[MAX_DISKS];
  Novacron__V1__VmDisk *disk_ptrs[MAX_DISKS];
  Novacron__V1__VmDiskNewVolume new_volumes[MAX_DISKS];
  char disk_names[MAX_DISKS][NAME_LEN];
  Novacron__V1__VmNic nics[MAX_NICS];
  Novacron__V1__VmNic *nic_ptrs[MAX_NICS];
  char nic_names[MAX_NICS][NAME_LEN];
  Novacron__V1__Label **labels = NULL;
  Novacron__V1__Label *storage = NULL;
  size_t nlabels = 0;
  char parent[NAME_LEN];
  char host[NAME_LEN];
  char *user_data = NULL;
  int64_t vcpus = 0, memory = 0, max_vcpus = 0, max_memory = 0;
  int firmware = 0;
  const char *text;
  int rc;

  /* VM: an id in --project, or a full name projects/P/vms/ID */
  const char *slash = strstr(ctx->argv[0], "/vms/");
  if (slash) {
    snprintf(parent, sizeof(parent), "%.*s", (int)(slash - ctx->argv[0]), ctx->argv[0]);
    req.vm_id = (char *)slash + 5;
  } else {
    res_project(ctx, parent, sizeof(parent));
    req.vm_id = ctx->argv[0];
  }
  req.parent = parent;
  req.vm = &vm;
  if (!cli_get(ctx, "vcpus") || !cli_get(ctx, "memory-mib"))
    return out_usage_error(ctx->name, "--vcpus and --memory-mib are required");
  if ((rc = int_flag(ctx, "vcpus", 1, MAX_VCPUS, &vcpus)) != 0 ||
      (rc = int_flag(ctx, "memory-mib", MIN_MEMORY_MIB, MAX_MEMORY_MIB, &memory)) != 0 ||
      (rc = int_flag(ctx, "max-vcpus", 1, MAX_VCPUS, &max_vcpus)) != 0 ||
      (rc = int_flag(ctx, "max-memory-mib", MIN_MEMORY_MIB, MAX_MEMORY_MIB, &max_memory)) != 0)
    return rc;
  vm.vcpus = (int32_t)vcpus;
  vm.memory_mib = memory;
  vm.max_vcpus = (int32_t)max_vcpus;
  vm.max_memory_mib = max_memory;
  if ((text = cli_get(ctx, "firmware"))) {
    if (!cmd_parse_enum(ctx, "firmware", text, &novacron__v1__vm__firmware__descriptor, "FIRMWARE_",
                        &firmware))
      return EXIT_USAGE;
    vm.firmware = (Novacron__V1__Vm__Firmware)firmware;
  }
  if ((text = cli_get(ctx, "description"))) vm.description = (char *)text;
  if ((text = cli_get(ctx, "machine-type"))) vm.machine_type = (char *)text;
  if ((text = cli_get(ctx, "host"))) {
    res_name(host, sizeof(host), "hosts/", text);
    placement.host = host;
    vm.placement = &placement;
  }

  /* disks: existing volumes (--disk), then new blank ones (--new-disk) */
  for (size_t i = 0; (text = cli_get_nth(ctx, "disk", i)); i++) {
    if (vm.n_disks == MAX_DISKS) return out_usage_error(ctx->name, "at most %d disks", MAX_DISKS);
    Novacron__V1__VmDisk *d = &disks[vm.n_disks];
    novacron__v1__vm_disk__init(d);
    project_child(ctx, disk_names[vm.n_disks], NAME_LEN, "volumes", text);
    d->source_case = NOVACRON__V1__VM_DISK__SOURCE_VOLUME;
    d->volume = disk_names[vm.n_disks];
    disk_ptrs[vm.n_disks++] = d;
  }
  for (size_t i = 0; (text = cli_get_nth(ctx, "new-disk", i)); i++) {
    int64_t gib;
    if (vm.n_disks == MAX_DISKS) return out_usage_error(ctx->name, "at most %d disks", MAX_DISKS);
    if (!res_parse_int64(text, &gib) || gib < 1)
      return out_usage_error(ctx->name, "--new-disk takes a size in GiB, not \"%s\"", text);
    Novacron__V1__VmDisk *d = &disks[vm.n_disks];
    Novacron__V1__VmDiskNewVolume *nv = &new_volumes[vm.n_disks];
    novacron__v1__vm_disk__init(d);
    novacron__v1__vm_disk_new_volume__init(nv);
    nv->size_gib = gib;
    d->source_case = NOVACRON__V1__VM_DISK__SOURCE_NEW_VOLUME;
    d->new_volume = nv;
    disk_ptrs[vm.n_disks++] = d;
  }
  vm.disks = vm.n_disks ? disk_ptrs : NULL;
  for (size_t i = 0; (text = cli_get_nth(ctx, "nic", i)); i++) {
    if (vm.n_nics == MAX_NICS) return out_usage_error(ctx->name, "at most %d NICs", MAX_NICS);
    Novacron__V1__VmNic *n = &nics[vm.n_nics];
    novacron__v1__vm_nic__init(n);
    project_child(ctx, nic_names[vm.n_nics], NAME_LEN, "networks", text);
    n->network = nic_names[vm.n_nics];
    nic_ptrs[vm.n_nics++] = n;
  }
  vm.nics = vm.n_nics ? nic_ptrs : NULL;
  req.start = cli_switch(ctx, "start");
  req.validate_only = cli_switch(ctx, "validate-only");
  if ((rc = res_labels(ctx, &labels, &storage, &nlabels)) != 0) goto cleanup;
  vm.labels = labels;
  vm.n_labels = nlabels;
  if ((rc = read_user_data(ctx, &user_data)) != 0) goto cleanup;
  if (user_data) vm.user_data = user_data;
  rc = cmd_op_call(ctx, &req.base, create_vm, VM_RESULT, show_vm);
cleanup:
  free(user_data);
  res_labels_free(labels, storage, nlabels);
  return rc;
}

int cmd_vm_update(cli_ctx *ctx) {
  Novacron__V1__UpdateVmRequest req = NOVACRON__V1__UPDATE_VM_REQUEST__INIT;
  Novacron__V1__Vm vm = NOVACRON__V1__VM__INIT;
  Novacron__V1__VmPlacement placement = NOVACRON__V1__VM_PLACEMENT__INIT;
  Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
  Novacron__V1__UpdateVmResponse *resp = NULL;
  Novacron__V1__Label **labels = NULL;
  Novacron__V1__Label *storage = NULL;
  size_t nlabels = 0;
  char *paths[3];
  char name[NAME_LEN];
  char host[NAME_LEN];
  char request_id[NC_UUID_LEN + 1];
  nc_client *client = NULL;
  nc_error err;
  int rc;

  if (cli_switch(ctx, "clear-labels") && cli_get_nth(ctx, "label", 0))
    return out_usage_error(ctx->name, "--clear-labels contradicts --label");
  if (cli_switch(ctx, "unpin") && cli_get(ctx, "pin-host"))
    return out_usage_error(ctx->name, "--unpin contradicts --pin-host");
  vm_name(ctx, name, sizeof(name), ctx->argv[0]);
  vm.name = name;
  if (cli_get(ctx, "etag")) vm.etag = (char *)cli_get(ctx, "etag");
  if (cli_get(ctx, "description")) {
    vm.description = (char *)cli_get(ctx, "description");
    paths[mask.n_paths++] = "description";
  }
  if ((rc = res_labels(ctx, &labels, &storage, &nlabels)) != 0) goto cleanup;
  if (nlabels || cli_switch(ctx, "clear-labels")) {
    vm.labels = labels;
    vm.n_labels = nlabels;
    paths[mask.n_paths++] = "labels";
  }
  if (cli_get(ctx, "pin-host") || cli_switch(ctx, "unpin")) {
    if (cli_get(ctx, "pin-host")) {
      res_name(host, sizeof(host), "hosts/", cli_get(ctx, "pin-host"));
      placement.host = host;
    }
    vm.placement = &placement;
    paths[mask.n_paths++] = "placement";
  }
  if (mask.n_paths == 0) {
    rc = out_usage_error(ctx->name,
                         "nothing to change: give --description, --label, --clear-labels, "
                         "--pin-host or --unpin");
    goto cleanup;
  }
  mask.paths = paths;
  req.vm = &vm;
  req.update_mask = &mask;
  if ((rc = res_request_id(ctx, request_id)) != 0) goto cleanup;
  req.request_id = request_id;
  if ((rc = cli_connect(ctx, &client)) != 0) goto cleanup;
  nc_call_options call_opts = {.deadline_ms = 0, .request_id = request_id};
  nc_status st = nc_vm_update(client, &req, &resp, &call_opts, &err);
  rc = st != NC_OK ? out_sdk_error(ctx->name, st, &err)
                   : show_vm(ctx, resp->vm ? &resp->vm->base : NULL);
cleanup:
  res_labels_free(labels, storage, nlabels);
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}

int cmd_vm_delete(cli_ctx *ctx) {
  Novacron__V1__DeleteVmRequest req = NOVACRON__V1__DELETE_VM_REQUEST__INIT;
  char name[NAME_LEN];
  vm_name(ctx, name, sizeof(name), ctx->argv[0]);
  req.name = name;
  if (cli_get(ctx, "etag")) req.etag = (char *)cli_get(ctx, "etag");
  req.delete_volumes = cli_switch(ctx, "delete-volumes");
  req.force = cli_switch(ctx, "force");
  return cmd_op_call(ctx, &req.base, delete_vm, VM_RESULT, show_vm_deleted);
}

/* ---- power ---- */

int cmd_vm_start(cli_ctx *ctx) {
  Novacron__V1__StartVmRequest req = NOVACRON__V1__START_VM_REQUEST__INIT;
  char name[NAME_LEN];
  vm_name(ctx, name, sizeof(name), ctx->argv[0]);
  req.name = name;
  return cmd_op_call(ctx, &req.base, start_vm, VM_RESULT, show_vm);
}

int cmd_vm_stop(cli_ctx *ctx) {
  Novacron__V1__StopVmRequest req = NOVACRON__V1__STOP_VM_REQUEST__INIT;
  Google__Protobuf__Duration timeout = GOOGLE__PROTOBUF__DURATION__INIT;
  char name[NAME_LEN];
  bool has_timeout;
  int rc;
  vm_name(ctx, name, sizeof(name), ctx->argv[0]);
  req.name = name;
  req.force = cli_switch(ctx, "force");
  req.force_on_timeout = cli_switch(ctx, "force-on-timeout");
  if ((rc = duration_flag(ctx, "stop-timeout", &timeout, &has_timeout)) != 0) return rc;
  if (has_timeout && req.force)
    return out_usage_error(ctx->name, "--force powers off at once: it takes no --stop-timeout");
  if (has_timeout) req.timeout = &timeout;
  return cmd_op_call(ctx, &req.base, stop_vm, VM_RESULT, show_vm);
}

int cmd_vm_reboot(cli_ctx *ctx) {
  Novacron__V1__RebootVmRequest req = NOVACRON__V1__REBOOT_VM_REQUEST__INIT;
  char name[NAME_LEN];
  vm_name(ctx, name, sizeof(name), ctx->argv[0]);
  req.name = name;
  req.force = cli_switch(ctx, "force");
  return cmd_op_call(ctx, &req.base, reboot_vm, VM_RESULT, show_vm);
}

int cmd_vm_pause(cli_ctx *ctx) {
  Novacron__V1__PauseVmRequest req = NOVACRON__V1__PAUSE_VM_REQUEST__INIT;
  char name[NAME_LEN];
  vm_name(ctx, name, sizeof(name), ctx->argv[0]);
  req.name = name;
  return cmd_op_call(ctx, &req.base, pause_vm, VM_RESULT, show_vm);
}

int cmd_vm_resume(cli_ctx *ctx) {
  Novacron__V1__ResumeVmRequest req = NOVACRON__V1__RESUME_VM_REQUEST__INIT;
  char name[NAME_LEN];
  vm_name(ctx, name, sizeof(name), ctx->argv[0]);
  req.name = name;
  return cmd_op_call(ctx, &req.base, resume_vm, VM_RESULT, show_vm);
}

/* ---- resize, migrate, clone ---- */

int cmd_vm_resize(cli_ctx *ctx) {
  Novacron__V1__ResizeVmRequest req = NOVACRON__V1__RESIZE_VM_REQUEST__INIT;
  char name[NAME_LEN];
  int64_t vcpus = 0, memory = 0, max_vcpus = 0, max_memory = 0;
  int rc;
  if ((rc = int_flag(ctx, "vcpus", 1, MAX_VCPUS, &vcpus)) != 0 ||
      (rc = int_flag(ctx, "memory-mib", MIN_MEMORY_MIB, MAX_MEMORY_MIB, &memory)) != 0 ||
      (rc = int_flag(ctx, "max-vcpus", 1, MAX_VCPUS, &max_vcpus)) != 0 ||
      (rc = int_flag(ctx, "max-memory-mib", MIN_MEMORY_MIB, MAX_MEMORY_MIB, &max_memory)) != 0)
    return rc;
  if (!vcpus && !memory && !max_vcpus && !max_memory)
    return out_usage_error(ctx->name,
                           "nothing to change: give --vcpus, --memory-mib, --max-vcpus or "
                           "--max-memory-mib");
  vm_name(ctx, name, sizeof(name), ctx->argv[0]);
  req.name = name;
  req.vcpus = (int32_t)vcpus;
  req.memory_mib = memory;
  req.max_vcpus = (int32_t)max_vcpus;
  req.max_memory_mib = max_memory;
  req.live = cli_switch(ctx, "live");
  return cmd_op_call(ctx, &req.base, resize_vm, VM_RESULT, show_vm);
}

int cmd_vm_migrate(cli_ctx *ctx) {
  Novacron__V1__MigrateVmRequest req = NOVACRON__V1__MIGRATE_VM_REQUEST__INIT;
  char name[NAME_LEN];
  char target[NAME_LEN];
  vm_name(ctx, name, sizeof(name), ctx->argv[0]);
  req.name = name;
  if (cli_get(ctx, "target-host")) {
    res_name(target, sizeof(target), "hosts/", cli_get(ctx, "target-host"));
    req.target_host = target;
  }
  req.live = cli_switch(ctx, "live");
  req.copy_storage = cli_switch(ctx, "copy-storage");
  return cmd_op_call(ctx, &req.base, migrate_vm, VM_RESULT, show_vm);
}

int cmd_vm_clone(cli_ctx *ctx) {
  Novacron__V1__CloneVmRequest req = NOVACRON__V1__CLONE_VM_REQUEST__INIT;
  Novacron__V1__Label **labels = NULL;
  Novacron__V1__Label *storage = NULL;
  size_t nlabels = 0;
  char name[NAME_LEN];
  int rc;
  vm_name(ctx, name, sizeof(name), ctx->argv[0]);
  req.name = name;
  req.vm_id = (char *)res_last_segment(ctx->argv[1]);
  req.disk_mode = cli_switch(ctx, "linked")
                      ? NOVACRON__V1__CLONE_VM_REQUEST__DISK_MODE__DISK_MODE_LINKED
                      : NOVACRON__V1__CLONE_VM_REQUEST__DISK_MODE__DISK_MODE_FULL;
  if (cli_get(ctx, "description")) req.description = (char *)cli_get(ctx, "description");
  req.start = cli_switch(ctx, "start");
  if ((rc = res_labels(ctx, &labels, &storage, &nlabels)) == 0) {
    req.labels = labels;
    req.n_labels = nlabels;
    rc = cmd_op_call(ctx, &req.base, clone_vm, VM_RESULT, show_vm);
  }
  res_labels_free(labels, storage, nlabels);
  return rc;
}

/* ---- snapshots ---- */

int cmd_vm_snapshot_create(cli_ctx *ctx) {
  Novacron__V1__CreateSnapshotRequest req = NOVACRON__V1__CREATE_SNAPSHOT_REQUEST__INIT;
  Novacron__V1__VmSnapshot snapshot = NOVACRON__V1__VM_SNAPSHOT__INIT;
  Novacron__V1__Label **labels = NULL;
  Novacron__V1__Label *storage = NULL;
  size_t nlabels = 0;
  char parent[NAME_LEN];
  int rc;
  vm_name(ctx, parent, sizeof(parent), ctx->argv[0]);
  req.parent = parent;
  req.snapshot_id = (char *)res_last_segment(ctx->argv[1]);
  req.snapshot = &snapshot;
  req.quiesce = cli_switch(ctx, "quiesce");
  if (cli_get(ctx, "description")) snapshot.description = (char *)cli_get(ctx, "description");
  snapshot.include_memory = cli_switch(ctx, "include-memory");
  if ((rc = res_labels(ctx, &labels, &storage, &nlabels)) == 0) {
    snapshot.labels = labels;
    snapshot.n_labels = nlabels;
    rc = cmd_op_call(ctx, &req.base, create_snapshot, SNAPSHOT_RESULT, show_snapshot);
  }
  res_labels_free(labels, storage, nlabels);
  return rc;
}

int cmd_vm_snapshot_list(cli_ctx *ctx) {
  Novacron__V1__ListSnapshotsRequest req = NOVACRON__V1__LIST_SNAPSHOTS_REQUEST__INIT;
  static const res_list list = {list_snapshots, "snapshots", snapshot_list_cols,
                                sizeof(snapshot_list_cols) / sizeof(snapshot_list_cols[0]),
                                decorate_snapshot};
  char parent[NAME_LEN];
  nc_client *client = NULL;
  vm_name(ctx, parent, sizeof(parent), ctx->argv[0]);
  req.parent = parent;
  int rc = cli_connect(ctx, &client);
  if (rc == 0) rc = res_run_list(ctx, client, &req.base, &list);
  nc_client_free(client);
  return rc;
}

int cmd_vm_snapshot_get(cli_ctx *ctx) {
  Novacron__V1__GetSnapshotRequest req = NOVACRON__V1__GET_SNAPSHOT_REQUEST__INIT;
  Novacron__V1__GetSnapshotResponse *resp = NULL;
  char name[NAME_LEN * 2];
  nc_client *client = NULL;
  nc_error err;
  int rc = snapshot_name(ctx, name, sizeof(name));
  if (rc != 0) return rc;
  req.name = name;
  if ((rc = cli_connect(ctx, &client)) != 0) goto cleanup;
  nc_status st = nc_vm_get_snapshot(client, &req, &resp, NULL, &err);
  rc = st != NC_OK ? out_sdk_error(ctx->name, st, &err)
                   : show_snapshot(ctx, resp->snapshot ? &resp->snapshot->base : NULL);
cleanup:
  nc_message_free(resp ? &resp->base : NULL);
  nc_client_free(client);
  return rc;
}

int cmd_vm_snapshot_revert(cli_ctx *ctx) {
  Novacron__V1__RevertSnapshotRequest req = NOVACRON__V1__REVERT_SNAPSHOT_REQUEST__INIT;
  char name[NAME_LEN * 2];
  int rc = snapshot_name(ctx, name, sizeof(name));
  if (rc != 0) return rc;
  req.name = name;
  return cmd_op_call(ctx, &req.base, revert_snapshot, VM_RESULT, show_vm);
}

int cmd_vm_snapshot_delete(cli_ctx *ctx) {
  Novacron__V1__DeleteSnapshotRequest req = NOVACRON__V1__DELETE_SNAPSHOT_REQUEST__INIT;
  char name[NAME_LEN * 2];
  int rc = snapshot_name(ctx, name, sizeof(name));
  if (rc != 0) return rc;
  req.name = name;
  if (cli_get(ctx, "etag")) req.etag = (char *)cli_get(ctx, "etag");
  req.delete_children = cli_switch(ctx, "delete-children");
  return cmd_op_call(ctx, &req.base, delete_snapshot, SNAPSHOT_RESULT, show_snapshot_deleted);
}

/* ---- devices ---- */

int cmd_vm_attach_volume(cli_ctx *ctx) {
  Novacron__V1__AttachVolumeRequest req = NOVACRON__V1__ATTACH_VOLUME_REQUEST__INIT;
  Novacron__V1__VmDisk disk = NOVACRON__V1__VM_DISK__INIT;
  char name[NAME_LEN];
  char volume[NAME_LEN];
  int64_t boot_index = 0;
  int bus = 0;
  int rc;
  if (cli_get(ctx, "bus") && !cmd_parse_enum(ctx, "bus", cli_get(ctx, "bus"),
                                             &novacron__v1__vm_disk__bus__descriptor, "BUS_", &bus))
    return EXIT_USAGE;
  if ((rc = int_flag(ctx, "boot-index", 0, INT32_MAX, &boot_index)) != 0) return rc;
  vm_name(ctx, name, sizeof(name), ctx->argv[0]);
  project_child(ctx, volume, sizeof(volume), "volumes", ctx->argv[1]);
  req.name = name;
  disk.source_case = NOVACRON__V1__VM_DISK__SOURCE_VOLUME;
  disk.volume = volume;
  disk.bus = (Novacron__V1__VmDisk__Bus)bus;
  disk.boot_index = (int32_t)boot_index;
  disk.read_only = cli_switch(ctx, "read-only");
  req.disk = &disk;
  return cmd_op_call(ctx, &req.base, attach_volume, VM_RESULT, show_vm);
}

int cmd_vm_detach_volume(cli_ctx *ctx) {
  Novacron__V1__DetachVolumeRequest req = NOVACRON__V1__DETACH_VOLUME_REQUEST__INIT;
  char name[NAME_LEN];
  char volume[NAME_LEN];
  vm_name(ctx, name, sizeof(name), ctx->argv[0]);
  project_child(ctx, volume, sizeof(volume), "volumes", ctx->argv[1]);
  req.name = name;
  req.volume = volume;
  return cmd_op_call(ctx, &req.base, detach_volume, VM_RESULT, show_vm);
}

int cmd_vm_attach_nic(cli_ctx *ctx) {
  Novacron__V1__AttachNicRequest req = NOVACRON__V1__ATTACH_NIC_REQUEST__INIT;
  Novacron__V1__VmNic nic = NOVACRON__V1__VM_NIC__INIT;
  char name[NAME_LEN];
  char network[NAME_LEN];
  int64_t boot_index = 0;
  int model = 0;
  int rc;
  if (cli_get(ctx, "model") &&
      !cmd_parse_enum(ctx, "model", cli_get(ctx, "model"), &novacron__v1__vm_nic__model__descriptor,
                      "MODEL_", &model))
    return EXIT_USAGE;
  if ((rc = int_flag(ctx, "boot-index", 0, INT32_MAX, &boot_index)) != 0) return rc;
  vm_name(ctx, name, sizeof(name), ctx->argv[0]);
  project_child(ctx, network, sizeof(network), "networks", ctx->argv[1]);
  req.name = name;
  nic.network = network;
  if (cli_get(ctx, "mac")) nic.mac = (char *)cli_get(ctx, "mac");
  nic.model = (Novacron__V1__VmNic__Model)model;
  nic.boot_index = (int32_t)boot_index;
  req.nic = &nic;
  return cmd_op_call(ctx, &req.base, attach_nic, VM_RESULT, show_vm);
}

int cmd_vm_detach_nic(cli_ctx *ctx) {
  Novacron__V1__DetachNicRequest req = NOVACRON__V1__DETACH_NIC_REQUEST__INIT;
  char name[NAME_LEN];
  vm_name(ctx, name, sizeof(name), ctx->argv[0]);
  req.name = name;
  req.mac = ctx->argv[1];
  return cmd_op_call(ctx, &req.base, detach_nic, VM_RESULT, show_vm);
}
