/* mqtt_codec.c — MQTT 3.1.1 / 5.0 fixed header, packet decoders, topics and UTF-8, names.
 * See mqtt_codec.h for the API and the strictness chosen; the v5 property lists and the
 * field primitives are in mqtt_props.c, the encoders in mqtt_encode.c.
 *
 * Decoders walk the body with a bounded reader (struct mqtt_rd): a field that does not fit
 * in what is left is MQTT_ERR_MALFORMED, and every decoder ends by requiring that nothing
 * is left over, so a body is either read exactly or rejected.
 */
#include "relay/mtp/mqtt_codec.h"
#include "relay/mtp/mqtt_props.h"

#include <string.h>

/* ------------------------------------------------------------------ fixed header */

/* Errors the first byte alone proves. */
static int check_first_byte(uint8_t b)
{
    unsigned type = b >> 4, flags = b & 0x0Fu;
    switch (type) {
    case 0:
        return MQTT_ERR_BAD_FLAGS;
    case MQTT_PUBLISH:
        if (((flags >> 1) & 3u) == 3u)
            return MQTT_ERR_QOS;
        if ((flags & 0x08u) && ((flags >> 1) & 3u) == 0)
            return MQTT_ERR_BAD_FLAGS; /* DUP on QoS 0 (MQTT-3.3.1-2) */
        return 0;
    case MQTT_PUBREL:
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE:
        return flags == 0x02u ? 0 : MQTT_ERR_BAD_FLAGS;
    default:
        return flags == 0 ? 0 : MQTT_ERR_BAD_FLAGS;
    }
}

long mqtt_packet_size(const uint8_t *buf, size_t len, uint32_t max_packet, struct mqtt_fixed *fh)
{
    if (len == 0)
        return MQTT_NEED_MORE;
    int rc = check_first_byte(buf[0]);
    if (rc != 0)
        return rc;

    uint32_t rem;
    int n = mqtt_vbi_parse(buf + 1, len - 1, &rem);
    if (n == 0)
        return MQTT_NEED_MORE;
    if (n < 0)
        return MQTT_ERR_REMAINING_LENGTH;

    uint8_t type = (uint8_t)(buf[0] >> 4);
    if ((type == MQTT_PINGREQ || type == MQTT_PINGRESP) && rem != 0)
        return MQTT_ERR_MALFORMED;
    uint64_t total = (uint64_t)rem + 1 + (unsigned)n;
    if (max_packet != 0 && total > max_packet)
        return MQTT_ERR_TOO_LARGE;

    fh->type = type;
    fh->flags = (uint8_t)(buf[0] & 0x0Fu);
    fh->header_len = (uint8_t)(1 + n);
    fh->remaining = rem;
    return (long)total;
}

/* ------------------------------------------------------------------ UTF-8 and topics */

int mqtt_utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            if (c == 0)
                return 0;
            i++;
            continue;
        }
        size_t k;
        uint32_t cp;
        /* 0xC0/0xC1 can only start overlong forms; 0xF5.. would exceed U+10FFFF. */
        if (c >= 0xC2 && c <= 0xDF) {
            k = 1;
            cp = c & 0x1Fu;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            cp = c & 0x0Fu;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            cp = c & 0x07u;
        } else {
            return 0;
        }
        if (n - i - 1 < k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            uint8_t b = p[i + j];
            if ((b & 0xC0u) != 0x80u)
                return 0;
            cp = (cp << 6) | (b & 0x3Fu);
        }
        if (k == 2 && (cp < 0x800u || (cp >= 0xD800u && cp <= 0xDFFFu)))
            return 0;
        if (k == 3 && (cp < 0x10000u || cp > 0x10FFFFu))
            return 0;
        i += k + 1;
    }
    return 1;
}

int mqtt_topic_name_valid(struct mqtt_span t)
{
    if (t.len == 0 || t.len > 65535 || !mqtt_utf8_valid(t.ptr, t.len))
        return 0;
    for (size_t i = 0; i < t.len; i++)
        if (t.ptr[i] == '+' || t.ptr[i] == '#')
            return 0;
    return 1;
}

int mqtt_topic_filter_valid(struct mqtt_span f)
{
    if (f.len == 0 || f.len > 65535 || !mqtt_utf8_valid(f.ptr, f.len))
        return 0;
    for (size_t i = 0; i < f.len; i++) {
        uint8_t c = f.ptr[i];
        int level_start = i == 0 || f.ptr[i - 1] == '/';
        if (c == '+' && (!level_start || (i + 1 < f.len && f.ptr[i + 1] != '/')))
            return 0;
        if (c == '#' && (!level_start || i + 1 != f.len))
            return 0;
    }
    return 1;
}

