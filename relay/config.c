/* config.c — read and validate the relay's libconfig file (see config.h).
 *
 * The loader walks every group and list itself, so an unknown key, a wrong type or an
 * out-of-range value anywhere is an error, and all errors are collected, sorted by file
 * and line and reported together. The result is fully owned: every string is copied out
 * of libconfig's tree before it is destroyed.
 *
 * Before libconfig sees the text, scan_text() lexes it (and its @includes) once, for
 * three libconfig 1.5 defects that are invisible in the parsed tree:
 *  - an integer literal without the L suffix is stored as a 32-bit int, silently wrapped
 *    when it does not fit (5000000000 reads as 705032704);
 *  - "0660" written as an integer is read as decimal 660;
 *  - a syntax error whose offending token is a string leaks that string (the grammar
 *    has no destructor), so such errors are reported here and libconfig never runs.
 */
#include "relay/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <libconfig.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "relay/endpoint_id.h"
#include "relay/mtp/stomp_codec.h"

#define DEFAULT_ENDPOINT_ID "self::usprelay"
#define DEFAULT_SUBSCRIBE_TEMPLATE "/usp/endpoint/{eid}"
#define MAX_WORKERS 256
#define MAX_RECORD_SIZE_LIMIT 268435455LL /* 2^28 - 1: well inside every length field */
#define MAX_SCAN_BYTES (4u << 20)         /* "larger than 4 MiB": surely a mistake */
#define MAX_STORED_ERRORS 200
#define MAX_LISTENER_NAME 64

/* ------------------------------------------------------------------ names */

const char *listener_type_name(enum listener_type t)
{
    switch (t) {
    case LISTENER_STOMP: return "stomp";
    case LISTENER_UDS: return "uds";
    }
    return "?";
}

static const char *const from_id_names[] = {"enforce", "log", "off"};
static const char *const dup_id_names[] = {"replace-old", "refuse-new"};
static const char *const connect_records_names[] = {"pass", "translate"};
static const char *const listener_type_names[] = {"stomp", "uds"};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

const char *from_id_policy_name(enum from_id_policy p)
{
    return (unsigned)p < NELEM(from_id_names) ? from_id_names[p] : "?";
}

const char *duplicate_id_policy_name(enum duplicate_id_policy p)
{
    return (unsigned)p < NELEM(dup_id_names) ? dup_id_names[p] : "?";
}

const char *connect_records_name(enum connect_records_mode m)
{
    return (unsigned)m < NELEM(connect_records_names) ? connect_records_names[m] : "?";
}

/* ------------------------------------------------------------------ load context */

/* What the source scan found about one integer literal. */
enum lit_kind { LIT_OVERFLOW, LIT_LEADING_ZERO };

struct lit_note {
    unsigned line;
    enum lit_kind kind;
    char name[64]; /* the setting the literal belongs to */
};

/* A source file libconfig read: the main file or an @include. */
struct src_file {
    char *recorded; /* the name libconfig records in config_setting_t.file */
    char *display;  /* the openable path, used in messages */
    int scanned;
    struct lit_note *notes;
    size_t n_notes;
};

/* Lexer state carried across files, since an @include splices its tokens into the
 * includer's stream. */
enum prev_tok { P_START, P_STRING, P_ASSIGN, P_COMMA, P_OPEN_LIST, P_OTHER };

struct lex_state {
    enum prev_tok prev;
    unsigned depth;        /* open brackets */
    char open[256];        /* the innermost brackets: '{', '(' or '[' */
    int syntax_error;      /* reported: libconfig must not run */
};

struct cfg_error {
    size_t file_rank; /* index into ctx.files: messages sort by file, then line */
    unsigned line;
    size_t seq;
    char *text;
};

struct ctx {
    const char *path;
    char *incdir; /* directory of path: @include is relative to it */
    struct src_file *files;
    size_t n_files;
    struct cfg_error *errs;
    size_t n_errs;
    int count;    /* errors found, including any that could not be stored */
    int oom;      /* an allocation failed: reported once at the end */
};

static char *dup_or_flag(struct ctx *c, const char *s)
{
    char *d = strdup(s);
    if (!d)
        c->oom = 1;
    return d;
}

/* The index of the source file libconfig recorded as RECORDED (NULL: the main file),
 * registering it on first sight. Returns 0 (the main file) when out of memory. */
static size_t file_index(struct ctx *c, const char *recorded)
{
    if (!recorded || strcmp(recorded, c->path) == 0)
        return 0;
    for (size_t i = 1; i < c->n_files; i++)
        if (strcmp(c->files[i].recorded, recorded) == 0)
            return i;

    struct src_file *nf = realloc(c->files, (c->n_files + 1) * sizeof *nf);
    if (!nf) {
        c->oom = 1;
        return 0;
    }
    c->files = nf;
    struct src_file *f = &nf[c->n_files];
    memset(f, 0, sizeof *f);
    /* libconfig opens an include as include_dir "/" name; mirror that. */
    size_t need = strlen(c->incdir) + strlen(recorded) + 2;
    f->recorded = strdup(recorded);
    f->display = malloc(need);
    if (!f->recorded || !f->display) {
        free(f->recorded);
        free(f->display);
        c->oom = 1;
        return 0;
    }
    snprintf(f->display, need, "%s/%s", c->incdir, recorded);
    return c->n_files++;
}

static void add_error(struct ctx *c, size_t rank, unsigned line, const char *key,
                      const char *fmt, va_list ap)
{
    c->count++;
    if (c->n_errs >= MAX_STORED_ERRORS)
        return;

    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    const char *file = c->files[rank].display;
    int n = snprintf(NULL, 0, "%s:%u: %s: %s\n", file, line, key, msg);
    if (n < 0)
        return;
    char *text = malloc((size_t)n + 1);
    struct cfg_error *ne = realloc(c->errs, (c->n_errs + 1) * sizeof *ne);
    if (!text || !ne) {
        free(text);
        if (ne)
            c->errs = ne;
        c->oom = 1;
        return;
    }
    snprintf(text, (size_t)n + 1, "%s:%u: %s: %s\n", file, line, key, msg);
    c->errs = ne;
    ne[c->n_errs].file_rank = rank;
    ne[c->n_errs].line = line;
    ne[c->n_errs].seq = c->n_errs;
    ne[c->n_errs].text = text;
    c->n_errs++;
}

/* Report an error about setting S (NULL: the file as a whole, line 0) at KEY. */
__attribute__((format(printf, 4, 5)))
static void report(struct ctx *c, const config_setting_t *s, const char *key,
                   const char *fmt, ...)
{
    size_t rank = s ? file_index(c, config_setting_source_file(s)) : 0;
    unsigned line = s ? (unsigned)config_setting_source_line(s) : 0;
    va_list ap;
    va_start(ap, fmt);
    add_error(c, rank, line, key, fmt, ap);
    va_end(ap);
}

