/* conn.c — connection lifecycle shared by every MTP: setup on a bufferevent, endpoint
 * binding in the router, handshake deadline, close with goodbye + bounded flush, and
 * the final free (only ever called by the worker's reaper). */
#include "relay/conn.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "relay/cache.h"
#include "relay/log.h"
#include "relay/tls.h"
#include "relay/relay.h"
#include "relay/src_limit.h"
#include "relay/worker.h"

/* Flush time for a connection closed for its own reasons (shutdown has its own). */
#define CONN_CLOSE_FLUSH_MS 2000u
/* After the goodbye is flushed and the write side shut, how long unread input is
 * discarded before close(): closing with unread input would send a reset that can
 * destroy the goodbye in flight. */
#define CONN_LINGER_MS 500u
/* Bytes one read or write may move: fairness between connections of one worker. */
#define CONN_IO_SLICE (64 * 1024)

static const char *const close_names[] = {
    [CLOSE_PEER] = "peer_closed",
    [CLOSE_IO_ERROR] = "io_error",
    [CLOSE_PROTOCOL] = "protocol_error",
    [CLOSE_HANDSHAKE_TIMEOUT] = "handshake_timeout",
    [CLOSE_HEARTBEAT_TIMEOUT] = "heartbeat_timeout",
    [CLOSE_REPLACED] = "replaced",
    [CLOSE_DUPLICATE] = "duplicate_refused",
    [CLOSE_AUTH] = "auth_failed",
    [CLOSE_GOODBYE] = "goodbye",
    [CLOSE_SHUTDOWN] = "shutdown",
    [CLOSE_NO_MEMORY] = "no_memory",
    [CLOSE_TOO_LARGE] = "too_large",
    [CLOSE_BUSY] = "busy",
    [CLOSE_STALLED] = "stalled",
};

const char *close_reason_name(enum close_reason r)
{
    return (unsigned)r < sizeof close_names / sizeof close_names[0] && close_names[r]
               ? close_names[r]
               : "?";
}

struct stats *conn_stats(struct conn *c)
{
    return worker_stats(c->w);
}

const char *conn_describe(const struct conn *c, char *buf, size_t cap)
{
    char eid[160];
    if (c->eid)
        log_escape(eid, sizeof eid, c->eid, c->eid_len, 128);
    snprintf(buf, cap, "conn=%llu mtp=%s listener=%s peer=%s eid=%s",
             (unsigned long long)c->id, c->ops->name, c->lcfg->name, c->peer,
             c->eid ? eid : "-");
    return buf;
}

static struct timeval ms_to_tv(uint32_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000u), (suseconds_t)(ms % 1000u) * 1000};
    return tv;
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    if (c->flags & CONN_LINGER) {
        struct evbuffer *in = bufferevent_get_input(bev);
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    if (c->flags & CONN_CLOSING)
        return;
    c->ops->on_read(c);
    if (!(c->flags & CONN_CLOSING))
        conn_check_output_budget(c);
}

/* The goodbye is out: shut the write side and discard input until the peer closes
 * or the linger time runs out. */
static void start_linger(struct conn *c)
{
    c->flags |= CONN_LINGER;
    shutdown(bufferevent_getfd(c->bev), SHUT_WR);
    struct evbuffer *in = bufferevent_get_input(c->bev);
    evbuffer_drain(in, evbuffer_get_length(in));
    bufferevent_setwatermark(c->bev, EV_READ, 0, 0);
    bufferevent_enable(c->bev, EV_READ);
    struct timeval tv = ms_to_tv(CONN_LINGER_MS);
    evtimer_add(c->close_timer, &tv);
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (c->flags & CONN_CLOSING) {
        /* Output drained: a closing connection has said all it had to say. */
        if (!(c->flags & CONN_LINGER) && conn_output_queued(c) == 0)
            start_linger(c);
        return;
    }
    if (conn_output_queued(c) > c->lcfg->limits.max_output_queue / 2)
        return;
    if (c->flags & CONN_BACKLOG)
        worker_drain_cache(c);
    if ((c->flags & CONN_READ_PAUSED) &&
        conn_output_queued(c) <= c->lcfg->limits.max_output_queue / 2) {
        c->flags &= ~CONN_READ_PAUSED;
        bufferevent_enable(c->bev, EV_READ);
    }
    if (!(c->flags & (CONN_READ_PAUSED | CONN_BACKLOG)))
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
}

