/* Tests server/ingest/otlp_translate.c: OTLP requests (written as OTLP/JSON and decoded
 * with otlp_json, so each case reads like what an SDK sends) translated into TSDB batches,
 * asserting exact label sets, values and timestamps for every Prometheus rule: types and
 * suffixes, histograms, summaries, exponential histograms as classic buckets, delta
 * reject/accumulate, job/instance/target_info, promoted attributes, scope labels,
 * exemplars, staleness, invalid label names, limits, and allocation failure. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../../server/ingest/otlp_json.h"
#include "../../../../server/ingest/otlp_translate.h"
#include "../../../../storage/base/vg_alloc.h"

#define REQ_DESC \
    (&opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor)

static struct config cfg;
static struct vg_arena *arena;
static struct vg_err err;
static struct otlp_translate_result res;
static struct otlp_delta_state *delta;
static char *promote[2] = { "host.name", "k8s.pod.name" };

static void setup(void)
{
    memset(&cfg, 0, sizeof cfg);
    cfg.limits = (struct config_limits){
        .max_body_bytes = 1 << 20,
        .max_decoded_bytes = 1 << 20,
        .max_labels_per_series = 16,
        .max_label_name_length = 64,
        .max_label_value_length = 128,
        .max_series_per_request = 1000,
    };
    cfg.otlp_delta = OTLP_DELTA_REJECT;
    cfg.otlp_add_type_and_unit_suffixes = true;
    arena = vg_arena_new(0);
    delta = NULL;
    vg_err_clear(&err);
}

static void teardown(void)
{
    vg_alloc_fail_after(0);
    vg_arena_free(arena);
    otlp_delta_free(delta);
}

TestSuite(otlp_translate, .init = setup, .fini = teardown);

/* ---- helpers ---- */

/* JSON written with ' for " to keep the cases readable. */
static otlp_metrics_request *req_of(const char *json)
{
    size_t n = strlen(json);
    char *s = vg_arena_alloc(arena, n + 1);
    for (size_t i = 0; i <= n; i++)
        s[i] = json[i] == '\'' ? '"' : json[i];
    ProtobufCMessage *m = NULL;
    int rc = otlp_json_decode(REQ_DESC, s, n, arena, &m, &err);
    cr_assert_eq(rc, 0, "test request does not decode: %s", err.msg);
    return (otlp_metrics_request *)m;
}

static void translate(const char *json)
{
    otlp_metrics_request *r = req_of(json);
    int rc = otlp_translate(r, &cfg, delta, arena, &res, &err);
    cr_assert_eq(rc, 0, "translate: %s", err.msg);
}

/* "name=value,name=value" of a series' labels in stored (sorted) order. */
static const char *labels_text(const struct label *ls, size_t n)
{
    static char buf[1024];
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%.*s=%.*s", i ? "," : "",
                              (int)ls[i].name.len, ls[i].name.p, (int)ls[i].value.len,
                              ls[i].value.p);
    return buf;
}

static const struct tsdb_series_in *find(const char *labels)
{
    for (size_t i = 0; i < res.batch.nseries; i++) {
        const struct tsdb_series_in *s = &res.batch.series[i];
        if (strcmp(labels_text(s->labels, s->nlabels), labels) == 0)
            return s;
    }
    return NULL;
}

static void dump(void)
{
    for (size_t i = 0; i < res.batch.nseries; i++) {
        const struct tsdb_series_in *s = &res.batch.series[i];
        fprintf(stderr, "  %s\n", labels_text(s->labels, s->nlabels));
    }
}

/* Asserts the series exists with exactly one sample (t, v). */
static const struct tsdb_series_in *expect1(const char *labels, int64_t t, double v)
{
    const struct tsdb_series_in *s = find(labels);
    if (!s)
        dump();
    cr_assert_not_null(s, "no series %s (reason: %s)", labels, res.reason);
    cr_assert_eq(s->nsamples, 1, "%s has %zu samples", labels, s->nsamples);
    cr_assert_eq(s->samples[0].t, t, "%s t=%lld", labels, (long long)s->samples[0].t);
    cr_assert(s->samples[0].v == v, "%s v=%g, want %g", labels, s->samples[0].v, v);
    return s;
}

static const struct tsdb_metadata *meta(const char *name)
{
    for (size_t i = 0; i < res.batch.nmeta; i++)
        if (vg_str_eq_c(res.batch.meta[i].metric, name))
            return &res.batch.meta[i];
    return NULL;
}

static bool is_stale(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b == TSDB_STALE_NAN_BITS;
}

#define T1 "1700000000000000000" /* ns */
#define T1MS 1700000000000LL

