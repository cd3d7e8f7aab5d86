/* endpoint_id.c — USP Endpoint ID syntax check and percent-encoding.
 *
 * eid_check() is a pure function over the bytes: one pass to find the two ':' and then
 * one pass per part. It runs on every Record the relay routes (to_id and from_id), so it
 * allocates nothing and never looks past LEN.
 */
#include "relay/endpoint_id.h"

#include <stdint.h>
#include <string.h>

enum { EID_UNKNOWN_AUTHORITY_MAX = 64, EID_SHORT_AUTHORITY_MAX = 6 };

/* How a scheme constrains its authority-id (R-ARC.2a). */
enum authority_rule {
    AUTH_OUI,      /* 6, 7 or 9 hex digits (IEEE MA-L, MA-M, MA-S) */
    AUTH_CID,      /* 6 hex digits */
    AUTH_PEN,      /* one or more decimal digits */
    AUTH_SHORT,    /* 0-6 instance-charset bytes */
    AUTH_PROTO,    /* 0-6 instance-charset bytes, no '.' */
    AUTH_EMPTY,    /* must be empty */
    AUTH_UNKNOWN,  /* scheme not in the spec: 0-64 instance-charset bytes */
};

struct scheme_rule {
    const char *name;
    size_t len;
    enum authority_rule rule;
};

#define SCHEME(n, r) {n, sizeof n - 1, r}
static const struct scheme_rule scheme_rules[] = {
    SCHEME("oui", AUTH_OUI),    SCHEME("cid", AUTH_CID),     SCHEME("pen", AUTH_PEN),
    SCHEME("self", AUTH_SHORT), SCHEME("user", AUTH_SHORT),  SCHEME("doc", AUTH_SHORT),
    SCHEME("proto", AUTH_PROTO), SCHEME("os", AUTH_EMPTY),   SCHEME("ops", AUTH_EMPTY),
    SCHEME("uuid", AUTH_EMPTY), SCHEME("imei", AUTH_EMPTY),  SCHEME("fqdn", AUTH_EMPTY),
};
#undef SCHEME

static int is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return c - 'a' + 10;
}

/* R-ARC.5 unreserved set of instance-id (also used for free-form authority-ids):
 * A-Z a-z 0-9 - . _ as a 128-bit map, because this runs on every byte of every routed ID.
 * Low word, bytes 0-63: '-' (45), '.' (46), '0'-'9' (48-57). High word, bytes 64-127:
 * 'A'-'Z' (65-90), '_' (95), 'a'-'z' (97-122). */
static const uint64_t id_char_map[2] = {
    UINT64_C(0x03FF600000000000),
    UINT64_C(0x07FFFFFE87FFFFFE),
};

static int is_id_char(unsigned char c)
{
    return c < 128 && (id_char_map[c >> 6] >> (c & 63) & 1);
}

/* Check S (LEN bytes) against the instance-id charset with %HH escapes. Returns EID_OK,
 * EID_ERR_PERCENT for a broken escape, or BAD_CHAR for any other byte (and for '.' when
 * NO_DOT is set). */
static int check_charset(const char *s, size_t len, int no_dot, int bad_char)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_id_char(c)) {
            if (c == '.' && no_dot)
                return bad_char;
            continue;
        }
        if (c != '%')
            return bad_char;
        if (len - i < 3 || !is_hex((unsigned char)s[i + 1]) || !is_hex((unsigned char)s[i + 2]))
            return EID_ERR_PERCENT;
        i += 2;
    }
    return EID_OK;
}

static int all_hex(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_hex((unsigned char)s[i]))
            return 0;
    return 1;
}

