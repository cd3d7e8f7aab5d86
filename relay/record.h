/* record.h — zero-copy scanner for the header of a USP Record (TR-369 usp_record.Record).
 *
 * The relay routes on to_id, checks from_id and looks at which record_type member is set;
 * it never re-encodes a Record (field 5 may MAC or sign the header). record_scan() reads
 * exactly those fields in one pass over the protobuf wire format, walks the record_type
 * sub-message once to validate it, and returns spans into the caller's buffer. No
 * allocation, no state, no globals: a pure function of the bytes.
 *
 * It is deliberately at least as strict as protobuf-c's unpack: any Record protobuf-c
 * refuses, record_scan() refuses too, so the relay never forwards bytes an endpoint cannot
 * parse. On top of that it refuses Records where protobuf's "last value wins" rule would
 * let the relay and the endpoint disagree (duplicate to_id/from_id, more than one
 * record_type member), Records without a usable to_id/from_id, IDs that are not Endpoint
 * IDs (relay/endpoint_id.h), varints that overflow 64 bits and field number 0.
 */
#ifndef USPRELAY_RECORD_H
#define USPRELAY_RECORD_H

#include <stddef.h>
#include <stdint.h>

/* Bytes inside a caller's buffer; not NUL-terminated. */
struct span {
    const uint8_t *ptr;
    size_t len;
};

/* Which member of the record_type oneof is set; the values are the field numbers. */
enum record_type {
    RECORD_TYPE_NONE = 0,
    RECORD_NO_SESSION = 7,
    RECORD_SESSION = 8,
    RECORD_WS_CONNECT = 9,
    RECORD_MQTT_CONNECT = 10,
    RECORD_STOMP_CONNECT = 11,
    RECORD_DISCONNECT = 12,
    RECORD_UDS_CONNECT = 13,
};

struct record_header {
    struct span version, to_id, from_id;
    uint32_t payload_security;              /* raw enum value, 0 = PLAINTEXT, 1 = TLS12 */
    enum record_type type;
    int has_mac_signature, has_sender_cert; /* present and non-empty */
    /* session_context only (0 otherwise): */
    uint64_t session_id, sequence_id;
    uint32_t payload_sar_state, payloadrec_sar_state;
    /* mqtt_connect / stomp_connect only (0 / empty otherwise): */
    uint32_t connect_version;
    struct span subscribed;                 /* subscribed_topic / subscribed_destination */
};

/* Every reason record_scan() refuses a Record. Each has its own code so that the relay can
 * count and log them separately (record_err_name()). */
enum record_err {
    RECORD_OK = 0,
    RECORD_ERR_VARINT_TRUNCATED = -1,  /* buffer ends inside a varint (tag, value or length) */
    RECORD_ERR_VARINT_OVERFLOW = -2,   /* varint > 10 bytes or > 64 bits; tag or length > 5 bytes */
    RECORD_ERR_PAST_END = -3,          /* length-delimited or fixed-size field runs past the end */
    RECORD_ERR_WIRE_TYPE = -4,         /* wire type 3, 4, 6 or 7 */
    RECORD_ERR_FIELD_WIRE_TYPE = -5,   /* known field (Record or sub-message) with the wrong wire type */
    RECORD_ERR_FIELD_ZERO = -6,        /* field number 0 */
    RECORD_ERR_NO_TO_ID = -7,
    RECORD_ERR_NO_FROM_ID = -8,
    RECORD_ERR_EMPTY_TO_ID = -9,
    RECORD_ERR_EMPTY_FROM_ID = -10,
    RECORD_ERR_DUP_TO_ID = -11,
    RECORD_ERR_DUP_FROM_ID = -12,
    RECORD_ERR_NO_TYPE = -13,          /* no record_type member */
    RECORD_ERR_MULTI_TYPE = -14,       /* more than one record_type member, or one twice */
    RECORD_ERR_TO_ID_SYNTAX = -15,     /* eid_check() refuses to_id */
    RECORD_ERR_FROM_ID_SYNTAX = -16,   /* eid_check() refuses from_id */
    RECORD_ERR_ID_TOO_LONG = -17,      /* to_id or from_id longer than max_id_len */
    RECORD_ERR_SUBMSG = -18,           /* record_type member's bytes do not frame as a message */
};

/* Scan the Record in BUF (LEN bytes). IDs longer than MAX_ID_LEN are refused. On success
 * fills HDR (spans point into BUF) and returns RECORD_OK; otherwise returns a negative enum
 * record_err and HDR's contents are unspecified.
 *
 * Inside the record_type sub-message, truncation, overrun and invalid wire types report
 * RECORD_ERR_SUBMSG; a wrong wire type for a known sub-message field, field number 0 and
 * varint overflow report their own codes wherever they occur. When several problems exist
 * the first one met in the byte stream wins, then the checks after the scan in this order:
 * to_id (missing, empty), from_id (missing, empty), record_type, to_id syntax, from_id
 * syntax. */
int record_scan(const uint8_t *buf, size_t len, size_t max_id_len, struct record_header *hdr);

/* Short snake_case name of a record_err ("ok" for RECORD_OK), for counters and logs. */
const char *record_err_name(int err);

/* True for the Connect Records: websocket_connect, mqtt_connect, stomp_connect, uds_connect. */
int record_type_is_connect(enum record_type t);

/* Short snake_case name of a record type ("none" for RECORD_TYPE_NONE). */
const char *record_type_name(enum record_type t);

#endif
