/* mqtt_publish.c — PUBLISH in and out for an MQTT session. In: QoS 0, 1 (PUBACK with a
 * v5 reason), and 2 for 3.1.1 (PUBREC/PUBREL/PUBCOMP, delivered once), the reply-to of
 * either level, then forward_record. Out: QoS 0/1 on the topic mqtt_subs chooses, within
 * the client's Receive Maximum, with Records queued while the in-flight window is full.
 */
#include "relay/mtp/mqtt_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "relay/endpoint_id.h"
#include "relay/forward.h"
#include "relay/relay.h"

#define MQTT_CONTENT_TYPE "usp.msg"
#define USP_CONTENT_TYPE "application/vnd.bbf.usp.msg"

static void send_ack(struct mqtt_conn *m, uint8_t type, uint16_t pid, uint8_t reason)
{
    uint8_t buf[16];
    mqtt_session_send(&m->base, buf, mqtt_encode_ack(buf, sizeof buf, type, m->level, pid, reason));
}

/* ------------------------------------------------------------------ PUBLISH out */

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
    size_t tl = mqtt_subs_delivery_topic(m, topic, MQTT_TOPIC_MAX, &qos);
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
        po.content_type = mqtt_session_span(MQTT_CONTENT_TYPE);
        if (reply)
            po.response_topic = mqtt_session_span(reply);
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

void mqtt_publish_flush(struct mqtt_conn *m)
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

int mqtt_publish_send_record(struct conn *c, struct rbuf *rb)
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

void mqtt_publish_release(struct mqtt_conn *m)
{
    while (m->pend_n) {
        rbuf_unref(m->pending[m->pend_head]);
        m->pend_head = (m->pend_head + 1) % m->pend_cap;
        m->pend_n--;
    }
    free(m->pending);
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
    case STAT_drop_spoofed:
    case STAT_drop_policy: return RC_NOT_AUTHORIZED;
    case STAT_drop_queue_full: return RC_QUOTA_EXCEEDED;
    default: return RC_UNSPECIFIED;
    }
}

void mqtt_publish_on_publish(struct mqtt_conn *m, const uint8_t *body, size_t len, uint8_t flags)
{
    struct conn *c = &m->base;
    struct mqtt_publish pb;
    int rc = mqtt_decode_publish(body, len, flags, m->level, &pb);
    if (rc < 0) {
        mqtt_session_error(m, CLOSE_PROTOCOL, rc == MQTT_ERR_QOS ? RC_QOS_NOT_SUPPORTED : RC_MALFORMED,
                           mqtt_err_name(rc));
        return;
    }
    if (m->level == 5) {
        if (pb.qos == 2) {
            mqtt_session_error(m, CLOSE_PROTOCOL, RC_QOS_NOT_SUPPORTED, "QoS 2 is not supported");
            return;
        }
        if (pb.retain) {
            mqtt_session_error(m, CLOSE_PROTOCOL, RC_RETAIN_NOT_SUPPORTED, "retain is not supported");
            return;
        }
        if (pb.props.present & (1u << MQTT_P_TOPIC_ALIAS)) {
            mqtt_session_error(m, CLOSE_PROTOCOL, RC_TOPIC_ALIAS_INVALID, "topic aliases are not supported");
            return;
        }
        if (pb.props.present & (1u << MQTT_P_SUBSCRIPTION_ID)) { /* MQTT-3.3.4-6 */
            mqtt_session_error(m, CLOSE_PROTOCOL, RC_PROTOCOL_ERROR, "subscription identifier from a client");
            return;
        }
    } else if (pb.retain) {
        stats_inc(conn_stats(c), STAT_mqtt_retain_ignored);
    }
    if (pb.qos == 2 && qos2_seen(m, pb.packet_id)) {
        send_ack(m, MQTT_PUBREC, pb.packet_id, RC_SUCCESS); /* a resend: delivered once */
        return;
    }
    if (pb.qos == 2 && m->n_qos2_in == MQTT_QOS2_CAP) {
        /* Refused before it is forwarded: a client resending it later must not cause a
         * second delivery. */
        mqtt_session_error(m, CLOSE_PROTOCOL, RC_QUOTA_EXCEEDED, "too many QoS 2 messages in flight");
        return;
    }

    int drop = 0;
    struct rbuf *rb = NULL;
    if (m->level == 5 && (pb.props.present & (1u << MQTT_P_CONTENT_TYPE)) &&
        !mqtt_session_span_is(pb.props.content_type, MQTT_CONTENT_TYPE) &&
        !mqtt_session_span_is(pb.props.content_type, USP_CONTENT_TYPE)) {
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
    rb->qos = pb.qos;
    if (forward_scan(c, rb, NULL, 0) != 0) {
        /* Spec notes §9.1: a Record that cannot be extracted is dropped silently on MQTT. */
        drop = STAT_drop_malformed;
        goto ack;
    }
    if (!c->eid) {
        /* 3.1.1 client whose id is not an endpoint ID: its first Record names it. */
        if (mqtt_session_bind_identity(m, (const char *)rb->hdr.from_id.ptr,
                                       rb->hdr.from_id.len) != 0) {
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
    /* A reply topic goes on to other clients as a topic name (3.1.1) or Response Topic:
     * one that is not a valid topic name (wildcards, NUL, bad UTF-8 after %-decoding)
     * would make them drop their connection. It is left out instead. */
    if (reply_len && !mqtt_topic_name_valid((struct mqtt_span){(const uint8_t *)reply, reply_len})) {
        char d[256];
        log_debug("mqtt_reply_to_dropped", "%s reason=invalid_topic", conn_describe(c, d, sizeof d));
        reply_len = 0;
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
        m->qos2_in[m->n_qos2_in++] = pb.packet_id;
        send_ack(m, MQTT_PUBREC, pb.packet_id, RC_SUCCESS);
    }
}

void mqtt_publish_on_ack(struct mqtt_conn *m, uint8_t type, const uint8_t *body, size_t len)
{
    struct mqtt_ack ack;
    int rc = mqtt_decode_ack(body, len, type, m->level, &ack);
    if (rc < 0) {
        mqtt_session_error(m, CLOSE_PROTOCOL, RC_MALFORMED, mqtt_err_name(rc));
        return;
    }
    if (type == MQTT_PUBREL) {
        uint8_t reason = RC_PACKET_ID_NOT_FOUND; /* v5 only; 3.1.1 PUBCOMP has no reason */
        for (size_t i = 0; i < m->n_qos2_in; i++) {
            if (m->qos2_in[i] == ack.packet_id) {
                m->qos2_in[i] = m->qos2_in[--m->n_qos2_in];
                reason = RC_SUCCESS;
                break;
            }
        }
        send_ack(m, MQTT_PUBCOMP, ack.packet_id, reason);
        return;
    }
    if (type != MQTT_PUBACK) {
        /* PUBREC/PUBCOMP answer QoS 2 PUBLISHes, and the relay never sends QoS 2. */
        mqtt_session_error(m, CLOSE_PROTOCOL, RC_PROTOCOL_ERROR, "unexpected QoS 2 acknowledgement");
        return;
    }
    for (size_t i = 0; i < m->n_inflight; i++) {
        if (m->inflight[i] == ack.packet_id) {
            m->inflight[i] = m->inflight[--m->n_inflight];
            mqtt_publish_flush(m);
            return;
        }
    }
    /* An unknown packet id is harmless (a duplicate PUBACK): ignored. */
}
