/* tls.h — TLS for the relay's TCP listeners (OpenSSL 3), and endpoint identity taken
 * from client certificates (TR-369 R-SEC.0a, R-SEC.4b/4c, R-ARC.4a; see
 * /work/shared/spec/usp-mtp-notes.md §2).
 *
 * A listener whose struct tls_cfg has a certificate gets one struct tls_server: the
 * server SSL_CTX with the listener's versions, ciphers, certificate, client-certificate
 * verification and CRL, plus one SSL_CTX per SNI entry. libwebsockets builds its own
 * vhost SSL_CTX; tls_server_configure_ctx() gives it the very same settings.
 *
 * After its MTP handshake (STOMP CONNECT, MQTT CONNECT, WebSocket upgrade) a connection
 * asks tls_identity_check() which endpoint ID it belongs to: the endpoint IDs of the
 * certificate's subjectAltName URIs "urn:bbf:usp:id:<EID>" bind it (the MTP-declared ID
 * must be one of them), a cn_map entry stands in for certificates that name no ID, and
 * without a client certificate the MTP-declared ID stands (a listener wanting only
 * authenticated peers sets client_certs = "required").
 *
 * tls_server_* run at start-up; the identity functions only read their arguments and may
 * run in any thread. The tls_check_* functions serve config_load() (relay/config_listeners.c).
 */
#ifndef USPRELAY_TLS_H
#define USPRELAY_TLS_H

#include <stdatomic.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "relay/config.h"

/* The longest endpoint ID taken from a certificate: the largest max_endpoint_id_length
 * the configuration allows, so no ID the relay accepts elsewhere is cut off here. */
#define TLS_EID_MAX 4096

/* Prefix of a subjectAltName URI carrying an endpoint ID (compared case-insensitively). */
#define TLS_EID_URI_PREFIX "urn:bbf:usp:id:"

struct tls_server;

/* Build the server contexts of CFG (cfg->certificate must be set). Returns NULL with
 * a one-line reason in ERR (ERRLEN bytes, always terminated) on failure. The server
 * keeps CFG for tls_ssl_cfg(): CFG must outlive it (tls_server_on_last_unref() can say
 * when it may go).
 *
 * A server is reference-counted: the caller holds one reference, and every SSL it set up
 * (tls_server_ssl_new(), a followed context) holds one until SSL_free(). So material
 * replaced on SIGHUP lives exactly as long as connections made with it. */
struct tls_server *tls_server_new(const struct tls_cfg *cfg, char *err, size_t errlen);

/* The default (non-SNI) context; owned by TS. */
SSL_CTX *tls_server_ctx(struct tls_server *ts);

/* A new server-side SSL on the default context (the SNI callback may move it to another
 * one during the handshake), tagged for tls_ssl_cfg(); NULL when out of memory. Free it
 * with SSL_free(). */
SSL *tls_server_ssl_new(struct tls_server *ts);

/* Drop a reference; the last one frees the contexts and then calls the
 * tls_server_on_last_unref() function. NULL is ignored. Any thread. */
void tls_server_unref(struct tls_server *ts);

/* Call FN(ARG) when TS is freed (e.g. to release the configuration CFG belongs to). */
void tls_server_on_last_unref(struct tls_server *ts, void (*fn)(void *arg), void *arg);

/* Make CTX, a server context made elsewhere (libwebsockets' vhost context), hand each
 * new connection to the tls_server in *SLOT at that moment: early in the ClientHello
 * the SSL moves to its default context (then SNI applies as for our own SSLs) and takes
 * its versions, ciphers, groups and verification. A slot swapped later (SIGHUP) serves
 * the handshakes that start afterwards. SLOT must outlive CTX; NULL in it leaves the
 * connection on CTX. */
void tls_server_follow(SSL_CTX *ctx, struct tls_server *_Atomic *slot);

/* The tls_cfg of the tls_server that set SSL up (tls_server_ssl_new() or a followed
 * context), or NULL for an SSL of neither. Identity checks use it, so that cn_map and
 * client_certs are those of the material the handshake ran with. */
const struct tls_cfg *tls_ssl_cfg(const SSL *ssl);

/* Apply CFG to CTX, a server context made elsewhere (e.g. libwebsockets' vhost
 * context): minimum version, ciphers, ciphersuites, groups, options (no renegotiation),
 * session cache and tickets, client certificate verification against cfg->ca with the
 * CRL, and, when cfg->certificate is set, the certificate chain and key. SNI is not
 * applied here (it needs the extra contexts a tls_server owns). Returns 0, or -1 with
 * the reason in ERR. tls_server_new() builds every one of its contexts with this. */
int tls_server_configure_ctx(const struct tls_cfg *cfg, SSL_CTX *ctx, char *err,
                             size_t errlen);

/* The endpoint IDs of SSL's verified peer certificate: every subjectAltName URI
 * "urn:bbf:usp:id:<EID>" (prefix case-insensitive) whose EID passes eid_check() with
 * MAX_EID_LEN (capped at TLS_EID_MAX), in certificate order, NUL-terminated into IDS;
 * invalid ones are skipped, and at most MAX_IDS are stored. Returns how many were
 * stored (0: the certificate names none), or -1 when there is no verified peer
 * certificate (no handshake finished, no certificate sent, or verification failed). */
int tls_peer_endpoint_ids(SSL *ssl, char (*ids)[TLS_EID_MAX + 1], size_t max_ids,
                          size_t max_eid_len);

