/* fuzz_ws_codec.c — libFuzzer harness for relay/mtp/ws_codec (WebSocket handshake headers).
 *
 * Input: one byte choosing CAP (its low 6 bits), then the rest split at its first '\n'
 * (or in half when there is none) into A, a header value, and B, an EID / names source.
 * A is parsed as a Sec-WebSocket-Protocol list (against a second, differently written
 * reference parser) and as a Sec-WebSocket-Extensions list (with CAP and with ample
 * room, which must agree except for a value that does not fit CAP). B is formatted as
 * an EID with CAP and ample room, and a formatted header must parse back to B. Each
 * span is parsed from its own exact-size heap copy, so ASan sees any over-read.
 *
 *   make BUILD=/tmp/b /tmp/b/fuzz/fuzz_ws_codec
 *   /tmp/b/fuzz/fuzz_ws_codec -max_len=512 corpus/ tests/fuzz/seeds/fuzz_ws_codec/
 */
#include "relay/mtp/ws_codec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(c)                                                                        \
    do {                                                                                   \
        if (!(c)) {                                                                        \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);          \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

#define MAX_NAMES 4
#define HEAD_LEN 24 /* strlen("bbf-usp-protocol; eid=\"\"") */

static char *dup_exact(const uint8_t *p, size_t n)
{
    char *c = malloc(n > 0 ? n : 1);
    FZ_CHECK(c != NULL);
    if (n > 0)
        memcpy(c, p, n);
    return c;
}

/* RFC 7230 tchar, written as "VCHAR minus the delimiters" (the codec lists the members). */
static int ref_tchar(uint8_t c)
{
    return c > 0x20 && c < 0x7f && strchr("\"(),/:;<=>?@[\\]{}", c) == NULL;
}

static int ref_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* Split at every ',', trim each element, and demand tchars only in what is left. */
static int ref_pick(const uint8_t *h, size_t n, const char *const *names, size_t k)
{
    int found = -1;
    size_t i = 0;

    for (;;) {
        const uint8_t *comma = n > i ? memchr(h + i, ',', n - i) : NULL;
        size_t j = comma ? (size_t)(comma - h) : n;
        size_t a = i, b = j;
        while (a < b && ref_ows(h[a]))
            a++;
        while (b > a && ref_ows(h[b - 1]))
            b--;
        for (size_t x = a; x < b; x++) {
            if (!ref_tchar(h[x]))
                return -1;
        }
        for (size_t m = 0; b > a && found < 0 && m < k; m++) {
            if (strlen(names[m]) == b - a && memcmp(names[m], h + a, b - a) == 0)
                found = (int)m;
        }
        if (j == n)
            return found;
        i = j + 1;
    }
}

static void check_pick(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    /* Names: two fixed ones, then B cut at '|' (each cut at its first NUL, as C strings). */
    char store[MAX_NAMES][64];
    const char *names[2 + MAX_NAMES] = {"v1.usp", "mqtt"};
    size_t k = 2, i = 0;
    while (i < blen && k < 2 + MAX_NAMES) {
        const uint8_t *bar = memchr(b + i, '|', blen - i);
        size_t j = bar ? (size_t)(bar - b) : blen;
        size_t n = j - i < sizeof store[0] - 1 ? j - i : sizeof store[0] - 1;
        char *s = store[k - 2];
        memcpy(s, b + i, n);
        s[n] = '\0';
        names[k++] = s;
        i = j + 1;
    }

    char *h = dup_exact(a, alen);
    for (size_t n = 0; n <= k; n++) {
        int r = ws_protocol_pick(h, alen, names, n);
        FZ_CHECK(r >= -1 && (r < 0 || (size_t)r < n));
        FZ_CHECK(r == ref_pick(a, alen, names, n));
    }
    free(h);
}

struct ext_out {
    int r, has;
    size_t len;
};

static struct ext_out run_ext(const char *h, size_t len, char *eid, size_t cap)
{
    struct ext_out o = {0, 7, 7};
    o.r = ws_ext_bbf_eid(h, len, cap ? eid : NULL, cap, &o.len, &o.has);
    FZ_CHECK(o.r >= -1 && o.r <= 1);
    FZ_CHECK(o.has == 0 || o.has == 1);
    if (o.has) {
        FZ_CHECK(o.r == 1);
        FZ_CHECK(o.len < cap && o.len <= len);
        FZ_CHECK(eid[o.len] == '\0');
        FZ_CHECK(memchr(eid, '\0', o.len) == NULL); /* controls are refused, NUL too */
    } else {
        FZ_CHECK(o.len == 0);
        FZ_CHECK(cap == 0 || eid[0] == '\0');
    }
    return o;
}

/* Format EID with ample room and with CAP; returns the ample result in *OUT (malloc'd). */
static long run_format(const char *eid, size_t len, size_t cap, char **out)
{
    size_t quoted = 0;
    int sendable = 1;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)eid[i];
        sendable &= c >= 0x20 && c != 0x7f;
        quoted += (c == '"' || c == '\\') ? 2 : 1;
    }
    size_t big = HEAD_LEN + quoted + 1;
    char *dst = malloc(big);
    FZ_CHECK(dst != NULL);
    long r = ws_ext_bbf_format(eid, len, dst, big);
    if (!sendable) {
        FZ_CHECK(r == -1 && dst[0] == '\0');
    } else {
        FZ_CHECK(r == (long)(HEAD_LEN + quoted) && dst[r] == '\0');
        FZ_CHECK(memcmp(dst, "bbf-usp-protocol; eid=\"", HEAD_LEN - 1) == 0);
        FZ_CHECK(dst[r - 1] == '"');
        /* One byte less never fits. */
        char *tight = malloc(big - 1);
        FZ_CHECK(tight != NULL);
        FZ_CHECK(ws_ext_bbf_format(eid, len, tight, big - 1) == -1 && tight[0] == '\0');
        free(tight);
    }
    char *small = malloc(cap > 0 ? cap : 1);
    FZ_CHECK(small != NULL);
    long rs = ws_ext_bbf_format(eid, len, cap ? small : NULL, cap);
    if (r >= 0 && (size_t)r < cap) {
        FZ_CHECK(rs == r && memcmp(small, dst, (size_t)r + 1) == 0);
    } else {
        FZ_CHECK(rs == -1 && (cap == 0 || small[0] == '\0'));
    }
    free(small);
    *out = dst;
    return r;
}

