/* rules: see rules.h. This file loads settings and rule files into a "generation"
 * (the groups running together), runs one thread per group, swaps generations on
 * reload (carrying the state of unchanged rules over) and copies state out for the
 * API. Evaluating a rule is rules_eval.c; saving state is rules_state.c.
 *
 * Group timing (Prometheus's Group.run and EvalTimestamp): offset = hash(file, name)
 * mod interval; the group evaluates at every t with t mod interval == offset, starting
 * at the first such t after it starts. When the thread wakes late by k whole intervals
 * (a slow evaluation, a stopped process), those k slots are counted as missed
 * iterations and evaluation resumes at the latest slot. */
#include "rules.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_log.h"
#include "../config.h"
#include "../config_node.h"
#include "../vigil.h"
#include "rule_template.h"
#include "rules_int.h"

#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_INTERVAL_MS 60000

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *rules_alert_state_name(enum rules_alert_state s)
{
    return s == RULES_FIRING ? "firing" : s == RULES_PENDING ? "pending" : "inactive";
}

const char *rules_health_name(enum rules_health h)
{
    return h == RULES_OK ? "ok" : h == RULES_ERR ? "err" : "unknown";
}

uint64_t rules_group_hash(const char *file, const char *name)
{
    struct label ls[2] = { { VG_STR("file"), vg_str_c(file) }, { VG_STR("name"), vg_str_c(name) } };
    return labels_hash(ls, 2);
}

int64_t rules_slot(uint64_t hash, int64_t interval_ms, int64_t now)
{
    int64_t offset = (int64_t)(hash % (uint64_t)interval_ms);
    int64_t adj = now - offset;
    int64_t base = adj - (((adj % interval_ms) + interval_ms) % interval_ms);
    return base + offset;
}

/* ---- settings ---- */

/* Prometheus's global keys; only evaluation_interval, rule_query_offset and
 * external_labels matter here, the rest are accepted so a prometheus.yml carries over. */
static const char *const global_keys[] = {
    "scrape_interval", "scrape_timeout", "scrape_protocols", "evaluation_interval",
    "rule_query_offset", "external_labels", "query_log_file", "scrape_failure_log_file",
    "body_size_limit", "sample_limit", "label_limit", "label_name_length_limit",
    "label_value_length_limit", "target_limit", "keep_dropped_targets",
    "metric_name_validation_scheme", "metric_name_escaping_scheme",
    "always_scrape_classic_histograms", "convert_classic_histograms_to_nhcb",
    "native_histogram_bucket_limit", "native_histogram_min_bucket_factor", NULL,
};

/* The directory of the config file, or "." for the embedded defaults. */
static const char *config_dir(const struct config *cfg, struct vg_arena *a)
{
    const char *src = cfg ? cfg->source : NULL;
    if (!src || src[0] == '<')
        return ".";
    const char *slash = strrchr(src, '/');
    if (!slash)
        return ".";
    if (slash == src)
        return "/";
    return vg_arena_strndup(a, src, (size_t)(slash - src));
}

/* server.external_url without trailing slashes or, as Prometheus's default,
 * http://<hostname>:<port of server.http_addr>; in the arena, NULL on OOM. */
static const char *external_url(const struct config *cfg, struct vg_arena *a)
{
    char buf[1024];
    if (cfg && cfg->external_url && *cfg->external_url) {
        size_t n = strlen(cfg->external_url);
        while (n > 0 && cfg->external_url[n - 1] == '/')
            n--;
        return vg_arena_strndup(a, cfg->external_url, n);
    }
    char host[256] = "localhost";
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    const char *addr = cfg && cfg->http_addr ? cfg->http_addr : "";
    const char *colon = strrchr(addr, ':');
    int n = snprintf(buf, sizeof buf, "http://%s%s", host, colon ? colon : "");
    return vg_arena_strndup(a, buf, n < 0 ? 0 : (size_t)n >= sizeof buf ? sizeof buf - 1 : (size_t)n);
}

