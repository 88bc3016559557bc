/* scrape: the scrape manager (see scrape.h): targets per job built from static and file
 * discovery, a libcurl multi loop for the transfers, worker threads for the appends,
 * reload and file_sd watching, and the module that wires it into vigil_start.
 *
 * Locks: reload_mu serialises reloads and file_sd resyncs (both stop the threads, swap
 * the pools and start them again); mu guards the pools array and every target's status
 * fields (read by the APIs); qmu guards the done-queue between scrape-io and workers.
 * A target's curl handle, body and cache belong to whoever set its busy flag: scrape-io
 * from the transfer's start until it queues the target, then one worker until it clears
 * the flag. */
#include "scrape.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_log.h"
#include "../ingest/ingest.h"
#include "scrape_config.h"
#include "scrape_sd.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* After a watch event, how long scrape-sd lets further events of the same change arrive
 * before it reads the files. */
#define SCRAPE_SD_SETTLE_MS 100

#define ACCEPT_HEADER                                                                        \
    "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;"      \
    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

struct target {
    struct pool *pool;
    struct vg_arena *arena;        /* def's strings */
    struct scrape_target_def def;
    struct scrape_input in;
    struct scrape_cache cache;
    CURL *easy;
    struct curl_slist *hdrs;
    char *tls_url;                 /* the URL naming tls_config.server_name (curl_free) */
    struct curl_slist *tls_conn;   /* where it connects instead */
    struct vg_buf body;
    bool too_big;
    char curl_err[CURL_ERROR_SIZE];
    CURLcode result;
    int64_t next_ms, start_ms, start_us;
    double duration_s;
    atomic_bool busy;
    struct target *qnext;          /* done-queue link */
    /* status, under scrape.mu */
    char last_error[256];
    int64_t last_scrape_ms;
    double last_duration_s;
    int health;                    /* 0 unknown, 1 up, 2 down */
};

struct pool {
    struct scrape_job *job;        /* in the scrape's cfg */
    struct target **targets;
    size_t ntargets;
    struct scrape_target_def *dropped;
    size_t ndropped;
    struct vg_arena *dropped_arena;
    uint64_t sd_print;             /* scrape_sd_fingerprint when the pool was built */
    int64_t sd_next_ms;            /* monotonic: the next refresh_interval re-read */
};

struct scrape {
    struct vigil *v;
    const struct config *boot_cfg;  /* what scrape_start got (for its source path) */
    pthread_mutex_t reload_mu, mu, qmu;
    pthread_cond_t qcond;
    struct scrape_config *cfg;
    struct pool *pools;
    size_t npools;
    CURLM *multi;
    pthread_t io, workers[SCRAPE_WORKERS], sd;
    bool running, sd_running;
    atomic_bool stop, sd_stop;
    int sd_wake[2];                /* pipe: a byte wakes scrape-sd (stop, new config) */
    unsigned cfg_gen;              /* bumped when install_pools replaces cfg */
    struct target *qhead, *qtail;
    /* scrape-io's heap of targets by next_ms */
    struct target **heap;
    size_t nheap;
    struct scrape_sd_keep *sd_keep; /* last good file_sd files, across rebuilds */
    /* Prometheus's counters of the same names (NULL without a registry) */
    struct metric_family *m_body_limit, *m_sample_limit, *m_sd_errors;
};

/* Monotonic microseconds, for durations. */
static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t scrape_first_slot(uint64_t hash, int64_t interval_ms, int64_t now)
{
    int64_t offset = (int64_t)(hash % (uint64_t)interval_ms);
    int64_t base = now - (((now % interval_ms) + interval_ms) % interval_ms);
    int64_t t = base + offset;
    return t < now ? t + interval_ms : t;
}

/* ---------------------------------------------------------------- targets */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct target *t = ud;
    size_t len = size * n;
    int64_t lim = t->pool->job->body_size_limit;
    if (lim > 0 && (int64_t)(t->body.len + len) > lim) {
        t->too_big = true;
        return 0;
    }
    vg_buf_append(&t->body, p, len);
    return vg_buf_failed(&t->body) ? 0 : len;
}

static void target_free(struct target *t)
{
    if (!t)
        return;
    if (t->easy)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->hdrs);
    curl_free(t->tls_url);
    curl_slist_free_all(t->tls_conn);
    vg_buf_free(&t->body);
    scrape_cache_free(&t->cache);
    vg_arena_free(t->arena);
    vg_free(t);
}

