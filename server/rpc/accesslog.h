/* accesslog.h - the access-log interceptor (see accesslog.c). */
#ifndef NC_RPC_ACCESSLOG_H
#define NC_RPC_ACCESSLOG_H

#include "rpc/rpc.h"

extern const rpc_interceptor rpc_access_log_interceptor;

#endif
