/* config_listeners.c — the "listeners" list of the configuration: each listener's common
 * keys, then its stomp, mqtt, uds or websocket keys and the tls group of TCP listeners,
 * whose files are loaded with OpenSSL now (see docs/configuration.md), then the
 * checks across listeners: unique names, no two binds on the same port or socket path, and
 * each websocket listener's mqtt_listener naming an mqtt listener of the file.
 */
#include "relay/config_ctx.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "relay/endpoint_id.h"
#include "relay/mtp/stomp_codec.h"
#include "relay/passwd.h"
#include "relay/tls.h"

#define DEFAULT_SUBSCRIBE_TEMPLATE "/usp/endpoint/{eid}"
#define DEFAULT_TOPIC_TEMPLATE "usp/endpoint/{eid}"
#define MAX_LISTENER_NAME 64
#define MQTT_STRING_MAX 65535 /* an MQTT UTF-8 string or binary field, bytes */
#define DEFAULT_WS_PATH "/usp"
#define WS_PATH_MAX 256
#define WS_FRAGMENT_MIN 125 /* smallest fragment_size other than 0 */

/* Indexed by enum listener_type. */
static const char *const listener_type_names[] = {"stomp", "uds", "mqtt", "websocket"};
_Static_assert(NELEM(listener_type_names) == LISTENER_WEBSOCKET + 1,
               "one name per listener type");

/* Which listener types a listener key belongs to. */
#define FOR_STOMP (1u << LISTENER_STOMP)
#define FOR_UDS (1u << LISTENER_UDS)
#define FOR_MQTT (1u << LISTENER_MQTT)
#define FOR_WS (1u << LISTENER_WEBSOCKET)
#define FOR_TCP (FOR_STOMP | FOR_MQTT | FOR_WS)
#define FOR_ALL (FOR_STOMP | FOR_UDS | FOR_MQTT | FOR_WS)

static const char *const listener_keys[] = {
    "name", "type", "backlog", "limits",
    "address", "port",
    "subscribe_dest_template", "allow_any_subscribe", "login", "passcode",
    "heartbeat_send_ms", "heartbeat_receive_ms", "heartbeat_grace_percent", "max_frame_head",
    "max_headers",
    "subscribe_topic_template", "username", "password", "server_keep_alive",
    "receive_maximum", "subscribe_any",
    "password_file",
    "path", "mode", "owner", "group", "peer_endpoint_id",
    "controllers", "paths", "mqtt_listener", "ping_interval", "ping_timeout",
    "fragment_size",
    "tls",
    "cache",
    NULL};
static const unsigned char listener_key_types[] = {
    FOR_ALL, FOR_ALL, FOR_ALL, FOR_ALL,
    FOR_TCP, FOR_TCP,
    FOR_STOMP, FOR_STOMP, FOR_STOMP, FOR_STOMP,
    FOR_STOMP, FOR_STOMP, FOR_STOMP, FOR_STOMP,
    FOR_STOMP,
    FOR_MQTT, FOR_MQTT, FOR_MQTT, FOR_MQTT,
    FOR_MQTT, FOR_MQTT,
    FOR_STOMP | FOR_MQTT,
    FOR_UDS, FOR_UDS, FOR_UDS, FOR_UDS, FOR_UDS,
    FOR_WS, FOR_WS, FOR_WS, FOR_WS, FOR_WS,
    FOR_WS,
    FOR_TCP,
    FOR_ALL};
_Static_assert(NELEM(listener_keys) == NELEM(listener_key_types) + 1,
               "one type mask per listener key");

