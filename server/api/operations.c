/*
 * operations.c - the method table of novacron.v1.OperationsService: per
 * method, the access the authorization interceptor (api/authz.c) requires
 * and the request field naming the operation or project. Operations are
 * `projects/{project}/operations/{op}` (reads need ROLE_VIEWER,
 * cancelling ROLE_OPERATOR) or `operations/{op}` for system-level work,
 * which names no project and so is left to system administrators. No
 * handlers yet: the methods answer UNIMPLEMENTED after authorization.
 */
#include "api/compute.h"
#include "api/services.h"
#include "novacron/v1/operations.pb-c.h"

#define ROW(n, f, acc, sc, h) \
  { .name = n, .kind = RPC_UNARY, .handler = h, .flags = f, .access = acc, .scope = sc }
/* Every change is keyed by request_id, so it is retry-safe too. */
enum { RO = RPC_IDEMPOTENT, MUT = RPC_MUTATING | RPC_IDEMPOTENT };

API_COMPUTE_HANDLER(get_operation, GetOperationRequest, GetOperationResponse)
API_COMPUTE_HANDLER(list_operations, ListOperationsRequest, ListOperationsResponse)
API_COMPUTE_HANDLER(cancel_operation, CancelOperationRequest, CancelOperationResponse)
/* WaitOperation: bounded by the request's timeout and the call's deadline. */
static int h_wait_operation(rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp,
                            void *ctx) {
  api_ctx *c = ctx;
  char msg[512];
  core_call cc;
  api_core_call(call, &cc, msg, sizeof(msg));
  if (!c->compute) return rpc_fail(call, 14, "the compute service is not running");
  int code = core_wait_operation(c->compute, &cc, (const Novacron__V1__WaitOperationRequest *)req,
                                 rpc_call_deadline_remaining_ms(call),
                                 (Novacron__V1__WaitOperationResponse *)resp);
  return code ? rpc_fail(call, code, "%s", msg) : 0;
}

static const rpc_method_row rows[] = {
    ROW("GetOperation", RO, API_VIEWER, "name", h_get_operation),
    /* projects/- passes authorization; operations.proto keeps it to system
     * administrators, which the handler enforces */
    ROW("ListOperations", RO, API_VIEWER, "parent", h_list_operations),
    ROW("WaitOperation", RO, API_VIEWER, "name", h_wait_operation),
    ROW("CancelOperation", MUT, API_OPERATOR, "name", h_cancel_operation),
};

const api_service api_operations_service = {&novacron__v1__operations_service__descriptor,
                                            API_ROWS(rows)};
