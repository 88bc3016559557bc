/* derive: see derive.h. The flush thread sleeps on a condition variable so that
 * trace_derive_free wakes it at once; every flush collects all series into one TSDB
 * batch (one durable write) outside the parts' locks. */
#include "derive.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_log.h"
#include "../api/exposition.h"
#include "errors.h"
#include "servicegraph.h"
#include "spanmetrics.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct trace_derive {
    struct tsdb *tsdb;
    struct spanmetrics *sm;
    struct servicegraph *sg;
    struct errors *errors;
    int64_t flush_interval_ms;
    int64_t errors_retention_ms; /* 0 = keep error groups for ever */
    int64_t last_expire_ms;      /* flush_mu; the flush time of the last expiry */
    pthread_mutex_t mu; /* guards stop, flushes_ok, flushes_failed; cv waits on it */
    pthread_cond_t cv;
    bool stop, thread_started;
    pthread_t thread;
    pthread_mutex_t flush_mu; /* one flush at a time (thread, free) */
    uint64_t flushes_ok, flushes_failed;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- observing ---- */

void trace_derive_observe(struct trace_derive *d, const struct span *spans, size_t n)
{
    if (!d || n == 0)
        return;
    int64_t now = now_ms();
    if (d->sm)
        spanmetrics_observe(d->sm, spans, n, now);
    if (d->sg)
        servicegraph_observe(d->sg, spans, n, now);
    if (d->errors)
        errors_observe_spans(d->errors, spans, n);
}

void trace_derive_observe_logs(struct trace_derive *d,
                               const struct logstore_stream_in *streams, size_t n)
{
    if (d && d->errors)
        errors_observe_logs(d->errors, streams, n);
}

struct errors *trace_derive_errors(struct trace_derive *d)
{
    return d ? d->errors : NULL;
}

/* ---- flushing ---- */

static const struct tsdb_metadata META[] = {
    { VG_STR(SPANMETRICS_CALLS), TSDB_TYPE_COUNTER,
      VG_STR("Spans received, by service, span name, kind and status."), VG_STR("") },
    { VG_STR(SPANMETRICS_DURATION), TSDB_TYPE_HISTOGRAM,
      VG_STR("Span durations in seconds, by service, span name, kind and status."),
      VG_STR("seconds") },
    { VG_STR(SERVICEGRAPH_REQUESTS), TSDB_TYPE_COUNTER,
      VG_STR("Requests between two services (client and server span pairs)."), VG_STR("") },
    { VG_STR(SERVICEGRAPH_FAILED), TSDB_TYPE_COUNTER,
      VG_STR("Failed requests between two services."), VG_STR("") },
    { VG_STR(SERVICEGRAPH_SERVER), TSDB_TYPE_HISTOGRAM,
      VG_STR("Server-side duration of requests between two services, in seconds."),
      VG_STR("seconds") },
    { VG_STR(SERVICEGRAPH_CLIENT), TSDB_TYPE_HISTOGRAM,
      VG_STR("Client-side duration of requests between two services, in seconds."),
      VG_STR("seconds") },
};

static struct vg_complaint complain_flush;

static int flush_series(struct trace_derive *d, int64_t now, struct vg_err *err)
{
    struct dtable_out out;
    dtable_out_init(&out);
    int rc = 0;
    if (d->sm)
        rc = spanmetrics_collect(d->sm, now, &out, err);
    if (rc == 0 && d->sg)
        rc = servicegraph_collect(d->sg, now, &out, err);
    if (rc == 0 && out.n > 0) {
        size_t m0 = d->sm ? 0 : 2, m1 = d->sg ? 6 : 2;
        struct tsdb_batch b = { .series = out.series, .nseries = out.n, .meta = META + m0,
                                .nmeta = m1 - m0 };
        struct tsdb_append_result res;
        memset(&res, 0, sizeof res);
        rc = tsdb_append(d->tsdb, &b, &res, err);
        if (rc == 0 && res.first_reject[0])
            vg_complain(&complain_flush, 60000, VG_LOG_WARN, "trace_derive",
                        "derived samples refused by the TSDB", res.first_reject);
    }
    dtable_out_free(&out);
    return rc;
}

