/* Tests server/scrape/scrape_config.c: the scrape_configs shape and its defaults, errors
 * with file:line, and target labels and URLs built as Prometheus's PopulateLabels. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../../../../server/config.h"
#include "../../../../server/scrape/scrape_config.h"
#include "../../../../storage/base/vg_alloc.h"

static struct scrape_config *parse_ok(const char *yaml, struct config **cfgp)
{
    struct vg_err err;
    struct config *cfg = config_load_buf("t.yml", yaml, strlen(yaml), &err);
    cr_assert_not_null(cfg, "%s", err.msg);
    struct scrape_config *c;
    int rc = scrape_config_parse(cfg, &c, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
    *cfgp = cfg;
    return c;
}

static void parse_fails(const char *yaml, const char *needle)
{
    struct vg_err err;
    struct config *cfg = config_load_buf("t.yml", yaml, strlen(yaml), &err);
    cr_assert_not_null(cfg, "%s", err.msg);
    struct scrape_config *c = NULL;
    int rc = scrape_config_parse(cfg, &c, &err);
    cr_assert_lt(rc, 0, "expected an error for:\n%s", yaml);
    cr_assert_null(c);
    cr_assert(strstr(err.msg, needle), "\"%s\" lacks \"%s\"", err.msg, needle);
    config_free(cfg);
}

Test(scrape_config, defaults_follow_prometheus)
{
    struct config *cfg;
    struct scrape_config *c = parse_ok("scrape_configs:\n  - job_name: a\n", &cfg);
    cr_assert_eq(c->njobs, 1);
    const struct scrape_job *j = &c->jobs[0];
    cr_assert_str_eq(j->name, "a");
    cr_assert_eq(j->interval_ms, 60000);
    cr_assert_eq(j->timeout_ms, 10000);
    cr_assert_str_eq(j->metrics_path, "/metrics");
    cr_assert_str_eq(j->scheme, "http");
    cr_assert_not(j->honor_labels);
    cr_assert(j->honor_timestamps);
    cr_assert_eq(j->sample_limit, 0);
    scrape_config_free(c);
    config_free(cfg);
}

Test(scrape_config, global_interval_and_timeout_are_defaults)
{
    struct config *cfg;
    struct scrape_config *c = parse_ok(
        "global:\n  scrape_interval: 5s\n  evaluation_interval: 1m\n"
        "scrape_configs:\n  - job_name: a\n  - job_name: b\n    scrape_interval: 30s\n"
        "    scrape_timeout: 20s\n", &cfg);
    cr_assert_eq(c->jobs[0].interval_ms, 5000);
    cr_assert_eq(c->jobs[0].timeout_ms, 5000, "the default timeout is capped at the interval");
    cr_assert_eq(c->jobs[1].interval_ms, 30000);
    cr_assert_eq(c->jobs[1].timeout_ms, 20000);
    scrape_config_free(c);
    config_free(cfg);
}

Test(scrape_config, limits_come_from_the_job_then_global_then_the_built_in_body_ceiling)
{
    struct config *cfg;
    /* nothing set anywhere: Prometheus's "no limit", except the body's built-in ceiling */
    struct scrape_config *c = parse_ok("scrape_configs:\n  - job_name: a\n", &cfg);
    cr_assert_eq(c->jobs[0].body_size_limit, SCRAPE_DEFAULT_BODY_SIZE_LIMIT);
    cr_assert_eq(c->jobs[0].body_size_limit, (int64_t)256 << 20);
    cr_assert_eq(c->jobs[0].sample_limit, 0);
    cr_assert_eq(c->jobs[0].label_limit, 0);
    scrape_config_free(c);
    config_free(cfg);
    /* global's keys are the defaults; a job's own value (not 0) wins */
    c = parse_ok("global:\n  body_size_limit: 2MiB\n  sample_limit: 100\n  label_limit: 7\n"
                 "  label_name_length_limit: 20\n  label_value_length_limit: 30\n"
                 "scrape_configs:\n  - job_name: a\n"
                 "  - job_name: b\n    body_size_limit: 1KiB\n    sample_limit: 5\n"
                 "    label_limit: 0\n", &cfg);
    cr_assert_eq(c->jobs[0].body_size_limit, 2 << 20);
    cr_assert_eq(c->jobs[0].sample_limit, 100);
    cr_assert_eq(c->jobs[0].label_limit, 7);
    cr_assert_eq(c->jobs[0].label_name_length_limit, 20);
    cr_assert_eq(c->jobs[0].label_value_length_limit, 30);
    cr_assert_eq(c->jobs[1].body_size_limit, 1024);
    cr_assert_eq(c->jobs[1].sample_limit, 5);
    cr_assert_eq(c->jobs[1].label_limit, 7, "0 in a job means unset, as in Prometheus");
    scrape_config_free(c);
    config_free(cfg);
    parse_fails("global:\n  body_size_limit: huge\nscrape_configs:\n  - job_name: a\n",
                "global.body_size_limit");
    parse_fails("global:\n  sample_limit: -1\nscrape_configs:\n  - job_name: a\n",
                "global.sample_limit");
}

