/*
 * federation.c - the method table of novacron.v1.FederationService.
 */
#include "api/services.h"
#include "novacron/v1/federation.pb-c.h"

const api_service api_federation_service = {&novacron__v1__federation_service__descriptor, NULL, 0};
