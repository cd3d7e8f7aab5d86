/* rbuf.c — see rbuf.h. */
#include "relay/rbuf.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct rbuf *rbuf_new(size_t len)
{
    if (len > UINT32_MAX - RBUF_HEADROOM)
        return NULL;
    struct rbuf *rb = malloc(sizeof *rb + RBUF_HEADROOM + len);
    if (!rb)
        return NULL;
    atomic_init(&rb->refs, 1);
    rb->len = (uint32_t)len;
    rb->data = rb->storage + RBUF_HEADROOM;
    rb->cap = len;
    memset(&rb->hdr, 0, sizeof rb->hdr);
    rb->rx_ns = 0;
    rb->origin_mtp = 0;
    rb->qos = 1;
    rb->reply_to = NULL;
    return rb;
}

struct rbuf *rbuf_grow(struct rbuf *rb, size_t cap)
{
    if (cap <= rb->cap)
        return rb;
    if (cap > UINT32_MAX - RBUF_HEADROOM || rb->data != rb->storage + RBUF_HEADROOM)
        return NULL;
    struct rbuf *n = realloc(rb, sizeof *rb + RBUF_HEADROOM + cap);
    if (!n)
        return NULL;
    n->data = n->storage + RBUF_HEADROOM;
    n->cap = cap;
    return n;
}

int rbuf_set_reply_to(struct rbuf *rb, const char *s, size_t len)
{
    char *copy = malloc(len + 1);
    if (!copy)
        return -1;
    memcpy(copy, s, len);
    copy[len] = '\0';
    free(rb->reply_to);
    rb->reply_to = copy;
    return 0;
}

void rbuf_unref(struct rbuf *rb)
{
    if (!rb)
        return;
    if (atomic_fetch_sub_explicit(&rb->refs, 1, memory_order_acq_rel) == 1) {
        free(rb->reply_to);
        free(rb);
    }
}

void rbuf_evbuffer_cleanup(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    rbuf_unref(arg);
}

uint64_t rbuf_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
