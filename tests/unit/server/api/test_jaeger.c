/* Tests server/api/jaeger.c: every /jaeger/api endpoint over spans written into a real span
 * store (tests/unit/server/fixture.h). Responses are read back with jansson and checked
 * field by field: the structured envelope, microsecond times, ids, references (parent and
 * link), processes (one per resource), tag types and order (attributes and the synthetic
 * span.kind / otel.status_code / error / otel.scope.* / w3c.tracestate tags), logs from
 * events; the 404 and 400 shapes; search by service, operation, tags as a JSON map and as
 * key:value, start/end in µs and their absence (lookback), min/maxDuration, limit and
 * traceID; dependencies; the parameter parsers; and allocation failure at every step.
 *
 * The store holds (times relative to base = now - 10 min):
 *   trace A (128-bit id) at base:
 *     root   frontend "GET /checkout" SERVER, 10 ms, resource host.name=web-1, scope
 *            http-lib 1.2.3, attrs of every type, an "exception" event, tracestate
 *     db     db "SELECT orders" CLIENT, child of root, 3 ms, ERROR "boom", a link to B
 *     render frontend "render" INTERNAL, child of root, 1 ms (same resource as root)
 *   trace B (64-bit id) at base - 30 min: frontend "GET /health" SERVER, 200 µs
 *   trace C at now - 3 h: frontend "GET /old" SERVER */
#include "../fixture.h"

#include "../../../../server/api/jaeger.h"
#include "../../../../server/ingest/otlp_traces.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>

static struct server_fixture fx;
static struct http_response resp;
static json_t *doc;
static int64_t base_ns, base_b_ns;
static uint8_t array_blob[64];
static size_t array_blob_len;

#define TID_A "5b8efff798038103d269b633813fc60c"
#define TID_B "00000000000000000000000000abcdef"
#define SHORT_B "0000000000abcdef"

static const uint8_t tid_a[16] = { 0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03,
                                   0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c };
static const uint8_t tid_b[16] = { [13] = 0xab, 0xcd, 0xef };
static const uint8_t tid_c[16] = { [15] = 0x0c };

static void write_spans(const struct span *s, size_t n)
{
    struct spanstore_write_result wr;
    struct vg_err err;
    cr_assert_eq(spanstore_write(fx.v.traces, s, n, &wr, &err), 0, "%s", err.msg);
    cr_assert_eq(wr.accepted, n, "%s", wr.first_reject);
}

/* An OTLP ArrayValue ["a", 1] packed, as the receiver stores an array attribute. */
static void pack_array(void)
{
    Opentelemetry__Proto__Common__V1__AnyValue a, b, *vals[2] = { &a, &b };
    opentelemetry__proto__common__v1__any_value__init(&a);
    opentelemetry__proto__common__v1__any_value__init(&b);
    a.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    a.string_value = "a";
    b.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    b.int_value = 1;
    Opentelemetry__Proto__Common__V1__ArrayValue arr;
    opentelemetry__proto__common__v1__array_value__init(&arr);
    arr.values = vals;
    arr.n_values = 2;
    array_blob_len = protobuf_c_message_get_packed_size(&arr.base);
    cr_assert_lt(array_blob_len, sizeof array_blob);
    protobuf_c_message_pack(&arr.base, array_blob);
}

