/* eval: see eval.h. Spansets are arrays of n flags over the trace's spans; the parent of
 * each span is found once per trace by binary search over the span ids. */
#include "eval.h"

#include "../../storage/base/vg_buf.h"

#include <string.h>
#include <sys/types.h>

struct ctx {
    const struct span *spans;
    size_t n;
    struct vg_arena *a;
    ssize_t *parent; /* index of the parent span, -1 when none in the trace */
    ssize_t root;    /* the first span without a parent, -1 when none */
    int64_t trace_start, trace_end;
    struct vg_buf text; /* scratch for text comparisons */
    bool oom;
};

/* ---- values ---- */

void traceql_attr_value(const struct span_attr *a, struct traceql_value *v)
{
    memset(v, 0, sizeof *v);
    switch (a->type) {
    case SPAN_VAL_STRING: v->type = TQ_STRING; v->v.s = a->v.s; break;
    case SPAN_VAL_INT: v->type = TQ_INT; v->v.i = a->v.i; break;
    case SPAN_VAL_DOUBLE: v->type = TQ_FLOAT; v->v.f = a->v.d; break;
    case SPAN_VAL_BOOL: v->type = TQ_BOOL; v->v.b = a->v.b; break;
    default: v->type = TQ_NIL; break;
    }
}

static const struct span_attr *find(const struct span_attr *a, size_t n, struct vg_str name)
{
    for (size_t i = 0; i < n; i++)
        if (vg_str_eq(a[i].key, name))
            return &a[i];
    return NULL;
}

const struct span_attr *traceql_span_attr(const struct span *s, enum traceql_scope scope,
                                          struct vg_str name)
{
    const struct span_attr *a = NULL;
    if (scope != TQ_SCOPE_RESOURCE)
        a = find(s->attrs, s->nattrs, name);
    if (!a && scope != TQ_SCOPE_SPAN)
        a = find(s->resource_attrs, s->nresource_attrs, name);
    return a;
}

/* The attribute as a value; resource service.name falls back to the span's service
 * (receivers that do not keep the resource attributes still fill it). */
static void attr_of(const struct span *s, const struct traceql_field *f, struct traceql_value *v,
                    const struct span_attr **raw)
{
    const struct span_attr *a = traceql_span_attr(s, f->u.attr.scope, f->u.attr.name);
    *raw = a;
    if (a) {
        traceql_attr_value(a, v);
    } else if (f->u.attr.scope != TQ_SCOPE_SPAN && s->service.len &&
               vg_str_eq_c(f->u.attr.name, "service.name")) {
        v->type = TQ_STRING;
        v->v.s = s->service;
    } else {
        v->type = TQ_NIL;
    }
}

static void intrinsic_of(struct ctx *c, size_t i, enum traceql_intrinsic in,
                         struct traceql_value *v)
{
    const struct span *s = &c->spans[i];
    memset(v, 0, sizeof *v);
    switch (in) {
    case TQ_I_NAME: v->type = TQ_STRING; v->v.s = s->name; break;
    case TQ_I_STATUS: v->type = TQ_STATUS; v->v.i = s->status; break;
    case TQ_I_STATUS_MESSAGE: v->type = TQ_STRING; v->v.s = s->status_message; break;
    case TQ_I_DURATION: v->type = TQ_DURATION; v->v.i = s->end_ns - s->start_ns; break;
    case TQ_I_KIND: v->type = TQ_KIND; v->v.i = s->kind; break;
    case TQ_I_ROOT_NAME:
    case TQ_I_ROOT_SERVICE:
        if (c->root < 0) {
            v->type = TQ_NIL;
        } else {
            v->type = TQ_STRING;
            v->v.s = in == TQ_I_ROOT_NAME ? c->spans[c->root].name : c->spans[c->root].service;
        }
        break;
    case TQ_I_TRACE_DURATION:
        v->type = TQ_DURATION;
        v->v.i = c->trace_end - c->trace_start;
        break;
    }
}

static bool is_nil_literal(const struct traceql_field *f)
{
    return f->kind == TQ_FIELD_STATIC && f->u.value.type == TQ_NIL;
}

