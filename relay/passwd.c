/* passwd.c — password files of STOMP and MQTT listeners: loading and checking the
 * user:hash lines (format in passwd.h), and making hash strings for usprelayd
 * --hash-password. PBKDF2-HMAC-SHA256 and the randomness come from OpenSSL.
 */
#include "relay/passwd.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define HASH_PREFIX "$pbkdf2-sha256$"
#define SALT_MIN 8
#define SALT_MAX 64
#define KEY_MIN 16
#define KEY_MAX 64

struct passwd_entry {
    char *user; /* ULEN bytes, no NUL inside (a NUL is a control character) */
    size_t ulen;
    unsigned iterations;
    unsigned line;
    size_t salt_len, key_len;
    unsigned char salt[SALT_MAX];
    unsigned char key[KEY_MAX];
};

struct passwd_db {
    struct passwd_entry *e; /* sorted by user name, for bsearch */
    size_t n;
    struct passwd_entry dummy; /* derived against for unknown users: random salt and key */
};

/* ------------------------------------------------------------------ base64 */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

/* Decode S[0..N) into OUT (capacity CAP). Padding is optional but must be right when
 * present, and the unused low bits of the last character must be zero, so each byte
 * string has exactly one accepted spelling (with or without its padding). Returns the
 * length, or -1. */
static long b64_decode(const char *s, size_t n, unsigned char *out, size_t cap)
{
    size_t pad = 0;
    if (n >= 4 && n % 4 == 0) {
        while (pad < 2 && s[n - 1 - pad] == '=')
            pad++;
        n -= pad;
    }
    if (n % 4 == 1 || (pad == 1 && n % 4 != 3) || (pad == 2 && n % 4 != 2))
        return -1;
    size_t need = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (need > cap)
        return -1;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = ((acc << 6) | (uint32_t)v) & 0x3fffu; /* at most 13 bits are ever pending */
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    if (acc & ((1u << bits) - 1u))
        return -1;
    return (long)o;
}

/* Unpadded base64 of P[0..N) into OUT (capacity CAP, NUL-terminated). Length, or -1. */
static long b64_encode(const unsigned char *p, size_t n, char *out, size_t cap)
{
    size_t need = n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
    if (need + 1 > cap)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = ((acc << 8) | p[i]) & 0xffffu;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = b64_alphabet[(acc >> bits) & 63u];
        }
    }
    if (bits)
        out[o++] = b64_alphabet[(acc << (6 - bits)) & 63u];
    out[o] = '\0';
    return (long)o;
}

/* ------------------------------------------------------------------ hashes */

static int derive(const char *pass, size_t plen, const struct passwd_entry *e, unsigned char *dk)
{
    if (plen > INT_MAX)
        return -1;
    return PKCS5_PBKDF2_HMAC(pass ? pass : "", (int)plen, e->salt, (int)e->salt_len,
                             (int)e->iterations, EVP_sha256(), (int)e->key_len, dk) == 1
               ? 0
               : -1;
}

