/* test_tls.c — Check suite for relay/tls.c.
 *
 * Every certificate is made here with the OpenSSL API (two CAs, a server certificate,
 * SNI certificates, client certificates with and without endpoint IDs, an expired and a
 * revoked one, a CRL) and written to a temporary directory, since the server side reads
 * files as the relay does. Handshakes run in-process between a client SSL made here and
 * a server SSL from tls_server_new(), over a BIO pair, and the tests check what each
 * side saw.
 */
#include "relay/tls.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#define DAY (24L * 3600L)

struct ident {
    X509 *cert;
    EVP_PKEY *key;
};

static char g_dir[64];
static struct ident ca1, ca2, srv, sni_a, sni_w, c_one, c_two, c_bad, c_cn, c_other,
    c_expired, c_revoked, c_fqdn;
static EVP_PKEY *g_other_key;

/* Files in g_dir. */
static char p_ca1[128], p_ca2[128], p_crl1[128], p_srv[128], p_srv_key[128], p_sni_a[128],
    p_sni_a_key[128], p_sni_w[128], p_sni_w_key[128], p_other_key[128], p_junk[128];
static char *const g_files[] = {p_ca1, p_ca2, p_crl1, p_srv, p_srv_key, p_sni_a,
                                p_sni_a_key, p_sni_w, p_sni_w_key, p_other_key, p_junk};

/* ------------------------------------------------------------------ certificates */

static void add_ext(X509 *x, X509V3_CTX *v, int nid, const char *value)
{
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, v, nid, value);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

/* A certificate for CN (NULL: none) with a fresh P-256 key, signed by ISSUER (NULL:
 * self-signed), valid from FROM to UNTIL seconds relative to now. */
static struct ident make(const char *cn, const struct ident *issuer, long serial, long from,
                         long until, int is_ca, const char *san)
{
    struct ident id;
    id.key = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(id.key);
    X509 *x = X509_new();
    ck_assert_ptr_nonnull(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), from);
    X509_gmtime_adj(X509_getm_notAfter(x), until);
    X509_set_pubkey(x, id.key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)"usprelay test",
                               -1, -1, 0);
    if (cn)
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                   -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer->cert) : name);
    X509V3_CTX v;
    X509V3_set_ctx(&v, issuer ? issuer->cert : x, x, NULL, NULL, 0);
    add_ext(x, &v, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "CA:FALSE");
    add_ext(x, &v, NID_key_usage,
            is_ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
    add_ext(x, &v, NID_subject_key_identifier, "hash");
    if (issuer)
        add_ext(x, &v, NID_authority_key_identifier, "keyid:always");
    if (!is_ca)
        add_ext(x, &v, NID_ext_key_usage, "serverAuth,clientAuth");
    if (san)
        add_ext(x, &v, NID_subject_alt_name, san);
    ck_assert_int_gt(X509_sign(x, issuer ? issuer->key : id.key, EVP_sha256()), 0);
    id.cert = x;
    return id;
}

static void write_cert(const char *path, X509 *x)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(PEM_write_X509(f, x), 1);
    fclose(f);
}

static void write_key(const char *path, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

/* A CRL of CA1 revoking SERIAL. */
static void write_crl(const char *path, const struct ident *ca, long serial)
{
    X509_CRL *crl = X509_CRL_new();
    ck_assert_ptr_nonnull(crl);
    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert));
    ASN1_TIME *t = X509_gmtime_adj(NULL, -3600);
    X509_CRL_set1_lastUpdate(crl, t);
    X509_REVOKED *r = X509_REVOKED_new();
    ASN1_INTEGER *sn = ASN1_INTEGER_new();
    ASN1_INTEGER_set(sn, serial);
    X509_REVOKED_set_serialNumber(r, sn);
    X509_REVOKED_set_revocationDate(r, t);
    ASN1_INTEGER_free(sn);
    X509_CRL_add0_revoked(crl, r);
    X509_gmtime_adj(t, DAY);
    X509_CRL_set1_nextUpdate(crl, t);
    ASN1_TIME_free(t);
    X509_CRL_sort(crl);
    ck_assert_int_gt(X509_CRL_sign(crl, ca->key, EVP_sha256()), 0);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(PEM_write_X509_CRL(f, crl), 1);
    fclose(f);
    X509_CRL_free(crl);
}

static void file_path(char *dst, const char *name)
{
    snprintf(dst, 128, "%s/%s", g_dir, name);
}

static void setup_pki(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/usprelay-test-tls-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
    file_path(p_ca1, "ca1.pem");
    file_path(p_ca2, "ca2.pem");
    file_path(p_crl1, "crl1.pem");
    file_path(p_srv, "server.pem");
    file_path(p_srv_key, "server.key");
    file_path(p_sni_a, "sni-a.pem");
    file_path(p_sni_a_key, "sni-a.key");
    file_path(p_sni_w, "sni-w.pem");
    file_path(p_sni_w_key, "sni-w.key");
    file_path(p_other_key, "other.key");
    file_path(p_junk, "junk.pem");

    ca1 = make("Test CA 1", NULL, 1, -DAY, 3650 * DAY, 1, NULL);
    ca2 = make("Test CA 2", NULL, 1, -DAY, 3650 * DAY, 1, NULL);
    srv = make("relay.example.com", &ca1, 10, -DAY, 365 * DAY, 0, "DNS:relay.example.com");
    sni_a = make("a.example.org", &ca1, 11, -DAY, 365 * DAY, 0, "DNS:a.example.org");
    sni_w = make("wild.example.net", &ca1, 12, -DAY, 365 * DAY, 0, "DNS:*.example.net");
    c_one = make("client-one", &ca1, 20, -DAY, 365 * DAY, 0, "URI:urn:bbf:usp:id:os::00256D-1");
    c_two = make("client-two", &ca1, 21, -DAY, 365 * DAY, 0,
                 "URI:https://example.com/x,URI:urn:bbf:usp:id:self::a,"
                 "URI:URN:BBF:USP:ID:self::b");
    c_bad = make("bad-ids", &ca1, 22, -DAY, 365 * DAY, 0,
                 "URI:urn:bbf:usp:id:no-colons-here,URI:urn:bbf:usp:id:os::00256D 1");
    c_cn = make("legacy-device-7", &ca1, 23, -DAY, 365 * DAY, 0, NULL);
    c_other = make("client-other", &ca2, 24, -DAY, 365 * DAY, 0, "URI:urn:bbf:usp:id:self::o");
    c_expired = make("client-expired", &ca1, 25, -30 * DAY, -DAY, 0,
                     "URI:urn:bbf:usp:id:self::expired");
    c_revoked = make("client-revoked", &ca1, 26, -DAY, 365 * DAY, 0,
                     "URI:urn:bbf:usp:id:self::revoked");
    c_fqdn = make("agent", &ca1, 27, -DAY, 365 * DAY, 0, "DNS:agent.example.com");
    g_other_key = EVP_EC_gen("P-256");
    ck_assert_ptr_nonnull(g_other_key);

    write_cert(p_ca1, ca1.cert);
    write_cert(p_ca2, ca2.cert);
    write_crl(p_crl1, &ca1, 26);
    write_cert(p_srv, srv.cert);
    write_key(p_srv_key, srv.key);
    write_cert(p_sni_a, sni_a.cert);
    write_key(p_sni_a_key, sni_a.key);
    write_cert(p_sni_w, sni_w.cert);
    write_key(p_sni_w_key, sni_w.key);
    write_key(p_other_key, g_other_key);
    FILE *f = fopen(p_junk, "w");
    ck_assert_ptr_nonnull(f);
    fputs("not a PEM file\n", f);
    fclose(f);
}

