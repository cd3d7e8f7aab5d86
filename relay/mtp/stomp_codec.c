/* stomp_codec.c — STOMP 1.2 frame codec; see stomp_codec.h for the contract.
 *
 * Scanning is done with memchr over whole lines and bodies; the only per-byte loops are
 * over short, already-bounded fields (the <= 13-byte command line, content-length and
 * heart-beat digits) and in the escaper, which only sees our own outgoing headers.
 */
#include "relay/mtp/stomp_codec.h"

#include <assert.h>
#include <limits.h>
#include <string.h>

struct cmd_entry {
    const char *name;
    size_t len;
};

static const struct cmd_entry cmd_table[] = {
    [STOMP_CMD_CONNECT] = {"CONNECT", 7},
    [STOMP_CMD_STOMP] = {"STOMP", 5},
    [STOMP_CMD_SEND] = {"SEND", 4},
    [STOMP_CMD_SUBSCRIBE] = {"SUBSCRIBE", 9},
    [STOMP_CMD_UNSUBSCRIBE] = {"UNSUBSCRIBE", 11},
    [STOMP_CMD_ACK] = {"ACK", 3},
    [STOMP_CMD_NACK] = {"NACK", 4},
    [STOMP_CMD_BEGIN] = {"BEGIN", 5},
    [STOMP_CMD_COMMIT] = {"COMMIT", 6},
    [STOMP_CMD_ABORT] = {"ABORT", 5},
    [STOMP_CMD_DISCONNECT] = {"DISCONNECT", 10},
    [STOMP_CMD_CONNECTED] = {"CONNECTED", 9},
    [STOMP_CMD_MESSAGE] = {"MESSAGE", 7},
    [STOMP_CMD_RECEIPT] = {"RECEIPT", 7},
    [STOMP_CMD_ERROR] = {"ERROR", 5},
};

#define CMD_FIRST STOMP_CMD_CONNECT
#define CMD_LAST STOMP_CMD_ERROR
/* Longest possible command line: "UNSUBSCRIBE\r\n". */
#define CMD_LINE_MAX 13

static int cmd_valid(enum stomp_cmd cmd)
{
    return (int)cmd >= CMD_FIRST && (int)cmd <= CMD_LAST;
}

/* Command line at BUF. Returns 1 with *CMD and *LINE_END (just past its LF), 0 while the
 * bytes so far are still a prefix of some "CMD" EOL, or STOMP_ERR_BAD_COMMAND as soon as
 * they are not: junk (an HTTP request, a TLS hello) is refused after a few bytes. */
static int parse_command(const uint8_t *buf, size_t len, enum stomp_cmd *cmd, size_t *line_end)
{
    size_t scan = len < CMD_LINE_MAX ? len : CMD_LINE_MAX;
    const uint8_t *lf = memchr(buf, '\n', scan);

    if (lf == NULL) {
        if (len >= CMD_LINE_MAX)
            return STOMP_ERR_BAD_COMMAND;
        /* A heart-beat CRLF cut after its CR: stomp_skip_eols leaves it for later. */
        if (len == 1 && buf[0] == '\r')
            return 0;
        for (int c = CMD_FIRST; c <= CMD_LAST; c++) {
            const struct cmd_entry *e = &cmd_table[c];
            if (len <= e->len) {
                if (memcmp(buf, e->name, len) == 0)
                    return 0;
            } else if (len == e->len + 1 && memcmp(buf, e->name, e->len) == 0 &&
                       buf[e->len] == '\r') {
                return 0;
            }
        }
        return STOMP_ERR_BAD_COMMAND;
    }
    size_t n = (size_t)(lf - buf);
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    for (int c = CMD_FIRST; c <= CMD_LAST; c++) {
        if (n == cmd_table[c].len && memcmp(buf, cmd_table[c].name, n) == 0) {
            *cmd = (enum stomp_cmd)c;
            *line_end = (size_t)(lf - buf) + 1;
            return 1;
        }
    }
    return STOMP_ERR_BAD_COMMAND;
}

