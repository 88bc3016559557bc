/* Tests server/api/tempo_search.c over two traces written into a real span store: the
 * trace of tests/unit/server/traceql/trace_fixture.h (frontend -> backend, errors) and a
 * newer one-span trace of service "cart" whose trace id has leading zeros. /api/search
 * with TraceQL and with legacy tags, field by field (ids, root names, times as strings,
 * spanSet/spanSets, shown attributes, spss, limit, windows, durations, metrics), the tag
 * name and value endpoints (v1 and v2, scopes, intrinsics, q filter), errors, and
 * allocation failure. JSON is read back with jansson. */
#include "../fixture.h"

#include "../../../../server/api/tempo.h"
#include "../../../../server/api/tempo_search.h"
#include "../traceql/trace_fixture.h"

#include <jansson.h>

static struct server_fixture fx;
static struct http_response resp;
static json_t *doc;

#define CART_T0 (FX_T0 + 3600 * 1000000000LL) /* an hour after the fixture trace */

static const struct span_attr cart_res[] = {
    { .key = VG_STR("service.name"), .type = SPAN_VAL_STRING, .v.s = VG_STR("cart") },
};
static const struct span_attr cart_attrs[] = {
    { .key = VG_STR("http.status_code"), .type = SPAN_VAL_STRING, .v.s = VG_STR("500") },
    { .key = VG_STR("items"), .type = SPAN_VAL_DOUBLE, .v.d = 2.5 },
};

static void setup(void)
{
    fixture_open(&fx);
    fixture_open_traces(&fx);
    memset(&resp, 0, sizeof resp);
    vg_buf_init(&resp.body);
    struct span s[FX_N + 1];
    memcpy(s, fx_spans, sizeof fx_spans);
    s[FX_N] = (struct span){
        .trace_id = { [14] = 0x12, 0x34 }, .span_id = { 9 }, .service = VG_STR("cart"),
        .resource_attrs = cart_res, .nresource_attrs = 1, .name = VG_STR("checkout"),
        .kind = SPAN_KIND_SERVER, .status = SPAN_STATUS_OK, .start_ns = CART_T0,
        .end_ns = CART_T0 + 250 * FX_MS, .attrs = cart_attrs, .nattrs = 2,
    };
    struct spanstore_write_result wr;
    struct vg_err err;
    cr_assert_eq(spanstore_write(fx.v.traces, s, FX_N + 1, &wr, &err), 0, "%s", err.msg);
    cr_assert_eq(wr.accepted, FX_N + 1, "%s", wr.first_reject);
}

static void teardown(void)
{
    json_decref(doc);
    doc = NULL;
    vg_buf_free(&resp.body);
    fixture_close(&fx);
}

TestSuite(tempo_search, .init = setup, .fini = teardown, .timeout = 30);

/* GET path with "k", "v", ... NULL arguments; returns the body (and parses it into doc
 * when the status is 200). */
static const char *get(const char *path, ...)
{
    va_list ap;
    va_start(ap, path);
    fixture_vget(&fx, &mod_tempo, path, ap, &resp);
    va_end(ap);
    json_decref(doc);
    doc = NULL;
    if (resp.status == 200 && resp.body.len) {
        json_error_t je;
        doc = json_loads(vg_buf_cstr(&resp.body), 0, &je);
        cr_assert_not_null(doc, "%s: %s: %s", path, je.text, resp.body.p);
    }
    return vg_buf_cstr(&resp.body);
}

static const char *str_at(json_t *o, const char *path)
{
    json_t *v = o;
    char key[64];
    for (const char *p = path; v && *p;) {
        size_t n = strcspn(p, ".");
        snprintf(key, sizeof key, "%.*s", (int)n, p);
        v = key[0] >= '0' && key[0] <= '9' ? json_array_get(v, (size_t)atoi(key))
                                           : json_object_get(v, key);
        p += n + (p[n] == '.');
    }
    cr_assert(json_is_string(v), "%s is not a string", path);
    return json_string_value(v);
}

