/* otlp_delta: see otlp_delta.h.
 *
 * A chained hash table of entries keyed by the caller's bytes (FNV-1a). Each entry keeps
 * the running totals of one series in the shape of its kind (number, classic histogram,
 * exponential histogram) and the timestamp of the last point added. Updates build any new
 * arrays first and swap them in last, so a failed update leaves the entry as it was. */
#include "otlp_delta.h"

#include "../../storage/base/vg_alloc.h"

#include <pthread.h>
#include <string.h>

enum kind { K_NUMBER, K_HIST, K_EXP };

struct side {
    int64_t offset;
    size_t n;
    uint64_t *counts;
};

struct entry {
    struct entry *next;
    uint64_t hash;
    int64_t last_t;
    enum kind kind;
    double total;             /* K_NUMBER */
    uint64_t count;           /* K_HIST, K_EXP */
    double sum;
    bool has_sum;
    size_t nbounds;           /* K_HIST */
    double *bounds;
    size_t ncounts;           /* nbounds + 1 or 0 */
    uint64_t *counts;
    int32_t scale;            /* K_EXP */
    uint64_t zero_count;
    double zero_threshold;
    struct side pos, neg;
    size_t klen;
    unsigned char key[];
};

struct otlp_delta_state {
    pthread_mutex_t mu;
    struct entry **tab;
    size_t nbuckets;
    size_t n;
    size_t max_series;
    int64_t idle_ms;
    int64_t newest_t;       /* newest point timestamp seen: the clock for idleness */
    size_t since_sweep;
};

