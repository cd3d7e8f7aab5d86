/* mqtt_props.c — MQTT field primitives and the v5 property lists (decode and encode).
 *
 * One table says, for every property identifier of MQTT 5.0 §2.2.2.2, its value type, the
 * struct mqtt_props flag it sets and the packets that may carry it; the decoder and the
 * encoder both obey it, so a property is accepted exactly where it may be written. The
 * reader never trusts a length before comparing it with the bytes left.
 */
#include "relay/mtp/mqtt_props.h"

#include <assert.h>
#include <string.h>

/* ------------------------------------------------------------------ integers */

int mqtt_vbi_parse(const uint8_t *p, size_t n, uint32_t *v)
{
    uint32_t val = 0;
    for (size_t i = 0; i < 4; i++) {
        if (i >= n)
            return 0;
        val |= (uint32_t)(p[i] & 0x7Fu) << (7 * i);
        if ((p[i] & 0x80u) == 0) {
            /* A trailing zero group adds nothing: a shorter encoding existed. */
            if (i > 0 && p[i] == 0)
                return -2;
            *v = val;
            return (int)i + 1;
        }
    }
    return -1;
}

size_t mqtt_vbi_len(uint32_t v)
{
    return v < 128u ? 1 : v < 16384u ? 2 : v < 2097152u ? 3 : 4;
}

uint8_t *mqtt_put_vbi(uint8_t *o, uint32_t v)
{
    do {
        uint8_t b = (uint8_t)(v & 0x7Fu);
        v >>= 7;
        *o++ = v ? (uint8_t)(b | 0x80u) : b;
    } while (v);
    return o;
}

uint8_t *mqtt_put_u16(uint8_t *o, uint16_t v)
{
    o[0] = (uint8_t)(v >> 8);
    o[1] = (uint8_t)v;
    return o + 2;
}

uint8_t *mqtt_put_u32(uint8_t *o, uint32_t v)
{
    o[0] = (uint8_t)(v >> 24);
    o[1] = (uint8_t)(v >> 16);
    o[2] = (uint8_t)(v >> 8);
    o[3] = (uint8_t)v;
    return o + 4;
}

uint8_t *mqtt_put_bin(uint8_t *o, struct mqtt_span s)
{
    o = mqtt_put_u16(o, (uint16_t)s.len);
    if (s.len > 0)
        memcpy(o, s.ptr, s.len);
    return o + s.len;
}

/* ------------------------------------------------------------------ reader */

int mqtt_rd_u8(struct mqtt_rd *r, uint8_t *v)
{
    if (mqtt_rd_left(r) < 1)
        return MQTT_ERR_MALFORMED;
    *v = r->p[r->off++];
    return 0;
}

int mqtt_rd_u16(struct mqtt_rd *r, uint16_t *v)
{
    if (mqtt_rd_left(r) < 2)
        return MQTT_ERR_MALFORMED;
    const uint8_t *p = r->p + r->off;
    *v = (uint16_t)((p[0] << 8) | p[1]);
    r->off += 2;
    return 0;
}

int mqtt_rd_u32(struct mqtt_rd *r, uint32_t *v)
{
    if (mqtt_rd_left(r) < 4)
        return MQTT_ERR_MALFORMED;
    const uint8_t *p = r->p + r->off;
    *v = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    r->off += 4;
    return 0;
}

int mqtt_rd_vbi(struct mqtt_rd *r, uint32_t *v)
{
    int n = mqtt_vbi_parse(r->p + r->off, mqtt_rd_left(r), v);
    if (n <= 0)
        return MQTT_ERR_MALFORMED;
    r->off += (size_t)n;
    return 0;
}

int mqtt_rd_bin(struct mqtt_rd *r, struct mqtt_span *s)
{
    uint16_t n;
    size_t start = r->off;
    if (mqtt_rd_u16(r, &n) != 0)
        return MQTT_ERR_MALFORMED;
    if (mqtt_rd_left(r) < n) {
        r->off = start;
        return MQTT_ERR_MALFORMED;
    }
    s->ptr = r->p + r->off;
    s->len = n;
    r->off += n;
    return 0;
}

