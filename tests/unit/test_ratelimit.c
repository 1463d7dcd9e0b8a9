/*
 * test_ratelimit.c - token buckets with an injected clock: burst then
 * refusal, retry-after and refill, independent keys and classes, disabled
 * classes, the bound on kept buckets, concurrent takes, and peer keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "rpc/ratelimit.h"

typedef struct test_clock {
  atomic_llong ms;
} test_clock;

static int64_t clock_now(void *arg) { return atomic_load(&((test_clock *)arg)->ms); }
static void clock_advance(test_clock *c, int64_t ms) { atomic_fetch_add(&c->ms, ms); }

static rpc_ratelimit *new_limiter(test_clock *c, double rate, double burst, double anon_rate,
                                  double anon_burst, size_t max_keys) {
  rpc_ratelimit_options o = {.rate = rate,
                             .burst = burst,
                             .anon_rate = anon_rate,
                             .anon_burst = anon_burst,
                             .max_keys = max_keys,
                             .now_ms = clock_now,
                             .clock_arg = c};
  rpc_ratelimit *rl = rpc_ratelimit_new(&o);
  assert_non_null(rl);
  return rl;
}

/* Takes from `key` until refused; returns how many were allowed. */
static int drain(rpc_ratelimit *rl, const char *key, bool anonymous) {
  int n = 0;
  while (rpc_ratelimit_take(rl, key, anonymous, NULL))
    n++;
  return n;
}

static void burst_then_refused_then_refilled(void **state) {
  test_clock c = {1000};
  rpc_ratelimit *rl = new_limiter(&c, 10, 3, 0, 0, 0);
  int64_t wait = -1;
  for (int i = 0; i < 3; i++) {
    assert_true(rpc_ratelimit_take(rl, "users/alice", false, &wait));
    assert_int_equal(wait, 0);
  }
  assert_false(rpc_ratelimit_take(rl, "users/alice", false, &wait));
  assert_int_equal(wait, 100); /* one token per 100 ms */
  clock_advance(&c, 99);
  assert_false(rpc_ratelimit_take(rl, "users/alice", false, &wait));
  assert_int_equal(wait, 1);
  clock_advance(&c, 1);
  assert_true(rpc_ratelimit_take(rl, "users/alice", false, &wait));
  assert_false(rpc_ratelimit_take(rl, "users/alice", false, &wait));
  assert_int_equal(wait, 100);
  /* A long pause refills up to the burst, not beyond. */
  clock_advance(&c, 60000);
  assert_int_equal(drain(rl, "users/alice", false), 3);
  rpc_ratelimit_free(rl);
}

static void retry_after_rounds_up(void **state) {
  test_clock c = {0};
  rpc_ratelimit *rl = new_limiter(&c, 3, 1, 0, 0, 0);
  int64_t wait = 0;
  assert_true(rpc_ratelimit_take(rl, "users/bob", false, &wait));
  assert_false(rpc_ratelimit_take(rl, "users/bob", false, &wait));
  assert_int_equal(wait, 334); /* 333.3 ms, rounded up */
  clock_advance(&c, 333);
  assert_false(rpc_ratelimit_take(rl, "users/bob", false, &wait));
  assert_int_equal(wait, 1);
  clock_advance(&c, 1);
  assert_true(rpc_ratelimit_take(rl, "users/bob", false, &wait));
  /* Fractional tokens keep accumulating correctly over many refills. */
  for (int i = 0; i < 1000; i++) {
    assert_false(rpc_ratelimit_take(rl, "users/bob", false, &wait));
    clock_advance(&c, wait);
    assert_true(rpc_ratelimit_take(rl, "users/bob", false, &wait));
  }
  /* A very slow rate still reports a finite wait. */
  rpc_ratelimit_free(rl);
  rl = new_limiter(&c, 1e-9, 1, 0, 0, 0);
  assert_true(rpc_ratelimit_take(rl, "slow", false, &wait));
  assert_false(rpc_ratelimit_take(rl, "slow", false, &wait));
  assert_true(wait > 0);
  rpc_ratelimit_free(rl);
}

static void keys_and_classes_are_independent(void **state) {
  test_clock c = {0};
  rpc_ratelimit *rl = new_limiter(&c, 1, 5, 1, 5, 0);
  assert_int_equal(drain(rl, "users/alice", false), 5);
  assert_int_equal(drain(rl, "users/bob", false), 5);
  /* The same string as an anonymous key is another bucket. */
  assert_int_equal(drain(rl, "users/alice", true), 5);
  assert_int_equal(rpc_ratelimit_count(rl), 3);
  rpc_ratelimit_free(rl);
}

