/* router.c — see router.h. Each shard is a chained hash table with its own rwlock;
 * the shard and bucket come from one 64-bit FNV-1a hash of the key (and peer). */
#include "relay/router.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define ROUTER_SHARDS 64

struct entry {
    struct entry *next;
    uint64_t hash;
    struct route route;
    uint32_t key_len, peer_len;
    uint8_t bytes[]; /* key then peer */
};

struct shard {
    pthread_rwlock_t lock;
    struct entry **buckets;
    size_t n_buckets; /* power of two */
    size_t count;
};

struct table {
    struct shard shards[ROUTER_SHARDS];
    _Atomic size_t count;
    _Atomic size_t pairs; /* entries with a peer: skip pair lookups while 0 */
};

/* The fallback sessions of an endpoint (router_fallback_add), by endpoint ID. */
struct fallback_set {
    struct fallback_set *next;
    uint64_t hash;
    uint32_t key_len;
    uint32_t n, cap;
    struct route *routes; /* oldest first */
    uint8_t key[];
};

struct fallback_shard {
    pthread_rwlock_t lock;
    struct fallback_set **buckets;
    size_t n_buckets; /* power of two */
    size_t count;
};

struct router {
    struct table tables[ROUTER_TABLES];
    struct fallback_shard fallback_shards[ROUTER_SHARDS];
    _Atomic size_t fallbacks; /* sessions in the fallback sets: skip them while 0 */
};

static uint64_t hash_key(struct span key, struct span peer)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < key.len; i++)
        h = (h ^ key.ptr[i]) * 1099511628211ull;
    if (peer.len) {
        h = (h ^ 0xffu) * 1099511628211ull; /* separator: IDs never hold 0xff */
        for (size_t i = 0; i < peer.len; i++)
            h = (h ^ peer.ptr[i]) * 1099511628211ull;
    }
    return h;
}

static struct shard *shard_of(struct table *t, uint64_t h)
{
    return &t->shards[(h >> 58) & (ROUTER_SHARDS - 1)];
}

static int entry_matches(const struct entry *e, uint64_t h, struct span key, struct span peer)
{
    return e->hash == h && e->key_len == key.len && e->peer_len == peer.len &&
           memcmp(e->bytes, key.ptr, key.len) == 0 &&
           (peer.len == 0 || memcmp(e->bytes + key.len, peer.ptr, peer.len) == 0);
}

static struct entry **find_slot(struct shard *s, uint64_t h, struct span key, struct span peer)
{
    struct entry **pp = &s->buckets[h & (s->n_buckets - 1)];
    while (*pp && !entry_matches(*pp, h, key, peer))
        pp = &(*pp)->next;
    return pp;
}

