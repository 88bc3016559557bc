/* Tests server/ingest/otlp_json.c: the OTLP/JSON examples published with
 * opentelemetry-proto (read from ../shared/conformance/otlp, never copied here), the OTLP
 * deviations from proto3 JSON (hex ids, 64-bit integers as strings, NaN strings,
 * snake_case aliases), every error path with the JSON path it names, and the encoder used
 * for partial-success responses. */
#include <criterion/criterion.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../../../server/ingest/otlp_json.h"
#include "../../../../storage/base/vg_alloc.h"
#include "otlp_logs_service.pb-c.h"
#include "otlp_metrics_service.pb-c.h"
#include "otlp_trace_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest MetricsReq;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse MetricsResp;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsPartialSuccess MetricsPartial;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest LogsReq;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest TraceReq;
typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint NumberDP;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;

#define METRICS_DESC (&opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor)
#define LOGS_DESC (&opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor)
#define TRACE_DESC (&opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor)

static struct vg_arena *arena;
static struct vg_err err;

static void setup(void)
{
    arena = vg_arena_new(0);
    vg_err_clear(&err);
}

static void teardown(void)
{
    vg_alloc_fail_after(0);
    vg_arena_free(arena);
}

TestSuite(otlp_json, .init = setup, .fini = teardown);

static int decode(const ProtobufCMessageDescriptor *d, const char *json, void *out)
{
    return otlp_json_decode(d, json, strlen(json), arena, (ProtobufCMessage **)out, &err);
}

static MetricsReq *decode_metrics_ok(const char *json)
{
    MetricsReq *r = NULL;
    int rc = decode(METRICS_DESC, json, &r);
    cr_assert_eq(rc, 0, "decode failed: %s", err.msg);
    cr_assert_not_null(r);
    return r;
}

/* Decodes json, expecting failure with code and a message that starts with want. */
static void expect_error(const ProtobufCMessageDescriptor *d, const char *json, int code,
                         const char *want)
{
    ProtobufCMessage *m = (ProtobufCMessage *)1;
    int rc = otlp_json_decode(d, json, strlen(json), arena, &m, &err);
    cr_assert_eq(rc, code, "rc %d (want %d) for %s: %s", rc, code, json, err.msg);
    cr_assert_eq(err.code, code);
    cr_assert_null(m);
    cr_assert(strncmp(err.msg, want, strlen(want)) == 0, "message \"%s\" does not start with \"%s\"",
              err.msg, want);
}

/* The one data point of a gauge request built around dp (the JSON of a data point). */
static NumberDP *gauge_point(const char *dp_json)
{
    char json[2048];
    snprintf(json, sizeof json,
             "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"g\","
             "\"gauge\":{\"dataPoints\":[%s]}}]}]}]}",
             dp_json);
    MetricsReq *r = decode_metrics_ok(json);
    Metric *m = r->resource_metrics[0]->scope_metrics[0]->metrics[0];
    cr_assert_eq(m->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE);
    cr_assert_eq(m->gauge->n_data_points, 1);
    return m->gauge->data_points[0];
}

/* ---- conformance examples ---- */

/* Finds ../shared/conformance/otlp/<name> beside the checkout: $VIGIL_SHARED_DIR first,
 * then from this file's path (absolute, or relative to the build folder the compiler ran
 * in, which is an ancestor of this executable holding build.ninja). */
