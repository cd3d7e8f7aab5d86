/* tls.c — server TLS contexts for the TCP listeners and endpoint identity from client
 * certificates (see tls.h).
 *
 * Every context, the default one, each SNI one and a context libwebsockets made, goes
 * through configure() so that they verify clients and negotiate alike: after the SNI
 * callback has moved a connection to another context, OpenSSL checks the client
 * certificate against that context's store. Identity is read only from certificates
 * that verified (SSL_get_verify_result() == X509_V_OK on a finished handshake).
 */
#include "relay/tls.h"

#include <assert.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "relay/endpoint_id.h"
#include "relay/log.h"

/* Sessions kept for TLS 1.2 session-ID resumption (TLS 1.3 and 1.2 tickets are
 * stateless): a reconnect storm of this many peers resumes without full handshakes. */
#define TLS_SESSION_CACHE_SIZE 4096
/* Intermediate CAs allowed between a client certificate and its trust anchor. */
#define TLS_VERIFY_DEPTH 8
#define DNS_NAME_MAX 253
#define DNS_LABEL_MAX 63

/* Sessions carry the verified peer certificate; they must never resume in another
 * application's context, and every context of ours shares this one. */
static const unsigned char session_id_ctx[] = "usprelay";

/* Paths and lists from the configuration appear in messages quoted and escaped by
 * log_escape(), so that every message stays one printable line. */
#define QUOTE_CAP 224

static const char *quote(char buf[QUOTE_CAP], const char *s)
{
    return log_escape(buf, QUOTE_CAP, s, strlen(s), 200);
}

struct sni_ctx {
    char *name; /* as configured: "host.example.com" or "*.example.com" */
    SSL_CTX *ctx;
};

struct tls_server {
    SSL_CTX *ctx; /* default certificate */
    struct sni_ctx *sni;
    size_t n_sni;
    const struct tls_cfg *cfg; /* the settings it was built from; identity rules */
    atomic_uint refs;          /* its holder's, plus one per SSL tagged with it */
    void (*on_last_unref)(void *arg);
    void *on_last_unref_arg;
};

/* Index of the SSL ex_data slot naming the struct tls_server a connection's SSL was set
 * up by, so that identity follows the material the handshake actually used. */
static int ssl_server_index = -1;
static pthread_once_t ssl_server_index_once = PTHREAD_ONCE_INIT;

/* OpenSSL calls this when an SSL is freed: the tag's reference goes with it. */
static void ssl_server_tag_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                                long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    if (ptr)
        tls_server_unref(ptr);
}

static void ssl_server_index_init(void)
{
    ssl_server_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, ssl_server_tag_free);
}

/* Tag SSL with TS (a reference for as long as the SSL lives, or until retagged). */
static int ssl_tag(SSL *ssl, struct tls_server *ts)
{
    struct tls_server *old = SSL_get_ex_data(ssl, ssl_server_index);
    if (old == ts)
        return 0;
    atomic_fetch_add_explicit(&ts->refs, 1, memory_order_relaxed);
    if (SSL_set_ex_data(ssl, ssl_server_index, ts) != 1) {
        tls_server_unref(ts);
        return -1;
    }
    if (old)
        tls_server_unref(old);
    return 0;
}

/* ------------------------------------------------------------------ errors */

__attribute__((format(printf, 4, 5)))
static void appendf(char *buf, size_t cap, size_t *used, const char *fmt, ...)
{
    if (*used + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *used, cap - *used, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    *used += (size_t)n;
    if (*used > cap - 1)
        *used = cap - 1;
}

const char *tls_error_text(const SSL *ssl, char *buf, size_t cap)
{
    if (!buf || cap == 0) {
        ERR_clear_error();
        return buf;
    }
    size_t used = 0;
    buf[0] = '\0';
    unsigned long e;
    const char *data = NULL;
    int flags = 0;
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        const char *lib = ERR_lib_error_string(e);
        const char *reason = ERR_reason_error_string(e);
        appendf(buf, cap, &used, "%s", used ? "; " : "");
        if (lib)
            appendf(buf, cap, &used, "%s: ", lib);
        if (reason)
            appendf(buf, cap, &used, "%s", reason);
        else
            appendf(buf, cap, &used, "error 0x%lx", e);
        if (data && *data && (flags & ERR_TXT_STRING))
            appendf(buf, cap, &used, " (%s)", data);
    }
    if (ssl) {
        long v = SSL_get_verify_result(ssl);
        if (v != X509_V_OK)
            appendf(buf, cap, &used, "%sverify: %s", used ? "; " : "",
                    X509_verify_cert_error_string(v));
    }
    if (used == 0)
        snprintf(buf, cap, "unknown error");
    /* OpenSSL's data strings hold file names, which may hold anything. */
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return buf;
}

