/* fuzz_mqtt_codec.c — libFuzzer harness for relay/mtp/mqtt_codec (MQTT 3.1.1 and 5.0).
 *
 * Input: one byte choosing max_packet (0, 64, 1024 or 65536), then a byte stream read as
 * back-to-back MQTT packets, the way a connection reader would. Each complete packet is
 * decoded with the decoder for its type at level 4 and at level 5. Beyond "no crash" it
 * asserts: mqtt_packet_size is prefix-consistent (need-more until an answer, which then
 * never changes) and its size obeys max_packet; every decoded span lies inside the body;
 * counts stay within their caps; decoded CONNECT, PUBLISH, SUBSCRIBE/UNSUBSCRIBE, acks,
 * SUBACK/UNSUBACK and CONNACK re-encode (through our encoders, OUT exactly sized) into
 * packets that decode to the same values. Topic spans are also run through the topic
 * validity and matching functions, whose answers must agree with each other.
 */
#include "relay/mtp/mqtt_codec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* assert() may be compiled out; these invariants must hold in every build. */
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "invariant failed: %s (line %d)\n", \
                                          #c, __LINE__); abort(); } } while (0)

struct body {
    const uint8_t *p;
    size_t n;
};

static void span_in(struct mqtt_span s, struct body b)
{
    if (s.ptr == NULL) {
        CHECK(s.len == 0);
        return;
    }
    CHECK(s.ptr >= b.p && s.len <= b.n && (size_t)(s.ptr - b.p) <= b.n - s.len);
}

static int span_eq(struct mqtt_span a, struct mqtt_span b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static void props_in(const struct mqtt_props *p, struct body b)
{
    CHECK(p->n_user <= MQTT_MAX_USER_PROPS && p->n_user <= p->n_user_total);
    CHECK(p->n_user == p->n_user_total || p->n_user == MQTT_MAX_USER_PROPS);
    CHECK(MQTT_HAS(p, MQTT_P_USER_PROPERTY) == (p->n_user_total > 0));
    const struct mqtt_span *s[] = {&p->content_type, &p->response_topic, &p->correlation_data,
                                   &p->assigned_client_id, &p->auth_method, &p->auth_data,
                                   &p->response_info, &p->server_reference,
                                   &p->reason_string};
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        span_in(*s[i], b);
        CHECK(s[i]->len <= 65535);
    }
    for (size_t i = 0; i < p->n_user; i++) {
        span_in(p->user[i].key, b);
        span_in(p->user[i].value, b);
    }
    if (MQTT_HAS(p, MQTT_P_RESPONSE_TOPIC))
        CHECK(mqtt_topic_name_valid(p->response_topic));
    if (MQTT_HAS(p, MQTT_P_AUTH_DATA))
        CHECK(MQTT_HAS(p, MQTT_P_AUTH_METHOD));
    CHECK(p->payload_format <= 1 && p->max_qos <= 1 && p->retain_available <= 1);
    CHECK(!MQTT_HAS(p, MQTT_P_SUBSCRIPTION_ID) ||
          (p->subscription_id >= 1 && p->subscription_id <= MQTT_MAX_REMAINING));
}

/* Everything struct mqtt_props_out can carry, copied from decoded properties. */
static void props_to_out(const struct mqtt_props *p, struct mqtt_props_out *o)
{
    memset(o, 0, sizeof *o);
#define SPAN(f, bit) if (MQTT_HAS(p, bit)) o->f = p->f
#define NUM(f, bit) if (MQTT_HAS(p, bit)) { o->has_##f = 1; o->f = p->f; }
    SPAN(content_type, MQTT_P_CONTENT_TYPE);
    SPAN(response_topic, MQTT_P_RESPONSE_TOPIC);
    SPAN(assigned_client_id, MQTT_P_ASSIGNED_CLIENT_ID);
    SPAN(response_info, MQTT_P_RESPONSE_INFO);
    SPAN(reason_string, MQTT_P_REASON_STRING);
    SPAN(correlation_data, MQTT_P_CORRELATION_DATA);
    SPAN(server_reference, MQTT_P_SERVER_REFERENCE);
    NUM(server_keep_alive, MQTT_P_SERVER_KEEP_ALIVE);
    NUM(receive_maximum, MQTT_P_RECEIVE_MAXIMUM);
    NUM(max_qos, MQTT_P_MAX_QOS);
    NUM(retain_available, MQTT_P_RETAIN_AVAILABLE);
    NUM(wildcard_available, MQTT_P_WILDCARD_AVAILABLE);
    NUM(sub_id_available, MQTT_P_SUB_ID_AVAILABLE);
    NUM(shared_available, MQTT_P_SHARED_AVAILABLE);
    NUM(topic_alias_max, MQTT_P_TOPIC_ALIAS_MAX);
    NUM(max_packet_size, MQTT_P_MAX_PACKET_SIZE);
    NUM(session_expiry, MQTT_P_SESSION_EXPIRY);
    NUM(message_expiry, MQTT_P_MESSAGE_EXPIRY);
    NUM(payload_format, MQTT_P_PAYLOAD_FORMAT);
    NUM(will_delay, MQTT_P_WILL_DELAY);
    NUM(request_response_info, MQTT_P_REQUEST_RESPONSE_INFO);
    NUM(request_problem_info, MQTT_P_REQUEST_PROBLEM_INFO);
    NUM(topic_alias, MQTT_P_TOPIC_ALIAS);
    NUM(subscription_id, MQTT_P_SUBSCRIPTION_ID);
#undef SPAN
#undef NUM
    o->user = p->user;
    o->n_user = p->n_user;
}

