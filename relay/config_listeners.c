/* config_listeners.c — the "listeners" list of the configuration: each listener's common
 * keys, then its stomp or uds keys (see docs/configuration.md), then the checks across
 * listeners: unique names, no two binds on the same port or socket path.
 */
#include "relay/config_ctx.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "relay/mtp/stomp_codec.h"

#define DEFAULT_SUBSCRIBE_TEMPLATE "/usp/endpoint/{eid}"
#define MAX_LISTENER_NAME 64

static const char *const listener_type_names[] = {"stomp", "uds"};

/* Which listener types a listener key belongs to. */
#define FOR_STOMP (1u << LISTENER_STOMP)
#define FOR_UDS (1u << LISTENER_UDS)
#define FOR_ALL (FOR_STOMP | FOR_UDS)

static const char *const listener_keys[] = {
    "name", "type", "backlog", "limits",
    "address", "port", "subscribe_dest_template", "allow_any_subscribe", "login", "passcode",
    "heartbeat_send_ms", "heartbeat_receive_ms", "heartbeat_grace_percent", "max_frame_head",
    "max_headers",
    "path", "mode", "owner", "group", "peer_endpoint_id",
    NULL};
static const unsigned char listener_key_types[] = {
    FOR_ALL, FOR_ALL, FOR_ALL, FOR_ALL,
    FOR_STOMP, FOR_STOMP, FOR_STOMP, FOR_STOMP, FOR_STOMP, FOR_STOMP,
    FOR_STOMP, FOR_STOMP, FOR_STOMP, FOR_STOMP,
    FOR_STOMP,
    FOR_UDS, FOR_UDS, FOR_UDS, FOR_UDS, FOR_UDS};
_Static_assert(NELEM(listener_keys) == NELEM(listener_key_types) + 1,
               "one type mask per listener key");

/* What the cross-listener checks need to know about one listener. */
struct listener_state {
    const config_setting_t *name_s; /* NULL unless the name is valid */
    const config_setting_t *bind_s; /* address/port (stomp) or path (uds), when valid */
    int family;                     /* AF_INET / AF_INET6 for TCP listeners */
    unsigned char addr[16];
};

/* A listener name is made of A-Z a-z 0-9 . _ - */
static int name_char(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '-';
}

static int valid_listener_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_LISTENER_NAME)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!name_char(ch))
            return 0;
    }
    return 1;
}

/* The subscribe destination goes into CONNECTED unescaped, so it may hold none of the
 * bytes STOMP would need to escape. Returns NULL or what is wrong with T. */
static const char *template_problem(const char *t)
{
    const char *p = strstr(t, "{eid}");
    if (!p)
        return "must contain {eid}";
    if (strstr(p + 1, "{eid}"))
        return "must contain {eid} exactly once";
    if (strpbrk(t, "\r\n\\:"))
        return "must not contain CR, LF, '\\' or ':' (CONNECTED headers are not escaped)";
    return NULL;
}

/* Parse an octal mode string such as "0660". */
static int parse_octal_mode(const char *s, uint32_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 4)
        return -1;
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '7')
            return -1;
        v = v * 8 + (uint32_t)(s[i] - '0');
    }
    if (v > 0777)
        return -1;
    *out = v;
    return 0;
}

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* Resolve a user (IS_GROUP 0) or group name, or a numeric ID, to its ID.
 * Returns 0, -1 when unknown, -2 on a lookup failure (errno set). */
