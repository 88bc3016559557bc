/* eval_fixture: shared by the evaluator's unit tests (test_eval.c, test_binop.c,
 * test_aggregate.c, test_funcs.c, test_engine.c). An in-memory querier over series
 * loaded in the PromQL test-file notation, and helpers that run a query and print the
 * result as sorted text lines:
 *   vector  `name{a="b"} 1.5`          (sorted unless the result is ordered)
 *   matrix  `name{a="b"} 1@60 2@120`   (value@seconds)
 *   scalar  `scalar 3`
 *   string  `string "x"`
 * Values use %.10g, so 1/3 prints 0.3333333333. */
#ifndef EVAL_FIXTURE_H
#define EVAL_FIXTURE_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../../../server/promql/engine.h"
#include "../../../../server/promql/selector.h"
#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/base/vg_buf.h"

struct fx_series {
    struct label *ls;
    size_t nls;
    struct tsdb_sample *s;
    size_t n;
};

static struct {
    struct fx_series v[64];
    size_t n;
    int select_calls;
    int sleep_ms; /* each select sleeps this long (timeout tests) */
} fx;

static struct promql_opts fx_opts;
static struct vg_err fx_err;
static char fx_out[16384];

static char *fx_strdup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

static void fx_reset(void)
{
    for (size_t i = 0; i < fx.n; i++) {
        for (size_t j = 0; j < fx.v[i].nls; j++) {
            free((void *)fx.v[i].ls[j].name.p);
            free((void *)fx.v[i].ls[j].value.p);
        }
        free(fx.v[i].ls);
        free(fx.v[i].s);
    }
    memset(&fx, 0, sizeof fx);
    promql_opts_default(&fx_opts);
    vg_err_clear(&fx_err);
    vg_alloc_fail_after(0);
}

static int fx_series_cmp(const void *a, const void *b)
{
    const struct fx_series *x = a, *y = b;
    return labels_cmp(x->ls, x->nls, y->ls, y->nls);
}

/* Adds a series: `metric{a="b"}` and values in test-file notation ("0+10x5 _ stale 3"),
 * sample i at i * step_ms. */
static void fx_load(const char *series, int64_t step_ms, const char *values)
{
    struct selector sel = { 0 };
    struct vg_err e;
    cr_assert_eq(selector_parse(series, strlen(series), &sel, &e), 0, "%s", e.msg);
    struct fx_series *fs = &fx.v[fx.n++];
    fs->ls = calloc(sel.n, sizeof *fs->ls);
    for (size_t i = 0; i < sel.n; i++) {
        fs->ls[i].name = (struct vg_str){ fx_strdup(sel.ms[i]->name, strlen(sel.ms[i]->name)),
                                          strlen(sel.ms[i]->name) };
        fs->ls[i].value = (struct vg_str){ fx_strdup(sel.ms[i]->value, sel.ms[i]->value_len),
                                           sel.ms[i]->value_len };
    }
    fs->nls = sel.n;
    labels_sort(fs->ls, fs->nls);
    selector_free(&sel);
    fs->s = calloc(4096, sizeof *fs->s);
    size_t idx = 0;
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", values);
    for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " ")) {
        if (!strcmp(tok, "_")) {
            idx++;
            continue;
        }
        if (!strncmp(tok, "_x", 2)) {
            idx += (size_t)atoi(tok + 2);
            continue;
        }
        if (!strcmp(tok, "stale")) {
            uint64_t bits = TSDB_STALE_NAN_BITS;
            double v;
            memcpy(&v, &bits, sizeof v);
            fs->s[fs->n++] = (struct tsdb_sample){ (int64_t)idx++ * step_ms, v };
            continue;
        }
        char *x = strchr(tok + 1, 'x');
        double a, d = 0;
        long cnt = 0;
        if (x) {
            *x = 0;
            cnt = atol(x + 1);
            char *sign = NULL;
            for (char *p = tok + 1; *p; p++)
                if ((*p == '+' || *p == '-') && p[-1] != 'e')
                    sign = p;
            if (sign) {
                d = strtod(sign, NULL);
                *sign = 0;
            }
        }
        a = strtod(tok, NULL);
        for (long i = 0; i <= cnt; i++)
            fs->s[fs->n++] = (struct tsdb_sample){ (int64_t)idx++ * step_ms, a + d * (double)i };
    }
    qsort(fx.v, fx.n, sizeof fx.v[0], fx_series_cmp);
}

struct fx_set {
    struct querier_set pub;
    struct querier_series v[64];
};

static int fx_select(void *ctx, struct matcher *const *ms, size_t nms, int64_t mint,
                     int64_t maxt, uint64_t max_samples, uint64_t *loaded,
                     struct querier_set **out, struct vg_err *err)
{
    (void)ctx;
    fx.select_calls++;
    if (fx.sleep_ms) {
        struct timespec ts = { 0, (long)fx.sleep_ms * 1000000L };
        nanosleep(&ts, NULL);
    }
    struct fx_set *set = vg_calloc(1, sizeof *set);
    if (!set)
        return vg_err_set(err, VG_ENOMEM, "fake querier: out of memory");
    set->pub.v = set->v;
    set->pub.priv = set;
    for (size_t i = 0; i < fx.n; i++) {
        const struct fx_series *fs = &fx.v[i];
        bool ok = true;
        for (size_t j = 0; j < nms && ok; j++) {
            struct vg_str v = labels_get(fs->ls, fs->nls, ms[j]->name);
            ok = matcher_matches(ms[j], v);
        }
        if (!ok)
            continue;
        size_t lo = 0, hi;
        while (lo < fs->n && fs->s[lo].t < mint)
            lo++;
        for (hi = lo; hi < fs->n && fs->s[hi].t <= maxt; hi++)
            ;
        if (hi == lo)
            continue;
        *loaded += hi - lo;
        if (max_samples && *loaded > max_samples) {
            vg_free(set);
            return vg_err_set(err, VG_ETOOLARGE, "fake querier: too many samples");
        }
        set->v[set->pub.n++] = (struct querier_series){ fs->ls, fs->nls, fs->s + lo, hi - lo };
    }
    *out = &set->pub;
    return 0;
}

