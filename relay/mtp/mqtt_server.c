/* mqtt_server.c — one MQTT 3.1.1 / 5.0 session per client: CONNECT and identity,
 * subscriptions with the USP ACL, PUBLISH in (QoS 0, 1, and 2 for 3.1.1), PUBLISH out
 * (QoS 0/1 within the client's Receive Maximum), keepalive, and the reason codes of
 * every v5 refusal. Framing is done by mqtt_codec; this file owns the state. Wire rules:
 * spec notes §5 and §9 items 19–22.
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

#include "relay/endpoint_id.h"
#include "relay/forward.h"
#include "relay/log.h"
#include "relay/mtp/mqtt_codec.h"
#include "relay/relay.h"
#include "relay/worker.h"

/* v5 reason codes used here (MQTT 5.0 §2.4). */
enum {
    RC_SUCCESS = 0x00,
    RC_GRANTED_QOS1 = 0x01,
    RC_NO_SUBSCRIBERS = 0x10,
    RC_NO_SUBSCRIPTION = 0x11,
    RC_UNSPECIFIED = 0x80,
    RC_MALFORMED = 0x81,
    RC_PROTOCOL_ERROR = 0x82,
    RC_IMPL_SPECIFIC = 0x83,
    RC_UNSUPPORTED_VERSION = 0x84,
    RC_CLIENT_ID_INVALID = 0x85,
    RC_BAD_USER_PASS = 0x86,
    RC_NOT_AUTHORIZED = 0x87,
    RC_SHUTTING_DOWN = 0x8B,
    RC_BAD_AUTH_METHOD = 0x8C,
    RC_KEEP_ALIVE_TIMEOUT = 0x8D,
    RC_SESSION_TAKEN_OVER = 0x8E,
    RC_FILTER_INVALID = 0x8F,
    RC_PACKET_ID_IN_USE = 0x91,
    RC_PACKET_TOO_LARGE = 0x95,
    RC_QUOTA_EXCEEDED = 0x97,
    RC_TOPIC_ALIAS_INVALID = 0x94,
    RC_RETAIN_NOT_SUPPORTED = 0x9A,
    RC_QOS_NOT_SUPPORTED = 0x9B,
    RC_SHARED_NOT_SUPPORTED = 0x9E,
    RC_SUB_IDS_NOT_SUPPORTED = 0xA1,
};

/* v3.1.1 CONNACK return codes. */
enum { V3_UNACCEPTABLE_VERSION = 1, V3_ID_REJECTED = 2, V3_BAD_USER_PASS = 4 };

#define MQTT_MAX_SUBS 32          /* filters one connection may hold */
#define MQTT_OUT_INFLIGHT_CAP 64  /* QoS 1 PUBLISHes out, unacknowledged */
#define MQTT_QOS2_CAP 64          /* 3.1.1 QoS 2 PUBLISHes in, awaiting PUBREL */
#define MQTT_PENDING_CAP 4096     /* Records waiting for an in-flight slot */
#define MQTT_PACKET_SLACK 65536u  /* topic and properties around a Record */
/* Topics the relay builds: a template (at most 256 bytes, config) with an endpoint ID
 * (at most 4096) — and on the wire, for 3.1.1, a reply topic %2F-encoded after it. */
#define MQTT_TOPIC_MAX (256 + 4096 + 64)
#define MQTT_TOPIC_WIRE_MAX (MQTT_TOPIC_MAX * 4 + 16)
#define MQTT_CONTENT_TYPE "usp.msg"
#define USP_CONTENT_TYPE "application/vnd.bbf.usp.msg"

struct mqtt_sub {
    char *filter;
    uint8_t qos;
    char *registered; /* concrete topic this filter put in ROUTER_TOPICS, or NULL */
};

