/* ast: the syntax tree of a TraceQL query (the subset Vigil runs; parser.h lists it),
 * produced by parser.c, read by eval.c and plan.c.
 *
 * A query is a pipeline of stages applied to one trace at a time: the first stage is a
 * spanset expression (spansets `{...}` combined with && || > >> < << ~), later stages
 * filter it further (another spanset expression, `count() > 2`, `avg(duration) > 1s`) or
 * name fields to return (`select(...)`). Inside a spanset, a field expression is a tree
 * of && || ! and comparisons between fields: static values, intrinsics (name, status,
 * duration, ...) and attributes (span.x, resource.x, .x).
 *
 * Memory: every node, string and array lives in the arena of its struct traceql_query;
 * regex comparisons hold a matcher (matcher_new, compiled once at parse time) which the
 * query lists so traceql_query_free releases it. A built query is immutable and may be
 * evaluated by several threads at once. */
#ifndef TRACEQL_AST_H
#define TRACEQL_AST_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/base/vg_str.h"
#include "../../storage/tsdb/matcher.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The type of a value. INT, FLOAT and DURATION are numbers and compare with each other
 * (a duration as nanoseconds); the others compare only with their own type. */
enum traceql_type {
    TQ_NIL,      /* a missing attribute, or the literal nil */
    TQ_INT,
    TQ_FLOAT,
    TQ_STRING,
    TQ_BOOL,
    TQ_DURATION, /* nanoseconds in i */
    TQ_STATUS,   /* enum span_status in i: ok, error, unset */
    TQ_KIND,     /* enum span_kind in i: server, client, ... */
};

struct traceql_value {
    enum traceql_type type;
    union {
        int64_t i; /* INT, DURATION, STATUS, KIND */
        double f;
        bool b;
        struct vg_str s; /* STRING: bytes in the query's arena, or borrowed from a span */
    } v;
};

enum traceql_intrinsic {
    TQ_I_NAME,
    TQ_I_STATUS,
    TQ_I_STATUS_MESSAGE,
    TQ_I_DURATION,
    TQ_I_KIND,
    TQ_I_ROOT_NAME,
    TQ_I_ROOT_SERVICE,
    TQ_I_TRACE_DURATION,
};
/* The unscoped spelling ("name", "rootServiceName"). */
const char *traceql_intrinsic_name(enum traceql_intrinsic i);

/* Where an attribute is looked up: ANY (`.x`) tries the span's attributes, then its
 * resource's, as Tempo does. */
enum traceql_scope { TQ_SCOPE_ANY, TQ_SCOPE_SPAN, TQ_SCOPE_RESOURCE };

enum traceql_op {
    TQ_OP_EQ, TQ_OP_NEQ, TQ_OP_GT, TQ_OP_GTE, TQ_OP_LT, TQ_OP_LTE, TQ_OP_RE, TQ_OP_NRE,
    TQ_OP_AND, TQ_OP_OR,
};
const char *traceql_op_str(enum traceql_op op); /* "=", "!=", ..., "&&", "||" */

enum traceql_field_kind {
    TQ_FIELD_STATIC,
    TQ_FIELD_INTRINSIC,
    TQ_FIELD_ATTR,
    TQ_FIELD_BINARY, /* comparison, && or || */
    TQ_FIELD_NOT,    /* ! lhs */
};

struct traceql_field {
    enum traceql_field_kind kind;
    size_t pos; /* byte offset in the query, for error messages */
    union {
        struct traceql_value value;      /* STATIC */
        enum traceql_intrinsic intrinsic; /* INTRINSIC */
        struct {
            enum traceql_scope scope;
            struct vg_str name; /* without the scope prefix */
        } attr;
        struct {
            enum traceql_op op;
            struct traceql_field *lhs, *rhs; /* NOT uses lhs */
            const struct matcher *re;        /* RE, NRE: the static right side compiled */
            /* set by traceql_field_text_eq (legacy tag search): compare the attribute's
             * text form (span_attr_text) with the static string, whatever its type */
            bool text;
        } bin;
    } u;
};

/* How spansets combine. AND/OR: both sides non-empty / either; the others are Tempo's
 * structural operators and keep the right side's spans that stand in the relation to
 * some span of the left side: CHILD `>` (parent in lhs), DESC `>>` (an ancestor in
 * lhs), PARENT `<` (a child in lhs), ANCESTOR `<<` (a descendant in lhs), SIBLING `~`
 * (another span with the same parent in lhs). */
