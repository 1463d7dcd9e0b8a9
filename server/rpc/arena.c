/* arena.c - see arena.h. Blocks grow geometrically up to 64 KiB; larger
 * requests get a block of their own. */
#include "rpc/arena.h"

#include <stdint.h>
#include <stdlib.h>

struct rpc_arena_block {
  rpc_arena_block *next;
  size_t size, used;
  _Alignas(16) unsigned char data[];
};

#define ALIGN16(n) (((n) + 15u) & ~(size_t)15u)

static void *pb_alloc(void *data, size_t size) { return rpc_arena_alloc(data, size); }
static void pb_free(void *data, void *ptr) {
  (void)data;
  (void)ptr;
}

void rpc_arena_init(rpc_arena *a) {
  a->head = NULL;
  a->inline_used = 0;
  a->allocator.alloc = pb_alloc;
  a->allocator.free = pb_free;
  a->allocator.allocator_data = a;
}

void *rpc_arena_alloc(rpc_arena *a, size_t size) {
  if (size > SIZE_MAX / 2) return NULL; /* ALIGN16 and the block header cannot overflow */
  size_t need = ALIGN16(size ? size : 1);
  uintptr_t base = (uintptr_t)a->inline_buf;
  size_t pad = ALIGN16(base) - base;
  if (pad + a->inline_used + need <= sizeof(a->inline_buf)) {
    void *p = a->inline_buf + pad + a->inline_used;
    a->inline_used += need;
    return p;
  }
  if (a->head && a->head->size - a->head->used >= need) {
    void *p = a->head->data + a->head->used;
    a->head->used += need;
    return p;
  }
  size_t bsize = a->head ? a->head->size * 2 : 4096;
  if (bsize > 65536) bsize = 65536;
  if (bsize < need) bsize = need;
  rpc_arena_block *b = malloc(sizeof(*b) + bsize);
  if (!b) return NULL;
  b->size = bsize;
  b->used = need;
  if (a->head && need > 65536 / 2) {
    /* keep the current block as head so its free space stays usable */
    b->next = a->head->next;
    a->head->next = b;
  } else {
    b->next = a->head;
    a->head = b;
  }
  return b->data;
}

void rpc_arena_release(rpc_arena *a) {
  rpc_arena_block *b = a->head;
  while (b) {
    rpc_arena_block *n = b->next;
    free(b);
    b = n;
  }
  a->head = NULL;
  a->inline_used = 0;
}
