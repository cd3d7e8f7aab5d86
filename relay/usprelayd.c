/* usprelayd.c — the daemon: command line, configuration, threads, signals.
 *
 * The main thread runs the accept loop and the signal handlers; N worker threads own
 * the connections. SIGTERM/SIGINT: stop accepting, close every connection with its
 * MTP's goodbye, let queues drain up to relay.shutdown_timeout, exit 0.
 */
#include <errno.h>
#include <pthread.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "relay/auth_limit.h"
#include "relay/cache.h"
#include "relay/config.h"
#include "relay/listener.h"
#include "relay/log.h"
#include "relay/mtp/ws_server.h"
#include "relay/passwd.h"
#include "relay/relay.h"
#include "relay/reload.h"
#include "relay/router.h"
#include "relay/src_limit.h"
#include "relay/tls.h"
#include "relay/worker.h"

#ifndef USPRELAY_VERSION
#define USPRELAY_VERSION "0.1"
#endif

static void usage(FILE *f)
{
    fprintf(f,
            "usage: usprelayd -c FILE [-t] [-d]\n"
            "       usprelayd --hash-password [--iterations N] < password-line\n"
            "  -c FILE   configuration file (libconfig syntax, see usprelay.conf(5))\n"
            "  -t        check the configuration file and exit: 0 valid, 1 invalid\n"
            "  -d        log at debug level (overrides log.level)\n"
            "  -V        print the version and exit\n"
            "  -h        this help\n"
            "  --hash-password  read one password line from standard input and print its\n"
            "                   hash for a password_file (PBKDF2-HMAC-SHA256)\n"
            "  --iterations N   PBKDF2 iterations for --hash-password (%u..%u, default %u)\n",
            PASSWD_MIN_ITERATIONS, PASSWD_MAX_ITERATIONS, PASSWD_DEFAULT_ITERATIONS);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct event_base *base = arg;
    log_info("signal", "signal=%s action=stop", sig == SIGTERM ? "TERM" : "INT");
    event_base_loopbreak(base);
}

/* The signals the main loop handles; blocked everywhere else. */
static sigset_t *stop_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
    return set;
}

/* Append " NAME=V" for counter C to LINE (N bytes used so far, CAP in all). */
static size_t append_stat(char *line, size_t n, size_t cap, const struct relay *r,
                          enum stats_counter c)
{
    int w = snprintf(line + n, cap - n, "%s%s=%llu", n ? " " : "", stats_name(c),
                     (unsigned long long)relay_stat(r, c));
    return w < 0 || (size_t)w >= cap - n ? n : n + (size_t)w;
}

static void log_summary(const struct relay *r)
{
    /* The main counters always, in this order; any other that moved after them. */
    static const enum stats_counter always[] = {
        STAT_records_in,     STAT_records_out,     STAT_drop_no_route, STAT_drop_spoofed,
        STAT_drop_malformed, STAT_drop_queue_full, STAT_conn_accepted};
    char line[2048];
    size_t n = 0, k;
    for (k = 0; k < sizeof always / sizeof always[0]; k++)
        n = append_stat(line, n, sizeof line, r, always[k]);
    for (int c = 0; c < STAT_COUNT; c++) {
        for (k = 0; k < sizeof always / sizeof always[0] && always[k] != (enum stats_counter)c; k++)
            ;
        if (k == sizeof always / sizeof always[0] && relay_stat(r, (enum stats_counter)c))
            n = append_stat(line, n, sizeof line, r, (enum stats_counter)c);
    }
    log_info("stopped", "%s", line);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct relay *r = arg;
    log_info("signal", "signal=HUP action=reload note=\"the policy and TLS files take effect; "
             "other configuration changes need a restart\"");
    reload_apply(r);
}

/* Once a second: cached Records past cache.ttl go, even for endpoints that never
 * return. */
/* An expired unit may have held up an endpoint's other Records: its connection, if
 * any, drains. (Called with the cache locked; takes the router's and a mailbox's.) */
static void on_cache_head_changed(void *arg, struct span eid, struct span from)
{
    struct relay *r = arg;
    struct route rt;
    if (router_lookup(r->router, eid, from, &rt) == 0 && rt.worker < r->n_workers)
        worker_post_drain(r->workers[rt.worker], rt.conn_id);
}

static void on_cache_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct relay *r = arg;
    cache_expire(r->cache, rbuf_now_ns(), &r->acceptor, on_cache_head_changed, r);
}

