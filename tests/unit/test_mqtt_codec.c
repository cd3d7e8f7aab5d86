/* test_mqtt_codec.c — Check suite for relay/mtp/mqtt_codec (MQTT 3.1.1 and 5.0).
 *
 * Every decoder input is first copied so that it ends exactly at a PROT_NONE page
 * (guard_place), so reading even one byte past a packet faults, with or without ASan. Packets
 * are hand-written bytes (literals, or built field by field with struct bb, never with the
 * encoders under test); the property tests carry their own copy of the MQTT 5.0 property
 * table, so a wrong entry in the codec's table shows up as a disagreement.
 */
#include "relay/mtp/mqtt_codec.h"

#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/guard_page.h"

/* ------------------------------------------------------------------ helpers */

struct pkt {
    const uint8_t *b;
    size_t n;
};
#define PKT(...) {(const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})}

static struct mqtt_span sp(const char *s)
{
    struct mqtt_span r = {(const uint8_t *)s, strlen(s)};
    return r;
}

static int span_is(struct mqtt_span s, const char *want)
{
    size_t n = strlen(want);
    return s.ptr != NULL && s.len == n && memcmp(s.ptr, want, n) == 0;
}

/* A byte builder for hand-made packets. */
struct bb {
    uint8_t b[8192];
    size_t n;
};
static void bb_u8(struct bb *b, unsigned v)
{
    ck_assert_uint_lt(b->n, sizeof b->b);
    b->b[b->n++] = (uint8_t)v;
}
static void bb_u16(struct bb *b, unsigned v)
{
    bb_u8(b, v >> 8);
    bb_u8(b, v & 0xFF);
}
static void bb_u32(struct bb *b, uint32_t v)
{
    bb_u16(b, v >> 16);
    bb_u16(b, v & 0xFFFF);
}
static void bb_raw(struct bb *b, const void *p, size_t n)
{
    ck_assert_uint_le(b->n + n, sizeof b->b);
    if (n > 0)
        memcpy(b->b + b->n, p, n);
    b->n += n;
}
static void bb_str(struct bb *b, const char *s)
{
    bb_u16(b, (unsigned)strlen(s));
    bb_raw(b, s, strlen(s));
}
/* Property list LIST (N bytes) with its one-byte length (N < 128 here). */
static void bb_props(struct bb *b, const uint8_t *list, size_t n)
{
    ck_assert_uint_lt(n, 128);
    bb_u8(b, (unsigned)n);
    bb_raw(b, list, n);
}
/* Whole packet: FIRST byte, remaining length (written by hand), BODY. */
static void bb_packet(struct bb *out, unsigned first, const struct bb *body)
{
    out->n = 0;
    bb_u8(out, first);
    size_t v = body->n;
    do {
        unsigned d = (unsigned)(v & 0x7F);
        v >>= 7;
        bb_u8(out, v ? d | 0x80 : d);
    } while (v);
    bb_raw(out, body->b, body->n);
}

union decoded {
    struct mqtt_connect c;
    struct mqtt_publish p;
    struct mqtt_subscribe s;
    struct mqtt_ack a;
    struct mqtt_disconnect d;
    struct mqtt_connack ca;
    struct mqtt_suback sa;
};

/* Size and decode a whole packet placed at the guard, with the decoder for its type. */
static int decode_any(const uint8_t *pkt, size_t n, uint8_t level, union decoded *u,
                      struct mqtt_fixed *fh)
{
    const uint8_t *g = guard_place(pkt, n);
    long sz = mqtt_packet_size(g, n, 0, fh);
    if (sz <= 0)
        return (int)sz;
    ck_assert_int_eq(sz, (long)n);
    const uint8_t *body = g + fh->header_len;
    size_t len = fh->remaining;
    switch (fh->type) {
    case MQTT_CONNECT: return mqtt_decode_connect(body, len, &u->c);
    case MQTT_CONNACK: return mqtt_decode_connack(body, len, level, &u->ca);
    case MQTT_PUBLISH: return mqtt_decode_publish(body, len, fh->flags, level, &u->p);
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP: return mqtt_decode_ack(body, len, fh->type, level, &u->a);
    case MQTT_SUBSCRIBE: return mqtt_decode_subscribe(body, len, level, &u->s);
    case MQTT_UNSUBSCRIBE: return mqtt_decode_unsubscribe(body, len, level, &u->s);
    case MQTT_SUBACK:
    case MQTT_UNSUBACK: return mqtt_decode_suback(body, len, fh->type, level, &u->sa);
    case MQTT_DISCONNECT: return mqtt_decode_disconnect(body, len, level, &u->d);
    case MQTT_AUTH: return mqtt_decode_auth(body, len, &u->d);
    default: return len == 0 ? 0 : MQTT_ERR_MALFORMED;
    }
}

static int decode_bb(const struct bb *p, uint8_t level, union decoded *u)
{
    struct mqtt_fixed fh;
    return decode_any(p->b, p->n, level, u, &fh);
}

/* ------------------------------------------------------------------ fixed header */

START_TEST(test_fixed_header_flags)
{
    struct mqtt_fixed fh;
    for (unsigned type = 0; type < 16; type++) {
        for (unsigned flags = 0; flags < 16; flags++) {
            uint8_t b[2] = {(uint8_t)(type << 4 | flags), 0};
            long r = mqtt_packet_size(guard_place(b, 2), 2, 0, &fh);
            long want;
            if (type == 0)
                want = MQTT_ERR_BAD_FLAGS;
            else if (type == MQTT_PUBLISH)
                want = ((flags >> 1) & 3) == 3             ? MQTT_ERR_QOS
                       : (flags & 8) && !((flags >> 1) & 3) ? MQTT_ERR_BAD_FLAGS
                                                             : 2;
            else if (type == MQTT_PUBREL || type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE)
                want = flags == 2 ? 2 : MQTT_ERR_BAD_FLAGS;
            else
                want = flags == 0 ? 2 : MQTT_ERR_BAD_FLAGS;
            ck_assert_msg(r == want, "type %u flags %u: %ld, want %ld", type, flags, r, want);
            /* The first byte alone already decides errors. */
            long r1 = mqtt_packet_size(guard_place(b, 1), 1, 0, &fh);
            ck_assert_int_eq(r1, want < 0 ? want : MQTT_NEED_MORE);
            if (r == 2) {
                ck_assert_uint_eq(fh.type, type);
                ck_assert_uint_eq(fh.flags, flags);
                ck_assert_uint_eq(fh.header_len, 2);
                ck_assert_uint_eq(fh.remaining, 0);
            }
        }
    }
    ck_assert_int_eq(mqtt_packet_size(NULL, 0, 0, &fh), MQTT_NEED_MORE);
    /* PINGREQ / PINGRESP never have a body. */
    uint8_t ping[2] = {0xC0, 0x01};
    ck_assert_int_eq(mqtt_packet_size(guard_place(ping, 2), 2, 0, &fh), MQTT_ERR_MALFORMED);
    ping[0] = 0xD0;
    ck_assert_int_eq(mqtt_packet_size(guard_place(ping, 2), 2, 0, &fh), MQTT_ERR_MALFORMED);
}
END_TEST

START_TEST(test_remaining_length_edges)
{
    const struct {
        struct pkt len; /* remaining-length bytes */
        uint32_t value;
    } ok[] = {
        {PKT(0x00), 0},
        {PKT(0x7F), 127},
        {PKT(0x80, 0x01), 128},
        {PKT(0xFF, 0x7F), 16383},
        {PKT(0x80, 0x80, 0x01), 16384},
        {PKT(0xFF, 0xFF, 0x7F), 2097151},
        {PKT(0x80, 0x80, 0x80, 0x01), 2097152},
        {PKT(0xFF, 0xFF, 0xFF, 0x7F), 268435455},
    };
    struct mqtt_fixed fh;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint8_t b[8] = {0x30};
        memcpy(b + 1, ok[i].len.b, ok[i].len.n);
        size_t hl = 1 + ok[i].len.n;
        for (size_t k = 0; k < hl; k++)
            ck_assert_int_eq(mqtt_packet_size(guard_place(b, k), k, 0, &fh), MQTT_NEED_MORE);
        long r = mqtt_packet_size(guard_place(b, hl), hl, 0, &fh);
        ck_assert_int_eq(r, (long)(hl + ok[i].value));
        ck_assert_uint_eq(fh.remaining, ok[i].value);
        ck_assert_uint_eq(fh.header_len, hl);
        /* Bytes after the header do not change the answer. */
        ck_assert_int_eq(mqtt_packet_size(guard_place(b, hl + 2), hl + 2, 0, &fh), r);
    }
    const struct pkt bad[] = {
        PKT(0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01), /* 5 bytes */
        PKT(0x30, 0x80, 0x80, 0x80, 0x80),       /* 4th byte continues */
        PKT(0x30, 0x80, 0x00),                   /* 0 in 2 bytes */
        PKT(0x30, 0xFF, 0x00),                   /* 127 in 2 bytes */
        PKT(0x30, 0x80, 0x80, 0x00),
        PKT(0x30, 0x80, 0x80, 0x80, 0x00),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long r = mqtt_packet_size(guard_place(bad[i].b, bad[i].n), bad[i].n, 0, &fh);
        ck_assert_msg(r == MQTT_ERR_REMAINING_LENGTH, "bad %zu: %ld", i, r);
    }
    /* The 5-byte case is known after 5 bytes, with nothing more needed. */
    ck_assert_int_eq(mqtt_packet_size(guard_place(bad[1].b, 5), 5, 0, &fh),
                     MQTT_ERR_REMAINING_LENGTH);
    ck_assert_int_eq(mqtt_packet_size(guard_place(bad[1].b, 4), 4, 0, &fh), MQTT_NEED_MORE);
}
END_TEST

START_TEST(test_max_packet_boundary)
{
    struct mqtt_fixed fh;
    uint8_t b[3] = {0x30, 0x80, 0x01}; /* 128-byte body: 131 bytes in all */
    const uint8_t *g = guard_place(b, 3);
    ck_assert_int_eq(mqtt_packet_size(g, 3, 131, &fh), 131);
    ck_assert_int_eq(mqtt_packet_size(g, 3, 130, &fh), MQTT_ERR_TOO_LARGE);
    ck_assert_int_eq(mqtt_packet_size(g, 3, 0, &fh), 131); /* 0 = no limit */
    ck_assert_int_eq(mqtt_packet_size(g, 3, 1, &fh), MQTT_ERR_TOO_LARGE);
    /* Without the body: the declared size decides. */
    uint8_t huge[5] = {0x30, 0xFF, 0xFF, 0xFF, 0x7F};
    ck_assert_int_eq(mqtt_packet_size(guard_place(huge, 5), 5, 1u << 20, &fh), MQTT_ERR_TOO_LARGE);
    ck_assert_int_eq(mqtt_packet_size(guard_place(huge, 5), 5, UINT32_MAX, &fh), 268435460L);
    uint8_t two[2] = {0xE0, 0x00};
    ck_assert_int_eq(mqtt_packet_size(guard_place(two, 2), 2, 2, &fh), 2);
    ck_assert_int_eq(mqtt_packet_size(guard_place(two, 2), 2, 1, &fh), MQTT_ERR_TOO_LARGE);
}
END_TEST

/* ------------------------------------------------------------------ every packet type */

START_TEST(test_connect_v311)
{
    const struct pkt full = PKT(
        0x10, 0x1F, 0, 4, 'M', 'Q', 'T', 'T', 4, 0xEE, 0, 60, 0, 3, 'c', 'i', 'd',
        0, 3, 'w', '/', 't', 0, 2, 'h', 'i', 0, 1, 'u', 0, 2, 'p', 'w');
    union decoded u;
    ck_assert_int_eq(decode_any(full.b, full.n, 4, &u, &(struct mqtt_fixed){0}), 0);
    struct mqtt_connect *c = &u.c;
    ck_assert_uint_eq(c->level, 4);
    ck_assert_int_eq(c->clean_start, 1);
    ck_assert_int_eq(c->will, 1);
    ck_assert_int_eq(c->will_qos, 1);
    ck_assert_int_eq(c->will_retain, 1);
    ck_assert_int_eq(c->has_username, 1);
    ck_assert_int_eq(c->has_password, 1);
    ck_assert_uint_eq(c->keep_alive, 60);
    ck_assert(span_is(c->client_id, "cid"));
    ck_assert(span_is(c->will_topic, "w/t"));
    ck_assert(span_is(c->will_payload, "hi"));
    ck_assert(span_is(c->username, "u"));
    ck_assert(span_is(c->password, "pw"));
    ck_assert_uint_eq(c->props.present, 0);
    ck_assert_uint_eq(c->will_props.present, 0);

    const struct pkt min = PKT(0x10, 0x0C, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x00, 0, 0, 0, 0);
    ck_assert_int_eq(decode_any(min.b, min.n, 4, &u, &(struct mqtt_fixed){0}), 0);
    ck_assert_int_eq(u.c.clean_start, 0);
    ck_assert_uint_eq(u.c.client_id.len, 0);
    ck_assert_ptr_nonnull(u.c.client_id.ptr);
    ck_assert_ptr_null(u.c.username.ptr);
    ck_assert_ptr_null(u.c.will_topic.ptr);
}
END_TEST

/* v5 CONNECT body with the given flags, properties and payload fields. */
static void connect5(struct bb *pkt, unsigned flags, const uint8_t *props, size_t np,
                     const char *cid, const uint8_t *wprops, size_t nw, const char *wtopic,
                     const char *user, const char *pass)
{
    struct bb b = {.n = 0};
    bb_str(&b, "MQTT");
    bb_u8(&b, 5);
    bb_u8(&b, flags);
    bb_u16(&b, 30);
    bb_props(&b, props, np);
    bb_str(&b, cid);
    if (flags & 0x04) {
        bb_props(&b, wprops, nw);
        bb_str(&b, wtopic);
        bb_str(&b, "bye");
    }
    if (flags & 0x80)
        bb_str(&b, user);
    if (flags & 0x40)
        bb_str(&b, pass);
    bb_packet(pkt, 0x10, &b);
}