static int all_digits(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static enum authority_rule scheme_lookup(const char *s, size_t len)
{
    for (size_t i = 0; i < sizeof scheme_rules / sizeof scheme_rules[0]; i++)
        if (scheme_rules[i].len == len && memcmp(scheme_rules[i].name, s, len) == 0)
            return scheme_rules[i].rule;
    return AUTH_UNKNOWN;
}

static int check_authority(enum authority_rule rule, const char *a, size_t len)
{
    switch (rule) {
    case AUTH_OUI:
        return (len == 6 || len == 7 || len == 9) && all_hex(a, len) ? EID_OK : EID_ERR_AUTHORITY;
    case AUTH_CID:
        return len == 6 && all_hex(a, len) ? EID_OK : EID_ERR_AUTHORITY;
    case AUTH_PEN:
        return len > 0 && all_digits(a, len) ? EID_OK : EID_ERR_AUTHORITY;
    case AUTH_EMPTY:
        return len == 0 ? EID_OK : EID_ERR_AUTHORITY;
    case AUTH_SHORT:
    case AUTH_PROTO:
        if (len > EID_SHORT_AUTHORITY_MAX)
            return EID_ERR_AUTHORITY;
        return check_charset(a, len, rule == AUTH_PROTO, EID_ERR_AUTHORITY);
    case AUTH_UNKNOWN:
        if (len > EID_UNKNOWN_AUTHORITY_MAX)
            return EID_ERR_AUTHORITY;
        return check_charset(a, len, 0, EID_ERR_AUTHORITY);
    }
    return EID_ERR_AUTHORITY;
}

int eid_check(const char *id, size_t len, size_t max_len)
{
    if (len == 0)
        return EID_ERR_EMPTY;
    if (len > max_len)
        return EID_ERR_TOO_LONG;

    const char *c1 = memchr(id, ':', len);
    if (c1 == NULL)
        return EID_ERR_SHAPE;
    size_t scheme_len = (size_t)(c1 - id);
    const char *rest = c1 + 1;
    size_t rest_len = len - scheme_len - 1;
    const char *c2 = memchr(rest, ':', rest_len);
    if (c2 == NULL)
        return EID_ERR_SHAPE;
    size_t auth_len = (size_t)(c2 - rest);
    const char *inst = c2 + 1;
    size_t inst_len = rest_len - auth_len - 1;
    if (memchr(inst, ':', inst_len) != NULL)
        return EID_ERR_SHAPE;

    if (scheme_len == 0)
        return EID_ERR_SCHEME;
    for (size_t i = 0; i < scheme_len; i++) {
        char ch = id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
            return EID_ERR_SCHEME;
    }

    int rc = check_authority(scheme_lookup(id, scheme_len), rest, auth_len);
    if (rc != EID_OK)
        return rc;

    if (inst_len == 0)
        return EID_ERR_INSTANCE;
    return check_charset(inst, inst_len, 0, EID_ERR_INSTANCE);
}

const char *eid_err_name(int err)
{
    switch (err) {
    case EID_OK:
        return "ok";
    case EID_ERR_EMPTY:
        return "empty";
    case EID_ERR_TOO_LONG:
        return "too_long";
    case EID_ERR_SHAPE:
        return "shape";
    case EID_ERR_SCHEME:
        return "scheme";
    case EID_ERR_AUTHORITY:
        return "authority";
    case EID_ERR_INSTANCE:
        return "instance";
    case EID_ERR_PERCENT:
        return "percent";
    default:
        return "unknown";
    }
}

static int is_pct_unreserved(unsigned char c)
{
    return is_id_char(c) || c == '~';
}

size_t eid_pct_encode(const char *id, size_t len, char *dst, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;

    /* Output is exactly a prefix of the full encoding, like snprintf: a caller that
     * sees a return >= CAP knows it was cut. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        char enc[3];
        size_t k;
        if (is_pct_unreserved(c)) {
            enc[0] = (char)c;
            k = 1;
        } else {
            enc[0] = '%';
            enc[1] = hex[c >> 4];
            enc[2] = hex[c & 0x0f];
            k = 3;
        }
        for (size_t j = 0; j < k; j++, n++)
            if (cap > 0 && n < cap - 1)
                dst[n] = enc[j];
    }
    if (cap > 0)
        dst[n < cap - 1 ? n : cap - 1] = '\0';
    return n;
}

long eid_pct_decode(const char *src, size_t len, char *dst, size_t cap)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '%') {
            if (len - i < 3 || !is_hex((unsigned char)src[i + 1]) ||
                !is_hex((unsigned char)src[i + 2]))
                return -1;
            c = (unsigned char)(hex_value((unsigned char)src[i + 1]) << 4 |
                                hex_value((unsigned char)src[i + 2]));
            i += 2;
        }
        /* Keep one byte for the NUL. */
        if (n + 1 >= cap)
            return -1;
        dst[n++] = (char)c;
    }
    if (cap == 0)
        return -1;
    dst[n] = '\0';
    return (long)n;
}
