/* stats.c — counter names. */
#include "relay/stats.h"

static const char *const names[STAT_COUNT] = {
#define STATS_NAME(n) #n,
    STATS_COUNTERS(STATS_NAME)
#undef STATS_NAME
};

const char *stats_name(enum stats_counter c)
{
    return (unsigned)c < STAT_COUNT ? names[c] : "?";
}