/* A request with one resource (service.name "svc") and one metric. */
#define ONE_METRIC(metric) \
    "{'resourceMetrics':[{'resource':{'attributes':[" \
    "{'key':'service.name','value':{'stringValue':'svc'}}]}," \
    "'scopeMetrics':[{'metrics':[" metric "]}]}]}"

/* ---- types and names ---- */

Test(otlp_translate, gauge_with_unit_1_gets_ratio)
{
    translate(ONE_METRIC("{'name':'system.cpu.utilization','unit':'1','description':'CPU',"
                         "'gauge':{'dataPoints':[{'timeUnixNano':'" T1 "','asDouble':0.25,"
                         "'attributes':[{'key':'cpu','value':{'intValue':'3'}}]}]}}"));
    cr_assert_eq(res.rejected, 0, "%s", res.reason);
    cr_assert_eq(res.points, 1);
    expect1("__name__=system_cpu_utilization_ratio,cpu=3,job=svc", T1MS, 0.25);
    const struct tsdb_metadata *m = meta("system_cpu_utilization_ratio");
    cr_assert_not_null(m);
    cr_assert_eq(m->type, TSDB_TYPE_GAUGE);
    cr_assert(vg_str_eq_c(m->help, "CPU"));
    cr_assert_eq(m->unit.len, 0);
}

Test(otlp_translate, monotonic_cumulative_sum_is_counter_total)
{
    translate(ONE_METRIC("{'name':'http.server.requests','unit':'{request}',"
                         "'sum':{'aggregationTemporality':2,'isMonotonic':true,"
                         "'dataPoints':[{'timeUnixNano':'" T1 "','asInt':'42'}]}}"));
    expect1("__name__=http_server_requests_total,job=svc", T1MS, 42);
    cr_assert_eq(meta("http_server_requests_total")->type, TSDB_TYPE_COUNTER);
}

Test(otlp_translate, non_monotonic_sum_is_gauge_without_ratio)
{
    translate(ONE_METRIC("{'name':'queue.depth','unit':'1',"
                         "'sum':{'aggregationTemporality':2,'isMonotonic':false,"
                         "'dataPoints':[{'timeUnixNano':'" T1 "','asInt':'-3'}]}}"));
    expect1("__name__=queue_depth,job=svc", T1MS, -3);
    cr_assert_eq(meta("queue_depth")->type, TSDB_TYPE_GAUGE);
}

Test(otlp_translate, unit_suffix_and_metadata_unit)
{
    translate(ONE_METRIC("{'name':'process.memory.usage','unit':'By',"
                         "'gauge':{'dataPoints':[{'timeUnixNano':'" T1 "','asInt':'1024'}]}}"));
    expect1("__name__=process_memory_usage_bytes,job=svc", T1MS, 1024);
    cr_assert(vg_str_eq_c(meta("process_memory_usage_bytes")->unit, "bytes"));
}

Test(otlp_translate, suffixes_off_keeps_name)
{
    cfg.otlp_add_type_and_unit_suffixes = false;
    translate(ONE_METRIC("{'name':'http.server.requests','unit':'s',"
                         "'sum':{'aggregationTemporality':2,'isMonotonic':true,"
                         "'dataPoints':[{'timeUnixNano':'" T1 "','asInt':'1'}]}}"));
    expect1("__name__=http_server_requests,job=svc", T1MS, 1);
}

Test(otlp_translate, name_with_nothing_valid_is_rejected)
{
    translate(ONE_METRIC("{'name':'...','gauge':{'dataPoints':["
                         "{'timeUnixNano':'" T1 "','asInt':'1'},"
                         "{'timeUnixNano':'" T1 "','asInt':'2'}]}}"));
    cr_assert_eq(res.batch.nseries, 0);
    cr_assert_eq(res.rejected, 2);
    cr_assert_eq(res.rejected_by[OTLP_REJECT_METRIC_NAME], 2);
    cr_assert(strstr(res.reason, "metric ...") != NULL, "%s", res.reason);
    cr_assert_eq(res.batch.nmeta, 0);
}

/* ---- histograms and summaries ---- */

