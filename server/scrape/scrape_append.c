/* scrape_append: a scraped body to samples, staleness markers and report series (see
 * scrape_append.h for the rules, which follow Prometheus 2.x's scrape loop). Everything
 * per scrape comes from one arena freed at the end; the cache is rebuilt each time. */
#include "scrape_append.h"

#include "../../storage/base/vg_alloc.h"
#include "../api/exposition.h"
#include "../ingest/ingest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct newser {
    uint64_t h;
    uint32_t off, len;
};

struct run {
    const struct scrape_input *in;
    struct vg_arena *a;
    int64_t ts;
    struct relabel_set set;
    struct tsdb_series_in *series;
    size_t nseries, cap;
    struct newser *nv;     /* series of this scrape, in arrival order */
    size_t nnv, nvcap;
    struct vg_buf enc;     /* their encodings */
    struct scrape_meta *meta;  /* arena */
    size_t nmeta, metacap;
    uint64_t scraped, kept;
    bool over_sample_limit;
};

void scrape_cache_free(struct scrape_cache *c)
{
    if (!c)
        return;
    vg_free(c->hashes);
    vg_free(c->offs);
    vg_free(c->lens);
    vg_buf_free(&c->enc);
    for (size_t i = 0; i < c->nmeta; i++) {
        vg_free(c->meta[i].metric);
        vg_free(c->meta[i].help);
        vg_free(c->meta[i].unit);
    }
    vg_free(c->meta);
    memset(c, 0, sizeof *c);
}

static int nomem(struct vg_err *err) { return vg_err_set(err, VG_ENOMEM, "out of memory"); }

/* Adds one series with one sample to the batch; labels must be sorted and live in the
 * arena. track: remember it for staleness (report series are not). */
static int add_series(struct run *r, struct label *ls, size_t n, int64_t t, double v,
                      const struct tsdb_exemplar *ex, bool track, struct vg_err *err)
{
    if (r->nseries == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 256;
        struct tsdb_series_in *g = vg_realloc(r->series, cap * sizeof *g);
        if (!g)
            return nomem(err);
        r->series = g;
        r->cap = cap;
    }
    struct tsdb_sample *s = vg_arena_alloc(r->a, sizeof *s);
    if (!s)
        return nomem(err);
    s->t = t;
    s->v = v;
    r->series[r->nseries++] = (struct tsdb_series_in){ .labels = ls, .nlabels = n, .samples = s,
                                                       .nsamples = 1, .exemplars = ex,
                                                       .nexemplars = ex ? 1 : 0 };
    if (!track)
        return 0;
    if (r->nnv == r->nvcap) {
        size_t cap = r->nvcap ? r->nvcap * 2 : 256;
        struct newser *g = vg_realloc(r->nv, cap * sizeof *g);
        if (!g)
            return nomem(err);
        r->nv = g;
        r->nvcap = cap;
    }
    size_t off = r->enc.len;
    labels_encode(ls, n, &r->enc);
    if (vg_buf_failed(&r->enc) || r->enc.len > UINT32_MAX)
        return nomem(err);
    r->nv[r->nnv++] = (struct newser){ labels_hash(ls, n), (uint32_t)off,
                                       (uint32_t)(r->enc.len - off) };
    return 0;
}

struct conflict {
    struct vg_str name, value;
};

static int cmp_conflict(const void *a, const void *b)
{
    const struct conflict *x = a, *y = b;
    return (x->name.len > y->name.len) - (x->name.len < y->name.len);
}

/* Merges the target labels into r->set (Prometheus's mutateSampleLabels). */
static int merge_target(struct run *r)
{
    const struct scrape_input *in = r->in;
    struct relabel_set *s = &r->set;
    if (in->honor_labels) {
        for (size_t i = 0; i < in->ntarget; i++)
            if (!relabel_set_get(s, in->target[i].name).len &&
                relabel_set_put(s, in->target[i].name, in->target[i].value) < 0)
                return VG_ENOMEM;
        return 0;
    }
    struct conflict cf[32];
    size_t ncf = 0;
    struct conflict *cv = cf;
    for (size_t i = 0; i < in->ntarget; i++) {
        struct vg_str old = relabel_set_get(s, in->target[i].name);
        if (old.len) {
            if (ncf == 32 && cv == cf) {
                cv = vg_arena_alloc(r->a, in->ntarget * sizeof *cv);
                if (!cv)
                    return VG_ENOMEM;
                memcpy(cv, cf, sizeof cf);
            }
            cv[ncf++] = (struct conflict){ in->target[i].name, old };
        }
        if (relabel_set_put(s, in->target[i].name, in->target[i].value) < 0)
            return VG_ENOMEM;
    }
    if (ncf > 1)
        qsort(cv, ncf, sizeof *cv, cmp_conflict); /* qsort is not stable; names differ */
    for (size_t i = 0; i < ncf; i++) {
        struct vg_str name = cv[i].name;
        for (;;) {
            char *n = vg_arena_alloc(r->a, name.len + 9);
            if (!n)
                return VG_ENOMEM;
            memcpy(n, "exported_", 9);
            memcpy(n + 9, name.p, name.len);
            name = (struct vg_str){ n, name.len + 9 };
            if (!relabel_set_get(s, name).len) {
                if (relabel_set_put(s, name, cv[i].value) < 0)
                    return VG_ENOMEM;
                break;
            }
        }
    }
    return 0;
}

