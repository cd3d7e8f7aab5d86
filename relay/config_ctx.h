/* config_ctx.h — internals shared by the configuration loader's files; not an API.
 *
 * config_load() (config.c) threads one struct config_ctx through the source scan
 * (config_scan.c), the typed getters and key checks (config_get.c) and the listener
 * parser (config_listeners.c); config_ctx.c collects the errors they report. Only those
 * files include this header: the rest of the relay sees config.h alone.
 */
#ifndef USPRELAY_CONFIG_CTX_H
#define USPRELAY_CONFIG_CTX_H

#include <libconfig.h>
#include <stddef.h>
#include <stdint.h>

#include "relay/config.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* What the source scan found about one literal: an integer libconfig misreads, or a
 * string with a "\x00" escape, which libconfig drops without a word. */
enum lit_kind { LIT_OVERFLOW, LIT_LEADING_ZERO, LIT_NUL_ESCAPE };

#define CONFIG_NUL_ESCAPE_MSG \
    "contains \\x00, which libconfig silently drops: strings cannot hold NUL bytes"

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

struct cfg_error {
    size_t file_rank; /* index into config_ctx.files: messages sort by file, then line */
    unsigned line;
    size_t seq;
    char *text;
};

struct config_ctx {
    const char *path;
    char *incdir; /* directory of path: @include is relative to it */
    struct src_file *files;
    size_t n_files;
    struct cfg_error *errs;
    size_t n_errs;
    int count;    /* errors found, including any that could not be stored */
    int oom;      /* an allocation failed: reported once at the end */
};

/* ---- config_ctx.c: the context and its error list */

/* Set up C for loading PATH (files[0] is PATH itself). Returns 0, or -1 when out of
 * memory, with nothing left allocated. */
int config_ctx_init(struct config_ctx *c, const char *path);

void config_ctx_free(struct config_ctx *c);

/* strdup that records an allocation failure in C instead of returning it. */
char *config_dup(struct config_ctx *c, const char *s);

/* The index of the source file libconfig recorded as RECORDED (NULL: the main file),
 * registering it on first sight. Returns 0 (the main file) when out of memory. */
size_t config_file_index(struct config_ctx *c, const char *recorded);

/* Report an error about setting S (NULL: the file as a whole, line 0) at KEY. */
__attribute__((format(printf, 4, 5)))
void config_report(struct config_ctx *c, const config_setting_t *s, const char *key,
                   const char *fmt, ...);

/* Report at an explicit source position (libconfig parse errors). */
__attribute__((format(printf, 5, 6)))
void config_report_at(struct config_ctx *c, const char *recorded, unsigned line,
                      const char *key, const char *fmt, ...);

/* Write the messages, sorted by file and line, into ERR (always terminated, truncated
 * to ERRLEN). */
void config_flush_errors(struct config_ctx *c, char *err, size_t errlen);

/* ---- config_scan.c: the raw-text pre-scan */

/* Read the main file into *TEXT (NUL-terminated, free it) and scan it and its @includes.
 * Returns 0 when libconfig may parse *TEXT, -1 when a problem was reported instead. */
int config_scan(struct config_ctx *c, char **text);

/* Did the source of setting S (an int, a string, or a list or array of strings) carry a
 * literal of KIND? */
int config_literal_is(struct config_ctx *c, const config_setting_t *s, enum lit_kind kind);

/* ---- config_get.c: typed getters and key checks */

/* Key paths as the messages print them: "relay.workers", "listeners[1].limits.port". */
void config_key_join(char *dst, size_t cap, const char *prefix, const char *name);

/* A value from the file, quoted and escaped for a message into BUF[CONFIG_QUOTE_CAP]: a
 * string may hold newlines or control bytes, and every message must stay one line. */
#define CONFIG_QUOTE_CAP 128
const char *config_quote(char *buf, const char *s);

/* "an integer", "a group", ... for a libconfig CONFIG_TYPE_*. */
const char *config_type_desc(int type);

/* The getters read member NAME of group G; PREFIX is G's key path for messages. They
 * return 1 when NAME is present and valid (the value stored), 0 when it is absent, -1
 * when it is present but wrong (reported). */
int config_get_int(struct config_ctx *c, const config_setting_t *g, const char *prefix,
                   const char *name, long long lo, long long hi, long long *out);
int config_get_u32(struct config_ctx *c, const config_setting_t *g, const char *prefix,
                   const char *name, long long lo, long long hi, uint32_t *out);
/* A duration in seconds (integer or float) in [LO, HI], stored as milliseconds. */
int config_get_seconds(struct config_ctx *c, const config_setting_t *g, const char *prefix,
                       const char *name, double lo, double hi, uint32_t *out_ms);
int config_get_string(struct config_ctx *c, const config_setting_t *g, const char *prefix,
                      const char *name, const char **out);
int config_get_bool(struct config_ctx *c, const config_setting_t *g, const char *prefix,
                    const char *name, int *out);
/* A string that must be one of NAMES[0..N); *out is its index. */
int config_get_enum(struct config_ctx *c, const config_setting_t *g, const char *prefix,
                    const char *name, const char *const *names, size_t n, int *out);

/* A member that must be a group; returns it, or NULL when absent or wrong (reported). */
const config_setting_t *config_get_group(struct config_ctx *c, const config_setting_t *g,
                                         const char *prefix, const char *name);

/* Check endpoint ID ID, the value of member NAME of G. Returns 0, or -1 (reported). */
int config_check_eid(struct config_ctx *c, const config_setting_t *g, const char *prefix,
                     const char *name, const char *id, uint32_t max_len);

/* Report member S at KEY as unknown, suggesting the nearest of ALLOWED (NULL-ended). */
void config_report_unknown(struct config_ctx *c, const config_setting_t *s, const char *key,
                           const char *const *allowed);

/* Report every member of group G whose name is not in ALLOWED (NULL-ended). */
void config_check_keys(struct config_ctx *c, const config_setting_t *g, const char *prefix,
                       const char *const *allowed);

/* ---- config.c: groups shared with the listeners */

/* Parse a limits group G (key path PREFIX) over the values already in LIM, and check
 * that they fit together. */
void config_parse_limits(struct config_ctx *c, const config_setting_t *g, const char *prefix,
                         struct limits_cfg *lim);

/* ---- config_listeners.c */

/* Parse and cross-check the "listeners" list of ROOT into CFG (whose relay settings and
 * limits are already parsed: listeners inherit them). */
void config_parse_listeners(struct config_ctx *c, const config_setting_t *root,
                            struct relay_config *cfg);

/* ---- config_cache.c */

/* Parse the optional "cache" group of ROOT into CFG->cache, setting the defaults whether
 * or not the group is there (relay.max_endpoint_id_length and limits.max_record_size
 * must already be parsed: exclude patterns and the byte bounds are checked against
 * them). CFG->cache.exclude is freed by config_free(). */
void config_parse_cache(struct config_ctx *c, const config_setting_t *root,
                        struct relay_config *cfg);

#endif
