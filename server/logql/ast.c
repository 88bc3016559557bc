/* ast: see ast.h. Freeing, the operator tables, and the two printers Loki has:
 *
 * - logql_format is Expr.String() of Loki 3 (pkg/logql/syntax/ast.go and the label
 *   filters' String() in pkg/logql/log): what the query frontend logs and caches by.
 * - logql_prettify is syntax.Prettify (prettier.go), what /loki/api/v1/format_query
 *   returns: a node whose String() is longer than 100 bytes is split over lines.
 *
 * Where Loki prints something it cannot read back we print a readable equivalent
 * instead, so format -> parse -> format is a fixed point (the fuzz target checks it):
 * NaN and infinite literals (only constant folding makes them) print as expressions
 * that fold to them; byte sizes of an exabyte or more stay in PB, because the lexer
 * (like Loki's) does not read an 'E' unit. */
#include "ast.h"

#include "../../storage/base/vg_alloc.h"
#include "../promql/lexer.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

void logql_expr_free(struct logql_expr *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->nmatchers; i++)
        matcher_free(e->matchers[i]);
    vg_free(e->matchers);
    vg_arena_free(e->arena);
    vg_free(e);
}

/* ---- operator tables ---- */

static const char *const line_ops[] = { "|=", "!=", "|~", "!~", "|>", "!>" };
const char *logql_line_op_str(enum logql_line_op op) { return line_ops[op]; }
bool logql_line_op_negated(enum logql_line_op op)
{
    return op == LQ_LINE_NOT_CONTAINS || op == LQ_LINE_NOT_MATCH || op == LQ_LINE_NOT_PATTERN;
}

static const char *const cmps[] = { "==", "!=", ">", ">=", "<", "<=" };
const char *logql_cmp_str(enum logql_cmp c) { return cmps[c]; }

static const char *const range_ops[] = {
    "count_over_time", "rate", "rate_counter", "bytes_over_time", "bytes_rate",
    "avg_over_time", "sum_over_time", "min_over_time", "max_over_time", "stdvar_over_time",
    "stddev_over_time", "quantile_over_time", "first_over_time", "last_over_time",
    "absent_over_time",
};
const char *logql_range_op_str(enum logql_range_op op) { return range_ops[op]; }

static const char *const vector_ops[] = {
    "sum", "avg", "count", "max", "min", "stddev", "stdvar", "bottomk", "topk", "sort",
    "sort_desc",
};
const char *logql_vector_op_str(enum logql_vector_op op) { return vector_ops[op]; }

static const char *const binops[] = {
    "or", "and", "unless", "+", "-", "*", "/", "%", "^", "==", "!=", ">", ">=", "<", "<=",
};
const char *logql_binop_str(enum logql_binop op) { return binops[op]; }
bool logql_binop_is_comparison(enum logql_binop op) { return op >= LQ_BIN_EQ; }
bool logql_binop_is_set(enum logql_binop op) { return op <= LQ_BIN_UNLESS; }

static const char *const convs[] = { "", "bytes", "duration", "duration_seconds" };

/* ---- small printers ---- */

void logql_format_go_duration(struct vg_buf *b, int64_t ns)
{
    uint64_t u = ns < 0 ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    if (u == 0) {
        vg_buf_puts(b, "0s");
        return;
    }
    if (ns < 0)
        vg_buf_putc(b, '-');
    const char *unit = "s";
    int prec = 9;
    if (u < 1000ULL) {
        unit = "ns", prec = 0;
    } else if (u < 1000000ULL) {
        unit = "\xC2\xB5s", prec = 3; /* U+00B5, as Go prints it */
    } else if (u < 1000000000ULL) {
        unit = "ms", prec = 6;
    }
    uint64_t scale = 1;
    for (int i = 0; i < prec; i++)
        scale *= 10;
    uint64_t whole = u / scale, frac = u % scale;
    if (prec == 9) { /* seconds and up: h, m, then seconds with the fraction */
        uint64_t h = whole / 3600, m = whole / 60 % 60;
        if (h > 0)
            vg_buf_printf(b, "%" PRIu64 "h", h);
        if (h > 0 || m > 0)
            vg_buf_printf(b, "%" PRIu64 "m", m);
        whole %= 60;
    }
    vg_buf_printf(b, "%" PRIu64, whole);
    if (frac != 0) {
        char digits[24];
        snprintf(digits, sizeof digits, "%0*" PRIu64, prec, frac);
        size_t n = strlen(digits);
        while (n > 0 && digits[n - 1] == '0')
            n--;
        vg_buf_putc(b, '.');
        vg_buf_append(b, digits, n);
    }
    vg_buf_puts(b, unit);
}

