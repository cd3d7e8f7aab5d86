/* test_record.c — Check suite for the Record header scanner (relay/record.c) and the
 * protobuf-c builder (relay/record_build.c).
 *
 * protobuf-c is the reference: everything the scanner accepts must unpack to the same
 * header, and everything protobuf-c refuses the scanner must refuse too. Records are
 * written here by a hand-made encoder so that field order, unknown fields, repeated fields
 * and over-long varints can be varied (protobuf-c's packer always writes one canonical
 * form). Every scanned input sits right before a PROT_NONE page, so an over-read faults
 * even without ASan.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/record.h"
#include "relay/record_build.h"
#include "tests/unit/guard_page.h"
#include "usp-record.pb-c.h"

enum { MAX_ID = 256 };

static int scan_guarded(const uint8_t *buf, size_t n, size_t max_id, struct record_header *h)
{
    const uint8_t *g = guard_place(buf, n);
    int rc = record_scan(g, n, max_id, h);
    if (rc == RECORD_OK) {
        /* Rebase the spans onto BUF so callers can compare them with their input. */
        struct span *spans[] = {&h->version, &h->to_id, &h->from_id, &h->subscribed};
        for (size_t i = 0; i < sizeof spans / sizeof spans[0]; i++)
            if (spans[i]->ptr != NULL) {
                ck_assert(spans[i]->ptr >= g && spans[i]->ptr + spans[i]->len <= g + n);
                spans[i]->ptr = buf + (spans[i]->ptr - g);
            }
    }
    return rc;
}

/* ------------------------------------------------------------------ hex inputs */

/* Parse "0a 03 '1.3' 4a00": hex byte pairs, whitespace ignored, '...' copied verbatim. */
static size_t hex_parse(const char *s, uint8_t *out, size_t cap)
{
    size_t n = 0;
    while (*s) {
        if (*s == ' ') {
            s++;
        } else if (*s == '\'') {
            for (s++; *s && *s != '\''; s++) {
                ck_assert_uint_lt(n, cap);
                out[n++] = (uint8_t)*s;
            }
            ck_assert_int_eq(*s, '\'');
            s++;
        } else {
            unsigned v;
            ck_assert_msg(sscanf(s, "%2x", &v) == 1, "bad hex at '%s'", s);
            ck_assert_uint_lt(n, cap);
            out[n++] = (uint8_t)v;
            s += 2;
        }
    }
    return n;
}

/* ------------------------------------------------------------------ protobuf-c reference */

static UspRecord__Record *pbc_unpack(const uint8_t *buf, size_t n)
{
    return usp_record__record__unpack(NULL, n, buf);
}

/* STR is protobuf-c's copy of a string field: the bytes plus a NUL, so a string holding a
 * NUL byte looks shorter to strlen(). */
static void assert_span_str(struct span s, const char *str, const char *what)
{
    size_t sl = strlen(str);
    ck_assert_msg(sl <= s.len && (sl == 0 || memcmp(s.ptr, str, sl) == 0) &&
                      (sl == s.len || s.ptr[sl] == '\0'),
                  "%s: scanner '%.*s' vs protobuf-c '%s'", what, (int)s.len,
                  s.ptr ? (const char *)s.ptr : "", str);
}

/* The scanner's view of an accepted Record must equal protobuf-c's. */
static void assert_same_as_pbc(const struct record_header *h, const UspRecord__Record *r)
{
    assert_span_str(h->version, r->version, "version");
    assert_span_str(h->to_id, r->to_id, "to_id");
    assert_span_str(h->from_id, r->from_id, "from_id");
    ck_assert_uint_eq(h->payload_security, (uint32_t)r->payload_security);
    ck_assert_int_eq(h->has_mac_signature, r->mac_signature.len > 0);
    ck_assert_int_eq(h->has_sender_cert, r->sender_cert.len > 0);
    ck_assert_int_eq((int)h->type, (int)r->record_type_case);
    if (h->type == RECORD_SESSION) {
        ck_assert_uint_eq(h->session_id, r->session_context->session_id);
        ck_assert_uint_eq(h->sequence_id, r->session_context->sequence_id);
        ck_assert_uint_eq(h->payload_sar_state, (uint32_t)r->session_context->payload_sar_state);
        ck_assert_uint_eq(h->payloadrec_sar_state,
                          (uint32_t)r->session_context->payloadrec_sar_state);
    } else {
        ck_assert_uint_eq(h->session_id, 0);
        ck_assert_uint_eq(h->sequence_id, 0);
        ck_assert_uint_eq(h->payload_sar_state, 0);
        ck_assert_uint_eq(h->payloadrec_sar_state, 0);
    }
    if (h->type == RECORD_MQTT_CONNECT) {
        ck_assert_uint_eq(h->connect_version, (uint32_t)r->mqtt_connect->version);
        assert_span_str(h->subscribed, r->mqtt_connect->subscribed_topic, "subscribed_topic");
    } else if (h->type == RECORD_STOMP_CONNECT) {
        ck_assert_uint_eq(h->connect_version, (uint32_t)r->stomp_connect->version);
        assert_span_str(h->subscribed, r->stomp_connect->subscribed_destination,
                        "subscribed_destination");
    } else {
        ck_assert_uint_eq(h->connect_version, 0);
        ck_assert_uint_eq(h->subscribed.len, 0);
    }
}

/* Scan BUF and compare with protobuf-c; returns the scan result. The invariants are the
 * fuzz harness's: scan OK => unpack OK and equal; unpack fails => scan fails; scan may be
 * stricter only for the reasons record.h lists. */
static int scan_vs_pbc(const uint8_t *buf, size_t n)
{
    struct record_header h;
    int rc = scan_guarded(buf, n, MAX_ID, &h);
    UspRecord__Record *r = pbc_unpack(buf, n);
    if (rc == RECORD_OK) {
        ck_assert_msg(r != NULL, "scanner accepted what protobuf-c refuses");
        assert_same_as_pbc(&h, r);
    } else if (r != NULL) {
        ck_assert_msg(rc == RECORD_ERR_VARINT_OVERFLOW || rc == RECORD_ERR_FIELD_ZERO ||
                          rc <= RECORD_ERR_NO_TO_ID,
                      "scanner refused (%s) a structurally valid Record", record_err_name(rc));
        ck_assert_int_ne(rc, RECORD_ERR_SUBMSG);
    }
    if (r != NULL)
        usp_record__record__free_unpacked(r, NULL);
    return rc;
}