static void setup(void)
{
    fixture_open(&fx);
    fixture_open_traces(&fx);
    memset(&resp, 0, sizeof resp);
    vg_buf_init(&resp.body);
    pack_array();
    int64_t now = (int64_t)fixture_now_ms() * 1000000;
    base_ns = now - (int64_t)600 * 1000000000 + 123; /* 123 ns: µs are truncated */
    base_b_ns = now - (int64_t)1800 * 1000000000;

    static const struct span_attr fe_res[] = {
        { .key = VG_STR("service.name"), .type = SPAN_VAL_STRING, .v.s = VG_STR("frontend") },
        { .key = VG_STR("host.name"), .type = SPAN_VAL_STRING, .v.s = VG_STR("web-1") },
    };
    static const struct span_attr db_res[] = {
        { .key = VG_STR("service.name"), .type = SPAN_VAL_STRING, .v.s = VG_STR("db") },
    };
    static struct span_attr root_attrs[] = {
        { .key = VG_STR("http.method"), .type = SPAN_VAL_STRING, .v.s = VG_STR("GET") },
        { .key = VG_STR("http.status_code"), .type = SPAN_VAL_INT, .v.i = 500 },
        { .key = VG_STR("ratio"), .type = SPAN_VAL_DOUBLE, .v.d = 0.25 },
        { .key = VG_STR("cached"), .type = SPAN_VAL_BOOL, .v.b = false },
        { .key = VG_STR("blob"), .type = SPAN_VAL_BYTES, .v.s = { "\x01\x02\x03", 3 } },
        { .key = VG_STR("list"), .type = SPAN_VAL_ARRAY },
    };
    root_attrs[5].v.s = (struct vg_str){ (const char *)array_blob, array_blob_len };
    static const struct span_attr ev_attrs[] = {
        { .key = VG_STR("exception.type"), .type = SPAN_VAL_STRING, .v.s = VG_STR("IOError") },
    };
    struct span_event ev = { .time_ns = base_ns + 500000, .name = VG_STR("exception"),
                             .attrs = ev_attrs, .nattrs = 1 };
    struct span_link link = { .span_id = { 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7 } };
    memcpy(link.trace_id, tid_b, 16);
    struct span a[3] = {
        { .span_id = { 0xa1, 1, 1, 1, 1, 1, 1, 1 }, .flags = 0x301, .kind = SPAN_KIND_SERVER,
          .start_ns = base_ns, .end_ns = base_ns + 10000000, .name = VG_STR("GET /checkout"),
          .trace_state = VG_STR("vendor=1"), .service = VG_STR("frontend"),
          .scope_name = VG_STR("http-lib"), .scope_version = VG_STR("1.2.3"),
          .resource_attrs = fe_res, .nresource_attrs = 2, .attrs = root_attrs, .nattrs = 6,
          .events = &ev, .nevents = 1 },
        { .span_id = { 0xa2, 2, 2, 2, 2, 2, 2, 2 }, .parent_span_id = { 0xa1, 1, 1, 1, 1, 1, 1, 1 },
          .kind = SPAN_KIND_CLIENT, .status = SPAN_STATUS_ERROR, .status_message = VG_STR("boom"),
          .start_ns = base_ns + 1000000, .end_ns = base_ns + 4000000,
          .name = VG_STR("SELECT orders"), .service = VG_STR("db"), .resource_attrs = db_res,
          .nresource_attrs = 1, .links = &link, .nlinks = 1 },
        { .span_id = { 0xa3, 3, 3, 3, 3, 3, 3, 3 }, .parent_span_id = { 0xa1, 1, 1, 1, 1, 1, 1, 1 },
          .kind = SPAN_KIND_INTERNAL, .start_ns = base_ns + 5000000, .end_ns = base_ns + 6000000,
          .name = VG_STR("render"), .service = VG_STR("frontend"), .resource_attrs = fe_res,
          .nresource_attrs = 2 },
    };
    for (int i = 0; i < 3; i++)
        memcpy(a[i].trace_id, tid_a, 16);
    write_spans(a, 3);

    static const struct span_attr b_attrs[] = {
        { .key = VG_STR("http.status_code"), .type = SPAN_VAL_INT, .v.i = 200 },
    };
    struct span b = { .span_id = { 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7 },
                      .kind = SPAN_KIND_SERVER, .status = SPAN_STATUS_OK,
                      .start_ns = base_b_ns, .end_ns = base_b_ns + 200000,
                      .name = VG_STR("GET /health"), .service = VG_STR("frontend"),
                      .resource_attrs = fe_res, .nresource_attrs = 1, .attrs = b_attrs,
                      .nattrs = 1 };
    memcpy(b.trace_id, tid_b, 16);
    struct span c = { .span_id = { 0xc0, 1 }, .kind = SPAN_KIND_SERVER,
                      .start_ns = now - (int64_t)3 * 3600 * 1000000000,
                      .end_ns = now - (int64_t)3 * 3600 * 1000000000 + 1000,
                      .name = VG_STR("GET /old"), .service = VG_STR("frontend"),
                      .resource_attrs = fe_res, .nresource_attrs = 1 };
    memcpy(c.trace_id, tid_c, 16);
    struct span bc[2] = { b, c };
    write_spans(bc, 2);
}

static void teardown(void)
{
    json_decref(doc);
    doc = NULL;
    vg_buf_free(&resp.body);
    fixture_close(&fx);
}

TestSuite(jaeger, .init = setup, .fini = teardown, .timeout = 30);

static const struct http_route *route_for(const char *path)
{
    for (size_t i = 0; i < mod_jaeger_api.nroutes; i++) {
        const struct http_route *r = &mod_jaeger_api.routes[i];
        if (r->prefix ? !strncmp(path, r->path, strlen(r->path)) : !strcmp(path, r->path))
            return r;
    }
    cr_assert_fail("no route for %s", path);
    return NULL;
}

/* GET path with key, value, ... NULL; returns the body (also parsed into doc). */
static const char *get(const char *path, ...)
{
    struct http_arg args[16];
    size_t n = 0;
    va_list ap;
    va_start(ap, path);
    for (const char *k; (k = va_arg(ap, const char *)) != NULL && n < 16; n++) {
        args[n].key = k;
        args[n].value = va_arg(ap, const char *);
    }
    va_end(ap);
    vg_buf_free(&resp.body);
    fixture_call(&fx, route_for(path)->fn, path, args, n, &resp);
    json_decref(doc);
    json_error_t je;
    doc = json_loads(vg_buf_cstr(&resp.body), 0, &je);
    cr_assert_not_null(doc, "not JSON (%s): %s", je.text, vg_buf_cstr(&resp.body));
    return vg_buf_cstr(&resp.body);
}

/* The value at a '/'-separated path of keys and array indexes, from doc. */
static json_t *at(const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *v = doc;
    for (char *save, *k = strtok_r(buf, "/", &save); k && v; k = strtok_r(NULL, "/", &save))
        v = k[0] >= '0' && k[0] <= '9' ? json_array_get(v, (size_t)atoi(k)) : json_object_get(v, k);
    cr_assert_not_null(v, "no %s in %s", path, vg_buf_cstr(&resp.body));
    return v;
}

