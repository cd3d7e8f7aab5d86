/* ws_codec.c — WebSocket handshake header values; see ws_codec.h for the contract.
 *
 * Both lists are walked once, left to right, by index against LEN: HDR is a header value
 * handed over by libwebsockets and is not NUL-terminated. A whole list is validated even
 * after the answer is known, so the result never depends on where junk sits in it.
 *
 * Choices beyond the RFC grammar, each because of what real peers send:
 *  - Empty list elements (", ,v1.usp") are skipped in both lists (RFC 7230 §7 asks
 *    recipients to accept them); an empty header is "none" / "not offered", not malformed.
 *  - Extension and parameter names are compared case-insensitively (RFC 6455 leaves it
 *    open; HTTP tokens in lists such as Connection are case-insensitive, and a client
 *    writing "BBF-USP-Protocol" plainly means the extension). Subprotocols stay exact.
 *  - An unquoted parameter value may hold any visible ASCII byte except ',', ';' and '"'
 *    instead of only tchars: USP EIDs contain ':' ("proto::x") and clients send them bare.
 *  - RFC 6455 §9.1 wants a quoted value to be a token once unescaped; EIDs are not
 *    tokens, so any qdtext / quoted-pair byte is kept (HTAB, SP, obs-text included).
 *  - Of a repeated bbf-usp-protocol only the first counts, and in it only the first "eid"
 *    parameter; a valueless "eid" there means "offered without an EID".
 */
#include "relay/mtp/ws_codec.h"

#include <assert.h>
#include <limits.h>
#include <string.h>

#define BBF_EXT_NAME "bbf-usp-protocol"
#define BBF_FORMAT_HEAD BBF_EXT_NAME "; eid=\""

/* RFC 7230 §3.2.6 tchar: ALPHA / DIGIT / "!#$%&'*+-.^_`|~". */
static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_ows(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* qdtext and the escaped byte of a quoted-pair (RFC 7230 §3.2.6), '"' and '\' aside:
 * HTAB, SP, VCHAR, obs-text — every byte but the other controls and DEL. */
static int is_qbyte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* The lenient bare value (see the top of the file). */
static int is_bare_value(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != ',' && c != ';' && c != '"';
}

static size_t skip_ows(const unsigned char *p, size_t i, size_t len)
{
    while (i < len && is_ows(p[i]))
        i++;
    return i;
}

static size_t skip_token(const unsigned char *p, size_t i, size_t len)
{
    while (i < len && is_tchar(p[i]))
        i++;
    return i;
}

static unsigned char ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* Whether P[0..N) equals the lower-case literal LIT, ASCII case ignored. */
static int span_ieq(const unsigned char *p, size_t n, const char *lit)
{
    size_t m = strlen(lit);

    if (n != m)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (ascii_lower(p[i]) != (unsigned char)lit[i])
            return 0;
    }
    return 1;
}

/* Index of the first of the N NAMES equal to TOK[0..N_TOK), or -1. */
static int name_index(const char *tok, size_t n_tok, const char *const *names, size_t n)
{
    for (size_t k = 0; k < n && k < (size_t)INT_MAX; k++) {
        assert(names[k] != NULL);
        if (strlen(names[k]) == n_tok && memcmp(names[k], tok, n_tok) == 0)
            return (int)k;
    }
    return -1;
}

int ws_protocol_pick(const char *hdr, size_t len, const char *const *names, size_t n)
{
    const unsigned char *p = (const unsigned char *)hdr;
    size_t i = 0;
    int found = -1;

    assert(names != NULL || n == 0);
    for (;;) {
        i = skip_ows(p, i, len);
        size_t start = i;
        i = skip_token(p, i, len);
        if (i > start && found < 0)
            found = name_index(hdr + start, i - start, names, n);
        i = skip_ows(p, i, len);
        if (i == len)
            return found;
        /* Anything but the next comma is a non-tchar or two tokens without one. */
        if (p[i] != ',')
            return -1;
        i++;
    }
}

/* Where an EID value goes while it is parsed; NULL for values that are only checked. */
struct eid_sink {
    char *buf;
    size_t cap;
    size_t len;
};

static int sink_put(struct eid_sink *s, unsigned char c)
{
    if (s == NULL)
        return 0;
    if (s->len + 1 >= s->cap)
        return -1; /* no room left for this byte and the NUL */
    s->buf[s->len++] = (char)c;
    return 0;
}

