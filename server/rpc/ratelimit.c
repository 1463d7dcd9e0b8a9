/*
 * ratelimit.c - token buckets per caller, kept in one mutex-protected
 * chained hash table with an LRU list, and the interceptor that takes a
 * token before every call.
 *
 * A bucket stores its tokens and the time they were last brought up to
 * date; refilling is computed lazily on each take, so no timer runs. The
 * table never holds more than max_keys buckets: inserting a new key first
 * drops, among the few least recently used buckets, those that have refilled
 * completely (forgetting them changes nothing), and then, when still full,
 * the least recently used one. Hashing, clock reads, malloc and free happen
 * outside the lock; inside it a take is a lookup and a few arithmetic
 * operations.
 *
 * This file must not block and knows nothing about services or principals
 * beyond the strings it is given.
 */
#include <float.h>
#include <grpc/status.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "rpc/ratelimit.h"

#define RL_DEFAULT_MAX_KEYS 100000
/* Least recently used buckets examined for having refilled on each insert. */
#define RL_SWEEP 8
/* Slack for floating-point rounding when comparing token counts. */
#define RL_EPSILON 1e-9
/* Longest retry-after reported (about 31 years), so it fits an int64_t. */
#define RL_MAX_WAIT_MS 1e12
/* Longest peer host kept as a key: an IPv6 address with a zone fits. */
#define RL_HOST_MAX 128

typedef struct rl_bucket {
  struct rl_bucket *chain;         /* next in the same hash slot */
  struct rl_bucket *newer, *older; /* LRU list */
  uint64_t hash;
  int64_t updated_ms; /* `tokens` is as of this time */
  double tokens;
  bool anonymous;
  char key[]; /* NUL-terminated */
} rl_bucket;

typedef struct rl_class {
  double rate;  /* tokens per millisecond; 0: not limited */
  double burst; /* capacity, >= 1 */
} rl_class;

struct rpc_ratelimit {
  rl_class classes[2]; /* [false] authenticated, [true] anonymous */
  size_t max_keys;
  int64_t (*now_ms)(void *);
  void *clock_arg;
  uint64_t seed;

  pthread_mutex_t mu; /* guards everything below */
  rl_bucket **slots;
  size_t slot_mask; /* number of slots - 1, a power of two minus one */
  size_t count;
  rl_bucket *newest, *oldest;
};

