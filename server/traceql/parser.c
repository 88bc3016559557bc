/* parser: see parser.h. One token of lookahead (p->t); nodes go to the query's arena. */
#include "parser.h"

#include "lexer.h"

#include "../../storage/base/vg_alloc.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

struct parser {
    const char *s;
    size_t len;
    struct traceql_tok t;
    struct traceql_query *q;
    struct vg_err *err;
    int depth;
    bool failed;
    char buf[TRACEQL_MAX_STRING];
};

/* Sets the error once (the first one wins) with the position of byte pos. */
static void fail_at(struct parser *p, size_t pos, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail_at(struct parser *p, size_t pos, int code, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = true;
    if (code == VG_ENOMEM) {
        vg_err_set(p->err, VG_ENOMEM, "traceql: out of memory");
        return;
    }
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos && i < p->len; i++) {
        if (p->s[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vg_err_set(p->err, VG_EINVAL, "parse error at line %zu, col %zu: %s", line, col, msg);
}

static void oom(struct parser *p)
{
    fail_at(p, 0, VG_ENOMEM, "out of memory");
}

static void next(struct parser *p)
{
    traceql_lex(p->s, p->len, p->t.end, &p->t, p->buf);
    if (p->t.kind == TK_ERROR)
        fail_at(p, p->t.start, VG_EINVAL, "%s", p->t.msg);
}

static void unexpected(struct parser *p)
{
    if (p->t.kind == TK_ERROR)
        fail_at(p, p->t.start, VG_EINVAL, "%s", p->t.msg);
    else
        fail_at(p, p->t.start, VG_EINVAL, "syntax error: unexpected %s",
                traceql_tok_name(&p->t));
}

static bool expect(struct parser *p, enum traceql_tk k)
{
    if (p->failed)
        return false;
    if (p->t.kind != k) {
        unexpected(p);
        return false;
    }
    next(p);
    return !p->failed;
}

static bool enter(struct parser *p)
{
    if (++p->depth > TRACEQL_MAX_DEPTH) {
        fail_at(p, p->t.start, VG_EINVAL, "nesting too deep (more than %d levels)",
                TRACEQL_MAX_DEPTH);
        return false;
    }
    return true;
}

static struct vg_str copy_str(struct parser *p, const char *s, size_t n)
{
    char *c = vg_arena_strndup(p->q->arena, s, n);
    if (!c)
        oom(p);
    return (struct vg_str){ c, c ? n : 0 };
}

/* ---- field expressions ---- */

static struct traceql_field *field_or(struct parser *p);

static bool cmp_op(enum traceql_tk k, enum traceql_op *op)
{
    static const struct { enum traceql_tk tk; enum traceql_op op; } m[] = {
        { TK_EQ, TQ_OP_EQ }, { TK_NEQ, TQ_OP_NEQ }, { TK_GT, TQ_OP_GT }, { TK_GTE, TQ_OP_GTE },
        { TK_LT, TQ_OP_LT }, { TK_LTE, TQ_OP_LTE }, { TK_RE, TQ_OP_RE }, { TK_NRE, TQ_OP_NRE },
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (m[i].tk == k) {
            *op = m[i].op;
            return true;
        }
    return false;
}

/* A static value at the current token (a leading - for numbers); false if none. */
static bool static_value(struct parser *p, struct traceql_value *v)
{
    bool neg = p->t.kind == TK_MINUS;
    size_t at = p->t.start;
    if (neg)
        next(p);
    if (p->failed)
        return false;
    memset(v, 0, sizeof *v);
    switch (p->t.kind) {
    case TK_INT: v->type = TQ_INT; v->v.i = neg ? -p->t.i : p->t.i; break;
    case TK_DURATION: v->type = TQ_DURATION; v->v.i = neg ? -p->t.i : p->t.i; break;
    case TK_FLOAT: v->type = TQ_FLOAT; v->v.f = neg ? -p->t.f : p->t.f; break;
    default:
        if (neg) {
            fail_at(p, at, VG_EINVAL, "syntax error: unexpected -");
            return false;
        }
        switch (p->t.kind) {
        case TK_STRING:
            v->type = TQ_STRING;
            v->v.s = copy_str(p, p->t.s, p->t.slen);
            break;
        case TK_TRUE: case TK_FALSE:
            v->type = TQ_BOOL;
            v->v.b = p->t.kind == TK_TRUE;
            break;
        case TK_NIL: v->type = TQ_NIL; break;
        case TK_STATUS: v->type = TQ_STATUS; v->v.i = p->t.sub; break;
        case TK_KIND: v->type = TQ_KIND; v->v.i = p->t.sub; break;
        default: return false;
        }
    }
    next(p);
    return !p->failed;
}

static struct traceql_field *field_primary(struct parser *p)
{
    size_t at = p->t.start;
    struct traceql_field *f = NULL;
    struct traceql_value v;
    switch (p->t.kind) {
    case TK_LPAREN:
        next(p);
        f = field_or(p);
        return f && expect(p, TK_RPAREN) ? f : NULL;
    case TK_INTRINSIC:
        if ((f = traceql_field_new(p->q, TQ_FIELD_INTRINSIC, at)) == NULL)
            break;
        f->u.intrinsic = (enum traceql_intrinsic)p->t.sub;
        next(p);
        return p->failed ? NULL : f;
    case TK_ATTR:
        if ((f = traceql_field_new(p->q, TQ_FIELD_ATTR, at)) == NULL)
            break;
        f->u.attr.scope = (enum traceql_scope)p->t.sub;
        f->u.attr.name = copy_str(p, p->t.s, p->t.slen);
        if (p->failed)
            return NULL;
        if (traceql_query_note_attr(p->q, f) < 0)
            break;
        next(p);
        return p->failed ? NULL : f;
    default:
        if (!static_value(p, &v)) {
            if (!p->failed)
                unexpected(p);
            return NULL;
        }
        if ((f = traceql_field_new(p->q, TQ_FIELD_STATIC, at)) == NULL)
            break;
        f->u.value = v;
        return f;
    }
    oom(p);
    return NULL;
}

static struct traceql_field *field_unary(struct parser *p)
{
    if (p->t.kind != TK_NOT)
        return field_primary(p);
    size_t at = p->t.start;
    next(p);
    if (p->failed || !enter(p))
        return NULL;
    struct traceql_field *x = field_unary(p);
    p->depth--;
    if (!x)
        return NULL;
    struct traceql_field *f = traceql_field_new(p->q, TQ_FIELD_NOT, at);
    if (!f) {
        oom(p);
        return NULL;
    }
    f->u.bin.lhs = x;
    return f;
}

static struct traceql_field *field_cmp(struct parser *p)
{
    struct traceql_field *l = field_unary(p);
    enum traceql_op op;
    if (!l || !cmp_op(p->t.kind, &op))
        return l;
    size_t at = p->t.start;
    next(p);
    struct traceql_field *r = p->failed ? NULL : field_unary(p);
    if (!r)
        return NULL;
    struct traceql_field *f = traceql_field_binary(p->q, op, l, r, at);
    if (!f) {
        oom(p);
        return NULL;
    }
    if (op == TQ_OP_RE || op == TQ_OP_NRE) {
        struct vg_err e;
        int rc = traceql_field_compile(p->q, f, &e);
        if (rc < 0) {
            fail_at(p, r->pos, rc, "%s", e.msg);
            return NULL;
        }
    }
    return f;
}

static struct traceql_field *field_bool(struct parser *p, bool is_and)
{
    if (!enter(p))
        return NULL;
    struct traceql_field *l = is_and ? field_cmp(p) : field_bool(p, true);
    while (l && p->t.kind == (is_and ? TK_AND : TK_OR)) {
        size_t at = p->t.start;
        next(p);
        struct traceql_field *r = p->failed ? NULL : is_and ? field_cmp(p) : field_bool(p, true);
        if (!r)
            l = NULL;
        else if (!(l = traceql_field_binary(p->q, is_and ? TQ_OP_AND : TQ_OP_OR, l, r, at)))
            oom(p);
    }
    p->depth--;
    return l;
}

static struct traceql_field *field_or(struct parser *p)
{
    return field_bool(p, false);
}

/* ---- spansets and pipelines ---- */

static struct traceql_pipeline *pipeline(struct parser *p);

static bool is_boolean(const struct traceql_field *f)
{
    switch (f->kind) {
    case TQ_FIELD_STATIC: return f->u.value.type == TQ_BOOL;
    case TQ_FIELD_INTRINSIC: return false;
    default: return true;
    }
}

static struct traceql_set *set_operand(struct parser *p)
{
    struct traceql_set *s = vg_arena_calloc(p->q->arena, sizeof *s);
    if (!s) {
        oom(p);
        return NULL;
    }
    if (p->t.kind == TK_LPAREN) {
        next(p);
        s->kind = TQ_SET_PIPELINE;
        s->u.pipe = p->failed ? NULL : pipeline(p);
        return s->u.pipe && expect(p, TK_RPAREN) ? s : NULL;
    }
    if (p->t.kind != TK_LBRACE) {
        unexpected(p);
        return NULL;
    }
    next(p);
    s->kind = TQ_SET_FILTER;
    if (p->failed)
        return NULL;
    if (p->t.kind != TK_RBRACE) {
        size_t at = p->t.start;
        if (!(s->u.filter = field_or(p)))
            return NULL;
        if (p->t.kind != TK_RBRACE) {
            unexpected(p);
            return NULL;
        }
        if (!is_boolean(s->u.filter)) {
            fail_at(p, at, VG_EINVAL, "a spanset filter must be a boolean expression");
            return NULL;
        }
    }
    next(p);
    return p->failed ? NULL : s;
}

static bool set_op(enum traceql_tk k, int level, enum traceql_set_op *op)
{
    switch (k) {
    case TK_OR: *op = TQ_SET_OR; return level == 0;
    case TK_AND: *op = TQ_SET_AND; return level == 1;
    case TK_GT: *op = TQ_SET_CHILD; return level == 2;
    case TK_DESC: *op = TQ_SET_DESC; return level == 2;
    case TK_LT: *op = TQ_SET_PARENT; return level == 2;
    case TK_ANCE: *op = TQ_SET_ANCESTOR; return level == 2;
    case TK_TILDE: *op = TQ_SET_SIBLING; return level == 2;
    default: return false;
    }
}

/* level 0: ||, 1: &&, 2: structural. */
static struct traceql_set *set_expr(struct parser *p, int level)
{
    if (!enter(p))
        return NULL;
    struct traceql_set *l = level == 2 ? set_operand(p) : set_expr(p, level + 1);
    enum traceql_set_op op;
    while (l && set_op(p->t.kind, level, &op)) {
        next(p);
        struct traceql_set *r = p->failed ? NULL
                                : level == 2 ? set_operand(p) : set_expr(p, level + 1);
        struct traceql_set *b = r ? vg_arena_calloc(p->q->arena, sizeof *b) : NULL;
        if (r && !b)
            oom(p);
        if (!b) {
            l = NULL;
            break;
        }
        b->kind = TQ_SET_BINARY;
        b->u.bin.op = op;
        b->u.bin.lhs = l;
        b->u.bin.rhs = r;
        l = b;
    }
    p->depth--;
    return l;
}

static bool scalar_stage(struct parser *p, struct traceql_stage *st)
{
    size_t at = p->t.start;
    st->kind = TQ_STAGE_SCALAR;
    st->u.scalar.agg = (enum traceql_agg)p->t.sub;
    next(p);
    if (!expect(p, TK_LPAREN))
        return false;
    if (st->u.scalar.agg == TQ_AGG_COUNT) {
        if (p->t.kind != TK_RPAREN) {
            unexpected(p);
            return false;
        }
    } else if (p->t.kind == TK_RPAREN) {
        fail_at(p, at, VG_EINVAL, "%s() needs a field", traceql_agg_name(st->u.scalar.agg));
        return false;
    } else if (!(st->u.scalar.arg = field_or(p))) {
        return false;
    }
    if (!expect(p, TK_RPAREN))
        return false;
    if (!cmp_op(p->t.kind, &st->u.scalar.op) || st->u.scalar.op == TQ_OP_RE ||
        st->u.scalar.op == TQ_OP_NRE) {
        unexpected(p);
        return false;
    }
    next(p);
    size_t vat = p->t.start;
    struct traceql_value *v = &st->u.scalar.value;
    if (!static_value(p, v)) {
        if (!p->failed)
            unexpected(p);
        return false;
    }
    if (v->type != TQ_INT && v->type != TQ_FLOAT && v->type != TQ_DURATION) {
        fail_at(p, vat, VG_EINVAL, "%s() compares with a number or a duration",
                traceql_agg_name(st->u.scalar.agg));
        return false;
    }
    return true;
}

static bool select_stage(struct parser *p, struct traceql_stage *st)
{
    st->kind = TQ_STAGE_SELECT;
    next(p);
    if (!expect(p, TK_LPAREN))
        return false;
    size_t cap = 0;
    for (;;) {
        struct traceql_field *f = field_or(p);
        if (!f)
            return false;
        if (st->u.select.n == cap) {
            cap = cap ? cap * 2 : 4;
            struct traceql_field **nv = vg_arena_alloc(p->q->arena, cap * sizeof *nv);
            if (!nv) {
                oom(p);
                return false;
            }
            if (st->u.select.n)
                memcpy(nv, st->u.select.fields, st->u.select.n * sizeof *nv);
            st->u.select.fields = nv;
        }
        st->u.select.fields[st->u.select.n++] = f;
        if (p->t.kind != TK_COMMA)
            break;
        next(p);
    }
    return expect(p, TK_RPAREN);
}

static struct traceql_pipeline *pipeline(struct parser *p)
{
    if (!enter(p))
        return NULL;
    struct traceql_pipeline *pl = vg_arena_calloc(p->q->arena, sizeof *pl);
    size_t cap = 0;
    bool first = true;
    while (pl && !p->failed) {
        if (pl->n == cap) {
            cap = cap ? cap * 2 : 4;
            struct traceql_stage *nv = vg_arena_calloc(p->q->arena, cap * sizeof *nv);
            if (!nv)
                break;
            if (pl->n)
                memcpy(nv, pl->stages, pl->n * sizeof *nv);
            pl->stages = nv;
        }
        struct traceql_stage *st = &pl->stages[pl->n];
        bool ok;
        if (!first && p->t.kind == TK_AGG) {
            ok = scalar_stage(p, st);
        } else if (!first && p->t.kind == TK_SELECT) {
            ok = select_stage(p, st);
        } else {
            st->kind = TQ_STAGE_SET;
            ok = (st->u.set = set_expr(p, 0)) != NULL;
        }
        if (!ok)
            break;
        pl->n++;
        first = false;
        if (p->t.kind != TK_PIPE) {
            p->depth--;
            return pl;
        }
        next(p);
    }
    if (!p->failed)
        oom(p);
    p->depth--;
    return NULL;
}

struct traceql_query *traceql_parse(const char *query, size_t len, struct vg_err *err)
{
    if (len >= TRACEQL_MAX_QUERY_LEN) {
        vg_err_set(err, VG_EINVAL, "parse error: query of %zu bytes is longer than the limit "
                   "of %d", len, TRACEQL_MAX_QUERY_LEN - 1);
        return NULL;
    }
    struct parser *p = vg_malloc(sizeof *p);
    struct traceql_query *q = p ? traceql_query_new(err) : NULL;
    if (!q) {
        vg_free(p);
        vg_err_set(err, VG_ENOMEM, "traceql: out of memory");
        return NULL;
    }
    memset(p, 0, offsetof(struct parser, buf));
    p->s = query ? query : "";
    p->len = len;
    p->q = q;
    p->err = err;
    next(p);
    if (!p->failed && p->t.kind == TK_EOF)
        fail_at(p, 0, VG_EINVAL, "syntax error: unexpected end of input, expecting {");
    if (!p->failed)
        q->root = pipeline(p);
    if (!p->failed && p->t.kind != TK_EOF)
        unexpected(p);
    bool failed = p->failed;
    vg_free(p);
    if (failed) {
        traceql_query_free(q);
        return NULL;
    }
    return q;
}