static void fx_set_free(void *ctx, struct querier_set *s)
{
    (void)ctx;
    vg_free(s ? s->priv : NULL);
}

static struct querier fx_q = { NULL, fx_select, fx_set_free };

static void fx_labels(char *b, size_t cap, const struct label *ls, size_t n)
{
    size_t at = 0;
    struct vg_str name = labels_get(ls, n, "__name__");
    if (name.p)
        at += (size_t)snprintf(b + at, cap - at, "%.*s", (int)name.len, name.p);
    at += (size_t)snprintf(b + at, cap - at, "{");
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (vg_str_eq_c(ls[i].name, "__name__"))
            continue;
        at += (size_t)snprintf(b + at, cap - at, "%s%.*s=\"%.*s\"", first ? "" : ", ",
                               (int)ls[i].name.len, ls[i].name.p, (int)ls[i].value.len,
                               ls[i].value.p);
        first = false;
    }
    snprintf(b + at, cap - at, "}");
}

/* %.10g, with Prometheus's spellings of NaN and the infinities. */
static const char *fx_num(double v, char *b)
{
    if (isnan(v))
        return "NaN";
    if (isinf(v))
        return v > 0 ? "+Inf" : "-Inf";
    snprintf(b, 32, "%.10g", v);
    return b;
}

static int fx_line_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Formats r into fx_out. */
static const char *fx_format(const struct promql_result *r)
{
    char *lines[256];
    size_t nl = 0;
    fx_out[0] = 0;
    if (r->type == PT_SCALAR) {
        char nb[32];
        snprintf(fx_out, sizeof fx_out, "scalar %s", fx_num(r->scalar.v, nb));
        return fx_out;
    }
    if (r->type == PT_STRING) {
        snprintf(fx_out, sizeof fx_out, "string \"%s\"", r->string);
        return fx_out;
    }
    for (size_t i = 0; i < r->nseries && nl < 256; i++) {
        const struct promql_series *s = &r->series[i];
        char line[2048];
        fx_labels(line, sizeof line, s->labels, s->nlabels);
        size_t at = strlen(line);
        for (size_t j = 0; j < s->npoints && at + 64 < sizeof line; j++) {
            char nb[32];
            if (r->type == PT_VECTOR)
                at += (size_t)snprintf(line + at, sizeof line - at, " %s",
                                       fx_num(s->points[j].v, nb));
            else
                at += (size_t)snprintf(line + at, sizeof line - at, " %s@%g",
                                       fx_num(s->points[j].v, nb),
                                       (double)s->points[j].t / 1000.0);
        }
        lines[nl++] = strdup(line);
    }
    if (!r->ordered)
        qsort(lines, nl, sizeof *lines, fx_line_cmp);
    size_t at = 0;
    for (size_t i = 0; i < nl; i++) {
        at += (size_t)snprintf(fx_out + at, sizeof fx_out - at, "%s%s", i ? "\n" : "", lines[i]);
        free(lines[i]);
    }
    return fx_out;
}

static struct promql_result *fx_last;

/* Runs an instant query at t seconds; returns the formatted result, or "error: <msg>". */
static const char *fx_instant(const char *q, double t)
{
    promql_result_free(fx_last);
    fx_last = NULL;
    vg_err_clear(&fx_err);
    struct promql_expr *e = promql_parse(q, strlen(q), &fx_err);
    if (!e) {
        snprintf(fx_out, sizeof fx_out, "parse error: %s", fx_err.msg);
        return fx_out;
    }
    int rc = promql_eval_instant(&fx_opts, &fx_q, e, (int64_t)(t * 1000), &fx_last, &fx_err);
    promql_expr_free(e);
    if (rc) {
        snprintf(fx_out, sizeof fx_out, "error: %s", fx_err.msg);
        return fx_out;
    }
    return fx_format(fx_last);
}

static const char *fx_range(const char *q, double start, double end, double step)
{
    promql_result_free(fx_last);
    fx_last = NULL;
    vg_err_clear(&fx_err);
    struct promql_expr *e = promql_parse(q, strlen(q), &fx_err);
    if (!e) {
        snprintf(fx_out, sizeof fx_out, "parse error: %s", fx_err.msg);
        return fx_out;
    }
    int rc = promql_eval_range(&fx_opts, &fx_q, e, (int64_t)(start * 1000),
                               (int64_t)(end * 1000), (int64_t)(step * 1000), &fx_last, &fx_err);
    promql_expr_free(e);
    if (rc) {
        snprintf(fx_out, sizeof fx_out, "error: %s", fx_err.msg);
        return fx_out;
    }
    return fx_format(fx_last);
}

static void fx_fini(void)
{
    promql_result_free(fx_last);
    fx_last = NULL;
    fx_reset();
}

#define EXPECT_INSTANT(q, t, want) cr_assert_str_eq(fx_instant(q, t), want, "query: %s", q)
#define EXPECT_RANGE(q, s, e, st, want) cr_assert_str_eq(fx_range(q, s, e, st), want, "query: %s", q)

#endif
