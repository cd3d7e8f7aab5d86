/* fuzz_stomp_codec.c — libFuzzer harness for relay/mtp/stomp_codec.
 *
 * The input is a STOMP byte stream (heart-beat EOLs and frames), decoded with small and
 * with roomy limits. Beyond "no crash", every result is checked against the contract:
 * spans inside the input, body/NUL/content-length agreement, prefix consistency (each
 * prefix, in its own exact-size heap copy so ASan sees over-reads, waits or gives the same
 * answer), resumed decoding with LAST_LEN equal to a fresh one, limits exact at the
 * boundary of a decoded frame, and decode -> unescape -> escape -> encode -> decode giving
 * the same frame.
 *
 *   make BUILD=/tmp/b /tmp/b/fuzz/fuzz_stomp_codec
 *   /tmp/b/fuzz/fuzz_stomp_codec -max_len=4096 corpus/ tests/fuzz/seeds/fuzz_stomp_codec/
 */
#include "relay/mtp/stomp_codec.h"

#include <limits.h>
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

static const struct stomp_limits roomy = {(size_t)INT_MAX, STOMP_HEADERS_CAP, SIZE_MAX};

static int in_range(const uint8_t *p, size_t n, const uint8_t *lo, const uint8_t *hi)
{
    return p >= lo && p <= hi && n <= (size_t)(hi - p);
}

static int has_byte(struct stomp_span s, uint8_t c)
{
    return s.len > 0 && memchr(s.ptr, c, s.len) != NULL;
}

