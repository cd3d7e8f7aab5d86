/* topic_filters.h — MQTT wildcard subscriptions that may take Records for unknown IDs.
 *
 * A PUBLISH whose Record's to_id has no route is delivered to a client subscribed to its
 * topic (and the route learned). Concrete topics are found in the router; wildcard
 * filters live here and are matched one by one, so only endpoints allowed wildcards
 * (subscribe_any: controllers, a few) register theirs, and the list is capped: a scan
 * per unknown Record must stay cheap whatever clients do.
 */
#ifndef USPRELAY_TOPIC_FILTERS_H
#define USPRELAY_TOPIC_FILTERS_H

#include <stddef.h>
#include <stdint.h>

#include "relay/record.h"
#include "relay/router.h"

#define TOPIC_FILTERS_MAX 1024

struct topic_filters;

struct topic_filters *topic_filters_new(void);
void topic_filters_free(struct topic_filters *tf);

/* Route topics matching FILTER to T. 0, or -1 when full or out of memory. */
int topic_filters_add(struct topic_filters *tf, const char *filter, struct route t);

/* Remove FILTER of connection CONN_ID (no-op if absent). */
void topic_filters_remove(struct topic_filters *tf, const char *filter, uint64_t conn_id);

/* The route of the first filter that matches TOPIC: 0, or -1 if none. */
int topic_filters_match(struct topic_filters *tf, struct span topic, struct route *out);

size_t topic_filters_count(struct topic_filters *tf);

#endif
