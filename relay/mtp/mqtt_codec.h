/* mqtt_codec.h — MQTT 3.1.1 (level 4) and 5.0 (level 5) packet codec: a pure function of bytes.
 *
 * Decoding is zero-copy and stateless in the picohttpparser shape. mqtt_packet_size() looks
 * at the fixed header only, so a reader learns the full packet size (and rejects floods and
 * bad types) before the body is there. The mqtt_decode_*() functions then take the packet
 * BODY (the bytes after the fixed header, exactly `remaining` of them) and the protocol level
 * of the session (4 or 5). Every output is a span into the caller's buffer; nothing is
 * copied, allocated or logged; there are no globals. Any byte count read from input is
 * checked against the bytes present before it is used.
 *
 * Errors are distinct negative codes (enum mqtt_err); mqtt_err_reason() maps each to the v5
 * reason code a server puts in its DISCONNECT. A decoder's output struct is fully written on
 * success and unspecified on error (except where noted for CONNECT).
 *
 * Strictness chosen here (all per the OASIS texts, receiver side):
 *  - Remaining Length and every Variable Byte Integer must use the minimal number of bytes
 *    (MQTT-1.5.5-1); a 4th byte with its continuation bit set is MQTT_ERR_REMAINING_LENGTH.
 *  - PUBLISH with QoS 3 is MQTT_ERR_QOS and DUP=1 with QoS 0 is MQTT_ERR_BAD_FLAGS, both
 *    already from mqtt_packet_size() (the first byte proves them).
 *  - PINGREQ/PINGRESP with a non-zero Remaining Length is MQTT_ERR_MALFORMED from
 *    mqtt_packet_size().
 *  - Reason codes in decoded acks/DISCONNECT/AUTH/CONNACK/SUBACK must be ones the spec
 *    defines for that packet (else MQTT_ERR_MALFORMED).
 *  - UTF-8 strings (MQTT-1.5.4): well-formed, no U+0000, no surrogates, no overlongs, at most
 *    U+10FFFF; other control characters and non-characters are accepted (they are SHOULD NOTs).
 *
 * Implemented in mqtt_codec.c (fixed header, decoders, topics, names), mqtt_props.c (v5
 * property lists, field primitives; internals in mqtt_props.h) and mqtt_encode.c (encoders).
 */
#ifndef USPRELAY_MQTT_CODEC_H
#define USPRELAY_MQTT_CODEC_H

#include <stddef.h>
#include <stdint.h>

#define MQTT_NEED_MORE 0
#define MQTT_FIXED_HEADER_MAX 5            /* 1 type byte + at most 4 length bytes */
#define MQTT_MAX_REMAINING 268435455u      /* largest 4-byte Remaining Length */
#define MQTT_LEVEL_311 4
#define MQTT_LEVEL_5 5

enum mqtt_type {
    MQTT_CONNECT = 1, MQTT_CONNACK, MQTT_PUBLISH, MQTT_PUBACK, MQTT_PUBREC,
    MQTT_PUBREL, MQTT_PUBCOMP, MQTT_SUBSCRIBE, MQTT_SUBACK, MQTT_UNSUBSCRIBE, MQTT_UNSUBACK,
    MQTT_PINGREQ, MQTT_PINGRESP, MQTT_DISCONNECT, MQTT_AUTH
};