static int read_settings(const struct config *cfg, struct vg_arena *a, struct rules_settings *s,
                         struct vg_err *err)
{
    memset(s, 0, sizeof *s);
    s->interval_ms = DEFAULT_INTERVAL_MS;
    s->base_dir = config_dir(cfg, a);
    s->external_url = external_url(cfg, a);
    if (!s->base_dir || !s->external_url)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    const struct config_node *g = config_block(cfg, "global");
    if (g && !(g->type == CONFIG_NODE_SCALAR && !*g->value)) {
        if (config_node_check_keys(g, "global", global_keys, err) < 0 ||
            config_node_duration(g, "global", "evaluation_interval", 1, &s->interval_ms, err) < 0 ||
            config_node_duration(g, "global", "rule_query_offset", 0, &s->query_offset_ms, err) < 0)
            return err->code;
        const struct config_node *el = config_node_get(g, "external_labels");
        if (el && !(el->type == CONFIG_NODE_SCALAR && !*el->value)) {
            if (config_node_check_strmap(el, "global.external_labels", err) < 0)
                return err->code;
            s->external = vg_arena_calloc(a, (el->n ? el->n : 1) * sizeof *s->external);
            if (!s->external)
                return vg_err_set(err, VG_ENOMEM, "out of memory");
            for (size_t i = 0; i < el->n; i++) {
                if (!rulefile_valid_label_name(el->keys[i]))
                    return config_node_err(err, el->items[i],
                                           "global.external_labels: invalid label name \"%s\"",
                                           el->keys[i]);
                if (!*el->items[i]->value)
                    continue; /* an empty value means no label, as in Prometheus */
                s->external[s->nexternal++] = (struct label){ vg_str_c(el->keys[i]),
                                                              vg_str_c(el->items[i]->value) };
            }
            labels_sort(s->external, s->nexternal);
        }
    }
    const struct config_node *rf = config_block(cfg, "rule_files");
    if (!rf || (rf->type == CONFIG_NODE_SCALAR && !*rf->value))
        return 0;
    if (rf->type != CONFIG_NODE_SEQ)
        return config_node_err(err, rf, "rule_files: expected a list of file globs");
    s->globs = vg_arena_calloc(a, (rf->n ? rf->n : 1) * sizeof *s->globs);
    if (!s->globs)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < rf->n; i++) {
        if (rf->items[i]->type != CONFIG_NODE_SCALAR || !*rf->items[i]->value)
            return config_node_err(err, rf->items[i], "rule_files[%zu]: expected a file glob", i);
        s->globs[s->nglobs++] = rf->items[i]->value;
    }
    return 0;
}

/* Copies what a settings struct points into cfg into the arena (the generation outlives
 * a config loaded for a reload). */
static int own_settings(struct vg_arena *a, struct rules_settings *s, struct vg_err *err)
{
    for (size_t i = 0; i < s->nexternal; i++) {
        char *n = vg_arena_strndup(a, s->external[i].name.p, s->external[i].name.len);
        char *v = vg_arena_strndup(a, s->external[i].value.p, s->external[i].value.len);
        if (!n || !v)
            return vg_err_set(err, VG_ENOMEM, "out of memory");
        s->external[i] = (struct label){ { n, s->external[i].name.len }, { v, s->external[i].value.len } };
    }
    for (size_t i = 0; i < s->nglobs; i++)
        if (!(s->globs[i] = vg_arena_strndup(a, s->globs[i], strlen(s->globs[i]))))
            return vg_err_set(err, VG_ENOMEM, "out of memory");
    return 0;
}

/* ---- loading rule files ---- */

