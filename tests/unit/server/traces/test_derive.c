/* Tests server/traces/derive.c end to end in-process: OTLP/JSON spans posted to the HTTP
 * receiver (mod_otlp_traces) pass ingest_store_spans into mod_traces_derive; a flush
 * writes the derived series into a real TSDB, and the PromQL API (mod_query_api) finds
 * the numbers: sum by (service) (rate(traces_spanmetrics_calls_total[1m])), increase over
 * the first two flushes counting the first batch (new series start at 0), the service
 * graph edge, and a trace exemplar through /api/v1/query_exemplars. Also the module's
 * config check (bucket lists), /metrics figures, the module being off, and error groups
 * expiring with storage.trace_retention at most once a minute of flush time. */
#include "../fixture.h"

#include "../../../../server/api/query.h"
#include "../../../../server/ingest/ingest.h"
#include "../../../../server/ingest/otlp_traces.h"
#include "../../../../server/traces/derive.h"
#include "../../../../server/traces/errors.h"

#include <math.h>
#include <stdlib.h>

static struct server_fixture fx;
static struct vg_arena *arena;
static struct http_response resp;
static struct vg_err err;

static void start_derive(void)
{
    cr_assert_eq(config_set(fx.cfg, "storage.data_dir", fx.dir, &err), 0, "%s", err.msg);
    cr_assert_eq(mod_traces_derive.check(fx.cfg, &err), 0, "%s", err.msg);
    cr_assert_eq(mod_traces_derive.init(&fx.v, &err), 0, "%s", err.msg);
}

static void setup(void)
{
    fixture_open(&fx);
    fixture_open_traces(&fx);
    vg_err_clear(&err);
    cr_assert_eq(ingest_metrics_init(&fx.v, &err), 0, "%s", err.msg);
    arena = vg_arena_new(0);
    cr_assert_not_null(arena);
    memset(&resp, 0, sizeof resp);
    vg_buf_init(&resp.body);
}

static void teardown(void)
{
    mod_traces_derive.free(&fx.v);
    vg_buf_free(&resp.body);
    vg_arena_free(arena);
    ingest_metrics_free(&fx.v);
    fixture_close(&fx);
}

TestSuite(derive, .init = setup, .fini = teardown, .timeout = 60);

/* Posts a client span of "web" (trace tid, span 1a..) and its server span in "shop"
 * (parent the client span), ending at end_ns, as OTLP/JSON. */
static void post_pair(const char *tid, int64_t end_ns)
{
    char body[2048];
    snprintf(body, sizeof body,
             "{\"resourceSpans\":["
             "{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
             "{\"stringValue\":\"web\"}}]},\"scopeSpans\":[{\"spans\":[{\"traceId\":\"%s\","
             "\"spanId\":\"1a1a1a1a1a1a1a1a\",\"name\":\"GET /cart\",\"kind\":3,"
             "\"startTimeUnixNano\":\"%lld\",\"endTimeUnixNano\":\"%lld\"}]}]},"
             "{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
             "{\"stringValue\":\"shop\"}}]},\"scopeSpans\":[{\"spans\":[{\"traceId\":\"%s\","
             "\"spanId\":\"2b2b2b2b2b2b2b2b\",\"parentSpanId\":\"1a1a1a1a1a1a1a1a\","
             "\"name\":\"GET /cart\",\"kind\":2,\"startTimeUnixNano\":\"%lld\","
             "\"endTimeUnixNano\":\"%lld\",\"status\":{\"code\":2},\"events\":[{"
             "\"timeUnixNano\":\"%lld\",\"name\":\"exception\",\"attributes\":["
             "{\"key\":\"exception.type\",\"value\":{\"stringValue\":\"KeyError\"}},"
             "{\"key\":\"exception.message\",\"value\":{\"stringValue\":\"no item 42\"}}]}]}"
             "]}]}]}",
             tid, (long long)(end_ns - 30000000), (long long)end_ns, tid,
             (long long)(end_ns - 20000000), (long long)(end_ns - 1000000),
             (long long)(end_ns - 2000000));
    fixture_post(&fx, &mod_otlp_traces, "/v1/traces", "application/json", NULL,
                 vg_str_c(vg_arena_strndup(arena, body, strlen(body))), arena, &resp);
    cr_assert_eq(resp.status, 200, "%d %.*s", resp.status, (int)resp.body.len, resp.body.p);
}

static const char *query(const char *path, ...)
{
    static struct http_response q;
    va_list ap;
    va_start(ap, path);
    fixture_vget(&fx, &mod_query_api, path, ap, &q);
    va_end(ap);
    cr_assert_eq(q.status, 200, "%s", q.body.p);
    return q.body.p;
}

/* The number in the first "value":[t,"N"] of an instant-query answer. */
static double first_value(const char *body)
{
    const char *p = strstr(body, "\"value\":[");
    cr_assert_not_null(p, "%s", body);
    p = strchr(p, '"' ) ? strstr(p + 9, ",\"") : NULL;
    cr_assert_not_null(p, "%s", body);
    return strtod(p + 2, NULL);
}