int mqtt_rd_str(struct mqtt_rd *r, struct mqtt_span *s)
{
    int rc = mqtt_rd_bin(r, s);
    if (rc != 0)
        return rc;
    return mqtt_utf8_valid(s->ptr, s->len) ? 0 : MQTT_ERR_UTF8;
}

/* ------------------------------------------------------------------ property table */

enum prop_kind { K_BYTE, K_U16, K_U32, K_VBI, K_STR, K_BIN, K_PAIR };

#define C(t) (1u << (t))
#define C_WILL (1u << MQTT_CTX_WILL)
#define C_ACKS (C(MQTT_PUBACK) | C(MQTT_PUBREC) | C(MQTT_PUBREL) | C(MQTT_PUBCOMP))
#define C_USER (C_WILL | C(MQTT_CONNECT) | C(MQTT_CONNACK) | C(MQTT_PUBLISH) | C_ACKS | \
                C(MQTT_SUBSCRIBE) | C(MQTT_SUBACK) | C(MQTT_UNSUBSCRIBE) | C(MQTT_UNSUBACK) | \
                C(MQTT_DISCONNECT) | C(MQTT_AUTH))

struct prop_def {
    uint8_t bit;      /* MQTT_P_x */
    uint8_t kind;     /* enum prop_kind */
    uint16_t allowed; /* contexts: bit 0 will, bit t packet type t */
};

/* Indexed by property identifier; allowed == 0 marks an unassigned identifier. */
static const struct prop_def prop_defs[0x2B] = {
    [0x01] = {MQTT_P_PAYLOAD_FORMAT, K_BYTE, C(MQTT_PUBLISH) | C_WILL},
    [0x02] = {MQTT_P_MESSAGE_EXPIRY, K_U32, C(MQTT_PUBLISH) | C_WILL},
    [0x03] = {MQTT_P_CONTENT_TYPE, K_STR, C(MQTT_PUBLISH) | C_WILL},
    [0x08] = {MQTT_P_RESPONSE_TOPIC, K_STR, C(MQTT_PUBLISH) | C_WILL},
    [0x09] = {MQTT_P_CORRELATION_DATA, K_BIN, C(MQTT_PUBLISH) | C_WILL},
    [0x0B] = {MQTT_P_SUBSCRIPTION_ID, K_VBI, C(MQTT_PUBLISH) | C(MQTT_SUBSCRIBE)},
    [0x11] = {MQTT_P_SESSION_EXPIRY, K_U32,
              C(MQTT_CONNECT) | C(MQTT_CONNACK) | C(MQTT_DISCONNECT)},
    [0x12] = {MQTT_P_ASSIGNED_CLIENT_ID, K_STR, C(MQTT_CONNACK)},
    [0x13] = {MQTT_P_SERVER_KEEP_ALIVE, K_U16, C(MQTT_CONNACK)},
    [0x15] = {MQTT_P_AUTH_METHOD, K_STR, C(MQTT_CONNECT) | C(MQTT_CONNACK) | C(MQTT_AUTH)},
    [0x16] = {MQTT_P_AUTH_DATA, K_BIN, C(MQTT_CONNECT) | C(MQTT_CONNACK) | C(MQTT_AUTH)},
    [0x17] = {MQTT_P_REQUEST_PROBLEM_INFO, K_BYTE, C(MQTT_CONNECT)},
    [0x18] = {MQTT_P_WILL_DELAY, K_U32, C_WILL},
    [0x19] = {MQTT_P_REQUEST_RESPONSE_INFO, K_BYTE, C(MQTT_CONNECT)},
    [0x1A] = {MQTT_P_RESPONSE_INFO, K_STR, C(MQTT_CONNACK)},
    [0x1C] = {MQTT_P_SERVER_REFERENCE, K_STR, C(MQTT_CONNACK) | C(MQTT_DISCONNECT)},
    [0x1F] = {MQTT_P_REASON_STRING, K_STR,
              C(MQTT_CONNACK) | C_ACKS | C(MQTT_SUBACK) | C(MQTT_UNSUBACK) |
              C(MQTT_DISCONNECT) | C(MQTT_AUTH)},
    [0x21] = {MQTT_P_RECEIVE_MAXIMUM, K_U16, C(MQTT_CONNECT) | C(MQTT_CONNACK)},
    [0x22] = {MQTT_P_TOPIC_ALIAS_MAX, K_U16, C(MQTT_CONNECT) | C(MQTT_CONNACK)},
    [0x23] = {MQTT_P_TOPIC_ALIAS, K_U16, C(MQTT_PUBLISH)},
    [0x24] = {MQTT_P_MAX_QOS, K_BYTE, C(MQTT_CONNACK)},
    [0x25] = {MQTT_P_RETAIN_AVAILABLE, K_BYTE, C(MQTT_CONNACK)},
    [0x26] = {MQTT_P_USER_PROPERTY, K_PAIR, C_USER},
    [0x27] = {MQTT_P_MAX_PACKET_SIZE, K_U32, C(MQTT_CONNECT) | C(MQTT_CONNACK)},
    [0x28] = {MQTT_P_WILDCARD_AVAILABLE, K_BYTE, C(MQTT_CONNACK)},
    [0x29] = {MQTT_P_SUB_ID_AVAILABLE, K_BYTE, C(MQTT_CONNACK)},
    [0x2A] = {MQTT_P_SHARED_AVAILABLE, K_BYTE, C(MQTT_CONNACK)},
};

