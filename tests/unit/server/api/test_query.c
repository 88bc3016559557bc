/* Tests server/api/query.c: the number and duration formats of Prometheus's API, result
 * JSON of every type, and the handlers against a real TSDB and the real engine: exact
 * bodies for vector, matrix, scalar and string answers, parameter errors with
 * Prometheus's wording and status, evaluation errors (execution, timeout), limit
 * truncation, format_query, parse_query, query_exemplars, the status endpoints, the
 * /metrics counters, and allocation failure. */
#include "../fixture.h"

#include "../../../../server/api/query.h"

#include <math.h>

static struct server_fixture fx;
static int64_t T; /* a whole second a minute ago: every sample is near it */
static char ts[32]; /* T as the API writes it */

static void setup(void)
{
    fixture_open(&fx);
    T = (fixture_now_ms() / 1000) * 1000 - 60000;
    snprintf(ts, sizeof ts, "%lld", (long long)(T / 1000));
    fixture_append(&fx, T - 30000, 1, "__name__", "up", "job", "a", NULL);
    fixture_append(&fx, T, 1, "__name__", "up", "job", "a", NULL);
    fixture_append(&fx, T, 0, "__name__", "up", "job", "b", NULL);
    fixture_append(&fx, T - 30000, 10, "__name__", "req_total", "job", "a", NULL);
    fixture_append(&fx, T, 40, "__name__", "req_total", "job", "a", NULL);
}

static struct http_response resp;

static void teardown(void)
{
    vg_buf_free(&resp.body);
    fixture_close(&fx);
}

TestSuite(query, .init = setup, .fini = teardown, .timeout = 60);

/* Runs handler path with args (pairs, NULL-terminated) and returns the body. */
static const char *call(const char *path, ...)
{
    va_list ap;
    va_start(ap, path);
    const char *body = fixture_vget(&fx, &mod_query_api, path, ap, &resp);
    va_end(ap);
    return body;
}

/* printf into a static buffer (expected bodies that hold the time). */
static const char *fmt(const char *f, ...)
{
    static char buf[4096];
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    return buf;
}

static void expect(int status, const char *body)
{
    cr_assert_eq(resp.status, status, "status %d, body %s", resp.status, resp.body.p);
    cr_assert_str_eq(resp.body.p, body);
}

static void expect_error(int status, const char *type, const char *msg)
{
    expect(status, fmt("{\"status\":\"error\",\"errorType\":\"%s\",\"error\":\"%s\"}", type, msg));
}

/* ---- formats ---- */

static struct vg_buf b;

static const char *time_str(int64_t ms)
{
    vg_buf_reset(&b);
    query_json_time(&b, ms);
    return vg_buf_cstr(&b);
}

static const char *value_str(double v)
{
    vg_buf_reset(&b);
    query_json_value(&b, v);
    return vg_buf_cstr(&b);
}

static const char *duration_str(int64_t ms)
{
    vg_buf_reset(&b);
    query_format_duration(&b, ms);
    return vg_buf_cstr(&b);
}

Test(query_fmt, timestamps_as_prometheus_writes_them)
{
    cr_assert_str_eq(time_str(0), "0");
    cr_assert_str_eq(time_str(1700000000000LL), "1700000000");
    cr_assert_str_eq(time_str(1700000000123LL), "1700000000.123");
    cr_assert_str_eq(time_str(1700000000100LL), "1700000000.100");
    cr_assert_str_eq(time_str(1700000000005LL), "1700000000.005");
    cr_assert_str_eq(time_str(-1500), "-1.500");
    cr_assert_str_eq(time_str(-1), "-0.001");
    cr_assert_str_eq(time_str(INT64_MIN), "-9223372036854775.808");
    vg_buf_free(&b);
}

Test(query_fmt, values_as_prometheus_writes_them)
{
    cr_assert_str_eq(value_str(1.5), "\"1.5\"");
    cr_assert_str_eq(value_str(0), "\"0\"");
    cr_assert_str_eq(value_str(-2), "\"-2\"");
    cr_assert_str_eq(value_str(1e6), "\"1000000\"");
    cr_assert_str_eq(value_str(0.000001), "\"0.000001\"");
    cr_assert_str_eq(value_str(1e-7), "\"1e-07\"");
    cr_assert_str_eq(value_str(-2.5e-9), "\"-2.5e-09\"");
    cr_assert_str_eq(value_str(1e20), "\"100000000000000000000\"");
    cr_assert_str_eq(value_str(1e21), "\"1e+21\"");
    cr_assert_str_eq(value_str(0.1 + 0.2), "\"0.30000000000000004\"");
    cr_assert_str_eq(value_str(NAN), "\"NaN\"");
    cr_assert_str_eq(value_str(INFINITY), "\"+Inf\"");
    cr_assert_str_eq(value_str(-INFINITY), "\"-Inf\"");
    vg_buf_free(&b);
}

