/* test_cache.c — the offline cache (relay/cache.c): order, bounds, expiry, SAR series
 * kept and dropped whole, pinning of a series to one connection, held Records, the
 * DisconnectRecord flush and the drain notification. Records are real encoded USP
 * Records, scanned like the relay scans them.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/cache.h"
#include "relay/rbuf.h"
#include "relay/record.h"
#include "relay/record_build.h"

#define SEC 1000000000ull
#define A "os::00256D-agent-a"
#define B "os::00256D-agent-b"
#define CTRL "self::ctrl"
#define CTRL2 "self::ctrl2"

static struct stats st;
static uint64_t rx_clock = 1;

static struct rbuf *make(const struct record_fields *f)
{
    uint8_t *bytes;
    size_t len;
    ck_assert_int_eq(record_build(f, &bytes, &len), 0);
    struct rbuf *rb = rbuf_new(len);
    ck_assert_ptr_nonnull(rb);
    memcpy(rb->data, bytes, len);
    rb->len = (uint32_t)len;
    rb->rx_ns = rx_clock++;
    free(bytes);
    ck_assert_int_eq(record_scan(rb->data, rb->len, 256, &rb->hdr), 0);
    return rb;
}

/* A no-session Record TO <- FROM whose payload is TAG padded to PAD bytes. */
static struct rbuf *plain(const char *to, const char *from, const char *tag, size_t pad)
{
    uint8_t buf[8192];
    size_t n = strlen(tag);
    ck_assert_uint_lt(n + pad, sizeof buf);
    memcpy(buf, tag, n);
    memset(buf + n, 'p', pad);
    struct record_fields f = {.to_id = to, .from_id = from, .type = RECORD_NO_SESSION,
                              .payload = buf, .payload_len = n + pad};
    return make(&f);
}

static struct rbuf *segment(const char *to, const char *from, uint64_t session, uint64_t seq,
                            uint32_t sar, const char *tag)
{
    struct record_fields f = {.to_id = to, .from_id = from, .type = RECORD_SESSION,
                              .payload = (const uint8_t *)tag, .payload_len = strlen(tag),
                              .session_id = session, .sequence_id = seq, .expected_id = seq,
                              .payload_sar_state = sar, .payloadrec_sar_state = sar};
    return make(&f);
}

static struct span sp(const char *s)
{
    return (struct span){(const uint8_t *)s, strlen(s)};
}

static struct cache *new_cache(uint32_t per_records, uint64_t per_bytes, uint64_t records,
                               uint64_t bytes)
{
    memset(&st, 0, sizeof st);
    struct cache_limits lim = {.ttl_ns = 10 * SEC, .max_records_per_endpoint = per_records,
                               .max_bytes_per_endpoint = per_bytes, .max_records = records,
                               .max_bytes = bytes};
    struct cache *c = cache_new(&lim);
    ck_assert_ptr_nonnull(c);
    return c;
}

static struct cache *big_cache(void)
{
    return new_cache(100000, 1ull << 30, 1000000, 1ull << 32);
}

/* Put RB (a reference kept for the comparisons below) at time NOW. */
static struct rbuf *put(struct cache *c, struct rbuf *rb, uint64_t now)
{
    ck_assert_int_eq(cache_put(c, rbuf_ref(rb), now, &st, NULL), 0);
    return rb;
}

static const struct route R1 = {0, 1}, R2 = {1, 2};

static int take(struct cache *c, const char *eid, struct route to, uint64_t max_bytes,
                size_t max_records, uint32_t overhead, uint64_t now, struct cache_batch *b)
{
    struct cache_take_opts o = {.to = to, .max_bytes = max_bytes, .max_records = max_records,
                                .overhead = overhead};
    return cache_take(c, sp(eid), &o, now, b, &st);
}

