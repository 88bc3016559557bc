/* Tests server/ingest/statsd.c, the StatsD receiver module, in-process: a real TSDB in a
 * temporary directory, the module's check/init/free hooks, real UDP datagrams and a TCP
 * connection on loopback, flushes read back from the TSDB, malformed lines counted in
 * /metrics, the final flush at free, and config errors (unknown key, bad timer type,
 * descending buckets, unusable address) refused with a clear message. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../../../server/ingest/statsd.h"
#include "../fixture.h"

static struct server_fixture f;
static struct vg_err err;

static void load(const char *yaml)
{
    config_free(f.cfg);
    f.cfg = config_load_buf("test.yaml", yaml, strlen(yaml), &err);
    cr_assert_not_null(f.cfg, "%s", err.msg);
    f.v.cfg = f.cfg;
}

static void setup(void)
{
    fixture_open(&f);
    cr_assert_eq(ingest_metrics_init(&f.v, &err), 0, "%s", err.msg);
}

static void teardown(void)
{
    mod_statsd.free(&f.v);
    ingest_metrics_free(&f.v);
    fixture_close(&f);
}

TestSuite(statsd, .init = setup, .fini = teardown, .timeout = 60);

static void start(const char *yaml)
{
    load(yaml);
    cr_assert_eq(mod_statsd.check(f.cfg, &err), 0, "%s", err.msg);
    cr_assert_eq(mod_statsd.init(&f.v, &err), 0, "%s", err.msg);
}

static struct sockaddr_in addr_of(uint16_t port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static void send_udp(const char *msg)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = addr_of(statsd_udp_port(&f.v));
    size_t n = strlen(msg);
    cr_assert_eq(sendto(fd, msg, n, 0, (struct sockaddr *)&a, sizeof a), (ssize_t)n);
    close(fd);
}

/* Waits (at most 5 s) until the receiver has read `lines` lines in all. */
static void wait_lines(uint64_t lines)
{
    for (int i = 0; i < 500 && statsd_lines_received(&f.v) < lines; i++)
        nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
    cr_assert_eq(statsd_lines_received(&f.v), lines);
}

static void flush(void)
{
    cr_assert_eq(statsd_flush(&f.v, &err), 0, "%s", err.msg);
}

/* The newest stored value of the one series matching name and optional label k=v. */
static double stored(const char *name, const char *k, const char *val)
{
    struct matcher *ms[2];
    size_t nm = 0;
    ms[nm++] = matcher_new(MATCH_EQ, VG_STR("__name__"), vg_str_c(name), &err);
    if (k)
        ms[nm++] = matcher_new(MATCH_EQ, vg_str_c(k), vg_str_c(val), &err);
    struct tsdb_series_set *set;
    cr_assert_eq(tsdb_select(f.v.tsdb, ms, nm, INT64_MIN, INT64_MAX, &set, &err), 0, "%s",
                 err.msg);
    for (size_t i = 0; i < nm; i++)
        matcher_free(ms[i]);
    cr_assert_eq(set->n, 1, "%s{%s=%s}: %zu series", name, k ? k : "", val ? val : "", set->n);
    struct tsdb_sample *s;
    size_t n;
    cr_assert_eq(tsdb_read(f.v.tsdb, set->v[0].id, INT64_MIN, INT64_MAX, &s, &n, &err), 0);
    cr_assert_gt(n, 0);
    double v = s[n - 1].v;
    vg_free(s);
    tsdb_series_set_free(set);
    return v;
}

static void metrics_text(struct vg_buf *b)
{
    vg_buf_init(b);
    metrics_render(f.v.metrics, b);
    vg_buf_cstr(b);
}

