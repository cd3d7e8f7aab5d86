/* stomp_server.c — one STOMP 1.2 session per client: handshake and identity,
 * the single subscription, SEND in, MESSAGE out, heart-beats, receipts, and ERROR then
 * close for every protocol error. Framing is done by stomp_codec; this file owns the
 * state and the socket buffers. Wire rules: spec notes §4 and §9 items 13–17.
 */
#include "relay/mtp/stomp_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "relay/auth_limit.h"
#include "relay/endpoint_id.h"
#include "relay/forward.h"
#include "relay/log.h"
#include "relay/mtp/stomp_codec.h"
#include "relay/passwd.h"
#include "relay/relay.h"
#include "relay/tls.h"
#include "relay/worker.h"

#define STOMP_CONTENT_TYPE "application/vnd.bbf.usp.msg"
#define STOMP_SERVER_NAME "usprelay/" USPRELAY_VERSION
#ifndef USPRELAY_VERSION
#define USPRELAY_VERSION "0.1"
#endif

struct stomp_conn {
    struct conn base;
    int connected;
    char *own_dest;    /* subscribe-dest given in CONNECTED */
    char *sub_dest;    /* destination subscribed, NULL until SUBSCRIBE */
    char *sub_id;      /* its subscription id */
    uint64_t next_message_id;
    size_t head_seen;  /* bytes of the pending head already searched */
    size_t body_seen;  /* bytes of a NUL-terminated body already searched */
    uint32_t hb_out_ms, hb_in_ms;
    uint64_t last_rx_ms;
    struct event *hb_out, *hb_in;
    int version_error; /* the ERROR must name the version we speak */
    const char *cur_receipt; /* receipt of the frame being handled, for its ERROR */
    uint64_t skip_left; /* bytes of an oversized SEND (body + NUL) still to discard */
};

/* Largest content-length a connected client may declare: above max_record_size the
 * body is discarded as it arrives (the Record is dropped, the session kept); this only
 * keeps the arithmetic far from overflow. */
#define STOMP_SKIP_MAX (1ull << 40)

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

long stomp_dest_for(const char *tmpl, const char *eid, size_t len, char *buf, size_t cap)
{
    const char *mark = strstr(tmpl, "{eid}");
    if (!mark)
        return -1;
    size_t pre = (size_t)(mark - tmpl);
    const char *post = mark + 5;
    size_t post_len = strlen(post);
    if (pre >= cap)
        return -1;
    memcpy(buf, tmpl, pre);
    size_t enc = eid_pct_encode(eid, len, buf + pre, cap - pre);
    if (pre + enc + post_len + 1 > cap)
        return -1;
    memcpy(buf + pre + enc, post, post_len + 1);
    return (long)(pre + enc + post_len);
}

static char *dest_dup(const struct conn *c, const char *eid, size_t len)
{
    char buf[1024];
    long n = stomp_dest_for(c->lcfg->stomp.subscribe_dest_template, eid, len, buf, sizeof buf);
    return n < 0 ? NULL : strndup(buf, (size_t)n);
}

/* ------------------------------------------------------------------ output */

/* Encode a frame head into STACKBUF (CAP bytes) or, when it does not fit, into a heap
 * buffer stored in *HEAP (free it). Returns the head, length in *LEN; NULL on failure. */
static const char *encode_head(enum stomp_cmd cmd, const struct stomp_kv *hdrs, size_t n,
                               int escape, char *stackbuf, size_t cap, char **heap, size_t *len)
{
    *heap = NULL;
    long l = stomp_encode_head(stackbuf, cap, cmd, hdrs, n, escape);
    if (l == STOMP_ERR_TOO_LONG) {
        size_t need = 64;
        for (size_t i = 0; i < n; i++) /* escaping at most doubles a byte */
            need += 2 * (strlen(hdrs[i].name) + hdrs[i].value_len) + 2;
        *heap = malloc(need);
        l = *heap ? stomp_encode_head(*heap, need, cmd, hdrs, n, escape) : -1;
    }
    if (l <= 0) {
        free(*heap);
        *heap = NULL;
        return NULL;
    }
    *len = (size_t)l;
    return *heap ? *heap : stackbuf;
}

