/* Tests server/scrape/relabel.c: parsing rules from the config tree with Prometheus's
 * defaults and checks, and every action applied as Prometheus's documentation
 * describes it. Rules are written as the scrape_configs block of a YAML document so
 * messages carry "t.yml:line". */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../../../../server/config.h"
#include "../../../../server/scrape/relabel.h"
#include "../../../../storage/base/vg_alloc.h"

struct rig {
    struct config *cfg;
    struct relabel_rules rules;
    struct vg_arena *arena;
    struct relabel_set set;
};

static int parse(struct rig *r, const char *rules_yaml, struct vg_err *err)
{
    char doc[4096];
    snprintf(doc, sizeof doc, "scrape_configs:\n%s", rules_yaml);
    memset(r, 0, sizeof *r);
    r->cfg = config_load_buf("t.yml", doc, strlen(doc), err);
    cr_assert_not_null(r->cfg, "%s", err->msg);
    r->arena = vg_arena_new(1024);
    relabel_set_init(&r->set, r->arena);
    return relabel_parse(config_block(r->cfg, "scrape_configs"), "relabel_configs", &r->rules,
                         err);
}

static void setup(struct rig *r, const char *rules_yaml)
{
    struct vg_err err;
    int rc = parse(r, rules_yaml, &err);
    cr_assert_eq(rc, 0, "%s", err.msg);
}

static void done(struct rig *r)
{
    relabel_rules_free(&r->rules);
    vg_arena_free(r->arena);
    config_free(r->cfg);
}

static void put(struct rig *r, const char *name, const char *value)
{
    cr_assert_eq(relabel_set_put(&r->set, vg_str_c(name), vg_str_c(value)), 0);
}

/* "" when absent */
static const char *get(struct rig *r, const char *name)
{
    static char out[256];
    struct vg_str v = relabel_set_get(&r->set, vg_str_c(name));
    snprintf(out, sizeof out, "%.*s", (int)v.len, v.p ? v.p : "");
    return out;
}

static bool has(struct rig *r, const char *name)
{
    return relabel_set_get(&r->set, vg_str_c(name)).p != NULL;
}

Test(relabel, replace_defaults_copy_the_joined_sources)
{
    struct rig r;
    setup(&r, "  - source_labels: [a, b]\n    target_label: c\n");
    cr_assert_eq(r.rules.n, 1);
    cr_assert_eq(r.rules.v[0].action, RELABEL_REPLACE);
    cr_assert_str_eq(r.rules.v[0].separator, ";");
    cr_assert_str_eq(r.rules.v[0].regex, "(.*)");
    cr_assert_str_eq(r.rules.v[0].replacement, "$1");
    put(&r, "a", "x");
    put(&r, "b", "y");
    cr_assert_eq(relabel_apply(&r.rules, &r.set), 1);
    cr_assert_str_eq(get(&r, "c"), "x;y");
    done(&r);
}

Test(relabel, replace_uses_groups_separator_and_templated_target)
{
    struct rig r;
    setup(&r, "  - source_labels: [a, b]\n    separator: '-'\n    regex: '(\\w+)-(\\w+)'\n"
              "    replacement: '${2}:$1'\n    target_label: 'out_$1'\n");
    put(&r, "a", "foo");
    put(&r, "b", "bar");
    cr_assert_eq(relabel_apply(&r.rules, &r.set), 1);
    cr_assert_str_eq(get(&r, "out_foo"), "bar:foo");
    done(&r);
}

Test(relabel, replace_is_anchored_and_leaves_labels_alone_without_a_match)
{
    struct rig r;
    setup(&r, "  - source_labels: [a]\n    regex: foo\n    replacement: hit\n"
              "    target_label: b\n");
    put(&r, "a", "foobar");
    put(&r, "b", "keep");
    cr_assert_eq(relabel_apply(&r.rules, &r.set), 1);
    cr_assert_str_eq(get(&r, "b"), "keep");
    done(&r);
}

Test(relabel, replace_to_an_empty_value_deletes_the_target)
{
    struct rig r;
    setup(&r, "  - source_labels: [missing]\n    target_label: b\n");
    put(&r, "b", "x");
    cr_assert_eq(relabel_apply(&r.rules, &r.set), 1);
    cr_assert_not(has(&r, "b"));
    done(&r);
}

Test(relabel, replace_skips_an_invalid_expanded_target_name)
{
    struct rig r;
    setup(&r, "  - source_labels: [a]\n    target_label: '$1'\n    replacement: v\n");
    put(&r, "a", "9bad");
    cr_assert_eq(relabel_apply(&r.rules, &r.set), 1);
    cr_assert_not(has(&r, "9bad"));
    cr_assert_eq(r.set.n, 1);
    done(&r);
}

