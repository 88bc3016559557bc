/* Tests storage/tsdb/tsdb.c (with head.c, index.c, wal.c, tsdb_query.c, tsdb_maint.c):
 * append/read round trips across chunk boundaries, selection with every matcher kind,
 * label names and values, out-of-order and duplicate rules, bit-exact staleness
 * markers, reopen, durability across SIGKILL, retention, write-ahead truncation,
 * storage and allocation failures, concurrent appenders. */
#include <criterion/criterion.h>

#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/kv.h"
#include "../../../../storage/tsdb/tsdb.h"
#include "../crash_fixture.h"

#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MIN_MS (60 * 1000LL)
#define HOUR_MS (60 * MIN_MS)
#define T0 1700000000000LL /* a 2023 timestamp: far from the retention cutoff when off */

#define TMPDIR_PREFIX "vg_tsdb"
#include "../tmpdir_fixture.h"

TestSuite(tsdb, .init = mkdir_tmp, .fini = rm_tmp, .timeout = 60);

static struct tsdb *open_opts(int64_t ooo, int64_t retention)
{
    struct tsdb_opts o;
    tsdb_opts_default(&o);
    o.dir = dir;
    o.ooo_window_ms = ooo;
    o.retention_ms = retention;
    o.maint_interval_ms = 3600 * 1000;
    struct vg_err err = { 0 };
    struct tsdb *db = tsdb_open(&o, &err);
    cr_assert_not_null(db, "%s", err.msg);
    return db;
}

static struct tsdb *open_db(void)
{
    return open_opts(30 * MIN_MS, 0);
}

/* Labels from "name", "value", ... (must be given sorted by name). */
struct lset {
    struct label l[8];
    size_t n;
};

static struct lset mk(const char *const *kv, size_t n)
{
    struct lset s = { .n = n / 2 };
    for (size_t i = 0; i < s.n; i++) {
        s.l[i].name = vg_str_c(kv[2 * i]);
        s.l[i].value = vg_str_c(kv[2 * i + 1]);
    }
    return s;
}
#define LS(...) mk((const char *const[]){ __VA_ARGS__ }, sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(char *))

static struct tsdb_append_result append1(struct tsdb *db, const struct lset *ls,
                                         const struct tsdb_sample *s, size_t n)
{
    struct tsdb_series_in in = { .labels = ls->l, .nlabels = ls->n, .samples = s,
                                 .nsamples = n };
    struct tsdb_batch b = { .series = &in, .nseries = 1 };
    struct tsdb_append_result res;
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_append(db, &b, &res, &err), 0, "%s", err.msg);
    return res;
}

static struct tsdb_append_result append_one(struct tsdb *db, const struct lset *ls, int64_t t,
                                            double v)
{
    struct tsdb_sample s = { t, v };
    return append1(db, ls, &s, 1);
}

static struct matcher *M(enum matcher_op op, const char *name, const char *value)
{
    struct vg_err err = { 0 };
    struct matcher *m = matcher_new(op, vg_str_c(name), vg_str_c(value), &err);
    cr_assert_not_null(m, "%s", err.msg);
    return m;
}

/* Series id of the one series matching __name__=name. */
static uint64_t id_of(struct tsdb *db, const char *name)
{
    struct matcher *m = M(MATCH_EQ, "__name__", name);
    struct tsdb_series_set *set;
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_select(db, &m, 1, INT64_MIN, INT64_MAX, &set, &err), 0, "%s", err.msg);
    cr_assert_eq(set->n, 1, "series %s: %zu matches", name, set->n);
    uint64_t id = set->v[0].id;
    tsdb_series_set_free(set);
    matcher_free(m);
    return id;
}

static int cmp_sample_t(const void *a, const void *b)
{
    const struct tsdb_sample *x = a, *y = b;
    return (x->t > y->t) - (x->t < y->t);
}

static size_t read_all(struct tsdb *db, uint64_t id, int64_t mint, int64_t maxt,
                       struct tsdb_sample **out)
{
    size_t n;
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_read(db, id, mint, maxt, out, &n, &err), 0, "%s", err.msg);
    for (size_t i = 1; i < n; i++)
        cr_assert_lt((*out)[i - 1].t, (*out)[i].t, "sorted and unique");
    return n;
}

static size_t count_select(struct tsdb *db, struct matcher **ms, size_t n, int64_t mint,
                           int64_t maxt)
{
    struct tsdb_series_set *set;
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_select(db, ms, n, mint, maxt, &set, &err), 0, "%s", err.msg);
    size_t c = set->n;
    tsdb_series_set_free(set);
    return c;
}

Test(tsdb, round_trip_across_chunk_boundaries_and_reopen)
{
    struct tsdb *db = open_db();
    struct lset ls = LS("__name__", "up", "job", "node");
    struct tsdb_sample s[1000];
    for (int i = 0; i < 1000; i++)
        s[i] = (struct tsdb_sample){ T0 + i * 15000LL, i * 0.5 };
    for (int i = 0; i < 1000; i += 100) {
        struct tsdb_append_result r = append1(db, &ls, s + i, 100);
        cr_assert_eq(r.accepted, 100);
        cr_assert_eq(r.series_created, i == 0);
    }
    uint64_t id = id_of(db, "up");
    struct tsdb_sample *out;
    size_t n = read_all(db, id, INT64_MIN, INT64_MAX, &out);
    cr_assert_eq(n, 1000);
    for (int i = 0; i < 1000; i++) {
        cr_assert_eq(out[i].t, s[i].t);
        cr_assert_eq(out[i].v, s[i].v);
    }
    vg_free(out);
    struct tsdb_stats st;
    tsdb_stats(db, &st);
    cr_assert_eq(st.series, 1);
    cr_assert_geq(st.chunks_persisted, 8, "cut every 120 samples");
    cr_assert_eq(st.samples_appended, 1000);
    cr_assert_eq(st.min_time, s[0].t);
    cr_assert_eq(st.max_time, s[999].t);
    cr_assert_lt(st.head_samples, 120);
    /* A window in the middle, across a chunk boundary. */
    n = read_all(db, id, s[100].t, s[250].t, &out);
    cr_assert_eq(n, 151);
    cr_assert_eq(out[0].t, s[100].t);
    vg_free(out);
    tsdb_close(db);

    db = open_db();
    cr_assert_eq(id_of(db, "up"), id, "ids are stable");
    n = read_all(db, id, INT64_MIN, INT64_MAX, &out);
    cr_assert_eq(n, 1000);
    cr_assert_eq(out[999].v, s[999].v);
    vg_free(out);
    tsdb_stats(db, &st);
    cr_assert_eq(st.head_samples, 0, "close flushed the head");
    cr_assert_eq(st.min_time, s[0].t, "%lld", (long long)st.min_time);
    cr_assert_eq(st.max_time, s[999].t);
    /* Appending continues after the persisted data. */
    cr_assert_eq(append_one(db, &ls, s[999].t + 15000, 7).accepted, 1);
    cr_assert_eq(append_one(db, &ls, s[999].t, s[999].v).duplicates, 1);
    tsdb_close(db);
}

/* tsdb_read skips stored in-order chunks that end before mint; every window, starting
 * inside, at the edges of and between chunks, must still return exactly the samples in
 * it, also with out-of-order chunks overlapping the in-order ones. */
Test(tsdb, every_read_window_returns_exactly_its_samples)
{
    struct tsdb *db = open_opts(30 * MIN_MS, 0);
    struct lset ls = LS("__name__", "w");
    enum { N = 600 };
    static struct tsdb_sample s[N + 40];
    size_t ns = 0;
    for (int i = 0; i < N; i++)
        s[ns++] = (struct tsdb_sample){ T0 + i * 10000LL, i };
    for (int i = 0; i < N; i += 50)
        cr_assert_eq(append1(db, &ls, s + i, 50).accepted, 50);
    /* Out-of-order samples between in-order ones (offset 5 s) near the end, written to
     * disk as out-of-order chunks by maintenance. */
    struct vg_err err = { 0 };
    for (int i = N - 40; i < N; i++) {
        struct tsdb_sample o = { T0 + i * 10000LL + 5000, -i };
        cr_assert_eq(append_one(db, &ls, o.t, o.v).accepted, 1);
        s[ns++] = o;
    }
    cr_assert_eq(tsdb_maintain(db, s[N - 1].t + 1000, &err), 0, "%s", err.msg);
    qsort(s, ns, sizeof *s, cmp_sample_t);
    uint64_t id = id_of(db, "w");
    for (int round = 0; round < 2; round++) {
        for (size_t a = 0; a < ns; a += 7) {
            for (int64_t d = -1; d <= 1; d++) {
                int64_t mint = s[a].t + d, maxt = mint + 7 * MIN_MS;
                size_t want0 = 0, want = 0;
                while (want0 < ns && s[want0].t < mint)
                    want0++;
                while (want0 + want < ns && s[want0 + want].t <= maxt)
                    want++;
                struct tsdb_sample *out;
                size_t n = read_all(db, id, mint, maxt, &out);
                cr_assert_eq(n, want, "window at %zu%+lld: %zu samples, want %zu", a,
                             (long long)d, n, want);
                for (size_t i = 0; i < n; i++)
                    cr_assert_eq(out[i].t, s[want0 + i].t);
                vg_free(out);
            }
        }
        tsdb_close(db); /* second round: everything from disk */
        db = open_opts(30 * MIN_MS, 0);
    }
    tsdb_close(db);
}

