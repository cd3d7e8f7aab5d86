/* test_config.c — Check suite for relay/config*.c.
 *
 * Each test writes a config file to a mkstemp file under /tmp, loads it and checks either
 * the resulting struct or the exact "file:line: key:" prefix of every expected error.
 * conf/usprelay.conf is loaded from the working directory (make runs tests from the
 * repository root).
 */
#include "relay/config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define STOMP_L "{ name = \"s\"; type = \"stomp\"; address = \"127.0.0.1\"; port = 61613; }"
#define UDS_L "{ name = \"u\"; type = \"uds\"; path = \"/tmp/usprelay-test.sock\"; }"
#define MQTT_L "{ name = \"m\"; type = \"mqtt\"; address = \"127.0.0.1\"; port = 1883; }"
/* The start of an mqtt listener on line 2 of a file, for keys added after it. */
#define MQTT_HEAD "listeners = (\n  { name = \"m\"; type = \"mqtt\"; address = \"::1\"; port = 1;\n"
/* The same for a websocket listener. */
#define WS_HEAD                                                                             \
    "listeners = (\n  { name = \"w\"; type = \"websocket\"; address = \"::1\"; port = 8080;\n"

static char g_path[64];
static char g_err[16384];

/* Write TEXT to a fresh temp file, load it, remove the file. */
static int load_text(const char *text, struct relay_config **out)
{
    snprintf(g_path, sizeof g_path, "/tmp/usprelay-test-config-XXXXXX");
    int fd = mkstemp(g_path);
    ck_assert_int_ge(fd, 0);
    size_t len = strlen(text);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    memset(g_err, 'X', sizeof g_err);
    int rc = config_load(g_path, out, g_err, sizeof g_err);
    unlink(g_path);
    return rc;
}

static struct relay_config *load_ok(const char *text)
{
    struct relay_config *cfg = NULL;
    int rc = load_text(text, &cfg);
    ck_assert_msg(rc == 0, "expected success, got %d errors:\n%s", rc, g_err);
    ck_assert_ptr_nonnull(cfg);
    ck_assert_str_eq(g_err, "");
    return cfg;
}

/* Assert that the last load reported "<file>:LINE: KEY: " followed by text containing
 * FRAG on the same line. */
