/* config.h — the relay's configuration, read once from a libconfig file.
 *
 * config_load() parses and validates a file into one immutable struct relay_config;
 * nothing else in the relay reads the file. Every error names file:line and the key.
 * Unknown keys are errors, so a typo never passes silently. docs/configuration.md is
 * the reference for every key; conf/usprelay.conf is the commented example.
 */
#ifndef USPRELAY_CONFIG_H
#define USPRELAY_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "relay/log.h"

enum listener_type { LISTENER_STOMP, LISTENER_UDS, LISTENER_MQTT, LISTENER_WEBSOCKET };

/* What to do with a Record whose from_id is not the sending connection's endpoint. */
enum from_id_policy { FROM_ID_ENFORCE, FROM_ID_LOG, FROM_ID_OFF };

/* What to do when a second connection claims an endpoint ID that is connected. */
enum duplicate_id_policy { DUP_REPLACE_OLD, DUP_REFUSE_NEW };

/* Connect Records crossing MTPs: forwarded as received, or re-issued as the
 * destination MTP's type (plaintext, unsigned ones only). */
enum connect_records_mode { CONNECT_RECORDS_PASS, CONNECT_RECORDS_TRANSLATE };

/* Bounds applied to each connection; global defaults, overridable per listener. */
struct limits_cfg {
    uint32_t max_record_size;        /* largest Record accepted or sent, bytes */
    uint32_t max_unidentified_input; /* input buffered before the endpoint is known */
    uint64_t max_output_queue;       /* queued output bytes per connection */
    uint32_t handshake_timeout_ms;   /* MTP handshake must finish within this */
    uint32_t stall_timeout_ms;       /* output waiting this long without a byte written:
                                        the peer has stopped reading; close */
    uint32_t max_connections_per_source; /* open connections from one IP address; 0: no
                                            limit */
    uint32_t accept_rate;            /* new connections per second a listener accepts
                                        (token bucket); 0: no limit */
    uint32_t accept_burst;           /* bucket size of accept_rate; 0: same as accept_rate */
};

struct stomp_listener_cfg {
    char *subscribe_dest_template; /* "{eid}" is replaced by the percent-encoded EID */
    int allow_any_subscribe;       /* let clients SUBSCRIBE to other destinations */
    char *login;                   /* NULL: no login/passcode check */
    char *passcode;
    uint32_t heartbeat_send_ms;    /* sx offered in CONNECTED (0 = never) */
    uint32_t heartbeat_receive_ms; /* sy offered in CONNECTED (0 = not wanted) */
    uint32_t heartbeat_grace_pct;  /* tolerance on the client's heart-beat period */
    uint32_t max_frame_head;       /* command + headers, bytes */
    uint32_t max_headers;          /* headers per frame */
};

struct uds_listener_cfg {
    char *path;             /* socket path */
    uint32_t mode;          /* file mode of the socket, e.g. 0660 */
    char *owner;            /* NULL: leave as created */
    char *group;            /* NULL: leave as created */
    uid_t owner_uid;        /* owner resolved at load time; (uid_t)-1 when not set,
                               so chown(path, owner_uid, group_gid) does the right thing */
    gid_t group_gid;        /* group resolved at load time; (gid_t)-1 when not set */
    char *peer_endpoint_id; /* NULL: answer the handshake with relay.endpoint_id and
                               carry Records from any peer */
};

struct mqtt_listener_cfg {
    char *subscribe_topic_template; /* "{eid}" is replaced by the EID as is; sent as the
                                       subscribe-topic user property and as Response
                                       Information, and used as the alias topic */
    char *username;                /* NULL: no username/password check */
    char *password;
    uint32_t server_keep_alive;    /* seconds; 0: the client's own Keep Alive stands */
    uint32_t receive_maximum;      /* QoS 1 PUBLISHes a client may have unacknowledged */
    char **subscribe_any;          /* endpoint IDs (a trailing '*' makes a prefix) that may
                                      subscribe to any topic filter; NULL-terminated */
    size_t n_subscribe_any;
};

struct passwd_db;

/* Client certificates on a TLS listener. */
enum tls_client_certs { TLS_CLIENT_NONE, TLS_CLIENT_OPTIONAL, TLS_CLIENT_REQUIRED };

/* A certificate for one SNI server name. */
struct tls_sni_cfg {
    char *server_name;  /* exact host name, or "*.example.com" (one leading label) */
    char *certificate;  /* PEM chain file */
    char *key;          /* PEM private key file */
};

/* A certificate subject CN standing for an endpoint ID (only with cn_map set). */
struct tls_cn_map_cfg {
    char *cn;
    char *endpoint_id;
};

/* TLS of one TCP listener; enabled when certificate is set. */
struct tls_cfg {
    char *certificate;      /* PEM chain file; NULL: no TLS on this listener */
    char *key;              /* PEM private key file */
    char *ca;               /* PEM bundle that client certificates must chain to, or NULL */
    char *crl;              /* PEM CRL file checked against client certificates, or NULL */
    enum tls_client_certs client_certs;
    int min_version;        /* TLS1_2_VERSION or TLS1_3_VERSION */
    char *ciphers;          /* TLS 1.2 cipher list (OpenSSL syntax), or NULL: default */
    char *ciphersuites;     /* TLS 1.3 suites, or NULL: default */
    char *groups;           /* key exchange groups, e.g. "X25519:P-256", or NULL */
    struct tls_sni_cfg *sni; /* further certificates chosen by server name */
    size_t n_sni;
    struct tls_cn_map_cfg *cn_map; /* CN -> endpoint ID when the SAN names none */
    size_t n_cn_map;
};

