/* probe_config: parsing of the `probes` section (format in probe_config.h). Each
 * module's regexes are compiled here once; probe_config_free releases them. */
#include "probe_config.h"

#include "../../storage/base/vg_alloc.h"
#include "../config_node.h"
#include "dns_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_INTERVAL_MS 15000

static void module_defaults(struct probe_module *m, const char *name, const struct prober *p)
{
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    m->prober = p;
    m->timeout_ms = DEFAULT_TIMEOUT_MS;
    m->ip_fallback = true;
    m->http.method = "GET";
    m->http.follow_redirects = true;
    m->dns.query_type = 1;
    m->dns.recursion_desired = true;
    m->icmp.payload_size = 56;
}

static int ip_opts(const struct config_node *map, const char *where, struct probe_module *m,
                   struct vg_err *err)
{
    const char *ip = NULL;
    if (config_node_str(map, where, "preferred_ip_protocol", &ip, err) < 0 ||
        config_node_bool(map, where, "ip_protocol_fallback", &m->ip_fallback, err) < 0)
        return err->code;
    if (ip && strcmp(ip, "ip4") != 0 && strcmp(ip, "ip6") != 0)
        return config_node_err(err, config_node_get(map, "preferred_ip_protocol"),
                               "%s.preferred_ip_protocol: \"%s\" is not ip4 or ip6", where, ip);
    if (ip)
        m->ip = !strcmp(ip, "ip4") ? PROBE_IP4 : PROBE_IP6;
    return 0;
}

/* The strings of the list map[key] (none when absent), at most max of them. *items is
 * freed by the caller with vg_free, also after an error. */
static int list_items(const struct config_node *map, const char *where, const char *key,
                      size_t max, const char ***items, size_t *n, struct vg_err *err)
{
    if (!config_node_get(map, key))
        return 0;
    if (config_node_strlist(map, where, key, items, n, err) < 0)
        return err->code;
    if (*n > max)
        return config_node_err(err, config_node_get(map, key), "%s.%s: at most %zu values",
                               where, key, max);
    return 0;
}

/* Compiles the list map[key] into res (srcs keeps the patterns for messages). */
static int regex_list(const struct config_node *map, const char *where, const char *key,
                      struct matcher_regex **res, const char **srcs, size_t *n, struct vg_err *err)
{
    const char **items = NULL;
    size_t ni = 0;
    int rc = list_items(map, where, key, PROBE_MAX_REGEXES, &items, &ni, err);
    for (size_t i = 0; !rc && i < ni; i++) {
        struct vg_err re;
        if (!(res[*n] = matcher_regex_new(vg_str_c(items[i]), &re))) {
            rc = config_node_err(err, config_node_get(map, key), "%s.%s: %s", where, key, re.msg);
            break;
        }
        if (srcs)
            srcs[*n] = items[i];
        (*n)++;
    }
    vg_free(items);
    return rc;
}

/* An integer list (valid_status_codes) or names mapped by fn (valid_rcodes). */
static int int_list(const struct config_node *map, const char *where, const char *key, int *out,
                    size_t cap, size_t *n, int (*by_name)(const char *), struct vg_err *err)
{
    const char **items = NULL;
    size_t ni = 0;
    int rc = list_items(map, where, key, cap, &items, &ni, err);
    for (size_t i = 0; !rc && i < ni; i++) {
        char *end;
        long v = by_name ? by_name(items[i]) : strtol(items[i], &end, 10);
        if (by_name ? v < 0 : (*end || end == items[i] || v < 100 || v > 599))
            rc = config_node_err(err, config_node_get(map, key), "%s.%s: \"%s\" is not %s", where,
                                 key, items[i], by_name ? "an rcode name" : "an HTTP status");
        out[i] = (int)v;
    }
    vg_free(items);
    if (!rc)
        *n = ni;
    return rc;
}

