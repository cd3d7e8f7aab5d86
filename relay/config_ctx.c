/* config_ctx.c — the configuration loader's context: the source files it has seen and
 * the errors reported against them (see config_ctx.h).
 *
 * Errors are collected rather than returned, so one run of config_load() reports every
 * problem in the file; they are sorted by file and line, in reporting order within a
 * line, and written out together at the end.
 */
#include "relay/config_ctx.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STORED_ERRORS 200

int config_ctx_init(struct config_ctx *c, const char *path)
{
    memset(c, 0, sizeof *c);
    c->path = path;
    /* files[0] is the main file; it must exist before anything is reported. */
    c->files = calloc(1, sizeof *c->files);
    const char *slash = strrchr(path, '/');
    c->incdir = slash ? strndup(path, (size_t)(slash - path) + (slash == path))
                      : strdup(".");
    if (c->files) {
        c->files[0].recorded = strdup(path);
        c->files[0].display = strdup(path);
    }
    if (!c->files || !c->incdir || !c->files[0].recorded || !c->files[0].display) {
        if (c->files) {
            free(c->files[0].recorded);
            free(c->files[0].display);
        }
        free(c->files);
        free(c->incdir);
        return -1;
    }
    c->n_files = 1;
    return 0;
}

void config_ctx_free(struct config_ctx *c)
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

char *config_dup(struct config_ctx *c, const char *s)
{
    char *d = strdup(s);
    if (!d)
        c->oom = 1;
    return d;
}

size_t config_file_index(struct config_ctx *c, const char *recorded)
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

static void add_error(struct config_ctx *c, size_t rank, unsigned line, const char *key,
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

void config_report(struct config_ctx *c, const config_setting_t *s, const char *key,
                   const char *fmt, ...)
{
    size_t rank = s ? config_file_index(c, config_setting_source_file(s)) : 0;
    unsigned line = s ? (unsigned)config_setting_source_line(s) : 0;
    va_list ap;
    va_start(ap, fmt);
    add_error(c, rank, line, key, fmt, ap);
    va_end(ap);
}

void config_report_at(struct config_ctx *c, const char *recorded, unsigned line,
                      const char *key, const char *fmt, ...)
{
    size_t rank = config_file_index(c, recorded);
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

void config_flush_errors(struct config_ctx *c, char *err, size_t errlen)
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
