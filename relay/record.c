/* record.c — zero-copy USP Record header scanner (see record.h for the contract).
 *
 * One pass over the top-level fields; the record_type member's bytes are walked once, when
 * met, with the same framing checks. The framing rules mirror protobuf-c 1.4.1's unpack
 * (tags and length prefixes at most 5 bytes, varints at most 10, wire types 0/1/2/5 only,
 * a known field must carry its declared wire type) and add the checks protobuf-c leaves
 * out (64-bit overflow, field number 0 written as an over-long tag).
 */
#include "relay/record.h"

#include "relay/endpoint_id.h"

#include <string.h>

enum {
    WT_VARINT = 0,
    WT_FIXED64 = 1,
    WT_LEN = 2,
    WT_FIXED32 = 5,
    VARINT_MAX_BYTES = 10,
    /* protobuf-c refuses tags and length prefixes longer than this. */
    SHORT_VARINT_MAX_BYTES = 5,
};

/* One decoded field. For WT_LEN, VAL/LEN are the contents; for the fixed types they are
 * the raw little-endian bytes; for WT_VARINT the value is in V. */
struct field {
    uint32_t num;
    unsigned wt;
    uint64_t v;
    const uint8_t *val;
    size_t len;
};

/* Decode a varint of at most MAX bytes from *P (< END), advancing *P. */
static int read_varint(const uint8_t **p, const uint8_t *end, unsigned max, uint64_t *out)
{
    const uint8_t *s = *p;
    size_t avail = (size_t)(end - s);

    if (avail > 0 && s[0] < 0x80) {
        *out = s[0];
        *p = s + 1;
        return RECORD_OK;
    }
    uint64_t v = 0;
    unsigned shift = 0;
    for (unsigned i = 0; i < max; i++) {
        if (i == avail)
            return RECORD_ERR_VARINT_TRUNCATED;
        uint8_t b = s[i];
        /* The 10th byte of a 64-bit varint holds only bit 63. */
        if (i == VARINT_MAX_BYTES - 1 && b > 1)
            return RECORD_ERR_VARINT_OVERFLOW;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) {
            *out = v;
            *p = s + i + 1;
            return RECORD_OK;
        }
        shift += 7;
    }
    return RECORD_ERR_VARINT_OVERFLOW;
}

/* Read one field (tag and value) from *P, advancing past it. Framing only: what the field
 * number means is the caller's business. */
static int read_field(const uint8_t **p, const uint8_t *end, struct field *f)
{
    uint64_t tag;
    int rc = read_varint(p, end, SHORT_VARINT_MAX_BYTES, &tag);
    if (rc != RECORD_OK)
        return rc;
    /* A 5-byte tag carries at most 35 bits, so the field number fits in 32. */
    f->num = (uint32_t)(tag >> 3);
    f->wt = (unsigned)(tag & 7);
    if (f->num == 0)
        return RECORD_ERR_FIELD_ZERO;

    size_t avail = (size_t)(end - *p);
    switch (f->wt) {
    case WT_VARINT:
        return read_varint(p, end, VARINT_MAX_BYTES, &f->v);
    case WT_FIXED64:
    case WT_FIXED32: {
        size_t n = f->wt == WT_FIXED64 ? 8 : 4;
        if (avail < n)
            return RECORD_ERR_PAST_END;
        f->val = *p;
        f->len = n;
        *p += n;
        return RECORD_OK;
    }
    case WT_LEN: {
        uint64_t n;
        rc = read_varint(p, end, SHORT_VARINT_MAX_BYTES, &n);
        if (rc != RECORD_OK)
            return rc;
        if (n > (uint64_t)(end - *p))
            return RECORD_ERR_PAST_END;
        f->val = *p;
        f->len = (size_t)n;
        *p += n;
        return RECORD_OK;
    }
    default:
        return RECORD_ERR_WIRE_TYPE;
    }
}

/* Wire type each known sub-message field must have, indexed by field number; -1 = not a
 * field of that message. Index 0 is never used (field 0 is refused earlier). */
