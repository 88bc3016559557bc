/* dtable: see dtable.h.
 *
 * Layout of one series block (one vg_malloc): struct dseries, then doubles: the
 * counters, then per histogram sum, count and nbounds+1 per-bucket counts (not
 * cumulative; collection sums them up), then per histogram per bucket one struct slot
 * (the exemplar) when the table keeps exemplars, then the label value bytes. Doubles
 * count exactly up to 2^53, far beyond what a process lives to see. The hash table is
 * chained, with a power-of-two bucket array sized for max_series at creation. */
#include "dtable.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_buf.h"
#include "../ingest/ingest.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

struct slot {
    struct dtable_exemplar e;
    double v;
    bool fresh; /* observed since the last collection */
};

struct dseries {
    struct dseries *next;
    uint64_t hash;
    int64_t last_ms;
    int64_t born_ms; /* now_ms of the dtable_get that created it */
    bool written;    /* a collection has handed it out (with its initial zero) */
    struct vg_str vals[DTABLE_MAX_LABELS];
    double num[]; /* counters, then histograms; slots and strings follow */
};

struct dtable {
    pthread_mutex_t mu;
    struct dtable_def def;
    char *label_names[DTABLE_MAX_LABELS];
    char *counter_names[DTABLE_MAX_COUNTERS];
    char *hist_names[DTABLE_MAX_HISTS][3]; /* _bucket, _sum, _count */
    double bounds[DTABLE_MAX_BOUNDS];
    char le[DTABLE_MAX_BOUNDS + 1][32];    /* bound texts, "+Inf" last */
    size_t nnum;                           /* doubles per series */
    size_t slots_off;                      /* byte offset of the slots after num */
    size_t fixed_size;                     /* header + doubles + slots */
    struct dseries **heads;
    size_t mask;
    struct dtable_stats st;
};

#define HIST_NUM(t) ((t)->def.nbounds + 3) /* sum, count, buckets */

static char *dup_or_null(const char *s, bool *ok)
{
    char *d = vg_strdup(s);
    if (!d)
        *ok = false;
    return d;
}

static int check_def(const struct dtable_def *d, struct vg_err *err)
{
    if (d->nlabels < 1 || d->nlabels > DTABLE_MAX_LABELS)
        return vg_err_set(err, VG_EINVAL, "dtable: %zu labels, expected 1 to %d", d->nlabels,
                          DTABLE_MAX_LABELS);
    if (d->ncounters > DTABLE_MAX_COUNTERS || d->nhists > DTABLE_MAX_HISTS)
        return vg_err_set(err, VG_EINVAL, "dtable: %zu counters and %zu histograms, at most "
                          "%d and %d", d->ncounters, d->nhists, DTABLE_MAX_COUNTERS,
                          DTABLE_MAX_HISTS);
    if (d->nbounds > DTABLE_MAX_BOUNDS)
        return vg_err_set(err, VG_EINVAL, "dtable: %zu bucket bounds, at most %d", d->nbounds,
                          DTABLE_MAX_BOUNDS);
    for (size_t i = 0; i < d->nbounds; i++)
        if (!isfinite(d->bounds[i]) || (i && d->bounds[i] <= d->bounds[i - 1]))
            return vg_err_set(err, VG_EINVAL, "dtable: bucket bound %zu is not finite and "
                              "larger than the one before", i);
    if (d->max_series < 1 || d->max_value_len < 4)
        return vg_err_set(err, VG_EINVAL, "dtable: max_series and max_value_len too small");
    return 0;
}

