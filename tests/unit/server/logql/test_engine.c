/* Tests server/logql/engine.c, engine_range.c and engine_vector.c against a real log
 * store opened in a temporary directory: log queries (directions, limits, [start, end),
 * interval, stream order, metadata, line filters), every range aggregation with
 * hand-computed values and window boundaries (an entry at t - range is out, at t in),
 * offset, range queries, vector aggregations with by/without, topk/bottomk/sort,
 * binary operations (vector-scalar, vector-vector with on/ignoring/group_left, bool,
 * and/or/unless), vector(), literals, label_replace, absent_over_time, and the errors:
 * limits, timeout, max_points, step, matching errors, allocation failure.
 *
 * Data (T0 = 1700000000 s):
 *   {app="a", env="prod"}  "line 1" .. "line 10" at T0 + 1 s .. T0 + 10 s
 *   {app="b", env="prod"}  "b 1" "b 2" "b 3"     at T0 + 1.5 s, 3.5 s, 5.5 s
 *   {app="a", env="dev"}   "dev 1"               at T0 + 5 s
 * and, for the grouping pushdown, the JSON lines of push_json_data. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../server/logql/engine.h"
#include "../../../../server/logql/parser.h"
#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/logstore/logstore.h"

#define SEC 1000000000LL
#define MS 1000000LL
#define T0 (1700000000LL * SEC)
#define T0MS (1700000000LL * 1000)

static char dir[64];
static struct logstore *ls;

struct ent {
    int64_t t;
    const char *line;
};

/* Pushes entries to the stream of the sorted name/value pairs kv (NULL-terminated). */
static void push(const char *const *kv, const struct ent *e, size_t n)
{
    struct label l[8];
    size_t nl = 0;
    for (; kv[nl * 2]; nl++)
        l[nl] = (struct label){ vg_str_c(kv[nl * 2]), vg_str_c(kv[nl * 2 + 1]) };
    struct lentry *le = calloc(n, sizeof *le);
    for (size_t i = 0; i < n; i++)
        le[i] = (struct lentry){ .t = e[i].t, .line = vg_str_c(e[i].line) };
    struct logstore_stream_in s = { l, nl, le, n };
    struct vg_err err = { 0 };
    cr_assert_eq(logstore_push(ls, &s, 1, NULL, &err), 0, "%s", err.msg);
    free(le);
}

