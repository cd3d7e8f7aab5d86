/* ws_codec.h — the WebSocket handshake header values USP cares about (TR-369 R-WS.9–12).
 *
 * libwebsockets parses HTTP and frames; what it leaves to us are two header values:
 * the Sec-WebSocket-Protocol list (which subprotocol the session speaks) and the
 * Sec-WebSocket-Extensions list (the deprecated bbf-usp-protocol extension carrying an
 * endpoint ID). Pure functions of bytes: no allocation, no I/O.
 */
#ifndef USPRELAY_WS_CODEC_H
#define USPRELAY_WS_CODEC_H

#include <stddef.h>

/* Index into NAMES of the first token of the Sec-WebSocket-Protocol list HDR (LEN
 * bytes, comma-separated, optional whitespace around tokens) that equals one of the N
 * NAMES exactly (case-sensitive, RFC 6455 §4.1). -1 if none, or if the list is
 * malformed (an empty token between commas is skipped, not an error). */
int ws_protocol_pick(const char *hdr, size_t len, const char *const *names, size_t n);

/* Look for the "bbf-usp-protocol" extension in the Sec-WebSocket-Extensions list HDR
 * (RFC 6455 §9.1: extensions separated by ',', parameters by ';', a parameter value a
 * quoted-string with backslash escapes or a bare value — any visible byte but ',', ';'
 * and '"', looser than a token because clients send endpoint IDs, which hold ':',
 * unquoted). Extension and parameter names ignore case. Returns 1 when offered, 0 when
 * not, -1 when HDR is malformed. When offered with an "eid" parameter, its unquoted,
 * unescaped value is copied to EID (CAP bytes, NUL-terminated), its length stored in
 * *EID_LEN and *HAS_EID set to 1; a value that does not fit is -1 (malformed). */
int ws_ext_bbf_eid(const char *hdr, size_t len, char *eid, size_t cap, size_t *eid_len,
                   int *has_eid);

/* Write `bbf-usp-protocol; eid="<EID>"` (the header value, '"' and '\' escaped) to DST
 * (CAP bytes, NUL-terminated). Returns its length, or -1 if it does not fit or EID
 * holds a byte a quoted-string cannot carry (control characters, DEL). */
long ws_ext_bbf_format(const char *eid, size_t len, char *dst, size_t cap);

#endif