static int check_limits(struct run *r, struct label *ls, size_t n, struct vg_err *err)
{
    const struct scrape_input *in = r->in;
    struct vg_str name = labels_get(ls, n, "__name__");
    if (in->label_limit > 0 && (int64_t)n > in->label_limit)
        return vg_err_set(err, VG_ETOOLARGE, "label_limit exceeded (metric: %.*s, number of "
                          "labels: %zu, limit: %lld)", (int)name.len, name.p, n,
                          (long long)in->label_limit);
    for (size_t i = 0; i < n; i++) {
        if (in->label_name_length_limit > 0 &&
            (int64_t)ls[i].name.len > in->label_name_length_limit)
            return vg_err_set(err, VG_ETOOLARGE, "label_name_length_limit exceeded (metric: "
                              "%.*s, label name: %.*s, limit: %lld)", (int)name.len, name.p,
                              (int)ls[i].name.len, ls[i].name.p,
                              (long long)in->label_name_length_limit);
        if (in->label_value_length_limit > 0 &&
            (int64_t)ls[i].value.len > in->label_value_length_limit)
            return vg_err_set(err, VG_ETOOLARGE, "label_value_length_limit exceeded (metric: "
                              "%.*s, label: %.*s, limit: %lld)", (int)name.len, name.p,
                              (int)ls[i].name.len, ls[i].name.p,
                              (long long)in->label_value_length_limit);
    }
    return 0;
}

static int on_meta(struct run *r, const struct exposition_entry *e, struct vg_err *err)
{
    struct scrape_meta *m = NULL;
    for (size_t i = r->nmeta; i-- > 0 && !m;)
        if (strlen(r->meta[i].metric) == e->name.len &&
            !memcmp(r->meta[i].metric, e->name.p, e->name.len))
            m = &r->meta[i];
    if (!m) {
        if (r->nmeta == r->metacap) {
            size_t cap = r->metacap ? r->metacap * 2 : 32;
            struct scrape_meta *g = vg_arena_alloc(r->a, cap * sizeof *g);
            if (!g)
                return nomem(err);
            if (r->nmeta)
                memcpy(g, r->meta, r->nmeta * sizeof *g);
            r->meta = g;
            r->metacap = cap;
        }
        m = &r->meta[r->nmeta++];
        memset(m, 0, sizeof *m);
        m->type = "unknown";
        if (!(m->metric = vg_arena_strndup(r->a, e->name.p, e->name.len)))
            return nomem(err);
    }
    if (e->kind == EXPOSITION_TYPE) {
        m->type = e->type == EXPOSITION_UNTYPED ? "unknown" : exposition_type_name(e->type);
    } else {
        struct vg_str v = e->kind == EXPOSITION_HELP ? e->help : e->unit;
        char *c = vg_arena_strndup(r->a, v.p ? v.p : "", v.len);
        if (!c)
            return nomem(err);
        if (e->kind == EXPOSITION_HELP)
            m->help = c;
        else
            m->unit = c;
    }
    return 0;
}

