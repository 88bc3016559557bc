/* Tests for server/api/rules.c: /api/v1/rules, /api/v1/alerts and /-/reload in
 * Prometheus's JSON shapes, field by field. */
#include "../../../../server/api/rules.h"
#include "../../../../server/rules/rules.h"
#include "../fixture.h"

#include <jansson.h>
#include <math.h>

#define T0 1700000000000LL

static const char *RULES =
    "groups:\n"
    "  - name: b-group\n"
    "    interval: 10s\n"
    "    limit: 5\n"
    "    rules:\n"
    "      - record: job:up:sum\n"
    "        expr: sum by (job) (up)\n"
    "        labels: {kind: rec}\n"
    "      - alert: Down\n"
    "        expr: up == 0\n"
    "        for: 1m\n"
    "        keep_firing_for: 30s\n"
    "        labels: {severity: page}\n"
    "        annotations: {summary: '{{ $labels.instance }} is down'}\n"
    "  - name: a-group\n"
    "    rules:\n"
    "      - record: plain\n"
    "        expr: vector(1)\n";

struct api {
    struct server_fixture fx;
    char path[128];
    struct config *cfg;
};

static void api_open(struct api *a)
{
    fixture_open(&a->fx);
    snprintf(a->path, sizeof a->path, "%s/r.yml", a->fx.dir);
    FILE *f = fopen(a->path, "w");
    cr_assert_not_null(f);
    fputs(RULES, f);
    fclose(f);
    char y[256];
    snprintf(y, sizeof y, "rule_files: ['%s']\n", a->path);
    struct vg_err err = { 0 };
    a->cfg = config_load_buf("<test>", y, strlen(y), &err);
    cr_assert_not_null(a->cfg, "%s", err.msg);
    struct rules_opts o = { .cfg = a->cfg, .tsdb = a->fx.v.tsdb, .manual = true };
    a->fx.v.rules = rules_new(&o, &err);
    cr_assert_not_null(a->fx.v.rules, "%s", err.msg);
}

static void api_close(struct api *a)
{
    rules_free(a->fx.v.rules);
    config_free(a->cfg);
    fixture_close(&a->fx);
}

static http_handler_fn handler(const char *path)
{
    for (size_t i = 0; i < mod_rules_api.nroutes; i++)
        if (!strcmp(mod_rules_api.routes[i].path, path))
            return mod_rules_api.routes[i].fn;
    cr_assert_fail("no route %s", path);
    return NULL;
}

static json_t *get(struct api *a, const char *path, const struct http_arg *args, size_t n, int status)
{
    struct http_response resp;
    fixture_call(&a->fx, handler(path), path, args, n, &resp);
    cr_assert_eq(resp.status, status, "%s: %d %s", path, resp.status, resp.body.p);
    json_error_t je;
    json_t *j = json_loads(resp.body.p, 0, &je);
    cr_assert_not_null(j, "%s: %s", je.text, resp.body.p);
    vg_buf_free(&resp.body);
    return j;
}

static const char *s(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    cr_assert(json_is_string(v), "%s not a string", k);
    return json_string_value(v);
}

static double num(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    cr_assert(json_is_number(v), "%s not a number", k);
    return json_number_value(v);
}

/* Brings Down to firing on instance "x". */
static void fire(struct api *a)
{
    fixture_append(&a->fx, T0 - 1000, 0, "__name__", "up", "job", "j", "instance", "x", NULL);
    fixture_append(&a->fx, T0 + 59000, 0, "__name__", "up", "job", "j", "instance", "x", NULL);
    /* group order: a-group (r.yml) then b-group */
    rules_eval_group(a->fx.v.rules, 1, T0);
    rules_eval_group(a->fx.v.rules, 1, T0 + 60500);
}