/* What the cross-listener checks need to know about one listener. */
struct listener_state {
    const config_setting_t *name_s; /* NULL unless the name is valid */
    const config_setting_t *bind_s; /* address/port (stomp, mqtt, websocket) or path (uds),
                                       when valid */
    int typed;                      /* the type parsed */
    const config_setting_t *mqtt_s; /* a websocket listener's mqtt_listener, to resolve */
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

/* Length of the well-formed UTF-8 sequence at S (N bytes left), or 0 when it is not one:
 * overlong forms, surrogates and code points above U+10FFFF are refused, as MQTT 1.5.4
 * requires of its strings. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len;
    uint32_t cp, min;
    if ((s[0] & 0xE0) == 0xC0) {
        len = 2, cp = s[0] & 0x1Fu, min = 0x80;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3, cp = s[0] & 0x0Fu, min = 0x800;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4, cp = s[0] & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

static int valid_utf8(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str);
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(s + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

/* The topic template, expanded, is a topic name the relay hands to clients (CONNACK
 * subscribe-topic and Response Information) and publishes on: a client library would
 * reject a topic that is not valid. {eid} is replaced as is, and endpoint IDs hold no '/',
 * '+', '#' or control characters, so checking the template checks every expansion; with
 * {eid} in it (and endpoint IDs never empty) the expansion is never empty. NUL bytes never
 * reach here: libconfig drops "\x00" and the source scan refuses it. Returns NULL or what
 * is wrong with T. */
/* Longest subscribe_topic_template: the server sizes its topic buffers from it and from
 * max_endpoint_id_length (relay/mtp/mqtt_server.c MQTT_TOPIC_MAX). */
#define MQTT_TEMPLATE_MAX 256

static const char *topic_template_problem(const char *t)
{
    const char *p = strstr(t, "{eid}");
    if (!p)
        return "must contain {eid}";
    if (strstr(p + 1, "{eid}"))
        return "must contain {eid} exactly once";
    if (strpbrk(t, "+#"))
        return "must not contain '+' or '#' (wildcards are not allowed in a topic name)";
    for (const unsigned char *q = (const unsigned char *)t; *q; q++)
        if (*q < 0x20 || *q == 0x7F || (q[0] == 0xC2 && q[1] >= 0x80 && q[1] <= 0x9F))
            return "must not contain CR, LF or other control characters "
                   "(MQTT receivers may close the connection)";
    if (!valid_utf8(t))
        return "is not valid UTF-8 (MQTT topic names are UTF-8 strings)";
    /* With max_endpoint_id_length <= 4096 the expanded topic stays far below MQTT's
     * 65535-byte limit for a topic name. */
    if (strlen(t) > MQTT_TEMPLATE_MAX)
        return "too long: at most 256 bytes";
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

/* "a stomp", "an mqtt": the type with its article, for messages. */
static const char *type_with_article(enum listener_type t)
{
    switch (t) {
    case LISTENER_STOMP: return "a stomp";
    case LISTENER_UDS: return "a uds";
    case LISTENER_MQTT: return "an mqtt";
    case LISTENER_WEBSOCKET: return "a websocket";
    }
    return "an unknown";
}

/* The address and port of a TCP listener (stomp, mqtt, websocket); USUAL names the protocol's
 * customary port for the "required" message. */
static void parse_tcp_bind(struct config_ctx *c, const config_setting_t *g, const char *pre,
                           const char *usual, struct listener_cfg *l, struct listener_state *st)
{
    const char *s;
    long long v;
    char key[160];
    char qb[CONFIG_QUOTE_CAP];
    int addr_ok = 0, port_ok = 0;
    const char *tn = type_with_article(l->type);

    int r = config_get_string(c, g, pre, "address", &s);
    if (r == 0) {
        config_key_join(key, sizeof key, pre, "address");
        config_report(c, g, key, "required for %s listener (e.g. \"127.0.0.1\" or \"::1\")",
                      tn);
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
        config_report(c, g, key, "required for %s listener (%s)", tn, usual);
    } else if (r == 1) {
        l->port = (uint16_t)v;
        port_ok = 1;
    }
    if (addr_ok && port_ok)
        st->bind_s = config_setting_get_member(g, "port");
}

/* A "{eid}" template key NAME of listener group G (DEFAULT when absent), checked by
 * PROBLEM (NULL when fine, else why); an owned copy. */
static char *parse_template(struct config_ctx *c, const config_setting_t *g, const char *pre,
                            const char *name, const char *deflt,
                            const char *(*problem)(const char *))
{
    const char *s = deflt;
    char key[160];
    if (config_get_string(c, g, pre, name, &s) == 1) {
        const char *why = problem(s);
        if (why) {
            config_key_join(key, sizeof key, pre, name);
            config_report(c, config_setting_get_member(g, name), key, "%s", why);
        }
    }
    return config_dup(c, s);
}

/* password_file of a stomp or mqtt listener, loaded now so that a bad file fails the
 * configuration. It replaces the single pair of keys PAIR; PAIR_SET: one of them is set. */
static void parse_password_file(struct config_ctx *c, const config_setting_t *g,
                                const char *pre, struct listener_cfg *l, const char *pair,
                                int pair_set)
{
    const char *s;
    char key[160], err[512];
    if (config_get_string(c, g, pre, "password_file", &s) != 1)
        return;
    const config_setting_t *ps = config_setting_get_member(g, "password_file");
    config_key_join(key, sizeof key, pre, "password_file");
    if (*s == '\0') {
        config_report(c, ps, key, "must not be empty");
        return;
    }
    if (pair_set)
        config_report(c, ps, key, "cannot be combined with %s: use one or the other", pair);
    l->password_file = config_dup(c, s);
    l->passwd = passwd_load(s, err, sizeof err);
    if (!l->passwd)
        config_report(c, ps, key, "%s", err);
}

static void parse_stomp(struct config_ctx *c, const config_setting_t *g, const char *pre,
                        struct listener_cfg *l, struct listener_state *st)
{
    struct stomp_listener_cfg *sc = &l->stomp;
    char key[160];

    parse_tcp_bind(c, g, pre, "STOMP's usual port is 61613", l, st);

    sc->subscribe_dest_template = parse_template(c, g, pre, "subscribe_dest_template",
                                                 DEFAULT_SUBSCRIBE_TEMPLATE, template_problem);

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
    parse_password_file(c, g, pre, l, "login/passcode", rl == 1 || rp == 1);

    config_get_u32(c, g, pre, "heartbeat_send_ms", 0, 86400000, &sc->heartbeat_send_ms);
    config_get_u32(c, g, pre, "heartbeat_receive_ms", 0, 86400000, &sc->heartbeat_receive_ms);
    config_get_u32(c, g, pre, "heartbeat_grace_percent", 0, 1000, &sc->heartbeat_grace_pct);
    config_get_u32(c, g, pre, "max_frame_head", 256, 1048576, &sc->max_frame_head);
    config_get_u32(c, g, pre, "max_headers", 1, STOMP_HEADERS_CAP, &sc->max_headers);
}

/* A character that may appear somewhere in an endpoint ID (endpoint_id.h). */
static int eid_char(unsigned char ch)
{
    return name_char(ch) || ch == '%' || ch == ':';
}

/* Check one subscribe_any entry ID: an endpoint ID, or a prefix of one followed by '*'.
 * Returns NULL or what is wrong with it (WHY is scratch space for the message). */
static const char *subscribe_any_problem(const char *id, uint32_t max_eid_len, char *why,
                                         size_t cap)
{
    size_t n = strlen(id);
    if (n == 0 || id[n - 1] != '*') {
        int rc = eid_check(id, n, max_eid_len);
        if (rc == EID_OK)
            return NULL;
        snprintf(why, cap, "is not a valid endpoint ID (%s); end it with '*' to allow "
                           "every ID starting with it", eid_err_name(rc));
        return why;
    }
    n--; /* the prefix before the '*' */
    if (n == 0)
        return "needs at least one character before the '*' (a lone '*' would exempt "
               "every endpoint from the subscription check)";
    if (n > max_eid_len)
        return "prefix is longer than max_endpoint_id_length, so no endpoint ID matches it";
    unsigned colons = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)id[i];
        if (!eid_char(ch))
            return "prefix may contain only characters of endpoint IDs "
                   "(A-Z a-z 0-9 - . _ % :) and '*' only at its end";
        colons += ch == ':';
    }
    if (colons > 2)
        return "prefix has more than two ':', so no endpoint ID matches it";
    return NULL;
}

