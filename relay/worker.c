/* worker.c — worker thread, its mailbox, its connection table and its reaper.
 * See worker.h for the model. */
#include "relay/worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "relay/cache.h"
#include "relay/log.h"
#include "relay/policy.h"
#include "relay/relay.h"
#include "relay/translate.h"

enum wmsg_kind {
    WMSG_DELIVER, WMSG_DELIVER_LEARN, WMSG_ADOPT, WMSG_CLOSE, WMSG_STOP, WMSG_CALL, WMSG_DRAIN,
    WMSG_RELEASE
};

struct wmsg {
    enum wmsg_kind kind;
    uint64_t conn_id;
    struct rbuf *rb;
    int fd;
    enum close_reason reason;
    conn_factory make;
    const struct listener_cfg *lcfg;
    char *peer;
    char *cert_ids;
    void (*call)(void *arg); /* WMSG_CALL */
    void *call_arg;
    char *eid;               /* WMSG_RELEASE: the endpoint, NUL-terminated */
    struct cache_hold hold;  /* WMSG_RELEASE */
};

struct mailbox {
    pthread_mutex_t lock;
    struct wmsg *msgs;
    size_t n, cap;
    uint64_t record_bytes; /* Record bytes waiting in msgs */
    uint64_t max_record_bytes;
    int signalled;
    int efd;         /* libevent workers: the eventfd the loop waits on */
    struct event *ev;
};

struct worker {
    unsigned index;
    struct relay *relay;
    pthread_t thread;
    int started;
    struct event_base *base;       /* NULL for a worker whose loop is not ours */
    struct worker_hooks hooks;     /* such a worker's wake-up and stop */
    struct mailbox mbox;
    struct wmsg *drain; /* the owner's side of the swapped mailbox vector */
    size_t drain_cap;
    struct conn **table; /* conn id -> conn, chained through table_next */
    size_t table_size;   /* power of two */
    size_t n_conns;
    struct conn *reap_list;
    struct event *reap_ev;
    struct event *stop_deadline;
    int stopping;
    uint64_t hold_seq; /* Records this worker stored held (cache_put_held) */
    struct stats stats;
};

/* ------------------------------------------------------------------ conn table */

static size_t slot_of(const struct worker *w, uint64_t id)
{
    return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 32) & (w->table_size - 1);
}

static void table_grow(struct worker *w)
{
    size_t n = w->table_size * 2;
    struct conn **t = calloc(n, sizeof *t);
    if (!t)
        return; /* longer chains, still correct */
    struct conn **old = w->table;
    size_t old_n = w->table_size;
    w->table = t;
    w->table_size = n;
    for (size_t i = 0; i < old_n; i++) {
        struct conn *c = old[i];
        while (c) {
            struct conn *next = c->table_next;
            size_t s = slot_of(w, c->id);
            c->table_next = t[s];
            t[s] = c;
            c = next;
        }
    }
    free(old);
}

void worker_add_conn(struct worker *w, struct conn *c)
{
    size_t s = slot_of(w, c->id);
    c->table_next = w->table[s];
    w->table[s] = c;
    w->n_conns++;
    if (w->n_conns > w->table_size)
        table_grow(w);
}

static void table_remove(struct worker *w, struct conn *c)
{
    struct conn **pp = &w->table[slot_of(w, c->id)];
    while (*pp && *pp != c)
        pp = &(*pp)->table_next;
    if (*pp) {
        *pp = c->table_next;
        w->n_conns--;
    }
}

void worker_foreach_conn(struct worker *w, void (*fn)(struct conn *c, void *arg), void *arg)
{
    for (size_t i = 0; i < w->table_size; i++)
        for (struct conn *c = w->table[i]; c; c = c->table_next)
            fn(c, arg);
}

struct conn *worker_find_conn(struct worker *w, uint64_t id)
{
    struct conn *c = w->table[slot_of(w, id)];
    while (c && c->id != id)
        c = c->table_next;
    return c;
}

/* ------------------------------------------------------------------ reaper */

