/* poller: see poller.h. A poller is a vg_ticker at a fixed rate: the first poll
 * offset_ms after start, then every interval from the first one, so polls keep their
 * phase; poller_stop and poller_sync wake it at once. */
#include "poller.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_ticker.h"
#include "../ingest/ingest.h"
#include "../scrape/scrape.h"
#include "../vigil.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct poller {
    struct vg_ticker ticker;
};

struct poller *poller_start(const char *name, int64_t interval_ms, int64_t offset_ms,
                            poller_fn fn, void *ctx, struct vg_err *err)
{
    struct poller *p = vg_calloc(1, sizeof *p);
    if (!p) {
        vg_err_set(err, VG_ENOMEM, "poller %s: out of memory", name);
        return NULL;
    }
    struct vg_ticker_opts o = { .name = name,
                                .interval_ms = interval_ms > 0 ? interval_ms : 1000,
                                .first_ms = offset_ms > 0 ? offset_ms : 0,
                                .fixed_rate = true };
    if (vg_ticker_start(&p->ticker, &o, fn, ctx, err) < 0) {
        vg_free(p);
        vg_err_prefix(err, "poller %s", name);
        return NULL;
    }
    return p;
}

void poller_stop(struct poller *p)
{
    if (!p)
        return;
    vg_ticker_stop(&p->ticker);
    vg_free(p);
}

void poller_sync(struct poller *p)
{
    if (p)
        vg_ticker_sync(&p->ticker);
}

int64_t poller_offset(const char *name, int64_t interval_ms)
{
    uint64_t h = 14695981039346656037ULL;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        h = (h ^ *c) * 1099511628211ULL;
    return interval_ms > 0 ? (int64_t)(h % (uint64_t)interval_ms) : 0;
}

int64_t poller_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double poller_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- sample sets ---- */

int poller_samples_init(struct poller_samples *s, int64_t t_ms, size_t max_series)
{
    memset(s, 0, sizeof *s);
    s->t = t_ms;
    s->max_series = max_series;
    s->arena = vg_arena_new(1 << 14);
    return s->arena ? 0 : VG_ENOMEM;
}

void poller_samples_free(struct poller_samples *s)
{
    vg_arena_free(s->arena);
    vg_free(s->series);
    vg_free(s->meta);
    memset(s, 0, sizeof *s);
}

static bool arena_str(struct vg_arena *a, struct vg_str in, struct vg_str *out)
{
    char *p = vg_arena_strndup(a, in.p ? in.p : "", in.len);
    *out = (struct vg_str){ p, in.len };
    return p != NULL;
}

int poller_samples_add(struct poller_samples *s, const char *name, const struct label *ls,
                       size_t nl, double v)
{
    if (s->max_series && s->n >= s->max_series)
        return VG_ETOOLARGE;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct tsdb_series_in *ns = vg_realloc(s->series, cap * sizeof *ns);
        if (!ns)
            return VG_ENOMEM;
        s->series = ns;
        s->cap = cap;
    }
    struct label *out = vg_arena_alloc(s->arena, (nl + 1) * sizeof *out);
    struct tsdb_sample *smp = vg_arena_alloc(s->arena, sizeof *smp);
    if (!out || !smp)
        return VG_ENOMEM;
    size_t k = 0;
    if (!arena_str(s->arena, VG_STR("__name__"), &out[k].name) ||
        !arena_str(s->arena, vg_str_c(name), &out[k].value))
        return VG_ENOMEM;
    k++;
    for (size_t i = 0; i < nl; i++) {
        if (!ls[i].value.len)
            continue;
        if (!arena_str(s->arena, ls[i].name, &out[k].name) ||
            !arena_str(s->arena, ls[i].value, &out[k].value))
            return VG_ENOMEM;
        k++;
    }
    smp->t = s->t;
    smp->v = v;
    s->series[s->n++] = (struct tsdb_series_in){ .labels = out, .nlabels = k,
                                                 .samples = smp, .nsamples = 1 };
    return 0;
}

