/* test_stomp_codec.c — Check suite for relay/mtp/stomp_codec.
 *
 * Every decoder input is first copied so that it ends exactly at a PROT_NONE page
 * (guard_place), so reading even one byte past LEN faults, with or without ASan. Frames are
 * checked whole, at every prefix, and split at every byte boundary with LAST_LEN.
 */
#include "relay/mtp/stomp_codec.h"

#include <check.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/guard_page.h"

static const struct stomp_limits big = {65536, STOMP_HEADERS_CAP, 1 << 20};

/* A literal with its exact length (its trailing C NUL excluded; frames spell their own). */
struct vec {
    const char *s;
    size_t n;
};
#define V(lit) {lit, sizeof(lit) - 1}

static long decode_g(const char *s, size_t n, const struct stomp_limits *lim,
                     struct stomp_frame *f)
{
    return stomp_decode(guard_place(s, n), n, lim, f);
}

static int head_g(const char *s, size_t n, const struct stomp_limits *lim, struct stomp_frame *f)
{
    return stomp_decode_head(guard_place(s, n), n, 0, lim, f);
}

static void assert_span(struct stomp_span sp, const char *want)
{
    size_t n = strlen(want);
    ck_assert_uint_eq(sp.len, n);
    ck_assert(n == 0 || memcmp(sp.ptr, want, n) == 0);
}

static void assert_header(const struct stomp_frame *f, size_t i, const char *name,
                          const char *value)
{
    ck_assert_uint_lt(i, f->n_headers);
    assert_span(f->headers[i].name, name);
    assert_span(f->headers[i].value, value);
}

/* Valid frames used by the prefix, split and guard tests. */
static const struct vec valid_frames[] = {
    V("CONNECT\naccept-version:1.2\nhost:relay\nendpoint-id:os\\c\\c012345-X\n\n\0"),
    V("STOMP\r\naccept-version:1.2\r\nendpoint-id:os::012345-X\r\nheart-beat:1000,30000\r\n"
      "\r\n\0"),
    V("SEND\ndestination:/q/a\ncontent-type:application/vnd.bbf.usp.msg\n"
      "content-length:5\nreply-to-dest:/q/b\n\nA\0B\0C\0"),
    V("SUBSCRIBE\nid:0\ndestination:/q/x\nack:auto\n\n\0"),
    V("UNSUBSCRIBE\r\nid:0\r\n\r\n\0"),
    V("MESSAGE\r\nsubscription:0\r\nmessage-id:1\r\ndestination:/q\r\ncontent-length:0\r\n"
      "\r\n\0"),
    V("ERROR\nmessage:bad\\cthing\n\nsomething bad\0"),
    V("DISCONNECT\nreceipt:77\n\n\0"),
    V("CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0"),
    V("RECEIPT\r\nreceipt-id:77\n\r\n\0"),
    V("ACK\nid:1\n\n\0"),
    V("NACK\nid:1\n\n\0"),
    V("BEGIN\ntransaction:t\n\n\0"),
    V("COMMIT\r\ntransaction:t\r\n\r\n\0"),
    V("ABORT\ntransaction:t\n\n\0"),
    V("SEND\n\n\0"),
};
#define N_VALID (sizeof(valid_frames) / sizeof(valid_frames[0]))

/* ------------------------------------------------------------------ commands */

START_TEST(test_every_command)
{
    static const char *const names[] = {
        NULL, "CONNECT", "STOMP", "SEND", "SUBSCRIBE", "UNSUBSCRIBE", "ACK", "NACK",
        "BEGIN", "COMMIT", "ABORT", "DISCONNECT", "CONNECTED", "MESSAGE", "RECEIPT", "ERROR",
    };
    struct stomp_frame f;
    char buf[64];

    for (int c = STOMP_CMD_CONNECT; c <= STOMP_CMD_ERROR; c++) {
        ck_assert_str_eq(stomp_cmd_name((enum stomp_cmd)c), names[c]);
        for (int crlf = 0; crlf < 2; crlf++) {
            const char *eol = crlf ? "\r\n" : "\n";
            int n = snprintf(buf, sizeof buf, "%s%sx:y%s%s", names[c], eol, eol, eol);
            buf[n] = '\0';
            size_t total = (size_t)n + 1;
            ck_assert_int_eq(decode_g(buf, total, &big, &f), (long)total);
            ck_assert_int_eq(f.cmd, c);
            ck_assert_uint_eq(f.head_len, (size_t)n);
            ck_assert_uint_eq(f.n_headers, 1);
            assert_header(&f, 0, "x", "y");
            ck_assert_int_eq(f.content_length, -1);
            ck_assert_uint_eq(f.body.len, 0);
        }
        struct stomp_kv kv = {"x", "y", 1};
        long w = stomp_encode_head(buf, sizeof buf, (enum stomp_cmd)c, &kv, 1, 1);
        ck_assert_int_gt(w, 0);
        char want[64];
        snprintf(want, sizeof want, "%s\nx:y\n\n", names[c]);
        ck_assert_int_eq(w, (long)strlen(want));
        ck_assert(memcmp(buf, want, (size_t)w) == 0);
    }
    ck_assert_str_eq(stomp_cmd_name((enum stomp_cmd)0), "UNKNOWN");
    ck_assert_str_eq(stomp_cmd_name((enum stomp_cmd)16), "UNKNOWN");
}
END_TEST

