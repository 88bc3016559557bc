/* Tests server/config_node.c through config.c: structured sections are kept as trees
 * with line numbers, and the typed readers report "file:line: where.key: ...". */
#include <criterion/criterion.h>
#include <string.h>

#include "../../../server/config.h"
#include "../../../server/config_node.h"
#include "../../../storage/base/vg_alloc.h"

static struct config *load(const char *yaml, struct vg_err *err)
{
    return config_load_buf("t.yml", yaml, strlen(yaml), err);
}

static const char *const doc =
    "server:\n"
    "  http_addr: 127.0.0.1:1\n"
    "scrape_configs:\n"
    "  - job_name: node\n"
    "    scrape_interval: 15s\n"
    "    honor_labels: true\n"
    "    sample_limit: 100\n"
    "    static_configs:\n"
    "      - targets: [a:1, 'b:2']\n"
    "        labels: {env: prod}\n"
    "rule_files: rules/*.yml\n";

Test(config_node, blocks_are_kept_as_trees_with_lines)
{
    struct vg_err err;
    struct config *c = load(doc, &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert_null(config_block(c, "alerting"));
    const struct config_node *sc = config_block(c, "scrape_configs");
    cr_assert_not_null(sc);
    cr_assert_eq(sc->type, CONFIG_NODE_SEQ);
    cr_assert_eq(sc->n, 1);
    const struct config_node *job = sc->items[0];
    cr_assert_eq(job->type, CONFIG_NODE_MAP);
    cr_assert_eq(job->line, 4);

    const char *name = "default";
    cr_assert_eq(config_node_str(job, "scrape_configs[0]", "job_name", &name, &err), 0);
    cr_assert_str_eq(name, "node");
    int64_t ms = 60000, limit = 0;
    bool honor = false, absent = true;
    cr_assert_eq(config_node_duration(job, "j", "scrape_interval", 1, &ms, &err), 0);
    cr_assert_eq(ms, 15000);
    cr_assert_eq(config_node_bool(job, "j", "honor_labels", &honor, &err), 0);
    cr_assert(honor);
    cr_assert_eq(config_node_bool(job, "j", "missing", &absent, &err), 0);
    cr_assert(absent, "an absent key keeps the caller's default");
    cr_assert_eq(config_node_int(job, "j", "sample_limit", 0, 1000, &limit, &err), 0);
    cr_assert_eq(limit, 100);

    const struct config_node *st = config_node_get(job, "static_configs")->items[0];
    const char **targets;
    size_t n;
    cr_assert_eq(config_node_strlist(st, "s", "targets", &targets, &n, &err), 0);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(targets[0], "a:1");
    cr_assert_str_eq(targets[1], "b:2");
    vg_free(targets);
    cr_assert_eq(config_node_check_strmap(config_node_get(st, "labels"), "labels", &err), 0);

    /* a scalar where a list is expected counts as a one-item list */
    const struct config_node *rf = config_block(c, "rule_files");
    cr_assert_eq(rf->type, CONFIG_NODE_SCALAR);
    cr_assert_str_eq(rf->value, "rules/*.yml");
    config_free(c);
}

Test(config_node, typed_reads_name_file_line_and_key)
{
    struct vg_err err;
    struct config *c = load(doc, &err);
    cr_assert_not_null(c);
    const struct config_node *job = config_block(c, "scrape_configs")->items[0];
    int64_t v = 0;
    cr_assert_eq(config_node_int(job, "scrape_configs[0]", "sample_limit", 0, 10, &v, &err),
                 VG_EINVAL);
    cr_assert_str_eq(err.msg, "t.yml:7: scrape_configs[0].sample_limit: 100 is out of range [0, 10]");
    cr_assert_eq(config_node_duration(job, "scrape_configs[0]", "job_name", 0, &v, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "t.yml:4: scrape_configs[0].job_name: "), "%s", err.msg);
    bool b;
    cr_assert_eq(config_node_bool(job, "x", "static_configs", &b, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "t.yml:9: x.static_configs: expected a single value"), "%s", err.msg);

    static const char *const allowed[] = { "job_name", "scrape_interval", NULL };
    cr_assert_eq(config_node_check_keys(job, "scrape_configs[0]", allowed, &err), VG_EINVAL);
    cr_assert_str_eq(err.msg, "t.yml:6: scrape_configs[0]: unknown key \"honor_labels\" "
                              "(valid keys: job_name, scrape_interval)");
    config_free(c);
}

Test(config_node, bad_blocks_fail_the_load)
{
    struct vg_err err;
    cr_assert_null(load("alerting:\n  a: 1\n  a: 2\n", &err));
    cr_assert_str_eq(err.msg, "t.yml:3: key \"a\" given twice");
    cr_assert_null(load("nonsense:\n  a: 1\n", &err));
    cr_assert(strstr(err.msg, "t.yml:1: nonsense: unknown section (valid sections: server,"),
              "%s", err.msg);
    cr_assert(strstr(err.msg, "scrape_configs"), "%s", err.msg);
    /* nesting deeper than the cap is refused, not recursed into */
    char deep[1024] = "global:\n  ";
    size_t len = strlen(deep);
    for (int i = 0; i < 80; i++)
        deep[len++] = '[';
    for (int i = 0; i < 80; i++)
        deep[len++] = ']';
    deep[len++] = '\n';
    deep[len] = '\0';
    cr_assert_null(load(deep, &err));
    cr_assert(strstr(err.msg, "nesting deeper than 64 levels"), "%s", err.msg);
}

Test(config_node, allocation_failure_is_reported)
{
    for (int k = 0; k < 200; k++) {
        struct vg_err err;
        vg_alloc_fail_after((uint64_t)k + 1);
        struct config *c = load(doc, &err);
        vg_alloc_fail_after(0);
        if (c) {
            cr_assert_not_null(config_block(c, "scrape_configs"));
            config_free(c);
            return;
        }
        cr_assert_eq(err.code, VG_ENOMEM, "step %d: %s", k, err.msg);
    }
    cr_assert_fail("never succeeded");
}