Test(statsd, udp_packets_reach_the_tsdb)
{
    start("statsd:\n  udp_addr: 127.0.0.1:0\n  flush_interval: 1h\n");
    cr_assert_neq(statsd_udp_port(&f.v), 0);
    cr_assert_eq(statsd_tcp_port(&f.v), 0);
    send_udp("shop.orders:1|c|#region:eu\nshop.orders:2|c|@0.5|#region:eu\n"
             "queue.depth:12|g\nqueue.depth:-2|g\n");
    send_udp("checkout.time:250|ms\ncheckout.time:1500|ms\nvisitors:u1|s\nvisitors:u2|s");
    send_udp("this is not statsd\nx:1|zz\n");
    wait_lines(10);
    flush();
    cr_assert_float_eq(stored("shop_orders_total", "region", "eu"), 5, 1e-9);
    cr_assert_float_eq(stored("queue_depth", NULL, NULL), 10, 1e-9);
    cr_assert_float_eq(stored("checkout_time_count", NULL, NULL), 2, 1e-9);
    cr_assert_float_eq(stored("checkout_time_sum", NULL, NULL), 1.75, 1e-9);
    cr_assert_float_eq(stored("checkout_time_bucket", "le", "0.25"), 1, 1e-9);
    cr_assert_float_eq(stored("checkout_time_bucket", "le", "+Inf"), 2, 1e-9);
    cr_assert_float_eq(stored("visitors", NULL, NULL), 2, 1e-9);
    enum tsdb_metric_type type;
    char help[128], unit[16];
    cr_assert(tsdb_metadata_get(f.v.tsdb, "checkout_time", &type, help, sizeof help, unit,
                                sizeof unit));
    cr_assert_eq(type, TSDB_TYPE_HISTOGRAM);

    struct vg_buf b;
    metrics_text(&b);
    cr_assert(strstr(b.p, "vigil_statsd_malformed_total{reason=\"malformed_line\"} 1"), "%s",
              b.p);
    cr_assert(strstr(b.p, "vigil_statsd_malformed_total{reason=\"unknown_type\"} 1"));
    cr_assert(strstr(b.p, "vigil_statsd_lines_received_total{transport=\"udp\"} 10"));
    cr_assert(strstr(b.p, "vigil_statsd_series 4"), "%s", b.p);
    vg_buf_free(&b);

    /* a second interval: counters go on, the set starts again */
    send_udp("shop.orders:1|c|#region:eu");
    wait_lines(11);
    /* a flush in the same millisecond as the first would write a sample with the same
     * timestamp and another value, which the TSDB refuses as a conflicting duplicate */
    usleep(2000);
    flush();
    cr_assert_float_eq(stored("shop_orders_total", "region", "eu"), 6, 1e-9);
    cr_assert_float_eq(stored("visitors", NULL, NULL), 0, 1e-9);
}

