/* aggregate: aggregation operators with by/without, as Prometheus's engine
 * (rangeEvalAgg, aggregation, aggregationK, aggregationCountValues):
 *
 * - Groups: by(l...) keeps those labels; without(l...) drops them and __name__. The
 *   grouping of each input series is computed once; steps are then folded group by
 *   group (step-major, so memory is per group, not per group and step).
 * - sum uses Kahan-Neumaier summation; avg too, switching to an incremental mean when
 *   the sum would overflow; min/max ignore NaN unless every value is NaN; stddev and
 *   stdvar are population figures (Welford) and NaN once a NaN or Inf is seen first;
 *   quantile interpolates (kern_quantile) and warns when q is outside [0, 1].
 * - topk/bottomk/limitk/limit_ratio keep the input series (labels unchanged); k and the
 *   ratio are read per step. Selection follows Go's container/heap exactly, so ties go
 *   the way Prometheus sends them; an instant result lists groups in order of first
 *   appearance, each sorted (topk descending, bottomk ascending, NaN last).
 * - limit_ratio keeps a series when xxHash64(labels) / 2^64 < ratio (or >= 1 + ratio
 *   for a negative ratio), the rule of Prometheus's HashRatioSampler.
 * - count_values counts series per value, the value label formatted as Go's
 *   strconv.FormatFloat(v, 'f', -1, 64). */
#include "eval_int.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_buf.h"
#include "kernels.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

struct acc {
    struct kern_ksum sum; /* sum / avg (sum.sum is Prometheus's floatValue) */
    double value, mean, count;
    bool seen, incr_mean;
};

/* Group id of every input series, and the group's labels. */
struct grouping {
    uint32_t *of; /* per input series */
    size_t n;
    struct ev_series *labels; /* per group */
};

static int group_labels(struct ev *ev, const struct promql_node *n, const struct ev_series *s,
                        struct ev_series *out)
{
    out->drop_name = s->drop_name;
    if (n->agg.without)
        return ev_lbl_filter(ev, s->ls, s->nls, &n->agg.grouping, false, true, &out->ls,
                             &out->nls);
    return ev_lbl_filter(ev, s->ls, s->nls, &n->agg.grouping, true, false, &out->ls, &out->nls);
}

static uint64_t group_key(const struct promql_node *n, const struct ev_series *s)
{
    return ev_sig_hash(s->ls, s->nls, &n->agg.grouping, !n->agg.without);
}

static int make_grouping(struct ev *ev, const struct promql_node *n, const struct ev_val *in,
                         struct grouping *g)
{
    struct ev_map map;
    g->of = vg_malloc((in->n + 1) * sizeof *g->of);
    g->labels = vg_malloc((in->n + 1) * sizeof *g->labels);
    g->n = 0;
    if (!g->of || !g->labels || ev_map_init(ev, &map, in->n)) {
        vg_free(g->of);
        vg_free(g->labels);
        return ev_nomem(ev);
    }
    for (size_t i = 0; i < in->n; i++) {
        long id = ev_map_get(ev, &map, group_key(n, &in->s[i]), g->n, true);
        if (id < -1)
            goto fail;
        if ((size_t)id == g->n) {
            if (group_labels(ev, n, &in->s[i], &g->labels[g->n]))
                goto fail;
            g->n++;
        } else if (in->s[i].drop_name) {
            /* a group drops __name__ when any of its series does */
            g->labels[id].drop_name = true;
        }
        g->of[i] = (uint32_t)id;
    }
    ev_map_free(&map);
    return 0;
fail:
    ev_map_free(&map);
    vg_free(g->of);
    vg_free(g->labels);
    return VG_ENOMEM;
}

