/* Fuzz target for the PromQL evaluator (server/promql/engine.c, eval.c, binop.c,
 * aggregate.c, funcs.c, kernels.c): arbitrary bytes as a query, parsed and, when it
 * parses, evaluated three times over a small fixed in-memory dataset through a fake
 * querier with tight limits (50,000 samples, 100 points per series, 500 ms):
 *   - as an instant query at 20m (Prometheus 3's default name removal),
 *   - as a range query from 5m to 25m every 2m (delayed name removal),
 *   - as an instant query again with the Nth allocation failing (N from the input), so
 *     every error path is walked for leaks.
 * A failure must carry one of the codes engine.h documents for bad input or limits
 * (never VG_EINTERNAL) and a message; a result must be well formed: one point per vector
 * series, matrix points in time order inside the range, labels sorted, no two series
 * with one label set.
 *
 * The dataset (built once): counters with a reset, gauges with NaN, +Inf and staleness
 * markers, classic histogram buckets (and a malformed le), info-style series for
 * group_left, a UTF-8 label name, samples every 15 s (one series at odd milliseconds)
 * over 30 minutes; metric names follow the parser's seed corpus. */
#include "../../server/promql/engine.h"
#include "../../storage/base/vg_alloc.h"

#include "fuzz_check.h"
#include <math.h>
#include <stdint.h>
#include <string.h>

#define NPTS 121 /* 0 .. 30m every 15 s */
#define MIN_MS INT64_C(60000)
#define MAXLS 5

struct ds_series {
    const char *kv[MAXLS * 2]; /* name, value pairs; NULL ends */
    int kind;                  /* how the values are generated (gen below) */
};

static const struct ds_series spec[] = {
    { { "__name__", "http_requests_total", "job", "api", "instance", "a:9090", "code", "200" }, 0 },
    { { "__name__", "http_requests_total", "job", "web", "instance", "b:9090", "code", "500" }, 1 },
    { { "__name__", "up", "job", "prometheus", "instance", "a:9090" }, 2 },
    { { "__name__", "up", "job", "api", "instance", "b:9090" }, 3 },
    { { "__name__", "x", "a", "1" }, 4 },
    { { "__name__", "x", "a", "2" }, 5 },
    { { "__name__", "node_cpu_seconds_total", "mode", "idle", "instance", "a:9090" }, 0 },
    { { "__name__", "http_request_duration_seconds_bucket", "le", "0.1", "service", "checkout" }, 6 },
    { { "__name__", "http_request_duration_seconds_bucket", "le", "0.5", "service", "checkout" }, 7 },
    { { "__name__", "http_request_duration_seconds_bucket", "le", "+Inf", "service", "checkout" }, 8 },
    { { "__name__", "http_request_duration_seconds_bucket", "le", "oops", "service", "cart" }, 6 },
    { { "__name__", "node_filesystem_avail_bytes", "fstype", "ext4", "instance", "a:9090" }, 9 },
    { { "__name__", "node_filesystem_size_bytes", "fstype", "ext4", "instance", "a:9090" }, 10 },
    { { "__name__", "build_info", "version", "1.0", "instance", "a:9090" }, 2 },
    { { "__name__", "kube_pod_info", "namespace", "n", "pod", "p", "node", "n1" }, 2 },
    { { "__name__", "kube_pod_container_status_restarts_total", "namespace", "n", "pod", "p" }, 1 },
    { { "__name__", "otel_requests", "service.name", "api", "http.route", "/v1/x" }, 11 },
};
#define NSERIES (sizeof spec / sizeof spec[0])

static struct {
    struct label ls[NSERIES][MAXLS];
    size_t nls[NSERIES];
    struct tsdb_sample s[NSERIES][NPTS];
    size_t n[NSERIES];
    int ready;
} ds;

