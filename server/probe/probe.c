/* probe: the scheduler, the storing of results and GET /probe (see probe.h).
 *
 * Scheduling: s->mu guards next_due and running of every target. A worker takes the
 * target due soonest that no other worker runs, waits on s->cv until it is due (or a
 * stop), runs it outside the lock, stores the result, and sets its next due time one
 * interval after the run's planned start (skipping missed slots when a run overran, so a
 * slow target never runs back to back). */
#include "probe.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_log.h"
#include "../api/exposition.h"
#include "../http.h"
#include "../ingest/ingest.h"
#include "../metrics.h"
#include "probe_config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAX_WORKERS 8
#define COMPLAIN_MS 60000

struct slot {
    const struct probe_target *t;
    int64_t next_due;   /* CLOCK_MONOTONIC ms */
    bool running;
    bool meta_sent;
    bool last_ok;
};

struct probe_state {
    struct vigil *v;
    struct probe_config *cfg;
    struct slot *slots;
    size_t nslots;
    pthread_t workers[MAX_WORKERS];
    size_t nworkers;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_bool stop;
    _Atomic uint64_t runs;
    struct metric_family *runs_total, *store_errors;
    struct vg_complaint fail_complaint, store_complaint;
};

bool probe_run(const struct probe_module *m, const char *target, const atomic_bool *stop,
               struct probe_result *r)
{
    memset(r, 0, sizeof *r);
    double t0 = probe_now_s();
    bool ok = m->prober->run(m, target, probe_now_ms() + m->timeout_ms, stop, r);
    if (ok && r->error[0])
        ok = false; /* a prober that noted a failure but returned true */
    if (!ok && !r->error[0])
        snprintf(r->error, sizeof r->error, "probe failed");
    probe_add(r, "probe_success", "Displays whether or not the probe was a success", NULL, NULL,
              ok);
    probe_add(r, "probe_duration_seconds", "Returns how long the probe took to complete in seconds",
              NULL, NULL, probe_now_s() - t0);
    return ok;
}

void probe_write_exposition(const struct probe_result *r, struct vg_buf *out)
{
    bool done[PROBE_MAX_SAMPLES] = { false };
    for (size_t i = 0; i < r->n; i++) {
        if (done[i])
            continue;
        struct vg_str name = vg_str_c(r->s[i].name);
        exposition_write_help(out, name, vg_str_c(r->s[i].help));
        exposition_write_type(out, name, EXPOSITION_GAUGE);
        for (size_t k = i; k < r->n; k++) {
            if (done[k] || strcmp(r->s[k].name, r->s[i].name) != 0)
                continue;
            done[k] = true;
            struct label l = { vg_str_c(r->s[k].lname), vg_str_c(r->s[k].lvalue) };
            exposition_write_sample(out, name, &l, r->s[k].lname ? 1 : 0, r->s[k].value, false, 0);
        }
    }
}

/* ---- storing ---- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void store(struct probe_state *s, struct slot *sl, const struct probe_result *r, int64_t t)
{
    const struct probe_target *tg = sl->t;
    size_t nl = tg->nlabels + 4; /* __name__, job, instance, one prober label */
    struct label *all = vg_malloc(r->n * nl * sizeof *all);
    struct tsdb_series_in *series = vg_malloc(r->n * sizeof *series);
    struct tsdb_sample *samples = vg_malloc(r->n * sizeof *samples);
    struct tsdb_metadata *meta = vg_malloc(r->n * sizeof *meta);
    struct vg_err err;
    if (!all || !series || !samples || !meta) {
        vg_err_set(&err, VG_ENOMEM, "out of memory");
        goto fail;
    }
    size_t nmeta = 0;
    for (size_t i = 0; i < r->n; i++) {
        struct label *ls = all + i * nl;
        size_t n = 0;
        ls[n++] = (struct label){ VG_STR("__name__"), vg_str_c(r->s[i].name) };
        ls[n++] = (struct label){ VG_STR("job"), vg_str_c(tg->job) };
        ls[n++] = (struct label){ VG_STR("instance"), vg_str_c(tg->target) };
        if (r->s[i].lname)
            ls[n++] = (struct label){ vg_str_c(r->s[i].lname), vg_str_c(r->s[i].lvalue) };
        if (tg->nlabels) /* memcpy from NULL is undefined even for 0 bytes */
            memcpy(ls + n, tg->labels, tg->nlabels * sizeof *ls);
        n += tg->nlabels;
        labels_sort(ls, n);
        samples[i] = (struct tsdb_sample){ t, r->s[i].value };
        series[i] = (struct tsdb_series_in){ .labels = ls, .nlabels = n, .samples = &samples[i],
                                             .nsamples = 1 };
        bool seen = false;
        for (size_t k = 0; k < nmeta && !seen; k++)
            seen = vg_str_eq_c(meta[k].metric, r->s[i].name);
        if (!sl->meta_sent && !seen)
            meta[nmeta++] = (struct tsdb_metadata){ .metric = vg_str_c(r->s[i].name),
                                                    .type = TSDB_TYPE_GAUGE,
                                                    .help = vg_str_c(r->s[i].help) };
    }
    struct tsdb_batch b = { .series = series, .nseries = r->n, .meta = meta, .nmeta = nmeta };
    struct tsdb_append_result res;
    memset(&res, 0, sizeof res);
    if (ingest_store(s->v, "probe", &b, &res, &err) < 0)
        goto fail;
    sl->meta_sent = true;
    goto out;
