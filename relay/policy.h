/* policy.h — who may send Records to whom: the top-level policy group (config.h,
 * struct policy_cfg).
 *
 * forward_record() asks policy_allows() about every Record after the identity checks and
 * before routing, and drops the ones it refuses as drop_policy. Evaluation is
 * allocation-free byte comparison of spans, like every other endpoint ID comparison in
 * the relay. config_policy.c loads the group; docs/configuration.md ("The policy group")
 * is the reference and docs/security.md ("Policy") says what it protects.
 */
#ifndef USPRELAY_POLICY_H
#define USPRELAY_POLICY_H

#include "relay/config.h"
#include "relay/record.h"

/* Limits of the group, so a policy is always evaluated in bounded time. */
#define POLICY_MAX_RULES 1024
#define POLICY_MAX_PATTERNS 256 /* per list: controllers, and each rule's from and to */

/* Does pattern P match endpoint ID ID? */
int policy_pattern_match(const struct policy_pattern *p, struct span id);

/* Is ID matched by any of the N patterns PATS? */
int policy_list_match(const struct policy_pattern *pats, size_t n, struct span id);

/* 1 when policy P lets FROM send a Record to TO, 0 when it denies it:
 *  1. agents_only_to_controllers, FROM is no declared controller and TO is none: deny;
 *  2. the first rule whose from list matches FROM and whose to list matches TO decides;
 *  3. else default_allow.
 * With no rules and agents_only_to_controllers off this is just default_allow. */
int policy_allows(const struct policy_cfg *p, struct span from, struct span to);

/* ---- loading (config_policy.c), for the configuration loader (config.c) */

struct config_ctx;
struct config_setting_t;

/* Parse the optional "policy" group of ROOT into CFG->policy (relay.max_endpoint_id_length
 * must already be parsed: patterns are checked against it). Without the group the policy
 * allows everything. Errors are reported into C. */
void config_parse_policy(struct config_ctx *c, const struct config_setting_t *root,
                         struct relay_config *cfg);

/* Member NAME of group G (key path PRE): a list of endpoint ID patterns (the policy
 * syntax: an ID, "prefix*" or "*"), stored in *OUT (*N_OUT entries; free with
 * policy_patterns_free()). Returns 1 when present and valid, 0 when absent (reported when
 * REQUIRED), -1 when wrong (reported). Also used by the cache group's exclude. */
int config_parse_patterns(struct config_ctx *c, const struct config_setting_t *g,
                          const char *pre, const char *name, int required, uint32_t max_len,
                          struct policy_pattern **out, size_t *n_out);

void policy_patterns_free(struct policy_pattern *pats, size_t n);

/* Free what config_parse_policy() allocated in P (P itself is not freed). */
void policy_cfg_free(struct policy_cfg *p);

#endif