Test(scrape_config, every_key_is_read)
{
    char secret[] = "/tmp/vigil-sc-secret-XXXXXX";
    int fd = mkstemp(secret);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "s3cret\n", 7), 7);
    close(fd);
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "scrape_configs:\n"
             "  - job_name: full\n"
             "    scrape_interval: 15s\n"
             "    scrape_timeout: 5s\n"
             "    metrics_path: /probe\n"
             "    scheme: https\n"
             "    params: {module: [if_mib, x], target: y}\n"
             "    honor_labels: true\n"
             "    honor_timestamps: false\n"
             "    basic_auth: {username: u, password_file: %s}\n"
             "    tls_config: {insecure_skip_verify: true}\n"
             "    static_configs:\n"
             "      - targets: [a:1, b:2]\n"
             "        labels: {env: prod}\n"
             "    file_sd_configs:\n"
             "      - files: [sd/*.json]\n"
             "        refresh_interval: 30s\n"
             "    relabel_configs:\n"
             "      - {source_labels: [env], target_label: e}\n"
             "    metric_relabel_configs:\n"
             "      - {regex: tmp, action: labeldrop}\n"
             "    sample_limit: 10\n"
             "    label_limit: 20\n"
             "    label_name_length_limit: 30\n"
             "    label_value_length_limit: 40\n"
             "    body_size_limit: 1MiB\n"
             "  - job_name: bearer\n"
             "    authorization: {credentials: tok}\n",
             secret);
    struct config *cfg;
    struct scrape_config *c = parse_ok(yaml, &cfg);
    unlink(secret);
    const struct scrape_job *j = &c->jobs[0];
    cr_assert_eq(j->interval_ms, 15000);
    cr_assert_eq(j->timeout_ms, 5000);
    cr_assert_str_eq(j->metrics_path, "/probe");
    cr_assert_str_eq(j->scheme, "https");
    cr_assert_eq(j->nparams, 2);
    cr_assert_str_eq(j->params[0].name, "module");
    cr_assert_eq(j->params[0].nvalues, 2);
    cr_assert(j->honor_labels);
    cr_assert_not(j->honor_timestamps);
    cr_assert_str_eq(j->basic_user, "u");
    cr_assert_str_eq(j->basic_pass, "s3cret");
    cr_assert(j->tls.insecure);
    cr_assert_eq(j->ngroups, 1);
    cr_assert_eq(j->groups[0].ntargets, 2);
    cr_assert_eq(j->nsd_globs, 1);
    cr_assert_str_eq(j->sd_globs[0], "./sd/*.json");
    cr_assert_eq(j->sd_refresh_ms, 30000);
    cr_assert_eq(j->relabel.n, 1);
    cr_assert_eq(j->metric_relabel.n, 1);
    cr_assert_eq(j->sample_limit, 10);
    cr_assert_eq(j->label_limit, 20);
    cr_assert_eq(j->label_name_length_limit, 30);
    cr_assert_eq(j->label_value_length_limit, 40);
    cr_assert_eq(j->body_size_limit, 1 << 20);
    cr_assert_str_eq(c->jobs[1].auth_header, "Bearer tok");
    scrape_config_free(c);
    config_free(cfg);
}

