/* test_ws_codec.c — Check suite for relay/mtp/ws_codec (WebSocket handshake headers).
 *
 * Every header value is first copied so that it ends exactly at a PROT_NONE page
 * (guard_place): the values are not NUL-terminated, and reading one byte past LEN faults.
 * Output buffers sit inside larger ones filled with a canary, so a write past CAP shows.
 */
#include "relay/mtp/ws_codec.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/guard_page.h"

#define CANARY 0xA5
#define SLACK 16

/* ------------------------------------------------------------------ helpers */

static int pick_n(const char *s, size_t n, const char *const *names, size_t n_names)
{
    return ws_protocol_pick((const char *)guard_place(s, n), n, names, n_names);
}

static int pick(const char *s, const char *const *names, size_t n_names)
{
    return pick_n(s, strlen(s), names, n_names);
}

/* One ws_ext_bbf_eid call on a guarded copy of S[0..N), output into a CAP-byte window. */
struct ext_res {
    int r;
    int has;
    size_t len;
    char eid[256];
};

static struct ext_res ext_n(const char *s, size_t n, size_t cap)
{
    unsigned char buf[256 + SLACK];
    struct ext_res x;

    ck_assert_uint_le(cap, 256);
    memset(buf, CANARY, sizeof buf);
    x.has = 77;
    x.len = 77;
    x.r = ws_ext_bbf_eid((const char *)guard_place(s, n), n, cap ? (char *)buf : NULL, cap,
                         &x.len, &x.has);
    for (size_t i = cap; i < sizeof buf; i++)
        ck_assert_msg(buf[i] == CANARY, "write past cap %zu at %zu for \"%s\"", cap, i, s);
    ck_assert(x.r >= -1 && x.r <= 1);
    ck_assert(x.has == 0 || x.has == 1);
    if (x.has) {
        ck_assert_int_eq(x.r, 1);
        ck_assert_uint_lt(x.len, cap);
        ck_assert_int_eq(buf[x.len], 0);
    } else {
        ck_assert_uint_eq(x.len, 0);
        if (cap > 0)
            ck_assert_int_eq(buf[0], 0);
    }
    memcpy(x.eid, buf, cap);
    return x;
}

static struct ext_res ext_cap(const char *s, size_t cap)
{
    return ext_n(s, strlen(s), cap);
}

static struct ext_res ext(const char *s)
{
    return ext_cap(s, 256);
}

static void assert_eid(const char *hdr, const char *want)
{
    struct ext_res x = ext(hdr);
    ck_assert_msg(x.r == 1 && x.has == 1, "\"%s\": r=%d has=%d", hdr, x.r, x.has);
    ck_assert_uint_eq(x.len, strlen(want));
    ck_assert_str_eq(x.eid, want);
}

static void assert_offered_without_eid(const char *hdr)
{
    struct ext_res x = ext(hdr);
    ck_assert_msg(x.r == 1 && x.has == 0, "\"%s\": r=%d has=%d", hdr, x.r, x.has);
}

static void assert_ext_result(const char *hdr, int want)
{
    struct ext_res x = ext(hdr);
    ck_assert_msg(x.r == want, "\"%s\": r=%d, want %d", hdr, x.r, want);
    if (want != 1)
        ck_assert_int_eq(x.has, 0);
}

/* ws_ext_bbf_format into a CAP-byte window; checks the bytes past CAP stay untouched. */
static long fmt(const char *eid, size_t len, size_t cap, char *out)
{
    unsigned char buf[600 + SLACK];

    ck_assert_uint_le(cap, 600);
    memset(buf, CANARY, sizeof buf);
    long r = ws_ext_bbf_format(eid, len, cap ? (char *)buf : NULL, cap);
    for (size_t i = cap; i < sizeof buf; i++)
        ck_assert_msg(buf[i] == CANARY, "format wrote past cap %zu at %zu", cap, i);
    if (r >= 0) {
        ck_assert_uint_lt((size_t)r, cap);
        ck_assert_int_eq(buf[r], 0);
    } else {
        ck_assert_int_eq(r, -1);
        if (cap > 0)
            ck_assert_int_eq(buf[0], 0);
    }
    if (out != NULL && cap > 0)
        memcpy(out, buf, cap);
    return r;
}