/* Parse hash string H[0..N) into E. NULL, or what is wrong with it. */
static const char *parse_hash(const char *h, size_t n, struct passwd_entry *e)
{
    size_t plen = sizeof HASH_PREFIX - 1;
    if (n < plen || memcmp(h, HASH_PREFIX, plen) != 0)
        return "hash must start with \"" HASH_PREFIX "\"";
    const char *p = h + plen, *end = h + n;
    const char *d1 = memchr(p, '$', (size_t)(end - p));
    const char *d2 = d1 ? memchr(d1 + 1, '$', (size_t)(end - d1 - 1)) : NULL;
    if (!d2 || memchr(d2 + 1, '$', (size_t)(end - d2 - 1)))
        return "hash must be " HASH_PREFIX "<iterations>$<salt>$<key>";
    unsigned long it = 0;
    if (p == d1 || *p == '0')
        return "iterations must be a decimal number without leading zeros";
    for (const char *q = p; q < d1; q++) {
        if (*q < '0' || *q > '9')
            return "iterations must be a decimal number without leading zeros";
        if (it > PASSWD_MAX_ITERATIONS)
            break; /* out of range already; keep the arithmetic bounded */
        it = it * 10u + (unsigned long)(*q - '0');
    }
    if (it < PASSWD_MIN_ITERATIONS || it > PASSWD_MAX_ITERATIONS)
        return "iterations out of range 1000..10000000";
    e->iterations = (unsigned)it;
    long sl = b64_decode(d1 + 1, (size_t)(d2 - d1 - 1), e->salt, sizeof e->salt);
    if (sl < 0)
        return "salt is not base64 of at most 64 bytes";
    if (sl < SALT_MIN)
        return "salt shorter than 8 bytes";
    long kl = b64_decode(d2 + 1, (size_t)(end - d2 - 1), e->key, sizeof e->key);
    if (kl < 0)
        return "derived key is not base64 of at most 64 bytes";
    if (kl < KEY_MIN)
        return "derived key shorter than 16 bytes";
    e->salt_len = (size_t)sl;
    e->key_len = (size_t)kl;
    return NULL;
}

int passwd_hash(const char *pass, size_t len, unsigned iterations, char *out, size_t cap)
{
    struct passwd_entry e;
    memset(&e, 0, sizeof e);
    if (iterations < PASSWD_MIN_ITERATIONS || iterations > PASSWD_MAX_ITERATIONS || cap == 0)
        return -1;
    e.iterations = iterations;
    e.salt_len = PASSWD_SALT_LEN;
    e.key_len = PASSWD_KEY_LEN;
    int rc = -1;
    if (RAND_bytes(e.salt, PASSWD_SALT_LEN) == 1 && derive(pass, len, &e, e.key) == 0) {
        int n = snprintf(out, cap, HASH_PREFIX "%u$", iterations);
        if (n > 0 && (size_t)n < cap) {
            long s = b64_encode(e.salt, e.salt_len, out + n, cap - (size_t)n);
            size_t at = (size_t)n + (size_t)s;
            if (s >= 0 && at + 1 < cap) {
                out[at++] = '$';
                rc = b64_encode(e.key, e.key_len, out + at, cap - at) < 0 ? -1 : 0;
            }
        }
    }
    OPENSSL_cleanse(&e, sizeof e);
    if (rc != 0)
        out[0] = '\0';
    return rc;
}

/* ------------------------------------------------------------------ the file */

static int cmp_user(const char *a, size_t la, const char *b, size_t lb)
{
    int c = memcmp(a, b, la < lb ? la : lb);
    if (c)
        return c;
    return la < lb ? -1 : la > lb;
}