Test(api_rules, rules_shape)
{
    struct api a;
    api_open(&a);
    json_t *j = get(&a, "/api/v1/rules", NULL, 0, 200);
    cr_assert_str_eq(s(j, "status"), "success");
    json_t *groups = json_object_get(json_object_get(j, "data"), "groups");
    cr_assert_eq(json_array_size(groups), 2);
    json_t *g0 = json_array_get(groups, 0), *g1 = json_array_get(groups, 1);
    cr_assert_str_eq(s(g0, "name"), "a-group", "sorted by file then name");
    cr_assert_str_eq(s(g0, "file"), a.path);
    cr_assert_eq(num(g0, "interval"), 60, "global evaluation_interval default");
    cr_assert_eq(num(g1, "interval"), 10);
    cr_assert_eq(num(g1, "limit"), 5);
    cr_assert_str_eq(s(g0, "lastEvaluation"), "0001-01-01T00:00:00Z");
    json_t *rec = json_array_get(json_object_get(g1, "rules"), 0);
    cr_assert_str_eq(s(rec, "name"), "job:up:sum");
    cr_assert_str_eq(s(rec, "query"), "sum by (job) (up)");
    cr_assert_str_eq(s(rec, "type"), "recording");
    cr_assert_str_eq(s(rec, "health"), "unknown");
    cr_assert_str_eq(s(json_object_get(rec, "labels"), "kind"), "rec");
    cr_assert_null(json_object_get(rec, "lastError"));
    cr_assert_null(json_object_get(rec, "state"));
    json_t *plain = json_array_get(json_object_get(g0, "rules"), 0);
    cr_assert_null(json_object_get(plain, "labels"), "empty labels omitted on recording rules");
    json_decref(j);

    fire(&a);
    j = get(&a, "/api/v1/rules", NULL, 0, 200);
    g1 = json_array_get(json_object_get(json_object_get(j, "data"), "groups"), 1);
    cr_assert_str_eq(s(g1, "lastEvaluation"), "2023-11-14T22:14:20.5Z");
    json_t *al = json_array_get(json_object_get(g1, "rules"), 1);
    cr_assert_str_eq(s(al, "state"), "firing");
    cr_assert_str_eq(s(al, "name"), "Down");
    cr_assert_str_eq(s(al, "query"), "up == 0");
    cr_assert_eq(num(al, "duration"), 60);
    cr_assert_eq(num(al, "keepFiringFor"), 30);
    cr_assert_str_eq(s(json_object_get(al, "labels"), "severity"), "page");
    cr_assert_str_eq(s(json_object_get(al, "annotations"), "summary"), "{{ $labels.instance }} is down");
    cr_assert_str_eq(s(al, "health"), "ok");
    cr_assert_str_eq(s(al, "type"), "alerting");
    cr_assert(num(al, "evaluationTime") >= 0);
    json_t *alerts = json_object_get(al, "alerts");
    cr_assert_eq(json_array_size(alerts), 1);
    json_t *x = json_array_get(alerts, 0);
    cr_assert_str_eq(s(x, "state"), "firing");
    cr_assert_str_eq(s(x, "activeAt"), "2023-11-14T22:13:20Z");
    cr_assert_str_eq(s(x, "value"), "0e+00");
    cr_assert_str_eq(s(json_object_get(x, "labels"), "alertname"), "Down");
    cr_assert_str_eq(s(json_object_get(x, "labels"), "instance"), "x");
    cr_assert_str_eq(s(json_object_get(x, "annotations"), "summary"), "x is down");
    cr_assert_null(json_object_get(x, "keepFiringSince"));
    json_decref(j);
    api_close(&a);
}

Test(api_rules, filters)
{
    struct api a;
    api_open(&a);
    struct http_arg t1[] = { { "type", "alert" } };
    json_t *j = get(&a, "/api/v1/rules", t1, 1, 200);
    json_t *groups = json_object_get(json_object_get(j, "data"), "groups");
    cr_assert_eq(json_array_size(groups), 1, "a-group has no alerting rule");
    cr_assert_eq(json_array_size(json_object_get(json_array_get(groups, 0), "rules")), 1);
    json_decref(j);
    struct http_arg t2[] = { { "type", "record" }, { "rule_name[]", "plain" }, { "rule_name[]", "job:up:sum" } };
    j = get(&a, "/api/v1/rules", t2, 3, 200);
    groups = json_object_get(json_object_get(j, "data"), "groups");
    cr_assert_eq(json_array_size(groups), 2);
    json_decref(j);
    struct http_arg t3[] = { { "rule_group[]", "b-group" }, { "file[]", a.path } };
    j = get(&a, "/api/v1/rules", t3, 2, 200);
    groups = json_object_get(json_object_get(j, "data"), "groups");
    cr_assert_eq(json_array_size(groups), 1);
    cr_assert_str_eq(s(json_array_get(groups, 0), "name"), "b-group");
    json_decref(j);
    struct http_arg t4[] = { { "file[]", "/other.yml" } };
    j = get(&a, "/api/v1/rules", t4, 1, 200);
    cr_assert_eq(json_array_size(json_object_get(json_object_get(j, "data"), "groups")), 0);
    json_decref(j);
    fire(&a);
    struct http_arg t5[] = { { "exclude_alerts", "true" }, { "type", "alert" } };
    j = get(&a, "/api/v1/rules", t5, 2, 200);
    groups = json_object_get(json_object_get(j, "data"), "groups");
    json_t *al = json_array_get(json_object_get(json_array_get(groups, 0), "rules"), 0);
    cr_assert(json_is_null(json_object_get(al, "alerts")));
    cr_assert_str_eq(s(al, "state"), "firing");
    json_decref(j);
    struct http_arg bad[] = { { "type", "recording" } };
    j = get(&a, "/api/v1/rules", bad, 1, 400);
    cr_assert_str_eq(s(j, "errorType"), "bad_data");
    cr_assert_str_eq(s(j, "error"), "not supported value \"recording\"");
    json_decref(j);
    api_close(&a);
}

