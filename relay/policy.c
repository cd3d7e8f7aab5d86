/* policy.c — evaluation of the Record policy (see policy.h).
 *
 * This runs on every Record the relay forwards, so it allocates nothing and reads only
 * the two IDs and the loaded patterns: a linear walk over at most POLICY_MAX_RULES rules
 * of at most POLICY_MAX_PATTERNS patterns per list, each pattern one memcmp. The common
 * deployment has no policy group at all and leaves after two field reads.
 */
#include "relay/policy.h"

#include <string.h>

int policy_pattern_match(const struct policy_pattern *p, struct span id)
{
    switch (p->match) {
    case POLICY_ANY:
        return 1;
    case POLICY_EXACT:
        return id.len == p->len && memcmp(id.ptr, p->text, p->len) == 0;
    case POLICY_PREFIX:
        return id.len >= p->len && memcmp(id.ptr, p->text, p->len) == 0;
    }
    return 0;
}

int policy_list_match(const struct policy_pattern *pats, size_t n, struct span id)
{
    for (size_t i = 0; i < n; i++)
        if (policy_pattern_match(&pats[i], id))
            return 1;
    return 0;
}

int policy_allows(const struct policy_cfg *p, struct span from, struct span to)
{
    if (p->n_rules == 0 && !p->agents_only_to_controllers)
        return p->default_allow;
    if (p->agents_only_to_controllers &&
        !policy_list_match(p->controllers, p->n_controllers, from) &&
        !policy_list_match(p->controllers, p->n_controllers, to))
        return 0;
    for (size_t i = 0; i < p->n_rules; i++) {
        const struct policy_rule *r = &p->rules[i];
        if (policy_list_match(r->from, r->n_from, from) && policy_list_match(r->to, r->n_to, to))
            return r->allow;
    }
    return p->default_allow;
}
