/* Tests server/ingest/otlp_traces.c as a user meets it: POST /v1/traces (protobuf and
 * JSON) and the gRPC Export method against a real span store in a temporary directory
 * (tests/unit/server/fixture.h), read back by id through the Tempo API
 * (tempo_trace_by_id) and compared as exact JSON: typed attributes (arrays and key/value
 * lists included), events, links, status, scope and resource. Partial success: good spans
 * of a request are kept while each validation reason refuses its span, with the reason in
 * the response and in /metrics. Error answers (415, 400 with a google.rpc.Status),
 * allocation failure, and the opentelemetry-proto example trace.json from
 * ../shared/conformance/otlp (skipped when absent). */
#include "../fixture.h"

#include "../../../../server/api/tempo.h"
#include "../../../../server/ingest/ingest.h"
#include "../../../../server/ingest/otlp_json.h"
#include "../../../../server/ingest/otlp_traces.h"
#include "../../../../server/pb_alloc.h"

#include <limits.h>

#define REQ_DESC \
    (&opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor)
#define RESP_DESC \
    (&opentelemetry__proto__collector__trace__v1__export_trace_service_response__descriptor)
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse Resp;
typedef Opentelemetry__Proto__Trace__V1__Span PbSpan;

static struct server_fixture fx;
static struct vg_arena *arena;
static struct http_response resp;
static struct vg_err err;

static void setup(void)
{
    fixture_receiver_open(&fx, FIXTURE_TRACES, &arena, &resp);
    vg_err_clear(&err);
}

static void teardown(void)
{
    fixture_receiver_close(&fx, arena, &resp);
}

TestSuite(otlp_traces, .init = setup, .fini = teardown, .timeout = 30);

/* ---- requests ---- */

static void post(const char *ct, struct vg_str body)
{
    fixture_post(&fx, &mod_otlp_traces, "/v1/traces", ct, NULL, body, arena, &resp);
}

/* Posts json (' for ") in the given encoding and expects 200. */
static void export(bool json, const char *body)
{
    fixture_otlp_export(&fx, &mod_otlp_traces, "/v1/traces", REQ_DESC, json,
                        fixture_json(arena, "%s", body), arena, &resp);
}

/* The response message of the last request (either encoding). */
static Resp *answer(bool json)
{
    return (Resp *)fixture_otlp_answer(RESP_DESC, json, &resp, arena);
}

/* The trace as GET /api/traces/<id> answers it (JSON, NUL-terminated); 404 gives "". */
static const char *trace_json(const char *id)
{
    return fixture_trace_json(&fx, arena, id);
}

/* The value of the /metrics line starting with prefix, or -1. */
static double metric(const char *prefix)
{
    return fixture_metric(fx.v.metrics, prefix);
}

/* ---- round trips ---- */

#define TID "5b8efff798038103d269b633813fc60c"
#define RESOURCE \
    "{'attributes':[{'key':'service.name','value':{'stringValue':'shop'}}," \
    "{'key':'host.cpus','value':{'intValue':'8'}}],'droppedAttributesCount':1}"
#define SCOPE "{'name':'lib','version':'1.2','attributes':[{'key':'s','value':{'boolValue':true}}]}"
#define ROOT \
    "{'traceId':'" TID "','spanId':'eee19b7ec3c1b173','name':'GET /cart'," \
    "'kind':2,'startTimeUnixNano':'1700000000000000000','endTimeUnixNano':'1700000000500000000'," \
    "'attributes':[{'key':'http.status_code','value':{'intValue':'200'}}]}"
#define CHILD \
    "{'traceId':'" TID "','spanId':'eee19b7ec3c1b174','parentSpanId':'eee19b7ec3c1b173'," \
    "'traceState':'k=v','flags':257,'name':'SELECT','kind':3," \
    "'startTimeUnixNano':'1700000000100000000','endTimeUnixNano':'1700000000200000000'," \
    "'attributes':[{'key':'d','value':{'doubleValue':1.5}},{'key':'b','value':{'bytesValue':'AQI='}}," \
    "{'key':'arr','value':{'arrayValue':{'values':[{'stringValue':'x'},{'intValue':'2'}]}}}," \
    "{'key':'map','value':{'kvlistValue':{'values':[{'key':'k','value':{'boolValue':false}}]}}}," \
    "{'key':'empty','value':{}}],'droppedAttributesCount':2," \
    "'events':[{'timeUnixNano':'1700000000150000000','name':'exception','attributes':" \
    "[{'key':'exception.type','value':{'stringValue':'E'}}],'droppedAttributesCount':1}]," \
    "'droppedEventsCount':3," \
    "'links':[{'traceId':'0102030405060708090a0b0c0d0e0f10','spanId':'0102030405060708'," \
    "'traceState':'a=b','attributes':[{'key':'l','value':{'stringValue':'v'}}],'flags':1}]," \
    "'droppedLinksCount':4,'status':{'message':'boom','code':2}}"
