/*
 * operations.c - the method table of novacron.v1.OperationsService.
 */
#include "api/services.h"
#include "novacron/v1/operations.pb-c.h"

const api_service api_operations_service = {&novacron__v1__operations_service__descriptor, NULL, 0};
