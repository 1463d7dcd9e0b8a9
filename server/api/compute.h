/*
 * compute.h - the handler shape shared by the compute services (VmService,
 * HostService, OperationsService): decode was done by rpc/, authorization
 * by api/authz.c; the handler calls core/compute and passes its code and
 * message through.
 */
#ifndef NC_API_COMPUTE_H
#define NC_API_COMPUTE_H

#include "api/authz.h"
#include "core/compute.h"

#define API_COMPUTE_HANDLER(fn, Req, Resp)                                               \
  static int h_##fn(rpc_call *call, const ProtobufCMessage *req, ProtobufCMessage *resp, \
                    void *ctx) {                                                         \
    api_ctx *c = ctx;                                                                    \
    char msg[512];                                                                       \
    core_call cc;                                                                        \
    api_core_call(call, &cc, msg, sizeof(msg));                                          \
    if (!c->compute) return rpc_fail(call, 14, "the compute service is not running");    \
    int code = core_##fn(c->compute, &cc, (const Novacron__V1__##Req *)req,              \
                         (Novacron__V1__##Resp *)resp);                                  \
    if (code) return rpc_fail(call, code, "%s", msg);                                    \
    api_note_result(call, resp);                                                         \
    return 0;                                                                            \
  }

#endif