static void setup(void)
{
    strcpy(dir, "/tmp/vg_logql_engine_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    struct logstore_opts o;
    logstore_opts_default(&o);
    o.dir = dir;
    o.maint_interval_ms = 0;
    struct vg_err err = { 0 };
    ls = logstore_open(&o, &err);
    cr_assert_not_null(ls, "%s", err.msg);
    static char lines[10][16];
    struct ent a[10];
    for (int i = 0; i < 10; i++) {
        snprintf(lines[i], sizeof lines[i], "line %d", i + 1);
        a[i] = (struct ent){ T0 + (i + 1) * SEC, lines[i] };
    }
    push((const char *[]){ "app", "a", "env", "prod", NULL }, a, 10);
    struct ent b[] = { { T0 + 1500 * MS, "b 1" }, { T0 + 3500 * MS, "b 2" },
                       { T0 + 5500 * MS, "b 3" } };
    push((const char *[]){ "app", "b", "env", "prod", NULL }, b, 3);
    struct ent c[] = { { T0 + 5 * SEC, "dev 1" } };
    push((const char *[]){ "app", "a", "env", "dev", NULL }, c, 1);
}

static void teardown(void)
{
    logstore_close(ls);
    ls = NULL;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(logql_engine, .init = setup, .fini = teardown);

/* ---- helpers ---- */

static struct logql_params instant_at(int64_t t)
{
    return (struct logql_params){ .start_ns = t, .end_ns = t, .instant = true, .limit = 100 };
}

static struct logql_params range_of(int64_t start, int64_t end, int64_t step)
{
    return (struct logql_params){ .start_ns = start, .end_ns = end, .step_ns = step,
                                  .limit = 100 };
}

static struct logql_params logs_of(int64_t start, int64_t end, bool backward, size_t limit)
{
    return (struct logql_params){ .start_ns = start, .end_ns = end, .step_ns = SEC,
                                  .backward = backward, .limit = limit };
}

static int exec_q(const char *q, const struct logql_params *p, const struct logql_limits *lim,
                  struct logql_result **r, struct vg_err *err)
{
    struct logql_expr *e = logql_parse(q, strlen(q), err);
    cr_assert_not_null(e, "parse %s: %s", q, err->msg);
    int rc = logql_exec(ls, e, p, lim, r, err);
    logql_expr_free(e); /* the result must not depend on the tree */
    return rc;
}

static struct logql_result *run(const char *q, struct logql_params p)
{
    struct logql_limits lim;
    logql_limits_default(&lim);
    struct logql_result *r = NULL;
    struct vg_err err = { 0 };
    int rc = exec_q(q, &p, &lim, &r, &err);
    cr_assert_eq(rc, 0, "%s: %s", q, err.msg);
    cr_assert_not_null(r);
    return r;
}

static void run_err(const char *q, struct logql_params p, const struct logql_limits *lim,
                    int code, const char *msg)
{
    struct logql_limits dl;
    logql_limits_default(&dl);
    struct logql_result *r = NULL;
    struct vg_err err = { 0 };
    int rc = exec_q(q, &p, lim ? lim : &dl, &r, &err);
    cr_assert_eq(rc, code, "%s: rc %d (%s)", q, rc, err.msg);
    cr_assert_null(r);
    cr_assert_not_null(strstr(err.msg, msg), "%s: message '%s' lacks '%s'", q, err.msg, msg);
}

static const char *lstr(const struct label *l, size_t n)
{
    static char buf[512];
    size_t o = 0;
    o += (size_t)snprintf(buf + o, sizeof buf - o, "{");
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%.*s=\"%.*s\"", i ? ", " : "",
                              (int)l[i].name.len, l[i].name.p, (int)l[i].value.len,
                              l[i].value.p);
    snprintf(buf + o, sizeof buf - o, "}");
    return buf;
}

/* Asserts series i of a vector/matrix result has labels ls and npts points. */
static const struct logql_series *ser(const struct logql_result *r, size_t i, const char *labels)
{
    cr_assert_lt(i, r->nseries, "series %zu of %zu", i, r->nseries);
    const struct logql_series *s = &r->series[i];
    cr_assert_str_eq(lstr(s->labels, s->nlabels), labels);
    return s;
}

static void vec1(const struct logql_result *r, size_t i, const char *labels, double v)
{
    cr_assert_eq(r->type, LQ_RESULT_VECTOR);
    const struct logql_series *s = ser(r, i, labels);
    cr_assert_eq(s->npoints, 1);
    if (isnan(v))
        cr_assert(isnan(s->points[0].v), "%s: %g is not NaN", labels, s->points[0].v);
    else
        cr_assert_float_eq(s->points[0].v, v, 1e-9, "%s: %.17g != %.17g", labels,
                           s->points[0].v, v);
}

/* ---- log queries ---- */

Test(logql_engine, log_forward_all)
{
    struct logql_result *r = run("{env=\"prod\"}", logs_of(T0, T0 + 11 * SEC, false, 100));
    cr_assert_eq(r->type, LQ_RESULT_STREAMS);
    cr_assert_eq(r->nstreams, 2);
    cr_assert_str_eq(lstr(r->streams[0].labels, r->streams[0].nlabels),
                     "{app=\"a\", env=\"prod\"}");
    cr_assert_str_eq(lstr(r->streams[1].labels, r->streams[1].nlabels),
                     "{app=\"b\", env=\"prod\"}");
    cr_assert_eq(r->streams[0].nentries, 10);
    cr_assert_eq(r->streams[1].nentries, 3);
    for (size_t i = 0; i < 10; i++) {
        cr_assert_eq(r->streams[0].entries[i].t, T0 + (int64_t)(i + 1) * SEC);
        char want[16];
        snprintf(want, sizeof want, "line %zu", i + 1);
        cr_assert_eq(r->streams[0].entries[i].line.len, strlen(want));
        cr_assert_eq(memcmp(r->streams[0].entries[i].line.p, want, strlen(want)), 0);
    }
    cr_assert_eq(r->stats.lines_processed, 13);
    cr_assert_eq(r->stats.lines_returned, 13);
    cr_assert_eq(r->stats.streams, 2);
    logql_result_free(r);
}

Test(logql_engine, log_limit_backward)
{
    struct logql_result *r = run("{env=\"prod\"}", logs_of(T0, T0 + 11 * SEC, true, 3));
    cr_assert_eq(r->nstreams, 1);
    cr_assert_eq(r->streams[0].nentries, 3);
    cr_assert_eq(r->streams[0].entries[0].t, T0 + 10 * SEC);
    cr_assert_eq(r->streams[0].entries[1].t, T0 + 9 * SEC);
    cr_assert_eq(r->streams[0].entries[2].t, T0 + 8 * SEC);
    logql_result_free(r);
}

Test(logql_engine, log_limit_forward)
{
    struct logql_result *r = run("{env=\"prod\"}", logs_of(T0, T0 + 11 * SEC, false, 3));
    cr_assert_eq(r->nstreams, 2);
    cr_assert_eq(r->streams[0].nentries, 2); /* a: 1 s, 2 s */
    cr_assert_eq(r->streams[0].entries[0].t, T0 + 1 * SEC);
    cr_assert_eq(r->streams[0].entries[1].t, T0 + 2 * SEC);
    cr_assert_eq(r->streams[1].nentries, 1); /* b: 1.5 s */
    cr_assert_eq(r->streams[1].entries[0].t, T0 + 1500 * MS);
    logql_result_free(r);
}

Test(logql_engine, log_start_inclusive_end_exclusive)
{
    struct logql_result *r = run("{env=\"prod\"}", logs_of(T0 + 2 * SEC, T0 + 4 * SEC, false, 100));
    cr_assert_eq(r->nstreams, 2);
    cr_assert_eq(r->streams[0].nentries, 2); /* 2 s and 3 s; 4 s is the end */
    cr_assert_eq(r->streams[0].entries[0].t, T0 + 2 * SEC);
    cr_assert_eq(r->streams[0].entries[1].t, T0 + 3 * SEC);
    cr_assert_eq(r->streams[1].nentries, 1);
    logql_result_free(r);
}

Test(logql_engine, log_interval_both_directions)
{
    struct logql_params p = logs_of(T0, T0 + 11 * SEC, false, 100);
    p.interval_ns = 2 * SEC;
    struct logql_result *r = run("{app=\"a\", env=\"prod\"}", p);
    cr_assert_eq(r->streams[0].nentries, 5);
    for (size_t i = 0; i < 5; i++)
        cr_assert_eq(r->streams[0].entries[i].t, T0 + (int64_t)(1 + 2 * i) * SEC);
    logql_result_free(r);
    p.backward = true;
    p.interval_ns = 3 * SEC;
    r = run("{app=\"a\", env=\"prod\"}", p);
    cr_assert_eq(r->streams[0].nentries, 4); /* 10, 7, 4, 1 */
    cr_assert_eq(r->streams[0].entries[0].t, T0 + 10 * SEC);
    cr_assert_eq(r->streams[0].entries[3].t, T0 + 1 * SEC);
    logql_result_free(r);
}

Test(logql_engine, log_stream_order_is_loki_string_order)
{
    struct ent e[] = { { T0 + 20 * SEC, "x" } };
    push((const char *[]){ "job", "x", NULL }, e, 1);
    push((const char *[]){ "job", "x", "z", "1", NULL }, e, 1);
    struct logql_result *r = run("{job=\"x\"}", logs_of(T0, T0 + 30 * SEC, true, 100));
    cr_assert_eq(r->nstreams, 2);
    /* `{job="x", z="1"}` < `{job="x"}` because ',' < '}' */
    cr_assert_str_eq(lstr(r->streams[0].labels, r->streams[0].nlabels), "{job=\"x\", z=\"1\"}");
    cr_assert_str_eq(lstr(r->streams[1].labels, r->streams[1].nlabels), "{job=\"x\"}");
    logql_result_free(r);
}

Test(logql_engine, log_metadata_and_filter)
{
    struct label meta[] = { { VG_STR("trace_id"), VG_STR("abc") } };
    struct lentry le = { .t = T0 + 30 * SEC, .line = VG_STR("with meta"), .meta = meta,
                         .nmeta = 1 };
    struct label l[] = { { VG_STR("job"), VG_STR("m") } };
    struct logstore_stream_in s = { l, 1, &le, 1 };
    struct vg_err err = { 0 };
    cr_assert_eq(logstore_push(ls, &s, 1, NULL, &err), 0, "%s", err.msg);
    struct logql_result *r = run("{job=\"m\"} |= \"meta\"", logs_of(T0, T0 + 60 * SEC, true, 10));
    cr_assert_eq(r->nstreams, 1);
    cr_assert_str_eq(lstr(r->streams[0].labels, r->streams[0].nlabels),
                     "{job=\"m\", trace_id=\"abc\"}");
    const struct logql_entry *e = &r->streams[0].entries[0];
    cr_assert_eq(e->nmeta, 1);
    cr_assert_str_eq(lstr(e->meta, e->nmeta), "{trace_id=\"abc\"}");
    cr_assert_eq(e->nparsed, 0);
    logql_result_free(r);
    r = run("{env=\"prod\"} |= \"line 1\"", logs_of(T0, T0 + 11 * SEC, false, 100));
    cr_assert_eq(r->nstreams, 1);
    cr_assert_eq(r->streams[0].nentries, 2); /* line 1, line 10 */
    cr_assert_eq(r->stats.lines_processed, 13);
    logql_result_free(r);
}

/* Counting without the pipeline (engine_range.c's direct counting) must give what the
 * pipeline gives: entries with metadata still get it in their labels. */
Test(logql_engine, count_direct_and_metadata)
{
    struct label meta[] = { { VG_STR("trace_id"), VG_STR("abc") } };
    struct lentry le[] = {
        { .t = T0 + 1 * SEC, .line = VG_STR("GET a"), .meta = meta, .nmeta = 1 },
        { .t = T0 + 2 * SEC, .line = VG_STR("GET bb") },
        { .t = T0 + 3 * SEC, .line = VG_STR("PUT c") },
        { .t = T0 + 4 * SEC, .line = VG_STR("GET dddd") },
    };
    struct label l[] = { { VG_STR("job"), VG_STR("m") } };
    struct logstore_stream_in s = { l, 1, le, 4 };
    struct vg_err err = { 0 };
    cr_assert_eq(logstore_push(ls, &s, 1, NULL, &err), 0, "%s", err.msg);
    struct logql_result *r = run("count_over_time({job=\"m\"} |= \"GET\" [10s])",
                                 instant_at(T0 + 5 * SEC));
    cr_assert_eq(r->nseries, 2);
    vec1(r, 0, "{job=\"m\"}", 2);
    vec1(r, 1, "{job=\"m\", trace_id=\"abc\"}", 1);
    logql_result_free(r);
    r = run("sum(bytes_over_time({job=\"m\"} |= \"GET\" [10s]))", instant_at(T0 + 5 * SEC));
    vec1(r, 0, "{}", 5 + 6 + 8);
    logql_result_free(r);
    r = run("sum by (job) (rate({job=\"m\"} [10s]))", instant_at(T0 + 5 * SEC));
    vec1(r, 0, "{job=\"m\"}", 0.4);
    logql_result_free(r);
}

Test(logql_engine, log_errors)
{
    struct logql_limits lim;
    logql_limits_default(&lim);
    lim.max_entries_limit = 50;
    run_err("{env=\"prod\"}", logs_of(T0, T0 + 11 * SEC, true, 51), &lim, VG_EINVAL,
            "max entries limit per query exceeded, limit > max_entries_limit_per_query (51 > 50)");
    run_err("{env=\"prod\"}", instant_at(T0 + 5 * SEC), NULL, VG_EINVAL,
            "log queries are not supported as an instant query type");
    struct logql_result *r = run("{env=\"prod\"}", logs_of(T0, T0 + 11 * SEC, true, 0));
    cr_assert_eq(r->nstreams, 0);
    logql_result_free(r);
}

/* ---- range aggregations ---- */

Test(logql_engine, count_window_boundaries)
{
    /* (5 s, 10 s]: the entry at 5 s is out, the one at 10 s in */
    struct logql_result *r = run("count_over_time({app=\"a\", env=\"prod\"}[5s])",
                                 instant_at(T0 + 10 * SEC));
    cr_assert_eq(r->nseries, 1);
    vec1(r, 0, "{app=\"a\", env=\"prod\"}", 5);
    cr_assert_eq(r->series[0].points[0].t_ms, T0MS + 10000);
    logql_result_free(r);
    r = run("count_over_time({app=\"a\", env=\"prod\"}[5s])", instant_at(T0 + 10 * SEC - 1));
    vec1(r, 0, "{app=\"a\", env=\"prod\"}", 5); /* (4.999.., 9.999..] holds 5..9 */
    logql_result_free(r);
    r = run("count_over_time({app=\"a\", env=\"prod\"}[5s])", instant_at(T0 + 15 * SEC));
    cr_assert_eq(r->nseries, 0); /* (10, 15] is empty: no series, no NaN */
    logql_result_free(r);
}

Test(logql_engine, rate_bytes)
{
    struct logql_result *r = run("rate({app=\"a\", env=\"prod\"}[5s])", instant_at(T0 + 10 * SEC));
    vec1(r, 0, "{app=\"a\", env=\"prod\"}", 1.0);
    logql_result_free(r);
    /* "line 6" .. "line 9" are 6 bytes, "line 10" 7 */
    r = run("bytes_over_time({app=\"a\", env=\"prod\"}[5s])", instant_at(T0 + 10 * SEC));
    vec1(r, 0, "{app=\"a\", env=\"prod\"}", 31);
    logql_result_free(r);
    r = run("bytes_rate({app=\"a\", env=\"prod\"}[5s])", instant_at(T0 + 10 * SEC));
    vec1(r, 0, "{app=\"a\", env=\"prod\"}", 6.2);
    logql_result_free(r);
    r = run("count_over_time({env=\"prod\"} |= \"line 1\" [10s])", instant_at(T0 + 10 * SEC));
    cr_assert_eq(r->nseries, 1);
    vec1(r, 0, "{app=\"a\", env=\"prod\"}", 2);
    logql_result_free(r);
}

Test(logql_engine, offset)
{
    /* windows end at 10 s - 2 s: (5, 8] holds 6, 7, 8; times stay at the step */
    struct logql_result *r = run("count_over_time({app=\"a\", env=\"prod\"}[3s] offset 2s)",
                                 instant_at(T0 + 10 * SEC));
    vec1(r, 0, "{app=\"a\", env=\"prod\"}", 3);
    cr_assert_eq(r->series[0].points[0].t_ms, T0MS + 10000);
    logql_result_free(r);
}

Test(logql_engine, range_query_matrix)
{
    struct logql_result *r = run("count_over_time({env=\"prod\"}[2s])",
                                 range_of(T0 + 2 * SEC, T0 + 10 * SEC, 2 * SEC));
    cr_assert_eq(r->type, LQ_RESULT_MATRIX);
    cr_assert_eq(r->nseries, 2);
    const struct logql_series *a = ser(r, 0, "{app=\"a\", env=\"prod\"}");
    cr_assert_eq(a->npoints, 5);
    for (size_t i = 0; i < 5; i++) {
        cr_assert_eq(a->points[i].t_ms, T0MS + 2000 * (int64_t)(i + 1));
        cr_assert_float_eq(a->points[i].v, 2, 1e-12);
    }
    /* b at 1.5, 3.5, 5.5: steps 2, 4, 6 have one each, 8 and 10 none */
    const struct logql_series *b = ser(r, 1, "{app=\"b\", env=\"prod\"}");
    cr_assert_eq(b->npoints, 3);
    cr_assert_eq(b->points[2].t_ms, T0MS + 6000);
    logql_result_free(r);
}

Test(logql_engine, range_shorter_than_step)
{
    /* windows (1.5, 2], (3.5, 4], (5.5, 6], ...: the b entries at x.5 s fall outside */
    struct logql_result *r = run("count_over_time({env=\"prod\"}[500ms])",
                                 range_of(T0 + 2 * SEC, T0 + 10 * SEC, 2 * SEC));
    cr_assert_eq(r->nseries, 1);
    const struct logql_series *a = ser(r, 0, "{app=\"a\", env=\"prod\"}");
    cr_assert_eq(a->npoints, 5);
    cr_assert_float_eq(a->points[0].v, 1, 1e-12);
    logql_result_free(r);
}

Test(logql_engine, absent_over_time)
{
    struct logql_result *r = run("absent_over_time({app=\"zzz\", env=\"prod\"}[5s])",
                                 instant_at(T0 + 10 * SEC));
    vec1(r, 0, "{app=\"zzz\", env=\"prod\"}", 1);
    logql_result_free(r);
    r = run("absent_over_time({app=\"a\", env=~\"p.*\"}[5s])", instant_at(T0 + 10 * SEC));
    cr_assert_eq(r->nseries, 0);
    logql_result_free(r);
    /* only equality matchers name the series; a regex drops its label */
    r = run("absent_over_time({app=\"a\", env=~\"p.*\"}[1s])",
            range_of(T0 + 10 * SEC, T0 + 20 * SEC, 5 * SEC));
    cr_assert_eq(r->type, LQ_RESULT_MATRIX);
    const struct logql_series *s = ser(r, 0, "{app=\"a\"}");
    cr_assert_eq(s->npoints, 2);
    cr_assert_eq(s->points[0].t_ms, T0MS + 15000);
    cr_assert_eq(s->points[1].t_ms, T0MS + 20000);
    cr_assert_float_eq(s->points[1].v, 1, 0);
    logql_result_free(r);
}

/* {job="u", svc="x"}: lat=1, 3, 6 at T0 + 1, 2, 3 s; {job="u", svc="y"}: lat=10 at 2 s */
static void push_unwrap_data(void)
{
    struct ent x[] = { { T0 + 1 * SEC, "lat=1 code=200" }, { T0 + 2 * SEC, "lat=3 code=500" },
                       { T0 + 3 * SEC, "lat=6 code=200" } };
    push((const char *[]){ "job", "u", "svc", "x", NULL }, x, 3);
    struct ent y[] = { { T0 + 2 * SEC, "lat=10 code=200" } };
    push((const char *[]){ "job", "u", "svc", "y", NULL }, y, 1);
}

#define LAT "{job=\"u\"} | regexp `lat=(?P<lat>\\d+)` | unwrap lat"

Test(logql_engine, unwrapped_range_aggregations)
{
    push_unwrap_data();
    static const struct {
        const char *q;
        double x, y;
    } cases[] = {
        { "sum_over_time(" LAT " [5s])", 10, 10 },
        { "rate(" LAT " [5s])", 2, 2 },
        { "avg_over_time(" LAT " [5s])", 10.0 / 3, 10 },
        { "min_over_time(" LAT " [5s])", 1, 10 },
        { "max_over_time(" LAT " [5s])", 6, 10 },
        { "first_over_time(" LAT " [5s])", 1, 10 },
        { "last_over_time(" LAT " [5s])", 6, 10 },
        { "stdvar_over_time(" LAT " [5s])", 114.0 / 27, 0 },
        { "stddev_over_time(" LAT " [5s])", 2.0548046676563256, 0 },
        { "quantile_over_time(0.5, " LAT " [5s])", 3, 10 },
        { "quantile_over_time(0.75, " LAT " [5s])", 4.5, 10 },
        /* Loki's extrapolation: 5 * (2e6 + 5) / 2e6 / 5 s (see loki_rate_counter) */
        { "rate_counter(" LAT " [5s])", 1.0000025, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct logql_result *r = run(cases[i].q, instant_at(T0 + 3 * SEC));
        cr_assert_eq(r->nseries, 2, "%s: %zu series", cases[i].q, r->nseries);
        vec1(r, 0, "{job=\"u\", svc=\"x\"}", cases[i].x);
        vec1(r, 1, "{job=\"u\", svc=\"y\"}", cases[i].y);
        logql_result_free(r);
    }
}

Test(logql_engine, unwrapped_grouping)
{
    push_unwrap_data();
    /* logfmt also extracts code, which by (svc) / without (code) folds away */
    struct logql_result *r = run("avg_over_time({job=\"u\"} | logfmt | unwrap lat [5s]) by (svc)",
                                 instant_at(T0 + 3 * SEC));
    cr_assert_eq(r->nseries, 2);
    vec1(r, 0, "{svc=\"x\"}", 10.0 / 3);
    vec1(r, 1, "{svc=\"y\"}", 10);
    logql_result_free(r);
    r = run("max_over_time({job=\"u\"} | logfmt | unwrap lat [5s]) without (code)",
            instant_at(T0 + 3 * SEC));
    cr_assert_eq(r->nseries, 2);
    vec1(r, 0, "{job=\"u\", svc=\"x\"}", 6);
    logql_result_free(r);
    r = run("max_over_time({job=\"u\"} | logfmt | unwrap lat [5s])", instant_at(T0 + 3 * SEC));
    cr_assert_eq(r->nseries, 3); /* split by code */
    vec1(r, 0, "{code=\"200\", job=\"u\", svc=\"x\"}", 6);
    vec1(r, 1, "{code=\"200\", job=\"u\", svc=\"y\"}", 10);
    vec1(r, 2, "{code=\"500\", job=\"u\", svc=\"x\"}", 3);
    logql_result_free(r);
}

Test(logql_engine, pipeline_error_in_metric_query)
{
    struct ent e[] = { { T0 + 1 * SEC, "lat=bad" }, { T0 + 2 * SEC, "lat=2" } };
    push((const char *[]){ "job", "e", NULL }, e, 2);
    run_err("sum_over_time({job=\"e\"} | logfmt | unwrap lat [5s])", instant_at(T0 + 3 * SEC),
            NULL, VG_EINVAL, "pipeline error: 'SampleExtractionErr' for series");
    struct logql_result *r = run("sum_over_time({job=\"e\"} | logfmt | unwrap lat | __error__=\"\" [5s])",
                                 instant_at(T0 + 3 * SEC));
    vec1(r, 0, "{job=\"e\"}", 2);
    logql_result_free(r);
}

Test(logql_engine, log_parsed_labels)
{
    push_unwrap_data();
    struct logql_result *r = run("{job=\"u\", svc=\"y\"} | logfmt", logs_of(T0, T0 + 5 * SEC, true, 10));
    cr_assert_eq(r->nstreams, 1);
    cr_assert_str_eq(lstr(r->streams[0].labels, r->streams[0].nlabels),
                     "{code=\"200\", job=\"u\", lat=\"10\", svc=\"y\"}");
    const struct logql_entry *e = &r->streams[0].entries[0];
    cr_assert_str_eq(lstr(e->parsed, e->nparsed), "{code=\"200\", lat=\"10\"}");
    logql_result_free(r);
}

/* ---- vector aggregations ---- */

Test(logql_engine, sum_by_without)
{
    struct logql_result *r = run("sum by (env) (count_over_time({env=~\".+\"}[10s]))",
                                 instant_at(T0 + 10 * SEC));
    cr_assert_eq(r->nseries, 2);
    vec1(r, 0, "{env=\"dev\"}", 1);
    vec1(r, 1, "{env=\"prod\"}", 13);
    logql_result_free(r);
    r = run("sum without (app) (count_over_time({env=~\".+\"}[10s]))", instant_at(T0 + 10 * SEC));
    vec1(r, 0, "{env=\"dev\"}", 1);
    vec1(r, 1, "{env=\"prod\"}", 13);
    logql_result_free(r);
    r = run("sum(count_over_time({env=~\".+\"}[10s]))", instant_at(T0 + 10 * SEC));
    vec1(r, 0, "{}", 14);
    logql_result_free(r);
}

Test(logql_engine, other_aggregations)
{
    static const struct {
        const char *op;
        double prod;
    } cases[] = {
        { "avg", 6.5 }, { "min", 3 }, { "max", 10 }, { "count", 2 },
        { "stdvar", 12.25 }, { "stddev", 3.5 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char q[160];
        snprintf(q, sizeof q, "%s by (env) (count_over_time({env=~\".+\"}[10s]))", cases[i].op);
        struct logql_result *r = run(q, instant_at(T0 + 10 * SEC));
        cr_assert_eq(r->nseries, 2, "%s", q);
        vec1(r, 1, "{env=\"prod\"}", cases[i].prod);
        logql_result_free(r);
    }
}

Test(logql_engine, topk_bottomk)
{
    struct logql_result *r = run("topk(1, count_over_time({env=~\".+\"}[10s]))",
                                 instant_at(T0 + 10 * SEC));
    cr_assert_eq(r->nseries, 1);
    vec1(r, 0, "{app=\"a\", env=\"prod\"}", 10);
    logql_result_free(r);
    r = run("bottomk(2, count_over_time({env=~\".+\"}[10s]))", instant_at(T0 + 10 * SEC));
    cr_assert_eq(r->nseries, 2); /* sorted by labels in the answer */
    vec1(r, 0, "{app=\"a\", env=\"dev\"}", 1);
    vec1(r, 1, "{app=\"b\", env=\"prod\"}", 3);
    logql_result_free(r);
    r = run("topk by (env) (1, count_over_time({env=~\".+\"}[10s]))", instant_at(T0 + 10 * SEC));
    cr_assert_eq(r->nseries, 2);
    vec1(r, 0, "{app=\"a\", env=\"dev\"}", 1);
    vec1(r, 1, "{app=\"a\", env=\"prod\"}", 10);
    logql_result_free(r);
}

Test(logql_engine, sort_keeps_value_order)
{
    struct logql_result *r = run("sort_desc(count_over_time({env=~\".+\"}[10s]))",
                                 instant_at(T0 + 10 * SEC));
    cr_assert_eq(r->nseries, 3);
    vec1(r, 0, "{app=\"a\", env=\"prod\"}", 10);
    vec1(r, 1, "{app=\"b\", env=\"prod\"}", 3);
    vec1(r, 2, "{app=\"a\", env=\"dev\"}", 1);
    logql_result_free(r);
    r = run("sort(count_over_time({env=~\".+\"}[10s]))", instant_at(T0 + 10 * SEC));
    vec1(r, 0, "{app=\"a\", env=\"dev\"}", 1);
    vec1(r, 2, "{app=\"a\", env=\"prod\"}", 10);
    logql_result_free(r);
}

/* ---- binary operations ---- */

Test(logql_engine, vector_plus_vector_health_check)
{
    struct logql_result *r = run("vector(1)+vector(1)", instant_at(T0));
    cr_assert_eq(r->type, LQ_RESULT_VECTOR);
    cr_assert_eq(r->nseries, 1);
    vec1(r, 0, "{}", 2);
    cr_assert_eq(r->series[0].points[0].t_ms, T0MS);
    logql_result_free(r);
}

Test(logql_engine, literals_and_vector)
{
    struct logql_result *r = run("5", instant_at(T0));
    cr_assert_eq(r->type, LQ_RESULT_SCALAR);
    cr_assert_float_eq(r->scalar.v, 5, 0);
    cr_assert_eq(r->scalar.t_ms, T0MS);
    logql_result_free(r);
    r = run("2 * 3", range_of(T0, T0 + 2 * SEC, SEC));
    cr_assert_eq(r->type, LQ_RESULT_MATRIX);
    const struct logql_series *s = ser(r, 0, "{}");
    cr_assert_eq(s->npoints, 3);
    cr_assert_float_eq(s->points[2].v, 6, 0);
    cr_assert_eq(s->points[2].t_ms, T0MS + 2000);
    logql_result_free(r);
    r = run("vector(4)", range_of(T0, T0 + 2 * SEC, SEC));
    cr_assert_eq(ser(r, 0, "{}")->npoints, 3);
    logql_result_free(r);
}

Test(logql_engine, vector_scalar)
{
    const char *a = "count_over_time({app=\"a\", env=\"prod\"}[10s])";
    char q[200];
    snprintf(q, sizeof q, "%s * 2", a);
    struct logql_result *r = run(q, instant_at(T0 + 10 * SEC));
    vec1(r, 0, "{app=\"a\", env=\"prod\"}", 20);
    logql_result_free(r);
    snprintf(q, sizeof q, "10 - %s", a);
    r = run(q, instant_at(T0 + 10 * SEC));
    vec1(r, 0, "{app=\"a\", env=\"prod\"}", 0);
    logql_result_free(r);
    snprintf(q, sizeof q, "%s / 0", a);
    r = run(q, instant_at(T0 + 10 * SEC));
    vec1(r, 0, "{app=\"a\", env=\"prod\"}", NAN); /* Loki: x / 0 is NaN */
    logql_result_free(r);
    /* filtering comparison keeps the vector's value, on either side */
    r = run("count_over_time({env=~\".+\"}[10s]) > 2", instant_at(T0 + 10 * SEC));
    cr_assert_eq(r->nseries, 2);
    vec1(r, 0, "{app=\"a\", env=\"prod\"}", 10);
    vec1(r, 1, "{app=\"b\", env=\"prod\"}", 3);
    logql_result_free(r);
    r = run("2 < count_over_time({env=~\".+\"}[10s])", instant_at(T0 + 10 * SEC));
    cr_assert_eq(r->nseries, 2);
    vec1(r, 1, "{app=\"b\", env=\"prod\"}", 3);
    logql_result_free(r);
    r = run("count_over_time({env=~\".+\"}[10s]) > bool 2", instant_at(T0 + 10 * SEC));
    cr_assert_eq(r->nseries, 3);
    vec1(r, 0, "{app=\"a\", env=\"dev\"}", 0);
    vec1(r, 1, "{app=\"a\", env=\"prod\"}", 1);
    logql_result_free(r);
}

Test(logql_engine, vector_vector_matching)
{
    struct logql_result *r = run("count_over_time({app=\"a\", env=\"prod\"}[10s]) / "
                                 "count_over_time({app=\"a\", env=\"prod\"}[5s])",
                                 instant_at(T0 + 10 * SEC));
    vec1(r, 0, "{app=\"a\", env=\"prod\"}", 2);
    logql_result_free(r);
    r = run("count_over_time({app=\"a\", env=\"prod\"}[10s]) - ignoring(app) "
            "count_over_time({app=\"b\", env=\"prod\"}[10s])",
            instant_at(T0 + 10 * SEC));
    vec1(r, 0, "{env=\"prod\"}", 7);
    logql_result_free(r);
    r = run("count_over_time({app=\"a\", env=\"prod\"}[10s]) > bool "
            "count_over_time({app=\"a\", env=\"prod\"}[5s])",
            instant_at(T0 + 10 * SEC));
    vec1(r, 0, "{app=\"a\", env=\"prod\"}", 1);
    logql_result_free(r);
    r = run("count_over_time({env=~\".+\"}[10s]) / on(env) group_left "
            "sum by (env) (count_over_time({env=~\".+\"}[10s]))",
            instant_at(T0 + 10 * SEC));
    cr_assert_eq(r->nseries, 3);
    vec1(r, 0, "{app=\"a\", env=\"dev\"}", 1);
    vec1(r, 1, "{app=\"a\", env=\"prod\"}", 10.0 / 13);
    vec1(r, 2, "{app=\"b\", env=\"prod\"}", 3.0 / 13);
    logql_result_free(r);
    r = run("count_over_time({env=\"prod\"}[10s]) / on(env) group_left(team) "
            "label_replace(sum by (env) (count_over_time({env=\"prod\"}[10s])), \"team\", "
            "\"t1\", \"\", \"\")",
            instant_at(T0 + 10 * SEC));
    cr_assert_eq(r->nseries, 2);
    vec1(r, 0, "{app=\"a\", env=\"prod\", team=\"t1\"}", 10.0 / 13);
    vec1(r, 1, "{app=\"b\", env=\"prod\", team=\"t1\"}", 3.0 / 13);
    logql_result_free(r);
    r = run("sum by (env) (count_over_time({env=\"prod\"}[10s])) * on(env) group_right "
            "count_over_time({env=\"prod\"}[10s])",
            instant_at(T0 + 10 * SEC));
    cr_assert_eq(r->nseries, 2);
    vec1(r, 0, "{app=\"a\", env=\"prod\"}", 130);
    vec1(r, 1, "{app=\"b\", env=\"prod\"}", 39);
    logql_result_free(r);
}

Test(logql_engine, vector_vector_errors)
{
    run_err("count_over_time({env=\"prod\"}[10s]) / on(env) "
            "sum by (env) (count_over_time({env=\"prod\"}[10s]))",
            instant_at(T0 + 10 * SEC), NULL, VG_EINVAL,
            "multiple matches for labels: many-to-one matching must be explicit "
            "(group_left/group_right)");
    run_err("sum by (env) (count_over_time({env=\"prod\"}[10s])) / on(env) "
            "count_over_time({env=\"prod\"}[10s])",
            instant_at(T0 + 10 * SEC), NULL, VG_EINVAL,
            "found duplicate series on the right hand-side;many-to-many matching not allowed");
}

Test(logql_engine, set_operations)
{
    struct logql_result *r = run("count_over_time({env=~\".+\"}[10s]) and on(app) "
                                 "count_over_time({app=\"a\"}[10s])",
                                 instant_at(T0 + 10 * SEC));
    cr_assert_eq(r->nseries, 2);
    vec1(r, 0, "{app=\"a\", env=\"dev\"}", 1);
    vec1(r, 1, "{app=\"a\", env=\"prod\"}", 10);
    logql_result_free(r);
    r = run("count_over_time({env=~\".+\"}[10s]) unless on(app) "
            "count_over_time({app=\"a\"}[10s])",
            instant_at(T0 + 10 * SEC));
    cr_assert_eq(r->nseries, 1);
    vec1(r, 0, "{app=\"b\", env=\"prod\"}", 3);
    logql_result_free(r);
    r = run("count_over_time({app=\"b\"}[10s]) or count_over_time({app=\"a\"}[10s])",
            instant_at(T0 + 10 * SEC));
    cr_assert_eq(r->nseries, 3);
    logql_result_free(r);
    r = run("count_over_time({app=\"b\"}[10s]) or on(env) count_over_time({app=\"a\"}[10s])",
            instant_at(T0 + 10 * SEC));
    cr_assert_eq(r->nseries, 2); /* a/prod shares env with b */
    vec1(r, 0, "{app=\"a\", env=\"dev\"}", 1);
    vec1(r, 1, "{app=\"b\", env=\"prod\"}", 3);
    logql_result_free(r);
}

Test(logql_engine, label_replace)
{
    struct logql_result *r = run("label_replace(count_over_time({app=\"a\", env=\"prod\"}[10s]), "
                                 "\"foo\", \"$1-x\", \"app\", \"(.*)\")",
                                 instant_at(T0 + 10 * SEC));
    vec1(r, 0, "{app=\"a\", env=\"prod\", foo=\"a-x\"}", 10);
    logql_result_free(r);
    r = run("label_replace(count_over_time({app=\"a\", env=\"prod\"}[10s]), "
            "\"foo\", \"$1\", \"app\", \"b\")",
            instant_at(T0 + 10 * SEC));
    vec1(r, 0, "{app=\"a\", env=\"prod\"}", 10); /* no match: unchanged */
    logql_result_free(r);
    run_err("label_replace(count_over_time({env=~\".+\"}[10s]), \"app\", \"x\", \"\", \"\")",
            instant_at(T0 + 10 * SEC), NULL, VG_EINVAL,
            "vector cannot contain metrics with the same labelset");
}

/* ---- grouping pushdown (engine_range.c's top) ---- */

/* {job="j", inst="1"|"2"}: 60 JSON lines each over T0 + 0.25 .. 15 s, every line with its
 * own id (so `| json` makes one label set per line), status cycling over 200/404/500,
 * size i and lat i % 7; one line of inst 2 has a size that is not a number. */
static void push_json_data(bool bad)
{
    static char lines[2][60][96];
    struct ent e[60];
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 60; i++) {
            const char *st = i % 3 == 0 ? "200" : i % 3 == 1 ? "404" : "500";
            if (bad && k == 1 && i == 30)
                snprintf(lines[k][i], sizeof lines[k][i],
                         "{\"status\":\"%s\",\"id\":\"x%d\",\"size\":\"many\"}", st, i);
            else
                snprintf(lines[k][i], sizeof lines[k][i],
                         "{\"status\":\"%s\",\"id\":\"%d-%d\",\"size\":%d,\"lat\":%d}", st, k,
                         i, i + k, i % 7);
            e[i] = (struct ent){ T0 + (i + 1) * 250 * MS + k * MS, lines[k][i] };
        }
        push((const char *[]){ "inst", k ? "2" : "1", "job", "j", NULL }, e, 60);
    }
}

static struct logql_result *run_with(const char *q, struct logql_params p, bool pushdown)
{
    struct logql_limits lim;
    logql_limits_default(&lim);
    lim.no_pushdown = !pushdown;
    struct logql_result *r = NULL;
    struct vg_err err = { 0 };
    cr_assert_eq(exec_q(q, &p, &lim, &r, &err), 0, "%s (pushdown %d): %s", q, pushdown,
                 err.msg);
    return r;
}

/* Runs q with and without pushdown: same series, labels, times and values (equal, or
 * within rel relative difference for fractional sums). */
static void same_both_ways(const char *q, struct logql_params p, double rel)
{
    struct logql_result *a = run_with(q, p, true), *b = run_with(q, p, false);
    cr_assert_eq(a->type, b->type, "%s", q);
    cr_assert_eq(a->nseries, b->nseries, "%s: %zu series against %zu", q, a->nseries,
                 b->nseries);
    cr_assert_gt(a->nseries, 0, "%s: empty", q);
    for (size_t i = 0; i < a->nseries; i++) {
        const struct logql_series *x = &a->series[i], *y = &b->series[i];
        cr_assert_eq(labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels), 0, "%s: %zu",
                     q, i);
        cr_assert_eq(x->npoints, y->npoints, "%s: series %zu", q, i);
        for (size_t j = 0; j < x->npoints; j++) {
            cr_assert_eq(x->points[j].t_ms, y->points[j].t_ms, "%s", q);
            double u = x->points[j].v, v = y->points[j].v;
            if (rel == 0)
                cr_assert(u == v, "%s: series %zu point %zu: %.17g != %.17g", q, i, j, u, v);
            else
                cr_assert_leq(fabs(u - v), rel * fabs(v), "%s: %.17g != %.17g", q, u, v);
        }
    }
    logql_result_free(a);
    logql_result_free(b);
}

