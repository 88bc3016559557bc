/* Tests server/api/errors.c against the real error tracker (mod_traces_derive on the
 * server fixture, its error store in the fixture's directory): exact JSON of the list
 * (every field, count order, service filter, limit, time range) and of one group
 * (frames, sample trace ids, occurrences per step with zeros), and the error answers
 * (bad fingerprint, unknown group, bad step, bad time, tracking off). */
#include "../fixture.h"

#include "../../../../server/api/errors.h"
#include "../../../../server/traces/derive.h"
#include "../../../../server/traces/errors.h"

#define T0 1699999200000LL /* 2023-11-14T22:00:00Z, on an hour */
#define HOUR 3600000LL

static struct server_fixture fx;
static struct http_response resp;
static struct vg_err err;
static char fp_key[17], fp_val[17];

static struct span_attr key_attrs[3] = {
    { .key = VG_STR("exception.type"), .type = SPAN_VAL_STRING, .v.s = VG_STR("KeyError") },
    { .key = VG_STR("exception.message"), .type = SPAN_VAL_STRING, .v.s = VG_STR("no item 42") },
    { .key = VG_STR("exception.stacktrace"), .type = SPAN_VAL_STRING,
      .v.s = VG_STR("KeyError\n\tat a.B.c(B.java:12)") },
};
static struct span_attr val_attrs[2] = {
    { .key = VG_STR("exception.type"), .type = SPAN_VAL_STRING, .v.s = VG_STR("ValueError") },
    { .key = VG_STR("exception.message"), .type = SPAN_VAL_STRING, .v.s = VG_STR("bad \"x\"") },
};

static struct span span_with(const char *svc, uint8_t tid, struct span_event *ev)
{
    struct span s;
    memset(&s, 0, sizeof s);
    memset(s.trace_id, tid, sizeof s.trace_id);
    memset(s.span_id, 1, sizeof s.span_id);
    s.kind = SPAN_KIND_SERVER;
    s.start_ns = ev->time_ns - 1000000;
    s.end_ns = ev->time_ns + 1000000;
    s.service = vg_str_c(svc);
    s.name = VG_STR("op");
    s.events = ev;
    s.nevents = 1;
    return s;
}

static void fingerprint_of(const char *type, const char *msg, const char *stack, char *out)
{
    char m[ERRORS_MAX_MESSAGE], f[ERRORS_MAX_FRAMES];
    size_t ml = errors_normalise_message(vg_str_c(msg), m, sizeof m);
    size_t fl = errors_top_frames(vg_str_c(stack), f, sizeof f);
    snprintf(out, 17, "%016llx",
             (unsigned long long)errors_fingerprint(vg_str_c(type), (struct vg_str){ m, ml },
                                                    (struct vg_str){ f, fl }));
}

static void setup(void)
{
    fixture_open(&fx);
    vg_err_clear(&err);
    cr_assert_eq(config_set(fx.cfg, "storage.data_dir", fx.dir, &err), 0, "%s", err.msg);
    cr_assert_eq(config_set(fx.cfg, "traces.span_metrics_enabled", "false", &err), 0);
    cr_assert_eq(config_set(fx.cfg, "traces.service_graph_enabled", "false", &err), 0);
    cr_assert_eq(mod_traces_derive.init(&fx.v, &err), 0, "%s", err.msg);
    struct span_event ev[3] = {
        { .time_ns = (T0 + 5) * 1000000, .name = VG_STR("exception"), .attrs = key_attrs,
          .nattrs = 3 },
        { .time_ns = (T0 + 2 * HOUR) * 1000000, .name = VG_STR("exception"),
          .attrs = key_attrs, .nattrs = 3 },
        { .time_ns = (T0 + HOUR + 7) * 1000000, .name = VG_STR("exception"),
          .attrs = val_attrs, .nattrs = 2 },
    };
    struct span s[3] = { span_with("cart", 0xa1, &ev[0]), span_with("cart", 0xa2, &ev[1]),
                         span_with("shop", 0xb1, &ev[2]) };
    trace_derive_observe(fx.v.derive, s, 3); /* the API flushes them before reading */
    fingerprint_of("KeyError", "no item 7", "x\n\tat a.B.c(B.java:99)", fp_key);
    fingerprint_of("ValueError", "bad 'y'", "", fp_val);
    memset(&resp, 0, sizeof resp);
}

