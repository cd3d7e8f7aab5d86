/* test_passwd.c — Check suite for relay/passwd.c: hash strings (made here and by another
 * PBKDF2 implementation), checking passwords, and every way a password file is refused,
 * each with its line number. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "relay/passwd.h"

/* Computed with Python's hashlib.pbkdf2_hmac("sha256", b"correct horse",
 * b"0123456789abcdef", 1000, 32), salt and key in padded base64. */
#define VECTOR_HASH                                                                     \
    "$pbkdf2-sha256$1000$MDEyMzQ1Njc4OWFiY2RlZg==$cBg8D2DungRB9k76szThf5ehfyBz991ay6PT8" \
    "Srwk4M="
/* hashlib.pbkdf2_hmac("sha256", b"pw", b"saltsalt", 1000, 16): short salt and key. */
#define VECTOR_SHORT "$pbkdf2-sha256$1000$c2FsdHNhbHQ$A+Pkljr7A4W/zbzUWSStAQ"

static char dir[64];
static char err[512];

static void setup(void)
{
    strcpy(dir, "/tmp/test_passwd.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    err[0] = '\0';
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Write LEN bytes of TEXT to a file in the test directory; returns its path (static). */
static const char *write_n(const char *text, size_t len)
{
    static char path[128];
    static int seq;
    snprintf(path, sizeof path, "%s/pw%d", dir, ++seq);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

static const char *write_text(const char *text)
{
    return write_n(text, strlen(text));
}

static int check(const struct passwd_db *db, const char *user, const char *pass)
{
    return passwd_check(db, user, strlen(user), pass, strlen(pass));
}

/* Load TEXT expecting failure; the message must name LINE and contain WHAT. */
static void expect_error(const char *text, unsigned line, const char *what)
{
    const char *path = write_text(text);
    struct passwd_db *db = passwd_load(path, err, sizeof err);
    ck_assert_msg(db == NULL, "loaded: %s", text);
    char want[160];
    snprintf(want, sizeof want, "%s:%u: ", path, line);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "error \"%s\" does not start with "
                  "\"%s\"", err, want);
    ck_assert_msg(strstr(err, what), "error \"%s\" lacks \"%s\"", err, what);
}

START_TEST(test_hash_round_trip)
{
    char h1[PASSWD_HASH_MAX], h2[PASSWD_HASH_MAX];
    ck_assert_int_eq(passwd_hash("s3cret", 6, 1000, h1, sizeof h1), 0);
    ck_assert_int_eq(passwd_hash("s3cret", 6, 1000, h2, sizeof h2), 0);
    /* prefix, iterations, 16-byte salt and 32-byte key, unpadded */
    ck_assert_int_eq(strncmp(h1, "$pbkdf2-sha256$1000$", 20), 0);
    ck_assert_uint_eq(strlen(h1), 20 + 22 + 1 + 43);
    ck_assert_ptr_null(strchr(h1, '='));
    ck_assert_str_ne(h1, h2); /* fresh salt each time */

    char text[512];
    snprintf(text, sizeof text, "alice:%s\nbob:%s\n", h1, h2);
    struct passwd_db *db = passwd_load(write_text(text), err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    ck_assert_uint_eq(passwd_count(db), 2);
    ck_assert_int_eq(check(db, "alice", "s3cret"), 1);
    ck_assert_int_eq(check(db, "bob", "s3cret"), 1);
    ck_assert_int_eq(check(db, "alice", "s3cret "), 0);
    ck_assert_int_eq(check(db, "alice", "S3cret"), 0);
    ck_assert_int_eq(check(db, "alice", ""), 0);
    ck_assert_int_eq(passwd_check(db, "alice", 5, NULL, 0), 0);
    /* the length counts: a prefix or an extension of the name is another user */
    ck_assert_int_eq(passwd_check(db, "alice", 4, "s3cret", 6), 0);
    ck_assert_int_eq(passwd_check(db, "alice\0", 6, "s3cret", 6), 0);
    ck_assert_int_eq(passwd_check(db, "alicex", 6, "s3cret", 6), 0);
    /* a password with a NUL inside is checked whole */
    ck_assert_int_eq(passwd_check(db, "alice", 5, "s3cret\0x", 8), 0);
    ck_assert_int_eq(passwd_check(NULL, "alice", 5, "s3cret", 6), 0);
    passwd_free(db);
}
END_TEST

START_TEST(test_binary_password)
{
    static const char pw[] = {'a', '\0', 'b', (char)0xff};
    char h[PASSWD_HASH_MAX], text[256];
    ck_assert_int_eq(passwd_hash(pw, sizeof pw, 1000, h, sizeof h), 0);
    snprintf(text, sizeof text, "u:%s\n", h);
    struct passwd_db *db = passwd_load(write_text(text), err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    ck_assert_int_eq(passwd_check(db, "u", 1, pw, sizeof pw), 1);
    ck_assert_int_eq(passwd_check(db, "u", 1, pw, 1), 0);
    passwd_free(db);
}
END_TEST

START_TEST(test_other_implementation)
{
    /* Hashes from elsewhere: padded base64, a short salt and key, spaces in the name. */
    struct passwd_db *db = passwd_load(
        write_text("agent 1:" VECTOR_HASH "\nx:" VECTOR_SHORT "\n"), err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    ck_assert_int_eq(check(db, "agent 1", "correct horse"), 1);
    ck_assert_int_eq(check(db, "agent 1", "correct horsf"), 0);
    ck_assert_int_eq(check(db, "agent1", "correct horse"), 0);
    ck_assert_int_eq(check(db, "x", "pw"), 1);
    ck_assert_int_eq(check(db, "x", "pW"), 0);
    passwd_free(db);
}
END_TEST

START_TEST(test_hash_arguments)
{
    char h[PASSWD_HASH_MAX];
    ck_assert_int_eq(passwd_hash("x", 1, PASSWD_MIN_ITERATIONS - 1, h, sizeof h), -1);
    ck_assert_int_eq(passwd_hash("x", 1, PASSWD_MAX_ITERATIONS + 1, h, sizeof h), -1);
    ck_assert_int_eq(passwd_hash("x", 1, 1000, h, 60), -1); /* too small */
    ck_assert_str_eq(h, "");
    ck_assert_int_eq(passwd_hash("x", 1, 1000, h, 0), -1);
    ck_assert_int_eq(passwd_hash("x", 1, 1000, h, 20 + 22 + 1 + 43 + 1), 0);
    ck_assert_int_eq(passwd_hash("x", 1, 1000, h, 20 + 22 + 1 + 43), -1);
    ck_assert_int_eq(passwd_hash("", 0, PASSWD_DEFAULT_ITERATIONS, h, sizeof h), 0);
    char want[40];
    snprintf(want, sizeof want, "$pbkdf2-sha256$%u$", PASSWD_DEFAULT_ITERATIONS);
    ck_assert_int_eq(strncmp(h, want, strlen(want)), 0);
}
END_TEST

START_TEST(test_unknown_user)
{
    struct passwd_db *db = passwd_load(write_text("x:" VECTOR_SHORT "\n"), err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    ck_assert_int_eq(check(db, "y", "pw"), 0);
    ck_assert_int_eq(check(db, "", "pw"), 0);
    ck_assert_int_eq(passwd_check(db, NULL, 0, "pw", 2), 0);
    passwd_free(db);
}
END_TEST

static double ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Fastest of a few checks of an unknown user against DB, in ms. */
static double unknown_user_ms(const struct passwd_db *db)
{
    double best = 1e9;
    for (int i = 0; i < 3; i++) {
        double t = ms_now();
        ck_assert_int_eq(check(db, "nobody", "pw"), 0);
        t = ms_now() - t;
        best = t < best ? t : best;
    }
    return best;
}

START_TEST(test_unknown_user_costs_work)
{
    /* The dummy entry uses the iteration count most users have: an unknown user against
     * a 300000-iteration file costs far more than against a 1000-iteration one. */
    char h[PASSWD_HASH_MAX], text[1024];
    int n = 0;
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(passwd_hash("pw", 2, 300000, h, sizeof h), 0);
        n += snprintf(text + n, sizeof text - (size_t)n, "slow%d:%s\n", i, h);
    }
    snprintf(text + n, sizeof text - (size_t)n, "x:%s\n", VECTOR_SHORT);
    struct passwd_db *slow = passwd_load(write_text(text), err, sizeof err);
    ck_assert_msg(slow != NULL, "%s", err);
    struct passwd_db *fast = passwd_load(write_text("x:" VECTOR_SHORT "\n"), err, sizeof err);
    ck_assert_msg(fast != NULL, "%s", err);
    double ts = unknown_user_ms(slow), tf = unknown_user_ms(fast);
    ck_assert_msg(ts > 20 * tf, "unknown user: %.2f ms (300000 iterations) vs %.2f ms (1000)",
                  ts, tf);
    /* and about as much as a known user with that count */
    double tk = ms_now();
    ck_assert_int_eq(check(slow, "slow1", "wrong"), 0);
    tk = ms_now() - tk;
    ck_assert_msg(ts > tk / 3 && ts < tk * 3, "unknown %.2f ms, known %.2f ms", ts, tk);
    passwd_free(slow);
    passwd_free(fast);
}
END_TEST

START_TEST(test_unknown_user_costs_the_key_length_too)
{
    /* Users with 64-byte keys (other PHC tools write them) cost two PBKDF2-SHA256 runs:
     * an unknown user must cost the same, not half, or timing tells who exists. */
    char key[87], text[1024];
    memset(key, 'A', 86);
    key[86] = '\0';
    int n = 0;
    for (int i = 0; i < 3; i++)
        n += snprintf(text + n, sizeof text - (size_t)n,
                      "long%d:$pbkdf2-sha256$100000$c2FsdHNhbHQ$%s\n", i, key);
    struct passwd_db *db = passwd_load(write_text(text), err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    double tu = unknown_user_ms(db), tk = 1e9;
    for (int i = 0; i < 3; i++) {
        double t = ms_now();
        ck_assert_int_eq(check(db, "long1", "wrong"), 0);
        t = ms_now() - t;
        tk = t < tk ? t : tk;
    }
    ck_assert_msg(tu > tk * 0.75 && tu < tk * 1.5, "unknown %.2f ms, known %.2f ms", tu, tk);
    passwd_free(db);
}
END_TEST

START_TEST(test_comments_and_blanks)
{
    struct passwd_db *db = passwd_load(write_text("# users of the lab\n"
                                                  "\n"
                                                  "   \t\n"
                                                  "  # indented comment\n"
                                                  "x:" VECTOR_SHORT "\r\n"
                                                  "\r\n"
                                                  "#y:not a hash\n"
                                                  "z:" VECTOR_HASH),
                                       err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    ck_assert_uint_eq(passwd_count(db), 2);
    ck_assert_int_eq(check(db, "x", "pw"), 1); /* CRLF: the \r is not part of the key */
    ck_assert_int_eq(check(db, "z", "correct horse"), 1); /* no final newline */
    ck_assert_int_eq(check(db, "#y", "not a hash"), 0);
    passwd_free(db);

    db = passwd_load(write_text(""), err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    ck_assert_uint_eq(passwd_count(db), 0);
    ck_assert_int_eq(check(db, "x", "pw"), 0);
    passwd_free(db);
}
END_TEST

START_TEST(test_malformed_lines)
{
    const char *ok = "x:" VECTOR_SHORT "\n";
    char text[2048];
#define BAD(line_text, what)                                                              \
    do {                                                                                 \
        snprintf(text, sizeof text, "# c\n\n%s%s\n", ok, line_text);                     \
        expect_error(text, 4, what);                                                     \
    } while (0)
    BAD("no colon here", "expected user:hash");
    BAD(":" VECTOR_SHORT, "empty user name");
    BAD("a\tb:" VECTOR_SHORT, "control character");
    BAD("a\x7f:" VECTOR_SHORT, "control character");
    BAD("a:", "must start with");
    BAD("a:$pbkdf2-sha512$1000$c2FsdHNhbHQ$A+Pkljr7A4W/zbzUWSStAQ", "must start with");
    BAD("a: " VECTOR_SHORT, "must start with");
    BAD("a:$pbkdf2-sha256$1000$c2FsdHNhbHQ", "<iterations>$<salt>$<key>");
    BAD("a:" VECTOR_SHORT "$", "<iterations>$<salt>$<key>");
    BAD("a:$pbkdf2-sha256$999$c2FsdHNhbHQ$A+Pkljr7A4W/zbzUWSStAQ", "out of range");
    BAD("a:$pbkdf2-sha256$10000001$c2FsdHNhbHQ$A+Pkljr7A4W/zbzUWSStAQ", "out of range");
    BAD("a:$pbkdf2-sha256$99999999999999999999999$c2FsdHNhbHQ$A+Pkljr7A4W/zbzUWSStAQ",
        "out of range");
    BAD("a:$pbkdf2-sha256$01000$c2FsdHNhbHQ$A+Pkljr7A4W/zbzUWSStAQ", "leading zeros");
    BAD("a:$pbkdf2-sha256$$c2FsdHNhbHQ$A+Pkljr7A4W/zbzUWSStAQ", "decimal");
    BAD("a:$pbkdf2-sha256$1e4$c2FsdHNhbHQ$A+Pkljr7A4W/zbzUWSStAQ", "decimal");
    BAD("a:$pbkdf2-sha256$1000$c2Fs*HNhbHQ$A+Pkljr7A4W/zbzUWSStAQ", "salt is not base64");
    BAD("a:$pbkdf2-sha256$1000$c2FsdHNhbHR$A+Pkljr7A4W/zbzUWSStAQ", "salt is not base64");
    BAD("a:$pbkdf2-sha256$1000$c2FsdHNhbHQ==$A+Pkljr7A4W/zbzUWSStAQ", "salt is not base64");
    BAD("a:$pbkdf2-sha256$1000$c2FsdHNhbA$A+Pkljr7A4W/zbzUWSStAQ", "salt shorter than 8");
    BAD("a:$pbkdf2-sha256$1000$c2FsdHNhbHQ$A+Pkljr7A4W/zbzUWSSt", "key shorter than 16");
    BAD("a:$pbkdf2-sha256$1000$c2FsdHNhbHQ$A+Pkljr7A4W/zbzUWSStAQ=", "key is not base64");
    BAD("a:$pbkdf2-sha256$1000$c2FsdHNhbHQ$A+Pkljr7A4W/zbzUWSStAQ ", "key is not base64");
    BAD("a:$pbkdf2-sha256$1000$c2FsdHNhbHQ$A-Pkljr7A4W_zbzUWSStAQ", "key is not base64");
    /* 65 bytes of salt */
    BAD("a:$pbkdf2-sha256$1000$"
        "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
        "QUFBQQ$A+Pkljr7A4W/zbzUWSStAQ", "at most 64 bytes");
#undef BAD
    /* a NUL byte in the user name */
    static const char nul[] = "x\0y:" VECTOR_SHORT "\n";
    const char *path = write_n(nul, sizeof nul - 1);
    ck_assert_ptr_null(passwd_load(path, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, ":1: user name contains a control character"));
}
END_TEST

START_TEST(test_user_name_length)
{
    char text[1024], name[300];
    memset(name, 'u', 255);
    name[255] = '\0';
    snprintf(text, sizeof text, "%s:%s\n", name, VECTOR_SHORT);
    struct passwd_db *db = passwd_load(write_text(text), err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    ck_assert_int_eq(check(db, name, "pw"), 1);
    passwd_free(db);
    strcat(name, "u");
    snprintf(text, sizeof text, "x:%s\n%s:%s\n", VECTOR_SHORT, name, VECTOR_SHORT);
    expect_error(text, 2, "longer than 255 bytes");
    /* UTF-8 names are bytes like any other */
    db = passwd_load(write_text("agent-\xc3\xa9:" VECTOR_SHORT "\n"), err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    ck_assert_int_eq(check(db, "agent-\xc3\xa9", "pw"), 1);
    ck_assert_int_eq(check(db, "agent-e", "pw"), 0);
    passwd_free(db);
}
END_TEST

START_TEST(test_duplicates)
{
    expect_error("b:" VECTOR_SHORT "\n# x\na:" VECTOR_SHORT "\nc:" VECTOR_HASH "\na:" VECTOR_HASH
                 "\n",
                 5, "user \"a\" already defined on line 3");
    /* names differing in case or length are different users */
    struct passwd_db *db = passwd_load(
        write_text("a:" VECTOR_SHORT "\nA:" VECTOR_HASH "\naa:" VECTOR_SHORT "\n"), err,
        sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    ck_assert_uint_eq(passwd_count(db), 3);
    ck_assert_int_eq(check(db, "A", "correct horse"), 1);
    ck_assert_int_eq(check(db, "a", "correct horse"), 0);
    passwd_free(db);
}
END_TEST

START_TEST(test_long_line)
{
    char text[2200];
    memset(text, '#', 1025);
    text[1025] = '\n';
    text[1026] = '\0';
    expect_error(text, 1, "line longer than 1024 bytes");
    memset(text, '#', 1024); /* exactly at the bound: a comment */
    text[1024] = '\0';
    struct passwd_db *db = passwd_load(write_text(text), err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    passwd_free(db);
}
END_TEST

START_TEST(test_file_errors)
{
    char path[128];
    snprintf(path, sizeof path, "%s/missing", dir);
    ck_assert_ptr_null(passwd_load(path, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_ptr_nonnull(strstr(err, "cannot open"));
    ck_assert_ptr_null(passwd_load(dir, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
    /* a tiny ERRLEN truncates, never overflows */
    char small[8];
    memset(small, 'z', sizeof small);
    ck_assert_ptr_null(passwd_load(path, small, 5));
    ck_assert_uint_eq(strlen(small), 4);
    ck_assert_int_eq(small[5], 'z');
}
END_TEST

START_TEST(test_file_too_large)
{
    size_t n = PASSWD_MAX_FILE + 1;
    char *big = malloc(n);
    ck_assert_ptr_nonnull(big);
    for (size_t i = 0; i < n; i++)
        big[i] = i % 64 == 63 ? '\n' : '#';
    const char *path = write_n(big, n);
    ck_assert_ptr_null(passwd_load(path, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "larger than 10485760 bytes"));
    /* one byte less is read (all comments) */
    ck_assert_int_eq(truncate(path, (off_t)(n - 1)), 0);
    struct passwd_db *db = passwd_load(path, err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    ck_assert_uint_eq(passwd_count(db), 0);
    passwd_free(db);
    free(big);
}
END_TEST

START_TEST(test_too_many_users)
{
    /* PASSWD_MAX_USERS entries load; one more is refused at its line. */
    size_t line_max = 16 + sizeof VECTOR_SHORT;
    size_t cap = (PASSWD_MAX_USERS + 2) * line_max;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    size_t n = 0;
    for (unsigned i = 0; i < PASSWD_MAX_USERS; i++)
        n += (size_t)snprintf(text + n, cap - n, "u%u:%s\n", i, VECTOR_SHORT);
    struct passwd_db *db = passwd_load(write_n(text, n), err, sizeof err);
    ck_assert_msg(db != NULL, "%s", err);
    ck_assert_uint_eq(passwd_count(db), PASSWD_MAX_USERS);
    ck_assert_int_eq(check(db, "u0", "pw"), 1);
    ck_assert_int_eq(check(db, "u99999", "pw"), 1);
    ck_assert_int_eq(check(db, "u100000", "pw"), 0);
    passwd_free(db);
    n += (size_t)snprintf(text + n, cap - n, "extra:%s\n", VECTOR_SHORT);
    ck_assert_ptr_null(passwd_load(write_n(text, n), err, sizeof err));
    ck_assert_msg(strstr(err, ":100001: more than 100000 users"), "%s", err);
    free(text);
}
END_TEST

static Suite *passwd_suite(void)
{
    Suite *s = suite_create("passwd");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_hash_round_trip);
    tcase_add_test(tc, test_binary_password);
    tcase_add_test(tc, test_other_implementation);
    tcase_add_test(tc, test_hash_arguments);
    tcase_add_test(tc, test_unknown_user);
    tcase_add_test(tc, test_unknown_user_costs_work);
    tcase_add_test(tc, test_unknown_user_costs_the_key_length_too);
    tcase_add_test(tc, test_comments_and_blanks);
    tcase_add_test(tc, test_malformed_lines);
    tcase_add_test(tc, test_user_name_length);
    tcase_add_test(tc, test_duplicates);
    tcase_add_test(tc, test_long_line);
    tcase_add_test(tc, test_file_errors);
    tcase_add_test(tc, test_file_too_large);
    tcase_add_test(tc, test_too_many_users);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(passwd_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