Test(logql_engine, pushdown_same_answers)
{
    push_json_data(false);
    struct logql_params rp = range_of(T0, T0 + 16 * SEC, 2 * SEC);
    static const char *const exact[] = {
        "sum by (status) (count_over_time({job=\"j\"} | json [4s]))",
        "sum by (status) (count_over_time({job=\"j\"} | json [1s]))", /* range < step */
        "sum(count_over_time({job=\"j\"} | json [10s]))",
        "sum without (id, lat, size) (count_over_time({job=\"j\"} | json [4s]))",
        "sum by (status, inst) (bytes_over_time({job=\"j\"} | json [4s]))",
        "sum by (status) (rate({job=\"j\"} | json [4s]))", /* / 4: exact in binary */
        "sum by (status) (bytes_rate({job=\"j\"} | json [8s]))",
        "sum by (status) (sum_over_time({job=\"j\"} | json | unwrap size [4s]))",
        "sum by (status) (rate({job=\"j\"} | json | unwrap size [4s]))",
        "max by (status) (max_over_time({job=\"j\"} | json | unwrap lat [4s]))",
        "min by (inst) (min_over_time({job=\"j\"} | json | unwrap size [4s]))",
        "sum by (nothere) (count_over_time({job=\"j\"} |= \"404\" | json [4s]))",
        "sum by (status) (count_over_time({job=\"j\"} | json [4s] offset 2s))",
    };
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
        same_both_ways(exact[i], rp, 0);
        same_both_ways(exact[i], instant_at(T0 + 10 * SEC), 0);
    }
    /* / 3 s: per-series quotients summed against one quotient, equal up to rounding */
    same_both_ways("sum by (status) (rate({job=\"j\"} | json [3s]))", rp, 1e-12);
    /* the values themselves, once */
    struct logql_result *r = run("sum by (status) (count_over_time({job=\"j\"} | json [16s]))",
                                 instant_at(T0 + 16 * SEC));
    vec1(r, 0, "{status=\"200\"}", 40);
    vec1(r, 2, "{status=\"500\"}", 40);
    logql_result_free(r);
}

