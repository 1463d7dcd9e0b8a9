/*
 * vm_lifecycle.c - drive one VM through its life with the C SDK: create a
 * small diskless VM, start, pause, resume, snapshot, stop and delete it,
 * waiting for each Operation and printing the state it left the VM in.
 *
 *   cc vm_lifecycle.c $(pkg-config --cflags --libs novacron) -o vm_lifecycle
 *   NOVACRON_PASSWORD=... ./vm_lifecycle TARGET CA_FILE PROJECT [HOST [VM_ID]]
 *
 * HOST pins the VM (e.g. `qemu` for hosts/qemu); without it the scheduler
 * chooses. VM_ID defaults to `sdk-demo`. The user is $NOVACRON_USER or
 * admin. Exit 0 when every step succeeded, 1 otherwise (the VM is deleted
 * on the way out if it was created).
 */
#include <novacron/compute.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, nc_status st, const nc_error *err) {
  fprintf(stderr, "vm_lifecycle: %s: %s", what, nc_strerror(st));
  if (st == NC_ERR_RPC) fprintf(stderr, " (%s)", nc_grpc_code_name(err->code));
  if (err->message[0]) fprintf(stderr, ": %s", err->message);
  fputc('\n', stderr);
  return 1;
}

/* Waits for `op` and prints what it produced; NC_OK when it succeeded. */
static nc_status finish(nc_client *client, const char *step, const Novacron__V1__Operation *op,
                        nc_error *err) {
  Novacron__V1__Operation *done = NULL;
  ProtobufCMessage *out = NULL;
  nc_status st = nc_operation_wait(client, op->name, 300000, 0, &done, err);
  const ProtobufCMessageDescriptor *type = strcmp(step, "snapshot") == 0
                                               ? &novacron__v1__vm_snapshot__descriptor
                                               : &novacron__v1__vm__descriptor;
  if (st == NC_OK) st = nc_operation_result(done, type, &out, err);
  if (st == NC_OK && type == &novacron__v1__vm__descriptor) {
    const Novacron__V1__Vm *vm = (const Novacron__V1__Vm *)out;
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&novacron__v1__vm__state__descriptor, vm->state);
    printf("%-9s %s on %s: %s\n", step, vm->name, vm->host, v ? v->name : "?");
  } else if (st == NC_OK) {
    const Novacron__V1__VmSnapshot *s = (const Novacron__V1__VmSnapshot *)out;
    printf("%-9s %s: %s\n", step, s->name,
           s->state == NOVACRON__V1__VM_SNAPSHOT__STATE__STATE_READY ? "READY" : "not ready");
  }
  if (out) nc_message_free(out);
  if (done) nc_message_free(&done->base);
  return st;
}

#define RID(req)                                   \
  char rid_##req[NC_UUID_LEN + 1];                 \
  nc_new_request_id(rid_##req, sizeof(rid_##req)); \
  req.request_id = rid_##req

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: vm_lifecycle TARGET CA_FILE PROJECT [HOST [VM_ID]]\n");
    return 2;
  }
  const char *password = getenv("NOVACRON_PASSWORD");
  const char *user = getenv("NOVACRON_USER") ? getenv("NOVACRON_USER") : "admin";
  const char *host = argc > 4 && *argv[4] ? argv[4] : NULL;
  const char *vm_id = argc > 5 ? argv[5] : "sdk-demo";
  if (!password) {
    fprintf(stderr, "vm_lifecycle: set NOVACRON_PASSWORD to the password of %s\n", user);
    return 1;
  }
  nc_options *opts = NULL;
  nc_client *client = NULL;
  nc_error err;
  nc_status st;
  int rc = 1;
  bool created = false;
  char parent[96], name[192], hostname[96], snapshot_parent[192];
  snprintf(parent, sizeof(parent), "projects/%s", argv[3]);
  snprintf(name, sizeof(name), "%s/vms/%s", parent, vm_id);
  snprintf(snapshot_parent, sizeof(snapshot_parent), "%s", name);
  if ((st = nc_options_new(&opts)) != NC_OK || (st = nc_options_set_target(opts, argv[1])) ||
      (st = nc_options_set_tls_ca_file(opts, argv[2]))) {
    fprintf(stderr, "vm_lifecycle: options: %s\n", nc_strerror(st));
    goto out;
  }
  if ((st = nc_client_new(opts, &client, &err)) != NC_OK) {
    rc = fail("connect", st, &err);
    goto out;
  }
  if ((st = nc_client_login(client, user, password, &err)) != NC_OK) {
    rc = fail("login", st, &err);
    goto out;
  }

  /* create: 1 vCPU (up to 2 live), 128 MiB, no disks, no NICs */
  Novacron__V1__Vm spec = NOVACRON__V1__VM__INIT;
  Novacron__V1__VmPlacement pl = NOVACRON__V1__VM_PLACEMENT__INIT;
  spec.vcpus = 1;
  spec.max_vcpus = 2;
  spec.memory_mib = 128;
  spec.description = "created by examples/c/vm_lifecycle.c";
  if (host) {
    snprintf(hostname, sizeof(hostname), "hosts/%s", host);
    pl.host = hostname;
    spec.placement = &pl;
  }
  Novacron__V1__CreateVmRequest create = NOVACRON__V1__CREATE_VM_REQUEST__INIT;
  create.parent = parent;
  create.vm_id = (char *)vm_id;
  create.vm = &spec;
  RID(create);
  Novacron__V1__CreateVmResponse *cr = NULL;
  if ((st = nc_vm_create(client, &create, &cr, NULL, &err)) != NC_OK) {
    rc = fail("CreateVm", st, &err);
    goto out;
  }
  st = finish(client, "create", cr->operation, &err);
  nc_message_free(&cr->base);
  if (st != NC_OK) {
    rc = fail("create", st, &err);
    goto out;
  }
  created = true;

  /* the power verbs, each waited for */