static int parse_http(const struct config_node *h, const char *where, struct probe_module *m,
                      struct vg_err *err)
{
    static const char *const keys[] = {
        "method", "valid_status_codes", "fail_if_body_matches_regexp",
        "fail_if_body_not_matches_regexp", "follow_redirects", "headers", "body", "fail_if_ssl",
        "fail_if_not_ssl", "tls_config", "body_size_limit", "preferred_ip_protocol",
        "ip_protocol_fallback", NULL,
    };
    struct probe_http_opts *o = &m->http;
    char w2[160];
    const char *size = NULL;
    if (config_node_check_keys(h, where, keys, err) < 0 ||
        config_node_str(h, where, "method", &o->method, err) < 0 ||
        config_node_str(h, where, "body", &o->body, err) < 0 ||
        config_node_bool(h, where, "follow_redirects", &o->follow_redirects, err) < 0 ||
        config_node_bool(h, where, "fail_if_ssl", &o->fail_if_ssl, err) < 0 ||
        config_node_bool(h, where, "fail_if_not_ssl", &o->fail_if_not_ssl, err) < 0 ||
        config_node_str(h, where, "body_size_limit", &size, err) < 0 ||
        int_list(h, where, "valid_status_codes", o->valid_codes, PROBE_MAX_CODES, &o->ncodes,
                 NULL, err) < 0 ||
        regex_list(h, where, "fail_if_body_matches_regexp", o->fail_match, o->fail_match_src,
                   &o->nfail_match, err) < 0 ||
        regex_list(h, where, "fail_if_body_not_matches_regexp", o->fail_not_match,
                   o->fail_not_match_src, &o->nfail_not_match, err) < 0 ||
        ip_opts(h, where, m, err) < 0)
        return err->code;
    if (size && config_parse_size(size, &o->body_size_limit, err) < 0)
        return config_node_err(err, config_node_get(h, "body_size_limit"), "%s.body_size_limit: %s",
                               where, err->msg);
    const struct config_node *hd = config_node_get(h, "headers");
    if (hd) {
        snprintf(w2, sizeof w2, "%s.headers", where);
        if (config_node_check_strmap(hd, w2, err) < 0)
            return err->code;
        if (hd->n > PROBE_MAX_HEADERS)
            return config_node_err(err, hd, "%s: at most %d headers", w2, PROBE_MAX_HEADERS);
        for (size_t i = 0; i < hd->n; i++) {
            o->header_names[i] = hd->keys[i];
            o->header_values[i] = hd->items[i]->value;
        }
        o->nheaders = hd->n;
    }
    if (tls_config_parse(h, where, NULL, &o->tls, err) < 0)
        return err->code;
    return 0;
}

static int parse_tcp(const struct config_node *t, const char *where, struct probe_module *m,
                     struct vg_err *err)
{
    static const char *const keys[] = { "query_response", "preferred_ip_protocol",
                                        "ip_protocol_fallback", NULL };
    static const char *const step_keys[] = { "expect", "send", NULL };
    if (config_node_check_keys(t, where, keys, err) < 0 || ip_opts(t, where, m, err) < 0)
        return err->code;
    const struct config_node *qr = config_node_get(t, "query_response");
    if (!qr)
        return 0;
    if (qr->type != CONFIG_NODE_SEQ || qr->n > PROBE_MAX_STEPS)
        return config_node_err(err, qr, "%s.query_response: expected a list of at most %d steps",
                               where, PROBE_MAX_STEPS);
    for (size_t i = 0; i < qr->n; i++) {
        char w[160];
        snprintf(w, sizeof w, "%s.query_response[%zu]", where, i);
        struct probe_tcp_step *st = &m->tcp.steps[i];
        const char *expect = NULL;
        if (config_node_check_keys(qr->items[i], w, step_keys, err) < 0 ||
            config_node_str(qr->items[i], w, "expect", &expect, err) < 0 ||
            config_node_str(qr->items[i], w, "send", &st->send, err) < 0)
            return err->code;
        if (expect) {
            struct vg_err re;
            if (!(st->expect = matcher_regex_new(vg_str_c(expect), &re)))
                return config_node_err(err, qr->items[i], "%s.expect: %s", w, re.msg);
            st->expect_src = expect;
        }
        m->tcp.nsteps++;
    }
    return 0;
}

