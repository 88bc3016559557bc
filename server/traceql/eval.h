/* eval: runs a parsed TraceQL query over the spans of one trace.
 *
 * Semantics (Tempo's, for the subset of parser.h):
 * - a spanset filter keeps the spans for which its field expression is true; `{}` keeps
 *   every span;
 * - attributes: span.x looks in the span's attributes, resource.x in its resource's
 *   (resource.service.name falls back to the span's service), .x in the span's first,
 *   then the resource's. STRING, INT, DOUBLE and BOOL values take part; BYTES, arrays
 *   and maps read as missing. A missing attribute makes every comparison false (!= too)
 *   except with the literal nil: `.x = nil` is "missing", `.x != nil` "present". An
 *   attribute alone is true when it holds the boolean true;
 * - intrinsics: name, status, statusMessage, kind, duration (end - start), rootName and
 *   rootServiceName (of the span without a parent; missing when there is none),
 *   traceDuration (latest end - earliest start over the trace's spans);
 * - numbers (int, float, duration in ns) compare with each other; strings bytewise; =~
 *   and !~ match the whole value (anchored) and only strings; mixed types are false;
 * - spanset && keeps both sides' spans when both are non-empty, || the union; the
 *   structural operators keep right-side spans: > whose parent, >> one of whose
 *   ancestors, < one of whose children, << one of whose descendants, ~ one of whose
 *   siblings is in the left side (parents found by parent span id within the trace);
 * - a pipeline stage filters the spanset: a later spanset expression intersects it,
 *   agg(field) op value keeps it only when the aggregate over its spans holds (count()
 *   counts spans; avg, min, max and sum take the numeric values of the field, and with
 *   none the stage fails), select() changes nothing here (the API shows the named
 *   fields). An empty spanset ends the pipeline: the trace does not match.
 *
 * Thread-safe: the query is read-only; scratch memory comes from the caller's arena. */
#ifndef TRACEQL_EVAL_H
#define TRACEQL_EVAL_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/spanstore/span.h"
#include "ast.h"

#include <stdbool.h>
#include <stddef.h>

struct traceql_match {
    bool *in;       /* in[i]: spans[i] is in the resulting spanset (array from the arena) */
    size_t n;       /* spans of the trace */
    size_t matched; /* how many in[] are true; 0 = the trace does not match */
};

/* Evaluates q over the n spans of one trace (any order). 0 with *out filled, or
 * VG_ENOMEM when a is exhausted. */
int traceql_eval(const struct traceql_query *q, const struct span *spans, size_t n,
                 struct vg_arena *a, struct traceql_match *out, struct vg_err *err);

/* The attribute name of s in scope (ANY: span first, then resource), or NULL. */
const struct span_attr *traceql_span_attr(const struct span *s, enum traceql_scope scope,
                                          struct vg_str name);

/* The value of an attribute as the evaluator sees it (TQ_NIL for BYTES, ARRAY, MAP). */
void traceql_attr_value(const struct span_attr *a, struct traceql_value *v);

#endif
