/* config.c — read and validate the relay's libconfig file (see config.h).
 *
 * The loader walks every group and list itself, so an unknown key, a wrong type or an
 * out-of-range value anywhere is an error, and all errors are collected, sorted by file
 * and line and reported together. The result is fully owned: every string is copied out
 * of libconfig's tree before it is destroyed.
 *
 * This file holds the entry points, the defaults and the relay, log and limits groups.
 * The rest of the loader, behind config_ctx.h: config_ctx.c collects the errors,
 * config_scan.c pre-scans the raw text for what libconfig would misread,
 * config_get.c reads typed values and rejects unknown keys, config_listeners.c parses
 * the listeners, config_cache.c the cache group; config_policy.c (policy.h) parses the
 * policy group.
 */
#include "relay/config.h"

#include <libconfig.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "relay/config_ctx.h"
#include "relay/passwd.h"
#include "relay/policy.h"

#define DEFAULT_ENDPOINT_ID "self::usprelay"
#define MAX_WORKERS 256
#define MAX_RECORD_SIZE_LIMIT 268435455LL /* 2^28 - 1: well inside every length field */
#define MAX_CONN_LIMIT 10000000         /* as relay.max_connections */
#define MAX_ACCEPT_RATE 1000000         /* connections a second: beyond any acceptor */

/* ------------------------------------------------------------------ names */

const char *listener_type_name(enum listener_type t)
{
    switch (t) {
    case LISTENER_STOMP: return "stomp";
    case LISTENER_UDS: return "uds";
    case LISTENER_MQTT: return "mqtt";
    case LISTENER_WEBSOCKET: return "websocket";
    }
    return "?";
}

static const char *const from_id_names[] = {"enforce", "log", "off"};
static const char *const dup_id_names[] = {"replace-old", "refuse-new"};
static const char *const connect_records_names[] = {"pass", "translate"};

const char *from_id_policy_name(enum from_id_policy p)
{
    return (unsigned)p < NELEM(from_id_names) ? from_id_names[p] : "?";
}

const char *duplicate_id_policy_name(enum duplicate_id_policy p)
{
    return (unsigned)p < NELEM(dup_id_names) ? dup_id_names[p] : "?";
}

const char *connect_records_name(enum connect_records_mode m)
{
    return (unsigned)m < NELEM(connect_records_names) ? connect_records_names[m] : "?";
}

/* ------------------------------------------------------------------ groups */

static const char *const top_keys[] = {"relay",  "log",       "limits", "policy",
                                       "cache", "listeners", NULL};
static const char *const relay_keys[] = {
    "endpoint_id",     "workers",         "max_endpoint_id_length", "from_id_policy",
    "duplicate_id_policy", "connect_records", "shutdown_timeout",   "max_connections", NULL};
static const char *const log_keys[] = {"level", NULL};
static const char *const limits_keys[] = {
    "max_record_size",   "max_unidentified_input",     "max_output_queue",
    "handshake_timeout", "max_connections_per_source", "accept_rate",
    "accept_burst",      "stall_timeout",              NULL};

/* Where each limit was set, for the max_output_queue >= max_record_size check. */
struct limits_seen {
    const config_setting_t *record;
    const config_setting_t *queue;
};

static void parse_limits(struct config_ctx *c, const config_setting_t *g, const char *prefix,
                         struct limits_cfg *lim, struct limits_seen *seen)
{
    config_check_keys(c, g, prefix, limits_keys);
    long long v;
    if (config_get_u32(c, g, prefix, "max_record_size", 64, MAX_RECORD_SIZE_LIMIT,
                       &lim->max_record_size) == 1)
        seen->record = config_setting_get_member(g, "max_record_size");
    config_get_u32(c, g, prefix, "max_unidentified_input", 1024, MAX_RECORD_SIZE_LIMIT,
                   &lim->max_unidentified_input);
    if (config_get_int(c, g, prefix, "max_output_queue", 64, LLONG_MAX, &v) == 1) {
        lim->max_output_queue = (uint64_t)v;
        seen->queue = config_setting_get_member(g, "max_output_queue");
    }
    config_get_seconds(c, g, prefix, "handshake_timeout", 0.1, 3600.0,
                       &lim->handshake_timeout_ms);
    config_get_seconds(c, g, prefix, "stall_timeout", 0.1, 3600.0, &lim->stall_timeout_ms);
    /* 0 turns each of these off; accept_burst 0 means "as many as accept_rate". */
    config_get_u32(c, g, prefix, "max_connections_per_source", 0, MAX_CONN_LIMIT,
                   &lim->max_connections_per_source);
    config_get_u32(c, g, prefix, "accept_rate", 0, MAX_ACCEPT_RATE, &lim->accept_rate);
    config_get_u32(c, g, prefix, "accept_burst", 0, MAX_ACCEPT_RATE, &lim->accept_burst);
}