/* Report at an explicit source position (libconfig parse errors). */
__attribute__((format(printf, 5, 6)))
static void report_at(struct ctx *c, const char *recorded, unsigned line, const char *key,
                      const char *fmt, ...)
{
    size_t rank = file_index(c, recorded);
    va_list ap;
    va_start(ap, fmt);
    add_error(c, rank, line, key, fmt, ap);
    va_end(ap);
}

static int cmp_error(const void *a, const void *b)
{
    const struct cfg_error *x = a, *y = b;
    if (x->file_rank != y->file_rank)
        return x->file_rank < y->file_rank ? -1 : 1;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Append TEXT to ERR, keeping it terminated; returns 0 once ERR is full. */
static int append(char *err, size_t errlen, size_t *used, const char *text)
{
    size_t n = strlen(text);
    size_t room = errlen - 1 - *used;
    if (n > room)
        n = room;
    memcpy(err + *used, text, n);
    *used += n;
    err[*used] = '\0';
    return *used + 1 < errlen;
}

/* Write the sorted messages into ERR (always terminated, truncated to ERRLEN). */
static void flush_errors(struct ctx *c, char *err, size_t errlen)
{
    if (c->n_errs)
        qsort(c->errs, c->n_errs, sizeof c->errs[0], cmp_error);
    if (!err || errlen == 0)
        return;
    size_t used = 0;
    err[0] = '\0';
    int room = 1;
    for (size_t i = 0; i < c->n_errs && room; i++)
        room = append(err, errlen, &used, c->errs[i].text);
    char tail[PATH_MAX + 64];
    if (room && c->oom) {
        snprintf(tail, sizeof tail, "%s:0: -: out of memory\n", c->path);
        append(err, errlen, &used, tail);
    } else if (room && c->count > (int)c->n_errs) {
        snprintf(tail, sizeof tail, "%s:0: -: %d more errors not shown\n", c->path,
                 c->count - (int)c->n_errs);
        append(err, errlen, &used, tail);
    }
}

static void ctx_free(struct ctx *c)
{
    for (size_t i = 0; i < c->n_files; i++) {
        free(c->files[i].recorded);
        free(c->files[i].display);
        free(c->files[i].notes);
    }
    free(c->files);
    for (size_t i = 0; i < c->n_errs; i++)
        free(c->errs[i].text);
    free(c->errs);
    free(c->incdir);
}

/* ------------------------------------------------------------------ source scan */

static int is_name_start(int ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '*';
}

static int is_name_char(int ch)
{
    return is_name_start(ch) || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
}

static int is_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}

static void add_note(struct ctx *c, struct src_file *f, unsigned line, enum lit_kind kind,
                     const char *name)
{
    struct lit_note *nn = realloc(f->notes, (f->n_notes + 1) * sizeof *nn);
    if (!nn) {
        c->oom = 1;
        return;
    }
    f->notes = nn;
    nn[f->n_notes].line = line;
    nn[f->n_notes].kind = kind;
    snprintf(nn[f->n_notes].name, sizeof nn[f->n_notes].name, "%s", name);
    f->n_notes++;
}

/* Classify the number token T[0..n): note it when it is a plain (no L) integer that does
 * not fit in an int, or a decimal integer with a leading zero. */
static void classify_number(struct ctx *c, struct src_file *f, const char *t, size_t n,
                            unsigned line, const char *name)
{
    size_t i = 0;
    int neg = 0;
    if (t[i] == '+' || t[i] == '-')
        neg = t[i++] == '-';
    if (n > i + 1 && t[i] == '0' && (t[i + 1] == 'x' || t[i + 1] == 'X')) {
        if (t[n - 1] == 'L')
            return;
        /* libconfig keeps the low 32 bits: anything above 0x7fffffff is not the value
         * written. */
        size_t digits = 0, j = i + 2;
        while (j < n && t[j] == '0')
            j++;
        unsigned long long v = 0;
        for (; j < n; j++, digits++) {
            int ch = t[j];
            unsigned d = (unsigned)(is_digit(ch) ? ch - '0' : (ch | 0x20) - 'a' + 10);
            if (digits < 16)
                v = v * 16 + d;
        }
        if (digits > 8 || v > (unsigned long long)INT_MAX)
            add_note(c, f, line, LIT_OVERFLOW, name);
        return;
    }
    for (size_t j = i; j < n; j++)
        if (t[j] == '.' || t[j] == 'e' || t[j] == 'E' || t[j] == 'L')
            return; /* a float, or an int64 */
    /* Decimal: compare magnitudes without overflowing ourselves. */
    size_t j = i;
    while (j + 1 < n && t[j] == '0')
        j++;
    if (j > i)
        add_note(c, f, line, LIT_LEADING_ZERO, name);
    size_t len = n - j;
    const char *lim = neg ? "2147483648" : "2147483647";
    if (len > 10 || (len == 10 && memcmp(t + j, lim, 10) > 0))
        add_note(c, f, line, LIT_OVERFLOW, name);
}

