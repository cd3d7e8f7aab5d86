/* test_uds_codec.c — Check suite for relay/mtp/uds_codec: the spec's handshake bytes,
 * every prefix of a frame, sync and length errors, TLV overruns, round trips, and
 * inputs placed right before a PROT_NONE page so any over-read faults even without ASan.
 */
#include "relay/mtp/uds_codec.h"

#include <check.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/guard_page.h"

/* TR-369 mtp/unix-domain-socket: Handshake of os::00256D-0123456789 (spec notes §6). */
static const uint8_t spec_handshake[] = {
    0x5F, 0x55, 0x53, 0x50, 0x00, 0x00, 0x00, 0x1A, 0x01, 0x00, 0x00, 0x00, 0x15,
    0x6F, 0x73, 0x3A, 0x3A, 0x30, 0x30, 0x32, 0x35, 0x36, 0x44, 0x2D, 0x30, 0x31,
    0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39,
};
static const char spec_eid[] = "os::00256D-0123456789";

/* Handshake "self::a", password TLV type 4 "pw" (obuspa), empty Error, Record of 3 bytes. */
static const uint8_t multi_frame[] = {
    0x5F, 0x55, 0x53, 0x50, 0x00, 0x00, 0x00, 0x20,
    0x01, 0x00, 0x00, 0x00, 0x07, 's', 'e', 'l', 'f', ':', ':', 'a',
    0x04, 0x00, 0x00, 0x00, 0x02, 'p', 'w',
    0x02, 0x00, 0x00, 0x00, 0x00,
    0x03, 0x00, 0x00, 0x00, 0x03, 0x0A, 0x01, 0x31,
};

#define BIG_MAX 0x100000u

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* ---- tests ---- */

START_TEST(test_spec_handshake_encode)
{
    uint8_t out[64];
    memset(out, 0xEE, sizeof out);
    long n = uds_encode(out, sizeof out, UDS_TLV_HANDSHAKE, spec_eid,
                        (uint32_t)strlen(spec_eid));
    ck_assert_int_eq(n, (long)sizeof spec_handshake);
    ck_assert_mem_eq(out, spec_handshake, sizeof spec_handshake);
    ck_assert_uint_eq(out[sizeof spec_handshake], 0xEE); /* nothing written past the frame */

    uint8_t hdr[UDS_SINGLE_HEADER_LEN];
    ck_assert_uint_eq(uds_encode_single_header(hdr, UDS_TLV_HANDSHAKE,
                                               (uint32_t)strlen(spec_eid)), 13);
    ck_assert_mem_eq(hdr, spec_handshake, 13);
}
END_TEST

START_TEST(test_spec_handshake_decode)
{
    ck_assert_int_eq(uds_frame_size(spec_handshake, sizeof spec_handshake, BIG_MAX), 34);
    const uint8_t *body = spec_handshake + UDS_HEADER_LEN;
    size_t body_len = sizeof spec_handshake - UDS_HEADER_LEN;
    ck_assert_int_eq(uds_body_check(body, body_len), 1);

    size_t off = 0;
    struct uds_tlv tlv;
    ck_assert_int_eq(uds_tlv_next(body, body_len, &off, &tlv), 1);
    ck_assert_uint_eq(tlv.type, UDS_TLV_HANDSHAKE);
    ck_assert_uint_eq(tlv.len, 21);
    ck_assert_ptr_eq(tlv.value, body + 5);
    ck_assert_mem_eq(tlv.value, spec_eid, 21);
    ck_assert_uint_eq(off, body_len);
    ck_assert_int_eq(uds_tlv_next(body, body_len, &off, &tlv), 0);
    ck_assert_uint_eq(off, body_len);
}
END_TEST