/* subscribe_any: a list or array of strings, copied into a NULL-terminated array (always
 * allocated for an mqtt listener, so users may walk it without a NULL check). */
static void parse_subscribe_any(struct config_ctx *c, const config_setting_t *g,
                                const char *pre, uint32_t max_eid_len,
                                struct mqtt_listener_cfg *mc)
{
    char key[160];
    char qb[CONFIG_QUOTE_CAP];
    char why[160];
    const config_setting_t *ls = config_setting_get_member(g, "subscribe_any");
    int n = 0;
    config_key_join(key, sizeof key, pre, "subscribe_any");
    if (ls) {
        int t = config_setting_type(ls);
        if (t == CONFIG_TYPE_LIST || t == CONFIG_TYPE_ARRAY) {
            n = config_setting_length(ls);
        } else {
            config_report(c, ls, key,
                          "expected a list of endpoint IDs such as [ \"self::ctl\", "
                          "\"oui:00256D:*\" ], found %s",
                          config_type_desc(t));
            ls = NULL;
        }
    }
    mc->subscribe_any = calloc((size_t)n + 1, sizeof *mc->subscribe_any);
    if (!mc->subscribe_any) {
        c->oom = 1;
        return;
    }
    if (ls && config_literal_is(c, ls, LIT_NUL_ESCAPE))
        config_report(c, ls, key, "%s", CONFIG_NUL_ESCAPE_MSG);
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(ls, (unsigned)i);
        char ekey[176];
        snprintf(ekey, sizeof ekey, "%s[%d]", key, i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
            config_report(c, e, ekey, "expected a string, found %s",
                          config_type_desc(config_setting_type(e)));
            continue;
        }
        const char *id = config_setting_get_string(e);
        const char *bad = subscribe_any_problem(id, max_eid_len, why, sizeof why);
        if (bad) {
            config_report(c, e, ekey, "%s %s", config_quote(qb, id), bad);
            continue;
        }
        char *d = config_dup(c, id);
        if (d)
            mc->subscribe_any[mc->n_subscribe_any++] = d;
    }
}

static void parse_mqtt(struct config_ctx *c, const config_setting_t *g, const char *pre,
                       const struct relay_config *cfg, struct listener_cfg *l,
                       struct listener_state *st)
{
    struct mqtt_listener_cfg *mc = &l->mqtt;
    long long v;
    char key[160];

    parse_tcp_bind(c, g, pre, "MQTT's usual port is 1883", l, st);

    mc->subscribe_topic_template = parse_template(c, g, pre, "subscribe_topic_template",
                                                  DEFAULT_TOPIC_TEMPLATE, topic_template_problem);

    const char *user = NULL, *pass = NULL;
    int ru = config_get_string(c, g, pre, "username", &user);
    int rp = config_get_string(c, g, pre, "password", &pass);
    if (ru == 1) {
        const config_setting_t *us = config_setting_get_member(g, "username");
        config_key_join(key, sizeof key, pre, "username");
        if (*user == '\0')
            config_report(c, us, key, "must not be empty");
        else if (strlen(user) > MQTT_STRING_MAX)
            config_report(c, us, key, "longer than 65535 bytes, the most MQTT carries");
        else if (!valid_utf8(user))
            config_report(c, us, key, "is not valid UTF-8 (the MQTT User Name is a UTF-8 "
                                      "string, so no client could send it)");
    }
    if (rp == 1 && strlen(pass) > MQTT_STRING_MAX) {
        config_key_join(key, sizeof key, pre, "password");
        config_report(c, config_setting_get_member(g, "password"), key,
                      "longer than 65535 bytes, the most MQTT carries");
    }
    if (ru == 1 && rp == 0) {
        config_key_join(key, sizeof key, pre, "password");
        config_report(c, config_setting_get_member(g, "username"), key,
                      "username is set but password is not: set both or neither");
    } else if (rp == 1 && ru == 0) {
        config_key_join(key, sizeof key, pre, "username");
        config_report(c, config_setting_get_member(g, "password"), key,
                      "password is set but username is not: set both or neither");
    }
    if (ru == 1 && rp == 1) {
        mc->username = config_dup(c, user);
        mc->password = config_dup(c, pass);
    }
    parse_password_file(c, g, pre, l, "username/password", ru == 1 || rp == 1);

    if (config_get_int(c, g, pre, "server_keep_alive", 0, 65535, &v) == 1)
        mc->server_keep_alive = (uint32_t)v;
    if (config_get_int(c, g, pre, "receive_maximum", 1, 65535, &v) == 1)
        mc->receive_maximum = (uint32_t)v;