static int64_t monotonic_ms(void *arg) {
  (void)arg;
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static rl_class make_class(double rate, double burst) {
  rl_class c = {0, 1};
  if (!(rate > 0 && rate <= DBL_MAX)) return c; /* also NaN and infinity */
  c.rate = rate / 1000.0;
  c.burst = burst >= 1 ? burst : rate > 1 ? rate : 1;
  return c;
}

/* FNV-1a over a random seed, finished with the murmur3 mixer so that every
 * bit of the slot index depends on the seed. */
static uint64_t hash_key(uint64_t seed, const char *key, bool anonymous) {
  uint64_t h = 14695981039346656037ull ^ seed;
  for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
    h ^= *p;
    h *= 1099511628211ull;
  }
  h ^= anonymous ? 0x9e3779b97f4a7c15ull : 0;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

rpc_ratelimit *rpc_ratelimit_new(const rpc_ratelimit_options *o) {
  if (!o) return NULL;
  rpc_ratelimit *rl = calloc(1, sizeof(*rl));
  if (!rl) return NULL;
  rl->classes[false] = make_class(o->rate, o->burst);
  rl->classes[true] = make_class(o->anon_rate, o->anon_burst);
  rl->max_keys = o->max_keys ? o->max_keys : RL_DEFAULT_MAX_KEYS;
  rl->now_ms = o->now_ms ? o->now_ms : monotonic_ms;
  rl->clock_arg = o->clock_arg;
  if (getrandom(&rl->seed, sizeof(rl->seed), GRND_NONBLOCK) != (ssize_t)sizeof(rl->seed))
    rl->seed = (uint64_t)monotonic_ms(NULL) ^ (uint64_t)(uintptr_t)rl;
  /* At most one bucket per slot on average; calloc maps large tables lazily. */
  size_t nslots = 16;
  while (nslots < rl->max_keys && nslots <= SIZE_MAX / 4)
    nslots *= 2;
  rl->slots = calloc(nslots, sizeof(*rl->slots));
  if (!rl->slots || pthread_mutex_init(&rl->mu, NULL) != 0) {
    free(rl->slots);
    free(rl);
    return NULL;
  }
  rl->slot_mask = nslots - 1;
  return rl;
}

void rpc_ratelimit_free(rpc_ratelimit *rl) {
  if (!rl) return;
  for (rl_bucket *b = rl->newest, *next; b; b = next) {
    next = b->older;
    free(b);
  }
  free(rl->slots);
  pthread_mutex_destroy(&rl->mu);
  free(rl);
}

size_t rpc_ratelimit_count(rpc_ratelimit *rl) {
  pthread_mutex_lock(&rl->mu);
  size_t n = rl->count;
  pthread_mutex_unlock(&rl->mu);
  return n;
}

/* ---- the table (called with rl->mu held) ---- */

static rl_bucket *lookup(rpc_ratelimit *rl, uint64_t hash, const char *key, bool anonymous) {
  for (rl_bucket *b = rl->slots[hash & rl->slot_mask]; b; b = b->chain)
    if (b->hash == hash && b->anonymous == anonymous && strcmp(b->key, key) == 0) return b;
  return NULL;
}

static void lru_unlink(rpc_ratelimit *rl, rl_bucket *b) {
  if (b->newer)
    b->newer->older = b->older;
  else
    rl->newest = b->older;
  if (b->older)
    b->older->newer = b->newer;
  else
    rl->oldest = b->newer;
  b->newer = b->older = NULL;
}

static void lru_push_newest(rpc_ratelimit *rl, rl_bucket *b) {
  b->older = rl->newest;
  b->newer = NULL;
  if (rl->newest)
    rl->newest->newer = b;
  else
    rl->oldest = b;
  rl->newest = b;
}

static void insert(rpc_ratelimit *rl, rl_bucket *b) {
  rl_bucket **slot = &rl->slots[b->hash & rl->slot_mask];
  b->chain = *slot;
  *slot = b;
  lru_push_newest(rl, b);
  rl->count++;
}

/* Unlinks `b` from the table and pushes it on `*dead` (freed after unlock). */
static void evict(rpc_ratelimit *rl, rl_bucket *b, rl_bucket **dead) {
  rl_bucket **p = &rl->slots[b->hash & rl->slot_mask];
  while (*p != b)
    p = &(*p)->chain;
  *p = b->chain;
  lru_unlink(rl, b);
  rl->count--;
  b->chain = *dead;
  *dead = b;
}

/* Brings `b` up to `now`. A clock read before another thread's take may be
 * a little behind `updated_ms`: time never runs backwards for a bucket. */
static void refill(const rl_class *c, rl_bucket *b, int64_t now) {
  if (now <= b->updated_ms) return;
  b->tokens += (double)(now - b->updated_ms) * c->rate;
  if (b->tokens > c->burst) b->tokens = c->burst;
  b->updated_ms = now;
}

static bool refilled(const rpc_ratelimit *rl, const rl_bucket *b, int64_t now) {
  const rl_class *c = &rl->classes[b->anonymous];
  double elapsed = now > b->updated_ms ? (double)(now - b->updated_ms) : 0;
  return b->tokens + elapsed * c->rate >= c->burst - RL_EPSILON;
}

/* Makes room for one more bucket: drops the refilled ones among the least
 * recently used, then the least recently used one if still full. */
static void make_room(rpc_ratelimit *rl, int64_t now, rl_bucket **dead) {
  rl_bucket *b = rl->oldest;
  for (int i = 0; b && i < RL_SWEEP; i++) {
    rl_bucket *newer = b->newer;
    if (refilled(rl, b, now)) evict(rl, b, dead);
    b = newer;
  }
  while (rl->count >= rl->max_keys && rl->oldest)
    evict(rl, rl->oldest, dead);
}

/* Takes a token from `b` (up to date); on refusal sets *wait_ms. */
static bool take_token(const rl_class *c, rl_bucket *b, int64_t *wait_ms) {
  if (b->tokens >= 1 - RL_EPSILON) {
    b->tokens = b->tokens > 1 ? b->tokens - 1 : 0;
    return true;
  }
  /* Aim a little below the threshold of a grant, so rounding errors cannot
   * make the caller wait a millisecond longer, or come back too early. */
  double ms = (1 - RL_EPSILON / 2 - b->tokens) / c->rate;
  if (ms > RL_MAX_WAIT_MS) ms = RL_MAX_WAIT_MS;
  int64_t whole = (int64_t)ms;
  if ((double)whole < ms) whole++; /* round up: by then the token is there */
  *wait_ms = whole < 1 ? 1 : whole;
  return false;
}

static void free_list(rl_bucket *b) {
  while (b) {
    rl_bucket *next = b->chain;
    free(b);
    b = next;
  }
}

bool rpc_ratelimit_take(rpc_ratelimit *rl, const char *key, bool anonymous,
                        int64_t *retry_after_ms) {
  int64_t wait_ms = 0;
  if (retry_after_ms) *retry_after_ms = 0;
  const rl_class *c = &rl->classes[anonymous];
  if (c->rate <= 0) return true;
  if (!key) key = "";
  uint64_t hash = hash_key(rl->seed, key, anonymous);
  int64_t now = rl->now_ms(rl->clock_arg);

  pthread_mutex_lock(&rl->mu);
  rl_bucket *b = lookup(rl, hash, key, anonymous);
  if (b) {
    refill(c, b, now);
    bool ok = take_token(c, b, &wait_ms);
    lru_unlink(rl, b);
    lru_push_newest(rl, b);
    pthread_mutex_unlock(&rl->mu);
    if (!ok && retry_after_ms) *retry_after_ms = wait_ms;
    return ok;
  }
  pthread_mutex_unlock(&rl->mu);

  /* A new key: a fresh bucket is full, so this take succeeds unless another
   * thread inserted the same key meanwhile. */
  size_t len = strlen(key);
  rl_bucket *fresh = malloc(sizeof(*fresh) + len + 1);
  if (!fresh) return true;
  memset(fresh, 0, sizeof(*fresh));
  memcpy(fresh->key, key, len + 1);
  fresh->hash = hash;
  fresh->anonymous = anonymous;
  fresh->tokens = c->burst;
  fresh->updated_ms = now;
  rl_bucket *dead = NULL;
  bool ok;

  pthread_mutex_lock(&rl->mu);
  b = lookup(rl, hash, key, anonymous);
  if (b) {
    refill(c, b, now);
    lru_unlink(rl, b);
    lru_push_newest(rl, b);
    fresh->chain = dead;
    dead = fresh;
  } else {
    make_room(rl, now, &dead);
    insert(rl, fresh);
    b = fresh;
  }
  ok = take_token(c, b, &wait_ms);
  pthread_mutex_unlock(&rl->mu);

  free_list(dead);
  if (!ok && retry_after_ms) *retry_after_ms = wait_ms;
  return ok;
}

/* ---- the interceptor ---- */

bool rpc_ratelimit_peer_host(const char *peer, char *out, size_t outlen) {
  if (outlen) out[0] = '\0';
  if (!peer || !*peer || !outlen) return false;
  const char *host = peer;
  size_t len = strlen(peer);
  if (strncmp(peer, "ipv4:", 5) == 0) {
    host = peer + 5;
    const char *colon = strrchr(host, ':');
    len = colon ? (size_t)(colon - host) : strlen(host);
  } else if (strncmp(peer, "ipv6:", 5) == 0) {
    host = peer + 5;
    const char *end = NULL;
    if (host[0] == '[') {
      host++;
      end = strchr(host, ']');
    } else if (strncasecmp(host, "%5B", 3) == 0) {
      host += 3;
      end = strcasestr(host, "%5D");
    }
    len = end ? (size_t)(end - host) : strlen(host);
    /* An IPv4 client on a dual-stack socket: key it like the ipv4: form. */
    if (len > 7 && strncasecmp(host, "::ffff:", 7) == 0 && memchr(host + 7, '.', len - 7)) {
      host += 7;
      len -= 7;
    }
  }
  if (len == 0 || len >= outlen) return false;
  memcpy(out, host, len);
  out[len] = '\0';
  return true;
}

static int ratelimit_before(rpc_call *call, void *arg) {
  rpc_ratelimit *rl = arg;
  /* The standard services (health probes from load balancers, reflection)
   * are not charged: throttling a probe would take a healthy server out of
   * rotation. */
  if (strncmp(rpc_call_method(call), "/grpc.", 6) == 0) return GRPC_STATUS_OK;
  const char *key = rpc_call_principal(call);
  bool anonymous = key == NULL;
  char host[RL_HOST_MAX];
  if (anonymous) {
    key = rpc_call_peer(call);
    if (rpc_ratelimit_peer_host(key, host, sizeof(host))) key = host;
  }
  int64_t wait_ms = 0;
  if (rpc_ratelimit_take(rl, key, anonymous, &wait_ms)) return GRPC_STATUS_OK;
  char value[24];
  snprintf(value, sizeof(value), "%lld", (long long)wait_ms);
  rpc_call_add_trailer(call, "retry-after-ms", value);
  return rpc_fail(call, GRPC_STATUS_RESOURCE_EXHAUSTED,
                  "rate limit exceeded for %s; retry in %lld ms", key, (long long)wait_ms);
}

rpc_interceptor rpc_ratelimit_interceptor(rpc_ratelimit *rl) {
  rpc_interceptor ic = {"rate-limit", ratelimit_before, NULL, rl};
  return ic;
}
