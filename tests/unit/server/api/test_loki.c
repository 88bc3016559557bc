/* Tests server/api/loki.c: Loki's parameter rules (times, bounds with since, limit,
 * default step, selectors), the index endpoints against a real log store, field by
 * field (labels, label values, series, index/stats, index/volume and volume_range with
 * every grouping), format_query, buildinfo, /ready, Loki's plain-text errors and
 * allocation failure. */
#include "loki_fixture.h"

#define NS 1000000000LL

static int64_t T; /* a whole second a minute ago, in ns */
static char start_s[32], end_s[32];

static void setup(void)
{
    lf_open();
    T = (lf_now_s() - 60) * NS;
    snprintf(start_s, sizeof start_s, "%lld", (long long)(T / NS - 600));
    snprintf(end_s, sizeof end_s, "%lld", (long long)(T / NS + 1));
    lf_push(T - 2 * NS, "app=web,env=prod", "trace_id=abc", "GET /a 200");     /* 10 + 3+8 */
    lf_push(T - 1 * NS, "app=web,env=prod", NULL, "GET /b 500");               /* 10 */
    lf_push(T, "app=db,env=prod", NULL, "select 1");                           /* 8 */
    lf_push(T, "app=db,env=dev,pod=p-1", NULL, "select 2 from t");             /* 15 */
}

TestSuite(loki, .init = setup, .fini = lf_close, .timeout = 60);

/* ---- parameters ---- */

static int64_t parse_time(const char *s)
{
    int64_t ns = -1;
    struct vg_err err;
    cr_assert_eq(loki_parse_time(s, &ns, &err), 0, "%s: %s", s, err.msg);
    return ns;
}

Test(loki, time_forms)
{
    cr_assert_eq(parse_time("1700000000"), 1700000000 * NS, "10 digits are seconds");
    cr_assert_eq(parse_time("1700000000123456789"), 1700000000123456789LL, "longer are ns");
    cr_assert_eq(parse_time("1700000000.5"), 1700000000 * NS + 500000000);
    cr_assert_eq(parse_time("1700000000.1234"), 1700000000 * NS + 123000000,
                 "a float keeps milliseconds");
    cr_assert_eq(parse_time("2023-11-14T22:13:20.123456789Z"), 1700000000123456789LL);
    cr_assert_eq(parse_time("2023-11-14T23:13:20+01:00"), 1700000000 * NS);
    cr_assert_eq(parse_time("-5"), -5 * NS);
    struct vg_err err;
    int64_t ns;
    cr_assert_eq(loki_parse_time("abc", &ns, &err), VG_EINVAL);
    cr_assert_str_eq(err.msg, "strconv.ParseInt: parsing \"abc\": invalid syntax");
    cr_assert_eq(loki_parse_time("99999999999999999999", &ns, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "value out of range"), "%s", err.msg);
    cr_assert_eq(loki_parse_time(" 1", &ns, &err), VG_EINVAL);
}

static void bounds(const char *start, const char *end, const char *since, int64_t now,
                   int64_t *s, int64_t *e, int want)
{
    struct http_arg args[3];
    size_t n = 0;
    if (start)
        args[n++] = (struct http_arg){ "start", start };
    if (end)
        args[n++] = (struct http_arg){ "end", end };
    if (since)
        args[n++] = (struct http_arg){ "since", since };
    struct http_request req = { .args = args, .nargs = n };
    struct vg_err err;
    cr_assert_eq(loki_bounds(&req, now, s, e, &err), want, "%s", err.msg);
}

Test(loki, bounds_follow_determine_bounds)
{
    int64_t now = 1700000000 * NS, s, e;
    bounds(NULL, NULL, NULL, now, &s, &e, 0);
    cr_assert_eq(e, now);
    cr_assert_eq(s, now - 3600 * NS);
    bounds(NULL, "1699999000", "5m", now, &s, &e, 0);
    cr_assert_eq(e, 1699999000 * NS);
    cr_assert_eq(s, e - 300 * NS, "since counts back from end");
    bounds(NULL, "1700009000", "5m", now, &s, &e, 0);
    cr_assert_eq(s, now - 300 * NS, "an end in the future counts back from now");
    bounds("1699990000", NULL, "5m", now, &s, &e, 0);
    cr_assert_eq(s, 1699990000 * NS, "start wins over since");
    struct vg_err err;
    struct http_arg a = { "since", "five" };
    struct http_request req = { .args = &a, .nargs = 1 };
    cr_assert_eq(loki_bounds(&req, now, &s, &e, &err), VG_EINVAL);
    cr_assert_str_eq(err.msg, "could not parse 'since' parameter: not a valid duration string: "
                              "\"five\"");
    a = (struct http_arg){ "start", "x" };
    cr_assert_eq(loki_bounds(&req, now, &s, &e, &err), VG_EINVAL);
    cr_assert_str_eq(err.msg, "could not parse 'start' parameter: strconv.ParseInt: parsing "
                              "\"x\": invalid syntax");
}