static int span_eq(struct stomp_span a, struct stomp_span b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* The contract of one stomp_decode result R on BUF[0..LEN) with limits LIM. */
static void check_result(const uint8_t *buf, size_t len, const struct stomp_limits *lim,
                         const struct stomp_frame *f, long r)
{
    if (r <= 0) {
        FZ_CHECK(r == STOMP_NEED_MORE || (r >= STOMP_ERR_NO_NUL && r <= STOMP_ERR_BAD_COMMAND));
        return;
    }
    size_t max_headers =
        lim->max_headers < STOMP_HEADERS_CAP ? lim->max_headers : STOMP_HEADERS_CAP;
    FZ_CHECK((size_t)r <= len);
    FZ_CHECK(f->head_len > 0 && f->head_len < (size_t)r);
    FZ_CHECK(f->head_len <= lim->max_head);
    FZ_CHECK(f->cmd >= STOMP_CMD_CONNECT && f->cmd <= STOMP_CMD_ERROR);
    FZ_CHECK(f->n_headers <= max_headers);
    FZ_CHECK(buf[f->head_len - 1] == '\n');
    const uint8_t *head_end = buf + f->head_len;
    for (size_t i = 0; i < f->n_headers; i++) {
        const struct stomp_header *h = &f->headers[i];
        FZ_CHECK(in_range(h->name.ptr, h->name.len, buf, head_end));
        FZ_CHECK(in_range(h->value.ptr, h->value.len, buf, head_end));
        FZ_CHECK(h->name.len > 0);
        FZ_CHECK(h->value.ptr == h->name.ptr + h->name.len + 1 && h->value.ptr[-1] == ':');
        FZ_CHECK(!has_byte(h->name, ':'));
        FZ_CHECK(!has_byte(h->name, '\r') && !has_byte(h->value, '\r'));
        FZ_CHECK(!has_byte(h->name, '\n') && !has_byte(h->value, '\n'));
        FZ_CHECK(!has_byte(h->name, 0) && !has_byte(h->value, 0));
    }
    FZ_CHECK(f->body.ptr == head_end);
    FZ_CHECK(f->head_len + f->body.len + 1 == (size_t)r);
    FZ_CHECK(buf[r - 1] == 0);
    FZ_CHECK(f->body.len <= lim->max_body);
    const struct stomp_header *cl = stomp_header_get(f, "content-length");
    if (f->content_length >= 0) {
        FZ_CHECK(cl != NULL);
        FZ_CHECK(f->body.len == (size_t)f->content_length);
        long v = 0;
        for (size_t i = 0; i < cl->value.len; i++)
            v = v * 10 + (cl->value.ptr[i] - '0');
        FZ_CHECK(v == f->content_length);
    } else {
        FZ_CHECK(cl == NULL);
        FZ_CHECK(!has_byte(f->body, 0));
    }
}

/* Same frame, both decoded from buffers with the same content at bases A and B. */
static void check_same(const struct stomp_frame *x, const uint8_t *a, const struct stomp_frame *y,
                       const uint8_t *b, int with_body)
{
    FZ_CHECK(x->cmd == y->cmd && x->head_len == y->head_len);
    FZ_CHECK(x->n_headers == y->n_headers && x->content_length == y->content_length);
    for (size_t i = 0; i < x->n_headers; i++) {
        FZ_CHECK(x->headers[i].name.ptr - a == y->headers[i].name.ptr - b);
        FZ_CHECK(x->headers[i].name.len == y->headers[i].name.len);
        FZ_CHECK(x->headers[i].value.ptr - a == y->headers[i].value.ptr - b);
        FZ_CHECK(x->headers[i].value.len == y->headers[i].value.len);
    }
    if (with_body)
        FZ_CHECK(x->body.ptr - a == y->body.ptr - b && x->body.len == y->body.len);
}

/* Every prefix (or a spread of them for long inputs), each in an exact-size copy. */
static void check_prefixes(const uint8_t *buf, size_t len, const struct stomp_limits *lim,
                           const struct stomp_frame *ref, long r)
{
    size_t step = len <= 512 ? 1 : len / 64;
    int seen_err = 0;

    for (size_t k = 0; k <= len; k += step) {
        uint8_t *copy = malloc(k ? k : 1);
        FZ_CHECK(copy != NULL);
        if (k)
            memcpy(copy, buf, k);
        struct stomp_frame f;
        long rk = stomp_decode(copy, k, lim, &f);
        if (r > 0) {
            FZ_CHECK(k < (size_t)r ? rk == STOMP_NEED_MORE : rk == r);
            if (rk > 0)
                check_same(ref, buf, &f, copy, 1);
        } else if (r < 0) {
            FZ_CHECK(rk == STOMP_NEED_MORE || rk == r);
            FZ_CHECK(!seen_err || rk == r); /* once proven, an error stays */
            seen_err |= rk == r;
        } else {
            FZ_CHECK(rk == STOMP_NEED_MORE);
        }
        free(copy);
    }
}

/* A first call on S bytes, then a resumed one on all: as a fresh decode. */
static void check_resume(const uint8_t *buf, size_t len, const struct stomp_limits *lim,
                         size_t s)
{
    struct stomp_frame ref, f;
    int hr = stomp_decode_head(buf, len, 0, lim, &ref);

    if (stomp_decode_head(buf, s, 0, lim, &f) != STOMP_NEED_MORE)
        return;
    int h2 = stomp_decode_head(buf, len, s, lim, &f);
    FZ_CHECK(h2 == hr);
    if (hr <= 0)
        return;
    check_same(&ref, buf, &f, buf, 0);
    long whole = stomp_decode_body(buf, len, 0, lim, &ref);
    /* Body in two steps as well: the first on S2 bytes, past the head. */
    size_t s2 = ref.head_len + (len - ref.head_len) / 2;
    long b1 = stomp_decode_body(buf, s2, 0, lim, &f);
    if (b1 == STOMP_NEED_MORE) {
        long b2 = stomp_decode_body(buf, len, s2, lim, &f);
        FZ_CHECK(b2 == whole);
        if (whole > 0)
            FZ_CHECK(f.body.ptr == ref.body.ptr && f.body.len == ref.body.len);
    } else {
        FZ_CHECK(b1 == whole); /* prefix consistency */
    }
}

/* A decoded frame is accepted with limits equal to its sizes and refused one below. */
static void check_limit_boundaries(const uint8_t *buf, size_t len, const struct stomp_frame *ref,
                                   long r)
{
    struct stomp_frame f;
    struct stomp_limits exact = {ref->head_len, ref->n_headers, ref->body.len};
    struct stomp_limits lim;

    FZ_CHECK(stomp_decode(buf, len, &exact, &f) == r);
    lim = exact;
    lim.max_head--;
    FZ_CHECK(stomp_decode(buf, len, &lim, &f) == STOMP_ERR_HEAD_TOO_LARGE);
    if (ref->n_headers > 0) {
        lim = exact;
        lim.max_headers--;
        FZ_CHECK(stomp_decode(buf, len, &lim, &f) == STOMP_ERR_TOO_MANY_HEADERS);
    }
    if (ref->body.len > 0) {
        lim = exact;
        lim.max_body--;
        FZ_CHECK(stomp_decode(buf, len, &lim, &f) == STOMP_ERR_BODY_TOO_LARGE);
    }
}

struct owned_kv {
    char *name, *value;
    size_t name_len, value_len;
};

/* Unescaped copy of SP (or raw when !ESCAPED); NULL on a bad escape. */
static char *take(struct stomp_span sp, int escaped, size_t *len)
{
    char *out = malloc(sp.len + 1);
    FZ_CHECK(out != NULL);
    if (!escaped) {
        if (sp.len)
            memcpy(out, sp.ptr, sp.len);
        out[sp.len] = '\0';
        *len = sp.len;
        return out;
    }
    int e = stomp_unescape(sp, out, sp.len + 1, len);
    if (e == STOMP_ERR_BAD_ESCAPE) {
        free(out);
        return NULL;
    }
    FZ_CHECK(e == 0 && *len <= sp.len && out[*len] == '\0');
    /* The room boundary is exact. */
    size_t n2;
    char *tight = malloc(*len + 1);
    FZ_CHECK(tight != NULL);
    FZ_CHECK(stomp_unescape(sp, tight, *len + 1, &n2) == 0 && n2 == *len);
    FZ_CHECK(memcmp(tight, out, *len + 1) == 0);
    FZ_CHECK(stomp_unescape(sp, tight, *len, &n2) == STOMP_ERR_TOO_LONG && n2 == *len);
    free(tight);
    return out;
}

/* Unescape every header, escape and encode again, decode: same frame. */
static void check_reencode(const struct stomp_frame *ref)
{
    int escaped = ref->cmd != STOMP_CMD_CONNECT && ref->cmd != STOMP_CMD_CONNECTED;
    struct owned_kv own[STOMP_HEADERS_CAP];
    struct stomp_kv kv[STOMP_HEADERS_CAP];
    size_t n = 0;
    int ok = 1;

    for (; n < ref->n_headers; n++) {
        own[n].name = take(ref->headers[n].name, escaped, &own[n].name_len);
        own[n].value = take(ref->headers[n].value, escaped, &own[n].value_len);
        if (own[n].name == NULL || own[n].value == NULL) {
            free(own[n].name);
            free(own[n].value);
            ok = 0;
            break;
        }
        FZ_CHECK(own[n].name_len > 0 && strlen(own[n].name) == own[n].name_len);
        kv[n].name = own[n].name;
        kv[n].value = own[n].value;
        kv[n].value_len = own[n].value_len;
    }
    if (ok) {
        size_t need = 16;
        for (size_t i = 0; i < n; i++)
            need += 2 * (own[i].name_len + own[i].value_len) + 2;
        char *out = malloc(need + ref->body.len + 1);
        FZ_CHECK(out != NULL);
        long w = stomp_encode_head(out, need, ref->cmd, kv, n, escaped);
        FZ_CHECK(w > 0);
        /* Exactly W bytes are needed. */
        FZ_CHECK(stomp_encode_head(out, (size_t)w - 1, ref->cmd, kv, n, escaped) ==
                 STOMP_ERR_TOO_LONG);
        FZ_CHECK(stomp_encode_head(out, (size_t)w, ref->cmd, kv, n, escaped) == w);
        if (ref->body.len)
            memcpy(out + w, ref->body.ptr, ref->body.len);
        out[(size_t)w + ref->body.len] = '\0';
        size_t total = (size_t)w + ref->body.len + 1;

        struct stomp_frame g;
        FZ_CHECK(stomp_decode((const uint8_t *)out, total, &roomy, &g) == (long)total);
        FZ_CHECK(g.cmd == ref->cmd && g.n_headers == ref->n_headers);
        FZ_CHECK(g.content_length == ref->content_length);
        FZ_CHECK(span_eq(g.body, ref->body));
        for (size_t i = 0; i < n; i++) {
            size_t nl, vl;
            char *nm = take(g.headers[i].name, escaped, &nl);
            char *vv = take(g.headers[i].value, escaped, &vl);
            FZ_CHECK(nm != NULL && vv != NULL);
            FZ_CHECK(nl == own[i].name_len && memcmp(nm, own[i].name, nl) == 0);
            FZ_CHECK(vl == own[i].value_len && (vl == 0 || memcmp(vv, own[i].value, vl) == 0));
            free(nm);
            free(vv);
        }
        free(out);
    }
    for (size_t i = 0; i < n; i++) {
        free(own[i].name);
        free(own[i].value);
    }
}

/* The value helpers on every header value: no crash, and what they accept is sane. */
static void check_value_helpers(const struct stomp_frame *f)
{
    for (size_t i = 0; i < f->n_headers; i++) {
        struct stomp_span v = f->headers[i].value;
        uint32_t x = 7, y = 9;
        if (stomp_parse_heartbeat(v, &x, &y) == 0) {
            char s[32];
            int n = snprintf(s, sizeof s, "%u,%u", (unsigned)x, (unsigned)y);
            FZ_CHECK(n > 0 && (size_t)n <= v.len);
        } else {
            FZ_CHECK(x == 7 && y == 9);
        }
        if (stomp_accepts_version(v, "1.2"))
            FZ_CHECK(v.len >= 3 && memmem(v.ptr, v.len, "1.2", 3) != NULL);
    }
}

static void check_stream(const uint8_t *data, size_t size, const struct stomp_limits *lim,
                         int deep)
{
    size_t pos = 0;

    for (int frames = 0; frames < 64; frames++) {
        size_t k = stomp_skip_eols(data + pos, size - pos);
        FZ_CHECK(k <= size - pos);
        for (size_t i = 0; i < k; i++)
            FZ_CHECK(data[pos + i] == '\n' || data[pos + i] == '\r');
        pos += k;
        if (pos < size)
            FZ_CHECK(data[pos] != '\n' &&
                     !(data[pos] == '\r' && pos + 1 < size && data[pos + 1] == '\n'));

        const uint8_t *buf = data + pos;
        size_t len = size - pos;
        struct stomp_frame f;
        long r = stomp_decode(buf, len, lim, &f);
        check_result(buf, len, lim, &f, r);
        if (deep && frames == 0) {
            check_prefixes(buf, len, lim, &f, r);
            check_resume(buf, len, lim, len / 3);
            check_resume(buf, len, lim, len - len / 4);
        }
        if (r <= 0)
            break;
        if (deep) {
            check_limit_boundaries(buf, len, &f, r);
            check_reencode(&f);
            check_value_helpers(&f);
        }
        pos += (size_t)r;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct stomp_limits tight = {96, 4, 64};
    static const struct stomp_limits small = {512, 16, 1024};

    /* A private exact-size copy, so the decoders' reads are bounded by ASan at SIZE. */
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    if (size)
        memcpy(buf, data, size);
    check_stream(buf, size, &small, 1);
    check_stream(buf, size, &tight, 0);
    check_stream(buf, size, &roomy, 0);

    /* Unescape and escape on raw input. */
    char out[256];
    size_t n;
    struct stomp_span sp = {buf, size < 200 ? size : 200};
    int e = stomp_unescape(sp, out, sizeof out, &n);
    FZ_CHECK(e == 0 || e == STOMP_ERR_BAD_ESCAPE);
    if (e == 0) {
        FZ_CHECK(n <= sp.len && out[n] == '\0');
        char esc[512], back[256];
        size_t m = stomp_escape(out, n, esc, sizeof esc);
        FZ_CHECK(m < sizeof esc && m >= n && strlen(esc) <= m);
        struct stomp_span es = {(const uint8_t *)esc, m};
        size_t n2;
        FZ_CHECK(stomp_unescape(es, back, sizeof back, &n2) == 0);
        FZ_CHECK(n2 == n && memcmp(back, out, n) == 0);
    }
    free(buf);
    return 0;
}