/* Read PATH whole into *TEXT (NUL-terminated). Returns 0, or -1 with *WHY saying why. */
static int read_source(struct ctx *c, const char *path, char **text, size_t *len,
                       const char **why)
{
    FILE *fp = fopen(path, "r");
    struct stat sb;
    if (!fp || fstat(fileno(fp), &sb) != 0) {
        *why = strerror(errno);
        if (fp)
            fclose(fp);
        return -1;
    }
    if (S_ISDIR(sb.st_mode) || sb.st_size > (off_t)MAX_SCAN_BYTES) {
        fclose(fp);
        *why = S_ISDIR(sb.st_mode) ? strerror(EISDIR) : "larger than 4 MiB";
        return -1;
    }
    /* Read up to the limit rather than st_size: a pipe or /proc file reports 0. */
    size_t cap = sb.st_size > 0 ? (size_t)sb.st_size + 1 : 4096, n = 0;
    char *buf = NULL;
    for (;;) {
        char *nb = realloc(buf, cap + 1);
        if (!nb) {
            free(buf);
            fclose(fp);
            c->oom = 1;
            *why = strerror(ENOMEM);
            return -1;
        }
        buf = nb;
        n += fread(buf + n, 1, cap - n, fp);
        if (n < cap || cap > MAX_SCAN_BYTES)
            break;
        cap *= 2;
    }
    int failed = ferror(fp);
    fclose(fp);
    if (failed || n > MAX_SCAN_BYTES) {
        free(buf);
        *why = failed ? "read error" : "larger than 4 MiB";
        return -1;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

/* Lex the text BUF of file FI once: note integer literals libconfig would misread (with the name of the
 * setting they belong to and that name's line, the line libconfig records), report a
 * string where libconfig's grammar cannot take one, and recurse into @includes. */
static void scan_file(struct ctx *c, size_t fi, struct lex_state *ls, unsigned include_depth,
                      const char *from, unsigned line);

static void scan_text(struct ctx *c, size_t fi, struct lex_state *ls, unsigned include_depth,
                      const char *buf, size_t len)
{
    /* libconfig would stop at a NUL and silently ignore the rest. */
    const char *nul = memchr(buf, '\0', len);
    if (nul) {
        unsigned nl = 1;
        for (const char *p = buf; p < nul; p++)
            nl += *p == '\n';
        report_at(c, c->files[fi].recorded, nl, "-", "file contains a NUL byte");
        ls->syntax_error = 1;
        return;
    }
    int first_scan = !c->files[fi].scanned; /* an include read twice is noted once */
    c->files[fi].scanned = 1;

    unsigned line = 1, name_line = 0;
    char name[64] = "";
    size_t i = 0;
    while (i < len && !ls->syntax_error) {
        char ch = buf[i];
        if (ch == '\n') {
            line++;
            i++;
        } else if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\f' || ch == '\v') {
            i++;
        } else if (ch == '#' || (ch == '/' && buf[i + 1] == '/')) {
            while (i < len && buf[i] != '\n')
                i++;
        } else if (ch == '/' && buf[i + 1] == '*') {
            for (i += 2; i < len && !(buf[i] == '*' && buf[i + 1] == '/'); i++)
                line += buf[i] == '\n';
            i += 2;
        } else if (ch == '@' && strncmp(buf + i, "@include", 8) == 0) {
            /* @include "name": the name is taken verbatim up to the next quote. */
            size_t j = i + 8;
            while (j < len && (buf[j] == ' ' || buf[j] == '\t'))
                j++;
            if (j >= len || buf[j] != '"') {
                i++; /* not a directive libconfig knows; its parser will say so */
                ls->prev = P_OTHER;
                continue;
            }
            size_t s0 = ++j;
            while (j < len && buf[j] != '"' && buf[j] != '\n')
                j++;
            if (j < len && buf[j] == '"' && include_depth < 10) {
                char inc[PATH_MAX];
                size_t n = j - s0 < sizeof inc - 1 ? j - s0 : sizeof inc - 1;
                memcpy(inc, buf + s0, n);
                inc[n] = '\0';
                size_t ii = file_index(c, inc);
                if (ii != 0) /* 0: out of memory, or the main file including itself */
                    scan_file(c, ii, ls, include_depth + 1, c->files[fi].recorded, line);
            }
            i = j + 1;
        } else if (ch == '"') {
            int ok = ls->prev == P_ASSIGN || ls->prev == P_STRING || ls->prev == P_OPEN_LIST ||
                     (ls->prev == P_COMMA && ls->depth > 0 &&
                      (ls->depth > sizeof ls->open || ls->open[ls->depth - 1] != '{'));
            if (!ok) {
                report_at(c, c->files[fi].recorded, line, "-",
                          "syntax error: unexpected string (a setting name was expected)");
                ls->syntax_error = 1;
                break;
            }
            for (i++; i < len && buf[i] != '"'; i++) {
                if (buf[i] == '\\' && i + 1 < len)
                    i++;
                line += buf[i] == '\n';
            }
            i++;
            ls->prev = P_STRING;
        } else if (is_name_start((unsigned char)ch)) {
            size_t s0 = i;
            while (i < len && is_name_char((unsigned char)buf[i]))
                i++;
            size_t n = i - s0 < sizeof name - 1 ? i - s0 : sizeof name - 1;
            memcpy(name, buf + s0, n);
            name[n] = '\0';
            name_line = line;
            ls->prev = P_OTHER;
        } else if (is_digit((unsigned char)ch) ||
                   ((ch == '-' || ch == '+' || ch == '.') &&
                    (is_digit((unsigned char)buf[i + 1]) || buf[i + 1] == '.'))) {
            size_t s0 = i;
            size_t body = s0 + (ch == '-' || ch == '+');
            int hex = buf[body] == '0' && (buf[body + 1] | 0x20) == 'x';
            for (i = body; i < len; i++) {
                char d = buf[i];
                int exp_sign = (d == '+' || d == '-') && !hex && (buf[i - 1] | 0x20) == 'e';
                if (!is_digit((unsigned char)d) && !((d | 0x20) >= 'a' && (d | 0x20) <= 'z') &&
                    d != '.' && !exp_sign)
                    break;
            }
            if (first_scan)
                classify_number(c, &c->files[fi], buf + s0, i - s0, name_line, name);
            ls->prev = P_OTHER;
        } else {
            switch (ch) {
            case '=':
            case ':':
                ls->prev = P_ASSIGN;
                break;
            case ',':
                ls->prev = P_COMMA;
                break;
            case '{':
            case '(':
            case '[':
                if (ls->depth < sizeof ls->open)
                    ls->open[ls->depth] = ch;
                ls->depth++;
                ls->prev = ch == '{' ? P_OTHER : P_OPEN_LIST;
                break;
            case '}':
            case ')':
            case ']':
                if (ls->depth > 0)
                    ls->depth--;
                ls->prev = P_OTHER;
                break;
            default: /* ';' and anything libconfig would reject by itself */
                ls->prev = P_OTHER;
                break;
            }
            i++;
        }
    }
}

/* Scan included file FI, named at LINE of the file recorded as FROM: read it as
 * libconfig will, then scan_text() it. */
static void scan_file(struct ctx *c, size_t fi, struct lex_state *ls, unsigned include_depth,
                      const char *from, unsigned line)
{
    char *buf;
    size_t len;
    const char *why;
    if (read_source(c, c->files[fi].display, &buf, &len, &why) != 0) {
        report_at(c, from, line, "-", "cannot read include file %s: %s", c->files[fi].display,
                  why);
        ls->syntax_error = 1;
        return;
    }
    scan_text(c, fi, ls, include_depth, buf, len);
    free(buf);
}

/* Did the source of int setting S carry a literal of KIND? */
static int literal_is(struct ctx *c, const config_setting_t *s, enum lit_kind kind)
{
    const char *nm = config_setting_name(s);
    if (!nm)
        return 0;
    const struct src_file *f = &c->files[file_index(c, config_setting_source_file(s))];
    unsigned line = (unsigned)config_setting_source_line(s);
    for (size_t i = 0; i < f->n_notes; i++)
        if (f->notes[i].line == line && f->notes[i].kind == kind &&
            strcmp(f->notes[i].name, nm) == 0)
            return 1;
    return 0;
}

/* ------------------------------------------------------------------ typed getters */

/* Key paths as the messages print them: "relay.workers", "listeners[1].limits.port". */
static void key_join(char *dst, size_t cap, const char *prefix, const char *name)
{
    if (prefix && *prefix)
        snprintf(dst, cap, "%s.%s", prefix, name);
    else
        snprintf(dst, cap, "%s", name);
}

/* A value from the file, quoted and escaped for a message: a string may hold newlines
 * or control bytes, and every message must stay one line. */
#define QUOTE_CAP 128
static const char *quote(char *buf, const char *s)
{
    return log_escape(buf, QUOTE_CAP, s, strlen(s), 96);
}

static const char *type_desc(int type)
{
    switch (type) {
    case CONFIG_TYPE_GROUP: return "a group";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: return "an integer";
    case CONFIG_TYPE_FLOAT: return "a float";
    case CONFIG_TYPE_STRING: return "a string";
    case CONFIG_TYPE_BOOL: return "a boolean";
    case CONFIG_TYPE_ARRAY: return "an array";
    case CONFIG_TYPE_LIST: return "a list";
    }
    return "nothing";
}

/* The getters return 1 when NAME is present and valid (the value stored), 0 when it is
 * absent, -1 when it is present but wrong (reported). */

static int get_int(struct ctx *c, const config_setting_t *g, const char *prefix,
                   const char *name, long long lo, long long hi, long long *out)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    if (!s)
        return 0;
    char key[160];
    key_join(key, sizeof key, prefix, name);
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
        report(c, s, key, "expected an integer, found %s", type_desc(t));
        return -1;
    }
    if (t == CONFIG_TYPE_INT && literal_is(c, s, LIT_OVERFLOW)) {
        report(c, s, key, "value does not fit in 32 bits (libconfig would wrap it); "
                          "append L for a 64-bit integer, e.g. 5000000000L");
        return -1;
    }
    long long v = config_setting_get_int64(s);
    if (v < lo || v > hi) {
        report(c, s, key, "%lld is out of range (%lld..%lld)", v, lo, hi);
        return -1;
    }
    *out = v;
    return 1;
}