/* The cfg->cn_map endpoint ID for the subject CN of SSL's verified peer certificate,
 * or NULL (no verified certificate, not exactly one CN, or no entry for it). Points
 * into CFG. This ignores the subjectAltName: tls_identity_check() consults cn_map only
 * for certificates that name no endpoint ID. */
const char *tls_cn_mapped_id(const struct tls_cfg *cfg, SSL *ssl);

/* What tls_identity_check() decided. Accepted results are >= 0. */
enum tls_identity {
    /* accept: ID is an endpoint ID of the verified certificate (a SAN URI, or for an
       "fqdn::" ID a SAN dNSName equal to its instance-id, R-SEC.0a) */
    TLS_ID_CERT = 0,
    /* accept: the certificate names no endpoint ID; ID is cn_map's for its subject CN */
    TLS_ID_CN_MAP = 1,
    /* accept, not authenticated by TLS: no client certificate (client_certs "none" or
       "optional", or SSL is NULL: no TLS), so the MTP-declared ID stands */
    TLS_ID_DECLARED = 2,
    /* refuse: the declared ID is not one the certificate (or its cn_map entry) stands
       for; ID holds the certificate's first ID (or the cn_map one) for the log */
    TLS_ID_MISMATCH = -1,
    /* refuse: a verified certificate that names no endpoint ID and has no cn_map entry */
    TLS_ID_NO_CERT_ID = -2,
    /* refuse: client_certs is "required" and there is no verified certificate, or a
       certificate was sent that did not verify */
    TLS_ID_NO_VERIFIED_CERT = -3,
    /* refuse: neither the certificate nor the MTP gives an ID */
    TLS_ID_NONE = -4,
    /* refuse: the declared ID fails eid_check() with MAX_EID_LEN, or it or the chosen
       ID does not fit in ID */
    TLS_ID_INVALID = -5,
};

/* Decide the endpoint ID of the peer of SSL (NULL: a plain TCP connection) on a
 * listener with CFG, given DECLARED, the ID its MTP handshake named (NULL: none):
 *   - the certificate has endpoint IDs: DECLARED must be one of them (TLS_ID_MISMATCH
 *     otherwise); no DECLARED: the first one is used (TLS_ID_CERT);
 *   - it has none: cfg->cn_map's ID for its CN, which DECLARED must equal when given
 *     (TLS_ID_CN_MAP / TLS_ID_MISMATCH); no cn_map entry: TLS_ID_NO_CERT_ID;
 *   - no certificate: DECLARED stands (TLS_ID_DECLARED) unless client_certs is
 *     "required" (TLS_ID_NO_VERIFIED_CERT); no DECLARED either: TLS_ID_NONE.
 * On acceptance the ID is copied into ID (IDCAP bytes with the NUL; certificate IDs
 * that would not fit count as invalid, so give max_eid_len + 1); on TLS_ID_MISMATCH it
 * holds the certificate's ID, otherwise it is "". Endpoint IDs are compared byte-exactly
 * (the dNSName of an "fqdn::" ID ignoring case, as DNS does); MAX_EID_LEN is the relay's
 * max_endpoint_id_length. SSL with an unfinished handshake gives
 * TLS_ID_NO_VERIFIED_CERT. */
enum tls_identity tls_identity_check(const struct tls_cfg *cfg, SSL *ssl,
                                     const char *declared, size_t max_eid_len, char *id,
                                     size_t idcap);

/* Short snake_case name of a tls_identity, for logs and counters. */
const char *tls_identity_name(enum tls_identity r);

/* Drain the calling thread's OpenSSL error queue into BUF (CAP bytes, always
 * terminated) as "library: reason (data); ..." and, when SSL is not NULL and its peer
 * certificate failed verification, append "verify: <reason>". Returns BUF; "unknown
 * error" when there was nothing to say. For log lines after a failed OpenSSL call. */
const char *tls_error_text(const SSL *ssl, char *buf, size_t cap);

/* ---- configuration checks: each returns 0, or -1 with why in ERR (one line) */

/* A TLS 1.2 cipher list (SSL_CTX_set_cipher_list syntax) selecting at least one
 * cipher. */
int tls_check_ciphers(const char *list, char *err, size_t errlen);

/* A TLS 1.3 ciphersuite list: ':'-separated names, each one OpenSSL knows. */
int tls_check_ciphersuites(const char *list, char *err, size_t errlen);

/* A key exchange group list ("X25519:P-256"), each one OpenSSL knows. */
int tls_check_groups(const char *list, char *err, size_t errlen);

/* CERT (PEM chain) and KEY (PEM private key) load, and the key is the certificate's.
 * Returns 0, -1 when the certificate is at fault, -2 when the key is (unreadable, or not
 * the certificate's). */
int tls_check_keypair(const char *cert, const char *key, char *err, size_t errlen);

/* PATH is a PEM file holding at least one CA certificate. */
int tls_check_ca(const char *path, char *err, size_t errlen);

/* PATH is a PEM file holding at least one CRL. */
int tls_check_crl(const char *path, char *err, size_t errlen);

/* NAME is an SNI server name the configuration may give: a DNS host name of letters,
 * digits and '-' labels (1..63 bytes each, no '-' at either end, 253 bytes in all, no
 * trailing dot), or "*." followed by such a name of at least two labels. Returns 1 or 0. */
int tls_server_name_valid(const char *name);

#endif
