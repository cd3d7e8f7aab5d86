/* test_endpoint_id.c — Check suite for relay/endpoint_id.c: every scheme rule, every
 * error code, and the percent-encoding helpers. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "relay/endpoint_id.h"

enum { MAX = 256 };

static int chk(const char *id)
{
    return eid_check(id, strlen(id), MAX);
}

struct eid_case {
    const char *id;
    int want;
};

static const struct eid_case cases[] = {
    /* spec examples */
    {"oui:00256D:my-unique-bbf-id-42", EID_OK},
    {"os::00256D-0123456789", EID_OK},
    {"self::my-Agent", EID_OK},
    {"fqdn::www.example.org", EID_OK},
    /* oui: 6, 7 or 9 hex digits */
    {"oui:00256d:x", EID_OK},
    {"oui:00256D1:x", EID_OK},
    {"oui:00256DABC:x", EID_OK},
    {"oui:00256:x", EID_ERR_AUTHORITY},
    {"oui:00256DAB:x", EID_ERR_AUTHORITY},
    {"oui:00256DABCD:x", EID_ERR_AUTHORITY},
    {"oui:00256G:x", EID_ERR_AUTHORITY},
    {"oui::x", EID_ERR_AUTHORITY},
    /* cid: exactly 6 hex digits */
    {"cid:3AA3F8:x", EID_OK},
    {"cid:3AA3F:x", EID_ERR_AUTHORITY},
    {"cid:3AA3F81:x", EID_ERR_AUTHORITY},
    {"cid:3AA3FZ:x", EID_ERR_AUTHORITY},
    /* pen: one or more decimal digits */
    {"pen:3561:x", EID_OK},
    {"pen:0:x", EID_OK},
    {"pen:123456789012:x", EID_OK},
    {"pen::x", EID_ERR_AUTHORITY},
    {"pen:35a1:x", EID_ERR_AUTHORITY},
    {"pen:-1:x", EID_ERR_AUTHORITY},
    /* self, user, doc: 0-6 chars of the instance charset */
    {"self:abc:x", EID_OK},
    {"self:A_b.-9x:x", EID_ERR_AUTHORITY}, /* 7 bytes */
    {"self:A_b.-9:x", EID_OK},
    {"self:A_b.-:x", EID_OK},
    {"self:%41:x", EID_OK},
    {"self:%4:x", EID_ERR_PERCENT},
    {"self:a b:x", EID_ERR_AUTHORITY},
    {"user::x", EID_OK},
    {"user:abcdef:x", EID_OK},
    {"user:abcdefg:x", EID_ERR_AUTHORITY},
    {"user:a/b:x", EID_ERR_AUTHORITY},
    {"doc:v1.2:x", EID_OK},
    {"doc:abcdefg:x", EID_ERR_AUTHORITY},
    /* proto: 0-6 chars, no '.' */
    {"proto::x", EID_OK},
    {"proto:v12_3:x", EID_OK},
    {"proto:v1.2:x", EID_ERR_AUTHORITY},
    {"proto:abcdefg:x", EID_ERR_AUTHORITY},
    /* os, ops, uuid, imei, fqdn: empty authority */
    {"ops::00256D-Gateway-SN1", EID_OK},
    {"uuid::f81d4fae-7dec-11d0-a765-00a0c91e6bf6", EID_OK},
    {"imei::990000862471854", EID_OK},
    {"os:a:x", EID_ERR_AUTHORITY},
    {"ops:a:x", EID_ERR_AUTHORITY},
    {"uuid:a:x", EID_ERR_AUTHORITY},
    {"imei:a:x", EID_ERR_AUTHORITY},
    {"fqdn:a:x", EID_ERR_AUTHORITY},
    /* fqdn instance-ids may exceed R-ARC.6's 50 chars: not enforced */
    {"fqdn::a-very-long-host-name.in-a-very-long-sub-domain.of-example.org", EID_OK},
    /* unknown schemes: 0-64 chars of the instance charset */
    {"x-vendor::x", EID_OK},
    {"x-vendor:Any_Auth.1:x", EID_OK},
    {"x9:a%2Fb:x", EID_OK},
    {"x9:a%2:x", EID_ERR_PERCENT},
    {"x9:a b:x", EID_ERR_AUTHORITY},
    {"x9:1234567890123456789012345678901234567890123456789012345678901234:x", EID_OK},
    {"x9:12345678901234567890123456789012345678901234567890123456789012345:x",
     EID_ERR_AUTHORITY},
    /* shape: exactly two ':' */
    {"self", EID_ERR_SHAPE},
    {"self:x", EID_ERR_SHAPE},
    {"self::x:y", EID_ERR_SHAPE},
    {"self:::x", EID_ERR_SHAPE},
    {":::", EID_ERR_SHAPE},
    /* scheme */
    {"::x", EID_ERR_SCHEME},
    {"Self::x", EID_ERR_SCHEME},
    {"se_lf::x", EID_ERR_SCHEME},
    {"se lf::x", EID_ERR_SCHEME},
    {"s.x::x", EID_ERR_SCHEME},
    /* instance-id */
    {"self::", EID_ERR_INSTANCE},
    {"self::a b", EID_ERR_INSTANCE},
    {"self::a/b", EID_ERR_INSTANCE},
    {"self::a~b", EID_ERR_INSTANCE},
    {"self::a+b", EID_ERR_INSTANCE},
    {"self::\xc3\xa9", EID_ERR_INSTANCE},
    {"self::a\r\n", EID_ERR_INSTANCE},
    {"self::AZaz09-._", EID_OK},
    {"self::%2f%3A", EID_OK},
    {"self::%", EID_ERR_PERCENT},
    {"self::%4", EID_ERR_PERCENT},
    {"self::%G1", EID_ERR_PERCENT},
    {"self::%1G", EID_ERR_PERCENT},
    {"self::ab%", EID_ERR_PERCENT},
    /* the authority is checked before the instance */
    {"oui:1:a b", EID_ERR_AUTHORITY},
};

