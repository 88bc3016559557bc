/* Tests server/rules/route.c: Alertmanager matcher syntax, the notifications config
 * (defaults, inheritance, errors with file:line), tree matching with continue, and
 * Alertmanager's fingerprint. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../../../server/config.h"
#include "../../../../server/rules/route.h"
#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/tsdb/matcher.h"

#define L(n, v) { VG_STR(n), VG_STR(v) }

static struct route_config *parse(const char *yaml, struct config **cfg, struct vg_err *err)
{
    *cfg = config_load_buf("n.yml", yaml, strlen(yaml), err);
    if (!*cfg)
        return NULL;
    return route_config_parse(config_block(*cfg, "notifications"), "http://vigil:4318", err);
}

Test(route, matcher_syntax)
{
    struct vg_err err;
    struct matcher *m = route_matcher_parse("severity=\"critical\"", &err);
    cr_assert_not_null(m, "%s", err.msg);
    cr_assert_eq(m->op, MATCH_EQ);
    cr_assert_str_eq(m->name, "severity");
    cr_assert_str_eq(m->value, "critical");
    matcher_free(m);
    m = route_matcher_parse(" team =~ \"db|web\" ", &err);
    cr_assert_not_null(m, "%s", err.msg);
    cr_assert_eq(m->op, MATCH_RE);
    cr_assert(matcher_matches(m, VG_STR("db")));
    cr_assert_not(matcher_matches(m, VG_STR("dbx")), "regexes are anchored");
    matcher_free(m);
    m = route_matcher_parse("env!=prod", &err);
    cr_assert_not_null(m);
    cr_assert_eq(m->op, MATCH_NEQ);
    cr_assert_str_eq(m->value, "prod");
    matcher_free(m);
    m = route_matcher_parse("msg!~\"a\\\"b\"", &err);
    cr_assert_not_null(m);
    cr_assert_eq(m->op, MATCH_NRE);
    cr_assert_str_eq(m->value, "a\"b");
    matcher_free(m);

    cr_assert_null(route_matcher_parse("=x", &err));
    cr_assert_str_eq(err.msg, "matcher \"=x\": expected a label name");
    cr_assert_null(route_matcher_parse("a>b", &err));
    cr_assert(strstr(err.msg, "expected one of = != =~ !~"), "%s", err.msg);
    cr_assert_null(route_matcher_parse("a=\"open", &err));
    cr_assert(strstr(err.msg, "unclosed quoted value"), "%s", err.msg);
    cr_assert_null(route_matcher_parse("a=\"x\" y", &err));
    cr_assert(strstr(err.msg, "unexpected text"), "%s", err.msg);
    cr_assert_null(route_matcher_parse("a=~\"(\"", &err));
    cr_assert_eq(err.code, VG_EINVAL);
}

static const char *const tree =
    "notifications:\n"
    "  route:\n"
    "    receiver: default\n"
    "    group_by: [alertname]\n"
    "    group_wait: 10s\n"
    "    routes:\n"
    "      - matchers: ['severity=\"critical\"']\n"
    "        receiver: pager\n"
    "        continue: true\n"
    "        escalate: {after: 30m, receiver: boss}\n"
    "      - matchers: ['team=~\"db|web\"']\n"
    "        receiver: team\n"
    "        group_by: ['...']\n"
    "        repeat_interval: 1h\n"
    "        routes:\n"
    "          - match: {env: dev}\n"
    "            receiver: devnull\n"
    "  receivers:\n"
    "    - name: default\n"
    "      webhook_configs: [{url: 'http://127.0.0.1:1/hook'}]\n"
    "    - name: pager\n"
    "      slack_configs: [{api_url: 'https://hooks.example/x', channel: '#ops'}]\n"
    "    - name: team\n"
    "      email_configs: [{to: 'a@x, B <b@y>', from: v@x, smarthost: 'mail:25',\n"
    "                       require_tls: false, headers: {X-Team: db}}]\n"
    "    - {name: boss}\n"
    "    - {name: devnull}\n";

Test(route, config_defaults_and_inheritance)
{
    struct config *cfg;
    struct vg_err err;
    struct route_config *c = parse(tree, &cfg, &err);
    cr_assert_not_null(c, "%s", err.msg);
    cr_assert(c->has_route);
    cr_assert_str_eq(c->external_url, "http://vigil:4318");
    const struct route_node *r = &c->root;
    cr_assert_str_eq(r->id, "{}");
    cr_assert_eq(r->group_wait_ms, 10000);
    cr_assert_eq(r->group_interval_ms, 300000, "Alertmanager's default");
    cr_assert_eq(r->repeat_interval_ms, 4 * 3600000);
    cr_assert_eq(r->nchildren, 2);
    const struct route_node *p = &r->children[0];
    cr_assert_str_eq(p->id, "{}/{severity=\"critical\"}");
    cr_assert_eq(p->group_wait_ms, 10000, "inherited");
    cr_assert_eq(p->ngroup_by, 1);
    cr_assert_str_eq(p->group_by[0], "alertname");
    cr_assert(p->cont);
    cr_assert_str_eq(p->esc_receiver, "boss");
    cr_assert_eq(p->esc_after_ms, 1800000);
    const struct route_node *t = &r->children[1];
    cr_assert(t->group_by_all);
    cr_assert_eq(t->repeat_interval_ms, 3600000);
    cr_assert_str_eq(t->children[0].receiver, "devnull");
    cr_assert(t->children[0].group_by_all, "group_by inherited");
    cr_assert_eq(t->children[0].repeat_interval_ms, 3600000);

    const struct route_receiver *d = route_receiver_find(c, "default");
    cr_assert_eq(d->nints, 1);
    cr_assert_eq(d->ints[0].kind, ROUTE_WEBHOOK);
    cr_assert(d->ints[0].send_resolved, "webhook default");
    const struct route_receiver *pg = route_receiver_find(c, "pager");
    cr_assert_eq(pg->ints[0].kind, ROUTE_SLACK);
    cr_assert_not(pg->ints[0].send_resolved, "slack default");
    cr_assert_str_eq(pg->ints[0].channel, "#ops");
    const struct route_receiver *tm = route_receiver_find(c, "team");
    cr_assert_eq(tm->ints[0].kind, ROUTE_EMAIL);
    cr_assert_not(tm->ints[0].require_tls);
    cr_assert_eq(tm->ints[0].nheaders, 1);
    cr_assert_str_eq(tm->ints[0].headers[0].value, "db");
    cr_assert_null(route_receiver_find(c, "nobody"));
    cr_assert_eq(c->delivery.max_attempts, 10);
    cr_assert_eq(c->delivery.initial_backoff_ms, 1000);
    route_config_free(c);
    config_free(cfg);
}

static size_t receivers_of(const struct route_config *c, const struct label *ls, size_t n,
                           const char **out)
{
    const struct route_node *rs[8];
    size_t k = route_match(c, ls, n, rs, 8);
    for (size_t i = 0; i < k; i++)
        out[i] = rs[i]->receiver;
    return k;
}

Test(route, tree_matching_with_continue)
{
    struct config *cfg;
    struct vg_err err;
    struct route_config *c = parse(tree, &cfg, &err);
    cr_assert_not_null(c, "%s", err.msg);
    const char *got[8];
    struct label a[] = { L("alertname", "X"), L("severity", "critical"), L("team", "db") };
    cr_assert_eq(receivers_of(c, a, 3, got), 2, "continue: the next sibling is tried");
    cr_assert_str_eq(got[0], "pager");
    cr_assert_str_eq(got[1], "team");
    struct label b[] = { L("alertname", "X"), L("env", "dev"), L("team", "web") };
    cr_assert_eq(receivers_of(c, b, 3, got), 1);
    cr_assert_str_eq(got[0], "devnull", "deepest matching route");
    struct label d[] = { L("alertname", "X") };
    cr_assert_eq(receivers_of(c, d, 1, got), 1);
    cr_assert_str_eq(got[0], "default", "no child matched: the root");
    struct label e[] = { L("severity", "critical") };
    cr_assert_eq(receivers_of(c, e, 1, got), 1, "continue with nothing after: only pager");
    cr_assert_str_eq(got[0], "pager");
    route_config_free(c);
    config_free(cfg);
}

static void expect_error(const char *yaml, const char *want)
{
    struct config *cfg;
    struct vg_err err = { 0 };
    struct route_config *c = parse(yaml, &cfg, &err);
    cr_assert_null(c, "accepted: %s", yaml);
    cr_assert(strstr(err.msg, want), "error [%s] lacks [%s]", err.msg, want);
    config_free(cfg);
}

Test(route, config_errors_name_file_line)
{
    expect_error("notifications:\n  route:\n    group_by: [a]\n",
                 "n.yml:3: notifications.route: receiver is required on the root route");
    expect_error("notifications:\n  route:\n    receiver: x\n",
                 "receiver \"x\" (route {}) is not defined in receivers");
    expect_error("notifications:\n  route:\n    receiver: x\n    routes:\n"
                 "      - matchers: ['a=~\"(\"']\n  receivers: [{name: x}]\n",
                 "n.yml:5: notifications.route.routes[0].matchers[0]: matcher");
    expect_error("notifications:\n  route:\n    receiver: x\n    group_wait: soon\n"
                 "  receivers: [{name: x}]\n",
                 "n.yml:4: notifications.route.group_wait:");
    expect_error("notifications:\n  route: {receiver: x, colour: red}\n"
                 "  receivers: [{name: x}]\n",
                 "unknown key \"colour\"");
    expect_error("notifications:\n  route: {receiver: x}\n  receivers:\n    - name: x\n"
                 "      webhook_configs:\n        - url: ftp://h/x\n",
                 "n.yml:6: notifications.receivers[0].webhook_configs[0].url: \"ftp://h/x\" is "
                 "not an http:// or https:// URL");
    expect_error("notifications:\n  route: {receiver: x}\n  receivers:\n    - name: x\n"
                 "    - name: x\n",
                 "n.yml:5: notifications.receivers[1]: receiver name \"x\" is already used");
    expect_error("notifications:\n  route: {receiver: x}\n  receivers:\n    - name: x\n"
                 "      email_configs: [{to: a@b, from: c@d, smarthost: mail}]\n",
                 "smarthost: \"mail\" is not host:port");
    expect_error("notifications:\n  route: {receiver: x}\n  receivers:\n    - name: x\n"
                 "      slack_configs: [{api_url: 'http://h', title: '{{ .Nope }}'}]\n",
                 "title: template: unsupported action \"{{ .Nope }}\"");
    expect_error("notifications:\n  route: {receiver: x, escalate: {receiver: x}}\n"
                 "  receivers: [{name: x}]\n",
                 "notifications.route.escalate: after is required");
    expect_error("notifications:\n  route: {receiver: x, escalate: {after: 1m, receiver: y}}\n"
                 "  receivers: [{name: x}]\n",
                 "receiver \"y\" (route {}) is not defined");
    expect_error("notifications:\n  route: {receiver: x}\n  receivers: [{name: x}]\n"
                 "  delivery: {initial_backoff: 1m, max_backoff: 1s}\n",
                 "max_backoff: shorter than initial_backoff");
    expect_error("notifications:\n  route: {receiver: x}\n  receivers: [{name: x}]\n"
                 "  inhibit_rules: [{equal: [a]}]\n",
                 "source_matchers and target_matchers are required");
    expect_error("notifications:\n  route: {receiver: x}\n  receivers:\n    - name: x\n"
                 "      email_configs: [{to: a@b, from: c@d, smarthost: 'm:25',\n"
                 "                       tls_config: {ca_file: /nonexistent/ca.pem}}]\n",
                 "n.yml:6: notifications.receivers[0].email_configs[0].tls_config.ca_file: "
                 "cannot read \"/nonexistent/ca.pem\"");
    expect_error("notifications:\n  route: {receiver: x}\n  receivers:\n    - name: x\n"
                 "      email_configs: [{to: a@b, from: c@d, smarthost: 'm:25',\n"
                 "                       tls_config: {cert_file: /dev/null}}]\n",
                 "tls_config: cert_file and key_file go together");
    expect_error("notifications:\n  route: {receiver: x}\n  receivers:\n    - name: x\n"
                 "      email_configs: [{to: a@b, from: c@d, smarthost: 'm:25',\n"
                 "                       tls_config: {ciphers: [a]}}]\n",
                 "unknown key \"ciphers\"");
}

/* An e-mail receiver's tls_config is read into what the SMTP transport is given. */
Test(route, email_tls_config_is_kept)
{
    struct config *cfg;
    struct vg_err err = { 0 };
    struct route_config *c = parse("notifications:\n  route: {receiver: x}\n  receivers:\n"
                                   "    - name: x\n      email_configs:\n"
                                   "        - {to: a@b, from: c@d, smarthost: 'm:25', tls_config:\n"
                                   "           {ca_file: /dev/null, server_name: mail.test,\n"
                                   "            insecure_skip_verify: true}}\n",
                                   &cfg, &err);
    cr_assert_not_null(c, "%s", err.msg);
    const struct route_integration *it = &c->receivers[0].ints[0];
    cr_assert_str_eq(it->tls.ca_file, "/dev/null");
    cr_assert_str_eq(it->tls.server_name, "mail.test");
    cr_assert(it->tls.insecure);
    cr_assert_null(it->tls.cert_file);
    route_config_free(c);
    config_free(cfg);
}

