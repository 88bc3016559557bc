/* Tests server/traceql/parser.c: the trees it builds (precedence, associativity, stages,
 * attributes noted for results), Tempo-style error messages with line and column, limits,
 * and allocation failure. */
#include "../../../../server/traceql/parser.h"
#include "../../../../storage/base/vg_alloc.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

static struct traceql_query *parse(const char *s)
{
    struct vg_err err;
    struct traceql_query *q = traceql_parse(s, strlen(s), &err);
    cr_assert_not_null(q, "%s: %s", s, err.msg);
    return q;
}

static void parse_error(const char *s, const char *want)
{
    struct vg_err err;
    struct traceql_query *q = traceql_parse(s, strlen(s), &err);
    cr_assert_null(q, "%s parsed", s);
    cr_assert_eq(err.code, VG_EINVAL);
    cr_assert_str_eq(err.msg, want, "%s", s);
}

Test(traceql_parser, spanset_filter_tree)
{
    struct traceql_query *q = parse("{ .a = 1 || .b = 2 && !(name =~ \"x.*\") }");
    cr_assert_eq(q->root->n, 1);
    const struct traceql_set *s = q->root->stages[0].u.set;
    cr_assert_eq(s->kind, TQ_SET_FILTER);
    const struct traceql_field *f = s->u.filter;
    cr_assert_eq(f->kind, TQ_FIELD_BINARY);
    cr_assert_eq(f->u.bin.op, TQ_OP_OR); /* && binds tighter */
    const struct traceql_field *r = f->u.bin.rhs;
    cr_assert_eq(r->u.bin.op, TQ_OP_AND);
    cr_assert_eq(r->u.bin.rhs->kind, TQ_FIELD_NOT);
    const struct traceql_field *re = r->u.bin.rhs->u.bin.lhs;
    cr_assert_eq(re->u.bin.op, TQ_OP_RE);
    cr_assert_not_null(re->u.bin.re);
    cr_assert_eq(re->u.bin.lhs->u.intrinsic, TQ_I_NAME);
    cr_assert_eq(f->u.bin.lhs->u.bin.rhs->u.value.type, TQ_INT);
    cr_assert_eq(q->nattrs, 2);
    cr_assert(vg_str_eq_c(q->attrs[0]->u.attr.name, "a"));
    traceql_query_free(q);
}

Test(traceql_parser, statics)
{
    struct traceql_query *q = parse("{ .a = -1.5 && .b = -3 && .c = -2ms && .d = \"s\" && "
                                    ".e = false && .f = nil && status = ok && kind = consumer }");
    const struct traceql_field *f = q->root->stages[0].u.set->u.filter;
    const struct traceql_value *v[8];
    for (int i = 7; i >= 0; i--) {
        const struct traceql_field *c = i ? f->u.bin.rhs : f;
        v[i] = &c->u.bin.rhs->u.value;
        if (i)
            f = f->u.bin.lhs;
    }
    cr_assert_eq(v[0]->type, TQ_FLOAT);
    cr_assert_float_eq(v[0]->v.f, -1.5, 1e-12);
    cr_assert_eq(v[1]->v.i, -3);
    cr_assert_eq(v[2]->type, TQ_DURATION);
    cr_assert_eq(v[2]->v.i, -2000000);
    cr_assert(vg_str_eq_c(v[3]->v.s, "s"));
    cr_assert_eq(v[4]->type, TQ_BOOL);
    cr_assert_eq(v[5]->type, TQ_NIL);
    cr_assert_eq(v[6]->type, TQ_STATUS);
    cr_assert_eq(v[6]->v.i, 1);
    cr_assert_eq(v[7]->type, TQ_KIND);
    cr_assert_eq(v[7]->v.i, 5);
    traceql_query_free(q);
}

/* The filter's intrinsic as a one-letter tag: { name = "a" } is 'a'. */
static char tag(const struct traceql_set *s)
{
    return s->kind == TQ_SET_FILTER ? s->u.filter->u.bin.rhs->u.value.v.s.p[0] : '?';
}

Test(traceql_parser, spanset_operator_precedence)
{
    /* || < && < structural, all left-associative */
    struct traceql_query *q = parse("{name=\"a\"} > {name=\"b\"} >> {name=\"c\"} && "
                                    "{name=\"d\"} || {name=\"e\"} ~ {name=\"f\"}");
    const struct traceql_set *s = q->root->stages[0].u.set;
    cr_assert_eq(s->u.bin.op, TQ_SET_OR);
    const struct traceql_set *l = s->u.bin.lhs, *r = s->u.bin.rhs;
    cr_assert_eq(r->u.bin.op, TQ_SET_SIBLING);
    cr_assert_eq(tag(r->u.bin.lhs), 'e');
    cr_assert_eq(l->u.bin.op, TQ_SET_AND);
    cr_assert_eq(tag(l->u.bin.rhs), 'd');
    const struct traceql_set *st = l->u.bin.lhs;
    cr_assert_eq(st->u.bin.op, TQ_SET_DESC);
    cr_assert_eq(tag(st->u.bin.rhs), 'c');
    cr_assert_eq(st->u.bin.lhs->u.bin.op, TQ_SET_CHILD);
    cr_assert_eq(tag(st->u.bin.lhs->u.bin.lhs), 'a');
    traceql_query_free(q);
    q = parse("{} < {} << {}");
    cr_assert_eq(q->root->stages[0].u.set->u.bin.op, TQ_SET_ANCESTOR);
    cr_assert_eq(q->root->stages[0].u.set->u.bin.lhs->u.bin.op, TQ_SET_PARENT);
    traceql_query_free(q);
}

