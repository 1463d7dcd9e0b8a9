/*
 * storage.c - the method table of novacron.v1.StorageService.
 */
#include "api/services.h"
#include "novacron/v1/storage.pb-c.h"

const api_service api_storage_service = {&novacron__v1__storage_service__descriptor, NULL, 0};