    parse_subscribe_any(c, g, pre, cfg->max_endpoint_id_length, mc);
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

/* A request path of a websocket listener. The server percent-decodes the request path
 * once and compares it byte-for-byte with these, so a '%' here could never match what a
 * client means by it. Returns NULL or what is wrong with P. */
static const char *ws_path_problem(const char *p)
{
    if (p[0] != '/')
        return "must start with '/'";
    if (strlen(p) > WS_PATH_MAX)
        return "too long: at most 256 bytes";
    for (const unsigned char *q = (const unsigned char *)p; *q; q++) {
        if (*q < 0x21 || *q > 0x7E)
            return "may contain only printable ASCII (no spaces, control characters or "
                   "non-ASCII bytes)";
        if (*q == '?' || *q == '#')
            return "must not contain '?' or '#' (they start the query and the fragment, "
                   "which are not part of the path)";
        if (*q == '%')
            return "must not contain '%' (request paths are percent-decoded before they "
                   "are compared byte-for-byte, so write each character as it is)";
    }
    return NULL;
}

/* One valid path of a websocket listener, for the duplicate check. */
struct ws_path_ref {
    const char *path;
    const config_setting_t *s; /* NULL: the default paths entry */
    unsigned long long order;  /* position in the file: member index, then element */
    int is_ctrl;
    size_t idx;                /* index in controllers or paths */
};

static int cmp_ws_path_ref(const void *a, const void *b)
{
    const struct ws_path_ref *x = a, *y = b;
    int d = strcmp(x->path, y->path);
    if (d)
        return d;
    return x->order < y->order ? -1 : x->order > y->order;
}

static void ws_path_key(char *dst, size_t cap, const char *pre, const struct ws_path_ref *r)
{
    if (r->is_ctrl)
        snprintf(dst, cap, "%s.controllers[%zu].path", pre, r->idx);
    else
        snprintf(dst, cap, "%s.paths[%zu]", pre, r->idx);
}

/* The position of element IDX of member LIST of the listener group, in file order. */
static unsigned long long ws_order(const config_setting_t *list, size_t idx)
{
    return (unsigned long long)(unsigned)config_setting_index(list) << 32 | idx;
}

/* controllers: a list of { path; endpoint_id; } groups. Valid entries are stored, and
 * their paths added to REFS; returns how many entries the list has. */
static size_t parse_ws_controllers(struct config_ctx *c, const config_setting_t *g,
                                   const char *pre, uint32_t max_eid_len,
                                   struct ws_listener_cfg *w, struct ws_path_ref *refs,
                                   size_t *n_refs)
{
    static const char *const ctrl_keys[] = {"path", "endpoint_id", NULL};
    char key[160], cpre[176];
    char qb[CONFIG_QUOTE_CAP];
    const config_setting_t *ls = config_setting_get_member(g, "controllers");
    if (!ls)
        return 0;
    config_key_join(key, sizeof key, pre, "controllers");
    int t = config_setting_type(ls);
    if (t != CONFIG_TYPE_LIST && t != CONFIG_TYPE_ARRAY) {
        config_report(c, ls, key,
                      "expected a list ( { path = \"/usp/ctrl\"; endpoint_id = \"...\"; }, "
                      "... ), found %s",
                      config_type_desc(t));
        return 1; /* written, if wrongly: no "accepts no path" on top */
    }
    int n = config_setting_length(ls);
    if (n > 0) {
        w->controllers = calloc((size_t)n, sizeof *w->controllers);
        if (!w->controllers) {
            c->oom = 1;
            return (size_t)n;
        }
    }
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(ls, (unsigned)i);
        snprintf(cpre, sizeof cpre, "%s[%d]", key, i);
        if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
            config_report(c, e, cpre,
                          "expected a group { path = \"/usp/ctrl\"; endpoint_id = \"...\"; }, "
                          "found %s",
                          config_type_desc(config_setting_type(e)));
            continue;
        }
        config_check_keys(c, e, cpre, ctrl_keys);
        char ekey[200];
        const char *path = NULL, *eid = NULL;
        int ok = 1;
        int r = config_get_string(c, e, cpre, "path", &path);
        config_key_join(ekey, sizeof ekey, cpre, "path");
        if (r == 0) {
            config_report(c, e, ekey, "required (the request path standing for this "
                                      "controller, e.g. \"/usp/controller\")");
            ok = 0;
        } else if (r == 1) {
            const char *why = ws_path_problem(path);
            if (why) {
                config_report(c, config_setting_get_member(e, "path"), ekey, "%s %s",
                              config_quote(qb, path), why);
                ok = 0;
            }
        } else {
            ok = 0;
        }
        r = config_get_string(c, e, cpre, "endpoint_id", &eid);
        if (r == 0) {
            config_key_join(ekey, sizeof ekey, cpre, "endpoint_id");
            config_report(c, e, ekey, "required (the controller reached through this path)");
            ok = 0;
        } else if (r != 1 ||
                   config_check_eid(c, e, cpre, "endpoint_id", eid, max_eid_len) != 0) {
            ok = 0;
        }
        if (!ok)
            continue;
        struct ws_controller_path *cp = &w->controllers[w->n_controllers];
        cp->path = config_dup(c, path);
        cp->endpoint_id = config_dup(c, eid);
        if (!cp->path || !cp->endpoint_id) {
            free(cp->path);
            free(cp->endpoint_id);
            cp->path = cp->endpoint_id = NULL;
            continue;
        }
        refs[*n_refs] = (struct ws_path_ref){cp->path, config_setting_get_member(e, "path"),
                                             ws_order(ls, (size_t)i), 1, (size_t)i};
        ++*n_refs;
        w->n_controllers++;
    }
    return (size_t)n;
}

/* paths: an array of strings, copied into a NULL-terminated array (always allocated for
 * a websocket listener); [ "/usp" ] when absent. Valid paths are added to REFS; returns
 * how many entries the file gives (1 for the default). */
