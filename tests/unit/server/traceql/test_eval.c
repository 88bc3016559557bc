/* Tests server/traceql/eval.c over the hand-built trace of trace_fixture.h: every
 * comparison operator on intrinsics and on typed attributes, scopes, nil, regex
 * anchoring, boolean logic, spanset && and ||, the structural operators, pipelines
 * with aggregates and select, and allocation failure. */
#include "trace_fixture.h"

#include "../../../../storage/base/vg_alloc.h"

TestSuite(traceql_eval, .timeout = 30);

Test(traceql_eval, empty_spanset_matches_every_span)
{
    cr_assert_str_eq(fx_run("{}"), "ABCDE");
    cr_assert_str_eq(fx_run("{ true }"), "ABCDE");
    cr_assert_str_eq(fx_run("{ false }"), "");
}

Test(traceql_eval, intrinsics)
{
    cr_assert_str_eq(fx_run("{ name = \"handle\" }"), "C");
    cr_assert_str_eq(fx_run("{ span:name != \"handle\" }"), "ABDE");
    cr_assert_str_eq(fx_run("{ status = error }"), "BC");
    cr_assert_str_eq(fx_run("{ status = ok }"), "D");
    cr_assert_str_eq(fx_run("{ span:status = unset }"), "AE");
    cr_assert_str_eq(fx_run("{ status != error }"), "ADE");
    cr_assert_str_eq(fx_run("{ statusMessage = \"boom\" }"), "C");
    cr_assert_str_eq(fx_run("{ kind = server }"), "AC");
    cr_assert_str_eq(fx_run("{ kind = client }"), "BD");
    cr_assert_str_eq(fx_run("{ span:kind = internal }"), "E");
    cr_assert_str_eq(fx_run("{ kind = producer }"), "");
    cr_assert_str_eq(fx_run("{ rootName = \"GET /\" }"), "ABCDE");
    cr_assert_str_eq(fx_run("{ trace:rootService = \"frontend\" && kind = server }"), "AC");
    cr_assert_str_eq(fx_run("{ rootServiceName = \"backend\" }"), "");
    cr_assert_str_eq(fx_run("{ traceDuration = 100ms }"), "ABCDE");
    cr_assert_str_eq(fx_run("{ trace:duration > 100ms }"), "");
}

Test(traceql_eval, duration_comparisons)
{
    cr_assert_str_eq(fx_run("{ duration > 60ms }"), "AB");
    cr_assert_str_eq(fx_run("{ duration >= 60ms }"), "ABC");
    cr_assert_str_eq(fx_run("{ duration < 10ms }"), "E");
    cr_assert_str_eq(fx_run("{ duration <= 10ms }"), "DE");
    cr_assert_str_eq(fx_run("{ duration = 0.06s }"), "C");
    cr_assert_str_eq(fx_run("{ span:duration != 5000us }"), "ABCD");
    cr_assert_str_eq(fx_run("{ duration > 1m }"), "");
}

Test(traceql_eval, attributes_by_type)
{
    cr_assert_str_eq(fx_run("{ span.http.status_code = 500 }"), "C");
    cr_assert_str_eq(fx_run("{ .http.status_code >= 200 }"), "AC");
    cr_assert_str_eq(fx_run("{ .http.status_code > 200 }"), "C");
    cr_assert_str_eq(fx_run("{ .http.status_code < 500 }"), "A");
    cr_assert_str_eq(fx_run("{ .http.status_code <= 500.0 }"), "AC");
    cr_assert_str_eq(fx_run("{ .http.status_code != 200 }"), "C"); /* missing: false */
    /* a string never equals an int, not even for != */
    cr_assert_str_eq(fx_run("{ .http.status_code = \"500\" }"), "");
    cr_assert_str_eq(fx_run("{ .http.status_code != \"500\" }"), "");
    cr_assert_str_eq(fx_run("{ .ratio = 0.5 }"), "C");
    cr_assert_str_eq(fx_run("{ .ratio < 1 }"), "C");
    cr_assert_str_eq(fx_run("{ .retry = true }"), "C");
    cr_assert_str_eq(fx_run("{ .retry != false }"), "C");
    cr_assert_str_eq(fx_run("{ .retry }"), "C");
    cr_assert_str_eq(fx_run("{ .http.method = \"GET\" }"), "A");
    cr_assert_str_eq(fx_run("{ .http.method > \"A\" }"), "A");
    cr_assert_str_eq(fx_run("{ .blob = \"\\x01\\x02\" }"), ""); /* bytes take no part */
}

