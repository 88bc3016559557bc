/* parser: see parser.h. A recursive descent parser over Loki's expr.y, reading the
 * tokens of lexer.c (one token of lookahead, two where yacc's LALR states tell apart
 * `| unwrap` from other stages and `topk(5,` from `sum(5)`).
 *
 * Errors unwind with longjmp to logql_parse: every allocation of a parse lives in the
 * expression's arena or its matcher list, both freed by logql_expr_free, so no frame
 * owns anything that unwinding could leak. Strings are unescaped and numbers read with
 * the PromQL lexer's helpers (lexer_scan_string, lexer_parse_number). */
#include "parser.h"

#include "../../storage/base/vg_alloc.h"
#include "../promql/lexer.h"
#include "lexer.h"

#include <ctype.h>
#include <math.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct parser {
    const char *s;
    size_t len;
    struct logql_expr *e;
    struct logql_tok cur;
    struct vg_err *err;
    jmp_buf jb;
    int depth;
};

/* ---- errors ---- */

static _Noreturn void bail(struct parser *p) { longjmp(p->jb, 1); }

static _Noreturn void oom(struct parser *p)
{
    vg_err_set(p->err, VG_ENOMEM, "parse error : out of memory");
    bail(p);
}

/* Loki's ParseError with a position: text/scanner's line and column (in runes). */
static _Noreturn void fail_at(struct parser *p, size_t at, bool line_zero, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static _Noreturn void fail_at(struct parser *p, size_t at, bool line_zero, const char *fmt, ...)
{
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < p->len; i++) {
        unsigned char c = (unsigned char)p->s[i];
        if (c == '\n') {
            line++;
            col = 1;
        } else if ((c & 0xC0) != 0x80) {
            col++;
        }
    }
    char what[VG_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    vg_err_set(p->err, VG_EINVAL, "parse error at line %zu, col %zu: %s", line_zero ? 0 : line,
               col, what);
    bail(p);
}

/* Loki's ParseError without a position: errors found after the syntax was accepted. */
static _Noreturn void fail(struct parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static _Noreturn void fail(struct parser *p, const char *fmt, ...)
{
    char what[VG_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    vg_err_set(p->err, VG_EINVAL, "parse error : %s", what);
    bail(p);
}


/* yacc's "syntax error: unexpected X[, expecting Y]" at the token t (or the lexer's own
 * message when t is a lexical error). */
static _Noreturn void unexpected(struct parser *p, const struct logql_tok *t, const char *expecting)
{
    if (t->kind == LT_ERROR)
        fail_at(p, t->start, t->line_zero, "%s", t->msg);
    if (expecting)
        fail_at(p, t->start, t->line_zero, "syntax error: unexpected %s, expecting %s",
                logql_tok_name(t), expecting);
    fail_at(p, t->start, t->line_zero, "syntax error: unexpected %s", logql_tok_name(t));
}

/* ---- parser helpers ---- */

static void next(struct parser *p) { logql_lex(p->s, p->len, p->cur.end, &p->cur); }

static struct logql_tok peek(struct parser *p)
{
    struct logql_tok t;
    logql_lex(p->s, p->len, p->cur.end, &t);
    return t;
}

static void expect(struct parser *p, enum logql_tk kind, const char *expecting)
{
    if (p->cur.kind != kind)
        unexpected(p, &p->cur, expecting);
    next(p);
}

static void *alloc(struct parser *p, size_t n)
{
    void *v = vg_arena_calloc(p->e->arena, n ? n : 1);
    if (!v)
        oom(p);
    return v;
}

static char *dup_token(struct parser *p, const struct logql_tok *t)
{
    char *v = vg_arena_strndup(p->e->arena, p->s + t->start, t->end - t->start);
    if (!v)
        oom(p);
    return v;
}

/* The unescaped value of the current LT_STRING; advances. */
static struct logql_str take_string(struct parser *p, const char *expecting)
{
    if (p->cur.kind != LT_STRING)
        unexpected(p, &p->cur, expecting);
    struct vg_buf b;
    struct lexer_str_error e;
    size_t end;
    vg_buf_init(&b);
    enum lexer_str_fail f = lexer_scan_string(p->s, p->len, p->cur.start, &end, &b, &e);
    struct logql_str out = { NULL, b.len };
    if (f == LS_OK && !vg_buf_failed(&b))
        out.p = vg_arena_strndup(p->e->arena, b.len ? b.p : "", b.len);
    vg_buf_free(&b);
    if (!out.p)
        oom(p);
    next(p);
    return out;
}

static char *take_ident(struct parser *p)
{
    /* A lone '!' is an identifier to Loki's lexer too, but printed before '=' it would
     * read back as "!=", so it is refused as a name. */
    if (p->cur.kind != LT_IDENT || (p->cur.end - p->cur.start == 1 && p->s[p->cur.start] == '!'))
        unexpected(p, &p->cur, NULL);
    char *v = dup_token(p, &p->cur);
    next(p);
    return v;
}

/* A growable array in the arena (a grown copy leaves the old block to the arena). */
struct vec {
    void *v;
    size_t n, cap, size;
};

static void *push(struct parser *p, struct vec *v)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        void *nv = alloc(p, cap * v->size);
        if (v->n)
            memcpy(nv, v->v, v->n * v->size);
        v->v = nv;
        v->cap = cap;
    }
    return (char *)v->v + v->size * v->n++;
}

static void enter(struct parser *p)
{
    if (++p->depth > LOGQL_MAX_DEPTH)
        fail(p, "query nesting too deep (more than %d levels)", LOGQL_MAX_DEPTH);
}

static struct matcher *new_matcher(struct parser *p, enum matcher_op op, const char *name,
                                   struct logql_str value)
{
    struct logql_expr *e = p->e;
    if (e->nmatchers == e->matchers_cap) {
        size_t cap = e->matchers_cap ? e->matchers_cap * 2 : 8;
        struct matcher **nm = vg_realloc(e->matchers, cap * sizeof *nm);
        if (!nm)
            oom(p);
        e->matchers = nm;
        e->matchers_cap = cap;
    }
    struct vg_err merr;
    struct matcher *m = matcher_new(op, (struct vg_str){ name, strlen(name) },
                                    (struct vg_str){ value.p, value.len }, &merr);
    if (!m) {
        if (merr.code == VG_ENOMEM)
            oom(p);
        fail(p, "%s", merr.msg);
    }
    e->matchers[e->nmatchers++] = m;
    return m;
}

static bool take_matcher_op(struct parser *p, enum matcher_op *op)
{
    switch (p->cur.kind) {
    case LT_EQ: *op = MATCH_EQ; break;
    case LT_NEQ: *op = MATCH_NEQ; break;
    case LT_RE: *op = MATCH_RE; break;
    case LT_NRE: *op = MATCH_NRE; break;
    default: return false;
    }
    next(p);
    return true;
}

/* ---- stream selector and pipeline ---- */

static void parse_selector(struct parser *p, struct logql_node *n)
{
    expect(p, LT_LBRACE, NULL);
    struct vec ms = { .size = sizeof(struct matcher *) };
    if (p->cur.kind != LT_RBRACE) {
        for (;;) {
            char *name = take_ident(p);
            enum matcher_op op;
            if (!take_matcher_op(p, &op))
                unexpected(p, &p->cur, NULL);
            struct logql_str v = take_string(p, NULL);
            *(struct matcher **)push(p, &ms) = new_matcher(p, op, name, v);
            if (p->cur.kind == LT_RBRACE)
                break;
            expect(p, LT_COMMA, "} or ,");
        }
    }
    next(p);
    n->log.ms = ms.v;
    n->log.nms = ms.n;
}

static struct logql_line_alt line_alt(struct parser *p)
{
    struct logql_line_alt a = { { NULL, 0 }, false };
    if (p->cur.kind == LT_IP) {
        next(p);
        expect(p, LT_LPAREN, NULL);
        a.value = take_string(p, NULL);
        expect(p, LT_RPAREN, NULL);
        a.ip = true;
        return a;
    }
    a.value = take_string(p, "STRING or ip");
    return a;
}

static bool line_op(enum logql_tk k, enum logql_line_op *op)
{
    switch (k) {
    case LT_PIPE_EXACT: *op = LQ_LINE_CONTAINS; return true;
    case LT_NEQ: *op = LQ_LINE_NOT_CONTAINS; return true;
    case LT_PIPE_MATCH: *op = LQ_LINE_MATCH; return true;
    case LT_NRE: *op = LQ_LINE_NOT_MATCH; return true;
    case LT_PIPE_PATTERN: *op = LQ_LINE_PATTERN; return true;
    case LT_NPA: *op = LQ_LINE_NOT_PATTERN; return true;
    default: return false;
    }
}

/* `|= "a" or "b"` is one stage; `!= "a" or "b"` means != "a" != "b", stored so. */
static void parse_line_filter(struct parser *p, enum logql_line_op op, struct vec *stages)
{
    next(p);
    struct vec alts = { .size = sizeof(struct logql_line_alt) };
    *(struct logql_line_alt *)push(p, &alts) = line_alt(p);
    while (p->cur.kind == LT_OR) {
        next(p);
        *(struct logql_line_alt *)push(p, &alts) = line_alt(p);
    }
    bool split = logql_line_op_negated(op);
    for (size_t i = 0; i < alts.n; i += split ? 1 : alts.n) {
        struct logql_stage *s = push(p, stages);
        s->kind = LQ_STAGE_LINE_FILTER;
        s->line.op = op;
        s->line.alts = (struct logql_line_alt *)alts.v + i;
        s->line.nalts = split ? 1 : alts.n;
    }
}

static double number_value(struct parser *p, const struct logql_tok *t)
{
    double v;
    char msg[200];
    if (lexer_parse_number(p->s + t->start, t->end - t->start, &v, msg, sizeof msg) != 0 ||
        !isfinite(v))
        fail(p, "unable to parse literal as a float: %.*s", (int)(t->end - t->start),
             p->s + t->start);
    return v;
}

/* literalExpr: NUMBER, +NUMBER, -NUMBER. */
static bool take_literal(struct parser *p, double *v)
{
    bool neg = false;
    if (p->cur.kind == LT_ADD || p->cur.kind == LT_SUB) {
        neg = p->cur.kind == LT_SUB;
        next(p);
        if (p->cur.kind != LT_NUMBER)
            unexpected(p, &p->cur, "NUMBER");
    } else if (p->cur.kind != LT_NUMBER) {
        return false;
    }
    *v = number_value(p, &p->cur);
    if (neg)
        *v = -*v;
    next(p);
    return true;
}

static struct logql_label_filter *parse_label_filter(struct parser *p, int min_prec);

/* One comparison: name op value. */
static struct logql_label_filter *label_compare(struct parser *p)
{
    struct logql_label_filter *f = alloc(p, sizeof *f);
    char *name = take_ident(p);
    enum logql_tk op = p->cur.kind;
    static const enum logql_cmp cmp_of[] = {
        [LT_EQ] = LQ_CMP_EQ, [LT_NEQ] = LQ_CMP_NE, [LT_CMP_EQ] = LQ_CMP_EQ, [LT_GT] = LQ_CMP_GT,
        [LT_GTE] = LQ_CMP_GE, [LT_LT] = LQ_CMP_LT, [LT_LTE] = LQ_CMP_LE,
    };
    enum matcher_op mop = MATCH_EQ;
    bool eq = op == LT_EQ || op == LT_NEQ;
    if (op == LT_RE || op == LT_NRE || (eq && peek(p).kind == LT_STRING)) {
        take_matcher_op(p, &mop);
        f->kind = LQ_LF_STRING;
        f->m = new_matcher(p, mop, name, take_string(p, NULL));
        return f;
    }
    if (op != LT_EQ && op != LT_NEQ && op != LT_CMP_EQ && op != LT_GT && op != LT_GTE &&
        op != LT_LT && op != LT_LTE)
        unexpected(p, &p->cur, NULL);
    next(p);
    f->cmp.name = name;
    f->cmp.cmp = cmp_of[op];
    if (eq && p->cur.kind == LT_IP) {
        next(p);
        expect(p, LT_LPAREN, NULL);
        f->kind = LQ_LF_IP;
        f->cmp.ip = take_string(p, NULL);
        expect(p, LT_RPAREN, NULL);
        return f;
    }
    if (p->cur.kind == LT_DURATION) {
        f->kind = LQ_LF_DURATION;
        f->cmp.duration_ns = p->cur.ns;
        next(p);
    } else if (p->cur.kind == LT_BYTES) {
        f->kind = LQ_LF_BYTES;
        f->cmp.bytes = p->cur.bytes;
        next(p);
    } else if (take_literal(p, &f->cmp.number)) {
        f->kind = LQ_LF_NUMBER;
    } else {
        unexpected(p, &p->cur, eq ? NULL : "BYTES or NUMBER or DURATION");
    }
    return f;
}

static struct logql_label_filter *label_primary(struct parser *p)
{
    if (p->cur.kind != LT_LPAREN)
        return label_compare(p);
    next(p);
    struct logql_label_filter *f = parse_label_filter(p, 0);
    expect(p, LT_RPAREN, NULL);
    return f;
}

static struct logql_label_filter *label_bin(struct parser *p, enum logql_lf_kind k,
                                            struct logql_label_filter *l,
                                            struct logql_label_filter *r)
{
    struct logql_label_filter *f = alloc(p, sizeof *f);
    f->kind = k;
    f->bin.lhs = l;
    f->bin.rhs = r;
    return f;
}

/* Precedence as yacc resolves expr.y: or (1) < and (2), both left-associative; a ','
 * or two filters side by side have no precedence, so yacc always shifts: everything
 * after them groups to their right. */
static struct logql_label_filter *parse_label_filter(struct parser *p, int min_prec)
{
    enter(p);
    struct logql_label_filter *l = label_primary(p);
    for (;;) {
        enum logql_tk k = p->cur.kind;
        if (k == LT_COMMA || k == LT_IDENT || k == LT_LPAREN) {
            if (k == LT_COMMA)
                next(p);
            l = label_bin(p, LQ_LF_AND, l, parse_label_filter(p, 0));
            continue;
        }
        int prec = k == LT_OR ? 1 : k == LT_AND ? 2 : 0;
        if (prec == 0 || prec < min_prec)
            break;
        next(p);
        l = label_bin(p, k == LT_OR ? LQ_LF_OR : LQ_LF_AND, l, parse_label_filter(p, prec + 1));
    }
    p->depth--;
    return l;
}

/* IDENT [= STRING], ... of | json and | logfmt; IDENT = (IDENT | STRING), ... of
 * | label_format. */
static void parse_named(struct parser *p, struct logql_stage *s, bool label_format)
{
    struct vec v = { .size = sizeof(struct logql_named) };
    for (;;) {
        struct logql_named *x = push(p, &v);
        x->name = take_ident(p);
        if (label_format || p->cur.kind == LT_EQ) {
            expect(p, LT_EQ, NULL);
            if (label_format && p->cur.kind == LT_IDENT) {
                x->rename = true;
                x->value.p = dup_token(p, &p->cur);
                x->value.len = strlen(x->value.p);
                next(p);
            } else {
                x->value = take_string(p, NULL);
            }
        } else {
            x->value.p = x->name;
            x->value.len = strlen(x->name);
        }
        if (p->cur.kind != LT_COMMA)
            break;
        next(p);
    }
    s->named.v = v.v;
    s->named.n = v.n;
}

static void parse_names(struct parser *p, struct logql_stage *s)
{
    struct vec v = { .size = sizeof(struct logql_name_or_matcher) };
    for (;;) {
        struct logql_name_or_matcher *x = push(p, &v);
        x->name = take_ident(p);
        enum matcher_op op;
        if (take_matcher_op(p, &op))
            x->m = new_matcher(p, op, x->name, take_string(p, NULL));
        if (p->cur.kind != LT_COMMA)
            break;
        next(p);
    }
    s->names.v = v.v;
    s->names.n = v.n;
}

/* Loki's log.NewRegexpParser checks: every capturing group is named, at least one. */
static void check_regexp_stage(struct parser *p, struct logql_str re)
{
    size_t named = 0;
    bool in_class = false;
    for (size_t i = 0; i < re.len; i++) {
        char c = re.p[i];
        if (c == '\\') {
            i++;
        } else if (in_class) {
            in_class = c != ']';
        } else if (c == '[') {
            in_class = true;
            if (i + 1 < re.len && re.p[i + 1] == ']')
                i++;
        } else if (c == '(') {
            const char *r = re.p + i + 1;
            size_t left = re.len - i - 1;
            bool lookbehind = left >= 3 && (r[2] == '=' || r[2] == '!');
            if ((left >= 3 && memcmp(r, "?P<", 3) == 0) ||
                (left >= 2 && r[0] == '?' && r[1] == '<' && !lookbehind))
                named++;
            else if (left == 0 || r[0] != '?')
                fail(p, "invalid regexp parser: invalid extracted label name ''");
        }
    }
    new_matcher(p, MATCH_RE, "regexp", re); /* compiles it */
    if (named == 0)
        fail(p, "invalid regexp parser: at least one named capture must be supplied");
}

/* Loki's pattern parser needs at least one named capture (<name>, not <_>). */
static void check_pattern_stage(struct parser *p, struct logql_str pat)
{
    for (size_t i = 0; i < pat.len; i++) {
        if (pat.p[i] != '<')
            continue;
        size_t j = i + 1;
        while (j < pat.len && (isalnum((unsigned char)pat.p[j]) || pat.p[j] == '_'))
            j++;
        if (j < pat.len && pat.p[j] == '>' && j > i + 1 && !isdigit((unsigned char)pat.p[i + 1]) &&
            !(j == i + 2 && pat.p[i + 1] == '_'))
            return;
    }
    fail(p, "invalid pattern parser: at least one capture is required");
}

/* The stage after a '|' (already consumed). */
static void parse_pipe_stage(struct parser *p, struct vec *stages)
{
    struct logql_stage *s = push(p, stages);
    enum logql_tk k = p->cur.kind;
    switch (k) {
    case LT_LOGFMT:
        s->kind = LQ_STAGE_LOGFMT;
        next(p);
        while (p->cur.kind == LT_FLAG) {
            if (p->cur.sub == 0)
                s->named.strict = true;
            else
                s->named.keep_empty = true;
            next(p);
        }
        if (p->cur.kind == LT_IDENT)
            parse_named(p, s, false);
        return;
    case LT_JSON:
        s->kind = LQ_STAGE_JSON;
        next(p);
        if (p->cur.kind == LT_IDENT)
            parse_named(p, s, false);
        return;
    case LT_REGEXP:
    case LT_PATTERN:
    case LT_LINE_FMT:
        s->kind = k == LT_REGEXP ? LQ_STAGE_REGEXP : k == LT_PATTERN ? LQ_STAGE_PATTERN
                                                                   : LQ_STAGE_LINE_FORMAT;
        next(p);
        s->arg = take_string(p, "STRING");
        if (k == LT_REGEXP)
            check_regexp_stage(p, s->arg);
        else if (k == LT_PATTERN)
            check_pattern_stage(p, s->arg);
        return;
    case LT_UNPACK:
    case LT_DECOLORIZE:
        s->kind = k == LT_UNPACK ? LQ_STAGE_UNPACK : LQ_STAGE_DECOLORIZE;
        next(p);
        return;
    case LT_LABEL_FMT:
        s->kind = LQ_STAGE_LABEL_FORMAT;
        next(p);
        parse_named(p, s, true);
        return;
    case LT_DROP:
    case LT_KEEP:
        s->kind = k == LT_DROP ? LQ_STAGE_DROP : LQ_STAGE_KEEP;
        next(p);
        parse_names(p, s);
        return;
    case LT_IDENT:
    case LT_LPAREN:
        s->kind = LQ_STAGE_LABEL_FILTER;
        s->filter = parse_label_filter(p, 0);
        return;
    default:
        unexpected(p, &p->cur, NULL);
    }
}

/* Stages up to the first token that is not one; stops before `| unwrap`, returning
 * true there. */
static bool parse_pipeline(struct parser *p, struct logql_node *n)
{
    struct vec st = { .size = sizeof(struct logql_stage) };
    bool unwrap = false;
    for (;;) {
        enum logql_line_op op;
        if (line_op(p->cur.kind, &op)) {
            parse_line_filter(p, op, &st);
        } else if (p->cur.kind == LT_PIPE) {
            if (peek(p).kind == LT_UNWRAP) {
                unwrap = true;
                break;
            }
            next(p);
            parse_pipe_stage(p, &st);
        } else {
            break;
        }
    }
    n->log.stages = st.v;
    n->log.nstages = st.n;
    return unwrap;
}

static struct logql_node *new_node(struct parser *p, enum logql_kind k)
{
    struct logql_node *n = alloc(p, sizeof *n);
    n->kind = k;
    return n;
}

/* A log query in expression position: a selector and its pipeline. */
static struct logql_node *parse_log_expr(struct parser *p)
{
    struct logql_node *n = new_node(p, LQ_LOG);
    parse_selector(p, n);
    if (parse_pipeline(p, n)) { /* yacc shifts the '|' and fails on unwrap */
        next(p);
        unexpected(p, &p->cur, NULL);
    }
    return n;
}

/* ---- range aggregations ---- */

static struct logql_unwrap *parse_unwrap(struct parser *p)
{
    expect(p, LT_PIPE, NULL);
    expect(p, LT_UNWRAP, NULL);
    struct logql_unwrap *u = alloc(p, sizeof *u);
    if (p->cur.kind == LT_CONV) {
        u->conv = (enum logql_conv)p->cur.sub;
        next(p);
        expect(p, LT_LPAREN, NULL);
        u->label = take_ident(p);
        expect(p, LT_RPAREN, NULL);
    } else {
        u->label = take_ident(p);
    }
    struct vec post = { .size = sizeof(struct logql_label_filter *) };
    while (p->cur.kind == LT_PIPE) {
        next(p);
        *(struct logql_label_filter **)push(p, &post) = parse_label_filter(p, 0);
    }
    u->post = post.v;
    u->npost = post.n;
    return u;
}

static void take_range(struct parser *p, struct logql_node *r)
{
    if (p->cur.kind != LT_RANGE)
        unexpected(p, &p->cur, NULL);
    r->range.range_ns = p->cur.ns;
    next(p);
    if (p->cur.kind == LT_OFFSET) {
        next(p);
        if (p->cur.kind != LT_DURATION)
            unexpected(p, &p->cur, "DURATION");
        r->range.offset_ns = p->cur.ns;
        next(p);
    }
}

/* The selector, pipeline, unwrap and [range] of a range aggregation, in any of the
 * orders expr.y's logRangeExpr accepts. Returns whether the range was read (inside
 * parentheses it may come after the closing one). */
static bool parse_range_body(struct parser *p, struct logql_node *r, bool in_paren)
{
    struct logql_node *log = r->range.log;
    parse_selector(p, log);
    if (p->cur.kind == LT_RANGE) {
        take_range(p, r);
        if (parse_pipeline(p, log))
            r->range.unwrap = parse_unwrap(p);
        return true;
    }
    if (parse_pipeline(p, log))
        r->range.unwrap = parse_unwrap(p);
    if (in_paren && p->cur.kind == LT_RPAREN)
        return false;
    take_range(p, r);
    return true;
}

static void parse_log_range(struct parser *p, struct logql_node *r)
{
    if (p->cur.kind != LT_LPAREN) {
        parse_range_body(p, r, false);
        return;
    }
    enter(p);
    next(p);
    bool ranged;
    if (p->cur.kind == LT_LPAREN) {
        parse_log_range(p, r); /* ( logRangeExpr ) */
        ranged = true;
    } else {
        ranged = parse_range_body(p, r, true);
    }
    expect(p, LT_RPAREN, NULL);
    if (!ranged) {
        take_range(p, r);
        /* `( selector ) [5m] | unwrap x` is the one form with unwrap after the range */
        if (!r->range.unwrap && r->range.log->log.nstages == 0 && p->cur.kind == LT_PIPE &&
            peek(p).kind == LT_UNWRAP)
            r->range.unwrap = parse_unwrap(p);
    }
    p->depth--;
}

/* ( [label, ...] ) of by/without, on/ignoring and group_left/right. */
static void parse_labels_in_parens(struct parser *p, struct logql_strings *out)
{
    expect(p, LT_LPAREN, NULL);
    struct vec v = { .size = sizeof(char *) };
    if (p->cur.kind != LT_RPAREN) {
        for (;;) {
            *(char **)push(p, &v) = take_ident(p);
            if (p->cur.kind != LT_COMMA)
                break;
            next(p);
        }
    }
    expect(p, LT_RPAREN, NULL);
    out->v = v.v;
    out->n = v.n;
}

static void parse_grouping(struct parser *p, struct logql_grouping *g)
{
    g->without = p->cur.kind == LT_WITHOUT;
    next(p);
    parse_labels_in_parens(p, &g->labels);
}

/* Loki's RangeAggregationExpr.validate. */
static void check_range_agg(struct parser *p, const struct logql_node *r)
{
    enum logql_range_op op = r->range.op;
    const char *name = logql_range_op_str(op);
    if (r->range.grouping) {
        switch (op) {
        case LQ_RANGE_AVG: case LQ_RANGE_STDDEV: case LQ_RANGE_STDVAR:
        case LQ_RANGE_QUANTILE: case LQ_RANGE_MAX: case LQ_RANGE_MIN: case LQ_RANGE_FIRST:
        case LQ_RANGE_LAST:
            break;
        default:
            fail(p, "grouping not allowed for %s aggregation", name);
        }
    }
    if (r->range.unwrap) {
        if (op == LQ_RANGE_COUNT || op == LQ_RANGE_BYTES || op == LQ_RANGE_BYTES_RATE)
            fail(p, "invalid aggregation %s with unwrap", name);
        return;
    }
    switch (op) {
    case LQ_RANGE_BYTES: case LQ_RANGE_BYTES_RATE: case LQ_RANGE_COUNT: case LQ_RANGE_RATE:
    case LQ_RANGE_ABSENT:
        return;
    default:
        fail(p, "invalid aggregation %s without unwrap", name);
    }
}

static struct logql_node *parse_range_agg(struct parser *p)
{
    struct logql_node *r = new_node(p, LQ_RANGE_AGG);
    r->range.op = (enum logql_range_op)p->cur.sub;
    r->range.log = new_node(p, LQ_LOG);
    next(p);
    expect(p, LT_LPAREN, NULL);
    struct logql_tok param = p->cur;
    bool has_param = param.kind == LT_NUMBER;
    if (has_param) {
        next(p);
        expect(p, LT_COMMA, ",");
    }
    parse_log_range(p, r);
    expect(p, LT_RPAREN, NULL);
    if (p->cur.kind == LT_BY || p->cur.kind == LT_WITHOUT) {
        r->range.grouping = alloc(p, sizeof *r->range.grouping);
        parse_grouping(p, r->range.grouping);
    }
    const char *name = logql_range_op_str(r->range.op);
    if (has_param) {
        if (r->range.op != LQ_RANGE_QUANTILE)
            fail(p, "parameter %.*s not supported for operation %s",
                 (int)(param.end - param.start), p->s + param.start, name);
        r->range.has_param = true;
        r->range.param = number_value(p, &param);
    } else if (r->range.op == LQ_RANGE_QUANTILE) {
        fail(p, "parameter required for operation %s", name);
    }
    check_range_agg(p, r);
    return r;
}

/* ---- metric expressions ---- */

static struct logql_node *parse_expr(struct parser *p, int min_prec);

/* An operand that must be a metric expression (expr.y's metricExpr). */
static struct logql_node *parse_metric(struct parser *p)
{
    struct logql_node *n = parse_expr(p, 0);
    if (n->kind == LQ_LOG) /* yacc fails on the token after the log query */
        unexpected(p, &p->cur, NULL);
    return n;
}

static struct logql_node *parse_vector_agg(struct parser *p)
{
    struct logql_node *n = new_node(p, LQ_VECTOR_AGG);
    n->vec.op = (enum logql_vector_op)p->cur.sub;
    const char *name = logql_vector_op_str(n->vec.op);
    next(p);
    bool grouped = p->cur.kind == LT_BY || p->cur.kind == LT_WITHOUT;
    if (grouped)
        parse_grouping(p, &n->vec.grouping);
    expect(p, LT_LPAREN, NULL);
    struct logql_tok param = p->cur;
    bool has_param = param.kind == LT_NUMBER && peek(p).kind == LT_COMMA;
    if (has_param) {
        next(p);
        next(p);
    }
    n->vec.expr = parse_metric(p);
    expect(p, LT_RPAREN, NULL);
    if (!grouped && (p->cur.kind == LT_BY || p->cur.kind == LT_WITHOUT))
        parse_grouping(p, &n->vec.grouping);
    int plen = (int)(param.end - param.start);
    const char *ptext = p->s + param.start;
    if (n->vec.op == LQ_VEC_TOPK || n->vec.op == LQ_VEC_BOTTOMK) {
        if (!has_param)
            fail(p, "parameter required for operation %s", name);
        /* strconv.Atoi */
        int64_t k = 0;
        bool ok = plen > 0 && plen <= 18;
        for (int i = 0; ok && i < plen; i++) {
            ok = ptext[i] >= '0' && ptext[i] <= '9';
            k = k * 10 + (ptext[i] - '0');
        }
        if (!ok)
            fail(p, "invalid parameter %s(%.*s,", name, plen, ptext);
        if (k <= 0)
            fail(p, "invalid parameter (must be greater than 0) %s(%.*s", name, plen, ptext);
        n->vec.param = k;
    } else if (has_param) {
        fail(p, "unsupported parameter for operation %s(%.*s,", name, plen, ptext);
    }
    return n;
}

static struct logql_node *parse_label_replace(struct parser *p)
{
    struct logql_node *n = new_node(p, LQ_LABEL_REPLACE);
    next(p);
    expect(p, LT_LPAREN, NULL);
    n->replace.expr = parse_metric(p);
    struct logql_str *args[] = { &n->replace.dst, &n->replace.replacement, &n->replace.src,
                                 &n->replace.regex };
    for (size_t i = 0; i < 4; i++) {
        expect(p, LT_COMMA, ",");
        *args[i] = take_string(p, "STRING");
    }
    expect(p, LT_RPAREN, NULL);
    struct vg_err merr;
    struct matcher *m = matcher_new(MATCH_RE, (struct vg_str){ "regex", 5 },
                                    (struct vg_str){ n->replace.regex.p, n->replace.regex.len },
                                    &merr);
    if (!m) {
        if (merr.code == VG_ENOMEM)
            oom(p);
        fail(p, "invalid regex in label_replace: %s", merr.msg);
    }
    matcher_free(m);
    return n;
}

static struct logql_node *parse_primary(struct parser *p)
{
    struct logql_node *n;
    double v;
    switch (p->cur.kind) {
    case LT_NUMBER:
    case LT_ADD:
    case LT_SUB:
        n = new_node(p, LQ_LITERAL);
        if (!take_literal(p, &v))
            unexpected(p, &p->cur, NULL);
        n->literal = v;
        return n;
    case LT_LPAREN:
        next(p);
        n = parse_expr(p, 0);
        expect(p, LT_RPAREN, NULL);
        return n;
    case LT_LBRACE:
        return parse_log_expr(p);
    case LT_RANGE_OP:
        return parse_range_agg(p);
    case LT_VECTOR_OP:
        return parse_vector_agg(p);
    case LT_LABEL_REPLACE:
        return parse_label_replace(p);
    case LT_VECTOR:
        n = new_node(p, LQ_VECTOR);
        next(p);
        expect(p, LT_LPAREN, NULL);
        if (p->cur.kind != LT_NUMBER)
            unexpected(p, &p->cur, "NUMBER");
        n->vector = number_value(p, &p->cur);
        next(p);
        expect(p, LT_RPAREN, NULL);
        return n;
    default:
        unexpected(p, &p->cur, NULL);
    }
}

static int binop_of(enum logql_tk k, enum logql_binop *op)
{
    static const struct {
        enum logql_tk k;
        enum logql_binop op;
        int prec;
    } t[] = {
        { LT_OR, LQ_BIN_OR, 1 }, { LT_AND, LQ_BIN_AND, 2 }, { LT_UNLESS, LQ_BIN_UNLESS, 2 },
        { LT_CMP_EQ, LQ_BIN_EQ, 3 }, { LT_NEQ, LQ_BIN_NE, 3 }, { LT_GT, LQ_BIN_GT, 3 },
        { LT_GTE, LQ_BIN_GE, 3 }, { LT_LT, LQ_BIN_LT, 3 }, { LT_LTE, LQ_BIN_LE, 3 },
        { LT_ADD, LQ_BIN_ADD, 4 }, { LT_SUB, LQ_BIN_SUB, 4 }, { LT_MUL, LQ_BIN_MUL, 5 },
        { LT_DIV, LQ_BIN_DIV, 5 }, { LT_MOD, LQ_BIN_MOD, 5 }, { LT_POW, LQ_BIN_POW, 6 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i].k == k) {
            *op = t[i].op;
            return t[i].prec;
        }
    return 0;
}

static void parse_bin_modifiers(struct parser *p, struct logql_node *n)
{
    if (p->cur.kind == LT_BOOL) {
        n->bin.return_bool = true;
        next(p);
    }
    if (p->cur.kind != LT_ON && p->cur.kind != LT_IGNORING)
        return;
    n->bin.on = p->cur.kind == LT_ON;
    next(p);
    parse_labels_in_parens(p, &n->bin.matching);
    if (p->cur.kind != LT_GROUP_LEFT && p->cur.kind != LT_GROUP_RIGHT)
        return;
    n->bin.card = p->cur.kind == LT_GROUP_LEFT ? LQ_CARD_MANY_TO_ONE : LQ_CARD_ONE_TO_MANY;
    next(p);
    if (p->cur.kind == LT_LPAREN)
        parse_labels_in_parens(p, &n->bin.include);
}

/* Loki's MergeBinOp on two scalars (filter off): comparisons give 0 or 1, division
 * and modulo by zero NaN. */
static double fold(enum logql_binop op, double a, double b)
{
    switch (op) {
    case LQ_BIN_ADD: return a + b;
    case LQ_BIN_SUB: return a - b;
    case LQ_BIN_MUL: return a * b;
    case LQ_BIN_DIV: return b == 0 ? NAN : a / b;
    case LQ_BIN_MOD: return b == 0 ? NAN : fmod(a, b);
    case LQ_BIN_POW: return pow(a, b);
    case LQ_BIN_EQ: return a == b;
    case LQ_BIN_NE: return a != b;
    case LQ_BIN_GT: return a > b;
    case LQ_BIN_GE: return a >= b;
    case LQ_BIN_LT: return a < b;
    case LQ_BIN_LE: return a <= b;
    default: return NAN;
    }
}

static const char *go_type(const struct logql_node *n)
{
    return n->log.nstages ? "*syntax.PipelineExpr" : "*syntax.MatchersExpr";
}

/* Loki's mustNewBinOpExpr. */
static struct logql_node *make_binop(struct parser *p, struct logql_node *n)
{
    const char *op = logql_binop_str(n->bin.op);
    if (n->bin.lhs->kind == LQ_LOG)
        fail(p, "unexpected type for left leg of binary operation (%s): %s", op,
             go_type(n->bin.lhs));
    if (n->bin.rhs->kind == LQ_LOG)
        fail(p, "unexpected type for right leg of binary operation (%s): %s", op,
             go_type(n->bin.rhs));
    bool ll = n->bin.lhs->kind == LQ_LITERAL, rl = n->bin.rhs->kind == LQ_LITERAL;
    if (logql_binop_is_set(n->bin.op) && (ll || rl))
        fail(p, "unexpected literal for %s leg of logical/set binary operation (%s): %f",
             ll ? "left" : "right", op, ll ? n->bin.lhs->literal : n->bin.rhs->literal);
    if (ll && rl) {
        double v = fold(n->bin.op, n->bin.lhs->literal, n->bin.rhs->literal);
        n = new_node(p, LQ_LITERAL);
        n->literal = v;
    }
    return n;
}

static struct logql_node *parse_expr(struct parser *p, int min_prec)
{
    enter(p);
    struct logql_node *lhs = parse_primary(p);
    for (;;) {
        enum logql_binop op;
        int prec = binop_of(p->cur.kind, &op);
        if (prec == 0 || prec < min_prec)
            break;
        next(p);
        struct logql_node *n = new_node(p, LQ_BINARY);
        n->bin.op = op;
        n->bin.lhs = lhs;
        parse_bin_modifiers(p, n);
        n->bin.rhs = parse_expr(p, op == LQ_BIN_POW ? prec : prec + 1);
        lhs = make_binop(p, n);
    }
    p->depth--;
    return lhs;
}

/* ---- validation (Loki's validateExpr) ---- */

static void check_matchers(struct parser *p, const struct logql_node *log)
{
    for (size_t i = 0; i < log->log.nms; i++)
        if (!log->log.ms[i]->matches_empty)
            return;
    fail(p, "queries require at least one regexp or equality matcher that does not have an "
            "empty-compatible value. For instance, app=~\".*\" does not meet this "
            "requirement, but app=~\".+\" will");
}

static void validate(struct parser *p, const struct logql_node *n)
{
    switch (n->kind) {
    case LQ_LOG:
        check_matchers(p, n);
        return;
    case LQ_RANGE_AGG:
        check_matchers(p, n->range.log);
        return;
    case LQ_VECTOR_AGG:
        if ((n->vec.op == LQ_VEC_SORT || n->vec.op == LQ_VEC_SORT_DESC) &&
            n->vec.grouping.labels.n > 0)
            fail(p, "sort and sort_desc doesn't allow grouping by ");
        validate(p, n->vec.expr);
        return;
    case LQ_BINARY:
        validate(p, n->bin.lhs);
        validate(p, n->bin.rhs);
        return;
    case LQ_LABEL_REPLACE:
        validate(p, n->replace.expr);
        return;
    case LQ_LITERAL:
    case LQ_VECTOR:
        return;
    }
}

/* setjmp lives in its own frame so that no local of logql_parse changes after it. */
static int run(struct parser *p)
{
    if (setjmp(p->jb))
        return -1;
    next(p);
    struct logql_node *root = parse_expr(p, 0);
    if (p->cur.kind != LT_EOF)
        unexpected(p, &p->cur, NULL);
    validate(p, root);
    p->e->root = root;
    return 0;
}

struct logql_expr *logql_parse(const char *query, size_t len, struct vg_err *err)
{
    if (len >= LOGQL_MAX_QUERY_LEN) {
        vg_err_set(err, VG_EINVAL, "parse error : input size too long (%zu > %d)", len,
                   LOGQL_MAX_QUERY_LEN);
        return NULL;
    }
    struct logql_expr *e = vg_calloc(1, sizeof *e);
    if (!e || !(e->arena = vg_arena_new(4096))) {
        vg_free(e);
        vg_err_set(err, VG_ENOMEM, "parse error : out of memory");
        return NULL;
    }
    struct parser p = { .s = query, .len = len, .e = e, .err = err };
    if (run(&p) != 0) {
        logql_expr_free(e);
        return NULL;
    }
    return e;
}
