/* test_router.c — the endpoint table: binding, duplicate policies, pair routes,
 * destinations, unbinding only one's own route, growth, and concurrent readers. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/router.h"

static struct span S(const char *s)
{
    return span_from_str(s, s ? strlen(s) : 0);
}

static const struct span NONE = {NULL, 0};

START_TEST(bind_lookup_unbind)
{
    struct router *r = router_new();
    struct route t = {1, 42}, got;
    ck_assert_int_eq(router_bind(r, ROUTER_IDS, S("os::00256D-1"), NONE, t, DUP_REPLACE_OLD, NULL),
                     ROUTER_BOUND);
    ck_assert_int_eq(router_lookup(r, S("os::00256D-1"), S("self::c"), &got), 0);
    ck_assert_uint_eq(got.worker, 1);
    ck_assert_uint_eq(got.conn_id, 42);
    ck_assert_int_eq(router_lookup(r, S("os::00256D-2"), S("self::c"), &got), -1);
    /* A prefix or an extension of a key is another key. */
    ck_assert_int_eq(router_lookup(r, S("os::00256D-"), S("self::c"), &got), -1);
    ck_assert_int_eq(router_lookup(r, S("os::00256D-10"), S("self::c"), &got), -1);
    ck_assert_uint_eq(router_count(r, ROUTER_IDS), 1);
    /* Binding the same connection again is harmless. */
    ck_assert_int_eq(router_bind(r, ROUTER_IDS, S("os::00256D-1"), NONE, t, DUP_REFUSE_NEW, NULL),
                     ROUTER_BOUND);
    ck_assert_int_eq(router_unbind(r, ROUTER_IDS, S("os::00256D-1"), NONE, 42), 1);
    ck_assert_int_eq(router_lookup(r, S("os::00256D-1"), S("self::c"), &got), -1);
    ck_assert_uint_eq(router_count(r, ROUTER_IDS), 0);
    router_free(r);
}
END_TEST

START_TEST(replace_old_and_stale_unbind)
{
    struct router *r = router_new();
    struct route a = {0, 1}, b = {1, 2}, old, got;
    router_bind(r, ROUTER_IDS, S("self::x"), NONE, a, DUP_REPLACE_OLD, NULL);
    ck_assert_int_eq(router_bind(r, ROUTER_IDS, S("self::x"), NONE, b, DUP_REPLACE_OLD, &old),
                     ROUTER_REPLACED);
    ck_assert_uint_eq(old.conn_id, 1);
    ck_assert_uint_eq(old.worker, 0);
    /* The replaced connection closing later must not remove the new route. */
    ck_assert_int_eq(router_unbind(r, ROUTER_IDS, S("self::x"), NONE, 1), 0);
    ck_assert_int_eq(router_lookup(r, S("self::x"), S("self::y"), &got), 0);
    ck_assert_uint_eq(got.conn_id, 2);
    router_free(r);
}
END_TEST

START_TEST(refuse_new)
{
    struct router *r = router_new();
    struct route a = {0, 1}, b = {1, 2}, old, got;
    router_bind(r, ROUTER_IDS, S("self::x"), NONE, a, DUP_REFUSE_NEW, NULL);
    ck_assert_int_eq(router_bind(r, ROUTER_IDS, S("self::x"), NONE, b, DUP_REFUSE_NEW, &old),
                     ROUTER_REFUSED);
    ck_assert_uint_eq(old.conn_id, 1);
    ck_assert_int_eq(router_lookup(r, S("self::x"), S("self::y"), &got), 0);
    ck_assert_uint_eq(got.conn_id, 1);
    router_free(r);
}
END_TEST