void conn_set_backlog(struct conn *c, int on)
{
    if (on && !(c->flags & CONN_BACKLOG)) {
        c->flags |= CONN_BACKLOG;
        /* Told when the output is down to half its bound (bufferevent transports; the
         * others call worker_drain_cache() as they write). */
        if (c->bev)
            bufferevent_setwatermark(c->bev, EV_WRITE,
                                     (size_t)(c->lcfg->limits.max_output_queue / 2), 0);
    } else if (!on && (c->flags & CONN_BACKLOG)) {
        c->flags &= ~CONN_BACKLOG;
        if (c->bev && !(c->flags & CONN_READ_PAUSED))
            bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    }
}

void conn_output_room(const struct conn *c, uint64_t *bytes, size_t *records)
{
    uint64_t used = conn_output_queued(c), held = 0;
    size_t room = SIZE_MAX;
    if (c->ops->held)
        c->ops->held(c, &held, &room);
    uint64_t lim = c->lcfg->limits.max_output_queue;
    *bytes = used + held < lim ? lim - used - held : 0;
    *records = room;
}

void conn_check_output_budget(struct conn *c)
{
    uint64_t lim = c->lcfg->limits.max_output_queue;
    if ((c->flags & CONN_READ_PAUSED) || conn_output_queued(c) <= lim)
        return;
    c->flags |= CONN_READ_PAUSED;
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_setwatermark(c->bev, EV_WRITE, (size_t)(lim / 2), 0);
    char d[256];
    log_debug("conn_read_paused", "%s output_queued=%zu", conn_describe(c, d, sizeof d),
              conn_output_queued(c));
}

void conn_fail(struct conn *c)
{
    conn_abort(c, CLOSE_NO_MEMORY);
}

/* A TLS connection whose handshake failed or broke: say why, once. */
static void log_tls_error(struct conn *c, struct bufferevent *bev)
{
    char d[256], why[256] = "";
    unsigned long e = bufferevent_get_openssl_error(bev);
    if (e)
        ERR_error_string_n(e, why, sizeof why);
    else
        snprintf(why, sizeof why, "%s", "connection closed during the handshake");
    if (!(c->flags & CONN_TLS_UP))
        stats_inc(conn_stats(c), STAT_tls_failed);
    log_info("tls_failed", "%s handshake_done=%d error=\"%s\"", conn_describe(c, d, sizeof d),
             (c->flags & CONN_TLS_UP) != 0, why);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) { /* TLS handshake done */
        c->flags |= CONN_TLS_UP;
        stats_inc(conn_stats(c), STAT_tls_handshakes);
        return;
    }
    if (c->ssl && (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) &&
        (!(c->flags & CONN_TLS_UP) || (what & BEV_EVENT_ERROR)))
        log_tls_error(c, bev);
    if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_WRITING)) {
        /* Not a byte taken for stall_timeout: the peer stopped reading. Records still
         * in the cache for it wait for its next connection. */
        stats_inc(conn_stats(c), STAT_conn_stalled);
        conn_abort(c, CLOSE_STALLED);
    } else if (what & BEV_EVENT_EOF)
        conn_abort(c, CLOSE_PEER);
    else if (what & BEV_EVENT_ERROR)
        conn_abort(c, CLOSE_IO_ERROR);
}

static void hs_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    stats_inc(conn_stats(c), STAT_conn_handshake_timeout);
    conn_close(c, CLOSE_HANDSHAKE_TIMEOUT, "handshake timeout");
}