Test(traceql_eval, scopes)
{
    cr_assert_str_eq(fx_run("{ resource.service.name = \"backend\" }"), "CD");
    cr_assert_str_eq(fx_run("{ .service.name = \"frontend\" }"), "ABE");
    cr_assert_str_eq(fx_run("{ span.service.name = \"frontend\" }"), "");
    /* unscoped: the span attribute wins over the resource attribute */
    cr_assert_str_eq(fx_run("{ .host.name = \"span-host\" }"), "B");
    cr_assert_str_eq(fx_run("{ .host.name = \"h1\" }"), "AE");
    cr_assert_str_eq(fx_run("{ resource.host.name = \"h1\" }"), "ABE");
    cr_assert_str_eq(fx_run("{ span.host.name = \"h1\" }"), "");
}

Test(traceql_eval, service_falls_back_to_the_span_service)
{
    struct span s = fx_spans[1];
    s.resource_attrs = NULL;
    s.nresource_attrs = 0;
    cr_assert_str_eq(fx_run_spans("{ resource.service.name = \"frontend\" }", &s, 1), "A");
}

Test(traceql_eval, nil)
{
    cr_assert_str_eq(fx_run("{ .db.system != nil }"), "D");
    cr_assert_str_eq(fx_run("{ .db.system = nil }"), "ABCE");
    cr_assert_str_eq(fx_run("{ nil = span.retry }"), "ABDE");
}

Test(traceql_eval, regex_is_anchored)
{
    cr_assert_str_eq(fx_run("{ name =~ \"hand\" }"), "");
    cr_assert_str_eq(fx_run("{ name =~ \"hand.*\" }"), "C");
    cr_assert_str_eq(fx_run("{ name =~ \".*e.*\" }"), "BCDE"); /* "GET /" has no e */
    cr_assert_str_eq(fx_run("{ name !~ \".*backend|render\" }"), "ACD");
    cr_assert_str_eq(fx_run("{ .db.system =~ \"post.*\" }"), "D");
    cr_assert_str_eq(fx_run("{ .http.status_code =~ \"5.*\" }"), ""); /* strings only */
    cr_assert_str_eq(fx_run("{ .db.system !~ \"x\" }"), "D");        /* missing: false */
}

Test(traceql_eval, boolean_logic)
{
    cr_assert_str_eq(fx_run("{ kind = server && status = error }"), "C");
    cr_assert_str_eq(fx_run("{ kind = internal || status = ok }"), "DE");
    cr_assert_str_eq(fx_run("{ (kind = server || kind = client) && duration < 70ms }"), "CD");
    cr_assert_str_eq(fx_run("{ !(status = error) }"), "ADE");
    cr_assert_str_eq(fx_run("{ !.retry }"), "");
    cr_assert_str_eq(fx_run("{ 1 = 1 && name = \"render\" }"), "E");
}

Test(traceql_eval, spanset_and_or)
{
    cr_assert_str_eq(fx_run("{ name = \"render\" } && { status = ok }"), "DE");
    cr_assert_str_eq(fx_run("{ name = \"render\" } && { kind = producer }"), "");
    cr_assert_str_eq(fx_run("{ name = \"render\" } || { kind = producer }"), "E");
    cr_assert_str_eq(fx_run("{ kind = producer } || { status = ok }"), "D");
}

Test(traceql_eval, structural)
{
    /* > child: right side spans whose parent is on the left */
    cr_assert_str_eq(fx_run("{ name = \"GET /\" } > { }"), "BE");
    cr_assert_str_eq(fx_run("{ kind = client } > { kind = server }"), "C");
    /* >> descendant */
    cr_assert_str_eq(fx_run("{ name = \"GET /\" } >> { status = error }"), "BC");
    cr_assert_str_eq(fx_run("{ .service.name = \"frontend\" } >> { .db.system = \"postgres\" }"),
                     "D");
    cr_assert_str_eq(fx_run("{ name = \"render\" } >> { }"), "");
    /* < parent: right side spans with a child on the left */
    cr_assert_str_eq(fx_run("{ status = error } < { }"), "AB");
    /* << ancestor */
    cr_assert_str_eq(fx_run("{ name = \"db query\" } << { }"), "ABC");
    cr_assert_str_eq(fx_run("{ name = \"db query\" } << { kind = server }"), "AC");
    /* ~ sibling: another span with the same parent */
    cr_assert_str_eq(fx_run("{ name = \"render\" } ~ { }"), "B");
    cr_assert_str_eq(fx_run("{ } ~ { }"), "BE");
    cr_assert_str_eq(fx_run("{ name = \"handle\" } ~ { }"), "");
    /* structural binds tighter than && */
    cr_assert_str_eq(fx_run("{ kind = internal } && { kind = client } > { kind = server }"),
                     "CE");
}

