/* statsd: see statsd.h for the config, metrics and behaviour.
 *
 * Data flow: a receiving thread splits a datagram (or a TCP connection's bytes) into
 * lines, parses each into a statsd_line on its stack, and folds the good ones into the
 * aggregator under s->mu, one lock per datagram / read. The flusher takes s->mu only
 * to turn the aggregates into a batch in its own arena (statsd_agg_flush copies
 * everything it needs), then writes the batch with ingest_store outside the lock, so a
 * slow synchronous TSDB write never stalls the sockets. s->flush_mu serialises flushes
 * (the timer's and statsd_flush's).
 *
 * Locking: s->mu guards s->agg; s->flush_mu guards s->arena and the write; s->cv (with
 * s->mu) wakes the flusher to stop. Sockets and connection buffers belong to their
 * thread alone. */
#include "statsd.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_log.h"
#include "../config_node.h"
#include "../metrics.h"
#include "../netaddr.h"
#include "ingest.h"
#include "statsd_agg.h"
#include "statsd_parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_DATAGRAM 65535
#define MAX_LINE 65536
#define UDP_DRAIN 64
#define COMPLAIN_MS 60000

static const double default_buckets[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                          0.5, 1, 2.5, 5, 10 };
static const double default_quantiles[] = { 0.5, 0.9, 0.99 };

/* The section as parsed by parse_config. */
struct statsd_config {
    const char *udp_addr, *tcp_addr;
    int64_t flush_ms;
    enum statsd_timer_type timer_type;
    double buckets[64], quantiles[16];
    size_t nbuckets, nquantiles;
    int64_t max_series, max_set_members, max_conns;
};

struct statsd_server {
    struct vigil *v;
    struct statsd_config c;
    int udp_fd, tcp_fd;
    uint16_t udp_port, tcp_port;
    int stop_pipe[2];
    pthread_t udp_thr, tcp_thr, flush_thr;
    bool udp_started, tcp_started, flush_started;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    struct statsd_agg *agg;

    pthread_mutex_t flush_mu;
    struct vg_arena *arena;

    atomic_uint_fast64_t lines;
    struct metric_family *received, *malformed, *dropped, *series, *flushes;
    struct vg_complaint socket_complaint, store_complaint;
};

/* ---- config ---- */

static int number_list(const struct config_node *sec, const char *key, double *out,
                       size_t cap, size_t *n, bool quantile, struct vg_err *err)
{
    const struct config_node *node = config_node_get(sec, key);
    const char **items;
    size_t ni;
    if (!node)
        return 0;
    if (config_node_strlist(sec, "statsd", key, &items, &ni, err) < 0)
        return err->code;
    int rc = 0;
    if (ni == 0 || ni > cap)
        rc = config_node_err(err, node, "statsd.%s: expected 1 to %zu numbers", key, cap);
    for (size_t i = 0; !rc && i < ni; i++) {
        char *end;
        out[i] = strtod(items[i], &end);
        if (end == items[i] || *end || !(out[i] == out[i]) || out[i] > 1e300 || out[i] < -1e300)
            rc = config_node_err(err, node, "statsd.%s: \"%s\" is not a number", key, items[i]);
        else if (quantile && !(out[i] > 0 && out[i] < 1))
            rc = config_node_err(err, node, "statsd.%s: %s is not between 0 and 1", key,
                                 items[i]);
        else if (i && out[i] <= out[i - 1])
            rc = config_node_err(err, node, "statsd.%s: values must be strictly ascending", key);
    }
    vg_free(items);
    if (!rc)
        *n = ni;
    return rc;
}

