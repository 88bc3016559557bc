/* statsd_agg: see statsd_agg.h for the names and series written.
 *
 * State: two open-addressing hash tables (linear probing, power-of-two sizes, grown at
 * 1/2 load, never shrunk): families by mapped name (the kind, whether metadata was
 * written) and series by their label set (which includes __name__ = the family name, so
 * a counter "x" and a gauge "x" are different series: x_total and x). A series is one
 * vg_malloc block: the struct, its sorted labels and their bytes. Set members are kept
 * as 64-bit hashes in a small open-addressing set per series (a collision between two
 * members would undercount by one: 1 in 2^64). */
#include "statsd_agg.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_buf.h"
#include "ingest.h"
#include "quantile.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_NAME 256
#define MAX_LABELS (STATSD_MAX_TAGS + 1)

enum kind { K_COUNTER, K_GAUGE, K_SET, K_HISTOGRAM, K_SUMMARY };

struct family {
    uint64_t hash;
    enum kind kind;
    bool meta_sent;
    char name[]; /* NUL-terminated */
};

struct set {
    uint64_t *slots; /* 0 = empty; members stored as hash | 1 */
    size_t cap, n;
};

struct series {
    uint64_t hash;
    struct family *fam;
    struct label *labels; /* sorted, __name__ included, points into this block */
    size_t nlabels;
    union {
        double counter;
        double gauge;
        struct set set;
        struct {
            double sum, count;
            double *buckets; /* per-bucket counts (not cumulative), nbuckets + 1 */
        } hist;
        struct {
            double sum, count;
            struct quantile_digest d;
        } summary;
    } u;
};

struct table {
    void **slots;
    size_t cap, n;
};

struct statsd_agg {
    enum statsd_timer_type timer_type;
    double *buckets, *quantiles;
    size_t nbuckets, nquantiles;
    size_t max_series, max_set_members;
    struct config_limits limits;
    bool check_limits;
    struct table families, series;
};

const char *statsd_drop_name(enum statsd_drop d)
{
    static const char *const names[STATSD_DROP_COUNT] = {
        "max_series", "type_conflict", "set_full", "bad_labels", "out_of_memory",
    };
    return (unsigned)d < STATSD_DROP_COUNT ? names[d] : "unknown";
}

bool statsd_map_name(struct vg_str raw, bool label, char *out, size_t cap)
{
    size_t o = 0;
    if (raw.len && raw.p[0] >= '0' && raw.p[0] <= '9') {
        if (cap < 2)
            return false;
        out[o++] = '_';
    }
    if (o + raw.len >= cap)
        return false;
    for (size_t i = 0; i < raw.len; i++) {
        char c = raw.p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || (c == ':' && !label);
        out[o++] = ok ? c : '_';
    }
    out[o] = '\0';
    return true;
}

/* ---- tables ---- */

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a, then a final mix */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    return h ^ (h >> 33);
}

/* The slot of the item with hash h for which eq(item, key) holds, or of the empty slot
 * where it belongs. */
static size_t table_find(const struct table *t, uint64_t h, bool (*eq)(const void *, const void *),
                         const void *key)
{
    size_t mask = t->cap - 1, i = h & mask;
    while (t->slots[i] && !eq(t->slots[i], key))
        i = (i + 1) & mask;
    return i;
}

/* Makes room for one more item; false when out of memory. hash_of reads an item's hash. */
static bool table_reserve(struct table *t, uint64_t (*hash_of)(const void *))
{
    if (t->cap && (t->n + 1) * 2 <= t->cap)
        return true;
    size_t cap = t->cap ? t->cap * 2 : 64;
    void **slots = vg_calloc(cap, sizeof *slots);
    if (!slots)
        return false;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->slots[i])
            continue;
        size_t j = hash_of(t->slots[i]) & (cap - 1);
        while (slots[j])
            j = (j + 1) & (cap - 1);
        slots[j] = t->slots[i];
    }
    vg_free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return true;
}

static uint64_t family_hash(const void *p)
{
    return ((const struct family *)p)->hash;
}

static uint64_t series_hash(const void *p)
{
    return ((const struct series *)p)->hash;
}

static bool family_eq(const void *item, const void *key)
{
    return !strcmp(((const struct family *)item)->name, key);
}

struct series_key {
    uint64_t hash;
    const struct label *labels;
    size_t n;
};