START_TEST(test_bad_commands)
{
    static const struct vec bad[] = {
        V("send\n\n\0"), V("SENDX\n\n\0"), V("SEND \n\n\0"), V(" SEND\n\n\0"),
        V("CONNECTEDX\n\n\0"), V("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), V("\n\n\0"),
        V("\r\n\r\n\0"), V("SEND\r\r\n\n\0"), V("SE\0D\n\n\0"), V("\x16\x03\x01\x02\x00"),
        V("X"), V("SENX"), V("SEND\rX"), V("UNSUBSCRIBEX"), V("ABCDEFGHIJKLM"),
        V("UNSUBSCRIBE\r\r"), V("\rS"),
    };
    struct stomp_frame f;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(decode_g(bad[i].s, bad[i].n, &big, &f), STOMP_ERR_BAD_COMMAND);
        ck_assert_int_eq(head_g(bad[i].s, bad[i].n, &big, &f), STOMP_ERR_BAD_COMMAND);
    }
    /* Still a possible command: wait. */
    static const struct vec partial[] = {
        V("S"), V("SEND"), V("SEND\r"), V("UNSUBSCRIBE\r"), V("CONNECTED"), V("CONNECT"),
        V("\r"), /* maybe a heart-beat CRLF */
    };
    for (size_t i = 0; i < sizeof partial / sizeof partial[0]; i++)
        ck_assert_int_eq(decode_g(partial[i].s, partial[i].n, &big, &f), STOMP_NEED_MORE);
    ck_assert_int_eq(decode_g("", 0, &big, &f), STOMP_NEED_MORE);
}
END_TEST

/* ------------------------------------------------------------------ frame shapes */

START_TEST(test_lf_and_crlf)
{
    static const char lf[] = "SEND\ndestination:/q/a\nx:1\n\nbody\0";
    static const char crlf[] = "SEND\r\ndestination:/q/a\r\nx:1\r\n\r\nbody\0";
    static const char mixed[] = "SEND\r\ndestination:/q/a\nx:1\r\n\nbody\0";
    const struct vec vs[] = {V(lf), V(crlf), V(mixed)};
    struct stomp_frame f;

    for (size_t i = 0; i < 3; i++) {
        const uint8_t *b = guard_place(vs[i].s, vs[i].n);
        ck_assert_int_eq(stomp_decode(b, vs[i].n, &big, &f), (long)vs[i].n);
        ck_assert_int_eq(f.cmd, STOMP_CMD_SEND);
        ck_assert_uint_eq(f.n_headers, 2);
        assert_header(&f, 0, "destination", "/q/a");
        assert_header(&f, 1, "x", "1");
        assert_span(f.body, "body");
        ck_assert_ptr_eq(f.body.ptr, b + f.head_len);
        ck_assert_uint_eq(f.head_len, vs[i].n - 5);
    }
}
END_TEST

START_TEST(test_header_values)
{
    /* Split at the first ':'; raw ':' kept in the value; empty value allowed. */
    static const char s[] = "CONNECT\nendpoint-id:os::012345-X\nempty:\na:b:c:\n\n\0";
    struct stomp_frame f;

    ck_assert_int_eq(decode_g(s, sizeof s - 1, &big, &f), (long)(sizeof s - 1));
    ck_assert_uint_eq(f.n_headers, 3);
    assert_header(&f, 0, "endpoint-id", "os::012345-X");
    assert_header(&f, 1, "empty", "");
    assert_header(&f, 2, "a", "b:c:");
    ck_assert_ptr_eq(stomp_header_get(&f, "a"), &f.headers[2]);
    ck_assert_ptr_null(stomp_header_get(&f, "A"));
    ck_assert_ptr_null(stomp_header_get(&f, "endpoint"));
    ck_assert_ptr_null(stomp_header_get(&f, "endpoint-id:"));
}
END_TEST

START_TEST(test_repeated_headers)
{
    static const char s[] = "MESSAGE\nfoo:1\nfoo:2\ncontent-length:3\ncontent-length:5\n"
                            "content-length:junk\n\nabc\0";
    struct stomp_frame f;
    const uint8_t *b = guard_place(s, sizeof s - 1);

    ck_assert_int_eq(stomp_decode(b, sizeof s - 1, &big, &f), (long)(sizeof s - 1));
    ck_assert_uint_eq(f.n_headers, 5);
    const struct stomp_header *h = stomp_header_get(&f, "foo");
    ck_assert_ptr_eq(h, &f.headers[0]);
    assert_span(h->value, "1");
    ck_assert_int_eq(f.content_length, 3);
    assert_span(f.body, "abc");
    ck_assert_ptr_eq(stomp_header_get(&f, "content-length"), &f.headers[2]);
}
END_TEST

START_TEST(test_content_length_body_with_nuls)
{
    static const char s[] = "SEND\ncontent-length:7\n\n\0A\0\0B\0\0\0TRAILING";
    struct stomp_frame f;
    const uint8_t *b = guard_place(s, sizeof s - 1);

    long r = stomp_decode(b, sizeof s - 1, &big, &f);
    ck_assert_int_eq(r, (long)(sizeof "SEND\ncontent-length:7\n\n" - 1 + 8));
    ck_assert_int_eq(f.content_length, 7);
    ck_assert_uint_eq(f.body.len, 7);
    ck_assert(memcmp(f.body.ptr, "\0A\0\0B\0\0", 7) == 0);
    ck_assert_uint_eq(b[r - 1], 0);

    /* A binary body of every byte value. */
    uint8_t big_frame[64 + 256 + 1];
    int hl = snprintf((char *)big_frame, 64, "SEND\ncontent-length:256\n\n");
    for (int i = 0; i < 256; i++)
        big_frame[hl + i] = (uint8_t)i;
    big_frame[hl + 256] = 0;
    size_t total = (size_t)hl + 257;
    b = guard_place(big_frame, total);
    ck_assert_int_eq(stomp_decode(b, total, &big, &f), (long)total);
    ck_assert_uint_eq(f.body.len, 256);
    ck_assert(memcmp(f.body.ptr, big_frame + hl, 256) == 0);
}
END_TEST

