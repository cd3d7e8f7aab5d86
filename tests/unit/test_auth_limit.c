/* test_auth_limit.c — Check suite for relay/auth_limit.c: the block after too many
 * failures, its end, the sliding window (no burst at a window's edge), that a success
 * resets nothing, IPv6 /64 keys, the table bound, the peer address parsing, and
 * concurrent use. Time is passed explicitly. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "relay/auth_limit.h"

#define P "192.0.2.7:40000"

static struct auth_limit *al;

static void setup(void)
{
    al = auth_limit_new();
    ck_assert_ptr_nonnull(al);
}

static void teardown(void)
{
    auth_limit_free(al);
}

/* Fail AUTH_LIMIT_FAILURES times from PEER at T, T+1, ...: not blocked yet. */
static void fail_to_limit(const char *peer, uint64_t t)
{
    for (unsigned i = 1; i <= AUTH_LIMIT_FAILURES; i++) {
        ck_assert_int_eq(auth_limit_blocked(al, peer, t), 0);
        ck_assert_uint_eq(auth_limit_failed(al, peer, t), i);
        t++;
    }
    ck_assert_int_eq(auth_limit_blocked(al, peer, t), 0);
}

START_TEST(test_peer_addr)
{
    static const struct {
        const char *peer, *want;
    } cases[] = {
        {"1.2.3.4:5678", "1.2.3.4"},
        {"192.0.2.255:1", "192.0.2.255"},
        {"[::1]:5678", "::"},                            /* IPv6: its /64 */
        {"[2001:db8::1:0:0:1]:443", "2001:db8::"},
        {"[2001:db8:a:b:c:d:e:f]:443", "2001:db8:a:b::"},
        {"[::ffff:10.1.2.3]:80", "10.1.2.3"}, /* IPv4-mapped: the IPv4 address */
        {"ws:10.0.0.1:443", "10.0.0.1"},
        {"ws:[fe80::2]:8080", "fe80::"},
        {"unix:/run/usp/relay.sock", NULL},
        {"unix:", NULL},
        {"ws:unix:/x", NULL},
        {"1.2.3.4", NULL},     /* no port */
        {"[::1]", NULL},
        {"[::1]5678", NULL},
        {"::1:5678", NULL},    /* IPv6 without brackets is ambiguous: refused */
        {"300.1.1.1:5", NULL},
        {"1.2.3:5", NULL},
        {"[1.2.3.4]:5", NULL},
        {":5678", NULL},
        {"", NULL},
        {"host.example:80", NULL},
    };
    char out[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(out, 0, sizeof out);
        int rc = auth_limit_peer_addr(cases[i].peer, out, sizeof out);
        if (cases[i].want) {
            ck_assert_msg(rc == 0, "%s refused", cases[i].peer);
            ck_assert_str_eq(out, cases[i].want);
        } else {
            ck_assert_msg(rc == -1, "%s accepted as %s", cases[i].peer, out);
        }
    }
    ck_assert_int_eq(auth_limit_peer_addr(NULL, out, sizeof out), -1);
    ck_assert_int_eq(auth_limit_peer_addr("1.2.3.4:5", out, 7), -1); /* "1.2.3.4" + NUL */
    ck_assert_int_eq(auth_limit_peer_addr("1.2.3.4:5", out, 8), 0);
    ck_assert_str_eq(out, "1.2.3.4");
}
END_TEST

START_TEST(test_blocks_after_limit)
{
    fail_to_limit(P, 1000);
    /* One more failure blocks: for AUTH_LIMIT_BLOCK_MS from that failure. */
    ck_assert_uint_eq(auth_limit_failed(al, P, 2000), AUTH_LIMIT_FAILURES + 1);
    ck_assert_int_eq(auth_limit_blocked(al, P, 2000), 1);
    ck_assert_int_eq(auth_limit_blocked(al, P, 2000 + AUTH_LIMIT_BLOCK_MS - 1), 1);
    ck_assert_int_eq(auth_limit_blocked(al, P, 2000 + AUTH_LIMIT_BLOCK_MS), 0);
    /* the port does not matter; the IPv4-mapped spelling is the same address */
    ck_assert_int_eq(auth_limit_blocked(al, "192.0.2.7:1", 3000), 1);
    ck_assert_int_eq(auth_limit_blocked(al, "[::ffff:192.0.2.7]:1", 3000), 1);
    ck_assert_int_eq(auth_limit_blocked(al, "ws:192.0.2.7:1", 3000), 1);
    /* other addresses are not */
    ck_assert_int_eq(auth_limit_blocked(al, "192.0.2.8:40000", 3000), 0);
    ck_assert_int_eq(auth_limit_blocked(al, "[::1]:40000", 3000), 0);
}
END_TEST

