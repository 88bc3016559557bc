/* plan: see plan.h. */
#include "plan.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define MAX_FILTERS 64 /* necessary spanset filters looked at */

struct filters {
    const struct traceql_field *f[MAX_FILTERS]; /* NULL entries are `{}` */
    size_t n;
};

static void need_pipeline(const struct traceql_pipeline *p, struct filters *out);

static void need_set(const struct traceql_set *s, struct filters *out)
{
    switch (s->kind) {
    case TQ_SET_FILTER:
        if (out->n < MAX_FILTERS)
            out->f[out->n++] = s->u.filter;
        return;
    case TQ_SET_PIPELINE:
        need_pipeline(s->u.pipe, out);
        return;
    case TQ_SET_BINARY:
        if (s->u.bin.op == TQ_SET_OR)
            return;
        need_set(s->u.bin.lhs, out);
        need_set(s->u.bin.rhs, out);
        return;
    }
}

static void need_pipeline(const struct traceql_pipeline *p, struct filters *out)
{
    for (size_t i = 0; p && i < p->n; i++)
        if (p->stages[i].kind == TQ_STAGE_SET)
            need_set(p->stages[i].u.set, out);
}

/* ---- one conjunct ---- */

struct cond {
    const struct traceql_field *field; /* intrinsic or attribute */
    enum traceql_op op;
    const struct traceql_value *v;
    bool text;
};

/* `field op static` (either way round; the operator is mirrored) into c. */
static bool as_cond(const struct traceql_field *f, struct cond *c)
{
    if (f->kind != TQ_FIELD_BINARY || f->u.bin.op == TQ_OP_AND || f->u.bin.op == TQ_OP_OR)
        return false;
    const struct traceql_field *l = f->u.bin.lhs, *r = f->u.bin.rhs;
    enum traceql_op op = f->u.bin.op;
    if (l->kind == TQ_FIELD_STATIC && r->kind != TQ_FIELD_STATIC) {
        static const enum traceql_op mirror[] = {
            [TQ_OP_EQ] = TQ_OP_EQ, [TQ_OP_NEQ] = TQ_OP_NEQ, [TQ_OP_GT] = TQ_OP_LT,
            [TQ_OP_GTE] = TQ_OP_LTE, [TQ_OP_LT] = TQ_OP_GT, [TQ_OP_LTE] = TQ_OP_GTE,
        };
        if (op == TQ_OP_RE || op == TQ_OP_NRE)
            return false;
        const struct traceql_field *t = l;
        l = r;
        r = t;
        op = mirror[op];
    }
    if (r->kind != TQ_FIELD_STATIC ||
        (l->kind != TQ_FIELD_INTRINSIC && l->kind != TQ_FIELD_ATTR))
        return false;
    c->field = l;
    c->op = op;
    c->v = &r->u.value;
    c->text = f->u.bin.text;
    return true;
}

static bool is_service(const struct cond *c)
{
    return c->field->kind == TQ_FIELD_ATTR && c->field->u.attr.scope != TQ_SCOPE_SPAN &&
           vg_str_eq_c(c->field->u.attr.name, "service.name") && c->op == TQ_OP_EQ &&
           c->v->type == TQ_STRING;
}

/* Duration bounds: > d means at least d+1 ns. Bounds that cannot narrow are skipped. */
static void bound(enum traceql_op op, int64_t d, int64_t *min, int64_t *max)
{
    int64_t lo = op == TQ_OP_GT ? d + (d < INT64_MAX) : op == TQ_OP_GTE || op == TQ_OP_EQ ? d : 0;
    int64_t hi = op == TQ_OP_LT ? d - 1 : op == TQ_OP_LTE || op == TQ_OP_EQ ? d : 0;
    if (lo > 0 && lo > *min)
        *min = lo;
    if (hi > 0 && (*max == 0 || hi < *max))
        *max = hi;
}

/* The text an attribute matcher compares with (span_attr_text's form), or false. */
static bool matcher_text(const struct cond *c, char *buf, size_t cap, struct vg_str *out)
{
    switch (c->v->type) {
    case TQ_STRING:
        *out = c->v->v.s;
        return true;
    case TQ_INT:
        if (c->op != TQ_OP_EQ)
            return false;
        *out = (struct vg_str){ buf, (size_t)snprintf(buf, cap, "%" PRId64, c->v->v.i) };
        return true;
    case TQ_BOOL:
        if (c->op != TQ_OP_EQ)
            return false;
        *out = c->v->v.b ? VG_STR("true") : VG_STR("false");
        return true;
    default:
        return false;
    }
}

