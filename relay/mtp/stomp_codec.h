/* stomp_codec.h — STOMP 1.2 frame codec: a pure function of bytes.
 *
 * Decoding is zero-copy and stateless in the picohttpparser shape: the caller owns the
 * buffer and the struct stomp_frame, every output is a span into the buffer, and a return
 * of STOMP_NEED_MORE means "call again with more bytes". LAST_LEN lets a resumed call skip
 * what it already scanned, so a peer dripping one byte at a time costs O(n), not O(n^2).
 * No I/O, no globals, no allocation. Header bytes are returned still escaped; the caller
 * unescapes only the headers it uses (CONNECT/CONNECTED are never escaped in STOMP 1.2,
 * so the choice is the caller's).
 *
 * Decoding is prefix-consistent: for any input, a prefix returns STOMP_NEED_MORE, or the
 * same result as the whole input. Errors are reported as soon as the bytes seen prove
 * them (a bad command after its first wrong byte, an oversized head as soon as it cannot
 * fit in max_head), so garbage and floods are cut off early.
 *
 * Stricter than the 1.2 grammar in one point: a raw NUL in the command or a header line
 * is rejected (STOMP_ERR_BAD_HEADER), so a head can never be read differently by a peer
 * that ends frames at the first NUL. Header values may contain raw ':' (USP endpoint IDs
 * in CONNECT/STOMP); a line is split at its first ':'.
 */
#ifndef USPRELAY_STOMP_CODEC_H
#define USPRELAY_STOMP_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define STOMP_NEED_MORE 0

enum stomp_err {
    STOMP_ERR_BAD_COMMAND = -1,        /* not a STOMP 1.2 command (exact, upper case) */
    STOMP_ERR_HEAD_TOO_LARGE = -2,     /* command + headers + blank line > max_head */
    STOMP_ERR_TOO_MANY_HEADERS = -3,   /* more than max_headers (or STOMP_HEADERS_CAP) */
    STOMP_ERR_BAD_HEADER = -4,         /* no ':', empty name, raw CR or NUL in a line */
    STOMP_ERR_BAD_ESCAPE = -5,         /* '\' not followed by r, n, c or '\' */
    STOMP_ERR_BAD_CONTENT_LENGTH = -6, /* not all decimal digits, or beyond LONG_MAX */
    STOMP_ERR_BODY_TOO_LARGE = -7,     /* content-length or NUL-terminated body > max_body */
    STOMP_ERR_NO_NUL = -8,             /* byte after a content-length body is not NUL */
    STOMP_ERR_TOO_LONG = -9,           /* output buffer too small */
};

enum stomp_cmd {
    STOMP_CMD_CONNECT = 1,
    STOMP_CMD_STOMP,
    STOMP_CMD_SEND,
    STOMP_CMD_SUBSCRIBE,
    STOMP_CMD_UNSUBSCRIBE,
    STOMP_CMD_ACK,
    STOMP_CMD_NACK,
    STOMP_CMD_BEGIN,
    STOMP_CMD_COMMIT,
    STOMP_CMD_ABORT,
    STOMP_CMD_DISCONNECT,
    STOMP_CMD_CONNECTED,
    STOMP_CMD_MESSAGE,
    STOMP_CMD_RECEIPT,
    STOMP_CMD_ERROR,
};

#define STOMP_HEADERS_CAP 64

struct stomp_span {
    const uint8_t *ptr;
    size_t len;
};

/* Raw bytes, still escaped; the EOL (LF or CRLF) is not part of the value. */
struct stomp_header {
    struct stomp_span name, value;
};

struct stomp_limits {
    size_t max_head;    /* command line through the blank line, inclusive */
    size_t max_headers; /* capped at STOMP_HEADERS_CAP */
    size_t max_body;    /* body bytes, excluding the terminating NUL */
};

struct stomp_frame {
    enum stomp_cmd cmd;
    size_t head_len; /* command line through the blank line, inclusive */
    struct stomp_header headers[STOMP_HEADERS_CAP];
    size_t n_headers;
    long content_length;    /* -1 when absent; first occurrence wins */
    struct stomp_span body; /* set by stomp_decode / stomp_decode_body only */
};

/* Number of leading heart-beat EOL bytes ("\n" or "\r\n") at BUF; a lone trailing "\r" is
 * not counted (it may be the start of "\r\n": the decoders return STOMP_NEED_MORE for a
 * buffer that is just "\r"), nor is a "\r" followed by anything else (the decoders then
 * reject it as a bad command). */
size_t stomp_skip_eols(const uint8_t *buf, size_t len);