static void maybe_finish_stop(struct worker *w)
{
    if (w->stopping && w->n_conns == 0)
        event_base_loopbreak(w->base);
}

static void reap_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    while (w->reap_list) {
        struct conn *c = w->reap_list;
        w->reap_list = c->reap_next;
        table_remove(w, c);
        conn_free(c);
        stats_inc(&w->stats, STAT_conn_closed);
    }
    maybe_finish_stop(w);
}

void worker_schedule_reap(struct worker *w, struct conn *c)
{
    if (c->flags & CONN_REAPING)
        return;
    c->flags |= CONN_REAPING;
    c->reap_next = w->reap_list;
    w->reap_list = c;
    event_active(w->reap_ev, EV_TIMEOUT, 0);
}

static int mailbox_post(struct worker *w, const struct wmsg *m);

/* ------------------------------------------------------------------ delivery */

static int cacheable(const struct relay *r, const struct rbuf *rb)
{
    const struct cache_cfg *cc = &r->cfg->cache;
    return r->cache && !rb->no_cache && !policy_list_match(cc->exclude, cc->n_exclude,
                                                           rb->hdr.to_id);
}

int worker_cache_record(struct worker *self, struct rbuf *rb)
{
    struct relay *r = self->relay;
    if (!cacheable(r, rb)) {
        rbuf_unref(rb);
        return -1;
    }
    int notify = 0;
    rbuf_ref(rb); /* the cache may drop it at once; its IDs are needed below */
    cache_put(r->cache, rb, rbuf_now_ns(), &self->stats, &notify);
    struct route rt;
    /* The endpoint may have connected after the sender's worker found no route: then
     * nobody else would tell its worker. */
    if (notify && router_lookup(r->router, rb->hdr.to_id, rb->hdr.from_id, &rt) == 0 &&
        rt.worker < r->n_workers)
        worker_post_drain(r->workers[rt.worker], rt.conn_id);
    rbuf_unref(rb);
    return 0;
}

/* C's endpoint is what RB is addressed to (not a learned or topic route). */
static int addressed_to(const struct conn *c, const struct rbuf *rb)
{
    return c->eid && c->eid_len == rb->hdr.to_id.len &&
           memcmp(c->eid, rb->hdr.to_id.ptr, c->eid_len) == 0;
}

/* What an MTP puts around a Record: its headers, which name at most two endpoint IDs
 * (destination and reply address) besides fixed text. */
static uint32_t frame_overhead(const struct relay *r)
{
    return 512 + 2 * r->cfg->max_endpoint_id_length;
}

/* Frame RB on C and count it; the caller keeps its reference. Returns 0, or the drop
 * reason, counted unless it is queue_full and COUNT_FULL is 0 (the caller caches it). */
static int send_to_conn(struct worker *w, struct conn *c, struct rbuf *rb, int count_full)
{
    struct rbuf *t = NULL;
    if (w->relay->cfg->connect_records == CONNECT_RECORDS_TRANSLATE &&
        record_type_is_connect(rb->hdr.type) && (t = translate_connect(c, rb))) {
        stats_inc(&w->stats, STAT_records_translated);
        rb = t;
    }
    int drop = c->ops->send_record(c, rb);
    if (drop) {
        if (drop != STAT_drop_queue_full || count_full)
            conn_record_dropped(c, (enum stats_counter)drop, rb);
    } else {
        c->records_out++;
        stats_inc(&w->stats, STAT_records_out);
        stats_add(&w->stats, STAT_bytes_out, rb->len);
    }
    if (t)
        rbuf_unref(t);
    return drop;
}