/* Offset just past the LF of the first empty line ("\n\n" or "\n\r\n") whose first LF is
 * at or after START, looking only at BUF[0..END); 0 if there is none. */
static size_t find_head_end(const uint8_t *buf, size_t start, size_t end)
{
    size_t pos = start;

    while (pos < end) {
        const uint8_t *lf = memchr(buf + pos, '\n', end - pos);
        if (lf == NULL)
            return 0;
        size_t i = (size_t)(lf - buf);
        if (i + 1 >= end)
            return 0;
        if (buf[i + 1] == '\n')
            return i + 2;
        if (buf[i + 1] == '\r' && i + 2 < end && buf[i + 2] == '\n')
            return i + 3;
        pos = i + 1;
    }
    return 0;
}

/* Decimal digits only, at most LONG_MAX (so the value fits the frame's long and any
 * size arithmetic on it), then at most MAX_BODY. */
static int parse_content_length(const uint8_t *p, size_t n, size_t max_body, long *out)
{
    unsigned long v = 0;

    if (n == 0)
        return STOMP_ERR_BAD_CONTENT_LENGTH;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return STOMP_ERR_BAD_CONTENT_LENGTH;
        unsigned long d = (unsigned long)(p[i] - '0');
        if (v > ((unsigned long)LONG_MAX - d) / 10)
            return STOMP_ERR_BAD_CONTENT_LENGTH;
        v = v * 10 + d;
    }
    if (v > max_body)
        return STOMP_ERR_BODY_TOO_LARGE;
    *out = (long)v;
    return 0;
}

static int span_eq(const uint8_t *p, size_t n, const char *s, size_t slen)
{
    return n == slen && memcmp(p, s, n) == 0;
}