static json_int_t int_at(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_integer(v), "%s is not an integer", key);
    return json_integer_value(v);
}

static json_t *traces(void)
{
    json_t *t = json_object_get(doc, "traces");
    cr_assert(json_is_array(t));
    return t;
}

/* The attribute value object of key in a span's attributes, or NULL. */
static json_t *attr(json_t *span, const char *key)
{
    json_t *as = json_object_get(span, "attributes"), *a;
    size_t i;
    json_array_foreach(as, i, a)
        if (!strcmp(json_string_value(json_object_get(a, "key")), key))
            return json_object_get(a, "value");
    return NULL;
}

Test(tempo_search, traceql_result_fields)
{
    get("/api/search", "q", "{ status = error }", NULL);
    cr_assert_eq(resp.status, 200);
    cr_assert_str_eq(resp.content_type, "application/json");
    cr_assert_eq(json_array_size(traces()), 1);
    json_t *t = json_array_get(traces(), 0);
    cr_assert_str_eq(str_at(t, "traceID"), "ab000000000000000000000000000001");
    cr_assert_str_eq(str_at(t, "rootServiceName"), "frontend");
    cr_assert_str_eq(str_at(t, "rootTraceName"), "GET /");
    cr_assert_str_eq(str_at(t, "startTimeUnixNano"), "1700000000000000000");
    cr_assert_eq(int_at(t, "durationMs"), 100);
    json_t *set = json_object_get(t, "spanSet");
    cr_assert(json_equal(set, json_array_get(json_object_get(t, "spanSets"), 0)));
    cr_assert_eq(json_array_size(json_object_get(t, "spanSets")), 1);
    cr_assert_eq(int_at(set, "matched"), 2);
    json_t *spans = json_object_get(set, "spans");
    cr_assert_eq(json_array_size(spans), 2);
    json_t *b = json_array_get(spans, 0); /* in start order: B then C */
    cr_assert_str_eq(str_at(b, "spanID"), "0200000000000000");
    cr_assert_str_eq(str_at(b, "name"), "call backend");
    cr_assert_str_eq(str_at(b, "startTimeUnixNano"), "1700000000005000000");
    cr_assert_str_eq(str_at(b, "durationNanos"), "80000000");
    cr_assert_str_eq(str_at(attr(b, "service.name"), "stringValue"), "frontend");
    cr_assert_eq(json_array_size(json_object_get(b, "attributes")), 1);
    cr_assert_str_eq(str_at(json_array_get(spans, 1), "name"), "handle");
    json_t *m = json_object_get(doc, "metrics");
    cr_assert_geq(int_at(m, "inspectedTraces"), 1);
    cr_assert_str_eq(str_at(m, "inspectedSpans"), "5");
    cr_assert_null(json_object_get(m, "truncated"));
}

Test(tempo_search, newest_first_with_trimmed_ids_and_limit)
{
    get("/api/search", "q", "{}", NULL);
    cr_assert_eq(json_array_size(traces()), 2);
    cr_assert_str_eq(str_at(traces(), "0.traceID"), "1234");
    cr_assert_str_eq(str_at(traces(), "0.rootServiceName"), "cart");
    cr_assert_str_eq(str_at(traces(), "1.traceID"), "ab000000000000000000000000000001");
    cr_assert_eq(int_at(json_object_get(json_array_get(traces(), 1), "spanSet"), "matched"), 5);
    /* spss: three spans shown by default, as asked otherwise */
    cr_assert_eq(json_array_size(json_object_get(
                     json_object_get(json_array_get(traces(), 1), "spanSet"), "spans")), 3);
    get("/api/search", "q", "{}", "spss", "1", "limit", "1", NULL);
    cr_assert_eq(json_array_size(traces()), 1);
    cr_assert_str_eq(str_at(traces(), "0.traceID"), "1234");
    get("/api/search", "q", "{}", "spss", "5", NULL);
    cr_assert_eq(json_array_size(json_object_get(
                     json_object_get(json_array_get(traces(), 1), "spanSet"), "spans")), 5);
    /* no q and no tags: every trace, as {} */
    get("/api/search", NULL);
    cr_assert_eq(json_array_size(traces()), 2);
}

