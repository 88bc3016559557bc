/* Tests server/logql/pipeline.c: real LogQL queries parsed with logql_parse and run over
 * lines: line filters (literal, regex, pattern, ip), the parsers (json with and without
 * paths, logfmt and its flags, regexp, pattern, unpack), label filters of every type with
 * Loki's __error__ behaviour, line_format, label_format, drop, keep, decolorize, unwrap
 * conversions and post filters, name clashes (_extracted), structured metadata, output
 * ordering and hashing, needles, parser hints, build errors and allocation failure. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../../../../server/logql/parser.h"
#include "../../../../server/logql/pipeline.h"
#include "../../../../storage/base/vg_alloc.h"

static struct logql_expr *ex;
static struct logql_pipeline *pl;
static struct vg_err err;
static struct logql_pipeline_out out;
static const struct label stream[] = {
    { { "app", 3 }, { "api", 3 } },
    { { "env", 3 }, { "prod", 4 } },
};
static struct label meta[4];
static size_t nmeta;

static void fini(void)
{
    logql_pipeline_free(pl);
    pl = NULL;
    logql_expr_free(ex);
    ex = NULL;
    nmeta = 0;
    vg_alloc_fail_after(0);
}

TestSuite(logql_pipeline, .fini = fini);

/* Parses q and builds its pipeline; returns the build's error code (0 when built). */
static int try_build(const char *q)
{
    logql_pipeline_free(pl);
    pl = NULL;
    logql_expr_free(ex);
    vg_err_clear(&err);
    ex = logql_parse(q, strlen(q), &err);
    cr_assert(ex, "parse %s: %s", q, err.msg);
    const struct logql_node *n = ex->root;
    const struct logql_unwrap *u = NULL;
    if (n->kind == LQ_RANGE_AGG) {
        u = n->range.unwrap;
        n = n->range.log;
    }
    cr_assert_eq(n->kind, LQ_LOG);
    pl = logql_pipeline_new(n, u, &err);
    return pl ? 0 : err.code;
}

static void build(const char *q)
{
    int rc = try_build(q);
    cr_assert_eq(rc, 0, "build %s: %s", q, err.msg);
}

static int run_at(int64_t t, const char *line)
{
    memset(&out, 0, sizeof out);
    return logql_pipeline_process(pl, t, vg_str_c(line), stream, 2, meta, nmeta, &out);
}

static int run(const char *line)
{
    return run_at(0, line);
}

static void add_meta(const char *name, const char *value)
{
    meta[nmeta++] = (struct label){ vg_str_c(name), vg_str_c(value) };
}

/* The output labels as {a="b", c="d"}. */
static const char *labels(void)
{
    static char buf[2048];
    size_t w = 0;
    w += (size_t)snprintf(buf + w, sizeof buf - w, "{");
    for (size_t i = 0; i < out.nlabels; i++)
        w += (size_t)snprintf(buf + w, sizeof buf - w, "%s%.*s=\"%.*s\"", i ? ", " : "",
                              (int)out.labels[i].name.len, out.labels[i].name.p,
                              (int)out.labels[i].value.len, out.labels[i].value.p);
    snprintf(buf + w, sizeof buf - w, "}");
    return buf;
}

/* The value of label name in the output, or NULL. */
static const char *get(const char *name)
{
    static char buf[1024];
    for (size_t i = 0; i < out.nlabels; i++)
        if (vg_str_eq_c(out.labels[i].name, name)) {
            snprintf(buf, sizeof buf, "%.*s", (int)out.labels[i].value.len, out.labels[i].value.p);
            return buf;
        }
    return NULL;
}

static const char *line_out(void)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "%.*s", (int)out.line.len, out.line.p);
    return buf;
}

#define KEEP(l) cr_assert_eq(run(l), 1, "line %s should be kept", l)
#define DROP(l) cr_assert_eq(run(l), 0, "line %s should be dropped", l)
#define LABELS(want) cr_assert_str_eq(labels(), want)
#define LABEL(n, want) cr_assert_str_eq(get(n) ? get(n) : "(absent)", want, "label %s", n)
#define NO_LABEL(n) cr_assert_null(get(n), "label %s should be absent", n)

/* ---- line filters ---- */

Test(logql_pipeline, contains_and_not_contains)
{
    build("{app=\"api\"} |= \"error\" != \"timeout\"");
    KEEP("an error here");
    LABELS("{app=\"api\", env=\"prod\"}");
    DROP("all good");
    DROP("error: timeout");
    cr_assert(logql_pipeline_filters_only(pl));
}

