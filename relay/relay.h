/* relay.h — the process-wide context every thread shares (read-mostly).
 *
 * The configuration is immutable once loaded; the router has its own locks; the rest
 * is set before the workers start and only read afterwards.
 */
#ifndef USPRELAY_RELAY_H
#define USPRELAY_RELAY_H

#include <stdatomic.h>
#include <stdint.h>

#include "relay/config.h"
#include "relay/router.h"
#include "relay/stats.h"
#include "relay/topic_filters.h"

struct auth_limit;
struct cache;
struct config_ref;
struct grace;
struct src_limit;
struct tls_server;
struct worker;
struct ws_server;

struct relay {
    const struct relay_config *cfg;
    struct router *router;
    struct topic_filters *topic_filters; /* MQTT wildcard subscriptions (subscribe_any) */
    struct worker **workers;     /* the I/O workers, then the WebSocket thread's if any */
    unsigned n_workers;
    unsigned n_io_workers;       /* libevent workers: the first n_io_workers of workers */
    struct ws_server *ws;        /* WebSocket service thread, NULL without ws listeners */
    struct auth_limit *auth_limit; /* failed logins per source address (all workers) */
    struct src_limit *src_limit; /* open connections per source address and accept rate
                                    per listener (all workers) */
    struct cache *cache;         /* offline cache; NULL when cache.enabled is false */
    /* What SIGHUP reloads (relay/reload.c); workers read the atomics, the main thread
     * swaps them and frees what they replace once unused (relay/grace.c). */
    struct tls_server *_Atomic *tls; /* per listener (index in cfg->listeners); NULL: plain */
    _Atomic(const struct policy_cfg *) policy; /* cfg->policy, or a reloaded one's */
    struct passwd_db *_Atomic *passwd;         /* per listener: its password_file, or NULL */
    struct config_ref *cfg_live;       /* the configuration the policy in force is from */
    struct config_ref **passwd_owner;  /* per listener: configuration of its passwd */
    struct grace *grace;               /* releases waiting for the workers (main thread) */
    _Atomic uint64_t next_conn_id;
    _Atomic uint32_t live_conns; /* accepted and not yet freed, against max_connections */
    struct stats acceptor;       /* counters of the accepting thread */
};

/* Sum of counter C over every worker. */
uint64_t relay_stat(const struct relay *r, enum stats_counter c);

#endif
