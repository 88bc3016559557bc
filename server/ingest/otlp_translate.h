/* otlp_translate: an OTLP ExportMetricsServiceRequest to a TSDB batch, following the
 * rules Prometheus's own OTLP receiver applies (see the top of otlp_translate.c for every
 * rule and the one place Vigil differs: exponential histograms become classic buckets).
 *
 * The translation is per data point: a point is either stored completely (all the series
 * it expands to, e.g. every bucket of a histogram) or rejected with a reason, and the rest
 * of the request still goes in (OTLP partial success). */
#ifndef OTLP_TRANSLATE_H
#define OTLP_TRANSLATE_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/tsdb/tsdb.h"
#include "../config.h"
#include "otlp_delta.h"

#include "otlp_metrics_service.pb-c.h"

#include <stdint.h>

/* Why a data point was refused; names are the "reason" label in /metrics. */
enum otlp_reject {
    OTLP_REJECT_NO_TIMESTAMP,      /* time_unix_nano is 0: "missing_timestamp" */
    OTLP_REJECT_DELTA,             /* delta temporality with otlp_delta = reject */
    OTLP_REJECT_TEMPORALITY,       /* temporality unspecified: "invalid_temporality" */
    OTLP_REJECT_METRIC_NAME,       /* name normalises to nothing usable */
    OTLP_REJECT_LABELS,            /* a series fails ingest_check_labels */
    OTLP_REJECT_SERIES_LIMIT,      /* limits.max_series_per_request reached */
    OTLP_REJECT_MALFORMED,         /* inconsistent point (bucket counts, bounds, scale, value) */
    OTLP_REJECT_DELTA_STATE,       /* accumulation refused: not newer, or state full */
    OTLP_REJECT_COUNT
};
const char *otlp_reject_name(enum otlp_reject r);

struct otlp_translate_result {
    struct tsdb_batch batch;        /* points into the arena */
    uint64_t points;                /* OTLP data points seen */
    uint64_t rejected;              /* OTLP data points refused */
    uint64_t rejected_by[OTLP_REJECT_COUNT];
    char reason[256];               /* first reason, or a warning; "" when none */
};

typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest
    otlp_metrics_request;

/* Translates req with cfg's rules (suffixes, promoted attributes, delta policy, limits).
 * delta is used (and updated) only for delta points with OTLP_DELTA_ACCUMULATE; it may be
 * NULL otherwise (delta points are then refused). Every allocation, including the batch,
 * comes from a. Returns 0 with *res filled (rejections are not an error), or VG_ENOMEM
 * when a is exhausted (out of memory or over its limit; nothing usable in *res).
 * Thread-safe given distinct arenas (delta has its own lock). */
int otlp_translate(const otlp_metrics_request *req, const struct config *cfg,
                   struct otlp_delta_state *delta, struct vg_arena *a,
                   struct otlp_translate_result *res, struct vg_err *err);

#endif