/* go-humanize Bytes() with the space removed, as Loki's BytesLabelFilter prints:
 * SI units, one decimal under 10 ("5.1kB", "12MB", "7B"). */
static void format_bytes(struct vg_buf *b, uint64_t v)
{
    static const char *const sizes[] = { "B", "kB", "MB", "GB", "TB", "PB" };
    if (v < 10) {
        vg_buf_printf(b, "%" PRIu64 "B", v);
        return;
    }
    double e = floor(log((double)v) / log(1000.0));
    if (e > 5)
        e = 5; /* "EB" would not lex back */
    double val = floor((double)v / pow(1000.0, e) * 10 + 0.5) / 10;
    vg_buf_printf(b, val < 10 ? "%.1f%s" : "%.0f%s", val, sizes[(int)e]);
}

static void put_str(struct vg_buf *b, const struct logql_str *s) { lexer_quote(b, s->p, s->len); }

static void put_matcher(struct vg_buf *b, const struct matcher *m)
{
    vg_buf_puts(b, m->name);
    vg_buf_puts(b, matcher_op_str(m->op));
    lexer_quote(b, m->value, m->value_len);
}

static void put_list(struct vg_buf *b, const struct logql_strings *l, const char *sep)
{
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            vg_buf_puts(b, sep);
        vg_buf_puts(b, l->v[i]);
    }
}

static void put_selector(struct vg_buf *b, const struct logql_node *n)
{
    vg_buf_putc(b, '{');
    for (size_t i = 0; i < n->log.nms; i++) {
        if (i)
            vg_buf_puts(b, ", ");
        put_matcher(b, n->log.ms[i]);
    }
    vg_buf_putc(b, '}');
}

static void put_label_filter(struct vg_buf *b, const struct logql_label_filter *f)
{
    switch (f->kind) {
    case LQ_LF_AND:
    case LQ_LF_OR:
        vg_buf_puts(b, "( ");
        put_label_filter(b, f->bin.lhs);
        vg_buf_puts(b, f->kind == LQ_LF_AND ? " , " : " or ");
        put_label_filter(b, f->bin.rhs);
        vg_buf_puts(b, " )");
        return;
    case LQ_LF_STRING:
        put_matcher(b, f->m);
        return;
    case LQ_LF_IP:
        vg_buf_puts(b, f->cmp.name);
        vg_buf_puts(b, f->cmp.cmp == LQ_CMP_EQ ? "=ip(" : "!=ip(");
        put_str(b, &f->cmp.ip);
        vg_buf_putc(b, ')');
        return;
    default:
        break;
    }
    vg_buf_puts(b, f->cmp.name);
    vg_buf_puts(b, logql_cmp_str(f->cmp.cmp));
    if (f->kind == LQ_LF_NUMBER)
        vg_buf_json_float(b, f->cmp.number + 0.0); /* -0 would lex as a duration */
    else if (f->kind == LQ_LF_DURATION)
        logql_format_go_duration(b, f->cmp.duration_ns);
    else
        format_bytes(b, f->cmp.bytes);
}

static void put_line_filter(struct vg_buf *b, const struct logql_stage *s)
{
    vg_buf_puts(b, logql_line_op_str(s->line.op));
    vg_buf_putc(b, ' ');
    for (size_t i = 0; i < s->line.nalts; i++) {
        const struct logql_line_alt *a = &s->line.alts[i];
        if (i)
            vg_buf_puts(b, " or ");
        if (a->ip)
            vg_buf_puts(b, "ip(");
        put_str(b, &a->value);
        if (a->ip)
            vg_buf_putc(b, ')');
    }
}