static void free_ident(struct ident *id)
{
    X509_free(id->cert);
    EVP_PKEY_free(id->key);
    id->cert = NULL;
    id->key = NULL;
}

static void teardown_pki(void)
{
    for (size_t i = 0; i < sizeof g_files / sizeof g_files[0]; i++)
        unlink(g_files[i]);
    rmdir(g_dir);
    struct ident *all[] = {&ca1, &ca2, &srv, &sni_a, &sni_w, &c_one, &c_two, &c_bad,
                           &c_cn, &c_other, &c_expired, &c_revoked, &c_fqdn};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free_ident(all[i]);
    EVP_PKEY_free(g_other_key);
}

/* ------------------------------------------------------------------ handshakes */

/* The listener configuration the tests start from: server.pem, CA1 when MODE checks
 * client certificates. */
static struct tls_cfg base_cfg(enum tls_client_certs mode)
{
    struct tls_cfg c;
    memset(&c, 0, sizeof c);
    c.certificate = p_srv;
    c.key = p_srv_key;
    c.client_certs = mode;
    c.ca = mode == TLS_CLIENT_NONE ? NULL : p_ca1;
    c.min_version = TLS1_2_VERSION;
    return c;
}

static struct tls_server *server(const struct tls_cfg *cfg)
{
    char err[512];
    struct tls_server *ts = tls_server_new(cfg, err, sizeof err);
    ck_assert_msg(ts != NULL, "tls_server_new: %s", err);
    return ts;
}

/* Options for the client context (SSL_OP_NO_TICKET to resume from the server's cache). */
static uint64_t g_client_options;

/* When set, the server SSL's verify callback (to let a bad certificate through). */
static int (*g_server_verify_cb)(int, X509_STORE_CTX *);

/* When set, server SSLs are made on this context instead of by tls_server_ssl_new()
 * (a context made elsewhere, as libwebsockets makes one). */
static SSL_CTX *g_server_ctx;

struct conn {
    SSL_CTX *cctx;
    SSL *c, *s;
};

static int want_more(SSL *ssl, int r)
{
    int e = SSL_get_error(ssl, r);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/* Connect a client presenting ID (NULL: no certificate), trusting CA1, sending SNI
 * (NULL: none), at most MAX_VERSION (0: any), resuming SESS (NULL: a new session), to a
 * server SSL of TS. Returns 1 when both sides finished the handshake and exchanged a
 * byte each way (which also delivers TLS 1.3 session tickets), 0 when either failed. */
static int connect_to(struct tls_server *ts, const struct ident *id, const char *sni,
                      int max_version, SSL_SESSION *sess, struct conn *k)
{
    k->cctx = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(k->cctx);
    ck_assert_int_eq(X509_STORE_add_cert(SSL_CTX_get_cert_store(k->cctx), ca1.cert), 1);
    SSL_CTX_set_verify(k->cctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_options(k->cctx, g_client_options);
    if (max_version)
        SSL_CTX_set_max_proto_version(k->cctx, max_version);
    if (id) {
        ck_assert_int_eq(SSL_CTX_use_certificate(k->cctx, id->cert), 1);
        ck_assert_int_eq(SSL_CTX_use_PrivateKey(k->cctx, id->key), 1);
    }
    k->c = SSL_new(k->cctx);
    k->s = g_server_ctx ? SSL_new(g_server_ctx) : tls_server_ssl_new(ts);
    ck_assert_ptr_nonnull(k->c);
    ck_assert_ptr_nonnull(k->s);
    if (g_server_verify_cb)
        SSL_set_verify(k->s, SSL_get_verify_mode(k->s), g_server_verify_cb);
    if (sni)
        ck_assert_int_eq(SSL_set_tlsext_host_name(k->c, sni), 1);
    if (sess)
        ck_assert_int_eq(SSL_set_session(k->c, sess), 1);
    BIO *bc, *bs;
    ck_assert_int_eq(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
    SSL_set_bio(k->c, bc, bc);
    SSL_set_bio(k->s, bs, bs);
    SSL_set_connect_state(k->c);
    SSL_set_accept_state(k->s);

    int cdone = 0, sdone = 0, failed = 0;
    for (int i = 0; i < 64 && !(cdone && sdone) && !failed; i++) {
        if (!cdone) {
            int r = SSL_do_handshake(k->c);
            if (r == 1)
                cdone = 1;
            else if (!want_more(k->c, r))
                failed = 1;
        }
        if (!sdone && !failed) {
            int r = SSL_do_handshake(k->s);
            if (r == 1)
                sdone = 1;
            else if (!want_more(k->s, r))
                failed = 1;
        }
    }
    ERR_clear_error();
    if (!cdone || !sdone)
        return 0;
    char b = 0;
    if (SSL_write(k->s, "s", 1) != 1 || SSL_read(k->c, &b, 1) != 1 || b != 's')
        return 0;
    if (SSL_write(k->c, "c", 1) != 1 || SSL_read(k->s, &b, 1) != 1 || b != 'c')
        return 0;
    return 1;
}

/* A clean close (close_notify both ways), or OpenSSL would drop the session from the
 * caches as possibly compromised. */
static void conn_free(struct conn *k)
{
    if (k->c && k->s && SSL_is_init_finished(k->c) && SSL_is_init_finished(k->s)) {
        SSL_shutdown(k->c);
        SSL_shutdown(k->s);
        SSL_shutdown(k->c);
    }
    ERR_clear_error();
    SSL_free(k->c);
    SSL_free(k->s);
    SSL_CTX_free(k->cctx);
    memset(k, 0, sizeof *k);
}

/* Handshake and tear down; returns whether it succeeded, and the server's verify result
 * in *VERIFY when not NULL. */
static int try_connect(struct tls_server *ts, const struct ident *id, int max_version,
                       long *verify)
{
    struct conn k;
    int ok = connect_to(ts, id, NULL, max_version, NULL, &k);
    if (verify)
        *verify = SSL_get_verify_result(k.s);
    conn_free(&k);
    return ok;
}

/* The subject CN of the certificate the client received. */
static void peer_cn(SSL *c, char *buf, int cap)
{
    X509 *x = SSL_get0_peer_certificate(c);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_gt(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, buf,
                                               cap),
                     0);
}

static const int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};

/* ------------------------------------------------------------------ client_certs modes */

START_TEST(required_mode)
{
    struct tls_cfg cfg = base_cfg(TLS_CLIENT_REQUIRED);
    struct tls_server *ts = server(&cfg);
    for (size_t v = 0; v < 2; v++) {
        struct conn k;
        ck_assert_msg(connect_to(ts, &c_one, NULL, versions[v], NULL, &k), "v=%zu", v);
        ck_assert_int_eq(SSL_version(k.s), versions[v]);
        char ids[4][TLS_EID_MAX + 1];
        ck_assert_int_eq(tls_peer_endpoint_ids(k.s, ids, 4, 256), 1);
        ck_assert_str_eq(ids[0], "os::00256D-1");
        conn_free(&k);

        long vr = -1;
        ck_assert_int_eq(try_connect(ts, NULL, versions[v], &vr), 0);
        ck_assert_int_eq(vr, X509_V_OK); /* refused for the missing certificate */
    }
    tls_server_unref(ts);
}
END_TEST

START_TEST(optional_mode)
{
    struct tls_cfg cfg = base_cfg(TLS_CLIENT_OPTIONAL);
    struct tls_server *ts = server(&cfg);
    struct conn k;
    char ids[2][TLS_EID_MAX + 1];
    char id[257];

    ck_assert_int_eq(connect_to(ts, NULL, NULL, 0, NULL, &k), 1);
    ck_assert_int_eq(tls_peer_endpoint_ids(k.s, ids, 2, 256), -1);
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, "self::x", 256, id, sizeof id),
                     TLS_ID_DECLARED);
    ck_assert_str_eq(id, "self::x");
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, NULL, 256, id, sizeof id), TLS_ID_NONE);
    ck_assert_str_eq(id, "");
    conn_free(&k);

    ck_assert_int_eq(connect_to(ts, &c_one, NULL, 0, NULL, &k), 1);
    ck_assert_int_eq(tls_peer_endpoint_ids(k.s, ids, 2, 256), 1);
    ck_assert_str_eq(ids[0], "os::00256D-1");
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, "self::x", 256, id, sizeof id),
                     TLS_ID_MISMATCH);
    conn_free(&k);

    /* A certificate that does not verify is refused even when certificates are
     * optional. */
    long vr = 0;
    ck_assert_int_eq(try_connect(ts, &c_other, 0, &vr), 0);
    ck_assert_int_eq(vr, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    tls_server_unref(ts);
}
END_TEST