static struct cache *cache_from_config(const struct cache_cfg *cc)
{
    struct cache_limits lim = {
        .ttl_ns = (uint64_t)cc->ttl_ms * 1000000u,
        .max_records_per_endpoint = cc->max_records_per_endpoint,
        .max_bytes_per_endpoint = cc->max_bytes_per_endpoint,
        .max_records = cc->max_records,
        .max_bytes = cc->max_bytes,
    };
    return cache_new(&lim);
}

static int run(const struct relay_config *cfg)
{
    struct relay r = {.cfg = cfg};
    struct event_base *base = NULL;
    struct event *sigterm = NULL, *sigint = NULL, *sighup = NULL, *cache_tick = NULL;
    sigset_t stop_sigs;
    struct listener **ls = NULL;
    size_t n_ls = 0;
    unsigned started = 0;
    int rc = 1;

    int has_ws = 0;
    for (size_t i = 0; i < cfg->n_listeners; i++)
        has_ws |= cfg->listeners[i].type == LISTENER_WEBSOCKET;

    r.router = router_new();
    r.topic_filters = topic_filters_new();
    r.auth_limit = auth_limit_new();
    /* Entries only for addresses with open connections: never more than max_connections. */
    r.src_limit = src_limit_new(cfg->max_connections, cfg->n_listeners);
    r.workers = calloc(cfg->workers + 1, sizeof *r.workers);
    base = event_base_new();
    int cache_ok = 1;
    if (cfg->cache.enabled && base) {
        static const struct timeval second = {1, 0};
        r.cache = cache_from_config(&cfg->cache);
        cache_tick = event_new(base, -1, EV_PERSIST, on_cache_tick, &r);
        cache_ok = r.cache && cache_tick && event_add(cache_tick, &second) == 0;
    }
    if (!r.router || !r.topic_filters || !r.auth_limit || !r.src_limit || !r.workers || !base ||
        !cache_ok) {
        log_error("startup_failed", "reason=no_memory");
        goto out;
    }
    if (reload_init(&r) != 0)
        goto out;
    for (unsigned i = 0; i < cfg->workers; i++) {
        r.workers[i] = worker_new(&r, i);
        if (!r.workers[i]) {
            log_error("startup_failed", "reason=worker_create worker=%u", i);
            goto out;
        }
        r.n_workers = r.n_io_workers = i + 1;
    }
    if (has_ws) {
        /* The WebSocket thread is the last worker: routes name it by that index. */
        r.ws = ws_server_new(&r, cfg->workers);
        if (!r.ws)
            goto out;
        r.workers[r.n_workers++] = ws_server_worker(r.ws);
    }
    if (listeners_open(&r, base, &ls, &n_ls) != 0)
        goto out;
    for (; started < cfg->workers; started++) {
        if (worker_start(r.workers[started]) != 0) {
            log_error("startup_failed", "reason=thread_create worker=%u", started);
            goto out;
        }
    }
    if (r.ws) {
        if (ws_server_start(r.ws) != 0) {
            log_error("startup_failed", "reason=thread_create worker=websocket");
            goto out;
        }
        started++;
    }
    sigterm = evsignal_new(base, SIGTERM, on_stop_signal, base);
    sigint = evsignal_new(base, SIGINT, on_stop_signal, base);
    sighup = evsignal_new(base, SIGHUP, on_hup, &r);
    if (!sigterm || !sigint || !sighup || evsignal_add(sigterm, NULL) != 0 ||
        evsignal_add(sigint, NULL) != 0 || evsignal_add(sighup, NULL) != 0) {
        log_error("startup_failed", "reason=signals");
        goto out;
    }
    /* Handlers are in place: let the main thread take the signals (pending ones now). */
    pthread_sigmask(SIG_UNBLOCK, stop_signals(&stop_sigs), NULL);
    log_info("started", "version=%s config=%s workers=%u listeners=%zu endpoint_id=%s", USPRELAY_VERSION,
             cfg->path, cfg->workers, n_ls, cfg->endpoint_id);

    event_base_dispatch(base);
    rc = 0;
out:
    /* Stop accepting first, then let every worker say goodbye and drain. */
    if (ls)
        listeners_close(ls, n_ls);
    for (unsigned i = 0; i < started; i++)
        worker_post_stop(r.workers[i]);
    for (unsigned i = 0; i < started; i++)
        worker_join(r.workers[i]);
    ws_server_join(r.ws);
    if (started)
        log_summary(&r);
    /* Sessions left in the WebSocket context are released before their worker goes. */
    ws_server_free(r.ws);
    for (unsigned i = 0; r.workers && i < r.n_workers; i++)
        worker_free(r.workers[i]);
    free(r.workers);
    router_free(r.router);
    topic_filters_free(r.topic_filters);
    auth_limit_free(r.auth_limit);
    src_limit_free(r.src_limit);
    reload_fini(&r);
    if (cache_tick)
        event_free(cache_tick);
    cache_free(r.cache);
    if (sigterm)
        event_free(sigterm);
    if (sigint)
        event_free(sigint);
    if (sighup)
        event_free(sighup);
    if (base)
        event_base_free(base);
    return rc;
}