static int rcode_by_name(const char *s)
{
    return dns_rcode_from_name(s);
}

static int parse_dns(const struct config_node *d, const char *where, struct probe_module *m,
                     struct vg_err *err)
{
    static const char *const keys[] = {
        "query_name", "query_type", "transport_protocol", "recursion_desired", "valid_rcodes",
        "validate_answer_rrs", "preferred_ip_protocol", "ip_protocol_fallback", NULL,
    };
    static const char *const rr_keys[] = { "fail_if_matches_regexp",
                                           "fail_if_not_matches_regexp", NULL };
    struct probe_dns_opts *o = &m->dns;
    const char *qtype = NULL, *transport = NULL;
    if (config_node_check_keys(d, where, keys, err) < 0 ||
        config_node_str(d, where, "query_name", &o->query_name, err) < 0 ||
        config_node_str(d, where, "query_type", &qtype, err) < 0 ||
        config_node_str(d, where, "transport_protocol", &transport, err) < 0 ||
        config_node_bool(d, where, "recursion_desired", &o->recursion_desired, err) < 0 ||
        int_list(d, where, "valid_rcodes", o->valid_rcodes, 16, &o->nrcodes, rcode_by_name,
                 err) < 0 ||
        ip_opts(d, where, m, err) < 0)
        return err->code;
    if (!o->query_name || !o->query_name[0])
        return config_node_err(err, d, "%s.query_name: required", where);
    if (qtype && !(o->query_type = dns_type_from_name(qtype)))
        return config_node_err(err, config_node_get(d, "query_type"),
                               "%s.query_type: unknown type \"%s\"", where, qtype);
    if (transport && strcmp(transport, "udp") != 0 && strcmp(transport, "tcp") != 0)
        return config_node_err(err, config_node_get(d, "transport_protocol"),
                               "%s.transport_protocol: \"%s\" is not udp or tcp", where, transport);
    o->tcp = transport && !strcmp(transport, "tcp");
    const struct config_node *v = config_node_get(d, "validate_answer_rrs");
    if (v) {
        char w[160];
        snprintf(w, sizeof w, "%s.validate_answer_rrs", where);
        if (config_node_check_keys(v, w, rr_keys, err) < 0 ||
            regex_list(v, w, "fail_if_matches_regexp", o->fail_match, NULL, &o->nfail_match,
                       err) < 0 ||
            regex_list(v, w, "fail_if_not_matches_regexp", o->fail_not_match, NULL,
                       &o->nfail_not_match, err) < 0)
            return err->code;
    }
    return 0;
}

static int parse_icmp(const struct config_node *i, const char *where, struct probe_module *m,
                      struct vg_err *err)
{
    static const char *const keys[] = { "payload_size", "preferred_ip_protocol",
                                        "ip_protocol_fallback", NULL };
    int64_t size = (int64_t)m->icmp.payload_size;
    if (config_node_check_keys(i, where, keys, err) < 0 ||
        config_node_int(i, where, "payload_size", 0, 1400, &size, err) < 0 ||
        ip_opts(i, where, m, err) < 0)
        return err->code;
    m->icmp.payload_size = (size_t)size;
    return 0;
}