struct mqtt_conn {
    struct conn base;
    int connected;
    uint8_t level; /* 4 = 3.1.1, 5 = 5.0 */
    char *client_id;
    char *own_topic;     /* subscribe topic derived from the endpoint ID */
    char *learned_topic; /* MQTTConnectRecord.subscribed_topic */
    struct mqtt_sub subs[MQTT_MAX_SUBS];
    size_t n_subs;
    uint16_t keep_alive;   /* seconds enforced (client's, or the server's) */
    uint64_t last_rx_ms;
    struct event *ka_timer;
    uint32_t client_max_packet; /* v5 Maximum Packet Size of the client (0: none) */
    uint16_t client_receive_max;
    uint16_t next_pid;
    uint16_t inflight[MQTT_OUT_INFLIGHT_CAP];
    size_t n_inflight;
    struct rbuf **pending; /* ring of Records waiting for an in-flight slot */
    size_t pend_head, pend_n, pend_cap;
    uint64_t pend_bytes;
    uint16_t qos2_in[MQTT_QOS2_CAP];
    size_t n_qos2_in;
    uint8_t disconnect_reason; /* v5 reason for the goodbye DISCONNECT, 0: by close reason */
    int connack_refusal;       /* CONNACK to send as goodbye: 0 none, else code + 1 */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct mqtt_span mspan(const char *s)
{
    struct mqtt_span sp = {(const uint8_t *)s, s ? strlen(s) : 0};
    return sp;
}

static int span_is(struct mqtt_span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
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

static void send_bytes(struct conn *c, const uint8_t *p, long n)
{
    if (n <= 0 || evbuffer_add(bufferevent_get_output(c->bev), p, (size_t)n) != 0)
        conn_fail(c);
}

static void send_ack(struct mqtt_conn *m, uint8_t type, uint16_t pid, uint8_t reason)
{
    uint8_t buf[16];
    send_bytes(&m->base, buf, mqtt_encode_ack(buf, sizeof buf, type, m->level, pid, reason));
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
                po.reason_string = mspan(text);
            send_bytes(c, buf,
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
    send_bytes(c, buf, mqtt_encode_disconnect(buf, sizeof buf, 5, reason, mspan(text)));
}

/* Close with a v5 DISCONNECT REASON (or CONNACK refusal before CONNACK) and TEXT. */
static void session_error(struct mqtt_conn *m, enum close_reason why, uint8_t reason,
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
    session_error(m, why, 0, text);
}

/* The topic to publish this client's Records on, written into BUF: the first candidate
 * (own topic, MQTTConnectRecord topic, each filter made concrete) that its
 * subscriptions match — for 3.1.1 with the /reply-to= suffix appended. 0 if none. */
static size_t delivery_topic(struct mqtt_conn *m, char *buf, size_t cap, uint8_t *qos)
{
    char cand[MQTT_TOPIC_MAX];
    for (size_t k = 0; k < m->n_subs + 2; k++) {
        const char *t = k == 0 ? m->own_topic : k == 1 ? m->learned_topic : NULL;
        if (k >= 2) {
            /* Concrete topic from a filter: '+' levels become "usp", a final '#' goes. */
            const char *f = m->subs[k - 2].filter;
            size_t o = 0;
            for (const char *p = f; *p && o + 4 < sizeof cand; p++) {
                if (*p == '+') {
                    memcpy(cand + o, "usp", 3);
                    o += 3;
                } else if (*p == '#') {
                    if (o > 0 && cand[o - 1] == '/')
                        o--;
                    break;
                } else {
                    cand[o++] = *p;
                }
            }
            cand[o] = '\0';
            t = o ? cand : NULL;
        }
        if (!t)
            continue;
        char probe[MQTT_TOPIC_MAX + 16];
        int n = snprintf(probe, sizeof probe, m->level == 5 ? "%s" : "%s/reply-to=x", t);
        if (n < 0 || (size_t)n >= sizeof probe)
            continue;
        struct mqtt_span ts = {(const uint8_t *)probe, (size_t)n};
        for (size_t i = 0; i < m->n_subs; i++) {
            if (mqtt_topic_matches(mspan(m->subs[i].filter), ts)) {
                *qos = m->subs[i].qos;
                snprintf(buf, cap, "%s", t);
                return strlen(buf);
            }
        }
    }
    if (m->level != 5 && m->n_subs > 0 && m->own_topic) {
        /* 3.1.1 subscribed to an exact topic: USP still puts reply-to in the name. */
        *qos = m->subs[0].qos;
        snprintf(buf, cap, "%s", m->own_topic);
        return strlen(buf);
    }
    return 0;
}

/* Percent-encode '/' (and '%') of a reply topic for the 3.1.1 /reply-to= suffix. */
static size_t reply_suffix(const char *reply, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = reply; *p && o + 4 < cap; p++) {
        if (*p == '/' || *p == '%') {
            o += (size_t)snprintf(out + o, cap - o, "%%%02X", (unsigned char)*p);
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    return o;
}

static int publish_now(struct mqtt_conn *m, struct rbuf *rb)
{
    struct conn *c = &m->base;
    char topic[MQTT_TOPIC_WIRE_MAX], reply_buf[MQTT_TOPIC_MAX];
    uint8_t qos = 0;
    size_t tl = delivery_topic(m, topic, MQTT_TOPIC_MAX, &qos);
    if (!tl)
        return STAT_drop_not_subscribed;
    if (qos > rb->qos) /* MQTT: min(QoS published, QoS granted) */
        qos = rb->qos;
    if (qos > 1)
        qos = 1;

    /* Where the receiver answers: the sender's own reply topic when it is an MQTT client
     * here, else the relay's alias topic for the sender's ID. */
    const char *reply = rb->origin_mtp == MTP_MQTT ? rb->reply_to : NULL;
    if (!reply && mqtt_topic_for(c->lcfg->mqtt.subscribe_topic_template,
                                 (const char *)rb->hdr.from_id.ptr, rb->hdr.from_id.len,
                                 reply_buf, sizeof reply_buf) >= 0)
        reply = reply_buf;

    struct mqtt_props_out po;
    memset(&po, 0, sizeof po);
    if (m->level == 5) {
        po.content_type = mspan(MQTT_CONTENT_TYPE);
        if (reply)
            po.response_topic = mspan(reply);
    } else if (reply) {
        /* R-MQTT.24: 3.1.1 carries reply-to in the topic name. */
        char enc[MQTT_TOPIC_MAX * 3 + 1];
        reply_suffix(reply, enc, sizeof enc);
        int n = snprintf(topic + tl, sizeof topic - tl, "/reply-to=%s", enc);
        if (n < 0 || (size_t)n >= sizeof topic - tl)
            return STAT_drop_too_large;
        tl += (size_t)n;
    }
    uint16_t pid = 0;
    if (qos) {
        /* Next id not in flight (the window is at most MQTT_OUT_INFLIGHT_CAP wide). */
        int busy;
        do {
            if (++m->next_pid == 0)
                m->next_pid = 1;
            busy = 0;
            for (size_t i = 0; i < m->n_inflight; i++)
                busy |= m->inflight[i] == m->next_pid;
        } while (busy);
        pid = m->next_pid;
    }
    uint8_t head[MQTT_TOPIC_WIRE_MAX + MQTT_TOPIC_MAX + 128];
    struct mqtt_span ts = {(const uint8_t *)topic, tl};
    long hl = mqtt_encode_publish_head(head, sizeof head, m->level, qos, 0, 0, ts, pid, &po, rb->len);
    if (hl <= 0)
        return STAT_drop_too_large;
    if (m->client_max_packet && (uint64_t)hl + rb->len > m->client_max_packet)
        return STAT_drop_too_large; /* MQTT 5: never send above the client's maximum */
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (evbuffer_add(out, head, (size_t)hl) != 0)
        return STAT_drop_no_memory;
    rbuf_ref(rb);
    if (evbuffer_add_reference(out, rb->data, rb->len, rbuf_evbuffer_cleanup, rb) != 0) {
        rbuf_unref(rb);
        conn_fail(c);
        return STAT_drop_no_memory;
    }
    if (qos)
        m->inflight[m->n_inflight++] = pid;
    return 0;
}

static size_t inflight_limit(const struct mqtt_conn *m)
{
    size_t lim = m->client_receive_max ? m->client_receive_max : MQTT_OUT_INFLIGHT_CAP;
    return lim < MQTT_OUT_INFLIGHT_CAP ? lim : MQTT_OUT_INFLIGHT_CAP;
}

/* Publishing waits only while QoS 1 is in use and the client's window is full. */
static int must_wait(const struct mqtt_conn *m)
{
    return m->n_inflight >= inflight_limit(m) || m->pend_n > 0;
}

static int pending_push(struct mqtt_conn *m, struct rbuf *rb)
{
    const struct conn *c = &m->base;
    if (m->pend_n >= MQTT_PENDING_CAP ||
        m->pend_bytes + conn_output_queued(c) + rb->len > c->lcfg->limits.max_output_queue)
        return STAT_drop_queue_full;
    if (m->pend_n == m->pend_cap) {
        size_t ncap = m->pend_cap ? m->pend_cap * 2 : 16;
        struct rbuf **nb = malloc(ncap * sizeof *nb);
        if (!nb)
            return STAT_drop_no_memory;
        for (size_t i = 0; i < m->pend_n; i++)
            nb[i] = m->pending[(m->pend_head + i) % m->pend_cap];
        free(m->pending);
        m->pending = nb;
        m->pend_cap = ncap;
        m->pend_head = 0;
    }
    m->pending[(m->pend_head + m->pend_n) % m->pend_cap] = rbuf_ref(rb);
    m->pend_n++;
    m->pend_bytes += rb->len;
    return 0;
}

static void pending_flush(struct mqtt_conn *m)
{
    while (m->pend_n && m->n_inflight < inflight_limit(m) && !(m->base.flags & CONN_CLOSING)) {
        struct rbuf *rb = m->pending[m->pend_head];
        m->pend_head = (m->pend_head + 1) % m->pend_cap;
        m->pend_n--;
        m->pend_bytes -= rb->len;
        int drop = publish_now(m, rb);
        if (drop)
            conn_record_dropped(&m->base, (enum stats_counter)drop, rb);
        rbuf_unref(rb);
    }
}

static int mqtt_send_record(struct conn *c, struct rbuf *rb)
{
    struct mqtt_conn *m = (struct mqtt_conn *)c;
    if (!m->connected)
        return STAT_drop_not_subscribed;
    if (rb->len > c->lcfg->limits.max_record_size)
        return STAT_drop_too_large;
    if (conn_output_queued(c) + rb->len > c->lcfg->limits.max_output_queue)
        return STAT_drop_queue_full;
    if (must_wait(m))
        return pending_push(m, rb);
    return publish_now(m, rb);
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
        session_error(m, CLOSE_HEARTBEAT_TIMEOUT, RC_KEEP_ALIVE_TIMEOUT, "keep alive timeout");
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

static int subscribe_allowed(const struct mqtt_conn *m, const char *filter);
static void register_sub(struct mqtt_conn *m, struct mqtt_sub *s);
static void unregister_sub(struct mqtt_conn *m, struct mqtt_sub *s);

/* Bind EID to this connection; subscriptions taken before it was known are checked
 * against the ACL now. 0, or -1 after closing the connection. */
static int bind_identity(struct mqtt_conn *m, const char *eid, size_t len)
{
    struct conn *c = &m->base;
    int rc = conn_bind_endpoint(c, eid, len, NULL, 0);
    if (rc != 0) {
        if (m->connected)
            session_error(m, rc == CONN_BIND_REFUSED ? CLOSE_DUPLICATE : CLOSE_NO_MEMORY,
                          RC_SESSION_TAKEN_OVER, "endpoint ID is already connected");
        else
            refuse_connect(m, rc == CONN_BIND_REFUSED ? CLOSE_DUPLICATE : CLOSE_NO_MEMORY,
                           RC_CLIENT_ID_INVALID, V3_ID_REJECTED, "endpoint ID is already connected");
        return -1;
    }
    char buf[MQTT_TOPIC_MAX];
    long n = mqtt_topic_for(c->lcfg->mqtt.subscribe_topic_template, eid, len, buf, sizeof buf);
    m->own_topic = n < 0 ? NULL : strndup(buf, (size_t)n);
    for (size_t i = 0; i < m->n_subs;) {
        if (subscribe_allowed(m, m->subs[i].filter)) {
            i++;
            continue;
        }
        char d[256];
        log_info("mqtt_subscription_revoked", "%s filter=\"%s\" reason=acl",
                 conn_describe(c, d, sizeof d), m->subs[i].filter);
        unregister_sub(m, &m->subs[i]);
        free(m->subs[i].filter);
        m->subs[i] = m->subs[--m->n_subs];
    }
    return 0;
}

/* ------------------------------------------------------------------ CONNECT */

static int eid_prefix_match(const char *pattern, const char *eid)
{
    size_t n = strlen(pattern);
    if (n && pattern[n - 1] == '*')
        return strncmp(pattern, eid, n - 1) == 0;
    return strcmp(pattern, eid) == 0;
}

static int creds_ok(const struct mqtt_conn *m, const struct mqtt_connect *ck)
{
    const struct mqtt_listener_cfg *mc = &m->base.lcfg->mqtt;
    if (!mc->username)
        return 1;
    int ok = ck->has_username && ck->has_password && span_is(ck->username, mc->username);
    ok &= ck->has_password && span_is(ck->password, mc->password);
    return ok;
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
        session_error(m, CLOSE_PROTOCOL, RC_MALFORMED, mqtt_err_name(rc));
        return;
    }
    if (!creds_ok(m, &ck)) {
        refuse_connect(m, CLOSE_AUTH, RC_BAD_USER_PASS, V3_BAD_USER_PASS,
                       "bad user name or password");
        return;
    }
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
        session_error(m, CLOSE_NO_MEMORY, RC_UNSPECIFIED, "out of memory");
        return;
    }
    /* A second connection with the same client id takes over the first (MQTT). */
    static const struct span none = {NULL, 0};
    struct route me = {worker_index(c->w), c->id}, old;
    if (router_bind(c->relay->router, ROUTER_CLIENT_IDS, span_from_str(m->client_id, strlen(m->client_id)),
                    none, me, DUP_REPLACE_OLD, &old) == ROUTER_REPLACED) {
        c->takeover_of = old.conn_id;
        worker_post_close(c->relay->workers[old.worker], old.conn_id, CLOSE_REPLACED);
    }

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
    if (eid && bind_identity(m, eid, eid_len) != 0)
        return;

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
            po.assigned_client_id = mspan(m->client_id);
        if (m->own_topic) {
            /* The USP part: where this endpoint subscribes, and its reply topic. */
            sub_topic.key = mspan("subscribe-topic");
            sub_topic.value = mspan(m->own_topic);
            po.user = &sub_topic;
            po.n_user = 1;
            if ((ck.props.present & (1u << MQTT_P_REQUEST_RESPONSE_INFO)) && ck.props.request_response_info)
                po.response_info = mspan(m->own_topic);
        }
    }
    m->connected = 1;
    m->last_rx_ms = now_ms();
    send_bytes(c, buf, mqtt_encode_connack(buf, sizeof buf, m->level, 0, RC_SUCCESS, &po));
    conn_handshake_done(c);
    if (start_keepalive(m) != 0)
        conn_close(c, CLOSE_NO_MEMORY, "out of memory");
}

/* ------------------------------------------------------------------ SUBSCRIBE */

/* R-MQTT.42: by default an endpoint subscribes only to topics derived from its own ID —
 * some level of the filter is exactly its endpoint ID — unless configured to subscribe
 * to anything. Before the ID is known the filter is taken on trust and checked when the
 * ID binds. */
static int subscribe_allowed(const struct mqtt_conn *m, const char *filter)
{
    const struct conn *c = &m->base;
    if (!c->eid)
        return 1;
    const struct mqtt_listener_cfg *mc = &c->lcfg->mqtt;
    for (size_t i = 0; i < mc->n_subscribe_any; i++)
        if (eid_prefix_match(mc->subscribe_any[i], c->eid))
            return 1;
    const char *p = filter;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == c->eid_len && memcmp(p, c->eid, n) == 0)
            return 1;
        if (!slash)
            return 0;
        p = slash + 1;
    }
}