Test(logql_pipeline, or_alternatives)
{
    build("{app=\"api\"} |= \"a1\" or \"b2\"");
    KEEP("x a1");
    KEEP("b2 y");
    DROP("c3");
    build("{app=\"api\"} != \"a1\" or \"b2\"");
    DROP("x a1");
    DROP("b2 y");
    KEEP("c3");
}

Test(logql_pipeline, regex_filters_are_unanchored)
{
    build("{app=\"api\"} |~ \"err(or)?\\\\s+[0-9]+\"");
    KEEP("got error 42 today");
    DROP("error x");
    build("{app=\"api\"} !~ \"^GET /health\"");
    DROP("GET /health 200");
    KEEP("POST /health 200");
    build("{app=\"api\"} |~ \"(?i)TimeOut\"");
    KEEP("request TIMEOUT after 5s");
    DROP("request ok");
    build("{app=\"api\"} |~ \"plain\"");
    KEEP("a plain line");
}

Test(logql_pipeline, bad_regex_is_refused)
{
    logql_expr_free(ex);
    ex = NULL;
    /* The parser already refuses it; the pipeline never sees one. */
    struct logql_expr *e = logql_parse("{a=\"b\"} |~ \"(\"", 15, &err);
    cr_assert_null(e);
}

Test(logql_pipeline, pattern_filters)
{
    build("{app=\"api\"} |> \"<_> level=error <_>\"");
    KEEP("ts=1 level=error msg=x");
    DROP("ts=1 level=info msg=x");
    DROP("level=error msg=x"); /* the leading capture may not be empty */
    build("{app=\"api\"} !> \"GET /health <_>\"");
    DROP("GET /health 200");
    KEEP("POST /health 200");
    build("{app=\"api\"} |> \"<_> done\"");
    KEEP("job done");
    DROP("job done twice");
}

Test(logql_pipeline, ip_line_filters)
{
    build("{app=\"api\"} |= ip(\"192.168.0.0/16\")");
    KEEP("client 192.168.4.2 connected");
    DROP("client 10.0.0.1 connected");
    DROP("no address");
    build("{app=\"api\"} |= ip(\"10.0.0.1-10.0.0.9\")");
    KEEP("from=10.0.0.5:443");
    DROP("from=10.0.0.10");
    build("{app=\"api\"} |= ip(\"2001:db8::/32\")");
    KEEP("peer [2001:db8::1]:80");
    DROP("peer [2001:db9::1]:80");
    DROP("peer 192.168.0.1");
    build("{app=\"api\"} != ip(\"127.0.0.1\")");
    DROP("from 127.0.0.1");
    KEEP("from 127.0.0.2");
    cr_assert_eq(try_build("{app=\"api\"} |= ip(\"not-an-ip\")"), VG_EINVAL);
    cr_assert(strstr(err.msg, "ip: invalid pattern"), "%s", err.msg);
}

/* ---- parsers ---- */

Test(logql_pipeline, json_flattens_nested_objects)
{
    build("{app=\"api\"} | json");
    KEEP("{\"level\":\"info\",\"req\":{\"method\":\"GET\",\"hdr\":{\"x-id\":\"7\"}},"
         "\"n\":1.5,\"ok\":true,\"arr\":[1,2],\"nil\":null,\"1st\":\"a\",\"app\":\"dup\"}");
    LABELS("{_1st=\"a\", app=\"api\", app_extracted=\"dup\", env=\"prod\", level=\"info\", "
           "n=\"1.5\", ok=\"true\", req_hdr_x_id=\"7\", req_method=\"GET\"}");
    cr_assert_eq(out.nparsed, 7);
}

Test(logql_pipeline, json_unescapes_values)
{
    build("{app=\"api\"} | json");
    KEEP("{\"msg\":\"a \\\"quoted\\\" \\u00e9 \\n end\"}");
    LABEL("msg", "a \"quoted\" \xc3\xa9 \n end");
}

Test(logql_pipeline, json_error_sets_error_labels)
{
    build("{app=\"api\"} | json");
    KEEP("{\"a\":\"1\",\"b\":");
    LABEL("a", "1"); /* members before the fault stay */
    LABEL("__error__", "JSONParserErr");
    cr_assert_not_null(get("__error_details__"));
    KEEP("plain text");
    LABEL("__error__", "JSONParserErr");
    build("{app=\"api\"} | json | __error__=\"\"");
    DROP("plain text");
    KEEP("{\"a\":1}");
    NO_LABEL("__error__");
}

