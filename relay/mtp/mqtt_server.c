/* mqtt_server.c — one MQTT 3.1.1 / 5.0 session per client: CONNECT and identity,
 * keepalive, the read loop and dispatch, the goodbye, and the reason codes of every v5
 * refusal. Subscriptions with the USP ACL are in mqtt_subs.c; PUBLISH in (QoS 0, 1, and 2
 * for 3.1.1) and out (QoS 0/1 within the client's Receive Maximum) in mqtt_publish.c;
 * the state they share is struct mqtt_conn (mqtt_session.h). Framing is done by
 * mqtt_codec; these files own the state. Wire rules: spec notes §5 and §9 items 19–22.
 *
 * Sessions are not kept across connections (CONNACK session present is always 0): a
 * USP endpoint resubscribes on connect, and Records for an absent endpoint belong in
 * the relay's cache, not in an MQTT session.
 */
#include "relay/mtp/mqtt_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "relay/auth_limit.h"
#include "relay/endpoint_id.h"
#include "relay/log.h"
#include "relay/mtp/mqtt_codec.h"
#include "relay/mtp/mqtt_session.h"
#include "relay/passwd.h"
#include "relay/relay.h"
#include "relay/tls.h"
#include "relay/worker.h"

/* v3.1.1 CONNACK return codes. */
enum { V3_UNACCEPTABLE_VERSION = 1, V3_ID_REJECTED = 2, V3_BAD_USER_PASS = 4,
       V3_NOT_AUTHORIZED = 5 };

#define MQTT_PACKET_SLACK 65536u  /* topic and properties around a Record */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

long mqtt_topic_for(const char *tmpl, const char *eid, size_t len, char *buf, size_t cap)
{
    const char *mark = strstr(tmpl, "{eid}");
    if (!mark)
        return -1;
    size_t pre = (size_t)(mark - tmpl), post = strlen(mark + 5);
    if (pre + len + post + 1 > cap)
        return -1;
    memcpy(buf, tmpl, pre);
    memcpy(buf + pre, eid, len);
    memcpy(buf + pre + len, mark + 5, post + 1);
    return (long)(pre + len + post);
}

static uint32_t server_max_packet(const struct conn *c)
{
    return c->lcfg->limits.max_record_size + MQTT_PACKET_SLACK;
}

/* ------------------------------------------------------------------ output */

void mqtt_session_send(struct conn *c, const uint8_t *p, long n)
{
    if (n <= 0 || evbuffer_add(bufferevent_get_output(c->bev), p, (size_t)n) != 0)
        conn_fail(c);
}

static void mqtt_goodbye(struct conn *c, enum close_reason why, const char *text)
{
    struct mqtt_conn *m = (struct mqtt_conn *)c;
    uint8_t buf[512];
    (void)text;
    if (why == CLOSE_PEER || why == CLOSE_IO_ERROR || why == CLOSE_GOODBYE)
        return;
    if (!m->connected) {
        if (m->connack_refusal) {
            struct mqtt_props_out po;
            memset(&po, 0, sizeof po);
            if (text && m->level == 5)
                po.reason_string = mqtt_session_span(text);
            mqtt_session_send(c, buf,
                              mqtt_encode_connack(buf, sizeof buf, m->level == 5 ? 5 : 4, 0,
                                                  (uint8_t)(m->connack_refusal - 1), &po));
        }
        return;
    }
    if (m->level != 5)
        return; /* 3.1.1 has no server DISCONNECT: closing is the message */
    uint8_t reason = m->disconnect_reason;
    if (!reason) {
        switch (why) {
        case CLOSE_SHUTDOWN: reason = RC_SHUTTING_DOWN; break;
        case CLOSE_REPLACED: reason = RC_SESSION_TAKEN_OVER; break;
        case CLOSE_HEARTBEAT_TIMEOUT: reason = RC_KEEP_ALIVE_TIMEOUT; break;
        case CLOSE_DUPLICATE: reason = RC_SESSION_TAKEN_OVER; break;
        case CLOSE_AUTH: reason = RC_NOT_AUTHORIZED; break;
        default: reason = RC_PROTOCOL_ERROR; break;
        }
    }
    mqtt_session_send(c, buf,
                      mqtt_encode_disconnect(buf, sizeof buf, 5, reason, mqtt_session_span(text)));
}