static void anonymous_callers_use_the_anon_settings(void **state) {
  test_clock c = {0};
  rpc_ratelimit *rl = new_limiter(&c, 100, 10, 1, 2, 0);
  int64_t wait = 0;
  assert_int_equal(drain(rl, "10.0.0.1", true), 2);
  assert_false(rpc_ratelimit_take(rl, "10.0.0.1", true, &wait));
  assert_int_equal(wait, 1000);
  assert_int_equal(drain(rl, "users/alice", false), 10);
  assert_false(rpc_ratelimit_take(rl, "users/alice", false, &wait));
  assert_int_equal(wait, 10);
  rpc_ratelimit_free(rl);
}

static void zero_rate_disables_a_class(void **state) {
  test_clock c = {0};
  rpc_ratelimit *rl = new_limiter(&c, 0, 5, 1, 1, 0);
  int64_t wait = -1;
  for (int i = 0; i < 1000; i++) {
    assert_true(rpc_ratelimit_take(rl, "users/alice", false, &wait));
    assert_int_equal(wait, 0);
  }
  assert_int_equal(rpc_ratelimit_count(rl), 0); /* nothing stored */
  assert_true(rpc_ratelimit_take(rl, "10.0.0.1", true, &wait));
  assert_false(rpc_ratelimit_take(rl, "10.0.0.1", true, &wait));
  rpc_ratelimit_free(rl);
  /* Negative rates and NaN disable too; an unset burst means the rate. */
  rl = new_limiter(&c, 4, 0, -1, 1, 0);
  assert_int_equal(drain(rl, "users/alice", false), 4);
  for (int i = 0; i < 100; i++)
    assert_true(rpc_ratelimit_take(rl, "10.0.0.1", true, NULL));
  rpc_ratelimit_free(rl);
  rl = new_limiter(&c, NAN, 1, 0.5, 0, 0);
  assert_true(rpc_ratelimit_take(rl, "users/alice", false, NULL));
  assert_true(rpc_ratelimit_take(rl, "users/alice", false, NULL));
  assert_int_equal(drain(rl, "10.0.0.1", true), 1); /* burst at least 1 */
  rpc_ratelimit_free(rl);
  assert_null(rpc_ratelimit_new(NULL));
  rpc_ratelimit_free(NULL);
}

static void table_stays_bounded(void **state) {
  test_clock c = {0};
  rpc_ratelimit *rl = new_limiter(&c, 1, 2, 1, 2, 100);
  char key[32];
  for (int i = 0; i < 1000; i++) {
    snprintf(key, sizeof(key), "10.0.%d.%d", i / 256, i % 256);
    assert_true(rpc_ratelimit_take(rl, key, true, NULL));
    assert_true(rpc_ratelimit_count(rl) <= 100);
    if (i % 7 == 0) clock_advance(&c, 1);
  }
  assert_int_equal(rpc_ratelimit_count(rl), 100);
  rpc_ratelimit_free(rl);
}

static void refilled_buckets_are_evicted_before_recent_ones(void **state) {
  test_clock c = {0};
  rpc_ratelimit *rl = new_limiter(&c, 1, 2, 0, 0, 4);
  assert_int_equal(drain(rl, "a", false), 2);
  assert_int_equal(drain(rl, "b", false), 2);
  assert_int_equal(drain(rl, "c", false), 2);
  assert_true(rpc_ratelimit_take(rl, "d", false, NULL)); /* d keeps one token */
  clock_advance(&c, 1000);
  /* d is full again, a/b/c are not: d goes although a is older. The drains
   * above ended with a refusal, which counts as a use: LRU is a, b, c, d. */
  assert_true(rpc_ratelimit_take(rl, "e", false, NULL));
  assert_int_equal(rpc_ratelimit_count(rl), 4);
  assert_true(rpc_ratelimit_take(rl, "a", false, NULL));
  assert_false(rpc_ratelimit_take(rl, "a", false, NULL)); /* a was kept */
  /* Nothing is full now (LRU: b, c, e, a): the least recently used goes. */
  assert_true(rpc_ratelimit_take(rl, "f", false, NULL));
  assert_int_equal(rpc_ratelimit_count(rl), 4);
  assert_int_equal(drain(rl, "b", false), 2); /* b was forgotten: full again */
  assert_true(rpc_ratelimit_take(rl, "e", false, NULL));
  assert_false(rpc_ratelimit_take(rl, "e", false, NULL)); /* e was kept */
  assert_int_equal(rpc_ratelimit_count(rl), 4);
  rpc_ratelimit_free(rl);
}

typedef struct hammer {
  rpc_ratelimit *rl;
  test_clock *clock;
  int id;
  atomic_long *granted;
} hammer;

