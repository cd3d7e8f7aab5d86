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
#include "relay/config.h"
#include "relay/listener.h"
#include "relay/log.h"
#include "relay/mtp/ws_server.h"
#include "relay/passwd.h"
#include "relay/relay.h"
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

/* The TLS contexts of the TCP listeners (a websocket listener's libwebsockets context
 * hands its handshakes over to its one: tls_server_follow()). */
static int tls_servers_new(struct relay *r)
{
    const struct relay_config *cfg = r->cfg;
    char err[512];
    r->tls = calloc(cfg->n_listeners ? cfg->n_listeners : 1, sizeof *r->tls);
    if (!r->tls) {
        log_error("startup_failed", "reason=no_memory");
        return -1;
    }
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct listener_cfg *l = &cfg->listeners[i];
        if (!l->tls.certificate)
            continue;
        r->tls[i] = tls_server_new(&l->tls, err, sizeof err);
        if (!r->tls[i]) {
            log_error("startup_failed", "reason=tls listener=%s error=\"%s\"", l->name, err);
            return -1;
        }
    }
    return 0;
}

static void tls_servers_free(struct relay *r)
{
    for (size_t i = 0; r->tls && i < r->cfg->n_listeners; i++)
        tls_server_free(r->tls[i]);
    free(r->tls);
    for (size_t i = 0; i < r->n_retired; i++)
        tls_server_free(r->tls_retired[i]);
    free(r->tls_retired);
}

/* Re-read the certificate, key, CA and CRL files of every TLS listener, as
 * NEW (a freshly loaded configuration) names them for the listener of the same name. New
 * connections get the new material; existing ones keep theirs. A listener whose files do
 * not load keeps the old material (logged). */
static void tls_servers_reload(struct relay *r, const struct relay_config *new)
{
    const struct relay_config *cfg = r->cfg;
    char err[512];
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const char *name = cfg->listeners[i].name;
        const struct listener_cfg *l = NULL;
        for (size_t k = 0; k < new->n_listeners; k++)
            if (strcmp(new->listeners[k].name, name) == 0)
                l = &new->listeners[k];
        if (!r->tls[i])
            continue;
        if (!l || !l->tls.certificate || l->type != cfg->listeners[i].type) {
            log_warn("tls_reload_skipped", "listener=%s reason=\"listener removed, changed or "
                     "without tls in the new configuration: restart to apply\"", name);
            continue;
        }
        struct tls_server **ret = realloc(r->tls_retired, (r->n_retired + 1) * sizeof *ret);
        if (ret)
            r->tls_retired = ret;
        struct tls_server *ts = ret ? tls_server_new(&l->tls, err, sizeof err) : NULL;
        if (!ts) {
            log_error("tls_reload_failed", "listener=%s error=\"%s\" action=keep_old", name,
                      ret ? err : "out of memory");
            continue;
        }
        r->tls_retired[r->n_retired++] = atomic_exchange(&r->tls[i], ts);
        log_info("tls_reloaded", "listener=%s certificate=%s", name, l->tls.certificate);
    }
}

/* Password files, as NEW loaded them, for the listeners of the same name that had one. */
static void passwd_reload(struct relay *r, const struct relay_config *new)
{
    const struct relay_config *cfg = r->cfg;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        if (!cfg->listeners[i].passwd)
            continue;
        const struct listener_cfg *l = NULL;
        for (size_t k = 0; k < new->n_listeners; k++)
            if (strcmp(new->listeners[k].name, cfg->listeners[i].name) == 0)
                l = &new->listeners[k];
        if (!l || !l->passwd) {
            log_warn("passwd_reload_skipped", "listener=%s reason=\"no password_file in the new "
                     "configuration: restart to apply\"", cfg->listeners[i].name);
            continue;
        }
        atomic_store(&r->passwd[i], l->passwd);
        log_info("passwd_reloaded", "listener=%s users=%zu", l->name, passwd_count(l->passwd));
    }
}

/* SIGHUP: load the configuration file again. Invalid: every error is logged and nothing
 * changes. Valid: its policy takes effect for every Record from now on, and the TLS
 * material of every TLS listener is re-read; other changes need a restart (said). */
static void reload(struct relay *r)
{
    char err[8192];
    struct relay_config *new = NULL;
    int nerr = config_load(r->cfg->path, &new, err, sizeof err);
    if (nerr != 0) {
        char *save = NULL;
        for (char *line = strtok_r(err, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            char esc[600];
            log_error("reload_refused", "error=\"%s\"",
                      log_escape(esc, sizeof esc, line, strlen(line), 512));
        }
        log_error("reload_refused", "config=%s errors=%d action=keep_old", r->cfg->path, nerr);
        return;
    }
    struct relay_config **ret = realloc(r->cfg_retired, (r->n_cfg_retired + 1) * sizeof *ret);
    if (!ret) {
        config_free(new);
        log_error("reload_refused", "config=%s reason=no_memory action=keep_old", r->cfg->path);
        return;
    }
    r->cfg_retired = ret;
    r->cfg_retired[r->n_cfg_retired++] = new;
    atomic_store_explicit(&r->policy, &new->policy, memory_order_release);
    log_info("policy_reloaded", "rules=%zu controllers=%zu default=%s", new->policy.n_rules,
             new->policy.n_controllers, new->policy.default_allow ? "allow" : "deny");
    tls_servers_reload(r, new);
    passwd_reload(r, new);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct relay *r = arg;
    log_info("signal", "signal=HUP action=reload note=\"the policy and TLS files take effect; "
             "other configuration changes need a restart\"");
    reload(r);
}

static int run(const struct relay_config *cfg)
{
    struct relay r = {.cfg = cfg, .policy = &cfg->policy};
    struct event_base *base = NULL;
    struct event *sigterm = NULL, *sigint = NULL, *sighup = NULL;
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
    if (!r.router || !r.topic_filters || !r.auth_limit || !r.src_limit || !r.workers || !base) {
        log_error("startup_failed", "reason=no_memory");
        goto out;
    }
    if (tls_servers_new(&r) != 0)
        goto out;
    r.passwd = calloc(cfg->n_listeners ? cfg->n_listeners : 1, sizeof *r.passwd);
    if (!r.passwd) {
        log_error("startup_failed", "reason=no_memory");
        goto out;
    }
    for (size_t i = 0; i < cfg->n_listeners; i++)
        r.passwd[i] = cfg->listeners[i].passwd;
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
    tls_servers_free(&r);
    free(r.passwd);
    for (size_t i = 0; i < r.n_cfg_retired; i++)
        config_free(r.cfg_retired[i]);
    free(r.cfg_retired);
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