/* Properties struct mqtt_props_out carries (all but Authentication Method / Data). */
#define CARRIED (~((1u << MQTT_P_AUTH_METHOD) | (1u << MQTT_P_AUTH_DATA)))

static void props_same(const struct mqtt_props *a, const struct mqtt_props *b)
{
    CHECK((a->present & CARRIED) == (b->present & CARRIED));
    CHECK(a->payload_format == b->payload_format && a->message_expiry == b->message_expiry);
    CHECK(a->session_expiry == b->session_expiry && a->max_packet_size == b->max_packet_size);
    CHECK(a->receive_maximum == b->receive_maximum && a->topic_alias_max == b->topic_alias_max);
    CHECK(a->topic_alias == b->topic_alias && a->server_keep_alive == b->server_keep_alive);
    CHECK(a->request_response_info == b->request_response_info);
    CHECK(a->request_problem_info == b->request_problem_info && a->max_qos == b->max_qos);
    CHECK(a->retain_available == b->retain_available);
    CHECK(a->wildcard_available == b->wildcard_available);
    CHECK(a->sub_id_available == b->sub_id_available);
    CHECK(a->shared_available == b->shared_available);
    CHECK(a->subscription_id == b->subscription_id && a->will_delay == b->will_delay);
    CHECK(span_eq(a->content_type, b->content_type));
    CHECK(span_eq(a->response_topic, b->response_topic));
    CHECK(span_eq(a->correlation_data, b->correlation_data));
    CHECK(span_eq(a->assigned_client_id, b->assigned_client_id));
    CHECK(span_eq(a->response_info, b->response_info));
    CHECK(span_eq(a->server_reference, b->server_reference));
    CHECK(span_eq(a->reason_string, b->reason_string));
    CHECK(a->n_user == b->n_user);
    for (size_t i = 0; i < a->n_user; i++)
        CHECK(span_eq(a->user[i].key, b->user[i].key) &&
              span_eq(a->user[i].value, b->user[i].value));
}

/* An encoder's output: exact size, BUF_SMALL one byte short, then sized and decoded. */
static struct body reencoded(uint8_t *buf, long n, uint8_t type, struct mqtt_fixed *fh)
{
    CHECK(n > 0);
    long r = mqtt_packet_size(buf, (size_t)n, 0, fh);
    CHECK(r == n && fh->type == type);
    return (struct body){buf + fh->header_len, fh->remaining};
}

static void topic_checks(struct mqtt_span t, struct mqtt_span f)
{
    int nv = mqtt_topic_name_valid(t), fv = mqtt_topic_filter_valid(f);
    if (nv) {
        CHECK(mqtt_topic_filter_valid(t)); /* a name is a filter without wildcards */
        CHECK(mqtt_topic_matches(t, t));
        struct mqtt_span hash = {(const uint8_t *)"#", 1};
        CHECK(mqtt_topic_matches(hash, t) == (t.ptr[0] != '$'));
    }
    int m = mqtt_topic_matches(f, t);
    CHECK(!m || (nv && fv));
    struct mqtt_span name, inner;
    int sh = mqtt_topic_filter_shared(f, &name, &inner);
    if (sh == 1) {
        span_in(name, (struct body){f.ptr, f.len});
        span_in(inner, (struct body){f.ptr, f.len});
        CHECK(name.len > 0 && mqtt_topic_filter_valid(inner));
    }
}

static uint8_t g_buf[1 << 18];

