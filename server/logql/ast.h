/* ast: the syntax tree of a LogQL query (Loki 3), produced by parser.c and read by the
 * evaluator and by /loki/api/v1/format_query.
 *
 * A query is either a log query (a stream selector with a pipeline: LQ_LOG) or a metric
 * query (range and vector aggregations, binary operations, literals, vector(),
 * label_replace). Every node, string and array lives in the arena of its struct
 * logql_expr; matchers are made with matcher_new (so their regexes are compiled once)
 * and listed in the expr so logql_expr_free releases them. A parsed tree is immutable
 * and may be read by several threads at once.
 *
 * Units: ranges and offsets are nanoseconds (Loki keeps time.Duration); ranges always
 * hold whole milliseconds because `[...]` is read by Prometheus's duration rules.
 *
 * The tree mirrors what Loki's parser builds, because format_query prints it back:
 * - `!= "a" or "b"` is stored as two stages `!= "a" != "b"` (not (a or b) = not a and
 *   not b); positive filters keep their alternatives in one stage.
 * - two literal legs of a binary operation are folded into one literal (`1 + 1` is 2).
 * - a vector aggregation always has a grouping (empty `by ()` when none was written);
 *   a range aggregation has one only when it was written. */
#ifndef LOGQL_AST_H
#define LOGQL_AST_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_buf.h"
#include "../../storage/tsdb/matcher.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A string from the query, unescaped; p is NUL-terminated (len excludes the NUL). */
struct logql_str {
    char *p;
    size_t len;
};

/* Line filter operators: |= != |~ !~ |> !> */
enum logql_line_op {
    LQ_LINE_CONTAINS,
    LQ_LINE_NOT_CONTAINS,
    LQ_LINE_MATCH,
    LQ_LINE_NOT_MATCH,
    LQ_LINE_PATTERN,
    LQ_LINE_NOT_PATTERN,
};
const char *logql_line_op_str(enum logql_line_op op);
/* True for != !~ !>: a line passes when no alternative matches. */
bool logql_line_op_negated(enum logql_line_op op);

/* One alternative of a line filter: a string, or ip("...") (a CIDR, range or address). */
struct logql_line_alt {
    struct logql_str value;
    bool ip;
};

/* Comparison of a typed label filter. */
enum logql_cmp { LQ_CMP_EQ, LQ_CMP_NE, LQ_CMP_GT, LQ_CMP_GE, LQ_CMP_LT, LQ_CMP_LE };
const char *logql_cmp_str(enum logql_cmp c); /* "==", "!=", ">", ">=", "<", "<=" */

enum logql_lf_kind {
    LQ_LF_AND,      /* a and b, a , b, a b */
    LQ_LF_OR,       /* a or b */
    LQ_LF_STRING,   /* name = "v", != "v", =~ "re", !~ "re" */
    LQ_LF_NUMBER,   /* name > 5 */
    LQ_LF_DURATION, /* name > 250ms */
    LQ_LF_BYTES,    /* name > 5KB */
    LQ_LF_IP,       /* name = ip("...") or name != ip("...") (cmp is EQ or NE) */
};

struct logql_label_filter {
    enum logql_lf_kind kind;
    union {
        struct {
            struct logql_label_filter *lhs, *rhs;
        } bin;              /* AND, OR */
        struct matcher *m;  /* STRING */
        struct {
            char *name;
            enum logql_cmp cmp;
            double number;       /* NUMBER */
            int64_t duration_ns; /* DURATION */
            uint64_t bytes;      /* BYTES */
            struct logql_str ip; /* IP */
        } cmp;
    };
};

/* `name="expr"` of | json and | logfmt, and `dst=src` / `dst="{{...}}"` of
 * | label_format (rename says which). */
struct logql_named {
    char *name;
    struct logql_str value;
    bool rename;
};

/* An element of | drop and | keep: a bare name (m NULL) or a matcher. */
struct logql_name_or_matcher {
    char *name;
    struct matcher *m;
};

enum logql_stage_kind {
    LQ_STAGE_LINE_FILTER,
    LQ_STAGE_JSON,         /* params optional */
    LQ_STAGE_LOGFMT,       /* flags, params optional */
    LQ_STAGE_REGEXP,       /* arg: the regex (with named groups) */
    LQ_STAGE_PATTERN,      /* arg: "<ip> - <_> ..." */
    LQ_STAGE_UNPACK,
    LQ_STAGE_LABEL_FILTER,
    LQ_STAGE_LINE_FORMAT,  /* arg: the template */
    LQ_STAGE_LABEL_FORMAT, /* named */
    LQ_STAGE_DECOLORIZE,
    LQ_STAGE_DROP,         /* names */
    LQ_STAGE_KEEP,         /* names */
};

struct logql_stage {
    enum logql_stage_kind kind;
    union {
        struct {
            enum logql_line_op op;
            struct logql_line_alt *alts; /* joined by `or`; at least one */
            size_t nalts;
        } line;
        struct logql_str arg;
        struct logql_label_filter *filter;
        struct {
            struct logql_named *v;
            size_t n;
            bool strict, keep_empty; /* logfmt --strict, --keep-empty */
        } named;
        struct {
            struct logql_name_or_matcher *v;
            size_t n;
        } names;
    };
};

/* The value conversion of | unwrap. */
enum logql_conv { LQ_CONV_NONE, LQ_CONV_BYTES, LQ_CONV_DURATION, LQ_CONV_DURATION_SECONDS };

struct logql_unwrap {
    char *label;
    enum logql_conv conv;
    struct logql_label_filter **post; /* `| __error__=""` after the unwrap */
    size_t npost;
};

