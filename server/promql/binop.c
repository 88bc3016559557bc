/* binop: binary operators, as Prometheus's engine (scalarBinop, VectorscalarBinop,
 * VectorBinop, VectorAnd/Or/Unless):
 *
 * - Arithmetic (+ - * / % ^ atan2) follows IEEE and Go: % is math.Mod (fmod), ^ is
 *   math.Pow (pow), x/0 gives ±Inf or NaN. Arithmetic drops __name__.
 * - Comparisons filter (the value kept is the left operand's; for scalar OP vector it is
 *   the vector element's) and keep __name__; with bool they yield 0/1 and drop it.
 * - Vector matching: series are matched by their signature (on(...) labels, or all but
 *   ignoring(...) labels and __name__). One-to-one and many-to-one (group_left;
 *   group_right swaps the sides) are evaluated step by step: the "one" side must be
 *   unique per signature at a step ("found duplicate series for the match group ...");
 *   one-to-one fails when two left series match the same right one ("multiple matches
 *   for labels: many-to-one matching must be explicit (group_left/group_right)").
 *   The result labels: the many side's, minus __name__ for arithmetic, reduced to the
 *   on() labels (or without the ignoring() labels) for one-to-one, plus the group_x()
 *   labels copied from the one side.
 * - and/or/unless match by signature per step; `or` adds right series whose signature
 *   no left series has at that step. */
#include "eval_int.h"

#include "../../storage/base/vg_alloc.h"

#include <math.h>
#include <string.h>

bool ev_binop_drops_name(enum promql_binop op)
{
    switch (op) {
    case BIN_ADD: case BIN_SUB: case BIN_MUL: case BIN_DIV: case BIN_MOD: case BIN_POW:
    case BIN_ATAN2:
        return true;
    default:
        return false;
    }
}

/* The value of l op r; for comparisons the left value, with *keep the outcome. */
static double elem(enum promql_binop op, double l, double r, bool *keep)
{
    *keep = true;
    switch (op) {
    case BIN_ADD: return l + r;
    case BIN_SUB: return l - r;
    case BIN_MUL: return l * r;
    case BIN_DIV: return l / r;
    case BIN_MOD: return fmod(l, r);
    case BIN_POW: return pow(l, r);
    case BIN_ATAN2: return atan2(l, r);
    case BIN_EQL: *keep = l == r; return l;
    case BIN_NEQ: *keep = l != r; return l;
    case BIN_GTR: *keep = l > r; return l;
    case BIN_LSS: *keep = l < r; return l;
    case BIN_GTE: *keep = l >= r; return l;
    case BIN_LTE: *keep = l <= r; return l;
    default: *keep = false; return 0;
    }
}

double ev_scalar_binop(enum promql_binop op, double l, double r)
{
    bool keep;
    double v = elem(op, l, r, &keep);
    if (promql_binop_is_comparison(op))
        return keep ? 1 : 0;
    return v;
}

static struct ev_val *scalar_scalar(struct ev *ev, enum promql_binop op, struct ev_val *l,
                                    struct ev_val *r)
{
    for (size_t k = 0; k < l->nsteps; k++)
        l->v[k] = ev_scalar_binop(op, l->v[k], r->v[k]);
    ev_val_free(ev, r);
    return l;
}

static struct ev_val *vector_scalar(struct ev *ev, const struct promql_node *n,
                                    struct ev_val *vec, struct ev_val *sc, bool swap)
{
    enum promql_binop op = n->bin.op;
    bool rb = n->bin.return_bool, cmp = promql_binop_is_comparison(op);
    bool drop = ev_binop_drops_name(op) || rb;
    size_t ns = vec->nsteps;
    struct ev_build b;
    struct ev_val *out = NULL;
    if (ev_build_init(ev, &b, ns, vec->n))
        goto fail0;
    for (size_t i = 0; i < vec->n; i++) {
        struct ev_series s = vec->s[i];
        if (drop && ev_ser_dropname(ev, &vec->s[i], &s))
            goto fail;
        long o = -1;
        const double *row = ev_row(vec, i);
        const uint8_t *ok = ev_okrow(vec, i);
        for (size_t k = 0; k < ns; k++) {
            if (!ok[k])
                continue;
            double l = row[k], r = sc->v[k];
            if (swap) {
                l = sc->v[k];
                r = row[k];
            }
            bool keep;
            double v = elem(op, l, r, &keep);
            if (cmp && swap)
                v = row[k];
            if (rb) {
                v = keep ? 1 : 0;
                keep = true;
            }
            if (!keep)
                continue;
            if (ev_build_put(ev, &b, &o, &s, k, v))
                goto fail;
        }
        if (ev_check(ev))
            goto fail;
    }
    out = ev_build_done(ev, &b);
    goto fail0;
fail:
    ev_build_abort(ev, &b);
fail0:
    ev_val_free(ev, vec);
    ev_val_free(ev, sc);
    return out;
}