static int get_u32(struct ctx *c, const config_setting_t *g, const char *prefix,
                   const char *name, long long lo, long long hi, uint32_t *out)
{
    long long v;
    int r = get_int(c, g, prefix, name, lo, hi, &v);
    if (r == 1)
        *out = (uint32_t)v;
    return r;
}

/* A duration in seconds (integer or float) in [LO, HI], stored as milliseconds. */
static int get_seconds(struct ctx *c, const config_setting_t *g, const char *prefix,
                       const char *name, double lo, double hi, uint32_t *out_ms)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    if (!s)
        return 0;
    char key[160];
    key_join(key, sizeof key, prefix, name);
    int t = config_setting_type(s);
    double v;
    if (t == CONFIG_TYPE_FLOAT) {
        v = config_setting_get_float(s);
    } else if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
        if (t == CONFIG_TYPE_INT && literal_is(c, s, LIT_OVERFLOW)) {
            report(c, s, key, "value does not fit in 32 bits");
            return -1;
        }
        v = (double)config_setting_get_int64(s);
    } else {
        report(c, s, key, "expected a number of seconds, found %s", type_desc(t));
        return -1;
    }
    if (!(v >= lo && v <= hi)) { /* written so that NaN fails too */
        report(c, s, key, "%g seconds is out of range (%g..%g)", v, lo, hi);
        return -1;
    }
    *out_ms = (uint32_t)(v * 1000.0 + 0.5);
    return 1;
}

static int get_string(struct ctx *c, const config_setting_t *g, const char *prefix,
                      const char *name, const char **out)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    if (!s)
        return 0;
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        char key[160];
        key_join(key, sizeof key, prefix, name);
        report(c, s, key, "expected a string, found %s", type_desc(config_setting_type(s)));
        return -1;
    }
    *out = config_setting_get_string(s);
    return 1;
}

static int get_bool(struct ctx *c, const config_setting_t *g, const char *prefix,
                    const char *name, int *out)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    if (!s)
        return 0;
    if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
        char key[160];
        key_join(key, sizeof key, prefix, name);
        report(c, s, key, "expected true or false, found %s",
               type_desc(config_setting_type(s)));
        return -1;
    }
    *out = config_setting_get_bool(s) ? 1 : 0;
    return 1;
}

/* A string that must be one of NAMES; *out is its index. */
static int get_enum(struct ctx *c, const config_setting_t *g, const char *prefix,
                    const char *name, const char *const *names, size_t n, int *out)
{
    const char *v;
    int r = get_string(c, g, prefix, name, &v);
    if (r != 1)
        return r;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v, names[i]) == 0) {
            *out = (int)i;
            return 1;
        }
    }
    char list[160] = "";
    size_t used = 0;
    for (size_t i = 0; i < n && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                                 names[i]);
    char key[160];
    key_join(key, sizeof key, prefix, name);
    char qb[QUOTE_CAP];
    report(c, config_setting_get_member(g, name), key, "%s is not one of: %s", quote(qb, v),
           list);
    return -1;
}

/* A member that must be a group; returns it, or NULL when absent or wrong (reported). */
static const config_setting_t *get_group(struct ctx *c, const config_setting_t *g,
                                         const char *prefix, const char *name)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    if (!s)
        return NULL;
    if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
        char key[160];
        key_join(key, sizeof key, prefix, name);
        report(c, s, key, "expected a group { ... }, found %s",
               type_desc(config_setting_type(s)));
        return NULL;
    }
    return s;
}

/* ------------------------------------------------------------------ unknown keys */

/* Edit distance, bounded: names are short, and anything past 2 is not a typo. */
static unsigned edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    unsigned row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned up = row[j];
            unsigned best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static void report_unknown(struct ctx *c, const config_setting_t *s, const char *key,
                           const char *const *allowed)
{
    const char *nm = config_setting_name(s);
    const char *best = NULL;
    unsigned best_d = 3;
    for (size_t i = 0; allowed[i]; i++) {
        unsigned d = edit_distance(nm, allowed[i]);
        if (d < best_d) {
            best_d = d;
            best = allowed[i];
        }
    }
    if (best)
        report(c, s, key, "unknown key (did you mean \"%s\"?)", best);
    else
        report(c, s, key, "unknown key");
}

static int in_list(const char *name, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(name, list[i]) == 0)
            return 1;
    return 0;
}

/* Report every member of group G whose name is not in ALLOWED. */
static void check_keys(struct ctx *c, const config_setting_t *g, const char *prefix,
                       const char *const *allowed)
{
    int n = config_setting_length(g);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *nm = config_setting_name(s);
        if (!nm || in_list(nm, allowed))
            continue;
        char key[160];
        key_join(key, sizeof key, prefix, nm);
        report_unknown(c, s, key, allowed);
    }
}

/* ------------------------------------------------------------------ groups */

static const char *const top_keys[] = {"relay", "log", "limits", "listeners", NULL};
static const char *const relay_keys[] = {
    "endpoint_id",     "workers",         "max_endpoint_id_length", "from_id_policy",
    "duplicate_id_policy", "connect_records", "shutdown_timeout",   NULL};
static const char *const log_keys[] = {"level", NULL};
static const char *const limits_keys[] = {"max_record_size", "max_unidentified_input",
                                          "max_output_queue", "handshake_timeout", NULL};

