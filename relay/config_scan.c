/* config_scan.c — the raw-text pre-scan of the configuration file and its @includes.
 *
 * Before libconfig sees the text, scan_text() lexes it (and its @includes) once, for
 * four libconfig 1.5 defects that are invisible in the parsed tree:
 *  - an integer literal without the L suffix is stored as a 32-bit int, silently wrapped
 *    when it does not fit (5000000000 reads as 705032704);
 *  - "0660" written as an integer is read as decimal 660;
 *  - a "\x00" escape in a string is dropped ("a\x00b" reads as "ab");
 *  - a syntax error whose offending token is a string leaks that string (the grammar
 *    has no destructor), so such errors are reported here and libconfig never runs.
 * The first three are noted per file and looked up later with config_literal_is().
 */
#include "relay/config_ctx.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_SCAN_BYTES (4u << 20) /* "larger than 4 MiB": surely a mistake */

/* Lexer state carried across files, since an @include splices its tokens into the
 * includer's stream. */
enum prev_tok { P_START, P_STRING, P_ASSIGN, P_COMMA, P_OPEN_LIST, P_OTHER };

struct lex_state {
    enum prev_tok prev;
    unsigned depth;        /* open brackets */
    char open[256];        /* the innermost brackets: '{', '(' or '[' */
    int syntax_error;      /* reported: libconfig must not run */
};

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

static void add_note(struct config_ctx *c, struct src_file *f, unsigned line,
                     enum lit_kind kind, const char *name)
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
static void classify_number(struct config_ctx *c, struct src_file *f, const char *t, size_t n,
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
static int read_source(struct config_ctx *c, const char *path, char **text, size_t *len,
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

/* Is the escape at S (N bytes, S[0] == '\\') one libconfig turns into a NUL byte? */
static int is_nul_escape(const char *s, size_t n)
{
    return n >= 4 && (s[1] == 'x' || s[1] == 'X') && s[2] == '0' && s[3] == '0';
}

/* Lex the text BUF of file FI once: note integer literals libconfig would misread and
 * strings holding a NUL escape (with
 * the name of the setting they belong to and that name's line, the line libconfig
 * records), report a string where libconfig's grammar cannot take one, and recurse into
 * @includes. */
static void scan_file(struct config_ctx *c, size_t fi, struct lex_state *ls,
                      unsigned include_depth, const char *from, unsigned line);

static void scan_text(struct config_ctx *c, size_t fi, struct lex_state *ls,
                      unsigned include_depth, const char *buf, size_t len)
{
    /* libconfig would stop at a NUL and silently ignore the rest. */
    const char *nul = memchr(buf, '\0', len);
    if (nul) {
        unsigned nl = 1;
        for (const char *p = buf; p < nul; p++)
            nl += *p == '\n';
        config_report_at(c, c->files[fi].recorded, nl, "-", "file contains a NUL byte");
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
                size_t ii = config_file_index(c, inc);
                if (ii != 0) /* 0: out of memory, or the main file including itself */
                    scan_file(c, ii, ls, include_depth + 1, c->files[fi].recorded, line);
            }
            i = j + 1;
        } else if (ch == '"') {
            int ok = ls->prev == P_ASSIGN || ls->prev == P_STRING || ls->prev == P_OPEN_LIST ||
                     (ls->prev == P_COMMA && ls->depth > 0 &&
                      (ls->depth > sizeof ls->open || ls->open[ls->depth - 1] != '{'));
            if (!ok) {
                config_report_at(
                    c, c->files[fi].recorded, line, "-",
                    "syntax error: unexpected string (a setting name was expected)");
                ls->syntax_error = 1;
                break;
            }
            for (i++; i < len && buf[i] != '"'; i++) {
                if (buf[i] == '\\' && i + 1 < len) {
                    if (first_scan && is_nul_escape(buf + i, len - i))
                        add_note(c, &c->files[fi], name_line, LIT_NUL_ESCAPE, name);
                    i++;
                }
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
static void scan_file(struct config_ctx *c, size_t fi, struct lex_state *ls,
                      unsigned include_depth, const char *from, unsigned line)
{
    char *buf;
    size_t len;
    const char *why;
    if (read_source(c, c->files[fi].display, &buf, &len, &why) != 0) {
        config_report_at(c, from, line, "-", "cannot read include file %s: %s",
                         c->files[fi].display, why);
        ls->syntax_error = 1;
        return;
    }
    scan_text(c, fi, ls, include_depth, buf, len);
    free(buf);
}

/* Did the source of int setting S carry a literal of KIND? */
int config_literal_is(struct config_ctx *c, const config_setting_t *s, enum lit_kind kind)
{
    const char *nm = config_setting_name(s);
    if (!nm)
        return 0;
    const struct src_file *f = &c->files[config_file_index(c, config_setting_source_file(s))];
    unsigned line = (unsigned)config_setting_source_line(s);
    for (size_t i = 0; i < f->n_notes; i++)
        if (f->notes[i].line == line && f->notes[i].kind == kind &&
            strcmp(f->notes[i].name, nm) == 0)
            return 1;
    return 0;
}

int config_scan(struct config_ctx *c, char **text)
{
    struct lex_state ls;
    memset(&ls, 0, sizeof ls);
    size_t len;
    const char *why;
    if (read_source(c, c->path, text, &len, &why) != 0) {
        config_report_at(c, NULL, 0, "-", "cannot read file: %s", why);
        return -1;
    }
    scan_text(c, 0, &ls, 0, *text, len);
    if (ls.syntax_error) {
        free(*text);
        *text = NULL;
        return -1;
    }
    return 0;
}