static const char *s_at(const char *path)
{
    json_t *v = at(path);
    cr_assert(json_is_string(v), "%s is not a string", path);
    return json_string_value(v);
}

static json_int_t i_at(const char *path)
{
    json_t *v = at(path);
    cr_assert(json_is_integer(v), "%s is not an integer", path);
    return json_integer_value(v);
}

static size_t n_at(const char *path)
{
    json_t *v = at(path);
    cr_assert(json_is_array(v), "%s is not an array", path);
    return json_array_size(v);
}

static void assert_envelope(size_t total)
{
    cr_assert_eq(resp.status, 200, "%d %s", resp.status, vg_buf_cstr(&resp.body));
    cr_assert_eq(i_at("total"), (json_int_t)total);
    cr_assert_eq(i_at("limit"), 0);
    cr_assert_eq(i_at("offset"), 0);
    cr_assert(json_is_null(at("errors")));
}

static void assert_error(int status, const char *msg_part)
{
    cr_assert_eq(resp.status, status, "%d %s", resp.status, vg_buf_cstr(&resp.body));
    cr_assert(json_is_null(at("data")));
    cr_assert_eq(i_at("total"), 0);
    cr_assert_eq(i_at("errors/0/code"), status);
    cr_assert(strstr(s_at("errors/0/msg"), msg_part), "%s", s_at("errors/0/msg"));
}

/* ---- services and operations ---- */

Test(jaeger, services)
{
    cr_assert_str_eq(get("/jaeger/api/services", NULL),
                     "{\"data\":[\"db\",\"frontend\"],\"total\":2,\"limit\":0,\"offset\":0,"
                     "\"errors\":null}");
    cr_assert_eq(resp.status, 200);
    cr_assert_str_eq(resp.content_type, "application/json");
}

Test(jaeger, legacy_operations_are_unique_names)
{
    get("/jaeger/api/services/frontend/operations", NULL);
    assert_envelope(4);
    cr_assert_str_eq(s_at("data/0"), "GET /checkout");
    cr_assert_str_eq(s_at("data/1"), "GET /health");
    cr_assert_str_eq(s_at("data/2"), "GET /old");
    cr_assert_str_eq(s_at("data/3"), "render");
    get("/jaeger/api/services/nobody/operations", NULL);
    assert_envelope(0);
    get("/jaeger/api/services/frontend", NULL);
    assert_error(404, "no such endpoint");
}

Test(jaeger, operations_with_span_kind)
{
    get("/jaeger/api/operations", "service", "frontend", NULL);
    assert_envelope(4);
    cr_assert_str_eq(s_at("data/3/name"), "render");
    cr_assert_str_eq(s_at("data/3/spanKind"), "internal");
    get("/jaeger/api/operations", "service", "frontend", "spanKind", "server", NULL);
    assert_envelope(3);
    cr_assert_str_eq(s_at("data/0/name"), "GET /checkout");
    cr_assert_str_eq(s_at("data/0/spanKind"), "server");
    get("/jaeger/api/operations", "service", "db", "spanKind", "client", NULL);
    assert_envelope(1);
    cr_assert_str_eq(s_at("data/0/name"), "SELECT orders");
    get("/jaeger/api/operations", "service", "db", "spanKind", "bogus", NULL);
    assert_envelope(0);
    get("/jaeger/api/operations", NULL);
    assert_error(400, "parameter 'service' is required");
}

/* ---- trace by id ---- */

Test(jaeger, trace_by_id_spans_and_references)
{
    get("/jaeger/api/traces/" TID_A, NULL);
    assert_envelope(1);
    cr_assert_eq(n_at("data"), 1);
    cr_assert_str_eq(s_at("data/0/traceID"), TID_A);
    cr_assert(json_is_null(at("data/0/warnings")));
    cr_assert_eq(n_at("data/0/spans"), 3);
    /* sorted by start: root, db, render */
    cr_assert_str_eq(s_at("data/0/spans/0/traceID"), TID_A);
    cr_assert_str_eq(s_at("data/0/spans/0/spanID"), "a101010101010101");
    cr_assert_str_eq(s_at("data/0/spans/0/operationName"), "GET /checkout");
    cr_assert_eq(i_at("data/0/spans/0/flags"), 1);
    cr_assert_eq(i_at("data/0/spans/0/startTime"), (base_ns - 123) / 1000);
    cr_assert_eq(i_at("data/0/spans/0/duration"), 10000);
    cr_assert_eq(n_at("data/0/spans/0/references"), 0);
    cr_assert_str_eq(s_at("data/0/spans/0/processID"), "p1");
    cr_assert(json_is_null(at("data/0/spans/0/warnings")));

    cr_assert_str_eq(s_at("data/0/spans/1/operationName"), "SELECT orders");
    cr_assert_eq(i_at("data/0/spans/1/startTime"), (base_ns - 123) / 1000 + 1000);
    cr_assert_eq(i_at("data/0/spans/1/duration"), 3000);
    cr_assert_eq(i_at("data/0/spans/1/flags"), 0);
    cr_assert_eq(n_at("data/0/spans/1/references"), 2);
    cr_assert_str_eq(s_at("data/0/spans/1/references/0/refType"), "CHILD_OF");
    cr_assert_str_eq(s_at("data/0/spans/1/references/0/traceID"), TID_A);
    cr_assert_str_eq(s_at("data/0/spans/1/references/0/spanID"), "a101010101010101");
    cr_assert_str_eq(s_at("data/0/spans/1/references/1/refType"), "FOLLOWS_FROM");
    cr_assert_str_eq(s_at("data/0/spans/1/references/1/traceID"), SHORT_B);
    cr_assert_str_eq(s_at("data/0/spans/1/references/1/spanID"), "b0b1b2b3b4b5b6b7");
    cr_assert_str_eq(s_at("data/0/spans/1/processID"), "p2");

    cr_assert_str_eq(s_at("data/0/spans/2/operationName"), "render");
    cr_assert_str_eq(s_at("data/0/spans/2/processID"), "p1"); /* same resource as root */
    cr_assert_eq(n_at("data/0/spans/2/references"), 1);
}