static void eval_field(struct ctx *c, const struct traceql_field *f, size_t i,
                       struct traceql_value *v);

/* Legacy tag search: the attribute's text form equals the string. */
static bool text_eq(struct ctx *c, const struct traceql_field *f, size_t i)
{
    const struct span *s = &c->spans[i];
    struct traceql_value v;
    const struct span_attr *a;
    attr_of(s, f->u.bin.lhs, &v, &a);
    struct vg_str want = f->u.bin.rhs->u.value.v.s;
    if (!a)
        return v.type == TQ_STRING && vg_str_eq(v.v.s, want);
    vg_buf_reset(&c->text);
    if (!span_attr_text(a, &c->text))
        return false;
    if (vg_buf_failed(&c->text)) {
        c->oom = true;
        return false;
    }
    return vg_str_eq((struct vg_str){ c->text.p, c->text.len }, want);
}

static bool eval_cmp(struct ctx *c, const struct traceql_field *f, size_t i)
{
    const struct traceql_field *l = f->u.bin.lhs, *r = f->u.bin.rhs;
    enum traceql_op op = f->u.bin.op;
    if (f->u.bin.text)
        return text_eq(c, f, i);
    struct traceql_value a, b;
    eval_field(c, l, i, &a);
    eval_field(c, r, i, &b);
    if ((op == TQ_OP_EQ || op == TQ_OP_NEQ) && (is_nil_literal(l) || is_nil_literal(r)))
        return (a.type == TQ_NIL && b.type == TQ_NIL) == (op == TQ_OP_EQ);
    if (op == TQ_OP_RE || op == TQ_OP_NRE) {
        if (a.type != TQ_STRING)
            return false;
        return matcher_matches(f->u.bin.re, a.v.s) == (op == TQ_OP_RE);
    }
    return traceql_value_cmp(&a, op, &b);
}

static bool truthy(const struct traceql_value *v)
{
    return v->type == TQ_BOOL && v->v.b;
}

static void eval_field(struct ctx *c, const struct traceql_field *f, size_t i,
                       struct traceql_value *v)
{
    const struct span_attr *raw;
    switch (f->kind) {
    case TQ_FIELD_STATIC:
        *v = f->u.value;
        return;
    case TQ_FIELD_INTRINSIC:
        intrinsic_of(c, i, f->u.intrinsic, v);
        return;
    case TQ_FIELD_ATTR:
        attr_of(&c->spans[i], f, v, &raw);
        return;
    case TQ_FIELD_NOT:
        eval_field(c, f->u.bin.lhs, i, v);
        /* Negating a missing attribute stays false, as any use of one. */
        v->v.b = v->type == TQ_BOOL && !v->v.b;
        v->type = TQ_BOOL;
        return;
    case TQ_FIELD_BINARY:
        break;
    }
    memset(v, 0, sizeof *v);
    v->type = TQ_BOOL;
    if (f->u.bin.op == TQ_OP_AND || f->u.bin.op == TQ_OP_OR) {
        struct traceql_value x;
        eval_field(c, f->u.bin.lhs, i, &x);
        bool l = truthy(&x);
        if (l == (f->u.bin.op == TQ_OP_OR)) { /* short circuit */
            v->v.b = l;
            return;
        }
        eval_field(c, f->u.bin.rhs, i, &x);
        v->v.b = truthy(&x);
        return;
    }
    v->v.b = eval_cmp(c, f, i);
}

/* ---- the trace's structure ---- */

