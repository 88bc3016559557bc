/* Tests server/ingest/zipkin.c: POST /api/v2/spans against a real span store
 * (tests/unit/server/fixture.h), read back through the Tempo API as exact OTLP JSON: the
 * OpenTelemetry Collector's mapping (ids padded, kinds, micro- to nanoseconds, endpoints to
 * net.* and peer.service, special tags to status, trace state, scope, resource and links,
 * annotations to events); 202 on success, 400 with reasons for bodies that are not arrays
 * and for requests whose every span is refused, partial acceptance otherwise; 415 for
 * protobuf; zipkin_decode under allocation failure. */
#include "../fixture.h"

#include "../../../../server/api/tempo.h"
#include "../../../../server/ingest/ingest.h"
#include "../../../../server/ingest/zipkin.h"

static struct server_fixture fx;
static struct vg_arena *arena;
static struct http_response resp;
static struct vg_err err;

static void setup(void)
{
    fixture_receiver_open(&fx, FIXTURE_TRACES, &arena, &resp);
}

static void teardown(void)
{
    fixture_receiver_close(&fx, arena, &resp);
}

TestSuite(zipkin, .init = setup, .fini = teardown, .timeout = 30);

/* Posts body (' for ") with content type ct; returns the response body. */
static const char *post_ct(const char *ct, const char *body)
{
    return fixture_post(&fx, &mod_zipkin, "/api/v2/spans", ct, NULL,
                        fixture_json(arena, "%s", body), arena, &resp);
}

static const char *post(const char *body)
{
    return post_ct("application/json", body);
}

static const char *trace_json(const char *id)
{
    return fixture_trace_json(&fx, arena, id);
}

#define SPAN(extra) \
    "{'traceId':'463ac35c9f6413ad','id':'a2fb4a1d1a96d312','timestamp':1700000000000001," \
    "'duration':250" extra "}"

Test(zipkin, a_full_span_maps_as_the_collector_does)
{
    const char *body = post(
        "[{'traceId':'463ac35c9f6413ad48485a3953bb6124','id':'a2fb4a1d1a96d312',"
        "'parentId':'0020000000000001','name':'get /api','kind':'SERVER',"
        "'timestamp':1700000000000001,'duration':250,'debug':true,'shared':false,"
        "'localEndpoint':{'serviceName':'backend','ipv4':'192.168.99.1','port':3306},"
        "'remoteEndpoint':{'serviceName':'db','ipv6':'::1','port':58648},"
        "'tags':{'http.method':'GET','error':'true','w3c.tracestate':'k=v',"
        "'otel.library.name':'lib','otel.library.version':'2','host.name':'h1',"
        "'otel.status_description':'ignored without a code',"
        "'otlp.link.0':'0102030405060708090a0b0c0d0e0f10|0102030405060708|a=b|{\\'n\\':1}|2'},"
        "'annotations':[{'timestamp':1700000000000101,'value':'ws|{\\'x\\':\\'y\\',\\'f\\':0.5}|3'},"
        "{'timestamp':1700000000000201,'value':'done'}]}]");
    cr_assert_eq(resp.status, 202, "%s", body);
    cr_assert_str_eq(body, "");
    cr_assert_str_eq(
        trace_json("463ac35c9f6413ad48485a3953bb6124"),
        "{\"batches\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
        "{\"stringValue\":\"backend\"}},{\"key\":\"host.name\",\"value\":{\"stringValue\":"
        "\"h1\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"lib\",\"version\":\"2\"},\"spans\":"
        "[{\"traceId\":\"463ac35c9f6413ad48485a3953bb6124\",\"spanId\":\"a2fb4a1d1a96d312\","
        "\"traceState\":\"k=v\",\"parentSpanId\":\"0020000000000001\",\"name\":\"get /api\","
        "\"kind\":2,\"startTimeUnixNano\":\"1700000000000001000\",\"endTimeUnixNano\":"
        "\"1700000000000251000\",\"attributes\":[{\"key\":\"http.method\",\"value\":"
        "{\"stringValue\":\"GET\"}},{\"key\":\"otel.status_description\",\"value\":"
        "{\"stringValue\":\"ignored without a code\"}},{\"key\":\"net.host.ip\",\"value\":"
        "{\"stringValue\":\"192.168.99.1\"}},{\"key\":\"net.host.port\",\"value\":"
        "{\"intValue\":\"3306\"}},{\"key\":\"net.peer.ip\",\"value\":{\"stringValue\":\"::1\"}},"
        "{\"key\":\"net.peer.port\",\"value\":{\"intValue\":\"58648\"}},{\"key\":"
        "\"peer.service\",\"value\":{\"stringValue\":\"db\"}}],\"events\":[{\"timeUnixNano\":"
        "\"1700000000000101000\",\"name\":\"ws\",\"attributes\":[{\"key\":\"x\",\"value\":"
        "{\"stringValue\":\"y\"}},{\"key\":\"f\",\"value\":{\"doubleValue\":0.5}}],"
        "\"droppedAttributesCount\":3},{\"timeUnixNano\":\"1700000000000201000\",\"name\":"
        "\"done\"}],\"links\":[{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\",\"spanId\":"
        "\"0102030405060708\",\"traceState\":\"a=b\",\"attributes\":[{\"key\":\"n\",\"value\":"
        "{\"intValue\":\"1\"}}],\"droppedAttributesCount\":2}],\"status\":{\"code\":2}}]}]}]}");
}

