/* uds_server.h — USP UNIX-domain-socket MTP server sessions (TR-369 R-UDS.*).
 *
 * The client handshakes with its endpoint ID; the relay answers with the ID of the
 * peer this listener represents (peer_endpoint_id) or its own. A link bound to a peer
 * carries only that peer's Records (obuspa drops any other from_id on a UDS link).
 */
#ifndef USPRELAY_UDS_SERVER_H
#define USPRELAY_UDS_SERVER_H

#include "relay/conn.h"

struct worker;

/* Adopt an accepted socket as a UDS session (conn_factory). NULL on failure. */
struct conn *uds_conn_new(struct worker *w, int fd, const struct listener_cfg *lcfg,
                          const char *peer);

#endif
