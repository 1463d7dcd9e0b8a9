/*
 * network.c - the method table of novacron.v1.NetworkService.
 */
#include "api/services.h"
#include "novacron/v1/network.pb-c.h"

const api_service api_network_service = {&novacron__v1__network_service__descriptor, NULL, 0};