/* A request path of a WebSocket listener that stands for one controller. */
struct ws_controller_path {
    char *path;        /* e.g. "/usp/ctrl1": '/' then printable ASCII, no '?', '#', '%' */
    char *endpoint_id; /* the controller reached through it (a valid endpoint ID) */
};

struct ws_listener_cfg {
    struct ws_controller_path *controllers; /* path -> controller; n_controllers entries */
    size_t n_controllers;
    char **paths;          /* paths accepted without naming a controller; n_paths entries */
    size_t n_paths;
    char *mqtt_listener;   /* name of the mqtt listener whose settings MQTT-over-WebSocket
                              sessions use; NULL: subprotocol "mqtt" is refused */
    const struct listener_cfg *mqtt; /* that listener, resolved at load time, or NULL */
    uint32_t ping_interval_s; /* send a Ping after this long without input; 0: never */
    uint32_t ping_timeout_s;  /* close when nothing arrives this long after the Ping */
    uint32_t fragment_size;   /* 0: each Record in one frame; else payload bytes per frame */
};

struct listener_cfg {
    char *name;       /* unique, used in logs */
    enum listener_type type;
    char *address;    /* TCP listeners: numeric address */
    uint16_t port;    /* TCP listeners */
    int backlog;
    int line;         /* line in the config file, for messages */
    struct limits_cfg limits;
    struct stomp_listener_cfg stomp;
    struct uds_listener_cfg uds;
    struct mqtt_listener_cfg mqtt;
    struct ws_listener_cfg ws;
    struct tls_cfg tls;  /* TCP listeners; tls.certificate NULL when plain */
    char *password_file; /* stomp/mqtt: credentials checked against this file, or NULL */
    struct passwd_db *passwd; /* its contents, loaded with the configuration */
    int cache;           /* Records received here may be cached (listener key "cache",
                            default 1); 0: they are dropped when they cannot be sent */
};

/* Who may send Records to whom (relay.policy): endpoint ID patterns. */
enum policy_match {
    POLICY_EXACT,   /* the whole ID */
    POLICY_PREFIX,  /* "os::00256D-*", "os::*": IDs starting with the part before '*' */
    POLICY_ANY,     /* "*" */
};

struct policy_pattern {
    enum policy_match match;
    char *text;      /* the ID, or the prefix without its '*'; NULL for POLICY_ANY */
    size_t len;
};

/* One rule: Records from FROM to TO are allowed (or denied). First match wins. */
struct policy_rule {
    int allow;                       /* 1 allow, 0 deny */
    struct policy_pattern *from;     /* n_from patterns (any of them) */
    size_t n_from;
    struct policy_pattern *to;
    size_t n_to;
    int line;                        /* in the config file, for logs */
};

struct policy_cfg {
    struct policy_rule *rules;
    size_t n_rules;
    int default_allow;               /* when no rule matches; 1 unless configured */
    struct policy_pattern *controllers; /* declared controllers */
    size_t n_controllers;
    int agents_only_to_controllers;  /* a sender that is no controller may only send to
                                        the declared controllers */
};

/* The offline cache (top-level group "cache", relay/cache.h): Records for endpoints
 * that are not connected, or whose connection is behind, wait here. */
struct cache_cfg {
    int enabled;                       /* default 1 */
    uint32_t ttl_ms;                   /* age at which a cached Record expires */
    uint32_t max_records_per_endpoint; /* per destination endpoint ID */
    uint64_t max_bytes_per_endpoint;
    uint64_t max_records;              /* all destinations together */
    uint64_t max_bytes;
    struct policy_pattern *exclude;    /* to_id patterns never cached */
    size_t n_exclude;
};

struct relay_config {
    char *path;                     /* the file this was read from */
    char *endpoint_id;              /* the relay's own ID (UDS handshakes) */
    unsigned workers;               /* worker threads; resolved (never 0) */
    uint32_t max_endpoint_id_length;
    enum from_id_policy from_id_policy;
    enum duplicate_id_policy duplicate_id_policy;
    enum connect_records_mode connect_records;
    uint32_t shutdown_timeout_ms;   /* SIGTERM: how long queues may drain */
    uint32_t max_connections;       /* open client connections, all listeners; resolved
                                       from RLIMIT_NOFILE when configured as 0 */
    enum log_level log_level;
    struct limits_cfg limits;       /* defaults for listeners */
    struct policy_cfg policy;       /* the policy group; no rules: everything allowed */
    struct cache_cfg cache;         /* the cache group */
    struct listener_cfg *listeners;
    size_t n_listeners;
};

/* Parse and validate PATH. On success returns 0 and sets *out (free with config_free).
 * On failure returns the number of errors (> 0), *out is NULL, and ERR holds one
 * "file:line: key: message" line per error (truncated to ERRLEN). */
int config_load(const char *path, struct relay_config **out, char *err, size_t errlen);

void config_free(struct relay_config *cfg);

/* Names for logs and docs. */
const char *listener_type_name(enum listener_type t);
const char *from_id_policy_name(enum from_id_policy p);
const char *duplicate_id_policy_name(enum duplicate_id_policy p);
const char *connect_records_name(enum connect_records_mode m);

#endif
