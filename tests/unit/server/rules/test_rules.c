/* Tests for server/rules/rules.c, rules_eval.c and rules_state.c: alert state
 * transitions on a fake clock (each evaluation is given its time), recording rules
 * feeding later rules, staleness, limits, restart with state kept, reload, alignment. */
#include "../../../../server/promql/engine.h"
#include "../../../../server/rules/rules.h"
#include "../../../../server/rules/rules_int.h"
#include "../fixture.h"
#include "../../../../storage/logstore/lentry.h"

#include <math.h>

#define T0 1700000000000LL /* a multiple of every interval used here */

struct rt {
    struct server_fixture fx;
    char rules_path[128], cfg_path[128], state_dir[128];
    struct config *cfg;
    struct rules *r;
};

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static void rt_open(struct rt *t, const char *rules_yaml, const char *global_yaml)
{
    fixture_open(&t->fx);
    snprintf(t->rules_path, sizeof t->rules_path, "%s/rules.yml", t->fx.dir);
    snprintf(t->cfg_path, sizeof t->cfg_path, "%s/vigil.yml", t->fx.dir);
    snprintf(t->state_dir, sizeof t->state_dir, "%s/rules", t->fx.dir);
    write_file(t->rules_path, rules_yaml);
    char cfg[1024];
    snprintf(cfg, sizeof cfg, "%s\nrule_files:\n  - 'rules*.yml'\n", global_yaml ? global_yaml : "");
    write_file(t->cfg_path, cfg);
    struct vg_err err = { 0 };
    t->cfg = config_load_file(t->cfg_path, &err);
    cr_assert_not_null(t->cfg, "%s", err.msg);
}

static void rt_start(struct rt *t)
{
    struct rules_opts o = { .cfg = t->cfg, .tsdb = t->fx.v.tsdb, .metrics = t->fx.v.metrics,
                            .state_dir = t->state_dir, .manual = true };
    struct vg_err err = { 0 };
    t->r = rules_new(&o, &err);
    cr_assert_not_null(t->r, "%s", err.msg);
}

static void rt_close(struct rt *t)
{
    rules_free(t->r);
    config_free(t->cfg);
    fixture_close(&t->fx);
}

/* Number of series `q` returns at t; *v gets the first one's value. */
static size_t query(struct rt *t, const char *q, int64_t at, double *v)
{
    struct vg_err err = { 0 };
    struct promql_expr *e = promql_parse(q, strlen(q), &err);
    cr_assert_not_null(e, "%s", err.msg);
    struct querier qr;
    querier_tsdb(t->fx.v.tsdb, &qr);
    struct promql_opts o;
    promql_opts_default(&o);
    struct promql_result *res;
    cr_assert_eq(promql_eval_instant(&o, &qr, e, at, &res, &err), 0, "%s", err.msg);
    size_t n = res->nseries;
    if (n && v)
        *v = res->series[0].points[0].v;
    promql_result_free(res);
    promql_expr_free(e);
    return n;
}

static struct rules_view *view(struct rt *t)
{
    struct rules_view *v;
    struct vg_err err;
    cr_assert_eq(rules_view(t->r, &v, &err), 0);
    return v;
}

static const char *LOAD_RULES =
    "groups:\n"
    "  - name: g\n"
    "    interval: 10s\n"
    "    rules:\n"
    "      - record: load:x2\n"
    "        expr: load * 2\n"
    "      - alert: High\n"
    "        expr: load:x2 > 10\n"
    "        for: 20s\n"
    "        keep_firing_for: 15s\n"
    "        labels: {severity: page, inst: '{{ $labels.instance }}'}\n"
    "        annotations: {summary: '{{ $labels.instance }} at {{ $value }} in {{ $externalLabels.cluster }}'}\n";

/* The one alert of rule 1 of group 0, or NULL when it has none. */
static const struct rules_alert_view *the_alert(struct rules_view *v)
{
    const struct rules_rule_view *r = &v->groups[0].rules[1];
    return r->nalerts ? &r->alerts[0] : NULL;
}