/* A reader keeps one LevelDB snapshot across reads; when the head moves chunks to disk
 * after that snapshot, the next read must still see them. */
Test(tsdb, reader_sees_chunks_flushed_after_its_snapshot)
{
    struct tsdb *db = open_opts(30 * MIN_MS, 0);
    struct lset a = LS("__name__", "ra"), b = LS("__name__", "rb");
    struct tsdb_sample s[100];
    for (int i = 0; i < 100; i++)
        s[i] = (struct tsdb_sample){ T0 + i * 15000LL, i };
    cr_assert_eq(append1(db, &a, s, 100).accepted, 100);
    cr_assert_eq(append1(db, &b, s, 100).accepted, 100);
    uint64_t ida = id_of(db, "ra"), idb = id_of(db, "rb");
    struct tsdb_reader *r = tsdb_reader_new(db);
    cr_assert_not_null(r);
    struct tsdb_sample *out;
    size_t n;
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_reader_read(r, ida, INT64_MIN, INT64_MAX, &out, &n, &err), 0);
    cr_assert_eq(n, 100);
    vg_free(out);
    /* Everything in memory goes to disk and leaves the head. */
    cr_assert_eq(tsdb_compact(db, &err), 0, "%s", err.msg);
    struct tsdb_stats st;
    tsdb_stats(db, &st);
    cr_assert_eq(st.head_samples, 0);
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(tsdb_reader_read(r, k ? ida : idb, INT64_MIN, INT64_MAX, &out, &n, &err),
                     0, "%s", err.msg);
        cr_assert_eq(n, 100, "read %d after the flush: %zu samples", k, n);
        cr_assert_eq(out[99].v, 99);
        vg_free(out);
    }
    tsdb_reader_free(r);
    tsdb_close(db);
}

Test(tsdb, head_is_rebuilt_from_the_log_after_a_reopen_without_flush)
{
    /* A child appends and exits without tsdb_close: only the log has the samples. */
    pid_t pid = fork();
    if (pid == 0) {
        struct tsdb *db = open_db();
        struct lset ls = LS("__name__", "m");
        for (int i = 0; i < 300; i++)
            append_one(db, &ls, T0 + i * 1000LL, i);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct tsdb *db = open_db();
    struct tsdb_sample *out;
    size_t n = read_all(db, id_of(db, "m"), INT64_MIN, INT64_MAX, &out);
    cr_assert_eq(n, 300);
    for (int i = 0; i < 300; i++)
        cr_assert_eq(out[i].v, i);
    vg_free(out);
    tsdb_close(db);
}

static void add_series(struct tsdb *db)
{
    struct lset a = LS("__name__", "http_requests", "job", "api", "path", "/api/v1");
    struct lset b = LS("__name__", "http_requests", "job", "api", "path", "/health");
    struct lset c = LS("__name__", "http_requests", "job", "web");
    struct lset d = LS("__name__", "cpu", "job", "node", "mode", "idle");
    append_one(db, &a, T0, 1);
    append_one(db, &b, T0 + 1000, 2);
    append_one(db, &c, T0 + 2000, 3);
    append_one(db, &d, T0 + 3000, 4);
}

Test(tsdb, select_with_every_matcher_kind)
{
    struct tsdb *db = open_db();
    add_series(db);
    struct matcher *name = M(MATCH_EQ, "__name__", "http_requests");
    struct matcher *ms[3];

    ms[0] = name;
    cr_assert_eq(count_select(db, ms, 1, INT64_MIN, INT64_MAX), 3);
    ms[1] = M(MATCH_EQ, "job", "api");
    cr_assert_eq(count_select(db, ms, 2, INT64_MIN, INT64_MAX), 2);
    matcher_free(ms[1]);
    ms[1] = M(MATCH_NEQ, "job", "api");
    cr_assert_eq(count_select(db, ms, 2, INT64_MIN, INT64_MAX), 1);
    matcher_free(ms[1]);
    ms[1] = M(MATCH_RE, "path", "/api.*");
    cr_assert_eq(count_select(db, ms, 2, INT64_MIN, INT64_MAX), 1);
    matcher_free(ms[1]);
    ms[1] = M(MATCH_NRE, "path", "/api.*");
    cr_assert_eq(count_select(db, ms, 2, INT64_MIN, INT64_MAX), 2, "missing path is \"\"");
    matcher_free(ms[1]);
    ms[1] = M(MATCH_EQ, "path", "");
    cr_assert_eq(count_select(db, ms, 2, INT64_MIN, INT64_MAX), 1, "series without path");
    matcher_free(ms[1]);
    ms[1] = M(MATCH_RE, "path", "/health|");
    cr_assert_eq(count_select(db, ms, 2, INT64_MIN, INT64_MAX), 2);
    matcher_free(ms[1]);
    ms[1] = M(MATCH_NEQ, "path", "");
    cr_assert_eq(count_select(db, ms, 2, INT64_MIN, INT64_MAX), 2, "has a path");
    matcher_free(ms[1]);
    ms[1] = M(MATCH_RE, "job", "a.*|w.*");
    ms[2] = M(MATCH_NRE, "path", ".+");
    cr_assert_eq(count_select(db, ms, 3, INT64_MIN, INT64_MAX), 1);
    matcher_free(ms[1]);
    matcher_free(ms[2]);

    /* Regex alone on a label, across metrics. */
    ms[0] = M(MATCH_RE, "job", "node|web");
    cr_assert_eq(count_select(db, ms, 1, INT64_MIN, INT64_MAX), 2);
    matcher_free(ms[0]);
    ms[0] = M(MATCH_EQ, "job", "nope");
    cr_assert_eq(count_select(db, ms, 1, INT64_MIN, INT64_MAX), 0);
    matcher_free(ms[0]);

    /* Time filtering: only the series with samples in range. */
    ms[0] = name;
    cr_assert_eq(count_select(db, ms, 1, T0 + 500, T0 + 1500), 1);
    cr_assert_eq(count_select(db, ms, 1, T0 + 5000, INT64_MAX), 0);

    /* Results are sorted by labels and carry them. */
    struct tsdb_series_set *set;
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_select(db, ms, 1, INT64_MIN, INT64_MAX, &set, &err), 0);
    cr_assert_eq(set->n, 3);
    cr_assert(vg_str_eq_c(set->v[0].labels[2].value, "/api/v1"));
    cr_assert(vg_str_eq_c(set->v[1].labels[2].value, "/health"));
    cr_assert(vg_str_eq_c(set->v[2].labels[1].value, "web"));
    cr_assert_eq(set->v[2].nlabels, 2);
    tsdb_series_set_free(set);

    /* Every matcher matching "" is refused, as in Prometheus. */
    ms[0] = M(MATCH_RE, "job", ".*");
    cr_assert_eq(tsdb_select(db, ms, 1, INT64_MIN, INT64_MAX, &set, &err), VG_EINVAL);
    cr_assert_null(set);
    matcher_free(ms[0]);
    matcher_free(name);
    tsdb_close(db);
}