static void acc_add(enum promql_aggop op, struct acc *a, double f)
{
    if (!a->seen) {
        *a = (struct acc){ .value = f, .mean = f, .count = 1, .seen = true };
        a->sum.sum = f;
        if (op == AGG_STDDEV || op == AGG_STDVAR)
            a->value = (isnan(f) || isinf(f)) ? NAN : 0;
        else if (op == AGG_GROUP)
            a->value = 1;
        return;
    }
    switch (op) {
    case AGG_SUM:
        kern_ksum_add(&a->sum, f);
        break;
    case AGG_AVG:
        a->count++;
        if (!a->incr_mean) {
            struct kern_ksum t = a->sum;
            kern_ksum_add(&t, f);
            if (!isinf(t.sum)) {
                a->sum = t;
                break;
            }
            a->incr_mean = true;
            a->mean = a->sum.sum / (a->count - 1);
            a->sum.c /= a->count - 1;
        }
        if (isinf(a->mean)) {
            if (isinf(f) && (a->mean > 0) == (f > 0))
                break;
            if (!isinf(f) && !isnan(f))
                break;
        }
        {
            double cur = a->mean + a->sum.c;
            struct kern_ksum m = { a->mean, a->sum.c };
            kern_ksum_add(&m, f / a->count - cur / a->count);
            a->mean = m.sum;
            a->sum.c = m.c;
        }
        break;
    case AGG_MAX:
        if (a->value < f || isnan(a->value))
            a->value = f;
        break;
    case AGG_MIN:
        if (a->value > f || isnan(a->value))
            a->value = f;
        break;
    case AGG_COUNT:
        a->count++;
        break;
    case AGG_STDDEV:
    case AGG_STDVAR: {
        a->count++;
        double d = f - a->mean;
        a->mean += d / a->count;
        a->value += d * (f - a->mean);
        break;
    }
    default:
        break;
    }
}

static double acc_result(enum promql_aggop op, const struct acc *a)
{
    switch (op) {
    case AGG_SUM: return a->sum.sum + a->sum.c;
    case AGG_AVG:
        if (a->incr_mean)
            return a->mean + a->sum.c;
        return (a->sum.sum + a->sum.c) / a->count;
    case AGG_COUNT: return a->count;
    case AGG_STDVAR: return a->value / a->count;
    case AGG_STDDEV: return sqrt(a->value / a->count);
    default: return a->value;
    }
}

/* Series indexes ordered by group: ord[gstart[g] .. gstart[g+1]). */
static int order_by_group(struct ev *ev, const struct grouping *g, size_t n, uint32_t **ord,
                          size_t **gstart)
{
    *ord = vg_malloc((n + 1) * sizeof **ord);
    *gstart = vg_calloc(g->n + 2, sizeof **gstart);
    if (!*ord || !*gstart) {
        vg_free(*ord);
        vg_free(*gstart);
        *ord = NULL;
        *gstart = NULL;
        return ev_nomem(ev);
    }
    size_t *gs = *gstart;
    for (size_t i = 0; i < n; i++)
        gs[g->of[i] + 1]++;
    for (size_t i = 0; i < g->n; i++)
        gs[i + 1] += gs[i];
    size_t *fill = vg_malloc((g->n + 1) * sizeof *fill);
    if (!fill) {
        vg_free(*ord);
        vg_free(*gstart);
        *ord = NULL;
        *gstart = NULL;
        return ev_nomem(ev);
    }
    memcpy(fill, gs, (g->n + 1) * sizeof *fill);
    for (size_t i = 0; i < n; i++)
        (*ord)[fill[g->of[i]]++] = (uint32_t)i;
    vg_free(fill);
    return 0;
}

static struct ev_val *agg_simple(struct ev *ev, const struct promql_node *n, struct ev_val *in,
                                 const struct ev_val *param)
{
    enum promql_aggop op = n->agg.op;
    size_t ns = in->nsteps;
    struct grouping g;
    struct acc *acc = NULL;
    uint32_t *ord = NULL;
    size_t *gstart = NULL;
    double *scratch = NULL;
    struct ev_val *out = NULL;
    if (make_grouping(ev, n, in, &g))
        return NULL;
    out = ev_val_new(ev, PT_VECTOR, ns);
    acc = vg_calloc(g.n + 1, sizeof *acc);
    if (!out || !acc) {
        ev_nomem(ev);
        goto fail;
    }
    for (size_t i = 0; i < g.n; i++)
        if (ev_val_add(ev, out, g.labels[i].ls, g.labels[i].nls, g.labels[i].drop_name) < 0)
            goto fail;
    if (op == AGG_QUANTILE) {
        scratch = vg_malloc((in->n + 1) * sizeof *scratch);
        if (!scratch || order_by_group(ev, &g, in->n, &ord, &gstart)) {
            ev_nomem(ev);
            goto fail;
        }
    }
    for (size_t k = 0; k < ns; k++) {
        if (ev_check(ev))
            goto fail;
        if (op == AGG_QUANTILE) {
            double q = param->v[k];
            if (ev_warn_quantile(ev, q))
                goto fail;
            for (size_t gi = 0; gi < g.n; gi++) {
                size_t m = 0;
                for (size_t x = gstart[gi]; x < gstart[gi + 1]; x++) {
                    uint32_t i = ord[x];
                    if (ev_okrow(in, i)[k])
                        scratch[m++] = ev_row(in, i)[k];
                }
                if (!m)
                    continue;
                ev_row(out, gi)[k] = kern_quantile(q, scratch, m);
                ev_okrow(out, gi)[k] = 1;
            }
            continue;
        }
        for (size_t gi = 0; gi < g.n; gi++)
            acc[gi].seen = false;
        for (size_t i = 0; i < in->n; i++)
            if (ev_okrow(in, i)[k])
                acc_add(op, &acc[g.of[i]], ev_row(in, i)[k]);
        for (size_t gi = 0; gi < g.n; gi++) {
            if (!acc[gi].seen)
                continue;
            ev_row(out, gi)[k] = acc_result(op, &acc[gi]);
            ev_okrow(out, gi)[k] = 1;
        }
    }
    ev_val_compact(out);
    if (!ev_account(ev, out))
        goto done;
fail:
    ev_val_free(ev, out);
    out = NULL;
done:
    vg_free(g.of);
    vg_free(g.labels);
    vg_free(acc);
    vg_free(ord);
    vg_free(gstart);
    vg_free(scratch);
    return out;
}