/* Close with a v5 DISCONNECT REASON (or CONNACK refusal before CONNACK) and TEXT. */
void mqtt_session_error(struct mqtt_conn *m, enum close_reason why, uint8_t reason,
                        const char *text)
{
    struct conn *c = &m->base;
    char d[256];
    m->disconnect_reason = reason;
    if (why == CLOSE_PROTOCOL)
        stats_inc(conn_stats(c), STAT_conn_protocol_error);
    log_info("mqtt_error", "%s reason=0x%02x error=\"%s\"", conn_describe(c, d, sizeof d), reason,
             text);
    conn_close(c, why, text);
}

static void refuse_connect(struct mqtt_conn *m, enum close_reason why, uint8_t v5_code,
                           uint8_t v3_code, const char *text)
{
    m->connack_refusal = (m->level == 5 ? v5_code : v3_code) + 1;
    if (why == CLOSE_AUTH)
        stats_inc(conn_stats(&m->base), STAT_conn_auth_failed);
    mqtt_session_error(m, why, 0, text);
}

static long mqtt_alias_address(struct conn *c, const char *eid, size_t len, char *buf, size_t cap)
{
    return mqtt_topic_for(c->lcfg->mqtt.subscribe_topic_template, eid, len, buf, cap);
}

static uint32_t mqtt_connect_version(struct conn *c)
{
    return ((struct mqtt_conn *)c)->level == 5 ? 1u : 0u; /* MQTTConnectRecord V5 / V3_1_1 */
}

/* ------------------------------------------------------------------ keepalive */

static void ka_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct mqtt_conn *m = arg;
    struct conn *c = &m->base;
    /* MQTT: a server drops a client silent for 1.5 x Keep Alive. */
    if (!(c->flags & CONN_CLOSING) && now_ms() - m->last_rx_ms > (uint64_t)m->keep_alive * 1500u) {
        stats_inc(conn_stats(c), STAT_conn_heartbeat_timeout);
        mqtt_session_error(m, CLOSE_HEARTBEAT_TIMEOUT, RC_KEEP_ALIVE_TIMEOUT, "keep alive timeout");
    }
}