Test(jaeger, processes_one_per_resource)
{
    get("/jaeger/api/traces/" TID_A, NULL);
    json_t *procs = at("data/0/processes");
    cr_assert_eq(json_object_size(procs), 2);
    cr_assert_str_eq(s_at("data/0/processes/p1/serviceName"), "frontend");
    cr_assert_eq(n_at("data/0/processes/p1/tags"), 1); /* service.name left out */
    cr_assert_str_eq(s_at("data/0/processes/p1/tags/0/key"), "host.name");
    cr_assert_str_eq(s_at("data/0/processes/p1/tags/0/type"), "string");
    cr_assert_str_eq(s_at("data/0/processes/p1/tags/0/value"), "web-1");
    cr_assert_str_eq(s_at("data/0/processes/p2/serviceName"), "db");
    cr_assert_eq(n_at("data/0/processes/p2/tags"), 0);
}

static void assert_tag(const char *span, int i, const char *key, const char *type)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%d/key", span, i);
    cr_assert_str_eq(s_at(p), key, "%s", p);
    snprintf(p, sizeof p, "%s/%d/type", span, i);
    cr_assert_str_eq(s_at(p), type, "%s of %s", p, key);
}

Test(jaeger, tags_types_and_synthetic_tags)
{
    get("/jaeger/api/traces/" TID_A, NULL);
    const char *t = "data/0/spans/0/tags";
    cr_assert_eq(n_at(t), 10);
    assert_tag(t, 0, "otel.scope.name", "string");
    cr_assert_str_eq(s_at("data/0/spans/0/tags/0/value"), "http-lib");
    assert_tag(t, 1, "otel.scope.version", "string");
    cr_assert_str_eq(s_at("data/0/spans/0/tags/1/value"), "1.2.3");
    assert_tag(t, 2, "http.method", "string");
    cr_assert_str_eq(s_at("data/0/spans/0/tags/2/value"), "GET");
    assert_tag(t, 3, "http.status_code", "int64");
    cr_assert_eq(i_at("data/0/spans/0/tags/3/value"), 500);
    assert_tag(t, 4, "ratio", "float64");
    cr_assert_float_eq(json_real_value(at("data/0/spans/0/tags/4/value")), 0.25, 1e-12);
    assert_tag(t, 5, "cached", "bool");
    cr_assert(json_is_false(at("data/0/spans/0/tags/5/value")));
    assert_tag(t, 6, "blob", "binary");
    cr_assert_str_eq(s_at("data/0/spans/0/tags/6/value"), "AQID");
    assert_tag(t, 7, "list", "string");
    cr_assert_str_eq(s_at("data/0/spans/0/tags/7/value"), "[\"a\",1]");
    assert_tag(t, 8, "span.kind", "string");
    cr_assert_str_eq(s_at("data/0/spans/0/tags/8/value"), "server");
    assert_tag(t, 9, "w3c.tracestate", "string");
    cr_assert_str_eq(s_at("data/0/spans/0/tags/9/value"), "vendor=1");

    t = "data/0/spans/1/tags";
    cr_assert_eq(n_at(t), 4);
    assert_tag(t, 0, "span.kind", "string");
    cr_assert_str_eq(s_at("data/0/spans/1/tags/0/value"), "client");
    assert_tag(t, 1, "otel.status_code", "string");
    cr_assert_str_eq(s_at("data/0/spans/1/tags/1/value"), "ERROR");
    assert_tag(t, 2, "error", "bool");
    cr_assert(json_is_true(at("data/0/spans/1/tags/2/value")));
    assert_tag(t, 3, "otel.status_description", "string");
    cr_assert_str_eq(s_at("data/0/spans/1/tags/3/value"), "boom");
}

