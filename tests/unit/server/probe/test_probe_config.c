/* Tests server/probe/probe_config.c: a full section with every prober's options, the
 * built-in modules (and overriding one), target defaults and labels, and each refusal
 * naming file:line and the path. */
#include <criterion/criterion.h>
#include <string.h>

#include "../../../../server/config.h"
#include "../../../../server/probe/probe_config.h"

static struct vg_err err;

static struct config *load(const char *yaml)
{
    struct config *c = config_load_buf("p.yml", yaml, strlen(yaml), &err);
    cr_assert_not_null(c, "%s", err.msg);
    return c;
}

Test(probe_config, full_section)
{
    struct config *cfg = load(
        "probes:\n"
        "  modules:\n"
        "    web:\n"
        "      prober: http\n"
        "      timeout: 2s\n"
        "      http:\n"
        "        method: POST\n"
        "        body: '{}'\n"
        "        valid_status_codes: [200, 201]\n"
        "        fail_if_body_matches_regexp: ['error', 'fail.*']\n"
        "        fail_if_body_not_matches_regexp: ['ok']\n"
        "        follow_redirects: false\n"
        "        headers: {X-Test: yes, Accept: text/plain}\n"
        "        tls_config: {insecure_skip_verify: true}\n"
        "        preferred_ip_protocol: ip6\n"
        "        ip_protocol_fallback: false\n"
        "    echo:\n"
        "      prober: tcp\n"
        "      tcp:\n"
        "        query_response: [{expect: '^HELLO'}, {send: ping}, {expect: ping}]\n"
        "    ns:\n"
        "      prober: dns\n"
        "      dns: {query_name: example.com, query_type: MX, transport_protocol: tcp,\n"
        "            valid_rcodes: [NOERROR, NXDOMAIN],\n"
        "            validate_answer_rrs: {fail_if_not_matches_regexp: ['MX']}}\n"
        "    http_2xx:\n"
        "      prober: http\n"
        "      timeout: 1s\n"
        "  targets:\n"
        "    - {module: web, target: 'http://127.0.0.1/', interval: 30s, labels: {env: prod}}\n"
        "    - {module: icmp, target: 127.0.0.1, job: ping}\n");
    struct probe_config *c;
    cr_assert_eq(probe_config_parse(cfg, &c, &err), 0, "%s", err.msg);
    const struct probe_module *web = probe_config_module(c, "web");
    cr_assert_not_null(web);
    cr_assert_eq(web->prober, &prober_http);
    cr_assert_eq(web->timeout_ms, 2000);
    cr_assert_str_eq(web->http.method, "POST");
    cr_assert_eq(web->http.ncodes, 2);
    cr_assert_eq(web->http.valid_codes[1], 201);
    cr_assert_eq(web->http.nfail_match, 2);
    cr_assert_eq(web->http.nfail_not_match, 1);
    cr_assert(!web->http.follow_redirects);
    cr_assert_eq(web->http.nheaders, 2);
    cr_assert_str_eq(web->http.header_names[0], "X-Test");
    cr_assert(web->http.tls.insecure);
    cr_assert_eq(web->ip, PROBE_IP6);
    cr_assert(!web->ip_fallback);
    const struct probe_module *echo = probe_config_module(c, "echo");
    cr_assert_eq(echo->tcp.nsteps, 3);
    cr_assert_not_null(echo->tcp.steps[0].expect);
    cr_assert_str_eq(echo->tcp.steps[1].send, "ping");
    const struct probe_module *ns = probe_config_module(c, "ns");
    cr_assert_eq(ns->dns.query_type, 15);
    cr_assert(ns->dns.tcp);
    cr_assert_eq(ns->dns.nrcodes, 2);
    cr_assert_eq(ns->dns.valid_rcodes[1], 3);
    cr_assert_eq(probe_config_module(c, "http_2xx")->timeout_ms, 1000, "configured wins");
    cr_assert_eq(probe_config_module(c, "tcp_connect")->prober, &prober_tcp, "built-in");
    cr_assert_null(probe_config_module(c, "nope"));
    cr_assert_eq(c->ntargets, 2);
    cr_assert_eq(c->targets[0].interval_ms, 30000);
    cr_assert_str_eq(c->targets[0].job, "probe");
    cr_assert_eq(c->targets[0].nlabels, 1);
    cr_assert_eq(c->targets[1].interval_ms, 15000);
    cr_assert_str_eq(c->targets[1].job, "ping");
    probe_config_free(c);
    config_free(cfg);
}

Test(probe_config, absent_section_gives_builtins)
{
    struct config *cfg = config_default();
    struct probe_config *c;
    cr_assert_eq(probe_config_parse(cfg, &c, &err), 0);
    cr_assert_eq(c->ntargets, 0);
    cr_assert_not_null(probe_config_module(c, "http_2xx"));
    cr_assert_not_null(probe_config_module(c, "icmp"));
    probe_config_free(c);
    config_free(cfg);
}

Test(probe_config, errors)
{
    static const struct { const char *yaml, *msg; } cases[] = {
        { "probes:\n  modulez: {}\n", "unknown key" },
        { "probes:\n  modules:\n    m: {prober: smtp}\n", "unknown prober \"smtp\"" },
        { "probes:\n  modules:\n    m: {timeout: 1s}\n", "prober: required" },
        { "probes:\n  modules:\n    m: {prober: http, tcp: {}}\n", "given for a http prober" },
        { "probes:\n  modules:\n    m: {prober: http, http: {valid_status_codes: [abc]}}\n",
          "not an HTTP status" },
        { "probes:\n  modules:\n    m: {prober: http, http: {fail_if_body_matches_regexp: ['(']}}\n",
          "fail_if_body_matches_regexp" },
        { "probes:\n  modules:\n    m: {prober: http, http: {preferred_ip_protocol: ip5}}\n",
          "not ip4 or ip6" },
        { "probes:\n  modules:\n    m: {prober: dns}\n", "query_name: required" },
        { "probes:\n  modules:\n    m: {prober: dns, dns: {query_name: x, query_type: BOGUS}}\n",
          "unknown type" },
        { "probes:\n  modules:\n    m: {prober: dns, dns: {query_name: x, valid_rcodes: [OK]}}\n",
          "not an rcode name" },
        { "probes:\n  modules:\n    m: {prober: tcp, tcp: {query_response: [{expect: '['}]}}\n",
          "expect" },
        { "probes:\n  targets:\n    - {module: htp, target: x}\n", "unknown module \"htp\"" },
        { "probes:\n  targets:\n    - {module: icmp}\n", "target: required" },
        { "probes:\n  targets:\n    - {module: icmp, target: x, interval: 2s}\n",
          "longer than module icmp's timeout" },
        { "probes:\n  targets:\n    - {module: icmp, target: x, labels: {instance: y}}\n",
          "reserved" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct config *cfg = load(cases[i].yaml);
        struct probe_config *c = (struct probe_config *)1;
        cr_assert_eq(probe_config_parse(cfg, &c, &err), VG_EINVAL, "%s", cases[i].yaml);
        cr_assert_null(c);
        cr_assert(strstr(err.msg, cases[i].msg), "%s: %s", cases[i].yaml, err.msg);
        cr_assert(strstr(err.msg, "p.yml:"), "names the file: %s", err.msg);
        config_free(cfg);
    }
}
