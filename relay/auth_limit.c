/* auth_limit.c — the failed-login limiter (see auth_limit.h): a fixed table of
 * AUTH_LIMIT_TABLE addresses with hash chains for lookup and a free list, behind one
 * mutex. Every operation is O(chain) except inserting into a full table, which scans
 * the table once for the entry to replace.
 */
#include "relay/auth_limit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define N_BUCKETS (AUTH_LIMIT_TABLE * 2u)
#define NONE (-1)

/* The times of an address's last AUTH_LIMIT_FAILURES + 1 failures (a sliding window,
 * so no burst at a window's edge): when all of them fall within AUTH_LIMIT_WINDOW_MS,
 * the address is blocked. */
#define RING (AUTH_LIMIT_FAILURES + 1)

struct al_entry {
    unsigned char key[16];  /* IPv6 /64 (low half zero); IPv4 as ::ffff:a.b.c.d */
    uint64_t at[RING];      /* failure times, oldest at HEAD once N == RING */
    unsigned n, head;
    uint64_t blocked_until; /* 0: not blocked */
    int next;               /* hash chain, or free list when unused */
    int used;
};

struct auth_limit {
    pthread_mutex_t mu;
    int buckets[N_BUCKETS];
    struct al_entry e[AUTH_LIMIT_TABLE];
    int free_head;
    size_t n_used;
};

_Static_assert(AUTH_LIMIT_TABLE < 1u << 30, "entry indexes fit an int");

struct auth_limit *auth_limit_new(void)
{
    struct auth_limit *al = calloc(1, sizeof *al);
    if (!al)
        return NULL;
    if (pthread_mutex_init(&al->mu, NULL) != 0) {
        free(al);
        return NULL;
    }
    for (unsigned i = 0; i < N_BUCKETS; i++)
        al->buckets[i] = NONE;
    for (unsigned i = 0; i < AUTH_LIMIT_TABLE; i++)
        al->e[i].next = i + 1 < AUTH_LIMIT_TABLE ? (int)(i + 1) : NONE;
    al->free_head = 0;
    return al;
}

void auth_limit_free(struct auth_limit *al)
{
    if (!al)
        return;
    pthread_mutex_destroy(&al->mu);
    free(al);
}

/* ------------------------------------------------------------------ addresses */

/* PEER's address as a 16-byte key. 0, or -1 when not limited. */
static int peer_key(const char *peer, unsigned char key[16])
{
    if (!peer)
        return -1;
    if (strncmp(peer, "ws:", 3) == 0)
        peer += 3;
    if (strncmp(peer, "unix:", 5) == 0)
        return -1;
    const char *host = peer, *end;
    int v6 = peer[0] == '[';
    if (v6) {
        host++;
        end = strchr(host, ']');
        if (!end || end[1] != ':')
            return -1;
    } else {
        end = strrchr(peer, ':');
        if (!end)
            return -1;
    }
    char buf[INET6_ADDRSTRLEN];
    size_t n = (size_t)(end - host);
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, host, n);
    buf[n] = '\0';
    if (v6) {
        struct in6_addr a6;
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (inet_pton(AF_INET6, buf, &a6) != 1)
            return -1;
        memcpy(key, &a6, 16);
        /* One subscriber holds a whole /64: counting per address would give each of its
         * 2^64 addresses an allowance of its own. */
        if (memcmp(key, mapped, 12) != 0)
            memset(key + 8, 0, 8);
    } else {
        struct in_addr a4;
        if (inet_pton(AF_INET, buf, &a4) != 1)
            return -1;
        memset(key, 0, 10);
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &a4, 4);
    }
    return 0;
}

int auth_limit_peer_addr(const char *peer, char *out, size_t cap)
{
    unsigned char key[16];
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (peer_key(peer, key) != 0 || cap > (size_t)1 << 30)
        return -1;
    if (memcmp(key, mapped, 12) == 0)
        return inet_ntop(AF_INET, key + 12, out, (socklen_t)cap) ? 0 : -1;
    return inet_ntop(AF_INET6, key, out, (socklen_t)cap) ? 0 : -1;
}

