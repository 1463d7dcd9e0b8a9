/*
 * vm.c - the method table of novacron.v1.VmService.
 */
#include "api/services.h"
#include "novacron/v1/vm.pb-c.h"

const api_service api_vm_service = {&novacron__v1__vm_service__descriptor, NULL, 0};
