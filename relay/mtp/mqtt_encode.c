/* mqtt_encode.c — MQTT 3.1.1 / 5.0 packet encoders (server packets, and the client packets
 * tests and tools send). See mqtt_codec.h for the API.
 *
 * Every encoder sizes the whole packet first, with the same rules it writes by, and only
 * then touches OUT: an error leaves OUT as it was, and a success writes exactly the size
 * computed (asserted).
 */
#include "relay/mtp/mqtt_codec.h"
#include "relay/mtp/mqtt_props.h"

#include <assert.h>
#include <string.h>

/* Remaining length REM (already checked <= MQTT_MAX_REMAINING) into a whole-packet size. */
static size_t packet_len(size_t rem)
{
    return 1 + mqtt_vbi_len((uint32_t)rem) + rem;
}

static uint8_t *put_fixed(uint8_t *o, uint8_t first, size_t rem)
{
    *o++ = first;
    return mqtt_put_vbi(o, (uint32_t)rem);
}

static int level_ok(uint8_t level)
{
    return level == MQTT_LEVEL_311 || level == MQTT_LEVEL_5;
}

/* Property list size for v5 (0 for 3.1.1, where PROPS is ignored). *WIRE gets the list plus
 * its length prefix. */
static int props_size(const struct mqtt_props_out *p, uint8_t level, unsigned ctx,
                      size_t *list, size_t *wire)
{
    *list = *wire = 0;
    if (level != MQTT_LEVEL_5)
        return 0;
    long n = mqtt_props_out_size(p, ctx);
    if (n < 0)
        return (int)n;
    *list = (size_t)n;
    *wire = mqtt_vbi_len((uint32_t)n) + (size_t)n;
    return 0;
}

static int check_total(size_t rem, size_t cap, size_t *total)
{
    if (rem > MQTT_MAX_REMAINING)
        return MQTT_ERR_TOO_LARGE;
    *total = packet_len(rem);
    return *total > cap ? MQTT_ERR_BUF_SMALL : 0;
}

#define TRY(x) do { int rc_ = (x); if (rc_ != 0) return rc_; } while (0)

long mqtt_encode_connack(uint8_t *out, size_t cap, uint8_t level, int session_present,
                         uint8_t reason, const struct mqtt_props_out *props)
{
    if (!level_ok(level))
        return MQTT_ERR_PROTOCOL_LEVEL;
    size_t list, wire, total;
    TRY(props_size(props, level, MQTT_CONNACK, &list, &wire));
    size_t rem = 2 + wire;
    TRY(check_total(rem, cap, &total));

    uint8_t *o = put_fixed(out, MQTT_CONNACK << 4, rem);
    *o++ = session_present ? 1 : 0;
    *o++ = reason;
    if (level == MQTT_LEVEL_5)
        o = mqtt_props_out_write(o, props, MQTT_CONNACK, list);
    assert((size_t)(o - out) == total);
    return (long)total;
}

/* Checks and sizes of a PUBLISH: *LIST = property list, *HEAD = fixed + variable header,
 * *REM = remaining length (variable header + payload). */
static int publish_sizes(uint8_t level, uint8_t qos, int dup, struct mqtt_span topic,
                         uint16_t packet_id, const struct mqtt_props_out *props,
                         size_t payload_len, size_t *list, size_t *head, size_t *rem)
{
    if (!level_ok(level))
        return MQTT_ERR_PROTOCOL_LEVEL;
    if (qos > 2)
        return MQTT_ERR_QOS;
    if (dup && qos == 0)
        return MQTT_ERR_BAD_FLAGS;
    if (qos > 0 && packet_id == 0)
        return MQTT_ERR_PACKET_ID;
    if (topic.len > 65535)
        return MQTT_ERR_TOO_LARGE;
    size_t wire;
    TRY(props_size(props, level, MQTT_PUBLISH, list, &wire));
    size_t var = 2 + topic.len + (qos > 0 ? 2 : 0) + wire;
    if (var > MQTT_MAX_REMAINING || payload_len > MQTT_MAX_REMAINING - var)
        return MQTT_ERR_TOO_LARGE;
    *rem = var + payload_len;
    *head = 1 + mqtt_vbi_len((uint32_t)*rem) + var;
    return 0;
}

static uint8_t *put_publish_head(uint8_t *o, uint8_t level, uint8_t qos, int retain, int dup,
                                 struct mqtt_span topic, uint16_t packet_id,
                                 const struct mqtt_props_out *props, size_t list, size_t rem)
{
    uint8_t first = (uint8_t)((MQTT_PUBLISH << 4) | (dup ? 0x08u : 0) | (unsigned)(qos << 1) |
                              (retain ? 1u : 0));
    o = put_fixed(o, first, rem);
    o = mqtt_put_bin(o, topic);
    if (qos > 0)
        o = mqtt_put_u16(o, packet_id);
    if (level == MQTT_LEVEL_5)
        o = mqtt_props_out_write(o, props, MQTT_PUBLISH, list);
    return o;
}

