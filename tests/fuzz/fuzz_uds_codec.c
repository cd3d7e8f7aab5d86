/* fuzz_uds_codec.c — libFuzzer harness for relay/mtp/uds_codec.
 *
 * Input: 2 bytes (big-endian) that pick max_body in 0..4096, then a byte stream read as
 * back-to-back UDS frames, the way a connection reader would. Beyond "no crash" it
 * asserts the codec's invariants: a frame size never exceeds max_body + 8 and depends
 * only on the header; TLV iteration stays inside the body and moves forward; every value
 * lies inside it; uds_body_check agrees with iteration; every TLV re-encoded alone with
 * uds_encode decodes to the same TLV. The whole stream is also iterated as one body.
 */
#include "relay/mtp/uds_codec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* assert() may be compiled out; these invariants must hold in every build. */
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "invariant failed: %s (line %d)\n", \
                                          #c, __LINE__); abort(); } } while (0)

static void check_reencode(const struct uds_tlv *tlv)
{
    size_t cap = UDS_SINGLE_HEADER_LEN + (size_t)tlv->len;
    uint8_t *buf = malloc(cap);
    CHECK(buf != NULL);

    CHECK(uds_encode(buf, cap - 1, tlv->type, tlv->value, tlv->len) == UDS_ERR_TOO_SMALL_BUF);
    long n = uds_encode(buf, cap, tlv->type, tlv->value, tlv->len);
    CHECK(n == (long)cap);

    uint8_t hdr[UDS_SINGLE_HEADER_LEN];
    CHECK(uds_encode_single_header(hdr, tlv->type, tlv->len) == UDS_SINGLE_HEADER_LEN);
    CHECK(memcmp(hdr, buf, UDS_SINGLE_HEADER_LEN) == 0);

    uint32_t body_len = UDS_TLV_HEADER_LEN + tlv->len;
    CHECK(uds_frame_size(buf, cap, body_len) == n);
    CHECK(uds_frame_size(buf, cap, body_len - 1) == UDS_ERR_TOO_LARGE);
    CHECK(uds_body_check(buf + UDS_HEADER_LEN, body_len) == 1);

    size_t off = 0;
    struct uds_tlv back;
    CHECK(uds_tlv_next(buf + UDS_HEADER_LEN, body_len, &off, &back) == 1);
    CHECK(back.type == tlv->type);
    CHECK(back.len == tlv->len);
    CHECK(back.value == buf + UDS_SINGLE_HEADER_LEN);
    CHECK(tlv->len == 0 || memcmp(back.value, tlv->value, tlv->len) == 0);
    CHECK(uds_tlv_next(buf + UDS_HEADER_LEN, body_len, &off, &back) == 0);
    free(buf);
}

static void check_body(const uint8_t *body, size_t body_len)
{
    size_t off = 0;
    int count = 0;
    int r;
    struct uds_tlv tlv;
    for (;;) {
        size_t before = off;
        r = uds_tlv_next(body, body_len, &off, &tlv);
        if (r != 1) {
            CHECK(off == before);
            break;
        }
        CHECK(off > before && off <= body_len);
        CHECK(off - before == UDS_TLV_HEADER_LEN + (size_t)tlv.len);
        CHECK(tlv.value == body + before + UDS_TLV_HEADER_LEN);
        CHECK(tlv.value >= body && tlv.value + tlv.len <= body + body_len);
        CHECK(tlv.type == body[before]);
        count++;
        check_reencode(&tlv);
    }
    CHECK(r == 0 || r == UDS_ERR_TLV_OVERRUN);
    CHECK(r != 0 || off == body_len);

    int c = uds_body_check(body, body_len);
    if (body_len < UDS_TLV_HEADER_LEN)
        CHECK(c == UDS_ERR_EMPTY_FRAME);
    else if (r == 0)
        CHECK(c == count && c >= 1);
    else
        CHECK(c == UDS_ERR_TLV_OVERRUN);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint32_t max_body = (((uint32_t)data[0] << 8) | data[1]) % 4097u;
    const uint8_t *s = data + 2;
    size_t n = size - 2;

    /* Prefixes of the header: need-more until bad sync, which then sticks. */
    int bad = 0;
    for (size_t k = 0; k < UDS_HEADER_LEN && k <= n; k++) {
        long r = uds_frame_size(s, k, max_body);
        CHECK(r == UDS_NEED_MORE || r == UDS_ERR_BAD_SYNC);
        CHECK(!bad || r == UDS_ERR_BAD_SYNC);
        bad = r == UDS_ERR_BAD_SYNC;
    }
    if (n >= UDS_HEADER_LEN)
        CHECK(uds_frame_size(s, UDS_HEADER_LEN, max_body) == uds_frame_size(s, n, max_body));

    size_t off = 0;
    for (;;) {
        long r = uds_frame_size(s + off, n - off, max_body);
        if (r <= 0) {
            CHECK(r >= UDS_ERR_TLV_OVERRUN);
            break;
        }
        CHECK(r >= UDS_SINGLE_HEADER_LEN && (unsigned long)r <= (unsigned long)max_body + 8);
        if ((size_t)r > n - off)
            break;
        check_body(s + off + UDS_HEADER_LEN, (size_t)r - UDS_HEADER_LEN);
        off += (size_t)r;
    }

    check_body(s, n);
    return 0;
}