Test(otlp_translate, histogram_to_classic_series)
{
    translate(ONE_METRIC("{'name':'http.server.duration','unit':'ms',"
                         "'histogram':{'aggregationTemporality':2,'dataPoints':[{"
                         "'timeUnixNano':'" T1 "','count':'10','sum':7.5,"
                         "'bucketCounts':['2','3','5'],'explicitBounds':[0.1,1]}]}}"));
    cr_assert_eq(res.rejected, 0, "%s", res.reason);
    cr_assert_eq(res.batch.nseries, 5);
    const char *n = "__name__=http_server_duration_milliseconds";
    char l[256];
    snprintf(l, sizeof l, "%s_bucket,job=svc,le=0.1", n);
    expect1(l, T1MS, 2);
    snprintf(l, sizeof l, "%s_bucket,job=svc,le=1", n);
    expect1(l, T1MS, 5);
    snprintf(l, sizeof l, "%s_bucket,job=svc,le=+Inf", n);
    expect1(l, T1MS, 10);
    snprintf(l, sizeof l, "%s_sum,job=svc", n);
    expect1(l, T1MS, 7.5);
    snprintf(l, sizeof l, "%s_count,job=svc", n);
    expect1(l, T1MS, 10);
    cr_assert_eq(meta("http_server_duration_milliseconds")->type, TSDB_TYPE_HISTOGRAM);
}

Test(otlp_translate, histogram_without_sum_has_no_sum_series)
{
    translate(ONE_METRIC("{'name':'lat','histogram':{'aggregationTemporality':2,"
                         "'dataPoints':[{'timeUnixNano':'" T1 "','count':'4',"
                         "'bucketCounts':['1','3'],'explicitBounds':[5]}]}}"));
    cr_assert_eq(res.batch.nseries, 3);
    cr_assert_null(find("__name__=lat_sum,job=svc"));
    expect1("__name__=lat_bucket,job=svc,le=5", T1MS, 1);
    expect1("__name__=lat_bucket,job=svc,le=+Inf", T1MS, 4);
}

Test(otlp_translate, histogram_bucket_mismatch_rejected)
{
    translate(ONE_METRIC("{'name':'lat','histogram':{'aggregationTemporality':2,"
                         "'dataPoints':[{'timeUnixNano':'" T1 "','count':'4',"
                         "'bucketCounts':['1','3'],'explicitBounds':[5,6]},"
                         "{'timeUnixNano':'" T1 "','count':'4',"
                         "'bucketCounts':['1','1','2'],'explicitBounds':[6,5]}]}}"));
    cr_assert_eq(res.batch.nseries, 0);
    cr_assert_eq(res.rejected_by[OTLP_REJECT_MALFORMED], 2);
    cr_assert(strstr(res.reason, "2 bucket counts for 2 explicit bounds"), "%s", res.reason);
}

Test(otlp_translate, summary_quantiles_sum_count)
{
    translate(ONE_METRIC("{'name':'rpc.latency','unit':'s','summary':{'dataPoints':[{"
                         "'timeUnixNano':'" T1 "','count':'7','sum':12.5,"
                         "'quantileValues':[{'quantile':0.5,'value':1.5},"
                         "{'quantile':0.99,'value':3}]}]}}"));
    cr_assert_eq(res.batch.nseries, 4);
    expect1("__name__=rpc_latency_seconds,job=svc,quantile=0.5", T1MS, 1.5);
    expect1("__name__=rpc_latency_seconds,job=svc,quantile=0.99", T1MS, 3);
    expect1("__name__=rpc_latency_seconds_sum,job=svc", T1MS, 12.5);
    expect1("__name__=rpc_latency_seconds_count,job=svc", T1MS, 7);
    cr_assert_eq(meta("rpc_latency_seconds")->type, TSDB_TYPE_SUMMARY);
}

Test(otlp_translate, summary_repeated_quantile_rejected)
{
    translate(ONE_METRIC("{'name':'q','summary':{'dataPoints':[{'timeUnixNano':'" T1 "',"
                         "'quantileValues':[{'quantile':0.5,'value':1},"
                         "{'quantile':0.5,'value':2}]}]}}"));
    cr_assert_eq(res.rejected_by[OTLP_REJECT_MALFORMED], 1);
    cr_assert_eq(res.batch.nseries, 0);
}

Test(otlp_translate, exponential_histogram_to_classic_buckets)
{
    /* scale 0: base 2. negative index 1 = [-4,-2) -> le=-2; zero bucket -> le=0;
     * positive index 0 = (1,2] -> le=2, index 1 = (2,4] -> le=4. */
    translate(ONE_METRIC("{'name':'size','unit':'By','exponentialHistogram':{"
                         "'aggregationTemporality':2,'dataPoints':[{'timeUnixNano':'" T1 "',"
                         "'count':'7','sum':3.5,'scale':0,'zeroCount':'1',"
                         "'positive':{'offset':0,'bucketCounts':['1','2']},"
                         "'negative':{'offset':1,'bucketCounts':['3']}}]}}"));
    cr_assert_eq(res.rejected, 0, "%s", res.reason);
    expect1("__name__=size_bytes_bucket,job=svc,le=-2", T1MS, 3);
    expect1("__name__=size_bytes_bucket,job=svc,le=0", T1MS, 4);
    expect1("__name__=size_bytes_bucket,job=svc,le=2", T1MS, 5);
    expect1("__name__=size_bytes_bucket,job=svc,le=4", T1MS, 7);
    expect1("__name__=size_bytes_bucket,job=svc,le=+Inf", T1MS, 7);
    expect1("__name__=size_bytes_sum,job=svc", T1MS, 3.5);
    expect1("__name__=size_bytes_count,job=svc", T1MS, 7);
    cr_assert_eq(res.batch.nseries, 7);
    cr_assert_eq(meta("size_bytes")->type, TSDB_TYPE_HISTOGRAM);
}