static const char *const usp_only[] = {"v1.usp"};
static const char *const usp_mqtt[] = {"v1.usp", "mqtt"};

/* ------------------------------------------------------------------ ws_protocol_pick */

START_TEST(test_pick_exact)
{
    ck_assert_int_eq(pick("v1.usp", usp_only, 1), 0);
    ck_assert_int_eq(pick("v1.usp", usp_mqtt, 2), 0);
    ck_assert_int_eq(pick("mqtt", usp_mqtt, 2), 1);
    ck_assert_int_eq(pick("mqtt", usp_only, 1), -1);
    ck_assert_int_eq(pick("stomp", usp_mqtt, 2), -1);
    /* Every tchar is accepted in a token. */
    static const char *const odd[] = {"a!#$%&'*+-.^_`|~Z9"};
    ck_assert_int_eq(pick("x, a!#$%&'*+-.^_`|~Z9", odd, 1), 0);
}
END_TEST

START_TEST(test_pick_header_order)
{
    /* The header's order decides, not NAMES'. */
    ck_assert_int_eq(pick("mqtt, v1.usp", usp_mqtt, 2), 1);
    ck_assert_int_eq(pick("v1.usp, mqtt", usp_mqtt, 2), 0);
    ck_assert_int_eq(pick("chat, superchat, v1.usp, mqtt", usp_mqtt, 2), 0);
    ck_assert_int_eq(pick("chat, v1.usp", usp_only, 1), 0);
    /* A name listed twice: its first index. */
    static const char *const dup[] = {"x", "mqtt", "mqtt"};
    ck_assert_int_eq(pick("mqtt", dup, 3), 1);
}
END_TEST

START_TEST(test_pick_whitespace)
{
    ck_assert_int_eq(pick(" v1.usp", usp_only, 1), 0);
    ck_assert_int_eq(pick("v1.usp \t", usp_only, 1), 0);
    ck_assert_int_eq(pick("\tv1.usp\t", usp_only, 1), 0);
    ck_assert_int_eq(pick("chat ,\tmqtt  , v1.usp", usp_mqtt, 2), 1);
    ck_assert_int_eq(pick("chat,v1.usp", usp_only, 1), 0);
}
END_TEST

START_TEST(test_pick_empty_elements)
{
    ck_assert_int_eq(pick(", ,v1.usp", usp_only, 1), 0);
    ck_assert_int_eq(pick(",,,v1.usp,,", usp_only, 1), 0);
    ck_assert_int_eq(pick("v1.usp,", usp_only, 1), 0);
    ck_assert_int_eq(pick(",", usp_only, 1), -1);
    ck_assert_int_eq(pick(" , \t, ", usp_only, 1), -1);
    ck_assert_int_eq(pick("", usp_only, 1), -1);
    ck_assert_int_eq(pick(" ", usp_only, 1), -1);
    ck_assert_int_eq(ws_protocol_pick(NULL, 0, usp_only, 1), -1);
}
END_TEST

START_TEST(test_pick_case_and_affixes)
{
    ck_assert_int_eq(pick("V1.USP", usp_only, 1), -1);
    ck_assert_int_eq(pick("v1.Usp", usp_only, 1), -1);
    ck_assert_int_eq(pick("v1.usp2", usp_only, 1), -1);
    ck_assert_int_eq(pick("xv1.usp", usp_only, 1), -1);
    ck_assert_int_eq(pick("v1.us", usp_only, 1), -1);
    ck_assert_int_eq(pick("v1", usp_only, 1), -1);
    ck_assert_int_eq(pick("v1.usp2, v1.us, v1.usp", usp_only, 1), 0);
    ck_assert_int_eq(pick("MQTT, v1.usp", usp_mqtt, 2), 0);
}
END_TEST

START_TEST(test_pick_malformed)
{
    static const char *const bad[] = {
        "\"v1.usp\"",        "v1.usp;q=1",     "v1/usp",       "v1.usp, a b",
        "v1.usp x",          "v1.usp, (x)",    "v1.usp,\x01",  "v1.usp\r\n",
        "v1.usp, a:b",       "v1.usp, a=b",    "v1.usp\x7f",   "v1.usp, \xc3\xa9",
        "v1.usp, {x}",       "v1.usp, a@b",    "v1.usp, [x]",  "v1.usp\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(pick(bad[i], usp_only, 1) == -1, "bad[%zu] \"%s\"", i, bad[i]);
    /* A NUL byte is data here, and not a tchar. */
    ck_assert_int_eq(pick_n("v1.usp\0", 7, usp_only, 1), -1);
    ck_assert_int_eq(pick_n("v1\0.usp", 7, usp_only, 1), -1);
}
END_TEST

