/* Tests server/ingest/otlp_metrics.c, the receiver glue: POST /v1/metrics in protobuf and
 * JSON (response in the request's encoding, partial success when points are refused),
 * 415 for other content types and encodings, 400 with a google.rpc.Status body for
 * undecodable bodies, 413 over the memory cap, 503 when the store fails, the gRPC method,
 * and the delta state made by init. The store is a recording fake (below). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../../../../server/ingest/ingest.h"
#include "../../../../server/ingest/otlp_json.h"
#include "../../../../server/ingest/otlp_metrics.h"
#include "../../../../server/metrics.h"
#include "../../../../storage/base/vg_alloc.h"

#include "otlp_metrics_service.pb-c.h"

/* A recording store. Weak so that a real storage/tsdb/tsdb.c brought in by the linker for
 * another reason would win (these tests would then need a real database). */
static size_t stored_series;
static bool store_fails;
__attribute__((weak)) int tsdb_append(struct tsdb *db, const struct tsdb_batch *batch,
                                      struct tsdb_append_result *res, struct vg_err *err)
{
    (void)db;
    if (store_fails)
        return vg_err_set(err, VG_EIO, "disk on fire");
    memset(res, 0, sizeof *res);
    stored_series += batch->nseries;
    for (size_t i = 0; i < batch->nseries; i++)
        res->accepted += batch->series[i].nsamples;
    return 0;
}
__attribute__((weak)) const char *tsdb_reject_name(enum tsdb_reject r)
{
    return r == TSDB_REJECT_TOO_OLD ? "too_old" : "duplicate_conflict";
}

#define REQ_DESC \
    (&opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor)
#define RESP_DESC \
    (&opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__descriptor)
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse Resp;

static struct config cfg;
static struct vigil vg;
static struct vg_arena *arena;
static struct http_response resp;
static struct vg_err err;

static void setup(void)
{
    memset(&cfg, 0, sizeof cfg);
    cfg.limits = (struct config_limits){
        .max_body_bytes = 1 << 20, .max_decoded_bytes = 1 << 20,
        .max_labels_per_series = 16, .max_label_name_length = 64,
        .max_label_value_length = 128, .max_series_per_request = 100,
    };
    cfg.otlp_add_type_and_unit_suffixes = true;
    memset(&vg, 0, sizeof vg);
    vg.cfg = &cfg;
    vg.metrics = metrics_new();
    struct vg_err e;
    cr_assert_eq(ingest_metrics_init(&vg, &e), 0, "%s", e.msg);
    arena = vg_arena_new(0);
    memset(&resp, 0, sizeof resp);
    vg_buf_init(&resp.body);
    stored_series = 0;
    store_fails = false;
    vg_err_clear(&err);
}

static void teardown(void)
{
    vg_buf_free(&resp.body);
    vg_arena_free(arena);
    ingest_metrics_free(&vg);
    metrics_free(vg.metrics);
}

TestSuite(otlp_metrics, .init = setup, .fini = teardown);

#define GOOD "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"g\"," \
             "\"gauge\":{\"dataPoints\":[{\"timeUnixNano\":\"1700000000000000000\"," \
             "\"asDouble\":1}]}}]}]}]}"
#define HALF "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"g\"," \
             "\"gauge\":{\"dataPoints\":[{\"timeUnixNano\":\"1700000000000000000\"," \
             "\"asDouble\":1},{\"asDouble\":2}]}}]}]}]}"

/* The protobuf encoding of a JSON request. */
static struct vg_str pb_of(const char *json)
{
    ProtobufCMessage *m;
    cr_assert_eq(otlp_json_decode(REQ_DESC, json, strlen(json), arena, &m, &err), 0, "%s",
                 err.msg);
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *p = vg_arena_alloc(arena, n + 1);
    protobuf_c_message_pack(m, p);
    return (struct vg_str){ (const char *)p, n };
}

static void post(const char *ct, struct vg_str body)
{
    struct http_request r = { .method = "POST", .path = "/v1/metrics", .content_type = ct,
                              .body = body, .arena = arena };
    cr_assert_str_eq(mod_otlp_metrics.routes[0].path, "/v1/metrics");
    vg_buf_reset(&resp.body);
    resp.status = 0;
    resp.nheaders = 0;
    mod_otlp_metrics.routes[0].fn(&vg, &r, &resp);
}

Test(otlp_metrics, protobuf_all_stored_empty_response)
{
    post("application/x-protobuf", pb_of(GOOD));
    cr_assert_eq(resp.status, 200, "%d %.*s", resp.status, (int)resp.body.len, resp.body.p);
    cr_assert_str_eq(resp.content_type, "application/x-protobuf");
    cr_assert_eq(resp.body.len, 0); /* ExportMetricsServiceResponse with nothing set */
    cr_assert_eq(stored_series, 1);
}