static int resolve_id(const char *name, int is_group, unsigned long *id)
{
    if (all_digits(name)) {
        errno = 0;
        unsigned long v = strtoul(name, NULL, 10);
        if (errno || v >= (unsigned long)UINT32_MAX)
            return -1;
        *id = v;
        return 0;
    }
    long sz = sysconf(is_group ? _SC_GETGR_R_SIZE_MAX : _SC_GETPW_R_SIZE_MAX);
    size_t cap = sz > 0 ? (size_t)sz : 16384;
    for (;;) {
        char *buf = malloc(cap);
        if (!buf)
            return -2;
        int rc;
        int found = 0;
        if (is_group) {
            struct group gr, *res = NULL;
            rc = getgrnam_r(name, &gr, buf, cap, &res);
            if (rc == 0 && res) {
                *id = (unsigned long)gr.gr_gid;
                found = 1;
            }
        } else {
            struct passwd pw, *res = NULL;
            rc = getpwnam_r(name, &pw, buf, cap, &res);
            if (rc == 0 && res) {
                *id = (unsigned long)pw.pw_uid;
                found = 1;
            }
        }
        free(buf);
        if (rc == ERANGE && cap < (1u << 20)) {
            cap *= 2;
            continue;
        }
        if (found)
            return 0;
        if (rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM)
            return -1;
        errno = rc;
        return -2;
    }
}

static void parse_stomp(struct config_ctx *c, const config_setting_t *g, const char *pre,
                        struct listener_cfg *l, struct listener_state *st)
{
    struct stomp_listener_cfg *sc = &l->stomp;
    const char *s;
    long long v;
    char key[160];
    char qb[CONFIG_QUOTE_CAP];
    int addr_ok = 0, port_ok = 0;

    int r = config_get_string(c, g, pre, "address", &s);
    if (r == 0) {
        config_key_join(key, sizeof key, pre, "address");
        config_report(c, g, key,
                      "required for a stomp listener (e.g. \"127.0.0.1\" or \"::1\")");
    } else if (r == 1) {
        if (inet_pton(AF_INET, s, st->addr) == 1) {
            st->family = AF_INET;
            addr_ok = 1;
        } else if (inet_pton(AF_INET6, s, st->addr) == 1) {
            st->family = AF_INET6;
            addr_ok = 1;
        } else {
            config_key_join(key, sizeof key, pre, "address");
            config_report(c, config_setting_get_member(g, "address"), key,
                          "%s is not a numeric IPv4 or IPv6 address", config_quote(qb, s));
        }
        l->address = config_dup(c, s);
    }
    r = config_get_int(c, g, pre, "port", 1, 65535, &v);
    if (r == 0) {
        config_key_join(key, sizeof key, pre, "port");
        config_report(c, g, key, "required for a stomp listener (STOMP's usual port is 61613)");
    } else if (r == 1) {
        l->port = (uint16_t)v;
        port_ok = 1;
    }
    if (addr_ok && port_ok)
        st->bind_s = config_setting_get_member(g, "port");

    s = DEFAULT_SUBSCRIBE_TEMPLATE;
    if (config_get_string(c, g, pre, "subscribe_dest_template", &s) == 1) {
        const char *why = template_problem(s);
        if (why) {
            config_key_join(key, sizeof key, pre, "subscribe_dest_template");
            config_report(c, config_setting_get_member(g, "subscribe_dest_template"), key,
                          "%s", why);
        }
    }
    sc->subscribe_dest_template = config_dup(c, s);

    config_get_bool(c, g, pre, "allow_any_subscribe", &sc->allow_any_subscribe);

    const char *login = NULL, *pass = NULL;
    int rl = config_get_string(c, g, pre, "login", &login);
    int rp = config_get_string(c, g, pre, "passcode", &pass);
    if (rl == 1 && *login == '\0') {
        config_key_join(key, sizeof key, pre, "login");
        config_report(c, config_setting_get_member(g, "login"), key, "must not be empty");
    }
    if (rl == 1 && rp == 0) {
        config_key_join(key, sizeof key, pre, "passcode");
        config_report(c, config_setting_get_member(g, "login"), key,
                      "login is set but passcode is not: set both or neither");
    } else if (rp == 1 && rl == 0) {
        config_key_join(key, sizeof key, pre, "login");
        config_report(c, config_setting_get_member(g, "passcode"), key,
                      "passcode is set but login is not: set both or neither");
    }
    if (rl == 1 && rp == 1) {
        sc->login = config_dup(c, login);
        sc->passcode = config_dup(c, pass);
    }

