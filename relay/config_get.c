/* config_get.c — typed access to libconfig settings for the configuration loader: each
 * getter checks a member's type and range and reports what is wrong at its file:line
 * (see config_ctx.h), and config_check_keys() rejects keys nobody reads, suggesting the
 * nearest valid one.
 */
#include "relay/config_ctx.h"

#include <stdio.h>
#include <string.h>

#include "relay/endpoint_id.h"
#include "relay/log.h"

/* ------------------------------------------------------------------ typed getters */

void config_key_join(char *dst, size_t cap, const char *prefix, const char *name)
{
    if (prefix && *prefix)
        snprintf(dst, cap, "%s.%s", prefix, name);
    else
        snprintf(dst, cap, "%s", name);
}

const char *config_quote(char *buf, const char *s)
{
    return log_escape(buf, CONFIG_QUOTE_CAP, s, strlen(s), 96);
}

const char *config_type_desc(int type)
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

int config_get_int(struct config_ctx *c, const config_setting_t *g, const char *prefix,
                   const char *name, long long lo, long long hi, long long *out)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    if (!s)
        return 0;
    char key[160];
    config_key_join(key, sizeof key, prefix, name);
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
        config_report(c, s, key, "expected an integer, found %s", config_type_desc(t));
        return -1;
    }
    if (t == CONFIG_TYPE_INT && config_literal_is(c, s, LIT_OVERFLOW)) {
        config_report(c, s, key, "value does not fit in 32 bits (libconfig would wrap it); "
                                 "append L for a 64-bit integer, e.g. 5000000000L");
        return -1;
    }
    long long v = config_setting_get_int64(s);
    if (v < lo || v > hi) {
        config_report(c, s, key, "%lld is out of range (%lld..%lld)", v, lo, hi);
        return -1;
    }
    *out = v;
    return 1;
}

int config_get_u32(struct config_ctx *c, const config_setting_t *g, const char *prefix,
                   const char *name, long long lo, long long hi, uint32_t *out)
{
    long long v;
    int r = config_get_int(c, g, prefix, name, lo, hi, &v);
    if (r == 1)
        *out = (uint32_t)v;
    return r;
}

/* A duration in seconds (integer or float) in [LO, HI], stored as milliseconds. */
int config_get_seconds(struct config_ctx *c, const config_setting_t *g, const char *prefix,
                       const char *name, double lo, double hi, uint32_t *out_ms)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    if (!s)
        return 0;
    char key[160];
    config_key_join(key, sizeof key, prefix, name);
    int t = config_setting_type(s);
    double v;
    if (t == CONFIG_TYPE_FLOAT) {
        v = config_setting_get_float(s);
    } else if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
        if (t == CONFIG_TYPE_INT && config_literal_is(c, s, LIT_OVERFLOW)) {
            config_report(c, s, key, "value does not fit in 32 bits");
            return -1;
        }
        v = (double)config_setting_get_int64(s);
    } else {
        config_report(c, s, key, "expected a number of seconds, found %s",
                      config_type_desc(t));
        return -1;
    }
    if (!(v >= lo && v <= hi)) { /* written so that NaN fails too */
        config_report(c, s, key, "%g seconds is out of range (%g..%g)", v, lo, hi);
        return -1;
    }
    *out_ms = (uint32_t)(v * 1000.0 + 0.5);
    return 1;
}

int config_get_string(struct config_ctx *c, const config_setting_t *g, const char *prefix,
                      const char *name, const char **out)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    if (!s)
        return 0;
    char key[160];
    config_key_join(key, sizeof key, prefix, name);
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        config_report(c, s, key, "expected a string, found %s",
                      config_type_desc(config_setting_type(s)));
        return -1;
    }
    if (config_literal_is(c, s, LIT_NUL_ESCAPE)) {
        config_report(c, s, key, "%s", CONFIG_NUL_ESCAPE_MSG);
        return -1;
    }
    *out = config_setting_get_string(s);
    return 1;
}

int config_get_bool(struct config_ctx *c, const config_setting_t *g, const char *prefix,
                    const char *name, int *out)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    if (!s)
        return 0;
    if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
        char key[160];
        config_key_join(key, sizeof key, prefix, name);
        config_report(c, s, key, "expected true or false, found %s",
                      config_type_desc(config_setting_type(s)));
        return -1;
    }
    *out = config_setting_get_bool(s) ? 1 : 0;
    return 1;
}

/* A string that must be one of NAMES; *out is its index. */
int config_get_enum(struct config_ctx *c, const config_setting_t *g, const char *prefix,
                    const char *name, const char *const *names, size_t n, int *out)
{
    const char *v;
    int r = config_get_string(c, g, prefix, name, &v);
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
    config_key_join(key, sizeof key, prefix, name);
    char qb[CONFIG_QUOTE_CAP];
    config_report(c, config_setting_get_member(g, name), key, "%s is not one of: %s",
                  config_quote(qb, v), list);
    return -1;
}

/* A member that must be a group; returns it, or NULL when absent or wrong (reported). */
const config_setting_t *config_get_group(struct config_ctx *c, const config_setting_t *g,
                                         const char *prefix, const char *name)
{
    const config_setting_t *s = config_setting_get_member(g, name);
    if (!s)
        return NULL;
    if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
        char key[160];
        config_key_join(key, sizeof key, prefix, name);
        config_report(c, s, key, "expected a group { ... }, found %s",
                      config_type_desc(config_setting_type(s)));
        return NULL;
    }
    return s;
}

int config_check_eid(struct config_ctx *c, const config_setting_t *g, const char *prefix,
                     const char *name, const char *id, uint32_t max_len)
{
    int rc = eid_check(id, strlen(id), max_len);
    if (rc == EID_OK)
        return 0;
    char key[160];
    config_key_join(key, sizeof key, prefix, name);
    char qb[CONFIG_QUOTE_CAP];
    config_report(c, config_setting_get_member(g, name), key,
                  "%s is not a valid endpoint ID (%s)", config_quote(qb, id), eid_err_name(rc));
    return -1;
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

void config_report_unknown(struct config_ctx *c, const config_setting_t *s, const char *key,
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
        config_report(c, s, key, "unknown key (did you mean \"%s\"?)", best);
    else
        config_report(c, s, key, "unknown key");
}

static int in_list(const char *name, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(name, list[i]) == 0)
            return 1;
    return 0;
}

/* Report every member of group G whose name is not in ALLOWED. */
void config_check_keys(struct config_ctx *c, const config_setting_t *g, const char *prefix,
                       const char *const *allowed)
{
    int n = config_setting_length(g);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        const char *nm = config_setting_name(s);
        if (!nm || in_list(nm, allowed))
            continue;
        char key[160];
        config_key_join(key, sizeof key, prefix, nm);
        config_report_unknown(c, s, key, allowed);
    }
}