Test(tsdb, label_names_and_values)
{
    struct tsdb *db = open_db();
    add_series(db);
    struct tsdb_strings s;
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_label_names(db, NULL, 0, INT64_MIN, INT64_MAX, &s, &err), 0);
    cr_assert_eq(s.n, 4);
    cr_assert_str_eq(s.v[0], "__name__");
    cr_assert_str_eq(s.v[1], "job");
    cr_assert_str_eq(s.v[2], "mode");
    cr_assert_str_eq(s.v[3], "path");
    tsdb_strings_free(&s);
    cr_assert_eq(tsdb_label_values(db, "job", NULL, 0, INT64_MIN, INT64_MAX, &s, &err), 0);
    cr_assert_eq(s.n, 3);
    cr_assert_str_eq(s.v[0], "api");
    cr_assert_str_eq(s.v[2], "web");
    tsdb_strings_free(&s);
    cr_assert_eq(tsdb_label_values(db, "nope", NULL, 0, INT64_MIN, INT64_MAX, &s, &err), 0);
    cr_assert_eq(s.n, 0);
    tsdb_strings_free(&s);

    struct matcher *m = M(MATCH_EQ, "__name__", "http_requests");
    cr_assert_eq(tsdb_label_names(db, &m, 1, INT64_MIN, INT64_MAX, &s, &err), 0);
    cr_assert_eq(s.n, 3);
    cr_assert_str_eq(s.v[2], "path");
    tsdb_strings_free(&s);
    cr_assert_eq(tsdb_label_values(db, "path", &m, 1, INT64_MIN, INT64_MAX, &s, &err), 0);
    cr_assert_eq(s.n, 2);
    cr_assert_str_eq(s.v[0], "/api/v1");
    cr_assert_str_eq(s.v[1], "/health");
    tsdb_strings_free(&s);
    cr_assert_eq(tsdb_label_values(db, "job", &m, 1, T0 + 2000, T0 + 2000, &s, &err), 0);
    cr_assert_eq(s.n, 1);
    cr_assert_str_eq(s.v[0], "web");
    tsdb_strings_free(&s);
    matcher_free(m);
    tsdb_close(db);
}

Test(tsdb, out_of_order_within_and_beyond_the_window)
{
    struct tsdb *db = open_opts(10 * MIN_MS, 0);
    struct lset ls = LS("__name__", "ooo");
    int64_t t = T0 + HOUR_MS;
    cr_assert_eq(append_one(db, &ls, t, 1).accepted, 1);
    cr_assert_eq(append_one(db, &ls, t + 1000, 2).accepted, 1);
    struct tsdb_append_result r = append_one(db, &ls, t - 5 * MIN_MS, 0.5);
    cr_assert_eq(r.accepted, 1, "inside the window");
    r = append_one(db, &ls, t - 20 * MIN_MS, 0.1);
    cr_assert_eq(r.accepted, 0);
    cr_assert_eq(r.rejected[TSDB_REJECT_TOO_OLD], 1);
    cr_assert_not_null(strstr(r.first_reject, "ooo"), "%s", r.first_reject);
    cr_assert_not_null(strstr(r.first_reject, "too old"), "%s", r.first_reject);
    cr_assert_str_eq(tsdb_reject_name(TSDB_REJECT_TOO_OLD), "too_old");

    /* A batch in any order: each sample judged on its own. */
    struct tsdb_sample mixed[] = { { t + 3000, 4 }, { t - 4 * MIN_MS, 0.6 }, { t + 2000, 3 },
                                   { t - HOUR_MS, 9 } };
    r = append1(db, &ls, mixed, 4);
    cr_assert_eq(r.accepted, 3);
    cr_assert_eq(r.rejected[TSDB_REJECT_TOO_OLD], 1);

    uint64_t id = id_of(db, "ooo");
    struct tsdb_sample *out;
    size_t n = read_all(db, id, INT64_MIN, INT64_MAX, &out);
    cr_assert_eq(n, 6);
    cr_assert_eq(out[0].t, t - 5 * MIN_MS);
    cr_assert_eq(out[1].t, t - 4 * MIN_MS);
    cr_assert_eq(out[5].v, 4);
    vg_free(out);
    struct tsdb_stats st;
    tsdb_stats(db, &st);
    cr_assert_eq(st.ooo_samples, 2);

    /* Persisted as extra chunks at maintenance; still merged on read and on reopen. */
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_maintain(db, t + 1000, &err), 0, "%s", err.msg);
    cr_assert_eq(append_one(db, &ls, t - 3 * MIN_MS, 0.7).accepted, 1);
    cr_assert_eq(append_one(db, &ls, t - 5 * MIN_MS, 0.5).duplicates, 1, "found on disk");
    r = append_one(db, &ls, t - 4 * MIN_MS, 1.6);
    cr_assert_eq(r.rejected[TSDB_REJECT_DUPLICATE], 1);
    cr_assert_eq(tsdb_maintain(db, t + 1000, &err), 0, "%s", err.msg);
    tsdb_close(db);
    db = open_opts(10 * MIN_MS, 0);
    n = read_all(db, id, INT64_MIN, INT64_MAX, &out);
    cr_assert_eq(n, 7);
    cr_assert_eq(out[2].v, 0.7);
    vg_free(out);
    tsdb_close(db);
}

Test(tsdb, out_of_order_disabled_rejects_anything_older)
{
    struct tsdb *db = open_opts(0, 0);
    struct lset ls = LS("__name__", "strict");
    append_one(db, &ls, T0 + 10, 1);
    struct tsdb_append_result r = append_one(db, &ls, T0 + 9, 1);
    cr_assert_eq(r.rejected[TSDB_REJECT_TOO_OLD], 1);
    cr_assert_eq(append_one(db, &ls, T0 + 10, 1).duplicates, 1);
    tsdb_close(db);
}

Test(tsdb, exact_duplicates_are_ignored_and_conflicts_rejected)
{
    struct tsdb *db = open_db();
    struct lset ls = LS("__name__", "dup");
    for (int i = 0; i < 200; i++)
        append_one(db, &ls, T0 + i * 1000LL, i);
    /* Newest sample, an older one still in the head, one in a written chunk. */
    int64_t ts[] = { T0 + 199000, T0 + 150000, T0 + 10000 };
    for (int k = 0; k < 3; k++) {
        double v = (double)((ts[k] - T0) / 1000);
        struct tsdb_append_result r = append_one(db, &ls, ts[k], v);
        cr_assert_eq(r.duplicates, 1, "case %d", k);
        cr_assert_eq(r.accepted, 0);
        r = append_one(db, &ls, ts[k], v + 1);
        cr_assert_eq(r.rejected[TSDB_REJECT_DUPLICATE], 1, "case %d", k);
        cr_assert_not_null(strstr(r.first_reject, "different value"), "%s", r.first_reject);
    }
    /* Duplicates inside one batch. */
    struct tsdb_sample s[] = { { T0 + 300000, 1 }, { T0 + 300000, 1 }, { T0 + 300000, 2 } };
    struct tsdb_append_result r = append1(db, &ls, s, 3);
    cr_assert_eq(r.accepted, 1);
    cr_assert_eq(r.duplicates, 1);
    cr_assert_eq(r.rejected[TSDB_REJECT_DUPLICATE], 1);
    cr_assert_str_eq(tsdb_reject_name(TSDB_REJECT_DUPLICATE), "duplicate_conflict");
    struct tsdb_sample *out;
    size_t n = read_all(db, id_of(db, "dup"), INT64_MIN, INT64_MAX, &out);
    cr_assert_eq(n, 201);
    cr_assert_eq(out[10].v, 10);
    vg_free(out);
    tsdb_close(db);
}

Test(tsdb, staleness_nan_is_bit_exact)
{
    struct tsdb *db = open_db();
    struct lset ls = LS("__name__", "stale");
    uint64_t bits = TSDB_STALE_NAN_BITS;
    double stale;
    memcpy(&stale, &bits, 8);
    append_one(db, &ls, T0, 1);
    append_one(db, &ls, T0 + 1000, stale);
    struct tsdb_append_result r = append_one(db, &ls, T0 + 1000, stale);
    cr_assert_eq(r.duplicates, 1, "same bits is a duplicate");
    r = append_one(db, &ls, T0 + 1000, NAN);
    cr_assert_eq(r.rejected[TSDB_REJECT_DUPLICATE], 1, "another NaN is not the same");
    uint64_t id = id_of(db, "stale");
    for (int round = 0; round < 2; round++) {
        struct tsdb_sample *out;
        size_t n = read_all(db, id, INT64_MIN, INT64_MAX, &out);
        cr_assert_eq(n, 2);
        uint64_t got;
        memcpy(&got, &out[1].v, 8);
        cr_assert_eq(got, TSDB_STALE_NAN_BITS, "round %d: %016llx", round,
                     (unsigned long long)got);
        vg_free(out);
        tsdb_close(db);
        db = open_db();
    }
    tsdb_close(db);
}

