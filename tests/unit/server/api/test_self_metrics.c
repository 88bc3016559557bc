/* Tests server/api/self_metrics.c: GET /metrics called directly on a minimal struct vigil
 * with a real TSDB. The body carries the registry's own families, the TSDB statistics,
 * the live heap, the process_* figures read from /proc and vigil_build_info; every line
 * is valid text format 0.0.4 (read back with the exposition parser); a store-less server
 * leaves the TSDB block out; allocation failure gives a JSON error and leaks nothing. */
#include "../fixture.h"

#include "../../../../server/api/exposition.h"
#include "../../../../server/api/self_metrics.h"

#include <math.h>

static struct server_fixture fx;

static void setup(void)
{
    fixture_open(&fx);
}

static void teardown(void)
{
    fixture_close(&fx);
}

TestSuite(self_metrics, .init = setup, .fini = teardown, .timeout = 30);

static void init_module(void)
{
    struct vg_err err = {0};
    cr_assert_eq(mod_self_metrics.init(&fx.v, &err), 0, "%s", err.msg);
}

static bool get(struct http_response *resp)
{
    return fixture_call(&fx, mod_self_metrics.routes[0].fn, "/metrics", NULL, 0, resp);
}

static void has(const char *body, const char *line)
{
    cr_assert_not_null(strstr(body, line), "missing \"%s\" in:\n%s", line, body);
}

/* The value of the unlabelled sample of name in body (asserts that it is there). */
static double value_of(const char *body, const char *name)
{
    char key[128];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(body, key);
    cr_assert_not_null(p, "no sample %s in:\n%s", name, body);
    return strtod(p + strlen(key), NULL);
}

struct count_ctx {
    size_t samples, types;
};

static int count_entry(void *ctx, const struct exposition_entry *e, struct vg_err *err)
{
    (void)err;
    struct count_ctx *c = ctx;
    c->samples += e->kind == EXPOSITION_SAMPLE;
    c->types += e->kind == EXPOSITION_TYPE;
    return 0;
}

Test(self_metrics, route_row)
{
    cr_assert_eq(mod_self_metrics.nroutes, 1);
    cr_assert_str_eq(mod_self_metrics.routes[0].method, "GET");
    cr_assert_str_eq(mod_self_metrics.routes[0].path, "/metrics");
    cr_assert_not_null(mod_self_metrics.init);
}

Test(self_metrics, tsdb_stats_heap_process_and_build_info)
{
    init_module();
    int64_t now = fixture_now_ms();
    fixture_append(&fx, now - 2000, 1, "__name__", "up", "job", "a", NULL);
    fixture_append(&fx, now - 1000, 2, "__name__", "up", "job", "a", NULL);
    fixture_append(&fx, now - 1000, 5, "__name__", "up", "job", "b", NULL);
    /* a family of the registry itself, as the front ends register them */
    static const char *const h[] = {"handler"};
    struct metric_family *f = metrics_family(fx.v.metrics, "vigil_test_requests_total",
                                             "Test requests.", METRIC_COUNTER, h, 1, NULL, 0);
    metric_add(f, 3, "/metrics");

    struct http_response resp;
    get(&resp);
    cr_assert_eq(resp.status, 200);
    cr_assert_str_eq(resp.content_type, "text/plain; version=0.0.4; charset=utf-8");
    const char *b = resp.body.p;

    has(b, "# TYPE vigil_test_requests_total counter\n"
           "vigil_test_requests_total{handler=\"/metrics\"} 3\n");
    has(b, "# HELP vigil_tsdb_series Series known to the TSDB (in the head or on disk).\n"
           "# TYPE vigil_tsdb_series gauge\n"
           "vigil_tsdb_series 2\n");
    has(b, "# TYPE vigil_tsdb_head_series gauge\nvigil_tsdb_head_series 2\n");
    has(b, "# TYPE vigil_tsdb_samples_appended_total counter\n"
           "vigil_tsdb_samples_appended_total 3\n");
    has(b, "# TYPE vigil_tsdb_out_of_order_samples_total counter\n"
           "vigil_tsdb_out_of_order_samples_total 0\n");
    has(b, "# TYPE vigil_tsdb_chunks_persisted_total counter\n");
    has(b, "# TYPE vigil_tsdb_head_samples gauge\n");
    cr_assert_gt(value_of(b, "vigil_tsdb_disk_bytes"), 0, "the database directory has files");
    cr_assert_gt(value_of(b, "vigil_heap_live_bytes"), 0);

    has(b, "# TYPE process_cpu_seconds_total counter\n");
    cr_assert_geq(value_of(b, "process_cpu_seconds_total"), 0);
    cr_assert_gt(value_of(b, "process_resident_memory_bytes"), 0);
    cr_assert_geq(value_of(b, "process_virtual_memory_bytes"),
                  value_of(b, "process_resident_memory_bytes"));
    cr_assert_geq(value_of(b, "process_open_fds"), 3, "stdin, stdout, stderr at least");
    cr_assert_geq(value_of(b, "process_max_fds"), value_of(b, "process_open_fds"));
    /* the test process started moments ago */
    double start = value_of(b, "process_start_time_seconds");
    cr_assert(fabs(start - (double)now / 1000) < 600, "start %f, now %lld", start,
              (long long)now);

    has(b, "# TYPE vigil_build_info gauge\nvigil_build_info{version=\"" VIGIL_VERSION "\"} 1\n");

    /* every line is valid 0.0.4 */
    struct vg_arena *a = vg_arena_new(4096);
    struct vg_err err = {0};
    struct count_ctx c = {0};
    cr_assert_eq(exposition_parse(b, resp.body.len, a, count_entry, &c, &err), 0, "%s\n%s",
                 err.msg, b);
    /* 1 test family + 7 TSDB + heap + 6 process + build info, one sample each, and the
     * two fsync families with one sample each (the TSDB is the only open store) */
    cr_assert_eq(c.samples, 18, "samples %zu", c.samples);
    cr_assert_eq(c.types, 18, "types %zu", c.types);
    vg_arena_free(a);
    vg_buf_free(&resp.body);
}