/* A filter that names one topic (or "topic/#") is registered as that concrete topic, so
 * a PUBLISH to it for an unknown to_id can be delivered here. */
static void register_sub(struct mqtt_conn *m, struct mqtt_sub *s)
{
    const char *f = s->filter;
    size_t n = strlen(f);
    if (n >= 2 && strcmp(f + n - 2, "/#") == 0)
        n -= 2;
    if (n == 0 || memchr(f, '+', n) || memchr(f, '#', n))
        return;
    static const struct span none = {NULL, 0};
    struct route me = {worker_index(m->base.w), m->base.id};
    if (router_bind(m->base.relay->router, ROUTER_TOPICS, span_from_str(f, n), none, me,
                    DUP_REPLACE_OLD, NULL) >= 0)
        s->registered = strndup(f, n);
}

static void unregister_sub(struct mqtt_conn *m, struct mqtt_sub *s)
{
    static const struct span none = {NULL, 0};
    if (s->registered)
        router_unbind(m->base.relay->router, ROUTER_TOPICS,
                      span_from_str(s->registered, strlen(s->registered)), none, m->base.id);
    free(s->registered);
    s->registered = NULL;
}

static void on_subscribe(struct mqtt_conn *m, const uint8_t *body, size_t len)
{
    struct mqtt_subscribe sb;
    int rc = mqtt_decode_subscribe(body, len, m->level, &sb);
    if (rc < 0) {
        session_error(m, CLOSE_PROTOCOL, RC_MALFORMED, mqtt_err_name(rc));
        return;
    }
    if (m->level == 5 && MQTT_HAS(&sb.props, MQTT_P_SUBSCRIPTION_ID)) {
        /* CONNACK said Subscription Identifiers Available = 0. */
        session_error(m, CLOSE_PROTOCOL, RC_SUB_IDS_NOT_SUPPORTED,
                      "subscription identifiers are not supported");
        return;
    }
    uint8_t reasons[MQTT_MAX_FILTERS];
    for (size_t i = 0; i < sb.n; i++) {
        if (m->level == 5 && mqtt_topic_filter_shared(sb.filters[i].filter, NULL, NULL) != 0) {
            reasons[i] = RC_SHARED_NOT_SUPPORTED; /* CONNACK: Shared Subscription Available = 0 */
            continue;
        }
        char *f = strndup((const char *)sb.filters[i].filter.ptr, sb.filters[i].filter.len);
        uint8_t qos = sb.filters[i].options & 3u;
        if (qos > 1)
            qos = 1; /* Maximum QoS 1: granted lower, as MQTT allows */
        if (!f) {
            reasons[i] = RC_UNSPECIFIED;
            continue;
        }
        if (!subscribe_allowed(m, f)) {
            reasons[i] = m->level == 5 ? RC_NOT_AUTHORIZED : RC_UNSPECIFIED;
            free(f);
            continue;
        }
        size_t k;
        for (k = 0; k < m->n_subs && strcmp(m->subs[k].filter, f) != 0; k++)
            ;
        if (k < m->n_subs) { /* same filter again: replaces the options */
            m->subs[k].qos = qos;
            free(f);
        } else if (m->n_subs == MQTT_MAX_SUBS) {
            reasons[i] = m->level == 5 ? RC_QUOTA_EXCEEDED : RC_UNSPECIFIED;
            free(f);
            continue;
        } else {
            struct mqtt_sub *s = &m->subs[m->n_subs++];
            s->filter = f;
            s->qos = qos;
            s->registered = NULL;
            register_sub(m, s);
        }
        reasons[i] = qos;
    }
    uint8_t buf[64 + MQTT_MAX_FILTERS];
    send_bytes(&m->base, buf,
               mqtt_encode_suback(buf, sizeof buf, MQTT_SUBACK, m->level, sb.packet_id, reasons, sb.n));
    pending_flush(m);
}

