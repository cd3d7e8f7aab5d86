/* test_topic_filters.c — wildcard subscriptions for unknown IDs: matching, order,
 * removal by owner, the cap. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "relay/topic_filters.h"

static struct span T(const char *s)
{
    return span_from_str(s, strlen(s));
}

START_TEST(match_first_in_order)
{
    struct topic_filters *tf = topic_filters_new();
    struct route a = {0, 1}, b = {1, 2}, got;
    ck_assert_int_eq(topic_filters_add(tf, "usp/controller/#", a), 0);
    ck_assert_int_eq(topic_filters_add(tf, "usp/+/x", b), 0);
    ck_assert_int_eq(topic_filters_match(tf, T("usp/controller/x"), &got), 0);
    ck_assert_uint_eq(got.conn_id, 1);
    ck_assert_int_eq(topic_filters_match(tf, T("usp/agent/x"), &got), 0);
    ck_assert_uint_eq(got.conn_id, 2);
    ck_assert_int_eq(topic_filters_match(tf, T("usp/controller"), &got), 0); /* '#' takes the parent */
    ck_assert_int_eq(topic_filters_match(tf, T("other/agent/x"), &got), -1);
    ck_assert_int_eq(topic_filters_match(tf, T("usp/agent/y"), &got), -1);
    topic_filters_free(tf);
}
END_TEST

START_TEST(remove_only_own)
{
    struct topic_filters *tf = topic_filters_new();
    struct route a = {0, 1}, b = {1, 2}, got;
    topic_filters_add(tf, "usp/#", a);
    topic_filters_add(tf, "usp/#", b);
    topic_filters_remove(tf, "usp/#", 3); /* nobody's */
    ck_assert_uint_eq(topic_filters_count(tf), 2);
    topic_filters_remove(tf, "usp/#", 1);
    ck_assert_uint_eq(topic_filters_count(tf), 1);
    ck_assert_int_eq(topic_filters_match(tf, T("usp/a"), &got), 0);
    ck_assert_uint_eq(got.conn_id, 2);
    topic_filters_remove(tf, "usp/#", 2);
    ck_assert_int_eq(topic_filters_match(tf, T("usp/a"), &got), -1);
    topic_filters_free(tf);
}
END_TEST

START_TEST(capped)
{
    struct topic_filters *tf = topic_filters_new();
    char f[32];
    for (unsigned i = 0; i < TOPIC_FILTERS_MAX; i++) {
        snprintf(f, sizeof f, "c/%u/#", i);
        struct route r = {0, i + 1};
        ck_assert_int_eq(topic_filters_add(tf, f, r), 0);
    }
    struct route r = {0, 99999}, got;
    ck_assert_int_eq(topic_filters_add(tf, "late/#", r), -1);
    ck_assert_int_eq(topic_filters_match(tf, T("late/x"), &got), -1);
    ck_assert_int_eq(topic_filters_match(tf, T("c/1023/z"), &got), 0);
    ck_assert_uint_eq(got.conn_id, 1024);
    topic_filters_free(tf);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("topic_filters");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, match_first_in_order);
    tcase_add_test(tc, remove_only_own);
    tcase_add_test(tc, capped);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