Test(derive, otlp_spans_to_promql_and_exemplars)
{
    start_derive();
    cr_assert_not_null(fx.v.derive);
    int64_t t1 = (fixture_now_ms() / 1000) * 1000 - 60000;
    post_pair("5b8efff798038103d269b633813fc60c", t1 * 1000000);
    cr_assert_eq(trace_derive_flush(fx.v.derive, t1, &err), 0, "%s", err.msg);
    post_pair("5b8efff798038103d269b633813fc60d", (t1 + 10000) * 1000000);
    post_pair("5b8efff798038103d269b633813fc60e", (t1 + 20000) * 1000000);
    cr_assert_eq(trace_derive_flush(fx.v.derive, t1 + 30000, &err), 0, "%s", err.msg);

    char at[32], from[32], to[32];
    snprintf(at, sizeof at, "%lld", (long long)t1 / 1000 + 30);
    const char *b = query("/api/v1/query", "query",
                          "traces_spanmetrics_calls_total{service=\"shop\"}", "time", at, NULL);
    cr_assert(strstr(b, "\"span_kind\":\"SPAN_KIND_SERVER\""), "%s", b);
    cr_assert(strstr(b, "\"status_code\":\"STATUS_CODE_ERROR\""), "%s", b);
    cr_assert(strstr(b, "\"span_name\":\"GET /cart\""), "%s", b);
    cr_assert_eq(first_value(b), 3);

    b = query("/api/v1/query", "query", "sum by (service) (rate(traces_spanmetrics_calls_total[1m]))",
              "time", at, NULL);
    cr_assert(strstr(b, "{\"service\":\"shop\"}"), "%s", b);
    cr_assert(strstr(b, "{\"service\":\"web\"}"), "%s", b);
    /* 0 (written just before the first flush, the series being new) -> 1 -> 3 over 30 s;
     * extrapolation towards the window start stops at the counter's zero point, the
     * first sample: 3 over 60 s */
    double rate = first_value(b);
    cr_assert(rate > 0.0499 && rate < 0.0501, "rate %g in %s", rate, b);

    /* The first batch counts: increase over the first two flushes is every span seen
     * (it was 2.07 when a series first appeared at its value, 1). */
    b = query("/api/v1/query", "query",
              "increase(traces_spanmetrics_calls_total{service=\"shop\"}[31s])", "time", at,
              NULL);
    double inc = first_value(b);
    cr_assert(fabs(inc - 3) < 1e-9, "increase %g in %s", inc, b);
    b = query("/api/v1/query", "query",
              "increase(traces_service_graph_request_total[31s])", "time", at, NULL);
    inc = first_value(b);
    cr_assert(fabs(inc - 3) < 1e-9, "increase %g in %s", inc, b);
    b = query("/api/v1/query", "query",
              "increase(traces_spanmetrics_duration_seconds_count{service=\"web\"}[31s])",
              "time", at, NULL);
    inc = first_value(b);
    cr_assert(fabs(inc - 3) < 1e-9, "histograms start at 0 too: %g in %s", inc, b);

    b = query("/api/v1/query", "query", "traces_service_graph_request_total", "time", at,
              NULL);
    cr_assert(strstr(b, "\"client\":\"web\""), "%s", b);
    cr_assert(strstr(b, "\"server\":\"shop\""), "%s", b);
    cr_assert_eq(first_value(b), 3);
    b = query("/api/v1/query", "query", "traces_service_graph_request_failed_total", "time",
              at, NULL);
    cr_assert_eq(first_value(b), 3, "the server span had status ERROR");

    snprintf(from, sizeof from, "%lld", (long long)(t1 / 1000 - 60));
    snprintf(to, sizeof to, "%lld", (long long)t1 / 1000 + 60);
    b = query("/api/v1/query_exemplars", "query",
              "traces_spanmetrics_duration_seconds_bucket{service=\"shop\"}", "start", from,
              "end", to, NULL);
    cr_assert(strstr(b, "\"trace_id\":\"5b8efff798038103d269b633813fc60e\""), "%s", b);
    cr_assert(strstr(b, "\"span_id\":\"2b2b2b2b2b2b2b2b\""), "%s", b);
    cr_assert(strstr(b, "\"le\":\"0.032\""), "19 ms falls in le=0.032: %s", b);

    /* /metrics figures */
    struct vg_buf m;
    vg_buf_init(&m);
    metrics_render(fx.v.metrics, &m);
    const char *txt = vg_buf_cstr(&m);
    cr_assert(strstr(txt, "vigil_trace_derive_series{kind=\"span_metrics\"} 2"), "%s", txt);
    cr_assert(strstr(txt, "vigil_trace_derive_flushes_total{result=\"ok\"} 2"), "%s", txt);
    cr_assert(strstr(txt, "traces_service_graph_unpaired_spans_total{side=\"client\"} 0"));
    cr_assert(strstr(txt, "vigil_errors_occurrences_total 3"), "%s", txt);
    cr_assert(strstr(txt, "vigil_errors_groups 1"), "%s", txt);
    vg_buf_free(&m);
}