enum mqtt_err {
    MQTT_ERR_MALFORMED = -1,        /* truncated field, bytes left over, reserved bit set,
                                       bad reason code, rule broken (e.g. will flags) */
    MQTT_ERR_REMAINING_LENGTH = -2, /* > 4 bytes, or not minimally encoded */
    MQTT_ERR_TOO_LARGE = -3,        /* over max_packet; encoders: a field or packet too big
                                       for MQTT (string > 65535, remaining > 268435455) */
    MQTT_ERR_BAD_FLAGS = -4,        /* reserved type (0) or fixed-header flags wrong for the
                                       type; encoders/decoders: TYPE argument not one they do */
    MQTT_ERR_PROTOCOL_NAME = -5,    /* CONNECT protocol name is not "MQTT" */
    MQTT_ERR_PROTOCOL_LEVEL = -6,   /* not 4 or 5: caller answers CONNACK "unacceptable
                                       protocol version" (v3 code 0x01 / v5 0x84) */
    MQTT_ERR_UTF8 = -7,             /* an MQTT UTF-8 string (anywhere, properties too) */
    MQTT_ERR_TOPIC = -8,            /* topic name / filter syntax, incl. v5 $share form */
    MQTT_ERR_PROPERTY = -9,         /* unknown id, not allowed in this packet, duplicate
                                       where forbidden, bad value (a property list running
                                       past the body is MQTT_ERR_MALFORMED) */
    MQTT_ERR_QOS = -10,             /* QoS 3 (PUBLISH, will, subscription options) */
    MQTT_ERR_PACKET_ID = -11,       /* zero where one is required */
    MQTT_ERR_NO_FILTERS = -12,      /* SUBSCRIBE/UNSUBSCRIBE without filters (or SUBACK
                                       without reason codes) */
    MQTT_ERR_BUF_SMALL = -13,       /* encoder: output does not fit in CAP */
    MQTT_ERR_TOO_MANY = -14,        /* more than MQTT_MAX_FILTERS filters */
};

/* v5 reason codes (and the v3.1.1 CONNACK return codes) a server sends. */
enum mqtt_reason {
    MQTT_RC_SUCCESS = 0x00, MQTT_RC_GRANTED_QOS1 = 0x01, MQTT_RC_GRANTED_QOS2 = 0x02,
    MQTT_RC_DISCONNECT_WITH_WILL = 0x04, MQTT_RC_NO_MATCHING_SUBSCRIBERS = 0x10,
    MQTT_RC_NO_SUBSCRIPTION_EXISTED = 0x11, MQTT_RC_CONTINUE_AUTH = 0x18, MQTT_RC_REAUTH = 0x19,
    MQTT_RC_UNSPECIFIED = 0x80, MQTT_RC_MALFORMED = 0x81, MQTT_RC_PROTOCOL_ERROR = 0x82,
    MQTT_RC_IMPL_SPECIFIC = 0x83, MQTT_RC_UNSUPPORTED_VERSION = 0x84,
    MQTT_RC_CLIENT_ID_NOT_VALID = 0x85, MQTT_RC_BAD_USER_OR_PASSWORD = 0x86,
    MQTT_RC_NOT_AUTHORIZED = 0x87, MQTT_RC_SERVER_UNAVAILABLE = 0x88, MQTT_RC_SERVER_BUSY = 0x89,
    MQTT_RC_BANNED = 0x8A, MQTT_RC_SERVER_SHUTTING_DOWN = 0x8B, MQTT_RC_BAD_AUTH_METHOD = 0x8C,
    MQTT_RC_KEEP_ALIVE_TIMEOUT = 0x8D, MQTT_RC_SESSION_TAKEN_OVER = 0x8E,
    MQTT_RC_TOPIC_FILTER_INVALID = 0x8F, MQTT_RC_TOPIC_NAME_INVALID = 0x90,
    MQTT_RC_PACKET_ID_IN_USE = 0x91, MQTT_RC_PACKET_ID_NOT_FOUND = 0x92,
    MQTT_RC_RECEIVE_MAX_EXCEEDED = 0x93, MQTT_RC_TOPIC_ALIAS_INVALID = 0x94,
    MQTT_RC_PACKET_TOO_LARGE = 0x95, MQTT_RC_MESSAGE_RATE_TOO_HIGH = 0x96,
    MQTT_RC_QUOTA_EXCEEDED = 0x97, MQTT_RC_ADMINISTRATIVE_ACTION = 0x98,
    MQTT_RC_PAYLOAD_FORMAT_INVALID = 0x99, MQTT_RC_RETAIN_NOT_SUPPORTED = 0x9A,
    MQTT_RC_QOS_NOT_SUPPORTED = 0x9B, MQTT_RC_USE_ANOTHER_SERVER = 0x9C,
    MQTT_RC_SERVER_MOVED = 0x9D, MQTT_RC_SHARED_SUBS_NOT_SUPPORTED = 0x9E,
    MQTT_RC_CONNECTION_RATE_EXCEEDED = 0x9F, MQTT_RC_MAX_CONNECT_TIME = 0xA0,
    MQTT_RC_SUB_IDS_NOT_SUPPORTED = 0xA1, MQTT_RC_WILDCARD_SUBS_NOT_SUPPORTED = 0xA2,
    /* v3.1.1 CONNACK return codes; SUBACK failure is 0x80 (= MQTT_RC_UNSPECIFIED) */
    MQTT_RC3_UNACCEPTABLE_VERSION = 0x01, MQTT_RC3_IDENTIFIER_REJECTED = 0x02,
    MQTT_RC3_SERVER_UNAVAILABLE = 0x03, MQTT_RC3_BAD_USER_OR_PASSWORD = 0x04,
    MQTT_RC3_NOT_AUTHORIZED = 0x05,
};

