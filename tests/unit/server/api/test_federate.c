/* Tests server/api/federate.c: GET /federate against a real TSDB in a temp directory,
 * the handler called directly. Exact bodies for one and several match[] selectors
 * (series matched twice written once), # TYPE lines from stored metadata (histogram
 * _bucket/_sum/_count under their base family, untyped without metadata), series left
 * out (stale marker last, nothing in the 5-minute lookback, names 0.0.4 cannot carry),
 * and the 400 JSON errors for a missing, unparsable or match-everything selector, plus
 * allocation failure (an error or the full body, nothing leaked). */
#include "../fixture.h"

#include "../../../../server/api/federate.h"

static struct server_fixture fx;
static int64_t now;
static char want[4096];

/* The timestamps the samples were written at, relative to now. */
#define T(sec_ago) ((long long)(now - (sec_ago) * 1000))

static void stale(const char *name, const char *instance, int64_t t)
{
    uint64_t bits = TSDB_STALE_NAN_BITS;
    double v;
    memcpy(&v, &bits, sizeof v);
    fixture_append(&fx, t, v, "__name__", name, "job", "node", "instance", instance, NULL);
}

static void setup(void)
{
    fixture_open(&fx);
    now = fixture_now_ms();
    fixture_meta(&fx, "up", TSDB_TYPE_GAUGE);
    fixture_append(&fx, now - 20000, 0, "__name__", "up", "job", "node", "instance", "a:1", NULL);
    fixture_append(&fx, now - 10000, 1, "__name__", "up", "job", "node", "instance", "a:1", NULL);
    /* b:1 went away: its last sample is the staleness marker */
    fixture_append(&fx, now - 10000, 1, "__name__", "up", "job", "node", "instance", "b:1", NULL);
    stale("up", "b:1", now - 5000);
    fixture_append(&fx, now - 15000, 1, "__name__", "up", "job", "api", "instance", "c:1", NULL);

    fixture_meta(&fx, "http_requests_total", TSDB_TYPE_COUNTER);
    fixture_append(&fx, now - 10000, 42, "__name__", "http_requests_total", "job", "api",
                   "code", "200", NULL);
    fixture_append(&fx, now - 10000, 3.5, "__name__", "http_requests_total", "job", "api",
                   "code", "500", NULL);

    fixture_meta(&fx, "rpc_seconds", TSDB_TYPE_HISTOGRAM);
    fixture_append(&fx, now - 30000, 2, "__name__", "rpc_seconds_bucket", "le", "0.5", NULL);
    fixture_append(&fx, now - 30000, 3, "__name__", "rpc_seconds_bucket", "le", "+Inf", NULL);
    fixture_append(&fx, now - 30000, 1.25, "__name__", "rpc_seconds_sum", NULL);
    fixture_append(&fx, now - 30000, 3, "__name__", "rpc_seconds_count", NULL);

    /* no metadata: untyped */
    fixture_append(&fx, now - 10000, 7, "__name__", "no_meta_total", "job", "node", NULL);
    /* last sample older than the lookback */
    fixture_append(&fx, now - 10 * 60 * 1000, 1, "__name__", "old_metric", "job", "node", NULL);
    /* names the 0.0.4 format cannot write */
    fixture_append(&fx, now - 10000, 1, "__name__", "my.metric", "job", "node", NULL);
    fixture_append(&fx, now - 10000, 1, "__name__", "dotted_label", "job", "node", "a.b", "x",
                   NULL);
}

static void teardown(void)
{
    fixture_close(&fx);
}

TestSuite(federate, .init = setup, .fini = teardown, .timeout = 30);

static bool get(struct http_response *resp, const char *const *sels, size_t n)
{
    struct http_arg args[8];
    cr_assert_leq(n, 8);
    for (size_t i = 0; i < n; i++)
        args[i] = (struct http_arg){"match[]", sels[i]};
    return fixture_call(&fx, mod_federate.routes[0].fn, "/federate", args, n, resp);
}

static void expect_body(const char *const *sels, size_t n, const char *body)
{
    struct http_response resp;
    get(&resp, sels, n);
    cr_assert_eq(resp.status, 200, "status %d: %s", resp.status, resp.body.p);
    cr_assert_str_eq(resp.content_type, "text/plain; version=0.0.4; charset=utf-8");
    cr_assert_str_eq(resp.body.p, body);
    vg_buf_free(&resp.body);
}

static void expect_error(const char *const *sels, size_t n, const char *msg)
{
    struct http_response resp;
    get(&resp, sels, n);
    cr_assert_eq(resp.status, 400);
    snprintf(want, sizeof want, "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"%s\"}",
             msg);
    cr_assert_str_eq(resp.body.p, want);
    vg_buf_free(&resp.body);
}

Test(federate, route_row)
{
    cr_assert_eq(mod_federate.nroutes, 1);
    cr_assert_str_eq(mod_federate.routes[0].method, "GET");
    cr_assert_str_eq(mod_federate.routes[0].path, "/federate");
    cr_assert_not(mod_federate.routes[0].prefix);
}

Test(federate, one_selector_latest_sample_with_type)
{
    const char *sels[] = {"up{job=\"node\"}"};
    snprintf(want, sizeof want,
             "# TYPE up gauge\n"
             "up{instance=\"a:1\",job=\"node\"} 1 %lld\n",
             T(10));
    expect_body(sels, 1, want);
}