int trace_derive_flush(struct trace_derive *d, int64_t now, struct vg_err *err)
{
    pthread_mutex_lock(&d->flush_mu);
    int rc = flush_series(d, now, err);
    struct vg_err e2;
    int rc2 = d->errors ? errors_flush(d->errors, rc < 0 ? &e2 : err) : 0;
    if (rc == 0)
        rc = rc2;
    /* Error retention rides on the flush (under flush_mu) at most once per
     * DERIVE_EXPIRE_EVERY_MS; the store lets recording in between its rounds. */
    if (d->errors && d->errors_retention_ms > 0 &&
        (d->last_expire_ms == 0 || now - d->last_expire_ms >= DERIVE_EXPIRE_EVERY_MS)) {
        d->last_expire_ms = now;
        size_t deleted;
        rc2 = errorstore_expire(errors_store(d->errors), now - d->errors_retention_ms,
                                &deleted, rc < 0 ? &e2 : err);
        if (rc == 0)
            rc = rc2;
        if (deleted) {
            char nb[24];
            snprintf(nb, sizeof nb, "%zu", deleted);
            vg_log(VG_LOG_INFO, "trace_derive", "expired error groups", "groups", nb, NULL);
        }
    }
    pthread_mutex_unlock(&d->flush_mu);
    pthread_mutex_lock(&d->mu);
    if (rc < 0)
        d->flushes_failed++;
    else
        d->flushes_ok++;
    pthread_mutex_unlock(&d->mu);
    return rc;
}

