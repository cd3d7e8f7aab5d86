/* rbuf.h — a received Record: one refcounted buffer, read once, never re-encoded.
 *
 * The ingress MTP reads the Record bytes into rbuf->data once and scans the header
 * (rbuf->hdr, spans into data). The same buffer is then queued on the destination
 * connection inside that MTP's framing (evbuffer references, no copy), possibly on
 * another thread; the last reference frees it. Headroom before data lets an MTP that
 * needs its header contiguous with the payload (libwebsockets' LWS_PRE) prepend it
 * without a copy.
 */
#ifndef USPRELAY_RBUF_H
#define USPRELAY_RBUF_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "relay/record.h"

#define RBUF_HEADROOM 32

struct rbuf {
    atomic_uint refs;
    uint32_t len;             /* Record length in bytes */
    uint8_t *data;            /* Record bytes (inside this allocation) */
    struct record_header hdr; /* scanned once at ingress; spans point into data */
    uint64_t rx_ns;           /* monotonic receive time, for latency figures */
    uint8_t origin_mtp;       /* enum mtp_kind of the ingress connection */
    uint8_t no_cache;         /* received on a listener with cache = false */
    uint8_t qos;              /* MQTT QoS it was published with; 1 from the other MTPs,
                                 whose streams are reliable */
    char *reply_to;           /* the sender's own reply address on its MTP, or NULL */
    size_t cap;               /* bytes available from data onwards */
    uint8_t storage[];
};

/* A buffer with room for LEN Record bytes (plus headroom). NULL on allocation failure. */
struct rbuf *rbuf_new(size_t len);

/* Room for CAP Record bytes in a buffer nobody else holds yet (a message being
 * reassembled); data keeps its bytes. Returns the buffer, which may have moved, or NULL
 * (RB unchanged) when out of memory. */
struct rbuf *rbuf_grow(struct rbuf *rb, size_t cap);

/* Set reply_to to a copy of S (LEN bytes); returns 0 or -1. */
int rbuf_set_reply_to(struct rbuf *rb, const char *s, size_t len);

static inline struct rbuf *rbuf_ref(struct rbuf *rb)
{
    atomic_fetch_add_explicit(&rb->refs, 1, memory_order_relaxed);
    return rb;
}

void rbuf_unref(struct rbuf *rb);

/* evbuffer_add_reference() cleanup callback: drops the reference taken for it. */
void rbuf_evbuffer_cleanup(const void *data, size_t len, void *arg);

uint64_t rbuf_now_ns(void);

#endif
