/* engine: evaluates a parsed LogQL query against the log store and returns Loki's
 * result kinds: streams for a log query, a vector (instant) or matrix (range) for a
 * metric query, or a scalar. No knowledge of HTTP or JSON (server/api/loki.c renders).
 *
 * Semantics follow Loki 3:
 * - Log queries return at most limit entries in the requested direction over
 *   [start, end), grouped into streams by each entry's final label set (pipeline.h);
 *   entries within a stream are in the query's direction.
 * - Range aggregations over `[range]` windows ending at each step (left-open
 *   (t - range, t] as Loki), offset honoured; steps from start to end inclusive; an
 *   instant query is one step at end (Loki's instant query evaluates at `time`).
 *   count_over_time, rate (count / range seconds), bytes_over_time, bytes_rate,
 *   absent_over_time and the unwrapped sum/avg/min/max/stdvar/stddev/quantile/first/
 *   last_over_time and rate/rate_counter; grouping on unwrapped aggregations.
 * - Vector aggregations (sum, avg, count, min, max, stddev, stdvar, topk, bottomk,
 *   sort, sort_desc) with by/without; binary operators between vectors (one-to-one,
 *   on/ignoring, group_left/right) and with scalars, comparison with and without bool,
 *   and/or/unless; vector(x); label_replace; literals.
 * - Series with no samples in a step are absent from that step (no NaN filling).
 *
 * Limits: timeout, most series a metric query may build, most points per range query
 * (Loki's 11,000 = (end-start)/step + 1); an exceeded limit is an error, not a
 * truncated answer. Thread-safe: each call builds its own state. */
#ifndef LOGQL_ENGINE_H
#define LOGQL_ENGINE_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/base/vg_str.h"
#include "../../storage/tsdb/labels.h"
#include "ast.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct logstore;

struct logql_params {
    int64_t start_ns, end_ns; /* range query: [start, end]; instant: start == end */
    int64_t step_ns;          /* range metric queries; > 0 */
    int64_t interval_ns;      /* log range queries: at most one entry per interval; 0 = all */
    bool instant;             /* /query rather than /query_range */
    bool backward;            /* direction=backward (Loki's default) */
    size_t limit;             /* log queries: most entries returned (Loki default 100) */
};

struct logql_limits {
    int64_t timeout_ms;       /* 0 = none */
    size_t max_series;        /* metric queries: series in one step's result (Loki 500) */
    size_t max_points;        /* range queries: steps (11000) */
    size_t max_entries_limit; /* a larger `limit` is an error (Loki 5000) */
    bool no_pushdown;         /* false (default): a vector aggregation's grouping is applied
                                 while extracting samples where that is exact (engine_range.c);
                                 true evaluates every label set as its own series first
                                 (tests compare the two) */
};
void logql_limits_default(struct logql_limits *l);

enum logql_result_type {
    LQ_RESULT_STREAMS,
    LQ_RESULT_VECTOR,
    LQ_RESULT_MATRIX,
    LQ_RESULT_SCALAR,
};
const char *logql_result_type_str(enum logql_result_type t); /* "streams", "vector", ... */

struct logql_entry {
    int64_t t;                /* ns */
    struct vg_str line;
    const struct label *meta; /* structured metadata of the entry */
    size_t nmeta;
    const struct label *parsed; /* labels the pipeline extracted (not stream labels) */
    size_t nparsed;
};

struct logql_stream {
    const struct label *labels; /* sorted final labels */
    size_t nlabels;
    struct logql_entry *entries;
    size_t nentries;
};

struct logql_point {
    int64_t t_ms;             /* Loki reports sample times in (fractional) seconds */
    double v;
};

struct logql_series {
    const struct label *labels; /* sorted */
    size_t nlabels;
    struct logql_point *points; /* one for a vector */
    size_t npoints;
};

/* Execution statistics for the `stats` object of Loki's responses. */
struct logql_stats {
    uint64_t streams;          /* selected */
    uint64_t chunks_considered, chunks_skipped, chunks_opened;
    uint64_t bytes_decompressed;
    uint64_t lines_processed, bytes_processed; /* entries and line bytes read */
    uint64_t lines_returned;
    int64_t exec_ns;
};

/* A query's answer; everything lives in arena. */
struct logql_result {
    enum logql_result_type type;
    struct logql_stream *streams; /* STREAMS: in Loki's order (by labels) */
    size_t nstreams;
    struct logql_series *series;  /* VECTOR (npoints 1 each) and MATRIX, sorted by labels */
    size_t nseries;
    struct logql_point scalar;    /* SCALAR */
    struct logql_stats stats;
    struct vg_arena *arena;
};
void logql_result_free(struct logql_result *r); /* accepts NULL */

/* Evaluates expr over ls. 0 with *out, or a negative code with err: VG_EINVAL for a
 * query the engine refuses (a log query where a metric one is needed, limit over
 * max_entries_limit, too many points, step <= 0 for a range metric query), VG_EOVERLOAD (timeout, message says so),
 * VG_ETOOLARGE (max_series), VG_EIO, VG_ENOMEM. Messages read as Loki's. */
int logql_exec(struct logstore *ls, const struct logql_expr *expr, const struct logql_params *p,
               const struct logql_limits *lim, struct logql_result **out, struct vg_err *err);

#endif
