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

struct router {
    struct table tables[ROUTER_TABLES];
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
    free(r);
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
    if (atomic_load_explicit(&r->tables[ROUTER_IDS].pairs, memory_order_relaxed) &&
        router_get(r, ROUTER_IDS, to, from, out) == 0)
        return 0;
    return router_get(r, ROUTER_IDS, to, none, out);
}

size_t router_count(struct router *r, enum router_table table)
{
    return atomic_load(&r->tables[table].count);
}