Test(tsdb, metadata_and_exemplars_round_trip)
{
    struct tsdb *db = open_db();
    struct lset ls = LS("__name__", "req_total", "job", "api");
    struct lset el = LS("trace_id", "abc123");
    struct tsdb_sample s = { T0, 5 };
    struct tsdb_exemplar ex = { .labels = el.l, .nlabels = el.n, .t = T0 - 10, .v = 1.25 };
    struct tsdb_series_in in = { .labels = ls.l, .nlabels = ls.n, .samples = &s, .nsamples = 1,
                                 .exemplars = &ex, .nexemplars = 1 };
    struct tsdb_metadata md = { .metric = VG_STR("req_total"), .type = TSDB_TYPE_COUNTER,
                                .help = VG_STR("Requests."), .unit = VG_STR("") };
    struct tsdb_batch b = { .series = &in, .nseries = 1, .meta = &md, .nmeta = 1 };
    struct tsdb_append_result res;
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_append(db, &b, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(res.exemplars_accepted, 1);

    enum tsdb_metric_type type;
    char help[64], unit[8];
    cr_assert(tsdb_metadata_get(db, "req_total", &type, help, sizeof help, unit, sizeof unit));
    cr_assert_eq(type, TSDB_TYPE_COUNTER);
    cr_assert_str_eq(help, "Requests.");
    cr_assert_str_eq(unit, "");
    cr_assert_str_eq(tsdb_metric_type_name(type), "counter");
    cr_assert_not(tsdb_metadata_get(db, "other", &type, help, sizeof help, unit, sizeof unit));
    char tiny[4];
    cr_assert(tsdb_metadata_get(db, "req_total", &type, tiny, sizeof tiny, unit, sizeof unit));
    cr_assert_str_eq(tiny, "Req", "truncated to the caller's buffer");

    struct matcher *m = M(MATCH_EQ, "job", "api");
    struct tsdb_exemplar_set *es;
    cr_assert_eq(tsdb_exemplars(db, &m, 1, T0 - 100, T0, &es, &err), 0, "%s", err.msg);
    cr_assert_eq(es->n, 1);
    cr_assert_eq(es->v[0].t, T0 - 10);
    cr_assert_eq(es->v[0].v, 1.25);
    cr_assert_eq(es->v[0].nlabels, 1);
    cr_assert(vg_str_eq_c(es->v[0].labels[0].value, "abc123"));
    tsdb_exemplar_set_free(es);
    cr_assert_eq(tsdb_exemplars(db, &m, 1, T0 - 5, T0, &es, &err), 0);
    cr_assert_eq(es->n, 0);
    tsdb_exemplar_set_free(es);
    matcher_free(m);
    tsdb_close(db);
}

/* ---- durability ---- */

#define CRASH_SERIES 10

static void crash_child(int wfd)
{
    struct tsdb *db = open_db();
    for (int i = 0;; i++) {
        struct lset ls[CRASH_SERIES];
        char names[CRASH_SERIES][16];
        struct tsdb_series_in in[CRASH_SERIES];
        struct tsdb_sample s[CRASH_SERIES][20];
        for (int k = 0; k < CRASH_SERIES; k++) {
            snprintf(names[k], sizeof names[k], "s%d", k);
            ls[k].n = 1;
            ls[k].l[0] = (struct label){ VG_STR("__name__"), vg_str_c(names[k]) };
            for (int j = 0; j < 20; j++)
                s[k][j] = (struct tsdb_sample){ T0 + (i * 20LL + j) * 1000, i };
            in[k] = (struct tsdb_series_in){ .labels = ls[k].l, .nlabels = 1,
                                             .samples = s[k], .nsamples = 20 };
        }
        struct tsdb_batch b = { .series = in, .nseries = CRASH_SERIES };
        struct tsdb_append_result res;
        struct vg_err err;
        if (tsdb_append(db, &b, &res, &err) != 0)
            _exit(3);
        crash_ack(wfd, i);
        if (i % 37 == 0)
            tsdb_maintain(db, T0 + 10 * HOUR_MS, &err); /* flushes and truncates too */
    }
}

Test(tsdb, acknowledged_batches_survive_sigkill_and_no_partial_batch_is_visible)
{
    int last = crash_run(crash_child, 150);

    struct tsdb *db = open_db();
    int batches = -1;
    for (int k = 0; k < CRASH_SERIES; k++) {
        char name[16];
        snprintf(name, sizeof name, "s%d", k);
        struct tsdb_sample *out;
        size_t n = read_all(db, id_of(db, name), INT64_MIN, INT64_MAX, &out);
        cr_assert_eq(n % 20, 0, "series %d: %zu samples is not whole batches", k, n);
        cr_assert_geq((int)(n / 20), last + 1, "series %d lost acknowledged batches", k);
        if (batches < 0)
            batches = (int)(n / 20);
        cr_assert_eq((int)(n / 20), batches, "every series has the same batches");
        for (size_t j = 0; j < n; j++) {
            cr_assert_eq(out[j].t, T0 + (int64_t)j * 1000);
            cr_assert_eq(out[j].v, (double)(j / 20));
        }
        vg_free(out);
    }
    tsdb_close(db);
}

static size_t count_wal_records(void)
{
    struct vg_err err = { 0 };
    struct kv *kv = kv_open(dir, NULL, &err);
    cr_assert_not_null(kv, "%s", err.msg);
    struct kv_iter *it = kv_iter_new(kv, NULL, false);
    size_t n = 0;
    for (kv_iter_seek(it, "W", 1); kv_iter_has_prefix(it, "W", 1); kv_iter_next(it))
        n++;
    kv_iter_free(it);
    kv_close(kv);
    return n;
}

static void wal_child(bool maintain)
{
    struct tsdb *db = open_db();
    struct lset ls = LS("__name__", "w");
    int64_t t0 = T0 + (maintain ? 500 * 15000LL : 0);
    for (int i = 0; i < 500; i++)
        cr_assert_eq(append_one(db, &ls, t0 + i * 15000LL, i).accepted, 1);
    struct vg_err err;
    if (maintain && tsdb_maintain(db, t0 + 500 * 15000LL, &err) != 0)
        _exit(2);
    _exit(0); /* no close: it would flush and truncate everything */
}

Test(tsdb, write_ahead_records_are_truncated_once_chunks_are_written)
{
    for (int maintain = 0; maintain < 2; maintain++) {
        pid_t pid = fork();
        if (pid == 0)
            wal_child(maintain);
        int status;
        waitpid(pid, &status, 0);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        size_t n = count_wal_records();
        if (!maintain) {
            cr_assert_eq(n, 500, "one record per append");
        } else {
            /* Cut chunks hold everything but the open head chunk (20 samples of the last
             * 2 minutes, younger than the flush age): only its records stay. */
            cr_assert_leq(n, 120, "%zu records left", n);
            cr_assert_gt(n, 0);
        }
        struct tsdb *db = open_db();
        struct tsdb_sample *out;
        size_t got = read_all(db, id_of(db, "w"), INT64_MIN, INT64_MAX, &out);
        cr_assert_eq(got, maintain ? 1000 : 500, "round %d", maintain);
        vg_free(out);
        tsdb_close(db);
    }
    cr_assert_eq(count_wal_records(), 0, "close flushes everything");
}

Test(tsdb, retention_deletes_old_chunks_and_empty_series)
{
    int64_t now = T0 + 30 * 24 * HOUR_MS;
    struct tsdb *db = open_opts(30 * MIN_MS, 24 * HOUR_MS);
    struct lset old = LS("__name__", "old");
    struct lset mixed = LS("__name__", "mixed");
    /* Timestamps relative to the test's clock, not the wall clock: open's replay uses the
     * wall clock, so keep everything recent enough for that too. */
    int64_t wall = (int64_t)time(NULL) * 1000;
    now = wall;
    for (int i = 0; i < 240; i++) {
        append_one(db, &old, now - 3 * 24 * HOUR_MS + i * 60000LL, i);
        append_one(db, &mixed, now - 3 * 24 * HOUR_MS + i * 60000LL, i);
    }
    for (int i = 0; i < 10; i++)
        append_one(db, &mixed, now - 10 * MIN_MS + i * 60000LL, 1000 + i);
    uint64_t mixed_id = id_of(db, "mixed");
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_maintain(db, now, &err), 0, "%s", err.msg);

    struct matcher *m = M(MATCH_EQ, "__name__", "old");
    cr_assert_eq(count_select(db, &m, 1, INT64_MIN, INT64_MAX), 0, "series dropped");
    matcher_free(m);
    struct tsdb_sample *out;
    size_t n = read_all(db, mixed_id, INT64_MIN, INT64_MAX, &out);
    cr_assert_eq(n, 10);
    cr_assert_eq(out[0].v, 1000);
    vg_free(out);
    struct tsdb_strings s;
    cr_assert_eq(tsdb_label_values(db, "__name__", NULL, 0, INT64_MIN, INT64_MAX, &s, &err), 0);
    cr_assert_eq(s.n, 1);
    cr_assert_str_eq(s.v[0], "mixed");
    tsdb_strings_free(&s);
    struct tsdb_stats st;
    tsdb_stats(db, &st);
    cr_assert_eq(st.series, 1);
    cr_assert_eq(st.min_time, now - 10 * MIN_MS);
    tsdb_close(db);

    db = open_opts(30 * MIN_MS, 24 * HOUR_MS);
    n = read_all(db, mixed_id, INT64_MIN, INT64_MAX, &out);
    cr_assert_eq(n, 10);
    vg_free(out);
    /* The name is free again and gets a new id. */
    append_one(db, &old, now, 1);
    cr_assert_neq(id_of(db, "old"), mixed_id);
    tsdb_close(db);
}

