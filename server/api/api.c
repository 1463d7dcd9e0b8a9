/*
 * api.c - registers every novacron.v1 service with the runtime. Services
 * whose handlers have not been built yet are registered with no rows: their
 * methods exist (reflection lists them, clients can call them) and answer
 * UNIMPLEMENTED with the method's name.
 */
#include "api/api.h"

#include "novacron/v1/backup.pb-c.h"
#include "novacron/v1/event.pb-c.h"
#include "novacron/v1/federation.pb-c.h"
#include "novacron/v1/host.pb-c.h"
#include "novacron/v1/identity.pb-c.h"
#include "novacron/v1/network.pb-c.h"
#include "novacron/v1/operations.pb-c.h"
#include "novacron/v1/storage.pb-c.h"
#include "novacron/v1/vm.pb-c.h"

static const ProtobufCServiceDescriptor *const services[] = {
    &novacron__v1__vm_service__descriptor,         &novacron__v1__host_service__descriptor,
    &novacron__v1__storage_service__descriptor,    &novacron__v1__network_service__descriptor,
    &novacron__v1__identity_service__descriptor,   &novacron__v1__backup_service__descriptor,
    &novacron__v1__federation_service__descriptor, &novacron__v1__operations_service__descriptor,
    &novacron__v1__event_service__descriptor,
};

int api_register_all(rpc_server *srv, char *errbuf, size_t errlen) {
  for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++) {
    if (rpc_server_add_service(srv, services[i], NULL, 0, NULL, errbuf, errlen) != 0) return -1;
  }
  return 0;
}
