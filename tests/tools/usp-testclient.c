/* usp-testclient.c — one USP endpoint over STOMP, UDS or WebSocket, for tests, demos and
 * benchmarks.
 *
 * Connects to usprelayd as a single endpoint, sends generated or given Records, receives,
 * checks and optionally echoes Records, and reports each one on stdout. Single-threaded:
 * one non-blocking socket driven by poll(), so sending and receiving interleave and two
 * clients pushing at each other never deadlock. Framing and Record handling reuse the
 * relay's own codecs (stomp_codec, uds_codec, ws_codec, record_scan, record_build); the
 * WebSocket client side (RFC 6455 handshake and frames, TR-369 R-WS.9-16) is here, since
 * libwebsockets wants its own service loop. Usage and output format: docs/usp-testclient.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "relay/endpoint_id.h"
#include "relay/mtp/stomp_codec.h"
#include "relay/mtp/uds_codec.h"
#include "relay/mtp/ws_codec.h"
#include "relay/record.h"
#include "relay/record_build.h"
#include "usp-record.pb-c.h"

#define EXIT_EXPECT 1
#define EXIT_PROTO 2
#define EXIT_WS_REFUSED 3 /* handshake: not 101, bad accept, no v1.usp, wrong peer eid */
#define EXIT_WS_TEXT 4    /* a text message: no Record can be extracted (R-WS.16) */
#define EXIT_WS_CLOSED 5  /* the server closed the session before we were done */
#define EXIT_USAGE 64

#define CONTENT_TYPE "application/vnd.bbf.usp.msg"
#define DEST_TEMPLATE_PRE "/usp/endpoint/"
#define SUB_RECEIPT "sub-0"
#define BYE_RECEIPT "bye"
#define MAX_RECORD (256u * 1024u * 1024u) /* the relay's own ceiling for max_record_size */
#define MAX_ID_LEN 4096u
#define READ_CHUNK (256u * 1024u)
#define OUT_LOW_WATER (1024u * 1024u)     /* generate more Records below this much queued */
#define MAX_ORDER_REPORTS 10

#define WS_DEFAULT_PATH "/usp"
#define WS_SUBPROTOCOL "v1.usp"
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" /* RFC 6455 §1.3 */
#define WS_MAX_HEAD 8192u                             /* the server's response head */
#define WS_MAX_MESSAGE (64u * 1024u * 1024u)          /* a reassembled message */
#define WS_FIN 0x80u
#define WS_OP_CONT 0x0u
#define WS_OP_TEXT 0x1u
#define WS_OP_BINARY 0x2u
#define WS_OP_CLOSE 0x8u
#define WS_OP_PING 0x9u
#define WS_OP_PONG 0xAu
#define WS_CLOSE_NORMAL 1000u
#define WS_CLOSE_NO_STATUS 1005u /* RFC 6455 §7.4.1: what a Close without a code reports */

enum mtp { MTP_STOMP_CLIENT, MTP_UDS_CLIENT, MTP_WS_CLIENT };

enum phase {
    PH_HANDSHAKE, /* STOMP: waiting for CONNECTED; UDS: for the server's handshake;
                   * WS: for the 101 answer */
    PH_SUBSCRIBE, /* STOMP only: waiting for the SUBSCRIBE receipt */
    PH_READY,
    PH_BYE,       /* STOMP: DISCONNECT sent, waiting for its receipt; WS: Close sent or
                   * received, waiting for the other one or the end of the stream */
    PH_DONE,
};

struct opts {
    enum mtp mtp;
    const char *addr;
    size_t addr_len;        /* STOMP, WS: length of HOST:PORT at the start of ADDR */
    const char *ws_path;    /* WS: request path, from ADDR or the default */
    const char *expect_peer;
    size_t ws_fragment;     /* WS: payload bytes per outgoing frame, 0 = one frame */
    int ws_ext;
    const char *eid, *to, *dest, *login, *passcode;
    const char *payload_file, *record_file, *out_dir;
    const char *payload;
    size_t payload_len;
    int have_payload;
    uint64_t send, expect;
    int send_given, expect_given;
    size_t size;
    int tls12, check_order, echo, quiet, wait_stdin, stats;
    double timeout;
};

/* Bytes from OFF to LEN are pending; [0, OFF) is consumed and reclaimed lazily. */
struct buf {
    uint8_t *p;
    size_t off, len, cap;
};

struct sender_seq {
    char *id;
    uint64_t next;
};

struct client {
    struct opts o;
    int fd;
    enum phase phase;
    int go;                 /* allowed to start sending (after --wait-stdin's line) */
    int status;             /* exit status decided so far */
    struct buf in, out;
    size_t in_need;         /* bytes the frame at the front of IN needs, 0 if unknown */
    size_t body_seen;       /* STOMP: bytes of a NUL-terminated body already searched */
    char *sub_dest;         /* STOMP: our subscription */
    char *to_dest;          /* STOMP: destination of the Records we send */
    const uint8_t *fixed;   /* --payload / --payload-file / --record-file bytes */
    size_t fixed_len;
    uint8_t *file_data;     /* owns the file bytes behind FIXED */
    uint8_t *seq_payload;   /* scratch for generated payloads */
    uint64_t queued, sent, received;
    uint64_t written;       /* bytes written to the socket so far */
    uint64_t *ends;         /* cumulative end offsets of queued Records, for SENT */
    size_t ends_head, ends_len, ends_cap;
    struct sender_seq *seqs;
    size_t n_seqs;
    unsigned order_reports;
    int order_failed;
    /* --stats: when the --send series started and was fully written; first and last
     * Record received, and the bytes received. */
    double t_send_start, t_send_end, t_first_recv, t_last_recv;
    uint64_t recv_bytes;
    uint64_t series_end;    /* socket offset where the --send series ends, 0 until queued */
    /* WebSocket */
    char ws_accept[32];     /* the Sec-WebSocket-Accept our key calls for */
    char *ws_ext_line;      /* --ws-ext: the whole request header line, CRLF included */
    struct buf ws_msg;      /* fragments of the binary message being reassembled */
    int ws_in_msg;          /* a fragmented message has begun */
    int ws_close_sent, ws_close_recv;
    int ws_close_early;     /* the server closed before the client was done */
    uint64_t ws_pings;
    uint8_t ws_rand[1024];  /* random bytes for frame masks, refilled when used up */
    size_t ws_rand_off;
};

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    (void)sig;
    got_signal = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Milliseconds for poll(), rounded up so a wait never ends just before the deadline. */
static int poll_ms(double left)
{
    return left > 1e6 ? 1000000000 : (int)(left * 1000.0) + 1;
}

static void fail(struct client *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record a failure; the first protocol error wins over an expectation failure. */
static void fail(struct client *c, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (status > c->status)
        c->status = status;
}

/* Printable copy of untrusted bytes for one stderr line. */
static const char *printable(char *dst, size_t cap, const uint8_t *p, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < cap; i++) {
        uint8_t b = p[i];
        if (b >= 0x20 && b < 0x7f && b != '\\') {
            dst[o++] = (char)b;
        } else {
            int n = snprintf(dst + o, cap - o, "\\x%02x", b);
            o += (size_t)n;
        }
    }
    dst[o] = '\0';
    return dst;
}

/* ------------------------------------------------------------------ buffers */

