/* derive: data derived from ingested traces (and error logs), the module
 * mod_traces_derive that owns it, and the flush thread.
 *
 * Every span a receiver stores passes through trace_derive_observe (called by
 * ingest_store_spans for the spans the store took) and feeds three parts:
 *   - span metrics (spanmetrics.h): traces_spanmetrics_calls_total and the
 *     traces_spanmetrics_duration_seconds histogram, with trace exemplars;
 *   - the service graph (servicegraph.h): traces_service_graph_request_total,
 *     _request_failed_total, _request_server_seconds and _request_client_seconds;
 *   - error tracking (errors.h): exception events grouped by fingerprint into the error
 *     store under data_dir/errors; error log lines with a trace id come in through
 *     trace_derive_observe_logs (called by ingest_store_logs).
 * The counters are cumulative in memory; a thread named "trace-derive" writes them into
 * the TSDB every traces.derive_flush_interval, stamped with the flush time (with TYPE
 * metadata for each family; a new series also gets a 0 sample at its creation, see
 * dtable.h, so increase() counts the spans that created it), and writes pending error
 * occurrences to the error store. Every flush at least DERIVE_EXPIRE_EVERY_MS after the
 * last expiry also applies storage.trace_retention to the error store
 * (errorstore_expire: groups unseen that long go, and older hour counts).
 * Series idle for DERIVE_IDLE_MS are dropped (Tempo's stale_duration default), so
 * vanished span names stop being written.
 *
 * Config (section traces): span_metrics_enabled, service_graph_enabled, errors_enabled,
 * derive_flush_interval, span_metrics_buckets, service_graph_buckets,
 * service_graph_wait, service_graph_max_items, max_derived_series, errors_max_groups;
 * label values are cut to limits.max_label_value_length.
 *
 * Own figures in /metrics:
 *   vigil_trace_derive_series{kind}                         gauge, live series
 *   vigil_trace_derive_dropped_spans_total{kind,reason}     max_series | invalid_label
 *   vigil_trace_derive_flushes_total{result}                ok | error
 *   traces_service_graph_unpaired_spans_total{side}         client | server, expired alone
 *   traces_service_graph_dropped_spans_total                store full
 *   vigil_trace_derive_service_graph_waiting_spans          gauge
 *   vigil_errors_occurrences_total
 *   vigil_errors_dropped_total{reason}                      pending_full | max_groups
 *   vigil_errors_groups                                     gauge
 *
 * Thread safety: observe and flush may be called from any thread at once. */
#ifndef TRACE_DERIVE_H
#define TRACE_DERIVE_H

#include "../../storage/base/vg_err.h"
#include "../../storage/logstore/logstore.h"
#include "../../storage/spanstore/span.h"
#include "../../storage/tsdb/tsdb.h"
#include "../metrics.h"
#include "../vigil.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DERIVE_IDLE_MS (15LL * 60 * 1000)
#define DERIVE_EXPIRE_EVERY_MS 60000LL /* error retention runs at most this often */

struct errors;

struct trace_derive_opts {
    bool span_metrics, service_graph, errors;
    int64_t flush_interval_ms;         /* 0 = no thread (tests flush by hand) */
    const double *span_bounds;         /* span duration histogram, seconds */
    size_t span_nbounds;
    const double *graph_bounds;        /* service graph histograms, seconds */
    size_t graph_nbounds;
    int64_t graph_wait_ms;
    size_t graph_max_items;
    size_t max_series;                 /* per kind of derived metric */
    size_t max_value_len;              /* label value bytes */
    const char *errors_dir;            /* the error store's directory (errors only) */
    size_t errors_max_groups;
    bool errors_no_sync;               /* tests; storage.fsync */
    int64_t errors_sync_interval_ms;   /* errors_opts.sync_interval_ms */
    int64_t errors_retention_ms;       /* expire error groups unseen this long (and older
                                        * hour counts); 0 = keep */
};

struct trace_derive;

/* Creates the enabled parts (and the thread when flush_interval_ms > 0); series are
 * written to tsdb, figures registered in m (may be NULL) as a collector that reads d:
 * m must not be rendered after trace_derive_free (vigil_stop frees the registry after
 * the modules, with the front ends already stopped). NULL with err. */
struct trace_derive *trace_derive_new(const struct trace_derive_opts *o, struct tsdb *tsdb,
                                      struct metrics *m, struct vg_err *err);
/* Stops the thread, flushes one last time, frees. Accepts NULL. */
void trace_derive_free(struct trace_derive *d);

/* Feeds n stored spans to every enabled part. d may be NULL (derived data off). */
void trace_derive_observe(struct trace_derive *d, const struct span *spans, size_t n);
/* Feeds log streams to error tracking. d may be NULL. */
void trace_derive_observe_logs(struct trace_derive *d,
                               const struct logstore_stream_in *streams, size_t n);

/* Writes the derived series stamped now_ms into the TSDB and pending errors into the
 * error store. 0, or the first failure (the rest is still attempted). */
int trace_derive_flush(struct trace_derive *d, int64_t now_ms, struct vg_err *err);

/* The error tracker, or NULL when errors are off or d is NULL. */
struct errors *trace_derive_errors(struct trace_derive *d);

/* Parses a list of bucket bounds (config strings) into out (cap entries): finite,
 * strictly ascending numbers. 0 or VG_EINVAL naming key and the bad item. */
int trace_derive_parse_buckets(const char *key, char *const *items, size_t n, double *out,
                               size_t cap, size_t *nout, struct vg_err *err);

extern const struct vigil_module mod_traces_derive;

#endif