static bool series_eq(const void *item, const void *key)
{
    const struct series *s = item;
    const struct series_key *k = key;
    return s->hash == k->hash && !labels_cmp(s->labels, s->nlabels, k->labels, k->n);
}

/* ---- set members ---- */

/* Adds member hash m. 1 when new, 0 when already there, -1 full, VG_ENOMEM. */
static int set_add(struct set *s, uint64_t m, size_t max)
{
    m |= 1;
    if (s->cap) {
        size_t i = m & (s->cap - 1);
        while (s->slots[i]) {
            if (s->slots[i] == m)
                return 0;
            i = (i + 1) & (s->cap - 1);
        }
    }
    if (s->n >= max)
        return -1;
    if ((s->n + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        uint64_t *slots = vg_calloc(cap, sizeof *slots);
        if (!slots)
            return VG_ENOMEM;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->slots[i])
                continue;
            size_t j = s->slots[i] & (cap - 1);
            while (slots[j])
                j = (j + 1) & (cap - 1);
            slots[j] = s->slots[i];
        }
        vg_free(s->slots);
        s->slots = slots;
        s->cap = cap;
    }
    size_t i = m & (s->cap - 1);
    while (s->slots[i])
        i = (i + 1) & (s->cap - 1);
    s->slots[i] = m;
    s->n++;
    return 1;
}

/* ---- new and free ---- */

static double *copy_doubles(const double *v, size_t n)
{
    double *d = vg_malloc((n ? n : 1) * sizeof *d);
    if (d && n)
        memcpy(d, v, n * sizeof *d);
    return d;
}

struct statsd_agg *statsd_agg_new(const struct statsd_agg_opts *o)
{
    struct statsd_agg *a = vg_calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->timer_type = o->timer_type;
    a->nbuckets = o->nbuckets;
    a->nquantiles = o->nquantiles;
    a->max_series = o->max_series;
    a->max_set_members = o->max_set_members;
    if (o->limits) {
        a->limits = *o->limits;
        a->check_limits = true;
    }
    a->buckets = copy_doubles(o->buckets, o->nbuckets);
    a->quantiles = copy_doubles(o->quantiles, o->nquantiles);
    if (!a->buckets || !a->quantiles) {
        statsd_agg_free(a);
        return NULL;
    }
    return a;
}

static void series_free(struct series *s)
{
    switch (s->fam->kind) {
    case K_SET: vg_free(s->u.set.slots); break;
    case K_HISTOGRAM: vg_free(s->u.hist.buckets); break;
    case K_SUMMARY: quantile_free(&s->u.summary.d); break;
    default: break;
    }
    vg_free(s);
}

void statsd_agg_free(struct statsd_agg *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->series.cap; i++)
        if (a->series.slots[i])
            series_free(a->series.slots[i]);
    for (size_t i = 0; i < a->families.cap; i++)
        vg_free(a->families.slots[i]);
    vg_free(a->series.slots);
    vg_free(a->families.slots);
    vg_free(a->buckets);
    vg_free(a->quantiles);
    vg_free(a);
}

size_t statsd_agg_series(const struct statsd_agg *a)
{
    return a->series.n;
}

/* ---- adding ---- */

static enum kind kind_of(const struct statsd_agg *a, enum statsd_type t)
{
    switch (t) {
    case STATSD_COUNTER: return K_COUNTER;
    case STATSD_GAUGE: return K_GAUGE;
    case STATSD_SET: return K_SET;
    default: return a->timer_type == STATSD_TIMER_SUMMARY ? K_SUMMARY : K_HISTOGRAM;
    }
}

static bool tag_reserved(const char *key, enum kind k)
{
    return !strncmp(key, "__", 2) || (k == K_HISTOGRAM && !strcmp(key, "le")) ||
           (k == K_SUMMARY && !strcmp(key, "quantile"));
}

/* The family named name of kind k, created when new. NULL with *why set. */
static struct family *get_family(struct statsd_agg *a, const char *name, enum kind k,
                                 enum statsd_drop *why)
{
    size_t len = strlen(name);
    uint64_t h = hash_bytes(name, len);
    if (!table_reserve(&a->families, family_hash)) {
        *why = STATSD_DROP_OUT_OF_MEMORY;
        return NULL;
    }
    size_t i = table_find(&a->families, h, family_eq, name);
    struct family *f = a->families.slots[i];
    if (f) {
        if (f->kind != k) {
            *why = STATSD_DROP_TYPE_CONFLICT;
            return NULL;
        }
        return f;
    }
    if (a->series.n >= a->max_series) {
        *why = STATSD_DROP_MAX_SERIES; /* a new family always means a new series */
        return NULL;
    }
    f = vg_malloc(sizeof *f + len + 1);
    if (!f) {
        *why = STATSD_DROP_OUT_OF_MEMORY;
        return NULL;
    }
    f->hash = h;
    f->kind = k;
    f->meta_sent = false;
    memcpy(f->name, name, len + 1);
    a->families.slots[i] = f;
    a->families.n++;
    return f;
}

