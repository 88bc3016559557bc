/* engine_range: LogQL range aggregations (count_over_time, rate, bytes_over_time,
 * bytes_rate, absent_over_time and the unwrapped *_over_time, rate, rate_counter).
 *
 * One pass over the store: the selected entries of [e_0 - range, e_last] (e_k = t_k -
 * offset, the window ends; the store's end is exclusive, hence e_last + 1 as Loki's
 * "leap nanosecond") come in time order from one logstore_query. Each entry runs
 * through the pipeline; a kept one becomes a sample of the series named by its output
 * labels (reduced by the aggregation's by/without grouping when written, as Loki's
 * extractor does, so samples of several streams merge into one series). Each series
 * keeps only the samples that can still fall in a window: before an entry later than
 * e_k is taken, step k is emitted for every series with samples, after dropping those
 * at or before e_k - range (windows are left-open, (e_k - range, e_k], as Loki's
 * batchRangeVectorIterator). Memory is the samples of one window, not of the query.
 *
 * Grouping pushdown (Loki's canInjectVectorGrouping, extended where exact): when a
 * vector aggregation directly wraps a range aggregation without its own grouping, the
 * vector's by/without is applied to each sample's labels here, so the series are the
 * groups rather than every label set a parser produced (with `| json` over access logs,
 * nearly one per line). It is exact when the aggregation of per-series window values
 * equals the window value over the group's merged samples: sum of count_over_time,
 * rate, bytes_over_time, bytes_rate, sum_over_time (additive; for fractional values
 * only up to floating-point rounding, as in Loki), max of max_over_time, min of
 * min_over_time. avg, quantile, stddev, first/last, count, topk and the rest need
 * every series and are never pushed down. The vector aggregation still runs on the
 * result (a no-op regrouping), so its output is what it would have been. With a `by`
 * grouping (pushed down or the range aggregation's own) the pipeline's parsers are
 * also told to extract only those labels (logql_pipeline_hint), so `| json` does not
 * copy, sort and hash the fields no one reads. An entry with an error keeps the
 * labels it has then, so a pipeline error message names fewer labels, as in Loki.
 *
 * Direct counting: when the store applies the whole pipeline itself (only `|= "literal"`
 * filters, which it searches for in each decompressed chunk: logql_pipeline_needles_exact)
 * and the value is a count, rate or byte count, an entry without structured metadata is
 * kept with its stream's labels, so it skips the pipeline and goes to its stream's series
 * (looked up once per stream): no label copy, hash or line search per counted line.
 *
 * Values: count is the number of samples; rate divides by the range in seconds (the
 * sum of unwrapped values when unwrapped); bytes_* use the line length after the
 * pipeline; min/max/sum/avg/stddev/stdvar/quantile use the PromQL kernels (sum and avg
 * are Kahan-compensated there, so they can differ from Loki's plain sums in the last
 * bit); first/last take the first/last sample in time order; rate_counter is Loki's own
 * extrapolatedRate (see loki_rate_counter). absent_over_time yields 1 at the steps where
 * no series has a sample, labelled with the selector's equality matchers (Loki's
 * absentLabels: a name matched twice or by another operator is left out).
 *
 * A series whose labels carry __error__ (and not __preserve_error__="true") fails the
 * query with Loki's pipeline error once it has a sample in a window. */
#include "../../storage/base/vg_alloc.h"
#include "../../storage/logstore/logstore.h"
#include "../promql/kernels.h"
#include "engine_int.h"
#include "pipeline.h"

#include <math.h>
#include <string.h>

struct rser {
    struct tsdb_sample *buf; /* t in ns; the window is buf[head .. n) */
    size_t head, n, cap;
    double sum; /* running sum of line bytes (integers, so exact) */
    bool active, error;
};

struct rrun {
    const struct logql_node *n;
    const struct logql_grouping *g; /* labels kept per sample: the node's or pushed down */
    enum logql_range_op op;
    int64_t range, offset;
    bool unwrap;
    struct logql_pipeline *pl;
    struct logstore_iter *it;
    struct lq_val *data;   /* one series per label set */
    struct lq_bld b;
    bool bld;
    struct rser *rs;       /* parallel to data->s (before compaction) */
    size_t nrs, caprs;
    uint32_t *active;      /* series with samples, in first-sample order */
    size_t nactive, capactive;
    struct label *scratch; /* grouped labels */
    size_t capscratch;
    double *q;             /* quantile scratch */
    size_t capq;
    struct lq_val *absent; /* absent_over_time's answer */
    /* Entries without metadata skip the pipeline (see take_direct); smap maps a
     * stream id to its series. */
    bool direct;
    struct lq_map smap;
};