#define VERB(Type, TYPE, fn, step, ...)                                     \
  do {                                                                      \
    Novacron__V1__##Type##Request r = NOVACRON__V1__##TYPE##_REQUEST__INIT; \
    r.name = name;                                                          \
    __VA_ARGS__;                                                            \
    RID(r);                                                                 \
    Novacron__V1__##Type##Response *resp = NULL;                            \
    if ((st = fn(client, &r, &resp, NULL, &err)) != NC_OK) {                \
      rc = fail(#Type, st, &err);                                           \
      goto out;                                                             \
    }                                                                       \
    st = finish(client, step, resp->operation, &err);                       \
    nc_message_free(&resp->base);                                           \
    if (st != NC_OK) {                                                      \
      rc = fail(step, st, &err);                                            \
      goto out;                                                             \
    }                                                                       \
  } while (0)

  VERB(StartVm, START_VM, nc_vm_start, "start", (void)0);
  VERB(PauseVm, PAUSE_VM, nc_vm_pause, "pause", (void)0);
  VERB(ResumeVm, RESUME_VM, nc_vm_resume, "resume", (void)0);

  Novacron__V1__CreateSnapshotRequest snap = NOVACRON__V1__CREATE_SNAPSHOT_REQUEST__INIT;
  snap.parent = snapshot_parent;
  snap.snapshot_id = "before-stop";
  RID(snap);
  Novacron__V1__CreateSnapshotResponse *sr = NULL;
  if ((st = nc_vm_create_snapshot(client, &snap, &sr, NULL, &err)) != NC_OK) {
    rc = fail("CreateSnapshot", st, &err);
    goto out;
  }
  st = finish(client, "snapshot", sr->operation, &err);
  nc_message_free(&sr->base);
  if (st != NC_OK) {
    rc = fail("snapshot", st, &err);
    goto out;
  }

  /* a guest without an operating system ignores ACPI: power it off */
  VERB(StopVm, STOP_VM, nc_vm_stop, "stop", r.force = true);
  VERB(DeleteVm, DELETE_VM, nc_vm_delete, "delete", (void)0);
  created = false;
  rc = 0;
out:
  if (created) { /* best effort, so a failed run leaves nothing behind */
    Novacron__V1__DeleteVmRequest d = NOVACRON__V1__DELETE_VM_REQUEST__INIT;
    Novacron__V1__DeleteVmResponse *dr = NULL;
    d.name = name;
    d.force = true;
    if (nc_vm_delete(client, &d, &dr, NULL, &err) == NC_OK) {
      finish(client, "delete", dr->operation, &err);
      nc_message_free(&dr->base);
    }
  }
  nc_client_free(client);
  nc_options_free(opts);
  return rc;
}