static struct series *new_series(struct statsd_agg *a, struct family *f, const struct label *ls,
                                 size_t n, uint64_t h)
{
    size_t bytes = sizeof(struct series) + n * sizeof(struct label);
    for (size_t i = 0; i < n; i++)
        bytes += ls[i].name.len + ls[i].value.len;
    struct series *s = vg_calloc(1, bytes);
    if (!s)
        return NULL;
    s->hash = h;
    s->fam = f;
    s->labels = (struct label *)(s + 1);
    s->nlabels = n;
    char *p = (char *)(s->labels + n);
    for (size_t i = 0; i < n; i++) {
        struct vg_str *dst[2] = { &s->labels[i].name, &s->labels[i].value };
        const struct vg_str *src[2] = { &ls[i].name, &ls[i].value };
        for (int k = 0; k < 2; k++) {
            memcpy(p, src[k]->p, src[k]->len);
            *dst[k] = (struct vg_str){ p, src[k]->len };
            p += src[k]->len;
        }
    }
    if (f->kind == K_HISTOGRAM &&
        !(s->u.hist.buckets = vg_calloc(a->nbuckets + 1, sizeof(double)))) {
        vg_free(s);
        return NULL;
    }
    if (f->kind == K_SUMMARY)
        quantile_init(&s->u.summary.d, QUANTILE_DEFAULT_COMPRESSION);
    return s;
}

static void observe_hist(struct statsd_agg *a, struct series *s, double v, double w)
{
    size_t b = 0;
    while (b < a->nbuckets && v > a->buckets[b])
        b++;
    s->u.hist.buckets[b] += w;
    s->u.hist.sum += v * w;
    s->u.hist.count += w;
}

/* Folds the values of l into s. */
static int apply(struct statsd_agg *a, struct series *s, const struct statsd_line *l,
                 enum statsd_drop *why)
{
    double w = 1 / l->rate;
    switch (s->fam->kind) {
    case K_COUNTER:
        for (size_t i = 0; i < l->nvalues; i++)
            s->u.counter += l->values[i] * w;
        return 0;
    case K_GAUGE:
        for (size_t i = 0; i < l->nvalues; i++)
            s->u.gauge = l->delta ? s->u.gauge + l->values[i] : l->values[i];
        return 0;
    case K_SET: {
        int rc = set_add(&s->u.set, hash_bytes(l->member.p, l->member.len), a->max_set_members);
        if (rc >= 0)
            return 0;
        *why = rc == -1 ? STATSD_DROP_SET_FULL : STATSD_DROP_OUT_OF_MEMORY;
        return -1;
    }
    case K_HISTOGRAM:
    case K_SUMMARY:
        for (size_t i = 0; i < l->nvalues; i++) {
            double v = l->type == STATSD_TIMER ? l->values[i] / 1000 : l->values[i];
            if (s->fam->kind == K_HISTOGRAM) {
                observe_hist(a, s, v, w);
                continue;
            }
            if (quantile_add(&s->u.summary.d, v, w) < 0) {
                *why = STATSD_DROP_OUT_OF_MEMORY;
                return -1;
            }
            s->u.summary.sum += v * w;
            s->u.summary.count += w;
        }
        return 0;
    }
    return 0;
}