static int buf_reserve(struct buf *b, size_t extra)
{
    if (b->off == b->len)
        b->off = b->len = 0;
    if (b->cap - b->len >= extra)
        return 0;
    if (b->off > 0) {
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->cap - b->len >= extra)
            return 0;
    }
    size_t cap = b->cap ? b->cap : 65536;
    while (cap - b->len < extra) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_add(struct buf *b, const void *data, size_t len)
{
    if (buf_reserve(b, len) != 0)
        return -1;
    if (len)
        memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

static size_t buf_pending(const struct buf *b)
{
    return b->len - b->off;
}

static int read_file(const char *path, uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct buf b = {0};
    if (!f)
        return -1;
    for (;;) {
        if (buf_reserve(&b, 65536) != 0)
            break;
        size_t n = fread(b.p + b.len, 1, b.cap - b.len, f);
        b.len += n;
        if (n == 0) {
            if (ferror(f))
                break;
            fclose(f);
            *data = b.p ? b.p : malloc(1);
            *len = b.len;
            return *data ? 0 : -1;
        }
    }
    fclose(f);
    free(b.p);
    return -1;
}

/* ------------------------------------------------------------------ sending */

static int dest_for(const char *eid, size_t len, char **out)
{
    size_t pre = sizeof DEST_TEMPLATE_PRE - 1;
    size_t enc = eid_pct_encode(eid, len, NULL, 0);
    char *d = malloc(pre + enc + 1);
    if (!d)
        return -1;
    memcpy(d, DEST_TEMPLATE_PRE, pre);
    eid_pct_encode(eid, len, d + pre, enc + 1);
    *out = d;
    return 0;
}

/* Note where a just-queued Record ends, so SENT counts only Records fully written. */
static int note_record_end(struct client *c)
{
    if (c->ends_head == c->ends_len)
        c->ends_head = c->ends_len = 0;
    if (c->ends_len == c->ends_cap) {
        if (c->ends_head > 0) {
            memmove(c->ends, c->ends + c->ends_head,
                    (c->ends_len - c->ends_head) * sizeof *c->ends);
            c->ends_len -= c->ends_head;
            c->ends_head = 0;
        } else {
            size_t cap = c->ends_cap ? c->ends_cap * 2 : 256;
            uint64_t *e = realloc(c->ends, cap * sizeof *e);
            if (!e)
                return -1;
            c->ends = e;
            c->ends_cap = cap;
        }
    }
    c->ends[c->ends_len++] = c->written + buf_pending(&c->out);
    return 0;
}

static int ws_queue_message(struct client *c, const uint8_t *rec, size_t len);

/* Frame REC for our MTP and queue it. DEST: STOMP destination. */
static int queue_record(struct client *c, const uint8_t *rec, size_t len, const char *dest)
{
    if (c->o.mtp == MTP_WS_CLIENT) {
        if (ws_queue_message(c, rec, len) != 0)
            return -1;
    } else if (c->o.mtp == MTP_UDS_CLIENT) {
        uint8_t hdr[UDS_SINGLE_HEADER_LEN];
        if (len > UDS_MAX_VALUE_LEN) {
            fail(c, EXIT_PROTO, "error record of %zu bytes does not fit in a UDS frame", len);
            return -1;
        }
        uds_encode_single_header(hdr, UDS_TLV_RECORD, (uint32_t)len);
        if (buf_add(&c->out, hdr, sizeof hdr) != 0 || buf_add(&c->out, rec, len) != 0)
            goto nomem;
    } else {
        char head[8192], clen[32];
        snprintf(clen, sizeof clen, "%zu", len);
        struct stomp_kv h[4] = {
            {"destination", dest, strlen(dest)},
            {"content-type", CONTENT_TYPE, sizeof CONTENT_TYPE - 1},
            {"content-length", clen, strlen(clen)},
            {"reply-to-dest", c->sub_dest, strlen(c->sub_dest)},
        };
        long hl = stomp_encode_head(head, sizeof head, STOMP_CMD_SEND, h, 4, 1);
        if (hl < 0) {
            fail(c, EXIT_PROTO, "error cannot encode SEND: %s", stomp_err_name((int)hl));
            return -1;
        }
        if (buf_add(&c->out, head, (size_t)hl) != 0 || buf_add(&c->out, rec, len) != 0 ||
            buf_add(&c->out, "", 1) != 0)
            goto nomem;
    }
    if (note_record_end(c) != 0)
        goto nomem;
    return 0;
nomem:
    fail(c, EXIT_PROTO, "error out of memory");
    return -1;
}

static void fill_seq_payload(uint8_t *p, size_t size, uint64_t seq)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(seq >> (56 - 8 * i));
    for (size_t k = 8; k < size; k++)
        p[k] = (uint8_t)(seq + k);
}

/* Build and queue Record number SEQ (1-based) of the --send series. */
static int queue_next(struct client *c, uint64_t seq)
{
    if (c->o.record_file)
        return queue_record(c, c->fixed, c->fixed_len, c->to_dest);

    struct record_fields f = {0};
    f.to_id = c->o.to;
    f.from_id = c->o.eid;
    if (c->o.have_payload || c->o.payload_file) {
        f.payload = c->fixed;
        f.payload_len = c->fixed_len;
    } else {
        fill_seq_payload(c->seq_payload, c->o.size, seq);
        f.payload = c->seq_payload;
        f.payload_len = c->o.size;
    }
    if (c->o.tls12) {
        f.type = RECORD_SESSION;
        f.payload_security = 1;
        f.session_id = 1;
        f.sequence_id = seq;
        f.expected_id = 1;
    } else {
        f.type = RECORD_NO_SESSION;
    }
    uint8_t *rec;
    size_t len;
    if (record_build(&f, &rec, &len) != 0) {
        fail(c, EXIT_PROTO, "error cannot build record");
        return -1;
    }
    int rc = queue_record(c, rec, len, c->to_dest);
    free(rec);
    return rc;
}

/* ------------------------------------------------------------------ receiving */

/* Payload of a Record: no_session_context payload or the first session_context payload.
 * Returns the unpacked Record (caller frees) or NULL when protobuf-c refuses the bytes. */
static UspRecord__Record *record_payload(const uint8_t *rec, size_t len, const uint8_t **p,
                                         size_t *plen)
{
    UspRecord__Record *r = usp_record__record__unpack(NULL, len, rec);
    *p = NULL;
    *plen = 0;
    if (!r)
        return NULL;
    if (r->record_type_case == USP_RECORD__RECORD__RECORD_TYPE_NO_SESSION_CONTEXT &&
        r->no_session_context) {
        *p = r->no_session_context->payload.data;
        *plen = r->no_session_context->payload.len;
    } else if (r->record_type_case == USP_RECORD__RECORD__RECORD_TYPE_SESSION_CONTEXT &&
               r->session_context && r->session_context->n_payload > 0) {
        *p = r->session_context->payload[0].data;
        *plen = r->session_context->payload[0].len;
    }
    return r;
}

static int payload_seq(const uint8_t *p, size_t len, uint64_t *seq)
{
    if (!p || len < 8)
        return 0;
    uint64_t s = 0;
    for (int i = 0; i < 8; i++)
        s = (s << 8) | p[i];
    *seq = s;
    return 1;
}

static void check_order(struct client *c, const struct record_header *h, int scanned, int has_seq,
                        uint64_t seq, const uint8_t *p, size_t plen)
{
    const char *why = NULL;
    char from[MAX_ID_LEN + 1] = "-";
    uint64_t want = 0;

    if (scanned)
        snprintf(from, sizeof from, "%.*s", (int)h->from_id.len, (const char *)h->from_id.ptr);
    if (!scanned) {
        why = "malformed record";
    } else if (!has_seq) {
        why = "no sequence number";
    } else {
        struct sender_seq *s = NULL;
        for (size_t i = 0; i < c->n_seqs; i++)
            if (strcmp(c->seqs[i].id, from) == 0)
                s = &c->seqs[i];
        if (!s) {
            struct sender_seq *n = realloc(c->seqs, (c->n_seqs + 1) * sizeof *n);
            char *id = strdup(from);
            if (!n || !id) {
                free(id);
                if (n)
                    c->seqs = n;
                fail(c, EXIT_PROTO, "error out of memory");
                return;
            }
            c->seqs = n;
            s = &c->seqs[c->n_seqs++];
            s->id = id;
            s->next = 1;
        }
        want = s->next;
        if (seq != want) {
            why = "out of order";
        } else {
            for (size_t k = 8; k < plen; k++)
                if (p[k] != (uint8_t)(seq + k)) {
                    why = "corrupt padding";
                    break;
                }
        }
        /* Resynchronise after a gap so one loss is reported once, not for every Record. */
        s->next = seq + 1;
    }
    if (!why)
        return;
    c->order_failed = 1;
    if (c->order_reports++ < MAX_ORDER_REPORTS) {
        if (has_seq)
            fprintf(stderr, "order %s: from=%s seq=%" PRIu64 " expected=%" PRIu64 "\n", why, from,
                    seq, want);
        else
            fprintf(stderr, "order %s: from=%s n=%" PRIu64 "\n", why, from, c->received);
    }
}

static void write_out_file(struct client *c, const uint8_t *rec, size_t len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%" PRIu64 ".rec", c->o.out_dir, c->received);
    FILE *f = fopen(path, "wb");
    int ok = f != NULL;
    if (ok && len)
        ok = fwrite(rec, 1, len, f) == len;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok)
        fail(c, EXIT_EXPECT, "cannot write %s: %s", path, strerror(errno));
}

/* Answer REC (from H) with the same payload. REPLY: STOMP reply-to-dest or NULL. */
static void echo_record(struct client *c, const struct record_header *h, const UspRecord__Record *r,
                        const uint8_t *p, size_t plen, const char *reply)
{
    char to[MAX_ID_LEN + 1];
    snprintf(to, sizeof to, "%.*s", (int)h->from_id.len, (const char *)h->from_id.ptr);
    struct record_fields f = {0};
    f.to_id = to;
    f.from_id = c->o.eid;
    f.payload = p;
    f.payload_len = plen;
    f.payload_security = h->payload_security;
    if (r->record_type_case == USP_RECORD__RECORD__RECORD_TYPE_SESSION_CONTEXT) {
        f.type = RECORD_SESSION;
        f.session_id = h->session_id;
        f.sequence_id = h->sequence_id;
        f.expected_id = h->sequence_id + 1;
    } else {
        f.type = RECORD_NO_SESSION;
    }
    /* STOMP: answer where the MESSAGE said to (R-STOMP.23), else the relay's alias. */
    char *dest = NULL;
    if (c->o.mtp == MTP_STOMP_CLIENT) {
        if (reply)
            dest = strdup(reply);
        else if (dest_for(to, strlen(to), &dest) != 0)
            dest = NULL;
        if (!dest) {
            fail(c, EXIT_PROTO, "error out of memory");
            return;
        }
    }
    uint8_t *rec;
    size_t len;
    if (record_build(&f, &rec, &len) != 0) {
        fail(c, EXIT_PROTO, "error cannot build echo record");
    } else {
        queue_record(c, rec, len, dest);
        free(rec);
    }
    free(dest);
}