START_TEST(test_connect_v5)
{
    static const uint8_t props[] = {
        0x11, 0, 0, 0, 60, 0x19, 1, 0x17, 0, 0x21, 0, 10, 0x22, 0, 5, 0x27, 0, 1, 0, 0,
        0x26, 0, 15, 'u', 's', 'p', '-', 'e', 'n', 'd', 'p', 'o', 'i', 'n', 't', '-', 'i', 'd',
        0, 10, 'p', 'r', 'o', 't', 'o', ':', ':', 'a', '1', 'b',
        0x15, 0, 1, 'm', 0x16, 0, 2, 1, 2};
    static const uint8_t wprops[] = {0x18, 0, 0, 0, 5, 0x01, 1, 0x02, 0, 0, 1, 0,
                                     0x03, 0, 1, 'c', 0x08, 0, 3, 'r', '/', 't',
                                     0x09, 0, 1, 'z', 0x26, 0, 1, 'a', 0, 1, 'b'};
    struct bb p;
    connect5(&p, 0xC6 | 0x10 | 0x20, props, sizeof props, "", wprops, sizeof wprops, "will/t",
             "user", "");
    union decoded u;
    ck_assert_int_eq(decode_bb(&p, 5, &u), 0);
    struct mqtt_connect *c = &u.c;
    ck_assert_uint_eq(c->level, 5);
    ck_assert_int_eq(c->will_qos, 2);
    ck_assert_int_eq(c->will_retain, 1);
    ck_assert_uint_eq(c->keep_alive, 30);
    ck_assert_uint_eq(c->client_id.len, 0);
    ck_assert(MQTT_HAS(&c->props, MQTT_P_SESSION_EXPIRY));
    ck_assert_uint_eq(c->props.session_expiry, 60);
    ck_assert_uint_eq(c->props.request_response_info, 1);
    ck_assert(MQTT_HAS(&c->props, MQTT_P_REQUEST_PROBLEM_INFO));
    ck_assert_uint_eq(c->props.request_problem_info, 0);
    ck_assert_uint_eq(c->props.receive_maximum, 10);
    ck_assert_uint_eq(c->props.topic_alias_max, 5);
    ck_assert_uint_eq(c->props.max_packet_size, 65536);
    ck_assert(span_is(c->props.auth_method, "m"));
    ck_assert_uint_eq(c->props.auth_data.len, 2);
    const struct mqtt_user_prop *up = mqtt_user_prop_get(&c->props, "usp-endpoint-id");
    ck_assert_ptr_nonnull(up);
    ck_assert(span_is(up->value, "proto::a1b"));
    ck_assert_ptr_null(mqtt_user_prop_get(&c->props, "usp-endpoint"));
    ck_assert_uint_eq(c->will_props.will_delay, 5);
    ck_assert_uint_eq(c->will_props.payload_format, 1);
    ck_assert_uint_eq(c->will_props.message_expiry, 256);
    ck_assert(span_is(c->will_props.content_type, "c"));
    ck_assert(span_is(c->will_props.response_topic, "r/t"));
    ck_assert(span_is(c->will_props.correlation_data, "z"));
    ck_assert_uint_eq(c->will_props.n_user, 1);
    ck_assert(span_is(c->will_topic, "will/t"));
    ck_assert(span_is(c->will_payload, "bye"));
    ck_assert(span_is(c->username, "user"));
    ck_assert_int_eq(c->has_password, 1);
    ck_assert_uint_eq(c->password.len, 0);

    /* v5 allows a password without a user name; 3.1.1 does not. */
    connect5(&p, 0x42, NULL, 0, "x", NULL, 0, NULL, NULL, "pw");
    ck_assert_int_eq(decode_bb(&p, 5, &u), 0);
    ck_assert(span_is(u.c.password, "pw"));
    const struct pkt pw3 = PKT(0x10, 0x10, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x42, 0, 0,
                                      0, 0, 0, 2, 'p', 'w');
    ck_assert_int_eq(decode_any(pw3.b, pw3.n, 4, &u, &(struct mqtt_fixed){0}),
                     MQTT_ERR_MALFORMED);
}
END_TEST

START_TEST(test_connect_errors)
{
    union decoded u;
    struct mqtt_fixed fh;
    const struct {
        struct pkt p;
        int want;
        uint8_t level; /* out->level expected on PROTOCOL_* */
    } v[] = {
        {PKT(0x10, 0x0C, 0, 4, 'M', 'Q', 'T', 't', 4, 2, 0, 0, 0, 0), MQTT_ERR_PROTOCOL_NAME, 4},
        {PKT(0x10, 0x0E, 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3, 2, 0, 0, 0, 0),
         MQTT_ERR_PROTOCOL_NAME, 3},
        {PKT(0x10, 0x06, 0, 4, 'M', 'Q', 'T', 's'), MQTT_ERR_PROTOCOL_NAME, 0},
        {PKT(0x10, 0x0C, 0, 4, 'M', 'Q', 'T', 'T', 3, 2, 0, 0, 0, 0), MQTT_ERR_PROTOCOL_LEVEL, 3},
        {PKT(0x10, 0x0C, 0, 4, 'M', 'Q', 'T', 'T', 6, 2, 0, 0, 0, 0), MQTT_ERR_PROTOCOL_LEVEL, 6},
        /* reserved flag */
        {PKT(0x10, 0x0C, 0, 4, 'M', 'Q', 'T', 'T', 4, 3, 0, 0, 0, 0), MQTT_ERR_MALFORMED, 4},
        /* will QoS / retain without will */
        {PKT(0x10, 0x0C, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x0A, 0, 0, 0, 0), MQTT_ERR_MALFORMED, 4},
        {PKT(0x10, 0x0C, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x22, 0, 0, 0, 0), MQTT_ERR_MALFORMED, 4},
        /* will QoS 3 */
        {PKT(0x10, 0x11, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x1E, 0, 0, 0, 0, 0, 1, 't', 0, 0),
         MQTT_ERR_QOS, 4},
        /* will topic with a wildcard, and empty */
        {PKT(0x10, 0x11, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x06, 0, 0, 0, 0, 0, 1, '#', 0, 0),
         MQTT_ERR_TOPIC, 4},
        {PKT(0x10, 0x10, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x06, 0, 0, 0, 0, 0, 0, 0, 0),
         MQTT_ERR_TOPIC, 4},
        /* client id not UTF-8 */
        {PKT(0x10, 0x0D, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 0, 0, 1, 0xC0), MQTT_ERR_UTF8, 4},
        /* user name with a NUL */
        {PKT(0x10, 0x0F, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x82, 0, 0, 0, 0, 0, 1, 0),
         MQTT_ERR_UTF8, 4},
        /* truncated: user flag without the field; client id length past the end */
        {PKT(0x10, 0x0C, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x82, 0, 0, 0, 0), MQTT_ERR_MALFORMED, 4},
        {PKT(0x10, 0x0C, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 0, 0, 1), MQTT_ERR_MALFORMED, 4},
        /* a byte left over */
        {PKT(0x10, 0x0D, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 0, 0, 0, 0), MQTT_ERR_MALFORMED,
         4},
        /* v5: property not allowed in CONNECT (Topic Alias), duplicate, bad value */
        {PKT(0x10, 0x10, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 0, 3, 0x23, 0, 1, 0, 0),
         MQTT_ERR_PROPERTY, 5},
        {PKT(0x10, 0x11, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 0, 4, 0x19, 1, 0x19, 1, 0, 0),
         MQTT_ERR_PROPERTY, 5},
        {PKT(0x10, 0x0F, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 0, 2, 0x19, 2, 0, 0),
         MQTT_ERR_PROPERTY, 5},
        /* v5: property length past the end */
        {PKT(0x10, 0x0D, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 0, 9, 0, 0), MQTT_ERR_MALFORMED, 5},
        /* v5: will property that is CONNECT-only */
        {PKT(0x10, 0x15, 0, 4, 'M', 'Q', 'T', 'T', 5, 6, 0, 0, 0, 0, 0, 2, 0x19, 1, 0, 1, 't',
             0, 0),
         MQTT_ERR_PROPERTY, 5},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        int r = decode_any(v[i].p.b, v[i].p.n, 4, &u, &fh);
        ck_assert_msg(r == v[i].want, "case %zu: %d (%s), want %d", i, r, mqtt_err_name(r),
                      v[i].want);
        if (r == MQTT_ERR_PROTOCOL_LEVEL || r == MQTT_ERR_PROTOCOL_NAME)
            ck_assert_uint_eq(u.c.level, v[i].level);
    }
}
END_TEST

START_TEST(test_publish)
{
    union decoded u;
    struct mqtt_fixed fh;
    const struct pkt q0 = PKT(0x31, 0x05, 0, 1, 't', 'h', 'i');
    ck_assert_int_eq(decode_any(q0.b, q0.n, 4, &u, &fh), 0);
    ck_assert_uint_eq(u.p.qos, 0);
    ck_assert_uint_eq(u.p.retain, 1);
    ck_assert_uint_eq(u.p.dup, 0);
    ck_assert_uint_eq(u.p.packet_id, 0);
    ck_assert(span_is(u.p.topic, "t"));
    ck_assert(span_is(u.p.payload, "hi"));

    const struct pkt q1 = PKT(0x32, 0x09, 0, 3, 'a', '/', 'b', 0, 7, 'x', 'y');
    ck_assert_int_eq(decode_any(q1.b, q1.n, 4, &u, &fh), 0);
    ck_assert_uint_eq(u.p.qos, 1);
    ck_assert_uint_eq(u.p.packet_id, 7);
    ck_assert(span_is(u.p.topic, "a/b"));
    ck_assert(span_is(u.p.payload, "xy"));
    /* The same bytes at level 5 read "xy" as a property length of 'x' = 120: too long. */
    ck_assert_int_eq(decode_any(q1.b, q1.n, 5, &u, &fh), MQTT_ERR_MALFORMED);

    const struct pkt q2 = PKT(0x3C, 0x17, 0, 1, 't', 0, 5, 0x10,
                                     0x03, 0, 7, 'u', 's', 'p', '.', 'm', 's', 'g',
                                     0x08, 0, 3, 'r', '/', 'x', 'P');
    ck_assert_int_eq(decode_any(q2.b, q2.n, 5, &u, &fh), 0);
    ck_assert_uint_eq(u.p.qos, 2);
    ck_assert_uint_eq(u.p.dup, 1);
    ck_assert_uint_eq(u.p.packet_id, 5);
    ck_assert(span_is(u.p.props.content_type, "usp.msg"));
    ck_assert(span_is(u.p.props.response_topic, "r/x"));
    ck_assert(span_is(u.p.payload, "P"));

    /* Empty topic: only v5 with a Topic Alias. */
    const struct pkt alias = PKT(0x30, 0x07, 0, 0, 3, 0x23, 0, 1, 'z');
    ck_assert_int_eq(decode_any(alias.b, alias.n, 5, &u, &fh), 0);
    ck_assert_uint_eq(u.p.topic.len, 0);
    ck_assert_uint_eq(u.p.props.topic_alias, 1);
    const struct pkt empty5 = PKT(0x30, 0x04, 0, 0, 0, 'z');
    ck_assert_int_eq(decode_any(empty5.b, empty5.n, 5, &u, &fh), MQTT_ERR_TOPIC);
    const struct pkt empty3 = PKT(0x30, 0x03, 0, 0, 'z');
    ck_assert_int_eq(decode_any(empty3.b, empty3.n, 4, &u, &fh), MQTT_ERR_TOPIC);

    /* Empty payload: a span at the end of the body. */
    const struct pkt nopay = PKT(0x30, 0x03, 0, 1, 't');
    ck_assert_int_eq(decode_any(nopay.b, nopay.n, 4, &u, &fh), 0);
    ck_assert_uint_eq(u.p.payload.len, 0);
    ck_assert_ptr_eq(u.p.payload.ptr, guard_end());

    const struct {
        struct pkt p;
        uint8_t level;
        int want;
    } bad[] = {
        {PKT(0x30, 0x03, 0, 1, '+'), 4, MQTT_ERR_TOPIC},
        {PKT(0x30, 0x05, 0, 3, 'a', '/', '#'), 4, MQTT_ERR_TOPIC},
        {PKT(0x30, 0x03, 0, 1, 0x00), 4, MQTT_ERR_UTF8},
        {PKT(0x32, 0x05, 0, 1, 't', 0, 0), 4, MQTT_ERR_PACKET_ID},
        {PKT(0x34, 0x05, 0, 1, 't', 0, 0), 5, MQTT_ERR_PACKET_ID},
        {PKT(0x32, 0x04, 0, 1, 't', 0), 4, MQTT_ERR_MALFORMED},
        {PKT(0x30, 0x02, 0, 3), 4, MQTT_ERR_MALFORMED},
        {PKT(0x36, 0x03, 0, 1, 't'), 4, MQTT_ERR_QOS},
        {PKT(0x38, 0x03, 0, 1, 't'), 4, MQTT_ERR_BAD_FLAGS},
        /* v5: CONNECT-only property; topic alias 0; bad payload format; missing props */
        {PKT(0x30, 0x06, 0, 1, 't', 2, 0x19, 1), 5, MQTT_ERR_PROPERTY},
        {PKT(0x30, 0x07, 0, 1, 't', 3, 0x23, 0, 0), 5, MQTT_ERR_PROPERTY},
        {PKT(0x30, 0x06, 0, 1, 't', 2, 0x01, 2), 5, MQTT_ERR_PROPERTY},
        {PKT(0x30, 0x03, 0, 1, 't'), 5, MQTT_ERR_MALFORMED},
        /* v5: response topic with a wildcard, or not UTF-8 */
        {PKT(0x30, 0x0A, 0, 1, 't', 6, 0x08, 0, 3, 'a', '/', '+'), 5, MQTT_ERR_PROPERTY},
        {PKT(0x30, 0x08, 0, 1, 't', 4, 0x08, 0, 1, 0xFF), 5, MQTT_ERR_UTF8},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = decode_any(bad[i].p.b, bad[i].p.n, bad[i].level, &u, &fh);
        ck_assert_msg(r == bad[i].want, "bad %zu: %d (%s)", i, r, mqtt_err_name(r));
    }
    /* The decoder checks FLAGS itself too, and its level argument. */
    ck_assert_int_eq(mqtt_decode_publish(guard_place("\0\1t", 3), 3, 0x06, 4, &u.p), MQTT_ERR_QOS);
    ck_assert_int_eq(mqtt_decode_publish(guard_place("\0\1t", 3), 3, 0x08, 4, &u.p),
                     MQTT_ERR_BAD_FLAGS);
    ck_assert_int_eq(mqtt_decode_publish(guard_place("\0\1t", 3), 3, 0, 3, &u.p),
                     MQTT_ERR_PROTOCOL_LEVEL);
}
END_TEST

