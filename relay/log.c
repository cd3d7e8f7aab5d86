/* log.c — see log.h. The level is a relaxed atomic so any thread may read it on the
 * hot path for the price of a load. */
#include "relay/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static _Atomic int g_level = LOG_INFO;
static _Atomic int g_fd = -1;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level level)
{
    atomic_store_explicit(&g_level, (int)level, memory_order_relaxed);
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load_explicit(&g_level, memory_order_relaxed);
}

int log_enabled(enum log_level level)
{
    return (int)level <= atomic_load_explicit(&g_level, memory_order_relaxed);
}

int log_level_parse(const char *s, enum log_level *out)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

const char *log_level_name(enum log_level level)
{
    if ((unsigned)level >= sizeof level_names / sizeof level_names[0])
        return "?";
    return level_names[level];
}

void log_set_fd(int fd)
{
    atomic_store(&g_fd, fd);
}

void log_msg(enum log_level level, const char *event, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;

    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    int w = snprintf(line + n, sizeof line - n, ".%03ldZ level=%s event=%s ",
                     ts.tv_nsec / 1000000L, log_level_name(level), event);
    if (w > 0)
        n += (size_t)w < sizeof line - n ? (size_t)w : sizeof line - n - 1;

    va_list ap;
    va_start(ap, fmt);
    w = vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    if (w > 0)
        n += (size_t)w < sizeof line - n ? (size_t)w : sizeof line - n - 1;
    while (n > 0 && line[n - 1] == ' ')
        n--;
    line[n++] = '\n';

    int fd = atomic_load(&g_fd);
    ssize_t r = write(fd >= 0 ? fd : STDERR_FILENO, line, n);
    (void)r; /* nowhere left to report a failed log write */
}

char *log_escape(char *dst, size_t cap, const void *src, size_t n, size_t max)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = src;
    size_t o = 0;

    if (cap < 8) {
        if (cap)
            dst[0] = '\0';
        return dst;
    }
    dst[o++] = '"';
    size_t i;
    for (i = 0; i < n && i < max; i++) {
        unsigned char c = s[i];
        if (o + 8 >= cap) /* room for an escape, the ellipsis' quote and NUL */
            break;
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            dst[o++] = (char)c;
        } else {
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        }
    }
    dst[o++] = '"';
    if (i < n && o + 4 <= cap) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o] = '\0';
    return dst;
}
