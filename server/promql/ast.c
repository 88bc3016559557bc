/* ast: names, types, freeing and printing of PromQL syntax trees (see ast.h).
 *
 * promql_format mirrors Prometheus's printer (promql/parser/printer.go), which is what
 * /api/v1/format_query returns:
 *   - binary operations `lhs op[ bool][ on|ignoring (l1, l2)[ group_left|group_right (x)]] rhs`
 *   - aggregations `sum by (a, b) (expr)`, `topk(3, expr)`, `sum without () (x)`
 *   - selectors `name{l1="v",l2=~"r"}` with matchers sorted as strings, `[5m]`,
 *     then ` @ 100.000`, then ` offset 5m` / ` offset -5m`; subqueries `[5m:1m]`, `[5m:]`
 *   - numbers as Go's strconv.FormatFloat(v, 'f', -1, 64) ("1000000", "NaN", "-Inf"),
 *     strings double-quoted with Go's escapes, durations as model.Duration ("1h30m").
 * Labels that are not plain identifiers (or would read as a keyword number: inf, nan)
 * are printed quoted so that the text always parses back to the same tree. The @
 * timestamp is printed from its integer milliseconds, which is what Go's "%.3f" gives
 * for every timestamp the parser accepts. */
#include "ast.h"

#include "../../storage/base/vg_alloc.h"
#include "functions.h"
#include "lexer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void promql_expr_free(struct promql_expr *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nmatchers; i++)
        matcher_free(e->matchers[i]);
    vg_free(e->matchers);
    /* The struct itself lives in its arena. */
    vg_arena_free(e->arena);
}

const char *promql_type_name(enum promql_type t)
{
    switch (t) {
    case PT_SCALAR: return "scalar";
    case PT_VECTOR: return "vector";
    case PT_MATRIX: return "matrix";
    case PT_STRING: return "string";
    case PT_NONE: break;
    }
    return "none";
}

static const char *const binop_names[] = {
    [BIN_ADD] = "+", [BIN_SUB] = "-", [BIN_MUL] = "*", [BIN_DIV] = "/", [BIN_MOD] = "%",
    [BIN_POW] = "^", [BIN_ATAN2] = "atan2", [BIN_EQL] = "==", [BIN_NEQ] = "!=",
    [BIN_GTR] = ">", [BIN_LSS] = "<", [BIN_GTE] = ">=", [BIN_LTE] = "<=",
    [BIN_AND] = "and", [BIN_OR] = "or", [BIN_UNLESS] = "unless",
};

const char *promql_binop_str(enum promql_binop op)
{
    return (unsigned)op < sizeof binop_names / sizeof binop_names[0] ? binop_names[op] : "?";
}

bool promql_binop_is_comparison(enum promql_binop op)
{
    return op >= BIN_EQL && op <= BIN_LTE;
}

bool promql_binop_is_set(enum promql_binop op)
{
    return op == BIN_AND || op == BIN_OR || op == BIN_UNLESS;
}

static const char *const aggop_names[] = {
    [AGG_SUM] = "sum", [AGG_AVG] = "avg", [AGG_MIN] = "min", [AGG_MAX] = "max",
    [AGG_COUNT] = "count", [AGG_GROUP] = "group", [AGG_STDDEV] = "stddev",
    [AGG_STDVAR] = "stdvar", [AGG_TOPK] = "topk", [AGG_BOTTOMK] = "bottomk",
    [AGG_QUANTILE] = "quantile", [AGG_COUNT_VALUES] = "count_values",
    [AGG_LIMITK] = "limitk", [AGG_LIMIT_RATIO] = "limit_ratio",
};

const char *promql_aggop_str(enum promql_aggop op)
{
    return (unsigned)op < sizeof aggop_names / sizeof aggop_names[0] ? aggop_names[op] : "?";
}