Test(tsdb, compact_writes_the_head_and_keeps_data)
{
    struct tsdb *db = open_db();
    struct lset ls = LS("__name__", "c");
    for (int i = 0; i < 50; i++)
        append_one(db, &ls, T0 + i * 1000LL, i);
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_compact(db, &err), 0, "%s", err.msg);
    struct tsdb_stats st;
    tsdb_stats(db, &st);
    cr_assert_eq(st.head_samples, 0);
    cr_assert_gt(st.bytes_on_disk, 0);
    struct tsdb_sample *out;
    cr_assert_eq(read_all(db, id_of(db, "c"), INT64_MIN, INT64_MAX, &out), 50);
    vg_free(out);
    tsdb_close(db);
}

Test(tsdb, unusable_directory_is_an_io_error)
{
    char path[128];
    snprintf(path, sizeof path, "%s/file", dir);
    int fd = open(path, O_CREAT | O_WRONLY, 0600);
    close(fd);
    snprintf(path, sizeof path, "%s/file/db", dir);
    struct tsdb_opts o;
    tsdb_opts_default(&o);
    o.dir = path;
    struct vg_err err = { 0 };
    cr_assert_null(tsdb_open(&o, &err));
    cr_assert_eq(err.code, VG_EIO);
    cr_assert_not_null(strstr(err.msg, path), "%s", err.msg);
    o.dir = NULL;
    cr_assert_null(tsdb_open(&o, &err));
    cr_assert_eq(err.code, VG_EINVAL);
    tsdb_close(NULL);
}

Test(tsdb, allocation_failures_do_not_crash_or_corrupt)
{
    struct lset ls = LS("__name__", "oom", "job", "x");
    struct tsdb_sample s[300];
    for (int i = 0; i < 300; i++)
        s[i] = (struct tsdb_sample){ T0 + i * 1000LL, i };
    struct tsdb_opts o;
    tsdb_opts_default(&o);
    o.dir = dir;
    o.retention_ms = 0;
    /* Open under failure at every step. */
    for (uint64_t k = 1; k < 60; k++) {
        struct vg_err err = { 0 };
        vg_alloc_fail_after(k);
        struct tsdb *db = tsdb_open(&o, &err);
        vg_alloc_fail_after(0);
        if (db)
            tsdb_close(db);
        else
            cr_assert(err.code == VG_ENOMEM || err.code == VG_EIO, "code %d %s", err.code,
                      err.msg);
    }
    struct tsdb *db = open_db();
    size_t stored = 0;
    for (uint64_t k = 1; k < 40; k++) {
        struct tsdb_series_in in = { .labels = ls.l, .nlabels = ls.n, .samples = s + stored,
                                     .nsamples = 10 };
        struct tsdb_batch b = { .series = &in, .nseries = 1 };
        struct tsdb_append_result res;
        struct vg_err err = { 0 };
        vg_alloc_fail_after(k);
        int rc = tsdb_append(db, &b, &res, &err);
        struct matcher *m = NULL;
        struct tsdb_series_set *set = NULL;
        struct tsdb_sample *out = NULL;
        size_t n;
        m = matcher_new(MATCH_EQ, VG_STR("job"), VG_STR("x"), &err);
        if (m && tsdb_select(db, &m, 1, INT64_MIN, INT64_MAX, &set, &err) == 0)
            tsdb_series_set_free(set);
        tsdb_read(db, 1, INT64_MIN, INT64_MAX, &out, &n, &err);
        vg_free(out);
        struct tsdb_strings str;
        if (tsdb_label_names(db, NULL, 0, INT64_MIN, INT64_MAX, &str, &err) == 0)
            tsdb_strings_free(&str);
        tsdb_maintain(db, T0 + 10 * HOUR_MS, &err);
        vg_alloc_fail_after(0);
        matcher_free(m);
        cr_assert(rc == 0 || rc == VG_ENOMEM, "rc %d", rc);
        if (rc == 0 && res.accepted == 10)
            stored += 10;
        if (stored >= 290)
            break;
    }
    tsdb_close(db);
    db = open_db();
    struct tsdb_sample *out;
    size_t n = read_all(db, id_of(db, "oom"), INT64_MIN, INT64_MAX, &out);
    cr_assert_geq(n, stored, "%zu read, %zu acknowledged", n, stored);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(out[i].v, (double)i);
    vg_free(out);
    tsdb_close(db);
}

/* ---- concurrency ---- */

struct worker {
    struct tsdb *db;
    int no;
};

static void *appender(void *arg)
{
    struct worker *w = arg;
    char own[16];
    snprintf(own, sizeof own, "w%d", w->no);
    struct label lo[1] = { { VG_STR("__name__"), vg_str_c(own) } };
    struct label ls[1] = { { VG_STR("__name__"), VG_STR("shared") } };
    for (int i = 0; i < 300; i++) {
        struct tsdb_sample s1 = { T0 + i * 1000LL, i };
        struct tsdb_sample s2 = { T0 + (i * 4 + w->no) * 10LL, w->no };
        struct tsdb_series_in in[2] = {
            { .labels = lo, .nlabels = 1, .samples = &s1, .nsamples = 1 },
            { .labels = ls, .nlabels = 1, .samples = &s2, .nsamples = 1 },
        };
        struct tsdb_batch b = { .series = in, .nseries = 2 };
        struct tsdb_append_result res;
        struct vg_err err;
        if (tsdb_append(w->db, &b, &res, &err) != 0)
            return (void *)1;
    }
    return NULL;
}

Test(tsdb, concurrent_appenders_keep_every_sample)
{
    struct tsdb *db = open_opts(HOUR_MS, 0);
    pthread_t th[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){ db, i };
        pthread_create(&th[i], NULL, appender, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        cr_assert_null(ret);
    }
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "w%d", i);
        struct tsdb_sample *out;
        cr_assert_eq(read_all(db, id_of(db, name), INT64_MIN, INT64_MAX, &out), 300);
        vg_free(out);
    }
    struct tsdb_sample *out;
    size_t n = read_all(db, id_of(db, "shared"), INT64_MIN, INT64_MAX, &out);
    cr_assert_eq(n, 1200, "in-window out-of-order samples from racing writers");
    vg_free(out);
    tsdb_close(db);
    db = open_opts(HOUR_MS, 0);
    n = read_all(db, id_of(db, "shared"), INT64_MIN, INT64_MAX, &out);
    cr_assert_eq(n, 1200);
    vg_free(out);
    tsdb_close(db);
}

struct reader_arg {
    struct tsdb *db;
    _Atomic int stop;
    int bad;
};

static void *reader(void *arg)
{
    struct reader_arg *r = arg;
    while (!r->stop) {
        struct vg_err err;
        struct matcher *m = matcher_new(MATCH_RE, VG_STR("__name__"), VG_STR("w.*"), &err);
        struct tsdb_series_set *set;
        if (tsdb_select(r->db, &m, 1, INT64_MIN, INT64_MAX, &set, &err) == 0) {
            for (size_t i = 0; i < set->n; i++) {
                struct tsdb_sample *out;
                size_t n;
                if (tsdb_read(r->db, set->v[i].id, INT64_MIN, INT64_MAX, &out, &n, &err) != 0)
                    r->bad++;
                /* A series' samples are 0, 1, 2, ... at T0 + i s: a prefix, no gaps. */
                for (size_t j = 0; j < n; j++)
                    if (out[j].v != (double)j || out[j].t != T0 + (int64_t)j * 1000)
                        r->bad++;
                vg_free(out);
            }
            tsdb_series_set_free(set);
        }
        matcher_free(m);
    }
    return NULL;
}