START_TEST(pair_routes_first)
{
    struct router *r = router_new();
    struct route any = {0, 10}, pair = {1, 20}, got;
    router_bind(r, ROUTER_IDS, S("os::1-A"), NONE, any, DUP_REPLACE_OLD, NULL);
    router_bind(r, ROUTER_IDS, S("os::1-A"), S("self::ctrl"), pair, DUP_REPLACE_OLD, NULL);
    /* From the pair's peer: the pair link. */
    ck_assert_int_eq(router_lookup(r, S("os::1-A"), S("self::ctrl"), &got), 0);
    ck_assert_uint_eq(got.conn_id, 20);
    /* From anyone else: the endpoint's own route. */
    ck_assert_int_eq(router_lookup(r, S("os::1-A"), S("self::other"), &got), 0);
    ck_assert_uint_eq(got.conn_id, 10);
    /* Pair only: other senders have no route. */
    router_unbind(r, ROUTER_IDS, S("os::1-A"), NONE, 10);
    ck_assert_int_eq(router_lookup(r, S("os::1-A"), S("self::other"), &got), -1);
    ck_assert_int_eq(router_lookup(r, S("os::1-A"), S("self::ctrl"), &got), 0);
    /* The key bytes and the peer bytes don't run together. */
    ck_assert_int_eq(router_lookup(r, S("os::1-Aself::ctrl"), S("x::y"), &got), -1);
    router_free(r);
}
END_TEST

START_TEST(fallback_sessions)
{
    struct router *r = router_new();
    struct route c1 = {2, 10}, c2 = {2, 11}, got;
    /* Agent A holds a pair session per controller; C3 has none. */
    ck_assert_int_eq(router_bind(r, ROUTER_IDS, S("os::a"), S("self::c1"), c1, DUP_REPLACE_OLD, NULL),
                     ROUTER_BOUND);
    ck_assert_int_eq(router_lookup(r, S("os::a"), S("self::c3"), &got), -1);
    ck_assert_int_eq(router_fallback_add(r, S("os::a"), c1), 0);
    ck_assert_int_eq(router_bind(r, ROUTER_IDS, S("os::a"), S("self::c2"), c2, DUP_REPLACE_OLD, NULL),
                     ROUTER_BOUND);
    ck_assert_int_eq(router_fallback_add(r, S("os::a"), c2), 0);
    /* Pairs still win; a stranger gets the newest fallback session. */
    ck_assert_int_eq(router_lookup(r, S("os::a"), S("self::c1"), &got), 0);
    ck_assert_uint_eq(got.conn_id, 10);
    ck_assert_int_eq(router_lookup(r, S("os::a"), S("self::c3"), &got), 0);
    ck_assert_uint_eq(got.conn_id, 11);
    /* A plain binding of the ID comes before any fallback. */
    struct route plain = {0, 12};
    ck_assert_int_eq(router_bind(r, ROUTER_IDS, S("os::a"), NONE, plain, DUP_REPLACE_OLD, NULL),
                     ROUTER_BOUND);
    ck_assert_int_eq(router_lookup(r, S("os::a"), S("self::c3"), &got), 0);
    ck_assert_uint_eq(got.conn_id, 12);
    ck_assert_int_eq(router_unbind(r, ROUTER_IDS, S("os::a"), NONE, 12), 1);
    /* The newest one leaves: the older session is the fallback again. */
    router_fallback_remove(r, S("os::a"), 11);
    ck_assert_int_eq(router_lookup(r, S("os::a"), S("self::c3"), &got), 0);
    ck_assert_uint_eq(got.conn_id, 10);
    /* Removing someone else's or an unknown entry changes nothing. */
    router_fallback_remove(r, S("os::a"), 99);
    router_fallback_remove(r, S("os::b"), 10);
    ck_assert_int_eq(router_lookup(r, S("os::a"), S("self::c3"), &got), 0);
    router_fallback_remove(r, S("os::a"), 10);
    ck_assert_int_eq(router_lookup(r, S("os::a"), S("self::c3"), &got), -1);
    /* Many endpoints grow the table. */
    char id[32];
    for (unsigned i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "os::agent-%u", i);
        struct route t = {1, 1000u + i};
        ck_assert_int_eq(router_fallback_add(r, S(id), t), 0);
    }
    for (unsigned i = 0; i < 5000; i += 499) {
        snprintf(id, sizeof id, "os::agent-%u", i);
        ck_assert_int_eq(router_lookup(r, S(id), S("self::x"), &got), 0);
        ck_assert_uint_eq(got.conn_id, 1000u + i);
    }
    router_free(r);
}
END_TEST

