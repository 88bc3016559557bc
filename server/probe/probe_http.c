/* probe_http: the HTTP(S) prober, on libcurl. This file and server/rules/transport.c are
 * the only includes of <curl/curl.h>: the notifiers' wrapper posts bodies, while a probe
 * needs curl's per-phase timings and certificate chain, which that wrapper does not
 * expose.
 *
 * A run: one easy handle per run (no connection reuse, so every probe measures a fresh
 * resolve, connect and TLS handshake), protocols limited to http and https (also on
 * redirects: a target cannot make Vigil read file:// or talk gopher), at most 10
 * redirects when follow_redirects is on, the whole transfer bounded by the deadline and
 * aborted when stop turns true.
 *
 * Success (as the blackbox exporter decides it): the transfer completed, the final
 * status is in valid_status_codes (any 2xx when none are listed), no
 * fail_if_body_matches_regexp matches and every fail_if_body_not_matches_regexp does,
 * fail_if_ssl / fail_if_not_ssl hold for the final request.
 *
 * Samples (blackbox names):
 *   probe_http_status_code, probe_http_content_length (-1 when unknown),
 *   probe_http_uncompressed_body_length, probe_http_redirects, probe_http_ssl,
 *   probe_http_version (1.0, 1.1, 2, 3), probe_failed_due_to_regex,
 *   probe_http_duration_seconds{phase=resolve|connect|tls|processing|transfer} from
 *     CURLINFO_*_TIME_T: resolve = NAMELOOKUP, connect = CONNECT - NAMELOOKUP,
 *     tls = APPCONNECT - CONNECT (0 for plain http), processing = STARTTRANSFER -
 *     PRETRANSFER (request sent until the first response byte), transfer = TOTAL -
 *     STARTTRANSFER; after redirects curl reports the phases of the last request plus
 *     the redirects' time in REDIRECT_TIME, which is counted into processing,
 *   probe_ssl_earliest_cert_expiry: the earliest "Expire date" of the peer's chain
 *     (CURLINFO_CERTINFO), Unix seconds; only for https,
 *   probe_dns_lookup_time_seconds (= resolve), probe_ip_protocol (from the peer's
 *     address).
 * The body is read up to body_size_limit (1 MiB by default) for the regexes; its full
 * length is still counted. */
#include "prober.h"

#include "../../storage/base/vg_alloc.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct body {
    char *p;
    size_t len, cap, limit;
    size_t total;
    bool oom;
};

struct xfer {
    int64_t deadline_ms;
    const atomic_bool *stop;
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    struct body *b = ud;
    size_t len = size * n;
    b->total += len;
    size_t keep = b->len + len <= b->limit ? len : b->limit - b->len;
    if (keep && !b->oom) {
        if (b->len + keep > b->cap) {
            size_t cap = b->cap ? b->cap : 16384;
            while (cap < b->len + keep)
                cap *= 2;
            char *q = vg_realloc(b->p, cap);
            if (!q) {
                b->oom = true;
                return len;
            }
            b->p = q;
            b->cap = cap;
        }
        memcpy(b->p + b->len, p, keep);
        b->len += keep;
    }
    return len;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    const struct xfer *x = ud;
    return x->stop && atomic_load(x->stop); /* non-zero aborts the transfer */
}

static const char *const H_PHASE = "Duration of http request by phase";

static double secs(CURL *c, CURLINFO what)
{
    curl_off_t us = 0;
    if (curl_easy_getinfo(c, what, &us) != CURLE_OK || us < 0)
        return 0;
    return (double)us / 1e6;
}

static double nonneg(double v)
{
    return v > 0 ? v : 0;
}

/* "Jan 10 12:00:00 2030 GMT" (OpenSSL's notAfter print) as Unix seconds; -1 if not.
 * OpenSSL writes English month names whatever the locale, and so does strptime in the
 * C locale the server runs in. */
static double parse_expiry(const char *s)
{
    struct tm tm = { 0 };
    const char *end = strptime(s, "%b %d %H:%M:%S %Y", &tm);
    if (!end)
        return -1;
    return (double)timegm(&tm);
}