static size_t parse_ws_paths(struct config_ctx *c, const config_setting_t *g, const char *pre,
                             struct ws_listener_cfg *w, struct ws_path_ref *refs,
                             size_t *n_refs)
{
    char key[160], ekey[176];
    char qb[CONFIG_QUOTE_CAP];
    const config_setting_t *ls = config_setting_get_member(g, "paths");
    config_key_join(key, sizeof key, pre, "paths");
    int n = 1; /* the default */
    int bad_type = 0;
    if (ls) {
        int t = config_setting_type(ls);
        if (t == CONFIG_TYPE_LIST || t == CONFIG_TYPE_ARRAY) {
            n = config_setting_length(ls);
        } else {
            config_report(c, ls, key, "expected an array of paths such as [ \"/usp\" ], "
                                      "found %s",
                          config_type_desc(t));
            n = 0;
            bad_type = 1;
        }
    }
    w->paths = calloc((size_t)n + 1, sizeof *w->paths);
    if (!w->paths) {
        c->oom = 1;
        return 1;
    }
    if (bad_type)
        return 1; /* written, if wrongly: no "accepts no path" on top */
    if (!ls) {
        w->paths[0] = config_dup(c, DEFAULT_WS_PATH);
        if (w->paths[0]) {
            refs[*n_refs] = (struct ws_path_ref){w->paths[0], NULL, ~0ULL, 0, 0};
            ++*n_refs;
            w->n_paths = 1;
        }
        return 1;
    }
    if (config_literal_is(c, ls, LIT_NUL_ESCAPE))
        config_report(c, ls, key, "%s", CONFIG_NUL_ESCAPE_MSG);
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(ls, (unsigned)i);
        snprintf(ekey, sizeof ekey, "%s[%d]", key, i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
            config_report(c, e, ekey, "expected a string, found %s",
                          config_type_desc(config_setting_type(e)));
            continue;
        }
        const char *p = config_setting_get_string(e);
        const char *why = ws_path_problem(p);
        if (why) {
            config_report(c, e, ekey, "%s %s", config_quote(qb, p), why);
            continue;
        }
        char *d = config_dup(c, p);
        if (!d)
            continue;
        w->paths[w->n_paths++] = d;
        refs[*n_refs] = (struct ws_path_ref){d, e, ws_order(ls, (size_t)i), 0, (size_t)i};
        ++*n_refs;
    }
    return (size_t)n;
}

/* Each path of a listener names one resource: report every repeat at its own setting,
 * naming the first occurrence. Sorting keeps this O(n log n) however long the lists. */
static void check_ws_duplicates(struct config_ctx *c, const char *pre,
                                struct ws_path_ref *refs, size_t n)
{
    char key[200], first_key[200];
    char qb[CONFIG_QUOTE_CAP];
    if (n > 1)
        qsort(refs, n, sizeof *refs, cmp_ws_path_ref);
    for (size_t i = 1, first = 0; i < n; i++) {
        if (strcmp(refs[i].path, refs[first].path) != 0) {
            first = i;
            continue;
        }
        ws_path_key(first_key, sizeof first_key, pre, &refs[first]);
        if (refs[i].s) {
            ws_path_key(key, sizeof key, pre, &refs[i]);
            config_report(c, refs[i].s, key, "duplicate path %s (also %s)",
                          config_quote(qb, refs[i].path), first_key);
        } else {
            /* The default entry sorts last among equals: blame the explicit one. */
            config_report(c, refs[first].s, first_key,
                          "%s is also the default of paths ([ \"/usp\" ]); set paths "
                          "explicitly, e.g. paths = [ ];",
                          config_quote(qb, refs[i].path));
        }
    }
}

static void parse_ws(struct config_ctx *c, const config_setting_t *g, const char *pre,
                     const struct relay_config *cfg, struct listener_cfg *l,
                     struct listener_state *st)
{
    struct ws_listener_cfg *w = &l->ws;
    char key[160];

    parse_tcp_bind(c, g, pre, "WebSocket's usual port is 8080 (ws)", l, st);

    /* Room for every path the lists may hold, plus the default. */
    size_t cap = 1;
    const char *const lists[] = {"controllers", "paths"};
    for (size_t k = 0; k < NELEM(lists); k++) {
        const config_setting_t *ls = config_setting_get_member(g, lists[k]);
        if (ls && config_setting_length(ls) > 0)
            cap += (size_t)config_setting_length(ls);
    }
    struct ws_path_ref *refs = calloc(cap, sizeof *refs);
    if (!refs) {
        c->oom = 1;
        return;
    }
    size_t n_refs = 0;
    size_t written = parse_ws_controllers(c, g, pre, cfg->max_endpoint_id_length, w, refs,
                                          &n_refs);
    written += parse_ws_paths(c, g, pre, w, refs, &n_refs);
    check_ws_duplicates(c, pre, refs, n_refs);
    free(refs);
    if (written == 0) {
        /* Only an explicit empty paths list gets here (the default is non-empty). */
        config_key_join(key, sizeof key, pre, "paths");
        config_report(c, config_setting_get_member(g, "paths"), key,
                      "the listener accepts no path: give at least one here or in "
                      "controllers");
    }

    const char *s;
    if (config_get_string(c, g, pre, "mqtt_listener", &s) == 1) {
        w->mqtt_listener = config_dup(c, s);
        st->mqtt_s = config_setting_get_member(g, "mqtt_listener");
    }

    config_get_u32(c, g, pre, "ping_interval", 0, 3600, &w->ping_interval_s);
    config_get_u32(c, g, pre, "ping_timeout", 1, 3600, &w->ping_timeout_s);

    long long v;
    if (config_get_int(c, g, pre, "fragment_size", LLONG_MIN, LLONG_MAX, &v) == 1) {
        uint32_t max = l->limits.max_record_size;
        config_key_join(key, sizeof key, pre, "fragment_size");
        const config_setting_t *fs = config_setting_get_member(g, "fragment_size");
        if (v == 0 || (v >= WS_FRAGMENT_MIN && v <= (long long)max))
            w->fragment_size = (uint32_t)v;
        else if (max < WS_FRAGMENT_MIN)
            config_report(c, fs, key, "%lld is out of range: only 0 (each Record in one "
                                      "frame), since max_record_size (%lu) is below %d",
                          v, (unsigned long)max, WS_FRAGMENT_MIN);
        else
            config_report(c, fs, key, "%lld is out of range: 0 (each Record in one frame) "
                                      "or %d..%lu (max_record_size)",
                          v, WS_FRAGMENT_MIN, (unsigned long)max);
    }
}

/* ------------------------------------------------------------------ tls */

static const char *const tls_keys[] = {"certificate", "key", "ca", "crl", "client_certs",
                                       "min_version", "ciphers", "ciphersuites", "groups",
                                       "sni", "cn_map", NULL};
/* Indexed by enum tls_client_certs. */
static const char *const tls_client_certs_names[] = {"none", "optional", "required"};
_Static_assert(NELEM(tls_client_certs_names) == TLS_CLIENT_REQUIRED + 1,
               "one name per client_certs mode");