/* Which listener types a listener key belongs to. */
#define FOR_STOMP (1u << LISTENER_STOMP)
#define FOR_UDS (1u << LISTENER_UDS)
#define FOR_ALL (FOR_STOMP | FOR_UDS)

static const char *const listener_keys[] = {
    "name", "type", "backlog", "limits",
    "address", "port", "subscribe_dest_template", "allow_any_subscribe", "login", "passcode",
    "heartbeat_send_ms", "heartbeat_receive_ms", "heartbeat_grace_percent", "max_frame_head",
    "max_headers",
    "path", "mode", "owner", "group", "peer_endpoint_id",
    NULL};
static const unsigned char listener_key_types[] = {
    FOR_ALL, FOR_ALL, FOR_ALL, FOR_ALL,
    FOR_STOMP, FOR_STOMP, FOR_STOMP, FOR_STOMP, FOR_STOMP, FOR_STOMP,
    FOR_STOMP, FOR_STOMP, FOR_STOMP, FOR_STOMP,
    FOR_STOMP,
    FOR_UDS, FOR_UDS, FOR_UDS, FOR_UDS, FOR_UDS};
_Static_assert(NELEM(listener_keys) == NELEM(listener_key_types) + 1,
               "one type mask per listener key");

/* Where each limit was set, for the max_output_queue >= max_record_size check. */
struct limits_seen {
    const config_setting_t *record;
    const config_setting_t *queue;
};

static void parse_limits(struct ctx *c, const config_setting_t *g, const char *prefix,
                         struct limits_cfg *lim, struct limits_seen *seen)
{
    check_keys(c, g, prefix, limits_keys);
    long long v;
    if (get_u32(c, g, prefix, "max_record_size", 64, MAX_RECORD_SIZE_LIMIT,
                &lim->max_record_size) == 1)
        seen->record = config_setting_get_member(g, "max_record_size");
    get_u32(c, g, prefix, "max_unidentified_input", 1024, MAX_RECORD_SIZE_LIMIT,
            &lim->max_unidentified_input);
    if (get_int(c, g, prefix, "max_output_queue", 64, LLONG_MAX, &v) == 1) {
        lim->max_output_queue = (uint64_t)v;
        seen->queue = config_setting_get_member(g, "max_output_queue");
    }
    get_seconds(c, g, prefix, "handshake_timeout", 0.1, 3600.0, &lim->handshake_timeout_ms);
}

/* A queue must hold at least one Record of the largest size. Checked on the effective
 * values, reported where the user set one of the two. */
static void check_limits(struct ctx *c, const char *prefix, const struct limits_cfg *lim,
                         const struct limits_seen *seen)
{
    if (lim->max_output_queue >= lim->max_record_size || (!seen->queue && !seen->record))
        return;
    char key[160];
    key_join(key, sizeof key, prefix, seen->queue ? "max_output_queue" : "max_record_size");
    report(c, seen->queue ? seen->queue : seen->record, key,
           "max_output_queue (%llu) must be at least max_record_size (%lu)",
           (unsigned long long)lim->max_output_queue, (unsigned long)lim->max_record_size);
}

static int check_eid(struct ctx *c, const config_setting_t *g, const char *prefix,
                     const char *name, const char *id, uint32_t max_len)
{
    int rc = eid_check(id, strlen(id), max_len);
    if (rc == EID_OK)
        return 0;
    char key[160];
    key_join(key, sizeof key, prefix, name);
    char qb[QUOTE_CAP];
    report(c, config_setting_get_member(g, name), key, "%s is not a valid endpoint ID (%s)",
           quote(qb, id), eid_err_name(rc));
    return -1;
}

static void parse_relay(struct ctx *c, const config_setting_t *root, struct relay_config *cfg)
{
    const config_setting_t *g = get_group(c, root, "", "relay");
    const char *id = DEFAULT_ENDPOINT_ID;
    long long workers = 0;
    if (g) {
        check_keys(c, g, "relay", relay_keys);
        get_int(c, g, "relay", "workers", 0, MAX_WORKERS, &workers);
        get_u32(c, g, "relay", "max_endpoint_id_length", 32, 4096,
                &cfg->max_endpoint_id_length);
        int e;
        if (get_enum(c, g, "relay", "from_id_policy", from_id_names, NELEM(from_id_names),
                     &e) == 1)
            cfg->from_id_policy = (enum from_id_policy)e;
        if (get_enum(c, g, "relay", "duplicate_id_policy", dup_id_names,
                     NELEM(dup_id_names), &e) == 1)
            cfg->duplicate_id_policy = (enum duplicate_id_policy)e;
        if (get_enum(c, g, "relay", "connect_records", connect_records_names,
                     NELEM(connect_records_names), &e) == 1)
            cfg->connect_records = (enum connect_records_mode)e;
        get_seconds(c, g, "relay", "shutdown_timeout", 0.0, 300.0, &cfg->shutdown_timeout_ms);
        if (get_string(c, g, "relay", "endpoint_id", &id) == 1)
            check_eid(c, g, "relay", "endpoint_id", id, cfg->max_endpoint_id_length);
    }
    cfg->endpoint_id = dup_or_flag(c, id);

    if (workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        workers = n < 1 ? 1 : n > MAX_WORKERS ? MAX_WORKERS : n;
    }
    cfg->workers = (unsigned)workers;
}

static void parse_log(struct ctx *c, const config_setting_t *root, struct relay_config *cfg)
{
    const config_setting_t *g = get_group(c, root, "", "log");
    if (!g)
        return;
    check_keys(c, g, "log", log_keys);
    const char *v;
    char qb[QUOTE_CAP];
    if (get_string(c, g, "log", "level", &v) == 1 && log_level_parse(v, &cfg->log_level) != 0)
        report(c, config_setting_get_member(g, "level"), "log.level",
               "%s is not one of: error, warn, info, debug", quote(qb, v));
}

/* ------------------------------------------------------------------ listeners */

/* What the cross-listener checks need to know about one listener. */
struct listener_state {
    const config_setting_t *name_s; /* NULL unless the name is valid */
    const config_setting_t *bind_s; /* address/port (stomp) or path (uds), when valid */
    int family;                     /* AF_INET / AF_INET6 for TCP listeners */
    unsigned char addr[16];
};

static int valid_listener_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_LISTENER_NAME)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!(is_name_char(ch) && ch != '*') && ch != '.')
            return 0;
    }
    return 1;
}

/* The subscribe destination goes into CONNECTED unescaped, so it may hold none of the
 * bytes STOMP would need to escape. Returns NULL or what is wrong with T. */
static const char *template_problem(const char *t)
{
    const char *p = strstr(t, "{eid}");
    if (!p)
        return "must contain {eid}";
    if (strstr(p + 1, "{eid}"))
        return "must contain {eid} exactly once";
    if (strpbrk(t, "\r\n\\:"))
        return "must not contain CR, LF, '\\' or ':' (CONNECTED headers are not escaped)";
    return NULL;
}