static void free_files(struct rule_file **files, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rulefile_free(files[i]);
    vg_free(files);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Expands the globs (relative to base_dir), parses every file once. */
static int load_files(const struct rules_settings *s, struct rule_file ***out, size_t *nout,
                      struct vg_err *err)
{
    *out = NULL;
    *nout = 0;
    char **paths = NULL;
    size_t np = 0, cap = 0;
    int rc = 0;
    for (size_t i = 0; i < s->nglobs && rc == 0; i++) {
        char pat[PATH_MAX];
        if (snprintf(pat, sizeof pat, "%s%s%s", s->globs[i][0] == '/' ? "" : s->base_dir,
                     s->globs[i][0] == '/' ? "" : "/", s->globs[i]) >= (int)sizeof pat) {
            rc = vg_err_set(err, VG_EINVAL, "rule_files: path too long: %s", s->globs[i]);
            break;
        }
        glob_t gl;
        int gr = glob(pat, 0, NULL, &gl);
        if (gr == GLOB_NOMATCH)
            continue;
        if (gr != 0) {
            rc = vg_err_set(err, gr == GLOB_NOSPACE ? VG_ENOMEM : VG_EIO,
                            "rule_files: cannot expand \"%s\"", s->globs[i]);
            globfree(&gl);
            break;
        }
        for (size_t k = 0; k < gl.gl_pathc && rc == 0; k++) {
            bool dup = false;
            for (size_t j = 0; j < np && !dup; j++)
                dup = !strcmp(paths[j], gl.gl_pathv[k]);
            if (dup)
                continue;
            if (np == cap) {
                cap = cap ? cap * 2 : 8;
                char **nv = vg_realloc(paths, cap * sizeof *nv);
                if (!nv) {
                    rc = vg_err_set(err, VG_ENOMEM, "out of memory");
                    break;
                }
                paths = nv;
            }
            if (!(paths[np] = vg_strdup(gl.gl_pathv[k])))
                rc = vg_err_set(err, VG_ENOMEM, "out of memory");
            else
                np++;
        }
        globfree(&gl);
    }
    struct rule_file **files = NULL;
    if (rc == 0 && np) {
        qsort(paths, np, sizeof *paths, cmp_str);
        files = vg_calloc(np, sizeof *files);
        if (!files)
            rc = vg_err_set(err, VG_ENOMEM, "out of memory");
        for (size_t i = 0; rc == 0 && i < np; i++) {
            if ((rc = rulefile_load(paths[i], &files[i], NULL, err)) == 0)
                (*nout)++;
        }
    }
    for (size_t i = 0; i < np; i++)
        vg_free(paths[i]);
    vg_free(paths);
    if (rc < 0) {
        free_files(files, np);
        *nout = 0;
        return rc;
    }
    *out = files;
    return 0;
}

int rules_check_config(const struct config *cfg, struct vg_err *err)
{
    struct vg_arena *a = vg_arena_new(1024);
    if (!a)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    struct rules_settings s;
    struct rule_file **files = NULL;
    size_t n = 0;
    int rc = read_settings(cfg, a, &s, err);
    if (rc == 0)
        rc = load_files(&s, &files, &n, err);
    free_files(files, n);
    vg_arena_free(a);
    return rc;
}

/* ---- generations ---- */

static int cmp_group(const void *x, const void *y)
{
    const struct group_rt *a = *(struct group_rt *const *)x, *b = *(struct group_rt *const *)y;
    int c = strcmp(a->def->file, b->def->file);
    return c ? c : strcmp(a->def->name, b->def->name);
}

static void gen_free(struct generation *gen)
{
    if (!gen)
        return;
    for (size_t i = 0; i < gen->ngroups; i++) {
        struct group_rt *g = gen->groups[i];
        for (size_t k = 0; k < g->nrules; k++)
            rules_rule_clear(&g->rules[k]);
        pthread_mutex_destroy(&g->mu);
    }
    free_files(gen->files, gen->nfiles);
    pthread_mutex_destroy(&gen->stop_mu);
    pthread_cond_destroy(&gen->stop_cv);
    vg_arena_free(gen->arena);
}

/* The labels of rule rr: group labels then the rule's (which win), with the rule's
 * templates beside them. */
static int rule_labels(struct vg_arena *a, const struct rule_group_def *gd, struct rule_rt *rr)
{
    const struct rule_def *d = rr->def;
    size_t cap = gd->nlabels + d->nlabels;
    rr->labels = vg_arena_calloc(a, (cap ? cap : 1) * sizeof *rr->labels);
    rr->tmpl = vg_arena_calloc(a, (cap ? cap : 1) * sizeof *rr->tmpl);
    if (!rr->labels || !rr->tmpl)
        return VG_ENOMEM;
    for (size_t i = 0; i < gd->nlabels; i++)
        if (!labels_get(d->labels, d->nlabels, gd->labels[i].name.p).p)
            rr->labels[rr->nlabels++] = gd->labels[i];
    for (size_t i = 0; i < d->nlabels; i++) {
        rr->tmpl[rr->nlabels] = d->label_tmpl ? d->label_tmpl[i] : NULL;
        rr->labels[rr->nlabels++] = d->labels[i];
    }
    /* keep templates aligned while sorting: a small insertion sort over both arrays */
    for (size_t i = 1; i < rr->nlabels; i++)
        for (size_t k = i; k > 0 && vg_str_cmp(rr->labels[k - 1].name, rr->labels[k].name) > 0; k--) {
            struct label tl = rr->labels[k];
            rr->labels[k] = rr->labels[k - 1];
            rr->labels[k - 1] = tl;
            struct rule_template *tt = rr->tmpl[k];
            rr->tmpl[k] = rr->tmpl[k - 1];
            rr->tmpl[k - 1] = tt;
        }
    return 0;
}

/* A generation from settings and parsed files (which it takes over, even on failure). */
static struct generation *gen_new(struct rules *r, struct vg_arena *a, const struct rules_settings *s,
                                  struct rule_file **files, size_t nfiles, struct vg_err *err)
{
    struct generation *gen = vg_arena_calloc(a, sizeof *gen);
    if (!gen) {
        free_files(files, nfiles);
        vg_arena_free(a);
        vg_err_set(err, VG_ENOMEM, "out of memory");
        return NULL;
    }
    gen->arena = a;
    gen->set = *s;
    gen->files = files;
    gen->nfiles = nfiles;
    pthread_mutex_init(&gen->stop_mu, NULL);
    pthread_cond_init(&gen->stop_cv, NULL);
    size_t ng = 0;
    for (size_t i = 0; i < nfiles; i++)
        ng += files[i]->ngroups;
    gen->groups = vg_arena_calloc(a, (ng ? ng : 1) * sizeof *gen->groups);
    if (!gen->groups)
        goto oom;
    for (size_t fi = 0; fi < nfiles; fi++) {
        for (size_t gi = 0; gi < files[fi]->ngroups; gi++) {
            const struct rule_group_def *gd = &files[fi]->groups[gi];
            struct group_rt *g = vg_arena_calloc(a, sizeof *g);
            if (!g)
                goto oom;
            g->r = r;
            g->gen = gen;
            g->def = gd;
            g->interval_ms = gd->interval_ms ? gd->interval_ms : s->interval_ms;
            g->offset_ms = gd->query_offset_ms ? gd->query_offset_ms : s->query_offset_ms;
            g->hash = rules_group_hash(gd->file, gd->name);
            size_t kl = strlen(gd->file) + strlen(gd->name) + 2;
            g->key = vg_arena_alloc(a, kl);
            g->rules = vg_arena_calloc(a, (gd->nrules ? gd->nrules : 1) * sizeof *g->rules);
            if (!g->key || !g->rules)
                goto oom;
            snprintf(g->key, kl, "%s;%s", gd->file, gd->name);
            pthread_mutex_init(&g->mu, NULL);
            gen->groups[gen->ngroups++] = g;
            g->nrules = gd->nrules;
            for (size_t k = 0; k < gd->nrules; k++) {
                g->rules[k].def = &gd->rules[k];
                if (rule_labels(a, gd, &g->rules[k]) < 0)
                    goto oom;
            }
        }
    }
    qsort(gen->groups, gen->ngroups, sizeof *gen->groups, cmp_group);
    return gen;
oom:
    gen_free(gen);
    vg_err_set(err, VG_ENOMEM, "out of memory");
    return NULL;
}

/* ---- threads ---- */

static void eval_group(struct group_rt *g, int64_t ts)
{
    struct rules *r = g->r;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t i = 0; i < g->nrules; i++)
        rules_eval_rule(g, &g->rules[i], ts);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    pthread_mutex_lock(&g->mu);
    g->last_eval = ts;
    g->eval_seconds = secs;
    bool dirty = g->dirty;
    pthread_mutex_unlock(&g->mu);
    rules_metric_add(r, RM_ITERATIONS, g->key, 1);
    rules_metric_set(r, RM_LAST_TS, g->key, (double)ts / 1000.0);
    rules_metric_set(r, RM_LAST_DUR, g->key, secs);
    if (dirty)
        rules_state_save(r, g->gen);
}

