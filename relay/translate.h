/* translate.h — optional re-issue of a Connect Record for the destination's MTP.
 *
 * TR-369 has no rule for a Connect Record of one MTP reaching a Controller on another
 * (R-MTP.8 asks for "the correct Connect Record type"). With connect_records =
 * translate, a plaintext, unsigned Connect Record of another MTP's type is re-encoded
 * as the destination MTP's type, keeping version, to_id and from_id, with the relay's
 * alias address for the sender where the type carries one. Signed or E2E-protected
 * Records are never touched: rewriting them would break their integrity.
 */
#ifndef USPRELAY_TRANSLATE_H
#define USPRELAY_TRANSLATE_H

#include "relay/conn.h"
#include "relay/rbuf.h"

/* A new, scanned buffer holding RB as DST's Connect Record type, or NULL when RB is
 * not to be translated for DST (not a Connect Record, already DST's type, signed,
 * not plaintext, or DST's MTP has no Connect Record type). */
struct rbuf *translate_connect(struct conn *dst, const struct rbuf *rb);

#endif