/* Queue a frame: head from HDRS, then BODY (copied), then NUL — all or nothing. */
static void send_frame(struct conn *c, enum stomp_cmd cmd, const struct stomp_kv *hdrs, size_t n,
                       int escape, const void *body, size_t body_len)
{
    char stackbuf[2048], *heap;
    size_t len;
    const char *head = encode_head(cmd, hdrs, n, escape, stackbuf, sizeof stackbuf, &heap, &len);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (!head || evbuffer_expand(out, len + body_len + 1) != 0) {
        free(heap);
        conn_fail(c);
        return;
    }
    /* Room is reserved: these adds cannot fail half way. */
    evbuffer_add(out, head, len);
    if (body_len)
        evbuffer_add(out, body, body_len);
    evbuffer_add(out, "", 1);
    free(heap);
}

#define KV(n, v) {n, v, strlen(v)}

static void send_receipt(struct conn *c, const char *receipt)
{
    if (!receipt)
        return;
    struct stomp_kv h[] = {KV("receipt-id", receipt)};
    send_frame(c, STOMP_CMD_RECEIPT, h, 1, 1, NULL, 0);
}

static void stomp_goodbye(struct conn *c, enum close_reason why, const char *text)
{
    struct stomp_conn *s = (struct stomp_conn *)c;
    if (why == CLOSE_PEER || why == CLOSE_IO_ERROR || why == CLOSE_GOODBYE)
        return;
    const char *msg = text ? text : close_reason_name(why);
    char clen[24];
    snprintf(clen, sizeof clen, "%zu", strlen(msg));
    struct stomp_kv h[5] = {KV("message", msg), KV("content-type", "text/plain"),
                            KV("content-length", clen)};
    size_t n = 3;
    if (s->version_error)
        h[n++] = (struct stomp_kv)KV("version", "1.2");
    if (s->cur_receipt)
        h[n++] = (struct stomp_kv)KV("receipt-id", s->cur_receipt);
    send_frame(c, STOMP_CMD_ERROR, h, n, 1, msg, strlen(msg));
}

static void protocol_error(struct conn *c, enum close_reason why, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void protocol_error(struct conn *c, enum close_reason why, const char *fmt, ...)
{
    char text[256], d[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (why == CLOSE_PROTOCOL)
        stats_inc(conn_stats(c), STAT_conn_protocol_error);
    else if (why == CLOSE_AUTH)
        stats_inc(conn_stats(c), STAT_conn_auth_failed);
    log_info("stomp_error", "%s error=\"%s\"", conn_describe(c, d, sizeof d), text);
    conn_close(c, why, text);
}

static int stomp_send_record(struct conn *c, struct rbuf *rb)
{
    struct stomp_conn *s = (struct stomp_conn *)c;
    if (!s->sub_dest)
        return STAT_drop_not_subscribed;
    if (rb->len > c->lcfg->limits.max_record_size)
        return STAT_drop_too_large;
    if (conn_output_queued(c) + rb->len > c->lcfg->limits.max_output_queue)
        return STAT_drop_queue_full;

    /* Where the receiver answers: the sender's own subscription when it is a STOMP
     * client here, else the relay's alias destination for the sender's ID. */
    char alias[1024];
    const char *reply = rb->origin_mtp == MTP_STOMP ? rb->reply_to : NULL;
    if (!reply) {
        long n = stomp_dest_for(c->lcfg->stomp.subscribe_dest_template,
                                (const char *)rb->hdr.from_id.ptr, rb->hdr.from_id.len, alias,
                                sizeof alias);
        reply = n < 0 ? NULL : alias;
    }
    char mid[32], clen[24];
    snprintf(mid, sizeof mid, "%llu-%llu", (unsigned long long)c->id,
             (unsigned long long)++s->next_message_id);
    snprintf(clen, sizeof clen, "%u", rb->len);
    struct stomp_kv h[6] = {
        KV("destination", s->sub_dest), KV("subscription", s->sub_id), KV("message-id", mid),
        KV("content-type", STOMP_CONTENT_TYPE), KV("content-length", clen),
    };
    size_t n = 5;
    if (reply)
        h[n++] = (struct stomp_kv)KV("reply-to-dest", reply);
    char stackbuf[2048], *heap;
    size_t hl;
    const char *head = encode_head(STOMP_CMD_MESSAGE, h, n, 1, stackbuf, sizeof stackbuf, &heap,
                                   &hl);
    if (!head)
        return STAT_drop_no_memory;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int rc = evbuffer_add(out, head, hl);
    free(heap);
    if (rc != 0)
        return STAT_drop_no_memory; /* nothing queued: the stream is intact */
    rbuf_ref(rb);
    if (evbuffer_add_reference(out, rb->data, rb->len, rbuf_evbuffer_cleanup, rb) != 0 ||
        evbuffer_add(out, "", 1) != 0) {
        /* A head without its body would corrupt everything after it. */
        conn_fail(c);
        return STAT_drop_no_memory;
    }
    return 0;
}

static long stomp_alias_address(struct conn *c, const char *eid, size_t len, char *buf, size_t cap)
{
    return stomp_dest_for(c->lcfg->stomp.subscribe_dest_template, eid, len, buf, cap);
}

/* ------------------------------------------------------------------ heart-beats */

static void hb_out_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    /* A peer that is not reading what is queued needs no heart-beat from us. */
    if (!(c->flags & CONN_CLOSING) &&
        conn_output_queued(c) < c->lcfg->limits.max_output_queue)
        evbuffer_add(bufferevent_get_output(c->bev), "\n", 1);
}

static void hb_in_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct stomp_conn *s = arg;
    struct conn *c = &s->base;
    uint64_t allowed = (uint64_t)s->hb_in_ms * (100u + c->lcfg->stomp.heartbeat_grace_pct) / 100u;
    if (!(c->flags & CONN_CLOSING) && now_ms() - s->last_rx_ms > allowed) {
        stats_inc(conn_stats(c), STAT_conn_heartbeat_timeout);
        protocol_error(c, CLOSE_HEARTBEAT_TIMEOUT, "no heart-beat from client within %u ms",
                       (unsigned)allowed);
    }
}