static void deliver_local(struct worker *w, uint64_t conn_id, struct rbuf *rb, int learn)
{
    struct relay *r = w->relay;
    struct conn *c = worker_find_conn(w, conn_id);
    if (!c || (c->flags & CONN_CLOSING)) {
        /* Gone since it was routed: the Record waits for the endpoint's next
         * connection. */
        if (worker_cache_record(w, rbuf_ref(rb)) != 0)
            stats_inc(&w->stats, STAT_drop_no_route);
        goto out;
    }
    if (learn) {
        /* Routed by the MTP address (STOMP destination, MQTT topic) for a to_id nobody
         * holds: the policy judged to_id, but the Record reaches this connection's own
         * endpoint, which it must also allow. */
        const struct policy_cfg *pol = atomic_load_explicit(&r->policy, memory_order_acquire);
        if (c->eid && !policy_allows(pol, rb->hdr.from_id, span_from_str(c->eid, c->eid_len))) {
            conn_record_dropped(c, STAT_drop_policy, rb);
            goto out;
        }
        conn_learn_route(c, rb->hdr.to_id, rb->hdr.from_id);
    }
    int caching = cacheable(r, rb) && addressed_to(c, rb);
    if (caching) {
        /* Behind what the cache holds for this endpoint, in order; and where the
         * connection's output is full, into the cache rather than dropped. */
        uint64_t room;
        size_t n;
        conn_output_room(c, &room, &n);
        int ready = !c->ops->ready || c->ops->ready(c);
        if (!ready || (c->flags & CONN_BACKLOG) || cache_has(r->cache, rb->hdr.to_id) ||
            room < (uint64_t)rb->len + frame_overhead(r) || n == 0)
            goto to_cache;
    }
    if (send_to_conn(w, c, rb, !caching) != STAT_drop_queue_full || !caching)
        goto out;
to_cache:
    if (worker_cache_record(w, rbuf_ref(rb)) == 0) {
        conn_set_backlog(c, 1);
        worker_drain_cache(c);
    } else {
        conn_record_dropped(c, STAT_drop_queue_full, rb);
    }
out:
    rbuf_unref(rb);
}

/* Is C the connection Records from FROM to C's endpoint are routed to? A connection
 * bound to one peer (UDS peer_endpoint_id, a WebSocket controller path) takes only that
 * peer's cached Records; the others wait for their own connection. */
static int routes_here(void *arg, struct span from)
{
    const struct conn *c = arg;
    struct route rt;
    return router_lookup(c->relay->router, span_from_str(c->eid, c->eid_len), from, &rt) == 0 &&
           rt.worker == worker_index(c->w) && rt.conn_id == c->id;
}

void worker_drain_cache(struct conn *c)
{
    struct relay *r = c->relay;
    if (!r->cache || !c->eid || (c->flags & CONN_CLOSING)) {
        conn_set_backlog(c, 0);
        return;
    }
    if (c->ops->ready && !c->ops->ready(c)) {
        conn_set_backlog(c, 1); /* the MTP drains when it is ready (STOMP SUBSCRIBE) */
        return;
    }
    struct cache_take_opts o = {.to = {worker_index(c->w), c->id},
                                .overhead = frame_overhead(r),
                                .accept = routes_here, .accept_arg = c};
    conn_output_room(c, &o.max_bytes, &o.max_records);
    /* With nothing queued, one Record goes whatever its size: the MTP drops what can
     * never fit, rather than it holding up everything behind it. */
    o.force_first = o.max_bytes == c->lcfg->limits.max_output_queue;
    struct cache_batch b = {0};
    int more = cache_take(r->cache, span_from_str(c->eid, c->eid_len), &o, rbuf_now_ns(), &b,
                          conn_stats(c));
    /* The policy may have changed (SIGHUP) since they were stored. */
    const struct policy_cfg *pol = atomic_load_explicit(&r->policy, memory_order_acquire);
    size_t i = 0;
    for (; i < b.n && !(c->flags & CONN_CLOSING); i++) {
        stats_inc(conn_stats(c), STAT_cache_delivered);
        if (!policy_allows(pol, b.v[i]->hdr.from_id, b.v[i]->hdr.to_id))
            conn_record_dropped(c, STAT_drop_policy, b.v[i]);
        else
            send_to_conn(c->w, c, b.v[i], 1);
        rbuf_unref(b.v[i]);
    }
    /* The connection closed while sending: the rest go back, in their place. */
    for (; i < b.n; i++)
        cache_put_back(r->cache, b.v[i], rbuf_now_ns());
    b.n = 0; /* every reference passed on above */
    cache_batch_free(&b);
    conn_set_backlog(c, more != 0);
}