Test(logql_pipeline, json_paths)
{
    build("{app=\"api\"} | json m=\"req.method\", first=\"ids[0]\", sp=`[\"a b\"]`, "
          "obj=\"req\", miss=\"nope.x\", app=\"name\"");
    KEEP("{\"req\":{\"method\":\"GET\"},\"ids\":[\"x1\",\"x2\"],\"a b\":3,\"name\":\"n\"}");
    LABEL("m", "GET");
    LABEL("first", "x1");
    LABEL("sp", "3");
    LABEL("obj", "{\"method\":\"GET\"}");
    LABEL("miss", "");
    LABEL("app_extracted", "n");
    LABEL("app", "api");
    KEEP("not json");
    LABEL("__error__", "JSONParserErr");
}

Test(logql_pipeline, logfmt)
{
    build("{app=\"api\"} | logfmt");
    KEEP("level=info msg=\"hello \\\"you\\\"\" dur=1.5s bare empty= app=x");
    LABELS("{app=\"api\", app_extracted=\"x\", dur=\"1.5s\", env=\"prod\", level=\"info\", "
           "msg=\"hello \"you\"\"}");
    /* Not strict: a bad pair is skipped and the rest parsed, with no error. */
    KEEP("a=1 b=\"unterminated");
    LABEL("a", "1");
    NO_LABEL("__error__");
    KEEP("a==1 c=3");
    LABEL("c", "3");
}

Test(logql_pipeline, logfmt_flags)
{
    build("{app=\"api\"} | logfmt --keep-empty");
    KEEP("bare empty= x=1");
    LABEL("bare", "");
    LABEL("empty", "");
    build("{app=\"api\"} | logfmt --strict");
    KEEP("a=1 b=\"unterminated");
    LABEL("__error__", "LogfmtParserErr");
    LABEL("__error_details__", "logfmt syntax error at pos 20 : unterminated quoted value");
    KEEP("a=1 =2 c=3");
    LABEL("__error__", "LogfmtParserErr");
    NO_LABEL("c");
}

Test(logql_pipeline, logfmt_params)
{
    build("{app=\"api\"} | logfmt lvl=\"level\", d=\"duration\", env=\"environment\"");
    KEEP("level=warn other=1 environment=dev");
    LABELS("{app=\"api\", d=\"\", env=\"prod\", env_extracted=\"dev\", lvl=\"warn\"}");
}

Test(logql_pipeline, regexp_parser)
{
    build("{app=\"api\"} | regexp \"(?P<method>[A-Z]+) (?P<path>\\\\S+) (?<app>\\\\d+)\"");
    KEEP("GET /x 200");
    LABELS("{app=\"api\", app_extracted=\"200\", env=\"prod\", method=\"GET\", path=\"/x\"}");
    KEEP("nothing to see");
    LABELS("{app=\"api\", env=\"prod\"}");
}

Test(logql_pipeline, pattern_parser)
{
    build("{app=\"api\"} | pattern \"<ip> - <_> [<ts>] \\\"<method> <path> <_>\\\" <status> <app>\"");
    KEEP("10.0.0.1 - - [01/Jan/2024:00:00:00 +0000] \"GET /a HTTP/1.1\" 200 512");
    LABEL("ip", "10.0.0.1");
    LABEL("ts", "01/Jan/2024:00:00:00 +0000");
    LABEL("method", "GET");
    LABEL("path", "/a");
    LABEL("status", "200");
    LABEL("app_extracted", "512");
    build("{app=\"api\"} | pattern \"<a> x <b>\"");
    KEEP("1 y 2"); /* the literal is missing: a takes the rest */
    LABEL("a", "1 y 2");
    NO_LABEL("b");
    /* The parser already checks patterns (and regexp groups) with the same rules. */
    cr_assert_null(logql_parse("{a=\"b\"} | pattern \"<_> x\"", 25, &err));
}