    config_get_u32(c, g, pre, "heartbeat_send_ms", 0, 86400000, &sc->heartbeat_send_ms);
    config_get_u32(c, g, pre, "heartbeat_receive_ms", 0, 86400000, &sc->heartbeat_receive_ms);
    config_get_u32(c, g, pre, "heartbeat_grace_percent", 0, 1000, &sc->heartbeat_grace_pct);
    config_get_u32(c, g, pre, "max_frame_head", 256, 1048576, &sc->max_frame_head);
    config_get_u32(c, g, pre, "max_headers", 1, STOMP_HEADERS_CAP, &sc->max_headers);
}

static void parse_uds(struct config_ctx *c, const config_setting_t *g, const char *pre,
                      const struct relay_config *cfg, struct listener_cfg *l,
                      struct listener_state *st)
{
    struct uds_listener_cfg *u = &l->uds;
    const char *s;
    char key[160];
    char qb[CONFIG_QUOTE_CAP];

    int r = config_get_string(c, g, pre, "path", &s);
    if (r == 0) {
        config_key_join(key, sizeof key, pre, "path");
        config_report(c, g, key, "required for a uds listener");
    } else if (r == 1) {
        config_key_join(key, sizeof key, pre, "path");
        if (*s == '\0')
            config_report(c, config_setting_get_member(g, "path"), key, "must not be empty");
        else if (strlen(s) >= sizeof(((struct sockaddr_un *)0)->sun_path))
            config_report(c, config_setting_get_member(g, "path"), key,
                          "longer than %zu bytes, the most a socket address holds",
                          sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
        else
            st->bind_s = config_setting_get_member(g, "path");
        u->path = config_dup(c, s);
    }

    const config_setting_t *ms = config_setting_get_member(g, "mode");
    if (ms) {
        config_key_join(key, sizeof key, pre, "mode");
        int t = config_setting_type(ms);
        if (t == CONFIG_TYPE_STRING) {
            if (parse_octal_mode(config_setting_get_string(ms), &u->mode) != 0)
                config_report(c, ms, key, "%s is not an octal mode between \"0\" and \"0777\"",
                              config_quote(qb, config_setting_get_string(ms)));
        } else if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
            long long v = config_setting_get_int64(ms);
            if (config_literal_is(c, ms, LIT_LEADING_ZERO))
                config_report(c, ms, key, "libconfig reads %lld as decimal, not octal; "
                                          "write the mode as a string, e.g. \"0660\"", v);
            else if (t == CONFIG_TYPE_INT && config_literal_is(c, ms, LIT_OVERFLOW))
                config_report(c, ms, key, "value does not fit in 32 bits");
            else if (v < 0 || v > 0777)
                config_report(c, ms, key, "%lld is out of range (0..0777 = 511); "
                                          "write the mode as a string, e.g. \"0660\"", v);
            else
                u->mode = (uint32_t)v;
        } else {
            config_report(c, ms, key, "expected an octal string such as \"0660\", found %s",
                          config_type_desc(t));
        }
    }

    const char *const who[2] = {"owner", "group"};
    for (int is_group = 0; is_group < 2; is_group++) {
        if (config_get_string(c, g, pre, who[is_group], &s) != 1)
            continue;
        config_key_join(key, sizeof key, pre, who[is_group]);
        const config_setting_t *ws = config_setting_get_member(g, who[is_group]);
        unsigned long id = 0;
        int rc = resolve_id(s, is_group, &id);
        if (rc == -1) {
            config_report(c, ws, key, "no such %s %s", is_group ? "group" : "user",
                          config_quote(qb, s));
        } else if (rc == -2) {
            config_report(c, ws, key, "cannot look up %s: %s", config_quote(qb, s),
                          strerror(errno));
        } else if (is_group) {
            u->group_gid = (gid_t)id;
        } else {
            u->owner_uid = (uid_t)id;
        }
        char *d = config_dup(c, s);
        if (is_group)
            u->group = d;
        else
            u->owner = d;
    }