static void teardown(void)
{
    mod_traces_derive.free(&fx.v);
    vg_buf_free(&resp.body);
    fixture_close(&fx);
}

TestSuite(errors_api, .init = setup, .fini = teardown, .timeout = 30);

static const char *call(const char *path, ...)
{
    va_list ap;
    va_start(ap, path);
    const char *body = fixture_vget(&fx, &mod_errors_api, path, ap, &resp);
    va_end(ap);
    return body;
}

#define KEY_GROUP(count)                                                                   \
    "{\"fingerprint\":\"%s\",\"type\":\"KeyError\",\"message\":\"no item 42\",\"count\":" \
    count ",\"firstSeen\":\"2023-11-14T22:00:00.005Z\",\"lastSeen\":"                     \
    "\"2023-11-15T00:00:00.000Z\",\"services\":[\"cart\"],\"sampleTraceId\":"            \
    "\"a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2\"}"
#define VAL_GROUP                                                                          \
    "{\"fingerprint\":\"%s\",\"type\":\"ValueError\",\"message\":\"bad \\\"x\\\"\","       \
    "\"count\":1,\"firstSeen\":\"2023-11-14T23:00:00.007Z\",\"lastSeen\":"                 \
    "\"2023-11-14T23:00:00.007Z\",\"services\":[\"shop\"],\"sampleTraceId\":"             \
    "\"b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1\"}"

Test(errors_api, list_every_field_by_count)
{
    char want[2048];
    snprintf(want, sizeof want, "{\"status\":\"success\",\"data\":[" KEY_GROUP("2") ","
             VAL_GROUP "]}", fp_key, fp_val);
    cr_assert_str_eq(call("/api/v1/errors", NULL), want);
    cr_assert_eq(resp.status, 200);

    snprintf(want, sizeof want, "{\"status\":\"success\",\"data\":[" VAL_GROUP "]}", fp_val);
    cr_assert_str_eq(call("/api/v1/errors", "service", "shop", NULL), want);
    cr_assert_str_eq(call("/api/v1/errors", "service", "nobody", NULL),
                     "{\"status\":\"success\",\"data\":[]}");
    snprintf(want, sizeof want, "{\"status\":\"success\",\"data\":[" KEY_GROUP("2") "]}",
             fp_key);
    cr_assert_str_eq(call("/api/v1/errors", "limit", "1", NULL), want);
}

Test(errors_api, list_time_range_counts_hours)
{
    char want[2048];
    /* the hour of 23:00 only: the ValueError, and the KeyError not at all */
    snprintf(want, sizeof want, "{\"status\":\"success\",\"data\":[" VAL_GROUP "]}", fp_val);
    cr_assert_str_eq(call("/api/v1/errors", "start", "2023-11-14T23:10:00Z", "end",
                          "2023-11-14T23:20:00Z", NULL), want);
    /* from midnight on: the KeyError of midnight, counted once */
    snprintf(want, sizeof want, "{\"status\":\"success\",\"data\":[" KEY_GROUP("1") "]}",
             fp_key);
    cr_assert_str_eq(call("/api/v1/errors", "start", "1700006400", "end", "1700010000",
                          NULL), want);
    call("/api/v1/errors", "start", "yesterday", NULL);
    cr_assert_eq(resp.status, 400);
    cr_assert(strstr(resp.body.p, "\"errorType\":\"bad_data\""), "%s", resp.body.p);
    cr_assert(strstr(resp.body.p, "start"), "%s", resp.body.p);
    call("/api/v1/errors", "start", "100", "end", "10", NULL);
    cr_assert_eq(resp.status, 400);
    call("/api/v1/errors", "limit", "-1", NULL);
    cr_assert_eq(resp.status, 400);
}

