/* passwd.h — the password file of a STOMP or MQTT listener (password_file), and the
 * hash strings in it.
 *
 * File format (docs/security.md, "Credentials"): one entry per line,
 *
 *     user:$pbkdf2-sha256$<iterations>$<salt>$<derived key>
 *
 * Lines that are empty, only blanks, or whose first non-blank character is '#' are
 * ignored; a trailing "\r" is dropped. The user name is everything before the first ':'
 * (1..255 bytes, no ':' and no control characters, compared byte for byte); a name may
 * appear once. The hash is PBKDF2-HMAC-SHA256 of the password under a random salt:
 * iterations a decimal in PASSWD_MIN_ITERATIONS..PASSWD_MAX_ITERATIONS, salt (8..64
 * bytes) and derived key (16..64 bytes) in base64 with the standard alphabet, '='
 * padding optional (written without, as in the PHC string format). passwd_hash() makes
 * such strings (usprelayd --hash-password). The file is at most PASSWD_MAX_FILE bytes
 * and PASSWD_MAX_USERS entries; lines at most PASSWD_MAX_LINE bytes.
 *
 * A loaded database is immutable: any thread may call passwd_check() on it at once.
 */
#ifndef USPRELAY_PASSWD_H
#define USPRELAY_PASSWD_H

#include <stddef.h>

#define PASSWD_DEFAULT_ITERATIONS 30000u  /* ~14 ms per check here: docs/security.md */
#define PASSWD_MIN_ITERATIONS 1000u
#define PASSWD_MAX_ITERATIONS 10000000u
#define PASSWD_SALT_LEN 16        /* bytes of salt passwd_hash() draws */
#define PASSWD_KEY_LEN 32         /* bytes of derived key passwd_hash() writes */
#define PASSWD_MAX_USER 255
#define PASSWD_MAX_LINE 1024
#define PASSWD_MAX_FILE (10u * 1024u * 1024u)
#define PASSWD_MAX_USERS 100000u
#define PASSWD_HASH_MAX 128       /* a hash string from passwd_hash(), with its NUL */

struct passwd_db;

/* Read and check the password file PATH. Returns the database, or NULL with one message
 * in ERR (truncated to ERRLEN) naming the file and, for a bad entry, its line:
 * "PATH:LINE: what is wrong". Draws the dummy entry's salt from the OpenSSL RNG. */
struct passwd_db *passwd_load(const char *path, char *err, size_t errlen);

/* Does PASS[0..PLEN) match the entry of user USER[0..ULEN)? 1 yes, 0 no. An unknown user
 * costs the same PBKDF2 work as a known one (a dummy entry is derived against), so the
 * time taken does not tell which users exist; the keys are compared in constant time.
 * DB NULL: 0. */
int passwd_check(const struct passwd_db *db, const char *user, size_t ulen, const char *pass,
                 size_t plen);

/* Number of entries in DB. */
size_t passwd_count(const struct passwd_db *db);

void passwd_free(struct passwd_db *db);

/* Write the NUL-terminated hash string of PASS[0..LEN) with ITERATIONS and a fresh random
 * salt into OUT (capacity CAP; PASSWD_HASH_MAX is enough). Returns 0, or -1: iterations
 * out of range, CAP too small, no randomness, or an OpenSSL failure. */
int passwd_hash(const char *pass, size_t len, unsigned iterations, char *out, size_t cap);

#endif
