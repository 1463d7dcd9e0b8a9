/*
 * vm.c - the method table of novacron.v1.VmService: per method, the access
 * the authorization interceptor (api/authz.c) requires and the request
 * field naming the VM, snapshot or project it acts on. Reads need
 * ROLE_VIEWER, everything else ROLE_OPERATOR (vm.proto). No handlers yet:
 * the methods answer UNIMPLEMENTED after authorization.
 */
#include "api/services.h"
#include "novacron/v1/vm.pb-c.h"

#define ROW(n, f, acc, sc) \
  { .name = n, .kind = RPC_UNARY, .flags = f, .access = acc, .scope = sc }
/* Every change is keyed by request_id, so it is retry-safe too. */
enum { RO = RPC_IDEMPOTENT, MUT = RPC_MUTATING | RPC_IDEMPOTENT };

static const rpc_method_row rows[] = {
    ROW("CreateVm", MUT, API_OPERATOR, "parent"),
    ROW("GetVm", RO, API_VIEWER, "name"),
    ROW("ListVms", RO, API_VIEWER | API_ACROSS_PROJECTS, "parent"), /* the handler filters */
    ROW("UpdateVm", MUT, API_OPERATOR, "vm.name"),
    ROW("DeleteVm", MUT, API_OPERATOR, "name"),
    ROW("StartVm", MUT, API_OPERATOR, "name"),
    ROW("StopVm", MUT, API_OPERATOR, "name"),
    ROW("RebootVm", MUT, API_OPERATOR, "name"),
    ROW("PauseVm", MUT, API_OPERATOR, "name"),
    ROW("ResumeVm", MUT, API_OPERATOR, "name"),
    ROW("ResizeVm", MUT, API_OPERATOR, "name"),
    ROW("MigrateVm", MUT, API_OPERATOR, "name"),
    ROW("CloneVm", MUT, API_OPERATOR, "name"),
    /* a snapshot's parent is its VM, projects/{project}/vms/{vm} */
    ROW("CreateSnapshot", MUT, API_OPERATOR, "parent"),
    ROW("GetSnapshot", RO, API_VIEWER, "name"),
    ROW("ListSnapshots", RO, API_VIEWER, "parent"),
    ROW("RevertSnapshot", MUT, API_OPERATOR, "name"),
    ROW("DeleteSnapshot", MUT, API_OPERATOR, "name"),
    ROW("AttachVolume", MUT, API_OPERATOR, "name"),
    ROW("DetachVolume", MUT, API_OPERATOR, "name"),
    ROW("AttachNic", MUT, API_OPERATOR, "name"),
    ROW("DetachNic", MUT, API_OPERATOR, "name"),
    ROW("GetVmStats", RO, API_VIEWER, "name"),
};

const api_service api_vm_service = {&novacron__v1__vm_service__descriptor, API_ROWS(rows)};