Test(rules, pending_firing_keep_firing_resolved)
{
    struct rt t;
    rt_open(&t, LOAD_RULES, "global:\n  external_labels: {cluster: eu1}\n");
    rt_start(&t);
    cr_assert_eq(rules_ngroups(t.r), 1);
    fixture_append(&t.fx, T0 - 1000, 6, "__name__", "load", "instance", "a", NULL);

    /* T0: the recording rule writes 12, which the alert sees at once: pending */
    cr_assert_eq(rules_eval_group(t.r, 0, T0), 0);
    double v = 0;
    cr_assert_eq(query(&t, "load:x2", T0, &v), 1);
    cr_assert_eq(v, 12);
    struct rules_view *vw = view(&t);
    const struct rules_rule_view *rec = &vw->groups[0].rules[0], *al = &vw->groups[0].rules[1];
    cr_assert_eq(rec->health, RULES_OK);
    cr_assert_eq(rec->last_eval_ms, T0);
    cr_assert_eq(al->state, RULES_PENDING);
    const struct rules_alert_view *a = the_alert(vw);
    cr_assert_not_null(a);
    cr_assert_eq(a->active_at_ms, T0);
    cr_assert_eq(a->value, 12);
    cr_assert(vg_str_eq_c(labels_get(a->labels, a->nlabels, "alertname"), "High"));
    cr_assert(vg_str_eq_c(labels_get(a->labels, a->nlabels, "inst"), "a"));
    cr_assert(vg_str_eq_c(labels_get(a->labels, a->nlabels, "severity"), "page"));
    cr_assert_null(labels_get(a->labels, a->nlabels, "__name__").p);
    cr_assert_null(labels_get(a->labels, a->nlabels, "cluster").p, "external labels stay out of ALERTS");
    cr_assert(vg_str_eq_c(labels_get(a->annotations, a->nannotations, "summary"), "a at 12 in eu1"));
    rules_view_free(vw);
    cr_assert_eq(query(&t, "ALERTS{alertstate=\"pending\",alertname=\"High\"}", T0, NULL), 1);
    cr_assert_eq(query(&t, "ALERTS_FOR_STATE", T0, &v), 1);
    cr_assert_eq(v, (double)(T0 / 1000));

    /* T0+10s: still pending (10s < for) */
    fixture_append(&t.fx, T0 + 9000, 6, "__name__", "load", "instance", "a", NULL);
    rules_eval_group(t.r, 0, T0 + 10000);
    vw = view(&t);
    cr_assert_eq(vw->groups[0].rules[1].state, RULES_PENDING);
    rules_view_free(vw);

    /* T0+20s: firing */
    fixture_append(&t.fx, T0 + 19000, 6, "__name__", "load", "instance", "a", NULL);
    rules_eval_group(t.r, 0, T0 + 20000);
    vw = view(&t);
    cr_assert_eq(vw->groups[0].rules[1].state, RULES_FIRING);
    cr_assert_eq(the_alert(vw)->active_at_ms, T0);
    rules_view_free(vw);
    cr_assert_eq(query(&t, "ALERTS{alertstate=\"firing\"}", T0 + 20000, NULL), 1);
    cr_assert_eq(query(&t, "ALERTS{alertstate=\"pending\"}", T0 + 20000, NULL), 0,
                 "the pending series got a staleness marker");

    /* the condition clears: keep_firing_for holds it 15s */
    fixture_append(&t.fx, T0 + 25000, 1, "__name__", "load", "instance", "a", NULL);
    rules_eval_group(t.r, 0, T0 + 30000);
    vw = view(&t);
    cr_assert_eq(vw->groups[0].rules[1].state, RULES_FIRING);
    cr_assert_eq(the_alert(vw)->keep_firing_since_ms, T0 + 30000);
    rules_view_free(vw);
    rules_eval_group(t.r, 0, T0 + 40000);
    vw = view(&t);
    cr_assert_eq(vw->groups[0].rules[1].state, RULES_FIRING);
    rules_view_free(vw);

    /* T0+50s: 20s without the condition >= 15s: resolved */
    rules_eval_group(t.r, 0, T0 + 50000);
    vw = view(&t);
    cr_assert_eq(vw->groups[0].rules[1].state, RULES_INACTIVE);
    cr_assert_eq(vw->groups[0].rules[1].nalerts, 0);
    cr_assert_eq(vw->groups[0].last_eval_ms, T0 + 50000);
    rules_view_free(vw);
    cr_assert_eq(query(&t, "ALERTS", T0 + 50000, NULL), 0, "staleness marker on resolve");
    rt_close(&t);
}