static double earliest_expiry(CURL *c)
{
    struct curl_certinfo *ci = NULL;
    double best = -1;
    if (curl_easy_getinfo(c, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci)
        return -1;
    for (int i = 0; i < ci->num_of_certs; i++)
        for (struct curl_slist *l = ci->certinfo[i]; l; l = l->next)
            if (!strncasecmp(l->data, "Expire date:", 12)) {
                double t = parse_expiry(l->data + 12);
                if (t >= 0 && (best < 0 || t < best))
                    best = t;
            }
    return best;
}

static void add_timings(CURL *c, struct probe_result *r)
{
    double dns = secs(c, CURLINFO_NAMELOOKUP_TIME_T), conn = secs(c, CURLINFO_CONNECT_TIME_T);
    double app = secs(c, CURLINFO_APPCONNECT_TIME_T), pre = secs(c, CURLINFO_PRETRANSFER_TIME_T);
    double start = secs(c, CURLINFO_STARTTRANSFER_TIME_T), total = secs(c, CURLINFO_TOTAL_TIME_T);
    double redirect = secs(c, CURLINFO_REDIRECT_TIME_T);
    probe_add(r, "probe_dns_lookup_time_seconds",
              "Returns the time taken for probe dns lookup in seconds", NULL, NULL, dns);
    probe_add(r, "probe_http_duration_seconds", H_PHASE, "phase", "resolve", dns);
    probe_add(r, "probe_http_duration_seconds", H_PHASE, "phase", "connect", nonneg(conn - dns));
    probe_add(r, "probe_http_duration_seconds", H_PHASE, "phase", "tls",
              app > 0 ? nonneg(app - conn) : 0);
    probe_add(r, "probe_http_duration_seconds", H_PHASE, "phase", "processing",
              nonneg(start - pre) + redirect);
    probe_add(r, "probe_http_duration_seconds", H_PHASE, "phase", "transfer",
              start > 0 ? nonneg(total - start) : 0);
}

static bool code_ok(const struct probe_http_opts *o, long code)
{
    if (!o->ncodes)
        return code >= 200 && code < 300;
    for (size_t i = 0; i < o->ncodes; i++)
        if (o->valid_codes[i] == code)
            return true;
    return false;
}

/* Everything after the transfer: samples and the verdict. */
static bool judge(const struct probe_module *m, CURL *c, CURLcode rc, const char *url,
                  struct body *b, struct probe_result *r)
{
    const struct probe_http_opts *o = &m->http;
    long code = 0, redirects = 0, version = 0;
    curl_off_t clen = -1;
    char *ip = NULL, *eff = NULL;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(c, CURLINFO_REDIRECT_COUNT, &redirects);
    curl_easy_getinfo(c, CURLINFO_HTTP_VERSION, &version);
    curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen);
    curl_easy_getinfo(c, CURLINFO_PRIMARY_IP, &ip);
    curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &eff);
    bool tls = eff && !strncasecmp(eff, "https:", 6);
    add_timings(c, r);
    if (ip && ip[0])
        probe_add(r, "probe_ip_protocol", "Specifies whether probe ip protocol is IP4 or IP6",
                  NULL, NULL, strchr(ip, ':') ? 6 : 4);
    probe_add(r, "probe_http_status_code", "Response HTTP status code", NULL, NULL, (double)code);
    probe_add(r, "probe_http_content_length", "Length of http content response", NULL, NULL,
              (double)clen);
    probe_add(r, "probe_http_uncompressed_body_length", "Length of uncompressed response body",
              NULL, NULL, (double)b->total);
    probe_add(r, "probe_http_redirects", "The number of redirects", NULL, NULL, (double)redirects);
    probe_add(r, "probe_http_ssl", "Indicates if SSL was used for the final redirect", NULL, NULL,
              tls);
    double hv = version == CURL_HTTP_VERSION_1_0 ? 1.0 : version == CURL_HTTP_VERSION_1_1 ? 1.1
              : version == CURL_HTTP_VERSION_2_0 ? 2 : version == CURL_HTTP_VERSION_3 ? 3 : 0;
    probe_add(r, "probe_http_version", "Returns the version of HTTP of the probe response", NULL,
              NULL, hv);
    if (tls) {
        double exp = earliest_expiry(c);
        if (exp >= 0)
            probe_add(r, "probe_ssl_earliest_cert_expiry",
                      "Returns last SSL chain expiry in unixtime", NULL, NULL, exp);
    }
    bool regex_failed = false;
    if (rc == CURLE_OK && !b->oom) {
        if (probe_regex_any(o->fail_match, o->nfail_match, b->p ? b->p : "", b->len)) {
            regex_failed = true;
            probe_fail(r, "body matched a fail_if_body_matches_regexp");
        }
        for (size_t i = 0; i < o->nfail_not_match; i++)
            if (!probe_regex_any(&o->fail_not_match[i], 1, b->p ? b->p : "", b->len)) {
                regex_failed = true;
                probe_fail(r, "body did not match fail_if_body_not_matches_regexp \"%s\"",
                           o->fail_not_match_src[i]);
            }
    }
    probe_add(r, "probe_failed_due_to_regex", "Indicates if probe failed due to regex", NULL,
              NULL, regex_failed);
    if (rc != CURLE_OK)
        return probe_fail(r, "%s %s: %s", o->method, url, curl_easy_strerror(rc));
    if (b->oom)
        return probe_fail(r, "out of memory reading the body");
    if (!code_ok(o, code))
        return probe_fail(r, "HTTP status %ld is not a valid status code", code);
    if (o->fail_if_ssl && tls)
        return probe_fail(r, "final request used TLS (fail_if_ssl)");
    if (o->fail_if_not_ssl && !tls)
        return probe_fail(r, "final request did not use TLS (fail_if_not_ssl)");
    return !regex_failed;
}