static void on_unsubscribe(struct mqtt_conn *m, const uint8_t *body, size_t len)
{
    struct mqtt_subscribe sb;
    int rc = mqtt_decode_unsubscribe(body, len, m->level, &sb);
    if (rc < 0) {
        session_error(m, CLOSE_PROTOCOL, RC_MALFORMED, mqtt_err_name(rc));
        return;
    }
    uint8_t reasons[MQTT_MAX_FILTERS];
    for (size_t i = 0; i < sb.n; i++) {
        reasons[i] = RC_NO_SUBSCRIPTION;
        for (size_t k = 0; k < m->n_subs; k++) {
            struct mqtt_sub *s = &m->subs[k];
            if (strlen(s->filter) == sb.filters[i].filter.len &&
                memcmp(s->filter, sb.filters[i].filter.ptr, sb.filters[i].filter.len) == 0) {
                unregister_sub(m, s);
                free(s->filter);
                *s = m->subs[--m->n_subs];
                reasons[i] = RC_SUCCESS;
                break;
            }
        }
    }
    uint8_t buf[64 + MQTT_MAX_FILTERS];
    send_bytes(&m->base, buf,
               mqtt_encode_suback(buf, sizeof buf, MQTT_UNSUBACK, m->level, sb.packet_id, reasons, sb.n));
}