START_TEST(tables_are_separate)
{
    struct router *r = router_new();
    struct route t = {0, 5}, got;
    router_bind(r, ROUTER_DESTS, S("/usp/endpoint/x"), NONE, t, DUP_REPLACE_OLD, NULL);
    ck_assert_int_eq(router_get(r, ROUTER_DESTS, S("/usp/endpoint/x"), NONE, &got), 0);
    ck_assert_int_eq(router_get(r, ROUTER_IDS, S("/usp/endpoint/x"), NONE, &got), -1);
    ck_assert_int_eq(router_lookup(r, S("/usp/endpoint/x"), S("a::b"), &got), -1);
    router_free(r);
}
END_TEST

START_TEST(many_keys_grow)
{
    struct router *r = router_new();
    char key[64];
    for (uint64_t i = 0; i < 50000; i++) {
        snprintf(key, sizeof key, "os::00256D-%llu", (unsigned long long)i);
        struct route t = {(unsigned)(i % 7), i + 1};
        ck_assert_int_eq(router_bind(r, ROUTER_IDS, S(key), NONE, t, DUP_REFUSE_NEW, NULL),
                         ROUTER_BOUND);
    }
    ck_assert_uint_eq(router_count(r, ROUTER_IDS), 50000);
    for (uint64_t i = 0; i < 50000; i++) {
        struct route got;
        snprintf(key, sizeof key, "os::00256D-%llu", (unsigned long long)i);
        ck_assert_int_eq(router_lookup(r, S(key), S("self::c"), &got), 0);
        ck_assert_uint_eq(got.conn_id, i + 1);
        ck_assert_uint_eq(got.worker, (unsigned)(i % 7));
    }
    for (uint64_t i = 0; i < 50000; i += 2) {
        snprintf(key, sizeof key, "os::00256D-%llu", (unsigned long long)i);
        ck_assert_int_eq(router_unbind(r, ROUTER_IDS, S(key), NONE, i + 1), 1);
    }
    ck_assert_uint_eq(router_count(r, ROUTER_IDS), 25000);
    router_free(r);
}
END_TEST

struct reader_arg {
    struct router *r;
    int errors;
};

static void *reader(void *p)
{
    struct reader_arg *a = p;
    char key[64];
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 1000; i++) {
            struct route got;
            snprintf(key, sizeof key, "self::stable-%d", i);
            if (router_lookup(a->r, S(key), S("x::y"), &got) != 0 || got.conn_id != (uint64_t)i + 1)
                a->errors++;
        }
    }
    return NULL;
}

/* Lookups of stable keys stay right while another thread binds and unbinds others
 * (and the shards grow underneath). */
START_TEST(concurrent_readers)
{
    struct router *r = router_new();
    char key[64];
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "self::stable-%d", i);
        struct route t = {0, (uint64_t)i + 1};
        router_bind(r, ROUTER_IDS, S(key), NONE, t, DUP_REFUSE_NEW, NULL);
    }
    struct reader_arg args[2] = {{r, 0}, {r, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, reader, &args[i]);
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "self::churn-%d", i);
        struct route t = {1, 100000u + (uint64_t)i};
        router_bind(r, ROUTER_IDS, S(key), NONE, t, DUP_REPLACE_OLD, NULL);
        if (i % 3 == 0)
            router_unbind(r, ROUTER_IDS, S(key), NONE, t.conn_id);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(args[0].errors, 0);
    ck_assert_int_eq(args[1].errors, 0);
    router_free(r);
}
END_TEST

static Suite *router_suite(void)
{
    Suite *s = suite_create("router");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, bind_lookup_unbind);
    tcase_add_test(tc, replace_old_and_stale_unbind);
    tcase_add_test(tc, refuse_new);
    tcase_add_test(tc, pair_routes_first);
    tcase_add_test(tc, fallback_sessions);
    tcase_add_test(tc, tables_are_separate);
    tcase_add_test(tc, many_keys_grow);
    tcase_add_test(tc, concurrent_readers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(router_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