Test(tempo_search, attributes_named_by_the_query_are_shown)
{
    get("/api/search", "q", "{ .http.status_code = 500 } | select(resource.host.name, .items)",
        NULL);
    cr_assert_eq(json_array_size(traces()), 1);
    json_t *c = json_array_get(json_object_get(json_object_get(json_array_get(traces(), 0),
                                                               "spanSet"), "spans"), 0);
    cr_assert_str_eq(str_at(c, "name"), "handle");
    cr_assert_str_eq(str_at(attr(c, "service.name"), "stringValue"), "backend");
    cr_assert_str_eq(str_at(attr(c, "http.status_code"), "intValue"), "500");
    cr_assert_str_eq(str_at(attr(c, "host.name"), "stringValue"), "h2");
    cr_assert_null(attr(c, "items")); /* not on this span */
    get("/api/search", "q", "{ .items > 2 }", NULL);
    json_t *s = json_array_get(json_object_get(json_object_get(json_array_get(traces(), 0),
                                                               "spanSet"), "spans"), 0);
    cr_assert_eq(json_real_value(json_object_get(attr(s, "items"), "doubleValue")), 2.5);
}

Test(tempo_search, structural_and_pipeline_queries)
{
    get("/api/search", "q", "{ resource.service.name = \"frontend\" } >> { .db.system = \"postgres\" }",
        NULL);
    cr_assert_eq(json_array_size(traces()), 1);
    cr_assert_str_eq(str_at(traces(), "0.spanSet.spans.0.name"), "db query");
    get("/api/search", "q", "{ } | count() > 2", NULL);
    cr_assert_eq(json_array_size(traces()), 1);
    get("/api/search", "q", "{ } | avg(duration) > 200ms", NULL);
    cr_assert_eq(json_array_size(traces()), 1);
    cr_assert_str_eq(str_at(traces(), "0.traceID"), "1234");
}

Test(tempo_search, legacy_tags)
{
    /* text comparison: the int 500 of span C and the string "500" of the cart span */
    get("/api/search", "tags", "http.status_code=500", NULL);
    cr_assert_eq(json_array_size(traces()), 2);
    get("/api/search", "tags", "service.name=backend http.status_code=500", NULL);
    cr_assert_eq(json_array_size(traces()), 1);
    cr_assert_str_eq(str_at(traces(), "0.spanSet.spans.0.name"), "handle");
    get("/api/search", "tags", "name=\"call backend\" status=error", NULL);
    cr_assert_eq(json_array_size(traces()), 1);
    get("/api/search", "tags", "service.name=backend name=checkout", NULL);
    cr_assert_eq(json_array_size(traces()), 0);
    get("/api/search", "tags", "status=broken", NULL);
    cr_assert_eq(resp.status, 400);
    cr_assert_str_eq(resp.body.p, "invalid tags: status must be ok, error or unset\n");
    get("/api/search", "tags", "novalue", NULL);
    cr_assert_eq(resp.status, 400);
    get("/api/search", "tags", "a=\"open", NULL);
    cr_assert_eq(resp.status, 400);
}

Test(tempo_search, durations_and_window)
{
    get("/api/search", "minDuration", "200ms", NULL);
    cr_assert_eq(json_array_size(traces()), 1);
    cr_assert_str_eq(str_at(traces(), "0.traceID"), "1234");
    get("/api/search", "maxDuration", "0.1s", NULL);
    cr_assert_eq(json_array_size(traces()), 1);
    cr_assert_str_eq(str_at(traces(), "0.rootServiceName"), "frontend");
    get("/api/search", "minDuration", "1s", NULL);
    cr_assert_eq(json_array_size(traces()), 0);
    get("/api/search", "start", "1700001000", NULL); /* after the first trace */
    cr_assert_eq(json_array_size(traces()), 1);
    cr_assert_str_eq(str_at(traces(), "0.traceID"), "1234");
    get("/api/search", "start", "1699999999", "end", "1700000000", NULL);
    cr_assert_eq(json_array_size(traces()), 1);
    cr_assert_str_eq(str_at(traces(), "0.rootServiceName"), "frontend");
}

