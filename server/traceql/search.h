/* search: finds the traces a TraceQL query matches in the span store.
 *
 * The plan (plan.h) turns what every match must satisfy into a spanstore_query, so the
 * store's indexes pick the candidate traces (newest first); each candidate is read
 * whole (spanstore_trace_get) and evaluated exactly (eval.h). Candidates are asked for
 * in rounds of growing size (the store has no cursor), skipping traces already looked
 * at, until enough traces matched, the store has no more candidates, or max_inspect
 * traces were evaluated. Reaching max_inspect (or the store's own candidate bound)
 * before the store ran out sets truncated: more matches may exist.
 *
 * Thread-safe: the query is read-only; the store is thread-safe. */
#ifndef TRACEQL_SEARCH_H
#define TRACEQL_SEARCH_H

#include "../../storage/base/vg_err.h"
#include "../../storage/spanstore/spanstore.h"
#include "ast.h"
#include "eval.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRACEQL_SEARCH_DEFAULT_LIMIT 20
#define TRACEQL_SEARCH_MAX_LIMIT 1000
#define TRACEQL_SEARCH_DEFAULT_INSPECT 5000

struct traceql_search_opts {
    int64_t from_ns, to_ns;       /* span start window; 0 = open */
    int64_t min_trace_duration_ns; /* extra trace-level bounds (Tempo's minDuration and */
    int64_t max_trace_duration_ns; /* maxDuration parameters); 0 = none */
    size_t limit;                 /* matching traces wanted; 0 = default, capped at MAX */
    size_t max_inspect;           /* traces read and evaluated at most; 0 = default */
};

struct traceql_search_stats {
    uint64_t inspected_traces; /* candidates read and evaluated */
    uint64_t inspected_spans;
    uint64_t keys_read;        /* LevelDB keys the store's searches touched */
    uint64_t matched;          /* traces handed to the callback */
    bool truncated;
};

/* Called for each matching trace, in the order found (newest candidates first within a
 * round). spans and m live until the callback returns. A negative return stops the
 * search and is returned by traceql_search. */
typedef int (*traceql_hit_fn)(void *ud, const struct spanstore_trace_summary *sum,
                              const struct span *spans, size_t n,
                              const struct traceql_match *m);

/* Runs q. 0 with *stats filled, the callback's negative value, or VG_EIO / VG_ENOMEM /
 * VG_EINVAL (a stored span that does not decode) with err set. */
int traceql_search(struct spanstore *ss, const struct traceql_query *q,
                   const struct traceql_search_opts *o, traceql_hit_fn fn, void *ud,
                   struct traceql_search_stats *stats, struct vg_err *err);

#endif