/* "WHAT: <OpenSSL errors>" into ERR; returns -1 for the caller to pass on. */
__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    char ossl[256];
    tls_error_text(NULL, ossl, sizeof ossl);
    if (!err || errlen == 0)
        return -1;
    size_t used = 0;
    err[0] = '\0';
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    used = (size_t)n < errlen ? (size_t)n : errlen - 1;
    appendf(err, errlen, &used, " (%s)", ossl);
    return -1;
}

/* ------------------------------------------------------------------ contexts */

/* Keys are never encrypted for a daemon: without this, OpenSSL would prompt on the
 * terminal for a passphrase. */
static int no_passphrase(char *buf, int size, int rwflag, void *arg)
{
    (void)buf, (void)size, (void)rwflag, (void)arg;
    return 0;
}

static EVP_PKEY *load_key(const char *path)
{
    BIO *b = BIO_new_file(path, "r");
    if (!b)
        return NULL;
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
    BIO_free(b);
    return k;
}

/* Certificate chain CERT and key KEY into CTX. Returns 0, -1 (certificate at fault) or
 * -2 (key at fault), with the reason in ERR. */
static int use_keypair(SSL_CTX *ctx, const char *cert, const char *key, char *err,
                       size_t errlen)
{
    char qc[QUOTE_CAP], qk[QUOTE_CAP];
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        fail(err, errlen, "cannot load the certificate chain from %s", quote(qc, cert));
        return -1;
    }
    EVP_PKEY *k = load_key(key);
    if (!k) {
        fail(err, errlen, "cannot load the private key from %s (PEM, not encrypted)",
             quote(qk, key));
        return -2;
    }
    int ok = SSL_CTX_use_PrivateKey(ctx, k) == 1 && SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(k);
    if (!ok) {
        fail(err, errlen, "the private key in %s does not belong to the certificate in %s",
             quote(qk, key), quote(qc, cert));
        return -2;
    }
    return 0;
}

/* Everything but SNI, with the certificate CERT/KEY (NULL: leave CTX's own). */
static int configure(const struct tls_cfg *cfg, const char *cert, const char *key,
                     SSL_CTX *ctx, char *err, size_t errlen)
{
    char q[QUOTE_CAP];
    ERR_clear_error();
    int minv = cfg->min_version == TLS1_3_VERSION ? TLS1_3_VERSION : TLS1_2_VERSION;
    if (SSL_CTX_set_min_proto_version(ctx, minv) != 1)
        return fail(err, errlen, "cannot set the minimum TLS version");
    /* A peer closing TCP without close_notify is an ordinary end of the connection
     * (most clients do that), not a read error. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
    if (cfg->ciphers && SSL_CTX_set_cipher_list(ctx, cfg->ciphers) != 1)
        return fail(err, errlen, "ciphers %s are not usable", quote(q, cfg->ciphers));
    if (cfg->ciphersuites && SSL_CTX_set_ciphersuites(ctx, cfg->ciphersuites) != 1)
        return fail(err, errlen, "ciphersuites %s are not usable",
                    quote(q, cfg->ciphersuites));
    if (cfg->groups && SSL_CTX_set1_groups_list(ctx, cfg->groups) != 1)
        return fail(err, errlen, "groups %s are not usable", quote(q, cfg->groups));

    if (SSL_CTX_set_session_id_context(ctx, session_id_ctx,
                                       (unsigned)(sizeof session_id_ctx - 1)) != 1)
        return fail(err, errlen, "cannot set the session ID context");
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, TLS_SESSION_CACHE_SIZE);

    if (cert) {
        if (!key) {
            if (err && errlen)
                snprintf(err, errlen, "certificate %s has no key configured", quote(q, cert));
            return -1;
        }
        if (use_keypair(ctx, cert, key, err, errlen) != 0)
            return -1;
    }

    if (cfg->client_certs == TLS_CLIENT_NONE) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
        return 0;
    }
    if (!cfg->ca) {
        if (err && errlen)
            snprintf(err, errlen, "client certificates are checked but no ca is configured");
        return -1;
    }
    if (SSL_CTX_load_verify_locations(ctx, cfg->ca, NULL) != 1)
        return fail(err, errlen, "cannot load the CA certificates from %s", quote(q, cfg->ca));
    /* The CertificateRequest names these CAs, so a client holding several certificates
     * picks one we accept. */
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca);
    if (!names)
        return fail(err, errlen, "no CA certificate names in %s", quote(q, cfg->ca));
    SSL_CTX_set_client_CA_list(ctx, names);
    if (cfg->crl) {
        X509_STORE *store = SSL_CTX_get_cert_store(ctx);
        X509_LOOKUP *lk = X509_STORE_add_lookup(store, X509_LOOKUP_file());
        if (!lk || X509_load_crl_file(lk, cfg->crl, X509_FILETYPE_PEM) <= 0)
            return fail(err, errlen, "cannot load the CRL from %s", quote(q, cfg->crl));
        X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
        X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_CRL_CHECK);
    }
    int mode = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE;
    if (cfg->client_certs == TLS_CLIENT_REQUIRED)
        mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, NULL);
    SSL_CTX_set_verify_depth(ctx, TLS_VERIFY_DEPTH);
    return 0;
}