START_TEST(test_nul_terminated_and_empty_bodies)
{
    struct stomp_frame f;
    static const char s1[] = "SEND\ndestination:x\n\nhello\0\nSEND";
    const uint8_t *b = guard_place(s1, sizeof s1 - 1);
    ck_assert_int_eq(stomp_decode(b, sizeof s1 - 1, &big, &f), 26);
    ck_assert_int_eq(f.content_length, -1);
    assert_span(f.body, "hello");

    static const char s2[] = "SEND\n\n\0";
    b = guard_place(s2, sizeof s2 - 1);
    ck_assert_int_eq(stomp_decode(b, sizeof s2 - 1, &big, &f), 7);
    ck_assert_uint_eq(f.body.len, 0);
    ck_assert_ptr_eq(f.body.ptr, b + 6);

    static const char s3[] = "SEND\ncontent-length:0\n\n\0";
    b = guard_place(s3, sizeof s3 - 1);
    ck_assert_int_eq(stomp_decode(b, sizeof s3 - 1, &big, &f), (long)(sizeof s3 - 1));
    ck_assert_int_eq(f.content_length, 0);
    ck_assert_uint_eq(f.body.len, 0);

    static const char s4[] = "SEND\ncontent-length:00\n\n\0";
    ck_assert_int_eq(decode_g(s4, sizeof s4 - 1, &big, &f), (long)(sizeof s4 - 1));
    ck_assert_int_eq(f.content_length, 0);
}
END_TEST

START_TEST(test_heartbeats_between_frames)
{
    static const char stream[] = "\n\r\n\nSEND\nx:1\n\nA\0\n\r\nMESSAGE\ncontent-length:1\n\n\0\0"
                                 "\r\n\r\nERROR\n\nE\0\r";
    const uint8_t *b = guard_place(stream, sizeof stream - 1);
    size_t len = sizeof stream - 1, pos = 0;
    static const enum stomp_cmd want[] = {STOMP_CMD_SEND, STOMP_CMD_MESSAGE, STOMP_CMD_ERROR};
    static const size_t eols[] = {4, 3, 4};
    struct stomp_frame f;

    for (size_t i = 0; i < 3; i++) {
        size_t k = stomp_skip_eols(b + pos, len - pos);
        ck_assert_uint_eq(k, eols[i]);
        pos += k;
        long r = stomp_decode(b + pos, len - pos, &big, &f);
        ck_assert_int_gt(r, 0);
        ck_assert_int_eq(f.cmd, want[i]);
        ck_assert_uint_eq(f.body.len, 1);
        pos += (size_t)r;
    }
    /* A lone trailing CR may be the start of CRLF. */
    ck_assert_uint_eq(stomp_skip_eols(b + pos, len - pos), 0);
    ck_assert_uint_eq(pos, len - 1);
    ck_assert_int_eq(stomp_decode(b + pos, len - pos, &big, &f), STOMP_NEED_MORE);

    ck_assert_uint_eq(stomp_skip_eols(guard_place("\r", 1), 1), 0);
    ck_assert_uint_eq(stomp_skip_eols(guard_place("\n\r", 2), 2), 1);
    ck_assert_uint_eq(stomp_skip_eols(guard_place("\r\n\r\n", 4), 4), 4);
    ck_assert_uint_eq(stomp_skip_eols(guard_place("\rX", 2), 2), 0);
    ck_assert_uint_eq(stomp_skip_eols(guard_place("\n\n\nS", 4), 4), 3);
    ck_assert_uint_eq(stomp_skip_eols(guard_place("", 0), 0), 0);
}
END_TEST

/* ------------------------------------------------------------------ prefixes and splits */

START_TEST(test_every_prefix_needs_more)
{
    struct stomp_frame f;

    for (size_t i = 0; i < N_VALID; i++) {
        const struct vec *v = &valid_frames[i];
        ck_assert_int_eq(decode_g(v->s, v->n, &big, &f), (long)v->n);
        size_t head_len = f.head_len;
        for (size_t k = 0; k < v->n; k++) {
            ck_assert_int_eq(decode_g(v->s, k, &big, &f), STOMP_NEED_MORE);
            int hr = head_g(v->s, k, &big, &f);
            if (k < head_len)
                ck_assert_int_eq(hr, STOMP_NEED_MORE);
            else
                ck_assert_int_eq(hr, (int)head_len);
        }
    }
}
END_TEST

/* Frames compared by offsets, since each copy lands at a different address. */
static void assert_same_frame(const struct stomp_frame *a, const uint8_t *abase,
                              const struct stomp_frame *b, const uint8_t *bbase)
{
    ck_assert_int_eq(a->cmd, b->cmd);
    ck_assert_uint_eq(a->head_len, b->head_len);
    ck_assert_int_eq(a->content_length, b->content_length);
    ck_assert_uint_eq(a->n_headers, b->n_headers);
    for (size_t j = 0; j < a->n_headers; j++) {
        ck_assert_int_eq(a->headers[j].name.ptr - abase, b->headers[j].name.ptr - bbase);
        ck_assert_uint_eq(a->headers[j].name.len, b->headers[j].name.len);
        ck_assert_int_eq(a->headers[j].value.ptr - abase, b->headers[j].value.ptr - bbase);
        ck_assert_uint_eq(a->headers[j].value.len, b->headers[j].value.len);
    }
}

START_TEST(test_split_at_every_boundary)
{
    for (size_t i = 0; i < N_VALID; i++) {
        const struct vec *v = &valid_frames[i];
        struct stomp_frame ref, f;
        static uint8_t copy[512];
        ck_assert_uint_le(v->n, sizeof copy);
        memcpy(copy, v->s, v->n);
        ck_assert_int_eq(stomp_decode(copy, v->n, &big, &ref), (long)v->n);

        /* Two calls: the first sees S bytes, the second everything with LAST_LEN = S. */
        for (size_t s = 0; s < ref.head_len; s++) {
            ck_assert_int_eq(stomp_decode_head(guard_place(v->s, s), s, 0, &big, &f),
                             STOMP_NEED_MORE);
            const uint8_t *b = guard_place(v->s, v->n);
            ck_assert_int_eq(stomp_decode_head(b, v->n, s, &big, &f), (int)ref.head_len);
            assert_same_frame(&ref, copy, &f, b);
            ck_assert_int_eq(stomp_decode_body(b, v->n, 0, &big, &f), (long)v->n);
            ck_assert_int_eq(f.body.ptr - b, ref.body.ptr - copy);
            ck_assert_uint_eq(f.body.len, ref.body.len);
        }

        /* One byte at a time, as a slow peer sends it: head, then body. */
        size_t last = 0;
        int hr = STOMP_NEED_MORE;
        size_t k = 0;
        while (hr == STOMP_NEED_MORE) {
            k++;
            ck_assert_uint_le(k, v->n);
            hr = stomp_decode_head(guard_place(v->s, k), k, last, &big, &f);
            last = k;
        }
        ck_assert_uint_eq(k, ref.head_len);
        ck_assert_int_eq(hr, (int)ref.head_len);
        last = 0;
        long br = STOMP_NEED_MORE;
        for (; br == STOMP_NEED_MORE; k++) {
            ck_assert_uint_le(k, v->n);
            const uint8_t *b = guard_place(v->s, k);
            br = stomp_decode_body(b, k, last, &big, &f);
            last = k;
            if (br > 0) {
                ck_assert_int_eq(f.body.ptr - b, ref.body.ptr - copy);
                ck_assert_uint_eq(f.body.len, ref.body.len);
            }
        }
        ck_assert_int_eq(br, (long)v->n);
        ck_assert_uint_eq(k - 1, v->n);
    }
}
END_TEST

