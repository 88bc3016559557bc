/* ast: the syntax tree of a PromQL expression, produced by parser.c and walked by the
 * evaluator and the printer (format_query).
 *
 * Every node, string and array of a parsed expression lives in the expression's arena
 * (struct promql_expr); matchers are created with matcher_new and listed in the expr so
 * promql_expr_free releases them. A parsed tree is immutable and may be read by several
 * threads at once.
 *
 * Positions are byte offsets into the query text, [start, end). Durations and
 * timestamps are milliseconds. Types follow Prometheus's: the parser has already checked
 * them, so the evaluator can rely on promql_node_type(). */
#ifndef PROMQL_AST_H
#define PROMQL_AST_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_buf.h"
#include "../../storage/tsdb/matcher.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum promql_type {
    PT_NONE,
    PT_SCALAR,
    PT_VECTOR, /* instant vector */
    PT_MATRIX, /* range vector */
    PT_STRING,
};
const char *promql_type_name(enum promql_type t); /* "scalar", "vector", "matrix", "string" */

enum promql_node_kind {
    PN_NUMBER,
    PN_STRING,
    PN_VECTOR_SELECTOR,
    PN_MATRIX_SELECTOR,
    PN_SUBQUERY,
    PN_CALL,
    PN_AGGREGATE,
    PN_BINARY,
    PN_UNARY,
    PN_PAREN,
    PN_STEP_INVARIANT, /* reserved for an evaluator optimisation; the parser never makes it */
};

enum promql_binop {
    BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV, BIN_MOD, BIN_POW, BIN_ATAN2,
    BIN_EQL, BIN_NEQ, BIN_GTR, BIN_LSS, BIN_GTE, BIN_LTE,
    BIN_AND, BIN_OR, BIN_UNLESS,
};
const char *promql_binop_str(enum promql_binop op); /* "+", "atan2", "==", "and", ... */
bool promql_binop_is_comparison(enum promql_binop op);
bool promql_binop_is_set(enum promql_binop op);

enum promql_aggop {
    AGG_SUM, AGG_AVG, AGG_MIN, AGG_MAX, AGG_COUNT, AGG_GROUP, AGG_STDDEV, AGG_STDVAR,
    AGG_TOPK, AGG_BOTTOMK, AGG_QUANTILE, AGG_COUNT_VALUES, AGG_LIMITK, AGG_LIMIT_RATIO,
};
const char *promql_aggop_str(enum promql_aggop op); /* "sum", "count_values", ... */

/* The @ modifier. */
enum promql_at {
    AT_NONE,
    AT_TIMESTAMP, /* @ <ts>: at_ms holds it */
    AT_START,     /* @ start() */
    AT_END,       /* @ end() */
};

enum promql_card {
    CARD_ONE_TO_ONE,
    CARD_MANY_TO_ONE,  /* group_left */
    CARD_ONE_TO_MANY,  /* group_right */
    CARD_MANY_TO_MANY, /* set operators */
};

struct promql_strings {
    char **v; /* NUL-terminated label names */
    size_t n;
};

/* on(...)/ignoring(...) and group_left/right(...) of a binary operation between vectors. */
struct promql_matching {
    enum promql_card card;
    bool on;                       /* on(...) rather than ignoring(...) */
    struct promql_strings labels;  /* the on/ignoring list (may be empty) */
    struct promql_strings include; /* group_left(...)/group_right(...) extra labels */
};

/* A function's signature, from the table in functions.c. */
struct promql_function;

struct promql_node {
    enum promql_node_kind kind;
    uint32_t start, end; /* position in the query text */
    union {
        double number; /* PN_NUMBER */
        struct {       /* PN_STRING: unescaped bytes */
            char *p;
            size_t len;
        } string;
        struct { /* PN_VECTOR_SELECTOR */
            char *name;             /* metric name or NULL; also present as a matcher */
            struct matcher **ms;
            size_t nms;
            int64_t offset_ms;      /* positive = into the past; may be negative */
            enum promql_at at;
            int64_t at_ms;
        } sel;
        struct { /* PN_MATRIX_SELECTOR: vs is a PN_VECTOR_SELECTOR holding offset and @ */
            struct promql_node *vs;
            int64_t range_ms;
        } msel;
        struct { /* PN_SUBQUERY: expr[range:step] offset/@ */
            struct promql_node *expr;
            int64_t range_ms;
            int64_t step_ms; /* 0 = the default evaluation interval */
            int64_t offset_ms;
            enum promql_at at;
            int64_t at_ms;
        } subq;
        struct { /* PN_CALL */
            const struct promql_function *fn;
            struct promql_node **args;
            size_t nargs;
        } call;
        struct { /* PN_AGGREGATE */
            enum promql_aggop op;
            struct promql_node *expr;
            struct promql_node *param; /* topk's k, quantile's q, count_values' label... or NULL */
            struct promql_strings grouping;
            bool without;
            bool has_grouping; /* a by()/without() clause was written, even empty */
        } agg;
        struct { /* PN_BINARY */
            enum promql_binop op;
            struct promql_node *lhs, *rhs;
            bool return_bool;                /* comparison with the bool modifier */
            struct promql_matching *matching; /* NULL unless both sides are vectors */
        } bin;
        struct { /* PN_UNARY */
            bool negate; /* '-' (true) or '+' (false) */
            struct promql_node *expr;
        } unary;
        struct { /* PN_PAREN */
            struct promql_node *expr;
        } paren;
    };
};

/* A parsed expression and everything it owns. */
struct promql_expr {
    struct promql_node *root;
    struct vg_arena *arena;
    struct matcher **matchers; /* every matcher in the tree, for promql_expr_free */
    size_t nmatchers;
    const char *query;         /* copy of the text (in the arena) */
    size_t query_len;
};

void promql_expr_free(struct promql_expr *e); /* accepts NULL */

/* The static type of a node (already checked by the parser). */
enum promql_type promql_node_type(const struct promql_node *n);

/* Prints the tree back as canonical PromQL, as Prometheus's String() / format_query does
 * (normalised spacing, durations like 5m, strings double-quoted and escaped). */
void promql_format(const struct promql_node *n, struct vg_buf *out);

/* Appends the query as Prometheus's format_query (parser.Prettify) does: the one-line
 * form when it fits in 100 characters, otherwise aggregations, calls, parentheses and
 * binary operations split over lines with two-space indentation, their operands one
 * level deeper. Allocation failure marks out failed. */
void promql_prettify(const struct promql_node *n, struct vg_buf *out);

#endif
