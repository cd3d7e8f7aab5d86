/* uds_codec.c — USP UNIX-domain-socket MTP framing: header check, TLV iteration,
 * one-TLV encoder. See uds_codec.h for the API and the frame layout.
 *
 * Every length read from input is compared with the bytes actually present before it is
 * used, with subtractions arranged so that no addition of two input values can wrap.
 */
#include "relay/mtp/uds_codec.h"

#include <assert.h>
#include <limits.h>
#include <string.h>

static const uint8_t uds_sync[4] = { 0x5F, 0x55, 0x53, 0x50 }; /* "_USP" */

static uint32_t get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
           (uint32_t)p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

long uds_frame_size(const uint8_t *buf, size_t len, uint32_t max_body)
{
    size_t have = len < sizeof uds_sync ? len : sizeof uds_sync;
    /* Judge the sync bytes we have now: a stream that starts wrong is rejected on its
     * first byte instead of after a full header. */
    if (have > 0 && memcmp(buf, uds_sync, have) != 0)
        return UDS_ERR_BAD_SYNC;
    if (len < UDS_HEADER_LEN)
        return UDS_NEED_MORE;

    uint32_t body = get_be32(buf + 4);
    if (body < UDS_TLV_HEADER_LEN)
        return UDS_ERR_EMPTY_FRAME;
    if (body > max_body)
        return UDS_ERR_TOO_LARGE;
#if LONG_MAX - UDS_HEADER_LEN < UINT32_MAX
    /* A 32-bit long cannot return every header + body size. */
    if (body > (uint32_t)(LONG_MAX - UDS_HEADER_LEN))
        return UDS_ERR_TOO_LARGE;
#endif
    return (long)body + UDS_HEADER_LEN;
}

int uds_tlv_next(const uint8_t *body, size_t body_len, size_t *off, struct uds_tlv *tlv)
{
    if (*off >= body_len) {
        assert(*off == body_len); /* *off only ever comes from this function */
        return 0;
    }
    size_t rest = body_len - *off;
    if (rest < UDS_TLV_HEADER_LEN)
        return UDS_ERR_TLV_OVERRUN;

    const uint8_t *p = body + *off;
    uint32_t vlen = get_be32(p + 1);
    if (vlen > rest - UDS_TLV_HEADER_LEN)
        return UDS_ERR_TLV_OVERRUN;

    tlv->type = p[0];
    tlv->value = p + UDS_TLV_HEADER_LEN;
    tlv->len = vlen;
    *off += UDS_TLV_HEADER_LEN + (size_t)vlen;
    return 1;
}

int uds_body_check(const uint8_t *body, size_t body_len)
{
    if (body_len < UDS_TLV_HEADER_LEN)
        return UDS_ERR_EMPTY_FRAME;
    /* A frame's body length is a u32; this also keeps the count (at most
     * UINT32_MAX / 5 TLVs) well inside int. */
    if ((uint64_t)body_len > UINT32_MAX)
        return UDS_ERR_TOO_LARGE;

    size_t off = 0;
    int count = 0;
    struct uds_tlv tlv;
    int r;
    while ((r = uds_tlv_next(body, body_len, &off, &tlv)) == 1)
        count++;
    if (r < 0)
        return r;
    assert(count >= 1); /* body_len >= 5 and no overrun means one TLV at least */
    return count;
}

size_t uds_encode_single_header(uint8_t out[UDS_SINGLE_HEADER_LEN], uint8_t type,
                                uint32_t value_len)
{
    assert(value_len <= UDS_MAX_VALUE_LEN);
    memcpy(out, uds_sync, sizeof uds_sync);
    put_be32(out + 4, UDS_TLV_HEADER_LEN + value_len);
    out[8] = type;
    put_be32(out + 9, value_len);
    return UDS_SINGLE_HEADER_LEN;
}

long uds_encode(uint8_t *out, size_t cap, uint8_t type, const void *value, uint32_t value_len)
{
    if (value_len > UDS_MAX_VALUE_LEN)
        return UDS_ERR_TOO_LARGE;
#if LONG_MAX - UDS_SINGLE_HEADER_LEN < UINT32_MAX
    /* A 32-bit long cannot return every frame size. */
    if (value_len > (uint32_t)(LONG_MAX - UDS_SINGLE_HEADER_LEN))
        return UDS_ERR_TOO_LARGE;
#endif
    if (cap < UDS_SINGLE_HEADER_LEN || cap - UDS_SINGLE_HEADER_LEN < value_len)
        return UDS_ERR_TOO_SMALL_BUF;

    /* Move the value first: it may sit inside OUT, even under the header's place. */
    if (value_len > 0)
        memmove(out + UDS_SINGLE_HEADER_LEN, value, value_len);
    uds_encode_single_header(out, type, value_len);
    return (long)value_len + UDS_SINGLE_HEADER_LEN;
}

const char *uds_err_name(int err)
{
    switch (err) {
    case 0: return "none";
    case UDS_ERR_BAD_SYNC: return "bad_sync";
    case UDS_ERR_TOO_LARGE: return "too_large";
    case UDS_ERR_EMPTY_FRAME: return "empty_frame";
    case UDS_ERR_TLV_OVERRUN: return "tlv_overrun";
    case UDS_ERR_TOO_SMALL_BUF: return "too_small_buf";
    default: return "unknown";
    }
}