static void check_publish(struct body b, uint8_t flags, uint8_t level)
{
    struct mqtt_publish p, q;
    int r = mqtt_decode_publish(b.p, b.n, flags, level, &p);
    if (r != 0)
        return;
    span_in(p.topic, b);
    span_in(p.payload, b);
    props_in(&p.props, b);
    CHECK(p.payload.ptr + p.payload.len == b.p + b.n);
    CHECK(p.qos <= 2 && (p.qos > 0) == (p.packet_id != 0));
    CHECK(p.topic.len > 0 ? mqtt_topic_name_valid(p.topic)
                          : MQTT_HAS(&p.props, MQTT_P_TOPIC_ALIAS));

    struct mqtt_props_out o;
    props_to_out(&p.props, &o);
    long n = mqtt_encode_publish(g_buf, sizeof g_buf, level, p.qos, p.retain, p.dup, p.topic,
                                 p.packet_id, &o, p.payload);
    if (n == MQTT_ERR_BUF_SMALL)
        return;
    CHECK(mqtt_encode_publish(g_buf, (size_t)n - 1, level, p.qos, p.retain, p.dup, p.topic,
                              p.packet_id, &o, p.payload) == MQTT_ERR_BUF_SMALL);
    n = mqtt_encode_publish(g_buf, (size_t)n, level, p.qos, p.retain, p.dup, p.topic,
                            p.packet_id, &o, p.payload);
    struct mqtt_fixed fh;
    struct body b2 = reencoded(g_buf, n, MQTT_PUBLISH, &fh);
    CHECK(mqtt_decode_publish(b2.p, b2.n, fh.flags, level, &q) == 0);
    CHECK(q.qos == p.qos && q.dup == p.dup && q.retain == p.retain);
    CHECK(q.packet_id == p.packet_id && span_eq(q.topic, p.topic));
    CHECK(span_eq(q.payload, p.payload));
    props_same(&p.props, &q.props);
    long h = mqtt_encode_publish_head(g_buf, sizeof g_buf, level, p.qos, p.retain, p.dup,
                                      p.topic, p.packet_id, &o, p.payload.len);
    CHECK(h > 0 && (size_t)h + p.payload.len == (size_t)n);
}

static void check_connect(struct body b)
{
    struct mqtt_connect c, d;
    int r = mqtt_decode_connect(b.p, b.n, &c);
    if (r == MQTT_ERR_PROTOCOL_LEVEL)
        CHECK(c.level != 4 && c.level != 5);
    if (r != 0)
        return;
    CHECK(c.level == 4 || c.level == 5);
    span_in(c.client_id, b);
    span_in(c.will_topic, b);
    span_in(c.will_payload, b);
    span_in(c.username, b);
    span_in(c.password, b);
    props_in(&c.props, b);
    props_in(&c.will_props, b);
    CHECK(c.will_qos <= 2 && (c.will || (c.will_qos == 0 && !c.will_retain)));
    CHECK(c.has_username == (c.username.ptr != NULL));
    CHECK(c.has_password == (c.password.ptr != NULL));
    CHECK(!c.will || mqtt_topic_name_valid(c.will_topic));

    struct mqtt_props_out po, wo;
    props_to_out(&c.props, &po);
    props_to_out(&c.will_props, &wo);
    struct mqtt_connect_out co = {
        .level = c.level, .clean_start = c.clean_start, .keep_alive = c.keep_alive,
        .client_id = c.client_id, .username = c.username, .password = c.password,
        .will = c.will, .will_qos = (uint8_t)c.will_qos, .will_retain = c.will_retain,
        .will_topic = c.will_topic, .will_payload = c.will_payload, .props = &po,
        .will_props = &wo};
    long n = mqtt_encode_connect(g_buf, sizeof g_buf, &co);
    if (n == MQTT_ERR_BUF_SMALL)
        return;
    CHECK(mqtt_encode_connect(g_buf, (size_t)n - 1, &co) == MQTT_ERR_BUF_SMALL);
    struct mqtt_fixed fh;
    struct body b2 = reencoded(g_buf, mqtt_encode_connect(g_buf, (size_t)n, &co), MQTT_CONNECT,
                               &fh);
    CHECK(mqtt_decode_connect(b2.p, b2.n, &d) == 0);
    CHECK(d.level == c.level && d.clean_start == c.clean_start && d.keep_alive == c.keep_alive);
    CHECK(d.will == c.will && d.will_qos == c.will_qos && d.will_retain == c.will_retain);
    CHECK(d.has_username == c.has_username && d.has_password == c.has_password);
    CHECK(span_eq(d.client_id, c.client_id) && span_eq(d.will_topic, c.will_topic));
    CHECK(span_eq(d.will_payload, c.will_payload) && span_eq(d.username, c.username));
    CHECK(span_eq(d.password, c.password));
    props_same(&c.props, &d.props);
    props_same(&c.will_props, &d.will_props);
}