START_TEST(test_publish_subscription_ids)
{
    union decoded u;
    struct mqtt_fixed fh;
    /* Server-to-client PUBLISH may repeat Subscription Identifier: first one kept. */
    const struct pkt two = PKT(0x30, 0x0A, 0, 1, 't', 5, 0x0B, 0x02, 0x0B, 0x81, 0x01,
                                      'x');
    ck_assert_int_eq(decode_any(two.b, two.n, 5, &u, &fh), 0);
    ck_assert(MQTT_HAS(&u.p.props, MQTT_P_SUBSCRIPTION_ID));
    ck_assert_uint_eq(u.p.props.subscription_id, 2);
    /* Zero, non-minimal, or too long (> 4 bytes) are rejected. */
    const struct pkt zero = PKT(0x30, 0x06, 0, 1, 't', 2, 0x0B, 0x00);
    ck_assert_int_eq(decode_any(zero.b, zero.n, 5, &u, &fh), MQTT_ERR_PROPERTY);
    const struct pkt nonmin = PKT(0x30, 0x07, 0, 1, 't', 3, 0x0B, 0x81, 0x00);
    ck_assert_int_eq(decode_any(nonmin.b, nonmin.n, 5, &u, &fh), MQTT_ERR_MALFORMED);
    const struct pkt five = PKT(0x30, 0x0A, 0, 1, 't', 6, 0x0B, 0xFF, 0xFF, 0xFF, 0xFF,
                                       0x01);
    ck_assert_int_eq(decode_any(five.b, five.n, 5, &u, &fh), MQTT_ERR_MALFORMED);
    const struct pkt max = PKT(0x30, 0x09, 0, 1, 't', 5, 0x0B, 0xFF, 0xFF, 0xFF, 0x7F);
    ck_assert_int_eq(decode_any(max.b, max.n, 5, &u, &fh), 0);
    ck_assert_uint_eq(u.p.props.subscription_id, 268435455);
    /* In SUBSCRIBE at most once. */
    const struct pkt sub2 = PKT(0x82, 0x0B, 0, 1, 4, 0x0B, 1, 0x0B, 2, 0, 1, 't', 0);
    ck_assert_int_eq(decode_any(sub2.b, sub2.n, 5, &u, &fh), MQTT_ERR_PROPERTY);
}
END_TEST

START_TEST(test_acks)
{
    union decoded u;
    struct mqtt_fixed fh;
    const struct {
        struct pkt p;
        uint8_t level, type;
        uint16_t id;
        uint8_t reason;
    } ok[] = {
        {PKT(0x40, 0x02, 0, 1), 4, MQTT_PUBACK, 1, 0},
        {PKT(0x50, 0x02, 0, 2), 4, MQTT_PUBREC, 2, 0},
        {PKT(0x62, 0x02, 0, 3), 4, MQTT_PUBREL, 3, 0},
        {PKT(0x70, 0x02, 0xFF, 0xFF), 4, MQTT_PUBCOMP, 65535, 0},
        {PKT(0x40, 0x02, 0, 1), 5, MQTT_PUBACK, 1, 0},
        {PKT(0x40, 0x03, 0, 1, 0x10), 5, MQTT_PUBACK, 1, 0x10},
        {PKT(0x50, 0x09, 0, 2, 0x80, 5, 0x1F, 0, 2, 'n', 'o'), 5, MQTT_PUBREC, 2, 0x80},
        {PKT(0x62, 0x02, 0, 3), 5, MQTT_PUBREL, 3, 0},
        {PKT(0x62, 0x04, 0, 3, 0x92, 0), 5, MQTT_PUBREL, 3, 0x92},
        {PKT(0x70, 0x03, 0, 4, 0x92), 5, MQTT_PUBCOMP, 4, 0x92},
        {PKT(0x70, 0x0C, 0, 4, 0, 8, 0x26, 0, 1, 'k', 0, 1, 'v', 0x26), 5, 0, 0, 0}, /* bad */
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int r = decode_any(ok[i].p.b, ok[i].p.n, ok[i].level, &u, &fh);
        if (ok[i].type == 0) {
            ck_assert_int_eq(r, MQTT_ERR_MALFORMED); /* property runs past its list */
            continue;
        }
        ck_assert_msg(r == 0, "ack %zu: %s", i, mqtt_err_name(r));
        ck_assert_uint_eq(fh.type, ok[i].type);
        ck_assert_uint_eq(u.a.packet_id, ok[i].id);
        ck_assert_uint_eq(u.a.reason, ok[i].reason);
    }
    ck_assert(span_is(u.a.props.reason_string, "") == 0);
    const struct pkt withrs = PKT(0x50, 0x09, 0, 2, 0x80, 5, 0x1F, 0, 2, 'n', 'o');
    ck_assert_int_eq(decode_any(withrs.b, withrs.n, 5, &u, &fh), 0);
    ck_assert(span_is(u.a.props.reason_string, "no"));

    const struct {
        struct pkt p;
        uint8_t level;
        int want;
    } bad[] = {
        {PKT(0x40, 0x02, 0, 0), 4, MQTT_ERR_PACKET_ID},
        {PKT(0x40, 0x03, 0, 1, 0), 4, MQTT_ERR_MALFORMED},   /* 3.1.1: exactly 2 bytes */
        {PKT(0x40, 0x01, 0), 5, MQTT_ERR_MALFORMED},
        {PKT(0x40, 0x03, 0, 1, 0x92), 5, MQTT_ERR_MALFORMED}, /* PUBREL code in PUBACK */
        {PKT(0x62, 0x03, 0, 1, 0x10), 5, MQTT_ERR_MALFORMED}, /* PUBACK code in PUBREL */
        {PKT(0x40, 0x05, 0, 1, 0, 1, 0x1F), 5, MQTT_ERR_MALFORMED}, /* value missing */
        {PKT(0x40, 0x06, 0, 1, 0, 2, 0x19, 1), 5, MQTT_ERR_PROPERTY},
        {PKT(0x40, 0x06, 0, 1, 0, 2, 0x03, 0), 5, MQTT_ERR_PROPERTY}, /* Content Type */
        {PKT(0x40, 0x05, 0, 1, 0, 0, 0), 5, MQTT_ERR_MALFORMED},      /* left over */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = decode_any(bad[i].p.b, bad[i].p.n, bad[i].level, &u, &fh);
        ck_assert_msg(r == bad[i].want, "bad ack %zu: %d", i, r);
    }
    ck_assert_int_eq(mqtt_decode_ack(guard_place("\0\1", 2), 2, MQTT_PUBLISH, 4, &u.a),
                     MQTT_ERR_BAD_FLAGS);
    ck_assert_int_eq(mqtt_decode_ack(guard_place("\0\1", 2), 2, MQTT_PUBACK, 0, &u.a),
                     MQTT_ERR_PROTOCOL_LEVEL);
}
END_TEST