static void on_record(struct client *c, const uint8_t *rec, size_t len, const char *reply)
{
    struct record_header h;
    const uint8_t *p = NULL;
    size_t plen = 0;
    uint64_t seq = 0;

    c->received++;
    if (c->o.stats) {
        c->t_last_recv = now_s();
        if (c->received == 1)
            c->t_first_recv = c->t_last_recv;
        c->recv_bytes += len;
    }
    int e = record_scan(rec, len, MAX_ID_LEN, &h);
    UspRecord__Record *r = e == RECORD_OK ? record_payload(rec, len, &p, &plen) : NULL;
    int has_seq = r ? payload_seq(p, plen, &seq) : 0;

    if (!c->o.quiet) {
        char seqs[24] = "-";
        if (has_seq)
            snprintf(seqs, sizeof seqs, "%" PRIu64, seq);
        if (e == RECORD_OK)
            printf("recv n=%" PRIu64 " from=%.*s to=%.*s type=%s len=%zu seq=%s\n", c->received,
                   (int)h.from_id.len, (const char *)h.from_id.ptr, (int)h.to_id.len,
                   (const char *)h.to_id.ptr, record_type_name(h.type), len, seqs);
        else
            printf("recv n=%" PRIu64 " from=- to=- type=invalid:%s len=%zu seq=-\n", c->received,
                   record_err_name(e), len);
    }
    if (c->o.out_dir)
        write_out_file(c, rec, len);
    if (c->o.check_order)
        check_order(c, &h, r != NULL, has_seq, seq, p, plen);
    if (c->o.echo && r)
        echo_record(c, &h, r, p, plen, reply);
    if (r)
        usp_record__record__free_unpacked(r, NULL);
}

/* ------------------------------------------------------------------ STOMP */

static int stomp_queue_frame(struct client *c, enum stomp_cmd cmd, const struct stomp_kv *h,
                             size_t n)
{
    char head[8192];
    long hl = stomp_encode_head(head, sizeof head, cmd, h, n, 1);
    if (hl < 0) {
        fail(c, EXIT_USAGE, "cannot encode %s: %s", stomp_cmd_name(cmd), stomp_err_name((int)hl));
        return -1;
    }
    if (buf_add(&c->out, head, (size_t)hl) != 0 || buf_add(&c->out, "", 1) != 0) {
        fail(c, EXIT_PROTO, "error out of memory");
        return -1;
    }
    return 0;
}

static int stomp_start(struct client *c, const char *host)
{
    struct stomp_kv h[6] = {
        {"accept-version", "1.2", 3},
        {"host", host, strlen(host)},
        {"endpoint-id", c->o.eid, strlen(c->o.eid)},
        {"heart-beat", "0,0", 3},
    };
    size_t n = 4;
    if (c->o.login) {
        h[n++] = (struct stomp_kv){"login", c->o.login, strlen(c->o.login)};
        h[n++] = (struct stomp_kv){"passcode", c->o.passcode, strlen(c->o.passcode)};
    }
    return stomp_queue_frame(c, STOMP_CMD_STOMP, h, n);
}