static int target_setup_curl(struct target *t, struct vg_err *err)
{
    const struct scrape_job *j = t->pool->job;
    t->easy = curl_easy_init();
    if (!t->easy)
        return vg_err_set(err, VG_ENOMEM, "curl_easy_init failed");
    char tmo[96];
    snprintf(tmo, sizeof tmo, "X-Prometheus-Scrape-Timeout-Seconds: %g",
             (double)t->def.timeout_ms / 1000.0);
    t->hdrs = curl_slist_append(NULL, ACCEPT_HEADER);
    t->hdrs = t->hdrs ? curl_slist_append(t->hdrs, tmo) : NULL;
    if (t->hdrs && j->auth_header) {
        size_t n = strlen(j->auth_header) + 16;
        char *h = vg_malloc(n);
        if (h) {
            snprintf(h, n, "Authorization: %s", j->auth_header);
            struct curl_slist *x = curl_slist_append(t->hdrs, h);
            vg_free(h);
            t->hdrs = x;
        } else {
            curl_slist_free_all(t->hdrs);
            t->hdrs = NULL;
        }
    }
    if (!t->hdrs)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, t->def.url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->hdrs);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "Vigil/" VIGIL_VERSION);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "gzip");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)t->def.timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->curl_err);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
    if (j->basic_user) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(e, CURLOPT_USERNAME, j->basic_user);
        curl_easy_setopt(e, CURLOPT_PASSWORD, j->basic_pass ? j->basic_pass : "");
    }
    if (!tls_config_apply(e, &j->tls, false, t->def.url, &t->tls_url, &t->tls_conn))
        return vg_err_set(err, VG_EINVAL, "%s: cannot apply tls_config.server_name \"%s\"",
                          t->def.url, j->tls.server_name);
    return 0;
}

static struct target *target_new(struct pool *p, const struct scrape_group *g, size_t ti,
                                 const struct label *extra, size_t nextra,
                                 struct scrape_target_def *dropped_out,
                                 struct vg_arena *dropped_arena, int *rcp, struct vg_err *err)
{
    struct target *t = vg_calloc(1, sizeof *t);
    if (!t || !(t->arena = vg_arena_new(2048))) {
        vg_free(t);
        *rcp = vg_err_set(err, VG_ENOMEM, "out of memory");
        return NULL;
    }
    t->pool = p;
    vg_buf_init(&t->body);
    int rc = scrape_target_build(p->job, g, ti, extra, nextra, t->arena, &t->def, err);
    if (rc == 0) {
        /* dropped: keep its discovered labels for the API in the pool's arena */
        dropped_out->dropped = true;
        dropped_out->ndiscovered = t->def.ndiscovered;
        dropped_out->discovered = vg_arena_alloc(dropped_arena, (t->def.ndiscovered + 1) *
                                                                    sizeof(struct label));
        for (size_t i = 0; dropped_out->discovered && i < t->def.ndiscovered; i++) {
            struct label l = t->def.discovered[i];
            dropped_out->discovered[i] = (struct label){
                { vg_arena_strndup(dropped_arena, l.name.p, l.name.len), l.name.len },
                { vg_arena_strndup(dropped_arena, l.value.p, l.value.len), l.value.len } };
        }
        target_free(t);
        *rcp = dropped_out->discovered ? 0 : vg_err_set(err, VG_ENOMEM, "out of memory");
        return NULL;
    }
    if (rc < 0 || (rc = target_setup_curl(t, err)) < 0) {
        target_free(t);
        *rcp = rc;
        return NULL;
    }
    const struct scrape_job *j = p->job;
    t->in = (struct scrape_input){
        .target = t->def.labels, .ntarget = t->def.nlabels, .honor_labels = j->honor_labels,
        .honor_timestamps = j->honor_timestamps, .metric_relabel = &j->metric_relabel,
        .sample_limit = j->sample_limit, .label_limit = j->label_limit,
        .label_name_length_limit = j->label_name_length_limit,
        .label_value_length_limit = j->label_value_length_limit,
    };
    *rcp = 1;
    return t;
}

static void pool_free_contents(struct pool *p)
{
    for (size_t i = 0; i < p->ntargets; i++)
        target_free(p->targets[i]);
    vg_free(p->targets);
    vg_free(p->dropped);
    vg_arena_free(p->dropped_arena);
    memset(p, 0, sizeof *p);
}