int64_t rules_group_catch_up(struct group_rt *g, int64_t next, int64_t now)
{
    int64_t missed = now >= next ? (now - next) / g->interval_ms : 0;
    if (missed > 0) {
        /* Prometheus counts missed slots in both iterations_total and _missed_total */
        rules_metric_add(g->r, RM_MISSED, g->key, (double)missed);
        rules_metric_add(g->r, RM_ITERATIONS, g->key, (double)missed);
        vg_log(VG_LOG_WARN, "rules", "rule group evaluation missed its slots", "group", g->key,
               NULL);
    }
    return next + missed * g->interval_ms;
}

static void *group_thread(void *arg)
{
    struct group_rt *g = arg;
    struct generation *gen = g->gen;
    int64_t iv = g->interval_ms;
    int64_t next = rules_slot(g->hash, iv, now_ms()) + iv;
    for (;;) {
        pthread_mutex_lock(&gen->stop_mu);
        while (!gen->stop) {
            int64_t now = now_ms();
            if (now >= next)
                break;
            struct timespec dl = { .tv_sec = (time_t)(next / 1000), .tv_nsec = (long)(next % 1000) * 1000000 };
            pthread_cond_timedwait(&gen->stop_cv, &gen->stop_mu, &dl);
        }
        bool stop = gen->stop;
        pthread_mutex_unlock(&gen->stop_mu);
        if (stop)
            break;
        next = rules_group_catch_up(g, next, now_ms());
        eval_group(g, next);
        next += iv;
    }
    return NULL;
}

