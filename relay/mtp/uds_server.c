/* uds_server.c — one USP UDS session per client: handshake both ways, Records in and
 * out as type-3 TLVs, Error TLV then close for anything that cannot be parsed. Framing
 * is done by uds_codec; this file owns the state. Wire rules: spec notes §6 and §9
 * items 24–25.
 */
#include "relay/mtp/uds_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "relay/endpoint_id.h"
#include "relay/forward.h"
#include "relay/log.h"
#include "relay/mtp/uds_codec.h"
#include "relay/relay.h"
#include "relay/worker.h"

/* Room for TLVs beside the Record in one frame (a handshake, an unknown type). */
#define UDS_FRAME_SLACK 4096u

struct uds_conn {
    struct conn base;
    int handshaken;
};

static void send_tlv(struct conn *c, uint8_t type, const char *value, size_t len)
{
    uint8_t hdr[UDS_SINGLE_HEADER_LEN];
    uds_encode_single_header(hdr, type, (uint32_t)len);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (evbuffer_expand(out, sizeof hdr + len) != 0) {
        conn_fail(c);
        return;
    }
    evbuffer_add(out, hdr, sizeof hdr);
    evbuffer_add(out, value, len);
}

static void uds_goodbye(struct conn *c, enum close_reason why, const char *text)
{
    if (why == CLOSE_PEER || why == CLOSE_IO_ERROR || why == CLOSE_GOODBYE)
        return;
    const char *msg = text ? text : close_reason_name(why);
    send_tlv(c, UDS_TLV_ERROR, msg, strlen(msg));
}

static void uds_error(struct conn *c, enum close_reason why, const char *text)
{
    char d[256];
    if (why == CLOSE_PROTOCOL)
        stats_inc(conn_stats(c), STAT_conn_protocol_error);
    log_info("uds_error", "%s error=\"%s\"", conn_describe(c, d, sizeof d), text);
    conn_close(c, why, text);
}

static int uds_send_record(struct conn *c, struct rbuf *rb)
{
    if (rb->len > c->lcfg->limits.max_record_size)
        return STAT_drop_too_large;
    if (conn_output_queued(c) + rb->len > c->lcfg->limits.max_output_queue)
        return STAT_drop_queue_full;
    uint8_t hdr[UDS_SINGLE_HEADER_LEN];
    uds_encode_single_header(hdr, UDS_TLV_RECORD, rb->len);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (evbuffer_add(out, hdr, sizeof hdr) != 0)
        return STAT_drop_no_memory; /* nothing queued: the stream is intact */
    rbuf_ref(rb);
    if (evbuffer_add_reference(out, rb->data, rb->len, rbuf_evbuffer_cleanup, rb) != 0) {
        rbuf_unref(rb);
        conn_fail(c); /* a header without its Record would corrupt the stream */
        return STAT_drop_no_memory;
    }
    return 0;
}

static void on_handshake(struct uds_conn *u, const struct uds_tlv *t)
{
    struct conn *c = &u->base;
    const struct relay_config *cfg = c->relay->cfg;
    const char *peer = c->lcfg->uds.peer_endpoint_id;

    if (u->handshaken)
        return; /* R-UDS.19: later handshakes are ignored */
    int e = eid_check((const char *)t->value, t->len, cfg->max_endpoint_id_length);
    if (e != EID_OK) {
        char msg[96];
        snprintf(msg, sizeof msg, "invalid endpoint id in handshake: %s", eid_err_name(e));
        uds_error(c, CLOSE_PROTOCOL, msg);
        return;
    }
    int brc = conn_bind_endpoint(c, (const char *)t->value, t->len, peer, peer ? strlen(peer) : 0);
    if (brc != 0) {
        if (brc == CONN_BIND_REFUSED)
            uds_error(c, CLOSE_DUPLICATE, "endpoint id is already connected");
        else
            uds_error(c, CLOSE_NO_MEMORY, "out of memory");
        return;
    }
    const char *answer = peer ? peer : cfg->endpoint_id;
    send_tlv(c, UDS_TLV_HANDSHAKE, answer, strlen(answer));
    u->handshaken = 1;
    conn_handshake_done(c);
}