size_t stomp_skip_eols(const uint8_t *buf, size_t len)
{
    size_t i = 0;

    while (i < len) {
        if (buf[i] == '\n')
            i++;
        else if (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n')
            i += 2;
        else
            break;
    }
    return i;
}

int stomp_decode_head(const uint8_t *buf, size_t len, size_t last_len,
                      const struct stomp_limits *lim, struct stomp_frame *f)
{
    enum stomp_cmd cmd = STOMP_CMD_CONNECT;
    size_t cmd_end = 0;

    assert(lim != NULL && f != NULL);
    if (len == 0)
        return STOMP_NEED_MORE;
    int r = parse_command(buf, len, &cmd, &cmd_end);
    if (r < 0)
        return r;

    /* head_len is returned as an int. */
    size_t max_head = lim->max_head < (size_t)INT_MAX ? lim->max_head : (size_t)INT_MAX;
    size_t end = len < max_head ? len : max_head;
    /* A blank line ending at or after LAST_LEN starts at most 2 bytes before it. */
    size_t start = last_len > 2 ? last_len - 2 : 0;
    if (start > end)
        start = end;
    size_t head_end = r > 0 ? find_head_end(buf, start, end) : 0;
    if (head_end == 0)
        return len >= max_head ? STOMP_ERR_HEAD_TOO_LARGE : STOMP_NEED_MORE;

    size_t max_headers =
        lim->max_headers < STOMP_HEADERS_CAP ? lim->max_headers : STOMP_HEADERS_CAP;
    f->cmd = cmd;
    f->n_headers = 0;
    f->content_length = -1;
    f->body.ptr = NULL;
    f->body.len = 0;

    /* The walk stops at the first empty line, which lies within HEAD_END: the search found
     * one there, and an earlier one (a caller's wrong LAST_LEN) only ends the head sooner. */
    size_t pos = cmd_end;
    for (;;) {
        const uint8_t *lf = memchr(buf + pos, '\n', head_end - pos);
        assert(lf != NULL);
        size_t eol = (size_t)(lf - buf);
        size_t line_end = eol;
        if (line_end > pos && buf[line_end - 1] == '\r')
            line_end--;
        if (line_end == pos) {
            f->head_len = eol + 1;
            break;
        }
        const uint8_t *line = buf + pos;
        size_t n = line_end - pos;
        if (f->n_headers == max_headers)
            return STOMP_ERR_TOO_MANY_HEADERS;
        if (memchr(line, '\r', n) != NULL || memchr(line, '\0', n) != NULL)
            return STOMP_ERR_BAD_HEADER;
        const uint8_t *colon = memchr(line, ':', n);
        if (colon == NULL || colon == line)
            return STOMP_ERR_BAD_HEADER;
        struct stomp_header *h = &f->headers[f->n_headers++];
        h->name.ptr = line;
        h->name.len = (size_t)(colon - line);
        h->value.ptr = colon + 1;
        h->value.len = n - h->name.len - 1;
        if (f->content_length < 0 && span_eq(h->name.ptr, h->name.len, "content-length", 14)) {
            int e = parse_content_length(h->value.ptr, h->value.len, lim->max_body,
                                         &f->content_length);
            if (e < 0)
                return e;
        }
        pos = eol + 1;
    }
    return (int)f->head_len;
}

long stomp_decode_body(const uint8_t *buf, size_t len, size_t last_len,
                       const struct stomp_limits *lim, struct stomp_frame *f)
{
    assert(lim != NULL && f != NULL);
    size_t h = f->head_len;
    assert(h > 0 && h <= len);
    /* The result is a long; no real buffer comes near this. */
    if (len > (size_t)LONG_MAX)
        len = (size_t)LONG_MAX;
    size_t avail = len - h;
    const uint8_t *body = buf + h;

    if (f->content_length >= 0) {
        size_t cl = (size_t)f->content_length;
        if (cl > lim->max_body)
            return STOMP_ERR_BODY_TOO_LARGE;
        if (avail <= cl)
            return STOMP_NEED_MORE;
        if (body[cl] != '\0')
            return STOMP_ERR_NO_NUL;
        f->body.ptr = body;
        f->body.len = cl;
        return (long)(h + cl + 1);
    }

    /* Only the first max_body + 1 bytes can hold the terminating NUL. */
    size_t bound = lim->max_body < avail ? lim->max_body + 1 : avail;
    size_t from = last_len > h ? last_len - h : 0;
    if (from < bound) {
        const uint8_t *nul = memchr(body + from, '\0', bound - from);
        if (nul != NULL) {
            f->body.ptr = body;
            f->body.len = (size_t)(nul - body);
            return (long)(h + f->body.len + 1);
        }
    }
    return avail > lim->max_body ? STOMP_ERR_BODY_TOO_LARGE : STOMP_NEED_MORE;
}

long stomp_decode(const uint8_t *buf, size_t len, const struct stomp_limits *lim,
                  struct stomp_frame *f)
{
    int r = stomp_decode_head(buf, len, 0, lim, f);
    if (r <= 0)
        return r;
    return stomp_decode_body(buf, len, 0, lim, f);
}

const struct stomp_header *stomp_header_get(const struct stomp_frame *f, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < f->n_headers; i++) {
        const struct stomp_header *h = &f->headers[i];
        if (span_eq(h->name.ptr, h->name.len, name, n))
            return h;
    }
    return NULL;
}

/* The byte an escape letter stands for, or -1 for one STOMP 1.2 does not define. */
static int unescape_char(uint8_t c)
{
    switch (c) {
    case 'r': return '\r';
    case 'n': return '\n';
    case 'c': return ':';
    case '\\': return '\\';
    default: return -1;
    }
}

