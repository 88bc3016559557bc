/* dtable: a bounded in-memory table of derived series, the shared core of span metrics
 * and the service graph.
 *
 * A table has fixed label names; a series is one tuple of label values and holds
 * cumulative counters and histograms (shared bucket bounds), kept in memory since the
 * table was created, as a Prometheus client library keeps them. dtable_collect turns
 * every series into TSDB input stamped with the collection time:
 *   <counter name>{labels}                       counter value
 *   <hist name>_bucket{labels, le="<bound>"}     cumulative count, le as Prometheus
 *                                                writes floats ("0.002", "+Inf")
 *   <hist name>_sum{labels}, <hist name>_count{labels}
 * The first collection of a new series writes two samples per row: 0 at the time the
 * series was created (the now_ms of the dtable_get that made it; now_ms - 1 when that is
 * not earlier than the collection), then the value. Without that zero a series would
 * first appear at its value and rate()/increase() would see no growth from the spans
 * that created it. Tempo's metrics-generator does the same (a 0 sample before the
 * first one, placed at the end of the previous minute so downsampling keeps it apart);
 * the creation time is the start time the OpenTelemetry collector gives a new
 * cumulative point, and is never before a sample the series had before it was dropped
 * as idle, so the zero is never out of order. A failed collection writes it again next
 * time; a collection whose output the caller fails to store does not.
 * Labels with an empty value are left out (Prometheus treats them as absent). With
 * exemplars on, each bucket of each histogram keeps the trace and span id of the last
 * observation that fell into it; an exemplar is written once, with the _bucket sample
 * of the next collection after it was observed, as {span_id, trace_id} (lowercase hex).
 *
 * Bounds: at most max_series series; observations for a new series beyond it are
 * dropped and counted. Label values longer than max_value_len are cut at a UTF-8
 * boundary; a value that is not valid UTF-8 or holds a NUL drops the observation
 * (counted). Series not updated for idle_ms are dropped at collection, so label churn
 * (short-lived span names) does not fill the table for good.
 *
 * Memory: one allocation per series when it is created (header, counters, histograms,
 * exemplars and the label values in one block); updating an existing series allocates
 * nothing.
 *
 * Thread safety: a table has one mutex. dtable_lock/unlock bracket any number of
 * dtable_get/dtable_count/dtable_observe calls (a batch of spans takes it once);
 * dtable_collect and dtable_stats take it themselves. */
#ifndef DTABLE_H
#define DTABLE_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/base/vg_str.h"
#include "../../storage/tsdb/tsdb.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DTABLE_MAX_LABELS 6
#define DTABLE_MAX_COUNTERS 4
#define DTABLE_MAX_HISTS 2
#define DTABLE_MAX_BOUNDS 64

struct dtable_def {
    const char *const *label_names; /* valid label names, in the order values are given */
    size_t nlabels;                 /* 1..DTABLE_MAX_LABELS */
    const char *const *counter_names; /* full metric names ("traces_spanmetrics_calls_total") */
    size_t ncounters;               /* 0..DTABLE_MAX_COUNTERS */
    const char *const *hist_names;  /* family names; _bucket, _sum, _count are appended */
    size_t nhists;                  /* 0..DTABLE_MAX_HISTS */
    const double *bounds;           /* finite, strictly ascending; +Inf is implied */
    size_t nbounds;                 /* 0..DTABLE_MAX_BOUNDS */
    bool exemplars;                 /* keep a trace exemplar per histogram bucket */
    size_t max_series;              /* >= 1 */
    size_t max_value_len;           /* bytes of one label value at most (>= 4) */
    int64_t idle_ms;                /* drop series idle this long at collection; 0 = never */
};

struct dtable_exemplar {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    int64_t t_ms; /* when the observed span ended */
};

struct dtable;
struct dseries;

/* A 64-bit hash of len bytes at data, chained through seed: eight bytes a step, for
 * the per-span lookups of the derived data (not for anything stored). Pure. */
uint64_t dtable_hash(const void *data, size_t len, uint64_t seed);

/* A new, empty table. The def's strings and arrays are copied. NULL with err: VG_EINVAL
 * naming what is out of range in def, or VG_ENOMEM. */
struct dtable *dtable_new(const struct dtable_def *def, struct vg_err *err);
void dtable_free(struct dtable *t); /* accepts NULL */

void dtable_lock(struct dtable *t);
void dtable_unlock(struct dtable *t);

/* With the lock held: the series of the label values vals (def.nlabels of them; an empty
 * value is allowed), created if new; its last-update time becomes now_ms. NULL when the
 * table is full or a value is invalid (both counted in dtable_stats); the series stays
 * valid until the lock is released. */
struct dseries *dtable_get(struct dtable *t, const struct vg_str *vals, int64_t now_ms);
/* With the lock held: adds delta to counter i of s. */
void dtable_count(struct dtable *t, struct dseries *s, size_t i, double delta);
/* With the lock held: observes v in histogram i of s; ex (may be NULL) becomes the
 * exemplar of the bucket v falls into when the table keeps exemplars. */
void dtable_observe(struct dtable *t, struct dseries *s, size_t i, double v,
                    const struct dtable_exemplar *ex);

/* What dtable_collect hands out: TSDB input for every series, owned by the out struct. */
struct dtable_out {
    struct tsdb_series_in *series; /* vg_malloc'ed, grown as tables are collected */
    size_t n, cap;
    struct vg_arena *arena;        /* labels, samples, exemplars */
};
void dtable_out_init(struct dtable_out *o);
void dtable_out_free(struct dtable_out *o); /* leaves o empty and reusable */

/* Appends every live series of t, stamped now_ms, to out, and drops idle series. Takes
 * the lock only to copy the numbers. 0 or VG_ENOMEM (out keeps what it had before; the
 * exemplars that could not be written are kept for the next collection). */
int dtable_collect(struct dtable *t, int64_t now_ms, struct dtable_out *out,
                   struct vg_err *err);

struct dtable_stats {
    uint64_t series;          /* live series */
    uint64_t dropped_full;    /* observations refused: the table was full */
    uint64_t dropped_invalid; /* observations refused: a label value was invalid */
    uint64_t expired;         /* series dropped after idle_ms */
};
void dtable_stats(struct dtable *t, struct dtable_stats *st);

#endif