/* Parse command + headers starting at BUF (the caller skipped EOLs). LAST_LEN = bytes of
 * BUF examined by an earlier call on the same buffer that returned STOMP_NEED_MORE (0 the
 * first time): the search for the blank line resumes there instead of rescanning.
 * Returns head_len (> 0), STOMP_NEED_MORE, or a stomp_err. Checks: known command (exact,
 * upper case), EOL = LF or CRLF, every header line "name:value" with a non-empty name,
 * no raw CR or NUL inside a line, head_len <= max_head (an error as soon as LEN >= max_head
 * without a complete head, since the head can then no longer fit), n_headers <=
 * max_headers, content-length (first occurrence) all decimal digits, <= LONG_MAX
 * (else BAD_CONTENT_LENGTH) and <= max_body (else BODY_TOO_LARGE). Does not unescape.
 * F is filled on success (body = {NULL, 0}); its contents are unspecified otherwise. */
int stomp_decode_head(const uint8_t *buf, size_t len, size_t last_len,
                      const struct stomp_limits *lim, struct stomp_frame *f);

/* Body and NUL of a frame whose head F was decoded from the same BUF by a successful
 * stomp_decode_head. LAST_LEN = LEN of an earlier call that returned STOMP_NEED_MORE
 * (0 the first time), so the NUL search of a body without content-length resumes there.
 * Same results as stomp_decode. */
long stomp_decode_body(const uint8_t *buf, size_t len, size_t last_len,
                       const struct stomp_limits *lim, struct stomp_frame *f);

/* Whole frame: head, body, NUL. With content-length: exactly that many body bytes (NULs
 * allowed), then a NUL (else STOMP_ERR_NO_NUL). Without: the body runs to the first NUL,
 * bounded by max_body. Returns the bytes consumed including the NUL (trailing EOLs are
 * left for stomp_skip_eols), STOMP_NEED_MORE, or a stomp_err. */
long stomp_decode(const uint8_t *buf, size_t len, const struct stomp_limits *lim,
                  struct stomp_frame *f);

/* First header named NAME (exact, case-sensitive, compared raw), or NULL. */
const struct stomp_header *stomp_header_get(const struct stomp_frame *f, const char *name);

/* STOMP 1.2 unescape (\r \n \c \\ ; any other escape or a trailing '\' is
 * STOMP_ERR_BAD_ESCAPE, checked over the whole input first) into OUT (CAP bytes including
 * the NUL terminator). Returns 0 with *OUT_LEN = decoded length, or STOMP_ERR_BAD_ESCAPE,
 * or STOMP_ERR_TOO_LONG with *OUT_LEN = the length that was needed (OUT then holds a
 * NUL-terminated prefix when CAP > 0). */
int stomp_unescape(struct stomp_span in, char *out, size_t cap, size_t *out_len);

/* Escape CR LF ':' '\' of IN (LEN bytes). snprintf-like: writes at most CAP bytes
 * including a NUL terminator (when CAP > 0) and returns the full escaped length
 * (excluding the NUL); the output is complete iff the result < CAP. */
size_t stomp_escape(const char *in, size_t len, char *out, size_t cap);

struct stomp_kv {
    const char *name;  /* NUL-terminated */
    const char *value; /* VALUE_LEN bytes; may be NULL when VALUE_LEN is 0 */
    size_t value_len;
};

/* Write "CMD\n" + "name:value\n"... + "\n" into OUT (no NUL terminator is written). ESCAPE
 * != 0 escapes names and values (every frame but CONNECT/CONNECTED). Returns the bytes
 * written, STOMP_ERR_TOO_LONG if they do not fit in CAP, STOMP_ERR_BAD_COMMAND for an
 * unknown CMD, or STOMP_ERR_BAD_HEADER for a header that cannot be sent as is: an empty
 * name, a NUL in a value, or, unescaped, CR/LF anywhere or ':' in a name. The caller
 * appends the body and the NUL. */
long stomp_encode_head(char *out, size_t cap, enum stomp_cmd cmd, const struct stomp_kv *hdrs,
                       size_t n, int escape);

/* Parse a heart-beat value "cx,cy" (decimal milliseconds, each fitting uint32_t, nothing
 * else: no spaces, signs or empty fields). Returns 0, or STOMP_ERR_BAD_HEADER leaving
 * *CX and *CY untouched. */
int stomp_parse_heartbeat(struct stomp_span v, uint32_t *cx, uint32_t *cy);

/* 1 if the comma-separated accept-version list V contains exactly VER (spaces and tabs
 * around an element are ignored), else 0. */
int stomp_accepts_version(struct stomp_span v, const char *ver);

/* "CONNECT", "SEND", ...; "UNKNOWN" for anything else. */
const char *stomp_cmd_name(enum stomp_cmd cmd);

/* Short snake_case name of a stomp_err ("need_more" for 0, "unknown" otherwise). */
const char *stomp_err_name(int err);

#endif