START_TEST(test_subscribe)
{
    union decoded u;
    struct mqtt_fixed fh;
    const struct pkt s3 = PKT(0x82, 0x0C, 0, 10, 0, 3, 'a', '/', '#', 1, 0, 1, '+', 0);
    ck_assert_int_eq(decode_any(s3.b, s3.n, 4, &u, &fh), 0);
    ck_assert_uint_eq(u.s.packet_id, 10);
    ck_assert_uint_eq(u.s.n, 2);
    ck_assert(span_is(u.s.filters[0].filter, "a/#"));
    ck_assert_uint_eq(u.s.filters[0].options, 1);
    ck_assert(span_is(u.s.filters[1].filter, "+"));
    ck_assert_uint_eq(u.s.filters[1].options, 0);

    const struct pkt s5 = PKT(0x82, 0x18, 0, 11, 2, 0x0B, 5, 0, 3, 'a', '/', '+', 0x2D,
                                     0, 10, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 'x', 2);
    ck_assert_int_eq(decode_any(s5.b, s5.n, 5, &u, &fh), 0);
    ck_assert_uint_eq(u.s.packet_id, 11);
    ck_assert_uint_eq(u.s.props.subscription_id, 5);
    ck_assert_uint_eq(u.s.n, 2);
    uint8_t o = u.s.filters[0].options;
    ck_assert_uint_eq(MQTT_SUB_QOS(o), 1);
    ck_assert(o & MQTT_SUB_NO_LOCAL);
    ck_assert(o & MQTT_SUB_RETAIN_AS_PUBLISHED);
    ck_assert_uint_eq(MQTT_SUB_RETAIN_HANDLING(o), 2);
    ck_assert(span_is(u.s.filters[1].filter, "$share/g/x"));
    /* The v5 options byte means nothing to 3.1.1. */
    ck_assert_int_eq(decode_any(s5.b, s5.n, 4, &u, &fh), MQTT_ERR_MALFORMED);

    const struct pkt u3 = PKT(0xA2, 0x07, 0, 12, 0, 3, 'a', '/', '#');
    ck_assert_int_eq(decode_any(u3.b, u3.n, 4, &u, &fh), 0);
    ck_assert_uint_eq(u.s.packet_id, 12);
    ck_assert_uint_eq(u.s.n, 1);
    ck_assert(span_is(u.s.filters[0].filter, "a/#"));
    ck_assert_uint_eq(u.s.filters[0].options, 0);
    const struct pkt u5 = PKT(0xA2, 0x06, 0, 13, 0, 0, 1, 'x');
    ck_assert_int_eq(decode_any(u5.b, u5.n, 5, &u, &fh), 0);
    ck_assert(span_is(u.s.filters[0].filter, "x"));

    const struct {
        struct pkt p;
        uint8_t level;
        int want;
    } bad[] = {
        {PKT(0x82, 0x02, 0, 1), 4, MQTT_ERR_NO_FILTERS},
        {PKT(0x82, 0x03, 0, 1, 0), 5, MQTT_ERR_NO_FILTERS},
        {PKT(0xA2, 0x02, 0, 1), 4, MQTT_ERR_NO_FILTERS},
        {PKT(0x82, 0x06, 0, 0, 0, 1, 'x', 0), 4, MQTT_ERR_PACKET_ID},
        {PKT(0xA2, 0x05, 0, 0, 0, 1, 'x'), 4, MQTT_ERR_PACKET_ID},
        {PKT(0x82, 0x06, 0, 1, 0, 1, 'x', 3), 4, MQTT_ERR_QOS},
        {PKT(0x82, 0x06, 0, 1, 0, 1, 'x', 4), 4, MQTT_ERR_MALFORMED},
        {PKT(0x82, 0x06, 0, 1, 0, 1, 'x', 0x80), 4, MQTT_ERR_MALFORMED},
        {PKT(0x82, 0x07, 0, 1, 0, 0, 1, 'x', 0x40), 5, MQTT_ERR_MALFORMED},
        {PKT(0x82, 0x07, 0, 1, 0, 0, 1, 'x', 0x30), 5, MQTT_ERR_MALFORMED}, /* retain hdl 3 */
        {PKT(0x82, 0x07, 0, 1, 0, 0, 1, 'x', 0x03), 5, MQTT_ERR_QOS},
        {PKT(0x82, 0x05, 0, 1, 0, 1, 'x'), 4, MQTT_ERR_MALFORMED}, /* options missing */
        {PKT(0x82, 0x05, 0, 1, 0, 0, 1), 4, MQTT_ERR_TOPIC},        /* empty filter */
        {PKT(0x82, 0x07, 0, 1, 0, 2, 'a', '#', 0), 4, MQTT_ERR_TOPIC},
        {PKT(0x82, 0x07, 0, 1, 0, 2, '#', '/', 0), 4, MQTT_ERR_TOPIC},
        {PKT(0x82, 0x07, 0, 1, 0, 2, 'a', '+', 0), 4, MQTT_ERR_TOPIC},
        {PKT(0x82, 0x06, 0, 1, 0, 1, 0xFE, 0), 4, MQTT_ERR_UTF8},
        {PKT(0xA2, 0x06, 0, 1, 0, 1, '#', 0), 4, MQTT_ERR_MALFORMED}, /* byte left */
        {PKT(0xA2, 0x06, 0, 1, 0, 0, 1, '#'), 5, 0},
        /* v5 shared subscriptions: bad share name, no inner filter, No Local */
        {PKT(0x82, 0x0E, 0, 1, 0, 0, 8, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', 0), 5,
         MQTT_ERR_TOPIC},
        {PKT(0x82, 0x10, 0, 1, 0, 0, 10, '$', 's', 'h', 'a', 'r', 'e', '/', '+', '/', 'x', 0), 5,
         MQTT_ERR_TOPIC},
        {PKT(0x82, 0x10, 0, 1, 0, 0, 10, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 'x', 4), 5,
         MQTT_ERR_MALFORMED},
        /* ... which 3.1.1 treats as an ordinary filter. */
        {PKT(0x82, 0x0D, 0, 1, 0, 8, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', 0), 4, 0},
        /* v5: property allowed in SUBSCRIBE but not UNSUBSCRIBE */
        {PKT(0xA2, 0x08, 0, 1, 2, 0x0B, 1, 0, 1, 'x'), 5, MQTT_ERR_PROPERTY},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = decode_any(bad[i].p.b, bad[i].p.n, bad[i].level, &u, &fh);
        ck_assert_msg(r == bad[i].want, "bad sub %zu: %d (%s)", i, r, mqtt_err_name(r));
    }
}
END_TEST

START_TEST(test_subscribe_filter_cap)
{
    union decoded u;
    for (unsigned n = MQTT_MAX_FILTERS; n <= MQTT_MAX_FILTERS + 1; n++) {
        struct bb b = {.n = 0}, p;
        bb_u16(&b, 9);
        for (unsigned i = 0; i < n; i++) {
            bb_str(&b, "a/b");
            bb_u8(&b, 1);
        }
        bb_packet(&p, 0x82, &b);
        int r = decode_bb(&p, 4, &u);
        if (n == MQTT_MAX_FILTERS) {
            ck_assert_int_eq(r, 0);
            ck_assert_uint_eq(u.s.n, MQTT_MAX_FILTERS);
        } else {
            ck_assert_int_eq(r, MQTT_ERR_TOO_MANY);
        }
    }
}
END_TEST

START_TEST(test_disconnect_auth_ping)
{
    union decoded u;
    struct mqtt_fixed fh;
    const struct pkt d0 = PKT(0xE0, 0x00);
    ck_assert_int_eq(decode_any(d0.b, d0.n, 4, &u, &fh), 0);
    ck_assert_int_eq(decode_any(d0.b, d0.n, 5, &u, &fh), 0);
    ck_assert_uint_eq(u.d.reason, 0);
    const struct pkt d1 = PKT(0xE0, 0x01, 0x04);
    ck_assert_int_eq(decode_any(d1.b, d1.n, 4, &u, &fh), MQTT_ERR_MALFORMED);
    ck_assert_int_eq(decode_any(d1.b, d1.n, 5, &u, &fh), 0);
    ck_assert_uint_eq(u.d.reason, 4);
    const struct pkt d2 = PKT(0xE0, 0x07, 0x00, 5, 0x11, 0, 0, 0, 9);
    ck_assert_int_eq(decode_any(d2.b, d2.n, 5, &u, &fh), 0);
    ck_assert_uint_eq(u.d.props.session_expiry, 9);
    const struct pkt dsr = PKT(0xE0, 0x06, 0x9C, 4, 0x1C, 0, 1, 'h');
    ck_assert_int_eq(decode_any(dsr.b, dsr.n, 5, &u, &fh), 0);
    ck_assert(span_is(u.d.props.server_reference, "h"));
    const struct pkt dbad = PKT(0xE0, 0x01, 0x01);
    ck_assert_int_eq(decode_any(dbad.b, dbad.n, 5, &u, &fh), MQTT_ERR_MALFORMED);
    const struct pkt dprop = PKT(0xE0, 0x04, 0x00, 2, 0x19, 1);
    ck_assert_int_eq(decode_any(dprop.b, dprop.n, 5, &u, &fh), MQTT_ERR_PROPERTY);

    const struct pkt a0 = PKT(0xF0, 0x00);
    ck_assert_int_eq(decode_any(a0.b, a0.n, 5, &u, &fh), 0);
    const struct pkt a1 = PKT(0xF0, 0x0C, 0x18, 0x0A, 0x15, 0, 3, 'x', 'y', 'z',
                                     0x16, 0, 1, 'd');
    ck_assert_int_eq(decode_any(a1.b, a1.n, 5, &u, &fh), 0);
    ck_assert_uint_eq(u.d.reason, 0x18);
    ck_assert(span_is(u.d.props.auth_method, "xyz"));
    ck_assert(span_is(u.d.props.auth_data, "d"));
    const struct pkt areason = PKT(0xF0, 0x01, 0x18);
    ck_assert_int_eq(decode_any(areason.b, areason.n, 5, &u, &fh), MQTT_ERR_MALFORMED);
    const struct pkt abad = PKT(0xF0, 0x02, 0x80, 0);
    ck_assert_int_eq(decode_any(abad.b, abad.n, 5, &u, &fh), MQTT_ERR_MALFORMED);
    const struct pkt adata = PKT(0xF0, 0x06, 0x18, 4, 0x16, 0, 1, 'd');
    ck_assert_int_eq(decode_any(adata.b, adata.n, 5, &u, &fh), MQTT_ERR_PROPERTY);

    const struct pkt pr = PKT(0xC0, 0x00), ps = PKT(0xD0, 0x00);
    ck_assert_int_eq(decode_any(pr.b, pr.n, 4, &u, &fh), 0);
    ck_assert_uint_eq(fh.type, MQTT_PINGREQ);
    ck_assert_int_eq(decode_any(ps.b, ps.n, 5, &u, &fh), 0);
    ck_assert_uint_eq(fh.type, MQTT_PINGRESP);
}
END_TEST

START_TEST(test_connack_suback)
{
    union decoded u;
    struct mqtt_fixed fh;
    const struct pkt c3 = PKT(0x20, 0x02, 0x01, 0x00);
    ck_assert_int_eq(decode_any(c3.b, c3.n, 4, &u, &fh), 0);
    ck_assert_uint_eq(u.ca.session_present, 1);
    const struct pkt c3r = PKT(0x20, 0x02, 0x00, 0x05);
    ck_assert_int_eq(decode_any(c3r.b, c3r.n, 4, &u, &fh), 0);
    ck_assert_uint_eq(u.ca.reason, 5);
    const struct pkt c3bad = PKT(0x20, 0x02, 0x00, 0x06);
    ck_assert_int_eq(decode_any(c3bad.b, c3bad.n, 4, &u, &fh), MQTT_ERR_MALFORMED);
    const struct pkt c3sp = PKT(0x20, 0x02, 0x01, 0x02);
    ck_assert_int_eq(decode_any(c3sp.b, c3sp.n, 4, &u, &fh), MQTT_ERR_MALFORMED);
    const struct pkt c3fl = PKT(0x20, 0x02, 0x02, 0x00);
    ck_assert_int_eq(decode_any(c3fl.b, c3fl.n, 4, &u, &fh), MQTT_ERR_MALFORMED);
    const struct pkt c5 = PKT(0x20, 0x0A, 0, 0, 7, 0x12, 0, 2, 'i', 'd', 0x24, 1);
    ck_assert_int_eq(decode_any(c5.b, c5.n, 5, &u, &fh), 0);
    ck_assert(span_is(u.ca.props.assigned_client_id, "id"));
    ck_assert_uint_eq(u.ca.props.max_qos, 1);
    ck_assert_int_eq(decode_any(c3.b, c3.n, 5, &u, &fh), MQTT_ERR_MALFORMED); /* no props */
    const struct pkt c5r = PKT(0x20, 0x03, 0, 0x84, 0);
    ck_assert_int_eq(decode_any(c5r.b, c5r.n, 5, &u, &fh), 0);
    ck_assert_uint_eq(u.ca.reason, 0x84);

    const struct pkt s3 = PKT(0x90, 0x04, 0, 10, 0x01, 0x80);
    ck_assert_int_eq(decode_any(s3.b, s3.n, 4, &u, &fh), 0);
    ck_assert_uint_eq(u.sa.packet_id, 10);
    ck_assert_uint_eq(u.sa.reasons.len, 2);
    ck_assert_uint_eq(u.sa.reasons.ptr[1], 0x80);
    const struct pkt s5 = PKT(0x90, 0x04, 0, 11, 0, 0x87);
    ck_assert_int_eq(decode_any(s5.b, s5.n, 5, &u, &fh), 0);
    ck_assert_uint_eq(u.sa.reasons.ptr[0], 0x87);
    ck_assert_int_eq(decode_any(s5.b, s5.n, 4, &u, &fh), MQTT_ERR_MALFORMED);
    const struct pkt us3 = PKT(0xB0, 0x02, 0, 12);
    ck_assert_int_eq(decode_any(us3.b, us3.n, 4, &u, &fh), 0);
    ck_assert_uint_eq(u.sa.reasons.len, 0);
    const struct pkt us5 = PKT(0xB0, 0x04, 0, 13, 0, 0x11);
    ck_assert_int_eq(decode_any(us5.b, us5.n, 5, &u, &fh), 0);
    ck_assert_uint_eq(u.sa.reasons.ptr[0], 0x11);
    ck_assert_int_eq(decode_any(us5.b, us5.n, 4, &u, &fh), MQTT_ERR_MALFORMED);
    const struct pkt s0 = PKT(0x90, 0x02, 0, 12);
    ck_assert_int_eq(decode_any(s0.b, s0.n, 4, &u, &fh), MQTT_ERR_NO_FILTERS);
}
END_TEST

/* ------------------------------------------------------------------ v5 properties */

enum { PK_BYTE, PK_U16, PK_U32, PK_VBI, PK_STR, PK_BIN, PK_PAIR };

#define WILL 0 /* context of will properties */
#define T(t) (1u << (t))
#define ACKS (T(MQTT_PUBACK) | T(MQTT_PUBREC) | T(MQTT_PUBREL) | T(MQTT_PUBCOMP))

/* MQTT 5.0 Table 2-4, typed in again from the spec. */
static const struct {
    uint8_t id;
    unsigned bit, kind, ctx;
} spec_props[] = {
    {0x01, MQTT_P_PAYLOAD_FORMAT, PK_BYTE, T(MQTT_PUBLISH) | T(WILL)},
    {0x02, MQTT_P_MESSAGE_EXPIRY, PK_U32, T(MQTT_PUBLISH) | T(WILL)},
    {0x03, MQTT_P_CONTENT_TYPE, PK_STR, T(MQTT_PUBLISH) | T(WILL)},
    {0x08, MQTT_P_RESPONSE_TOPIC, PK_STR, T(MQTT_PUBLISH) | T(WILL)},
    {0x09, MQTT_P_CORRELATION_DATA, PK_BIN, T(MQTT_PUBLISH) | T(WILL)},
    {0x0B, MQTT_P_SUBSCRIPTION_ID, PK_VBI, T(MQTT_PUBLISH) | T(MQTT_SUBSCRIBE)},
    {0x11, MQTT_P_SESSION_EXPIRY, PK_U32, T(MQTT_CONNECT) | T(MQTT_CONNACK) | T(MQTT_DISCONNECT)},
    {0x12, MQTT_P_ASSIGNED_CLIENT_ID, PK_STR, T(MQTT_CONNACK)},
    {0x13, MQTT_P_SERVER_KEEP_ALIVE, PK_U16, T(MQTT_CONNACK)},
    {0x15, MQTT_P_AUTH_METHOD, PK_STR, T(MQTT_CONNECT) | T(MQTT_CONNACK) | T(MQTT_AUTH)},
    {0x16, MQTT_P_AUTH_DATA, PK_BIN, T(MQTT_CONNECT) | T(MQTT_CONNACK) | T(MQTT_AUTH)},
    {0x17, MQTT_P_REQUEST_PROBLEM_INFO, PK_BYTE, T(MQTT_CONNECT)},
    {0x18, MQTT_P_WILL_DELAY, PK_U32, T(WILL)},
    {0x19, MQTT_P_REQUEST_RESPONSE_INFO, PK_BYTE, T(MQTT_CONNECT)},
    {0x1A, MQTT_P_RESPONSE_INFO, PK_STR, T(MQTT_CONNACK)},
    {0x1C, MQTT_P_SERVER_REFERENCE, PK_STR, T(MQTT_CONNACK) | T(MQTT_DISCONNECT)},
    {0x1F, MQTT_P_REASON_STRING, PK_STR, T(MQTT_CONNACK) | ACKS | T(MQTT_SUBACK) |
                                             T(MQTT_UNSUBACK) | T(MQTT_DISCONNECT) | T(MQTT_AUTH)},
    {0x21, MQTT_P_RECEIVE_MAXIMUM, PK_U16, T(MQTT_CONNECT) | T(MQTT_CONNACK)},
    {0x22, MQTT_P_TOPIC_ALIAS_MAX, PK_U16, T(MQTT_CONNECT) | T(MQTT_CONNACK)},
    {0x23, MQTT_P_TOPIC_ALIAS, PK_U16, T(MQTT_PUBLISH)},
    {0x24, MQTT_P_MAX_QOS, PK_BYTE, T(MQTT_CONNACK)},
    {0x25, MQTT_P_RETAIN_AVAILABLE, PK_BYTE, T(MQTT_CONNACK)},
    {0x26, MQTT_P_USER_PROPERTY, PK_PAIR,
     T(WILL) | T(MQTT_CONNECT) | T(MQTT_CONNACK) | T(MQTT_PUBLISH) | ACKS | T(MQTT_SUBSCRIBE) |
         T(MQTT_SUBACK) | T(MQTT_UNSUBSCRIBE) | T(MQTT_UNSUBACK) | T(MQTT_DISCONNECT) |
         T(MQTT_AUTH)},
    {0x27, MQTT_P_MAX_PACKET_SIZE, PK_U32, T(MQTT_CONNECT) | T(MQTT_CONNACK)},
    {0x28, MQTT_P_WILDCARD_AVAILABLE, PK_BYTE, T(MQTT_CONNACK)},
    {0x29, MQTT_P_SUB_ID_AVAILABLE, PK_BYTE, T(MQTT_CONNACK)},
    {0x2A, MQTT_P_SHARED_AVAILABLE, PK_BYTE, T(MQTT_CONNACK)},
};
#define N_SPEC_PROPS (sizeof spec_props / sizeof spec_props[0])

/* One property with a test value of its kind (Response Topic gets a valid topic). */
static void put_prop(struct bb *b, size_t i)
{
    bb_u8(b, spec_props[i].id);
    switch (spec_props[i].kind) {
    case PK_BYTE: bb_u8(b, 1); break;
    case PK_U16: bb_u16(b, 0x0102); break;
    case PK_U32: bb_u32(b, 0x01020304); break;
    case PK_VBI: bb_u8(b, 0x81); bb_u8(b, 0x01); break;
    case PK_STR: bb_str(b, spec_props[i].bit == MQTT_P_RESPONSE_TOPIC ? "a/b" : "ab"); break;
    case PK_BIN: bb_u16(b, 2); bb_u8(b, 1); bb_u8(b, 2); break;
    case PK_PAIR: bb_str(b, "k"); bb_str(b, "v"); break;
    }
}

/* The value put_prop wrote, as decoded. */
static int prop_value_ok(const struct mqtt_props *p, unsigned bit)
{
    switch (bit) {
    case MQTT_P_PAYLOAD_FORMAT: return p->payload_format == 1;
    case MQTT_P_MESSAGE_EXPIRY: return p->message_expiry == 0x01020304;
    case MQTT_P_CONTENT_TYPE: return span_is(p->content_type, "ab");
    case MQTT_P_RESPONSE_TOPIC: return span_is(p->response_topic, "a/b");
    case MQTT_P_CORRELATION_DATA: return span_is(p->correlation_data, "\1\2");
    case MQTT_P_SUBSCRIPTION_ID: return p->subscription_id == 129;
    case MQTT_P_SESSION_EXPIRY: return p->session_expiry == 0x01020304;
    case MQTT_P_ASSIGNED_CLIENT_ID: return span_is(p->assigned_client_id, "ab");
    case MQTT_P_SERVER_KEEP_ALIVE: return p->server_keep_alive == 0x0102;
    case MQTT_P_AUTH_METHOD: return span_is(p->auth_method, "ab");
    case MQTT_P_AUTH_DATA: return span_is(p->auth_data, "\1\2");
    case MQTT_P_REQUEST_PROBLEM_INFO: return p->request_problem_info == 1;
    case MQTT_P_WILL_DELAY: return p->will_delay == 0x01020304;
    case MQTT_P_REQUEST_RESPONSE_INFO: return p->request_response_info == 1;
    case MQTT_P_RESPONSE_INFO: return span_is(p->response_info, "ab");
    case MQTT_P_SERVER_REFERENCE: return span_is(p->server_reference, "ab");
    case MQTT_P_REASON_STRING: return span_is(p->reason_string, "ab");
    case MQTT_P_RECEIVE_MAXIMUM: return p->receive_maximum == 0x0102;
    case MQTT_P_TOPIC_ALIAS_MAX: return p->topic_alias_max == 0x0102;
    case MQTT_P_TOPIC_ALIAS: return p->topic_alias == 0x0102;
    case MQTT_P_MAX_QOS: return p->max_qos == 1;
    case MQTT_P_RETAIN_AVAILABLE: return p->retain_available == 1;
    case MQTT_P_USER_PROPERTY:
        return p->n_user >= 1 && span_is(p->user[0].key, "k") && span_is(p->user[0].value, "v");
    case MQTT_P_MAX_PACKET_SIZE: return p->max_packet_size == 0x01020304;
    case MQTT_P_WILDCARD_AVAILABLE: return p->wildcard_available == 1;
    case MQTT_P_SUB_ID_AVAILABLE: return p->sub_id_available == 1;
    case MQTT_P_SHARED_AVAILABLE: return p->shared_available == 1;
    default: return 0;
    }
}

/* A v5 packet of context CTX (a packet type, or WILL) carrying property list PROPS. */
static void packet_with_props(struct bb *pkt, unsigned ctx, const struct bb *props)
{
    struct bb b = {.n = 0};
    unsigned first = ctx << 4;
    switch (ctx) {
    case WILL:
        connect5(pkt, 0x06, NULL, 0, "c", props->b, props->n, "t", NULL, NULL);
        return;
    case MQTT_CONNECT:
        connect5(pkt, 0x02, props->b, props->n, "c", NULL, 0, NULL, NULL, NULL);
        return;
    case MQTT_CONNACK: bb_u8(&b, 0); bb_u8(&b, 0); break;
    case MQTT_PUBLISH: bb_str(&b, "t"); break;
    case MQTT_PUBACK: case MQTT_PUBREC: case MQTT_PUBREL: case MQTT_PUBCOMP:
        bb_u16(&b, 1); bb_u8(&b, 0); break;
    case MQTT_SUBSCRIBE: case MQTT_UNSUBSCRIBE: case MQTT_SUBACK: case MQTT_UNSUBACK:
        bb_u16(&b, 1); break;
    case MQTT_DISCONNECT: case MQTT_AUTH: bb_u8(&b, 0); break;
    default: ck_abort_msg("ctx %u", ctx);
    }
    bb_props(&b, props->b, props->n);
    if (ctx == MQTT_SUBSCRIBE || ctx == MQTT_UNSUBSCRIBE)
        bb_str(&b, "t");
    if (ctx == MQTT_SUBSCRIBE)
        bb_u8(&b, 0);
    if (ctx == MQTT_SUBACK || ctx == MQTT_UNSUBACK)
        bb_u8(&b, 0);
    if (ctx == MQTT_PUBREL || ctx == MQTT_SUBSCRIBE || ctx == MQTT_UNSUBSCRIBE)
        first |= 2;
    bb_packet(pkt, first, &b);
}

static const struct mqtt_props *decoded_props(unsigned ctx, union decoded *u)
{
    switch (ctx) {
    case WILL: return &u->c.will_props;
    case MQTT_CONNECT: return &u->c.props;
    case MQTT_CONNACK: return &u->ca.props;
    case MQTT_PUBLISH: return &u->p.props;
    case MQTT_SUBSCRIBE: case MQTT_UNSUBSCRIBE: return &u->s.props;
    case MQTT_SUBACK: case MQTT_UNSUBACK: return &u->sa.props;
    case MQTT_DISCONNECT: case MQTT_AUTH: return &u->d.props;
    default: return &u->a.props;
    }
}

static const unsigned prop_ctxs[] = {WILL, MQTT_CONNECT, MQTT_CONNACK, MQTT_PUBLISH,
                                     MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL, MQTT_PUBCOMP,
                                     MQTT_SUBSCRIBE, MQTT_SUBACK, MQTT_UNSUBSCRIBE,
                                     MQTT_UNSUBACK, MQTT_DISCONNECT, MQTT_AUTH};

START_TEST(test_every_property_in_every_packet)
{
    union decoded u;
    for (size_t i = 0; i < N_SPEC_PROPS; i++) {
        for (size_t c = 0; c < sizeof prop_ctxs / sizeof prop_ctxs[0]; c++) {
            unsigned ctx = prop_ctxs[c];
            struct bb props = {.n = 0}, pkt;
            /* Authentication Data needs its method, which goes where the data may go. */
            if (spec_props[i].bit == MQTT_P_AUTH_DATA && (spec_props[i].ctx & T(ctx))) {
                bb_u8(&props, 0x15);
                bb_str(&props, "m");
            }
            put_prop(&props, i);
            packet_with_props(&pkt, ctx, &props);
            int r = decode_bb(&pkt, 5, &u);
            if (spec_props[i].ctx & T(ctx)) {
                ck_assert_msg(r == 0, "prop 0x%02x in ctx %u: %s", spec_props[i].id, ctx,
                              mqtt_err_name(r));
                const struct mqtt_props *p = decoded_props(ctx, &u);
                ck_assert(MQTT_HAS(p, spec_props[i].bit));
                ck_assert_msg(prop_value_ok(p, spec_props[i].bit), "value of 0x%02x",
                              spec_props[i].id);
            } else {
                ck_assert_msg(r == MQTT_ERR_PROPERTY, "prop 0x%02x in ctx %u: %s",
                              spec_props[i].id, ctx, mqtt_err_name(r));
            }

            if (!(spec_props[i].ctx & T(ctx)))
                continue;

            /* Strings must be UTF-8 (a NUL or an overlong form is not); binary need not. */
            unsigned kind = spec_props[i].kind;
            if (kind == PK_STR || kind == PK_PAIR || kind == PK_BIN) {
                struct bb bad = {.n = 0};
                if (spec_props[i].bit == MQTT_P_AUTH_DATA) {
                    bb_u8(&bad, 0x15);
                    bb_str(&bad, "m");
                }
                bb_u8(&bad, spec_props[i].id);
                if (kind == PK_PAIR)
                    bb_str(&bad, "k");
                bb_u16(&bad, 3);
                bb_raw(&bad, "a\xC0\x80", 3);
                packet_with_props(&pkt, ctx, &bad);
                r = decode_bb(&pkt, 5, &u);
                ck_assert_msg(r == (kind == PK_BIN ? 0 : MQTT_ERR_UTF8), "utf8 0x%02x ctx %u: %s",
                              spec_props[i].id, ctx, mqtt_err_name(r));
            }

            /* Twice: only User Property (anywhere) and Subscription Id (PUBLISH) repeat. */
            struct bb props2 = props;
            put_prop(&props2, i);
            packet_with_props(&pkt, ctx, &props2);
            r = decode_bb(&pkt, 5, &u);
            int may_repeat = spec_props[i].bit == MQTT_P_USER_PROPERTY ||
                             (spec_props[i].bit == MQTT_P_SUBSCRIPTION_ID && ctx == MQTT_PUBLISH);
            ck_assert_msg(r == (may_repeat ? 0 : MQTT_ERR_PROPERTY), "dup 0x%02x ctx %u: %s",
                          spec_props[i].id, ctx, mqtt_err_name(r));
        }
    }
    /* Identifiers the spec does not assign. */
    for (unsigned id = 0; id < 0x80; id++) {
        int known = 0;
        for (size_t i = 0; i < N_SPEC_PROPS; i++)
            known |= spec_props[i].id == id;
        if (known)
            continue;
        struct bb props = {.n = 0}, pkt;
        bb_u8(&props, id);
        bb_u8(&props, 0);
        packet_with_props(&pkt, MQTT_PUBLISH, &props);
        ck_assert_int_eq(decode_bb(&pkt, 5, &u), MQTT_ERR_PROPERTY);
    }
}
END_TEST

START_TEST(test_property_values)
{
    union decoded u;
    const struct {
        struct pkt props;
        unsigned ctx;
        int want;
    } v[] = {
        {PKT(0x01, 2), MQTT_PUBLISH, MQTT_ERR_PROPERTY},
        {PKT(0x01, 0), MQTT_PUBLISH, 0},
        {PKT(0x17, 2), MQTT_CONNECT, MQTT_ERR_PROPERTY},
        {PKT(0x19, 0xFF), MQTT_CONNECT, MQTT_ERR_PROPERTY},
        {PKT(0x24, 2), MQTT_CONNACK, MQTT_ERR_PROPERTY},
        {PKT(0x25, 2), MQTT_CONNACK, MQTT_ERR_PROPERTY},
        {PKT(0x28, 2), MQTT_CONNACK, MQTT_ERR_PROPERTY},
        {PKT(0x29, 2), MQTT_CONNACK, MQTT_ERR_PROPERTY},
        {PKT(0x2A, 2), MQTT_CONNACK, MQTT_ERR_PROPERTY},
        {PKT(0x21, 0, 0), MQTT_CONNECT, MQTT_ERR_PROPERTY},
        {PKT(0x27, 0, 0, 0, 0), MQTT_CONNECT, MQTT_ERR_PROPERTY},
        {PKT(0x23, 0, 0), MQTT_PUBLISH, MQTT_ERR_PROPERTY},
        {PKT(0x0B, 0), MQTT_SUBSCRIBE, MQTT_ERR_PROPERTY},
        {PKT(0x22, 0, 0), MQTT_CONNECT, 0}, /* Topic Alias Maximum 0 = none */
        {PKT(0x11, 0, 0, 0, 0), MQTT_DISCONNECT, 0},
        {PKT(0x08, 0, 0), MQTT_PUBLISH, MQTT_ERR_PROPERTY},
        {PKT(0x08, 0, 1, '#'), MQTT_PUBLISH, MQTT_ERR_PROPERTY},
        {PKT(0x03, 0, 1, 0xC3), MQTT_PUBLISH, MQTT_ERR_UTF8},
        {PKT(0x26, 0, 1, 'k', 0, 1, 0), MQTT_PUBLISH, MQTT_ERR_UTF8},
        {PKT(0x09, 0, 1, 0), MQTT_PUBLISH, 0}, /* binary: a NUL is fine */
        {PKT(0x16, 0, 0), MQTT_CONNECT, MQTT_ERR_PROPERTY}, /* data without method */
        {PKT(0x16, 0, 0, 0x15, 0, 1, 'm'), MQTT_CONNECT, 0}, /* order does not matter */
        {PKT(0x02, 0, 0, 0), MQTT_PUBLISH, MQTT_ERR_MALFORMED}, /* runs past the list */
        {PKT(0x03, 0, 5, 'a'), MQTT_PUBLISH, MQTT_ERR_MALFORMED},
        {PKT(0x80, 0x00, 0), MQTT_PUBLISH, MQTT_ERR_MALFORMED}, /* non-minimal id */
        {PKT(0x80, 0x01, 0), MQTT_PUBLISH, MQTT_ERR_PROPERTY},  /* id 128 */
        {PKT(0x81, 0x00), MQTT_PUBLISH, MQTT_ERR_MALFORMED},    /* id 1, non-minimal */
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        struct bb props = {.n = 0}, pkt;
        bb_raw(&props, v[i].props.b, v[i].props.n);
        packet_with_props(&pkt, v[i].ctx, &props);
        int r = decode_bb(&pkt, 5, &u);
        ck_assert_msg(r == v[i].want, "case %zu: %d (%s)", i, r, mqtt_err_name(r));
    }

    /* A non-minimal Property Length, and one beyond the body. */
    const struct pkt nonmin = PKT(0xE0, 0x03, 0x00, 0x80, 0x00);
    ck_assert_int_eq(decode_any(nonmin.b, nonmin.n, 5, &u, &(struct mqtt_fixed){0}),
                     MQTT_ERR_MALFORMED);
    const struct pkt over = PKT(0xE0, 0x02, 0x00, 0x01);
    ck_assert_int_eq(decode_any(over.b, over.n, 5, &u, &(struct mqtt_fixed){0}),
                     MQTT_ERR_MALFORMED);
}
END_TEST

START_TEST(test_user_properties_many)
{
    union decoded u;
    struct bb b = {.n = 0}, pkt;
    bb_str(&b, "t");
    struct bb props = {.n = 0};
    char key[8];
    for (unsigned i = 0; i < MQTT_MAX_USER_PROPS + 4; i++) {
        snprintf(key, sizeof key, "k%u", i);
        bb_u8(&props, 0x26);
        bb_str(&props, key);
        bb_str(&props, "v");
    }
    /* More than 127 bytes: a two-byte Property Length. */
    ck_assert_uint_gt(props.n, 127);
    bb_u8(&b, (unsigned)(props.n & 0x7F) | 0x80);
    bb_u8(&b, (unsigned)(props.n >> 7));
    bb_raw(&b, props.b, props.n);
    bb_packet(&pkt, 0x30, &b);
    ck_assert_int_eq(decode_bb(&pkt, 5, &u), 0);
    ck_assert_uint_eq(u.p.props.n_user, MQTT_MAX_USER_PROPS);
    ck_assert_uint_eq(u.p.props.n_user_total, MQTT_MAX_USER_PROPS + 4);
    ck_assert_ptr_nonnull(mqtt_user_prop_get(&u.p.props, "k0"));
    ck_assert_ptr_nonnull(mqtt_user_prop_get(&u.p.props, "k15"));
    ck_assert_ptr_null(mqtt_user_prop_get(&u.p.props, "k16"));
    ck_assert(span_is(mqtt_user_prop_get(&u.p.props, "k3")->key, "k3"));
    /* First of a repeated key wins. */
    const struct pkt dup = PKT(0x30, 0x13, 0, 1, 't', 14, 0x26, 0, 1, 'k', 0, 1, 'a',
                                      0x26, 0, 1, 'k', 0, 1, 'b', 'x');
    ck_assert_int_eq(decode_any(dup.b, dup.n, 5, &u, &(struct mqtt_fixed){0}), 0);
    ck_assert(span_is(mqtt_user_prop_get(&u.p.props, "k")->value, "a"));
    ck_assert(span_is(u.p.payload, "x"));
}
END_TEST

/* ------------------------------------------------------------------ UTF-8 and topics */

START_TEST(test_utf8)
{
    const struct {
        struct pkt s;
        int ok;
    } v[] = {
        {PKT('a', 'b', 'c'), 1},
        {PKT(0x01), 1},                   /* control: a SHOULD NOT, accepted */
        {PKT(0x7F), 1},
        {PKT(0xC2, 0x80), 1},             /* U+0080 */
        {PKT(0xDF, 0xBF), 1},             /* U+07FF */
        {PKT(0xE0, 0xA0, 0x80), 1},       /* U+0800 */
        {PKT(0xED, 0x9F, 0xBF), 1},       /* U+D7FF */
        {PKT(0xEE, 0x80, 0x80), 1},       /* U+E000 */
        {PKT(0xEF, 0xBF, 0xBF), 1},       /* U+FFFF, a non-character: accepted */
        {PKT(0xEF, 0xBB, 0xBF), 1},       /* U+FEFF */
        {PKT(0xF0, 0x90, 0x80, 0x80), 1}, /* U+10000 */
        {PKT(0xF4, 0x8F, 0xBF, 0xBF), 1}, /* U+10FFFF */
        {PKT(0x00), 0},
        {PKT('a', 0x00, 'b'), 0},
        {PKT(0xC0, 0x80), 0},             /* overlong NUL */
        {PKT(0xC1, 0xBF), 0},
        {PKT(0xE0, 0x80, 0x80), 0},       /* overlong */
        {PKT(0xE0, 0x9F, 0xBF), 0},
        {PKT(0xF0, 0x80, 0x80, 0x80), 0},
        {PKT(0xF0, 0x8F, 0xBF, 0xBF), 0},
        {PKT(0xED, 0xA0, 0x80), 0},       /* U+D800 */
        {PKT(0xED, 0xBF, 0xBF), 0},       /* U+DFFF */
        {PKT(0xF4, 0x90, 0x80, 0x80), 0}, /* U+110000 */
        {PKT(0xF5, 0x80, 0x80, 0x80), 0},
        {PKT(0xF8, 0x88, 0x80, 0x80, 0x80), 0},
        {PKT(0xFF), 0},
        {PKT(0x80), 0},                   /* lone continuation */
        {PKT(0xE2, 0x82), 0},             /* truncated */
        {PKT(0xF0, 0x90, 0x80), 0},
        {PKT(0xC2), 0},
        {PKT(0xE2, 0x28, 0xA1), 0},       /* bad continuation */
        {PKT(0xC2, 0xC2, 0x80), 0},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        const uint8_t *g = guard_place(v[i].s.b, v[i].s.n);
        ck_assert_msg(mqtt_utf8_valid(g, v[i].s.n) == v[i].ok, "utf8 case %zu", i);
    }
    ck_assert_int_eq(mqtt_utf8_valid(NULL, 0), 1);
}
END_TEST

START_TEST(test_topic_validity)
{
    const struct {
        const char *s;
        int name, filter;
    } v[] = {
        {"a", 1, 1},        {"a/b/c", 1, 1},     {"/", 1, 1},         {"//", 1, 1},
        {"a/", 1, 1},       {" ", 1, 1},         {"$SYS/x", 1, 1},    {"+", 0, 1},
        {"#", 0, 1},        {"+/+", 0, 1},       {"a/+/b", 0, 1},     {"a/#", 0, 1},
        {"/#", 0, 1},       {"+/#", 0, 1},       {"a+", 0, 0},        {"+a", 0, 0},
        {"a/b+/c", 0, 0},   {"a#", 0, 0},        {"#/a", 0, 0},       {"a/#/b", 0, 0},
        {"##", 0, 0},       {"++", 0, 0},        {"a/#b", 0, 0},      {"", 0, 0},
        {"sport/tennis/player1/#", 0, 1},        {"sport/tennis#", 0, 0},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t n = strlen(v[i].s);
        struct mqtt_span s = {guard_place(v[i].s, n), n};
        ck_assert_msg(mqtt_topic_name_valid(s) == v[i].name, "name '%s'", v[i].s);
        s.ptr = guard_place(v[i].s, n);
        ck_assert_msg(mqtt_topic_filter_valid(s) == v[i].filter, "filter '%s'", v[i].s);
    }
    static const uint8_t bad_utf8[] = {'a', 0xC0, 0x80};
    struct mqtt_span b = {bad_utf8, 3};
    ck_assert_int_eq(mqtt_topic_name_valid(b), 0);
    ck_assert_int_eq(mqtt_topic_filter_valid(b), 0);
    static uint8_t big[65536];
    memset(big, 'a', sizeof big);
    struct mqtt_span l = {big, 65535};
    ck_assert_int_eq(mqtt_topic_name_valid(l), 1);
    l.len = 65536;
    ck_assert_int_eq(mqtt_topic_name_valid(l), 0);
    ck_assert_int_eq(mqtt_topic_filter_valid(l), 0);

    struct mqtt_span name, inner;
    ck_assert_int_eq(mqtt_topic_filter_shared(sp("$share/grp/a/+"), &name, &inner), 1);
    ck_assert(span_is(name, "grp"));
    ck_assert(span_is(inner, "a/+"));
    ck_assert_int_eq(mqtt_topic_filter_shared(sp("$share/g/#"), NULL, NULL), 1);
    ck_assert_int_eq(mqtt_topic_filter_shared(sp("a/b"), &name, &inner), 0);
    ck_assert_int_eq(mqtt_topic_filter_shared(sp("$shared/g/x"), NULL, NULL), 0);
    ck_assert_int_eq(mqtt_topic_filter_shared(sp("$share/"), NULL, NULL), -1);
    ck_assert_int_eq(mqtt_topic_filter_shared(sp("$share//x"), NULL, NULL), -1);
    ck_assert_int_eq(mqtt_topic_filter_shared(sp("$share/g"), NULL, NULL), -1);
    ck_assert_int_eq(mqtt_topic_filter_shared(sp("$share/g/"), NULL, NULL), -1);
    ck_assert_int_eq(mqtt_topic_filter_shared(sp("$share/g//"), NULL, NULL), 1);
    ck_assert_int_eq(mqtt_topic_filter_shared(sp("$share/g+/x"), NULL, NULL), -1);
    ck_assert_int_eq(mqtt_topic_filter_shared(sp("$share/#/x"), NULL, NULL), -1);
    ck_assert_int_eq(mqtt_topic_filter_shared(sp("$share/g/a#"), NULL, NULL), -1);
}
END_TEST

START_TEST(test_topic_matching)
{
    const struct {
        const char *filter, *topic;
        int match;
    } v[] = {
        {"sport/tennis/player1/#", "sport/tennis/player1", 1},
        {"sport/tennis/player1/#", "sport/tennis/player1/ranking", 1},
        {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", 1},
        {"sport/#", "sport", 1},
        {"sport/#", "sports", 0},
        {"sport/#", "sport/", 1},
        {"#", "sport", 1},
        {"#", "/", 1},
        {"#", "a/b/c", 1},
        {"sport/tennis/+", "sport/tennis/player1", 1},
        {"sport/tennis/+", "sport/tennis/player1/ranking", 0},
        {"sport/tennis/+", "sport/tennis", 0},
        {"sport/+", "sport", 0},
        {"sport/+", "sport/", 1},
        {"+", "sport", 1},
        {"+", "/finance", 0},
        {"+/+", "/finance", 1},
        {"/+", "/finance", 1},
        {"+/#", "a", 1},
        {"+/+/#", "a", 0},
        {"a/+/c", "a//c", 1},
        {"a/b", "a/b", 1},
        {"a/b", "a/b/", 0},
        {"a/b/", "a/b", 0},
        {"a/b", "a/bc", 0},
        {"a/bc", "a/b", 0},
        {"A", "a", 0},
        {"#", "$SYS/monitor", 0},
        {"+/monitor", "$SYS/monitor", 0},
        {"$SYS/#", "$SYS/monitor", 1},
        {"$SYS/monitor/+", "$SYS/monitor/Clients", 1},
        {"$SYS", "$SYS", 1},
        {"a/$x", "a/$x", 1},
        {"a/+", "a/$x", 1},
        {"usp/agents/+/#", "usp/agents/proto::a/reply-to=x", 1},
        /* invalid arguments never match */
        {"a+", "a+", 0},
        {"a", "", 0},
        {"", "a", 0},
        {"#", "a/+", 0},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        struct mqtt_span f = sp(v[i].filter), t = sp(v[i].topic);
        ck_assert_msg(mqtt_topic_matches(f, t) == v[i].match, "'%s' vs '%s'", v[i].filter,
                      v[i].topic);
        /* At the guard: the topic's last level ends on the page edge. */
        t.ptr = guard_place(v[i].topic, t.len);
        ck_assert_int_eq(mqtt_topic_matches(f, t), v[i].match);
    }
}
END_TEST

/* ------------------------------------------------------------------ prefixes, guard */

/* One valid packet of every type at each level, for the prefix and guard tests. */
static const struct {
    struct pkt p;
    uint8_t level;
} valid[] = {
    {PKT(0x10, 0x1F, 0, 4, 'M', 'Q', 'T', 'T', 4, 0xEE, 0, 60, 0, 3, 'c', 'i', 'd', 0, 3, 'w',
         '/', 't', 0, 2, 'h', 'i', 0, 1, 'u', 0, 2, 'p', 'w'), 4},
    {PKT(0x10, 0x12, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 9, 4, 0x19, 1, 0x17, 1, 0, 1, 'c'),
     5},
    {PKT(0x20, 0x02, 0, 0), 4},
    {PKT(0x20, 0x0A, 0, 0, 7, 0x12, 0, 2, 'i', 'd', 0x24, 1), 5},
    {PKT(0x32, 0x09, 0, 3, 'a', '/', 'b', 0, 7, 'x', 'y'), 4},
    {PKT(0x3C, 0x17, 0, 1, 't', 0, 5, 0x10, 0x03, 0, 7, 'u', 's', 'p', '.', 'm', 's', 'g',
         0x08, 0, 3, 'r', '/', 'x', 'P'), 5},
    {PKT(0x40, 0x02, 0, 1), 4},
    {PKT(0x40, 0x03, 0, 1, 0x10), 5},
    {PKT(0x50, 0x02, 0, 2), 4},
    {PKT(0x50, 0x09, 0, 2, 0x80, 5, 0x1F, 0, 2, 'n', 'o'), 5},
    {PKT(0x62, 0x02, 0, 3), 4},
    {PKT(0x62, 0x04, 0, 3, 0x92, 0), 5},
    {PKT(0x70, 0x02, 0, 4), 4},
    {PKT(0x70, 0x03, 0, 4, 0x92), 5},
    {PKT(0x82, 0x0C, 0, 10, 0, 3, 'a', '/', '#', 1, 0, 1, '+', 0), 4},
    {PKT(0x82, 0x18, 0, 11, 2, 0x0B, 5, 0, 3, 'a', '/', '+', 0x2D, 0, 10, '$', 's', 'h', 'a',
         'r', 'e', '/', 'g', '/', 'x', 2), 5},
    {PKT(0x90, 0x04, 0, 10, 0x01, 0x80), 4},
    {PKT(0x90, 0x04, 0, 11, 0, 0x87), 5},
    {PKT(0xA2, 0x07, 0, 12, 0, 3, 'a', '/', '#'), 4},
    {PKT(0xA2, 0x06, 0, 13, 0, 0, 1, 'x'), 5},
    {PKT(0xB0, 0x02, 0, 12), 4},
    {PKT(0xB0, 0x04, 0, 13, 0, 0x11), 5},
    {PKT(0xC0, 0x00), 4},
    {PKT(0xD0, 0x00), 5},
    {PKT(0xE0, 0x00), 4},
    {PKT(0xE0, 0x07, 0x00, 5, 0x11, 0, 0, 0, 9), 5},
    {PKT(0xF0, 0x0C, 0x18, 0x0A, 0x15, 0, 3, 'x', 'y', 'z', 0x16, 0, 1, 'd'), 5},
};
#define N_VALID (sizeof valid / sizeof valid[0])

START_TEST(test_valid_packets_decode)
{
    union decoded u;
    struct mqtt_fixed fh;
    for (size_t i = 0; i < N_VALID; i++) {
        int r = decode_any(valid[i].p.b, valid[i].p.n, valid[i].level, &u, &fh);
        ck_assert_msg(r == 0, "valid %zu: %s", i, mqtt_err_name(r));
    }
}
END_TEST

/* Every prefix: NEED_MORE until the fixed header is complete, then the full size; the body
 * prefixes, decoded at the guard, fail or succeed but never read past their end. */
START_TEST(test_every_prefix)
{
    union decoded u;
    struct mqtt_fixed fh;
    for (size_t i = 0; i < N_VALID; i++) {
        const struct pkt *p = &valid[i].p;
        ck_assert_int_eq(mqtt_packet_size(guard_place(p->b, p->n), p->n, 0, &fh), (long)p->n);
        size_t hl = fh.header_len;
        uint8_t type = fh.type, flags = fh.flags;
        for (size_t k = 0; k < p->n; k++) {
            long r = mqtt_packet_size(guard_place(p->b, k), k, 0, &fh);
            if (k < hl)
                ck_assert_msg(r == MQTT_NEED_MORE, "valid %zu prefix %zu: %ld", i, k, r);
            else
                ck_assert_int_eq(r, (long)p->n);
            if (k < hl)
                continue;
            /* A truncated body: no over-read, and spans stay inside it. */
            const uint8_t *body = guard_place(p->b + hl, k - hl);
            size_t len = k - hl;
            int d;
            switch (type) {
            case MQTT_CONNECT:
                d = mqtt_decode_connect(body, len, &u.c);
                ck_assert_int_ne(d, 0); /* CONNECT has no optional tail */
                break;
            case MQTT_PUBLISH:
                d = mqtt_decode_publish(body, len, flags, valid[i].level, &u.p);
                if (d == 0)
                    ck_assert(u.p.payload.ptr + u.p.payload.len == body + len);
                break;
            case MQTT_SUBSCRIBE:
            case MQTT_UNSUBSCRIBE:
                d = type == MQTT_SUBSCRIBE ? mqtt_decode_subscribe(body, len, valid[i].level, &u.s)
                                           : mqtt_decode_unsubscribe(body, len, valid[i].level,
                                                                     &u.s);
                if (d == 0)
                    ck_assert_uint_ge(u.s.n, 1);
                break;
            case MQTT_CONNACK:
                ck_assert_int_ne(mqtt_decode_connack(body, len, valid[i].level, &u.ca), 0);
                break;
            default:
                break;
            }
        }
    }
}
END_TEST

START_TEST(test_guard_faults)
{
    const volatile uint8_t *p = guard_place("x", 1);
    ck_assert_uint_eq(p[0], 'x');
    /* Under ASan its own SEGV handler would turn the signal into exit(1). */
    signal(SIGSEGV, SIG_DFL);
    (void)p[1];
}
END_TEST

/* ------------------------------------------------------------------ encoders */

/* Decode what an encoder wrote (placed at the guard) and return the body result. */
static int redecode(const uint8_t *buf, long n, uint8_t level, union decoded *u)
{
    ck_assert_int_gt(n, 0);
    struct mqtt_fixed fh;
    return decode_any(buf, (size_t)n, level, u, &fh);
}

START_TEST(test_encode_connack)
{
    uint8_t buf[512];
    union decoded u;
    long n = mqtt_encode_connack(buf, sizeof buf, 4, 1, 0, NULL);
    ck_assert_int_eq(n, 4);
    ck_assert_mem_eq(buf, "\x20\x02\x01\x00", 4);
    ck_assert_int_eq(redecode(buf, n, 4, &u), 0);
    ck_assert_uint_eq(u.ca.session_present, 1);

    n = mqtt_encode_connack(buf, sizeof buf, 4, 0, MQTT_RC3_UNACCEPTABLE_VERSION, NULL);
    ck_assert_mem_eq(buf, "\x20\x02\x00\x01", 4);

    struct mqtt_user_prop ups[2] = {{sp("subscribe-topic"), sp("usp/a/x")},
                                    {sp("subscribe-topic"), sp("usp/a/y")}};
    struct mqtt_props_out po = {
        .response_info = sp("usp/reply/x"), .assigned_client_id = sp("auto-1"),
        .reason_string = sp("ok"), .has_server_keep_alive = 1, .server_keep_alive = 30,
        .has_receive_maximum = 1, .receive_maximum = 100, .has_max_qos = 1, .max_qos = 1,
        .has_retain_available = 1, .retain_available = 0, .has_wildcard_available = 1,
        .wildcard_available = 1, .has_sub_id_available = 1, .sub_id_available = 0,
        .has_shared_available = 1, .shared_available = 0, .has_topic_alias_max = 1,
        .topic_alias_max = 0, .has_max_packet_size = 1, .max_packet_size = 1 << 20,
        .has_session_expiry = 1, .session_expiry = 0, .server_reference = sp("other"),
        .user = ups, .n_user = 2};
    n = mqtt_encode_connack(buf, sizeof buf, 5, 0, 0, &po);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(redecode(buf, n, 5, &u), 0);
    const struct mqtt_props *p = &u.ca.props;
    ck_assert(span_is(p->response_info, "usp/reply/x"));
    ck_assert(span_is(p->assigned_client_id, "auto-1"));
    ck_assert(span_is(p->reason_string, "ok"));
    ck_assert(span_is(p->server_reference, "other"));
    ck_assert_uint_eq(p->server_keep_alive, 30);
    ck_assert_uint_eq(p->receive_maximum, 100);
    ck_assert_uint_eq(p->max_qos, 1);
    ck_assert(MQTT_HAS(p, MQTT_P_RETAIN_AVAILABLE));
    ck_assert_uint_eq(p->retain_available, 0);
    ck_assert_uint_eq(p->wildcard_available, 1);
    ck_assert(MQTT_HAS(p, MQTT_P_SUB_ID_AVAILABLE) && MQTT_HAS(p, MQTT_P_SHARED_AVAILABLE));
    ck_assert(MQTT_HAS(p, MQTT_P_TOPIC_ALIAS_MAX));
    ck_assert_uint_eq(p->max_packet_size, 1u << 20);
    ck_assert(MQTT_HAS(p, MQTT_P_SESSION_EXPIRY));
    ck_assert_uint_eq(p->n_user, 2);
    ck_assert(span_is(p->user[1].value, "usp/a/y"));
    ck_assert(!MQTT_HAS(p, MQTT_P_CONTENT_TYPE));

    /* Every shorter buffer: BUF_SMALL, nothing written. */
    for (size_t cap = 0; cap < (size_t)n; cap++) {
        uint8_t small[512];
        memset(small, 0xAA, sizeof small);
        ck_assert_int_eq(mqtt_encode_connack(small, cap, 5, 0, 0, &po), MQTT_ERR_BUF_SMALL);
        ck_assert_uint_eq(small[0], 0xAA);
    }
    /* Properties a CONNACK cannot carry. */
    struct mqtt_props_out bad = {.response_topic = sp("a")};
    ck_assert_int_eq(mqtt_encode_connack(buf, sizeof buf, 5, 0, 0, &bad), MQTT_ERR_PROPERTY);
    /* ... which 3.1.1 ignores along with every property. */
    ck_assert_int_eq(mqtt_encode_connack(buf, sizeof buf, 4, 0, 0, &bad), 4);
    struct mqtt_props_out badv = {.has_max_qos = 1, .max_qos = 2};
    ck_assert_int_eq(mqtt_encode_connack(buf, sizeof buf, 5, 0, 0, &badv), MQTT_ERR_PROPERTY);
    struct mqtt_props_out zero = {.has_receive_maximum = 1};
    ck_assert_int_eq(mqtt_encode_connack(buf, sizeof buf, 5, 0, 0, &zero), MQTT_ERR_PROPERTY);
    ck_assert_int_eq(mqtt_encode_connack(buf, sizeof buf, 3, 0, 0, NULL),
                     MQTT_ERR_PROTOCOL_LEVEL);
    n = mqtt_encode_connack(buf, sizeof buf, 5, 0, MQTT_RC_UNSUPPORTED_VERSION, NULL);
    ck_assert_int_eq(n, 5);
    ck_assert_mem_eq(buf, "\x20\x03\x00\x84\x00", 5);
}
END_TEST

START_TEST(test_encode_publish)
{
    static uint8_t buf[70000];
    union decoded u;
    /* Head only: the payload is sent by reference after it. */
    long h = mqtt_encode_publish_head(buf, sizeof buf, 4, 1, 1, 0, sp("a/b"), 9, NULL, 2);
    ck_assert_int_eq(h, 9);
    ck_assert_mem_eq(buf, "\x33\x09\x00\x03" "a/b\x00\x09", 9);
    memcpy(buf + h, "xy", 2);
    ck_assert_int_eq(redecode(buf, h + 2, 4, &u), 0);
    ck_assert(span_is(u.p.payload, "xy"));
    ck_assert_uint_eq(u.p.retain, 1);

    struct mqtt_user_prop up = {sp("k"), sp("v")};
    struct mqtt_props_out po = {.content_type = sp("usp.msg"), .response_topic = sp("r/t"),
                                .correlation_data = sp("cd"), .has_message_expiry = 1,
                                .message_expiry = 77, .has_payload_format = 1,
                                .payload_format = 0, .has_subscription_id = 1,
                                .subscription_id = 300, .has_topic_alias = 1,
                                .topic_alias = 4, .user = &up, .n_user = 1};
    for (uint8_t qos = 0; qos <= 2; qos++) {
        for (int level = 4; level <= 5; level++) {
            long n = mqtt_encode_publish(buf, sizeof buf, (uint8_t)level, qos, 0, qos > 0,
                                         sp("usp/x"), 77, &po, sp("PAYLOAD"));
            ck_assert_int_gt(n, 0);
            ck_assert_int_eq(redecode(buf, n, (uint8_t)level, &u), 0);
            ck_assert_uint_eq(u.p.qos, qos);
            ck_assert_uint_eq(u.p.dup, qos > 0);
            ck_assert_uint_eq(u.p.packet_id, qos ? 77 : 0);
            ck_assert(span_is(u.p.topic, "usp/x"));
            ck_assert(span_is(u.p.payload, "PAYLOAD"));
            if (level == 5) {
                ck_assert(span_is(u.p.props.content_type, "usp.msg"));
                ck_assert(span_is(u.p.props.response_topic, "r/t"));
                ck_assert(span_is(u.p.props.correlation_data, "cd"));
                ck_assert_uint_eq(u.p.props.message_expiry, 77);
                ck_assert(MQTT_HAS(&u.p.props, MQTT_P_PAYLOAD_FORMAT));
                ck_assert_uint_eq(u.p.props.subscription_id, 300);
                ck_assert_uint_eq(u.p.props.topic_alias, 4);
                ck_assert_uint_eq(u.p.props.n_user, 1);
            } else {
                ck_assert_uint_eq(u.p.props.present, 0);
            }
            /* The head agrees with the whole packet. */
            long head = mqtt_encode_publish_head(buf, sizeof buf, (uint8_t)level, qos, 0,
                                                 qos > 0, sp("usp/x"), 77, &po, 7);
            ck_assert_int_eq(head + 7, n);
            for (size_t cap = 0; cap < (size_t)n; cap++)
                ck_assert_int_eq(mqtt_encode_publish(buf, cap, (uint8_t)level, qos, 0, qos > 0,
                                                     sp("usp/x"), 77, &po, sp("PAYLOAD")),
                                 MQTT_ERR_BUF_SMALL);
        }
    }
    /* Remaining-length growth across 127/128 and 16383/16384. */
    static const size_t sizes[] = {0, 121, 122, 16376, 16377, 65000};
    static uint8_t payload[65000];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        struct mqtt_span pl = {payload, sizes[i]};
        long n = mqtt_encode_publish(buf, sizeof buf, 4, 0, 0, 0, sp("abc"), 0, NULL, pl);
        ck_assert_int_eq(n, (long)(1 + (5 + sizes[i] < 128 ? 1 : 5 + sizes[i] < 16384 ? 2 : 3) +
                                   5 + sizes[i]));
        ck_assert_int_eq(redecode(buf, n, 4, &u), 0);
        ck_assert_uint_eq(u.p.payload.len, sizes[i]);
    }
    /* Errors. */
    ck_assert_int_eq(mqtt_encode_publish_head(buf, sizeof buf, 4, 3, 0, 0, sp("t"), 1, NULL, 0),
                     MQTT_ERR_QOS);
    ck_assert_int_eq(mqtt_encode_publish_head(buf, sizeof buf, 4, 1, 0, 0, sp("t"), 0, NULL, 0),
                     MQTT_ERR_PACKET_ID);
    ck_assert_int_eq(mqtt_encode_publish_head(buf, sizeof buf, 4, 0, 0, 1, sp("t"), 0, NULL, 0),
                     MQTT_ERR_BAD_FLAGS);
    ck_assert_int_eq(mqtt_encode_publish_head(buf, sizeof buf, 4, 0, 0, 0, sp("t"), 0, NULL,
                                              MQTT_MAX_REMAINING - 3),
                     3 + 1 + 4);
    ck_assert_int_eq(mqtt_encode_publish_head(buf, sizeof buf, 4, 0, 0, 0, sp("t"), 0, NULL,
                                              MQTT_MAX_REMAINING - 2),
                     MQTT_ERR_TOO_LARGE);
    struct mqtt_span longt = {payload, 65536};
    ck_assert_int_eq(mqtt_encode_publish_head(buf, sizeof buf, 4, 0, 0, 0, longt, 0, NULL, 0),
                     MQTT_ERR_TOO_LARGE);
    struct mqtt_props_out notpub = {.response_info = sp("x")};
    ck_assert_int_eq(mqtt_encode_publish_head(buf, sizeof buf, 5, 0, 0, 0, sp("t"), 0, &notpub,
                                              0),
                     MQTT_ERR_PROPERTY);
    struct mqtt_props_out badsid = {.has_subscription_id = 1, .subscription_id = 0};
    ck_assert_int_eq(mqtt_encode_publish_head(buf, sizeof buf, 5, 0, 0, 0, sp("t"), 0, &badsid,
                                              0),
                     MQTT_ERR_PROPERTY);
    badsid.subscription_id = MQTT_MAX_REMAINING + 1;
    ck_assert_int_eq(mqtt_encode_publish_head(buf, sizeof buf, 5, 0, 0, 0, sp("t"), 0, &badsid,
                                              0),
                     MQTT_ERR_PROPERTY);
    struct mqtt_props_out longp = {.content_type = longt};
    ck_assert_int_eq(mqtt_encode_publish_head(buf, sizeof buf, 5, 0, 0, 0, sp("t"), 0, &longp,
                                              0),
                     MQTT_ERR_TOO_LARGE);
}
END_TEST

START_TEST(test_encode_acks)
{
    uint8_t buf[16];
    union decoded u;
    for (uint8_t type = MQTT_PUBACK; type <= MQTT_PUBCOMP; type++) {
        for (uint8_t level = 4; level <= 5; level++) {
            uint8_t reason = type == MQTT_PUBREL || type == MQTT_PUBCOMP ? 0x92 : 0x10;
            long n = mqtt_encode_ack(buf, sizeof buf, type, level, 0x1234, 0);
            ck_assert_int_eq(n, 4);
            ck_assert_uint_eq(buf[0], (type << 4) | (type == MQTT_PUBREL ? 2 : 0));
            ck_assert_int_eq(redecode(buf, n, level, &u), 0);
            ck_assert_uint_eq(u.a.packet_id, 0x1234);
            n = mqtt_encode_ack(buf, sizeof buf, type, level, 0x1234, reason);
            ck_assert_int_eq(n, level == 5 ? 5 : 4);
            ck_assert_int_eq(redecode(buf, n, level, &u), 0);
            ck_assert_uint_eq(u.a.reason, level == 5 ? reason : 0);
            ck_assert_int_eq(mqtt_encode_ack(buf, (size_t)n - 1, type, level, 1, reason),
                             MQTT_ERR_BUF_SMALL);
        }
    }
    ck_assert_int_eq(mqtt_encode_ack(buf, sizeof buf, MQTT_PUBACK, 4, 0, 0), MQTT_ERR_PACKET_ID);
    ck_assert_int_eq(mqtt_encode_ack(buf, sizeof buf, MQTT_SUBACK, 4, 1, 0), MQTT_ERR_BAD_FLAGS);

    /* SUBACK / UNSUBACK */
    static const uint8_t rs[] = {0x00, 0x01, 0x80};
    long n = mqtt_encode_suback(buf, sizeof buf, MQTT_SUBACK, 4, 7, rs, 3);
    ck_assert_int_eq(n, 7);
    ck_assert_mem_eq(buf, "\x90\x05\x00\x07\x00\x01\x80", 7);
    ck_assert_int_eq(redecode(buf, n, 4, &u), 0);
    ck_assert_uint_eq(u.sa.reasons.len, 3);
    static const uint8_t rs5[] = {0x02, 0x87, 0x8F, 0xA2};
    n = mqtt_encode_suback(buf, sizeof buf, MQTT_SUBACK, 5, 8, rs5, 4);
    ck_assert_int_eq(n, 9);
    ck_assert_int_eq(redecode(buf, n, 5, &u), 0);
    ck_assert_mem_eq(u.sa.reasons.ptr, rs5, 4);
    n = mqtt_encode_suback(buf, sizeof buf, MQTT_UNSUBACK, 4, 9, rs, 3);
    ck_assert_int_eq(n, 4);
    ck_assert_mem_eq(buf, "\xB0\x02\x00\x09", 4);
    static const uint8_t urs[] = {0x00, 0x11};
    n = mqtt_encode_suback(buf, sizeof buf, MQTT_UNSUBACK, 5, 9, urs, 2);
    ck_assert_int_eq(n, 7);
    ck_assert_int_eq(redecode(buf, n, 5, &u), 0);
    ck_assert_uint_eq(u.sa.reasons.ptr[1], 0x11);
    ck_assert_int_eq(mqtt_encode_suback(buf, sizeof buf, MQTT_SUBACK, 4, 1, rs, 0),
                     MQTT_ERR_NO_FILTERS);
    ck_assert_int_eq(mqtt_encode_suback(buf, sizeof buf, MQTT_PUBACK, 4, 1, rs, 1),
                     MQTT_ERR_BAD_FLAGS);
    ck_assert_int_eq(mqtt_encode_suback(buf, 6, MQTT_SUBACK, 4, 1, rs, 3), MQTT_ERR_BUF_SMALL);

    ck_assert_int_eq(mqtt_encode_pingresp(buf, sizeof buf), 2);
    ck_assert_mem_eq(buf, "\xD0\x00", 2);
    ck_assert_int_eq(mqtt_encode_pingreq(buf, sizeof buf), 2);
    ck_assert_mem_eq(buf, "\xC0\x00", 2);
    ck_assert_int_eq(mqtt_encode_pingresp(buf, 1), MQTT_ERR_BUF_SMALL);

    struct mqtt_span none = {NULL, 0};
    ck_assert_int_eq(mqtt_encode_disconnect(buf, sizeof buf, 4, 0x81, sp("x")), 2);
    ck_assert_mem_eq(buf, "\xE0\x00", 2);
    ck_assert_int_eq(mqtt_encode_disconnect(buf, sizeof buf, 5, 0, none), 2);
    n = mqtt_encode_disconnect(buf, sizeof buf, 5, 0x95, none);
    ck_assert_int_eq(n, 4);
    ck_assert_mem_eq(buf, "\xE0\x02\x95\x00", 4);
    ck_assert_int_eq(redecode(buf, n, 5, &u), 0);
    ck_assert_uint_eq(u.d.reason, 0x95);
    n = mqtt_encode_disconnect(buf, sizeof buf, 5, 0x81, sp("bad"));
    ck_assert_int_eq(n, 10);
    ck_assert_int_eq(redecode(buf, n, 5, &u), 0);
    ck_assert(span_is(u.d.props.reason_string, "bad"));
    ck_assert_int_eq(mqtt_encode_disconnect(buf, 9, 5, 0x81, sp("bad")), MQTT_ERR_BUF_SMALL);
}
END_TEST

START_TEST(test_encode_client_packets)
{
    static uint8_t buf[4096];
    union decoded u;
    struct mqtt_user_prop up = {sp("usp-endpoint-id"), sp("proto::ctl")};
    struct mqtt_props_out cp = {.has_request_response_info = 1, .request_response_info = 1,
                                .has_request_problem_info = 1, .request_problem_info = 0,
                                .has_session_expiry = 1, .session_expiry = 10,
                                .has_receive_maximum = 1, .receive_maximum = 5,
                                .has_max_packet_size = 1, .max_packet_size = 9999,
                                .has_topic_alias_max = 1, .topic_alias_max = 2,
                                .user = &up, .n_user = 1};
    struct mqtt_props_out wp = {.has_will_delay = 1, .will_delay = 3,
                                .content_type = sp("text")};
    struct mqtt_connect_out c = {.level = 5, .clean_start = 1, .keep_alive = 45,
                                 .client_id = sp("cid"), .username = sp("u"),
                                 .password = sp("p"), .will = 1, .will_qos = 1,
                                 .will_retain = 1, .will_topic = sp("w"),
                                 .will_payload = sp("gone"), .props = &cp, .will_props = &wp};
    long n = mqtt_encode_connect(buf, sizeof buf, &c);
    ck_assert_int_gt(n, 0);
    ck_assert_int_eq(redecode(buf, n, 5, &u), 0);
    ck_assert_uint_eq(u.c.level, 5);
    ck_assert_int_eq(u.c.clean_start, 1);
    ck_assert_uint_eq(u.c.keep_alive, 45);
    ck_assert(span_is(u.c.client_id, "cid"));
    ck_assert(span_is(u.c.username, "u"));
    ck_assert(span_is(u.c.password, "p"));
    ck_assert_int_eq(u.c.will_qos, 1);
    ck_assert_int_eq(u.c.will_retain, 1);
    ck_assert(span_is(u.c.will_topic, "w"));
    ck_assert(span_is(u.c.will_payload, "gone"));
    ck_assert_uint_eq(u.c.props.request_response_info, 1);
    ck_assert(MQTT_HAS(&u.c.props, MQTT_P_REQUEST_PROBLEM_INFO));
    ck_assert_uint_eq(u.c.props.session_expiry, 10);
    ck_assert_uint_eq(u.c.props.receive_maximum, 5);
    ck_assert_uint_eq(u.c.props.max_packet_size, 9999);
    ck_assert_uint_eq(u.c.props.topic_alias_max, 2);
    ck_assert(span_is(mqtt_user_prop_get(&u.c.props, "usp-endpoint-id")->value, "proto::ctl"));
    ck_assert_uint_eq(u.c.will_props.will_delay, 3);
    ck_assert(span_is(u.c.will_props.content_type, "text"));
    for (size_t cap = 0; cap < (size_t)n; cap++)
        ck_assert_int_eq(mqtt_encode_connect(buf, cap, &c), MQTT_ERR_BUF_SMALL);

    struct mqtt_connect_out c3 = {.level = 4, .clean_start = 1, .keep_alive = 60,
                                  .client_id = sp("proto::agent")};
    n = mqtt_encode_connect(buf, sizeof buf, &c3);
    ck_assert_int_eq(n, 2 + 10 + 2 + 12);
    ck_assert_mem_eq(buf, "\x10\x18\x00\x04MQTT\x04\x02\x00\x3c\x00\x0cproto::agent", 26);
    ck_assert_int_eq(redecode(buf, n, 4, &u), 0);
    ck_assert_int_eq(u.c.has_username, 0);
    struct mqtt_connect_out cempty = {.level = 5};
    n = mqtt_encode_connect(buf, sizeof buf, &cempty);
    ck_assert_int_eq(redecode(buf, n, 5, &u), 0);
    ck_assert_uint_eq(u.c.client_id.len, 0);
    struct mqtt_props_out willonly = {.has_will_delay = 1};
    struct mqtt_connect_out cbad = {.level = 5, .props = &willonly};
    ck_assert_int_eq(mqtt_encode_connect(buf, sizeof buf, &cbad), MQTT_ERR_PROPERTY);
    struct mqtt_connect_out cq = {.level = 4, .will = 1, .will_qos = 3, .will_topic = sp("w")};
    ck_assert_int_eq(mqtt_encode_connect(buf, sizeof buf, &cq), MQTT_ERR_QOS);

    struct mqtt_sub_filter f[2] = {{sp("usp/a/#"), 0x01}, {sp("x/+"), 0x2E}};
    struct mqtt_props_out sp5 = {.has_subscription_id = 1, .subscription_id = 7,
                                 .user = &up, .n_user = 1};
    n = mqtt_encode_subscribe(buf, sizeof buf, MQTT_SUBSCRIBE, 5, 3, &sp5, f, 2);
    ck_assert_int_eq(redecode(buf, n, 5, &u), 0);
    ck_assert_uint_eq(u.s.packet_id, 3);
    ck_assert_uint_eq(u.s.n, 2);
    ck_assert_uint_eq(u.s.filters[1].options, 0x2E);
    ck_assert_uint_eq(u.s.props.subscription_id, 7);
    n = mqtt_encode_subscribe(buf, sizeof buf, MQTT_SUBSCRIBE, 4, 3, &sp5, f, 2);
    ck_assert_int_eq(redecode(buf, n, 4, &u), 0);
    ck_assert_uint_eq(u.s.filters[1].options, 2);
    n = mqtt_encode_subscribe(buf, sizeof buf, MQTT_UNSUBSCRIBE, 4, 4, NULL, f, 2);
    ck_assert_int_eq(n, 2 + 2 + 9 + 5);
    ck_assert_int_eq(redecode(buf, n, 4, &u), 0);
    ck_assert(span_is(u.s.filters[0].filter, "usp/a/#"));
    ck_assert_int_eq(mqtt_encode_subscribe(buf, sizeof buf, MQTT_UNSUBSCRIBE, 5, 4, &sp5, f, 2),
                     MQTT_ERR_PROPERTY);
    ck_assert_int_eq(mqtt_encode_subscribe(buf, sizeof buf, MQTT_SUBSCRIBE, 5, 4, NULL, f, 0),
                     MQTT_ERR_NO_FILTERS);
    ck_assert_int_eq(mqtt_encode_subscribe(buf, sizeof buf, MQTT_SUBSCRIBE, 5, 0, NULL, f, 1),
                     MQTT_ERR_PACKET_ID);
    ck_assert_int_eq(mqtt_encode_subscribe(buf, sizeof buf, MQTT_SUBACK, 5, 1, NULL, f, 1),
                     MQTT_ERR_BAD_FLAGS);
    ck_assert_int_eq(mqtt_encode_subscribe(buf, 5, MQTT_SUBSCRIBE, 4, 1, NULL, f, 1),
                     MQTT_ERR_BUF_SMALL);
}
END_TEST

START_TEST(test_names)
{
    for (int e = MQTT_ERR_TOO_MANY; e <= 0; e++)
        ck_assert_str_ne(mqtt_err_name(e), "unknown");
    ck_assert_str_eq(mqtt_err_name(MQTT_ERR_TOPIC), "topic");
    ck_assert_str_eq(mqtt_err_name(0), "need_more");
    ck_assert_str_eq(mqtt_err_name(-99), "unknown");
    ck_assert_str_eq(mqtt_err_name(1), "unknown");
    ck_assert_str_eq(mqtt_type_name(MQTT_CONNECT), "CONNECT");
    ck_assert_str_eq(mqtt_type_name(MQTT_UNSUBACK), "UNSUBACK");
    ck_assert_str_eq(mqtt_type_name(MQTT_AUTH), "AUTH");
    ck_assert_str_eq(mqtt_type_name(0), "UNKNOWN");
    ck_assert_str_eq(mqtt_type_name(16), "UNKNOWN");
    ck_assert_uint_eq(mqtt_err_reason(MQTT_ERR_MALFORMED), 0x81);
    ck_assert_uint_eq(mqtt_err_reason(MQTT_ERR_UTF8), 0x81);
    ck_assert_uint_eq(mqtt_err_reason(MQTT_ERR_REMAINING_LENGTH), 0x81);
    ck_assert_uint_eq(mqtt_err_reason(MQTT_ERR_PROPERTY), 0x82);
    ck_assert_uint_eq(mqtt_err_reason(MQTT_ERR_TOO_LARGE), 0x95);
    ck_assert_uint_eq(mqtt_err_reason(MQTT_ERR_TOPIC), 0x90);
    ck_assert_uint_eq(mqtt_err_reason(MQTT_ERR_PROTOCOL_LEVEL), 0x84);
}
END_TEST

static Suite *mqtt_suite(void)
{
    Suite *s = suite_create("mqtt_codec");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fixed_header_flags);
    tcase_add_test(tc, test_remaining_length_edges);
    tcase_add_test(tc, test_max_packet_boundary);
    tcase_add_test(tc, test_connect_v311);
    tcase_add_test(tc, test_connect_v5);
    tcase_add_test(tc, test_connect_errors);
    tcase_add_test(tc, test_publish);
    tcase_add_test(tc, test_publish_subscription_ids);
    tcase_add_test(tc, test_acks);
    tcase_add_test(tc, test_subscribe);
    tcase_add_test(tc, test_subscribe_filter_cap);
    tcase_add_test(tc, test_disconnect_auth_ping);
    tcase_add_test(tc, test_connack_suback);
    tcase_add_test(tc, test_every_property_in_every_packet);
    tcase_add_test(tc, test_property_values);
    tcase_add_test(tc, test_user_properties_many);
    tcase_add_test(tc, test_utf8);
    tcase_add_test(tc, test_topic_validity);
    tcase_add_test(tc, test_topic_matching);
    tcase_add_test(tc, test_valid_packets_decode);
    tcase_add_test(tc, test_every_prefix);
    tcase_add_test(tc, test_encode_connack);
    tcase_add_test(tc, test_encode_publish);
    tcase_add_test(tc, test_encode_acks);
    tcase_add_test(tc, test_encode_client_packets);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);

    /* Needs fork mode (Check's default) to observe the signal. */
    TCase *tg = tcase_create("guard");
    tcase_add_test_raise_signal(tg, test_guard_faults, SIGSEGV);
    suite_add_tcase(s, tg);
    return s;
}

int main(void)
{
    guard_init();
    SRunner *sr = srunner_create(mqtt_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