/* Reads the statsd section (NULL: the module is off, *on false). */
static int parse_config(const struct config *cfg, struct statsd_config *c, bool *on,
                        struct vg_err *err)
{
    static const char *const keys[] = { "udp_addr", "tcp_addr", "flush_interval",
                                        "timer_type", "buckets", "quantiles", "max_series",
                                        "max_set_members", "max_connections", NULL };
    const struct config_node *sec = config_block(cfg, "statsd");
    *on = sec != NULL;
    *c = (struct statsd_config){ .udp_addr = ":8125", .tcp_addr = "", .flush_ms = 10000,
                                 .timer_type = STATSD_TIMER_HISTOGRAM, .max_series = 100000,
                                 .max_set_members = 10000, .max_conns = 256 };
    memcpy(c->buckets, default_buckets, sizeof default_buckets);
    c->nbuckets = sizeof default_buckets / sizeof default_buckets[0];
    memcpy(c->quantiles, default_quantiles, sizeof default_quantiles);
    c->nquantiles = sizeof default_quantiles / sizeof default_quantiles[0];
    if (!sec || (sec->type == CONFIG_NODE_SCALAR && !sec->value[0]))
        return 0; /* "statsd:" with nothing under it: on, with the defaults */
    const char *tt = "histogram";
    int rc = config_node_check_keys(sec, "statsd", keys, err);
    if (!rc)
        rc = config_node_str(sec, "statsd", "udp_addr", &c->udp_addr, err);
    if (!rc)
        rc = config_node_str(sec, "statsd", "tcp_addr", &c->tcp_addr, err);
    if (!rc)
        rc = config_node_duration(sec, "statsd", "flush_interval", 100, &c->flush_ms, err);
    if (!rc)
        rc = config_node_str(sec, "statsd", "timer_type", &tt, err);
    if (!rc && strcmp(tt, "histogram") && strcmp(tt, "summary"))
        rc = config_node_err(err, config_node_get(sec, "timer_type"),
                             "statsd.timer_type: \"%s\" is not histogram or summary", tt);
    c->timer_type = !strcmp(tt, "summary") ? STATSD_TIMER_SUMMARY : STATSD_TIMER_HISTOGRAM;
    if (!rc)
        rc = number_list(sec, "buckets", c->buckets, 64, &c->nbuckets, false, err);
    if (!rc)
        rc = number_list(sec, "quantiles", c->quantiles, 16, &c->nquantiles, true, err);
    if (!rc)
        rc = config_node_int(sec, "statsd", "max_series", 1, 100000000, &c->max_series, err);
    if (!rc)
        rc = config_node_int(sec, "statsd", "max_set_members", 1, 10000000,
                             &c->max_set_members, err);
    if (!rc)
        rc = config_node_int(sec, "statsd", "max_connections", 1, 65536, &c->max_conns, err);
    if (!rc && !c->udp_addr[0] && !c->tcp_addr[0])
        rc = config_node_err(err, sec, "statsd: udp_addr and tcp_addr are both empty");
    return rc;
}

static int statsd_check(const struct config *cfg, struct vg_err *err)
{
    struct statsd_config c;
    bool on;
    return parse_config(cfg, &c, &on, err);
}

/* ---- receiving ---- */

/* What one packet or read produced, counted once after the lock is released. */
struct tally {
    uint64_t lines;
    uint64_t malformed[STATSD_ERR_COUNT];
    uint64_t dropped[STATSD_DROP_COUNT];
    uint64_t too_long;
};

static void tally_report(struct statsd_server *s, const struct tally *t, const char *transport)
{
    if (t->lines) {
        metric_add(s->received, (double)t->lines, transport);
        atomic_fetch_add(&s->lines, t->lines);
    }
    for (int e = 1; e < STATSD_ERR_COUNT; e++)
        if (t->malformed[e])
            metric_add(s->malformed, (double)t->malformed[e], statsd_error_name(e));
    if (t->too_long)
        metric_add(s->malformed, (double)t->too_long, "line_too_long");
    for (int d = 0; d < STATSD_DROP_COUNT; d++)
        if (t->dropped[d])
            metric_add(s->dropped, (double)t->dropped[d], statsd_drop_name(d));
}