static int on_entry(void *ctx, const struct exposition_entry *e, struct vg_err *err)
{
    struct run *r = ctx;
    if (e->kind != EXPOSITION_SAMPLE)
        return on_meta(r, e, err);
    r->scraped++;
    struct relabel_set *s = &r->set;
    relabel_set_clear(s);
    if (relabel_set_put(s, VG_STR("__name__"), e->name) < 0)
        return nomem(err);
    for (size_t i = 0; i < e->nlabels; i++)
        if (relabel_set_put(s, e->labels[i].name, e->labels[i].value) < 0)
            return nomem(err);
    if (merge_target(r) < 0)
        return nomem(err);
    int keep = relabel_apply(r->in->metric_relabel, s);
    if (keep < 0)
        return nomem(err);
    if (keep == 0)
        return 0;
    if (++r->kept > (uint64_t)r->in->sample_limit && r->in->sample_limit > 0) {
        r->over_sample_limit = true;
        return vg_err_set(err, VG_ETOOLARGE, "sample limit exceeded (limit: %lld)",
                          (long long)r->in->sample_limit);
    }
    struct label *ls = vg_arena_alloc(r->a, (s->n ? s->n : 1) * sizeof *ls);
    if (!ls)
        return nomem(err);
    memcpy(ls, s->v, s->n * sizeof *ls);
    size_t n = s->n;
    int rc = check_limits(r, ls, n, err);
    if (rc < 0)
        return rc;
    if (r->in->limits) {
        struct vg_err lerr;
        int k = ingest_check_labels(r->in->limits, ls, n, &lerr);
        if (k < 0)
            return k == VG_ENOMEM ? nomem(err) : vg_err_set(err, VG_EINVAL, "line %zu: %s",
                                                            e->line, lerr.msg);
        n = (size_t)k;
    } else {
        labels_sort(ls, n);
        if (!labels_get(ls, n, "__name__").len)
            return vg_err_set(err, VG_EINVAL, "line %zu: sample has no metric name", e->line);
        for (size_t i = 0; i < n; i++)
            if (!relabel_valid_label_name(ls[i].name) &&
                !vg_str_eq_c(ls[i].name, "__name__"))
                return vg_err_set(err, VG_EINVAL, "line %zu: invalid label name \"%.*s\"",
                                  e->line, (int)ls[i].name.len, ls[i].name.p);
    }
    struct tsdb_exemplar *ex = NULL;
    if (e->has_exemplar) {
        ex = vg_arena_alloc(r->a, sizeof *ex);
        struct label *el = vg_arena_alloc(r->a, (e->ex_nlabels ? e->ex_nlabels : 1) * sizeof *el);
        if (!ex || !el)
            return nomem(err);
        memcpy(el, e->ex_labels, e->ex_nlabels * sizeof *el);
        labels_sort(el, e->ex_nlabels);
        *ex = (struct tsdb_exemplar){ el, e->ex_nlabels, e->ex_has_ts ? e->ex_ts_ms : r->ts,
                                      e->ex_value };
    }
    int64_t t = r->in->honor_timestamps && e->has_ts ? e->ts_ms : r->ts;
    return add_series(r, ls, n, t, e->value, ex, true, err);
}

static int cmp_newser(const void *a, const void *b)
{
    const struct newser *x = a, *y = b;
    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    return (x->off > y->off) - (x->off < y->off);
}

static bool cache_has(const struct scrape_cache *c, uint64_t h)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->hashes[mid] < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < c->n && c->hashes[lo] == h;
}

