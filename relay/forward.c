/* forward.c — see forward.h. */
#include "relay/forward.h"

#include <stdio.h>
#include <string.h>

#include "relay/cache.h"
#include "relay/log.h"
#include "relay/policy.h"
#include "relay/relay.h"
#include "relay/router.h"
#include "relay/worker.h"

static int span_eq(struct span a, const char *b, size_t blen)
{
    return a.len == blen && memcmp(a.ptr, b, blen) == 0;
}

int forward_scan(struct conn *src, struct rbuf *rb, char *msg, size_t cap)
{
    rb->rx_ns = rbuf_now_ns();
    rb->origin_mtp = (uint8_t)src->ops->mtp;
    rb->no_cache = !src->lcfg->cache;
    int e = record_scan(rb->data, rb->len, src->relay->cfg->max_endpoint_id_length, &rb->hdr);
    if (e == 0)
        return 0;
    char d[256];
    log_debug("record_malformed", "%s error=%s", conn_describe(src, d, sizeof d),
              record_err_name(e));
    if (msg)
        snprintf(msg, cap, "cannot extract USP Record: %s", record_err_name(e));
    conn_record_dropped(src, STAT_drop_malformed, NULL);
    rbuf_unref(rb);
    return e;
}

int forward_record(struct conn *src, struct rbuf *rb, enum router_table hint_table,
                   struct span dest_hint)
{
    static const struct span none = {NULL, 0};
    struct relay *r = src->relay;
    const struct record_header *h = &rb->hdr;
    struct stats *st = conn_stats(src);
    enum stats_counter drop;
    struct route rt;
    int learn = 0;

    src->records_in++;
    stats_inc(st, STAT_records_in);
    stats_add(st, STAT_bytes_in, rb->len);

    if (r->cfg->from_id_policy != FROM_ID_OFF && !span_eq(h->from_id, src->eid, src->eid_len)) {
        if (r->cfg->from_id_policy == FROM_ID_ENFORCE) {
            drop = STAT_drop_spoofed;
            goto drop;
        }
        char d[256], from[160];
        log_escape(from, sizeof from, h->from_id.ptr, h->from_id.len, 128);
        log_debug("from_id_mismatch", "%s from_id=%s policy=log", conn_describe(src, d, sizeof d),
                  from);
    }
    if (h->to_id.len == h->from_id.len && memcmp(h->to_id.ptr, h->from_id.ptr, h->to_id.len) == 0) {
        drop = STAT_drop_self_addressed;
        goto drop;
    }
    /* With from_id_policy log or off the from_id may not be the sender's: then the
     * connection's own endpoint must be allowed too, so a claimed ID opens nothing. */
    const struct policy_cfg *pol = atomic_load_explicit(&r->policy, memory_order_acquire);
    if (!policy_allows(pol, h->from_id, h->to_id) ||
        (!span_eq(h->from_id, src->eid, src->eid_len) &&
         !policy_allows(pol, span_from_str(src->eid, src->eid_len), h->to_id))) {
        drop = STAT_drop_policy;
        goto drop;
    }
    if (h->type == RECORD_DISCONNECT && r->cache)
        /* The sender's session with to_id is over: what to_id sent it in that session
         * and still waits here would reach a session that no longer exists. */
        cache_flush_session(r->cache, h->from_id, h->to_id, st);
    if (router_lookup(r->router, h->to_id, h->from_id, &rt) != 0 &&
        router_get(r->router, ROUTER_LEARNED, h->to_id, h->from_id, &rt) != 0) {
        /* Unknown to_id: the MTP address may still name a subscriber (STOMP SEND
         * destination, MQTT topic), which then takes this to_id — unless it is the sender. */
        int found = dest_hint.len && router_get(r->router, hint_table, dest_hint, none, &rt) == 0;
        if (!found && dest_hint.len && hint_table == ROUTER_TOPICS)
            found = topic_filters_match(r->topic_filters, dest_hint, &rt) == 0;
        if (!found || (rt.worker == worker_index(src->w) && rt.conn_id == src->id)) {
            if (worker_cache_record(src->w, rbuf_ref(rb)) == 0) {
                rbuf_unref(rb);
                return 0; /* accepted: it waits for to_id to connect */
            }
            drop = STAT_drop_no_route;
            goto drop;
        }
        learn = 1;
    }
    worker_deliver(src->w, rt, rb, learn);
    return 0;

drop:
    conn_record_dropped(src, drop, rb);
    rbuf_unref(rb);
    return (int)drop;
}