/* ------------------------------------------------------------------ PUBLISH in */

static int qos2_seen(struct mqtt_conn *m, uint16_t pid)
{
    for (size_t i = 0; i < m->n_qos2_in; i++)
        if (m->qos2_in[i] == pid)
            return 1;
    return 0;
}

/* The 3.1.1 reply-to topic after the last "/reply-to=" of TOPIC ("%2F" -> "/"), and
 * TOPIC's length without it. */
static size_t split_reply_to(struct mqtt_span topic, char *reply, size_t cap, size_t *reply_len)
{
    static const char mark[] = "/reply-to=";
    size_t ml = sizeof mark - 1;
    *reply_len = 0;
    for (size_t i = topic.len; i-- > 0;) {
        if (i + ml <= topic.len && memcmp(topic.ptr + i, mark, ml) == 0) {
            long n = eid_pct_decode((const char *)topic.ptr + i + ml, topic.len - i - ml, reply, cap);
            if (n > 0)
                *reply_len = (size_t)n;
            return i;
        }
    }
    return topic.len;
}

static uint8_t puback_reason(int drop)
{
    switch (drop) {
    case 0: return RC_SUCCESS;
    case STAT_drop_no_route: return RC_NO_SUBSCRIBERS;
    case STAT_drop_spoofed: return RC_NOT_AUTHORIZED;
    case STAT_drop_queue_full: return RC_QUOTA_EXCEEDED;
    default: return RC_UNSPECIFIED;
    }
}