Test(otlp_translate, exponential_histogram_fine_scale)
{
    /* scale 1: base sqrt(2); positive index -1 = (2^-0.5, 1] -> le=1, index 0 -> le=1.414... */
    translate(ONE_METRIC("{'name':'x','exponentialHistogram':{'aggregationTemporality':2,"
                         "'dataPoints':[{'timeUnixNano':'" T1 "','count':'3','scale':1,"
                         "'zeroThreshold':0.001,"
                         "'positive':{'offset':-1,'bucketCounts':['1','2']}}]}}"));
    expect1("__name__=x_bucket,job=svc,le=0.001", T1MS, 0);
    expect1("__name__=x_bucket,job=svc,le=1", T1MS, 1);
    expect1("__name__=x_bucket,job=svc,le=1.4142135623730951", T1MS, 3);
    expect1("__name__=x_bucket,job=svc,le=+Inf", T1MS, 3);
}

Test(otlp_translate, exponential_histogram_bad_scale_rejected)
{
    translate(ONE_METRIC("{'name':'x','exponentialHistogram':{'aggregationTemporality':2,"
                         "'dataPoints':[{'timeUnixNano':'" T1 "','count':'1','scale':21}]}}"));
    cr_assert_eq(res.rejected_by[OTLP_REJECT_MALFORMED], 1);
}

/* ---- delta temporality ---- */

#define DELTA_SUM(t, v) \
    ONE_METRIC("{'name':'jobs.done','sum':{'aggregationTemporality':1,'isMonotonic':true," \
               "'dataPoints':[{'timeUnixNano':'" t "','asInt':'" v "'}]}}")

Test(otlp_translate, delta_rejected_by_default)
{
    translate(DELTA_SUM(T1, "5"));
    cr_assert_eq(res.batch.nseries, 0);
    cr_assert_eq(res.rejected, 1);
    cr_assert_eq(res.rejected_by[OTLP_REJECT_DELTA], 1);
    cr_assert(strstr(res.reason, "jobs.done: delta temporality is not accepted"), "%s",
              res.reason);
}

Test(otlp_translate, delta_sum_accumulates_and_refuses_retries)
{
    cfg.otlp_delta = OTLP_DELTA_ACCUMULATE;
    delta = otlp_delta_new(0, 0);
    translate(DELTA_SUM("1700000000000000000", "5"));
    expect1("__name__=jobs_done_total,job=svc", T1MS, 5);
    translate(DELTA_SUM("1700000010000000000", "3"));
    expect1("__name__=jobs_done_total,job=svc", T1MS + 10000, 8);
    /* a retry of the same export must not count twice */
    translate(DELTA_SUM("1700000010000000000", "3"));
    cr_assert_eq(res.batch.nseries, 0);
    cr_assert_eq(res.rejected_by[OTLP_REJECT_DELTA_STATE], 1);
    cr_assert(strstr(res.reason, "not newer"), "%s", res.reason);
    cr_assert_eq(otlp_delta_size(delta), 1);
}

Test(otlp_translate, delta_histogram_accumulates_buckets)
{
    cfg.otlp_delta = OTLP_DELTA_ACCUMULATE;
    delta = otlp_delta_new(0, 0);
    const char *h1 = ONE_METRIC("{'name':'lat','histogram':{'aggregationTemporality':1,"
                                "'dataPoints':[{'timeUnixNano':'1700000000000000000',"
                                "'count':'3','sum':1.5,'bucketCounts':['1','2'],"
                                "'explicitBounds':[1]}]}}");
    const char *h2 = ONE_METRIC("{'name':'lat','histogram':{'aggregationTemporality':1,"
                                "'dataPoints':[{'timeUnixNano':'1700000001000000000',"
                                "'count':'2','sum':0.5,'bucketCounts':['2','0'],"
                                "'explicitBounds':[1]}]}}");
    translate(h1);
    expect1("__name__=lat_bucket,job=svc,le=1", T1MS, 1);
    translate(h2);
    expect1("__name__=lat_bucket,job=svc,le=1", T1MS + 1000, 3);
    expect1("__name__=lat_bucket,job=svc,le=+Inf", T1MS + 1000, 5);
    expect1("__name__=lat_sum,job=svc", T1MS + 1000, 2);
    expect1("__name__=lat_count,job=svc", T1MS + 1000, 5);
}