static void put_named(struct vg_buf *b, const struct logql_stage *s)
{
    for (size_t i = 0; i < s->named.n; i++) {
        const struct logql_named *x = &s->named.v[i];
        if (i)
            vg_buf_putc(b, ',');
        vg_buf_puts(b, x->name);
        vg_buf_putc(b, '=');
        if (x->rename)
            vg_buf_append(b, x->value.p, x->value.len);
        else
            put_str(b, &x->value);
    }
}

static void put_stage(struct vg_buf *b, const struct logql_stage *s)
{
    switch (s->kind) {
    case LQ_STAGE_LINE_FILTER:
        put_line_filter(b, s);
        return;
    case LQ_STAGE_JSON:
        vg_buf_puts(b, s->named.n ? "| json " : "| json");
        put_named(b, s);
        return;
    case LQ_STAGE_LOGFMT:
        vg_buf_puts(b, "| logfmt");
        /* Loki puts the flags after a space, and a space after each one when
         * parameters follow. */
        if (s->named.strict)
            vg_buf_puts(b, " --strict");
        if (s->named.keep_empty)
            vg_buf_puts(b, " --keep-empty");
        if (s->named.n) {
            vg_buf_putc(b, ' ');
            put_named(b, s);
        }
        return;
    case LQ_STAGE_REGEXP:
    case LQ_STAGE_PATTERN:
    case LQ_STAGE_LINE_FORMAT:
        vg_buf_puts(b, s->kind == LQ_STAGE_REGEXP    ? "| regexp "
                       : s->kind == LQ_STAGE_PATTERN ? "| pattern "
                                                     : "| line_format ");
        put_str(b, &s->arg);
        return;
    case LQ_STAGE_UNPACK:
        vg_buf_puts(b, "| unpack");
        return;
    case LQ_STAGE_DECOLORIZE:
        vg_buf_puts(b, "| decolorize");
        return;
    case LQ_STAGE_LABEL_FILTER:
        vg_buf_puts(b, "| ");
        put_label_filter(b, s->filter);
        return;
    case LQ_STAGE_LABEL_FORMAT:
        vg_buf_puts(b, "| label_format ");
        put_named(b, s);
        return;
    case LQ_STAGE_DROP:
    case LQ_STAGE_KEEP:
        vg_buf_puts(b, s->kind == LQ_STAGE_DROP ? "| drop " : "| keep ");
        for (size_t i = 0; i < s->names.n; i++) {
            if (i)
                vg_buf_putc(b, ',');
            if (s->names.v[i].m)
                put_matcher(b, s->names.v[i].m);
            else
                vg_buf_puts(b, s->names.v[i].name);
        }
        return;
    }
}

static void put_log(struct vg_buf *b, const struct logql_node *n)
{
    put_selector(b, n);
    for (size_t i = 0; i < n->log.nstages; i++) {
        vg_buf_putc(b, ' ');
        put_stage(b, &n->log.stages[i]);
    }
}

static void put_unwrap_head(struct vg_buf *b, const struct logql_unwrap *u)
{
    vg_buf_puts(b, "| unwrap ");
    if (u->conv != LQ_CONV_NONE)
        vg_buf_printf(b, "%s(%s)", convs[u->conv], u->label);
    else
        vg_buf_puts(b, u->label);
}

static void put_range_tail(struct vg_buf *b, const struct logql_node *n, bool go_offset)
{
    vg_buf_puts(b, "[");
    lexer_format_duration(b, n->range.range_ns / 1000000);
    vg_buf_puts(b, "]");
    if (n->range.offset_ns != 0) {
        vg_buf_puts(b, " offset ");
        /* String() prints time.Duration, Prettify model.Duration (whole ms, which
         * Loki prints as nothing for a negative or sub-millisecond offset). */
        if (go_offset || n->range.offset_ns < 1000000 || n->range.offset_ns % 1000000)
            logql_format_go_duration(b, n->range.offset_ns);
        else
            lexer_format_duration(b, n->range.offset_ns / 1000000);
    }
}