/* Adds the targets of one group to p. */
static int pool_add_group(struct pool *p, const struct scrape_group *g, const struct label *extra,
                          size_t nextra, const struct config_limits *lim, struct vg_err *err)
{
    for (size_t ti = 0; ti < g->ntargets; ti++) {
        struct target **nt = vg_realloc(p->targets, (p->ntargets + 1) * sizeof *nt);
        struct scrape_target_def *nd = vg_realloc(p->dropped, (p->ndropped + 1) * sizeof *nd);
        if (nt)
            p->targets = nt;
        if (nd)
            p->dropped = nd;
        if (!nt || !nd)
            return vg_err_set(err, VG_ENOMEM, "out of memory");
        int rc;
        struct vg_err terr;
        memset(&p->dropped[p->ndropped], 0, sizeof *p->dropped);
        struct target *t = target_new(p, g, ti, extra, nextra, &p->dropped[p->ndropped],
                                      p->dropped_arena, &rc, &terr);
        if (rc == VG_ENOMEM)
            return vg_err_set(err, VG_ENOMEM, "out of memory");
        if (rc < 0) {
            vg_log(VG_LOG_WARN, "scrape", "target skipped", "job", p->job->name, "target",
                   g->targets[ti], "error", terr.msg, NULL);
            continue;
        }
        if (!t) {
            p->ndropped++;
            continue;
        }
        t->in.limits = lim;
        /* the same target twice in a job is scraped once, as Prometheus dedupes by hash */
        bool dup = false;
        for (size_t k = 0; k < p->ntargets && !dup; k++)
            dup = p->targets[k]->def.hash == t->def.hash;
        if (dup)
            target_free(t);
        else
            p->targets[p->ntargets++] = t;
    }
    return 0;
}

static int pool_build(struct scrape *s, struct pool *p, struct scrape_job *job,
                      const struct config_limits *lim, uint64_t *sd_errors, struct vg_err *err)
{
    memset(p, 0, sizeof *p);
    p->job = job;
    if (!(p->dropped_arena = vg_arena_new(4096)))
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < job->ngroups && rc == 0; i++)
        rc = pool_add_group(p, &job->groups[i], NULL, 0, lim, err);
    if (rc == 0 && job->nsd_globs) {
        p->sd_print = scrape_sd_fingerprint(job);
        p->sd_next_ms = mono_us() / 1000 + job->sd_refresh_ms;
        struct scrape_sd_group *sg;
        size_t ns;
        if ((rc = scrape_sd_read_keep(job, s->sd_keep, &sg, &ns, sd_errors, err)) == 0) {
            for (size_t i = 0; i < ns && rc == 0; i++) {
                struct label meta = { VG_STR("__meta_filepath"), vg_str_c(sg[i].filepath) };
                rc = pool_add_group(p, &sg[i].g, &meta, 1, lim, err);
            }
            scrape_sd_groups_free(sg, ns);
        }
    }
    return rc;
}

/* ---------------------------------------------------------------- appending */

static int sink_store(void *ctx, const struct tsdb_batch *b, struct tsdb_append_result *res,
                      struct vg_err *err)
{
    return ingest_store(ctx, "scrape", b, res, err);
}

/* Processes a finished transfer: scrape_append and the status. Runs on a worker. */
static void finish(struct scrape *s, struct target *t)
{
    struct scrape_report rep;
    memset(&rep, 0, sizeof rep);
    rep.duration_s = t->duration_s;
    long status = 0;
    char *ctype = NULL;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(t->easy, CURLINFO_CONTENT_TYPE, &ctype);
    const char *body = NULL;
    if (t->too_big)
        snprintf(rep.error, sizeof rep.error, "body size limit exceeded (limit: %lld bytes)",
                 (long long)t->pool->job->body_size_limit);
    else if (t->result != CURLE_OK)
        snprintf(rep.error, sizeof rep.error, "%s", t->curl_err[0] ? t->curl_err
                                                                   : curl_easy_strerror(t->result));
    else if (status != 200)
        snprintf(rep.error, sizeof rep.error, "server returned HTTP status %ld", status);
    else
        body = t->body.len ? t->body.p : "";
    bool om = ctype && !strncasecmp(ctype, "application/openmetrics-text", 28);
    struct vg_err err;
    int rc = scrape_append(&t->in, body, body ? t->body.len : 0, om, t->start_ms, &t->cache,
                           sink_store, s->v, &rep, &err);
    if (t->too_big && s->m_body_limit)
        metric_add(s->m_body_limit, 1);
    if (rep.over_sample_limit && s->m_sample_limit)
        metric_add(s->m_sample_limit, 1);
    if (rc < 0)
        vg_log(VG_LOG_WARN, "scrape", "cannot store scrape", "job", t->pool->job->name,
               "url", t->def.url, "error", err.msg, NULL);
    pthread_mutex_lock(&s->mu);
    t->health = rep.up ? 1 : 2;
    snprintf(t->last_error, sizeof t->last_error, "%s", rep.error);
    t->last_scrape_ms = t->start_ms;
    t->last_duration_s = t->duration_s;
    pthread_mutex_unlock(&s->mu);
    if (t->body.cap > (1u << 20) && t->body.len < t->body.cap / 4) {
        vg_buf_free(&t->body); /* do not keep a huge buffer for a body that shrank */
        vg_buf_init(&t->body);
    }
    atomic_store(&t->busy, false);
}