#define REQUEST \
    "{'resourceSpans':[{'resource':" RESOURCE ",'scopeSpans':[{'scope':" SCOPE \
    ",'spans':[" ROOT "," CHILD "]}]}]}"

/* What the Tempo API gives back for REQUEST: the attribute without a value is gone and
 * counted as dropped (2 + 1). */
#define EXPECTED \
    "{\"batches\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":" \
    "{\"stringValue\":\"shop\"}},{\"key\":\"host.cpus\",\"value\":{\"intValue\":\"8\"}}]," \
    "\"droppedAttributesCount\":1},\"scopeSpans\":[{\"scope\":{\"name\":\"lib\",\"version\":" \
    "\"1.2\",\"attributes\":[{\"key\":\"s\",\"value\":{\"boolValue\":true}}]},\"spans\":[" \
    "{\"traceId\":\"" TID "\",\"spanId\":\"eee19b7ec3c1b173\",\"name\":\"GET /cart\"," \
    "\"kind\":2,\"startTimeUnixNano\":\"1700000000000000000\",\"endTimeUnixNano\":" \
    "\"1700000000500000000\",\"attributes\":[{\"key\":\"http.status_code\",\"value\":" \
    "{\"intValue\":\"200\"}}]}," \
    "{\"traceId\":\"" TID "\",\"spanId\":\"eee19b7ec3c1b174\",\"traceState\":\"k=v\"," \
    "\"parentSpanId\":\"eee19b7ec3c1b173\",\"name\":\"SELECT\",\"kind\":3," \
    "\"startTimeUnixNano\":\"1700000000100000000\",\"endTimeUnixNano\":\"1700000000200000000\"," \
    "\"attributes\":[{\"key\":\"d\",\"value\":{\"doubleValue\":1.5}},{\"key\":\"b\",\"value\":" \
    "{\"bytesValue\":\"AQI=\"}},{\"key\":\"arr\",\"value\":{\"arrayValue\":{\"values\":[" \
    "{\"stringValue\":\"x\"},{\"intValue\":\"2\"}]}}},{\"key\":\"map\",\"value\":{" \
    "\"kvlistValue\":{\"values\":[{\"key\":\"k\",\"value\":{\"boolValue\":false}}]}}}]," \
    "\"droppedAttributesCount\":3,\"events\":[{\"timeUnixNano\":\"1700000000150000000\"," \
    "\"name\":\"exception\",\"attributes\":[{\"key\":\"exception.type\",\"value\":" \
    "{\"stringValue\":\"E\"}}],\"droppedAttributesCount\":1}],\"droppedEventsCount\":3," \
    "\"links\":[{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":" \
    "\"0102030405060708\",\"traceState\":\"a=b\",\"attributes\":[{\"key\":\"l\",\"value\":" \
    "{\"stringValue\":\"v\"}}],\"flags\":1}],\"droppedLinksCount\":4,\"status\":" \
    "{\"message\":\"boom\",\"code\":2},\"flags\":257}]}]}]}"

Test(otlp_traces, json_round_trip_is_exact)
{
    export(true, REQUEST);
    cr_assert_str_eq(vg_buf_cstr(&resp.body), "{}");
    cr_assert_str_eq(resp.content_type, "application/json");
    cr_assert_str_eq(trace_json(TID), EXPECTED);
    cr_assert_eq(metric("vigil_ingest_spans_accepted_total{receiver=\"otlp_traces_http\"} "), 2);
    cr_assert_eq(metric("vigil_ingest_requests_total{receiver=\"otlp_traces_http\",code=\"200\"} "),
                 1);
}

Test(otlp_traces, protobuf_round_trip_is_exact)
{
    export(false, REQUEST);
    cr_assert_eq(resp.body.len, 0, "an empty ExportTraceServiceResponse");
    cr_assert_str_eq(resp.content_type, "application/x-protobuf");
    cr_assert_str_eq(trace_json(TID), EXPECTED);
}

Test(otlp_traces, grpc_export_stores_and_answers)
{
    struct vg_str body = fixture_otlp_pb(REQ_DESC, fixture_json(arena, "%s", REQUEST), arena);
    struct vg_buf out;
    vg_buf_init(&out);
    cr_assert_eq(otlp_traces_grpc_export(&fx.v, (const unsigned char *)body.p, body.len, &out,
                                         &err),
                 0, "%s", err.msg);
    cr_assert_eq(out.len, 0);
    cr_assert_str_eq(trace_json(TID), EXPECTED);
    cr_assert_eq(otlp_traces_grpc_export(&fx.v, (const unsigned char *)"\xff\xff", 2, &out, &err),
                 VG_EINVAL);
    cr_assert(strstr(err.msg, "malformed protobuf"), "%s", err.msg);
    vg_buf_free(&out);
    cr_assert_eq(metric("vigil_ingest_requests_total{receiver=\"otlp_traces_grpc\",code=\"3\"} "),
                 1);
}

Test(otlp_traces, spans_of_different_resources_and_scopes_are_grouped_apart)
{
    export(true, "{'resourceSpans':[{'resource':{'attributes':[{'key':'service.name','value':"
                 "{'stringValue':'a'}}]},'scopeSpans':[{'scope':{'name':'x'},'spans':[" ROOT
                 "]},{'scope':{'name':'y'},'spans':[" CHILD "]}]},"
                 "{'resource':{'attributes':[{'key':'service.name','value':{'stringValue':'b'}}]},"
                 "'scopeSpans':[{'spans':[{'traceId':'" TID "','spanId':'0000000000000001',"
                 "'startTimeUnixNano':'1700000000300000000','endTimeUnixNano':"
                 "'1700000000300000000'}]}]}]}");
    otlp_traces_request *back;
    struct spanstore_trace t;
    uint8_t tid[16];
    cr_assert(otlp_traces_parse_id(TID, 32, tid, 16));
    cr_assert_eq(spanstore_trace_get(fx.v.traces, tid, &t, &err), 0, "%s", err.msg);
    cr_assert_eq(otlp_traces_from_spans(t.spans, t.n, arena, &back, &err), 0);
    cr_assert_eq(back->n_resource_spans, 2);
    cr_assert_eq(back->resource_spans[0]->n_scope_spans, 2);
    cr_assert_str_eq(back->resource_spans[0]->scope_spans[0]->scope->name, "x");
    cr_assert_str_eq(back->resource_spans[0]->scope_spans[1]->scope->name, "y");
    cr_assert_eq(back->resource_spans[1]->n_scope_spans, 1);
    cr_assert_eq(back->resource_spans[1]->scope_spans[0]->n_spans, 1);
    cr_assert_eq(t.spans[2].service.len, 1);
    cr_assert_eq(t.spans[2].service.p[0], 'b');
    spanstore_trace_free(&t);
}

/* ---- partial success and every reason ---- */

static void mutate_none(PbSpan *s)
{
    (void)s;
}
static void short_trace_id(PbSpan *s)
{
    s->trace_id.len = 5;
}
static void short_span_id(PbSpan *s)
{
    s->span_id.len = 7;
}
static void short_parent(PbSpan *s)
{
    s->parent_span_id.len = 4;
}
static void short_link_id(PbSpan *s)
{
    s->links[0]->span_id.len = 3;
}

struct reason_case {
    const char *span;          /* the bad span, JSON */
    void (*mutate)(PbSpan *s); /* applied to it before packing */
    const char *reason;        /* the /metrics label */
    const char *message;       /* part of the partial-success message */
};

#define BAD(extra) \
    "{'traceId':'" TID "','spanId':'00000000000000aa','startTimeUnixNano':'1'," \
    "'endTimeUnixNano':'2'" extra "}"

static const struct reason_case reasons[] = {
    { BAD(""), short_trace_id, "invalid_trace_id", "trace id is 5 bytes, must be 16" },
    { "{'traceId':'00000000000000000000000000000000','spanId':'00000000000000aa',"
      "'startTimeUnixNano':'1','endTimeUnixNano':'2'}",
      mutate_none, "invalid_trace_id", "trace id is all zero" },
    { BAD(""), short_span_id, "invalid_span_id", "span id is 7 bytes, must be 8" },
    { "{'traceId':'" TID "','spanId':'0000000000000000','startTimeUnixNano':'1',"
      "'endTimeUnixNano':'2'}",
      mutate_none, "invalid_span_id", "span id is all zero" },
    { BAD(",'parentSpanId':'0000000000000001'"), short_parent, "invalid_parent_span_id",
      "parent span id is 4 bytes, must be 8 or empty" },
    { "{'traceId':'" TID "','spanId':'00000000000000aa','endTimeUnixNano':'2'}", mutate_none,
      "invalid_timestamps", "start time is missing" },
    { "{'traceId':'" TID "','spanId':'00000000000000aa','startTimeUnixNano':'3',"
      "'endTimeUnixNano':'2'}",
      mutate_none, "invalid_timestamps", "end time 2 is before start time 3" },
    { "{'traceId':'" TID "','spanId':'00000000000000aa','startTimeUnixNano':'1',"
      "'endTimeUnixNano':'18446744073709551615'}",
      mutate_none, "invalid_timestamps", "past the year 2262" },
    { BAD(",'events':[{'timeUnixNano':'18446744073709551615'}]"), mutate_none,
      "invalid_timestamps", "events[0]: time is past the year 2262" },
    { BAD(",'attributes':[{'key':'a','value':{'intValue':'1'}},{'key':'b','value':"
          "{'intValue':'1'}},{'key':'c','value':{'intValue':'1'}}]"),
      mutate_none, "too_many_attributes",
      "span has 3 attributes, more than the limit of 2 (traces.max_attributes)" },
    { BAD(",'events':[{'attributes':[{'key':'a','value':{'intValue':'1'}},{'key':'b','value':"
          "{'intValue':'1'}},{'key':'c','value':{'intValue':'1'}}]}]"),
      mutate_none, "too_many_attributes", "event has 3 attributes" },
    { BAD(",'attributes':[{'key':'k','value':{'stringValue':'0123456789abcdefghij'}}]"),
      mutate_none, "attribute_too_large",
      "span attribute \"k\" is 21 bytes, more than the limit of 20 "
      "(traces.max_attribute_bytes)" },
    { BAD(",'links':[{'traceId':'" TID "','spanId':'0000000000000001','attributes':["
          "{'key':'k','value':{'stringValue':'0123456789abcdefghij'}}]}]"),
      mutate_none, "attribute_too_large", "link attribute \"k\"" },
    { BAD(",'kind':9"), mutate_none, "malformed_span", "kind 9 is not a SpanKind" },
    { BAD(",'status':{'code':7}"), mutate_none, "malformed_span",
      "status code 7 is not a StatusCode" },
    { BAD(",'links':[{'traceId':'" TID "','spanId':'0000000000000001'}]"), short_link_id,
      "malformed_span", "links[0]: ids are 16 and 3 bytes, must be 16 and 8" },
};

Test(otlp_traces, each_bad_span_is_refused_with_its_reason_and_the_rest_kept)
{
    fx.cfg->traces_max_attributes = 2;
    fx.cfg->traces_max_attribute_bytes = 20;
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        const struct reason_case *c = &reasons[i];
        char body[2048];
        snprintf(body, sizeof body,
                 "{'resourceSpans':[{'scopeSpans':[{'spans':[%s,{'traceId':'%032zx',"
                 "'spanId':'0000000000000001','startTimeUnixNano':'5','endTimeUnixNano':'6'}]}]}]}",
                 c->span, i + 1);
        otlp_traces_request *m = (otlp_traces_request *)fixture_otlp_msg(
            REQ_DESC, fixture_json(arena, "%s", body), arena);
        c->mutate(m->resource_spans[0]->scope_spans[0]->spans[0]);
        post("application/x-protobuf", fixture_pb_pack(&m->base, arena));
        cr_assert_eq(resp.status, 200, "case %zu: %d", i, resp.status);
        Resp *r = answer(false);
        cr_assert_not_null(r->partial_success, "case %zu", i);
        cr_assert_eq(r->partial_success->rejected_spans, 1, "case %zu", i);
        cr_assert(strstr(r->partial_success->error_message,
                         "1 of 2 spans rejected; first: resourceSpans[0].scopeSpans[0].spans[0]: "),
                  "case %zu: %s", i, r->partial_success->error_message);
        cr_assert(strstr(r->partial_success->error_message, c->message), "case %zu: %s", i,
                  r->partial_success->error_message);
        char id[40], prefix[160];
        snprintf(id, sizeof id, "%032zx", i + 1);
        cr_assert_neq(trace_json(id)[0], '\0', "case %zu: the good span is stored", i);
        snprintf(prefix, sizeof prefix,
                 "vigil_ingest_spans_rejected_total{receiver=\"otlp_traces_http\",reason=\"%s\"} ",
                 c->reason);
        cr_assert_geq(metric(prefix), 1, "case %zu: %s", i, prefix);
    }
    cr_assert_eq(metric("vigil_ingest_spans_rejected_total{receiver=\"otlp_traces_http\","
                        "reason=\"invalid_timestamps\"} "),
                 4);
}

