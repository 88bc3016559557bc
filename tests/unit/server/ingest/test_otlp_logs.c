/* Tests server/ingest/otlp_logs.c as a user meets it: POST /v1/logs (protobuf and JSON)
 * and the gRPC Export method against a real log store in a temporary directory
 * (../fixture.h, log_fixture.h), then read back: exact stream labels (Loki's resource
 * attribute rule, service_name="unknown_service", the config list
 * logs.otlp_resource_labels), lines (string and structured bodies), timestamps (time,
 * observed time, receive time) and structured metadata in its documented order (flattened
 * maps, duplicates resolved, detected_level). Partial success for records refused here
 * (too far in the future) and by the store (line too long); 400 with a google.rpc.Status
 * for undecodable bodies, 415 for other media, 413 over the memory cap, 503 when
 * allocation fails at any step, and nothing stored in every one of those cases; the
 * counters in /metrics; the pure translation on its own; and the conformance example
 * ../shared/conformance/otlp/logs.json (skipped when absent). */
#include "log_fixture.h"

#include "../../../../server/ingest/otlp_json.h"
#include "../../../../server/ingest/otlp_logs.h"
#include "../../../../server/pb_alloc.h"

#define REQ_DESC (&opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor)
#define RESP_DESC \
    (&opentelemetry__proto__collector__logs__v1__export_logs_service_response__descriptor)
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse Resp;

TestSuite(otlp_logs, .init = logfx_setup, .fini = logfx_teardown, .timeout = 60);

/* ---- requests ---- */

static void post(const char *ct, struct vg_str body)
{
    fixture_post(&fx, &mod_otlp_logs, "/v1/logs", ct, NULL, body, arena, &resp);
}

/* Posts a JSON request in the given encoding and expects 200. */
static void export(bool json, struct vg_str body)
{
    fixture_otlp_export(&fx, &mod_otlp_logs, "/v1/logs", REQ_DESC, json, body, arena, &resp);
}

/* The response of the last request (either encoding), from the arena. */
static Resp *answer(bool json)
{
    return (Resp *)fixture_otlp_answer(RESP_DESC, json, &resp, arena);
}

/* A request from one resource with the given attributes, one scope and the records. */
#define ONE(rattrs, scope, records) \
    "{'resourceLogs':[{'resource':{'attributes':[" rattrs "]},'scopeLogs':[{" scope \
    "'logRecords':[" records "]}]}]}"
#define STR(k, v) "{'key':'" k "','value':{'stringValue':'" v "'}}"

/* ---- mapping ---- */

#define SDK_RECORD                                                                          \
    "{'timeUnixNano':'%" PRId64 "','observedTimeUnixNano':'%" PRId64 "','severityNumber':17," \
    "'severityText':'ERROR','traceId':'5B8EFFF798038103D269B633813FC60C'," \
    "'spanId':'eee19b7ec3c1b174','flags':1,'body':{'stringValue':'payment failed'}," \
    "'attributes':[{'key':'http.status_code','value':{'intValue':'502'}}]}"
#define SDK_REQUEST \
    ONE(STR("service.name", "checkout") "," STR("k8s.namespace.name", "prod") "," \
            STR("host.name", "h1"), \
        "'scope':{'name':'app.lib','version':'1.2'},", SDK_RECORD)
#define SDK_STORED                                                                        \
    "k8s_namespace_name=prod,service_name=checkout %" PRId64 " payment failed|host_name=h1," \
    "scope_name=app.lib,scope_version=1.2,severity_text=ERROR,severity_number=17,"          \
    "detected_level=error,trace_id=5b8efff798038103d269b633813fc60c,"                        \
    "span_id=eee19b7ec3c1b174,flags=1,observed_timestamp=%" PRId64 ",http_status_code=502\n"

static void sdk_request(bool json)
{
    int64_t t = now - 5 * 1000000000LL, obs = now - 4 * 1000000000LL;
    export(json, logfx_json(SDK_REQUEST, t, obs));
    Resp *r = answer(json);
    cr_assert_null(r->partial_success);
    if (!json)
        cr_assert_eq(resp.body.len, 0);
    logfx_expect(SDK_STORED, t, obs);
}