START_TEST(test_cases)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = chk(cases[i].id);
        ck_assert_msg(rc == cases[i].want, "%s: got %s want %s", cases[i].id, eid_err_name(rc),
                      eid_err_name(cases[i].want));
    }
}
END_TEST

START_TEST(test_empty_and_length)
{
    ck_assert_int_eq(eid_check("", 0, MAX), EID_ERR_EMPTY);
    ck_assert_int_eq(eid_check(NULL, 0, MAX), EID_ERR_EMPTY);
    /* exactly max_len is fine, one more is not */
    ck_assert_int_eq(eid_check("self::abcd", 10, 10), EID_OK);
    ck_assert_int_eq(eid_check("self::abcde", 11, 10), EID_ERR_TOO_LONG);
    /* the length check comes before the shape check */
    ck_assert_int_eq(eid_check("nonsense", 8, 4), EID_ERR_TOO_LONG);

    char big[MAX + 2];
    memcpy(big, "self::", 6);
    memset(big + 6, 'a', sizeof big - 6);
    ck_assert_int_eq(eid_check(big, MAX, MAX), EID_OK);
    ck_assert_int_eq(eid_check(big, MAX + 1, MAX), EID_ERR_TOO_LONG);
}
END_TEST

START_TEST(test_not_nul_terminated)
{
    /* LEN bounds the ID: what follows it, here an invalid ':', is never read as part of it. */
    const char buf[] = "self::abc:def";
    ck_assert_int_eq(eid_check(buf, 9, MAX), EID_OK);
    ck_assert_int_eq(eid_check(buf, 10, MAX), EID_ERR_SHAPE);
    /* an embedded NUL is an invalid character, not a terminator */
    ck_assert_int_eq(eid_check("self::a\0b", 9, MAX), EID_ERR_INSTANCE);
    ck_assert_int_eq(eid_check("self:\0:b", 8, MAX), EID_ERR_AUTHORITY);
    ck_assert_int_eq(eid_check("se\0f::b", 7, MAX), EID_ERR_SCHEME);
    /* a '%' escape may not borrow bytes beyond LEN */
    ck_assert_int_eq(eid_check("self::a%41", 9, MAX), EID_ERR_PERCENT);
}
END_TEST

START_TEST(test_err_names)
{
    const int errs[] = {EID_OK, EID_ERR_EMPTY, EID_ERR_TOO_LONG, EID_ERR_SHAPE,
                        EID_ERR_SCHEME, EID_ERR_AUTHORITY, EID_ERR_INSTANCE, EID_ERR_PERCENT};
    const size_t n = sizeof errs / sizeof errs[0];
    for (size_t i = 0; i < n; i++) {
        const char *a = eid_err_name(errs[i]);
        ck_assert_str_ne(a, "unknown");
        for (const char *c = a; *c; c++)
            ck_assert_msg((*c >= 'a' && *c <= 'z') || *c == '_', "%s not snake_case", a);
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(a, eid_err_name(errs[j]));
    }
    ck_assert_str_eq(eid_err_name(EID_OK), "ok");
    ck_assert_str_eq(eid_err_name(-99), "unknown");
}
END_TEST

