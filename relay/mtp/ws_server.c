/* ws_server.c — libwebsockets context, service thread and WebSocket session life: the
 * upgrade checks (path, subprotocol, endpoint ID), the bbf-usp-protocol answer, close
 * codes, and the callback that dispatches to ws_usp.c / ws_mqtt.c. Wire rules: spec
 * notes §3 and §9 items 10–11.
 */
#include "relay/mtp/ws_server.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "relay/endpoint_id.h"
#include "relay/log.h"
#include "relay/mtp/ws_codec.h"
#include "relay/mtp/ws_session.h"
#include "relay/relay.h"
#include "relay/tls.h"
#include "relay/worker.h"

#define WS_PROTOCOL_USP "v1.usp"
#define WS_PROTOCOL_MQTT "mqtt"
/* Bytes libwebsockets reads per callback: big Records arrive in fewer pieces. */
#define WS_RX_CHUNK (64 * 1024)
/* Flush time for a session closed for its own reasons (shutdown has its own), s. */
#define WS_CLOSE_FLUSH_S 2

/* RFC 6455 §7.4.1 status codes. */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_UNACCEPTABLE 1003
#define WS_CLOSE_POLICY 1008
#define WS_CLOSE_TOO_BIG 1009
#define WS_CLOSE_INTERNAL 1011
#define WS_CLOSE_TRY_LATER 1013

struct ws_vhost {
    const struct listener_cfg *lcfg;
    struct lws_vhost *vh;
    lws_retry_bo_t ping_policy;
};

struct ws_server {
    struct relay *relay;
    struct worker *worker;
    struct lws_context *ctx;
    struct ws_vhost *vhosts; /* one per websocket listener */
    size_t n_vhosts;
    struct lws_vhost *pipe_vh; /* internal: MQTT pipes */
    pthread_t thread;
    int started;
    int stopping;
    volatile int done; /* set on the service thread only */
    lws_sorted_usec_list_t stop_deadline;
};

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len);