static void *worker_main(void *arg)
{
    struct scrape *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->qmu);
        while (!s->qhead && !atomic_load(&s->stop))
            pthread_cond_wait(&s->qcond, &s->qmu);
        struct target *t = s->qhead;
        if (t) {
            s->qhead = t->qnext;
            if (!s->qhead)
                s->qtail = NULL;
        }
        pthread_mutex_unlock(&s->qmu);
        if (!t)
            return NULL; /* stopping with an empty queue */
        finish(s, t);
    }
}

static void queue_push(struct scrape *s, struct target *t)
{
    pthread_mutex_lock(&s->qmu);
    t->qnext = NULL;
    if (s->qtail)
        s->qtail->qnext = t;
    else
        s->qhead = t;
    s->qtail = t;
    pthread_cond_signal(&s->qcond);
    pthread_mutex_unlock(&s->qmu);
}

/* ---------------------------------------------------------------- scrape-io */

static void heap_swap(struct target **h, size_t a, size_t b)
{
    struct target *x = h[a];
    h[a] = h[b];
    h[b] = x;
}

static void heap_push(struct scrape *s, struct target *t)
{
    size_t i = s->nheap++;
    s->heap[i] = t;
    while (i > 0 && s->heap[(i - 1) / 2]->next_ms > s->heap[i]->next_ms) {
        heap_swap(s->heap, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static struct target *heap_pop(struct scrape *s)
{
    struct target *top = s->heap[0];
    s->heap[0] = s->heap[--s->nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->nheap && s->heap[l]->next_ms < s->heap[m]->next_ms)
            m = l;
        if (r < s->nheap && s->heap[r]->next_ms < s->heap[m]->next_ms)
            m = r;
        if (m == i)
            break;
        heap_swap(s->heap, i, m);
        i = m;
    }
    return top;
}

static void start_transfer(struct scrape *s, struct target *t, int64_t now)
{
    t->start_ms = now;
    t->start_us = mono_us();
    t->too_big = false;
    t->curl_err[0] = '\0';
    vg_buf_reset(&t->body);
    if (curl_multi_add_handle(s->multi, t->easy) != CURLM_OK) {
        t->result = CURLE_FAILED_INIT;
        t->duration_s = 0;
        queue_push(s, t);
    }
}

static void *io_main(void *arg)
{
    struct scrape *s = arg;
    int64_t now = now_ms();
    s->nheap = 0;
    for (size_t p = 0; p < s->npools; p++)
        for (size_t i = 0; i < s->pools[p].ntargets; i++) {
            struct target *t = s->pools[p].targets[i];
            t->next_ms = scrape_first_slot(t->def.hash, t->def.interval_ms, now);
            heap_push(s, t);
        }
    while (!atomic_load(&s->stop)) {
        now = now_ms();
        while (s->nheap && s->heap[0]->next_ms <= now) {
            struct target *t = heap_pop(s);
            bool idle = false;
            if (atomic_compare_exchange_strong(&t->busy, &idle, true))
                start_transfer(s, t, now);
            /* the next slot after now (slots missed while busy are skipped) */
            t->next_ms += t->def.interval_ms;
            if (t->next_ms <= now)
                t->next_ms += ((now - t->next_ms) / t->def.interval_ms + 1) * t->def.interval_ms;
            heap_push(s, t);
        }
        int64_t wait = s->nheap ? s->heap[0]->next_ms - now : 1000;
        if (wait > 1000)
            wait = 1000;
        if (wait < 0)
            wait = 0;
        curl_multi_poll(s->multi, NULL, 0, (int)wait, NULL);
        int running;
        curl_multi_perform(s->multi, &running);
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(s->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            struct target *t = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
            t->result = m->data.result;
            curl_multi_remove_handle(s->multi, m->easy_handle);
            t->duration_s = (double)(mono_us() - t->start_us) / 1e6;
            queue_push(s, t);
        }
    }
    /* abandon transfers still running (removing a handle that is not in the multi is a
     * no-op); threads_stop marks their targets idle */
    for (size_t p = 0; p < s->npools; p++)
        for (size_t i = 0; i < s->pools[p].ntargets; i++)
            curl_multi_remove_handle(s->multi, s->pools[p].targets[i]->easy);
    return NULL;
}

/* Starts scrape-io and the workers over the current pools. Under reload_mu. */
static int threads_start(struct scrape *s, struct vg_err *err)
{
    size_t total = 0;
    for (size_t p = 0; p < s->npools; p++)
        total += s->pools[p].ntargets;
    vg_free(s->heap);
    s->heap = vg_malloc((total ? total : 1) * sizeof *s->heap);
    if (!s->heap)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    atomic_store(&s->stop, false);
    if (pthread_create(&s->io, NULL, io_main, s) != 0)
        return vg_err_set(err, VG_EINTERNAL, "cannot start the scrape thread");
    pthread_setname_np(s->io, "scrape-io");
    for (int i = 0; i < SCRAPE_WORKERS; i++) {
        if (pthread_create(&s->workers[i], NULL, worker_main, s) != 0) {
            atomic_store(&s->stop, true);
            curl_multi_wakeup(s->multi);
            pthread_join(s->io, NULL);
            pthread_mutex_lock(&s->qmu);
            pthread_cond_broadcast(&s->qcond);
            pthread_mutex_unlock(&s->qmu);
            for (int k = 0; k < i; k++)
                pthread_join(s->workers[k], NULL);
            return vg_err_set(err, VG_EINTERNAL, "cannot start a scrape worker");
        }
        char name[16];
        snprintf(name, sizeof name, "scrape-%d", i);
        pthread_setname_np(s->workers[i], name);
    }
    s->running = true;
    return 0;
}

/* Stops scrape-io, lets the workers drain the queue, joins them. Under reload_mu. */
static void threads_stop(struct scrape *s)
{
    if (!s->running)
        return;
    atomic_store(&s->stop, true);
    curl_multi_wakeup(s->multi);
    pthread_join(s->io, NULL);
    pthread_mutex_lock(&s->qmu);
    pthread_cond_broadcast(&s->qcond);
    pthread_mutex_unlock(&s->qmu);
    for (int i = 0; i < SCRAPE_WORKERS; i++)
        pthread_join(s->workers[i], NULL);
    /* the workers emptied the queue; transfers io abandoned left their targets busy */
    for (size_t p = 0; p < s->npools; p++)
        for (size_t i = 0; i < s->pools[p].ntargets; i++)
            atomic_store(&s->pools[p].targets[i]->busy, false);
    s->running = false;
}

/* ---------------------------------------------------------------- config changes */

static void target_gone(struct scrape *s, struct target *t, int64_t ts)
{
    struct vg_err err;
    /* A marker at the last scrape's own millisecond would be a duplicate sample and lost. */
    if (ts <= t->last_scrape_ms)
        ts = t->last_scrape_ms + 1;
    if (t->health != 0 &&
        scrape_append_gone(&t->in, ts, &t->cache, sink_store, s->v, &err) < 0)
        vg_log(VG_LOG_WARN, "scrape", "cannot write staleness markers", "url", t->def.url,
               "error", err.msg, NULL);
}

/* Builds the pools of every job of c into *out. */
static int build_pools(struct scrape *s, struct scrape_config *c, struct pool **out,
                       struct vg_err *err)
{
    struct pool *np = vg_calloc(c->njobs ? c->njobs : 1, sizeof *np);
    if (!np)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    int rc = 0;
    size_t built = 0;
    uint64_t sd_errors = 0;
    for (; built < c->njobs && rc == 0; built++) {
        uint64_t e = 0;
        rc = pool_build(s, &np[built], &c->jobs[built], &s->v->cfg->limits, &e, err);
        sd_errors += e;
    }
    if (sd_errors && s->m_sd_errors)
        metric_add(s->m_sd_errors, (double)sd_errors);
    if (rc == 0)
        scrape_sd_keep_prune(s->sd_keep); /* files no job matches any more */
    if (rc < 0) {
        for (size_t i = 0; i < built; i++)
            pool_free_contents(&np[i]);
        vg_free(np);
        return rc;
    }
    *out = np;
    return 0;
}

/* Installs np (built from c) in place of the running pools: targets with the same job
 * and hash carry their cache and status over, the others get staleness markers. The
 * old pools are freed, and the old config when c replaces it. Under reload_mu, with the
 * threads stopped. */
static void install_pools(struct scrape *s, struct pool *np, struct scrape_config *c)
{
    int64_t ts = now_ms();
    for (size_t op = 0; op < s->npools; op++) {
        struct pool *o = &s->pools[op];
        for (size_t i = 0; i < o->ntargets; i++) {
            struct target *ot = o->targets[i], *nt = NULL;
            for (size_t p = 0; p < c->njobs && !nt; p++) {
                if (strcmp(np[p].job->name, o->job->name) != 0)
                    continue;
                for (size_t k = 0; k < np[p].ntargets && !nt; k++)
                    if (np[p].targets[k]->def.hash == ot->def.hash)
                        nt = np[p].targets[k];
            }
            if (!nt) {
                target_gone(s, ot, ts);
                continue;
            }
            nt->cache = ot->cache;
            memset(&ot->cache, 0, sizeof ot->cache);
            nt->health = ot->health;
            memcpy(nt->last_error, ot->last_error, sizeof nt->last_error);
            nt->last_scrape_ms = ot->last_scrape_ms;
            nt->last_duration_s = ot->last_duration_s;
        }
    }
    pthread_mutex_lock(&s->mu);
    struct pool *old = s->pools;
    size_t nold = s->npools;
    struct scrape_config *oldc = s->cfg;
    s->pools = np;
    s->npools = c->njobs;
    s->cfg = c;
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < nold; i++)
        pool_free_contents(&old[i]);
    vg_free(old);
    if (oldc != c) {
        scrape_config_free(oldc);
        s->cfg_gen++;
    }
}

/* Wakes scrape-sd. A full pipe already holds a wake-up, so a failed write is fine. */
static void sd_wake(struct scrape *s)
{
    if (s->sd_wake[1] >= 0)
        (void)!write(s->sd_wake[1], "", 1);
}

int scrape_apply(struct scrape *s, const struct config *cfg, struct vg_err *err)
{
    struct scrape_config *c;
    int rc = scrape_config_parse(cfg, &c, err);
    if (rc < 0)
        return rc;
    struct pool *np;
    if ((rc = build_pools(s, c, &np, err)) < 0) {
        scrape_config_free(c);
        return rc;
    }
    pthread_mutex_lock(&s->reload_mu);
    bool was = s->running;
    threads_stop(s);
    install_pools(s, np, c);
    if (was)
        rc = threads_start(s, err);
    pthread_mutex_unlock(&s->reload_mu);
    sd_wake(s); /* new globs to watch, new refresh deadlines */
    return rc;
}

int scrape_reload(struct scrape *s, struct vg_err *err)
{
    const struct config *cfg = s->boot_cfg;
    struct config *fresh = NULL;
    int rc = 0;
    if (cfg->source && cfg->source[0] != '<') {
        if (!(fresh = config_load_file(cfg->source, err)))
            rc = err->code;
        cfg = fresh;
    }
    if (rc == 0)
        rc = scrape_apply(s, cfg, err);
    config_free(fresh);
    if (rc < 0) {
        vg_log(VG_LOG_ERROR, "scrape", "reload failed; keeping the running targets", "error",
               err->msg, NULL);
        return rc;
    }
    size_t n = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t p = 0; p < s->npools; p++)
        n += s->pools[p].ntargets;
    pthread_mutex_unlock(&s->mu);
    char nt[24];
    snprintf(nt, sizeof nt, "%zu", n);
    vg_log(VG_LOG_INFO, "scrape", "scrape config reloaded", "targets", nt, NULL);
    return 0;
}