Test(route, no_section_means_no_route)
{
    struct vg_err err;
    struct route_config *c = route_config_parse(NULL, "", &err);
    cr_assert_not_null(c);
    cr_assert_not(c->has_route);
    const struct route_node *rs[2];
    struct label a[] = { L("alertname", "X") };
    cr_assert_eq(route_match(c, a, 1, rs, 2), 0);
    cr_assert_eq(c->delivery.queue_capacity, 1024);
    route_config_free(c);
}

Test(route, fingerprint_is_alertmanagers)
{
    /* FNV-1a 64 over name 0xff value 0xff: the empty set is the offset basis */
    cr_assert_eq(route_fingerprint(NULL, 0), 14695981039346656037ULL);
    struct label a[] = { L("a", "b") };
    uint64_t h = 14695981039346656037ULL;
    const unsigned char bytes[] = { 'a', 0xff, 'b', 0xff };
    for (size_t i = 0; i < sizeof bytes; i++) {
        h ^= bytes[i];
        h *= 1099511628211ULL;
    }
    cr_assert_eq(route_fingerprint(a, 1), h);
    struct label b[] = { L("a", "b"), L("c", "d") };
    cr_assert_neq(route_fingerprint(b, 2), h);
}

Test(route, rfc3339)
{
    struct vg_buf b;
    vg_buf_init(&b);
    route_rfc3339(&b, 1700000000123LL);
    cr_assert_str_eq(vg_buf_cstr(&b), "2023-11-14T22:13:20.123Z");
    vg_buf_free(&b);
}

Test(route, allocation_failure_is_reported)
{
    struct config *cfg;
    struct vg_err err;
    cfg = config_load_buf("n.yml", tree, strlen(tree), &err);
    cr_assert_not_null(cfg);
    bool saw_oom = false;
    for (uint64_t k = 1; k < 400; k++) {
        vg_alloc_fail_after(k);
        struct route_config *c = route_config_parse(config_block(cfg, "notifications"), "",
                                                    &err);
        vg_alloc_fail_after(0);
        if (c) {
            route_config_free(c);
            break;
        }
        saw_oom |= err.code == VG_ENOMEM;
    }
    cr_assert(saw_oom);
    config_free(cfg);
}
