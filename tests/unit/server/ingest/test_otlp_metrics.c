/* Tests server/ingest/otlp_metrics.c, the receiver as a user meets it: POST /v1/metrics
 * (protobuf and JSON) and the gRPC Export method run against a real TSDB in a temporary
 * directory (tests/unit/server/fixture.h), then read back with tsdb_select / tsdb_read /
 * tsdb_metadata_get / tsdb_exemplars: exact translated labels, values, timestamps,
 * metadata and exemplars. Partial success counts both the points the translation refused
 * and the samples the store refused (older than the out-of-order window, conflicting
 * duplicates). Error answers: 415 for other media types and encodings, 400 with a
 * google.rpc.Status for undecodable bodies, 413 over the memory cap, 503 with Retry-After
 * when the store fails (allocation failure injected at every step, nothing half-stored).
 * The delta state made by init honours otlp.delta_max_series and otlp.delta_idle_timeout. */
#include "../fixture.h"

#include "../../../../server/ingest/ingest.h"
#include "../../../../server/ingest/otlp_json.h"
#include "../../../../server/ingest/otlp_metrics.h"
#include "../../../../server/pb_alloc.h"
#include "../../../../storage/tsdb/matcher.h"

#include "otlp_metrics_service.pb-c.h"

#include <inttypes.h>

#define REQ_DESC \
    (&opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor)
#define RESP_DESC \
    (&opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__descriptor)
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse Resp;

static struct server_fixture fx;
static struct vg_arena *arena;
static struct http_response resp;
static struct vg_err err;
static int64_t now; /* ms; every request is written relative to it */

static void setup(void)
{
    fixture_receiver_open(&fx, 0, &arena, &resp);
    vg_err_clear(&err);
    now = fixture_now_ms() / 1000 * 1000;
}

static void teardown(void)
{
    vg_alloc_fail_after(0);
    mod_otlp_metrics.free(&fx.v);
    fixture_receiver_close(&fx, arena, &resp);
}

TestSuite(otlp_metrics, .init = setup, .fini = teardown, .timeout = 30);

/* ---- requests ---- */

static void post(const char *ct, struct vg_str body)
{
    fixture_post(&fx, &mod_otlp_metrics, "/v1/metrics", ct, NULL, body, arena, &resp);
}

/* Posts json in the given encoding and expects 200. */
static void export(bool json, struct vg_str body)
{
    fixture_otlp_export(&fx, &mod_otlp_metrics, "/v1/metrics", REQ_DESC, json, body, arena,
                        &resp);
}

/* The partial success of the last response (either encoding); NULL when there is none.
 * Owned by the arena. */
static Resp *answer(bool json)
{
    return (Resp *)fixture_otlp_answer(RESP_DESC, json, &resp, arena);
}

/* ---- what the store holds ---- */

/* Appends "name=value,name=value" to out (cap bytes, *w used). */
static void put_labels(char *out, size_t cap, size_t *w, const struct label *ls, size_t n)
{
    for (size_t j = 0; j < n && *w < cap; j++)
        *w += (size_t)snprintf(out + *w, cap - *w, "%s%.*s=%.*s", j ? "," : "",
                               (int)ls[j].name.len, ls[j].name.p, (int)ls[j].value.len,
                               ls[j].value.p);
    cr_assert_lt(*w, cap);
}

static struct matcher *name_is(const char *metric)
{
    struct matcher *m = matcher_new(MATCH_EQ, VG_STR("__name__"), vg_str_c(metric), &err);
    cr_assert_not_null(m, "%s", err.msg);
    return m;
}

/* Every series named metric with all its samples, one line each:
 * "label=value,label=value t=v t=v" in label order; "" when there are none. */