static void gen_start(struct rules *r, struct generation *gen)
{
    for (size_t i = 0; i < gen->ngroups; i++) {
        struct group_rt *g = gen->groups[i];
        rules_metric_set(r, RM_INTERVAL, g->key, (double)g->interval_ms / 1000.0);
        rules_metric_set(r, RM_RULES, g->key, (double)g->nrules);
        if (r->o.manual)
            continue;
        if (pthread_create(&g->thread, NULL, group_thread, g) != 0) {
            vg_log(VG_LOG_ERROR, "rules", "cannot start a group thread", "group", g->key, NULL);
            continue;
        }
        pthread_setname_np(g->thread, "rules-eval");
        g->started = true;
    }
}

static void gen_stop(struct generation *gen)
{
    pthread_mutex_lock(&gen->stop_mu);
    gen->stop = true;
    pthread_cond_broadcast(&gen->stop_cv);
    pthread_mutex_unlock(&gen->stop_mu);
    for (size_t i = 0; i < gen->ngroups; i++)
        if (gen->groups[i]->started) {
            pthread_join(gen->groups[i]->thread, NULL);
            gen->groups[i]->started = false;
        }
}

/* Moves the state of each rule of old that has an equal in new (same file, group,
 * kind, name and labels) to it. Both generations are stopped. */
static void carry_state(struct generation *old, struct generation *new)
{
    for (size_t ni = 0; ni < new->ngroups; ni++) {
        struct group_rt *ng = new->groups[ni];
        struct group_rt *og = NULL;
        for (size_t oi = 0; oi < old->ngroups && !og; oi++)
            if (!strcmp(old->groups[oi]->def->file, ng->def->file) &&
                !strcmp(old->groups[oi]->def->name, ng->def->name))
                og = old->groups[oi];
        if (!og)
            continue;
        ng->last_eval = og->last_eval;
        ng->eval_seconds = og->eval_seconds;
        for (size_t k = 0; k < ng->nrules; k++) {
            struct rule_rt *nr = &ng->rules[k];
            for (size_t j = 0; j < og->nrules; j++) {
                struct rule_rt *or = &og->rules[j];
                if (or->used || or->def->kind != nr->def->kind || strcmp(or->def->name, nr->def->name) != 0 ||
                    labels_cmp(or->labels, or->nlabels, nr->labels, nr->nlabels))
                    continue;
                or->used = true;
                nr->health = or->health;
                nr->last_error = or->last_error;
                nr->last_eval = or->last_eval;
                nr->eval_seconds = or->eval_seconds;
                nr->alerts = or->alerts;
                nr->nalerts = or->nalerts;
                nr->cap = or->cap;
                nr->prev = or->prev;
                nr->nprev = or->nprev;
                or->last_error = NULL;
                or->alerts = NULL;
                or->nalerts = or->cap = 0;
                or->prev = NULL;
                or->nprev = 0;
                break;
            }
        }
    }
}

/* Settings and files for a new generation; cfg may be a freshly loaded config. */
static struct generation *gen_load(struct rules *r, const struct config *cfg, struct vg_err *err)
{
    struct vg_arena *a = vg_arena_new(4096);
    if (!a) {
        vg_err_set(err, VG_ENOMEM, "out of memory");
        return NULL;
    }
    struct rules_settings s;
    struct rule_file **files = NULL;
    size_t n = 0;
    if (read_settings(cfg, a, &s, err) < 0 || own_settings(a, &s, err) < 0 ||
        load_files(&s, &files, &n, err) < 0) {
        vg_arena_free(a);
        return NULL;
    }
    return gen_new(r, a, &s, files, n, err);
}

/* ---- public ---- */