/* Parse an octal mode string such as "0660". */
static int parse_octal_mode(const char *s, uint32_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 4)
        return -1;
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '7')
            return -1;
        v = v * 8 + (uint32_t)(s[i] - '0');
    }
    if (v > 0777)
        return -1;
    *out = v;
    return 0;
}

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!is_digit((unsigned char)*s))
            return 0;
    return 1;
}

/* Resolve a user (IS_GROUP 0) or group name, or a numeric ID, to its ID.
 * Returns 0, -1 when unknown, -2 on a lookup failure (errno set). */
static int resolve_id(const char *name, int is_group, unsigned long *id)
{
    if (all_digits(name)) {
        errno = 0;
        unsigned long v = strtoul(name, NULL, 10);
        if (errno || v >= (unsigned long)UINT32_MAX)
            return -1;
        *id = v;
        return 0;
    }
    long sz = sysconf(is_group ? _SC_GETGR_R_SIZE_MAX : _SC_GETPW_R_SIZE_MAX);
    size_t cap = sz > 0 ? (size_t)sz : 16384;
    for (;;) {
        char *buf = malloc(cap);
        if (!buf)
            return -2;
        int rc;
        int found = 0;
        if (is_group) {
            struct group gr, *res = NULL;
            rc = getgrnam_r(name, &gr, buf, cap, &res);
            if (rc == 0 && res) {
                *id = (unsigned long)gr.gr_gid;
                found = 1;
            }
        } else {
            struct passwd pw, *res = NULL;
            rc = getpwnam_r(name, &pw, buf, cap, &res);
            if (rc == 0 && res) {
                *id = (unsigned long)pw.pw_uid;
                found = 1;
            }
        }
        free(buf);
        if (rc == ERANGE && cap < (1u << 20)) {
            cap *= 2;
            continue;
        }
        if (found)
            return 0;
        if (rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM)
            return -1;
        errno = rc;
        return -2;
    }
}

static void parse_stomp(struct ctx *c, const config_setting_t *g, const char *pre,
                        struct listener_cfg *l, struct listener_state *st)
{
    struct stomp_listener_cfg *sc = &l->stomp;
    const char *s;
    long long v;
    char key[160];
    char qb[QUOTE_CAP];
    int addr_ok = 0, port_ok = 0;

    int r = get_string(c, g, pre, "address", &s);
    if (r == 0) {
        key_join(key, sizeof key, pre, "address");
        report(c, g, key, "required for a stomp listener (e.g. \"127.0.0.1\" or \"::1\")");
    } else if (r == 1) {
        if (inet_pton(AF_INET, s, st->addr) == 1) {
            st->family = AF_INET;
            addr_ok = 1;
        } else if (inet_pton(AF_INET6, s, st->addr) == 1) {
            st->family = AF_INET6;
            addr_ok = 1;
        } else {
            key_join(key, sizeof key, pre, "address");
            report(c, config_setting_get_member(g, "address"), key,
                   "%s is not a numeric IPv4 or IPv6 address", quote(qb, s));
        }
        l->address = dup_or_flag(c, s);
    }
    r = get_int(c, g, pre, "port", 1, 65535, &v);
    if (r == 0) {
        key_join(key, sizeof key, pre, "port");
        report(c, g, key, "required for a stomp listener (STOMP's usual port is 61613)");
    } else if (r == 1) {
        l->port = (uint16_t)v;
        port_ok = 1;
    }
    if (addr_ok && port_ok)
        st->bind_s = config_setting_get_member(g, "port");

    s = DEFAULT_SUBSCRIBE_TEMPLATE;
    if (get_string(c, g, pre, "subscribe_dest_template", &s) == 1) {
        const char *why = template_problem(s);
        if (why) {
            key_join(key, sizeof key, pre, "subscribe_dest_template");
            report(c, config_setting_get_member(g, "subscribe_dest_template"), key, "%s", why);
        }
    }
    sc->subscribe_dest_template = dup_or_flag(c, s);

    get_bool(c, g, pre, "allow_any_subscribe", &sc->allow_any_subscribe);

    const char *login = NULL, *pass = NULL;
    int rl = get_string(c, g, pre, "login", &login);
    int rp = get_string(c, g, pre, "passcode", &pass);
    if (rl == 1 && *login == '\0') {
        key_join(key, sizeof key, pre, "login");
        report(c, config_setting_get_member(g, "login"), key, "must not be empty");
    }
    if (rl == 1 && rp == 0) {
        key_join(key, sizeof key, pre, "passcode");
        report(c, config_setting_get_member(g, "login"), key,
               "login is set but passcode is not: set both or neither");
    } else if (rp == 1 && rl == 0) {
        key_join(key, sizeof key, pre, "login");
        report(c, config_setting_get_member(g, "passcode"), key,
               "passcode is set but login is not: set both or neither");
    }
    if (rl == 1 && rp == 1) {
        sc->login = dup_or_flag(c, login);
        sc->passcode = dup_or_flag(c, pass);
    }

    get_u32(c, g, pre, "heartbeat_send_ms", 0, 86400000, &sc->heartbeat_send_ms);
    get_u32(c, g, pre, "heartbeat_receive_ms", 0, 86400000, &sc->heartbeat_receive_ms);
    get_u32(c, g, pre, "heartbeat_grace_percent", 0, 1000, &sc->heartbeat_grace_pct);
    get_u32(c, g, pre, "max_frame_head", 256, 1048576, &sc->max_frame_head);
    get_u32(c, g, pre, "max_headers", 1, STOMP_HEADERS_CAP, &sc->max_headers);
}

static void parse_uds(struct ctx *c, const config_setting_t *g, const char *pre,
                      const struct relay_config *cfg, struct listener_cfg *l,
                      struct listener_state *st)
{
    struct uds_listener_cfg *u = &l->uds;
    const char *s;
    char key[160];
    char qb[QUOTE_CAP];