void worker_post_drain(struct worker *w, uint64_t conn_id)
{
    struct wmsg m = {.kind = WMSG_DRAIN, .conn_id = conn_id};
    if (mailbox_post(w, &m) != 0)
        log_warn("drain_lost", "worker=%u conn=%llu reason=no_memory", w->index,
                 (unsigned long long)conn_id);
}

static void mailbox_wake(struct worker *w)
{
    if (w->hooks.wake) {
        w->hooks.wake(w->hooks.arg);
        return;
    }
    uint64_t one = 1;
    ssize_t r = write(w->mbox.efd, &one, sizeof one);
    (void)r; /* EAGAIN means the counter is already non-zero: the owner will wake */
}

/* Returns 0, -1 when out of memory, -2 when the Records waiting are over the bound. */
static int mailbox_post(struct worker *w, const struct wmsg *m)
{
    struct mailbox *mb = &w->mbox;
    int wake = 0;

    pthread_mutex_lock(&mb->lock);
    if (m->rb && mb->record_bytes + m->rb->len > mb->max_record_bytes) {
        pthread_mutex_unlock(&mb->lock);
        return -2;
    }
    if (mb->n == mb->cap) {
        size_t ncap = mb->cap ? mb->cap * 2 : 64;
        struct wmsg *nm = realloc(mb->msgs, ncap * sizeof *nm);
        if (!nm) {
            pthread_mutex_unlock(&mb->lock);
            return -1;
        }
        mb->msgs = nm;
        mb->cap = ncap;
    }
    mb->msgs[mb->n++] = *m;
    if (m->rb)
        mb->record_bytes += m->rb->len;
    if (!mb->signalled) {
        mb->signalled = 1;
        wake = 1;
    }
    pthread_mutex_unlock(&mb->lock);

    if (wake)
        mailbox_wake(w);
    return 0;
}

/* If the last message waiting in W's mailbox is a release from the same worker for the
 * same endpoint, raise its number to M's (nothing was queued behind it since, so it
 * covers M's Record too): a flood of overflows costs one message. 0 when merged. */
static int mailbox_merge_release(struct worker *w, const struct wmsg *m)
{
    struct mailbox *mb = &w->mbox;
    int merged = -1;
    pthread_mutex_lock(&mb->lock);
    struct wmsg *last = mb->n ? &mb->msgs[mb->n - 1] : NULL;
    if (last && last->kind == WMSG_RELEASE && last->hold.worker == m->hold.worker &&
        last->conn_id == m->conn_id && strcmp(last->eid, m->eid) == 0) {
        last->hold.seq = m->hold.seq;
        merged = 0;
    }
    pthread_mutex_unlock(&mb->lock);
    return merged;
}

/* RB (reference handed over) could not join DEST's full mailbox: it waits in the cache,
 * held until DEST has processed what was already in that mailbox (the release message
 * queues behind it), where older Records of the same sender may be. */
static void cache_overflow(struct worker *self, struct worker *dest, uint64_t conn_id,
                           struct rbuf *rb)
{
    struct relay *r = self->relay;
    struct cache_hold hold = {self->index, dest->index, ++self->hold_seq};
    struct wmsg m = {.kind = WMSG_RELEASE, .hold = hold, .conn_id = conn_id,
                     .eid = strndup((const char *)rb->hdr.to_id.ptr, rb->hdr.to_id.len)};
    rbuf_ref(rb);
    cache_put_held(r->cache, rb, rbuf_now_ns(), &self->stats, NULL, hold);
    if (m.eid && mailbox_merge_release(dest, &m) == 0) {
        free(m.eid);
    } else if (!m.eid || mailbox_post(dest, &m) != 0) {
        /* Cannot ask: release now (order with the mailbox is then not assured). */
        free(m.eid);
        cache_release(r->cache, rb->hdr.to_id, hold);
    }
    rbuf_unref(rb);
}