int poller_samples_meta(struct poller_samples *s, const char *name,
                        enum tsdb_metric_type type, const char *help)
{
    for (size_t i = 0; i < s->nmeta; i++)
        if (vg_str_eq_c(s->meta[i].metric, name))
            return 0;
    if (s->nmeta == s->capmeta) {
        size_t cap = s->capmeta ? s->capmeta * 2 : 16;
        struct tsdb_metadata *nm = vg_realloc(s->meta, cap * sizeof *nm);
        if (!nm)
            return VG_ENOMEM;
        s->meta = nm;
        s->capmeta = cap;
    }
    struct tsdb_metadata *m = &s->meta[s->nmeta];
    memset(m, 0, sizeof *m);
    m->type = type;
    if (!arena_str(s->arena, vg_str_c(name), &m->metric) ||
        !arena_str(s->arena, vg_str_c(help ? help : ""), &m->help) ||
        !arena_str(s->arena, VG_STR(""), &m->unit))
        return VG_ENOMEM;
    s->nmeta++;
    return 0;
}

int poller_samples_store(struct vigil *v, const char *receiver, struct poller_samples *s,
                         size_t *invalid, struct vg_err *err)
{
    size_t k = 0, bad = 0;
    struct vg_err lerr;
    for (size_t i = 0; i < s->n; i++) {
        struct tsdb_series_in si = s->series[i];
        /* the labels live in our arena: ingest_check_labels may sort them in place */
        int n = ingest_check_labels(&v->cfg->limits, (struct label *)si.labels, si.nlabels,
                                    &lerr);
        if (n < 0) {
            if (!bad && err)
                vg_err_set(err, n, "%s", lerr.msg);
            bad++;
            continue;
        }
        si.nlabels = (size_t)n;
        s->series[k++] = si;
    }
    s->n = k;
    if (bad)
        ingest_count_rejected(v, receiver, "invalid_labels", bad);
    if (invalid)
        *invalid = bad;
    if (!k)
        return 0;
    struct tsdb_batch b = { .series = s->series, .nseries = k, .meta = s->meta,
                            .nmeta = s->nmeta };
    struct tsdb_append_result res;
    return ingest_store(v, receiver, &b, &res, err);
}

void poller_samples_health(struct poller_samples *s, const char *prefix, const char *label_name,
                           const char *label_value, const char *what, bool up, double started)
{
    static const struct {
        const char *suffix, *help;
    } fams[] = {
        { "_up", "1 when the last poll of the %s succeeded, else 0." },
        { "_scrape_duration_seconds", "Seconds the last poll of the %s took." },
        { "_scrape_samples", "Samples the last poll of the %s produced." },
    };
    double values[] = { up ? 1 : 0, poller_mono_s() - started, (double)s->n };
    struct label l = { vg_str_c(label_name), vg_str_c(label_value) };
    s->max_series = 0;
    for (size_t i = 0; i < 3; i++) {
        char name[128], help[160];
        snprintf(name, sizeof name, "%s%s", prefix, fams[i].suffix);
        snprintf(help, sizeof help, fams[i].help, what);
        poller_samples_add(s, name, &l, 1, values[i]);
        poller_samples_meta(s, name, TSDB_TYPE_GAUGE, help);
    }
}

void poller_health_init(struct poller_health *h)
{
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
}

void poller_health_destroy(struct poller_health *h)
{
    pthread_mutex_destroy(&h->mu);
}

void poller_health_set(struct poller_health *h, int64_t started_ms, double duration_s, bool up,
                       const char *error)
{
    pthread_mutex_lock(&h->mu);
    h->last_ms = started_ms;
    h->duration_s = duration_s;
    h->up = up;
    snprintf(h->error, sizeof h->error, "%s", error ? error : "");
    pthread_mutex_unlock(&h->mu);
}

void poller_health_report(struct poller_health *h, const struct poller_target *t,
                          void (*fn)(void *ctx, const struct scrape_target_status *st),
                          void *ctx)
{
    struct label discovered[2] = {
        { VG_STR("__address__"), vg_str_c(t->address) },
        t->label,
    };
    if (vg_str_cmp(discovered[1].name, discovered[0].name) < 0) { /* sorted by name */
        discovered[1] = discovered[0];
        discovered[0] = t->label;
    }
    pthread_mutex_lock(&h->mu);
    struct scrape_target_status st = {
        .pool = t->pool,
        .discovered = discovered,
        .ndiscovered = 2,
        .labels = &t->label,
        .nlabels = 1,
        .url = t->url,
        .health = !h->last_ms ? "unknown" : h->up ? "up" : "down",
        .last_error = h->error,
        .last_scrape_ms = h->last_ms,
        .last_duration_s = h->duration_s,
        .interval_ms = t->interval_ms,
        .timeout_ms = t->timeout_ms,
    };
    fn(ctx, &st);
    pthread_mutex_unlock(&h->mu);
}