/* Unescaped, NUL-terminated copy of header NAME, or NULL (absent or bad escape). */
static char *stomp_header_dup(const struct stomp_frame *f, const char *name, int escaped)
{
    const struct stomp_header *h = stomp_header_get(f, name);
    if (!h)
        return NULL;
    char *s = malloc(h->value.len + 1);
    if (!s)
        return NULL;
    if (!escaped) {
        memcpy(s, h->value.ptr, h->value.len);
        s[h->value.len] = '\0';
        return s;
    }
    size_t n;
    if (stomp_unescape(h->value, s, h->value.len + 1, &n) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

static void ready(struct client *c, const char *what, const char *value)
{
    c->phase = PH_READY;
    printf("ready %s=%s\n", what, value);
}

static void stomp_on_frame(struct client *c, const struct stomp_frame *f)
{
    switch (f->cmd) {
    case STOMP_CMD_CONNECTED: {
        if (c->phase != PH_HANDSHAKE) {
            fail(c, EXIT_PROTO, "error unexpected CONNECTED");
            return;
        }
        /* CONNECTED is never escaped (STOMP 1.2); without subscribe-dest fall back to
         * the relay's default naming for our own ID. */
        c->sub_dest = stomp_header_dup(f, "subscribe-dest", 0);
        if (!c->sub_dest && dest_for(c->o.eid, strlen(c->o.eid), &c->sub_dest) != 0) {
            fail(c, EXIT_PROTO, "error out of memory");
            return;
        }
        struct stomp_kv h[4] = {
            {"id", "0", 1},
            {"destination", c->sub_dest, strlen(c->sub_dest)},
            {"ack", "auto", 4},
            {"receipt", SUB_RECEIPT, sizeof SUB_RECEIPT - 1},
        };
        if (stomp_queue_frame(c, STOMP_CMD_SUBSCRIBE, h, 4) == 0)
            c->phase = PH_SUBSCRIBE;
        return;
    }
    case STOMP_CMD_RECEIPT: {
        char *id = stomp_header_dup(f, "receipt-id", 1);
        if (id && strcmp(id, SUB_RECEIPT) == 0 && c->phase == PH_SUBSCRIBE)
            ready(c, "subscribe-dest", c->sub_dest);
        else if (id && strcmp(id, BYE_RECEIPT) == 0 && c->phase == PH_BYE)
            c->phase = PH_DONE;
        free(id);
        return;
    }
    case STOMP_CMD_MESSAGE: {
        if (c->phase == PH_HANDSHAKE) {
            fail(c, EXIT_PROTO, "error MESSAGE before CONNECTED");
            return;
        }
        char *reply = stomp_header_dup(f, "reply-to-dest", 1);
        on_record(c, f->body.ptr, f->body.len, reply);
        free(reply);
        return;
    }
    case STOMP_CMD_ERROR: {
        char text[1024];
        char *msg = stomp_header_dup(f, "message", 1);
        if (msg)
            printable(text, sizeof text, (const uint8_t *)msg, strlen(msg));
        else
            printable(text, sizeof text, f->body.ptr, f->body.len);
        free(msg);
        fail(c, EXIT_PROTO, "error %s", text);
        return;
    }
    default:
        fail(c, EXIT_PROTO, "error unexpected %s frame from the relay", stomp_cmd_name(f->cmd));
        return;
    }
}

static void stomp_process(struct client *c)
{
    static const struct stomp_limits lim = {1024u * 1024u, STOMP_HEADERS_CAP, MAX_RECORD};
    struct stomp_frame f;

    c->in_need = 0;
    while (c->status < EXIT_PROTO) {
        const uint8_t *p = c->in.p + c->in.off;
        size_t avail = buf_pending(&c->in);
        size_t eols = stomp_skip_eols(p, avail);
        c->in.off += eols; /* heart-beats */
        p += eols;
        avail -= eols;
        if (avail == 0)
            return;
        int hl = stomp_decode_head(p, avail, 0, &lim, &f);
        if (hl == STOMP_NEED_MORE)
            return;
        if (hl < 0) {
            fail(c, EXIT_PROTO, "error malformed frame from the relay: %s", stomp_err_name(hl));
            return;
        }
        if (f.content_length >= 0 && avail < (size_t)hl + (size_t)f.content_length + 1) {
            c->in_need = (size_t)hl + (size_t)f.content_length + 1;
            return;
        }
        long n = stomp_decode_body(p, avail, c->body_seen, &lim, &f);
        if (n == STOMP_NEED_MORE) {
            c->body_seen = avail;
            return;
        }
        c->body_seen = 0;
        if (n < 0) {
            fail(c, EXIT_PROTO, "error malformed frame from the relay: %s",
                 stomp_err_name((int)n));
            return;
        }
        stomp_on_frame(c, &f);
        c->in.off += (size_t)n;
    }
}

/* ------------------------------------------------------------------ UDS */

static int uds_queue_tlv(struct client *c, uint8_t type, const char *value, size_t len)
{
    uint8_t hdr[UDS_SINGLE_HEADER_LEN];
    uds_encode_single_header(hdr, type, (uint32_t)len);
    if (buf_add(&c->out, hdr, sizeof hdr) != 0 || buf_add(&c->out, value, len) != 0) {
        fail(c, EXIT_PROTO, "error out of memory");
        return -1;
    }
    return 0;
}

static void uds_process(struct client *c)
{
    c->in_need = 0;
    while (c->status < EXIT_PROTO) {
        const uint8_t *p = c->in.p + c->in.off;
        size_t avail = buf_pending(&c->in);
        long fs = uds_frame_size(p, avail, MAX_RECORD + 4096u);
        if (fs == UDS_NEED_MORE)
            return;
        if (fs < 0) {
            fail(c, EXIT_PROTO, "error bad frame from the relay: %s", uds_err_name((int)fs));
            return;
        }
        if (avail < (size_t)fs) {
            c->in_need = (size_t)fs;
            return;
        }
        const uint8_t *body = p + UDS_HEADER_LEN;
        size_t body_len = (size_t)fs - UDS_HEADER_LEN, off = 0;
        int n = uds_body_check(body, body_len);
        if (n < 0) {
            fail(c, EXIT_PROTO, "error bad frame from the relay: %s", uds_err_name(n));
            return;
        }
        struct uds_tlv t;
        while (c->status < EXIT_PROTO && uds_tlv_next(body, body_len, &off, &t) == 1) {
            char text[1024];
            switch (t.type) {
            case UDS_TLV_HANDSHAKE:
                if (c->phase == PH_HANDSHAKE)
                    ready(c, "peer", printable(text, sizeof text, t.value, t.len));
                break; /* later handshakes are ignored (R-UDS.19) */
            case UDS_TLV_ERROR:
                fail(c, EXIT_PROTO, "error %s", printable(text, sizeof text, t.value, t.len));
                break;
            case UDS_TLV_RECORD:
                if (c->phase != PH_HANDSHAKE) /* R-UDS.20 */
                    on_record(c, t.value, t.len, NULL);
                break;
            default:
                break; /* R-UDS.15 */
            }
        }
        c->in.off += (size_t)fs;
    }
}

/* ------------------------------------------------------------------ WebSocket */

/* Four fresh random bytes for a frame mask (RFC 6455 §5.3: unpredictable per frame). */
static int ws_next_mask(struct client *c, uint8_t mask[4])
{
    if (c->ws_rand_off + 4 > sizeof c->ws_rand) {
        if (RAND_bytes(c->ws_rand, (int)sizeof c->ws_rand) != 1)
            return -1;
        c->ws_rand_off = 0;
    }
    memcpy(mask, c->ws_rand + c->ws_rand_off, 4);
    c->ws_rand_off += 4;
    return 0;
}

/* Queue one masked frame; B0 is FIN | opcode. Nothing goes out after our Close (§5.5.1). */
static int ws_queue_frame(struct client *c, unsigned b0, const uint8_t *p, size_t len)
{
    uint8_t h[14];
    size_t hl = 2;

    if (c->ws_close_sent)
        return -1;
    h[0] = (uint8_t)b0;
    if (len < 126) {
        h[1] = (uint8_t)(0x80u | len);
    } else if (len <= 0xffff) {
        h[1] = 0x80u | 126u;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        hl = 4;
    } else {
        h[1] = 0x80u | 127u;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        hl = 10;
    }
    uint8_t *mask = h + hl;
    if (ws_next_mask(c, mask) != 0) {
        fail(c, EXIT_PROTO, "error no random bytes for a frame mask");
        return -1;
    }
    hl += 4;
    if (buf_reserve(&c->out, hl + len) != 0) {
        fail(c, EXIT_PROTO, "error out of memory");
        return -1;
    }
    uint8_t *dst = c->out.p + c->out.len;
    memcpy(dst, h, hl);
    dst += hl;
    for (size_t i = 0; i < len; i++)
        dst[i] = p[i] ^ mask[i & 3];
    c->out.len += hl + len;
    return 0;
}

/* One Record = one binary message (R-WS.14), split into --ws-fragment sized frames. */
static int ws_queue_message(struct client *c, const uint8_t *rec, size_t len)
{
    size_t step = c->o.ws_fragment && c->o.ws_fragment < len ? c->o.ws_fragment : len;
    size_t off = 0;
    unsigned op = WS_OP_BINARY;
    do {
        size_t n = len - off < step ? len - off : step;
        unsigned fin = off + n == len ? WS_FIN : 0;
        if (ws_queue_frame(c, fin | op, rec + off, n) != 0)
            return -1;
        off += n;
        op = WS_OP_CONT;
    } while (off < len);
    return 0;
}

static int ws_queue_close(struct client *c, int has_code, unsigned code)
{
    uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    int rc = ws_queue_frame(c, WS_FIN | WS_OP_CLOSE, p, has_code ? 2 : 0);
    c->ws_close_sent = 1;
    return rc;
}

/* base64(SHA-1(KEY64 + GUID)) into OUT (29 bytes with the NUL), RFC 6455 §4.2.2. */
static int ws_accept_for(const char *key64, char *out)
{
    char in[64];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int n = snprintf(in, sizeof in, "%s%s", key64, WS_GUID);
    if (n < 0 || (size_t)n >= sizeof in ||
        EVP_Digest(in, (size_t)n, md, &mdlen, EVP_sha1(), NULL) != 1)
        return -1;
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
    return 0;
}

/* The --ws-ext header line for our EID; returns 0 or an exit status. */
static int ws_ext_prepare(struct client *c)
{
    static const char name[] = "Sec-WebSocket-Extensions: ";
    size_t n = sizeof name - 1, len = strlen(c->o.eid);
    size_t cap = n + 2 * len + 64; /* every byte escaped, the fixed text, CRLF */
    char *line = malloc(cap);
    if (!line)
        return EXIT_PROTO;
    memcpy(line, name, n);
    long xl = ws_ext_bbf_format(c->o.eid, len, line + n, cap - n - 2);
    if (xl < 0) {
        fprintf(stderr, "usp-testclient: --eid cannot be sent in a quoted-string: %s\n",
                c->o.eid);
        free(line);
        return EXIT_USAGE;
    }
    memcpy(line + n + (size_t)xl, "\r\n", 3);
    c->ws_ext_line = line;
    return 0;
}

/* Queue the upgrade request for PATH on AUTHORITY (HOST:PORT as given). */
static int ws_start(struct client *c, const char *authority)
{
    const char *eid = c->o.eid, *path = c->o.ws_path;
    const char *ext = c->ws_ext_line ? c->ws_ext_line : "";
    uint8_t key[16];
    char key64[32];
    c->ws_rand_off = sizeof c->ws_rand;
    if (RAND_bytes(key, (int)sizeof key) != 1) {
        fail(c, EXIT_PROTO, "error no random bytes for Sec-WebSocket-Key");
        return -1;
    }
    EVP_EncodeBlock((unsigned char *)key64, key, (int)sizeof key);
    if (ws_accept_for(key64, c->ws_accept) != 0) {
        fail(c, EXIT_PROTO, "error cannot compute Sec-WebSocket-Accept");
        return -1;
    }
    size_t elen = eid_pct_encode(eid, strlen(eid), NULL, 0);
    size_t cap = strlen(path) + elen + strlen(authority) + strlen(ext) + 256;
    char *req = malloc(cap), *qeid = malloc(elen + 1);
    int n = -1;
    if (req && qeid) {
        eid_pct_encode(eid, strlen(eid), qeid, elen + 1);
        n = snprintf(req, cap,
                     "GET %s%ceid=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " WS_SUBPROTOCOL
                     "\r\n%s\r\n",
                     path, strchr(path, '?') ? '&' : '?', qeid, authority, key64, ext);
    }
    int rc = n > 0 && (size_t)n < cap ? buf_add(&c->out, req, (size_t)n) : -1;
    free(req);
    free(qeid);
    if (rc != 0)
        fail(c, EXIT_PROTO, "error out of memory");
    return rc;
}

struct ws_answer {
    int status;
    int upgrade, connection, accept, protocol, has_peer;
    char peer[MAX_ID_LEN + 1];
    size_t peer_len;
};

static int span_ieq(const char *s, size_t len, const char *lit)
{
    return strlen(lit) == len && strncasecmp(s, lit, len) == 0;
}

/* Does the comma-separated list V (LEN bytes) hold TOKEN, compared case-insensitively? */
static int list_has_token(const char *v, size_t len, const char *token)
{
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && v[j] != ',')
            j++;
        size_t a = i, b = j;
        while (a < b && (v[a] == ' ' || v[a] == '\t'))
            a++;
        while (b > a && (v[b - 1] == ' ' || v[b - 1] == '\t'))
            b--;
        if (span_ieq(v + a, b - a, token))
            return 1;
        i = j + 1;
    }
    return 0;
}