static void assert_error(int line, const char *key, const char *frag)
{
    char want[256];
    snprintf(want, sizeof want, "%s:%d: %s: ", g_path, line, key);
    const char *p = strstr(g_err, want);
    ck_assert_msg(p != NULL, "no \"%s\" in:\n%s", want, g_err);
    const char *eol = strchr(p, '\n');
    ck_assert_msg(eol != NULL, "error line not terminated:\n%s", g_err);
    if (frag) {
        const char *f = strstr(p, frag);
        ck_assert_msg(f != NULL && f < eol, "no \"%s\" after \"%s\" in:\n%s", frag, want,
                      g_err);
    }
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Load TEXT expecting exactly one error at LINE/KEY containing FRAG. */
static void expect_one(const char *text, int line, const char *key, const char *frag)
{
    struct relay_config *cfg = (struct relay_config *)1;
    int rc = load_text(text, &cfg);
    ck_assert_msg(rc == 1, "expected 1 error, got %d:\n%s", rc, g_err);
    ck_assert_ptr_null(cfg);
    ck_assert_uint_eq(count_lines(g_err), 1);
    assert_error(line, key, frag);
}

static unsigned expected_workers(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1u : n > 256 ? 256u : (unsigned)n;
}

/* ------------------------------------------------------------------ valid files */

/* The relay, log and limits values every file gets when it does not set them (the
 * example file shows them all at their defaults). */
static void assert_global_defaults(const struct relay_config *cfg)
{
    ck_assert_str_eq(cfg->endpoint_id, "self::usprelay");
    ck_assert_uint_eq(cfg->workers, expected_workers());
    ck_assert_uint_eq(cfg->max_endpoint_id_length, 256);
    ck_assert_int_eq(cfg->from_id_policy, FROM_ID_ENFORCE);
    ck_assert_int_eq(cfg->duplicate_id_policy, DUP_REPLACE_OLD);
    ck_assert_int_eq(cfg->connect_records, CONNECT_RECORDS_PASS);
    ck_assert_uint_eq(cfg->shutdown_timeout_ms, 5000);
    ck_assert_int_eq(cfg->log_level, LOG_INFO);
    ck_assert_uint_eq(cfg->limits.max_record_size, 5242880);
    ck_assert_uint_eq(cfg->limits.max_unidentified_input, 65536);
    ck_assert_uint_eq(cfg->limits.max_output_queue, 16777216);
    ck_assert_uint_eq(cfg->limits.handshake_timeout_ms, 10000);
    ck_assert_uint_eq(cfg->limits.stall_timeout_ms, 60000);
}

START_TEST(example_conf_loads)
{
    struct relay_config *cfg = NULL;
    int rc = config_load("conf/usprelay.conf", &cfg, g_err, sizeof g_err);
    ck_assert_msg(rc == 0, "conf/usprelay.conf: %d errors:\n%s", rc, g_err);
    ck_assert_str_eq(cfg->path, "conf/usprelay.conf");
    assert_global_defaults(cfg);
    ck_assert_uint_eq(cfg->n_listeners, 5);
    /* The cache group, at its defaults, and every listener's cache key. */
    ck_assert_int_eq(cfg->cache.enabled, 1);
    ck_assert_uint_eq(cfg->cache.ttl_ms, 3600000);
    ck_assert_uint_eq(cfg->cache.max_records_per_endpoint, 1000);
    ck_assert_uint_eq(cfg->cache.max_bytes_per_endpoint, 16777216);
    ck_assert_uint_eq(cfg->cache.max_records, 1000000);
    ck_assert_uint_eq(cfg->cache.max_bytes, 268435456);
    ck_assert_uint_eq(cfg->cache.n_exclude, 0);
    for (size_t i = 0; i < cfg->n_listeners; i++)
        ck_assert_int_eq(cfg->listeners[i].cache, 1);

    const struct listener_cfg *s = &cfg->listeners[0];
    ck_assert_str_eq(s->name, "stomp");
    ck_assert_int_eq(s->type, LISTENER_STOMP);
    ck_assert_str_eq(s->address, "127.0.0.1");
    ck_assert_uint_eq(s->port, 61613);
    ck_assert_int_eq(s->backlog, 128);
    ck_assert_int_gt(s->line, 1);
    ck_assert_str_eq(s->stomp.subscribe_dest_template, "/usp/endpoint/{eid}");
    ck_assert_int_eq(s->stomp.allow_any_subscribe, 0);
    ck_assert_ptr_null(s->stomp.login);
    ck_assert_ptr_null(s->stomp.passcode);
    ck_assert_uint_eq(s->stomp.heartbeat_send_ms, 30000);
    ck_assert_uint_eq(s->stomp.heartbeat_receive_ms, 30000);
    ck_assert_uint_eq(s->stomp.heartbeat_grace_pct, 50);
    ck_assert_uint_eq(s->stomp.max_frame_head, 16384);
    ck_assert_uint_eq(s->stomp.max_headers, 32);
    ck_assert_mem_eq(&s->limits, &cfg->limits, sizeof s->limits);

    const struct listener_cfg *m = &cfg->listeners[1];
    ck_assert_str_eq(m->name, "mqtt");
    ck_assert_int_eq(m->type, LISTENER_MQTT);
    ck_assert_str_eq(m->address, "127.0.0.1");
    ck_assert_uint_eq(m->port, 1883);
    ck_assert_int_eq(m->backlog, 128);
    ck_assert_int_gt(m->line, s->line);
    ck_assert_str_eq(m->mqtt.subscribe_topic_template, "usp/endpoint/{eid}");
    ck_assert_ptr_null(m->mqtt.username);
    ck_assert_ptr_null(m->mqtt.password);
    ck_assert_uint_eq(m->mqtt.server_keep_alive, 0);
    ck_assert_uint_eq(m->mqtt.receive_maximum, 64);
    ck_assert_ptr_nonnull(m->mqtt.subscribe_any);
    ck_assert_ptr_null(m->mqtt.subscribe_any[0]);
    ck_assert_uint_eq(m->mqtt.n_subscribe_any, 0);
    ck_assert_mem_eq(&m->limits, &cfg->limits, sizeof m->limits);

    const struct listener_cfg *u = &cfg->listeners[2];
    ck_assert_str_eq(u->name, "uds");
    ck_assert_int_eq(u->type, LISTENER_UDS);
    ck_assert_str_eq(u->uds.path, "build/run/usprelay.sock");
    ck_assert_uint_eq(u->uds.mode, 0660);
    ck_assert_ptr_null(u->uds.owner);
    ck_assert_ptr_null(u->uds.group);
    ck_assert_ptr_null(u->uds.peer_endpoint_id);
    ck_assert_ptr_null(u->address);
    ck_assert_int_gt(u->line, m->line);

    const struct listener_cfg *pc = &cfg->listeners[3];
    ck_assert_str_eq(pc->name, "uds-controller");
    ck_assert_int_eq(pc->type, LISTENER_UDS);
    ck_assert_str_eq(pc->uds.path, "build/run/usp-controller.sock");
    ck_assert_str_eq(pc->uds.peer_endpoint_id, "self::usp-controller");
    ck_assert_int_gt(pc->line, u->line);

    const struct listener_cfg *w = &cfg->listeners[4];
    ck_assert_str_eq(w->name, "ws");
    ck_assert_int_eq(w->type, LISTENER_WEBSOCKET);
    ck_assert_str_eq(w->address, "127.0.0.1");
    ck_assert_uint_eq(w->port, 8080);
    ck_assert_int_eq(w->backlog, 128);
    ck_assert_int_gt(w->line, pc->line);
    ck_assert_uint_eq(w->ws.n_paths, 1);
    ck_assert_str_eq(w->ws.paths[0], "/usp");
    ck_assert_uint_eq(w->ws.n_controllers, 1);
    ck_assert_str_eq(w->ws.controllers[0].path, "/usp/controller");
    ck_assert_str_eq(w->ws.controllers[0].endpoint_id, "self::usp-controller");
    ck_assert_str_eq(w->ws.mqtt_listener, "mqtt");
    ck_assert_ptr_eq(w->ws.mqtt, m);
    ck_assert_uint_eq(w->ws.ping_interval_s, 30);
    ck_assert_uint_eq(w->ws.ping_timeout_s, 30);
    ck_assert_uint_eq(w->ws.fragment_size, 0);
    ck_assert_mem_eq(&w->limits, &cfg->limits, sizeof w->limits);
    config_free(cfg);
}
END_TEST

START_TEST(defaults_when_absent)
{
    struct relay_config *cfg = load_ok("listeners = ( " STOMP_L ", " UDS_L " );\n");
    assert_global_defaults(cfg);
    ck_assert_uint_eq(cfg->n_listeners, 2);

    const struct listener_cfg *s = &cfg->listeners[0];
    ck_assert_int_eq(s->backlog, 128);
    ck_assert_int_eq(s->line, 1);
    ck_assert_str_eq(s->stomp.subscribe_dest_template, "/usp/endpoint/{eid}");
    ck_assert_int_eq(s->stomp.allow_any_subscribe, 0);
    ck_assert_ptr_null(s->stomp.login);
    ck_assert_ptr_null(s->stomp.passcode);
    ck_assert_uint_eq(s->stomp.heartbeat_send_ms, 30000);
    ck_assert_uint_eq(s->stomp.heartbeat_receive_ms, 30000);
    ck_assert_uint_eq(s->stomp.heartbeat_grace_pct, 50);
    ck_assert_uint_eq(s->stomp.max_frame_head, 16384);
    ck_assert_uint_eq(s->stomp.max_headers, 32);
    ck_assert_mem_eq(&s->limits, &cfg->limits, sizeof s->limits);

    const struct listener_cfg *u = &cfg->listeners[1];
    ck_assert_int_eq(u->backlog, 128);
    ck_assert_uint_eq(u->uds.mode, 0660);
    ck_assert_ptr_null(u->uds.owner);
    ck_assert_ptr_null(u->uds.group);
    ck_assert_uint_eq(u->uds.owner_uid, (uid_t)-1);
    ck_assert_uint_eq(u->uds.group_gid, (gid_t)-1);
    ck_assert_ptr_null(u->uds.peer_endpoint_id);
    config_free(cfg);
}
END_TEST

START_TEST(explicit_values)
{
    struct relay_config *cfg = load_ok(
        "relay = {\n"
        "  endpoint_id = \"oui:00256D:relay-1\";\n"
        "  workers = 3;\n"
        "  max_endpoint_id_length = 64;\n"
        "  from_id_policy = \"log\";\n"
        "  duplicate_id_policy = \"refuse-new\";\n"
        "  connect_records = \"translate\";\n"
        "  shutdown_timeout = 2;\n"
        "};\n"
        "log = { level = \"debug\"; };\n"
        "limits = { max_record_size = 1048576; max_unidentified_input = 4096;\n"
        "           max_output_queue = 8589934592L; handshake_timeout = 0.25; };\n"
        "listeners = (\n"
        "  { name = \"tcp6\"; type = \"stomp\"; address = \"::1\"; port = 1; backlog = 7;\n"
        "    subscribe_dest_template = \"/q/{eid}.in\"; allow_any_subscribe = true;\n"
        "    login = \"user\"; passcode = \"\";\n"
        "    heartbeat_send_ms = 0; heartbeat_receive_ms = 86400000;\n"
        "    heartbeat_grace_percent = 1000; max_frame_head = 256; max_headers = 64; },\n"
        "  { name = \"a.b_c-d\"; type = \"uds\"; path = \"rel/x.sock\"; mode = 0x1A4;\n"
        "    owner = \"root\"; group = \"0\"; peer_endpoint_id = \"self::ctl\"; },\n"
        "  { name = \"m\"; type = \"uds\"; path = \"/tmp/m.sock\"; mode = \"600\"; owner = \"4242\"; }\n"
        ");\n");
    ck_assert_str_eq(cfg->endpoint_id, "oui:00256D:relay-1");
    ck_assert_uint_eq(cfg->workers, 3);
    ck_assert_uint_eq(cfg->max_endpoint_id_length, 64);
    ck_assert_int_eq(cfg->from_id_policy, FROM_ID_LOG);
    ck_assert_int_eq(cfg->duplicate_id_policy, DUP_REFUSE_NEW);
    ck_assert_int_eq(cfg->connect_records, CONNECT_RECORDS_TRANSLATE);
    ck_assert_uint_eq(cfg->shutdown_timeout_ms, 2000);
    ck_assert_int_eq(cfg->log_level, LOG_DEBUG);
    ck_assert_uint_eq(cfg->limits.max_record_size, 1048576);
    ck_assert_uint_eq(cfg->limits.max_unidentified_input, 4096);
    ck_assert_uint_eq(cfg->limits.max_output_queue, 8589934592ULL);
    ck_assert_uint_eq(cfg->limits.handshake_timeout_ms, 250);

    const struct listener_cfg *s = &cfg->listeners[0];
    ck_assert_str_eq(s->name, "tcp6");
    ck_assert_str_eq(s->address, "::1");
    ck_assert_uint_eq(s->port, 1);
    ck_assert_int_eq(s->backlog, 7);
    ck_assert_int_eq(s->line, 14);
    ck_assert_str_eq(s->stomp.subscribe_dest_template, "/q/{eid}.in");
    ck_assert_int_eq(s->stomp.allow_any_subscribe, 1);
    ck_assert_str_eq(s->stomp.login, "user");
    ck_assert_str_eq(s->stomp.passcode, "");
    ck_assert_uint_eq(s->stomp.heartbeat_send_ms, 0);
    ck_assert_uint_eq(s->stomp.heartbeat_receive_ms, 86400000);
    ck_assert_uint_eq(s->stomp.heartbeat_grace_pct, 1000);
    ck_assert_uint_eq(s->stomp.max_frame_head, 256);
    ck_assert_uint_eq(s->stomp.max_headers, 64);

    const struct listener_cfg *u = &cfg->listeners[1];
    ck_assert_str_eq(u->name, "a.b_c-d");
    ck_assert_str_eq(u->uds.path, "rel/x.sock");
    ck_assert_uint_eq(u->uds.mode, 0644);
    ck_assert_str_eq(u->uds.owner, "root");
    ck_assert_str_eq(u->uds.group, "0");
    ck_assert_uint_eq(u->uds.owner_uid, 0);
    ck_assert_uint_eq(u->uds.group_gid, 0);
    ck_assert_str_eq(u->uds.peer_endpoint_id, "self::ctl");

    const struct listener_cfg *m = &cfg->listeners[2];
    ck_assert_uint_eq(m->uds.mode, 0600);
    ck_assert_uint_eq(m->uds.owner_uid, 4242);
    ck_assert_uint_eq(m->uds.group_gid, (gid_t)-1);
    config_free(cfg);
}
END_TEST

START_TEST(listener_limits_override_and_inherit)
{
    struct relay_config *cfg = load_ok(
        "limits = { max_record_size = 100000; handshake_timeout = 3; stall_timeout = 5; };\n"
        "listeners = (\n"
        "  { name = \"a\"; type = \"stomp\"; address = \"127.0.0.1\"; port = 1000;\n"
        "    limits = { max_record_size = 2000; max_output_queue = 3000;\n"
        "               stall_timeout = 0.5; }; },\n"
        "  { name = \"b\"; type = \"uds\"; path = \"/tmp/b.sock\";\n"
        "    limits = { handshake_timeout = 0.1; max_unidentified_input = 1024; }; },\n"
        "  { name = \"c\"; type = \"stomp\"; address = \"127.0.0.1\"; port = 1001; }\n"
        ");\n");
    const struct limits_cfg *a = &cfg->listeners[0].limits;
    ck_assert_uint_eq(a->max_record_size, 2000);
    ck_assert_uint_eq(a->max_output_queue, 3000);
    ck_assert_uint_eq(a->max_unidentified_input, 65536); /* default, inherited */
    ck_assert_uint_eq(a->handshake_timeout_ms, 3000);     /* global, inherited */
    ck_assert_uint_eq(a->stall_timeout_ms, 500);
    ck_assert_uint_eq(cfg->listeners[1].limits.stall_timeout_ms, 5000);

    const struct limits_cfg *b = &cfg->listeners[1].limits;
    ck_assert_uint_eq(b->max_record_size, 100000);
    ck_assert_uint_eq(b->max_output_queue, 16777216);
    ck_assert_uint_eq(b->max_unidentified_input, 1024);
    ck_assert_uint_eq(b->handshake_timeout_ms, 100);

    ck_assert_mem_eq(&cfg->listeners[2].limits, &cfg->limits, sizeof cfg->limits);
    ck_assert_uint_eq(cfg->limits.max_record_size, 100000);
    config_free(cfg);
}
END_TEST

START_TEST(workers_zero_resolves)
{
    struct relay_config *cfg = load_ok("relay = { workers = 0; };\nlisteners = ( " UDS_L " );\n");
    ck_assert_uint_ge(cfg->workers, 1);
    ck_assert_uint_eq(cfg->workers, expected_workers());
    config_free(cfg);
}
END_TEST

/* ------------------------------------------------------------------ single errors */

START_TEST(err_unknown_top_level)
{
    expect_one("listeners = ( " STOMP_L " );\n"
               "relays = { workers = 1; };\n",
               2, "relays", "unknown key (did you mean \"relay\"?)");
}
END_TEST

START_TEST(err_unknown_in_relay)
{
    expect_one("relay = {\n"
               "  endpoint_id = \"self::r\";\n"
               "  wrokers = 2;\n"
               "};\n"
               "listeners = ( " STOMP_L " );\n",
               3, "relay.wrokers", "did you mean \"workers\"");
}
END_TEST

START_TEST(err_unknown_in_listener)
{
    expect_one("listeners = (\n"
               "  " STOMP_L ",\n"
               "  { name = \"x\"; type = \"stomp\"; address = \"::1\"; port = 2;\n"
               "    frobnicate = 1; }\n"
               ");\n",
               4, "listeners[1].frobnicate", "unknown key");
}
END_TEST

START_TEST(err_unknown_in_listener_limits)
{
    expect_one("listeners = (\n"
               "  " UDS_L ",\n"
               "  { name = \"x\"; type = \"stomp\"; address = \"::1\"; port = 2;\n"
               "    limits = {\n"
               "      max_record_sise = 100; }; }\n"
               ");\n",
               5, "listeners[1].limits.max_record_sise", "did you mean \"max_record_size\"");
}
END_TEST

START_TEST(err_unknown_in_global_limits_and_log)
{
    struct relay_config *cfg = NULL;
    int rc = load_text("log = { level = \"info\"; file = \"x\"; };\n"
                       "limits = { nope = 1; };\n"
                       "listeners = ( " STOMP_L " );\n",
                       &cfg);
    ck_assert_int_eq(rc, 2);
    assert_error(1, "log.file", "unknown key");
    assert_error(2, "limits.nope", "unknown key");
}
END_TEST

START_TEST(err_wrong_types)
{
    expect_one("relay = { workers = \"4\"; };\nlisteners = ( " STOMP_L " );\n", 1,
               "relay.workers", "expected an integer, found a string");
    expect_one("relay = { endpoint_id = 5; };\nlisteners = ( " STOMP_L " );\n", 1,
               "relay.endpoint_id", "expected a string, found an integer");
    expect_one("relay = { shutdown_timeout = true; };\nlisteners = ( " STOMP_L " );\n", 1,
               "relay.shutdown_timeout", "expected a number of seconds");
    expect_one("relay = ( 1 );\nlisteners = ( " STOMP_L " );\n", 1, "relay",
               "expected a group");
    expect_one("listeners = { a = 1; };\n", 1, "listeners", "expected a list");
    expect_one("listeners = ( " STOMP_L ",\n 7 );\n", 2, "listeners[1]",
               "expected a listener group");
    expect_one("listeners = ( { name = \"s\"; type = \"stomp\"; address = \"::1\"; port = 1;\n"
               "  allow_any_subscribe = 1; } );\n",
               2, "listeners[0].allow_any_subscribe", "expected true or false");
    expect_one("listeners = ( { name = \"s\"; type = \"stomp\"; address = \"::1\";\n"
               "  port = 1.5; } );\n",
               2, "listeners[0].port", "expected an integer, found a float");
    expect_one("listeners = ( { name = \"s\"; type = \"uds\"; path = \"/tmp/x\";\n"
               "  mode = true; } );\n",
               2, "listeners[0].mode", "expected an octal string");
    expect_one("listeners = ( { name = \"s\"; type = \"uds\"; path = \"/tmp/x\";\n"
               "  limits = 5; } );\n",
               2, "listeners[0].limits", "expected a group");
}
END_TEST

START_TEST(err_out_of_range)
{
    expect_one("relay = {\n workers = 257; };\nlisteners = ( " STOMP_L " );\n", 2,
               "relay.workers", "257 is out of range (0..256)");
    expect_one("relay = { max_endpoint_id_length = 31; };\nlisteners = ( " STOMP_L " );\n",
               1, "relay.max_endpoint_id_length", "31 is out of range (32..4096)");
    expect_one("relay = { shutdown_timeout = 300.5; };\nlisteners = ( " STOMP_L " );\n", 1,
               "relay.shutdown_timeout", "out of range");
    expect_one("limits = { max_record_size = 63; };\nlisteners = ( " STOMP_L " );\n", 1,
               "limits.max_record_size", "63 is out of range (64..268435455)");
    expect_one("limits = { max_record_size = 268435456; max_output_queue = 300000000; };\n"
               "listeners = ( " STOMP_L " );\n",
               1, "limits.max_record_size", "out of range");
    expect_one("limits = { max_unidentified_input = 1023; };\nlisteners = ( " STOMP_L " );\n",
               1, "limits.max_unidentified_input", "1023 is out of range");
    expect_one("limits = { handshake_timeout = 0.09; };\nlisteners = ( " STOMP_L " );\n", 1,
               "limits.handshake_timeout", "out of range (0.1..3600)");
    expect_one("limits = { handshake_timeout = 3601; };\nlisteners = ( " STOMP_L " );\n", 1,
               "limits.handshake_timeout", "out of range");
    expect_one("listeners = ( { name = \"s\"; type = \"stomp\"; address = \"::1\";\n"
               "  port = 0; } );\n",
               2, "listeners[0].port", "0 is out of range (1..65535)");
    expect_one("listeners = ( { name = \"s\"; type = \"stomp\"; address = \"::1\"; port = 1;\n"
               "  max_headers = 65; } );\n",
               2, "listeners[0].max_headers", "65 is out of range (1..64)");
    expect_one("listeners = ( { name = \"s\"; type = \"stomp\"; address = \"::1\"; port = 1;\n"
               "  heartbeat_send_ms = 86400001; } );\n",
               2, "listeners[0].heartbeat_send_ms", "out of range");
    expect_one("listeners = ( { name = \"s\"; type = \"stomp\"; address = \"::1\"; port = 1;\n"
               "  heartbeat_grace_percent = -1; } );\n",
               2, "listeners[0].heartbeat_grace_percent", "out of range");
    expect_one("listeners = ( { name = \"s\"; type = \"stomp\"; address = \"::1\"; port = 1;\n"
               "  max_frame_head = 255; } );\n",
               2, "listeners[0].max_frame_head", "out of range");
    expect_one("listeners = ( { name = \"s\"; type = \"stomp\"; address = \"::1\"; port = 1;\n"
               "  backlog = 0; } );\n",
               2, "listeners[0].backlog", "out of range");
    expect_one("listeners = ( { name = \"s\"; type = \"uds\"; path = \"/tmp/x\";\n"
               "  mode = \"1777\"; } );\n",
               2, "listeners[0].mode", "not an octal mode");
    expect_one("listeners = ( { name = \"s\"; type = \"uds\"; path = \"/tmp/x\";\n"
               "  mode = \"0680\"; } );\n",
               2, "listeners[0].mode", "not an octal mode");
}
END_TEST

/* libconfig 1.5 silently wraps 32-bit overflow and reads 0660 as decimal 660. */
START_TEST(err_int_literal_traps)
{
    expect_one("limits = {\n  max_output_queue = 5000000000; };\nlisteners = ( " STOMP_L " );\n",
               2, "limits.max_output_queue", "does not fit in 32 bits");
    expect_one("limits = { max_output_queue = 0x100000000; };\nlisteners = ( " STOMP_L " );\n",
               1, "limits.max_output_queue", "does not fit in 32 bits");
    expect_one("relay = { workers = -2147483649; };\nlisteners = ( " STOMP_L " );\n", 1,
               "relay.workers", "does not fit in 32 bits");
    /* libconfig gives a setting the line of its name, wherever the value is. */
    expect_one("limits = {\n  max_output_queue =\n\n   4294967296;\n};\n"
               "listeners = ( " STOMP_L " );\n",
               2, "limits.max_output_queue", "does not fit in 32 bits");
    expect_one("listeners = ( { name = \"s\"; type = \"uds\"; path = \"/tmp/x\";\n"
               "  mode = 0660; } );\n",
               2, "listeners[0].mode", "write the mode as a string");
    expect_one("listeners = ( { name = \"s\"; type = \"uds\"; path = \"/tmp/x\";\n"
               "  mode = 660; } );\n",
               2, "listeners[0].mode", "out of range");

    /* The same digits inside comments and strings, or with L, are not flagged. */
    struct relay_config *cfg = load_ok(
        "# max_output_queue = 5000000000;\n"
        "/* max_output_queue = 5000000000; */ relay = { endpoint_id = \"self::5000000000\"; };\n"
        "limits = { max_output_queue = 5000000000L; handshake_timeout = 1e1; };\n"
        "listeners = ( " UDS_L " );\n");
    ck_assert_uint_eq(cfg->limits.max_output_queue, 5000000000ULL);
    ck_assert_uint_eq(cfg->limits.handshake_timeout_ms, 10000);
    ck_assert_str_eq(cfg->endpoint_id, "self::5000000000");
    config_free(cfg);
}
END_TEST

START_TEST(err_bad_enum)
{
    expect_one("relay = {\n  from_id_policy = \"strict\"; };\nlisteners = ( " STOMP_L " );\n",
               2, "relay.from_id_policy", "\"strict\" is not one of: enforce, log, off");
    expect_one("relay = { duplicate_id_policy = \"replace\"; };\nlisteners = ( " STOMP_L " );\n",
               1, "relay.duplicate_id_policy", "replace-old, refuse-new");
    expect_one("relay = { connect_records = \"drop\"; };\nlisteners = ( " STOMP_L " );\n", 1,
               "relay.connect_records", "pass, translate");
    expect_one("log = { level = \"verbose\"; };\nlisteners = ( " STOMP_L " );\n", 1,
               "log.level", "error, warn, info, debug");
    expect_one("listeners = ( { name = \"s\";\n type = \"amqp\"; } );\n", 2,
               "listeners[0].type", "\"amqp\" is not one of: stomp, uds, mqtt, websocket");
}
END_TEST

START_TEST(err_duplicate_listener_name)
{
    expect_one("listeners = (\n"
               "  { name = \"dup\"; type = \"stomp\"; address = \"::1\"; port = 1; },\n"
               "  { name = \"dup\"; type = \"uds\"; path = \"/tmp/x\"; }\n"
               ");\n",
               3, "listeners[1].name", "duplicate listener name \"dup\" (also listeners[0])");
}
END_TEST

START_TEST(err_duplicate_port)
{
    expect_one("listeners = (\n"
               "  { name = \"a\"; type = \"stomp\"; address = \"::1\"; port = 61613; },\n"
               "  { name = \"b\"; type = \"stomp\"; address = \"127.0.0.1\"; port = 61613; },\n"
               "  { name = \"c\"; type = \"stomp\"; address = \"0:0::1\"; port = 61613; }\n"
               ");\n",
               4, "listeners[2].port", "overlaps listeners[0]");
    /* A wildcard address overlaps every address on its port. */
    expect_one("listeners = (\n"
               "  { name = \"a\"; type = \"stomp\"; address = \"127.0.0.1\"; port = 5; },\n"
               "  { name = \"b\"; type = \"stomp\"; address = \"0.0.0.0\"; port = 5; }\n"
               ");\n",
               3, "listeners[1].port", "overlaps listeners[0]");
    /* Different ports or different specific addresses do not. */
    struct relay_config *cfg = load_ok(
        "listeners = (\n"
        "  { name = \"a\"; type = \"stomp\"; address = \"127.0.0.1\"; port = 5; },\n"
        "  { name = \"b\"; type = \"stomp\"; address = \"127.0.0.2\"; port = 5; },\n"
        "  { name = \"c\"; type = \"stomp\"; address = \"::\"; port = 6; }\n"
        ");\n");
    ck_assert_uint_eq(cfg->n_listeners, 3);
    config_free(cfg);
}
END_TEST

START_TEST(err_duplicate_uds_path)
{
    expect_one("listeners = (\n"
               "  { name = \"a\"; type = \"uds\"; path = \"/tmp/same.sock\"; },\n"
               "  { name = \"b\"; type = \"uds\";\n"
               "    path = \"/tmp/same.sock\"; }\n"
               ");\n",
               4, "listeners[1].path", "also used by listeners[0]");
}
END_TEST

START_TEST(err_missing_required)
{
    expect_one("listeners = (\n  { name = \"a\"; address = \"::1\"; port = 1; }\n);\n", 2,
               "listeners[0].type", "required: \"stomp\", \"mqtt\", \"uds\" or \"websocket\"");
    expect_one("listeners = (\n  { type = \"uds\"; path = \"/tmp/x\"; }\n);\n", 2,
               "listeners[0].name", "required");
    expect_one("listeners = (\n  { name = \"a\"; type = \"stomp\"; port = 1; }\n);\n", 2,
               "listeners[0].address", "required");
    expect_one("listeners = (\n  { name = \"a\"; type = \"stomp\"; address = \"::1\"; }\n);\n",
               2, "listeners[0].port", "required");
    expect_one("listeners = (\n  { name = \"a\"; type = \"uds\"; }\n);\n", 2,
               "listeners[0].path", "required");
    expect_one("listeners = (\n  { name = \"a\"; type = \"mqtt\"; port = 1883; }\n);\n", 2,
               "listeners[0].address", "required for an mqtt listener");
    expect_one("listeners = (\n  { name = \"a\"; type = \"mqtt\"; address = \"::1\"; }\n);\n",
               2, "listeners[0].port", "required for an mqtt listener (MQTT's usual port is 1883)");
    expect_one("relay = { workers = 1; };\n", 0, "listeners", "at least one listener");
    expect_one("relay = { workers = 1; };\nlisteners = ();\n", 2, "listeners",
               "at least one listener");
}
END_TEST

START_TEST(err_key_for_other_type)
{
    expect_one("listeners = (\n"
               "  { name = \"u\"; type = \"uds\"; path = \"/tmp/x\";\n"
               "    heartbeat_send_ms = 1000; }\n"
               ");\n",
               3, "listeners[0].heartbeat_send_ms",
               "not valid for a uds listener (only for stomp listeners)");
    expect_one("listeners = (\n"
               "  { name = \"s\"; type = \"stomp\"; address = \"::1\"; port = 1;\n"
               "    peer_endpoint_id = \"self::x\"; }\n"
               ");\n",
               3, "listeners[0].peer_endpoint_id", "only for uds listeners");
}
END_TEST

START_TEST(err_bad_template)
{
    static const struct {
        const char *tmpl;
        const char *frag;
    } cases[] = {
        {"/usp/endpoint", "must contain {eid}"},
        {"/a/{eid}/{eid}", "exactly once"},
        {"/a:{eid}", "must not contain"},
        {"/a\\\\{eid}", "must not contain"},
        {"/a{eid}\\n", "must not contain"},
        {"/a{eid}\\r", "must not contain"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "listeners = (\n"
                 "  { name = \"s\"; type = \"stomp\"; address = \"::1\"; port = 1;\n"
                 "    subscribe_dest_template = \"%s\"; }\n"
                 ");\n",
                 cases[i].tmpl);
        expect_one(text, 3, "listeners[0].subscribe_dest_template", cases[i].frag);
    }
}
END_TEST

START_TEST(err_login_passcode_pairing)
{
    expect_one("listeners = (\n"
               "  { name = \"s\"; type = \"stomp\"; address = \"::1\"; port = 1;\n"
               "    login = \"user\"; }\n"
               ");\n",
               3, "listeners[0].passcode", "set both or neither");
    expect_one("listeners = (\n"
               "  { name = \"s\"; type = \"stomp\"; address = \"::1\"; port = 1;\n"
               "    passcode = \"pw\"; }\n"
               ");\n",
               3, "listeners[0].login", "set both or neither");
    expect_one("listeners = (\n"
               "  { name = \"s\"; type = \"stomp\"; address = \"::1\"; port = 1;\n"
               "    login = \"\"; passcode = \"pw\"; }\n"
               ");\n",
               3, "listeners[0].login", "must not be empty");
}
END_TEST

START_TEST(err_bad_endpoint_id)
{
    expect_one("relay = {\n  endpoint_id = \"no-colons\"; };\nlisteners = ( " STOMP_L " );\n",
               2, "relay.endpoint_id", "not a valid endpoint ID");
    /* max_endpoint_id_length applies to the relay's own ID. */
    expect_one("relay = { max_endpoint_id_length = 32;\n"
               "  endpoint_id = \"self::aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"; };\n"
               "listeners = ( " STOMP_L " );\n",
               2, "relay.endpoint_id", "not a valid endpoint ID");
    expect_one("listeners = (\n"
               "  { name = \"u\"; type = \"uds\"; path = \"/tmp/x\";\n"
               "    peer_endpoint_id = \"self:x\"; }\n"
               ");\n",
               3, "listeners[0].peer_endpoint_id", "not a valid endpoint ID");
    /* A value echoed in a message is escaped: the message stays one line. */
    expect_one("relay = { endpoint_id = \"self::a\\nb\"; };\nlisteners = ( " STOMP_L " );\n",
               1, "relay.endpoint_id", "\"self::a\\x0ab\" is not a valid endpoint ID");
}
END_TEST

START_TEST(err_bad_address_path_name_owner)
{
    expect_one("listeners = (\n"
               "  { name = \"s\"; type = \"stomp\"; address = \"localhost\"; port = 1; }\n"
               ");\n",
               2, "listeners[0].address", "not a numeric IPv4 or IPv6 address");
    expect_one("listeners = (\n"
               "  { name = \"u\"; type = \"uds\"; path = \"\"; }\n"
               ");\n",
               2, "listeners[0].path", "must not be empty");
    char text[512], longpath[120];
    memset(longpath, 'p', sizeof longpath - 1);
    longpath[0] = '/';
    longpath[sizeof longpath - 1] = '\0';
    snprintf(text, sizeof text, "listeners = (\n  { name = \"u\"; type = \"uds\"; path = \"%s\"; }\n);\n",
             longpath);
    expect_one(text, 2, "listeners[0].path", "longer than 107 bytes");
    expect_one("listeners = (\n"
               "  { name = \"has space\"; type = \"uds\"; path = \"/tmp/x\"; }\n"
               ");\n",
               2, "listeners[0].name", "must be 1..64 characters");
    expect_one("listeners = (\n"
               "  { name = \"u\"; type = \"uds\"; path = \"/tmp/x\";\n"
               "    owner = \"no-such-user-usprelay\"; }\n"
               ");\n",
               3, "listeners[0].owner", "no such user");
    expect_one("listeners = (\n"
               "  { name = \"u\"; type = \"uds\"; path = \"/tmp/x\";\n"
               "    group = \"no-such-group-usprelay\"; }\n"
               ");\n",
               3, "listeners[0].group", "no such group");
}
END_TEST

