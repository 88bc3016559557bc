/* funcs: every function of functions.h, as Prometheus's functions.go:
 *
 * - Element-wise functions (abs, ceil, ..., clamp*, round, the date functions whose
 *   vector argument defaults to vector(time())) drop __name__ and keep the rest.
 * - Range-vector functions take each series' window (end - range, end] per step and
 *   hand it to kernels.h; all but last_over_time drop __name__. A series yields nothing
 *   at a step whose window is empty (or too short for the kernel).
 * - absent(v) / absent_over_time(r): 1 at steps where nothing was there, labelled with
 *   the argument selector's equality matchers (a label matched twice is left out).
 * - timestamp(selector) is the time of the sample picked; of anything else the step.
 * - label_replace / label_join rewrite labels (regex fully anchored, $1/${name}
 *   expansion as Go's regexp.Expand through matcher_expand); setting __name__ keeps it.
 * - sort, sort_desc, sort_by_label(_desc) order an instant result (NaN last; labels in
 *   natural order as facette/natsort, ties by the full label set).
 * - histogram_quantile groups classic buckets by all labels but le, per step. */
#include "eval_int.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_buf.h"
#include "kernels.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Go's math.Max / math.Min (NaN wins unless an infinity does). */
static double go_max(double x, double y)
{
    if (isinf(x) && x > 0)
        return x;
    if (isinf(y) && y > 0)
        return y;
    if (isnan(x) || isnan(y))
        return NAN;
    if (x == 0 && x == y)
        return signbit(x) ? y : x;
    return x > y ? x : y;
}

static double go_min(double x, double y)
{
    if (isinf(x) && x < 0)
        return x;
    if (isinf(y) && y < 0)
        return y;
    if (isnan(x) || isnan(y))
        return NAN;
    if (x == 0 && x == y)
        return signbit(x) ? x : y;
    return x < y ? x : y;
}

static const struct promql_node *arg(const struct promql_node *n, size_t i)
{
    return i < n->call.nargs ? n->call.args[i] : NULL;
}

static struct vg_str str_arg(const struct promql_node *n, size_t i)
{
    const struct promql_node *a = ev_unparen(arg(n, i));
    if (!a || a->kind != PN_STRING)
        return (struct vg_str){ "", 0 };
    return (struct vg_str){ a->string.p, a->string.len };
}

/* ---- element-wise ---- */

/* x mapped by function id; p holds the np scalar arguments after the vector. */
static double map1(enum promql_fn_id id, double x, const double *p, size_t np, bool *keep)
{
    *keep = true;
    switch (id) {
    case FN_ABS: return fabs(x);
    case FN_CEIL: return ceil(x);
    case FN_FLOOR: return floor(x);
    case FN_EXP: return exp(x);
    case FN_LN: return log(x);
    case FN_LOG2: return log2(x);
    case FN_LOG10: return log10(x);
    case FN_SQRT: return sqrt(x);
    case FN_SGN: return kern_sgn(x);
    case FN_DEG: return x * 180 / M_PI;
    case FN_RAD: return x * M_PI / 180;
    case FN_SIN: return sin(x);
    case FN_COS: return cos(x);
    case FN_TAN: return tan(x);
    case FN_ASIN: return asin(x);
    case FN_ACOS: return acos(x);
    case FN_ATAN: return atan(x);
    case FN_SINH: return sinh(x);
    case FN_COSH: return cosh(x);
    case FN_TANH: return tanh(x);
    case FN_ASINH: return asinh(x);
    case FN_ACOSH: return acosh(x);
    case FN_ATANH: return atanh(x);
    case FN_ROUND: return kern_round(x, np ? p[0] : 1);
    case FN_CLAMP:
        if (np < 2 || p[1] < p[0]) {
            *keep = false;
            return 0;
        }
        return go_max(p[0], go_min(p[1], x));
    case FN_CLAMP_MAX: return np ? go_min(p[0], x) : x;
    case FN_CLAMP_MIN: return np ? go_max(p[0], x) : x;
    case FN_DAY_OF_MONTH: return kern_day_of_month(x);
    case FN_DAY_OF_WEEK: return kern_day_of_week(x);
    case FN_DAY_OF_YEAR: return kern_day_of_year(x);
    case FN_DAYS_IN_MONTH: return kern_days_in_month(x);
    case FN_HOUR: return kern_hour(x);
    case FN_MINUTE: return kern_minute(x);
    case FN_MONTH: return kern_month(x);
    case FN_YEAR: return kern_year(x);
    default: *keep = false; return 0;
    }
}

static bool is_date_fn(enum promql_fn_id id)
{
    switch (id) {
    case FN_DAY_OF_MONTH: case FN_DAY_OF_WEEK: case FN_DAY_OF_YEAR: case FN_DAYS_IN_MONTH:
    case FN_HOUR: case FN_MINUTE: case FN_MONTH: case FN_YEAR:
        return true;
    default:
        return false;
    }
}

