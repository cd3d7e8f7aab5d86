/* config_cache.c — the configuration loader's part for the top-level "cache" group
 * (struct cache_cfg in config.h; relay/cache.h is what it configures, and
 * docs/configuration.md "The cache group" is the reference).
 *
 * The bounds must nest: one Record of limits.max_record_size fits an endpoint's share,
 * and an endpoint's share fits the whole. A bound the file does not set defaults to its
 * documented value raised as far as the bounds it must hold require, so a file that
 * raises limits.max_record_size or a per-endpoint bound alone stays valid; a bound the
 * file sets too small is an error naming both keys. exclude uses the policy group's
 * pattern syntax and checks (config_policy.c).
 */
#include <stdio.h>

#include "relay/config_ctx.h"
#include "relay/policy.h"

#define MIB (1024ull * 1024ull)
#define TTL_MIN_S 0.1
#define TTL_MAX_S 2592000.0             /* 30 days */
#define MAX_RECORDS_PER_ENDPOINT 10000000
#define MAX_RECORDS 1000000000
#define MAX_BYTES (1LL << 40)           /* 1 TiB: beyond any memory the cache may hold */
#define MIN_BYTES 64                    /* the smallest limits.max_record_size */

#define DEFAULT_TTL_MS (3600u * 1000u)
#define DEFAULT_RECORDS_PER_ENDPOINT 1000u
#define DEFAULT_BYTES_PER_ENDPOINT (16 * MIB)
#define DEFAULT_RECORDS 1000000u
#define DEFAULT_BYTES (256 * MIB)

static const char *const cache_keys[] = {
    "enabled",     "ttl",       "max_records_per_endpoint", "max_bytes_per_endpoint",
    "max_records", "max_bytes", "exclude",                  NULL};

static uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* Member NAME of G as a uint64_t in [LO, HI]; the config_get_int() result. */
static int get_u64(struct config_ctx *c, const config_setting_t *g, const char *name,
                   long long lo, long long hi, uint64_t *out)
{
    long long v;
    int r = config_get_int(c, g, "cache", name, lo, hi, &v);
    if (r == 1)
        *out = (uint64_t)v;
    return r;
}

/* The bounds of group G over the defaults in CC, checked against each other and against
 * MAX_RECORD (limits.max_record_size). */
static void parse_bounds(struct config_ctx *c, const config_setting_t *g, uint32_t max_record,
                         struct cache_cfg *cc)
{
    int r_per_rec = config_get_u32(c, g, "cache", "max_records_per_endpoint", 1,
                                   MAX_RECORDS_PER_ENDPOINT, &cc->max_records_per_endpoint);
    int r_per_bytes = get_u64(c, g, "max_bytes_per_endpoint", MIN_BYTES, MAX_BYTES,
                              &cc->max_bytes_per_endpoint);
    int r_rec = get_u64(c, g, "max_records", 1, MAX_RECORDS, &cc->max_records);
    int r_bytes = get_u64(c, g, "max_bytes", MIN_BYTES, MAX_BYTES, &cc->max_bytes);

    /* A bound left out grows to hold the one below it. A set one is checked, unless what
     * it is checked against was wrong: that is reported already, and its default would
     * only add a second, misleading error. */
    if (r_per_bytes == 0)
        cc->max_bytes_per_endpoint = max_u64(cc->max_bytes_per_endpoint, max_record);
    else if (r_per_bytes == 1 && cc->max_bytes_per_endpoint < max_record)
        config_report(c, config_setting_get_member(g, "max_bytes_per_endpoint"),
                      "cache.max_bytes_per_endpoint",
                      "%llu must be at least limits.max_record_size (%lu): a Record of that "
                      "size could never be cached",
                      (unsigned long long)cc->max_bytes_per_endpoint,
                      (unsigned long)max_record);

    if (r_rec == 0)
        cc->max_records = max_u64(cc->max_records, cc->max_records_per_endpoint);
    else if (r_rec == 1 && r_per_rec >= 0 && cc->max_records < cc->max_records_per_endpoint)
        config_report(c, config_setting_get_member(g, "max_records"), "cache.max_records",
                      "%llu must be at least cache.max_records_per_endpoint (%lu)",
                      (unsigned long long)cc->max_records,
                      (unsigned long)cc->max_records_per_endpoint);

    if (r_bytes == 0)
        cc->max_bytes = max_u64(cc->max_bytes, cc->max_bytes_per_endpoint);
    else if (r_bytes == 1 && r_per_bytes >= 0 && cc->max_bytes < cc->max_bytes_per_endpoint)
        config_report(c, config_setting_get_member(g, "max_bytes"), "cache.max_bytes",
                      "%llu must be at least cache.max_bytes_per_endpoint (%llu)",
                      (unsigned long long)cc->max_bytes,
                      (unsigned long long)cc->max_bytes_per_endpoint);
}

void config_parse_cache(struct config_ctx *c, const config_setting_t *root,
                        struct relay_config *cfg)
{
    struct cache_cfg *cc = &cfg->cache;
    cc->enabled = 1;
    cc->ttl_ms = DEFAULT_TTL_MS;
    cc->max_records_per_endpoint = DEFAULT_RECORDS_PER_ENDPOINT;
    cc->max_bytes_per_endpoint = max_u64(DEFAULT_BYTES_PER_ENDPOINT,
                                         cfg->limits.max_record_size);
    cc->max_records = DEFAULT_RECORDS;
    cc->max_bytes = max_u64(DEFAULT_BYTES, cc->max_bytes_per_endpoint);
    cc->exclude = NULL;
    cc->n_exclude = 0;
    const config_setting_t *g = config_get_group(c, root, "", "cache");
    if (!g)
        return;
    cc->max_bytes_per_endpoint = DEFAULT_BYTES_PER_ENDPOINT;
    cc->max_bytes = DEFAULT_BYTES;
    config_check_keys(c, g, "cache", cache_keys);
    config_get_bool(c, g, "cache", "enabled", &cc->enabled);
    config_get_seconds(c, g, "cache", "ttl", TTL_MIN_S, TTL_MAX_S, &cc->ttl_ms);
    parse_bounds(c, g, cfg->limits.max_record_size, cc);
    config_parse_patterns(c, g, "cache", "exclude", 0, cfg->max_endpoint_id_length,
                          &cc->exclude, &cc->n_exclude);
}
