/*
 * host.c - the method table of novacron.v1.HostService.
 */
#include "api/services.h"
#include "novacron/v1/host.pb-c.h"

const api_service api_host_service = {&novacron__v1__host_service__descriptor, NULL, 0};