START_TEST(err_queue_smaller_than_record)
{
    expect_one("limits = { max_record_size = 1000;\n  max_output_queue = 999; };\n"
               "listeners = ( " STOMP_L " );\n",
               2, "limits.max_output_queue", "must be at least max_record_size");
    /* Per listener the effective values count: a listener raising max_record_size past
     * the inherited queue size is refused at its own key. */
    expect_one("limits = { max_output_queue = 100000; max_record_size = 1000; };\n"
               "listeners = ( { name = \"s\"; type = \"stomp\"; address = \"::1\"; port = 1;\n"
               "  limits = { max_record_size = 200000; }; } );\n",
               3, "listeners[0].limits.max_record_size", "must be at least max_record_size");
}
END_TEST

START_TEST(err_syntax)
{
    expect_one("relay = {\n  workers = 1;\n  endpoint_id = self::x;\n};\n", 3, "-",
               "syntax error");
    expect_one("listeners = ( " STOMP_L " );\nlimits = {\n\n  max_record_size = ;\n};\n", 4,
               "-", "syntax error");
    expect_one("relay = { workers = 1; };\nrelay = { workers = 2; };\n", 2, "-",
               "duplicate setting name");
    /* A string where a setting name belongs is caught before libconfig (whose parser
     * would leak it: LeakSanitizer checks that here). */
    expect_one("listeners = ( " STOMP_L " );\nlog = {\n  \"level\" = \"info\"; };\n", 3, "-",
               "unexpected string");
    expect_one("relay = { workers = 1, \"x\" };\nlisteners = ( " STOMP_L " );\n", 1, "-",
               "unexpected string");
    expect_one("relay = { endpoint_id = \"self::a\" 5; };\n\"x\"\n", 2, "-",
               "unexpected string");
    /* Strings in lists, arrays and concatenations are fine. */
    expect_one("listeners = ( " STOMP_L " );\nextra = ( \"a\", [\"b\", \"c\"], { x = \"d\"\n"
               "  \"e\"; } );\n",
               2, "extra", "unknown key");
}
END_TEST

START_TEST(err_missing_file)
{
    struct relay_config *cfg = (struct relay_config *)1;
    char err[256];
    int rc = config_load("/nonexistent/usprelay.conf", &cfg, err, sizeof err);
    ck_assert_int_eq(rc, 1);
    ck_assert_ptr_null(cfg);
    ck_assert_str_eq(err,
                     "/nonexistent/usprelay.conf:0: -: cannot read file: No such file or directory\n");
}
END_TEST