/* ------------------------------------------------------------------ PRNG */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static size_t rnd_below(size_t n)
{
    return (size_t)(rnd() % n);
}

/* A value with a random bit length, so that every varint size 1..10 shows up. */
static uint64_t rnd_u64(void)
{
    unsigned bits = (unsigned)rnd_below(65);
    if (bits == 0)
        return 0;
    uint64_t v = rnd();
    return bits == 64 ? v : v & ((UINT64_C(1) << bits) - 1);
}

/* ------------------------------------------------------------------ test encoder */

struct wbuf {
    uint8_t *p;
    size_t len, cap;
};

static void wb_reserve(struct wbuf *b, size_t n)
{
    if (b->len + n <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n)
        cap *= 2;
    b->p = realloc(b->p, cap);
    ck_assert_ptr_nonnull(b->p);
    b->cap = cap;
}

static void wb_bytes(struct wbuf *b, const void *p, size_t n)
{
    wb_reserve(b, n);
    if (n > 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void wb_byte(struct wbuf *b, uint8_t c)
{
    wb_bytes(b, &c, 1);
}

/* Varint with up to PAD extra (over-long but legal) bytes, never more than MAX in all. */
static void wb_varint_pad(struct wbuf *b, uint64_t v, unsigned pad, unsigned max)
{
    unsigned need = 1;
    for (uint64_t t = v >> 7; t; t >>= 7)
        need++;
    unsigned total = need + pad > max ? (need > max ? need : max) : need + pad;
    for (unsigned i = 0; i < total; i++) {
        uint8_t c = (uint8_t)(v & 0x7f);
        v >>= 7;
        wb_byte(b, i + 1 < total ? (uint8_t)(c | 0x80) : c);
    }
}

/* Whether the encoder writes over-long varints (set per record). */
static int pad_varints;

static unsigned pad_amount(void)
{
    return pad_varints && rnd_below(3) == 0 ? (unsigned)rnd_below(4) : 0;
}

static void wb_varint(struct wbuf *b, uint64_t v)
{
    wb_varint_pad(b, v, pad_amount(), 10);
}

static void wb_tag(struct wbuf *b, uint32_t num, unsigned wt)
{
    wb_varint_pad(b, (uint64_t)num << 3 | wt, pad_amount(), 5);
}

static void wb_len_field(struct wbuf *b, uint32_t num, const void *p, size_t n)
{
    wb_tag(b, num, 2);
    wb_varint_pad(b, n, pad_amount(), 5);
    wb_bytes(b, p, n);
}

static void wb_str_field(struct wbuf *b, uint32_t num, const char *s)
{
    wb_len_field(b, num, s, strlen(s));
}

static void wb_varint_field(struct wbuf *b, uint32_t num, uint64_t v)
{
    wb_tag(b, num, 0);
    wb_varint(b, v);
}

static void wb_fixed_field(struct wbuf *b, uint32_t num, unsigned wt, uint64_t v)
{
    wb_tag(b, num, wt);
    unsigned n = wt == 1 ? 8 : 4;
    for (unsigned i = 0; i < n; i++)
        wb_byte(b, (uint8_t)(v >> (8 * i)));
}

/* A field protobuf-c does not know, of a random legal wire type. */
static void wb_unknown_field(struct wbuf *b, uint32_t num)
{
    static const uint8_t junk[] = {0x0a, 0x03, 'x', 'y', 'z', 0x80, 0xff};
    switch (rnd_below(4)) {
    case 0:
        wb_varint_field(b, num, rnd_u64());
        break;
    case 1:
        wb_fixed_field(b, num, 1, rnd());
        break;
    case 2:
        wb_len_field(b, num, junk, rnd_below(sizeof junk + 1));
        break;
    default:
        wb_fixed_field(b, num, 5, rnd());
        break;
    }
}

/* A list of encoded fields to be shuffled and concatenated. */
enum { MAX_CHUNKS = 48 };
struct chunks {
    struct wbuf c[MAX_CHUNKS];
    size_t n;
};

static struct wbuf *chunk_new(struct chunks *cs)
{
    ck_assert_uint_lt(cs->n, MAX_CHUNKS);
    struct wbuf *b = &cs->c[cs->n++];
    memset(b, 0, sizeof *b);
    return b;
}

/* Shuffle chunks [FIRST, n) and append them all to OUT, then free them. */
static void chunks_emit(struct chunks *cs, size_t first, struct wbuf *out)
{
    for (size_t i = cs->n; i > first + 1; i--) {
        size_t j = first + rnd_below(i - first);
        struct wbuf t = cs->c[i - 1];
        cs->c[i - 1] = cs->c[j];
        cs->c[j] = t;
    }
    for (size_t i = 0; i < cs->n; i++) {
        wb_bytes(out, cs->c[i].p, cs->c[i].len);
        free(cs->c[i].p);
    }
    cs->n = 0;
}

/* What a generated Record holds: the values the scanner must report. */
struct rec_spec {
    char version[8];
    char to[MAX_ID + 1], from[MAX_ID + 1];
    uint32_t psec;
    size_t mac_len, cert_len;
    enum record_type type;
    uint64_t sid, seq, exp, retx;
    uint32_t sar, sarrec;
    size_t payload_len;   /* per payload element */
    unsigned n_payload;   /* session: 0..3 */
    uint32_t cver;
    char subscribed[64];
    char reason[32];
    uint32_t code;
};

static uint8_t *big_payload; /* 1 MiB of pattern bytes, shared by all payloads */
enum { BIG_PAYLOAD = 1 << 20 };

static void random_id(char *out)
{
    static const char *const forms[] = {
        "self::ctrl-%u",        "os::00256D-%u",       "oui:00256D:agent-%u",
        "cid:3AA3F8:n%u",       "pen:3561:x.%u",       "proto::p_%u",
        "uuid::f81d4fae-7dec-11d0-a765-%012u",         "x-vendor:a%%2Fb:%u",
        "fqdn::host-%u.a-rather-long-domain-name-for-testing.example.org",
    };
    sprintf(out, forms[rnd_below(sizeof forms / sizeof forms[0])], (unsigned)rnd_below(100000));
}

static void random_spec(struct rec_spec *s, int big)
{
    memset(s, 0, sizeof *s);
    static const char *const versions[] = {"1.3", "1.4", "1.0", ""};
    strcpy(s->version, versions[rnd_below(4)]);
    random_id(s->to);
    random_id(s->from);
    s->psec = rnd_below(4) == 0 ? (uint32_t)rnd_below(3) : 0;
    s->mac_len = rnd_below(3) == 0 ? rnd_below(64) : 0;
    s->cert_len = rnd_below(4) == 0 ? rnd_below(200) : 0;
    s->type = (enum record_type)(RECORD_NO_SESSION + rnd_below(7));
    switch (s->type) {
    case RECORD_NO_SESSION:
        s->payload_len = big ? BIG_PAYLOAD - rnd_below(1000) : rnd_below(300);
        s->n_payload = 1;
        break;
    case RECORD_SESSION:
        s->sid = rnd_u64();
        s->seq = rnd_u64();
        s->exp = rnd_u64();
        s->retx = rnd_u64();
        s->sar = (uint32_t)rnd_below(4);
        s->sarrec = rnd_below(8) == 0 ? (uint32_t)rnd() : (uint32_t)rnd_below(4);
        s->n_payload = (unsigned)rnd_below(4);
        s->payload_len = big ? BIG_PAYLOAD / 2 : rnd_below(300);
        break;
    case RECORD_MQTT_CONNECT:
    case RECORD_STOMP_CONNECT:
        s->cver = rnd_below(5) == 0 ? (uint32_t)rnd() : (uint32_t)rnd_below(2);
        if (rnd_below(5) != 0)
            sprintf(s->subscribed, "/usp/ctrl/%u", (unsigned)rnd_below(1000));
        break;
    case RECORD_DISCONNECT:
        if (rnd_below(2))
            strcpy(s->reason, "Session Context terminated");
        s->code = rnd_below(2) ? 7105 : (uint32_t)rnd();
        break;
    default:
        break;
    }
}

/* Proto3 leaves defaults off the wire; writing them explicitly is legal too. */
static int write_default(void)
{
    return rnd_below(3) == 0;
}

static void encode_sub(const struct rec_spec *s, struct wbuf *out)
{
    struct chunks cs = {.n = 0};
    /* A decoy first: later occurrences win, so the scanner must keep the last value. */
    int decoyed = rnd_below(4) == 0;
    if (decoyed && s->type == RECORD_SESSION)
        wb_varint_field(chunk_new(&cs), 1, s->sid ^ 0x5a5a);
    if (decoyed && (s->type == RECORD_MQTT_CONNECT || s->type == RECORD_STOMP_CONNECT))
        wb_str_field(chunk_new(&cs), 2, "decoy/topic");
    size_t first = cs.n;

    switch (s->type) {
    case RECORD_NO_SESSION:
        if (s->payload_len > 0 || write_default())
            wb_len_field(chunk_new(&cs), 2, big_payload, s->payload_len);
        break;
    case RECORD_SESSION: {
        const uint64_t v[6] = {s->sid, s->seq, s->exp, s->retx, s->sar, s->sarrec};
        for (uint32_t i = 0; i < 6; i++)
            if (v[i] != 0 || write_default() || (i == 0 && first > 0))
                wb_varint_field(chunk_new(&cs), i + 1, v[i]);
        for (unsigned i = 0; i < s->n_payload; i++)
            wb_len_field(chunk_new(&cs), 7, big_payload + i, s->payload_len);
        break;
    }
    case RECORD_MQTT_CONNECT:
    case RECORD_STOMP_CONNECT:
        if (s->cver != 0 || write_default())
            wb_varint_field(chunk_new(&cs), 1, s->cver);
        if (s->subscribed[0] != '\0' || write_default() || first > 0)
            wb_str_field(chunk_new(&cs), 2, s->subscribed);
        break;
    case RECORD_DISCONNECT:
        if (s->reason[0] != '\0' || write_default())
            wb_str_field(chunk_new(&cs), 1, s->reason);
        if (s->code != 0 || write_default())
            wb_fixed_field(chunk_new(&cs), 2, 5, s->code);
        break;
    default:
        break;
    }
    /* Unknown fields: numbers this message does not define (field 1 of
     * NoSessionContextRecord included). */
    size_t n_unknown = rnd_below(3);
    for (size_t i = 0; i < n_unknown; i++) {
        uint32_t num = s->type == RECORD_NO_SESSION && rnd_below(2) ? 1 : 8 + (uint32_t)rnd_below(30);
        wb_unknown_field(chunk_new(&cs), num);
    }
    chunks_emit(&cs, first, out);
}

/* Encode S in a random field order with unknown fields mixed in. */
static void encode_record(const struct rec_spec *s, struct wbuf *out)
{
    struct chunks cs = {.n = 0};
    static const uint8_t decoy[] = "decoy-bytes";

    /* Decoys first: later occurrences win, so the scanner must keep the last value. */
    int version_decoyed = rnd_below(4) == 0, psec_decoyed = rnd_below(4) == 0;
    int mac_decoyed = rnd_below(4) == 0, cert_decoyed = rnd_below(4) == 0;
    if (version_decoyed)
        wb_str_field(chunk_new(&cs), 1, "9.9");
    if (psec_decoyed)
        wb_varint_field(chunk_new(&cs), 4, 77);
    if (mac_decoyed)
        wb_len_field(chunk_new(&cs), 5, decoy, s->mac_len == 0 ? sizeof decoy : 0);
    if (cert_decoyed)
        wb_len_field(chunk_new(&cs), 6, decoy, s->cert_len == 0 ? sizeof decoy : 0);
    size_t first = cs.n;

    if (s->version[0] != '\0' || write_default() || version_decoyed)
        wb_str_field(chunk_new(&cs), 1, s->version);
    wb_str_field(chunk_new(&cs), 2, s->to);
    wb_str_field(chunk_new(&cs), 3, s->from);
    if (s->psec != 0 || write_default() || psec_decoyed)
        wb_varint_field(chunk_new(&cs), 4, s->psec);
    if (s->mac_len > 0 || write_default() || mac_decoyed)
        wb_len_field(chunk_new(&cs), 5, big_payload, s->mac_len);
    if (s->cert_len > 0 || write_default() || cert_decoyed)
        wb_len_field(chunk_new(&cs), 6, big_payload, s->cert_len);

    struct wbuf sub = {0};
    encode_sub(s, &sub);
    wb_len_field(chunk_new(&cs), (uint32_t)s->type, sub.p, sub.len);
    free(sub.p);

    static const uint32_t unknown_nums[] = {14, 15, 16, 100, 2047, 2048, 262143, 536870911};
    size_t n_unknown = rnd_below(4);
    for (size_t i = 0; i < n_unknown; i++)
        wb_unknown_field(chunk_new(&cs), unknown_nums[rnd_below(8)]);
    chunks_emit(&cs, first, out);
}

static void assert_matches_spec(const struct record_header *h, const struct rec_spec *s)
{
    assert_span_str(h->version, s->version, "version");
    assert_span_str(h->to_id, s->to, "to_id");
    assert_span_str(h->from_id, s->from, "from_id");
    ck_assert_uint_eq(h->payload_security, s->psec);
    ck_assert_int_eq(h->has_mac_signature, s->mac_len > 0);
    ck_assert_int_eq(h->has_sender_cert, s->cert_len > 0);
    ck_assert_int_eq(h->type, s->type);
    ck_assert_uint_eq(h->session_id, s->sid);
    ck_assert_uint_eq(h->sequence_id, s->seq);
    ck_assert_uint_eq(h->payload_sar_state, s->sar);
    ck_assert_uint_eq(h->payloadrec_sar_state, s->sarrec);
    ck_assert_uint_eq(h->connect_version, s->cver);
    assert_span_str(h->subscribed, s->subscribed, "subscribed");
}

/* ------------------------------------------------------------------ spec examples */

static const char ws_example_hex[] =
    "0A 03 31 2E 33  12 15 6F 73 3A 3A 30 30 32 35 36 44 2D 30 31 32 33 34 35 36 37 38 39"
    "1A 0A 73 65 6C 66 3A 3A 63 74 72 6C  4A 00";

static void assert_built(const struct record_fields *f, const char *want_hex)
{
    uint8_t want[256];
    size_t want_len = hex_parse(want_hex, want, sizeof want);
    uint8_t *out;
    size_t out_len;
    ck_assert_int_eq(record_build(f, &out, &out_len), 0);
    ck_assert_msg(out_len == want_len, "%s: built %zu bytes", want_hex, out_len);
    for (size_t i = 0; i < want_len; i++)
        ck_assert_msg(out[i] == want[i], "%s: byte %zu is %02x", want_hex, i, out[i]);
    free(out);
}

/* The encodings of spec notes §1.2, byte for byte, from record_build() (protobuf-c) and
 * read back by the scanner. */
START_TEST(test_spec_examples)
{
    struct record_fields ws = {.version = "1.3", .to_id = "os::00256D-0123456789",
                               .from_id = "self::ctrl", .type = RECORD_WS_CONNECT};
    assert_built(&ws, ws_example_hex);
    struct record_fields dflt = ws;
    dflt.version = NULL; /* defaults to 1.3 */
    assert_built(&dflt, ws_example_hex);

    uint8_t buf[256];
    size_t n = hex_parse(ws_example_hex, buf, sizeof buf);
    struct record_header h;
    ck_assert_int_eq(scan_vs_pbc(buf, n), RECORD_OK);
    ck_assert_int_eq(scan_guarded(buf, n, MAX_ID, &h), RECORD_OK);
    assert_span_str(h.version, "1.3", "version");
    assert_span_str(h.to_id, "os::00256D-0123456789", "to");
    assert_span_str(h.from_id, "self::ctrl", "from");
    ck_assert_int_eq(h.type, RECORD_WS_CONNECT);
    ck_assert(record_type_is_connect(h.type));

    /* "a"/"b" are not Endpoint IDs: protobuf-c takes it, the scanner does not. */
    struct record_fields disc = {.version = "1.4", .to_id = "a", .from_id = "b",
                                 .type = RECORD_DISCONNECT, .disconnect_reason = "x",
                                 .disconnect_code = 7105};
    const char *disc_hex = "0A 03 31 2E 34 12 01 61 1A 01 62  62 08 0A 01 78 15 C1 1B 00 00";
    assert_built(&disc, disc_hex);
    n = hex_parse(disc_hex, buf, sizeof buf);
    ck_assert_int_eq(scan_vs_pbc(buf, n), RECORD_ERR_TO_ID_SYNTAX);

    /* The sub-message examples, after a valid header. */
    const char *hdr_hex = "0A 03 31 2E 34 12 07 'self::a' 1A 07 'self::b'";
    struct record_fields base = {.version = "1.4", .to_id = "self::a", .from_id = "self::b"};
    struct {
        struct record_fields f;
        const char *tail;
    } subs[] = {
        {base, "52 05 08 01 12 01 74"},
        {base, "42 0D 08 02 10 01 18 01 28 01 30 01 3A 01 70"},
        {base, "3A 03 12 01 70"},
        {base, "62 08 0A 01 78 15 C1 1B 00 00"},
        {base, "6A 00"},
        {base, "5A 03 12 01 64"}, /* V1_2 = 0 is the default: not written */
    };
    subs[0].f.type = RECORD_MQTT_CONNECT;
    subs[0].f.connect_version = 1;
    subs[0].f.subscribed = "t";
    subs[1].f.type = RECORD_SESSION;
    subs[1].f.session_id = 2;
    subs[1].f.sequence_id = 1;
    subs[1].f.expected_id = 1;
    subs[1].f.payload_sar_state = 1;
    subs[1].f.payloadrec_sar_state = 1;
    subs[1].f.payload = (const uint8_t *)"p";
    subs[1].f.payload_len = 1;
    subs[2].f.type = RECORD_NO_SESSION;
    subs[2].f.payload = (const uint8_t *)"p";
    subs[2].f.payload_len = 1;
    subs[3].f.type = RECORD_DISCONNECT;
    subs[3].f.disconnect_reason = "x";
    subs[3].f.disconnect_code = 7105;
    subs[4].f.type = RECORD_UDS_CONNECT;
    subs[5].f.type = RECORD_STOMP_CONNECT;
    subs[5].f.subscribed = "d";
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        char hex[256];
        snprintf(hex, sizeof hex, "%s %s", hdr_hex, subs[i].tail);
        assert_built(&subs[i].f, hex);
        n = hex_parse(hex, buf, sizeof buf);
        ck_assert_int_eq(scan_vs_pbc(buf, n), RECORD_OK);
        ck_assert_int_eq(scan_guarded(buf, n, MAX_ID, &h), RECORD_OK);
        ck_assert_int_eq(h.type, subs[i].f.type);
    }
    /* What the relay reads from those examples. */
    n = hex_parse("0A 03 31 2E 34 12 07 'self::a' 1A 07 'self::b' 52 05 08 01 12 01 74", buf,
                  sizeof buf);
    ck_assert_int_eq(scan_guarded(buf, n, MAX_ID, &h), RECORD_OK);
    ck_assert_uint_eq(h.connect_version, 1);
    assert_span_str(h.subscribed, "t", "topic");
    n = hex_parse("0A 03 31 2E 34 12 07 'self::a' 1A 07 'self::b'"
                  "42 0D 08 02 10 01 18 01 28 01 30 01 3A 01 70", buf, sizeof buf);
    ck_assert_int_eq(scan_guarded(buf, n, MAX_ID, &h), RECORD_OK);
    ck_assert_uint_eq(h.session_id, 2);
    ck_assert_uint_eq(h.sequence_id, 1);
    ck_assert_uint_eq(h.payload_sar_state, 1);
    ck_assert_uint_eq(h.payloadrec_sar_state, 1);
}
END_TEST

/* ------------------------------------------------------------------ every error code */

#define VER "0a 03 '1.3' "
#define TO "12 0a 'self::ctrl' "
#define FROM "1a 0a 'self::agt1' "
#define WS "4a 00 "
#define HDR VER TO FROM

struct err_case {
    const char *hex;
    int want;
    int pbc_ok;    /* what protobuf-c 1.4.1 makes of it (found by experiment) */
    size_t max_id; /* 0 = MAX_ID */
};

static const struct err_case err_cases[] = {
    {HDR WS, RECORD_OK, 1, 0},
    {WS FROM TO VER, RECORD_OK, 1, 0},
    {"12 0a 'self::ctrl' 1a 0a 'self::agt1' 4a 00", RECORD_OK, 1, 0},
    /* truncated varints: tag, value, length */
    {HDR WS "80", RECORD_ERR_VARINT_TRUNCATED, 0, 0},
    {HDR WS "78 80 80", RECORD_ERR_VARINT_TRUNCATED, 0, 0},
    {HDR WS "20", RECORD_ERR_VARINT_TRUNCATED, 0, 0},
    {HDR WS "12", RECORD_ERR_VARINT_TRUNCATED, 0, 0},
    {HDR WS "7a ff", RECORD_ERR_VARINT_TRUNCATED, 0, 0},
    /* varints too long: value > 10 bytes or > 64 bits, tag or length > 5 bytes */
    {HDR WS "78 ff ff ff ff ff ff ff ff ff ff 00", RECORD_ERR_VARINT_OVERFLOW, 0, 0},
    {HDR WS "78 ff ff ff ff ff ff ff ff ff 02", RECORD_ERR_VARINT_OVERFLOW, 1, 0},
    {HDR WS "78 ff ff ff ff ff ff ff ff ff 01", RECORD_OK, 1, 0},
    {HDR "42 0b 08 ff ff ff ff ff ff ff ff ff 7f", RECORD_ERR_VARINT_OVERFLOW, 1, 0},
    {HDR "42 0c 08 ff ff ff ff ff ff ff ff ff ff 00", RECORD_ERR_VARINT_OVERFLOW, 0, 0},
    {HDR "42 0b 08 ff ff ff ff ff ff ff ff ff 01", RECORD_OK, 1, 0},
    {HDR WS "f8 80 80 80 80 00 00", RECORD_ERR_VARINT_OVERFLOW, 0, 0},
    {HDR WS "f8 80 80 80 0f 00", RECORD_OK, 1, 0}, /* field 2^32-1 as a 5-byte tag */
    {HDR WS "7a 80 80 80 80 80 00", RECORD_ERR_VARINT_OVERFLOW, 0, 0},
    {HDR WS "7a 80 80 80 80 00", RECORD_OK, 1, 0}, /* 5-byte length prefix */
    {TO FROM "4a 80 80 80 80 80 00", RECORD_ERR_VARINT_OVERFLOW, 0, 0},
    /* past the end: length, fixed64, fixed32 */
    {VER "12 0b 'self::ctrl'", RECORD_ERR_PAST_END, 0, 0},
    {HDR "4a 01", RECORD_ERR_PAST_END, 0, 0},
    {HDR WS "79 01 02 03 04 05 06 07", RECORD_ERR_PAST_END, 0, 0},
    {HDR WS "7d 01 02 03", RECORD_ERR_PAST_END, 0, 0},
    {HDR WS "7a 7f 00", RECORD_ERR_PAST_END, 0, 0},
    {HDR WS "7a ff ff ff ff 07", RECORD_ERR_PAST_END, 0, 0},
    /* invalid wire types */
    {HDR WS "7b", RECORD_ERR_WIRE_TYPE, 0, 0},
    {HDR WS "7c", RECORD_ERR_WIRE_TYPE, 0, 0},
    {HDR WS "7e", RECORD_ERR_WIRE_TYPE, 0, 0},
    {HDR WS "7f", RECORD_ERR_WIRE_TYPE, 0, 0},
    {"0b" HDR WS, RECORD_ERR_WIRE_TYPE, 0, 0},
    /* known field, wrong wire type: every top-level field, then the sub-messages */
    {"08 01" TO FROM WS, RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {VER "10 01" FROM WS, RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {VER TO "1d 01 02 03 04" WS, RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "22 00" WS, RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "25 00 00 00 00" WS, RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "28 01" WS, RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "31 01 02 03 04 05 06 07 08" WS, RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "38 00", RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "40 00", RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "4d 00 00 00 00", RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "50 00", RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "58 00", RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "61 00 00 00 00 00 00 00 00", RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "68 00", RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "3a 02 10 01", RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "42 02 0a 00", RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "42 02 12 00", RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "42 05 1d 00 00 00 00", RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "42 09 21 00 00 00 00 00 00 00 00", RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "42 02 2a 00", RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "42 02 32 00", RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "42 02 38 01", RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "52 02 0a 00", RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "52 02 10 01", RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "5a 02 0a 00", RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "5a 05 15 00 00 00 00", RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "62 02 08 01", RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "62 02 10 01", RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    {HDR "62 02 12 00", RECORD_ERR_FIELD_WIRE_TYPE, 0, 0},
    /* field number 0, canonical and over-long (protobuf-c only spots the former) */
    {HDR WS "00 00", RECORD_ERR_FIELD_ZERO, 0, 0},
    {HDR WS "02 00", RECORD_ERR_FIELD_ZERO, 0, 0},
    {"05 00 00 00 00" HDR WS, RECORD_ERR_FIELD_ZERO, 0, 0},
    {HDR WS "80 00 05", RECORD_ERR_FIELD_ZERO, 1, 0},
    {HDR "4a 02 00 00", RECORD_ERR_FIELD_ZERO, 0, 0},
    {HDR "4a 03 80 00 01", RECORD_ERR_FIELD_ZERO, 1, 0},
    /* to_id / from_id missing, empty, duplicated */
    {VER FROM WS, RECORD_ERR_NO_TO_ID, 1, 0},
    {VER TO WS, RECORD_ERR_NO_FROM_ID, 1, 0},
    {"", RECORD_ERR_NO_TO_ID, 1, 0},
    {VER "12 00" FROM WS, RECORD_ERR_EMPTY_TO_ID, 1, 0},
    {VER TO "1a 00" WS, RECORD_ERR_EMPTY_FROM_ID, 1, 0},
    {VER "12 00" "1a 00" WS, RECORD_ERR_EMPTY_TO_ID, 1, 0},
    {HDR TO WS, RECORD_ERR_DUP_TO_ID, 1, 0},
    {VER TO "12 00" FROM WS, RECORD_ERR_DUP_TO_ID, 1, 0},
    {VER "12 01 'a'" FROM WS TO, RECORD_ERR_DUP_TO_ID, 1, 0},
    {HDR WS FROM, RECORD_ERR_DUP_FROM_ID, 1, 0},
    {VER TO "1a 00" FROM WS, RECORD_ERR_DUP_FROM_ID, 1, 0},
    /* record_type: none, two, the same twice */
    {HDR, RECORD_ERR_NO_TYPE, 1, 0},
    {HDR "78 01", RECORD_ERR_NO_TYPE, 1, 0},
    {HDR WS WS, RECORD_ERR_MULTI_TYPE, 1, 0},
    {HDR "3a 03 12 01 70" WS, RECORD_ERR_MULTI_TYPE, 1, 0},
    {HDR "6a 00 62 00", RECORD_ERR_MULTI_TYPE, 1, 0},
    {HDR "42 00 42 02 08 01", RECORD_ERR_MULTI_TYPE, 1, 0},
    /* ID syntax and length */
    {VER "12 01 'a'" FROM WS, RECORD_ERR_TO_ID_SYNTAX, 1, 0},
    {VER "12 0a 'self::ct:l'" FROM WS, RECORD_ERR_TO_ID_SYNTAX, 1, 0},
    {VER "12 0a 'self::ct\nl'" FROM WS, RECORD_ERR_TO_ID_SYNTAX, 1, 0},
    {VER TO "1a 0a 'Self::agt1'" WS, RECORD_ERR_FROM_ID_SYNTAX, 1, 0},
    {VER TO "1a 0a 'self::ag%1'" WS, RECORD_ERR_FROM_ID_SYNTAX, 1, 0},
    {VER TO "1a 0a 'self::ag' 00 00" WS, RECORD_ERR_FROM_ID_SYNTAX, 1, 0},
    {HDR WS, RECORD_OK, 1, 10},
    {HDR WS, RECORD_ERR_ID_TOO_LONG, 1, 9},
    {VER "12 08 'self::ct'" FROM WS, RECORD_ERR_ID_TOO_LONG, 1, 9},
    {VER "12 08 'self::ct'" FROM WS, RECORD_OK, 1, 10},
    /* broken sub-message framing */
    {HDR "4a 01 08", RECORD_ERR_SUBMSG, 0, 0},
    {HDR "4a 02 08 80", RECORD_ERR_SUBMSG, 0, 0},
    {HDR "6a 01 80", RECORD_ERR_SUBMSG, 0, 0},
    {HDR "3a 03 12 05 70", RECORD_ERR_SUBMSG, 0, 0},
    {HDR "3a 02 12 80", RECORD_ERR_SUBMSG, 0, 0},
    {HDR "42 02 7d 00", RECORD_ERR_SUBMSG, 0, 0},
    {HDR "42 03 79 00 00", RECORD_ERR_SUBMSG, 0, 0},
    {HDR "62 03 15 c1 1b", RECORD_ERR_SUBMSG, 0, 0},
    {HDR "6a 01 0b", RECORD_ERR_SUBMSG, 0, 0},
    {HDR "6a 01 0c", RECORD_ERR_SUBMSG, 0, 0},
    {HDR "52 01 0e", RECORD_ERR_SUBMSG, 0, 0},
    {HDR "5a 01 0f", RECORD_ERR_SUBMSG, 0, 0},
    /* unknown fields of every wire type are skipped, in the Record and in sub-messages */
    {HDR "78 96 01 79 01 02 03 04 05 06 07 08 7a 02 ff ff 7d 01 02 03 04" WS, RECORD_OK, 1, 0},
    {HDR "3a 0c 08 01 19 00 00 00 00 00 00 00 00 0d 00 00 00 00" "00", RECORD_ERR_SUBMSG, 0, 0},
    {HDR "3a 10 08 01 19 00 00 00 00 00 00 00 00 0d 00 00 00 00", RECORD_OK, 1, 0},
    {HDR "4a 0b 08 01 12 02 'ab' 1d 01 02 03 04", RECORD_OK, 1, 0},
    {HDR "42 04 40 01 4a 00", RECORD_OK, 1, 0},
    {HDR "62 04 18 01 22 00", RECORD_OK, 1, 0},
};

START_TEST(test_error_codes)
{
    int seen[32] = {0};
    for (size_t i = 0; i < sizeof err_cases / sizeof err_cases[0]; i++) {
        const struct err_case *c = &err_cases[i];
        uint8_t buf[512];
        size_t n = hex_parse(c->hex, buf, sizeof buf);
        struct record_header h;
        int rc = scan_guarded(buf, n, c->max_id ? c->max_id : MAX_ID, &h);
        ck_assert_msg(rc == c->want, "case %zu (%s): got %s want %s", i, c->hex,
                      record_err_name(rc), record_err_name(c->want));
        UspRecord__Record *r = pbc_unpack(buf, n);
        ck_assert_msg((r != NULL) == c->pbc_ok, "case %zu (%s): protobuf-c %s", i, c->hex,
                      r ? "accepts" : "refuses");
        if (r != NULL)
            usp_record__record__free_unpacked(r, NULL);
        if (c->max_id == 0)
            scan_vs_pbc(buf, n);
        seen[-rc] = 1;
    }
    for (int e = RECORD_OK; e >= RECORD_ERR_SUBMSG; e--)
        ck_assert_msg(seen[-e], "no test case for %s", record_err_name(e));
}
END_TEST

START_TEST(test_names)
{
    for (int e = RECORD_OK; e >= RECORD_ERR_SUBMSG; e--) {
        const char *a = record_err_name(e);
        ck_assert_str_ne(a, "unknown");
        for (const char *c = a; *c; c++)
            ck_assert_msg((*c >= 'a' && *c <= 'z') || *c == '_', "%s not snake_case", a);
        for (int f = RECORD_OK; f > e; f--)
            ck_assert_str_ne(a, record_err_name(f));
    }
    ck_assert_str_eq(record_err_name(RECORD_OK), "ok");
    ck_assert_str_eq(record_err_name(RECORD_ERR_SUBMSG - 1), "unknown");
    ck_assert_str_eq(record_err_name(1), "unknown");

    static const struct {
        enum record_type t;
        const char *name;
        int connect;
    } types[] = {
        {RECORD_TYPE_NONE, "none", 0},          {RECORD_NO_SESSION, "no_session_context", 0},
        {RECORD_SESSION, "session_context", 0}, {RECORD_WS_CONNECT, "websocket_connect", 1},
        {RECORD_MQTT_CONNECT, "mqtt_connect", 1}, {RECORD_STOMP_CONNECT, "stomp_connect", 1},
        {RECORD_DISCONNECT, "disconnect", 0},   {RECORD_UDS_CONNECT, "uds_connect", 1},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        ck_assert_str_eq(record_type_name(types[i].t), types[i].name);
        ck_assert_int_eq(record_type_is_connect(types[i].t), types[i].connect);
    }
    ck_assert_str_eq(record_type_name((enum record_type)14), "unknown");
    ck_assert_int_eq(record_type_is_connect((enum record_type)14), 0);
}
END_TEST

/* ------------------------------------------------------------------ prefixes */

/* Every strict prefix of a valid Record whose record_type member comes last is refused, and
 * one that cuts a field is refused as truncated. The guard page catches over-reads. */
START_TEST(test_prefixes)
{
    for (int iter = 0; iter < 300; iter++) {
        struct rec_spec s;
        random_spec(&s, 0);
        pad_varints = iter % 2;
        /* protobuf-c order puts the oneof last; add boundaries of our own encoder */
        struct wbuf head = {0}, sub = {0};
        size_t bounds[16], nb = 0;
        bounds[nb++] = 0;
        if (s.version[0]) {
            wb_str_field(&head, 1, s.version);
            bounds[nb++] = head.len;
        }
        wb_str_field(&head, 2, s.to);
        bounds[nb++] = head.len;
        wb_str_field(&head, 3, s.from);
        bounds[nb++] = head.len;
        if (iter % 3 == 0) {
            wb_unknown_field(&head, 15);
            bounds[nb++] = head.len;
        }
        encode_sub(&s, &sub);
        wb_len_field(&head, (uint32_t)s.type, sub.p, sub.len);
        free(sub.p);

        ck_assert_int_eq(scan_vs_pbc(head.p, head.len), RECORD_OK);
        size_t b = 0;
        for (size_t n = 0; n < head.len; n++) {
            struct record_header h;
            int rc = scan_guarded(head.p, n, MAX_ID, &h);
            ck_assert_msg(rc != RECORD_OK, "prefix %zu of %zu accepted", n, head.len);
            while (b < nb && bounds[b] < n)
                b++;
            if (b == nb || bounds[b] != n)
                ck_assert_msg(rc == RECORD_ERR_VARINT_TRUNCATED || rc == RECORD_ERR_PAST_END,
                              "prefix %zu cut a field but got %s", n, record_err_name(rc));
            UspRecord__Record *r = pbc_unpack(head.p, n);
            if (r != NULL) {
                ck_assert(b < nb && bounds[b] == n);
                usp_record__record__free_unpacked(r, NULL);
            }
        }
        free(head.p);
    }
    pad_varints = 0;
}
END_TEST

/* ------------------------------------------------------------------ round trips */

static void round_trip_one(int iter, int big)
{
    struct rec_spec s;
    random_spec(&s, big);
    pad_varints = iter % 3 == 0;
    struct wbuf b = {0};
    encode_record(&s, &b);

    struct record_header h;
    int rc = scan_guarded(b.p, b.len, MAX_ID, &h);
    ck_assert_msg(rc == RECORD_OK, "iter %d: %s", iter, record_err_name(rc));
    assert_matches_spec(&h, &s);
    UspRecord__Record *r = pbc_unpack(b.p, b.len);
    ck_assert_ptr_nonnull(r);
    assert_same_as_pbc(&h, r);
    /* and the encoder wrote what the spec says */
    if (s.type == RECORD_NO_SESSION) {
        ck_assert_uint_eq(r->no_session_context->payload.len, s.payload_len);
        ck_assert(s.payload_len == 0 ||
                  memcmp(r->no_session_context->payload.data, big_payload, s.payload_len) == 0);
    } else if (s.type == RECORD_SESSION) {
        ck_assert_uint_eq(r->session_context->n_payload, s.n_payload);
        ck_assert_uint_eq(r->session_context->expected_id, s.exp);
        ck_assert_uint_eq(r->session_context->retransmit_id, s.retx);
    } else if (s.type == RECORD_DISCONNECT) {
        ck_assert_str_eq(r->disconnect->reason, s.reason);
        ck_assert_uint_eq(r->disconnect->reason_code, s.code);
    }
    ck_assert_uint_eq(r->mac_signature.len, s.mac_len);
    usp_record__record__free_unpacked(r, NULL);

    /* Same fields through record_build() (protobuf-c's canonical form). */
    struct record_fields f = {
        .version = s.version, .to_id = s.to, .from_id = s.from, .payload_security = s.psec,
        .type = s.type, .payload = big_payload, .payload_len = s.n_payload ? s.payload_len : 0,
        .session_id = s.sid, .sequence_id = s.seq, .expected_id = s.exp,
        .retransmit_id = s.retx, .payload_sar_state = s.sar, .payloadrec_sar_state = s.sarrec,
        .connect_version = s.cver, .subscribed = s.subscribed, .disconnect_reason = s.reason,
        .disconnect_code = s.code, .mac_signature = big_payload, .mac_signature_len = s.mac_len,
        .sender_cert = big_payload, .sender_cert_len = s.cert_len,
    };
    uint8_t *out;
    size_t out_len;
    ck_assert_int_eq(record_build(&f, &out, &out_len), 0);
    rc = scan_guarded(out, out_len, MAX_ID, &h);
    ck_assert_int_eq(rc, RECORD_OK);
    assert_matches_spec(&h, &s);
    ck_assert_int_eq(scan_vs_pbc(out, out_len), RECORD_OK);
    free(out);
    free(b.p);
}

START_TEST(test_round_trip)
{
    for (int iter = 0; iter < 5000; iter++)
        round_trip_one(iter, iter % 1000 == 999);
    pad_varints = 0;
}
END_TEST

START_TEST(test_round_trip_big)
{
    for (int iter = 0; iter < 8; iter++)
        round_trip_one(iter, 1);
    pad_varints = 0;
}
END_TEST

/* Where protobuf's "last wins" would apply to the header, protobuf-c accepts and the scanner
 * refuses, so relay and endpoint can never disagree on to_id, from_id or the type. */
START_TEST(test_last_wins_refused)
{
    for (int iter = 0; iter < 1000; iter++) {
        struct rec_spec s;
        random_spec(&s, 0);
        struct wbuf b = {0};
        encode_record(&s, &b);
        int kind = iter % 3;
        if (kind == 0) {
            wb_str_field(&b, 2, "self::other");
        } else if (kind == 1) {
            wb_str_field(&b, 3, "self::other");
        } else {
            uint32_t t = RECORD_NO_SESSION + (uint32_t)rnd_below(7);
            wb_len_field(&b, t, "", 0);
        }
        UspRecord__Record *r = pbc_unpack(b.p, b.len);
        ck_assert_ptr_nonnull(r);
        if (kind == 0)
            ck_assert_str_eq(r->to_id, "self::other");
        if (kind == 1)
            ck_assert_str_eq(r->from_id, "self::other");
        usp_record__record__free_unpacked(r, NULL);
        struct record_header h;
        int want = kind == 0   ? RECORD_ERR_DUP_TO_ID
                   : kind == 1 ? RECORD_ERR_DUP_FROM_ID
                               : RECORD_ERR_MULTI_TYPE;
        ck_assert_int_eq(scan_guarded(b.p, b.len, MAX_ID, &h), want);
        free(b.p);
    }
}
END_TEST

/* Random corruption of valid Records: the fuzz harness's invariants, deterministically. */
START_TEST(test_mutations)
{
    int ok = 0, refused = 0;
    for (int iter = 0; iter < 20000; iter++) {
        struct rec_spec s;
        random_spec(&s, 0);
        pad_varints = iter % 2;
        struct wbuf b = {0};
        encode_record(&s, &b);
        size_t flips = 1 + rnd_below(3);
        for (size_t k = 0; k < flips; k++) {
            size_t at = rnd_below(b.len);
            switch (rnd_below(4)) {
            case 0:
                b.p[at] = (uint8_t)rnd();
                break;
            case 1:
                b.p[at] ^= (uint8_t)(1u << rnd_below(8));
                break;
            case 2:
                b.len = at; /* truncate */
                break;
            default:
                b.p[at] = (uint8_t)(b.p[at] + 1);
                break;
            }
            if (b.len == 0)
                break;
        }
        if (scan_vs_pbc(b.p, b.len) == RECORD_OK)
            ok++;
        else
            refused++;
        free(b.p);
    }
    pad_varints = 0;
    /* both outcomes must actually have been exercised */
    ck_assert_int_gt(ok, 100);
    ck_assert_int_gt(refused, 1000);
}
END_TEST

/* The spans point into the caller's buffer (zero-copy) and the header is reset per call. */
START_TEST(test_zero_copy_and_reset)
{
    uint8_t buf[256];
    size_t n = hex_parse(HDR "52 05 08 01 12 01 74", buf, sizeof buf);
    struct record_header h;
    ck_assert_int_eq(record_scan(buf, n, MAX_ID, &h), RECORD_OK);
    ck_assert_ptr_eq(h.version.ptr, buf + 2);
    ck_assert_ptr_eq(h.to_id.ptr, buf + 7);
    ck_assert_ptr_eq(h.from_id.ptr, buf + 19);
    ck_assert_ptr_eq(h.subscribed.ptr, buf + n - 1);
    n = hex_parse(HDR WS, buf, sizeof buf);
    ck_assert_int_eq(record_scan(buf, n, MAX_ID, &h), RECORD_OK);
    ck_assert_uint_eq(h.connect_version, 0);
    ck_assert_uint_eq(h.subscribed.len, 0);
    ck_assert_ptr_null(h.subscribed.ptr);
    /* a Record without a version is accepted (protobuf-c gives "") */
    n = hex_parse(TO FROM WS, buf, sizeof buf);
    ck_assert_int_eq(record_scan(buf, n, MAX_ID, &h), RECORD_OK);
    ck_assert_uint_eq(h.version.len, 0);
    ck_assert_int_eq(record_scan(NULL, 0, MAX_ID, &h), RECORD_ERR_NO_TO_ID);
}
END_TEST

START_TEST(test_build_errors)
{
    struct record_fields f = {.to_id = "self::a", .from_id = "self::b",
                              .type = (enum record_type)5};
    uint8_t *out = (uint8_t *)&f;
    size_t len = 99;
    ck_assert_int_eq(record_build(&f, &out, &len), -1);
    ck_assert_ptr_null(out);
    ck_assert_uint_eq(len, 0);
    /* no record_type member: builds, and the scanner refuses it */
    f.type = RECORD_TYPE_NONE;
    ck_assert_int_eq(record_build(&f, &out, &len), 0);
    ck_assert_int_eq(scan_vs_pbc(out, len), RECORD_ERR_NO_TYPE);
    free(out);
    /* all-defaults encodes to nothing but the version */
    struct record_fields empty = {.version = ""};
    ck_assert_int_eq(record_build(&empty, &out, &len), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_ptr_nonnull(out);
    free(out);
}
END_TEST

static Suite *record_suite(void)
{
    Suite *s = suite_create("record");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_spec_examples);
    tcase_add_test(tc, test_error_codes);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_prefixes);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_round_trip_big);
    tcase_add_test(tc, test_last_wins_refused);
    tcase_add_test(tc, test_mutations);
    tcase_add_test(tc, test_zero_copy_and_reset);
    tcase_add_test(tc, test_build_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    guard_init();
    big_payload = malloc(BIG_PAYLOAD + 8);
    if (big_payload == NULL)
        return 1;
    for (size_t i = 0; i < BIG_PAYLOAD + 8; i++)
        big_payload[i] = (uint8_t)(i * 31 + (i >> 8));
    SRunner *sr = srunner_create(record_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    free(big_payload);
    return failed ? 1 : 0;
}