/* ------------------------------------------------------------------ the table */

static unsigned bucket_of(const unsigned char key[16])
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 16777619u;
    return h % N_BUCKETS;
}

static int lookup(const struct auth_limit *al, const unsigned char key[16])
{
    for (int i = al->buckets[bucket_of(key)]; i != NONE; i = al->e[i].next)
        if (memcmp(al->e[i].key, key, 16) == 0)
            return i;
    return NONE;
}

static void unlink_entry(struct auth_limit *al, int idx)
{
    int *p = &al->buckets[bucket_of(al->e[idx].key)];
    while (*p != idx)
        p = &al->e[*p].next;
    *p = al->e[idx].next;
    al->e[idx].used = 0;
    al->e[idx].next = al->free_head;
    al->free_head = idx;
    al->n_used--;
}

static uint64_t newest(const struct al_entry *e)
{
    return e->n ? e->at[(e->head + RING - 1) % RING] : 0;
}

/* When entry E stops mattering: the end of its block, or its newest failure leaving the
 * window. */
static uint64_t expiry(const struct al_entry *e)
{
    uint64_t w = newest(e) + AUTH_LIMIT_WINDOW_MS;
    return e->blocked_until > w ? e->blocked_until : w;
}

/* Failures of E within the window ending at NOW_MS. */
static unsigned recent(const struct al_entry *e, uint64_t now_ms)
{
    unsigned k = 0;
    for (unsigned i = 0; i < e->n; i++) {
        uint64_t t = e->at[(e->head + RING - 1 - i) % RING];
        if (now_ms >= t && now_ms - t >= AUTH_LIMIT_WINDOW_MS)
            break;
        k++;
    }
    return k;
}

static int insert(struct auth_limit *al, const unsigned char key[16])
{
    if (al->free_head == NONE) {
        int victim = 0;
        for (int i = 1; i < (int)AUTH_LIMIT_TABLE; i++)
            if (expiry(&al->e[i]) < expiry(&al->e[victim]))
                victim = i;
        unlink_entry(al, victim);
    }
    int idx = al->free_head;
    struct al_entry *e = &al->e[idx];
    al->free_head = e->next;
    memset(e, 0, sizeof *e);
    memcpy(e->key, key, 16);
    e->used = 1;
    unsigned b = bucket_of(key);
    e->next = al->buckets[b];
    al->buckets[b] = idx;
    al->n_used++;
    return idx;
}

int auth_limit_blocked(struct auth_limit *al, const char *peer, uint64_t now_ms)
{
    unsigned char key[16];
    if (!al || peer_key(peer, key) != 0)
        return 0;
    pthread_mutex_lock(&al->mu);
    int i = lookup(al, key);
    int blocked = i != NONE && al->e[i].blocked_until > now_ms;
    pthread_mutex_unlock(&al->mu);
    return blocked;
}

unsigned auth_limit_failed(struct auth_limit *al, const char *peer, uint64_t now_ms)
{
    unsigned char key[16];
    if (!al || peer_key(peer, key) != 0)
        return 0;
    pthread_mutex_lock(&al->mu);
    int i = lookup(al, key);
    if (i == NONE)
        i = insert(al, key);
    struct al_entry *e = &al->e[i];
    /* Refused unchecked while blocked: no guess, so neither counted nor extending. */
    if (e->blocked_until <= now_ms) {
        e->at[e->head] = now_ms;
        e->head = (e->head + 1) % RING;
        if (e->n < RING)
            e->n++;
        /* the oldest of the last RING failures is at HEAD */
        if (e->n == RING && now_ms >= e->at[e->head] &&
            now_ms - e->at[e->head] < AUTH_LIMIT_WINDOW_MS)
            e->blocked_until = now_ms + AUTH_LIMIT_BLOCK_MS;
    }
    unsigned n = recent(e, now_ms);
    pthread_mutex_unlock(&al->mu);
    return n;
}

size_t auth_limit_size(struct auth_limit *al)
{
    if (!al)
        return 0;
    pthread_mutex_lock(&al->mu);
    size_t n = al->n_used;
    pthread_mutex_unlock(&al->mu);
    return n;
}