/* A queue must hold at least one Record of the largest size. Checked on the effective
 * values, reported where the user set one of the two. */
static void check_limits(struct config_ctx *c, const char *prefix,
                         const struct limits_cfg *lim, const struct limits_seen *seen)
{
    if (lim->max_output_queue >= lim->max_record_size || (!seen->queue && !seen->record))
        return;
    char key[160];
    config_key_join(key, sizeof key, prefix,
                    seen->queue ? "max_output_queue" : "max_record_size");
    config_report(c, seen->queue ? seen->queue : seen->record, key,
                  "max_output_queue (%llu) must be at least max_record_size (%lu)",
                  (unsigned long long)lim->max_output_queue,
                  (unsigned long)lim->max_record_size);
}

void config_parse_limits(struct config_ctx *c, const config_setting_t *g, const char *prefix,
                         struct limits_cfg *lim)
{
    struct limits_seen seen = {NULL, NULL};
    parse_limits(c, g, prefix, lim, &seen);
    check_limits(c, prefix, lim, &seen);
}

static void parse_relay(struct config_ctx *c, const config_setting_t *root,
                        struct relay_config *cfg)
{
    const config_setting_t *g = config_get_group(c, root, "", "relay");
    const char *id = DEFAULT_ENDPOINT_ID;
    long long workers = 0;
    if (g) {
        config_check_keys(c, g, "relay", relay_keys);
        config_get_int(c, g, "relay", "workers", 0, MAX_WORKERS, &workers);
        config_get_u32(c, g, "relay", "max_endpoint_id_length", 32, 4096,
                       &cfg->max_endpoint_id_length);
        int e;
        if (config_get_enum(c, g, "relay", "from_id_policy", from_id_names,
                            NELEM(from_id_names), &e) == 1)
            cfg->from_id_policy = (enum from_id_policy)e;
        if (config_get_enum(c, g, "relay", "duplicate_id_policy", dup_id_names,
                            NELEM(dup_id_names), &e) == 1)
            cfg->duplicate_id_policy = (enum duplicate_id_policy)e;
        if (config_get_enum(c, g, "relay", "connect_records", connect_records_names,
                            NELEM(connect_records_names), &e) == 1)
            cfg->connect_records = (enum connect_records_mode)e;
        config_get_seconds(c, g, "relay", "shutdown_timeout", 0.0, 300.0,
                           &cfg->shutdown_timeout_ms);
        config_get_u32(c, g, "relay", "max_connections", 0, 10000000, &cfg->max_connections);
        if (config_get_string(c, g, "relay", "endpoint_id", &id) == 1)
            config_check_eid(c, g, "relay", "endpoint_id", id, cfg->max_endpoint_id_length);
    }
    cfg->endpoint_id = config_dup(c, id);

    if (cfg->max_connections == 0) {
        /* Leave descriptors for listeners, logs and the process itself. */
        struct rlimit rl;
        rlim_t n = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
        if (n == RLIM_INFINITY || n > 10000000 + 64)
            n = 10000000 + 64;
        cfg->max_connections = n > 128 ? (uint32_t)(n - 64) : 64;
    }
    if (workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        workers = n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : n;
    }
    cfg->workers = (unsigned)workers;
}

static void parse_log(struct config_ctx *c, const config_setting_t *root,
                      struct relay_config *cfg)
{
    const config_setting_t *g = config_get_group(c, root, "", "log");
    if (!g)
        return;
    config_check_keys(c, g, "log", log_keys);
    const char *v;
    char qb[CONFIG_QUOTE_CAP];
    if (config_get_string(c, g, "log", "level", &v) == 1 &&
        log_level_parse(v, &cfg->log_level) != 0)
        config_report(c, config_setting_get_member(g, "level"), "log.level",
                      "%s is not one of: error, warn, info, debug", config_quote(qb, v));
}

/* ------------------------------------------------------------------ entry points */

