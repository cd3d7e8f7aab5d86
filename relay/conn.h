/* conn.h — one client connection, whatever its MTP, behind a small vtable.
 *
 * The worker that accepted a connection owns it: only that thread touches it. The
 * router and other threads refer to it by (worker, id) and go through the owner's
 * mailbox. A connection is never freed inside one of its callbacks: conn_close() says
 * the MTP's goodbye, lets queued output flush (bounded in time) and queues the
 * connection for the worker's reaper, which frees it after the current callback.
 *
 * API for an MTP: embed struct conn first in the session struct, call conn_init(),
 * implement conn_ops; call conn_bind_endpoint() once the handshake names the endpoint,
 * conn_handshake_done() when it is complete, forward_record() for each Record read.
 */
#ifndef USPRELAY_CONN_H
#define USPRELAY_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "relay/config.h"
#include "relay/rbuf.h"
#include "relay/record.h"
#include "relay/src_limit.h"
#include "relay/stats.h"

enum mtp_kind { MTP_NONE = 0, MTP_STOMP = 1, MTP_UDS = 2, MTP_MQTT = 3, MTP_WS = 4 };

enum close_reason {
    CLOSE_PEER = 0,          /* peer closed */
    CLOSE_IO_ERROR,          /* socket error */
    CLOSE_PROTOCOL,          /* MTP protocol error */
    CLOSE_HANDSHAKE_TIMEOUT, /* no handshake in time */
    CLOSE_HEARTBEAT_TIMEOUT, /* peer silent */
    CLOSE_REPLACED,          /* endpoint ID taken over by a newer connection */
    CLOSE_DUPLICATE,         /* endpoint ID already connected (refuse-new) */
    CLOSE_AUTH,              /* bad credentials */
    CLOSE_GOODBYE,           /* peer said goodbye (STOMP DISCONNECT, UDS Error TLV) */
    CLOSE_SHUTDOWN,          /* relay stopping */
    CLOSE_NO_MEMORY,
    CLOSE_TOO_LARGE,         /* message over the size limit (WebSocket 1009) */
    CLOSE_BUSY,              /* a connection limit was reached */
    CLOSE_STALLED,           /* output pending, nothing written for stall_timeout */
};

const char *close_reason_name(enum close_reason r);

struct conn;
struct worker;
struct relay;
struct ssl_st;

struct conn_ops {
    enum mtp_kind mtp;
    const char *name;             /* "stomp", "uds" */
    enum record_type connect_type; /* this MTP's Connect Record type */
    /* Input is waiting in the bufferevent. */
    void (*on_read)(struct conn *c);
    /* Frame RB for this peer and queue it. Returns 0, or the drop counter that
     * explains why not (the caller counts it). Takes no ownership of RB. */
    int (*send_record)(struct conn *c, struct rbuf *rb);
    /* Queue the MTP's last words before the connection closes for WHY (may do nothing). */
    void (*goodbye)(struct conn *c, enum close_reason why, const char *text);
    /* Address the relay gives endpoint EID on this MTP (STOMP alias destination); writes
     * a NUL-terminated string into BUF, returns its length or -1. NULL: none. */
    long (*alias_address)(struct conn *c, const char *eid, size_t len, char *buf, size_t cap);
    /* Withdraw the MTP's own routes (subscribed destinations, topics) as the connection
     * starts closing, so nothing more is routed to it. May be called twice. NULL: none. */
    void (*unbind)(struct conn *c);
    /* Free the MTP's own state (the struct itself is freed by the caller). */
    void (*destroy)(struct conn *c);
    /* Version field of this MTP's Connect Record for this peer (MQTT: V3_1_1 or V5).
     * NULL: 0. */
    uint32_t (*connect_version)(struct conn *c);
    /* Connections whose transport is not a bufferevent of ours (WebSocket, in the
     * libwebsockets thread) close themselves: conn_close()/conn_abort() have already
     * unbound the routes; this says goodbye (TEXT may be NULL; FLUSH: queued Records may
     * go first), and the MTP frees the connection with conn_release() once its
     * transport is gone. NULL for bufferevent connections. */
    void (*close)(struct conn *c, enum close_reason why, const char *text, int flush);
    /* Output bytes queued, for transports that are not a bufferevent. */
    size_t (*output_queued)(const struct conn *c);
    /* Records accepted by send_record() but held by the MTP itself (MQTT: waiting for a
     * QoS 1 window slot): their bytes, and how many more it would hold. NULL: none. */
    void (*held)(const struct conn *c, uint64_t *bytes, size_t *room);
    /* Can the peer be sent Records yet (STOMP: it has subscribed)? Records for its
     * endpoint wait in the cache until then. NULL: from the handshake on. */
    int (*ready)(const struct conn *c);
    /* A session bound to a pair also takes Records from senders its endpoint has no
     * session for (router_fallback_add): WebSocket, where TR-369 wants that. */
    int pair_fallback;
};

