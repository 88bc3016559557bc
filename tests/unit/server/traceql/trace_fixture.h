/* trace_fixture: one hand-built trace shared by the TraceQL tests, and a helper that
 * runs a query over it and names the matching spans.
 *
 *   A  frontend "GET /"         server   unset  100ms  http.method=GET http.status_code=200
 *   ├─ B frontend "call backend" client  error   80ms  peer.service=backend
 *   │  └─ C backend "handle"      server  error   60ms  "boom"  http.status_code=500
 *   │     │                                              retry=true ratio=0.5
 *   │     └─ D backend "db query" client  ok      10ms  db.system=postgres
 *   └─ E frontend "render"       internal unset   5ms
 *
 * The spans are listed out of order (D first) to show order does not matter. */
#ifndef TRACEQL_TRACE_FIXTURE_H
#define TRACEQL_TRACE_FIXTURE_H

#include "../../../../server/traceql/eval.h"
#include "../../../../server/traceql/parser.h"

#include <criterion/criterion.h>
#include <string.h>

#define FX_T0 1700000000000000000LL
#define FX_MS 1000000LL

static const struct span_attr fx_res_front[] = {
    { .key = VG_STR("service.name"), .type = SPAN_VAL_STRING, .v.s = VG_STR("frontend") },
    { .key = VG_STR("host.name"), .type = SPAN_VAL_STRING, .v.s = VG_STR("h1") },
};
static const struct span_attr fx_res_back[] = {
    { .key = VG_STR("service.name"), .type = SPAN_VAL_STRING, .v.s = VG_STR("backend") },
    { .key = VG_STR("host.name"), .type = SPAN_VAL_STRING, .v.s = VG_STR("h2") },
};
static const struct span_attr fx_attrs_a[] = {
    { .key = VG_STR("http.method"), .type = SPAN_VAL_STRING, .v.s = VG_STR("GET") },
    { .key = VG_STR("http.status_code"), .type = SPAN_VAL_INT, .v.i = 200 },
};
static const struct span_attr fx_attrs_b[] = {
    { .key = VG_STR("peer.service"), .type = SPAN_VAL_STRING, .v.s = VG_STR("backend") },
    /* a span attribute shadowing the resource one for unscoped lookups */
    { .key = VG_STR("host.name"), .type = SPAN_VAL_STRING, .v.s = VG_STR("span-host") },
};
static const struct span_attr fx_attrs_c[] = {
    { .key = VG_STR("http.status_code"), .type = SPAN_VAL_INT, .v.i = 500 },
    { .key = VG_STR("retry"), .type = SPAN_VAL_BOOL, .v.b = true },
    { .key = VG_STR("ratio"), .type = SPAN_VAL_DOUBLE, .v.d = 0.5 },
    { .key = VG_STR("blob"), .type = SPAN_VAL_BYTES, .v.s = VG_STR("\x01\x02") },
};
static const struct span_attr fx_attrs_d[] = {
    { .key = VG_STR("db.system"), .type = SPAN_VAL_STRING, .v.s = VG_STR("postgres") },
};

#define FX_SPAN(id, parent, svc, res, nm, k, st, start_ms, dur_ms, at, nat)                  \
    {                                                                                      \
        .trace_id = { 0xab, [15] = 1 }, .span_id = { id }, .parent_span_id = { parent },   \
        .service = VG_STR(svc), .resource_attrs = res, .nresource_attrs = 2,               \
        .name = VG_STR(nm), .kind = k, .status = st,                                       \
        .start_ns = FX_T0 + (start_ms) * FX_MS,                                            \
        .end_ns = FX_T0 + ((start_ms) + (dur_ms)) * FX_MS, .attrs = at, .nattrs = nat       \
    }

static const struct span fx_spans[] = {
    FX_SPAN(4, 3, "backend", fx_res_back, "db query", SPAN_KIND_CLIENT, SPAN_STATUS_OK, 20, 10,
            fx_attrs_d, 1),
    FX_SPAN(1, 0, "frontend", fx_res_front, "GET /", SPAN_KIND_SERVER, SPAN_STATUS_UNSET, 0,
            100, fx_attrs_a, 2),
    FX_SPAN(2, 1, "frontend", fx_res_front, "call backend", SPAN_KIND_CLIENT,
            SPAN_STATUS_ERROR, 5, 80, fx_attrs_b, 2),
    {
        .trace_id = { 0xab, [15] = 1 }, .span_id = { 3 }, .parent_span_id = { 2 },
        .service = VG_STR("backend"), .resource_attrs = fx_res_back, .nresource_attrs = 2,
        .name = VG_STR("handle"), .kind = SPAN_KIND_SERVER, .status = SPAN_STATUS_ERROR,
        .status_message = VG_STR("boom"), .start_ns = FX_T0 + 10 * FX_MS,
        .end_ns = FX_T0 + 70 * FX_MS, .attrs = fx_attrs_c, .nattrs = 4,
    },
    FX_SPAN(5, 1, "frontend", fx_res_front, "render", SPAN_KIND_INTERNAL, SPAN_STATUS_UNSET,
            90, 5, NULL, 0),
};
#define FX_N (sizeof fx_spans / sizeof fx_spans[0])

/* Letters of the matching spans, in alphabetical order ("" when none). */
static inline const char *fx_run_spans(const char *query, const struct span *spans, size_t n)
{
    static char out[64];
    struct vg_err err;
    struct traceql_query *q = traceql_parse(query, strlen(query), &err);
    cr_assert_not_null(q, "%s: %s", query, err.msg);
    struct vg_arena *a = vg_arena_new(0);
    struct traceql_match m;
    cr_assert_eq(traceql_eval(q, spans, n, a, &m, &err), 0, "%s", err.msg);
    size_t k = 0, cnt = 0;
    for (int letter = 1; letter <= 26; letter++)
        for (size_t i = 0; i < n; i++)
            if (m.in[i] && spans[i].span_id[0] == letter) {
                out[k++] = (char)('A' + letter - 1);
                cnt++;
            }
    out[k] = 0;
    cr_assert_eq(cnt, m.matched, "%s: matched count", query);
    vg_arena_free(a);
    traceql_query_free(q);
    return out;
}

static inline const char *fx_run(const char *query)
{
    return fx_run_spans(query, fx_spans, FX_N);
}

#endif
