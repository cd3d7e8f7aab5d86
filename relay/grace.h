/* grace.h — freeing what worker threads may still be reading, without locks on their
 * path.
 *
 * SIGHUP swaps pointers the workers read on every Record or handshake (the policy, the
 * password files, the TLS servers). A worker uses such a pointer only within one event
 * callback, so once every worker has run one more callback after the swap, nobody holds
 * the old one any more. grace_defer() asks each worker, through its mailbox, to say so,
 * and the last one to answer runs the release function. The main thread owns the list.
 */
#ifndef USPRELAY_GRACE_H
#define USPRELAY_GRACE_H

struct relay;
struct grace;

/* Run FN(ARG) on one of R's worker threads once every worker has been through its
 * mailbox after this call (main thread only, workers running). When a worker cannot be
 * asked (out of memory) FN waits for grace_flush(). Returns 0, or -1 when out of memory:
 * FN will not run, and what it would release stays allocated. */
int grace_defer(struct relay *r, void (*fn)(void *arg), void *arg);

/* After every worker has stopped: run each FN not yet run, free the bookkeeping. */
void grace_flush(struct relay *r);

#endif