/* Note one response header; returns NULL or why the answer is refused. */
static const char *ws_answer_header(const struct client *c, struct ws_answer *a, const char *name,
                                    size_t nlen, const char *v, size_t vlen)
{
    if (span_ieq(name, nlen, "upgrade")) {
        a->upgrade = span_ieq(v, vlen, "websocket");
        return a->upgrade ? NULL : "Upgrade is not websocket";
    }
    if (span_ieq(name, nlen, "connection")) {
        a->connection = list_has_token(v, vlen, "upgrade");
        return a->connection ? NULL : "Connection lacks upgrade";
    }
    if (span_ieq(name, nlen, "sec-websocket-accept")) {
        a->accept = vlen == strlen(c->ws_accept) && memcmp(v, c->ws_accept, vlen) == 0;
        return a->accept ? NULL : "wrong Sec-WebSocket-Accept";
    }
    if (span_ieq(name, nlen, "sec-websocket-protocol")) {
        /* The server picks exactly one of the offered subprotocols (RFC 6455 §4.1). */
        a->protocol = vlen == sizeof WS_SUBPROTOCOL - 1 && memcmp(v, WS_SUBPROTOCOL, vlen) == 0;
        return a->protocol ? NULL : "Sec-WebSocket-Protocol is not " WS_SUBPROTOCOL;
    }
    if (span_ieq(name, nlen, "sec-websocket-extensions")) {
        char eid[sizeof a->peer];
        size_t elen = 0;
        int has = 0;
        if (ws_ext_bbf_eid(v, vlen, eid, sizeof eid, &elen, &has) < 0)
            return "malformed Sec-WebSocket-Extensions";
        if (has && a->has_peer)
            return "bbf-usp-protocol eid given twice";
        if (has) {
            memcpy(a->peer, eid, elen + 1);
            a->peer_len = elen;
            a->has_peer = 1;
        }
    }
    return NULL;
}

/* Parse the response head H (LEN bytes, up to and including the CRLF ending its last
 * header line) into A; returns NULL or why the answer is refused. */
static const char *ws_answer_parse(const struct client *c, const char *h, size_t len,
                                   struct ws_answer *a)
{
    size_t off = 0;
    int first = 1;
    while (off < len) {
        const char *line = h + off;
        const char *crlf = memmem(line, len - off, "\r\n", 2);
        size_t ll = (size_t)(crlf - line);
        off += ll + 2;
        for (size_t i = 0; i < ll; i++)
            if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
                return "control character in the response head";
        if (first) {
            first = 0;
            if (ll < 12 || memcmp(line, "HTTP/1.", 7) != 0 || line[8] != ' ' ||
                (ll > 12 && line[12] != ' '))
                return "malformed status line";
            a->status = 0;
            for (int i = 9; i < 12; i++) {
                if (line[i] < '0' || line[i] > '9')
                    return "malformed status line";
                a->status = a->status * 10 + (line[i] - '0');
            }
            if (a->status != 101)
                return NULL; /* refused: the headers do not matter */
            continue;
        }
        const char *colon = memchr(line, ':', ll);
        if (!colon || colon == line || line[0] == ' ' || line[0] == '\t')
            return "malformed header line";
        size_t nlen = (size_t)(colon - line), vs = nlen + 1, ve = ll;
        while (vs < ve && (line[vs] == ' ' || line[vs] == '\t'))
            vs++;
        while (ve > vs && (line[ve - 1] == ' ' || line[ve - 1] == '\t'))
            ve--;
        const char *why = ws_answer_header(c, a, line, nlen, line + vs, ve - vs);
        if (why)
            return why;
    }
    if (!a->upgrade || !a->connection || !a->accept)
        return "no Upgrade, Connection or Sec-WebSocket-Accept header";
    if (!a->protocol)
        return "no Sec-WebSocket-Protocol: " WS_SUBPROTOCOL " (R-WS.12)";
    return NULL;
}

/* Returns 1 once the answer is accepted and consumed, 0 while it is incomplete, -1 on
 * refusal. */
static int ws_handshake(struct client *c)
{
    const uint8_t *p = c->in.p + c->in.off;
    size_t avail = buf_pending(&c->in);
    const uint8_t *end = memmem(p, avail < WS_MAX_HEAD ? avail : WS_MAX_HEAD, "\r\n\r\n", 4);
    if (!end) {
        if (avail >= WS_MAX_HEAD)
            fail(c, EXIT_WS_REFUSED, "error response head longer than %u bytes", WS_MAX_HEAD);
        return avail >= WS_MAX_HEAD ? -1 : 0;
    }
    size_t head = (size_t)(end - p) + 4;
    struct ws_answer *a = calloc(1, sizeof *a);
    char text[4 * MAX_ID_LEN + 8];
    if (!a) {
        fail(c, EXIT_PROTO, "error out of memory");
        return -1;
    }
    const char *why = ws_answer_parse(c, (const char *)p, head - 2, a);
    int rc = -1;
    if (why) {
        fail(c, EXIT_WS_REFUSED, "error handshake refused: %s", why);
    } else if (a->status != 101) {
        const uint8_t *eol = memmem(p, head, "\r\n", 2);
        printf("refused status=%d\n", a->status);
        fail(c, EXIT_WS_REFUSED, "error upgrade refused: %s",
             printable(text, sizeof text, p, (size_t)(eol - p)));
    } else if (c->o.expect_peer && (!a->has_peer || strlen(c->o.expect_peer) != a->peer_len ||
                                    memcmp(c->o.expect_peer, a->peer, a->peer_len) != 0)) {
        fail(c, EXIT_WS_REFUSED, "error peer eid %s, expected %s",
             a->has_peer ? printable(text, sizeof text, (const uint8_t *)a->peer, a->peer_len)
                         : "absent",
             c->o.expect_peer);
    } else {
        c->in.off += head;
        ready(c, "peer",
              a->has_peer ? printable(text, sizeof text, (const uint8_t *)a->peer, a->peer_len)
                          : "-");
        rc = 1;
    }
    free(a);
    return rc;
}

struct ws_frame {
    unsigned fin, op;
    uint64_t len;
};

/* Decode a server frame header: its length, 0 if incomplete, -1 with *WHY if malformed. */
static int ws_frame_head(const uint8_t *p, size_t avail, struct ws_frame *f, const char **why)
{
    int hl = 2;
    if (avail < 2)
        return 0;
    f->fin = p[0] & WS_FIN;
    f->op = p[0] & 0x0fu;
    f->len = p[1] & 0x7fu;
    *why = NULL;
    if (p[0] & 0x70u)
        *why = "reserved bits set (no extension was negotiated)";
    else if (p[1] & 0x80u)
        *why = "masked frame from the server";
    else if (f->op > WS_OP_BINARY && f->op < WS_OP_CLOSE)
        *why = "unknown data opcode";
    else if (f->op > WS_OP_PONG)
        *why = "unknown control opcode";
    if (*why)
        return -1;
    if (f->len == 126) {
        if (avail < 4)
            return 0;
        f->len = (uint64_t)p[2] << 8 | p[3];
        hl = 4;
        if (f->len < 126)
            *why = "length not in its shortest form";
    } else if (f->len == 127) {
        if (avail < 10)
            return 0;
        f->len = 0;
        for (int i = 0; i < 8; i++)
            f->len = f->len << 8 | p[2 + i];
        hl = 10;
        if (f->len >> 63)
            *why = "64-bit length with the top bit set";
        else if (f->len <= 0xffff)
            *why = "length not in its shortest form";
    }
    if (!*why && f->op >= WS_OP_CLOSE && (!f->fin || f->len > 125))
        *why = "fragmented or oversized control frame";
    return *why ? -1 : hl;
}

/* Whether the server may end the session now: --expect met and our --send series out. */
static int ws_close_in_time(const struct client *c)
{
    int series = c->o.send == 0 || (c->series_end && c->written >= c->series_end);
    return c->o.expect_given && c->received >= c->o.expect && series;
}

static void ws_on_close(struct client *c, const uint8_t *p, size_t len)
{
    char text[4 * 125 + 8];
    unsigned code = len >= 2 ? (unsigned)p[0] << 8 | p[1] : WS_CLOSE_NO_STATUS;
    c->ws_close_recv = 1;
    if (len == 1) {
        fail(c, EXIT_PROTO, "error Close frame with a 1-byte payload");
        return;
    }
    /* A 1000 answering our own Close is the normal end, not news. */
    if (!c->ws_close_sent || code != WS_CLOSE_NORMAL)
        printf("closed code=%u reason=%s\n", code,
               printable(text, sizeof text, p + (len >= 2 ? 2 : 0), len >= 2 ? len - 2 : 0));
    if (c->ws_close_sent)
        return;
    if (c->phase == PH_READY && !ws_close_in_time(c))
        c->ws_close_early = 1;
    c->phase = PH_BYE;
    ws_queue_close(c, len >= 2, code); /* RFC 6455 §5.5.1: echo the code */
}

