/*
 * health.c - typed wrappers for grpc.health.v1.Health (Check and Watch),
 * built on the generic calls like every later service wrapper will be.
 */
#include "grpc/health/v1/health.pb-c.h"
#include "internal.h"

#define HEALTH_CHECK "/grpc.health.v1.Health/Check"
#define HEALTH_WATCH "/grpc.health.v1.Health/Watch"

static nc_health_status from_wire(Grpc__Health__V1__HealthCheckResponse__ServingStatus s) {
  switch (s) {
  case GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING: return NC_HEALTH_SERVING;
  case GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING:
    return NC_HEALTH_NOT_SERVING;
  case GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN:
    return NC_HEALTH_SERVICE_UNKNOWN;
  default: return NC_HEALTH_UNKNOWN;
  }
}

nc_status nc_health_check(nc_client *client, const char *service, nc_health_status *status,
                          const nc_call_options *call_opts, nc_error *err) {
  Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  ProtobufCMessage *resp = NULL;
  nc_status st;

  nc_error_clear(err);
  if (!status) return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "no output for the health status");
  *status = NC_HEALTH_UNKNOWN;
  req.service = (char *)(service ? service : "");
  st = nc_call_unary(client, HEALTH_CHECK, &req.base,
                     &grpc__health__v1__health_check_response__descriptor, &resp, call_opts, err);
  if (st == NC_OK) *status = from_wire(((Grpc__Health__V1__HealthCheckResponse *)resp)->status);
  nc_message_free(resp);
  return st;
}

nc_status nc_health_watch(nc_client *client, const char *service, nc_stream **out,
                          const nc_call_options *call_opts, nc_error *err) {
  Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  req.service = (char *)(service ? service : "");
  return nc_call_server_stream(client, HEALTH_WATCH, &req.base,
                               &grpc__health__v1__health_check_response__descriptor, out, call_opts,
                               err);
}

nc_status nc_health_watch_next(nc_stream *stream, nc_health_status *status, int64_t timeout_ms,
                               nc_error *err) {
  ProtobufCMessage *msg = NULL;
  nc_status st;

  nc_error_clear(err);
  if (!status) return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "no output for the health status");
  *status = NC_HEALTH_UNKNOWN;
  if (stream && stream->magic == NC_STREAM_MAGIC &&
      stream->response_type != &grpc__health__v1__health_check_response__descriptor)
    return nc_fail(err, NC_ERR_INVALID_ARGUMENT, "not a health watch stream");
  st = nc_stream_next(stream, &msg, timeout_ms, err);
  if (st == NC_OK) *status = from_wire(((Grpc__Health__V1__HealthCheckResponse *)msg)->status);
  nc_message_free(msg);
  return st;
}