/* A LAST_LEN that lies (larger than what was examined) must not produce a wrong head. */
START_TEST(test_last_len_beyond_blank_line)
{
    static const char s[] = "SEND\na:1\n\nB\n\n\0";
    struct stomp_frame f;
    const uint8_t *b = guard_place(s, sizeof s - 1);

    ck_assert_int_eq(stomp_decode_head(b, sizeof s - 1, sizeof s - 1, &big, &f),
                     STOMP_NEED_MORE);
    ck_assert_int_eq(stomp_decode_head(b, sizeof s - 1, 10, &big, &f), 10);
    ck_assert_uint_eq(f.n_headers, 1);
    /* Resumed past the real blank line, the search finds a later one ("B\n\n"), but the
     * header walk still stops at the first. */
    ck_assert_int_eq(stomp_decode_head(b, sizeof s - 1, 12, &big, &f), 10);
    ck_assert_uint_eq(f.n_headers, 1);
    assert_header(&f, 0, "a", "1");
}
END_TEST

/* ------------------------------------------------------------------ errors */

struct err_case {
    struct vec in;
    struct stomp_limits lim;
    long want;
};

START_TEST(test_each_error)
{
    static const struct err_case cases[] = {
        {V("FOO\n\n\0"), {65536, 64, 65536}, STOMP_ERR_BAD_COMMAND},
        {V("SEND\nx:y\n\n\0"), {8, 64, 65536}, STOMP_ERR_HEAD_TOO_LARGE},
        {V("SEND\na:1\nb:2\nc:3\n\n\0"), {65536, 2, 65536}, STOMP_ERR_TOO_MANY_HEADERS},
        {V("SEND\na:1\n\n\0"), {65536, 0, 65536}, STOMP_ERR_TOO_MANY_HEADERS},
        {V("SEND\nnocolon\n\n\0"), {65536, 64, 65536}, STOMP_ERR_BAD_HEADER},
        {V("SEND\n:v\n\n\0"), {65536, 64, 65536}, STOMP_ERR_BAD_HEADER},
        {V("SEND\na:b\rc\n\n\0"), {65536, 64, 65536}, STOMP_ERR_BAD_HEADER},
        {V("SEND\na:b\r\r\n\n\0"), {65536, 64, 65536}, STOMP_ERR_BAD_HEADER},
        {V("SEND\n\ra:b\n\n\0"), {65536, 64, 65536}, STOMP_ERR_BAD_HEADER},
        {V("SEND\na\0:b\n\n\0"), {65536, 64, 65536}, STOMP_ERR_BAD_HEADER},
        {V("SEND\na:\0\n\n\0"), {65536, 64, 65536}, STOMP_ERR_BAD_HEADER},
        {V("SEND\ncontent-length:\n\n\0"), {65536, 64, 65536}, STOMP_ERR_BAD_CONTENT_LENGTH},
        {V("SEND\ncontent-length:-1\n\n\0"), {65536, 64, 65536}, STOMP_ERR_BAD_CONTENT_LENGTH},
        {V("SEND\ncontent-length:+1\n\n\0"), {65536, 64, 65536}, STOMP_ERR_BAD_CONTENT_LENGTH},
        {V("SEND\ncontent-length: 1\n\n\0"), {65536, 64, 65536}, STOMP_ERR_BAD_CONTENT_LENGTH},
        {V("SEND\ncontent-length:1 \n\n\0"), {65536, 64, 65536}, STOMP_ERR_BAD_CONTENT_LENGTH},
        {V("SEND\ncontent-length:0x10\n\n\0"), {65536, 64, 65536},
         STOMP_ERR_BAD_CONTENT_LENGTH},
        {V("SEND\ncontent-length:1\\c\n\n\0"), {65536, 64, 65536},
         STOMP_ERR_BAD_CONTENT_LENGTH},
        {V("SEND\ncontent-length:123456789012345678901234567890\n\n\0"), {65536, 64, SIZE_MAX},
         STOMP_ERR_BAD_CONTENT_LENGTH},
        {V("SEND\ncontent-length:11\n\n0123456789A\0"), {65536, 64, 10},
         STOMP_ERR_BODY_TOO_LARGE},
        {V("SEND\n\n0123456789A\0"), {65536, 64, 10}, STOMP_ERR_BODY_TOO_LARGE},
        {V("SEND\ncontent-length:3\n\nabcX"), {65536, 64, 65536}, STOMP_ERR_NO_NUL},
        {V("SEND\ncontent-length:0\n\nX\0"), {65536, 64, 65536}, STOMP_ERR_NO_NUL},
        /* Earliest error wins: a bad line before too many headers, and vice versa. */
        {V("SEND\nbad\na:1\nb:2\n\n\0"), {65536, 1, 65536}, STOMP_ERR_BAD_HEADER},
        {V("SEND\na:1\nbad\n\n\0"), {65536, 1, 65536}, STOMP_ERR_TOO_MANY_HEADERS},
    };
    struct stomp_frame f;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct err_case *c = &cases[i];
        ck_assert_msg(decode_g(c->in.s, c->in.n, &c->lim, &f) == c->want, "case %zu", i);
        /* Errors are prefix-consistent: every prefix waits or fails the same way. */
        for (size_t k = 0; k < c->in.n; k++) {
            long r = decode_g(c->in.s, k, &c->lim, &f);
            ck_assert_msg(r == STOMP_NEED_MORE || r == c->want, "case %zu prefix %zu", i, k);
        }
    }

    /* LONG_MAX itself is a valid content-length when max_body allows it. */
    char s[80];
    int n = snprintf(s, sizeof s, "SEND\ncontent-length:%ld\n\nabc", LONG_MAX);
    struct stomp_limits huge = {65536, 64, SIZE_MAX};
    ck_assert_int_eq(head_g(s, (size_t)n, &huge, &f), n - 3);
    ck_assert_int_eq(f.content_length, LONG_MAX);
    ck_assert_int_eq(decode_g(s, (size_t)n, &huge, &f), STOMP_NEED_MORE);

    /* The unescaper and encoder errors. */
    char out[8];
    size_t ol;
    struct stomp_span sp = {(const uint8_t *)"a\\t", 3};
    ck_assert_int_eq(stomp_unescape(sp, out, sizeof out, &ol), STOMP_ERR_BAD_ESCAPE);
    sp.ptr = (const uint8_t *)"abcdefgh";
    sp.len = 8;
    ck_assert_int_eq(stomp_unescape(sp, out, sizeof out, &ol), STOMP_ERR_TOO_LONG);
    ck_assert_int_eq(stomp_encode_head(out, sizeof out, STOMP_CMD_SUBSCRIBE, NULL, 0, 1),
                     STOMP_ERR_TOO_LONG);
}
END_TEST

