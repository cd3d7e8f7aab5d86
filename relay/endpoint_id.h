/* endpoint_id.h — USP Endpoint ID syntax (TR-369 architecture: R-ARC.2a, R-ARC.5).
 *
 * An Endpoint ID is  authority-scheme ":" [authority-id] ":" instance-id . The relay
 * checks the shape and character set of every ID it learns or routes on, and the
 * authority-id rules of the schemes the spec defines; unknown schemes get the shape and
 * character checks only. Comparison elsewhere is byte-exact.
 */
#ifndef USPRELAY_ENDPOINT_ID_H
#define USPRELAY_ENDPOINT_ID_H

#include <stddef.h>

enum eid_err {
    EID_OK = 0,
    EID_ERR_EMPTY = -1,     /* zero length */
    EID_ERR_TOO_LONG = -2,  /* longer than the configured maximum */
    EID_ERR_SHAPE = -3,     /* not exactly two ':' separating three parts */
    EID_ERR_SCHEME = -4,    /* empty scheme or a character outside [a-z0-9-] */
    EID_ERR_AUTHORITY = -5, /* authority-id breaks its scheme's rule */
    EID_ERR_INSTANCE = -6,  /* empty instance-id or a character outside the allowed set */
    EID_ERR_PERCENT = -7,   /* '%' not followed by two hex digits */
};

/* Check ID (LEN bytes, not necessarily NUL-terminated) against the syntax and MAX_LEN.
 * Returns EID_OK or an enum eid_err; checks run in the order of the enum (length, shape,
 * scheme, authority-id, instance-id), so the first broken part is reported.
 *   oui: 6, 7 or 9 hex digits      cid: 6 hex digits      pen: 1 or more decimal digits
 *   self, user, doc: 0-6 bytes     proto: 0-6 bytes, no '.'
 *   os, ops, uuid, imei, fqdn: empty    any other scheme: 0-64 bytes
 * Free-form authority-ids and the instance-id use A-Z a-z 0-9 - . _ and %HH; lengths count
 * bytes as written (a %HH escape is 3). The instance-id has no length cap of its own (R-ARC.6
 * says 50, but fqdn names are longer): MAX_LEN bounds the whole ID. */
int eid_check(const char *id, size_t len, size_t max_len);

/* Short snake_case name of an eid_err, for logs and counters. */
const char *eid_err_name(int err);

/* Percent-encode every byte of ID outside [A-Za-z0-9-._~] as %HH (upper-case hex), so
 * the result contains no ':' '\\' CR or LF and is safe in STOMP headers, topics and
 * paths. snprintf-like: writes at most CAP bytes including the NUL, returns the
 * length the full encoding needs (excluding the NUL). */
size_t eid_pct_encode(const char *id, size_t len, char *dst, size_t cap);

/* Decode %HH sequences of SRC (LEN bytes) into DST (CAP bytes incl. NUL), once.
 * Returns the decoded length, or -1 on a malformed escape or insufficient room. "%00"
 * yields a NUL byte inside the result (counted in the length); eid_check() refuses it. */
long eid_pct_decode(const char *src, size_t len, char *dst, size_t cap);

#endif