struct dtable *dtable_new(const struct dtable_def *def, struct vg_err *err)
{
    if (check_def(def, err) < 0)
        return NULL;
    struct dtable *t = vg_calloc(1, sizeof *t);
    if (!t) {
        vg_err_set(err, VG_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&t->mu, NULL);
    t->def = *def;
    bool ok = true;
    for (size_t i = 0; i < def->nlabels; i++)
        t->label_names[i] = dup_or_null(def->label_names[i], &ok);
    for (size_t i = 0; i < def->ncounters; i++)
        t->counter_names[i] = dup_or_null(def->counter_names[i], &ok);
    static const char *const suffix[3] = { "_bucket", "_sum", "_count" };
    for (size_t i = 0; i < def->nhists; i++)
        for (int k = 0; k < 3; k++) {
            size_t n = strlen(def->hist_names[i]) + strlen(suffix[k]) + 1;
            t->hist_names[i][k] = vg_malloc(n);
            if (t->hist_names[i][k])
                snprintf(t->hist_names[i][k], n, "%s%s", def->hist_names[i], suffix[k]);
            else
                ok = false;
        }
    t->def.label_names = NULL;
    t->def.counter_names = NULL;
    t->def.hist_names = NULL;
    memcpy(t->bounds, def->bounds, def->nbounds * sizeof *def->bounds);
    t->def.bounds = t->bounds;
    for (size_t i = 0; i <= def->nbounds; i++) {
        struct vg_buf b;
        vg_buf_init(&b);
        if (i < def->nbounds)
            vg_buf_prom_float(&b, def->bounds[i]);
        else
            vg_buf_puts(&b, "+Inf");
        snprintf(t->le[i], sizeof t->le[i], "%s", vg_buf_failed(&b) ? "" : vg_buf_cstr(&b));
        if (vg_buf_failed(&b))
            ok = false;
        vg_buf_free(&b);
    }
    t->nnum = def->ncounters + def->nhists * HIST_NUM(t);
    t->slots_off = sizeof(struct dseries) + t->nnum * sizeof(double);
    size_t nslots = def->exemplars ? def->nhists * (def->nbounds + 1) : 0;
    t->fixed_size = t->slots_off + nslots * sizeof(struct slot);
    size_t nheads = 16;
    while (nheads < def->max_series && nheads < ((size_t)1 << 24))
        nheads <<= 1;
    t->heads = vg_calloc(nheads, sizeof *t->heads);
    t->mask = nheads - 1;
    if (!ok || !t->heads) {
        dtable_free(t);
        vg_err_set(err, VG_ENOMEM, "out of memory");
        return NULL;
    }
    return t;
}

void dtable_free(struct dtable *t)
{
    if (!t)
        return;
    if (t->heads)
        for (size_t i = 0; i <= t->mask; i++)
            for (struct dseries *s = t->heads[i], *nx; s; s = nx) {
                nx = s->next;
                vg_free(s);
            }
    vg_free(t->heads);
    for (size_t i = 0; i < DTABLE_MAX_LABELS; i++)
        vg_free(t->label_names[i]);
    for (size_t i = 0; i < DTABLE_MAX_COUNTERS; i++)
        vg_free(t->counter_names[i]);
    for (size_t i = 0; i < DTABLE_MAX_HISTS; i++)
        for (int k = 0; k < 3; k++)
            vg_free(t->hist_names[i][k]);
    pthread_mutex_destroy(&t->mu);
    vg_free(t);
}

void dtable_lock(struct dtable *t)
{
    pthread_mutex_lock(&t->mu);
}

void dtable_unlock(struct dtable *t)
{
    pthread_mutex_unlock(&t->mu);
}

static struct slot *slots_of(const struct dtable *t, struct dseries *s)
{
    return (struct slot *)((char *)s + t->slots_off);
}

static inline uint64_t mix64(uint64_t h)
{
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ULL;
    h ^= h >> 32;
    return h;
}

#define HASH_K 0x9E3779B97F4A7C15ULL

/* The running hash of len bytes at p after h: a multiply and a shift per word (the last
 * word overlapping, or a short tail zero-padded); mix64 finishes it. */
static inline uint64_t hash_step(const char *p, size_t len, uint64_t h)
{
    uint64_t w;
    size_t j = 0;
    h = (h ^ len) * HASH_K;
    for (; j + 8 <= len; j += 8) {
        memcpy(&w, p + j, 8);
        h = (h ^ w) * HASH_K;
        h ^= h >> 29;
    }
    if (j < len) {
        w = 0;
        if (len >= 8)
            memcpy(&w, p + len - 8, 8);
        else
            memcpy(&w, p, len);
        h = (h ^ w) * HASH_K;
        h ^= h >> 29;
    }
    return h;
}

uint64_t dtable_hash(const void *data, size_t len, uint64_t seed)
{
    return mix64(hash_step(data, len, seed));
}

/* Each value's length goes into the hash, so ("ab","c") and ("a","bc") differ. */
static uint64_t hash_vals(const struct vg_str *v, size_t n)
{
    uint64_t h = n;
    for (size_t i = 0; i < n; i++)
        h = hash_step(v[i].p, v[i].len, h);
    return mix64(h);
}

struct dseries *dtable_get(struct dtable *t, const struct vg_str *vals, int64_t now_ms)
{
    size_t n = t->def.nlabels;
    struct vg_str v[DTABLE_MAX_LABELS];
    for (size_t i = 0; i < n; i++) {
        v[i] = vals[i];
        if (v[i].len > t->def.max_value_len) {
            size_t cut = t->def.max_value_len;
            while (cut > 0 && ((unsigned char)v[i].p[cut] & 0xC0) == 0x80)
                cut--;
            v[i].len = cut;
        }
    }
    uint64_t h = hash_vals(v, n);
    struct dseries **head = &t->heads[h & t->mask];
    for (struct dseries *s = *head; s; s = s->next) {
        if (s->hash != h)
            continue;
        size_t i = 0;
        while (i < n && vg_str_eq(s->vals[i], v[i]))
            i++;
        if (i == n) {
            s->last_ms = now_ms;
            return s;
        }
    }
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (!ingest_valid_utf8(v[i]) || (v[i].len && memchr(v[i].p, 0, v[i].len))) {
            t->st.dropped_invalid++;
            return NULL;
        }
        bytes += v[i].len;
    }
    if (t->st.series >= t->def.max_series) {
        t->st.dropped_full++;
        return NULL;
    }
    struct dseries *s = vg_calloc(1, t->fixed_size + bytes + 1);
    if (!s) {
        t->st.dropped_full++;
        return NULL;
    }
    char *p = (char *)s + t->fixed_size;
    for (size_t i = 0; i < n; i++) {
        if (v[i].len)
            memcpy(p, v[i].p, v[i].len);
        s->vals[i] = (struct vg_str){ p, v[i].len };
        p += v[i].len;
    }
    s->hash = h;
    s->last_ms = now_ms;
    s->born_ms = now_ms;
    s->next = *head;
    *head = s;
    t->st.series++;
    return s;
}