START_TEST(test_err_names)
{
    static const int errs[] = {
        STOMP_ERR_BAD_COMMAND, STOMP_ERR_HEAD_TOO_LARGE, STOMP_ERR_TOO_MANY_HEADERS,
        STOMP_ERR_BAD_HEADER, STOMP_ERR_BAD_ESCAPE, STOMP_ERR_BAD_CONTENT_LENGTH,
        STOMP_ERR_BODY_TOO_LARGE, STOMP_ERR_NO_NUL, STOMP_ERR_TOO_LONG,
    };
    const size_t n = sizeof errs / sizeof errs[0];

    for (size_t i = 0; i < n; i++) {
        ck_assert_int_lt(errs[i], 0);
        const char *name = stomp_err_name(errs[i]);
        ck_assert_str_ne(name, "unknown");
        ck_assert_uint_eq(strspn(name, "abcdefghijklmnopqrstuvwxyz_"), strlen(name));
        for (size_t j = 0; j < i; j++) {
            ck_assert_int_ne(errs[i], errs[j]);
            ck_assert_str_ne(name, stomp_err_name(errs[j]));
        }
    }
    ck_assert_str_eq(stomp_err_name(STOMP_ERR_BAD_ESCAPE), "bad_escape");
    ck_assert_str_eq(stomp_err_name(STOMP_NEED_MORE), "need_more");
    ck_assert_str_eq(stomp_err_name(-100), "unknown");
}
END_TEST

/* ------------------------------------------------------------------ limits */

START_TEST(test_limit_max_head)
{
    static const char s[] = "SEND\nabc:def\n\n\0";
    const size_t head_len = sizeof s - 2;
    struct stomp_frame f;
    struct stomp_limits lim = big;

    lim.max_head = head_len;
    ck_assert_int_eq(decode_g(s, sizeof s - 1, &lim, &f), (long)(sizeof s - 1));
    lim.max_head = head_len - 1;
    ck_assert_int_eq(decode_g(s, sizeof s - 1, &lim, &f), STOMP_ERR_HEAD_TOO_LARGE);
    /* Refused as soon as max_head bytes are buffered without the blank line. */
    ck_assert_int_eq(head_g(s, head_len - 1, &lim, &f), STOMP_ERR_HEAD_TOO_LARGE);
    ck_assert_int_eq(head_g(s, head_len - 2, &lim, &f), STOMP_NEED_MORE);
    /* A CRLF blank line that would end one byte too late. */
    static const char c[] = "SEND\r\nabc:def\r\n\r\n\0";
    lim.max_head = sizeof c - 3;
    ck_assert_int_eq(head_g(c, sizeof c - 1, &lim, &f), STOMP_ERR_HEAD_TOO_LARGE);
    lim.max_head = sizeof c - 2;
    ck_assert_int_eq(head_g(c, sizeof c - 1, &lim, &f), (int)(sizeof c - 2));
    /* Flood without any newline. */
    lim.max_head = 100;
    char flood[200];
    memcpy(flood, "SEND\n", 5);
    memset(flood + 5, 'a', sizeof flood - 5);
    ck_assert_int_eq(head_g(flood, 99, &lim, &f), STOMP_NEED_MORE);
    ck_assert_int_eq(head_g(flood, 100, &lim, &f), STOMP_ERR_HEAD_TOO_LARGE);
    ck_assert_int_eq(head_g(flood, 200, &lim, &f), STOMP_ERR_HEAD_TOO_LARGE);
}
END_TEST

START_TEST(test_limit_max_headers)
{
    static const char s[] = "SEND\na:1\nb:2\nc:3\n\n\0";
    struct stomp_frame f;
    struct stomp_limits lim = big;

    lim.max_headers = 3;
    ck_assert_int_eq(decode_g(s, sizeof s - 1, &lim, &f), (long)(sizeof s - 1));
    ck_assert_uint_eq(f.n_headers, 3);
    lim.max_headers = 2;
    ck_assert_int_eq(decode_g(s, sizeof s - 1, &lim, &f), STOMP_ERR_TOO_MANY_HEADERS);

    /* A larger max_headers is capped at STOMP_HEADERS_CAP. */
    char buf[2048];
    size_t n = 0;
    n += (size_t)snprintf(buf + n, sizeof buf - n, "SEND\n");
    for (int i = 0; i < STOMP_HEADERS_CAP; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "h%d:%d\n", i, i);
    size_t before_last = n;
    n += (size_t)snprintf(buf + n, sizeof buf - n, "\n");
    buf[n++] = '\0';
    lim.max_headers = 1000;
    ck_assert_int_eq(decode_g(buf, n, &lim, &f), (long)n);
    ck_assert_uint_eq(f.n_headers, STOMP_HEADERS_CAP);
    assert_header(&f, STOMP_HEADERS_CAP - 1, "h63", "63");
    n = before_last;
    n += (size_t)snprintf(buf + n, sizeof buf - n, "one:more\n\n");
    buf[n++] = '\0';
    ck_assert_int_eq(decode_g(buf, n, &lim, &f), STOMP_ERR_TOO_MANY_HEADERS);
}
END_TEST

