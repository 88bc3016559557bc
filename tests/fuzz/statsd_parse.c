/* Fuzz target for server/ingest/statsd_parse.c (and the aggregator behind it): arbitrary
 * bytes as one StatsD packet. Every line is parsed; a parsed line must be well formed
 * (name and tags inside the input and non-empty, values finite, rate in (0, 1], counts
 * within their limits, counters not negative), and is folded into a small aggregator
 * whose flush must give finite counters and gauges. Any violation aborts. */
#include "../../server/ingest/statsd_agg.h"
#include "../../server/ingest/statsd_parse.h"
#include "../../storage/base/vg_arena.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static const char *lo, *hi;

static void inside(struct vg_str s)
{
    if (!s.len || s.p < lo || s.p + s.len > hi)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const double buckets[] = { 0.1, 1 };
    static const double quantiles[] = { 0.5, 0.99 };
    struct statsd_agg_opts o = { .timer_type = size && (data[0] & 1) ? STATSD_TIMER_SUMMARY
                                                                      : STATSD_TIMER_HISTOGRAM,
                                 .buckets = buckets, .nbuckets = 2, .quantiles = quantiles,
                                 .nquantiles = 2, .max_series = 64, .max_set_members = 64 };
    struct statsd_agg *agg = statsd_agg_new(&o);
    struct vg_arena *arena = vg_arena_new(4096);
    if (!agg || !arena)
        abort();
    lo = (const char *)data;
    hi = lo + size;
    size_t pos = 0;
    struct vg_str line;
    struct statsd_line l;
    while (statsd_next_line(lo, size, &pos, &line)) {
        if (line.p < lo || line.p + line.len > hi || !line.len || pos > size)
            abort();
        if (statsd_parse_line(line.p, line.len, &l) != STATSD_OK)
            continue;
        inside(l.name);
        if (!(l.rate > 0 && l.rate <= 1) || l.ntags > STATSD_MAX_TAGS)
            abort();
        for (size_t i = 0; i < l.ntags; i++) {
            inside(l.tags[i].key);
            inside(l.tags[i].value);
        }
        if (l.type == STATSD_SET) {
            inside(l.member);
        } else {
            if (l.nvalues < 1 || l.nvalues > STATSD_MAX_VALUES)
                abort();
            for (size_t i = 0; i < l.nvalues; i++)
                if (!isfinite(l.values[i]) || (l.type == STATSD_COUNTER && l.values[i] < 0))
                    abort();
        }
        enum statsd_drop why;
        if (statsd_agg_add(agg, &l, &why) < 0 && (unsigned)why >= STATSD_DROP_COUNT)
            abort();
    }
    struct tsdb_batch b;
    if (statsd_agg_flush(agg, 1000, arena, &b) == 0)
        for (size_t i = 0; i < b.nseries; i++)
            if (b.series[i].nsamples != 1 || b.series[i].samples[0].t != 1000 ||
                b.series[i].nlabels < 1)
                abort();
    statsd_agg_free(agg);
    vg_arena_free(arena);
    return 0;
}