Test(otlp_translate, delta_exponential_histogram_merges_scales)
{
    cfg.otlp_delta = OTLP_DELTA_ACCUMULATE;
    delta = otlp_delta_new(0, 0);
    /* scale 1 index 0 and 1 -> at scale 0 both are index 0 = (1,2]. */
    translate(ONE_METRIC("{'name':'e','exponentialHistogram':{'aggregationTemporality':1,"
                         "'dataPoints':[{'timeUnixNano':'1700000000000000000','count':'3',"
                         "'scale':1,'positive':{'offset':0,'bucketCounts':['1','2']}}]}}"));
    expect1("__name__=e_bucket,job=svc,le=2", T1MS, 3);
    translate(ONE_METRIC("{'name':'e','exponentialHistogram':{'aggregationTemporality':1,"
                         "'dataPoints':[{'timeUnixNano':'1700000001000000000','count':'4',"
                         "'scale':0,'positive':{'offset':0,'bucketCounts':['1','3']}}]}}"));
    expect1("__name__=e_bucket,job=svc,le=2", T1MS + 1000, 4);
    expect1("__name__=e_bucket,job=svc,le=4", T1MS + 1000, 7);
    expect1("__name__=e_bucket,job=svc,le=+Inf", T1MS + 1000, 7);
    expect1("__name__=e_count,job=svc", T1MS + 1000, 7);
}

Test(otlp_translate, unspecified_temporality_rejected)
{
    translate(ONE_METRIC("{'name':'c','sum':{'isMonotonic':true,'dataPoints':["
                         "{'timeUnixNano':'" T1 "','asInt':'1'}]}}"));
    cr_assert_eq(res.rejected_by[OTLP_REJECT_TEMPORALITY], 1);
    cr_assert_eq(res.batch.nseries, 0);
}

/* ---- resource, scope, target_info ---- */

#define FULL_RESOURCE \
    "{'key':'service.name','value':{'stringValue':'checkout'}}," \
    "{'key':'service.namespace','value':{'stringValue':'shop'}}," \
    "{'key':'service.instance.id','value':{'stringValue':'pod-1'}}," \
    "{'key':'host.name','value':{'stringValue':'node-a'}}," \
    "{'key':'deployment.environment','value':{'stringValue':'prod'}}"

Test(otlp_translate, job_instance_scope_and_target_info)
{
    translate("{'resourceMetrics':[{'resource':{'attributes':[" FULL_RESOURCE "]},"
              "'scopeMetrics':[{'scope':{'name':'io.otel.http','version':'1.2.0'},'metrics':["
              "{'name':'up','gauge':{'dataPoints':["
              "{'timeUnixNano':'1700000000000000000','asInt':'1'},"
              "{'timeUnixNano':'1700000400000000000','asInt':'1',"
              "'attributes':[{'key':'x','value':{'boolValue':true}}]}]}}]}]}]}");
    cr_assert_eq(res.rejected, 0, "%s", res.reason);
    expect1("__name__=up,instance=pod-1,job=shop/checkout,otel_scope_name=io.otel.http,"
            "otel_scope_version=1.2.0",
            T1MS, 1);
    expect1("__name__=up,instance=pod-1,job=shop/checkout,otel_scope_name=io.otel.http,"
            "otel_scope_version=1.2.0,x=true",
            T1MS + 400000, 1);
    const struct tsdb_series_in *ti =
        find("__name__=target_info,deployment_environment=prod,host_name=node-a,"
             "instance=pod-1,job=shop/checkout");
    if (!ti)
        dump();
    cr_assert_not_null(ti);
    /* every 150 s from the first to the last point, then the last */
    cr_assert_eq(ti->nsamples, 4);
    int64_t want[4] = { T1MS, T1MS + 150000, T1MS + 300000, T1MS + 400000 };
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(ti->samples[i].t, want[i]);
        cr_assert_eq(ti->samples[i].v, 1);
    }
    cr_assert_eq(meta("target_info")->type, TSDB_TYPE_GAUGE);
}

Test(otlp_translate, target_info_keeps_identifying_when_configured)
{
    cfg.otlp_keep_identifying_attrs = true;
    translate("{'resourceMetrics':[{'resource':{'attributes':[" FULL_RESOURCE "]},"
              "'scopeMetrics':[{'metrics':[{'name':'up','gauge':{'dataPoints':["
              "{'timeUnixNano':'" T1 "','asInt':'1'}]}}]}]}]}");
    cr_assert_not_null(find("__name__=target_info,deployment_environment=prod,host_name=node-a,"
                            "instance=pod-1,job=shop/checkout,service_instance_id=pod-1,"
                            "service_name=checkout,service_namespace=shop"));
}