static const struct lws_protocols protocols_usp[] = {
    {WS_PROTOCOL_USP, ws_callback, 0, WS_RX_CHUNK, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};
static const struct lws_protocols protocols_usp_mqtt[] = {
    {WS_PROTOCOL_USP, ws_callback, 0, WS_RX_CHUNK, 0, NULL, 0},
    {WS_PROTOCOL_MQTT, ws_callback, 0, WS_RX_CHUNK, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};
static const struct lws_protocols protocols_pipe[] = {
    {WS_MQTT_PIPE_PROTOCOL, ws_mqtt_pipe_callback, 0, WS_RX_CHUNK, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

struct lws_vhost *ws_server_pipe_vhost(struct ws_server *srv)
{
    return srv->pipe_vh;
}

struct worker *ws_server_worker(struct ws_server *s)
{
    return s->worker;
}

/* ------------------------------------------------------------------ closing */

static uint16_t close_code_for(enum close_reason why)
{
    switch (why) {
    case CLOSE_BUSY: return WS_CLOSE_TRY_LATER;
    case CLOSE_SHUTDOWN: return WS_CLOSE_GOING_AWAY;
    case CLOSE_REPLACED:
    case CLOSE_DUPLICATE:
    case CLOSE_AUTH: return WS_CLOSE_POLICY;
    case CLOSE_PROTOCOL: return WS_CLOSE_UNACCEPTABLE;
    case CLOSE_TOO_LARGE: return WS_CLOSE_TOO_BIG;
    case CLOSE_NO_MEMORY: return WS_CLOSE_INTERNAL;
    default: return WS_CLOSE_NORMAL;
    }
}

static void kill_wsi(struct lws *wsi)
{
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* conn_ops.close: conn.c has unbound the routes; say goodbye the WebSocket way. */
static void ws_close(struct conn *c, enum close_reason why, const char *text, int flush)
{
    struct ws_session *s = (struct ws_session *)c;
    if (!s->wsi)
        return; /* the transport is gone; the destroy callback releases us */
    if (s->kind == WS_HTTP || !flush || why == CLOSE_HEARTBEAT_TIMEOUT) {
        kill_wsi(s->wsi);
        return;
    }
    if (!s->close_code)
        s->close_code = close_code_for(why);
    if (text && !s->close_text[0])
        snprintf(s->close_text, sizeof s->close_text, "%s", text);
    s->close_flush = 1;
    uint32_t ms = why == CLOSE_SHUTDOWN ? c->relay->cfg->shutdown_timeout_ms : WS_CLOSE_FLUSH_S * 1000u;
    /* The flush is bounded: a peer that does not read is cut when this runs out. */
    lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, (int)((ms + 999u) / 1000u) + 1);
    lws_callback_on_writable(s->wsi);
}

void ws_session_error(struct ws_session *s, enum close_reason why, uint16_t code,
                      const char *text)
{
    char d[256];
    if (why == CLOSE_PROTOCOL)
        stats_inc(conn_stats(&s->c), STAT_conn_protocol_error);
    log_info("ws_error", "%s code=%u error=\"%s\"", conn_describe(&s->c, d, sizeof d), code,
             text);
    if (!s->close_code)
        s->close_code = code;
    conn_close(&s->c, why, text);
}

static size_t ws_output_queued(const struct conn *c)
{
    const struct ws_session *s = (const struct ws_session *)c;
    if (s->kind == WS_MQTT)
        return s->to_ws ? evbuffer_get_length(s->to_ws) : 0;
    return s->out_bytes;
}

static void ws_destroy(struct conn *c)
{
    struct ws_session *s = (struct ws_session *)c;
    ws_usp_free(s);
    ws_mqtt_free(s);
    free(s->pending_eid);
    free(s->mqtt_cert_ids);
}

static const struct conn_ops ws_ops = {
    .mtp = MTP_WS,
    .name = "ws",
    .connect_type = RECORD_WS_CONNECT,
    .send_record = ws_usp_send_record,
    .destroy = ws_destroy,
    .close = ws_close,
    .output_queued = ws_output_queued,
    .pair_fallback = 1,
};

/* ------------------------------------------------------------------ adoption */

struct conn *ws_conn_new(struct worker *w, int fd, const struct listener_cfg *lcfg,
                         const char *peer)
{
    struct relay *r = worker_relay(w);
    struct ws_server *srv = r->ws;
    struct lws_vhost *vh = NULL;
    for (size_t i = 0; i < srv->n_vhosts; i++)
        if (srv->vhosts[i].lcfg == lcfg)
            vh = srv->vhosts[i].vh;
    if (!vh || srv->stopping) {
        close(fd);
        return NULL;
    }
    /* Adopted without our session first: callbacks during adoption find none and
     * leave the socket alone; a wsi that then gets no session is killed. */
    lws_adopt_desc_t d = {.vh = vh,
                          .type = LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP | LWS_ADOPT_ALLOW_SSL,
                          .fd.sockfd = fd};
    struct lws *wsi = lws_adopt_descriptor_vhost_via_info(&d);
    if (!wsi) { /* libwebsockets closed the fd */
        /* On a TLS listener that is mostly a handshake that failed at once (a ClientHello
         * already waiting, e.g. below min_version): say so like any other TLS failure. */
        if (lcfg->tls.certificate) {
            stats_inc(worker_stats(w), STAT_tls_failed);
            log_info("tls_failed", "conn=- mtp=ws listener=%s peer=%s eid=- handshake_done=0 "
                     "error=\"handshake failed while the connection was adopted\"",
                     lcfg->name, peer);
        } else {
            log_warn("adopt_failed", "listener=%s peer=%s", lcfg->name, peer);
        }
        return NULL;
    }
    struct ws_session *s =
        (struct ws_session *)conn_create_external(sizeof *s, &ws_ops, w, lcfg, peer);
    if (!s) {
        kill_wsi(wsi);
        return NULL;
    }
    s->srv = srv;
    s->wsi = wsi;
    lws_set_opaque_user_data(wsi, s);
    conn_admit(&s->c, fd); /* a refusal is the 503 answering its request */
    return &s->c;
}

/* ------------------------------------------------------------------ the upgrade */

static const char *status_phrase(unsigned status)
{
    switch (status) {
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 403: return "Forbidden";
    case 409: return "Conflict";
    case 426: return "Upgrade Required";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
    }
}

/* Answer the request with STATUS, REASON as the body, and hang up. Written by hand:
 * libwebsockets' own status answer says HTTP/1.0 at this stage of an upgrade, which
 * strict WebSocket clients (python-websockets) do not accept. Returns -1, what the HTTP
 * callbacks return to close the connection. */
static int refuse(struct ws_session *s, unsigned status, const char *reason)
{
    char d[256];
    unsigned char buf[LWS_PRE + 512];
    log_info("ws_refused", "%s status=%u reason=\"%s\"", conn_describe(&s->c, d, sizeof d),
             status, reason);
    if (status == HTTP_STATUS_BAD_REQUEST)
        stats_inc(conn_stats(&s->c), STAT_conn_protocol_error);
    int n = snprintf((char *)buf + LWS_PRE, sizeof buf - LWS_PRE,
                     "HTTP/1.1 %u %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "%sConnection: close\r\n\r\n%s\n",
                     status, status_phrase(status), strlen(reason) + 1,
                     status == 426 ? "Upgrade: websocket\r\n" : "", reason);
    if (n > 0 && (size_t)n < sizeof buf - LWS_PRE)
        lws_write(s->wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_HTTP_HEADERS);
    conn_abort(&s->c, status == HTTP_STATUS_CONFLICT              ? CLOSE_DUPLICATE
                      : status == HTTP_STATUS_FORBIDDEN           ? CLOSE_AUTH
                      : status == HTTP_STATUS_SERVICE_UNAVAILABLE ? CLOSE_BUSY
                      : status >= 500                             ? CLOSE_NO_MEMORY
                                                                  : CLOSE_PROTOCOL);
    return -1;
}

/* The controller path or plain path of the request. 1: known (ctrl set for a
 * controller path), 0: unknown, -1: none readable. */
static int match_path(struct ws_session *s, const struct ws_controller_path **ctrl)
{
    const struct ws_listener_cfg *wc = &s->c.lcfg->ws;
    char path[300];
    *ctrl = NULL;
    if (lws_hdr_total_length(s->wsi, WSI_TOKEN_GET_URI) <= 0 ||
        lws_hdr_copy(s->wsi, path, sizeof path, WSI_TOKEN_GET_URI) < 0)
        return -1;
    for (size_t i = 0; i < wc->n_controllers; i++) {
        if (strcmp(path, wc->controllers[i].path) == 0) {
            *ctrl = &wc->controllers[i];
            return 1;
        }
    }
    for (size_t i = 0; i < wc->n_paths; i++)
        if (strcmp(path, wc->paths[i]) == 0)
            return 1;
    return 0;
}

/* The eid query parameter, percent-decoded once by libwebsockets. Returns its length,
 * 0 when absent, -1 when there are several, it does not fit, or any parameter is too
 * long to look at. */
static long query_eid(struct lws *wsi, char *buf, size_t cap)
{
    char frag[4200 + 8];
    long found = 0;
    for (int i = 0;; i++) {
        int fl = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (fl <= 0)
            break;
        if ((size_t)fl >= sizeof frag)
            return -1; /* longer than any eid parameter could be: it may hide one */
        int n = lws_hdr_copy_fragment(wsi, frag, sizeof frag, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            return -1;
        if (n < 4 || memcmp(frag, "eid=", 4) != 0)
            continue;
        size_t vlen = (size_t)n - 4;
        if (found || vlen >= cap)
            return -1;
        memcpy(buf, frag + 4, vlen);
        buf[vlen] = '\0';
        found = (long)vlen;
    }
    return found;
}

/* The endpoint IDs the verified client certificate of S stands for, "a\0b\0\0" (its SAN
 * URIs, else its cn_map entry), for the MQTT session behind an MQTT-over-WebSocket one:
 * that session cannot see the certificate. NULL (logged, counted) when there is none. */
static char *cert_id_list(struct ws_session *s)
{
    enum { MAX_IDS = 8 };
    const struct relay_config *cfg = s->c.relay->cfg;
    char (*ids)[TLS_EID_MAX + 1] = malloc(MAX_IDS * sizeof *ids);
    char *list = NULL;
    int n = ids ? tls_peer_endpoint_ids(s->c.ssl, ids, MAX_IDS, cfg->max_endpoint_id_length)
                : -1;
    const char *mapped = n == 0 ? tls_cn_mapped_id(conn_tls_cfg(&s->c), s->c.ssl) : NULL;
    size_t total = 1;
    for (int i = 0; i < n; i++)
        total += strlen(ids[i]) + 1;
    if (mapped)
        total += strlen(mapped) + 1;
    if ((n > 0 || mapped) && (list = malloc(total))) {
        char *p = list;
        for (int i = 0; i < n; i++)
            p += strlen(strcpy(p, ids[i])) + 1;
        if (mapped)
            p += strlen(strcpy(p, mapped)) + 1;
        *p = '\0';
    }
    free(ids);
    if (!list) {
        char out[TLS_EID_MAX + 1];
        (void)conn_identity(&s->c, NULL, 0, out, sizeof out); /* logs and counts why */
    }
    return list;
}

/* HTTP_CONFIRM_UPGRADE: everything about the request is checked here, so a refusal
 * is a proper HTTP answer rather than a dropped connection. */
static int confirm_upgrade(struct ws_session *s)
{
    static const char *const names[] = {WS_PROTOCOL_USP, WS_PROTOCOL_MQTT};
    const struct listener_cfg *lcfg = s->c.lcfg;
    const struct relay_config *cfg = s->c.relay->cfg;
    struct lws *wsi = s->wsi;
    char hdr[1024], eid[4200 + 8];
    size_t eid_len = 0;

    int pm = match_path(s, &s->ctrl);
    if (pm <= 0)
        return refuse(s, HTTP_STATUS_NOT_FOUND, "no USP endpoint at this path");

    int hl = lws_hdr_copy(wsi, hdr, sizeof hdr, WSI_TOKEN_PROTOCOL);
    size_t n_names = lcfg->ws.mqtt ? 2 : 1;
    int pick = hl > 0 ? ws_protocol_pick(hdr, (size_t)hl, names, n_names) : -1;
    if (pick < 0)
        return refuse(s, HTTP_STATUS_BAD_REQUEST,
                      lcfg->ws.mqtt ? "subprotocol v1.usp or mqtt required"
                                    : "subprotocol v1.usp required");
    if (pick == 1) {
        s->kind = WS_MQTT; /* the MQTT CONNECT names the endpoint */
        s->c.ssl = lws_get_ssl(wsi);
        if (s->c.ssl && SSL_get0_peer_certificate(s->c.ssl) && !(s->mqtt_cert_ids =
                                                                     cert_id_list(s)))
            return refuse(s, HTTP_STATUS_FORBIDDEN, "the client certificate names no endpoint");
        return 0;
    }
    s->kind = WS_USP;

    /* The extension (deprecated R-WS.10a) may name the endpoint; the query wins. */
    int has_ext_eid = 0;
    size_t ext_len = 0;
    char ext_eid[4200 + 8];
    hl = lws_hdr_total_length(wsi, WSI_TOKEN_EXTENSIONS) > 0
             ? lws_hdr_copy(wsi, hdr, sizeof hdr, WSI_TOKEN_EXTENSIONS)
             : 0;
    if (hl < 0)
        return refuse(s, HTTP_STATUS_BAD_REQUEST, "Sec-WebSocket-Extensions too long");
    if (hl > 0) {
        int e = ws_ext_bbf_eid(hdr, (size_t)hl, ext_eid, sizeof ext_eid, &ext_len, &has_ext_eid);
        if (e < 0)
            return refuse(s, HTTP_STATUS_BAD_REQUEST, "malformed Sec-WebSocket-Extensions");
        s->offered_ext = e == 1;
    }
    long ql = query_eid(wsi, eid, sizeof eid);
    if (ql < 0)
        return refuse(s, HTTP_STATUS_BAD_REQUEST, "more than one eid, or eid too long");
    const char *declared = eid;
    if (ql > 0) {
        eid_len = (size_t)ql;
    } else if (has_ext_eid) {
        memcpy(eid, ext_eid, ext_len + 1);
        eid_len = ext_len;
    } else {
        declared = NULL;
    }
    s->c.ssl = lws_get_ssl(wsi);
    if (s->c.ssl && (declared || SSL_get0_peer_certificate(s->c.ssl))) {
        /* With TLS the client certificate names the endpoint, or must vouch for the one
         * the request names. */
        char cert_id[TLS_EID_MAX + 1];
        if (conn_identity(&s->c, declared, eid_len, cert_id, sizeof cert_id) != 0)
            return refuse(s, HTTP_STATUS_FORBIDDEN, "endpoint ID is not the client certificate's");
        eid_len = strlen(cert_id);
        memcpy(eid, cert_id, eid_len + 1);
        declared = eid;
    }
    if (!declared)
        return refuse(s, HTTP_STATUS_BAD_REQUEST, "endpoint ID missing (eid query parameter)");
    int ec = eid_check(eid, eid_len, cfg->max_endpoint_id_length);
    if (ec != 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "invalid endpoint ID: %s", eid_err_name(ec));
        return refuse(s, HTTP_STATUS_BAD_REQUEST, msg);
    }
    /* Bound when the 101 goes out (add_headers): libwebsockets still checks a few things
     * after this callback, and a request that fails there must not have taken the ID
     * from a live session. Under refuse-new the answer is known now. */
    const struct span peer = span_from_str(s->ctrl ? s->ctrl->endpoint_id : NULL,
                                           s->ctrl ? strlen(s->ctrl->endpoint_id) : 0);
    struct route old;
    if (cfg->duplicate_id_policy == DUP_REFUSE_NEW &&
        router_get(s->c.relay->router, ROUTER_IDS, span_from_str(eid, eid_len), peer, &old) == 0) {
        stats_inc(conn_stats(&s->c), STAT_conn_refused_duplicate);
        return refuse(s, HTTP_STATUS_CONFLICT, "endpoint ID already connected");
    }
    s->pending_eid = strndup(eid, eid_len);
    if (!s->pending_eid)
        return refuse(s, HTTP_STATUS_INTERNAL_SERVER_ERROR, "out of memory");
    return 0;
}

/* The session takes its endpoint ID (and pair). 0, or the conn_bind_endpoint error
 * after aborting the connection. */
static int bind_endpoint(struct ws_session *s)
{
    const char *peer = s->ctrl ? s->ctrl->endpoint_id : NULL;
    int rc = conn_bind_endpoint(&s->c, s->pending_eid, strlen(s->pending_eid), peer,
                                peer ? strlen(peer) : 0);
    free(s->pending_eid);
    s->pending_eid = NULL;
    if (rc != 0) /* conn_bind_endpoint logged why; the upgrade is not answered */
        conn_abort(&s->c, rc == CONN_BIND_REFUSED ? CLOSE_DUPLICATE : CLOSE_NO_MEMORY);
    return rc;
}

/* ADD_HEADERS, as the 101 answer is written: libwebsockets' own checks have passed,
 * so the session takes its endpoint ID now — before the client can learn it is
 * connected. Then R-WS.11a: the extension, only when offered and the peer is known. */
static int add_headers(struct ws_session *s, struct lws_process_html_args *args)
{
    if (s->kind == WS_USP && s->pending_eid && bind_endpoint(s) != 0)
        return -1; /* no 101: the upgrade fails */
    if (s->kind != WS_USP || !s->offered_ext || !s->ctrl)
        return 0;
    char value[4200 * 2 + 64];
    const char *id = s->ctrl->endpoint_id;
    long vl = ws_ext_bbf_format(id, strlen(id), value, sizeof value);
    if (vl < 0)
        return 0; /* omitting it is legal (R-WS.11b) */
    unsigned char *p = (unsigned char *)args->p;
    if (lws_add_http_header_by_name(s->wsi, (const unsigned char *)"Sec-WebSocket-Extensions:",
                                    (unsigned char *)value, (int)vl, &p,
                                    (unsigned char *)args->p + args->max_len))
        return 0;
    args->max_len -= (int)(p - (unsigned char *)args->p);
    args->p = (char *)p;
    return 0;
}

static int established(struct ws_session *s)
{
    const char *name = lws_get_protocol(s->wsi)->name;
    /* libwebsockets picked the subprotocol the same way confirm_upgrade did. */
    if ((s->kind == WS_USP) != (strcmp(name, WS_PROTOCOL_USP) == 0))
        return -1;
    conn_handshake_done(&s->c);
    s->last_rx_ns = rbuf_now_ns();
    if (s->kind == WS_MQTT) {
        struct relay *r = s->c.relay;
        if (atomic_load(&r->live_conns) >= r->cfg->max_connections) {
            /* The MQTT session would be one connection more than allowed. */
            stats_inc(conn_stats(&s->c), STAT_conn_rejected_limit);
            ws_session_error(s, CLOSE_BUSY, WS_CLOSE_TRY_LATER, "max_connections reached");
            return 0;
        }
        if (ws_mqtt_start(s) != 0) {
            ws_session_error(s, CLOSE_NO_MEMORY, WS_CLOSE_INTERNAL, "cannot start the MQTT session");
            return 0;
        }
    }
    char d[256];
    log_debug("ws_established", "%s subprotocol=%s controller=%s",
              conn_describe(&s->c, d, sizeof d), name, s->ctrl ? s->ctrl->endpoint_id : "-");
    return 0;
}

static int writeable(struct ws_session *s)
{
    int rc = s->kind == WS_MQTT ? ws_mqtt_writeable(s) : ws_usp_writeable(s);
    if (rc < 0)
        return -1;
    if ((s->c.flags & CONN_BACKLOG) &&
        s->out_bytes <= s->c.lcfg->limits.max_output_queue / 2)
        worker_drain_cache(&s->c); /* room again: cached Records go next */
    if (rc > 0)
        return 0; /* one write per callback; the writer asked for the next one */
    if (!(s->c.flags & CONN_CLOSING))
        return 0;
    if (s->close_code)
        lws_close_reason(s->wsi, (enum lws_close_status)s->close_code,
                         (unsigned char *)s->close_text, strlen(s->close_text));
    return -1;
}

/* The wsi is being freed: the session goes with it. */
static void wsi_gone(struct ws_session *s)
{
    s->wsi = NULL;
    ws_mqtt_detach(s);
    if (!s->saw_request && s->c.lcfg->tls.certificate && !(s->c.flags & CONN_CLOSING)) {
        /* libwebsockets does not say why a TLS handshake failed; that it never got to a
         * request is what we know. */
        char d[256];
        stats_inc(conn_stats(&s->c), STAT_tls_failed);
        log_info("tls_failed", "%s handshake_done=0 error=\"no request after the TLS handshake "
                 "began (refused certificate, or the peer left)\"", conn_describe(&s->c, d, sizeof d));
    }
    if (!(s->c.flags & CONN_CLOSING)) {
        /* libwebsockets hangs up on a peer silent past the Ping and its timeout without
         * telling us why: the silence says it. */
        const struct ws_listener_cfg *wc = &s->c.lcfg->ws;
        uint64_t silent_ns = rbuf_now_ns() - s->last_rx_ns;
        enum close_reason why = s->peer_closed ? CLOSE_GOODBYE : CLOSE_PEER;
        uint64_t stall_ns = (uint64_t)s->c.lcfg->limits.stall_timeout_ms * 1000000ull;
        if (why == CLOSE_PEER && s->stall_armed && s->out_n &&
            rbuf_now_ns() - s->stall_since_ns + 500000000ull >= stall_ns) {
            /* Our write-progress timeout: the peer stopped reading. */
            why = CLOSE_STALLED;
            stats_inc(conn_stats(&s->c), STAT_conn_stalled);
        } else if (why == CLOSE_PEER && (s->c.flags & CONN_IDENTIFIED) && wc->ping_interval_s &&
            silent_ns + 500000000ull >= (uint64_t)(wc->ping_interval_s + wc->ping_timeout_s) *
                                             1000000000ull) {
            why = CLOSE_HEARTBEAT_TIMEOUT;
            stats_inc(conn_stats(&s->c), STAT_conn_heartbeat_timeout);
        }
        conn_abort(&s->c, why);
    }
    struct ws_server *srv = s->srv;
    conn_release(&s->c);
    if (srv->stopping && worker_conn_count(srv->worker) == 0) {
        srv->done = 1;
        lws_cancel_service(srv->ctx); /* out of the poll() that follows timers */
    }
}

/* A TLS vhost's SSL_CTX gets the listener's settings, then hands every handshake to
 * the listener's struct tls_server in force (SNI, and the material SIGHUP reloads),
 * exactly like the other MTPs' TLS connections. */
static int configure_tls(struct lws *wsi, void *ssl_ctx, void *vhost)
{
    const struct listener_cfg *l = lws_get_vhost_user(vhost);
    struct ws_server *srv = lws_context_user(lws_get_context(wsi));
    char err[512];
    if (!l || !srv || tls_server_configure_ctx(&l->tls, ssl_ctx, err, sizeof err) != 0) {
        log_error("listener_failed", "listener=%s type=websocket error=\"%s\"",
                  l ? l->name : "?", l && srv ? err : "no listener");
        return 1;
    }
    struct relay *r = srv->relay;
    if (r->tls)
        tls_server_follow(ssl_ctx, &r->tls[l - r->cfg->listeners]);
    return 0;
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    (void)user;
    struct ws_session *s = lws_get_opaque_user_data(wsi);

    if (reason == LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS)
        return configure_tls(wsi, user, in);
    if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED) {
        struct ws_server *srv = lws_context_user(lws_get_context(wsi));
        if (srv && !srv->done)
            worker_drain_mailbox(srv->worker);
        return 0;
    }
    if (!s || s->wsi != wsi)
        return reason == LWS_CALLBACK_HTTP || reason == LWS_CALLBACK_HTTP_CONFIRM_UPGRADE ? -1 : 0;

    if (reason == LWS_CALLBACK_HTTP || reason == LWS_CALLBACK_HTTP_CONFIRM_UPGRADE) {
        s->saw_request = 1; /* past TLS, if any */
        if (s->c.refuse)
            return refuse(s, HTTP_STATUS_SERVICE_UNAVAILABLE, "server busy");
    }
    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        if (strcmp((const char *)in, "websocket") != 0)
            return refuse(s, HTTP_STATUS_BAD_REQUEST, "only WebSocket upgrades are served");
        return confirm_upgrade(s);
    case LWS_CALLBACK_HTTP: {
        const struct ws_controller_path *ctrl;
        if (match_path(s, &ctrl) > 0)
            return refuse(s, 426, "WebSocket upgrade required (subprotocol v1.usp)");
        return refuse(s, HTTP_STATUS_NOT_FOUND, "no USP endpoint at this path");
    }
    case LWS_CALLBACK_ADD_HEADERS:
        return add_headers(s, in);
    case LWS_CALLBACK_ESTABLISHED:
        return established(s);
    case LWS_CALLBACK_RECEIVE_PONG:
        s->last_rx_ns = rbuf_now_ns();
        return 0;
    case LWS_CALLBACK_RECEIVE:
        s->last_rx_ns = rbuf_now_ns();
        if (s->c.flags & CONN_CLOSING)
            return 0;
        if (s->kind == WS_MQTT)
            ws_mqtt_receive(s, in, len);
        else
            ws_usp_receive(s, in, len);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return writeable(s);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        s->peer_closed = 1;
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        wsi_gone(s);
        return 0;
    default:
        return 0;
    }
}

/* ------------------------------------------------------------------ the thread */

static void stop_deadline_cb(lws_sorted_usec_list_t *sul)
{
    struct ws_server *srv = lws_container_of(sul, struct ws_server, stop_deadline);
    srv->done = 1; /* sessions still flushing are cut when the context goes */
    lws_cancel_service(srv->ctx);
}

/* The worker's stop message, on the service thread. */
static void begin_stop(void *arg)
{
    struct ws_server *srv = arg;
    if (srv->stopping)
        return;
    srv->stopping = 1;
    worker_close_all(srv->worker);
    lws_sul_schedule(srv->ctx, 0, &srv->stop_deadline, stop_deadline_cb,
                     (lws_usec_t)srv->relay->cfg->shutdown_timeout_ms * LWS_US_PER_MS);
    if (worker_conn_count(srv->worker) == 0)
        srv->done = 1;
}

static void wake(void *arg)
{
    struct ws_server *srv = arg;
    lws_cancel_service(srv->ctx);
}

static void *service_main(void *arg)
{
    struct ws_server *srv = arg;
    while (!srv->done)
        if (lws_service(srv->ctx, 0) < 0)
            break;
    return NULL;
}

static void lws_log_line(int level, const char *line)
{
    char msg[512];
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    log_escape(msg, sizeof msg, line, n, 400);
    if (level & LLL_ERR)
        log_warn("lws", "msg=\"%s\"", msg);
    else
        log_debug("lws", "msg=\"%s\"", msg);
}

static unsigned secs_up(uint32_t ms)
{
    unsigned s = (ms + 999u) / 1000u;
    return s ? s : 1;
}

struct ws_server *ws_server_new(struct relay *r, unsigned worker_index)
{
    const struct relay_config *cfg = r->cfg;
    struct ws_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        goto fail;
    srv->relay = r;
    for (size_t i = 0; i < cfg->n_listeners; i++)
        srv->n_vhosts += cfg->listeners[i].type == LISTENER_WEBSOCKET;
    srv->vhosts = calloc(srv->n_vhosts ? srv->n_vhosts : 1, sizeof *srv->vhosts);
    struct worker_hooks hooks = {.wake = wake, .begin_stop = begin_stop, .arg = srv};
    srv->worker = worker_new_external(r, worker_index, &hooks);
    if (!srv->vhosts || !srv->worker)
        goto fail;

    lws_set_log_level(LLL_ERR | (log_enabled(LOG_DEBUG) ? LLL_WARN : 0), lws_log_line);
    unsigned hs_max = 1;
    for (size_t i = 0; i < cfg->n_listeners; i++)
        if (cfg->listeners[i].type == LISTENER_WEBSOCKET &&
            secs_up(cfg->listeners[i].limits.handshake_timeout_ms) > hs_max)
            hs_max = secs_up(cfg->listeners[i].limits.handshake_timeout_ms);

    struct lws_context_creation_info ci;
    memset(&ci, 0, sizeof ci);
    ci.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    ci.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    ci.uid = -1;
    ci.gid = -1;
    ci.user = srv;
    ci.count_threads = 1;
    ci.timeout_secs = hs_max;
    ci.pt_serv_buf_size = WS_RX_CHUNK;
    /* Room for a request whose eid is the longest allowed, percent-encoded. */
    size_t hdr = 3u * cfg->max_endpoint_id_length + 2048u;
    ci.max_http_header_data = (unsigned short)(hdr < 4096u ? 4096u : hdr > 65535u ? 65535u : hdr);
    /* A header table per connection still in its HTTP request (allocated on demand): as
     * many as connections may exist, so slow requests cannot queue everybody else's. */
    ci.max_http_header_pool =
        (unsigned short)(cfg->max_connections < 65535u ? cfg->max_connections : 65535u);
    srv->ctx = lws_create_context(&ci);
    if (!srv->ctx) {
        log_error("startup_failed", "reason=websocket_context");
        goto fail;
    }

    size_t k = 0;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct listener_cfg *l = &cfg->listeners[i];
        if (l->type != LISTENER_WEBSOCKET)
            continue;
        struct ws_vhost *v = &srv->vhosts[k++];
        v->lcfg = l;
        if (l->ws.ping_interval_s) {
            v->ping_policy.secs_since_valid_ping = (uint16_t)l->ws.ping_interval_s;
            v->ping_policy.secs_since_valid_hangup =
                (uint16_t)(l->ws.ping_interval_s + l->ws.ping_timeout_s);
        }
        struct lws_context_creation_info vi;
        memset(&vi, 0, sizeof vi);
        vi.port = CONTEXT_PORT_NO_LISTEN_SERVER;
        vi.vhost_name = l->name;
        vi.protocols = l->ws.mqtt ? protocols_usp_mqtt : protocols_usp;
        vi.timeout_secs_ah_idle = secs_up(l->limits.handshake_timeout_ms);
        vi.keepalive_timeout = (int)secs_up(l->limits.handshake_timeout_ms);
        vi.retry_and_idle_policy = &v->ping_policy;
        vi.user = (void *)l;
        if (l->tls.certificate) {
            /* libwebsockets loads the certificate; the rest of the listener's TLS settings
             * are applied in LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS. */
            vi.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
            vi.ssl_cert_filepath = l->tls.certificate;
            vi.ssl_private_key_filepath = l->tls.key;
        }
        v->vh = lws_create_vhost(srv->ctx, &vi);
        if (!v->vh) {
            log_error("listener_failed", "listener=%s type=websocket error=\"vhost not created\"",
                      l->name);
            goto fail;
        }
    }
    struct lws_context_creation_info pi;
    memset(&pi, 0, sizeof pi);
    pi.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    pi.vhost_name = "usprelay-internal";
    pi.protocols = protocols_pipe;
    srv->pipe_vh = lws_create_vhost(srv->ctx, &pi);
    if (!srv->pipe_vh) {
        log_error("startup_failed", "reason=websocket_internal_vhost");
        goto fail;
    }
    return srv;
fail:
    if (!srv)
        log_error("startup_failed", "reason=no_memory");
    else
        worker_free(srv->worker);
    ws_server_free(srv);
    return NULL;
}

int ws_server_start(struct ws_server *s)
{
    if (pthread_create(&s->thread, NULL, service_main, s) != 0)
        return -1;
    s->started = 1;
    return 0;
}

void ws_server_join(struct ws_server *s)
{
    if (s && s->started) {
        pthread_join(s->thread, NULL);
        s->started = 0;
    }
}

void ws_server_free(struct ws_server *s)
{
    if (!s)
        return;
    s->done = 1; /* no mailbox draining while the context goes */
    s->stopping = 1;
    if (s->ctx)
        lws_context_destroy(s->ctx); /* destroys every wsi left: sessions are released */
    free(s->vhosts);
    free(s);
}
