/* log.h — leveled, one-line, key=value logging to stderr.
 *
 * Every line is "<UTC time> level=<level> event=<event> key=value ...". Lines are
 * written with a single write(2) so threads never interleave. Bytes that came from a
 * peer are passed through log_escape() first: escaped and truncated, never raw.
 * Nothing is logged per Record at info level.
 */
#ifndef USPRELAY_LOG_H
#define USPRELAY_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
int log_enabled(enum log_level level);

/* Parse "error" | "warn" | "info" | "debug"; returns 0 or -1. */
int log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);

/* Log EVENT with the key=value text FMT. */
void log_msg(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Write at most MAX source bytes of SRC into DST (capacity CAP, always terminated),
 * as a double-quoted string with \xNN for anything not printable ASCII and for
 * quote and backslash, and "..." appended when SRC was longer. Returns DST. */
char *log_escape(char *dst, size_t cap, const void *src, size_t n, size_t max);

/* Redirect output (tests); fd -1 restores stderr. */
void log_set_fd(int fd);

#define log_error(ev, ...) log_msg(LOG_ERROR, ev, __VA_ARGS__)
#define log_warn(ev, ...)  log_msg(LOG_WARN, ev, __VA_ARGS__)
#define log_info(ev, ...)  log_msg(LOG_INFO, ev, __VA_ARGS__)
#define log_debug(ev, ...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, ev, __VA_ARGS__); } while (0)

#endif