enum promql_type promql_node_type(const struct promql_node *n)
{
    switch (n->kind) {
    case PN_NUMBER: return PT_SCALAR;
    case PN_STRING: return PT_STRING;
    case PN_VECTOR_SELECTOR: return PT_VECTOR;
    case PN_MATRIX_SELECTOR:
    case PN_SUBQUERY: return PT_MATRIX;
    case PN_CALL: return n->call.fn->ret;
    case PN_AGGREGATE: return PT_VECTOR;
    case PN_BINARY:
        if (promql_node_type(n->bin.lhs) == PT_SCALAR && promql_node_type(n->bin.rhs) == PT_SCALAR)
            return PT_SCALAR;
        return PT_VECTOR;
    case PN_UNARY: return promql_node_type(n->unary.expr);
    case PN_PAREN: return promql_node_type(n->paren.expr);
    case PN_STEP_INVARIANT: break;
    }
    return PT_NONE;
}

/* ---- printing ---- */

/* A grouping or matching label, bare when it reads back as the same label. */
static void put_label(struct vg_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (lexer_is_label_name(s, n) && strcasecmp(s, "inf") != 0 && strcasecmp(s, "nan") != 0)
        vg_buf_append(b, s, n);
    else
        lexer_quote(b, s, n);
}

static void put_labels(struct vg_buf *b, const struct promql_strings *l)
{
    vg_buf_putc(b, '(');
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            vg_buf_puts(b, ", ");
        put_label(b, l->v[i]);
    }
    vg_buf_putc(b, ')');
}

static void put_at_offset(struct vg_buf *b, enum promql_at at, int64_t at_ms, int64_t off)
{
    switch (at) {
    case AT_TIMESTAMP: {
        uint64_t a = at_ms < 0 ? (uint64_t)0 - (uint64_t)at_ms : (uint64_t)at_ms;
        vg_buf_printf(b, " @ %s%llu.%03llu", at_ms < 0 ? "-" : "",
                      (unsigned long long)(a / 1000), (unsigned long long)(a % 1000));
        break;
    }
    case AT_START: vg_buf_puts(b, " @ start()"); break;
    case AT_END: vg_buf_puts(b, " @ end()"); break;
    case AT_NONE: break;
    }
    if (off > 0) {
        vg_buf_puts(b, " offset ");
        lexer_format_duration(b, off);
    } else if (off < 0) {
        vg_buf_puts(b, " offset -");
        lexer_format_duration(b, -off);
    }
}

/* Matcher text as Prometheus's Matcher.String(): name quoted unless a plain label. */
static char *matcher_text(const struct matcher *m, size_t *len)
{
    struct vg_buf b;
    vg_buf_init(&b);
    size_t nl = strlen(m->name);
    if (lexer_is_label_name(m->name, nl))
        vg_buf_append(&b, m->name, nl);
    else
        lexer_quote(&b, m->name, nl);
    vg_buf_puts(&b, matcher_op_str(m->op));
    lexer_quote(&b, m->value, m->value_len);
    if (vg_buf_failed(&b)) {
        vg_buf_free(&b);
        return NULL;
    }
    return vg_buf_steal(&b, len);
}

struct mtext {
    char *p;
    size_t len;
};

static int mtext_cmp(const void *a, const void *b)
{
    const struct mtext *x = a, *y = b;
    return vg_str_cmp((struct vg_str){ x->p, x->len }, (struct vg_str){ y->p, y->len });
}

static void put_selector(struct vg_buf *b, const struct promql_node *n)
{
    if (n->sel.name)
        vg_buf_puts(b, n->sel.name);
    struct mtext *t = n->sel.nms ? vg_calloc(n->sel.nms, sizeof *t) : NULL;
    if (n->sel.nms && !t) {
        b->failed = true;
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < n->sel.nms; i++) {
        const struct matcher *m = n->sel.ms[i];
        /* The name written before the braces is not repeated inside them. */
        if (n->sel.name && m->op == MATCH_EQ && strcmp(m->name, "__name__") == 0 &&
            strcmp(m->value, n->sel.name) == 0 && m->value_len == strlen(n->sel.name) &&
            m->value_len > 0)
            continue;
        t[k].p = matcher_text(m, &t[k].len);
        if (!t[k].p)
            b->failed = true;
        else
            k++;
    }
    if (k > 0) {
        qsort(t, k, sizeof *t, mtext_cmp);
        vg_buf_putc(b, '{');
        for (size_t i = 0; i < k; i++) {
            if (i)
                vg_buf_putc(b, ',');
            vg_buf_append(b, t[i].p, t[i].len);
        }
        vg_buf_putc(b, '}');
    }
    for (size_t i = 0; i < k; i++)
        vg_free(t[i].p);
    vg_free(t);
}