static const char *stored(const char *metric)
{
    static char out[4096];
    size_t w = 0;
    out[0] = '\0';
    struct matcher *m = name_is(metric);
    struct tsdb_series_set *set;
    cr_assert_eq(tsdb_select(fx.v.tsdb, &m, 1, INT64_MIN, INT64_MAX, &set, &err), 0, "%s",
                 err.msg);
    for (size_t i = 0; i < set->n; i++) {
        const struct tsdb_series *s = &set->v[i];
        put_labels(out, sizeof out, &w, s->labels, s->nlabels);
        struct tsdb_sample *smp;
        size_t n;
        cr_assert_eq(tsdb_read(fx.v.tsdb, s->id, INT64_MIN, INT64_MAX, &smp, &n, &err), 0,
                     "%s", err.msg);
        for (size_t k = 0; k < n; k++)
            w += (size_t)snprintf(out + w, sizeof out - w, " %" PRId64 "=%.17g", smp[k].t,
                                  smp[k].v);
        vg_free(smp);
        w += (size_t)snprintf(out + w, sizeof out - w, "\n");
        cr_assert_lt(w, sizeof out);
    }
    tsdb_series_set_free(set);
    matcher_free(m);
    return out;
}

/* Asserts what stored(metric) holds; want is a format with the sample times as
 * arguments. */
