/* auth_limit.h — failed-login rate limiting per source address, shared by every worker.
 *
 * Each STOMP or MQTT CONNECT that carries credentials to check asks auth_limit_blocked()
 * first; a refused login is reported with auth_limit_failed(), an accepted one with
 * auth_limit_ok(), which forgets the address. An address that fails more than
 * AUTH_LIMIT_FAILURES times within AUTH_LIMIT_WINDOW_MS (counted from its first failure)
 * is blocked for AUTH_LIMIT_BLOCK_MS: its logins are refused without being checked, so
 * it costs no PBKDF2 work either. Attempts while blocked do not extend the block. One
 * source can thus test at most AUTH_LIMIT_FAILURES + 1 passwords per AUTH_LIMIT_BLOCK_MS.
 *
 * Addresses are taken from a connection's peer string as the listener formats it:
 * "192.0.2.1:5678", "[2001:db8::1]:5678", either behind "ws:" (MQTT over WebSocket);
 * the port is not part of the key, and an IPv4-mapped IPv6 address counts as its IPv4
 * address. UNIX-socket peers ("unix:/path") are never limited. At most AUTH_LIMIT_TABLE
 * addresses are tracked; a new one replaces the entry that would expire soonest, so a
 * flood of addresses can push out a block (each of them still gets only its own
 * allowance). All calls take an internal mutex; AL may be NULL (no limiting).
 */
#ifndef USPRELAY_AUTH_LIMIT_H
#define USPRELAY_AUTH_LIMIT_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_LIMIT_FAILURES 5       /* failures tolerated per window; one more blocks */
#define AUTH_LIMIT_WINDOW_MS 60000u
#define AUTH_LIMIT_BLOCK_MS 60000u
#define AUTH_LIMIT_TABLE 4096u      /* addresses tracked at once */

struct auth_limit;

/* NULL when out of memory. */
struct auth_limit *auth_limit_new(void);
void auth_limit_free(struct auth_limit *al);

/* The address part of PEER (see above) as text into OUT (capacity CAP; 46 is enough):
 * "192.0.2.1", "2001:db8::1". Returns 0, or -1 when PEER is not limited (UNIX socket,
 * anything unparsable) or CAP is too small. */
int auth_limit_peer_addr(const char *peer, char *out, size_t cap);

/* Is PEER blocked at NOW_MS (a monotonic clock in milliseconds)? 1 or 0. */
int auth_limit_blocked(struct auth_limit *al, const char *peer, uint64_t now_ms);

/* Count a failed login from PEER at NOW_MS. Returns the failures counted in the current
 * window, this one included (a value above AUTH_LIMIT_FAILURES means PEER is now blocked),
 * or 0 when PEER is not limited. */
unsigned auth_limit_failed(struct auth_limit *al, const char *peer, uint64_t now_ms);

/* A login from PEER succeeded: forget its failures. */
void auth_limit_ok(struct auth_limit *al, const char *peer);

/* Addresses tracked now (tests). */
size_t auth_limit_size(struct auth_limit *al);

#endif
