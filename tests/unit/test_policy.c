/* test_policy.c — Check suite for relay/policy.c: pattern matching, rule order, the
 * default verdict, agents_only_to_controllers and the empty-policy fast path, on policies
 * built in memory and on one loaded from a file (the docs' example).
 *
 * IDs are placed right before a PROT_NONE page (guard_page.h), so a match reading past
 * a span's length faults.
 */
#include "relay/policy.h"

#include <check.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "guard_page.h"

#define EXACT(s) {POLICY_EXACT, (char *)(s), sizeof(s) - 1}
#define PREFIX(s) {POLICY_PREFIX, (char *)(s), sizeof(s) - 1}
#define ANY {POLICY_ANY, NULL, 0}
#define N(a) (sizeof(a) / sizeof((a)[0]))

#define CTRL "self::usp-controller"
#define CTRL2 "oui:00256D:ctrl-7"
#define AGENT1 "os::00256D-0001"
#define AGENT2 "os::00256D-0002"
#define AGENT_OTHER "os::0A0B0C-0001"

/* ID as a span that ends right before the guard page. Two at once: FROM is copied into
 * a second slot first, since each guard_place() overwrites the one before. */
static char g_from[512];

static struct span id(const char *s)
{
    return (struct span){guard_place(s, strlen(s)), strlen(s)};
}

static int allows(const struct policy_cfg *p, const char *from, const char *to)
{
    snprintf(g_from, sizeof g_from, "%s", from);
    struct span f = {(const uint8_t *)g_from, strlen(g_from)};
    return policy_allows(p, f, id(to));
}

static int match(const struct policy_pattern *p, const char *s)
{
    return policy_pattern_match(p, id(s));
}

/* ------------------------------------------------------------------ patterns */

START_TEST(pattern_exact)
{
    const struct policy_pattern p = EXACT("os::00256D-0001");
    ck_assert_int_eq(match(&p, "os::00256D-0001"), 1);
    ck_assert_int_eq(match(&p, "os::00256D-00012"), 0); /* longer */
    ck_assert_int_eq(match(&p, "os::00256D-000"), 0);   /* shorter */
    ck_assert_int_eq(match(&p, "os::00256D-0002"), 0);  /* last byte differs */
    ck_assert_int_eq(match(&p, "Os::00256D-0001"), 0);  /* byte-exact, no case folding */
}
END_TEST

START_TEST(pattern_prefix)
{
    const struct policy_pattern p = PREFIX("os::00256D-");
    ck_assert_int_eq(match(&p, "os::00256D-0001"), 1);
    ck_assert_int_eq(match(&p, "os::00256D-"), 1); /* the prefix itself starts with it */
    ck_assert_int_eq(match(&p, "os::00256D"), 0);  /* shorter than the prefix */
    ck_assert_int_eq(match(&p, "os::00256E-0001"), 0);
    ck_assert_int_eq(match(&p, "oui:00256D:x"), 0);

    /* "os::*": every os ID; "os:" would say the same, "o" takes oui and ops too. */
    const struct policy_pattern os = PREFIX("os::");
    ck_assert_int_eq(match(&os, AGENT_OTHER), 1);
    ck_assert_int_eq(match(&os, "ops::00256D-pc-1"), 0);
    ck_assert_int_eq(match(&os, CTRL), 0);
    const struct policy_pattern oui = PREFIX("oui:00256D:");
    ck_assert_int_eq(match(&oui, CTRL2), 1);
    ck_assert_int_eq(match(&oui, "oui:00256DA:x"), 0);
}
END_TEST

START_TEST(pattern_any)
{
    const struct policy_pattern p = ANY;
    ck_assert_int_eq(match(&p, "a::b"), 1);
    ck_assert_int_eq(match(&p, CTRL), 1);
    ck_assert_int_eq(policy_pattern_match(&p, (struct span){NULL, 0}), 1);
}
END_TEST

START_TEST(list_match)
{
    const struct policy_pattern l[] = {EXACT(CTRL), PREFIX("oui:00256D:ctrl-")};
    ck_assert_int_eq(policy_list_match(l, N(l), id(CTRL)), 1);
    ck_assert_int_eq(policy_list_match(l, N(l), id(CTRL2)), 1);
    ck_assert_int_eq(policy_list_match(l, N(l), id(AGENT1)), 0);
    ck_assert_int_eq(policy_list_match(l, 0, id(CTRL)), 0); /* an empty list: nothing */
    ck_assert_int_eq(policy_list_match(l, 1, id(CTRL2)), 0); /* only N entries are read */
}
END_TEST