Test(traceql_parser, pipelines)
{
    struct traceql_query *q = parse("({ status = error } | count() > 1) && {} | "
                                    "avg(duration) >= 1.5s | { kind = server } | "
                                    "select(span.a, resource.b, name) | max(.x) < -2");
    cr_assert_eq(q->root->n, 5);
    const struct traceql_stage *st = q->root->stages;
    cr_assert_eq(st[0].kind, TQ_STAGE_SET);
    cr_assert_eq(st[0].u.set->u.bin.lhs->kind, TQ_SET_PIPELINE);
    cr_assert_eq(st[0].u.set->u.bin.lhs->u.pipe->stages[1].u.scalar.agg, TQ_AGG_COUNT);
    cr_assert_eq(st[1].kind, TQ_STAGE_SCALAR);
    cr_assert_eq(st[1].u.scalar.agg, TQ_AGG_AVG);
    cr_assert_eq(st[1].u.scalar.op, TQ_OP_GTE);
    cr_assert_eq(st[1].u.scalar.value.v.i, 1500000000);
    cr_assert_eq(st[2].kind, TQ_STAGE_SET);
    cr_assert_eq(st[3].kind, TQ_STAGE_SELECT);
    cr_assert_eq(st[3].u.select.n, 3);
    cr_assert_eq(st[4].u.scalar.agg, TQ_AGG_MAX);
    cr_assert_eq(st[4].u.scalar.value.v.i, -2);
    cr_assert_eq(q->nattrs, 3); /* span.a, resource.b, .x */
    cr_assert_eq(q->attrs[1]->u.attr.scope, TQ_SCOPE_RESOURCE);
    traceql_query_free(q);
    q = parse("{}");
    cr_assert_null(q->root->stages[0].u.set->u.filter);
    traceql_query_free(q);
}

Test(traceql_parser, errors_name_line_and_column)
{
    parse_error("{ .a = }", "parse error at line 1, col 8: syntax error: unexpected }");
    parse_error("{ .a = 1", "parse error at line 1, col 9: syntax error: unexpected end of input");
    parse_error("", "parse error at line 1, col 1: syntax error: unexpected end of input, "
                    "expecting {");
    parse_error("{ }\n| count() > \"x\"",
                "parse error at line 2, col 13: count() compares with a number or a duration");
    parse_error("{ name = \"x }", "parse error at line 1, col 10: literal not terminated");
    parse_error("{ foo = 1 }", "parse error at line 1, col 3: unknown identifier \"foo\"");
    parse_error("{ .a =~ 1 }", "parse error at line 1, col 9: the right side of =~ must be a "
                               "string");
    struct vg_err err;
    cr_assert_null(traceql_parse("{ .a =~ \"(\" }", 13, &err));
    cr_assert(!strncmp(err.msg, "parse error at line 1, col 9: ", 30), "%s", err.msg);
    cr_assert(strstr(err.msg, "parenthesis"), "%s", err.msg);
    parse_error("{ 1 }", "parse error at line 1, col 3: a spanset filter must be a boolean "
                         "expression");
    parse_error("{ name }", "parse error at line 1, col 3: a spanset filter must be a boolean "
                            "expression");
    parse_error("{} | avg() > 1", "parse error at line 1, col 6: avg() needs a field");
    parse_error("{} | count(.a) > 1", "parse error at line 1, col 12: syntax error: unexpected "
                                      "ATTRIBUTE");
    parse_error("{} | count() =~ 1", "parse error at line 1, col 14: syntax error: unexpected =~");
    parse_error("{} {}", "parse error at line 1, col 4: syntax error: unexpected {");
    parse_error("count() > 1", "parse error at line 1, col 1: syntax error: unexpected AGGREGATE");
    parse_error("{ .a = - \"x\" }", "parse error at line 1, col 8: syntax error: unexpected -");
    parse_error("{ .a = 1 } | select()", "parse error at line 1, col 21: syntax error: "
                                         "unexpected )");
    parse_error("{ .a = 1 } && ", "parse error at line 1, col 15: syntax error: unexpected end "
                                  "of input");
}

Test(traceql_parser, limits)
{
    char q[TRACEQL_MAX_QUERY_LEN + 1];
    memset(q, ' ', sizeof q - 1);
    q[0] = '{';
    q[sizeof q - 2] = '}';
    q[sizeof q - 1] = 0;
    struct vg_err err;
    cr_assert_null(traceql_parse(q, strlen(q), &err));
    cr_assert(strstr(err.msg, "longer than the limit"));
    char deep[1200];
    size_t n = 0;
    n += (size_t)sprintf(deep + n, "{ ");
    for (int i = 0; i < 300; i++)
        deep[n++] = '(';
    n += (size_t)sprintf(deep + n, "true");
    for (int i = 0; i < 300; i++)
        deep[n++] = ')';
    n += (size_t)sprintf(deep + n, " }");
    cr_assert_null(traceql_parse(deep, n, &err));
    cr_assert(strstr(err.msg, "nesting too deep"), "%s", err.msg);
    /* not NUL-terminated: the length is what counts */
    struct traceql_query *parsed = traceql_parse("{}xyz", 2, &err);
    cr_assert_not_null(parsed);
    traceql_query_free(parsed);
}

Test(traceql_parser, allocation_failure)
{
    const char *s = "{ .a =~ \"x\" && name = \"n\" } >> { .b = 1 } | count() > 1 | select(.c)";
    for (uint64_t n = 1; n < 200; n++) {
        struct vg_err err;
        vg_alloc_fail_after(n);
        struct traceql_query *q = traceql_parse(s, strlen(s), &err);
        vg_alloc_fail_after(0);
        if (q) {
            traceql_query_free(q);
            return;
        }
        cr_assert(err.code == VG_ENOMEM || err.code == VG_EINVAL, "%s", err.msg);
    }
    cr_assert_fail("never parsed");
}
