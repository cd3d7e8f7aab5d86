/* stats.h — the relay's counters: one array per worker thread, summed when read.
 *
 * Each worker increments only its own array (relaxed atomics: no lock, no shared
 * cache line on the hot path); a reader sums all workers. Names are the labels used in
 * logs and, later, in /metrics. Every drop of a Record has exactly one reason.
 */
#ifndef USPRELAY_STATS_H
#define USPRELAY_STATS_H

#include <stdatomic.h>
#include <stdint.h>

/* X(name) — keep drop reasons prefixed "drop_". */
#define STATS_COUNTERS(X)                                                            \
    X(conn_accepted)          /* connections adopted by a worker */                  \
    X(conn_rejected_limit)    /* accepted and closed at once: max_connections */     \
    X(conn_rejected_source)   /* refused busy: max_connections_per_source */         \
    X(conn_rejected_rate)     /* refused busy: the listener's accept_rate */         \
    X(conn_closed)            /* connections freed, any reason */                    \
    X(conn_identified)        /* connections that bound an endpoint ID */            \
    X(conn_refused_duplicate) /* new connection refused: ID already connected */     \
    X(conn_replaced)          /* old connection closed: ID taken over */             \
    X(conn_protocol_error)    /* closed for an MTP protocol error */                 \
    X(conn_handshake_timeout) /* closed: no handshake in time */                     \
    X(conn_heartbeat_timeout) /* closed: peer silent past its heart-beat */          \
    X(conn_stalled)           /* closed: output pending, peer not reading */         \
    X(conn_auth_failed)       /* closed: bad credentials */                          \
    X(conn_identity_refused)  /* MTP-declared ID not the certificate's */            \
    X(tls_handshakes)         /* TLS handshakes completed */                         \
    X(tls_failed)             /* TLS handshakes failed */                            \
    X(records_in)             /* Records accepted from a connection */               \
    X(records_out)            /* Records queued on a connection */                   \
    X(bytes_in)               /* Record bytes in */                                  \
    X(bytes_out)              /* Record bytes queued out */                          \
    X(records_translated)     /* Connect Records re-issued for another MTP */        \
    X(records_before_handshake) /* UDS Records ignored before the handshake */       \
    X(mqtt_will_ignored)      /* MQTT 3.1.1 will accepted and not kept */            \
    X(mqtt_retain_ignored)    /* MQTT 3.1.1 PUBLISH retain flag not honoured */      \
    X(cache_stored)           /* Records stored in the offline cache */              \
    X(cache_delivered)        /* cached Records handed to a connection */            \
    X(cache_evicted)          /* dropped: the endpoint's cache bound was reached */  \
    X(cache_evicted_global)   /* dropped: the whole cache's bound was reached */     \
    X(cache_expired)          /* dropped: older than cache.ttl */                    \
    X(cache_sar_broken)       /* dropped: their SAR series cannot arrive whole */    \
    X(cache_flushed)          /* dropped: a DisconnectRecord ended their session */  \
    X(drop_malformed)         /* Record failed the header scan */                    \
    X(drop_spoofed)           /* from_id is not the connection's endpoint */         \
    X(drop_self_addressed)    /* to_id == from_id */                                 \
    X(drop_policy)            /* refused by the policy group (policy.h) */           \
    X(drop_no_route)          /* no connected endpoint for to_id */                  \
    X(drop_too_large)         /* above the destination's max_record_size */          \
    X(drop_queue_full)        /* destination's output queue over its bound */        \
    X(drop_not_subscribed)    /* STOMP destination never subscribed */               \
    X(drop_bad_content_type)  /* STOMP SEND with a non-USP content-type */           \
    X(drop_no_memory)         /* allocation failed */

enum stats_counter {
#define STATS_ENUM(n) STAT_##n,
    STATS_COUNTERS(STATS_ENUM)
#undef STATS_ENUM
    STAT_COUNT
};

/* conn_record_dropped() remembers the drop reasons it has logged for a connection as one
 * bit each in a uint32_t, from drop_malformed on. */
_Static_assert(STAT_drop_no_memory - STAT_drop_malformed < 32, "drop reasons fit conn.warned");

struct stats {
    _Atomic uint64_t v[STAT_COUNT];
};

static inline void stats_add(struct stats *s, enum stats_counter c, uint64_t n)
{
    atomic_fetch_add_explicit(&s->v[c], n, memory_order_relaxed);
}

static inline void stats_inc(struct stats *s, enum stats_counter c)
{
    stats_add(s, c, 1);
}

static inline uint64_t stats_get(const struct stats *s, enum stats_counter c)
{
    return atomic_load_explicit(&s->v[c], memory_order_relaxed);
}

const char *stats_name(enum stats_counter c);

#endif
