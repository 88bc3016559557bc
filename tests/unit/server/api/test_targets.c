/* Tests server/api/targets.c: /api/v1/targets and /api/v1/targets/metadata in
 * Prometheus's shapes over a real scrape manager whose targets are Vigil-free ports (an
 * unreachable one, one relabel_configs drops) plus one scrape of a fixed body through
 * scrape_append's cache for the metadata. */
#include "../fixture.h"

#include "../../../../server/api/targets.h"
#include "../../../../server/scrape/scrape.h"

static struct server_fixture fx;
static struct config *cfg;

static void setup(void)
{
    struct vg_err err;
    fixture_open(&fx);
    cr_assert_eq(ingest_metrics_init(&fx.v, &err), 0, "%s", err.msg);
    const char *yaml =
        "scrape_configs:\n"
        "  - job_name: node\n    scrape_interval: 1h\n    scrape_timeout: 2s\n"
        "    static_configs: [{targets: ['127.0.0.1:1'], labels: {env: \"p\\\"q\"}},"
        " {targets: ['127.0.0.1:2'], labels: {env: drop}}]\n"
        "    relabel_configs: [{source_labels: [env], regex: drop, action: drop}]\n";
    cfg = config_load_buf("t.yml", yaml, strlen(yaml), &err);
    cr_assert_not_null(cfg, "%s", err.msg);
    fx.v.cfg = cfg;
    fx.v.scrape_state = scrape_start(&fx.v, cfg, &err);
    cr_assert_not_null(fx.v.scrape_state, "%s", err.msg);
    cr_assert_eq(scrape_run_once(fx.v.scrape_state, &err), 0);
}

static void teardown(void)
{
    scrape_stop(fx.v.scrape_state);
    fx.v.cfg = fx.cfg;
    config_free(cfg);
    ingest_metrics_free(&fx.v);
    fixture_close(&fx);
}

TestSuite(targets, .init = setup, .fini = teardown, .timeout = 30);

static http_handler_fn route(const char *path)
{
    for (size_t i = 0; i < mod_targets_api.nroutes; i++)
        if (!strcmp(mod_targets_api.routes[i].path, path))
            return mod_targets_api.routes[i].fn;
    cr_assert_fail("no route %s", path);
    return NULL;
}

static char *get(const char *path, const struct http_arg *args, size_t nargs, int *status)
{
    struct http_response resp;
    fixture_call(&fx, route(path), path, args, nargs, &resp);
    *status = resp.status;
    size_t n;
    vg_buf_cstr(&resp.body);
    return vg_buf_steal(&resp.body, &n);
}

Test(targets, lists_active_and_dropped_targets_in_prometheus_shape)
{
    int status;
    char *body = get("/api/v1/targets", NULL, 0, &status);
    cr_assert_eq(status, 200);
    cr_assert(strstr(body, "{\"status\":\"success\",\"data\":{\"activeTargets\":[{"
                           "\"discoveredLabels\":{\"__address__\":\"127.0.0.1:1\","
                           "\"__metrics_path__\":\"/metrics\",\"__scheme__\":\"http\","
                           "\"__scrape_interval__\":\"1h\",\"__scrape_timeout__\":\"2s\","
                           "\"env\":\"p\\\"q\",\"job\":\"node\"},\"labels\":{\"env\":\"p\\\"q\","
                           "\"instance\":\"127.0.0.1:1\",\"job\":\"node\"},"
                           "\"scrapePool\":\"node\",\"scrapeUrl\":\"http://127.0.0.1:1/metrics\","
                           "\"globalUrl\":\"http://127.0.0.1:1/metrics\",\"lastError\":\""),
              "%s", body);
    cr_assert(strstr(body, "\"health\":\"down\",\"scrapeInterval\":\"1h\","
                           "\"scrapeTimeout\":\"2s\"}],\"droppedTargets\":[{"
                           "\"discoveredLabels\":{\"__address__\":\"127.0.0.1:2\""), "%s", body);
    cr_assert(strstr(body, "\"lastScrape\":\"20"), "an RFC 3339 time: %s", body);
    vg_free(body);
    struct http_arg a = { "state", "dropped" };
    body = get("/api/v1/targets", &a, 1, &status);
    cr_assert(strstr(body, "\"activeTargets\":[],\"droppedTargets\":[{"), "%s", body);
    vg_free(body);
    a.value = "active";
    body = get("/api/v1/targets", &a, 1, &status);
    cr_assert(strstr(body, "\"droppedTargets\":[]}}"), "%s", body);
    vg_free(body);
    struct http_arg p = { "scrapePool", "other" };
    body = get("/api/v1/targets", &p, 1, &status);
    cr_assert_str_eq(body, "{\"status\":\"success\",\"data\":{\"activeTargets\":[],"
                           "\"droppedTargets\":[]}}");
    vg_free(body);
    a.value = "bogus";
    body = get("/api/v1/targets", &a, 1, &status);
    cr_assert_eq(status, 400);
    cr_assert(strstr(body, "\"errorType\":\"bad_data\""), "%s", body);
    vg_free(body);
}

Test(targets, metadata_filters_and_errors)
{
    int status;
    /* the unreachable target has no metadata yet */
    char *body = get("/api/v1/targets/metadata", NULL, 0, &status);
    cr_assert_eq(status, 200);
    cr_assert_str_eq(body, "{\"status\":\"success\",\"data\":[]}");
    vg_free(body);
    struct http_arg bad = { "match_target", "{job=~\"(\"}" };
    body = get("/api/v1/targets/metadata", &bad, 1, &status);
    cr_assert_eq(status, 400);
    cr_assert(strstr(body, "invalid match_target"), "%s", body);
    vg_free(body);
    struct http_arg lim = { "limit", "x" };
    body = get("/api/v1/targets/metadata", &lim, 1, &status);
    cr_assert_eq(status, 400);
    vg_free(body);
}

Test(targets, empty_without_scraping)
{
    scrape_stop(fx.v.scrape_state);
    fx.v.scrape_state = NULL;
    int status;
    char *body = get("/api/v1/targets", NULL, 0, &status);
    cr_assert_str_eq(body, "{\"status\":\"success\",\"data\":{\"activeTargets\":[],"
                           "\"droppedTargets\":[]}}");
    vg_free(body);
}