long mqtt_encode_publish_head(uint8_t *out, size_t cap, uint8_t level, uint8_t qos, int retain,
                              int dup, struct mqtt_span topic, uint16_t packet_id,
                              const struct mqtt_props_out *props, size_t payload_len)
{
    size_t list, head, rem;
    TRY(publish_sizes(level, qos, dup, topic, packet_id, props, payload_len, &list, &head,
                      &rem));
    if (head > cap)
        return MQTT_ERR_BUF_SMALL;
    uint8_t *o = put_publish_head(out, level, qos, retain, dup, topic, packet_id, props, list,
                                  rem);
    assert((size_t)(o - out) == head);
    (void)o;
    return (long)head;
}

long mqtt_encode_publish(uint8_t *out, size_t cap, uint8_t level, uint8_t qos, int retain,
                         int dup, struct mqtt_span topic, uint16_t packet_id,
                         const struct mqtt_props_out *props, struct mqtt_span payload)
{
    size_t list, head, rem;
    TRY(publish_sizes(level, qos, dup, topic, packet_id, props, payload.len, &list, &head,
                      &rem));
    size_t total = head + payload.len;
    if (total > cap)
        return MQTT_ERR_BUF_SMALL;
    uint8_t *o = put_publish_head(out, level, qos, retain, dup, topic, packet_id, props, list,
                                  rem);
    if (payload.len > 0)
        memcpy(o, payload.ptr, payload.len);
    assert((size_t)(o - out) == head);
    return (long)total;
}

long mqtt_encode_ack(uint8_t *out, size_t cap, uint8_t type, uint8_t level, uint16_t packet_id,
                     uint8_t reason)
{
    if (type < MQTT_PUBACK || type > MQTT_PUBCOMP)
        return MQTT_ERR_BAD_FLAGS;
    if (!level_ok(level))
        return MQTT_ERR_PROTOCOL_LEVEL;
    if (packet_id == 0)
        return MQTT_ERR_PACKET_ID;
    int with_reason = level == MQTT_LEVEL_5 && reason != 0;
    size_t rem = with_reason ? 3 : 2, total;
    TRY(check_total(rem, cap, &total));
    uint8_t *o = put_fixed(out, (uint8_t)((type << 4) | (type == MQTT_PUBREL ? 0x02u : 0)), rem);
    o = mqtt_put_u16(o, packet_id);
    if (with_reason)
        *o++ = reason;
    assert((size_t)(o - out) == total);
    return (long)total;
}

long mqtt_encode_suback(uint8_t *out, size_t cap, uint8_t type, uint8_t level,
                        uint16_t packet_id, const uint8_t *reasons, size_t n)
{
    if (type != MQTT_SUBACK && type != MQTT_UNSUBACK)
        return MQTT_ERR_BAD_FLAGS;
    if (!level_ok(level))
        return MQTT_ERR_PROTOCOL_LEVEL;
    if (packet_id == 0)
        return MQTT_ERR_PACKET_ID;
    int v5 = level == MQTT_LEVEL_5;
    if (!v5 && type == MQTT_UNSUBACK)
        n = 0; /* a 3.1.1 UNSUBACK carries only the packet id */
    else if (n == 0)
        return MQTT_ERR_NO_FILTERS;
    if (n > MQTT_MAX_REMAINING)
        return MQTT_ERR_TOO_LARGE;
    size_t rem = 2 + (v5 ? 1 : 0) + n, total;
    TRY(check_total(rem, cap, &total));
    uint8_t *o = put_fixed(out, (uint8_t)(type << 4), rem);
    o = mqtt_put_u16(o, packet_id);
    if (v5)
        *o++ = 0; /* no properties */
    if (n > 0) {
        memcpy(o, reasons, n);
        o += n;
    }
    assert((size_t)(o - out) == total);
    return (long)total;
}

static long encode_empty(uint8_t *out, size_t cap, uint8_t type)
{
    if (cap < 2)
        return MQTT_ERR_BUF_SMALL;
    out[0] = (uint8_t)(type << 4);
    out[1] = 0;
    return 2;
}

long mqtt_encode_pingresp(uint8_t *out, size_t cap)
{
    return encode_empty(out, cap, MQTT_PINGRESP);
}

long mqtt_encode_pingreq(uint8_t *out, size_t cap)
{
    return encode_empty(out, cap, MQTT_PINGREQ);
}

long mqtt_encode_disconnect(uint8_t *out, size_t cap, uint8_t level, uint8_t reason,
                            struct mqtt_span reason_string)
{
    if (!level_ok(level))
        return MQTT_ERR_PROTOCOL_LEVEL;
    if (level == MQTT_LEVEL_311 || (reason == 0 && reason_string.ptr == NULL))
        return encode_empty(out, cap, MQTT_DISCONNECT);
    struct mqtt_props_out p;
    memset(&p, 0, sizeof p);
    p.reason_string = reason_string;
    size_t list, wire, total;
    TRY(props_size(&p, level, MQTT_DISCONNECT, &list, &wire));
    size_t rem = 1 + wire;
    TRY(check_total(rem, cap, &total));
    uint8_t *o = put_fixed(out, MQTT_DISCONNECT << 4, rem);
    *o++ = reason;
    o = mqtt_props_out_write(o, &p, MQTT_DISCONNECT, list);
    assert((size_t)(o - out) == total);
    return (long)total;
}

