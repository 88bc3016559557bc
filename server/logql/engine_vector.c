/* engine_vector: LogQL's operators on instant vectors, step by step as Loki's
 * VectorAggEvaluator, BinOpStepEvaluator, LiteralStepEvaluator and
 * LabelReplaceEvaluator:
 *
 * - Aggregations group by the listed labels (by) or by all but them (without); sum and
 *   avg use the PromQL kernels' compensated sum and mean, stddev/stdvar their Welford
 *   variance (population), min/max replace a NaN by any number; count counts. topk and
 *   bottomk (k < 1 gives nothing) keep the k largest/smallest series of each group with
 *   their labels, sort and sort_desc keep all; NaN ranks last. For an instant query the
 *   selected series are listed in that order (Loki returns a sorted query's vector in
 *   evaluation order); ties keep the input order.
 * - Binary arithmetic keeps the left (many-side) labels; x / 0 and x % 0 are NaN (Loki's
 *   MergeBinOp, unlike Prometheus). A comparison filters (the vector operand's sample
 *   is kept) unless `bool`, which yields 0 or 1. Vector matching uses all labels, or
 *   on(...) / ignoring(...); the "one" side must be unique per signature at a step
 *   ("found duplicate series on the right hand-side;many-to-many matching not allowed:
 *   matching labels must be unique on one side"), one-to-one matching fails when two
 *   left series match one right series ("multiple matches for labels: many-to-one
 *   matching must be explicit (group_left/group_right)"), group_left/group_right copy
 *   the listed labels from the one side (removing them when empty there) and refuse two
 *   results with one label set ("multiple matches for labels: grouping labels must
 *   ensure unique matches"). One-to-one results keep only the on() labels, or drop the
 *   ignoring() labels.
 * - and/or/unless per step by signature, with Loki's short cuts (`a and b` is empty
 *   when either side is, `a unless b` is a when b is empty, `or` adds right series
 *   whose signature no left series has at that step).
 * - label_replace(v, dst, replacement, src, regex): the regex is fully anchored; no
 *   match leaves the series alone, an empty expansion removes dst. */
#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_buf.h"
#include "../../storage/tsdb/matcher.h"
#include "../promql/kernels.h"
#include "engine_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char dup_labelset[] = "vector cannot contain metrics with the same labelset";

/* Scratch labels for computing signatures without touching the arena. */
struct scratch {
    struct label *v;
    size_t cap;
};

/* Hash of the labels named in names (keep) or of all others (!keep); the kept labels
 * are left in s->v[0 .. *m). */
static int subset_hash(struct lq_ev *ev, struct scratch *s, const struct lq_ser *ser,
                       const struct logql_strings *names, bool keep, uint64_t *h, size_t *m)
{
    if (lq_grow(ev, &s->v, &s->cap, ser->nls, sizeof *s->v, 16))
        return VG_ENOMEM;
    size_t j = 0;
    for (size_t i = 0; i < ser->nls; i++)
        if (lq_names_has(names, ser->ls[i].name) == keep)
            s->v[j++] = ser->ls[i];
    *h = labels_hash(s->v, j);
    if (m)
        *m = j;
    return 0;
}

/* ---- vector aggregation ---- */

struct acc {
    struct kern_ksum sum;
    struct kern_mean mean;
    struct kern_var var;
    double value, count;
    long stamp;
};

static void acc_add(enum logql_vector_op op, struct acc *a, double v, long k)
{
    if (a->stamp != k) {
        *a = (struct acc){ .value = v, .stamp = k };
    } else if (op == LQ_VEC_MAX) {
        if (a->value < v || isnan(a->value))
            a->value = v;
    } else if (op == LQ_VEC_MIN) {
        if (a->value > v || isnan(a->value))
            a->value = v;
    }
    a->count++;
    kern_ksum_add(&a->sum, v);
    kern_mean_add(&a->mean, v);
    kern_var_add(&a->var, v);
}