enum { SUB_MAX_FIELD = 7 };
static const signed char sub_wire_types[][SUB_MAX_FIELD + 1] = {
    [RECORD_NO_SESSION] = {-1, -1, WT_LEN, -1, -1, -1, -1, -1},
    [RECORD_SESSION] = {-1, WT_VARINT, WT_VARINT, WT_VARINT, WT_VARINT, WT_VARINT, WT_VARINT, WT_LEN},
    [RECORD_WS_CONNECT] = {-1, -1, -1, -1, -1, -1, -1, -1},
    [RECORD_MQTT_CONNECT] = {-1, WT_VARINT, WT_LEN, -1, -1, -1, -1, -1},
    [RECORD_STOMP_CONNECT] = {-1, WT_VARINT, WT_LEN, -1, -1, -1, -1, -1},
    [RECORD_DISCONNECT] = {-1, WT_LEN, WT_FIXED32, -1, -1, -1, -1, -1},
    [RECORD_UDS_CONNECT] = {-1, -1, -1, -1, -1, -1, -1, -1},
};

/* Walk the record_type member TYPE whose contents are BUF/LEN, recording the fields the
 * relay uses. Unknown fields are skipped; repeated scalars keep the last value, as every
 * protobuf parser does. */
static int scan_sub(enum record_type type, const uint8_t *buf, size_t len,
                    struct record_header *hdr)
{
    const uint8_t *p = buf, *end = buf + len;
    const signed char *wts = sub_wire_types[type];

    while (p < end) {
        struct field f;
        int rc = read_field(&p, end, &f);
        if (rc == RECORD_ERR_VARINT_TRUNCATED || rc == RECORD_ERR_PAST_END ||
            rc == RECORD_ERR_WIRE_TYPE)
            return RECORD_ERR_SUBMSG;
        if (rc != RECORD_OK)
            return rc;
        if (f.num > SUB_MAX_FIELD || wts[f.num] < 0)
            continue;
        if (f.wt != (unsigned)wts[f.num])
            return RECORD_ERR_FIELD_WIRE_TYPE;

        switch (type) {
        case RECORD_SESSION:
            if (f.num == 1)
                hdr->session_id = f.v;
            else if (f.num == 2)
                hdr->sequence_id = f.v;
            else if (f.num == 5)
                hdr->payload_sar_state = (uint32_t)f.v;
            else if (f.num == 6)
                hdr->payloadrec_sar_state = (uint32_t)f.v;
            break;
        case RECORD_MQTT_CONNECT:
        case RECORD_STOMP_CONNECT:
            if (f.num == 1) {
                hdr->connect_version = (uint32_t)f.v;
            } else {
                hdr->subscribed.ptr = f.val;
                hdr->subscribed.len = f.len;
            }
            break;
        default:
            break;
        }
    }
    return RECORD_OK;
}

static int check_id(struct span id, size_t max_id_len, int syntax_err)
{
    int rc = eid_check((const char *)id.ptr, id.len, max_id_len);
    if (rc == EID_OK)
        return RECORD_OK;
    return rc == EID_ERR_TOO_LONG ? RECORD_ERR_ID_TOO_LONG : syntax_err;
}

