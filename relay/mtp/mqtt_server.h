/* mqtt_server.h — MQTT 3.1.1 and 5.0 server sessions (USP MQTT MTP, TR-369 R-MQTT.*).
 *
 * The relay is the broker USP endpoints connect to. A client's endpoint ID comes from
 * the v5 usp-endpoint-id user property, else a v3.1.1 client id that is an endpoint ID,
 * else the from_id of its first Record. Records are routed by to_id, never by topic;
 * topics only say where a client wants its Records published and where replies go.
 */
#ifndef USPRELAY_MQTT_SERVER_H
#define USPRELAY_MQTT_SERVER_H

#include "relay/conn.h"

struct worker;

/* Adopt an accepted socket as an MQTT session (conn_factory). NULL on failure. */
struct conn *mqtt_conn_new(struct worker *w, int fd, const struct listener_cfg *lcfg,
                           const char *peer);

/* Expand a subscribe_topic_template for EID ("{eid}" -> EID as is) into BUF.
 * Returns the length, or -1 if it does not fit. */
long mqtt_topic_for(const char *tmpl, const char *eid, size_t len, char *buf, size_t cap);

#endif
