/* Tests server/api/exposition.c: the writer's escaping and number format, the parser on
 * everything text format 0.0.4 allows, its errors (with line and column), allocation
 * failure, and write-then-parse round trips. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../../../server/api/exposition.h"
#include "../../../../storage/base/vg_alloc.h"

static struct vg_arena *arena;
static struct vg_buf out;
static struct vg_err err;
static struct exposition_entry *es;
static size_t n;

static void setup(void)
{
    arena = vg_arena_new(4096);
    vg_buf_init(&out);
    vg_err_clear(&err);
}

static void teardown(void)
{
    vg_alloc_fail_after(0);
    vg_arena_free(arena);
    vg_buf_free(&out);
}

TestSuite(exposition, .init = setup, .fini = teardown);

static int parse(const char *s)
{
    return exposition_parse_all(s, strlen(s), arena, &es, &n, &err);
}

static void assert_str(struct vg_str s, const char *want)
{
    cr_assert(vg_str_eq_c(s, want), "got \"%.*s\", want \"%s\"", (int)s.len, s.p, want);
}

static void assert_parse_error(const char *text, const char *msg)
{
    vg_err_clear(&err);
    int rc = parse(text);
    cr_assert_eq(rc, VG_EINVAL, "accepted: %s", text);
    cr_assert_eq(err.code, VG_EINVAL);
    cr_assert(strstr(err.msg, msg), "for %s got \"%s\", want \"%s\"", text, err.msg, msg);
}

/* ---- writer ---- */

Test(exposition, writes_samples_with_escaped_labels_and_go_floats)
{
    struct label ls[] = {
        { VG_STR("__name__"), VG_STR("ignored") },
        { VG_STR("path"), VG_STR("C:\\dir\n\"q\"") },
        { VG_STR("code"), VG_STR("200") },
    };
    exposition_write_sample(&out, VG_STR("http_requests_total"), ls, 3, 1e6, true, 1700000000123);
    exposition_write_sample(&out, VG_STR("up"), NULL, 0, 1, false, 0);
    exposition_write_sample(&out, VG_STR("only_name"), ls, 1, NAN, true, -5);
    exposition_write_sample(&out, VG_STR("x"), NULL, 0, -INFINITY, false, 0);
    cr_assert_str_eq(vg_buf_cstr(&out),
                     "http_requests_total{path=\"C:\\\\dir\\n\\\"q\\\"\",code=\"200\"} 1e+06 "
                     "1700000000123\n"
                     "up 1\n"
                     "only_name NaN -5\n"
                     "x -Inf\n");
}

Test(exposition, writes_help_and_type_lines)
{
    exposition_write_help(&out, VG_STR("m"), VG_STR("a \\ b\nc \"d\""));
    exposition_write_type(&out, VG_STR("m"), EXPOSITION_HISTOGRAM);
    exposition_write_type(&out, VG_STR("m"), (enum exposition_type)99);
    cr_assert_str_eq(vg_buf_cstr(&out), "# HELP m a \\\\ b\\nc \"d\"\n"
                                        "# TYPE m histogram\n"
                                        "# TYPE m untyped\n");
}

Test(exposition, validates_names)
{
    cr_assert(exposition_valid_name(VG_STR("a:b_c9"), true));
    cr_assert_not(exposition_valid_name(VG_STR("a:b"), false));
    cr_assert_not(exposition_valid_name(VG_STR("9a"), true));
    cr_assert_not(exposition_valid_name(VG_STR(""), true));
    cr_assert_not(exposition_valid_name(VG_STR("a.b"), true));
    cr_assert(exposition_valid_name(VG_STR("_x"), false));
}

/* ---- parser ---- */