static int64_t sat_sub(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r))
        return b > 0 ? INT64_MIN : INT64_MAX;
    return r;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static int64_t win_end(const struct lq_ev *ev, const struct rrun *rr, size_t k)
{
    return sat_sub(lq_t(ev, k), rr->offset);
}

static bool bytes_op(enum logql_range_op op)
{
    return op == LQ_RANGE_BYTES || op == LQ_RANGE_BYTES_RATE;
}

/* Loki's rate_counter: its copy of an old Prometheus extrapolatedRate, applied to
 * sample times in nanoseconds while the range start is taken in milliseconds, so
 * "durations" are ns / 1000 and the distance to the window start is always the range
 * in seconds; no sample gives 0 rather than nothing. Reproduced as is so results match
 * Loki's. */
static double loki_rate_counter(const struct tsdb_sample *s, size_t n, int64_t range_ns)
{
    if (n < 2)
        return 0;
    int64_t range_ms = range_ns / 1000000;
    double result = s[n - 1].v - s[0].v, lastv = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i].v < lastv)
            result += lastv;
        lastv = s[i].v;
    }
    double to_start = (double)range_ms / 1000, to_end = 0;
    double sampled = (double)(s[n - 1].t - s[0].t) / 1000;
    double avg = sampled / (double)(n - 1);
    if (result > 0 && s[0].v >= 0) {
        double to_zero = sampled * (s[0].v / result);
        if (to_zero < to_start)
            to_start = to_zero;
    }
    double threshold = avg * 1.1, ext = sampled;
    ext += to_start < threshold ? to_start : avg / 2;
    ext += to_end < threshold ? to_end : avg / 2;
    result *= ext / sampled;
    return result / ((double)range_ns / 1e9);
}

static int window_value(struct lq_ev *ev, struct rrun *rr, const struct rser *rs, double *out)
{
    const struct tsdb_sample *w = rs->buf + rs->head;
    size_t c = rs->n - rs->head;
    double secs = (double)rr->range / 1e9;
    switch (rr->op) {
    case LQ_RANGE_COUNT: *out = (double)c; break;
    case LQ_RANGE_RATE:
        *out = (rr->unwrap ? kern_sum_over_time(w, c) : (double)c) / secs;
        break;
    case LQ_RANGE_BYTES: *out = rs->sum; break;
    case LQ_RANGE_BYTES_RATE: *out = rs->sum / secs; break;
    case LQ_RANGE_SUM: *out = kern_sum_over_time(w, c); break;
    case LQ_RANGE_AVG: *out = kern_avg_over_time(w, c); break;
    case LQ_RANGE_MIN: *out = kern_min_over_time(w, c); break;
    case LQ_RANGE_MAX: *out = kern_max_over_time(w, c); break;
    case LQ_RANGE_STDVAR: *out = kern_stdvar_over_time(w, c); break;
    case LQ_RANGE_STDDEV: *out = kern_stddev_over_time(w, c); break;
    case LQ_RANGE_FIRST: *out = w[0].v; break;
    case LQ_RANGE_LAST: *out = w[c - 1].v; break;
    case LQ_RANGE_RATE_COUNTER: *out = loki_rate_counter(w, c, rr->range); break;
    case LQ_RANGE_QUANTILE:
        if (lq_grow(ev, &rr->q, &rr->capq, c, sizeof *rr->q, 16))
            return VG_ENOMEM;
        *out = kern_quantile_over_time(rr->n->range.param, w, c, rr->q);
        break;
    case LQ_RANGE_ABSENT: *out = 1; break;
    }
    return 0;
}

static int pipeline_error(struct lq_ev *ev, const struct lq_ser *s)
{
    char ls[200];
    lq_lbl_str(s->ls, s->nls, ls, sizeof ls);
    const struct label *e = NULL;
    for (size_t i = 0; i < s->nls; i++)
        if (vg_str_eq_c(s->ls[i].name, "__error__"))
            e = &s->ls[i];
    int el = e ? (int)e->value.len : 0;
    const char *ep = e ? e->value.p : "";
    return lq_fail(ev, VG_EINVAL,
                   "pipeline error: '%.*s' for series: '%s'.\nUse a label filter to "
                   "intentionally skip this error. (e.g | __error__!=\"%.*s\").\nTo skip all "
                   "potential errors you can match empty errors.(e.g __error__=\"\")\nThe label "
                   "filter can also be specified after unwrap. (e.g | unwrap latency | "
                   "__error__=\"\" )\n",
                   el, ep, ls, el, ep);
}