int stomp_unescape(struct stomp_span in, char *out, size_t cap, size_t *out_len)
{
    const uint8_t *p = in.ptr;
    const uint8_t *end = in.len > 0 ? p + in.len : p;
    size_t need = in.len;

    /* Validate first, so a bad escape is reported whatever the room. */
    for (const uint8_t *q = p; q < end;) {
        const uint8_t *bs = memchr(q, '\\', (size_t)(end - q));
        if (bs == NULL)
            break;
        if (bs + 1 == end || unescape_char(bs[1]) < 0)
            return STOMP_ERR_BAD_ESCAPE;
        need--;
        q = bs + 2;
    }
    *out_len = need;
    if (cap == 0)
        return STOMP_ERR_TOO_LONG;

    size_t room = cap - 1;
    size_t o = 0;
    for (const uint8_t *q = p; q < end && o < room;) {
        const uint8_t *bs = memchr(q, '\\', (size_t)(end - q));
        size_t run = (size_t)((bs != NULL ? bs : end) - q);
        size_t take = run < room - o ? run : room - o;
        memcpy(out + o, q, take);
        o += take;
        if (bs == NULL || o == room)
            break;
        out[o++] = (char)unescape_char(bs[1]);
        q = bs + 2;
    }
    out[o] = '\0';
    return need < cap ? 0 : STOMP_ERR_TOO_LONG;
}

/* Escape IN into OUT, writing whole escape units while they fit in ROOM bytes;
 * *WRITTEN = bytes written. Returns the full escaped length. */
static size_t escape_core(const char *in, size_t len, char *out, size_t room, size_t *written)
{
    size_t o = 0;
    int full = 0;

    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        char e;
        switch (c) {
        case '\r': e = 'r'; break;
        case '\n': e = 'n'; break;
        case ':': e = 'c'; break;
        case '\\': e = '\\'; break;
        default: e = 0; break;
        }
        size_t k = e ? 2 : 1;
        if (!full && o + k <= room) {
            if (e) {
                out[o] = '\\';
                out[o + 1] = e;
            } else {
                out[o] = c;
            }
            *written = o + k;
        } else {
            full = 1;
        }
        o += k;
    }
    if (!full)
        *written = o;
    return o;
}

size_t stomp_escape(const char *in, size_t len, char *out, size_t cap)
{
    size_t written = 0;
    size_t need = escape_core(in, len, out, cap > 0 ? cap - 1 : 0, &written);
    if (cap > 0)
        out[written] = '\0';
    return need;
}

/* Append IN (LEN bytes) at *POS, escaped or raw; STOMP_ERR_TOO_LONG if it does not fit. */
static int put_bytes(char *out, size_t cap, size_t *pos, const char *in, size_t len, int escape)
{
    size_t room = cap - *pos;

    if (escape) {
        size_t written = 0;
        size_t need = escape_core(in, len, out + *pos, room, &written);
        if (need > room)
            return STOMP_ERR_TOO_LONG;
        *pos += need;
        return 0;
    }
    if (len > room)
        return STOMP_ERR_TOO_LONG;
    if (len > 0)
        memcpy(out + *pos, in, len);
    *pos += len;
    return 0;
}

static int put_char(char *out, size_t cap, size_t *pos, char c)
{
    if (*pos >= cap)
        return STOMP_ERR_TOO_LONG;
    out[(*pos)++] = c;
    return 0;
}

/* Whether a header can be written: unescaped headers must not break the line structure. */
static int header_sendable(const struct stomp_kv *kv, size_t name_len, int escape)
{
    if (name_len == 0)
        return 0;
    if (kv->value_len > 0 && memchr(kv->value, '\0', kv->value_len) != NULL)
        return 0;
    if (escape)
        return 1;
    if (strpbrk(kv->name, ":\r\n") != NULL)
        return 0;
    if (kv->value_len > 0 && (memchr(kv->value, '\r', kv->value_len) != NULL ||
                              memchr(kv->value, '\n', kv->value_len) != NULL))
        return 0;
    return 1;
}