Test(loki, limit_and_default_step)
{
    size_t l;
    struct vg_err err;
    struct http_arg a = { "limit", "0" };
    struct http_request req = { .args = &a, .nargs = 1 };
    cr_assert_eq(loki_limit(&req, 100, &l, &err), VG_EINVAL);
    cr_assert_str_eq(err.msg, "limit must be a positive value");
    a.value = "1x";
    cr_assert_eq(loki_limit(&req, 100, &l, &err), VG_EINVAL);
    cr_assert_str_eq(err.msg, "strconv.Atoi: parsing \"1x\": invalid syntax");
    a.value = "7";
    cr_assert_eq(loki_limit(&req, 100, &l, &err), 0);
    cr_assert_eq(l, 7);
    req.nargs = 0;
    cr_assert_eq(loki_limit(&req, 100, &l, &err), 0);
    cr_assert_eq(l, 100);
    cr_assert_eq(loki_default_step(0, 3600 * NS), 14 * NS);
    cr_assert_eq(loki_default_step(0, 10 * NS), 1 * NS);
}

Test(loki, selector_rules)
{
    struct logql_expr *e;
    struct vg_err err;
    cr_assert_eq(loki_selector("", &e, &err), 0);
    cr_assert_null(e);
    cr_assert_eq(loki_selector("{app=\"web\"} |= \"x\"", &e, &err), 0);
    cr_assert_eq(e->root->log.nms, 1);
    logql_expr_free(e);
    cr_assert_eq(loki_selector("rate({app=\"web\"}[1m])", &e, &err), VG_EINVAL);
    cr_assert_str_eq(err.msg, "only label matchers are supported");
    cr_assert_eq(loki_selector("{app=", &e, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "parse error"), "%s", err.msg);
}

/* ---- index endpoints ---- */

Test(loki, labels)
{
    lf_call("/loki/api/v1/labels", "start", start_s, "end", end_s, NULL);
    cr_assert_str_eq(lf_resp.body.p, "{\"status\":\"success\",\"data\":[\"app\",\"env\",\"pod\"]}");
    cr_assert_str_eq(lf_resp.content_type, "application/json; charset=UTF-8");
    lf_call("/loki/api/v1/labels", "start", start_s, "end", end_s, "query", "{app=\"web\"}", NULL);
    cr_assert_str_eq(lf_resp.body.p, "{\"status\":\"success\",\"data\":[\"app\",\"env\"]}");
    /* Nothing in the window: an empty list. */
    lf_call("/loki/api/v1/labels", "start", "1000000000", "end", "1000000100", NULL);
    cr_assert_str_eq(lf_resp.body.p, "{\"status\":\"success\",\"data\":[]}");
    lf_call("/loki/api/v1/labels", "query", "{app=", NULL);
    lf_expect_error(400, "parse error at line 1");
}

Test(loki, label_values)
{
    lf_call("/loki/api/v1/label/app/values", "start", start_s, "end", end_s, NULL);
    cr_assert_str_eq(lf_resp.body.p, "{\"status\":\"success\",\"data\":[\"db\",\"web\"]}");
    lf_call("/loki/api/v1/label/env/values", "start", start_s, "end", end_s, "query",
            "{app=\"db\"}", NULL);
    cr_assert_str_eq(lf_resp.body.p, "{\"status\":\"success\",\"data\":[\"dev\",\"prod\"]}");
    lf_call("/loki/api/v1/label/nope/values", "start", start_s, "end", end_s, NULL);
    cr_assert_str_eq(lf_resp.body.p, "{\"status\":\"success\",\"data\":[]}");
    lf_call("/loki/api/v1/label/app", NULL);
    lf_expect_error(404, "404 page not found");
}