static const char *const tls_version_names[] = {"1.2", "1.3"};
static const int tls_versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};

/* A file member NAME of G, copied into *OUT. It must be readable now, so that a wrong
 * path or permission fails the configuration check rather than the listener's start.
 * Returns 1 when readable, 0 when absent, -1 when wrong (reported). */
static int get_tls_file(struct config_ctx *c, const config_setting_t *g, const char *pre,
                        const char *name, char **out)
{
    const char *s;
    int r = config_get_string(c, g, pre, name, &s);
    if (r != 1)
        return r;
    char key[200];
    char qb[CONFIG_QUOTE_CAP];
    const config_setting_t *fs = config_setting_get_member(g, name);
    config_key_join(key, sizeof key, pre, name);
    *out = config_dup(c, s);
    if (*s == '\0') {
        config_report(c, fs, key, "must not be empty");
        return -1;
    }
    int fd = open(s, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        config_report(c, fs, key, "cannot read %s: %s", config_quote(qb, s), strerror(errno));
        return -1;
    }
    struct stat sb;
    int regular = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
    close(fd);
    if (!regular) {
        config_report(c, fs, key, "%s is not a regular file", config_quote(qb, s));
        return -1;
    }
    return 1;
}

/* The certificate chain and key of G (members certificate and key) load and belong
 * together; the fault is reported at the member to blame. */
static void check_tls_keypair(struct config_ctx *c, const config_setting_t *g,
                              const char *pre, const char *cert, const char *pkey)
{
    char key[200], err[768];
    int r = tls_check_keypair(cert, pkey, err, sizeof err);
    if (r == 0)
        return;
    const char *name = r == -1 ? "certificate" : "key";
    config_key_join(key, sizeof key, pre, name);
    config_report(c, config_setting_get_member(g, name), key, "%s", err);
}

/* certificate and key of the tls group or an sni entry G: both required. */
static void parse_tls_keypair(struct config_ctx *c, const config_setting_t *g,
                              const char *pre, const char *what, char **cert, char **pkey)
{
    char key[200];
    int rc = get_tls_file(c, g, pre, "certificate", cert);
    int rk = get_tls_file(c, g, pre, "key", pkey);
    if (rc == 0) {
        config_key_join(key, sizeof key, pre, "certificate");
        config_report(c, g, key, "required: the certificate chain (PEM) %s", what);
    }
    if (rk == 0) {
        config_key_join(key, sizeof key, pre, "key");
        config_report(c, g, key, "required: the private key (PEM) of the certificate");
    }
    if (rc == 1 && rk == 1)
        check_tls_keypair(c, g, pre, *cert, *pkey);
}

/* A member NAME of G that must be a list of groups; returns it with its length in *N,
 * or NULL when absent or wrong (reported). */
static const config_setting_t *get_group_list(struct config_ctx *c, const config_setting_t *g,
                                              const char *pre, const char *name,
                                              const char *example, int *n)
{
    const config_setting_t *ls = config_setting_get_member(g, name);
    if (!ls)
        return NULL;
    if (config_setting_type(ls) != CONFIG_TYPE_LIST) {
        char key[200];
        config_key_join(key, sizeof key, pre, name);
        config_report(c, ls, key, "expected a list ( %s, ... ), found %s", example,
                      config_type_desc(config_setting_type(ls)));
        return NULL;
    }
    *n = config_setting_length(ls);
    return ls;
}

/* Element I of list LS (key path KEY) as a group, or NULL (reported). */
static const config_setting_t *list_group(struct config_ctx *c, const config_setting_t *ls,
                                          const char *key, int i, const char *example,
                                          char *epre, size_t cap)
{
    const config_setting_t *e = config_setting_get_elem(ls, (unsigned)i);
    snprintf(epre, cap, "%s[%d]", key, i);
    if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
        config_report(c, e, epre, "expected a group %s, found %s", example,
                      config_type_desc(config_setting_type(e)));
        return NULL;
    }
    return e;
}

#define SNI_EXAMPLE "{ server_name = \"...\"; certificate = \"...\"; key = \"...\"; }"

static void parse_tls_sni(struct config_ctx *c, const config_setting_t *tg, const char *tpre,
                          struct tls_cfg *t)
{
    static const char *const sni_keys[] = {"server_name", "certificate", "key", NULL};
    char key[200], epre[220], nkey[240];
    char qb[CONFIG_QUOTE_CAP];
    int n = 0;
    const config_setting_t *ls = get_group_list(c, tg, tpre, "sni", SNI_EXAMPLE, &n);
    if (!ls || n <= 0)
        return;
    t->sni = calloc((size_t)n, sizeof *t->sni);
    if (!t->sni) {
        c->oom = 1;
        return;
    }
    config_key_join(key, sizeof key, tpre, "sni");
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = list_group(c, ls, key, i, SNI_EXAMPLE, epre, sizeof epre);
        if (!e)
            continue;
        config_check_keys(c, e, epre, sni_keys);
        struct tls_sni_cfg *sc = &t->sni[t->n_sni++];
        const char *name;
        int r = config_get_string(c, e, epre, "server_name", &name);
        config_key_join(nkey, sizeof nkey, epre, "server_name");
        if (r == 0) {
            config_report(c, e, nkey, "required: the host name clients ask for, e.g. "
                                      "\"relay.example.com\" or \"*.example.com\"");
        } else if (r == 1 && !tls_server_name_valid(name)) {
            config_report(c, config_setting_get_member(e, "server_name"), nkey,
                          "%s is not a host name: labels of letters, digits and '-' "
                          "(no trailing dot), optionally after \"*.\" with two labels or "
                          "more",
                          config_quote(qb, name));
        } else if (r == 1) {
            size_t j;
            for (j = 0; j + 1 < t->n_sni; j++)
                if (t->sni[j].server_name && strcasecmp(t->sni[j].server_name, name) == 0)
                    break;
            if (j + 1 < t->n_sni)
                config_report(c, config_setting_get_member(e, "server_name"), nkey,
                              "duplicate server name %s (also %s[%zu])", config_quote(qb, name),
                              key, j);
            else
                sc->server_name = config_dup(c, name);
        }
        parse_tls_keypair(c, e, epre, "served for this name", &sc->certificate, &sc->key);
    }
}