static int parse_module(const char *name, const struct config_node *n, struct probe_module *m,
                        struct vg_err *err)
{
    static const char *const keys[] = { "prober", "timeout", "http", "tcp", "dns", "icmp", NULL };
    char where[128];
    snprintf(where, sizeof where, "probes.modules.%s", name);
    const char *prober = NULL;
    if (strlen(name) >= sizeof m->name)
        return config_node_err(err, n, "%s: name over %zu bytes", where, sizeof m->name - 1);
    module_defaults(m, name, NULL);
    if (config_node_check_keys(n, where, keys, err) < 0 ||
        config_node_str(n, where, "prober", &prober, err) < 0 ||
        config_node_duration(n, where, "timeout", 1, &m->timeout_ms, err) < 0)
        return err->code;
    if (m->timeout_ms > 600000)
        return config_node_err(err, config_node_get(n, "timeout"), "%s.timeout: over 10m", where);
    if (!prober || !(m->prober = prober_find(prober)))
        return config_node_err(err, config_node_get(n, "prober") ? config_node_get(n, "prober") : n,
                               "%s.prober: %s%s%s (valid: http, tcp, dns, icmp)", where,
                               prober ? "unknown prober \"" : "required", prober ? prober : "",
                               prober ? "\"" : "");
    static const struct {
        const char *key;
        int (*fn)(const struct config_node *, const char *, struct probe_module *, struct vg_err *);
    } subs[] = { { "http", parse_http }, { "tcp", parse_tcp }, { "dns", parse_dns },
                 { "icmp", parse_icmp } };
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        const struct config_node *s = config_node_get(n, subs[i].key);
        char w[160];
        snprintf(w, sizeof w, "%s.%s", where, subs[i].key);
        if (s && strcmp(subs[i].key, m->prober->name) != 0)
            return config_node_err(err, s, "%s: given for a %s prober", w, m->prober->name);
        if (s && subs[i].fn(s, w, m, err) < 0)
            return err->code;
        if (!s && !strcmp(subs[i].key, "dns") && m->prober == &prober_dns)
            return config_node_err(err, n, "%s.dns.query_name: required", where);
    }
    return 0;
}

static int parse_target(const struct probe_config *c, const struct config_node *n, size_t idx,
                        struct probe_target *t, struct vg_err *err)
{
    static const char *const keys[] = { "module", "target", "interval", "job", "labels", NULL };
    char where[64];
    snprintf(where, sizeof where, "probes.targets[%zu]", idx);
    const char *module = NULL;
    t->interval_ms = DEFAULT_INTERVAL_MS;
    t->job = "probe";
    if (config_node_check_keys(n, where, keys, err) < 0 ||
        config_node_str(n, where, "module", &module, err) < 0 ||
        config_node_str(n, where, "target", &t->target, err) < 0 ||
        config_node_str(n, where, "job", &t->job, err) < 0 ||
        config_node_duration(n, where, "interval", 1000, &t->interval_ms, err) < 0)
        return err->code;
    if (!module || !(t->module = probe_config_module(c, module)))
        return config_node_err(err, config_node_get(n, "module") ? config_node_get(n, "module") : n,
                               "%s.module: %s%s%s", where, module ? "unknown module \"" : "required",
                               module ? module : "", module ? "\"" : "");
    if (!t->target || !t->target[0])
        return config_node_err(err, n, "%s.target: required", where);
    if (t->interval_ms <= t->module->timeout_ms)
        return config_node_err(err, config_node_get(n, "interval") ? config_node_get(n, "interval") : n,
                               "%s.interval: must be longer than module %s's timeout (%lld ms)",
                               where, t->module->name, (long long)t->module->timeout_ms);
    const struct config_node *ln = config_node_get(n, "labels");
    if (!ln)
        return 0;
    char w[80];
    snprintf(w, sizeof w, "%s.labels", where);
    if (config_node_check_strmap(ln, w, err) < 0)
        return err->code;
    if (!(t->labels = vg_calloc(ln->n ? ln->n : 1, sizeof *t->labels)))
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < ln->n; i++) {
        if (!strcmp(ln->keys[i], "job") || !strcmp(ln->keys[i], "instance") ||
            !strncmp(ln->keys[i], "__", 2))
            return config_node_err(err, ln->items[i], "%s: \"%s\" is reserved (use job:)", w,
                                   ln->keys[i]);
        t->labels[i] = (struct label){ vg_str_c(ln->keys[i]), vg_str_c(ln->items[i]->value) };
    }
    t->nlabels = ln->n;
    labels_sort(t->labels, t->nlabels);
    return labels_check_unique(t->labels, t->nlabels, err) < 0
               ? config_node_err(err, ln, "%s: %s", w, err->msg) : 0;
}