static void put_grouping(struct vg_buf *b, const struct logql_grouping *g)
{
    vg_buf_puts(b, g->without ? " without (" : " by (");
    put_list(b, &g->labels, ",");
    vg_buf_putc(b, ')');
}

/* The operator with its modifiers. String() prints `on ()` and joins labels with ",";
 * Prettify prints the matching clause only when it names labels, joined with ", ". */
static void put_binop(struct vg_buf *b, const struct logql_node *n, bool pretty)
{
    const char *sep = pretty ? ", " : ",";
    vg_buf_puts(b, logql_binop_str(n->bin.op));
    if (n->bin.return_bool)
        vg_buf_puts(b, " bool");
    if (pretty ? n->bin.matching.n == 0 : !n->bin.on && n->bin.matching.n == 0)
        return;
    vg_buf_puts(b, n->bin.on ? " on (" : " ignoring (");
    put_list(b, &n->bin.matching, sep);
    vg_buf_puts(b, ") ");
    if (n->bin.card == LQ_CARD_MANY_TO_ONE)
        vg_buf_puts(b, "group_left");
    else if (n->bin.card == LQ_CARD_ONE_TO_MANY)
        vg_buf_puts(b, "group_right");
    if (n->bin.include.n) {
        vg_buf_puts(b, " (");
        put_list(b, &n->bin.include, sep);
        vg_buf_putc(b, ')');
    }
}

static void put_literal(struct vg_buf *b, double v)
{
    if (isnan(v))
        vg_buf_puts(b, "(0 / 0)");
    else if (isinf(v))
        vg_buf_puts(b, v > 0 ? "(1e308 * 10)" : "(-1e308 * 10)");
    else
        vg_buf_prom_float(b, v + 0.0); /* "-0" would lex as a duration (Go reads it so) */
}

void logql_format(const struct logql_node *n, struct vg_buf *b)
{
    switch (n->kind) {
    case LQ_LOG:
        put_log(b, n);
        return;
    case LQ_RANGE_AGG:
        vg_buf_puts(b, logql_range_op_str(n->range.op));
        vg_buf_putc(b, '(');
        if (n->range.has_param) {
            vg_buf_json_float(b, n->range.param + 0.0);
            vg_buf_putc(b, ',');
        }
        put_log(b, n->range.log);
        if (n->range.unwrap) {
            vg_buf_putc(b, ' ');
            put_unwrap_head(b, n->range.unwrap);
            for (size_t i = 0; i < n->range.unwrap->npost; i++) {
                vg_buf_puts(b, " | ");
                put_label_filter(b, n->range.unwrap->post[i]);
            }
        }
        put_range_tail(b, n, true);
        vg_buf_putc(b, ')');
        if (n->range.grouping)
            put_grouping(b, n->range.grouping);
        return;
    case LQ_VECTOR_AGG:
        vg_buf_puts(b, logql_vector_op_str(n->vec.op));
        if (n->vec.grouping.without || n->vec.grouping.labels.n)
            put_grouping(b, &n->vec.grouping);
        vg_buf_putc(b, '(');
        if (n->vec.op == LQ_VEC_TOPK || n->vec.op == LQ_VEC_BOTTOMK)
            vg_buf_printf(b, "%" PRId64 ",", n->vec.param);
        logql_format(n->vec.expr, b);
        vg_buf_putc(b, ')');
        return;
    case LQ_BINARY:
        vg_buf_putc(b, '(');
        logql_format(n->bin.lhs, b);
        vg_buf_putc(b, ' ');
        put_binop(b, n, false);
        vg_buf_putc(b, ' ');
        logql_format(n->bin.rhs, b);
        vg_buf_putc(b, ')');
        return;
    case LQ_LITERAL:
        put_literal(b, n->literal);
        return;
    case LQ_VECTOR:
        vg_buf_printf(b, "vector(%f)", n->vector);
        return;
    case LQ_LABEL_REPLACE:
        vg_buf_puts(b, "label_replace(");
        logql_format(n->replace.expr, b);
        vg_buf_putc(b, ',');
        put_str(b, &n->replace.dst);
        vg_buf_putc(b, ',');
        put_str(b, &n->replace.replacement);
        vg_buf_putc(b, ',');
        put_str(b, &n->replace.src);
        vg_buf_putc(b, ',');
        put_str(b, &n->replace.regex);
        vg_buf_putc(b, ')');
        return;
    }
}