Test(exposition, parses_a_typical_scrape)
{
    const char *text =
        "# HELP http_requests_total The total number of HTTP requests.\n"
        "# TYPE http_requests_total counter\n"
        "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
        "http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n"
        "\n"
        "# Escaping in label values:\n"
        "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find "
        "file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n"
        "# Minimalistic line:\n"
        "metric_without_timestamp_and_labels 12.47\n"
        "# A weird metric from before the epoch:\n"
        "something_weird{problem=\"division by zero\"} +Inf -3982045\n"
        "# TYPE rpc_duration_seconds summary\n"
        "rpc_duration_seconds{quantile=\"0.5\"} 4773\n"
        "rpc_duration_seconds_sum 1.7560473e+07\n"
        "  \t\n"
        "nan_value NaN\n"
        "neg_inf -Inf\n";
    cr_assert_eq(parse(text), 0, "%s", err.msg);
    cr_assert_eq(n, 12);
    cr_assert_eq(es[0].kind, EXPOSITION_HELP);
    assert_str(es[0].name, "http_requests_total");
    assert_str(es[0].help, "The total number of HTTP requests.");
    cr_assert_eq(es[1].kind, EXPOSITION_TYPE);
    cr_assert_eq(es[1].type, EXPOSITION_COUNTER);
    cr_assert_eq(es[2].kind, EXPOSITION_SAMPLE);
    cr_assert_eq(es[2].line, 3);
    assert_str(es[2].name, "http_requests_total");
    cr_assert_eq(es[2].nlabels, 2);
    assert_str(es[2].labels[0].name, "method");
    assert_str(es[2].labels[0].value, "post");
    assert_str(es[2].labels[1].value, "200");
    cr_assert_eq(es[2].value, 1027);
    cr_assert(es[2].has_ts);
    cr_assert_eq(es[2].ts_ms, 1395066363000);
    cr_assert_eq(es[3].value, 3);
    assert_str(es[4].labels[0].value, "C:\\DIR\\FILE.TXT");
    assert_str(es[4].labels[1].value, "Cannot find file:\n\"FILE.TXT\"");
    cr_assert_eq(es[4].value, 1.458255915e9);
    cr_assert_not(es[5].has_ts);
    cr_assert_eq(es[5].nlabels, 0);
    cr_assert_eq(es[5].value, 12.47);
    cr_assert(isinf(es[6].value) && es[6].value > 0);
    cr_assert_eq(es[6].ts_ms, -3982045);
    cr_assert_eq(es[7].type, EXPOSITION_SUMMARY);
    cr_assert_eq(es[9].value, 1.7560473e+07);
    cr_assert(isnan(es[10].value));
    cr_assert_eq(es[11].line, 17);
    cr_assert(isinf(es[11].value) && es[11].value < 0);
}

Test(exposition, accepts_loose_but_valid_spacing_and_forms)
{
    const char *text = "  a{ x = \"1\" , y=\"2\", } 1.5e-3\t 7  \n"
                       "b{} 0x1p-2\n"
                       "c{z=\"\"}-0\n"
                       "#HELP d Help without space after hash\n"
                       "# HELP e\n"
                       "# TYPE f   untyped  \n"
                       "# comment with HELP later\n"
                       "#\n"
                       "g .5\n"
                       "h inf\n"
                       "i -Infinity\n"
                       "j nan\n"
                       "k 1 +12";
    cr_assert_eq(parse(text), 0, "%s", err.msg);
    cr_assert_eq(n, 11);
    cr_assert_eq(es[0].nlabels, 2);
    assert_str(es[0].labels[1].name, "y");
    cr_assert_eq(es[0].value, 1.5e-3);
    cr_assert_eq(es[0].ts_ms, 7);
    cr_assert_eq(es[1].nlabels, 0);
    cr_assert_eq(es[1].value, 0.25);
    cr_assert(es[2].value == 0 && signbit(es[2].value));
    assert_str(es[2].labels[0].value, "");
    cr_assert_eq(es[3].kind, EXPOSITION_HELP);
    assert_str(es[3].help, "Help without space after hash");
    assert_str(es[4].help, "");
    cr_assert_eq(es[5].type, EXPOSITION_UNTYPED);
    cr_assert_eq(es[6].value, 0.5);
    cr_assert(isinf(es[7].value));
    cr_assert(isinf(es[8].value) && es[8].value < 0);
    cr_assert(isnan(es[9].value));
    cr_assert_eq(es[10].ts_ms, 12);
}

Test(exposition, help_unescapes_backslash_and_newline_only)
{
    cr_assert_eq(parse("# HELP m a\\\\b\\nc \"q\" {x}  \n"), 0, "%s", err.msg);
    assert_str(es[0].help, "a\\b\nc \"q\" {x}  ");
    assert_parse_error("# HELP m bad \\t escape\n", "line 1 column 14: invalid escape");
}