int tls_server_configure_ctx(const struct tls_cfg *cfg, SSL_CTX *ctx, char *err,
                             size_t errlen)
{
    return configure(cfg, cfg->certificate, cfg->key, ctx, err, errlen);
}

/* The SNI context for NAME: an exact entry, else a "*.rest" entry when NAME is one label
 * followed by ".rest"; both case-insensitive. NULL: the default context serves. */
static SSL_CTX *sni_find(const struct tls_server *ts, const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > DNS_NAME_MAX)
        return NULL;
    for (size_t i = 0; i < ts->n_sni; i++)
        if (ts->sni[i].name[0] != '*' && strcasecmp(ts->sni[i].name, name) == 0)
            return ts->sni[i].ctx;
    const char *dot = strchr(name, '.');
    if (!dot || dot == name)
        return NULL;
    for (size_t i = 0; i < ts->n_sni; i++)
        if (ts->sni[i].name[0] == '*' && strcasecmp(ts->sni[i].name + 1, dot) == 0)
            return ts->sni[i].ctx;
    return NULL;
}

static int on_servername(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    const struct tls_server *ts = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name)
        return SSL_TLSEXT_ERR_OK;
    SSL_CTX *ctx = sni_find(ts, name);
    if (ctx && SSL_set_SSL_CTX(ssl, ctx) != ctx)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    /* An unknown name gets the default certificate rather than a refusal. */
    return SSL_TLSEXT_ERR_OK;
}

struct tls_server *tls_server_new(const struct tls_cfg *cfg, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!cfg->certificate) {
        if (err && errlen)
            snprintf(err, errlen, "no certificate configured: TLS is not enabled");
        return NULL;
    }
    struct tls_server *ts = calloc(1, sizeof *ts);
    if (!ts) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ts->cfg = cfg;
    atomic_init(&ts->refs, 1);
    pthread_once(&ssl_server_index_once, ssl_server_index_init);
    ts->ctx = SSL_CTX_new(TLS_server_method());
    if (!ts->ctx || ssl_server_index < 0) {
        fail(err, errlen, "cannot create the TLS context");
        goto fail;
    }
    if (configure(cfg, cfg->certificate, cfg->key, ts->ctx, err, errlen) != 0)
        goto fail;
    /* Set even without SNI entries: OpenSSL falls back to the servername callback of
     * the SSL's first context, which for a followed libwebsockets context is one that
     * cannot handle an SSL on a context not its own. */
    SSL_CTX_set_tlsext_servername_callback(ts->ctx, on_servername);
    SSL_CTX_set_tlsext_servername_arg(ts->ctx, ts);
    if (cfg->n_sni == 0)
        return ts;

    ts->sni = calloc(cfg->n_sni, sizeof *ts->sni);
    if (!ts->sni) {
        if (err && errlen)
            snprintf(err, errlen, "out of memory");
        goto fail;
    }
    char q[QUOTE_CAP];
    for (size_t i = 0; i < cfg->n_sni; i++) {
        const struct tls_sni_cfg *s = &cfg->sni[i];
        struct sni_ctx *sc = &ts->sni[ts->n_sni];
        sc->name = strdup(s->server_name);
        sc->ctx = SSL_CTX_new(TLS_server_method());
        if (!sc->name || !sc->ctx) {
            free(sc->name);
            SSL_CTX_free(sc->ctx);
            if (err && errlen)
                snprintf(err, errlen, "sni %s: out of memory", quote(q, s->server_name));
            goto fail;
        }
        ts->n_sni++;
        char why[512];
        if (configure(cfg, s->certificate, s->key, sc->ctx, why, sizeof why) != 0) {
            if (err && errlen)
                snprintf(err, errlen, "sni %s: %s", quote(q, s->server_name), why);
            goto fail;
        }
    }
    return ts;