START_TEST(err_nul_byte)
{
    static const char text[] = "relay = { workers = 1; };\n# x\0y\nlisteners = ( " STOMP_L " );\n";
    snprintf(g_path, sizeof g_path, "/tmp/usprelay-test-config-XXXXXX");
    int fd = mkstemp(g_path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    struct relay_config *cfg = NULL;
    int rc = config_load(g_path, &cfg, g_err, sizeof g_err);
    unlink(g_path);
    ck_assert_int_eq(rc, 1);
    ck_assert_ptr_null(cfg);
    assert_error(2, "-", "NUL byte");
}
END_TEST

/* Write NAME in directory DIR with TEXT. */
static void write_in(const char *dir, const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(fputs(text, f), 0);
    fclose(f);
}

static void remove_in(const char *dir, const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

START_TEST(includes)
{
    char dir[] = "/tmp/usprelay-test-config-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char main_path[128], inc_path[128];
    snprintf(main_path, sizeof main_path, "%s/main.conf", dir);
    snprintf(inc_path, sizeof inc_path, "%s/limits.conf", dir);

    /* Included relative to the main file's directory; settings spliced in place. */
    write_in(dir, "main.conf",
             "relay = { endpoint_id =\n"
             "@include \"eid.conf\"\n"
             "};\n"
             "@include \"limits.conf\"\n"
             "listeners = ( " STOMP_L " );\n");
    write_in(dir, "eid.conf", "\"self::included\";\n");
    write_in(dir, "limits.conf", "limits = {\n  max_output_queue = 8589934592L; };\n");
    struct relay_config *cfg = NULL;
    int rc = config_load(main_path, &cfg, g_err, sizeof g_err);
    ck_assert_msg(rc == 0, "%s", g_err);
    ck_assert_str_eq(cfg->endpoint_id, "self::included");
    ck_assert_uint_eq(cfg->limits.max_output_queue, 8589934592ULL);
    ck_assert_int_eq(cfg->listeners[0].line, 5);
    config_free(cfg);

    /* Errors in an included file name that file and its own line numbers. */
    write_in(dir, "limits.conf", "# limits\nlimits = {\n  max_output_queue = 5000000000;\n"
                                 "  max_record_size = 1; };\n");
    rc = config_load(main_path, &cfg, g_err, sizeof g_err);
    ck_assert_int_eq(rc, 2);
    ck_assert_ptr_null(cfg);
    char want[200];
    snprintf(want, sizeof want, "%s:3: limits.max_output_queue: value does not fit", inc_path);
    ck_assert_msg(strstr(g_err, want) != NULL, "no \"%s\" in:\n%s", want, g_err);
    snprintf(want, sizeof want, "%s:4: limits.max_record_size: 1 is out of range", inc_path);
    ck_assert_msg(strstr(g_err, want) != NULL, "no \"%s\" in:\n%s", want, g_err);

    /* A syntax error inside an included file. */
    write_in(dir, "limits.conf", "limits = {\n  max_record_size = ;\n};\n");
    rc = config_load(main_path, &cfg, g_err, sizeof g_err);
    ck_assert_int_eq(rc, 1);
    snprintf(want, sizeof want, "%s:2: -: syntax error", inc_path);
    ck_assert_msg(strstr(g_err, want) != NULL, "no \"%s\" in:\n%s", want, g_err);

    /* A missing include is reported where it is named. */
    remove_in(dir, "limits.conf");
    rc = config_load(main_path, &cfg, g_err, sizeof g_err);
    ck_assert_int_eq(rc, 1);
    snprintf(want, sizeof want, "%s:4: -: cannot read include file", main_path);
    ck_assert_msg(strstr(g_err, want) != NULL, "no \"%s\" in:\n%s", want, g_err);

    remove_in(dir, "main.conf");
    remove_in(dir, "eid.conf");
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* ------------------------------------------------------------------ many errors */

START_TEST(all_errors_reported_in_line_order)
{
    struct relay_config *cfg = (struct relay_config *)1;
    int rc = load_text("listeners = (\n"                                         /* 1 */
                       "  { name = \"a\"; type = \"stomp\"; address = \"::1\";\n" /* 2 */
                       "    port = 99999; },\n"                                  /* 3 */
                       "  { name = \"a\"; type = \"uds\"; path = \"/tmp/x\";\n"  /* 4 */
                       "    login = \"x\"; }\n"                                  /* 5 */
                       ");\n"                                                    /* 6 */
                       "relay = {\n"                                             /* 7 */
                       "  workers = -1;\n"                                       /* 8 */
                       "  colour = \"blue\";\n"                                  /* 9 */
                       "};\n"                                                    /* 10 */
                       "extra = 1;\n",                                           /* 11 */
                       &cfg);
    ck_assert_int_eq(rc, 6);
    ck_assert_ptr_null(cfg);
    ck_assert_uint_eq(count_lines(g_err), 6);
    assert_error(3, "listeners[0].port", "out of range");
    assert_error(4, "listeners[1].name", "duplicate");
    assert_error(5, "listeners[1].login", "only for stomp");
    assert_error(8, "relay.workers", "out of range");
    assert_error(9, "relay.colour", "unknown key");
    assert_error(11, "extra", "unknown key");

    /* Sorted by line although relay and listeners were checked in another order. */
    char l3[80], l8[80], l11[80];
    snprintf(l3, sizeof l3, "%s:3: ", g_path);
    snprintf(l8, sizeof l8, "%s:8: ", g_path);
    snprintf(l11, sizeof l11, "%s:11: ", g_path);
    ck_assert_msg(strstr(g_err, l3) < strstr(g_err, l8), "not sorted:\n%s", g_err);
    ck_assert_msg(strstr(g_err, l8) < strstr(g_err, l11), "not sorted:\n%s", g_err);
}
END_TEST

START_TEST(error_buffer_truncated_safely)
{
    const char *text = "a = 1;\nb = 2;\nc = 3;\nlisteners = ( " STOMP_L " );\n";
    snprintf(g_path, sizeof g_path, "/tmp/usprelay-test-config-XXXXXX");
    int fd = mkstemp(g_path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);

    char small[24];
    memset(small, 'X', sizeof small);
    struct relay_config *cfg = NULL;
    int rc = config_load(g_path, &cfg, small, sizeof small);
    ck_assert_int_eq(rc, 3); /* the count is not truncated */
    ck_assert_ptr_null(cfg);
    ck_assert_uint_eq(strlen(small), sizeof small - 1);
    ck_assert_int_eq(strncmp(small, g_path, sizeof small - 1), 0);

    rc = config_load(g_path, &cfg, NULL, 0); /* no buffer at all */
    ck_assert_int_eq(rc, 3);
    ck_assert_ptr_null(cfg);
    unlink(g_path);
}
END_TEST

START_TEST(names)
{
    ck_assert_str_eq(listener_type_name(LISTENER_STOMP), "stomp");
    ck_assert_str_eq(listener_type_name(LISTENER_UDS), "uds");
    ck_assert_str_eq(listener_type_name(LISTENER_MQTT), "mqtt");
    ck_assert_str_eq(listener_type_name(LISTENER_WEBSOCKET), "websocket");
    ck_assert_str_eq(listener_type_name((enum listener_type)9), "?");
    ck_assert_str_eq(from_id_policy_name(FROM_ID_ENFORCE), "enforce");
    ck_assert_str_eq(from_id_policy_name(FROM_ID_LOG), "log");
    ck_assert_str_eq(from_id_policy_name(FROM_ID_OFF), "off");
    ck_assert_str_eq(duplicate_id_policy_name(DUP_REPLACE_OLD), "replace-old");
    ck_assert_str_eq(duplicate_id_policy_name(DUP_REFUSE_NEW), "refuse-new");
    ck_assert_str_eq(connect_records_name(CONNECT_RECORDS_PASS), "pass");
    ck_assert_str_eq(connect_records_name(CONNECT_RECORDS_TRANSLATE), "translate");
    ck_assert_str_eq(from_id_policy_name((enum from_id_policy)7), "?");
}
END_TEST

/* ------------------------------------------------------------------ mqtt listeners */

START_TEST(mqtt_defaults)
{
    struct relay_config *cfg = load_ok("listeners = ( " MQTT_L ", " STOMP_L " );\n");
    const struct listener_cfg *m = &cfg->listeners[0];
    ck_assert_int_eq(m->type, LISTENER_MQTT);
    ck_assert_str_eq(m->name, "m");
    ck_assert_str_eq(m->address, "127.0.0.1");
    ck_assert_uint_eq(m->port, 1883);
    ck_assert_int_eq(m->backlog, 128);
    ck_assert_int_eq(m->line, 1);
    ck_assert_str_eq(m->mqtt.subscribe_topic_template, "usp/endpoint/{eid}");
    ck_assert_ptr_null(m->mqtt.username);
    ck_assert_ptr_null(m->mqtt.password);
    ck_assert_uint_eq(m->mqtt.server_keep_alive, 0);
    ck_assert_uint_eq(m->mqtt.receive_maximum, 64);
    ck_assert_ptr_nonnull(m->mqtt.subscribe_any);
    ck_assert_ptr_null(m->mqtt.subscribe_any[0]);
    ck_assert_uint_eq(m->mqtt.n_subscribe_any, 0);
    ck_assert_mem_eq(&m->limits, &cfg->limits, sizeof m->limits);
    /* No other type's strings are filled in for an mqtt listener, nor mqtt ones for
     * the stomp listener. */
    ck_assert_ptr_null(m->stomp.subscribe_dest_template);
    ck_assert_ptr_null(m->uds.path);
    const struct listener_cfg *s = &cfg->listeners[1];
    ck_assert_ptr_null(s->mqtt.subscribe_topic_template);
    ck_assert_ptr_null(s->mqtt.subscribe_any);
    ck_assert_uint_eq(s->mqtt.n_subscribe_any, 0);
    config_free(cfg);
}
END_TEST

START_TEST(mqtt_explicit_values)
{
    struct relay_config *cfg = load_ok(
        "relay = { max_endpoint_id_length = 64; };\n"
        "listeners = (\n"
        "  { name = \"mq\"; type = \"mqtt\"; address = \"::\"; port = 8883; backlog = 9;\n"
        "    subscribe_topic_template = \"usp/v1/\\xc3\\xa4/{eid}/in\";\n"
        "    username = \"usp-user\"; password = \"\";\n"
        "    server_keep_alive = 65535; receive_maximum = 1;\n"
        "    subscribe_any = [ \"self::usp-controller\", \"oui:00256D:*\", \"o*\",\n"
        "                      \"proto::a%41*\" ];\n"
        "    limits = { max_record_size = 1000; }; },\n"
        "  { name = \"mq2\"; type = \"mqtt\"; address = \"127.0.0.1\"; port = 1;\n"
        "    subscribe_topic_template = \"{eid}\"; server_keep_alive = 0;\n"
        "    receive_maximum = 65535; subscribe_any = ( \"self::a\" ); },\n"
        "  { name = \"mq3\"; type = \"mqtt\"; address = \"127.0.0.1\"; port = 2;\n"
        "    subscribe_any = [ ]; }\n"
        ");\n");
    const struct listener_cfg *m = &cfg->listeners[0];
    ck_assert_str_eq(m->name, "mq");
    ck_assert_str_eq(m->address, "::");
    ck_assert_uint_eq(m->port, 8883);
    ck_assert_int_eq(m->backlog, 9);
    ck_assert_int_eq(m->line, 3);
    ck_assert_str_eq(m->mqtt.subscribe_topic_template, "usp/v1/\xc3\xa4/{eid}/in");
    ck_assert_str_eq(m->mqtt.username, "usp-user");
    ck_assert_str_eq(m->mqtt.password, "");
    ck_assert_uint_eq(m->mqtt.server_keep_alive, 65535);
    ck_assert_uint_eq(m->mqtt.receive_maximum, 1);
    ck_assert_uint_eq(m->mqtt.n_subscribe_any, 4);
    ck_assert_str_eq(m->mqtt.subscribe_any[0], "self::usp-controller");
    ck_assert_str_eq(m->mqtt.subscribe_any[1], "oui:00256D:*");
    ck_assert_str_eq(m->mqtt.subscribe_any[2], "o*");
    ck_assert_str_eq(m->mqtt.subscribe_any[3], "proto::a%41*");
    ck_assert_ptr_null(m->mqtt.subscribe_any[4]);
    ck_assert_uint_eq(m->limits.max_record_size, 1000);

    const struct listener_cfg *m2 = &cfg->listeners[1];
    ck_assert_str_eq(m2->mqtt.subscribe_topic_template, "{eid}");
    ck_assert_uint_eq(m2->mqtt.server_keep_alive, 0);
    ck_assert_uint_eq(m2->mqtt.receive_maximum, 65535);
    ck_assert_uint_eq(m2->mqtt.n_subscribe_any, 1);
    ck_assert_str_eq(m2->mqtt.subscribe_any[0], "self::a");
    ck_assert_ptr_null(m2->mqtt.subscribe_any[1]);

    const struct listener_cfg *m3 = &cfg->listeners[2];
    ck_assert_ptr_nonnull(m3->mqtt.subscribe_any);
    ck_assert_ptr_null(m3->mqtt.subscribe_any[0]);
    ck_assert_uint_eq(m3->mqtt.n_subscribe_any, 0);
    config_free(cfg);
}
END_TEST

START_TEST(err_mqtt_bad_template)
{
    static const struct {
        const char *tmpl; /* as written in the file (libconfig escapes) */
        const char *frag;
    } cases[] = {
        {"", "must contain {eid}"},
        {"usp/endpoint", "must contain {eid}"},
        {"usp/{eid}/{eid}", "exactly once"},
        {"usp/{eid}{eid}", "exactly once"},
        {"usp/+/{eid}", "must not contain '+' or '#'"},
        {"usp/{eid}/#", "must not contain '+' or '#'"},
        {"usp/{eid}\\r", "control characters"},
        {"usp/{eid}\\n", "control characters"},
        {"usp/\\t{eid}", "control characters"},
        {"usp/\\x7f{eid}", "control characters"},
        {"usp/\\xc2\\x85{eid}", "control characters"}, /* U+0085, a C1 control */
        {"usp/\\xff{eid}", "not valid UTF-8"},
        {"usp/\\xc3{eid}", "not valid UTF-8"},               /* truncated sequence */
        {"usp/\\xc0\\xaf{eid}", "not valid UTF-8"},          /* overlong '/' */
        {"usp/\\xed\\xa0\\x80{eid}", "not valid UTF-8"},     /* surrogate U+D800 */
        {"usp/\\xf4\\x90\\x80\\x80{eid}", "not valid UTF-8"}, /* above U+10FFFF */
        {"usp/\\x00{eid}", "contains \\x00"},                /* libconfig would drop it */
        {"usp/{eid}\\X00", "contains \\x00"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, MQTT_HEAD "    subscribe_topic_template = \"%s\"; }\n);\n",
                 cases[i].tmpl);
        expect_one(text, 3, "listeners[0].subscribe_topic_template", cases[i].frag);
    }
    /* An escaped backslash before "x00" is no NUL escape; a 4-byte character is fine. */
    struct relay_config *cfg = load_ok(
        MQTT_HEAD "    subscribe_topic_template = \"usp/\\\\x00/\\xf0\\x9f\\x98\\x80/{eid}\"; }\n);\n");
    ck_assert_str_eq(cfg->listeners[0].mqtt.subscribe_topic_template,
                     "usp/\\x00/\xf0\x9f\x98\x80/{eid}");
    config_free(cfg);
}
END_TEST

/* The template is at most 256 bytes (the server's topic buffers are sized from it). */
START_TEST(err_mqtt_template_too_long)
{
    size_t cap = 70000;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    for (int over = 0; over < 2; over++) {
        /* 251 + "{eid}" = 256 fits; one byte more does not. */
        size_t pad = 251 + (size_t)over;
        int n = snprintf(text, cap, "relay = { max_endpoint_id_length = 4096; };\n" MQTT_HEAD
                                    "    subscribe_topic_template = \"");
        ck_assert_int_gt(n, 0);
        memset(text + n, 'a', pad);
        snprintf(text + (size_t)n + pad, cap - (size_t)n - pad, "{eid}\"; }\n);\n");
        if (over) {
            expect_one(text, 4, "listeners[0].subscribe_topic_template",
                       "too long: at most 256 bytes");
        } else {
            struct relay_config *cfg = load_ok(text);
            ck_assert_uint_eq(strlen(cfg->listeners[0].mqtt.subscribe_topic_template),
                              pad + 5);
            config_free(cfg);
        }
    }
    free(text);
}
END_TEST

START_TEST(err_mqtt_credentials)
{
    expect_one(MQTT_HEAD "    username = \"u\"; }\n);\n", 3, "listeners[0].password",
               "username is set but password is not: set both or neither");
    expect_one(MQTT_HEAD "    password = \"p\"; }\n);\n", 3, "listeners[0].username",
               "password is set but username is not: set both or neither");
    expect_one(MQTT_HEAD "    username = \"\"; password = \"p\"; }\n);\n", 3,
               "listeners[0].username", "must not be empty");
    expect_one(MQTT_HEAD "    username = \"\\xff\"; password = \"p\"; }\n);\n", 3,
               "listeners[0].username", "not valid UTF-8");
    expect_one(MQTT_HEAD "    username = \"u\"; password = 7; }\n);\n", 3,
               "listeners[0].password", "expected a string, found an integer");
    expect_one(MQTT_HEAD "    username = \"u\"; password = \"p\\x00\"; }\n);\n", 3,
               "listeners[0].password", "contains \\x00");
}
END_TEST

START_TEST(err_mqtt_out_of_range)
{
    expect_one(MQTT_HEAD "    server_keep_alive = 65536; }\n);\n", 3,
               "listeners[0].server_keep_alive", "65536 is out of range (0..65535)");
    expect_one(MQTT_HEAD "    server_keep_alive = -1; }\n);\n", 3,
               "listeners[0].server_keep_alive", "out of range");
    expect_one(MQTT_HEAD "    server_keep_alive = 1.5; }\n);\n", 3,
               "listeners[0].server_keep_alive", "expected an integer");
    expect_one(MQTT_HEAD "    receive_maximum = 0; }\n);\n", 3,
               "listeners[0].receive_maximum", "0 is out of range (1..65535)");
    expect_one(MQTT_HEAD "    receive_maximum = 65536; }\n);\n", 3,
               "listeners[0].receive_maximum", "out of range");
    expect_one(MQTT_HEAD "    receive_maximum = \"64\"; }\n);\n", 3,
               "listeners[0].receive_maximum", "expected an integer, found a string");
    expect_one(MQTT_HEAD "    receive_maximum = 4294967360; }\n);\n", 3,
               "listeners[0].receive_maximum", "does not fit in 32 bits");
    expect_one("listeners = ( { name = \"m\"; type = \"mqtt\"; address = \"::1\";\n"
               "  port = 65536; } );\n",
               2, "listeners[0].port", "out of range (1..65535)");
    expect_one("listeners = ( { name = \"m\"; type = \"mqtt\"; address = \"localhost\";\n"
               "  port = 1883; } );\n",
               1, "listeners[0].address", "not a numeric IPv4 or IPv6 address");
}
END_TEST

START_TEST(err_mqtt_subscribe_any)
{
    expect_one(MQTT_HEAD "    subscribe_any = \"self::ctl\"; }\n);\n", 3,
               "listeners[0].subscribe_any", "expected a list of endpoint IDs");
    expect_one(MQTT_HEAD "    subscribe_any = { a = \"self::ctl\"; }; }\n);\n", 3,
               "listeners[0].subscribe_any", "found a group");
    expect_one(MQTT_HEAD "    subscribe_any = ( \"self::ctl\", 5 ); }\n);\n", 3,
               "listeners[0].subscribe_any[1]", "expected a string, found an integer");
    expect_one(MQTT_HEAD "    subscribe_any = [ \"self:ctl\" ]; }\n);\n", 3,
               "listeners[0].subscribe_any[0]", "\"self:ctl\" is not a valid endpoint ID");
    expect_one(MQTT_HEAD "    subscribe_any = [ \"\" ]; }\n);\n", 3,
               "listeners[0].subscribe_any[0]", "not a valid endpoint ID (empty)");
    expect_one(MQTT_HEAD "    subscribe_any = [ \"*\" ]; }\n);\n", 3,
               "listeners[0].subscribe_any[0]", "\"*\" needs at least one character");
    expect_one(MQTT_HEAD "    subscribe_any = [ \"oui:*:x*\" ]; }\n);\n", 3,
               "listeners[0].subscribe_any[0]", "'*' only at its end");
    expect_one(MQTT_HEAD "    subscribe_any = [ \"self::a b*\" ]; }\n);\n", 3,
               "listeners[0].subscribe_any[0]", "characters of endpoint IDs");
    expect_one(MQTT_HEAD "    subscribe_any = [ \"self::a/*\" ]; }\n);\n", 3,
               "listeners[0].subscribe_any[0]", "characters of endpoint IDs");
    expect_one(MQTT_HEAD "    subscribe_any = [ \"a:b:c:*\" ]; }\n);\n", 3,
               "listeners[0].subscribe_any[0]", "more than two ':'");
    expect_one("relay = { max_endpoint_id_length = 32; };\n"
               "listeners = ( { name = \"m\"; type = \"mqtt\"; address = \"::1\"; port = 1;\n"
               "  subscribe_any = [ \"self::aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa*\" ]; } );\n",
               3, "listeners[0].subscribe_any[0]", "longer than max_endpoint_id_length");
    expect_one(MQTT_HEAD "    subscribe_any = [ \"self::a\\x00b\" ]; }\n);\n", 3,
               "listeners[0].subscribe_any", "contains \\x00");

    /* Every bad entry is reported, on its own line, and the good ones do not leak. */
    struct relay_config *cfg = (struct relay_config *)1;
    int rc = load_text(MQTT_HEAD "    subscribe_any = (\n"
                                 "      \"self::ok\",\n"
                                 "      \"bad\",\n"
                                 "      \"oui:00256D:*\",\n"
                                 "      \"**\" ); }\n);\n",
                       &cfg);
    ck_assert_int_eq(rc, 2);
    ck_assert_ptr_null(cfg);
    assert_error(5, "listeners[0].subscribe_any[1]", "\"bad\" is not a valid endpoint ID");
    assert_error(7, "listeners[0].subscribe_any[3]", "'*' only at its end");
}
END_TEST

START_TEST(err_mqtt_keys_for_other_types)
{
    expect_one(MQTT_HEAD "    login = \"u\"; }\n);\n", 3, "listeners[0].login",
               "not valid for an mqtt listener (only for stomp listeners)");
    expect_one(MQTT_HEAD "    subscribe_dest_template = \"/q/{eid}\"; }\n);\n", 3,
               "listeners[0].subscribe_dest_template", "only for stomp listeners");
    expect_one(MQTT_HEAD "    peer_endpoint_id = \"self::x\"; }\n);\n", 3,
               "listeners[0].peer_endpoint_id",
               "not valid for an mqtt listener (only for uds listeners)");
    expect_one("listeners = (\n"
               "  { name = \"s\"; type = \"stomp\"; address = \"::1\"; port = 1;\n"
               "    username = \"u\"; }\n"
               ");\n",
               3, "listeners[0].username",
               "not valid for a stomp listener (only for mqtt listeners)");
    expect_one("listeners = (\n"
               "  { name = \"s\"; type = \"stomp\"; address = \"::1\"; port = 1;\n"
               "    subscribe_any = [ \"self::c\" ]; }\n"
               ");\n",
               3, "listeners[0].subscribe_any", "only for mqtt listeners");
    expect_one("listeners = (\n"
               "  { name = \"u\"; type = \"uds\"; path = \"/tmp/x\";\n"
               "    receive_maximum = 5; }\n"
               ");\n",
               3, "listeners[0].receive_maximum",
               "not valid for a uds listener (only for mqtt listeners)");
    expect_one("listeners = (\n"
               "  { name = \"u\"; type = \"uds\"; path = \"/tmp/x\";\n"
               "    port = 5; }\n"
               ");\n",
               3, "listeners[0].port", "(only for stomp, mqtt and websocket listeners)");
    /* A misspelt mqtt key gets a suggestion. */
    expect_one(MQTT_HEAD "    recieve_maximum = 5; }\n);\n", 3,
               "listeners[0].recieve_maximum", "did you mean \"receive_maximum\"");
}
END_TEST

START_TEST(err_mqtt_port_clash)
{
    expect_one("listeners = (\n"
               "  { name = \"s\"; type = \"stomp\"; address = \"127.0.0.1\"; port = 1883; },\n"
               "  { name = \"m\"; type = \"mqtt\"; address = \"127.0.0.1\"; port = 1883; }\n"
               ");\n",
               3, "listeners[1].port", "127.0.0.1 port 1883 overlaps listeners[0]");
    expect_one("listeners = (\n"
               "  { name = \"m\"; type = \"mqtt\"; address = \"::\"; port = 61613; },\n"
               "  { name = \"s\"; type = \"stomp\"; address = \"::1\"; port = 61613; }\n"
               ");\n",
               3, "listeners[1].port", "overlaps listeners[0]");
    expect_one("listeners = (\n"
               "  { name = \"a\"; type = \"mqtt\"; address = \"::1\"; port = 1883; },\n"
               "  { name = \"b\"; type = \"mqtt\"; address = \"0:0::1\"; port = 1883; }\n"
               ");\n",
               3, "listeners[1].port", "overlaps listeners[0]");
    /* Other ports, other specific addresses and UDS listeners do not clash. */
    struct relay_config *cfg = load_ok(
        "listeners = (\n"
        "  { name = \"s\"; type = \"stomp\"; address = \"127.0.0.1\"; port = 1883; },\n"
        "  { name = \"m\"; type = \"mqtt\"; address = \"127.0.0.2\"; port = 1883; },\n"
        "  { name = \"n\"; type = \"mqtt\"; address = \"::\"; port = 1884; },\n"
        "  { name = \"u\"; type = \"uds\"; path = \"/tmp/x\"; }\n"
        ");\n");
    ck_assert_uint_eq(cfg->n_listeners, 4);
    config_free(cfg);
}
END_TEST

/* libconfig drops "\x00" from any string; the loader refuses it everywhere. */
START_TEST(err_nul_escape_in_strings)
{
    expect_one("relay = {\n  endpoint_id = \"self::a\\x00\"; };\nlisteners = ( " STOMP_L " );\n",
               2, "relay.endpoint_id", "contains \\x00, which libconfig silently drops");
    expect_one("listeners = (\n"
               "  { name = \"s\"; type = \"stomp\"; address = \"::1\"; port = 1;\n"
               "    login = \"us\\x00er\"; passcode = \"p\"; }\n"
               ");\n",
               3, "listeners[0].login", "contains \\x00");
    /* Other escapes, and \x00 in comments, pass. */
    struct relay_config *cfg = load_ok("# endpoint_id = \"\\x00\";\n"
                                       "relay = { endpoint_id = \"self::a\\x41\\x30\"; };\n"
                                       "listeners = ( " STOMP_L " );\n");
    ck_assert_str_eq(cfg->endpoint_id, "self::aA0");
    config_free(cfg);
}
END_TEST

/* ------------------------------------------------------------------ websocket listeners */

START_TEST(ws_explicit_values)
{
    struct relay_config *cfg = load_ok(
        "relay = { max_endpoint_id_length = 64; };\n"
        "listeners = (\n"
        "  { name = \"w\"; type = \"websocket\"; address = \"::\"; port = 8443; backlog = 7;\n"
        "    controllers = (\n"
        "      { path = \"/usp/ctrl1\"; endpoint_id = \"self::usp-controller\"; },\n"
        "      { endpoint_id = \"oui:00256D:ctl-2\"; path = \"/a/b~!$&'()*+,;=:@[]\"; }\n"
        "    );\n"
        "    paths = [ \"/usp\", \"/\", \"/x/y.z_-\" ];\n"
        "    mqtt_listener = \"m\";\n"
        "    ping_interval = 0; ping_timeout = 3600; fragment_size = 125;\n"
        "    limits = { max_record_size = 100000; }; },\n"
        "  { name = \"m\"; type = \"mqtt\"; address = \"::1\"; port = 1883; },\n"
        "  { name = \"w2\"; type = \"websocket\"; address = \"127.0.0.1\"; port = 8080;\n"
        "    ping_interval = 3600; ping_timeout = 1; fragment_size = 100000;\n"
        "    limits = { max_record_size = 100000; }; }\n"
        ");\n");
    ck_assert_uint_eq(cfg->n_listeners, 3);
    const struct listener_cfg *w = &cfg->listeners[0];
    ck_assert_str_eq(w->name, "w");
    ck_assert_int_eq(w->type, LISTENER_WEBSOCKET);
    ck_assert_str_eq(w->address, "::");
    ck_assert_uint_eq(w->port, 8443);
    ck_assert_int_eq(w->backlog, 7);
    ck_assert_int_eq(w->line, 3);
    ck_assert_uint_eq(w->ws.n_controllers, 2);
    ck_assert_str_eq(w->ws.controllers[0].path, "/usp/ctrl1");
    ck_assert_str_eq(w->ws.controllers[0].endpoint_id, "self::usp-controller");
    ck_assert_str_eq(w->ws.controllers[1].path, "/a/b~!$&'()*+,;=:@[]");
    ck_assert_str_eq(w->ws.controllers[1].endpoint_id, "oui:00256D:ctl-2");
    ck_assert_uint_eq(w->ws.n_paths, 3);
    ck_assert_str_eq(w->ws.paths[0], "/usp");
    ck_assert_str_eq(w->ws.paths[1], "/");
    ck_assert_str_eq(w->ws.paths[2], "/x/y.z_-");
    ck_assert_ptr_null(w->ws.paths[3]);
    ck_assert_str_eq(w->ws.mqtt_listener, "m");
    ck_assert_ptr_eq(w->ws.mqtt, &cfg->listeners[1]);
    ck_assert_uint_eq(w->ws.ping_interval_s, 0);
    ck_assert_uint_eq(w->ws.ping_timeout_s, 3600);
    ck_assert_uint_eq(w->ws.fragment_size, 125);
    ck_assert_uint_eq(w->limits.max_record_size, 100000);
    /* No other type's strings are filled in. */
    ck_assert_ptr_null(w->stomp.subscribe_dest_template);
    ck_assert_ptr_null(w->mqtt.subscribe_topic_template);
    ck_assert_ptr_null(w->mqtt.subscribe_any);
    ck_assert_ptr_null(w->uds.path);

    const struct listener_cfg *w2 = &cfg->listeners[2];
    ck_assert_uint_eq(w2->ws.ping_interval_s, 3600);
    ck_assert_uint_eq(w2->ws.ping_timeout_s, 1);
    ck_assert_uint_eq(w2->ws.fragment_size, 100000); /* = max_record_size */
    /* The mqtt listener gets no websocket fields. */
    ck_assert_ptr_null(cfg->listeners[1].ws.paths);
    ck_assert_uint_eq(cfg->listeners[1].ws.n_paths, 0);
    config_free(cfg);
}
END_TEST

START_TEST(ws_defaults)
{
    struct relay_config *cfg = load_ok(
        "listeners = ( { name = \"w\"; type = \"websocket\"; address = \"127.0.0.1\";\n"
        "  port = 8080; }, " STOMP_L " );\n");
    const struct listener_cfg *w = &cfg->listeners[0];
    ck_assert_int_eq(w->type, LISTENER_WEBSOCKET);
    ck_assert_int_eq(w->backlog, 128);
    ck_assert_int_eq(w->line, 1);
    ck_assert_uint_eq(w->ws.n_paths, 1);
    ck_assert_str_eq(w->ws.paths[0], "/usp");
    ck_assert_ptr_null(w->ws.paths[1]);
    ck_assert_uint_eq(w->ws.n_controllers, 0);
    ck_assert_ptr_null(w->ws.controllers);
    ck_assert_ptr_null(w->ws.mqtt_listener);
    ck_assert_ptr_null(w->ws.mqtt);
    ck_assert_uint_eq(w->ws.ping_interval_s, 30);
    ck_assert_uint_eq(w->ws.ping_timeout_s, 30);
    ck_assert_uint_eq(w->ws.fragment_size, 0);
    ck_assert_mem_eq(&w->limits, &cfg->limits, sizeof w->limits);
    const struct listener_cfg *s = &cfg->listeners[1];
    ck_assert_ptr_null(s->ws.paths);
    ck_assert_uint_eq(s->ws.n_paths, 0);
    config_free(cfg);

    /* An explicit empty paths list leaves only the controller paths. */
    cfg = load_ok(WS_HEAD "    paths = [ ];\n"
                          "    controllers = ( { path = \"/c\"; endpoint_id = \"self::c\"; } ); }\n"
                          ");\n");
    w = &cfg->listeners[0];
    ck_assert_uint_eq(w->ws.n_paths, 0);
    ck_assert_ptr_nonnull(w->ws.paths);
    ck_assert_ptr_null(w->ws.paths[0]);
    ck_assert_uint_eq(w->ws.n_controllers, 1);
    ck_assert_str_eq(w->ws.controllers[0].path, "/c");
    config_free(cfg);

    /* An empty controllers list is the default; paths may be a list too. */
    cfg = load_ok(WS_HEAD "    controllers = ( ); paths = ( \"/a\", \"/b\" ); }\n);\n");
    w = &cfg->listeners[0];
    ck_assert_uint_eq(w->ws.n_controllers, 0);
    ck_assert_uint_eq(w->ws.n_paths, 2);
    ck_assert_str_eq(w->ws.paths[1], "/b");
    config_free(cfg);
}
END_TEST

/* mqtt_listener may name an mqtt listener defined before or after the websocket one. */
START_TEST(ws_mqtt_listener_resolution)
{
    struct relay_config *cfg = load_ok(
        "listeners = (\n"
        "  { name = \"m1\"; type = \"mqtt\"; address = \"::1\"; port = 1883; },\n"
        "  { name = \"wa\"; type = \"websocket\"; address = \"::1\"; port = 8080;\n"
        "    mqtt_listener = \"m2\"; },\n"
        "  { name = \"wb\"; type = \"websocket\"; address = \"::1\"; port = 8081;\n"
        "    mqtt_listener = \"m1\"; },\n"
        "  { name = \"wc\"; type = \"websocket\"; address = \"::1\"; port = 8082; },\n"
        "  { name = \"m2\"; type = \"mqtt\"; address = \"::1\"; port = 1884;\n"
        "    subscribe_topic_template = \"v2/{eid}\"; }\n"
        ");\n");
    ck_assert_uint_eq(cfg->n_listeners, 5);
    const struct listener_cfg *wa = &cfg->listeners[1], *wb = &cfg->listeners[2];
    ck_assert_str_eq(wa->ws.mqtt_listener, "m2");
    ck_assert_ptr_eq(wa->ws.mqtt, &cfg->listeners[4]);
    ck_assert_str_eq(wa->ws.mqtt->mqtt.subscribe_topic_template, "v2/{eid}");
    ck_assert_str_eq(wb->ws.mqtt_listener, "m1");
    ck_assert_ptr_eq(wb->ws.mqtt, &cfg->listeners[0]);
    ck_assert_uint_eq(wb->ws.mqtt->port, 1883);
    ck_assert_ptr_null(cfg->listeners[3].ws.mqtt);
    ck_assert_ptr_null(cfg->listeners[3].ws.mqtt_listener);
    config_free(cfg);
}
END_TEST

/* Every path rule, on a controller path and on a plain path. */
START_TEST(err_ws_bad_path)
{
    static const struct {
        const char *path; /* as written in the file (libconfig escapes) */
        const char *frag;
    } cases[] = {
        {"usp", "\"usp\" must start with '/'"},
        {"", "must start with '/'"},
        {"/usp?x=1", "must not contain '?' or '#'"},
        {"/usp#f", "must not contain '?' or '#'"},
        {"/usp%2Fa", "must not contain '%' (request paths are percent-decoded"},
        {"/us p", "only printable ASCII"},
        {"/usp\\t", "only printable ASCII"},
        {"/usp\\x7f", "only printable ASCII"},
        {"/\\xc3\\xa4", "only printable ASCII"},
    };
    char text[1024];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(text, sizeof text,
                 WS_HEAD "    paths = [ \"/ok\",\n"
                         "      \"%s\" ]; }\n);\n",
                 cases[i].path);
        expect_one(text, 4, "listeners[0].paths[1]", cases[i].frag);
        snprintf(text, sizeof text,
                 WS_HEAD "    controllers = ( { path = \"/ok\"; endpoint_id = \"self::a\"; },\n"
                         "      { endpoint_id = \"self::b\";\n"
                         "        path = \"%s\"; } ); }\n);\n",
                 cases[i].path);
        expect_one(text, 5, "listeners[0].controllers[1].path", cases[i].frag);
    }

    /* 256 bytes fit, 257 do not. */
    for (int over = 0; over < 2; over++) {
        char path[260];
        size_t len = 256 + (size_t)over;
        memset(path, 'p', len);
        path[0] = '/';
        path[len] = '\0';
        snprintf(text, sizeof text, WS_HEAD "    paths = [ \"%s\" ]; }\n);\n", path);
        if (over) {
            expect_one(text, 3, "listeners[0].paths[0]", "too long: at most 256 bytes");
        } else {
            struct relay_config *cfg = load_ok(text);
            ck_assert_uint_eq(strlen(cfg->listeners[0].ws.paths[0]), 256);
            config_free(cfg);
        }
        snprintf(text, sizeof text,
                 WS_HEAD "    paths = [ ];\n"
                         "    controllers = ( { path = \"%s\"; endpoint_id = \"self::c\"; } ); }\n"
                         ");\n",
                 path);
        if (over) {
            expect_one(text, 4, "listeners[0].controllers[0].path", "too long");
        } else {
            struct relay_config *cfg = load_ok(text);
            ck_assert_uint_eq(strlen(cfg->listeners[0].ws.controllers[0].path), 256);
            config_free(cfg);
        }
    }

    /* Wrong types, and the NUL escape libconfig would drop. */
    expect_one(WS_HEAD "    paths = \"/usp\"; }\n);\n", 3, "listeners[0].paths",
               "expected an array of paths such as [ \"/usp\" ], found a string");
    expect_one(WS_HEAD "    paths = ( \"/usp\", 5 ); }\n);\n", 3, "listeners[0].paths[1]",
               "expected a string, found an integer");
    expect_one(WS_HEAD "    paths = [ \"/u\\x00sp\" ]; }\n);\n", 3, "listeners[0].paths",
               "contains \\x00");
    expect_one(WS_HEAD "    controllers = ( { path = \"/u\\x00\"; endpoint_id = \"self::c\"; } );"
                       " }\n);\n",
               3, "listeners[0].controllers[0].path", "contains \\x00");
}
END_TEST

START_TEST(err_ws_duplicate_path)
{
    /* A plain path repeating a controller path, written before the paths list. */
    expect_one(WS_HEAD "    controllers = ( { path = \"/usp/c\"; endpoint_id = \"self::c\"; } );\n"
                       "    paths = [ \"/usp\", \"/usp/c\" ]; }\n);\n",
               4, "listeners[0].paths[1]",
               "duplicate path \"/usp/c\" (also listeners[0].controllers[0].path)");
    /* The paths list written first: the controller path is the later one. */
    expect_one(WS_HEAD "    paths = [ \"/usp/c\" ];\n"
                       "    controllers = ( { path = \"/usp/c\"; endpoint_id = \"self::c\"; } ); }\n"
                       ");\n",
               4, "listeners[0].controllers[0].path",
               "duplicate path \"/usp/c\" (also listeners[0].paths[0])");
    /* Two controllers on one path, and a path listed twice. */
    expect_one(WS_HEAD "    controllers = ( { path = \"/c\"; endpoint_id = \"self::a\"; },\n"
                       "      { path = \"/c\"; endpoint_id = \"self::b\"; } ); }\n);\n",
               4, "listeners[0].controllers[1].path",
               "duplicate path \"/c\" (also listeners[0].controllers[0].path)");
    expect_one(WS_HEAD "    paths = [ \"/a\", \"/b\",\n \"/a\" ]; }\n);\n", 4,
               "listeners[0].paths[2]", "duplicate path \"/a\" (also listeners[0].paths[0])");
    /* A controller on the default path "/usp" while paths is not set. */
    expect_one(WS_HEAD "    controllers = ( { path = \"/usp\"; endpoint_id = \"self::c\"; } ); }\n"
                       ");\n",
               3, "listeners[0].controllers[0].path",
               "\"/usp\" is also the default of paths ([ \"/usp\" ]); set paths explicitly");
    /* Three copies: each repeat names the first. */
    struct relay_config *cfg = (struct relay_config *)1;
    int rc = load_text(WS_HEAD "    paths = [ \"/a\",\n"
                               "      \"/a\",\n"
                               "      \"/a\" ]; }\n);\n",
                       &cfg);
    ck_assert_int_eq(rc, 2);
    ck_assert_ptr_null(cfg);
    assert_error(4, "listeners[0].paths[1]", "(also listeners[0].paths[0])");
    assert_error(5, "listeners[0].paths[2]", "(also listeners[0].paths[0])");
    /* The same path on two listeners is fine: each listener has its own resources. */
    cfg = load_ok("listeners = (\n"
                  "  { name = \"a\"; type = \"websocket\"; address = \"::1\"; port = 1; },\n"
                  "  { name = \"b\"; type = \"websocket\"; address = \"::1\"; port = 2; }\n"
                  ");\n");
    ck_assert_str_eq(cfg->listeners[1].ws.paths[0], "/usp");
    config_free(cfg);
}
END_TEST

START_TEST(err_ws_no_path)
{
    expect_one(WS_HEAD "    controllers = ( );\n    paths = [ ]; }\n);\n", 4,
               "listeners[0].paths", "the listener accepts no path");
    expect_one(WS_HEAD "    paths = [ ]; }\n);\n", 3, "listeners[0].paths",
               "give at least one here or in controllers");
    /* A bad entry is its own error, not also "no path". */
    expect_one(WS_HEAD "    paths = [\n \"usp\" ]; }\n);\n", 4, "listeners[0].paths[0]",
               "must start with '/'");
}
END_TEST

START_TEST(err_ws_controllers)
{
    expect_one(WS_HEAD "    controllers = ( { path = \"/c\"; endpoint_id = \"self:c\"; } ); }\n"
                       ");\n",
               3, "listeners[0].controllers[0].endpoint_id",
               "\"self:c\" is not a valid endpoint ID");
    expect_one(WS_HEAD "    controllers = ( { path = \"/c\"; endpoint_id = \"\"; } ); }\n);\n",
               3, "listeners[0].controllers[0].endpoint_id", "not a valid endpoint ID (empty)");
    /* max_endpoint_id_length applies. */
    expect_one("relay = { max_endpoint_id_length = 32; };\n" WS_HEAD
               "    controllers = ( { path = \"/c\";\n"
               "      endpoint_id = \"self::aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"; } ); }\n"
               ");\n",
               5, "listeners[0].controllers[0].endpoint_id", "not a valid endpoint ID");
    expect_one(WS_HEAD "    controllers = ( { path = \"/c\"; endpoint_id = \"self::c\";\n"
                       "      endpiont_id = \"self::d\"; } ); }\n);\n",
               4, "listeners[0].controllers[0].endpiont_id",
               "unknown key (did you mean \"endpoint_id\"?)");
    expect_one(WS_HEAD "    controllers = ( { path = \"/c\"; endpoint_id = \"self::c\";\n"
                       "      name = \"x\"; } ); }\n);\n",
               4, "listeners[0].controllers[0].name", "unknown key");
    expect_one(WS_HEAD "    controllers = ( { path = \"/c\"; } ); }\n);\n", 3,
               "listeners[0].controllers[0].endpoint_id",
               "required (the controller reached through this path)");
    expect_one(WS_HEAD "    controllers = ( { endpoint_id = \"self::c\"; } ); }\n);\n", 3,
               "listeners[0].controllers[0].path", "required");
    expect_one(WS_HEAD "    controllers = ( \"/c\" ); }\n);\n", 3,
               "listeners[0].controllers[0]", "expected a group { path = ");
    expect_one(WS_HEAD "    controllers = { path = \"/c\"; endpoint_id = \"self::c\"; }; }\n);\n",
               3, "listeners[0].controllers", "expected a list ( { path = ");
    expect_one(WS_HEAD "    controllers = ( { path = 5; endpoint_id = \"self::c\"; } ); }\n);\n",
               3, "listeners[0].controllers[0].path", "expected a string, found an integer");
}
END_TEST