static void on_publish(struct mqtt_conn *m, const uint8_t *body, size_t len, uint8_t flags)
{
    struct conn *c = &m->base;
    struct mqtt_publish pb;
    int rc = mqtt_decode_publish(body, len, flags, m->level, &pb);
    if (rc < 0) {
        session_error(m, CLOSE_PROTOCOL, rc == MQTT_ERR_QOS ? RC_QOS_NOT_SUPPORTED : RC_MALFORMED,
                      mqtt_err_name(rc));
        return;
    }
    if (m->level == 5) {
        if (pb.qos == 2) {
            session_error(m, CLOSE_PROTOCOL, RC_QOS_NOT_SUPPORTED, "QoS 2 is not supported");
            return;
        }
        if (pb.retain) {
            session_error(m, CLOSE_PROTOCOL, RC_RETAIN_NOT_SUPPORTED, "retain is not supported");
            return;
        }
        if (pb.props.present & (1u << MQTT_P_TOPIC_ALIAS)) {
            session_error(m, CLOSE_PROTOCOL, RC_TOPIC_ALIAS_INVALID, "topic aliases are not supported");
            return;
        }
        if (pb.props.present & (1u << MQTT_P_SUBSCRIPTION_ID)) { /* MQTT-3.3.4-6 */
            session_error(m, CLOSE_PROTOCOL, RC_PROTOCOL_ERROR, "subscription identifier from a client");
            return;
        }
    } else if (pb.retain) {
        stats_inc(conn_stats(c), STAT_mqtt_retain_ignored);
    }
    if (pb.qos == 2 && qos2_seen(m, pb.packet_id)) {
        send_ack(m, MQTT_PUBREC, pb.packet_id, RC_SUCCESS); /* a resend: delivered once */
        return;
    }

    int drop = 0;
    struct rbuf *rb = NULL;
    if (m->level == 5 && (pb.props.present & (1u << MQTT_P_CONTENT_TYPE)) &&
        !span_is(pb.props.content_type, MQTT_CONTENT_TYPE) &&
        !span_is(pb.props.content_type, USP_CONTENT_TYPE)) {
        drop = STAT_drop_bad_content_type; /* R-MQTT.27a */
    } else if (pb.payload.len > c->lcfg->limits.max_record_size) {
        drop = STAT_drop_too_large;
    } else if (!(rb = rbuf_new(pb.payload.len))) {
        drop = STAT_drop_no_memory;
    }
    if (drop) {
        conn_record_dropped(c, (enum stats_counter)drop, NULL);
        goto ack;
    }
    memcpy(rb->data, pb.payload.ptr, pb.payload.len);
    rb->rx_ns = rbuf_now_ns();
    rb->origin_mtp = MTP_MQTT;
    rb->qos = pb.qos;
    int e = record_scan(rb->data, rb->len, c->relay->cfg->max_endpoint_id_length, &rb->hdr);
    if (e != 0) {
        /* Spec notes §9.1: a Record that cannot be extracted is dropped silently on MQTT. */
        conn_record_dropped(c, STAT_drop_malformed, NULL);
        rbuf_unref(rb);
        drop = STAT_drop_malformed;
        goto ack;
    }
    if (!c->eid) {
        /* 3.1.1 client whose id is not an endpoint ID: its first Record names it. */
        if (bind_identity(m, (const char *)rb->hdr.from_id.ptr, rb->hdr.from_id.len) != 0) {
            rbuf_unref(rb);
            return;
        }
    }
    if (rb->hdr.type == RECORD_MQTT_CONNECT && rb->hdr.subscribed.len && !m->learned_topic &&
        c->eid_len == rb->hdr.from_id.len && memcmp(c->eid, rb->hdr.from_id.ptr, c->eid_len) == 0)
        m->learned_topic = strndup((const char *)rb->hdr.subscribed.ptr, rb->hdr.subscribed.len);

    char reply[MQTT_TOPIC_MAX];
    size_t reply_len = 0, topic_len = pb.topic.len;
    if (m->level == 5 && (pb.props.present & (1u << MQTT_P_RESPONSE_TOPIC))) {
        reply_len = pb.props.response_topic.len < sizeof reply ? pb.props.response_topic.len : 0;
        memcpy(reply, pb.props.response_topic.ptr, reply_len);
    } else if (m->level == 4) {
        topic_len = split_reply_to(pb.topic, reply, sizeof reply, &reply_len);
    }
    if (reply_len && rbuf_set_reply_to(rb, reply, reply_len) != 0) {
        conn_record_dropped(c, STAT_drop_no_memory, rb);
        rbuf_unref(rb);
        drop = STAT_drop_no_memory;
        goto ack;
    }
    drop = forward_record(c, rb, ROUTER_TOPICS, span_from_str((const char *)pb.topic.ptr, topic_len));
ack:
    if (pb.qos == 1) {
        send_ack(m, MQTT_PUBACK, pb.packet_id, puback_reason(drop));
    } else if (pb.qos == 2) {
        if (m->n_qos2_in == MQTT_QOS2_CAP) {
            session_error(m, CLOSE_PROTOCOL, RC_QUOTA_EXCEEDED, "too many QoS 2 messages in flight");
            return;
        }
        m->qos2_in[m->n_qos2_in++] = pb.packet_id;
        send_ack(m, MQTT_PUBREC, pb.packet_id, RC_SUCCESS);
    }
}