static void ws_on_frame(struct client *c, const struct ws_frame *f, const uint8_t *p)
{
    size_t len = (size_t)f->len;
    switch (f->op) {
    case WS_OP_CLOSE:
        ws_on_close(c, p, len);
        return;
    case WS_OP_PING:
        c->ws_pings++;
        ws_queue_frame(c, WS_FIN | WS_OP_PONG, p, len);
        return;
    case WS_OP_PONG:
        return; /* we send no Pings; an unsolicited Pong needs no answer (§5.5.3) */
    case WS_OP_BINARY:
        if (f->fin) {
            on_record(c, p, len, NULL);
            return;
        }
        c->ws_in_msg = 1;
        c->ws_msg.off = c->ws_msg.len = 0;
        break;
    default: /* continuation; ws_process refused a text frame already */
        break;
    }
    if (buf_add(&c->ws_msg, p, len) != 0) {
        fail(c, EXIT_PROTO, "error out of memory");
        return;
    }
    if (f->fin) {
        c->ws_in_msg = 0;
        on_record(c, c->ws_msg.p + c->ws_msg.off, buf_pending(&c->ws_msg), NULL);
        c->ws_msg.off = c->ws_msg.len = 0;
    }
}

static void ws_process(struct client *c)
{
    c->in_need = 0;
    if (c->phase == PH_HANDSHAKE && ws_handshake(c) <= 0)
        return;
    while (c->status < EXIT_PROTO && !c->ws_close_recv) {
        const uint8_t *p = c->in.p + c->in.off;
        size_t avail = buf_pending(&c->in);
        struct ws_frame f;
        const char *why;
        int hl = ws_frame_head(p, avail, &f, &why);
        if (hl == 0)
            return;
        if (hl > 0 && f.op < WS_OP_CLOSE) {
            uint64_t have = c->ws_in_msg ? buf_pending(&c->ws_msg) : 0;
            if (c->ws_in_msg && f.op != WS_OP_CONT)
                why = "new message inside a fragmented one";
            else if (!c->ws_in_msg && f.op == WS_OP_CONT)
                why = "continuation frame without a message";
            else if (f.len > WS_MAX_MESSAGE - have)
                why = "message larger than 64 MiB";
            if (!why && f.op == WS_OP_TEXT) {
                fail(c, EXIT_WS_TEXT, "error text message from the server (R-WS.14)");
                return;
            }
        }
        if (hl < 0 || why) {
            fail(c, EXIT_PROTO, "error bad frame from the server: %s", why);
            return;
        }
        size_t size = (size_t)hl + (size_t)f.len;
        if (avail < size) {
            c->in_need = size;
            return;
        }
        ws_on_frame(c, &f, p + hl);
        c->in.off += size;
    }
    if (c->ws_close_recv)
        c->in.off = c->in.len; /* nothing follows a Close (§5.5.1) */
}

/* ------------------------------------------------------------------ connection */

static int wait_connected(int fd, double deadline)
{
    for (;;) {
        double left = deadline - now_s();
        if (left <= 0)
            return ETIMEDOUT;
        struct pollfd pfd = {fd, POLLOUT, 0};
        int r = poll(&pfd, 1, poll_ms(left));
        if (r < 0 && errno == EINTR) {
            if (got_signal)
                return EINTR;
            continue;
        }
        if (r < 0)
            return errno;
        if (r == 0)
            continue;
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
            return errno;
        return err;
    }
}

static int connect_fd(int fd, const struct sockaddr *sa, socklen_t len, double deadline)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        return errno;
    if (connect(fd, sa, len) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EAGAIN)
        return errno;
    return wait_connected(fd, deadline);
}

/* Split HOST:PORT ([v6]:PORT allowed) into HOST and PORT (pointers into a copy). */
static int split_hostport(char *s, char **host, char **port)
{
    char *colon;
    if (s[0] == '[') {
        char *end = strchr(s, ']');
        if (!end || end[1] != ':')
            return -1;
        *end = '\0';
        *host = s + 1;
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        *colon = '\0';
        *host = s;
    }
    *port = colon + 1;
    return **host && **port ? 0 : -1;
}

static int open_tcp(struct client *c, const char *host, const char *port, double deadline)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(host, port, &hints, &res);
    if (g != 0) {
        fail(c, EXIT_PROTO, "error cannot resolve %s: %s", host, gai_strerror(g));
        return -1;
    }
    int err = ENOENT;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        err = connect_fd(fd, ai->ai_addr, ai->ai_addrlen, deadline);
        if (err == 0) {
            /* Frames are written whole; Nagle would only delay the last one (a lone
             * DISCONNECT behind a SEND waits for a delayed ACK). */
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            c->fd = fd;
            break;
        }
        close(fd);
    }
    freeaddrinfo(res);
    if (c->fd < 0) {
        fail(c, EXIT_PROTO, "error cannot connect to %s:%s: %s", host, port, strerror(err));
        return -1;
    }
    return 0;
}

static int open_uds(struct client *c, const char *path, double deadline)
{
    struct sockaddr_un sa = {0};
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) {
        fail(c, EXIT_USAGE, "socket path too long: %s", path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail(c, EXIT_PROTO, "error socket: %s", strerror(errno));
        return -1;
    }
    int err = connect_fd(fd, (const struct sockaddr *)&sa, sizeof sa, deadline);
    if (err != 0) {
        close(fd);
        fail(c, EXIT_PROTO, "error cannot connect to %s: %s", path, strerror(err));
        return -1;
    }
    c->fd = fd;
    return 0;
}

/* ------------------------------------------------------------------ main loop */

static void account_written(struct client *c, size_t n)
{
    c->written += n;
    c->out.off += n;
    while (c->ends_head < c->ends_len && c->ends[c->ends_head] <= c->written) {
        c->ends_head++;
        c->sent++;
    }
    if (c->series_end && c->t_send_end == 0 && c->written >= c->series_end)
        c->t_send_end = now_s();
}