Test(logql_engine, pushdown_not_where_inexact)
{
    push_json_data(false);
    struct logql_params p = instant_at(T0 + 16 * SEC);
    /* each line is its own series (distinct id) with count 1; grouping first would give
     * the group's count (40) */
    struct logql_result *r = run("avg by (status) (count_over_time({job=\"j\"} | json [16s]))", p);
    vec1(r, 0, "{status=\"200\"}", 1);
    logql_result_free(r);
    r = run("max by (status) (count_over_time({job=\"j\"} | json [16s]))", p);
    vec1(r, 0, "{status=\"200\"}", 1);
    logql_result_free(r);
    r = run("count by (status) (count_over_time({job=\"j\"} | json [16s]))", p);
    vec1(r, 0, "{status=\"200\"}", 40);
    logql_result_free(r);
    /* sum of per-line averages = sum of the lat values of status 200 (i = 0, 3, .. 57 in
     * both streams) */
    double want = 0;
    for (int i = 0; i < 60; i += 3)
        want += 2 * (i % 7);
    r = run("sum by (status) (avg_over_time({job=\"j\"} | json | unwrap lat [16s]))", p);
    vec1(r, 0, "{status=\"200\"}", want);
    logql_result_free(r);
    /* the range aggregation's own grouping is kept: mean size per (status, inst), 28.5
     * and 29.5, then their sum */
    r = run("sum by (status) (avg_over_time({job=\"j\"} | json | unwrap size [16s]) "
            "by (status, inst))", p);
    vec1(r, 0, "{status=\"200\"}", 58);
    logql_result_free(r);
    same_both_ways("avg by (status) (count_over_time({job=\"j\"} | json [4s]))", p, 0);
}