#define N_PROP_IDS (sizeof prop_defs / sizeof prop_defs[0])

/* Identifier for each MQTT_P_ bit (the table read backwards), for the encoder. */
static uint8_t prop_id(unsigned bit)
{
    for (uint8_t id = 1; id < N_PROP_IDS; id++)
        if (prop_defs[id].allowed != 0 && prop_defs[id].bit == bit)
            return id;
    return 0;
}

static int prop_allowed(unsigned bit, unsigned ctx)
{
    uint8_t id = prop_id(bit);
    return id != 0 && (prop_defs[id].allowed >> ctx) & 1u;
}

/* ------------------------------------------------------------------ decoding */

/* A property value of the kind of D at R, checked and stored in OUT. */
static int prop_read(struct mqtt_rd *r, const struct prop_def *d, int first,
                     struct mqtt_props *out)
{
    uint8_t b = 0;
    uint16_t h = 0;
    uint32_t w = 0;
    struct mqtt_span s = {NULL, 0}, s2 = {NULL, 0};
    int rc;

    switch ((enum prop_kind)d->kind) {
    case K_BYTE: rc = mqtt_rd_u8(r, &b); break;
    case K_U16: rc = mqtt_rd_u16(r, &h); break;
    case K_U32: rc = mqtt_rd_u32(r, &w); break;
    case K_VBI: rc = mqtt_rd_vbi(r, &w); break;
    case K_BIN: rc = mqtt_rd_bin(r, &s); break;
    case K_STR: rc = mqtt_rd_str(r, &s); break;
    case K_PAIR:
        rc = mqtt_rd_str(r, &s);
        if (rc == 0)
            rc = mqtt_rd_str(r, &s2);
        break;
    default: rc = MQTT_ERR_PROPERTY; break;
    }
    if (rc != 0)
        return rc;
    /* Booleans and Maximum QoS are 0|1; these may not be 0 (MQTT 5.0 §3.1.2.11, §3.3.2.3). */
    if (d->kind == K_BYTE && b > 1)
        return MQTT_ERR_PROPERTY;
    if ((d->kind == K_U16 || d->kind == K_U32 || d->kind == K_VBI) && h == 0 && w == 0 &&
        (d->bit == MQTT_P_RECEIVE_MAXIMUM || d->bit == MQTT_P_TOPIC_ALIAS ||
         d->bit == MQTT_P_MAX_PACKET_SIZE || d->bit == MQTT_P_SUBSCRIPTION_ID))
        return MQTT_ERR_PROPERTY;
    if (d->bit == MQTT_P_RESPONSE_TOPIC && !mqtt_topic_name_valid(s))
        return MQTT_ERR_PROPERTY;
    if (!first)
        return 0; /* a repeated Subscription Identifier: the first one is kept */

