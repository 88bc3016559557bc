/* Tests server/ingest/syslog.c, the syslog receiver module, in-process: a real log store
 * in a temporary directory, the module's init/free hooks, and messages sent over
 * loopback UDP and TCP sockets. Checks the documented label rule (labels, metadata,
 * level, structured data names), the syslog.labels choice, raw storage of garbage,
 * future timestamps, oversized datagrams, the connection limit, the idle timeout, a
 * flush on free, the global log_processors applied to syslog messages (they are stored
 * through ingest_store_logs), and init failures (unknown label field, bad address)
 * that leave nothing running. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../../../server/config.h"
#include "../../../../server/ingest/ingest.h"
#include "../../../../server/ingest/syslog.h"
#include "../../../../server/metrics.h"
#include "../../../../server/vigil.h"
#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/logstore/logstore.h"

static char dir[64];
static struct config *cfg;
static struct vigil v;
static struct vg_err err;

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/vigil-syslog-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cfg = config_default();
    cr_assert_not_null(cfg);
    cr_assert_eq(config_set(cfg, "syslog.udp_addr", "127.0.0.1:0", &err), 0, "%s", err.msg);
    cr_assert_eq(config_set(cfg, "syslog.tcp_addr", "127.0.0.1:0", &err), 0, "%s", err.msg);
    cr_assert_eq(config_set(cfg, "syslog.flush_interval", "50ms", &err), 0, "%s", err.msg);
    memset(&v, 0, sizeof v);
    v.cfg = cfg;
    v.metrics = metrics_new();
    struct logstore_opts o;
    logstore_opts_default(&o);
    o.dir = dir;
    o.maint_interval_ms = 0;
    v.logs = logstore_open(&o, &err);
    cr_assert_not_null(v.logs, "%s", err.msg);
    /* the receiver stores through ingest_store_logs, which counts and runs the global
     * log_processors */
    cr_assert_eq(ingest_metrics_init(&v, &err), 0, "%s", err.msg);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void teardown(void)
{
    mod_syslog.free(&v);
    ingest_metrics_free(&v);
    logstore_close(v.logs);
    metrics_free(v.metrics);
    config_free(cfg);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(syslog, .init = setup, .fini = teardown, .timeout = 60);

static void start(void)
{
    cr_assert_eq(mod_syslog.init(&v, &err), 0, "%s", err.msg);
    cr_assert_neq(syslog_udp_port(&v), 0);
    cr_assert_neq(syslog_tcp_port(&v), 0);
}

static struct sockaddr_in addr_of(uint16_t port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static void send_udp(const char *msg, size_t n)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = addr_of(syslog_udp_port(&v));
    cr_assert_eq(sendto(fd, msg, n, 0, (struct sockaddr *)&a, sizeof a), (ssize_t)n);
    close(fd);
}

static int tcp_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = addr_of(syslog_tcp_port(&v));
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void send_all(int fd, const char *s)
{
    size_t n = strlen(s);
    cr_assert_eq(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* A copy of one stored entry. */
struct got {
    int64_t t;
    char labels[512];
    char meta[512];
    char line[1024];
};

static void pairs(char *out, size_t cap, const struct label *ls, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, "%s%.*s=%.*s", i ? "," : "",
                                 (int)ls[i].name.len, ls[i].name.p, (int)ls[i].value.len,
                                 ls[i].value.p);
}

/* Every entry with job="syslog", time order. */
static size_t stored(struct got *out, size_t cap)
{
    struct vg_err e;
    struct matcher *m = matcher_new(MATCH_EQ, VG_STR("job"), VG_STR("syslog"), &e);
    struct logstore_query q = { .matchers = &m, .nmatchers = 1, .start = INT64_MIN,
                                .end = INT64_MAX };
    struct logstore_iter *it = logstore_query(v.logs, &q, &e);
    cr_assert_not_null(it, "%s", e.msg);
    struct logstore_entry en;
    size_t n = 0;
    while (logstore_iter_next(it, &en, &e) == 1) {
        if (n < cap) {
            out[n].t = en.t;
            pairs(out[n].labels, sizeof out[n].labels, en.labels, en.nlabels);
            pairs(out[n].meta, sizeof out[n].meta, en.meta, en.nmeta);
            snprintf(out[n].line, sizeof out[n].line, "%.*s", (int)en.line.len, en.line.p);
        }
        n++;
    }
    logstore_iter_free(it);
    matcher_free(m);
    return n;
}

/* Flushes and reads until want entries are there (5 s at most). */
static size_t wait_stored(struct got *out, size_t cap, size_t want)
{
    size_t n = 0;
    for (int i = 0; i < 250 && n < want; i++) {
        syslog_flush(&v);
        n = stored(out, cap);
        if (n < want)
            usleep(20000);
    }
    return n;
}

static bool metrics_have(const char *needle)
{
    struct vg_buf b;
    vg_buf_init(&b);
    metrics_render(v.metrics, &b);
    bool found = b.p && strstr(b.p, needle);
    vg_buf_free(&b);
    return found;
}

static bool wait_metric(const char *needle)
{
    for (int i = 0; i < 250; i++) {
        if (metrics_have(needle))
            return true;
        usleep(20000);
    }
    return false;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

Test(syslog, off_by_default)
{
    config_free(cfg);
    cfg = config_default();
    v.cfg = cfg;
    cr_assert_eq(mod_syslog.init(&v, &err), 0);
    cr_assert_null(v.syslog_state);
    cr_assert_eq(syslog_udp_port(&v), 0);
    syslog_flush(&v); /* a no-op */
}

Test(syslog, udp_rfc5424_label_rule)
{
    start();
    const char *m = "<165>1 2025-06-15T10:00:00.5Z web01 evntslog 77 ID47 "
                    "[exampleSDID@32473 iut=\"3\" eventSource=\"App \\\"x\\\"\"] event text";
    send_udp(m, strlen(m));
    struct got g[4];
    cr_assert_eq(wait_stored(g, 4, 1), 1);
    cr_assert_str_eq(g[0].labels, "app_name=evntslog,facility=local4,hostname=web01,"
                                  "job=syslog,level=info,severity=notice");
    cr_assert_str_eq(g[0].meta, "proc_id=77,msg_id=ID47,sd_exampleSDID_32473_iut=3,"
                                "sd_exampleSDID_32473_eventSource=App \"x\"");
    cr_assert_str_eq(g[0].line, "event text");
    cr_assert_eq(g[0].t, 1749981600500000000LL);
    cr_assert(metrics_have("vigil_syslog_messages_received_total{transport=\"udp\"} 1"));
    cr_assert(metrics_have("vigil_syslog_messages_stored_total 1"));
}

Test(syslog, tcp_newline_and_octet_counting)
{
    start();
    int a = tcp_connect();
    send_all(a, "<13>Jun 15 10:00:00 h1 app1[9]: first\n<13>Jun 15 10:00:01 h1 app1[9]: sec");
    usleep(20000);
    send_all(a, "ond\r\n");
    int b = tcp_connect();
    send_all(b, "34 <14>1 - h2 app2 - - - octet framed");
    usleep(20000);
    send_all(b, "99 <14>1 - h2 app2 - - - x");
    struct got g[8];
    size_t n = wait_stored(g, 8, 3);
    cr_assert_eq(n, 3);
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(g[i].line, "first") || !strcmp(g[i].line, "second")) {
            cr_assert_str_eq(g[i].labels, "app_name=app1,facility=user,hostname=h1,job=syslog,"
                                          "level=info,severity=notice");
            cr_assert_str_eq(g[i].meta, "proc_id=9");
            seen++;
        } else {
            cr_assert_str_eq(g[i].line, "octet framed");
            cr_assert_str_eq(g[i].labels, "app_name=app2,facility=user,hostname=h2,"
                                          "job=syslog,level=info,severity=informational");
            /* no timestamp: the receive time */
            cr_assert_lt(now_ns() - g[i].t, 60 * 1000000000LL);
            seen += 10;
        }
    }
    cr_assert_eq(seen, 12);
    /* the second octet frame is incomplete until the connection closes: then dropped */
    close(b);
    cr_assert(wait_metric("vigil_syslog_messages_dropped_total{reason=\"incomplete_frame\"} 1"));
    close(a);
}

Test(syslog, labels_choice)
{
    cr_assert_eq(config_set(cfg, "syslog.labels", "hostname,proc_id", &err), 0);
    start();
    const char *m = "<11>Jun 15 10:00:00 box cron[42]: job done";
    send_udp(m, strlen(m));
    struct got g[2];
    cr_assert_eq(wait_stored(g, 2, 1), 1);
    cr_assert_str_eq(g[0].labels, "hostname=box,job=syslog,proc_id=42");
    /* level is derived from severity: not stored when not a label */
    cr_assert_str_eq(g[0].meta, "app_name=cron,facility=user,severity=error");
}

Test(syslog, unknown_label_field)
{
    cr_assert_eq(config_set(cfg, "syslog.labels", "hostname,colour", &err), 0);
    size_t live = vg_alloc_live_bytes();
    cr_assert_eq(mod_syslog.init(&v, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "colour") && strstr(err.msg, "app_name"), "%s", err.msg);
    cr_assert_null(v.syslog_state);
    cr_assert_eq(vg_alloc_live_bytes(), live);
}

Test(syslog, bad_address_leaves_nothing_running)
{
    cr_assert_eq(config_set(cfg, "syslog.tcp_addr", "127.0.0.1:notaport", &err), 0);
    size_t live = vg_alloc_live_bytes();
    cr_assert_lt(mod_syslog.init(&v, &err), 0);
    cr_assert(strstr(err.msg, "syslog.tcp_addr"), "%s", err.msg);
    cr_assert_null(v.syslog_state);
    cr_assert_eq(vg_alloc_live_bytes(), live);
    cr_assert_eq(config_set(cfg, "syslog.tcp_addr", "nocolon", &err), 0);
    cr_assert_eq(mod_syslog.init(&v, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "HOST:PORT"), "%s", err.msg);
}

Test(syslog, garbage_stored_raw_and_counted)
{
    start();
    send_udp("\x01\x02 not syslog", 14);
    send_udp("", 0);
    struct got g[2];
    cr_assert_eq(wait_stored(g, 2, 1), 1);
    cr_assert_str_eq(g[0].labels, "job=syslog");
    cr_assert_str_eq(g[0].meta, "parse_error=no_pri");
    cr_assert(wait_metric("vigil_syslog_messages_dropped_total{reason=\"empty\"} 1"));
    cr_assert(metrics_have("vigil_syslog_messages_unparsable_total{reason=\"no_pri\"} 1"));
}

Test(syslog, oversized_datagram_dropped)
{
    cr_assert_eq(config_set(cfg, "syslog.max_message_bytes", "480", &err), 0);
    start();
    char big[600];
    memset(big, 'x', sizeof big);
    memcpy(big, "<13>", 4);
    send_udp(big, sizeof big);
    send_udp(big, 480);
    struct got g[2];
    cr_assert_eq(wait_stored(g, 2, 1), 1);
    cr_assert_eq(strlen(g[0].line), 476);
    cr_assert(wait_metric("vigil_syslog_messages_dropped_total{reason=\"too_large\"} 1"));
}

Test(syslog, future_timestamp_replaced)
{
    start();
    const char *m = "<13>1 2199-01-01T00:00:00Z h a - - - from the future";
    send_udp(m, strlen(m));
    struct got g[2];
    cr_assert_eq(wait_stored(g, 2, 1), 1);
    cr_assert_lt(now_ns() - g[0].t, 60 * 1000000000LL);
    cr_assert(metrics_have("vigil_syslog_future_timestamps_total 1"));
}

static bool closed_by_peer(int fd, int ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    char c;
    return poll(&p, 1, ms) == 1 && recv(fd, &c, 1, 0) == 0;
}

Test(syslog, connection_limit)
{
    cr_assert_eq(config_set(cfg, "syslog.max_connections", "1", &err), 0);
    start();
    int a = tcp_connect();
    send_all(a, "<13>first\n");
    struct got g[2];
    cr_assert_eq(wait_stored(g, 2, 1), 1);
    int b = tcp_connect();
    cr_assert(closed_by_peer(b, 3000));
    cr_assert(wait_metric("vigil_syslog_connections_total{event=\"refused\"} 1"));
    cr_assert_not(closed_by_peer(a, 100));
    close(a);
    close(b);
}

Test(syslog, idle_timeout)
{
    cr_assert_eq(config_set(cfg, "syslog.idle_timeout", "1s", &err), 0);
    start();
    int a = tcp_connect();
    send_all(a, "<13>no newline yet");
    cr_assert(closed_by_peer(a, 5000));
    close(a);
    /* the partial newline-framed message was delivered at close */
    struct got g[2];
    cr_assert_eq(wait_stored(g, 2, 1), 1);
    cr_assert_str_eq(g[0].line, "no newline yet");
    cr_assert(wait_metric("vigil_syslog_connections_total{event=\"idle_timeout\"} 1"));
}

Test(syslog, bad_framing_closes_connection)
{
    start();
    int a = tcp_connect();
    send_all(a, "7 <13>one!! <13>two");
    cr_assert(closed_by_peer(a, 3000));
    close(a);
    struct got g[2];
    cr_assert_eq(wait_stored(g, 2, 1), 1);
    cr_assert_str_eq(g[0].line, "one");
    cr_assert(wait_metric("vigil_syslog_messages_dropped_total{reason=\"bad_framing\"} 1"));
}

Test(syslog, free_flushes_what_is_waiting)
{
    cr_assert_eq(config_set(cfg, "syslog.flush_interval", "10s", &err), 0);
    start();
    const char *m = "<13>1 - h a - - - waiting";
    send_udp(m, strlen(m));
    cr_assert(wait_metric("vigil_syslog_messages_received_total{transport=\"udp\"} 1"));
    struct got g[2];
    cr_assert_eq(stored(g, 2), 0);
    mod_syslog.free(&v);
    cr_assert_null(v.syslog_state);
    cr_assert_eq(stored(g, 2), 1);
    cr_assert_str_eq(g[0].line, "waiting");
}

Test(syslog, global_log_processors_apply)
{
    const char *yaml = "syslog:\n"
                       "  udp_addr: 127.0.0.1:0\n"
                       "  tcp_addr: 127.0.0.1:0\n"
                       "  flush_interval: 50ms\n"
                       "  use_message_timestamp: false\n" /* one stream, in arrival order */
                       "log_processors:\n"
                       "  - redact: {regex: 'pw=\\S+', replacement: 'pw=?'}\n"
                       "  - drop: {regex: 'healthz'}\n";
    config_free(cfg);
    cfg = config_load_buf("g.yml", yaml, strlen(yaml), &err);
    cr_assert_not_null(cfg, "%s", err.msg);
    v.cfg = cfg;
    ingest_metrics_free(&v);
    cr_assert_eq(ingest_metrics_init(&v, &err), 0, "%s", err.msg);
    start();
    const char *m = "<13>1 - h a - - [x@1 token=\"pw=abc\"] login pw=hunter2 ok";
    send_udp(m, strlen(m));
    int a = tcp_connect();
    send_all(a, "<13>Jun 15 10:00:00 h a: GET /healthz\n<13>Jun 15 10:00:01 h a: after\n");
    struct got g[4];
    cr_assert_eq(wait_stored(g, 4, 2), 2);
    int seen = 0;
    for (int i = 0; i < 2; i++) {
        if (strstr(g[i].line, "login")) {
            cr_assert_str_eq(g[i].line, "login pw=? ok");
            cr_assert_str_eq(g[i].meta, "sd_x_1_token=pw=?", "metadata redacted too");
            seen++;
        } else {
            cr_assert_str_eq(g[i].line, "after");
            seen += 10;
        }
    }
    cr_assert_eq(seen, 11);
    close(a);
    cr_assert(wait_metric("vigil_logproc_dropped_total{source=\"syslog\",reason=\"filter\"} 1"));
    cr_assert(metrics_have("vigil_ingest_lines_accepted_total{receiver=\"syslog\"} 2"));
    cr_assert(metrics_have("vigil_syslog_messages_stored_total 2"));
}
