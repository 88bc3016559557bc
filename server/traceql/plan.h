/* plan: the span store filters a TraceQL query implies, so that search reads the
 * store's indexes instead of every trace.
 *
 * A trace matches only when the query's first spanset is non-empty, so every condition
 * that each span of some necessary spanset must satisfy is a filter the store may apply
 * before the exact evaluation (eval.h). Necessary spansets: the first stage's spanset
 * expression and any later spanset stage; both sides of && and of the structural
 * operators; nothing under || (either side may be the one that matched). Of each
 * necessary `{...}` only the top-level && conjuncts of the form `field op static` count:
 *   name = "x"                                 -> span name
 *   resource.service.name / .service.name = "x" -> service
 *   status = error|ok|unset, kind = server|... -> status, kind
 *   duration > >= < <= d                       -> span duration bounds
 *   span.a / resource.a / .a = "s" | int | bool, =~ "re"
 *                                              -> an attribute matcher on the text form
 *   traceDuration > >= < <= d                  -> trace duration bounds
 * The store requires all its span-level filters on one span, so the span-level
 * conditions come from one spanset filter only: the one scoring highest (service and
 * span name first, then attribute equality, status, kind, durations, regexes).
 * Trace-level bounds hold for the trace whichever spanset they sit in, and all are kept.
 * A span attribute literally named service.name is not looked at by the service filter
 * (the store keeps the service from the resource); queries for it are rare.
 * Everything the plan does not cover is left to the exact evaluation.
 *
 * Thread-safe: pure over the query; the plan owns the matchers it made. */
#ifndef TRACEQL_PLAN_H
#define TRACEQL_PLAN_H

#include "../../storage/base/vg_err.h"
#include "../../storage/spanstore/spanstore.h"
#include "ast.h"

#define TRACEQL_PLAN_MAX_ATTRS 8

struct traceql_plan {
    struct spanstore_query q; /* from/to/limit/max_inspect are left to the caller */
    struct spanstore_attr_filter attrs[TRACEQL_PLAN_MAX_ATTRS];
    struct matcher *owned[TRACEQL_PLAN_MAX_ATTRS];
    size_t nowned;
};

/* Fills p from query. 0, VG_ENOMEM, or VG_EINVAL when a matcher cannot be built (the
 * parser already compiled every regex, so only an internal error). Call
 * traceql_plan_free afterwards, also after an error. */
int traceql_plan_build(const struct traceql_query *query, struct traceql_plan *p,
                       struct vg_err *err);
void traceql_plan_free(struct traceql_plan *p);

/* The span store's name for an attribute scope. */
enum spanstore_scope traceql_plan_scope(enum traceql_scope s);

#endif