Test(relabel, keep_and_drop)
{
    struct rig r;
    setup(&r, "  - source_labels: [__name__]\n    regex: 'go_.*'\n    action: drop\n"
              "  - source_labels: [job]\n    regex: 'node|api'\n    action: keep\n");
    put(&r, "__name__", "go_goroutines");
    put(&r, "job", "node");
    cr_assert_eq(relabel_apply(&r.rules, &r.set), 0);
    relabel_set_clear(&r.set);
    put(&r, "__name__", "up");
    put(&r, "job", "node");
    cr_assert_eq(relabel_apply(&r.rules, &r.set), 1);
    relabel_set_clear(&r.set);
    put(&r, "__name__", "up");
    put(&r, "job", "nodes");
    cr_assert_eq(relabel_apply(&r.rules, &r.set), 0, "keep is anchored");
    relabel_set_clear(&r.set);
    put(&r, "__name__", "up");
    cr_assert_eq(relabel_apply(&r.rules, &r.set), 0, "a missing label is the empty string");
    done(&r);
}

Test(relabel, keepequal_and_dropequal_compare_with_the_target_label)
{
    struct rig r;
    setup(&r, "  - source_labels: [a]\n    target_label: b\n    action: keepequal\n");
    put(&r, "a", "1");
    put(&r, "b", "1");
    cr_assert_eq(relabel_apply(&r.rules, &r.set), 1);
    put(&r, "b", "2");
    cr_assert_eq(relabel_apply(&r.rules, &r.set), 0);
    done(&r);
    setup(&r, "  - source_labels: [a]\n    target_label: b\n    action: dropequal\n");
    put(&r, "a", "1");
    put(&r, "b", "1");
    cr_assert_eq(relabel_apply(&r.rules, &r.set), 0);
    put(&r, "b", "2");
    cr_assert_eq(relabel_apply(&r.rules, &r.set), 1);
    done(&r);
}

Test(relabel, hashmod_takes_the_last_md5_bytes_modulo)
{
    /* expected values from md5: last 8 bytes big-endian mod N */
    struct rig r;
    setup(&r, "  - source_labels: [a]\n    modulus: 10\n    target_label: h\n"
              "    action: hashmod\n");
    put(&r, "a", "foo");
    cr_assert_eq(relabel_apply(&r.rules, &r.set), 1);
    cr_assert_str_eq(get(&r, "h"), "6");
    put(&r, "a", "127.0.0.1:9100");
    cr_assert_eq(relabel_apply(&r.rules, &r.set), 1);
    cr_assert_str_eq(get(&r, "h"), "0");
    relabel_set_del(&r.set, VG_STR("a"));
    cr_assert_eq(relabel_apply(&r.rules, &r.set), 1);
    cr_assert_str_eq(get(&r, "h"), "8");
    done(&r);
    /* a value longer than one MD5 block */
    setup(&r, "  - source_labels: [a]\n    modulus: 1000\n    target_label: h\n"
              "    action: hashmod\n");
    char hundred[101];
    memset(hundred, 'a', 100);
    hundred[100] = '\0';
    put(&r, "a", hundred);
    cr_assert_eq(relabel_apply(&r.rules, &r.set), 1);
    cr_assert_str_eq(get(&r, "h"), "839");
    done(&r);
}

Test(relabel, labelmap_copies_matching_names)
{
    struct rig r;
    setup(&r, "  - regex: '__meta_kv_(.+)'\n    action: labelmap\n");
    put(&r, "__meta_kv_zone", "eu");
    put(&r, "__meta_kv_rack", "r1");
    put(&r, "__meta_other", "x");
    cr_assert_eq(relabel_apply(&r.rules, &r.set), 1);
    cr_assert_str_eq(get(&r, "zone"), "eu");
    cr_assert_str_eq(get(&r, "rack"), "r1");
    cr_assert_str_eq(get(&r, "__meta_kv_zone"), "eu", "the source stays");
    cr_assert_not(has(&r, "other"));
    done(&r);
}

Test(relabel, labeldrop_and_labelkeep_match_names)
{
    struct rig r;
    setup(&r, "  - regex: 'tmp_.*'\n    action: labeldrop\n");
    put(&r, "tmp_a", "1");
    put(&r, "tmp_b", "2");
    put(&r, "keep", "3");
    cr_assert_eq(relabel_apply(&r.rules, &r.set), 1);
    cr_assert_eq(r.set.n, 1);
    cr_assert_str_eq(get(&r, "keep"), "3");
    done(&r);
    setup(&r, "  - regex: '__name__|job'\n    action: labelkeep\n");
    put(&r, "__name__", "up");
    put(&r, "job", "j");
    put(&r, "instance", "i");
    put(&r, "x", "y");
    cr_assert_eq(relabel_apply(&r.rules, &r.set), 1);
    cr_assert_eq(r.set.n, 2);
    cr_assert(has(&r, "__name__") && has(&r, "job"));
    done(&r);
}

Test(relabel, lowercase_and_uppercase)
{
    struct rig r;
    setup(&r, "  - source_labels: [a]\n    target_label: lo\n    action: lowercase\n"
              "  - source_labels: [a]\n    target_label: up\n    action: uppercase\n");
    put(&r, "a", "MiXeD-1");
    cr_assert_eq(relabel_apply(&r.rules, &r.set), 1);
    cr_assert_str_eq(get(&r, "lo"), "mixed-1");
    cr_assert_str_eq(get(&r, "up"), "MIXED-1");
    cr_assert_str_eq(get(&r, "a"), "MiXeD-1");
    done(&r);
}