Test(otlp_logs, json_record_becomes_a_stream_entry_with_metadata)
{
    sdk_request(true);
}

Test(otlp_logs, protobuf_record_becomes_the_same_entry)
{
    sdk_request(false);
    cr_assert(logfx_counted(&fx, "vigil_ingest_lines_accepted_total{receiver=\"otlp_logs_http\"} 1"));
    cr_assert(logfx_counted(&fx, "vigil_ingest_streams_created_total{receiver=\"otlp_logs_http\"} 1"));
    cr_assert(logfx_counted(&fx, "vigil_ingest_requests_total{receiver=\"otlp_logs_http\",code=\"200\"} 1"));
}

Test(otlp_logs, every_default_resource_label_and_unknown_service)
{
    int64_t t = now - 1000;
    export(false,
           logfx_json("{'resourceLogs':["
                      "{'resource':{'attributes':[" STR("k8s.pod.name", "p-1") ","
                      STR("k8s.container.name", "c") "," STR("cloud.region", "eu-west-1") ","
                      STR("deployment.environment.name", "staging") ","
                      STR("service.namespace", "shop") "," STR("os.type", "linux") ","
                      "{'key':'k8s.cluster.name','value':{'stringValue':''}}]},"
                      "'scopeLogs':[{'logRecords':[{'timeUnixNano':'%" PRId64 "',"
                      "'body':{'stringValue':'x'}}]}]}]}",
                      t));
    logfx_expect("cloud_region=eu-west-1,deployment_environment_name=staging,k8s_container_name=c,"
                 "k8s_pod_name=p-1,service_name=unknown_service,service_namespace=shop %" PRId64
                 " x|os_type=linux\n",
                 t);
}

Test(otlp_logs, configured_resource_labels_join_the_defaults)
{
    cr_assert_eq(config_set(fx.cfg, "logs.otlp_resource_labels", "host.name,team", &err), 0,
                 "%s", err.msg);
    int64_t t = now - 1000;
    export(true, logfx_json(ONE(STR("service.name", "a") "," STR("host.name", "h") ","
                                 "{'key':'team','value':{'intValue':'7'}}",
                             "", "{'timeUnixNano':'%" PRId64 "','body':{'stringValue':'x'}}"),
                            t));
    logfx_expect("host_name=h,service_name=a,team=7 %" PRId64 " x|\n", t);
}

Test(otlp_logs, bodies_of_every_type_become_lines)
{
    int64_t t = now - 1000000;
#define REC(n, body) "{'timeUnixNano':'%" PRId64 "'" body "}"
    export(true,
           logfx_json(ONE(STR("service.name", "b"), "",
                       REC(0, ",'body':{'kvlistValue':{'values':[" STR("msg", "hi") ","
                              "{'key':'n','value':{'intValue':'3'}}]}}") ","
                       REC(1, ",'body':{'intValue':'42'}") "," REC(2, ",'body':{'boolValue':true}")
                       "," REC(3, "") ","
                       REC(4, ",'body':{'arrayValue':{'values':[{'doubleValue':1.5},"
                              "{'stringValue':'q\\\"'}]}}")),
                      t, t + 1, t + 2, t + 3, t + 4));
#undef REC
    logfx_expect("service_name=b %" PRId64 " {\"msg\":\"hi\",\"n\":3}|\n"
                 "service_name=b %" PRId64 " 42|\n"
                 "service_name=b %" PRId64 " true|\n"
                 "service_name=b %" PRId64 " |\n"
                 "service_name=b %" PRId64 " [1.5,\"q\\\"\"]|\n",
                 t, t + 1, t + 2, t + 3, t + 4);
}

