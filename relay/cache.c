/* cache.c — the offline cache: per-endpoint FIFO queues of units (one Record or one SAR
 * series), a global age list for expiry and global eviction, one mutex (see cache.h).
 */
#include "relay/cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

enum { SAR_NONE = 0, SAR_BEGIN = 1, SAR_INPROCESS = 2, SAR_COMPLETE = 3 };

/* Series dropped while their sender was still sending them: later segments are
 * dropped on arrival. A small ring (oldest forgotten first) — what it forgets is at most
 * a partial series that the endpoint's own SAR reassembly then discards. */
#define BROKEN_MAX 256

struct unit {
    struct unit *q_next;              /* endpoint queue */
    struct unit *age_prev, *age_next; /* global age list, oldest first */
    struct ep *ep;
    struct rbuf **recs; /* &one for a single Record: no second allocation */
    struct rbuf *one;
    uint32_t n, cap;
    uint32_t taken;   /* records of this unit already handed out (to pinned) */
    struct route pinned; /* the connection a partly handed-out series belongs to */
    uint64_t bytes;   /* of the records not yet handed out */
    uint64_t born_ns; /* stored at */
    uint64_t rx_ns;   /* its first Record was received at: the queue's order */
    uint8_t sar;      /* a series (else one Record) */
    uint8_t complete; /* a series: COMPLETE arrived */
    uint8_t has_begin; /* a series: its BEGIN is here (else it began elsewhere) */
    uint64_t session_id, first_seq, next_seq;
    int held;                /* waits for cache_release(hold) */
    struct cache_hold hold;
};

struct ep {
    struct ep *h_next;
    uint64_t hash;
    char *eid;
    size_t eid_len;
    struct unit *head, *tail;
    uint64_t records, bytes;
    int notified;
};

struct broken {
    char *to, *from;
    size_t to_len, from_len;
    uint64_t session_id;
};

struct cache {
    pthread_mutex_t lock;
    struct cache_limits lim;
    uint64_t seed;
    struct ep **buckets;
    size_t nbuckets, n_eps;
    atomic_size_t n_eps_pub; /* n_eps, for the lock-free "nothing cached" answer */
    struct unit *age_head, *age_tail;
    uint64_t records, bytes;
    struct broken broken[BROKEN_MAX];
    size_t broken_next;
};

/* ------------------------------------------------------------------ helpers */

static int span_is(struct span s, const char *p, size_t n)
{
    return s.len == n && memcmp(s.ptr, p, n) == 0;
}

