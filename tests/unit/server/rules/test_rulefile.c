/* Tests for server/rules/rulefile.c: parsing and promtool-like validation. */
#include "../../../../server/rules/rulefile.h"
#include "../../../../storage/base/vg_alloc.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static struct rule_file *parse_ok(const char *yaml)
{
    struct rule_file *f = NULL;
    struct vg_err err = { 0 };
    int rc = rulefile_parse("r.yml", yaml, strlen(yaml), &f, NULL, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    return f;
}

/* Parses yaml expecting failure; returns every error (static buffer). */
static const char *parse_bad(const char *yaml)
{
    static char all[4096];
    struct rule_file *f = NULL;
    struct vg_err err = { 0 };
    struct vg_buf b;
    vg_buf_init(&b);
    int rc = rulefile_parse("r.yml", yaml, strlen(yaml), &f, &b, &err);
    cr_assert_eq(rc, VG_EINVAL, "parsed: %s", yaml);
    cr_assert_null(f);
    const char *s = vg_buf_cstr(&b);
    cr_assert(strstr(s, err.msg), "first error %s not in %s", err.msg, s);
    snprintf(all, sizeof all, "%s", s);
    vg_buf_free(&b);
    return all;
}

#define HAS(s, sub) cr_assert(strstr((s), (sub)), "missing \"%s\" in:\n%s", (sub), (s))

Test(rulefile, full_file)
{
    struct rule_file *f = parse_ok(
        "groups:\n"
        "  - name: node\n"
        "    interval: 30s\n"
        "    limit: 10\n"
        "    query_offset: 1m\n"
        "    labels: {team: infra}\n"
        "    rules:\n"
        "      - record: job:up:sum\n"
        "        expr: sum  by (job) (up)\n"
        "        labels: {source: rule}\n"
        "      - alert: InstanceDown\n"
        "        expr: up == 0\n"
        "        for: 5m\n"
        "        keep_firing_for: 2m\n"
        "        labels:\n"
        "          severity: page\n"
        "          instance: '{{ $labels.instance }}'\n"
        "        annotations:\n"
        "          summary: '{{ $labels.instance }} down'\n"
        "  - name: empty\n");
    cr_assert_eq(f->ngroups, 2);
    cr_assert_eq(f->nrules, 2);
    const struct rule_group_def *g = &f->groups[0];
    cr_assert_str_eq(g->name, "node");
    cr_assert_str_eq(g->file, "r.yml");
    cr_assert_eq(g->interval_ms, 30000);
    cr_assert_eq(g->limit, 10);
    cr_assert_eq(g->query_offset_ms, 60000);
    cr_assert_eq(g->lang, RULE_LANG_PROMQL);
    cr_assert_eq(g->nlabels, 1);
    cr_assert(vg_str_eq_c(g->labels[0].name, "team"));
    const struct rule_def *r = &g->rules[0];
    cr_assert_eq(r->kind, RULE_RECORD);
    cr_assert_str_eq(r->name, "job:up:sum");
    cr_assert_str_eq(r->query, "sum by (job) (up)");
    cr_assert_eq(r->line, 8);
    r = &g->rules[1];
    cr_assert_eq(r->kind, RULE_ALERT);
    cr_assert_str_eq(r->name, "InstanceDown");
    cr_assert_eq(r->for_ms, 300000);
    cr_assert_eq(r->keep_firing_for_ms, 120000);
    cr_assert_eq(r->nlabels, 2);
    cr_assert(vg_str_eq_c(r->labels[0].name, "instance")); /* sorted */
    cr_assert_not_null(r->label_tmpl[0]);
    cr_assert_eq(r->nannotations, 1);
    cr_assert_not_null(r->annot_tmpl[0]);
    cr_assert_not_null(r->promql);
    cr_assert_eq(f->groups[1].nrules, 0);
    cr_assert_eq(f->groups[1].interval_ms, 0);
    rulefile_free(f);
}

Test(rulefile, logql_group)
{
    struct rule_file *f = parse_ok(
        "groups:\n"
        "  - name: logs\n"
        "    type: logql\n"
        "    rules:\n"
        "      - alert: Errors\n"
        "        expr: sum by (app) (count_over_time({app=\"api\"} |= \"error\" [5m])) > 10\n");
    cr_assert_eq(f->groups[0].lang, RULE_LANG_LOGQL);
    cr_assert_not_null(f->groups[0].rules[0].logql);
    cr_assert_null(f->groups[0].rules[0].promql);
    rulefile_free(f);
    const char *e = parse_bad("groups:\n- name: l\n  type: logql\n  rules:\n"
                              "  - alert: A\n    expr: '{app=\"x\"} |= \"e\"'\n");
    HAS(e, "r.yml:6: group \"l\", rule 1, \"A\": a rule needs a LogQL metric query");
    e = parse_bad("groups:\n- name: l\n  type: sql\n  rules: []\n");
    HAS(e, "r.yml:3: group \"l\": type: \"sql\" is not promql or logql");
}

Test(rulefile, validation_errors_with_lines)
{
    const char *e = parse_bad(
        "groups:\n"
        "  - name: a\n"
        "    rules:\n"
        "      - record: \"bad name\"\n"
        "        expr: up\n"
        "      - alert: X\n"
        "        expr: sum(up\n"
        "      - record: x\n"
        "        alert: y\n"
        "        expr: up\n"
        "      - expr: up\n"
        "      - alert: Y\n"
        "        expr: up\n"
        "        labels:\n"
        "          \"bad-label\": x\n"
        "      - record: r\n"
        "        expr: up\n"
        "        for: 1m\n"
        "        annotations: {a: b}\n"
        "      - alert: Z\n"
        "        annotations: {a: '{{ nofunc }}'}\n"
        "  - name: a\n"
        "    rules: []\n");
    HAS(e, "r.yml:4: group \"a\", rule 1, \"bad name\": invalid recording rule name: bad name");
    HAS(e, "r.yml:7: group \"a\", rule 2, \"X\": could not parse expression: 1:");
    HAS(e, "r.yml:8: group \"a\", rule 3, \"y\": only one of 'record' and 'alert' must be set");
    HAS(e, "r.yml:11: group \"a\", rule 4, \"\": one of 'record' or 'alert' must be set");
    HAS(e, "r.yml:15: group \"a\", rule 5, \"Y\": invalid label name: bad-label");
    HAS(e, "group \"a\", rule 6, \"r\": invalid field 'for' in recording rule");
    HAS(e, "group \"a\", rule 6, \"r\": invalid field 'annotations' in recording rule");
    HAS(e, "r.yml:20: group \"a\", rule 7, \"Z\": field 'expr' must be set in rule");
    HAS(e, "annotation \"a\": template: __alert_Z:1: function \"nofunc\" not defined");
    HAS(e, "r.yml:22: groupname: \"a\" is repeated in the same file");
}

Test(rulefile, unknown_keys_and_types)
{
    const char *e = parse_bad("groups:\n- name: a\n  rules:\n  - alert: A\n    expr: up\n    foo: 1\n");
    HAS(e, "r.yml:6: group \"a\", rule 1, \"A\": unknown key \"foo\"");
    e = parse_bad("groups:\n- name: a\n  intervall: 1m\n");
    HAS(e, "unknown key \"intervall\"");
    e = parse_bad("groupz: []\n");
    HAS(e, "unknown key \"groupz\"");
    e = parse_bad("groups:\n- name: a\n  interval: soon\n");
    HAS(e, "r.yml:3:");
    e = parse_bad("groups:\n- name: a\n  rules:\n  - alert: A\n    expr: up\n    for: 5 minutes\n");
    HAS(e, "r.yml:6:");
    e = parse_bad("groups:\n- rules: []\n");
    HAS(e, "Groupname must not be empty");
    e = parse_bad("groups:\n- name: a\n  limit: -1\n");
    HAS(e, "limit");
}

Test(rulefile, yaml_errors)
{
    const char *e = parse_bad("groups:\n  - name: a\n    rules:\n  - [\n");
    HAS(e, "r.yml:5: yaml: did not find expected node content");
    e = parse_bad("groups:\n- name: a\n  name: b\n");
    HAS(e, "r.yml:3: key \"name\" given twice");
    struct rule_file *f = parse_ok("");
    cr_assert_eq(f->ngroups, 0);
    rulefile_free(f);
    f = parse_ok("# only a comment\n");
    rulefile_free(f);
}

Test(rulefile, load_from_disk)
{
    char path[] = "/tmp/vigil-rulefile-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char *y = "groups:\n- name: g\n  rules:\n  - record: a:b\n    expr: vector(1)\n";
    cr_assert_eq(write(fd, y, strlen(y)), (ssize_t)strlen(y));
    close(fd);
    struct rule_file *f;
    struct vg_err err;
    cr_assert_eq(rulefile_load(path, &f, NULL, &err), 0, "%s", err.msg);
    cr_assert_str_eq(f->path, path);
    cr_assert_eq(f->nrules, 1);
    rulefile_free(f);
    unlink(path);
    struct vg_buf b;
    vg_buf_init(&b);
    cr_assert_eq(rulefile_load(path, &f, &b, &err), VG_EIO);
    cr_assert(strstr(err.msg, "cannot open"));
    cr_assert(strstr(vg_buf_cstr(&b), "cannot open"));
    vg_buf_free(&b);
}

Test(rulefile, names)
{
    cr_assert(rulefile_valid_metric_name("job:up:sum"));
    cr_assert(!rulefile_valid_metric_name("1x"));
    cr_assert(!rulefile_valid_metric_name(""));
    cr_assert(rulefile_valid_label_name("_a1"));
    cr_assert(!rulefile_valid_label_name("a:b"));
}

Test(rulefile, allocation_failure)
{
    const char *y = "groups:\n- name: g\n  labels: {a: b}\n  rules:\n  - alert: A\n    expr: up > 1\n"
                    "    labels: {s: '{{ $value }}'}\n    annotations: {x: y}\n";
    for (uint64_t n = 1; n < 400; n++) {
        struct rule_file *f = NULL;
        struct vg_err err = { 0 };
        vg_alloc_fail_after(n);
        int rc = rulefile_parse("r.yml", y, strlen(y), &f, NULL, &err);
        vg_alloc_fail_after(0);
        if (rc == 0) {
            rulefile_free(f);
            break;
        }
        cr_assert(rc == VG_ENOMEM || rc == VG_EINVAL, "rc %d %s", rc, err.msg);
    }
}

Test(rulefile, duplicate_rules_lint)
{
    struct rule_file *f = parse_ok("groups:\n"
                                   "  - name: a\n"
                                   "    rules:\n"
                                   "      - record: job:up:sum\n"
                                   "        expr: sum by (job) (up)\n"
                                   "        labels: {team: x}\n"
                                   "      - record: job:up:sum\n"
                                   "        expr: sum by (job) (up{env=\"p\"})\n"
                                   "        labels: {team: x}\n"
                                   "      - record: job:up:sum\n"
                                   "        expr: sum by (job) (up)\n"
                                   "        labels: {team: y}\n"
                                   "      - alert: Down\n"
                                   "        expr: up == 0\n"
                                   "      - alert: Down\n"
                                   "        expr: up == 0\n"
                                   "      - alert: Down\n"
                                   "        expr: up < 1\n"
                                   "  - name: b\n"
                                   "    rules:\n"
                                   "      - alert: Down\n"
                                   "        expr: up == 0\n");
    struct vg_buf b;
    vg_buf_init(&b);
    cr_assert_eq(rulefile_duplicates(f, &b), 3, "same name and labels in one group only");
    const char *s = vg_buf_cstr(&b);
    HAS(s, "3 duplicate rule(s) found.\n");
    HAS(s, "Metric: job:up:sum\nGroup: a (r.yml:4, r.yml:7)\nLabel(s):\n\tteam: x\n");
    HAS(s, "Metric: Down\nGroup: a (r.yml:13, r.yml:15, r.yml:17)\nLabel(s):\n");
    HAS(s, "Might cause inconsistency while recording expressions\n");
    vg_buf_free(&b);
    rulefile_free(f);
    f = parse_ok("groups:\n  - name: a\n    rules:\n      - record: x\n        expr: up\n"
                 "      - record: y\n        expr: up\n");
    vg_buf_init(&b);
    cr_assert_eq(rulefile_duplicates(f, &b), 0);
    cr_assert_eq(b.len, 0);
    vg_buf_free(&b);
    rulefile_free(f);
}
