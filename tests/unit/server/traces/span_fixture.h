/* span_fixture: hand-built spans and lookups in collected derived series, shared by the
 * tests of server/traces/. Everything is static inline so a test file that uses only
 * part of it still compiles under -Werror. */
#ifndef SPAN_FIXTURE_H
#define SPAN_FIXTURE_H

#include "../../../../server/traces/dtable.h"
#include "../../../../storage/spanstore/span.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <string.h>

#define SF_T0 1700000000000000000LL /* ns */

/* A span of trace tid (one byte repeated), span id sid, parent pid (0 = root). */
static inline struct span sf_span(const char *service, const char *name, enum span_kind kind,
                                  enum span_status status, uint8_t tid, uint8_t sid,
                                  uint8_t pid, int64_t dur_ms)
{
    struct span s;
    memset(&s, 0, sizeof s);
    memset(s.trace_id, tid, sizeof s.trace_id);
    memset(s.span_id, sid, sizeof s.span_id);
    if (pid)
        memset(s.parent_span_id, pid, sizeof s.parent_span_id);
    s.kind = kind;
    s.status = status;
    s.start_ns = SF_T0;
    s.end_ns = SF_T0 + dur_ms * 1000000LL;
    s.name = vg_str_c(name);
    s.service = vg_str_c(service);
    return s;
}

/* The row of out named name whose labels include every name/value pair given (NULL
 * ends them), or NULL. */
static inline const struct tsdb_series_in *sf_row(const struct dtable_out *out,
                                                  const char *name, ...)
{
    for (size_t i = 0; i < out->n; i++) {
        const struct tsdb_series_in *in = &out->series[i];
        struct vg_str n = labels_get(in->labels, in->nlabels, "__name__");
        if (!vg_str_eq_c(n, name))
            continue;
        va_list ap;
        va_start(ap, name);
        bool ok = true;
        for (const char *k; ok && (k = va_arg(ap, const char *)) != NULL;) {
            const char *want = va_arg(ap, const char *);
            ok = vg_str_eq_c(labels_get(in->labels, in->nlabels, k), want);
        }
        va_end(ap);
        if (ok)
            return in;
    }
    return NULL;
}

/* How many rows are called name. */
static inline size_t sf_count(const struct dtable_out *out, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < out->n; i++)
        n += vg_str_eq_c(labels_get(out->series[i].labels, out->series[i].nlabels,
                                    "__name__"), name);
    return n;
}

#endif