START_TEST(test_pick_no_names)
{
    ck_assert_int_eq(pick("v1.usp", usp_only, 0), -1);
    ck_assert_int_eq(ws_protocol_pick("v1.usp", 6, NULL, 0), -1);
}
END_TEST

/* ------------------------------------------------------------------ ws_ext_bbf_eid */

START_TEST(test_ext_plain)
{
    assert_eid("bbf-usp-protocol; eid=\"doc::agent\"", "doc::agent");
    assert_eid("bbf-usp-protocol; eid=\"os::00256D-0123456789\"", "os::00256D-0123456789");
    assert_eid("bbf-usp-protocol; eid=\"\"", "");
}
END_TEST

START_TEST(test_ext_bare_value)
{
    /* ':' is no tchar, but EIDs are sent bare: accepted (see ws_codec.c). */
    assert_eid("bbf-usp-protocol; eid=proto::x", "proto::x");
    assert_eid("bbf-usp-protocol;eid=os::00256D-0123456789", "os::00256D-0123456789");
    assert_eid("bbf-usp-protocol; eid=a=b\\c/d", "a=b\\c/d");
    assert_eid("bbf-usp-protocol; eid==", "=");
    assert_eid("bbf-usp-protocol; eid=x, other", "x");
    assert_eid("bbf-usp-protocol; eid=x; foo", "x");
}
END_TEST

START_TEST(test_ext_quoted_escapes)
{
    assert_eid("bbf-usp-protocol; eid=\"a\\\"b\\\\c\"", "a\"b\\c");
    assert_eid("bbf-usp-protocol; eid=\"\\x\\y\"", "xy");
    assert_eid("bbf-usp-protocol; eid=\"a,b;c=d e\"", "a,b;c=d e");
    assert_eid("bbf-usp-protocol; eid=\"tab\there\"", "tab\there");
    assert_eid("bbf-usp-protocol; eid=\"\\\t\"", "\t");
    assert_eid("bbf-usp-protocol; eid=\"caf\xc3\xa9\"", "caf\xc3\xa9");
    assert_eid("bbf-usp-protocol; eid=\"\\\xff\"", "\xff");
}
END_TEST

START_TEST(test_ext_among_others)
{
    assert_eid("permessage-deflate; client_max_window_bits, bbf-usp-protocol; eid=\"x\"", "x");
    assert_eid("bbf-usp-protocol; eid=\"x\", permessage-deflate; server_no_context_takeover",
               "x");
    assert_eid("foo; a=b; c=\"d,e;f\\\"\", bbf-usp-protocol; z=1; eid=\"x\"; y, bar", "x");
    assert_eid("permessage-deflate; eid=\"not-this\", bbf-usp-protocol; eid=\"this\"", "this");
    /* The eid of another extension is not ours. */
    assert_ext_result("permessage-deflate; eid=\"x\"", 0);
}
END_TEST

START_TEST(test_ext_repeated)
{
    assert_eid("bbf-usp-protocol; eid=first, bbf-usp-protocol; eid=second", "first");
    assert_offered_without_eid("bbf-usp-protocol, bbf-usp-protocol; eid=second");
    assert_eid("bbf-usp-protocol; eid=a; eid=b", "a");
    /* The first "eid" counts, valueless or not. */
    assert_offered_without_eid("bbf-usp-protocol; eid; eid=b");
}
END_TEST

START_TEST(test_ext_no_eid)
{
    assert_offered_without_eid("bbf-usp-protocol");
    assert_offered_without_eid("bbf-usp-protocol; foo=bar; baz");
    assert_offered_without_eid("bbf-usp-protocol; eids=x; id=y; e=z");
    assert_offered_without_eid("x, bbf-usp-protocol ,y");
}
END_TEST