/* ---- topk, bottomk, limitk, limit_ratio: Go's container/heap over (series, value) ---- */

struct hent {
    uint32_t i;
    double v;
};

/* vectorByValueHeap (rev = false) / vectorByReverseValueHeap (rev = true): NaN first. */
static bool hless(const struct hent *h, size_t a, size_t b, bool rev)
{
    if (isnan(h[a].v))
        return true;
    return rev ? h[a].v > h[b].v : h[a].v < h[b].v;
}

static void hswap(struct hent *h, size_t a, size_t b)
{
    struct hent t = h[a];
    h[a] = h[b];
    h[b] = t;
}

static void hup(struct hent *h, size_t j, bool rev)
{
    while (j > 0) {
        size_t i = (j - 1) / 2;
        if (!hless(h, j, i, rev))
            break;
        hswap(h, i, j);
        j = i;
    }
}

static bool hdown(struct hent *h, size_t i0, size_t n, bool rev)
{
    size_t i = i0;
    for (;;) {
        size_t j1 = 2 * i + 1;
        if (j1 >= n)
            break;
        size_t j = j1;
        if (j1 + 1 < n && hless(h, j1 + 1, j1, rev))
            j = j1 + 1;
        if (!hless(h, j, i, rev))
            break;
        hswap(h, i, j);
        i = j;
    }
    return i > i0;
}

/* sort.Sort(sort.Reverse(heap)): insertion sort (Go's choice for short slices) with the
 * reversed order; longer slices are sorted the same way, which only differs from Go's
 * pdqsort in the order of ties. */
static void hsort_rev(struct hent *h, size_t n, bool rev)
{
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && hless(h, j - 1, j, rev); j--)
            hswap(h, j, j - 1);
}

static bool ratio_keep(const struct ev_series *s, double r)
{
    double off = (double)ev_labels_hash(s->ls, s->nls) / (double)UINT64_MAX;
    return (r >= 0 && off < r) || (r < 0 && off >= 1.0 + r);
}