Test(rules, restart_restores_state)
{
    struct rt t;
    rt_open(&t, LOAD_RULES, NULL);
    rt_start(&t);
    int64_t base = T0;
    for (int i = 0; i <= 3; i++) {
        fixture_append(&t.fx, base + i * 10000 - 1000, 6, "__name__", "load", "instance", "a", NULL);
        rules_eval_group(t.r, 0, base + i * 10000);
    }
    struct rules_view *vw = view(&t);
    cr_assert_eq(vw->groups[0].rules[1].state, RULES_FIRING);
    rules_view_free(vw);
    rules_free(t.r); /* saves state */
    fixture_reopen(&t.fx);
    rt_start(&t);
    vw = view(&t);
    cr_assert_eq(vw->groups[0].rules[1].state, RULES_FIRING, "firing state restored");
    cr_assert_eq(the_alert(vw)->active_at_ms, base, "for timer not reset");
    rules_view_free(vw);
    fixture_append(&t.fx, base + 39000, 6, "__name__", "load", "instance", "a", NULL);
    rules_eval_group(t.r, 0, base + 40000);
    vw = view(&t);
    cr_assert_eq(vw->groups[0].rules[1].state, RULES_FIRING);
    cr_assert_eq(the_alert(vw)->active_at_ms, base);
    rules_view_free(vw);
    rt_close(&t);
}

Test(rules, restart_ignores_unreadable_state)
{
    struct rt t;
    rt_open(&t, LOAD_RULES, NULL);
    mkdir(t.state_dir, 0755);
    char p[160];
    snprintf(p, sizeof p, "%s/state.json", t.state_dir);
    write_file(p, "{not json");
    rt_start(&t);
    struct rules_view *vw = view(&t);
    cr_assert_eq(vw->groups[0].rules[1].nalerts, 0);
    rules_view_free(vw);
    rt_close(&t);
}

Test(rules, limits_and_errors)
{
    struct rt t;
    rt_open(&t,
            "groups:\n"
            "  - name: lim\n"
            "    limit: 1\n"
            "    rules:\n"
            "      - alert: Two\n"
            "        expr: up > 0\n"
            "      - record: two:sum\n"
            "        expr: up\n"
            "      - record: bad:matrix\n"
            "        expr: up[5m]\n"
            "      - alert: Dup\n"
            "        expr: up > 0\n"
            "        labels: {instance: same}\n",
            NULL);
    rt_start(&t);
    fixture_append(&t.fx, T0 - 1000, 1, "__name__", "up", "instance", "a", NULL);
    fixture_append(&t.fx, T0 - 1000, 1, "__name__", "up", "instance", "b", NULL);
    rules_eval_group(t.r, 0, T0);
    struct rules_view *vw = view(&t);
    const struct rules_rule_view *r = vw->groups[0].rules;
    cr_assert_eq(r[0].health, RULES_ERR);
    cr_assert_str_eq(r[0].last_error, "exceeded limit of 1 with 2 alerts");
    cr_assert_eq(r[0].nalerts, 0);
    cr_assert_eq(r[1].health, RULES_ERR);
    cr_assert_str_eq(r[1].last_error, "exceeded limit of 1 with 2 series");
    cr_assert_str_eq(r[2].last_error, "rule result is not a vector or scalar");
    cr_assert_str_eq(r[3].last_error,
                     "vector contains metrics with the same labelset after applying alert labels");
    rules_view_free(vw);
    cr_assert_eq(query(&t, "two:sum", T0, NULL), 0, "a failed rule writes nothing");
    struct vg_buf b;
    vg_buf_init(&b);
    metrics_render(t.fx.v.metrics, &b);
    cr_assert(strstr(vg_buf_cstr(&b), "vigil_rule_evaluation_failures_total{rule_group=\""));
    cr_assert(strstr(b.p, "prometheus_rule_evaluation_failures_total{rule_group="));
    cr_assert(strstr(b.p, "lim\"} 4"));
    vg_buf_free(&b);
    rt_close(&t);
}