START_TEST(err_ws_mqtt_listener)
{
    expect_one(WS_HEAD "    mqtt_listener = \"nope\"; }\n);\n", 3, "listeners[0].mqtt_listener",
               "no listener is named \"nope\"");
    expect_one("listeners = (\n"
               "  { name = \"w\"; type = \"websocket\"; address = \"::1\"; port = 8080;\n"
               "    mqtt_listener = \"s\"; },\n"
               "  { name = \"s\"; type = \"stomp\"; address = \"::1\"; port = 61613; }\n"
               ");\n",
               3, "listeners[0].mqtt_listener",
               "\"s\" is a stomp listener (listeners[1]), not an mqtt one");
    expect_one(WS_HEAD "    mqtt_listener = \"w\"; }\n);\n", 3, "listeners[0].mqtt_listener",
               "\"w\" is a websocket listener (listeners[0]), not an mqtt one");
    expect_one(WS_HEAD "    mqtt_listener = 1; }\n);\n", 3, "listeners[0].mqtt_listener",
               "expected a string, found an integer");
    /* A named listener without a valid type has its own error only. */
    expect_one("listeners = (\n"
               "  { name = \"w\"; type = \"websocket\"; address = \"::1\"; port = 8080;\n"
               "    mqtt_listener = \"m\"; },\n"
               "  { name = \"m\"; type = \"mqtt5\"; address = \"::1\"; port = 1883; }\n"
               ");\n",
               4, "listeners[1].type", "is not one of");
}
END_TEST

START_TEST(err_ws_out_of_range)
{
    expect_one(WS_HEAD "    ping_interval = 3601; }\n);\n", 3, "listeners[0].ping_interval",
               "3601 is out of range (0..3600)");
    expect_one(WS_HEAD "    ping_interval = -1; }\n);\n", 3, "listeners[0].ping_interval",
               "out of range");
    expect_one(WS_HEAD "    ping_interval = 1.5; }\n);\n", 3, "listeners[0].ping_interval",
               "expected an integer");
    expect_one(WS_HEAD "    ping_timeout = 0; }\n);\n", 3, "listeners[0].ping_timeout",
               "0 is out of range (1..3600)");
    expect_one(WS_HEAD "    ping_timeout = 3601; }\n);\n", 3, "listeners[0].ping_timeout",
               "out of range");
    expect_one(WS_HEAD "    fragment_size = 1; }\n);\n", 3, "listeners[0].fragment_size",
               "1 is out of range: 0 (each Record in one frame) or 125..5242880");
    expect_one(WS_HEAD "    fragment_size = 124; }\n);\n", 3, "listeners[0].fragment_size",
               "124 is out of range");
    expect_one(WS_HEAD "    fragment_size = -1; }\n);\n", 3, "listeners[0].fragment_size",
               "-1 is out of range");
    expect_one(WS_HEAD "    fragment_size = 5242881; }\n);\n", 3, "listeners[0].fragment_size",
               "5242881 is out of range: 0 (each Record in one frame) or 125..5242880");
    expect_one(WS_HEAD "    fragment_size = 4294967296; }\n);\n", 3,
               "listeners[0].fragment_size", "does not fit in 32 bits");
    /* The listener's own effective max_record_size bounds it. */
    expect_one(WS_HEAD "    limits = { max_record_size = 1000; };\n"
                       "    fragment_size = 1001; }\n);\n",
               4, "listeners[0].fragment_size", "or 125..1000 (max_record_size)");
    expect_one("limits = { max_record_size = 100; };\n" WS_HEAD
               "    fragment_size = 125; }\n);\n",
               4, "listeners[0].fragment_size", "only 0 (each Record in one frame)");
    expect_one("listeners = ( { name = \"w\"; type = \"websocket\"; address = \"::1\"; } );\n", 1,
               "listeners[0].port", "required for a websocket listener (WebSocket's usual port "
                                    "is 8080 (ws))");
    expect_one("listeners = ( { name = \"w\"; type = \"websocket\"; port = 8080; } );\n", 1,
               "listeners[0].address", "required for a websocket listener");
}
END_TEST

START_TEST(err_ws_keys_for_other_types)
{
    static const char *const ws_keys[] = {
        "controllers = ( )", "paths = [ \"/usp\" ]", "mqtt_listener = \"m\"",
        "ping_interval = 5", "ping_timeout = 5", "fragment_size = 0"};
    char text[512], key[64];
    for (size_t i = 0; i < sizeof ws_keys / sizeof ws_keys[0]; i++) {
        snprintf(text, sizeof text,
                 "listeners = (\n"
                 "  { name = \"s\"; type = \"stomp\"; address = \"::1\"; port = 1;\n"
                 "    %s; }\n"
                 ");\n",
                 ws_keys[i]);
        snprintf(key, sizeof key, "listeners[0].%.*s", (int)strcspn(ws_keys[i], " "),
                 ws_keys[i]);
        expect_one(text, 3, key, "not valid for a stomp listener (only for websocket listeners)");
    }
    expect_one(MQTT_HEAD "    paths = [ \"/usp\" ]; }\n);\n", 3, "listeners[0].paths",
               "not valid for an mqtt listener (only for websocket listeners)");
    expect_one("listeners = (\n"
               "  { name = \"u\"; type = \"uds\"; path = \"/tmp/x\";\n"
               "    ping_interval = 5; }\n"
               ");\n",
               3, "listeners[0].ping_interval", "only for websocket listeners");
    /* Keys of other types on a websocket listener. */
    expect_one(WS_HEAD "    login = \"u\"; }\n);\n", 3, "listeners[0].login",
               "not valid for a websocket listener (only for stomp listeners)");
    expect_one(WS_HEAD "    subscribe_topic_template = \"x/{eid}\"; }\n);\n", 3,
               "listeners[0].subscribe_topic_template", "only for mqtt listeners");
    expect_one(WS_HEAD "    path = \"/usp\"; }\n);\n", 3, "listeners[0].path",
               "not valid for a websocket listener (only for uds listeners)");
    expect_one(WS_HEAD "    ping_intervall = 5; }\n);\n", 3, "listeners[0].ping_intervall",
               "did you mean \"ping_interval\"");
}
END_TEST

START_TEST(err_ws_port_clash)
{
    expect_one("listeners = (\n"
               "  { name = \"s\"; type = \"stomp\"; address = \"127.0.0.1\"; port = 8080; },\n"
               "  { name = \"w\"; type = \"websocket\"; address = \"127.0.0.1\"; port = 8080; }\n"
               ");\n",
               3, "listeners[1].port", "127.0.0.1 port 8080 overlaps listeners[0]");
    expect_one("listeners = (\n"
               "  { name = \"w\"; type = \"websocket\"; address = \"::\"; port = 1883; },\n"
               "  { name = \"m\"; type = \"mqtt\"; address = \"::1\"; port = 1883; }\n"
               ");\n",
               3, "listeners[1].port", "overlaps listeners[0]");
    expect_one("listeners = (\n"
               "  { name = \"a\"; type = \"websocket\"; address = \"::1\"; port = 8080; },\n"
               "  { name = \"b\"; type = \"websocket\"; address = \"0:0::1\"; port = 8080; }\n"
               ");\n",
               3, "listeners[1].port", "overlaps listeners[0]");
    struct relay_config *cfg = load_ok(
        "listeners = (\n"
        "  { name = \"s\"; type = \"stomp\"; address = \"127.0.0.1\"; port = 8080; },\n"
        "  { name = \"w\"; type = \"websocket\"; address = \"127.0.0.2\"; port = 8080; },\n"
        "  { name = \"u\"; type = \"uds\"; path = \"/tmp/x\"; }\n"
        ");\n");
    ck_assert_uint_eq(cfg->n_listeners, 3);
    config_free(cfg);
}
END_TEST

/* ------------------------------------------------------------------ tls */

/* PEM files for the tls group, made once per test case (an unchecked fixture runs in
 * the parent, before the forked tests). */
static char t_dir[64], t_ca[128], t_cert[128], t_key[128], t_other[128], t_crl[128],
    t_junk[128];
static char g_text[8192];

static EVP_PKEY *t_keygen(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(k);
    return k;
}

static X509 *t_cert_new(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                        int is_ca)
{
    X509 *x = X509_new();
    ck_assert_ptr_nonnull(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), is_ca ? 1 : 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
    X509_set_pubkey(x, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x));
    X509V3_CTX v;
    X509V3_set_ctx(&v, issuer ? issuer : x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v, NID_basic_constraints,
                                            is_ca ? "critical,CA:TRUE" : "CA:FALSE");
    ck_assert_ptr_nonnull(e);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    ck_assert_int_gt(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()), 0);
    return x;
}

static FILE *t_open(const char *path)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    return f;
}

