/* span_head: the span store's unwritten index postings (see span_head.h).
 *
 * A generation is an open-addressing hash table of terms; each term owns a growing
 * array of postings and its key bytes live in one buffer of the generation. */
#include "span_head.h"

#include "../base/vg_alloc.h"
#include "../base/vg_buf.h"
#include "../base/vg_sort.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct hterm {
    uint64_t h;
    size_t off, klen; /* key bytes in gen.keys */
    struct span_head_posting *p;
    size_t n, cap;
};

struct gen {
    struct hterm *terms;
    size_t nterms, capterms;
    uint32_t *slots; /* term index + 1, 0 = free; nslots a power of two */
    size_t nslots;
    struct vg_buf keys;
    size_t postings;
    struct span_head_term *sorted; /* built by span_head_frozen */
};

struct span_head {
    pthread_mutex_t mu;     /* active, and the frozen pointer */
    pthread_rwlock_t rw;    /* queries read-locked; release write-locks */
    struct gen *active, *frozen;
};

uint64_t span_head_hash(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)n * 0xff51afd7ed558ccdULL);
    for (; n >= 8; b += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
        h ^= h >> 32;
    }
    uint64_t w = 0;
    if (n)
        memcpy(&w, b, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 29;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 32;
    return h | 1; /* never 0, the free marker of the tables that use it */
}

static void gen_free(struct gen *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->nterms; i++)
        vg_free(g->terms[i].p);
    vg_free(g->terms);
    vg_free(g->slots);
    vg_buf_free(&g->keys);
    vg_free(g->sorted);
    vg_free(g);
}

struct span_head *span_head_new(void)
{
    struct span_head *h = vg_calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->active = vg_calloc(1, sizeof *h->active);
    if (!h->active) {
        vg_free(h);
        return NULL;
    }
    pthread_mutex_init(&h->mu, NULL);
    pthread_rwlock_init(&h->rw, NULL);
    return h;
}

void span_head_free(struct span_head *h)
{
    if (!h)
        return;
    gen_free(h->active);
    gen_free(h->frozen);
    pthread_mutex_destroy(&h->mu);
    pthread_rwlock_destroy(&h->rw);
    vg_free(h);
}

void span_head_lock(struct span_head *h)
{
    pthread_mutex_lock(&h->mu);
}

void span_head_unlock(struct span_head *h)
{
    pthread_mutex_unlock(&h->mu);
}

size_t span_head_active(const struct span_head *h)
{
    return h->active->postings;
}

static bool gen_grow(struct gen *g)
{
    size_t ns = g->nslots ? g->nslots * 2 : 1024;
    uint32_t *nv = vg_calloc(ns, sizeof *nv);
    if (!nv)
        return false;
    for (size_t i = 0; i < g->nterms; i++) {
        size_t j = (size_t)g->terms[i].h & (ns - 1);
        while (nv[j])
            j = (j + 1) & (ns - 1);
        nv[j] = (uint32_t)(i + 1);
    }
    vg_free(g->slots);
    g->slots = nv;
    g->nslots = ns;
    return true;
}

/* The term of key in g, or NULL (*slot: where a new one goes). */
static struct hterm *gen_find(const struct gen *g, const char *key, size_t klen, uint64_t h,
                              size_t *slot)
{
    if (!g->nslots)
        return NULL;
    size_t i = (size_t)h & (g->nslots - 1);
    for (; g->slots[i]; i = (i + 1) & (g->nslots - 1)) {
        struct hterm *t = &g->terms[g->slots[i] - 1];
        if (t->h == h && t->klen == klen && memcmp(g->keys.p + t->off, key, klen) == 0)
            return t;
    }
    if (slot)
        *slot = i;
    return NULL;
}

bool span_head_add(struct span_head *h, const char *key, size_t klen, uint64_t hv,
                   const struct span_head_posting *p, size_t n)
{
    if (!n)
        return true;
    struct gen *g = h->active;
    size_t slot = 0;
    struct hterm *t = gen_find(g, key, klen, hv, &slot);
    if (!t) {
        if ((g->nterms + 1) * 2 > g->nslots) {
            if (g->nterms >= UINT32_MAX - 1 || !gen_grow(g))
                return false;
            gen_find(g, key, klen, hv, &slot);
        }
        if (g->nterms == g->capterms) {
            size_t nc = g->capterms ? g->capterms * 2 : 256;
            struct hterm *nv = vg_realloc(g->terms, nc * sizeof *nv);
            if (!nv)
                return false;
            g->terms = nv;
            g->capterms = nc;
        }
        size_t off = g->keys.len;
        if (!vg_buf_reserve(&g->keys, klen)) {
            g->keys.failed = false; /* the bytes held are intact: later adds may grow it */
            return false;
        }
        vg_buf_append(&g->keys, key, klen);
        t = &g->terms[g->nterms];
        *t = (struct hterm){ hv, off, klen, NULL, 0, 0 };
        g->slots[slot] = (uint32_t)++g->nterms;
    }
    if (t->n + n > t->cap) {
        /* from 1: most terms (attribute values such as URLs) never get a second */
        size_t nc = t->cap ? t->cap * 2 : 1;
        while (nc < t->n + n)
            nc *= 2;
        struct span_head_posting *nv = vg_realloc(t->p, nc * sizeof *nv);
        if (!nv)
            return false;
        t->p = nv;
        t->cap = nc;
    }
    memcpy(t->p + t->n, p, n * sizeof *p);
    t->n += n;
    g->postings += n;
    return true;
}