Test(exposition, reports_errors_with_line_and_column)
{
    assert_parse_error("ok 1\n9bad 1\n", "line 2 column 1: expected metric name");
    assert_parse_error("a-b 1\n", "line 1 column 2: unexpected '-' after metric name");
    assert_parse_error("a{b=\"\\x\"} 1\n", "line 1 column 6: invalid escape");
    assert_parse_error("a{b=\"x} 1\n", "line 1 column 5: unterminated label value");
    assert_parse_error("a{b=\"1\",b=\"2\"} 1\n", "line 1 column 2: duplicate label name \"b\"");
    assert_parse_error("a{__name__=\"x\"} 1\n", "column 3: label name \"__name__\" is reserved");
    assert_parse_error("a{b} 1\n", "column 4: expected '=' after label name, found '}'");
    assert_parse_error("a{b=1} 1\n", "column 5: expected '\"'");
    assert_parse_error("a{b=\"1\" c=\"2\"} 1\n", "column 9: expected ',' or '}'");
    assert_parse_error("a{b=\"1\"\n", "column 8: expected ',' or '}' after label value, found end");
    assert_parse_error("a{1=\"x\"} 1\n", "column 3: expected label name");
    assert_parse_error("a\n", "column 2: expected a value");
    assert_parse_error("a{}\n", "column 4: expected a value");
    assert_parse_error("a 1x\n", "column 3: invalid value \"1x\"");
    assert_parse_error("a 1_000\n", "invalid value");
    assert_parse_error("a 0x10\n", "invalid value");
    assert_parse_error("a +NaN\n", "invalid value");
    assert_parse_error("a 1e400\n", "invalid value");
    assert_parse_error("a 1\r\n", "invalid value");
    assert_parse_error("a 1 12.5\n", "column 5: invalid timestamp");
    assert_parse_error("a 1 9223372036854775808\n", "invalid timestamp");
    assert_parse_error("a 1 2 3\n", "column 7: unexpected '3' after the timestamp");
    assert_parse_error("# TYPE a gauges\n", "column 10: unknown metric type \"gauges\"");
    assert_parse_error("# TYPE a gauge x\n", "column 16: unexpected 'x' after the metric type");
    assert_parse_error("# TYPE a\n", "unknown metric type");
    assert_parse_error("# HELP 1a x\n", "column 8: expected metric name");
    assert_parse_error("# HELP\n", "expected metric name, found end of line");
    assert_parse_error("# TYPE a.b gauge\n", "column 9: unexpected '.' after metric name");
    assert_parse_error("a{b=\"\xff\"} 1\n", "column 6: invalid UTF-8");
    assert_parse_error("a{b=\"\xed\xa0\x80\"} 1\n", "invalid UTF-8"); /* a surrogate */
    assert_parse_error("a{b=\"\xc0\xaf\"} 1\n", "invalid UTF-8");     /* overlong */
}

Test(exposition, timestamps_cover_the_int64_range)
{
    cr_assert_eq(parse("a 1 9223372036854775807\nb 1 -9223372036854775808\n"), 0, "%s", err.msg);
    cr_assert_eq(es[0].ts_ms, INT64_MAX);
    cr_assert_eq(es[1].ts_ms, INT64_MIN);
}

