/* spanmetrics: request, error and duration (RED) series derived from every ingested
 * span, named and labelled as Grafana Tempo's metrics-generator writes them, so Tempo
 * dashboards and Grafana's service-graph RED table find them:
 *
 *   traces_spanmetrics_calls_total{service, span_name, span_kind, status_code}
 *   traces_spanmetrics_duration_seconds_bucket{..., le}  (and _sum, _count)
 *
 * span_kind is the OTLP enum's name ("SPAN_KIND_SERVER", "SPAN_KIND_CLIENT", ...,
 * "SPAN_KIND_UNSPECIFIED"), status_code likewise ("STATUS_CODE_UNSET", "STATUS_CODE_OK",
 * "STATUS_CODE_ERROR"); service is the span's service.name (left out when empty). The
 * duration is end - start in seconds. Every histogram bucket keeps the trace and span id
 * of the last span that fell into it as an exemplar, so /api/v1/query_exemplars leads
 * from a latency spike to a trace. Counters are cumulative in memory (dtable.h) and
 * written with the flush time by derive.c.
 *
 * Thread safety: spanmetrics_observe and spanmetrics_collect may run concurrently from
 * any threads (the table's one mutex, taken once per batch). */
#ifndef SPANMETRICS_H
#define SPANMETRICS_H

#include "../../storage/spanstore/span.h"
#include "dtable.h"

#define SPANMETRICS_CALLS "traces_spanmetrics_calls_total"
#define SPANMETRICS_DURATION "traces_spanmetrics_duration_seconds"

struct spanmetrics_opts {
    const double *bounds;  /* histogram bounds in seconds, ascending */
    size_t nbounds;
    size_t max_series;     /* label tuples at most; spans of new ones beyond are dropped */
    size_t max_value_len;  /* label values are cut to this many bytes */
    int64_t idle_ms;       /* series not updated this long are dropped; 0 = never */
};

struct spanmetrics;

/* NULL with err (VG_EINVAL for bad bounds, VG_ENOMEM). */
struct spanmetrics *spanmetrics_new(const struct spanmetrics_opts *o, struct vg_err *err);
void spanmetrics_free(struct spanmetrics *sm); /* accepts NULL */

/* Counts n spans at time now_ms (the series' last-update time). Spans with an end
 * before their start or kinds and statuses out of range are skipped. */
void spanmetrics_observe(struct spanmetrics *sm, const struct span *spans, size_t n,
                         int64_t now_ms);

/* Appends the series stamped now_ms to out (dtable_collect). */
int spanmetrics_collect(struct spanmetrics *sm, int64_t now_ms, struct dtable_out *out,
                        struct vg_err *err);

void spanmetrics_stats(struct spanmetrics *sm, struct dtable_stats *st);

/* "SPAN_KIND_SERVER", ...; "STATUS_CODE_OK", ... (values out of range: the UNSPECIFIED
 * and UNSET names). */
const char *spanmetrics_kind_name(enum span_kind k);
const char *spanmetrics_status_name(enum span_status s);

#endif