Test(scrape_config, errors_name_file_line_and_key)
{
    parse_fails("scrape_configs:\n  - scrape_interval: 1s\n", "t.yml:2: scrape_configs[0]: "
                "job_name is required");
    parse_fails("scrape_configs:\n  - job_name: a\n  - job_name: a\n", "t.yml:3: "
                "scrape_configs[1].job_name: \"a\" is used by scrape_configs[0] too");
    parse_fails("scrape_configs:\n  - job_name: a\n    kubernetes_sd_configs: []\n",
                "unknown key \"kubernetes_sd_configs\"");
    parse_fails("scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n"
                "    scrape_timeout: 10s\n", "t.yml:4: scrape_configs[0].scrape_timeout: "
                "greater than scrape_interval");
    parse_fails("scrape_configs:\n  - job_name: a\n    scheme: ftp\n", "\"ftp\" is not http");
    parse_fails("scrape_configs:\n  - job_name: a\n    scrape_interval: soon\n",
                "scrape_configs[0].scrape_interval");
    parse_fails("scrape_configs:\n  - job_name: a\n    sample_limit: -1\n", "sample_limit");
    parse_fails("scrape_configs:\n  - job_name: a\n    body_size_limit: lots\n",
                "body_size_limit");
    parse_fails("scrape_configs:\n  - job_name: a\n    static_configs:\n"
                "      - targets: [x]\n        labels: {'bad-name': v}\n",
                "not a valid label name");
    parse_fails("scrape_configs:\n  - job_name: a\n    file_sd_configs:\n"
                "      - files: [targets.txt]\n", "must end in .json, .yml or .yaml");
    parse_fails("scrape_configs:\n  - job_name: a\n    basic_auth: {username: u}\n"
                "    bearer_token: t\n", "at most one of");
    parse_fails("scrape_configs:\n  - job_name: a\n    basic_auth: {username: u, "
                "password_file: /nonexistent/pw}\n", "cannot read");
    parse_fails("scrape_configs:\n  - job_name: a\n    relabel_configs:\n"
                "      - action: nope\n", "t.yml:4: scrape_configs[0].relabel_configs[0]");
    parse_fails("scrape_configs: {a: 1}\n", "expected a list");
    parse_fails("global:\n  scrape_interval: 5s\n  scrape_timeout: 6s\n"
                "scrape_configs: []\n", "global.scrape_timeout");
}

struct built {
    struct vg_arena *a;
    struct scrape_target_def def;
    int rc;
    struct vg_err err;
};

static const char *label(const struct label *ls, size_t n, const char *name)
{
    static char out[256];
    struct vg_str v = labels_get(ls, n, name);
    if (!v.p)
        return NULL;
    snprintf(out, sizeof out, "%.*s", (int)v.len, v.p);
    return out;
}

static void build(const struct scrape_job *j, size_t group, size_t ti, struct built *b)
{
    b->a = vg_arena_new(1024);
    b->rc = scrape_target_build(j, &j->groups[group], ti, NULL, 0, b->a, &b->def, &b->err);
}

Test(scrape_config, target_labels_and_url)
{
    struct config *cfg;
    struct scrape_config *c = parse_ok(
        "scrape_configs:\n  - job_name: node\n    scrape_interval: 15s\n"
        "    params: {module: [a b], x: ['1']}\n"
        "    static_configs:\n      - targets: ['h1:9100', 'h2']\n        labels: {env: prod}\n"
        "    relabel_configs:\n"
        "      - {source_labels: [__address__], regex: '([^:]+):.*', target_label: host}\n"
        "      - {target_label: __param_x, replacement: '2'}\n", &cfg);
    struct built b;
    build(&c->jobs[0], 0, 0, &b);
    cr_assert_eq(b.rc, 1, "%s", b.err.msg);
    cr_assert_str_eq(b.def.url, "http://h1:9100/metrics?module=a+b&x=2");
    cr_assert_eq(b.def.interval_ms, 15000);
    cr_assert_eq(b.def.nlabels, 4);
    cr_assert_str_eq(label(b.def.labels, b.def.nlabels, "job"), "node");
    cr_assert_str_eq(label(b.def.labels, b.def.nlabels, "instance"), "h1:9100");
    cr_assert_str_eq(label(b.def.labels, b.def.nlabels, "env"), "prod");
    cr_assert_str_eq(label(b.def.labels, b.def.nlabels, "host"), "h1");
    cr_assert_str_eq(label(b.def.discovered, b.def.ndiscovered, "__param_module"), "a b");
    cr_assert_str_eq(label(b.def.discovered, b.def.ndiscovered, "__scrape_interval__"),
                     "15s");
    cr_assert_str_eq(label(b.def.discovered, b.def.ndiscovered, "__metrics_path__"),
                     "/metrics");
    cr_assert_null(label(b.def.discovered, b.def.ndiscovered, "host"));
    vg_arena_free(b.a);
    /* no port: :80 added as Prometheus 2.x does */
    build(&c->jobs[0], 0, 1, &b);
    cr_assert_eq(b.rc, 1);
    cr_assert_str_eq(label(b.def.labels, b.def.nlabels, "instance"), "h2:80");
    vg_arena_free(b.a);
    scrape_config_free(c);
    config_free(cfg);
}