static struct ev_val *agg_k(struct ev *ev, const struct promql_node *n, struct ev_val *in,
                            const struct ev_val *param)
{
    enum promql_aggop op = n->agg.op;
    size_t ns = in->nsteps;
    struct grouping g;
    struct hent *heap = NULL;
    size_t *len = NULL, *gstart = NULL;
    uint32_t *ord = NULL;
    long *outi = NULL;
    bool *ratio_in = NULL;
    struct ev_val *out = NULL;
    if (make_grouping(ev, n, in, &g))
        return NULL;
    out = ev_val_new(ev, PT_VECTOR, ns);
    heap = vg_malloc((in->n + 1) * sizeof *heap);
    len = vg_calloc(g.n + 1, sizeof *len);
    outi = vg_malloc((in->n + 1) * sizeof *outi);
    if (!out || !heap || !len || !outi || order_by_group(ev, &g, in->n, &ord, &gstart)) {
        ev_nomem(ev);
        goto fail;
    }
    for (size_t i = 0; i < in->n; i++)
        outi[i] = -1;
    if (op == AGG_LIMIT_RATIO) {
        ratio_in = vg_malloc((in->n + 1) * sizeof *ratio_in);
        if (!ratio_in) {
            ev_nomem(ev);
            goto fail;
        }
    }
    bool rev = op == AGG_BOTTOMK;
    double last_ratio = NAN;
    for (size_t k = 0; k < ns; k++) {
        if (ev_check(ev))
            goto fail;
        double p = param->v[k];
        int64_t kk = 0;
        double ratio = 0;
        if (op == AGG_LIMIT_RATIO) {
            if (isnan(p)) {
                ev_fail(ev, VG_EINVAL, "Ratio value is NaN");
                goto fail;
            }
            ratio = p;
            if (p < -1.0 || p > 1.0) {
                char g1[32], g2[32];
                ratio = p < -1.0 ? -1.0 : 1.0;
                if (ev_annotate(ev, true, "PromQL warning: ratio value should be between -1 "
                                          "and 1, got %s, capping to %s", ev_g(p, g1),
                                ev_g(ratio, g2)))
                    goto fail;
            }
            if (ratio == 0)
                continue;
            if (ratio != last_ratio) {
                for (size_t i = 0; i < in->n; i++)
                    ratio_in[i] = ratio_keep(&in->s[i], ratio);
                last_ratio = ratio;
            }
        } else {
            if (isnan(p)) {
                ev_fail(ev, VG_EINVAL, "Parameter value is NaN");
                goto fail;
            }
            if (!(p <= 9223372036854774784.0 && p >= -9223372036854775808.0)) {
                char g1[32];
                ev_fail(ev, VG_EINVAL, "Scalar value %s overflows int64", ev_g(p, g1));
                goto fail;
            }
            kk = (int64_t)p;
            if (kk > (int64_t)in->n)
                kk = (int64_t)in->n;
            if (kk < 1)
                continue;
        }
        for (size_t gi = 0; gi < g.n; gi++)
            len[gi] = 0;
        for (size_t i = 0; i < in->n; i++) {
            if (!ev_okrow(in, i)[k])
                continue;
            uint32_t gi = g.of[i];
            struct hent *h = heap + gstart[gi];
            struct hent e = { (uint32_t)i, ev_row(in, i)[k] };
            size_t *l = &len[gi];
            switch (op) {
            case AGG_TOPK:
            case AGG_BOTTOMK:
                if ((int64_t)*l < kk) {
                    h[(*l)++] = e;
                    hup(h, *l - 1, rev);
                } else if ((rev ? h[0].v > e.v : h[0].v < e.v) || (isnan(h[0].v) && !isnan(e.v))) {
                    h[0] = e;
                    if (kk > 1 && !hdown(h, 0, *l, rev))
                        hup(h, 0, rev);
                }
                break;
            case AGG_LIMITK:
                if ((int64_t)*l < kk) {
                    h[(*l)++] = e;
                    hup(h, *l - 1, false);
                }
                break;
            default: /* AGG_LIMIT_RATIO */
                if (ratio_in[i]) {
                    h[(*l)++] = e;
                    hup(h, *l - 1, false);
                }
                break;
            }
        }
        for (size_t gi = 0; gi < g.n; gi++) {
            struct hent *h = heap + gstart[gi];
            if ((op == AGG_TOPK || op == AGG_BOTTOMK) && len[gi] > 1)
                hsort_rev(h, len[gi], rev);
            for (size_t x = 0; x < len[gi]; x++) {
                uint32_t i = h[x].i;
                if (outi[i] < 0) {
                    long o = ev_val_add(ev, out, in->s[i].ls, in->s[i].nls, in->s[i].drop_name);
                    if (o < 0)
                        goto fail;
                    outi[i] = o;
                }
                ev_row(out, (size_t)outi[i])[k] = h[x].v;
                ev_okrow(out, (size_t)outi[i])[k] = 1;
            }
        }
    }
    if (!ev_account(ev, out))
        goto done;
fail:
    ev_val_free(ev, out);
    out = NULL;
done:
    vg_free(g.of);
    vg_free(g.labels);
    vg_free(heap);
    vg_free(len);
    vg_free(ord);
    vg_free(gstart);
    vg_free(outi);
    vg_free(ratio_in);
    return out;
}