static bool http_run(const struct probe_module *m, const char *target, int64_t deadline_ms,
                     const atomic_bool *stop, struct probe_result *r)
{
    pthread_once(&init_once, global_init);
    const struct probe_http_opts *o = &m->http;
    char url[2048];
    bool has_scheme = strstr(target, "://") != NULL;
    if (snprintf(url, sizeof url, "%s%s", has_scheme ? "" : "http://", target) >= (int)sizeof url)
        return probe_fail(r, "target is over %zu bytes", sizeof url - 1);
    int64_t left = deadline_ms - probe_now_ms();
    if (left <= 0)
        return probe_fail(r, "timed out before starting");
    CURL *c = curl_easy_init();
    if (!c)
        return probe_fail(r, "cannot create a curl handle");
    struct curl_slist *hdrs = NULL;
    char line[1024];
    bool hdr_oom = false;
    for (size_t i = 0; i < o->nheaders; i++) {
        snprintf(line, sizeof line, "%s: %s", o->header_names[i], o->header_values[i]);
        struct curl_slist *h = curl_slist_append(hdrs, line);
        if (!h)
            hdr_oom = true;
        else
            hdrs = h;
    }
    struct body b = { .limit = o->body_size_limit > 0 ? (size_t)o->body_size_limit : 1 << 20 };
    struct xfer x = { deadline_ms, stop };
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)left);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, o->method);
    if (!strcasecmp(o->method, "HEAD"))
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (o->body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, o->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(o->body));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "Vigil-Probe/0.1");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, o->follow_redirects ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
    curl_easy_setopt(c, CURLOPT_CERTINFO, 1L);
    curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(c, CURLOPT_IPRESOLVE, m->ip == PROBE_IP4 && !m->ip_fallback ? CURL_IPRESOLVE_V4
                                         : m->ip == PROBE_IP6 && !m->ip_fallback ? CURL_IPRESOLVE_V6
                                         : CURL_IPRESOLVE_WHATEVER);
    char *tls_url;
    struct curl_slist *tls_conn;
    bool tls_ok = tls_config_apply(c, &o->tls, false, url, &tls_url, &tls_conn);
    CURLcode rc = hdr_oom || !tls_ok ? CURLE_OUT_OF_MEMORY : curl_easy_perform(c);
    bool ok = judge(m, c, rc, url, &b, r);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    vg_free(b.p);
    return ok;
}

const struct prober prober_http = { "http", http_run };
