/*
 * ratelimit.h - per-caller token buckets and the interceptor that enforces
 * them (see ratelimit.c).
 *
 * Every caller owns a bucket of `burst` tokens refilled at `rate` tokens per
 * second; a call takes one token or is refused RESOURCE_EXHAUSTED with a
 * `retry-after-ms` trailer. Authenticated callers are keyed by principal,
 * anonymous ones by peer host and limited with the anon_* settings.
 */
#ifndef NC_RPC_RATELIMIT_H
#define NC_RPC_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc/rpc.h"

typedef struct rpc_ratelimit rpc_ratelimit;

typedef struct rpc_ratelimit_options {
  /* Authenticated callers: tokens per second and bucket capacity. A rate
   * <= 0 (or not finite) disables the class; a burst below 1 means
   * max(rate, 1). */
  double rate;
  double burst;
  /* Anonymous callers (no principal), keyed by peer host: the same rules. */
  double anon_rate;
  double anon_burst;
  /* Most buckets kept (0: 100000). When full, buckets that have refilled
   * completely are dropped first (losing nothing), else the least recently
   * used. */
  size_t max_keys;
  /* Monotonic clock in milliseconds (NULL: CLOCK_MONOTONIC); for tests. */
  int64_t (*now_ms)(void *clock_arg);
  void *clock_arg;
} rpc_ratelimit_options;

/* NULL when `o` is NULL or memory runs out. The options are copied. */
rpc_ratelimit *rpc_ratelimit_new(const rpc_ratelimit_options *o);
void rpc_ratelimit_free(rpc_ratelimit *rl);

/* Takes one token from the bucket of (`key`, class). Returns true when the
 * call may proceed (*retry_after_ms = 0), false when the bucket is empty
 * (*retry_after_ms = milliseconds until one token is available, >= 1).
 * retry_after_ms may be NULL. Never blocks; thread-safe. Allows the call when
 * the class is disabled or a new bucket cannot be allocated. */
bool rpc_ratelimit_take(rpc_ratelimit *rl, const char *key, bool anonymous,
                        int64_t *retry_after_ms);

/* Buckets currently held (<= max_keys). */
size_t rpc_ratelimit_count(rpc_ratelimit *rl);

/* The host part of a gRPC peer string, without scheme and port:
 * "ipv4:10.0.0.1:5555" -> "10.0.0.1", "ipv6:[::1]:5555" (or "%5B::1%5D")
 * -> "::1", "ipv6:[::ffff:10.0.0.1]:1" -> "10.0.0.1"; other schemes
 * ("unix:/run/x.sock") are returned whole. False when `peer` is NULL or
 * empty or the host does not fit in `out` (then `out` is ""). */
bool rpc_ratelimit_peer_host(const char *peer, char *out, size_t outlen);

/* The interceptor for rpc_server_add_interceptor. Register it after the
 * authentication interceptor so that rpc_call_principal() is known; `rl`
 * must outlive the server. */
rpc_interceptor rpc_ratelimit_interceptor(rpc_ratelimit *rl);

#endif
