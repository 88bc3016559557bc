/* Tests server/api/prometheus.c: time and limit parameters as Prometheus parses them, U__
 * name unescaping, the JSON envelope pieces, buildinfo, and the handlers' answers that
 * need no store (parameter errors, buildinfo). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../../../../server/api/prometheus.h"
#include "../../../../storage/base/vg_alloc.h"

static struct vg_err err;

static int64_t t_ok(const char *s)
{
    int64_t ms = 0;
    vg_err_clear(&err);
    cr_assert_eq(prometheus_parse_time(s, &ms, &err), 0, "%s: %s", s, err.msg);
    return ms;
}

static void t_bad(const char *s)
{
    int64_t ms = 0;
    vg_err_clear(&err);
    cr_assert_eq(prometheus_parse_time(s, &ms, &err), VG_EINVAL, "%s parsed to %lld", s,
                 (long long)ms);
    char want[128];
    snprintf(want, sizeof want, "cannot parse \"%s\" to a valid timestamp", s);
    cr_assert_str_eq(err.msg, want);
}

Test(prometheus, unix_seconds_with_fractions)
{
    cr_assert_eq(t_ok("0"), 0);
    cr_assert_eq(t_ok("1700000000"), 1700000000000LL);
    cr_assert_eq(t_ok("1700000000.123"), 1700000000123LL);
    cr_assert_eq(t_ok("1700000000.1239"), 1700000000124LL, "rounded to the millisecond");
    cr_assert_eq(t_ok("1.5"), 1500);
    cr_assert_eq(t_ok("-1.5"), -1500);
    cr_assert_eq(t_ok("+2"), 2000);
    cr_assert_eq(t_ok(".25"), 250);
    cr_assert_eq(t_ok("1.7e9"), 1700000000000LL);
    cr_assert_eq(t_ok("1E3"), 1000000);
}

Test(prometheus, rfc3339)
{
    cr_assert_eq(t_ok("1970-01-01T00:00:00Z"), 0);
    cr_assert_eq(t_ok("2023-11-14T22:13:20Z"), 1700000000000LL);
    cr_assert_eq(t_ok("2023-11-14T22:13:20.5Z"), 1700000000500LL);
    cr_assert_eq(t_ok("2023-11-14T22:13:20.123456789Z"), 1700000000123LL, "truncated");
    cr_assert_eq(t_ok("2023-11-14T23:13:20+01:00"), 1700000000000LL);
    cr_assert_eq(t_ok("2023-11-14T20:43:20-01:30"), 1700000000000LL);
    cr_assert_eq(t_ok("2024-02-29T00:00:00Z"), 1709164800000LL);
    cr_assert_eq(t_ok("1969-12-31T23:59:59.5Z"), -500);
    cr_assert_eq(t_ok("0001-01-01T00:00:00Z"), -62135596800000LL);
}

Test(prometheus, boundary_strings_of_client_golang)
{
    cr_assert_eq(t_ok("-292273086-05-16T16:47:06Z"), PROMETHEUS_MIN_TIME_MS);
    cr_assert_eq(t_ok("292277025-08-18T07:12:54.999999999Z"), PROMETHEUS_MAX_TIME_MS);
}

Test(prometheus, bad_times)
{
    static const char *const bad[] = {
        "", "abc", "1h", "now", "NaN", "Inf", "+Inf", "0x10", " 1", "1 ", "1e", "1.2.3", "-",
        "1e400", "9223372036854776", "2023-13-01T00:00:00Z", "2023-02-29T00:00:00Z",
        "2023-11-14T24:00:00Z", "2023-11-14T22:13:60Z", "2023-11-14 22:13:20Z",
        "2023-11-14T22:13:20", "2023-11-14T22:13:20.Z", "2023-11-14T22:13:20+0100",
        "2023-11-14T22:13:20Zjunk", "2023-11-14T22:13:20.1234567891Z", "23-11-14T22:13:20Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        t_bad(bad[i]);
}

static struct http_request req_with(struct http_arg *args, size_t n)
{
    struct http_request r;
    memset(&r, 0, sizeof r);
    r.method = "GET";
    r.path = "/api/v1/series";
    r.args = args;
    r.nargs = n;
    return r;
}

Test(prometheus, time_param_defaults_and_errors)
{
    struct http_arg args[] = { { "start", "10" }, { "end", "" }, { "x", "tomorrow" } };
    struct http_request r = req_with(args, 3);
    int64_t ms;
    cr_assert_eq(prometheus_time_param(&r, "start", 0, &ms, &err), 0);
    cr_assert_eq(ms, 10000);
    cr_assert_eq(prometheus_time_param(&r, "end", PROMETHEUS_MAX_TIME_MS, &ms, &err), 0);
    cr_assert_eq(ms, PROMETHEUS_MAX_TIME_MS, "empty means default");
    cr_assert_eq(prometheus_time_param(&r, "missing", 42, &ms, &err), 0);
    cr_assert_eq(ms, 42);
    cr_assert_eq(prometheus_time_param(&r, "x", 0, &ms, &err), VG_EINVAL);
    cr_assert_str_eq(err.msg,
                     "invalid parameter \"x\": cannot parse \"tomorrow\" to a valid timestamp");
}

Test(prometheus, limit_param)
{
    size_t limit = 99;
    struct http_request none = req_with(NULL, 0);
    cr_assert_eq(prometheus_limit_param(&none, &limit, &err), 0);
    cr_assert_eq(limit, 0);
    struct http_arg a[] = { { "limit", "25" } };
    struct http_request r = req_with(a, 1);
    cr_assert_eq(prometheus_limit_param(&r, &limit, &err), 0);
    cr_assert_eq(limit, 25);
    static const char *const bad[] = { "-1", "x", "1.5", " 3", "99999999999999999999999" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        a[0].value = bad[i];
        cr_assert_eq(prometheus_limit_param(&r, &limit, &err), VG_EINVAL, "%s", bad[i]);
        cr_assert(strncmp(err.msg, "invalid parameter \"limit\": ", 27) == 0, "%s", err.msg);
    }
}

static const char *unescape(const char *s)
{
    static struct vg_buf b;
    vg_buf_reset(&b);
    prometheus_unescape_name(s, strlen(s), &b);
    return vg_buf_cstr(&b);
}

Test(prometheus, u_escaped_label_names)
{
    cr_assert_str_eq(unescape("job"), "job");
    cr_assert_str_eq(unescape("U__my_2e_name"), "my.name");
    cr_assert_str_eq(unescape("U__a__b"), "a_b");
    cr_assert_str_eq(unescape("U__caf_e9_"), "caf\xc3\xa9");
    cr_assert_str_eq(unescape("U___1F600_"), "\xf0\x9f\x98\x80");
    cr_assert_str_eq(unescape("U__"), "");
    /* Malformed escapes stay as they were, as in Prometheus. */
    cr_assert_str_eq(unescape("U__a_2e"), "U__a_2e");
    cr_assert_str_eq(unescape("U__a_"), "U__a_");
    cr_assert_str_eq(unescape("U__a_zz_"), "U__a_zz_");
    cr_assert_str_eq(unescape("U__a_1234567_"), "U__a_1234567_");
    cr_assert_str_eq(unescape("U___D800_"), "U___D800_");
    cr_assert_str_eq(unescape("U___110000_"), "U___110000_");
}