static void check_sub(struct body b, uint8_t type, uint8_t level)
{
    struct mqtt_subscribe s, t;
    int r = type == MQTT_SUBSCRIBE ? mqtt_decode_subscribe(b.p, b.n, level, &s)
                                   : mqtt_decode_unsubscribe(b.p, b.n, level, &s);
    if (r != 0)
        return;
    CHECK(s.n >= 1 && s.n <= MQTT_MAX_FILTERS && s.packet_id != 0);
    props_in(&s.props, b);
    for (size_t i = 0; i < s.n; i++) {
        span_in(s.filters[i].filter, b);
        CHECK(mqtt_topic_filter_valid(s.filters[i].filter));
        CHECK(MQTT_SUB_QOS(s.filters[i].options) <= 2);
        CHECK(type == MQTT_SUBSCRIBE || s.filters[i].options == 0);
        CHECK(level == 5 || s.filters[i].options <= 2);
        topic_checks(s.filters[i].filter, s.filters[i].filter);
    }
    struct mqtt_props_out o;
    props_to_out(&s.props, &o);
    long n = mqtt_encode_subscribe(g_buf, sizeof g_buf, type, level, s.packet_id, &o,
                                   s.filters, s.n);
    CHECK(n > 0);
    CHECK(mqtt_encode_subscribe(g_buf, (size_t)n - 1, type, level, s.packet_id, &o, s.filters,
                                s.n) == MQTT_ERR_BUF_SMALL);
    n = mqtt_encode_subscribe(g_buf, (size_t)n, type, level, s.packet_id, &o, s.filters, s.n);
    struct mqtt_fixed fh;
    struct body b2 = reencoded(g_buf, n, type, &fh);
    r = type == MQTT_SUBSCRIBE ? mqtt_decode_subscribe(b2.p, b2.n, level, &t)
                               : mqtt_decode_unsubscribe(b2.p, b2.n, level, &t);
    CHECK(r == 0 && t.n == s.n && t.packet_id == s.packet_id);
    for (size_t i = 0; i < s.n; i++)
        CHECK(span_eq(t.filters[i].filter, s.filters[i].filter) &&
              t.filters[i].options == s.filters[i].options);
    props_same(&s.props, &t.props);
}

static void check_ack(struct body b, uint8_t type, uint8_t level)
{
    struct mqtt_ack a, c;
    if (mqtt_decode_ack(b.p, b.n, type, level, &a) != 0)
        return;
    CHECK(a.packet_id != 0 && (level == 5 || a.reason == 0));
    props_in(&a.props, b);
    long n = mqtt_encode_ack(g_buf, sizeof g_buf, type, level, a.packet_id, a.reason);
    CHECK(n == (level == 5 && a.reason ? 5 : 4));
    struct mqtt_fixed fh;
    struct body b2 = reencoded(g_buf, n, type, &fh);
    CHECK(mqtt_decode_ack(b2.p, b2.n, type, level, &c) == 0);
    CHECK(c.packet_id == a.packet_id && c.reason == a.reason && c.props.present == 0);
}

static void check_suback(struct body b, uint8_t type, uint8_t level)
{
    struct mqtt_suback s, t;
    if (mqtt_decode_suback(b.p, b.n, type, level, &s) != 0)
        return;
    span_in(s.reasons, b);
    props_in(&s.props, b);
    CHECK(s.packet_id != 0);
    CHECK(s.reasons.len > 0 || (type == MQTT_UNSUBACK && level == 4));
    long n = mqtt_encode_suback(g_buf, sizeof g_buf, type, level, s.packet_id, s.reasons.ptr,
                                s.reasons.len);
    struct mqtt_fixed fh;
    struct body b2 = reencoded(g_buf, n, type, &fh);
    CHECK(mqtt_decode_suback(b2.p, b2.n, type, level, &t) == 0);
    CHECK(t.packet_id == s.packet_id && span_eq(t.reasons, s.reasons));
}

