/* span_head: the span store's unwritten index postings (see span_head.h).
 *
 * A generation is an open-addressing hash table of terms (slots hold term index + 1);
 * the terms' key bytes live in one buffer of the generation, and each term's postings
 * in one array. Arrays under OWN_BYTES have a power-of-two capacity and are cut from
 * shared slabs of SLAB_BYTES (bump allocation); an array a term outgrows goes on the
 * free list of its size class and serves the next term that grows to that size, as
 * malloc would. A bigger array is a slab of its own, grown by realloc (which moves the
 * pages of a block that large instead of copying them), and found at release through
 * its term. Nothing is freed per term: a generation's slabs go at once.
 *
 * Reuse: span_head_release moves the frozen generation's slabs to h->pool (freeing what
 * the pool still held, so it never keeps more than one generation's slabs) and its
 * emptied tables to h->spare, which the next freeze makes the new active generation.
 * Tables a generation filled to less than a quarter are freed instead of kept, so one
 * burst does not pin its tables for good; span_head_trim frees pool and spare. */
#include "span_head.h"

#include "../base/vg_alloc.h"
#include "../base/vg_buf.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SLAB_BYTES ((size_t)1 << 20)
#define OWN_BYTES ((size_t)64 << 10) /* arrays of at least this get a slab of their own */
#define NCLASS 16 /* size classes of shared-slab arrays: 2^0 .. 2^11 postings used */
#define KEEP_MIN_TERMS 4096          /* tables this small are always kept */

struct slab {
    struct slab *next; /* in gen.slabs (shared slabs) or h->pool */
    size_t bytes;      /* usable bytes, right after this header (16 bytes: keeps alignment) */
};

struct hterm {
    uint64_t h;
    size_t off, klen; /* key bytes in gen.keys */
    struct span_head_posting *p;
    size_t n, cap; /* cap: 0, a power of two (a size class), or an own slab's room */
};

struct gen {
    struct hterm *terms;
    size_t nterms, capterms;
    uint32_t *slots; /* term index + 1, 0 = free; nslots a power of two */
    size_t nslots;
    struct vg_buf keys;
    size_t postings;
    /* posting arrays: slabs, the rest of the current bump slab, outgrown arrays by
     * size class (each holds the next one's address in its first bytes) */
    struct slab *slabs; /* the shared ones; a term's own slab is found through the term */
    size_t slab_bytes;  /* of both kinds */
    char *bump;
    size_t left;
    struct span_head_posting *spare_arr[NCLASS];
    /* built by span_head_frozen (the flushing thread only), kept with the tables */
    bool have_sorted;
    struct span_head_term *sorted;
    uint32_t *ord;           /* term indexes in key order */
    uint32_t *otmp;          /* the radix sort's scratch, capsorted */
    size_t capsorted;
};

struct span_head {
    pthread_mutex_t mu;     /* active, the frozen pointer, spare and pool */
    pthread_rwlock_t rw;    /* queries read-locked; release write-locks */
    struct gen *active, *frozen;
    struct gen *spare;      /* the last released generation's emptied tables */
    struct slab *pool;      /* its slabs, for the active generation to take */
    size_t pool_bytes;
};

uint64_t span_head_hash(const void *p, size_t n)
{
    const uint8_t *b = p;
    size_t len = n;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)n * 0xff51afd7ed558ccdULL);
    for (; n >= 8; b += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
        h ^= h >> 32;
    }
    /* The tail, zero-extended little-endian, as memcpy(&w, b, n) would give it (the
     * values are stored: see span_head.h), without a variable-length copy: a key of 8
     * bytes or more loads the 8 ending at its end and shifts the bytes hashed already
     * out; a shorter one takes two overlapping loads. */
    uint64_t w = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n && len >= 8) {
        memcpy(&w, b + n - 8, 8);
        w >>= 8 * (8 - n);
    } else if (n >= 4) {
        uint32_t lo, hi;
        memcpy(&lo, b, 4);
        memcpy(&hi, b + n - 4, 4);
        w = lo | (uint64_t)hi << (8 * (n - 4));
    } else if (n) {
        w = b[0] | (uint64_t)b[n / 2] << (8 * (n / 2)) | (uint64_t)b[n - 1] << (8 * (n - 1));
    }
