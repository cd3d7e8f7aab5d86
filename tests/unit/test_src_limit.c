/* test_src_limit.c — Check suite for relay/src_limit.c: keys from socket addresses
 * (IPv4, IPv6, mapped, UNIX), counting up to the limit and back, entries freed with the
 * last connection, the table bound, listeners kept apart, the token bucket (time passed
 * explicitly), the per-listener gates and their log throttle, and concurrent use. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "relay/src_limit.h"

#define S 1000000000ull /* ns */

static struct src_key v4(const char *a, uint32_t scope)
{
    struct sockaddr_in in;
    memset(&in, 0, sizeof in);
    in.sin_family = AF_INET;
    in.sin_port = htons(1234);
    ck_assert_int_eq(inet_pton(AF_INET, a, &in.sin_addr), 1);
    struct src_key k;
    ck_assert_int_eq(src_key_from_sockaddr((struct sockaddr *)&in, sizeof in, scope, &k), 0);
    return k;
}

static struct src_key v6(const char *a, uint16_t port, uint32_t scope)
{
    struct sockaddr_in6 in6;
    memset(&in6, 0, sizeof in6);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    ck_assert_int_eq(inet_pton(AF_INET6, a, &in6.sin6_addr), 1);
    struct src_key k;
    ck_assert_int_eq(src_key_from_sockaddr((struct sockaddr *)&in6, sizeof in6, scope, &k), 0);
    return k;
}

START_TEST(test_keys)
{
    struct src_key a = v4("192.0.2.7", 0), b = v4("192.0.2.7", 0);
    ck_assert_mem_eq(&a, &b, sizeof a);
    /* IPv4 and its IPv4-mapped IPv6 form are one source; the port is not part of it. */
    struct src_key m = v6("::ffff:192.0.2.7", 999, 0);
    ck_assert_mem_eq(&a, &m, sizeof a);
    struct src_key c = v4("192.0.2.8", 0);
    ck_assert_mem_ne(a.addr, c.addr, 16);
    struct src_key x = v6("2001:db8::1", 1, 3), y = v6("2001:db8::1", 2, 3),
                   z = v6("2001:db8::2", 1, 3);
    ck_assert_mem_eq(&x, &y, sizeof x);
    ck_assert_mem_ne(x.addr, z.addr, 16); /* per address, not per prefix */
    ck_assert_uint_eq(x.scope, 3);

    struct sockaddr_un un = {.sun_family = AF_UNIX};
    snprintf(un.sun_path, sizeof un.sun_path, "/run/x.sock");
    struct src_key k;
    ck_assert_int_eq(src_key_from_sockaddr((struct sockaddr *)&un, sizeof un, 0, &k), -1);
    /* A truncated address is no address. */
    struct sockaddr_in in = {.sin_family = AF_INET};
    ck_assert_int_eq(src_key_from_sockaddr((struct sockaddr *)&in, 4, 0, &k), -1);
}
END_TEST