Test(self_metrics, stats_follow_the_store)
{
    init_module();
    struct http_response resp;
    get(&resp);
    has(resp.body.p, "\nvigil_tsdb_series 0\n");
    has(resp.body.p, "\nvigil_tsdb_samples_appended_total 0\n");
    vg_buf_free(&resp.body);

    fixture_append(&fx, fixture_now_ms(), 1, "__name__", "x", NULL);
    get(&resp);
    has(resp.body.p, "\nvigil_tsdb_series 1\n");
    has(resp.body.p, "\nvigil_tsdb_samples_appended_total 1\n");
    vg_buf_free(&resp.body);
}

Test(self_metrics, background_fsyncs_counted_per_open_store)
{
    /* reopen the TSDB as storage.fsync periodic opens it, syncing every 10 ms */
    tsdb_close(fx.v.tsdb);
    struct tsdb_opts o;
    tsdb_opts_default(&o);
    o.dir = fx.dir;
    o.no_sync = true;
    o.sync_interval_ms = 10;
    struct vg_err err = { 0 };
    fx.v.tsdb = tsdb_open(&o, &err);
    cr_assert_not_null(fx.v.tsdb, "%s", err.msg);
    init_module();
    fixture_append(&fx, fixture_now_ms(), 1, "__name__", "x", NULL);
    usleep(200 * 1000); /* the kv-sync thread syncs what the append left unsynced */
    struct http_response resp;
    get(&resp);
    has(resp.body.p, "# TYPE vigil_storage_fsyncs_total counter\n");
    has(resp.body.p, "vigil_storage_fsync_failures_total{store=\"tsdb\"} 0\n");
    const char *line = strstr(resp.body.p, "vigil_storage_fsyncs_total{store=\"tsdb\"} ");
    cr_assert_not_null(line, "%s", resp.body.p);
    cr_assert_geq(strtod(line + strlen("vigil_storage_fsyncs_total{store=\"tsdb\"} "), NULL), 1);
    cr_assert_null(strstr(resp.body.p, "store=\"logs\""), "no log store is open");
    vg_buf_free(&resp.body);
}

Test(self_metrics, without_a_store_the_tsdb_block_is_left_out)
{
    tsdb_close(fx.v.tsdb);
    fx.v.tsdb = NULL;
    init_module();
    struct http_response resp;
    get(&resp);
    cr_assert_eq(resp.status, 200);
    cr_assert_null(strstr(resp.body.p, "vigil_tsdb_"), "%s", resp.body.p);
    has(resp.body.p, "# TYPE vigil_heap_live_bytes gauge\n");
    has(resp.body.p, "vigil_build_info{version=\"" VIGIL_VERSION "\"} 1\n");
    vg_buf_free(&resp.body);
}

Test(self_metrics, process_collector_alone)
{
    struct vg_buf out;
    vg_buf_init(&out);
    self_metrics_collect_process(NULL, &out);
    const char *b = vg_buf_cstr(&out);
    cr_assert_not_null(b);
    const char *names[] = {"process_cpu_seconds_total", "process_resident_memory_bytes",
                           "process_virtual_memory_bytes", "process_start_time_seconds",
                           "process_open_fds", "process_max_fds"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char help[96];
        snprintf(help, sizeof help, "# HELP %s ", names[i]);
        cr_assert_not_null(strstr(b, help), "missing %s in:\n%s", help, b);
    }
    cr_assert_eq(strncmp(b, "# HELP process_cpu_seconds_total ", 33), 0, "%s", b);
    vg_buf_free(&out);
}

Test(self_metrics, allocation_failure_is_a_json_error_or_the_body)
{
    init_module();
    bool failed_once = false, done = false;
    for (uint64_t n = 1; n < 1000 && !done; n++) {
        struct http_response resp;
        size_t live = vg_alloc_live_bytes();
        fx.fail_after = n;
        bool complete = get(&resp);
        if (resp.status == 200) {
            cr_assert(complete);
            has(resp.body.p, "vigil_build_info{");
            done = true;
        } else {
            failed_once = true;
            cr_assert_eq(resp.status, 503);
            /* the error body itself may find no memory left */
            if (complete)
                cr_assert_str_eq(resp.body.p,
                                 "{\"status\":\"error\",\"errorType\":\"unavailable\","
                                 "\"error\":\"metrics: out of memory rendering the "
                                 "registry\"}");
        }
        vg_buf_free(&resp.body);
        cr_assert_eq(vg_alloc_live_bytes(), live, "allocation %llu: %zu bytes leaked",
                     (unsigned long long)n, vg_alloc_live_bytes() - live);
    }
    fx.fail_after = 0;
    cr_assert(failed_once);
    cr_assert(done);
}