    int r = get_string(c, g, pre, "path", &s);
    if (r == 0) {
        key_join(key, sizeof key, pre, "path");
        report(c, g, key, "required for a uds listener");
    } else if (r == 1) {
        key_join(key, sizeof key, pre, "path");
        if (*s == '\0')
            report(c, config_setting_get_member(g, "path"), key, "must not be empty");
        else if (strlen(s) >= sizeof(((struct sockaddr_un *)0)->sun_path))
            report(c, config_setting_get_member(g, "path"), key,
                   "longer than %zu bytes, the most a socket address holds",
                   sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
        else
            st->bind_s = config_setting_get_member(g, "path");
        u->path = dup_or_flag(c, s);
    }

    const config_setting_t *ms = config_setting_get_member(g, "mode");
    if (ms) {
        key_join(key, sizeof key, pre, "mode");
        int t = config_setting_type(ms);
        if (t == CONFIG_TYPE_STRING) {
            if (parse_octal_mode(config_setting_get_string(ms), &u->mode) != 0)
                report(c, ms, key, "%s is not an octal mode between \"0\" and \"0777\"",
                       quote(qb, config_setting_get_string(ms)));
        } else if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
            long long v = config_setting_get_int64(ms);
            if (literal_is(c, ms, LIT_LEADING_ZERO))
                report(c, ms, key, "libconfig reads %lld as decimal, not octal; "
                                   "write the mode as a string, e.g. \"0660\"", v);
            else if (t == CONFIG_TYPE_INT && literal_is(c, ms, LIT_OVERFLOW))
                report(c, ms, key, "value does not fit in 32 bits");
            else if (v < 0 || v > 0777)
                report(c, ms, key, "%lld is out of range (0..0777 = 511); "
                                   "write the mode as a string, e.g. \"0660\"", v);
            else
                u->mode = (uint32_t)v;
        } else {
            report(c, ms, key, "expected an octal string such as \"0660\", found %s",
                   type_desc(t));
        }
    }

    const char *const who[2] = {"owner", "group"};
    for (int is_group = 0; is_group < 2; is_group++) {
        if (get_string(c, g, pre, who[is_group], &s) != 1)
            continue;
        key_join(key, sizeof key, pre, who[is_group]);
        const config_setting_t *ws = config_setting_get_member(g, who[is_group]);
        unsigned long id = 0;
        int rc = resolve_id(s, is_group, &id);
        if (rc == -1) {
            report(c, ws, key, "no such %s %s", is_group ? "group" : "user", quote(qb, s));
        } else if (rc == -2) {
            report(c, ws, key, "cannot look up %s: %s", quote(qb, s), strerror(errno));
        } else if (is_group) {
            u->group_gid = (gid_t)id;
        } else {
            u->owner_uid = (uid_t)id;
        }
        char *d = dup_or_flag(c, s);
        if (is_group)
            u->group = d;
        else
            u->owner = d;
    }

    if (get_string(c, g, pre, "peer_endpoint_id", &s) == 1) {
        check_eid(c, g, pre, "peer_endpoint_id", s, cfg->max_endpoint_id_length);
        u->peer_endpoint_id = dup_or_flag(c, s);
    }
}

static void parse_listener(struct ctx *c, const config_setting_t *g, size_t idx,
                           const struct relay_config *cfg, struct listener_cfg *l,
                           struct listener_state *st)
{
    char pre[64], key[160];
    char qb[QUOTE_CAP];
    snprintf(pre, sizeof pre, "listeners[%zu]", idx);
    l->line = (int)config_setting_source_line(g);
    l->backlog = 128;
    l->limits = cfg->limits;
    l->stomp.heartbeat_send_ms = 30000;
    l->stomp.heartbeat_receive_ms = 30000;
    l->stomp.heartbeat_grace_pct = 50;
    l->stomp.max_frame_head = 16384;
    l->stomp.max_headers = 32;
    l->uds.mode = 0660;
    l->uds.owner_uid = (uid_t)-1;
    l->uds.group_gid = (gid_t)-1;

    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        report(c, g, pre, "expected a listener group { name = ...; type = ...; }, found %s",
               type_desc(config_setting_type(g)));
        return;
    }

    const char *s;
    int r = get_string(c, g, pre, "name", &s);
    if (r == 0) {
        key_join(key, sizeof key, pre, "name");
        report(c, g, key, "required (a unique name used in logs)");
    } else if (r == 1) {
        if (!valid_listener_name(s)) {
            key_join(key, sizeof key, pre, "name");
            report(c, config_setting_get_member(g, "name"), key,
                   "%s must be 1..%d characters from A-Z a-z 0-9 . _ -", quote(qb, s),
                   MAX_LISTENER_NAME);
        } else {
            st->name_s = config_setting_get_member(g, "name");
        }
        l->name = dup_or_flag(c, s);
    }

    unsigned types = FOR_ALL; /* type unknown: judge keys by the union */
    int t;
    r = get_enum(c, g, pre, "type", listener_type_names, NELEM(listener_type_names), &t);
    if (r == 0) {
        key_join(key, sizeof key, pre, "type");
        report(c, g, key, "required: \"stomp\" or \"uds\"");
    } else if (r == 1) {
        l->type = (enum listener_type)t;
        types = 1u << t;
    }

    int n = config_setting_length(g);
    for (int i = 0; i < n; i++) {
        const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
        const char *nm = config_setting_name(m);
        size_t k;
        for (k = 0; listener_keys[k]; k++)
            if (strcmp(nm, listener_keys[k]) == 0)
                break;
        key_join(key, sizeof key, pre, nm);
        if (!listener_keys[k])
            report_unknown(c, m, key, listener_keys);
        else if (!(listener_key_types[k] & types))
            report(c, m, key, "not valid for a %s listener (only for %s listeners)",
                   listener_type_name(l->type),
                   listener_key_types[k] & FOR_STOMP ? "stomp" : "uds");
    }

    long long v;
    if (get_int(c, g, pre, "backlog", 1, 65535, &v) == 1)
        l->backlog = (int)v;

    const config_setting_t *lg = get_group(c, g, pre, "limits");
    if (lg) {
        char lpre[80];
        snprintf(lpre, sizeof lpre, "%s.limits", pre);
        struct limits_seen seen = {NULL, NULL};
        parse_limits(c, lg, lpre, &l->limits, &seen);
        check_limits(c, lpre, &l->limits, &seen);
    }

    if (r != 1)
        return; /* without a type, the type-specific keys cannot be judged */
    if (l->type == LISTENER_STOMP)
        parse_stomp(c, g, pre, l, st);
    else
        parse_uds(c, g, pre, cfg, l, st);
}

static int is_wildcard(const struct listener_state *st)
{
    static const unsigned char zero[16];
    return memcmp(st->addr, zero, st->family == AF_INET ? 4 : 16) == 0;
}

/* Two TCP listeners collide on the same port when their addresses are equal or either is
 * a wildcard (:: usually covers IPv4 too): with SO_REUSEPORT the second bind would not
 * even fail, it would silently share the connections. */
static int tcp_collide(const struct listener_cfg *a, const struct listener_state *sa,
                       const struct listener_cfg *b, const struct listener_state *sb)
{
    if (a->port != b->port)
        return 0;
    if (is_wildcard(sa) || is_wildcard(sb))
        return 1;
    return sa->family == sb->family &&
           memcmp(sa->addr, sb->addr, sa->family == AF_INET ? 4 : 16) == 0;
}

/* Only listeners whose relevant fields parsed (and were copied: an allocation may have
 * failed) take part. */