START_TEST(test_block_not_extended)
{
    fail_to_limit(P, 0);
    ck_assert_uint_eq(auth_limit_failed(al, P, 10), AUTH_LIMIT_FAILURES + 1);
    /* attempts refused while blocked are no guesses: they neither fill nor extend */
    ck_assert_uint_le(auth_limit_failed(al, P, 30000), AUTH_LIMIT_FAILURES + 1);
    ck_assert_uint_le(auth_limit_failed(al, P, 59000), AUTH_LIMIT_FAILURES + 1);
    ck_assert_int_eq(auth_limit_blocked(al, P, 10 + AUTH_LIMIT_BLOCK_MS - 1), 1);
    ck_assert_int_eq(auth_limit_blocked(al, P, 10 + AUTH_LIMIT_BLOCK_MS), 0);
    /* after the block its failures have left the window: a full allowance again */
    uint64_t t = 10 + AUTH_LIMIT_BLOCK_MS;
    unsigned allowed = 0;
    while (!auth_limit_blocked(al, P, t) && allowed < 100) {
        auth_limit_failed(al, P, t);
        allowed++;
    }
    ck_assert_uint_eq(allowed, AUTH_LIMIT_FAILURES + 1);
}
END_TEST

/* Guesses FROM one source in [T0, T0 + SPAN): each attempt at the given times is a
 * guess only when not blocked. */
static unsigned guesses(const uint64_t *times, size_t n)
{
    unsigned g = 0;
    for (size_t i = 0; i < n; i++) {
        if (auth_limit_blocked(al, P, times[i]))
            continue;
        g++;
        auth_limit_failed(al, P, times[i]);
    }
    return g;
}

START_TEST(test_sliding_window)
{
    /* A fixed window would allow 1 + 4 failures before its edge and 6 after it: 11
     * guesses within a minute. The sliding window allows AUTH_LIMIT_FAILURES + 1 in any
     * AUTH_LIMIT_WINDOW_MS: here the one at 1000 and 6 in (1000, 61000]. */
    uint64_t edge[] = {1000, 60999, 60999, 60999, 60999, 61000, 61000, 61000, 61000, 61000,
                       61000};
    ck_assert_uint_eq(guesses(edge, sizeof edge / sizeof edge[0]), AUTH_LIMIT_FAILURES + 2);
    ck_assert_int_eq(auth_limit_blocked(al, P, 61000), 1);
    teardown();
    setup();
    uint64_t spread[] = {0, 10, 20, 30, 40, 59000, 59001, 59002};
    ck_assert_uint_eq(guesses(spread, sizeof spread / sizeof spread[0]),
                      AUTH_LIMIT_FAILURES + 1);
    teardown();
    setup();
    /* Failures spaced a fifth of the window apart never block (5 per window). */
    uint64_t t = 5000, step = AUTH_LIMIT_WINDOW_MS / AUTH_LIMIT_FAILURES + 1;
    for (int i = 0; i < 100; i++, t += step) {
        ck_assert_int_eq(auth_limit_blocked(al, P, t), 0);
        ck_assert_uint_le(auth_limit_failed(al, P, t), AUTH_LIMIT_FAILURES);
    }
}
END_TEST

START_TEST(test_ipv6_per_64)
{
    /* Any address of one /64 fills the same bucket; another /64 has its own. */
    for (unsigned i = 1; i <= AUTH_LIMIT_FAILURES + 1; i++) {
        char q[64];
        snprintf(q, sizeof q, "[2001:db8:1:2::%x]:%u", i, 1000 + i);
        auth_limit_failed(al, q, 100);
    }
    ck_assert_int_eq(auth_limit_blocked(al, "[2001:db8:1:2:ffff:ffff:ffff:ffff]:1", 100), 1);
    ck_assert_int_eq(auth_limit_blocked(al, "[2001:db8:1:3::1]:1", 100), 0);
    ck_assert_uint_eq(auth_limit_size(al), 1);
}
END_TEST

