/* ws_mqtt.c — MQTT over WebSocket (subprotocol "mqtt", MQTT 5.0 §6): the WebSocket
 * session carries an MQTT byte stream in binary messages, split anywhere. The MQTT
 * session code runs on the I/O workers over a bufferevent, so each such session gets a
 * socket pair: one end is adopted by an I/O worker as an ordinary MQTT connection (with
 * the settings of the listener named by mqtt_listener), the other is a raw socket in
 * this thread, and bytes are shuttled between it and the WebSocket. One copy per byte
 * buys an MQTT implementation shared with the TCP listener, unchanged.
 *
 * The pipe end is its own object: when the WebSocket goes first, what the client sent
 * last (typically its final PUBLISH and DISCONNECT) is still written to the MQTT
 * session before the pipe closes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "relay/log.h"
#include "relay/mtp/mqtt_server.h"
#include "relay/mtp/ws_session.h"
#include "relay/relay.h"
#include "relay/worker.h"

/* Bytes moved per write, and buffered per direction before reading stops. */
#define WS_MQTT_CHUNK (64 * 1024)
#define WS_MQTT_BUFFER_MAX (256 * 1024)

/* Our end of the socket pair. */
struct ws_pipe {
    struct ws_session *s;     /* NULL once the WebSocket session is gone */
    struct lws *wsi;
    struct evbuffer *to_mqtt; /* from the WebSocket client, for the MQTT session */
    uint8_t *buf;             /* LWS_PRE + one chunk */
};

static void pipe_free(struct ws_pipe *p)
{
    if (p->to_mqtt)
        evbuffer_free(p->to_mqtt);
    free(p->buf);
    free(p);
}

int ws_mqtt_start(struct ws_session *s)
{
    struct relay *r = s->c.relay;
    const struct listener_cfg *ml = s->c.lcfg->ws.mqtt;
    int sv[2] = {-1, -1};

    s->to_ws = evbuffer_new();
    s->mqtt_buf = malloc(LWS_PRE + WS_MQTT_CHUNK);
    struct ws_pipe *p = calloc(1, sizeof *p);
    if (p) {
        p->to_mqtt = evbuffer_new();
        p->buf = malloc(LWS_PRE + WS_MQTT_CHUNK);
    }
    if (!ml || !s->to_ws || !s->mqtt_buf || !p || !p->to_mqtt || !p->buf ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
        if (p)
            pipe_free(p);
        return -1;
    }
    p->s = s;
    /* Adopted without the pipe object: callbacks during adoption (or its failure) must
     * not see one they could free. */
    lws_adopt_desc_t d = {.vh = ws_server_pipe_vhost(s->srv), .type = LWS_ADOPT_SOCKET,
                          .fd.sockfd = sv[1], .vh_prot_name = WS_MQTT_PIPE_PROTOCOL};
    p->wsi = lws_adopt_descriptor_vhost_via_info(&d);
    if (!p->wsi) { /* libwebsockets closed sv[1] */
        close(sv[0]);
        pipe_free(p);
        return -1;
    }
    lws_set_opaque_user_data(p->wsi, p);
    s->pipe = p;
    /* The MQTT session is a connection of its own (and two more descriptors). */
    char peer[sizeof s->c.peer + 4];
    snprintf(peer, sizeof peer, "ws:%s", s->c.peer);
    atomic_fetch_add(&r->live_conns, 1);
    struct worker *w = r->workers[s->c.id % r->n_io_workers];
    /* The MQTT session cannot see this session's certificate: it gets the IDs. */
    worker_post_adopt(w, sv[0], mqtt_conn_new, ml, peer, s->mqtt_cert_ids);
    s->mqtt_cert_ids = NULL;
    return 0;
}

void ws_mqtt_receive(struct ws_session *s, const uint8_t *in, size_t len)
{
    if (!lws_frame_is_binary(s->wsi)) {
        ws_session_error(s, CLOSE_PROTOCOL, 1003, "text message: MQTT travels in binary messages");
        return;
    }
    struct ws_pipe *p = s->pipe;
    if (!p || evbuffer_add(p->to_mqtt, in, len) != 0) {
        ws_session_error(s, CLOSE_NO_MEMORY, 1011, "MQTT session gone");
        return;
    }
    lws_callback_on_writable(p->wsi);
    if (!s->rx_paused && evbuffer_get_length(p->to_mqtt) > WS_MQTT_BUFFER_MAX) {
        s->rx_paused = 1;
        lws_rx_flow_control(s->wsi, 0);
    }
}