START_TEST(test_multi_tlv)
{
    ck_assert_int_eq(uds_frame_size(multi_frame, sizeof multi_frame, BIG_MAX),
                     (long)sizeof multi_frame);
    const uint8_t *body = multi_frame + UDS_HEADER_LEN;
    size_t body_len = sizeof multi_frame - UDS_HEADER_LEN;
    ck_assert_int_eq(uds_body_check(body, body_len), 4);

    static const struct { uint8_t type; uint32_t len; size_t at; } want[] = {
        { UDS_TLV_HANDSHAKE, 7, 5 }, { 4, 2, 17 }, { UDS_TLV_ERROR, 0, 24 },
        { UDS_TLV_RECORD, 3, 29 },
    };
    size_t off = 0;
    struct uds_tlv tlv;
    for (size_t i = 0; i < 4; i++) {
        ck_assert_int_eq(uds_tlv_next(body, body_len, &off, &tlv), 1);
        ck_assert_uint_eq(tlv.type, want[i].type);
        ck_assert_uint_eq(tlv.len, want[i].len);
        ck_assert_ptr_eq(tlv.value, body + want[i].at);
        ck_assert_uint_eq(off, want[i].at + want[i].len);
    }
    ck_assert_mem_eq(body + 5, "self::a", 7);
    ck_assert_int_eq(uds_tlv_next(body, body_len, &off, &tlv), 0);
}
END_TEST

START_TEST(test_unknown_types)
{
    static const uint8_t types[] = { 0, 4, 5, 0x7F, 0x80, 0xFF };
    for (size_t i = 0; i < sizeof types; i++) {
        uint8_t frame[32];
        long n = uds_encode(frame, sizeof frame, types[i], "xyz", 3);
        ck_assert_int_eq(n, 16);
        ck_assert_int_eq(uds_frame_size(frame, (size_t)n, BIG_MAX), 16);
        ck_assert_int_eq(uds_body_check(frame + 8, 8), 1);
        size_t off = 0;
        struct uds_tlv tlv;
        ck_assert_int_eq(uds_tlv_next(frame + 8, 8, &off, &tlv), 1);
        ck_assert_uint_eq(tlv.type, types[i]);
        ck_assert_uint_eq(tlv.len, 3);
        ck_assert_mem_eq(tlv.value, "xyz", 3);
    }
}
END_TEST

START_TEST(test_every_prefix)
{
    static const struct { const uint8_t *f; size_t n; } frames[] = {
        { spec_handshake, sizeof spec_handshake }, { multi_frame, sizeof multi_frame },
    };
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i <= frames[k].n; i++) {
            const uint8_t *p = guard_place(frames[k].f, i);
            long r = uds_frame_size(p, i, BIG_MAX);
            if (i < UDS_HEADER_LEN)
                ck_assert_msg(r == UDS_NEED_MORE, "prefix %zu: %ld", i, r);
            else
                ck_assert_msg(r == (long)frames[k].n, "prefix %zu: %ld", i, r);
        }
        /* Every proper prefix of the body is a truncated body. */
        size_t body_len = frames[k].n - UDS_HEADER_LEN;
        for (size_t i = 0; i < body_len; i++) {
            const uint8_t *b = guard_place(frames[k].f + UDS_HEADER_LEN, i);
            int r = uds_body_check(b, i);
            int want = i < UDS_TLV_HEADER_LEN ? UDS_ERR_EMPTY_FRAME : UDS_ERR_TLV_OVERRUN;
            /* Cuts that land exactly between TLVs of the multi frame are complete bodies. */
            if (k == 1 && (i == 12 || i == 19 || i == 24))
                want = i == 12 ? 1 : i == 19 ? 2 : 3;
            ck_assert_msg(r == want, "frame %zu body prefix %zu: %d want %d", k, i, r, want);
        }
    }
}
END_TEST

START_TEST(test_bad_sync_each_position)
{
    for (size_t pos = 0; pos < 4; pos++) {
        static const uint8_t flips[] = { 0xFF, 0x01, 0x20, 0x80 };
        for (size_t f = 0; f < sizeof flips; f++) {
            uint8_t frame[sizeof spec_handshake];
            memcpy(frame, spec_handshake, sizeof frame);
            frame[pos] = (uint8_t)(frame[pos] ^ flips[f]);
            for (size_t len = 0; len <= sizeof frame; len++) {
                const uint8_t *p = guard_place(frame, len);
                long r = uds_frame_size(p, len, BIG_MAX);
                long want = len <= pos ? UDS_NEED_MORE : UDS_ERR_BAD_SYNC;
                ck_assert_msg(r == want, "pos %zu len %zu: %ld", pos, len, r);
            }
        }
    }
    /* Lower case, and a frame shifted by one byte, are not "_USP". */
    ck_assert_int_eq(uds_frame_size((const uint8_t *)"_usp\0\0\0\x05", 8, BIG_MAX),
                     UDS_ERR_BAD_SYNC);
    ck_assert_int_eq(uds_frame_size(spec_handshake + 1, 8, BIG_MAX), UDS_ERR_BAD_SYNC);
}
END_TEST

