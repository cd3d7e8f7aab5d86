/* mqtt_subs.c — the subscriptions of an MQTT session: the USP ACL on filters (R-MQTT.42),
 * concrete topics registered in ROUTER_TOPICS so a PUBLISH to them reaches this client,
 * SUBSCRIBE / UNSUBSCRIBE with their acknowledgements, and the choice of the topic a
 * Record is published on to this client. State lives in struct mqtt_conn (mqtt_session.h).
 */
#include "relay/mtp/mqtt_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/log.h"
#include "relay/relay.h"
#include "relay/router.h"
#include "relay/worker.h"

static int eid_prefix_match(const char *pattern, const char *eid)
{
    size_t n = strlen(pattern);
    if (n && pattern[n - 1] == '*')
        return strncmp(pattern, eid, n - 1) == 0;
    return strcmp(pattern, eid) == 0;
}

/* R-MQTT.42: by default an endpoint subscribes only to topics derived from its own ID —
 * some level of the filter is exactly its endpoint ID — unless configured to subscribe
 * to anything. Before the ID is known the filter is taken on trust and checked when the
 * ID binds. */
static int granted_any(const struct mqtt_conn *m)
{
    const struct conn *c = &m->base;
    const struct mqtt_listener_cfg *mc = &c->lcfg->mqtt;
    for (size_t i = 0; c->eid && i < mc->n_subscribe_any; i++)
        if (eid_prefix_match(mc->subscribe_any[i], c->eid))
            return 1;
    return 0;
}

static int subscribe_allowed(const struct mqtt_conn *m, const char *filter)
{
    const struct conn *c = &m->base;
    if (!c->eid || granted_any(m))
        return 1;
    const char *p = filter;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == c->eid_len && memcmp(p, c->eid, n) == 0)
            return 1;
        if (!slash)
            return 0;
        p = slash + 1;
    }
}

/* A filter that names one topic (or "topic/#") is registered as that concrete topic, so
 * a PUBLISH to it for an unknown to_id can be delivered here; other wildcard filters
 * only for endpoints granted subscribe_any (see relay/topic_filters.h for why). */
static void register_sub(struct mqtt_conn *m, struct mqtt_sub *s)
{
    const char *f = s->filter;
    size_t n = strlen(f);
    struct route me = {worker_index(m->base.w), m->base.id};
    /* Nothing routes to a client by topic before its ID is known and its filters have
     * passed the ACL (mqtt_subs_recheck registers them then). */
    if (s->registered || s->wildcard || !m->base.eid)
        return;
    if (n >= 2 && strcmp(f + n - 2, "/#") == 0)
        n -= 2;
    if (n == 0 || memchr(f, '+', n) || memchr(f, '#', n)) {
        if (granted_any(m) && topic_filters_add(m->base.relay->topic_filters, f, me) == 0)
            s->wildcard = 1;
        return;
    }
    static const struct span none = {NULL, 0};
    /* The first subscriber keeps a topic; the same connection may bind it again. */
    if (router_bind(m->base.relay->router, ROUTER_TOPICS, span_from_str(f, n), none, me,
                    DUP_REFUSE_NEW, NULL) == ROUTER_BOUND)
        s->registered = strndup(f, n);
}

static void unregister_sub(struct mqtt_conn *m, struct mqtt_sub *s)
{
    static const struct span none = {NULL, 0};
    int shared = 0; /* another filter of this connection ("x" and "x/#") keeps the topic */
    for (size_t i = 0; s->registered && i < m->n_subs; i++)
        shared |= &m->subs[i] != s && m->subs[i].registered &&
                  strcmp(m->subs[i].registered, s->registered) == 0;
    if (s->registered && !shared)
        router_unbind(m->base.relay->router, ROUTER_TOPICS,
                      span_from_str(s->registered, strlen(s->registered)), none, m->base.id);
    free(s->registered);
    s->registered = NULL;
    if (s->wildcard)
        topic_filters_remove(m->base.relay->topic_filters, s->filter, m->base.id);
    s->wildcard = 0;
}