START_TEST(none_mode)
{
    struct tls_cfg cfg = base_cfg(TLS_CLIENT_NONE);
    struct tls_server *ts = server(&cfg);
    struct conn k;
    char ids[2][TLS_EID_MAX + 1];
    char id[257];
    /* The client holds a certificate, but the server never asks for it. */
    ck_assert_int_eq(connect_to(ts, &c_one, NULL, 0, NULL, &k), 1);
    ck_assert_ptr_null(SSL_get0_peer_certificate(k.s));
    ck_assert_int_eq(tls_peer_endpoint_ids(k.s, ids, 2, 256), -1);
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, "os::00256D-9", 256, id, sizeof id),
                     TLS_ID_DECLARED);
    ck_assert_str_eq(id, "os::00256D-9");
    conn_free(&k);
    tls_server_unref(ts);
}
END_TEST

START_TEST(verify_failures)
{
    struct tls_cfg cfg = base_cfg(TLS_CLIENT_REQUIRED);
    struct tls_server *ts = server(&cfg);
    for (size_t v = 0; v < 2; v++) {
        long vr = 0;
        ck_assert_int_eq(try_connect(ts, &c_other, versions[v], &vr), 0);
        ck_assert_int_eq(vr, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
        ck_assert_int_eq(try_connect(ts, &c_expired, versions[v], &vr), 0);
        ck_assert_int_eq(vr, X509_V_ERR_CERT_HAS_EXPIRED);
        /* No CRL configured: the revoked certificate still passes. */
        ck_assert_int_eq(try_connect(ts, &c_revoked, versions[v], &vr), 1);
    }
    tls_server_unref(ts);

    cfg.crl = p_crl1;
    ts = server(&cfg);
    for (size_t v = 0; v < 2; v++) {
        long vr = 0;
        ck_assert_int_eq(try_connect(ts, &c_revoked, versions[v], &vr), 0);
        ck_assert_int_eq(vr, X509_V_ERR_CERT_REVOKED);
        ck_assert_int_eq(try_connect(ts, &c_one, versions[v], &vr), 1);
        ck_assert_int_eq(vr, X509_V_OK);
    }
    tls_server_unref(ts);

    /* Trusting CA2 instead turns the tables. */
    cfg = base_cfg(TLS_CLIENT_REQUIRED);
    cfg.ca = p_ca2;
    ts = server(&cfg);
    ck_assert_int_eq(try_connect(ts, &c_other, 0, NULL), 1);
    ck_assert_int_eq(try_connect(ts, &c_one, 0, NULL), 0);
    tls_server_unref(ts);
}
END_TEST

/* ------------------------------------------------------------------ identities */

static int accept_anything(int preverify_ok, X509_STORE_CTX *x)
{
    (void)preverify_ok, (void)x;
    return 1;
}

/* A context whose verify callback lets failures through (as an application's own
 * callback might) still yields no identity from a certificate that did not verify. */
START_TEST(unverified_certificate_ignored)
{
    struct tls_cn_map_cfg map[] = {{"client-other", "self::o"}};
    struct tls_cfg cfg = base_cfg(TLS_CLIENT_OPTIONAL);
    cfg.cn_map = map;
    cfg.n_cn_map = 1;
    struct tls_server *ts = server(&cfg);
    g_server_verify_cb = accept_anything;
    struct conn k;
    ck_assert_int_eq(connect_to(ts, &c_other, NULL, 0, NULL, &k), 1);
    g_server_verify_cb = NULL;
    ck_assert_ptr_nonnull(SSL_get0_peer_certificate(k.s));
    ck_assert_int_ne(SSL_get_verify_result(k.s), X509_V_OK);
    char ids[2][TLS_EID_MAX + 1];
    char id[64];
    ck_assert_int_eq(tls_peer_endpoint_ids(k.s, ids, 2, 256), -1);
    ck_assert_ptr_null(tls_cn_mapped_id(&cfg, k.s));
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, "self::o", 256, id, sizeof id),
                     TLS_ID_NO_VERIFIED_CERT);
    ck_assert_str_eq(id, "");
    conn_free(&k);
    tls_server_unref(ts);
}
END_TEST