Test(otlp_traces, spans_beyond_the_request_limit_are_refused)
{
    fx.cfg->traces_max_spans_per_request = 1;
    export(true, "{'resourceSpans':[{'scopeSpans':[{'spans':[" ROOT "," CHILD "]}]}]}");
    Resp *r = answer(true);
    cr_assert_not_null(r->partial_success);
    cr_assert_eq(r->partial_success->rejected_spans, 1);
    cr_assert(strstr(r->partial_success->error_message,
                     "spans[1]: the request holds 2 spans, more than the limit of 1 "
                     "(traces.max_spans_per_request)"),
              "%s", r->partial_success->error_message);
    cr_assert(strstr(trace_json(TID), "eee19b7ec3c1b173"));
    cr_assert_null(strstr(trace_json(TID), "eee19b7ec3c1b174"));
}

Test(otlp_traces, a_request_of_only_bad_spans_stores_nothing_and_says_so)
{
    export(true, "{'resourceSpans':[{'scopeSpans':[{'spans':[{'traceId':'" TID "',"
                 "'spanId':'0000000000000001'}]}]}]}");
    Resp *r = answer(true);
    cr_assert_eq(r->partial_success->rejected_spans, 1);
    cr_assert_str_eq(trace_json(TID), "");
}

/* ---- refused requests ---- */