/* Emits step k: drops samples left of the window, evaluates every non-empty one. */
static int emit(struct lq_ev *ev, struct rrun *rr, size_t k)
{
    int64_t lo = sat_sub(win_end(ev, rr, k), rr->range);
    size_t j = 0;
    for (size_t a = 0; a < rr->nactive; a++) {
        uint32_t idx = rr->active[a];
        struct rser *rs = &rr->rs[idx];
        while (rs->head < rs->n && rs->buf[rs->head].t <= lo) {
            rs->sum -= rs->buf[rs->head].v;
            rs->head++;
        }
        if (rs->head == rs->n) {
            rs->active = false;
            rs->head = rs->n = 0;
            rs->sum = 0;
            continue;
        }
        rr->active[j++] = idx;
        if (rs->error)
            return pipeline_error(ev, &rr->data->s[idx]);
        if (rr->op == LQ_RANGE_ABSENT)
            continue;
        double v = 0;
        int rc = window_value(ev, rr, rs, &v);
        if (rc || (rc = lq_ser_put(ev, &rr->data->s[idx], (uint32_t)k, v)))
            return rc;
    }
    rr->nactive = j;
    if (rr->op == LQ_RANGE_ABSENT && !j && lq_ser_put(ev, &rr->absent->s[0], (uint32_t)k, 1))
        return VG_ENOMEM;
    return lq_tick(ev);
}

static bool has_error_label(const struct label *ls, size_t n)
{
    bool err = false, preserve = false;
    for (size_t i = 0; i < n; i++) {
        if (vg_str_eq_c(ls[i].name, "__error__"))
            err = true;
        else if (vg_str_eq_c(ls[i].name, "__preserve_error__"))
            preserve = vg_str_eq_c(ls[i].value, "true");
    }
    return err && !preserve;
}

/* The series of an entry's labels, created on first use. With a grouping the labels
 * are reduced to it first, except for an entry that carries an error (Loki's
 * GroupedLabels returns those whole, so the error fails the query instead of being
 * grouped away). The reduced set lives in the reused scratch array; lq_bld_get copies
 * it into the arena only for a new series, so a known group costs no allocation. */
static long series_of(struct lq_ev *ev, struct rrun *rr, const struct logql_pipeline_out *o)
{
    const struct label *ls = o->labels;
    size_t nls = o->nlabels;
    uint64_t h = o->labels_hash;
    const struct logql_grouping *g = rr->g;
    if (g && !has_error_label(ls, nls)) {
        if (lq_grow(ev, &rr->scratch, &rr->capscratch, nls, sizeof *rr->scratch, 16))
            return VG_ENOMEM;
        size_t m = 0;
        for (size_t i = 0; i < nls; i++)
            if (lq_names_has(&g->labels, ls[i].name) != g->without)
                rr->scratch[m++] = ls[i];
        ls = rr->scratch;
        nls = m;
        h = labels_hash(ls, nls);
    }
    size_t before = rr->data->n;
    long idx = lq_bld_get(ev, &rr->b, ls, nls, h, true);
    if (idx < 0 || rr->data->n == before)
        return idx;
    if (lq_grow(ev, &rr->rs, &rr->caprs, rr->data->n, sizeof *rr->rs, 16))
        return VG_ENOMEM;
    rr->rs[idx] = (struct rser){ .error = has_error_label(ls, nls) };
    rr->nrs = rr->data->n;
    return idx;
}

static int push_sample(struct lq_ev *ev, struct rrun *rr, uint32_t idx, int64_t t, double v)
{
    struct rser *rs = &rr->rs[idx];
    if (rs->n == rs->cap && rs->head) {
        memmove(rs->buf, rs->buf + rs->head, (rs->n - rs->head) * sizeof *rs->buf);
        rs->n -= rs->head;
        rs->head = 0;
    }
    if (lq_grow(ev, &rs->buf, &rs->cap, rs->n + 1, sizeof *rs->buf, 8))
        return VG_ENOMEM;
    rs->buf[rs->n++] = (struct tsdb_sample){ t, v };
    if (bytes_op(rr->op))
        rs->sum += v;
    if (!rs->active) {
        if (lq_grow(ev, &rr->active, &rr->capactive, rr->nactive + 1, sizeof *rr->active, 16))
            return VG_ENOMEM;
        rr->active[rr->nactive++] = idx;
        rs->active = true;
    }
    return 0;
}

