/* engine: runs PromQL queries: parse, evaluate through a querier, return a result value.
 * Prometheus 3 semantics for float samples (notes in eval.c): lookback delta, staleness
 * markers, left-open range windows, @ and offset, subqueries, every aggregation, binary
 * operator and function.
 *
 * Thread-safe: many queries may run at once (each with its own querier). Results are
 * owned by the caller and freed with promql_result_free. */
#ifndef PROMQL_ENGINE_H
#define PROMQL_ENGINE_H

#include "../../storage/base/vg_err.h"
#include "../../storage/tsdb/labels.h"
#include "ast.h"
#include "querier.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct promql_opts {
    int64_t lookback_ms;        /* default 5m */
    uint64_t max_samples;       /* samples loaded at once per query; default 50,000,000 */
    int64_t timeout_ms;         /* 0 = none; default 2m */
    int64_t max_points;         /* points per series in a range query; default 11,000 */
    int64_t default_subquery_step_ms; /* step for expr[5m:]; default 1m (Prometheus's
                                         global evaluation interval) */
    bool delayed_name_removal; /* Prometheus's promql-delayed-name-removal feature: keep
                                  __name__ through the evaluation and drop it at the end
                                  where an operation asked to; default false (Prometheus 3's
                                  default); its test engine, hence the conformance runner,
                                  turns it on */
};
void promql_opts_default(struct promql_opts *o);

/* One point. */
struct promql_point {
    int64_t t; /* ms */
    double v;
};

/* One series of a result: for a vector exactly one point, for a matrix one or more. */
struct promql_series {
    struct label *labels; /* sorted; no __name__ when the operation dropped it */
    size_t nlabels;
    struct promql_point *points;
    size_t npoints;
};

struct promql_result {
    enum promql_type type; /* PT_SCALAR, PT_VECTOR, PT_MATRIX or PT_STRING */
    struct promql_series *series; /* vector or matrix */
    size_t nseries;
    struct promql_point scalar;   /* PT_SCALAR */
    char *string;                 /* PT_STRING (NUL-terminated) */
    int64_t string_t;
    bool ordered;                 /* vector order is meaningful (sort, topk, ...) */
    char **warnings;              /* annotations, as Prometheus's "warnings" */
    size_t nwarnings;
    char **infos;                 /* as Prometheus's "infos" */
    size_t ninfos;
    uint64_t samples_loaded;      /* for stats */
    void *priv;                   /* the memory behind all of the above */
};
void promql_result_free(struct promql_result *r); /* accepts NULL */

/* Error codes beyond vg_err.h's, in err->code, so the API can pick errorType:
 * VG_EINVAL = bad_data (parse errors, bad parameters), VG_ETOOLARGE = execution (sample or
 * point limit; message names it), VG_EOVERLOAD = timeout ("query timed out in ..."),
 * VG_ECONFLICT = execution (e.g. many-to-many matching, duplicate series for a label set),
 * others = internal. */

/* Parses query (len bytes). NULL with err (VG_EINVAL, message "1:5: parse error: ...").
 * Caller frees with promql_expr_free. (parser.c) */
struct promql_expr *promql_parse(const char *query, size_t len, struct vg_err *err);

/* Instant query at time t (ms). */
int promql_eval_instant(const struct promql_opts *o, struct querier *q,
                        const struct promql_expr *e, int64_t t, struct promql_result **out,
                        struct vg_err *err);
/* Range query from start to end (ms, inclusive) every step ms; the result is a matrix
 * (or an error for string results, as Prometheus). */
int promql_eval_range(const struct promql_opts *o, struct querier *q,
                      const struct promql_expr *e, int64_t start, int64_t end, int64_t step,
                      struct promql_result **out, struct vg_err *err);

#endif