enum spanstore_scope traceql_plan_scope(enum traceql_scope s)
{
    return s == TQ_SCOPE_SPAN ? SPANSTORE_SCOPE_SPAN
           : s == TQ_SCOPE_RESOURCE ? SPANSTORE_SCOPE_RESOURCE : SPANSTORE_SCOPE_ANY;
}

/* Applies (score only, when apply is false) the conjunct to the plan; returns its
 * score (0 = not usable). */
static int use_cond(const struct cond *c, struct traceql_plan *p, bool apply, int *rc,
                    struct vg_err *err)
{
    struct spanstore_query *q = &p->q;
    if (c->field->kind == TQ_FIELD_INTRINSIC) {
        enum traceql_intrinsic in = c->field->u.intrinsic;
        if (in == TQ_I_NAME && c->op == TQ_OP_EQ && c->v->type == TQ_STRING) {
            if (apply && !q->span_name.len)
                q->span_name = c->v->v.s;
            return 8;
        }
        if (in == TQ_I_STATUS && c->op == TQ_OP_EQ && c->v->type == TQ_STATUS) {
            if (apply)
                q->status = (int)c->v->v.i;
            return c->v->v.i == 2 ? 4 : 2;
        }
        if (in == TQ_I_KIND && c->op == TQ_OP_EQ && c->v->type == TQ_KIND) {
            if (apply)
                q->kind = (int)c->v->v.i;
            return 2;
        }
        if (in == TQ_I_DURATION && c->v->type == TQ_DURATION && c->op != TQ_OP_NEQ &&
            c->op != TQ_OP_RE && c->op != TQ_OP_NRE) {
            if (apply)
                bound(c->op, c->v->v.i, &q->min_duration_ns, &q->max_duration_ns);
            return 2;
        }
        return 0;
    }
    if (is_service(c)) {
        if (apply && !q->service.len)
            q->service = c->v->v.s;
        return 8;
    }
    if (c->op != TQ_OP_EQ && c->op != TQ_OP_RE)
        return 0;
    char num[32];
    struct vg_str text;
    if (!matcher_text(c, num, sizeof num, &text))
        return 0;
    if (!apply)
        return c->op == TQ_OP_EQ ? 6 : 1;
    if (q->nattrs >= TRACEQL_PLAN_MAX_ATTRS)
        return 0;
    struct matcher *m = matcher_new(c->op == TQ_OP_EQ ? MATCH_EQ : MATCH_RE,
                                    c->field->u.attr.name, text, err);
    if (!m) {
        *rc = err ? err->code : VG_ENOMEM;
        return 0;
    }
    p->owned[p->nowned++] = m;
    p->attrs[q->nattrs].scope = traceql_plan_scope(c->field->u.attr.scope);
    p->attrs[q->nattrs].m = m;
    q->nattrs++;
    q->attrs = p->attrs;
    return 1;
}

/* Walks the top-level && conjuncts of f: trace-level bounds always go into the plan;
 * span-level ones are scored, or applied when apply. Returns the total score. */
static int walk(const struct traceql_field *f, struct traceql_plan *p, bool apply, int *rc,
                struct vg_err *err)
{
    if (!f || *rc)
        return 0;
    if (f->kind == TQ_FIELD_BINARY && f->u.bin.op == TQ_OP_AND)
        return walk(f->u.bin.lhs, p, apply, rc, err) + walk(f->u.bin.rhs, p, apply, rc, err);
    struct cond c;
    if (!as_cond(f, &c))
        return 0;
    if (c.field->kind == TQ_FIELD_INTRINSIC && c.field->u.intrinsic == TQ_I_TRACE_DURATION) {
        if (!apply && c.v->type == TQ_DURATION && c.op != TQ_OP_NEQ)
            bound(c.op, c.v->v.i, &p->q.min_trace_duration_ns, &p->q.max_trace_duration_ns);
        return 0;
    }
    return use_cond(&c, p, apply, rc, err);
}

int traceql_plan_build(const struct traceql_query *query, struct traceql_plan *p,
                       struct vg_err *err)
{
    memset(p, 0, sizeof *p);
    spanstore_query_init(&p->q);
    struct filters fs = { .n = 0 };
    need_pipeline(query->root, &fs);
    int rc = 0, best = 0;
    size_t pick = 0;
    for (size_t i = 0; i < fs.n; i++) {
        int s = walk(fs.f[i], p, false, &rc, err);
        if (s > best) {
            best = s;
            pick = i;
        }
    }
    if (best > 0)
        walk(fs.f[pick], p, true, &rc, err);
    return rc;
}

void traceql_plan_free(struct traceql_plan *p)
{
    for (size_t i = 0; i < p->nowned; i++)
        matcher_free(p->owned[i]);
    p->nowned = 0;
    p->q.nattrs = 0;
}