/* Signature group ids for both sides: grp_l[i], grp_r[j] index a shared id space. */
struct groups {
    uint32_t *l, *r;
    size_t n;
};

static int make_groups(struct ev *ev, const struct ev_val *lv, const struct ev_val *rv,
                       const struct promql_matching *m, struct groups *g)
{
    static const struct promql_strings none = { NULL, 0 };
    const struct promql_strings *names = m ? &m->labels : &none;
    bool on = m && m->on;
    struct ev_map map;
    g->l = vg_malloc((lv->n + 1) * sizeof *g->l);
    g->r = vg_malloc((rv->n + 1) * sizeof *g->r);
    g->n = 0;
    if (!g->l || !g->r || ev_map_init(ev, &map, lv->n + rv->n)) {
        vg_free(g->l);
        vg_free(g->r);
        g->l = g->r = NULL;
        (void)ev_nomem(ev);
        return VG_ENOMEM; /* constant, so callers evidently never read g->l / g->r */
    }
    for (int side = 0; side < 2; side++) {
        const struct ev_val *v = side ? rv : lv;
        uint32_t *out = side ? g->r : g->l;
        for (size_t i = 0; i < v->n; i++) {
            uint64_t h = ev_sig_hash(v->s[i].ls, v->s[i].nls, names, on);
            long id = ev_map_get(ev, &map, h, g->n, true);
            if (id < -1) {
                ev_map_free(&map);
                vg_free(g->l);
                vg_free(g->r);
                g->l = g->r = NULL;
                return VG_ENOMEM;
            }
            if ((size_t)id == g->n)
                g->n++;
            out[i] = (uint32_t)id;
        }
    }
    ev_map_free(&map);
    return 0;
}

static struct ev_val *set_op(struct ev *ev, const struct promql_node *n, struct ev_val *l,
                             struct ev_val *r)
{
    enum promql_binop op = n->bin.op;
    size_t ns = l->nsteps;
    struct groups g = { 0 };
    struct ev_build b;
    uint8_t *rany = NULL, *lany = NULL;
    struct ev_val *out = NULL;
    if (make_groups(ev, l, r, n->bin.matching, &g))
        goto fail0;
    /* rany[g*ns+k]: some right series of group g is present at k (lany likewise). */
    rany = vg_calloc(g.n ? g.n * ns : 1, 1);
    lany = vg_calloc(g.n ? g.n * ns : 1, 1);
    if (!rany || !lany) {
        ev_nomem(ev);
        goto fail0;
    }
    for (size_t j = 0; j < r->n; j++) {
        const uint8_t *ok = ev_okrow(r, j);
        uint8_t *a = rany + (size_t)g.r[j] * ns;
        for (size_t k = 0; k < ns; k++)
            a[k] |= ok[k];
    }
    for (size_t i = 0; i < l->n; i++) {
        const uint8_t *ok = ev_okrow(l, i);
        uint8_t *a = lany + (size_t)g.l[i] * ns;
        for (size_t k = 0; k < ns; k++)
            a[k] |= ok[k];
    }
    if (ev_build_init(ev, &b, ns, l->n + r->n))
        goto fail0;
    for (size_t i = 0; i < l->n; i++) {
        const double *row = ev_row(l, i);
        const uint8_t *ok = ev_okrow(l, i), *a = rany + (size_t)g.l[i] * ns;
        long o = -1;
        for (size_t k = 0; k < ns; k++) {
            if (!ok[k])
                continue;
            bool take = op == BIN_OR || (op == BIN_AND ? a[k] : !a[k]);
            if (!take)
                continue;
            if (ev_build_put(ev, &b, &o, &l->s[i], k, row[k]))
                goto fail;
        }
    }
    if (op == BIN_OR) {
        for (size_t j = 0; j < r->n; j++) {
            const double *row = ev_row(r, j);
            const uint8_t *ok = ev_okrow(r, j), *a = lany + (size_t)g.r[j] * ns;
            long o = -1;
            for (size_t k = 0; k < ns; k++) {
                if (!ok[k] || a[k])
                    continue;
                if (ev_build_put(ev, &b, &o, &r->s[j], k, row[k]))
                    goto fail;
            }
        }
    }
    out = ev_build_done(ev, &b);
    goto fail0;
fail:
    ev_build_abort(ev, &b);
fail0:
    vg_free(g.l);
    vg_free(g.r);
    vg_free(rany);
    vg_free(lany);
    ev_val_free(ev, l);
    ev_val_free(ev, r);
    return out;
}