Test(errors_api, one_group_with_occurrences)
{
    char path[64], want[4096];
    snprintf(path, sizeof path, "/api/v1/errors/%s", fp_key);
    snprintf(want, sizeof want,
             "{\"status\":\"success\",\"data\":{\"fingerprint\":\"%s\",\"type\":\"KeyError\","
             "\"message\":\"no item 42\",\"count\":2,\"firstSeen\":"
             "\"2023-11-14T22:00:00.005Z\",\"lastSeen\":\"2023-11-15T00:00:00.000Z\","
             "\"services\":[\"cart\"],\"sampleTraceId\":\"a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2\","
             "\"frames\":\"at a.B.c(B.java)\",\"sampleTraceIds\":["
             "\"a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2\",\"a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1\"],"
             "\"occurrences\":[[1699999200,1],[1700002800,0],[1700006400,1]]}}",
             fp_key);
    cr_assert_str_eq(call(path, "start", "1699999200", "end", "1700006400", NULL), want);

    /* two-hour steps, start floored to the step */
    const char *b = call(path, "start", "1699999300", "end", "1700006400", "step", "2h",
                         NULL);
    cr_assert(strstr(b, "\"occurrences\":[[1699999200,1],[1700006400,1]]"), "%s", b);
    /* defaults: the last week (or from firstSeen) to now, hourly */
    b = call(path, "end", "1700010000", NULL);
    cr_assert_eq(resp.status, 200, "%s", b);
    cr_assert(strstr(b, "\"occurrences\":[[1699999200,1],[1700002800,0],[1700006400,1],"
                        "[1700010000,0]]"), "%s", b);
    b = call(path, NULL);
    cr_assert_eq(resp.status, 200, "%s", b);
    cr_assert(strstr(b, "\"occurrences\":[["), "%s", b);
}

Test(errors_api, error_answers)
{
    call("/api/v1/errors/xyz", NULL);
    cr_assert_eq(resp.status, 400);
    cr_assert(strstr(resp.body.p, "invalid fingerprint"), "%s", resp.body.p);
    call("/api/v1/errors/12345678123456781", NULL);
    cr_assert_eq(resp.status, 400, "17 digits");
    call("/api/v1/errors/abc", NULL);
    cr_assert_eq(resp.status, 404);
    cr_assert(strstr(resp.body.p, "0000000000000abc not found"), "%s", resp.body.p);
    char path[64];
    snprintf(path, sizeof path, "/api/v1/errors/%s", fp_key);
    call(path, "step", "30m", NULL);
    cr_assert_eq(resp.status, 400);
    cr_assert(strstr(resp.body.p, "whole number of hours"), "%s", resp.body.p);
    call(path, "step", "soon", NULL);
    cr_assert_eq(resp.status, 400);
    call(path, "start", "0", "end", "1700006400", NULL);
    cr_assert_eq(resp.status, 400);
    cr_assert(strstr(resp.body.p, "maximum resolution"), "%s", resp.body.p);
    call(path, "start", "1700006400", "end", "1699999200", NULL);
    cr_assert_eq(resp.status, 400);

    mod_traces_derive.free(&fx.v);
    call("/api/v1/errors", NULL);
    cr_assert_eq(resp.status, 404);
    cr_assert(strstr(resp.body.p, "traces.errors_enabled"), "%s", resp.body.p);
    call(path, NULL);
    cr_assert_eq(resp.status, 404);
}

Test(errors_api, allocation_failure)
{
    call("/api/v1/errors", NULL); /* flushed: what follows only reads */
    vg_buf_free(&resp.body);
    for (uint64_t n = 1; n < 40; n++) {
        fx.fail_after = n;
        bool complete = fixture_call(&fx, mod_errors_api.routes[0].fn, "/api/v1/errors", NULL,
                                     0, &resp);
        fx.fail_after = 0;
        if (complete && resp.status == 200)
            break;
        if (complete)
            cr_assert(resp.status >= 400, "%d", resp.status);
        vg_buf_free(&resp.body);
    }
    vg_buf_free(&resp.body);
    char want[2048];
    snprintf(want, sizeof want, "{\"status\":\"success\",\"data\":[" KEY_GROUP("2") ","
             VAL_GROUP "]}", fp_key, fp_val);
    cr_assert_str_eq(call("/api/v1/errors", NULL), want, "nothing was lost");
}
