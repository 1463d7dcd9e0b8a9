/*
 * services.h - the method tables of the novacron.v1 services.
 *
 * Each service file (api/vm.c, api/identity.c, ...) defines one api_service:
 * its descriptor and a row per method with the access the caller needs
 * (api/access.h), the request field naming the resource or parent it acts
 * on, and its flags. A row without a handler answers UNIMPLEMENTED (after
 * authentication and authorization) until the issue that builds it lands.
 */
#ifndef NC_API_SERVICES_H
#define NC_API_SERVICES_H

#include <stddef.h>

#include "api/access.h"
#include "rpc/rpc.h"

typedef struct api_service {
  const ProtobufCServiceDescriptor *desc;
  const rpc_method_row *rows;
  size_t nrows;
} api_service;

extern const api_service api_vm_service;
extern const api_service api_host_service;
extern const api_service api_storage_service;
extern const api_service api_network_service;
extern const api_service api_identity_service;
extern const api_service api_backup_service;
extern const api_service api_federation_service;
extern const api_service api_operations_service;
extern const api_service api_event_service;

#define API_ROWS(rows) rows, sizeof(rows) / sizeof((rows)[0])

#endif