/* Parses and folds every line of buf[0..n). The caller holds s->mu. */
static void handle_locked(struct statsd_server *s, const char *buf, size_t n, struct tally *t)
{
    size_t pos = 0;
    struct vg_str line;
    struct statsd_line l;
    while (statsd_next_line(buf, n, &pos, &line)) {
        t->lines++;
        enum statsd_error e = statsd_parse_line(line.p, line.len, &l);
        if (e != STATSD_OK) {
            t->malformed[e]++;
            continue;
        }
        enum statsd_drop why;
        if (statsd_agg_add(s->agg, &l, &why) < 0)
            t->dropped[why]++;
    }
}

static void handle(struct statsd_server *s, const char *buf, size_t n, const char *transport)
{
    struct tally t = { 0 };
    pthread_mutex_lock(&s->mu);
    handle_locked(s, buf, n, &t);
    pthread_mutex_unlock(&s->mu);
    tally_report(s, &t, transport);
}

static void *udp_main(void *arg)
{
    struct statsd_server *s = arg;
    pthread_setname_np(pthread_self(), "statsd-udp");
    char *buf = vg_malloc(MAX_DATAGRAM + 1);
    if (!buf) {
        vg_log(VG_LOG_ERROR, "statsd", "out of memory: UDP listener stopped", NULL);
        return NULL;
    }
    struct pollfd pf[2] = { { .fd = s->udp_fd, .events = POLLIN },
                            { .fd = s->stop_pipe[0], .events = POLLIN } };
    for (;;) {
        if (poll(pf, 2, -1) < 0 && errno != EINTR)
            break;
        if (pf[1].revents)
            break;
        for (int k = 0; k < UDP_DRAIN; k++) {
            ssize_t n = recv(s->udp_fd, buf, MAX_DATAGRAM, MSG_DONTWAIT);
            if (n < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                    vg_complain(&s->socket_complaint, COMPLAIN_MS, VG_LOG_WARN, "statsd",
                                "UDP receive failed", strerror(errno));
                break;
            }
            handle(s, buf, (size_t)n, "udp");
        }
    }
    vg_free(buf);
    return NULL;
}

/* A TCP connection: bytes of an unfinished line wait in buf. */
struct conn {
    int fd;
    size_t slot;
    char *buf;
    size_t len;
    bool skipping; /* inside a line over MAX_LINE: drop bytes up to the next newline */
};

struct tcp_state {
    struct statsd_server *s;
    int ep;
    struct conn **conns;
    size_t nconns;
    char *rbuf;
};

/* Feeds bytes read from c: complete lines are handled, the tail is kept. */
static void conn_feed(struct tcp_state *t, struct conn *c, const char *p, size_t n,
                      struct tally *tl)
{
    struct statsd_server *s = t->s;
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (c->skipping) {
            if (nl)
                c->skipping = false;
        } else if (c->len + take > MAX_LINE) {
            tl->too_long++;
            tl->lines++;
            c->len = 0;
            c->skipping = !nl;
        } else if (nl && c->len == 0) {
            handle_locked(s, p, take, tl); /* the common case: no copy */
        } else {
            memcpy(c->buf + c->len, p, take);
            c->len += take;
            if (nl) {
                handle_locked(s, c->buf, c->len, tl);
                c->len = 0;
            }
        }
        size_t used = take + (nl != NULL);
        p += used;
        n -= used;
    }
}