/* Result labels of a match (Prometheus's resultMetric). */
static int result_series(struct ev *ev, const struct promql_node *n, const struct ev_series *ms,
                         const struct ev_series *os, struct ev_series *out)
{
    const struct promql_matching *m = n->bin.matching;
    *out = *ms;
    if (ev_binop_drops_name(n->bin.op) || n->bin.return_bool) {
        if (ev_ser_dropname(ev, ms, out))
            return VG_ENOMEM;
    }
    if (m && m->card == CARD_ONE_TO_ONE) {
        if (m->on || m->labels.n) {
            const struct label *ls;
            size_t nls;
            if (ev_lbl_filter(ev, out->ls, out->nls, &m->labels, m->on, false, &ls, &nls))
                return VG_ENOMEM;
            out->ls = ls;
            out->nls = nls;
        }
    }
    for (size_t i = 0; m && i < m->include.n; i++) {
        struct vg_str name = vg_str_c(m->include.v[i]);
        struct vg_str v = labels_get(os->ls, os->nls, m->include.v[i]);
        const struct label *ls;
        size_t nls;
        if (ev_lbl_set(ev, out->ls, out->nls, name, v, &ls, &nls))
            return VG_ENOMEM;
        out->ls = ls;
        out->nls = nls;
    }
    return 0;
}

static int dup_one_side(struct ev *ev, const struct promql_node *n, const struct ev_series *a,
                        const struct ev_series *b)
{
    const struct promql_matching *m = n->bin.matching;
    static const struct promql_strings none = { NULL, 0 };
    const struct label *ml;
    size_t nml;
    if (ev_lbl_filter(ev, a->ls, a->nls, m ? &m->labels : &none, m && m->on, !(m && m->on),
                      &ml, &nml))
        return VG_ENOMEM;
    char g[160], sa[160], sb[160];
    ev_lbl_str(ml, nml, g, sizeof g);
    ev_lbl_str(a->ls, a->nls, sa, sizeof sa);
    ev_lbl_str(b->ls, b->nls, sb, sizeof sb);
    return ev_fail(ev, VG_ECONFLICT,
                   "found duplicate series for the match group %s on the %s hand-side of the "
                   "operation: [%s, %s];many-to-many matching not allowed: matching labels "
                   "must be unique on one side",
                   g, m && m->card == CARD_ONE_TO_MANY ? "left" : "right", sa, sb);
}