fail:
    metric_add(s->store_errors, 1);
    vg_complain(&s->store_complaint, COMPLAIN_MS, VG_LOG_WARN, "probe",
                "storing a probe result failed", err.msg);
out:
    vg_free(all);
    vg_free(series);
    vg_free(samples);
    vg_free(meta);
}

/* ---- scheduling ---- */

static void *worker_main(void *arg)
{
    struct probe_state *s = arg;
    pthread_setname_np(pthread_self(), "probe-worker");
    struct probe_result *r = vg_malloc(sizeof *r);
    if (!r) {
        vg_log(VG_LOG_ERROR, "probe", "out of memory: a probe worker stopped", NULL);
        return NULL;
    }
    pthread_mutex_lock(&s->mu);
    while (!atomic_load(&s->stop)) {
        struct slot *next = NULL;
        for (size_t i = 0; i < s->nslots; i++)
            if (!s->slots[i].running && (!next || s->slots[i].next_due < next->next_due))
                next = &s->slots[i];
        int64_t now = probe_now_ms();
        if (!next || next->next_due > now) {
            int64_t wait = next ? next->next_due - now : 1000;
            struct timespec dl;
            clock_gettime(CLOCK_MONOTONIC, &dl);
            dl.tv_sec += wait / 1000;
            dl.tv_nsec += (wait % 1000) * 1000000L;
            if (dl.tv_nsec >= 1000000000L) {
                dl.tv_sec++;
                dl.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&s->cv, &s->mu, &dl);
            continue;
        }
        next->running = true;
        int64_t planned = next->next_due;
        pthread_mutex_unlock(&s->mu);

        int64_t t = wall_ms();
        bool ok = probe_run(next->t->module, next->t->target, &s->stop, r);
        metric_add(s->runs_total, 1, next->t->module->name, ok ? "success" : "failure");
        if (!ok)
            vg_log(VG_LOG_DEBUG, "probe", "probe failed", "target", next->t->target, "module",
                   next->t->module->name, "reason", r->error, NULL);
        if (!ok && next->last_ok)
            vg_complain(&s->fail_complaint, COMPLAIN_MS, VG_LOG_WARN, "probe",
                        "probe started failing", r->error);
        if (!atomic_load(&s->stop))
            store(s, next, r, t);
        atomic_fetch_add(&s->runs, 1);

        pthread_mutex_lock(&s->mu);
        next->last_ok = ok;
        next->running = false;
        int64_t iv = next->t->interval_ms, after = probe_now_ms();
        next->next_due = planned + iv;
        if (next->next_due <= after) /* overran: skip the missed slots */
            next->next_due = planned + ((after - planned) / iv + 1) * iv;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    vg_free(r);
    return NULL;
}

/* ---- GET /probe ---- */

static void error_text(struct http_response *resp, int status, const char *fmt, const char *arg)
{
    resp->status = status;
    resp->content_type = "text/plain; charset=utf-8";
    vg_buf_printf(&resp->body, fmt, arg);
    vg_buf_putc(&resp->body, '\n');
}

static void handle_probe(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    struct probe_state *s = v->probe_state;
    const char *module = http_arg_get(req, "module");
    const char *target = http_arg_get(req, "target");
    if (!target || !target[0]) {
        error_text(resp, 400, "%s", "Target parameter is missing");
        return;
    }
    if (!module || !module[0])
        module = "http_2xx"; /* the blackbox exporter's default */
    const struct probe_module *m = s ? probe_config_module(s->cfg, module) : NULL;
    if (!m) {
        error_text(resp, 400, "Unknown module \"%s\"", module);
        return;
    }
    struct probe_result *r = vg_arena_alloc(req->arena, sizeof *r);
    if (!r) {
        error_text(resp, 503, "%s", "out of memory");
        return;
    }
    bool ok = probe_run(m, target, &s->stop, r);
    metric_add(s->runs_total, 1, m->name, ok ? "success" : "failure");
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    probe_write_exposition(r, &resp->body);
    if (!ok) /* the blackbox exporter puts the reason in its debug output; we add a comment */
        vg_buf_printf(&resp->body, "# probe failed: %s\n", r->error);
}

static const struct http_route routes[] = {
    { "GET,POST", "/probe", false, handle_probe, "/probe" },
};

/* ---- module hooks ---- */

static int probe_check(const struct config *cfg, struct vg_err *err)
{
    struct probe_config *c;
    int rc = probe_config_parse(cfg, &c, err);
    probe_config_free(c);
    return rc;
}

static void probe_free(struct vigil *v)
{
    struct probe_state *s = v->probe_state;
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->stop, true);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < s->nworkers; i++)
        pthread_join(s->workers[i], NULL);
    probe_config_free(s->cfg);
    vg_free(s->slots);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    vg_free(s);
    v->probe_state = NULL;
}