#else
    if (n)
        memcpy(&w, b, n);
#endif
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 29;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 32;
    return h | 1; /* never 0, the free marker of the tables that use it */
}

static void slabs_free(struct slab *s)
{
    while (s) {
        struct slab *next = s->next;
        vg_free(s);
        s = next;
    }
}

/* Frees g's tables (not its slabs) and zeroes their fields. */
static void gen_free_tables(struct gen *g)
{
    vg_free(g->terms);
    vg_free(g->slots);
    vg_buf_free(&g->keys);
    vg_free(g->sorted);
    vg_free(g->ord);
    vg_free(g->otmp);
    g->terms = NULL;
    g->slots = NULL;
    g->sorted = NULL;
    g->ord = NULL;
    g->otmp = NULL;
    g->capterms = g->nslots = g->capsorted = 0;
}

/* An array of cap postings is a slab of its own when it is this big. */
static bool is_own(size_t cap)
{
    return cap * sizeof(struct span_head_posting) >= OWN_BYTES;
}

/* Unlinks every slab of g, shared and own, into one list. */
static struct slab *gen_take_slabs(struct gen *g)
{
    struct slab *list = g->slabs;
    for (size_t i = 0; i < g->nterms; i++) {
        if (is_own(g->terms[i].cap)) {
            struct slab *s = (struct slab *)(void *)g->terms[i].p - 1;
            s->next = list;
            list = s;
        }
    }
    g->slabs = NULL;
    return list;
}

static void gen_free(struct gen *g)
{
    if (!g)
        return;
    slabs_free(gen_take_slabs(g));
    gen_free_tables(g);
    vg_free(g);
}

/* Empties g for reuse as a new active generation. Its slabs must have been taken. Tables
 * it filled to less than a quarter (and not small) are freed rather than kept. */