#define CONN_CLOSING 0x1u
#define CONN_NO_FLUSH 0x2u /* socket is dead: free without waiting for output */
#define CONN_REAPING 0x4u
#define CONN_NO_UNBIND 0x8u    /* the router holds no binding of ours (any more) */
#define CONN_IDENTIFIED 0x10u /* handshake complete: full input limits apply */
#define CONN_READ_PAUSED 0x20u /* own output over its bound: not reading until it drains */
#define CONN_LINGER 0x40u      /* goodbye flushed, write side shut: discarding input */
#define CONN_FALLBACK 0x80u    /* registered as a fallback session of its endpoint */
#define CONN_TLS_UP 0x100u     /* TLS handshake completed */
#define CONN_WS_PIPE 0x200u    /* MQTT session behind an MQTT-over-WebSocket one */
#define CONN_BACKLOG 0x400u    /* Records for its endpoint wait in the cache: new ones queue
                                  behind them, and draining output hands them over */

#define CONN_MAX_LEARNED 16

/* A connection limit said no to a new connection (struct conn.refuse): the MTP answers
 * "busy" in its own way (STOMP ERROR at once, MQTT CONNACK to the CONNECT, WebSocket 503
 * to the request, UDS Error TLV at once) and closes with CLOSE_BUSY. */
enum conn_refuse {
    CONN_ADMITTED = 0,
    CONN_REFUSE_RATE,   /* the listener's accept_rate: MQTT v5 0x89 Server busy */
    CONN_REFUSE_SOURCE, /* max_connections_per_source: MQTT v5 0x97 Quota exceeded */
};

struct conn {
    const struct conn_ops *ops;
    struct worker *w;
    struct relay *relay;
    const struct listener_cfg *lcfg;
    uint64_t id;
    struct bufferevent *bev;
    struct ssl_st *ssl;      /* TLS session (owned by bev or libwebsockets), or NULL */
    char *cert_ids;          /* IDs a certificate verified on another connection vouches
                                for ("a\0b\0\0": MQTT over a TLS WebSocket), or NULL */
    unsigned flags;
    enum close_reason close_reason;
    char peer[112];          /* peer address, for logs */
    char *eid;               /* bound endpoint ID (NUL-terminated), or NULL */
    size_t eid_len;
    char *route_peer;        /* pair-key peer ID (UDS with peer_endpoint_id), or NULL */
    size_t route_peer_len;
    uint64_t takeover_of;    /* MQTT: connection this one took the client id from; its
                                endpoint ID passes to this one whatever the policy */
    /* (to_id, from_id) pairs routed here because that sender named this connection's
     * destination for an unknown to_id (STOMP); "to\0from" in one allocation. */
    char *learned[CONN_MAX_LEARNED];
    unsigned n_learned;
    struct event *hs_timer;  /* handshake deadline */
    struct event *close_timer;
    struct conn *reap_next;
    struct conn *table_next; /* worker's id table chain */
    uint64_t records_in, records_out;
    uint32_t warned;         /* drop reasons already logged on this connection */
    enum conn_refuse refuse; /* set at adoption: answer busy and close */
    int src_held;            /* counted in the relay's src_limit under src */
    struct src_key src;
};

/* Allocate a zeroed session of SIZE bytes (an MTP struct with struct conn first), set
 * it up on FD and register it with W. Takes the fd; returns NULL on failure (fd closed). */
