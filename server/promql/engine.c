/* engine: the public entry points of the PromQL evaluator (engine.h): options, limits,
 * the evaluation of a whole query and the conversion of the root value into a
 * promql_result.
 *
 * - An instant query is a range evaluation with one step (Prometheus does the same).
 * - A range query must have a scalar or instant-vector type; its result is a matrix
 *   sorted by labels (a scalar becomes one series with no labels).
 * - Limits: more than max_points steps fail before any work ("exceeded maximum
 *   resolution of 11,000 points per timeseries..."); the deadline is checked in the
 *   evaluation loops ("query timed out in expression evaluation"); samples handed out
 *   by the querier and points held in intermediate values are each bounded by
 *   max_samples ("query processing would load too many samples into memory in query
 *   execution").
 * - With delayed name removal (Prometheus's promql-delayed-name-removal, which its test
 *   engine enables), series marked for it lose __name__ here, at the end; series that
 *   then share a label set are merged when their steps do not overlap, else the query
 *   fails ("vector cannot contain metrics with the same labelset").
 *
 * The result and everything it points to live in one arena (result->priv). */
#include "eval_int.h"

#include "../../storage/base/vg_alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void promql_opts_default(struct promql_opts *o)
{
    memset(o, 0, sizeof *o);
    o->lookback_ms = INT64_C(5) * 60 * 1000;
    o->max_samples = 50000000;
    o->timeout_ms = INT64_C(2) * 60 * 1000;
    o->max_points = 11000;
    o->default_subquery_step_ms = INT64_C(60) * 1000;
}

void promql_result_free(struct promql_result *r)
{
    if (r)
        vg_arena_free(r->priv);
}

static const char *documented_type(enum promql_type t)
{
    switch (t) {
    case PT_VECTOR: return "instant vector";
    case PT_MATRIX: return "range vector";
    case PT_SCALAR: return "scalar";
    case PT_STRING: return "string";
    default: return "none";
    }
}

/* ---- result building ---- */

struct rb {
    struct vg_arena *a;
    struct promql_result *r;
    size_t cap;
};

static int rb_init(struct rb *b)
{
    b->a = vg_arena_new((size_t)64 * 1024);
    b->r = b->a ? vg_arena_calloc(b->a, sizeof *b->r) : NULL;
    b->cap = 0;
    if (!b->r) {
        vg_arena_free(b->a);
        return VG_ENOMEM;
    }
    b->r->priv = b->a;
    return 0;
}

static struct promql_series *rb_series(struct rb *b, const struct label *ls, size_t nls,
                                       size_t npoints)
{
    struct promql_result *r = b->r;
    if (r->nseries == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 16;
        struct promql_series *ns = vg_arena_alloc(b->a, nc * sizeof *ns);
        if (!ns)
            return NULL;
        if (r->nseries)
            memcpy(ns, r->series, r->nseries * sizeof *ns);
        r->series = ns;
        b->cap = nc;
    }
    struct promql_series *s = &r->series[r->nseries];
    s->labels = vg_arena_alloc(b->a, (nls ? nls : 1) * sizeof *s->labels);
    s->points = vg_arena_alloc(b->a, (npoints ? npoints : 1) * sizeof *s->points);
    if (!s->labels || !s->points)
        return NULL;
    for (size_t i = 0; i < nls; i++) {
        char *n = vg_arena_strndup(b->a, ls[i].name.p ? ls[i].name.p : "", ls[i].name.len);
        char *v = vg_arena_strndup(b->a, ls[i].value.p ? ls[i].value.p : "", ls[i].value.len);
        if (!n || !v)
            return NULL;
        s->labels[i] = (struct label){ { n, ls[i].name.len }, { v, ls[i].value.len } };
    }
    s->nlabels = nls;
    s->npoints = 0;
    r->nseries++;
    return s;
}

static int copy_strings(struct rb *b, char **in, size_t n, char ***out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (!n)
        return 0;
    *out = vg_arena_alloc(b->a, n * sizeof **out);
    if (!*out)
        return VG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        (*out)[i] = vg_arena_strndup(b->a, in[i], strlen(in[i]));
        if (!(*out)[i])
            return VG_ENOMEM;
    }
    *nout = n;
    return 0;
}

