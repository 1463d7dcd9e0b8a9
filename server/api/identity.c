/*
 * identity.c - novacron.v1.IdentityService.
 */
#include "api/services.h"
#include "novacron/v1/identity.pb-c.h"

const api_service api_identity_service = {&novacron__v1__identity_service__descriptor, NULL, 0};