/* Returns 0, or -1 when the connection is gone. */
static int do_write(struct client *c)
{
    while (buf_pending(&c->out) > 0) {
        ssize_t n = send(c->fd, c->out.p + c->out.off, buf_pending(&c->out), MSG_NOSIGNAL);
        if (n > 0) {
            account_written(c, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (c->phase < PH_BYE)
            fail(c, EXIT_PROTO, "error connection lost: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Returns 1 after reading, 0 when nothing is ready, -1 when the connection is gone. */
static int do_read(struct client *c)
{
    size_t want = READ_CHUNK;
    if (c->in_need > buf_pending(&c->in) && c->in_need - buf_pending(&c->in) > want)
        want = c->in_need - buf_pending(&c->in);
    if (buf_reserve(&c->in, want) != 0) {
        fail(c, EXIT_PROTO, "error out of memory");
        return -1;
    }
    ssize_t n = recv(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len, 0);
    if (n < 0 && errno == EINTR)
        return 1;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (n <= 0) {
        if (c->phase >= PH_BYE) {
            c->phase = PH_DONE; /* the relay closes after the DISCONNECT receipt */
        } else {
            fail(c, EXIT_PROTO, "error connection closed by the relay%s%s", n < 0 ? ": " : "",
                 n < 0 ? strerror(errno) : "");
        }
        return -1;
    }
    c->in.len += (size_t)n;
    if (c->o.mtp == MTP_STOMP_CLIENT)
        stomp_process(c);
    else if (c->o.mtp == MTP_WS_CLIENT)
        ws_process(c);
    else
        uds_process(c);
    return 1;
}

/* Drain what the relay has for us before writing more: the relay bounds each
 * connection's output queue and drops Records beyond it, so a client that reads
 * slower than it writes would lose what its peer sends. */
static int read_burst(struct client *c)
{
    for (int i = 0; i < 64 && c->status < EXIT_PROTO && c->phase != PH_DONE; i++) {
        int r = do_read(c);
        if (r <= 0)
            return r;
    }
    return 0;
}

static int all_done(const struct client *c)
{
    return c->phase == PH_READY && c->go && c->queued == c->o.send &&
           buf_pending(&c->out) == 0 && c->received >= c->o.expect &&
           (c->o.expect_given || !c->o.echo);
}

static void read_stdin_go(struct client *c)
{
    char b[256];
    ssize_t n = read(STDIN_FILENO, b, sizeof b);
    if (n < 0 && errno == EINTR)
        return;
    if (n <= 0 || memchr(b, '\n', (size_t)n))
        c->go = 1;
}

static void timed_out(struct client *c)
{
    if (c->phase < PH_READY) {
        fail(c, EXIT_PROTO, "error %s before the handshake completed",
             got_signal ? "interrupted" : "timeout");
        return;
    }
    if (c->phase >= PH_BYE)
        return; /* everything we had to do is done; only the goodbye is missing */
    if (c->received < c->o.expect)
        fail(c, EXIT_EXPECT, "%s: received %" PRIu64 " of %" PRIu64 " records",
             got_signal ? "interrupted" : "timeout", c->received, c->o.expect);
    if (c->sent < c->o.send)
        fail(c, EXIT_EXPECT, "%s: sent %" PRIu64 " of %" PRIu64 " records",
             got_signal ? "interrupted" : "timeout", c->sent, c->o.send);
}

static void run(struct client *c, double deadline)
{
    while (c->status < EXIT_PROTO && c->phase != PH_DONE) {
        /* Both Closes exchanged and ours written: the session is over (RFC 6455 §7.1.1
         * lets the client close TCP then). */
        if (c->ws_close_sent && c->ws_close_recv && buf_pending(&c->out) == 0) {
            c->phase = PH_DONE;
            break;
        }
        if (c->phase == PH_READY && all_done(c)) {
            if (c->o.mtp == MTP_UDS_CLIENT) {
                c->phase = PH_DONE;
                break;
            }
            if (c->o.mtp == MTP_WS_CLIENT) {
                /* The server's answering Close proves it has read every frame before it. */
                if (ws_queue_close(c, 1, WS_CLOSE_NORMAL) != 0)
                    break;
                c->phase = PH_BYE;
                continue;
            }
            /* The receipt proves the relay has taken every SEND before we close. */
            struct stomp_kv h[1] = {{"receipt", BYE_RECEIPT, sizeof BYE_RECEIPT - 1}};
            if (stomp_queue_frame(c, STOMP_CMD_DISCONNECT, h, 1) != 0)
                break;
            c->phase = PH_BYE;
        }
        while (c->phase == PH_READY && c->go && c->queued < c->o.send &&
               buf_pending(&c->out) < OUT_LOW_WATER && c->status < EXIT_PROTO) {
            if (c->queued == 0 && c->o.stats)
                c->t_send_start = now_s();
            if (queue_next(c, c->queued + 1) != 0)
                break;
            if (++c->queued == c->o.send)
                c->series_end = c->written + buf_pending(&c->out);
        }
        if (c->status >= EXIT_PROTO)
            break;
        double left = deadline - now_s();
        if (left <= 0 || got_signal) {
            timed_out(c);
            break;
        }
        struct pollfd pfd[2] = {
            {c->fd, (short)(POLLIN | (buf_pending(&c->out) ? POLLOUT : 0)), 0},
            {STDIN_FILENO, POLLIN, 0},
        };
        nfds_t n = (c->phase == PH_READY && !c->go) ? 2 : 1;
        int r = poll(pfd, n, poll_ms(left));
        if (r < 0 && errno != EINTR) {
            fail(c, EXIT_PROTO, "error poll: %s", strerror(errno));
            break;
        }
        if (r <= 0)
            continue;
        if (n == 2 && pfd[1].revents)
            read_stdin_go(c);
        if ((pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) && read_burst(c) < 0)
            break;
        if ((pfd[0].revents & POLLOUT) && do_write(c) != 0)
            break;
    }
}

/* ------------------------------------------------------------------ options */

static void usage(FILE *f)
{
    fputs("usage: usp-testclient stomp HOST:PORT --eid ID [--login U --passcode P] [options]\n"
          "       usp-testclient uds PATH --eid ID [options]\n"
          "       usp-testclient ws HOST:PORT[/PATH] --eid ID [ws options] [options]\n"
          "  ws options (PATH defaults to " WS_DEFAULT_PATH "):\n"
          "  --ws-ext              send Sec-WebSocket-Extensions: bbf-usp-protocol; eid=\"ID\"\n"
          "  --expect-peer ID      the answer's extension eid must be ID (implies --ws-ext)\n"
          "  --ws-fragment N       send each record in frames of at most N payload bytes\n"
          "  options:\n"
          "  --to ID               destination endpoint ID of sent records\n"
          "  --dest DEST           STOMP destination of sent records (default: /usp/endpoint/<to>)\n"
          "  --send N              send N records (default 0, or 1 with a fixed payload/record)\n"
          "  --size BYTES          generated payload size, >= 8 (default 16)\n"
          "  --payload STR         exact payload bytes\n"
          "  --payload-file F      exact payload bytes from F\n"
          "  --record-file F       send the bytes of F as the Record, unmodified\n"
          "  --tls12               session_context record, payload_security TLS12\n"
          "  --expect N            wait for N records (exit 1 on timeout)\n"
          "  --check-order         per-sender sequence numbers must be 1,2,3,...\n"
          "  --echo                answer every record to its from_id with the same payload\n"
          "  --out-dir DIR         write each received record to DIR/<n>.rec\n"
          "  --wait-stdin          start sending only after a line (or EOF) on stdin\n"
          "  --timeout SECONDS     overall deadline (default 10)\n"
          "  --quiet               no per-record lines\n"
          "  --stats               print send and receive times and rates at the end\n",
          f);
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

enum {
    OPT_EID = 256, OPT_TO, OPT_DEST, OPT_LOGIN, OPT_PASSCODE, OPT_SEND, OPT_SIZE, OPT_PAYLOAD,
    OPT_PAYLOAD_FILE, OPT_RECORD_FILE, OPT_TLS12, OPT_EXPECT, OPT_CHECK_ORDER, OPT_ECHO,
    OPT_OUT_DIR, OPT_TIMEOUT, OPT_QUIET, OPT_WAIT_STDIN, OPT_STATS, OPT_HELP, OPT_WS_EXT,
    OPT_EXPECT_PEER, OPT_WS_FRAGMENT,
};

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"eid", required_argument, NULL, OPT_EID},
        {"to", required_argument, NULL, OPT_TO},
        {"dest", required_argument, NULL, OPT_DEST},
        {"login", required_argument, NULL, OPT_LOGIN},
        {"passcode", required_argument, NULL, OPT_PASSCODE},
        {"send", required_argument, NULL, OPT_SEND},
        {"size", required_argument, NULL, OPT_SIZE},
        {"payload", required_argument, NULL, OPT_PAYLOAD},
        {"payload-file", required_argument, NULL, OPT_PAYLOAD_FILE},
        {"record-file", required_argument, NULL, OPT_RECORD_FILE},
        {"tls12", no_argument, NULL, OPT_TLS12},
        {"expect", required_argument, NULL, OPT_EXPECT},
        {"check-order", no_argument, NULL, OPT_CHECK_ORDER},
        {"echo", no_argument, NULL, OPT_ECHO},
        {"out-dir", required_argument, NULL, OPT_OUT_DIR},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"quiet", no_argument, NULL, OPT_QUIET},
        {"wait-stdin", no_argument, NULL, OPT_WAIT_STDIN},
        {"stats", no_argument, NULL, OPT_STATS},
        {"help", no_argument, NULL, OPT_HELP},
        {"ws-ext", no_argument, NULL, OPT_WS_EXT},
        {"expect-peer", required_argument, NULL, OPT_EXPECT_PEER},
        {"ws-fragment", required_argument, NULL, OPT_WS_FRAGMENT},
        {NULL, 0, NULL, 0},
    };
    uint64_t v;
    char *end;
    int ch;

    o->size = 16;
    o->timeout = 10.0;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_EID: o->eid = optarg; break;
        case OPT_TO: o->to = optarg; break;
        case OPT_DEST: o->dest = optarg; break;
        case OPT_LOGIN: o->login = optarg; break;
        case OPT_PASSCODE: o->passcode = optarg; break;
        case OPT_PAYLOAD:
            o->payload = optarg;
            o->payload_len = strlen(optarg);
            o->have_payload = 1;
            break;
        case OPT_PAYLOAD_FILE: o->payload_file = optarg; break;
        case OPT_RECORD_FILE: o->record_file = optarg; break;
        case OPT_TLS12: o->tls12 = 1; break;
        case OPT_CHECK_ORDER: o->check_order = 1; break;
        case OPT_ECHO: o->echo = 1; break;
        case OPT_OUT_DIR: o->out_dir = optarg; break;
        case OPT_QUIET: o->quiet = 1; break;
        case OPT_WAIT_STDIN: o->wait_stdin = 1; break;
        case OPT_STATS: o->stats = 1; break;
        case OPT_WS_EXT: o->ws_ext = 1; break;
        case OPT_EXPECT_PEER:
            o->expect_peer = optarg;
            o->ws_ext = 1; /* a server answers the extension only when offered (R-WS.11a) */
            break;
        case OPT_WS_FRAGMENT:
            if (parse_u64(optarg, MAX_RECORD, &v) != 0 || v == 0)
                goto bad;
            o->ws_fragment = (size_t)v;
            break;
        case OPT_SEND:
            if (parse_u64(optarg, UINT64_MAX - 1, &o->send) != 0)
                goto bad;
            o->send_given = 1;
            break;
        case OPT_EXPECT:
            if (parse_u64(optarg, UINT64_MAX - 1, &o->expect) != 0)
                goto bad;
            o->expect_given = 1;
            break;
        case OPT_SIZE:
            if (parse_u64(optarg, MAX_RECORD, &v) != 0)
                goto bad;
            o->size = (size_t)v;
            break;
        case OPT_TIMEOUT:
            errno = 0;
            o->timeout = strtod(optarg, &end);
            if (errno || *end || !(o->timeout > 0) || o->timeout > 1e7)
                goto bad;
            break;
        case OPT_HELP:
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr, "usp-testclient: expected MTP and address\n");
        goto usage;
    }
    if (strcmp(argv[optind], "stomp") == 0)
        o->mtp = MTP_STOMP_CLIENT;
    else if (strcmp(argv[optind], "uds") == 0)
        o->mtp = MTP_UDS_CLIENT;
    else if (strcmp(argv[optind], "ws") == 0)
        o->mtp = MTP_WS_CLIENT;
    else {
        fprintf(stderr, "usp-testclient: MTP must be stomp, uds or ws\n");
        goto usage;
    }
    o->addr = argv[optind + 1];
    o->addr_len = strlen(o->addr);
    if (o->mtp == MTP_WS_CLIENT) {
        const char *slash = strchr(o->addr, '/');
        o->ws_path = slash ? slash : WS_DEFAULT_PATH;
        o->addr_len = slash ? (size_t)(slash - o->addr) : o->addr_len;
        for (const char *q = o->ws_path; *q; q++)
            if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f || *q == '#') {
                fprintf(stderr, "usp-testclient: PATH must be printable ASCII without spaces "
                                "or '#': %s\n", o->ws_path);
                goto usage;
            }
    } else if (o->ws_ext || o->ws_fragment) {
        fprintf(stderr, "usp-testclient: --ws-ext/--expect-peer/--ws-fragment are ws options\n");
        goto usage;
    }
    if (!o->eid) {
        fprintf(stderr, "usp-testclient: --eid is required\n");
        goto usage;
    }
    if (!o->login != !o->passcode) {
        fprintf(stderr, "usp-testclient: --login and --passcode go together\n");
        goto usage;
    }
    if ((o->login || o->dest) && o->mtp != MTP_STOMP_CLIENT) {
        fprintf(stderr, "usp-testclient: --login/--passcode/--dest are STOMP options\n");
        goto usage;
    }
    int fixed = !!o->have_payload + !!o->payload_file + !!o->record_file;
    if (fixed > 1) {
        fprintf(stderr, "usp-testclient: --payload, --payload-file and --record-file exclude "
                        "each other\n");
        goto usage;
    }
    if (o->record_file && o->tls12) {
        fprintf(stderr, "usp-testclient: --tls12 does not apply to --record-file\n");
        goto usage;
    }
    if (fixed && !o->send_given)
        o->send = 1;
    if (o->send > 0 && !o->record_file && !o->to) {
        fprintf(stderr, "usp-testclient: --to is required to send records\n");
        goto usage;
    }
    if (o->send > 0 && !fixed && o->size < 8) {
        fprintf(stderr, "usp-testclient: --size must be >= 8 for sequence-numbered payloads\n");
        goto usage;
    }
    return 0;