static int probe_init(struct vigil *v, struct vg_err *err)
{
    static const char *const runs_labels[] = { "module", "result" };
    struct probe_state *s = vg_calloc(1, sizeof *s);
    if (!s)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    v->probe_state = s;
    s->v = v;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    s->runs_total = metrics_family(v->metrics, "vigil_probe_runs_total",
                                   "Synthetic probes run (scheduled and /probe), by module and result.",
                                   METRIC_COUNTER, runs_labels, 2, NULL, 0);
    s->store_errors = metrics_family(v->metrics, "vigil_probe_store_errors_total",
                                     "Probe results that could not be written to the TSDB.",
                                     METRIC_COUNTER, NULL, 0, NULL, 0);
    if (probe_config_parse(v->cfg, &s->cfg, err) < 0) {
        probe_free(v);
        return err->code;
    }
    s->nslots = s->cfg->ntargets;
    if (s->nslots && !(s->slots = vg_calloc(s->nslots, sizeof *s->slots))) {
        probe_free(v);
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    }
    int64_t now = probe_now_ms();
    for (size_t i = 0; i < s->nslots; i++) {
        const struct probe_target *t = &s->cfg->targets[i];
        s->slots[i] = (struct slot){ .t = t, .last_ok = true,
                                     .next_due = now + t->interval_ms * (int64_t)i /
                                                           (int64_t)s->nslots };
    }
    size_t want = s->nslots < MAX_WORKERS ? s->nslots : MAX_WORKERS;
    for (; s->nworkers < want; s->nworkers++)
        if (pthread_create(&s->workers[s->nworkers], NULL, worker_main, s) != 0) {
            probe_free(v);
            return vg_err_set(err, VG_ENOMEM, "cannot start a probe worker");
        }
    if (s->nslots) {
        char n[24];
        snprintf(n, sizeof n, "%zu", s->nslots);
        vg_log(VG_LOG_INFO, "probe", "probing targets", "targets", n, NULL);
    }
    return 0;
}

uint64_t probe_runs_done(const struct vigil *v)
{
    const struct probe_state *s = v->probe_state;
    return s ? atomic_load(&((struct probe_state *)s)->runs) : 0;
}

const struct vigil_module mod_probe = {
    .name = "probe",
    .routes = routes,
    .nroutes = sizeof routes / sizeof routes[0],
    .check = probe_check,
    .init = probe_init,
    .free = probe_free,
};