START_TEST(test_pct_encode)
{
    char dst[64];
    const char *id = "self::a b:c%~/\\\r\n";
    size_t n = eid_pct_encode(id, strlen(id), dst, sizeof dst);
    ck_assert_str_eq(dst, "self%3A%3Aa%20b%3Ac%25~%2F%5C%0D%0A");
    ck_assert_uint_eq(n, strlen(dst));

    /* unreserved bytes pass through, high bytes get upper-case hex */
    const char raw[] = {'A', 'z', '0', '-', '.', '_', '~', (char)0xff, (char)0x00, 'q'};
    n = eid_pct_encode(raw, sizeof raw, dst, sizeof dst);
    ck_assert_str_eq(dst, "Az0-._~%FF%00q");
    ck_assert_uint_eq(n, 14);

    /* snprintf-like truncation: result is a NUL-terminated prefix, return is the full length */
    memset(dst, 'X', sizeof dst);
    n = eid_pct_encode("a:b", 3, dst, 4);
    ck_assert_uint_eq(n, 5);
    ck_assert_str_eq(dst, "a%3");
    ck_assert_int_eq(dst[4], 'X');
    memset(dst, 'X', sizeof dst);
    n = eid_pct_encode("a:b", 3, dst, 1);
    ck_assert_uint_eq(n, 5);
    ck_assert_int_eq(dst[0], '\0');
    ck_assert_int_eq(dst[1], 'X');
    n = eid_pct_encode("a:b", 3, NULL, 0);
    ck_assert_uint_eq(n, 5);
    /* exact fit */
    n = eid_pct_encode("a:b", 3, dst, 6);
    ck_assert_uint_eq(n, 5);
    ck_assert_str_eq(dst, "a%3Ab");
    n = eid_pct_encode("", 0, dst, sizeof dst);
    ck_assert_uint_eq(n, 0);
    ck_assert_str_eq(dst, "");
}
END_TEST

START_TEST(test_pct_decode)
{
    char dst[64];
    ck_assert_int_eq(eid_pct_decode("self%3A%3Aa%2fb", 15, dst, sizeof dst), 9);
    ck_assert_str_eq(dst, "self::a/b");
    /* decoded once: %2541 gives "%41", not "A" */
    ck_assert_int_eq(eid_pct_decode("%2541", 5, dst, sizeof dst), 3);
    ck_assert_str_eq(dst, "%41");
    ck_assert_int_eq(eid_pct_decode("", 0, dst, sizeof dst), 0);
    ck_assert_str_eq(dst, "");
    /* %00 decodes to a NUL byte, counted in the length */
    ck_assert_int_eq(eid_pct_decode("a%00b", 5, dst, sizeof dst), 3);
    ck_assert_int_eq(memcmp(dst, "a\0b", 4), 0);

    /* bad escapes */
    ck_assert_int_eq(eid_pct_decode("%", 1, dst, sizeof dst), -1);
    ck_assert_int_eq(eid_pct_decode("a%4", 3, dst, sizeof dst), -1);
    ck_assert_int_eq(eid_pct_decode("%G0", 3, dst, sizeof dst), -1);
    ck_assert_int_eq(eid_pct_decode("%0g", 3, dst, sizeof dst), -1);
    /* LEN bounds the input: the escape may not run on into the bytes after it */
    ck_assert_int_eq(eid_pct_decode("a%41", 3, dst, sizeof dst), -1);

    /* room: needs decoded length + 1 */
    ck_assert_int_eq(eid_pct_decode("abc", 3, dst, 4), 3);
    ck_assert_int_eq(eid_pct_decode("abc", 3, dst, 3), -1);
    ck_assert_int_eq(eid_pct_decode("%41%42", 6, dst, 3), 2);
    ck_assert_str_eq(dst, "AB");
    ck_assert_int_eq(eid_pct_decode("%41%42", 6, dst, 2), -1);
    ck_assert_int_eq(eid_pct_decode("", 0, dst, 0), -1);
}
END_TEST

START_TEST(test_pct_round_trip)
{
    /* every byte value, and random strings: decode(encode(x)) == x, and the encoding only
     * uses the unreserved set plus '%' */
    char src[256], enc[256 * 3 + 1], dec[257];
    for (int i = 0; i < 256; i++)
        src[i] = (char)i;
    size_t n = eid_pct_encode(src, sizeof src, enc, sizeof enc);
    ck_assert_uint_lt(n, sizeof enc);
    ck_assert_int_eq(eid_pct_decode(enc, n, dec, sizeof dec), 256);
    ck_assert_int_eq(memcmp(src, dec, 256), 0);

    srand(1);
    for (int iter = 0; iter < 2000; iter++) {
        size_t len = (size_t)(rand() % 64);
        for (size_t i = 0; i < len; i++)
            src[i] = (char)(rand() % 4 == 0 ? rand() % 256 : "ab:%/ -._~Z9"[rand() % 12]);
        n = eid_pct_encode(src, len, enc, sizeof enc);
        ck_assert_uint_eq(n, strlen(enc));
        for (size_t i = 0; i < n; i++) {
            char c = enc[i];
            ck_assert(c != ':' && c != '\\' && c != '\r' && c != '\n' && c != '/' && c != ' ');
        }
        ck_assert_int_eq(eid_pct_decode(enc, n, dec, sizeof dec), (long)len);
        ck_assert_int_eq(memcmp(src, dec, len), 0);
    }
}
END_TEST