Test(scrape_config, relabel_can_drop_or_rewrite_targets)
{
    struct config *cfg;
    struct scrape_config *c = parse_ok(
        "scrape_configs:\n  - job_name: j\n    scheme: https\n"
        "    static_configs:\n      - targets: [keep:1, drop:2, 'x:3']\n"
        "    relabel_configs:\n"
        "      - {source_labels: [__address__], regex: 'drop:.*', action: drop}\n"
        "      - {source_labels: [__address__], regex: 'x:3', target_label: instance,"
        " replacement: nice}\n"
        "      - {source_labels: [__address__], regex: 'x:3', target_label: __address__,"
        " replacement: 'real'}\n"
        "      - {target_label: __scrape_interval__, replacement: 2m}\n"
        "      - {target_label: __tmp_x, replacement: t}\n", &cfg);
    struct built b;
    build(&c->jobs[0], 0, 1, &b);
    cr_assert_eq(b.rc, 0);
    cr_assert(b.def.dropped);
    cr_assert_str_eq(label(b.def.discovered, b.def.ndiscovered, "__address__"), "drop:2");
    vg_arena_free(b.a);
    build(&c->jobs[0], 0, 2, &b);
    cr_assert_eq(b.rc, 1, "%s", b.err.msg);
    cr_assert_str_eq(b.def.url, "https://real:443/metrics");
    cr_assert_str_eq(label(b.def.labels, b.def.nlabels, "instance"), "nice");
    cr_assert_null(label(b.def.labels, b.def.nlabels, "__tmp_x"));
    cr_assert_eq(b.def.interval_ms, 120000);
    vg_arena_free(b.a);
    scrape_config_free(c);
    config_free(cfg);
}

Test(scrape_config, unscrapable_targets_are_errors)
{
    struct config *cfg;
    struct scrape_config *c = parse_ok(
        "scrape_configs:\n  - job_name: j\n    scrape_interval: 10s\n"
        "    static_configs:\n      - targets: ['a:1', 'b/c:1', 'd:1']\n"
        "    relabel_configs:\n"
        "      - {source_labels: [__address__], regex: 'a:1', target_label: __address__,"
        " replacement: ''}\n"
        "      - {source_labels: [__address__], regex: 'd:1', target_label:"
        " __scrape_timeout__, replacement: 1m}\n", &cfg);
    struct built b;
    build(&c->jobs[0], 0, 0, &b);
    cr_assert_eq(b.rc, VG_EINVAL);
    cr_assert_str_eq(b.err.msg, "no address");
    vg_arena_free(b.a);
    build(&c->jobs[0], 0, 1, &b);
    cr_assert_eq(b.rc, VG_EINVAL);
    cr_assert(strstr(b.err.msg, "invalid address"));
    vg_arena_free(b.a);
    build(&c->jobs[0], 0, 2, &b);
    cr_assert_eq(b.rc, VG_EINVAL);
    cr_assert(strstr(b.err.msg, "greater than scrape interval"), "%s", b.err.msg);
    vg_arena_free(b.a);
    scrape_config_free(c);
    config_free(cfg);
}

Test(scrape_config, allocation_failures_are_clean)
{
    const char *yaml = "scrape_configs:\n  - job_name: a\n    params: {m: [x]}\n"
                       "    static_configs:\n      - targets: [a:1]\n        labels: {e: p}\n"
                       "    relabel_configs:\n      - {source_labels: [e], target_label: f}\n";
    struct vg_err err;
    struct config *cfg = config_load_buf("t.yml", yaml, strlen(yaml), &err);
    cr_assert_not_null(cfg);
    for (uint64_t n = 1; n < 300; n++) {
        struct scrape_config *c = NULL;
        vg_alloc_fail_after(n);
        int rc = scrape_config_parse(cfg, &c, &err);
        vg_alloc_fail_after(0);
        cr_assert(rc == 0 || rc == VG_ENOMEM, "%d %s", rc, err.msg);
        if (rc == 0) {
            struct built b;
            b.a = vg_arena_new(256);
            vg_alloc_fail_after(n % 7 + 1);
            b.rc = scrape_target_build(&c->jobs[0], &c->jobs[0].groups[0], 0, NULL, 0, b.a,
                                       &b.def, &b.err);
            vg_alloc_fail_after(0);
            cr_assert(b.rc == 1 || b.rc == VG_ENOMEM);
            vg_arena_free(b.a);
        }
        scrape_config_free(c);
    }
    config_free(cfg);
}