int statsd_agg_add(struct statsd_agg *a, const struct statsd_line *l, enum statsd_drop *why)
{
    enum kind k = kind_of(a, l->type);
    char name[MAX_NAME + 8];
    char keys[STATSD_MAX_TAGS][MAX_NAME];
    if (!statsd_map_name(l->name, false, name, MAX_NAME)) {
        *why = STATSD_DROP_BAD_LABELS;
        return -1;
    }
    size_t nlen = strlen(name);
    if (k == K_COUNTER && !(nlen >= 6 && !strcmp(name + nlen - 6, "_total")))
        memcpy(name + nlen, "_total", 7);

    struct label ls[MAX_LABELS];
    size_t n = 0;
    ls[n++] = (struct label){ VG_STR("__name__"), vg_str_c(name) };
    for (size_t i = 0; i < l->ntags; i++) {
        if (!statsd_map_name(l->tags[i].key, true, keys[i], MAX_NAME)) {
            *why = STATSD_DROP_BAD_LABELS;
            return -1;
        }
        if (tag_reserved(keys[i], k))
            continue;
        bool dup = false;
        for (size_t j = 1; j < n && !dup; j++)
            dup = vg_str_eq_c(ls[j].name, keys[i]);
        if (!dup)
            ls[n++] = (struct label){ vg_str_c(keys[i]), l->tags[i].value };
    }
    if (a->check_limits) {
        struct vg_err err;
        int rc = ingest_check_labels(&a->limits, ls, n, &err);
        if (rc < 0) {
            *why = STATSD_DROP_BAD_LABELS;
            return -1;
        }
        n = (size_t)rc;
    } else {
        labels_sort(ls, n);
    }

    uint64_t h = labels_hash(ls, n);
    struct series_key key = { h, ls, n };
    if (!table_reserve(&a->series, series_hash)) {
        *why = STATSD_DROP_OUT_OF_MEMORY;
        return -1;
    }
    size_t slot = table_find(&a->series, h, series_eq, &key);
    struct series *s = a->series.slots[slot];
    if (s && s->fam->kind != k) {
        *why = STATSD_DROP_TYPE_CONFLICT;
        return -1;
    }
    if (!s) {
        struct family *f = get_family(a, name, k, why);
        if (!f)
            return -1;
        if (a->series.n >= a->max_series) {
            *why = STATSD_DROP_MAX_SERIES;
            return -1;
        }
        if (!(s = new_series(a, f, ls, n, h))) {
            *why = STATSD_DROP_OUT_OF_MEMORY;
            return -1;
        }
        a->series.slots[slot] = s;
        a->series.n++;
    }
    return apply(a, s, l, why);
}

/* ---- flushing ---- */

struct out {
    struct vg_arena *arena;
    struct tsdb_series_in *series;
    size_t n, cap;
    struct tsdb_metadata *meta;
    size_t nmeta, capmeta;
    int64_t t;
};

/* One sample of a series derived from s: name suffix, optional extra label, value. */
static bool emit(struct out *o, const struct series *s, const char *suffix, const char *lname,
                 const char *lvalue, double v)
{
    if (o->n == o->cap)
        return false; /* sized exactly by count_samples */
    size_t nl = s->nlabels + (lname != NULL);
    struct label *ls = vg_arena_alloc(o->arena, nl * sizeof *ls);
    struct tsdb_sample *smp = vg_arena_alloc(o->arena, sizeof *smp);
    if (!ls || !smp)
        return false;
    memcpy(ls, s->labels, s->nlabels * sizeof *ls);
    size_t i = 0;
    while (!vg_str_eq_c(ls[i].name, "__name__"))
        i++;
    if (*suffix) {
        size_t bl = strlen(s->fam->name), sl = strlen(suffix);
        char *nm = vg_arena_alloc(o->arena, bl + sl);
        if (!nm)
            return false;
        memcpy(nm, s->fam->name, bl);
        memcpy(nm + bl, suffix, sl);
        ls[i].value = (struct vg_str){ nm, bl + sl };
    }
    if (lname) {
        char *val = vg_arena_strndup(o->arena, lvalue, strlen(lvalue));
        if (!val)
            return false;
        ls[s->nlabels] = (struct label){ vg_str_c(lname), vg_str_c(val) };
        labels_sort(ls, nl);
    }
    *smp = (struct tsdb_sample){ o->t, v };
    o->series[o->n++] = (struct tsdb_series_in){ .labels = ls, .nlabels = nl, .samples = smp,
                                                 .nsamples = 1 };
    return true;
}

static size_t count_samples(const struct statsd_agg *a, const struct series *s)
{
    switch (s->fam->kind) {
    case K_HISTOGRAM: return a->nbuckets + 3;
    case K_SUMMARY: return a->nquantiles + 2;
    default: return 1;
    }
}

static void fmt_float(char *out, size_t cap, double v)
{
    struct vg_buf b;
    vg_buf_init(&b);
    vg_buf_prom_float(&b, v);
    snprintf(out, cap, "%s", vg_buf_failed(&b) || !b.p ? "NaN" : vg_buf_cstr(&b));
    vg_buf_free(&b);
}

