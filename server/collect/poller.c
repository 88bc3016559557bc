/* poller: see poller.h. The thread sleeps on a condition variable with a CLOCK_MONOTONIC
 * deadline, so poller_stop and poller_sync wake it at once; the deadline moves by whole
 * intervals from the first poll, so polls keep their phase. */
#include "poller.h"

#include "../../storage/base/vg_alloc.h"
#include "../ingest/ingest.h"
#include "../scrape/scrape.h"
#include "../vigil.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

struct poller {
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv, done;
    atomic_bool stop;
    uint64_t sync_req, sync_done;   /* under mu */
    int64_t interval_ms, offset_ms;
    poller_fn fn;
    void *ctx;
    char name[16];
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timespec ms_to_ts(int64_t ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
    return ts;
}

static void *poller_main(void *arg)
{
    struct poller *p = arg;
    pthread_setname_np(pthread_self(), p->name);
    int64_t next = mono_ms() + p->offset_ms;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        /* sleep until the next poll is due, a sync is asked for, or stop */
        struct timespec dl = ms_to_ts(next);
        while (!atomic_load(&p->stop) && p->sync_req == p->sync_done && mono_ms() < next)
            pthread_cond_timedwait(&p->cv, &p->mu, &dl);
        if (atomic_load(&p->stop))
            break;
        uint64_t want = p->sync_req;
        pthread_mutex_unlock(&p->mu);
        int64_t started = mono_ms();
        p->fn(p->ctx, &p->stop);
        pthread_mutex_lock(&p->mu);
        p->sync_done = want;
        pthread_cond_broadcast(&p->done);
        /* keep the phase; an overrun poll is followed at once by one more, not a burst */
        next += p->interval_ms;
        if (next <= started)
            next = started + p->interval_ms;
        if (next < mono_ms())
            next = mono_ms();
    }
    p->sync_done = p->sync_req; /* release waiters */
    pthread_cond_broadcast(&p->done);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

struct poller *poller_start(const char *name, int64_t interval_ms, int64_t offset_ms,
                            poller_fn fn, void *ctx, struct vg_err *err)
{
    struct poller *p = vg_calloc(1, sizeof *p);
    if (!p) {
        vg_err_set(err, VG_ENOMEM, "poller %s: out of memory", name);
        return NULL;
    }
    snprintf(p->name, sizeof p->name, "%s", name);
    p->interval_ms = interval_ms > 0 ? interval_ms : 1000;
    p->offset_ms = offset_ms > 0 ? offset_ms : 0;
    p->fn = fn;
    p->ctx = ctx;
    atomic_init(&p->stop, false);
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&p->done, NULL);
    if (pthread_create(&p->thr, NULL, poller_main, p) != 0) {
        pthread_cond_destroy(&p->cv);
        pthread_cond_destroy(&p->done);
        pthread_mutex_destroy(&p->mu);
        vg_free(p);
        vg_err_set(err, VG_EINTERNAL, "poller %s: cannot start a thread", name);
        return NULL;
    }
    return p;
}

void poller_stop(struct poller *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thr, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    vg_free(p);
}

void poller_sync(struct poller *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    /* a poll under way may have started before the call: wait for the next one */
    uint64_t want = ++p->sync_req;
    pthread_cond_signal(&p->cv);
    while (p->sync_done < want && !atomic_load(&p->stop))
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
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