void dtable_count(struct dtable *t, struct dseries *s, size_t i, double delta)
{
    (void)t;
    s->num[i] += delta;
}

void dtable_observe(struct dtable *t, struct dseries *s, size_t i, double v,
                    const struct dtable_exemplar *ex)
{
    double *h = s->num + t->def.ncounters + i * HIST_NUM(t);
    size_t b = 0;
    while (b < t->def.nbounds && v > t->bounds[b]) /* le: upper bound inclusive */
        b++;
    h[0] += v;
    h[1] += 1;
    h[2 + b] += 1;
    if (ex && t->def.exemplars) {
        struct slot *sl = &slots_of(t, s)[i * (t->def.nbounds + 1) + b];
        sl->e = *ex;
        sl->v = v;
        sl->fresh = true;
    }
}

void dtable_out_init(struct dtable_out *o)
{
    memset(o, 0, sizeof *o);
}

void dtable_out_free(struct dtable_out *o)
{
    vg_free(o->series);
    vg_arena_free(o->arena);
    dtable_out_init(o);
}

static bool idle(const struct dtable *t, const struct dseries *s, int64_t now_ms)
{
    return t->def.idle_ms > 0 && now_ms - s->last_ms > t->def.idle_ms;
}

static void hex(char *out, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Builds the collection of series s: the label values in the arena, then one row per
 * counter and per histogram part. Returns false when the arena is exhausted. */
struct rows {
    struct dtable *t;
    struct dtable_out *o;
    int64_t now_ms;
    struct label base[DTABLE_MAX_LABELS + 1]; /* __name__ first, then the non-empty values */
    size_t nbase;
    bool zero;       /* the series is new: each row starts with a 0 sample at zero_ms */
    int64_t zero_ms;
};

static bool add_row(struct rows *r, const char *name, const char *le, double v,
                    const struct slot *ex)
{
    struct vg_arena *a = r->o->arena;
    size_t n = r->nbase + (le != NULL);
    struct label *ls = vg_arena_alloc(a, n * sizeof *ls);
    size_t nsm = r->zero ? 2 : 1;
    struct tsdb_sample *sm = vg_arena_alloc(a, nsm * sizeof *sm);
    if (!ls || !sm)
        return false;
    memcpy(ls, r->base, r->nbase * sizeof *ls);
    ls[0].value = vg_str_c(name);
    if (le)
        ls[r->nbase] = (struct label){ VG_STR("le"), vg_str_c(le) };
    labels_sort(ls, n);
    if (r->zero)
        sm[0] = (struct tsdb_sample){ r->zero_ms, 0 };
    sm[nsm - 1] = (struct tsdb_sample){ r->now_ms, v };
    struct tsdb_series_in *in = &r->o->series[r->o->n++];
    *in = (struct tsdb_series_in){ .labels = ls, .nlabels = n, .samples = sm,
                                   .nsamples = nsm };
    if (ex && ex->fresh) {
        struct tsdb_exemplar *e = vg_arena_alloc(a, sizeof *e);
        struct label *el = vg_arena_alloc(a, 2 * sizeof *el);
        char *ids = vg_arena_alloc(a, 2 * 16 + 1 + 2 * 8 + 1);
        if (!e || !el || !ids)
            return false;
        hex(ids, ex->e.trace_id, 16);
        hex(ids + 33, ex->e.span_id, 8);
        el[0] = (struct label){ VG_STR("span_id"), { ids + 33, 16 } };
        el[1] = (struct label){ VG_STR("trace_id"), { ids, 32 } };
        *e = (struct tsdb_exemplar){ .labels = el, .nlabels = 2, .t = ex->e.t_ms, .v = ex->v };
        in->exemplars = e;
        in->nexemplars = 1;
    }
    return true;
}

static bool rows_of(struct rows *r, struct dseries *s)
{
    struct dtable *t = r->t;
    r->zero = !s->written;
    r->zero_ms = s->born_ms < r->now_ms ? s->born_ms : r->now_ms - 1;
    r->nbase = 1;
    r->base[0].name = VG_STR("__name__");
    for (size_t i = 0; i < t->def.nlabels; i++) {
        if (!s->vals[i].len)
            continue;
        char *v = vg_arena_strndup(r->o->arena, s->vals[i].p, s->vals[i].len);
        if (!v)
            return false;
        r->base[r->nbase++] = (struct label){ vg_str_c(t->label_names[i]),
                                              { v, s->vals[i].len } };
    }
    for (size_t i = 0; i < t->def.ncounters; i++)
        if (!add_row(r, t->counter_names[i], NULL, s->num[i], NULL))
            return false;
    const struct slot *slots = t->def.exemplars ? slots_of(t, s) : NULL;
    for (size_t i = 0; i < t->def.nhists; i++) {
        const double *h = s->num + t->def.ncounters + i * HIST_NUM(t);
        double cum = 0;
        for (size_t b = 0; b <= t->def.nbounds; b++) {
            cum += h[2 + b];
            const struct slot *ex = slots ? &slots[i * (t->def.nbounds + 1) + b] : NULL;
            if (!add_row(r, t->hist_names[i][0], t->le[b], cum, ex))
                return false;
        }
        if (!add_row(r, t->hist_names[i][1], NULL, h[0], NULL) ||
            !add_row(r, t->hist_names[i][2], NULL, h[1], NULL))
            return false;
    }
    return true;
}

int dtable_collect(struct dtable *t, int64_t now_ms, struct dtable_out *out,
                   struct vg_err *err)
{
    size_t per = t->def.ncounters + t->def.nhists * (t->def.nbounds + 3);
    if (!out->arena && !(out->arena = vg_arena_new((size_t)64 * 1024)))
        return vg_err_set(err, VG_ENOMEM, "out of memory collecting derived series");
    dtable_lock(t);
    size_t need = out->n + (size_t)t->st.series * per;
    if (need > out->cap) {
        struct tsdb_series_in *ns = vg_realloc(out->series, need * sizeof *ns);
        if (!ns) {
            dtable_unlock(t);
            return vg_err_set(err, VG_ENOMEM, "out of memory collecting derived series");
        }
        out->series = ns;
        out->cap = need;
    }
    size_t n0 = out->n;
    struct rows r = { .t = t, .o = out, .now_ms = now_ms };
    bool ok = true;
    for (size_t i = 0; ok && i <= t->mask; i++)
        for (struct dseries *s = t->heads[i]; ok && s; s = s->next)
            if (!idle(t, s, now_ms))
                ok = rows_of(&r, s);
    if (!ok) {
        out->n = n0;
        dtable_unlock(t);
        return vg_err_set(err, VG_ENOMEM, "out of memory collecting derived series");
    }
    /* Written: series are no longer new, exemplars no longer fresh, idle series go. */
    size_t nslots = t->def.exemplars ? t->def.nhists * (t->def.nbounds + 1) : 0;
    for (size_t i = 0; i <= t->mask; i++) {
        for (struct dseries **pp = &t->heads[i]; *pp;) {
            struct dseries *s = *pp;
            if (idle(t, s, now_ms)) {
                *pp = s->next;
                vg_free(s);
                t->st.series--;
                t->st.expired++;
                continue;
            }
            s->written = true;
            struct slot *sl = nslots ? slots_of(t, s) : NULL;
            for (size_t k = 0; k < nslots; k++)
                sl[k].fresh = false;
            pp = &s->next;
        }
    }
    dtable_unlock(t);
    return 0;
}

void dtable_stats(struct dtable *t, struct dtable_stats *st)
{
    dtable_lock(t);
    *st = t->st;
    dtable_unlock(t);
}