Test(logql_pipeline, unpack)
{
    build("{app=\"api\"} | unpack");
    KEEP("{\"_entry\":\"the \\\"line\\\"\",\"pod\":\"p1\",\"app\":\"x\",\"n\":5}");
    cr_assert_str_eq(line_out(), "the \"line\"");
    LABELS("{app=\"api\", app_extracted=\"x\", env=\"prod\", pod=\"p1\"}");
    KEEP("{\"pod\":\"p1\"}"); /* not packed: labels are not taken */
    NO_LABEL("pod");
    cr_assert_str_eq(line_out(), "{\"pod\":\"p1\"}");
    KEEP("[1]");
    LABEL("__error__", "JSONParserErr");
    LABEL("__error_details__", "expecting json object(6), but it is not");
}

/* ---- label filters ---- */

Test(logql_pipeline, string_label_filters)
{
    build("{app=\"api\"} | logfmt | level=\"error\" or level=~\"warn.*\"");
    KEEP("level=error");
    KEEP("level=warning");
    DROP("level=info");
    DROP("msg=x");
    build("{app=\"api\"} | logfmt | level!~\"in\"");
    KEEP("level=info"); /* matchers are anchored */
    build("{app=\"api\"} | env=\"prod\"");
    KEEP("x");
}

Test(logql_pipeline, number_filters_and_label_filter_errors)
{
    build("{app=\"api\"} | logfmt | status >= 500");
    KEEP("status=503");
    DROP("status=200");
    DROP("other=1"); /* missing label: dropped */
    KEEP("status=abc");
    LABEL("__error__", "LabelFilterErr");
    LABEL("__error_details__", "strconv.ParseFloat: parsing \"abc\": invalid syntax");
    build("{app=\"api\"} | logfmt | status >= 500 | __error__=\"\"");
    DROP("status=abc");
    build("{app=\"api\"} | logfmt | status == 200 and (size > 10 or size < 2)");
    KEEP("status=200 size=11");
    KEEP("status=200 size=1");
    DROP("status=200 size=5");
    DROP("status=201 size=11");
}

Test(logql_pipeline, duration_and_bytes_filters)
{
    build("{app=\"api\"} | logfmt | dur > 250ms");
    KEEP("dur=1m30s");
    KEEP("dur=251ms");
    DROP("dur=250ms");
    DROP("dur=100us");
    KEEP("dur=5");
    LABEL("__error__", "LabelFilterErr");
    LABEL("__error_details__", "time: missing unit in duration \"5\"");
    build("{app=\"api\"} | logfmt | size >= 1KiB");
    KEEP("size=1024");
    KEEP("size=2KB");
    DROP("size=1000B");
    KEEP("size=1MiB");
    KEEP("size=12parsecs");
    LABEL("__error__", "LabelFilterErr");
}

Test(logql_pipeline, ip_label_filter)
{
    build("{app=\"api\"} | logfmt | addr = ip(\"10.0.0.0/8\")");
    KEEP("addr=10.1.2.3");
    DROP("addr=11.1.2.3");
    DROP("x=1");
    build("{app=\"api\"} | logfmt | addr != ip(\"10.0.0.0/8\")");
    DROP("addr=10.1.2.3");
    KEEP("addr=11.1.2.3");
    cr_assert_eq(try_build("{app=\"api\"} | logfmt | addr = ip(\"10.0.0.0/99\")"), VG_EINVAL);
}

/* ---- formatting ---- */

Test(logql_pipeline, line_format)
{
    build("{app=\"api\"} | logfmt | line_format \"{{.level | upper}} {{ .app }} "
          "{{if eq .status \\\"200\\\"}}ok{{else}}bad{{end}} [{{ __line__ }}]\"");
    KEEP("level=info status=200");
    cr_assert_str_eq(line_out(), "INFO api ok [level=info status=200]");
    KEEP("level=warn status=500");
    cr_assert_str_eq(line_out(), "WARN api bad [level=warn status=500]");
    build("{app=\"api\"} | line_format \"{{ __timestamp__ }}\"");
    cr_assert_eq(run_at(1700000000123000000LL, "x"), 1);
    cr_assert_str_eq(line_out(), "2023-11-14 22:13:20.123 +0000 UTC");
}

Test(logql_pipeline, line_format_errors)
{
    cr_assert_eq(try_build("{app=\"api\"} | line_format \"{{ nope .a }}\""), VG_EINVAL);
    cr_assert(strstr(err.msg, "function \"nope\" not defined"), "%s", err.msg);
    cr_assert_eq(try_build("{app=\"api\"} | line_format \"{{ .a \""), VG_EINVAL);
    build("{app=\"api\"} | line_format \"{{ len 5 }}\"");
    KEEP("original");
    cr_assert_str_eq(line_out(), "original");
    LABEL("__error__", "TemplateFormatErr");
}