static void *hammer_one_key(void *arg) {
  hammer *h = arg;
  for (int i = 0; i < 20000; i++) {
    if (rpc_ratelimit_take(h->rl, "users/hot", false, NULL)) atomic_fetch_add(h->granted, 1);
    if (i % 8 == 0) clock_advance(h->clock, 1);
  }
  return NULL;
}

static void concurrent_takes_never_exceed_the_rate(void **state) {
  test_clock c = {5000};
  rpc_ratelimit *rl = new_limiter(&c, 1000, 50, 0, 0, 0); /* one token per ms */
  atomic_long granted = 0;
  hammer h[4];
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    h[i] = (hammer){rl, &c, i, &granted};
    assert_int_equal(pthread_create(&t[i], NULL, hammer_one_key, &h[i]), 0);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  long elapsed = (long)(clock_now(&c) - 5000);
  long got = atomic_load(&granted);
  assert_true(got <= 50 + elapsed);
  assert_true(got >= elapsed); /* and the limiter does not starve callers */
  rpc_ratelimit_free(rl);
}

static void *hammer_many_keys(void *arg) {
  hammer *h = arg;
  char key[32];
  for (int i = 0; i < 5000; i++) {
    snprintf(key, sizeof(key), "10.%d.%d.%d", h->id, i / 256, i % 256);
    rpc_ratelimit_take(h->rl, key, true, NULL);
    rpc_ratelimit_take(h->rl, "10.9.9.9", true, NULL); /* a shared hot key */
    if (i % 16 == 0) clock_advance(h->clock, 1);
  }
  return NULL;
}

static void concurrent_eviction_stays_bounded(void **state) {
  test_clock c = {0};
  rpc_ratelimit *rl = new_limiter(&c, 0, 0, 10, 5, 64);
  atomic_long unused = 0;
  hammer h[4];
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    h[i] = (hammer){rl, &c, i, &unused};
    assert_int_equal(pthread_create(&t[i], NULL, hammer_many_keys, &h[i]), 0);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  assert_true(rpc_ratelimit_count(rl) <= 64);
  rpc_ratelimit_free(rl);
}

static void peer_host_strips_scheme_and_port(void **state) {
  char out[64];
  static const struct {
    const char *peer, *host;
  } cases[] = {
      {"ipv4:127.0.0.1:5555", "127.0.0.1"},
      {"ipv4:10.1.2.3", "10.1.2.3"},
      {"ipv6:[::1]:5555", "::1"},
      {"ipv6:%5B2001:db8::7%5D:443", "2001:db8::7"},
      {"ipv6:%5b2001:db8::7%5d:443", "2001:db8::7"},
      {"ipv6:[::ffff:192.0.2.1]:80", "192.0.2.1"},
      {"ipv6:[::ffff:1]:80", "::ffff:1"},
      {"unix:/run/novacron.sock", "unix:/run/novacron.sock"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    assert_true(rpc_ratelimit_peer_host(cases[i].peer, out, sizeof(out)));
    assert_string_equal(out, cases[i].host);
  }
  assert_false(rpc_ratelimit_peer_host("", out, sizeof(out)));
  assert_false(rpc_ratelimit_peer_host(NULL, out, sizeof(out)));
  assert_false(rpc_ratelimit_peer_host("ipv4::80", out, sizeof(out)));
  assert_false(rpc_ratelimit_peer_host("ipv4:127.0.0.1:5555", out, 9)); /* too small */
  assert_string_equal(out, "");
  assert_true(rpc_ratelimit_peer_host("ipv4:127.0.0.1:5555", out, 10));
  assert_string_equal(out, "127.0.0.1");
}

static void interceptor_carries_the_limiter(void **state) {
  test_clock c = {0};
  rpc_ratelimit *rl = new_limiter(&c, 1, 1, 1, 1, 0);
  rpc_interceptor ic = rpc_ratelimit_interceptor(rl);
  assert_non_null(ic.name);
  assert_non_null(ic.before);
  assert_null(ic.after);
  assert_ptr_equal(ic.arg, rl);
  rpc_ratelimit_free(rl);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(burst_then_refused_then_refilled),
      cmocka_unit_test(retry_after_rounds_up),
      cmocka_unit_test(keys_and_classes_are_independent),
      cmocka_unit_test(anonymous_callers_use_the_anon_settings),
      cmocka_unit_test(zero_rate_disables_a_class),
      cmocka_unit_test(table_stays_bounded),
      cmocka_unit_test(refilled_buckets_are_evicted_before_recent_ones),
      cmocka_unit_test(concurrent_takes_never_exceed_the_rate),
      cmocka_unit_test(concurrent_eviction_stays_bounded),
      cmocka_unit_test(peer_host_strips_scheme_and_port),
      cmocka_unit_test(interceptor_carries_the_limiter),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