int mqtt_topic_filter_shared(struct mqtt_span f, struct mqtt_span *name, struct mqtt_span *inner)
{
    static const char prefix[] = "$share/";
    const size_t plen = sizeof prefix - 1;
    if (f.len < plen || memcmp(f.ptr, prefix, plen) != 0)
        return 0;
    size_t i = plen;
    while (i < f.len && f.ptr[i] != '/') {
        if (f.ptr[i] == '+' || f.ptr[i] == '#')
            return -1;
        i++;
    }
    if (i == plen || i == f.len)
        return -1;
    struct mqtt_span n = {f.ptr + plen, i - plen};
    struct mqtt_span in = {f.ptr + i + 1, f.len - i - 1};
    if (!mqtt_topic_filter_valid(in))
        return -1;
    if (name)
        *name = n;
    if (inner)
        *inner = in;
    return 1;
}

static size_t level_end(struct mqtt_span s, size_t from)
{
    while (from < s.len && s.ptr[from] != '/')
        from++;
    return from;
}

int mqtt_topic_matches(struct mqtt_span filter, struct mqtt_span topic)
{
    if (!mqtt_topic_filter_valid(filter) || !mqtt_topic_name_valid(topic))
        return 0;
    /* MQTT-4.7.2-1: wildcards at the first level do not reach '$' topics. */
    if (topic.ptr[0] == '$' && (filter.ptr[0] == '+' || filter.ptr[0] == '#'))
        return 0;

    size_t fi = 0, ti = 0;
    for (;;) {
        size_t fe = level_end(filter, fi), te = level_end(topic, ti);
        size_t fl = fe - fi;
        if (fl == 1 && filter.ptr[fi] == '#')
            return 1;
        if (!(fl == 1 && filter.ptr[fi] == '+') &&
            (fl != te - ti || memcmp(filter.ptr + fi, topic.ptr + ti, fl) != 0))
            return 0;
        int fdone = fe == filter.len, tdone = te == topic.len;
        if (fdone || tdone) {
            if (fdone && tdone)
                return 1;
            if (fdone)
                return 0;
            /* The topic ended: only a final "/#" still matches (its parent level). */
            return filter.len - fe == 2 && filter.ptr[fe + 1] == '#';
        }
        fi = fe + 1;
        ti = te + 1;
    }
}

/* ------------------------------------------------------------------ reason codes */

static const uint8_t rc_puback[] = {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99};
static const uint8_t rc_pubrel[] = {0x00, 0x92};
static const uint8_t rc_disconnect[] = {
    0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E, 0x8F, 0x90, 0x93, 0x94,
    0x95, 0x96, 0x97, 0x98, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2};
static const uint8_t rc_auth[] = {0x00, 0x18, 0x19};
static const uint8_t rc_connack[] = {
    0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A,
    0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F};
static const uint8_t rc_suback[] = {0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91,
                                    0x97, 0x9E, 0xA1, 0xA2};
static const uint8_t rc3_suback[] = {0x00, 0x01, 0x02, 0x80};
static const uint8_t rc_unsuback[] = {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91};

#define IN_SET(set, rc) (memchr((set), (rc), sizeof(set)) != NULL)

/* ------------------------------------------------------------------ decoders */

static int level_ok(uint8_t level)
{
    return level == MQTT_LEVEL_311 || level == MQTT_LEVEL_5;
}

static int done(const struct mqtt_rd *r)
{
    return mqtt_rd_left(r) == 0 ? 0 : MQTT_ERR_MALFORMED;
}

#define TRY(x) do { int rc_ = (x); if (rc_ != 0) return rc_; } while (0)