static char *read_conformance(const char *name, size_t *len)
{
    char cand[5][2 * PATH_MAX + 128];
    int n = 0;
    const char *env = getenv("VIGIL_SHARED_DIR");
    if (env) {
        snprintf(cand[n++], sizeof cand[0], "%s/conformance/otlp/%s", env, name);
        snprintf(cand[n++], sizeof cand[0], "%s/otlp/%s", env, name);
    }
    char root[PATH_MAX];
    snprintf(root, sizeof root, "%s", __FILE__);
    char *cut = strstr(root, "tests/unit/server/ingest/");
    if (cut) {
        *cut = '\0';
        if (root[0] == '/') {
            snprintf(cand[n++], sizeof cand[0], "%s../shared/conformance/otlp/%s", root, name);
        } else {
            char exe[PATH_MAX];
            ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
            exe[k > 0 ? k : 0] = '\0';
            char *slash;
            while ((slash = strrchr(exe, '/')) != NULL) {
                *slash = '\0';
                char probe[PATH_MAX + 16];
                snprintf(probe, sizeof probe, "%s/build.ninja", exe);
                if (access(probe, R_OK) == 0)
                    break;
            }
            snprintf(cand[n++], sizeof cand[0], "%s/%s../shared/conformance/otlp/%s", exe, root,
                     name);
            snprintf(cand[n++], sizeof cand[0], "%s../shared/conformance/otlp/%s", root, name);
        }
    }
    for (int i = 0; i < n; i++) {
        FILE *f = fopen(cand[i], "rb");
        if (!f)
            continue;
        static char data[1 << 16];
        *len = fread(data, 1, sizeof data - 1, f);
        fclose(f);
        data[*len] = '\0';
        return data;
    }
    cr_skip_test("OTLP conformance example %s not found (set VIGIL_SHARED_DIR to the shared "
                 "folder holding conformance/otlp/, or check out ../shared beside the project)",
                 name);
    return NULL;
}