Test(rules, query_offset_and_scalar_records)
{
    struct rt t;
    rt_open(&t,
            "groups:\n"
            "  - name: off\n"
            "    query_offset: 30s\n"
            "    labels: {team: a}\n"
            "    rules:\n"
            "      - record: s:const\n"
            "        expr: '42'\n"
            "        labels: {team: b, drop: ''}\n",
            NULL);
    rt_start(&t);
    rules_eval_group(t.r, 0, T0);
    double v;
    cr_assert_eq(query(&t, "s:const{team=\"b\"}", T0 - 30000, &v), 1, "written at t - offset");
    cr_assert_eq(v, 42);
    rt_close(&t);
}

Test(rules, reload_keeps_state_and_survives_bad_files)
{
    struct rt t;
    rt_open(&t, LOAD_RULES, NULL);
    rt_start(&t);
    fixture_append(&t.fx, T0 - 1000, 6, "__name__", "load", "instance", "a", NULL);
    rules_eval_group(t.r, 0, T0);
    char more[2048];
    snprintf(more, sizeof more, "%s      - record: extra\n        expr: vector(2)\n", LOAD_RULES);
    write_file(t.rules_path, more);
    struct vg_err err = { 0 };
    cr_assert_eq(rules_reload(t.r, &err), 0, "%s", err.msg);
    struct rules_view *vw = view(&t);
    cr_assert_eq(vw->groups[0].nrules, 3);
    cr_assert_eq(vw->groups[0].rules[1].state, RULES_PENDING, "unchanged rule kept its alert");
    cr_assert_eq(the_alert(vw)->active_at_ms, T0);
    cr_assert_eq(vw->groups[0].rules[2].health, RULES_UNKNOWN);
    rules_view_free(vw);

    write_file(t.rules_path, "groups:\n  - name: g\n    rules:\n      - record: x\n        expr: sum(\n");
    cr_assert_eq(rules_reload(t.r, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "rules.yml:5: group \"g\", rule 1, \"x\": could not parse expression"),
              "%s", err.msg);
    vw = view(&t);
    cr_assert_eq(vw->groups[0].nrules, 3, "old rules still running");
    rules_view_free(vw);

    /* a changed label makes it a different rule: its state starts over */
    write_file(t.rules_path,
               "groups:\n  - name: g\n    interval: 10s\n    rules:\n"
               "      - alert: High\n        expr: load > 1\n        labels: {severity: low}\n");
    cr_assert_eq(rules_reload(t.r, &err), 0, "%s", err.msg);
    vw = view(&t);
    cr_assert_eq(vw->groups[0].nrules, 1);
    cr_assert_eq(vw->groups[0].rules[0].nalerts, 0);
    rules_view_free(vw);
    rt_close(&t);
}

Test(rules, group_alignment)
{
    uint64_t h = rules_group_hash("rules.yml", "g");
    cr_assert_neq(h, rules_group_hash("rules.yml", "h"));
    for (int64_t now = T0; now < T0 + 50000; now += 3337) {
        int64_t s = rules_slot(h, 10000, now);
        cr_assert_leq(s, now);
        cr_assert_lt(now - s, 10000);
        cr_assert_eq(s % 10000, (int64_t)(h % 10000));
    }
    cr_assert_eq(rules_slot(7, 1000, 5007), 5007);
    cr_assert_eq(rules_slot(7, 1000, 5006), 4007);
}