int mqtt_decode_connect(const uint8_t *body, size_t len, struct mqtt_connect *out)
{
    memset(out, 0, sizeof *out);
    struct mqtt_rd r = {body, len, 0};
    struct mqtt_span name;
    uint8_t flags;

    TRY(mqtt_rd_bin(&r, &name));
    if (name.len != 4 || memcmp(name.ptr, "MQTT", 4) != 0) {
        out->level = mqtt_rd_left(&r) > 0 ? body[r.off] : 0;
        return MQTT_ERR_PROTOCOL_NAME;
    }
    TRY(mqtt_rd_u8(&r, &out->level));
    if (!level_ok(out->level))
        return MQTT_ERR_PROTOCOL_LEVEL;
    int v5 = out->level == MQTT_LEVEL_5;

    TRY(mqtt_rd_u8(&r, &flags));
    if (flags & 0x01u)
        return MQTT_ERR_MALFORMED;
    out->clean_start = (flags >> 1) & 1;
    out->will = (flags >> 2) & 1;
    out->will_qos = (flags >> 3) & 3;
    out->will_retain = (flags >> 5) & 1;
    out->has_password = (flags >> 6) & 1;
    out->has_username = (flags >> 7) & 1;
    if (!out->will && (out->will_qos || out->will_retain))
        return MQTT_ERR_MALFORMED;
    if (out->will_qos == 3)
        return MQTT_ERR_QOS;
    if (!v5 && out->has_password && !out->has_username)
        return MQTT_ERR_MALFORMED; /* MQTT-3.1.2-22 */
    TRY(mqtt_rd_u16(&r, &out->keep_alive));
    if (v5)
        TRY(mqtt_props_decode(&r, MQTT_CONNECT, &out->props));

    TRY(mqtt_rd_str(&r, &out->client_id));
    if (out->will) {
        if (v5)
            TRY(mqtt_props_decode(&r, MQTT_CTX_WILL, &out->will_props));
        TRY(mqtt_rd_str(&r, &out->will_topic));
        if (!mqtt_topic_name_valid(out->will_topic))
            return MQTT_ERR_TOPIC;
        TRY(mqtt_rd_bin(&r, &out->will_payload));
    }
    if (out->has_username)
        TRY(mqtt_rd_str(&r, &out->username));
    if (out->has_password)
        TRY(mqtt_rd_bin(&r, &out->password));
    return done(&r);
}

int mqtt_decode_publish(const uint8_t *body, size_t len, uint8_t flags, uint8_t level,
                        struct mqtt_publish *out)
{
    memset(out, 0, sizeof *out);
    if (!level_ok(level))
        return MQTT_ERR_PROTOCOL_LEVEL;
    TRY(check_first_byte((uint8_t)((MQTT_PUBLISH << 4) | (flags & 0x0Fu))));
    out->qos = (uint8_t)((flags >> 1) & 3u);
    out->dup = (uint8_t)((flags >> 3) & 1u);
    out->retain = (uint8_t)(flags & 1u);

    struct mqtt_rd r = {body, len, 0};
    TRY(mqtt_rd_str(&r, &out->topic));
    if (out->qos > 0) {
        TRY(mqtt_rd_u16(&r, &out->packet_id));
        if (out->packet_id == 0)
            return MQTT_ERR_PACKET_ID;
    }
    if (level == MQTT_LEVEL_5)
        TRY(mqtt_props_decode(&r, MQTT_PUBLISH, &out->props));
    if (out->topic.len == 0) {
        /* MQTT 5.0 §3.3.2.3.4: an empty name stands for the topic an alias was set to. */
        if (!MQTT_HAS(&out->props, MQTT_P_TOPIC_ALIAS))
            return MQTT_ERR_TOPIC;
    } else if (!mqtt_topic_name_valid(out->topic)) {
        return MQTT_ERR_TOPIC;
    }
    out->payload.ptr = body + r.off;
    out->payload.len = mqtt_rd_left(&r);
    return 0;
}

static int decode_sub(const uint8_t *body, size_t len, uint8_t type, uint8_t level,
                      struct mqtt_subscribe *out)
{
    memset(out, 0, sizeof *out);
    if (!level_ok(level))
        return MQTT_ERR_PROTOCOL_LEVEL;
    int v5 = level == MQTT_LEVEL_5;
    struct mqtt_rd r = {body, len, 0};

    TRY(mqtt_rd_u16(&r, &out->packet_id));
    if (out->packet_id == 0)
        return MQTT_ERR_PACKET_ID;
    if (v5)
        TRY(mqtt_props_decode(&r, type, &out->props));

