/* router.h — endpoint ID → route table, shared by every worker thread.
 *
 * A route names the worker that owns a connection and the connection's id; the owner
 * resolves the id itself, so a route can never reach a freed connection. Keys are an
 * endpoint ID, or an (endpoint ID, peer ID) pair for links that belong to one endpoint
 * pair (UDS and WebSocket: obuspa accepts on such a link only Records from the peer it
 * handshook with). A lookup for a Record tries the pair (to_id, from_id) first, then
 * to_id alone. Further tables map STOMP destinations to the connection subscribed,
 * and IDs learned from those destinations to the connection that took them.
 *
 * Reads happen for every Record and writes only on connect/disconnect, so the table is
 * split into shards with a read-write lock each.
 */
#ifndef USPRELAY_ROUTER_H
#define USPRELAY_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "relay/config.h"
#include "relay/record.h"

struct route {
    unsigned worker;
    uint64_t conn_id;
};

enum router_bind_result {
    ROUTER_BOUND = 0,    /* new binding */
    ROUTER_REPLACED = 1, /* took over from *old, which the caller must close */
    ROUTER_REFUSED = 2,  /* *old keeps the ID (refuse-new policy) */
    ROUTER_NOMEM = -1,
};

/* IDS: endpoints bound by their own handshake. DESTS: STOMP destinations subscribed.
 * TOPICS: concrete MQTT topics subscribed. LEARNED: (to_id, from_id) routed to a
 * connection because that sender named its destination or topic; kept apart so a learned
 * ID never counts as connected and always yields to the real endpoint. CLIENT_IDS: MQTT
 * client identifiers, for the takeover MQTT prescribes. */
enum router_table {
    ROUTER_IDS = 0,
    ROUTER_DESTS = 1,
    ROUTER_LEARNED = 2,
    ROUTER_TOPICS = 3,
    ROUTER_CLIENT_IDS = 4,
    ROUTER_TABLES = 5
};

struct router;

struct router *router_new(void);
void router_free(struct router *r);

/* Bind KEY (+ optional PEER, peer_len 0 for none) in TABLE to T. With the same
 * conn_id already bound it is a no-op returning ROUTER_BOUND. */
int router_bind(struct router *r, enum router_table table, struct span key, struct span peer,
                struct route t, enum duplicate_id_policy pol, struct route *old);

/* Remove KEY (+ PEER) if it is still bound to CONN_ID; returns 1 if removed. */
int router_unbind(struct router *r, enum router_table table, struct span key, struct span peer,
                  uint64_t conn_id);

/* Route for a Record to TO from FROM: the pair first, then TO alone, then TO's newest
 * fallback session. 0 or -1. */
int router_lookup(struct router *r, struct span to, struct span from, struct route *out);

/* Fallback sessions: a session of endpoint KEY bound to a pair (WebSocket) that also
 * takes Records from senders KEY has no session for. router_lookup tries them last and
 * picks the newest. Add returns 0 or -1 (no memory); remove forgets CONN_ID's. */
int router_fallback_add(struct router *r, struct span key, struct route t);
void router_fallback_remove(struct router *r, struct span key, uint64_t conn_id);

/* Exact lookup of KEY (+ PEER) in TABLE. 0 or -1. */
int router_get(struct router *r, enum router_table table, struct span key, struct span peer,
               struct route *out);

/* Number of bindings in TABLE. */
size_t router_count(struct router *r, enum router_table table);

static inline struct span span_from_str(const char *s, size_t len)
{
    struct span sp = {(const uint8_t *)s, len};
    return sp;
}

#endif
