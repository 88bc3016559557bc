/* Tests server/probe/probe.c and the probers behind it (prober.c, probe_http.c,
 * probe_tcp.c, probe_dns.c, probe_icmp.c) against servers run by this test on loopback:
 * a small HTTP server (200, redirect, 503, a body for the regexes), a TCP greeter/echo
 * server, a DNS responder over UDP and TCP, and a listener that never answers (for
 * timeouts). Checks each prober's samples and verdict, GET /probe's exposition and its
 * 400s, the scheduler storing labelled series in the TSDB, and ICMP either working or
 * failing with the documented reason. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../../../server/probe/probe.h"
#include "../../../../server/probe/probe_config.h"
#include "../fixture.h"

enum kind { HTTP, ECHO, DNS_UDP, DNS_TCP, SILENT };

struct server {
    enum kind kind;
    int fd;
    uint16_t port;
    atomic_bool stop;
    pthread_t th;
};

static struct server http_srv, echo_srv, dns_udp, dns_tcp, silent;
static struct server_fixture f;
static struct vg_err err;

static void read_until_blank(int c, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        struct pollfd pf = { c, POLLIN, 0 };
        if (poll(&pf, 1, 2000) <= 0)
            break;
        ssize_t r = read(c, buf + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    buf[n] = '\0';
}

static void serve_http(int c)
{
    char req[4096], resp[512];
    read_until_blank(c, req, sizeof req);
    const char *status = "200 OK", *body = "hello vigil, all ok", *extra = "";
    if (!strncmp(req, "GET /redirect ", 14)) {
        status = "302 Found";
        body = "";
        extra = "Location: /ok\r\n";
    } else if (!strncmp(req, "GET /error ", 11)) {
        status = "503 Service Unavailable";
        body = "oops";
    } else if (!strncmp(req, "POST /echo-header ", 18)) {
        body = strstr(req, "X-Probe: yes") ? "header seen" : "no header";
    }
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n%s",
                     status, strlen(body), extra, body);
    send(c, resp, (size_t)n, MSG_NOSIGNAL);
}

static void serve_echo(int c)
{
    send(c, "HELLO vigil\n", 12, MSG_NOSIGNAL);
    char buf[256];
    for (;;) {
        struct pollfd pf = { c, POLLIN, 0 };
        if (poll(&pf, 1, 2000) <= 0)
            return;
        ssize_t r = read(c, buf, sizeof buf);
        if (r <= 0)
            return;
        send(c, buf, (size_t)r, MSG_NOSIGNAL);
    }
}

/* Answers "example.test" with A 192.0.2.7, "soazone.test" (same length) with an SOA of
 * serial 2024010203, anything else NXDOMAIN. q is the query. */
static size_t dns_answer(const uint8_t *q, size_t n, uint8_t *out)
{
    static const uint8_t name[] = { 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 4, 't', 'e', 's', 't', 0 };
    static const uint8_t soa_name[] = { 7, 's', 'o', 'a', 'z', 'o', 'n', 'e',
                                        4, 't', 'e', 's', 't', 0 };
    if (n < 12 + sizeof name + 4)
        return 0;
    bool known = !memcmp(q + 12, name, sizeof name);
    bool soa = !memcmp(q + 12, soa_name, sizeof soa_name);
    size_t qend = 12 + sizeof name + 4;
    memcpy(out, q, qend);
    out[2] = 0x81;
    out[3] = known || soa ? 0x80 : 0x83;
    out[7] = known || soa ? 1 : 0;
    if (soa) {
        /* mname ns.test, rname h.test, serial 2024010203 (0x78a3f1db), then refresh,
         * retry, expire and minimum */
        static const uint8_t rr[] = { 0xc0, 12, 0, 6, 0, 1, 0, 0, 0, 60, 0, 37,
                                      2, 'n', 's', 4, 't', 'e', 's', 't', 0,
                                      1, 'h', 4, 't', 'e', 's', 't', 0,
                                      0x78, 0xa3, 0xf1, 0xdb, 0, 0, 0x0e, 0x10,
                                      0, 0, 0x03, 0x84, 0, 0x09, 0x3a, 0x80, 0, 0, 0, 60 };
        memcpy(out + qend, rr, sizeof rr);
        return qend + sizeof rr;
    }
    if (!known)
        return qend;
    static const uint8_t a[] = { 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7 };
    memcpy(out + qend, a, sizeof a);
    return qend + sizeof a;
}