    while (mqtt_rd_left(&r) > 0) {
        if (out->n == MQTT_MAX_FILTERS)
            return MQTT_ERR_TOO_MANY;
        struct mqtt_sub_filter *sf = &out->filters[out->n];
        TRY(mqtt_rd_str(&r, &sf->filter));
        if (type == MQTT_SUBSCRIBE)
            TRY(mqtt_rd_u8(&r, &sf->options));
        if (!mqtt_topic_filter_valid(sf->filter))
            return MQTT_ERR_TOPIC;
        int shared = v5 ? mqtt_topic_filter_shared(sf->filter, NULL, NULL) : 0;
        if (shared < 0)
            return MQTT_ERR_TOPIC;
        uint8_t o = sf->options;
        if (!v5 && (o & 0xFCu))
            return MQTT_ERR_MALFORMED; /* MQTT-3.8.3-4 (3.1.1) */
        if (v5 && ((o & 0xC0u) || MQTT_SUB_RETAIN_HANDLING(o) == 3))
            return MQTT_ERR_MALFORMED; /* MQTT-3.8.3-5 */
        if (v5 && shared && (o & MQTT_SUB_NO_LOCAL))
            return MQTT_ERR_MALFORMED; /* MQTT-3.8.3-4 (5.0) */
        if (MQTT_SUB_QOS(o) == 3)
            return MQTT_ERR_QOS;
        out->n++;
    }
    return out->n == 0 ? MQTT_ERR_NO_FILTERS : 0;
}

int mqtt_decode_subscribe(const uint8_t *body, size_t len, uint8_t level,
                          struct mqtt_subscribe *out)
{
    return decode_sub(body, len, MQTT_SUBSCRIBE, level, out);
}

int mqtt_decode_unsubscribe(const uint8_t *body, size_t len, uint8_t level,
                            struct mqtt_subscribe *out)
{
    return decode_sub(body, len, MQTT_UNSUBSCRIBE, level, out);
}

int mqtt_decode_ack(const uint8_t *body, size_t len, uint8_t type, uint8_t level,
                    struct mqtt_ack *out)
{
    memset(out, 0, sizeof *out);
    if (type < MQTT_PUBACK || type > MQTT_PUBCOMP)
        return MQTT_ERR_BAD_FLAGS;
    if (!level_ok(level))
        return MQTT_ERR_PROTOCOL_LEVEL;
    struct mqtt_rd r = {body, len, 0};
    TRY(mqtt_rd_u16(&r, &out->packet_id));
    if (out->packet_id == 0)
        return MQTT_ERR_PACKET_ID;
    if (level == MQTT_LEVEL_5 && mqtt_rd_left(&r) > 0) {
        TRY(mqtt_rd_u8(&r, &out->reason));
        int ok = type == MQTT_PUBACK || type == MQTT_PUBREC ? IN_SET(rc_puback, out->reason)
                                                            : IN_SET(rc_pubrel, out->reason);
        if (!ok)
            return MQTT_ERR_MALFORMED;
        if (mqtt_rd_left(&r) > 0)
            TRY(mqtt_props_decode(&r, type, &out->props));
    }
    return done(&r);
}

int mqtt_decode_disconnect(const uint8_t *body, size_t len, uint8_t level,
                           struct mqtt_disconnect *out)
{
    memset(out, 0, sizeof *out);
    if (!level_ok(level))
        return MQTT_ERR_PROTOCOL_LEVEL;
    struct mqtt_rd r = {body, len, 0};
    if (level == MQTT_LEVEL_5 && len > 0) {
        TRY(mqtt_rd_u8(&r, &out->reason));
        if (!IN_SET(rc_disconnect, out->reason))
            return MQTT_ERR_MALFORMED;
        if (mqtt_rd_left(&r) > 0)
            TRY(mqtt_props_decode(&r, MQTT_DISCONNECT, &out->props));
    }
    return done(&r);
}

int mqtt_decode_auth(const uint8_t *body, size_t len, struct mqtt_disconnect *out)
{
    memset(out, 0, sizeof *out);
    if (len == 0)
        return 0;
    struct mqtt_rd r = {body, len, 0};
    TRY(mqtt_rd_u8(&r, &out->reason));
    if (!IN_SET(rc_auth, out->reason))
        return MQTT_ERR_MALFORMED;
    /* Reason code and property length are omitted together or not at all (§3.15.2.2.1). */
    TRY(mqtt_props_decode(&r, MQTT_AUTH, &out->props));
    return done(&r);
}