void mqtt_subs_recheck(struct mqtt_conn *m)
{
    struct conn *c = &m->base;
    for (size_t i = 0; i < m->n_subs;) {
        if (subscribe_allowed(m, m->subs[i].filter)) {
            register_sub(m, &m->subs[i]); /* a granted wildcard counts once the ID is known */
            i++;
            continue;
        }
        char d[256];
        log_info("mqtt_subscription_revoked", "%s filter=\"%s\" reason=acl",
                 conn_describe(c, d, sizeof d), m->subs[i].filter);
        unregister_sub(m, &m->subs[i]);
        free(m->subs[i].filter);
        m->subs[i] = m->subs[--m->n_subs];
    }
}

void mqtt_subs_unregister(struct mqtt_conn *m)
{
    for (size_t i = 0; i < m->n_subs; i++)
        unregister_sub(m, &m->subs[i]);
}

void mqtt_subs_release(struct mqtt_conn *m)
{
    for (size_t i = 0; i < m->n_subs; i++) {
        unregister_sub(m, &m->subs[i]);
        free(m->subs[i].filter);
    }
}

/* The topic to publish this client's Records on, written into BUF: the first candidate
 * (own topic, MQTTConnectRecord topic, each filter made concrete) that its
 * subscriptions match — for 3.1.1 with the /reply-to= suffix appended. 0 if none. */