Test(jaeger, events_become_logs)
{
    get("/jaeger/api/traces/" TID_A, NULL);
    cr_assert_eq(n_at("data/0/spans/0/logs"), 1);
    cr_assert_eq(i_at("data/0/spans/0/logs/0/timestamp"), (base_ns + 500000) / 1000);
    cr_assert_eq(n_at("data/0/spans/0/logs/0/fields"), 2);
    cr_assert_str_eq(s_at("data/0/spans/0/logs/0/fields/0/key"), "event");
    cr_assert_str_eq(s_at("data/0/spans/0/logs/0/fields/0/type"), "string");
    cr_assert_str_eq(s_at("data/0/spans/0/logs/0/fields/0/value"), "exception");
    cr_assert_str_eq(s_at("data/0/spans/0/logs/0/fields/1/key"), "exception.type");
    cr_assert_str_eq(s_at("data/0/spans/0/logs/0/fields/1/value"), "IOError");
    cr_assert_eq(n_at("data/0/spans/1/logs"), 0);
}

Test(jaeger, short_trace_id_exact_json)
{
    char want[1024];
    snprintf(want, sizeof want,
             "{\"data\":[{\"traceID\":\"" SHORT_B "\",\"spans\":[{\"traceID\":\"" SHORT_B "\","
             "\"spanID\":\"b0b1b2b3b4b5b6b7\",\"flags\":0,\"operationName\":\"GET /health\","
             "\"references\":[],\"startTime\":%" PRId64 ",\"duration\":200,\"tags\":[{\"key\":"
             "\"http.status_code\",\"type\":\"int64\",\"value\":200},{\"key\":\"span.kind\","
             "\"type\":\"string\",\"value\":\"server\"},{\"key\":\"otel.status_code\",\"type\":"
             "\"string\",\"value\":\"OK\"}],\"logs\":[],\"processID\":\"p1\",\"warnings\":null}],"
             "\"processes\":{\"p1\":{\"serviceName\":\"frontend\",\"tags\":[]}},\"warnings\":"
             "null}],\"total\":1,\"limit\":0,\"offset\":0,\"errors\":null}",
             base_b_ns / 1000);
    cr_assert_str_eq(get("/jaeger/api/traces/" TID_B, NULL), want);
    /* the 64-bit form and upper case name the same trace */
    cr_assert_str_eq(get("/jaeger/api/traces/ABCDEF", NULL), want);
}

Test(jaeger, unknown_and_malformed_trace_ids)
{
    cr_assert_str_eq(get("/jaeger/api/traces/0123", NULL),
                     "{\"data\":null,\"total\":0,\"limit\":0,\"offset\":0,\"errors\":"
                     "[{\"code\":404,\"msg\":\"trace not found\"}]}");
    cr_assert_eq(resp.status, 404);
    get("/jaeger/api/traces/xyz", NULL);
    assert_error(400, "invalid trace id \"xyz\"");
    get("/jaeger/api/traces/", NULL);
    assert_error(400, "invalid trace id");
    get("/jaeger/api/traces/" TID_A "0", NULL);
    assert_error(400, "invalid trace id");
    get("/jaeger/api/nothing", NULL);
    assert_error(404, "no such endpoint: /jaeger/api/nothing");
}

/* ---- search ---- */

/* Runs a search and asserts the trace ids returned, in order. */
static void expect_traces(const char *const *ids, size_t n)
{
    assert_envelope(n);
    cr_assert_eq(n_at("data"), n, "%s", vg_buf_cstr(&resp.body));
    for (size_t i = 0; i < n; i++) {
        char p[32];
        snprintf(p, sizeof p, "data/%zu/traceID", i);
        cr_assert_str_eq(s_at(p), ids[i]);
    }
}

#define EXPECT(...)                                                                        \
    do {                                                                                   \
        const char *const want_[] = { __VA_ARGS__ };                                       \
        expect_traces(want_, sizeof want_ / sizeof want_[0]);                              \
    } while (0)
#define EXPECT_NONE() expect_traces(NULL, 0)

Test(jaeger, search_without_start_and_end_takes_the_last_hour)
{
    get("/jaeger/api/traces", "service", "frontend", NULL);
    EXPECT(TID_A, SHORT_B); /* newest first; C (3 h old) outside the default hour */
    cr_assert_eq(n_at("data/0/spans"), 3);         /* whole traces */
    cr_assert_str_eq(s_at("data/0/processes/p2/serviceName"), "db");
    get("/jaeger/api/traces", "service", "frontend", "lookback", "4h", NULL);
    EXPECT(TID_A, SHORT_B, "000000000000000c");
    get("/jaeger/api/traces", "service", "frontend", "lookback", "2d", NULL);
    EXPECT(TID_A, SHORT_B, "000000000000000c");
    get("/jaeger/api/traces", "service", "frontend", "lookback", "1m", NULL);
    EXPECT_NONE();
    get("/jaeger/api/traces", "service", "frontend", "lookback", "custom", NULL);
    EXPECT(TID_A, SHORT_B);
}