START_TEST(test_max_body_limit)
{
    static const uint32_t limits[] = { 5, 6, 100, 4096, 0x7FFFFFFFu, UINT32_MAX - 1 };
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        uint8_t hdr[8] = { 0x5F, 0x55, 0x53, 0x50 };
        put_be32(hdr + 4, limits[i]);
        ck_assert_int_eq(uds_frame_size(hdr, 8, limits[i]), (long)limits[i] + 8);
        ck_assert_int_eq(uds_frame_size(hdr, 8, limits[i] - 1), UDS_ERR_TOO_LARGE);
        put_be32(hdr + 4, limits[i] + 1);
        ck_assert_int_eq(uds_frame_size(hdr, 8, limits[i]), UDS_ERR_TOO_LARGE);
    }
    /* The largest frame the wire can express. */
    uint8_t hdr[8] = { 0x5F, 0x55, 0x53, 0x50, 0xFF, 0xFF, 0xFF, 0xFF };
    if (sizeof(long) > 4)
        ck_assert_int_eq(uds_frame_size(hdr, 8, UINT32_MAX), 0xFFFFFFFFL + 8);
    else
        ck_assert_int_eq(uds_frame_size(hdr, 8, UINT32_MAX), UDS_ERR_TOO_LARGE);
    ck_assert_int_eq(uds_frame_size(hdr, 8, UINT32_MAX - 1), UDS_ERR_TOO_LARGE);
    /* A limit below one TLV header: a too-short body is still reported as empty. */
    uint8_t tiny[8] = { 0x5F, 0x55, 0x53, 0x50, 0, 0, 0, 3 };
    ck_assert_int_eq(uds_frame_size(tiny, 8, 2), UDS_ERR_EMPTY_FRAME);
    tiny[7] = 5;
    ck_assert_int_eq(uds_frame_size(tiny, 8, 4), UDS_ERR_TOO_LARGE);
    ck_assert_int_eq(uds_frame_size(tiny, 8, 0), UDS_ERR_TOO_LARGE);
}
END_TEST

START_TEST(test_short_bodies)
{
    for (uint32_t blen = 0; blen < UDS_TLV_HEADER_LEN; blen++) {
        uint8_t frame[8 + 4] = { 0x5F, 0x55, 0x53, 0x50 };
        put_be32(frame + 4, blen);
        memset(frame + 8, 0x03, 4);
        ck_assert_int_eq(uds_frame_size(frame, 8 + blen, BIG_MAX), UDS_ERR_EMPTY_FRAME);
        ck_assert_int_eq(uds_frame_size(frame, 8, BIG_MAX), UDS_ERR_EMPTY_FRAME);

        const uint8_t *b = guard_place(frame + 8, blen);
        ck_assert_int_eq(uds_body_check(b, blen), UDS_ERR_EMPTY_FRAME);
        size_t off = 0;
        struct uds_tlv tlv;
        ck_assert_int_eq(uds_tlv_next(b, blen, &off, &tlv), blen == 0 ? 0 : UDS_ERR_TLV_OVERRUN);
        ck_assert_uint_eq(off, 0);
    }
}
END_TEST