Test(exposition, long_values_and_utf8_label_values_parse)
{
    char text[256];
    snprintf(text, sizeof text, "a{s=\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"} 0.%0100d1\n", 0);
    cr_assert_eq(parse(text), 0, "%s", err.msg);
    cr_assert_eq(es[0].value, 1e-101);
    assert_str(es[0].labels[0].value, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
}

Test(exposition, empty_and_comment_only_inputs_give_no_entries)
{
    cr_assert_eq(parse(""), 0);
    cr_assert_eq(n, 0);
    cr_assert_eq(parse("\n\n# just a comment\n   \n"), 0);
    cr_assert_eq(n, 0);
}

static int stop_at_second(void *ctx, const struct exposition_entry *e, struct vg_err *e2)
{
    (void)e;
    if (++*(int *)ctx == 2)
        return vg_err_set(e2, VG_ETOOLARGE, "enough");
    return 0;
}

Test(exposition, a_callback_can_stop_the_parse)
{
    int calls = 0;
    const char *text = "a 1\nb 2\nc 3\n";
    int rc = exposition_parse(text, strlen(text), arena, stop_at_second, &calls, &err);
    cr_assert_eq(rc, VG_ETOOLARGE);
    cr_assert_eq(calls, 2);
    cr_assert_str_eq(err.msg, "enough");
}

Test(exposition, allocation_failure_is_a_clean_error)
{
    const char *text = "a{x=\"1\",y=\"2\\n\"} 1\n# HELP a h\\n\nb 2\n";
    int ok_at = 0;
    for (uint64_t k = 1; k < 50 && !ok_at; k++) {
        struct vg_arena *a = vg_arena_new(64);
        vg_alloc_fail_after(k);
        int rc = exposition_parse_all(text, strlen(text), a, &es, &n, &err);
        vg_alloc_fail_after(0);
        if (rc == 0)
            ok_at = (int)k;
        else
            cr_assert_eq(rc, VG_ENOMEM, "k=%d rc=%d %s", (int)k, rc, err.msg);
        vg_arena_free(a);
    }
    cr_assert(ok_at > 1);
    /* An arena limit turns into the same error. */
    struct vg_arena *small = vg_arena_new(64);
    vg_arena_set_limit(small, 64);
    char big[4096];
    size_t len = 0;
    for (int i = 0; i < 100; i++)
        len += (size_t)snprintf(big + len, sizeof big - len, "m{i=\"%d\\n\"} %d\n", i, i);
    cr_assert_eq(exposition_parse_all(big, len, small, &es, &n, &err), VG_ENOMEM);
    vg_arena_free(small);
}

Test(exposition, many_labels_and_duplicates_far_apart)
{
    struct vg_buf t;
    vg_buf_init(&t);
    vg_buf_puts(&t, "m{");
    for (int i = 0; i < 200; i++)
        vg_buf_printf(&t, "l%d=\"%d\",", i, i);
    vg_buf_puts(&t, "} 1\n");
    cr_assert_eq(parse(vg_buf_cstr(&t)), 0, "%s", err.msg);
    cr_assert_eq(es[0].nlabels, 200);
    assert_str(es[0].labels[199].name, "l199"); /* order as written */
    t.len -= 4;
    vg_buf_puts(&t, "l7=\"x\"} 1\n");
    assert_parse_error(vg_buf_cstr(&t), "duplicate label name \"l7\"");
    vg_buf_free(&t);
}

Test(exposition, written_samples_parse_back_identically)
{
    struct label ls[] = {
        { VG_STR("a"), VG_STR("back\\slash") },
        { VG_STR("b"), VG_STR("quote\"newline\n") },
        { VG_STR("c"), VG_STR("") },
    };
    const double values[] = { 0.1, -2.5e-300, 1.7976931348623157e308, 5e-324, 123456789, -0.0,
                              INFINITY, NAN };
    size_t nv = sizeof values / sizeof values[0];
    exposition_write_help(&out, VG_STR("rt"), VG_STR("multi\nline \\ help"));
    exposition_write_type(&out, VG_STR("rt"), EXPOSITION_GAUGE);
    for (size_t i = 0; i < nv; i++)
        exposition_write_sample(&out, VG_STR("rt"), ls, 3, values[i], i % 2, (int64_t)i - 3);
    cr_assert_eq(parse(vg_buf_cstr(&out)), 0, "%s\n%s", err.msg, out.p);
    cr_assert_eq(n, nv + 2);
    assert_str(es[0].help, "multi\nline \\ help");
    for (size_t i = 0; i < nv; i++) {
        const struct exposition_entry *e = &es[i + 2];
        cr_assert_eq(e->nlabels, 3);
        for (size_t k = 0; k < 3; k++)
            cr_assert(vg_str_eq(e->labels[k].value, ls[k].value));
        if (isnan(values[i]))
            cr_assert(isnan(e->value));
        else
            cr_assert(e->value == values[i] && signbit(e->value) == signbit(values[i]),
                      "value %zu", i);
        cr_assert_eq(e->has_ts, i % 2 == 1);
        if (e->has_ts)
            cr_assert_eq(e->ts_ms, (int64_t)i - 3);
    }
}

Test(exposition, type_names_match_the_format)
{
    cr_assert_str_eq(exposition_type_name(EXPOSITION_COUNTER), "counter");
    cr_assert_str_eq(exposition_type_name(EXPOSITION_GAUGE), "gauge");
    cr_assert_str_eq(exposition_type_name(EXPOSITION_HISTOGRAM), "histogram");
    cr_assert_str_eq(exposition_type_name(EXPOSITION_SUMMARY), "summary");
    cr_assert_str_eq(exposition_type_name(EXPOSITION_UNTYPED), "untyped");
}

/* ---- OpenMetrics 1.0 (exposition_parse_openmetrics) ---- */

static struct exposition_entry om_es[64];
static size_t om_n;

static int om_collect(void *ctx, const struct exposition_entry *e, struct vg_err *e2)
{
    (void)ctx, (void)e2;
    if (om_n < 64)
        om_es[om_n++] = *e;
    return 0;
}

static int parse_om_all(const char *s)
{
    om_n = 0;
    return exposition_parse_openmetrics(s, strlen(s), arena, om_collect, NULL, &err);
}

Test(exposition, openmetrics_types_units_exemplars_and_float_timestamps)
{
    const char *body = "# TYPE req counter\n"
                       "# UNIT req requests\n"
                       "# HELP req Requests \\\"served\\\".\n"
                       "req_total{path=\"/\"} 7 1520879607.789 # {trace_id=\"a\"} 1 1520879607.5\n"
                       "req_created{path=\"/\"} 1520000000\n"
                       "# TYPE g gaugehistogram\n"
                       "# TYPE i info\n"
                       "# TYPE s stateset\n"
                       "# TYPE u unknown\n"
                       "u 1 # {} 2\n"
                       "# EOF\n";
    cr_assert_eq(parse_om_all(body), 0, "%s", err.msg);
    cr_assert_eq(om_n, 10);
    cr_assert_eq(om_es[1].kind, EXPOSITION_UNIT);
    assert_str(om_es[1].unit, "requests");
    cr_assert_eq(om_es[2].kind, EXPOSITION_HELP);
    assert_str(om_es[2].help, "Requests \"served\".");
    cr_assert_eq(om_es[3].kind, EXPOSITION_SAMPLE);
    cr_assert(om_es[3].has_ts);
    cr_assert_eq(om_es[3].ts_ms, 1520879607789);
    cr_assert(om_es[3].has_exemplar);
    cr_assert_eq(om_es[3].ex_nlabels, 1);
    assert_str(om_es[3].ex_labels[0].value, "a");
    cr_assert_eq(om_es[3].ex_value, 1);
    cr_assert(om_es[3].ex_has_ts);
    cr_assert_eq(om_es[3].ex_ts_ms, 1520879607500);
    assert_str(om_es[4].name, "req_created");
    cr_assert_eq(om_es[5].type, EXPOSITION_GAUGEHISTOGRAM);
    cr_assert_eq(om_es[6].type, EXPOSITION_INFO);
    cr_assert_eq(om_es[7].type, EXPOSITION_STATESET);
    cr_assert_eq(om_es[8].type, EXPOSITION_UNKNOWN);
    cr_assert(om_es[9].has_exemplar);
    cr_assert_eq(om_es[9].ex_nlabels, 0);
    cr_assert_str_eq(exposition_type_name(EXPOSITION_GAUGEHISTOGRAM), "gaugehistogram");
}

static void om_fails(const char *body, const char *needle)
{
    int rc = parse_om_all(body);
    cr_assert_eq(rc, VG_EINVAL, "expected an error for %s", body);
    cr_assert(strstr(err.msg, needle), "\"%s\" lacks \"%s\"", err.msg, needle);
}

Test(exposition, openmetrics_errors)
{
    om_fails("a 1\n", "missing # EOF");
    om_fails("a 1\n# EOF\nb 2\n", "line 3 column 1: unexpected data after # EOF");
    om_fails("a 1\n\n# EOF\n", "line 2 column 1: blank lines");
    om_fails("# random comment\n# EOF\n", "unknown comment");
    om_fails("# TYPE a untyped\n# EOF\n", "unknown metric type \"untyped\"");
    om_fails("a 1 NaN\n# EOF\n", "invalid timestamp");
    om_fails("a 1 # trace\n# EOF\n", "expected '{' to start the exemplar");
    om_fails("a 1 #{x=\"1\"} 1\n# EOF\n", "before the exemplar");
    om_fails("a 1 # {x=\"1\"}\n# EOF\n", "expected an exemplar value");
    om_fails("a 1 # {x=\"1\"} 1 2 3\n# EOF\n", "after the exemplar");
    om_fails("# EOF extra\n# EOF\n", "unknown comment");
    /* text 0.0.4 keeps its own rules */
    cr_assert_eq(parse("# TYPE a unknown\n"), VG_EINVAL);
    cr_assert_eq(parse("# UNIT a seconds\na 1\n"), 0, "an ordinary comment in 0.0.4");
    cr_assert_eq(n, 1);
    cr_assert_eq(parse_om_all("a 1\n# EOF"), 0, "the final newline is optional");
}