/* "sum", or "sum by (a, b) " with the space before the argument list (getAggOpStr). */
static void put_aggop(struct vg_buf *out, const struct promql_node *n)
{
    vg_buf_puts(out, promql_aggop_str(n->agg.op));
    if (n->agg.without || n->agg.grouping.n > 0) {
        vg_buf_puts(out, n->agg.without ? " without " : " by ");
        put_labels(out, &n->agg.grouping);
        vg_buf_putc(out, ' ');
    }
}

/* The operator of a binary expression with bool and the on/ignoring/group modifiers. */
static void put_binop(struct vg_buf *out, const struct promql_node *n)
{
    vg_buf_puts(out, promql_binop_str(n->bin.op));
    if (n->bin.return_bool)
        vg_buf_puts(out, " bool");
    const struct promql_matching *m = n->bin.matching;
    if (m && (m->labels.n > 0 || m->on)) {
        vg_buf_puts(out, m->on ? " on " : " ignoring ");
        put_labels(out, &m->labels);
        if (m->card == CARD_MANY_TO_ONE || m->card == CARD_ONE_TO_MANY) {
            vg_buf_puts(out, m->card == CARD_MANY_TO_ONE ? " group_left " : " group_right ");
            put_labels(out, &m->include);
        }
    }
}

/* "[5m:1m]" and the @ / offset modifiers of a subquery. */
static void put_subquery_suffix(struct vg_buf *out, const struct promql_node *n)
{
    vg_buf_putc(out, '[');
    lexer_format_duration(out, n->subq.range_ms);
    vg_buf_putc(out, ':');
    if (n->subq.step_ms)
        lexer_format_duration(out, n->subq.step_ms);
    vg_buf_putc(out, ']');
    put_at_offset(out, n->subq.at, n->subq.at_ms, n->subq.offset_ms);
}

void promql_format(const struct promql_node *n, struct vg_buf *out)
{
    switch (n->kind) {
    case PN_NUMBER:
        vg_buf_json_float(out, n->number);
        return;
    case PN_STRING:
        lexer_quote(out, n->string.p, n->string.len);
        return;
    case PN_VECTOR_SELECTOR:
        put_selector(out, n);
        put_at_offset(out, n->sel.at, n->sel.at_ms, n->sel.offset_ms);
        return;
    case PN_MATRIX_SELECTOR: {
        const struct promql_node *vs = n->msel.vs;
        put_selector(out, vs);
        vg_buf_putc(out, '[');
        lexer_format_duration(out, n->msel.range_ms);
        vg_buf_putc(out, ']');
        put_at_offset(out, vs->sel.at, vs->sel.at_ms, vs->sel.offset_ms);
        return;
    }
    case PN_SUBQUERY:
        promql_format(n->subq.expr, out);
        put_subquery_suffix(out, n);
        return;
    case PN_CALL:
        vg_buf_puts(out, n->call.fn->name);
        vg_buf_putc(out, '(');
        for (size_t i = 0; i < n->call.nargs; i++) {
            if (i)
                vg_buf_puts(out, ", ");
            promql_format(n->call.args[i], out);
        }
        vg_buf_putc(out, ')');
        return;
    case PN_AGGREGATE:
        put_aggop(out, n);
        vg_buf_putc(out, '(');
        if (n->agg.param) {
            promql_format(n->agg.param, out);
            vg_buf_puts(out, ", ");
        }
        promql_format(n->agg.expr, out);
        vg_buf_putc(out, ')');
        return;
    case PN_BINARY: {
        const struct promql_node *l = n->bin.lhs;
        /* "+Inf ^ x" would read back as +(Inf ^ x): the one place a printed sign
         * changes the tree. Prometheus prints "+Inf" here too; "Inf" reads back right. */
        if (n->bin.op == BIN_POW && l->kind == PN_NUMBER && isinf(l->number) && l->number > 0)
            vg_buf_puts(out, "Inf");
        else
            promql_format(l, out);
        vg_buf_putc(out, ' ');
        put_binop(out, n);
        vg_buf_putc(out, ' ');
        promql_format(n->bin.rhs, out);
        return;
    }
    case PN_UNARY:
        vg_buf_putc(out, n->unary.negate ? '-' : '+');
        promql_format(n->unary.expr, out);
        return;
    case PN_PAREN:
        vg_buf_putc(out, '(');
        promql_format(n->paren.expr, out);
        vg_buf_putc(out, ')');
        return;
    case PN_STEP_INVARIANT:
        return;
    }
}