START_TEST(test_tlv_overrun_by_one)
{
    /* Handshake body whose value length claims one byte more than is there. */
    uint8_t body[26];
    memcpy(body, spec_handshake + 8, sizeof body);
    body[4] = 0x16;
    const uint8_t *b = guard_place(body, sizeof body);
    ck_assert_int_eq(uds_body_check(b, sizeof body), UDS_ERR_TLV_OVERRUN);
    size_t off = 0;
    struct uds_tlv tlv = { 0xAA, NULL, 0xBBBB };
    ck_assert_int_eq(uds_tlv_next(b, sizeof body, &off, &tlv), UDS_ERR_TLV_OVERRUN);
    ck_assert_uint_eq(off, 0);
    ck_assert_uint_eq(tlv.type, 0xAA); /* untouched on error */
    ck_assert_ptr_null(tlv.value);
    ck_assert_uint_eq(tlv.len, 0xBBBB);

    /* A huge value length must not wrap the bounds check. */
    put_be32(body + 1, UINT32_MAX);
    b = guard_place(body, sizeof body);
    ck_assert_int_eq(uds_body_check(b, sizeof body), UDS_ERR_TLV_OVERRUN);
    put_be32(body + 1, UINT32_MAX - 4);
    b = guard_place(body, sizeof body);
    ck_assert_int_eq(uds_body_check(b, sizeof body), UDS_ERR_TLV_OVERRUN);

    /* Second TLV: value one byte short, then header one byte short. */
    size_t mlen = sizeof multi_frame - 8;
    uint8_t m[sizeof multi_frame - 8];
    memcpy(m, multi_frame + 8, mlen);
    m[mlen - 4] = 0x04; /* record TLV claims 4 bytes, 3 present */
    b = guard_place(m, mlen);
    ck_assert_int_eq(uds_body_check(b, mlen), UDS_ERR_TLV_OVERRUN);
    off = 0;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(uds_tlv_next(b, mlen, &off, &tlv), 1);
    ck_assert_uint_eq(off, 24);
    ck_assert_int_eq(uds_tlv_next(b, mlen, &off, &tlv), UDS_ERR_TLV_OVERRUN);
    ck_assert_uint_eq(off, 24);
    ck_assert_uint_eq(tlv.type, UDS_TLV_ERROR); /* still the previous TLV */

    /* Valid first TLV followed by a 4-byte stub of a header. */
    b = guard_place(multi_frame + 8, 12 + 4);
    ck_assert_int_eq(uds_body_check(b, 16), UDS_ERR_TLV_OVERRUN);
    off = 0;
    ck_assert_int_eq(uds_tlv_next(b, 16, &off, &tlv), 1);
    ck_assert_int_eq(uds_tlv_next(b, 16, &off, &tlv), UDS_ERR_TLV_OVERRUN);
    ck_assert_uint_eq(off, 12);
    /* The same TLV with one byte of trailing junk is not a whole body either. */
    uint8_t junk[13];
    memcpy(junk, multi_frame + 8, 12);
    junk[12] = 0x01;
    b = guard_place(junk, sizeof junk);
    ck_assert_int_eq(uds_body_check(b, sizeof junk), UDS_ERR_TLV_OVERRUN);
}
END_TEST

START_TEST(test_zero_length_values)
{
    uint8_t frame[32];
    long n = uds_encode(frame, sizeof frame, UDS_TLV_RECORD, NULL, 0);
    ck_assert_int_eq(n, 13);
    static const uint8_t want[13] = { 0x5F, 0x55, 0x53, 0x50, 0, 0, 0, 5, 3, 0, 0, 0, 0 };
    ck_assert_mem_eq(frame, want, 13);
    const uint8_t *p = guard_place(frame, 13);
    ck_assert_int_eq(uds_frame_size(p, 13, 5), 13);
    ck_assert_int_eq(uds_body_check(p + 8, 5), 1);
    size_t off = 0;
    struct uds_tlv tlv;
    ck_assert_int_eq(uds_tlv_next(p + 8, 5, &off, &tlv), 1);
    ck_assert_uint_eq(tlv.type, UDS_TLV_RECORD);
    ck_assert_uint_eq(tlv.len, 0);
    ck_assert_ptr_eq(tlv.value, p + 13); /* one past the buffer: valid, never dereferenced */
    ck_assert_uint_eq(off, 5);
    ck_assert_int_eq(uds_tlv_next(p + 8, 5, &off, &tlv), 0);

    /* Three empty TLVs in a row. */
    uint8_t body[15] = { 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 9, 0, 0, 0, 0 };
    p = guard_place(body, sizeof body);
    ck_assert_int_eq(uds_body_check(p, sizeof body), 3);
}
END_TEST

