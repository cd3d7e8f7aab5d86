/* mqtt_props.h — internals shared by mqtt_codec.c and mqtt_props.c (not a public API).
 *
 * A bounded reader over one packet body (every read checks the bytes left and reports
 * MQTT_ERR_MALFORMED when they are missing), Variable Byte Integers, and the v5 property
 * list decoder and encoder. Property contexts are packet types (1..15); context 0 is the
 * will properties of a CONNECT.
 */
#ifndef USPRELAY_MQTT_PROPS_H
#define USPRELAY_MQTT_PROPS_H

#include "relay/mtp/mqtt_codec.h"

#define MQTT_CTX_WILL 0u

struct mqtt_rd {
    const uint8_t *p;
    size_t len, off; /* off <= len always */
};

static inline size_t mqtt_rd_left(const struct mqtt_rd *r)
{
    return r->len - r->off;
}

/* Variable Byte Integer at P (N bytes available). Returns the bytes used (1..4) with *V
 * set, 0 when N ends before the last byte, -1 when a 4th byte still has its continuation
 * bit, -2 when the encoding is not minimal (a multi-byte value whose last byte is 0). */
int mqtt_vbi_parse(const uint8_t *p, size_t n, uint32_t *v);
size_t mqtt_vbi_len(uint32_t v);            /* V <= MQTT_MAX_REMAINING */
uint8_t *mqtt_put_vbi(uint8_t *o, uint32_t v);
uint8_t *mqtt_put_u16(uint8_t *o, uint16_t v);
uint8_t *mqtt_put_u32(uint8_t *o, uint32_t v);
uint8_t *mqtt_put_bin(uint8_t *o, struct mqtt_span s); /* u16 length + bytes; len <= 65535 */

/* Each returns 0, or MQTT_ERR_MALFORMED when the bytes are not there (R->off unchanged). */
int mqtt_rd_u8(struct mqtt_rd *r, uint8_t *v);
int mqtt_rd_u16(struct mqtt_rd *r, uint16_t *v);
int mqtt_rd_u32(struct mqtt_rd *r, uint32_t *v);
int mqtt_rd_vbi(struct mqtt_rd *r, uint32_t *v);      /* also non-minimal / too long */
int mqtt_rd_bin(struct mqtt_rd *r, struct mqtt_span *s);
/* A binary field that must be an MQTT UTF-8 string: also MQTT_ERR_UTF8. */
int mqtt_rd_str(struct mqtt_rd *r, struct mqtt_span *s);

/* Property Length + properties at R, for packet context CTX. Fills *OUT (zeroed first) and
 * advances R past the list. Returns 0, MQTT_ERR_MALFORMED, MQTT_ERR_UTF8 or
 * MQTT_ERR_PROPERTY (see struct mqtt_props for the value checks). */
int mqtt_props_decode(struct mqtt_rd *r, unsigned ctx, struct mqtt_props *out);

/* Size of the property list P would write in context CTX, without its length prefix
 * (0 for P == NULL). Returns it, or MQTT_ERR_PROPERTY (not allowed in CTX, or a value out of
 * range) or MQTT_ERR_TOO_LARGE (a string > 65535 bytes, or the list > MQTT_MAX_REMAINING). */
long mqtt_props_out_size(const struct mqtt_props_out *p, unsigned ctx);
/* Write the Property Length LIST_LEN (what mqtt_props_out_size returned for P and CTX) and
 * the list; returns the end. */
uint8_t *mqtt_props_out_write(uint8_t *o, const struct mqtt_props_out *p, unsigned ctx,
                              size_t list_len);

#endif
