/* Tests storage/tsdb/tsdb_query.c's selection and its appending reader against brute
 * force: for a few hundred series with label sets of 1 to 11 labels (some sets the
 * prefix of others, values shared across series so that the pair ranks repeat),
 * tsdb_select must return exactly the series whose labels match every matcher, in
 * labels_cmp order, through both plans (a rare '=' pair read from the postings, and
 * the walk over the head) and with more matchers than the in-memory plan takes;
 * tsdb_reader_append must append after what the caller's array holds. */
#include <criterion/criterion.h>

#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/tsdb/tsdb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1700000000000LL
#define NSERIES 300
#define MAXL 11

#define TMPDIR_PREFIX "vg_tsdbq"
#include "../tmpdir_fixture.h"

TestSuite(tsdb_query, .init = mkdir_tmp, .fini = rm_tmp, .timeout = 60);

static const char *const names[MAXL] = { "__name__", "a", "b", "c", "d", "e",
                                         "f", "g", "h", "i", "j" };
static char values[NSERIES][MAXL][16];
static struct label sets[NSERIES][MAXL];
static size_t nsets[NSERIES];

/* Series k: metric m<k%3>, then labels a.. with values drawn from small alphabets, so
 * that sets share pairs; k % 12 labels beyond the name (up to 10), which makes some
 * sets prefixes of others. Series 7 alone has a="rare". */
static void make_sets(void)
{
    for (size_t k = 0; k < NSERIES; k++) {
        size_t n = 1 + k % 12;
        if (n > MAXL)
            n = MAXL;
        for (size_t j = 0; j < n; j++) {
            if (j == 0)
                snprintf(values[k][j], sizeof values[k][j], "m%zu", k % 3);
            else if (j == 1 && k == 7)
                snprintf(values[k][j], sizeof values[k][j], "rare");
            else
                snprintf(values[k][j], sizeof values[k][j], "v%zu", (k / (j + 1)) % 4);
            sets[k][j].name = vg_str_c(names[j]);
            sets[k][j].value = vg_str_c(values[k][j]);
        }
        nsets[k] = n;
    }
}

static struct tsdb *open_filled(void)
{
    struct tsdb_opts o;
    tsdb_opts_default(&o);
    o.dir = dir;
    o.maint_interval_ms = 3600 * 1000;
    struct vg_err err = { 0 };
    struct tsdb *db = tsdb_open(&o, &err);
    cr_assert_not_null(db, "%s", err.msg);
    make_sets();
    for (size_t k = 0; k < NSERIES; k++) {
        struct tsdb_sample s[3] = { { T0, (double)k }, { T0 + 1000, 1 }, { T0 + 2000, 2 } };
        struct tsdb_series_in in = { .labels = sets[k], .nlabels = nsets[k], .samples = s,
                                     .nsamples = 3 };
        struct tsdb_batch b = { .series = &in, .nseries = 1 };
        struct tsdb_append_result res;
        cr_assert_eq(tsdb_append(db, &b, &res, &err), 0, "%s", err.msg);
    }
    return db;
}

static struct matcher *M(enum matcher_op op, const char *name, const char *value)
{
    struct vg_err err = { 0 };
    struct matcher *m = matcher_new(op, vg_str_c(name), vg_str_c(value), &err);
    cr_assert_not_null(m, "%s", err.msg);
    return m;
}

static bool brute_match(size_t k, struct matcher *const *ms, size_t nms)
{
    for (size_t i = 0; i < nms; i++) {
        struct vg_str v = labels_get(sets[k], nsets[k], ms[i]->name);
        if (!matcher_matches(ms[i], v.p ? v : (struct vg_str){ "", 0 }))
            return false;
    }
    return true;
}

/* tsdb_select(ms) against brute force: same series, labels_cmp order. */
static void check_select(struct tsdb *db, struct matcher *const *ms, size_t nms,
                         size_t want_min)
{
    struct tsdb_series_set *set;
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_select(db, ms, nms, INT64_MIN, INT64_MAX, &set, &err), 0, "%s", err.msg);
    size_t want = 0; /* equal sets are one series: count each set once */
    for (size_t k = 0; k < NSERIES; k++) {
        bool dup = false;
        for (size_t e = 0; e < k && !dup; e++)
            dup = labels_cmp(sets[e], nsets[e], sets[k], nsets[k]) == 0;
        want += !dup && brute_match(k, ms, nms);
    }
    cr_assert_eq(set->n, want, "%zu series selected, %zu match", set->n, want);
    cr_assert_geq(want, want_min);
    for (size_t i = 0; i < set->n; i++) {
        const struct tsdb_series *s = &set->v[i];
        if (i)
            cr_assert_lt(labels_cmp(set->v[i - 1].labels, set->v[i - 1].nlabels, s->labels,
                                    s->nlabels),
                         0, "series %zu and %zu out of order", i - 1, i);
        /* the labels are one of the stored sets, and that set matches */
        bool found = false;
        for (size_t k = 0; k < NSERIES && !found; k++)
            found = labels_cmp(sets[k], nsets[k], s->labels, s->nlabels) == 0 &&
                    brute_match(k, ms, nms);
        cr_assert(found, "series %zu is not a matching stored set", i);
    }
    tsdb_series_set_free(set);
}