Test(tsdb, maintenance_thread_races_appenders_and_readers)
{
    struct tsdb_opts o;
    tsdb_opts_default(&o);
    o.dir = dir;
    o.retention_ms = 0;
    o.ooo_window_ms = HOUR_MS;
    o.maint_interval_ms = 2; /* flushes every idle head (T0 is long ago) all the time */
    struct vg_err err = { 0 };
    struct tsdb *db = tsdb_open(&o, &err);
    cr_assert_not_null(db, "%s", err.msg);
    struct reader_arg ra = { db, 0, 0 };
    pthread_t rt, th[3];
    pthread_create(&rt, NULL, reader, &ra);
    struct worker w[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (struct worker){ db, i };
        pthread_create(&th[i], NULL, appender, &w[i]);
    }
    for (int i = 0; i < 3; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        cr_assert_null(ret);
    }
    ra.stop = 1;
    pthread_join(rt, NULL);
    cr_assert_eq(ra.bad, 0);
    tsdb_close(db);
    db = open_opts(HOUR_MS, 0);
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "w%d", i);
        struct tsdb_sample *out;
        cr_assert_eq(read_all(db, id_of(db, name), INT64_MIN, INT64_MAX, &out), 300);
        vg_free(out);
    }
    struct tsdb_sample *out;
    cr_assert_eq(read_all(db, id_of(db, "shared"), INT64_MIN, INT64_MAX, &out), 900);
    vg_free(out);
    tsdb_close(db);
}

Test(tsdb, one_series_twice_in_a_batch_is_merged)
{
    struct tsdb *db = open_db();
    struct lset ls = LS("__name__", "twice");
    struct tsdb_sample a[] = { { T0 + 2000, 2 }, { T0, 0 } };
    struct tsdb_sample b[] = { { T0 + 1000, 1 }, { T0 + 2000, 2 } };
    struct tsdb_series_in in[2] = {
        { .labels = ls.l, .nlabels = ls.n, .samples = a, .nsamples = 2 },
        { .labels = ls.l, .nlabels = ls.n, .samples = b, .nsamples = 2 },
    };
    struct tsdb_batch batch = { .series = in, .nseries = 2 };
    struct tsdb_append_result res;
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_append(db, &batch, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(res.accepted, 3);
    cr_assert_eq(res.duplicates, 1);
    cr_assert_eq(res.series_created, 1);
    struct tsdb_sample *out;
    size_t n = read_all(db, id_of(db, "twice"), INT64_MIN, INT64_MAX, &out);
    cr_assert_eq(n, 3);
    cr_assert_eq(out[1].v, 1);
    vg_free(out);
    /* An empty batch and a series without samples are fine and create nothing. */
    struct tsdb_series_in empty = { .labels = ls.l, .nlabels = ls.n };
    batch = (struct tsdb_batch){ .series = &empty, .nseries = 1 };
    cr_assert_eq(tsdb_append(db, &batch, &res, &err), 0);
    cr_assert_eq(res.accepted + res.series_created, 0);
    batch.nseries = 0;
    cr_assert_eq(tsdb_append(db, &batch, &res, &err), 0);
    /* Unknown ids read as empty. */
    size_t got = 7;
    cr_assert_eq(tsdb_read(db, 999, INT64_MIN, INT64_MAX, &out, &got, &err), 0);
    cr_assert_eq(got, 0);
    tsdb_close(db);
}

/* Regression: the first append of a fresh store carrying only metadata (remote write
 * sends such requests) wrote through a NULL offsets array. */
Test(tsdb, metadata_only_batch_as_first_append)
{
    struct tsdb *db = open_db();
    struct tsdb_metadata md = { .metric = VG_STR("jobs_total"), .type = TSDB_TYPE_COUNTER,
                                .help = VG_STR("Jobs."), .unit = VG_STR("") };
    struct tsdb_batch b = { .meta = &md, .nmeta = 1 };
    struct tsdb_append_result res;
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_append(db, &b, &res, &err), 0, "%s", err.msg);
    enum tsdb_metric_type type;
    char help[16], unit[4];
    cr_assert(tsdb_metadata_get(db, "jobs_total", &type, help, sizeof help, unit, sizeof unit));
    cr_assert_str_eq(help, "Jobs.");
    struct tsdb_metadata md2 = { .metric = VG_STR("a_seconds"), .type = TSDB_TYPE_HISTOGRAM,
                                 .help = VG_STR("Latency."), .unit = VG_STR("seconds") };
    struct tsdb_batch b2 = { .meta = &md2, .nmeta = 1 };
    cr_assert_eq(tsdb_append(db, &b2, &res, &err), 0, "%s", err.msg);
    struct tsdb_strings names;
    cr_assert_eq(tsdb_metadata_names(db, &names, &err), 0, "%s", err.msg);
    cr_assert_eq(names.n, 2, "families with metadata, not series names");
    cr_assert_str_eq(names.v[0], "a_seconds");
    cr_assert_str_eq(names.v[1], "jobs_total");
    tsdb_strings_free(&names);
    tsdb_close(db);
}

/* Regression: per-batch scratch arrays grew to different capacities, so a batch a little
 * larger than an earlier one overran the smaller array. */
Test(tsdb, growing_batch_sizes_keep_every_series)
{
    struct tsdb *db = open_db();
    static const size_t sizes[] = { 1, 16, 17, 20, 33, 31, 64, 100 };
    size_t created = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        struct label *ls = calloc(n * 2, sizeof *ls);
        char (*vals)[48] = calloc(n, 48);
        struct tsdb_series_in *in = calloc(n, sizeof *in);
        struct tsdb_sample *s = calloc(n, sizeof *s);
        for (size_t i = 0; i < n; i++) {
            snprintf(vals[i], 48, "%zu-%zu", k, i);
            ls[2 * i] = (struct label){ VG_STR("__name__"), VG_STR("grow") };
            ls[2 * i + 1] = (struct label){ VG_STR("i"), vg_str_c(vals[i]) };
            s[i] = (struct tsdb_sample){ T0 + (int64_t)k, (double)i };
            in[i] = (struct tsdb_series_in){ .labels = &ls[2 * i], .nlabels = 2, .samples = &s[i],
                                             .nsamples = 1 };
        }
        struct tsdb_batch b = { .series = in, .nseries = n };
        struct tsdb_append_result res;
        struct vg_err err = { 0 };
        cr_assert_eq(tsdb_append(db, &b, &res, &err), 0, "%s", err.msg);
        cr_assert_eq(res.accepted, n);
        created += res.series_created;
        free(ls);
        free(vals);
        free(in);
        free(s);
    }
    struct matcher *m = M(MATCH_EQ, "__name__", "grow");
    cr_assert_eq(count_select(db, &m, 1, INT64_MIN, INT64_MAX), created);
    cr_assert_eq(created, 1 + 16 + 17 + 20 + 33 + 31 + 64 + 100);
    matcher_free(m);
    tsdb_close(db);
}

/* A reader steps its iterator forward from where the last read stopped when the next
 * series' chunks are near (reads in id order) and seeks otherwise: every order of reads
 * and every window must give what a fresh tsdb_read gives, out-of-order chunks too. */