START_TEST(test_round_trips)
{
    static const uint32_t lens[] = { 0, 1, 4, 5, 13, 255, 256, 65535, 65536, 70001 };
    static const uint8_t types[] = { UDS_TLV_HANDSHAKE, UDS_TLV_ERROR, UDS_TLV_RECORD, 4, 255 };
    size_t cap = 70001 + 13;
    uint8_t *value = malloc(70001);
    uint8_t *out = malloc(cap);
    ck_assert_ptr_nonnull(value);
    ck_assert_ptr_nonnull(out);
    for (size_t i = 0; i < 70001; i++)
        value[i] = (uint8_t)(i * 7 + 3);
    for (size_t t = 0; t < sizeof types; t++) {
        for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++) {
            uint32_t vlen = lens[l];
            long n = uds_encode(out, cap, types[t], value, vlen);
            ck_assert_int_eq(n, (long)vlen + 13);
            ck_assert_int_eq(uds_frame_size(out, (size_t)n, vlen + 5), n);
            ck_assert_int_eq(uds_frame_size(out, (size_t)n, vlen + 4), UDS_ERR_TOO_LARGE);
            ck_assert_int_eq(uds_body_check(out + 8, (size_t)n - 8), 1);
            size_t off = 0;
            struct uds_tlv tlv;
            ck_assert_int_eq(uds_tlv_next(out + 8, (size_t)n - 8, &off, &tlv), 1);
            ck_assert_uint_eq(tlv.type, types[t]);
            ck_assert_uint_eq(tlv.len, vlen);
            ck_assert_ptr_eq(tlv.value, out + 13);
            if (vlen > 0)
                ck_assert_int_eq(memcmp(tlv.value, value, vlen), 0);
            /* The zero-copy header is the same bytes as the full encoder's. */
            uint8_t hdr[13];
            ck_assert_uint_eq(uds_encode_single_header(hdr, types[t], vlen), 13);
            ck_assert_mem_eq(hdr, out, 13);
        }
    }
    free(value);
    free(out);
}
END_TEST

START_TEST(test_encode_limits)
{
    uint8_t out[32];
    memset(out, 0xEE, sizeof out);
    ck_assert_int_eq(uds_encode(out, 16, 3, "abc", 3), 16);
    memset(out, 0xEE, sizeof out);
    ck_assert_int_eq(uds_encode(out, 15, 3, "abc", 3), UDS_ERR_TOO_SMALL_BUF);
    ck_assert_int_eq(uds_encode(out, 12, 3, NULL, 0), UDS_ERR_TOO_SMALL_BUF);
    ck_assert_int_eq(uds_encode(out, 0, 3, NULL, 0), UDS_ERR_TOO_SMALL_BUF);
    for (size_t i = 0; i < sizeof out; i++)
        ck_assert_uint_eq(out[i], 0xEE); /* untouched on error */
    ck_assert_int_eq(uds_encode(out, 13, 3, NULL, 0), 13);

    /* Length checks come before any read of VALUE: these pointers cover 1 byte. */
    uint8_t one = 0;
    ck_assert_int_eq(uds_encode(out, sizeof out, 3, &one, UINT32_MAX), UDS_ERR_TOO_LARGE);
    ck_assert_int_eq(uds_encode(out, sizeof out, 3, &one, UINT32_MAX - 4), UDS_ERR_TOO_LARGE);
    ck_assert_int_eq(uds_encode(out, sizeof out, 3, &one, UDS_MAX_VALUE_LEN),
                     UDS_ERR_TOO_SMALL_BUF);
    ck_assert_int_eq(uds_encode(out, SIZE_MAX, 3, NULL, 0), 13); /* no cap overflow */

    /* The largest value a frame can carry: frame length FF FF FF FF. */
    uint8_t hdr[13];
    uds_encode_single_header(hdr, UDS_TLV_RECORD, UDS_MAX_VALUE_LEN);
    static const uint8_t want[13] = { 0x5F, 0x55, 0x53, 0x50, 0xFF, 0xFF, 0xFF, 0xFF,
                                      0x03, 0xFF, 0xFF, 0xFF, 0xFA };
    ck_assert_mem_eq(hdr, want, 13);
}
END_TEST