static double acc_value(enum logql_vector_op op, const struct acc *a)
{
    switch (op) {
    case LQ_VEC_SUM: return kern_ksum_value(&a->sum);
    case LQ_VEC_AVG: return kern_mean_value(&a->mean);
    case LQ_VEC_COUNT: return a->count;
    case LQ_VEC_STDDEV: return kern_var_stddev(&a->var);
    case LQ_VEC_STDVAR: return kern_var_stdvar(&a->var);
    default: return a->value; /* min, max */
    }
}

/* Group id of every input series; labels of each group in glabels. */
struct groups {
    uint32_t *of;
    size_t n;
    struct lq_ser *labels; /* only ls/nls used */
};

static int make_groups(struct lq_ev *ev, const struct lq_val *in, const struct logql_grouping *g,
                       struct groups *gr)
{
    struct scratch s = { 0 };
    struct lq_map map;
    gr->n = 0;
    gr->of = vg_malloc((in->n + 1) * sizeof *gr->of);
    gr->labels = vg_malloc((in->n + 1) * sizeof *gr->labels);
    if (!gr->of || !gr->labels || lq_map_init(ev, &map, in->n)) {
        vg_free(gr->of);
        vg_free(gr->labels);
        gr->of = NULL;
        gr->labels = NULL;
        return lq_nomem(ev);
    }
    int rc = 0;
    for (size_t i = 0; i < in->n; i++) {
        uint64_t h;
        size_t m;
        if ((rc = subset_hash(ev, &s, &in->s[i], &g->labels, !g->without, &h, &m)))
            break;
        long id = lq_map_get(&map, h);
        if (id < 0) {
            /* the strings already live in the arena; only the array is new */
            struct label *own = vg_arena_alloc(ev->arena, (m ? m : 1) * sizeof *own);
            if (!own) {
                rc = lq_nomem(ev);
                break;
            }
            if (m)
                memcpy(own, s.v, m * sizeof *own);
            id = (long)gr->n;
            if ((rc = lq_map_put(ev, &map, h, gr->n)))
                break;
            gr->labels[gr->n++] = (struct lq_ser){ .ls = own, .nls = m };
        }
        gr->of[i] = (uint32_t)id;
    }
    lq_map_free(&map);
    vg_free(s.v);
    return rc;
}

static struct lq_val *agg_simple(struct lq_ev *ev, const struct logql_node *n,
                                 const struct groups *gr, const struct lq_sidx *x)
{
    enum logql_vector_op op = n->vec.op;
    struct lq_val *out = lq_val_new(ev);
    struct acc *acc = vg_malloc((gr->n + 1) * sizeof *acc);
    long *oidx = vg_malloc((gr->n + 1) * sizeof *oidx);
    uint32_t *touched = vg_malloc((gr->n + 1) * sizeof *touched);
    if (!out || !acc || !oidx || !touched) {
        lq_nomem(ev);
        goto fail;
    }
    for (size_t g = 0; g < gr->n; g++) {
        acc[g].stamp = -1;
        oidx[g] = -1;
    }
    for (size_t k = 0; k < ev->nsteps; k++) {
        size_t nt = 0;
        for (uint32_t r = x->off[k]; gr->of && r < x->off[k + 1]; r++) {
            uint32_t g = gr->of[x->r[r].s];
            if (acc[g].stamp != (long)k)
                touched[nt++] = g;
            acc_add(op, &acc[g], x->r[r].v, (long)k);
        }
        for (size_t t = 0; t < nt; t++) {
            uint32_t g = touched[t];
            if (oidx[g] < 0 && (oidx[g] = lq_val_add(ev, out, gr->labels[g].ls,
                                                     gr->labels[g].nls)) < 0)
                goto fail;
            if (lq_ser_put(ev, &out->s[oidx[g]], (uint32_t)k, acc_value(op, &acc[g])))
                goto fail;
        }
        if (lq_tick(ev))
            goto fail;
    }
    vg_free(acc);
    vg_free(oidx);
    vg_free(touched);
    return out;
fail:
    lq_val_free(out);
    vg_free(acc);
    vg_free(oidx);
    vg_free(touched);
    return NULL;
}