static bool emit_series(struct statsd_agg *a, struct out *o, struct series *s)
{
    char le[40];
    switch (s->fam->kind) {
    case K_COUNTER: return emit(o, s, "", NULL, NULL, s->u.counter);
    case K_GAUGE: return emit(o, s, "", NULL, NULL, s->u.gauge);
    case K_SET: return emit(o, s, "", NULL, NULL, (double)s->u.set.n);
    case K_HISTOGRAM: {
        double cum = 0;
        for (size_t b = 0; b < a->nbuckets; b++) {
            cum += s->u.hist.buckets[b];
            fmt_float(le, sizeof le, a->buckets[b]);
            if (!emit(o, s, "_bucket", "le", le, cum))
                return false;
        }
        return emit(o, s, "_bucket", "le", "+Inf", s->u.hist.count) &&
               emit(o, s, "_sum", NULL, NULL, s->u.hist.sum) &&
               emit(o, s, "_count", NULL, NULL, s->u.hist.count);
    }
    case K_SUMMARY:
        for (size_t q = 0; q < a->nquantiles; q++) {
            fmt_float(le, sizeof le, a->quantiles[q]);
            if (!emit(o, s, "", "quantile", le, quantile_query(&s->u.summary.d, a->quantiles[q])))
                return false;
        }
        return emit(o, s, "_sum", NULL, NULL, s->u.summary.sum) &&
               emit(o, s, "_count", NULL, NULL, s->u.summary.count);
    }
    return false;
}

static enum tsdb_metric_type meta_type(enum kind k)
{
    switch (k) {
    case K_COUNTER: return TSDB_TYPE_COUNTER;
    case K_HISTOGRAM: return TSDB_TYPE_HISTOGRAM;
    case K_SUMMARY: return TSDB_TYPE_SUMMARY;
    default: return TSDB_TYPE_GAUGE;
    }
}

int statsd_agg_flush(struct statsd_agg *a, int64_t now_ms, struct vg_arena *arena,
                     struct tsdb_batch *batch)
{
    static const char *const help[] = {
        [K_COUNTER] = "StatsD counter (cumulative since Vigil started).",
        [K_GAUGE] = "StatsD gauge.",
        [K_SET] = "StatsD set: distinct members in the last flush interval.",
        [K_HISTOGRAM] = "StatsD timer or histogram (timers in seconds).",
        [K_SUMMARY] = "StatsD timer or histogram (timers in seconds); quantiles per flush.",
    };
    struct out o = { .arena = arena, .t = now_ms };
    for (size_t i = 0; i < a->series.cap; i++)
        if (a->series.slots[i])
            o.cap += count_samples(a, a->series.slots[i]);
    o.capmeta = a->families.n;
    o.series = vg_arena_alloc(arena, (o.cap ? o.cap : 1) * sizeof *o.series);
    o.meta = vg_arena_alloc(arena, (o.capmeta ? o.capmeta : 1) * sizeof *o.meta);
    if (!o.series || !o.meta)
        return VG_ENOMEM;
    for (size_t i = 0; i < a->series.cap; i++)
        if (a->series.slots[i] && !emit_series(a, &o, a->series.slots[i]))
            return VG_ENOMEM;
    for (size_t i = 0; i < a->families.cap; i++) {
        struct family *f = a->families.slots[i];
        if (!f || f->meta_sent)
            continue;
        o.meta[o.nmeta++] = (struct tsdb_metadata){ .metric = vg_str_c(f->name),
                                                    .type = meta_type(f->kind),
                                                    .help = vg_str_c(help[f->kind]) };
    }
    /* everything is built: only now start the new interval */
    for (size_t i = 0; i < a->families.cap; i++)
        if (a->families.slots[i])
            ((struct family *)a->families.slots[i])->meta_sent = true;
    for (size_t i = 0; i < a->series.cap; i++) {
        struct series *s = a->series.slots[i];
        if (s && s->fam->kind == K_SET) {
            if (s->u.set.cap)
                memset(s->u.set.slots, 0, s->u.set.cap * sizeof *s->u.set.slots);
            s->u.set.n = 0;
        } else if (s && s->fam->kind == K_SUMMARY) {
            quantile_reset(&s->u.summary.d);
        }
    }
    *batch = (struct tsdb_batch){ .series = o.series, .nseries = o.n, .meta = o.meta,
                                  .nmeta = o.nmeta };
    return 0;
}
