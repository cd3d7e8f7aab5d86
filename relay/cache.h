/* cache.h — the offline cache (TR-369 Appendix: the Caching Function): Records for an
 * endpoint that is not connected, or whose connection is behind, wait here, per
 * destination endpoint ID, and go out in their original order once it is reachable.
 *
 * Units. A queue holds units in arrival order: a unit is one Record, or one SAR series
 * (session-context Records with payload_sar_state BEGIN, INPROCESS…, COMPLETE from one
 * sender in one session, on consecutive sequence_ids). A series keeps the place of its
 * first segment, is delivered only once complete and contiguous, to one connection, and
 * is evicted, expired or dropped whole; segments of a series dropped that way are
 * dropped as they arrive (cache_sar_broken), so no part of it is ever delivered.
 *
 * Bounds. Records and bytes per endpoint and in all, and an age (ttl). Reaching a bound
 * evicts the oldest units first (of that endpoint, or of all); every Record leaving
 * other than by delivery is counted by reason. Bytes are Record bytes.
 *
 * Threads. Any worker may store and take; one mutex guards everything (the cache is off
 * the hot path: cache_has() answers without the lock while nothing is cached at all).
 * The caller keeps per-sender order: a Record is stored only where it would otherwise
 * have been sent, by the thread that would have sent it (forward.c, worker.c).
 */
#ifndef USPRELAY_CACHE_H
#define USPRELAY_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "relay/rbuf.h"
#include "relay/record.h"
#include "relay/router.h"
#include "relay/stats.h"

struct cache;

struct cache_limits {
    uint64_t ttl_ns;
    uint32_t max_records_per_endpoint;
    uint64_t max_bytes_per_endpoint;
    uint64_t max_records;
    uint64_t max_bytes;
};

/* Records taken for delivery, in order. */
struct cache_batch {
    struct rbuf **v;
    size_t n, cap;
};

/* NULL when out of memory. */
struct cache *cache_new(const struct cache_limits *lim);
void cache_free(struct cache *c);

/* Who must say so before a Record may go out (cache_put_held()): a worker that stored it
 * because the destination's mailbox was full, numbered in that worker's order. */
struct cache_hold {
    unsigned worker; /* the worker that stored it */
    unsigned dest;   /* the destination's worker, whose mailbox was full */
    uint64_t seq;
};

/* Store RB (one reference handed over; header scanned) for rb->hdr.to_id at NOW_NS.
 * Returns 0 when stored (it may be evicted later), -1 when dropped at once (a segment of
 * a series already dropped, or out of memory; counted in ST). *NOTIFY (may be NULL) is
 * set to 1 when this is the first Record stored for the endpoint since its last
 * cache_take(): the caller should have a connected endpoint's owner drain it. */
int cache_put(struct cache *c, struct rbuf *rb, uint64_t now_ns, struct stats *st,
              int *notify);

/* cache_put(), but the Record is held back (and with it everything queued behind it)
 * until cache_release() for HOLD: older Records of the same sender may still be on their
 * way to the destination's worker, which stores them in front of this one by receive
 * time, then releases. */
int cache_put_held(struct cache *c, struct rbuf *rb, uint64_t now_ns, struct stats *st,
                   int *notify, struct cache_hold hold);

/* Let the Records of EID held by HOLD.worker for HOLD.dest with a number up to HOLD.seq
 * go out. */
void cache_release(struct cache *c, struct span eid, struct cache_hold hold);

/* Put back RB (one reference handed over), taken by cache_take() but not sent (its
 * connection closed): it goes back in its place by receive time, uncounted. */
void cache_put_back(struct cache *c, struct rbuf *rb, uint64_t now_ns);

/* Are Records cached for EID? Lock-free 0 while the whole cache is empty. */
int cache_has(struct cache *c, struct span eid);

/* What one cache_take() may hand over, and to whom. */
struct cache_take_opts {
    struct route to;     /* the connection taking */
    uint64_t max_bytes;  /* room in its output */
    size_t max_records;
    uint32_t overhead;   /* counted on top of each Record's bytes (the MTP's framing) */
    int force_first;     /* take the first deliverable Record even over MAX_BYTES (the
                            output is empty: the MTP decides whether it fits at all) */
    /* Only Records from senders this accepts (a connection bound to one peer takes only
       that peer's); NULL: all. Called with the cache locked: it may not call the cache. */
    int (*accept)(void *arg, struct span from);
    void *accept_arg;
};

/* Move into B, in order per sender, Records cached for EID that can go to the
 * connection O->to now: at most O->max_records, while they fit O->max_bytes. A series
 * may be handed out over several calls, always to the same connection (if another asks,
 * the rest of it is dropped and counted). A series not yet complete, or a held Record,
 * makes its sender's later Records wait, not the other senders'; expired units are
 * dropped on the way. Returns 1 if Records are still cached for EID, 0 if not; -1 when B
 * could not grow (what was taken is in B). The caller owns the references in B and
 * counts what it delivers (cache_delivered). */
int cache_take(struct cache *c, struct span eid, const struct cache_take_opts *o,
               uint64_t now_ns, struct cache_batch *b, struct stats *st);

/* A DisconnectRecord from ENDPOINT to PEER: drop the session-context Records PEER sent
 * that wait for ENDPOINT (their session is gone). Returns how many were dropped. */
size_t cache_flush_session(struct cache *c, struct span endpoint, struct span peer,
                           struct stats *st);

/* Drop every unit older than the ttl at NOW_NS. For each endpoint that still has
 * Records after that, CHANGED(ARG, eid, from) is called with the sender of its first one
 * (the cache locked: it may not call the cache), so that its connection can be told to
 * drain what the expired unit held up. CHANGED may be NULL. */
void cache_expire(struct cache *c, uint64_t now_ns, struct stats *st,
                  void (*changed)(void *arg, struct span eid, struct span from), void *arg);

/* What is cached now. */
void cache_gauges(struct cache *c, uint64_t *records, uint64_t *bytes, uint64_t *endpoints);

/* Release the references in B and empty it (keeps its array). */
void cache_batch_clear(struct cache_batch *b);
void cache_batch_free(struct cache_batch *b);

#endif