START_TEST(test_ext_not_offered)
{
    assert_ext_result("", 0);
    assert_ext_result(" \t", 0);
    assert_ext_result(", ,", 0);
    assert_ext_result("permessage-deflate", 0);
    assert_ext_result("bbf-usp-protocolx; eid=a", 0);
    assert_ext_result("x-bbf-usp-protocol; eid=a", 0);
    assert_ext_result("bbf-usp; eid=a", 0);
    struct ext_res x = ext_n(NULL, 0, 0);
    ck_assert_int_eq(x.r, 0);
}
END_TEST

START_TEST(test_ext_case)
{
    assert_eid("BBF-USP-Protocol; EID=\"x\"", "x");
    assert_eid("Bbf-Usp-Protocol; Eid=AbC", "AbC"); /* values keep their case */
}
END_TEST

START_TEST(test_ext_whitespace)
{
    assert_eid("  bbf-usp-protocol \t;\t eid \t=\t \"x y\" \t, other ", "x y");
    assert_eid("bbf-usp-protocol;eid=\"x\"", "x");
    assert_eid("\tbbf-usp-protocol\t;\teid\t=\tx\t", "x");
    assert_eid(", ,bbf-usp-protocol; eid=x,,", "x");
}
END_TEST

START_TEST(test_ext_malformed)
{
    static const char *const bad[] = {
        "bbf-usp-protocol; eid=\"abc",
        "bbf-usp-protocol; eid=\"abc\\",
        "bbf-usp-protocol; eid=\"abc\\\"",
        "bbf-usp-protocol;; eid=x",
        "bbf-usp-protocol; =x",
        "bbf-usp-protocol; eid=",
        "bbf-usp-protocol; eid= ,x",
        "bbf-usp-protocol;",
        "bbf-usp-protocol; ",
        "; eid=x",
        "bbf-usp-protocol eid=x",
        "bbf-usp-protocol; eid=\"x\"y",
        "bbf-usp-protocol; eid=\"a\" \"b\"",
        "bbf-usp-protocol; eid=a b",
        "bbf-usp-protocol; eid=a\"b\"",
        "bbf-usp-protocol; eid=;",
        "\"bbf-usp-protocol\"",
        "bbf/usp-protocol",
        "bbf-usp-protocol; e:d=x",
        "bbf-usp-protocol; eid=\"a\x01z\"",
        "bbf-usp-protocol; eid=\"a\\\x01z\"",
        "bbf-usp-protocol; eid=\"a\x7f\"",
        "bbf-usp-protocol; eid=a\x01",
        "bbf-usp-protocol; eid=a\x7f",
        "bbf-usp-protocol; eid=\xc3\xa9",
        "bbf-usp-protocol; eid=\"x\"\r\n",
        "bbf-usp-protocol; eid=x, ;",
        "bbf-usp-protocol; eid=x, a b",
        "bbf-usp-protocol; eid=x, y; z=\"",
        "permessage-deflate; a=\"unterminated, bbf-usp-protocol; eid=x",
        "a=b",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct ext_res x = ext(bad[i]);
        ck_assert_msg(x.r == -1, "bad[%zu] \"%s\": r=%d", i, bad[i], x.r);
        ck_assert_int_eq(x.has, 0); /* no half-parsed EID is handed out */
        ck_assert_str_eq(x.eid, "");
    }
    struct ext_res x = ext_n("bbf-usp-protocol; eid=\"a\0b\"", 26, 64);
    ck_assert_int_eq(x.r, -1);
    x = ext_n("bbf-usp-protocol\0", 17, 64);
    ck_assert_int_eq(x.r, -1);
}
END_TEST