Test(otlp_logs, time_falls_back_to_observed_then_receive_time)
{
    int64_t obs = now - 7000;
    int64_t before = fixture_now_ms() * 1000000;
    export(false, logfx_json(ONE(STR("service.name", "c"), "",
                              "{'observedTimeUnixNano':'%" PRId64 "','body':{'stringValue':'o'}},"
                              "{'body':{'stringValue':'r'}}"),
                             obs));
    int64_t after = (fixture_now_ms() + 1) * 1000000;
    logfx_dump(&fx, &dump);
    /* observed time only: no observed_timestamp pair (it is the entry's time). */
    char want[128];
    snprintf(want, sizeof want, "service_name=c %" PRId64 " o|\n", obs);
    cr_assert(strncmp(dump.p, want, strlen(want)) == 0, "%s", dump.p);
    int64_t rt;
    cr_assert_eq(sscanf(dump.p + strlen(want), "service_name=c %" SCNd64 " r|\n", &rt), 1,
                 "%s", dump.p);
    cr_assert(rt >= before && rt <= after, "%" PRId64 " not in [%" PRId64 ", %" PRId64 "]", rt,
              before, after);
}

Test(otlp_logs, attributes_are_flattened_normalised_and_the_record_wins)
{
    int64_t t = now - 1000;
    export(true,
           logfx_json(ONE(STR("service.name", "d") "," STR("env", "resource"),
                       "'scope':{'name':'s','attributes':[" STR("env", "scope") ","
                       STR("lib.kind", "k") "]},",
                       "{'timeUnixNano':'%" PRId64 "','severityText':'Warning',"
                       "'body':{'stringValue':'x'},'attributes':["
                       "{'key':'http','value':{'kvlistValue':{'values':["
                       STR("request.method", "GET") ","
                       "{'key':'hdr','value':{'kvlistValue':{'values':[" STR("a", "1") "]}}}]}}},"
                       "{'key':'tags','value':{'arrayValue':{'values':[{'stringValue':'x'},"
                       "{'intValue':'2'}]}}},"
                       "{'key':'2xx','value':{'boolValue':false}},"
                       "{'key':'...','value':{'stringValue':'dropped'}},"
                       STR("env", "record") "]}"),
                      t));
    logfx_expect("service_name=d %" PRId64 " x|scope_name=s,lib_kind=k,severity_text=Warning,"
                 "detected_level=warn,http_request_method=GET,http_hdr_a=1,tags=[\"x\",2],"
                 "key_2xx=false,env=record\n",
                 t);
}