enum logql_range_op {
    LQ_RANGE_COUNT, LQ_RANGE_RATE, LQ_RANGE_RATE_COUNTER, LQ_RANGE_BYTES,
    LQ_RANGE_BYTES_RATE, LQ_RANGE_AVG, LQ_RANGE_SUM, LQ_RANGE_MIN, LQ_RANGE_MAX,
    LQ_RANGE_STDVAR, LQ_RANGE_STDDEV, LQ_RANGE_QUANTILE, LQ_RANGE_FIRST, LQ_RANGE_LAST,
    LQ_RANGE_ABSENT,
};
const char *logql_range_op_str(enum logql_range_op op); /* "count_over_time", ... */

enum logql_vector_op {
    LQ_VEC_SUM, LQ_VEC_AVG, LQ_VEC_COUNT, LQ_VEC_MAX, LQ_VEC_MIN, LQ_VEC_STDDEV,
    LQ_VEC_STDVAR, LQ_VEC_BOTTOMK, LQ_VEC_TOPK, LQ_VEC_SORT, LQ_VEC_SORT_DESC,
};
const char *logql_vector_op_str(enum logql_vector_op op); /* "sum", "topk", ... */

enum logql_binop {
    LQ_BIN_OR, LQ_BIN_AND, LQ_BIN_UNLESS, LQ_BIN_ADD, LQ_BIN_SUB, LQ_BIN_MUL, LQ_BIN_DIV,
    LQ_BIN_MOD, LQ_BIN_POW, LQ_BIN_EQ, LQ_BIN_NE, LQ_BIN_GT, LQ_BIN_GE, LQ_BIN_LT,
    LQ_BIN_LE,
};
const char *logql_binop_str(enum logql_binop op); /* "or", "+", "==", ... */
bool logql_binop_is_comparison(enum logql_binop op);
bool logql_binop_is_set(enum logql_binop op); /* and, or, unless */

enum logql_card { LQ_CARD_ONE_TO_ONE, LQ_CARD_MANY_TO_ONE, LQ_CARD_ONE_TO_MANY };

struct logql_strings {
    char **v;
    size_t n;
};

struct logql_grouping {
    bool without;
    struct logql_strings labels;
};

enum logql_kind {
    LQ_LOG,           /* {..} | pipeline: a log query */
    LQ_RANGE_AGG,     /* count_over_time({..}[5m]) */
    LQ_VECTOR_AGG,    /* sum by (x) (...) */
    LQ_BINARY,        /* a + b */
    LQ_LITERAL,       /* 1.5 */
    LQ_VECTOR,        /* vector(1) */
    LQ_LABEL_REPLACE, /* label_replace(e, dst, repl, src, regex) */
};

struct logql_node {
    enum logql_kind kind;
    union {
        struct { /* LQ_LOG */
            struct matcher **ms;
            size_t nms;
            struct logql_stage *stages;
            size_t nstages;
        } log;
        struct { /* LQ_RANGE_AGG */
            enum logql_range_op op;
            struct logql_node *log; /* an LQ_LOG node */
            struct logql_unwrap *unwrap; /* NULL without | unwrap */
            int64_t range_ns;
            int64_t offset_ns;
            bool has_param;
            double param;                   /* quantile_over_time's q */
            struct logql_grouping *grouping; /* NULL when none was written */
        } range;
        struct { /* LQ_VECTOR_AGG */
            enum logql_vector_op op;
            struct logql_node *expr;
            int64_t param; /* topk/bottomk k */
            struct logql_grouping grouping;
        } vec;
        struct { /* LQ_BINARY */
            enum logql_binop op;
            struct logql_node *lhs, *rhs;
            bool return_bool;
            bool on;                       /* on(...) rather than ignoring(...) */
            struct logql_strings matching; /* the on/ignoring labels */
            enum logql_card card;
            struct logql_strings include;  /* group_left(a, b) */
        } bin;
        double literal; /* LQ_LITERAL */
        double vector;  /* LQ_VECTOR */
        struct { /* LQ_LABEL_REPLACE */
            struct logql_node *expr;
            struct logql_str dst, replacement, src, regex;
        } replace;
    };
};

/* A parsed query and everything it owns. */
struct logql_expr {
    struct logql_node *root;
    struct vg_arena *arena;
    struct matcher **matchers; /* every matcher in the tree (vg_malloc'd array) */
    size_t nmatchers, matchers_cap;
};

void logql_expr_free(struct logql_expr *e); /* accepts NULL */

/* True for a log query (streams), false for a metric query (samples). */
static inline bool logql_is_log_query(const struct logql_node *n) { return n->kind == LQ_LOG; }

/* Appends the query as Loki's Expr.String() prints it: `{a="b"} |= "x" | json`,
 * `sum by (a)(rate({a="b"}[5m]))`, binary operations in parentheses, label filter
 * combinations as `( a , b )`. The text parses back to the same tree (up to the
 * printing of byte sizes, which Loki rounds to 3 digits), and printing is idempotent.
 * Allocation failure marks out failed. */
void logql_format(const struct logql_node *n, struct vg_buf *out);

/* Appends the query as Loki's format_query (syntax.Prettify) does: the String() form
 * when it fits in 100 bytes, otherwise split over lines with two-space indentation
 * (pipeline stages one per line, aggregation arguments on their own lines). */
void logql_prettify(const struct logql_node *n, struct vg_buf *out);

/* Go's time.Duration.String(): "1h0m0s", "250ms", "1.5µs", "0s", "-5m0s". */
void logql_format_go_duration(struct vg_buf *b, int64_t ns);

#endif