Test(logql_pipeline, label_format)
{
    build("{app=\"api\"} | logfmt | label_format lvl=level, app=\"{{.app}}-{{.level}}\", "
          "both=`{{ .lvl }}`");
    KEEP("level=info");
    LABELS("{app=\"api-\", both=\"info\", env=\"prod\", lvl=\"info\"}");
    cr_assert_eq(try_build("{app=\"api\"} | label_format a=b, a=c"), VG_EINVAL);
    cr_assert(strstr(err.msg, "multiple label name 'a'"), "%s", err.msg);
}

Test(logql_pipeline, drop_and_keep)
{
    build("{app=\"api\"} | logfmt | drop level, env, x=\"1\"");
    KEEP("level=info x=1 y=2");
    LABELS("{app=\"api\", y=\"2\"}");
    KEEP("x=2");
    LABEL("x", "2");
    build("{app=\"api\"} | logfmt | keep level, y=\"2\"");
    KEEP("level=info x=1 y=2");
    LABELS("{level=\"info\", y=\"2\"}");
    KEEP("level=info y=3");
    LABELS("{level=\"info\"}");
    build("{app=\"api\"} | json | drop __error__, __error_details__");
    KEEP("nope");
    LABELS("{app=\"api\", env=\"prod\"}");
    build("{app=\"api\"} | json | keep app");
    KEEP("nope");
    LABELS("{__error__=\"JSONParserErr\", __error_details__=\"value is not an object at offset 0\", "
           "app=\"api\"}");
}

Test(logql_pipeline, decolorize)
{
    build("{app=\"api\"} | decolorize");
    KEEP("\x1b[31mred\x1b[0m and \x1b[1;32mbold\x1b[m plain");
    cr_assert_str_eq(line_out(), "red and bold plain");
}

/* ---- labels ---- */

Test(logql_pipeline, structured_metadata)
{
    add_meta("trace_id", "abc");
    add_meta("app", "meta-app");
    build("{app=\"api\"} |= \"x\"");
    KEEP("x");
    LABELS("{app=\"api\", app_extracted=\"meta-app\", env=\"prod\", trace_id=\"abc\"}");
    cr_assert_eq(out.nparsed, 0);
    build("{app=\"api\"} | logfmt");
    KEEP("trace_id=parsed");
    LABEL("trace_id", "parsed");
    cr_assert_eq(out.nparsed, 1);
}

Test(logql_pipeline, output_is_sorted_and_hashed)
{
    build("{app=\"api\"} | logfmt");
    KEEP("z=1 b=2 aa=3");
    for (size_t i = 1; i < out.nlabels; i++)
        cr_assert_lt(vg_str_cmp(out.labels[i - 1].name, out.labels[i].name), 0);
    cr_assert_eq(out.labels_hash, labels_hash(out.labels, out.nlabels));
    uint64_t h = out.labels_hash;
    KEEP("aa=3 b=2 z=1");
    cr_assert_eq(out.labels_hash, h);
    KEEP("aa=3 b=2 z=2");
    cr_assert_neq(out.labels_hash, h);
}

/* ---- unwrap ---- */

Test(logql_pipeline, unwrap_float)
{
    build("sum_over_time({app=\"api\"} | logfmt | unwrap latency [5m])");
    cr_assert_not(logql_pipeline_filters_only(pl));
    KEEP("latency=1.25 path=/a");
    cr_assert(out.has_value);
    cr_assert_float_eq(out.value, 1.25, 1e-12);
    LABELS("{app=\"api\", env=\"prod\", path=\"/a\"}");
    DROP("path=/a"); /* no value, no sample */
    KEEP("latency=fast");
    LABEL("__error__", "SampleExtractionErr");
    cr_assert_float_eq(out.value, 0, 1e-12);
}

Test(logql_pipeline, unwrap_conversions)
{
    build("sum_over_time({app=\"api\"} | logfmt | unwrap bytes(size) [5m])");
    KEEP("size=1.5KiB");
    cr_assert_float_eq(out.value, 1536, 1e-9);
    build("sum_over_time({app=\"api\"} | logfmt | unwrap duration(d) [5m])");
    KEEP("d=1m30s");
    cr_assert_float_eq(out.value, 90, 1e-9);
    KEEP("d=250ms");
    cr_assert_float_eq(out.value, 0.25, 1e-9);
    build("sum_over_time({app=\"api\"} | logfmt | unwrap duration_seconds(d) [5m])");
    KEEP("d=2h");
    cr_assert_float_eq(out.value, 7200, 1e-9);
    KEEP("d=2x");
    LABEL("__error__", "SampleExtractionErr");
    LABEL("__error_details__", "time: unknown unit \"x\" in duration \"2x\"");
}