#define CN_MAP_EXAMPLE "{ cn = \"...\"; endpoint_id = \"...\"; }"

static void parse_tls_cn_map(struct config_ctx *c, const config_setting_t *tg,
                             const char *tpre, uint32_t max_eid_len, struct tls_cfg *t)
{
    static const char *const cn_keys[] = {"cn", "endpoint_id", NULL};
    char key[200], epre[220], nkey[240];
    char qb[CONFIG_QUOTE_CAP];
    int n = 0;
    const config_setting_t *ls = get_group_list(c, tg, tpre, "cn_map", CN_MAP_EXAMPLE, &n);
    if (!ls)
        return;
    config_key_join(key, sizeof key, tpre, "cn_map");
    if (t->client_certs == TLS_CLIENT_NONE)
        config_report(c, ls, key, "client_certs is \"none\", so there is no client "
                                  "certificate CN to map: set client_certs or remove cn_map");
    if (n <= 0)
        return;
    t->cn_map = calloc((size_t)n, sizeof *t->cn_map);
    if (!t->cn_map) {
        c->oom = 1;
        return;
    }
    for (int i = 0; i < n; i++) {
        const config_setting_t *e =
            list_group(c, ls, key, i, CN_MAP_EXAMPLE, epre, sizeof epre);
        if (!e)
            continue;
        config_check_keys(c, e, epre, cn_keys);
        struct tls_cn_map_cfg *m = &t->cn_map[t->n_cn_map++];
        const char *cn, *eid;
        int r = config_get_string(c, e, epre, "cn", &cn);
        config_key_join(nkey, sizeof nkey, epre, "cn");
        if (r == 0) {
            config_report(c, e, nkey, "required: the subject common name of a client "
                                      "certificate");
        } else if (r == 1 && *cn == '\0') {
            config_report(c, config_setting_get_member(e, "cn"), nkey, "must not be empty");
        } else if (r == 1) {
            size_t j;
            for (j = 0; j + 1 < t->n_cn_map; j++)
                if (t->cn_map[j].cn && strcmp(t->cn_map[j].cn, cn) == 0)
                    break;
            if (j + 1 < t->n_cn_map)
                config_report(c, config_setting_get_member(e, "cn"), nkey,
                              "duplicate cn %s (also %s[%zu])", config_quote(qb, cn), key, j);
            else
                m->cn = config_dup(c, cn);
        }
        r = config_get_string(c, e, epre, "endpoint_id", &eid);
        if (r == 0) {
            config_key_join(nkey, sizeof nkey, epre, "endpoint_id");
            config_report(c, e, nkey, "required: the endpoint ID this CN stands for");
        } else if (r == 1 && config_check_eid(c, e, epre, "endpoint_id", eid, max_eid_len) == 0) {
            m->endpoint_id = config_dup(c, eid);
        }
    }
}

/* The tls group of a stomp, mqtt or websocket listener (see docs/configuration.md). */
static void parse_tls(struct config_ctx *c, const config_setting_t *g, const char *pre,
                      uint32_t max_eid_len, struct tls_cfg *t)
{
    const config_setting_t *tg = config_get_group(c, g, pre, "tls");
    if (!tg)
        return;
    char tpre[80], key[200], err[768];
    char qb[CONFIG_QUOTE_CAP];
    snprintf(tpre, sizeof tpre, "%s.tls", pre);
    config_check_keys(c, tg, tpre, tls_keys);

    parse_tls_keypair(c, tg, tpre, "that enables TLS on this listener", &t->certificate,
                      &t->key);

    int e;
    if (config_get_enum(c, tg, tpre, "client_certs", tls_client_certs_names,
                        NELEM(tls_client_certs_names), &e) == 1)
        t->client_certs = (enum tls_client_certs)e;
    if (config_get_enum(c, tg, tpre, "min_version", tls_version_names,
                        NELEM(tls_version_names), &e) == 1)
        t->min_version = tls_versions[e];

    int rca = get_tls_file(c, tg, tpre, "ca", &t->ca);
    config_key_join(key, sizeof key, tpre, "ca");
    if (rca == 1 && tls_check_ca(t->ca, err, sizeof err) != 0)
        config_report(c, config_setting_get_member(tg, "ca"), key, "%s %s",
                      config_quote(qb, t->ca), err);
    if (rca == 0 && t->client_certs != TLS_CLIENT_NONE)
        config_report(c, config_setting_get_member(tg, "client_certs"), key,
                      "required when client_certs is \"%s\": the CA certificates (PEM) "
                      "client certificates must chain to",
                      tls_client_certs_names[t->client_certs]);
    if (rca == 1 && t->client_certs == TLS_CLIENT_NONE)
        config_report(c, config_setting_get_member(tg, "ca"), key,
                      "client_certs is \"none\", so no client certificate is checked "
                      "against it: set client_certs = \"optional\" or \"required\", or "
                      "remove ca");

    int rcrl = get_tls_file(c, tg, tpre, "crl", &t->crl);
    config_key_join(key, sizeof key, tpre, "crl");
    if (rcrl == 1 && tls_check_crl(t->crl, err, sizeof err) != 0)
        config_report(c, config_setting_get_member(tg, "crl"), key, "%s %s",
                      config_quote(qb, t->crl), err);
    if (rcrl == 1 && rca == 0)
        config_report(c, config_setting_get_member(tg, "crl"), key,
                      "needs ca: the CRL applies to client certificates checked against it");

    static const char *const lists[] = {"ciphers", "ciphersuites", "groups"};
    char **dst[] = {&t->ciphers, &t->ciphersuites, &t->groups};
    int (*const check[])(const char *, char *, size_t) = {
        tls_check_ciphers, tls_check_ciphersuites, tls_check_groups};
    for (size_t k = 0; k < NELEM(lists); k++) {
        const char *s;
        if (config_get_string(c, tg, tpre, lists[k], &s) != 1)
            continue;
        *dst[k] = config_dup(c, s);
        config_key_join(key, sizeof key, tpre, lists[k]);
        const config_setting_t *ls = config_setting_get_member(tg, lists[k]);
        if (*s == '\0')
            config_report(c, ls, key, "must not be empty (leave it out for OpenSSL's "
                                      "defaults)");
        else if (check[k](s, err, sizeof err) != 0)
            config_report(c, ls, key, "%s %s", config_quote(qb, s), err);
    }

    parse_tls_sni(c, tg, tpre, t);
    parse_tls_cn_map(c, tg, tpre, max_eid_len, t);
}