static void expect_stored(const char *metric, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void expect_stored(const char *metric, const char *fmt, ...)
{
    char want[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(want, sizeof want, fmt, ap);
    va_end(ap);
    const char *got = stored(metric);
    cr_assert_str_eq(got, want, "%s:\n got: %s\nwant: %s", metric, got, want);
}

static void expect_meta(const char *metric, enum tsdb_metric_type type, const char *help,
                        const char *unit)
{
    enum tsdb_metric_type t;
    char h[128], u[64];
    cr_assert(tsdb_metadata_get(fx.v.tsdb, metric, &t, h, sizeof h, u, sizeof u),
              "no metadata for %s", metric);
    cr_assert_eq(t, type, "%s: type %s", metric, tsdb_metric_type_name(t));
    cr_assert_str_eq(h, help);
    cr_assert_str_eq(u, unit);
}

/* Exemplars of the series named metric, as "labels@t=v;" in store order. */
static const char *exemplars(const char *metric)
{
    static char out[1024];
    size_t w = 0;
    out[0] = '\0';
    struct matcher *m = name_is(metric);
    struct tsdb_exemplar_set *set;
    cr_assert_eq(tsdb_exemplars(fx.v.tsdb, &m, 1, INT64_MIN, INT64_MAX, &set, &err), 0, "%s",
                 err.msg);
    for (size_t i = 0; i < set->n; i++) {
        const struct tsdb_exemplar_out *e = &set->v[i];
        put_labels(out, sizeof out, &w, e->labels, e->nlabels);
        w += (size_t)snprintf(out + w, sizeof out - w, "@%" PRId64 "=%g;", e->t, e->v);
        cr_assert_lt(w, sizeof out);
    }
    tsdb_exemplar_set_free(set);
    matcher_free(m);
    return out;
}

static uint64_t series_count(void)
{
    struct tsdb_stats st;
    tsdb_stats(fx.v.tsdb, &st);
    return st.series;
}

/* ---- a request as an SDK sends it ---- */

#define RESOURCE \
    "'resource':{'attributes':[" \
    "{'key':'service.namespace','value':{'stringValue':'shop'}}," \
    "{'key':'service.name','value':{'stringValue':'checkout'}}," \
    "{'key':'service.instance.id','value':{'stringValue':'pod-1'}}," \
    "{'key':'host.name','value':{'stringValue':'node-a'}}]}"

/* One counter with an exemplar, one gauge with unit 1, one histogram in ms, all at t
 * (ms; passed three times). */
#define SDK_REQUEST \
    "{'resourceMetrics':[{" RESOURCE ",'scopeMetrics':[{" \
    "'scope':{'name':'io.otel.http','version':'1.2.0'},'metrics':[" \
    "{'name':'http.server.requests','unit':'{request}','description':'Requests served'," \
    "'sum':{'aggregationTemporality':2,'isMonotonic':true,'dataPoints':[{" \
    "'timeUnixNano':'%" PRId64 "000000','asInt':'42'," \
    "'attributes':[{'key':'http.method','value':{'stringValue':'GET'}}]," \
    "'exemplars':[{'asDouble':1,'traceId':'5b8efff798038103d269b633813fc60c'," \
    "'spanId':'eee19b7ec3c1b174'}]}]}}," \
    "{'name':'system.cpu.utilization','unit':'1','description':'CPU busy'," \
    "'gauge':{'dataPoints':[{'timeUnixNano':'%" PRId64 "000000','asDouble':0.25}]}}," \
    "{'name':'http.server.duration','unit':'ms','description':'Latency'," \
    "'histogram':{'aggregationTemporality':2,'dataPoints':[{" \
    "'timeUnixNano':'%" PRId64 "000000','count':'10','sum':7.5," \
    "'bucketCounts':['2','3','5'],'explicitBounds':[0.1,1]}]}}" \
    "]}]}]}"

#define SCOPED "instance=pod-1,job=shop/checkout,otel_scope_name=io.otel.http," \
               "otel_scope_version=1.2.0"
#define LE(le) "instance=pod-1,job=shop/checkout,le=" le ",otel_scope_name=io.otel.http," \
               "otel_scope_version=1.2.0"

static void sdk_request_is_stored(bool json)
{
    int64_t t = now;
    export(json, fixture_json(arena, SDK_REQUEST, t, t, t));
    if (json)
        cr_assert_str_eq(resp.content_type, "application/json");
    else
        cr_assert_str_eq(resp.content_type, "application/x-protobuf");
    cr_assert_null(answer(json)->partial_success, "everything was stored");

    expect_stored("http_server_requests_total",
                  "__name__=http_server_requests_total,http_method=GET," SCOPED
                  " %" PRId64 "=42\n", t);
    expect_stored("system_cpu_utilization_ratio",
                  "__name__=system_cpu_utilization_ratio," SCOPED " %" PRId64 "=0.25\n", t);
    const char *h = "__name__=http_server_duration_milliseconds";
    expect_stored("http_server_duration_milliseconds_bucket",
                  "%s_bucket," LE("+Inf") " %" PRId64 "=10\n"
                  "%s_bucket," LE("0.1") " %" PRId64 "=2\n"
                  "%s_bucket," LE("1") " %" PRId64 "=5\n",
                  h, t, h, t, h, t);
    expect_stored("http_server_duration_milliseconds_sum",
                  "%s_sum," SCOPED " %" PRId64 "=7.5\n", h, t);
    expect_stored("http_server_duration_milliseconds_count",
                  "%s_count," SCOPED " %" PRId64 "=10\n", h, t);
    expect_stored("target_info",
                  "__name__=target_info,host_name=node-a,instance=pod-1,job=shop/checkout"
                  " %" PRId64 "=1\n", t);
    cr_assert_eq(series_count(), 8);

    expect_meta("http_server_requests_total", TSDB_TYPE_COUNTER, "Requests served", "");
    expect_meta("system_cpu_utilization_ratio", TSDB_TYPE_GAUGE, "CPU busy", "");
    expect_meta("http_server_duration_milliseconds", TSDB_TYPE_HISTOGRAM, "Latency",
                "milliseconds");

    char want[256];
    snprintf(want, sizeof want,
             "span_id=eee19b7ec3c1b174,trace_id=5b8efff798038103d269b633813fc60c@%" PRId64
             "=1;", t);
    cr_assert_str_eq(exemplars("http_server_requests_total"), want);
    cr_assert_str_eq(exemplars("system_cpu_utilization_ratio"), "");
}

Test(otlp_metrics, protobuf_request_is_stored_as_prometheus_series)
{
    sdk_request_is_stored(false);
}

Test(otlp_metrics, json_request_is_stored_the_same)
{
    sdk_request_is_stored(true);
}

Test(otlp_metrics, resent_request_changes_nothing)
{
    /* An SDK retrying after a lost response: exact duplicates are not errors. */
    int64_t t = now;
    export(false, fixture_json(arena, SDK_REQUEST, t, t, t));
    export(false, fixture_json(arena, SDK_REQUEST, t, t, t));
    cr_assert_eq(resp.body.len, 0);
    expect_stored("system_cpu_utilization_ratio",
                  "__name__=system_cpu_utilization_ratio," SCOPED " %" PRId64 "=0.25\n", t);
}

/* ---- partial success ---- */

#define GAUGE(name, v) \
    "{'name':'" name "','gauge':{'dataPoints':[{'timeUnixNano':'%" PRId64 "000000'," \
    "'asDouble':" v "}]}}"
#define SVC(metrics) \
    "{'resourceMetrics':[{'resource':{'attributes':[" \
    "{'key':'service.name','value':{'stringValue':'svc'}}]}," \
    "'scopeMetrics':[{'metrics':[" metrics "]}]}]}"

Test(otlp_metrics, sample_older_than_window_is_partial_success)
{
    int64_t t = now, old = now - 31LL * 60 * 1000; /* the window is 30m */
    export(false, fixture_json(arena, SVC(GAUGE("temp", "20")), t));
    export(false, fixture_json(arena, SVC(GAUGE("temp", "19") "," GAUGE("hum", "0.5")), old, t));
    Resp *r = answer(false);
    cr_assert_not_null(r->partial_success);
    cr_assert_eq(r->partial_success->rejected_data_points, 1);
    char want[256];
    snprintf(want, sizeof want,
             "1 samples rejected by the store; first: {__name__=\"temp\", job=\"svc\"}: "
             "sample at %" PRId64 " is too old (newest %" PRId64 ", out-of-order window "
             "1800000 ms)", old, t);
    cr_assert_str_eq(r->partial_success->error_message, want);
    expect_stored("temp", "__name__=temp,job=svc %" PRId64 "=20\n", t);
    expect_stored("hum", "__name__=hum,job=svc %" PRId64 "=0.5\n", t);
}

Test(otlp_metrics, store_and_translation_refusals_add_up_in_json)
{
    int64_t t = now;
    export(true, fixture_json(arena, SVC(GAUGE("temp", "20")), t));
    /* a conflicting value at a stored time, a point without time, one good point */
    export(true, fixture_json(arena, SVC(GAUGE("temp", "21") ","
                                          "{'name':'hum','gauge':{'dataPoints':[{'asDouble':1},"
                                          "{'timeUnixNano':'%" PRId64 "000000','asDouble':0.5}]}}"),
                                      t, t));
    Resp *r = answer(true);
    cr_assert_not_null(r->partial_success);
    cr_assert_eq(r->partial_success->rejected_data_points, 2);
    const char *msg = r->partial_success->error_message;
    cr_assert(strstr(msg, "1 of 3 data points rejected; first: metric hum: data point has no "
                          "time_unix_nano; 1 samples rejected by the store; first: "
                          "{__name__=\"temp\", job=\"svc\"}: sample at "),
              "%s", msg);
    expect_stored("temp", "__name__=temp,job=svc %" PRId64 "=20\n", t);
    expect_stored("hum", "__name__=hum,job=svc %" PRId64 "=0.5\n", t);
}

/* ---- gRPC ---- */

Test(otlp_metrics, grpc_export_stores_and_answers_partial_success)
{
    cr_assert_eq(mod_otlp_metrics.ngrpc, 1);
    cr_assert_str_eq(mod_otlp_metrics.grpc_methods[0].path,
                     "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export");
    int64_t t = now;
    struct vg_str json = fixture_json(arena, SVC("{'name':'g','gauge':{'dataPoints':["
                                                 "{'timeUnixNano':'%" PRId64 "000000','asInt':'7'},"
                                                 "{'asInt':'8'}]}}"),
                                      t);
    struct vg_str pb = fixture_otlp_pb(REQ_DESC, json, arena);
    struct vg_buf out;
    vg_buf_init(&out);
    int rc = mod_otlp_metrics.grpc_methods[0].fn(&fx.v, (const unsigned char *)pb.p, pb.len,
                                                 &out, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    Resp *r = opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__unpack(
        NULL, out.len, (const uint8_t *)out.p);
    cr_assert_not_null(r);
    cr_assert_not_null(r->partial_success);
    cr_assert_eq(r->partial_success->rejected_data_points, 1);
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__free_unpacked(
        r, NULL);
    expect_stored("g", "__name__=g,job=svc %" PRId64 "=7\n", t);
    vg_buf_reset(&out);
    rc = mod_otlp_metrics.grpc_methods[0].fn(&fx.v, (const unsigned char *)"\x0a\xff", 2, &out,
                                             &err);
    cr_assert_eq(rc, VG_EINVAL);
    vg_buf_free(&out);
    cr_assert_eq(series_count(), 1);
}

/* ---- refused requests store nothing ---- */

#define GOOD SVC(GAUGE("g", "1"))

Test(otlp_metrics, other_content_type_is_415)
{
    int64_t t = now;
    post("text/plain", fixture_json(arena, GOOD, t));
    cr_assert_eq(resp.status, 415);
    cr_assert(strstr(resp.body.p, "application/x-protobuf or application/json"));
    post(NULL, fixture_json(arena, GOOD, t));
    cr_assert_eq(resp.status, 415);
    cr_assert_eq(series_count(), 0);
}

Test(otlp_metrics, leftover_content_encoding_is_415)
{
    int64_t t = now;
    fixture_post(&fx, &mod_otlp_metrics, "/v1/metrics", "application/json", "br",
                 fixture_json(arena, GOOD, t), arena, &resp);
    cr_assert_eq(resp.status, 415);
    cr_assert(strstr(resp.body.p, "Content-Encoding \"br\""));
    cr_assert_eq(series_count(), 0);
}

Test(otlp_metrics, undecodable_protobuf_is_400_status)
{
    post("application/x-protobuf", (struct vg_str){ "\x0a\xff\xff", 3 });
    cr_assert_eq(resp.status, 400);
    cr_assert_str_eq(resp.content_type, "application/x-protobuf");
    /* google.rpc.Status: code 3 (INVALID_ARGUMENT), then the message */
    cr_assert_eq((unsigned char)resp.body.p[0], 0x08);
    cr_assert_eq(resp.body.p[1], 3);
    cr_assert_eq((unsigned char)resp.body.p[2], 0x12);
    cr_assert_eq((size_t)(unsigned char)resp.body.p[3], resp.body.len - 4);
    cr_assert(memmem(resp.body.p, resp.body.len, "malformed protobuf", 18));
    cr_assert_eq(series_count(), 0);
}

/* Wraps b as field 1..15 (length-delimited) of a new message. */
static void wrap(struct vg_buf *b, unsigned field)
{
    struct vg_buf w;
    vg_buf_init(&w);
    vg_buf_putc(&w, (char)(field << 3 | 2));
    vg_buf_put_uvarint(&w, b->len);
    vg_buf_append(&w, b->p, b->len);
    vg_buf_free(b);
    *b = w;
}

Test(otlp_metrics, deeply_nested_attribute_is_400_not_a_crash)
{
    struct vg_buf b;
    vg_buf_init(&b);
    for (int i = 0; i < 150; i++) {
        wrap(&b, 1); /* ArrayValue.values */
        wrap(&b, 5); /* AnyValue.array_value */
    }
    wrap(&b, 2);     /* KeyValue.value */
    wrap(&b, 1);     /* Resource.attributes */
    wrap(&b, 1);     /* ResourceMetrics.resource */
    wrap(&b, 1);     /* ExportMetricsServiceRequest.resource_metrics */
    post("application/x-protobuf", (struct vg_str){ b.p, b.len });
    vg_buf_free(&b);
    cr_assert_eq(resp.status, 400);
    cr_assert(memmem(resp.body.p, resp.body.len, "deeper", 6) ||
                  memmem(resp.body.p, resp.body.len, "depth", 5),
              "%.*s", (int)resp.body.len, resp.body.p);
}

Test(otlp_metrics, undecodable_json_is_400_status_json)
{
    post("application/json", vg_str_c("{\"resourceMetrics\":[{"));
    cr_assert_eq(resp.status, 400);
    cr_assert_str_eq(resp.content_type, "application/json");
    cr_assert(strncmp(resp.body.p, "{\"code\":3,\"message\":", 20) == 0, "%s", resp.body.p);
}

Test(otlp_metrics, over_memory_cap_is_413)
{
    int64_t t = now;
    fx.cfg->limits.max_decoded_bytes = 16; /* arena cap 64 bytes */
    struct vg_str body = fixture_otlp_pb(REQ_DESC, fixture_json(arena, GOOD, t), arena);
    struct vg_arena *keep = arena;
    arena = vg_arena_new(64); /* small blocks, so the cap bites */
    post("application/x-protobuf", body);
    vg_arena_free(arena);
    arena = keep;
    cr_assert_eq(resp.status, 413, "%d", resp.status);
    cr_assert(memmem(resp.body.p, resp.body.len, "max_decoded_bytes", 17));
    cr_assert_eq(series_count(), 0);
}

Test(otlp_metrics, allocation_failure_is_503_and_stores_nothing)
{
    /* Failing the n-th allocation for every n walks decode, translation and the store:
     * each answer is a refusal (413 when the arena gives out, 503 with Retry-After
     * otherwise) that stores nothing, until n is large enough for the write to become
     * durable. What the store then could not put into its in-memory head it replays from
     * its log at the next start (tsdb.h), so the check after 200 reads after a restart. */
    int64_t t = now;
    struct vg_str body =
        fixture_otlp_pb(REQ_DESC, fixture_json(arena, SDK_REQUEST, t, t, t), arena);
    fixture_post_failing_allocs(&fx, &mod_otlp_metrics, "/v1/metrics", "application/x-protobuf",
                                body, &resp, series_count);
    fixture_reopen(&fx);
    cr_assert_eq(series_count(), 8);
    expect_stored("system_cpu_utilization_ratio",
                  "__name__=system_cpu_utilization_ratio," SCOPED " %" PRId64 "=0.25\n", t);
}

/* ---- delta accumulation and its config keys ---- */

#define DELTA(name, v) \
    "{'name':'" name "','sum':{'aggregationTemporality':1,'isMonotonic':true," \
    "'dataPoints':[{'timeUnixNano':'%" PRId64 "000000','asInt':'" v "'}]}}"

static void init_accumulate(int64_t max_series, int64_t idle_ms)
{
    fx.cfg->otlp_delta = OTLP_DELTA_ACCUMULATE;
    fx.cfg->otlp_delta_max_series = max_series;
    fx.cfg->otlp_delta_idle_timeout_ms = idle_ms;
    cr_assert_eq(mod_otlp_metrics.init(&fx.v, &err), 0, "%s", err.msg);
    cr_assert_not_null(fx.v.otlp_state);
}

Test(otlp_metrics, init_makes_delta_state_only_for_accumulate)
{
    cr_assert_eq(mod_otlp_metrics.init(&fx.v, &err), 0);
    cr_assert_null(fx.v.otlp_state);
    init_accumulate(100000, 3600000);
    mod_otlp_metrics.free(&fx.v);
    cr_assert_null(fx.v.otlp_state);
}

Test(otlp_metrics, delta_sums_are_stored_cumulative)
{
    init_accumulate(100000, 3600000);
    int64_t t = now - 2000;
    export(false, fixture_json(arena, SVC(DELTA("jobs.done", "2")), t));
    export(false, fixture_json(arena, SVC(DELTA("jobs.done", "3")), t + 1000));
    cr_assert_eq(resp.body.len, 0);
    expect_stored("jobs_done_total",
                  "__name__=jobs_done_total,job=svc %" PRId64 "=2 %" PRId64 "=5\n", t,
                  t + 1000);
    expect_meta("jobs_done_total", TSDB_TYPE_COUNTER, "", "");
}

Test(otlp_metrics, delta_max_series_refuses_new_series)
{
    init_accumulate(1, 3600000);
    int64_t t = now - 5000;
    export(false, fixture_json(arena, SVC(DELTA("a", "1")), t));
    export(false, fixture_json(arena, SVC(DELTA("b", "1")), t + 4000));
    Resp *r = answer(false);
    cr_assert_not_null(r->partial_success);
    cr_assert_eq(r->partial_success->rejected_data_points, 1);
    cr_assert(strstr(r->partial_success->error_message, "otlp.delta_max_series"), "%s",
              r->partial_success->error_message);
    cr_assert_str_eq(stored("b_total"), "");
    expect_stored("a_total", "__name__=a_total,job=svc %" PRId64 "=1\n", t);
}

Test(otlp_metrics, delta_idle_timeout_frees_room)
{
    /* With a 1s timeout, a is forgotten once the data's clock is 4s past it. */
    init_accumulate(1, 1000);
    int64_t t = now - 10000;
    export(false, fixture_json(arena, SVC(DELTA("a", "1")), t));
    export(false, fixture_json(arena, SVC(DELTA("b", "1")), t + 4000));
    cr_assert_eq(resp.body.len, 0, "b accepted");
    expect_stored("b_total", "__name__=b_total,job=svc %" PRId64 "=1\n", t + 4000);
    /* a starts again from zero once b is idle too: stored as a counter reset */
    export(false, fixture_json(arena, SVC(DELTA("a", "1")), t + 6000));
    cr_assert_eq(resp.body.len, 0);
    expect_stored("a_total", "__name__=a_total,job=svc %" PRId64 "=1 %" PRId64 "=1\n", t,
                  t + 6000);
}