int record_scan(const uint8_t *buf, size_t len, size_t max_id_len, struct record_header *hdr)
{
    /* (NULL, 0) is a valid empty input; NULL + 0 is not valid C. */
    const uint8_t *p = buf, *end = len > 0 ? buf + len : buf;
    int seen_to = 0, seen_from = 0;

    memset(hdr, 0, sizeof *hdr);
    while (p < end) {
        struct field f;
        int rc = read_field(&p, end, &f);
        if (rc != RECORD_OK)
            return rc;
        if (f.num > RECORD_UDS_CONNECT)
            continue;
        unsigned want = f.num == 4 ? WT_VARINT : WT_LEN;
        if (f.wt != want)
            return RECORD_ERR_FIELD_WIRE_TYPE;

        struct span s = {f.val, f.len};
        switch (f.num) {
        case 1:
            hdr->version = s;
            break;
        case 2:
            if (seen_to)
                return RECORD_ERR_DUP_TO_ID;
            seen_to = 1;
            hdr->to_id = s;
            break;
        case 3:
            if (seen_from)
                return RECORD_ERR_DUP_FROM_ID;
            seen_from = 1;
            hdr->from_id = s;
            break;
        case 4:
            hdr->payload_security = (uint32_t)f.v;
            break;
        case 5:
            hdr->has_mac_signature = f.len > 0;
            break;
        case 6:
            hdr->has_sender_cert = f.len > 0;
            break;
        default:
            if (hdr->type != RECORD_TYPE_NONE)
                return RECORD_ERR_MULTI_TYPE;
            hdr->type = (enum record_type)f.num;
            rc = scan_sub(hdr->type, f.val, f.len, hdr);
            if (rc != RECORD_OK)
                return rc;
            break;
        }
    }

    if (!seen_to)
        return RECORD_ERR_NO_TO_ID;
    if (hdr->to_id.len == 0)
        return RECORD_ERR_EMPTY_TO_ID;
    if (!seen_from)
        return RECORD_ERR_NO_FROM_ID;
    if (hdr->from_id.len == 0)
        return RECORD_ERR_EMPTY_FROM_ID;
    if (hdr->type == RECORD_TYPE_NONE)
        return RECORD_ERR_NO_TYPE;
    int rc = check_id(hdr->to_id, max_id_len, RECORD_ERR_TO_ID_SYNTAX);
    if (rc != RECORD_OK)
        return rc;
    return check_id(hdr->from_id, max_id_len, RECORD_ERR_FROM_ID_SYNTAX);
}

const char *record_err_name(int err)
{
    switch (err) {
    case RECORD_OK:
        return "ok";
    case RECORD_ERR_VARINT_TRUNCATED:
        return "varint_truncated";
    case RECORD_ERR_VARINT_OVERFLOW:
        return "varint_overflow";
    case RECORD_ERR_PAST_END:
        return "past_end";
    case RECORD_ERR_WIRE_TYPE:
        return "wire_type";
    case RECORD_ERR_FIELD_WIRE_TYPE:
        return "field_wire_type";
    case RECORD_ERR_FIELD_ZERO:
        return "field_zero";
    case RECORD_ERR_NO_TO_ID:
        return "no_to_id";
    case RECORD_ERR_NO_FROM_ID:
        return "no_from_id";
    case RECORD_ERR_EMPTY_TO_ID:
        return "empty_to_id";
    case RECORD_ERR_EMPTY_FROM_ID:
        return "empty_from_id";
    case RECORD_ERR_DUP_TO_ID:
        return "dup_to_id";
    case RECORD_ERR_DUP_FROM_ID:
        return "dup_from_id";
    case RECORD_ERR_NO_TYPE:
        return "no_record_type";
    case RECORD_ERR_MULTI_TYPE:
        return "multi_record_type";
    case RECORD_ERR_TO_ID_SYNTAX:
        return "to_id_syntax";
    case RECORD_ERR_FROM_ID_SYNTAX:
        return "from_id_syntax";
    case RECORD_ERR_ID_TOO_LONG:
        return "id_too_long";
    case RECORD_ERR_SUBMSG:
        return "bad_submessage";
    default:
        return "unknown";
    }
}

int record_type_is_connect(enum record_type t)
{
    return t == RECORD_WS_CONNECT || t == RECORD_MQTT_CONNECT || t == RECORD_STOMP_CONNECT ||
           t == RECORD_UDS_CONNECT;
}

const char *record_type_name(enum record_type t)
{
    switch (t) {
    case RECORD_TYPE_NONE:
        return "none";
    case RECORD_NO_SESSION:
        return "no_session_context";
    case RECORD_SESSION:
        return "session_context";
    case RECORD_WS_CONNECT:
        return "websocket_connect";
    case RECORD_MQTT_CONNECT:
        return "mqtt_connect";
    case RECORD_STOMP_CONNECT:
        return "stomp_connect";
    case RECORD_DISCONNECT:
        return "disconnect";
    case RECORD_UDS_CONNECT:
        return "uds_connect";
    }
    return "unknown";
}
