/* Tests server/scrape/scrape.c in-process: a tiny HTTP server in a thread of the test
 * serves bodies by path; the scrape manager scrapes it into a real TSDB (run once by
 * scrape_run_once, or on its own schedule), with content negotiation, failing targets,
 * timeouts, body limits, auth, file_sd changes and reloads. */
#include "../fixture.h"

#include "../../../../server/scrape/scrape.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <zlib.h>

/* ---- the test's HTTP server ---- */

struct srv {
    int fd;
    unsigned port;
    pthread_t th;
    atomic_bool stop;
    atomic_int hits, huge_hits;
    pthread_t huge[64];            /* threads streaming /huge, joined by srv_stop */
    int nhuge;
    char last_request[2048];
    pthread_mutex_t mu;
};

/* Writes a response; encoding is the Content-Encoding header's value or NULL. */
static void send_response(int c, const char *status, const char *ctype, const char *encoding,
                          const void *body, size_t len)
{
    char head[512];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %s\r\nContent-Type: %s\r\n%s%s%s"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, ctype,
                     encoding ? "Content-Encoding: " : "", encoding ? encoding : "",
                     encoding ? "\r\n" : "", len);
    /* MSG_NOSIGNAL: a scraper that gave up (timeout, body limit) must not SIGPIPE us */
    if (send(c, head, (size_t)n, MSG_NOSIGNAL) < 0 || send(c, body, len, MSG_NOSIGNAL) < 0)
        return;
}

static void respond(int c, const char *status, const char *ctype, const char *body)
{
    send_response(c, status, ctype, NULL, body, strlen(body));
}

/* Sends body gzip-compressed (Content-Encoding: gzip), as an exporter does for a client
 * that sent Accept-Encoding: gzip. */
static void respond_gzip(int c, const char *ctype, const char *body)
{
    unsigned char z[8192];
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return;
    zs.next_in = (unsigned char *)body;
    zs.avail_in = (uInt)strlen(body);
    zs.next_out = z;
    zs.avail_out = sizeof z;
    int zrc = deflate(&zs, Z_FINISH);
    size_t zlen = sizeof z - zs.avail_out;
    deflateEnd(&zs);
    if (zrc == Z_STREAM_END)
        send_response(c, "200 OK", ctype, "gzip", z, zlen);
}

/* Whether the request asked for gzip, as Prometheus does ("Accept-Encoding: gzip"). */
static bool wants_gzip(const char *req)
{
    const char *h = strcasestr(req, "\r\nAccept-Encoding:");
    const char *eol = h ? strstr(h + 2, "\r\n") : NULL;
    const char *g = h ? strstr(h, "gzip") : NULL;
    return g && eol && g < eol;
}

#define HUGE_SERIES 2000000

struct huge_conn {
    struct srv *srv;
    int fd;
};

/* Streams HUGE_SERIES distinct series (~48 MB) without Content-Length, generated 64 KiB
 * at a time, until done, the client hangs up or the server stops. */