/* On the destination's worker, after everything posted before the overflow. */
static void release_held(struct worker *w, struct wmsg *m)
{
    struct relay *r = w->relay;
    struct span eid = span_from_str(m->eid, strlen(m->eid));
    cache_release(r->cache, eid, m->hold);
    struct conn *dest = worker_find_conn(w, m->conn_id);
    struct route rt;
    if (dest && dest->eid) {
        conn_set_backlog(dest, 1);
        worker_drain_cache(dest);
    } else if (router_lookup(r->router, eid, (struct span){NULL, 0}, &rt) == 0) {
        struct conn *c = rt.worker == w->index ? worker_find_conn(w, rt.conn_id) : NULL;
        if (c) {
            conn_set_backlog(c, 1);
            worker_drain_cache(c);
        } else if (rt.worker < r->n_workers && rt.worker != w->index) {
            worker_post_drain(r->workers[rt.worker], rt.conn_id);
        }
    }
    free(m->eid);
}

void worker_deliver(struct worker *self, struct route rt, struct rbuf *rb, int learn)
{
    struct relay *r = self->relay;
    if (rt.worker == self->index) {
        deliver_local(self, rt.conn_id, rb, learn);
        return;
    }
    struct wmsg m = {.kind = learn ? WMSG_DELIVER_LEARN : WMSG_DELIVER,
                     .conn_id = rt.conn_id, .rb = rb};
    int rc = rt.worker < r->n_workers ? mailbox_post(r->workers[rt.worker], &m) : -1;
    struct route own;
    if (rc == -2 && !learn && cacheable(r, rb) &&
        router_lookup(r->router, rb->hdr.to_id, rb->hdr.from_id, &own) == 0 &&
        own.worker == rt.worker && own.conn_id == rt.conn_id) {
        /* Only Records routed by their to_id: the cache is drained by to_id's own
         * connection, so one bound for a learned or topic route would wait for nobody. */
        cache_overflow(self, r->workers[rt.worker], rt.conn_id, rb);
        return;
    }
    if (rc != 0) {
        stats_inc(&self->stats, rc == -2 ? STAT_drop_queue_full : STAT_drop_no_memory);
        rbuf_unref(rb);
    }
}

void worker_post_adopt(struct worker *w, int fd, conn_factory make,
                       const struct listener_cfg *lcfg, const char *peer, char *cert_ids)
{
    struct wmsg m = {.kind = WMSG_ADOPT, .fd = fd, .make = make, .lcfg = lcfg,
                     .peer = strdup(peer), .cert_ids = cert_ids};
    if (!m.peer || mailbox_post(w, &m) != 0) {
        free(m.peer);
        free(m.cert_ids);
        close(fd);
        atomic_fetch_sub(&w->relay->live_conns, 1);
        log_warn("accept_dropped", "worker=%u reason=no_memory", w->index);
    }
}

void worker_post_close(struct worker *w, uint64_t conn_id, enum close_reason why)
{
    struct wmsg m = {.kind = WMSG_CLOSE, .conn_id = conn_id, .reason = why};
    if (mailbox_post(w, &m) != 0)
        log_error("close_lost", "worker=%u conn=%llu reason=no_memory", w->index,
                  (unsigned long long)conn_id);
}

int worker_post_call(struct worker *w, void (*fn)(void *arg), void *arg)
{
    struct wmsg m = {.kind = WMSG_CALL, .call = fn, .call_arg = arg};
    return mailbox_post(w, &m) == 0 ? 0 : -1;
}

void worker_post_stop(struct worker *w)
{
    struct wmsg m = {.kind = WMSG_STOP};
    while (mailbox_post(w, &m) != 0)
        usleep(1000); /* stopping must get through; memory comes back as queues drain */
}