fail:
    tls_server_unref(ts);
    return NULL;
}

SSL_CTX *tls_server_ctx(struct tls_server *ts)
{
    return ts->ctx;
}

SSL *tls_server_ssl_new(struct tls_server *ts)
{
    SSL *ssl = SSL_new(ts->ctx);
    if (ssl && ssl_tag(ssl, ts) != 0) {
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

const struct tls_cfg *tls_ssl_cfg(const SSL *ssl)
{
    if (!ssl || ssl_server_index < 0)
        return NULL;
    const struct tls_server *ts = SSL_get_ex_data(ssl, ssl_server_index);
    return ts ? ts->cfg : NULL;
}

/* OpenSSL 3.0's default key exchange groups, for a listener whose `groups` went away. */
#define TLS_DEFAULT_GROUPS \
    "x25519:secp256r1:x448:secp521r1:secp384r1:ffdhe2048:ffdhe3072:ffdhe4096:ffdhe6144:ffdhe8192"

/* Early in a ClientHello on a context made elsewhere: move the connection to the
 * current struct tls_server of the slot ARG, and give the SSL that server's settings,
 * since an SSL keeps the ones it copied from its first context at SSL_new(). */
static int on_foreign_client_hello(SSL *ssl, int *alert, void *arg)
{
    struct tls_server *_Atomic *slot = arg;
    struct tls_server *ts = atomic_load_explicit(slot, memory_order_acquire);
    if (!ts)
        return SSL_CLIENT_HELLO_SUCCESS; /* the context's own settings serve */
    const struct tls_cfg *cfg = ts->cfg;
    int ok = SSL_set_SSL_CTX(ssl, ts->ctx) == ts->ctx && ssl_tag(ssl, ts) == 0 &&
             SSL_set_min_proto_version(ssl, SSL_CTX_get_min_proto_version(ts->ctx)) == 1 &&
             SSL_set_cipher_list(ssl, cfg->ciphers ? cfg->ciphers
                                                   : OSSL_default_cipher_list()) == 1 &&
             SSL_set_ciphersuites(ssl, cfg->ciphersuites ? cfg->ciphersuites
                                                         : OSSL_default_ciphersuites()) == 1 &&
             SSL_set1_groups_list(ssl, cfg->groups ? cfg->groups : TLS_DEFAULT_GROUPS) == 1 &&
             X509_VERIFY_PARAM_set1(SSL_get0_param(ssl), SSL_CTX_get0_param(ts->ctx)) == 1;
    if (!ok) {
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_CLIENT_HELLO_ERROR;
    }
    SSL_set_options(ssl, SSL_CTX_get_options(ts->ctx));
    SSL_set_verify(ssl, SSL_CTX_get_verify_mode(ts->ctx), NULL);
    SSL_set_verify_depth(ssl, SSL_CTX_get_verify_depth(ts->ctx));
    return SSL_CLIENT_HELLO_SUCCESS;
}

void tls_server_follow(SSL_CTX *ctx, struct tls_server *_Atomic *slot)
{
    SSL_CTX_set_client_hello_cb(ctx, on_foreign_client_hello, slot);
}

void tls_server_on_last_unref(struct tls_server *ts, void (*fn)(void *arg), void *arg)
{
    ts->on_last_unref = fn;
    ts->on_last_unref_arg = arg;
}

void tls_server_unref(struct tls_server *ts)
{
    if (!ts || atomic_fetch_sub_explicit(&ts->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < ts->n_sni; i++) {
        SSL_CTX_free(ts->sni[i].ctx);
        free(ts->sni[i].name);
    }
    free(ts->sni);
    SSL_CTX_free(ts->ctx);
    void (*fn)(void *) = ts->on_last_unref;
    void *arg = ts->on_last_unref_arg;
    free(ts);
    if (fn)
        fn(arg);
}
/* ------------------------------------------------------------------ identity */

/* The peer certificate of a finished handshake that verified, or NULL. */
static X509 *verified_peer(const SSL *ssl)
{
    if (!ssl || !SSL_is_init_finished(ssl))
        return NULL;
    X509 *cert = SSL_get0_peer_certificate(ssl);
    if (!cert || SSL_get_verify_result(ssl) != X509_V_OK)
        return NULL;
    return cert;
}

/* Call VISIT(ARG, id, len) for each valid endpoint ID among CERT's subjectAltName URIs,
 * in order, until it returns nonzero. */
static void visit_cert_eids(const X509 *cert, size_t max_len,
                            int (*visit)(void *, const char *, size_t), void *arg)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (!gens)
        return;
    const size_t plen = sizeof TLS_EID_URI_PREFIX - 1;
    int n = sk_GENERAL_NAME_num(gens);
    for (int i = 0; i < n; i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
        if (gn->type != GEN_URI)
            continue;
        int len = ASN1_STRING_length(gn->d.uniformResourceIdentifier);
        const char *d = (const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
        if (len <= 0 || (size_t)len <= plen || strncasecmp(d, TLS_EID_URI_PREFIX, plen) != 0)
            continue;
        /* eid_check() bounds the length first and refuses NUL and every byte an ID
         * may not hold. */
        if (eid_check(d + plen, (size_t)len - plen, max_len) != EID_OK)
            continue;
        if (visit(arg, d + plen, (size_t)len - plen))
            break;
    }
    GENERAL_NAMES_free(gens);
}

/* Does CERT have a subjectAltName dNSName equal to NAME (N bytes), ignoring case? */
static int cert_has_dns(const X509 *cert, const char *name, size_t n)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (!gens)
        return 0;
    int found = 0;
    int count = sk_GENERAL_NAME_num(gens);
    for (int i = 0; i < count && !found; i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
        if (gn->type != GEN_DNS)
            continue;
        int len = ASN1_STRING_length(gn->d.dNSName);
        const char *d = (const char *)ASN1_STRING_get0_data(gn->d.dNSName);
        found = len > 0 && (size_t)len == n && !memchr(d, '\0', n) &&
                strncasecmp(d, name, n) == 0;
    }
    GENERAL_NAMES_free(gens);
    return found;
}

static size_t eid_cap(size_t max_eid_len)
{
    return max_eid_len < TLS_EID_MAX ? max_eid_len : TLS_EID_MAX;
}

struct collect {
    char (*ids)[TLS_EID_MAX + 1];
    size_t max, n;
};

static int collect_one(void *arg, const char *id, size_t len)
{
    struct collect *c = arg;
    memcpy(c->ids[c->n], id, len);
    c->ids[c->n][len] = '\0';
    return ++c->n == c->max;
}

int tls_peer_endpoint_ids(SSL *ssl, char (*ids)[TLS_EID_MAX + 1], size_t max_ids,
                          size_t max_eid_len)
{
    const X509 *cert = verified_peer(ssl);
    if (!cert)
        return -1;
    struct collect c = {ids, max_ids, 0};
    if (max_ids > 0)
        visit_cert_eids(cert, eid_cap(max_eid_len), collect_one, &c);
    return (int)c.n;
}

const char *tls_cn_mapped_id(const struct tls_cfg *cfg, SSL *ssl)
{
    if (!cfg || cfg->n_cn_map == 0)
        return NULL;
    const X509 *cert = verified_peer(ssl);
    if (!cert)
        return NULL;
    const X509_NAME *subj = X509_get_subject_name(cert);
    int idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
    /* Two CNs would make the mapping depend on which one we read. */
    if (idx < 0 || X509_NAME_get_index_by_NID(subj, NID_commonName, idx) >= 0)
        return NULL;
    const ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, v);
    if (n < 0)
        return NULL;
    const char *found = NULL;
    for (size_t i = 0; i < cfg->n_cn_map && !found; i++) {
        const char *cn = cfg->cn_map[i].cn;
        if (strlen(cn) == (size_t)n && memcmp(cn, utf8, (size_t)n) == 0)
            found = cfg->cn_map[i].endpoint_id;
    }
    OPENSSL_free(utf8);
    return found;
}

/* The first certificate ID (into ID) and whether DECLARED is among them. */
struct match {
    const char *declared;
    size_t dlen;
    char *id;
    size_t idcap;
    int any, found;
};

static int match_one(void *arg, const char *id, size_t len)
{
    struct match *m = arg;
    if (!m->any) {
        m->any = 1;
        memcpy(m->id, id, len);
        m->id[len] = '\0';
    }
    if (m->declared && len == m->dlen && memcmp(id, m->declared, len) == 0)
        m->found = 1;
    return m->found;
}

#define FQDN_PREFIX "fqdn::"

enum tls_identity tls_identity_check(const struct tls_cfg *cfg, SSL *ssl,
                                     const char *declared, size_t max_eid_len, char *id,
                                     size_t idcap)
{
    assert(cfg && id && idcap > 0);
    id[0] = '\0';
    size_t dlen = 0;
    if (declared) {
        dlen = strlen(declared);
        if (dlen >= idcap || eid_check(declared, dlen, max_eid_len) != EID_OK)
            return TLS_ID_INVALID;
    }
    if (ssl && !SSL_is_init_finished(ssl))
        return TLS_ID_NO_VERIFIED_CERT;
    const X509 *cert = verified_peer(ssl);
    if (!cert) {
        if (ssl && SSL_get0_peer_certificate(ssl))
            return TLS_ID_NO_VERIFIED_CERT; /* sent, but it did not verify */
        if (cfg->client_certs == TLS_CLIENT_REQUIRED)
            return TLS_ID_NO_VERIFIED_CERT;
        if (!declared)
            return TLS_ID_NONE;
        memcpy(id, declared, dlen + 1);
        return TLS_ID_DECLARED;
    }

    /* IDs that would not fit in ID cannot be handed out, so they count as invalid. */
    size_t cap = eid_cap(max_eid_len);
    if (cap > idcap - 1)
        cap = idcap - 1;
    struct match m = {declared, dlen, id, idcap, 0, 0};
    visit_cert_eids(cert, cap, match_one, &m);
    if (!m.found && declared && strncmp(declared, FQDN_PREFIX, sizeof FQDN_PREFIX - 1) == 0)
        m.found = cert_has_dns(cert, declared + sizeof FQDN_PREFIX - 1,
                               dlen - (sizeof FQDN_PREFIX - 1));
    if (m.found) {
        memcpy(id, declared, dlen + 1);
        return TLS_ID_CERT;
    }
    if (m.any)
        return declared ? TLS_ID_MISMATCH : TLS_ID_CERT;

    const char *mapped = tls_cn_mapped_id(cfg, ssl);
    if (!mapped)
        return TLS_ID_NO_CERT_ID;
    size_t mlen = strlen(mapped);
    if (mlen >= idcap)
        return TLS_ID_INVALID;
    memcpy(id, mapped, mlen + 1);
    if (!declared || strcmp(declared, mapped) == 0)
        return TLS_ID_CN_MAP;
    return TLS_ID_MISMATCH;
}

const char *tls_identity_name(enum tls_identity r)
{
    switch (r) {
    case TLS_ID_CERT: return "cert";
    case TLS_ID_CN_MAP: return "cn_map";
    case TLS_ID_DECLARED: return "declared";
    case TLS_ID_MISMATCH: return "mismatch";
    case TLS_ID_NO_CERT_ID: return "no_cert_id";
    case TLS_ID_NO_VERIFIED_CERT: return "no_verified_cert";
    case TLS_ID_NONE: return "none";
    case TLS_ID_INVALID: return "invalid";
    }
    return "?";
}

/* ------------------------------------------------------------------ config checks */

static SSL_CTX *scratch_ctx(char *err, size_t errlen)
{
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        fail(err, errlen, "cannot create a TLS context");
    return ctx;
}

int tls_check_ciphers(const char *list, char *err, size_t errlen)
{
    SSL_CTX *ctx = scratch_ctx(err, errlen);
    if (!ctx)
        return -1;
    int rc = 0;
    if (SSL_CTX_set_cipher_list(ctx, list) != 1)
        rc = fail(err, errlen, "selects no TLS 1.2 cipher");
    SSL_CTX_free(ctx);
    return rc;
}

/* Is NAME (N bytes) one of CTX's ciphers? */
static int ctx_has_cipher(SSL_CTX *ctx, const char *name, size_t n)
{
    STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(ctx);
    int count = sk_SSL_CIPHER_num(sk);
    for (int i = 0; i < count; i++) {
        const char *cn = SSL_CIPHER_get_name(sk_SSL_CIPHER_value(sk, i));
        if (strlen(cn) == n && memcmp(cn, name, n) == 0)
            return 1;
    }
    return 0;
}

/* OpenSSL skips unknown TLS 1.3 suite names silently, so each name is tried on its own
 * and looked up in the result. */
int tls_check_ciphersuites(const char *list, char *err, size_t errlen)
{
    if (*list == '\0') {
        if (err && errlen)
            snprintf(err, errlen, "is empty");
        return -1;
    }
    SSL_CTX *ctx = scratch_ctx(err, errlen);
    if (!ctx)
        return -1;
    int rc = 0;
    char q[QUOTE_CAP];
    for (const char *p = list; rc == 0;) {
        const char *end = strchr(p, ':');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char one[128];
        if (n == 0 || n >= sizeof one) {
            if (err && errlen && n)
                snprintf(err, errlen, "has a name longer than %zu bytes", sizeof one - 1);
            else if (err && errlen)
                snprintf(err, errlen, "has an empty name (\"::\" or a ':' at an end)");
            rc = -1;
            break;
        }
        memcpy(one, p, n);
        one[n] = '\0';
        if (SSL_CTX_set_ciphersuites(ctx, one) != 1 || !ctx_has_cipher(ctx, one, n)) {
            if (err && errlen)
                snprintf(err, errlen, "names unknown TLS 1.3 ciphersuite %s", quote(q, one));
            rc = -1;
        }
        if (!end)
            break;
        p = end + 1;
    }
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return rc;
}

int tls_check_groups(const char *list, char *err, size_t errlen)
{
    SSL_CTX *ctx = scratch_ctx(err, errlen);
    if (!ctx)
        return -1;
    int rc = 0;
    if (*list == '\0' || SSL_CTX_set1_groups_list(ctx, list) != 1)
        rc = fail(err, errlen, "names a group OpenSSL does not know");
    SSL_CTX_free(ctx);
    return rc;
}

int tls_check_keypair(const char *cert, const char *key, char *err, size_t errlen)
{
    SSL_CTX *ctx = scratch_ctx(err, errlen);
    if (!ctx)
        return -1;
    int rc = use_keypair(ctx, cert, key, err, errlen);
    SSL_CTX_free(ctx);
    return rc;
}

/* PATH holds at least one PEM certificate (CRL false) or CRL (CRL true). */
static int check_pem_file(const char *path, int crl, char *err, size_t errlen)
{
    ERR_clear_error();
    X509_STORE *store = X509_STORE_new();
    X509_LOOKUP *lk = store ? X509_STORE_add_lookup(store, X509_LOOKUP_file()) : NULL;
    int rc = 0;
    if (!lk || (crl ? X509_load_crl_file(lk, path, X509_FILETYPE_PEM)
                    : X509_load_cert_file(lk, path, X509_FILETYPE_PEM)) <= 0)
        rc = fail(err, errlen, crl ? "holds no PEM CRL" : "holds no PEM certificate");
    X509_STORE_free(store);
    return rc;
}

int tls_check_ca(const char *path, char *err, size_t errlen)
{
    return check_pem_file(path, 0, err, errlen);
}

int tls_check_crl(const char *path, char *err, size_t errlen)
{
    return check_pem_file(path, 1, err, errlen);
}

static int ldh(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-';
}

/* Count the labels of host name S, or return 0 when it is not one. */
static size_t host_labels(const char *s)
{
    size_t n = strlen(s), labels = 0;
    if (n == 0 || n > DNS_NAME_MAX)
        return 0;
    for (const char *p = s;;) {
        const char *end = strchr(p, '.');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || len > DNS_LABEL_MAX || p[0] == '-' || p[len - 1] == '-')
            return 0;
        for (size_t i = 0; i < len; i++)
            if (!ldh((unsigned char)p[i]))
                return 0;
        labels++;
        if (!end)
            return labels;
        p = end + 1;
    }
}

int tls_server_name_valid(const char *name)
{
    if (name[0] == '*') {
        if (name[1] != '.' || strlen(name) > DNS_NAME_MAX)
            return 0;
        return host_labels(name + 2) >= 2;
    }
    return host_labels(name) >= 1;
}