START_TEST(test_encoded_id_checks)
{
    /* Encoding arbitrary bytes yields a valid instance-id, except that '~' stays literal
     * (it is unreserved for URIs but not allowed by R-ARC.5). */
    char id[128] = "self::";
    const char raw[] = "a b:c/d\xff-._\r\n";
    eid_pct_encode(raw, sizeof raw - 1, id + 6, sizeof id - 6);
    ck_assert_str_eq(id, "self::a%20b%3Ac%2Fd%FF-._%0D%0A");
    ck_assert_int_eq(eid_check(id, strlen(id), MAX), EID_OK);
    char id2[128] = "self::";
    eid_pct_encode("a~b", 3, id2 + 6, sizeof id2 - 6);
    ck_assert_int_eq(eid_check(id2, strlen(id2), MAX), EID_ERR_INSTANCE);
}
END_TEST

/* Every byte value in each position, against the charsets written out longhand. */
START_TEST(test_every_byte)
{
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        int id_char = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                      (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
        int scheme_char = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
        char id[16];

        memcpy(id, "self::a?", 8);
        id[7] = (char)c;
        int want = c == '%' ? EID_ERR_PERCENT : c == ':' ? EID_ERR_SHAPE
                   : id_char ? EID_OK : EID_ERR_INSTANCE;
        ck_assert_msg(eid_check(id, 8, MAX) == want, "instance byte %02x", b);

        memcpy(id, "self:?:a", 8);
        id[5] = (char)c;
        want = c == '%' ? EID_ERR_PERCENT : c == ':' ? EID_ERR_SHAPE
               : id_char ? EID_OK : EID_ERR_AUTHORITY;
        ck_assert_msg(eid_check(id, 8, MAX) == want, "self authority byte %02x", b);

        memcpy(id, "proto:?:a", 9);
        id[6] = (char)c;
        want = c == '%' ? EID_ERR_PERCENT : c == ':' ? EID_ERR_SHAPE
               : id_char && c != '.' ? EID_OK : EID_ERR_AUTHORITY;
        ck_assert_msg(eid_check(id, 9, MAX) == want, "proto authority byte %02x", b);

        memcpy(id, "s?::a", 5);
        id[1] = (char)c;
        want = c == ':' ? EID_ERR_SHAPE : scheme_char ? EID_OK : EID_ERR_SCHEME;
        ck_assert_msg(eid_check(id, 5, MAX) == want, "scheme byte %02x", b);

        int hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        memcpy(id, "self::%4?", 9);
        id[8] = (char)c;
        want = c == ':' ? EID_ERR_SHAPE : hex ? EID_OK : EID_ERR_PERCENT;
        ck_assert_msg(eid_check(id, 9, MAX) == want, "hex %02x", b);
        memcpy(id, "cid:00000?:a", 12);
        id[9] = (char)c;
        want = c == ':' ? EID_ERR_SHAPE : hex ? EID_OK : EID_ERR_AUTHORITY;
        ck_assert_msg(eid_check(id, 12, MAX) == want, "cid byte %02x", b);
        memcpy(id, "pen:1?:a", 8);
        id[5] = (char)c;
        want = c == ':' ? EID_ERR_SHAPE : (c >= '0' && c <= '9') ? EID_OK : EID_ERR_AUTHORITY;
        ck_assert_msg(eid_check(id, 8, MAX) == want, "pen byte %02x", b);
    }
}
END_TEST

static Suite *eid_suite(void)
{
    Suite *s = suite_create("endpoint_id");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_cases);
    tcase_add_test(tc, test_every_byte);
    tcase_add_test(tc, test_empty_and_length);
    tcase_add_test(tc, test_not_nul_terminated);
    tcase_add_test(tc, test_err_names);
    tcase_add_test(tc, test_pct_encode);
    tcase_add_test(tc, test_pct_decode);
    tcase_add_test(tc, test_pct_round_trip);
    tcase_add_test(tc, test_encoded_id_checks);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(eid_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