static int shard_grow(struct shard *s)
{
    size_t n = s->n_buckets * 2;
    struct entry **nb = calloc(n, sizeof *nb);
    if (!nb)
        return -1;
    for (size_t i = 0; i < s->n_buckets; i++) {
        struct entry *e = s->buckets[i];
        while (e) {
            struct entry *next = e->next;
            e->next = nb[e->hash & (n - 1)];
            nb[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(s->buckets);
    s->buckets = nb;
    s->n_buckets = n;
    return 0;
}

struct router *router_new(void)
{
    struct router *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    for (int t = 0; t < ROUTER_TABLES; t++) {
        for (int i = 0; i < ROUTER_SHARDS; i++) {
            struct shard *s = &r->tables[t].shards[i];
            pthread_rwlock_init(&s->lock, NULL);
            s->n_buckets = 16;
            s->buckets = calloc(s->n_buckets, sizeof *s->buckets);
            if (!s->buckets) {
                router_free(r);
                return NULL;
            }
        }
    }
    for (int i = 0; i < ROUTER_SHARDS; i++) {
        struct fallback_shard *ps = &r->fallback_shards[i];
        pthread_rwlock_init(&ps->lock, NULL);
        ps->n_buckets = 16;
        ps->buckets = calloc(ps->n_buckets, sizeof *ps->buckets);
        if (!ps->buckets) {
            router_free(r);
            return NULL;
        }
    }
    return r;
}

void router_free(struct router *r)
{
    if (!r)
        return;
    for (int t = 0; t < ROUTER_TABLES; t++) {
        for (int i = 0; i < ROUTER_SHARDS; i++) {
            struct shard *s = &r->tables[t].shards[i];
            for (size_t b = 0; s->buckets && b < s->n_buckets; b++) {
                struct entry *e = s->buckets[b];
                while (e) {
                    struct entry *next = e->next;
                    free(e);
                    e = next;
                }
            }
            free(s->buckets);
            pthread_rwlock_destroy(&s->lock);
        }
    }
    for (int i = 0; i < ROUTER_SHARDS; i++) {
        struct fallback_shard *ps = &r->fallback_shards[i];
        for (size_t b = 0; ps->buckets && b < ps->n_buckets; b++) {
            struct fallback_set *e = ps->buckets[b];
            while (e) {
                struct fallback_set *next = e->next;
                free(e->routes);
                free(e);
                e = next;
            }
        }
        free(ps->buckets);
        if (ps->n_buckets) /* initialised */
            pthread_rwlock_destroy(&ps->lock);
    }
    free(r);
}

/* ------------------------------------------------------------------ fallback sets */

static struct fallback_set **fallback_slot(struct fallback_shard *ps, uint64_t h, struct span key)
{
    struct fallback_set **pp = &ps->buckets[h & (ps->n_buckets - 1)];
    while (*pp && !((*pp)->hash == h && (*pp)->key_len == key.len &&
                    memcmp((*pp)->key, key.ptr, key.len) == 0))
        pp = &(*pp)->next;
    return pp;
}

static void fallback_shard_grow(struct fallback_shard *ps)
{
    size_t n = ps->n_buckets * 2;
    struct fallback_set **nb = calloc(n, sizeof *nb);
    if (!nb)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < ps->n_buckets; i++) {
        struct fallback_set *e = ps->buckets[i];
        while (e) {
            struct fallback_set *next = e->next;
            e->next = nb[e->hash & (n - 1)];
            nb[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(ps->buckets);
    ps->buckets = nb;
    ps->n_buckets = n;
}

int router_fallback_add(struct router *r, struct span key, struct route t)
{
    static const struct span none = {NULL, 0};
    uint64_t h = hash_key(key, none);
    struct fallback_shard *ps = &r->fallback_shards[(h >> 58) & (ROUTER_SHARDS - 1)];
    int rc = -1;
    pthread_rwlock_wrlock(&ps->lock);
    struct fallback_set **slot = fallback_slot(ps, h, key), *e = *slot;
    if (!e) {
        e = calloc(1, sizeof *e + key.len);
        if (!e)
            goto out;
        e->hash = h;
        e->key_len = (uint32_t)key.len;
        memcpy(e->key, key.ptr, key.len);
        *slot = e;
        if (++ps->count > ps->n_buckets)
            fallback_shard_grow(ps);
    }
    if (e->n == e->cap) {
        uint32_t ncap = e->cap ? e->cap * 2 : 2;
        struct route *nr = realloc(e->routes, ncap * sizeof *nr);
        if (!nr)
            goto out; /* an empty set is dropped by the next removal or at free */
        e->routes = nr;
        e->cap = ncap;
    }
    e->routes[e->n++] = t;
    atomic_fetch_add(&r->fallbacks, 1);
    rc = 0;
out:
    pthread_rwlock_unlock(&ps->lock);
    return rc;
}

void router_fallback_remove(struct router *r, struct span key, uint64_t conn_id)
{
    static const struct span none = {NULL, 0};
    uint64_t h = hash_key(key, none);
    struct fallback_shard *ps = &r->fallback_shards[(h >> 58) & (ROUTER_SHARDS - 1)];
    pthread_rwlock_wrlock(&ps->lock);
    struct fallback_set **slot = fallback_slot(ps, h, key), *e = *slot;
    if (e) {
        for (uint32_t i = 0; i < e->n; i++) {
            if (e->routes[i].conn_id == conn_id) {
                memmove(&e->routes[i], &e->routes[i + 1], (e->n - i - 1) * sizeof *e->routes);
                e->n--;
                atomic_fetch_sub(&r->fallbacks, 1);
                break;
            }
        }
        if (e->n == 0) {
            *slot = e->next;
            free(e->routes);
            free(e);
            ps->count--;
        }
    }
    pthread_rwlock_unlock(&ps->lock);
}

/* The newest fallback session of KEY. 0 or -1. */
static int fallback_any(struct router *r, struct span key, struct route *out)
{
    static const struct span none = {NULL, 0};
    uint64_t h = hash_key(key, none);
    struct fallback_shard *ps = &r->fallback_shards[(h >> 58) & (ROUTER_SHARDS - 1)];
    int rc = -1;
    pthread_rwlock_rdlock(&ps->lock);
    struct fallback_set *e = *fallback_slot(ps, h, key);
    if (e && e->n) {
        *out = e->routes[e->n - 1];
        rc = 0;
    }
    pthread_rwlock_unlock(&ps->lock);
    return rc;
}

int router_bind(struct router *r, enum router_table table, struct span key, struct span peer,
                struct route t, enum duplicate_id_policy pol, struct route *old)
{
    struct table *tb = &r->tables[table];
    uint64_t h = hash_key(key, peer);
    struct shard *s = shard_of(tb, h);
    int rc;

    pthread_rwlock_wrlock(&s->lock);
    struct entry **slot = find_slot(s, h, key, peer);
    if (*slot) {
        struct entry *e = *slot;
        if (e->route.conn_id == t.conn_id) {
            rc = ROUTER_BOUND;
        } else if (pol == DUP_REFUSE_NEW) {
            if (old)
                *old = e->route;
            rc = ROUTER_REFUSED;
        } else {
            if (old)
                *old = e->route;
            e->route = t;
            rc = ROUTER_REPLACED;
        }
        goto out;
    }
    struct entry *e = malloc(sizeof *e + key.len + peer.len);
    if (!e) {
        rc = ROUTER_NOMEM;
        goto out;
    }
    e->hash = h;
    e->route = t;
    e->key_len = (uint32_t)key.len;
    e->peer_len = (uint32_t)peer.len;
    memcpy(e->bytes, key.ptr, key.len);
    if (peer.len)
        memcpy(e->bytes + key.len, peer.ptr, peer.len);
    e->next = NULL;
    *slot = e;
    s->count++;
    atomic_fetch_add(&tb->count, 1);
    if (peer.len)
        atomic_fetch_add(&tb->pairs, 1);
    if (s->count > s->n_buckets)
        (void)shard_grow(s); /* a failed grow only costs longer chains */
    rc = ROUTER_BOUND;
out:
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

int router_unbind(struct router *r, enum router_table table, struct span key, struct span peer,
                  uint64_t conn_id)
{
    struct table *tb = &r->tables[table];
    uint64_t h = hash_key(key, peer);
    struct shard *s = shard_of(tb, h);
    int removed = 0;

    pthread_rwlock_wrlock(&s->lock);
    struct entry **slot = find_slot(s, h, key, peer);
    if (*slot && (*slot)->route.conn_id == conn_id) {
        struct entry *e = *slot;
        *slot = e->next;
        free(e);
        s->count--;
        atomic_fetch_sub(&tb->count, 1);
        if (peer.len)
            atomic_fetch_sub(&tb->pairs, 1);
        removed = 1;
    }
    pthread_rwlock_unlock(&s->lock);
    return removed;
}

int router_get(struct router *r, enum router_table table, struct span key, struct span peer,
               struct route *out)
{
    struct table *tb = &r->tables[table];
    uint64_t h = hash_key(key, peer);
    struct shard *s = shard_of(tb, h);
    int rc = -1;

    pthread_rwlock_rdlock(&s->lock);
    struct entry *e = *find_slot(s, h, key, peer);
    if (e) {
        *out = e->route;
        rc = 0;
    }
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

int router_lookup(struct router *r, struct span to, struct span from, struct route *out)
{
    static const struct span none = {NULL, 0};
    int pairs = atomic_load_explicit(&r->tables[ROUTER_IDS].pairs, memory_order_relaxed) != 0;
    if (pairs && router_get(r, ROUTER_IDS, to, from, out) == 0)
        return 0;
    if (router_get(r, ROUTER_IDS, to, none, out) == 0)
        return 0;
    return atomic_load_explicit(&r->fallbacks, memory_order_relaxed) ? fallback_any(r, to, out)
                                                                     : -1;
}

size_t router_count(struct router *r, enum router_table table)
{
    return atomic_load(&r->tables[table].count);
}