static void check_connack(struct body b, uint8_t level)
{
    struct mqtt_connack c, d;
    if (mqtt_decode_connack(b.p, b.n, level, &c) != 0)
        return;
    props_in(&c.props, b);
    CHECK(c.session_present <= 1 && (!c.session_present || c.reason == 0));
    struct mqtt_props_out o;
    props_to_out(&c.props, &o);
    long n = mqtt_encode_connack(g_buf, sizeof g_buf, level, c.session_present, c.reason, &o);
    struct mqtt_fixed fh;
    struct body b2 = reencoded(g_buf, n, MQTT_CONNACK, &fh);
    CHECK(mqtt_decode_connack(b2.p, b2.n, level, &d) == 0);
    CHECK(d.session_present == c.session_present && d.reason == c.reason);
    props_same(&c.props, &d.props);
}

static void check_disconnect(struct body b, uint8_t type, uint8_t level)
{
    struct mqtt_disconnect d, e;
    int r = type == MQTT_AUTH ? mqtt_decode_auth(b.p, b.n, &d)
                              : mqtt_decode_disconnect(b.p, b.n, level, &d);
    if (r != 0)
        return;
    props_in(&d.props, b);
    if (type != MQTT_DISCONNECT)
        return;
    CHECK(level == 5 || (b.n == 0 && d.reason == 0));
    long n = mqtt_encode_disconnect(g_buf, sizeof g_buf, level, d.reason, d.props.reason_string);
    struct mqtt_fixed fh;
    struct body b2 = reencoded(g_buf, n, MQTT_DISCONNECT, &fh);
    CHECK(mqtt_decode_disconnect(b2.p, b2.n, level, &e) == 0);
    CHECK(e.reason == d.reason && span_eq(e.props.reason_string, d.props.reason_string));
}

static void check_body(const struct mqtt_fixed *fh, struct body b, uint8_t level)
{
    switch (fh->type) {
    case MQTT_CONNECT: check_connect(b); break;
    case MQTT_CONNACK: check_connack(b, level); break;
    case MQTT_PUBLISH: check_publish(b, fh->flags, level); break;
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP: check_ack(b, fh->type, level); break;
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE: check_sub(b, fh->type, level); break;
    case MQTT_SUBACK:
    case MQTT_UNSUBACK: check_suback(b, fh->type, level); break;
    case MQTT_DISCONNECT:
    case MQTT_AUTH: check_disconnect(b, fh->type, level); break;
    default: CHECK(b.n == 0); break; /* PINGREQ / PINGRESP */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const uint32_t maxes[4] = {0, 64, 1024, 65536};
    uint32_t max_packet = maxes[data[0] & 3];
    const uint8_t *s = data + 1;
    size_t n = size - 1;

    /* Random bytes as a topic and a filter too. */
    size_t half = n / 2;
    topic_checks((struct mqtt_span){s, half}, (struct mqtt_span){s + half, n - half});
    if (mqtt_utf8_valid(s, n))
        for (size_t i = 0; i < n; i++)
            CHECK(s[i] != 0 && s[i] != 0xC0 && s[i] != 0xC1 && s[i] < 0xF5);

    size_t off = 0;
    while (off < n) {
        struct mqtt_fixed fh;
        long prev = MQTT_NEED_MORE;
        /* Prefix consistency: once an answer comes it stays. */
        for (size_t k = 0; k <= MQTT_FIXED_HEADER_MAX && k <= n - off; k++) {
            long r = mqtt_packet_size(s + off, k, max_packet, &fh);
            CHECK(prev == MQTT_NEED_MORE || r == prev);
            prev = r;
        }
        long r = mqtt_packet_size(s + off, n - off, max_packet, &fh);
        CHECK(r == prev || prev == MQTT_NEED_MORE);
        if (r <= 0) {
            CHECK(r >= MQTT_ERR_BAD_FLAGS || r == MQTT_ERR_QOS);
            break;
        }
        CHECK(fh.header_len >= 2 && fh.header_len <= MQTT_FIXED_HEADER_MAX);
        CHECK((unsigned long)r == (unsigned long)fh.header_len + fh.remaining);
        CHECK(max_packet == 0 || (unsigned long)r <= max_packet);
        CHECK(mqtt_packet_size(s + off, n - off, (uint32_t)r, &fh) == r);
        CHECK(mqtt_packet_size(s + off, n - off, (uint32_t)r - 1, &fh) == MQTT_ERR_TOO_LARGE);
        if ((size_t)r > n - off)
            break;
        struct body b = {s + off + fh.header_len, fh.remaining};
        check_body(&fh, b, 4);
        if (fh.type != MQTT_CONNECT)
            check_body(&fh, b, 5);
        off += (size_t)r;
    }
    return 0;
}
