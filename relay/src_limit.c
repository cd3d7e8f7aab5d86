/* src_limit.c — the per-source connection table and the listeners' token buckets (see
 * src_limit.h): a chained hash table whose entries are allocated when an address opens
 * its first counted connection and freed with its last, behind one mutex.
 */
#include "relay/src_limit.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define NS_PER_S 1000000000ull
#define MIN_BUCKETS 64u

struct src_entry {
    struct src_key key;
    uint32_t count;
    struct src_entry *next;
};

struct src_gate {
    struct token_bucket tb;
    int ready;                  /* tb set up (on first use) */
    _Atomic uint64_t log_sec;   /* second of the last log line + 1; 0: none yet */
};

struct src_limit {
    pthread_mutex_t mu;
    struct src_entry **buckets;
    size_t n_buckets; /* power of two */
    size_t n_entries;
    size_t max_entries;
    uint64_t k0, k1; /* hash secret */
    struct src_gate *gates;
    size_t n_gates;
};

/* ------------------------------------------------------------------ keys */

int src_key_from_sockaddr(const struct sockaddr *sa, socklen_t len, uint32_t scope,
                          struct src_key *out)
{
    memset(out, 0, sizeof *out);
    out->scope = scope;
    if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        out->addr[10] = out->addr[11] = 0xff;
        memcpy(out->addr + 12, &in->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        memcpy(out->addr, &in6->sin6_addr, 16); /* a mapped IPv4 is already ::ffff:a.b.c.d */
        return 0;
    }
    return -1;
}

static int key_eq(const struct src_key *a, const struct src_key *b)
{
    return a->scope == b->scope && memcmp(a->addr, b->addr, sizeof a->addr) == 0;
}

/* ------------------------------------------------------------------ hashing */

static uint64_t rotl(uint64_t x, unsigned b)
{
    return (x << b) | (x >> (64u - b));
}

struct sip {
    uint64_t v0, v1, v2, v3;
};

static void sip_round(struct sip *s)
{
    s->v0 += s->v1;
    s->v1 = rotl(s->v1, 13) ^ s->v0;
    s->v0 = rotl(s->v0, 32);
    s->v2 += s->v3;
    s->v3 = rotl(s->v3, 16) ^ s->v2;
    s->v0 += s->v3;
    s->v3 = rotl(s->v3, 21) ^ s->v0;
    s->v2 += s->v1;
    s->v1 = rotl(s->v1, 17) ^ s->v2;
    s->v2 = rotl(s->v2, 32);
}

static void sip_word(struct sip *s, uint64_t m)
{
    s->v3 ^= m;
    sip_round(s);
    sip_round(s);
    s->v0 ^= m;
}

