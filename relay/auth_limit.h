/* auth_limit.h — failed-login rate limiting per source address, shared by every worker.
 *
 * Each STOMP or MQTT CONNECT that carries credentials to check asks auth_limit_blocked()
 * first; a refused login is reported with auth_limit_failed(). An address whose last
 * AUTH_LIMIT_FAILURES + 1 failures all fall within AUTH_LIMIT_WINDOW_MS (a sliding
 * window: no burst at a window's edge) is blocked for AUTH_LIMIT_BLOCK_MS: its logins
 * are refused without being checked (no PBKDF2 work), and those refusals are no guesses,
 * so they neither count nor extend the block. A successful login resets nothing (one
 * valid account must not renew the allowance for guessing others'). One source can thus
 * test at most AUTH_LIMIT_FAILURES + 1 passwords in any AUTH_LIMIT_WINDOW_MS.
 *
 * Addresses are taken from a connection's peer string as the listener formats it:
 * "192.0.2.1:5678", "[2001:db8::1]:5678", either behind "ws:" (MQTT over WebSocket);
 * the port is not part of the key, an IPv4-mapped IPv6 address counts as its IPv4
 * address, and an IPv6 address counts as its /64 (one subscriber's prefix). UNIX-socket peers ("unix:/path") are never limited. At most AUTH_LIMIT_TABLE
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

/* The key of PEER (see above) as text into OUT (capacity CAP; 46 is enough):
 * "192.0.2.1", "2001:db8::" (the /64). Returns 0, or -1 when PEER is not limited (UNIX socket,
 * anything unparsable) or CAP is too small. */
int auth_limit_peer_addr(const char *peer, char *out, size_t cap);

/* Is PEER blocked at NOW_MS (a monotonic clock in milliseconds)? 1 or 0. */
int auth_limit_blocked(struct auth_limit *al, const char *peer, uint64_t now_ms);

/* Count a failed login from PEER at NOW_MS. Returns its failures within the window,
 * this one included (above AUTH_LIMIT_FAILURES: PEER is blocked), or 0 when PEER is not
 * limited. */
unsigned auth_limit_failed(struct auth_limit *al, const char *peer, uint64_t now_ms);

/* Addresses tracked now (tests). */
size_t auth_limit_size(struct auth_limit *al);

#endif