/* --hash-password: one line from standard input (its "\n", and a "\r" before it,
 * dropped) to a password_file hash on standard output. Exit status. */
static int hash_password(unsigned iterations)
{
    char pass[4096], out[PASSWD_HASH_MAX];
    size_t n = 0;
    int ch, rc = 1;
    while ((ch = getchar()) != EOF && ch != '\n') {
        if (n == sizeof pass) {
            fprintf(stderr, "usprelayd: password longer than %zu bytes\n", sizeof pass);
            goto out;
        }
        pass[n++] = (char)ch;
    }
    if (ferror(stdin)) {
        fprintf(stderr, "usprelayd: reading the password: %s\n", strerror(errno));
        goto out;
    }
    if (n && pass[n - 1] == '\r')
        n--;
    if (n == 0) {
        fprintf(stderr, "usprelayd: empty password (give it on standard input)\n");
        goto out;
    }
    if (passwd_hash(pass, n, iterations, out, sizeof out) != 0) {
        fprintf(stderr, "usprelayd: hashing failed\n");
        goto out;
    }
    printf("%s\n", out);
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    explicit_bzero(pass, sizeof pass);
    return rc;
}

enum { OPT_HASH_PASSWORD = 256, OPT_ITERATIONS };

int main(int argc, char **argv)
{
    const char *path = NULL;
    int test_only = 0, debug = 0, opt;
    int hash_pw = 0;
    const char *iterations = NULL;
    sigset_t stop_sigs;
    static const struct option long_opts[] = {
        {"hash-password", no_argument, NULL, OPT_HASH_PASSWORD},
        {"iterations", required_argument, NULL, OPT_ITERATIONS},
        {NULL, 0, NULL, 0},
    };

    /* Until the main loop's handlers are in place, and in the worker threads for good,
     * the stop signals stay blocked: a SIGTERM during startup is taken by the main loop
     * once it runs, never by the default action. */
    pthread_sigmask(SIG_BLOCK, stop_signals(&stop_sigs), NULL);

    while ((opt = getopt_long(argc, argv, "c:tdVh", long_opts, NULL)) != -1) {
        switch (opt) {
        case OPT_HASH_PASSWORD:
            hash_pw = 1;
            break;
        case OPT_ITERATIONS:
            iterations = optarg;
            break;
        case 'c':
            path = optarg;
            break;
        case 't':
            test_only = 1;
            break;
        case 'd':
            debug = 1;
            break;
        case 'V':
            printf("usprelayd %s\n", USPRELAY_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (hash_pw || iterations) {
        char *end;
        errno = 0;
        unsigned long it = iterations ? strtoul(iterations, &end, 10) : PASSWD_DEFAULT_ITERATIONS;
        if (iterations && (errno || end == iterations || *end || iterations[0] == '-' ||
                           it < PASSWD_MIN_ITERATIONS || it > PASSWD_MAX_ITERATIONS)) {
            fprintf(stderr, "usprelayd: --iterations must be %u..%u\n", PASSWD_MIN_ITERATIONS,
                    PASSWD_MAX_ITERATIONS);
            return 2;
        }
        if (!hash_pw || path || test_only || optind != argc) {
            usage(stderr);
            return 2;
        }
        return hash_password((unsigned)it);
    }
    if (!path || optind != argc) {
        usage(stderr);
        return 2;
    }

    char err[8192];
    struct relay_config *cfg = NULL;
    int nerr = config_load(path, &cfg, err, sizeof err);
    if (nerr != 0) {
        fprintf(stderr, "%s", err);
        if (err[0] && err[strlen(err) - 1] != '\n')
            fputc('\n', stderr);
        fprintf(stderr, "usprelayd: %s: %d error%s\n", path, nerr, nerr == 1 ? "" : "s");
        return 1;
    }
    if (test_only) {
        printf("usprelayd: %s: configuration ok (%zu listener%s, %u workers)\n", path,
               cfg->n_listeners, cfg->n_listeners == 1 ? "" : "s", cfg->workers);
        config_free(cfg);
        return 0;
    }
    log_set_level(debug ? LOG_DEBUG : cfg->log_level);
    signal(SIGPIPE, SIG_IGN);
    int rc = run(cfg);
    config_free(cfg);
    return rc;
}