START_TEST(peer_endpoint_ids)
{
    struct tls_cfg cfg = base_cfg(TLS_CLIENT_REQUIRED);
    struct tls_server *ts = server(&cfg);
    struct conn k;
    char ids[4][TLS_EID_MAX + 1];

    ck_assert_int_eq(connect_to(ts, &c_two, NULL, 0, NULL, &k), 1);
    ck_assert_int_eq(tls_peer_endpoint_ids(k.s, ids, 4, 256), 2);
    ck_assert_str_eq(ids[0], "self::a");
    ck_assert_str_eq(ids[1], "self::b"); /* its prefix is upper-case */
    memset(ids, 'X', sizeof ids);
    ck_assert_int_eq(tls_peer_endpoint_ids(k.s, ids, 1, 256), 1);
    ck_assert_str_eq(ids[0], "self::a");
    ck_assert_int_eq(ids[1][0], 'X');
    ck_assert_int_eq(tls_peer_endpoint_ids(k.s, ids, 0, 256), 0);
    conn_free(&k);

    ck_assert_int_eq(connect_to(ts, &c_bad, NULL, 0, NULL, &k), 1);
    ck_assert_int_eq(tls_peer_endpoint_ids(k.s, ids, 4, 256), 0);
    conn_free(&k);

    ck_assert_int_eq(connect_to(ts, &c_cn, NULL, 0, NULL, &k), 1);
    ck_assert_int_eq(tls_peer_endpoint_ids(k.s, ids, 4, 256), 0);
    conn_free(&k);

    /* "os::00256D-1" is 12 bytes: a lower max_endpoint_id_length drops it. */
    ck_assert_int_eq(connect_to(ts, &c_one, NULL, 0, NULL, &k), 1);
    ck_assert_int_eq(tls_peer_endpoint_ids(k.s, ids, 4, 12), 1);
    ck_assert_int_eq(tls_peer_endpoint_ids(k.s, ids, 4, 11), 0);
    conn_free(&k);

    /* Before the handshake there is nothing verified to read. */
    SSL *s = tls_server_ssl_new(ts);
    ck_assert_int_eq(tls_peer_endpoint_ids(s, ids, 4, 256), -1);
    char id[64];
    ck_assert_int_eq(tls_identity_check(&cfg, s, "self::a", 256, id, sizeof id),
                     TLS_ID_NO_VERIFIED_CERT);
    SSL_free(s);
    tls_server_unref(ts);
}
END_TEST

START_TEST(identity_from_san)
{
    struct tls_cfg cfg = base_cfg(TLS_CLIENT_REQUIRED);
    struct tls_server *ts = server(&cfg);
    struct conn k;
    char id[257];

    ck_assert_int_eq(connect_to(ts, &c_one, NULL, 0, NULL, &k), 1);
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, NULL, 256, id, sizeof id), TLS_ID_CERT);
    ck_assert_str_eq(id, "os::00256D-1");
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, "os::00256D-1", 256, id, sizeof id),
                     TLS_ID_CERT);
    ck_assert_str_eq(id, "os::00256D-1");
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, "os::00256D-2", 256, id, sizeof id),
                     TLS_ID_MISMATCH);
    ck_assert_str_eq(id, "os::00256D-1");
    /* Byte-exact: another case is another ID. */
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, "os::00256d-1", 256, id, sizeof id),
                     TLS_ID_MISMATCH);
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, "no-colons", 256, id, sizeof id),
                     TLS_ID_INVALID);
    ck_assert_str_eq(id, "");
    /* The ID buffer bounds what can be handed out. */
    char small[8];
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, "os::00256D-1", 256, small, sizeof small),
                     TLS_ID_INVALID);
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, NULL, 256, small, sizeof small),
                     TLS_ID_NO_CERT_ID);
    conn_free(&k);

    ck_assert_int_eq(connect_to(ts, &c_two, NULL, 0, NULL, &k), 1);
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, "self::b", 256, id, sizeof id),
                     TLS_ID_CERT);
    ck_assert_str_eq(id, "self::b");
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, NULL, 256, id, sizeof id), TLS_ID_CERT);
    ck_assert_str_eq(id, "self::a");
    conn_free(&k);

    /* Only invalid IDs and no cn_map: the certificate identifies nobody. */
    ck_assert_int_eq(connect_to(ts, &c_bad, NULL, 0, NULL, &k), 1);
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, "self::x", 256, id, sizeof id),
                     TLS_ID_NO_CERT_ID);
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, NULL, 256, id, sizeof id),
                     TLS_ID_NO_CERT_ID);
    conn_free(&k);

    /* fqdn:: IDs may be carried as a dNSName (R-SEC.0a). */
    ck_assert_int_eq(connect_to(ts, &c_fqdn, NULL, 0, NULL, &k), 1);
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, "fqdn::Agent.Example.com", 256, id,
                                        sizeof id),
                     TLS_ID_CERT);
    ck_assert_str_eq(id, "fqdn::Agent.Example.com");
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, "fqdn::other.example.com", 256, id,
                                        sizeof id),
                     TLS_ID_NO_CERT_ID);
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, NULL, 256, id, sizeof id),
                     TLS_ID_NO_CERT_ID);
    conn_free(&k);
    tls_server_unref(ts);

    /* No TLS at all. */
    struct tls_cfg plain;
    memset(&plain, 0, sizeof plain);
    ck_assert_int_eq(tls_identity_check(&plain, NULL, "self::x", 256, id, sizeof id),
                     TLS_ID_DECLARED);
    ck_assert_str_eq(id, "self::x");
    ck_assert_int_eq(tls_identity_check(&plain, NULL, NULL, 256, id, sizeof id), TLS_ID_NONE);
    ck_assert_int_eq(tls_identity_check(&cfg, NULL, "self::x", 256, id, sizeof id),
                     TLS_ID_NO_VERIFIED_CERT);
}
END_TEST