Test(derive, config_check_and_off)
{
    char *bad[] = { "0.1", "0.05" };
    double out[4];
    size_t n;
    cr_assert_eq(trace_derive_parse_buckets("k", bad, 2, out, 4, &n, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "ascend"), "%s", err.msg);
    char *nan_[] = { "x1" };
    cr_assert_eq(trace_derive_parse_buckets("k", nan_, 1, out, 4, &n, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "\"x1\""), "%s", err.msg);
    char *inf[] = { "inf" };
    cr_assert_eq(trace_derive_parse_buckets("k", inf, 1, out, 4, &n, &err), VG_EINVAL);
    char *good[] = { "0.5", "1", "2.5" };
    cr_assert_eq(trace_derive_parse_buckets("k", good, 3, out, 2, &n, &err), VG_EINVAL);
    cr_assert_eq(trace_derive_parse_buckets("k", good, 3, out, 4, &n, &err), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(out[2], 2.5);

    struct config *c = config_load_buf("t.yml", "traces:\n  span_metrics_buckets: [1, 0.5]\n",
                                       strlen("traces:\n  span_metrics_buckets: [1, 0.5]\n"),
                                       &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert_eq(vigil_check_config(c, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "traces.span_metrics_buckets"), "%s", err.msg);
    config_free(c);

    cr_assert_eq(config_set(fx.cfg, "traces.span_metrics_enabled", "false", &err), 0);
    cr_assert_eq(config_set(fx.cfg, "traces.service_graph_enabled", "false", &err), 0);
    cr_assert_eq(config_set(fx.cfg, "traces.errors_enabled", "false", &err), 0);
    start_derive();
    cr_assert_null(fx.v.derive);
    post_pair("5b8efff798038103d269b633813fc60c", fixture_now_ms() * 1000000);
    trace_derive_observe(NULL, NULL, 0);
    cr_assert_null(trace_derive_errors(NULL));
}

Test(derive, flush_thread_writes_on_its_own)
{
    cr_assert_eq(config_set(fx.cfg, "traces.derive_flush_interval", "1s", &err), 0, "%s",
                 err.msg);
    start_derive();
    post_pair("5b8efff798038103d269b633813fc60c", fixture_now_ms() * 1000000);
    for (int i = 0; i < 40; i++) {
        struct tsdb_stats st;
        tsdb_stats(fx.v.tsdb, &st);
        if (st.series > 0)
            return;
        usleep(100000);
    }
    cr_assert_fail("nothing was written within 4 s");
}

static void record_error(struct errorstore *es, uint64_t fp, int64_t t_ms)
{
    struct errorstore_occurrence o = { .fingerprint = fp, .type = VG_STR("E"),
                                       .message = VG_STR("m"), .t_ms = t_ms, .count = 1 };
    struct errorstore_record_result res;
    cr_assert_eq(errorstore_record(es, &o, 1, &res, &err), 0, "%s", err.msg);
}

Test(derive, error_groups_expire_with_trace_retention)
{
    cr_assert_eq(config_set(fx.cfg, "storage.trace_retention", "2h", &err), 0, "%s", err.msg);
    cr_assert_eq(config_set(fx.cfg, "traces.derive_flush_interval", "1h", &err), 0, "%s",
                 err.msg); /* the thread stays out of the way: flushes by hand */
    start_derive();
    struct errorstore *es = errors_store(trace_derive_errors(fx.v.derive));
    int64_t now = fixture_now_ms();
    record_error(es, 1, now - 3 * ERRORSTORE_HOUR_MS);
    record_error(es, 2, now);
    cr_assert_eq(trace_derive_flush(fx.v.derive, now, &err), 0, "%s", err.msg);
    cr_assert_eq(errorstore_ngroups(es), 1);
    struct errorstore_groups gs;
    cr_assert_eq(errorstore_get(es, 1, &gs, &err), VG_ENOTFOUND);
    errorstore_groups_free(&gs);

    record_error(es, 3, now - 3 * ERRORSTORE_HOUR_MS);
    cr_assert_eq(trace_derive_flush(fx.v.derive, now + 30000, &err), 0, "%s", err.msg);
    cr_assert_eq(errorstore_ngroups(es), 2, "not again within a minute");
    cr_assert_eq(trace_derive_flush(fx.v.derive, now + DERIVE_EXPIRE_EVERY_MS, &err), 0,
                 "%s", err.msg);
    cr_assert_eq(errorstore_ngroups(es), 1);
    cr_assert_eq(errorstore_get(es, 2, &gs, &err), 0, "%s", err.msg);
    errorstore_groups_free(&gs);
}
