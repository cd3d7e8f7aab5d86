/* worker.h — a worker thread: one libevent loop, the connections it owns, a mailbox.
 *
 * Other threads never touch a worker's connections; they post messages (adopt an
 * accepted socket, deliver a Record to a connection id, close a connection, stop).
 * The mailbox is a mutex-guarded vector swapped out whole by the owner, woken through
 * an eventfd only when it goes from empty to non-empty. The WebSocket service thread is
 * a worker too, with its own loop and wake-up (worker_new_external).
 */
#ifndef USPRELAY_WORKER_H
#define USPRELAY_WORKER_H

#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "relay/conn.h"
#include "relay/rbuf.h"
#include "relay/router.h"
#include "relay/stats.h"

struct worker;
struct relay;

/* Creates the adopting connection for one listener type. */
typedef struct conn *(*conn_factory)(struct worker *w, int fd, const struct listener_cfg *lcfg,
                                     const char *peer);

struct worker *worker_new(struct relay *r, unsigned index);

/* A worker whose loop is someone else's (the libwebsockets service thread): no event
 * base and no thread of its own. WAKE is called (from any thread) when its mailbox goes
 * from empty to non-empty; the owner then calls worker_drain_mailbox() on its thread.
 * BEGIN_STOP is called there when the stop message arrives. */
struct worker_hooks {
    void (*wake)(void *arg);
    void (*begin_stop)(void *arg);
    void *arg;
};
struct worker *worker_new_external(struct relay *r, unsigned index,
                                   const struct worker_hooks *hooks);

/* Handle one batch of mailbox messages (owner thread). Returns 1 if more are waiting
 * (the wake hook has been called again). */
int worker_drain_mailbox(struct worker *w);
int worker_start(struct worker *w);
/* Ask the worker to close its connections (goodbye + bounded drain) and stop. */
void worker_post_stop(struct worker *w);
void worker_join(struct worker *w);
void worker_free(struct worker *w);

unsigned worker_index(const struct worker *w);
struct event_base *worker_base(struct worker *w);
struct stats *worker_stats(struct worker *w);
struct relay *worker_relay(struct worker *w);
size_t worker_conn_count(const struct worker *w);

/* Hand an accepted socket to W (any thread). On failure the fd is closed. CERT_IDS
 * (taken over, may be NULL): the endpoint IDs a client certificate verified elsewhere
 * vouches for, "id\0id\0\0" (MQTT over a TLS WebSocket). */
void worker_post_adopt(struct worker *w, int fd, conn_factory make,
                       const struct listener_cfg *lcfg, const char *peer, char *cert_ids);

/* Run FN(ARG) on W's thread (any thread may ask). 0, or -1 when out of memory. A call
 * still waiting when W stops is dropped. */
int worker_post_call(struct worker *w, void (*fn)(void *arg), void *arg);

/* Store RB (the reference is handed over) in the relay's cache when caching applies to
 * it (cache enabled, its listener's `cache`, cache.exclude); when its endpoint is
 * connected, that connection's worker is asked to drain. Returns 0 when RB went to the
 * cache (stored, or dropped and counted by the cache), -1 when caching does not apply
 * (RB released: the caller counts its own drop reason). SELF: the calling worker. */
int worker_cache_record(struct worker *self, struct rbuf *rb);

/* Have W hand connection CONN_ID the Records cached for its endpoint (any thread). */
void worker_post_drain(struct worker *w, uint64_t conn_id);

/* On C's own worker: hand C, in order, what the cache holds for its endpoint, as much as
 * its output bound takes now; C stays marked (CONN_BACKLOG) while more waits. */
void worker_drain_cache(struct conn *c);

/* Close connection CONN_ID on W (any thread). */
void worker_post_close(struct worker *w, uint64_t conn_id, enum close_reason why);

/* Deliver RB (one reference handed over) to the connection of route RT, from the
 * worker SELF: directly when it owns it, else through the owner's mailbox. LEARN: the
 * owner also routes RB's to_id to that connection. */
void worker_deliver(struct worker *self, struct route rt, struct rbuf *rb, int learn);

/* For conn.c: register/unregister in the id table, queue for reaping. */
void worker_add_conn(struct worker *w, struct conn *c);
void worker_schedule_reap(struct worker *w, struct conn *c);
struct conn *worker_find_conn(struct worker *w, uint64_t id);
/* Call FN for every connection of W (owner thread); FN may close it, not free it. */
void worker_foreach_conn(struct worker *w, void (*fn)(struct conn *c, void *arg), void *arg);
/* Close every connection of W with its MTP's goodbye for shutdown (owner thread). */
void worker_close_all(struct worker *w);
/* External workers free their connections themselves: take C out of the id table. */
void worker_remove_conn(struct worker *w, struct conn *c);

#endif