static void on_ack(struct mqtt_conn *m, uint8_t type, const uint8_t *body, size_t len)
{
    struct mqtt_ack ack;
    int rc = mqtt_decode_ack(body, len, type, m->level, &ack);
    if (rc < 0) {
        session_error(m, CLOSE_PROTOCOL, RC_MALFORMED, mqtt_err_name(rc));
        return;
    }
    if (type == MQTT_PUBREL) {
        for (size_t i = 0; i < m->n_qos2_in; i++) {
            if (m->qos2_in[i] == ack.packet_id) {
                m->qos2_in[i] = m->qos2_in[--m->n_qos2_in];
                break;
            }
        }
        send_ack(m, MQTT_PUBCOMP, ack.packet_id, RC_SUCCESS);
        return;
    }
    if (type != MQTT_PUBACK) {
        /* PUBREC/PUBCOMP answer QoS 2 PUBLISHes, and the relay never sends QoS 2. */
        session_error(m, CLOSE_PROTOCOL, RC_PROTOCOL_ERROR, "unexpected QoS 2 acknowledgement");
        return;
    }
    for (size_t i = 0; i < m->n_inflight; i++) {
        if (m->inflight[i] == ack.packet_id) {
            m->inflight[i] = m->inflight[--m->n_inflight];
            pending_flush(m);
            return;
        }
    }
    /* An unknown packet id is harmless (a duplicate PUBACK): ignored. */
}