long stomp_encode_head(char *out, size_t cap, enum stomp_cmd cmd, const struct stomp_kv *hdrs,
                       size_t n, int escape)
{
    size_t pos = 0;

    if (!cmd_valid(cmd))
        return STOMP_ERR_BAD_COMMAND;
    if (cap > (size_t)LONG_MAX)
        cap = (size_t)LONG_MAX;
    const struct cmd_entry *ce = &cmd_table[cmd];
    if (put_bytes(out, cap, &pos, ce->name, ce->len, 0) < 0 || put_char(out, cap, &pos, '\n') < 0)
        return STOMP_ERR_TOO_LONG;
    for (size_t i = 0; i < n; i++) {
        const struct stomp_kv *kv = &hdrs[i];
        assert(kv->name != NULL && (kv->value != NULL || kv->value_len == 0));
        size_t name_len = strlen(kv->name);
        if (!header_sendable(kv, name_len, escape))
            return STOMP_ERR_BAD_HEADER;
        if (put_bytes(out, cap, &pos, kv->name, name_len, escape) < 0 ||
            put_char(out, cap, &pos, ':') < 0 ||
            put_bytes(out, cap, &pos, kv->value, kv->value_len, escape) < 0 ||
            put_char(out, cap, &pos, '\n') < 0)
            return STOMP_ERR_TOO_LONG;
    }
    if (put_char(out, cap, &pos, '\n') < 0)
        return STOMP_ERR_TOO_LONG;
    return (long)pos;
}

/* Decimal digits (at least one) with a value that fits uint32_t. */
static int parse_u32(const uint8_t *p, size_t n, uint32_t *out)
{
    uint64_t v = 0;
    size_t i = 0;

    if (n == 0)
        return -1;
    while (i < n && p[i] == '0')
        i++;
    /* Ten significant digits are enough for UINT32_MAX and cannot overflow uint64_t. */
    if (n - i > 10)
        return -1;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    if (v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int stomp_parse_heartbeat(struct stomp_span v, uint32_t *cx, uint32_t *cy)
{
    uint32_t x, y;

    if (v.len == 0)
        return STOMP_ERR_BAD_HEADER;
    const uint8_t *comma = memchr(v.ptr, ',', v.len);
    if (comma == NULL)
        return STOMP_ERR_BAD_HEADER;
    size_t nx = (size_t)(comma - v.ptr);
    if (parse_u32(v.ptr, nx, &x) < 0 || parse_u32(comma + 1, v.len - nx - 1, &y) < 0)
        return STOMP_ERR_BAD_HEADER;
    *cx = x;
    *cy = y;
    return 0;
}

int stomp_accepts_version(struct stomp_span v, const char *ver)
{
    size_t vlen = strlen(ver);
    const uint8_t *p = v.ptr;
    const uint8_t *end = v.len > 0 ? p + v.len : p;

    for (;;) {
        const uint8_t *comma = p < end ? memchr(p, ',', (size_t)(end - p)) : NULL;
        const uint8_t *e = comma != NULL ? comma : end;
        const uint8_t *s = p;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (span_eq(s, (size_t)(e - s), ver, vlen))
            return 1;
        if (comma == NULL)
            return 0;
        p = comma + 1;
    }
}

const char *stomp_cmd_name(enum stomp_cmd cmd)
{
    return cmd_valid(cmd) ? cmd_table[cmd].name : "UNKNOWN";
}

const char *stomp_err_name(int err)
{
    switch (err) {
    case STOMP_NEED_MORE: return "need_more";
    case STOMP_ERR_BAD_COMMAND: return "bad_command";
    case STOMP_ERR_HEAD_TOO_LARGE: return "head_too_large";
    case STOMP_ERR_TOO_MANY_HEADERS: return "too_many_headers";
    case STOMP_ERR_BAD_HEADER: return "bad_header";
    case STOMP_ERR_BAD_ESCAPE: return "bad_escape";
    case STOMP_ERR_BAD_CONTENT_LENGTH: return "bad_content_length";
    case STOMP_ERR_BODY_TOO_LARGE: return "body_too_large";
    case STOMP_ERR_NO_NUL: return "no_nul";
    case STOMP_ERR_TOO_LONG: return "too_long";
    default: return "unknown";
    }
}