    if (config_get_string(c, g, pre, "peer_endpoint_id", &s) == 1) {
        config_check_eid(c, g, pre, "peer_endpoint_id", s, cfg->max_endpoint_id_length);
        u->peer_endpoint_id = config_dup(c, s);
    }
}

static void parse_listener(struct config_ctx *c, const config_setting_t *g, size_t idx,
                           const struct relay_config *cfg, struct listener_cfg *l,
                           struct listener_state *st)
{
    char pre[64], key[160];
    char qb[CONFIG_QUOTE_CAP];
    snprintf(pre, sizeof pre, "listeners[%zu]", idx);
    l->line = (int)config_setting_source_line(g);
    l->backlog = 128;
    l->limits = cfg->limits;
    l->stomp.heartbeat_send_ms = 30000;
    l->stomp.heartbeat_receive_ms = 30000;
    l->stomp.heartbeat_grace_pct = 50;
    l->stomp.max_frame_head = 16384;
    l->stomp.max_headers = 32;
    l->uds.mode = 0660;
    l->uds.owner_uid = (uid_t)-1;
    l->uds.group_gid = (gid_t)-1;

    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        config_report(c, g, pre,
                      "expected a listener group { name = ...; type = ...; }, found %s",
                      config_type_desc(config_setting_type(g)));
        return;
    }

    const char *s;
    int r = config_get_string(c, g, pre, "name", &s);
    if (r == 0) {
        config_key_join(key, sizeof key, pre, "name");
        config_report(c, g, key, "required (a unique name used in logs)");
    } else if (r == 1) {
        if (!valid_listener_name(s)) {
            config_key_join(key, sizeof key, pre, "name");
            config_report(c, config_setting_get_member(g, "name"), key,
                          "%s must be 1..%d characters from A-Z a-z 0-9 . _ -",
                          config_quote(qb, s), MAX_LISTENER_NAME);
        } else {
            st->name_s = config_setting_get_member(g, "name");
        }
        l->name = config_dup(c, s);
    }

    unsigned types = FOR_ALL; /* type unknown: judge keys by the union */
    int t;
    r = config_get_enum(c, g, pre, "type", listener_type_names, NELEM(listener_type_names), &t);
    if (r == 0) {
        config_key_join(key, sizeof key, pre, "type");
        config_report(c, g, key, "required: \"stomp\" or \"uds\"");
    } else if (r == 1) {
        l->type = (enum listener_type)t;
        types = 1u << t;
    }

    int n = config_setting_length(g);
    for (int i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        const char *nm = config_setting_name(m);
        size_t k;
        for (k = 0; listener_keys[k]; k++)
            if (strcmp(nm, listener_keys[k]) == 0)
                break;
        config_key_join(key, sizeof key, pre, nm);
        if (!listener_keys[k])
            config_report_unknown(c, m, key, listener_keys);
        else if (!(listener_key_types[k] & types))
            config_report(c, m, key, "not valid for a %s listener (only for %s listeners)",
                          listener_type_name(l->type),
                          listener_key_types[k] & FOR_STOMP ? "stomp" : "uds");
    }

    long long v;
    if (config_get_int(c, g, pre, "backlog", 1, 65535, &v) == 1)
        l->backlog = (int)v;

    const config_setting_t *lg = config_get_group(c, g, pre, "limits");
    if (lg) {
        char lpre[80];
        snprintf(lpre, sizeof lpre, "%s.limits", pre);
        config_parse_limits(c, lg, lpre, &l->limits);
    }

    if (r != 1)
        return; /* without a type, the type-specific keys cannot be judged */
    if (l->type == LISTENER_STOMP)
        parse_stomp(c, g, pre, l, st);
    else
        parse_uds(c, g, pre, cfg, l, st);
}