/* Bytes in the caller's buffer. PTR is never NULL for a decoded field that is present (an
 * empty string points at where it would have been); absent optional fields are {NULL, 0}. */
struct mqtt_span {
    const uint8_t *ptr;
    size_t len;
};

struct mqtt_fixed {
    uint8_t type, flags;  /* high and low nibble of the first byte */
    uint8_t header_len;   /* 2..5: first byte + Remaining Length bytes */
    uint32_t remaining;   /* body length */
};

/* Fixed header at BUF (LEN bytes available, any number; at most 5 are read).
 * Returns the total packet size header_len + remaining (> 0) with *FH filled,
 * MQTT_NEED_MORE, or an error as soon as the bytes present prove it:
 * MQTT_ERR_BAD_FLAGS (type 0, or flags not 0000 / 0010 for PUBREL, SUBSCRIBE, UNSUBSCRIBE,
 * or PUBLISH DUP=1 with QoS 0) and MQTT_ERR_QOS (PUBLISH QoS 3) from the first byte;
 * MQTT_ERR_REMAINING_LENGTH (5th length byte needed, or non-minimal encoding);
 * MQTT_ERR_MALFORMED (PINGREQ/PINGRESP with a body); MQTT_ERR_TOO_LARGE as soon as the
 * declared size (header + remaining) exceeds MAX_PACKET, before the body is there
 * (MAX_PACKET 0 = no limit beyond the protocol's). Type 15 (AUTH) is accepted here; a
 * 3.1.1 session must itself treat it as a reserved type. *FH is untouched unless > 0. */
long mqtt_packet_size(const uint8_t *buf, size_t len, uint32_t max_packet, struct mqtt_fixed *fh);

/* ------------------------------------------------------------------ v5 properties */

#define MQTT_MAX_USER_PROPS 16

struct mqtt_user_prop {
    struct mqtt_span key, value;
};

/* v5 properties actually present (bits in PRESENT) and their values. A value whose bit is
 * clear is 0 / {NULL, 0}. Every decoded value has been checked: single-byte booleans are
 * 0|1, Receive Maximum / Maximum Packet Size / Topic Alias / Subscription Identifier are
 * non-zero, Response Topic is a valid topic name, strings are valid UTF-8, Authentication
 * Data only with an Authentication Method. Subscription Identifier may repeat in a PUBLISH
 * (server to client): SUBSCRIPTION_ID is then the first one. A client's PUBLISH must not
 * carry one (MQTT-3.3.4-6): the server checks the PRESENT bit itself. Topic Alias is only
 * range-checked against 0; the session checks it against its Topic Alias Maximum. */
struct mqtt_props {
    uint32_t present;                    /* bit (1u << MQTT_P_x) for each seen */
    uint8_t payload_format;
    uint32_t message_expiry, session_expiry, max_packet_size;
    uint16_t receive_maximum, topic_alias_max, topic_alias, server_keep_alive;
    uint8_t request_response_info, request_problem_info, max_qos, retain_available,
            wildcard_available, sub_id_available, shared_available;
    uint32_t subscription_id, will_delay;
    struct mqtt_span content_type, response_topic, correlation_data, assigned_client_id,
                     auth_method, auth_data, response_info, server_reference, reason_string;
    struct mqtt_user_prop user[MQTT_MAX_USER_PROPS]; /* the first MQTT_MAX_USER_PROPS */
    size_t n_user;                       /* stored in USER (<= MQTT_MAX_USER_PROPS) */
    size_t n_user_total;                 /* all seen (extra ones are checked, not stored) */
};