/* "stomp", "stomp and mqtt": the types in MASK, for messages. */
static const char *types_text(unsigned mask)
{
    switch (mask) {
    case FOR_STOMP: return "stomp";
    case FOR_UDS: return "uds";
    case FOR_MQTT: return "mqtt";
    case FOR_WS: return "websocket";
    case FOR_TCP: return "stomp, mqtt and websocket";
    case FOR_STOMP | FOR_MQTT: return "stomp and mqtt";
    }
    return "other";
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
    l->mqtt.server_keep_alive = 0;
    l->mqtt.receive_maximum = 64;
    l->ws.ping_interval_s = 30;
    l->ws.ping_timeout_s = 30;
    l->ws.fragment_size = 0;
    l->tls.min_version = TLS1_2_VERSION;
    l->cache = 1;

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
        config_report(c, g, key,
                      "required: \"stomp\", \"mqtt\", \"uds\" or \"websocket\"");
    } else if (r == 1) {
        l->type = (enum listener_type)t;
        types = 1u << t;
        st->typed = 1;
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
            config_report(c, m, key, "not valid for %s listener (only for %s listeners)",
                          type_with_article(l->type), types_text(listener_key_types[k]));
    }

    long long v;
    if (config_get_int(c, g, pre, "backlog", 1, 65535, &v) == 1)
        l->backlog = (int)v;
    config_get_bool(c, g, pre, "cache", &l->cache);

    const config_setting_t *lg = config_get_group(c, g, pre, "limits");
    if (lg) {
        char lpre[80];
        snprintf(lpre, sizeof lpre, "%s.limits", pre);
        config_parse_limits(c, lg, lpre, &l->limits);
    }

    if (r != 1)
        return; /* without a type, the type-specific keys cannot be judged */
    switch (l->type) {
    case LISTENER_STOMP: parse_stomp(c, g, pre, l, st); break;
    case LISTENER_UDS: parse_uds(c, g, pre, cfg, l, st); break;
    case LISTENER_MQTT: parse_mqtt(c, g, pre, cfg, l, st); break;
    case LISTENER_WEBSOCKET: parse_ws(c, g, pre, cfg, l, st); break;
    }
    if (l->type != LISTENER_UDS)
        parse_tls(c, g, pre, cfg->max_endpoint_id_length, &l->tls);
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
            if (!st[i].bind_s || !st[j].bind_s)
                continue;
            /* stomp, mqtt and websocket listeners share the TCP port space. */
            int tcp = a->type != LISTENER_UDS && b->type != LISTENER_UDS;
            if (tcp && a->address && b->address && tcp_collide(a, &st[i], b, &st[j])) {
                snprintf(key, sizeof key, "listeners[%zu].port", j);
                config_report(c, st[j].bind_s, key,
                              "%s port %u overlaps listeners[%zu] (%s port %u)", b->address,
                              (unsigned)b->port, i, a->address, (unsigned)a->port);
            } else if (a->type == LISTENER_UDS && b->type == LISTENER_UDS && a->uds.path &&
                       b->uds.path && strcmp(a->uds.path, b->uds.path) == 0) {
                snprintf(key, sizeof key, "listeners[%zu].path", j);
                config_report(c, st[j].bind_s, key,
                              "socket path %s is also used by listeners[%zu]",
                              config_quote(qb, b->uds.path), i);
            }
        }
    }
}

/* Point each websocket listener's ws.mqtt at the mqtt listener it names. Done once every
 * listener is parsed, since the named one may come later in the file. */
static void resolve_mqtt_listeners(struct config_ctx *c, struct relay_config *cfg,
                                   const struct listener_state *st)
{
    char key[160];
    char qb[CONFIG_QUOTE_CAP];
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        struct listener_cfg *w = &cfg->listeners[i];
        if (w->type != LISTENER_WEBSOCKET || !st[i].mqtt_s || !w->ws.mqtt_listener)
            continue;
        snprintf(key, sizeof key, "listeners[%zu].mqtt_listener", i);
        size_t j;
        for (j = 0; j < cfg->n_listeners; j++)
            if (cfg->listeners[j].name && strcmp(cfg->listeners[j].name,
                                                 w->ws.mqtt_listener) == 0)
                break;
        if (j == cfg->n_listeners) {
            config_report(c, st[i].mqtt_s, key, "no listener is named %s",
                          config_quote(qb, w->ws.mqtt_listener));
            continue;
        }
        const struct listener_cfg *m = &cfg->listeners[j];
        if (!st[j].typed)
            continue; /* its missing or bad type is reported already */
        if (m->type != LISTENER_MQTT) {
            config_report(c, st[i].mqtt_s, key,
                          "%s is %s listener (listeners[%zu]), not an mqtt one",
                          config_quote(qb, w->ws.mqtt_listener), type_with_article(m->type),
                          j);
            continue;
        }
        w->ws.mqtt = m;
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
    resolve_mqtt_listeners(c, cfg, st);
    free(st);
}