static int is_wildcard(const struct listener_state *st)
{
    static const unsigned char zero[16];
    return memcmp(st->addr, zero, st->family == AF_INET ? 4 : 16) == 0;
}

/* Two TCP listeners collide on the same port when their addresses are equal or either is
 * a wildcard (:: usually covers IPv4 too): with SO_REUSEPORT the second bind would not
 * even fail, it would silently share the connections. */
static int tcp_collide(const struct listener_cfg *a, const struct listener_state *sa,
                       const struct listener_cfg *b, const struct listener_state *sb)
{
    if (a->port != b->port)
        return 0;
    if (is_wildcard(sa) || is_wildcard(sb))
        return 1;
    return sa->family == sb->family &&
           memcmp(sa->addr, sb->addr, sa->family == AF_INET ? 4 : 16) == 0;
}

/* Only listeners whose relevant fields parsed (and were copied: an allocation may have
 * failed) take part. */
static void cross_check_listeners(struct config_ctx *c, const struct relay_config *cfg,
                                  const struct listener_state *st)
{
    char key[160];
    char qb[CONFIG_QUOTE_CAP];
    for (size_t j = 0; j < cfg->n_listeners; j++) {
        const struct listener_cfg *b = &cfg->listeners[j];
        for (size_t i = 0; i < j; i++) {
            const struct listener_cfg *a = &cfg->listeners[i];
            if (st[i].name_s && st[j].name_s && a->name && b->name &&
                strcmp(a->name, b->name) == 0) {
                snprintf(key, sizeof key, "listeners[%zu].name", j);
                config_report(c, st[j].name_s, key,
                              "duplicate listener name %s (also listeners[%zu])",
                              config_quote(qb, b->name), i);
            }
            if (!st[i].bind_s || !st[j].bind_s || a->type != b->type)
                continue;
            if (a->type == LISTENER_STOMP && a->address && b->address &&
                tcp_collide(a, &st[i], b, &st[j])) {
                snprintf(key, sizeof key, "listeners[%zu].port", j);
                config_report(c, st[j].bind_s, key,
                              "%s port %u overlaps listeners[%zu] (%s port %u)", b->address,
                              (unsigned)b->port, i, a->address, (unsigned)a->port);
            } else if (a->type == LISTENER_UDS && a->uds.path && b->uds.path &&
                       strcmp(a->uds.path, b->uds.path) == 0) {
                snprintf(key, sizeof key, "listeners[%zu].path", j);
                config_report(c, st[j].bind_s, key,
                              "socket path %s is also used by listeners[%zu]",
                              config_quote(qb, b->uds.path), i);
            }
        }
    }
}

void config_parse_listeners(struct config_ctx *c, const config_setting_t *root,
                            struct relay_config *cfg)
{
    const config_setting_t *ls = config_setting_get_member(root, "listeners");
    if (!ls) {
        config_report(c, NULL, "listeners", "required: at least one listener");
        return;
    }
    if (config_setting_type(ls) != CONFIG_TYPE_LIST) {
        config_report(c, ls, "listeners", "expected a list ( { ... }, ... ), found %s",
                      config_type_desc(config_setting_type(ls)));
        return;
    }
    int n = config_setting_length(ls);
    if (n <= 0) {
        config_report(c, ls, "listeners", "at least one listener is required");
        return;
    }
    cfg->listeners = calloc((size_t)n, sizeof *cfg->listeners);
    struct listener_state *st = calloc((size_t)n, sizeof *st);
    if (!cfg->listeners || !st) {
        free(st);
        c->oom = 1;
        return;
    }
    cfg->n_listeners = (size_t)n;
    for (int i = 0; i < n; i++)
        parse_listener(c, config_setting_get_elem(ls, (unsigned)i), (size_t)i, cfg,
                       &cfg->listeners[i], &st[i]);
    cross_check_listeners(c, cfg, st);
    free(st);
}