static void cross_check_listeners(struct ctx *c, const struct relay_config *cfg,
                                  const struct listener_state *st)
{
    char key[160];
    char qb[QUOTE_CAP];
    for (size_t j = 0; j < cfg->n_listeners; j++) {
        const struct listener_cfg *b = &cfg->listeners[j];
        for (size_t i = 0; i < j; i++) {
            const struct listener_cfg *a = &cfg->listeners[i];
            if (st[i].name_s && st[j].name_s && a->name && b->name &&
                strcmp(a->name, b->name) == 0) {
                snprintf(key, sizeof key, "listeners[%zu].name", j);
                report(c, st[j].name_s, key, "duplicate listener name %s (also listeners[%zu])",
                       quote(qb, b->name), i);
            }
            if (!st[i].bind_s || !st[j].bind_s || a->type != b->type)
                continue;
            if (a->type == LISTENER_STOMP && a->address && b->address &&
                tcp_collide(a, &st[i], b, &st[j])) {
                snprintf(key, sizeof key, "listeners[%zu].port", j);
                report(c, st[j].bind_s, key, "%s port %u overlaps listeners[%zu] (%s port %u)",
                       b->address, (unsigned)b->port, i, a->address, (unsigned)a->port);
            } else if (a->type == LISTENER_UDS && a->uds.path && b->uds.path &&
                       strcmp(a->uds.path, b->uds.path) == 0) {
                snprintf(key, sizeof key, "listeners[%zu].path", j);
                report(c, st[j].bind_s, key, "socket path %s is also used by listeners[%zu]",
                       quote(qb, b->uds.path), i);
            }
        }
    }
}

static void parse_listeners(struct ctx *c, const config_setting_t *root,
                            struct relay_config *cfg)
{
    const config_setting_t *ls = config_setting_get_member(root, "listeners");
    if (!ls) {
        report(c, NULL, "listeners", "required: at least one listener");
        return;
    }
    if (config_setting_type(ls) != CONFIG_TYPE_LIST) {
        report(c, ls, "listeners", "expected a list ( { ... }, ... ), found %s",
               type_desc(config_setting_type(ls)));
        return;
    }
    int n = config_setting_length(ls);
    if (n <= 0) {
        report(c, ls, "listeners", "at least one listener is required");
        return;
    }
    cfg->listeners = calloc((size_t)n, sizeof *cfg->listeners);
    struct listener_state *st = calloc((size_t)n, sizeof *st);
    if (!cfg->listeners || !st) {
        free(st);
        c->oom = 1;
        return;
    }
    cfg->n_listeners = (size_t)n;
    for (int i = 0; i < n; i++)
        parse_listener(c, config_setting_get_elem(ls, (unsigned)i), (size_t)i, cfg,
                       &cfg->listeners[i], &st[i]);
    cross_check_listeners(c, cfg, st);
    free(st);
}

/* ------------------------------------------------------------------ entry points */

static void set_defaults(struct relay_config *cfg)
{
    cfg->workers = 0;
    cfg->max_endpoint_id_length = 256;
    cfg->from_id_policy = FROM_ID_ENFORCE;
    cfg->duplicate_id_policy = DUP_REPLACE_OLD;
    cfg->connect_records = CONNECT_RECORDS_PASS;
    cfg->shutdown_timeout_ms = 5000;
    cfg->log_level = LOG_INFO;
    cfg->limits.max_record_size = 5242880;
    cfg->limits.max_unidentified_input = 65536;
    cfg->limits.max_output_queue = 16777216;
    cfg->limits.handshake_timeout_ms = 10000;
}

static void validate(struct ctx *c, const config_t *lc, struct relay_config *cfg)
{
    const config_setting_t *root = config_root_setting(lc);
    check_keys(c, root, "", top_keys);
    parse_relay(c, root, cfg);
    parse_log(c, root, cfg);
    const config_setting_t *lim = get_group(c, root, "", "limits");
    if (lim) {
        struct limits_seen seen = {NULL, NULL};
        parse_limits(c, lim, "limits", &cfg->limits, &seen);
        check_limits(c, "limits", &cfg->limits, &seen);
    }
    parse_listeners(c, root, cfg);
}

int config_load(const char *path, struct relay_config **out, char *err, size_t errlen)
{
    struct ctx c;
    memset(&c, 0, sizeof c);
    c.path = path;
    *out = NULL;
    if (err && errlen)
        err[0] = '\0';

    /* files[0] is the main file; it must exist before anything is reported. */
    c.files = calloc(1, sizeof *c.files);
    const char *slash = strrchr(path, '/');
    c.incdir = slash ? strndup(path, (size_t)(slash - path) + (slash == path))
                     : strdup(".");
    if (c.files) {
        c.files[0].recorded = strdup(path);
        c.files[0].display = strdup(path);
    }
    if (!c.files || !c.incdir || !c.files[0].recorded || !c.files[0].display) {
        if (err && errlen)
            snprintf(err, errlen, "%s:0: -: out of memory\n", path);
        if (c.files) {
            free(c.files[0].recorded);
            free(c.files[0].display);
        }
        free(c.files);
        free(c.incdir);
        return 1;
    }
    c.n_files = 1;

    struct relay_config *cfg = calloc(1, sizeof *cfg);
    struct lex_state ls;
    memset(&ls, 0, sizeof ls);
    char *text = NULL;
    size_t len;
    const char *why;
    if (!cfg) {
        c.oom = 1;
        c.count++;
    } else if (read_source(&c, path, &text, &len, &why) != 0) {
        report_at(&c, NULL, 0, "-", "cannot read file: %s", why);
    } else {
        scan_text(&c, 0, &ls, 0, text, len);
        if (!ls.syntax_error) {
            /* libconfig parses the very text that was scanned. */
            config_t lc;
            config_init(&lc);
            config_set_include_dir(&lc, c.incdir);
            if (!config_read_string(&lc, text)) {
                const char *f = config_error_file(&lc);
                report_at(&c, f, (unsigned)config_error_line(&lc), "-", "%s",
                          config_error_text(&lc) ? config_error_text(&lc) : "parse error");
            } else {
                set_defaults(cfg);
                cfg->path = dup_or_flag(&c, path);
                validate(&c, &lc, cfg);
            }
            config_destroy(&lc);
        }
        free(text);
    }

    if (c.oom && c.count == 0)
        c.count = 1;
    int count = c.count;
    flush_errors(&c, err, errlen);
    ctx_free(&c);
    if (count) {
        config_free(cfg);
        return count;
    }
    *out = cfg;
    return 0;
}

void config_free(struct relay_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        struct listener_cfg *l = &cfg->listeners[i];
        free(l->name);
        free(l->address);
        free(l->stomp.subscribe_dest_template);
        free(l->stomp.login);
        free(l->stomp.passcode);
        free(l->uds.path);
        free(l->uds.owner);
        free(l->uds.group);
        free(l->uds.peer_endpoint_id);
    }
    free(cfg->listeners);
    free(cfg->endpoint_id);
    free(cfg->path);
    free(cfg);
}