/* The sample value of a kept entry; false when it has none (unwrap failed without
 * marking the entry with __error__). */
static bool entry_value(const struct rrun *rr, const struct logql_pipeline_out *o, double *v)
{
    if (bytes_op(rr->op)) {
        *v = (double)o->line.len;
        return true;
    }
    if (!rr->unwrap) {
        *v = 1;
        return true;
    }
    if (o->has_value) {
        *v = o->value;
        return true;
    }
    *v = 0;
    return has_error_label(o->labels, o->nlabels);
}

static int take_entry(struct lq_ev *ev, struct rrun *rr, const struct logstore_entry *e)
{
    struct logql_pipeline_out o;
    int rc = logql_pipeline_process(rr->pl, e->t, e->line, e->labels, e->nlabels, e->meta,
                                    e->nmeta, &o);
    if (rc < 0)
        return lq_nomem(ev);
    double v;
    if (rc == 0 || !entry_value(rr, &o, &v))
        return 0;
    long idx = series_of(ev, rr, &o);
    if (idx < 0)
        return (int)idx;
    return push_sample(ev, rr, (uint32_t)idx, e->t, v);
}

/* take_entry for a pipeline the store applied exactly (logql_pipeline_needles_exact),
 * an entry without metadata and a value that needs no pipeline output (count, rate,
 * bytes): the pipeline would keep the entry with the stream's labels and the stored
 * line, so the sample goes straight to the stream's series, found once per stream. */
static int take_direct(struct lq_ev *ev, struct rrun *rr, const struct logstore_entry *e)
{
    long idx = lq_map_get(&rr->smap, e->stream);
    if (idx < 0) {
        struct logql_pipeline_out o = { .line = e->line,
                                        .labels = e->labels,
                                        .nlabels = e->nlabels,
                                        .labels_hash = labels_hash(e->labels, e->nlabels) };
        if ((idx = series_of(ev, rr, &o)) < 0)
            return (int)idx;
        if (lq_map_put(ev, &rr->smap, e->stream, (size_t)idx))
            return VG_ENOMEM;
    }
    double v = bytes_op(rr->op) ? (double)e->line.len : 1;
    return push_sample(ev, rr, (uint32_t)idx, e->t, v);
}

static int rr_read(struct lq_ev *ev, struct rrun *rr)
{
    rr->it = lq_select(ev, rr->n->range.log, sat_sub(win_end(ev, rr, 0), rr->range),
                       sat_add(win_end(ev, rr, ev->nsteps - 1), 1), false, 0);
    if (!rr->it)
        return ev->err->code;
    size_t k = 0;
    int rc;
    while (k < ev->nsteps) {
        struct logstore_entry e;
        rc = logstore_iter_next(rr->it, &e, ev->err);
        if (rc <= 0) {
            if (rc < 0)
                return rc;
            break;
        }
        ev->st->lines_processed++;
        ev->st->bytes_processed += e.line.len;
        if ((rc = lq_tick(ev)))
            return rc;
        while (k < ev->nsteps && e.t > win_end(ev, rr, k))
            if ((rc = emit(ev, rr, k++)))
                return rc;
        if (k == ev->nsteps)
            break;
        if (e.t <= sat_sub(win_end(ev, rr, k), rr->range))
            continue; /* falls in no window (range shorter than step) */
        rc = rr->direct && !e.nmeta ? take_direct(ev, rr, &e) : take_entry(ev, rr, &e);
        if (rc)
            return rc;
    }
    while (k < ev->nsteps)
        if ((rc = emit(ev, rr, k++)))
            return rc;
    return 0;
}