/* uds_encode_single_header's contract: VALUE_LEN above UDS_MAX_VALUE_LEN is a caller bug. */
START_TEST(test_single_header_contract)
{
    uint8_t hdr[13];
    uds_encode_single_header(hdr, UDS_TLV_RECORD, UDS_MAX_VALUE_LEN + 1);
}
END_TEST

START_TEST(test_encode_in_place)
{
    /* A Record already sitting after 13 bytes of headroom: encode without a second buffer. */
    uint8_t buf[13 + 6];
    memcpy(buf + 13, "RECORD", 6);
    ck_assert_int_eq(uds_encode(buf, sizeof buf, UDS_TLV_RECORD, buf + 13, 6), 19);
    ck_assert_mem_eq(buf + 13, "RECORD", 6);
    ck_assert_int_eq(uds_frame_size(buf, sizeof buf, 11), 19);

    /* Overlapping the header area is handled too. */
    uint8_t buf2[13 + 6];
    memcpy(buf2 + 2, "RECORD", 6);
    ck_assert_int_eq(uds_encode(buf2, sizeof buf2, UDS_TLV_RECORD, buf2 + 2, 6), 19);
    ck_assert_mem_eq(buf2 + 13, "RECORD", 6);
    ck_assert_mem_eq(buf2, buf, 13);
}
END_TEST

START_TEST(test_body_check_len_bound)
{
    if (SIZE_MAX <= UINT32_MAX)
        return;
    /* Rejected on the length alone, before any byte is read. */
    uint8_t one[1] = { 0 };
    ck_assert_int_eq(uds_body_check(one, (size_t)UINT32_MAX + 1), UDS_ERR_TOO_LARGE);
}
END_TEST

START_TEST(test_err_names)
{
    static const int errs[] = { UDS_ERR_BAD_SYNC, UDS_ERR_TOO_LARGE, UDS_ERR_EMPTY_FRAME,
                                UDS_ERR_TLV_OVERRUN, UDS_ERR_TOO_SMALL_BUF };
    static const char *const names[] = { "bad_sync", "too_large", "empty_frame",
                                         "tlv_overrun", "too_small_buf" };
    for (size_t i = 0; i < 5; i++)
        ck_assert_str_eq(uds_err_name(errs[i]), names[i]);
    ck_assert_str_eq(uds_err_name(0), "none");
    ck_assert_str_eq(uds_err_name(-6), "unknown");
    ck_assert_str_eq(uds_err_name(1), "unknown");
}
END_TEST

static Suite *uds_codec_suite(int forking)
{
    Suite *s = suite_create("uds_codec");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_spec_handshake_encode);
    tcase_add_test(tc, test_spec_handshake_decode);
    tcase_add_test(tc, test_multi_tlv);
    tcase_add_test(tc, test_unknown_types);
    tcase_add_test(tc, test_every_prefix);
    tcase_add_test(tc, test_bad_sync_each_position);
    tcase_add_test(tc, test_max_body_limit);
    tcase_add_test(tc, test_short_bodies);
    tcase_add_test(tc, test_tlv_overrun_by_one);
    tcase_add_test(tc, test_zero_length_values);
    tcase_add_test(tc, test_round_trips);
    tcase_add_test(tc, test_encode_limits);
    tcase_add_test(tc, test_encode_in_place);
    tcase_add_test(tc, test_body_check_len_bound);
    tcase_add_test(tc, test_err_names);
#ifndef NDEBUG
    /* Needs Check's fork mode to survive the abort. */
    if (forking)
        tcase_add_test_raise_signal(tc, test_single_header_contract, SIGABRT);
#else
    (void)forking;
#endif
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    guard_init();
    SRunner *sr = srunner_create(NULL);
    srunner_add_suite(sr, uds_codec_suite(srunner_fork_status(sr) != CK_NOFORK));
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