static int setup(struct ctx *c)
{
    c->parent = vg_arena_alloc(c->a, (c->n ? c->n : 1) * sizeof *c->parent);
    size_t *order = vg_arena_alloc(c->a, (c->n ? c->n : 1) * sizeof *order);
    if (!c->parent || !order)
        return VG_ENOMEM;
    c->root = -1;
    for (size_t i = 0; i < c->n; i++) {
        order[i] = i;
        const struct span *s = &c->spans[i];
        if (c->root < 0 && span_is_root(s))
            c->root = (ssize_t)i;
        if (!i || s->start_ns < c->trace_start)
            c->trace_start = s->start_ns;
        if (!i || s->end_ns > c->trace_end)
            c->trace_end = s->end_ns;
    }
    /* Order by span id with a bottom-up merge sort: qsort's comparator could only see
     * the spans through a global. */
    size_t *tmp = vg_arena_alloc(c->a, (c->n ? c->n : 1) * sizeof *tmp);
    if (!tmp)
        return VG_ENOMEM;
    for (size_t w = 1; w < c->n; w *= 2) {
        for (size_t lo = 0; lo < c->n; lo += 2 * w) {
            size_t mid = lo + w < c->n ? lo + w : c->n, hi = lo + 2 * w < c->n ? lo + 2 * w : c->n;
            size_t x = lo, y = mid, k = lo;
            while (x < mid && y < hi)
                tmp[k++] = memcmp(c->spans[order[y]].span_id, c->spans[order[x]].span_id,
                                  SPAN_ID_LEN) < 0 ? order[y++] : order[x++];
            while (x < mid)
                tmp[k++] = order[x++];
            while (y < hi)
                tmp[k++] = order[y++];
        }
        memcpy(order, tmp, c->n * sizeof *order);
    }
    for (size_t i = 0; i < c->n; i++) {
        const struct span *s = &c->spans[i];
        c->parent[i] = -1;
        if (span_is_root(s))
            continue;
        size_t lo = 0, hi = c->n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int r = memcmp(c->spans[order[mid]].span_id, s->parent_span_id, SPAN_ID_LEN);
            if (r == 0) {
                if (order[mid] != i)
                    c->parent[i] = (ssize_t)order[mid];
                break;
            }
            if (r < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
    return 0;
}

/* ---- spansets ---- */

static bool *new_set(struct ctx *c)
{
    bool *s = vg_arena_calloc(c->a, c->n ? c->n : 1);
    if (!s)
        c->oom = true;
    return s;
}

static size_t count(const struct ctx *c, const bool *s)
{
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++)
        k += s[i];
    return k;
}

static bool *eval_pipeline(struct ctx *c, const struct traceql_pipeline *p);

/* Marks in m the spans standing in relation op to some span of l; the result is m & r. */
static void structural(struct ctx *c, enum traceql_set_op op, const bool *l, bool *r)
{
    bool *m = new_set(c);
    size_t *kids = op == TQ_SET_SIBLING ? vg_arena_calloc(c->a, c->n * sizeof *kids + 1) : NULL;
    if (!m || (op == TQ_SET_SIBLING && !kids)) {
        c->oom = true;
        return;
    }
    for (size_t i = 0; i < c->n; i++) {
        ssize_t p = c->parent[i];
        switch (op) {
        case TQ_SET_CHILD: /* i's parent in l */
            m[i] = p >= 0 && l[p];
            break;
        case TQ_SET_DESC: /* some ancestor of i in l (bounded walk: ids may loop) */
            for (size_t steps = 0; p >= 0 && steps < c->n && !m[i]; steps++, p = c->parent[p])
                m[i] = l[p];
            break;
        case TQ_SET_PARENT: /* a child of i in l: mark parents of l */
            if (l[i] && p >= 0)
                m[p] = true;
            break;
        case TQ_SET_ANCESTOR: /* a descendant of i in l: mark ancestors of l */
            if (!l[i])
                break;
            for (size_t steps = 0; p >= 0 && steps < c->n && !m[p]; steps++, p = c->parent[p])
                m[p] = true;
            break;
        case TQ_SET_SIBLING:
            if (l[i] && p >= 0)
                kids[p]++;
            break;
        default:
            break;
        }
    }
    for (size_t i = 0; i < c->n; i++) {
        if (op == TQ_SET_SIBLING) {
            ssize_t p = c->parent[i];
            m[i] = p >= 0 && kids[p] > (size_t)l[i];
        }
        r[i] = r[i] && m[i];
    }
}

static bool *eval_set(struct ctx *c, const struct traceql_set *s)
{
    if (s->kind == TQ_SET_PIPELINE)
        return eval_pipeline(c, s->u.pipe);
    if (s->kind == TQ_SET_FILTER) {
        bool *r = new_set(c);
        for (size_t i = 0; r && i < c->n; i++) {
            struct traceql_value v;
            if (!s->u.filter) {
                r[i] = true;
                continue;
            }
            eval_field(c, s->u.filter, i, &v);
            r[i] = truthy(&v);
        }
        return r;
    }
    bool *l = eval_set(c, s->u.bin.lhs);
    bool *r = l ? eval_set(c, s->u.bin.rhs) : NULL;
    if (!r)
        return NULL;
    switch (s->u.bin.op) {
    case TQ_SET_AND:
        if (!count(c, l) || !count(c, r)) {
            memset(r, 0, c->n);
            break;
        }
        /* fall through */
    case TQ_SET_OR:
        for (size_t i = 0; i < c->n; i++)
            r[i] = r[i] || l[i];
        break;
    default:
        structural(c, s->u.bin.op, l, r);
        break;
    }
    return c->oom ? NULL : r;
}

/* The aggregate of a scalar stage over the spans in s; false when there is no value. */
static bool aggregate(struct ctx *c, const struct traceql_stage *st, const bool *s,
                      struct traceql_value *out)
{
    memset(out, 0, sizeof *out);
    if (st->u.scalar.agg == TQ_AGG_COUNT) {
        out->type = TQ_INT;
        out->v.i = (int64_t)count(c, s);
        return true;
    }
    double acc = 0;
    size_t k = 0;
    bool all_durations = true;
    for (size_t i = 0; i < c->n; i++) {
        if (!s[i])
            continue;
        struct traceql_value v;
        eval_field(c, st->u.scalar.arg, i, &v);
        double x;
        if (v.type == TQ_INT || v.type == TQ_DURATION)
            x = (double)v.v.i;
        else if (v.type == TQ_FLOAT)
            x = v.v.f;
        else
            continue;
        all_durations = all_durations && v.type == TQ_DURATION;
        switch (st->u.scalar.agg) {
        case TQ_AGG_MIN: acc = k == 0 || x < acc ? x : acc; break;
        case TQ_AGG_MAX: acc = k == 0 || x > acc ? x : acc; break;
        default: acc += x; break;
        }
        k++;
    }
    if (!k)
        return false;
    if (st->u.scalar.agg == TQ_AGG_AVG)
        acc /= (double)k;
    out->type = TQ_FLOAT;
    out->v.f = acc;
    (void)all_durations; /* durations compare as numbers of nanoseconds either way */
    return true;
}

static bool *eval_pipeline(struct ctx *c, const struct traceql_pipeline *p)
{
    bool *cur = NULL;
    for (size_t k = 0; k < p->n; k++) {
        const struct traceql_stage *st = &p->stages[k];
        if (st->kind == TQ_STAGE_SET) {
            bool *r = eval_set(c, st->u.set);
            if (!r)
                return NULL;
            if (cur)
                for (size_t i = 0; i < c->n; i++)
                    r[i] = r[i] && cur[i];
            cur = r;
        } else if (st->kind == TQ_STAGE_SCALAR) {
            if (!cur) { /* an aggregate over every span */
                if (!(cur = new_set(c)))
                    return NULL;
                for (size_t i = 0; i < c->n; i++)
                    cur[i] = true;
            }
            struct traceql_value v;
            if (!aggregate(c, st, cur, &v) ||
                !traceql_value_cmp(&v, st->u.scalar.op, &st->u.scalar.value))
                memset(cur, 0, c->n);
        }
        if (!count(c, cur))
            break;
    }
    return cur;
}

int traceql_eval(const struct traceql_query *q, const struct span *spans, size_t n,
                 struct vg_arena *a, struct traceql_match *out, struct vg_err *err)
{
    memset(out, 0, sizeof *out);
    struct ctx c = { .spans = spans, .n = n, .a = a };
    vg_buf_init(&c.text);
    bool *r = NULL;
    int rc = setup(&c);
    if (rc == 0)
        r = q->root ? eval_pipeline(&c, q->root) : new_set(&c);
    vg_buf_free(&c.text);
    if (!r || c.oom)
        return vg_err_set(err, VG_ENOMEM, "traceql: out of memory evaluating the query");
    out->in = r;
    out->n = n;
    out->matched = count(&c, r);
    return 0;
}