START_TEST(test_limit_and_release)
{
    struct src_limit *t = src_limit_new(100, 1);
    ck_assert_ptr_nonnull(t);
    struct src_key a = v4("10.0.0.1", 0), b = v4("10.0.0.2", 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(src_limit_acquire(t, &a, 3), SRC_LIMIT_OK);
    ck_assert_int_eq(src_limit_acquire(t, &a, 3), SRC_LIMIT_OVER);
    ck_assert_uint_eq(src_limit_count(t, &a), 3);
    /* Another address is not affected. */
    ck_assert_int_eq(src_limit_acquire(t, &b, 3), SRC_LIMIT_OK);
    ck_assert_uint_eq(src_limit_entries(t), 2);
    /* One closes: one more may open. */
    src_limit_release(t, &a);
    ck_assert_uint_eq(src_limit_count(t, &a), 2);
    ck_assert_int_eq(src_limit_acquire(t, &a, 3), SRC_LIMIT_OK);
    ck_assert_int_eq(src_limit_acquire(t, &a, 3), SRC_LIMIT_OVER);
    /* A larger limit (another listener's setting) admits more of the same key. */
    ck_assert_int_eq(src_limit_acquire(t, &a, 4), SRC_LIMIT_OK);
    for (int i = 0; i < 4; i++)
        src_limit_release(t, &a);
    src_limit_release(t, &b);
    /* Entries exist only while their address has connections. */
    ck_assert_uint_eq(src_limit_entries(t), 0);
    ck_assert_uint_eq(src_limit_count(t, &a), 0);
    /* Releasing what is not counted changes nothing. */
    src_limit_release(t, &a);
    ck_assert_uint_eq(src_limit_entries(t), 0);
    ck_assert_int_eq(src_limit_acquire(t, &a, 1), SRC_LIMIT_OK);
    ck_assert_int_eq(src_limit_acquire(t, &a, 1), SRC_LIMIT_OVER);
    src_limit_release(t, &a);
    src_limit_free(t);
}
END_TEST

START_TEST(test_scopes_apart)
{
    struct src_limit *t = src_limit_new(100, 2);
    struct src_key a0 = v4("10.0.0.1", 0), a1 = v4("10.0.0.1", 1);
    ck_assert_int_eq(src_limit_acquire(t, &a0, 1), SRC_LIMIT_OK);
    ck_assert_int_eq(src_limit_acquire(t, &a0, 1), SRC_LIMIT_OVER);
    ck_assert_int_eq(src_limit_acquire(t, &a1, 1), SRC_LIMIT_OK); /* another listener */
    ck_assert_uint_eq(src_limit_entries(t), 2);
    src_limit_release(t, &a0);
    src_limit_release(t, &a1);
    ck_assert_uint_eq(src_limit_entries(t), 0);
    src_limit_free(t);
}
END_TEST

/* Many addresses: the table grows past its first buckets, every entry stays findable,
 * and the bound holds. */
START_TEST(test_bound_and_growth)
{
    enum { N = 5000 };
    struct src_limit *t = src_limit_new(N, 1);
    static struct src_key keys[N + 1];
    for (unsigned i = 0; i <= N; i++) {
        char a[64];
        snprintf(a, sizeof a, "2001:db8::%x:%x", i >> 8, i & 0xff);
        keys[i] = v6(a, 1, 0);
    }
    for (unsigned i = 0; i < N; i++)
        ck_assert_int_eq(src_limit_acquire(t, &keys[i], 2), SRC_LIMIT_OK);
    ck_assert_uint_eq(src_limit_entries(t), N);
    /* A new address past the bound is not counted; known ones still are. */
    ck_assert_int_eq(src_limit_acquire(t, &keys[N], 2), SRC_LIMIT_FULL);
    ck_assert_int_eq(src_limit_acquire(t, &keys[17], 2), SRC_LIMIT_OK);
    ck_assert_int_eq(src_limit_acquire(t, &keys[17], 2), SRC_LIMIT_OVER);
    for (unsigned i = 0; i < N; i++)
        ck_assert_uint_eq(src_limit_count(t, &keys[i]), i == 17 ? 2 : 1);
    src_limit_release(t, &keys[17]);
    for (unsigned i = 0; i < N; i++)
        src_limit_release(t, &keys[i]);
    ck_assert_uint_eq(src_limit_entries(t), 0);
    ck_assert_int_eq(src_limit_acquire(t, &keys[N], 2), SRC_LIMIT_OK);
    src_limit_release(t, &keys[N]);
    src_limit_free(t); /* frees entries left, if any (ASan checks) */
}
END_TEST

START_TEST(test_free_with_entries)
{
    struct src_limit *t = src_limit_new(10, 1);
    struct src_key a = v4("10.0.0.1", 0), b = v4("10.0.0.2", 0);
    ck_assert_int_eq(src_limit_acquire(t, &a, 5), SRC_LIMIT_OK);
    ck_assert_int_eq(src_limit_acquire(t, &b, 5), SRC_LIMIT_OK);
    src_limit_free(t); /* LeakSanitizer would report the entries */
}
END_TEST

START_TEST(test_bucket)
{
    struct token_bucket b;
    uint64_t t0 = 1000 * S;
    token_bucket_init(&b, 2, 4, t0);
    /* Full at start: a burst of 4, then nothing. */
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(token_bucket_take(&b, t0), 1);
    ck_assert_int_eq(token_bucket_take(&b, t0), 0);
    /* 2 a second: one token every 500 ms, none before. */
    ck_assert_int_eq(token_bucket_take(&b, t0 + S / 2 - 1), 0);
    ck_assert_int_eq(token_bucket_take(&b, t0 + S / 2), 1);
    ck_assert_int_eq(token_bucket_take(&b, t0 + S / 2), 0);
    /* Partial refills add up. */
    ck_assert_int_eq(token_bucket_take(&b, t0 + S / 2 + S / 4), 0);
    ck_assert_int_eq(token_bucket_take(&b, t0 + S), 1);
    /* A long idle time fills it to the burst, no further (and does not overflow). */
    uint64_t t1 = t0 + 100000 * S;
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(token_bucket_take(&b, t1), 1);
    ck_assert_int_eq(token_bucket_take(&b, t1), 0);
    /* A clock that went back adds nothing, and the next second still refills. */
    ck_assert_int_eq(token_bucket_take(&b, t1 - 10 * S), 0);
    ck_assert_int_eq(token_bucket_take(&b, t1 + S / 2), 1);

    /* Burst 0 means the rate. */
    token_bucket_init(&b, 3, 0, 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(token_bucket_take(&b, 0), 1);
    ck_assert_int_eq(token_bucket_take(&b, 0), 0);
    /* Over one second at 3/s: exactly 3 more. */
    int got = 0;
    for (uint64_t t = 0; t <= S; t += S / 100)
        got += token_bucket_take(&b, t);
    ck_assert_int_eq(got, 3);

    /* Large rates and bursts stay exact. */
    token_bucket_init(&b, 1000000, 1000000, 5);
    ck_assert_int_eq(token_bucket_take(&b, UINT64_MAX / 2), 1);
    ck_assert_uint_eq(b.level, b.cap - S);
}
END_TEST

START_TEST(test_gates)
{
    struct src_limit *t = src_limit_new(10, 2);
    uint64_t now = 50 * S;
    /* No rate: always admitted; a gate that does not exist is not limited either. */
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(src_limit_rate_take(t, 0, 0, 0, now), 1);
    ck_assert_int_eq(src_limit_rate_take(t, 7, 1, 1, now), 1);
    /* Gate 1 at 1/s, burst 2; gate 0 unaffected. */
    ck_assert_int_eq(src_limit_rate_take(t, 1, 1, 2, now), 1);
    ck_assert_int_eq(src_limit_rate_take(t, 1, 1, 2, now), 1);
    ck_assert_int_eq(src_limit_rate_take(t, 1, 1, 2, now), 0);
    ck_assert_int_eq(src_limit_rate_take(t, 0, 5, 0, now), 1);
    ck_assert_int_eq(src_limit_rate_take(t, 1, 1, 2, now + S), 1);
    ck_assert_int_eq(src_limit_rate_take(t, 1, 1, 2, now + S), 0);

    /* Log lines: once a second per gate. */
    ck_assert_int_eq(src_limit_log_due(t, 0, now), 1);
    ck_assert_int_eq(src_limit_log_due(t, 0, now + S / 2), 0); /* same second */
    ck_assert_int_eq(src_limit_log_due(t, 0, now + 1), 0);
    ck_assert_int_eq(src_limit_log_due(t, 1, now + 1), 1);
    ck_assert_int_eq(src_limit_log_due(t, 0, now + S), 1);
    ck_assert_int_eq(src_limit_log_due(t, 0, now + S + 5), 0);
    ck_assert_int_eq(src_limit_log_due(t, 9, now), 0);
    src_limit_free(t);
}
END_TEST

/* Threads take and give back connections of a few shared addresses: no address is ever
 * over its limit, and the table is empty when all are closed. */
#define THREADS 8
#define ROUNDS 20000
#define ADDRS 4
#define LIMIT 3

static struct src_limit *shared;
static _Atomic int holders[ADDRS];
static _Atomic int over_limit;
static _Atomic long admitted;

static void *worker(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u + 1;
    char a[32];
    int held[ADDRS] = {0};
    for (int i = 0; i < ROUNDS; i++) {
        seed = seed * 1103515245u + 12345u;
        unsigned k = (seed >> 16) % ADDRS;
        snprintf(a, sizeof a, "198.51.100.%u", k + 1);
        struct sockaddr_in in = {.sin_family = AF_INET};
        inet_pton(AF_INET, a, &in.sin_addr);
        struct src_key key;
        src_key_from_sockaddr((struct sockaddr *)&in, sizeof in, 0, &key);
        if (held[k] && (seed & 0x100)) {
            atomic_fetch_sub(&holders[k], 1);
            src_limit_release(shared, &key);
            held[k]--;
        } else if (src_limit_acquire(shared, &key, LIMIT) == SRC_LIMIT_OK) {
            if (atomic_fetch_add(&holders[k], 1) + 1 > LIMIT)
                atomic_store(&over_limit, 1);
            held[k]++;
            atomic_fetch_add(&admitted, 1);
        }
    }
    for (unsigned k = 0; k < ADDRS; k++) {
        snprintf(a, sizeof a, "198.51.100.%u", k + 1);
        struct sockaddr_in in = {.sin_family = AF_INET};
        inet_pton(AF_INET, a, &in.sin_addr);
        struct src_key key;
        src_key_from_sockaddr((struct sockaddr *)&in, sizeof in, 0, &key);
        for (; held[k]; held[k]--) {
            atomic_fetch_sub(&holders[k], 1);
            src_limit_release(shared, &key);
        }
    }
    return NULL;
}

START_TEST(test_concurrent)
{
    shared = src_limit_new(1000, 1);
    pthread_t th[THREADS];
    for (uintptr_t i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker, (void *)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(atomic_load(&over_limit), 0);
    ck_assert_int_gt(atomic_load(&admitted), ROUNDS / 4); /* it did run */
    ck_assert_uint_eq(src_limit_entries(shared), 0);
    for (int k = 0; k < ADDRS; k++)
        ck_assert_int_eq(atomic_load(&holders[k]), 0);
    src_limit_free(shared);
}
END_TEST

/* Threads share one gate: exactly the burst is admitted at one instant. */
static struct src_limit *gate_table;
static _Atomic int gate_ok;

static void *gate_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 1000; i++)
        if (src_limit_rate_take(gate_table, 0, 10, 50, 7 * S))
            atomic_fetch_add(&gate_ok, 1);
    return NULL;
}

START_TEST(test_concurrent_gate)
{
    gate_table = src_limit_new(10, 1);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, gate_worker, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(atomic_load(&gate_ok), 50);
    src_limit_free(gate_table);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("src_limit");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_keys);
    tcase_add_test(tc, test_limit_and_release);
    tcase_add_test(tc, test_scopes_apart);
    tcase_add_test(tc, test_bound_and_growth);
    tcase_add_test(tc, test_free_with_entries);
    tcase_add_test(tc, test_bucket);
    tcase_add_test(tc, test_gates);
    tcase_add_test(tc, test_concurrent);
    tcase_add_test(tc, test_concurrent_gate);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
