/* ast: constructors, names and value comparison of TraceQL trees. See ast.h. */
#include "ast.h"

#include "../../storage/base/vg_alloc.h"

#include <string.h>

const char *traceql_intrinsic_name(enum traceql_intrinsic i)
{
    static const char *const names[] = {
        [TQ_I_NAME] = "name",
        [TQ_I_STATUS] = "status",
        [TQ_I_STATUS_MESSAGE] = "statusMessage",
        [TQ_I_DURATION] = "duration",
        [TQ_I_KIND] = "kind",
        [TQ_I_ROOT_NAME] = "rootName",
        [TQ_I_ROOT_SERVICE] = "rootServiceName",
        [TQ_I_TRACE_DURATION] = "traceDuration",
    };
    return (unsigned)i < sizeof names / sizeof names[0] ? names[i] : "?";
}

const char *traceql_op_str(enum traceql_op op)
{
    static const char *const s[] = { "=", "!=", ">", ">=", "<", "<=", "=~", "!~", "&&", "||" };
    return (unsigned)op < sizeof s / sizeof s[0] ? s[op] : "?";
}

const char *traceql_set_op_str(enum traceql_set_op op)
{
    static const char *const s[] = { "&&", "||", ">", ">>", "<", "<<", "~" };
    return (unsigned)op < sizeof s / sizeof s[0] ? s[op] : "?";
}

const char *traceql_agg_name(enum traceql_agg a)
{
    static const char *const s[] = { "count", "avg", "min", "max", "sum" };
    return (unsigned)a < sizeof s / sizeof s[0] ? s[a] : "?";
}

struct traceql_query *traceql_query_new(struct vg_err *err)
{
    struct traceql_query *q = vg_calloc(1, sizeof *q);
    if (q)
        q->arena = vg_arena_new(4096);
    if (!q || !q->arena) {
        vg_free(q);
        vg_err_set(err, VG_ENOMEM, "traceql: out of memory");
        return NULL;
    }
    return q;
}

void traceql_query_free(struct traceql_query *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->nmatchers; i++)
        matcher_free(q->matchers[i]);
    vg_free(q->matchers);
    vg_arena_free(q->arena);
    vg_free(q);
}

struct traceql_field *traceql_field_new(struct traceql_query *q, enum traceql_field_kind k,
                                        size_t pos)
{
    struct traceql_field *f = vg_arena_calloc(q->arena, sizeof *f);
    if (f) {
        f->kind = k;
        f->pos = pos;
    }
    return f;
}

struct traceql_field *traceql_field_binary(struct traceql_query *q, enum traceql_op op,
                                           struct traceql_field *lhs,
                                           struct traceql_field *rhs, size_t pos)
{
    struct traceql_field *f = traceql_field_new(q, TQ_FIELD_BINARY, pos);
    if (f) {
        f->u.bin.op = op;
        f->u.bin.lhs = lhs;
        f->u.bin.rhs = rhs;
    }
    return f;
}

int traceql_field_compile(struct traceql_query *q, struct traceql_field *f, struct vg_err *err)
{
    const struct traceql_field *r = f->u.bin.rhs;
    if (r->kind != TQ_FIELD_STATIC || r->u.value.type != TQ_STRING)
        return vg_err_set(err, VG_EINVAL, "the right side of %s must be a string",
                          traceql_op_str(f->u.bin.op));
    if (q->nmatchers == q->capmatchers) {
        size_t nc = q->capmatchers ? q->capmatchers * 2 : 4;
        struct matcher **nv = vg_realloc(q->matchers, nc * sizeof *nv);
        if (!nv)
            return vg_err_set(err, VG_ENOMEM, "traceql: out of memory");
        q->matchers = nv;
        q->capmatchers = nc;
    }
    /* The matcher's regex is fully anchored, as Tempo anchors =~ and !~. */
    struct matcher *m = matcher_new(MATCH_RE, VG_STR("re"), r->u.value.v.s, err);
    if (!m)
        return err ? err->code : VG_EINVAL;
    q->matchers[q->nmatchers++] = m;
    f->u.bin.re = m;
    return 0;
}

static struct vg_str arena_str(struct traceql_query *q, struct vg_str s, bool *ok)
{
    char *p = vg_arena_strndup(q->arena, s.p ? s.p : "", s.len);
    if (!p)
        *ok = false;
    return (struct vg_str){ p, p ? s.len : 0 };
}