Test(logql_engine, pushdown_keeps_pipeline_errors)
{
    push_json_data(true);
    const char *q = "sum by (status) (sum_over_time({job=\"j\"} | json | unwrap size [16s]))";
    struct logql_limits lim;
    logql_limits_default(&lim);
    for (int i = 0; i < 2; i++) {
        lim.no_pushdown = i;
        run_err(q, instant_at(T0 + 16 * SEC), &lim, VG_EINVAL,
                "pipeline error: 'SampleExtractionErr'");
    }
    /* filtered out, the rest answers, identically both ways */
    same_both_ways("sum by (status) (sum_over_time({job=\"j\"} | json | unwrap size | "
                   "__error__=\"\" [16s]))",
                   instant_at(T0 + 16 * SEC), 0);
}

/* Pushed down, the intermediate series are the 3 groups rather than 120 label sets, so
 * a budget of allocations far below one per line is enough. */
Test(logql_engine, pushdown_bounds_series)
{
    push_json_data(false);
    const char *q = "sum by (status) (count_over_time({job=\"j\"} | json [15s]))";
    struct vg_err err = { 0 };
    struct logql_expr *e = logql_parse(q, strlen(q), &err);
    cr_assert_not_null(e);
    struct logql_params p = range_of(T0, T0 + 16 * SEC, SEC);
    struct logql_limits lim;
    logql_limits_default(&lim);
    for (int i = 0; i < 2; i++) {
        lim.no_pushdown = i;
        struct logql_result *r = NULL;
        vg_alloc_fail_after(100);
        int rc = logql_exec(ls, e, &p, &lim, &r, &err);
        vg_alloc_fail_after(0);
        cr_assert_eq(rc, i ? VG_ENOMEM : 0, "no_pushdown %d: rc %d %s", i, rc, err.msg);
        logql_result_free(r);
    }
    logql_expr_free(e);
}