START_TEST(test_limit_max_body)
{
    static const char cl[] = "SEND\ncontent-length:10\n\n0123456789\0";
    static const char nul[] = "SEND\n\n0123456789\0";
    struct stomp_frame f;
    struct stomp_limits lim = big;

    lim.max_body = 10;
    ck_assert_int_eq(decode_g(cl, sizeof cl - 1, &lim, &f), (long)(sizeof cl - 1));
    ck_assert_uint_eq(f.body.len, 10);
    ck_assert_int_eq(decode_g(nul, sizeof nul - 1, &lim, &f), (long)(sizeof nul - 1));
    ck_assert_uint_eq(f.body.len, 10);
    /* Ten body bytes and no NUL yet: still within the limit. */
    ck_assert_int_eq(decode_g(nul, sizeof nul - 2, &lim, &f), STOMP_NEED_MORE);

    lim.max_body = 9;
    /* content-length is refused from the head alone, before any body arrives. */
    ck_assert_int_eq(head_g(cl, sizeof cl - 12, &lim, &f), STOMP_ERR_BODY_TOO_LARGE);
    ck_assert_int_eq(decode_g(cl, sizeof cl - 1, &lim, &f), STOMP_ERR_BODY_TOO_LARGE);
    ck_assert_int_eq(decode_g(nul, sizeof nul - 1, &lim, &f), STOMP_ERR_BODY_TOO_LARGE);
    ck_assert_int_eq(decode_g(nul, sizeof nul - 2, &lim, &f), STOMP_ERR_BODY_TOO_LARGE);
    ck_assert_int_eq(decode_g(nul, sizeof nul - 3, &lim, &f), STOMP_NEED_MORE);

    lim.max_body = 0;
    ck_assert_int_eq(decode_g("SEND\n\n\0", 7, &lim, &f), 7);
    ck_assert_int_eq(decode_g("SEND\n\nx", 7, &lim, &f), STOMP_ERR_BODY_TOO_LARGE);
}
END_TEST

/* ------------------------------------------------------------------ escaping */