/* ------------------------------------------------------------------ rules */

START_TEST(first_match_wins)
{
    struct policy_pattern os[] = {PREFIX("os::")}, any[] = {ANY};
    struct policy_rule rules[] = {
        {0, os, 1, os, 1, 1},  /* deny os -> os */
        {1, os, 1, any, 1, 2}, /* allow os -> anything */
    };
    struct policy_cfg p = {rules, 2, 0, NULL, 0, 0};
    ck_assert_int_eq(allows(&p, AGENT1, AGENT2), 0);
    ck_assert_int_eq(allows(&p, AGENT1, CTRL), 1);
    ck_assert_int_eq(allows(&p, CTRL, AGENT1), 0); /* no rule: default deny */

    /* The same rules the other way round: the broad allow now hides the deny. */
    struct policy_rule swapped[] = {rules[1], rules[0]};
    p.rules = swapped;
    ck_assert_int_eq(allows(&p, AGENT1, AGENT2), 1);
    ck_assert_int_eq(allows(&p, AGENT1, CTRL), 1);
}
END_TEST

START_TEST(rule_needs_both_lists)
{
    struct policy_pattern from[] = {EXACT(CTRL), EXACT(CTRL2)};
    struct policy_pattern to[] = {PREFIX("os::00256D-")};
    struct policy_rule rules[] = {{1, from, N(from), to, N(to), 1}};
    struct policy_cfg p = {rules, 1, 0, NULL, 0, 0};
    ck_assert_int_eq(allows(&p, CTRL, AGENT1), 1);
    ck_assert_int_eq(allows(&p, CTRL2, AGENT2), 1);
    ck_assert_int_eq(allows(&p, CTRL, AGENT_OTHER), 0); /* to does not match */
    ck_assert_int_eq(allows(&p, AGENT1, CTRL), 0);      /* neither matches */
    ck_assert_int_eq(allows(&p, "self::other", AGENT1), 0); /* from does not match */
}
END_TEST

START_TEST(default_verdict)
{
    struct policy_pattern from[] = {EXACT(CTRL)}, to[] = {EXACT(AGENT1)};
    struct policy_rule deny[] = {{0, from, 1, to, 1, 1}};
    struct policy_cfg p = {deny, 1, 1, NULL, 0, 0};
    ck_assert_int_eq(allows(&p, CTRL, AGENT1), 0);
    ck_assert_int_eq(allows(&p, CTRL, AGENT2), 1); /* default allow */
    p.default_allow = 0;
    ck_assert_int_eq(allows(&p, CTRL, AGENT2), 0); /* default deny */

    struct policy_rule allow[] = {{1, from, 1, to, 1, 1}};
    p.rules = allow;
    ck_assert_int_eq(allows(&p, CTRL, AGENT1), 1);
    ck_assert_int_eq(allows(&p, AGENT1, CTRL), 0);
}
END_TEST

START_TEST(agents_only_to_controllers)
{
    struct policy_pattern ctl[] = {EXACT(CTRL), PREFIX("oui:00256D:ctrl-")};
    struct policy_cfg p = {NULL, 0, 1, ctl, N(ctl), 1};
    ck_assert_int_eq(allows(&p, CTRL, AGENT1), 1);       /* controller -> agent */
    ck_assert_int_eq(allows(&p, AGENT1, CTRL), 1);       /* agent -> controller */
    ck_assert_int_eq(allows(&p, AGENT1, CTRL2), 1);      /* ... matched by a prefix */
    ck_assert_int_eq(allows(&p, AGENT1, AGENT2), 0);     /* agent -> agent */
    ck_assert_int_eq(allows(&p, "self::x", AGENT2), 0);  /* any non-controller */
    ck_assert_int_eq(allows(&p, CTRL, CTRL2), 1);        /* controller -> controller */
    ck_assert_int_eq(allows(&p, CTRL2, CTRL), 1);

    /* The rules still apply to what it lets through, and a rule cannot reopen
     * agent -> agent. */
    struct policy_pattern c1[] = {EXACT(CTRL)}, other[] = {PREFIX("os::0A0B0C-")};
    struct policy_pattern any[] = {ANY};
    struct policy_rule rules[] = {
        {0, c1, 1, other, 1, 1}, /* CTRL may not reach the other vendor's agents */
        {1, any, 1, any, 1, 2},
    };
    p.rules = rules;
    p.n_rules = N(rules);
    ck_assert_int_eq(allows(&p, CTRL, AGENT1), 1);
    ck_assert_int_eq(allows(&p, CTRL, AGENT_OTHER), 0);
    ck_assert_int_eq(allows(&p, CTRL2, AGENT_OTHER), 1);
    ck_assert_int_eq(allows(&p, AGENT1, AGENT2), 0);
}
END_TEST