Test(loki, series)
{
    lf_call("/loki/api/v1/series", "start", start_s, "end", end_s, "match[]", "{app=\"web\"}",
            "match[]", "{env=\"dev\"}", "match[]", "{app=~\"w.*\"}", NULL);
    cr_assert_eq(lf_len("data"), 2, "%s", lf_resp.body.p);
    cr_assert_str_eq(lf_str("data/0/app"), "db");
    cr_assert_str_eq(lf_str("data/0/env"), "dev");
    cr_assert_str_eq(lf_str("data/0/pod"), "p-1");
    cr_assert_str_eq(lf_str("data/1/app"), "web");
    cr_assert_eq(lf_len("data/1"), 2, "metadata is not a stream label");
    lf_call("/loki/api/v1/series", "start", start_s, "end", end_s, NULL);
    cr_assert_eq(lf_len("data"), 3, "no match[]: every stream");
    lf_call("/loki/api/v1/series", "match[]", "{app=~\".*\"}", NULL);
    lf_expect_error(400, "parse error");
    lf_call("/loki/api/v1/series", "match[]", "", NULL);
    lf_expect_error(400, "0 matchers in group");
}

Test(loki, index_stats)
{
    lf_call("/loki/api/v1/index/stats", "start", start_s, "end", end_s, "query",
            "{env=\"prod\"}", NULL);
    cr_assert_eq(lf_int("streams"), 2);
    cr_assert_eq(lf_int("entries"), 3);
    cr_assert_eq(lf_int("bytes"), 10 + 11 + 10 + 8, "lines plus metadata names and values");
    cr_assert(json_is_integer(lf_at("chunks")));
    cr_assert_eq(lf_len(""), 4, "exactly streams, chunks, bytes, entries: %s", lf_resp.body.p);
    lf_call("/loki/api/v1/index/stats", "start", start_s, "end", end_s, NULL);
    lf_expect_error(400, "at least one regexp or equality matcher");
    lf_call("/loki/api/v1/index/stats", "start", end_s, "end", start_s, "query", "{app=\"web\"}",
            NULL);
    lf_expect_error(400, "end timestamp must not be before or equal to start time");
}

Test(loki, volume_groups_by_the_selector_names)
{
    lf_call("/loki/api/v1/index/volume", "start", start_s, "end", end_s, "query",
            "{app=~\".+\"}", NULL);
    cr_assert_str_eq(lf_str("status"), "success");
    cr_assert_str_eq(lf_str("data/resultType"), "vector");
    cr_assert_eq(lf_len("data/result"), 2, "%s", lf_resp.body.p);
    cr_assert_str_eq(lf_str("data/result/0/metric/app"), "web", "largest first");
    cr_assert_eq(lf_len("data/result/0/metric"), 1);
    cr_assert_str_eq(lf_str("data/result/0/value/1"), "31");
    cr_assert_eq(json_integer_value(lf_at("data/result/0/value/0")), atoll(end_s),
                 "sampled at the end time");
    cr_assert_str_eq(lf_str("data/result/1/metric/app"), "db");
    cr_assert_str_eq(lf_str("data/result/1/value/1"), "23");
    lf_call("/loki/api/v1/index/volume", "start", start_s, "end", end_s, "query",
            "{app=~\".+\"}", "limit", "1", NULL);
    cr_assert_eq(lf_len("data/result"), 1);
}

Test(loki, volume_target_labels_and_aggregate_by_labels)
{
    lf_call("/loki/api/v1/index/volume", "start", start_s, "end", end_s, "query",
            "{app=~\".+\"}", "targetLabels", "env", NULL);
    cr_assert_eq(lf_len("data/result"), 2);
    cr_assert_str_eq(lf_str("data/result/0/metric/env"), "prod");
    cr_assert_str_eq(lf_str("data/result/0/value/1"), "39");
    cr_assert_str_eq(lf_str("data/result/1/metric/env"), "dev");
    lf_call("/loki/api/v1/index/volume", "start", start_s, "end", end_s, "query",
            "{app=~\".+\"}", "aggregateBy", "labels", NULL);
    cr_assert_eq(lf_len("data/result"), 3, "%s", lf_resp.body.p);
    cr_assert_str_eq(lf_str("data/result/0/metric/app"), "");
    cr_assert_str_eq(lf_str("data/result/0/value/1"), "54");
    cr_assert_str_eq(lf_str("data/result/2/metric/pod"), "");
    cr_assert_str_eq(lf_str("data/result/2/value/1"), "15");
    lf_call("/loki/api/v1/index/volume", "query", "{app=~\".+\"}", "aggregateBy", "x", NULL);
    lf_expect_error(400, "invalid aggregation option");
    lf_call("/loki/api/v1/index/volume", "query", "{app=~\".+\"}", "limit", "-1", NULL);
    lf_expect_error(400, "limit must be a positive value");
}