static struct ev_val *vector_vector(struct ev *ev, const struct promql_node *n,
                                    struct ev_val *l, struct ev_val *r)
{
    const struct promql_matching *m = n->bin.matching;
    enum promql_card card = m ? m->card : CARD_ONE_TO_ONE;
    bool swap = card == CARD_ONE_TO_MANY, rb = n->bin.return_bool;
    struct ev_val *mv = swap ? r : l, *ov = swap ? l : r; /* many side, one side */
    size_t ns = l->nsteps;
    struct groups g = { 0 };
    struct ev_build b;
    bool built = false;
    long *one_at = NULL, *stamp = NULL, *mstamp = NULL, *last_j = NULL, *last_o = NULL;
    uint32_t *writer = NULL;
    size_t nwriter = 0;
    struct ev_val *out = NULL;
    if (make_groups(ev, mv, ov, m, &g))
        goto fail;
    size_t ng = g.n ? g.n : 1;
    one_at = vg_malloc(ng * sizeof *one_at);
    stamp = vg_malloc(ng * sizeof *stamp);
    mstamp = vg_malloc(ng * sizeof *mstamp);
    last_j = vg_malloc((mv->n + 1) * sizeof *last_j);
    last_o = vg_malloc((mv->n + 1) * sizeof *last_o);
    if (!one_at || !stamp || !mstamp || !last_j || !last_o) {
        ev_nomem(ev);
        goto fail;
    }
    for (size_t i = 0; i < ng; i++)
        stamp[i] = mstamp[i] = -1;
    for (size_t i = 0; i < mv->n; i++)
        last_j[i] = -1;
    if (ev_build_init(ev, &b, ns, mv->n))
        goto fail;
    built = true;
    for (size_t k = 0; k < ns; k++) {
        if (ev_check(ev))
            goto fail;
        bool many_any = false, one_any = false;
        for (size_t i = 0; i < mv->n && !many_any; i++)
            many_any = ev_okrow(mv, i)[k];
        for (size_t j = 0; j < ov->n && !one_any; j++)
            one_any = ev_okrow(ov, j)[k];
        if (!many_any || !one_any)
            continue; /* Prometheus short-circuits before checking duplicates */
        for (size_t j = 0; j < ov->n; j++) {
            if (!ev_okrow(ov, j)[k])
                continue;
            uint32_t gid = g.r[j];
            if (stamp[gid] == (long)k) {
                dup_one_side(ev, n, &ov->s[j], &ov->s[one_at[gid]]);
                goto fail;
            }
            stamp[gid] = (long)k;
            one_at[gid] = (long)j;
        }
        for (size_t i = 0; i < mv->n; i++) {
            if (!ev_okrow(mv, i)[k])
                continue;
            uint32_t gid = g.l[i];
            if (stamp[gid] != (long)k)
                continue;
            long j = one_at[gid];
            double mval = ev_row(mv, i)[k], oval = ev_row(ov, (size_t)j)[k];
            bool keep;
            double v = swap ? elem(n->bin.op, oval, mval, &keep) : elem(n->bin.op, mval, oval, &keep);
            if (rb) {
                v = keep ? 1 : 0;
                keep = true;
            }
            /* Prometheus 3 reports one-to-one ambiguity even for filtered-out series. */
            if (card == CARD_ONE_TO_ONE) {
                if (mstamp[gid] == (long)k) {
                    ev_fail(ev, VG_ECONFLICT, "multiple matches for labels: many-to-one "
                                              "matching must be explicit (group_left/group_right)");
                    goto fail;
                }
                mstamp[gid] = (long)k;
            }
            if (!keep)
                continue;
            if (last_j[i] != j) {
                struct ev_series rs;
                if (result_series(ev, n, &mv->s[i], &ov->s[j], &rs))
                    goto fail;
                long o = ev_build_series(ev, &b, rs.ls, rs.nls, rs.drop_name);
                if (o < 0)
                    goto fail;
                last_j[i] = j;
                last_o[i] = o;
            }
            size_t o = (size_t)last_o[i];
            if (card != CARD_ONE_TO_ONE) {
                if (o >= nwriter) {
                    size_t nc = b.val->cap + 1;
                    uint32_t *nw = vg_realloc(writer, nc * sizeof *nw);
                    if (!nw) {
                        ev_nomem(ev);
                        goto fail;
                    }
                    writer = nw;
                    nwriter = nc;
                }
                if (ev_okrow(b.val, o)[k] && writer[o] == gid) {
                    ev_fail(ev, VG_ECONFLICT, "multiple matches for labels: grouping labels "
                                              "must ensure unique matches");
                    goto fail;
                }
                writer[o] = gid;
            }
            if (ev_build_set(ev, &b, o, k, v))
                goto fail;
        }
    }
    out = ev_build_done(ev, &b);
    built = false;
fail:
    if (built)
        ev_build_abort(ev, &b);
    vg_free(g.l);
    vg_free(g.r);
    vg_free(one_at);
    vg_free(stamp);
    vg_free(mstamp);
    vg_free(last_j);
    vg_free(last_o);
    vg_free(writer);
    ev_val_free(ev, l);
    ev_val_free(ev, r);
    return out;
}

struct ev_val *ev_binary(struct ev *ev, const struct promql_node *n, const struct ev_steps *st)
{
    struct ev_val *l = ev_eval(ev, n->bin.lhs, st);
    if (!l)
        return NULL;
    struct ev_val *r = ev_eval(ev, n->bin.rhs, st);
    if (!r) {
        ev_val_free(ev, l);
        return NULL;
    }
    if (l->type == PT_SCALAR && r->type == PT_SCALAR)
        return scalar_scalar(ev, n->bin.op, l, r);
    if (l->type == PT_VECTOR && r->type == PT_SCALAR)
        return vector_scalar(ev, n, l, r, false);
    if (l->type == PT_SCALAR && r->type == PT_VECTOR)
        return vector_scalar(ev, n, r, l, true);
    if (l->type == PT_VECTOR && r->type == PT_VECTOR) {
        if (promql_binop_is_set(n->bin.op))
            return set_op(ev, n, l, r);
        return vector_vector(ev, n, l, r);
    }
    enum promql_type lt = l->type, rt = r->type;
    ev_val_free(ev, l);
    ev_val_free(ev, r);
    ev_fail(ev, VG_EINTERNAL, "binary operator %s between %s and %s",
            promql_binop_str(n->bin.op), promql_type_name(lt), promql_type_name(rt));
    return NULL;
}