Test(tempo_search, bad_parameters)
{
    static const char *const bad[][2] = {
        { "limit", "0" }, { "limit", "x" }, { "spss", "1000" }, { "start", "-1" },
        { "minDuration", "5" }, { "maxDuration", "-1s" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        get("/api/search", bad[i][0], bad[i][1], NULL);
        cr_assert_eq(resp.status, 400, "%s=%s", bad[i][0], bad[i][1]);
        cr_assert(strstr(resp.body.p, bad[i][0]), "%s", resp.body.p);
    }
    get("/api/search", "start", "20", "end", "10", NULL);
    cr_assert_eq(resp.status, 400);
    get("/api/search", "minDuration", "2s", "maxDuration", "1s", NULL);
    cr_assert_eq(resp.status, 400);
    get("/api/search", "q", "{ .a = }", NULL);
    cr_assert_eq(resp.status, 400);
    cr_assert_str_eq(resp.body.p, "invalid TraceQL query: parse error at line 1, col 8: "
                                  "syntax error: unexpected }\n");
}

static bool has_string(json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
        if (json_is_string(v) && !strcmp(json_string_value(v), s))
            return true;
    return false;
}

Test(tempo_search, tag_names)
{
    get("/api/search/tags", NULL);
    json_t *names = json_object_get(doc, "tagNames");
    cr_assert(has_string(names, "http.status_code"));
    cr_assert(has_string(names, "service.name"));
    cr_assert(has_string(names, "db.system"));
    cr_assert(!has_string(names, "duration"));
    get("/api/search/tags", "scope", "resource", NULL);
    names = json_object_get(doc, "tagNames");
    cr_assert(has_string(names, "host.name"));
    cr_assert(!has_string(names, "db.system"));
    get("/api/search/tags", "scope", "intrinsic", NULL);
    names = json_object_get(doc, "tagNames");
    cr_assert(has_string(names, "duration"));
    cr_assert(has_string(names, "rootServiceName"));
    cr_assert(has_string(names, "span:status"));
    get("/api/search/tags", "scope", "nope", NULL);
    cr_assert_eq(resp.status, 400);

    get("/api/v2/search/tags", NULL);
    json_t *scopes = json_object_get(doc, "scopes");
    cr_assert_eq(json_array_size(scopes), 3);
    cr_assert_str_eq(str_at(scopes, "0.name"), "span");
    cr_assert(has_string(json_object_get(json_array_get(scopes, 0), "tags"), "db.system"));
    cr_assert(!has_string(json_object_get(json_array_get(scopes, 0), "tags"), "db.syst"));
    cr_assert_str_eq(str_at(scopes, "1.name"), "resource");
    cr_assert(has_string(json_object_get(json_array_get(scopes, 1), "tags"), "service.name"));
    cr_assert_str_eq(str_at(scopes, "2.name"), "intrinsic");
    cr_assert(has_string(json_object_get(json_array_get(scopes, 2), "tags"), "status"));
    get("/api/v2/search/tags", "scope", "span", NULL);
    cr_assert_eq(json_array_size(json_object_get(doc, "scopes")), 1);
}

/* The v2 value objects as "type:value" joined with spaces. */
static const char *v2_values(void)
{
    static char out[512];
    size_t n = 0;
    size_t i;
    json_t *v;
    out[0] = 0;
    json_array_foreach(json_object_get(doc, "tagValues"), i, v)
        n += (size_t)snprintf(out + n, sizeof out - n, "%s%s:%s", i ? " " : "",
                              str_at(v, "type"), str_at(v, "value"));
    return out;
}

Test(tempo_search, tag_values)
{
    get("/api/search/tag/service.name/values", NULL);
    json_t *vals = json_object_get(doc, "tagValues");
    cr_assert_eq(json_array_size(vals), 3);
    cr_assert_str_eq(str_at(vals, "0"), "backend");
    cr_assert_str_eq(str_at(vals, "1"), "cart");
    cr_assert_str_eq(str_at(vals, "2"), "frontend");
    get("/api/search/tag/http.status_code/values", NULL); /* int and string 500: one */
    cr_assert_eq(json_array_size(json_object_get(doc, "tagValues")), 2);

    get("/api/v2/search/tag/resource.service.name/values", NULL);
    cr_assert_str_eq(v2_values(), "string:backend string:cart string:frontend");
    get("/api/v2/search/tag/.http.status_code/values", NULL);
    cr_assert_str_eq(v2_values(), "int:200 int:500 string:500");
    get("/api/v2/search/tag/span.http.status_code/values", NULL);
    cr_assert(strstr(v2_values(), "int:500"), "%s", v2_values());
    cr_assert(strstr(v2_values(), "string:500"), "%s", v2_values());
    get("/api/v2/search/tag/status/values", NULL);
    cr_assert_str_eq(v2_values(), "keyword:error keyword:ok keyword:unset");
    get("/api/v2/search/tag/kind/values", NULL);
    cr_assert_eq(json_array_size(json_object_get(doc, "tagValues")), 6);
    get("/api/v2/search/tag/name/values", NULL);
    cr_assert_str_eq(v2_values(), "string:GET / string:call backend string:checkout "
                                  "string:db query string:handle string:render");
    get("/api/v2/search/tag/rootServiceName/values", NULL);
    cr_assert(strstr(v2_values(), "string:cart"));
    /* q narrows the values to the spans it matches */
    get("/api/v2/search/tag/name/values", "q", "{ status = error }", NULL);
    cr_assert_str_eq(v2_values(), "string:call backend string:handle");
    get("/api/v2/search/tag/resource.service.name/values", "q", "{ kind = server }", NULL);
    cr_assert_str_eq(v2_values(), "string:backend string:cart string:frontend");
    get("/api/v2/search/tag/status/values", "q", "{ resource.service.name = \"backend\" }", NULL);
    cr_assert_str_eq(v2_values(), "keyword:error keyword:ok");
    get("/api/v2/search/tag/.items/values", "q", "{ }", NULL); /* {} = no filter */
    cr_assert_str_eq(v2_values(), "float:2.5");
    get("/api/v2/search/tag/name/values", "q", "{ .a = ", NULL);
    cr_assert_eq(resp.status, 400);
    get("/api/search/tag/x", NULL);
    cr_assert_eq(resp.status, 400);
    get("/api/search/tag//values", NULL);
    cr_assert_eq(resp.status, 400);
}

Test(tempo_search, buildinfo)
{
    get("/api/status/buildinfo", NULL);
    cr_assert_eq(resp.status, 200);
    cr_assert_str_eq(str_at(doc, "version"), TEMPO_API_VERSION);
    cr_assert_str_eq(str_at(doc, "revision"), "vigil-" VIGIL_VERSION);
    cr_assert(json_is_string(json_object_get(doc, "goVersion")));
    cr_assert(json_is_string(json_object_get(doc, "buildDate")));
}

Test(tempo_search, allocation_failure_answers_an_error)
{
    static const char *const paths[] = { "/api/search", "/api/v2/search/tags",
                                         "/api/v2/search/tag/name/values" };
    for (size_t p = 0; p < 3; p++) {
        bool done = false;
        for (uint64_t n = 1; n < 2000 && !done; n++) {
            fx.fail_after = n;
            get(paths[p], "q", "{ status = error } | select(.http.status_code)", NULL);
            fx.fail_after = 0;
            if (resp.status == 200 && doc)
                done = true;
            else
                cr_assert(resp.status >= 500 || resp.body.len == 0, "%s n=%llu: %d %s",
                          paths[p], (unsigned long long)n, resp.status, resp.body.p);
        }
        cr_assert(done, "%s never succeeded", paths[p]);
    }
}