Test(otlp_logs, detected_level_from_number_then_text)
{
    static const struct {
        int number;
        const char *text, *level;
    } cases[] = {
        { 1, "", "trace" },      { 8, "", "debug" },      { 9, "whatever", "info" },
        { 16, "", "warn" },      { 20, "", "error" },     { 24, "", "fatal" },
        { 0, "NOTICE", "info" }, { 0, "crit", "critical" }, { 0, "Emergency", "fatal" },
        { 0, "err", "error" },   { 0, "verbose", NULL },  { 0, "", NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct otlp_logs_batch b;
        struct vg_str body = logfx_json(ONE(STR("service.name", "e"), "",
                                         "{'timeUnixNano':'1','severityNumber':%d,"
                                         "'severityText':'%s'}"),
                                        cases[i].number, cases[i].text);
        otlp_logs_request *req;
        cr_assert_eq(otlp_logs_decode(body.p, body.len, true, arena, &req, &err), 0, "%s",
                     err.msg);
        struct otlp_logs_opts o = { .now_ns = now, .max_future_ns = 0 };
        cr_assert_eq(otlp_logs_translate(req, &o, arena, &b, &err), 0);
        cr_assert_eq(b.nstreams, 1);
        const struct lentry *e = &b.streams[0].entries[0];
        struct vg_str got = { NULL, 0 };
        for (size_t k = 0; k < e->nmeta; k++)
            if (vg_str_eq_c(e->meta[k].name, "detected_level"))
                got = e->meta[k].value;
        if (cases[i].level)
            cr_assert(vg_str_eq_c(got, cases[i].level), "case %zu: %.*s", i, (int)got.len,
                      got.p);
        else
            cr_assert_null(got.p, "case %zu", i);
    }
}

Test(otlp_logs, translation_groups_by_resource_and_keeps_order)
{
    struct vg_str body = logfx_json(
        "{'resourceLogs':["
        "{'resource':{'attributes':[" STR("service.name", "a") "]},'scopeLogs':["
        "{'logRecords':[{'timeUnixNano':'3'},{'timeUnixNano':'1'}]},{'logRecords':[]},"
        "{'logRecords':[{'timeUnixNano':'2'}]}]},"
        "{'resource':{'attributes':[" STR("service.name", "b") "]},'scopeLogs':[]},"
        "{'scopeLogs':[{'logRecords':[{'timeUnixNano':'9'}]}]}]}");
    otlp_logs_request *req;
    cr_assert_eq(otlp_logs_decode(body.p, body.len, true, arena, &req, &err), 0, "%s", err.msg);
    struct otlp_logs_opts o = { .now_ns = 100, .max_future_ns = 0 };
    struct otlp_logs_batch b;
    cr_assert_eq(otlp_logs_translate(req, &o, arena, &b, &err), 0);
    cr_assert_eq(b.records, 4);
    cr_assert_eq(b.rejected, 0);
    cr_assert_eq(b.nstreams, 2);
    cr_assert_eq(b.streams[0].nentries, 3);
    cr_assert_eq(b.streams[0].entries[0].t, 3);
    cr_assert_eq(b.streams[0].entries[1].t, 1);
    cr_assert_eq(b.streams[0].entries[2].t, 2);
    cr_assert(vg_str_eq_c(labels_get(b.streams[1].labels, b.streams[1].nlabels, "service_name"),
                          "unknown_service"));
}

Test(otlp_logs, translation_fails_cleanly_out_of_memory)
{
    struct vg_str body = fixture_otlp_pb(REQ_DESC, logfx_json(SDK_REQUEST, now, now), arena);
    otlp_logs_request *req;
    cr_assert_eq(otlp_logs_decode(body.p, body.len, false, arena, &req, &err), 0, "%s",
                 err.msg);
    struct otlp_logs_opts o = { .now_ns = now, .max_future_ns = 0 };
    struct otlp_logs_batch b;
    int rc = -1;
    for (uint64_t n = 1; n < 10000 && rc != 0; n++) {
        struct vg_arena *a = vg_arena_new(64);
        cr_assert_not_null(a);
        vg_alloc_fail_after(n);
        rc = otlp_logs_translate(req, &o, a, &b, &err);
        vg_alloc_fail_after(0);
        if (rc != 0) {
            cr_assert_eq(rc, VG_ENOMEM);
            cr_assert_eq(b.nstreams, 0);
        } else {
            cr_assert_eq(b.nstreams, 1);
            cr_assert_eq(b.streams[0].entries[0].nmeta, 11);
        }
        vg_arena_free(a);
    }
    cr_assert_eq(rc, 0);
}

/* ---- partial success ---- */

Test(otlp_logs, far_future_records_are_refused_and_the_rest_stored)
{
    int64_t ok = now - 1000, late = now + 3600 * 1000000000LL;
    for (int json = 0; json < 2; json++) {
        export(json, logfx_json(ONE(STR("service.name", "f"), "",
                                 "{'timeUnixNano':'%" PRId64 "','body':{'stringValue':'ok'}},"
                                 "{'timeUnixNano':'%" PRId64 "','body':{'stringValue':'late'}},"
                                 "{'timeUnixNano':'18446744073709551615'}"),
                                ok + json, late));
        Resp *r = answer(json);
        cr_assert_not_null(r->partial_success);
        cr_assert_eq(r->partial_success->rejected_log_records, 2);
        cr_assert(strstr(r->partial_success->error_message, "2 of 3 log records rejected") &&
                      strstr(r->partial_success->error_message, "too_far_in_future"),
                  "%s", r->partial_success->error_message);
    }
    logfx_expect("service_name=f %" PRId64 " ok|\nservice_name=f %" PRId64 " ok|\n", ok, ok + 1);
    cr_assert(logfx_counted(&fx, "vigil_ingest_lines_rejected_total{receiver=\"otlp_logs_http\","
                                 "reason=\"too_far_in_future\"} 4"));
}

Test(otlp_logs, records_the_store_refuses_are_partial_success)
{
    size_t n = 300 * 1024; /* over the store's 256 KiB line limit */
    char *big = vg_arena_alloc(arena, n + 1);
    memset(big, 'a', n);
    big[n] = 0;
    int64_t t = now - 1000;
    struct vg_str body = logfx_json(ONE(STR("service.name", "g"), "",
                                     "{'timeUnixNano':'%" PRId64 "','body':{'stringValue':'BIG'}},"
                                     "{'timeUnixNano':'%" PRId64 "','body':{'stringValue':'small'}}"),
                                    t, t + 1);
    /* Splice the long line in place of BIG. */
    const char *at = strstr(body.p, "BIG");
    struct vg_buf b;
    vg_buf_init(&b);
    vg_buf_append(&b, body.p, (size_t)(at - body.p));
    vg_buf_append(&b, big, n);
    vg_buf_puts(&b, at + 3);
    post("application/json", (struct vg_str){ b.p, b.len });
    cr_assert_eq(resp.status, 200);
    Resp *r = answer(true);
    vg_buf_free(&b);
    cr_assert_not_null(r->partial_success);
    cr_assert_eq(r->partial_success->rejected_log_records, 1);
    cr_assert(strstr(r->partial_success->error_message, "rejected by the store") &&
                  strstr(r->partial_success->error_message, "line of 307200 bytes"),
              "%s", r->partial_success->error_message);
    logfx_expect("service_name=g %" PRId64 " small|\n", t + 1);
    cr_assert(logfx_counted(&fx, "vigil_ingest_lines_rejected_total{receiver=\"otlp_logs_http\","
                                 "reason=\"line_too_long\"} 1"));
}

Test(otlp_logs, too_many_metadata_pairs_are_refused_by_the_store)
{
    /* 200 resource attributes: every record of the resource carries more pairs than an
     * entry may (LENTRY_MAX_META); a record with few attributes of another resource
     * passes. */
    int64_t t = now - 1000;
    struct vg_buf b;
    vg_buf_init(&b);
    vg_buf_puts(&b, "{\"resourceLogs\":[{\"resource\":{\"attributes\":[");
    for (int i = 0; i < 200; i++)
        vg_buf_printf(&b, "%s{\"key\":\"a%d\",\"value\":{\"stringValue\":\"v\"}}",
                      i ? "," : "", i);
    vg_buf_printf(&b, "]},\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":\"%" PRId64
                      "\"},{\"timeUnixNano\":\"%" PRId64 "\"}]}]},"
                      "{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":\"%" PRId64
                      "\",\"body\":{\"stringValue\":\"fine\"}}]}]}]}",
                  t, t, t);
    post("application/json", (struct vg_str){ b.p, b.len });
    vg_buf_free(&b);
    cr_assert_eq(resp.status, 200);
    Resp *r = answer(true);
    cr_assert_not_null(r->partial_success);
    cr_assert_eq(r->partial_success->rejected_log_records, 2);
    cr_assert(strstr(r->partial_success->error_message, "metadata pairs"), "%s",
              r->partial_success->error_message);
    logfx_expect("service_name=unknown_service %" PRId64 " fine|\n", t);
    cr_assert(logfx_counted(&fx, "vigil_ingest_lines_rejected_total{receiver=\"otlp_logs_http\","
                                 "reason=\"metadata_too_large\"} 2"));
}

/* ---- errors ---- */

Test(otlp_logs, undecodable_bodies_are_400_and_store_nothing)
{
    static const uint8_t bad_pb[] = { 0x0a, 0x05, 0x0a, 0x03, 0x0a };
    post("application/x-protobuf", (struct vg_str){ (const char *)bad_pb, sizeof bad_pb });
    cr_assert_eq(resp.status, 400);
    cr_assert_str_eq(resp.content_type, "application/x-protobuf");
    /* google.rpc.Status: code 3 (INVALID_ARGUMENT), then the message. */
    cr_assert(resp.body.len > 2 && resp.body.p[0] == 0x08 && resp.body.p[1] == 3);
    cr_assert(memmem(resp.body.p, resp.body.len, "malformed protobuf", 18));

    post("application/json", VG_STR("{'resourceLogs':"));
    cr_assert_eq(resp.status, 400);
    cr_assert_str_eq(resp.content_type, "application/json");
    cr_assert(strncmp(resp.body.p, "{\"code\":3,\"message\":", 20) == 0, "%s", resp.body.p);

    post("application/json", logfx_json("{'resourceLogs':[{'scopeLogs':[{'logRecords':["
                                      "{'timeUnixNano':{}}]}]}]}"));
    cr_assert_eq(resp.status, 400);
    cr_assert(strstr(resp.body.p, "timeUnixNano"), "%s", resp.body.p);

    /* A valid record in front of the bad one is not stored either. */
    post("application/json", logfx_json(ONE(STR("service.name", "h"), "",
                                         "{'timeUnixNano':'1','body':{'stringValue':'x'}},"
                                         "{'traceId':'xyz'}")));
    cr_assert_eq(resp.status, 400);
    cr_assert_eq(logfx_count(&fx), 0);
    cr_assert(logfx_counted(&fx, "vigil_ingest_requests_total{receiver=\"otlp_logs_http\",code=\"400\"} 4"));
}

Test(otlp_logs, other_media_types_are_415)
{
    post("text/plain", VG_STR("x"));
    cr_assert_eq(resp.status, 415);
    post(NULL, VG_STR("x"));
    cr_assert_eq(resp.status, 415);
    fixture_post(&fx, &mod_otlp_logs, "/v1/logs", "application/json", "br", VG_STR("{}"), arena,
                 &resp);
    cr_assert_eq(resp.status, 415);
    cr_assert(logfx_counted(&fx, "vigil_ingest_requests_total{receiver=\"otlp_logs_http\",code=\"415\"} 3"));
}

Test(otlp_logs, over_the_memory_cap_is_413)
{
    cr_assert_eq(config_set(fx.cfg, "limits.max_decoded_bytes", "1024", &err), 0, "%s", err.msg);
    struct vg_buf b;
    vg_buf_init(&b);
    vg_buf_puts(&b, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[");
    for (int i = 0; i < 400; i++)
        vg_buf_printf(&b, "%s{\"timeUnixNano\":\"%d\",\"body\":{\"stringValue\":\"line %d\"}}",
                      i ? "," : "", i + 1, i);
    vg_buf_puts(&b, "]}]}]}");
    struct vg_str body = fixture_otlp_pb(REQ_DESC, (struct vg_str){ b.p, b.len }, arena);
    vg_buf_free(&b);
    struct vg_arena *keep = arena;
    arena = vg_arena_new(64);
    post("application/x-protobuf", body);
    vg_arena_free(arena);
    arena = keep;
    cr_assert_eq(resp.status, 413, "%d %.*s", resp.status, (int)resp.body.len, resp.body.p);
    cr_assert(memmem(resp.body.p, resp.body.len, "max_decoded_bytes", 17));
    cr_assert_eq(logfx_count(&fx), 0);
}

static uint64_t lines_stored(void)
{
    return logfx_count(&fx);
}

Test(otlp_logs, allocation_failure_is_503_or_413_and_stores_nothing)
{
    int64_t t = now - 5000, obs = now - 4000;
    struct vg_str body = fixture_otlp_pb(REQ_DESC, logfx_json(SDK_REQUEST, t, obs), arena);
    fixture_post_failing_allocs(&fx, &mod_otlp_logs, "/v1/logs", "application/x-protobuf", body,
                                &resp, lines_stored);
    /* The first acknowledged export may have been durable without reaching the store's
     * memory (logstore.h); the receiver itself must be none the worse: */
    export(false, logfx_json(SDK_REQUEST, t + 1, obs));
    cr_assert(strstr(logfx_stored(), "payment failed|host_name=h1"), "%s", dump.p);
}

/* ---- gRPC ---- */

Test(otlp_logs, grpc_export_stores_and_answers)
{
    int64_t t = now - 5000, obs = now - 4000;
    struct vg_str body = fixture_otlp_pb(REQ_DESC, logfx_json(SDK_REQUEST, t, obs), arena);
    struct vg_buf out;
    vg_buf_init(&out);
    cr_assert_eq(mod_otlp_logs.ngrpc, 1);
    cr_assert_str_eq(mod_otlp_logs.grpc_methods[0].path,
                     "/opentelemetry.proto.collector.logs.v1.LogsService/Export");
    cr_assert_eq(mod_otlp_logs.grpc_methods[0].fn(&fx.v, (const unsigned char *)body.p, body.len,
                                                  &out, &err),
                 0, "%s", err.msg);
    cr_assert_eq(out.len, 0); /* everything stored: an empty response */
    logfx_expect(SDK_STORED, t, obs);
    static const unsigned char junk[] = { 0xff, 0xff };
    cr_assert_eq(otlp_logs_grpc_export(&fx.v, junk, sizeof junk, &out, &err), VG_EINVAL);
    cr_assert(logfx_counted(&fx, "vigil_ingest_requests_total{receiver=\"otlp_logs_grpc\",code=\"0\"} 1"));
    cr_assert(logfx_counted(&fx, "vigil_ingest_requests_total{receiver=\"otlp_logs_grpc\",code=\"3\"} 1"));
    vg_buf_free(&out);
}

/* ---- conformance ---- */

/* ../shared/conformance/otlp/<name>: from $VIGIL_SHARED_DIR, else beside the checkout
 * found from this file's path (relative to the build folder that holds build.ninja, an
 * ancestor of this executable, when the compiler was given a relative path). NULL when
 * absent; the bytes live in the arena. */
static char *read_shared(const char *name, size_t *len)
{
    char path[3 * PATH_MAX];
    const char *env = getenv("VIGIL_SHARED_DIR");
    char root[PATH_MAX] = "";
    if (env) {
        snprintf(path, sizeof path, "%s/conformance/otlp/%s", env, name);
    } else {
        snprintf(root, sizeof root, "%s", __FILE__);
        char *cut = strstr(root, "tests/unit/server/ingest/");
        cr_assert_not_null(cut);
        *cut = 0;
        char base[PATH_MAX] = "";
        if (root[0] != '/') {
            ssize_t k = readlink("/proc/self/exe", base, sizeof base - 1);
            base[k > 0 ? k : 0] = 0;
            char *slash;
            while ((slash = strrchr(base, '/')) != NULL) {
                *slash = 0;
                char probe[PATH_MAX + 16];
                snprintf(probe, sizeof probe, "%s/build.ninja", base);
                if (access(probe, R_OK) == 0)
                    break;
            }
            strcat(base, "/");
        }
        snprintf(path, sizeof path, "%s%s../shared/conformance/otlp/%s", base, root, name);
    }
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *data = vg_arena_alloc(arena, 1 << 20);
    *len = fread(data, 1, (1 << 20) - 1, f);
    fclose(f);
    data[*len] = 0;
    return data;
}

Test(otlp_logs, conformance_example_is_stored)
{
    size_t len;
    char *json = read_shared("logs.json", &len);
    if (!json)
        cr_skip_test("../shared/conformance/otlp/logs.json not found");
    /* Its record is from 2018: the fixture's store keeps everything (no retention) and
     * a new stream has no out-of-order floor, so it is stored; twice, once per encoding. */
    for (int enc = 0; enc < 2; enc++) {
        export(!enc, (struct vg_str){ json, len });
        cr_assert_null(answer(!enc)->partial_success);
    }
#define ENTRY                                                                                \
    "service_name=my.service 1544712660300000000 Example log record|"                     \
    "scope_name=my.library,scope_version=1.0.0,my_scope_attribute=some scope attribute,"  \
    "severity_text=Information,severity_number=10,detected_level=info,"                    \
    "trace_id=5b8efff798038103d269b633813fc60c,span_id=eee19b7ec3c1b174,"                  \
    "observed_timestamp=1544712660300000000,string_attribute=some string,"                 \
    "boolean_attribute=true,int_attribute=10,double_attribute=637.704,"                    \
    "array_attribute=[\"many\",\"values\"],map_attribute_some_map_key=some value\n"
    logfx_expect(ENTRY ENTRY);
#undef ENTRY
}