/* SipHash-2-4 of the key's 20 bytes under the table's secret. */
static uint64_t key_hash(const struct src_limit *t, const struct src_key *k)
{
    struct sip s = {t->k0 ^ 0x736f6d6570736575ull, t->k1 ^ 0x646f72616e646f6dull,
                    t->k0 ^ 0x6c7967656e657261ull, t->k1 ^ 0x7465646279746573ull};
    uint64_t w0, w1;
    memcpy(&w0, k->addr, 8);
    memcpy(&w1, k->addr + 8, 8);
    sip_word(&s, w0);
    sip_word(&s, w1);
    sip_word(&s, (uint64_t)k->scope | (20ull << 56));
    s.v2 ^= 0xff;
    for (int i = 0; i < 4; i++)
        sip_round(&s);
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

static void seed(struct src_limit *t)
{
    uint64_t k[2];
    if (getrandom(k, sizeof k, GRND_NONBLOCK) != (ssize_t)sizeof k) {
        /* Early boot, before the kernel's pool is ready: unpredictable enough to a
         * remote peer, which never sees the hash. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        k[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)t;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        k[1] = (uint64_t)ts.tv_sec * 0xbf58476d1ce4e5b9ull ^ (uint64_t)ts.tv_nsec;
    }
    t->k0 = k[0];
    t->k1 = k[1];
}

/* ------------------------------------------------------------------ token bucket */

void token_bucket_init(struct token_bucket *b, uint32_t rate, uint32_t burst, uint64_t now_ns)
{
    b->rate = rate;
    b->cap = (uint64_t)(burst ? burst : rate) * NS_PER_S;
    b->level = b->cap;
    b->last_ns = now_ns;
}

int token_bucket_take(struct token_bucket *b, uint64_t now_ns)
{
    if (now_ns > b->last_ns && b->rate) {
        uint64_t dt = now_ns - b->last_ns, room = b->cap - b->level;
        /* rate tokens/s = rate units/ns; compared by division first so dt * rate cannot
         * overflow however long the bucket sat idle. */
        if (dt >= room / b->rate + 1)
            b->level = b->cap;
        else
            b->level += dt * b->rate;
        if (b->level > b->cap)
            b->level = b->cap;
    }
    if (now_ns > b->last_ns)
        b->last_ns = now_ns;
    if (b->level < NS_PER_S)
        return 0;
    b->level -= NS_PER_S;
    return 1;
}

/* ------------------------------------------------------------------ the table */

struct src_limit *src_limit_new(size_t max_entries, size_t n_gates)
{
    struct src_limit *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->n_buckets = MIN_BUCKETS;
    t->buckets = calloc(t->n_buckets, sizeof *t->buckets);
    t->gates = calloc(n_gates ? n_gates : 1, sizeof *t->gates);
    if (!t->buckets || !t->gates || pthread_mutex_init(&t->mu, NULL) != 0) {
        free(t->buckets);
        free(t->gates);
        free(t);
        return NULL;
    }
    t->max_entries = max_entries;
    t->n_gates = n_gates;
    seed(t);
    return t;
}

void src_limit_free(struct src_limit *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_buckets; i++) {
        struct src_entry *e = t->buckets[i];
        while (e) {
            struct src_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(t->buckets);
    free(t->gates);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

static struct src_entry **slot(struct src_limit *t, const struct src_key *k)
{
    struct src_entry **pp = &t->buckets[key_hash(t, k) & (t->n_buckets - 1)];
    while (*pp && !key_eq(&(*pp)->key, k))
        pp = &(*pp)->next;
    return pp;
}

/* Twice the buckets, when entries outnumber them; without memory, chains get longer. */
static void grow(struct src_limit *t)
{
    size_t n = t->n_buckets * 2;
    struct src_entry **nb = calloc(n, sizeof *nb);
    if (!nb)
        return;
    for (size_t i = 0; i < t->n_buckets; i++) {
        struct src_entry *e = t->buckets[i];
        while (e) {
            struct src_entry *next = e->next;
            size_t s = key_hash(t, &e->key) & (n - 1);
            e->next = nb[s];
            nb[s] = e;
            e = next;
        }
    }
    free(t->buckets);
    t->buckets = nb;
    t->n_buckets = n;
}

int src_limit_acquire(struct src_limit *t, const struct src_key *k, uint32_t limit)
{
    int rc = SRC_LIMIT_OK;
    pthread_mutex_lock(&t->mu);
    struct src_entry **pp = slot(t, k);
    if (*pp) {
        if ((*pp)->count >= limit)
            rc = SRC_LIMIT_OVER;
        else
            (*pp)->count++;
    } else if (limit == 0) {
        rc = SRC_LIMIT_OVER;
    } else if (t->n_entries >= t->max_entries) {
        rc = SRC_LIMIT_FULL;
    } else {
        struct src_entry *e = malloc(sizeof *e);
        if (!e) {
            rc = SRC_LIMIT_NOMEM;
        } else {
            e->key = *k;
            e->count = 1;
            e->next = NULL;
            *pp = e;
            if (++t->n_entries > t->n_buckets)
                grow(t);
        }
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

void src_limit_release(struct src_limit *t, const struct src_key *k)
{
    pthread_mutex_lock(&t->mu);
    struct src_entry **pp = slot(t, k);
    struct src_entry *e = *pp;
    if (e && --e->count == 0) {
        *pp = e->next;
        t->n_entries--;
        free(e);
    }
    pthread_mutex_unlock(&t->mu);
}

uint32_t src_limit_count(struct src_limit *t, const struct src_key *k)
{
    pthread_mutex_lock(&t->mu);
    struct src_entry *e = *slot(t, k);
    uint32_t n = e ? e->count : 0;
    pthread_mutex_unlock(&t->mu);
    return n;
}

size_t src_limit_entries(struct src_limit *t)
{
    pthread_mutex_lock(&t->mu);
    size_t n = t->n_entries;
    pthread_mutex_unlock(&t->mu);
    return n;
}

/* ------------------------------------------------------------------ gates */

int src_limit_rate_take(struct src_limit *t, size_t gate, uint32_t rate, uint32_t burst,
                        uint64_t now_ns)
{
    if (rate == 0 || gate >= t->n_gates)
        return 1;
    struct src_gate *g = &t->gates[gate];
    pthread_mutex_lock(&t->mu);
    if (!g->ready) {
        token_bucket_init(&g->tb, rate, burst, now_ns);
        g->ready = 1;
    }
    int ok = token_bucket_take(&g->tb, now_ns);
    pthread_mutex_unlock(&t->mu);
    return ok;
}

int src_limit_log_due(struct src_limit *t, size_t gate, uint64_t now_ns)
{
    if (gate >= t->n_gates)
        return 0;
    uint64_t sec = now_ns / NS_PER_S + 1;
    uint64_t old = atomic_load(&t->gates[gate].log_sec);
    return old != sec && atomic_compare_exchange_strong(&t->gates[gate].log_sec, &old, sec);
}