START_TEST(identity_from_cn_map)
{
    struct tls_cn_map_cfg map[] = {{"client-one", "self::from-cn-1"},
                                   {"legacy-device-7", "self::legacy7"}};
    struct tls_cfg cfg = base_cfg(TLS_CLIENT_OPTIONAL);
    cfg.cn_map = map;
    cfg.n_cn_map = 2;
    struct tls_server *ts = server(&cfg);
    struct conn k;
    char id[257];

    ck_assert_int_eq(connect_to(ts, &c_cn, NULL, 0, NULL, &k), 1);
    ck_assert_ptr_eq(tls_cn_mapped_id(&cfg, k.s), map[1].endpoint_id);
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, NULL, 256, id, sizeof id), TLS_ID_CN_MAP);
    ck_assert_str_eq(id, "self::legacy7");
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, "self::legacy7", 256, id, sizeof id),
                     TLS_ID_CN_MAP);
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, "self::other", 256, id, sizeof id),
                     TLS_ID_MISMATCH);
    ck_assert_str_eq(id, "self::legacy7");
    /* Without cn_map the same certificate identifies nobody. */
    struct tls_cfg nomap = cfg;
    nomap.n_cn_map = 0;
    ck_assert_ptr_null(tls_cn_mapped_id(&nomap, k.s));
    ck_assert_int_eq(tls_identity_check(&nomap, k.s, NULL, 256, id, sizeof id),
                     TLS_ID_NO_CERT_ID);
    conn_free(&k);

    /* The SAN wins over cn_map; tls_cn_mapped_id() itself looks at the CN only. */
    ck_assert_int_eq(connect_to(ts, &c_one, NULL, 0, NULL, &k), 1);
    ck_assert_str_eq(tls_cn_mapped_id(&cfg, k.s), "self::from-cn-1");
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, NULL, 256, id, sizeof id), TLS_ID_CERT);
    ck_assert_str_eq(id, "os::00256D-1");
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, "self::from-cn-1", 256, id, sizeof id),
                     TLS_ID_MISMATCH);
    conn_free(&k);

    /* A CN with no entry. */
    ck_assert_int_eq(connect_to(ts, &c_bad, NULL, 0, NULL, &k), 1);
    ck_assert_ptr_null(tls_cn_mapped_id(&cfg, k.s));
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, "self::x", 256, id, sizeof id),
                     TLS_ID_NO_CERT_ID);
    conn_free(&k);

    /* No certificate on an optional listener: the declared ID stands. */
    ck_assert_int_eq(connect_to(ts, NULL, NULL, 0, NULL, &k), 1);
    ck_assert_ptr_null(tls_cn_mapped_id(&cfg, k.s));
    ck_assert_int_eq(tls_identity_check(&cfg, k.s, "self::legacy7", 256, id, sizeof id),
                     TLS_ID_DECLARED);
    conn_free(&k);
    tls_server_unref(ts);
}
END_TEST

START_TEST(identity_names)
{
    ck_assert_str_eq(tls_identity_name(TLS_ID_CERT), "cert");
    ck_assert_str_eq(tls_identity_name(TLS_ID_CN_MAP), "cn_map");
    ck_assert_str_eq(tls_identity_name(TLS_ID_DECLARED), "declared");
    ck_assert_str_eq(tls_identity_name(TLS_ID_MISMATCH), "mismatch");
    ck_assert_str_eq(tls_identity_name(TLS_ID_NO_CERT_ID), "no_cert_id");
    ck_assert_str_eq(tls_identity_name(TLS_ID_NO_VERIFIED_CERT), "no_verified_cert");
    ck_assert_str_eq(tls_identity_name(TLS_ID_NONE), "none");
    ck_assert_str_eq(tls_identity_name(TLS_ID_INVALID), "invalid");
    ck_assert_str_eq(tls_identity_name((enum tls_identity)42), "?");
}
END_TEST

/* ------------------------------------------------------------------ server options */

START_TEST(sni_selects_certificate)
{
    struct tls_sni_cfg sni[] = {{"*.example.net", p_sni_w, p_sni_w_key},
                                {"a.example.org", p_sni_a, p_sni_a_key}};
    struct tls_cfg cfg = base_cfg(TLS_CLIENT_REQUIRED);
    cfg.sni = sni;
    cfg.n_sni = 2;
    struct tls_server *ts = server(&cfg);
    static const struct {
        const char *sent, *cn;
    } cases[] = {
        {"a.example.org", "a.example.org"},     {"A.Example.ORG", "a.example.org"},
        {"x.example.net", "wild.example.net"},  {"X-1.EXAMPLE.net", "wild.example.net"},
        {"y.x.example.net", "relay.example.com"}, {"example.net", "relay.example.com"},
        {"b.example.org", "relay.example.com"}, {NULL, "relay.example.com"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t v = 0; v < 2; v++) {
            struct conn k;
            ck_assert_msg(connect_to(ts, &c_one, cases[i].sent, versions[v], NULL, &k),
                          "%s", cases[i].sent ? cases[i].sent : "(none)");
            char cn[128];
            peer_cn(k.c, cn, sizeof cn);
            ck_assert_msg(strcmp(cn, cases[i].cn) == 0, "%s: got %s, want %s",
                          cases[i].sent ? cases[i].sent : "(none)", cn, cases[i].cn);
            /* Client verification still holds on the SNI context. */
            char ids[1][TLS_EID_MAX + 1];
            ck_assert_int_eq(tls_peer_endpoint_ids(k.s, ids, 1, 256), 1);
            conn_free(&k);
        }
        struct conn k;
        ck_assert_int_eq(connect_to(ts, NULL, cases[i].sent, 0, NULL, &k), 0);
        conn_free(&k);
        ck_assert_int_eq(connect_to(ts, &c_other, cases[i].sent, 0, NULL, &k), 0);
        conn_free(&k);
    }
    tls_server_unref(ts);
}
END_TEST

START_TEST(min_version_13)
{
    struct tls_cfg cfg = base_cfg(TLS_CLIENT_NONE);
    struct tls_server *ts = server(&cfg);
    struct conn k;
    ck_assert_int_eq(connect_to(ts, NULL, NULL, TLS1_2_VERSION, NULL, &k), 1);
    ck_assert_int_eq(SSL_version(k.c), TLS1_2_VERSION);
    conn_free(&k);
    tls_server_unref(ts);

    cfg.min_version = TLS1_3_VERSION;
    ts = server(&cfg);
    ck_assert_int_eq(connect_to(ts, NULL, NULL, TLS1_2_VERSION, NULL, &k), 0);
    conn_free(&k);
    ck_assert_int_eq(connect_to(ts, NULL, NULL, 0, NULL, &k), 1);
    ck_assert_int_eq(SSL_version(k.c), TLS1_3_VERSION);
    conn_free(&k);
    tls_server_unref(ts);
}
END_TEST