Test(otlp_translate, no_target_info_without_other_attributes)
{
    translate(ONE_METRIC("{'name':'up','gauge':{'dataPoints':["
                         "{'timeUnixNano':'" T1 "','asInt':'1'}]}}"));
    cr_assert_eq(res.batch.nseries, 1);
    cr_assert_null(meta("target_info"));
}

Test(otlp_translate, promoted_resource_attributes)
{
    cfg.otlp_promote_attrs = promote;
    cfg.otlp_npromote = 2;
    translate("{'resourceMetrics':[{'resource':{'attributes':[" FULL_RESOURCE "]},"
              "'scopeMetrics':[{'metrics':[{'name':'up','gauge':{'dataPoints':["
              "{'timeUnixNano':'" T1 "','asInt':'1'},"
              "{'timeUnixNano':'" T1 "','asInt':'2','attributes':["
              "{'key':'host.name','value':{'stringValue':'override'}}]}]}}]}]}]}");
    expect1("__name__=up,host_name=node-a,instance=pod-1,job=shop/checkout", T1MS, 1);
    /* a point attribute wins over a promoted resource attribute */
    expect1("__name__=up,host_name=override,instance=pod-1,job=shop/checkout", T1MS, 2);
}

/* ---- labels ---- */

Test(otlp_translate, label_names_sanitised_and_colliding_joined)
{
    translate(ONE_METRIC("{'name':'m','gauge':{'dataPoints':[{'timeUnixNano':'" T1 "',"
                         "'asDouble':1,'attributes':["
                         "{'key':'a_b','value':{'stringValue':'2'}},"
                         "{'key':'a.b','value':{'stringValue':'1'}},"
                         "{'key':'2xx','value':{'stringValue':'y'}},"
                         "{'key':'__name__','value':{'stringValue':'evil'}},"
                         "{'key':'le','value':{'stringValue':'keep'}},"
                         "{'key':'d','value':{'doubleValue':1.5}},"
                         "{'key':'arr','value':{'arrayValue':{'values':[{'intValue':'1'},"
                         "{'stringValue':'s'}]}}},"
                         "{'key':'empty','value':{'stringValue':''}}]}]}}"));
    cr_assert_eq(res.rejected, 0, "%s", res.reason);
    expect1("__name__=m,a_b=1;2,arr=[1,\"s\"],d=1.5,job=svc,key_2xx=y,key__name__=evil,le=keep",
            T1MS, 1);
}

Test(otlp_translate, attribute_with_no_valid_name_rejects_point)
{
    translate(ONE_METRIC("{'name':'m','gauge':{'dataPoints':["
                         "{'timeUnixNano':'" T1 "','asDouble':1,'attributes':["
                         "{'key':'...','value':{'stringValue':'x'}}]},"
                         "{'timeUnixNano':'" T1 "','asDouble':2}]}}"));
    cr_assert_eq(res.rejected_by[OTLP_REJECT_LABELS], 1);
    cr_assert(strstr(res.reason, "attribute name \"...\""), "%s", res.reason);
    expect1("__name__=m,job=svc", T1MS, 2); /* the rest still goes in */
}

Test(otlp_translate, label_limits_reject_series_rest_goes_in)
{
    cfg.limits.max_labels_per_series = 3;
    cfg.limits.max_label_value_length = 8;
    translate(ONE_METRIC("{'name':'m','gauge':{'dataPoints':["
                         "{'timeUnixNano':'" T1 "','asDouble':1,'attributes':["
                         "{'key':'a','value':{'stringValue':'1'}},"
                         "{'key':'b','value':{'stringValue':'2'}}]},"
                         "{'timeUnixNano':'" T1 "','asDouble':2,'attributes':["
                         "{'key':'a','value':{'stringValue':'much too long'}}]},"
                         "{'timeUnixNano':'" T1 "','asDouble':3,'attributes':["
                         "{'key':'a','value':{'stringValue':'ok'}}]}]}}"));
    cr_assert_eq(res.points, 3);
    cr_assert_eq(res.rejected, 2);
    cr_assert_eq(res.rejected_by[OTLP_REJECT_LABELS], 2);
    cr_assert(strstr(res.reason, "max_labels_per_series"), "%s", res.reason);
    cr_assert_eq(res.batch.nseries, 1);
    expect1("__name__=m,a=ok,job=svc", T1MS, 3);
}