Test(jaeger, search_start_end_in_microseconds)
{
    char s[32], e[32];
    snprintf(s, sizeof s, "%" PRId64, base_b_ns / 1000);
    snprintf(e, sizeof e, "%" PRId64, base_b_ns / 1000 + 100);
    get("/jaeger/api/traces", "service", "frontend", "start", s, "end", e, NULL);
    EXPECT(SHORT_B);
    /* end alone: the hour before it */
    snprintf(e, sizeof e, "%" PRId64, base_b_ns / 1000 + 1);
    get("/jaeger/api/traces", "service", "frontend", "end", e, NULL);
    EXPECT(SHORT_B);
    /* start after end: nothing */
    get("/jaeger/api/traces", "service", "frontend", "start", e, "end", s, NULL);
    EXPECT_NONE();
    get("/jaeger/api/traces", "service", "frontend", "start", "yesterday", NULL);
    assert_error(400, "unable to parse param 'start'");
}

Test(jaeger, search_tags_as_json_map)
{
    get("/jaeger/api/traces", "service", "frontend", "tags", "{\"http.status_code\":\"500\"}",
        NULL);
    EXPECT(TID_A);
    get("/jaeger/api/traces", "service", "frontend", "tags", "{\"http.status_code\":200}", NULL);
    EXPECT(SHORT_B);
    get("/jaeger/api/traces", "service", "frontend", "tags",
        "{\"http.method\":\"GET\",\"cached\":\"false\"}", NULL);
    EXPECT(TID_A);
    /* every tag on one span: the db span has the error, not the GET */
    get("/jaeger/api/traces", "service", "frontend", "tags",
        "{\"http.method\":\"GET\",\"error\":\"true\"}", NULL);
    EXPECT_NONE();
    get("/jaeger/api/traces", "service", "db", "tags", "{\"error\":\"true\"}", NULL);
    EXPECT(TID_A);
    get("/jaeger/api/traces", "service", "db", "tags", "{\"otel.status_code\":\"ERROR\"}", NULL);
    EXPECT(TID_A);
    get("/jaeger/api/traces", "service", "frontend", "tags", "{\"otel.status_code\":\"OK\"}",
        NULL);
    EXPECT(SHORT_B);
    get("/jaeger/api/traces", "service", "db", "tags", "{\"span.kind\":\"server\"}", NULL);
    EXPECT_NONE();
    get("/jaeger/api/traces", "service", "db", "tags", "{\"span.kind\":\"client\"}", NULL);
    EXPECT(TID_A);
    get("/jaeger/api/traces", "service", "frontend", "tags", "{}", NULL);
    EXPECT(TID_A, SHORT_B);
    get("/jaeger/api/traces", "service", "frontend", "tags", "{\"http.status_code\":", NULL);
    assert_error(400, "malformed 'tags' parameter");
    get("/jaeger/api/traces", "service", "frontend", "tags", "{\"a\":[1]}", NULL);
    assert_error(400, "must be a string");
}

Test(jaeger, search_tags_as_key_value)
{
    get("/jaeger/api/traces", "service", "frontend", "tags", "http.status_code:500", NULL);
    EXPECT(TID_A);
    get("/jaeger/api/traces", "service", "frontend", "tags", "http.method=\"GET\" cached:false",
        NULL);
    EXPECT(TID_A);
    get("/jaeger/api/traces", "service", "frontend", "tag", "http.status_code:200", NULL);
    EXPECT(SHORT_B);
    get("/jaeger/api/traces", "service", "frontend", "tag", "http.method:GET", "tag",
        "http.status_code:500", NULL);
    EXPECT(TID_A);
    get("/jaeger/api/traces", "service", "frontend", "tag", "nocolon", NULL);
    assert_error(400, "expecting key:value");
    get("/jaeger/api/traces", "service", "frontend", "tags", "lonely", NULL);
    assert_error(400, "is not key:value");
}

Test(jaeger, search_operation_durations_and_limit)
{
    get("/jaeger/api/traces", "service", "frontend", "operation", "render", NULL);
    EXPECT(TID_A);
    get("/jaeger/api/traces", "service", "frontend", "minDuration", "5ms", NULL);
    EXPECT(TID_A);
    get("/jaeger/api/traces", "service", "frontend", "maxDuration", "500us", NULL);
    EXPECT(SHORT_B);
    get("/jaeger/api/traces", "service", "frontend", "minDuration", "2ms", "maxDuration", "5ms",
        NULL);
    EXPECT_NONE();
    get("/jaeger/api/traces", "service", "db", "minDuration", "2ms", "maxDuration", "0.005s",
        NULL);
    EXPECT(TID_A);
    get("/jaeger/api/traces", "service", "frontend", "limit", "1", NULL);
    EXPECT(TID_A);
    get("/jaeger/api/traces", "service", "frontend", "limit", "100000", NULL);
    EXPECT(TID_A, SHORT_B);
    get("/jaeger/api/traces", "service", "frontend", "minDuration", "abc", NULL);
    assert_error(400, "unable to parse param 'minDuration'");
    get("/jaeger/api/traces", "service", "frontend", "minDuration", "-1ms", NULL);
    assert_error(400, "unable to parse param 'minDuration'");
    get("/jaeger/api/traces", "service", "frontend", "minDuration", "5ms", "maxDuration", "1ms",
        NULL);
    assert_error(400, "'maxDuration' should be greater than 'minDuration'");
    get("/jaeger/api/traces", "service", "frontend", "limit", "-1", NULL);
    assert_error(400, "unable to parse param 'limit'");
    get("/jaeger/api/traces", NULL);
    assert_error(400, "parameter 'service' is required");
    get("/jaeger/api/traces", "service", "nobody", NULL);
    EXPECT_NONE();
}