    switch (d->bit) {
    case MQTT_P_PAYLOAD_FORMAT: out->payload_format = b; break;
    case MQTT_P_MESSAGE_EXPIRY: out->message_expiry = w; break;
    case MQTT_P_CONTENT_TYPE: out->content_type = s; break;
    case MQTT_P_RESPONSE_TOPIC: out->response_topic = s; break;
    case MQTT_P_CORRELATION_DATA: out->correlation_data = s; break;
    case MQTT_P_SUBSCRIPTION_ID: out->subscription_id = w; break;
    case MQTT_P_SESSION_EXPIRY: out->session_expiry = w; break;
    case MQTT_P_ASSIGNED_CLIENT_ID: out->assigned_client_id = s; break;
    case MQTT_P_SERVER_KEEP_ALIVE: out->server_keep_alive = h; break;
    case MQTT_P_AUTH_METHOD: out->auth_method = s; break;
    case MQTT_P_AUTH_DATA: out->auth_data = s; break;
    case MQTT_P_REQUEST_PROBLEM_INFO: out->request_problem_info = b; break;
    case MQTT_P_WILL_DELAY: out->will_delay = w; break;
    case MQTT_P_REQUEST_RESPONSE_INFO: out->request_response_info = b; break;
    case MQTT_P_RESPONSE_INFO: out->response_info = s; break;
    case MQTT_P_SERVER_REFERENCE: out->server_reference = s; break;
    case MQTT_P_REASON_STRING: out->reason_string = s; break;
    case MQTT_P_RECEIVE_MAXIMUM: out->receive_maximum = h; break;
    case MQTT_P_TOPIC_ALIAS_MAX: out->topic_alias_max = h; break;
    case MQTT_P_TOPIC_ALIAS: out->topic_alias = h; break;
    case MQTT_P_MAX_QOS: out->max_qos = b; break;
    case MQTT_P_RETAIN_AVAILABLE: out->retain_available = b; break;
    case MQTT_P_MAX_PACKET_SIZE: out->max_packet_size = w; break;
    case MQTT_P_WILDCARD_AVAILABLE: out->wildcard_available = b; break;
    case MQTT_P_SUB_ID_AVAILABLE: out->sub_id_available = b; break;
    case MQTT_P_SHARED_AVAILABLE: out->shared_available = b; break;
    case MQTT_P_USER_PROPERTY:
        if (out->n_user < MQTT_MAX_USER_PROPS) {
            out->user[out->n_user].key = s;
            out->user[out->n_user].value = s2;
            out->n_user++;
        }
        out->n_user_total++;
        break;
    default: return MQTT_ERR_PROPERTY;
    }
    return 0;
}

int mqtt_props_decode(struct mqtt_rd *r, unsigned ctx, struct mqtt_props *out)
{
    memset(out, 0, sizeof *out);
    uint32_t plen;
    int rc = mqtt_rd_vbi(r, &plen);
    if (rc != 0)
        return rc;
    if (plen > mqtt_rd_left(r))
        return MQTT_ERR_MALFORMED;
    struct mqtt_rd pr = {r->p + r->off, plen, 0};
    r->off += plen;

    while (mqtt_rd_left(&pr) > 0) {
        uint32_t id;
        /* Identifiers are Variable Byte Integers; every assigned one fits in one byte. */
        rc = mqtt_rd_vbi(&pr, &id);
        if (rc != 0)
            return rc;
        if (id >= N_PROP_IDS || !((prop_defs[id].allowed >> ctx) & 1u))
            return MQTT_ERR_PROPERTY;
        const struct prop_def *d = &prop_defs[id];
        int seen = MQTT_HAS(out, d->bit) != 0;
        int repeatable = d->bit == MQTT_P_USER_PROPERTY ||
                         (d->bit == MQTT_P_SUBSCRIPTION_ID && ctx == MQTT_PUBLISH);
        if (seen && !repeatable)
            return MQTT_ERR_PROPERTY;
        rc = prop_read(&pr, d, !seen || d->bit == MQTT_P_USER_PROPERTY, out);
        if (rc != 0)
            return rc;
        out->present |= 1u << d->bit;
    }
    if (MQTT_HAS(out, MQTT_P_AUTH_DATA) && !MQTT_HAS(out, MQTT_P_AUTH_METHOD))
        return MQTT_ERR_PROPERTY;
    return 0;
}