/* ---- Prettify ---- */

#define MAX_CHARS_PER_LINE 100

static void indent(struct vg_buf *b, int level)
{
    for (int i = 0; i < level; i++)
        vg_buf_puts(b, "  ");
}

/* Length of the String() form: Loki splits a node when it is over 100 bytes. */
static size_t format_len(const struct logql_node *n)
{
    struct vg_buf t;
    vg_buf_init(&t);
    logql_format(n, &t);
    size_t len = vg_buf_failed(&t) ? 0 : t.len;
    vg_buf_free(&t);
    return len;
}

static void pretty(const struct logql_node *n, int level, struct vg_buf *b);

/* Loki nests consecutive line filters into one stage and prints that stage on one line
 * when it fits, else its left part (recursively) and then its last filter. */
static void pretty_line_filters(const struct logql_stage *s, size_t n, int level,
                                struct vg_buf *b)
{
    struct vg_buf t;
    vg_buf_init(&t);
    for (size_t i = 0; i < n; i++) {
        if (i)
            vg_buf_putc(&t, ' ');
        put_line_filter(&t, &s[i]);
    }
    bool fits = !vg_buf_failed(&t) && t.len <= MAX_CHARS_PER_LINE;
    if (fits || n == 1) {
        indent(b, level);
        vg_buf_append(b, t.p, t.len);
        if (vg_buf_failed(&t))
            b->failed = true;
    } else {
        pretty_line_filters(s, n - 1, level, b);
        vg_buf_putc(b, '\n');
        indent(b, level);
        put_line_filter(b, &s[n - 1]);
    }
    vg_buf_free(&t);
}

static void pretty_log(const struct logql_node *n, int level, struct vg_buf *b)
{
    if (n->log.nstages == 0 || format_len(n) <= MAX_CHARS_PER_LINE) {
        indent(b, level);
        put_log(b, n);
        return;
    }
    indent(b, level);
    put_selector(b, n);
    const struct logql_stage *st = n->log.stages;
    for (size_t i = 0; i < n->log.nstages;) {
        vg_buf_putc(b, '\n');
        if (st[i].kind == LQ_STAGE_LINE_FILTER) {
            size_t j = i;
            while (j < n->log.nstages && st[j].kind == LQ_STAGE_LINE_FILTER)
                j++;
            pretty_line_filters(&st[i], j - i, level + 1, b);
            i = j;
            continue;
        }
        if (st[i].kind != LQ_STAGE_DECOLORIZE) /* Loki does not indent it */
            indent(b, level + 1);
        put_stage(b, &st[i]);
        i++;
    }
}

static void pretty_grouping(const struct logql_grouping *g, struct vg_buf *b)
{
    if (g->without)
        vg_buf_puts(b, " without");
    else if (g->labels.n)
        vg_buf_puts(b, " by");
    if (g->labels.n || g->without) { /* Loki drops "()" of without (); we keep it */
        vg_buf_puts(b, " (");
        put_list(b, &g->labels, ", ");
        vg_buf_putc(b, ')');
    }
}

