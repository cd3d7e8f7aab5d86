/* ws_usp.c — USP Records over a WebSocket session: each Record is one binary message.
 * Input is reassembled across frames and chunks up to max_record_size (R-WS.14b) and
 * handed to the router; output is a queue of Records written one per writeable
 * callback, in place behind the LWS_PRE headroom every record buffer has (R-WS.14a: one
 * frame, unless the listener is configured to fragment for peers that need it).
 */
#include <stdlib.h>
#include <string.h>

#include "relay/forward.h"
#include "relay/log.h"
#include "relay/mtp/ws_session.h"
#include "relay/relay.h"

/* Bytes set aside for a new message before more of it has arrived. */
#define WS_FIRST_ALLOC (64 * 1024)

#define WS_CLOSE_UNACCEPTABLE 1003
#define WS_CLOSE_TOO_BIG 1009
#define WS_CLOSE_INTERNAL 1011

static void message_too_big(struct ws_session *s)
{
    conn_record_dropped(&s->c, STAT_drop_too_large, NULL);
    rbuf_unref(s->in);
    s->in = NULL;
    s->in_len = 0;
    ws_session_error(s, CLOSE_TOO_LARGE, WS_CLOSE_TOO_BIG, "message larger than max_record_size");
}

static void message_complete(struct ws_session *s)
{
    static const struct span none = {NULL, 0};
    struct conn *c = &s->c;
    struct rbuf *rb = s->in;
    s->in = NULL;
    rb->len = (uint32_t)s->in_len;
    s->in_len = 0;
    char msg[96];
    if (forward_scan(c, rb, msg, sizeof msg) != 0) {
        /* R-WS.16: a message whose Record cannot be extracted ends the session. */
        ws_session_error(s, CLOSE_PROTOCOL, WS_CLOSE_UNACCEPTABLE, msg);
        return;
    }
    if (forward_record(c, rb, ROUTER_IDS, none) == STAT_drop_self_addressed)
        ws_session_error(s, CLOSE_PROTOCOL, WS_CLOSE_UNACCEPTABLE,
                         "cannot extract USP Record: to_id equals from_id");
}

void ws_usp_receive(struct ws_session *s, const uint8_t *in, size_t len)
{
    if (!lws_frame_is_binary(s->wsi)) {
        ws_session_error(s, CLOSE_PROTOCOL, WS_CLOSE_UNACCEPTABLE,
                         "text message: USP Records travel in binary messages");
        return;
    }
    size_t max = s->c.lcfg->limits.max_record_size;
    size_t remaining = lws_remaining_packet_payload(s->wsi);
    /* Known so far: what we have, this chunk, and the rest of this frame. */
    if (len > max || remaining > max - len || s->in_len > max - len - remaining) {
        message_too_big(s);
        return;
    }
    size_t have = s->in_len + len, need = have + remaining;
    if (!s->in || have > s->in->cap) {
        /* Memory follows the bytes that arrived, not what a frame header announces (a
         * peer could announce max_record_size and send nothing): the first piece gets
         * room for its frame up to WS_FIRST_ALLOC, then the buffer doubles. */
        size_t cap = s->in ? s->in->cap * 2 : (need < WS_FIRST_ALLOC ? need : WS_FIRST_ALLOC);
        if (cap > max)
            cap = max;
        if (cap < have)
            cap = have;
        struct rbuf *rb = s->in ? rbuf_grow(s->in, cap) : rbuf_new(cap);
        if (!rb) {
            ws_session_error(s, CLOSE_NO_MEMORY, WS_CLOSE_INTERNAL, "out of memory");
            return;
        }
        s->in = rb;
    }
    memcpy(s->in->data + s->in_len, in, len);
    s->in_len += len;
    if (lws_is_final_fragment(s->wsi))
        message_complete(s);
}

static struct rbuf *queue_head(const struct ws_session *s)
{
    return s->outq[s->out_head];
}

static void queue_pop(struct ws_session *s)
{
    struct rbuf *rb = queue_head(s);
    s->out_bytes -= rb->len;
    s->out_head = (s->out_head + 1) % s->out_cap;
    s->out_n--;
    s->frag_off = 0;
    rbuf_unref(rb);
}

