/* Fuzz target for traceql_parse (server/traceql/parser.c), the planner (plan.c) and the
 * evaluator (eval.c): arbitrary bytes as a query. A failed parse must say why ("parse
 * error ..." with VG_EINVAL, or VG_ENOMEM); a parsed query must plan without error and
 * evaluate over a small fixed trace (three spans: a root, its child, and a span whose
 * parent is itself missing) with a result that never counts more spans than the trace
 * has. */
#include "../../server/traceql/eval.h"
#include "../../server/traceql/parser.h"
#include "../../server/traceql/plan.h"

#include "fuzz_check.h"
#include <stdint.h>
#include <string.h>

static const struct span_attr res[] = {
    { .key = { "service.name", 12 }, .type = SPAN_VAL_STRING, .v.s = { "shop", 4 } },
};
static const struct span_attr attrs[] = {
    { .key = { "http.status_code", 16 }, .type = SPAN_VAL_INT, .v.i = 500 },
    { .key = { "ratio", 5 }, .type = SPAN_VAL_DOUBLE, .v.d = 0.25 },
    { .key = { "ok", 2 }, .type = SPAN_VAL_BOOL, .v.b = true },
    { .key = { "http.method", 11 }, .type = SPAN_VAL_STRING, .v.s = { "GET", 3 } },
};

static const struct span spans[] = {
    { .trace_id = { 1 }, .span_id = { 1 }, .service = { "shop", 4 }, .name = { "GET /", 5 },
      .kind = SPAN_KIND_SERVER, .start_ns = 1000, .end_ns = 5000, .resource_attrs = res,
      .nresource_attrs = 1, .attrs = attrs, .nattrs = 4 },
    { .trace_id = { 1 }, .span_id = { 2 }, .parent_span_id = { 1 }, .service = { "shop", 4 },
      .name = { "db", 2 }, .kind = SPAN_KIND_CLIENT, .status = SPAN_STATUS_ERROR,
      .status_message = { "boom", 4 }, .start_ns = 2000, .end_ns = 3000 },
    { .trace_id = { 1 }, .span_id = { 3 }, .parent_span_id = { 9 }, .service = { "cache", 5 },
      .name = { "get", 3 }, .start_ns = 2500, .end_ns = 2600, .attrs = attrs + 1, .nattrs = 1 },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct vg_err err;
    struct traceql_query *q = traceql_parse((const char *)data, size, &err);
    if (!q) {
        FUZZ_CHECK(err.code == VG_EINVAL || err.code == VG_ENOMEM);
        FUZZ_CHECK(err.code == VG_ENOMEM || strncmp(err.msg, "parse error", 11) == 0);
        return 0;
    }
    struct traceql_plan p;
    int rc = traceql_plan_build(q, &p, &err);
    FUZZ_CHECK(rc == 0 || rc == VG_ENOMEM);
    traceql_plan_free(&p);
    struct vg_arena *a = vg_arena_new(0);
    if (a) {
        struct traceql_match m;
        size_t n = sizeof spans / sizeof spans[0];
        rc = traceql_eval(q, spans, n, a, &m, &err);
        FUZZ_CHECK(rc == 0 || rc == VG_ENOMEM);
        FUZZ_CHECK(rc != 0 || m.matched <= n);
        vg_arena_free(a);
    }
    traceql_query_free(q);
    return 0;
}