static void abort_one(struct conn *c, void *arg)
{
    (void)arg;
    conn_abort(c, CLOSE_SHUTDOWN);
}

static void close_one(struct conn *c, void *arg)
{
    (void)arg;
    conn_close(c, CLOSE_SHUTDOWN, "relay shutting down");
}

void worker_close_all(struct worker *w)
{
    worker_foreach_conn(w, close_one, NULL);
}

static void stop_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    /* Connections still flushing past the shutdown timeout are cut. */
    worker_foreach_conn(w, abort_one, NULL);
    event_base_loopbreak(w->base);
}

static void begin_stop(struct worker *w)
{
    if (w->stopping)
        return;
    w->stopping = 1;
    const struct relay_config *cfg = w->relay->cfg;
    struct timeval tv = {(time_t)(cfg->shutdown_timeout_ms / 1000u),
                         (suseconds_t)(cfg->shutdown_timeout_ms % 1000u) * 1000};
    w->stop_deadline = evtimer_new(w->base, stop_deadline_cb, w);
    if (w->stop_deadline)
        evtimer_add(w->stop_deadline, &tv);
    worker_close_all(w);
    maybe_finish_stop(w);
}

static void handle_msg(struct worker *w, struct wmsg *m)
{
    struct conn *c;
    switch (m->kind) {
    case WMSG_DELIVER:
    case WMSG_DELIVER_LEARN:
        deliver_local(w, m->conn_id, m->rb, m->kind == WMSG_DELIVER_LEARN);
        break;
    case WMSG_ADOPT:
        if (w->stopping) {
            close(m->fd);
            atomic_fetch_sub(&w->relay->live_conns, 1);
        } else if ((c = m->make(w, m->fd, m->lcfg, m->peer))) {
            stats_inc(&w->stats, STAT_conn_accepted);
            c->cert_ids = m->cert_ids;
            m->cert_ids = NULL;
        } else {
            atomic_fetch_sub(&w->relay->live_conns, 1); /* the factory closed the fd */
        }
        free(m->peer);
        free(m->cert_ids);
        break;
    case WMSG_CLOSE: {
        c = worker_find_conn(w, m->conn_id);
        if (c)
            conn_close(c, m->reason,
                       m->reason == CLOSE_REPLACED ? "endpoint-id taken over by a new connection"
                                                   : NULL);
        break;
    }
    case WMSG_CALL:
        m->call(m->call_arg);
        break;
    case WMSG_DRAIN:
        c = worker_find_conn(w, m->conn_id);
        if (c)
            worker_drain_cache(c);
        break;
    case WMSG_RELEASE:
        release_held(w, m);
        break;
    case WMSG_STOP:
        if (w->hooks.begin_stop) {
            w->stopping = 1;
            w->hooks.begin_stop(w->hooks.arg);
        } else {
            begin_stop(w);
        }
        break;
    }
}

int worker_drain_mailbox(struct worker *w)
{
    struct mailbox *mb = &w->mbox;

    /* One batch per wake-up, so a flood of deliveries cannot keep this thread away
     * from its sockets and timers: what arrives meanwhile waits for the next round. */
    pthread_mutex_lock(&mb->lock);
    struct wmsg *msgs = mb->msgs;
    size_t n = mb->n, cap = mb->cap;
    mb->msgs = w->drain; /* swap: producers append to the other vector meanwhile */
    mb->cap = w->drain_cap;
    mb->n = 0;
    mb->record_bytes = 0;
    pthread_mutex_unlock(&mb->lock);
    w->drain = msgs;
    w->drain_cap = cap;
    for (size_t i = 0; i < n; i++)
        handle_msg(w, &msgs[i]);

    pthread_mutex_lock(&mb->lock);
    int more = mb->n > 0;
    if (!more)
        mb->signalled = 0;
    pthread_mutex_unlock(&mb->lock);
    if (more)
        mailbox_wake(w);
    return more;
}

static void mailbox_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    uint64_t v;
    ssize_t r = read(fd, &v, sizeof v);
    (void)r;
    worker_drain_mailbox(arg);
}