Test(tsdb, reader_reads_in_any_order_match_fresh_reads)
{
    struct tsdb *db = open_opts(30 * MIN_MS, 0);
    enum { NS = 24, NPTS = 600 };
    static struct tsdb_sample s[NPTS];
    uint64_t ids[NS];
    for (int k = 0; k < NS; k++) {
        char name[8];
        snprintf(name, sizeof name, "s%02d", k);
        struct lset ls = LS("__name__", name);
        for (int i = 0; i < NPTS; i++) /* 150 min at 15 s, every 16th kept back */
            s[i] = (struct tsdb_sample){ T0 + i * 15000LL + (i % 16 == 5 ? 1 : 0), i * k };
        size_t n = 0;
        for (int i = 0; i < NPTS; i++)
            if (k % 3 != 0 || i % 16 != 5)
                s[n++] = s[i];
        cr_assert_eq(append1(db, &ls, s, n).accepted, n);
        if (k % 3 == 0) { /* the kept-back samples of the last 20 min, out of order */
            size_t m = 0;
            for (int i = NPTS - 80; i < NPTS; i++)
                if (i % 16 == 5)
                    s[m++] = (struct tsdb_sample){ T0 + i * 15000LL + 1, -i };
            cr_assert_eq(append1(db, &ls, s, m).accepted, m);
        }
        ids[k] = id_of(db, name);
    }
    struct vg_err err = { 0 };
    for (int phase = 0; phase < 2; phase++) {
        if (phase == 1) /* everything on disk */
            cr_assert_eq(tsdb_compact(db, &err), 0, "%s", err.msg);
        for (int order = 0; order < 3; order++) {
            for (int64_t w = 0; w < 150; w += 17) {
                int64_t mint = T0 + w * MIN_MS - 1, maxt = mint + (w % 2 ? 5 : 40) * MIN_MS;
                struct tsdb_reader *r = tsdb_reader_new(db);
                cr_assert_not_null(r);
                for (int j = 0; j < NS + 4; j++) {
                    int k = order == 0 ? j % NS : order == 1 ? NS - 1 - j % NS : (j / 2) % NS;
                    struct tsdb_sample *got, *want;
                    size_t ng, nw = read_all(db, ids[k], mint, maxt, &want);
                    cr_assert_eq(tsdb_reader_read(r, ids[k], mint, maxt, &got, &ng, &err), 0,
                                 "%s", err.msg);
                    cr_assert_eq(ng, nw, "phase %d order %d window %lld series %d: %zu, want %zu",
                                 phase, order, (long long)w, k, ng, nw);
                    for (size_t i = 0; i < ng; i++)
                        cr_assert(got[i].t == want[i].t && got[i].v == want[i].v);
                    vg_free(got);
                    vg_free(want);
                }
                tsdb_reader_free(r);
            }
        }
    }
    tsdb_close(db);
}

/* Counts keys by first byte, and posting entries that are blocks (kv opened directly). */
static void key_families(size_t counts[256], size_t *blocks)
{
    struct vg_err err = { 0 };
    struct kv *kv = kv_open(dir, NULL, &err);
    cr_assert_not_null(kv, "%s", err.msg);
    struct kv_iter *it = kv_iter_new(kv, NULL, false);
    memset(counts, 0, 256 * sizeof counts[0]);
    *blocks = 0;
    for (kv_iter_seek_first(it); kv_iter_valid(it); kv_iter_next(it)) {
        size_t kl;
        const char *k = kv_iter_key(it, &kl);
        counts[(unsigned char)k[0]]++;
        *blocks += k[0] == 'P' && kl > 9 && k[kl - 9] == 1;
    }
    kv_iter_free(it);
    kv_close(kv);
}

/* Compaction packs the postings into blocks; selections and label listings are the
 * same before and after, also for series created after the pack, and across a reopen.
 * No labels -> id key is stored. */
Test(tsdb, compact_packs_postings_and_keeps_selections)
{
    struct tsdb *db = open_db();
    add_series(db);
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_compact(db, &err), 0, "%s", err.msg);
    struct lset e = LS("__name__", "http_requests", "job", "api", "path", "/new");
    append_one(db, &e, T0 + 4000, 5);
    struct matcher *name = M(MATCH_EQ, "__name__", "http_requests");
    struct matcher *api = M(MATCH_EQ, "job", "api");
    struct matcher *re = M(MATCH_RE, "path", "/.*");
    struct matcher *ms[] = { name, api, re };
    cr_assert_eq(count_select(db, ms, 1, INT64_MIN, INT64_MAX), 4);
    cr_assert_eq(count_select(db, ms, 3, INT64_MIN, INT64_MAX), 3);
    struct tsdb_strings s;
    cr_assert_eq(tsdb_label_values(db, "path", NULL, 0, INT64_MIN, INT64_MAX, &s, &err), 0);
    cr_assert_eq(s.n, 3);
    cr_assert_str_eq(s.v[2], "/new");
    tsdb_strings_free(&s);
    tsdb_close(db);

    size_t fam[256], blocks;
    key_families(fam, &blocks);
    cr_assert_eq(fam['L'], 0);
    cr_assert_eq(fam['S'], 5);
    cr_assert_eq(blocks, 8, "the 8 pairs of the first 4 series");
    cr_assert_eq(fam['P'], 8 + 3, "one-id keys of the series added after the pack");

    db = open_db();
    cr_assert_eq(count_select(db, ms, 3, INT64_MIN, INT64_MAX), 3);
    cr_assert_eq(tsdb_compact(db, &err), 0, "%s", err.msg);
    cr_assert_eq(count_select(db, ms, 1, INT64_MIN, INT64_MAX), 4);
    tsdb_close(db);
    key_families(fam, &blocks);
    cr_assert_eq(fam['P'], 9);
    cr_assert_eq(blocks, 9, "path=/new got its block");
    for (size_t i = 0; i < 3; i++)
        matcher_free(ms[i]);
}

/* A maintenance round packs the postings once enough series are new (1000 and an
 * eighth of all), and not again before that. */