static void *huge_main(void *arg)
{
    struct huge_conn *h = arg;
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                               "Connection: close\r\n\r\n";
    bool ok = send(h->fd, head, sizeof head - 1, MSG_NOSIGNAL) > 0;
    char buf[65536];
    size_t len = 0;
    for (int i = 0; ok && i < HUGE_SERIES && !atomic_load(&h->srv->stop); i++) {
        len += (size_t)snprintf(buf + len, sizeof buf - len, "huge_series{i=\"%07d\"} 1\n", i);
        if (len > sizeof buf - 64 || i == HUGE_SERIES - 1) {
            ok = send(h->fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len;
            len = 0;
        }
    }
    close(h->fd);
    free(h);
    return NULL;
}

static void *srv_main(void *arg)
{
    struct srv *s = arg;
    while (!atomic_load(&s->stop)) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            continue;
        char req[2048];
        size_t len = 0;
        ssize_t r;
        while (len < sizeof req - 1 && (r = read(c, req + len, sizeof req - 1 - len)) > 0) {
            len += (size_t)r;
            req[len] = '\0';
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        req[len] = '\0';
        pthread_mutex_lock(&s->mu);
        memcpy(s->last_request, req, len + 1);
        pthread_mutex_unlock(&s->mu);
        atomic_fetch_add(&s->hits, 1);
        if (!strncmp(req, "GET /huge ", 10) && s->nhuge < 64) {
            /* on its own thread, so the other paths are served meanwhile */
            atomic_fetch_add(&s->huge_hits, 1);
            struct huge_conn *h = malloc(sizeof *h);
            cr_assert_not_null(h);
            *h = (struct huge_conn){ s, c };
            cr_assert_eq(pthread_create(&s->huge[s->nhuge++], NULL, huge_main, h), 0);
            continue;
        }
        if (!strncmp(req, "GET /metrics ", 13))
            respond(c, "200 OK", "text/plain; version=0.0.4",
                    "# HELP m_total A counter.\n# TYPE m_total counter\nm_total{a=\"1\"} 3\n"
                    "g 1.5\n");
        else if (!strncmp(req, "GET /om ", 8))
            respond(c, "200 OK", "application/openmetrics-text; version=1.0.0",
                    "# TYPE e counter\ne_total 1 # {trace_id=\"t\"} 1\n# EOF\n");
        else if (!strncmp(req, "GET /slow ", 10)) {
            struct timespec ts = { .tv_sec = 2 };
            nanosleep(&ts, NULL);
            respond(c, "200 OK", "text/plain", "late 1\n");
        } else if (!strncmp(req, "GET /big ", 9))
            respond(c, "200 OK", "text/plain", "a_rather_long_metric_name_here 1\n"
                                               "another_rather_long_metric_name 2\n");
        else if (!strncmp(req, "GET /garbage ", 13))
            respond(c, "200 OK", "text/plain", "{{{ not metrics\n");
        else if (!strncmp(req, "GET /gz ", 8) && wants_gzip(req))
            respond_gzip(c, "text/plain; version=0.0.4", "# TYPE gz_total counter\n"
                         "gz_total{k=\"v\"} 7\ngz_gauge 2.5\n");
        else if (!strncmp(req, "GET /gzom ", 10) && wants_gzip(req))
            respond_gzip(c, "application/openmetrics-text; version=1.0.0",
                         "# TYPE gzo counter\n# UNIT gzo seconds\ngzo_total 4 # {trace_id=\"x\"} 1\n"
                         "# EOF\n");
        else if (!strncmp(req, "GET /gzbig ", 11) && wants_gzip(req)) {
            /* about 40 bytes on the wire, 2,000 once inflated */
            char big[2001];
            memset(big, 'x', 1999);
            big[0] = '#';
            big[1] = ' ';
            big[1999] = '\n';
            big[2000] = '\0';
            respond_gzip(c, "text/plain; version=0.0.4", big);
        } else if (!strncmp(req, "GET /badgz ", 11)) {
            static const char junk[] = "\x1f\x8b\x08\x00 this is not a deflate stream at all";
            send_response(c, "200 OK", "text/plain", "gzip", junk, sizeof junk - 1);
        } else if (!strncmp(req, "GET /gz", 7))
            respond(c, "200 OK", "text/plain", "not_gzipped 1\n"); /* no Accept-Encoding */
        else if (!strncmp(req, "GET /auth ", 10))
            respond(c, strstr(req, "Authorization: Bearer tok") ? "200 OK" : "401 Unauthorized",
                    "text/plain", "authed 1\n");
        else
            respond(c, "500 Internal Server Error", "text/plain", "oops\n");
        close(c);
    }
    return NULL;
}

static void srv_start(struct srv *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(s->fd, 0);
    int one = 1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct timeval tv = { .tv_usec = 100000 };
    setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    cr_assert_eq(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    getsockname(s->fd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    cr_assert_eq(listen(s->fd, 64), 0);
    cr_assert_eq(pthread_create(&s->th, NULL, srv_main, s), 0);
}

static void srv_stop(struct srv *s)
{
    atomic_store(&s->stop, true);
    pthread_join(s->th, NULL);
    for (int i = 0; i < s->nhuge; i++)
        pthread_join(s->huge[i], NULL);
    close(s->fd);
    pthread_mutex_destroy(&s->mu);
}

/* ---- helpers ---- */

static struct server_fixture fx;
static struct srv srv;
static struct config *cfg;

/* Starts scraping with the config yaml (kept in cfg for teardown). */
static struct scrape *start_yaml(const char *yaml)
{
    struct vg_err err;
    cfg = config_load_buf("t.yml", yaml, strlen(yaml), &err);
    cr_assert_not_null(cfg, "%s", err.msg);
    fx.v.cfg = cfg;
    struct scrape *s = scrape_start(&fx.v, cfg, &err);
    cr_assert_not_null(s, "%s", err.msg);
    return s;
}

/* start_yaml with every %u of yaml_fmt the test server's port. */
static struct scrape *start(const char *yaml_fmt)
{
    char yaml[4096];
    snprintf(yaml, sizeof yaml, yaml_fmt, srv.port, srv.port, srv.port, srv.port, srv.port,
             srv.port);
    return start_yaml(yaml);
}

static void setup(void)
{
    struct vg_err err;
    fixture_open(&fx);
    cr_assert_eq(ingest_metrics_init(&fx.v, &err), 0, "%s", err.msg);
    srv_start(&srv);
    cfg = NULL;
}

static void teardown(void)
{
    srv_stop(&srv);
    fx.v.cfg = fx.cfg;
    config_free(cfg);
    ingest_metrics_free(&fx.v);
    fixture_close(&fx);
}

TestSuite(scrape, .init = setup, .fini = teardown, .timeout = 60);

/* The newest value of the series selected by one equality matcher set, NAN if none.
 * pairs: name, value, ..., NULL */
static double latest(const char *name, ...)
{
    struct matcher *ms[8];
    size_t n = 0;
    struct vg_err err;
    ms[n++] = matcher_new(MATCH_EQ, VG_STR("__name__"), vg_str_c(name), &err);
    va_list ap;
    va_start(ap, name);
    for (const char *k; (k = va_arg(ap, const char *)) != NULL;)
        ms[n++] = matcher_new(MATCH_EQ, vg_str_c(k), vg_str_c(va_arg(ap, const char *)), &err);
    va_end(ap);
    struct tsdb_series_set *set;
    cr_assert_eq(tsdb_select(fx.v.tsdb, ms, n, INT64_MIN, INT64_MAX, &set, &err), 0);
    double v = NAN;
    if (set->n) {
        struct tsdb_sample *smp;
        size_t ns;
        cr_assert_eq(tsdb_read(fx.v.tsdb, set->v[0].id, INT64_MIN, INT64_MAX, &smp, &ns, &err),
                     0);
        if (ns)
            v = smp[ns - 1].v;
        vg_free(smp);
    }
    tsdb_series_set_free(set);
    for (size_t i = 0; i < n; i++)
        matcher_free(ms[i]);
    return v;
}

static bool is_stale(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits == TSDB_STALE_NAN_BITS;
}

struct seen {
    int active, dropped;
    char health[8][16];
    char error[8][256];
    char url[8][128];
};

static void count(void *ctx, const struct scrape_target_status *st)
{
    struct seen *s = ctx;
    if (st->dropped) {
        s->dropped++;
        return;
    }
    if (s->active < 8) {
        snprintf(s->health[s->active], 16, "%s", st->health);
        snprintf(s->error[s->active], 256, "%s", st->last_error);
        snprintf(s->url[s->active], 128, "%s", st->url);
    }
    s->active++;
}

/* ---- tests ---- */

Test(scrape, first_slot_spreads_targets_by_hash)
{
    cr_assert_eq(scrape_first_slot(0, 15000, 30000), 30000);
    cr_assert_eq(scrape_first_slot(1000, 15000, 30000), 31000);
    cr_assert_eq(scrape_first_slot(1000, 15000, 31001), 46000);
    cr_assert_eq(scrape_first_slot(15000 + 7, 15000, 0), 7);
    for (int64_t now = 0; now < 100000; now += 3331) {
        int64_t t = scrape_first_slot(123456789, 15000, now);
        cr_assert_geq(t, now);
        cr_assert_lt(t, now + 15000);
        cr_assert_eq(t % 15000, 123456789 % 15000);
    }
}

Test(scrape, scrapes_text_and_openmetrics_into_the_tsdb)
{
    struct scrape *s = start("scrape_configs:\n"
                             "  - job_name: text\n    scrape_interval: 1h\n"
                             "    static_configs: [{targets: ['127.0.0.1:%u'], labels: {env: t}}]\n"
                             "  - job_name: om\n    scrape_interval: 1h\n    metrics_path: /om\n"
                             "    static_configs: [{targets: ['127.0.0.1:%u']}]\n");
    struct vg_err err;
    cr_assert_eq(scrape_run_once(s, &err), 0);
    cr_assert_eq(latest("m_total", "job", "text", "env", "t", "a", "1", NULL), 3);
    cr_assert_eq(latest("g", "job", "text", NULL), 1.5);
    cr_assert_eq(latest("up", "job", "text", NULL), 1);
    cr_assert_eq(latest("scrape_samples_scraped", "job", "text", NULL), 2);
    cr_assert_eq(latest("e_total", "job", "om", NULL), 1, "OpenMetrics by Content-Type");
    cr_assert_eq(latest("up", "job", "om", NULL), 1);
    pthread_mutex_lock(&srv.mu);
    cr_assert(strstr(srv.last_request, "Accept: application/openmetrics-text;version=1.0.0"),
              "%s", srv.last_request);
    cr_assert(strstr(srv.last_request, "X-Prometheus-Scrape-Timeout-Seconds: 10"));
    cr_assert(strstr(srv.last_request, "Accept-Encoding: gzip"));
    pthread_mutex_unlock(&srv.mu);
    struct seen seen = { 0 };
    scrape_each_target(s, count, &seen);
    cr_assert_eq(seen.active, 2);
    cr_assert_str_eq(seen.health[0], "up");
    scrape_stop(s);
    /* stopping marks everything the targets stored stale */
    cr_assert(is_stale(latest("m_total", "job", "text", NULL)));
    cr_assert(is_stale(latest("up", "job", "om", NULL)));
}

Test(scrape, gzip_bodies_are_inflated_in_both_formats)
{
    struct scrape *s = start("scrape_configs:\n"
                             "  - job_name: gz\n    scrape_interval: 1h\n    metrics_path: /gz\n"
                             "    static_configs: [{targets: ['127.0.0.1:%u']}]\n"
                             "  - job_name: gzom\n    scrape_interval: 1h\n    metrics_path: /gzom\n"
                             "    static_configs: [{targets: ['127.0.0.1:%u']}]\n");
    struct vg_err err;
    cr_assert_eq(scrape_run_once(s, &err), 0);
    /* the server gzips only when asked, so these prove Accept-Encoding: gzip was sent */
    cr_assert(isnan(latest("not_gzipped", NULL)));
    cr_assert_eq(latest("gz_total", "job", "gz", "k", "v", NULL), 7);
    cr_assert_eq(latest("gz_gauge", "job", "gz", NULL), 2.5);
    cr_assert_eq(latest("scrape_samples_scraped", "job", "gz", NULL), 2);
    cr_assert_eq(latest("gzo_total", "job", "gzom", NULL), 4, "OpenMetrics, gzipped");
    cr_assert_eq(latest("up", "job", "gzom", NULL), 1);
    pthread_mutex_lock(&srv.mu);
    cr_assert(wants_gzip(srv.last_request), "%s", srv.last_request);
    pthread_mutex_unlock(&srv.mu);
    struct seen seen = { 0 };
    scrape_each_target(s, count, &seen);
    cr_assert_eq(seen.active, 2);
    cr_assert_str_eq(seen.health[0], "up", "%s", seen.error[0]);
    cr_assert_str_eq(seen.health[1], "up", "%s", seen.error[1]);
    scrape_stop(s);
}

Test(scrape, bad_gzip_and_gzip_bombs_are_down_targets)
{
    /* body_size_limit counts inflated bytes, as Prometheus's does: /gzbig is ~40 bytes on
     * the wire and 2,000 inflated */
    struct scrape *s = start("scrape_configs:\n"
                             "  - job_name: badgz\n    scrape_interval: 1h\n    metrics_path: /badgz\n"
                             "    static_configs: [{targets: ['127.0.0.1:%u']}]\n"
                             "  - job_name: bomb\n    scrape_interval: 1h\n    metrics_path: /gzbig\n"
                             "    body_size_limit: 1000\n"
                             "    static_configs: [{targets: ['127.0.0.1:%u']}]\n"
                             "  - job_name: fits\n    scrape_interval: 1h\n    metrics_path: /gzbig\n"
                             "    body_size_limit: 3000\n"
                             "    static_configs: [{targets: ['127.0.0.1:%u']}]\n");
    struct vg_err err;
    cr_assert_eq(scrape_run_once(s, &err), 0);
    struct seen seen = { 0 };
    scrape_each_target(s, count, &seen);
    cr_assert_eq(seen.active, 3);
    cr_assert_str_eq(seen.health[0], "down");
    cr_assert(strstr(seen.error[0], "unencoding") || strstr(seen.error[0], "content encoding") ||
              strstr(seen.error[0], "gzip"), "%s", seen.error[0]);
    cr_assert_eq(latest("up", "job", "badgz", NULL), 0);
    cr_assert_str_eq(seen.health[1], "down");
    cr_assert_str_eq(seen.error[1], "body size limit exceeded (limit: 1000 bytes)");
    cr_assert_eq(latest("up", "job", "bomb", NULL), 0);
    cr_assert_str_eq(seen.health[2], "up", "%s", seen.error[2]);
    cr_assert_eq(latest("scrape_samples_scraped", "job", "fits", NULL), 0, "a comment line");
    scrape_stop(s);
}

Test(scrape, failures_are_reported_not_fatal)
{
    struct scrape *s = start(
        "scrape_configs:\n"
        "  - job_name: e500\n    scrape_interval: 1h\n    metrics_path: /nope\n"
        "    static_configs: [{targets: ['127.0.0.1:%u']}]\n"
        "  - job_name: slow\n    scrape_interval: 1h\n    scrape_timeout: 300ms\n"
        "    metrics_path: /slow\n    static_configs: [{targets: ['127.0.0.1:%u']}]\n"
        "  - job_name: big\n    scrape_interval: 1h\n    body_size_limit: 40\n"
        "    metrics_path: /big\n    static_configs: [{targets: ['127.0.0.1:%u']}]\n"
        "  - job_name: garbage\n    scrape_interval: 1h\n    metrics_path: /garbage\n"
        "    static_configs: [{targets: ['127.0.0.1:%u']}]\n"
        "  - job_name: auth\n    scrape_interval: 1h\n    metrics_path: /auth\n"
        "    authorization: {credentials: tok}\n"
        "    static_configs: [{targets: ['127.0.0.1:%u']}]\n"
        "  - job_name: refused\n    scrape_interval: 1h\n"
        "    static_configs: [{targets: ['127.0.0.1:1']}]\n");
    struct vg_err err;
    cr_assert_eq(scrape_run_once(s, &err), 0);
    struct seen seen = { 0 };
    scrape_each_target(s, count, &seen);
    cr_assert_eq(seen.active, 6);
    cr_assert_str_eq(seen.health[0], "down");
    cr_assert_str_eq(seen.error[0], "server returned HTTP status 500");
    cr_assert_str_eq(seen.health[1], "down");
    cr_assert(strstr(seen.error[1], "imeout") || strstr(seen.error[1], "timed out"), "%s",
              seen.error[1]);
    cr_assert_str_eq(seen.error[2], "body size limit exceeded (limit: 40 bytes)");
    cr_assert(strstr(seen.error[3], "line 1"), "%s", seen.error[3]);
    cr_assert_str_eq(seen.health[4], "up", "%s", seen.error[4]);
    cr_assert_eq(latest("authed", NULL), 1);
    cr_assert_str_eq(seen.health[5], "down");
    cr_assert_eq(latest("up", "job", "e500", NULL), 0);
    cr_assert_eq(latest("up", "job", "refused", NULL), 0);
    scrape_stop(s);
}

Test(scrape, runs_on_its_own_schedule)
{
    struct scrape *s = start("scrape_configs:\n  - job_name: fast\n    scrape_interval: 100ms\n"
                             "    static_configs: [{targets: ['127.0.0.1:%u']}]\n");
    struct timespec ts = { .tv_nsec = 600 * 1000000L };
    nanosleep(&ts, NULL);
    int hits = atomic_load(&srv.hits);
    cr_assert_geq(hits, 3, "only %d scrapes in 600ms at 100ms", hits);
    cr_assert_leq(hits, 8);
    cr_assert_eq(latest("up", "job", "fast", NULL), 1);
    scrape_stop(s);
}

Test(scrape, reload_keeps_unchanged_targets_and_stales_removed_ones)
{
    struct scrape *s = start("scrape_configs:\n"
                             "  - job_name: keep\n    scrape_interval: 1h\n"
                             "    static_configs: [{targets: ['127.0.0.1:%u']}]\n"
                             "  - job_name: gone\n    scrape_interval: 1h\n"
                             "    static_configs: [{targets: ['127.0.0.1:%u']}]\n");
    struct vg_err err;
    cr_assert_eq(scrape_run_once(s, &err), 0);
    char yaml[512];
    snprintf(yaml, sizeof yaml, "scrape_configs:\n  - job_name: keep\n    scrape_interval: 1h\n"
             "    static_configs: [{targets: ['127.0.0.1:%u']}]\n", srv.port);
    struct config *c2 = config_load_buf("t.yml", yaml, strlen(yaml), &err);
    cr_assert_not_null(c2);
    cr_assert_eq(scrape_apply(s, c2, &err), 0, "%s", err.msg);
    config_free(c2);
    cr_assert(is_stale(latest("g", "job", "gone", NULL)));
    cr_assert_eq(latest("g", "job", "keep", NULL), 1.5);
    struct seen seen = { 0 };
    scrape_each_target(s, count, &seen);
    cr_assert_eq(seen.active, 1);
    cr_assert_str_eq(seen.health[0], "up", "the kept target keeps its status");
    /* a bad config is refused and the running targets stay */
    const char *bad = "scrape_configs:\n  - job_name: x\n    scheme: gopher\n";
    c2 = config_load_buf("t.yml", bad, strlen(bad), &err);
    cr_assert_eq(scrape_apply(s, c2, &err), VG_EINVAL);
    config_free(c2);
    memset(&seen, 0, sizeof seen);
    scrape_each_target(s, count, &seen);
    cr_assert_eq(seen.active, 1);
    scrape_stop(s);
}

Test(scrape, file_sd_changes_are_picked_up)
{
    char dir[96];
    snprintf(dir, sizeof dir, "%.60s/sd", fx.dir);
    cr_assert_eq(mkdir(dir, 0755), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/a.json", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "[{\"targets\": [\"127.0.0.1:%u\"], \"labels\": {\"zone\": \"eu\"}}]\n",
            srv.port);
    fclose(f);
    char yaml[512];
    snprintf(yaml, sizeof yaml, "scrape_configs:\n  - job_name: sd\n    scrape_interval: 1h\n"
             "    file_sd_configs: [{files: ['%s/*.json', '%s/*.yml']}]\n"
             "    relabel_configs: [{source_labels: [__meta_filepath], regex: '.*/(.*)',"
             " target_label: file}]\n", dir, dir);
    struct scrape *s = start_yaml(yaml);
    struct vg_err err;
    cr_assert_eq(scrape_run_once(s, &err), 0);
    struct seen seen = { 0 };
    scrape_each_target(s, count, &seen);
    cr_assert_eq(seen.active, 1, "the file's target");
    cr_assert_str_eq(seen.health[0], "up", "%s", seen.error[0]);
    cr_assert_eq(latest("g", "job", "sd", "zone", "eu", "file", "a.json", NULL), 1.5);
    /* a second file, in YAML */
    snprintf(path, sizeof path, "%s/b.yml", dir);
    f = fopen(path, "w");
    fprintf(f, "- targets: ['localhost:%u']\n  labels: {zone: us}\n", srv.port);
    fclose(f);
    for (int i = 0; i < 40 && seen.active < 2; i++) {
        struct timespec ts = { .tv_nsec = 100 * 1000000L };
        nanosleep(&ts, NULL);
        memset(&seen, 0, sizeof seen);
        scrape_each_target(s, count, &seen);
    }
    cr_assert_eq(seen.active, 2);
    cr_assert_eq(scrape_run_once(s, &err), 0);
    cr_assert_eq(latest("g", "zone", "us", NULL), 1.5);
    scrape_stop(s);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits up to max_ms for the number of active targets to become want; the count seen. */
static int wait_active(struct scrape *s, int want, int max_ms)
{
    struct seen seen = { 0 };
    for (int64_t end = mono_ms() + max_ms;;) {
        memset(&seen, 0, sizeof seen);
        scrape_each_target(s, count, &seen);
        if (seen.active == want || mono_ms() >= end)
            return seen.active;
        struct timespec ts = { .tv_nsec = 20 * 1000000L };
        nanosleep(&ts, NULL);
    }
}

static void write_targets(const char *path, unsigned port)
{
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fprintf(f, "[{\"targets\": [\"127.0.0.1:%u\"]}]\n", port);
    fclose(f);
    cr_assert_eq(rename(tmp, path), 0); /* as config management tools replace files */
}

Test(scrape, file_sd_watch_sees_changes_at_once_and_stops_promptly)
{
    /* refresh_interval 1h: only the directory watch can see these changes in time */
    char dir[96], path[128];
    snprintf(dir, sizeof dir, "%.60s/sd", fx.dir);
    cr_assert_eq(mkdir(dir, 0755), 0);
    char yaml[512];
    snprintf(yaml, sizeof yaml, "scrape_configs:\n  - job_name: sd\n    scrape_interval: 1h\n"
             "    file_sd_configs: [{files: ['%s/*.json'], refresh_interval: 1h}]\n", dir);
    struct scrape *s = start_yaml(yaml);
    cr_assert_eq(wait_active(s, 0, 0), 0);
    struct timespec settle = { .tv_nsec = 100 * 1000000L };
    nanosleep(&settle, NULL); /* scrape-sd has set its watch up */
    snprintf(path, sizeof path, "%s/a.json", dir);
    int64_t t0 = mono_ms();
    write_targets(path, srv.port);
    cr_assert_eq(wait_active(s, 1, 3000), 1);
    int64_t took = mono_ms() - t0;
    cr_assert_lt(took, 900, "a new file took %lld ms", (long long)took);
    /* a file written in place (closed after writing), then deleted */
    snprintf(path, sizeof path, "%s/b.json", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "[{\"targets\": [\"localhost:%u\"]}]\n", srv.port);
    fclose(f);
    cr_assert_eq(wait_active(s, 2, 3000), 2);
    cr_assert_eq(unlink(path), 0);
    cr_assert_eq(wait_active(s, 1, 3000), 1);
    /* stopping does not wait for the refresh or a poll tick */
    t0 = mono_ms();
    scrape_stop(s);
    took = mono_ms() - t0;
    cr_assert_lt(took, 1000, "scrape_stop took %lld ms", (long long)took);
}

Test(scrape, file_sd_refresh_interval_rereads_what_the_watch_misses)
{
    /* the directories do not exist at start, so nothing watches them: only the
     * refresh_interval re-read finds their files (as Prometheus's refresh ticker does) */
    char fast[96], slow[96], path[128];
    snprintf(fast, sizeof fast, "%.60s/fast", fx.dir);
    snprintf(slow, sizeof slow, "%.60s/slow", fx.dir);
    char yaml[768];
    snprintf(yaml, sizeof yaml, "scrape_configs:\n"
             "  - job_name: fast\n    scrape_interval: 1h\n"
             "    file_sd_configs: [{files: ['%s/*.json'], refresh_interval: 200ms}]\n"
             "  - job_name: slow\n    scrape_interval: 1h\n"
             "    file_sd_configs: [{files: ['%s/*.json']}]\n", fast, slow);
    struct scrape *s = start_yaml(yaml);
    struct timespec settle = { .tv_nsec = 150 * 1000000L };
    nanosleep(&settle, NULL); /* scrape-sd's first look (with no directories) is over */
    cr_assert_eq(mkdir(slow, 0755), 0);
    snprintf(path, sizeof path, "%s/t.json", slow);
    write_targets(path, srv.port);
    /* slow's 5m refresh is not due, and nothing polls in between */
    cr_assert_eq(wait_active(s, 1, 1000), 0);
    cr_assert_eq(mkdir(fast, 0755), 0);
    snprintf(path, sizeof path, "%s/t.json", fast);
    write_targets(path, srv.port);
    /* the 200ms refresh finds fast's file; the rebuild it causes reads slow's too */
    cr_assert_eq(wait_active(s, 2, 3000), 2);
    /* contents are compared: a change that keeps the file's size and modification time
     * is still seen */
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    FILE *f = fopen(path, "r+");
    fprintf(f, "[{\"targets\": [\"127.0.0.2:%u\"]}]\n", srv.port);
    fclose(f);
    struct timespec times[2] = { st.st_atim, st.st_mtim };
    cr_assert_eq(utimensat(AT_FDCWD, path, times, 0), 0);
    char want[64];
    snprintf(want, sizeof want, "http://127.0.0.2:%u/metrics", srv.port);
    struct seen seen = { 0 };
    for (int64_t end = mono_ms() + 900; mono_ms() < end && strcmp(seen.url[0], want);) {
        struct timespec ts = { .tv_nsec = 20 * 1000000L };
        nanosleep(&ts, NULL);
        memset(&seen, 0, sizeof seen);
        scrape_each_target(s, count, &seen);
    }
    cr_assert_str_eq(seen.url[0], want);
    scrape_stop(s);
}

static void sleep_ms(long ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

Test(scrape, a_target_with_millions_of_series_is_cut_off_without_stalling_other_jobs)
{
    /* /huge streams 2,000,000 series; no job sets a limit, so global's (kept small to
     * keep the test fast; with nothing set the built-in 256 MiB applies, see
     * test_scrape_config) stops each scrape of it after 1 MiB */
    double before =
        fixture_metric(fx.v.metrics, "prometheus_target_scrapes_exceeded_body_size_limit_total ");
    cr_assert_leq(before, 0);
    struct scrape *s = start("global:\n  body_size_limit: 1MiB\n"
                             "scrape_configs:\n"
                             "  - job_name: huge\n    scrape_interval: 200ms\n"
                             "    metrics_path: /huge\n"
                             "    static_configs: [{targets: ['127.0.0.1:%u']}]\n"
                             "  - job_name: fast\n    scrape_interval: 100ms\n"
                             "    static_configs: [{targets: ['127.0.0.1:%u']}]\n");
    sleep_ms(1000);
    int huge = atomic_load(&srv.huge_hits);
    int fast = atomic_load(&srv.hits) - huge;
    /* margins for a loaded CI machine: the slots are 5 and 10 */
    cr_assert_geq(huge, 2, "only %d scrapes of /huge in 1s at 200ms", huge);
    cr_assert_geq(fast, 5, "the other job got %d scrapes in 1s at 100ms", fast);
    struct seen seen = { 0 };
    scrape_each_target(s, count, &seen);
    cr_assert_eq(seen.active, 2);
    cr_assert_str_eq(seen.health[0], "down");
    cr_assert_str_eq(seen.error[0], "body size limit exceeded (limit: 1048576 bytes)");
    cr_assert_str_eq(seen.health[1], "up", "%s", seen.error[1]);
    cr_assert_eq(latest("up", "job", "huge", NULL), 0);
    cr_assert(isnan(latest("huge_series", NULL)), "nothing of a cut-off body is stored");
    cr_assert_eq(latest("up", "job", "fast", NULL), 1);
    double after =
        fixture_metric(fx.v.metrics, "prometheus_target_scrapes_exceeded_body_size_limit_total ");
    cr_assert_geq(after, 2, "counter %g", after);
    scrape_stop(s);
}

Test(scrape, global_sample_limit_is_the_default_of_jobs)
{
    struct scrape *s = start("global:\n  sample_limit: 1\n"
                             "scrape_configs:\n"
                             "  - job_name: inherits\n    scrape_interval: 1h\n"
                             "    static_configs: [{targets: ['127.0.0.1:%u']}]\n"
                             "  - job_name: own\n    scrape_interval: 1h\n    sample_limit: 10\n"
                             "    static_configs: [{targets: ['127.0.0.1:%u']}]\n");
    struct vg_err err;
    cr_assert_eq(scrape_run_once(s, &err), 0);
    struct seen seen = { 0 };
    scrape_each_target(s, count, &seen);
    cr_assert_eq(seen.active, 2);
    cr_assert_str_eq(seen.health[0], "down");
    cr_assert_str_eq(seen.error[0], "sample limit exceeded (limit: 1)");
    cr_assert_eq(latest("up", "job", "inherits", NULL), 0);
    cr_assert(isnan(latest("g", "job", "inherits", NULL)));
    cr_assert_str_eq(seen.health[1], "up", "%s", seen.error[1]);
    cr_assert_eq(latest("g", "job", "own", NULL), 1.5);
    cr_assert_eq(
        fixture_metric(fx.v.metrics, "prometheus_target_scrapes_exceeded_sample_limit_total "),
        1);
    cr_assert_eq(scrape_run_once(s, &err), 0);
    cr_assert_eq(
        fixture_metric(fx.v.metrics, "prometheus_target_scrapes_exceeded_sample_limit_total "),
        2);
    scrape_stop(s);
}

static void write_text(const char *path, const char *text)
{
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    cr_assert_eq(rename(tmp, path), 0);
}

/* Waits up to max_ms for the first active target's URL to become want. */
static void wait_url(struct scrape *s, const char *want, int max_ms)
{
    struct seen seen = { 0 };
    for (int64_t end = mono_ms() + max_ms; mono_ms() < end && strcmp(seen.url[0], want);) {
        sleep_ms(20);
        memset(&seen, 0, sizeof seen);
        scrape_each_target(s, count, &seen);
    }
    cr_assert_str_eq(seen.url[0], want);
}

Test(scrape, file_sd_keeps_a_bad_files_previous_targets)
{
    char dir[96], path[128], yaml[512], text[128], want[96];
    snprintf(dir, sizeof dir, "%.60s/sd", fx.dir);
    cr_assert_eq(mkdir(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/a.json", dir);
    write_targets(path, srv.port);
    snprintf(yaml, sizeof yaml, "scrape_configs:\n  - job_name: sd\n    scrape_interval: 1h\n"
             "    file_sd_configs: [{files: ['%s/*.json'], refresh_interval: 1h}]\n", dir);
    struct scrape *s = start_yaml(yaml);
    struct vg_err err;
    cr_assert_eq(scrape_run_once(s, &err), 0);
    cr_assert_eq(latest("up", "job", "sd", NULL), 1);
    const char *errs = "prometheus_sd_file_read_errors_total ";
    cr_assert_leq(fixture_metric(fx.v.metrics, errs), 0);
    sleep_ms(100); /* scrape-sd has set its watch up */
    /* half-written: the target stays (with its state) and the error is counted */
    write_text(path, "[{\"targets\": [\"127.0.0.1:");
    for (int64_t end = mono_ms() + 3000; mono_ms() < end && fixture_metric(fx.v.metrics, errs) < 1;)
        sleep_ms(20);
    cr_assert_eq(fixture_metric(fx.v.metrics, errs), 1);
    struct seen seen = { 0 };
    scrape_each_target(s, count, &seen);
    cr_assert_eq(seen.active, 1);
    snprintf(want, sizeof want, "http://127.0.0.1:%u/metrics", srv.port);
    cr_assert_str_eq(seen.url[0], want);
    cr_assert_str_eq(seen.health[0], "up", "the kept target keeps its status");
    cr_assert_eq(scrape_run_once(s, &err), 0);
    snprintf(text, sizeof text, "127.0.0.1:%u", srv.port);
    cr_assert_eq(latest("g", "job", "sd", "instance", text, NULL), 1.5);
    /* fixed: the new targets apply */
    snprintf(text, sizeof text, "[{\"targets\": [\"localhost:%u\"]}]\n", srv.port);
    write_text(path, text);
    snprintf(want, sizeof want, "http://localhost:%u/metrics", srv.port);
    wait_url(s, want, 3000);
    cr_assert_eq(wait_active(s, 1, 0), 1);
    cr_assert_eq(fixture_metric(fx.v.metrics, errs), 1);
    scrape_stop(s);
}