static int start_keepalive(struct mqtt_conn *m)
{
    if (!m->keep_alive)
        return 0;
    /* Checked every half period: expiry is noticed between 1.5 and 2 x Keep Alive. */
    uint32_t ms = (uint32_t)m->keep_alive * 500u;
    struct timeval tv = {(time_t)(ms / 1000u), (suseconds_t)(ms % 1000u) * 1000};
    m->ka_timer = event_new(worker_base(m->base.w), -1, EV_PERSIST, ka_cb, m);
    return m->ka_timer && event_add(m->ka_timer, &tv) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ identity */

/* Bind EID to this connection; subscriptions taken before it was known are checked
 * against the ACL now. 0, or -1 after closing the connection. */
int mqtt_session_bind_identity(struct mqtt_conn *m, const char *eid, size_t len)
{
    struct conn *c = &m->base;
    int rc = conn_bind_endpoint(c, eid, len, NULL, 0);
    if (rc != 0) {
        if (m->connected)
            mqtt_session_error(m, rc == CONN_BIND_REFUSED ? CLOSE_DUPLICATE : CLOSE_NO_MEMORY,
                               RC_SESSION_TAKEN_OVER, "endpoint ID is already connected");
        else
            refuse_connect(m, rc == CONN_BIND_REFUSED ? CLOSE_DUPLICATE : CLOSE_NO_MEMORY,
                           RC_CLIENT_ID_INVALID, V3_ID_REJECTED, "endpoint ID is already connected");
        return -1;
    }
    char buf[MQTT_TOPIC_MAX];
    long n = mqtt_topic_for(c->lcfg->mqtt.subscribe_topic_template, eid, len, buf, sizeof buf);
    m->own_topic = n < 0 ? NULL : strndup(buf, (size_t)n);
    mqtt_subs_recheck(m);
    return 0;
}

/* ------------------------------------------------------------------ CONNECT */

/* S equals LIT, in time that depends on the lengths only. */
static int span_consteq(struct mqtt_span s, const char *lit)
{
    size_t n = strlen(lit);
    unsigned char diff = (unsigned char)(s.len != n);
    for (size_t i = 0; i < s.len && i < n; i++)
        diff |= (unsigned char)(s.ptr[i] ^ (unsigned char)lit[i]);
    return diff == 0;
}

static int creds_ok(const struct mqtt_conn *m, const struct mqtt_connect *ck)
{
    const struct listener_cfg *l = m->base.lcfg;
    if (!ck->has_username || !ck->has_password)
        return 0; /* nothing to check: no PBKDF2 work spent */
    const struct passwd_db *db = conn_passwd(&m->base);
    if (db)
        return passwd_check(db, (const char *)ck->username.ptr, ck->username.len,
                            (const char *)ck->password.ptr, ck->password.len);
    /* Both compared every time: no early exit telling which one was wrong. */
    int ok = span_consteq(ck->username, l->mqtt.username);
    ok &= span_consteq(ck->password, l->mqtt.password);
    return ok;
}

/* Check the credentials of CK unless the peer is blocked for failing too often.
 * 1: accepted; 0: refused with CONNACK 0x86 / 0x04 (bad credentials) or 0x8A Banned /
 * 0x05 Not authorized (blocked), and the connection is closing. */
static int authenticate(struct mqtt_conn *m, const struct mqtt_connect *ck)
{
    struct conn *c = &m->base;
    struct auth_limit *al = c->relay->auth_limit;
    uint64_t now = now_ms();
    int blocked = auth_limit_blocked(al, c->peer, now);
    if (!blocked && creds_ok(m, ck)) {
        return 1; /* failures stay counted: see auth_limit.h */
    }
    unsigned n = auth_limit_failed(al, c->peer, now);
    int starts_block = !blocked && auth_limit_blocked(al, c->peer, now);
    char d[256], user[96];
    log_info("auth_failed", "%s user=%s reason=%s failures=%u%s", conn_describe(c, d, sizeof d),
             ck->has_username
                 ? log_escape(user, sizeof user, ck->username.ptr, ck->username.len, 64)
                 : "-",
             blocked ? "blocked" : "bad_credentials", n,
             starts_block ? " action=block" : "");
    stats_inc(conn_stats(c), STAT_conn_auth_failed);
    if (blocked)
        m->connack_refusal = (m->level == 5 ? MQTT_RC_BANNED : V3_NOT_AUTHORIZED) + 1;
    else
        m->connack_refusal = (m->level == 5 ? RC_BAD_USER_PASS : V3_BAD_USER_PASS) + 1;
    conn_close(c, CLOSE_AUTH,
               blocked ? "too many failed logins from this address: try again later"
                       : "bad user name or password");
    return 0;
}

static void on_connect(struct mqtt_conn *m, const uint8_t *body, size_t len)
{
    struct conn *c = &m->base;
    const struct relay_config *cfg = c->relay->cfg;
    struct mqtt_connect ck;
    int rc = mqtt_decode_connect(body, len, &ck);
    m->level = ck.level == 5 ? 5 : 4;
    if (rc == MQTT_ERR_PROTOCOL_LEVEL) {
        m->level = ck.level >= 5 ? 5 : 4;
        refuse_connect(m, CLOSE_PROTOCOL, RC_UNSUPPORTED_VERSION, V3_UNACCEPTABLE_VERSION,
                       "unsupported protocol level");
        return;
    }
    if (rc < 0) {
        mqtt_session_error(m, CLOSE_PROTOCOL, RC_MALFORMED, mqtt_err_name(rc));
        return;
    }
    if (c->refuse) { /* a connection limit refused it at adoption; no login work spent */
        refuse_connect(m, CLOSE_BUSY,
                       c->refuse == CONN_REFUSE_SOURCE ? MQTT_RC_QUOTA_EXCEEDED
                                                       : MQTT_RC_SERVER_BUSY,
                       MQTT_RC3_SERVER_UNAVAILABLE, "server busy");
        return;
    }
    if ((c->lcfg->mqtt.username || c->lcfg->passwd) && !authenticate(m, &ck))
        return;
    if (m->level == 5 && (ck.props.present & (1u << MQTT_P_AUTH_METHOD))) {
        refuse_connect(m, CLOSE_AUTH, RC_BAD_AUTH_METHOD, 0, "enhanced authentication is not supported");
        return;
    }
    if (ck.will) {
        if (m->level == 5) {
            /* MQTT-3.2.2-12/-13: a will beyond Maximum QoS or Retain Available has its
             * own codes. */
            refuse_connect(m, CLOSE_PROTOCOL,
                           ck.will_retain    ? RC_RETAIN_NOT_SUPPORTED
                           : ck.will_qos > 1 ? RC_QOS_NOT_SUPPORTED
                                             : RC_IMPL_SPECIFIC,
                           0, "will messages are not supported");
            return;
        }
        stats_inc(conn_stats(c), STAT_mqtt_will_ignored);
    }
    /* Client identifier: empty means "assign one" (v5), or a clean 3.1.1 session. */
    char assigned[48];
    int assign = ck.client_id.len == 0;
    if (assign && m->level == 4 && !ck.clean_start) {
        refuse_connect(m, CLOSE_PROTOCOL, 0, V3_ID_REJECTED,
                       "empty client id requires a clean session");
        return;
    }
    if (assign) {
        snprintf(assigned, sizeof assigned, "usprelay-%llu", (unsigned long long)c->id);
        m->client_id = strdup(assigned);
    } else {
        m->client_id = strndup((const char *)ck.client_id.ptr, ck.client_id.len);
    }
    if (!m->client_id) {
        mqtt_session_error(m, CLOSE_NO_MEMORY, RC_UNSPECIFIED, "out of memory");
        return;
    }
    /* A second connection with the same client id takes over the first (MQTT) — once
     * this CONNECT has succeeded, not before: a refused one must not cost the other its
     * session. Until then, note whom it would replace: that session's endpoint ID (if it
     * is this one's too) passes over whatever the duplicate policy. */
    static const struct span none = {NULL, 0};
    struct span cid = span_from_str(m->client_id, strlen(m->client_id));
    struct route me = {worker_index(c->w), c->id}, old;
    if (router_get(c->relay->router, ROUTER_CLIENT_IDS, cid, none, &old) == 0)
        c->takeover_of = old.conn_id;

    /* The endpoint ID: v5 user property, else a client id that is an endpoint ID, else
     * (3.1.1) the from_id of the first Record. */
    const char *eid = NULL;
    size_t eid_len = 0;
    const struct mqtt_user_prop *up = m->level == 5 ? mqtt_user_prop_get(&ck.props, "usp-endpoint-id") : NULL;
    if (up) {
        if (eid_check((const char *)up->value.ptr, up->value.len, cfg->max_endpoint_id_length) != EID_OK) {
            refuse_connect(m, CLOSE_PROTOCOL, RC_CLIENT_ID_INVALID, 0, "invalid usp-endpoint-id");
            return;
        }
        eid = (const char *)up->value.ptr;
        eid_len = up->value.len;
    } else if (!assign && eid_check(m->client_id, strlen(m->client_id), cfg->max_endpoint_id_length) == EID_OK) {
        eid = m->client_id;
        eid_len = strlen(m->client_id);
    }
    char cert_id[TLS_EID_MAX + 1];
    if (c->cert_ids || (c->ssl && (eid || SSL_get0_peer_certificate(c->ssl)))) {
        /* With TLS the client certificate names the endpoint, or must vouch for the one
         * CONNECT names. Without a certificate and without an ID, the first Record's
         * from_id still names it (3.1.1), as on a plain listener. */
        if (conn_identity(c, eid, eid_len, cert_id, sizeof cert_id) != 0) {
            refuse_connect(m, CLOSE_AUTH, RC_NOT_AUTHORIZED, V3_NOT_AUTHORIZED,
                           "endpoint ID is not the client certificate's");
            return;
        }
        eid = cert_id;
        eid_len = strlen(cert_id);
    }
    if (eid && mqtt_session_bind_identity(m, eid, eid_len) != 0)
        return;
    if (router_bind(c->relay->router, ROUTER_CLIENT_IDS, cid, none, me, DUP_REPLACE_OLD, &old) ==
        ROUTER_REPLACED)
        worker_post_close(c->relay->workers[old.worker], old.conn_id, CLOSE_REPLACED);

    m->keep_alive = ck.keep_alive;
    uint32_t ska = c->lcfg->mqtt.server_keep_alive;
    if (m->level == 5 && ska)
        m->keep_alive = (uint16_t)ska;
    if (m->level == 5) {
        m->client_max_packet = (ck.props.present & (1u << MQTT_P_MAX_PACKET_SIZE)) ? ck.props.max_packet_size : 0;
        m->client_receive_max = (ck.props.present & (1u << MQTT_P_RECEIVE_MAXIMUM)) ? ck.props.receive_maximum : 0;
    }

    uint8_t buf[2 * MQTT_TOPIC_MAX + 512];
    struct mqtt_props_out po;
    memset(&po, 0, sizeof po);
    struct mqtt_user_prop sub_topic;
    if (m->level == 5) {
        po.has_max_packet_size = 1;
        po.max_packet_size = server_max_packet(c);
        po.has_receive_maximum = 1;
        po.receive_maximum = (uint16_t)c->lcfg->mqtt.receive_maximum;
        po.has_max_qos = 1;
        po.max_qos = 1;
        po.has_retain_available = 1;
        po.retain_available = 0;
        po.has_wildcard_available = 1;
        po.wildcard_available = 1;
        po.has_sub_id_available = 1;
        po.sub_id_available = 0;
        po.has_shared_available = 1;
        po.shared_available = 0;
        po.has_topic_alias_max = 1;
        po.topic_alias_max = 0;
        if (ska) {
            po.has_server_keep_alive = 1;
            po.server_keep_alive = (uint16_t)ska;
        }
        if (assign)
            po.assigned_client_id = mqtt_session_span(m->client_id);
        if (m->own_topic) {
            /* The USP part: where this endpoint subscribes, and its reply topic. */
            sub_topic.key = mqtt_session_span("subscribe-topic");
            sub_topic.value = mqtt_session_span(m->own_topic);
            po.user = &sub_topic;
            po.n_user = 1;
            if ((ck.props.present & (1u << MQTT_P_REQUEST_RESPONSE_INFO)) && ck.props.request_response_info)
                po.response_info = mqtt_session_span(m->own_topic);
        }
    }
    m->connected = 1;
    m->last_rx_ms = now_ms();
    mqtt_session_send(c, buf, mqtt_encode_connack(buf, sizeof buf, m->level, 0, RC_SUCCESS, &po));
    conn_handshake_done(c);
    if (start_keepalive(m) != 0)
        conn_close(c, CLOSE_NO_MEMORY, "out of memory");
}

/* ------------------------------------------------------------------ input */

static void dispatch(struct mqtt_conn *m, const struct mqtt_fixed *fh, const uint8_t *body)
{
    struct conn *c = &m->base;
    size_t len = fh->remaining;
    if (!m->connected && fh->type != MQTT_CONNECT) {
        mqtt_session_error(m, CLOSE_PROTOCOL, RC_PROTOCOL_ERROR, "CONNECT must come first");
        return;
    }
    switch (fh->type) {
    case MQTT_CONNECT:
        if (m->connected)
            mqtt_session_error(m, CLOSE_PROTOCOL, RC_PROTOCOL_ERROR, "second CONNECT");
        else
            on_connect(m, body, len);
        break;
    case MQTT_PUBLISH:
        mqtt_publish_on_publish(m, body, len, fh->flags);
        break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        mqtt_publish_on_ack(m, fh->type, body, len);
        break;
    case MQTT_SUBSCRIBE:
        mqtt_subs_on_subscribe(m, body, len);
        break;
    case MQTT_UNSUBSCRIBE:
        mqtt_subs_on_unsubscribe(m, body, len);
        break;
    case MQTT_PINGREQ: {
        uint8_t buf[4];
        mqtt_session_send(c, buf, mqtt_encode_pingresp(buf, sizeof buf));
        break;
    }
    case MQTT_DISCONNECT:
        conn_close(c, CLOSE_GOODBYE, NULL);
        break;
    case MQTT_AUTH:
        mqtt_session_error(m, CLOSE_PROTOCOL, RC_PROTOCOL_ERROR, "enhanced authentication is not supported");
        break;
    default: /* CONNACK, SUBACK, UNSUBACK, PINGRESP: server-to-client only */
        mqtt_session_error(m, CLOSE_PROTOCOL, RC_PROTOCOL_ERROR, "packet type not accepted from a client");
        break;
    }
}

static void mqtt_on_read(struct conn *c)
{
    struct mqtt_conn *m = (struct mqtt_conn *)c;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    const struct limits_cfg *lim = &c->lcfg->limits;

    m->last_rx_ms = now_ms();
    while (!(c->flags & CONN_CLOSING)) {
        size_t len = evbuffer_get_length(in);
        if (len == 0)
            break;
        uint32_t max = m->connected ? server_max_packet(c) : lim->max_unidentified_input;
        size_t peek = len < 5 ? len : 5;
        const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)peek);
        struct mqtt_fixed fh;
        long size = p ? mqtt_packet_size(p, peek, max, &fh) : MQTT_ERR_MALFORMED;
        if (size == MQTT_NEED_MORE)
            break;
        if (size < 0) {
            /* Refused on the declared size alone, before anything is buffered for it. */
            mqtt_session_error(m, CLOSE_PROTOCOL,
                               size == MQTT_ERR_TOO_LARGE ? RC_PACKET_TOO_LARGE : RC_MALFORMED,
                               mqtt_err_name((int)size));
            break;
        }
        if (len < (size_t)size)
            break; /* the read watermark is above any packet size accepted here */
        const uint8_t *pkt = evbuffer_pullup(in, size);
        if (!pkt) {
            mqtt_session_error(m, CLOSE_NO_MEMORY, RC_UNSPECIFIED, "out of memory");
            break;
        }
        dispatch(m, &fh, pkt + fh.header_len);
        evbuffer_drain(in, (size_t)size); /* a close may have emptied it already */
    }
}

