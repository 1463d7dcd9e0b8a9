/*
 * event.c - the method table of novacron.v1.EventService.
 */
#include "api/services.h"
#include "novacron/v1/event.pb-c.h"

const api_service api_event_service = {&novacron__v1__event_service__descriptor, NULL, 0};