/* Move up to one chunk from BUF to WSI as PROTOCOL, through SCRATCH (LWS_PRE + one
 * chunk). 1 if written, 0 if empty, -1 on a write error. */
static int move_chunk(struct evbuffer *buf, uint8_t *scratch, struct lws *wsi,
                      enum lws_write_protocol protocol)
{
    size_t n = evbuffer_get_length(buf);
    if (n == 0)
        return 0;
    if (n > WS_MQTT_CHUNK)
        n = WS_MQTT_CHUNK;
    evbuffer_copyout(buf, scratch + LWS_PRE, n);
    if (lws_write(wsi, scratch + LWS_PRE, n, protocol) < (int)n)
        return -1;
    evbuffer_drain(buf, n);
    if (evbuffer_get_length(buf))
        lws_callback_on_writable(wsi);
    return 1;
}

int ws_mqtt_writeable(struct ws_session *s)
{
    int rc = move_chunk(s->to_ws, s->mqtt_buf, s->wsi, LWS_WRITE_BINARY);
    if (rc > 0 && s->pipe_paused && s->pipe &&
        evbuffer_get_length(s->to_ws) <= WS_MQTT_BUFFER_MAX / 2) {
        s->pipe_paused = 0;
        lws_rx_flow_control(s->pipe->wsi, 1);
    }
    return rc;
}

int ws_mqtt_pipe_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                          void *in, size_t len)
{
    (void)user;
    struct ws_pipe *p = lws_get_opaque_user_data(wsi);
    if (!p || p->wsi != wsi)
        return reason == LWS_CALLBACK_RAW_RX || reason == LWS_CALLBACK_RAW_WRITEABLE ? -1 : 0;
    struct ws_session *s = p->s;

    switch (reason) {
    case LWS_CALLBACK_RAW_RX:
        /* From the MQTT session, for the WebSocket client (if it is still there). */
        if (!s)
            return 0;
        if (!s->wsi || evbuffer_add(s->to_ws, in, len) != 0)
            return -1;
        lws_callback_on_writable(s->wsi);
        if (!s->pipe_paused && evbuffer_get_length(s->to_ws) > WS_MQTT_BUFFER_MAX) {
            s->pipe_paused = 1;
            lws_rx_flow_control(wsi, 0);
        }
        return 0;
    case LWS_CALLBACK_RAW_WRITEABLE: {
        int rc = move_chunk(p->to_mqtt, p->buf, wsi, LWS_WRITE_RAW);
        if (rc < 0)
            return -1;
        if (!s) {
            /* Orphaned: once the client's last bytes are out (libwebsockets calls back
             * only after writing what it holds), the pipe goes. */
            if (rc == 0)
                return -1;
            lws_callback_on_writable(wsi);
            return 0;
        }
        if (rc > 0 && s->rx_paused && s->wsi &&
            evbuffer_get_length(p->to_mqtt) <= WS_MQTT_BUFFER_MAX / 2) {
            s->rx_paused = 0;
            lws_rx_flow_control(s->wsi, 1);
        }
        return 0;
    }
    case LWS_CALLBACK_RAW_CLOSE:
    case LWS_CALLBACK_WSI_DESTROY:
        /* The MQTT session ended: what it said goes out, then a normal Close. */
        if (s) {
            s->pipe = NULL;
            if (s->wsi && !(s->c.flags & CONN_CLOSING))
                conn_close(&s->c, CLOSE_PEER, "MQTT session closed");
        }
        lws_set_opaque_user_data(wsi, NULL);
        pipe_free(p);
        return 0;
    default:
        return 0;
    }
}

void ws_mqtt_detach(struct ws_session *s)
{
    struct ws_pipe *p = s->pipe;
    if (!p)
        return;
    s->pipe = NULL;
    p->s = NULL;
    if (evbuffer_get_length(p->to_mqtt))
        lws_callback_on_writable(p->wsi); /* flush, then close (RAW_WRITEABLE) */
    else
        lws_set_timeout(p->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

void ws_mqtt_free(struct ws_session *s)
{
    ws_mqtt_detach(s);
    if (s->to_ws)
        evbuffer_free(s->to_ws);
    free(s->mqtt_buf);
    s->to_ws = NULL;
    s->mqtt_buf = NULL;
}