Test(api_rules, alerts_endpoint)
{
    struct api a;
    api_open(&a);
    json_t *j = get(&a, "/api/v1/alerts", NULL, 0, 200);
    cr_assert_eq(json_array_size(json_object_get(json_object_get(j, "data"), "alerts")), 0);
    json_decref(j);
    fire(&a);
    j = get(&a, "/api/v1/alerts", NULL, 0, 200);
    json_t *alerts = json_object_get(json_object_get(j, "data"), "alerts");
    cr_assert_eq(json_array_size(alerts), 1);
    json_t *x = json_array_get(alerts, 0);
    cr_assert_eq(json_object_size(x), 5, "labels, annotations, state, activeAt, value");
    cr_assert_str_eq(s(x, "state"), "firing");
    cr_assert_str_eq(s(x, "activeAt"), "2023-11-14T22:13:20Z");
    cr_assert_str_eq(s(x, "value"), "0e+00");
    cr_assert_str_eq(s(json_object_get(x, "labels"), "severity"), "page");
    json_decref(j);
    /* the condition clears: keep_firing_for shows keepFiringSince */
    rules_eval_group(a.fx.v.rules, 1, T0 + 70500 + 300000);
    j = get(&a, "/api/v1/alerts", NULL, 0, 200);
    x = json_array_get(json_object_get(json_object_get(j, "data"), "alerts"), 0);
    cr_assert_str_eq(s(x, "keepFiringSince"), "2023-11-14T22:19:30.5Z");
    json_decref(j);
    api_close(&a);
}

Test(api_rules, reload)
{
    struct api a;
    api_open(&a);
    struct http_response resp;
    fixture_call(&a.fx, handler("/-/reload"), "/-/reload", NULL, 0, &resp);
    cr_assert_eq(resp.status, 200);
    cr_assert_eq(resp.body.len, 0);
    vg_buf_free(&resp.body);
    FILE *f = fopen(a.path, "w");
    fputs("groups:\n- name: x\n  rules:\n  - alert: A\n", f);
    fclose(f);
    fixture_call(&a.fx, handler("/-/reload"), "/-/reload", NULL, 0, &resp);
    cr_assert_eq(resp.status, 500);
    cr_assert(strstr(resp.body.p, "failed to reload config: "), "%s", resp.body.p);
    cr_assert(strstr(resp.body.p, "field 'expr' must be set in rule"), "%s", resp.body.p);
    vg_buf_free(&resp.body);
    json_t *j = get(&a, "/api/v1/rules", NULL, 0, 200);
    cr_assert_eq(json_array_size(json_object_get(json_object_get(j, "data"), "groups")), 2,
                 "old rules kept");
    json_decref(j);
    api_close(&a);
}

Test(api_rules, no_engine)
{
    struct server_fixture fx;
    fixture_open(&fx);
    struct http_response resp;
    fixture_call(&fx, handler("/api/v1/rules"), "/api/v1/rules", NULL, 0, &resp);
    cr_assert_eq(resp.status, 200);
    cr_assert_str_eq(resp.body.p, "{\"status\":\"success\",\"data\":{\"groups\":[]}}");
    vg_buf_free(&resp.body);
    fixture_close(&fx);
}

Test(api_rules, formats)
{
    struct vg_buf b;
    vg_buf_init(&b);
    rules_api_go_e(&b, 1);
    vg_buf_putc(&b, ' ');
    rules_api_go_e(&b, 0.95);
    vg_buf_putc(&b, ' ');
    rules_api_go_e(&b, 123456.789);
    vg_buf_putc(&b, ' ');
    rules_api_go_e(&b, NAN);
    vg_buf_putc(&b, ' ');
    rules_api_go_e(&b, -INFINITY);
    vg_buf_putc(&b, ' ');
    rules_api_time(&b, 1500);
    vg_buf_putc(&b, ' ');
    rules_api_time(&b, 1700000000120);
    cr_assert_str_eq(vg_buf_cstr(&b), "1e+00 9.5e-01 1.23456789e+05 NaN -Inf "
                                      "1970-01-01T00:00:01.5Z 2023-11-14T22:13:20.12Z");
    vg_buf_free(&b);
}

Test(api_rules, allocation_failure)
{
    struct api a;
    api_open(&a);
    fire(&a);
    for (uint64_t n = 1; n < 60; n++) {
        a.fx.fail_after = n;
        struct http_response resp;
        fixture_call(&a.fx, handler("/api/v1/rules"), "/api/v1/rules", NULL, 0, &resp);
        cr_assert(resp.status == 200 || resp.status == 503, "status %d", resp.status);
        vg_buf_free(&resp.body);
    }
    a.fx.fail_after = 0;
    api_close(&a);
}