Test(query_fmt, durations)
{
    cr_assert_str_eq(duration_str(0), "0s");
    cr_assert_str_eq(duration_str(15 * 86400000LL), "15d");
    cr_assert_str_eq(duration_str(14 * 86400000LL), "2w");
    cr_assert_str_eq(duration_str(365 * 86400000LL), "1y");
    cr_assert_str_eq(duration_str(90 * 60000LL), "1h30m");
    cr_assert_str_eq(duration_str(1500), "1s500ms");
    vg_buf_free(&b);
}

Test(query_fmt, duration_parameters)
{
    struct vg_err err;
    int64_t ns;
    static const struct {
        const char *s;
        int64_t ns;
    } ok[] = {
        { "15", 15000000000LL }, { "0.5", 500000000LL }, { "1e3", 1000000000000LL },
        { "-1", -1000000000LL }, { "0", 0 },             { "15s", 15000000000LL },
        { "1h30m", 5400000000000LL }, { "100ms", 100000000LL }, { ".001", 1000000 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        cr_assert_eq(query_parse_duration(ok[i].s, &ns, &err), 0, "%s: %s", ok[i].s, err.msg);
        cr_assert_eq(ns, ok[i].ns, "%s: %lld", ok[i].s, (long long)ns);
    }
    static const char *const bad[] = { "", "x", "15x", "1.5s", "s", "0x10", "NaN", " 1" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(query_parse_duration(bad[i], &ns, &err), VG_EINVAL, "%s", bad[i]);
        cr_assert_str_eq(err.msg, fmt("cannot parse \"%s\" to a valid duration", bad[i]));
    }
    cr_assert_eq(query_parse_duration("Inf", &ns, &err), VG_EINVAL);
    cr_assert_str_eq(err.msg, "cannot parse \"Inf\" to a valid duration. It overflows int64");
    cr_assert_eq(query_parse_duration("1e10", &ns, &err), VG_EINVAL);
}

Test(query_fmt, error_types_and_statuses)
{
    cr_assert_str_eq(query_error_type_name(QUERY_BAD_DATA), "bad_data");
    cr_assert_eq(query_error_status(QUERY_BAD_DATA), 400);
    cr_assert_str_eq(query_error_type_name(QUERY_EXECUTION), "execution");
    cr_assert_eq(query_error_status(QUERY_EXECUTION), 422);
    cr_assert_str_eq(query_error_type_name(QUERY_TIMEOUT), "timeout");
    cr_assert_eq(query_error_status(QUERY_TIMEOUT), 503);
    cr_assert_str_eq(query_error_type_name(QUERY_CANCELED), "canceled");
    cr_assert_eq(query_error_status(QUERY_CANCELED), 499);
    cr_assert_str_eq(query_error_type_name(QUERY_INTERNAL), "internal");
    cr_assert_eq(query_error_status(QUERY_INTERNAL), 500);
    cr_assert_eq(query_error_type(VG_EOVERLOAD), QUERY_TIMEOUT);
    cr_assert_eq(query_error_type(VG_EIO), QUERY_INTERNAL);
    cr_assert_eq(query_error_type(VG_ENOMEM), QUERY_INTERNAL);
    cr_assert_eq(query_error_type(VG_ETOOLARGE), QUERY_EXECUTION);
    cr_assert_eq(query_error_type(VG_ECONFLICT), QUERY_EXECUTION);
    cr_assert_eq(query_error_type(VG_EINVAL), QUERY_EXECUTION, "as any error out of Exec");
}

Test(query_fmt, result_json_of_each_type)
{
    struct label l1[] = { { VG_STR("__name__"), VG_STR("up") }, { VG_STR("job"), VG_STR("a") } };
    struct promql_point p1[] = { { 1000, 1 }, { 2500, 2.5 } };
    struct promql_point p2[] = { { 1000, NAN } };
    struct promql_series s[] = { { l1, 2, p1, 2 }, { NULL, 0, p2, 1 } };
    struct promql_result r = { .type = PT_VECTOR, .series = s, .nseries = 2 };
    bool tr;
    vg_buf_reset(&b);
    query_json_result(&b, &r, 0, &tr);
    cr_assert_str_eq(vg_buf_cstr(&b),
                     "{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"__name__\":\"up\","
                     "\"job\":\"a\"},\"value\":[1,\"1\"]},{\"metric\":{},\"value\":[1,\"NaN\"]}]}");
    cr_assert(!tr);
    r.type = PT_MATRIX;
    vg_buf_reset(&b);
    query_json_result(&b, &r, 1, &tr);
    cr_assert_str_eq(vg_buf_cstr(&b),
                     "{\"resultType\":\"matrix\",\"result\":[{\"metric\":{\"__name__\":\"up\","
                     "\"job\":\"a\"},\"values\":[[1,\"1\"],[2.500,\"2.5\"]]}]}");
    cr_assert(tr);
    r.nseries = 0;
    vg_buf_reset(&b);
    query_json_result(&b, &r, 1, &tr);
    cr_assert_str_eq(vg_buf_cstr(&b), "{\"resultType\":\"matrix\",\"result\":[]}");
    cr_assert(!tr);
    r = (struct promql_result){ .type = PT_SCALAR, .scalar = { 1700000000001LL, -0.5 } };
    vg_buf_reset(&b);
    query_json_result(&b, &r, 1, &tr);
    cr_assert_str_eq(vg_buf_cstr(&b),
                     "{\"resultType\":\"scalar\",\"result\":[1700000000.001,\"-0.5\"]}");
    char str[] = "a\"b";
    r = (struct promql_result){ .type = PT_STRING, .string = str, .string_t = 5000 };
    vg_buf_reset(&b);
    query_json_result(&b, &r, 0, &tr);
    cr_assert_str_eq(vg_buf_cstr(&b), "{\"resultType\":\"string\",\"result\":[5,\"a\\\"b\"]}");
    vg_buf_free(&b);
}

/* Label sets are written in one go when nothing needs escaping, and through the
 * escaping writer otherwise; both give Prometheus's JSON. */
Test(query_fmt, result_labels_plain_and_escaped)
{
    struct label plain[] = { { VG_STR("a"), VG_STR("x y") }, { VG_STR("b"), VG_STR("") } };
    struct label esc[] = { { VG_STR("a"), VG_STR("q\"\\\n\xc3\xa9") } };
    struct promql_point pt[] = { { 1000, 1 } };
    struct promql_series s[] = { { plain, 2, pt, 1 }, { esc, 1, pt, 1 } };
    struct promql_result r = { .type = PT_VECTOR, .series = s, .nseries = 2 };
    bool tr;
    vg_buf_reset(&b);
    query_json_result(&b, &r, 0, &tr);
    cr_assert_str_eq(vg_buf_cstr(&b),
                     "{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"a\":\"x y\","
                     "\"b\":\"\"},\"value\":[1,\"1\"]},{\"metric\":{\"a\":\"q\\\"\\\\\\n\xc3\xa9\"},"
                     "\"value\":[1,\"1\"]}]}");
    /* a buffer that cannot grow ends up failed, never overrun */
    struct vg_buf small;
    vg_buf_init(&small);
    vg_alloc_fail_after(1);
    query_json_result(&small, &r, 0, &tr);
    vg_alloc_fail_after(0);
    cr_assert(vg_buf_failed(&small));
    vg_buf_free(&small);
    vg_buf_free(&b);
}

/* ---- /api/v1/query ---- */

Test(query, instant_vector)
{
    call("/api/v1/query", "query", "up", "time", ts, NULL);
    expect(200, fmt("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
                    "{\"metric\":{\"__name__\":\"up\",\"job\":\"a\"},\"value\":[%s,\"1\"]},"
                    "{\"metric\":{\"__name__\":\"up\",\"job\":\"b\"},\"value\":[%s,\"0\"]}]}}",
                    ts, ts));
    cr_assert_str_eq(resp.content_type, "application/json");
}

Test(query, instant_at_a_fractional_time_and_rfc3339)
{
    call("/api/v1/query", "query", "up{job=\"a\"} * 2", "time", fmt("%s.5", ts), NULL);
    char want[512];
    snprintf(want, sizeof want,
             "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
             "{\"metric\":{\"job\":\"a\"},\"value\":[%s.500,\"2\"]}]}}", ts);
    expect(200, want);
    /* The same instant as RFC 3339. */
    time_t secs = (time_t)(T / 1000);
    struct tm tm;
    char rfc[40];
    gmtime_r(&secs, &tm);
    strftime(rfc, sizeof rfc, "%Y-%m-%dT%H:%M:%S.5Z", &tm);
    call("/api/v1/query", "query", "up{job=\"a\"} * 2", "time", rfc, NULL);
    expect(200, want);
}

Test(query, health_check_of_grafana_is_a_scalar)
{
    call("/api/v1/query", "query", "1+1", "time", "1700000000.123", NULL);
    expect(200, "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\","
                "\"result\":[1700000000.123,\"2\"]}}");
}

Test(query, string_result)
{
    call("/api/v1/query", "query", "\"hello\"", "time", "1700000000", NULL);
    expect(200, "{\"status\":\"success\",\"data\":{\"resultType\":\"string\","
                "\"result\":[1700000000,\"hello\"]}}");
}

Test(query, instant_matrix_result)
{
    call("/api/v1/query", "query", "req_total[1m]", "time", ts, NULL);
    expect(200, fmt("{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
                    "{\"metric\":{\"__name__\":\"req_total\",\"job\":\"a\"},\"values\":"
                    "[[%lld,\"10\"],[%lld,\"40\"]]}]}}",
                    (long long)(T / 1000 - 30), (long long)(T / 1000)));
}

Test(query, time_defaults_to_now)
{
    call("/api/v1/query", "query", "time()", NULL);
    cr_assert_eq(resp.status, 200, "%s", resp.body.p);
    double t = strtod(strstr(resp.body.p, "\"result\":[") + 10, NULL) * 1000;
    cr_assert(fabs(t - (double)fixture_now_ms()) < 10000, "%s", resp.body.p);
}

Test(query, empty_result)
{
    call("/api/v1/query", "query", "nothing_here", "time", ts, NULL);
    expect(200, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}");
}

Test(query, limit_truncates_with_a_warning)
{
    call("/api/v1/query", "query", "up", "time", ts, "limit", "1", NULL);
    expect(200, fmt("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
                    "{\"metric\":{\"__name__\":\"up\",\"job\":\"a\"},\"value\":[%s,\"1\"]}]},"
                    "\"warnings\":[\"results truncated due to limit\"]}", ts));
    call("/api/v1/query", "query", "up", "time", ts, "limit", "2", NULL);
    cr_assert_null(strstr(resp.body.p, "warnings"));
    call("/api/v1/query", "query", "up", "limit", "-1", NULL);
    expect_error(400, "bad_data", "invalid parameter \\\"limit\\\": limit must be non-negative");
}

Test(query, parameter_errors)
{
    call("/api/v1/query", "query", "up", "time", "yesterday", NULL);
    expect_error(400, "bad_data", "invalid parameter \\\"time\\\": invalid time value for "
                                  "'time': cannot parse \\\"yesterday\\\" to a valid timestamp");
    call("/api/v1/query", "query", "up", "timeout", "soon", NULL);
    expect_error(400, "bad_data",
                 "invalid parameter \\\"timeout\\\": cannot parse \\\"soon\\\" to a valid duration");
    call("/api/v1/query", "query", "up", "lookback_delta", "far", NULL);
    expect_error(400, "bad_data", "error parsing lookback delta duration: cannot parse "
                                  "\\\"far\\\" to a valid duration");
}

Test(query, parse_errors_are_bad_data_with_the_parameter_named)
{
    call("/api/v1/query", "query", "sum(up", NULL);
    cr_assert_eq(resp.status, 400, "%s", resp.body.p);
    const char *want = "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":"
                       "\"invalid parameter \\\"query\\\": 1:";
    cr_assert(strncmp(resp.body.p, want, strlen(want)) == 0, "%s", resp.body.p);
    cr_assert(strstr(resp.body.p, "parse error"), "%s", resp.body.p);
    call("/api/v1/query", NULL);
    cr_assert_eq(resp.status, 400, "%s", resp.body.p);
    cr_assert(strncmp(resp.body.p, want, strlen(want)) == 0, "%s", resp.body.p);
    call("/api/v1/query", "query", "up{job=~\"(\"}", NULL);
    cr_assert_eq(resp.status, 400, "%s", resp.body.p);
}

Test(query, evaluation_errors_are_execution_errors)
{
    /* Two series on each side with nothing to tell them apart. */
    call("/api/v1/query", "query", "up + on() up", "time", ts, NULL);
    cr_assert_eq(resp.status, 422, "%s", resp.body.p);
    cr_assert(strstr(resp.body.p, "\"errorType\":\"execution\""), "%s", resp.body.p);
    cr_assert(strstr(resp.body.p, "many-to-many"), "%s", resp.body.p);
}

Test(query, sample_limit_is_an_execution_error)
{
    fx.cfg->query_max_samples = 1;
    call("/api/v1/query", "query", "up", "time", ts, NULL);
    cr_assert_eq(resp.status, 422, "%s", resp.body.p);
    cr_assert(strstr(resp.body.p, "\"errorType\":\"execution\""), "%s", resp.body.p);
}

Test(query, a_timeout_that_has_passed_is_a_timeout_error)
{
    call("/api/v1/query", "query", "up", "timeout", "0", NULL);
    expect_error(503, "timeout", "query timed out in query execution");
    call("/api/v1/query", "query", "up", "timeout", "-5", NULL);
    cr_assert_eq(resp.status, 503);
    /* A parse error still comes first, as in Prometheus. */
    call("/api/v1/query", "query", "up(", "timeout", "0", NULL);
    cr_assert_eq(resp.status, 400);
    /* A generous timeout changes nothing. */
    call("/api/v1/query", "query", "1", "timeout", "30s", "time", "1", NULL);
    expect(200, "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[1,\"1\"]}}");
}

Test(query, lookback_delta_parameter)
{
    /* At T+2m the samples at T are 2m old: outside a 1m lookback, inside the default. */
    const char *t = fmt("%lld", (long long)(T / 1000 + 120));
    char tt[32];
    snprintf(tt, sizeof tt, "%s", t);
    call("/api/v1/query", "query", "count(up)", "time", tt, NULL);
    cr_assert(strstr(resp.body.p, "\"2\""), "%s", resp.body.p);
    call("/api/v1/query", "query", "count(up)", "time", tt, "lookback_delta", "1m", NULL);
    expect(200, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}");
    fx.cfg->query_lookback_delta_ms = 60000;
    call("/api/v1/query", "query", "count(up)", "time", tt, NULL);
    expect(200, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}");
}

/* ---- /api/v1/query_range ---- */

static void range(const char *query, long long start, long long end, const char *step)
{
    char a[32], z[32];
    snprintf(a, sizeof a, "%lld", start);
    snprintf(z, sizeof z, "%lld", end);
    call("/api/v1/query_range", "query", query, "start", a, "end", z, "step", step, NULL);
}

Test(query, range_matrix_exact)
{
    long long s = T / 1000;
    range("up{job=\"a\"}", s - 60, s, "30");
    expect(200, fmt("{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
                    "{\"metric\":{\"__name__\":\"up\",\"job\":\"a\"},\"values\":"
                    "[[%lld,\"1\"],[%lld,\"1\"]]}]}}", s - 30, s));
    range("up{job=\"a\"}", s - 60, s, "30s");
    cr_assert_eq(resp.status, 200, "step as a duration: %s", resp.body.p);
    range("2", s - 1, s, "0.5");
    expect(200, fmt("{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
                    "{\"metric\":{},\"values\":[[%lld,\"2\"],[%lld.500,\"2\"],[%lld,\"2\"]]}]}}",
                    s - 1, s - 1, s));
}

Test(query, range_parameter_errors)
{
    long long s = T / 1000;
    call("/api/v1/query_range", "query", "up", "end", "10", "step", "1", NULL);
    expect_error(400, "bad_data",
                 "invalid parameter \\\"start\\\": cannot parse \\\"\\\" to a valid timestamp");
    call("/api/v1/query_range", "query", "up", "start", "10", "step", "1", NULL);
    expect_error(400, "bad_data",
                 "invalid parameter \\\"end\\\": cannot parse \\\"\\\" to a valid timestamp");
    range("up", s, s - 1, "1");
    expect_error(400, "bad_data", "end timestamp must not be before start time");
    range("up", s - 10, s, "0");
    expect_error(400, "bad_data", "invalid parameter \\\"step\\\": zero or negative query "
                                  "resolution step widths are not accepted. Try a positive "
                                  "integer");
    range("up", s - 10, s, "-1");
    cr_assert_eq(resp.status, 400);
    range("up", s - 10, s, "fast");
    expect_error(400, "bad_data",
                 "invalid parameter \\\"step\\\": cannot parse \\\"fast\\\" to a valid duration");
    range("up", s - 11001, s, "1");
    expect_error(400, "bad_data", "exceeded maximum resolution of 11,000 points per "
                                  "timeseries. Try decreasing the query resolution (?step=XX)");
    range("up", s - 11000, s, "1");
    cr_assert_eq(resp.status, 200, "11,000 steps (11,001 points) are allowed: %s", resp.body.p);
    range("up[5m]", s - 10, s, "1");
    expect_error(400, "bad_data", "invalid parameter \\\"query\\\": invalid expression type "
                                  "\\\"range vector\\\" for range query, must be Scalar or "
                                  "instant Vector");
    range("\"s\"", s - 10, s, "1");
    expect_error(400, "bad_data", "invalid parameter \\\"query\\\": invalid expression type "
                                  "\\\"string\\\" for range query, must be Scalar or instant "
                                  "Vector");
}

/* ---- format_query, parse_query ---- */

Test(query, format_query)
{
    call("/api/v1/format_query", "query", "sum  by(job)(rate(req_total{job=\"a\"}[5m] ))", NULL);
    expect(200, "{\"status\":\"success\",\"data\":\"sum by (job) (rate(req_total{job=\\\"a\\\"}[5m]))\"}");
    call("/api/v1/format_query", "query", "1 +", NULL);
    cr_assert_eq(resp.status, 400);
}

Test(query, parse_query)
{
    call("/api/v1/parse_query", "query", "sum by (job) (rate(foo{a=\"b\"}[5m] offset 1m))", NULL);
    expect(200,
           "{\"status\":\"success\",\"data\":{\"expr\":{\"args\":[{\"matchers\":["
           "{\"name\":\"a\",\"type\":\"=\",\"value\":\"b\"},"
           "{\"name\":\"__name__\",\"type\":\"=\",\"value\":\"foo\"}],"
           "\"name\":\"foo\",\"offset\":60000,\"range\":300000,\"startOrEnd\":null,"
           "\"timestamp\":null,\"type\":\"matrixSelector\"}],\"func\":{\"argTypes\":"
           "[\"matrix\"],\"name\":\"rate\",\"returnType\":\"vector\",\"variadic\":0},"
           "\"type\":\"call\"},\"grouping\":[\"job\"],\"op\":\"sum\",\"param\":null,"
           "\"type\":\"aggregation\",\"without\":false}}");
    call("/api/v1/parse_query", "query", "-(1) > bool x @ end()", NULL);
    expect(200,
           "{\"status\":\"success\",\"data\":{\"bool\":true,\"lhs\":{\"expr\":{\"expr\":"
           "{\"type\":\"numberLiteral\",\"val\":\"1\"},\"type\":\"parenExpr\"},\"op\":\"-\","
           "\"type\":\"unaryExpr\"},\"matching\":null,\"op\":\">\",\"rhs\":{\"matchers\":"
           "[{\"name\":\"__name__\",\"type\":\"=\",\"value\":\"x\"}],\"name\":\"x\",\"offset\":0,"
           "\"startOrEnd\":\"end\",\"timestamp\":null,\"type\":\"vectorSelector\"},"
           "\"type\":\"binaryExpr\"}}");
}

Test(query, parse_query_subquery_and_matching)
{
    call("/api/v1/parse_query", "query", "a / on(x) group_left(y) b", NULL);
    cr_assert_eq(resp.status, 200, "%s", resp.body.p);
    cr_assert(strstr(resp.body.p, "\"matching\":{\"card\":\"many-to-one\",\"include\":[\"y\"],"
                                  "\"labels\":[\"x\"],\"on\":true}"), "%s", resp.body.p);
    call("/api/v1/parse_query", "query", "max_over_time(a[10m:1m] @ 100)", NULL);
    cr_assert_eq(resp.status, 200, "%s", resp.body.p);
    cr_assert(strstr(resp.body.p, "\"offset\":0,\"range\":600000,\"startOrEnd\":null,"
                                  "\"step\":60000,\"timestamp\":100000,\"type\":\"subquery\""),
              "%s", resp.body.p);
    call("/api/v1/parse_query", "query", "count_values(\"v\", a)", NULL);
    cr_assert(strstr(resp.body.p, "\"param\":{\"type\":\"stringLiteral\",\"val\":\"v\"}"), "%s",
              resp.body.p);
}

/* ---- query_exemplars ---- */

static void add_exemplar(const char *trace, int64_t t, double v)
{
    struct label ls[] = { { VG_STR("__name__"), VG_STR("req_total") }, { VG_STR("job"), VG_STR("a") } };
    struct label el[] = { { VG_STR("trace_id"), vg_str_c(trace) } };
    struct tsdb_sample s = { t, v };
    struct tsdb_exemplar ex = { el, 1, t, v };
    struct tsdb_series_in in = { ls, 2, &s, 1, &ex, 1 };
    struct tsdb_batch batch = { &in, 1, NULL, 0 };
    struct tsdb_append_result res;
    memset(&res, 0, sizeof res);
    struct vg_err err = { 0 };
    cr_assert_eq(tsdb_append(fx.v.tsdb, &batch, &res, &err), 0, "%s", err.msg);
}

Test(query, exemplars_of_the_selected_series)
{
    add_exemplar("abc", T + 1500, 41);
    add_exemplar("def", T + 3000, 42);
    long long s = T / 1000;
    char a[32], z[32];
    snprintf(a, sizeof a, "%lld", s);
    snprintf(z, sizeof z, "%lld", s + 10);
    call("/api/v1/query_exemplars", "query", "sum(rate(req_total[5m])) / sum(up)", "start", a,
         "end", z, NULL);
    expect(200, fmt("{\"status\":\"success\",\"data\":[{\"seriesLabels\":{\"__name__\":"
                    "\"req_total\",\"job\":\"a\"},\"exemplars\":["
                    "{\"labels\":{\"trace_id\":\"abc\"},\"value\":\"41\",\"timestamp\":%lld.500},"
                    "{\"labels\":{\"trace_id\":\"def\"},\"value\":\"42\",\"timestamp\":%lld}]}]}",
                    s + 1, s + 3));
    /* The same series through two selectors: once. */
    call("/api/v1/query_exemplars", "query", "req_total + req_total{job=\"a\"}", NULL);
    cr_assert_eq(resp.status, 200, "%s", resp.body.p);
    cr_assert_eq(strstr(strstr(resp.body.p, "\"abc\"") + 1, "\"abc\""), NULL, "%s", resp.body.p);
    /* A window without exemplars. */
    snprintf(z, sizeof z, "%lld", s + 1);
    call("/api/v1/query_exemplars", "query", "req_total", "start", a, "end", z, NULL);
    expect(200, "{\"status\":\"success\",\"data\":[]}");
    call("/api/v1/query_exemplars", "query", "1 + 1", NULL);
    expect(200, "{\"status\":\"success\"}");
    call("/api/v1/query_exemplars", "query", "req_total", "start", z, "end", a, NULL);
    expect_error(400, "bad_data", "end timestamp must not be before start timestamp");
    call("/api/v1/query_exemplars", "query", "req_total{", NULL);
    cr_assert_eq(resp.status, 400);
    cr_assert(strstr(resp.body.p, "\"error\":\"1:"), "no parameter prefix: %s", resp.body.p);
}

/* ---- status ---- */

Test(query, tsdb_status)
{
    call("/api/v1/status/tsdb", NULL);
    expect(200, fmt("{\"status\":\"success\",\"data\":{\"headStats\":{\"numSeries\":3,"
                    "\"numLabelPairs\":4,\"chunkCount\":3,\"minTime\":%lld,\"maxTime\":%lld},"
                    "\"seriesCountByMetricName\":[{\"name\":\"up\",\"value\":2},"
                    "{\"name\":\"req_total\",\"value\":1}],"
                    "\"labelValueCountByLabelName\":[{\"name\":\"__name__\",\"value\":2},"
                    "{\"name\":\"job\",\"value\":2}],"
                    "\"memoryInBytesByLabelName\":[{\"name\":\"__name__\",\"value\":13},"
                    "{\"name\":\"job\",\"value\":3}],"
                    "\"seriesCountByLabelValuePair\":[{\"name\":\"__name__=up\",\"value\":2},"
                    "{\"name\":\"job=a\",\"value\":2},{\"name\":\"__name__=req_total\",\"value\":1},"
                    "{\"name\":\"job=b\",\"value\":1}]}}",
                    (long long)(T - 30000), (long long)T));
    call("/api/v1/status/tsdb", "limit", "1", NULL);
    cr_assert(strstr(resp.body.p, "\"seriesCountByMetricName\":[{\"name\":\"up\",\"value\":2}],"),
              "%s", resp.body.p);
    call("/api/v1/status/tsdb", "limit", "0", NULL);
    expect_error(400, "bad_data", "limit must be a positive number");
    call("/api/v1/status/tsdb", "limit", "ten", NULL);
    expect_error(400, "bad_data", "limit must be a positive number");
}

Test(query, runtimeinfo_and_flags)
{
    fx.v.start_time_ms = 1700000000120LL;
    call("/api/v1/status/runtimeinfo", NULL);
    cr_assert_eq(resp.status, 200);
    const char *want = "{\"status\":\"success\",\"data\":{\"startTime\":\"2023-11-14T22:13:20.12Z\","
                       "\"CWD\":\"";
    cr_assert(strncmp(resp.body.p, want, strlen(want)) == 0, "%s", resp.body.p);
    static const char *const keys[] = { "\"hostname\":\"", "\"serverTime\":\"20",
                                        "\"reloadConfigSuccess\":true",
                                        "\"lastConfigTime\":\"2023-11-14T22:13:20.12Z\"",
                                        "\"corruptionCount\":0", "\"goroutineCount\":",
                                        "\"GOMAXPROCS\":", "\"storageRetention\":\"15d\"}}" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_assert(strstr(resp.body.p, keys[i]), "%s missing: %s", keys[i], resp.body.p);

    call("/api/v1/status/flags", NULL);
    cr_assert_eq(resp.status, 200);
    const char *head = "{\"status\":\"success\",\"data\":{\"limits.";
    cr_assert(strncmp(resp.body.p, head, strlen(head)) == 0, "%s", resp.body.p);
    cr_assert(strstr(resp.body.p, "\"query.timeout\":\"120000ms\""), "%s", resp.body.p);
    cr_assert(strstr(resp.body.p, "\"server.log_level\":\"info\""), "%s", resp.body.p);
    cr_assert(strstr(resp.body.p, "\"storage.retention\":\"1296000000ms\","), "%s", resp.body.p);
    cr_assert(strstr(resp.body.p, "\"storage.trace_retention\":\"604800000ms\""), "%s", resp.body.p);
    size_t bl = strlen(resp.body.p);
    cr_assert(bl > 2 && strcmp(resp.body.p + bl - 2, "}}") == 0, "%s", resp.body.p);
}

/* ---- metrics and failures ---- */

Test(query, requests_are_counted_in_metrics)
{
    call("/api/v1/query", "query", "1", NULL);
    call("/api/v1/query", "query", "1", NULL);
    call("/api/v1/query", "query", "(", NULL);
    call("/api/v1/query_range", "query", "1", NULL);
    struct vg_buf m;
    vg_buf_init(&m);
    metrics_render(fx.v.metrics, &m);
    const char *s = vg_buf_cstr(&m);
    cr_assert(strstr(s, "vigil_query_requests_total{endpoint=\"query\",status=\"success\"} 2"), "%s", s);
    cr_assert(strstr(s, "vigil_query_requests_total{endpoint=\"query\",status=\"bad_data\"} 1"), "%s", s);
    cr_assert(strstr(s, "vigil_query_requests_total{endpoint=\"query_range\",status=\"bad_data\"} 1"), "%s", s);
    cr_assert(strstr(s, "vigil_query_duration_seconds_count{endpoint=\"query\"} 3"), "%s", s);
    vg_buf_free(&m);
}

Test(query, allocation_failures_answer_cleanly)
{
    static const char *const paths[] = { "/api/v1/query", "/api/v1/query_range",
                                         "/api/v1/query_exemplars", "/api/v1/status/tsdb",
                                         "/api/v1/parse_query", "/api/v1/status/flags" };
    long long s = T / 1000;
    char a[32], z[32];
    snprintf(a, sizeof a, "%lld", s - 60);
    snprintf(z, sizeof z, "%lld", s);
    for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++) {
        bool ok = false;
        for (uint64_t n = 1; n < 400 && !ok; n++) {
            fx.fail_after = n;
            call(paths[p], "query", "sum by (job) (rate(req_total[1m]))", "start", a,
                 "end", z, "step", "15", "time", z, NULL);
            fx.fail_after = 0;
            ok = resp.status == 200;
            if (!ok && resp.body.len)
                cr_assert(resp.status == 500 || resp.status == 422 || resp.status == 503,
                          "%s after %llu: %d %s", paths[p], (unsigned long long)n, resp.status,
                          resp.body.p);
        }
        cr_assert(ok, "%s never succeeded", paths[p]);
    }
}