static void conn_close(struct tcp_state *t, struct conn *c)
{
    if (c->len && !c->skipping) /* a last line without its newline still counts */
        handle(t->s, c->buf, c->len, "tcp");
    epoll_ctl(t->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    vg_free(c->buf);
    t->conns[c->slot] = t->conns[--t->nconns];
    t->conns[c->slot]->slot = c->slot;
    vg_free(c);
}

static void tcp_accept(struct tcp_state *t)
{
    struct statsd_server *s = t->s;
    for (;;) {
        int fd = accept4(s->tcp_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return;
        }
        struct conn *c = t->nconns < (size_t)s->c.max_conns ? vg_calloc(1, sizeof *c) : NULL;
        if (c && !(c->buf = vg_malloc(MAX_LINE))) {
            vg_free(c);
            c = NULL;
        }
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (!c || epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            metric_add(s->dropped, 1, "refused_connection");
            close(fd);
            if (c)
                vg_free(c->buf);
            vg_free(c);
            continue;
        }
        c->fd = fd;
        c->slot = t->nconns;
        t->conns[t->nconns++] = c;
    }
}

static void tcp_read(struct tcp_state *t, struct conn *c)
{
    for (int k = 0; k < 16; k++) {
        ssize_t n = read(c->fd, t->rbuf, MAX_LINE);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            conn_close(t, c);
            return;
        }
        struct tally tl = { 0 };
        pthread_mutex_lock(&t->s->mu);
        conn_feed(t, c, t->rbuf, (size_t)n, &tl);
        pthread_mutex_unlock(&t->s->mu);
        tally_report(t->s, &tl, "tcp");
    }
}

static void *tcp_main(void *arg)
{
    struct statsd_server *s = arg;
    pthread_setname_np(pthread_self(), "statsd-tcp");
    struct tcp_state t = { .s = s, .ep = epoll_create1(EPOLL_CLOEXEC) };
    t.conns = vg_calloc((size_t)s->c.max_conns, sizeof *t.conns);
    t.rbuf = vg_malloc(MAX_LINE);
    static char listen_tag, stop_tag;
    struct epoll_event le = { .events = EPOLLIN, .data.ptr = &listen_tag };
    struct epoll_event se = { .events = EPOLLIN, .data.ptr = &stop_tag };
    if (t.ep < 0 || !t.conns || !t.rbuf || epoll_ctl(t.ep, EPOLL_CTL_ADD, s->tcp_fd, &le) < 0 ||
        epoll_ctl(t.ep, EPOLL_CTL_ADD, s->stop_pipe[0], &se) < 0) {
        vg_log(VG_LOG_ERROR, "statsd", "cannot run the TCP listener", "error", strerror(errno),
               NULL);
        goto out;
    }
    for (bool stop = false; !stop;) {
        struct epoll_event evs[64];
        int n = epoll_wait(t.ep, evs, 64, -1);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n && !stop; i++) {
            if (evs[i].data.ptr == &stop_tag)
                stop = true;
            else if (evs[i].data.ptr == &listen_tag)
                tcp_accept(&t);
            else
                tcp_read(&t, evs[i].data.ptr);
        }
    }
    while (t.nconns)
        conn_close(&t, t.conns[t.nconns - 1]);
out:
    if (t.ep >= 0)
        close(t.ep);
    vg_free(t.conns);
    vg_free(t.rbuf);
    return NULL;
}

/* ---- flushing ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int do_flush(struct statsd_server *s, struct vg_err *err)
{
    pthread_mutex_lock(&s->flush_mu);
    vg_arena_reset(s->arena);
    struct tsdb_batch b;
    pthread_mutex_lock(&s->mu);
    int rc = statsd_agg_flush(s->agg, now_ms(), s->arena, &b);
    size_t nseries = statsd_agg_series(s->agg);
    pthread_mutex_unlock(&s->mu);
    metric_set(s->series, (double)nseries);
    if (rc < 0) {
        vg_err_set(err, rc, "statsd: out of memory building the flush");
    } else if (b.nseries) {
        struct tsdb_append_result res;
        memset(&res, 0, sizeof res);
        rc = ingest_store(s->v, "statsd", &b, &res, err);
    }
    pthread_mutex_unlock(&s->flush_mu);
    metric_add(s->flushes, 1, rc < 0 ? "error" : "ok");
    if (rc < 0)
        vg_complain(&s->store_complaint, COMPLAIN_MS, VG_LOG_WARN, "statsd", "flush failed",
                    err->msg);
    return rc;
}

static void *flush_main(void *arg)
{
    struct statsd_server *s = arg;
    pthread_setname_np(pthread_self(), "statsd-flush");
    pthread_mutex_lock(&s->mu);
    while (!s->stopping) {
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += s->c.flush_ms / 1000;
        dl.tv_nsec += (s->c.flush_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        while (!s->stopping && pthread_cond_timedwait(&s->cv, &s->mu, &dl) != ETIMEDOUT)
            ;
        if (s->stopping)
            break;
        pthread_mutex_unlock(&s->mu);
        struct vg_err err;
        do_flush(s, &err);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int statsd_flush(struct vigil *v, struct vg_err *err)
{
    struct statsd_server *s = v->statsd_state;
    return s ? do_flush(s, err) : 0;
}

/* ---- start and stop ---- */

