/* parser: PromQL text to a checked syntax tree (promql_parse in engine.h).
 *
 * A hand-written recursive-descent parser over lexer.c's tokens that accepts Prometheus
 * 3's grammar (promql/parser/generated_parser.y) and reports the same errors in the same
 * order: syntax errors as the yacc grammar's error rules word them ("unexpected <op:*>",
 * "... in aggregation", "... in grouping opts, expected label"), semantic errors from its
 * actions ("offset may not be set multiple times"), then, only for a syntactically valid
 * query, the type checks of Prometheus's checkAST. The first error wins, formatted
 * "<line>:<col>: parse error: <message>".
 *
 * Precedence, loosest first: or; and unless; == != < <= > >=; + -; * / % atan2; ^ (right
 * associative). Unary +/- binds like *, so -2^2 is -(2^2) and -1*2 is (-1)*2. offset,
 * @ and [range] bind tighter than any operator, to the expression just before them.
 *
 * Tree conventions the evaluator relies on:
 * - `-1`, `+1`, `-Inf` become a PN_NUMBER holding the signed value (as Prometheus folds
 *   them); a sign before anything else is a PN_UNARY. Durations in scalar position
 *   (`5m`) are PN_NUMBER in seconds (300).
 * - Parentheses are kept as PN_PAREN.
 * - offset and @ of a range selector live in its inner vector selector; a subquery
 *   carries its own. offset_ms is positive into the past, negative for `offset -5m`.
 * - A binary operation's `matching` is NULL unless both sides are instant vectors; set
 *   operators have CARD_MANY_TO_MANY.
 * - A selector's metric name, when written before the braces, is `name` and also the
 *   last matcher (__name__="name").
 *
 * Nesting is limited to PARSE_MAX_DEPTH levels so that recursive walks of the tree
 * (checking, printing, evaluating) have a bounded stack. */
#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_arena.h"
#include "engine.h"
#include "functions.h"
#include "lexer.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define PARSE_MAX_DEPTH 512

enum prec { PREC_OR = 1, PREC_AND, PREC_CMP, PREC_ADD, PREC_MUL, PREC_POW };

struct parser {
    const char *q;
    size_t len;
    struct lexer lx;
    struct lexer_token tok;
    size_t prev_end; /* end of the last consumed token */
    struct promql_expr *e;
    struct vg_err *err;
    bool failed;
    int agg_depth; /* inside an aggregation's parentheses: errors say "in aggregation" */
    int depth;
    size_t mcap; /* capacity of e->matchers */
    struct matcher **tmp; /* matchers of the selector being parsed */
    size_t ntmp, tmpcap;
    struct vg_buf sbuf;
};