START_TEST(test_ext_cap)
{
    struct ext_res x = ext_cap("bbf-usp-protocol; eid=abcd", 5);
    ck_assert_int_eq(x.r, 1);
    ck_assert_str_eq(x.eid, "abcd");
    ck_assert_int_eq(ext_cap("bbf-usp-protocol; eid=abcd", 4).r, -1);
    ck_assert_int_eq(ext_cap("bbf-usp-protocol; eid=\"abcd\"", 4).r, -1);
    ck_assert_int_eq(ext_cap("bbf-usp-protocol; eid=abcd", 1).r, -1);
    /* The unescaped length is what must fit. */
    x = ext_cap("bbf-usp-protocol; eid=\"a\\\\b\\\"\"", 5);
    ck_assert_int_eq(x.r, 1);
    ck_assert_str_eq(x.eid, "a\\b\"");
    ck_assert_int_eq(ext_cap("bbf-usp-protocol; eid=\"a\\\\b\\\"\"", 4).r, -1);
    /* An empty EID still needs its NUL. */
    x = ext_cap("bbf-usp-protocol; eid=\"\"", 1);
    ck_assert_int_eq(x.r, 1);
    ck_assert_int_eq(x.has, 1);
    ck_assert_int_eq(ext_cap("bbf-usp-protocol; eid=\"\"", 0).r, -1);
    /* No EID asked for room: CAP 0 (EID NULL) is fine. */
    ck_assert_int_eq(ext_cap("bbf-usp-protocol", 0).r, 1);
    ck_assert_int_eq(ext_cap("permessage-deflate", 0).r, 0);
    /* Values that are not copied are not limited. */
    ck_assert_int_eq(ext_cap("foo; eid=\"far-too-long-for-four\"", 4).r, 0);
    x = ext_cap("bbf-usp-protocol; x=far-too-long; eid=abc, bbf-usp-protocol; eid=too-long", 4);
    ck_assert_int_eq(x.r, 1);
    ck_assert_str_eq(x.eid, "abc");
}
END_TEST

/* Every prefix of valid headers, each ending at the guard page: never a fault, and a cut
 * inside a quoted-string is malformed. */
START_TEST(test_ext_every_prefix)
{
    static const char *const hdrs[] = {
        "permessage-deflate; client_max_window_bits=15, bbf-usp-protocol ; eid = \"a\\\"b\"",
        "bbf-usp-protocol;eid=os::00256D-0123456789, x; y=\"z\"",
    };
    for (size_t h = 0; h < sizeof hdrs / sizeof hdrs[0]; h++) {
        size_t n = strlen(hdrs[h]);
        for (size_t k = 0; k <= n; k++) {
            struct ext_res x = ext_n(hdrs[h], k, 64);
            size_t quotes = 0; /* unescaped ones; these headers hold no escaped backslash */
            for (size_t i = 0; i < k; i++)
                quotes += hdrs[h][i] == '"' && (i == 0 || hdrs[h][i - 1] != '\\');
            if (quotes % 2 == 1)
                ck_assert_msg(x.r == -1, "prefix %zu of hdr %zu: r=%d", k, h, x.r);
        }
        ck_assert_int_eq(ext_n(hdrs[h], n, 64).r, 1);
    }
    for (size_t k = 0; k <= 6; k++)
        (void)pick_n("v1.usp", k, usp_only, 1);
}
END_TEST

/* ------------------------------------------------------------------ ws_ext_bbf_format */

START_TEST(test_format_plain)
{
    char out[128];
    const char *want = "bbf-usp-protocol; eid=\"doc::agent\"";
    long r = fmt("doc::agent", 10, sizeof out, out);
    ck_assert_int_eq(r, (long)strlen(want));
    ck_assert_str_eq(out, want);
    r = fmt("", 0, sizeof out, out);
    ck_assert_str_eq(out, "bbf-usp-protocol; eid=\"\"");
    ck_assert_int_eq(r, 24);
    ck_assert_int_eq(ws_ext_bbf_format(NULL, 0, out, sizeof out), 24);
}
END_TEST

START_TEST(test_format_escaping)
{
    char out[128];
    long r = fmt("a\"b\\c", 5, sizeof out, out);
    ck_assert_str_eq(out, "bbf-usp-protocol; eid=\"a\\\"b\\\\c\"");
    ck_assert_int_eq(r, 24 + 7);
    fmt("sp ace,semi;eq=\xc3\xa9\x80\xff", 19, sizeof out, out);
    ck_assert_str_eq(out, "bbf-usp-protocol; eid=\"sp ace,semi;eq=\xc3\xa9\x80\xff\"");
}
END_TEST

START_TEST(test_format_refuses_controls)
{
    char out[128];
    for (int c = 0; c < 0x20; c++) {
        char eid[3] = {'a', (char)c, 'b'};
        ck_assert_msg(fmt(eid, 3, sizeof out, out) == -1, "byte 0x%02x", c);
    }
    ck_assert_int_eq(fmt("a\x7f", 2, sizeof out, out), -1);
    ck_assert_int_eq(fmt("\x01", 1, sizeof out, out), -1);
    ck_assert_int_eq(fmt("\x20\x7e\x80", 3, sizeof out, out), 27);
}
END_TEST

