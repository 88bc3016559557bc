/* Tests storage/tsdb/tsdb_stats.c: tsdb_cardinality's four top lists (counts, ranking,
 * ties, limit), head figures, an empty store, and allocation failure. */
#include <criterion/criterion.h>

#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/tsdb/tsdb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1700000000000LL

static char dir[64];
static struct tsdb *db;

static void setup(void)
{
    strcpy(dir, "/tmp/vg_tsdb_stats_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    struct tsdb_opts o;
    tsdb_opts_default(&o);
    o.dir = dir;
    o.retention_ms = 0;
    struct vg_err err = { 0 };
    db = tsdb_open(&o, &err);
    cr_assert_not_null(db, "%s", err.msg);
}

static void teardown(void)
{
    vg_alloc_fail_after(0);
    tsdb_close(db);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(tsdb_stats, .init = setup, .fini = teardown, .timeout = 60);

/* Appends one sample at t to the series metric{k=v[, k2=v2]} (labels sorted here). */
static void add(const char *metric, const char *k, const char *v, const char *k2,
                const char *v2, int64_t t)
{
    struct label l[3];
    size_t n = 0;
    l[n++] = (struct label){ vg_str_c("__name__"), vg_str_c(metric) };
    if (k)
        l[n++] = (struct label){ vg_str_c(k), vg_str_c(v) };
    if (k2)
        l[n++] = (struct label){ vg_str_c(k2), vg_str_c(v2) };
    labels_sort(l, n);
    struct tsdb_sample s = { t, 1 };
    struct tsdb_series_in in = { .labels = l, .nlabels = n, .samples = &s, .nsamples = 1 };
    struct tsdb_batch b = { .series = &in, .nseries = 1 };
    struct tsdb_append_result res;
    memset(&res, 0, sizeof res);
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_append(db, &b, &res, &err), 0, "%s", err.msg);
}

static void load(void)
{
    /* up: 3 series (job a, b, c), http_requests_total: 4 series, node_cpu: 1 series. */
    add("up", "job", "a", NULL, NULL, T0);
    add("up", "job", "b", NULL, NULL, T0 + 1000);
    add("up", "job", "c", NULL, NULL, T0 + 2000);
    add("http_requests_total", "job", "a", "code", "200", T0);
    add("http_requests_total", "job", "a", "code", "500", T0);
    add("http_requests_total", "job", "b", "code", "200", T0);
    add("http_requests_total", "job", "b", "code", "404", T0 + 5000);
    add("node_cpu", NULL, NULL, NULL, NULL, T0 - 3000);
}

static void expect(const struct tsdb_stat_list *l, size_t i, const char *name, uint64_t v)
{
    cr_assert_lt(i, l->n);
    cr_assert_str_eq(l->v[i].name, name);
    cr_assert_eq(l->v[i].value, v, "%s: %llu", name, (unsigned long long)l->v[i].value);
}

Test(tsdb_stats, counts_and_ranks_every_list)
{
    load();
    struct tsdb_cardinality c;
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_cardinality(db, 10, &c, &err), 0, "%s", err.msg);
    cr_assert_eq(c.num_series, 8);
    cr_assert_eq(c.min_time, T0 - 3000);
    cr_assert_eq(c.max_time, T0 + 5000);
    cr_assert_eq(c.chunk_count, 8, "one open head chunk per series");
    /* pairs: __name__ x3, job=a/b/c, code=200/404/500 */
    cr_assert_eq(c.num_label_pairs, 9);

    cr_assert_eq(c.series_by_metric.n, 3);
    expect(&c.series_by_metric, 0, "http_requests_total", 4);
    expect(&c.series_by_metric, 1, "up", 3);
    expect(&c.series_by_metric, 2, "node_cpu", 1);

    cr_assert_eq(c.values_by_name.n, 3);
    expect(&c.values_by_name, 0, "__name__", 3);
    expect(&c.values_by_name, 1, "code", 3); /* tie with job: byte order */
    expect(&c.values_by_name, 2, "job", 3);

    /* bytes: __name__ 4*19 + 3*2 + 8 = 90; code 4*3 = 12; job 7*1 = 7 */
    cr_assert_eq(c.bytes_by_name.n, 3);
    expect(&c.bytes_by_name, 0, "__name__", 90);
    expect(&c.bytes_by_name, 1, "code", 12);
    expect(&c.bytes_by_name, 2, "job", 7);

    cr_assert_eq(c.series_by_pair.n, 9);
    expect(&c.series_by_pair, 0, "__name__=http_requests_total", 4);
    expect(&c.series_by_pair, 1, "__name__=up", 3);
    expect(&c.series_by_pair, 2, "job=a", 3);
    expect(&c.series_by_pair, 3, "job=b", 3);
    expect(&c.series_by_pair, 4, "code=200", 2);
    expect(&c.series_by_pair, 5, "__name__=node_cpu", 1);
    expect(&c.series_by_pair, 8, "job=c", 1);
    tsdb_cardinality_free(&c);
}

