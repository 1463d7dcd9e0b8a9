/*
 * operations.c - the method table of novacron.v1.OperationsService: per
 * method, the access the authorization interceptor (api/authz.c) requires
 * and the request field naming the operation or project. Operations are
 * `projects/{project}/operations/{op}` (reads need ROLE_VIEWER,
 * cancelling ROLE_OPERATOR) or `operations/{op}` for system-level work,
 * which names no project and so is left to system administrators. No
 * handlers yet: the methods answer UNIMPLEMENTED after authorization.
 */
#include "api/services.h"
#include "novacron/v1/operations.pb-c.h"

#define ROW(n, f, acc, sc) \
  { .name = n, .kind = RPC_UNARY, .flags = f, .access = acc, .scope = sc }
/* Every change is keyed by request_id, so it is retry-safe too. */
enum { RO = RPC_IDEMPOTENT, MUT = RPC_MUTATING | RPC_IDEMPOTENT };

static const rpc_method_row rows[] = {
    ROW("GetOperation", RO, API_VIEWER, "name"),
    /* projects/- passes authorization; operations.proto keeps it to system
     * administrators, which the handler enforces */
    ROW("ListOperations", RO, API_VIEWER, "parent"),
    ROW("WaitOperation", RO, API_VIEWER, "name"),
    ROW("CancelOperation", MUT, API_OPERATOR, "name"),
};

const api_service api_operations_service = {&novacron__v1__operations_service__descriptor,
                                            API_ROWS(rows)};