static int series_cmp(const void *a, const void *b)
{
    const struct promql_series *x = a, *y = b;
    return labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

/* Removes __name__ where delayed removal marked it, merging series that become equal. */
static struct ev_val *cleanup_names(struct ev *ev, struct ev_val *v)
{
    bool any = false;
    for (size_t i = 0; i < v->n && !any; i++)
        any = v->s[i].drop_name;
    if (!any)
        return v;
    struct ev_build b;
    if (ev_build_init(ev, &b, v->nsteps, v->n)) {
        ev_val_free(ev, v);
        return NULL;
    }
    for (size_t i = 0; i < v->n; i++) {
        struct ev_series s = { v->s[i].ls, v->s[i].nls, false };
        if ((v->s[i].drop_name && ev_lbl_drop_name(ev, s.ls, s.nls, &s.ls, &s.nls)) ||
            ev_build_copy(ev, &b, &s, v, i))
            goto fail;
    }
    ev_val_free(ev, v);
    return ev_build_done(ev, &b);
fail:
    ev_build_abort(ev, &b);
    ev_val_free(ev, v);
    return NULL;
}

static int to_result(struct ev *ev, struct ev_val *v, const struct ev_steps *st, bool range,
                     bool ordered, struct rb *b)
{
    struct promql_result *r = b->r;
    switch (v->type) {
    case PT_SCALAR:
        if (!range) {
            r->type = PT_SCALAR;
            r->scalar = (struct promql_point){ st->start, v->v[0] };
            return 0;
        }
        r->type = PT_MATRIX;
        {
            struct promql_series *s = rb_series(b, NULL, 0, st->n);
            if (!s)
                return VG_ENOMEM;
            for (size_t k = 0; k < st->n; k++)
                s->points[s->npoints++] = (struct promql_point){ ev_t(st, k), v->v[k] };
        }
        return 0;
    case PT_STRING:
        r->type = PT_STRING;
        r->string = vg_arena_strndup(b->a, v->str ? v->str : "", v->slen);
        r->string_t = st->start;
        return r->string ? 0 : VG_ENOMEM;
    case PT_VECTOR:
        r->type = range ? PT_MATRIX : PT_VECTOR;
        r->ordered = !range && ordered;
        for (size_t i = 0; i < v->n; i++) {
            struct promql_series *s = rb_series(b, v->s[i].ls, v->s[i].nls, range ? st->n : 1);
            if (!s)
                return VG_ENOMEM;
            for (size_t k = 0; k < st->n; k++)
                if (ev_okrow(v, i)[k])
                    s->points[s->npoints++] = (struct promql_point){ ev_t(st, k),
                                                                     ev_row(v, i)[k] };
            if (!s->npoints)
                r->nseries--;
        }
        if (range && r->nseries > 1)
            qsort(r->series, r->nseries, sizeof *r->series, series_cmp);
        return 0;
    case PT_MATRIX: {
        /* a range vector at the top of an instant query: the window at the query time */
        const struct ev_range *rg = v->rng;
        r->type = PT_MATRIX;
        int64_t te = ev_at(ev, rg->at, rg->at_ms, rg->offset, st->start);
        for (size_t i = 0; i < rg->n; i++) {
            const struct ev_rser *rs = &rg->v[i];
            size_t lo = 0, hi = 0;
            while (hi < rs->n && rs->s[hi].t <= te)
                hi++;
            while (lo < hi && rs->s[lo].t <= te - rg->range)
                lo++;
            if (lo >= hi)
                continue;
            const struct label *ls = rs->ls;
            size_t nls = rs->nls;
            if (rs->drop_name && ev_lbl_drop_name(ev, ls, nls, &ls, &nls))
                return VG_ENOMEM;
            struct promql_series *s = rb_series(b, ls, nls, hi - lo);
            if (!s)
                return VG_ENOMEM;
            for (size_t j = lo; j < hi; j++)
                s->points[s->npoints++] = (struct promql_point){ rs->s[j].t, rs->s[j].v };
        }
        if (r->nseries > 1)
            qsort(r->series, r->nseries, sizeof *r->series, series_cmp);
        for (size_t i = 1; i < r->nseries; i++)
            if (!series_cmp(&r->series[i - 1], &r->series[i]))
                return ev_dup_labelset(ev);
        return 0;
    }
    default:
        return ev_fail(ev, VG_EINTERNAL, "unexpected result type");
    }
}

/* 11000 -> "11,000", as Prometheus words the limit. */
static void thousands(int64_t v, char *out, size_t cap)
{
    char d[24];
    int n = snprintf(d, sizeof d, "%lld", (long long)v), o = 0;
    for (int i = 0; i < n && (size_t)o + 2 < cap; i++) {
        if (i && (n - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = d[i];
    }
    out[o] = 0;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int run(const struct promql_opts *o, struct querier *q, const struct promql_expr *e,
               int64_t start, int64_t end, int64_t step, bool range,
               struct promql_result **out, struct vg_err *err)
{
    struct promql_opts def;
    if (!o) {
        promql_opts_default(&def);
        o = &def;
    }
    *out = NULL;
    if (!e || !e->root)
        return vg_err_set(err, VG_EINVAL, "empty query");
    enum promql_type t = promql_node_type(e->root);
    if (range) {
        if (step <= 0)
            return vg_err_set(err, VG_EINVAL, "zero or negative query resolution step widths "
                                              "are not accepted. Try a positive integer");
        if (end < start)
            return vg_err_set(err, VG_EINVAL, "end timestamp must not be before start time");
        if (o->max_points > 0 && (end - start) / step > o->max_points) {
            char num[32];
            thousands(o->max_points, num, sizeof num);
            return vg_err_set(err, VG_ETOOLARGE,
                              "exceeded maximum resolution of %s points per timeseries. "
                              "Try decreasing the query resolution (?step=XX)", num);
        }
        if (t != PT_VECTOR && t != PT_SCALAR)
            return vg_err_set(err, VG_EINVAL,
                              "invalid expression type \"%s\" for range query, must be Scalar "
                              "or instant Vector", documented_type(t));
    }
    struct ev ev = { 0 };
    ev.o = o;
    ev.q = q;
    ev.err = err;
    ev.qstart = start;
    ev.qend = end;
    ev.qstep = range ? step : 0;
    ev.delayed = o->delayed_name_removal;
    ev.range = range;
    if (o->timeout_ms > 0)
        ev.deadline_ns = mono_ns() + o->timeout_ms * 1000000;
    ev.arena = vg_arena_new((size_t)64 * 1024);
    if (!ev.arena)
        return vg_err_set(err, VG_ENOMEM, "out of memory in query execution");
    struct ev_steps st = { start, range ? step : 1, range ? (size_t)((end - start) / step) + 1 : 1 };
    int rc = 0;
    struct rb b = { 0 };
    struct ev_val *v = ev_eval(&ev, e->root, &st);
    if (v && v->type == PT_VECTOR && ev.delayed)
        v = cleanup_names(&ev, v);
    if (!v) {
        rc = err && err->code ? err->code : VG_EINTERNAL;
        goto done;
    }
    /* the deadline also covers the last stretch of work */
    if (ev.deadline_ns && mono_ns() >= ev.deadline_ns) {
        rc = ev_fail(&ev, VG_EOVERLOAD, "query timed out in expression evaluation");
        goto done;
    }
    if (rb_init(&b)) {
        rc = ev_nomem(&ev);
        goto done;
    }
    rc = to_result(&ev, v, &st, range, ev_is_ordered(e->root), &b);
    if (!rc)
        rc = copy_strings(&b, ev.warn, ev.nwarn, &b.r->warnings, &b.r->nwarnings);
    if (!rc)
        rc = copy_strings(&b, ev.info, ev.ninfo, &b.r->infos, &b.r->ninfos);
    if (rc) {
        if (rc == VG_ENOMEM)
            ev_nomem(&ev);
        vg_arena_free(b.a);
        goto done;
    }
    b.r->samples_loaded = ev.loaded;
    *out = b.r;
done:
    ev_val_free(&ev, v);
    for (size_t i = 0; i < ev.nsets; i++)
        q->set_free(q->ctx, ev.sets[i]);
    vg_free(ev.sets);
    vg_arena_free(ev.arena);
    return rc;
}

int promql_eval_instant(const struct promql_opts *o, struct querier *q,
                        const struct promql_expr *e, int64_t t, struct promql_result **out,
                        struct vg_err *err)
{
    return run(o, q, e, t, t, 0, false, out, err);
}

int promql_eval_range(const struct promql_opts *o, struct querier *q,
                      const struct promql_expr *e, int64_t start, int64_t end, int64_t step,
                      struct promql_result **out, struct vg_err *err)
{
    return run(o, q, e, start, end, step, true, out, err);
}
