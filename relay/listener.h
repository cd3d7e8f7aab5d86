/* listener.h — listening sockets from the configuration, accepted on the main thread
 * and handed round-robin to the workers.
 *
 * One acceptor keeps TCP and UNIX sockets on the same path and makes a worker's load
 * its share of connections rather than the kernel's hashing; accepting is cheap next
 * to what the connections then do.
 */
#ifndef USPRELAY_LISTENER_H
#define USPRELAY_LISTENER_H

#include <stddef.h>

#include <event2/event.h>

#include "relay/relay.h"

struct listener;

/* Open every configured listener on BASE. Returns 0, or -1 after logging which one
 * failed and why (nothing left open). */
int listeners_open(struct relay *r, struct event_base *base, struct listener ***out, size_t *n);

/* Stop accepting and close; UNIX socket files are removed. */
void listeners_close(struct listener **ls, size_t n);

#endif