Test(relabel, rules_run_in_order_on_the_changed_set)
{
    struct rig r;
    setup(&r, "  - source_labels: [__address__]\n    regex: '([^:]+):\\d+'\n"
              "    target_label: host\n"
              "  - source_labels: [host]\n    regex: db.*\n    action: drop\n");
    put(&r, "__address__", "web1:9100");
    cr_assert_eq(relabel_apply(&r.rules, &r.set), 1);
    cr_assert_str_eq(get(&r, "host"), "web1");
    relabel_set_clear(&r.set);
    put(&r, "__address__", "db1:9100");
    cr_assert_eq(relabel_apply(&r.rules, &r.set), 0);
    done(&r);
}

Test(relabel, action_names_are_case_insensitive)
{
    struct rig r;
    setup(&r, "  - regex: x\n    action: LabelDrop\n");
    cr_assert_eq(r.rules.v[0].action, RELABEL_LABELDROP);
    cr_assert_str_eq(relabel_action_name(RELABEL_LABELDROP), "labeldrop");
    done(&r);
}

static void expect_error(const char *yaml, const char *needle)
{
    struct rig r;
    struct vg_err err;
    int rc = parse(&r, yaml, &err);
    cr_assert_eq(rc, VG_EINVAL, "expected an error for %s", yaml);
    cr_assert(strstr(err.msg, needle), "message \"%s\" lacks \"%s\"", err.msg, needle);
    cr_assert(strstr(err.msg, "t.yml:"), "message \"%s\" lacks the file", err.msg);
    cr_assert_eq(r.rules.n, 0);
    done(&r);
}

Test(relabel, config_errors_name_file_line_and_reason)
{
    expect_error("  - action: explode\n", "unknown relabel action \"explode\"");
    expect_error("  - source_labels: [a]\n", "requires 'target_label'");
    expect_error("  - source_labels: [a]\n    target_label: t\n    action: hashmod\n",
                 "non-zero 'modulus'");
    expect_error("  - source_labels: [a]\n    regex: x\n    action: labeldrop\n",
                 "requires only 'regex'");
    expect_error("  - source_labels: [a]\n    target_label: b\n    regex: x\n"
                 "    action: keepequal\n", "requires only 'source_labels'");
    expect_error("  - source_labels: [a]\n    target_label: b\n    regex: '('\n",
                 "relabel_configs[0].regex");
    expect_error("  - source_labels: [a]\n    target_label: 'bad-name'\n",
                 "not a valid label name");
    expect_error("  - source_labels: [a]\n    target_label: b\n    action: lowercase\n"
                 "    bogus: 1\n", "unknown key \"bogus\"");
    expect_error("  - source_labels: ['1x']\n    target_label: b\n", "\"1x\"");
    expect_error("  - source_labels: [a]\n    target_label: b\n  - action: keep\n"
                 "    regex: '['\n", "relabel_configs[1]");
}

Test(relabel, empty_or_absent_list_has_no_rules)
{
    struct relabel_rules rr;
    struct vg_err err;
    cr_assert_eq(relabel_parse(NULL, "x", &rr, &err), 0);
    cr_assert_eq(rr.n, 0);
    cr_assert_eq(relabel_apply(&rr, NULL), 1, "no rules keep anything");
}

Test(relabel, allocation_failures_are_clean)
{
    const char *yaml = "  - source_labels: [a, b]\n    target_label: c\n    regex: '(.*);(.*)'\n"
                       "    replacement: '$2$1'\n  - regex: 'x.*'\n    action: labelmap\n";
    for (uint64_t n = 1; n < 200; n++) {
        struct rig r;
        char doc[512];
        snprintf(doc, sizeof doc, "scrape_configs:\n%s", yaml);
        struct vg_err err;
        r.cfg = config_load_buf("t.yml", doc, strlen(doc), &err);
        cr_assert_not_null(r.cfg);
        vg_alloc_fail_after(n);
        int rc = relabel_parse(config_block(r.cfg, "scrape_configs"), "rl", &r.rules, &err);
        vg_alloc_fail_after(0);
        cr_assert(rc == 0 || rc == VG_ENOMEM, "rc %d: %s", rc, err.msg);
        if (rc == 0) {
            r.arena = vg_arena_new(256);
            relabel_set_init(&r.set, r.arena);
            put(&r, "a", "1");
            put(&r, "b", "2");
            put(&r, "xa", "3");
            vg_alloc_fail_after(1);
            int k = relabel_apply(&r.rules, &r.set);
            vg_alloc_fail_after(0);
            cr_assert(k == 1 || k == VG_ENOMEM);
            vg_arena_free(r.arena);
        }
        relabel_rules_free(&r.rules);
        config_free(r.cfg);
    }
}