static void close_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    worker_schedule_reap(c->w, c);
}

/* Input bytes libevent may buffer for C: a frame at the current limit plus slack. */
static size_t input_bound(const struct conn *c)
{
    const struct limits_cfg *l = &c->lcfg->limits;
    if (c->flags & CONN_IDENTIFIED) /* a STOMP frame is its head plus the Record */
        return (size_t)l->max_record_size + c->lcfg->stomp.max_frame_head + 256u * 1024u;
    return (size_t)l->max_unidentified_input + 1024u;
}

/* The part of a connection every transport has. */
static struct conn *conn_alloc(size_t size, const struct conn_ops *ops, struct worker *w,
                               const struct listener_cfg *lcfg, const char *peer)
{
    struct relay *r = worker_relay(w);
    struct conn *c = calloc(1, size);
    if (!c)
        return NULL;
    c->ops = ops;
    c->w = w;
    c->relay = r;
    c->lcfg = lcfg;
    c->id = atomic_fetch_add(&r->next_conn_id, 1) + 1;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    return c;
}

/* A refusal by a connection limit: counted always, logged at most once a second per
 * listener so a storm costs no more than the counter. */
static void refused(struct conn *c, enum conn_refuse why, enum stats_counter counter,
                    const char *detail)
{
    struct relay *r = c->relay;
    const struct limits_cfg *l = &c->lcfg->limits;
    c->refuse = why;
    if (counter != STAT_COUNT)
        stats_inc(conn_stats(c), counter);
    if (!src_limit_log_due(r->src_limit, (size_t)(c->lcfg - r->cfg->listeners), rbuf_now_ns()))
        return;
    if (why == CONN_REFUSE_RATE && !detail)
        log_warn("conn_rejected", "listener=%s peer=%s reason=accept_rate rate=%u burst=%u",
                 c->lcfg->name, c->peer, l->accept_rate,
                 l->accept_burst ? l->accept_burst : l->accept_rate);
    else
        log_warn("conn_rejected", "listener=%s peer=%s reason=%s limit=%u", c->lcfg->name,
                 c->peer, detail ? detail : "max_connections_per_source",
                 l->max_connections_per_source);
}

void conn_admit(struct conn *c, int fd)
{
    struct relay *r = c->relay;
    const struct limits_cfg *l = &c->lcfg->limits;
    if (!r->src_limit)
        return;
    size_t li = (size_t)(c->lcfg - r->cfg->listeners);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int have = getpeername(fd, (struct sockaddr *)&ss, &sl) == 0;
    if (c->flags & CONN_WS_PIPE)
        return; /* its WebSocket session was admitted already */
    if (!src_limit_rate_take(r->src_limit, li, l->accept_rate, l->accept_burst, rbuf_now_ns())) {
        refused(c, CONN_REFUSE_RATE, STAT_conn_rejected_rate, NULL);
        return;
    }
    if (!l->max_connections_per_source || !have ||
        src_key_from_sockaddr((struct sockaddr *)&ss, sl, (uint32_t)li, &c->src) != 0)
        return; /* no limit, a UNIX peer, or a peer already gone (its EOF is next) */
    switch (src_limit_acquire(r->src_limit, &c->src, l->max_connections_per_source)) {
    case SRC_LIMIT_OK:
        c->src_held = 1;
        break;
    case SRC_LIMIT_OVER:
        refused(c, CONN_REFUSE_SOURCE, STAT_conn_rejected_source, NULL);
        break;
    default: /* cannot count it: refusing keeps the limit a limit */
        refused(c, CONN_REFUSE_RATE, STAT_COUNT, "source_table_no_memory");
        break;
    }
}

static void log_open(const struct conn *c)
{
    char d[256];
    log_debug("conn_open", "%s", conn_describe(c, d, sizeof d));
}