bool span_head_freeze(struct span_head *h)
{
    if (h->frozen || !h->active->postings)
        return false;
    struct gen *fresh = vg_calloc(1, sizeof *fresh);
    if (!fresh)
        return false;
    h->frozen = h->active;
    h->active = fresh;
    return true;
}

static int term_cmp(const void *a, const void *b)
{
    const struct span_head_term *x = a, *y = b;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->key, y->key, n);
    return c ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

size_t span_head_frozen(struct span_head *h, const struct span_head_term **terms)
{
    pthread_mutex_lock(&h->mu);
    struct gen *g = h->frozen;
    pthread_mutex_unlock(&h->mu);
    if (!g) {
        *terms = NULL;
        return 0;
    }
    if (!g->sorted && g->nterms) { /* only the flushing thread gets here */
        g->sorted = vg_malloc(g->nterms * sizeof *g->sorted);
        if (!g->sorted) {
            *terms = NULL;
            return 0;
        }
        for (size_t i = 0; i < g->nterms; i++)
            g->sorted[i] = (struct span_head_term){ g->keys.p + g->terms[i].off,
                                                    g->terms[i].klen, g->terms[i].h,
                                                    g->terms[i].p, g->terms[i].n };
        qsort(g->sorted, g->nterms, sizeof *g->sorted, term_cmp);
    }
    *terms = g->sorted;
    return g->nterms;
}

void span_head_release(struct span_head *h)
{
    pthread_rwlock_wrlock(&h->rw);
    pthread_mutex_lock(&h->mu);
    struct gen *g = h->frozen;
    h->frozen = NULL;
    pthread_mutex_unlock(&h->mu);
    pthread_rwlock_unlock(&h->rw);
    gen_free(g);
}

void span_head_read_begin(struct span_head *h)
{
    pthread_rwlock_rdlock(&h->rw);
}

void span_head_read_end(struct span_head *h)
{
    pthread_rwlock_unlock(&h->rw);
}

static int posting_cmp(const struct span_head_posting *x, const struct span_head_posting *y)
{
    if (x->t != y->t)
        return x->t > y->t ? -1 : 1;
    return memcmp(x->tid, y->tid, SPAN_TRACE_ID_LEN);
}

static int posting_order(const void *a, const void *b)
{
    return posting_cmp(a, b);
}

/* Insertion sort by posting_cmp: most terms hold a handful of postings, and runs a
 * radix pass left in order by time need only their trace-id ties put right. */
static void insertion_sort(struct span_head_posting *p, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        if (posting_cmp(&p[i - 1], &p[i]) <= 0)
            continue;
        struct span_head_posting x = p[i];
        size_t j = i;
        for (; j > 0 && posting_cmp(&p[j - 1], &x) > 0; j--)
            p[j] = p[j - 1];
        p[j] = x;
    }
}

/* Big terms (the service, "every trace") hold a posting per trace: a radix sort by
 * time (only the bytes that differ cost a pass), then insertion puts equal times in
 * trace-id order; qsort when the scratch cannot be allocated. */
#define RADIX_MIN 48

void span_head_sort(struct span_head_posting *p, size_t n)
{
    if (n < RADIX_MIN) {
        insertion_sort(p, n);
        return;
    }
    struct vg_sort_key *k = vg_malloc(2 * n * sizeof *k);
    struct span_head_posting *tmp = k ? vg_malloc(n * sizeof *tmp) : NULL;
    struct vg_sort_key *sorted = NULL;
    if (tmp) {
        for (size_t i = 0; i < n; i++)
            k[i] = (struct vg_sort_key){ ~((uint64_t)p[i].t ^ (1ULL << 63)), 0, i };
        sorted = vg_sort_keys(k, k + n, n);
    }
    if (!sorted) {
        vg_free(k);
        vg_free(tmp);
        qsort(p, n, sizeof *p, posting_order);
        return;
    }
    for (size_t i = 0; i < n; i++)
        tmp[i] = p[sorted[i].i];
    memcpy(p, tmp, n * sizeof *p);
    vg_free(k);
    vg_free(tmp);
    /* runs of one time in trace-id order: long ones (a client stamping every span
     * alike) by qsort, so the sort never turns quadratic */
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && p[j].t == p[i].t; j++)
            ;
        if (j - i > 16)
            qsort(p + i, j - i, sizeof *p, posting_order);
        else
            insertion_sort(p + i, j - i);
    }
}

static bool copy_from(const struct gen *g, const char *key, size_t klen, uint64_t hv,
                      int64_t to, struct span_head_posting **out, size_t *n, size_t *cap)
{
    const struct hterm *t = g ? gen_find(g, key, klen, hv, NULL) : NULL;
    if (!t)
        return true;
    if (*n + t->n > *cap) {
        size_t nc = *n + t->n;
        struct span_head_posting *nv = vg_realloc(*out, nc * sizeof *nv);
        if (!nv)
            return false;
        *out = nv;
        *cap = nc;
    }
    for (size_t i = 0; i < t->n; i++)
        if (to <= 0 || t->p[i].t <= to)
            (*out)[(*n)++] = t->p[i];
    return true;
}

bool span_head_copy(struct span_head *h, const char *key, size_t klen, int64_t to,
                    struct span_head_posting **out, size_t *n, size_t *cap)
{
    uint64_t hv = span_head_hash(key, klen);
    *n = 0;
    pthread_mutex_lock(&h->mu);
    bool ok = copy_from(h->active, key, klen, hv, to, out, n, cap) &&
              copy_from(h->frozen, key, klen, hv, to, out, n, cap);
    pthread_mutex_unlock(&h->mu);
    if (ok)
        span_head_sort(*out, *n);
    return ok;
}