START_TEST(test_unix_never_limited)
{
    for (int i = 0; i < 100; i++)
        ck_assert_uint_eq(auth_limit_failed(al, "unix:/run/usp/relay.sock", (uint64_t)i), 0);
    ck_assert_int_eq(auth_limit_blocked(al, "unix:/run/usp/relay.sock", 100), 0);
    ck_assert_uint_eq(auth_limit_size(al), 0);
}
END_TEST

START_TEST(test_null_limiter)
{
    ck_assert_int_eq(auth_limit_blocked(NULL, P, 0), 0);
    ck_assert_uint_eq(auth_limit_failed(NULL, P, 0), 0);
    ck_assert_uint_eq(auth_limit_size(NULL), 0);
    auth_limit_free(NULL);
}
END_TEST

static void peer_n(char *buf, size_t cap, unsigned n)
{
    snprintf(buf, cap, "10.%u.%u.%u:1000", (n >> 16) & 255, (n >> 8) & 255, n & 255);
}

START_TEST(test_table_bound)
{
    char p[40];
    /* Fill the table: one failure per address, address n at time n. */
    for (unsigned n = 0; n < AUTH_LIMIT_TABLE; n++) {
        peer_n(p, sizeof p, n);
        ck_assert_uint_eq(auth_limit_failed(al, p, n), 1);
    }
    ck_assert_uint_eq(auth_limit_size(al), AUTH_LIMIT_TABLE);
    /* address 1 reaches its block (it now expires last of all) */
    peer_n(p, sizeof p, 1);
    for (unsigned i = 2; i <= AUTH_LIMIT_FAILURES + 1; i++)
        auth_limit_failed(al, p, 5000);
    ck_assert_int_eq(auth_limit_blocked(al, p, 5000), 1);
    /* A newcomer replaces the entry that expires soonest: address 0. */
    ck_assert_uint_eq(auth_limit_failed(al, "192.0.2.1:1", 6000), 1);
    ck_assert_uint_eq(auth_limit_size(al), AUTH_LIMIT_TABLE);
    peer_n(p, sizeof p, 2);
    ck_assert_uint_eq(auth_limit_failed(al, p, 6001), 2); /* still tracked */
    peer_n(p, sizeof p, 0);
    ck_assert_uint_eq(auth_limit_failed(al, p, 6002), 1); /* forgotten: starts again */
    /* A flood of newcomers replaces every entry expiring before the block (the 4092
     * other first addresses; address 3 went for address 0) and leaves the block... */
    unsigned flood = AUTH_LIMIT_TABLE - 4;
    char q[48];
    for (unsigned n = 0; n < flood; n++) {
        snprintf(q, sizeof q, "172.%u.%u.%u:1", 16 + (n >> 16), (n >> 8) & 255, n & 255);
        ck_assert_uint_eq(auth_limit_failed(al, q, 7000), 1);
        ck_assert_uint_eq(auth_limit_size(al), AUTH_LIMIT_TABLE);
    }
    peer_n(p, sizeof p, 1);
    ck_assert_int_eq(auth_limit_blocked(al, p, 7000), 1);
    /* ...until it is the entry expiring soonest (documented: bounded memory first) */
    ck_assert_uint_eq(auth_limit_failed(al, "172.31.0.1:1", 7000), 1);
    ck_assert_int_eq(auth_limit_blocked(al, p, 7000), 0);
}
END_TEST

#define THREADS 4
#define PER_THREAD 2000

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        auth_limit_failed(al, P, 100);
        auth_limit_blocked(al, P, 100);
        char q[40];
        snprintf(q, sizeof q, "198.51.100.%d:9", i % 200);
        auth_limit_failed(al, q, 100);
    }
    return NULL;
}

START_TEST(test_threads)
{
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    ck_assert_int_eq(auth_limit_blocked(al, P, 101), 1);
    ck_assert_int_eq(auth_limit_blocked(al, "198.51.100.7:1", 101), 1);
    ck_assert_uint_le(auth_limit_size(al), 1 + 200);
}
END_TEST

static Suite *auth_limit_suite(void)
{
    Suite *s = suite_create("auth_limit");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_peer_addr);
    tcase_add_test(tc, test_blocks_after_limit);
    tcase_add_test(tc, test_block_not_extended);
    tcase_add_test(tc, test_sliding_window);
    tcase_add_test(tc, test_ipv6_per_64);
    tcase_add_test(tc, test_unix_never_limited);
    tcase_add_test(tc, test_null_limiter);
    tcase_add_test(tc, test_table_bound);
    tcase_add_test(tc, test_threads);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(auth_limit_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
