/* probe_config: the `probes` config section, parsed into modules and targets.
 *
 *   probes:
 *     modules:
 *       <name>:
 *         prober: http | tcp | dns | icmp
 *         timeout: 5s                      # whole probe, at most 10m
 *         http:
 *           method: GET
 *           valid_status_codes: [200, 204] # default: any 2xx
 *           fail_if_body_matches_regexp: [...]
 *           fail_if_body_not_matches_regexp: [...]
 *           follow_redirects: true
 *           headers: {Name: value}
 *           body: "..."
 *           fail_if_ssl: false
 *           fail_if_not_ssl: false
 *           tls_config: {...}           # as scrape jobs (../tls_config.h)
 *           body_size_limit: 1MiB         # bytes read for the regexes
 *           preferred_ip_protocol: ip4     # ip4 | ip6 (both probers and dns/icmp/tcp)
 *           ip_protocol_fallback: true
 *         tcp:
 *           query_response: [{expect: "^SSH-2.0-"}, {send: "QUIT"}]
 *         dns:
 *           query_name: example.com        # required
 *           query_type: A                  # A, AAAA, MX, TXT, SOA, NS, CNAME, PTR, SRV, ...
 *           transport_protocol: udp        # udp | tcp
 *           recursion_desired: true
 *           valid_rcodes: [NOERROR]
 *           validate_answer_rrs: {fail_if_matches_regexp: [...], fail_if_not_matches_regexp: [...]}
 *         icmp:
 *           payload_size: 56
 *     targets:
 *       - module: <name>
 *         target: "http://host/path" | "host:port" | "dns-server[:port]" | "host"
 *         interval: 15s                    # more than the module's timeout
 *         job: probe                       # the job label of the stored series
 *         labels: {k: v}                   # more labels on every stored series
 *
 * Built-in modules, usable without a `modules` entry and replaced by one of the same
 * name: http_2xx (GET, any 2xx), tcp_connect (connect only), icmp (one echo), each with
 * a 5 s timeout. Regexes use PCRE2 with Go RE2's common syntax (matcher_regex in
 * storage/tsdb/matcher.h), unanchored. Errors name file:line and the path, e.g.
 * "vigil.yml:12: probes.targets[1].module: unknown module \"htp\"".
 *
 * Everything points into the config tree, which must outlive the parsed config; the
 * parsed config is immutable after parsing (safe to share between threads). */
#ifndef PROBE_CONFIG_H
#define PROBE_CONFIG_H

#include "../../storage/tsdb/labels.h"
#include "../config.h"
#include "prober.h"

struct probe_target {
    const struct probe_module *module;
    const char *target;
    int64_t interval_ms;
    const char *job;
    struct label *labels; /* sorted, without job and instance */
    size_t nlabels;
};

struct probe_config {
    struct probe_module *modules; /* the built-ins first, then the configured ones */
    size_t nmodules;
    struct probe_target *targets;
    size_t ntargets;
};

/* Parses cfg's `probes` section (absent: built-in modules only, no targets). *out is
 * freed with probe_config_free. 0, VG_EINVAL with a file:line message, or VG_ENOMEM. */
int probe_config_parse(const struct config *cfg, struct probe_config **out, struct vg_err *err);
void probe_config_free(struct probe_config *c); /* accepts NULL */

/* The module called name (a configured one wins over a built-in), or NULL. */
const struct probe_module *probe_config_module(const struct probe_config *c, const char *name);

#endif