struct conn *conn_create(size_t size, const struct conn_ops *ops, struct worker *w,
                         const struct listener_cfg *lcfg, int fd, const char *peer);

/* Set up a session of SIZE bytes for a transport that is not a bufferevent (ops->close
 * and ops->output_queued set) and register it with W, which must be the thread calling.
 * Returns NULL when out of memory. */
struct conn *conn_create_external(size_t size, const struct conn_ops *ops, struct worker *w,
                                  const struct listener_cfg *lcfg, const char *peer);

/* Apply the listener's accept_rate and max_connections_per_source to C, just created for
 * the accepted socket FD: counts C against its source address, or sets c->refuse (the
 * refusal counted and logged). conn_create() calls it; an external transport calls it
 * once its connection exists. */
void conn_admit(struct conn *c, int fd);

/* The transport of an external connection is gone: free it now (owner thread). */
void conn_release(struct conn *c);

/* Bind the endpoint ID (and optional pair peer) to this connection in the router,
 * applying the duplicate policy. Returns 0, CONN_BIND_REFUSED (already connected and
 * refuse-new) or CONN_BIND_NOMEM; the caller reports it on its MTP and closes. */
#define CONN_BIND_REFUSED (-1)
#define CONN_BIND_NOMEM (-2)
int conn_bind_endpoint(struct conn *c, const char *eid, size_t len, const char *peer,
                       size_t peer_len);

/* Route Records for TO from FROM to this connection: FROM addressed this connection's
 * destination for an ID nobody holds (STOMP). Scoped to that sender, so no other
 * sender's Records for TO can be captured this way. */
void conn_learn_route(struct conn *c, struct span to, struct span from);

void conn_handshake_done(struct conn *c);

/* The endpoint ID this connection may bind, from its client certificate (TLS) and the
 * ID its MTP handshake DECLARED (LEN bytes; NULL when it named none). Returns 0 with
 * the ID in OUT (CAP bytes), or -1 when the connection must be refused with the MTP's
 * "not authorized" (logged as identity_refused, counted). For TLS connections (c->ssl
 * set); plain ones keep their MTP's own checks. */
int conn_identity(struct conn *c, const char *declared, size_t len, char *out, size_t cap);

/* How much more C's output may take now: bytes under max_output_queue (counting what the
 * MTP holds) and a number of Records (SIZE_MAX: no count limit). */
void conn_output_room(const struct conn *c, uint64_t *bytes, size_t *records);

/* Mark C as having Records waiting in the cache (ON) or not: while marked, its output
 * draining below half its bound hands them over (worker_drain_cache()). */
void conn_set_backlog(struct conn *c, int on);

/* The TLS settings C's handshake ran with: those of the listener's TLS material in
 * force when it started (SIGHUP may have replaced them since), else the listener's. */
const struct tls_cfg *conn_tls_cfg(const struct conn *c);

/* The password file of C's listener in force (reloaded on SIGHUP), or NULL. */
const struct passwd_db *conn_passwd(const struct conn *c);

/* Start closing: goodbye (with TEXT for the peer, may be NULL), unbind, flush, reap. */
void conn_close(struct conn *c, enum close_reason why, const char *text);

/* Close without the goodbye or flush (the socket is gone). */
void conn_abort(struct conn *c, enum close_reason why);

/* For MTPs, after queueing output in response to input: stop reading from a peer
 * whose own output queue is over max_output_queue (it is not reading what it asked
 * for); reading resumes when the queue has drained to half. */
void conn_check_output_budget(struct conn *c);

/* The connection's output stream is broken (a frame half queued): close it at once. */
void conn_fail(struct conn *c);

size_t conn_output_queued(const struct conn *c);

/* Count a dropped Record and log the first drop per reason on this connection. */
void conn_record_dropped(struct conn *c, enum stats_counter why, const struct rbuf *rb);

/* The canonical description of C for logs: "conn=7 mtp=stomp peer=... eid=..." */
const char *conn_describe(const struct conn *c, char *buf, size_t cap);

struct stats *conn_stats(struct conn *c);

/* Free C now: for the worker's reaper and worker teardown only. */
void conn_free(struct conn *c);

#endif
