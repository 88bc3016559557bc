/* Tests server/traceql/search.c against a real span store: matches come back newest
 * first through the callback with their spansets, the limit holds, candidates the plan
 * admits but the exact evaluation refuses are skipped, max_inspect bounds the work and
 * reports truncation, the window and trace-duration options apply, and a callback error
 * stops the search. */
#include "../fixture.h"
#include "trace_fixture.h"

#include "../../../../server/traceql/search.h"

static struct server_fixture fx;

#define NTRACES 30

/* Trace k: two spans (root "op" of service "svc<k%3>", child "child"); the child fails
 * when k is even. Trace k starts k seconds after FX_T0. */
static void setup(void)
{
    fixture_open(&fx);
    fixture_open_traces(&fx);
    struct span s[2 * NTRACES];
    char svc[NTRACES][8];
    for (int k = 0; k < NTRACES; k++) {
        snprintf(svc[k], sizeof svc[k], "svc%d", k % 3);
        for (int j = 0; j < 2; j++) {
            struct span *x = &s[2 * k + j];
            memset(x, 0, sizeof *x);
            x->trace_id[0] = 1;
            x->trace_id[15] = (uint8_t)(k + 1);
            x->span_id[0] = (uint8_t)(j + 1);
            x->parent_span_id[0] = (uint8_t)j; /* the child's parent is span 1 */
            x->service = vg_str_c(svc[k]);
            x->name = j ? VG_STR("child") : VG_STR("op");
            x->status = j && k % 2 == 0 ? SPAN_STATUS_ERROR : SPAN_STATUS_UNSET;
            x->start_ns = FX_T0 + (int64_t)k * 1000000000 + j;
            x->end_ns = x->start_ns + (j ? 5 : 10) * FX_MS;
        }
    }
    struct spanstore_write_result wr;
    struct vg_err err;
    cr_assert_eq(spanstore_write(fx.v.traces, s, 2 * NTRACES, &wr, &err), 0, "%s", err.msg);
    cr_assert_eq(wr.accepted, 2 * NTRACES);
}

static void teardown(void)
{
    fixture_close(&fx);
}

TestSuite(traceql_search, .init = setup, .fini = teardown, .timeout = 30);

struct got {
    int ids[NTRACES + 1];
    size_t n, matched_spans;
    int fail_at;
};

static int on_hit(void *ud, const struct spanstore_trace_summary *sum, const struct span *spans,
                  size_t n, const struct traceql_match *m)
{
    struct got *g = ud;
    cr_assert_eq(m->n, n);
    cr_assert_not_null(spans);
    if (g->fail_at && (int)g->n + 1 == g->fail_at)
        return VG_ENOMEM;
    g->ids[g->n++] = sum->trace_id[15] - 1;
    g->matched_spans += m->matched;
    return 0;
}

static int run(const char *text, struct traceql_search_opts *o, struct got *g,
               struct traceql_search_stats *st)
{
    struct vg_err err;
    struct traceql_query *q = traceql_parse(text, strlen(text), &err);
    cr_assert_not_null(q, "%s", err.msg);
    memset(g->ids, 0, sizeof g->ids);
    g->n = g->matched_spans = 0;
    int rc = traceql_search(fx.v.traces, q, o, on_hit, g, st, &err);
    traceql_query_free(q);
    return rc;
}

Test(traceql_search, newest_first_up_to_the_limit)
{
    struct traceql_search_opts o = { .limit = 4 };
    struct got g = { .fail_at = 0 };
    struct traceql_search_stats st;
    cr_assert_eq(run("{ status = error }", &o, &g, &st), 0);
    cr_assert_eq(g.n, 4);
    cr_assert_eq(g.ids[0], 28);
    cr_assert_eq(g.ids[3], 22);
    cr_assert_eq(g.matched_spans, 4);
    cr_assert_eq(st.matched, 4);
    cr_assert(!st.truncated);
    /* the store's status index picked the candidates: no odd trace was read */
    cr_assert_eq(st.inspected_traces, 4);
}

Test(traceql_search, exact_evaluation_after_the_plan)
{
    struct traceql_search_opts o = { .limit = 100 };
    struct got g = { .fail_at = 0 };
    struct traceql_search_stats st;
    /* the plan keeps status = error; the structure is checked on each candidate */
    cr_assert_eq(run("{ resource.service.name = \"svc0\" } > { status = error }", &o, &g, &st),
                 0);
    cr_assert_eq(g.n, 5); /* k = 0, 6, 12, 18, 24 */
    cr_assert_eq(g.ids[0], 24);
    cr_assert_eq(g.ids[4], 0);
    cr_assert_eq(run("{ } | count() > 2", &o, &g, &st), 0);
    cr_assert_eq(g.n, 0);
    cr_assert_eq(st.inspected_traces, NTRACES);
    cr_assert(!st.truncated);
}

Test(traceql_search, max_inspect_truncates)
{
    struct traceql_search_opts o = { .limit = 100, .max_inspect = 7 };
    struct got g = { .fail_at = 0 };
    struct traceql_search_stats st;
    cr_assert_eq(run("{ name = \"nope\" } || { .x = 1 }", &o, &g, &st), 0);
    cr_assert_eq(g.n, 0);
    cr_assert_eq(st.inspected_traces, 7);
    cr_assert(st.truncated);
}

Test(traceql_search, window_and_trace_durations)
{
    struct traceql_search_opts o = { .from_ns = FX_T0 + 10 * 1000000000LL,
                                     .to_ns = FX_T0 + 12 * 1000000000LL + 5 };
    struct got g = { .fail_at = 0 };
    struct traceql_search_stats st;
    cr_assert_eq(run("{ }", &o, &g, &st), 0);
    cr_assert_eq(g.n, 3);
    cr_assert_eq(g.ids[0], 12);
    o = (struct traceql_search_opts){ .min_trace_duration_ns = 11 * FX_MS };
    cr_assert_eq(run("{ }", &o, &g, &st), 0);
    cr_assert_eq(g.n, 0);
    o = (struct traceql_search_opts){ .max_trace_duration_ns = 10 * FX_MS, .limit = 50 };
    cr_assert_eq(run("{ }", &o, &g, &st), 0);
    cr_assert_eq(g.n, NTRACES);
}

Test(traceql_search, callback_error_stops)
{
    struct traceql_search_opts o = { .limit = 10 };
    struct got g = { .fail_at = 2 };
    struct traceql_search_stats st;
    cr_assert_eq(run("{ }", &o, &g, &st), VG_ENOMEM);
    cr_assert_eq(g.n, 1);
}

Test(traceql_search, allocation_failure)
{
    struct traceql_search_opts o = { .limit = 3 };
    struct traceql_search_stats st;
    struct got g = { .fail_at = 0 };
    const char *text = "{ status = error } | count() = 1";
    struct vg_err err;
    struct traceql_query *q = traceql_parse(text, strlen(text), &err);
    for (uint64_t n = 1; n < 5000; n++) {
        g.n = 0;
        vg_alloc_fail_after(n);
        int rc = traceql_search(fx.v.traces, q, &o, on_hit, &g, &st, &err);
        vg_alloc_fail_after(0);
        if (rc == 0) {
            cr_assert_eq(g.n, 3);
            traceql_query_free(q);
            return;
        }
        cr_assert(rc == VG_ENOMEM || rc == VG_EIO, "n=%llu rc=%d %s", (unsigned long long)n,
                  rc, err.msg);
    }
    cr_assert_fail("never succeeded");
}