static int bind_addr(const char *key, const char *addr, int type, uint16_t *port,
                     struct vg_err *err)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (netaddr_parse(addr, type, &ss, &sl, err) < 0)
        return vg_err_prefix(err, "%s", key);
    int fd = socket(ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1, rcvbuf = 4 << 20; /* bursts wait here while the lock is held; best effort */
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, type == SOCK_STREAM ? SO_REUSEADDR : SO_RCVBUF,
                   type == SOCK_STREAM ? &one : &rcvbuf, sizeof(int));
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) < 0 ||
        (type == SOCK_STREAM && listen(fd, 128) < 0)) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return vg_err_set(err, VG_EIO, "%s: cannot listen on \"%s\": %s", key, addr, strerror(e));
    }
    struct sockaddr_storage got;
    socklen_t gl = sizeof got;
    *port = 0;
    if (getsockname(fd, (struct sockaddr *)&got, &gl) == 0)
        *port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                                : ((struct sockaddr_in *)&got)->sin_port);
    return fd;
}

static void register_metrics(struct statsd_server *s, struct metrics *mx)
{
    static const char *const transport[] = { "transport" };
    static const char *const reason[] = { "reason" };
    static const char *const result[] = { "result" };
    s->received = metrics_family(mx, "vigil_statsd_lines_received_total",
                                 "StatsD lines read, by transport.", METRIC_COUNTER, transport,
                                 1, NULL, 0);
    s->malformed = metrics_family(mx, "vigil_statsd_malformed_total",
                                  "StatsD lines skipped because they did not parse, by reason.",
                                  METRIC_COUNTER, reason, 1, NULL, 0);
    s->dropped = metrics_family(mx, "vigil_statsd_dropped_total",
                                "StatsD lines (or TCP connections) dropped by a limit, by reason.",
                                METRIC_COUNTER, reason, 1, NULL, 0);
    s->series = metrics_family(mx, "vigil_statsd_series", "StatsD series kept in memory.",
                               METRIC_GAUGE, NULL, 0, NULL, 0);
    s->flushes = metrics_family(mx, "vigil_statsd_flushes_total",
                                "StatsD flushes to the TSDB, by result.", METRIC_COUNTER, result,
                                1, NULL, 0);
}

static void statsd_free(struct vigil *v)
{
    struct statsd_server *s = v->statsd_state;
    if (!s)
        return;
    if (s->stop_pipe[1] >= 0) {
        close(s->stop_pipe[1]); /* the read end turns readable (EOF) for every poller */
        s->stop_pipe[1] = -1;
    }
    if (s->udp_started)
        pthread_join(s->udp_thr, NULL);
    if (s->tcp_started)
        pthread_join(s->tcp_thr, NULL);
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->flush_started) {
        pthread_join(s->flush_thr, NULL);
        struct vg_err err;
        do_flush(s, &err); /* what arrived since the last interval */
    }
    statsd_agg_free(s->agg);
    vg_arena_free(s->arena);
    for (int i = 0; i < 2; i++)
        if (s->stop_pipe[i] >= 0)
            close(s->stop_pipe[i]);
    if (s->udp_fd >= 0)
        close(s->udp_fd);
    if (s->tcp_fd >= 0)
        close(s->tcp_fd);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->flush_mu);
    vg_free(s);
    v->statsd_state = NULL;
}