START_TEST(session_resumption)
{
    struct tls_cfg cfg = base_cfg(TLS_CLIENT_REQUIRED);
    struct tls_server *ts = server(&cfg);
    /* TLS 1.2 with a ticket, TLS 1.2 from the server's session cache, TLS 1.3. */
    static const struct {
        int version;
        uint64_t options;
    } runs[] = {{TLS1_2_VERSION, 0}, {TLS1_2_VERSION, SSL_OP_NO_TICKET}, {TLS1_3_VERSION, 0}};
    for (size_t v = 0; v < 3; v++) {
        struct conn k;
        g_client_options = runs[v].options;
        ck_assert_int_eq(connect_to(ts, &c_one, NULL, runs[v].version, NULL, &k), 1);
        ck_assert_int_eq(SSL_session_reused(k.s), 0);
        SSL_SESSION *sess = SSL_get1_session(k.c);
        ck_assert_ptr_nonnull(sess);
        ck_assert_int_eq(SSL_SESSION_is_resumable(sess), 1);
        conn_free(&k);

        ck_assert_msg(connect_to(ts, &c_one, NULL, runs[v].version, sess, &k), "v=%zu", v);
        ck_assert_int_eq(SSL_version(k.s), runs[v].version);
        ck_assert_msg(SSL_session_reused(k.c) == 1, "v=%zu: client did not resume", v);
        ck_assert_int_eq(SSL_session_reused(k.s), 1);
        /* The identity survives resumption. */
        char ids[2][TLS_EID_MAX + 1];
        ck_assert_int_eq(tls_peer_endpoint_ids(k.s, ids, 2, 256), 1);
        ck_assert_str_eq(ids[0], "os::00256D-1");
        char id[64];
        ck_assert_int_eq(tls_identity_check(&cfg, k.s, NULL, 256, id, sizeof id),
                         TLS_ID_CERT);
        ck_assert_str_eq(id, "os::00256D-1");
        conn_free(&k);
        SSL_SESSION_free(sess);
    }
    g_client_options = 0;
    ck_assert_int_ge(SSL_CTX_sess_number(tls_server_ctx(ts)), 1); /* the no-ticket run */
    tls_server_unref(ts);
}
END_TEST

START_TEST(ciphers_suites_groups)
{
    struct tls_cfg cfg = base_cfg(TLS_CLIENT_NONE);
    cfg.ciphers = "ECDHE-ECDSA-AES256-GCM-SHA384";
    cfg.ciphersuites = "TLS_CHACHA20_POLY1305_SHA256";
    cfg.groups = "P-384";
    struct tls_server *ts = server(&cfg);
    struct conn k;
    ck_assert_int_eq(connect_to(ts, NULL, NULL, TLS1_2_VERSION, NULL, &k), 1);
    ck_assert_str_eq(SSL_CIPHER_get_name(SSL_get_current_cipher(k.c)),
                     "ECDHE-ECDSA-AES256-GCM-SHA384");
    ck_assert_int_eq(SSL_get_negotiated_group(k.s), NID_secp384r1);
    conn_free(&k);
    ck_assert_int_eq(connect_to(ts, NULL, NULL, 0, NULL, &k), 1);
    ck_assert_str_eq(SSL_CIPHER_get_name(SSL_get_current_cipher(k.c)),
                     "TLS_CHACHA20_POLY1305_SHA256");
    ck_assert_int_eq(SSL_get_negotiated_group(k.s), NID_secp384r1);
    /* Renegotiation is off. */
    ck_assert_uint_ne(SSL_get_options(k.s) & SSL_OP_NO_RENEGOTIATION, 0);
    conn_free(&k);
    tls_server_unref(ts);
}
END_TEST