Test(jaeger, search_by_trace_ids)
{
    get("/jaeger/api/traces", "traceID", TID_A, "traceID", "dead", NULL);
    cr_assert_eq(resp.status, 200);
    cr_assert_eq(n_at("data"), 1);
    cr_assert_str_eq(s_at("data/0/traceID"), TID_A);
    cr_assert_eq(i_at("total"), 1);
    cr_assert_str_eq(s_at("errors/0/msg"), "trace not found");
    cr_assert_str_eq(s_at("errors/0/traceID"), "000000000000dead");
    get("/jaeger/api/traces", "traceID", "zz", NULL);
    assert_error(400, "cannot parse traceID param");
}

/* ---- dependencies ---- */

Test(jaeger, dependencies_from_parent_child_spans)
{
    cr_assert_str_eq(get("/jaeger/api/dependencies", NULL),
                     "{\"data\":[{\"parent\":\"frontend\",\"child\":\"db\",\"callCount\":1}],"
                     "\"total\":1,\"limit\":0,\"offset\":0,\"errors\":null}");
    char end[32];
    snprintf(end, sizeof end, "%" PRId64, base_ns / 1000000 + 1);
    get("/jaeger/api/dependencies", "endTs", end, "lookback", "3600000", NULL);
    assert_envelope(1);
    cr_assert_eq(i_at("data/0/callCount"), 1);
    get("/jaeger/api/dependencies", "endTs", end, "lookback", "1h", "service", "db", NULL);
    assert_envelope(1);
    get("/jaeger/api/dependencies", "service", "elsewhere", NULL);
    assert_envelope(0);
    get("/jaeger/api/dependencies", "lookback", "1000", NULL); /* the last second */
    assert_envelope(0);
    get("/jaeger/api/dependencies", "endTs", "soon", NULL);
    assert_error(400, "unable to parse param 'endTs'");
    get("/jaeger/api/dependencies", "lookback", "a while", NULL);
    assert_error(400, "unable to parse param 'lookback'");
}

/* ---- the parameter parsers ---- */