static double stale_nan(void)
{
    uint64_t bits = TSDB_STALE_NAN_BITS;
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* Staleness markers for series in the cache that are not among r's new ones. */
static int add_stale(struct run *r, const struct scrape_cache *c, uint64_t *nstale,
                     struct vg_err *err)
{
    size_t j = 0;
    for (size_t i = 0; i < c->n; i++) {
        while (j < r->nnv && r->nv[j].h < c->hashes[i])
            j++;
        if (j < r->nnv && r->nv[j].h == c->hashes[i])
            continue;
        /* names and values point into the encoding: copy it to the arena first */
        char *enc = vg_arena_alloc(r->a, c->lens[i] ? c->lens[i] : 1);
        if (!enc)
            return nomem(err);
        memcpy(enc, c->enc.p + c->offs[i], c->lens[i]);
        struct label tmp[256];
        struct vg_err derr;
        int n = labels_decode(enc, c->lens[i], tmp, 256, &derr);
        if (n < 0)
            continue; /* cannot happen: we encoded it */
        struct label *ls = vg_arena_alloc(r->a, ((size_t)n ? (size_t)n : 1) * sizeof *ls);
        if (!ls)
            return nomem(err);
        memcpy(ls, tmp, (size_t)n * sizeof *ls);
        if (add_series(r, ls, (size_t)n, r->ts, stale_nan(), NULL, false, err) < 0)
            return VG_ENOMEM;
        (*nstale)++;
    }
    return 0;
}

static const char *const report_names[] = {
    "up", "scrape_duration_seconds", "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling", "scrape_series_added",
};

/* The report series' labels: __name__ plus the target's. */
static int add_report(struct run *r, size_t k, double v, struct vg_err *err)
{
    size_t n = r->in->ntarget + 1;
    struct label *ls = vg_arena_alloc(r->a, n * sizeof *ls);
    if (!ls)
        return nomem(err);
    ls[0] = (struct label){ VG_STR("__name__"), vg_str_c(report_names[k]) };
    memcpy(ls + 1, r->in->target, r->in->ntarget * sizeof *ls);
    labels_sort(ls, n);
    return add_series(r, ls, n, r->ts, v, NULL, false, err);
}

/* Sorts this scrape's series by hash, dropping repeats (a series twice in one body). */
static void sort_new(struct run *r)
{
    if (r->nnv > 1)
        qsort(r->nv, r->nnv, sizeof *r->nv, cmp_newser);
    size_t m = 0;
    for (size_t i = 0; i < r->nnv; i++)
        if (m == 0 || r->nv[m - 1].h != r->nv[i].h)
            r->nv[m++] = r->nv[i];
    r->nnv = m;
}

/* Moves the new series (sorted by sort_new) into the cache. */
static int swap_cache(struct run *r, struct scrape_cache *c, uint64_t *added, struct vg_err *err)
{
    size_t m = r->nnv;
    uint64_t *h = vg_malloc((m ? m : 1) * sizeof *h);
    uint32_t *o = vg_malloc((m ? m : 1) * sizeof *o);
    uint32_t *l = vg_malloc((m ? m : 1) * sizeof *l);
    if (!h || !o || !l) {
        vg_free(h);
        vg_free(o);
        vg_free(l);
        return nomem(err);
    }
    *added = 0;
    for (size_t i = 0; i < m; i++) {
        h[i] = r->nv[i].h;
        o[i] = r->nv[i].off;
        l[i] = r->nv[i].len;
        *added += !cache_has(c, h[i]);
    }
    vg_free(c->hashes);
    vg_free(c->offs);
    vg_free(c->lens);
    vg_buf_free(&c->enc);
    c->hashes = h;
    c->offs = o;
    c->lens = l;
    c->n = m;
    c->enc = r->enc;
    vg_buf_init(&r->enc);
    return 0;
}

static uint64_t meta_hash(const struct scrape_meta *m, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        const char *parts[4] = { m[i].metric, m[i].type, m[i].help ? m[i].help : "",
                                 m[i].unit ? m[i].unit : "" };
        for (int k = 0; k < 4; k++) {
            for (const char *p = parts[k]; *p; p++)
                h = (h ^ (unsigned char)*p) * 1099511628211ULL;
            h = (h ^ 0xff) * 1099511628211ULL;
        }
    }
    return h;
}

static enum tsdb_metric_type tsdb_type(const char *t)
{
    static const struct { const char *n; enum tsdb_metric_type t; } map[] = {
        { "counter", TSDB_TYPE_COUNTER }, { "gauge", TSDB_TYPE_GAUGE },
        { "histogram", TSDB_TYPE_HISTOGRAM }, { "gaugehistogram", TSDB_TYPE_GAUGEHISTOGRAM },
        { "summary", TSDB_TYPE_SUMMARY }, { "info", TSDB_TYPE_INFO },
        { "stateset", TSDB_TYPE_STATESET },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i].n, t))
            return map[i].t;
    return TSDB_TYPE_UNKNOWN;
}

/* Keeps the scrape's metadata in the cache when it changed; fills the batch's. */
static int update_meta(struct run *r, struct scrape_cache *c, struct tsdb_batch *b,
                       struct vg_err *err)
{
    uint64_t h = meta_hash(r->meta, r->nmeta);
    if (h == c->meta_hash && c->meta)
        return 0;
    struct scrape_meta *nm = vg_calloc(r->nmeta ? r->nmeta : 1, sizeof *nm);
    struct tsdb_metadata *tm = vg_arena_alloc(r->a, (r->nmeta ? r->nmeta : 1) * sizeof *tm);
    if (!nm || !tm) {
        vg_free(nm);
        return nomem(err);
    }
    bool oom = false;
    for (size_t i = 0; i < r->nmeta; i++) {
        const struct scrape_meta *m = &r->meta[i];
        nm[i].metric = vg_strdup(m->metric);
        nm[i].type = m->type;
        nm[i].help = vg_strdup(m->help ? m->help : "");
        nm[i].unit = vg_strdup(m->unit ? m->unit : "");
        oom |= !nm[i].metric || !nm[i].help || !nm[i].unit;
        tm[i] = (struct tsdb_metadata){ vg_str_c(m->metric), tsdb_type(m->type),
                                        vg_str_c(m->help ? m->help : ""),
                                        vg_str_c(m->unit ? m->unit : "") };
    }
    struct scrape_cache old = { .meta = c->meta, .nmeta = c->nmeta };
    c->meta = nm;
    c->nmeta = r->nmeta;
    scrape_cache_free(&old);
    if (oom) {
        c->meta_hash = 0;
        return nomem(err);
    }
    c->meta_hash = h;
    b->meta = tm;
    b->nmeta = r->nmeta;
    return 0;
}