static void *flush_main(void *arg)
{
    struct trace_derive *d = arg;
    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (d->flush_interval_ms % 1000) * 1000000;
        ts.tv_sec += d->flush_interval_ms / 1000 + ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        while (!d->stop && pthread_cond_timedwait(&d->cv, &d->mu, &ts) != ETIMEDOUT)
            ;
        if (d->stop)
            break;
        pthread_mutex_unlock(&d->mu);
        struct vg_err err;
        vg_err_clear(&err);
        if (trace_derive_flush(d, now_ms(), &err) < 0)
            vg_complain(&complain_flush, 60000, VG_LOG_WARN, "trace_derive",
                        "writing derived data failed", err.msg);
        pthread_mutex_lock(&d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

/* ---- figures for /metrics ---- */

static void put_sample(struct vg_buf *out, const char *name, const char *help,
                       enum exposition_type type, const struct label *ls, size_t nls,
                       double v, bool head)
{
    struct vg_str n = vg_str_c(name);
    if (head) {
        exposition_write_help(out, n, vg_str_c(help));
        exposition_write_type(out, n, type);
    }
    exposition_write_sample(out, n, ls, nls, v, false, 0);
}

static void collect_dtable(struct vg_buf *out, const char *kind, const struct dtable_stats *st,
                           bool head)
{
    struct label k = { VG_STR("kind"), vg_str_c(kind) };
    put_sample(out, "vigil_trace_derive_series", "Live derived series, by kind.",
               EXPOSITION_GAUGE, &k, 1, (double)st->series, head);
}

static void collect_dropped(struct vg_buf *out, const char *kind,
                            const struct dtable_stats *st, bool head)
{
    struct label ls[2] = { { VG_STR("kind"), vg_str_c(kind) },
                           { VG_STR("reason"), VG_STR("max_series") } };
    put_sample(out, "vigil_trace_derive_dropped_spans_total",
               "Spans not counted in derived series, by kind and reason.",
               EXPOSITION_COUNTER, ls, 2, (double)st->dropped_full, head);
    ls[1].value = VG_STR("invalid_label");
    put_sample(out, "vigil_trace_derive_dropped_spans_total", NULL, EXPOSITION_COUNTER, ls, 2,
               (double)st->dropped_invalid, false);
}

static void collect(void *ctx, struct vg_buf *out)
{
    struct trace_derive *d = ctx;
    struct dtable_stats sms = { 0 };
    struct servicegraph_stats sgs;
    memset(&sgs, 0, sizeof sgs);
    if (d->sm)
        spanmetrics_stats(d->sm, &sms);
    if (d->sg)
        servicegraph_stats(d->sg, &sgs);
    if (d->sm)
        collect_dtable(out, "span_metrics", &sms, true);
    if (d->sg)
        collect_dtable(out, "service_graph", &sgs.series, !d->sm);
    if (d->sm)
        collect_dropped(out, "span_metrics", &sms, true);
    if (d->sg)
        collect_dropped(out, "service_graph", &sgs.series, !d->sm);
    pthread_mutex_lock(&d->mu);
    uint64_t ok = d->flushes_ok, failed = d->flushes_failed;
    pthread_mutex_unlock(&d->mu);
    struct label r = { VG_STR("result"), VG_STR("ok") };
    put_sample(out, "vigil_trace_derive_flushes_total",
               "Writes of derived data to the stores, by result.", EXPOSITION_COUNTER, &r, 1,
               (double)ok, true);
    r.value = VG_STR("error");
    put_sample(out, "vigil_trace_derive_flushes_total", NULL, EXPOSITION_COUNTER, &r, 1,
               (double)failed, false);
    if (d->sg) {
        struct label s = { VG_STR("side"), VG_STR("client") };
        put_sample(out, "traces_service_graph_unpaired_spans_total",
                   "Client or server spans whose other side did not come within "
                   "traces.service_graph_wait.", EXPOSITION_COUNTER, &s, 1,
                   (double)sgs.unpaired_client, true);
        s.value = VG_STR("server");
        put_sample(out, "traces_service_graph_unpaired_spans_total", NULL, EXPOSITION_COUNTER,
                   &s, 1, (double)sgs.unpaired_server, false);
        put_sample(out, "traces_service_graph_dropped_spans_total",
                   "Spans the service graph dropped: too many waiting, or too many services.",
                   EXPOSITION_COUNTER, NULL, 0, (double)sgs.dropped, true);
        put_sample(out, "vigil_trace_derive_service_graph_waiting_spans",
                   "Spans waiting for their other side.", EXPOSITION_GAUGE, NULL, 0,
                   (double)sgs.waiting, true);
    }
    if (d->errors) {
        struct errors_stats es;
        errors_stats(d->errors, &es);
        put_sample(out, "vigil_errors_occurrences_total",
                   "Exceptions and error log lines seen by error tracking.",
                   EXPOSITION_COUNTER, NULL, 0, (double)es.occurrences, true);
        struct label rr = { VG_STR("reason"), VG_STR("pending_full") };
        put_sample(out, "vigil_errors_dropped_total",
                   "Error occurrences not stored, by reason.", EXPOSITION_COUNTER, &rr, 1,
                   (double)es.dropped_pending, true);
        rr.value = VG_STR("max_groups");
        put_sample(out, "vigil_errors_dropped_total", NULL, EXPOSITION_COUNTER, &rr, 1,
                   (double)es.dropped_full, false);
        put_sample(out, "vigil_errors_groups", "Error groups in the error store.",
                   EXPOSITION_GAUGE, NULL, 0,
                   (double)errorstore_ngroups(errors_store(d->errors)), true);
    }
}

/* ---- life cycle ---- */

struct trace_derive *trace_derive_new(const struct trace_derive_opts *o, struct tsdb *tsdb,
                                      struct metrics *m, struct vg_err *err)
{
    struct trace_derive *d = vg_calloc(1, sizeof *d);
    if (!d) {
        vg_err_set(err, VG_ENOMEM, "out of memory");
        return NULL;
    }
    d->tsdb = tsdb;
    d->flush_interval_ms = o->flush_interval_ms;
    d->errors_retention_ms = o->errors_retention_ms;
    pthread_mutex_init(&d->mu, NULL);
    pthread_mutex_init(&d->flush_mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    if (o->span_metrics) {
        struct spanmetrics_opts so = { .bounds = o->span_bounds, .nbounds = o->span_nbounds,
                                       .max_series = o->max_series,
                                       .max_value_len = o->max_value_len,
                                       .idle_ms = DERIVE_IDLE_MS };
        if (!(d->sm = spanmetrics_new(&so, err)))
            goto fail;
    }
    if (o->service_graph) {
        struct servicegraph_opts go = { .bounds = o->graph_bounds,
                                        .nbounds = o->graph_nbounds,
                                        .max_series = o->max_series,
                                        .max_value_len = o->max_value_len,
                                        .idle_ms = DERIVE_IDLE_MS, .wait_ms = o->graph_wait_ms,
                                        .max_items = o->graph_max_items };
        if (!(d->sg = servicegraph_new(&go, err)))
            goto fail;
    }
    if (o->errors) {
        struct errors_opts eo = { .dir = o->errors_dir, .max_groups = o->errors_max_groups,
                                  .no_sync = o->errors_no_sync,
                                  .sync_interval_ms = o->errors_sync_interval_ms };
        if (!(d->errors = errors_new(&eo, err)))
            goto fail;
    }
    if (o->flush_interval_ms > 0) {
        if (pthread_create(&d->thread, NULL, flush_main, d) != 0) {
            vg_err_set(err, VG_EINTERNAL, "cannot start the trace-derive thread");
            goto fail;
        }
        d->thread_started = true;
#ifdef __linux__
        pthread_setname_np(d->thread, "trace-derive");
#endif
    }
    if (m)
        metrics_add_collector(m, collect, d);
    return d;
fail:
    trace_derive_free(d);
    return NULL;
}

void trace_derive_free(struct trace_derive *d)
{
    if (!d)
        return;
    if (d->thread_started) {
        pthread_mutex_lock(&d->mu);
        d->stop = true;
        pthread_cond_signal(&d->cv);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->thread, NULL);
    }
    if (d->tsdb && (d->sm || d->sg)) {
        struct vg_err err;
        if (flush_series(d, now_ms(), &err) < 0)
            vg_log(VG_LOG_WARN, "trace_derive", "last flush of derived series failed",
                   "error", err.msg, NULL);
    }
    spanmetrics_free(d->sm);
    servicegraph_free(d->sg);
    errors_free(d->errors); /* flushes what is pending */
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->flush_mu);
    pthread_mutex_destroy(&d->mu);
    vg_free(d);
}

int trace_derive_parse_buckets(const char *key, char *const *items, size_t n, double *out,
                               size_t cap, size_t *nout, struct vg_err *err)
{
    if (n > cap)
        return vg_err_set(err, VG_EINVAL, "%s: %zu buckets, at most %zu", key, n, cap);
    for (size_t i = 0; i < n; i++) {
        char *end;
        errno = 0;
        double v = strtod(items[i], &end);
        if (end == items[i] || *end || errno || !isfinite(v))
            return vg_err_set(err, VG_EINVAL, "%s: \"%.64s\" is not a finite number", key,
                              items[i]);
        if (i && v <= out[i - 1])
            return vg_err_set(err, VG_EINVAL, "%s: %.64s is not larger than the bucket "
                              "before it (bounds must ascend)", key, items[i]);
        out[i] = v;
    }
    *nout = n;
    return 0;
}

/* ---- the module ---- */

static int parse_both(const struct config *c, double *sb, size_t *ns, double *gb, size_t *ng,
                      struct vg_err *err)
{
    int rc = trace_derive_parse_buckets("traces.span_metrics_buckets",
                                        c->traces_span_metrics_buckets,
                                        c->traces_nspan_metrics_buckets, sb,
                                        DTABLE_MAX_BOUNDS, ns, err);
    if (rc == 0)
        rc = trace_derive_parse_buckets("traces.service_graph_buckets",
                                        c->traces_service_graph_buckets,
                                        c->traces_nservice_graph_buckets, gb,
                                        DTABLE_MAX_BOUNDS, ng, err);
    return rc;
}

static int check(const struct config *c, struct vg_err *err)
{
    double sb[DTABLE_MAX_BOUNDS], gb[DTABLE_MAX_BOUNDS];
    size_t ns, ng;
    return parse_both(c, sb, &ns, gb, &ng, err);
}

static int init(struct vigil *v, struct vg_err *err)
{
    const struct config *c = v->cfg;
    if (!c->traces_span_metrics_enabled && !c->traces_service_graph_enabled &&
        !c->traces_errors_enabled)
        return 0;
    double sb[DTABLE_MAX_BOUNDS], gb[DTABLE_MAX_BOUNDS];
    size_t ns, ng;
    if (parse_both(c, sb, &ns, gb, &ng, err) < 0)
        return err->code;
    char dir[PATH_MAX];
    if (vigil_store_path(c, "errors", dir, sizeof dir) < 0)
        return vg_err_set(err, VG_EINVAL, "storage.data_dir: path too long");
    struct trace_derive_opts o = {
        .span_metrics = c->traces_span_metrics_enabled,
        .service_graph = c->traces_service_graph_enabled,
        .errors = c->traces_errors_enabled,
        .flush_interval_ms = c->traces_derive_flush_interval_ms,
        .span_bounds = sb, .span_nbounds = ns,
        .graph_bounds = gb, .graph_nbounds = ng,
        .graph_wait_ms = c->traces_service_graph_wait_ms,
        .graph_max_items = (size_t)c->traces_service_graph_max_items,
        .max_series = (size_t)c->traces_max_derived_series,
        .max_value_len = (size_t)(c->limits.max_label_value_length < 4
                                      ? 4 : c->limits.max_label_value_length),
        .errors_dir = dir,
        .errors_max_groups = (size_t)c->traces_errors_max_groups,
        .errors_retention_ms = c->trace_retention_ms,
    };
    vigil_store_sync(c, &o.errors_no_sync, &o.errors_sync_interval_ms);
    v->derive = trace_derive_new(&o, v->tsdb, v->metrics, err);
    return v->derive ? 0 : err->code;
}

static void fini(struct vigil *v)
{
    trace_derive_free(v->derive);
    v->derive = NULL;
}

const struct vigil_module mod_traces_derive = {
    .name = "traces_derive",
    .check = check,
    .init = init,
    .free = fini,
};