int mqtt_decode_connack(const uint8_t *body, size_t len, uint8_t level, struct mqtt_connack *out)
{
    memset(out, 0, sizeof *out);
    if (!level_ok(level))
        return MQTT_ERR_PROTOCOL_LEVEL;
    struct mqtt_rd r = {body, len, 0};
    uint8_t flags;
    TRY(mqtt_rd_u8(&r, &flags));
    if (flags & 0xFEu)
        return MQTT_ERR_MALFORMED;
    out->session_present = flags;
    TRY(mqtt_rd_u8(&r, &out->reason));
    if (level == MQTT_LEVEL_5) {
        if (!IN_SET(rc_connack, out->reason))
            return MQTT_ERR_MALFORMED;
        TRY(mqtt_props_decode(&r, MQTT_CONNACK, &out->props));
    } else if (out->reason > MQTT_RC3_NOT_AUTHORIZED) {
        return MQTT_ERR_MALFORMED;
    }
    if (out->session_present && out->reason != 0)
        return MQTT_ERR_MALFORMED; /* MQTT-3.2.2-4 / -6 */
    return done(&r);
}

int mqtt_decode_suback(const uint8_t *body, size_t len, uint8_t type, uint8_t level,
                       struct mqtt_suback *out)
{
    memset(out, 0, sizeof *out);
    if (type != MQTT_SUBACK && type != MQTT_UNSUBACK)
        return MQTT_ERR_BAD_FLAGS;
    if (!level_ok(level))
        return MQTT_ERR_PROTOCOL_LEVEL;
    int v5 = level == MQTT_LEVEL_5;
    struct mqtt_rd r = {body, len, 0};
    TRY(mqtt_rd_u16(&r, &out->packet_id));
    if (out->packet_id == 0)
        return MQTT_ERR_PACKET_ID;
    if (!v5 && type == MQTT_UNSUBACK)
        return done(&r);
    if (v5)
        TRY(mqtt_props_decode(&r, type, &out->props));
    out->reasons.ptr = body + r.off;
    out->reasons.len = mqtt_rd_left(&r);
    if (out->reasons.len == 0)
        return MQTT_ERR_NO_FILTERS;
    for (size_t i = 0; i < out->reasons.len; i++) {
        uint8_t rc = out->reasons.ptr[i];
        int ok = type == MQTT_UNSUBACK ? IN_SET(rc_unsuback, rc)
                 : v5                  ? IN_SET(rc_suback, rc)
                                       : IN_SET(rc3_suback, rc);
        if (!ok)
            return MQTT_ERR_MALFORMED;
    }
    return 0;
}

/* ------------------------------------------------------------------ names */

const char *mqtt_err_name(int err)
{
    switch (err) {
    case MQTT_NEED_MORE: return "need_more";
    case MQTT_ERR_MALFORMED: return "malformed";
    case MQTT_ERR_REMAINING_LENGTH: return "remaining_length";
    case MQTT_ERR_TOO_LARGE: return "too_large";
    case MQTT_ERR_BAD_FLAGS: return "bad_flags";
    case MQTT_ERR_PROTOCOL_NAME: return "protocol_name";
    case MQTT_ERR_PROTOCOL_LEVEL: return "protocol_level";
    case MQTT_ERR_UTF8: return "utf8";
    case MQTT_ERR_TOPIC: return "topic";
    case MQTT_ERR_PROPERTY: return "property";
    case MQTT_ERR_QOS: return "qos";
    case MQTT_ERR_PACKET_ID: return "packet_id";
    case MQTT_ERR_NO_FILTERS: return "no_filters";
    case MQTT_ERR_BUF_SMALL: return "buf_small";
    case MQTT_ERR_TOO_MANY: return "too_many";
    default: return "unknown";
    }
}

const char *mqtt_type_name(int type)
{
    static const char *const names[] = {
        NULL, "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
        "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT",
        "AUTH"};
    if (type < MQTT_CONNECT || type > MQTT_AUTH)
        return "UNKNOWN";
    return names[type];
}

uint8_t mqtt_err_reason(int err)
{
    switch (err) {
    case MQTT_ERR_TOO_LARGE: return MQTT_RC_PACKET_TOO_LARGE;
    case MQTT_ERR_PROPERTY:
    case MQTT_ERR_QOS:
    case MQTT_ERR_PACKET_ID:
    case MQTT_ERR_NO_FILTERS:
    case MQTT_ERR_BAD_FLAGS: return MQTT_RC_PROTOCOL_ERROR;
    case MQTT_ERR_TOPIC: return MQTT_RC_TOPIC_NAME_INVALID;
    case MQTT_ERR_PROTOCOL_LEVEL: return MQTT_RC_UNSUPPORTED_VERSION;
    case MQTT_ERR_TOO_MANY: return MQTT_RC_QUOTA_EXCEEDED;
    default: return MQTT_RC_MALFORMED;
    }
}