Test(otlp_traces, other_media_types_are_415)
{
    post("text/plain", VG_STR("x"));
    cr_assert_eq(resp.status, 415);
    cr_assert(strstr(vg_buf_cstr(&resp.body), "OTLP/HTTP traces"), "%s", vg_buf_cstr(&resp.body));
    fixture_post(&fx, &mod_otlp_traces, "/v1/traces", "application/json", "br", VG_STR("{}"),
                 arena, &resp);
    cr_assert_eq(resp.status, 415);
}

Test(otlp_traces, undecodable_bodies_are_400_with_a_status_body)
{
    post("application/json", VG_STR("{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":["
                                     "{\"traceId\":\"abc\"}]}]}]}"));
    cr_assert_eq(resp.status, 400);
    cr_assert_str_eq(resp.content_type, "application/json");
    cr_assert(strstr(vg_buf_cstr(&resp.body), "{\"code\":3,\"message\":\"resourceSpans[0]"),
              "%s", vg_buf_cstr(&resp.body));
    post("application/x-protobuf", VG_STR("\x0a\x05\x01"));
    cr_assert_eq(resp.status, 400);
    cr_assert_eq(resp.body.p[0], 0x08); /* google.rpc.Status code */
    cr_assert_eq(resp.body.p[1], 3);
}

Test(otlp_traces, allocation_failure_stores_nothing_half)
{
    struct vg_str body = fixture_otlp_pb(REQ_DESC, fixture_json(arena, "%s", REQUEST), arena);
    int failures = 0;
    for (uint64_t n = 1; n < 400; n++) {
        struct vg_arena *a = vg_arena_new(256);
        struct vg_buf out;
        vg_buf_init(&out);
        vg_alloc_fail_after(n);
        int rc = otlp_traces_export(&fx.v, "t", body.p, body.len, false, a, &out, &err);
        vg_alloc_fail_after(0);
        vg_buf_free(&out);
        vg_arena_free(a);
        if (rc == 0)
            break;
        failures++;
        cr_assert(rc == VG_ENOMEM || rc == VG_EIO || rc == VG_ETOOLARGE, "n=%llu rc=%d %s",
                  (unsigned long long)n, rc, err.msg);
        const char *got = trace_json(TID);
        cr_assert(got[0] == '\0' || strcmp(got, EXPECTED) == 0, "n=%llu: half a trace: %s",
                  (unsigned long long)n, got);
    }
    cr_assert_gt(failures, 3);
    cr_assert_str_eq(trace_json(TID), EXPECTED);
}

/* ---- translation alone ---- */

Test(otlp_traces, reject_names_are_stable)
{
    cr_assert_str_eq(otlp_traces_reject_name(OTLP_TRACES_REJECT_TRACE_ID), "invalid_trace_id");
    cr_assert_str_eq(otlp_traces_reject_name(OTLP_TRACES_REJECT_MALFORMED), "malformed_span");
    cr_assert_str_eq(otlp_traces_reject_name(OTLP_TRACES_REJECT_COUNT), "unknown");
}

Test(otlp_traces, ids_parse_left_padded)
{
    uint8_t id[8];
    cr_assert(otlp_traces_parse_id("aBc", 3, id, 8));
    cr_assert_eq(memcmp(id, "\0\0\0\0\0\0\x0a\xbc", 8), 0);
    cr_assert_not(otlp_traces_parse_id("", 0, id, 8));
    cr_assert_not(otlp_traces_parse_id("00000000000000001", 17, id, 8));
    cr_assert_not(otlp_traces_parse_id("0g", 2, id, 8));
}

/* ---- conformance ---- */

/* ../shared/conformance/otlp/<name>: $VIGIL_SHARED_DIR, else beside the checkout found
 * from this file's path (meson runs tests in the build folder, which __FILE__ is relative
 * to when it is not absolute). */
static char *read_shared(const char *name, size_t *len)
{
    char path[PATH_MAX + 64], root[PATH_MAX];
    const char *env = getenv("VIGIL_SHARED_DIR");
    snprintf(root, sizeof root, "%s", __FILE__);
    char *cut = strstr(root, "tests/unit/server/");
    if (cut)
        *cut = '\0';
    if (env)
        snprintf(path, sizeof path, "%s/conformance/otlp/%s", env, name);
    else
        snprintf(path, sizeof path, "%s../shared/conformance/otlp/%s", root, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        cr_skip_test("%s not found (set VIGIL_SHARED_DIR or check out ../shared)", path);
    static char data[1 << 16];
    *len = fread(data, 1, sizeof data - 1, f);
    fclose(f);
    data[*len] = '\0';
    return data;
}

Test(otlp_traces, conformance_example_trace_reads_back)
{
    size_t n;
    char *body = read_shared("trace.json", &n);
    if (!body)
        return;
    post("application/json", (struct vg_str){ body, n });
    cr_assert_eq(resp.status, 200, "%s", vg_buf_cstr(&resp.body));
    cr_assert_str_eq(vg_buf_cstr(&resp.body), "{}");
    cr_assert_str_eq(
        trace_json("5B8EFFF798038103D269B633813FC60C"),
        "{\"batches\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
        "{\"stringValue\":\"my.service\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":"
        "\"my.library\",\"version\":\"1.0.0\",\"attributes\":[{\"key\":\"my.scope.attribute\","
        "\"value\":{\"stringValue\":\"some scope attribute\"}}]},\"spans\":[{\"traceId\":"
        "\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b174\",\"parentSpanId\":"
        "\"eee19b7ec3c1b173\",\"name\":\"I'm a server span\",\"kind\":2,\"startTimeUnixNano\":"
        "\"1544712660000000000\",\"endTimeUnixNano\":\"1544712661000000000\",\"attributes\":"
        "[{\"key\":\"my.span.attr\",\"value\":{\"stringValue\":\"some value\"}}]}]}]}]}");
}