static uint64_t hash_key(const void *key, size_t n)
{
    const unsigned char *p = key;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static void entry_clear_arrays(struct entry *e)
{
    vg_free(e->bounds);
    vg_free(e->counts);
    vg_free(e->pos.counts);
    vg_free(e->neg.counts);
    e->bounds = NULL;
    e->counts = NULL;
    e->pos.counts = e->neg.counts = NULL;
    e->nbounds = e->ncounts = e->pos.n = e->neg.n = 0;
}

static void entry_free(struct entry *e)
{
    entry_clear_arrays(e);
    vg_free(e);
}

struct otlp_delta_state *otlp_delta_new(size_t max_series, int64_t idle_ms)
{
    struct otlp_delta_state *s = vg_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->nbuckets = 256;
    s->tab = vg_calloc(s->nbuckets, sizeof *s->tab);
    if (!s->tab) {
        vg_free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->max_series = max_series ? max_series : 100000;
    s->idle_ms = idle_ms > 0 ? idle_ms : (int64_t)3600 * 1000;
    return s;
}

void otlp_delta_free(struct otlp_delta_state *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct entry *e = s->tab[i];
        while (e) {
            struct entry *next = e->next;
            entry_free(e);
            e = next;
        }
    }
    vg_free(s->tab);
    pthread_mutex_destroy(&s->mu);
    vg_free(s);
}

size_t otlp_delta_size(struct otlp_delta_state *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Drops entries idle for longer than idle_ms at data time now. Caller holds mu. */
static void sweep(struct otlp_delta_state *s, int64_t now)
{
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct entry **pp = &s->tab[i];
        while (*pp) {
            struct entry *e = *pp;
            if (now - e->last_t > s->idle_ms) {
                *pp = e->next;
                entry_free(e);
                s->n--;
            } else {
                pp = &e->next;
            }
        }
    }
    s->since_sweep = 0;
}

static void grow(struct otlp_delta_state *s)
{
    size_t nb = s->nbuckets * 2;
    struct entry **tab = vg_calloc(nb, sizeof *tab);
    if (!tab)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct entry *e = s->tab[i];
        while (e) {
            struct entry *next = e->next;
            e->next = tab[e->hash & (nb - 1)];
            tab[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    vg_free(s->tab);
    s->tab = tab;
    s->nbuckets = nb;
}

/* Finds the entry of key, or creates an empty one (*created true). Checks the point is
 * newer. Caller holds mu. NULL with err on failure. */
static struct entry *lookup(struct otlp_delta_state *s, const void *key, size_t klen,
                            int64_t t, bool *created, struct vg_err *err)
{
    uint64_t h = hash_key(key, klen);
    *created = false;
    for (struct entry *e = s->tab[h & (s->nbuckets - 1)]; e; e = e->next) {
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0) {
            if (t <= e->last_t) {
                vg_err_set(err, VG_ECONFLICT,
                           "delta point at %lld ms is not newer than the last one accumulated "
                           "for its series (%lld ms); refused so it is not counted twice",
                           (long long)t, (long long)e->last_t);
                return NULL;
            }
            return e;
        }
    }
    /* The incoming point's time counts as the clock too: a full table of series that
     * stopped reporting must make room for the series replacing them, although no point
     * has been accepted since (newest_t only moves on success). */
    if (s->since_sweep >= s->n || s->n >= s->max_series)
        sweep(s, t > s->newest_t ? t : s->newest_t);
    if (s->n >= s->max_series) {
        vg_err_set(err, VG_ETOOLARGE,
                   "delta-to-cumulative state already tracks %zu series, the limit "
                   "(otlp.delta_max_series)",
                   s->n);
        return NULL;
    }
    struct entry *e = vg_calloc(1, sizeof *e + klen);
    if (!e) {
        vg_err_set(err, VG_ENOMEM, "out of memory in the delta-to-cumulative state");
        return NULL;
    }
    memcpy(e->key, key, klen);
    e->klen = klen;
    e->hash = h;
    e->last_t = INT64_MIN;
    e->next = s->tab[h & (s->nbuckets - 1)];
    s->tab[h & (s->nbuckets - 1)] = e;
    s->n++;
    s->since_sweep++;
    if (s->n > s->nbuckets)
        grow(s);
    *created = true;
    return e;
}

/* Takes mu and looks key up; on failure releases mu again and returns NULL. */
static struct entry *lock_lookup(struct otlp_delta_state *s, const void *key, size_t klen,
                                 int64_t t, bool *created, struct vg_err *err)
{
    pthread_mutex_lock(&s->mu);
    struct entry *e = lookup(s, key, klen, t, created, err);
    if (!e)
        pthread_mutex_unlock(&s->mu);
    return e;
}

/* Unlinks and frees a just-created entry whose first update failed. Caller holds mu. */
static void drop_new(struct otlp_delta_state *s, struct entry *e)
{
    struct entry **pp = &s->tab[e->hash & (s->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    entry_free(e);
    s->n--;
}

static void touch(struct otlp_delta_state *s, struct entry *e, int64_t t)
{
    e->last_t = t;
    if (t > s->newest_t)
        s->newest_t = t;
}

int otlp_delta_add_number(struct otlp_delta_state *s, const void *key, size_t klen,
                          int64_t t_ms, double delta, double *total, struct vg_err *err)
{
    bool created;
    struct entry *e = lock_lookup(s, key, klen, t_ms, &created, err);
    if (!e)
        return err ? err->code : VG_EINVAL;
    if (created || e->kind != K_NUMBER) {
        entry_clear_arrays(e);
        e->kind = K_NUMBER;
        e->total = 0;
    }
    e->total += delta;
    *total = e->total;
    touch(s, e, t_ms);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static void *dup_array(const void *p, size_t n, size_t size)
{
    if (n == 0)
        return NULL;
    void *q = vg_malloc(n * size);
    if (q)
        memcpy(q, p, n * size);
    return q;
}

static void *arena_dup(struct vg_arena *a, const void *p, size_t n, size_t size, bool *oom)
{
    if (n == 0)
        return NULL;
    void *q = vg_arena_alloc(a, n * size);
    if (!q) {
        *oom = true;
        return NULL;
    }
    memcpy(q, p, n * size);
    return q;
}

static bool same_layout(const struct entry *e, const struct otlp_hist *in)
{
    size_t nc = in->counts ? in->nbounds + 1 : 0;
    return e->kind == K_HIST && e->nbounds == in->nbounds && e->ncounts == nc &&
           (in->nbounds == 0 || memcmp(e->bounds, in->bounds, in->nbounds * sizeof(double)) == 0);
}

int otlp_delta_add_hist(struct otlp_delta_state *s, const void *key, size_t klen, int64_t t_ms,
                        const struct otlp_hist *in, struct vg_arena *a, struct otlp_hist *out,
                        struct vg_err *err)
{
    bool created;
    struct entry *e = lock_lookup(s, key, klen, t_ms, &created, err);
    if (!e)
        return err ? err->code : VG_EINVAL;
    if (created || !same_layout(e, in)) {
        /* A new series, or new bucket bounds: the totals start over from this point. */
        size_t nc = in->counts ? in->nbounds + 1 : 0;
        double *b = dup_array(in->bounds, in->nbounds, sizeof(double));
        uint64_t *c = dup_array(in->counts, nc, sizeof(uint64_t));
        if ((in->nbounds && !b) || (nc && !c)) {
            vg_free(b);
            vg_free(c);
            if (created)
                drop_new(s, e);
            pthread_mutex_unlock(&s->mu);
            return vg_err_set(err, VG_ENOMEM, "out of memory in the delta-to-cumulative state");
        }
        entry_clear_arrays(e);
        e->kind = K_HIST;
        e->bounds = b;
        e->nbounds = in->nbounds;
        e->counts = c;
        e->ncounts = nc;
        e->count = in->count;
        e->sum = in->sum;
        e->has_sum = in->has_sum;
    } else {
        for (size_t i = 0; i < e->ncounts; i++)
            e->counts[i] += in->counts[i];
        e->count += in->count;
        e->sum += in->sum;
        e->has_sum = e->has_sum && in->has_sum;
    }
    bool oom = false;
    out->count = e->count;
    out->sum = e->sum;
    out->has_sum = e->has_sum;
    out->nbounds = e->nbounds;
    out->bounds = arena_dup(a, e->bounds, e->nbounds, sizeof(double), &oom);
    out->counts = arena_dup(a, e->counts, e->ncounts, sizeof(uint64_t), &oom);
    touch(s, e, t_ms);
    pthread_mutex_unlock(&s->mu);
    if (oom)
        return vg_err_set(err, VG_ENOMEM, "out of memory copying an accumulated histogram");
    return 0;
}

/* floor(i / 2^k) for any sign of i. */
static int64_t shr_floor(int64_t i, int k)
{
    if (k <= 0)
        return i;
    if (k > 62)
        return i < 0 ? -1 : 0;
    return i >= 0 ? i >> k : -(((-(i + 1))) >> k) - 1;
}

/* Widens [*lo, *hi] to cover side b (at a scale shift bits finer than the target). */
static void cover(int64_t *lo, int64_t *hi, bool *any, int64_t off, size_t n, int shift)
{
    if (n == 0)
        return;
    int64_t l = shr_floor(off, shift), h = shr_floor(off + (int64_t)n - 1, shift);
    if (!*any || l < *lo)
        *lo = l;
    if (!*any || h > *hi)
        *hi = h;
    *any = true;
}

static void add_side(uint64_t *dst, int64_t lo, int64_t off, size_t n, const uint64_t *c,
                     int shift)
{
    for (size_t k = 0; k < n; k++)
        dst[shr_floor(off + (int64_t)k, shift) - lo] += c[k];
}

/* Merges stored side a (scale sa) and input side b (scale sb) at scale t into *res. */
static bool merge_side(const struct side *a, int32_t sa, const struct otlp_exp_buckets *b,
                       int32_t sb, int32_t t, struct side *res)
{
    int64_t lo = 0, hi = 0;
    bool any = false;
    cover(&lo, &hi, &any, a->offset, a->n, sa - t);
    cover(&lo, &hi, &any, b->offset, b->n, sb - t);
    res->offset = lo;
    res->n = any ? (size_t)(hi - lo + 1) : 0;
    res->counts = NULL;
    if (!any)
        return true;
    res->counts = vg_calloc(res->n, sizeof(uint64_t));
    if (!res->counts)
        return false;
    add_side(res->counts, lo, a->offset, a->n, a->counts, sa - t);
    add_side(res->counts, lo, b->offset, b->n, b->counts, sb - t);
    return true;
}

static size_t span(const struct side *a, int32_t sa, const struct otlp_exp_buckets *b,
                   int32_t sb, int32_t t)
{
    int64_t lo = 0, hi = 0;
    bool any = false;
    cover(&lo, &hi, &any, a->offset, a->n, sa - t);
    cover(&lo, &hi, &any, b->offset, b->n, sb - t);
    return any ? (size_t)(hi - lo + 1) : 0;
}

int otlp_delta_add_exphist(struct otlp_delta_state *s, const void *key, size_t klen,
                           int64_t t_ms, const struct otlp_exphist *in, struct vg_arena *a,
                           struct otlp_exphist *out, struct vg_err *err)
{
    bool created;
    struct entry *e = lock_lookup(s, key, klen, t_ms, &created, err);
    if (!e)
        return err ? err->code : VG_EINVAL;
    bool fresh = created || e->kind != K_EXP;
    struct side empty = { 0, 0, NULL };
    const struct side *sp = fresh ? &empty : &e->pos, *sn = fresh ? &empty : &e->neg;
    int32_t sscale = fresh ? in->scale : e->scale;
    int32_t t = sscale < in->scale ? sscale : in->scale;
    while (t > -200 && (span(sp, sscale, &in->pos, in->scale, t) > OTLP_DELTA_MAX_SPAN ||
                        span(sn, sscale, &in->neg, in->scale, t) > OTLP_DELTA_MAX_SPAN))
        t--;
    struct side np, nn;
    bool ok = merge_side(sp, sscale, &in->pos, in->scale, t, &np);
    if (ok && !merge_side(sn, sscale, &in->neg, in->scale, t, &nn)) {
        vg_free(np.counts);
        ok = false;
    }
    if (!ok) {
        if (created)
            drop_new(s, e);
        pthread_mutex_unlock(&s->mu);
        return vg_err_set(err, VG_ENOMEM, "out of memory in the delta-to-cumulative state");
    }
    if (fresh) {
        entry_clear_arrays(e);
        e->kind = K_EXP;
        e->count = in->count;
        e->sum = in->sum;
        e->has_sum = in->has_sum;
        e->zero_count = in->zero_count;
        e->zero_threshold = in->zero_threshold;
    } else {
        vg_free(e->pos.counts);
        vg_free(e->neg.counts);
        e->count += in->count;
        e->sum += in->sum;
        e->has_sum = e->has_sum && in->has_sum;
        e->zero_count += in->zero_count;
        if (in->zero_threshold > e->zero_threshold)
            e->zero_threshold = in->zero_threshold;
    }
    e->pos = np;
    e->neg = nn;
    e->scale = t;
    bool oom = false;
    out->scale = e->scale;
    out->count = e->count;
    out->sum = e->sum;
    out->has_sum = e->has_sum;
    out->zero_count = e->zero_count;
    out->zero_threshold = e->zero_threshold;
    out->pos = (struct otlp_exp_buckets){ e->pos.offset, e->pos.n,
                                          arena_dup(a, e->pos.counts, e->pos.n, 8, &oom) };
    out->neg = (struct otlp_exp_buckets){ e->neg.offset, e->neg.n,
                                          arena_dup(a, e->neg.counts, e->neg.n, 8, &oom) };
    touch(s, e, t_ms);
    pthread_mutex_unlock(&s->mu);
    if (oom)
        return vg_err_set(err, VG_ENOMEM, "out of memory copying an accumulated histogram");
    return 0;
}
