/* src_limit.h — limits against connection abuse, shared by every worker: open
 * connections per source address (limits.max_connections_per_source) and the rate at
 * which each listener takes new connections (limits.accept_rate / accept_burst).
 *
 * The table counts open connections per (listener, IP address). An address has an
 * entry only while it holds counted connections, so the table never holds more entries
 * than there are counted connections; it is also capped at the MAX_ENTRIES given at
 * creation (relay.max_connections). Buckets are chosen by a hash keyed with a random
 * secret, so addresses an attacker picks (one IPv6 /64 is plenty) cannot all be made to
 * fall into one chain. IPv4 and IPv4-mapped IPv6 addresses share a key; other IPv6
 * addresses count each on its own (not per prefix). UNIX-socket peers have no key.
 *
 * Each listener ("gate") has a token bucket: ACCEPT_RATE tokens a second, at most BURST
 * banked, one taken per new connection. The bucket starts full.
 *
 * Every call takes one internal mutex: these run once per accepted or closed
 * connection, never per Record. Time is passed in (a monotonic clock, nanoseconds).
 */
#ifndef USPRELAY_SRC_LIMIT_H
#define USPRELAY_SRC_LIMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A source address within one listener. */
struct src_key {
    uint8_t addr[16]; /* IPv6; IPv4 as ::ffff:a.b.c.d */
    uint32_t scope;   /* the listener's index in the configuration */
};

/* The key of peer address SA (LEN bytes) on listener SCOPE. Returns 0, or -1 when SA is
 * not an IPv4/IPv6 address (a UNIX socket: never limited by source). */
int src_key_from_sockaddr(const struct sockaddr *sa, socklen_t len, uint32_t scope,
                          struct src_key *out);

/* A token bucket, for callers that do their own locking (and for tests). Tokens are
 * counted in billionths so that refilling needs no division. */
struct token_bucket {
    uint64_t level;   /* tokens banked, x 1e9 */
    uint64_t cap;     /* burst x 1e9 */
    uint64_t last_ns; /* when level was last brought up to date */
    uint32_t rate;    /* tokens a second */
};

/* Full bucket of BURST tokens (0: RATE) refilled at RATE a second (RATE > 0). */
void token_bucket_init(struct token_bucket *b, uint32_t rate, uint32_t burst, uint64_t now_ns);

/* Take one token at NOW_NS: 1 taken, 0 none left. A clock that went back adds nothing. */
int token_bucket_take(struct token_bucket *b, uint64_t now_ns);

struct src_limit;

/* A table for at most MAX_ENTRIES addresses and N_GATES listeners. NULL when out of
 * memory. */
struct src_limit *src_limit_new(size_t max_entries, size_t n_gates);
void src_limit_free(struct src_limit *t);

#define SRC_LIMIT_OK 0
#define SRC_LIMIT_OVER 1     /* K already has LIMIT connections: refuse this one */
#define SRC_LIMIT_FULL (-1)  /* MAX_ENTRIES addresses are counted already */
#define SRC_LIMIT_NOMEM (-2)

/* Count one more connection from K if it has fewer than LIMIT (> 0). SRC_LIMIT_OK means
 * counted: the caller must src_limit_release() it exactly once. */
int src_limit_acquire(struct src_limit *t, const struct src_key *k, uint32_t limit);

/* One connection from K has closed; its entry goes when it was the last one. */
void src_limit_release(struct src_limit *t, const struct src_key *k);

/* Connections counted for K now, and addresses counted now (tests, logs). */
uint32_t src_limit_count(struct src_limit *t, const struct src_key *k);
size_t src_limit_entries(struct src_limit *t);

/* Take a token from listener GATE's bucket, RATE a second (0: no limit, always 1) with
 * BURST banked (0: RATE); the bucket is created full on first use. 1: admitted, 0: over
 * the rate. */
int src_limit_rate_take(struct src_limit *t, size_t gate, uint32_t rate, uint32_t burst,
                        uint64_t now_ns);

/* 1 when a refusal on listener GATE may be logged at NOW_NS: at most once a second per
 * gate, whichever thread asks. */
int src_limit_log_due(struct src_limit *t, size_t gate, uint64_t now_ns);

#endif
