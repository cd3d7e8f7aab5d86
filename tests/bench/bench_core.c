/* bench_core.c — per-Record costs on the hot path, measured in isolation:
 * the Record header scan, the STOMP head decode, and the router lookup with many
 * endpoints. Prints figures (operations/s, ns/op); it never passes or fails on time.
 * End-to-end figures through the daemon live with the load generator.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "relay/mtp/stomp_codec.h"
#include "relay/record.h"
#include "relay/record_build.h"
#include "relay/router.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static volatile uint64_t sink;

static void report(const char *name, uint64_t ops, double secs, size_t bytes_per_op)
{
    printf("%-34s %12.0f ops/s %9.1f ns/op", name, (double)ops / secs, secs * 1e9 / (double)ops);
    if (bytes_per_op)
        printf(" %9.1f MB/s", (double)ops * (double)bytes_per_op / secs / 1e6);
    printf("\n");
}

static void bench_scan(const char *name, enum record_type type, size_t payload_len)
{
    uint8_t *payload = calloc(1, payload_len ? payload_len : 1);
    struct record_fields f = {.version = "1.3", .to_id = "os::00256D-0123456789",
                              .from_id = "self::usp-controller", .type = type,
                              .payload = payload, .payload_len = payload_len,
                              .session_id = 7, .sequence_id = 3, .expected_id = 3,
                              .payload_security = type == RECORD_SESSION ? 1u : 0u};
    uint8_t *rec;
    size_t len;
    if (record_build(&f, &rec, &len) != 0) {
        fprintf(stderr, "record_build failed\n");
        exit(1);
    }
    struct record_header h;
    uint64_t n = 0;
    double t0 = now_s(), t;
    do {
        for (int i = 0; i < 10000; i++) {
            sink += (uint64_t)record_scan(rec, len, 256, &h) + h.to_id.len;
            n++;
        }
        t = now_s() - t0;
    } while (t < 0.5);
    report(name, n, t, len);
    free(rec);
    free(payload);
}

static void bench_stomp_head(void)
{
    static const char frame[] =
        "SEND\ndestination:/usp/endpoint/os%3A%3A00256D-0123456789\n"
        "content-type:application/vnd.bbf.usp.msg\ncontent-length:4096\n"
        "reply-to-dest:/usp/endpoint/self%3A%3Ausp-controller\n\n";
    struct stomp_limits lim = {16384, 32, 5u << 20};
    struct stomp_frame f;
    uint64_t n = 0;
    double t0 = now_s(), t;
    do {
        for (int i = 0; i < 10000; i++) {
            sink += (uint64_t)stomp_decode_head((const uint8_t *)frame, sizeof frame - 1, 0, &lim, &f);
            n++;
        }
        t = now_s() - t0;
    } while (t < 0.5);
    report("stomp_decode_head SEND", n, t, 0);
}

static void bench_router(size_t endpoints)
{
    struct router *r = router_new();
    static const struct span none = {NULL, 0};
    char (*keys)[40] = malloc(endpoints * sizeof *keys);
    for (size_t i = 0; i < endpoints; i++) {
        snprintf(keys[i], sizeof keys[i], "os::00256D-%010zu", i);
        struct route t = {(unsigned)(i & 1), i + 1};
        router_bind(r, ROUTER_IDS, span_from_str(keys[i], strlen(keys[i])), none, t,
                    DUP_REPLACE_OLD, NULL);
    }
    struct span from = span_from_str("self::ctrl", 10);
    uint64_t n = 0;
    size_t k = 0;
    double t0 = now_s(), t;
    do {
        for (int i = 0; i < 10000; i++) {
            struct route got;
            k = (k + 7919) % endpoints;
            sink += (uint64_t)router_lookup(r, span_from_str(keys[k], strlen(keys[k])), from, &got) +
                    got.conn_id;
            n++;
        }
        t = now_s() - t0;
    } while (t < 0.5);
    char name[64];
    snprintf(name, sizeof name, "router_lookup (%zu endpoints)", endpoints);
    report(name, n, t, 0);
    free(keys);
    router_free(r);
}

int main(void)
{
    printf("# bench_core: single thread, hot caches\n");
    bench_scan("record_scan no_session 64 B", RECORD_NO_SESSION, 64);
    bench_scan("record_scan no_session 4 KiB", RECORD_NO_SESSION, 4096);
    bench_scan("record_scan session TLS12 64 KiB", RECORD_SESSION, 65536);
    bench_scan("record_scan websocket_connect", RECORD_WS_CONNECT, 0);
    bench_stomp_head();
    bench_router(1000);
    bench_router(1000000);
    return 0;
}