static const struct {
    const char *name;
    const char *help;
    enum metric_type type;
    bool vigil_only; /* Prometheus has no such metric */
} metric_defs[RM_COUNT] = {
    [RM_EVALS] = { "rule_evaluations_total", "The total number of rule evaluations.", METRIC_COUNTER },
    [RM_FAILURES] = { "rule_evaluation_failures_total", "The total number of rule evaluation failures.", METRIC_COUNTER },
    [RM_MISSED] = { "rule_group_iterations_missed_total", "The total number of rule group evaluations missed due to slow rule group evaluation.", METRIC_COUNTER },
    [RM_ITERATIONS] = { "rule_group_iterations_total", "The total number of scheduled rule group evaluations, whether executed or missed.", METRIC_COUNTER },
    [RM_LAST_TS] = { "rule_group_last_evaluation_timestamp_seconds", "The timestamp of the last rule group evaluation in seconds.", METRIC_GAUGE },
    [RM_LAST_DUR] = { "rule_group_last_duration_seconds", "The duration of the last rule group evaluation.", METRIC_GAUGE },
    [RM_INTERVAL] = { "rule_group_interval_seconds", "The interval of a rule group.", METRIC_GAUGE },
    [RM_RULES] = { "rule_group_rules", "The number of rules.", METRIC_GAUGE },
    /* Prometheus's is a summary without labels; a histogram per group has the same
     * _sum and _count and says more. */
    [RM_EVAL_DURATION] = { "rule_evaluation_duration_seconds", "The duration for a rule to execute.", METRIC_HISTOGRAM },
    [RM_TEMPLATE_ERRORS] = { "rule_template_errors_total", "The total number of alert label and annotation template expansions that failed.", METRIC_COUNTER, true },
};

static void register_metrics(struct rules *r)
{
    if (!r->o.metrics)
        return;
    static const char *const lbl[] = { "rule_group" };
    static const char *const prefixes[2] = { "vigil_", "prometheus_" };
    for (int m = 0; m < RM_COUNT; m++)
        for (int p = 0; p < (metric_defs[m].vigil_only ? 1 : 2); p++) {
            char name[128];
            snprintf(name, sizeof name, "%s%s", prefixes[p], metric_defs[m].name);
            r->fam[m][p] = metrics_family(r->o.metrics, name, metric_defs[m].help,
                                          metric_defs[m].type, lbl, 1, NULL, 0);
        }
}

struct rules *rules_new(const struct rules_opts *o, struct vg_err *err)
{
    struct rules *r = vg_calloc(1, sizeof *r);
    if (!r) {
        vg_err_set(err, VG_ENOMEM, "out of memory");
        return NULL;
    }
    r->o = *o;
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->reload_mu, NULL);
    pthread_mutex_init(&r->state_mu, NULL);
    promql_opts_default(&r->popts);
    if (o->cfg) {
        r->popts.timeout_ms = o->cfg->query_timeout_ms;
        r->popts.max_samples = (uint64_t)o->cfg->query_max_samples;
        r->popts.lookback_ms = o->cfg->query_lookback_delta_ms;
    }
    if (o->state_dir) {
        if (mkdir(o->state_dir, 0755) != 0 && errno != EEXIST) {
            vg_err_set(err, VG_EIO, "%s: cannot create: %s", o->state_dir, strerror(errno));
            goto fail;
        }
        if (snprintf(r->state_path, sizeof r->state_path, "%s/state.json", o->state_dir) >=
            (int)sizeof r->state_path) {
            vg_err_set(err, VG_EINVAL, "%s: path too long", o->state_dir);
            goto fail;
        }
    }
    register_metrics(r);
    r->gen = gen_load(r, o->cfg, err);
    if (!r->gen)
        goto fail;
    rules_state_load(r);
    for (size_t i = 0; i < r->gen->ngroups; i++)
        for (size_t k = 0; k < r->gen->groups[i]->nrules; k++)
            rules_state_claim(r, r->gen->groups[i], &r->gen->groups[i]->rules[k]);
    rules_state_free(r);
    gen_start(r, r->gen);
    size_t nrules = 0;
    for (size_t i = 0; i < r->gen->nfiles; i++)
        nrules += r->gen->files[i]->nrules;
    char ng[32], nr[32];
    snprintf(ng, sizeof ng, "%zu", r->gen->ngroups);
    snprintf(nr, sizeof nr, "%zu", nrules);
    vg_log(VG_LOG_INFO, "rules", "rule groups loaded", "groups", ng, "rules", nr, NULL);
    return r;