static double stale_nan(void)
{
    uint64_t bits = TSDB_STALE_NAN_BITS;
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* Value i (at i * 15 s) of a series of the given kind; *skip leaves a gap. */
static double gen(int kind, int i, int *skip)
{
    static const double wave[] = { 3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8 };
    *skip = 0;
    switch (kind) {
    case 0: return i < 60 ? 3.0 * i : 3.0 * (i - 60); /* counter with a reset */
    case 1: return 0.5 * i;
    case 2: return i == 70 ? stale_nan() : 1;          /* a staleness marker */
    case 3: *skip = i % 7 == 3; return i % 2;
    case 4: return i == 40 ? NAN : wave[i % 12];
    case 5: return i == 41 ? INFINITY : i == 42 ? -INFINITY : -wave[(i + 5) % 12];
    case 6: return 1.0 * i;
    case 7: return 1.0 * i + (i == 50 ? -5 : 2); /* one non-monotonic step */
    case 8: return 4.0 * i;
    case 9: return 1e9 - 1e6 * i;
    case 10: return 2e9;
    default: *skip = i > 80; return 1e300 * (i % 3); /* near overflow */
    }
}

static void ds_init(void)
{
    for (size_t k = 0; k < NSERIES; k++) {
        size_t n = 0;
        while (n < MAXLS && spec[k].kv[2 * n]) {
            ds.ls[k][n].name = vg_str_c(spec[k].kv[2 * n]);
            ds.ls[k][n].value = vg_str_c(spec[k].kv[2 * n + 1]);
            n++;
        }
        labels_sort(ds.ls[k], n);
        ds.nls[k] = n;
        for (int i = 0; i < NPTS; i++) {
            int skip;
            double v = gen(spec[k].kind, i, &skip);
            if (!skip)
                ds.s[k][ds.n[k]++] = (struct tsdb_sample){ i * INT64_C(15000) + (k == 4 ? 7 : 0), v };
        }
    }
    ds.ready = 1;
}

struct fake_set {
    struct querier_set pub;
    struct querier_series v[NSERIES];
};

/* The fake querier: a linear scan of the dataset, sorted by labels as the contract asks. */
static int fake_select(void *ctx, struct matcher *const *ms, size_t nms, int64_t mint,
                       int64_t maxt, uint64_t max_samples, uint64_t *loaded,
                       struct querier_set **out, struct vg_err *err)
{
    (void)ctx;
    struct fake_set *set = vg_calloc(1, sizeof *set);
    if (!set)
        return vg_err_set(err, VG_ENOMEM, "fake querier: out of memory");
    set->pub.v = set->v;
    set->pub.priv = set;
    for (size_t k = 0; k < NSERIES; k++) {
        bool ok = true;
        for (size_t j = 0; j < nms && ok; j++)
            ok = matcher_matches(ms[j], labels_get(ds.ls[k], ds.nls[k], ms[j]->name));
        size_t lo = 0, hi;
        while (ok && lo < ds.n[k] && ds.s[k][lo].t < mint)
            lo++;
        for (hi = lo; ok && hi < ds.n[k] && ds.s[k][hi].t <= maxt; hi++)
            ;
        if (!ok || hi == lo)
            continue;
        *loaded += hi - lo;
        if (max_samples && *loaded > max_samples) {
            vg_free(set);
            return vg_err_set(err, VG_ETOOLARGE, "fake querier: too many samples");
        }
        /* insertion keeps the set sorted by labels */
        size_t at = set->pub.n;
        while (at > 0 && labels_cmp(set->v[at - 1].labels, set->v[at - 1].nlabels, ds.ls[k],
                                    ds.nls[k]) > 0) {
            set->v[at] = set->v[at - 1];
            at--;
        }
        set->v[at] = (struct querier_series){ ds.ls[k], ds.nls[k], ds.s[k] + lo, hi - lo };
        set->pub.n++;
    }
    *out = &set->pub;
    return 0;
}

static void fake_free(void *ctx, struct querier_set *s)
{
    (void)ctx;
    vg_free(s ? s->priv : NULL);
}

static void check_error(const struct vg_err *err)
{
    FUZZ_CHECK(err->code == VG_EINVAL || err->code == VG_ETOOLARGE || err->code == VG_ENOMEM ||
           err->code == VG_EOVERLOAD || err->code == VG_ECONFLICT);
    FUZZ_CHECK(err->msg[0]);
}

static void check_result(const struct promql_result *r, int64_t start, int64_t end)
{
    FUZZ_CHECK(r->type == PT_SCALAR || r->type == PT_VECTOR || r->type == PT_MATRIX ||
           r->type == PT_STRING);
    FUZZ_CHECK(r->type != PT_STRING || r->string);
    for (size_t i = 0; i < r->nseries; i++) {
        const struct promql_series *s = &r->series[i];
        for (size_t j = 1; j < s->nlabels; j++)
            FUZZ_CHECK(vg_str_cmp(s->labels[j - 1].name, s->labels[j].name) < 0);
        if (r->type == PT_VECTOR)
            FUZZ_CHECK(s->npoints == 1);
        else if (start != end)
            for (size_t j = 0; j < s->npoints; j++)
                FUZZ_CHECK(s->points[j].t >= start && s->points[j].t <= end &&
                       (j == 0 || s->points[j - 1].t < s->points[j].t));
        for (size_t j = 0; j < i && i < 256; j++)
            FUZZ_CHECK(labels_cmp(r->series[j].labels, r->series[j].nlabels, s->labels,
                              s->nlabels) != 0);
    }
    for (size_t i = 0; i < r->nwarnings; i++)
        FUZZ_CHECK(r->warnings[i] && r->warnings[i][0]);
}

static void run(const struct promql_opts *o, const struct promql_expr *e, bool range,
                uint64_t fail_after)
{
    struct querier q = { NULL, fake_select, fake_free };
    struct promql_result *r = NULL;
    struct vg_err err = { 0 };
    int64_t start = 5 * MIN_MS, end = 25 * MIN_MS;
    vg_alloc_fail_after(fail_after);
    int rc = range ? promql_eval_range(o, &q, e, start, end, 2 * MIN_MS, &r, &err)
                   : promql_eval_instant(o, &q, e, 20 * MIN_MS, &r, &err);
    vg_alloc_fail_after(0);
    if (rc) {
        FUZZ_CHECK(rc == err.code && !r);
        check_error(&err);
        return;
    }
    check_result(r, range ? start : 0, range ? end : 0);
    promql_result_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ds.ready)
        ds_init();
    struct vg_err err;
    struct promql_expr *e = promql_parse((const char *)data, size, &err);
    if (!e)
        return 0;
    struct promql_opts o;
    promql_opts_default(&o);
    o.max_samples = 50000;
    o.max_points = 100;
    o.timeout_ms = 500;
    run(&o, e, false, 0);
    o.delayed_name_removal = true;
    run(&o, e, true, 0);
    /* FNV-1a of the input picks which allocation fails */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    o.delayed_name_removal = false;
    run(&o, e, false, 1 + h % 64);
    promql_expr_free(e);
    return 0;
}