static void set_defaults(struct relay_config *cfg)
{
    cfg->workers = 0;
    cfg->max_endpoint_id_length = 256;
    cfg->from_id_policy = FROM_ID_ENFORCE;
    cfg->duplicate_id_policy = DUP_REPLACE_OLD;
    cfg->connect_records = CONNECT_RECORDS_PASS;
    cfg->shutdown_timeout_ms = 5000;
    cfg->log_level = LOG_INFO;
    cfg->limits.max_record_size = 5242880;
    cfg->limits.max_unidentified_input = 65536;
    cfg->limits.max_output_queue = 16777216;
    cfg->limits.handshake_timeout_ms = 10000;
    cfg->limits.stall_timeout_ms = 60000;
}

static void validate(struct config_ctx *c, const config_t *lc, struct relay_config *cfg)
{
    const config_setting_t *root = config_root_setting(lc);
    config_check_keys(c, root, "", top_keys);
    parse_relay(c, root, cfg);
    parse_log(c, root, cfg);
    const config_setting_t *lim = config_get_group(c, root, "", "limits");
    if (lim)
        config_parse_limits(c, lim, "limits", &cfg->limits);
    config_parse_policy(c, root, cfg);
    config_parse_cache(c, root, cfg);
    config_parse_listeners(c, root, cfg);
}

int config_load(const char *path, struct relay_config **out, char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    struct config_ctx c;
    if (config_ctx_init(&c, path) != 0) {
        if (err && errlen)
            snprintf(err, errlen, "%s:0: -: out of memory\n", path);
        return 1;
    }

    struct relay_config *cfg = calloc(1, sizeof *cfg);
    char *text = NULL;
    if (!cfg) {
        c.oom = 1;
        c.count++;
    } else if (config_scan(&c, &text) == 0) {
        /* libconfig parses the very text that was scanned. */
        config_t lc;
        config_init(&lc);
        config_set_include_dir(&lc, c.incdir);
        if (!config_read_string(&lc, text)) {
            const char *f = config_error_file(&lc);
            config_report_at(&c, f, (unsigned)config_error_line(&lc), "-", "%s",
                             config_error_text(&lc) ? config_error_text(&lc) : "parse error");
        } else {
            set_defaults(cfg);
            cfg->path = config_dup(&c, path);
            validate(&c, &lc, cfg);
        }
        config_destroy(&lc);
        free(text);
    }

    if (c.oom && c.count == 0)
        c.count = 1;
    int count = c.count;
    config_flush_errors(&c, err, errlen);
    config_ctx_free(&c);
    if (count) {
        config_free(cfg);
        return count;
    }
    *out = cfg;
    return 0;
}

static void free_tls(struct tls_cfg *t)
{
    free(t->certificate);
    free(t->key);
    free(t->ca);
    free(t->crl);
    free(t->ciphers);
    free(t->ciphersuites);
    free(t->groups);
    for (size_t k = 0; k < t->n_sni; k++) {
        free(t->sni[k].server_name);
        free(t->sni[k].certificate);
        free(t->sni[k].key);
    }
    free(t->sni);
    for (size_t k = 0; k < t->n_cn_map; k++) {
        free(t->cn_map[k].cn);
        free(t->cn_map[k].endpoint_id);
    }
    free(t->cn_map);
}

void config_free(struct relay_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        struct listener_cfg *l = &cfg->listeners[i];
        free(l->name);
        free(l->address);
        free(l->stomp.subscribe_dest_template);
        free(l->stomp.login);
        free(l->stomp.passcode);
        free(l->uds.path);
        free(l->uds.owner);
        free(l->uds.group);
        free(l->uds.peer_endpoint_id);
        free(l->mqtt.subscribe_topic_template);
        free(l->mqtt.username);
        free(l->mqtt.password);
        if (l->mqtt.subscribe_any)
            for (size_t k = 0; l->mqtt.subscribe_any[k]; k++)
                free(l->mqtt.subscribe_any[k]);
        free(l->mqtt.subscribe_any);
        for (size_t k = 0; k < l->ws.n_controllers; k++) {
            free(l->ws.controllers[k].path);
            free(l->ws.controllers[k].endpoint_id);
        }
        free(l->ws.controllers);
        for (size_t k = 0; k < l->ws.n_paths; k++)
            free(l->ws.paths[k]);
        free(l->ws.paths);
        free(l->ws.mqtt_listener);
        free_tls(&l->tls);
        free(l->password_file);
        passwd_free(l->passwd);
    }
    free(cfg->listeners);
    policy_cfg_free(&cfg->policy);
    policy_patterns_free(cfg->cache.exclude, cfg->cache.n_exclude);
    free(cfg->endpoint_id);
    free(cfg->path);
    free(cfg);
}
