/* Tests server/traceql/plan.c: which conditions of a query become span store filters
 * (service, span name, status, kind, duration bounds, attribute matchers with scopes,
 * trace duration), which are left to the exact evaluation (||, !=, regexes on
 * intrinsics, conditions under !, rootName), and that only one spanset's span-level
 * conditions are used. */
#include "../../../../server/traceql/parser.h"
#include "../../../../server/traceql/plan.h"

#include <criterion/criterion.h>
#include <string.h>

static struct traceql_query *q;
static struct traceql_plan p;

static const struct spanstore_query *plan(const char *text)
{
    struct vg_err err;
    traceql_plan_free(&p);
    traceql_query_free(q);
    q = traceql_parse(text, strlen(text), &err);
    cr_assert_not_null(q, "%s: %s", text, err.msg);
    cr_assert_eq(traceql_plan_build(q, &p, &err), 0, "%s", err.msg);
    return &p.q;
}

static void fini(void)
{
    traceql_plan_free(&p);
    traceql_query_free(q);
    q = NULL;
}

TestSuite(traceql_plan, .fini = fini);

static void assert_empty(const struct spanstore_query *s, const char *what)
{
    cr_assert(!s->service.len && !s->span_name.len && s->status < 0 && s->kind < 0 &&
              !s->min_duration_ns && !s->max_duration_ns && !s->min_trace_duration_ns &&
              !s->max_trace_duration_ns && !s->nattrs, "%s planned a filter", what);
}

Test(traceql_plan, intrinsics_become_filters)
{
    const struct spanstore_query *s = plan("{ name = \"GET /\" && status = error && "
                                           "kind = server && duration > 100ms && "
                                           "duration <= 2s }");
    cr_assert(vg_str_eq_c(s->span_name, "GET /"));
    cr_assert_eq(s->status, SPAN_STATUS_ERROR);
    cr_assert_eq(s->kind, SPAN_KIND_SERVER);
    cr_assert_eq(s->min_duration_ns, 100000001);
    cr_assert_eq(s->max_duration_ns, 2000000000);
    s = plan("{ 50ms <= span:duration && duration < 1s && \"x\" = span:name }");
    cr_assert_eq(s->min_duration_ns, 50000000);
    cr_assert_eq(s->max_duration_ns, 999999999);
    cr_assert(vg_str_eq_c(s->span_name, "x"));
    s = plan("{ duration = 5ms }");
    cr_assert_eq(s->min_duration_ns, 5000000);
    cr_assert_eq(s->max_duration_ns, 5000000);
}

Test(traceql_plan, service_and_attributes)
{
    const struct spanstore_query *s = plan("{ resource.service.name = \"shop\" && "
                                           "span.http.status_code = 500 && .db.system =~ "
                                           "\"post.*\" && .ok = true && resource.region = \"eu\" }");
    cr_assert(vg_str_eq_c(s->service, "shop"));
    cr_assert_eq(s->nattrs, 4);
    cr_assert_eq(s->attrs[0].scope, SPANSTORE_SCOPE_SPAN);
    cr_assert_str_eq(s->attrs[0].m->name, "http.status_code");
    cr_assert_eq(s->attrs[0].m->op, MATCH_EQ);
    cr_assert_str_eq(s->attrs[0].m->value, "500");
    cr_assert_eq(s->attrs[1].scope, SPANSTORE_SCOPE_ANY);
    cr_assert_eq(s->attrs[1].m->op, MATCH_RE);
    cr_assert(matcher_matches(s->attrs[1].m, VG_STR("postgres")));
    cr_assert_str_eq(s->attrs[2].m->value, "true");
    cr_assert_eq(s->attrs[3].scope, SPANSTORE_SCOPE_RESOURCE);
    s = plan("{ .service.name = \"a\" }");
    cr_assert(vg_str_eq_c(s->service, "a"));
    cr_assert_eq(s->nattrs, 0);
    /* span.service.name is a span attribute, not the service */
    s = plan("{ span.service.name = \"a\" }");
    cr_assert(!s->service.len);
    cr_assert_eq(s->nattrs, 1);
}

Test(traceql_plan, trace_duration_from_any_necessary_spanset)
{
    const struct spanstore_query *s = plan("{ traceDuration > 1s } && { name = \"a\" } >> "
                                           "{ trace:duration < 10s }");
    cr_assert_eq(s->min_trace_duration_ns, 1000000001);
    cr_assert_eq(s->max_trace_duration_ns, 9999999999);
    cr_assert(vg_str_eq_c(s->span_name, "a"));
}

Test(traceql_plan, left_to_the_evaluation)
{
    assert_empty(plan("{}"), "{}");
    assert_empty(plan("{ name = \"a\" || status = error }"), "||");
    assert_empty(plan("{ name = \"a\" } || { status = error }"), "spanset ||");
    assert_empty(plan("{ name != \"a\" && .x != 1 && .y !~ \"z\" }"), "negations");
    assert_empty(plan("{ name =~ \"a.*\" }"), "intrinsic regex");
    assert_empty(plan("{ !(name = \"a\") }"), "!");
    assert_empty(plan("{ rootName = \"a\" && rootServiceName = \"b\" }"), "root");
    assert_empty(plan("{ .x > 3 && .y = 1.5 && .z = nil }"), "other types");
    assert_empty(plan("{ 1 = 1 && duration > -5ms && duration < 1ns }"), "useless bounds");
    assert_empty(plan("{ } | count() > 3"), "aggregates");
    assert_empty(plan("{ traceDuration != 1s }"), "trace !=");
}

Test(traceql_plan, one_spanset_supplies_span_filters)
{
    /* service and name score higher than a status */
    const struct spanstore_query *s = plan("{ status = error } && { resource.service.name = "
                                           "\"db\" && name = \"q\" }");
    cr_assert(vg_str_eq_c(s->service, "db"));
    cr_assert(vg_str_eq_c(s->span_name, "q"));
    cr_assert_lt(s->status, 0);
    s = plan("{ kind = client } > { status = error }");
    cr_assert_eq(s->status, SPAN_STATUS_ERROR);
    cr_assert_lt(s->kind, 0);
    /* a later spanset stage is necessary too */
    s = plan("{ } | { name = \"x\" } | count() > 1");
    cr_assert(vg_str_eq_c(s->span_name, "x"));
    s = plan("({ name = \"x\" } | count() > 1) && { }");
    cr_assert(vg_str_eq_c(s->span_name, "x"));
}

Test(traceql_plan, attribute_filters_are_bounded)
{
    const struct spanstore_query *s = plan("{ .a=1 && .b=1 && .c=1 && .d=1 && .e=1 && .f=1 && "
                                           ".g=1 && .h=1 && .i=1 && .j=1 }");
    cr_assert_eq(s->nattrs, TRACEQL_PLAN_MAX_ATTRS);
}