/* Parameter value (token-ish or quoted-string) at P[*I]; advances *I past it. */
static int parse_value(const unsigned char *p, size_t len, size_t *pos, struct eid_sink *s)
{
    size_t i = *pos;

    if (i < len && p[i] == '"') {
        for (i++;; i++) {
            if (i == len)
                return -1; /* unterminated */
            unsigned char c = p[i];
            if (c == '"')
                break;
            if (c == '\\') {
                if (++i == len)
                    return -1;
                c = p[i];
            }
            if (!is_qbyte(c) || sink_put(s, c) < 0)
                return -1;
        }
        *pos = i + 1;
        return 0;
    }
    size_t start = i;
    for (; i < len && is_bare_value(p[i]); i++) {
        if (sink_put(s, p[i]) < 0)
            return -1;
    }
    if (i == start)
        return -1;
    *pos = i;
    return 0;
}

/* The walk behind ws_ext_bbf_eid; S receives the EID, *HAS_EID says whether one came. */
static int ext_scan(const unsigned char *p, size_t len, struct eid_sink *s, int *has_eid)
{
    size_t i = 0;
    int offered = 0;

    for (;;) {
        i = skip_ows(p, i, len);
        if (i == len)
            return offered;
        if (p[i] == ',') {
            i++;
            continue;
        }
        size_t start = i;
        i = skip_token(p, i, len);
        if (i == start)
            return -1;
        int ours = !offered && span_ieq(p + start, i - start, BBF_EXT_NAME);
        int eid_seen = 0;
        if (ours)
            offered = 1;
        i = skip_ows(p, i, len);
        while (i < len && p[i] == ';') {
            i = skip_ows(p, i + 1, len);
            size_t ns = i;
            i = skip_token(p, i, len);
            if (i == ns)
                return -1;
            int want = ours && !eid_seen && span_ieq(p + ns, i - ns, "eid");
            if (want)
                eid_seen = 1;
            i = skip_ows(p, i, len);
            if (i < len && p[i] == '=') {
                i = skip_ows(p, i + 1, len);
                if (parse_value(p, len, &i, want ? s : NULL) < 0)
                    return -1;
                if (want) {
                    if (s->len >= s->cap)
                        return -1; /* an empty value, and no room even for the NUL */
                    *has_eid = 1;
                }
                i = skip_ows(p, i, len);
            }
        }
        if (i < len) {
            if (p[i] != ',')
                return -1;
            i++;
        }
    }
}

int ws_ext_bbf_eid(const char *hdr, size_t len, char *eid, size_t cap, size_t *eid_len,
                   int *has_eid)
{
    struct eid_sink s = {eid, cap, 0};
    int has = 0;

    assert(eid != NULL || cap == 0);
    assert(eid_len != NULL && has_eid != NULL);
    int r = ext_scan((const unsigned char *)hdr, len, &s, &has);
    /* No value kept on failure, so a caller cannot act on half of one. */
    if (r < 0)
        has = 0;
    if (has)
        eid[s.len] = '\0';
    else if (cap > 0)
        eid[0] = '\0';
    *eid_len = has ? s.len : 0;
    *has_eid = has;
    return r;
}

long ws_ext_bbf_format(const char *eid, size_t len, char *dst, size_t cap)
{
    const unsigned char *e = (const unsigned char *)eid;
    size_t head = sizeof BBF_FORMAT_HEAD - 1;
    size_t need = head + 1; /* the closing quote */

    assert(eid != NULL || len == 0);
    assert(dst != NULL || cap == 0);
    /* Sized and checked before writing, so a refused EID leaves DST an empty string. */
    for (size_t i = 0; i < len; i++) {
        if (e[i] < 0x20 || e[i] == 0x7f)
            goto refuse;
        need += (e[i] == '"' || e[i] == '\\') ? 2 : 1;
        if (need >= cap || need > (size_t)LONG_MAX)
            goto refuse;
    }
    if (need >= cap || need > (size_t)LONG_MAX)
        goto refuse;

    memcpy(dst, BBF_FORMAT_HEAD, head);
    size_t o = head;
    for (size_t i = 0; i < len; i++) {
        if (e[i] == '"' || e[i] == '\\')
            dst[o++] = '\\';
        dst[o++] = (char)e[i];
    }
    dst[o++] = '"';
    assert(o == need);
    dst[o] = '\0';
    return (long)o;

refuse:
    if (cap > 0)
        dst[0] = '\0';
    return -1;
}