/* ---- prettifying (format_query) ---- */

#define PRETTY_MAX_LINE 100

/* Whether the one-line form of n is longer than a line. */
static bool needs_split(const struct promql_node *n, struct vg_buf *out)
{
    struct vg_buf b;
    vg_buf_init(&b);
    promql_format(n, &b);
    bool split = b.len > PRETTY_MAX_LINE;
    if (vg_buf_failed(&b))
        out->failed = true;
    vg_buf_free(&b);
    return split;
}

static void put_indent(struct vg_buf *out, int level)
{
    for (int i = 0; i < level; i++)
        vg_buf_puts(out, "  ");
}

/* Prometheus's Node.Pretty(level): a node that fits stays on one line (indented by its
 * level); a longer one puts its children on their own lines one level deeper. */
static void pretty(const struct promql_node *n, int level, struct vg_buf *out)
{
    if (n->kind == PN_STEP_INVARIANT)
        return;
    if (n->kind == PN_SUBQUERY) {
        /* Prometheus adds no indent to a subquery that fits (its Pretty has none). */
        if (!needs_split(n, out)) {
            promql_format(n, out);
        } else {
            pretty(n->subq.expr, level, out);
            put_subquery_suffix(out, n);
        }
        return;
    }
    if (n->kind == PN_UNARY) {
        /* The operand's own indent goes: the sign carries it. */
        put_indent(out, level);
        vg_buf_putc(out, n->unary.negate ? '-' : '+');
        struct vg_buf child;
        vg_buf_init(&child);
        pretty(n->unary.expr, level, &child);
        size_t skip = 0;
        while (skip < child.len && (child.p[skip] == ' ' || child.p[skip] == '\n'))
            skip++;
        size_t end = child.len;
        while (end > skip && (child.p[end - 1] == ' ' || child.p[end - 1] == '\n'))
            end--;
        vg_buf_append(out, child.p + skip, end - skip);
        if (vg_buf_failed(&child))
            out->failed = true;
        vg_buf_free(&child);
        return;
    }
    bool splittable = n->kind == PN_AGGREGATE || n->kind == PN_BINARY || n->kind == PN_CALL ||
                      n->kind == PN_PAREN;
    if (!splittable || !needs_split(n, out)) {
        put_indent(out, level);
        promql_format(n, out);
        return;
    }
    switch (n->kind) {
    case PN_AGGREGATE:
        put_indent(out, level);
        put_aggop(out, n);
        vg_buf_puts(out, "(\n");
        if (n->agg.param) {
            pretty(n->agg.param, level + 1, out);
            vg_buf_puts(out, ",\n");
        }
        pretty(n->agg.expr, level + 1, out);
        vg_buf_putc(out, '\n');
        put_indent(out, level);
        vg_buf_putc(out, ')');
        return;
    case PN_BINARY:
        pretty(n->bin.lhs, level + 1, out);
        vg_buf_putc(out, '\n');
        put_indent(out, level);
        put_binop(out, n);
        vg_buf_putc(out, '\n');
        pretty(n->bin.rhs, level + 1, out);
        return;
    case PN_CALL:
        put_indent(out, level);
        vg_buf_puts(out, n->call.fn->name);
        vg_buf_puts(out, "(\n");
        for (size_t i = 0; i < n->call.nargs; i++) {
            if (i)
                vg_buf_puts(out, ",\n");
            pretty(n->call.args[i], level + 1, out);
        }
        vg_buf_putc(out, '\n');
        put_indent(out, level);
        vg_buf_putc(out, ')');
        return;
    default: /* PN_PAREN */
        put_indent(out, level);
        vg_buf_puts(out, "(\n");
        pretty(n->paren.expr, level + 1, out);
        vg_buf_putc(out, '\n');
        put_indent(out, level);
        vg_buf_putc(out, ')');
        return;
    }
}

void promql_prettify(const struct promql_node *n, struct vg_buf *out)
{
    pretty(n, 0, out);
}