int probe_config_parse(const struct config *cfg, struct probe_config **out, struct vg_err *err)
{
    static const char *const keys[] = { "modules", "targets", NULL };
    *out = NULL;
    const struct config_node *sec = config_block(cfg, "probes");
    const struct config_node *mods = sec ? config_node_get(sec, "modules") : NULL;
    const struct config_node *tgts = sec ? config_node_get(sec, "targets") : NULL;
    struct probe_config *c = vg_calloc(1, sizeof *c);
    if (!c)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    int rc = 0;
    if (sec && !(sec->type == CONFIG_NODE_SCALAR && !sec->value[0]))
        rc = config_node_check_keys(sec, "probes", keys, err);
    if (!rc && mods && mods->type != CONFIG_NODE_MAP)
        rc = config_node_err(err, mods, "probes.modules: expected a mapping of names to modules");
    if (!rc && tgts && tgts->type != CONFIG_NODE_SEQ)
        rc = config_node_err(err, tgts, "probes.targets: expected a list");
    size_t nconf = !rc && mods ? mods->n : 0, ntg = !rc && tgts ? tgts->n : 0;
    if (!rc && (!(c->modules = vg_calloc(3 + nconf, sizeof *c->modules)) ||
                !(c->targets = vg_calloc(ntg ? ntg : 1, sizeof *c->targets))))
        rc = vg_err_set(err, VG_ENOMEM, "out of memory");
    if (!rc) {
        module_defaults(&c->modules[0], "http_2xx", &prober_http);
        module_defaults(&c->modules[1], "tcp_connect", &prober_tcp);
        module_defaults(&c->modules[2], "icmp", &prober_icmp);
        c->nmodules = 3;
    }
    for (size_t i = 0; !rc && i < nconf; i++) {
        rc = parse_module(mods->keys[i], mods->items[i], &c->modules[c->nmodules], err);
        c->nmodules++; /* counted even when it failed, so free releases its regexes */
    }
    for (size_t i = 0; !rc && i < ntg; i++) {
        rc = parse_target(c, tgts->items[i], i, &c->targets[i], err);
        c->ntargets++;
    }
    if (rc) {
        probe_config_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

static void free_regexes(struct matcher_regex **res, size_t n)
{
    for (size_t i = 0; i < n; i++)
        matcher_regex_free(res[i]);
}

void probe_config_free(struct probe_config *c)
{
    if (!c)
        return;
    /* The counts are 0 while an array is unallocated (c is calloc'd); testing the array
     * too keeps that visible to the analyser, which cannot see into vg_calloc. */
    for (size_t i = 0; c->modules && i < c->nmodules; i++) {
        struct probe_module *m = &c->modules[i];
        free_regexes(m->http.fail_match, m->http.nfail_match);
        free_regexes(m->http.fail_not_match, m->http.nfail_not_match);
        free_regexes(m->dns.fail_match, m->dns.nfail_match);
        free_regexes(m->dns.fail_not_match, m->dns.nfail_not_match);
        for (size_t k = 0; k < PROBE_MAX_STEPS; k++)
            matcher_regex_free(m->tcp.steps[k].expect);
        tls_config_free(&m->http.tls);
    }
    for (size_t i = 0; c->targets && i < c->ntargets; i++)
        vg_free(c->targets[i].labels);
    vg_free(c->modules);
    vg_free(c->targets);
    vg_free(c);
}

const struct probe_module *probe_config_module(const struct probe_config *c, const char *name)
{
    for (size_t i = c->nmodules; i > 0; i--) /* configured modules come last and win */
        if (!strcmp(c->modules[i - 1].name, name))
            return &c->modules[i - 1];
    return NULL;
}