struct kitem {
    uint32_t rank; /* the group's order of first appearance at the step */
    uint32_t pos;  /* input order */
    uint32_t s;
    double v;
    bool desc;
};

static int kitem_cmp(const void *pa, const void *pb)
{
    const struct kitem *a = pa, *b = pb;
    if (a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    bool an = isnan(a->v), bn = isnan(b->v);
    if (an != bn)
        return an ? 1 : -1;
    if (!an && a->v != b->v) {
        bool less = a->v < b->v;
        return (less != a->desc) ? -1 : 1;
    }
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

/* topk, bottomk, sort, sort_desc: the output series are the input series. */
static struct lq_val *agg_select(struct lq_ev *ev, const struct logql_node *n, struct lq_val *in,
                                 const struct groups *gr, const struct lq_sidx *x)
{
    enum logql_vector_op op = n->vec.op;
    bool desc = op == LQ_VEC_TOPK || op == LQ_VEC_SORT_DESC;
    bool limited = op == LQ_VEC_TOPK || op == LQ_VEC_BOTTOMK;
    size_t maxn = x->off[ev->nsteps];
    struct lq_val *out = lq_val_new(ev);
    struct kitem *it = vg_malloc((maxn + 1) * sizeof *it);
    long *stamp = vg_malloc((gr->n + 1) * sizeof *stamp);
    uint32_t *rank = vg_malloc((gr->n + 1) * sizeof *rank);
    uint32_t *order = vg_malloc((in->n + 1) * sizeof *order);
    size_t norder = 0;
    if (!out || !it || !stamp || !rank || !order) {
        lq_nomem(ev);
        goto fail;
    }
    for (size_t i = 0; i < in->n; i++)
        if (lq_val_add(ev, out, in->s[i].ls, in->s[i].nls) < 0)
            goto fail;
    for (size_t g = 0; g < gr->n; g++)
        stamp[g] = -1;
    for (size_t k = 0; k < ev->nsteps; k++) {
        size_t ni = 0;
        uint32_t nranks = 0;
        for (uint32_t r = x->off[k]; r < x->off[k + 1]; r++) {
            uint32_t g = gr->of[x->r[r].s];
            if (stamp[g] != (long)k) {
                stamp[g] = (long)k;
                rank[g] = nranks++;
            }
            it[ni] = (struct kitem){ rank[g], (uint32_t)ni, x->r[r].s, x->r[r].v, desc };
            ni++;
        }
        qsort(it, ni, sizeof *it, kitem_cmp);
        size_t taken = 0;
        for (size_t i = 0; i < ni; i++) {
            if (i && it[i].rank != it[i - 1].rank)
                taken = 0;
            if (limited && taken >= (size_t)n->vec.param)
                continue;
            taken++;
            if (lq_ser_put(ev, &out->s[it[i].s], (uint32_t)k, it[i].v))
                goto fail;
            if (ev->nsteps == 1)
                order[norder++] = it[i].s;
        }
        if (lq_tick(ev))
            goto fail;
    }
    if (ev->nsteps == 1) { /* list the selected series in selection order */
        struct lq_ser *s = vg_malloc((norder + 1) * sizeof *s);
        if (!s) {
            lq_nomem(ev);
            goto fail;
        }
        for (size_t i = 0; i < norder; i++) {
            s[i] = out->s[order[i]];
            out->s[order[i]].pt = NULL;
        }
        for (size_t i = 0; i < out->n; i++)
            vg_free(out->s[i].pt);
        vg_free(out->s);
        out->s = s;
        out->n = out->cap = norder;
    }
    lq_val_compact(out);
    vg_free(it);
    vg_free(stamp);
    vg_free(rank);
    vg_free(order);
    return out;
fail:
    lq_val_free(out);
    vg_free(it);
    vg_free(stamp);
    vg_free(rank);
    vg_free(order);
    return NULL;
}

struct lq_val *lq_eval_vecagg(struct lq_ev *ev, const struct logql_node *n)
{
    enum logql_vector_op op = n->vec.op;
    const struct logql_node *c = n->vec.expr;
    struct lq_val *in = !ev->lim->no_pushdown && lq_range_pushdown(op, c)
                            ? lq_eval_range_grouped(ev, c, &n->vec.grouping)
                            : lq_eval(ev, c);
    struct lq_val *out = NULL;
    if (!in)
        return NULL;
    if (in->scalar) {
        lq_fail(ev, VG_EINVAL, "aggregation %s over a scalar", logql_vector_op_str(op));
        goto done;
    }
    if ((op == LQ_VEC_TOPK || op == LQ_VEC_BOTTOMK) && n->vec.param < 1) {
        out = lq_val_new(ev); /* Loki: nothing for k < 1 */
        goto done;
    }
    struct groups gr = { 0 };
    struct lq_sidx x = { 0 };
    if (!make_groups(ev, in, &n->vec.grouping, &gr) && !lq_sidx_build(ev, in, &x)) {
        bool sel = op == LQ_VEC_TOPK || op == LQ_VEC_BOTTOMK || op == LQ_VEC_SORT ||
                   op == LQ_VEC_SORT_DESC;
        out = sel ? agg_select(ev, n, in, &gr, &x) : agg_simple(ev, n, &gr, &x);
    }
    lq_sidx_free(&x);
    vg_free(gr.of);
    vg_free(gr.labels);
done:
    lq_val_free(in);
    return out;
}

/* ---- binary operations ---- */

/* l op r as Loki's MergeBinOp. A comparison with filter returns l (the caller swaps in
 * the vector operand's value) and clears *keep when false. */
static double merge(enum logql_binop op, double l, double r, bool filter, bool *keep)
{
    *keep = true;
    bool c;
    switch (op) {
    case LQ_BIN_ADD: return l + r;
    case LQ_BIN_SUB: return l - r;
    case LQ_BIN_MUL: return l * r;
    case LQ_BIN_DIV: return r == 0 ? NAN : l / r;
    case LQ_BIN_MOD: return r == 0 ? NAN : fmod(l, r);
    case LQ_BIN_POW: return pow(l, r);
    case LQ_BIN_EQ: c = l == r; break;
    case LQ_BIN_NE: c = l != r; break;
    case LQ_BIN_GT: c = l > r; break;
    case LQ_BIN_GE: c = l >= r; break;
    case LQ_BIN_LT: c = l < r; break;
    case LQ_BIN_LE: c = l <= r; break;
    default: *keep = false; return 0;
    }
    if (filter) {
        *keep = c;
        return l;
    }
    return c ? 1 : 0;
}

static struct lq_val *vector_scalar(struct lq_ev *ev, const struct logql_node *n,
                                    struct lq_val *vec, double sc, bool scalar_left)
{
    bool filter = !n->bin.return_bool && logql_binop_is_comparison(n->bin.op);
    for (size_t i = 0; i < vec->n; i++) {
        struct lq_ser *s = &vec->s[i];
        size_t j = 0;
        for (size_t p = 0; p < s->n; p++) {
            double x = s->pt[p].v;
            bool keep;
            double v = scalar_left ? merge(n->bin.op, sc, x, filter, &keep)
                                   : merge(n->bin.op, x, sc, filter, &keep);
            if (!keep)
                continue;
            s->pt[j++] = (struct lq_pt){ s->pt[p].k, filter ? x : v };
        }
        s->n = j;
        if (lq_tick(ev)) {
            lq_val_free(vec);
            return NULL;
        }
    }
    lq_val_compact(vec);
    return vec;
}

/* Signature ids of both sides in one id space. */
struct sigs {
    uint32_t *l, *r;
    size_t n;
};

static int make_sigs(struct lq_ev *ev, const struct logql_node *n, const struct lq_val *l,
                     const struct lq_val *r, struct sigs *sg)
{
    struct scratch s = { 0 };
    struct lq_map map;
    sg->n = 0;
    sg->l = vg_malloc((l->n + 1) * sizeof *sg->l);
    sg->r = vg_malloc((r->n + 1) * sizeof *sg->r);
    if (!sg->l || !sg->r || lq_map_init(ev, &map, l->n + r->n))
        return lq_nomem(ev);
    int rc = 0;
    for (int side = 0; side < 2 && !rc; side++) {
        const struct lq_val *v = side ? r : l;
        uint32_t *out = side ? sg->r : sg->l;
        for (size_t i = 0; i < v->n; i++) {
            uint64_t h;
            if ((rc = subset_hash(ev, &s, &v->s[i], &n->bin.matching, n->bin.on, &h, NULL)))
                break;
            long id = lq_map_get(&map, h);
            if (id < 0) {
                id = (long)sg->n;
                if ((rc = lq_map_put(ev, &map, h, sg->n++)))
                    break;
            }
            out[i] = (uint32_t)id;
        }
    }
    lq_map_free(&map);
    vg_free(s.v);
    return rc;
}

/* Output index of series i of a side in the builder, looked up once (cache[i] < 0). */
static long cached_out(struct lq_ev *ev, struct lq_bld *b, long *cache, const struct lq_ser *s,
                       size_t i)
{
    if (cache[i] < 0)
        cache[i] = lq_bld_get(ev, b, s->ls, s->nls, labels_hash(s->ls, s->nls), false);
    return cache[i];
}

struct binrun {
    struct sigs sg;
    struct lq_sidx lx, rx;
    struct lq_val *out;
    struct lq_bld b;
    bool bld;
    long *lout, *rout;
    long *stamp, *stamp2, *one_at;
    uint32_t *one_s;
    double *one_v;
};

static void binrun_free(struct binrun *br)
{
    vg_free(br->sg.l);
    vg_free(br->sg.r);
    lq_sidx_free(&br->lx);
    lq_sidx_free(&br->rx);
    if (br->bld)
        lq_bld_free(&br->b);
    vg_free(br->lout);
    vg_free(br->rout);
    vg_free(br->stamp);
    vg_free(br->stamp2);
    vg_free(br->one_at);
    vg_free(br->one_s);
    vg_free(br->one_v);
}

static long *longs(size_t n, long fill)
{
    long *v = vg_malloc((n + 1) * sizeof *v);
    for (size_t i = 0; v && i < n; i++)
        v[i] = fill;
    return v;
}

static int binrun_init(struct lq_ev *ev, const struct logql_node *n, struct lq_val *l,
                       struct lq_val *r, struct binrun *br)
{
    if (make_sigs(ev, n, l, r, &br->sg) || lq_sidx_build(ev, l, &br->lx) ||
        lq_sidx_build(ev, r, &br->rx))
        return VG_ENOMEM;
    br->out = lq_val_new(ev);
    if (!br->out || lq_bld_init(ev, &br->b, br->out, l->n + r->n))
        return VG_ENOMEM;
    br->bld = true;
    br->lout = longs(l->n, -1);
    br->rout = longs(r->n, -1);
    br->stamp = longs(br->sg.n, -1);
    br->stamp2 = longs(br->sg.n, -1);
    br->one_at = longs(br->sg.n, -1);
    if (!br->lout || !br->rout || !br->stamp || !br->stamp2 || !br->one_at)
        return lq_nomem(ev);
    return 0;
}

static int put_ref(struct lq_ev *ev, struct binrun *br, bool right, const struct lq_val *v,
                   const struct lq_ref *ref, size_t k)
{
    long o = cached_out(ev, &br->b, right ? br->rout : br->lout, &v->s[ref->s], ref->s);
    if (o < 0)
        return (int)o;
    return lq_bld_put(ev, &br->b, (size_t)o, (uint32_t)k, ref->v, dup_labelset);
}

static struct lq_val *set_op(struct lq_ev *ev, const struct logql_node *n, struct lq_val *l,
                             struct lq_val *r)
{
    struct binrun br = { 0 };
    struct lq_val *out = NULL;
    enum logql_binop op = n->bin.op;
    if (binrun_init(ev, n, l, r, &br))
        goto done;
    for (size_t k = 0; k < ev->nsteps; k++) {
        const struct lq_ref *L = br.lx.r + br.lx.off[k], *R = br.rx.r + br.rx.off[k];
        size_t nl = br.lx.off[k + 1] - br.lx.off[k], nr = br.rx.off[k + 1] - br.rx.off[k];
        bool all_l = false, all_r = false;
        if (op == LQ_BIN_AND && (!nl || !nr))
            continue;
        if (op == LQ_BIN_OR && (!nl || !nr)) {
            all_l = true;
            all_r = true;
        }
        if (op == LQ_BIN_UNLESS && (!nl || !nr))
            all_l = true;
        for (size_t j = 0; j < nr; j++)
            br.stamp[br.sg.r[R[j].s]] = (long)k; /* right signatures present at k */
        for (size_t i = 0; i < nl; i++) {
            bool in_r = br.stamp[br.sg.l[L[i].s]] == (long)k;
            bool take = all_l || (op == LQ_BIN_OR) || (op == LQ_BIN_AND ? in_r : !in_r);
            br.stamp2[br.sg.l[L[i].s]] = (long)k; /* left signatures present at k */
            if (take && put_ref(ev, &br, false, l, &L[i], k))
                goto done;
        }
        if (op == LQ_BIN_OR)
            for (size_t j = 0; j < nr; j++)
                if ((all_r || br.stamp2[br.sg.r[R[j].s]] != (long)k) &&
                    put_ref(ev, &br, true, r, &R[j], k))
                    goto done;
        if (lq_tick(ev))
            goto done;
    }
    out = br.out;
    br.out = NULL;
done:
    lq_val_free(br.out);
    binrun_free(&br);
    lq_val_free(l);
    lq_val_free(r);
    return out;
}

/* Loki's resultMetric: labels of a match of many-side series m with one-side series o. */
static int result_labels(struct lq_ev *ev, const struct logql_node *n, const struct lq_ser *m,
                         const struct lq_ser *o, const struct label **ls, size_t *nls)
{
    *ls = m->ls;
    *nls = m->nls;
    if (n->bin.card == LQ_CARD_ONE_TO_ONE && (n->bin.on || n->bin.matching.n) &&
        lq_lbl_filter(ev, *ls, *nls, &n->bin.matching, n->bin.on, ls, nls))
        return VG_ENOMEM;
    for (size_t i = 0; i < n->bin.include.n; i++) {
        const char *name = n->bin.include.v[i];
        struct vg_str v = labels_get(o->ls, o->nls, name);
        if (lq_lbl_set(ev, *ls, *nls, vg_str_c(name), v.p ? v : (struct vg_str){ "", 0 }, ls,
                       nls))
            return VG_ENOMEM;
    }
    return 0;
}

static struct lq_val *vector_vector(struct lq_ev *ev, const struct logql_node *n,
                                    struct lq_val *l, struct lq_val *r)
{
    enum logql_card card = n->bin.card;
    bool swap = card == LQ_CARD_ONE_TO_MANY;
    bool filter = !n->bin.return_bool && logql_binop_is_comparison(n->bin.op);
    struct lq_val *mv = swap ? r : l, *ov = swap ? l : r; /* many side, one side */
    struct binrun br = { 0 };
    struct lq_val *out = NULL;
    long *last_o = NULL;
    if (binrun_init(ev, n, l, r, &br))
        goto done;
    /* many side: sigs/index of mv; one side: of ov */
    uint32_t *msig = swap ? br.sg.r : br.sg.l, *osig = swap ? br.sg.l : br.sg.r;
    struct lq_sidx *mx = swap ? &br.rx : &br.lx, *ox = swap ? &br.lx : &br.rx;
    long *mout = swap ? br.rout : br.lout; /* per many series: output of its last match */
    last_o = longs(mv->n, -1);             /* per many series: one series of that match */
    br.one_s = vg_malloc((br.sg.n + 1) * sizeof *br.one_s);
    br.one_v = vg_malloc((br.sg.n + 1) * sizeof *br.one_v);
    if (!last_o || !br.one_s || !br.one_v) {
        lq_nomem(ev);
        goto done;
    }
    for (size_t k = 0; k < ev->nsteps; k++) {
        for (uint32_t j = ox->off[k]; j < ox->off[k + 1]; j++) {
            uint32_t g = osig[ox->r[j].s];
            if (br.stamp[g] == (long)k) {
                lq_fail(ev, VG_EINVAL, "found duplicate series on the %s hand-side;many-to-many "
                                       "matching not allowed: matching labels must be unique "
                                       "on one side", swap ? "left" : "right");
                goto done;
            }
            br.stamp[g] = (long)k;
            br.one_s[g] = ox->r[j].s;
            br.one_v[g] = ox->r[j].v;
        }
        for (uint32_t i = mx->off[k]; i < mx->off[k + 1]; i++) {
            uint32_t ms = mx->r[i].s, g = msig[ms];
            if (br.stamp[g] != (long)k)
                continue;
            if (card == LQ_CARD_ONE_TO_ONE) {
                if (br.stamp2[g] == (long)k) {
                    lq_fail(ev, VG_EINVAL, "multiple matches for labels: many-to-one matching "
                                           "must be explicit (group_left/group_right)");
                    goto done;
                }
                br.stamp2[g] = (long)k;
            }
            double mval = mx->r[i].v, oval = br.one_v[g];
            double lv = swap ? oval : mval, rv = swap ? mval : oval;
            bool keep;
            double v = merge(n->bin.op, lv, rv, filter, &keep);
            if (!keep)
                continue;
            if (mout[ms] < 0 || last_o[ms] != (long)br.one_s[g]) {
                const struct label *ls;
                size_t nls;
                if (result_labels(ev, n, &mv->s[ms], &ov->s[br.one_s[g]], &ls, &nls))
                    goto done;
                mout[ms] = lq_bld_get(ev, &br.b, ls, nls, labels_hash(ls, nls), false);
                if (mout[ms] < 0)
                    goto done;
                last_o[ms] = br.one_s[g];
            }
            if (lq_bld_put(ev, &br.b, (size_t)mout[ms], (uint32_t)k, v,
                           card == LQ_CARD_ONE_TO_ONE ? dup_labelset
                                                      : "multiple matches for labels: grouping "
                                                        "labels must ensure unique matches"))
                goto done;
        }
        if (lq_tick(ev))
            goto done;
    }
    out = br.out;
    br.out = NULL;
done:
    vg_free(last_o);
    lq_val_free(br.out);
    binrun_free(&br);
    lq_val_free(l);
    lq_val_free(r);
    return out;
}

struct lq_val *lq_eval_binary(struct lq_ev *ev, const struct logql_node *n)
{
    struct lq_val *l = lq_eval(ev, n->bin.lhs);
    if (!l)
        return NULL;
    struct lq_val *r = lq_eval(ev, n->bin.rhs);
    if (!r) {
        lq_val_free(l);
        return NULL;
    }
    if (l->scalar && r->scalar) { /* the parser folds these; kept for completeness */
        bool keep;
        l->sv = merge(n->bin.op, l->sv, r->sv, false, &keep);
        lq_val_free(r);
        return l;
    }
    if (l->scalar || r->scalar) {
        if (logql_binop_is_set(n->bin.op)) {
            lq_fail(ev, VG_EINVAL, "unexpected literal for right leg of logical/set binary "
                                   "operation (%s): %f", logql_binop_str(n->bin.op),
                    (l->scalar ? l : r)->sv);
            lq_val_free(l);
            lq_val_free(r);
            return NULL;
        }
        struct lq_val *vec = l->scalar ? r : l, *sc = l->scalar ? l : r;
        double x = sc->sv;
        bool scalar_left = l->scalar;
        lq_val_free(sc);
        return vector_scalar(ev, n, vec, x, scalar_left);
    }
    if (logql_binop_is_set(n->bin.op))
        return set_op(ev, n, l, r);
    return vector_vector(ev, n, l, r);
}

/* ---- label_replace ---- */

static int replace_labels(struct lq_ev *ev, const struct logql_node *n, struct matcher *m,
                          struct vg_buf *buf, const struct lq_ser *s, const struct label **ls,
                          size_t *nls)
{
    *ls = s->ls;
    *nls = s->nls;
    struct vg_str src = labels_get(s->ls, s->nls, n->replace.src.p);
    if (!src.p)
        src = (struct vg_str){ "", 0 };
    vg_buf_reset(buf);
    int r = matcher_expand(m, src, (struct vg_str){ n->replace.replacement.p,
                                                    n->replace.replacement.len }, buf);
    if (r < 0 || vg_buf_failed(buf))
        return lq_nomem(ev);
    if (r == 0)
        return 0;
    return lq_lbl_set(ev, s->ls, s->nls,
                      (struct vg_str){ n->replace.dst.p, n->replace.dst.len },
                      (struct vg_str){ buf->p, buf->len }, ls, nls);
}

struct lq_val *lq_eval_replace(struct lq_ev *ev, const struct logql_node *n)
{
    struct lq_val *in = lq_eval(ev, n->replace.expr), *out = NULL;
    if (!in)
        return NULL;
    struct vg_err merr = { 0 };
    struct matcher *m = matcher_new(MATCH_RE, (struct vg_str){ "", 0 },
                                    (struct vg_str){ n->replace.regex.p, n->replace.regex.len },
                                    &merr);
    struct vg_buf buf;
    vg_buf_init(&buf);
    struct lq_sidx x = { 0 };
    struct lq_bld b;
    bool bld = false;
    long *oidx = NULL;
    if (!m) {
        if (merr.code == VG_ENOMEM)
            lq_nomem(ev);
        else
            lq_fail(ev, VG_EINVAL, "invalid regex in label_replace: %s", merr.msg);
        goto done;
    }
    if (in->scalar) {
        lq_fail(ev, VG_EINVAL, "label_replace over a scalar");
        goto done;
    }
    out = lq_val_new(ev);
    oidx = vg_malloc((in->n + 1) * sizeof *oidx);
    if (!out || !oidx || lq_bld_init(ev, &b, out, in->n)) {
        if (!oidx)
            lq_nomem(ev);
        goto fail;
    }
    bld = true;
    for (size_t i = 0; i < in->n; i++) {
        const struct label *ls;
        size_t nls;
        if (replace_labels(ev, n, m, &buf, &in->s[i], &ls, &nls))
            goto fail;
        oidx[i] = lq_bld_get(ev, &b, ls, nls, labels_hash(ls, nls), false);
        if (oidx[i] < 0)
            goto fail;
    }
    if (lq_sidx_build(ev, in, &x))
        goto fail;
    for (size_t k = 0; k < ev->nsteps; k++)
        for (uint32_t r = x.off[k]; r < x.off[k + 1]; r++)
            if (lq_bld_put(ev, &b, (size_t)oidx[x.r[r].s], (uint32_t)k, x.r[r].v, dup_labelset))
                goto fail;
    goto done;
fail:
    lq_val_free(out);
    out = NULL;
done:
    if (bld)
        lq_bld_free(&b);
    lq_sidx_free(&x);
    vg_free(oidx);
    vg_buf_free(&buf);
    matcher_free(m);
    lq_val_free(in);
    return out;
}
