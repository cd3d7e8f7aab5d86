/* stomp_server.h — STOMP 1.2 server sessions (USP STOMP MTP, TR-369 R-STOMP.*).
 *
 * A client connects with STOMP/CONNECT naming its endpoint-id, gets CONNECTED with the
 * one destination it may subscribe to (subscribe-dest), SENDs Records and receives
 * them as MESSAGE frames on that subscription.
 */
#ifndef USPRELAY_STOMP_SERVER_H
#define USPRELAY_STOMP_SERVER_H

#include "relay/conn.h"

struct worker;

/* Adopt an accepted socket as a STOMP session (conn_factory). NULL on failure. */
struct conn *stomp_conn_new(struct worker *w, int fd, const struct listener_cfg *lcfg,
                            const char *peer);

/* Expand a subscribe_dest_template for EID ("{eid}" -> percent-encoded EID) into BUF.
 * Returns the length, or -1 if it does not fit. */
long stomp_dest_for(const char *tmpl, const char *eid, size_t len, char *buf, size_t cap);

#endif