enum {
    MQTT_P_PAYLOAD_FORMAT = 0, MQTT_P_MESSAGE_EXPIRY, MQTT_P_CONTENT_TYPE, MQTT_P_RESPONSE_TOPIC,
    MQTT_P_CORRELATION_DATA, MQTT_P_SUBSCRIPTION_ID, MQTT_P_SESSION_EXPIRY,
    MQTT_P_ASSIGNED_CLIENT_ID, MQTT_P_SERVER_KEEP_ALIVE, MQTT_P_AUTH_METHOD, MQTT_P_AUTH_DATA,
    MQTT_P_REQUEST_PROBLEM_INFO, MQTT_P_WILL_DELAY, MQTT_P_REQUEST_RESPONSE_INFO,
    MQTT_P_RESPONSE_INFO, MQTT_P_SERVER_REFERENCE, MQTT_P_REASON_STRING, MQTT_P_RECEIVE_MAXIMUM,
    MQTT_P_TOPIC_ALIAS_MAX, MQTT_P_TOPIC_ALIAS, MQTT_P_MAX_QOS, MQTT_P_RETAIN_AVAILABLE,
    MQTT_P_USER_PROPERTY, MQTT_P_MAX_PACKET_SIZE, MQTT_P_WILDCARD_AVAILABLE,
    MQTT_P_SUB_ID_AVAILABLE, MQTT_P_SHARED_AVAILABLE
};

/* 1 if property bit X (an MQTT_P_ value) is set in P. */
#define MQTT_HAS(p, x) ((((p)->present) >> (x)) & 1u)

/* First user property named KEY (exact, case-sensitive), or NULL. Only the stored
 * (first MQTT_MAX_USER_PROPS) properties are searched. */
const struct mqtt_user_prop *mqtt_user_prop_get(const struct mqtt_props *p, const char *key);

/* ------------------------------------------------------------------ decoding */

/* CONNECT. The level comes from the packet itself. Flags are 0/1 ints; WILL_QOS 0..2.
 * USERNAME / PASSWORD / WILL_* are {NULL, 0} when absent; CLIENT_ID may be empty (the
 * server decides: v3.1.1 requires clean_start=1 then, v5 assigns one). v5 only: PROPS,
 * WILL_PROPS (zeroed for 3.1.1). Checks: name "MQTT" (nothing else, not "MQIsdp"), level 4|5,
 * reserved flag bit 0, will flag rules (no will: will QoS and retain 0; will QoS 3 is
 * MQTT_ERR_QOS), password without username (3.1.1 only: MQTT_ERR_MALFORMED), UTF-8 of
 * client id / will topic / username, will topic a valid topic name (MQTT_ERR_TOPIC),
 * properties allowed in CONNECT / will properties, nothing left over.
 * On MQTT_ERR_PROTOCOL_LEVEL, out->level is still set (the caller needs it for the CONNACK);
 * on MQTT_ERR_PROTOCOL_NAME it is the byte after the name (0 if the body ends there). */
struct mqtt_connect {
    uint8_t level;
    int clean_start, will, will_qos, will_retain, has_username, has_password;
    uint16_t keep_alive;
    struct mqtt_props props;
    struct mqtt_span client_id;
    struct mqtt_props will_props;
    struct mqtt_span will_topic, will_payload, username, password;
};
int mqtt_decode_connect(const uint8_t *body, size_t len, struct mqtt_connect *out);

/* PUBLISH with FLAGS = the low nibble of the first byte (struct mqtt_fixed.flags).
 * Checks: QoS 3 (MQTT_ERR_QOS), DUP with QoS 0 (MQTT_ERR_BAD_FLAGS), topic UTF-8 and a valid
 * topic name (non-empty, no '+'/'#'); v5 may send an empty topic only with a Topic Alias
 * (else MQTT_ERR_TOPIC); packet id non-zero for QoS > 0 (0 and absent for QoS 0); v5
 * PUBLISH properties. PAYLOAD is the rest of the body (may be empty; PTR then points at the
 * body end). */