bad:
    fprintf(stderr, "usp-testclient: bad value for %s: %s\n", argv[optind - 1], optarg);
usage:
    usage(stderr);
    return -1;
}

/* Load fixed bytes and work out the STOMP destination; returns 0 or an exit status. */
static int prepare(struct client *c)
{
    const struct opts *o = &c->o;
    const char *file = o->payload_file ? o->payload_file : o->record_file;
    if (file) {
        if (read_file(file, &c->file_data, &c->fixed_len) != 0) {
            fprintf(stderr, "usp-testclient: cannot read %s: %s\n", file, strerror(errno));
            return EXIT_USAGE;
        }
        c->fixed = c->file_data;
    } else if (o->have_payload) {
        c->fixed = (const uint8_t *)o->payload;
        c->fixed_len = o->payload_len;
    } else if (o->send > 0) {
        c->seq_payload = malloc(o->size);
        if (!c->seq_payload)
            return EXIT_PROTO;
    }
    if (o->ws_ext) {
        int rc = ws_ext_prepare(c);
        if (rc != 0)
            return rc;
    }
    if (o->mtp != MTP_STOMP_CLIENT || o->send == 0)
        return 0;
    if (o->dest) {
        c->to_dest = strdup(o->dest);
    } else if (o->to) {
        if (dest_for(o->to, strlen(o->to), &c->to_dest) != 0)
            return EXIT_PROTO;
    } else {
        /* --record-file without --to: address the Record's own to_id. */
        struct record_header h;
        int e = record_scan(c->fixed, c->fixed_len, MAX_ID_LEN, &h);
        if (e != RECORD_OK) {
            fprintf(stderr, "usp-testclient: %s has no usable to_id (%s); give --to or --dest\n",
                    o->record_file, record_err_name(e));
            return EXIT_USAGE;
        }
        if (dest_for((const char *)h.to_id.ptr, h.to_id.len, &c->to_dest) != 0)
            return EXIT_PROTO;
    }
    return c->to_dest ? 0 : EXIT_PROTO;
}

static double rate(double n, double seconds)
{
    return seconds > 0 ? n / seconds : 0;
}

/* Send time: first Record queued to last byte written. Receive time: first to last Record
 * received, so a receiver started long before its sender still measures the traffic. */
static void print_stats(const struct client *c)
{
    double ts = c->t_send_end > 0 ? c->t_send_end - c->t_send_start : 0;
    double tr = c->t_last_recv - c->t_first_recv;
    printf("stats send_seconds=%.6f send_per_s=%.0f recv_seconds=%.6f recv_per_s=%.0f "
           "recv_mib_per_s=%.1f\n",
           ts, rate((double)c->o.send, ts), tr, rate((double)c->received, tr),
           rate((double)c->recv_bytes / (1024.0 * 1024.0), tr));
}

static void client_free(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->in.p);
    free(c->out.p);
    free(c->ws_msg.p);
    free(c->ws_ext_line);
    free(c->sub_dest);
    free(c->to_dest);
    free(c->file_data);
    free(c->seq_payload);
    free(c->ends);
    for (size_t i = 0; i < c->n_seqs; i++)
        free(c->seqs[i].id);
    free(c->seqs);
}

int main(int argc, char **argv)
{
    struct client c = {0};
    c.fd = -1;
    int pr = parse_opts(argc, argv, &c.o);
    if (pr != 0)
        return pr > 0 ? 0 : EXIT_USAGE;
    setvbuf(stdout, NULL, _IOLBF, 0);

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = prepare(&c);
    if (rc != 0) {
        client_free(&c);
        return rc;
    }
    c.go = !c.o.wait_stdin;
    double deadline = now_s() + c.o.timeout;

    if (c.o.mtp != MTP_UDS_CLIENT) {
        /* AUTHORITY stays whole for the WS Host header; COPY is cut into host and port. */
        char *authority = strndup(c.o.addr, c.o.addr_len);
        char *copy = authority ? strdup(authority) : NULL, *host, *port;
        if (!authority || !copy || split_hostport(copy, &host, &port) != 0) {
            fprintf(stderr, "usp-testclient: address must be HOST:PORT%s: %s\n",
                    c.o.mtp == MTP_WS_CLIENT ? "[/PATH]" : "", c.o.addr);
            free(authority);
            free(copy);
            client_free(&c);
            return EXIT_USAGE;
        }
        if (open_tcp(&c, host, port, deadline) == 0) {
            if (c.o.mtp == MTP_STOMP_CLIENT)
                stomp_start(&c, host);
            else
                ws_start(&c, authority);
        }
        free(authority);
        free(copy);
    } else if (open_uds(&c, c.o.addr, deadline) == 0) {
        uds_queue_tlv(&c, UDS_TLV_HANDSHAKE, c.o.eid, strlen(c.o.eid));
    }
    if (c.status == EXIT_USAGE) {
        client_free(&c);
        return EXIT_USAGE;
    }
    if (c.status < EXIT_PROTO)
        run(&c, deadline);
    if (c.order_failed)
        fail(&c, EXIT_EXPECT, "check-order failed");
    if (c.ws_close_early) {
        char of[32] = "";
        if (c.o.expect_given)
            snprintf(of, sizeof of, " of %" PRIu64, c.o.expect);
        fail(&c, EXIT_WS_CLOSED, "error the server closed the session early: received %" PRIu64
             "%s records", c.received, of);
    }
    if (c.o.stats)
        print_stats(&c);
    printf("summary sent=%" PRIu64 " received=%" PRIu64, c.sent, c.received);
    if (c.ws_pings > 0)
        printf(" pings=%" PRIu64, c.ws_pings);
    printf("\n");
    rc = c.status;
    client_free(&c);
    return rc;
}