Test(traceql_eval, parent_loops_are_bounded)
{
    struct span s[2] = { fx_spans[1], fx_spans[2] };
    s[0].parent_span_id[0] = 2; /* A's parent is B, B's parent is A */
    cr_assert_str_eq(fx_run_spans("{ name = \"GET /\" } >> { }", s, 2), "AB");
    cr_assert_str_eq(fx_run_spans("{ name = \"GET /\" } << { }", s, 2), "AB");
    cr_assert_str_eq(fx_run_spans("{ rootName = \"GET /\" }", s, 2), ""); /* no root */
}

Test(traceql_eval, pipelines)
{
    cr_assert_str_eq(fx_run("{ status = error } | count() = 2"), "BC");
    cr_assert_str_eq(fx_run("{ status = error } | count() > 2"), "");
    cr_assert_str_eq(fx_run("{ } | count() >= 5"), "ABCDE");
    cr_assert_str_eq(fx_run("{ status = error } | avg(duration) = 70ms"), "BC");
    cr_assert_str_eq(fx_run("{ status = error } | avg(duration) > 70ms"), "");
    cr_assert_str_eq(fx_run("{ } | min(duration) < 6ms"), "ABCDE");
    cr_assert_str_eq(fx_run("{ } | max(duration) <= 99ms"), "");
    cr_assert_str_eq(fx_run("{ kind = client } | sum(duration) = 90ms"), "BD");
    cr_assert_str_eq(fx_run("{ } | sum(.http.status_code) = 700"), "ABCDE");
    cr_assert_str_eq(fx_run("{ } | avg(.db.system) > 0"), ""); /* no numbers */
    cr_assert_str_eq(fx_run("{ } | { kind = server }"), "AC");
    cr_assert_str_eq(fx_run("{ } | { kind = server } | count() = 1"), "");
    cr_assert_str_eq(fx_run("{ status = error } | select(.http.status_code, resource.host.name)"),
                     "BC");
    cr_assert_str_eq(fx_run("({ kind = server } | count() = 2) && { name = \"render\" }"),
                     "ACE");
    cr_assert_str_eq(fx_run("{ } | count() > -1"), "ABCDE");
}

Test(traceql_eval, empty_trace)
{
    cr_assert_str_eq(fx_run_spans("{}", NULL, 0), "");
    cr_assert_str_eq(fx_run_spans("{} | count() = 0", NULL, 0), "");
}

Test(traceql_eval, allocation_failure)
{
    struct vg_err err;
    const char *text = "{ kind = client } >> { status = error } | avg(duration) > 1ms";
    struct traceql_query *q = traceql_parse(text, strlen(text), &err);
    cr_assert_not_null(q);
    struct vg_arena *a = vg_arena_new(64);
    vg_arena_set_limit(a, 64);
    struct traceql_match m;
    cr_assert_eq(traceql_eval(q, fx_spans, FX_N, a, &m, &err), VG_ENOMEM);
    cr_assert(strstr(err.msg, "out of memory"));
    vg_arena_free(a);
    bool ok = false;
    for (uint64_t n = 1; n < 100 && !ok; n++) {
        a = vg_arena_new(0);
        vg_alloc_fail_after(n);
        int rc = traceql_eval(q, fx_spans, FX_N, a, &m, &err);
        vg_alloc_fail_after(0);
        cr_assert(rc == 0 || rc == VG_ENOMEM);
        ok = rc == 0;
        if (ok)
            cr_assert_eq(m.matched, 1); /* C */
        vg_arena_free(a);
    }
    cr_assert(ok);
    traceql_query_free(q);
}