Test(jaeger, parse_tags_forms)
{
    struct vg_arena *a = vg_arena_new(0);
    struct jaeger_tag t[4];
    size_t n = 0;
    struct vg_err err;
    const char *js = " {\"a\":\"x\",\"n\":-3,\"f\":1.5,\"b\":true,\"a\":\"y\"}";
    cr_assert_eq(jaeger_parse_tags(js, strlen(js), JAEGER_TAGS_ANY, a, t, 4, &n, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(n, 4);
    /* a repeated key keeps the last value (JSON objects: jansson keeps one) */
    for (size_t i = 0; i < n; i++) {
        if (vg_str_eq_c(t[i].key, "n"))
            cr_assert(vg_str_eq_c(t[i].value, "-3"));
        if (vg_str_eq_c(t[i].key, "f"))
            cr_assert(vg_str_eq_c(t[i].value, "1.5"));
        if (vg_str_eq_c(t[i].key, "b"))
            cr_assert(vg_str_eq_c(t[i].value, "true"));
        if (vg_str_eq_c(t[i].key, "a"))
            cr_assert(vg_str_eq_c(t[i].value, "y"));
    }
    n = 0;
    const char *kv = "k:v, q=\"a \\\"b\\\" c\" url:http://x:80/p k:w";
    cr_assert_eq(jaeger_parse_tags(kv, strlen(kv), JAEGER_TAGS_ANY, a, t, 4, &n, &err), 0, "%s",
                 err.msg);
    cr_assert_eq(n, 3);
    cr_assert(vg_str_eq_c(t[0].key, "k") && vg_str_eq_c(t[0].value, "w"));
    cr_assert(vg_str_eq_c(t[1].key, "q") && vg_str_eq_c(t[1].value, "a \"b\" c"));
    cr_assert(vg_str_eq_c(t[2].key, "url") && vg_str_eq_c(t[2].value, "http://x:80/p"));
    n = 0;
    const char *pair = "http.url:http://a b:c";
    cr_assert_eq(jaeger_parse_tags(pair, strlen(pair), JAEGER_TAG_PAIR, a, t, 4, &n, &err), 0);
    cr_assert(vg_str_eq_c(t[0].key, "http.url") && vg_str_eq_c(t[0].value, "http://a b:c"));

    static const char *const bad[] = { "{\"a\":", "[1]", "{\"a\":{}}", "k", ":v", "k:\"open",
                                       "{\"a\":null}" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = 0;
        cr_assert_eq(jaeger_parse_tags(bad[i], strlen(bad[i]), JAEGER_TAGS_ANY, a, t, 4, &n,
                                       &err), VG_EINVAL, "%s", bad[i]);
    }
    n = 0;
    const char *many = "a:1 b:2 c:3 d:4 e:5";
    cr_assert_eq(jaeger_parse_tags(many, strlen(many), JAEGER_TAGS_ANY, a, t, 4, &n, &err),
                 VG_ETOOLARGE);
    cr_assert(strstr(err.msg, "at most 4"));
    vg_arena_free(a);
}

Test(jaeger, parse_durations)
{
    static const struct {
        const char *s;
        int64_t ns;
    } ok[] = {
        { "100ms", 100000000 }, { "1.2s", 1200000000 }, { "1h30m", 5400000000000 },
        { "500us", 500000 },     { "2d", 172800000000000 }, { "1.5w", 907200000000000 },
        { "0", 0 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t ns = -1;
        cr_assert_eq(jaeger_parse_duration(ok[i].s, strlen(ok[i].s), &ns), 0, "%s", ok[i].s);
        cr_assert_eq(ns, ok[i].ns, "%s: %" PRId64, ok[i].s, ns);
    }
    static const char *const bad[] = { "d", "1.2.3d", "abc", "5", "99999999999d", "", "1x" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ns;
        cr_assert_eq(jaeger_parse_duration(bad[i], strlen(bad[i]), &ns), -1, "%s", bad[i]);
    }
}

/* ---- the writer on its own ---- */

Test(jaeger, write_trace_floats_and_missing_service)
{
    static const struct span_attr attrs[] = {
        { .key = VG_STR("big"), .type = SPAN_VAL_DOUBLE, .v.d = 1e21 },
        { .key = VG_STR("huge"), .type = SPAN_VAL_DOUBLE, .v.d = 1.5e243 },
        { .key = VG_STR("tiny"), .type = SPAN_VAL_DOUBLE, .v.d = -1e-7 },
        { .key = VG_STR("plain"), .type = SPAN_VAL_DOUBLE, .v.d = 123.5 },
        { .key = VG_STR("nan"), .type = SPAN_VAL_DOUBLE, .v.d = NAN },
        { .key = VG_STR("bad_blob"), .type = SPAN_VAL_MAP, .v.s = { "\xff", 1 } },
    };
    struct span s = { .trace_id = { 1 }, .span_id = { 2 }, .start_ns = 5000, .end_ns = 5999,
                      .name = VG_STR("x"), .attrs = attrs, .nattrs = 6 };
    struct vg_arena *a = vg_arena_new(0);
    struct vg_buf b;
    vg_buf_init(&b);
    struct vg_err err;
    cr_assert_eq(jaeger_write_trace(&s, 1, a, &b, &err), 0, "%s", err.msg);
    const char *out = vg_buf_cstr(&b);
    cr_assert(strstr(out, "\"traceID\":\"01000000000000000000000000000000\""), "%s", out);
    cr_assert(strstr(out, "\"startTime\":5,\"duration\":0,"), "%s", out);
    cr_assert(strstr(out, "{\"key\":\"big\",\"type\":\"float64\",\"value\":1e+21}"), "%s", out);
    cr_assert(strstr(out, "\"value\":1.5e+243}"), "%s", out);
    cr_assert(strstr(out, "\"value\":-1e-7}"), "%s", out);
    cr_assert(strstr(out, "\"value\":123.5}"), "%s", out);
    cr_assert(strstr(out, "{\"key\":\"nan\",\"type\":\"float64\",\"value\":\"NaN\"}"), "%s", out);
    cr_assert_null(strstr(out, "bad_blob"), "a blob that does not unpack is left out");
    cr_assert(strstr(out, "\"processes\":{\"p1\":{\"serviceName\":\"OTLPResourceNoServiceName\","
                          "\"tags\":[]}}"), "%s", out);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    cr_assert_not_null(j, "%s: %s", je.text, out);
    json_decref(j);
    vg_buf_free(&b);
    vg_arena_free(a);
}

/* ---- allocation failure ---- */

static void survives_allocation_failure(const char *path, const char *k, const char *val)
{
    struct http_arg args[1] = { { k, val } };
    for (uint64_t n = 1; n < 400; n++) {
        fx.fail_after = n;
        vg_buf_free(&resp.body);
        bool complete = fixture_call(&fx, route_for(path)->fn, path, args, k ? 1 : 0, &resp);
        fx.fail_after = 0;
        const char *body = vg_buf_cstr(&resp.body);
        if (resp.status == 200 && complete)
            return;
        cr_assert(resp.status >= 500 || !complete, "%s n=%llu: %d %s", path,
                  (unsigned long long)n, resp.status, body);
        if (complete && *body) {
            json_error_t je;
            json_t *j = json_loads(body, 0, &je);
            cr_assert_not_null(j, "%s n=%llu: not JSON: %s", path, (unsigned long long)n, body);
            json_decref(j);
        }
    }
    cr_assert_fail("%s never succeeded", path);
}

Test(jaeger, allocation_failure_answers_an_error)
{
    survives_allocation_failure("/jaeger/api/services", NULL, NULL);
    survives_allocation_failure("/jaeger/api/operations", "service", "frontend");
    survives_allocation_failure("/jaeger/api/traces/" TID_A, NULL, NULL);
    survives_allocation_failure("/jaeger/api/traces", "service", "frontend");
    survives_allocation_failure("/jaeger/api/dependencies", NULL, NULL);
}
