/* Tests server/ingest/otlp_names.c: metric names with and without type and unit suffixes
 * (the cases of the OpenTelemetry-to-Prometheus specification), label-name sanitising,
 * unit words and attribute-value text. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../../../server/ingest/otlp_names.h"
#include "../../../../storage/base/vg_alloc.h"

static struct vg_arena *arena;

static void setup(void)
{
    arena = vg_arena_new(0);
}

static void teardown(void)
{
    vg_arena_free(arena);
}

TestSuite(otlp_names, .init = setup, .fini = teardown);

struct name_case {
    const char *name, *unit;
    enum tsdb_metric_type kind;
    bool from_sum, suffixes;
    const char *want; /* NULL: refused */
};

Test(otlp_names, metric_names)
{
    static const struct name_case cases[] = {
        { "http.server.duration", "ms", TSDB_TYPE_HISTOGRAM, false, true,
          "http_server_duration_milliseconds" },
        { "http.server.request.duration", "s", TSDB_TYPE_HISTOGRAM, false, true,
          "http_server_request_duration_seconds" },
        { "requests.count", "1", TSDB_TYPE_COUNTER, true, true, "requests_count_total" },
        { "requests_total", "", TSDB_TYPE_COUNTER, true, true, "requests_total" },
        { "total.requests", "", TSDB_TYPE_COUNTER, true, true, "requests_total" },
        { "memory.usage", "By", TSDB_TYPE_GAUGE, false, true, "memory_usage_bytes" },
        { "memory.bytes", "By", TSDB_TYPE_GAUGE, false, true, "memory_bytes" },
        { "throughput", "By/s", TSDB_TYPE_GAUGE, false, true, "throughput_bytes_per_second" },
        { "bytes_per_second", "By/s", TSDB_TYPE_GAUGE, false, true, "bytes_per_second" },
        { "rate", "{packets}/s", TSDB_TYPE_GAUGE, false, true, "rate_per_second" },
        { "cpu.utilization", "1", TSDB_TYPE_GAUGE, false, true, "cpu_utilization_ratio" },
        { "cpu.ratio.value", "1", TSDB_TYPE_GAUGE, false, true, "cpu_value_ratio" },
        { "queue.size", "1", TSDB_TYPE_GAUGE, true, true, "queue_size" },
        { "temp", "Cel", TSDB_TYPE_GAUGE, false, true, "temp_celsius" },
        { "disk", "%", TSDB_TYPE_GAUGE, false, true, "disk_percent" },
        { "odd", "m/mo", TSDB_TYPE_GAUGE, false, true, "odd_meters_per_month" },
        { "custom", "widgets", TSDB_TYPE_GAUGE, false, true, "custom_widgets" },
        { "2xx.count", "", TSDB_TYPE_COUNTER, true, true, "_2xx_count_total" },
        { "a__b..c", "", TSDB_TYPE_GAUGE, false, true, "a_b_c" },
        { "ns:sub.x", "", TSDB_TYPE_GAUGE, false, true, "ns:sub_x" },
        { "...", "", TSDB_TYPE_GAUGE, false, true, NULL },
        { "", "", TSDB_TYPE_GAUGE, false, true, NULL },
        /* suffixes off: only invalid runs become "_" */
        { "http.server.duration", "ms", TSDB_TYPE_HISTOGRAM, false, false,
          "http_server_duration" },
        { "requests", "1", TSDB_TYPE_COUNTER, true, false, "requests" },
        { "a__b..c", "", TSDB_TYPE_GAUGE, false, false, "a__b_c" },
        { "9lives", "", TSDB_TYPE_GAUGE, false, false, "_9lives" },
        { "__", "", TSDB_TYPE_GAUGE, false, false, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct name_case *c = &cases[i];
        const char *got = otlp_names_metric(arena, c->name, c->unit, c->kind, c->from_sum,
                                            c->suffixes);
        if (!c->want)
            cr_expect_null(got, "%s [%s] -> %s, want refusal", c->name, c->unit, got);
        else
            cr_expect(got && strcmp(got, c->want) == 0, "%s [%s] -> %s, want %s", c->name,
                      c->unit, got ? got : "(null)", c->want);
    }
}

Test(otlp_names, label_names)
{
    static const char *const cases[][2] = {
        { "http.method", "http_method" },
        { "123abc", "key_123abc" },
        { "__name__", "key__name__" },
        { "__x.y__", "key__x_y__" },
        { "__foo", "_foo" },
        { "_foo", "_foo" },
        { "a..b__c", "a_b_c" },
        { "\xc3\xbc" "n\xc3\xaf" "code", "_n_code" },
        { "ok_name", "ok_name" },
        { "___", NULL },
        { "...", NULL },
        { "", NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = otlp_names_label(arena, cases[i][0], strlen(cases[i][0]));
        if (!cases[i][1])
            cr_expect_null(got, "%s -> %s, want refusal", cases[i][0], got);
        else
            cr_expect(got && strcmp(got, cases[i][1]) == 0, "%s -> %s, want %s", cases[i][0],
                      got ? got : "(null)", cases[i][1]);
    }
}

Test(otlp_names, unit_words)
{
    cr_assert(vg_str_eq_c(otlp_names_unit(arena, "s"), "seconds"));
    cr_assert(vg_str_eq_c(otlp_names_unit(arena, "By/s"), "bytes_per_second"));
    cr_assert(vg_str_eq_c(otlp_names_unit(arena, "{req}/s"), "per_second"));
    cr_assert(vg_str_eq_c(otlp_names_unit(arena, "1"), ""));
    cr_assert(vg_str_eq_c(otlp_names_unit(arena, ""), ""));
    cr_assert(vg_str_eq_c(otlp_names_unit(arena, NULL), ""));
}

typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;

static const char *value_text(const AnyValue *v)
{
    static char out[256];
    struct vg_buf b;
    vg_buf_init(&b);
    otlp_names_value(&b, v);
    snprintf(out, sizeof out, "%s", b.len ? vg_buf_cstr(&b) : "");
    vg_buf_free(&b);
    return out;
}

Test(otlp_names, attribute_values)
{
    AnyValue v = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v.int_value = -42;
    cr_assert_str_eq(value_text(&v), "-42");
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    v.bool_value = 0;
    cr_assert_str_eq(value_text(&v), "false");
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    v.double_value = 0.1;
    cr_assert_str_eq(value_text(&v), "0.1");
    v.double_value = 1e21;
    cr_assert_str_eq(value_text(&v), "1e+21");
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
    v.bytes_value = (ProtobufCBinaryData){ 4, (uint8_t *)"abcd" };
    cr_assert_str_eq(value_text(&v), "YWJjZA==");
    v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v.string_value = "plain \"text\"";
    cr_assert_str_eq(value_text(&v), "plain \"text\"");
    cr_assert_str_eq(value_text(NULL), "");

    /* {"k":["a",1]} */
    AnyValue a = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT, i1 = a, s1 = a, kv_v = a;
    s1.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    s1.string_value = "a";
    i1.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    i1.int_value = 1;
    AnyValue *elems[2] = { &s1, &i1 };
    Opentelemetry__Proto__Common__V1__ArrayValue arr =
        OPENTELEMETRY__PROTO__COMMON__V1__ARRAY_VALUE__INIT;
    arr.n_values = 2;
    arr.values = elems;
    a.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    a.array_value = &arr;
    Opentelemetry__Proto__Common__V1__KeyValue kv = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    kv.key = "k";
    kv.value = &a;
    Opentelemetry__Proto__Common__V1__KeyValue *kvs[1] = { &kv };
    Opentelemetry__Proto__Common__V1__KeyValueList kl =
        OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE_LIST__INIT;
    kl.n_values = 1;
    kl.values = kvs;
    kv_v.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
    kv_v.kvlist_value = &kl;
    cr_assert_str_eq(value_text(&kv_v), "{\"k\":[\"a\",1]}");
}

Test(otlp_names, arena_exhausted_is_null)
{
    struct vg_arena *small = vg_arena_new(64);
    vg_arena_set_limit(small, 64);
    char big[512];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    cr_assert_null(otlp_names_label(small, big, strlen(big)));
    cr_assert_null(otlp_names_metric(small, big, "s", TSDB_TYPE_GAUGE, false, true));
    vg_arena_free(small);
}