struct traceql_field *traceql_field_text_eq(struct traceql_query *q, enum traceql_scope scope,
                                            struct vg_str name, struct vg_str value)
{
    bool ok = true;
    struct traceql_field *a = traceql_field_new(q, TQ_FIELD_ATTR, 0);
    struct traceql_field *v = traceql_field_new(q, TQ_FIELD_STATIC, 0);
    if (!a || !v)
        return NULL;
    a->u.attr.scope = scope;
    a->u.attr.name = arena_str(q, name, &ok);
    v->u.value.type = TQ_STRING;
    v->u.value.v.s = arena_str(q, value, &ok);
    struct traceql_field *f = traceql_field_binary(q, TQ_OP_EQ, a, v, 0);
    if (!ok || !f || traceql_query_note_attr(q, a) < 0)
        return NULL;
    f->u.bin.text = true;
    return f;
}

int traceql_query_note_attr(struct traceql_query *q, const struct traceql_field *f)
{
    for (size_t i = 0; i < q->nattrs; i++)
        if (q->attrs[i]->u.attr.scope == f->u.attr.scope &&
            vg_str_eq(q->attrs[i]->u.attr.name, f->u.attr.name))
            return 0;
    /* Arena arrays cannot grow in place: double into a fresh one (the old one is
     * released with the arena; queries are small). */
    if ((q->nattrs & (q->nattrs - 1)) == 0) {
        size_t cap = q->nattrs ? q->nattrs * 2 : 1;
        const struct traceql_field **nv = vg_arena_alloc(q->arena, cap * sizeof *nv);
        if (!nv)
            return VG_ENOMEM;
        if (q->nattrs)
            memcpy(nv, q->attrs, q->nattrs * sizeof *nv);
        q->attrs = nv;
    }
    q->attrs[q->nattrs++] = f;
    return 0;
}

int traceql_query_set_filter(struct traceql_query *q, struct traceql_field *f,
                             struct vg_err *err)
{
    struct traceql_pipeline *p = vg_arena_calloc(q->arena, sizeof *p);
    struct traceql_stage *st = vg_arena_calloc(q->arena, sizeof *st);
    struct traceql_set *s = vg_arena_calloc(q->arena, sizeof *s);
    if (!p || !st || !s)
        return vg_err_set(err, VG_ENOMEM, "traceql: out of memory");
    s->kind = TQ_SET_FILTER;
    s->u.filter = f;
    st->kind = TQ_STAGE_SET;
    st->u.set = s;
    p->stages = st;
    p->n = 1;
    q->root = p;
    return 0;
}

static bool is_number(enum traceql_type t)
{
    return t == TQ_INT || t == TQ_FLOAT || t == TQ_DURATION;
}

static bool holds(int c, enum traceql_op op)
{
    switch (op) {
    case TQ_OP_EQ: return c == 0;
    case TQ_OP_NEQ: return c != 0;
    case TQ_OP_GT: return c > 0;
    case TQ_OP_GTE: return c >= 0;
    case TQ_OP_LT: return c < 0;
    case TQ_OP_LTE: return c <= 0;
    default: return false;
    }
}

bool traceql_value_cmp(const struct traceql_value *a, enum traceql_op op,
                       const struct traceql_value *b)
{
    if (a->type == TQ_NIL || b->type == TQ_NIL)
        return false;
    if (is_number(a->type) && is_number(b->type)) {
        if (a->type != TQ_FLOAT && b->type != TQ_FLOAT)
            return holds(a->v.i < b->v.i ? -1 : a->v.i > b->v.i, op);
        double x = a->type == TQ_FLOAT ? a->v.f : (double)a->v.i;
        double y = b->type == TQ_FLOAT ? b->v.f : (double)b->v.i;
        if (x != x || y != y) /* NaN: only != holds */
            return op == TQ_OP_NEQ;
        return holds(x < y ? -1 : x > y, op);
    }
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case TQ_STRING:
        return holds(vg_str_cmp(a->v.s, b->v.s), op);
    case TQ_BOOL:
        return (op == TQ_OP_EQ || op == TQ_OP_NEQ) && holds(a->v.b != b->v.b, op);
    case TQ_STATUS:
    case TQ_KIND:
        return (op == TQ_OP_EQ || op == TQ_OP_NEQ) && holds(a->v.i != b->v.i, op);
    default:
        return false;
    }
}
