/* config_policy.c — the configuration loader's part for the top-level "policy" group
 * (struct policy_cfg in config.h; evaluated by policy.c).
 *
 * Every pattern is checked here so that evaluation never meets a surprise: an exact
 * pattern must be a valid endpoint ID, a prefix (text then '*') must be one that some
 * valid endpoint ID can start with, and "*" alone matches everything. Lists and rules
 * are bounded (policy.h) so a Record's policy check takes bounded time. Errors follow
 * the loader's "file:line: key: message" form (config_ctx.h).
 */
#include "relay/policy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/config_ctx.h"
#include "relay/endpoint_id.h"

static const char *const policy_keys[] = {"default", "controllers",
                                          "agents_only_to_controllers", "rules", NULL};
static const char *const rule_keys[] = {"action", "from", "to", NULL};
/* Index = the allow flag. */
static const char *const verdict_names[] = {"deny", "allow"};

#define PATTERNS_EXAMPLE "[ \"self::usp-controller\", \"os::00256D-*\", \"*\" ]"
#define RULE_EXAMPLE "{ action = \"deny\"; from = [ ... ]; to = [ ... ]; }"

/* ------------------------------------------------------------------ patterns */

/* A character that may appear somewhere in an endpoint ID (endpoint_id.h). */
static int eid_char(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '%' || ch == ':';
}

static int scheme_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
}

static int hex_char(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'F') || (ch >= 'a' && ch <= 'f');
}

/* What is wrong with prefix P (N > 0 bytes, the text before the '*'), or NULL when some
 * valid endpoint ID of at most MAX_LEN bytes may start with it. WHY is scratch space. */
static const char *prefix_problem(const char *p, size_t n, uint32_t max_len, char *why,
                                  size_t cap)
{
    if (n > max_len)
        return "prefix is longer than relay.max_endpoint_id_length, so no endpoint ID "
               "matches it";
    size_t colon[2] = {n, n};
    unsigned colons = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (!eid_char(ch))
            return "may contain only characters of endpoint IDs (A-Z a-z 0-9 - . _ % :), "
                   "and '*' only at its end";
        if (ch == ':') {
            if (colons == 2)
                return "has more than two ':', so no endpoint ID matches it";
            colon[colons++] = i;
        }
        /* A %HH escape may be cut by the '*', not broken before it. */
        if (ch == '%' && ((i + 1 < n && !hex_char((unsigned char)p[i + 1])) ||
                          (i + 2 < n && !hex_char((unsigned char)p[i + 2]))))
            return "has a '%' not followed by two hex digits, so no endpoint ID matches it";
    }
    if (colon[0] == 0)
        return "has an empty authority-scheme, so no endpoint ID matches it";
    for (size_t i = 0; i < colon[0]; i++)
        if (!scheme_char((unsigned char)p[i]))
            return "authority-scheme may contain only a-z 0-9 and '-', so no endpoint ID "
                   "matches it";
    if (colons == 2) {
        /* Scheme and authority-id are complete: check them as an ID with a stand-in
         * instance-id. */
        char id[4200];
        size_t head = colon[1] + 1;
        if (head + 1 >= sizeof id)
            return "prefix is too long";
        memcpy(id, p, head);
        id[head] = 'x';
        int rc = eid_check(id, head + 1, SIZE_MAX);
        if (rc != EID_OK) {
            snprintf(why, cap, "does not start a valid endpoint ID (%s), so no endpoint ID "
                               "matches it", eid_err_name(rc));
            return why;
        }
    }
    return NULL;
}

/* Parse pattern string S (element KEY, setting E) into OUT. Returns 0, or -1 (reported). */
static int parse_pattern(struct config_ctx *c, const config_setting_t *e, const char *key,
                         const char *s, uint32_t max_len, struct policy_pattern *out)
{
    char qb[CONFIG_QUOTE_CAP];
    char why[160];
    size_t n = strlen(s);
    const char *star = strchr(s, '*');
    if (n == 1 && star) {
        out->match = POLICY_ANY;
        return 0;
    }
    if (star && star != s + n - 1) {
        config_report(c, e, key, "%s: '*' may only end a pattern (\"os::00256D-*\") or stand "
                                 "alone (\"*\")", config_quote(qb, s));
        return -1;
    }
    const char *bad = NULL;
    if (star) {
        bad = prefix_problem(s, n - 1, max_len, why, sizeof why);
    } else {
        int rc = eid_check(s, n, max_len);
        if (rc != EID_OK) {
            snprintf(why, sizeof why, "is not a valid endpoint ID (%s); end it with '*' to "
                                      "match every ID starting with it", eid_err_name(rc));
            bad = why;
        }
    }
    if (bad) {
        config_report(c, e, key, "%s %s", config_quote(qb, s), bad);
        return -1;
    }
    size_t len = star ? n - 1 : n;
    out->text = strndup(s, len);
    if (!out->text) {
        c->oom = 1;
        return -1;
    }
    out->match = star ? POLICY_PREFIX : POLICY_EXACT;
    out->len = len;
    return 0;
}

/* Member NAME of group G (key path PRE): a list or array of patterns, stored in *OUT
 * (*N entries). Returns 1 when present and valid, 0 when absent (reported when
 * REQUIRED), -1 when wrong (reported). An empty list is wrong when REQUIRED. */
