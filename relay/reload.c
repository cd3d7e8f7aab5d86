/* reload.c — taking up a re-read configuration's policy, password files and TLS
 * material in a running relay, and freeing what they replace once unused (see reload.h).
 */
#include "relay/reload.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "relay/config.h"
#include "relay/grace.h"
#include "relay/log.h"
#include "relay/passwd.h"
#include "relay/relay.h"
#include "relay/tls.h"

/* A configuration in use by the reload machinery: one reference while it is the live
 * one (policy and password files in force), one per TLS server built from it. The
 * start-up configuration belongs to main(), so its last reference frees only this. */
struct config_ref {
    struct relay_config *cfg;
    int owned; /* free cfg with the last reference */
    atomic_uint refs;
};

static struct config_ref *config_ref_new(struct relay_config *cfg, int owned)
{
    struct config_ref *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cfg = cfg;
    c->owned = owned;
    atomic_init(&c->refs, 1);
    return c;
}

static void config_ref_take(struct config_ref *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

/* Any thread: a TLS server's last connection may go on a worker. */
static void config_ref_drop(void *arg)
{
    struct config_ref *c = arg;
    if (!c || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (c->owned)
        config_free(c->cfg);
    free(c);
}

static void tls_server_drop(void *arg)
{
    tls_server_unref(arg);
}

/* A TLS server for listener L of configuration C, holding a reference on C for as long
 * as it lives (its connections read C's identity settings). NULL: ERR says why. */
static struct tls_server *tls_server_of(struct config_ref *c, const struct listener_cfg *l,
                                        char *err, size_t errlen)
{
    struct tls_server *ts = tls_server_new(&l->tls, err, errlen);
    if (ts) {
        config_ref_take(c);
        tls_server_on_last_unref(ts, config_ref_drop, c);
    }
    return ts;
}

int reload_init(struct relay *r)
{
    const struct relay_config *cfg = r->cfg;
    size_t n = cfg->n_listeners ? cfg->n_listeners : 1;
    char err[512];
    atomic_init(&r->policy, &cfg->policy);
    r->tls = calloc(n, sizeof *r->tls);
    r->passwd = calloc(n, sizeof *r->passwd);
    r->passwd_owner = calloc(n, sizeof *r->passwd_owner);
    /* Never freed through this reference: main() owns the start-up configuration. */
    r->cfg_live = config_ref_new((struct relay_config *)cfg, 0);
    if (!r->tls || !r->passwd || !r->passwd_owner || !r->cfg_live) {
        log_error("startup_failed", "reason=no_memory");
        return -1;
    }
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct listener_cfg *l = &cfg->listeners[i];
        atomic_init(&r->passwd[i], l->passwd);
        if (l->passwd) {
            config_ref_take(r->cfg_live);
            r->passwd_owner[i] = r->cfg_live;
        }
        if (!l->tls.certificate)
            continue;
        struct tls_server *ts = tls_server_of(r->cfg_live, l, err, sizeof err);
        if (!ts) {
            log_error("startup_failed", "reason=tls listener=%s error=\"%s\"", l->name, err);
            return -1;
        }
        atomic_init(&r->tls[i], ts);
    }
    return 0;
}

/* The listener of NEW named like listener I of the running configuration, or NULL. */
static const struct listener_cfg *same_listener(const struct relay *r,
                                                const struct relay_config *new, size_t i)
{
    for (size_t k = 0; k < new->n_listeners; k++)
        if (strcmp(new->listeners[k].name, r->cfg->listeners[i].name) == 0)
            return &new->listeners[k];
    return NULL;
}

/* Build every TLS listener's material from C (a freshly loaded configuration) for the
 * listener of the same name; new handshakes use it, connections made before keep
 * theirs. A listener whose files do not load keeps the old material (logged). */
static void tls_reload(struct relay *r, struct config_ref *c)
{
    const struct relay_config *cfg = r->cfg;
    char err[512];
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        if (!atomic_load(&r->tls[i]))
            continue;
        const char *name = cfg->listeners[i].name;
        const struct listener_cfg *l = same_listener(r, c->cfg, i);
        if (!l || !l->tls.certificate || l->type != cfg->listeners[i].type) {
            log_warn("tls_reload_skipped", "listener=%s reason=\"listener removed, changed or "
                     "without tls in the new configuration: restart to apply\"", name);
            continue;
        }
        struct tls_server *ts = tls_server_of(c, l, err, sizeof err);
        if (!ts) {
            log_error("tls_reload_failed", "listener=%s error=\"%s\" action=keep_old", name,
                      err);
            continue;
        }
        struct tls_server *old = atomic_exchange(&r->tls[i], ts);
        /* A worker may have loaded OLD and be about to set a connection up with it. */
        if (grace_defer(r, tls_server_drop, old) != 0)
            log_error("tls_reload_leak", "listener=%s reason=no_memory", name);
        log_info("tls_reloaded", "listener=%s certificate=%s", name, l->tls.certificate);
    }
}