Test(otlp_metrics, protobuf_partial_success)
{
    post("application/x-protobuf", pb_of(HALF));
    cr_assert_eq(resp.status, 200);
    Resp *r = opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__unpack(
        NULL, resp.body.len, (const uint8_t *)resp.body.p);
    cr_assert_not_null(r);
    cr_assert_not_null(r->partial_success);
    cr_assert_eq(r->partial_success->rejected_data_points, 1);
    cr_assert(strstr(r->partial_success->error_message,
                     "1 of 2 data points rejected; first: metric g: data point has no "
                     "time_unix_nano"),
              "%s", r->partial_success->error_message);
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__free_unpacked(
        r, NULL);
    cr_assert_eq(stored_series, 1);
}

Test(otlp_metrics, json_in_json_out)
{
    post("application/json; charset=utf-8", vg_str_c(HALF));
    cr_assert_eq(resp.status, 200);
    cr_assert_str_eq(resp.content_type, "application/json");
    ProtobufCMessage *m;
    cr_assert_eq(otlp_json_decode(RESP_DESC, resp.body.p, resp.body.len, arena, &m, &err), 0,
                 "%.*s", (int)resp.body.len, resp.body.p);
    Resp *r = (Resp *)m;
    cr_assert_not_null(r->partial_success);
    cr_assert_eq(r->partial_success->rejected_data_points, 1);
    post("application/json", vg_str_c(GOOD));
    cr_assert_eq(resp.status, 200);
    cr_assert_eq(resp.body.len, 2);
    cr_assert_eq(memcmp(resp.body.p, "{}", 2), 0);
}

Test(otlp_metrics, other_content_type_is_415)
{
    post("text/plain", vg_str_c(GOOD));
    cr_assert_eq(resp.status, 415);
    cr_assert(strstr(resp.body.p, "application/x-protobuf or application/json"));
    post(NULL, vg_str_c(GOOD));
    cr_assert_eq(resp.status, 415);
    cr_assert_eq(stored_series, 0);
}

Test(otlp_metrics, leftover_content_encoding_is_415)
{
    struct http_request r = { .method = "POST", .path = "/v1/metrics",
                              .content_type = "application/json", .content_encoding = "br",
                              .body = vg_str_c(GOOD), .arena = arena };
    mod_otlp_metrics.routes[0].fn(&vg, &r, &resp);
    cr_assert_eq(resp.status, 415);
    cr_assert(strstr(resp.body.p, "Content-Encoding \"br\""));
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
    cr_assert_eq(stored_series, 0);
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
    cfg.limits.max_decoded_bytes = 16; /* arena cap 64 bytes */
    struct vg_str body = pb_of(GOOD);
    struct vg_arena *keep = arena;
    arena = vg_arena_new(64); /* small blocks, so the cap bites */
    post("application/x-protobuf", body);
    vg_arena_free(arena);
    arena = keep;
    cr_assert_eq(resp.status, 413, "%d", resp.status);
    cr_assert(memmem(resp.body.p, resp.body.len, "max_decoded_bytes", 17));
}

Test(otlp_metrics, store_failure_is_503_with_retry)
{
    store_fails = true;
    post("application/x-protobuf", pb_of(GOOD));
    cr_assert_eq(resp.status, 503);
    cr_assert_eq(resp.nheaders, 1);
    cr_assert_str_eq(resp.headers[0].name, "Retry-After");
}

Test(otlp_metrics, grpc_export)
{
    cr_assert_eq(mod_otlp_metrics.ngrpc, 1);
    cr_assert_str_eq(mod_otlp_metrics.grpc_methods[0].path,
                     "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export");
    struct vg_str pb = pb_of(HALF);
    struct vg_buf out;
    vg_buf_init(&out);
    int rc = mod_otlp_metrics.grpc_methods[0].fn(&vg, (const unsigned char *)pb.p, pb.len, &out,
                                                 &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    Resp *r = opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__unpack(
        NULL, out.len, (const uint8_t *)out.p);
    cr_assert_not_null(r);
    cr_assert_eq(r->partial_success->rejected_data_points, 1);
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__free_unpacked(
        r, NULL);
    vg_buf_reset(&out);
    rc = mod_otlp_metrics.grpc_methods[0].fn(&vg, (const unsigned char *)"\x0a\xff", 2, &out,
                                             &err);
    cr_assert_eq(rc, VG_EINVAL);
    vg_buf_free(&out);
    cr_assert_eq(stored_series, 1);
}

Test(otlp_metrics, init_creates_delta_state_for_accumulate)
{
    struct vg_err e;
    cr_assert_eq(mod_otlp_metrics.init(&vg, &e), 0);
    cr_assert_null(vg.otlp_state);
    cfg.otlp_delta = OTLP_DELTA_ACCUMULATE;
    cr_assert_eq(mod_otlp_metrics.init(&vg, &e), 0);
    cr_assert_not_null(vg.otlp_state);
    post("application/json",
         vg_str_c("{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"c\","
                  "\"sum\":{\"aggregationTemporality\":1,\"isMonotonic\":true,\"dataPoints\":"
                  "[{\"timeUnixNano\":\"1700000000000000000\",\"asInt\":\"2\"}]}}]}]}]}"));
    cr_assert_eq(resp.status, 200);
    cr_assert_eq(stored_series, 1);
    mod_otlp_metrics.free(&vg);
    cr_assert_null(vg.otlp_state);
}