Test(zipkin, short_ids_kinds_status_tags_and_self_parents)
{
    post("[{'traceId':'463ac35c9f6413ad','id':'1','parentId':'1','timestamp':5,"
         "'kind':'PRODUCER','tags':{'otel.status_code':'STATUS_CODE_OK',"
         "'otel.status_description':'fine'}},"
         "{'traceId':'463ac35c9f6413ad','id':'2','timestamp':5,'kind':'CONSUMER',"
         "'tags':{'otel.status_code':'ERROR','error':'no'}},"
         "{'traceId':'463ac35c9f6413ad','id':'3','timestamp':5,'kind':'CLIENT'},"
         "{'traceId':'463ac35c9f6413ad','id':'4','timestamp':5,'tags':{'span.kind':'internal'}},"
         "{'traceId':'463ac35c9f6413ad','id':'5','timestamp':5,'kind':'ODD'}]");
    cr_assert_eq(resp.status, 202, "%s", vg_buf_cstr(&resp.body));
    char t[4096];
    snprintf(t, sizeof t, "%s", trace_json("0000000000000000463ac35c9f6413ad"));
    cr_assert(strstr(t, "{\"traceId\":\"0000000000000000463ac35c9f6413ad\",\"spanId\":"
                        "\"0000000000000001\",\"kind\":4,\"startTimeUnixNano\":\"5000\","
                        "\"endTimeUnixNano\":\"5000\",\"status\":{\"message\":\"fine\","
                        "\"code\":1}}"),
              "%s", t);
    cr_assert(strstr(t, "\"spanId\":\"0000000000000002\",\"kind\":5,\"startTimeUnixNano\":"
                        "\"5000\",\"endTimeUnixNano\":\"5000\",\"attributes\":[{\"key\":"
                        "\"error\",\"value\":{\"stringValue\":\"no\"}}],\"status\":{\"code\":2}}"),
              "%s", t);
    cr_assert(strstr(t, "\"spanId\":\"0000000000000003\",\"kind\":3,"), "%s", t);
    cr_assert(strstr(t, "\"spanId\":\"0000000000000004\",\"kind\":1,"), "%s", t);
    cr_assert(strstr(t, "\"spanId\":\"0000000000000005\",\"startTimeUnixNano\""), "%s", t);
    cr_assert_str_eq(trace_json("463ac35c9f6413ad"), t);
}