/* ---- limits and failures ---- */

Test(logql_engine, metric_limits)
{
    struct logql_limits lim;
    logql_limits_default(&lim);
    lim.max_series = 1;
    run_err("count_over_time({env=\"prod\"}[10s])", instant_at(T0 + 10 * SEC), &lim,
            VG_ETOOLARGE, "maximum of series (1) reached for a single query");
    run_err("count_over_time({env=\"prod\"}[10s])", range_of(T0, T0 + 10 * SEC, SEC), &lim,
            VG_ETOOLARGE, "maximum of series (1) reached for a single query");
    logql_limits_default(&lim);
    run_err("count_over_time({env=\"prod\"}[10s])", range_of(T0, T0 + 11001 * SEC, SEC), &lim,
            VG_EINVAL, "exceeded maximum resolution of 11,000 points per timeseries. Try "
                       "decreasing the query resolution (?step=XX)");
    struct logql_result *r = run("count_over_time({env=\"prod\"}[10s])",
                                 range_of(T0, T0 + 11000 * SEC, SEC)); /* 11,001 points pass */
    logql_result_free(r);
    run_err("count_over_time({env=\"prod\"}[10s])", range_of(T0, T0 + 10 * SEC, 0), NULL,
            VG_EINVAL, "zero or negative query resolution step widths are not accepted");
}