struct mqtt_publish {
    uint8_t qos, dup, retain;
    uint16_t packet_id;
    struct mqtt_span topic;
    struct mqtt_props props;
    struct mqtt_span payload;
};
int mqtt_decode_publish(const uint8_t *body, size_t len, uint8_t flags, uint8_t level,
                        struct mqtt_publish *out);

#define MQTT_MAX_FILTERS 32

/* Subscription options byte (v5 layout; v3.1.1 uses only the QoS bits). */
#define MQTT_SUB_QOS(o) ((uint8_t)((o) & 0x03u))
#define MQTT_SUB_NO_LOCAL 0x04u
#define MQTT_SUB_RETAIN_AS_PUBLISHED 0x08u
#define MQTT_SUB_RETAIN_HANDLING(o) ((uint8_t)(((o) >> 4) & 0x03u))

struct mqtt_sub_filter {
    struct mqtt_span filter;
    uint8_t options; /* v3: QoS; v5: the full options byte; UNSUBSCRIBE: 0 */
};
struct mqtt_subscribe {
    uint16_t packet_id;
    struct mqtt_props props;
    struct mqtt_sub_filter filters[MQTT_MAX_FILTERS];
    size_t n;
};
/* SUBSCRIBE: packet id non-zero, v5 properties (Subscription Identifier at most once, user
 * properties), at least one filter (MQTT_ERR_NO_FILTERS), at most MQTT_MAX_FILTERS
 * (MQTT_ERR_TOO_MANY), each UTF-8 and a valid filter (MQTT_ERR_TOPIC; v5 also checks the
 * "$share/<name>/<filter>" form), options: v3 upper 6 bits 0, v5 bits 6-7 0 and retain
 * handling != 3, v5 No Local not on a shared filter (all MQTT_ERR_MALFORMED); QoS 3 is
 * MQTT_ERR_QOS. */
int mqtt_decode_subscribe(const uint8_t *body, size_t len, uint8_t level,
                          struct mqtt_subscribe *out);
/* UNSUBSCRIBE: the same without options bytes (options are 0); v5 properties: user only. */
int mqtt_decode_unsubscribe(const uint8_t *body, size_t len, uint8_t level,
                            struct mqtt_subscribe *out);

struct mqtt_ack {
    uint16_t packet_id;
    uint8_t reason;
    struct mqtt_props props;
};
/* PUBACK/PUBREC/PUBREL/PUBCOMP (TYPE says which). v3.1.1: exactly the packet id. v5 short
 * forms: reason 0 when omitted, no properties when the property length is omitted. Packet
 * id non-zero; reason one defined for TYPE. */
int mqtt_decode_ack(const uint8_t *body, size_t len, uint8_t type, uint8_t level,
                    struct mqtt_ack *out);

struct mqtt_disconnect {
    uint8_t reason;
    struct mqtt_props props;
};
/* DISCONNECT: v3.1.1 empty body; v5 reason (0 when omitted) and properties. A client must
 * not send Server Reference (the server checks the PRESENT bit if it cares). */
int mqtt_decode_disconnect(const uint8_t *body, size_t len, uint8_t level,
                           struct mqtt_disconnect *out);
/* AUTH (v5 only): empty body = reason 0; otherwise reason 0x00/0x18/0x19 + properties. */
int mqtt_decode_auth(const uint8_t *body, size_t len, struct mqtt_disconnect *out);

/* For clients and tests: CONNACK and SUBACK/UNSUBACK. */
struct mqtt_connack {
    uint8_t session_present, reason; /* v3.1.1: return code 0..5 */
    struct mqtt_props props;
};
int mqtt_decode_connack(const uint8_t *body, size_t len, uint8_t level, struct mqtt_connack *out);

struct mqtt_suback {
    uint16_t packet_id;
    struct mqtt_props props;
    struct mqtt_span reasons; /* one byte per filter; v3.1.1 UNSUBACK: empty */
};
/* TYPE = MQTT_SUBACK or MQTT_UNSUBACK. At least one reason code except in a v3.1.1 UNSUBACK
 * (which is exactly the packet id); each reason defined for the packet type and level. */
int mqtt_decode_suback(const uint8_t *body, size_t len, uint8_t type, uint8_t level,
                       struct mqtt_suback *out);