fail:
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->reload_mu);
    pthread_mutex_destroy(&r->state_mu);
    vg_free(r);
    return NULL;
}

void rules_free(struct rules *r)
{
    if (!r)
        return;
    gen_stop(r->gen);
    rules_state_save(r, r->gen);
    gen_free(r->gen);
    rules_state_free(r);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->reload_mu);
    pthread_mutex_destroy(&r->state_mu);
    vg_free(r);
}

int rules_reload(struct rules *r, struct vg_err *err)
{
    pthread_mutex_lock(&r->reload_mu);
    const struct config *cfg = r->o.cfg;
    struct config *fresh = NULL;
    if (cfg && cfg->source && cfg->source[0] != '<') {
        fresh = config_load_file(cfg->source, err);
        if (!fresh) {
            vg_log(VG_LOG_ERROR, "rules", "reload failed; keeping the running rules", "error",
                   err->msg, NULL);
            pthread_mutex_unlock(&r->reload_mu);
            return err->code;
        }
        cfg = fresh;
    }
    struct generation *gen = gen_load(r, cfg, err);
    config_free(fresh);
    if (!gen) {
        vg_log(VG_LOG_ERROR, "rules", "reload failed; keeping the running rules", "error",
               err->msg, NULL);
        pthread_mutex_unlock(&r->reload_mu);
        return err->code;
    }
    struct generation *old = r->gen;
    gen_stop(old);
    pthread_mutex_lock(&r->mu);
    carry_state(old, gen);
    r->gen = gen;
    pthread_mutex_unlock(&r->mu);
    gen_free(old);
    rules_state_save(r, gen);
    gen_start(r, gen);
    char ng[32];
    snprintf(ng, sizeof ng, "%zu", gen->ngroups);
    vg_log(VG_LOG_INFO, "rules", "rules reloaded", "groups", ng, NULL);
    pthread_mutex_unlock(&r->reload_mu);
    return 0;
}

size_t rules_ngroups(struct rules *r)
{
    pthread_mutex_lock(&r->mu);
    size_t n = r->gen->ngroups;
    pthread_mutex_unlock(&r->mu);
    return n;
}

int rules_eval_group(struct rules *r, size_t gi, int64_t ts)
{
    pthread_mutex_lock(&r->mu);
    struct group_rt *g = gi < r->gen->ngroups ? r->gen->groups[gi] : NULL;
    pthread_mutex_unlock(&r->mu);
    if (!g)
        return VG_ENOTFOUND;
    eval_group(g, ts);
    return 0;
}

/* ---- views ---- */

static struct label *view_labels(struct vg_arena *a, const struct label *ls, size_t n)
{
    struct label *out = vg_arena_alloc(a, (n ? n : 1) * sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char *nm = vg_arena_strndup(a, ls[i].name.p, ls[i].name.len);
        char *vl = vg_arena_strndup(a, ls[i].value.p, ls[i].value.len);
        if (!nm || !vl)
            return NULL;
        out[i] = (struct label){ { nm, ls[i].name.len }, { vl, ls[i].value.len } };
    }
    return out;
}

static int cmp_alert_view(const void *x, const void *y)
{
    const struct rules_alert_view *a = x, *b = y;
    return labels_cmp(a->labels, a->nlabels, b->labels, b->nlabels);
}

static int view_rule(struct vg_arena *a, const struct rule_rt *rr, struct rules_rule_view *v)
{
    const struct rule_def *d = rr->def;
    *v = (struct rules_rule_view){ .kind = d->kind, .name = d->name, .query = d->query ? d->query : d->expr,
                                   .for_ms = d->for_ms, .keep_firing_for_ms = d->keep_firing_for_ms,
                                   .health = rr->health, .eval_seconds = rr->eval_seconds,
                                   .last_eval_ms = rr->last_eval,
                                   .nlabels = rr->nlabels, .nannotations = d->nannotations };
    v->last_error = vg_arena_strndup(a, rr->last_error ? rr->last_error : "",
                                     rr->last_error ? strlen(rr->last_error) : 0);
    v->labels = view_labels(a, rr->labels, rr->nlabels);
    v->annotations = view_labels(a, d->annotations, d->nannotations);
    v->alerts = vg_arena_alloc(a, (rr->nalerts ? rr->nalerts : 1) * sizeof *v->alerts);
    if (!v->last_error || !v->labels || !v->annotations || !v->alerts)
        return VG_ENOMEM;
    for (size_t i = 0; i < rr->nalerts; i++) {
        const struct alert_rt *al = &rr->alerts[i];
        if (al->state == RULES_INACTIVE)
            continue;
        if (al->state > v->state)
            v->state = al->state;
        struct rules_alert_view *av = &v->alerts[v->nalerts++];
        *av = (struct rules_alert_view){ .nlabels = al->nlabels, .nannotations = al->nannotations,
                                         .state = al->state, .active_at_ms = al->active_at,
                                         .keep_firing_since_ms = al->keep_firing_since,
                                         .value = al->value };
        av->labels = view_labels(a, al->labels, al->nlabels);
        av->annotations = view_labels(a, al->annotations, al->nannotations);
        if (!av->labels || !av->annotations)
            return VG_ENOMEM;
    }
    qsort(v->alerts, v->nalerts, sizeof *v->alerts, cmp_alert_view);
    return 0;
}