/* A Record TLV: RB holds the frame; take it over when it is the frame's only TLV. */
static void on_record(struct uds_conn *u, const struct uds_tlv *t, struct rbuf **frame, int only)
{
    struct conn *c = &u->base;
    struct rbuf *rb;

    if (!u->handshaken) {
        stats_inc(conn_stats(c), STAT_records_before_handshake); /* R-UDS.20 */
        return;
    }
    if (only) {
        rb = *frame;
        *frame = NULL;
        rb->data = (uint8_t *)t->value;
        rb->len = t->len;
        rb->cap = t->len;
    } else {
        rb = rbuf_new(t->len);
        if (!rb) {
            conn_record_dropped(c, STAT_drop_no_memory, NULL);
            return;
        }
        memcpy(rb->data, t->value, t->len);
    }
    char msg[96];
    if (forward_scan(c, rb, msg, sizeof msg) != 0) {
        uds_error(c, CLOSE_PROTOCOL, msg); /* R-UDS.23: this ends the connection */
        return;
    }
    static const struct span none = {NULL, 0};
    if (forward_record(c, rb, ROUTER_IDS, none) == STAT_drop_self_addressed)
        uds_error(c, CLOSE_PROTOCOL, "cannot extract USP Record: to_id equals from_id");
}

static void uds_on_read(struct conn *c)
{
    struct uds_conn *u = (struct uds_conn *)c;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    const struct limits_cfg *lim = &c->lcfg->limits;

    while (!(c->flags & CONN_CLOSING)) {
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            break;
        uint32_t max_body = u->handshaken ? lim->max_record_size + UDS_FRAME_SLACK
                                          : lim->max_unidentified_input;
        size_t peek = len < UDS_HEADER_LEN ? len : UDS_HEADER_LEN;
        const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)peek);
        long fs = p ? uds_frame_size(p, peek, max_body) : UDS_ERR_TOO_LARGE;
        if (fs == UDS_NEED_MORE)
            break;
        if (fs < 0) {
            char msg[96];
            snprintf(msg, sizeof msg, "bad frame: %s", uds_err_name((int)fs));
            uds_error(c, CLOSE_PROTOCOL, msg);
            break;
        }
        if (len < (size_t)fs)
            break; /* the read watermark is above any frame size accepted here */

        size_t body_len = (size_t)fs - UDS_HEADER_LEN;
        struct rbuf *frame = rbuf_new(body_len);
        if (!frame) {
            uds_error(c, CLOSE_NO_MEMORY, "out of memory");
            break;
        }
        evbuffer_drain(in, UDS_HEADER_LEN);
        evbuffer_remove(in, frame->data, body_len);
        const uint8_t *body = frame->data;
        int n = uds_body_check(body, body_len);
        if (n < 0) {
            char msg[96];
            snprintf(msg, sizeof msg, "bad frame: %s", uds_err_name(n));
            rbuf_unref(frame);
            uds_error(c, CLOSE_PROTOCOL, msg);
            break;
        }
        size_t off = 0;
        struct uds_tlv t;
        while (!(c->flags & CONN_CLOSING) && uds_tlv_next(body, body_len, &off, &t) == 1) {
            switch (t.type) {
            case UDS_TLV_HANDSHAKE:
                on_handshake(u, &t);
                break;
            case UDS_TLV_ERROR: {
                char d[256], text[160];
                log_info("uds_peer_error", "%s text=%s", conn_describe(c, d, sizeof d),
                         log_escape(text, sizeof text, t.value, t.len, 128));
                conn_close(c, CLOSE_GOODBYE, NULL); /* R-UDS.25 */
                break;
            }
            case UDS_TLV_RECORD:
                on_record(u, &t, &frame, n == 1);
                break;
            default:
                break; /* R-UDS.15: unknown types are ignored */
            }
        }
        rbuf_unref(frame);
    }
}

static const struct conn_ops uds_ops = {
    .mtp = MTP_UDS,
    .name = "uds",
    .connect_type = RECORD_UDS_CONNECT,
    .on_read = uds_on_read,
    .send_record = uds_send_record,
    .goodbye = uds_goodbye,
    .alias_address = NULL,
    .destroy = NULL,
};

struct conn *uds_conn_new(struct worker *w, int fd, const struct listener_cfg *lcfg,
                          const char *peer)
{
    struct conn *c = conn_create(sizeof(struct uds_conn), &uds_ops, w, lcfg, fd, peer);
    if (c && c->refuse) {
        /* The Error TLV says why; the peer needs no handshake of ours to read it. */
        conn_close(c, CLOSE_BUSY, "server busy");
    }
    return c;
}