static int start_thread(pthread_t *t, bool *started, void *(*fn)(void *), void *arg,
                        struct vg_err *err)
{
    if (pthread_create(t, NULL, fn, arg) != 0)
        return vg_err_set(err, VG_ENOMEM, "cannot start a statsd thread");
    *started = true;
    return 0;
}

static int start(struct statsd_server *s, struct vg_err *err)
{
    struct statsd_agg_opts o = {
        .timer_type = s->c.timer_type, .buckets = s->c.buckets, .nbuckets = s->c.nbuckets,
        .quantiles = s->c.quantiles, .nquantiles = s->c.nquantiles,
        .max_series = (size_t)s->c.max_series, .max_set_members = (size_t)s->c.max_set_members,
        .limits = &s->v->cfg->limits,
    };
    if (!(s->agg = statsd_agg_new(&o)) || !(s->arena = vg_arena_new(1 << 16)))
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    if (pipe2(s->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return vg_err_set(err, VG_EIO, "statsd: pipe: %s", strerror(errno));
    if (s->c.udp_addr[0] &&
        (s->udp_fd = bind_addr("statsd.udp_addr", s->c.udp_addr, SOCK_DGRAM, &s->udp_port,
                               err)) < 0)
        return s->udp_fd;
    if (s->c.tcp_addr[0] &&
        (s->tcp_fd = bind_addr("statsd.tcp_addr", s->c.tcp_addr, SOCK_STREAM, &s->tcp_port,
                               err)) < 0)
        return s->tcp_fd;
    register_metrics(s, s->v->metrics);
    if (start_thread(&s->flush_thr, &s->flush_started, flush_main, s, err) < 0 ||
        (s->udp_fd >= 0 && start_thread(&s->udp_thr, &s->udp_started, udp_main, s, err) < 0) ||
        (s->tcp_fd >= 0 && start_thread(&s->tcp_thr, &s->tcp_started, tcp_main, s, err) < 0))
        return err->code;
    return 0;
}

static int statsd_init(struct vigil *v, struct vg_err *err)
{
    v->statsd_state = NULL;
    struct statsd_config c;
    bool on;
    if (parse_config(v->cfg, &c, &on, err) < 0)
        return err->code;
    if (!on)
        return 0;
    struct statsd_server *s = vg_calloc(1, sizeof *s);
    if (!s)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    *s = (struct statsd_server){ .v = v, .c = c, .udp_fd = -1, .tcp_fd = -1,
                                 .stop_pipe = { -1, -1 } };
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->flush_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    v->statsd_state = s;
    int rc = start(s, err);
    if (rc < 0) {
        statsd_free(v); /* vigil_stop frees only modules whose init succeeded */
        return rc;
    }
    char up[8], tp[8];
    snprintf(up, sizeof up, "%u", s->udp_port);
    snprintf(tp, sizeof tp, "%u", s->tcp_port);
    vg_log(VG_LOG_INFO, "statsd", "listening", "udp_addr", c.udp_addr, "udp_port", up,
           "tcp_addr", c.tcp_addr, "tcp_port", tp, NULL);
    return 0;
}

uint16_t statsd_udp_port(const struct vigil *v)
{
    const struct statsd_server *s = v->statsd_state;
    return s ? s->udp_port : 0;
}

uint16_t statsd_tcp_port(const struct vigil *v)
{
    const struct statsd_server *s = v->statsd_state;
    return s ? s->tcp_port : 0;
}

uint64_t statsd_lines_received(const struct vigil *v)
{
    struct statsd_server *s = v->statsd_state;
    return s ? atomic_load(&s->lines) : 0;
}

const struct vigil_module mod_statsd = {
    .name = "statsd",
    .check = statsd_check,
    .init = statsd_init,
    .free = statsd_free,
};