enum traceql_set_op {
    TQ_SET_AND, TQ_SET_OR, TQ_SET_CHILD, TQ_SET_DESC, TQ_SET_PARENT, TQ_SET_ANCESTOR,
    TQ_SET_SIBLING,
};
const char *traceql_set_op_str(enum traceql_set_op op);

enum traceql_set_kind {
    TQ_SET_FILTER,   /* { field } */
    TQ_SET_BINARY,   /* lhs op rhs */
    TQ_SET_PIPELINE, /* ( pipeline ) used as a spanset */
};

struct traceql_pipeline;

struct traceql_set {
    enum traceql_set_kind kind;
    union {
        struct traceql_field *filter; /* NULL for `{}` */
        struct {
            enum traceql_set_op op;
            struct traceql_set *lhs, *rhs;
        } bin;
        struct traceql_pipeline *pipe;
    } u;
};

enum traceql_agg { TQ_AGG_COUNT, TQ_AGG_AVG, TQ_AGG_MIN, TQ_AGG_MAX, TQ_AGG_SUM };
const char *traceql_agg_name(enum traceql_agg a);

enum traceql_stage_kind {
    TQ_STAGE_SET,    /* a spanset expression: the first stage, or a filter of the spans */
    TQ_STAGE_SCALAR, /* agg(field) op value */
    TQ_STAGE_SELECT, /* select(fields...) */
};

struct traceql_stage {
    enum traceql_stage_kind kind;
    union {
        struct traceql_set *set;
        struct {
            enum traceql_agg agg;
            struct traceql_field *arg; /* NULL for count() */
            enum traceql_op op;        /* a comparison */
            struct traceql_value value; /* a number or duration */
        } scalar;
        struct {
            struct traceql_field **fields;
            size_t n;
        } select;
    } u;
};

struct traceql_pipeline {
    struct traceql_stage *stages;
    size_t n;
};

struct traceql_query {
    struct traceql_pipeline *root;
    struct vg_arena *arena;
    /* every attribute the query names (conditions and select), in order of appearance
     * without repeats: search results show these on the matched spans */
    const struct traceql_field **attrs;
    size_t nattrs;
    struct matcher **matchers; /* owned; freed by traceql_query_free */
    size_t nmatchers, capmatchers;
};

/* An empty query (no root yet) with its own arena. NULL with VG_ENOMEM. */
struct traceql_query *traceql_query_new(struct vg_err *err);
/* Frees the arena and the matchers. Accepts NULL. */
void traceql_query_free(struct traceql_query *q);

/* Constructors used by the parser and by builders of queries (legacy tag search). All
 * return NULL when the arena is exhausted. */
struct traceql_field *traceql_field_new(struct traceql_query *q, enum traceql_field_kind k,
                                        size_t pos);
struct traceql_field *traceql_field_binary(struct traceql_query *q, enum traceql_op op,
                                           struct traceql_field *lhs,
                                           struct traceql_field *rhs, size_t pos);
/* Compiles the regex of a RE/NRE comparison whose right side is a static string and
 * keeps the matcher in q. 0, VG_EINVAL naming the regex error, VG_ENOMEM. */
int traceql_field_compile(struct traceql_query *q, struct traceql_field *f,
                          struct vg_err *err);
/* `attr text= value`: an attribute compared by its text form, as Tempo's legacy tag
 * search does (service.name=x http.status_code=500). name/value are copied. */
struct traceql_field *traceql_field_text_eq(struct traceql_query *q, enum traceql_scope scope,
                                            struct vg_str name, struct vg_str value);
/* Records an attribute field in q->attrs (skipping repeats). 0 or VG_ENOMEM. */
int traceql_query_note_attr(struct traceql_query *q, const struct traceql_field *f);

/* A single-stage pipeline over one spanset filter (NULL field = `{}`), set as q's root. */
int traceql_query_set_filter(struct traceql_query *q, struct traceql_field *f,
                             struct vg_err *err);

/* True when two values are comparable and `a op b` holds (op a comparison other than
 * RE/NRE). Mixed types are false for every operator, != included, and so is a nil on
 * either side (a missing attribute matches no condition; the evaluator handles the
 * literal nil, `.x = nil` / `.x != nil`, itself). Strings compare bytewise; statuses
 * and kinds only with = and !=. */
bool traceql_value_cmp(const struct traceql_value *a, enum traceql_op op,
                       const struct traceql_value *b);

#endif
