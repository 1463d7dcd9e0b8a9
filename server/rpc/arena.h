/*
 * arena.h - a per-call bump allocator. Everything a call decodes or builds
 * is allocated here and released at once when the call ends (the
 * PostgreSQL memory-context idea), so handlers never free piecemeal.
 */
#ifndef NC_RPC_ARENA_H
#define NC_RPC_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

typedef struct rpc_arena_block rpc_arena_block;

typedef struct rpc_arena {
  rpc_arena_block *head;
  ProtobufCAllocator allocator; /* hands out arena memory; free is a no-op */
  char inline_buf[1024];        /* first allocations need no malloc */
  size_t inline_used;
} rpc_arena;

void rpc_arena_init(rpc_arena *a);
/* 16-byte aligned; NULL only when out of memory. */
void *rpc_arena_alloc(rpc_arena *a, size_t size);
/* Frees every block; the arena can be reused after rpc_arena_init. */
void rpc_arena_release(rpc_arena *a);

#endif