static struct ev_val *count_values(struct ev *ev, const struct promql_node *n, struct ev_val *in)
{
    const struct promql_node *pn = ev_unparen(n->agg.param);
    struct vg_str lname = { pn->string.p, pn->string.len };
    if (!ev_label_name_ok(lname)) {
        ev_fail(ev, VG_EINVAL, "invalid label name \"%.*s\"", (int)lname.len, lname.p);
        ev_val_free(ev, in);
        return NULL;
    }
    /* by(...) also keeps the value label. */
    struct promql_strings grouping = n->agg.grouping;
    if (!n->agg.without) {
        char **v = vg_arena_alloc(ev->arena, (grouping.n + 1) * sizeof *v);
        char *nm = vg_arena_strndup(ev->arena, lname.p, lname.len);
        if (!v || !nm) {
            ev_nomem(ev);
            ev_val_free(ev, in);
            return NULL;
        }
        if (grouping.n)
            memcpy(v, grouping.v, grouping.n * sizeof *v);
        v[grouping.n] = nm;
        grouping.v = v;
        grouping.n++;
    }
    size_t ns = in->nsteps;
    struct ev_build b;
    struct vg_buf buf;
    vg_buf_init(&buf);
    if (ev_build_init(ev, &b, ns, in->n)) {
        ev_val_free(ev, in);
        return NULL;
    }
    for (size_t i = 0; i < in->n; i++) {
        long o = -1;
        uint64_t lastbits = 0;
        for (size_t k = 0; k < ns; k++) {
            if (!ev_okrow(in, i)[k])
                continue;
            double v = ev_row(in, i)[k];
            uint64_t bits;
            memcpy(&bits, &v, sizeof bits);
            if (o < 0 || bits != lastbits) {
                vg_buf_reset(&buf);
                vg_buf_json_float(&buf, v);
                if (vg_buf_failed(&buf)) {
                    ev_nomem(ev);
                    goto fail;
                }
                const struct label *ls, *gl;
                size_t nls, ngl;
                if (ev_lbl_set(ev, in->s[i].ls, in->s[i].nls, lname,
                               (struct vg_str){ buf.p, buf.len }, &ls, &nls) ||
                    ev_lbl_filter(ev, ls, nls, &grouping, !n->agg.without, n->agg.without,
                                  &gl, &ngl))
                    goto fail;
                o = ev_build_series(ev, &b, gl, ngl, false);
                if (o < 0)
                    goto fail;
                lastbits = bits;
            }
            double *row = ev_row(b.val, (size_t)o);
            uint8_t *ok = ev_okrow(b.val, (size_t)o);
            row[k] = ok[k] ? row[k] + 1 : 1;
            ok[k] = 1;
        }
        if (ev_check(ev))
            goto fail;
    }
    vg_buf_free(&buf);
    ev_val_free(ev, in);
    return ev_build_done(ev, &b);
fail:
    vg_buf_free(&buf);
    ev_build_abort(ev, &b);
    ev_val_free(ev, in);
    return NULL;
}

struct ev_val *ev_aggregate(struct ev *ev, const struct promql_node *n, const struct ev_steps *st)
{
    enum promql_aggop op = n->agg.op;
    struct ev_val *param = NULL;
    if (n->agg.param && op != AGG_COUNT_VALUES) {
        param = ev_eval(ev, n->agg.param, st);
        if (!param)
            return NULL;
    }
    /* The parser insists on these parameters; a tree built otherwise is refused here
     * rather than dereferenced below. */
    bool needs_param = op == AGG_TOPK || op == AGG_BOTTOMK || op == AGG_LIMITK ||
                       op == AGG_LIMIT_RATIO || op == AGG_QUANTILE;
    if (needs_param && !param) {
        (void)ev_fail(ev, VG_EINVAL, "aggregation is missing its parameter");
        return NULL;
    }
    struct ev_val *in = ev_eval(ev, n->agg.expr, st);
    if (!in) {
        ev_val_free(ev, param);
        return NULL;
    }
    struct ev_val *out = NULL;
    switch (op) {
    case AGG_COUNT_VALUES:
        out = count_values(ev, n, in); /* consumes in */
        ev_val_free(ev, param);
        return out;
    case AGG_TOPK:
    case AGG_BOTTOMK:
    case AGG_LIMITK:
    case AGG_LIMIT_RATIO:
        out = agg_k(ev, n, in, param);
        break;
    default:
        out = agg_simple(ev, n, in, param);
        break;
    }
    ev_val_free(ev, in);
    ev_val_free(ev, param);
    return out;
}