static void serve_dns_tcp(int c)
{
    uint8_t q[512], a[600];
    size_t got = 0;
    while (got < 2 || got < 2 + (size_t)(q[0] << 8 | q[1])) { /* the length prefix, then all */
        struct pollfd pf = { c, POLLIN, 0 };
        if (poll(&pf, 1, 2000) <= 0)
            return;
        ssize_t r = read(c, q + got, sizeof q - got);
        if (r <= 0)
            return;
        got += (size_t)r;
    }
    size_t n = dns_answer(q + 2, got - 2, a + 2);
    a[0] = (uint8_t)(n >> 8);
    a[1] = (uint8_t)n;
    send(c, a, n + 2, MSG_NOSIGNAL);
}

static void *server_main(void *arg)
{
    struct server *s = arg;
    while (!atomic_load(&s->stop)) {
        struct pollfd pf = { s->fd, POLLIN, 0 };
        if (poll(&pf, 1, 50) <= 0)
            continue;
        if (s->kind == DNS_UDP) {
            uint8_t q[512], a[600];
            struct sockaddr_storage from;
            socklen_t fl = sizeof from;
            ssize_t n = recvfrom(s->fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
            size_t an = n > 0 ? dns_answer(q, (size_t)n, a) : 0;
            if (an)
                sendto(s->fd, a, an, 0, (struct sockaddr *)&from, fl);
            continue;
        }
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        if (s->kind == HTTP)
            serve_http(c);
        else if (s->kind == ECHO)
            serve_echo(c);
        else
            serve_dns_tcp(c);
        close(c);
    }
    return NULL;
}

static void server_start(struct server *s, enum kind kind)
{
    s->kind = kind;
    atomic_store(&s->stop, false);
    s->fd = socket(AF_INET, kind == DNS_UDP ? SOCK_DGRAM : SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    getsockname(s->fd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    if (kind != DNS_UDP)
        cr_assert_eq(listen(s->fd, 16), 0);
    if (kind != SILENT) /* a silent listener completes connects but never answers */
        cr_assert_eq(pthread_create(&s->th, NULL, server_main, s), 0);
}

static void server_stop(struct server *s)
{
    atomic_store(&s->stop, true);
    if (s->kind != SILENT)
        pthread_join(s->th, NULL);
    close(s->fd);
}

static void setup(void)
{
    server_start(&http_srv, HTTP);
    server_start(&echo_srv, ECHO);
    server_start(&dns_udp, DNS_UDP);
    server_start(&dns_tcp, DNS_TCP);
    server_start(&silent, SILENT);
    fixture_open(&f);
    cr_assert_eq(ingest_metrics_init(&f.v, &err), 0);
}

static void teardown(void)
{
    mod_probe.free(&f.v);
    ingest_metrics_free(&f.v);
    fixture_close(&f);
    server_stop(&http_srv);
    server_stop(&echo_srv);
    server_stop(&dns_udp);
    server_stop(&dns_tcp);
    server_stop(&silent);
}

TestSuite(probe, .init = setup, .fini = teardown, .timeout = 60);

/* Loads yaml (with %u replaced in order by the http, echo, dns and silent ports) and
 * starts the module. */
static void start(const char *fmt)
{
    char yaml[4096];
    snprintf(yaml, sizeof yaml, fmt, http_srv.port, echo_srv.port, dns_udp.port, dns_tcp.port,
             silent.port);
    config_free(f.cfg);
    f.cfg = config_load_buf("t.yml", yaml, strlen(yaml), &err);
    cr_assert_not_null(f.cfg, "%s", err.msg);
    f.v.cfg = f.cfg;
    cr_assert_eq(mod_probe.check(f.cfg, &err), 0, "%s", err.msg);
    cr_assert_eq(mod_probe.init(&f.v, &err), 0, "%s", err.msg);
}

static const char *const MODULES =
    "probes:\n"
    "  modules:\n"
    "    body_ok: {prober: http, http: {fail_if_body_not_matches_regexp: ['all ok']}}\n"
    "    body_bad: {prober: http, http: {fail_if_body_matches_regexp: ['vigil']}}\n"
    "    no_follow: {prober: http, http: {follow_redirects: false, valid_status_codes: [302]}}\n"
    "    post_hdr: {prober: http, http: {method: POST, body: x, headers: {X-Probe: 'yes'},\n"
    "               fail_if_body_not_matches_regexp: ['header seen']}}\n"
    "    must_tls: {prober: http, http: {fail_if_not_ssl: true}}\n"
    "    quick: {prober: http, timeout: 500ms}\n"
    "    echo: {prober: tcp, tcp: {query_response: [{expect: '^HELLO'}, {send: ping}, {expect: '^ping$'}]}}\n"
    "    echo_bad: {prober: tcp, timeout: 1s, tcp: {query_response: [{expect: '^GOODBYE'}]}}\n"
    "    dns_a: {prober: dns, dns: {query_name: example.test, validate_answer_rrs: {fail_if_not_matches_regexp: ['192\\.0\\.2\\.7']}}}\n"
    "    dns_tcp: {prober: dns, dns: {query_name: example.test, transport_protocol: tcp}}\n"
    "    dns_nx: {prober: dns, dns: {query_name: missing.test}}\n"
    "    dns_nx_ok: {prober: dns, dns: {query_name: missing.test, valid_rcodes: [NXDOMAIN]}}\n"
    "    dns_quick: {prober: dns, timeout: 500ms, dns: {query_name: example.test}}\n"
    "    dns_soa: {prober: dns, dns: {query_name: soazone.test, query_type: SOA}}\n"
    "# ports %u %u %u %u %u\n";

static struct probe_result res;

static bool run(const char *module, const char *target)
{
    struct probe_config *pc;
    cr_assert_eq(probe_config_parse(f.cfg, &pc, &err), 0);
    const struct probe_module *m = probe_config_module(pc, module);
    cr_assert_not_null(m, "%s", module);
    bool ok = probe_run(m, target, NULL, &res);
    probe_config_free(pc);
    return ok;
}

static double sample(const char *name, const char *lvalue)
{
    for (size_t i = 0; i < res.n; i++)
        if (!strcmp(res.s[i].name, name) &&
            (!lvalue || (res.s[i].lvalue && !strcmp(res.s[i].lvalue, lvalue))))
            return res.s[i].value;
    cr_assert_fail("no sample %s{%s} (error: %s)", name, lvalue ? lvalue : "", res.error);
    return 0;
}

static char url[128];

static const char *at(const char *path)
{
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", http_srv.port, path);
    return url;
}

Test(probe, http)
{
    start(MODULES);
    cr_assert(run("http_2xx", at("/ok")), "%s", res.error);
    cr_assert_eq(sample("probe_success", NULL), 1);
    cr_assert_eq(sample("probe_http_status_code", NULL), 200);
    cr_assert_eq(sample("probe_http_content_length", NULL), 19);
    cr_assert_eq(sample("probe_http_version", NULL), 1.1);
    cr_assert_eq(sample("probe_http_ssl", NULL), 0);
    cr_assert_eq(sample("probe_ip_protocol", NULL), 4);
    cr_assert_eq(sample("probe_http_duration_seconds", "tls"), 0);
    cr_assert_geq(sample("probe_http_duration_seconds", "connect"), 0);
    cr_assert_gt(sample("probe_duration_seconds", NULL), 0);

    cr_assert(run("http_2xx", at("/redirect")), "%s", res.error);
    cr_assert_eq(sample("probe_http_redirects", NULL), 1);
    cr_assert_eq(sample("probe_http_status_code", NULL), 200);
    cr_assert(run("no_follow", at("/redirect")), "%s", res.error);
    cr_assert_eq(sample("probe_http_status_code", NULL), 302);

    cr_assert(!run("http_2xx", at("/error")));
    cr_assert_eq(sample("probe_success", NULL), 0);
    cr_assert_eq(sample("probe_http_status_code", NULL), 503);
    cr_assert(strstr(res.error, "503"), "%s", res.error);

    cr_assert(run("body_ok", at("/ok")), "%s", res.error);
    cr_assert_eq(sample("probe_failed_due_to_regex", NULL), 0);
    cr_assert(!run("body_bad", at("/ok")));
    cr_assert_eq(sample("probe_failed_due_to_regex", NULL), 1);
    cr_assert(run("post_hdr", at("/echo-header")), "%s", res.error);
    cr_assert(!run("must_tls", at("/ok")));
    cr_assert(strstr(res.error, "fail_if_not_ssl"), "%s", res.error);

    snprintf(url, sizeof url, "127.0.0.1:%u/ok", http_srv.port);
    cr_assert(run("http_2xx", url), "a target without a scheme is http://: %s", res.error);
}

Test(probe, http_failures)
{
    start(MODULES);
    cr_assert(!run("http_2xx", "http://127.0.0.1:1/"));
    cr_assert(strstr(res.error, "onnect"), "%s", res.error);
    cr_assert_eq(sample("probe_http_status_code", NULL), 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", silent.port);
    int64_t t0 = probe_now_ms();
    cr_assert(!run("quick", url));
    int64_t took = probe_now_ms() - t0;
    cr_assert(took >= 400 && took < 3000, "bounded by the 500ms timeout: %lld ms", (long long)took);
    cr_assert(strstr(res.error, "imeout") || strstr(res.error, "timed out"), "%s", res.error);
    cr_assert(!run("http_2xx", "file:///etc/passwd"), "only http and https");
    cr_assert(!run("http_2xx", "http://no-such-host.invalid/"));
}

Test(probe, tcp)
{
    start(MODULES);
    char t[64];
    snprintf(t, sizeof t, "127.0.0.1:%u", echo_srv.port);
    cr_assert(run("tcp_connect", t), "%s", res.error);
    cr_assert_geq(sample("probe_tcp_duration_seconds", "connect"), 0);
    cr_assert(run("echo", t), "%s", res.error);
    cr_assert_eq(sample("probe_failed_due_to_regex", NULL), 0);
    cr_assert(!run("echo_bad", t));
    cr_assert_eq(sample("probe_failed_due_to_regex", NULL), 1);
    cr_assert(strstr(res.error, "GOODBYE"), "%s", res.error);
    cr_assert(!run("tcp_connect", "127.0.0.1:1"));
    cr_assert(strstr(res.error, "refused"), "%s", res.error);
    cr_assert(!run("tcp_connect", "127.0.0.1"), "no port");
    cr_assert(strstr(res.error, "host:port"), "%s", res.error);
    snprintf(t, sizeof t, "[::1]:%u", echo_srv.port);
    run("tcp_connect", t); /* IPv6 loopback may be off; it must answer either way */
    cr_assert_eq(sample("probe_success", NULL), res.error[0] ? 0 : 1);
}

Test(probe, dns)
{
    start(MODULES);
    char t[64];
    snprintf(t, sizeof t, "127.0.0.1:%u", dns_udp.port);
    cr_assert(run("dns_a", t), "%s", res.error);
    cr_assert_eq(sample("probe_dns_answer_rrs", NULL), 1);
    cr_assert_eq(sample("probe_dns_authority_rrs", NULL), 0);
    cr_assert_eq(sample("probe_dns_query_succeeded", NULL), 1);
    cr_assert_geq(sample("probe_dns_duration_seconds", "request"), 0);
    cr_assert(!run("dns_nx", t));
    cr_assert(strstr(res.error, "rcode 3"), "%s", res.error);
    cr_assert_eq(sample("probe_dns_query_succeeded", NULL), 1);
    cr_assert(run("dns_nx_ok", t), "%s", res.error);
    cr_assert(run("dns_soa", t), "%s", res.error);
    cr_assert_eq(sample("probe_dns_serial", NULL), 2024010203.0);
    snprintf(t, sizeof t, "127.0.0.1:%u", dns_tcp.port);
    cr_assert(run("dns_tcp", t), "%s", res.error);
    cr_assert_eq(sample("probe_dns_answer_rrs", NULL), 1);
    /* a UDP port nobody answers on: the deadline ends it */
    snprintf(t, sizeof t, "127.0.0.1:%u", silent.port);
    cr_assert(!run("dns_quick", t));
    cr_assert_eq(sample("probe_dns_query_succeeded", NULL), 0);
}

Test(probe, icmp_works_or_says_why)
{
    start(MODULES);
    bool ok = run("icmp", "127.0.0.1");
    if (ok)
        cr_assert_geq(sample("probe_icmp_duration_seconds", "rtt"), 0);
    else
        cr_assert(strstr(res.error, "not permitted") || strstr(res.error, "echo reply"), "%s",
                  res.error);
    cr_assert_eq(sample("probe_success", NULL), ok);
    cr_assert(!run("icmp", "no-such-host.invalid"));
}

Test(probe, probe_endpoint)
{
    start(MODULES);
    struct http_response resp;
    struct http_arg args[] = { { "module", "http_2xx" }, { "target", at("/ok") } };
    fixture_call(&f, mod_probe.routes[0].fn, "/probe", args, 2, &resp);
    cr_assert_eq(resp.status, 200);
    cr_assert(strstr(resp.content_type, "version=0.0.4"));
    cr_assert(strstr(resp.body.p, "# TYPE probe_success gauge\nprobe_success 1\n"), "%s",
              resp.body.p);
    cr_assert(strstr(resp.body.p, "probe_http_duration_seconds{phase=\"connect\"} "));
    cr_assert(strstr(resp.body.p, "probe_http_status_code 200\n"));
    vg_buf_free(&resp.body);

    args[1].value = at("/error");
    fixture_call(&f, mod_probe.routes[0].fn, "/probe", args, 2, &resp);
    cr_assert_eq(resp.status, 200, "a failed probe is still a scrape");
    cr_assert(strstr(resp.body.p, "probe_success 0\n"));
    cr_assert(strstr(resp.body.p, "# probe failed: HTTP status 503"), "%s", resp.body.p);
    vg_buf_free(&resp.body);

    args[0].value = "nope";
    fixture_call(&f, mod_probe.routes[0].fn, "/probe", args, 2, &resp);
    cr_assert_eq(resp.status, 400);
    cr_assert_str_eq(resp.body.p, "Unknown module \"nope\"\n");
    vg_buf_free(&resp.body);

    fixture_call(&f, mod_probe.routes[0].fn, "/probe", args, 1, &resp);
    cr_assert_eq(resp.status, 400);
    cr_assert_str_eq(resp.body.p, "Target parameter is missing\n");
    vg_buf_free(&resp.body);
}

/* The newest value of name{instance=inst} and the series' job label. */
static double stored(const char *name, const char *inst, char *job, size_t cap)
{
    struct matcher *ms[2] = {
        matcher_new(MATCH_EQ, VG_STR("__name__"), vg_str_c(name), &err),
        matcher_new(MATCH_EQ, VG_STR("instance"), vg_str_c(inst), &err),
    };
    struct tsdb_series_set *set;
    cr_assert_eq(tsdb_select(f.v.tsdb, ms, 2, INT64_MIN, INT64_MAX, &set, &err), 0, "%s", err.msg);
    matcher_free(ms[0]);
    matcher_free(ms[1]);
    cr_assert_eq(set->n, 1, "%s{instance=%s}: %zu series", name, inst, set->n);
    struct vg_str j = labels_get(set->v[0].labels, set->v[0].nlabels, "job");
    snprintf(job, cap, "%.*s", (int)j.len, j.p);
    struct tsdb_sample *s;
    size_t n;
    cr_assert_eq(tsdb_read(f.v.tsdb, set->v[0].id, INT64_MIN, INT64_MAX, &s, &n, &err), 0);
    double v = s[n - 1].v;
    vg_free(s);
    tsdb_series_set_free(set);
    return v;
}

Test(probe, scheduled_probes_are_stored)
{
    start("probes:\n"
          "  targets:\n"
          "    - {module: http_2xx, target: 'http://127.0.0.1:%u/ok', interval: 6s,\n"
          "       labels: {env: test}}\n"
          "    - {module: tcp_connect, target: '127.0.0.1:%u', interval: 6s, job: tcp}\n"
          "    - {module: tcp_connect, target: '127.0.0.1:1', interval: 6s}\n"
          "# %u %u %u\n");
    for (int i = 0; i < 500 && probe_runs_done(&f.v) < 3; i++)
        nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
    cr_assert_geq(probe_runs_done(&f.v), 3, "the first runs are spread over 6 s");
    char job[32], target[64];
    snprintf(target, sizeof target, "http://127.0.0.1:%u/ok", http_srv.port);
    cr_assert_eq(stored("probe_success", target, job, sizeof job), 1);
    cr_assert_str_eq(job, "probe");
    cr_assert_eq(stored("probe_http_status_code", target, job, sizeof job), 200);
    snprintf(target, sizeof target, "127.0.0.1:%u", echo_srv.port);
    cr_assert_eq(stored("probe_success", target, job, sizeof job), 1);
    cr_assert_str_eq(job, "tcp");
    cr_assert_eq(stored("probe_success", "127.0.0.1:1", job, sizeof job), 0);
    enum tsdb_metric_type type;
    char help[128], unit[8];
    cr_assert(tsdb_metadata_get(f.v.tsdb, "probe_success", &type, help, sizeof help, unit,
                                sizeof unit));
    cr_assert_eq(type, TSDB_TYPE_GAUGE);
    struct vg_buf b;
    vg_buf_init(&b);
    metrics_render(f.v.metrics, &b);
    cr_assert(strstr(vg_buf_cstr(&b), "vigil_probe_runs_total{module=\"tcp_connect\",result=\"failure\"} 1"),
              "%s", b.p);
    vg_buf_free(&b);
}