Test(otlp_translate, histogram_le_can_push_over_label_limit)
{
    /* __name__, job, a: 3 labels fit; the bucket series need le as a 4th: the whole point
     * is refused, not only its buckets */
    cfg.limits.max_labels_per_series = 3;
    translate(ONE_METRIC("{'name':'h','histogram':{'aggregationTemporality':2,"
                         "'dataPoints':[{'timeUnixNano':'" T1 "','count':'1','sum':1,"
                         "'attributes':[{'key':'a','value':{'stringValue':'1'}}]}]}}"));
    cr_assert_eq(res.rejected, 1);
    cr_assert_eq(res.batch.nseries, 0);
}

Test(otlp_translate, series_limit_refuses_whole_points)
{
    cfg.limits.max_series_per_request = 4;
    translate(ONE_METRIC("{'name':'g','gauge':{'dataPoints':["
                         "{'timeUnixNano':'" T1 "','asDouble':1}]}},"
                         "{'name':'h','histogram':{'aggregationTemporality':2,"
                         "'dataPoints':[{'timeUnixNano':'" T1 "','count':'1','sum':1,"
                         "'bucketCounts':['1','0'],'explicitBounds':[1]}]}}"));
    cr_assert_eq(res.batch.nseries, 1);
    cr_assert_eq(res.rejected_by[OTLP_REJECT_SERIES_LIMIT], 1);
    cr_assert(strstr(res.reason, "max_series_per_request"), "%s", res.reason);
}

/* ---- points ---- */

Test(otlp_translate, zero_time_rejected)
{
    translate(ONE_METRIC("{'name':'g','gauge':{'dataPoints':[{'asDouble':1},"
                         "{'timeUnixNano':'" T1 "','asDouble':2}]}}"));
    cr_assert_eq(res.rejected_by[OTLP_REJECT_NO_TIMESTAMP], 1);
    cr_assert(strstr(res.reason, "time_unix_nano"), "%s", res.reason);
    expect1("__name__=g,job=svc", T1MS, 2);
}

Test(otlp_translate, same_series_points_merge_into_one_series)
{
    translate(ONE_METRIC("{'name':'g','gauge':{'dataPoints':["
                         "{'timeUnixNano':'1700000000000000000','asDouble':1},"
                         "{'timeUnixNano':'1700000001000000000','asDouble':2}]}}"));
    cr_assert_eq(res.batch.nseries, 1);
    cr_assert_eq(res.batch.series[0].nsamples, 2);
    cr_assert_eq(res.batch.series[0].samples[1].t, T1MS + 1000);
}

Test(otlp_translate, no_recorded_value_is_stale_nan)
{
    translate(ONE_METRIC("{'name':'g','gauge':{'dataPoints':["
                         "{'timeUnixNano':'" T1 "','flags':1}]}},"
                         "{'name':'h','histogram':{'aggregationTemporality':2,"
                         "'dataPoints':[{'timeUnixNano':'" T1 "','flags':1,'count':'0',"
                         "'bucketCounts':['0','0'],'explicitBounds':[1]}]}}"));
    cr_assert_eq(res.rejected, 0, "%s", res.reason);
    cr_assert_eq(res.batch.nseries, 4);
    for (size_t i = 0; i < res.batch.nseries; i++)
        cr_assert(is_stale(res.batch.series[i].samples[0].v), "series %zu not stale", i);
}

Test(otlp_translate, number_point_without_value_rejected)
{
    translate(ONE_METRIC("{'name':'g','gauge':{'dataPoints':[{'timeUnixNano':'" T1 "'}]}}"));
    cr_assert_eq(res.rejected_by[OTLP_REJECT_MALFORMED], 1);
}

/* ---- exemplars ---- */