/* A formatted header parses back to the EID it was made from, with exactly its room. */
static void check_round_trip(const char *eid, size_t len, const char *hdr, long hlen)
{
    char *h = dup_exact((const uint8_t *)hdr, (size_t)hlen);
    char *back = malloc(len + 1);
    FZ_CHECK(back != NULL);
    struct ext_out o = run_ext(h, (size_t)hlen, back, len + 1);
    FZ_CHECK(o.r == 1 && o.has == 1 && o.len == len);
    FZ_CHECK(len == 0 || memcmp(back, eid, len) == 0);
    free(back);
    free(h);
}

static void check_ext(const uint8_t *a, size_t alen, size_t cap)
{
    char *h = dup_exact(a, alen);
    char *roomy = malloc(alen + 1);
    char *small = malloc(cap > 0 ? cap : 1);
    FZ_CHECK(roomy != NULL && small != NULL);

    struct ext_out big = run_ext(h, alen, roomy, alen + 1);
    struct ext_out lim = run_ext(h, alen, small, cap);
    if (big.r == 1 && big.has && big.len + 1 > cap) {
        FZ_CHECK(lim.r == -1);
    } else {
        FZ_CHECK(lim.r == big.r && lim.has == big.has && lim.len == big.len);
        FZ_CHECK(!lim.has || memcmp(small, roomy, lim.len + 1) == 0);
    }
    /* A parsed EID that a quoted-string can carry survives format -> parse. */
    if (big.has) {
        char *hdr = NULL;
        long r = run_format(roomy, big.len, cap, &hdr);
        if (r >= 0)
            check_round_trip(roomy, big.len, hdr, r);
        free(hdr);
    }
    free(small);
    free(roomy);
    free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t cap = data[0] & 0x3f;
    const uint8_t *rest = data + 1;
    size_t n = size - 1;
    const uint8_t *nl = n > 0 ? memchr(rest, '\n', n) : NULL;
    size_t alen = nl ? (size_t)(nl - rest) : n / 2;
    const uint8_t *b = rest + alen + (nl ? 1 : 0);
    size_t blen = n - alen - (nl ? 1 : 0);

    check_pick(rest, alen, b, blen);
    check_ext(rest, alen, cap);

    char *eid = dup_exact(b, blen);
    char *hdr = NULL;
    long r = run_format(eid, blen, cap, &hdr);
    if (r >= 0)
        check_round_trip(eid, blen, hdr, r);
    free(hdr);
    free(eid);
    return 0;
}
