/*
 * api.h - the NovaCron services, registered with the RPC runtime.
 *
 * Each service is one const table of method rows and one file of handlers
 * (decode-validate-authorize-call-encode). A method without a row answers
 * UNIMPLEMENTED naming itself until the issue that builds it lands.
 */
#ifndef NC_API_API_H
#define NC_API_API_H

#include <stddef.h>

#include "api/authz.h"
#include "rpc/rpc.h"

/* Registers every novacron.v1 service with `ctx` as the handlers' context.
 * Returns -1 with a message on error. */
int api_register_all(rpc_server *srv, api_ctx *ctx, char *errbuf, size_t errlen);

#endif
