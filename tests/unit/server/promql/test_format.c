/* Tests server/promql/ast.c: promql_format mirrors Prometheus's printer
 * (/api/v1/format_query), its output parses back to an identical print (round trip),
 * and the names of types and operators. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../../../server/promql/engine.h"
#include "../../../../storage/base/vg_alloc.h"

static char *print_query(const char *q)
{
    struct vg_err err;
    struct promql_expr *e = promql_parse(q, strlen(q), &err);
    cr_assert_not_null(e, "%s: %s", q, err.msg);
    struct vg_buf b;
    vg_buf_init(&b);
    promql_format(e->root, &b);
    promql_expr_free(e);
    cr_assert_not(vg_buf_failed(&b));
    size_t n;
    vg_buf_cstr(&b);
    return vg_buf_steal(&b, &n);
}

static const struct {
    const char *q, *want;
} cases[] = {
    { "sum by(job)(rate(x[5m]))", "sum by (job) (rate(x[5m]))" },
    { "sum(rate(x[5m]))by(job,instance)", "sum by (job, instance) (rate(x[5m]))" },
    { "a+b*c", "a + b * c" },
    { "(a+b)*c", "(a + b) * c" },
    { "a   and   on(x)   b", "a and on (x) b" },
    { "a > bool on(x) group_left(y, z) b", "a > bool on (x) group_left (y, z) b" },
    { "x offset 1h30m", "x offset 1h30m" },
    { "x offset 5400s", "x offset 1h30m" },
    { "x offset -1d", "x offset -1d" },
    { "x @ 1.5", "x @ 1.500" },
    { "x @ 1700000000.1234", "x @ 1700000000.123" },
    { "x[1h] @ start() offset 1m", "x[1h] @ start() offset 1m" },
    { "rate(x[5m:30s])", "rate(x[5m:30s])" },
    { "'single \"quoted\"'", "\"single \\\"quoted\\\"\"" },
    { "`C:\\path`", "\"C:\\\\path\"" },
    { "1000000", "1000000" },
    { "1e21", "1000000000000000000000" },
    { "0.000001", "0.000001" },
    { "-0", "-0" },
    { "x{b=\"2\",a=\"1\"}", "x{a=\"1\",b=\"2\"}" },
    { "x{a=~\"v\", a!~\"w\"}", "x{a!~\"w\",a=~\"v\"}" },
    { "{\"my.metric\",\"a-b\"=\"c\"}", "{\"a-b\"=\"c\",__name__=\"my.metric\"}" },
    { "{__name__=\"x\", job=\"a\"}", "{__name__=\"x\",job=\"a\"}" },
    { "sum by (\"service.name\", \"inf\", job) (x)", "sum by (\"service.name\", \"inf\", job) (x)" },
    { "topk(3, x)", "topk(3, x)" },
    { "quantile without (a) (0.5, x)", "quantile without (a) (0.5, x)" },
    { "count_values('v', x)", "count_values(\"v\", x)" },
    { "-x", "-x" },
    { "-(x)", "-(x)" },
    { "inf ^ x", "Inf ^ x" },
    { "x ^ inf", "x ^ +Inf" },
    { "-inf", "-Inf" },
    { "label_join(x, 'a', ',', 'b')", "label_join(x, \"a\", \",\", \"b\")" },
    { "x == bool 1", "x == bool 1" },
    { "x[1y]", "x[1y]" },
    { "x[53w]", "x[53w]" },
    { "x[8d]", "x[8d]" },
    { "x[1500ms]", "x[1s500ms]" },
};

Test(format, prints_as_prometheus)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = print_query(cases[i].q);
        cr_expect_str_eq(got, cases[i].want, "%s", cases[i].q);
        vg_free(got);
    }
}

/* Grafana dashboard queries: printing is idempotent. */
static const char *dashboards[] = {
    "sum by (job) (rate(http_requests_total{job=~\"api|web\", code=~\"5..\"}[5m])) / sum by "
    "(job) (rate(http_requests_total[5m]))",
    "histogram_quantile(0.99, sum by (le, service) (rate(http_request_duration_seconds_bucket"
    "{service=\"checkout\"}[5m])))",
    "100 - (avg by (instance) (irate(node_cpu_seconds_total{mode=\"idle\"}[5m])) * 100)",
    "node_filesystem_avail_bytes{fstype!~\"tmpfs|overlay\"} / node_filesystem_size_bytes * 100 < "
    "10",
    "topk(10, sum by (namespace, pod) (container_memory_working_set_bytes{container!=\"\", "
    "image!=\"\"}))",
    "kube_pod_container_status_restarts_total * on (namespace, pod) group_left (node) "
    "kube_pod_info",
    "max_over_time(rate(process_cpu_seconds_total[1m])[1h:30s] @ end() offset -5m)",
    "up == bool 0 or on () vector(0) unless absent(up{job=\"prometheus\"})",
    "label_replace(up{instance=~\".+\"}, \"host\", \"$1\", \"instance\", \"([^:]+):.*\")",
    "count_values(\"version\", build_info) - -2 ^ 3 ^ -1 atan2 0x1F",
    "predict_linear(node_filesystem_free_bytes[6h], 4 * 3600) < 0",
    "sum(rate(x[5m] offset 1d)) by (a) > bool 1e3",
    "quantile_over_time(0.95, rate(x[1m])[10m:])",
    "sort_desc(sum without (instance) (rate(x[1m] @ 1700000000)))",
    "(a or b) and c unless d",
};