Test(statsd, tcp_lines_and_summaries)
{
    start("statsd:\n  udp_addr: \"\"\n  tcp_addr: 127.0.0.1:0\n  flush_interval: 1h\n"
          "  timer_type: summary\n  quantiles: [0.5, 0.9]\n");
    cr_assert_eq(statsd_udp_port(&f.v), 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = addr_of(statsd_tcp_port(&f.v));
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char buf[64];
    for (int i = 1; i <= 100; i++) {
        int n = snprintf(buf, sizeof buf, "api.latency:%d|ms\n", i * 10);
        cr_assert_eq(send(fd, buf, (size_t)n, MSG_NOSIGNAL), n);
    }
    /* a line split over two writes, and a last one without its newline */
    cr_assert_eq(send(fd, "jobs:", 5, MSG_NOSIGNAL), 5);
    wait_lines(100);
    cr_assert_eq(send(fd, "3|c\njobs:4|c", 12, MSG_NOSIGNAL), 12);
    wait_lines(101);
    close(fd);
    wait_lines(102);
    flush();
    double med = stored("api_latency", "quantile", "0.5");
    cr_assert(fabs(med - 0.5) < 0.02, "median of 10..1000 ms: %g s", med);
    double p90 = stored("api_latency", "quantile", "0.9");
    cr_assert(fabs(p90 - 0.9) < 0.02, "p90: %g s", p90);
    cr_assert_float_eq(stored("api_latency_count", NULL, NULL), 100, 1e-9);
    cr_assert_float_eq(stored("jobs_total", NULL, NULL), 7, 1e-9);
}

Test(statsd, long_tcp_line_is_skipped)
{
    start("statsd:\n  udp_addr: \"\"\n  tcp_addr: 127.0.0.1:0\n  flush_interval: 1h\n");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = addr_of(statsd_tcp_port(&f.v));
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    static char big[70000];
    memset(big, 'a', sizeof big);
    cr_assert_eq(send(fd, big, sizeof big, MSG_NOSIGNAL), (ssize_t)sizeof big);
    cr_assert_eq(send(fd, "\nok:1|c\n", 8, MSG_NOSIGNAL), 8);
    wait_lines(2);
    close(fd);
    flush();
    cr_assert_float_eq(stored("ok_total", NULL, NULL), 1, 1e-9);
    struct vg_buf b;
    metrics_text(&b);
    cr_assert(strstr(b.p, "vigil_statsd_malformed_total{reason=\"line_too_long\"} 1"), "%s", b.p);
    vg_buf_free(&b);
}

Test(statsd, free_flushes_and_timer_flushes)
{
    start("statsd:\n  udp_addr: 127.0.0.1:0\n  flush_interval: 100ms\n");
    send_udp("tick:1|c");
    wait_lines(1);
    for (int i = 0; i < 300; i++) { /* the interval flush writes it by itself */
        struct tsdb_stats st;
        tsdb_stats(f.v.tsdb, &st);
        if (st.samples_appended > 0)
            break;
        nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
    }
    cr_assert_float_eq(stored("tick_total", NULL, NULL), 1, 1e-9);
    send_udp("late:1|g");
    wait_lines(2);
    mod_statsd.free(&f.v); /* stops and writes what is left */
    cr_assert_float_eq(stored("late", NULL, NULL), 1, 1e-9);
    cr_assert_null(f.v.statsd_state);
    cr_assert_eq(statsd_flush(&f.v, &err), 0, "no state: nothing to do");
}

Test(statsd, free_does_not_wait_for_the_interval)
{
    start("statsd:\n  udp_addr: 127.0.0.1:0\n  flush_interval: 1h\n");
    send_udp("last:7|g");
    wait_lines(1);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    mod_statsd.free(&f.v); /* wakes the sleeping flusher, then flushes once more */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    cr_assert_lt(took, 1.0, "free took %.3f s", took);
    cr_assert_float_eq(stored("last", NULL, NULL), 7, 1e-9);
}

Test(statsd, off_without_section)
{
    cr_assert_eq(mod_statsd.check(f.cfg, &err), 0);
    cr_assert_eq(mod_statsd.init(&f.v, &err), 0);
    cr_assert_null(f.v.statsd_state);
    cr_assert_eq(statsd_udp_port(&f.v), 0);
}

Test(statsd, config_errors)
{
    static const struct { const char *yaml, *msg; } cases[] = {
        { "statsd:\n  udp_adr: x\n", "unknown key" },
        { "statsd:\n  timer_type: gauge\n", "not histogram or summary" },
        { "statsd:\n  buckets: [1, 0.5]\n", "ascending" },
        { "statsd:\n  buckets: [1, abc]\n", "not a number" },
        { "statsd:\n  quantiles: [0.5, 1]\n", "between 0 and 1" },
        { "statsd:\n  max_series: 0\n", "max_series" },
        { "statsd:\n  flush_interval: 10ms\n", "flush_interval" },
        { "statsd:\n  udp_addr: \"\"\n", "both empty" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        load(cases[i].yaml);
        cr_assert_eq(mod_statsd.check(f.cfg, &err), VG_EINVAL, "%s", cases[i].yaml);
        cr_assert(strstr(err.msg, cases[i].msg), "%s: %s", cases[i].yaml, err.msg);
        cr_assert(strstr(err.msg, "test.yaml:"), "names the file: %s", err.msg);
    }
    load("statsd:\n  udp_addr: 127.0.0.1:99999\n");
    cr_assert_neq(mod_statsd.init(&f.v, &err), 0);
    cr_assert(strstr(err.msg, "statsd.udp_addr"), "%s", err.msg);
    cr_assert_null(f.v.statsd_state, "nothing left running");
}