/* ------------------------------------------------------------------ lifecycle */

/* What every worker has: id table, mailbox lock and bound. */
static struct worker *worker_alloc(struct relay *r, unsigned index)
{
    struct worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->index = index;
    w->relay = r;
    w->mbox.efd = -1;
    /* Records in flight to this worker: a few destinations' worth of output queue. */
    w->mbox.max_record_bytes = 4 * r->cfg->limits.max_output_queue;
    pthread_mutex_init(&w->mbox.lock, NULL);
    w->table_size = 64;
    w->table = calloc(w->table_size, sizeof *w->table);
    if (!w->table) {
        worker_free(w);
        return NULL;
    }
    return w;
}

struct worker *worker_new(struct relay *r, unsigned index)
{
    struct worker *w = worker_alloc(r, index);
    if (!w)
        return NULL;
    w->base = event_base_new();
    if (!w->base)
        goto fail;
    w->mbox.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->mbox.efd < 0)
        goto fail;
    w->mbox.ev = event_new(w->base, w->mbox.efd, EV_READ | EV_PERSIST, mailbox_cb, w);
    w->reap_ev = event_new(w->base, -1, 0, reap_cb, w);
    if (!w->mbox.ev || !w->reap_ev || event_add(w->mbox.ev, NULL) != 0)
        goto fail;
    return w;
fail:
    worker_free(w);
    return NULL;
}

struct worker *worker_new_external(struct relay *r, unsigned index,
                                   const struct worker_hooks *hooks)
{
    struct worker *w = worker_alloc(r, index);
    if (w)
        w->hooks = *hooks;
    return w;
}

void worker_remove_conn(struct worker *w, struct conn *c)
{
    table_remove(w, c);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    event_base_dispatch(w->base);
    return NULL;
}

int worker_start(struct worker *w)
{
    if (!w->base)
        return 0; /* an external worker's owner runs its loop */
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
        return -1;
    w->started = 1;
    return 0;
}

void worker_join(struct worker *w)
{
    if (w->started) {
        pthread_join(w->thread, NULL);
        w->started = 0;
    }
}

void worker_free(struct worker *w)
{
    if (!w)
        return;
    /* Anything left (loop broken at the deadline, or never started) goes now. */
    for (size_t i = 0; w->table && i < w->table_size; i++) {
        while (w->table[i]) {
            struct conn *c = w->table[i];
            w->table[i] = c->table_next;
            conn_free(c);
        }
    }
    for (size_t i = 0; i < w->mbox.n; i++) {
        struct wmsg *m = &w->mbox.msgs[i];
        rbuf_unref(m->rb);
        free(m->eid);
        if (m->kind == WMSG_ADOPT) {
            close(m->fd);
            free(m->peer);
            free(m->cert_ids);
            atomic_fetch_sub(&w->relay->live_conns, 1);
        }
    }
    free(w->mbox.msgs);
    free(w->drain);
    free(w->table);
    if (w->mbox.ev)
        event_free(w->mbox.ev);
    if (w->reap_ev)
        event_free(w->reap_ev);
    if (w->stop_deadline)
        event_free(w->stop_deadline);
    if (w->mbox.efd >= 0)
        close(w->mbox.efd);
    if (w->base)
        event_base_free(w->base);
    pthread_mutex_destroy(&w->mbox.lock);
    free(w);
}

unsigned worker_index(const struct worker *w) { return w->index; }
struct event_base *worker_base(struct worker *w) { return w->base; }
struct stats *worker_stats(struct worker *w) { return &w->stats; }
struct relay *worker_relay(struct worker *w) { return w->relay; }
size_t worker_conn_count(const struct worker *w) { return w->n_conns; }

uint64_t relay_stat(const struct relay *r, enum stats_counter c)
{
    uint64_t sum = stats_get(&r->acceptor, c);
    for (unsigned i = 0; i < r->n_workers; i++)
        sum += stats_get(&r->workers[i]->stats, c);
    return sum;
}