/* What scrape-sd does after a wake-up, under reload_mu: after a new config, watches
 * that config's directories; re-reads the jobs whose refresh_interval is due (every job
 * when check_all: after a watch event or a new config), watching directories that
 * appeared since; when a fingerprint differs, rebuilds the pools from the same parsed
 * config (unchanged targets keep their state). Returns the milliseconds until the next
 * refresh is due, -1 for none. */
static int sd_sync(struct scrape *s, struct scrape_sd_watch *w, unsigned *gen, bool check_all)
{
    if (*gen != s->cfg_gen) {
        scrape_sd_watch_clear(w);
        for (size_t p = 0; p < s->npools; p++)
            if (s->pools[p].job->nsd_globs)
                scrape_sd_watch_add(w, s->pools[p].job);
        *gen = s->cfg_gen;
        check_all = true; /* a change between the reload's read and the new watches */
    }
    int64_t now = mono_us() / 1000;
    bool changed = false;
    for (size_t p = 0; p < s->npools; p++) {
        struct pool *pl = &s->pools[p];
        if (!pl->job->nsd_globs || (!check_all && pl->sd_next_ms > now))
            continue;
        scrape_sd_watch_add(w, pl->job);
        pl->sd_next_ms = now + pl->job->sd_refresh_ms;
        changed = changed || scrape_sd_fingerprint(pl->job) != pl->sd_print;
    }
    struct pool *np;
    struct vg_err err;
    if (changed && !atomic_load(&s->sd_stop) && build_pools(s, s->cfg, &np, &err) == 0) {
        bool was = s->running;
        threads_stop(s);
        install_pools(s, np, s->cfg);
        vg_log(VG_LOG_INFO, "scrape", "file_sd targets changed", NULL);
        if (was && threads_start(s, &err) < 0)
            vg_log(VG_LOG_ERROR, "scrape", "cannot restart scraping", "error", err.msg, NULL);
    }
    int64_t next = INT64_MAX;
    for (size_t p = 0; p < s->npools; p++)
        if (s->pools[p].job->nsd_globs && s->pools[p].sd_next_ms < next)
            next = s->pools[p].sd_next_ms;
    if (next == INT64_MAX)
        return -1;
    next -= mono_us() / 1000;
    return next < 0 ? 0 : next > (int64_t)3600 * 1000 ? 3600 * 1000 : (int)next;
}

