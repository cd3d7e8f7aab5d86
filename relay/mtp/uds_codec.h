/* uds_codec.h — framing of the USP UNIX-domain-socket MTP (TR-369 R-UDS.6–15).
 *
 * A frame is the sync bytes "_USP" (5F 55 53 50), a u32 big-endian length of everything
 * after this 8-byte header, then one or more TLVs: u8 type, u32 big-endian length, value.
 * Pure functions of bytes: no I/O, no allocation, no state. Decoded values are spans into
 * the caller's buffer. uds_frame_size() needs only the 8 header bytes, so a reader can
 * size its buffer before the body arrives; uds_encode_single_header() lets a sender put
 * a header in front of a Record buffer it already holds, without copying the Record.
 */
#ifndef USPRELAY_UDS_CODEC_H
#define USPRELAY_UDS_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define UDS_HEADER_LEN 8        /* sync + body length */
#define UDS_TLV_HEADER_LEN 5    /* type + value length */
#define UDS_SINGLE_HEADER_LEN (UDS_HEADER_LEN + UDS_TLV_HEADER_LEN) /* = 13 */
#define UDS_MAX_VALUE_LEN (UINT32_MAX - UDS_TLV_HEADER_LEN) /* one-TLV frame limit */
#define UDS_NEED_MORE 0

/* TLV types defined by TR-369 (R-UDS.12–14). Any other value is legal on the wire and is
 * reported by uds_tlv_next(); receivers ignore it (R-UDS.15). */
enum uds_tlv_type { UDS_TLV_HANDSHAKE = 1, UDS_TLV_ERROR = 2, UDS_TLV_RECORD = 3 };

enum uds_err {
    UDS_ERR_BAD_SYNC = -1,      /* the first 4 bytes are not "_USP" */
    UDS_ERR_TOO_LARGE = -2,     /* body length above the caller's limit, or above what a
                                   u32 frame length can express */
    UDS_ERR_EMPTY_FRAME = -3,   /* body shorter than one TLV header */
    UDS_ERR_TLV_OVERRUN = -4,   /* a TLV header or value runs past the frame end */
    UDS_ERR_TOO_SMALL_BUF = -5, /* encoder output buffer too small */
};

/* One TLV; VALUE points into the body passed to uds_tlv_next() (NULL never, even when
 * LEN is 0: it then points at the end of the TLV header). */
struct uds_tlv {
    uint8_t type;
    const uint8_t *value;
    uint32_t len;
};

/* Look at the start of a frame in BUF (LEN bytes available, any number).
 * Returns the total frame size (header + body, > 0) once the 8-byte header is present and
 * valid; UDS_NEED_MORE before that; UDS_ERR_BAD_SYNC as soon as any byte present
 * contradicts "_USP" (even with fewer than 4 bytes); UDS_ERR_EMPTY_FRAME when the body
 * length is below UDS_TLV_HEADER_LEN; UDS_ERR_TOO_LARGE when it exceeds MAX_BODY.
 * Only the first 8 bytes are read. */
long uds_frame_size(const uint8_t *buf, size_t len, uint32_t max_body);

/* Iterate the TLVs of a frame BODY (the BODY_LEN bytes after the 8-byte header). *OFF
 * starts at 0 and must only be advanced by this function. Returns 1 with *TLV filled and
 * *OFF past that TLV; 0 when *OFF is exactly at the end; UDS_ERR_TLV_OVERRUN when the
 * remaining bytes are a truncated TLV header or the value runs past BODY_LEN (then *OFF
 * and *TLV are left unchanged). */
int uds_tlv_next(const uint8_t *body, size_t body_len, size_t *off, struct uds_tlv *tlv);

/* Check a whole body: at least one TLV, every TLV well formed, nothing left over.
 * Returns the TLV count (>= 1), UDS_ERR_EMPTY_FRAME when BODY_LEN < UDS_TLV_HEADER_LEN,
 * UDS_ERR_TOO_LARGE when BODY_LEN > UINT32_MAX (no frame can hold it, nothing is read),
 * or UDS_ERR_TLV_OVERRUN. */
int uds_body_check(const uint8_t *body, size_t body_len);

/* Write the 13-byte header of a frame holding exactly one TLV of TYPE whose value is
 * VALUE_LEN bytes; the caller sends the value right after it. The caller guarantees
 * VALUE_LEN <= UDS_MAX_VALUE_LEN (asserted). Returns UDS_SINGLE_HEADER_LEN. */
size_t uds_encode_single_header(uint8_t out[UDS_SINGLE_HEADER_LEN], uint8_t type,
                                uint32_t value_len);

/* Encode a complete one-TLV frame into OUT (CAP bytes). VALUE may be NULL when VALUE_LEN
 * is 0, and may overlap OUT (e.g. a value already placed at OUT + 13). Returns the frame
 * size (UDS_SINGLE_HEADER_LEN + VALUE_LEN), UDS_ERR_TOO_LARGE when VALUE_LEN >
 * UDS_MAX_VALUE_LEN (the frame length would not fit in u32), or UDS_ERR_TOO_SMALL_BUF;
 * on error OUT is untouched. */
long uds_encode(uint8_t *out, size_t cap, uint8_t type, const void *value, uint32_t value_len);

/* Short snake_case name of an enum uds_err, for logs and counters; "none" for 0,
 * "unknown" for anything else. */
const char *uds_err_name(int err);

#endif