/* ------------------------------------------------------------------ topics, UTF-8 */

/* 1 if P..P+N is an MQTT UTF-8 string body: well-formed UTF-8, no U+0000, no surrogates,
 * no overlong forms, <= U+10FFFF. (The 65535-byte limit is the caller's.) Else 0. */
int mqtt_utf8_valid(const uint8_t *p, size_t n);
/* 1 if T is a topic name: 1..65535 bytes, valid UTF-8, no '+' or '#'. Else 0. */
int mqtt_topic_name_valid(struct mqtt_span t);
/* 1 if F is a topic filter: 1..65535 bytes, valid UTF-8, '#' only as the whole last level,
 * '+' only as a whole level. ("$share/..." is just a filter here.) Else 0. */
int mqtt_topic_filter_valid(struct mqtt_span f);
/* v5 shared subscription "$share/<name>/<filter>": returns 1 with *NAME and *INNER set
 * (either may be NULL) when F has that form with a non-empty name free of '/', '+', '#'
 * and a valid inner filter; 0 when F does not start with "$share/"; -1 when it does but
 * the rest is invalid. */
int mqtt_topic_filter_shared(struct mqtt_span f, struct mqtt_span *name, struct mqtt_span *inner);
/* 1 if FILTER matches topic name TOPIC: '+' one level (possibly empty), '#' the remaining
 * levels including none ("sport/#" matches "sport"), topics starting with '$' are not
 * matched by a filter starting with '+' or '#'. Strip a "$share/<name>/" prefix first.
 * 0 if no match or either argument is invalid. */
int mqtt_topic_matches(struct mqtt_span filter, struct mqtt_span topic);

/* ------------------------------------------------------------------ names */

/* Short snake_case name of an mqtt_err ("need_more" for 0, "unknown" otherwise). */
const char *mqtt_err_name(int err);
/* "CONNECT", "PUBLISH", ...; "UNKNOWN" for anything else. */
const char *mqtt_type_name(int type);
/* The v5 reason code for a DISCONNECT (or CONNACK) answering decode error ERR:
 * TOO_LARGE 0x95, PROPERTY/QOS/PACKET_ID/NO_FILTERS/BAD_FLAGS 0x82 (protocol error),
 * TOPIC 0x90 (0x8F is the caller's choice for a SUBSCRIBE), PROTOCOL_LEVEL 0x84,
 * TOO_MANY 0x97, everything else 0x81 (malformed). */
uint8_t mqtt_err_reason(int err);

/* ------------------------------------------------------------------ encoding */

/* v5 properties to write. A span with PTR == NULL is left out (PTR != NULL with LEN 0 writes
 * an empty value); a number is written only when its has_ flag is set. Encoders reject a
 * property the packet type may not carry (MQTT_ERR_PROPERTY) and ignore the whole struct
 * for level 4. NULL = no properties. */
struct mqtt_props_out {
    struct mqtt_span content_type, response_topic, assigned_client_id, response_info,
                     reason_string;
    int has_server_keep_alive; uint16_t server_keep_alive;
    int has_receive_maximum; uint16_t receive_maximum;
    int has_max_qos; uint8_t max_qos;
    int has_retain_available; uint8_t retain_available;
    int has_wildcard_available; uint8_t wildcard_available;
    int has_sub_id_available; uint8_t sub_id_available;
    int has_shared_available; uint8_t shared_available;
    int has_topic_alias_max; uint16_t topic_alias_max;
    int has_max_packet_size; uint32_t max_packet_size;
    const struct mqtt_user_prop *user; size_t n_user;
    /* Further properties (clients, tests, forwarding). */
    struct mqtt_span correlation_data, server_reference;
    int has_session_expiry; uint32_t session_expiry;
    int has_message_expiry; uint32_t message_expiry;
    int has_payload_format; uint8_t payload_format;
    int has_will_delay; uint32_t will_delay;
    int has_request_response_info; uint8_t request_response_info;
    int has_request_problem_info; uint8_t request_problem_info;
    int has_topic_alias; uint16_t topic_alias;
    int has_subscription_id; uint32_t subscription_id; /* 1..268435455 */
};