static void pretty_range(const struct logql_node *n, int level, struct vg_buf *b)
{
    indent(b, level);
    vg_buf_puts(b, logql_range_op_str(n->range.op));
    vg_buf_puts(b, "(\n");
    if (n->range.has_param) {
        indent(b, level + 1);
        vg_buf_prom_float(b, n->range.param + 0.0);
        vg_buf_puts(b, ",\n");
    }
    pretty_log(n->range.log, level + 1, b);
    const struct logql_unwrap *u = n->range.unwrap;
    if (u) {
        vg_buf_putc(b, '\n');
        indent(b, level + 2);
        put_unwrap_head(b, u);
        for (size_t i = 0; i < u->npost; i++) {
            vg_buf_putc(b, '\n');
            indent(b, level + 2);
            vg_buf_puts(b, "| ");
            put_label_filter(b, u->post[i]);
        }
    }
    vg_buf_putc(b, ' ');
    put_range_tail(b, n, false);
    vg_buf_putc(b, '\n');
    indent(b, level);
    vg_buf_putc(b, ')');
    /* a range aggregation's empty `by ()` (aggregate everything) differs from none */
    if (n->range.grouping && !n->range.grouping->without && !n->range.grouping->labels.n)
        vg_buf_puts(b, " by ()");
    else if (n->range.grouping)
        pretty_grouping(n->range.grouping, b);
}

static void pretty_args(const struct logql_node *first, const struct logql_str *rest,
                        size_t nrest, int level, struct vg_buf *b)
{
    vg_buf_puts(b, "(\n");
    pretty(first, level + 1, b);
    for (size_t i = 0; i < nrest; i++) {
        vg_buf_puts(b, ",\n");
        indent(b, level + 1);
        put_str(b, &rest[i]);
    }
    vg_buf_putc(b, '\n');
    indent(b, level);
    vg_buf_putc(b, ')');
}

/* A leg of a split binary operation. Loki prints a split leg that is itself a binary
 * operation without its parentheses, which loses the grouping (`(a - b) * c` would
 * read back as a - b * c); we keep them, on lines of their own. */
static void pretty_leg(const struct logql_node *n, int level, struct vg_buf *b)
{
    if (n->kind != LQ_BINARY || format_len(n) <= MAX_CHARS_PER_LINE) {
        pretty(n, level, b);
        return;
    }
    indent(b, level);
    vg_buf_puts(b, "(\n");
    pretty(n, level + 1, b);
    vg_buf_putc(b, '\n');
    indent(b, level);
    vg_buf_putc(b, ')');
}

static void pretty(const struct logql_node *n, int level, struct vg_buf *b)
{
    if (n->kind == LQ_LOG) {
        pretty_log(n, level, b);
        return;
    }
    if (format_len(n) <= MAX_CHARS_PER_LINE || n->kind == LQ_LITERAL ||
        n->kind == LQ_VECTOR) {
        indent(b, level);
        logql_format(n, b);
        return;
    }
    switch (n->kind) {
    case LQ_RANGE_AGG:
        pretty_range(n, level, b);
        return;
    case LQ_VECTOR_AGG:
        indent(b, level);
        vg_buf_puts(b, logql_vector_op_str(n->vec.op));
        pretty_grouping(&n->vec.grouping, b);
        if (n->vec.op == LQ_VEC_TOPK || n->vec.op == LQ_VEC_BOTTOMK) {
            vg_buf_puts(b, "(\n");
            indent(b, level + 1);
            vg_buf_printf(b, "%" PRId64 ",\n", n->vec.param);
            pretty(n->vec.expr, level + 1, b);
            vg_buf_putc(b, '\n');
            indent(b, level);
            vg_buf_putc(b, ')');
        } else {
            pretty_args(n->vec.expr, NULL, 0, level, b);
        }
        return;
    case LQ_BINARY:
        pretty_leg(n->bin.lhs, level + 1, b);
        vg_buf_putc(b, '\n');
        indent(b, level);
        put_binop(b, n, true);
        vg_buf_putc(b, '\n');
        pretty_leg(n->bin.rhs, level + 1, b);
        return;
    case LQ_LABEL_REPLACE: {
        indent(b, level);
        vg_buf_puts(b, "label_replace");
        const struct logql_str rest[] = { n->replace.dst, n->replace.replacement,
                                          n->replace.src, n->replace.regex };
        pretty_args(n->replace.expr, rest, 4, level, b);
        return;
    }
    default:
        return;
    }
}

void logql_prettify(const struct logql_node *n, struct vg_buf *out) { pretty(n, 0, out); }