struct conn *conn_create(size_t size, const struct conn_ops *ops, struct worker *w,
                         const struct listener_cfg *lcfg, int fd, const char *peer)
{
    struct conn *c = conn_alloc(size, ops, w, lcfg, peer);
    if (!c) {
        close(fd);
        return NULL;
    }
    struct tls_server *ts =
        c->relay->tls ? atomic_load(&c->relay->tls[lcfg - c->relay->cfg->listeners]) : NULL;
    /* A UNIX socket on a TCP listener is the socket pair of an MQTT-over-WebSocket
     * session: TLS and admission happened on the WebSocket side. */
    struct sockaddr_storage local;
    socklen_t local_len = sizeof local;
    if (lcfg->type != LISTENER_UDS && getsockname(fd, (struct sockaddr *)&local, &local_len) == 0 &&
        local.ss_family == AF_UNIX) {
        c->flags |= CONN_WS_PIPE;
        ts = NULL;
    }
    if (ts) {
        /* The bufferevent owns the SSL (and the fd) from here on. */
        SSL *ssl = tls_server_ssl_new(ts);
        c->bev = ssl ? bufferevent_openssl_socket_new(worker_base(w), fd, ssl,
                                                      BUFFEREVENT_SSL_ACCEPTING,
                                                      BEV_OPT_CLOSE_ON_FREE)
                     : NULL;
        if (!c->bev && ssl)
            SSL_free(ssl);
        if (c->bev) {
            c->ssl = ssl;
            /* Peers that drop TCP without close_notify are ordinary EOFs here. */
            bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        }
    } else {
        c->bev = bufferevent_socket_new(worker_base(w), fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (!c->bev) {
        close(fd);
        free(c);
        return NULL;
    }
    c->hs_timer = evtimer_new(worker_base(w), hs_timeout_cb, c);
    if (!c->hs_timer) {
        bufferevent_free(c->bev);
        free(c);
        return NULL;
    }
    struct timeval tv = ms_to_tv(lcfg->limits.handshake_timeout_ms);
    evtimer_add(c->hs_timer, &tv);

    bufferevent_set_max_single_read(c->bev, CONN_IO_SLICE);
    bufferevent_set_max_single_write(c->bev, CONN_IO_SLICE);
    /* libevent stops reading once this much is buffered: an upper bound on input
     * memory per connection whatever the peer sends, tight until the endpoint has
     * identified itself (conn_handshake_done raises it). The MTP rejects a frame whose
     * declared size exceeds its limits long before. */
    bufferevent_setwatermark(c->bev, EV_READ, 0, input_bound(c));
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    struct timeval stall = ms_to_tv(lcfg->limits.stall_timeout_ms);
    bufferevent_set_timeouts(c->bev, NULL, &stall);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    conn_admit(c, fd);
    worker_add_conn(w, c);
    log_open(c);
    return c;
}

struct conn *conn_create_external(size_t size, const struct conn_ops *ops, struct worker *w,
                                  const struct listener_cfg *lcfg, const char *peer)
{
    struct conn *c = conn_alloc(size, ops, w, lcfg, peer);
    if (!c)
        return NULL;
    worker_add_conn(w, c);
    log_open(c);
    return c;
}

void conn_release(struct conn *c)
{
    struct worker *w = c->w;
    worker_remove_conn(w, c);
    conn_free(c);
    stats_inc(worker_stats(w), STAT_conn_closed);
}

/* The identity rule of tls_identity_check for IDs a certificate verified on another
 * connection vouches for (IDS: "a\0b\0\0", never empty). */
static enum tls_identity vouched_identity(const char *ids, const char *declared, char *out,
                                          size_t cap)
{
    const char *pick = ids;
    for (const char *p = ids; declared && *p; p += strlen(p) + 1)
        if (strcmp(p, declared) == 0)
            pick = p;
    snprintf(out, cap, "%s", pick);
    return !declared || strcmp(pick, declared) == 0 ? TLS_ID_CERT : TLS_ID_MISMATCH;
}

int conn_identity(struct conn *c, const char *declared, size_t len, char *out, size_t cap)
{
    char d[256], dec[4200];
    if (declared && len >= sizeof dec)
        declared = NULL, len = 0; /* longer than any valid ID: the check refuses it */
    if (declared) {
        memcpy(dec, declared, len);
        dec[len] = '\0';
    }
    if (cap)
        out[0] = '\0';
    enum tls_identity r;
    if (!c->ssl && c->cert_ids)
        r = vouched_identity(c->cert_ids, declared ? dec : NULL, out, cap);
    else
        r = tls_identity_check(conn_tls_cfg(c), c->ssl, declared ? dec : NULL,
                               c->relay->cfg->max_endpoint_id_length, out, cap);
    if (r >= 0)
        return 0;
    char id[160], said[160];
    log_escape(id, sizeof id, out, strnlen(out, cap), 128);
    log_escape(said, sizeof said, declared ? declared : "-", declared ? len : 1, 128);
    stats_inc(conn_stats(c), STAT_conn_identity_refused);
    log_info("identity_refused", "%s reason=%s declared=%s certificate_id=%s",
             conn_describe(c, d, sizeof d), tls_identity_name(r), said, out[0] ? id : "-");
    return -1;
}

const struct tls_cfg *conn_tls_cfg(const struct conn *c)
{
    const struct tls_cfg *cfg = tls_ssl_cfg(c->ssl);
    return cfg ? cfg : &c->lcfg->tls;
}

const struct passwd_db *conn_passwd(const struct conn *c)
{
    const struct relay *r = c->relay;
    if (!r->passwd)
        return c->lcfg->passwd;
    return atomic_load(&r->passwd[c->lcfg - r->cfg->listeners]);
}

int conn_bind_endpoint(struct conn *c, const char *eid, size_t len, const char *peer,
                       size_t peer_len)
{
    struct relay *r = c->relay;
    struct route me = {worker_index(c->w), c->id};
    struct route old;
    char d[256];

    c->eid = strndup(eid, len);
    c->route_peer = peer_len ? strndup(peer, peer_len) : NULL;
    if (!c->eid || (peer_len && !c->route_peer)) {
        free(c->eid);
        free(c->route_peer);
        c->eid = c->route_peer = NULL;
        return CONN_BIND_NOMEM;
    }
    c->eid_len = len;
    c->route_peer_len = peer_len;

    int rc = router_bind(r->router, ROUTER_IDS, span_from_str(eid, len),
                         span_from_str(peer, peer_len), me, r->cfg->duplicate_id_policy, &old);
    if (rc == ROUTER_REFUSED && c->takeover_of && old.conn_id == c->takeover_of)
        /* The same MQTT client reconnected: it keeps its endpoint ID (MQTT takeover). */
        rc = router_bind(r->router, ROUTER_IDS, span_from_str(eid, len),
                         span_from_str(peer, peer_len), me, DUP_REPLACE_OLD, &old);
    switch (rc) {
    case ROUTER_BOUND:
        break;
    case ROUTER_REPLACED:
        stats_inc(conn_stats(c), STAT_conn_replaced);
        log_info("endpoint_replaced", "%s old_conn=%llu", conn_describe(c, d, sizeof d),
                 (unsigned long long)old.conn_id);
        worker_post_close(r->workers[old.worker], old.conn_id, CLOSE_REPLACED);
        break;
    default:
        if (rc == ROUTER_REFUSED) {
            stats_inc(conn_stats(c), STAT_conn_refused_duplicate);
            log_info("endpoint_refused", "%s reason=already_connected existing_conn=%llu",
                     conn_describe(c, d, sizeof d), (unsigned long long)old.conn_id);
        }
        /* Not ours: keep the ID for the logs but make sure close won't unbind it. */
        free(c->route_peer);
        c->route_peer = NULL;
        c->route_peer_len = 0;
        c->flags |= CONN_NO_UNBIND;
        return rc == ROUTER_REFUSED ? CONN_BIND_REFUSED : CONN_BIND_NOMEM;
    }
    if (peer_len && c->ops->pair_fallback) {
        if (router_fallback_add(r->router, span_from_str(eid, len), me) != 0) {
            router_unbind(r->router, ROUTER_IDS, span_from_str(eid, len),
                          span_from_str(peer, peer_len), c->id);
            c->flags |= CONN_NO_UNBIND;
            return CONN_BIND_NOMEM;
        }
        c->flags |= CONN_FALLBACK;
    }
    stats_inc(conn_stats(c), STAT_conn_identified);
    log_info("endpoint_bound", "%s", conn_describe(c, d, sizeof d));
    if (r->cache && cache_has(r->cache, span_from_str(eid, len))) {
        /* Records waited for this endpoint: they go first, once the MTP's handshake
         * answer is out (the drain runs from the mailbox, after this callback). */
        conn_set_backlog(c, 1);
        worker_post_drain(c->w, c->id);
    }
    return 0;
}

void conn_learn_route(struct conn *c, struct span to, struct span from)
{
    for (unsigned i = 0; i < c->n_learned; i++) {
        const char *k = c->learned[i];
        size_t kl = strlen(k);
        if (kl == to.len && memcmp(k, to.ptr, kl) == 0 && strlen(k + kl + 1) == from.len &&
            memcmp(k + kl + 1, from.ptr, from.len) == 0)
            return;
    }
    if (c->n_learned >= CONN_MAX_LEARNED)
        return;
    char *key = malloc(to.len + from.len + 2);
    if (!key)
        return;
    memcpy(key, to.ptr, to.len);
    key[to.len] = '\0';
    memcpy(key + to.len + 1, from.ptr, from.len);
    key[to.len + 1 + from.len] = '\0';
    struct route me = {worker_index(c->w), c->id};
    /* The first learner keeps it; a real endpoint's own route (ROUTER_IDS) always wins. */
    if (router_bind(c->relay->router, ROUTER_LEARNED, to, from, me, DUP_REFUSE_NEW, NULL) !=
        ROUTER_BOUND) {
        free(key);
        return;
    }
    c->learned[c->n_learned++] = key;
}

void conn_handshake_done(struct conn *c)
{
    if (c->hs_timer)
        evtimer_del(c->hs_timer);
    c->flags |= CONN_IDENTIFIED;
    if (c->bev)
        bufferevent_setwatermark(c->bev, EV_READ, 0, input_bound(c));
}

static void unbind_all(struct conn *c)
{
    struct router *rt = c->relay->router;
    if (c->ops->unbind)
        c->ops->unbind(c);
    if (c->eid && !(c->flags & CONN_NO_UNBIND))
        router_unbind(rt, ROUTER_IDS, span_from_str(c->eid, c->eid_len),
                      span_from_str(c->route_peer, c->route_peer_len), c->id);
    if (c->flags & CONN_FALLBACK) {
        router_fallback_remove(rt, span_from_str(c->eid, c->eid_len), c->id);
        c->flags &= ~CONN_FALLBACK;
    }
    for (unsigned i = 0; i < c->n_learned; i++) {
        const char *to = c->learned[i], *from = to + strlen(to) + 1;
        router_unbind(rt, ROUTER_LEARNED, span_from_str(to, strlen(to)),
                      span_from_str(from, strlen(from)), c->id);
        free(c->learned[i]);
        c->learned[i] = NULL;
    }
    c->n_learned = 0;
    c->flags |= CONN_NO_UNBIND;
}

void conn_close(struct conn *c, enum close_reason why, const char *text)
{
    if (c->flags & CONN_CLOSING)
        return;
    c->flags |= CONN_CLOSING;
    c->close_reason = why;
    unbind_all(c);
    if (c->ops->close) {
        c->ops->close(c, why, text, 1);
        return;
    }
    if (c->hs_timer)
        evtimer_del(c->hs_timer);
    bufferevent_disable(c->bev, EV_READ);
    if (c->ops->goodbye)
        c->ops->goodbye(c, why, text);

    c->close_timer = (c->flags & CONN_NO_FLUSH)
                         ? NULL
                         : evtimer_new(worker_base(c->w), close_timeout_cb, c);
    if (!c->close_timer) {
        worker_schedule_reap(c->w, c);
        return;
    }
    /* Let the goodbye and queued Records go out, within a bound, then linger. */
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    bufferevent_enable(c->bev, EV_WRITE);
    if (conn_output_queued(c) == 0) {
        start_linger(c);
        return;
    }
    uint32_t ms = why == CLOSE_SHUTDOWN ? c->relay->cfg->shutdown_timeout_ms : CONN_CLOSE_FLUSH_MS;
    struct timeval tv = ms_to_tv(ms);
    evtimer_add(c->close_timer, &tv);
}

void conn_abort(struct conn *c, enum close_reason why)
{
    c->flags |= CONN_NO_FLUSH;
    if (c->hs_timer)
        evtimer_del(c->hs_timer);
    if (!(c->flags & CONN_CLOSING)) {
        c->flags |= CONN_CLOSING;
        c->close_reason = why;
        unbind_all(c);
    }
    if (c->ops->close)
        c->ops->close(c, why, NULL, 0);
    else
        worker_schedule_reap(c->w, c);
}

/* Called by the worker's reaper only. */
void conn_free(struct conn *c)
{
    char d[256];
    /* The slot is free before the close is logged: whoever reads the log line may rely
     * on connecting again at once under max_connections. */
    atomic_fetch_sub(&c->relay->live_conns, 1);
    if (c->src_held)
        src_limit_release(c->relay->src_limit, &c->src);
    log_info("conn_close", "%s reason=%s records_in=%llu records_out=%llu",
             conn_describe(c, d, sizeof d), close_reason_name(c->close_reason),
             (unsigned long long)c->records_in, (unsigned long long)c->records_out);
    unbind_all(c);
    if (c->ops->destroy)
        c->ops->destroy(c);
    if (c->hs_timer)
        event_free(c->hs_timer);
    if (c->close_timer)
        event_free(c->close_timer);
    if (c->bev)
        bufferevent_free(c->bev);
    free(c->eid);
    free(c->route_peer);
    free(c->cert_ids);
    free(c);
}

size_t conn_output_queued(const struct conn *c)
{
    if (!c->bev)
        return c->ops->output_queued(c);
    return evbuffer_get_length(bufferevent_get_output(c->bev));
}

void conn_record_dropped(struct conn *c, enum stats_counter why, const struct rbuf *rb)
{
    stats_inc(conn_stats(c), why);
    unsigned bit = (unsigned)(why - STAT_drop_malformed);
    char d[256], to[160], from[160];
    if (rb && rb->hdr.to_id.ptr) {
        log_escape(to, sizeof to, rb->hdr.to_id.ptr, rb->hdr.to_id.len, 128);
        log_escape(from, sizeof from, rb->hdr.from_id.ptr, rb->hdr.from_id.len, 128);
    } else {
        strcpy(to, "-");
        strcpy(from, "-");
    }
    if (bit < 32 && !(c->warned & (1u << bit))) {
        c->warned |= 1u << bit;
        log_warn("record_dropped", "%s reason=%s to_id=%s from_id=%s note=first_on_connection",
                 conn_describe(c, d, sizeof d), stats_name(why), to, from);
    } else {
        log_debug("record_dropped", "%s reason=%s to_id=%s from_id=%s",
                  conn_describe(c, d, sizeof d), stats_name(why), to, from);
    }
}