Test(loki, volume_range_is_a_matrix_of_step_buckets)
{
    char st[32], en[32];
    snprintf(st, sizeof st, "%lld", (long long)(T / NS - 4));
    snprintf(en, sizeof en, "%lld", (long long)(T / NS + 1));
    lf_call("/loki/api/v1/index/volume_range", "start", st, "end", en, "step", "1s", "query",
            "{app=\"web\"}", NULL);
    cr_assert_str_eq(lf_str("data/resultType"), "matrix");
    cr_assert_eq(lf_len("data/result"), 1, "%s", lf_resp.body.p);
    cr_assert_str_eq(lf_str("data/result/0/metric/app"), "web");
    cr_assert_eq(lf_len("data/result/0/values"), 2, "one point per bucket with data");
    cr_assert_eq(json_integer_value(lf_at("data/result/0/values/0/0")), T / NS - 2);
    cr_assert_str_eq(lf_str("data/result/0/values/0/1"), "21");
    cr_assert_eq(json_integer_value(lf_at("data/result/0/values/1/0")), T / NS - 1);
    cr_assert_str_eq(lf_str("data/result/0/values/1/1"), "10");
    lf_call("/loki/api/v1/index/volume_range", "start", st, "end", en, "step", "0", "query",
            "{app=\"web\"}", NULL);
    lf_expect_error(400, "zero or negative query resolution step");
}

/* ---- the rest ---- */

Test(loki, format_query)
{
    lf_call("/loki/api/v1/format_query", "query", "{app=\"web\"}|=\"x\"|json", NULL);
    cr_assert_str_eq(lf_resp.body.p,
                     "{\"status\":\"success\",\"data\":\"{app=\\\"web\\\"} |= \\\"x\\\" | json\"}");
    lf_call("/loki/api/v1/format_query", "query", "sum(", NULL);
    lf_expect_error(400, "parse error");
}

Test(loki, buildinfo_and_ready)
{
    lf_call("/loki/api/v1/status/buildinfo", NULL);
    cr_assert_str_eq(lf_str("version"), LOKI_API_VERSION);
    cr_assert_str_eq(lf_str("revision"), "vigil-" VIGIL_VERSION);
    cr_assert_eq(lf_len(""), 6);
    lf_call("/ready", NULL);
    cr_assert_eq(lf_resp.status, 200);
    cr_assert_str_eq(lf_resp.body.p, "ready\n");
}

Test(loki, errors_are_plain_text_with_loki_statuses)
{
    struct http_response r = { 0 };
    struct vg_err err;
    vg_err_set(&err, VG_EOVERLOAD, "deadline");
    loki_resp_error(&r, &err);
    cr_assert_eq(r.status, 504);
    cr_assert(strstr(vg_buf_cstr(&r.body), "request timed out"), "%s", r.body.p);
    vg_err_set(&err, VG_EIO, "disk");
    loki_resp_error(&r, &err);
    cr_assert_eq(r.status, 500);
    cr_assert_str_eq(vg_buf_cstr(&r.body), "disk");
    vg_err_set(&err, VG_ETOOLARGE, "maximum of series (500) reached for a single query");
    loki_resp_error(&r, &err);
    cr_assert_eq(r.status, 400);
    vg_buf_free(&r.body);
}

Test(loki, allocation_failure_is_an_error_answer)
{
    static const char *const paths[] = { "/loki/api/v1/labels", "/loki/api/v1/series",
                                         "/loki/api/v1/index/volume",
                                         "/loki/api/v1/index/volume_range" };
    for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
        for (uint64_t n = 1; n < 60; n++) {
            lf.fail_after = n;
            lf_call(paths[p], "start", start_s, "end", end_s, "query", "{app=~\".+\"}", NULL);
            lf.fail_after = 0;
            cr_assert(lf_resp.status == 200 || lf_resp.status >= 500, "%s fail %llu: %d %s",
                      paths[p], (unsigned long long)n, lf_resp.status, lf_resp.body.p);
        }
    }
}