size_t mqtt_subs_delivery_topic(struct mqtt_conn *m, char *buf, size_t cap, uint8_t *qos)
{
    char cand[MQTT_TOPIC_MAX];
    for (size_t k = 0; k < m->n_subs + 2; k++) {
        const char *t = k == 0 ? m->own_topic : k == 1 ? m->learned_topic : NULL;
        if (k >= 2) {
            /* Concrete topic from a filter: '+' levels become "usp", a final '#' goes. */
            const char *f = m->subs[k - 2].filter;
            size_t o = 0;
            for (const char *p = f; *p && o + 4 < sizeof cand; p++) {
                if (*p == '+') {
                    memcpy(cand + o, "usp", 3);
                    o += 3;
                } else if (*p == '#') {
                    if (o > 0 && cand[o - 1] == '/')
                        o--;
                    break;
                } else {
                    cand[o++] = *p;
                }
            }
            cand[o] = '\0';
            t = o ? cand : NULL;
        }
        if (!t)
            continue;
        if (strlen(t) >= cap)
            continue; /* never send on a cut topic */
        char probe[MQTT_TOPIC_MAX + 16];
        int n = snprintf(probe, sizeof probe, m->level == 5 ? "%s" : "%s/reply-to=x", t);
        if (n < 0 || (size_t)n >= sizeof probe)
            continue;
        struct mqtt_span ts = {(const uint8_t *)probe, (size_t)n};
        for (size_t i = 0; i < m->n_subs; i++) {
            if (mqtt_topic_matches(mqtt_session_span(m->subs[i].filter), ts)) {
                *qos = m->subs[i].qos;
                snprintf(buf, cap, "%s", t);
                return strlen(buf);
            }
        }
    }
    if (m->level != 5 && m->own_topic && strlen(m->own_topic) < cap) {
        /* 3.1.1 subscribed to its exact topic: USP still puts reply-to in the name
         * (R-MQTT.24), so it goes there, at that subscription's QoS. */
        for (size_t i = 0; i < m->n_subs; i++) {
            if (strcmp(m->subs[i].filter, m->own_topic) == 0) {
                *qos = m->subs[i].qos;
                snprintf(buf, cap, "%s", m->own_topic);
                return strlen(buf);
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ SUBSCRIBE */

void mqtt_subs_on_subscribe(struct mqtt_conn *m, const uint8_t *body, size_t len)
{
    struct mqtt_subscribe sb;
    int rc = mqtt_decode_subscribe(body, len, m->level, &sb);
    if (rc < 0) {
        mqtt_session_error(m, CLOSE_PROTOCOL, RC_MALFORMED, mqtt_err_name(rc));
        return;
    }
    if (m->level == 5 && MQTT_HAS(&sb.props, MQTT_P_SUBSCRIPTION_ID)) {
        /* CONNACK said Subscription Identifiers Available = 0. */
        mqtt_session_error(m, CLOSE_PROTOCOL, RC_SUB_IDS_NOT_SUPPORTED,
                           "subscription identifiers are not supported");
        return;
    }
    uint8_t reasons[MQTT_MAX_FILTERS];
    for (size_t i = 0; i < sb.n; i++) {
        if (m->level == 5 && mqtt_topic_filter_shared(sb.filters[i].filter, NULL, NULL) != 0) {
            reasons[i] = RC_SHARED_NOT_SUPPORTED; /* CONNACK: Shared Subscription Available = 0 */
            continue;
        }
        char *f = strndup((const char *)sb.filters[i].filter.ptr, sb.filters[i].filter.len);
        uint8_t qos = sb.filters[i].options & 3u;
        if (qos > 1)
            qos = 1; /* Maximum QoS 1: granted lower, as MQTT allows */
        if (!f) {
            reasons[i] = RC_UNSPECIFIED;
            continue;
        }
        if (!subscribe_allowed(m, f)) {
            reasons[i] = m->level == 5 ? RC_NOT_AUTHORIZED : RC_UNSPECIFIED;
            free(f);
            continue;
        }
        size_t k;
        for (k = 0; k < m->n_subs && strcmp(m->subs[k].filter, f) != 0; k++)
            ;
        if (k < m->n_subs) { /* same filter again: replaces the options */
            m->subs[k].qos = qos;
            free(f);
        } else if (m->n_subs == MQTT_MAX_SUBS) {
            reasons[i] = m->level == 5 ? RC_QUOTA_EXCEEDED : RC_UNSPECIFIED;
            free(f);
            continue;
        } else {
            struct mqtt_sub *s = &m->subs[m->n_subs++];
            s->filter = f;
            s->qos = qos;
            s->registered = NULL;
            s->wildcard = 0;
            register_sub(m, s);
        }
        reasons[i] = qos;
    }
    uint8_t buf[64 + MQTT_MAX_FILTERS];
    mqtt_session_send(&m->base, buf,
                      mqtt_encode_suback(buf, sizeof buf, MQTT_SUBACK, m->level, sb.packet_id,
                                         reasons, sb.n));
    mqtt_publish_flush(m);
    if (m->base.flags & CONN_BACKLOG)
        worker_post_drain(m->base.w, m->base.id); /* Records that waited for a topic */
}

void mqtt_subs_on_unsubscribe(struct mqtt_conn *m, const uint8_t *body, size_t len)
{
    struct mqtt_subscribe sb;
    int rc = mqtt_decode_unsubscribe(body, len, m->level, &sb);
    if (rc < 0) {
        mqtt_session_error(m, CLOSE_PROTOCOL, RC_MALFORMED, mqtt_err_name(rc));
        return;
    }
    uint8_t reasons[MQTT_MAX_FILTERS];
    for (size_t i = 0; i < sb.n; i++) {
        reasons[i] = RC_NO_SUBSCRIPTION;
        for (size_t k = 0; k < m->n_subs; k++) {
            struct mqtt_sub *s = &m->subs[k];
            if (strlen(s->filter) == sb.filters[i].filter.len &&
                memcmp(s->filter, sb.filters[i].filter.ptr, sb.filters[i].filter.len) == 0) {
                unregister_sub(m, s);
                free(s->filter);
                *s = m->subs[--m->n_subs];
                reasons[i] = RC_SUCCESS;
                break;
            }
        }
    }
    uint8_t buf[64 + MQTT_MAX_FILTERS];
    mqtt_session_send(&m->base, buf,
                      mqtt_encode_suback(buf, sizeof buf, MQTT_UNSUBACK, m->level, sb.packet_id,
                                         reasons, sb.n));
}
