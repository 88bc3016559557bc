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
 * Sockets, threads and connections are listener.h's; the receiving side here is its
 * callbacks, with a line buffer per TCP connection.
 *
 * The timer is a vg_ticker at a fixed delay: the first flush one flush_interval after
 * start, each next one flush_interval after the previous returned; statsd_free stops it,
 * then flushes once more.
 *
 * Locking: s->mu guards s->agg; s->flush_mu guards s->arena and the write. Connection
 * buffers belong to the TCP thread. */
#include "statsd.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_log.h"
#include "../../storage/base/vg_ticker.h"
#include "../config_node.h"
#include "../metrics.h"
#include "ingest.h"
#include "listener.h"
#include "statsd_agg.h"
#include "statsd_parse.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_DATAGRAM 65535
#define MAX_LINE 65536
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
    struct listener *listener; /* sockets and the receiving threads */
    struct vg_ticker flusher;  /* "statsd-flush"; zeroed until started */

    pthread_mutex_t mu;
    struct statsd_agg *agg;

    pthread_mutex_t flush_mu;
    struct vg_arena *arena;

    atomic_uint_fast64_t lines;
    struct metric_family *received, *malformed, *dropped, *series, *flushes;
    struct vg_complaint store_complaint;
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
    if (!rc && strcmp(tt, "histogram") != 0 && strcmp(tt, "summary") != 0)
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

/* ---- the listener's callbacks (listener.h); local is the server ---- */

static void on_datagram(void *local, const char *p, size_t n, bool truncated)
{
    (void)truncated; /* no UDP datagram is longer than MAX_DATAGRAM */
    handle(local, p, n, "udp");
}

/* A TCP connection: bytes of an unfinished line wait in buf. */
struct conn {
    char *buf;
    size_t len;
    bool skipping; /* inside a line over MAX_LINE: drop bytes up to the next newline */
};

static void *conn_open(void *local)
{
    (void)local;
    struct conn *c = vg_calloc(1, sizeof *c);
    if (c && !(c->buf = vg_malloc(MAX_LINE))) {
        vg_free(c);
        c = NULL;
    }
    return c;
}

/* Feeds bytes read from c: complete lines are handled, the tail is kept. The caller
 * holds s->mu. */
static void conn_feed(struct statsd_server *s, struct conn *c, const char *p, size_t n,
                      struct tally *tl)
{
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

static int on_data(void *local, void *conn, const char *p, size_t n)
{
    struct statsd_server *s = local;
    struct tally tl = { 0 };
    pthread_mutex_lock(&s->mu);
    conn_feed(s, conn, p, n, &tl);
    pthread_mutex_unlock(&s->mu);
    tally_report(s, &tl, "tcp");
    return 0;
}

static void conn_close(void *local, void *conn, enum listener_event why)
{
    (void)why;
    struct conn *c = conn;
    if (c->len && !c->skipping) /* a last line without its newline still counts */
        handle(local, c->buf, c->len, "tcp");
    vg_free(c->buf);
    vg_free(c);
}

static void on_event(void *ctx, enum listener_event e, size_t open)
{
    (void)open;
    if (e == LISTENER_REFUSED)
        metric_add(((struct statsd_server *)ctx)->dropped, 1, "refused_connection");
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

static void flush_round(void *arg, const atomic_bool *stop)
{
    (void)stop; /* statsd_free flushes once more after the stop anyway */
    struct vg_err err;
    do_flush(arg, &err); /* counted and complained about there */
}

int statsd_flush(struct vigil *v, struct vg_err *err)
{
    struct statsd_server *s = v->statsd_state;
    return s ? do_flush(s, err) : 0;
}

/* ---- start and stop ---- */

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
    listener_free(s->listener); /* no line arrives after this */
    s->listener = NULL;
    if (vg_ticker_stop(&s->flusher)) {
        struct vg_err err;
        do_flush(s, &err); /* what arrived since the last interval */
    }
    statsd_agg_free(s->agg);
    vg_arena_free(s->arena);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->flush_mu);
    vg_free(s);
    v->statsd_state = NULL;
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
    struct listener_opts lo = {
        .name = "statsd", .udp_key = "statsd.udp_addr", .udp_addr = s->c.udp_addr,
        .tcp_key = "statsd.tcp_addr", .tcp_addr = s->c.tcp_addr,
        .max_datagram = MAX_DATAGRAM, .max_conns = (size_t)s->c.max_conns, .ctx = s,
        .on_datagram = on_datagram, .conn_open = conn_open, .on_data = on_data,
        .conn_close = conn_close, .on_event = on_event,
    };
    if (!(s->listener = listener_new(&lo, err)))
        return err->code;
    register_metrics(s, s->v->metrics);
    struct vg_ticker_opts to = { .name = "statsd-flush", .interval_ms = s->c.flush_ms,
                                 .first_ms = s->c.flush_ms };
    int rc = vg_ticker_start(&s->flusher, &to, flush_round, s, err);
    if (rc < 0)
        return rc;
    return listener_start(s->listener, err);
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
    *s = (struct statsd_server){ .v = v, .c = c };
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->flush_mu, NULL);
    v->statsd_state = s;
    int rc = start(s, err);
    if (rc < 0) {
        statsd_free(v); /* vigil_stop frees only modules whose init succeeded */
        return rc;
    }
    return 0;
}

uint16_t statsd_udp_port(const struct vigil *v)
{
    const struct statsd_server *s = v->statsd_state;
    return s ? listener_udp_port(s->listener) : 0;
}

uint16_t statsd_tcp_port(const struct vigil *v)
{
    const struct statsd_server *s = v->statsd_state;
    return s ? listener_tcp_port(s->listener) : 0;
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