static int start_heartbeats(struct stomp_conn *s)
{
    struct conn *c = &s->base;
    struct event_base *base = worker_base(c->w);
    if (s->hb_out_ms) {
        struct timeval tv = {(time_t)(s->hb_out_ms / 1000u), (suseconds_t)(s->hb_out_ms % 1000u) * 1000};
        s->hb_out = event_new(base, -1, EV_PERSIST, hb_out_cb, c);
        if (!s->hb_out || event_add(s->hb_out, &tv) != 0)
            return -1;
    }
    if (s->hb_in_ms) {
        struct timeval tv = {(time_t)(s->hb_in_ms / 1000u), (suseconds_t)(s->hb_in_ms % 1000u) * 1000};
        s->hb_in = event_new(base, -1, EV_PERSIST, hb_in_cb, s);
        if (!s->hb_in || event_add(s->hb_in, &tv) != 0)
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ frames in */

/* Unescaped copy of header NAME of F, or NULL if absent. *BAD set on a bad escape. */
static char *header_dup(const struct stomp_frame *f, const char *name, int *bad)
{
    const struct stomp_header *h = stomp_header_get(f, name);
    if (!h)
        return NULL;
    char *out = malloc(h->value.len + 1);
    size_t n;
    if (!out || stomp_unescape(h->value, out, h->value.len + 1, &n) != 0) {
        free(out);
        *bad = 1;
        return NULL;
    }
    return out;
}

static int consteq(const char *a, size_t la, const char *b)
{
    size_t lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < la && i < lb; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

/* Header NAME of F equals WANT: as sent (STOMP 1.2 does not escape CONNECT headers,
 * and stomp.py sends them raw) or, for clients that escape them anyway, unescaped. */
static int header_matches(const struct stomp_frame *f, const char *name, const char *want)
{
    const struct stomp_header *h = stomp_header_get(f, name);
    if (!h)
        return 0;
    if (consteq((const char *)h->value.ptr, h->value.len, want))
        return 1;
    char buf[512];
    size_t n;
    return stomp_unescape(h->value, buf, sizeof buf, &n) == 0 && consteq(buf, n, want);
}

/* The login and passcode of F against password file DB: as sent, and, when either holds
 * a backslash, unescaped too (as header_matches does for the single pair). */
static int passwd_matches(const struct passwd_db *db, const struct stomp_frame *f)
{
    static const char *const names[2] = {"login", "passcode"};
    struct stomp_span raw[2], alt[2];
    char buf[2][512];
    int escaped = 0;
    for (int i = 0; i < 2; i++) {
        const struct stomp_header *h = stomp_header_get(f, names[i]);
        if (!h)
            return 0; /* nothing to check: no PBKDF2 work spent */
        raw[i] = alt[i] = h->value;
        size_t n;
        if (memchr(h->value.ptr, '\\', h->value.len) &&
            stomp_unescape(h->value, buf[i], sizeof buf[i], &n) == 0) {
            alt[i] = (struct stomp_span){(const uint8_t *)buf[i], n};
            escaped = 1;
        }
    }
    if (passwd_check(db, (const char *)raw[0].ptr, raw[0].len, (const char *)raw[1].ptr,
                     raw[1].len))
        return 1;
    return escaped && passwd_check(db, (const char *)alt[0].ptr, alt[0].len,
                                   (const char *)alt[1].ptr, alt[1].len);
}

/* Check the credentials of CONNECT F (password_file, or the login/passcode pair), unless
 * the peer is blocked for failing too often. 1: accepted; 0: refused, and the connection
 * is closing with ERROR "authentication failed" whatever the cause. */
static int authenticate(struct conn *c, const struct stomp_frame *f)
{
    const struct listener_cfg *l = c->lcfg;
    struct auth_limit *al = c->relay->auth_limit;
    uint64_t now = now_ms();
    int blocked = auth_limit_blocked(al, c->peer, now), ok = 0;
    if (blocked) {
        ok = 0; /* refused unchecked: a blocked source costs no PBKDF2 work */
    } else if (conn_passwd(c)) {
        ok = passwd_matches(conn_passwd(c), f);
    } else {
        /* Both checked every time: no early exit telling which one was wrong. */
        ok = header_matches(f, "login", l->stomp.login);
        ok &= header_matches(f, "passcode", l->stomp.passcode);
    }
    if (ok) {
        return 1; /* failures stay counted: see auth_limit.h */
    }
    unsigned n = auth_limit_failed(al, c->peer, now);
    int starts_block = !blocked && auth_limit_blocked(al, c->peer, now);
    const struct stomp_header *lh = stomp_header_get(f, "login");
    char d[256], user[96];
    log_info("auth_failed", "%s user=%s reason=%s failures=%u%s", conn_describe(c, d, sizeof d),
             lh ? log_escape(user, sizeof user, lh->value.ptr, lh->value.len, 64) : "-",
             blocked ? "blocked" : "bad_credentials", n,
             starts_block ? " action=block" : "");
    stats_inc(conn_stats(c), STAT_conn_auth_failed);
    conn_close(c, CLOSE_AUTH, "authentication failed");
    return 0;
}

static void on_connect(struct stomp_conn *s, const struct stomp_frame *f)
{
    struct conn *c = &s->base;
    const struct relay_config *cfg = c->relay->cfg;
    const struct stomp_listener_cfg *sc = &c->lcfg->stomp;
    int bad = 0;
    char *eid = NULL;

    if (s->connected) {
        protocol_error(c, CLOSE_PROTOCOL, "already connected");
        goto out;
    }
    const struct stomp_header *av = stomp_header_get(f, "accept-version");
    if (!av || !stomp_accepts_version(av->value, "1.2")) {
        s->version_error = 1;
        protocol_error(c, CLOSE_PROTOCOL, "supported protocol versions are 1.2");
        goto out;
    }
    /* USP escapes the endpoint-id even in CONNECT (obuspa sends os\c\c...). */
    eid = header_dup(f, "endpoint-id", &bad);
    if (!eid) {
        protocol_error(c, CLOSE_PROTOCOL, bad ? "endpoint-id header has a bad escape"
                                              : "endpoint-id header is required");
        goto out;
    }
    int e = eid_check(eid, strlen(eid), cfg->max_endpoint_id_length);
    if (e != EID_OK) {
        char esc[160];
        protocol_error(c, CLOSE_PROTOCOL, "invalid endpoint-id %s: %s",
                       log_escape(esc, sizeof esc, eid, strlen(eid), 96), eid_err_name(e));
        goto out;
    }
    if (c->ssl) { /* with TLS the client certificate must stand for this ID */
        char cert_id[TLS_EID_MAX + 1];
        if (conn_identity(c, eid, strlen(eid), cert_id, sizeof cert_id) != 0) {
            protocol_error(c, CLOSE_AUTH, "endpoint-id is not the client certificate's");
            goto out;
        }
    }
    if ((sc->login || c->lcfg->passwd) && !authenticate(c, f))
        goto out;
    uint32_t cx = 0, cy = 0;
    const struct stomp_header *hb = stomp_header_get(f, "heart-beat");
    if (hb && stomp_parse_heartbeat(hb->value, &cx, &cy) != 0) {
        protocol_error(c, CLOSE_PROTOCOL, "malformed heart-beat header");
        goto out;
    }
    s->own_dest = dest_dup(c, eid, strlen(eid));
    if (!s->own_dest) {
        protocol_error(c, CLOSE_PROTOCOL, "endpoint-id too long for a destination");
        goto out;
    }
    int brc = conn_bind_endpoint(c, eid, strlen(eid), NULL, 0);
    if (brc != 0) {
        if (brc == CONN_BIND_REFUSED)
            protocol_error(c, CLOSE_DUPLICATE, "endpoint-id is already connected");
        else
            protocol_error(c, CLOSE_NO_MEMORY, "out of memory");
        goto out;
    }
    uint32_t sx = sc->heartbeat_send_ms, sy = sc->heartbeat_receive_ms;
    s->hb_out_ms = (sx == 0 || cy == 0) ? 0 : (sx > cy ? sx : cy);
    s->hb_in_ms = (cx == 0 || sy == 0) ? 0 : (cx > sy ? cx : sy);
    char hbv[32];
    snprintf(hbv, sizeof hbv, "%u,%u", sx, sy);
    /* CONNECTED is never escaped; the destination is percent-encoded so needs none. */
    struct stomp_kv h[] = {KV("version", "1.2"), KV("heart-beat", hbv),
                           KV("server", STOMP_SERVER_NAME), KV("subscribe-dest", s->own_dest)};
    send_frame(c, STOMP_CMD_CONNECTED, h, 4, 0, NULL, 0);
    s->connected = 1;
    conn_handshake_done(c);
    if (start_heartbeats(s) != 0)
        conn_close(c, CLOSE_NO_MEMORY, "out of memory");
out:
    free(eid);
}

static void on_subscribe(struct stomp_conn *s, const struct stomp_frame *f, const char *receipt)
{
    struct conn *c = &s->base;
    int bad = 0;
    char *id = header_dup(f, "id", &bad);
    char *dest = header_dup(f, "destination", &bad);
    const struct stomp_header *ack = stomp_header_get(f, "ack");

    if (bad || !id || !dest) {
        protocol_error(c, CLOSE_PROTOCOL, "SUBSCRIBE needs id and destination headers");
        goto out;
    }
    if (ack && !(ack->value.len == 4 && memcmp(ack->value.ptr, "auto", 4) == 0)) {
        protocol_error(c, CLOSE_PROTOCOL, "only ack:auto is supported");
        goto out;
    }
    if (strcmp(dest, s->own_dest) != 0 && !c->lcfg->stomp.allow_any_subscribe) {
        /* R-STOMP.34: an endpoint may subscribe only to its own destination. */
        protocol_error(c, CLOSE_PROTOCOL, "subscription allowed only to %s", s->own_dest);
        goto out;
    }
    static const struct span none = {NULL, 0};
    struct route me = {worker_index(c->w), c->id};
    if (s->sub_dest)
        router_unbind(c->relay->router, ROUTER_DESTS, span_from_str(s->sub_dest, strlen(s->sub_dest)),
                      none, c->id);
    if (router_bind(c->relay->router, ROUTER_DESTS, span_from_str(dest, strlen(dest)), none, me,
                    DUP_REPLACE_OLD, NULL) < 0) {
        protocol_error(c, CLOSE_NO_MEMORY, "out of memory");
        goto out;
    }
    free(s->sub_dest);
    free(s->sub_id);
    s->sub_dest = dest;
    s->sub_id = id;
    dest = id = NULL;
    send_receipt(c, receipt);
    if (c->flags & CONN_BACKLOG)
        worker_post_drain(c->w, c->id); /* Records that waited for this subscription */
out:
    free(id);
    free(dest);
}

static void drop_subscription(struct stomp_conn *s)
{
    static const struct span none = {NULL, 0};
    if (s->sub_dest)
        router_unbind(s->base.relay->router, ROUTER_DESTS,
                      span_from_str(s->sub_dest, strlen(s->sub_dest)), none, s->base.id);
    free(s->sub_dest);
    free(s->sub_id);
    s->sub_dest = s->sub_id = NULL;
}

static void on_unsubscribe(struct stomp_conn *s, const struct stomp_frame *f, const char *receipt)
{
    int bad = 0;
    char *id = header_dup(f, "id", &bad);
    if (!id || !s->sub_id || strcmp(id, s->sub_id) != 0) {
        protocol_error(&s->base, CLOSE_PROTOCOL, "UNSUBSCRIBE of an unknown subscription id");
    } else {
        drop_subscription(s);
        send_receipt(&s->base, receipt);
    }
    free(id);
}

static int content_type_ok(const struct stomp_frame *f)
{
    const struct stomp_header *h = stomp_header_get(f, "content-type");
    size_t n = sizeof STOMP_CONTENT_TYPE - 1;
    if (!h)
        return 1; /* absent: the body is still a Record to scan */
    return h->value.len >= n && memcmp(h->value.ptr, STOMP_CONTENT_TYPE, n) == 0 &&
           (h->value.len == n || h->value.ptr[n] == ';');
}

/* SEND: the head is decoded, the body is BODY_LEN bytes after HEAD_LEN in the input. */
static void on_send(struct stomp_conn *s, const struct stomp_frame *f, size_t head_len,
                    size_t body_len, const char *receipt)
{
    struct conn *c = &s->base;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    int bad = 0;
    char *dest = header_dup(f, "destination", &bad);
    int type_ok = content_type_ok(f);

    if (!dest) {
        evbuffer_drain(in, head_len + body_len + 1);
        protocol_error(c, CLOSE_PROTOCOL, "SEND needs a destination header");
        return;
    }
    /* F's spans die with the drain: everything needed is copied above. */
    evbuffer_drain(in, head_len);
    struct rbuf *rb = type_ok ? rbuf_new(body_len) : NULL;
    if (!rb) {
        evbuffer_drain(in, body_len + 1);
        conn_record_dropped(c, type_ok ? STAT_drop_no_memory : STAT_drop_bad_content_type, NULL);
        goto done;
    }
    evbuffer_remove(in, rb->data, body_len);
    evbuffer_drain(in, 1);
    if (forward_scan(c, rb, NULL, 0) != 0)
        goto done; /* a Record that cannot be extracted is dropped silently on STOMP (§9.1) */
    if (s->sub_dest && rbuf_set_reply_to(rb, s->sub_dest, strlen(s->sub_dest)) != 0) {
        conn_record_dropped(c, STAT_drop_no_memory, rb);
        rbuf_unref(rb);
        goto done;
    }
    forward_record(c, rb, ROUTER_DESTS, span_from_str(dest, strlen(dest)));
done:
    send_receipt(c, receipt);
    free(dest);
}

static const char *unsupported_reason(enum stomp_cmd cmd)
{
    switch (cmd) {
    case STOMP_CMD_BEGIN:
    case STOMP_CMD_COMMIT:
    case STOMP_CMD_ABORT:
        return "transactions are not supported (USP endpoints must not send them, R-STOMP.26)";
    case STOMP_CMD_ACK:
    case STOMP_CMD_NACK:
        return "ACK/NACK are not supported (subscriptions are ack:auto, R-STOMP.27)";
    default:
        return "frame not accepted from a client";
    }
}

/* Handle one complete frame at the front of the input and consume it. */
static void dispatch(struct stomp_conn *s, const struct stomp_frame *f, size_t head_len,
                     size_t body_len)
{
    struct conn *c = &s->base;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    int bad = 0;

    if (!s->connected && f->cmd != STOMP_CMD_CONNECT && f->cmd != STOMP_CMD_STOMP) {
        protocol_error(c, CLOSE_PROTOCOL, "expected a CONNECT or STOMP frame first");
        return;
    }
    char *receipt = header_dup(f, "receipt", &bad);
    if (bad) {
        protocol_error(c, CLOSE_PROTOCOL, "receipt header has a bad escape");
        return;
    }
    s->cur_receipt = receipt;
    if (f->cmd == STOMP_CMD_SEND) {
        on_send(s, f, head_len, body_len, receipt);
        s->cur_receipt = NULL;
        free(receipt);
        return;
    }
    switch (f->cmd) {
    case STOMP_CMD_CONNECT:
    case STOMP_CMD_STOMP:
        on_connect(s, f);
        break;
    case STOMP_CMD_SUBSCRIBE:
        on_subscribe(s, f, receipt);
        break;
    case STOMP_CMD_UNSUBSCRIBE:
        on_unsubscribe(s, f, receipt);
        break;
    case STOMP_CMD_DISCONNECT:
        send_receipt(c, receipt);
        conn_close(c, CLOSE_GOODBYE, NULL);
        break;
    default:
        protocol_error(c, CLOSE_PROTOCOL, "%s: %s", stomp_cmd_name(f->cmd),
                       unsupported_reason(f->cmd));
        break;
    }
    s->cur_receipt = NULL;
    free(receipt);
    if (!(c->flags & CONN_CLOSING))
        evbuffer_drain(in, head_len + body_len + 1);
}

/* A connected client's SEND above max_record_size: drop the Record, keep the session
 * (spec notes §9.8), and discard the body as it arrives instead of buffering it. */
static void skip_oversized(struct stomp_conn *s, const struct stomp_frame *f, size_t head_len)
{
    struct conn *c = &s->base;
    int bad = 0;
    char *receipt = header_dup(f, "receipt", &bad);
    evbuffer_drain(bufferevent_get_input(c->bev), head_len);
    s->skip_left = (uint64_t)f->content_length + 1;
    conn_record_dropped(c, STAT_drop_too_large, NULL);
    send_receipt(c, receipt);
    free(receipt);
}

/* Discard what is available of an oversized body; 1 when it is all gone. */
static int skip_input(struct stomp_conn *s, struct evbuffer *in, size_t len)
{
    struct conn *c = &s->base;
    size_t n = len < s->skip_left ? len : (size_t)s->skip_left;
    if (n == s->skip_left) {
        char nul = 1;
        struct evbuffer_ptr pos;
        evbuffer_ptr_set(in, &pos, n - 1, EVBUFFER_PTR_SET);
        evbuffer_copyout_from(in, &pos, &nul, 1);
        if (nul != '\0') {
            protocol_error(c, CLOSE_PROTOCOL, "malformed frame: %s",
                           stomp_err_name(STOMP_ERR_NO_NUL));
            return 0;
        }
    }
    evbuffer_drain(in, n);
    s->skip_left -= n;
    return s->skip_left == 0;
}

static void stomp_on_read(struct conn *c)
{
    struct stomp_conn *s = (struct stomp_conn *)c;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    const struct limits_cfg *lim = &c->lcfg->limits;
    struct stomp_limits sl = {c->lcfg->stomp.max_frame_head, c->lcfg->stomp.max_headers,
                              s->connected ? STOMP_SKIP_MAX : lim->max_record_size};
    struct stomp_frame f;

    s->last_rx_ms = now_ms();
    while (!(c->flags & CONN_CLOSING)) {
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            break;
        if (s->skip_left) {
            if (!skip_input(s, in, len))
                break;
            continue;
        }
        sl.max_body = s->connected ? STOMP_SKIP_MAX : lim->max_record_size;
        size_t peek = len < sl.max_head + 2 ? len : sl.max_head + 2;
        const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)peek);
        if (!p) {
            protocol_error(c, CLOSE_NO_MEMORY, "out of memory");
            break;
        }
        size_t eols = stomp_skip_eols(p, peek);
        if (eols) {
            evbuffer_drain(in, eols); /* heart-beats */
            s->head_seen = 0;
            continue;
        }
        int hl = stomp_decode_head(p, peek, s->head_seen, &sl, &f);
        if (hl == STOMP_NEED_MORE) {
            s->head_seen = peek;
            if (!s->connected && len >= lim->max_unidentified_input)
                goto too_much_before_connect;
            break;
        }
        if (hl < 0) {
            protocol_error(c, CLOSE_PROTOCOL, "malformed frame: %s", stomp_err_name(hl));
            break;
        }
        size_t head_len = (size_t)hl, body_len;
        if (f.content_length > (long)lim->max_record_size) {
            if (f.cmd != STOMP_CMD_SEND) {
                protocol_error(c, CLOSE_PROTOCOL, "malformed frame: %s",
                               stomp_err_name(STOMP_ERR_BODY_TOO_LARGE));
                break;
            }
            s->head_seen = 0;
            skip_oversized(s, &f, head_len);
            continue;
        }
        if (f.content_length >= 0) {
            body_len = (size_t)f.content_length;
            if (!s->connected && head_len + body_len + 1 > lim->max_unidentified_input)
                goto too_much_before_connect;
            if (len < head_len + body_len + 1)
                break; /* the read watermark is above any frame this can declare */
            struct evbuffer_ptr pos;
            char nul = 1;
            evbuffer_ptr_set(in, &pos, head_len + body_len, EVBUFFER_PTR_SET);
            evbuffer_copyout_from(in, &pos, &nul, 1);
            if (nul != '\0') {
                protocol_error(c, CLOSE_PROTOCOL, "malformed frame: %s",
                               stomp_err_name(STOMP_ERR_NO_NUL));
                break;
            }
        } else {
            struct evbuffer_ptr start, found;
            size_t from = head_len > s->body_seen ? head_len : s->body_seen;
            evbuffer_ptr_set(in, &start, from, EVBUFFER_PTR_SET);
            found = evbuffer_search(in, "", 1, &start);
            if (found.pos < 0) {
                if (!s->connected && len >= lim->max_unidentified_input)
                    goto too_much_before_connect;
                if (len - head_len > lim->max_record_size) {
                    protocol_error(c, CLOSE_PROTOCOL, "malformed frame: %s",
                                   stomp_err_name(STOMP_ERR_BODY_TOO_LARGE));
                    break;
                }
                s->body_seen = len;
                break;
            }
            body_len = (size_t)found.pos - head_len;
            if (body_len > lim->max_record_size) {
                protocol_error(c, CLOSE_PROTOCOL, "malformed frame: %s",
                               stomp_err_name(STOMP_ERR_BODY_TOO_LARGE));
                break;
            }
        }
        s->head_seen = 0;
        s->body_seen = 0;
        dispatch(s, &f, head_len, body_len);
    }
    return;

too_much_before_connect:
    protocol_error(c, CLOSE_PROTOCOL, "more than %u bytes before CONNECT",
                   lim->max_unidentified_input);
}

static void stomp_unbind(struct conn *c)
{
    drop_subscription((struct stomp_conn *)c);
}

static void stomp_destroy(struct conn *c)
{
    struct stomp_conn *s = (struct stomp_conn *)c;
    drop_subscription(s);
    free(s->own_dest);
    if (s->hb_out)
        event_free(s->hb_out);
    if (s->hb_in)
        event_free(s->hb_in);
}

/* MESSAGE frames need a subscription to name. */
static int stomp_ready(const struct conn *c)
{
    return ((const struct stomp_conn *)c)->sub_dest != NULL;
}

static const struct conn_ops stomp_ops = {
    .mtp = MTP_STOMP,
    .name = "stomp",
    .connect_type = RECORD_STOMP_CONNECT,
    .on_read = stomp_on_read,
    .send_record = stomp_send_record,
    .goodbye = stomp_goodbye,
    .alias_address = stomp_alias_address,
    .unbind = stomp_unbind,
    .destroy = stomp_destroy,
    .ready = stomp_ready,
};

struct conn *stomp_conn_new(struct worker *w, int fd, const struct listener_cfg *lcfg,
                            const char *peer)
{
    struct conn *c = conn_create(sizeof(struct stomp_conn), &stomp_ops, w, lcfg, fd, peer);
    if (c && c->refuse) {
        /* STOMP allows an ERROR at any time: a refused client learns why before it
         * has sent anything. */
        conn_close(c, CLOSE_BUSY, "server busy");
    }
    return c;
}
