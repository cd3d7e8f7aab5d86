/* record_build.h — encode a USP Record with protobuf-c.
 *
 * Used by the tests and tools to make Records, and by the relay's optional Connect-Record
 * translation; the relay never originates Records otherwise (it forwards received bytes
 * unchanged). Unlike relay/record.h this allocates: the caller frees the result.
 */
#ifndef USPRELAY_RECORD_BUILD_H
#define USPRELAY_RECORD_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "relay/record.h"

/* What to put in the Record. Fields that do not apply to TYPE are ignored; NULL strings and
 * zero numbers are the proto3 defaults (not written on the wire). */
struct record_fields {
    const char *version;                        /* NULL -> "1.3" */
    const char *to_id, *from_id;                /* NULL -> "" */
    uint32_t payload_security;                  /* 0 PLAINTEXT, 1 TLS12 */
    enum record_type type;                      /* RECORD_TYPE_NONE: no record_type member */
    const uint8_t *payload;                     /* no_session: payload; session: one payload */
    size_t payload_len;                         /* session: 0 -> no payload element */
    uint64_t session_id, sequence_id, expected_id, retransmit_id;
    uint32_t payload_sar_state, payloadrec_sar_state;
    uint32_t connect_version;                   /* mqtt / stomp connect */
    const char *subscribed;                     /* topic / destination; NULL -> "" */
    const char *disconnect_reason;              /* NULL -> "" */
    uint32_t disconnect_code;
    const uint8_t *mac_signature;
    size_t mac_signature_len;
    const uint8_t *sender_cert;
    size_t sender_cert_len;
};

/* Encode F with protobuf-c into a malloc'd buffer stored in *OUT, length *OUT_LEN (the
 * pointer is valid to free() even if the encoding is empty). Returns 0, or -1 if TYPE is
 * not an enum record_type value or memory runs out (then *OUT is NULL). */
int record_build(const struct record_fields *f, uint8_t **out, size_t *out_len);

#endif
