/* grace.c — deferred release after every worker has passed through its mailbox (see
 * grace.h).
 */
#include "relay/grace.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "relay/log.h"
#include "relay/relay.h"
#include "relay/worker.h"

struct grace {
    struct grace *next; /* main thread's list */
    void (*fn)(void *arg);
    void *arg;
    atomic_uint pending; /* workers yet to answer */
    atomic_int done;     /* FN has run; the record is the main thread's to free */
};

static void run_once(struct grace *g)
{
    g->fn(g->arg);
    atomic_store_explicit(&g->done, 1, memory_order_release);
}

/* On each worker, from its mailbox. */
static void worker_passed(void *arg)
{
    struct grace *g = arg;
    if (atomic_fetch_sub_explicit(&g->pending, 1, memory_order_acq_rel) == 1)
        run_once(g);
}

/* Free the records whose function has run. */
static void prune(struct relay *r)
{
    struct grace **pp = &r->grace;
    while (*pp) {
        struct grace *g = *pp;
        if (atomic_load_explicit(&g->done, memory_order_acquire)) {
            *pp = g->next;
            free(g);
        } else {
            pp = &g->next;
        }
    }
}

int grace_defer(struct relay *r, void (*fn)(void *arg), void *arg)
{
    prune(r);
    struct grace *g = calloc(1, sizeof *g);
    if (!g)
        return -1;
    g->fn = fn;
    g->arg = arg;
    /* One extra count held while posting, so that no worker can finish the record (and
     * run FN) before every worker has been asked. */
    atomic_init(&g->pending, r->n_workers + 1);
    g->next = r->grace;
    r->grace = g;
    unsigned unasked = 0;
    for (unsigned i = 0; i < r->n_workers; i++)
        if (worker_post_call(r->workers[i], worker_passed, g) != 0)
            unasked++;
    if (unasked)
        log_warn("grace_deferred", "workers=%u reason=no_memory note=\"released at exit\"",
                 unasked);
    /* Unasked workers never answer: the count stays above zero until grace_flush(). */
    worker_passed(g);
    return 0;
}

void grace_flush(struct relay *r)
{
    while (r->grace) {
        struct grace *g = r->grace;
        r->grace = g->next;
        if (!atomic_load_explicit(&g->done, memory_order_acquire))
            run_once(g);
        free(g);
    }
}