/* 2 + LEN for a string or binary field, or 0 (after setting *ERR) if LEN is too long. */
static size_t field_len(struct mqtt_span s, int *err)
{
    if (s.len > 65535) {
        *err = MQTT_ERR_TOO_LARGE;
        return 0;
    }
    return 2 + s.len;
}

long mqtt_encode_connect(uint8_t *out, size_t cap, const struct mqtt_connect_out *c)
{
    if (!level_ok(c->level))
        return MQTT_ERR_PROTOCOL_LEVEL;
    int v5 = c->level == MQTT_LEVEL_5, err = 0;
    if (c->will && c->will_qos > 2)
        return MQTT_ERR_QOS;
    size_t list, wire, wlist = 0, wwire = 0, total;
    TRY(props_size(c->props, c->level, MQTT_CONNECT, &list, &wire));
    if (c->will)
        TRY(props_size(c->will_props, c->level, MQTT_CTX_WILL, &wlist, &wwire));

    size_t rem = 10 + wire + field_len(c->client_id, &err);
    if (c->will)
        rem += wwire + field_len(c->will_topic, &err) + field_len(c->will_payload, &err);
    if (c->username.ptr)
        rem += field_len(c->username, &err);
    if (c->password.ptr)
        rem += field_len(c->password, &err);
    if (err)
        return err;
    TRY(check_total(rem, cap, &total));

    uint8_t flags = (uint8_t)((c->clean_start ? 0x02u : 0) | (c->username.ptr ? 0x80u : 0) |
                              (c->password.ptr ? 0x40u : 0));
    if (c->will)
        flags = (uint8_t)(flags | 0x04u | (unsigned)(c->will_qos << 3) |
                          (c->will_retain ? 0x20u : 0));
    static const struct mqtt_span name = {(const uint8_t *)"MQTT", 4};
    uint8_t *o = put_fixed(out, MQTT_CONNECT << 4, rem);
    o = mqtt_put_bin(o, name);
    *o++ = c->level;
    *o++ = flags;
    o = mqtt_put_u16(o, c->keep_alive);
    if (v5)
        o = mqtt_props_out_write(o, c->props, MQTT_CONNECT, list);
    o = mqtt_put_bin(o, c->client_id);
    if (c->will) {
        if (v5)
            o = mqtt_props_out_write(o, c->will_props, MQTT_CTX_WILL, wlist);
        o = mqtt_put_bin(o, c->will_topic);
        o = mqtt_put_bin(o, c->will_payload);
    }
    if (c->username.ptr)
        o = mqtt_put_bin(o, c->username);
    if (c->password.ptr)
        o = mqtt_put_bin(o, c->password);
    assert((size_t)(o - out) == total);
    return (long)total;
}

long mqtt_encode_subscribe(uint8_t *out, size_t cap, uint8_t type, uint8_t level,
                           uint16_t packet_id, const struct mqtt_props_out *props,
                           const struct mqtt_sub_filter *filters, size_t n)
{
    if (type != MQTT_SUBSCRIBE && type != MQTT_UNSUBSCRIBE)
        return MQTT_ERR_BAD_FLAGS;
    if (!level_ok(level))
        return MQTT_ERR_PROTOCOL_LEVEL;
    if (packet_id == 0)
        return MQTT_ERR_PACKET_ID;
    if (n == 0)
        return MQTT_ERR_NO_FILTERS;
    size_t list, wire, total;
    TRY(props_size(props, level, type, &list, &wire));
    size_t rem = 2 + wire;
    int err = 0;
    for (size_t i = 0; i < n && !err && rem <= MQTT_MAX_REMAINING; i++)
        rem += field_len(filters[i].filter, &err) + (type == MQTT_SUBSCRIBE ? 1 : 0);
    if (err)
        return err;
    TRY(check_total(rem, cap, &total));

    uint8_t *o = put_fixed(out, (uint8_t)((type << 4) | 0x02u), rem);
    o = mqtt_put_u16(o, packet_id);
    if (level == MQTT_LEVEL_5)
        o = mqtt_props_out_write(o, props, type, list);
    for (size_t i = 0; i < n; i++) {
        o = mqtt_put_bin(o, filters[i].filter);
        if (type == MQTT_SUBSCRIBE)
            *o++ = level == MQTT_LEVEL_5 ? filters[i].options : MQTT_SUB_QOS(filters[i].options);
    }
    assert((size_t)(o - out) == total);
    return (long)total;
}