const struct mqtt_user_prop *mqtt_user_prop_get(const struct mqtt_props *p, const char *key)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < p->n_user; i++) {
        const struct mqtt_user_prop *u = &p->user[i];
        if (u->key.len == n && (n == 0 || memcmp(u->key.ptr, key, n) == 0))
            return u;
    }
    return NULL;
}

/* ------------------------------------------------------------------ encoding */

/* One encoder pass per property, shared by sizing and writing so they cannot disagree:
 * with O == NULL it only checks and counts. */
struct pw {
    uint8_t *o;      /* write position, or NULL when sizing */
    unsigned ctx;
    size_t total;
    int err;
};

static void pw_head(struct pw *w, unsigned bit, size_t vlen)
{
    if (w->err)
        return;
    if (!prop_allowed(bit, w->ctx)) {
        w->err = MQTT_ERR_PROPERTY;
        return;
    }
    w->total += 1 + vlen;
    if (w->total > MQTT_MAX_REMAINING)
        w->err = MQTT_ERR_TOO_LARGE;
    else if (w->o)
        *w->o++ = prop_id(bit);
}

static void pw_byte(struct pw *w, int has, unsigned bit, uint8_t v)
{
    if (!has)
        return;
    if (v > 1 && !w->err)
        w->err = MQTT_ERR_PROPERTY;
    pw_head(w, bit, 1);
    if (!w->err && w->o)
        *w->o++ = v;
}

static void pw_u16(struct pw *w, int has, unsigned bit, uint16_t v)
{
    if (!has)
        return;
    pw_head(w, bit, 2);
    if (!w->err && w->o)
        w->o = mqtt_put_u16(w->o, v);
}

static void pw_u32(struct pw *w, int has, unsigned bit, uint32_t v)
{
    if (!has)
        return;
    pw_head(w, bit, 4);
    if (!w->err && w->o)
        w->o = mqtt_put_u32(w->o, v);
}

static void pw_span(struct pw *w, unsigned bit, struct mqtt_span s)
{
    if (s.ptr == NULL)
        return;
    if (s.len > 65535 && !w->err)
        w->err = MQTT_ERR_TOO_LARGE;
    pw_head(w, bit, 2 + s.len);
    if (!w->err && w->o)
        w->o = mqtt_put_bin(w->o, s);
}