START_TEST(test_format_cap)
{
    char out[128];
    /* "bbf-usp-protocol; eid=\"abc\"" is 27 bytes, 28 with the NUL. */
    ck_assert_int_eq(fmt("abc", 3, 28, out), 27);
    ck_assert_str_eq(out, "bbf-usp-protocol; eid=\"abc\"");
    ck_assert_int_eq(fmt("abc", 3, 27, out), -1);
    ck_assert_int_eq(fmt("abc", 3, 1, out), -1);
    ck_assert_int_eq(fmt("abc", 3, 0, NULL), -1);
    /* Escapes count: "a\"" needs 24 + 3 + NUL. */
    ck_assert_int_eq(fmt("a\"", 2, 28, out), 27);
    ck_assert_int_eq(fmt("a\"", 2, 27, out), -1);
    ck_assert_int_eq(fmt("", 0, 25, out), 24);
    ck_assert_int_eq(fmt("", 0, 24, out), -1);
}
END_TEST

/* ------------------------------------------------------------------ round trip */

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

START_TEST(test_round_trip)
{
    static const char special[] = "\"\\:; ,=%";
    uint32_t seed = 12345;
    char eid[200], hdr[600];

    for (int iter = 0; iter < 2000; iter++) {
        size_t n = lcg(&seed) % 120;
        for (size_t i = 0; i < n; i++) {
            uint32_t pick_kind = lcg(&seed) % 4;
            unsigned char c;
            if (pick_kind == 0)
                c = (unsigned char)special[lcg(&seed) % (sizeof special - 1)];
            else if (pick_kind == 1)
                c = (unsigned char)(0x80 + lcg(&seed) % 0x80);
            else
                c = (unsigned char)(0x20 + lcg(&seed) % 0x5f); /* 0x20..0x7e */
            eid[i] = (char)c;
        }
        long r = fmt(eid, n, sizeof hdr, hdr);
        ck_assert_int_gt(r, 0);
        /* Parse with exactly the room the EID needs, then with one byte less. */
        struct ext_res x = ext_n(hdr, (size_t)r, n + 1);
        ck_assert_int_eq(x.r, 1);
        ck_assert_int_eq(x.has, 1);
        ck_assert_uint_eq(x.len, n);
        ck_assert(memcmp(x.eid, eid, n) == 0);
        if (n > 0)
            ck_assert_int_eq(ext_n(hdr, (size_t)r, n).r, -1);
        /* Still found behind another extension. */
        char both[700];
        int m = snprintf(both, sizeof both, "permessage-deflate; a=\"b\" , %s , z", hdr);
        ck_assert(m > 0 && (size_t)m < sizeof both);
        x = ext_n(both, (size_t)m, n + 1);
        ck_assert_int_eq(x.r, 1);
        ck_assert(memcmp(x.eid, eid, n) == 0);
    }
}
END_TEST

static Suite *ws_suite(void)
{
    Suite *s = suite_create("ws_codec");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_pick_exact);
    tcase_add_test(tc, test_pick_header_order);
    tcase_add_test(tc, test_pick_whitespace);
    tcase_add_test(tc, test_pick_empty_elements);
    tcase_add_test(tc, test_pick_case_and_affixes);
    tcase_add_test(tc, test_pick_malformed);
    tcase_add_test(tc, test_pick_no_names);
    tcase_add_test(tc, test_ext_plain);
    tcase_add_test(tc, test_ext_bare_value);
    tcase_add_test(tc, test_ext_quoted_escapes);
    tcase_add_test(tc, test_ext_among_others);
    tcase_add_test(tc, test_ext_repeated);
    tcase_add_test(tc, test_ext_no_eid);
    tcase_add_test(tc, test_ext_not_offered);
    tcase_add_test(tc, test_ext_case);
    tcase_add_test(tc, test_ext_whitespace);
    tcase_add_test(tc, test_ext_malformed);
    tcase_add_test(tc, test_ext_cap);
    tcase_add_test(tc, test_ext_every_prefix);
    tcase_add_test(tc, test_format_plain);
    tcase_add_test(tc, test_format_escaping);
    tcase_add_test(tc, test_format_refuses_controls);
    tcase_add_test(tc, test_format_cap);
    tcase_add_test(tc, test_round_trip);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    guard_init();
    SRunner *sr = srunner_create(ws_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