Test(rules, config_errors)
{
    struct vg_err err = { 0 };
    const char *y = "global:\n  evaluation_interval: often\n";
    struct config *c = config_load_buf("c.yml", y, strlen(y), &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert_eq(rules_check_config(c, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "c.yml:2:"), "%s", err.msg);
    config_free(c);
    y = "global:\n  external_labels: {\"a-b\": x}\n";
    c = config_load_buf("c.yml", y, strlen(y), &err);
    cr_assert_eq(rules_check_config(c, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "invalid label name"), "%s", err.msg);
    config_free(c);
    y = "global:\n  scrape_interval: 15s\n  bogus: 1\n";
    c = config_load_buf("c.yml", y, strlen(y), &err);
    cr_assert_eq(rules_check_config(c, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "unknown key \"bogus\""), "%s", err.msg);
    config_free(c);
    y = "rule_files: x.yml\n";
    c = config_load_buf("c.yml", y, strlen(y), &err);
    cr_assert_eq(rules_check_config(c, &err), VG_EINVAL);
    config_free(c);
    y = "rule_files: ['/nonexistent-dir-vigil/*.yml']\n";
    c = config_load_buf("c.yml", y, strlen(y), &err);
    cr_assert_eq(rules_check_config(c, &err), 0, "a glob matching nothing is fine: %s", err.msg);
    config_free(c);
}

Test(rules, allocation_failure)
{
    struct rt t;
    rt_open(&t, LOAD_RULES, NULL);
    rt_start(&t);
    fixture_append(&t.fx, T0 - 1000, 6, "__name__", "load", "instance", "a", NULL);
    for (uint64_t n = 1; n < 200; n += 3) {
        vg_alloc_fail_after(n);
        rules_eval_group(t.r, 0, T0 + (int64_t)n * 1000);
        struct rules_view *vw = NULL;
        struct vg_err err;
        int rc = rules_view(t.r, &vw, &err);
        vg_alloc_fail_after(0);
        cr_assert(rc == 0 || rc == VG_ENOMEM);
        rules_view_free(vw);
    }
    rt_close(&t);
}

Test(rules, logql_alert_on_log_lines)
{
    struct rt t;
    rt_open(&t,
            "groups:\n"
            "  - name: logs\n"
            "    type: logql\n"
            "    rules:\n"
            "      - alert: Errors\n"
            "        expr: sum by (app) (count_over_time({app=\"api\"} |= \"error\" [1m])) > 1\n"
            "        annotations: {summary: '{{ $value }} errors in {{ $labels.app }}'}\n"
            "      - record: app:lines:count1m\n"
            "        expr: sum by (app) (count_over_time({app=\"api\"}[1m]))\n",
            NULL);
    fixture_open_logs(&t.fx);
    /* rules_new after the log store exists, so it can read it */
    struct rules_opts o = { .cfg = t.cfg, .tsdb = t.fx.v.tsdb, .logs = t.fx.v.logs,
                            .state_dir = NULL, .manual = true };
    struct vg_err err = { 0 };
    t.r = rules_new(&o, &err);
    cr_assert_not_null(t.r, "%s", err.msg);
    struct label ls[] = { { VG_STR("app"), VG_STR("api") } };
    struct lentry e[3] = {
        { (T0 - 30000) * 1000000, VG_STR("error: disk full"), NULL, 0 },
        { (T0 - 20000) * 1000000, VG_STR("ok"), NULL, 0 },
        { (T0 - 10000) * 1000000, VG_STR("error: again"), NULL, 0 },
    };
    struct logstore_stream_in in = { ls, 1, e, 3 };
    struct logstore_push_result res;
    memset(&res, 0, sizeof res);
    cr_assert_eq(logstore_push(t.fx.v.logs, &in, 1, &res, &err), 0, "%s", err.msg);
    rules_eval_group(t.r, 0, T0);
    struct rules_view *vw = view(&t);
    const struct rules_rule_view *al = &vw->groups[0].rules[0];
    cr_assert_eq(al->health, RULES_OK, "%s", al->last_error);
    cr_assert_eq(al->state, RULES_FIRING, "no for: firing at once");
    cr_assert_eq(al->nalerts, 1);
    cr_assert(vg_str_eq_c(labels_get(al->alerts[0].annotations, al->alerts[0].nannotations, "summary"),
                          "2 errors in api"));
    cr_assert_eq(vw->groups[0].rules[1].health, RULES_OK, "%s", vw->groups[0].rules[1].last_error);
    rules_view_free(vw);
    double v = 0;
    cr_assert_eq(query(&t, "app:lines:count1m", T0, &v), 1);
    cr_assert_eq(v, 3);
    rt_close(&t);
}

/* The text of /metrics. */
static char *render_metrics(struct rt *t)
{
    struct vg_buf b;
    vg_buf_init(&b);
    metrics_render(t->fx.v.metrics, &b);
    char *s = strdup(vg_buf_cstr(&b));
    vg_buf_free(&b);
    return s;
}

/* Occurrences of needle in the file at path. */
static int count_in_file(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

Test(rules, template_errors_counted_logged_once_other_output_kept)
{
    struct rt t;
    rt_open(&t,
            "groups:\n"
            "  - name: tmpl\n"
            "    rules:\n"
            "      - alert: T\n"
            "        expr: load > 1\n"
            "        labels: {sev: '{{ if gt $value 5.0 }}page{{ else }}{{ humanize \"y\" }}{{ end }}'}\n"
            "        annotations:\n"
            "          bad: '{{ humanize \"x\" }}'\n"
            "          good: 'v={{ $value }}'\n",
            NULL);
    rt_start(&t);
    char logp[160];
    snprintf(logp, sizeof logp, "%s/log.txt", t.fx.dir);
    fflush(stderr);
    int saved = dup(2);
    FILE *lf = freopen(logp, "w", stderr);
    cr_assert_not_null(lf);
    for (int i = 0; i < 3; i++) {
        fixture_append(&t.fx, T0 + i * 60000 - 1000, 9, "__name__", "load", "instance", "a", NULL);
        rules_eval_group(t.r, 0, T0 + i * 60000);
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    struct rules_view *vw = view(&t);
    const struct rules_rule_view *r = &vw->groups[0].rules[0];
    cr_assert_eq(r->health, RULES_OK, "template errors do not fail the rule");
    cr_assert_eq(r->nalerts, 1);
    const struct rules_alert_view *a = &r->alerts[0];
    cr_assert(vg_str_eq_c(labels_get(a->labels, a->nlabels, "sev"), "page"));
    cr_assert(vg_str_eq_c(labels_get(a->annotations, a->nannotations, "good"), "v=9"));
    struct vg_str bad = labels_get(a->annotations, a->nannotations, "bad");
    cr_assert(bad.p && strstr(bad.p, "<error expanding template: template: __alert_T"), "%s", bad.p);
    cr_assert(strstr(bad.p, "error calling humanize: strconv.ParseFloat"), "%s", bad.p);
    rules_view_free(vw);
    char *m = render_metrics(&t);
    cr_assert(strstr(m, "vigil_rule_template_errors_total{rule_group=\""), "%s", m);
    cr_assert(strstr(m, ";tmpl\"} 3\n"), "one error per evaluation: %s", m);
    cr_assert_null(strstr(m, "prometheus_rule_template_errors_total"));
    free(m);
    cr_assert_eq(count_in_file(logp, "expanding alert template failed"), 1,
                 "the same error is logged once");
    /* a new error (the label's other branch) changes the set: logged again, once */
    saved = dup(2);
    cr_assert_not_null(freopen(logp, "w", stderr));
    for (int i = 3; i < 5; i++) {
        fixture_append(&t.fx, T0 + i * 60000 - 1000, 2, "__name__", "load", "instance", "a", NULL);
        rules_eval_group(t.r, 0, T0 + i * 60000);
    }
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    cr_assert_eq(count_in_file(logp, "expanding alert template failed"), 1);
    cr_assert_eq(count_in_file(logp, "strconv.ParseFloat: parsing \\\"y\\\""), 1);
    m = render_metrics(&t);
    cr_assert(strstr(m, ";tmpl\"} 7\n"), "two per evaluation: %s", m);
    free(m);
    rt_close(&t);
}

Test(rules, template_query_range_and_external_url)
{
    struct rt t;
    rt_open(&t,
            "groups:\n"
            "  - name: q\n"
            "    rules:\n"
            "      - alert: Q\n"
            "        expr: load > 1\n"
            "        annotations:\n"
            "          top: '{{ with query \"sort_desc(load)\" }}{{ . | first | label \"instance\" }}={{ . | first | value }}{{ end }}'\n"
            "          all: '{{ range query \"load\" | sortByLabel \"instance\" }}{{ .Labels.instance }}:{{ .Value }} {{ end }}'\n"
            "          url: '{{ $externalURL }} {{ pathPrefix }}'\n"
            "          at: '{{ now }}'\n",
            "server:\n  external_url: https://vigil.example.com/prom/\n");
    rt_start(&t);
    fixture_append(&t.fx, T0 - 1000, 3, "__name__", "load", "instance", "b", NULL);
    fixture_append(&t.fx, T0 - 1000, 7, "__name__", "load", "instance", "a", NULL);
    rules_eval_group(t.r, 0, T0);
    struct rules_view *vw = view(&t);
    const struct rules_rule_view *r = &vw->groups[0].rules[0];
    cr_assert_eq(r->nalerts, 2);
    const struct rules_alert_view *a = &r->alerts[0];
    cr_assert(vg_str_eq_c(labels_get(a->annotations, a->nannotations, "top"), "a=7"));
    cr_assert(vg_str_eq_c(labels_get(a->annotations, a->nannotations, "all"), "a:7 b:3 "));
    cr_assert(vg_str_eq_c(labels_get(a->annotations, a->nannotations, "url"),
                          "https://vigil.example.com/prom /prom"));
    cr_assert(vg_str_eq_c(labels_get(a->annotations, a->nannotations, "at"), "1.7e+09"));
    rules_view_free(vw);
    struct vg_buf b;
    vg_buf_init(&b);
    rules_generator_url(&b, "https://vigil.example.com/prom", "sum(rate(x{a=\"b c\"}[5m])) > 1");
    cr_assert_str_eq(vg_buf_cstr(&b), "https://vigil.example.com/prom/graph?g0.expr="
                     "sum%28rate%28x%7Ba%3D%22b+c%22%7D%5B5m%5D%29%29+%3E+1&g0.tab=1");
    vg_buf_free(&b);
    rt_close(&t);
}

Test(rules, missed_iterations_and_durations)
{
    struct rt t;
    rt_open(&t, LOAD_RULES, NULL);
    rt_start(&t);
    struct group_rt *g = t.r->gen->groups[0];
    /* the thread woke 35s late for a 10s slot: 3 slots missed, the latest is run */
    cr_assert_eq(rules_group_catch_up(g, T0, T0 + 35000), T0 + 30000);
    cr_assert_eq(rules_group_catch_up(g, T0, T0 + 9999), T0, "on time: nothing missed");
    fixture_append(&t.fx, T0 + 29000, 6, "__name__", "load", "instance", "a", NULL);
    rules_eval_group(t.r, 0, T0 + 30000);
    char *m = render_metrics(&t);
    for (int p = 0; p < 2; p++) {
        const char *pre = p ? "prometheus_" : "vigil_";
        char want[256];
        snprintf(want, sizeof want, "%srule_group_iterations_missed_total{rule_group=\"%s;g\"} 3\n",
                 pre, t.rules_path);
        cr_assert(strstr(m, want), "%s in %s", want, m);
        snprintf(want, sizeof want, "%srule_group_iterations_total{rule_group=\"%s;g\"} 4\n", pre,
                 t.rules_path);
        cr_assert(strstr(m, want), "missed slots count as iterations: %s", want);
        snprintf(want, sizeof want, "%srule_evaluation_duration_seconds_count{rule_group=\"%s;g\"} 2\n",
                 pre, t.rules_path);
        cr_assert(strstr(m, want), "one observation per rule: %s", want);
        snprintf(want, sizeof want, "%srule_group_last_duration_seconds{rule_group=\"%s;g\"} ", pre,
                 t.rules_path);
        cr_assert(strstr(m, want), "%s", want);
        snprintf(want, sizeof want, "%srule_group_last_evaluation_timestamp_seconds{rule_group=\"%s;g\"} ",
                 pre, t.rules_path);
        cr_assert(strstr(m, want), "%s", want);
    }
    free(m);
    rt_close(&t);
}