static void props_pass(struct pw *w, const struct mqtt_props_out *p)
{
    if (p == NULL)
        return;
    pw_byte(w, p->has_payload_format, MQTT_P_PAYLOAD_FORMAT, p->payload_format);
    pw_u32(w, p->has_message_expiry, MQTT_P_MESSAGE_EXPIRY, p->message_expiry);
    pw_span(w, MQTT_P_CONTENT_TYPE, p->content_type);
    pw_span(w, MQTT_P_RESPONSE_TOPIC, p->response_topic);
    pw_span(w, MQTT_P_CORRELATION_DATA, p->correlation_data);
    if (p->has_subscription_id) {
        uint32_t v = p->subscription_id;
        if ((v == 0 || v > MQTT_MAX_REMAINING) && !w->err)
            w->err = MQTT_ERR_PROPERTY;
        pw_head(w, MQTT_P_SUBSCRIPTION_ID, w->err ? 1 : mqtt_vbi_len(v));
        if (!w->err && w->o)
            w->o = mqtt_put_vbi(w->o, v);
    }
    pw_u32(w, p->has_session_expiry, MQTT_P_SESSION_EXPIRY, p->session_expiry);
    pw_span(w, MQTT_P_ASSIGNED_CLIENT_ID, p->assigned_client_id);
    pw_u16(w, p->has_server_keep_alive, MQTT_P_SERVER_KEEP_ALIVE, p->server_keep_alive);
    pw_byte(w, p->has_request_problem_info, MQTT_P_REQUEST_PROBLEM_INFO,
            p->request_problem_info);
    pw_u32(w, p->has_will_delay, MQTT_P_WILL_DELAY, p->will_delay);
    pw_byte(w, p->has_request_response_info, MQTT_P_REQUEST_RESPONSE_INFO,
            p->request_response_info);
    pw_span(w, MQTT_P_RESPONSE_INFO, p->response_info);
    pw_span(w, MQTT_P_SERVER_REFERENCE, p->server_reference);
    pw_span(w, MQTT_P_REASON_STRING, p->reason_string);
    if (p->has_receive_maximum && p->receive_maximum == 0 && !w->err)
        w->err = MQTT_ERR_PROPERTY;
    pw_u16(w, p->has_receive_maximum, MQTT_P_RECEIVE_MAXIMUM, p->receive_maximum);
    pw_u16(w, p->has_topic_alias_max, MQTT_P_TOPIC_ALIAS_MAX, p->topic_alias_max);
    if (p->has_topic_alias && p->topic_alias == 0 && !w->err)
        w->err = MQTT_ERR_PROPERTY;
    pw_u16(w, p->has_topic_alias, MQTT_P_TOPIC_ALIAS, p->topic_alias);
    pw_byte(w, p->has_max_qos, MQTT_P_MAX_QOS, p->max_qos);
    pw_byte(w, p->has_retain_available, MQTT_P_RETAIN_AVAILABLE, p->retain_available);
    for (size_t i = 0; i < p->n_user && !w->err; i++) {
        struct mqtt_span k = p->user[i].key, v = p->user[i].value;
        if (k.len > 65535 || v.len > 65535) {
            w->err = MQTT_ERR_TOO_LARGE;
            break;
        }
        pw_head(w, MQTT_P_USER_PROPERTY, 4 + k.len + v.len);
        if (!w->err && w->o) {
            w->o = mqtt_put_bin(w->o, k);
            w->o = mqtt_put_bin(w->o, v);
        }
    }
    if (p->has_max_packet_size && p->max_packet_size == 0 && !w->err)
        w->err = MQTT_ERR_PROPERTY;
    pw_u32(w, p->has_max_packet_size, MQTT_P_MAX_PACKET_SIZE, p->max_packet_size);
    pw_byte(w, p->has_wildcard_available, MQTT_P_WILDCARD_AVAILABLE, p->wildcard_available);
    pw_byte(w, p->has_sub_id_available, MQTT_P_SUB_ID_AVAILABLE, p->sub_id_available);
    pw_byte(w, p->has_shared_available, MQTT_P_SHARED_AVAILABLE, p->shared_available);
}

long mqtt_props_out_size(const struct mqtt_props_out *p, unsigned ctx)
{
    struct pw w = {NULL, ctx, 0, 0};
    props_pass(&w, p);
    return w.err ? w.err : (long)w.total;
}

uint8_t *mqtt_props_out_write(uint8_t *o, const struct mqtt_props_out *p, unsigned ctx,
                              size_t list_len)
{
    o = mqtt_put_vbi(o, (uint32_t)list_len);
    struct pw w = {o, ctx, 0, 0};
    props_pass(&w, p);
    assert(w.err == 0 && w.total == list_len); /* the caller sized P for CTX first */
    return w.o;
}