Test(format, round_trips)
{
    for (size_t i = 0; i < sizeof dashboards / sizeof dashboards[0]; i++) {
        char *once = print_query(dashboards[i]);
        char *twice = print_query(once);
        cr_expect_str_eq(twice, once, "%s", dashboards[i]);
        vg_free(once);
        vg_free(twice);
    }
}

Test(format, buffer_failure_is_flagged)
{
    struct vg_err err;
    const char *q = "sum by (job) (rate(x{a=\"b\",c=~\"d\"}[5m] offset 1m))";
    struct promql_expr *e = promql_parse(q, strlen(q), &err);
    cr_assert_not_null(e);
    bool failed_once = false;
    for (uint64_t n = 1; n < 20; n++) {
        struct vg_buf b;
        vg_buf_init(&b);
        vg_alloc_fail_after(n);
        promql_format(e->root, &b);
        vg_alloc_fail_after(0);
        failed_once |= vg_buf_failed(&b);
        vg_buf_free(&b);
    }
    cr_assert(failed_once);
    promql_expr_free(e);
}

Test(format, names)
{
    cr_assert_str_eq(promql_binop_str(BIN_ATAN2), "atan2");
    cr_assert_str_eq(promql_binop_str(BIN_NEQ), "!=");
    cr_assert_str_eq(promql_binop_str(BIN_UNLESS), "unless");
    cr_assert(promql_binop_is_comparison(BIN_LTE));
    cr_assert_not(promql_binop_is_comparison(BIN_POW));
    cr_assert(promql_binop_is_set(BIN_OR));
    cr_assert_not(promql_binop_is_set(BIN_ADD));
    cr_assert_str_eq(promql_aggop_str(AGG_COUNT_VALUES), "count_values");
    cr_assert_str_eq(promql_aggop_str(AGG_LIMIT_RATIO), "limit_ratio");
    cr_assert_str_eq(promql_type_name(PT_SCALAR), "scalar");
    cr_assert_str_eq(promql_type_name(PT_VECTOR), "vector");
    cr_assert_str_eq(promql_type_name(PT_STRING), "string");
    promql_expr_free(NULL);
}

/* ---- promql_prettify: format_query's layout (Prometheus's Prettify) ---- */

static char *pretty_query(const char *q)
{
    struct vg_err err;
    struct promql_expr *e = promql_parse(q, strlen(q), &err);
    cr_assert_not_null(e, "%s: %s", q, err.msg);
    struct vg_buf b;
    vg_buf_init(&b);
    promql_prettify(e->root, &b);
    promql_expr_free(e);
    cr_assert_not(vg_buf_failed(&b));
    size_t n;
    vg_buf_cstr(&b);
    return vg_buf_steal(&b, &n);
}

Test(format, prettify_splits_only_what_is_longer_than_a_line)
{
    static const struct {
        const char *q, *want;
    } pcases[] = {
        /* fits: the one-line form */
        { "sum  by(job)(rate(x[5m]))", "sum by (job) (rate(x[5m]))" },
        /* a binary operation too long for a line: operands one level deeper */
        { "sum by (job) (rate(http_requests_total{job=\"api-server\",handler=\"/api/v1/query_range\"}[5m]))"
          " / sum by (job) (rate(http_requests_total{job=\"api-server\"}[5m]))",
          "  sum by (job) (rate(http_requests_total{handler=\"/api/v1/query_range\",job=\"api-server\"}[5m]))\n"
          "/\n"
          "  sum by (job) (rate(http_requests_total{job=\"api-server\"}[5m]))" },
        /* an aggregation with a parameter, and one nested in it, both split */
        { "topk(5, sum by (instance, job) (rate(node_cpu_seconds_total{mode!=\"idle\",instance=~\"host-0[0-9]+:9100\"}[5m])))",
          "topk(\n"
          "  5,\n"
          "  sum by (instance, job) (\n"
          "    rate(node_cpu_seconds_total{instance=~\"host-0[0-9]+:9100\",mode!=\"idle\"}[5m])\n"
          "  )\n"
          ")" },
        /* a call with several arguments, each on its own line */
        { "label_replace(rate(http_requests_total{job=\"api-server\",service=\"a:c\"}[5m]), \"foo\", \"$1\", \"service\", \"(.*):.*\")",
          "label_replace(\n"
          "  rate(http_requests_total{job=\"api-server\",service=\"a:c\"}[5m]),\n"
          "  \"foo\",\n"
          "  \"$1\",\n"
          "  \"service\",\n"
          "  \"(.*):.*\"\n"
          ")" },
        /* parentheses and a sign around a long expression */
        { "-(sum by (job) (rate(http_requests_total{job=\"api-server\",handler=\"/api/v1/query_range\"}[5m])) > bool 10)",
          "-(\n"
          "    sum by (job) (rate(http_requests_total{handler=\"/api/v1/query_range\",job=\"api-server\"}[5m]))\n"
          "  > bool\n"
          "    10\n"
          ")" },
    };
    for (size_t i = 0; i < sizeof pcases / sizeof pcases[0]; i++) {
        char *got = pretty_query(pcases[i].q);
        cr_assert_str_eq(got, pcases[i].want, "case %zu:\n%s", i, got);
        /* the layout reads back as the same query */
        char *again = print_query(got), *orig = print_query(pcases[i].q);
        cr_assert_str_eq(again, orig);
        vg_free(again);
        vg_free(orig);
        vg_free(got);
    }
}