/* libwebsockets makes its own context; configure_ctx gives it the same behaviour. */
START_TEST(configure_foreign_ctx)
{
    struct tls_cfg cfg = base_cfg(TLS_CLIENT_REQUIRED);
    cfg.crl = p_crl1;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    ck_assert_ptr_nonnull(ctx);
    char err[512];
    ck_assert_msg(tls_server_configure_ctx(&cfg, ctx, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(SSL_CTX_get_verify_mode(ctx),
                     SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT | SSL_VERIFY_CLIENT_ONCE);
    ck_assert_int_eq(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
    ck_assert_uint_ne(SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION, 0);
    ck_assert_int_eq(SSL_CTX_get_session_cache_mode(ctx), SSL_SESS_CACHE_SERVER);
    ck_assert_int_gt(SSL_CTX_sess_get_cache_size(ctx), 0);
    ck_assert_uint_eq(SSL_CTX_get_options(ctx) & SSL_OP_NO_TICKET, 0);
    ck_assert_int_eq(sk_X509_NAME_num(SSL_CTX_get_client_CA_list(ctx)), 1);
    ck_assert_uint_ne(X509_VERIFY_PARAM_get_flags(SSL_CTX_get0_param(ctx)) &
                          X509_V_FLAG_CRL_CHECK,
                      0);
    ck_assert_ptr_nonnull(SSL_CTX_get0_certificate(ctx));
    SSL_CTX_free(ctx);

    /* Without a certificate in the configuration the context keeps its own. */
    cfg.certificate = NULL;
    ctx = SSL_CTX_new(TLS_server_method());
    ck_assert_int_eq(tls_server_configure_ctx(&cfg, ctx, err, sizeof err), 0);
    ck_assert_ptr_null(SSL_CTX_get0_certificate(ctx));
    SSL_CTX_free(ctx);
}
END_TEST

/* A context made elsewhere that follows a slot: each handshake gets the settings, SNI
 * certificates and identity configuration of the tls_server in the slot when it starts. */
START_TEST(follow_slot)
{
    struct tls_cfg outer_cfg = base_cfg(TLS_CLIENT_NONE);
    SSL_CTX *outer = SSL_CTX_new(TLS_server_method());
    ck_assert_ptr_nonnull(outer);
    char err[512];
    ck_assert_msg(tls_server_configure_ctx(&outer_cfg, outer, err, sizeof err) == 0, "%s", err);
    struct tls_server *_Atomic slot = NULL;
    tls_server_follow(outer, &slot);
    g_server_ctx = outer;

    struct tls_sni_cfg sni[] = {{"a.example.org", p_sni_a, p_sni_a_key}};
    struct tls_cfg req = base_cfg(TLS_CLIENT_REQUIRED);
    req.sni = sni;
    req.n_sni = 1;
    req.min_version = TLS1_3_VERSION;
    struct tls_cfg none = base_cfg(TLS_CLIENT_NONE);
    struct tls_server *ts_req = server(&req), *ts_none = server(&none);
    struct conn k;
    char cn[128];

    /* Empty slot: the context's own settings (no client certificate asked for). */
    ck_assert_int_eq(connect_to(NULL, NULL, NULL, 0, NULL, &k), 1);
    ck_assert_ptr_null(tls_ssl_cfg(k.s));
    conn_free(&k);

    atomic_store(&slot, ts_req);
    ck_assert_int_eq(connect_to(NULL, NULL, NULL, 0, NULL, &k), 0); /* now required */
    conn_free(&k);
    ck_assert_int_eq(connect_to(NULL, &c_one, NULL, TLS1_2_VERSION, NULL, &k), 0); /* 1.3 */
    conn_free(&k);
    ck_assert_int_eq(connect_to(NULL, &c_other, NULL, 0, NULL, &k), 0); /* CA2: unknown */
    conn_free(&k);
    ck_assert_int_eq(connect_to(NULL, &c_one, "a.example.org", 0, NULL, &k), 1);
    peer_cn(k.c, cn, sizeof cn);
    ck_assert_str_eq(cn, "a.example.org");
    ck_assert_ptr_eq(tls_ssl_cfg(k.s), &req);
    char id[TLS_EID_MAX + 1];
    ck_assert_int_eq(tls_identity_check(tls_ssl_cfg(k.s), k.s, NULL, 256, id, sizeof id),
                     TLS_ID_CERT);
    ck_assert_str_eq(id, "os::00256D-1");
    SSL *before = k.s;

    /* Swapped: new handshakes follow the new server, the open connection is untouched. */
    atomic_store(&slot, ts_none);
    struct conn k2;
    ck_assert_int_eq(connect_to(NULL, NULL, "a.example.org", 0, NULL, &k2), 1);
    peer_cn(k2.c, cn, sizeof cn);
    ck_assert_str_eq(cn, "relay.example.com");
    ck_assert_ptr_eq(tls_ssl_cfg(k2.s), &none);
    conn_free(&k2);
    char b = 0;
    ck_assert_int_eq(SSL_write(k.c, "x", 1), 1);
    ck_assert_int_eq(SSL_read(before, &b, 1), 1);
    ck_assert_int_eq(b, 'x');
    ck_assert_ptr_eq(tls_ssl_cfg(before), &req);
    conn_free(&k);

    g_server_ctx = NULL;
    SSL_CTX_free(outer);
    tls_server_unref(ts_req);
    tls_server_unref(ts_none);
}
END_TEST

static void count_release(void *arg)
{
    (*(int *)arg)++;
}

/* A server lives while its holder or any SSL it set up does; then the hook runs once. */
START_TEST(server_lives_with_its_connections)
{
    struct tls_cfg cfg = base_cfg(TLS_CLIENT_REQUIRED);
    struct tls_server *ts = server(&cfg);
    int released = 0;
    tls_server_on_last_unref(ts, count_release, &released);
    struct conn k1, k2;
    ck_assert_int_eq(connect_to(ts, &c_one, NULL, 0, NULL, &k1), 1);
    ck_assert_int_eq(connect_to(ts, &c_one, NULL, TLS1_2_VERSION, NULL, &k2), 1);
    tls_server_unref(ts); /* the holder lets go: two connections still use it */
    ck_assert_int_eq(released, 0);
    ck_assert_ptr_eq(tls_ssl_cfg(k1.s), &cfg);
    char b = 0;
    ck_assert_int_eq(SSL_write(k1.c, "y", 1), 1);
    ck_assert_int_eq(SSL_read(k1.s, &b, 1), 1);
    conn_free(&k1);
    ck_assert_int_eq(released, 0);
    conn_free(&k2);
    ck_assert_int_eq(released, 1);

    /* Through a followed context as well, and a slot swap releases nothing in use. */
    struct tls_cfg none = base_cfg(TLS_CLIENT_NONE);
    SSL_CTX *outer = SSL_CTX_new(TLS_server_method());
    char err[512];
    ck_assert_msg(tls_server_configure_ctx(&none, outer, err, sizeof err) == 0, "%s", err);
    ts = server(&cfg);
    released = 0;
    tls_server_on_last_unref(ts, count_release, &released);
    struct tls_server *_Atomic slot = ts;
    tls_server_follow(outer, &slot);
    g_server_ctx = outer;
    ck_assert_int_eq(connect_to(NULL, &c_one, NULL, 0, NULL, &k1), 1);
    atomic_store(&slot, NULL);
    tls_server_unref(ts);
    ck_assert_int_eq(released, 0);
    conn_free(&k1);
    ck_assert_int_eq(released, 1);
    g_server_ctx = NULL;
    SSL_CTX_free(outer);
}
END_TEST

START_TEST(server_new_errors)
{
    char err[512];
    struct tls_cfg cfg = base_cfg(TLS_CLIENT_NONE);
    cfg.certificate = NULL;
    ck_assert_ptr_null(tls_server_new(&cfg, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "no certificate"));

    cfg = base_cfg(TLS_CLIENT_NONE);
    cfg.key = p_other_key;
    ck_assert_ptr_null(tls_server_new(&cfg, err, sizeof err));
    ck_assert_msg(strstr(err, "does not belong") != NULL, "%s", err);

    cfg = base_cfg(TLS_CLIENT_NONE);
    cfg.key = NULL;
    ck_assert_ptr_null(tls_server_new(&cfg, err, sizeof err));
    ck_assert_msg(strstr(err, "no key") != NULL, "%s", err);

    cfg = base_cfg(TLS_CLIENT_NONE);
    cfg.certificate = "/nonexistent/cert.pem";
    ck_assert_ptr_null(tls_server_new(&cfg, err, sizeof err));
    ck_assert_msg(strstr(err, "/nonexistent/cert.pem") != NULL, "%s", err);

    cfg = base_cfg(TLS_CLIENT_NONE);
    cfg.ciphers = "NOPE";
    ck_assert_ptr_null(tls_server_new(&cfg, err, sizeof err));
    ck_assert_msg(strstr(err, "ciphers") != NULL, "%s", err);

    cfg = base_cfg(TLS_CLIENT_NONE);
    cfg.groups = "P-384:nope";
    ck_assert_ptr_null(tls_server_new(&cfg, err, sizeof err));
    ck_assert_msg(strstr(err, "groups") != NULL, "%s", err);

    cfg = base_cfg(TLS_CLIENT_REQUIRED);
    cfg.ca = NULL;
    ck_assert_ptr_null(tls_server_new(&cfg, err, sizeof err));
    ck_assert_msg(strstr(err, "no ca") != NULL, "%s", err);

    cfg = base_cfg(TLS_CLIENT_REQUIRED);
    cfg.crl = p_junk;
    ck_assert_ptr_null(tls_server_new(&cfg, err, sizeof err));
    ck_assert_msg(strstr(err, "CRL") != NULL, "%s", err);

    struct tls_sni_cfg sni[] = {{"a.example.org", p_sni_a, p_srv_key}};
    cfg = base_cfg(TLS_CLIENT_NONE);
    cfg.sni = sni;
    cfg.n_sni = 1;
    ck_assert_ptr_null(tls_server_new(&cfg, err, sizeof err));
    ck_assert_msg(strncmp(err, "sni \"a.example.org\": ", 21) == 0, "%s", err);

    /* ERR may be absent. */
    ck_assert_ptr_null(tls_server_new(&cfg, NULL, 0));
    ck_assert_uint_eq(ERR_peek_error(), 0);
}
END_TEST

/* ------------------------------------------------------------------ helpers */

START_TEST(config_checks)
{
    char err[512];
    ck_assert_int_eq(tls_check_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256:!aNULL", err, sizeof err),
                     0);
    ck_assert_int_eq(tls_check_ciphers("NOPE", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "no TLS 1.2 cipher"));

    ck_assert_int_eq(tls_check_ciphersuites("TLS_AES_128_GCM_SHA256:TLS_AES_128_CCM_8_SHA256",
                                            err, sizeof err),
                     0);
    ck_assert_int_eq(tls_check_ciphersuites("TLS_AES_128_GCM_SHA256:TLS_NOPE", err,
                                            sizeof err),
                     -1);
    ck_assert_msg(strstr(err, "\"TLS_NOPE\"") != NULL, "%s", err);
    ck_assert_int_eq(tls_check_ciphersuites("", err, sizeof err), -1);
    ck_assert_int_eq(tls_check_ciphersuites("TLS_AES_128_GCM_SHA256::", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "empty name"));
    /* A TLS 1.2 name is no TLS 1.3 suite. */
    ck_assert_int_eq(tls_check_ciphersuites("ECDHE-ECDSA-AES128-GCM-SHA256", err, sizeof err),
                     -1);

    ck_assert_int_eq(tls_check_groups("X25519:P-256", err, sizeof err), 0);
    ck_assert_int_eq(tls_check_groups("X25519:nope", err, sizeof err), -1);
    ck_assert_int_eq(tls_check_groups("", err, sizeof err), -1);

    ck_assert_int_eq(tls_check_keypair(p_srv, p_srv_key, err, sizeof err), 0);
    ck_assert_int_eq(tls_check_keypair(p_srv, p_other_key, err, sizeof err), -2);
    ck_assert_ptr_nonnull(strstr(err, "does not belong"));
    ck_assert_int_eq(tls_check_keypair(p_junk, p_srv_key, err, sizeof err), -1);
    ck_assert_int_eq(tls_check_keypair(p_srv, p_junk, err, sizeof err), -2);
    ck_assert_int_eq(tls_check_keypair(p_srv_key, p_srv_key, err, sizeof err), -1);

    ck_assert_int_eq(tls_check_ca(p_ca1, err, sizeof err), 0);
    ck_assert_int_eq(tls_check_ca(p_srv_key, err, sizeof err), -1);
    ck_assert_int_eq(tls_check_ca(p_junk, err, sizeof err), -1);
    ck_assert_int_eq(tls_check_crl(p_crl1, err, sizeof err), 0);
    ck_assert_int_eq(tls_check_crl(p_ca1, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "no PEM CRL"));
    ck_assert_uint_eq(ERR_peek_error(), 0);

    static const char *const good[] = {"localhost", "relay.example.com", "a-b.c9.example",
                                       "*.example.com", "XN--bcher-kva.example"};
    static const char *const bad[] = {"", ".", "a..b", "-a.example", "a-.example",
                                      "a_b.example", "relay.example.com.", "*.com", "*",
                                      "*example.com", "a.*.example", "x.*", "caf\xc3\xa9.fr",
                                      "a b"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(tls_server_name_valid(good[i]) == 1, "%s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(tls_server_name_valid(bad[i]) == 0, "%s", bad[i]);
    char label[80], longname[4 * 80 + 4];
    memset(label, 'a', 64);
    label[64] = '\0';
    ck_assert_int_eq(tls_server_name_valid(label), 0);
    label[63] = '\0';
    ck_assert_int_eq(tls_server_name_valid(label), 1);
    /* 4 x 63 + 3 dots = 255 > 253 */
    snprintf(longname, sizeof longname, "%s.%s.%s.%s", label, label, label, label);
    ck_assert_int_eq(tls_server_name_valid(longname), 0);
}
END_TEST

START_TEST(error_text)
{
    char buf[512];
    ERR_clear_error();
    ck_assert_str_eq(tls_error_text(NULL, buf, sizeof buf), "unknown error");

    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(ctx, "/nonexistent/x.pem"), 0);
    ck_assert_uint_ne(ERR_peek_error(), 0);
    tls_error_text(NULL, buf, sizeof buf);
    ck_assert_str_ne(buf, "unknown error");
    ck_assert_msg(strstr(buf, "/nonexistent/x.pem") != NULL, "%s", buf);
    ck_assert_uint_eq(ERR_peek_error(), 0); /* drained */

    /* File names in OpenSSL's data cannot break the line. */
    ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(ctx, "/nonexistent/a\nb.pem"), 0);
    tls_error_text(NULL, buf, sizeof buf);
    ck_assert_msg(strstr(buf, "/nonexistent/a?b.pem") != NULL, "%s", buf);
    ck_assert_ptr_null(strchr(buf, '\n'));

    /* Truncation keeps the buffer terminated and still drains. */
    ck_assert_int_eq(SSL_CTX_use_certificate_chain_file(ctx, "/nonexistent/x.pem"), 0);
    char small[8];
    memset(small, 'X', sizeof small);
    tls_error_text(NULL, small, sizeof small);
    ck_assert_uint_eq(strlen(small), 7);
    ck_assert_uint_eq(ERR_peek_error(), 0);
    SSL_CTX_free(ctx);

    /* The verify result of a failed handshake is named. */
    struct tls_cfg cfg = base_cfg(TLS_CLIENT_REQUIRED);
    struct tls_server *ts = server(&cfg);
    struct conn k;
    ck_assert_int_eq(connect_to(ts, &c_expired, NULL, 0, NULL, &k), 0);
    tls_error_text(k.s, buf, sizeof buf);
    ck_assert_msg(strstr(buf, "verify: certificate has expired") != NULL, "%s", buf);
    conn_free(&k);
    tls_server_unref(ts);
}
END_TEST

static Suite *tls_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("tls");
    tcase_add_unchecked_fixture(tc, setup_pki, teardown_pki);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, required_mode);
    tcase_add_test(tc, optional_mode);
    tcase_add_test(tc, none_mode);
    tcase_add_test(tc, verify_failures);
    tcase_add_test(tc, peer_endpoint_ids);
    tcase_add_test(tc, unverified_certificate_ignored);
    tcase_add_test(tc, identity_from_san);
    tcase_add_test(tc, identity_from_cn_map);
    tcase_add_test(tc, identity_names);
    tcase_add_test(tc, sni_selects_certificate);
    tcase_add_test(tc, min_version_13);
    tcase_add_test(tc, session_resumption);
    tcase_add_test(tc, ciphers_suites_groups);
    tcase_add_test(tc, configure_foreign_ctx);
    tcase_add_test(tc, follow_slot);
    tcase_add_test(tc, server_lives_with_its_connections);
    tcase_add_test(tc, server_new_errors);
    tcase_add_test(tc, config_checks);
    tcase_add_test(tc, error_text);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tls_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