Test(logql_pipeline, unwrap_post_filters)
{
    build("sum_over_time({app=\"api\"} | logfmt | unwrap latency | __error__=\"\" [5m])");
    KEEP("latency=3");
    DROP("latency=abc");
}

/* ---- helpers ---- */

Test(logql_pipeline, needles)
{
    ex = logql_parse("{a=\"b\"} |= \"one\" |= \"x\" or \"y\" |~ \"lit\" |~ \"re.*\" != \"no\" "
                     "|= ip(\"1.2.3.4\")", 74, &err);
    cr_assert(ex, "%s", err.msg);
    struct vg_str n[8];
    size_t k = logql_pipeline_needles(ex->root, n, 8);
    cr_assert_eq(k, 2);
    cr_assert(vg_str_eq_c(n[0], "one"));
    cr_assert(vg_str_eq_c(n[1], "lit"));
    cr_assert_eq(logql_pipeline_needles(ex->root, n, 1), 1);
    /* a filter after line_format (or decolorize, unpack) sees another line */
    logql_expr_free(ex);
    const char *q = "{a=\"b\"} |= \"one\" | line_format \"two\" |= \"two\"";
    ex = logql_parse(q, strlen(q), &err);
    cr_assert(ex, "%s", err.msg);
    cr_assert_eq(logql_pipeline_needles(ex->root, n, 8), 1);
    cr_assert(vg_str_eq_c(n[0], "one"));
}