int rules_view(struct rules *r, struct rules_view **out, struct vg_err *err)
{
    *out = NULL;
    struct vg_arena *a = vg_arena_new(8192);
    struct rules_view *v = a ? vg_arena_calloc(a, sizeof *v) : NULL;
    if (!v) {
        vg_arena_free(a);
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    }
    v->arena = a;
    if (!r) {
        *out = v;
        return 0;
    }
    int rc = 0;
    pthread_mutex_lock(&r->mu);
    struct generation *gen = r->gen;
    v->groups = vg_arena_calloc(a, (gen->ngroups ? gen->ngroups : 1) * sizeof *v->groups);
    if (!v->groups)
        rc = VG_ENOMEM;
    for (size_t i = 0; rc == 0 && i < gen->ngroups; i++) {
        struct group_rt *g = gen->groups[i];
        struct rules_group_view *gv = &v->groups[v->ngroups++];
        pthread_mutex_lock(&g->mu);
        *gv = (struct rules_group_view){ .name = g->def->name, .file = g->def->file,
                                         .interval_ms = g->interval_ms, .limit = g->def->limit,
                                         .eval_seconds = g->eval_seconds, .last_eval_ms = g->last_eval };
        /* names and files point into the generation, which a reload may free: copy */
        gv->name = vg_arena_strndup(a, gv->name, strlen(gv->name));
        gv->file = vg_arena_strndup(a, gv->file, strlen(gv->file));
        gv->rules = vg_arena_calloc(a, (g->nrules ? g->nrules : 1) * sizeof *gv->rules);
        if (!gv->name || !gv->file || !gv->rules)
            rc = VG_ENOMEM;
        for (size_t k = 0; rc == 0 && k < g->nrules; k++) {
            struct rules_rule_view *rv = &gv->rules[gv->nrules++];
            rc = view_rule(a, &g->rules[k], rv);
            if (rc == 0) {
                rv->name = vg_arena_strndup(a, rv->name, strlen(rv->name));
                rv->query = vg_arena_strndup(a, rv->query, strlen(rv->query));
                if (!rv->name || !rv->query)
                    rc = VG_ENOMEM;
            }
        }
        pthread_mutex_unlock(&g->mu);
    }
    pthread_mutex_unlock(&r->mu);
    if (rc < 0) {
        vg_arena_free(a);
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    }
    *out = v;
    return 0;
}

void rules_view_free(struct rules_view *v)
{
    if (v)
        vg_arena_free(v->arena);
}

/* ---- module ---- */

static int mod_check(const struct config *cfg, struct vg_err *err)
{
    return rules_check_config(cfg, err);
}

static int mod_init(struct vigil *v, struct vg_err *err)
{
    char dir[PATH_MAX];
    if (vigil_store_path(v->cfg, "rules", dir, sizeof dir) < 0)
        return vg_err_set(err, VG_EINVAL, "storage.data_dir: path too long");
    struct rules_opts o = { .cfg = v->cfg, .tsdb = v->tsdb, .logs = v->logs, .metrics = v->metrics,
                            .v = v, .state_dir = dir };
    v->rules = rules_new(&o, err);
    return v->rules ? 0 : err->code;
}

static void mod_free(struct vigil *v)
{
    rules_free(v->rules);
    v->rules = NULL;
}

const struct vigil_module mod_rules = {
    .name = "rules",
    .check = mod_check,
    .init = mod_init,
    .free = mod_free,
};
