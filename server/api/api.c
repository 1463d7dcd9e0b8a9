/*
 * api.c - registers every novacron.v1 service with the runtime, each with
 * its method table (api/services.h).
 */
#include "api/api.h"

#include "api/services.h"

static const api_service *const services[] = {
    &api_vm_service,         &api_host_service,       &api_storage_service,
    &api_network_service,    &api_identity_service,   &api_backup_service,
    &api_federation_service, &api_operations_service, &api_event_service,
};

int api_register_all(rpc_server *srv, api_ctx *ctx, char *errbuf, size_t errlen) {
  for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++) {
    const api_service *s = services[i];
    if (rpc_server_add_service(srv, s->desc, s->rows, s->nrows, ctx, errbuf, errlen) != 0)
      return -1;
  }
  return 0;
}