/* Write one frame of the head Record: the whole Record, or its next fragment. */
static int write_head(struct ws_session *s)
{
    struct rbuf *rb = queue_head(s);
    uint32_t frag = s->c.lcfg->ws.fragment_size;
    if (!frag || rb->len <= frag) {
        /* In place: libwebsockets puts the frame header in the headroom. */
        if (lws_write(s->wsi, rb->data, rb->len, LWS_WRITE_BINARY) < (int)rb->len)
            return -1;
        queue_pop(s);
        return 0;
    }
    if (!s->frag_buf && !(s->frag_buf = malloc(LWS_PRE + (size_t)frag)))
        return -1;
    /* Fragments are copied: writing a header in front of one would overwrite Record
     * bytes another connection may still be sending. */
    uint32_t off = s->frag_off, n = rb->len - off < frag ? rb->len - off : frag;
    int flags = off == 0 ? LWS_WRITE_BINARY : LWS_WRITE_CONTINUATION;
    if (off + n < rb->len)
        flags |= LWS_WRITE_NO_FIN;
    memcpy(s->frag_buf + LWS_PRE, rb->data + off, n);
    if (lws_write(s->wsi, s->frag_buf + LWS_PRE, n, (enum lws_write_protocol)flags) < (int)n)
        return -1;
    s->frag_off += n;
    if (s->frag_off == rb->len)
        queue_pop(s);
    return 0;
}

/* Output waiting: libwebsockets closes the connection unless a frame goes out within
 * limits.stall_timeout (re-armed at each one). Nothing waiting: off again. */
static void stall_timer(struct ws_session *s)
{
    if (s->c.flags & CONN_CLOSING)
        return; /* libwebsockets' close timeouts own the slot now */
    if (s->out_n) {
        uint32_t ms = s->c.lcfg->limits.stall_timeout_ms;
        lws_set_timeout(s->wsi, WS_STALL_TIMEOUT, (int)((ms + 999) / 1000));
        s->stall_armed = 1;
        s->stall_since_ns = rbuf_now_ns();
    } else if (s->stall_armed) {
        lws_set_timeout(s->wsi, NO_PENDING_TIMEOUT, 0);
        s->stall_armed = 0;
    }
}

int ws_usp_writeable(struct ws_session *s)
{
    if (s->out_n == 0)
        return 0;
    if (write_head(s) != 0)
        return -1;
    stall_timer(s);
    lws_callback_on_writable(s->wsi);
    return 1;
}

int ws_usp_send_record(struct conn *c, struct rbuf *rb)
{
    struct ws_session *s = (struct ws_session *)c;
    const struct limits_cfg *lim = &c->lcfg->limits;
    if (s->kind != WS_USP || !s->wsi)
        return STAT_drop_no_route;
    if (rb->len > lim->max_record_size)
        return STAT_drop_too_large;
    if (s->out_bytes + rb->len > lim->max_output_queue)
        return STAT_drop_queue_full;
    if (s->out_n == s->out_cap) {
        size_t ncap = s->out_cap ? s->out_cap * 2 : 8;
        struct rbuf **nq = malloc(ncap * sizeof *nq);
        if (!nq)
            return STAT_drop_no_memory;
        for (size_t i = 0; i < s->out_n; i++)
            nq[i] = s->outq[(s->out_head + i) % s->out_cap];
        free(s->outq);
        s->outq = nq;
        s->out_cap = ncap;
        s->out_head = 0;
    }
    s->outq[(s->out_head + s->out_n) % s->out_cap] = rbuf_ref(rb);
    s->out_n++;
    s->out_bytes += rb->len;
    if (s->out_n == 1 && (s->c.flags & CONN_IDENTIFIED))
        stall_timer(s);
    lws_callback_on_writable(s->wsi);
    return 0;
}

void ws_usp_free(struct ws_session *s)
{
    while (s->out_n)
        queue_pop(s);
    free(s->outq);
    s->outq = NULL;
    free(s->frag_buf);
    s->frag_buf = NULL;
    if (s->in)
        rbuf_unref(s->in);
    s->in = NULL;
}