static void assert_str_attr(KeyValue *kv, const char *key, const char *value)
{
    cr_assert_str_eq(kv->key, key);
    cr_assert_eq(kv->value->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
    cr_assert_str_eq(kv->value->string_value, value);
}

static const uint8_t trace_id[16] = {0x5B, 0x8E, 0xFF, 0xF7, 0x98, 0x03, 0x81, 0x03,
                                     0xD2, 0x69, 0xB6, 0x33, 0x81, 0x3F, 0xC6, 0x0C};
static const uint8_t span_id[8] = {0xEE, 0xE1, 0x9B, 0x7E, 0xC3, 0xC1, 0xB1, 0x74};

Test(otlp_json, conformance_metrics_example)
{
    size_t len;
    const char *json = read_conformance("metrics.json", &len);
    MetricsReq *r = NULL;
    cr_assert_eq(otlp_json_decode(METRICS_DESC, json, len, arena, (ProtobufCMessage **)&r, &err),
                 0, "%s", err.msg);
    cr_assert_eq(r->n_resource_metrics, 1);
    Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = r->resource_metrics[0];
    cr_assert_eq(rm->resource->n_attributes, 1);
    assert_str_attr(rm->resource->attributes[0], "service.name", "my.service");
    cr_assert_str_eq(rm->schema_url, "");
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = rm->scope_metrics[0];
    cr_assert_str_eq(sm->scope->name, "my.library");
    cr_assert_str_eq(sm->scope->version, "1.0.0");
    assert_str_attr(sm->scope->attributes[0], "my.scope.attribute", "some scope attribute");
    cr_assert_eq(sm->n_metrics, 4);

    Metric *sum = sm->metrics[0];
    cr_assert_str_eq(sum->name, "my.counter");
    cr_assert_str_eq(sum->unit, "1");
    cr_assert_str_eq(sum->description, "I am a Counter");
    cr_assert_eq(sum->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM);
    cr_assert_eq(sum->sum->aggregation_temporality,
                 OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA);
    cr_assert(sum->sum->is_monotonic);
    NumberDP *dp = sum->sum->data_points[0];
    cr_assert_eq(dp->value_case, OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE);
    cr_assert_eq(dp->as_double, 5.0);
    cr_assert_eq(dp->start_time_unix_nano, UINT64_C(1544712660300000000));
    cr_assert_eq(dp->time_unix_nano, UINT64_C(1544712660300000000));
    assert_str_attr(dp->attributes[0], "my.counter.attr", "some value");

    Metric *gauge = sm->metrics[1];
    cr_assert_eq(gauge->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE);
    cr_assert_eq(gauge->gauge->data_points[0]->as_double, 10.0);
    cr_assert_eq(gauge->gauge->data_points[0]->start_time_unix_nano, 0);

    Metric *h = sm->metrics[2];
    cr_assert_eq(h->data_case, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM);
    Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *hp = h->histogram->data_points[0];
    cr_assert_eq(hp->count, 2);
    cr_assert_eq(hp->sum_present_case,
                 OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM);
    cr_assert_eq(hp->sum, 2.0);
    cr_assert_eq(hp->n_bucket_counts, 2);
    cr_assert_eq(hp->bucket_counts[0], 1);
    cr_assert_eq(hp->bucket_counts[1], 1);
    cr_assert_eq(hp->n_explicit_bounds, 1);
    cr_assert_eq(hp->explicit_bounds[0], 1.0);
    cr_assert_eq(hp->min_present_case,
                 OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__MIN_PRESENT_MIN);
    cr_assert_eq(hp->min, 0.0);
    cr_assert_eq(hp->max, 2.0);

    Metric *eh = sm->metrics[3];
    cr_assert_eq(eh->data_case,
                 OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM);
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *ep =
        eh->exponential_histogram->data_points[0];
    cr_assert_eq(ep->count, 3);
    cr_assert_eq(ep->sum, 10.0);
    cr_assert_eq(ep->scale, 0);
    cr_assert_eq(ep->zero_count, 1);
    cr_assert_eq(ep->positive->offset, 1);
    cr_assert_eq(ep->positive->n_bucket_counts, 2);
    cr_assert_eq(ep->positive->bucket_counts[1], 2);
    cr_assert_null(ep->negative);
    cr_assert_eq(ep->max_present_case,
                 OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__MAX_PRESENT_MAX);
    cr_assert_eq(ep->max, 5.0);
}

Test(otlp_json, conformance_logs_example)
{
    size_t len;
    const char *json = read_conformance("logs.json", &len);
    LogsReq *r = NULL;
    cr_assert_eq(otlp_json_decode(LOGS_DESC, json, len, arena, (ProtobufCMessage **)&r, &err), 0,
                 "%s", err.msg);
    Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = r->resource_logs[0]->scope_logs[0];
    cr_assert_eq(sl->n_log_records, 1);
    Opentelemetry__Proto__Logs__V1__LogRecord *lr = sl->log_records[0];
    cr_assert_eq(lr->time_unix_nano, UINT64_C(1544712660300000000));
    cr_assert_eq(lr->observed_time_unix_nano, UINT64_C(1544712660300000000));
    cr_assert_eq(lr->severity_number, OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO2);
    cr_assert_str_eq(lr->severity_text, "Information");
    cr_assert_eq(lr->trace_id.len, 16);
    cr_assert_arr_eq(lr->trace_id.data, trace_id, 16);
    cr_assert_eq(lr->span_id.len, 8);
    cr_assert_arr_eq(lr->span_id.data, span_id, 8);
    cr_assert_str_eq(lr->body->string_value, "Example log record");
    cr_assert_eq(lr->n_attributes, 6);
    cr_assert_eq(lr->attributes[1]->value->value_case,
                 OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
    cr_assert(lr->attributes[1]->value->bool_value);
    cr_assert_eq(lr->attributes[2]->value->int_value, 10);
    cr_assert_eq(lr->attributes[3]->value->double_value, 637.704);
    AnyValue *arr = lr->attributes[4]->value;
    cr_assert_eq(arr->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE);
    cr_assert_eq(arr->array_value->n_values, 2);
    cr_assert_str_eq(arr->array_value->values[1]->string_value, "values");
    AnyValue *map = lr->attributes[5]->value;
    cr_assert_eq(map->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE);
    assert_str_attr(map->kvlist_value->values[0], "some.map.key", "some value");
}

Test(otlp_json, conformance_trace_example)
{
    size_t len;
    const char *json = read_conformance("trace.json", &len);
    TraceReq *r = NULL;
    cr_assert_eq(otlp_json_decode(TRACE_DESC, json, len, arena, (ProtobufCMessage **)&r, &err), 0,
                 "%s", err.msg);
    Opentelemetry__Proto__Trace__V1__Span *s = r->resource_spans[0]->scope_spans[0]->spans[0];
    cr_assert_arr_eq(s->trace_id.data, trace_id, 16);
    cr_assert_arr_eq(s->span_id.data, span_id, 8);
    const uint8_t parent[8] = {0xEE, 0xE1, 0x9B, 0x7E, 0xC3, 0xC1, 0xB1, 0x73};
    cr_assert_eq(s->parent_span_id.len, 8);
    cr_assert_arr_eq(s->parent_span_id.data, parent, 8);
    cr_assert_str_eq(s->name, "I'm a server span");
    cr_assert_eq(s->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
    cr_assert_eq(s->start_time_unix_nano, UINT64_C(1544712660000000000));
    cr_assert_eq(s->end_time_unix_nano, UINT64_C(1544712661000000000));
    assert_str_attr(s->attributes[0], "my.span.attr", "some value");
}

/* ---- value forms ---- */

Test(otlp_json, int64_as_string_or_number)
{
    NumberDP *dp = gauge_point("{\"asInt\":\"-9223372036854775808\",\"timeUnixNano\":"
                               "\"18446744073709551615\",\"startTimeUnixNano\":1000,"
                               "\"flags\":\"1\"}");
    cr_assert_eq(dp->value_case, OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT);
    cr_assert_eq(dp->as_int, INT64_MIN);
    cr_assert_eq(dp->time_unix_nano, UINT64_MAX);
    cr_assert_eq(dp->start_time_unix_nano, 1000);
    cr_assert_eq(dp->flags, 1);
    dp = gauge_point("{\"asInt\":9007199254740993,\"timeUnixNano\":1.5e9}");
    cr_assert_eq(dp->as_int, INT64_C(9007199254740993));
    cr_assert_eq(dp->time_unix_nano, 1500000000);
}

Test(otlp_json, nan_and_infinity_strings)
{
    cr_assert(isnan(gauge_point("{\"asDouble\":\"NaN\"}")->as_double));
    cr_assert_eq(gauge_point("{\"asDouble\":\"Infinity\"}")->as_double, INFINITY);
    cr_assert_eq(gauge_point("{\"asDouble\":\"-Infinity\"}")->as_double, -INFINITY);
    cr_assert_eq(gauge_point("{\"asDouble\":\"2.5e3\"}")->as_double, 2500.0);
    cr_assert_eq(gauge_point("{\"asDouble\":7}")->as_double, 7.0);
}

Test(otlp_json, snake_case_names_enum_names_nulls_and_unknown_fields)
{
    MetricsReq *r = decode_metrics_ok(
        "{\"resource_metrics\":[{\"resource\":null,\"scope_metrics\":[{\"metrics\":[{"
        "\"name\":\"c\",\"futureField\":{\"x\":[1,2]},\"sum\":{\"aggregation_temporality\":"
        "\"AGGREGATION_TEMPORALITY_CUMULATIVE\",\"is_monotonic\":true,\"data_points\":[{"
        "\"time_unix_nano\":\"5\",\"as_double\":1.25,\"asInt\":null}]}}]}]}]}");
    Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = r->resource_metrics[0];
    cr_assert_null(rm->resource);
    Metric *m = rm->scope_metrics[0]->metrics[0];
    cr_assert_eq(m->sum->aggregation_temporality,
                 OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE);
    cr_assert(m->sum->is_monotonic);
    NumberDP *dp = m->sum->data_points[0];
    cr_assert_eq(dp->time_unix_nano, 5);
    cr_assert_eq(dp->value_case, OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE);
    cr_assert_eq(dp->as_double, 1.25);
}

Test(otlp_json, hex_ids_any_case_and_empty)
{
    NumberDP *dp = gauge_point("{\"asInt\":1,\"exemplars\":[{\"traceId\":"
                               "\"5b8efff798038103d269b633813fc60c\",\"span_id\":"
                               "\"eEe19B7ec3c1b174\",\"asDouble\":3}]}");
    Opentelemetry__Proto__Metrics__V1__Exemplar *ex = dp->exemplars[0];
    cr_assert_eq(ex->trace_id.len, 16);
    cr_assert_arr_eq(ex->trace_id.data, trace_id, 16);
    cr_assert_arr_eq(ex->span_id.data, span_id, 8);
    cr_assert_eq(ex->as_double, 3.0);
    dp = gauge_point("{\"exemplars\":[{\"traceId\":\"\",\"spanId\":\"\"}]}");
    cr_assert_eq(dp->exemplars[0]->trace_id.len, 0);
    cr_assert_eq(dp->exemplars[0]->span_id.len, 0);
}

Test(otlp_json, base64_bytes_values)
{
    LogsReq *r = NULL;
    const char *json =
        "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"bytesValue\":"
        "\"aGVsbG8=\"}},{\"body\":{\"bytesValue\":\"_-8\"}},{\"body\":{\"bytesValue\":\"\"}}]}]}]}";
    cr_assert_eq(decode(LOGS_DESC, json, &r), 0, "%s", err.msg);
    Opentelemetry__Proto__Logs__V1__LogRecord **lr = r->resource_logs[0]->scope_logs[0]->log_records;
    cr_assert_eq(lr[0]->body->bytes_value.len, 5);
    cr_assert_arr_eq(lr[0]->body->bytes_value.data, "hello", 5);
    const uint8_t url[2] = {0xff, 0xef};
    cr_assert_eq(lr[1]->body->bytes_value.len, 2);
    cr_assert_arr_eq(lr[1]->body->bytes_value.data, url, 2);
    cr_assert_eq(lr[2]->body->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE);
    cr_assert_eq(lr[2]->body->bytes_value.len, 0);
}

Test(otlp_json, decoded_message_packs_like_the_binary_encoding)
{
    MetricsReq *r = decode_metrics_ok(
        "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"h\",\"histogram\":"
        "{\"dataPoints\":[{\"count\":\"3\",\"sum\":0,\"bucketCounts\":[\"1\",2],"
        "\"explicitBounds\":[0.5]}]}}]}]}]}");
    size_t n = protobuf_c_message_get_packed_size(&r->base);
    uint8_t *buf = vg_arena_alloc(arena, n);
    cr_assert_eq(protobuf_c_message_pack(&r->base, buf), n);
    MetricsReq *back = opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(
        NULL, n, buf);
    cr_assert_not_null(back);
    Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *hp =
        back->resource_metrics[0]->scope_metrics[0]->metrics[0]->histogram->data_points[0];
    /* sum 0 was explicitly present and survives the wire; min was absent and stays so. */
    cr_assert_eq(hp->sum_present_case,
                 OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM);
    cr_assert_eq(hp->min_present_case,
                 OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__MIN_PRESENT__NOT_SET);
    cr_assert_eq(hp->count, 3);
    cr_assert_eq(hp->bucket_counts[1], 2);
    cr_assert_eq(hp->explicit_bounds[0], 0.5);
    protobuf_c_message_free_unpacked(&back->base, NULL);
}

/* ---- errors ---- */

Test(otlp_json, syntax_errors_give_line_and_column)
{
    expect_error(METRICS_DESC, "{\n  \"resourceMetrics\": [,]\n}", VG_EINVAL,
                 "invalid JSON at line 2, column");
    expect_error(METRICS_DESC, "", VG_EINVAL, "invalid JSON at line");
    expect_error(METRICS_DESC, "{\"a\":\"\\u0000\"}", VG_EINVAL, "invalid JSON");
    expect_error(METRICS_DESC, "[]", VG_EINVAL, "(top level): expected an object, got an array");
}

Test(otlp_json, wrong_types_name_the_json_path)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"resourceMetrics\":[{\"scopeMetrics\":[{},{\"metrics\":[{\"gauge\":{\"dataPoints\":"
             "[{},{},{},{\"timeUnixNano\":{}}]}}]}]}]}");
    expect_error(METRICS_DESC, json, VG_EINVAL,
                 "resourceMetrics[0].scopeMetrics[1].metrics[0].gauge.dataPoints[3]."
                 "timeUnixNano: expected an integer, got an object");
    expect_error(METRICS_DESC, "{\"resourceMetrics\":{}}", VG_EINVAL,
                 "resourceMetrics: expected an array, got an object");
    expect_error(METRICS_DESC, "{\"resourceMetrics\":[null]}", VG_EINVAL,
                 "resourceMetrics[0]: expected a value, got null");
    expect_error(METRICS_DESC, "{\"resource_metrics\":[{\"resource\":[]}]}", VG_EINVAL,
                 "resource_metrics[0].resource: expected an object, got an array");
}

static void expect_point_error(const char *dp_json, const char *want_tail)
{
    char json[1024], want[512];
    snprintf(json, sizeof json,
             "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"sum\":{%s}}]}]}]}", dp_json);
    snprintf(want, sizeof want, "resourceMetrics[0].scopeMetrics[0].metrics[0].sum.%s", want_tail);
    expect_error(METRICS_DESC, json, VG_EINVAL, want);
}

Test(otlp_json, scalar_errors)
{
    expect_point_error("\"isMonotonic\":1", "isMonotonic: expected true or false, got a number");
    expect_point_error("\"aggregationTemporality\":\"WEEKLY\"",
                       "aggregationTemporality: unknown AggregationTemporality value \"WEEKLY\"");
    expect_point_error("\"aggregationTemporality\":true",
                       "aggregationTemporality: expected an enum name or integer, got a boolean");
    expect_point_error("\"dataPoints\":[{\"flags\":4294967296}]",
                       "dataPoints[0].flags: integer 4294967296 out of range for uint32");
    expect_point_error("\"dataPoints\":[{\"flags\":-1}]",
                       "dataPoints[0].flags: integer -1 out of range for uint32");
    expect_point_error("\"dataPoints\":[{\"timeUnixNano\":\"-5\"}]",
                       "dataPoints[0].timeUnixNano: integer \"-5\" out of range for uint64");
    expect_point_error("\"dataPoints\":[{\"timeUnixNano\":\"18446744073709551616\"}]",
                       "dataPoints[0].timeUnixNano: integer \"18446744073709551616\" out of range");
    expect_point_error("\"dataPoints\":[{\"asInt\":\"9223372036854775808\"}]",
                       "dataPoints[0].asInt: integer \"9223372036854775808\" out of range for int64");
    expect_point_error("\"dataPoints\":[{\"asInt\":\"12abc\"}]",
                       "dataPoints[0].asInt: expected an integer, got the string \"12abc\"");
    expect_point_error("\"dataPoints\":[{\"asInt\":1.5}]",
                       "dataPoints[0].asInt: expected an integer, got 1.5");
    expect_point_error("\"dataPoints\":[{\"asInt\":1e19}]",
                       "dataPoints[0].asInt: integer 1e+19 out of range for int64");
    expect_point_error("\"dataPoints\":[{\"asDouble\":\"inf\"}]",
                       "dataPoints[0].asDouble: expected a number, got the string \"inf\"");
    expect_point_error("\"dataPoints\":[{\"asDouble\":\"1.2.3\"}]",
                       "dataPoints[0].asDouble: expected a number, got the string \"1.2.3\"");
    expect_point_error("\"dataPoints\":[{\"asDouble\":false}]",
                       "dataPoints[0].asDouble: expected a number, got a boolean");
    expect_point_error("\"dataPoints\":[{\"asDouble\":1,\"asInt\":2}]",
                       "dataPoints[0].asInt: only one of a oneof may be set, and as_double is too");
    expect_point_error("\"dataPoints\":[{\"attributes\":[{\"key\":7}]}]",
                       "dataPoints[0].attributes[0].key: expected a string, got a number");
}

Test(otlp_json, bad_hex_and_base64)
{
    expect_point_error("\"dataPoints\":[{\"exemplars\":[{\"traceId\":\"5b8efff798038103\"}]}]",
                       "dataPoints[0].exemplars[0].traceId: expected 32 hex digits, got 16 characters");
    expect_point_error("\"dataPoints\":[{\"exemplars\":[{\"spanId\":\"eee19b7ec3c1b17g\"}]}]",
                       "dataPoints[0].exemplars[0].spanId: invalid hex digit at character 15");
    expect_point_error("\"dataPoints\":[{\"exemplars\":[{\"spanId\":12}]}]",
                       "dataPoints[0].exemplars[0].spanId: expected a hex string, got a number");
    expect_error(LOGS_DESC,
                 "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"bytesValue\":"
                 "\"aGVs*G8=\"}}]}]}]}",
                 VG_EINVAL,
                 "resourceLogs[0].scopeLogs[0].logRecords[0].body.bytesValue: invalid base64 "
                 "character at 4");
    expect_error(LOGS_DESC,
                 "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"bytesValue\":"
                 "\"aGVsb\"}}]}]}]}",
                 VG_EINVAL, "resourceLogs[0].scopeLogs[0].logRecords[0].body.bytesValue: invalid "
                            "base64 length 5");
    expect_error(TRACE_DESC,
                 "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"parentSpanId\":\"abc\"}]}]}]}",
                 VG_EINVAL,
                 "resourceSpans[0].scopeSpans[0].spans[0].parentSpanId: expected 16 hex digits, "
                 "got 3 characters");
}

static void append(char *buf, size_t *len, const char *s)
{
    size_t n = strlen(s);
    memcpy(buf + *len, s, n + 1);
    *len += n;
}

/* {"body":{"arrayValue":{"values":[{"arrayValue":{"values":[ ... ]}}]}}} nested n deep. */
static char *nested_any_values(int n)
{
    static char buf[1 << 16];
    size_t len = 0;
    append(buf, &len, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":");
    for (int i = 0; i < n; i++)
        append(buf, &len, "{\"arrayValue\":{\"values\":[");
    append(buf, &len, "{\"intValue\":\"1\"}");
    for (int i = 0; i < n; i++)
        append(buf, &len, "]}}");
    append(buf, &len, "}]}]}]}");
    return buf;
}

Test(otlp_json, deep_nesting_is_refused_before_parsing)
{
    LogsReq *r = NULL;
    cr_assert_eq(decode(LOGS_DESC, nested_any_values(15), &r), 0, "%s", err.msg);
    AnyValue *v = r->resource_logs[0]->scope_logs[0]->log_records[0]->body;
    for (int i = 0; i < 15; i++)
        v = v->array_value->values[0];
    cr_assert_eq(v->int_value, 1);
    expect_error(LOGS_DESC, nested_any_values(30), VG_EINVAL,
                 "JSON nested deeper than 64 levels at byte offset");
    /* Brackets inside strings do not count. */
    char json[256];
    snprintf(json, sizeof json, "{\"resourceLogs\":[],\"x\":\"%s\\\"[[[\"}",
             "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[");
    cr_assert_eq(decode(LOGS_DESC, json, &r), 0, "%s", err.msg);
}

Test(otlp_json, size_limit)
{
    ProtobufCMessage *m = NULL;
    /* Refused from the length alone, before a byte is read. */
    int rc = otlp_json_decode(METRICS_DESC, "{}", OTLP_JSON_MAX_BYTES + 1, arena, &m, &err);
    cr_assert_eq(rc, VG_ETOOLARGE);
    cr_assert_null(m);
}

Test(otlp_json, arena_limit_is_a_clean_error)
{
    size_t len;
    const char *json = read_conformance("metrics.json", &len);
    ProtobufCMessage *m = NULL;
    /* Every cut-off point fails cleanly with the path of the value being decoded. */
    for (size_t limit = 1; limit < 16384; limit += 16) {
        struct vg_arena *small = vg_arena_new(256);
        vg_arena_set_limit(small, limit);
        int rc = otlp_json_decode(METRICS_DESC, json, len, small, &m, &err);
        vg_arena_free(small);
        if (rc == 0)
            return;
        cr_assert_eq(rc, VG_ETOOLARGE, "limit %zu: %s", limit, err.msg);
        cr_assert_null(m);
        cr_assert(strstr(err.msg, "request memory limit reached") != NULL, "%s", err.msg);
    }
    cr_assert_fail("metrics.json never fitted in 16 KiB");
}

Test(otlp_json, arena_limit_on_strings_and_ids)
{
    static char json[8192];
    int n = snprintf(json, sizeof json, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[");
    for (int i = 0; i < 40; i++)
        n += snprintf(json + n, sizeof json - (size_t)n,
                      "%s{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"name\":\"span\"}",
                      i ? "," : "");
    snprintf(json + n, sizeof json - (size_t)n, "]}]}]}");
    vg_arena_free(arena);
    arena = vg_arena_new(256); /* small blocks, so the limit bites mid-request */
    vg_arena_set_limit(arena, 4096);
    expect_error(TRACE_DESC, json, VG_ETOOLARGE, "resourceSpans[0].scopeSpans[0].spans[");
}

/* ---- encoding ---- */

static const char *encode(const ProtobufCMessage *m)
{
    static struct vg_buf b;
    vg_buf_free(&b);
    vg_buf_init(&b);
    cr_assert_eq(otlp_json_encode(m, &b, &err), 0, "%s", err.msg);
    return vg_buf_cstr(&b);
}

Test(otlp_json, encodes_partial_success)
{
    MetricsResp resp = OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_RESPONSE__INIT;
    cr_assert_str_eq(encode(&resp.base), "{}");
    MetricsPartial ps = OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_PARTIAL_SUCCESS__INIT;
    ps.rejected_data_points = 3;
    ps.error_message = "3 points had \"bad\" names";
    resp.partial_success = &ps;
    cr_assert_str_eq(encode(&resp.base), "{\"partialSuccess\":{\"rejectedDataPoints\":\"3\","
                                         "\"errorMessage\":\"3 points had \\\"bad\\\" names\"}}");
}

Test(otlp_json, encode_then_decode_round_trips)
{
    MetricsReq *r = decode_metrics_ok(
        "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"g\",\"gauge\":"
        "{\"dataPoints\":[{\"asDouble\":\"NaN\",\"timeUnixNano\":\"18446744073709551615\","
        "\"exemplars\":[{\"traceId\":\"5B8EFFF798038103D269B633813FC60C\",\"asInt\":\"-7\","
        "\"filteredAttributes\":[{\"key\":\"b\",\"value\":{\"bytesValue\":\"aGk=\"}}]}]},"
        "{\"asDouble\":\"-Infinity\"},{\"asDouble\":0.25}]}}]}]}]}");
    const char *json = encode(&r->base);
    cr_assert_str_eq(json,
        "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"g\",\"gauge\":"
        "{\"dataPoints\":[{\"timeUnixNano\":\"18446744073709551615\",\"asDouble\":\"NaN\","
        "\"exemplars\":[{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"asInt\":\"-7\","
        "\"filteredAttributes\":[{\"key\":\"b\",\"value\":{\"bytesValue\":\"aGk=\"}}]}]},"
        "{\"asDouble\":\"-Infinity\"},{\"asDouble\":0.25}]}}]}]}]}");
    MetricsReq *again = decode_metrics_ok(json);
    size_t n1 = protobuf_c_message_get_packed_size(&r->base);
    size_t n2 = protobuf_c_message_get_packed_size(&again->base);
    cr_assert_eq(n1, n2);
    uint8_t *p1 = vg_arena_alloc(arena, n1), *p2 = vg_arena_alloc(arena, n2);
    protobuf_c_message_pack(&r->base, p1);
    protobuf_c_message_pack(&again->base, p2);
    cr_assert_arr_eq(p1, p2, n1);
}

Test(otlp_json, encode_reports_allocation_failure)
{
    MetricsResp resp = OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_RESPONSE__INIT;
    MetricsPartial ps = OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_PARTIAL_SUCCESS__INIT;
    ps.error_message = "x";
    resp.partial_success = &ps;
    struct vg_buf b;
    vg_buf_init(&b);
    vg_alloc_fail_after(1);
    int rc = otlp_json_encode(&resp.base, &b, &err);
    vg_alloc_fail_after(0);
    cr_assert_eq(rc, VG_ENOMEM);
    cr_assert(strstr(err.msg, "ExportMetricsServiceResponse") != NULL, "%s", err.msg);
    vg_buf_free(&b);
}