static uint64_t hash_eid(const struct cache *c, struct span eid)
{
    uint64_t h = 1469598103934665603ULL ^ c->seed;
    for (size_t i = 0; i < eid.len; i++) {
        h ^= eid.ptr[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

static struct ep *ep_find(struct cache *c, struct span eid, uint64_t h, struct ep ***slot)
{
    struct ep **pp = &c->buckets[h & (c->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->h_next)
        if ((*pp)->hash == h && span_is(eid, (*pp)->eid, (*pp)->eid_len))
            break;
    if (slot)
        *slot = pp;
    return *pp;
}

static void grow_buckets(struct cache *c)
{
    size_t n = c->nbuckets * 2;
    struct ep **nb = calloc(n, sizeof *nb);
    if (!nb)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < c->nbuckets; i++) {
        struct ep *e = c->buckets[i];
        while (e) {
            struct ep *next = e->h_next;
            e->h_next = nb[e->hash & (n - 1)];
            nb[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(c->buckets);
    c->buckets = nb;
    c->nbuckets = n;
}

static struct ep *ep_get(struct cache *c, struct span eid)
{
    uint64_t h = hash_eid(c, eid);
    struct ep **slot;
    struct ep *e = ep_find(c, eid, h, &slot);
    if (e)
        return e;
    e = calloc(1, sizeof *e);
    if (!e || !(e->eid = malloc(eid.len + 1))) {
        free(e);
        return NULL;
    }
    memcpy(e->eid, eid.ptr, eid.len);
    e->eid[eid.len] = '\0';
    e->eid_len = eid.len;
    e->hash = h;
    *slot = e;
    c->n_eps++;
    atomic_store_explicit(&c->n_eps_pub, c->n_eps, memory_order_release);
    if (c->n_eps > c->nbuckets)
        grow_buckets(c);
    return e;
}

static void ep_remove(struct cache *c, struct ep *e)
{
    struct ep **slot;
    struct span eid = {(const uint8_t *)e->eid, e->eid_len};
    if (ep_find(c, eid, e->hash, &slot) == e)
        *slot = e->h_next;
    free(e->eid);
    free(e);
    c->n_eps--;
    atomic_store_explicit(&c->n_eps_pub, c->n_eps, memory_order_release);
}

static struct span unit_from(const struct unit *u)
{
    return u->recs[0]->hdr.from_id;
}

/* ------------------------------------------------------------------ broken series */

static void broken_add(struct cache *c, struct span to, struct span from, uint64_t session)
{
    struct broken *b = &c->broken[c->broken_next];
    char *t = malloc(to.len + 1), *f = malloc(from.len + 1);
    if (!t || !f) {
        free(t);
        free(f);
        return;
    }
    free(b->to);
    free(b->from);
    memcpy(t, to.ptr, to.len);
    memcpy(f, from.ptr, from.len);
    *b = (struct broken){t, f, to.len, from.len, session};
    c->broken_next = (c->broken_next + 1) % BROKEN_MAX;
}

static struct broken *broken_find(struct cache *c, struct span to, struct span from,
                                  uint64_t session)
{
    for (size_t i = 0; i < BROKEN_MAX; i++) {
        struct broken *b = &c->broken[i];
        if (b->to && b->session_id == session && span_is(to, b->to, b->to_len) &&
            span_is(from, b->from, b->from_len))
            return b;
    }
    return NULL;
}

static void broken_forget(struct broken *b)
{
    if (!b)
        return;
    free(b->to);
    free(b->from);
    memset(b, 0, sizeof *b);
}

/* ------------------------------------------------------------------ units */

static void age_unlink(struct cache *c, struct unit *u)
{
    if (u->age_prev)
        u->age_prev->age_next = u->age_next;
    else
        c->age_head = u->age_next;
    if (u->age_next)
        u->age_next->age_prev = u->age_prev;
    else
        c->age_tail = u->age_prev;
}

/* Put U (not in the queue) into E's queue by its receive time: before the first unit
 * received later that nothing was taken from yet; nearly always an append. */
static void queue_insert(struct ep *e, struct unit *u)
{
    u->q_next = NULL;
    if (!e->tail || e->tail->rx_ns <= u->rx_ns) {
        if (e->tail)
            e->tail->q_next = u;
        else
            e->head = u;
        e->tail = u;
        return;
    }
    struct unit **pp = &e->head;
    while (*pp && ((*pp)->rx_ns <= u->rx_ns || (*pp)->taken))
        pp = &(*pp)->q_next;
    u->q_next = *pp;
    *pp = u;
    if (!u->q_next)
        e->tail = u;
}

static void queue_unlink(struct ep *e, struct unit *u)
{
    struct unit **pp = &e->head, *prev = NULL;
    while (*pp != u) {
        prev = *pp;
        pp = &(*pp)->q_next;
    }
    *pp = u->q_next;
    if (e->tail == u)
        e->tail = prev;
}

/* Unlink U (anywhere in its queue) and free it, releasing the records not handed out;
 * they are counted under WHY (0: not counted, e.g. all were delivered). An incomplete
 * series is remembered as broken. Removes the endpoint when its queue empties. */
static void unit_drop(struct cache *c, struct unit *u, enum stats_counter why, int count,
                      struct stats *st)
{
    struct ep *e = u->ep;
    queue_unlink(e, u);
    age_unlink(c, u);
    uint32_t left = u->n - u->taken;
    if (u->sar && !u->complete && u->n)
        broken_add(c, (struct span){(const uint8_t *)e->eid, e->eid_len}, unit_from(u),
                   u->session_id);
    if (count && left && st)
        stats_add(st, why, left);
    for (uint32_t i = u->taken; i < u->n; i++)
        rbuf_unref(u->recs[i]);
    e->records -= left;
    e->bytes -= u->bytes;
    c->records -= left;
    c->bytes -= u->bytes;
    if (u->recs != &u->one)
        free(u->recs);
    free(u);
    if (!e->head)
        ep_remove(c, e);
}

/* A new unit for a Record received at RX_NS, placed in E's queue by receive time: two
 * threads may store Records of one sender (its worker when the destination's mailbox
 * was full, the destination's worker for one still in that mailbox), and the later
 * store may be the earlier Record. Nearly always an append. */
static struct unit *unit_new(struct cache *c, struct ep *e, uint64_t now_ns, uint64_t rx_ns)
{
    struct unit *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->ep = e;
    u->born_ns = now_ns;
    u->rx_ns = rx_ns;
    queue_insert(e, u);
    u->age_prev = c->age_tail;
    if (c->age_tail)
        c->age_tail->age_next = u;
    else
        c->age_head = u;
    c->age_tail = u;
    return u;
}

static int unit_append(struct cache *c, struct unit *u, struct rbuf *rb)
{
    if (u->cap == 0) {
        u->recs = &u->one;
        u->cap = 1;
    } else if (u->n == u->cap) {
        uint32_t ncap = u->cap < 8 ? 8 : u->cap * 2;
        struct rbuf **nv = malloc(ncap * sizeof *nv);
        if (!nv)
            return -1;
        memcpy(nv, u->recs, u->n * sizeof *nv);
        if (u->recs != &u->one)
            free(u->recs);
        u->recs = nv;
        u->cap = ncap;
    }
    u->recs[u->n++] = rb;
    u->bytes += rb->len;
    u->ep->records++;
    u->ep->bytes += rb->len;
    c->records++;
    c->bytes += rb->len;
    return 0;
}

/* RB, the segment just before U's first (it was still in the destination worker's
 * mailbox while the later ones overflowed into the cache), goes in front of U; U moves
 * to RB's place in the queue. */
static int unit_prepend(struct cache *c, struct unit *u, struct rbuf *rb)
{
    if (unit_append(c, u, rb) != 0)
        return -1;
    memmove(u->recs + 1, u->recs, (u->n - 1) * sizeof *u->recs);
    u->recs[0] = rb;
    u->first_seq = rb->hdr.sequence_id;
    if (rb->rx_ns < u->rx_ns) {
        u->rx_ns = rb->rx_ns;
        queue_unlink(u->ep, u);
        queue_insert(u->ep, u);
    }
    return 0;
}

/* A series of FROM in SESSION in E's queue that does not have its BEGIN and starts right
 * after sequence id SEQ, nothing of it handed out yet: where SEQ's segment belongs. */
static struct unit *series_after(struct ep *e, struct span from, uint64_t session,
                                 uint64_t seq)
{
    for (struct unit *u = e->head; u; u = u->q_next)
        if (u->sar && !u->has_begin && !u->taken && u->session_id == session &&
            u->first_seq == seq + 1 && u->n &&
            span_is(from, (const char *)unit_from(u).ptr, unit_from(u).len))
            return u;
    return NULL;
}

/* The open (incomplete) series of FROM in SESSION in E's queue, or NULL. */
static struct unit *open_series(struct ep *e, struct span from, uint64_t session)
{
    for (struct unit *u = e->head; u; u = u->q_next)
        if (u->sar && !u->complete && u->session_id == session && u->n &&
            span_is(from, (const char *)unit_from(u).ptr, unit_from(u).len))
            return u;
    return NULL;
}

/* ------------------------------------------------------------------ API */

struct cache *cache_new(const struct cache_limits *lim)
{
    struct cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->lim = *lim;
    c->nbuckets = 1024;
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    if (!c->buckets || pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c->buckets);
        free(c);
        return NULL;
    }
    /* Endpoint IDs come from senders: a secret seed keeps them from choosing chains. */
    if (RAND_bytes((unsigned char *)&c->seed, sizeof c->seed) != 1)
        c->seed = (uint64_t)(uintptr_t)c ^ rbuf_now_ns();
    atomic_init(&c->n_eps_pub, 0);
    return c;
}

void cache_free(struct cache *c)
{
    if (!c)
        return;
    while (c->age_head)
        unit_drop(c, c->age_head, STAT_cache_expired, 0, NULL);
    for (size_t i = 0; i < BROKEN_MAX; i++)
        broken_forget(&c->broken[i]);
    free(c->buckets);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* Evict oldest units while E or the whole cache is over a bound. Never evicts KEEP
 * unless it is the only thing left to evict (then it goes too, whole). */
static void enforce_bounds(struct cache *c, struct ep *e, struct stats *st)
{
    const struct cache_limits *l = &c->lim;
    while (e && e->head &&
           (e->records > l->max_records_per_endpoint || e->bytes > l->max_bytes_per_endpoint)) {
        int last = e->head == e->tail;
        unit_drop(c, e->head, STAT_cache_evicted, 1, st);
        if (last)
            e = NULL; /* removed with its last unit */
    }
    while (c->age_head && (c->records > l->max_records || c->bytes > l->max_bytes))
        unit_drop(c, c->age_head, STAT_cache_evicted_global, 1, st);
}

static int put(struct cache *c, struct rbuf *rb, uint64_t now_ns, struct stats *st,
               int *notify, const struct cache_hold *hold, int count);

int cache_put(struct cache *c, struct rbuf *rb, uint64_t now_ns, struct stats *st,
              int *notify)
{
    return put(c, rb, now_ns, st, notify, NULL, 1);
}

int cache_put_held(struct cache *c, struct rbuf *rb, uint64_t now_ns, struct stats *st,
                   int *notify, struct cache_hold hold)
{
    return put(c, rb, now_ns, st, notify, &hold, 1);
}

void cache_put_back(struct cache *c, struct rbuf *rb, uint64_t now_ns)
{
    put(c, rb, now_ns, NULL, NULL, NULL, 0);
}

void cache_release(struct cache *c, struct span eid, struct cache_hold hold)
{
    pthread_mutex_lock(&c->lock);
    struct ep *e = ep_find(c, eid, hash_eid(c, eid), NULL);
    for (struct unit *u = e ? e->head : NULL; u; u = u->q_next)
        if (u->held && u->hold.worker == hold.worker && u->hold.dest == hold.dest &&
            u->hold.seq <= hold.seq)
            u->held = 0;
    pthread_mutex_unlock(&c->lock);
}

static int put(struct cache *c, struct rbuf *rb, uint64_t now_ns, struct stats *st,
               int *notify, const struct cache_hold *hold, int count)
{
    const struct record_header *h = &rb->hdr;
    int sar = h->type == RECORD_SESSION && h->payload_sar_state != SAR_NONE;
    if (notify)
        *notify = 0;
    pthread_mutex_lock(&c->lock);
    struct ep *e = NULL;
    struct unit *u = NULL;
    if (sar) {
        struct broken *b = broken_find(c, h->to_id, h->from_id, h->session_id);
        if (b && h->payload_sar_state != SAR_BEGIN) {
            if (h->payload_sar_state == SAR_COMPLETE)
                broken_forget(b); /* the series is over: its session may start another */
            goto drop_broken;
        }
        if (b)
            broken_forget(b); /* a new series in that session */
    }
    e = ep_get(c, h->to_id);
    if (!e)
        goto nomem;
    if (sar) {
        u = h->payload_sar_state == SAR_COMPLETE
                ? NULL
                : series_after(e, h->from_id, h->session_id, h->sequence_id);
        if (u) {
            if (unit_prepend(c, u, rb) != 0)
                goto nomem;
            u->has_begin = h->payload_sar_state == SAR_BEGIN;
            if (hold) {
                u->held = 1;
                u->hold = *hold;
            }
            goto stored;
        }
        u = open_series(e, h->from_id, h->session_id);
        if (u && (h->payload_sar_state == SAR_BEGIN || h->sequence_id != u->next_seq)) {
            /* A gap, or a new series before the open one completed: the open one can
             * never be delivered whole (dropping it marks it broken). */
            unit_drop(c, u, STAT_cache_sar_broken, 1, st);
            u = NULL;
            struct broken *b = broken_find(c, h->to_id, h->from_id, h->session_id);
            if (h->payload_sar_state != SAR_BEGIN) {
                if (h->payload_sar_state == SAR_COMPLETE)
                    broken_forget(b);
                goto drop_broken;
            }
            broken_forget(b); /* a new series starts */
            e = ep_get(c, h->to_id); /* the drop may have removed it */
            if (!e)
                goto nomem;
        }
    }
    if (!u) {
        u = unit_new(c, e, now_ns, rb->rx_ns);
        if (!u)
            goto nomem_ep;
        u->sar = (uint8_t)sar;
        u->complete = !sar;
        u->session_id = h->session_id;
        u->first_seq = h->sequence_id;
        u->has_begin = sar && h->payload_sar_state == SAR_BEGIN;
    }
    if (hold) {
        u->held = 1;
        u->hold = *hold;
    }
    if (unit_append(c, u, rb) != 0) {
        if (u->n == 0)
            unit_drop(c, u, STAT_drop_no_memory, 0, NULL);
        goto nomem;
    }
    if (sar) {
        u->next_seq = h->sequence_id + 1;
        if (h->payload_sar_state == SAR_COMPLETE)
            u->complete = 1;
    }
stored:
    if (st && count)
        stats_inc(st, STAT_cache_stored);
    if (notify && !e->notified) {
        e->notified = 1;
        *notify = 1;
    }
    enforce_bounds(c, e, st);
    pthread_mutex_unlock(&c->lock);
    return 0;

drop_broken:
    if (st)
        stats_inc(st, STAT_cache_sar_broken);
    pthread_mutex_unlock(&c->lock);
    rbuf_unref(rb);
    return -1;
nomem_ep:
    if (!e->head)
        ep_remove(c, e);
nomem:
    if (st)
        stats_inc(st, STAT_drop_no_memory);
    pthread_mutex_unlock(&c->lock);
    rbuf_unref(rb);
    return -1;
}

int cache_has(struct cache *c, struct span eid)
{
    if (atomic_load_explicit(&c->n_eps_pub, memory_order_acquire) == 0)
        return 0;
    pthread_mutex_lock(&c->lock);
    int has = ep_find(c, eid, hash_eid(c, eid), NULL) != NULL;
    pthread_mutex_unlock(&c->lock);
    return has;
}

static int batch_push(struct cache_batch *b, struct rbuf *rb)
{
    if (b->n == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 16;
        struct rbuf **nv = realloc(b->v, ncap * sizeof *nv);
        if (!nv)
            return -1;
        b->v = nv;
        b->cap = ncap;
    }
    b->v[b->n++] = rb;
    return 0;
}

static int expired(const struct cache *c, const struct unit *u, uint64_t now_ns)
{
    /* NOW was read before the lock: a unit stored meanwhile may be "younger" than it. */
    return now_ns > u->born_ns && now_ns - u->born_ns >= c->lim.ttl_ns;
}

/* Senders whose later units must wait in this take (an earlier one of theirs cannot go
 * yet): per-sender order holds while other senders' Records pass. */
#define TAKE_BLOCKED_MAX 32

struct blocked {
    struct span from[TAKE_BLOCKED_MAX];
    size_t n;
};

static int is_blocked(const struct blocked *bl, struct span from)
{
    for (size_t i = 0; i < bl->n; i++)
        if (span_is(from, (const char *)bl->from[i].ptr, bl->from[i].len))
            return 1;
    return 0;
}

static int same_route(struct route a, struct route b)
{
    return a.worker == b.worker && a.conn_id == b.conn_id;
}

int cache_take(struct cache *c, struct span eid, const struct cache_take_opts *o,
               uint64_t now_ns, struct cache_batch *b, struct stats *st)
{
    int rc = 0;
    uint64_t room = o->max_bytes;
    struct blocked bl = {.n = 0};
    pthread_mutex_lock(&c->lock);
    struct ep *e = ep_find(c, eid, hash_eid(c, eid), NULL);
    if (e)
        e->notified = 0;
    struct unit *u = e ? e->head : NULL;
    while (u) {
        struct unit *next = u->q_next;
        int only = e->head == u && e->tail == u; /* dropping it removes E */
        struct span from = unit_from(u);
        if (is_blocked(&bl, from)) {
            u = next;
            continue;
        }
        if (o->accept && !o->accept(o->accept_arg, from)) {
            /* Another connection of this endpoint is the one for this sender. */
            if (bl.n == TAKE_BLOCKED_MAX)
                break;
            bl.from[bl.n++] = from;
            u = next;
            continue;
        }
        if (u->taken && !same_route(u->pinned, o->to)) {
            /* Begun on a connection that is gone: the rest would be a partial series. */
            unit_drop(c, u, STAT_cache_sar_broken, 1, st);
        } else if (!u->taken && expired(c, u, now_ns)) {
            unit_drop(c, u, STAT_cache_expired, 1, st);
        } else if (!u->complete || u->held) {
            /* Still arriving, or older Records of it still on their way: this sender's
             * later units wait behind it. */
            if (bl.n == TAKE_BLOCKED_MAX)
                break;
            bl.from[bl.n++] = from;
            u = next;
            continue;
        } else {
            while (u->taken < u->n && b->n < o->max_records) {
                struct rbuf *rb = u->recs[u->taken];
                uint64_t need = (uint64_t)rb->len + o->overhead;
                if (need > room && !(o->force_first && b->n == 0))
                    break;
                if (batch_push(b, rb) != 0) {
                    rc = -1;
                    break;
                }
                room = need > room ? 0 : room - need;
                u->taken++;
                u->bytes -= rb->len;
                e->records--;
                e->bytes -= rb->len;
                c->records--;
                c->bytes -= rb->len;
            }
            if (u->taken < u->n) {
                if (u->taken)
                    u->pinned = o->to; /* out of room mid-unit: the rest is for TO only */
                break;
            }
            unit_drop(c, u, STAT_cache_delivered, 0, st);
        }
        if (only)
            e = NULL; /* every branch that gets here dropped U */
        u = next;
    }
    if (rc == 0)
        rc = e != NULL && e->head != NULL;
    pthread_mutex_unlock(&c->lock);
    return rc;
}

size_t cache_flush_session(struct cache *c, struct span endpoint, struct span peer,
                           struct stats *st)
{
    size_t n = 0;
    pthread_mutex_lock(&c->lock);
    struct ep *e = ep_find(c, endpoint, hash_eid(c, endpoint), NULL);
    struct unit *u = e ? e->head : NULL;
    while (u) {
        struct unit *next = u->q_next;
        int last = next == NULL;
        if (u->n && u->recs[0]->hdr.type == RECORD_SESSION &&
            span_is(peer, (const char *)unit_from(u).ptr, unit_from(u).len)) {
            n += u->n - u->taken;
            u->complete = 1; /* the session is over: nothing of it is "broken" later */
            unit_drop(c, u, STAT_cache_flushed, 1, st);
            if (last)
                break; /* E may be gone */
        }
        u = next;
    }
    pthread_mutex_unlock(&c->lock);
    return n;
}

void cache_expire(struct cache *c, uint64_t now_ns, struct stats *st,
                  void (*changed)(void *arg, struct span eid, struct span from), void *arg)
{
    pthread_mutex_lock(&c->lock);
    /* Oldest first; a series being handed out is left to finish. */
    struct unit *u = c->age_head;
    while (u && expired(c, u, now_ns)) {
        struct unit *next = u->age_next;
        if (!u->taken) {
            struct ep *e = u->ep;
            int only = e->head == u && e->tail == u;
            unit_drop(c, u, STAT_cache_expired, 1, st);
            /* What it held up may go now: its endpoint's connection is told. */
            if (!only && changed && e->head)
                changed(arg, (struct span){(const uint8_t *)e->eid, e->eid_len},
                        unit_from(e->head));
        }
        u = next;
    }
    pthread_mutex_unlock(&c->lock);
}

void cache_gauges(struct cache *c, uint64_t *records, uint64_t *bytes, uint64_t *endpoints)
{
    pthread_mutex_lock(&c->lock);
    *records = c->records;
    *bytes = c->bytes;
    *endpoints = c->n_eps;
    pthread_mutex_unlock(&c->lock);
}

void cache_batch_clear(struct cache_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        rbuf_unref(b->v[i]);
    b->n = 0;
}

void cache_batch_free(struct cache_batch *b)
{
    cache_batch_clear(b);
    free(b->v);
    b->v = NULL;
    b->cap = 0;
}
