/*
 * event.c - the method table of novacron.v1.EventService: the access the
 * authorization interceptor (api/authz.c) requires for the change feed and
 * the request field naming its project. WatchEvents needs ROLE_VIEWER on
 * `parent`; `projects/-` streams the caller's projects (the handler
 * filters); an empty parent (every project plus system-level events) is
 * for system administrators only. No handler yet: the method answers
 * UNIMPLEMENTED after authorization.
 */
#include "api/services.h"
#include "novacron/v1/event.pb-c.h"

static const rpc_method_row rows[] = {
    {.name = "WatchEvents",
     .kind = RPC_SERVER_STREAMING,
     .flags = RPC_IDEMPOTENT, /* a read; resumable with after_sequence */
     .access = API_VIEWER | API_ACROSS_PROJECTS,
     .scope = "parent"},
};

const api_service api_event_service = {&novacron__v1__event_service__descriptor, API_ROWS(rows)};
