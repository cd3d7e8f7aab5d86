/* forward.h — the data path decision for one Record read from a connection.
 *
 * Checks the sender's identity (from_id policy), refuses self-addressed Records, finds
 * the route for to_id (or, for STOMP, the connection subscribed to the SEND's
 * destination) and hands the Record to the worker that owns the destination. Every
 * Record that does not go out is counted under exactly one drop reason.
 */
#ifndef USPRELAY_FORWARD_H
#define USPRELAY_FORWARD_H

#include "relay/conn.h"
#include "relay/rbuf.h"
#include "relay/router.h"

/* Stamp RB (its bytes just read from SRC) with the receive time and SRC's MTP, and scan
 * its header. Returns 0, or the record_err code after counting drop_malformed and
 * releasing RB; MSG (CAP bytes, may be NULL) then says why, for the MTPs that tell the
 * peer before closing (WebSocket, UDS). */
int forward_scan(struct conn *src, struct rbuf *rb, char *msg, size_t cap);

/* Forward RB (scanned; one reference handed over) read from SRC. DEST_HINT: an MTP
 * address (STOMP destination, MQTT topic) to look up in HINT_TABLE when to_id is
 * unknown, or an empty span.
 * Returns 0 when handed on, else the drop counter it was counted under (the MTP may
 * react: a self-addressed Record is malformed in the sense of spec notes §9.1). */
int forward_record(struct conn *src, struct rbuf *rb, enum router_table hint_table,
                   struct span dest_hint);

#endif