Test(federate, several_selectors_merged_sorted_and_deduplicated)
{
    /* up{job="api"} is matched by the first two selectors and written once */
    const char *sels[] = {"up", "{job=\"api\"}", "{__name__=~\"rpc_.*\"}"};
    snprintf(want, sizeof want,
             "# TYPE http_requests_total counter\n"
             "http_requests_total{code=\"200\",job=\"api\"} 42 %lld\n"
             "http_requests_total{code=\"500\",job=\"api\"} 3.5 %lld\n"
             "# TYPE rpc_seconds histogram\n"
             "rpc_seconds_bucket{le=\"+Inf\"} 3 %lld\n"
             "rpc_seconds_bucket{le=\"0.5\"} 2 %lld\n"
             "rpc_seconds_count 3 %lld\n"
             "rpc_seconds_sum 1.25 %lld\n"
             "# TYPE up gauge\n"
             "up{instance=\"a:1\",job=\"node\"} 1 %lld\n"
             "up{instance=\"c:1\",job=\"api\"} 1 %lld\n",
             T(10), T(10), T(30), T(30), T(30), T(30), T(10), T(15));
    expect_body(sels, 3, want);
}

Test(federate, untyped_without_metadata_and_unwritable_or_old_series_left_out)
{
    const char *sels[] = {"{job=\"node\"}"};
    snprintf(want, sizeof want,
             "# TYPE no_meta_total untyped\n"
             "no_meta_total{job=\"node\"} 7 %lld\n"
             "# TYPE up gauge\n"
             "up{instance=\"a:1\",job=\"node\"} 1 %lld\n",
             T(10), T(10));
    expect_body(sels, 1, want);
}

Test(federate, stale_series_is_skipped_until_it_gets_a_new_sample)
{
    const char *sels[] = {"up{instance=\"b:1\"}"};
    expect_body(sels, 1, "");
    fixture_append(&fx, now - 1000, 1, "__name__", "up", "job", "node", "instance", "b:1", NULL);
    snprintf(want, sizeof want, "# TYPE up gauge\nup{instance=\"b:1\",job=\"node\"} 1 %lld\n",
             T(1));
    expect_body(sels, 1, want);
}

Test(federate, selector_matching_nothing_is_an_empty_200)
{
    const char *sels[] = {"nothing_here", "old_metric"};
    expect_body(sels, 2, "");
}

Test(federate, missing_match_is_400)
{
    expect_error(NULL, 0, "at least one match[] parameter is required");
}

Test(federate, other_arguments_do_not_count_as_match)
{
    struct http_arg args[] = {{"match", "up"}, {"query", "up"}};
    struct http_response resp;
    fixture_call(&fx, mod_federate.routes[0].fn, "/federate", args, 2, &resp);
    cr_assert_eq(resp.status, 400);
    cr_assert_not_null(strstr(resp.body.p, "at least one match[] parameter is required"));
    vg_buf_free(&resp.body);
}

Test(federate, unparsable_selector_is_400_naming_it)
{
    const char *sels[] = {"up", "up{job="};
    struct http_response resp;
    get(&resp, sels, 2);
    cr_assert_eq(resp.status, 400);
    const char *head = "{\"status\":\"error\",\"errorType\":\"bad_data\","
                       "\"error\":\"invalid match[] \\\"up{job=\\\": ";
    cr_assert_eq(strncmp(resp.body.p, head, strlen(head)), 0, "body: %s", resp.body.p);
    vg_buf_free(&resp.body);
}

Test(federate, selector_matching_the_empty_set_is_400)
{
    /* Prometheus refuses a selector every series would match */
    const char *sels[] = {"{job=\"\"}"};
    struct http_response resp;
    get(&resp, sels, 1);
    cr_assert_eq(resp.status, 400);
    cr_assert_not_null(strstr(resp.body.p, "\"errorType\":\"bad_data\""), "%s", resp.body.p);
    vg_buf_free(&resp.body);
}

Test(federate, allocation_failure_is_an_error_or_the_full_body)
{
    const char *sels[] = {"up", "{job=\"api\"}", "{__name__=~\"rpc_.*\"}"};
    struct http_response resp;
    get(&resp, sels, 3);
    cr_assert_eq(resp.status, 200);
    char full[4096];
    snprintf(full, sizeof full, "%s", resp.body.p);
    vg_buf_free(&resp.body);

    bool failed_once = false, done = false;
    for (uint64_t n = 1; n < 10000 && !done; n++) {
        size_t live = vg_alloc_live_bytes();
        fx.fail_after = n;
        bool complete = get(&resp, sels, 3);
        if (resp.status == 200) {
            cr_assert(complete);
            cr_assert_str_eq(resp.body.p, full, "after failing allocation %llu",
                             (unsigned long long)n);
            done = true;
        } else {
            failed_once = true;
            cr_assert_eq(resp.status, 503, "allocation %llu: status %d", (unsigned long long)n,
                         resp.status);
            /* the error body itself may find no memory left */
            cr_assert(!complete || strstr(resp.body.p, "\"status\":\"error\""), "%s",
                      resp.body.p);
        }
        vg_buf_free(&resp.body);
        cr_assert_eq(vg_alloc_live_bytes(), live, "allocation %llu: %zu bytes leaked",
                     (unsigned long long)n, vg_alloc_live_bytes() - live);
    }
    fx.fail_after = 0;
    cr_assert(failed_once);
    cr_assert(done, "never succeeded");
}
