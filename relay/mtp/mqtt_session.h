/* mqtt_session.h — internal to the MQTT server: the session state and the functions its
 * three files share. mqtt_server.c owns the session (CONNECT, keepalive, dispatch, read
 * loop, goodbye), mqtt_subs.c the subscriptions, mqtt_publish.c PUBLISH in and out.
 * Nothing outside relay/mtp/mqtt_*.c includes this; the public API is mqtt_server.h.
 */
#ifndef USPRELAY_MQTT_SESSION_H
#define USPRELAY_MQTT_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "relay/conn.h"
#include "relay/mtp/mqtt_codec.h"
#include "relay/mtp/mqtt_server.h"

/* v5 reason codes used here (MQTT 5.0 §2.4). */
enum {
    RC_SUCCESS = 0x00,
    RC_GRANTED_QOS1 = 0x01,
    RC_NO_SUBSCRIBERS = 0x10,
    RC_NO_SUBSCRIPTION = 0x11,
    RC_UNSPECIFIED = 0x80,
    RC_MALFORMED = 0x81,
    RC_PROTOCOL_ERROR = 0x82,
    RC_IMPL_SPECIFIC = 0x83,
    RC_UNSUPPORTED_VERSION = 0x84,
    RC_CLIENT_ID_INVALID = 0x85,
    RC_BAD_USER_PASS = 0x86,
    RC_NOT_AUTHORIZED = 0x87,
    RC_SHUTTING_DOWN = 0x8B,
    RC_BAD_AUTH_METHOD = 0x8C,
    RC_KEEP_ALIVE_TIMEOUT = 0x8D,
    RC_SESSION_TAKEN_OVER = 0x8E,
    RC_FILTER_INVALID = 0x8F,
    RC_PACKET_ID_IN_USE = 0x91,
    RC_PACKET_ID_NOT_FOUND = 0x92,
    RC_PACKET_TOO_LARGE = 0x95,
    RC_QUOTA_EXCEEDED = 0x97,
    RC_TOPIC_ALIAS_INVALID = 0x94,
    RC_RETAIN_NOT_SUPPORTED = 0x9A,
    RC_QOS_NOT_SUPPORTED = 0x9B,
    RC_SHARED_NOT_SUPPORTED = 0x9E,
    RC_SUB_IDS_NOT_SUPPORTED = 0xA1,
};

#define MQTT_MAX_SUBS 32          /* filters one connection may hold */
#define MQTT_OUT_INFLIGHT_CAP 64  /* QoS 1 PUBLISHes out, unacknowledged */
#define MQTT_QOS2_CAP 64          /* 3.1.1 QoS 2 PUBLISHes in, awaiting PUBREL */
#define MQTT_PENDING_CAP 4096     /* Records waiting for an in-flight slot */
/* Topics the relay builds: a template (at most 256 bytes, config) with an endpoint ID
 * (at most 4096) — and on the wire, for 3.1.1, a reply topic %2F-encoded after it. */
#define MQTT_TOPIC_MAX (256 + 4096 + 64)
#define MQTT_TOPIC_WIRE_MAX (MQTT_TOPIC_MAX * 4 + 16)

struct mqtt_sub {
    char *filter;
    uint8_t qos;
    char *registered; /* concrete topic this filter put in ROUTER_TOPICS, or NULL */
    int wildcard;     /* filter registered in the relay's topic_filters (subscribe_any) */
};

struct mqtt_conn {
    struct conn base;
    int connected;
    uint8_t level; /* 4 = 3.1.1, 5 = 5.0 */
    char *client_id;
    char *own_topic;     /* subscribe topic derived from the endpoint ID */
    char *learned_topic; /* MQTTConnectRecord.subscribed_topic */
    struct mqtt_sub subs[MQTT_MAX_SUBS];
    size_t n_subs;
    uint16_t keep_alive;   /* seconds enforced (client's, or the server's) */
    uint64_t last_rx_ms;
    struct event *ka_timer;
    uint32_t client_max_packet; /* v5 Maximum Packet Size of the client (0: none) */
    uint16_t client_receive_max;
    uint16_t next_pid;
    uint16_t inflight[MQTT_OUT_INFLIGHT_CAP];
    size_t n_inflight;
    struct rbuf **pending; /* ring of Records waiting for an in-flight slot */
    size_t pend_head, pend_n, pend_cap;
    uint64_t pend_bytes;
    uint16_t qos2_in[MQTT_QOS2_CAP];
    size_t n_qos2_in;
    uint8_t disconnect_reason; /* v5 reason for the goodbye DISCONNECT, 0: by close reason */
    int connack_refusal;       /* CONNACK to send as goodbye: 0 none, else code + 1 */
};

static inline struct mqtt_span mqtt_session_span(const char *s)
{
    struct mqtt_span sp = {(const uint8_t *)s, s ? strlen(s) : 0};
    return sp;
}

static inline int mqtt_session_span_is(struct mqtt_span s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

/* ---- mqtt_server.c */

/* Queue P[0..N) for the client; a failed encode (N <= 0) or no memory fails the
 * connection. */
void mqtt_session_send(struct conn *c, const uint8_t *p, long n);

/* Close, saying why (v5 REASON, TEXT) where the protocol level allows. */
void mqtt_session_error(struct mqtt_conn *m, enum close_reason why, uint8_t reason,
                        const char *text);

/* Bind EID to this connection (and recheck subscriptions); 0, or -1 after closing it. */
int mqtt_session_bind_identity(struct mqtt_conn *m, const char *eid, size_t len);

/* ---- mqtt_subs.c */

/* SUBSCRIBE and UNSUBSCRIBE packet bodies: answered with SUBACK / UNSUBACK. */
void mqtt_subs_on_subscribe(struct mqtt_conn *m, const uint8_t *body, size_t len);
void mqtt_subs_on_unsubscribe(struct mqtt_conn *m, const uint8_t *body, size_t len);

/* Drop (and log) the subscriptions the ACL refuses now that the endpoint ID is bound. */
void mqtt_subs_recheck(struct mqtt_conn *m);

/* Unregister and free every subscription (session end). */
void mqtt_subs_release(struct mqtt_conn *m);
/* Withdraw every topic route of M (its filters stay): when it starts closing. */
void mqtt_subs_unregister(struct mqtt_conn *m);

/* The topic (its length, written into BUF) and QoS to publish this client's Records
 * with; 0 if its subscriptions take none. */
size_t mqtt_subs_delivery_topic(struct mqtt_conn *m, char *buf, size_t cap, uint8_t *qos);

/* ---- mqtt_publish.c */

/* PUBLISH from the client (FLAGS: the fixed header's low nibble). */
void mqtt_publish_on_publish(struct mqtt_conn *m, const uint8_t *body, size_t len, uint8_t flags);

/* PUBACK, PUBREC, PUBREL or PUBCOMP from the client. */
void mqtt_publish_on_ack(struct mqtt_conn *m, uint8_t type, const uint8_t *body, size_t len);

/* conn_ops.send_record: publish RB now, or queue it while the in-flight window is full. */
int mqtt_publish_send_record(struct conn *c, struct rbuf *rb);

/* Publish queued Records while the in-flight window has room. */
void mqtt_publish_flush(struct mqtt_conn *m);

/* Drop every queued Record (session end). */
void mqtt_publish_release(struct mqtt_conn *m);

#endif
