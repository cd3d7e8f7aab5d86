/* topic_filters.c — see topic_filters.h. A vector under a read-write lock: matches
 * (rare: unknown to_id only) share the lock, subscribe and unsubscribe take it alone. */
#include "relay/topic_filters.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "relay/mtp/mqtt_codec.h"

struct filter_entry {
    char *filter;
    size_t len;
    struct route route;
};

struct topic_filters {
    pthread_rwlock_t lock;
    struct filter_entry *v;
    size_t n, cap;
};

struct topic_filters *topic_filters_new(void)
{
    struct topic_filters *tf = calloc(1, sizeof *tf);
    if (tf)
        pthread_rwlock_init(&tf->lock, NULL);
    return tf;
}

void topic_filters_free(struct topic_filters *tf)
{
    if (!tf)
        return;
    for (size_t i = 0; i < tf->n; i++)
        free(tf->v[i].filter);
    free(tf->v);
    pthread_rwlock_destroy(&tf->lock);
    free(tf);
}

int topic_filters_add(struct topic_filters *tf, const char *filter, struct route t)
{
    int rc = -1;
    char *copy = strdup(filter);
    if (!copy)
        return -1;
    pthread_rwlock_wrlock(&tf->lock);
    if (tf->n == TOPIC_FILTERS_MAX)
        goto out;
    if (tf->n == tf->cap) {
        size_t ncap = tf->cap ? tf->cap * 2 : 16;
        struct filter_entry *nv = realloc(tf->v, ncap * sizeof *nv);
        if (!nv)
            goto out;
        tf->v = nv;
        tf->cap = ncap;
    }
    tf->v[tf->n++] = (struct filter_entry){copy, strlen(copy), t};
    copy = NULL;
    rc = 0;
out:
    pthread_rwlock_unlock(&tf->lock);
    free(copy);
    return rc;
}

void topic_filters_remove(struct topic_filters *tf, const char *filter, uint64_t conn_id)
{
    pthread_rwlock_wrlock(&tf->lock);
    for (size_t i = 0; i < tf->n; i++) {
        if (tf->v[i].route.conn_id == conn_id && strcmp(tf->v[i].filter, filter) == 0) {
            free(tf->v[i].filter);
            /* Keep the order: the first matching filter wins, oldest first. */
            memmove(&tf->v[i], &tf->v[i + 1], (tf->n - i - 1) * sizeof tf->v[0]);
            tf->n--;
            break;
        }
    }
    pthread_rwlock_unlock(&tf->lock);
}

int topic_filters_match(struct topic_filters *tf, struct span topic, struct route *out)
{
    int rc = -1;
    struct mqtt_span t = {topic.ptr, topic.len};
    pthread_rwlock_rdlock(&tf->lock);
    for (size_t i = 0; i < tf->n; i++) {
        struct mqtt_span f = {(const uint8_t *)tf->v[i].filter, tf->v[i].len};
        if (mqtt_topic_matches(f, t)) {
            *out = tf->v[i].route;
            rc = 0;
            break;
        }
    }
    pthread_rwlock_unlock(&tf->lock);
    return rc;
}

size_t topic_filters_count(struct topic_filters *tf)
{
    pthread_rwlock_rdlock(&tf->lock);
    size_t n = tf->n;
    pthread_rwlock_unlock(&tf->lock);
    return n;
}