/* scrape-sd: sleeps in poll on the wake pipe and the directory watch until a refresh is
 * due, as Prometheus's file discovery waits on its watcher and its refresh ticker; no
 * polling in between. A watch event is followed by a short pause so a writer's close,
 * rename and the like arrive as one change. */
static void *sd_main(void *arg)
{
    struct scrape *s = arg;
    struct vg_err err;
    struct scrape_sd_watch *w = scrape_sd_watch_new(&err);
    if (!w) {
        vg_log(VG_LOG_ERROR, "scrape", "file_sd_configs will not be re-read", "error",
               err.msg, NULL);
        return NULL;
    }
    unsigned gen = 0;
    bool check_all = false;
    while (!atomic_load(&s->sd_stop)) {
        pthread_mutex_lock(&s->reload_mu);
        int wait = sd_sync(s, w, &gen, check_all);
        pthread_mutex_unlock(&s->reload_mu);
        check_all = false;
        struct pollfd pf[2] = { { .fd = s->sd_wake[0], .events = POLLIN },
                                { .fd = scrape_sd_watch_fd(w), .events = POLLIN } };
        if (poll(pf, 2, wait) <= 0)
            continue; /* a refresh is due (or EINTR) */
        char drain[64];
        while (read(s->sd_wake[0], drain, sizeof drain) > 0)
            ;
        check_all = scrape_sd_watch_drain(w);
        if (check_all) {
            struct pollfd wf = { .fd = s->sd_wake[0], .events = POLLIN };
            poll(&wf, 1, SCRAPE_SD_SETTLE_MS);
            scrape_sd_watch_drain(w);
        }
    }
    scrape_sd_watch_free(w);
    return NULL;
}