int config_parse_patterns(struct config_ctx *c, const config_setting_t *g, const char *pre,
                          const char *name, int required, uint32_t max_len,
                          struct policy_pattern **out, size_t *n_out)
{
    char key[200];
    config_key_join(key, sizeof key, pre, name);
    const config_setting_t *ls = config_setting_get_member(g, name);
    if (!ls) {
        if (required)
            config_report(c, g, key, "required: a list of endpoint ID patterns such as "
                                     PATTERNS_EXAMPLE);
        return 0;
    }
    int t = config_setting_type(ls);
    if (t != CONFIG_TYPE_LIST && t != CONFIG_TYPE_ARRAY) {
        config_report(c, ls, key, "expected a list of endpoint ID patterns such as "
                                  PATTERNS_EXAMPLE ", found %s", config_type_desc(t));
        return -1;
    }
    int n = config_setting_length(ls);
    if (n > POLICY_MAX_PATTERNS) {
        config_report(c, ls, key, "%d patterns, at most %d are allowed", n,
                      POLICY_MAX_PATTERNS);
        return -1;
    }
    if (n <= 0) {
        if (!required)
            return 1;
        config_report(c, ls, key, "must list at least one pattern (\"*\" matches every "
                                  "endpoint ID)");
        return -1;
    }
    int ok = 1;
    if (config_literal_is(c, ls, LIT_NUL_ESCAPE)) {
        config_report(c, ls, key, "%s", CONFIG_NUL_ESCAPE_MSG);
        ok = 0;
    }
    *out = calloc((size_t)n, sizeof **out);
    if (!*out) {
        c->oom = 1;
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(ls, (unsigned)i);
        char ekey[220];
        snprintf(ekey, sizeof ekey, "%s[%d]", key, i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
            config_report(c, e, ekey, "expected a string, found %s",
                          config_type_desc(config_setting_type(e)));
            ok = 0;
            continue;
        }
        if (parse_pattern(c, e, ekey, config_setting_get_string(e), max_len,
                          &(*out)[*n_out]) == 0)
            (*n_out)++;
        else
            ok = 0;
    }
    return ok ? 1 : -1;
}

/* ------------------------------------------------------------------ rules */

static void parse_rule(struct config_ctx *c, const config_setting_t *e, const char *epre,
                       uint32_t max_len, struct policy_rule *r)
{
    config_check_keys(c, e, epre, rule_keys);
    r->line = (int)config_setting_source_line(e);
    int allow;
    int rc = config_get_enum(c, e, epre, "action", verdict_names, NELEM(verdict_names), &allow);
    if (rc == 1) {
        r->allow = allow;
    } else if (rc == 0) {
        char key[240];
        config_key_join(key, sizeof key, epre, "action");
        config_report(c, e, key, "required: \"allow\" or \"deny\"");
    }
    config_parse_patterns(c, e, epre, "from", 1, max_len, &r->from, &r->n_from);
    config_parse_patterns(c, e, epre, "to", 1, max_len, &r->to, &r->n_to);
}

static void parse_rules(struct config_ctx *c, const config_setting_t *g, uint32_t max_len,
                        struct policy_cfg *p)
{
    const config_setting_t *ls = config_setting_get_member(g, "rules");
    if (!ls)
        return;
    if (config_setting_type(ls) != CONFIG_TYPE_LIST) {
        config_report(c, ls, "policy.rules", "expected a list ( " RULE_EXAMPLE ", ... ), "
                                             "found %s",
                      config_type_desc(config_setting_type(ls)));
        return;
    }
    int n = config_setting_length(ls);
    if (n > POLICY_MAX_RULES) {
        config_report(c, ls, "policy.rules", "%d rules, at most %d are allowed", n,
                      POLICY_MAX_RULES);
        return;
    }
    if (n <= 0)
        return;
    p->rules = calloc((size_t)n, sizeof *p->rules);
    if (!p->rules) {
        c->oom = 1;
        return;
    }
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(ls, (unsigned)i);
        char epre[64];
        snprintf(epre, sizeof epre, "policy.rules[%d]", i);
        if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
            config_report(c, e, epre, "expected a group " RULE_EXAMPLE ", found %s",
                          config_type_desc(config_setting_type(e)));
            continue;
        }
        parse_rule(c, e, epre, max_len, &p->rules[p->n_rules++]);
    }
}

/* ------------------------------------------------------------------ the group */

void config_parse_policy(struct config_ctx *c, const config_setting_t *root,
                         struct relay_config *cfg)
{
    struct policy_cfg *p = &cfg->policy;
    p->default_allow = 1;
    const config_setting_t *g = config_get_group(c, root, "", "policy");
    if (!g)
        return;
    config_check_keys(c, g, "policy", policy_keys);
    uint32_t max_len = cfg->max_endpoint_id_length;
    int e;
    if (config_get_enum(c, g, "policy", "default", verdict_names, NELEM(verdict_names), &e) == 1)
        p->default_allow = e;
    int ctl = config_parse_patterns(c, g, "policy", "controllers", 0, max_len,
                                    &p->controllers, &p->n_controllers);
    int only = 0;
    if (config_get_bool(c, g, "policy", "agents_only_to_controllers", &only) == 1 && only) {
        p->agents_only_to_controllers = 1;
        if (ctl >= 0 && p->n_controllers == 0)
            config_report(c, config_setting_get_member(g, "agents_only_to_controllers"),
                          "policy.agents_only_to_controllers",
                          "true needs the controllers declared in policy.controllers: with "
                          "none, every Record would be denied");
    }
    parse_rules(c, g, max_len, p);
}

void policy_patterns_free(struct policy_pattern *pats, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(pats[i].text);
    free(pats);
}

void policy_cfg_free(struct policy_cfg *p)
{
    for (size_t i = 0; i < p->n_rules; i++) {
        policy_patterns_free(p->rules[i].from, p->rules[i].n_from);
        policy_patterns_free(p->rules[i].to, p->rules[i].n_to);
    }
    free(p->rules);
    policy_patterns_free(p->controllers, p->n_controllers);
    p->rules = NULL;
    p->n_rules = 0;
    p->controllers = NULL;
    p->n_controllers = 0;
}