static void *perr(struct parser *p, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void *perr(struct parser *p, size_t at, const char *fmt, ...)
{
    if (p->failed)
        return NULL;
    p->failed = true;
    char m[VG_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    lexer_error(p->err, p->q, p->len, at, "%s", m);
    return NULL;
}

static void *nomem(struct parser *p)
{
    if (!p->failed) {
        p->failed = true;
        vg_err_set(p->err, VG_ENOMEM, "out of memory parsing a query");
    }
    return NULL;
}

static void advance(struct parser *p)
{
    p->prev_end = p->tok.pos + p->tok.len;
    lexer_next(&p->lx, &p->tok);
    if (p->tok.kind == LK_ERROR)
        perr(p, p->lx.err_at, "%s", p->lx.msg);
}

/* "unexpected <token>[ in <context>][, expected <what>]" about the lookahead token. */
static void *unexpected(struct parser *p, const char *context, const char *expected)
{
    if (p->failed)
        return NULL;
    if (!context && p->agg_depth > 0)
        context = "aggregation";
    char d[200];
    lexer_describe(p->q, &p->tok, d, sizeof d);
    return perr(p, p->tok.pos, "unexpected %s%s%s%s%s", d, context ? " in " : "",
                context ? context : "", expected ? ", expected " : "", expected ? expected : "");
}

static struct promql_node *new_node(struct parser *p, enum promql_node_kind k, size_t start)
{
    struct promql_node *n = vg_arena_calloc(p->e->arena, sizeof *n);
    if (!n)
        return nomem(p);
    n->kind = k;
    n->start = (uint32_t)start;
    n->end = (uint32_t)p->prev_end;
    return n;
}

static bool deep(struct parser *p, int h, size_t at)
{
    if (h <= PARSE_MAX_DEPTH)
        return false;
    perr(p, at, "expression nested too deeply (more than %d levels)", PARSE_MAX_DEPTH);
    return true;
}

static const char *doc_type(enum promql_type t)
{
    switch (t) {
    case PT_VECTOR: return "instant vector";
    case PT_MATRIX: return "range vector";
    default: return promql_type_name(t);
    }
}

/* ---- literals ---- */

static bool is_number_tok(const struct parser *p)
{
    return p->tok.kind == LK_NUMBER || p->tok.kind == LK_DURATION;
}

/* The value of a NUMBER or DURATION token in seconds; DURATION also in exact ms. */
static bool number_value(struct parser *p, double *sec, int64_t *ms, bool *exact)
{
    char m[VG_ERR_MSG_MAX];
    const char *s = p->q + p->tok.pos;
    if (p->tok.kind == LK_DURATION) {
        int64_t v;
        if (lexer_parse_duration(s, p->tok.len, &v, m, sizeof m) < 0) {
            perr(p, p->tok.pos, "%s", m);
            return false;
        }
        *sec = (double)v / 1000.0;
        if (ms)
            *ms = v;
        *exact = true;
        return true;
    }
    if (lexer_parse_number(s, p->tok.len, sec, m, sizeof m) < 0) {
        perr(p, p->tok.pos, "%s", m);
        return false;
    }
    *exact = false;
    return true;
}

/* A NUMBER or DURATION token as a duration in ms, as Prometheus converts a number
 * literal: time.Duration(v*1000) * time.Millisecond. Durations must fit in Go's
 * time.Duration (int64 nanoseconds). */
static bool duration_value(struct parser *p, int64_t *ms)
{
    double sec;
    bool exact;
    size_t at = p->tok.pos;
    if (!number_value(p, &sec, ms, &exact))
        return false;
    if (exact)
        return true;
    double v = sec * 1000.0;
    if (isnan(v) || fabs(v) > 9223372036854.0) {
        perr(p, at, "duration out of range");
        return false;
    }
    *ms = (int64_t)v;
    return true;
}

/* Unquotes the STRING token into the arena. */
static char *string_value(struct parser *p, size_t *len)
{
    struct lexer_str_error se;
    size_t end;
    vg_buf_reset(&p->sbuf);
    enum lexer_str_fail f = lexer_scan_string(p->q, p->len, p->tok.pos, &end, &p->sbuf, &se);
    if (f == LS_NOMEM || vg_buf_failed(&p->sbuf))
        return nomem(p);
    if (f != LS_OK) { /* the lexer has already checked it */
        char m[128];
        lexer_string_message(&se, m, sizeof m);
        return perr(p, p->tok.pos, "%s", m);
    }
    char *s = vg_arena_alloc(p->e->arena, p->sbuf.len + 1);
    if (!s)
        return nomem(p);
    if (p->sbuf.len)
        memcpy(s, p->sbuf.p, p->sbuf.len);
    s[p->sbuf.len] = 0;
    *len = p->sbuf.len;
    return s;
}

/* ---- label lists: by (...), on (...), group_left (...) ---- */

static bool is_label_token(enum lexer_kind k)
{
    switch (k) {
    case LK_IDENT: case LK_METRIC_IDENT: case LK_STRING: case LK_AGG: case LK_BOOL:
    case LK_BY: case LK_GROUP_LEFT: case LK_GROUP_RIGHT: case LK_IGNORING: case LK_AND:
    case LK_OR: case LK_UNLESS: case LK_OFFSET: case LK_ON: case LK_WITHOUT: case LK_START:
    case LK_END: case LK_ATAN2:
        return true;
    default:
        return false;
    }
}

static bool parse_labels(struct parser *p, struct promql_strings *out)
{
    if (p->tok.kind != LK_LPAREN) {
        unexpected(p, "grouping opts", "\"(\"");
        return false;
    }
    advance(p);
    char *tmp[64];
    char **v = tmp;
    size_t n = 0, cap = 64;
    bool ok = false;
    while (!p->failed) {
        if (p->tok.kind == LK_RPAREN) {
            advance(p);
            ok = true;
            break;
        }
        if (!is_label_token(p->tok.kind) || p->tok.kind == LK_METRIC_IDENT) {
            unexpected(p, "grouping opts", "label");
            break;
        }
        char *l;
        if (p->tok.kind == LK_STRING) {
            size_t sl;
            l = string_value(p, &sl);
        } else {
            l = vg_arena_strndup(p->e->arena, p->q + p->tok.pos, p->tok.len);
            if (!l)
                nomem(p);
        }
        if (!l)
            break;
        if (n == cap) {
            char **nv = vg_arena_alloc(p->e->arena, 2 * cap * sizeof *nv);
            if (!nv) {
                nomem(p);
                break;
            }
            memcpy(nv, v, n * sizeof *v);
            v = nv;
            cap *= 2;
        }
        v[n++] = l;
        advance(p);
        if (p->tok.kind == LK_COMMA) {
            advance(p);
        } else if (p->tok.kind != LK_RPAREN) {
            unexpected(p, "grouping opts", "\",\" or \")\"");
            break;
        }
    }
    if (!ok || p->failed)
        return false;
    out->n = n;
    out->v = NULL;
    if (n) {
        out->v = vg_arena_alloc(p->e->arena, n * sizeof *out->v);
        if (!out->v) {
            nomem(p);
            return false;
        }
        memcpy(out->v, v, n * sizeof *v);
    }
    return true;
}

/* ---- selectors ---- */

static bool keep_matcher(struct parser *p, struct matcher *m)
{
    if (p->e->nmatchers == p->mcap) {
        size_t nc = p->mcap ? 2 * p->mcap : 8;
        struct matcher **nm = vg_realloc(p->e->matchers, nc * sizeof *nm);
        if (!nm) {
            matcher_free(m);
            nomem(p);
            return false;
        }
        p->e->matchers = nm;
        p->mcap = nc;
    }
    p->e->matchers[p->e->nmatchers++] = m;
    if (p->ntmp == p->tmpcap) {
        size_t nc = p->tmpcap ? 2 * p->tmpcap : 8;
        struct matcher **nt = vg_realloc(p->tmp, nc * sizeof *nt);
        if (!nt) {
            nomem(p);
            return false;
        }
        p->tmp = nt;
        p->tmpcap = nc;
    }
    p->tmp[p->ntmp++] = m;
    return true;
}

static bool add_matcher(struct parser *p, size_t at, enum matcher_op op, struct vg_str name,
                        struct vg_str value)
{
    struct vg_err me;
    vg_err_clear(&me);
    struct matcher *m = matcher_new(op, name, value, &me);
    if (!m) {
        if (me.code == VG_ENOMEM)
            nomem(p);
        else
            perr(p, at, "%s", me.msg);
        return false;
    }
    return keep_matcher(p, m);
}

static bool match_op(enum lexer_kind k, enum matcher_op *op)
{
    switch (k) {
    case LK_EQL: *op = MATCH_EQ; return true;
    case LK_NEQ: *op = MATCH_NEQ; return true;
    case LK_EQL_REGEX: *op = MATCH_RE; return true;
    case LK_NEQ_REGEX: *op = MATCH_NRE; return true;
    default: return false;
    }
}

/* One item inside braces: label op "value", "quoted label" op "value", or "name". */
static bool parse_matcher(struct parser *p)
{
    size_t at = p->tok.pos;
    struct vg_str name;
    bool quoted = p->tok.kind == LK_STRING;
    if (quoted) {
        size_t l = 0;
        char *s = string_value(p, &l);
        if (!s)
            return false;
        name = (struct vg_str){ s, l };
    } else if (p->tok.kind == LK_IDENT) {
        name = (struct vg_str){ p->q + p->tok.pos, p->tok.len };
    } else {
        unexpected(p, "label matching", "identifier or \"}\"");
        return false;
    }
    advance(p);
    enum matcher_op op;
    if (!match_op(p->tok.kind, &op)) {
        if (quoted) /* Prometheus 3: {"metric.name"} */
            return !p->failed && add_matcher(p, at, MATCH_EQ, VG_STR("__name__"), name);
        unexpected(p, "label matching", "label matching operator");
        return false;
    }
    advance(p);
    if (p->tok.kind != LK_STRING) {
        unexpected(p, "label matching", "string");
        return false;
    }
    size_t vl = 0;
    char *v = string_value(p, &vl);
    if (!v)
        return false;
    advance(p);
    return !p->failed && add_matcher(p, at, op, name, (struct vg_str){ v, vl });
}

/* name? {matchers}?; the current token is the name (if name_len > 0) or '{'. */
static struct promql_node *parse_selector(struct parser *p, size_t start, const char *name,
                                          size_t name_len)
{
    p->ntmp = 0;
    if (p->tok.kind == LK_LBRACE) {
        advance(p);
        while (!p->failed) {
            if (p->tok.kind == LK_RBRACE) {
                advance(p);
                break;
            }
            if (!parse_matcher(p))
                return NULL;
            if (p->tok.kind == LK_COMMA)
                advance(p);
            else if (p->tok.kind != LK_RBRACE)
                return unexpected(p, "label matching", "\",\" or \"}\"");
        }
    }
    if (p->failed)
        return NULL;
    struct promql_node *n = new_node(p, PN_VECTOR_SELECTOR, start);
    if (!n)
        return NULL;
    if (name_len) {
        n->sel.name = vg_arena_strndup(p->e->arena, name, name_len);
        if (!n->sel.name)
            return nomem(p);
        if (!add_matcher(p, start, MATCH_EQ, VG_STR("__name__"), (struct vg_str){ name, name_len }))
            return NULL;
    }
    n->sel.nms = p->ntmp;
    if (p->ntmp) {
        n->sel.ms = vg_arena_alloc(p->e->arena, p->ntmp * sizeof *n->sel.ms);
        if (!n->sel.ms)
            return nomem(p);
        memcpy(n->sel.ms, p->tmp, p->ntmp * sizeof *p->tmp);
    }
    return n;
}

/* ---- expressions ---- */

static struct promql_node *parse_expr(struct parser *p, int min_prec, int *h);

/* ( args ): the current token is '('. */
static struct promql_node **parse_args(struct parser *p, size_t *nargs, int *h)
{
    advance(p);
    *nargs = 0;
    *h = 0;
    struct promql_node *tmp[16];
    struct promql_node **v = tmp;
    size_t cap = 16;
    if (p->tok.kind == LK_RPAREN) {
        static struct promql_node *none[1];
        advance(p);
        return p->failed ? NULL : none; /* non-NULL: success with no arguments */
    }
    for (;;) {
        int ah;
        struct promql_node *a = parse_expr(p, 0, &ah);
        if (!a)
            return NULL;
        if (ah > *h)
            *h = ah;
        if (*nargs == cap) {
            struct promql_node **nv = vg_arena_alloc(p->e->arena, 2 * cap * sizeof *nv);
            if (!nv)
                return nomem(p);
            memcpy(nv, v, cap * sizeof *v);
            v = nv;
            cap *= 2;
        }
        v[(*nargs)++] = a;
        if (p->tok.kind == LK_COMMA) {
            size_t comma = p->tok.pos;
            advance(p);
            if (p->tok.kind == LK_RPAREN)
                return perr(p, comma, "trailing commas not allowed in function call args");
            continue;
        }
        if (p->tok.kind != LK_RPAREN)
            return unexpected(p, NULL, NULL);
        advance(p);
        break;
    }
    if (p->failed)
        return NULL;
    struct promql_node **out = vg_arena_alloc(p->e->arena, *nargs * sizeof *out);
    if (!out)
        return nomem(p);
    memcpy(out, v, *nargs * sizeof *v);
    return out;
}

static struct promql_node *parse_call(struct parser *p, size_t start, size_t name_len, int *h)
{
    size_t nargs;
    struct promql_node **args = parse_args(p, &nargs, h);
    if (!args)
        return NULL;
    const struct promql_function *fn = promql_function_lookup(p->q + start, name_len);
    if (!fn)
        return perr(p, start, "unknown function with name \"%.*s\"", (int)name_len, p->q + start);
    struct promql_node *n = new_node(p, PN_CALL, start);
    if (!n)
        return NULL;
    n->call.fn = fn;
    n->call.args = nargs ? args : NULL;
    n->call.nargs = nargs;
    (*h)++;
    return n;
}

static bool parse_grouping(struct parser *p, struct promql_node *n)
{
    n->agg.without = p->tok.kind == LK_WITHOUT;
    n->agg.has_grouping = true;
    advance(p);
    return !p->failed && parse_labels(p, &n->agg.grouping);
}

static bool agg_has_param(enum promql_aggop op)
{
    return op == AGG_TOPK || op == AGG_BOTTOMK || op == AGG_QUANTILE ||
           op == AGG_COUNT_VALUES || op == AGG_LIMITK || op == AGG_LIMIT_RATIO;
}

/* The aggregation operator has been consumed; the token is '(', by or without. */
static struct promql_node *parse_aggregate(struct parser *p, size_t start, int op, int *h)
{
    struct promql_node *n = new_node(p, PN_AGGREGATE, start);
    if (!n)
        return NULL;
    n->agg.op = (enum promql_aggop)op;
    p->agg_depth++;
    if ((p->tok.kind == LK_BY || p->tok.kind == LK_WITHOUT) && !parse_grouping(p, n))
        return NULL;
    if (p->tok.kind != LK_LPAREN)
        return unexpected(p, "aggregation", NULL);
    size_t nargs;
    struct promql_node **args = parse_args(p, &nargs, h);
    if (!args)
        return NULL;
    if (!n->agg.has_grouping && (p->tok.kind == LK_BY || p->tok.kind == LK_WITHOUT) &&
        !parse_grouping(p, n))
        return NULL;
    p->agg_depth--;
    n->end = (uint32_t)p->prev_end;
    if (nargs == 0)
        return perr(p, start, "no arguments for aggregate expression provided");
    size_t want = agg_has_param(n->agg.op) ? 2 : 1;
    if (nargs != want)
        return perr(p, start,
                    "wrong number of arguments for aggregate expression provided, expected %zu, "
                    "got %zu", want, nargs);
    n->agg.param = want == 2 ? args[0] : NULL;
    n->agg.expr = args[want - 1];
    (*h)++;
    return n;
}

static struct promql_node *parse_primary(struct parser *p, int *h)
{
    size_t start = p->tok.pos;
    *h = 1;
    switch (p->tok.kind) {
    case LK_NUMBER:
    case LK_DURATION: {
        double v;
        int64_t ms;
        bool exact;
        if (!number_value(p, &v, &ms, &exact))
            return NULL;
        advance(p);
        struct promql_node *n = new_node(p, PN_NUMBER, start);
        if (n)
            n->number = v;
        return p->failed ? NULL : n;
    }
    case LK_STRING: {
        size_t l;
        char *s = string_value(p, &l);
        if (!s)
            return NULL;
        advance(p);
        struct promql_node *n = new_node(p, PN_STRING, start);
        if (!n)
            return NULL;
        n->string.p = s;
        n->string.len = l;
        return p->failed ? NULL : n;
    }
    case LK_LPAREN: {
        advance(p);
        int ih;
        struct promql_node *in = parse_expr(p, 0, &ih);
        if (!in)
            return NULL;
        if (p->tok.kind != LK_RPAREN)
            return unexpected(p, NULL, NULL);
        advance(p);
        struct promql_node *n = new_node(p, PN_PAREN, start);
        if (!n)
            return NULL;
        n->paren.expr = in;
        *h = ih + 1;
        return p->failed ? NULL : n;
    }
    case LK_LBRACE:
        return parse_selector(p, start, NULL, 0);
    case LK_IDENT: {
        size_t l = p->tok.len;
        advance(p);
        if (p->failed)
            return NULL;
        if (p->tok.kind == LK_LPAREN)
            return parse_call(p, start, l, h);
        return parse_selector(p, start, p->q + start, l);
    }
    case LK_AGG: {
        int op = p->tok.agg;
        size_t l = p->tok.len;
        advance(p);
        if (p->failed)
            return NULL;
        if (p->tok.kind == LK_LPAREN || p->tok.kind == LK_BY || p->tok.kind == LK_WITHOUT)
            return parse_aggregate(p, start, op, h);
        return parse_selector(p, start, p->q + start, l); /* a metric named "sum" */
    }
    case LK_METRIC_IDENT: case LK_BY: case LK_AND: case LK_OR: case LK_UNLESS:
    case LK_OFFSET: case LK_WITHOUT: case LK_START: case LK_END: {
        /* Keywords that Prometheus also accepts as metric names here; start() and
         * end() outside an @ modifier are the functions of the same names. */
        bool fn = p->tok.kind == LK_START || p->tok.kind == LK_END;
        size_t l = p->tok.len;
        advance(p);
        if (p->failed)
            return NULL;
        if (fn && p->tok.kind == LK_LPAREN)
            return parse_call(p, start, l, h);
        return parse_selector(p, start, p->q + start, l);
    }
    default: /* LK_EOF included */
        return unexpected(p, NULL, NULL);
    }
}

static bool has_at(const struct promql_node *n)
{
    return n->sel.at != AT_NONE;
}

/* [range] or [range:step] after e; the token is '['. */
static struct promql_node *parse_brackets(struct parser *p, struct promql_node *e)
{
    size_t lb = p->tok.pos;
    advance(p);
    if (p->failed)
        return NULL;
    if (!is_number_tok(p))
        return unexpected(p, "subquery selector", "number or duration");
    int64_t range;
    if (!duration_value(p, &range))
        return NULL;
    advance(p);
    if (p->tok.kind == LK_RBRACKET) {
        advance(p);
        const char *msg = NULL;
        if (e->kind != PN_VECTOR_SELECTOR)
            msg = "ranges only allowed for vector selectors";
        else if (e->sel.offset_ms != 0)
            msg = "no offset modifiers allowed before range";
        else if (has_at(e))
            msg = "no @ modifiers allowed before range";
        if (msg)
            return perr(p, lb, "%s", msg);
        struct promql_node *n = new_node(p, PN_MATRIX_SELECTOR, e->start);
        if (!n)
            return NULL;
        n->msel.vs = e;
        n->msel.range_ms = range;
        return p->failed ? NULL : n;
    }
    if (p->tok.kind != LK_COLON)
        return unexpected(p, "subquery or range", "\":\" or \"]\"");
    advance(p);
    int64_t step = 0;
    if (is_number_tok(p)) {
        if (!duration_value(p, &step))
            return NULL;
        advance(p);
        if (p->tok.kind != LK_RBRACKET)
            return unexpected(p, "subquery selector", "\"]\"");
    } else if (p->tok.kind != LK_RBRACKET) {
        return unexpected(p, "subquery selector", "number or duration or \"]\"");
    }
    advance(p);
    struct promql_node *n = new_node(p, PN_SUBQUERY, e->start);
    if (!n)
        return NULL;
    n->subq.expr = e;
    n->subq.range_ms = range;
    n->subq.step_ms = step;
    return p->failed ? NULL : n;
}

/* Where offset and @ of e are kept, or NULL (with the error) when e takes none. */
static bool modifier_slots(struct parser *p, struct promql_node *e, int64_t **off,
                           enum promql_at **at, int64_t **at_ms, const char *what)
{
    struct promql_node *s = e->kind == PN_MATRIX_SELECTOR ? e->msel.vs : e;
    if (s->kind == PN_VECTOR_SELECTOR) {
        *off = &s->sel.offset_ms;
        *at = &s->sel.at;
        *at_ms = &s->sel.at_ms;
        return true;
    }
    if (s->kind == PN_SUBQUERY) {
        *off = &s->subq.offset_ms;
        *at = &s->subq.at;
        *at_ms = &s->subq.at_ms;
        return true;
    }
    perr(p, e->start, "%s modifier must be preceded by an instant vector selector or range "
                      "vector selector or a subquery", what);
    return false;
}

static struct promql_node *parse_offset(struct parser *p, struct promql_node *e)
{
    advance(p);
    bool neg = false;
    if (!p->failed && p->tok.kind == LK_SUB) {
        neg = true;
        advance(p);
    }
    if (p->failed)
        return NULL;
    if (!is_number_tok(p))
        return unexpected(p, "offset", "number or duration");
    int64_t ms;
    if (!duration_value(p, &ms))
        return NULL;
    advance(p);
    if (p->failed)
        return NULL;
    int64_t *off, *at_ms;
    enum promql_at *at;
    if (!modifier_slots(p, e, &off, &at, &at_ms, "offset"))
        return NULL;
    if (*off != 0)
        return perr(p, e->start, "offset may not be set multiple times");
    *off = neg ? -ms : ms;
    e->end = (uint32_t)p->prev_end;
    return e;
}

static struct promql_node *parse_at(struct parser *p, struct promql_node *e)
{
    advance(p);
    if (p->failed)
        return NULL;
    enum promql_at kind = AT_TIMESTAMP;
    double ts = 0;
    if (p->tok.kind == LK_START || p->tok.kind == LK_END) {
        kind = p->tok.kind == LK_START ? AT_START : AT_END;
        advance(p);
        if (!p->failed && p->tok.kind == LK_LPAREN)
            advance(p);
        else
            return unexpected(p, "@", "timestamp");
        if (!p->failed && p->tok.kind == LK_RPAREN)
            advance(p);
        else
            return unexpected(p, "@", "timestamp");
    } else {
        bool neg = false;
        if (p->tok.kind == LK_ADD || p->tok.kind == LK_SUB) {
            neg = p->tok.kind == LK_SUB;
            advance(p);
            if (p->failed)
                return NULL;
        }
        if (!is_number_tok(p))
            return unexpected(p, "@", "timestamp");
        int64_t ms;
        bool exact;
        if (!number_value(p, &ts, &ms, &exact))
            return NULL;
        if (neg)
            ts = -ts;
        advance(p);
        /* Prometheus allows up to the int64 limit; past 1e11 s (year 5138) the
         * millisecond would not survive printing and reading back. */
        if (isnan(ts) || fabs(ts) > 1e11) {
            char v[64];
            if (isnan(ts))
                snprintf(v, sizeof v, "NaN");
            else if (isinf(ts))
                snprintf(v, sizeof v, "%sInf", ts < 0 ? "-" : "+");
            else
                snprintf(v, sizeof v, "%f", ts);
            return perr(p, e->start, "timestamp out of bounds for @ modifier: %s", v);
        }
    }
    if (p->failed)
        return NULL;
    int64_t *off, *at_ms;
    enum promql_at *at;
    if (!modifier_slots(p, e, &off, &at, &at_ms, "@"))
        return NULL;
    if (*at != AT_NONE)
        return perr(p, e->start, "@ <timestamp> may not be set multiple times");
    *at = kind;
    if (kind == AT_TIMESTAMP)
        *at_ms = (int64_t)round(ts * 1000.0);
    e->end = (uint32_t)p->prev_end;
    return e;
}

static struct promql_node *parse_postfix(struct parser *p, int *h)
{
    struct promql_node *e = parse_primary(p, h);
    while (e && !p->failed) {
        if (p->tok.kind == LK_LBRACKET) {
            e = parse_brackets(p, e);
            (*h)++;
        } else if (p->tok.kind == LK_OFFSET) {
            e = parse_offset(p, e);
        } else if (p->tok.kind == LK_AT) {
            e = parse_at(p, e);
        } else {
            break;
        }
    }
    return p->failed ? NULL : e;
}

static struct promql_node *parse_unary(struct parser *p, int *h)
{
    if (p->tok.kind != LK_ADD && p->tok.kind != LK_SUB)
        return parse_postfix(p, h);
    size_t start = p->tok.pos;
    bool neg = p->tok.kind == LK_SUB;
    advance(p);
    if (p->failed)
        return NULL;
    /* The operand holds only ^ and postfix modifiers: unary binds like '*'. */
    struct promql_node *in = parse_expr(p, PREC_POW, h);
    if (!in)
        return NULL;
    if (in->kind == PN_NUMBER) {
        if (neg)
            in->number = -in->number;
        in->start = (uint32_t)start;
        return in;
    }
    struct promql_node *n = new_node(p, PN_UNARY, start);
    if (!n)
        return NULL;
    n->unary.negate = neg;
    n->unary.expr = in;
    (*h)++;
    return n;
}

static bool binop_of(enum lexer_kind k, enum promql_binop *op, int *prec)
{
    static const struct {
        enum lexer_kind k;
        enum promql_binop op;
        int prec;
    } t[] = {
        { LK_OR, BIN_OR, PREC_OR },       { LK_AND, BIN_AND, PREC_AND },
        { LK_UNLESS, BIN_UNLESS, PREC_AND }, { LK_EQLC, BIN_EQL, PREC_CMP },
        { LK_NEQ, BIN_NEQ, PREC_CMP },    { LK_LSS, BIN_LSS, PREC_CMP },
        { LK_LTE, BIN_LTE, PREC_CMP },    { LK_GTR, BIN_GTR, PREC_CMP },
        { LK_GTE, BIN_GTE, PREC_CMP },    { LK_ADD, BIN_ADD, PREC_ADD },
        { LK_SUB, BIN_SUB, PREC_ADD },    { LK_MUL, BIN_MUL, PREC_MUL },
        { LK_DIV, BIN_DIV, PREC_MUL },    { LK_MOD, BIN_MOD, PREC_MUL },
        { LK_ATAN2, BIN_ATAN2, PREC_MUL }, { LK_POW, BIN_POW, PREC_POW },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (t[i].k == k) {
            *op = t[i].op;
            *prec = t[i].prec;
            return true;
        }
    }
    return false;
}

/* bool, on(...)/ignoring(...), group_left(...)/group_right(...) after an operator. */
static bool parse_bin_modifiers(struct parser *p, struct promql_node *n)
{
    struct promql_matching *m = vg_arena_calloc(p->e->arena, sizeof *m);
    if (!m) {
        nomem(p);
        return false;
    }
    m->card = CARD_ONE_TO_ONE;
    n->bin.matching = m;
    if (p->tok.kind == LK_BOOL) {
        n->bin.return_bool = true;
        advance(p);
    }
    if (p->failed || (p->tok.kind != LK_ON && p->tok.kind != LK_IGNORING))
        return !p->failed;
    m->on = p->tok.kind == LK_ON;
    advance(p);
    if (p->failed || !parse_labels(p, &m->labels))
        return false;
    if (p->tok.kind != LK_GROUP_LEFT && p->tok.kind != LK_GROUP_RIGHT)
        return true;
    m->card = p->tok.kind == LK_GROUP_LEFT ? CARD_MANY_TO_ONE : CARD_ONE_TO_MANY;
    advance(p);
    if (p->failed)
        return false;
    return p->tok.kind != LK_LPAREN || parse_labels(p, &m->include);
}

static struct promql_node *parse_expr(struct parser *p, int min_prec, int *h)
{
    if (++p->depth > PARSE_MAX_DEPTH) {
        deep(p, p->depth, p->tok.pos);
        return NULL;
    }
    struct promql_node *lhs = parse_unary(p, h);
    while (lhs && !p->failed) {
        enum promql_binop op;
        int prec;
        if (!binop_of(p->tok.kind, &op, &prec) || prec < min_prec)
            break;
        advance(p);
        struct promql_node *n = new_node(p, PN_BINARY, lhs->start);
        if (!n || !parse_bin_modifiers(p, n))
            return NULL;
        int rh;
        struct promql_node *rhs = parse_expr(p, op == BIN_POW ? prec : prec + 1, &rh);
        if (!rhs)
            return NULL;
        n->bin.op = op;
        n->bin.lhs = lhs;
        n->bin.rhs = rhs;
        n->end = rhs->end;
        *h = 1 + (rh > *h ? rh : *h);
        if (deep(p, *h, lhs->start))
            return NULL;
        lhs = n;
    }
    p->depth--;
    return p->failed ? NULL : lhs;
}

/* ---- type checking, as Prometheus's checkAST ---- */

static enum promql_type check(struct parser *p, struct promql_node *n);

static size_t op_pos(struct parser *p, const struct promql_node *n)
{
    size_t i = n->bin.lhs->end;
    while (i < p->len && (p->q[i] == ' ' || p->q[i] == '\t' || p->q[i] == '\n' || p->q[i] == '\r'))
        i++;
    return i;
}

static bool expect_type(struct parser *p, struct promql_node *n, enum promql_type want,
                        const char *context)
{
    enum promql_type t = check(p, n);
    if (p->failed)
        return false;
    if (t != want) {
        perr(p, n->start, "expected type %s in %s, got %s", doc_type(want), context, doc_type(t));
        return false;
    }
    return true;
}

static void check_binary(struct parser *p, struct promql_node *n)
{
    enum promql_type lt = check(p, n->bin.lhs);
    if (p->failed)
        return;
    enum promql_type rt = check(p, n->bin.rhs);
    if (p->failed)
        return;
    enum promql_binop op = n->bin.op;
    struct promql_matching *m = n->bin.matching;
    if (n->bin.return_bool && !promql_binop_is_comparison(op)) {
        perr(p, op_pos(p, n), "bool modifier can only be used on comparison operators");
        return;
    }
    if (promql_binop_is_comparison(op) && !n->bin.return_bool && lt == PT_SCALAR &&
        rt == PT_SCALAR) {
        perr(p, op_pos(p, n), "comparisons between scalars must use BOOL modifier");
        return;
    }
    if (promql_binop_is_set(op) && m->card == CARD_ONE_TO_ONE)
        m->card = CARD_MANY_TO_MANY;
    if (m->on) {
        for (size_t i = 0; i < m->labels.n; i++)
            for (size_t j = 0; j < m->include.n; j++)
                if (strcmp(m->labels.v[i], m->include.v[j]) == 0) {
                    struct vg_buf q;
                    vg_buf_init(&q);
                    lexer_quote(&q, m->labels.v[i], strlen(m->labels.v[i]));
                    perr(p, op_pos(p, n), "label %s must not occur in ON and GROUP clause at once",
                         vg_buf_failed(&q) ? "\"\"" : vg_buf_cstr(&q));
                    vg_buf_free(&q);
                    return;
                }
    }
    if (lt != PT_SCALAR && lt != PT_VECTOR) {
        perr(p, n->bin.lhs->start, "binary expression must contain only scalar and instant "
                                   "vector types");
        return;
    }
    if (rt != PT_SCALAR && rt != PT_VECTOR) {
        perr(p, n->bin.rhs->start, "binary expression must contain only scalar and instant "
                                   "vector types");
        return;
    }
    if (lt != PT_VECTOR || rt != PT_VECTOR) {
        if (m->labels.n > 0) {
            perr(p, n->start, "vector matching only allowed between instant vectors");
            return;
        }
        n->bin.matching = NULL;
    } else if (promql_binop_is_set(op)) {
        if (m->card == CARD_ONE_TO_MANY || m->card == CARD_MANY_TO_ONE) {
            perr(p, n->start, "no grouping allowed for \"%s\" operation", promql_binop_str(op));
            return;
        }
    }
    if ((lt == PT_SCALAR || rt == PT_SCALAR) && promql_binop_is_set(op))
        perr(p, n->start, "set operator \"%s\" not allowed in binary scalar expression",
             promql_binop_str(op));
}

static void check_call(struct parser *p, struct promql_node *n)
{
    const struct promql_function *f = n->call.fn;
    int got = (int)n->call.nargs;
    if (f->variadic == 0) {
        if (got != f->nargs) {
            perr(p, n->start, "expected %d argument(s) in call to \"%s\", got %d", f->nargs,
                 f->name, got);
            return;
        }
    } else {
        int na = f->nargs - 1;
        if (na > got) {
            perr(p, n->start, "expected at least %d argument(s) in call to \"%s\", got %d", na,
                 f->name, got);
            return;
        }
        if (f->variadic > 0 && na + f->variadic < got) {
            perr(p, n->start, "expected at most %d argument(s) in call to \"%s\", got %d",
                 na + f->variadic, f->name, got);
            return;
        }
    }
    for (int i = 0; i < got; i++) {
        int k = i < f->nargs ? i : f->nargs - 1;
        enum promql_type t = check(p, n->call.args[i]);
        if (p->failed)
            return;
        if (t != f->args[k]) {
            perr(p, n->call.args[i]->start, "expected type %s in call to function \"%s\", got %s",
                 doc_type(f->args[k]), f->name, doc_type(t));
            return;
        }
    }
}

static void check_selector(struct parser *p, struct promql_node *n)
{
    if (n->sel.name) {
        /* The last matcher is the name written before the braces. */
        for (size_t i = 0; i + 1 < n->sel.nms; i++) {
            const struct matcher *m = n->sel.ms[i];
            if (strcmp(m->name, "__name__") == 0) {
                struct vg_buf a, b;
                vg_buf_init(&a);
                vg_buf_init(&b);
                lexer_quote(&a, n->sel.name, strlen(n->sel.name));
                lexer_quote(&b, m->value, m->value_len);
                perr(p, n->start, "metric name must not be set twice: %s or %s",
                     vg_buf_failed(&a) ? "\"\"" : vg_buf_cstr(&a),
                     vg_buf_failed(&b) ? "\"\"" : vg_buf_cstr(&b));
                vg_buf_free(&a);
                vg_buf_free(&b);
                return;
            }
        }
        return;
    }
    for (size_t i = 0; i < n->sel.nms; i++)
        if (!n->sel.ms[i]->matches_empty)
            return;
    perr(p, n->start, "vector selector must contain at least one non-empty matcher");
}

static enum promql_type check(struct parser *p, struct promql_node *n)
{
    enum promql_type t = promql_node_type(n);
    switch (n->kind) {
    case PN_AGGREGATE:
        if (!expect_type(p, n->agg.expr, PT_VECTOR, "aggregation expression"))
            break;
        if (n->agg.param)
            expect_type(p, n->agg.param, n->agg.op == AGG_COUNT_VALUES ? PT_STRING : PT_SCALAR,
                        "aggregation parameter");
        break;
    case PN_BINARY:
        check_binary(p, n);
        break;
    case PN_CALL:
        check_call(p, n);
        break;
    case PN_PAREN:
        check(p, n->paren.expr);
        break;
    case PN_UNARY: {
        enum promql_type it = check(p, n->unary.expr);
        if (!p->failed && it != PT_SCALAR && it != PT_VECTOR)
            perr(p, n->start, "unary expression only allowed on expressions of type scalar or "
                              "instant vector, got \"%s\"", doc_type(it));
        break;
    }
    case PN_SUBQUERY: {
        enum promql_type it = check(p, n->subq.expr);
        if (!p->failed && it != PT_VECTOR)
            perr(p, n->start, "subquery is only allowed on instant vector, got %s instead",
                 promql_type_name(it));
        break;
    }
    case PN_MATRIX_SELECTOR:
        check(p, n->msel.vs);
        break;
    case PN_VECTOR_SELECTOR:
        check_selector(p, n);
        break;
    case PN_NUMBER: case PN_STRING: case PN_STEP_INVARIANT:
        break;
    }
    return t;
}

/* ---- entry point ---- */

struct promql_expr *promql_parse(const char *query, size_t len, struct vg_err *err)
{
    struct vg_arena *a = vg_arena_new(4096);
    struct promql_expr *e = a ? vg_arena_calloc(a, sizeof *e) : NULL;
    char *text = e ? vg_arena_alloc(a, len + 1) : NULL;
    if (!text) {
        vg_arena_free(a);
        vg_err_set(err, VG_ENOMEM, "out of memory parsing a query");
        return NULL;
    }
    if (len)
        memcpy(text, query, len);
    text[len] = 0;
    e->arena = a;
    e->query = text;
    e->query_len = len;
    struct parser p = { .q = text, .len = len, .e = e, .err = err };
    vg_buf_init(&p.sbuf);
    lexer_init(&p.lx, text, len);
    lexer_next(&p.lx, &p.tok);
    if (p.tok.kind == LK_ERROR)
        perr(&p, p.lx.err_at, "%s", p.lx.msg);
    else if (p.tok.kind == LK_EOF)
        perr(&p, 0, "no expression found in input");
    int h;
    struct promql_node *root = p.failed ? NULL : parse_expr(&p, 0, &h);
    if (root && p.tok.kind != LK_EOF)
        unexpected(&p, NULL, NULL);
    if (!p.failed)
        check(&p, root);
    vg_buf_free(&p.sbuf);
    vg_free(p.tmp);
    if (p.failed) {
        promql_expr_free(e);
        return NULL;
    }
    e->root = root;
    return e;
}