/* ---------------------------------------------------------------- lifecycle */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static void scrape_free(struct scrape *s)
{
    for (size_t i = 0; i < s->npools; i++)
        pool_free_contents(&s->pools[i]);
    vg_free(s->pools);
    scrape_config_free(s->cfg);
    if (s->multi)
        curl_multi_cleanup(s->multi);
    vg_free(s->heap);
    scrape_sd_keep_free(s->sd_keep);
    pthread_mutex_destroy(&s->reload_mu);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->qmu);
    pthread_cond_destroy(&s->qcond);
    for (int i = 0; i < 2; i++)
        if (s->sd_wake[i] >= 0)
            close(s->sd_wake[i]);
    vg_free(s);
}

struct scrape *scrape_start(struct vigil *v, const struct config *cfg, struct vg_err *err)
{
    pthread_once(&curl_once, curl_init_once);
    struct scrape *s = vg_calloc(1, sizeof *s);
    if (!s) {
        vg_err_set(err, VG_ENOMEM, "out of memory");
        return NULL;
    }
    s->v = v;
    s->boot_cfg = cfg;
    pthread_mutex_init(&s->reload_mu, NULL);
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->qmu, NULL);
    pthread_cond_init(&s->qcond, NULL);
    s->sd_wake[0] = s->sd_wake[1] = -1;
    if (pipe2(s->sd_wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        s->sd_wake[0] = s->sd_wake[1] = -1;
        vg_err_set(err, VG_EINTERNAL, "cannot create the file_sd wake pipe");
        scrape_free(s);
        return NULL;
    }
    if (!(s->multi = curl_multi_init())) {
        vg_err_set(err, VG_ENOMEM, "curl_multi_init failed");
        scrape_free(s);
        return NULL;
    }
    curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
    if (!(s->sd_keep = scrape_sd_keep_new())) {
        vg_err_set(err, VG_ENOMEM, "out of memory");
        scrape_free(s);
        return NULL;
    }
    if (v->metrics) {
        s->m_body_limit = metrics_family(
            v->metrics, "prometheus_target_scrapes_exceeded_body_size_limit_total",
            "Scrapes that hit the body size limit (the job's, global's or the built-in "
            "256 MiB).", METRIC_COUNTER, NULL, 0, NULL, 0);
        s->m_sample_limit = metrics_family(
            v->metrics, "prometheus_target_scrapes_exceeded_sample_limit_total",
            "Scrapes that hit the sample limit and were rejected.", METRIC_COUNTER, NULL, 0,
            NULL, 0);
        s->m_sd_errors = metrics_family(
            v->metrics, "prometheus_sd_file_read_errors_total",
            "file_sd files that could not be read or parsed (their previous targets are "
            "kept).", METRIC_COUNTER, NULL, 0, NULL, 0);
    }
    struct scrape_config *c;
    struct pool *np;
    if (scrape_config_parse(cfg, &c, err) < 0) {
        scrape_free(s);
        return NULL;
    }
    if (build_pools(s, c, &np, err) < 0) {
        scrape_config_free(c);
        scrape_free(s);
        return NULL;
    }
    install_pools(s, np, c);
    if (threads_start(s, err) < 0) {
        scrape_free(s);
        return NULL;
    }
    if (pthread_create(&s->sd, NULL, sd_main, s) != 0) {
        threads_stop(s);
        scrape_free(s);
        vg_err_set(err, VG_EINTERNAL, "cannot start the file_sd thread");
        return NULL;
    }
    pthread_setname_np(s->sd, "scrape-sd");
    s->sd_running = true;
    return s;
}