Test(tsdb_stats, limit_keeps_the_best)
{
    load();
    struct tsdb_cardinality c;
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_cardinality(db, 2, &c, &err), 0, "%s", err.msg);
    cr_assert_eq(c.series_by_metric.n, 2);
    expect(&c.series_by_metric, 0, "http_requests_total", 4);
    expect(&c.series_by_metric, 1, "up", 3);
    cr_assert_eq(c.series_by_pair.n, 2);
    expect(&c.series_by_pair, 1, "__name__=up", 3);
    cr_assert_eq(c.num_label_pairs, 9, "the total is not limited");
    tsdb_cardinality_free(&c);

    cr_assert_eq(tsdb_cardinality(db, 0, &c, &err), 0, "%s", err.msg);
    cr_assert_eq(c.series_by_pair.n, 0);
    cr_assert_eq(c.num_series, 8);
    tsdb_cardinality_free(&c);
}

Test(tsdb_stats, empty_store)
{
    struct tsdb_cardinality c;
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_cardinality(db, 10, &c, &err), 0, "%s", err.msg);
    cr_assert_eq(c.num_series, 0);
    cr_assert_eq(c.num_label_pairs, 0);
    cr_assert_eq(c.series_by_metric.n, 0);
    cr_assert_eq(c.min_time, INT64_MAX);
    cr_assert_eq(c.max_time, INT64_MIN);
    tsdb_cardinality_free(&c);
    tsdb_cardinality_free(NULL);
}

Test(tsdb_stats, allocation_failure_is_an_error_and_leaks_nothing)
{
    load();
    bool failed = false, succeeded = false;
    for (uint64_t n = 1; n < 200 && !succeeded; n++) {
        struct tsdb_cardinality c;
        struct vg_err err = { 0 };
        vg_alloc_fail_after(n);
        int rc = tsdb_cardinality(db, 10, &c, &err);
        vg_alloc_fail_after(0);
        if (rc == 0) {
            succeeded = true;
            cr_assert_eq(c.series_by_metric.n, 3);
        } else {
            failed = true;
            cr_assert_eq(rc, VG_ENOMEM, "%d %s", rc, err.msg);
            cr_assert_eq(c.series_by_metric.n, 0);
            cr_assert_null(c.series_by_pair.v);
        }
        tsdb_cardinality_free(&c);
    }
    cr_assert(failed && succeeded);
}

Test(tsdb_stats, keeps_the_top_of_many_and_takes_a_huge_limit)
{
    /* Metric mNN has NN % 7 + 1 series (label i = 0..): 60 metrics in one batch. */
    enum { METRICS = 60, MAXS = 7 };
    static char names[METRICS][8], vals[MAXS][4];
    static struct label ls[METRICS * MAXS][2];
    static struct tsdb_series_in in[METRICS * MAXS];
    struct tsdb_sample smp = { T0, 1 };
    size_t n = 0;
    for (int v = 0; v < MAXS; v++)
        snprintf(vals[v], sizeof vals[v], "%d", v);
    for (int m = 0; m < METRICS; m++) {
        snprintf(names[m], sizeof names[m], "m%02d", m);
        for (int v = 0; v <= m % MAXS; v++) {
            ls[n][0] = (struct label){ vg_str_c("__name__"), vg_str_c(names[m]) };
            ls[n][1] = (struct label){ vg_str_c("i"), vg_str_c(vals[v]) };
            in[n] = (struct tsdb_series_in){ .labels = ls[n], .nlabels = 2, .samples = &smp,
                                             .nsamples = 1 };
            n++;
        }
    }
    struct tsdb_batch b = { .series = in, .nseries = n };
    struct tsdb_append_result res;
    memset(&res, 0, sizeof res);
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_append(db, &b, &res, &err), 0, "%s", err.msg);

    struct tsdb_cardinality c;
    cr_assert_eq(tsdb_cardinality(db, 20, &c, &err), 0, "%s", err.msg);
    cr_assert_eq(c.num_series, n);
    cr_assert_eq(c.series_by_metric.n, 20);
    /* 7 series: m06, m13, m20, m27, m34, m41, m48, m55; then 6 series: m05, m12, ... */
    expect(&c.series_by_metric, 0, "m06", 7);
    expect(&c.series_by_metric, 7, "m55", 7);
    expect(&c.series_by_metric, 8, "m05", 6);
    expect(&c.series_by_metric, 16, "m04", 5);
    expect(&c.series_by_metric, 19, "m25", 5);
    expect(&c.series_by_pair, 0, "i=0", METRICS);
    tsdb_cardinality_free(&c);

    cr_assert_eq(tsdb_cardinality(db, (size_t)1 << 40, &c, &err), 0, "%s", err.msg);
    cr_assert_eq(c.series_by_metric.n, METRICS);
    cr_assert_eq(c.series_by_pair.n, METRICS + MAXS);
    tsdb_cardinality_free(&c);
}

/* Packed postings (after a compaction) count each of their ids. */
Test(tsdb_stats, figures_survive_packing_the_postings)
{
    load();
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_compact(db, &err), 0, "%s", err.msg);
    struct tsdb_cardinality c;
    cr_assert_eq(tsdb_cardinality(db, 10, &c, &err), 0, "%s", err.msg);
    cr_assert_eq(c.num_series, 8);
    cr_assert_eq(c.num_label_pairs, 9);
    expect(&c.series_by_metric, 0, "http_requests_total", 4);
    expect(&c.bytes_by_name, 0, "__name__", 90);
    expect(&c.series_by_pair, 2, "job=a", 3);
    expect(&c.series_by_pair, 8, "job=c", 1);
    tsdb_cardinality_free(&c);
}