START_TEST(empty_policy_fast_path)
{
    /* No rules, agents_only_to_controllers off: the default alone, and nothing else is
     * read (the dangling lists below would fault). */
    struct policy_cfg p = {(struct policy_rule *)8, 0, 1, (struct policy_pattern *)8, 5, 0};
    ck_assert_int_eq(allows(&p, AGENT1, AGENT2), 1);
    ck_assert_int_eq(allows(&p, CTRL, AGENT1), 1);
    p.default_allow = 0;
    ck_assert_int_eq(allows(&p, AGENT1, AGENT2), 0);
    /* What config_load gives without a policy group. */
    struct policy_cfg z = {NULL, 0, 1, NULL, 0, 0};
    ck_assert_int_eq(allows(&z, AGENT1, AGENT2), 1);
}
END_TEST

/* ------------------------------------------------------------------ loaded */

START_TEST(loaded_example)
{
    char path[] = "/tmp/usprelay-test-policy-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    static const char text[] =
        "policy = {\n"
        "  default = \"deny\";\n"
        "  controllers = [ \"self::usp-controller\", \"oui:00256D:ctrl-*\" ];\n"
        "  agents_only_to_controllers = true;\n"
        "  rules = (\n"
        "    { action = \"deny\";  from = [ \"os::*\" ]; to = [ \"os::*\" ]; },\n"
        "    { action = \"allow\"; from = [ \"self::usp-controller\" ];\n"
        "      to = [ \"os::00256D-*\" ]; },\n"
        "    { action = \"allow\"; from = [ \"os::*\" ]; to = [ \"*\" ]; }\n"
        "  );\n"
        "};\n"
        "listeners = ( { name = \"s\"; type = \"stomp\"; address = \"127.0.0.1\"; "
        "port = 61613; } );\n";
    ck_assert_int_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    struct relay_config *cfg = NULL;
    char err[2048];
    int rc = config_load(path, &cfg, err, sizeof err);
    unlink(path);
    ck_assert_msg(rc == 0, "%s", err);
    const struct policy_cfg *p = &cfg->policy;
    ck_assert_int_eq(allows(p, CTRL, AGENT1), 1);       /* rule 2 */
    ck_assert_int_eq(allows(p, CTRL, AGENT_OTHER), 0);  /* default deny */
    ck_assert_int_eq(allows(p, AGENT1, CTRL), 1);       /* rule 3 */
    ck_assert_int_eq(allows(p, AGENT1, CTRL2), 1);
    ck_assert_int_eq(allows(p, AGENT1, AGENT2), 0);     /* controllers only, and rule 1 */
    ck_assert_int_eq(allows(p, CTRL2, AGENT1), 0);      /* no rule for it: default deny */
    config_free(cfg);
}
END_TEST

static Suite *policy_suite(void)
{
    Suite *s = suite_create("policy");
    TCase *m = tcase_create("match");
    tcase_add_test(m, pattern_exact);
    tcase_add_test(m, pattern_prefix);
    tcase_add_test(m, pattern_any);
    tcase_add_test(m, list_match);
    suite_add_tcase(s, m);
    TCase *e = tcase_create("evaluate");
    tcase_add_test(e, first_match_wins);
    tcase_add_test(e, rule_needs_both_lists);
    tcase_add_test(e, default_verdict);
    tcase_add_test(e, agents_only_to_controllers);
    tcase_add_test(e, empty_policy_fast_path);
    tcase_add_test(e, loaded_example);
    suite_add_tcase(s, e);
    return s;
}

int main(void)
{
    guard_init();
    SRunner *sr = srunner_create(policy_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
