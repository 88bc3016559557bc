/* Tests server/scrape/scrape.c in-process: a tiny HTTP server in a thread of the test
 * serves bodies by path; the scrape manager scrapes it into a real TSDB (run once by
 * scrape_run_once, or on its own schedule), with content negotiation, failing targets,
 * timeouts, body limits, auth, file_sd changes and reloads. */
#include "../fixture.h"

#include "../../../../server/scrape/scrape.h"

#include <arpa/inet.h>
#include <math.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>

/* ---- the test's HTTP server ---- */

struct srv {
    int fd;
    unsigned port;
    pthread_t th;
    atomic_bool stop;
    atomic_int hits;
    char last_request[2048];
    pthread_mutex_t mu;
};

static void respond(int c, const char *status, const char *ctype, const char *body)
{
    char head[512];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: "
                     "%zu\r\nConnection: close\r\n\r\n", status, ctype, strlen(body));
    /* MSG_NOSIGNAL: a scraper that gave up (timeout, body limit) must not SIGPIPE us */
    if (send(c, head, (size_t)n, MSG_NOSIGNAL) < 0 || send(c, body, strlen(body), MSG_NOSIGNAL) < 0)
        return;
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
    close(s->fd);
    pthread_mutex_destroy(&s->mu);
}

/* ---- helpers ---- */

static struct server_fixture fx;
static struct srv srv;
static struct config *cfg;

static struct scrape *start(const char *yaml_fmt)
{
    char yaml[4096];
    snprintf(yaml, sizeof yaml, yaml_fmt, srv.port, srv.port, srv.port, srv.port, srv.port,
             srv.port);
    struct vg_err err;
    cfg = config_load_buf("t.yml", yaml, strlen(yaml), &err);
    cr_assert_not_null(cfg, "%s", err.msg);
    fx.v.cfg = cfg;
    struct scrape *s = scrape_start(&fx.v, cfg, &err);
    cr_assert_not_null(s, "%s", err.msg);
    return s;
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
    struct vg_err err;
    cfg = config_load_buf("t.yml", yaml, strlen(yaml), &err);
    cr_assert_not_null(cfg, "%s", err.msg);
    fx.v.cfg = cfg;
    struct scrape *s = scrape_start(&fx.v, cfg, &err);
    cr_assert_not_null(s, "%s", err.msg);
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