/* ------------------------------------------------------------------ input */

static void dispatch(struct mqtt_conn *m, const struct mqtt_fixed *fh, const uint8_t *body)
{
    struct conn *c = &m->base;
    size_t len = fh->remaining;
    if (!m->connected && fh->type != MQTT_CONNECT) {
        session_error(m, CLOSE_PROTOCOL, RC_PROTOCOL_ERROR, "CONNECT must come first");
        return;
    }
    switch (fh->type) {
    case MQTT_CONNECT:
        if (m->connected)
            session_error(m, CLOSE_PROTOCOL, RC_PROTOCOL_ERROR, "second CONNECT");
        else
            on_connect(m, body, len);
        break;
    case MQTT_PUBLISH:
        on_publish(m, body, len, fh->flags);
        break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        on_ack(m, fh->type, body, len);
        break;
    case MQTT_SUBSCRIBE:
        on_subscribe(m, body, len);
        break;
    case MQTT_UNSUBSCRIBE:
        on_unsubscribe(m, body, len);
        break;
    case MQTT_PINGREQ: {
        uint8_t buf[4];
        send_bytes(c, buf, mqtt_encode_pingresp(buf, sizeof buf));
        break;
    }
    case MQTT_DISCONNECT:
        conn_close(c, CLOSE_GOODBYE, NULL);
        break;
    case MQTT_AUTH:
        session_error(m, CLOSE_PROTOCOL, RC_PROTOCOL_ERROR, "enhanced authentication is not supported");
        break;
    default: /* CONNACK, SUBACK, UNSUBACK, PINGRESP: server-to-client only */
        session_error(m, CLOSE_PROTOCOL, RC_PROTOCOL_ERROR, "packet type not accepted from a client");
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
            session_error(m, CLOSE_PROTOCOL,
                          size == MQTT_ERR_TOO_LARGE ? RC_PACKET_TOO_LARGE : RC_MALFORMED,
                          mqtt_err_name((int)size));
            break;
        }
        if (len < (size_t)size)
            break; /* the read watermark is above any packet size accepted here */
        const uint8_t *pkt = evbuffer_pullup(in, size);
        if (!pkt) {
            session_error(m, CLOSE_NO_MEMORY, RC_UNSPECIFIED, "out of memory");
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
    for (size_t i = 0; i < m->n_subs; i++) {
        unregister_sub(m, &m->subs[i]);
        free(m->subs[i].filter);
    }
    if (m->client_id)
        router_unbind(c->relay->router, ROUTER_CLIENT_IDS,
                      span_from_str(m->client_id, strlen(m->client_id)), none, c->id);
    while (m->pend_n) {
        rbuf_unref(m->pending[m->pend_head]);
        m->pend_head = (m->pend_head + 1) % m->pend_cap;
        m->pend_n--;
    }
    free(m->pending);
    free(m->client_id);
    free(m->own_topic);
    free(m->learned_topic);
    if (m->ka_timer)
        event_free(m->ka_timer);
}

static const struct conn_ops mqtt_ops = {
    .mtp = MTP_MQTT,
    .name = "mqtt",
    .connect_type = RECORD_MQTT_CONNECT,
    .on_read = mqtt_on_read,
    .send_record = mqtt_send_record,
    .goodbye = mqtt_goodbye,
    .alias_address = mqtt_alias_address,
    .destroy = mqtt_destroy,
    .connect_version = mqtt_connect_version,
};

struct conn *mqtt_conn_new(struct worker *w, int fd, const struct listener_cfg *lcfg,
                           const char *peer)
{
    return conn_create(sizeof(struct mqtt_conn), &mqtt_ops, w, lcfg, fd, peer);
}