static struct ev_val *elementwise(struct ev *ev, const struct promql_node *n,
                                  const struct ev_steps *st)
{
    enum promql_fn_id id = n->call.fn->id;
    size_t ns = st->n;
    if (is_date_fn(id) && n->call.nargs == 0) {
        struct ev_val *v = ev_val_new(ev, PT_VECTOR, ns);
        if (!v || ev_val_add(ev, v, NULL, 0, false) < 0) {
            ev_val_free(ev, v);
            return NULL;
        }
        bool keep;
        for (size_t k = 0; k < ns; k++) {
            ev_row(v, 0)[k] = map1(id, (double)ev_t(st, k) / 1000.0, NULL, 0, &keep);
            ev_okrow(v, 0)[k] = 1;
        }
        if (ev_account(ev, v)) {
            ev_val_free(ev, v);
            return NULL;
        }
        return v;
    }
    struct ev_val *sc[PROMQL_MAX_FN_ARGS] = { 0 }, *out = NULL;
    size_t nsc = 0;
    struct ev_val *in = ev_eval(ev, n->call.args[0], st);
    if (!in)
        return NULL;
    for (size_t i = 1; i < n->call.nargs && nsc < PROMQL_MAX_FN_ARGS; i++) {
        sc[nsc] = ev_eval(ev, n->call.args[i], st);
        if (!sc[nsc])
            goto fail0;
        nsc++;
    }
    struct ev_build b;
    if (ev_build_init(ev, &b, ns, in->n))
        goto fail0;
    for (size_t i = 0; i < in->n; i++) {
        struct ev_series s;
        long o = -1;
        if (ev_ser_dropname(ev, &in->s[i], &s))
            goto fail;
        const double *row = ev_row(in, i);
        const uint8_t *ok = ev_okrow(in, i);
        for (size_t k = 0; k < ns; k++) {
            if (!ok[k])
                continue;
            double p[PROMQL_MAX_FN_ARGS];
            for (size_t j = 0; j < nsc; j++)
                p[j] = sc[j]->v[k];
            bool keep;
            double v = map1(id, row[k], p, nsc, &keep);
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
    ev_val_free(ev, in);
    for (size_t j = 0; j < nsc; j++)
        ev_val_free(ev, sc[j]);
    return out;
}

/* ---- range-vector functions ---- */

/* Labels for absent() / absent_over_time(): equality matchers of the selector. */
static int absent_labels(struct ev *ev, const struct promql_node *a, const struct label **out,
                         size_t *nout)
{
    *out = NULL;
    *nout = 0;
    a = ev_unparen(a);
    if (a && a->kind == PN_MATRIX_SELECTOR)
        a = a->msel.vs;
    if (!a || a->kind != PN_VECTOR_SELECTOR)
        return 0;
    const struct label *ls = NULL;
    size_t n = 0;
    for (size_t i = 0; i < a->sel.nms; i++) {
        const struct matcher *m = a->sel.ms[i];
        struct vg_str name = vg_str_c(m->name);
        if (vg_str_eq_c(name, "__name__"))
            continue;
        bool has = labels_get(ls, n, m->name).p != NULL;
        /* a name seen before (set or deleted) is deleted */
        bool seen = has;
        for (size_t j = 0; j < i && !seen; j++)
            seen = !strcmp(a->sel.ms[j]->name, m->name) && a->sel.ms[j]->op == MATCH_EQ;
        struct vg_str v = { "", 0 };
        if (m->op == MATCH_EQ && !seen)
            v = (struct vg_str){ m->value, m->value_len };
        if (ev_lbl_set(ev, ls, n, name, v, &ls, &n))
            return VG_ENOMEM;
    }
    *out = ls;
    *nout = n;
    return 0;
}

static struct ev_val *absent_series(struct ev *ev, const struct promql_node *a, size_t ns,
                                    const uint8_t *present)
{
    const struct label *ls;
    size_t nls;
    struct ev_val *v = ev_val_new(ev, PT_VECTOR, ns);
    if (!v)
        return NULL;
    if (absent_labels(ev, a, &ls, &nls) || ev_val_add(ev, v, ls, nls, false) < 0) {
        ev_val_free(ev, v);
        return NULL;
    }
    for (size_t k = 0; k < ns; k++) {
        ev_row(v, 0)[k] = 1;
        ev_okrow(v, 0)[k] = !present[k];
    }
    ev_val_compact(v);
    if (ev_account(ev, v)) {
        ev_val_free(ev, v);
        return NULL;
    }
    return v;
}

static bool counter_like(struct vg_str name)
{
    static const char *suf[] = { "_total", "_sum", "_count", "_bucket" };
    for (size_t i = 0; i < 4; i++) {
        size_t l = strlen(suf[i]);
        if (name.len >= l && !memcmp(name.p + name.len - l, suf[i], l))
            return true;
    }
    return false;
}

static int check_factor(struct ev *ev, const char *what, const char *sym, double f)
{
    if (f <= 0 || f >= 1)
        return ev_fail(ev, VG_EINVAL, "invalid %s factor. Expected: 0 < %s < 1, got: %f", what,
                       sym, f);
    return 0;
}

static struct ev_val *range_function(struct ev *ev, const struct promql_node *n,
                                     const struct ev_steps *st)
{
    enum promql_fn_id id = n->call.fn->id;
    size_t ns = st->n, ridx = 0;
    struct ev_val *sc[PROMQL_MAX_FN_ARGS] = { 0 };
    struct ev_range *r = NULL;
    double *scratch = NULL;
    uint8_t *present = NULL;
    struct ev_build b;
    bool built = false;
    struct ev_val *out = NULL;
    for (size_t i = 0; i < n->call.nargs; i++) {
        if (promql_node_type(n->call.args[i]) == PT_MATRIX) {
            ridx = i;
            break;
        }
    }
    for (size_t i = 0; i < n->call.nargs && i < PROMQL_MAX_FN_ARGS; i++) {
        if (i == ridx)
            continue;
        sc[i] = ev_eval(ev, n->call.args[i], st);
        if (!sc[i])
            goto fail;
    }
    r = ev_eval_range(ev, n->call.args[ridx], st);
    if (!r)
        goto fail;
    size_t maxn = 1;
    for (size_t i = 0; i < r->n; i++)
        if (r->v[i].n > maxn)
            maxn = r->v[i].n;
    if (id == FN_QUANTILE_OVER_TIME || id == FN_MAD_OVER_TIME) {
        scratch = vg_malloc(maxn * sizeof *scratch);
        if (!scratch) {
            ev_nomem(ev);
            goto fail;
        }
    }
    if (id == FN_ABSENT_OVER_TIME) {
        present = vg_calloc(ns ? ns : 1, 1);
        if (!present) {
            ev_nomem(ev);
            goto fail;
        }
    }
    if (ev_build_init(ev, &b, ns, r->n))
        goto fail;
    built = true;
    for (size_t i = 0; i < r->n; i++) {
        const struct ev_rser *rs = &r->v[i];
        struct ev_series in = { rs->ls, rs->nls, rs->drop_name }, os = in;
        if (id != FN_LAST_OVER_TIME && id != FN_FIRST_OVER_TIME && ev_ser_dropname(ev, &in, &os))
            goto fail;
        long o = -1;
        size_t lo = 0, hi = 0;
        for (size_t k = 0; k < ns; k++) {
            int64_t t = ev_t(st, k);
            int64_t te = ev_at(ev, r->at, r->at_ms, r->offset, t);
            while (hi < rs->n && rs->s[hi].t <= te)
                hi++;
            while (lo < hi && rs->s[lo].t <= te - r->range)
                lo++;
            if (lo >= hi)
                continue;
            const struct tsdb_sample *w = rs->s + lo;
            size_t wn = hi - lo;
            double a[PROMQL_MAX_FN_ARGS]; /* the scalar arguments at this step */
            for (size_t j = 0; j < PROMQL_MAX_FN_ARGS; j++)
                a[j] = sc[j] ? sc[j]->v[k] : NAN;
            bool ok = true;
            double v = 0;
            switch (id) {
            case FN_RATE: v = kern_extrapolated_rate(w, wn, te - r->range, te, true, true, &ok); break;
            case FN_INCREASE: v = kern_extrapolated_rate(w, wn, te - r->range, te, true, false, &ok); break;
            case FN_DELTA: v = kern_extrapolated_rate(w, wn, te - r->range, te, false, false, &ok); break;
            case FN_IRATE: v = kern_instant_rate(w, wn, true, &ok); break;
            case FN_IDELTA: v = kern_instant_rate(w, wn, false, &ok); break;
            case FN_DERIV: v = kern_deriv(w, wn, &ok); break;
            case FN_PREDICT_LINEAR:
                v = kern_predict_linear(w, wn, t, a[1], &ok);
                break;
            case FN_DOUBLE_EXPONENTIAL_SMOOTHING:
                if (check_factor(ev, "smoothing", "sf", a[1]) ||
                    check_factor(ev, "trend", "tf", a[2]))
                    goto fail;
                v = kern_double_exp_smoothing(w, wn, a[1], a[2], &ok);
                break;
            case FN_CHANGES: v = kern_changes(w, wn); break;
            case FN_RESETS: v = kern_resets(w, wn); break;
            case FN_AVG_OVER_TIME: v = kern_avg_over_time(w, wn); break;
            case FN_SUM_OVER_TIME: v = kern_sum_over_time(w, wn); break;
            case FN_MIN_OVER_TIME: v = kern_min_over_time(w, wn); break;
            case FN_MAX_OVER_TIME: v = kern_max_over_time(w, wn); break;
            case FN_COUNT_OVER_TIME: v = (double)wn; break;
            case FN_STDDEV_OVER_TIME: v = kern_stddev_over_time(w, wn); break;
            case FN_STDVAR_OVER_TIME: v = kern_stdvar_over_time(w, wn); break;
            case FN_LAST_OVER_TIME: v = w[wn - 1].v; break;
            case FN_FIRST_OVER_TIME: v = w[0].v; break;
            case FN_TS_OF_FIRST_OVER_TIME: v = (double)w[0].t / 1000.0; break;
            case FN_TS_OF_LAST_OVER_TIME: v = (double)w[wn - 1].t / 1000.0; break;
            case FN_TS_OF_MIN_OVER_TIME: v = kern_ts_of_min_over_time(w, wn); break;
            case FN_TS_OF_MAX_OVER_TIME: v = kern_ts_of_max_over_time(w, wn); break;
            case FN_PRESENT_OVER_TIME: v = 1; break;
            case FN_MAD_OVER_TIME: v = kern_mad_over_time(w, wn, scratch); break;
            case FN_QUANTILE_OVER_TIME: {
                double q = a[0];
                if (ev_warn_quantile(ev, q))
                    goto fail;
                v = kern_quantile_over_time(q, w, wn, scratch);
                break;
            }
            case FN_ABSENT_OVER_TIME:
                present[k] = 1;
                ok = false;
                break;
            default:
                ok = false;
                break;
            }
            if (!ok)
                continue;
            if (ev_build_put(ev, &b, &o, &os, k, v))
                goto fail;
        }
        if ((id == FN_RATE || id == FN_INCREASE) && o >= 0) {
            struct vg_str name = labels_get(rs->ls, rs->nls, "__name__");
            if (name.len && !counter_like(name) &&
                ev_annotate(ev, false, "PromQL info: metric might not be a counter, name does "
                                       "not end in _total/_sum/_count/_bucket: \"%.*s\"",
                            (int)name.len, name.p))
                goto fail;
        }
        if (ev_check(ev))
            goto fail;
    }
    if (id == FN_ABSENT_OVER_TIME)
        out = absent_series(ev, n->call.args[ridx], ns, present);
    else
        out = ev_build_done(ev, &b), built = false;
fail:
    if (built)
        ev_build_abort(ev, &b);
    for (size_t i = 0; i < PROMQL_MAX_FN_ARGS; i++)
        ev_val_free(ev, sc[i]);
    ev_range_free(ev, r);
    vg_free(scratch);
    vg_free(present);
    return out;
}

/* ---- special functions ---- */

static struct ev_val *fn_absent(struct ev *ev, const struct promql_node *n,
                                const struct ev_steps *st)
{
    struct ev_val *in = ev_eval(ev, n->call.args[0], st);
    if (!in)
        return NULL;
    uint8_t *present = vg_calloc(st->n ? st->n : 1, 1);
    if (!present) {
        ev_val_free(ev, in);
        ev_nomem(ev);
        return NULL;
    }
    for (size_t i = 0; i < in->n; i++)
        for (size_t k = 0; k < st->n; k++)
            present[k] |= ev_okrow(in, i)[k];
    ev_val_free(ev, in);
    struct ev_val *out = absent_series(ev, n->call.args[0], st->n, present);
    vg_free(present);
    return out;
}

static struct ev_val *fn_scalar(struct ev *ev, const struct promql_node *n,
                                const struct ev_steps *st)
{
    struct ev_val *in = ev_eval(ev, n->call.args[0], st);
    if (!in)
        return NULL;
    struct ev_val *out = ev_scalar_new(ev, st->n, NAN);
    if (out) {
        for (size_t k = 0; k < st->n; k++) {
            size_t c = 0, at = 0;
            for (size_t i = 0; i < in->n && c < 2; i++)
                if (ev_okrow(in, i)[k]) {
                    c++;
                    at = i;
                }
            if (c == 1)
                out->v[k] = ev_row(in, at)[k];
        }
    }
    ev_val_free(ev, in);
    return out;
}

/* min_of(a, b) / max_of(a, b): Go's math.Min / math.Max of two scalars per step. */
static struct ev_val *fn_min_max_of(struct ev *ev, const struct promql_node *n,
                                    const struct ev_steps *st)
{
    struct ev_val *a = ev_eval(ev, n->call.args[0], st);
    if (!a)
        return NULL;
    struct ev_val *b = ev_eval(ev, n->call.args[1], st);
    if (b) {
        bool min = n->call.fn->id == FN_MIN_OF;
        for (size_t k = 0; k < st->n; k++)
            a->v[k] = min ? go_min(a->v[k], b->v[k]) : go_max(a->v[k], b->v[k]);
        ev_val_free(ev, b);
        return a;
    }
    ev_val_free(ev, a);
    return NULL;
}

static struct ev_val *fn_vector(struct ev *ev, const struct promql_node *n,
                                const struct ev_steps *st)
{
    struct ev_val *in = ev_eval(ev, n->call.args[0], st);
    if (!in)
        return NULL;
    struct ev_val *v = ev_val_new(ev, PT_VECTOR, st->n);
    if (!v || ev_val_add(ev, v, NULL, 0, false) < 0) {
        ev_val_free(ev, v);
        ev_val_free(ev, in);
        return NULL;
    }
    for (size_t k = 0; k < st->n; k++) {
        ev_row(v, 0)[k] = in->v[k];
        ev_okrow(v, 0)[k] = 1;
    }
    ev_val_free(ev, in);
    if (ev_account(ev, v)) {
        ev_val_free(ev, v);
        return NULL;
    }
    return v;
}

struct ev_val *ev_eval_timestamps(struct ev *ev, const struct promql_node *vs,
                                  const struct ev_steps *st);

static struct ev_val *fn_timestamp(struct ev *ev, const struct promql_node *n,
                                   const struct ev_steps *st)
{
    const struct promql_node *a = ev_unparen(n->call.args[0]);
    struct ev_val *in;
    if (a->kind == PN_VECTOR_SELECTOR) {
        in = ev_eval_timestamps(ev, a, st);
    } else {
        in = ev_eval(ev, a, st);
        if (in)
            for (size_t i = 0; i < in->n; i++)
                for (size_t k = 0; k < st->n; k++)
                    ev_row(in, i)[k] = (double)ev_t(st, k) / 1000.0;
    }
    if (!in)
        return NULL;
    struct ev_build b;
    if (ev_build_init(ev, &b, st->n, in->n)) {
        ev_val_free(ev, in);
        return NULL;
    }
    for (size_t i = 0; i < in->n; i++) {
        struct ev_series s;
        if (ev_ser_dropname(ev, &in->s[i], &s) || ev_build_copy(ev, &b, &s, in, i))
            goto fail;
    }
    ev_val_free(ev, in);
    return ev_build_done(ev, &b);
fail:
    ev_val_free(ev, in);
    ev_build_abort(ev, &b);
    return NULL;
}


/* Rewrites every series' labels through fn (label_replace / label_join). */
static struct ev_val *relabel(struct ev *ev, const struct promql_node *n,
                              const struct ev_steps *st, struct matcher *re)
{
    enum promql_fn_id id = n->call.fn->id;
    struct vg_str dst = str_arg(n, 1);
    struct ev_val *in = ev_eval(ev, n->call.args[0], st);
    if (!in)
        return NULL;
    struct vg_buf buf;
    vg_buf_init(&buf);
    struct ev_build b;
    if (ev_build_init(ev, &b, st->n, in->n)) {
        ev_val_free(ev, in);
        return NULL;
    }
    for (size_t i = 0; i < in->n; i++) {
        struct ev_series s = in->s[i];
        vg_buf_reset(&buf);
        bool set = true;
        if (id == FN_LABEL_REPLACE) {
            struct vg_str src;
            char name[256];
            struct vg_str sn = str_arg(n, 3);
            size_t l = sn.len < sizeof name - 1 ? sn.len : sizeof name - 1;
            memcpy(name, sn.p, l);
            name[l] = 0;
            src = labels_get(s.ls, s.nls, name);
            int rc = matcher_expand(re, src, str_arg(n, 2), &buf);
            if (rc < 0) {
                ev_nomem(ev);
                goto fail;
            }
            set = rc == 1;
        } else {
            struct vg_str sep = str_arg(n, 2);
            for (size_t j = 3; j < n->call.nargs; j++) {
                struct vg_str sn = str_arg(n, j);
                char name[256];
                size_t l = sn.len < sizeof name - 1 ? sn.len : sizeof name - 1;
                memcpy(name, sn.p, l);
                name[l] = 0;
                if (j > 3)
                    vg_buf_append(&buf, sep.p, sep.len);
                struct vg_str v = labels_get(s.ls, s.nls, name);
                vg_buf_append(&buf, v.p, v.len);
            }
            if (vg_buf_failed(&buf)) {
                ev_nomem(ev);
                goto fail;
            }
        }
        if (set) {
            if (ev_lbl_set(ev, s.ls, s.nls, dst, (struct vg_str){ buf.p, buf.len }, &s.ls,
                           &s.nls))
                goto fail;
            if (vg_str_eq_c(dst, "__name__"))
                s.drop_name = false;
        }
        if (ev_build_copy(ev, &b, &s, in, i))
            goto fail;
    }
    vg_buf_free(&buf);
    ev_val_free(ev, in);
    return ev_build_done(ev, &b);
fail:
    vg_buf_free(&buf);
    ev_val_free(ev, in);
    ev_build_abort(ev, &b);
    return NULL;
}

static struct ev_val *fn_label_replace(struct ev *ev, const struct promql_node *n,
                                       const struct ev_steps *st)
{
    struct vg_str dst = str_arg(n, 1), re = str_arg(n, 4);
    struct vg_err e;
    struct matcher *m = matcher_new(MATCH_RE, VG_STR("x"), re, &e);
    if (!m) {
        if (e.code == VG_ENOMEM)
            ev_nomem(ev);
        else
            ev_fail(ev, VG_EINVAL, "invalid regular expression in label_replace(): %.*s",
                    (int)re.len, re.p);
        return NULL;
    }
    if (!ev_label_name_ok(dst)) {
        matcher_free(m);
        ev_fail(ev, VG_EINVAL, "invalid destination label name in label_replace(): %.*s",
                (int)dst.len, dst.p);
        return NULL;
    }
    struct ev_val *v = relabel(ev, n, st, m);
    matcher_free(m);
    return v;
}

static struct ev_val *fn_label_join(struct ev *ev, const struct promql_node *n,
                                    const struct ev_steps *st)
{
    struct vg_str dst = str_arg(n, 1);
    if (!ev_label_name_ok(dst)) {
        ev_fail(ev, VG_EINVAL, "invalid destination label name in label_join(): %.*s",
                (int)dst.len, dst.p);
        return NULL;
    }
    for (size_t j = 3; j < n->call.nargs; j++) {
        struct vg_str s = str_arg(n, j);
        if (!ev_label_name_ok(s)) {
            ev_fail(ev, VG_EINVAL, "invalid source label name in label_join(): %.*s",
                    (int)s.len, s.p);
            return NULL;
        }
    }
    return relabel(ev, n, st, NULL);
}

/* facette/natsort's Compare: true when a sorts before b. */
static size_t chunk(const char *s, size_t len, size_t i)
{
    bool dig = s[i] >= '0' && s[i] <= '9';
    size_t j = i;
    while (j < len && ((s[j] >= '0' && s[j] <= '9') == dig))
        j++;
    return j;
}

static bool chunk_int(const char *s, size_t len, long long *out)
{
    long long v = 0;
    if (!len || len > 18)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static bool nat_less(struct vg_str a, struct vg_str b)
{
    size_t ia = 0, ib = 0;
    while (ia < a.len) {
        if (ib >= b.len)
            return false;
        size_t ea = chunk(a.p, a.len, ia), eb = chunk(b.p, b.len, ib);
        bool lasta = ea >= a.len, lastb = eb >= b.len;
        long long na, nb;
        struct vg_str ca = { a.p + ia, ea - ia }, cb = { b.p + ib, eb - ib };
        if (chunk_int(ca.p, ca.len, &na) && chunk_int(cb.p, cb.len, &nb)) {
            if (na == nb) {
                if (lasta)
                    return true;
                if (lastb)
                    return false;
                ia = ea;
                ib = eb;
                continue;
            }
            return na < nb;
        }
        if (vg_str_eq(ca, cb)) {
            if (lasta)
                return true;
            if (lastb)
                return false;
            ia = ea;
            ib = eb;
            continue;
        }
        return vg_str_cmp(ca, cb) < 0;
    }
    return false;
}

struct sort_ctx {
    const struct ev_val *v;
    const struct promql_node *n;
    enum promql_fn_id id;
};

static int sort_cmp(const struct sort_ctx *c, size_t a, size_t b)
{
    const struct ev_series *sa = &c->v->s[a], *sb = &c->v->s[b];
    if (c->id == FN_SORT || c->id == FN_SORT_DESC) {
        double va = ev_row(c->v, a)[0], vb = ev_row(c->v, b)[0];
        if (isnan(va) || isnan(vb))
            return isnan(va) - isnan(vb); /* NaN last */
        if (va == vb)
            return 0;
        return (c->id == FN_SORT) == (va < vb) ? -1 : 1;
    }
    bool desc = c->id == FN_SORT_BY_LABEL_DESC;
    for (size_t j = 1; j < c->n->call.nargs; j++) {
        struct vg_str name = str_arg(c->n, j);
        char nm[256];
        size_t l = name.len < sizeof nm - 1 ? name.len : sizeof nm - 1;
        memcpy(nm, name.p, l);
        nm[l] = 0;
        struct vg_str la = labels_get(sa->ls, sa->nls, nm), lb = labels_get(sb->ls, sb->nls, nm);
        if (!la.p)
            la = (struct vg_str){ "", 0 };
        if (!lb.p)
            lb = (struct vg_str){ "", 0 };
        if (vg_str_eq(la, lb))
            continue;
        bool less = nat_less(la, lb);
        return desc ? (less ? 1 : -1) : (less ? -1 : 1);
    }
    int r = labels_cmp(sa->ls, sa->nls, sb->ls, sb->nls);
    return desc ? -r : r;
}

/* Stable merge sort of series indexes. */
static void msort(const struct sort_ctx *c, size_t *a, size_t *tmp, size_t n)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    msort(c, a, tmp, h);
    msort(c, a + h, tmp, n - h);
    size_t i = 0, j = h, o = 0;
    while (i < h && j < n)
        tmp[o++] = sort_cmp(c, a[j], a[i]) < 0 ? a[j++] : a[i++];
    while (i < h)
        tmp[o++] = a[i++];
    while (j < n)
        tmp[o++] = a[j++];
    memcpy(a, tmp, n * sizeof *a);
}

static struct ev_val *fn_sort(struct ev *ev, const struct promql_node *n,
                              const struct ev_steps *st)
{
    if (ev->range &&
        ev_annotate(ev, true, "PromQL warning: sort is ineffective for range queries since "
                              "results are always ordered by labels"))
        return NULL;
    struct ev_val *in = ev_eval(ev, n->call.args[0], st);
    if (!in || in->nsteps != 1 || in->n < 2)
        return in; /* a range result is ordered by labels anyway */
    size_t *idx = vg_malloc(in->n * sizeof *idx), *tmp = vg_malloc(in->n * sizeof *tmp);
    struct ev_val *out = ev_val_new(ev, PT_VECTOR, 1);
    if (!idx || !tmp || !out) {
        vg_free(idx);
        vg_free(tmp);
        ev_val_free(ev, out);
        ev_val_free(ev, in);
        ev_nomem(ev);
        return NULL;
    }
    for (size_t i = 0; i < in->n; i++)
        idx[i] = i;
    struct sort_ctx c = { in, n, n->call.fn->id };
    msort(&c, idx, tmp, in->n);
    for (size_t x = 0; x < in->n; x++) {
        size_t i = idx[x];
        if (ev_val_add(ev, out, in->s[i].ls, in->s[i].nls, in->s[i].drop_name) < 0) {
            out->n = 0;
            break;
        }
        ev_row(out, x)[0] = ev_row(in, i)[0];
        ev_okrow(out, x)[0] = ev_okrow(in, i)[0];
    }
    bool failed = out->n != in->n;
    vg_free(idx);
    vg_free(tmp);
    ev_val_free(ev, in);
    if (failed || ev_account(ev, out)) {
        ev_val_free(ev, out);
        return NULL;
    }
    return out;
}

/* A quantile as a label value: Prometheus's labels.FormatOpenMetricsFloat (Go's shortest
 * %g, with ".0" added to a plain integer: 0 -> "0.0", 0.25 -> "0.25", 1 -> "1.0"). */
static void quantile_label(double q, char buf[48])
{
    char g[32];
    ev_g(q == 0 ? 0 : q, g); /* -0 prints as 0 too */
    bool plain = !isnan(q) && !isinf(q) && !strpbrk(g, ".e");
    snprintf(buf, 48, "%s%s", g, plain ? ".0" : "");
}

#define HIST_MAX_ARGS 12 /* histogram_quantiles: 3 declared + 9 variadic */

/* The classic-histogram functions: histogram_quantile(q, v), histogram_fraction(lower,
 * upper, v) and histogram_quantiles(v, label, q1, ...). Buckets group by every label
 * but le (__name__ included, as Prometheus); per step each group with a bucket yields
 * one value (histogram_quantiles: one per quantile, in a series with label="<q>"). Two
 * outputs with one label set at one step are an error. */
struct hist {
    size_t ng;
    struct ev_series *gser; /* output labels per group */
    uint32_t *first;        /* an input series of the group (for annotations) */
    double *ub;             /* le per input series */
    uint32_t *ord;          /* input series ordered by group: ord[gs[g] .. gs[g + 1]) */
    size_t *gs;
    struct kern_bucket *bk;
};

static void hist_free(struct hist *h)
{
    vg_free(h->gser);
    vg_free(h->first);
    vg_free(h->ub);
    vg_free(h->ord);
    vg_free(h->gs);
    vg_free(h->bk);
}

static int hist_le(struct ev *ev, const struct ev_series *s, double *out)
{
    struct vg_str lv = labels_get(s->ls, s->nls, "le");
    char tmp[64];
    char *end = NULL;
    if (lv.p && lv.len && lv.len < sizeof tmp) {
        memcpy(tmp, lv.p, lv.len);
        tmp[lv.len] = 0;
        errno = 0;
        *out = strtod(tmp, &end);
        if (end && *end == 0)
            return 1;
    }
    struct vg_str nm = labels_get(s->ls, s->nls, "__name__");
    if (ev_annotate(ev, true, "PromQL warning: bucket label \"le\" is missing or has a "
                              "malformed value of \"%.*s\" for metric name \"%.*s\"",
                    (int)lv.len, lv.p ? lv.p : "", (int)nm.len, nm.p ? nm.p : ""))
        return VG_ENOMEM;
    return 0;
}

/* Groups the series of in; fills h. */
static int hist_group(struct ev *ev, const struct ev_val *in, struct hist *h)
{
    static char le_name[] = "le";
    static char *le_v[] = { le_name };
    static const struct promql_strings le = { le_v, 1 };
    size_t n = in->n;
    struct ev_map map = { 0 };
    uint32_t *grp = vg_malloc((n + 1) * sizeof *grp);
    h->gser = vg_malloc((n + 1) * sizeof *h->gser);
    h->first = vg_malloc((n + 1) * sizeof *h->first);
    h->ub = vg_malloc((n + 1) * sizeof *h->ub);
    h->ord = vg_malloc((n + 1) * sizeof *h->ord);
    h->gs = vg_calloc(n + 2, sizeof *h->gs);
    h->bk = vg_malloc((n + 1) * sizeof *h->bk);
    int rc = VG_ENOMEM;
    if (!grp || !h->gser || !h->first || !h->ub || !h->ord || !h->gs || !h->bk ||
        ev_map_init(ev, &map, n)) {
        ev_nomem(ev);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const struct ev_series *s = &in->s[i];
        grp[i] = UINT32_MAX;
        int good = hist_le(ev, s, &h->ub[i]);
        if (good < 0)
            goto done;
        if (!good)
            continue;
        const struct label *ls;
        size_t nls;
        if (ev_lbl_filter(ev, s->ls, s->nls, &le, false, false, &ls, &nls))
            goto done;
        long id = ev_map_get(ev, &map, ev_labels_hash(ls, nls), h->ng, true);
        if (id < -1)
            goto done;
        if ((size_t)id == h->ng) {
            struct ev_series gs = { ls, nls, s->drop_name };
            if (ev_ser_dropname(ev, &gs, &h->gser[h->ng]))
                goto done;
            h->first[h->ng++] = (uint32_t)i;
        }
        grp[i] = (uint32_t)id;
    }
    for (size_t i = 0; i < n; i++)
        if (grp[i] != UINT32_MAX)
            h->gs[grp[i] + 1]++;
    for (size_t g = 0; g < h->ng; g++)
        h->gs[g + 1] += h->gs[g];
    for (size_t i = 0; i < n; i++)
        if (grp[i] != UINT32_MAX)
            h->ord[h->gs[grp[i]]++] = (uint32_t)i;
    for (size_t g = h->ng; g > 0; g--)
        h->gs[g] = h->gs[g - 1];
    h->gs[0] = 0;
    rc = 0;
done:
    ev_map_free(&map);
    vg_free(grp);
    return rc;
}

/* The buckets of group g present at step k into h->bk; returns their number. */
static size_t hist_buckets(const struct hist *h, const struct ev_val *in, size_t g, size_t k)
{
    size_t m = 0;
    for (size_t x = h->gs[g]; x < h->gs[g + 1]; x++) {
        uint32_t i = h->ord[x];
        if (ev_okrow(in, i)[k])
            h->bk[m++] = (struct kern_bucket){ h->ub[i], ev_row(in, i)[k] };
    }
    return m;
}

/* Output series of group g for quantile q (histogram_quantiles), cached in *o while q
 * stays the same. */
static int hist_qseries(struct ev *ev, struct ev_build *b, const struct hist *h, size_t g,
                        struct vg_str label, double q, double *lastq, long *o)
{
    if (*o >= 0 && (*lastq == q || (isnan(*lastq) && isnan(q))))
        return 0;
    char buf[48];
    quantile_label(q, buf);
    struct ev_series s = h->gser[g];
    if (ev_lbl_set(ev, s.ls, s.nls, label, vg_str_c(buf), &s.ls, &s.nls))
        return VG_ENOMEM;
    if (vg_str_eq_c(label, "__name__"))
        s.drop_name = false;
    *o = ev_build_series(ev, b, s.ls, s.nls, s.drop_name);
    *lastq = q;
    return *o < 0 ? (int)*o : 0;
}

static int hist_monotonic_info(struct ev *ev, const struct ev_val *in, const struct hist *h,
                               size_t g)
{
    const struct ev_series *s = &in->s[h->first[g]];
    struct vg_str nm = labels_get(s->ls, s->nls, "__name__");
    return ev_annotate(ev, false, "PromQL info: input to histogram_quantile needed to be fixed "
                                  "for monotonicity (see https://prometheus.io/docs/prometheus/"
                                  "latest/querying/functions/#histogram_quantile) for metric "
                                  "name \"%.*s\"", (int)nm.len, nm.p ? nm.p : "");
}

static struct ev_val *fn_histogram(struct ev *ev, const struct promql_node *n,
                                   const struct ev_steps *st)
{
    enum promql_fn_id id = n->call.fn->id;
    size_t vi = id == FN_HISTOGRAM_QUANTILE ? 1 : id == FN_HISTOGRAM_FRACTION ? 2 : 0;
    size_t first_sc = id == FN_HISTOGRAM_QUANTILES ? 2 : 0;
    size_t nsc = id == FN_HISTOGRAM_QUANTILES ? n->call.nargs - 2 : vi;
    struct vg_str qlabel = id == FN_HISTOGRAM_QUANTILES ? str_arg(n, 1) : (struct vg_str){ 0 };
    struct ev_val *sc[HIST_MAX_ARGS] = { 0 }, *in = NULL, *out = NULL;
    struct hist h = { 0 };
    long *oidx = NULL;
    double *oq = NULL;
    struct ev_build b;
    bool built = false;
    size_t ns = st->n;
    if (nsc > HIST_MAX_ARGS) {
        ev_fail(ev, VG_EINVAL, "too many arguments in call to \"%s\"", n->call.fn->name);
        return NULL;
    }
    if (id == FN_HISTOGRAM_QUANTILES && !ev_label_name_ok(qlabel)) {
        ev_fail(ev, VG_EINVAL, "invalid quantile label name in histogram_quantiles(): %.*s",
                (int)qlabel.len, qlabel.p);
        return NULL;
    }
    for (size_t j = 0; j < nsc; j++)
        if (!(sc[j] = ev_eval(ev, n->call.args[first_sc + j], st)))
            goto fail;
    if (!(in = ev_eval(ev, n->call.args[vi], st)) || hist_group(ev, in, &h))
        goto fail;
    size_t nout = id == FN_HISTOGRAM_QUANTILES ? nsc * h.ng : h.ng;
    oidx = vg_malloc((nout + 1) * sizeof *oidx);
    oq = vg_malloc((nout + 1) * sizeof *oq);
    if (!oidx || !oq) {
        ev_nomem(ev);
        goto fail;
    }
    for (size_t x = 0; x < nout; x++)
        oidx[x] = -1;
    if (ev_build_init(ev, &b, ns, nout))
        goto fail;
    built = true;
    for (size_t k = 0; k < ns; k++) {
        if (ev_check(ev))
            goto fail;
        if (id != FN_HISTOGRAM_FRACTION)
            for (size_t j = 0; j < nsc; j++)
                if (ev_warn_quantile(ev, sc[j]->v[k]))
                    goto fail;
        for (size_t g = 0; g < h.ng; g++) {
            if (id == FN_HISTOGRAM_FRACTION) {
                size_t m = hist_buckets(&h, in, g, k);
                if (m && ev_build_put(ev, &b, &oidx[g], &h.gser[g], k,
                                      kern_bucket_fraction(sc[0]->v[k], sc[1]->v[k], h.bk, m)))
                    goto fail;
                continue;
            }
            for (size_t j = 0; j < nsc; j++) {
                /* the kernel sorts and fixes the buckets in place: gather them anew */
                size_t m = hist_buckets(&h, in, g, k), x = j * h.ng + g;
                if (!m)
                    break;
                double q = sc[j]->v[k];
                bool fixed = false;
                double v = kern_histogram_quantile(q, h.bk, m, &fixed);
                if (fixed && hist_monotonic_info(ev, in, &h, g))
                    goto fail;
                if (id == FN_HISTOGRAM_QUANTILES &&
                    hist_qseries(ev, &b, &h, g, qlabel, q, &oq[x], &oidx[x]))
                    goto fail;
                if (ev_build_put(ev, &b, &oidx[x], &h.gser[g], k, v))
                    goto fail;
            }
        }
    }
    out = ev_build_done(ev, &b);
    built = false;
fail:
    if (built)
        ev_build_abort(ev, &b);
    hist_free(&h);
    vg_free(oidx);
    vg_free(oq);
    for (size_t j = 0; j < nsc; j++)
        ev_val_free(ev, sc[j]);
    ev_val_free(ev, in);
    return out;
}

struct ev_val *ev_call(struct ev *ev, const struct promql_node *n, const struct ev_steps *st)
{
    const struct promql_function *f = n->call.fn;
    switch (f->id) {
    case FN_TIME: {
        struct ev_val *v = ev_scalar_new(ev, st->n, 0);
        if (v)
            for (size_t k = 0; k < st->n; k++)
                v->v[k] = (double)ev_t(st, k) / 1000.0;
        return v;
    }
    case FN_PI:
        return ev_scalar_new(ev, st->n, M_PI);
    /* the query's own parameters in seconds; an instant query has step 0 and range 0 */
    case FN_STEP: return ev_scalar_new(ev, st->n, (double)ev->qstep / 1000.0);
    case FN_RANGE: return ev_scalar_new(ev, st->n, (double)(ev->qend - ev->qstart) / 1000.0);
    case FN_START: return ev_scalar_new(ev, st->n, (double)ev->qstart / 1000.0);
    case FN_END: return ev_scalar_new(ev, st->n, (double)ev->qend / 1000.0);
    case FN_MIN_OF: case FN_MAX_OF: return fn_min_max_of(ev, n, st);
    case FN_ABSENT: return fn_absent(ev, n, st);
    case FN_SCALAR: return fn_scalar(ev, n, st);
    case FN_VECTOR: return fn_vector(ev, n, st);
    case FN_TIMESTAMP: return fn_timestamp(ev, n, st);
    case FN_LABEL_REPLACE: return fn_label_replace(ev, n, st);
    case FN_LABEL_JOIN: return fn_label_join(ev, n, st);
    case FN_SORT: case FN_SORT_DESC: case FN_SORT_BY_LABEL: case FN_SORT_BY_LABEL_DESC:
        return fn_sort(ev, n, st);
    case FN_HISTOGRAM_QUANTILE: case FN_HISTOGRAM_QUANTILES: case FN_HISTOGRAM_FRACTION:
        return fn_histogram(ev, n, st);
    default:
        break;
    }
    for (size_t i = 0; i < n->call.nargs; i++) {
        enum promql_type t = promql_node_type(n->call.args[i]);
        if (t == PT_MATRIX)
            return range_function(ev, n, st);
    }
    return elementwise(ev, n, st);
}

bool ev_is_ordered(const struct promql_node *n)
{
    n = ev_unparen(n);
    if (n->kind == PN_CALL) {
        switch (n->call.fn->id) {
        case FN_SORT: case FN_SORT_DESC: case FN_SORT_BY_LABEL: case FN_SORT_BY_LABEL_DESC:
            return true;
        default:
            return false;
        }
    }
    return n->kind == PN_AGGREGATE && (n->agg.op == AGG_TOPK || n->agg.op == AGG_BOTTOMK);
}
