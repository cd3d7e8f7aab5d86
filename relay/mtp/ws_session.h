/* ws_session.h — internal to the WebSocket MTP: one session and the calls between the
 * three files that serve it. ws_server.c owns the libwebsockets context, the service
 * thread, the handshake and the session's life; ws_usp.c carries USP Records (one binary
 * message each); ws_mqtt.c carries MQTT over WebSocket to the MQTT session code.
 *
 * Everything here runs on the libwebsockets service thread, which is the worker that
 * owns these connections.
 */
#ifndef USPRELAY_WS_SESSION_H
#define USPRELAY_WS_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "relay/conn.h"
#include "relay/rbuf.h"

_Static_assert(RBUF_HEADROOM >= LWS_PRE, "Records are written in place behind LWS_PRE bytes");

struct ws_server;
struct ws_pipe;
struct evbuffer;

enum ws_kind {
    WS_HTTP = 0, /* still an HTTP request: not upgraded (yet) */
    WS_USP,      /* subprotocol v1.usp: USP Records */
    WS_MQTT,     /* subprotocol mqtt: MQTT byte stream */
};

struct ws_session {
    struct conn c; /* first: a ws_session is a conn */
    struct ws_server *srv;
    struct lws *wsi; /* NULL once libwebsockets has destroyed it */
    enum ws_kind kind;
    const struct ws_controller_path *ctrl; /* the controller the path names, or NULL */
    int offered_ext;                       /* the client offered bbf-usp-protocol */
    char *pending_eid;                     /* checked in the request, bound once upgraded */
    int saw_request;                       /* an HTTP request arrived (TLS, if any, is up) */
    char *mqtt_cert_ids;                   /* MQTT: IDs the client certificate stands for */

    /* Closing: the status and reason the Close frame carries (0: no Close frame). */
    uint16_t close_code;
    char close_text[100];
    int close_flush; /* queued output goes out before the Close */
    int peer_closed; /* the peer sent a Close */
    uint64_t last_rx_ns; /* last frame of any kind from the peer */

    /* USP output: a ring of Records waiting for the writeable callback. */
    struct rbuf **outq;
    size_t out_head, out_n, out_cap;
    size_t out_bytes;
    uint32_t frag_off;  /* bytes of the head Record already sent as fragments */
    int stall_armed;    /* our write-progress timeout is set (libwebsockets' own) */
    uint64_t stall_since_ns; /* when it was last (re)armed */
    uint8_t *frag_buf;  /* LWS_PRE + fragment_size bytes, for peers that need fragments */
    int rx_paused;      /* MQTT: not reading the client until the pipe drains */

    /* USP input: the message being reassembled (NULL between messages). */
    struct rbuf *in;
    size_t in_len;

    /* MQTT over WebSocket: a socket pair to an MQTT session on an I/O worker. */
    struct ws_pipe *pipe;     /* our end of it (ws_mqtt.c), NULL once closed */
    struct evbuffer *to_ws;   /* from the MQTT session, for the WebSocket client */
    uint8_t *mqtt_buf;        /* LWS_PRE + one chunk */
    int pipe_paused;          /* not reading the pipe until to_ws drains */
};

/* ws_server.c: close S with RFC 6455 status CODE (counted and logged as an MTP error). */
void ws_session_error(struct ws_session *s, enum close_reason why, uint16_t code,
                      const char *text);
/* ws_server.c: the internal vhost the MQTT pipes are adopted into. */
struct lws_vhost *ws_server_pipe_vhost(struct ws_server *srv);

/* ws_usp.c */
void ws_usp_receive(struct ws_session *s, const uint8_t *in, size_t len);
/* One write if anything is queued. 1: wrote, 0: nothing queued, -1: the write failed. */
int ws_usp_writeable(struct ws_session *s);
int ws_usp_send_record(struct conn *c, struct rbuf *rb);
void ws_usp_free(struct ws_session *s);

/* ws_mqtt.c */
#define WS_MQTT_PIPE_PROTOCOL "usprelay-mqtt-pipe"

/* Our reason for libwebsockets' per-connection timeout: output waiting, none taken. */
#define WS_STALL_TIMEOUT ((enum pending_timeout)(PENDING_TIMEOUT_USER_REASON_BASE + 1))
/* The session was upgraded to subprotocol mqtt: connect it to an MQTT session. 0 or -1. */
int ws_mqtt_start(struct ws_session *s);
void ws_mqtt_receive(struct ws_session *s, const uint8_t *in, size_t len);
int ws_mqtt_writeable(struct ws_session *s);
/* The protocol callback of the pipe's end in the libwebsockets thread. */
int ws_mqtt_pipe_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                          void *in, size_t len);
/* The WebSocket side is gone (or going): let the MQTT session see EOF. */
void ws_mqtt_detach(struct ws_session *s);
void ws_mqtt_free(struct ws_session *s);

#endif