Test(tsdb, maintenance_packs_postings_after_many_new_series)
{
    struct tsdb *db = open_db();
    enum { N = 1200 };
    static char names[N][16];
    static struct tsdb_series_in in[N];
    static struct label ls[N][2];
    struct tsdb_sample smp = { T0, 1 };
    for (size_t i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "i%04zu", i);
        ls[i][0] = (struct label){ VG_STR("__name__"), VG_STR("up") };
        ls[i][1] = (struct label){ VG_STR("instance"), vg_str_c(names[i]) };
        in[i] = (struct tsdb_series_in){ .labels = ls[i], .nlabels = 2, .samples = &smp,
                                         .nsamples = 1 };
    }
    struct tsdb_batch b = { .series = in, .nseries = 999 };
    struct tsdb_append_result res;
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_append(db, &b, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(tsdb_maintain(db, T0, &err), 0, "%s", err.msg);
    tsdb_close(db);
    size_t fam[256], blocks;
    key_families(fam, &blocks);
    cr_assert_eq(blocks, 0, "999 new series are not enough");

    db = open_db();
    b = (struct tsdb_batch){ .series = in + 999, .nseries = N - 999 };
    cr_assert_eq(tsdb_append(db, &b, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(tsdb_maintain(db, T0, &err), 0, "%s", err.msg);
    struct matcher *m = M(MATCH_EQ, "__name__", "up");
    cr_assert_eq(count_select(db, &m, 1, INT64_MIN, INT64_MAX), N);
    matcher_free(m);
    tsdb_close(db);
    key_families(fam, &blocks);
    cr_assert_eq(fam['P'], 1 + N, "__name__=up in one block, each instance in its own");
    cr_assert_eq(blocks, fam['P']);
}

struct new_series_arg {
    struct tsdb *db;
    int fail;
};

/* Creates 600 series job="j", instance="iNNN", ten per append. */
static void *new_series(void *arg)
{
    struct new_series_arg *a = arg;
    static char inst[600][8];
    for (int i = 0; i < 600 && !a->fail; i += 10) {
        struct label ls[10][2];
        struct tsdb_series_in in[10];
        struct tsdb_sample s = { T0, 1 };
        for (int j = 0; j < 10; j++) {
            snprintf(inst[i + j], sizeof inst[0], "i%03d", i + j);
            ls[j][0] = (struct label){ VG_STR("instance"), vg_str_c(inst[i + j]) };
            ls[j][1] = (struct label){ VG_STR("job"), VG_STR("j") };
            in[j] = (struct tsdb_series_in){ .labels = ls[j], .nlabels = 2, .samples = &s,
                                             .nsamples = 1 };
        }
        struct tsdb_batch b = { .series = in, .nseries = 10 };
        struct tsdb_append_result res;
        struct vg_err err;
        a->fail = tsdb_append(a->db, &b, &res, &err) != 0;
    }
    return NULL;
}

/* Packing (each compaction) while series are created and selected: a selection never
 * loses a series it saw before, and in the end every series is found. */
Test(tsdb, packing_races_new_series_and_selections)
{
    struct tsdb *db = open_db();
    struct new_series_arg a = { db, 0 };
    pthread_t th;
    pthread_create(&th, NULL, new_series, &a);
    struct matcher *m = M(MATCH_EQ, "job", "j");
    size_t seen = 0;
    struct vg_err err = { 0 };
    for (int round = 0; round < 200 && seen < 600; round++) {
        cr_assert_eq(tsdb_compact(db, &err), 0, "%s", err.msg);
        size_t n = count_select(db, &m, 1, INT64_MIN, INT64_MAX);
        cr_assert_geq(n, seen, "round %d: %zu series, %zu before", round, n, seen);
        seen = n;
    }
    pthread_join(th, NULL);
    cr_assert_eq(a.fail, 0);
    cr_assert_eq(tsdb_compact(db, &err), 0, "%s", err.msg);
    cr_assert_eq(count_select(db, &m, 1, INT64_MIN, INT64_MAX), 600);
    matcher_free(m);
    tsdb_close(db);
}

/* A series retention drops after its postings were packed leaves no trace: its label
 * value is not listed, its pair's entries are gone, other series stay selectable. */
Test(tsdb, retention_after_packing_removes_the_dropped_series_from_blocks)
{
    struct tsdb *db = open_opts(30 * MIN_MS, 24 * HOUR_MS);
    struct lset old = LS("__name__", "old", "job", "x");
    struct lset cur = LS("__name__", "cur", "job", "x");
    int64_t now = (int64_t)time(NULL) * 1000;
    for (int i = 0; i < 5; i++)
        append_one(db, &old, now - 3 * 24 * HOUR_MS + i * 60000LL, i);
    append_one(db, &cur, now - 10 * MIN_MS, 1);
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_compact(db, &err), 0, "%s", err.msg);
    cr_assert_eq(tsdb_maintain(db, now, &err), 0, "%s", err.msg);
    struct tsdb_strings s;
    cr_assert_eq(tsdb_label_values(db, "__name__", NULL, 0, INT64_MIN, INT64_MAX, &s, &err), 0);
    cr_assert_eq(s.n, 1);
    cr_assert_str_eq(s.v[0], "cur");
    tsdb_strings_free(&s);
    struct matcher *m = M(MATCH_EQ, "job", "x");
    cr_assert_eq(count_select(db, &m, 1, INT64_MIN, INT64_MAX), 1);
    matcher_free(m);
    tsdb_close(db);
    size_t fam[256], blocks;
    key_families(fam, &blocks);
    cr_assert_eq(fam['P'], 2, "__name__=cur and job=x");
    cr_assert_eq(blocks, 2);
}

/* Sets the store's "#version" key (the store must be closed). */
static void set_version(const char *v)
{
    struct vg_err err = { 0 };
    struct kv_opts ko = { 0 };
    struct kv *kv = kv_open(dir, &ko, &err);
    cr_assert_not_null(kv, "%s", err.msg);
    cr_assert_eq(kv_put(kv, "#version", 8, v, strlen(v), true, &err), 0, "%s", err.msg);
    kv_close(kv);
}

static void expect_version(const char *want)
{
    struct vg_err err = { 0 };
    struct kv_opts ko = { 0 };
    struct kv *kv = kv_open(dir, &ko, &err);
    cr_assert_not_null(kv, "%s", err.msg);
    struct vg_buf v;
    vg_buf_init(&v);
    cr_assert_eq(kv_get(kv, NULL, "#version", 8, &v, &err), 0, "%s", err.msg);
    cr_assert_eq(v.len, strlen(want));
    cr_assert(memcmp(v.p, want, v.len) == 0);
    vg_buf_free(&v);
    kv_close(kv);
}

/* A version-1 store opens (its data read as before) and is marked version 2, so that an
 * older binary refuses it; an unknown version is refused with a message naming it. */
Test(tsdb, format_version_upgrades_1_and_refuses_unknown)
{
    struct tsdb *db = open_opts(0, 0);
    tsdb_close(db);
    expect_version("2");
    set_version("1");
    db = open_opts(0, 0);
    tsdb_close(db);
    expect_version("2");
    set_version("7");
    struct tsdb_opts o;
    tsdb_opts_default(&o);
    o.dir = dir;
    struct vg_err err = { 0 };
    cr_assert_null(tsdb_open(&o, &err));
    cr_assert(strstr(err.msg, "unsupported format version \"7\""), "%s", err.msg);
}

/* tsdb_append_enc: a series given with its canonical encoding is the same series as one
 * encoded by the store (found by either way of appending, stored with the same labels
 * across a reopen), and entries without an encoding are encoded as by tsdb_append. */
Test(tsdb, append_enc_matches_append)
{
    struct tsdb *db = open_db();
    struct lset a = LS("__name__", "up", "job", "a"), b = LS("__name__", "up", "job", "b");
    struct vg_buf ea;
    vg_buf_init(&ea);
    labels_encode(a.l, a.n, &ea);
    struct tsdb_sample s[2] = { { T0, 1 }, { T0, 2 } };
    struct tsdb_series_in in[2] = {
        { .labels = a.l, .nlabels = a.n, .samples = &s[0], .nsamples = 1 },
        { .labels = b.l, .nlabels = b.n, .samples = &s[1], .nsamples = 1 },
    };
    struct vg_str enc[2] = { { ea.p, ea.len }, { NULL, 0 } };
    struct tsdb_batch batch = { .series = in, .nseries = 2 };
    struct tsdb_append_result res;
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_append_enc(db, &batch, enc, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(res.accepted, 2);
    cr_assert_eq(res.series_created, 2);
    /* The plain path finds both series; the encoded path finds b's. */
    cr_assert_eq(append_one(db, &a, T0 + 1000, 3).series_created, 0);
    in[1].samples = &(struct tsdb_sample){ T0 + 1000, 4 };
    batch = (struct tsdb_batch){ .series = &in[1], .nseries = 1 };
    struct vg_buf eb;
    vg_buf_init(&eb);
    labels_encode(b.l, b.n, &eb);
    enc[0] = (struct vg_str){ eb.p, eb.len };
    cr_assert_eq(tsdb_append_enc(db, &batch, enc, &res, &err), 0, "%s", err.msg);
    cr_assert_eq(res.series_created, 0);
    tsdb_close(db);
    db = open_db();
    struct matcher *m = M(MATCH_EQ, "job", "a");
    cr_assert_eq(count_select(db, &m, 1, INT64_MIN, INT64_MAX), 1);
    matcher_free(m);
    m = M(MATCH_EQ, "__name__", "up");
    struct tsdb_series_set *set;
    cr_assert_eq(tsdb_select(db, &m, 1, INT64_MIN, INT64_MAX, &set, &err), 0, "%s", err.msg);
    cr_assert_eq(set->n, 2);
    for (size_t i = 0; i < set->n; i++) {
        struct tsdb_sample *got;
        cr_assert_eq(read_all(db, set->v[i].id, INT64_MIN, INT64_MAX, &got), 2);
        vg_free(got);
        cr_assert_eq(set->v[i].nlabels, 2);
    }
    tsdb_series_set_free(set);
    matcher_free(m);
    vg_buf_free(&ea);
    vg_buf_free(&eb);
    tsdb_close(db);
}

/* The "tsdb-maint" thread (a vg_ticker) runs its first round one interval after open,
 * not at open, and then keeps running: samples from 2023 are far older than the head's
 * flush age, so a round writes them as chunks. */
Test(tsdb, maintenance_thread_runs_one_interval_after_open)
{
    struct tsdb_opts o;
    tsdb_opts_default(&o);
    o.dir = dir;
    o.retention_ms = 0;
    o.maint_interval_ms = 300;
    struct vg_err err = { 0 };
    struct tsdb *db = tsdb_open(&o, &err);
    cr_assert_not_null(db, "%s", err.msg);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct lset ls = LS("__name__", "up", "job", "a");
    append1(db, &ls, &(struct tsdb_sample){ T0, 1 }, 1);
    struct tsdb_stats st;
    tsdb_stats(db, &st);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 250)
        cr_assert_eq(st.chunks_persisted, 0, "no round at open");
    for (int i = 0; i < 1000 && st.chunks_persisted == 0; i++) {
        nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
        tsdb_stats(db, &st);
    }
    cr_assert_gt(st.chunks_persisted, 0, "a round wrote the old head chunk");
    append1(db, &ls, &(struct tsdb_sample){ T0 + 1000, 2 }, 1);
    uint64_t before = st.chunks_persisted;
    for (int i = 0; i < 1000 && st.chunks_persisted == before; i++) {
        nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
        tsdb_stats(db, &st);
    }
    cr_assert_gt(st.chunks_persisted, before, "later rounds run too");
    tsdb_close(db);
}