Test(otlp_translate, exemplars_on_counter_and_histogram_bucket)
{
    translate(ONE_METRIC(
        "{'name':'req','sum':{'aggregationTemporality':2,'isMonotonic':true,"
        "'dataPoints':[{'timeUnixNano':'" T1 "','asInt':'9','exemplars':[{"
        "'timeUnixNano':'1699999999000000000','asDouble':1,"
        "'traceId':'5b8efff798038103d269b633813fc60c','spanId':'eee19b7ec3c1b174',"
        "'filteredAttributes':[{'key':'user.id','value':{'stringValue':'u1'}}]}]}]}},"
        "{'name':'lat','histogram':{'aggregationTemporality':2,'dataPoints':[{"
        "'timeUnixNano':'" T1 "','count':'3','bucketCounts':['1','1','1'],"
        "'explicitBounds':[0.1,1],'exemplars':[{'asDouble':0.5,"
        "'spanId':'eee19b7ec3c1b174'},{'asDouble':7}]}]}}"));
    const struct tsdb_series_in *c = expect1("__name__=req_total,job=svc", T1MS, 9);
    cr_assert_eq(c->nexemplars, 1);
    cr_assert_eq(c->exemplars[0].t, T1MS - 1000);
    cr_assert_eq(c->exemplars[0].v, 1);
    cr_assert_str_eq(labels_text(c->exemplars[0].labels, c->exemplars[0].nlabels),
                     "span_id=eee19b7ec3c1b174,trace_id=5b8efff798038103d269b633813fc60c,"
                     "user_id=u1");
    const struct tsdb_series_in *b = expect1("__name__=lat_bucket,job=svc,le=1", T1MS, 2);
    cr_assert_eq(b->nexemplars, 1);
    cr_assert_eq(b->exemplars[0].t, T1MS); /* no time: the point's */
    cr_assert_str_eq(labels_text(b->exemplars[0].labels, b->exemplars[0].nlabels),
                     "span_id=eee19b7ec3c1b174");
    const struct tsdb_series_in *inf = expect1("__name__=lat_bucket,job=svc,le=+Inf", T1MS, 3);
    cr_assert_eq(inf->nexemplars, 1);
    cr_assert_eq(inf->exemplars[0].v, 7);
    cr_assert_eq(expect1("__name__=lat_bucket,job=svc,le=0.1", T1MS, 1)->nexemplars, 0);
}

Test(otlp_translate, exemplar_attributes_dropped_over_128_runes)
{
    translate(ONE_METRIC(
        "{'name':'g','gauge':{'dataPoints':[{'timeUnixNano':'" T1 "','asInt':'1',"
        "'exemplars':[{'asInt':'1','traceId':'5b8efff798038103d269b633813fc60c',"
        "'filteredAttributes':[{'key':'long','value':{'stringValue':'"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxx'}}]}]}]}}"));
    const struct tsdb_series_in *s = expect1("__name__=g,job=svc", T1MS, 1);
    cr_assert_eq(s->nexemplars, 1);
    cr_assert_str_eq(labels_text(s->exemplars[0].labels, s->exemplars[0].nlabels),
                     "trace_id=5b8efff798038103d269b633813fc60c");
}

/* ---- memory ---- */

Test(otlp_translate, arena_limit_is_enomem)
{
    otlp_metrics_request *r = req_of(ONE_METRIC(
        "{'name':'lat','histogram':{'aggregationTemporality':2,'dataPoints':[{"
        "'timeUnixNano':'" T1 "','count':'3','bucketCounts':['1','1','1'],"
        "'explicitBounds':[0.1,1]}]}}"));
    struct vg_arena *small = vg_arena_new(256);
    vg_arena_set_limit(small, 1024);
    int rc = otlp_translate(r, &cfg, NULL, small, &res, &err);
    vg_arena_free(small);
    cr_assert_eq(rc, VG_ENOMEM);
    cr_assert(strstr(err.msg, "memory"), "%s", err.msg);
    cr_assert_eq(res.batch.nseries, 0);
}

Test(otlp_translate, allocation_failure_anywhere_is_clean)
{
    otlp_metrics_request *r = req_of(
        "{'resourceMetrics':[{'resource':{'attributes':[" FULL_RESOURCE "]},"
        "'scopeMetrics':[{'scope':{'name':'s'},'metrics':["
        "{'name':'a.b','unit':'ms','histogram':{'aggregationTemporality':2,'dataPoints':[{"
        "'timeUnixNano':'" T1 "','count':'3','sum':2,'bucketCounts':['1','1','1'],"
        "'explicitBounds':[0.1,1],'exemplars':[{'asDouble':0.5,'spanId':'eee19b7ec3c1b174'}]}]}},"
        "{'name':'c','sum':{'aggregationTemporality':2,'isMonotonic':true,'dataPoints':["
        "{'timeUnixNano':'" T1 "','asDouble':1,'attributes':["
        "{'key':'k','value':{'kvlistValue':{'values':[{'key':'x','value':{'intValue':'1'}}]}}}"
        "]}]}}]}]}]}");
    bool ok = false;
    for (uint64_t n = 1; n < 400 && !ok; n++) {
        struct vg_arena *a = vg_arena_new(256);
        cr_assert_not_null(a);
        vg_alloc_fail_after(n);
        int rc = otlp_translate(r, &cfg, delta, a, &res, &err);
        vg_alloc_fail_after(0);
        cr_assert(rc == 0 || rc == VG_ENOMEM, "n=%llu rc=%d", (unsigned long long)n, rc);
        if (rc == 0 && res.rejected == 0) {
            ok = true;
            cr_assert_eq(res.batch.nseries, 7, "%zu series", res.batch.nseries);
        }
        vg_arena_free(a);
    }
    cr_assert(ok, "never succeeded");
}