Test(logql_pipeline, needles_exact)
{
    static const struct {
        const char *q;
        size_t cap;
        bool exact;
    } cases[] = {
        { "{a=\"b\"}", 16, true },                          /* no stage at all */
        { "{a=\"b\"} |= \"one\" |~ \"lit\"", 16, true },
        { "{a=\"b\"} |= \"one\" |~ \"lit\"", 1, false },   /* a needle left out */
        { "{a=\"b\"} |= \"one\" != \"two\"", 16, false },
        { "{a=\"b\"} |= \"x\" or \"y\"", 16, false },
        { "{a=\"b\"} |~ \"re.*\"", 16, false },
        { "{a=\"b\"} |= \"\"", 16, false },
        { "{a=\"b\"} |= \"one\" | json", 16, false },
        { "{a=\"b\"} | line_format \"x\" |= \"x\"", 16, false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ex = logql_parse(cases[i].q, strlen(cases[i].q), &err);
        cr_assert(ex, "%s: %s", cases[i].q, err.msg);
        cr_assert_eq(logql_pipeline_needles_exact(ex->root, cases[i].cap), cases[i].exact, "%s",
                     cases[i].q);
        logql_expr_free(ex);
        ex = NULL;
    }
}

Test(logql_pipeline, filters_only_allocates_nothing_per_line)
{
    /* Regex filters are left out: matcher.c allocates PCRE2 match data per match. */
    build("{app=\"api\"} |= \"a\" |~ \"(?i)B\" |> \"<_> c<_>\" != ip(\"1.2.3.4\")");
    KEEP("a bb cd"); /* first run sizes the buffers */
    vg_alloc_fail_after(1);
    KEEP("a b cd");
    DROP("zzz");
    vg_alloc_fail_after(0);
}

/* ---- parser hints ---- */

static void hint(const char *a, const char *b)
{
    static char *names[2];
    names[0] = (char *)a;
    names[1] = (char *)b;
    struct logql_strings need = { names, b ? 2 : 1 };
    cr_assert_eq(logql_pipeline_hint(pl, &need), 0);
}

Test(logql_pipeline, hint_json_extracts_only_needed)
{
    build("{app=\"api\"} | json");
    hint("status", "n_m");
    KEEP("{\"status\":\"200\",\"id\":\"7\",\"n\":{\"m\":1,\"k\":2},\"__error__\":\"x\"}");
    /* a line naming __error__ still fails a metric query: it is always set */
    LABELS("{__error__=\"x\", app=\"api\", env=\"prod\", n_m=\"1\", status=\"200\"}");
    KEEP("{\"status\":");
    LABEL("__error__", "JSONParserErr");
    NO_LABEL("status");
}

Test(logql_pipeline, hint_extracted_names)
{
    build("{app=\"api\"} | json");
    hint("app_extracted", NULL);
    KEEP("{\"app\":\"x\",\"env\":\"y\",\"status\":\"200\"}");
    LABELS("{app=\"api\", app_extracted=\"x\", env=\"prod\"}");
}

Test(logql_pipeline, hint_adds_filter_and_unwrap_names)
{
    build("{app=\"api\"} | json | size > 10 |= \"a\"");
    hint("status", NULL);
    KEEP("{\"status\":\"200\",\"size\":20,\"other\":\"a\"}");
    LABELS("{app=\"api\", env=\"prod\", size=\"20\", status=\"200\"}");
    DROP("{\"status\":\"200\",\"size\":5,\"other\":\"a\"}");
    build("sum_over_time({app=\"api\"} | logfmt | unwrap size | lat < 5 [1m])");
    hint("status", NULL);
    KEEP("status=500 size=3 lat=1 other=x");
    cr_assert(out.has_value);
    cr_assert_float_eq(out.value, 3, 0);
    LABELS("{app=\"api\", env=\"prod\", lat=\"1\", status=\"500\"}");
    DROP("status=500 size=3 lat=9 other=x");
}

Test(logql_pipeline, hint_only_when_filters_follow)
{
    build("{app=\"api\"} | json | line_format \"{{.other}}\"");
    hint("status", NULL);
    KEEP("{\"status\":\"200\",\"other\":\"o\"}");
    cr_assert_str_eq(line_out(), "o");
    LABEL("other", "o");
    /* only the last parser is hinted */
    build("{app=\"api\"} | logfmt | json");
    hint("a", NULL);
    KEEP("a=1 b=2");
    LABEL("b", "2");
    LABEL("__error__", "JSONParserErr");
    build("{app=\"api\"} | json | keep status, other");
    hint("status", NULL);
    KEEP("{\"status\":\"200\",\"other\":\"o\"}");
    LABEL("other", "o");
    build("{app=\"api\"} | json");
    vg_alloc_fail_after(1);
    struct logql_strings need = { (char *[]){ "x" }, 1 };
    cr_assert_eq(logql_pipeline_hint(pl, &need), VG_ENOMEM);
    vg_alloc_fail_after(0);
}

static void alloc_failures_for(const char *q, const char *line)
{
    logql_pipeline_free(pl);
    pl = NULL;
    logql_expr_free(ex);
    ex = logql_parse(q, strlen(q), &err);
    cr_assert(ex, "%s", err.msg);
    const struct logql_node *root = ex->root;
    const struct logql_unwrap *u = root->kind == LQ_RANGE_AGG ? root->range.unwrap : NULL;
    if (root->kind == LQ_RANGE_AGG)
        root = root->range.log;
    size_t before = vg_alloc_live_bytes();
    bool done = false;
    for (uint64_t n = 1; n < 5000 && !done; n++) {
        vg_alloc_fail_after(n);
        pl = logql_pipeline_new(root, u, &err);
        int rc = pl ? run(line) : err.code;
        vg_alloc_fail_after(0);
        if (rc == 1)
            done = true;
        else
            cr_assert_eq(rc, VG_ENOMEM, "n=%llu: rc %d %s", (unsigned long long)n, rc, err.msg);
        logql_pipeline_free(pl);
        pl = NULL;
        cr_assert_eq(vg_alloc_live_bytes(), before, "leak at n=%llu", (unsigned long long)n);
    }
    cr_assert(done);
}

Test(logql_pipeline, allocation_failure)
{
    alloc_failures_for("{app=\"api\"} |= \"a\" | json | line_format \"{{.x | upper}}\" "
                       "| label_format y=\"{{.x}}\" | decolorize",
                       "a {\"x\":\"v\\u00e9\",\"n\":{\"m\":1}}");
    alloc_failures_for("{app=\"api\"} | logfmt | regexp \"(?P<w>\\\\w+)\" | pattern \"<p> <_>\" "
                       "| unpack | x > 1 | drop w",
                       "x=2 y=\"a b\"");
    alloc_failures_for("sum_over_time({app=\"api\"} |~ \"x.+\" | logfmt --strict | "
                       "unwrap bytes(x) | __error__=\"\" [1m])",
                       "x=2KB");
}
