/* bench_cache.c — the offline cache in isolation: how fast Records go in (cache_put)
 * and come out in order (cache_take, as a reconnecting endpoint drains them), and what
 * one cached Record costs in memory beyond its own bytes. In memory only (the durable
 * mode is not built yet). Prints figures; it never passes or fails on time.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "relay/cache.h"
#include "relay/rbuf.h"
#include "relay/record.h"
#include "relay/record_build.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_bytes(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

/* N Records of PAYLOAD bytes spread over ENDPOINTS destinations, built up front. */
static struct rbuf **make_records(size_t n, size_t endpoints, size_t payload)
{
    struct rbuf **v = calloc(n, sizeof *v);
    uint8_t *body = calloc(1, payload ? payload : 1);
    if (!v || !body)
        exit(1);
    for (size_t i = 0; i < n; i++) {
        char to[64];
        snprintf(to, sizeof to, "os::00256D-%08zu", i % endpoints);
        struct record_fields f = {.version = "1.3", .to_id = to,
                                  .from_id = "self::usp-controller",
                                  .type = RECORD_NO_SESSION, .payload = body,
                                  .payload_len = payload};
        uint8_t *rec;
        size_t len;
        if (record_build(&f, &rec, &len) != 0 || !(v[i] = rbuf_new(len)))
            exit(1);
        memcpy(v[i]->data, rec, len);
        v[i]->len = (uint32_t)len;
        v[i]->rx_ns = rbuf_now_ns();
        free(rec);
        if (record_scan(v[i]->data, v[i]->len, 256, &v[i]->hdr) != 0)
            exit(1);
    }
    free(body);
    return v;
}

static void run(size_t n, size_t endpoints, size_t payload)
{
    struct rbuf **recs = make_records(n, endpoints, payload);
    uint64_t record_bytes = 0;
    for (size_t i = 0; i < n; i++)
        record_bytes += recs[i]->len;
    struct cache_limits lim = {.ttl_ns = 3600ull * 1000000000ull,
                               .max_records_per_endpoint = (uint32_t)n,
                               .max_bytes_per_endpoint = UINT64_MAX / 4,
                               .max_records = n, .max_bytes = UINT64_MAX / 4};
    struct cache *c = cache_new(&lim);
    struct stats st;
    memset(&st, 0, sizeof st);
    if (!c)
        exit(1);

    /* The Records' own memory is counted before: what follows is the cache's. */
    long rss0 = rss_bytes();
    double t0 = now_s();
    for (size_t i = 0; i < n; i++)
        cache_put(c, recs[i], rbuf_now_ns(), &st, NULL);
    double t_in = now_s() - t0;
    long rss1 = rss_bytes();

    struct cache_batch b = {0};
    size_t out = 0;
    t0 = now_s();
    for (size_t e = 0; e < endpoints; e++) {
        char to[64];
        int len = snprintf(to, sizeof to, "os::00256D-%08zu", e);
        struct span eid = {(const uint8_t *)to, (size_t)len};
        struct cache_take_opts o = {.to = {0, 1}, .max_bytes = 16u << 20,
                                    .max_records = SIZE_MAX, .overhead = 512};
        while (cache_take(c, eid, &o, rbuf_now_ns(), &b, &st) > 0) {
            out += b.n;
            cache_batch_clear(&b);
        }
        out += b.n;
        cache_batch_clear(&b);
    }
    double t_out = now_s() - t0;
    cache_batch_free(&b);
    printf("cache %7zu records x %5zu B over %6zu endpoints: in %10.0f rec/s, "
           "drained %10.0f rec/s, %6.1f B/record beyond its bytes (RSS)%s\n",
           n, (size_t)(record_bytes / n), endpoints, (double)n / t_in, (double)out / t_out,
           (double)(rss1 - rss0) / (double)n, out == n ? "" : " [LOST RECORDS]");
    cache_free(c);
    free(recs);
}

int main(void)
{
    run(200000, 1, 256);
    run(200000, 1000, 256);
    run(200000, 100000, 256);
    run(50000, 1000, 4096);
    return 0;
}