/* All encoders compute the size first: they return the bytes written (> 0), or an error
 * with OUT untouched: MQTT_ERR_BUF_SMALL, MQTT_ERR_TOO_LARGE (a string > 65535 bytes or
 * remaining length > MQTT_MAX_REMAINING), MQTT_ERR_PROPERTY (property not allowed in this
 * packet), MQTT_ERR_QOS (QoS > 2), MQTT_ERR_PACKET_ID (0 where one is needed),
 * MQTT_ERR_BAD_FLAGS (TYPE not one the encoder writes), MQTT_ERR_PROTOCOL_LEVEL (not 4|5).
 * String contents are written as given (the caller validated them). */

/* CONNACK; v3.1.1 ignores PROPS and writes the return code REASON. */
long mqtt_encode_connack(uint8_t *out, size_t cap, uint8_t level, int session_present,
                         uint8_t reason, const struct mqtt_props_out *props);
/* Fixed header + variable header of a PUBLISH whose PAYLOAD_LEN-byte payload the caller sends
 * right after (by reference); remaining length includes the payload. PACKET_ID is written
 * only for QoS > 0. */
long mqtt_encode_publish_head(uint8_t *out, size_t cap, uint8_t level, uint8_t qos, int retain,
                              int dup, struct mqtt_span topic, uint16_t packet_id,
                              const struct mqtt_props_out *props, size_t payload_len);
/* PUBACK/PUBREC/PUBREL/PUBCOMP; v5 uses the 2-byte short form when reason is 0, else
 * packet id + reason (no property length). v3.1.1 ignores REASON. */
long mqtt_encode_ack(uint8_t *out, size_t cap, uint8_t type, uint8_t level, uint16_t packet_id,
                     uint8_t reason);
/* SUBACK (N >= 1 reasons) or UNSUBACK (v3.1.1: packet id only, REASONS ignored; v5: N >= 1),
 * v5 with an empty property list. N == 0 where reasons are needed: MQTT_ERR_NO_FILTERS. */
long mqtt_encode_suback(uint8_t *out, size_t cap, uint8_t type, uint8_t level,
                        uint16_t packet_id, const uint8_t *reasons, size_t n);
long mqtt_encode_pingresp(uint8_t *out, size_t cap);
long mqtt_encode_pingreq(uint8_t *out, size_t cap);
/* DISCONNECT: v3.1.1 always E0 00; v5 E0 00 when reason is 0 and REASON_STRING.ptr is NULL,
 * else the reason and a Reason String property when REASON_STRING.ptr is not NULL. */
long mqtt_encode_disconnect(uint8_t *out, size_t cap, uint8_t level, uint8_t reason,
                            struct mqtt_span reason_string);

/* For tests and tools: complete client packets. */
struct mqtt_connect_out {
    uint8_t level;                       /* 4 or 5 */
    int clean_start;
    uint16_t keep_alive;
    struct mqtt_span client_id;          /* PTR NULL = empty */
    struct mqtt_span username, password; /* PTR NULL = absent */
    int will;
    uint8_t will_qos;
    int will_retain;
    struct mqtt_span will_topic, will_payload;
    const struct mqtt_props_out *props;      /* v5 CONNECT properties, or NULL */
    const struct mqtt_props_out *will_props; /* v5 will properties, or NULL */
};
long mqtt_encode_connect(uint8_t *out, size_t cap, const struct mqtt_connect_out *c);
/* SUBSCRIBE (options byte as given; v3.1.1 writes only its QoS bits) or UNSUBSCRIBE
 * (options ignored), TYPE says which; N >= 1 (else MQTT_ERR_NO_FILTERS). */
long mqtt_encode_subscribe(uint8_t *out, size_t cap, uint8_t type, uint8_t level,
                           uint16_t packet_id, const struct mqtt_props_out *props,
                           const struct mqtt_sub_filter *filters, size_t n);
/* A whole PUBLISH: mqtt_encode_publish_head + PAYLOAD copied after it. */
long mqtt_encode_publish(uint8_t *out, size_t cap, uint8_t level, uint8_t qos, int retain,
                         int dup, struct mqtt_span topic, uint16_t packet_id,
                         const struct mqtt_props_out *props, struct mqtt_span payload);

#endif