static struct vg_buf jb;

static const char *json(void)
{
    return vg_buf_cstr(&jb);
}

Test(prometheus, envelope_and_strings)
{
    vg_buf_init(&jb);
    const char *v[] = { "a", "b\"c", "\xe2\x82\xac" };
    prometheus_json_begin(&jb);
    prometheus_json_strings(&jb, v, 3);
    prometheus_json_end(&jb, NULL);
    cr_assert_str_eq(json(), "{\"status\":\"success\",\"data\":[\"a\",\"b\\\"c\",\"\xe2\x82\xac\"]}");
    vg_buf_reset(&jb);
    prometheus_json_begin(&jb);
    prometheus_json_strings(&jb, v, 0);
    prometheus_json_end(&jb, "results truncated due to limit");
    cr_assert_str_eq(json(), "{\"status\":\"success\",\"data\":[],"
                             "\"warnings\":[\"results truncated due to limit\"]}");
    vg_buf_free(&jb);
}

Test(prometheus, buildinfo_has_string_fields_and_no_features)
{
    vg_buf_init(&jb);
    prometheus_json_buildinfo(&jb);
    const char *s = json();
    static const char *const keys[] = { "\"version\":\"" PROMETHEUS_API_VERSION "\"",
                                        "\"revision\":\"vigil-" VIGIL_VERSION "\"",
                                        "\"branch\":\"", "\"buildUser\":\"", "\"buildDate\":\"",
                                        "\"goVersion\":\"" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_assert(strstr(s, keys[i]), "%s missing in %s", keys[i], s);
    cr_assert_null(strstr(s, "features"));
    cr_assert_eq(s[0], '{');
    cr_assert_eq(s[strlen(s) - 1], '}');
    vg_buf_free(&jb);
}

Test(prometheus, sort_unique)
{
    const char *v[] = { "job", "__name__", "env", "job", "env", "a" };
    size_t n = prometheus_sort_unique(v, 6);
    cr_assert_eq(n, 4);
    cr_assert_str_eq(v[0], "__name__");
    cr_assert_str_eq(v[1], "a");
    cr_assert_str_eq(v[2], "env");
    cr_assert_str_eq(v[3], "job");
    cr_assert_eq(prometheus_sort_unique(v, 0), 0);
}

/* ---- handlers, on the paths that answer before touching the store ---- */

static const struct http_route *route(const char *path)
{
    for (size_t i = 0; i < mod_prometheus_api.nroutes; i++)
        if (strcmp(mod_prometheus_api.routes[i].path, path) == 0)
            return &mod_prometheus_api.routes[i];
    cr_assert_fail("no route %s", path);
    return NULL;
}

static struct http_response resp;

static void call(const char *route_path, const char *path, struct http_arg *args, size_t n)
{
    struct http_request r = req_with(args, n);
    r.path = path;
    vg_buf_free(&resp.body);
    memset(&resp, 0, sizeof resp);
    resp.status = 200;
    route(route_path)->fn(NULL, &r, &resp);
    vg_buf_cstr(&resp.body);
}

static void resp_fini(void)
{
    vg_buf_free(&resp.body);
}

TestSuite(prometheus_handlers, .fini = resp_fini);

Test(prometheus_handlers, buildinfo)
{
    call("/api/v1/status/buildinfo", "/api/v1/status/buildinfo", NULL, 0);
    cr_assert_eq(resp.status, 200);
    cr_assert(strncmp(resp.body.p, "{\"status\":\"success\",\"data\":{\"version\":", 38) == 0,
              "%s", resp.body.p);
}

Test(prometheus_handlers, series_parameter_errors)
{
    call("/api/v1/series", "/api/v1/series", NULL, 0);
    cr_assert_eq(resp.status, 400);
    cr_assert_str_eq(resp.body.p, "{\"status\":\"error\",\"errorType\":\"bad_data\","
                                  "\"error\":\"no match[] parameter provided\"}");
    struct http_arg bad_match[] = { { "match[]", "up" }, { "match[]", "up{" } };
    call("/api/v1/series", "/api/v1/series", bad_match, 2);
    cr_assert_eq(resp.status, 400);
    cr_assert(strstr(resp.body.p, "invalid parameter \\\"match[]\\\": 1:4: parse error: "),
              "%s", resp.body.p);
    struct http_arg bad_start[] = { { "match[]", "up" }, { "start", "yesterday" } };
    call("/api/v1/series", "/api/v1/series", bad_start, 2);
    cr_assert_eq(resp.status, 400);
    cr_assert(strstr(resp.body.p, "invalid parameter \\\"start\\\": cannot parse"), "%s",
              resp.body.p);
    struct http_arg bad_limit[] = { { "match[]", "up" }, { "limit", "-3" } };
    call("/api/v1/series", "/api/v1/series", bad_limit, 2);
    cr_assert_eq(resp.status, 400);
    struct http_arg empty_sel[] = { { "match[]", "{job=~\".*\"}" } };
    call("/api/v1/series", "/api/v1/series", empty_sel, 1);
    cr_assert_eq(resp.status, 400);
    cr_assert(strstr(resp.body.p, "non-empty matcher"), "%s", resp.body.p);
}

Test(prometheus_handlers, labels_and_values_parameter_errors)
{
    struct http_arg bad_end[] = { { "end", "x" } };
    call("/api/v1/labels", "/api/v1/labels", bad_end, 1);
    cr_assert_eq(resp.status, 400);
    cr_assert(strstr(resp.body.p, "invalid parameter \\\"end\\\""), "%s", resp.body.p);
    call("/api/v1/label/", "/api/v1/label/job", NULL, 0);
    cr_assert_eq(resp.status, 404);
    call("/api/v1/label/", "/api/v1/label//values", NULL, 0);
    cr_assert_eq(resp.status, 404);
    call("/api/v1/label/", "/api/v1/label/\xff/values", NULL, 0);
    cr_assert_eq(resp.status, 400);
    cr_assert(strstr(resp.body.p, "invalid label name"), "%s", resp.body.p);
    struct http_arg bad_match[] = { { "match[]", "{a=\"b\"" } };
    call("/api/v1/label/", "/api/v1/label/U__a_2e_b/values", bad_match, 1);
    cr_assert_eq(resp.status, 400);
    cr_assert(strstr(resp.body.p, "match[]"), "%s", resp.body.p);
}

Test(prometheus_handlers, metadata_parameter_errors)
{
    struct http_arg a[] = { { "limit", "ten" } };
    call("/api/v1/metadata", "/api/v1/metadata", a, 1);
    cr_assert_eq(resp.status, 400);
    cr_assert(strstr(resp.body.p, "limit must be a number"), "%s", resp.body.p);
    a[0].key = "limit_per_metric";
    call("/api/v1/metadata", "/api/v1/metadata", a, 1);
    cr_assert_eq(resp.status, 400);
    cr_assert(strstr(resp.body.p, "limit_per_metric must be a number"), "%s", resp.body.p);
}
