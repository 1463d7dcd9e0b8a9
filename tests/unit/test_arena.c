/* test_arena.c - the per-call allocator: alignment, growth, big blocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "rpc/arena.h"

static void aligned_and_distinct(void **state) {
  rpc_arena a;
  rpc_arena_init(&a);
  unsigned char *prev = NULL;
  for (int i = 1; i < 2000; i++) {
    unsigned char *p = rpc_arena_alloc(&a, (size_t)(i % 97) + 1);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 16, 0);
    memset(p, 0xab, (size_t)(i % 97) + 1); /* ASan catches overlap/overflow */
    assert_true(p != prev);
    prev = p;
  }
  rpc_arena_release(&a);
}

static void large_allocations_get_their_own_block(void **state) {
  rpc_arena a;
  rpc_arena_init(&a);
  void *small = rpc_arena_alloc(&a, 2000);
  void *big = rpc_arena_alloc(&a, 1u << 20);
  void *after = rpc_arena_alloc(&a, 100);
  assert_non_null(small);
  assert_non_null(big);
  assert_non_null(after);
  memset(big, 1, 1u << 20);
  memset(after, 2, 100);
  rpc_arena_release(&a);
  rpc_arena_init(&a);
  assert_non_null(rpc_arena_alloc(&a, 0));
  rpc_arena_release(&a);
}

static void protobuf_allocator_uses_the_arena(void **state) {
  rpc_arena a;
  rpc_arena_init(&a);
  void *p = a.allocator.alloc(a.allocator.allocator_data, 64);
  assert_non_null(p);
  a.allocator.free(a.allocator.allocator_data, p); /* no-op, must not crash */
  rpc_arena_release(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(aligned_and_distinct),
      cmocka_unit_test(large_allocations_get_their_own_block),
      cmocka_unit_test(protobuf_allocator_uses_the_arena),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