/* Password files, as C loaded them, for the listeners of the same name that had one.
 * A listener keeps the configuration its password file belongs to (passwd_owner), so
 * one whose new configuration has none keeps using the old file. */
static int str_differs(const char *a, const char *b)
{
    return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

/* Credential settings a reload does not take up: say so, so that nobody believes a
 * changed secret is in force. */
static void warn_credentials_kept(const struct listener_cfg *old, const struct listener_cfg *l)
{
    const char *what = NULL;
    if (!old->passwd && l->passwd)
        what = "password_file";
    else if (str_differs(old->stomp.login, l->stomp.login) ||
             str_differs(old->stomp.passcode, l->stomp.passcode))
        what = "login/passcode";
    else if (str_differs(old->mqtt.username, l->mqtt.username) ||
             str_differs(old->mqtt.password, l->mqtt.password))
        what = "username/password";
    if (what)
        log_warn("reload_skipped", "listener=%s setting=%s reason=\"only a password_file the "
                 "listener started with is reloaded: restart to apply\"", old->name, what);
}

static void passwd_reload(struct relay *r, struct config_ref *c)
{
    const struct relay_config *cfg = r->cfg;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct listener_cfg *l = same_listener(r, c->cfg, i);
        if (l)
            warn_credentials_kept(&cfg->listeners[i], l);
        if (!cfg->listeners[i].passwd)
            continue;
        if (!l || !l->passwd) {
            log_warn("passwd_reload_skipped", "listener=%s reason=\"no password_file in the new "
                     "configuration: restart to apply\"", cfg->listeners[i].name);
            continue;
        }
        config_ref_take(c);
        struct config_ref *old = r->passwd_owner[i];
        r->passwd_owner[i] = c;
        atomic_store(&r->passwd[i], l->passwd);
        if (grace_defer(r, config_ref_drop, old) != 0)
            log_error("passwd_reload_leak", "listener=%s reason=no_memory", l->name);
        log_info("passwd_reloaded", "listener=%s users=%zu", l->name, passwd_count(l->passwd));
    }
}

void reload_apply(struct relay *r)
{
    char err[8192];
    struct relay_config *new = NULL;
    struct config_ref *c = NULL;
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
    c = config_ref_new(new, 1);
    if (!c) {
        config_free(new);
        log_error("reload_refused", "config=%s reason=no_memory action=keep_old", r->cfg->path);
        return;
    }
    struct config_ref *old = r->cfg_live;
    r->cfg_live = c;
    atomic_store_explicit(&r->policy, &new->policy, memory_order_release);
    log_info("policy_reloaded", "rules=%zu controllers=%zu default=%s", new->policy.n_rules,
             new->policy.n_controllers, new->policy.default_allow ? "allow" : "deny");
    tls_reload(r, c);
    passwd_reload(r, c);
    if (grace_defer(r, config_ref_drop, old) != 0)
        log_error("reload_leak", "reason=no_memory");
}

void reload_fini(struct relay *r)
{
    grace_flush(r);
    for (size_t i = 0; i < r->cfg->n_listeners; i++) {
        if (r->tls)
            tls_server_unref(r->tls[i]);
        if (r->passwd_owner)
            config_ref_drop(r->passwd_owner[i]);
    }
    free(r->tls);
    free(r->passwd);
    free(r->passwd_owner);
    config_ref_drop(r->cfg_live);
    r->tls = NULL;
    r->passwd = NULL;
    r->passwd_owner = NULL;
    r->cfg_live = NULL;
}