Test(logql_engine, timeout)
{
    enum { N = 60000 };
    struct ent *e = calloc(N, sizeof *e);
    for (int i = 0; i < N; i++)
        e[i] = (struct ent){ T0 + 100 * SEC + i * MS, "a fairly ordinary log line" };
    push((const char *[]){ "job", "big", NULL }, e, N);
    free(e);
    struct logql_limits lim;
    logql_limits_default(&lim);
    lim.timeout_ms = 1;
    run_err("sum(count_over_time({job=\"big\"}[1m]))",
            range_of(T0 + 100 * SEC, T0 + 160 * SEC, SEC), &lim, VG_EOVERLOAD,
            "Request timed out");
    lim.max_entries_limit = 0;
    struct logql_params p = logs_of(T0, T0 + 200 * SEC, false, N);
    run_err("{job=\"big\"}", p, &lim, VG_EOVERLOAD, "timed out");
}

static void alloc_failures(const char *q, struct logql_params p)
{
    struct vg_err err = { 0 };
    struct logql_expr *e = logql_parse(q, strlen(q), &err);
    cr_assert_not_null(e, "%s", err.msg);
    struct logql_limits lim;
    logql_limits_default(&lim);
    bool ok = false;
    for (uint64_t n = 1; n < 5000 && !ok; n++) {
        size_t before = vg_alloc_live_bytes();
        struct logql_result *r = NULL;
        vg_alloc_fail_after(n);
        int rc = logql_exec(ls, e, &p, &lim, &r, &err);
        vg_alloc_fail_after(0);
        if (rc == 0) {
            ok = true;
            logql_result_free(r);
        } else {
            cr_assert_null(r);
            cr_assert(rc == VG_ENOMEM || rc == VG_EIO, "%s: fail at %llu: rc %d %s", q,
                      (unsigned long long)n, rc, err.msg);
            cr_assert_gt(strlen(err.msg), 0);
        }
        cr_assert_eq(vg_alloc_live_bytes(), before, "%s: leak at allocation %llu", q,
                     (unsigned long long)n);
    }
    cr_assert(ok, "%s never succeeded", q);
    logql_expr_free(e);
}

Test(logql_engine, allocation_failure)
{
    alloc_failures("{env=~\".+\"} |= \"1\"", logs_of(T0, T0 + 11 * SEC, true, 100));
    alloc_failures("sum by (env) (rate({env=~\".+\"}[5s])) / on(env) group_left "
                   "max by (env) (count_over_time({env=~\".+\"}[5s]))",
                   range_of(T0, T0 + 10 * SEC, SEC));
    alloc_failures("topk(2, label_replace(count_over_time({env=~\".+\"}[5s]), \"x\", \"$1\", "
                   "\"app\", \"(.)\")) or vector(1)",
                   range_of(T0, T0 + 10 * SEC, SEC));
    alloc_failures("absent_over_time({app=\"q\"}[1s]) and vector(1)",
                   range_of(T0, T0 + 3 * SEC, SEC));
}