static void gen_clear(struct gen *g)
{
    if (g->capterms > KEEP_MIN_TERMS && g->nterms * 4 < g->capterms) {
        gen_free_tables(g);
    } else {
        if (g->slots)
            memset(g->slots, 0, g->nslots * sizeof *g->slots);
        vg_buf_reset(&g->keys);
    }
    g->nterms = g->postings = 0;
    g->slabs = NULL;
    g->slab_bytes = 0;
    g->bump = NULL;
    g->left = 0;
    memset(g->spare_arr, 0, sizeof g->spare_arr);
    g->have_sorted = false;
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
    gen_free(h->spare);
    slabs_free(h->pool);
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

/* The smallest slab of the pool with at least `bytes` (and at most `most`), or a new
 * one; counted in g's slab bytes. Call with the lock held. */
static struct slab *slab_take(struct span_head *h, struct gen *g, size_t bytes, size_t most)
{
    struct slab **best = NULL;
    for (struct slab **pp = &h->pool; *pp; pp = &(*pp)->next)
        if ((*pp)->bytes >= bytes && (*pp)->bytes <= most &&
            (!best || (*pp)->bytes < (*best)->bytes))
            best = pp;
    struct slab *s;
    if (best) {
        s = *best;
        *best = s->next;
        h->pool_bytes -= s->bytes;
    } else {
        if (bytes > SIZE_MAX - sizeof *s || !(s = vg_malloc(sizeof *s + bytes)))
            return NULL;
        s->bytes = bytes;
    }
    s->next = NULL;
    g->slab_bytes += s->bytes;
    return s;
}

/* An array of 2^cls postings (under OWN_BYTES) for g, or NULL when out of memory. */
static struct span_head_posting *arr_take(struct span_head *h, struct gen *g, unsigned cls)
{
    struct span_head_posting *p = g->spare_arr[cls];
    if (p) {
        memcpy(&g->spare_arr[cls], (const void *)p, sizeof(struct span_head_posting *)); /* the next one of the list */
        return p;
    }
    size_t bytes = ((size_t)1 << cls) * sizeof *p;
    if (g->left < bytes) { /* the rest of the current slab (< OWN_BYTES) goes unused */
        struct slab *s = slab_take(h, g, SLAB_BYTES, 2 * SLAB_BYTES);
        if (!s)
            return NULL;
        s->next = g->slabs;
        g->slabs = s;
        g->bump = (char *)(s + 1);
        g->left = s->bytes;
    }
    p = (struct span_head_posting *)(void *)g->bump;
    g->bump += bytes;
    g->left -= bytes;
    return p;
}

/* Gives term t room for `need` postings. False when out of memory (t unchanged). */
static bool term_grow(struct span_head *h, struct gen *g, struct hterm *t, size_t need)
{
    const size_t psz = sizeof *t->p;
    if (need > SIZE_MAX / 4 / psz)
        return false;
    if (is_own(t->cap)) {
        struct slab *s = (struct slab *)(void *)t->p - 1;
        size_t nb = s->bytes * 2;
        while (nb < need * psz)
            nb *= 2;
        /* a pooled slab big enough (its pages are in) takes the postings, and this one
         * goes to the pool for a smaller term; else realloc moves the pages */
        struct slab **best = NULL;
        for (struct slab **pp = &h->pool; *pp; pp = &(*pp)->next)
            if ((*pp)->bytes >= need * psz && (*pp)->bytes <= 2 * nb &&
                (!best || (*pp)->bytes < (*best)->bytes))
                best = pp;
        struct slab *ns;
        if (best) {
            ns = *best;
            *best = ns->next;
            memcpy(ns + 1, t->p, t->n * psz);
            h->pool_bytes += s->bytes;
            h->pool_bytes -= ns->bytes;
            s->next = h->pool;
            h->pool = s;
            g->slab_bytes += ns->bytes;
            g->slab_bytes -= s->bytes;
        } else {
            if (!(ns = vg_realloc(s, sizeof *ns + nb)))
                return false;
            g->slab_bytes += nb - ns->bytes;
            ns->bytes = nb;
        }
        t->p = (struct span_head_posting *)(void *)(ns + 1);
        t->cap = ns->bytes / psz;
        return true;
    }
    /* from 1: most terms (attribute values such as URLs) never get a second */
    unsigned cls = t->cap ? (unsigned)__builtin_ctzll(t->cap) + 1 : 0;
    while (((size_t)1 << cls) < need)
        cls++;
    struct span_head_posting *nv;
    size_t cap = (size_t)1 << cls;
    if (is_own(cap)) {
        struct slab *s = slab_take(h, g, cap * psz, SIZE_MAX);
        if (!s)
            return false;
        nv = (struct span_head_posting *)(void *)(s + 1);
        cap = s->bytes / psz; /* a slab from the pool may have more room */
    } else if (!(nv = arr_take(h, g, cls))) {
        return false;
    }
    if (t->n)
        memcpy(nv, t->p, t->n * psz);
    if (t->cap) { /* the outgrown array serves the next term of its size */
        unsigned old = (unsigned)__builtin_ctzll(t->cap);
        memcpy((void *)t->p, &g->spare_arr[old], sizeof(struct span_head_posting *));
        g->spare_arr[old] = t->p;
    }
    t->p = nv;
    t->cap = cap;
    return true;
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
    if (t->n + n > t->cap && !term_grow(h, g, t, t->n + n))
        return false;
    memcpy(t->p + t->n, p, n * sizeof *p);
    t->n += n;
    g->postings += n;
    return true;
}

bool span_head_freeze(struct span_head *h)
{
    if (h->frozen || !h->active->postings)
        return false;
    struct gen *fresh = h->spare;
    if (fresh)
        h->spare = NULL;
    else if (!(fresh = vg_calloc(1, sizeof *fresh)))
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

/* Sorting the terms by key: an MSD radix sort on term indexes, one byte a level (bin 0
 * for a key that ended, 1 + byte otherwise), skipping first the bytes every key of a
 * group shares (a group of URLs shares dozens), and insertion sort for small groups.
 * The largest bin is sorted in the same frame, the others by recursion, so the depth
 * stays under log2 of the terms. It replaced a qsort whose comparison calls were a
 * sixth of a flush. */
#define MSD_SMALL 24

/* Key order of terms x and y, whose first d bytes are equal. */
static int term_cmp_from(const struct gen *g, uint32_t x, uint32_t y, size_t d)
{
    const struct hterm *a = &g->terms[x], *b = &g->terms[y];
    size_t n = (a->klen < b->klen ? a->klen : b->klen) - d;
    int c = memcmp(g->keys.p + a->off + d, g->keys.p + b->off + d, n);
    return c ? c : (a->klen > b->klen) - (a->klen < b->klen);
}

/* Bytes from d on that every key of ord[0..n) has alike. */
static size_t common_prefix(const struct gen *g, const uint32_t *ord, size_t n, size_t d)
{
    const struct hterm *f = &g->terms[ord[0]];
    const char *fk = g->keys.p + f->off + d;
    size_t lcp = f->klen - d;
    for (size_t i = 1; i < n && lcp; i++) {
        const struct hterm *t = &g->terms[ord[i]];
        const char *tk = g->keys.p + t->off + d;
        size_t m = t->klen - d < lcp ? t->klen - d : lcp, l = 0;
        for (; l + 8 <= m && memcmp(fk + l, tk + l, 8) == 0; l += 8)
            ;
        while (l < m && fk[l] == tk[l])
            l++;
        lcp = l;
    }
    return lcp;
}

/* Sorts ord[0..n) (term indexes whose keys agree in their first d bytes) by key; tmp
 * has room for n indexes. */
static void sort_terms(const struct gen *g, uint32_t *ord, uint32_t *tmp, size_t n, size_t d)
{
    while (n >= MSD_SMALL) {
        d += common_prefix(g, ord, n, d);
        /* counts of the bins in use, and which (a group's next bytes take few values,
         * so the loops over bins go over those only) */
        uint32_t count[257] = { 0 }, pos[257];
        uint16_t used[257];
        unsigned nused = 0;
        for (size_t i = 0; i < n; i++) {
            const struct hterm *t = &g->terms[ord[i]];
            unsigned c = t->klen > d ? 1u + (uint8_t)g->keys.p[t->off + d] : 0;
            if (count[c]++ == 0)
                used[nused++] = (uint16_t)c;
        }
        for (unsigned i = 1; i < nused; i++) {
            uint16_t x = used[i];
            unsigned j = i;
            for (; j > 0 && used[j - 1] > x; j--)
                used[j] = used[j - 1];
            used[j] = x;
        }
        uint32_t sum = 0;
        unsigned big = used[0];
        for (unsigned i = 0; i < nused; i++) {
            pos[used[i]] = sum;
            sum += count[used[i]];
            if (count[used[i]] > count[big])
                big = used[i];
        }
        for (size_t i = 0; i < n; i++) {
            const struct hterm *t = &g->terms[ord[i]];
            unsigned c = t->klen > d ? 1u + (uint8_t)g->keys.p[t->off + d] : 0;
            tmp[pos[c]++] = ord[i];
        }
        memcpy(ord, tmp, n * sizeof *ord);
        /* pos[c] is now the end of bin c. Bin 0 holds at most one key (keys are unique);
         * the others go on at d + 1, the biggest in this frame. */
        for (unsigned i = 0; i < nused; i++) {
            unsigned c = used[i];
            if (c && c != big && count[c] > 1)
                sort_terms(g, ord + pos[c] - count[c], tmp, count[c], d + 1);
        }
        if (!big)
            return; /* bin 0 (one key) came out biggest: every bin holds one key */
        ord += pos[big] - count[big];
        n = count[big];
        d++;
    }
    for (size_t i = 1; i < n; i++) {
        uint32_t x = ord[i];
        size_t j = i;
        for (; j > 0 && term_cmp_from(g, ord[j - 1], x, d) > 0; j--)
            ord[j] = ord[j - 1];
        ord[j] = x;
    }
}

size_t span_head_frozen(struct span_head *h, const struct span_head_term **terms, bool *oom)
{
    pthread_mutex_lock(&h->mu);
    struct gen *g = h->frozen;
    pthread_mutex_unlock(&h->mu);
    *oom = false;
    if (!g) {
        *terms = NULL;
        return 0;
    }
    if (!g->have_sorted && g->nterms) { /* only the flushing thread gets here */
        if (g->nterms > g->capsorted || !g->ord || !g->otmp) {
            vg_free(g->sorted);
            vg_free(g->ord);
            vg_free(g->otmp);
            g->sorted = vg_malloc(g->nterms * sizeof *g->sorted);
            g->ord = vg_malloc(g->nterms * sizeof *g->ord);
            g->otmp = vg_malloc(g->nterms * sizeof *g->otmp);
            g->capsorted = g->nterms;
            if (!g->sorted) {
                vg_free(g->ord);
                vg_free(g->otmp);
                g->ord = NULL;
                g->otmp = NULL;
                g->capsorted = 0;
                *terms = NULL;
                *oom = true;
                return 0;
            }
        }
        bool radix = g->ord && g->otmp;
        for (size_t i = 0; radix && i < g->nterms; i++)
            g->ord[i] = (uint32_t)i;
        if (radix)
            sort_terms(g, g->ord, g->otmp, g->nterms, 0);
        for (size_t i = 0; i < g->nterms; i++) {
            const struct hterm *t = &g->terms[radix ? g->ord[i] : i];
            g->sorted[i] = (struct span_head_term){ g->keys.p + t->off, t->klen, t->h, t->p,
                                                    t->n };
        }
        if (!radix) /* the scratch could not be had: sort by comparison */
            qsort(g->sorted, g->nterms, sizeof *g->sorted, term_cmp);
        g->have_sorted = true;
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
    if (!g)
        return;
    /* emptied outside the lock: no one else sees g now */
    size_t bytes = g->slab_bytes;
    struct slab *slabs = gen_take_slabs(g);
    gen_clear(g);
    pthread_mutex_lock(&h->mu);
    struct slab *old = h->pool;
    struct gen *old_spare = h->spare;
    h->pool = slabs;
    h->pool_bytes = bytes;
    h->spare = g;
    pthread_mutex_unlock(&h->mu);
    slabs_free(old);
    gen_free(old_spare);
}

void span_head_trim(struct span_head *h)
{
    pthread_mutex_lock(&h->mu);
    struct slab *pool = h->pool;
    struct gen *spare = h->spare;
    h->pool = NULL;
    h->pool_bytes = 0;
    h->spare = NULL;
    struct gen idle = { .terms = NULL };
    struct gen *a = h->active;
    if (!a->postings) { /* its terms, if any, are ones whose postings failed to fit */
        idle = *a;
        memset(a, 0, sizeof *a);
    }
    pthread_mutex_unlock(&h->mu);
    slabs_free(pool);
    gen_free(spare);
    slabs_free(gen_take_slabs(&idle));
    gen_free_tables(&idle);
}

/* The bytes of g; its sort arrays only with `sorted` (the flushing thread builds the
 * frozen generation's without the lock). */
static size_t gen_bytes(const struct gen *g, bool sorted)
{
    if (!g)
        return 0;
    size_t n = g->slab_bytes + g->capterms * sizeof *g->terms + g->nslots * sizeof *g->slots +
               g->keys.cap;
    if (sorted)
        n += g->capsorted * (sizeof *g->sorted + sizeof *g->ord + sizeof *g->otmp);
    return n;
}

size_t span_head_bytes(struct span_head *h)
{
    pthread_mutex_lock(&h->mu);
    size_t n = gen_bytes(h->active, true) + gen_bytes(h->frozen, false) +
               gen_bytes(h->spare, true) + h->pool_bytes;
    pthread_mutex_unlock(&h->mu);
    return n;
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

/* The posting's time as an unsigned key that sorts newest first (the bytes of
 * span_index_put_suffix's ~time, read as a number). */
static uint64_t time_key(int64_t t)
{
    return ~((uint64_t)t ^ (1ULL << 63));
}

/* Big terms (the service, "every trace") hold a posting per trace: an LSD radix sort by
 * time key (only the bytes in which the keys differ cost a pass; input in order, or in
 * reverse, costs none), then insertion puts equal times in trace-id order. */
#define RADIX_MIN 48

static bool scratch_fit(struct span_head_sort_scratch *s, size_t n)
{
    if (n <= s->cap)
        return true;
    vg_free(s->a);
    vg_free(s->b);
    s->a = vg_malloc(n * sizeof *s->a);
    s->b = s->a ? vg_malloc(n * sizeof *s->b) : NULL;
    if (!s->b) {
        vg_free(s->a);
        s->a = NULL;
        s->cap = 0;
        return false;
    }
    s->cap = n;
    return true;
}

/* Puts runs of one time in trace-id order: long ones (a client stamping every span
 * alike) by qsort, so the sort never turns quadratic. */
static void sort_ties(struct span_head_posting *p, size_t n)
{
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && p[j].t == p[i].t; j++)
            ;
        if (j - i > 16)
            qsort(p + i, j - i, sizeof *p, posting_order);
        else if (j - i > 1)
            insertion_sort(p + i, j - i);
    }
}

const struct span_head_posting *span_head_sort_copy(const struct span_head_posting *p,
                                                    size_t n, struct span_head_sort_scratch *s)
{
    if (!scratch_fit(s, n))
        return NULL;
    struct span_head_posting *out = s->a;
    if (n < RADIX_MIN || n > UINT32_MAX) { /* (no term gets 2^32 postings) */
        memcpy(out, p, n * sizeof *p);
        if (n < RADIX_MIN)
            insertion_sort(out, n);
        else
            qsort(out, n, sizeof *out, posting_order);
        return out;
    }
    /* one pass: which bytes differ, whether already in order, and every byte's counts */
    uint32_t count[8][256];
    memset(count, 0, sizeof count);
    uint64_t first = time_key(p[0].t), prev = first, diff = 0;
    bool desc = true, asc = true; /* keys non-decreasing (newest first) / non-increasing */
    for (size_t i = 0; i < n; i++) {
        uint64_t k = time_key(p[i].t);
        diff |= k ^ first;
        desc &= prev <= k;
        asc &= prev >= k;
        prev = k;
        for (unsigned b = 0; b < 8; b++)
            count[b][(k >> (8 * b)) & 0xff]++;
    }
    if (desc) {
        memcpy(out, p, n * sizeof *p);
    } else if (asc) {
        for (size_t i = 0; i < n; i++)
            out[i] = p[n - 1 - i];
    } else {
        const struct span_head_posting *src = p;
        struct span_head_posting *dst = s->a, *other = s->b;
        for (unsigned b = 0; b < 8; b++) {
            if (!((diff >> (8 * b)) & 0xff))
                continue;
            uint32_t *c = count[b], sum = 0;
            for (unsigned v = 0; v < 256; v++) {
                uint32_t m = c[v];
                c[v] = sum;
                sum += m;
            }
            for (size_t i = 0; i < n; i++)
                dst[c[(time_key(src[i].t) >> (8 * b)) & 0xff]++] = src[i];
            out = dst;
            src = dst;
            dst = other;
            other = out;
        }
    }
    sort_ties(out, n);
    return out;
}

void span_head_sort_with(struct span_head_posting *p, size_t n,
                         struct span_head_sort_scratch *s)
{
    if (n < RADIX_MIN) {
        insertion_sort(p, n);
        return;
    }
    const struct span_head_posting *sorted = span_head_sort_copy(p, n, s);
    if (sorted)
        memcpy(p, sorted, n * sizeof *p);
    else /* no scratch to be had */
        qsort(p, n, sizeof *p, posting_order);
}

void span_head_sort_scratch_free(struct span_head_sort_scratch *s)
{
    vg_free(s->a);
    vg_free(s->b);
    s->a = s->b = NULL;
    s->cap = 0;
}

void span_head_sort(struct span_head_posting *p, size_t n)
{
    struct span_head_sort_scratch s = { NULL, NULL, 0 };
    span_head_sort_with(p, n, &s);
    span_head_sort_scratch_free(&s);
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