static void tls_files_setup(void)
{
    snprintf(t_dir, sizeof t_dir, "/tmp/usprelay-test-config-tls-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t_dir));
    snprintf(t_ca, sizeof t_ca, "%s/ca.pem", t_dir);
    snprintf(t_cert, sizeof t_cert, "%s/cert.pem", t_dir);
    snprintf(t_key, sizeof t_key, "%s/key.pem", t_dir);
    snprintf(t_other, sizeof t_other, "%s/other.pem", t_dir);
    snprintf(t_crl, sizeof t_crl, "%s/crl.pem", t_dir);
    snprintf(t_junk, sizeof t_junk, "%s/junk.pem", t_dir);

    EVP_PKEY *ca_key = t_keygen(), *key = t_keygen(), *other = t_keygen();
    X509 *ca = t_cert_new("Config Test CA", ca_key, NULL, NULL, 1);
    X509 *cert = t_cert_new("relay.example.com", key, ca, ca_key, 0);
    X509_CRL *crl = X509_CRL_new();
    ck_assert_ptr_nonnull(crl);
    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
    ASN1_TIME *t = X509_gmtime_adj(NULL, 0);
    X509_CRL_set1_lastUpdate(crl, t);
    X509_gmtime_adj(t, 86400);
    X509_CRL_set1_nextUpdate(crl, t);
    ASN1_TIME_free(t);
    ck_assert_int_gt(X509_CRL_sign(crl, ca_key, EVP_sha256()), 0);

    FILE *f = t_open(t_ca);
    PEM_write_X509(f, ca);
    fclose(f);
    f = t_open(t_cert);
    PEM_write_X509(f, cert);
    fclose(f);
    f = t_open(t_key);
    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    f = t_open(t_other);
    PEM_write_PrivateKey(f, other, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    f = t_open(t_crl);
    PEM_write_X509_CRL(f, crl);
    fclose(f);
    f = t_open(t_junk);
    fputs("no PEM here\n", f);
    fclose(f);
    X509_CRL_free(crl);
    X509_free(ca);
    X509_free(cert);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

static void tls_files_teardown(void)
{
    const char *const files[] = {t_ca, t_cert, t_key, t_other, t_crl, t_junk};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        unlink(files[i]);
    rmdir(t_dir);
}

/* TMPL with @CA@ @CERT@ @KEY@ @OTHER@ @CRL@ @JUNK@ @DIR@ replaced by the files' paths. */
static const char *tls_text(const char *tmpl)
{
    static const struct {
        const char *token;
        const char *path;
    } subs[] = {{"@CA@", t_ca},       {"@CERT@", t_cert}, {"@KEY@", t_key},
                {"@OTHER@", t_other}, {"@CRL@", t_crl},   {"@JUNK@", t_junk},
                {"@DIR@", t_dir}};
    size_t used = 0;
    for (const char *p = tmpl; *p;) {
        size_t k, n = sizeof subs / sizeof subs[0];
        for (k = 0; k < n; k++)
            if (strncmp(p, subs[k].token, strlen(subs[k].token)) == 0)
                break;
        const char *src = k < n ? subs[k].path : p;
        size_t len = k < n ? strlen(subs[k].path) : 1;
        ck_assert_uint_lt(used + len, sizeof g_text);
        memcpy(g_text + used, src, len);
        used += len;
        p += k < n ? strlen(subs[k].token) : 1;
    }
    g_text[used] = '\0';
    return g_text;
}

/* A stomp listener on line 2 whose tls group starts on line 3. */
#define TLS_HEAD                                                                          \
    "listeners = (\n  { name = \"s\"; type = \"stomp\"; address = \"::1\"; port = 61614;\n"
#define TLS_PAIR "certificate = \"@CERT@\"; key = \"@KEY@\";"

START_TEST(tls_explicit_values)
{
    struct relay_config *cfg = load_ok(tls_text(
        TLS_HEAD
        "    tls = { " TLS_PAIR " ca = \"@CA@\"; crl = \"@CRL@\";\n"
        "            client_certs = \"required\"; min_version = \"1.3\";\n"
        "            ciphers = \"ECDHE-ECDSA-AES128-GCM-SHA256\";\n"
        "            ciphersuites = \"TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256\";\n"
        "            groups = \"X25519:P-256\";\n"
        "            sni = ( { server_name = \"a.example.org\"; " TLS_PAIR " },\n"
        "                    { server_name = \"*.Example.net\"; " TLS_PAIR " } );\n"
        "            cn_map = ( { cn = \"legacy-7\"; endpoint_id = \"self::legacy7\"; } ); }; },\n"
        "  { name = \"m\"; type = \"mqtt\"; address = \"::1\"; port = 8883;\n"
        "    tls = { " TLS_PAIR " client_certs = \"optional\"; ca = \"@CA@\"; }; },\n"
        "  { name = \"w\"; type = \"websocket\"; address = \"::1\"; port = 443;\n"
        "    tls = { " TLS_PAIR " }; }\n"
        ");\n"));
    ck_assert_uint_eq(cfg->n_listeners, 3);
    const struct tls_cfg *t = &cfg->listeners[0].tls;
    ck_assert_str_eq(t->certificate, t_cert);
    ck_assert_str_eq(t->key, t_key);
    ck_assert_str_eq(t->ca, t_ca);
    ck_assert_str_eq(t->crl, t_crl);
    ck_assert_int_eq(t->client_certs, TLS_CLIENT_REQUIRED);
    ck_assert_int_eq(t->min_version, TLS1_3_VERSION);
    ck_assert_str_eq(t->ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256");
    ck_assert_str_eq(t->ciphersuites, "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256");
    ck_assert_str_eq(t->groups, "X25519:P-256");
    ck_assert_uint_eq(t->n_sni, 2);
    ck_assert_str_eq(t->sni[0].server_name, "a.example.org");
    ck_assert_str_eq(t->sni[0].certificate, t_cert);
    ck_assert_str_eq(t->sni[0].key, t_key);
    ck_assert_str_eq(t->sni[1].server_name, "*.Example.net");
    ck_assert_uint_eq(t->n_cn_map, 1);
    ck_assert_str_eq(t->cn_map[0].cn, "legacy-7");
    ck_assert_str_eq(t->cn_map[0].endpoint_id, "self::legacy7");

    t = &cfg->listeners[1].tls;
    ck_assert_str_eq(t->certificate, t_cert);
    ck_assert_int_eq(t->client_certs, TLS_CLIENT_OPTIONAL);
    ck_assert_str_eq(t->ca, t_ca);
    ck_assert_ptr_null(t->crl);

    /* Defaults of a tls group with only the certificate. */
    t = &cfg->listeners[2].tls;
    ck_assert_str_eq(t->certificate, t_cert);
    ck_assert_int_eq(t->client_certs, TLS_CLIENT_NONE);
    ck_assert_int_eq(t->min_version, TLS1_2_VERSION);
    ck_assert_ptr_null(t->ca);
    ck_assert_ptr_null(t->ciphers);
    ck_assert_ptr_null(t->ciphersuites);
    ck_assert_ptr_null(t->groups);
    ck_assert_uint_eq(t->n_sni, 0);
    ck_assert_ptr_null(t->sni);
    ck_assert_uint_eq(t->n_cn_map, 0);
    config_free(cfg);
}
END_TEST

START_TEST(tls_absent_is_plain)
{
    struct relay_config *cfg = load_ok("listeners = ( " STOMP_L ", " UDS_L " );\n");
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        const struct tls_cfg *t = &cfg->listeners[i].tls;
        ck_assert_ptr_null(t->certificate);
        ck_assert_ptr_null(t->key);
        ck_assert_int_eq(t->client_certs, TLS_CLIENT_NONE);
        ck_assert_int_eq(t->min_version, TLS1_2_VERSION);
    }
    config_free(cfg);
}
END_TEST

START_TEST(err_tls_group)
{
    expect_one(tls_text("listeners = (\n"
                        "  { name = \"u\"; type = \"uds\"; path = \"/tmp/x.sock\";\n"
                        "    tls = { " TLS_PAIR " }; }\n);\n"),
               3, "listeners[0].tls",
               "not valid for a uds listener (only for stomp, mqtt and websocket listeners)");
    expect_one(TLS_HEAD "    tls = \"on\"; }\n);\n", 3, "listeners[0].tls",
               "expected a group { ... }, found a string");
    expect_one(tls_text(TLS_HEAD "    tls = { " TLS_PAIR "\n      cipher = \"x\"; }; }\n);\n"),
               4, "listeners[0].tls.cipher", "unknown key (did you mean \"ciphers\"?)");

    /* Both files are required. */
    struct relay_config *cfg = (struct relay_config *)1;
    ck_assert_int_eq(load_text(TLS_HEAD "    tls = { }; }\n);\n", &cfg), 2);
    ck_assert_ptr_null(cfg);
    assert_error(3, "listeners[0].tls.certificate", "required: the certificate chain (PEM)");
    assert_error(3, "listeners[0].tls.key", "required: the private key (PEM)");
    expect_one(tls_text(TLS_HEAD "    tls = { certificate = \"@CERT@\"; }; }\n);\n"), 3,
               "listeners[0].tls.key", "required");
    expect_one(tls_text(TLS_HEAD "    tls = { key = \"@KEY@\"; }; }\n);\n"), 3,
               "listeners[0].tls.certificate", "required");
}
END_TEST

START_TEST(err_tls_files)
{
    expect_one(tls_text(TLS_HEAD "    tls = { key = \"@KEY@\";\n"
                                 "      certificate = \"@DIR@/missing.pem\"; }; }\n);\n"),
               4, "listeners[0].tls.certificate", "/missing.pem\": No such file or directory");
    expect_one(tls_text(TLS_HEAD "    tls = { key = \"@KEY@\";\n"
                                 "      certificate = \"@DIR@\"; }; }\n);\n"),
               4, "listeners[0].tls.certificate", "is not a regular file");
    expect_one(tls_text(TLS_HEAD "    tls = { key = \"@KEY@\";\n"
                                 "      certificate = \"\"; }; }\n);\n"),
               4, "listeners[0].tls.certificate", "must not be empty");
    expect_one(tls_text(TLS_HEAD "    tls = { key = \"@KEY@\";\n"
                                 "      certificate = \"@JUNK@\"; }; }\n);\n"),
               4, "listeners[0].tls.certificate", "cannot load the certificate chain");
    expect_one(tls_text(TLS_HEAD "    tls = { certificate = \"@CERT@\";\n"
                                 "      key = \"@OTHER@\"; }; }\n);\n"),
               4, "listeners[0].tls.key", "does not belong to the certificate");
    expect_one(tls_text(TLS_HEAD "    tls = { certificate = \"@CERT@\";\n"
                                 "      key = \"@CERT@\"; }; }\n);\n"),
               4, "listeners[0].tls.key", "cannot load the private key");
    expect_one(tls_text(TLS_HEAD "    tls = { " TLS_PAIR " client_certs = \"optional\";\n"
                                 "      ca = \"@DIR@/nope.pem\"; }; }\n);\n"),
               4, "listeners[0].tls.ca", "No such file or directory");
    expect_one(tls_text(TLS_HEAD "    tls = { " TLS_PAIR " client_certs = \"optional\";\n"
                                 "      ca = \"@JUNK@\"; }; }\n);\n"),
               4, "listeners[0].tls.ca", "holds no PEM certificate");
    expect_one(tls_text(TLS_HEAD "    tls = { " TLS_PAIR " client_certs = \"optional\";\n"
                                 "      ca = \"@CA@\";\n"
                                 "      crl = \"@CA@\"; }; }\n);\n"),
               5, "listeners[0].tls.crl", "holds no PEM CRL");
}
END_TEST

START_TEST(err_tls_client_certs)
{
    expect_one(tls_text(TLS_HEAD "    tls = { " TLS_PAIR "\n"
                                 "      client_certs = \"required\"; }; }\n);\n"),
               4, "listeners[0].tls.ca", "required when client_certs is \"required\"");
    expect_one(tls_text(TLS_HEAD "    tls = { " TLS_PAIR "\n"
                                 "      client_certs = \"maybe\"; }; }\n);\n"),
               4, "listeners[0].tls.client_certs",
               "\"maybe\" is not one of: none, optional, required");
    expect_one(tls_text(TLS_HEAD "    tls = { " TLS_PAIR "\n"
                                 "      ca = \"@CA@\"; }; }\n);\n"),
               4, "listeners[0].tls.ca", "client_certs is \"none\"");
    expect_one(tls_text(TLS_HEAD "    tls = { " TLS_PAIR "\n"
                                 "      crl = \"@CRL@\"; }; }\n);\n"),
               4, "listeners[0].tls.crl", "needs ca");
}
END_TEST

START_TEST(err_tls_versions_and_lists)
{
    expect_one(tls_text(TLS_HEAD "    tls = { " TLS_PAIR "\n"
                                 "      min_version = \"1.1\"; }; }\n);\n"),
               4, "listeners[0].tls.min_version", "\"1.1\" is not one of: 1.2, 1.3");
    expect_one(tls_text(TLS_HEAD "    tls = { " TLS_PAIR "\n"
                                 "      min_version = 1.3; }; }\n);\n"),
               4, "listeners[0].tls.min_version", "expected a string, found a float");
    expect_one(tls_text(TLS_HEAD "    tls = { " TLS_PAIR "\n"
                                 "      ciphers = \"NOPE:ALSO-NOPE\"; }; }\n);\n"),
               4, "listeners[0].tls.ciphers", "\"NOPE:ALSO-NOPE\" selects no TLS 1.2 cipher");
    expect_one(tls_text(TLS_HEAD "    tls = { " TLS_PAIR "\n"
                                 "      ciphersuites = \"TLS_AES_128_GCM_SHA256:TLS_X\"; }; }\n"
                                 ");\n"),
               4, "listeners[0].tls.ciphersuites", "unknown TLS 1.3 ciphersuite \"TLS_X\"");
    expect_one(tls_text(TLS_HEAD "    tls = { " TLS_PAIR "\n"
                                 "      groups = \"X25519:P-999\"; }; }\n);\n"),
               4, "listeners[0].tls.groups", "\"X25519:P-999\" names a group");
    expect_one(tls_text(TLS_HEAD "    tls = { " TLS_PAIR "\n"
                                 "      ciphersuites = \"\"; }; }\n);\n"),
               4, "listeners[0].tls.ciphersuites", "must not be empty");
    expect_one(tls_text(TLS_HEAD "    tls = { " TLS_PAIR "\n"
                                 "      groups = 25519; }; }\n);\n"),
               4, "listeners[0].tls.groups", "expected a string, found an integer");
}
END_TEST

START_TEST(err_tls_sni)
{
    expect_one(tls_text(TLS_HEAD "    tls = { " TLS_PAIR "\n"
                                 "      sni = \"a.example.org\"; }; }\n);\n"),
               4, "listeners[0].tls.sni", "expected a list ( { server_name = ");
    expect_one(tls_text(TLS_HEAD "    tls = { " TLS_PAIR " sni = (\n"
                                 "      \"a.example.org\" ); }; }\n);\n"),
               4, "listeners[0].tls.sni[0]", "expected a group");
    expect_one(tls_text(TLS_HEAD "    tls = { " TLS_PAIR " sni = (\n"
                                 "      { " TLS_PAIR " } ); }; }\n);\n"),
               4, "listeners[0].tls.sni[0].server_name", "required");
    expect_one(tls_text(TLS_HEAD "    tls = { " TLS_PAIR " sni = ( { " TLS_PAIR "\n"
                                 "      server_name = \"a_b.example\"; } ); }; }\n);\n"),
               4, "listeners[0].tls.sni[0].server_name", "\"a_b.example\" is not a host name");
    expect_one(tls_text(TLS_HEAD "    tls = { " TLS_PAIR " sni = ( { " TLS_PAIR "\n"
                                 "      server_name = \"*.com\"; } ); }; }\n);\n"),
               4, "listeners[0].tls.sni[0].server_name", "is not a host name");
    expect_one(tls_text(TLS_HEAD "    tls = { " TLS_PAIR " sni = (\n"
                                 "      { server_name = \"a.example.org\"; " TLS_PAIR " },\n"
                                 "      { server_name = \"A.Example.ORG\"; " TLS_PAIR " } );\n"
                                 "    }; }\n);\n"),
               5, "listeners[0].tls.sni[1].server_name",
               "duplicate server name \"A.Example.ORG\" (also listeners[0].tls.sni[0])");
    expect_one(tls_text(TLS_HEAD "    tls = { " TLS_PAIR " sni = (\n"
                                 "      { server_name = \"a.example.org\";\n"
                                 "        certificate = \"@CERT@\"; } ); }; }\n);\n"),
               4, "listeners[0].tls.sni[0].key", "required");
    expect_one(tls_text(TLS_HEAD "    tls = { " TLS_PAIR " sni = (\n"
                                 "      { server_name = \"a.example.org\";\n"
                                 "        certificate = \"@CERT@\"; key = \"@OTHER@\"; } );\n"
                                 "    }; }\n);\n"),
               5, "listeners[0].tls.sni[0].key", "does not belong");
    expect_one(tls_text(TLS_HEAD "    tls = { " TLS_PAIR " sni = (\n"
                                 "      { server_name = \"a.example.org\"; " TLS_PAIR "\n"
                                 "        servername = \"b\"; } ); }; }\n);\n"),
               5, "listeners[0].tls.sni[0].servername",
               "unknown key (did you mean \"server_name\"?)");
}
END_TEST

START_TEST(err_tls_cn_map)
{
#define CN_HEAD TLS_HEAD "    tls = { " TLS_PAIR " client_certs = \"optional\"; ca = \"@CA@\";\n"
    expect_one(tls_text(TLS_HEAD "    tls = { " TLS_PAIR "\n"
                                 "      cn_map = ( { cn = \"x\"; endpoint_id = \"self::x\"; } );"
                                 " }; }\n);\n"),
               4, "listeners[0].tls.cn_map", "client_certs is \"none\"");
    expect_one(tls_text(CN_HEAD "      cn_map = ( { endpoint_id = \"self::x\"; } ); }; }\n);\n"),
               4, "listeners[0].tls.cn_map[0].cn", "required");
    expect_one(tls_text(CN_HEAD "      cn_map = ( { cn = \"\"; endpoint_id = \"self::x\"; } );"
                                " }; }\n);\n"),
               4, "listeners[0].tls.cn_map[0].cn", "must not be empty");
    expect_one(tls_text(CN_HEAD "      cn_map = ( { cn = \"x\"; endpoint_id = \"self::x\"; },\n"
                                "                 { cn = \"x\"; endpoint_id = \"self::y\"; } );"
                                " }; }\n);\n"),
               5, "listeners[0].tls.cn_map[1].cn",
               "duplicate cn \"x\" (also listeners[0].tls.cn_map[0])");
    expect_one(tls_text(CN_HEAD "      cn_map = ( { cn = \"x\"; endpoint_id = \"nope\"; } );"
                                " }; }\n);\n"),
               4, "listeners[0].tls.cn_map[0].endpoint_id", "is not a valid endpoint ID");
    expect_one(tls_text(CN_HEAD "      cn_map = ( { cn = \"x\"; } ); }; }\n);\n"), 4,
               "listeners[0].tls.cn_map[0].endpoint_id", "required");
    expect_one(tls_text(CN_HEAD "      cn_map = ( { cn = \"x\"; endpoint_id = \"self::x\";"
                                " eid = 1; } ); }; }\n);\n"),
               4, "listeners[0].tls.cn_map[0].eid", "unknown key");
    expect_one(tls_text(CN_HEAD "      cn_map = { cn = \"x\"; }; }; }\n);\n"), 4,
               "listeners[0].tls.cn_map", "expected a list ( { cn = ");
#undef CN_HEAD
}
END_TEST

static TCase *tls_tcase(void)
{
    TCase *tc = tcase_create("tls");
    tcase_add_unchecked_fixture(tc, tls_files_setup, tls_files_teardown);
    tcase_add_test(tc, tls_explicit_values);
    tcase_add_test(tc, tls_absent_is_plain);
    tcase_add_test(tc, err_tls_group);
    tcase_add_test(tc, err_tls_files);
    tcase_add_test(tc, err_tls_client_certs);
    tcase_add_test(tc, err_tls_versions_and_lists);
    tcase_add_test(tc, err_tls_sni);
    tcase_add_test(tc, err_tls_cn_map);
    return tc;
}

/* ------------------------------------------------------------------ connection limits */

START_TEST(conn_limits_default_off)
{
    struct relay_config *cfg = load_ok("listeners = ( " STOMP_L ", " UDS_L " );\n");
    ck_assert_uint_eq(cfg->limits.max_connections_per_source, 0);
    ck_assert_uint_eq(cfg->limits.accept_rate, 0);
    ck_assert_uint_eq(cfg->limits.accept_burst, 0);
    for (size_t i = 0; i < cfg->n_listeners; i++)
        ck_assert_mem_eq(&cfg->listeners[i].limits, &cfg->limits, sizeof cfg->limits);
    config_free(cfg);
}
END_TEST

START_TEST(conn_limits_override_and_inherit)
{
    struct relay_config *cfg = load_ok(
        "limits = { max_connections_per_source = 4; accept_rate = 10; };\n"
        "listeners = (\n"
        "  { name = \"a\"; type = \"stomp\"; address = \"127.0.0.1\"; port = 1000;\n"
        "    limits = { max_connections_per_source = 0; accept_rate = 100;\n"
        "               accept_burst = 500; }; },\n"
        "  { name = \"b\"; type = \"mqtt\"; address = \"127.0.0.1\"; port = 1001;\n"
        "    limits = { accept_burst = 1000000; }; },\n"
        "  { name = \"c\"; type = \"stomp\"; address = \"127.0.0.1\"; port = 1002;\n"
        "    limits = { max_connections_per_source = 10000000; accept_rate = 0; }; },\n"
        "  { name = \"d\"; type = \"websocket\"; address = \"127.0.0.1\"; port = 1003;\n"
        "    paths = [ \"/usp\" ]; }\n"
        ");\n");
    ck_assert_uint_eq(cfg->limits.max_connections_per_source, 4);
    ck_assert_uint_eq(cfg->limits.accept_rate, 10);
    ck_assert_uint_eq(cfg->limits.accept_burst, 0); /* 0: as many as accept_rate */
    const struct limits_cfg *a = &cfg->listeners[0].limits;
    ck_assert_uint_eq(a->max_connections_per_source, 0);
    ck_assert_uint_eq(a->accept_rate, 100);
    ck_assert_uint_eq(a->accept_burst, 500);
    ck_assert_uint_eq(a->max_record_size, 5242880); /* the rest inherited */
    const struct limits_cfg *b = &cfg->listeners[1].limits;
    ck_assert_uint_eq(b->max_connections_per_source, 4);
    ck_assert_uint_eq(b->accept_rate, 10);
    ck_assert_uint_eq(b->accept_burst, 1000000);
    const struct limits_cfg *c = &cfg->listeners[2].limits;
    ck_assert_uint_eq(c->max_connections_per_source, 10000000);
    ck_assert_uint_eq(c->accept_rate, 0);
    ck_assert_mem_eq(&cfg->listeners[3].limits, &cfg->limits, sizeof cfg->limits);
    config_free(cfg);
}
END_TEST

START_TEST(err_conn_limits)
{
    expect_one("limits = { max_connections_per_source = -1; };\nlisteners = ( " STOMP_L " );\n",
               1, "limits.max_connections_per_source", "-1 is out of range (0..10000000)");
    expect_one("limits = { max_connections_per_source = 10000001; };\n"
               "listeners = ( " STOMP_L " );\n",
               1, "limits.max_connections_per_source", "out of range");
    expect_one("limits = { accept_rate = 1000001; };\nlisteners = ( " STOMP_L " );\n", 1,
               "limits.accept_rate", "1000001 is out of range (0..1000000)");
    expect_one("limits = { accept_burst = -5; };\nlisteners = ( " STOMP_L " );\n", 1,
               "limits.accept_burst", "out of range (0..1000000)");
    expect_one("limits = { accept_rate = \"10\"; };\nlisteners = ( " STOMP_L " );\n", 1,
               "limits.accept_rate", NULL);
    expect_one("listeners = (\n"
               "  { name = \"s\"; type = \"stomp\"; address = \"127.0.0.1\"; port = 1;\n"
               "    limits = { accept_burst = 2000000; }; } );\n",
               3, "listeners[0].limits.accept_burst", "out of range");
    expect_one("listeners = (\n"
               "  { name = \"s\"; type = \"stomp\"; address = \"127.0.0.1\"; port = 1;\n"
               "    limits = { accept_rates = 2; }; } );\n",
               3, "listeners[0].limits.accept_rates", "did you mean \"accept_rate\"");
}
END_TEST

static TCase *conn_limits_tcase(void)
{
    TCase *tc = tcase_create("conn_limits");
    tcase_add_test(tc, conn_limits_default_off);
    tcase_add_test(tc, conn_limits_override_and_inherit);
    tcase_add_test(tc, err_conn_limits);
    return tc;
}

/* ------------------------------------------------------------------ policy group */

#define POLICY_LISTENERS "listeners = ( " STOMP_L " );\n"

START_TEST(policy_absent_allows_all)
{
    struct relay_config *cfg = load_ok(POLICY_LISTENERS);
    ck_assert_int_eq(cfg->policy.default_allow, 1);
    ck_assert_uint_eq(cfg->policy.n_rules, 0);
    ck_assert_uint_eq(cfg->policy.n_controllers, 0);
    ck_assert_int_eq(cfg->policy.agents_only_to_controllers, 0);
    config_free(cfg);
    cfg = load_ok("policy = { };\n" POLICY_LISTENERS);
    ck_assert_int_eq(cfg->policy.default_allow, 1);
    ck_assert_uint_eq(cfg->policy.n_rules, 0);
    config_free(cfg);
}
END_TEST

static void assert_pattern(const struct policy_pattern *p, enum policy_match m,
                           const char *text)
{
    ck_assert_int_eq(p->match, m);
    if (!text) {
        ck_assert_ptr_null(p->text);
        return;
    }
    ck_assert_str_eq(p->text, text);
    ck_assert_uint_eq(p->len, strlen(text));
}

START_TEST(policy_full_example)
{
    struct relay_config *cfg = load_ok(
        "policy = {\n"
        "  default = \"deny\";\n"
        "  controllers = [ \"self::usp-controller\", \"oui:00256D:ctrl-*\" ];\n"
        "  agents_only_to_controllers = true;\n"
        "  rules = (\n"
        "    { action = \"deny\";  from = [ \"os::*\" ]; to = [ \"os::*\" ]; },\n"
        "    { action = \"allow\"; from = [ \"self::usp-controller\" ];\n"
        "      to = ( \"os::00256D-*\", \"*\", \"os::00256D-0001\" ); }\n"
        "  );\n"
        "};\n" POLICY_LISTENERS);
    const struct policy_cfg *p = &cfg->policy;
    ck_assert_int_eq(p->default_allow, 0);
    ck_assert_int_eq(p->agents_only_to_controllers, 1);
    ck_assert_uint_eq(p->n_controllers, 2);
    assert_pattern(&p->controllers[0], POLICY_EXACT, "self::usp-controller");
    assert_pattern(&p->controllers[1], POLICY_PREFIX, "oui:00256D:ctrl-");
    ck_assert_uint_eq(p->n_rules, 2);
    ck_assert_int_eq(p->rules[0].allow, 0);
    ck_assert_int_eq(p->rules[0].line, 6);
    ck_assert_uint_eq(p->rules[0].n_from, 1);
    assert_pattern(&p->rules[0].from[0], POLICY_PREFIX, "os::");
    ck_assert_uint_eq(p->rules[0].n_to, 1);
    assert_pattern(&p->rules[0].to[0], POLICY_PREFIX, "os::");
    ck_assert_int_eq(p->rules[1].allow, 1);
    ck_assert_int_eq(p->rules[1].line, 7);
    ck_assert_uint_eq(p->rules[1].n_from, 1);
    assert_pattern(&p->rules[1].from[0], POLICY_EXACT, "self::usp-controller");
    ck_assert_uint_eq(p->rules[1].n_to, 3);
    assert_pattern(&p->rules[1].to[0], POLICY_PREFIX, "os::00256D-");
    assert_pattern(&p->rules[1].to[1], POLICY_ANY, NULL);
    assert_pattern(&p->rules[1].to[2], POLICY_EXACT, "os::00256D-0001");
    config_free(cfg);
}
END_TEST

/* Patterns every scheme rule allows, at the bounds: a prefix as long as the maximum ID,
 * one cut inside a %HH escape, scheme-only and partial-authority prefixes. */
START_TEST(policy_pattern_bounds_ok)
{
    struct relay_config *cfg = load_ok(
        "relay = { max_endpoint_id_length = 32; };\n"
        "policy = { controllers = [ \"self::01234567890123456789012345*\", \"os::a%4*\",\n"
        "  \"oui*\", \"oui:0025*\", \"x-1:*\", \"self::a%41\" ]; };\n" POLICY_LISTENERS);
    ck_assert_uint_eq(cfg->policy.n_controllers, 6);
    ck_assert_uint_eq(cfg->policy.controllers[0].len, 32);
    assert_pattern(&cfg->policy.controllers[1], POLICY_PREFIX, "os::a%4");
    assert_pattern(&cfg->policy.controllers[2], POLICY_PREFIX, "oui");
    assert_pattern(&cfg->policy.controllers[5], POLICY_EXACT, "self::a%41");
    config_free(cfg);
}
END_TEST

/* One bad controllers entry: the error is at line 2, policy.controllers[1]. */
static void expect_bad_controller(const char *pattern, const char *frag)
{
    char text[512];
    snprintf(text, sizeof text,
             "policy = {\n  controllers = [ \"self::ok\", \"%s\" ];\n};\n" POLICY_LISTENERS,
             pattern);
    expect_one(text, 2, "policy.controllers[1]", frag);
}

START_TEST(err_policy_patterns)
{
    expect_bad_controller("self::a:b", "\"self::a:b\" is not a valid endpoint ID (shape); "
                                       "end it with '*'");
    expect_bad_controller("oui:12:x", "is not a valid endpoint ID (authority)");
    expect_bad_controller("", "is not a valid endpoint ID (empty)");
    expect_bad_controller("os::*x", "'*' may only end a pattern");
    expect_bad_controller("**", "'*' may only end a pattern");
    expect_bad_controller("os::a b*", "may contain only characters of endpoint IDs");
    expect_bad_controller("a:b:c:*", "more than two ':'");
    expect_bad_controller(":x*", "empty authority-scheme");
    expect_bad_controller("OS::*", "authority-scheme may contain only a-z 0-9 and '-'");
    expect_bad_controller("oui:0025:*", "does not start a valid endpoint ID (authority)");
    expect_bad_controller("os:x:*", "does not start a valid endpoint ID (authority)");
    expect_bad_controller("os::a%zz*", "'%' not followed by two hex digits");
    expect_bad_controller("os::a%4z*", "'%' not followed by two hex digits");
    expect_one("relay = { max_endpoint_id_length = 32; };\n"
               "policy = { controllers = [ \"self::012345678901234567890123456*\" ]; };\n"
               POLICY_LISTENERS,
               2, "policy.controllers[0]", "longer than relay.max_endpoint_id_length");
    expect_one("relay = { max_endpoint_id_length = 32; };\n"
               "policy = { controllers = [ \"self::012345678901234567890123456\" ]; };\n"
               POLICY_LISTENERS,
               2, "policy.controllers[0]", "(too_long)");
    expect_one("policy = {\n  controllers = ( \"self::a\", 7 );\n};\n" POLICY_LISTENERS, 2,
               "policy.controllers[1]", "expected a string, found an integer");
    expect_one("policy = {\n  controllers = [ \"self::a\\x00b\" ];\n};\n" POLICY_LISTENERS, 2,
               "policy.controllers", "\\x00");
}
END_TEST

START_TEST(err_policy_group)
{
    expect_one("policy = [ \"os::*\" ];\n" POLICY_LISTENERS, 1, "policy",
               "expected a group { ... }, found an array");
    expect_one("policy = {\n  defualt = \"deny\";\n};\n" POLICY_LISTENERS, 2, "policy.defualt",
               "unknown key (did you mean \"default\"?)");
    expect_one("policy = {\n  default = \"reject\";\n};\n" POLICY_LISTENERS, 2,
               "policy.default", "\"reject\" is not one of: deny, allow");
    expect_one("policy = {\n  default = true;\n};\n" POLICY_LISTENERS, 2, "policy.default",
               "expected a string");
    expect_one("policy = {\n  controllers = \"self::a\";\n};\n" POLICY_LISTENERS, 2,
               "policy.controllers", "expected a list of endpoint ID patterns");
    expect_one("policy = {\n  agents_only_to_controllers = 1;\n};\n" POLICY_LISTENERS, 2,
               "policy.agents_only_to_controllers", "expected true or false");
    expect_one("policy = {\n  agents_only_to_controllers = true;\n};\n" POLICY_LISTENERS, 2,
               "policy.agents_only_to_controllers", "true needs the controllers declared");
    expect_one("policy = {\n  controllers = [ ];\n  agents_only_to_controllers = true;\n};\n"
               POLICY_LISTENERS, 3, "policy.agents_only_to_controllers", "with none");
    /* A bad controllers list is reported once, not again as "no controllers". */
    expect_one("policy = {\n  controllers = [ \"bad\" ];\n  agents_only_to_controllers = "
               "true;\n};\n" POLICY_LISTENERS, 2, "policy.controllers[0]", "shape");
    /* false needs nothing. */
    struct relay_config *cfg =
        load_ok("policy = { agents_only_to_controllers = false; };\n" POLICY_LISTENERS);
    ck_assert_int_eq(cfg->policy.agents_only_to_controllers, 0);
    config_free(cfg);
}
END_TEST

START_TEST(err_policy_rules)
{
    expect_one("policy = {\n  rules = { action = \"deny\"; };\n};\n" POLICY_LISTENERS, 2,
               "policy.rules", "expected a list ( { action = ");
    expect_one("policy = {\n  rules = ( { action = \"deny\"; from = [ \"*\" ]; to = [ \"*\" ]; "
               "},\n    \"deny\" );\n};\n" POLICY_LISTENERS,
               3, "policy.rules[1]", "expected a group { action = ");
    expect_one("policy = { rules = (\n  { action = \"permit\"; from = [ \"*\" ]; to = [ \"*\" "
               "]; } ); };\n" POLICY_LISTENERS,
               2, "policy.rules[0].action", "\"permit\" is not one of: deny, allow");
    expect_one("policy = { rules = (\n  { action = \"deny\"; from = [ ]; to = [ \"*\" ]; } ); "
               "};\n" POLICY_LISTENERS,
               2, "policy.rules[0].from", "must list at least one pattern");
    expect_one("policy = { rules = (\n  { action = \"deny\"; from = [ \"*\" ];\n"
               "    to = [ \"os::*\", \"os::a b\" ]; } ); };\n" POLICY_LISTENERS,
               3, "policy.rules[0].to[1]", "is not a valid endpoint ID");
    expect_one("policy = { rules = (\n  { action = \"deny\"; from = \"*\"; to = [ \"*\" ]; } ); "
               "};\n" POLICY_LISTENERS,
               2, "policy.rules[0].from", "found a string");

    /* Everything a rule needs, missing; and a misspelt key. */
    struct relay_config *cfg = (struct relay_config *)1;
    ck_assert_int_eq(load_text("policy = { rules = (\n  { action = \"deny\"; from = [ \"*\" ]; "
                               "to = [ \"*\" ]; },\n  { },\n"
                               "  { action = \"allow\"; from = [ \"*\" ]; too = [ \"*\" ]; }\n"
                               "); };\n" POLICY_LISTENERS,
                               &cfg),
                     5);
    ck_assert_ptr_null(cfg);
    assert_error(3, "policy.rules[1].action", "required: \"allow\" or \"deny\"");
    assert_error(3, "policy.rules[1].from", "required: a list of endpoint ID patterns");
    assert_error(3, "policy.rules[1].to", "required");
    assert_error(4, "policy.rules[2].too", "unknown key (did you mean \"to\"?)");
    assert_error(4, "policy.rules[2].to", "required");
}
END_TEST

/* A list of N copies of ITEM, separated by ", ", into a fresh string (free it). */
static char *repeat(const char *item, int n)
{
    size_t il = strlen(item);
    char *s = malloc((size_t)n * (il + 2) + 1);
    ck_assert_ptr_nonnull(s);
    char *w = s;
    for (int i = 0; i < n; i++) {
        if (i) {
            memcpy(w, ", ", 2);
            w += 2;
        }
        memcpy(w, item, il);
        w += il;
    }
    *w = '\0';
    return s;
}

START_TEST(policy_bounds)
{
    const char *rule = "{ action = \"deny\"; from = [ \"os::*\" ]; to = [ \"*\" ]; }";
    for (int n = 1024; n <= 1025; n++) {
        char *pats = repeat("\"os::*\"", n == 1024 ? 256 : 257);
        char *rules = repeat(rule, n);
        size_t cap = strlen(pats) + strlen(rules) + 256;
        char *text = malloc(cap);
        ck_assert_ptr_nonnull(text);
        snprintf(text, cap, "policy = {\n  controllers = [ %s ];\n  rules = ( %s );\n};\n"
                            POLICY_LISTENERS, pats, rules);
        if (n == 1024) {
            struct relay_config *cfg = load_ok(text);
            ck_assert_uint_eq(cfg->policy.n_controllers, 256);
            ck_assert_uint_eq(cfg->policy.n_rules, 1024);
            config_free(cfg);
        } else {
            struct relay_config *cfg = (struct relay_config *)1;
            ck_assert_int_eq(load_text(text, &cfg), 2);
            assert_error(2, "policy.controllers", "257 patterns, at most 256 are allowed");
            assert_error(3, "policy.rules", "1025 rules, at most 1024 are allowed");
        }
        free(text);
        free(rules);
        free(pats);
    }
}
END_TEST

START_TEST(err_policy_unknown_top_level)
{
    expect_one(POLICY_LISTENERS "polcy = { };\n", 2, "polcy",
               "unknown key (did you mean \"policy\"?)");
}
END_TEST

static TCase *policy_tcase(void)
{
    TCase *tc = tcase_create("policy");
    tcase_add_test(tc, policy_absent_allows_all);
    tcase_add_test(tc, policy_full_example);
    tcase_add_test(tc, policy_pattern_bounds_ok);
    tcase_add_test(tc, err_policy_patterns);
    tcase_add_test(tc, err_policy_group);
    tcase_add_test(tc, err_policy_rules);
    tcase_add_test(tc, policy_bounds);
    tcase_add_test(tc, err_policy_unknown_top_level);
    return tc;
}

/* ------------------------------------------------------------------ cache group */

#define CACHE_LISTENERS "listeners = ( " STOMP_L " );\n"

static void assert_cache(const struct cache_cfg *cc, int enabled, uint32_t ttl_ms,
                         uint32_t per_records, uint64_t per_bytes, uint64_t records,
                         uint64_t bytes)
{
    ck_assert_int_eq(cc->enabled, enabled);
    ck_assert_uint_eq(cc->ttl_ms, ttl_ms);
    ck_assert_uint_eq(cc->max_records_per_endpoint, per_records);
    ck_assert_uint_eq(cc->max_bytes_per_endpoint, per_bytes);
    ck_assert_uint_eq(cc->max_records, records);
    ck_assert_uint_eq(cc->max_bytes, bytes);
}

START_TEST(cache_defaults)
{
    /* No group, and an empty one: the same defaults, no exclude list. */
    const char *texts[] = {CACHE_LISTENERS, "cache = { };\n" CACHE_LISTENERS};
    for (size_t i = 0; i < 2; i++) {
        struct relay_config *cfg = load_ok(texts[i]);
        assert_cache(&cfg->cache, 1, 3600000, 1000, 16777216, 1000000, 268435456);
        ck_assert_ptr_null(cfg->cache.exclude);
        ck_assert_uint_eq(cfg->cache.n_exclude, 0);
        config_free(cfg);
    }
}
END_TEST

/* A bound left out grows to hold the bounds it must hold, so raising limits.max_record_size
 * or a per-endpoint bound alone keeps a file valid. */
START_TEST(cache_defaults_follow_set_bounds)
{
    struct relay_config *cfg = load_ok(
        "limits = { max_record_size = 33554432; max_output_queue = 33554432; };\n"
        CACHE_LISTENERS);
    assert_cache(&cfg->cache, 1, 3600000, 1000, 33554432, 1000000, 268435456);
    config_free(cfg);
    cfg = load_ok("limits = { max_record_size = 268435455; max_output_queue = 268435455; };\n"
                  "cache = { enabled = true; };\n" CACHE_LISTENERS);
    assert_cache(&cfg->cache, 1, 3600000, 1000, 268435455, 1000000, 268435456);
    config_free(cfg);
    cfg = load_ok("cache = { max_records_per_endpoint = 2000000;\n"
                  "  max_bytes_per_endpoint = 536870912; };\n" CACHE_LISTENERS);
    assert_cache(&cfg->cache, 1, 3600000, 2000000, 536870912, 2000000, 536870912);
    config_free(cfg);
    /* Set bounds are kept as set, even when larger than needed. */
    cfg = load_ok("cache = { max_records_per_endpoint = 5; max_records = 5;\n"
                  "  max_bytes_per_endpoint = 5242880; max_bytes = 5242880; };\n"
                  CACHE_LISTENERS);
    assert_cache(&cfg->cache, 1, 3600000, 5, 5242880, 5, 5242880);
    config_free(cfg);
}
END_TEST

START_TEST(cache_explicit_values)
{
    struct relay_config *cfg = load_ok(
        "cache = {\n"
        "  enabled = false;\n"
        "  ttl = 0.5;\n"
        "  max_records_per_endpoint = 10;\n"
        "  max_bytes_per_endpoint = 6000000;\n"
        "  max_records = 20;\n"
        "  max_bytes = 8589934592L;\n"
        "  exclude = [ \"self::usp-controller\", \"os::00256D-*\", \"*\" ];\n"
        "};\n" CACHE_LISTENERS);
    const struct cache_cfg *cc = &cfg->cache;
    assert_cache(cc, 0, 500, 10, 6000000, 20, 8589934592ull);
    ck_assert_uint_eq(cc->n_exclude, 3);
    assert_pattern(&cc->exclude[0], POLICY_EXACT, "self::usp-controller");
    assert_pattern(&cc->exclude[1], POLICY_PREFIX, "os::00256D-");
    assert_pattern(&cc->exclude[2], POLICY_ANY, NULL);
    config_free(cfg);

    /* The ends of every range, ttl as an integer; exclude as a list, or empty. */
    cfg = load_ok("cache = { ttl = 2592000; max_records_per_endpoint = 10000000;\n"
                  "  max_records = 1000000000; max_bytes_per_endpoint = 1099511627776L;\n"
                  "  max_bytes = 1099511627776L; exclude = ( \"oui:00256D:*\" ); };\n"
                  CACHE_LISTENERS);
    assert_cache(&cfg->cache, 1, 2592000000u, 10000000, 1099511627776ull, 1000000000,
                 1099511627776ull);
    ck_assert_uint_eq(cfg->cache.n_exclude, 1);
    assert_pattern(&cfg->cache.exclude[0], POLICY_PREFIX, "oui:00256D:");
    config_free(cfg);
    cfg = load_ok("limits = { max_record_size = 64; max_output_queue = 64; };\n"
                  "cache = { ttl = 0.1; max_records_per_endpoint = 1; max_records = 1;\n"
                  "  max_bytes_per_endpoint = 64; max_bytes = 64; exclude = [ ]; };\n"
                  CACHE_LISTENERS);
    assert_cache(&cfg->cache, 1, 100, 1, 64, 1, 64);
    ck_assert_uint_eq(cfg->cache.n_exclude, 0);
    config_free(cfg);
}
END_TEST

/* One bad cache key on line 2. */
static void expect_bad_cache(const char *setting, const char *key, const char *frag)
{
    char text[512];
    snprintf(text, sizeof text, "cache = {\n  %s\n};\n" CACHE_LISTENERS, setting);
    expect_one(text, 2, key, frag);
}

START_TEST(err_cache_ranges)
{
    expect_bad_cache("enabled = 1;", "cache.enabled", "expected true or false");
    expect_bad_cache("ttl = 0.09;", "cache.ttl", "0.09 seconds is out of range (0.1..");
    expect_bad_cache("ttl = 2592001;", "cache.ttl", "2.592e+06 seconds is out of range");
    expect_bad_cache("ttl = 0;", "cache.ttl", "out of range");
    expect_bad_cache("ttl = \"1h\";", "cache.ttl", "expected a number of seconds");
    expect_bad_cache("max_records_per_endpoint = 0;", "cache.max_records_per_endpoint",
                     "0 is out of range (1..10000000)");
    expect_bad_cache("max_records_per_endpoint = 10000001;",
                     "cache.max_records_per_endpoint", "out of range (1..10000000)");
    expect_bad_cache("max_records = 0;", "cache.max_records", "out of range (1..1000000000)");
    expect_bad_cache("max_records = 1000000001;", "cache.max_records",
                     "out of range (1..1000000000)");
    expect_bad_cache("max_bytes_per_endpoint = 63;", "cache.max_bytes_per_endpoint",
                     "63 is out of range (64..1099511627776)");
    expect_bad_cache("max_bytes_per_endpoint = 1099511627777L;",
                     "cache.max_bytes_per_endpoint", "out of range (64..1099511627776)");
    expect_bad_cache("max_bytes = 1099511627777L;", "cache.max_bytes",
                     "out of range (64..1099511627776)");
    expect_bad_cache("max_bytes = 5000000000;", "cache.max_bytes",
                     "does not fit in 32 bits");
    expect_bad_cache("max_bytes = \"256M\";", "cache.max_bytes",
                     "expected an integer, found a string");
}
END_TEST

START_TEST(err_cache_relations)
{
    /* The default limits.max_record_size is 5242880. */
    expect_bad_cache("max_bytes_per_endpoint = 5242879;", "cache.max_bytes_per_endpoint",
                     "5242879 must be at least limits.max_record_size (5242880): a Record of "
                     "that size could never be cached");
    expect_one("limits = { max_record_size = 1048576; };\n"
               "cache = {\n  max_bytes_per_endpoint = 1000000;\n};\n" CACHE_LISTENERS,
               3, "cache.max_bytes_per_endpoint",
               "1000000 must be at least limits.max_record_size (1048576)");
    expect_bad_cache("max_records = 999;", "cache.max_records",
                     "999 must be at least cache.max_records_per_endpoint (1000)");
    expect_one("cache = {\n  max_records_per_endpoint = 50;\n  max_records = 49;\n};\n"
               CACHE_LISTENERS,
               3, "cache.max_records", "49 must be at least cache.max_records_per_endpoint (50)");
    expect_bad_cache("max_bytes = 16777215;", "cache.max_bytes",
                     "16777215 must be at least cache.max_bytes_per_endpoint (16777216)");
    expect_one("cache = {\n  max_bytes_per_endpoint = 8388608;\n  max_bytes = 8388607;\n};\n"
               CACHE_LISTENERS,
               3, "cache.max_bytes", "8388607 must be at least cache.max_bytes_per_endpoint (8388608)");
    /* A value out of range is reported once, not again against its neighbour. */
    expect_one("cache = {\n  max_records_per_endpoint = 0;\n  max_records = 10;\n};\n"
               CACHE_LISTENERS,
               2, "cache.max_records_per_endpoint", "out of range");
    expect_one("cache = {\n  max_bytes_per_endpoint = 1;\n  max_bytes = 100;\n};\n"
               CACHE_LISTENERS,
               2, "cache.max_bytes_per_endpoint", "out of range");

    /* Every relation broken at once: one error each, at its own line. */
    struct relay_config *cfg = (struct relay_config *)1;
    ck_assert_int_eq(load_text("cache = {\n  max_bytes_per_endpoint = 1024;\n"
                               "  max_records_per_endpoint = 100;\n  max_records = 99;\n"
                               "  max_bytes = 512;\n};\n" CACHE_LISTENERS,
                               &cfg),
                     3);
    ck_assert_ptr_null(cfg);
    assert_error(2, "cache.max_bytes_per_endpoint", "limits.max_record_size");
    assert_error(4, "cache.max_records", "cache.max_records_per_endpoint (100)");
    assert_error(5, "cache.max_bytes", "cache.max_bytes_per_endpoint (1024)");
}
END_TEST

/* One bad exclude entry: the error is at line 2, cache.exclude[1]. */
static void expect_bad_exclude(const char *pattern, const char *frag)
{
    char text[512];
    snprintf(text, sizeof text,
             "cache = {\n  exclude = [ \"self::ok\", \"%s\" ];\n};\n" CACHE_LISTENERS,
             pattern);
    expect_one(text, 2, "cache.exclude[1]", frag);
}

START_TEST(err_cache_exclude)
{
    expect_bad_exclude("self::a:b", "\"self::a:b\" is not a valid endpoint ID (shape)");
    expect_bad_exclude("", "is not a valid endpoint ID (empty)");
    expect_bad_exclude("os::*x", "'*' may only end a pattern");
    expect_bad_exclude("**", "'*' may only end a pattern");
    expect_bad_exclude("os::a b*", "may contain only characters of endpoint IDs");
    expect_bad_exclude("a:b:c:*", "more than two ':'");
    expect_bad_exclude(":x*", "empty authority-scheme");
    expect_bad_exclude("OS::*", "authority-scheme may contain only a-z 0-9 and '-'");
    expect_bad_exclude("oui:0025:*", "does not start a valid endpoint ID (authority)");
    expect_bad_exclude("os::a%zz*", "'%' not followed by two hex digits");
    expect_one("relay = { max_endpoint_id_length = 32; };\n"
               "cache = { exclude = [ \"self::012345678901234567890123456*\" ]; };\n"
               CACHE_LISTENERS,
               2, "cache.exclude[0]", "longer than relay.max_endpoint_id_length");
    expect_one("cache = {\n  exclude = ( \"os::*\", 7 );\n};\n" CACHE_LISTENERS, 2,
               "cache.exclude[1]", "expected a string, found an integer");
    expect_one("cache = {\n  exclude = \"os::*\";\n};\n" CACHE_LISTENERS, 2, "cache.exclude",
               "expected a list of endpoint ID patterns");
    expect_one("cache = {\n  exclude = [ \"os::a\\x00b\" ];\n};\n" CACHE_LISTENERS, 2,
               "cache.exclude", "\\x00");

    for (int n = 256; n <= 257; n++) {
        char *pats = repeat("\"os::*\"", n);
        size_t cap = strlen(pats) + 128;
        char *text = malloc(cap);
        ck_assert_ptr_nonnull(text);
        snprintf(text, cap, "cache = {\n  exclude = [ %s ];\n};\n" CACHE_LISTENERS, pats);
        if (n == 256) {
            struct relay_config *cfg = load_ok(text);
            ck_assert_uint_eq(cfg->cache.n_exclude, 256);
            config_free(cfg);
        } else {
            expect_one(text, 2, "cache.exclude", "257 patterns, at most 256 are allowed");
        }
        free(text);
        free(pats);
    }
}
END_TEST

START_TEST(err_cache_group)
{
    /* persist is for a later, durable cache: not accepted yet. */
    expect_bad_cache("persist = true;", "cache.persist", "unknown key");
    expect_bad_cache("ttll = 5;", "cache.ttll", "unknown key (did you mean \"ttl\"?)");
    expect_bad_cache("max_record = 5;", "cache.max_record",
                     "unknown key (did you mean \"max_records\"?)");
    expect_one("cache = [ \"os::*\" ];\n" CACHE_LISTENERS, 1, "cache",
               "expected a group { ... }, found an array");
    expect_one(CACHE_LISTENERS "cahce = { };\n", 2, "cahce",
               "unknown key (did you mean \"cache\"?)");
}
END_TEST

START_TEST(listener_cache_key)
{
    /* Default on for every type; false on each type; true stays on. */
    struct relay_config *cfg = load_ok(
        "listeners = ( " STOMP_L ", " UDS_L ", " MQTT_L ",\n"
        "  { name = \"w\"; type = \"websocket\"; address = \"::1\"; port = 8080; } );\n");
    ck_assert_uint_eq(cfg->n_listeners, 4);
    for (size_t i = 0; i < cfg->n_listeners; i++)
        ck_assert_int_eq(cfg->listeners[i].cache, 1);
    config_free(cfg);

    cfg = load_ok(
        "listeners = (\n"
        "  { name = \"s\"; type = \"stomp\"; address = \"::1\"; port = 1; cache = false; },\n"
        "  { name = \"u\"; type = \"uds\"; path = \"/tmp/x.sock\"; cache = false; },\n"
        "  { name = \"m\"; type = \"mqtt\"; address = \"::1\"; port = 2; cache = false; },\n"
        "  { name = \"w\"; type = \"websocket\"; address = \"::1\"; port = 3; cache = false; },\n"
        "  { name = \"t\"; type = \"stomp\"; address = \"::1\"; port = 4; cache = true; }\n"
        ");\n");
    ck_assert_uint_eq(cfg->n_listeners, 5);
    for (size_t i = 0; i < 4; i++)
        ck_assert_int_eq(cfg->listeners[i].cache, 0);
    ck_assert_int_eq(cfg->listeners[4].cache, 1);
    /* The cache group is independent of the listener key. */
    ck_assert_int_eq(cfg->cache.enabled, 1);
    config_free(cfg);

    expect_one(MQTT_HEAD "    cache = 0; }\n);\n", 3, "listeners[0].cache",
               "expected true or false, found an integer");
    expect_one(WS_HEAD "    cahce = false; }\n);\n", 3, "listeners[0].cahce",
               "unknown key (did you mean \"cache\"?)");
}
END_TEST

static TCase *cache_tcase(void)
{
    TCase *tc = tcase_create("cache");
    tcase_add_test(tc, cache_defaults);
    tcase_add_test(tc, cache_defaults_follow_set_bounds);
    tcase_add_test(tc, cache_explicit_values);
    tcase_add_test(tc, err_cache_ranges);
    tcase_add_test(tc, err_cache_relations);
    tcase_add_test(tc, err_cache_exclude);
    tcase_add_test(tc, err_cache_group);
    tcase_add_test(tc, listener_cache_key);
    return tc;
}

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *ok = tcase_create("valid");
    tcase_add_test(ok, example_conf_loads);
    tcase_add_test(ok, defaults_when_absent);
    tcase_add_test(ok, explicit_values);
    tcase_add_test(ok, listener_limits_override_and_inherit);
    tcase_add_test(ok, workers_zero_resolves);
    tcase_add_test(ok, names);
    tcase_add_test(ok, mqtt_defaults);
    tcase_add_test(ok, mqtt_explicit_values);
    tcase_add_test(ok, ws_explicit_values);
    tcase_add_test(ok, ws_defaults);
    tcase_add_test(ok, ws_mqtt_listener_resolution);
    suite_add_tcase(s, ok);

    TCase *bad = tcase_create("errors");
    tcase_add_test(bad, err_unknown_top_level);
    tcase_add_test(bad, err_unknown_in_relay);
    tcase_add_test(bad, err_unknown_in_listener);
    tcase_add_test(bad, err_unknown_in_listener_limits);
    tcase_add_test(bad, err_unknown_in_global_limits_and_log);
    tcase_add_test(bad, err_wrong_types);
    tcase_add_test(bad, err_out_of_range);
    tcase_add_test(bad, err_int_literal_traps);
    tcase_add_test(bad, err_bad_enum);
    tcase_add_test(bad, err_duplicate_listener_name);
    tcase_add_test(bad, err_duplicate_port);
    tcase_add_test(bad, err_duplicate_uds_path);
    tcase_add_test(bad, err_missing_required);
    tcase_add_test(bad, err_key_for_other_type);
    tcase_add_test(bad, err_bad_template);
    tcase_add_test(bad, err_login_passcode_pairing);
    tcase_add_test(bad, err_bad_endpoint_id);
    tcase_add_test(bad, err_bad_address_path_name_owner);
    tcase_add_test(bad, err_queue_smaller_than_record);
    tcase_add_test(bad, err_syntax);
    tcase_add_test(bad, err_missing_file);
    tcase_add_test(bad, err_nul_byte);
    tcase_add_test(bad, includes);
    tcase_add_test(bad, all_errors_reported_in_line_order);
    tcase_add_test(bad, error_buffer_truncated_safely);
    tcase_add_test(bad, err_mqtt_bad_template);
    tcase_add_test(bad, err_mqtt_template_too_long);
    tcase_add_test(bad, err_mqtt_credentials);
    tcase_add_test(bad, err_mqtt_out_of_range);
    tcase_add_test(bad, err_mqtt_subscribe_any);
    tcase_add_test(bad, err_mqtt_keys_for_other_types);
    tcase_add_test(bad, err_mqtt_port_clash);
    tcase_add_test(bad, err_nul_escape_in_strings);
    tcase_add_test(bad, err_ws_bad_path);
    tcase_add_test(bad, err_ws_duplicate_path);
    tcase_add_test(bad, err_ws_no_path);
    tcase_add_test(bad, err_ws_controllers);
    tcase_add_test(bad, err_ws_mqtt_listener);
    tcase_add_test(bad, err_ws_out_of_range);
    tcase_add_test(bad, err_ws_keys_for_other_types);
    tcase_add_test(bad, err_ws_port_clash);
    suite_add_tcase(s, bad);
    suite_add_tcase(s, tls_tcase());
    suite_add_tcase(s, conn_limits_tcase());
    suite_add_tcase(s, policy_tcase());
    suite_add_tcase(s, cache_tcase());
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
