/* Tests server/promql/querier_tsdb.c: selection by matchers and time range on a real
 * TSDB in a temporary directory, the sample accounting and its limit, staleness markers
 * passed through bit-exact, and whole queries through the engine on that store. */
#include <criterion/criterion.h>

#include "../../../../server/promql/engine.h"
#include "../../../../storage/base/vg_alloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1700000000000LL

static char dir[64];
static struct tsdb *db;

static void add(const char *name, const char *job, int64_t t0, int n, double v0, double dv)
{
    struct label ls[2] = { { VG_STR("__name__"), vg_str_c(name) }, { VG_STR("job"), vg_str_c(job) } };
    struct tsdb_sample s[64];
    for (int i = 0; i < n; i++)
        s[i] = (struct tsdb_sample){ t0 + i * 60000LL, v0 + dv * i };
    struct tsdb_series_in in = { ls, 2, s, (size_t)n, NULL, 0 };
    struct tsdb_batch b = { &in, 1, NULL, 0 };
    struct tsdb_append_result res;
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_append(db, &b, &res, &err), 0, "%s", err.msg);
}

static void init(void)
{
    strcpy(dir, "/tmp/vg_qtsdb_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    struct tsdb_opts o;
    tsdb_opts_default(&o);
    o.dir = dir;
    o.retention_ms = 0;
    o.maint_interval_ms = 3600 * 1000;
    struct vg_err err = { 0 };
    db = tsdb_open(&o, &err);
    cr_assert_not_null(db, "%s", err.msg);
    add("req_total", "a", T0, 11, 0, 60);
    add("req_total", "b", T0, 11, 0, 120);
    add("other", "a", T0, 3, 7, 0);
}

static void fini(void)
{
    tsdb_close(db);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
    vg_alloc_fail_after(0);
}

TestSuite(querier_tsdb, .init = init, .fini = fini, .timeout = 60);

static struct matcher *m(enum matcher_op op, const char *n, const char *v)
{
    struct vg_err err;
    struct matcher *x = matcher_new(op, vg_str_c(n), vg_str_c(v), &err);
    cr_assert_not_null(x);
    return x;
}

Test(querier_tsdb, selects_by_matchers_and_time)
{
    struct querier q;
    querier_tsdb(db, &q);
    struct matcher *ms[2] = { m(MATCH_EQ, "__name__", "req_total"), m(MATCH_RE, "job", "a|b") };
    struct querier_set *set = NULL;
    uint64_t loaded = 0;
    struct vg_err err = { 0 };
    cr_assert_eq(q.select(q.ctx, ms, 2, T0 + 60000, T0 + 180000, 0, &loaded, &set, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(set->n, 2);
    cr_assert_eq(loaded, 6);
    cr_assert(vg_str_eq_c(set->v[0].labels[1].value, "a"));
    cr_assert_eq(set->v[0].nsamples, 3);
    cr_assert_eq(set->v[0].samples[0].t, T0 + 60000);
    cr_assert_eq(set->v[1].samples[2].v, 360);
    q.set_free(q.ctx, set);

    /* a range without samples gives no series */
    cr_assert_eq(q.select(q.ctx, ms, 2, T0 - 100000, T0 - 1, 0, &loaded, &set, &err), 0);
    cr_assert_eq(set->n, 0);
    q.set_free(q.ctx, set);
    q.set_free(q.ctx, NULL);
    matcher_free(ms[0]);
    matcher_free(ms[1]);
}

/* Series are read in id order but handed out in label order, each with its own samples
 * ("other" was created last but sorts first). */
Test(querier_tsdb, series_read_in_id_order_come_out_in_label_order)
{
    struct querier q;
    querier_tsdb(db, &q);
    struct matcher *ms[1] = { m(MATCH_RE, "__name__", ".+") };
    struct querier_set *set = NULL;
    uint64_t loaded = 0;
    struct vg_err err = { 0 };
    cr_assert_eq(q.select(q.ctx, ms, 1, T0, T0 + 600000, 0, &loaded, &set, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(set->n, 3);
    cr_assert_eq(loaded, 25);
    cr_assert(vg_str_eq_c(set->v[0].labels[0].value, "other"));
    cr_assert_eq(set->v[0].nsamples, 3);
    cr_assert_eq(set->v[0].samples[2].v, 7);
    cr_assert(vg_str_eq_c(set->v[2].labels[1].value, "b"));
    cr_assert_eq(set->v[2].nsamples, 11);
    cr_assert_eq(set->v[2].samples[10].v, 1200);
    q.set_free(q.ctx, set);
    matcher_free(ms[0]);
}

/* Every allocation failure during a select gives VG_ENOMEM and no set (nothing leaks:
 * the ASan build checks), and the next select works. */
Test(querier_tsdb, allocation_failures_fail_cleanly)
{
    struct querier q;
    querier_tsdb(db, &q);
    struct matcher *ms[1] = { m(MATCH_RE, "__name__", ".+") };
    struct vg_err err = { 0 };
    int failed = 0;
    for (int k = 1; k < 200; k++) {
        struct querier_set *set = NULL;
        uint64_t loaded = 0;
        vg_alloc_fail_after(k);
        int rc = q.select(q.ctx, ms, 1, T0, T0 + 600000, 0, &loaded, &set, &err);
        vg_alloc_fail_after(0);
        if (rc == 0) {
            cr_assert_eq(set->n, 3);
            q.set_free(q.ctx, set);
            break;
        }
        cr_assert_eq(rc, VG_ENOMEM, "k=%d: %d %s", k, rc, err.msg);
        cr_assert_null(set);
        failed++;
    }
    cr_assert_gt(failed, 3);
    matcher_free(ms[0]);
}

Test(querier_tsdb, sample_limit)
{
    struct querier q;
    querier_tsdb(db, &q);
    struct matcher *ms[1] = { m(MATCH_EQ, "__name__", "req_total") };
    struct querier_set *set = NULL;
    uint64_t loaded = 15;
    struct vg_err err = { 0 };
    cr_assert_eq(q.select(q.ctx, ms, 1, T0, T0 + 600000, 20, &loaded, &set, &err), VG_ETOOLARGE);
    cr_assert_null(set);
    cr_assert(strstr(err.msg, "too many samples"), "%s", err.msg);
    struct matcher *empty[1] = { m(MATCH_RE, "job", ".*") };
    cr_assert_eq(q.select(q.ctx, empty, 1, T0, T0 + 600000, 0, &loaded, &set, &err), VG_EINVAL);
    matcher_free(ms[0]);
    matcher_free(empty[0]);
}

Test(querier_tsdb, staleness_marker_passes_through)
{
    uint64_t bits = TSDB_STALE_NAN_BITS;
    double stale;
    memcpy(&stale, &bits, sizeof stale);
    struct label ls[1] = { { VG_STR("__name__"), VG_STR("st") } };
    struct tsdb_sample s[2] = { { T0, 1 }, { T0 + 60000, stale } };
    struct tsdb_series_in in = { ls, 1, s, 2, NULL, 0 };
    struct tsdb_batch b = { &in, 1, NULL, 0 };
    struct tsdb_append_result res;
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_append(db, &b, &res, &err), 0);
    struct querier q;
    querier_tsdb(db, &q);
    struct promql_expr *e = promql_parse("st", 2, &err);
    cr_assert_not_null(e);
    struct promql_result *r = NULL;
    cr_assert_eq(promql_eval_instant(NULL, &q, e, T0 + 30000, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r->nseries, 1);
    promql_result_free(r);
    cr_assert_eq(promql_eval_instant(NULL, &q, e, T0 + 90000, &r, &err), 0, "%s", err.msg);
    cr_assert_eq(r->nseries, 0);
    promql_result_free(r);
    promql_expr_free(e);
}

Test(querier_tsdb, queries_through_the_engine)
{
    struct querier q;
    querier_tsdb(db, &q);
    struct vg_err err = { 0 };
    const char *qs = "sum by (job) (rate(req_total[5m]))";
    struct promql_expr *e = promql_parse(qs, strlen(qs), &err);
    cr_assert_not_null(e, "%s", err.msg);
    struct promql_result *r = NULL;
    cr_assert_eq(promql_eval_range(NULL, &q, e, T0 + 300000, T0 + 600000, 60000, &r, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(r->type, PT_MATRIX);
    cr_assert_eq(r->nseries, 2);
    cr_assert_eq(r->series[0].npoints, 6);
    cr_assert_float_eq(r->series[0].points[0].v, 1.0, 1e-9);
    cr_assert_float_eq(r->series[1].points[5].v, 2.0, 1e-9);
    cr_assert_gt(r->samples_loaded, 0);
    promql_result_free(r);

    struct promql_opts o;
    promql_opts_default(&o);
    o.max_samples = 5;
    cr_assert_eq(promql_eval_range(&o, &q, e, T0 + 300000, T0 + 600000, 60000, &r, &err),
                 VG_ETOOLARGE);
    cr_assert_null(r);
    cr_assert_str_eq(err.msg, "query processing would load too many samples into memory in "
                              "query execution");
    promql_expr_free(e);
}
