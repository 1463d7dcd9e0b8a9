/*
 * storage.c - the method table of novacron.v1.StorageService: per method,
 * the access the authorization interceptor (api/authz.c) requires and the
 * request field naming the pool, volume, host or project it acts on.
 * Pools are infrastructure (storage.proto): creating and deleting them
 * needs a system administrator, any authenticated principal may read them.
 * Volumes belong to projects: reads need ROLE_VIEWER, changes
 * ROLE_OPERATOR. No handlers yet: the methods answer UNIMPLEMENTED after
 * authorization.
 */
#include "api/services.h"
#include "novacron/v1/storage.pb-c.h"

#define ROW(n, f, acc, sc) \
  { .name = n, .kind = RPC_UNARY, .flags = f, .access = acc, .scope = sc }
/* Every change is keyed by request_id, so it is retry-safe too. */
enum { RO = RPC_IDEMPOTENT, MUT = RPC_MUTATING | RPC_IDEMPOTENT };

static const rpc_method_row rows[] = {
    ROW("CreatePool", MUT, API_SYSTEM_ADMIN, "parent"), /* hosts/{host} */
    ROW("GetPool", RO, API_AUTHENTICATED, "name"),
    ROW("ListPools", RO, API_AUTHENTICATED, "parent"), /* hosts/{host} or hosts/- */
    ROW("DeletePool", MUT, API_SYSTEM_ADMIN, "name"),
    ROW("CreateVolume", MUT, API_OPERATOR, "parent"),
    ROW("GetVolume", RO, API_VIEWER, "name"),
    ROW("ListVolumes", RO, API_VIEWER, "parent"),
    ROW("ResizeVolume", MUT, API_OPERATOR, "name"),
    ROW("CloneVolume", MUT, API_OPERATOR, "name"), /* the source; the copy stays in its project */
    ROW("DeleteVolume", MUT, API_OPERATOR, "name"),
};

const api_service api_storage_service = {&novacron__v1__storage_service__descriptor,
                                         API_ROWS(rows)};