Test(zipkin, bad_spans_are_refused_and_the_rest_accepted)
{
    static const struct { const char *span, *why, *reason; } cases[] = {
        { "{'traceId':'xyz','id':'1','timestamp':5}", "traceId must be", "invalid_trace_id" },
        { "{'traceId':'463ac35c9f6413ad463ac35c9f6413ad1','id':'1','timestamp':5}",
          "traceId must be", "invalid_trace_id" },
        { "{'traceId':'1','timestamp':5}", "id must be 16 hex digits", "invalid_span_id" },
        { "{'traceId':'1','id':'0','timestamp':5}", "span id is all zero", "invalid_span_id" },
        { "{'traceId':'1','id':'1','parentId':7,'timestamp':5}", "parentId must be",
          "invalid_parent_span_id" },
        { "{'traceId':'1','id':'1'}", "timestamp is missing", "invalid_timestamps" },
        { "{'traceId':'1','id':'1','timestamp':-5}", "timestamp and duration",
          "invalid_timestamps" },
        { "{'traceId':'1','id':'1','timestamp':5,'duration':1.5}", "timestamp and duration",
          "invalid_timestamps" },
        { "{'traceId':'1','id':'1','timestamp':9223372036854776}", "timestamp and duration",
          "invalid_timestamps" },
        { "{'traceId':'1','id':'1','timestamp':5,'tags':{'a':1}}", "tags.a: expected a string",
          "malformed_span" },
        { "{'traceId':'1','id':'1','timestamp':5,'tags':{'a':'1','b':'2','c':'3'}}",
          "span has 3 attributes", "too_many_attributes" },
        { "{'traceId':'1','id':'1','timestamp':5,'tags':{'k':'0123456789abcdefghij'}}",
          "span attribute \"k\" is 21 bytes", "attribute_too_large" },
        { "{'traceId':'1','id':'1','timestamp':5,'annotations':[{'value':3}]}",
          "annotations[0]: expected", "malformed_span" },
        { "{'traceId':'1','id':'1','timestamp':5,'annotations':[{'timestamp':1,"
          "'value':'a|{|1'}]}",
          "malformed attributes", "malformed_span" },
        { "{'traceId':'1','id':'1','timestamp':5,'tags':{'otlp.link.0':'zz|1|||0'}}",
          "tag otlp.link.0", "malformed_span" },
        { "{'traceId':'1','id':'1','timestamp':5,'localEndpoint':{'port':'80'}}",
          "localEndpoint: serviceName", "malformed_span" },
        { "{'traceId':'1','id':'1','timestamp':5,'debug':'yes'}", "debug must be a boolean",
          "malformed_span" },
        { "{'traceId':'1','id':'1','timestamp':5,'name':7}", "name and kind must be strings",
          "malformed_span" },
        { "[1]", "spans[0]: expected a span object, got an array", "malformed_span" },
    };
    fx.cfg->traces_max_attributes = 2;
    fx.cfg->traces_max_attribute_bytes = 20;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[1024];
        snprintf(body, sizeof body, "[%s,{'traceId':'%zx','id':'1','timestamp':5}]",
                 cases[i].span, i + 100);
        const char *b = post(body);
        cr_assert_eq(resp.status, 202, "case %zu: %d %s", i, resp.status, b);
        cr_assert(strstr(b, "1 of 2 spans rejected; first: spans[0]: "), "case %zu: %s", i, b);
        cr_assert(strstr(b, cases[i].why), "case %zu: %s", i, b);
        char id[40], m[160];
        snprintf(id, sizeof id, "%zx", i + 100);
        cr_assert_neq(trace_json(id)[0], '\0', "case %zu", i);
        snprintf(m, sizeof m, "vigil_ingest_spans_rejected_total{receiver=\"zipkin\",reason=\"%s\"}",
                 cases[i].reason);
        struct vg_buf out;
        vg_buf_init(&out);
        metrics_render(fx.v.metrics, &out);
        cr_assert(strstr(vg_buf_cstr(&out), m), "case %zu: %s", i, m);
        vg_buf_free(&out);
    }
}

Test(zipkin, requests_that_store_nothing_are_400)
{
    cr_assert(strstr(post("{'traceId':'1'}"), "expected a JSON array of Zipkin v2 spans"));
    cr_assert_eq(resp.status, 400);
    cr_assert(strstr(post("[{'traceId':"), "invalid JSON at line 1"));
    cr_assert_eq(resp.status, 400);
    cr_assert(strstr(post("[" SPAN(",'id':'0'") "]"), "all 1 spans rejected; first: spans[0]"));
    cr_assert_eq(resp.status, 400);
    post("[]");
    cr_assert_eq(resp.status, 202);
    fx.cfg->traces_max_spans_per_request = 1;
    cr_assert(strstr(post("[" SPAN("") "," SPAN("") "]"),
                     "spans[1]: the request holds 2 spans, more than the limit of 1"));
    cr_assert_eq(resp.status, 202);
}

Test(zipkin, protobuf_and_thrift_are_415)
{
    cr_assert(strstr(post_ct("application/x-protobuf", "x"), "must be JSON"));
    cr_assert_eq(resp.status, 415);
    post_ct("application/x-thrift", "x");
    cr_assert_eq(resp.status, 415);
    post_ct(NULL, "[" SPAN("") "]");
    cr_assert_eq(resp.status, 202);
}

Test(zipkin, decode_survives_allocation_failure)
{
    const char *body = "[{\"traceId\":\"1\",\"id\":\"1\",\"timestamp\":5,\"tags\":{\"a\":\"b\"},"
                       "\"annotations\":[{\"timestamp\":6,\"value\":\"e|{\\\"k\\\":1}|0\"}],"
                       "\"localEndpoint\":{\"serviceName\":\"s\"}}]";
    for (uint64_t n = 1; n < 200; n++) {
        struct vg_arena *a = vg_arena_new(64);
        struct otlp_traces_result res;
        vg_alloc_fail_after(n);
        int rc = zipkin_decode(body, strlen(body), fx.cfg, a, &res, &err);
        vg_alloc_fail_after(0);
        vg_arena_free(a);
        if (rc == 0) {
            cr_assert_eq(res.n, 1);
            return;
        }
        cr_assert_eq(rc, VG_ENOMEM, "n=%llu: %s", (unsigned long long)n, err.msg);
    }
    cr_assert_fail("never succeeded");
}