START_TEST(test_unescape)
{
    char out[64];
    size_t n = 99;
    struct stomp_span sp;

    sp.ptr = guard_place("os\\c\\c012345-X", 14);
    sp.len = 14;
    ck_assert_int_eq(stomp_unescape(sp, out, sizeof out, &n), 0);
    ck_assert_str_eq(out, "os::012345-X");
    ck_assert_uint_eq(n, 12);

    sp.ptr = guard_place("a\\rb\\nc\\cd\\\\e\\\\", 15);
    sp.len = 15;
    ck_assert_int_eq(stomp_unescape(sp, out, sizeof out, &n), 0);
    ck_assert_uint_eq(n, 10);
    ck_assert(memcmp(out, "a\rb\nc:d\\e\\", 11) == 0);

    /* Raw ':' passes (CONNECT values are not escaped). */
    sp.ptr = guard_place("a:b", 3);
    sp.len = 3;
    ck_assert_int_eq(stomp_unescape(sp, out, sizeof out, &n), 0);
    ck_assert_str_eq(out, "a:b");

    sp.ptr = NULL;
    sp.len = 0;
    ck_assert_int_eq(stomp_unescape(sp, out, sizeof out, &n), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_str_eq(out, "");

    static const char *const bad[] = {"\\t", "abc\\", "\\", "\\C", "\\\\\\", "x\\0", "\\ "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sp.len = strlen(bad[i]);
        sp.ptr = guard_place(bad[i], sp.len);
        ck_assert_int_eq(stomp_unescape(sp, out, sizeof out, &n), STOMP_ERR_BAD_ESCAPE);
        /* A bad escape is reported even when the output would not fit. */
        ck_assert_int_eq(stomp_unescape(sp, out, 1, &n), STOMP_ERR_BAD_ESCAPE);
    }

    /* Room boundary: decoded length + NUL. */
    sp.ptr = guard_place("ab\\ccd", 6);
    sp.len = 6;
    ck_assert_int_eq(stomp_unescape(sp, out, 6, &n), 0);
    ck_assert_str_eq(out, "ab:cd");
    ck_assert_int_eq(stomp_unescape(sp, out, 5, &n), STOMP_ERR_TOO_LONG);
    ck_assert_uint_eq(n, 5);
    ck_assert_str_eq(out, "ab:c");
    ck_assert_int_eq(stomp_unescape(sp, out, 3, &n), STOMP_ERR_TOO_LONG);
    ck_assert_str_eq(out, "ab");
    ck_assert_int_eq(stomp_unescape(sp, out, 4, &n), STOMP_ERR_TOO_LONG);
    ck_assert_str_eq(out, "ab:");
    ck_assert_int_eq(stomp_unescape(sp, NULL, 0, &n), STOMP_ERR_TOO_LONG);
    ck_assert_uint_eq(n, 5);
}
END_TEST

START_TEST(test_escape)
{
    char out[64];
    static const char in[] = "a:b\\c\r\n";

    ck_assert_uint_eq(stomp_escape(in, 7, out, sizeof out), 11);
    ck_assert_str_eq(out, "a\\cb\\\\c\\r\\n");
    /* snprintf-like, never splitting an escape pair. */
    memset(out, 'Z', sizeof out);
    ck_assert_uint_eq(stomp_escape(in, 7, out, 3), 11);
    ck_assert_str_eq(out, "a");
    ck_assert_uint_eq(stomp_escape(in, 7, out, 4), 11);
    ck_assert_str_eq(out, "a\\c");
    ck_assert_uint_eq(stomp_escape(in, 7, out, 11), 11);
    ck_assert_str_eq(out, "a\\cb\\\\c\\r");
    ck_assert_uint_eq(stomp_escape(in, 7, out, 12), 11);
    ck_assert_str_eq(out, "a\\cb\\\\c\\r\\n");
    ck_assert_uint_eq(stomp_escape(in, 7, NULL, 0), 11);
    ck_assert_uint_eq(stomp_escape("", 0, out, 1), 0);
    ck_assert_str_eq(out, "");
}
END_TEST

/* ------------------------------------------------------------------ encoding */

START_TEST(test_encode_decode_round_trip)
{
    static const char body[] = "\x0a\x00rec\x00ord";
    const size_t body_len = sizeof body - 1;
    const struct stomp_kv hdrs[] = {
        {"destination", "/q/dev:1\\x", 10},
        {"reply-to-dest", "line1\nline2\r", 12},
        {"we:ird\\name", "v", 1},
        {"content-type", "application/vnd.bbf.usp.msg", 27},
        {"content-length", "9", 1},
        {"empty", NULL, 0},
    };
    const size_t nh = sizeof hdrs / sizeof hdrs[0];
    char buf[512];
    struct stomp_frame f;

    long w = stomp_encode_head(buf, sizeof buf, STOMP_CMD_MESSAGE, hdrs, nh, 1);
    ck_assert_int_gt(w, 0);
    ck_assert(memchr(buf, '\r', (size_t)w) == NULL);
    memcpy(buf + w, body, body_len);
    buf[(size_t)w + body_len] = '\0';
    size_t total = (size_t)w + body_len + 1;

    const uint8_t *b = guard_place(buf, total);
    ck_assert_int_eq(stomp_decode(b, total, &big, &f), (long)total);
    ck_assert_int_eq(f.cmd, STOMP_CMD_MESSAGE);
    ck_assert_uint_eq(f.head_len, (size_t)w);
    ck_assert_uint_eq(f.n_headers, nh);
    for (size_t i = 0; i < nh; i++) {
        char name[64], value[64];
        size_t nl, vl;
        ck_assert_int_eq(stomp_unescape(f.headers[i].name, name, sizeof name, &nl), 0);
        ck_assert_int_eq(stomp_unescape(f.headers[i].value, value, sizeof value, &vl), 0);
        ck_assert_str_eq(name, hdrs[i].name);
        ck_assert_uint_eq(vl, hdrs[i].value_len);
        ck_assert(vl == 0 || memcmp(value, hdrs[i].value, vl) == 0);
    }
    ck_assert_int_eq(f.content_length, (long)body_len);
    ck_assert_uint_eq(f.body.len, body_len);
    ck_assert(memcmp(f.body.ptr, body, body_len) == 0);

    /* Every smaller buffer is refused, never overrun. */
    for (size_t cap = 0; cap < (size_t)w; cap++) {
        memset(buf, 'Q', sizeof buf);
        ck_assert_int_eq(stomp_encode_head(buf, cap, STOMP_CMD_MESSAGE, hdrs, nh, 1),
                         STOMP_ERR_TOO_LONG);
        ck_assert_uint_eq((uint8_t)buf[cap], 'Q');
    }
    ck_assert_int_eq(stomp_encode_head(buf, (size_t)w, STOMP_CMD_MESSAGE, hdrs, nh, 1), w);
}
END_TEST

START_TEST(test_encode_unescaped)
{
    const struct stomp_kv ok[] = {
        {"version", "1.2", 3},
        {"endpoint-id", "os::012345-X", 12},
        {"path", "a\\b", 3},
    };
    char buf[256];
    struct stomp_frame f;

    long w = stomp_encode_head(buf, sizeof buf, STOMP_CMD_CONNECTED, ok, 3, 0);
    static const char want[] = "CONNECTED\nversion:1.2\nendpoint-id:os::012345-X\npath:a\\b\n\n";
    ck_assert_int_eq(w, (long)sizeof want - 1);
    ck_assert(memcmp(buf, want, sizeof want - 1) == 0);
    buf[w] = '\0';
    ck_assert_int_eq(decode_g(buf, (size_t)w + 1, &big, &f), w + 1);
    assert_header(&f, 1, "endpoint-id", "os::012345-X");
    assert_header(&f, 2, "path", "a\\b");

    /* Header injection is refused instead of written. */
    const struct stomp_kv bad[] = {
        {"x", "a\nfake:1", 8}, {"x", "a\r", 2}, {"a:b", "v", 1}, {"a\nb", "v", 1},
        {"", "v", 1},          {"x", "a\0b", 3},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_int_eq(stomp_encode_head(buf, sizeof buf, STOMP_CMD_CONNECTED, &bad[i], 1, 0),
                         STOMP_ERR_BAD_HEADER);
    /* Escaping makes all but the empty name and the NUL sendable. */
    for (size_t i = 0; i < 4; i++)
        ck_assert_int_gt(stomp_encode_head(buf, sizeof buf, STOMP_CMD_SEND, &bad[i], 1, 1), 0);
    ck_assert_int_eq(stomp_encode_head(buf, sizeof buf, STOMP_CMD_SEND, &bad[4], 1, 1),
                     STOMP_ERR_BAD_HEADER);
    ck_assert_int_eq(stomp_encode_head(buf, sizeof buf, STOMP_CMD_SEND, &bad[5], 1, 1),
                     STOMP_ERR_BAD_HEADER);
    ck_assert_int_eq(stomp_encode_head(buf, sizeof buf, (enum stomp_cmd)0, NULL, 0, 1),
                     STOMP_ERR_BAD_COMMAND);
    ck_assert_int_eq(stomp_encode_head(buf, sizeof buf, (enum stomp_cmd)16, NULL, 0, 1),
                     STOMP_ERR_BAD_COMMAND);
    ck_assert_int_eq(stomp_encode_head(buf, 6, STOMP_CMD_ERROR, NULL, 0, 1), STOMP_ERR_TOO_LONG);
    ck_assert_int_eq(stomp_encode_head(buf, 7, STOMP_CMD_ERROR, NULL, 0, 1), 7);
    ck_assert(memcmp(buf, "ERROR\n\n", 7) == 0);
}
END_TEST

/* ------------------------------------------------------------------ helpers */

static int hb(const char *s, uint32_t *x, uint32_t *y)
{
    struct stomp_span sp = {guard_place(s, strlen(s)), strlen(s)};
    return stomp_parse_heartbeat(sp, x, y);
}

START_TEST(test_parse_heartbeat)
{
    uint32_t x = 7, y = 7;

    ck_assert_int_eq(hb("0,0", &x, &y), 0);
    ck_assert_uint_eq(x, 0);
    ck_assert_uint_eq(y, 0);
    ck_assert_int_eq(hb("1000,30000", &x, &y), 0);
    ck_assert_uint_eq(x, 1000);
    ck_assert_uint_eq(y, 30000);
    ck_assert_int_eq(hb("4294967295,000000000000001", &x, &y), 0);
    ck_assert_uint_eq(x, UINT32_MAX);
    ck_assert_uint_eq(y, 1);

    static const char *const bad[] = {
        "", ",", "1,", ",1", "1", "1,2,3", " 1,2", "1 ,2", "1, 2", "-1,2", "1,+2",
        "4294967296,0", "0,99999999999", "0,12345678901234567890123", "a,b", "1;2",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        x = y = 5;
        ck_assert_msg(hb(bad[i], &x, &y) == STOMP_ERR_BAD_HEADER, "%s", bad[i]);
        ck_assert_uint_eq(x, 5);
        ck_assert_uint_eq(y, 5);
    }
}
END_TEST

static int av(const char *list, const char *ver)
{
    struct stomp_span sp = {guard_place(list, strlen(list)), strlen(list)};
    return stomp_accepts_version(sp, ver);
}

START_TEST(test_accepts_version)
{
    ck_assert_int_eq(av("1.2", "1.2"), 1);
    ck_assert_int_eq(av("1.0,1.1,1.2", "1.2"), 1);
    ck_assert_int_eq(av("1.2,1.1", "1.2"), 1);
    ck_assert_int_eq(av("1.0, 1.2", "1.2"), 1);
    ck_assert_int_eq(av("1.0,\t1.2 ", "1.2"), 1);
    ck_assert_int_eq(av("1.0,1.1", "1.2"), 0);
    ck_assert_int_eq(av("1.20", "1.2"), 0);
    ck_assert_int_eq(av("11.2", "1.2"), 0);
    ck_assert_int_eq(av("1.2.1", "1.2"), 0);
    ck_assert_int_eq(av("", "1.2"), 0);
    ck_assert_int_eq(av(",,", "1.2"), 0);
    ck_assert_int_eq(av("1.1,", "1.2"), 0);
}
END_TEST

/* The guard really is live: the other tests' over-reads would fault. */
START_TEST(test_guard_faults)
{
    const volatile uint8_t *p = guard_place("x", 1);
    ck_assert_uint_eq(p[0], 'x');
    /* Under ASan its own SEGV handler would turn the signal into exit(1). */
    signal(SIGSEGV, SIG_DFL);
    (void)p[1];
}
END_TEST

/* A frame ending at the guard, decoded with its NUL as the very last byte and with the
 * body-NUL search, content-length read and command check all touching the edge. */
START_TEST(test_guard_edges)
{
    struct stomp_frame f;
    static const struct vec edge[] = {
        V("SEND\n\n"), V("SEND\ncontent-length:3\n\nab"), V("SEND\ncontent-length:3\n\nabc"),
        V("SEND\na:b\n\r"), V("SEND\na:b\n"), V("SEND\na:b"), V("SEND\r"), V("\\"),
    };
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
        long r = decode_g(edge[i].s, edge[i].n, &big, &f);
        ck_assert_msg(r == STOMP_NEED_MORE || r == STOMP_ERR_BAD_COMMAND, "edge %zu", i);
    }
    char out[8];
    size_t n;
    struct stomp_span sp = {guard_place("ab\\", 3), 3};
    ck_assert_int_eq(stomp_unescape(sp, out, sizeof out, &n), STOMP_ERR_BAD_ESCAPE);
    ck_assert_uint_eq(stomp_skip_eols(guard_place("\n\r", 2), 2), 1);
}
END_TEST

static Suite *stomp_suite(void)
{
    Suite *s = suite_create("stomp_codec");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_every_command);
    tcase_add_test(tc, test_bad_commands);
    tcase_add_test(tc, test_lf_and_crlf);
    tcase_add_test(tc, test_header_values);
    tcase_add_test(tc, test_repeated_headers);
    tcase_add_test(tc, test_content_length_body_with_nuls);
    tcase_add_test(tc, test_nul_terminated_and_empty_bodies);
    tcase_add_test(tc, test_heartbeats_between_frames);
    tcase_add_test(tc, test_every_prefix_needs_more);
    tcase_add_test(tc, test_split_at_every_boundary);
    tcase_add_test(tc, test_last_len_beyond_blank_line);
    tcase_add_test(tc, test_each_error);
    tcase_add_test(tc, test_err_names);
    tcase_add_test(tc, test_limit_max_head);
    tcase_add_test(tc, test_limit_max_headers);
    tcase_add_test(tc, test_limit_max_body);
    tcase_add_test(tc, test_unescape);
    tcase_add_test(tc, test_escape);
    tcase_add_test(tc, test_encode_decode_round_trip);
    tcase_add_test(tc, test_encode_unescaped);
    tcase_add_test(tc, test_parse_heartbeat);
    tcase_add_test(tc, test_accepts_version);
    tcase_add_test(tc, test_guard_edges);
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
    SRunner *sr = srunner_create(stomp_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
