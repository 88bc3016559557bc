/* statsd_agg: the StatsD aggregator. Parsed lines (statsd_parse.h) are folded into one
 * state per series; statsd_agg_flush turns that state into TSDB samples stamped with the
 * flush time, the way statsd_exporter exposes them to a Prometheus scrape.
 *
 * Name mapping (statsd_exporter's escaping): every byte of the StatsD name outside
 * [A-Za-z0-9_:] becomes '_' (so "api.http-requests" is "api_http_requests"), and a name
 * starting with a digit gets a leading '_'. Tag keys map the same way into
 * [A-Za-z0-9_]. Tag values are kept as sent (valid UTF-8 required). Tags whose mapped
 * key starts with "__", and "le" on histograms / "quantile" on summaries, are dropped
 * (they would clash with Prometheus's own labels); when two tags map to the same key
 * the first one wins.
 *
 * Series written at every flush (t = flush time), for a StatsD name N mapped to n:
 *   counter (c)     n_total (n when it already ends in "_total"): the cumulative sum of
 *                   value/rate since the series appeared: a Prometheus counter, so
 *                   rate() and increase() work; it never resets while Vigil runs.
 *   gauge (g)       n: the last value set, deltas applied ("+3", "-2"; a delta on a new
 *                   gauge starts from 0); kept and rewritten every flush.
 *   set (s)         n: gauge, the number of distinct members seen during the flush
 *                   interval (0 after an interval with none); at most
 *                   max_set_members are tracked per interval, further new ones dropped.
 *   timer (ms), histogram (h), distribution (d), with timer_type histogram:
 *                   n_bucket{le="..."} (one per configured bucket plus "+Inf"), n_sum,
 *                   n_count: a cumulative Prometheus histogram. Timer values are
 *                   converted from milliseconds to seconds; h and d values are kept.
 *   the same with timer_type summary:
 *                   n{quantile="q"} per configured quantile, estimated by a t-digest
 *                   (quantile.h) over the observations of the last flush interval (NaN
 *                   after an interval with none, as client_golang reports an empty
 *                   window), and cumulative n_sum and n_count.
 * A sampled timer or histogram observation (|@rate) counts 1/rate times. Metadata
 * (counter, gauge, histogram or summary) is written with a family's first flush.
 *
 * Limits: at most max_series series (name plus tags) are kept; a line for a new series
 * beyond that is dropped (STATSD_DROP_MAX_SERIES). A name used with two kinds (say a
 * gauge and a timer) keeps the first and drops the other (STATSD_DROP_TYPE_CONFLICT).
 * Series are never expired: a counter must not restart from 0 while Vigil runs.
 *
 * Not thread-safe: the receiver (statsd.c) holds one lock around every call. */
#ifndef STATSD_AGG_H
#define STATSD_AGG_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/tsdb/tsdb.h"
#include "../config.h"
#include "statsd_parse.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum statsd_timer_type { STATSD_TIMER_HISTOGRAM, STATSD_TIMER_SUMMARY };

struct statsd_agg_opts {
    enum statsd_timer_type timer_type;
    const double *buckets;           /* ascending upper bounds, +Inf implied */
    size_t nbuckets;
    const double *quantiles;         /* each in (0, 1) */
    size_t nquantiles;
    size_t max_series;
    size_t max_set_members;          /* distinct members per set per interval */
    const struct config_limits *limits; /* label checks (ingest_check_labels); may be NULL */
};

enum statsd_drop {
    STATSD_DROP_MAX_SERIES,    /* "max_series" */
    STATSD_DROP_TYPE_CONFLICT, /* "type_conflict" */
    STATSD_DROP_SET_FULL,      /* "set_full" */
    STATSD_DROP_BAD_LABELS,    /* "bad_labels": over the label limits or invalid UTF-8 */
    STATSD_DROP_OUT_OF_MEMORY, /* "out_of_memory" */
    STATSD_DROP_COUNT
};
const char *statsd_drop_name(enum statsd_drop d);

struct statsd_agg;

/* Copies what it needs from o. NULL when out of memory. */
struct statsd_agg *statsd_agg_new(const struct statsd_agg_opts *o);
void statsd_agg_free(struct statsd_agg *a); /* accepts NULL */

/* Folds every value of l in. 0, or -1 with *why set when the line was dropped. */
int statsd_agg_add(struct statsd_agg *a, const struct statsd_line *l, enum statsd_drop *why);

/* Series kept now. */
size_t statsd_agg_series(const struct statsd_agg *a);

/* Fills *out with every series' samples at now_ms (see above), all memory from arena
 * (valid until the arena is reset), and starts a new interval (sets emptied, summary
 * digests reset). 0, or VG_ENOMEM with the state unchanged. */
int statsd_agg_flush(struct statsd_agg *a, int64_t now_ms, struct vg_arena *arena,
                     struct tsdb_batch *out);

/* The mapped metric name of raw into out (cap bytes, NUL-terminated); false when it
 * does not fit. With label true, ':' is replaced too (label name rules). */
bool statsd_map_name(struct vg_str raw, bool label, char *out, size_t cap);

#endif