static void run_free(struct run *r)
{
    vg_free(r->series);
    vg_free(r->nv);
    vg_buf_free(&r->enc);
    vg_arena_free(r->a);
}

int scrape_append(const struct scrape_input *in, const char *body, size_t len, bool openmetrics,
                  int64_t ts_ms, struct scrape_cache *c, scrape_sink_fn sink, void *sink_ctx,
                  struct scrape_report *rep, struct vg_err *err)
{
    struct run r = { .in = in, .ts = ts_ms };
    vg_buf_init(&r.enc);
    if (!(r.a = vg_arena_new((size_t)64 * 1024)))
        return nomem(err);
    relabel_set_init(&r.set, r.a);
    rep->up = body != NULL;
    rep->scraped = rep->post_relabel = rep->added = rep->stale = 0;
    rep->over_sample_limit = false;
    int rc = 0;
    if (body) {
        struct vg_err perr;
        rc = openmetrics ? exposition_parse_openmetrics(body, len, r.a, on_entry, &r, &perr)
                         : exposition_parse(body, len, r.a, on_entry, &r, &perr);
        if (rc == VG_ENOMEM) {
            run_free(&r);
            return nomem(err);
        }
        if (rc < 0) {
            /* as Prometheus: nothing of a failed scrape is kept, everything goes stale */
            rep->up = false;
            rep->over_sample_limit = r.over_sample_limit;
            snprintf(rep->error, sizeof rep->error, "%.255s", perr.msg);
            r.nseries = 0;
            r.nnv = 0;
            vg_buf_reset(&r.enc);
            r.nmeta = 0;
        }
    }
    rep->scraped = r.scraped;
    rep->post_relabel = rep->up ? r.kept : 0;
    struct tsdb_batch b = { 0 };
    uint64_t added = 0;
    sort_new(&r);
    if ((rc = add_stale(&r, c, &rep->stale, err)) < 0 ||
        (rc = swap_cache(&r, c, &added, err)) < 0 ||
        (rep->up && (rc = update_meta(&r, c, &b, err)) < 0)) {
        run_free(&r);
        return rc;
    }
    rep->added = added;
    double vals[5] = { rep->up ? 1 : 0, rep->duration_s, (double)rep->scraped,
                       (double)rep->post_relabel, (double)rep->added };
    for (size_t k = 0; k < 5 && rc == 0; k++)
        rc = add_report(&r, k, vals[k], err);
    if (rc == 0) {
        b.series = r.series;
        b.nseries = r.nseries;
        struct tsdb_append_result res;
        memset(&res, 0, sizeof res);
        rc = sink(sink_ctx, &b, &res, err);
    }
    run_free(&r);
    return rc;
}

int scrape_append_gone(const struct scrape_input *in, int64_t ts_ms, struct scrape_cache *c,
                       scrape_sink_fn sink, void *sink_ctx, struct vg_err *err)
{
    struct run r = { .in = in, .ts = ts_ms };
    vg_buf_init(&r.enc);
    if (!(r.a = vg_arena_new((size_t)16 * 1024)))
        return nomem(err);
    uint64_t nstale = 0;
    int rc = add_stale(&r, c, &nstale, err);
    for (size_t k = 0; k < 5 && rc == 0; k++)
        rc = add_report(&r, k, stale_nan(), err);
    if (rc == 0) {
        struct tsdb_batch b = { .series = r.series, .nseries = r.nseries };
        struct tsdb_append_result res;
        memset(&res, 0, sizeof res);
        rc = sink(sink_ctx, &b, &res, err);
    }
    run_free(&r);
    scrape_cache_free(c);
    return rc;
}