void scrape_stop(struct scrape *s)
{
    if (!s)
        return;
    if (s->sd_running) {
        atomic_store(&s->sd_stop, true);
        sd_wake(s);
        pthread_join(s->sd, NULL);
    }
    pthread_mutex_lock(&s->reload_mu);
    threads_stop(s);
    int64_t ts = now_ms();
    for (size_t p = 0; p < s->npools; p++)
        for (size_t i = 0; i < s->pools[p].ntargets; i++)
            target_gone(s, s->pools[p].targets[i], ts);
    pthread_mutex_unlock(&s->reload_mu);
    scrape_free(s);
}

int scrape_run_once(struct scrape *s, struct vg_err *err)
{
    (void)err;
    pthread_mutex_lock(&s->reload_mu);
    for (size_t p = 0; p < s->npools; p++)
        for (size_t i = 0; i < s->pools[p].ntargets; i++) {
            struct target *t = s->pools[p].targets[i];
            bool idle = false;
            if (!atomic_compare_exchange_strong(&t->busy, &idle, true))
                continue; /* being scraped by scrape-io right now */
            t->start_ms = now_ms();
            t->start_us = mono_us();
            t->too_big = false;
            t->curl_err[0] = '\0';
            vg_buf_reset(&t->body);
            t->result = curl_easy_perform(t->easy);
            t->duration_s = (double)(mono_us() - t->start_us) / 1e6;
            finish(s, t);
        }
    pthread_mutex_unlock(&s->reload_mu);
    return 0;
}

static void status_of(const struct pool *p, const struct target *t,
                      const struct scrape_target_def *d, struct scrape_target_status *st)
{
    static const char *const health[] = { "unknown", "up", "down" };
    memset(st, 0, sizeof *st);
    st->pool = p->job->name;
    st->discovered = d->discovered;
    st->ndiscovered = d->ndiscovered;
    st->dropped = d->dropped;
    st->interval_ms = t ? d->interval_ms : p->job->interval_ms;
    st->timeout_ms = t ? d->timeout_ms : p->job->timeout_ms;
    st->last_error = "";
    st->health = "unknown";
    if (!t)
        return;
    st->labels = d->labels;
    st->nlabels = d->nlabels;
    st->url = d->url;
    st->health = health[t->health];
    st->last_error = t->last_error;
    st->last_scrape_ms = t->last_scrape_ms;
    st->last_duration_s = t->last_duration_s;
    st->meta = t->cache.meta;
    st->nmeta = t->cache.nmeta;
}

void scrape_each_target(struct scrape *s,
                        void (*fn)(void *ctx, const struct scrape_target_status *st), void *ctx)
{
    pthread_mutex_lock(&s->mu);
    struct scrape_target_status st;
    for (size_t p = 0; p < s->npools; p++) {
        const struct pool *pl = &s->pools[p];
        for (size_t i = 0; i < pl->ntargets; i++) {
            status_of(pl, pl->targets[i], &pl->targets[i]->def, &st);
            fn(ctx, &st);
        }
    }
    for (size_t p = 0; p < s->npools; p++) {
        const struct pool *pl = &s->pools[p];
        for (size_t i = 0; i < pl->ndropped; i++) {
            status_of(pl, NULL, &pl->dropped[i], &st);
            fn(ctx, &st);
        }
    }
    pthread_mutex_unlock(&s->mu);
}

/* ---------------------------------------------------------------- module */

static int mod_check(const struct config *cfg, struct vg_err *err)
{
    struct scrape_config *c;
    int rc = scrape_config_parse(cfg, &c, err);
    scrape_config_free(c);
    return rc;
}

static int mod_init(struct vigil *v, struct vg_err *err)
{
    struct scrape *s = scrape_start(v, v->cfg, err);
    if (!s)
        return err->code;
    v->scrape_state = s;
    return 0;
}

static void mod_free(struct vigil *v)
{
    scrape_stop(v->scrape_state);
    v->scrape_state = NULL;
}

const struct vigil_module mod_scrape = {
    .name = "scrape",
    .check = mod_check,
    .init = mod_init,
    .free = mod_free,
};