/* Loki's absentLabels. */
static int absent_labels(struct lq_ev *ev, const struct logql_node *log, struct lq_val *out)
{
    size_t nms = log->log.nms, m = 0;
    struct label *ls = vg_arena_alloc(ev->arena, (nms ? nms : 1) * sizeof *ls);
    bool *drop = vg_calloc(nms ? nms : 1, sizeof *drop);
    if (!ls || !drop) {
        vg_free(drop);
        return lq_nomem(ev);
    }
    for (size_t i = 0; i < nms; i++) {
        const struct matcher *mt = log->log.ms[i];
        struct vg_str name = vg_str_c(mt->name);
        if (vg_str_eq_c(name, "__name__"))
            continue;
        bool have = false;
        for (size_t j = 0; j < m; j++)
            have = have || vg_str_eq(ls[j].name, name);
        if (mt->op == MATCH_EQ && !have)
            ls[m++] = (struct label){ name, { mt->value, mt->value_len } };
        else
            drop[i] = true;
    }
    size_t w = 0;
    for (size_t j = 0; j < m; j++) {
        bool dropped = false;
        for (size_t i = 0; i < nms; i++)
            dropped = dropped || (drop[i] && vg_str_eq_c(ls[j].name, log->log.ms[i]->name));
        if (!dropped)
            ls[w++] = ls[j];
    }
    vg_free(drop);
    labels_sort(ls, w);
    const struct label *own;
    if (lq_lbl_copy(ev, ls, w, &own)) /* matchers belong to the expr, not the result */
        return VG_ENOMEM;
    return lq_val_add(ev, out, own, w) < 0 ? VG_ENOMEM : 0;
}

bool lq_range_pushdown(enum logql_vector_op op, const struct logql_node *n)
{
    if (n->kind != LQ_RANGE_AGG || n->range.grouping)
        return false;
    switch (n->range.op) {
    case LQ_RANGE_COUNT:
    case LQ_RANGE_RATE:
    case LQ_RANGE_BYTES:
    case LQ_RANGE_BYTES_RATE:
    case LQ_RANGE_SUM: return op == LQ_VEC_SUM;
    case LQ_RANGE_MAX: return op == LQ_VEC_MAX;
    case LQ_RANGE_MIN: return op == LQ_VEC_MIN;
    default: return false;
    }
}

struct lq_val *lq_eval_range(struct lq_ev *ev, const struct logql_node *n)
{
    return lq_eval_range_grouped(ev, n, n->range.grouping);
}

struct lq_val *lq_eval_range_grouped(struct lq_ev *ev, const struct logql_node *n,
                                     const struct logql_grouping *g)
{
    struct rrun rr = {
        .n = n,
        .g = g,
        .op = n->range.op,
        .range = n->range.range_ns,
        .offset = n->range.offset_ns,
        .unwrap = n->range.unwrap != NULL,
    };
    struct lq_val *out = NULL;
    int rc = 0;
    if (rr.range <= 0) {
        lq_fail(ev, VG_EINVAL, "parse error : invalid range: must be positive");
        return NULL;
    }
    rr.pl = logql_pipeline_new(n->range.log, n->range.unwrap, ev->err);
    if (!rr.pl) {
        if (!ev->err->code)
            lq_fail(ev, VG_EINVAL, "cannot build the pipeline");
        return NULL;
    }
    /* only the `by` labels are read: parsers may skip the others (pipeline.h) */
    if (g && !g->without && logql_pipeline_hint(rr.pl, &g->labels)) {
        lq_nomem(ev);
        goto done;
    }
    rr.data = lq_val_new(ev);
    if (!rr.data || lq_bld_init(ev, &rr.b, rr.data, 64))
        goto done;
    rr.bld = true;
    rr.direct = !rr.unwrap &&
                (rr.op == LQ_RANGE_COUNT || rr.op == LQ_RANGE_RATE || bytes_op(rr.op)) &&
                logql_pipeline_needles_exact(n->range.log, LQ_NEEDLES_MAX);
    if (rr.direct && lq_map_init(ev, &rr.smap, 16)) {
        rr.direct = false;
        goto done;
    }
    if (rr.op == LQ_RANGE_ABSENT) {
        rr.absent = lq_val_new(ev);
        if (!rr.absent || absent_labels(ev, n->range.log, rr.absent))
            goto done;
    }
    rc = rr_read(ev, &rr);
    if (rr.it)
        lq_add_iter_stats(ev, rr.it);
    if (rc)
        goto done;
    if (rr.op == LQ_RANGE_ABSENT) {
        out = rr.absent;
        rr.absent = NULL;
    } else {
        out = rr.data;
        rr.data = NULL;
        lq_val_compact(out);
    }
done:
    for (size_t i = 0; i < rr.nrs; i++)
        vg_free(rr.rs[i].buf);
    if (rr.bld)
        lq_bld_free(&rr.b);
    if (rr.direct)
        lq_map_free(&rr.smap);
    lq_val_free(rr.data);
    lq_val_free(rr.absent);
    vg_free(rr.rs);
    vg_free(rr.active);
    vg_free(rr.scratch);
    vg_free(rr.q);
    logstore_iter_free(rr.it);
    logql_pipeline_free(rr.pl);
    return out;
}
