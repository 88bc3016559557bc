/* Tests server/api/tempo.c: GET /api/traces/<id> and /api/v2/traces/<id> over spans written
 * straight into a real span store (tests/unit/server/fixture.h): the exact JSON of both
 * shapes, the protobuf answers (unpacked again), 64-bit ids, 404 for unknown traces, 400
 * for malformed ids, /api/echo, and allocation failure at every step. */
#include "../fixture.h"

#include "../../../../server/api/tempo.h"
#include "../../../../server/ingest/otlp_traces.h"
#include "../../../../server/pb_alloc.h"

static struct server_fixture fx;
static struct http_response resp;

#define TID "0000000000000000463ac35c9f6413ad"

static void setup(void)
{
    fixture_open(&fx);
    fixture_open_traces(&fx);
    memset(&resp, 0, sizeof resp);
    vg_buf_init(&resp.body);
    static const struct span_attr res[] = {
        { .key = VG_STR("service.name"), .type = SPAN_VAL_STRING, .v.s = VG_STR("shop") },
    };
    static const struct span_attr attrs[] = {
        { .key = VG_STR("n"), .type = SPAN_VAL_INT, .v.i = -3 },
    };
    struct span s = {
        .trace_id = { [8] = 0x46, 0x3a, 0xc3, 0x5c, 0x9f, 0x64, 0x13, 0xad },
        .span_id = { 1, 2, 3, 4, 5, 6, 7, 8 },
        .kind = SPAN_KIND_CLIENT, .status = SPAN_STATUS_OK,
        .start_ns = 1000, .end_ns = 3000, .name = VG_STR("op"), .service = VG_STR("shop"),
        .scope_name = VG_STR("lib"), .resource_attrs = res, .nresource_attrs = 1,
        .attrs = attrs, .nattrs = 1,
    };
    struct spanstore_write_result wr;
    struct vg_err err;
    cr_assert_eq(spanstore_write(fx.v.traces, &s, 1, &wr, &err), 0, "%s", err.msg);
    cr_assert_eq(wr.accepted, 1);
}

static void teardown(void)
{
    vg_buf_free(&resp.body);
    fixture_close(&fx);
}

TestSuite(tempo, .init = setup, .fini = teardown, .timeout = 30);

/* Runs the route matching path (GET). */
static const char *get(const char *path)
{
    for (size_t i = 0; i < mod_tempo.nroutes; i++) {
        const struct http_route *r = &mod_tempo.routes[i];
        if (r->prefix ? !strncmp(path, r->path, strlen(r->path)) : !strcmp(path, r->path)) {
            vg_buf_free(&resp.body);
            fixture_call(&fx, r->fn, path, NULL, 0, &resp);
            return vg_buf_cstr(&resp.body);
        }
    }
    cr_assert_fail("no route for %s", path);
    return NULL;
}

#define BATCH \
    "{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":" \
    "\"shop\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"lib\"},\"spans\":[{\"traceId\":\"" TID \
    "\",\"spanId\":\"0102030405060708\",\"name\":\"op\",\"kind\":3,\"startTimeUnixNano\":" \
    "\"1000\",\"endTimeUnixNano\":\"3000\",\"attributes\":[{\"key\":\"n\",\"value\":" \
    "{\"intValue\":\"-3\"}}],\"status\":{\"code\":1}}]}]}"

Test(tempo, v1_json_lists_batches)
{
    cr_assert_str_eq(get("/api/traces/" TID), "{\"batches\":[" BATCH "]}");
    cr_assert_eq(resp.status, 200);
    cr_assert_str_eq(resp.content_type, "application/json");
    /* 64-bit form and upper case name the same trace */
    cr_assert_str_eq(get("/api/traces/463AC35C9F6413AD"), "{\"batches\":[" BATCH "]}");
}

Test(tempo, v2_json_wraps_the_trace)
{
    cr_assert_str_eq(get("/api/v2/traces/" TID), "{\"trace\":{\"resourceSpans\":[" BATCH "]}}");
    cr_assert_eq(resp.status, 200);
}

static otlp_traces_request *unpack(struct vg_arena *a, const uint8_t *p, size_t n)
{
    ProtobufCAllocator al;
    pb_alloc_from_arena(a, &al);
    ProtobufCMessage *m = protobuf_c_message_unpack(
        &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
        &al, n, p);
    cr_assert_not_null(m);
    return (otlp_traces_request *)m;
}

Test(tempo, protobuf_when_asked)
{
    struct vg_arena *a = vg_arena_new(0);
    tempo_trace_by_id(&fx.v, TID, false, true, a, &resp);
    cr_assert_eq(resp.status, 200);
    cr_assert_str_eq(resp.content_type, "application/protobuf");
    otlp_traces_request *t = unpack(a, (const uint8_t *)resp.body.p, resp.body.len);
    cr_assert_eq(t->n_resource_spans, 1);
    cr_assert_str_eq(t->resource_spans[0]->scope_spans[0]->spans[0]->name, "op");
    size_t v1len = resp.body.len;
    vg_buf_reset(&resp.body);
    tempo_trace_by_id(&fx.v, TID, true, true, a, &resp);
    cr_assert_eq(resp.status, 200);
    cr_assert_eq((uint8_t)resp.body.p[0], 0x0a); /* TraceByIDResponse.trace */
    cr_assert_eq((size_t)(uint8_t)resp.body.p[1], v1len);
    t = unpack(a, (const uint8_t *)resp.body.p + 2, resp.body.len - 2);
    cr_assert_eq(t->resource_spans[0]->scope_spans[0]->spans[0]->kind, 3);
    vg_arena_free(a);
}

Test(tempo, unknown_and_malformed_ids)
{
    cr_assert_str_eq(get("/api/traces/0123"), "trace 0123 not found\n");
    cr_assert_eq(resp.status, 404);
    get("/api/v2/traces/0123");
    cr_assert_eq(resp.status, 404);
    cr_assert(strstr(get("/api/traces/xyz"), "invalid trace id \"xyz\""));
    cr_assert_eq(resp.status, 400);
    get("/api/traces/");
    cr_assert_eq(resp.status, 400);
    get("/api/traces/" TID "0");
    cr_assert_eq(resp.status, 400);
}

Test(tempo, echo)
{
    cr_assert_str_eq(get("/api/echo"), "echo");
    cr_assert_eq(resp.status, 200);
}

Test(tempo, allocation_failure_answers_an_error)
{
    for (uint64_t n = 1; n < 200; n++) {
        fx.fail_after = n;
        bool complete = false;
        const char *body = NULL;
        for (size_t i = 0; i < mod_tempo.nroutes; i++)
            if (!strcmp(mod_tempo.routes[i].path, "/api/traces/")) {
                vg_buf_free(&resp.body);
                complete = fixture_call(&fx, mod_tempo.routes[i].fn, "/api/traces/" TID, NULL,
                                        0, &resp);
                body = vg_buf_cstr(&resp.body);
            }
        if (resp.status == 200 && complete) {
            cr_assert_str_eq(body, "{\"batches\":[" BATCH "]}");
            return;
        }
        cr_assert(resp.status >= 500 || !complete, "n=%llu: %d %s", (unsigned long long)n,
                  resp.status, body);
    }
    cr_assert_fail("never succeeded");
}