static int cmp_entry(const void *pa, const void *pb)
{
    const struct passwd_entry *a = pa, *b = pb;
    int c = cmp_user(a->user, a->ulen, b->user, b->ulen);
    if (c)
        return c;
    return a->line < b->line ? -1 : a->line > b->line;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Whole file PATH into *BUF (NUL-terminated for safety; *LEN excludes it). 0, or -1
 * with ERR set. */
static int read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (!S_ISREG(st.st_mode) || st.st_size > PASSWD_MAX_FILE)) {
        if (S_ISREG(st.st_mode))
            set_err(err, errlen, "%s: larger than %u bytes", path, PASSWD_MAX_FILE);
        else
            set_err(err, errlen, "%s: not a regular file", path);
        fclose(f);
        return -1;
    }
    size_t cap = 65536, n = 0;
    char *b = malloc(cap);
    while (b) {
        if (n == cap) {
            if (cap > PASSWD_MAX_FILE) {
                set_err(err, errlen, "%s: larger than %u bytes", path, PASSWD_MAX_FILE);
                free(b);
                fclose(f);
                return -1;
            }
            char *nb = realloc(b, cap * 2);
            if (!nb)
                break;
            b = nb;
            cap *= 2;
        }
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (!b || ferror(f)) {
        set_err(err, errlen, "%s: %s", path, b ? "read error" : "out of memory");
        free(b);
        fclose(f);
        return -1;
    }
    fclose(f);
    if (n > PASSWD_MAX_FILE) {
        set_err(err, errlen, "%s: larger than %u bytes", path, PASSWD_MAX_FILE);
        free(b);
        return -1;
    }
    if (n == cap) {
        char *nb = realloc(b, n + 1);
        if (!nb) {
            set_err(err, errlen, "%s: out of memory", path);
            free(b);
            return -1;
        }
        b = nb;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

static int blank_char(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Check the user name U[0..N); NULL or what is wrong. */
static const char *user_problem(const char *u, size_t n)
{
    if (n == 0)
        return "empty user name";
    if (n > PASSWD_MAX_USER)
        return "user name longer than 255 bytes";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)u[i];
        if (ch < 0x20 || ch == 0x7f)
            return "user name contains a control character";
    }
    return NULL;
}

/* An entry's cost: PBKDF2 iterations and derived key length (each 32 bytes more is
 * another run of the iterations). */
struct cost {
    unsigned iterations;
    size_t key_len;
};

static int cmp_cost(const void *pa, const void *pb)
{
    const struct cost *a = pa, *b = pb;
    if (a->iterations != b->iterations)
        return a->iterations < b->iterations ? -1 : 1;
    return a->key_len < b->key_len ? -1 : a->key_len > b->key_len;
}

/* The cost most entries have (ties: the larger), so that an unknown user costs what a
 * typical known one does: same iterations, same key length. */
static struct cost common_cost(const struct passwd_db *db)
{
    struct cost best = {PASSWD_DEFAULT_ITERATIONS, PASSWD_KEY_LEN};
    if (db->n == 0)
        return best;
    struct cost *v = malloc(db->n * sizeof *v);
    if (!v)
        return (struct cost){db->e[0].iterations, db->e[0].key_len};
    for (size_t i = 0; i < db->n; i++)
        v[i] = (struct cost){db->e[i].iterations, db->e[i].key_len};
    qsort(v, db->n, sizeof *v, cmp_cost);
    size_t best_run = 0;
    for (size_t i = 0; i < db->n;) {
        size_t k = i;
        while (k < db->n && cmp_cost(&v[k], &v[i]) == 0)
            k++;
        if (k - i >= best_run) { /* ascending order: an equal run later is larger */
            best = v[i];
            best_run = k - i;
        }
        i = k;
    }
    free(v);
    return best;
}

void passwd_free(struct passwd_db *db)
{
    if (!db)
        return;
    for (size_t i = 0; i < db->n; i++)
        free(db->e[i].user);
    if (db->e)
        OPENSSL_cleanse(db->e, db->n * sizeof *db->e);
    free(db->e);
    OPENSSL_cleanse(&db->dummy, sizeof db->dummy);
    free(db);
}

/* Parse line LINE (L[0..N), no newline) into DB. 0, or -1 with ERR set. */
static int parse_line(struct passwd_db *db, size_t cap, const char *path, unsigned line,
                      const char *l, size_t n, char *err, size_t errlen)
{
    if (n > PASSWD_MAX_LINE) {
        set_err(err, errlen, "%s:%u: line longer than %u bytes", path, line, PASSWD_MAX_LINE);
        return -1;
    }
    if (n && l[n - 1] == '\r')
        n--;
    size_t i = 0;
    while (i < n && blank_char(l[i]))
        i++;
    if (i == n || l[i] == '#')
        return 0;
    const char *colon = memchr(l, ':', n);
    if (!colon) {
        set_err(err, errlen, "%s:%u: expected user:hash", path, line);
        return -1;
    }
    size_t ulen = (size_t)(colon - l);
    const char *why = user_problem(l, ulen);
    if (why) {
        set_err(err, errlen, "%s:%u: %s", path, line, why);
        return -1;
    }
    if (db->n == cap) {
        set_err(err, errlen, "%s:%u: more than %u users", path, line, PASSWD_MAX_USERS);
        return -1;
    }
    struct passwd_entry *e = &db->e[db->n];
    memset(e, 0, sizeof *e);
    why = parse_hash(colon + 1, n - ulen - 1, e);
    if (why) {
        set_err(err, errlen, "%s:%u: %s", path, line, why);
        return -1;
    }
    e->user = malloc(ulen + 1);
    if (!e->user) {
        set_err(err, errlen, "%s: out of memory", path);
        return -1;
    }
    memcpy(e->user, l, ulen);
    e->user[ulen] = '\0';
    e->ulen = ulen;
    e->line = line;
    db->n++;
    return 0;
}

struct passwd_db *passwd_load(const char *path, char *err, size_t errlen)
{
    char *buf;
    size_t len;
    if (read_file(path, &buf, &len, err, errlen) != 0)
        return NULL;

    /* Entries are at most one per line: count lines for the array, bounded by the
     * user limit plus one (to report the excess). */
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += buf[i] == '\n';
    size_t cap = lines < PASSWD_MAX_USERS ? lines : PASSWD_MAX_USERS;
    struct passwd_db *db = calloc(1, sizeof *db);
    if (db)
        db->e = calloc(cap, sizeof *db->e);
    if (!db || !db->e) {
        set_err(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    unsigned line = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(buf + at, '\n', len - at);
        size_t n = nl ? (size_t)(nl - (buf + at)) : len - at;
        line++;
        if (parse_line(db, cap, path, line, buf + at, n, err, errlen) != 0)
            goto fail;
        at += n + 1;
    }
    qsort(db->e, db->n, sizeof *db->e, cmp_entry);
    for (size_t i = 1; i < db->n; i++) {
        const struct passwd_entry *a = &db->e[i - 1], *b = &db->e[i];
        if (cmp_user(a->user, a->ulen, b->user, b->ulen) == 0) {
            set_err(err, errlen, "%s:%u: user \"%.64s\" already defined on line %u", path,
                    b->line, b->user, a->line);
            goto fail;
        }
    }
    struct cost dc = common_cost(db);
    db->dummy.iterations = dc.iterations;
    db->dummy.salt_len = PASSWD_SALT_LEN;
    db->dummy.key_len = dc.key_len;
    if (RAND_bytes(db->dummy.salt, PASSWD_SALT_LEN) != 1 ||
        RAND_bytes(db->dummy.key, (int)dc.key_len) != 1) {
        set_err(err, errlen, "%s: no randomness from OpenSSL", path);
        goto fail;
    }
    OPENSSL_cleanse(buf, len);
    free(buf);
    return db;
fail:
    OPENSSL_cleanse(buf, len);
    free(buf);
    passwd_free(db);
    return NULL;
}

size_t passwd_count(const struct passwd_db *db)
{
    return db ? db->n : 0;
}

static const struct passwd_entry *find_user(const struct passwd_db *db, const char *user,
                                            size_t ulen)
{
    size_t lo = 0, hi = db->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_user(user, ulen, db->e[mid].user, db->e[mid].ulen);
        if (c == 0)
            return &db->e[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

int passwd_check(const struct passwd_db *db, const char *user, size_t ulen, const char *pass,
                 size_t plen)
{
    if (!db)
        return 0;
    const struct passwd_entry *e = user ? find_user(db, user, ulen) : NULL;
    int known = e != NULL;
    if (!e)
        e = &db->dummy;
    unsigned char dk[KEY_MAX];
    int ok = derive(pass, plen, e, dk) == 0 && CRYPTO_memcmp(dk, e->key, e->key_len) == 0;
    OPENSSL_cleanse(dk, sizeof dk);
    return ok && known;
}