/* Take everything deliverable for EID to R1 and check it is EXPECT[0..N). */
static int take_expect(struct cache *c, const char *eid, uint64_t now, struct rbuf **expect,
                       size_t n)
{
    struct cache_batch b = {0};
    int more = take(c, eid, R1, UINT64_MAX, SIZE_MAX, 0, now, &b);
    ck_assert_uint_eq(b.n, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(b.v[i] == expect[i], "record %zu out of order", i);
    cache_batch_free(&b);
    return more;
}

static void unref_all(struct rbuf **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rbuf_unref(v[i]);
}

START_TEST(order_and_partial_takes)
{
    struct cache *c = big_cache();
    struct rbuf *v[100];
    ck_assert_int_eq(cache_has(c, sp(A)), 0);
    for (int i = 0; i < 100; i++) {
        char tag[32];
        snprintf(tag, sizeof tag, "r%d", i);
        v[i] = put(c, plain(A, i % 2 ? CTRL : CTRL2, tag, 0), SEC);
    }
    ck_assert_int_eq(cache_has(c, sp(A)), 1);
    ck_assert_int_eq(cache_has(c, sp(B)), 0);
    /* Room for three Records of this size: a prefix, then the rest. */
    struct cache_batch b = {0};
    int more = take(c, A, R1, 3 * (uint64_t)v[0]->len + 2, SIZE_MAX, 0, SEC, &b);
    ck_assert_int_eq(more, 1);
    ck_assert_uint_eq(b.n, 3);
    for (int i = 0; i < 3; i++)
        ck_assert_ptr_eq(b.v[i], v[i]);
    cache_batch_clear(&b);
    /* A record count limit, and a per-record overhead. */
    more = take(c, A, R1, UINT64_MAX, 5, 0, SEC, &b);
    ck_assert_uint_eq(b.n, 5);
    ck_assert_ptr_eq(b.v[0], v[3]);
    cache_batch_clear(&b);
    more = take(c, A, R1, (uint64_t)v[8]->len + 99, SIZE_MAX, 100, SEC, &b);
    ck_assert_uint_eq(b.n, 0); /* the next Record plus its overhead does not fit */
    ck_assert_int_eq(more, 1);
    ck_assert_int_eq(take_expect(c, A, SEC, v + 8, 92), 0);
    ck_assert_int_eq(cache_has(c, sp(A)), 0);
    ck_assert_uint_eq(stats_get(&st, STAT_cache_stored), 100);
    uint64_t recs, bytes, eps;
    cache_gauges(c, &recs, &bytes, &eps);
    ck_assert_uint_eq(recs + bytes + eps, 0);
    cache_batch_free(&b);
    unref_all(v, 100);
    cache_free(c);
}
END_TEST

START_TEST(endpoints_are_independent_and_notify)
{
    struct cache *c = big_cache();
    int notify = -1;
    struct rbuf *a1 = plain(A, CTRL, "a1", 0), *b1 = plain(B, CTRL, "b1", 0);
    struct rbuf *a2 = plain(A, CTRL, "a2", 0);
    ck_assert_int_eq(cache_put(c, rbuf_ref(a1), SEC, &st, &notify), 0);
    ck_assert_int_eq(notify, 1);
    ck_assert_int_eq(cache_put(c, rbuf_ref(a2), SEC, &st, &notify), 0);
    ck_assert_int_eq(notify, 0); /* already told, nobody took since */
    ck_assert_int_eq(cache_put(c, rbuf_ref(b1), SEC, &st, &notify), 0);
    ck_assert_int_eq(notify, 1); /* another endpoint */
    struct rbuf *only_b[] = {b1};
    ck_assert_int_eq(take_expect(c, B, SEC, only_b, 1), 0);
    struct rbuf *both_a[] = {a1, a2};
    ck_assert_int_eq(take_expect(c, A, SEC, both_a, 2), 0);
    struct rbuf *a3 = plain(A, CTRL, "a3", 0);
    ck_assert_int_eq(cache_put(c, rbuf_ref(a3), SEC, &st, &notify), 0);
    ck_assert_int_eq(notify, 1); /* a take happened: tell again */
    rbuf_unref(a1);
    rbuf_unref(a2);
    rbuf_unref(a3);
    rbuf_unref(b1);
    cache_free(c); /* a3 still cached: freed here (the ASan run checks) */
}
END_TEST

START_TEST(bounds_evict_oldest)
{
    /* Per endpoint 10 Records; in all 12. */
    struct cache *c = new_cache(10, 1ull << 20, 12, 1ull << 30);
    struct rbuf *a[15], *b[5];
    for (int i = 0; i < 15; i++)
        a[i] = put(c, plain(A, CTRL, "a", 0), SEC);
    ck_assert_uint_eq(stats_get(&st, STAT_cache_evicted), 5);
    for (int i = 0; i < 5; i++)
        b[i] = put(c, plain(B, CTRL, "b", 0), SEC);
    /* 15 cached against 12: the 3 oldest of all, A's, go. */
    ck_assert_uint_eq(stats_get(&st, STAT_cache_evicted_global), 3);
    uint64_t recs, bytes, eps;
    cache_gauges(c, &recs, &bytes, &eps);
    ck_assert_uint_eq(recs, 12);
    ck_assert_uint_eq(eps, 2);
    ck_assert_int_eq(take_expect(c, A, SEC, a + 8, 7), 0);
    ck_assert_int_eq(take_expect(c, B, SEC, b, 5), 0);
    unref_all(a, 15);
    unref_all(b, 5);
    cache_free(c);

    /* Bytes: per endpoint room for 3 Records of ~1100 bytes. */
    struct rbuf *probe = plain(A, CTRL, "x", 1000);
    c = new_cache(1000, 3 * (uint64_t)probe->len + 10, 1000, 1ull << 30);
    struct rbuf *big[6];
    for (int i = 0; i < 6; i++)
        big[i] = put(c, plain(A, CTRL, "x", 1000), SEC);
    ck_assert_uint_eq(stats_get(&st, STAT_cache_evicted), 3);
    ck_assert_int_eq(take_expect(c, A, SEC, big + 3, 3), 0);
    unref_all(big, 6);
    rbuf_unref(probe);
    cache_free(c);
}
END_TEST

START_TEST(ttl_expiry)
{
    struct cache *c = big_cache();
    struct rbuf *old1 = put(c, plain(A, CTRL, "old1", 0), 1 * SEC);
    struct rbuf *old2 = put(c, plain(B, CTRL, "old2", 0), 2 * SEC);
    struct rbuf *fresh = put(c, plain(A, CTRL, "fresh", 0), 8 * SEC);
    cache_expire(c, 11 * SEC + 1, &st, NULL, NULL); /* ttl 10 s: old1 only */
    ck_assert_uint_eq(stats_get(&st, STAT_cache_expired), 1);
    /* take drops expired heads on the way: old2 at 12 s. */
    ck_assert_int_eq(take_expect(c, B, 12 * SEC + 1, NULL, 0), 0);
    ck_assert_uint_eq(stats_get(&st, STAT_cache_expired), 2);
    struct rbuf *f[] = {fresh};
    ck_assert_int_eq(take_expect(c, A, 12 * SEC, f, 1), 0);
    rbuf_unref(old1);
    rbuf_unref(old2);
    rbuf_unref(fresh);
    cache_free(c);
}
END_TEST

/* A 50-segment series interleaved with another sender's Records: until COMPLETE only
 * the other sender's Records go (an incomplete series holds up its own sender only);
 * then the series whole, and the rest after it. */
START_TEST(sar_series_whole_and_in_place)
{
    struct cache *c = big_cache();
    struct rbuf *segs[50], *noise[26], *expect[76];
    size_t nn = 0, early = 0;
    noise[nn++] = put(c, plain(A, CTRL2, "n0", 0), SEC);
    for (uint64_t k = 0; k < 50; k++) {
        uint32_t sar = k == 0 ? 1 : k == 49 ? 3 : 2;
        segs[k] = put(c, segment(A, CTRL, 9, 100 + k, sar, "seg"), SEC);
        if (k % 2)
            noise[nn++] = put(c, plain(A, CTRL2, "noise", 0), SEC);
        if (k == 30) { /* incomplete: the other sender's Records only */
            ck_assert_int_eq(take_expect(c, A, SEC, noise, nn), 1);
            early = nn;
        }
    }
    memcpy(expect, segs, sizeof segs);
    memcpy(expect + 50, noise + early, (nn - early) * sizeof *noise);
    ck_assert_int_eq(take_expect(c, A, SEC, expect, 50 + nn - early), 0);
    ck_assert_uint_eq(stats_get(&st, STAT_cache_sar_broken), 0);
    unref_all(segs, 50);
    unref_all(noise, nn);
    cache_free(c);
}
END_TEST

START_TEST(sar_gap_drops_series_whole)
{
    struct cache *c = big_cache();
    struct rbuf *n1 = put(c, plain(A, CTRL, "n1", 0), SEC);
    struct rbuf *s1 = put(c, segment(A, CTRL, 5, 1, 1, "s1"), SEC);
    struct rbuf *s2 = put(c, segment(A, CTRL, 5, 2, 2, "s2"), SEC);
    /* 3 missing: the cached part goes at once, the rest on arrival. */
    struct rbuf *s4 = segment(A, CTRL, 5, 4, 2, "s4");
    ck_assert_int_eq(cache_put(c, rbuf_ref(s4), SEC, &st, NULL), -1);
    ck_assert_uint_eq(stats_get(&st, STAT_cache_sar_broken), 3);
    struct rbuf *s5 = segment(A, CTRL, 5, 5, 3, "s5");
    ck_assert_int_eq(cache_put(c, rbuf_ref(s5), SEC, &st, NULL), -1);
    ck_assert_uint_eq(stats_get(&st, STAT_cache_sar_broken), 4);
    /* A new series in that session is fine. */
    struct rbuf *g1 = put(c, segment(A, CTRL, 5, 6, 1, "g1"), SEC);
    struct rbuf *g2 = put(c, segment(A, CTRL, 5, 7, 3, "g2"), SEC);
    struct rbuf *n2 = put(c, plain(A, CTRL, "n2", 0), SEC);
    struct rbuf *expect[] = {n1, g1, g2, n2};
    ck_assert_int_eq(take_expect(c, A, SEC, expect, 4), 0);
    struct rbuf *all[] = {n1, s1, s2, s4, s5, g1, g2, n2};
    unref_all(all, 8);
    cache_free(c);
}
END_TEST

START_TEST(sar_evicted_incomplete_marks_broken)
{
    struct cache *c = new_cache(3, 1ull << 20, 1000, 1ull << 30);
    struct rbuf *s1 = put(c, segment(A, CTRL, 5, 1, 1, "s1"), SEC);
    struct rbuf *s2 = put(c, segment(A, CTRL, 5, 2, 2, "s2"), SEC);
    struct rbuf *s3 = put(c, segment(A, CTRL, 5, 3, 2, "s3"), SEC);
    /* A fourth Record for A: the series, oldest, is evicted whole (3 Records). */
    struct rbuf *n1 = put(c, plain(A, CTRL2, "n1", 0), SEC);
    ck_assert_uint_eq(stats_get(&st, STAT_cache_evicted), 3);
    struct rbuf *s4 = segment(A, CTRL, 5, 4, 3, "s4");
    ck_assert_int_eq(cache_put(c, rbuf_ref(s4), SEC, &st, NULL), -1);
    ck_assert_uint_eq(stats_get(&st, STAT_cache_sar_broken), 1);
    struct rbuf *expect[] = {n1};
    ck_assert_int_eq(take_expect(c, A, SEC, expect, 1), 0);
    struct rbuf *all[] = {s1, s2, s3, n1, s4};
    unref_all(all, 5);
    cache_free(c);
}
END_TEST

/* A series handed out in part belongs to that connection: another one asking gets the
 * rest dropped, the first one continues where it stopped. */
START_TEST(series_pinned_to_one_connection)
{
    for (int other_asks = 0; other_asks < 2; other_asks++) {
        struct cache *c = big_cache();
        struct rbuf *s[4];
        for (uint64_t k = 0; k < 4; k++)
            s[k] = put(c, segment(A, CTRL, 3, k + 1, k == 0 ? 1 : k == 3 ? 3 : 2, "seg"),
                       SEC);
        struct rbuf *after = put(c, plain(A, CTRL2, "after", 0), SEC);
        struct cache_batch b = {0};
        ck_assert_int_eq(take(c, A, R1, 2 * (uint64_t)s[0]->len + 1, SIZE_MAX, 0, SEC, &b), 1);
        ck_assert_uint_eq(b.n, 2);
        cache_batch_clear(&b);
        if (other_asks) {
            ck_assert_int_eq(take(c, A, R2, UINT64_MAX, SIZE_MAX, 0, SEC, &b),
                             0);
            ck_assert_uint_eq(b.n, 1);
            ck_assert_ptr_eq(b.v[0], after);
            ck_assert_uint_eq(stats_get(&st, STAT_cache_sar_broken), 2);
        } else {
            struct rbuf *rest[] = {s[2], s[3], after};
            ck_assert_int_eq(take_expect(c, A, SEC, rest, 3), 0);
        }
        cache_batch_free(&b);
        unref_all(s, 4);
        rbuf_unref(after);
        cache_free(c);
    }
}
END_TEST

START_TEST(held_until_released)
{
    struct cache *c = big_cache();
    struct cache_hold h = {1, 3, 7};
    /* Received later, stored first (by the sender's worker, mailbox full)... */
    struct rbuf *late = plain(A, CTRL, "late", 0);
    struct rbuf *early = plain(A, CTRL, "early", 0);
    early->rx_ns = late->rx_ns - 1;
    ck_assert_int_eq(cache_put_held(c, rbuf_ref(late), SEC, &st, NULL, h), 0);
    ck_assert_int_eq(take_expect(c, A, SEC, NULL, 0), 1); /* held: nothing yet */
    /* ...then the earlier one, by the destination's worker: in front by receive time. */
    ck_assert_int_eq(cache_put(c, rbuf_ref(early), SEC, &st, NULL), 0);
    struct rbuf *first[] = {early};
    ck_assert_int_eq(take_expect(c, A, SEC, first, 1), 1);
    /* Another worker's, one for another destination worker, an older number: none of
     * them is this hold. */
    struct cache_hold other = {2, 3, 100}, elsewhere = {1, 4, 100}, older = {1, 3, 6};
    cache_release(c, sp(A), other);
    cache_release(c, sp(A), elsewhere);
    cache_release(c, sp(A), older);
    ck_assert_int_eq(take_expect(c, A, SEC, NULL, 0), 1);
    cache_release(c, sp(A), h);
    struct rbuf *second[] = {late};
    ck_assert_int_eq(take_expect(c, A, SEC, second, 1), 0);
    rbuf_unref(late);
    rbuf_unref(early);
    cache_free(c);
}
END_TEST

START_TEST(disconnect_flushes_session_records)
{
    struct cache *c = big_cache();
    struct rbuf *stale1 = put(c, segment(A, CTRL, 1, 1, 0, "stale1"), SEC);
    struct rbuf *keep1 = put(c, plain(A, CTRL, "no session", 0), SEC);
    struct rbuf *keep2 = put(c, segment(A, CTRL2, 1, 1, 0, "other sender"), SEC);
    struct rbuf *stale2 = put(c, segment(A, CTRL, 1, 2, 0, "stale2"), SEC);
    struct rbuf *other_ep = put(c, segment(B, CTRL, 1, 1, 0, "to B"), SEC);
    ck_assert_uint_eq(cache_flush_session(c, sp(A), sp(CTRL), &st), 2);
    ck_assert_uint_eq(stats_get(&st, STAT_cache_flushed), 2);
    struct rbuf *expect[] = {keep1, keep2};
    ck_assert_int_eq(take_expect(c, A, SEC, expect, 2), 0);
    struct rbuf *eb[] = {other_ep};
    ck_assert_int_eq(take_expect(c, B, SEC, eb, 1), 0);
    struct rbuf *all[] = {stale1, keep1, keep2, stale2, other_ep};
    unref_all(all, 5);
    cache_free(c);
}
END_TEST

/* Segments 2 and 3 overflowed (held) while 1 was still in the destination's mailbox:
 * 1 joins them in front, and the series goes whole once released. */
START_TEST(series_completed_from_the_front)
{
    struct cache *c = big_cache();
    struct cache_hold h = {1, 0, 1};
    struct rbuf *s1 = segment(A, CTRL, 4, 1, 1, "s1");
    struct rbuf *s2 = segment(A, CTRL, 4, 2, 2, "s2");
    struct rbuf *s3 = segment(A, CTRL, 4, 3, 3, "s3");
    ck_assert_int_eq(cache_put_held(c, rbuf_ref(s2), SEC, &st, NULL, h), 0);
    h.seq = 2;
    ck_assert_int_eq(cache_put_held(c, rbuf_ref(s3), SEC, &st, NULL, h), 0);
    ck_assert_int_eq(cache_put(c, rbuf_ref(s1), SEC, &st, NULL), 0);
    ck_assert_int_eq(take_expect(c, A, SEC, NULL, 0), 1);
    cache_release(c, sp(A), h);
    struct rbuf *all[] = {s1, s2, s3};
    ck_assert_int_eq(take_expect(c, A, SEC, all, 3), 0);
    ck_assert_uint_eq(stats_get(&st, STAT_cache_sar_broken), 0);
    unref_all(all, 3);
    cache_free(c);
}
END_TEST

static int only_ctrl(void *arg, struct span from)
{
    (void)arg;
    return from.len == strlen(CTRL) && memcmp(from.ptr, CTRL, from.len) == 0;
}

/* A connection bound to one peer takes only that peer's Records; a Record too large for
 * the room goes alone when the output is empty; a clock read before a store does not
 * expire it. */
START_TEST(accept_force_first_and_clock)
{
    struct cache *c = big_cache();
    struct rbuf *x = put(c, plain(A, CTRL2, "other peer", 0), 5 * SEC);
    struct rbuf *big = put(c, plain(A, CTRL, "big", 4000), 5 * SEC);
    struct rbuf *small = put(c, plain(A, CTRL, "small", 0), 5 * SEC);
    struct cache_take_opts o = {.to = R1, .max_bytes = 1000, .max_records = SIZE_MAX,
                                .accept = only_ctrl};
    struct cache_batch b = {0};
    /* 4 s "before" the store, as a worker that read the clock before the lock. */
    ck_assert_int_eq(cache_take(c, sp(A), &o, 1 * SEC, &b, &st), 1);
    ck_assert_uint_eq(b.n, 0); /* big does not fit, nothing forces it */
    o.force_first = 1;
    ck_assert_int_eq(cache_take(c, sp(A), &o, 1 * SEC, &b, &st), 1);
    ck_assert_uint_eq(b.n, 1); /* only the first goes over the room */
    ck_assert_ptr_eq(b.v[0], big);
    cache_batch_clear(&b);
    ck_assert_int_eq(cache_take(c, sp(A), &o, 1 * SEC, &b, &st), 1);
    ck_assert_uint_eq(b.n, 1);
    ck_assert_ptr_eq(b.v[0], small);
    ck_assert_uint_eq(stats_get(&st, STAT_cache_expired), 0);
    cache_batch_free(&b);
    struct rbuf *rest[] = {x};
    ck_assert_int_eq(take_expect(c, A, 5 * SEC, rest, 1), 0);
    rbuf_unref(x);
    rbuf_unref(big);
    rbuf_unref(small);
    cache_free(c);
}
END_TEST

static int changed_calls;
static char changed_from[64];

static void on_changed(void *arg, struct span eid, struct span from)
{
    (void)arg;
    ck_assert(eid.len == strlen(A) && memcmp(eid.ptr, A, eid.len) == 0);
    changed_calls++;
    snprintf(changed_from, sizeof changed_from, "%.*s", (int)from.len, from.ptr);
}

/* An expired incomplete series held up its sender: expiry says who may go now. */
START_TEST(expiry_reports_what_it_unblocks)
{
    struct cache *c = big_cache();
    struct rbuf *s1 = put(c, segment(A, CTRL, 4, 1, 1, "never completed"), 1 * SEC);
    struct rbuf *n1 = put(c, plain(A, CTRL, "behind it", 0), 5 * SEC);
    ck_assert_int_eq(take_expect(c, A, 5 * SEC, NULL, 0), 1);
    changed_calls = 0;
    cache_expire(c, 11 * SEC + 1, &st, on_changed, NULL);
    ck_assert_int_eq(changed_calls, 1);
    ck_assert_str_eq(changed_from, CTRL);
    struct rbuf *expect[] = {n1};
    ck_assert_int_eq(take_expect(c, A, 11 * SEC + 1, expect, 1), 0);
    rbuf_unref(s1);
    rbuf_unref(n1);
    cache_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cache");
    TCase *tc = tcase_create("cache");
    tcase_add_test(tc, order_and_partial_takes);
    tcase_add_test(tc, endpoints_are_independent_and_notify);
    tcase_add_test(tc, bounds_evict_oldest);
    tcase_add_test(tc, ttl_expiry);
    tcase_add_test(tc, sar_series_whole_and_in_place);
    tcase_add_test(tc, sar_gap_drops_series_whole);
    tcase_add_test(tc, sar_evicted_incomplete_marks_broken);
    tcase_add_test(tc, series_pinned_to_one_connection);
    tcase_add_test(tc, held_until_released);
    tcase_add_test(tc, disconnect_flushes_session_records);
    tcase_add_test(tc, series_completed_from_the_front);
    tcase_add_test(tc, accept_force_first_and_clock);
    tcase_add_test(tc, expiry_reports_what_it_unblocks);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