Test(tsdb_query, select_matches_brute_force_in_label_order)
{
    struct tsdb *db = open_filled();
    struct matcher *all = M(MATCH_RE, "__name__", ".+");
    struct matcher *m1 = M(MATCH_EQ, "__name__", "m1");
    struct matcher *rare = M(MATCH_EQ, "a", "rare");
    struct matcher *b_re = M(MATCH_RE, "b", "v[12]");
    struct matcher *c_ne = M(MATCH_NEQ, "c", "v0");
    struct matcher *j_nre = M(MATCH_NRE, "j", "v.");
    struct matcher *none = M(MATCH_EQ, "a", "nowhere");
    struct matcher *e_empty = M(MATCH_EQ, "e", "");
    struct matcher *one[] = { all };
    check_select(db, one, 1, NSERIES / 2); /* every set, 1 to 11 labels, in order */
    struct matcher *walk[] = { m1, b_re, c_ne, j_nre };
    check_select(db, walk, 4, 1);
    struct matcher *drv[] = { all, rare }; /* a="rare": one series, from the postings */
    check_select(db, drv, 2, 1);
    struct matcher *empty_eq[] = { m1, e_empty }; /* e missing or "" */
    check_select(db, empty_eq, 2, 1);
    struct matcher *nothing[] = { all, none };
    check_select(db, nothing, 2, 0);
    struct matcher *set_re = M(MATCH_RE, "a", "nowhere|rare"); /* literal set: postings */
    struct matcher *lits[] = { set_re, b_re };
    check_select(db, lits, 1, 1);
    struct matcher *absent = M(MATCH_RE, "a", "nowhere|nothere");
    check_select(db, &absent, 1, 0);
    matcher_free(set_re);
    matcher_free(absent);
    /* more matchers than the in-memory plan takes: through the postings */
    struct matcher *many[] = { all, m1, b_re, c_ne, j_nre, e_empty, all, m1, b_re };
    check_select(db, many, 9, 0);
    /* only matchers that match "": refused, as Prometheus does */
    struct matcher *bad[] = { e_empty, j_nre };
    struct tsdb_series_set *set = NULL;
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_select(db, bad, 2, INT64_MIN, INT64_MAX, &set, &err), VG_EINVAL);
    cr_assert_null(set);
    cr_assert(strstr(err.msg, "empty string"), "%s", err.msg);
    /* allocation failures fail cleanly at every step */
    for (uint64_t n = 1; n < 40; n++) {
        vg_alloc_fail_after(n);
        int rc = tsdb_select(db, walk, 4, INT64_MIN, INT64_MAX, &set, &err);
        vg_alloc_fail_after(0);
        cr_assert(rc == 0 || rc == VG_ENOMEM, "rc %d at allocation %llu", rc,
                  (unsigned long long)n);
        if (rc == 0)
            tsdb_series_set_free(set);
        else
            cr_assert_null(set);
    }
    tsdb_close(db);
    struct matcher *ms[] = { all, m1, rare, b_re, c_ne, j_nre, none, e_empty };
    for (size_t i = 0; i < sizeof ms / sizeof *ms; i++)
        matcher_free(ms[i]);
}

Test(tsdb_query, reader_appends_after_the_callers_samples)
{
    struct tsdb *db = open_filled();
    struct matcher *m = M(MATCH_EQ, "a", "rare");
    struct tsdb_series_set *set;
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_select(db, &m, 1, INT64_MIN, INT64_MAX, &set, &err), 0, "%s", err.msg);
    cr_assert_eq(set->n, 1);
    struct tsdb_reader *r = tsdb_reader_new(db);
    cr_assert_not_null(r);
    struct tsdb_sample *buf = vg_malloc(sizeof *buf);
    buf[0] = (struct tsdb_sample){ 42, 42 };
    size_t len = 1, cap = 1;
    cr_assert_eq(tsdb_reader_append(r, set->v[0].id, T0 + 1000, T0 + 5000, &buf, &len, &cap,
                                    &err),
                 0, "%s", err.msg);
    cr_assert_eq(len, 3, "the caller's sample and two of the series");
    cr_assert_eq(buf[0].t, 42);
    cr_assert_eq(buf[1].t, T0 + 1000);
    cr_assert_eq(buf[2].t, T0 + 2000);
    cr_assert_geq(cap, len);
    /* an unknown series and an empty window add nothing */
    cr_assert_eq(tsdb_reader_append(r, 999999, INT64_MIN, INT64_MAX, &buf, &len, &cap, &err), 0);
    cr_assert_eq(tsdb_reader_append(r, set->v[0].id, T0 + 5000, T0 + 1000, &buf, &len, &cap,
                                    &err),
                 0);
    cr_assert_eq(len, 3);
    /* tsdb_reader_read hands out the same samples in an array of its own */
    struct tsdb_sample *own;
    size_t n;
    cr_assert_eq(tsdb_reader_read(r, set->v[0].id, INT64_MIN, INT64_MAX, &own, &n, &err), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(own[0].t, T0);
    cr_assert_eq(own[0].v, 7.0, "series 7's first value is its number");
    vg_free(own);
    vg_free(buf);
    tsdb_reader_free(r);
    tsdb_series_set_free(set);
    matcher_free(m);
    tsdb_close(db);
}