static void mqtt_destroy(struct conn *c)
{
    struct mqtt_conn *m = (struct mqtt_conn *)c;
    static const struct span none = {NULL, 0};
    mqtt_subs_release(m);
    if (m->client_id)
        router_unbind(c->relay->router, ROUTER_CLIENT_IDS,
                      span_from_str(m->client_id, strlen(m->client_id)), none, c->id);
    mqtt_publish_release(m);
    free(m->client_id);
    free(m->own_topic);
    free(m->learned_topic);
    if (m->ka_timer)
        event_free(m->ka_timer);
}

static void mqtt_unbind(struct conn *c)
{
    mqtt_subs_unregister((struct mqtt_conn *)c);
}

/* QoS 1 Records waiting for a slot in the client's window count against the output. */
static void mqtt_held(const struct conn *c, uint64_t *bytes, size_t *room)
{
    const struct mqtt_conn *m = (const struct mqtt_conn *)c;
    *bytes = m->pend_bytes;
    *room = m->pend_n < MQTT_PENDING_CAP ? MQTT_PENDING_CAP - m->pend_n : 0;
}

/* A PUBLISH needs a topic the client has subscribed to. */
static int mqtt_ready(const struct conn *c)
{
    struct mqtt_conn *m = (struct mqtt_conn *)c;
    char topic[MQTT_TOPIC_MAX];
    uint8_t qos;
    return m->connected && mqtt_subs_delivery_topic(m, topic, sizeof topic, &qos) != 0;
}

static const struct conn_ops mqtt_ops = {
    .mtp = MTP_MQTT,
    .name = "mqtt",
    .connect_type = RECORD_MQTT_CONNECT,
    .on_read = mqtt_on_read,
    .send_record = mqtt_publish_send_record,
    .goodbye = mqtt_goodbye,
    .alias_address = mqtt_alias_address,
    .unbind = mqtt_unbind,
    .destroy = mqtt_destroy,
    .connect_version = mqtt_connect_version,
    .held = mqtt_held,
    .ready = mqtt_ready,
};

struct conn *mqtt_conn_new(struct worker *w, int fd, const struct listener_cfg *lcfg,
                           const char *peer)
{
    return conn_create(sizeof(struct mqtt_conn), &mqtt_ops, w, lcfg, fd, peer);
}
