/* lfilter: token/trigram bloom filters; rules and stored form in lfilter.h.
 *
 * The builder counts distinct elements before sizing the bloom: trigrams of case-folded
 * bytes fit in 24 bits, so a 2^24-bit bitmap (plus the list of set positions, to clear
 * it cheaply) deduplicates them exactly; token and metadata hashes go into a small
 * open-addressing set. */
#include "lfilter.h"

#include "../base/vg_alloc.h"
#include "lentry.h"

#include <string.h>

#define TRI_WORDS ((1u << 24) / 64)
#define SEED_TRI 0x9e3779b97f4a7c15ULL
#define SEED_TOKEN 0xc2b2ae3d27d4eb4fULL
#define SEED_META 0x165667b19e3779f9ULL

struct lfilter_builder {
    uint64_t *tri_bits;  /* 2^24 bits: trigram seen in this chunk */
    uint32_t *tris;      /* the set trigrams, in first-seen order */
    size_t ntris, tris_cap;
    uint64_t *set;       /* open addressing, 0 = empty; token and metadata hashes */
    size_t nset, set_cap;
};

/* Case-folded byte, or -1 for a separator. */
static int fold(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c + 32;
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c >= 0x80)
        return c;
    return -1;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t fnv_step(uint64_t h, unsigned char c)
{
    return (h ^ c) * 0x100000001b3ULL;
}

#define FNV_INIT 0xcbf29ce484222325ULL

static uint64_t tri_hash(uint32_t tri)
{
    return mix64(tri ^ SEED_TRI);
}

static uint64_t token_hash(uint64_t fnv)
{
    return mix64(fnv ^ SEED_TOKEN);
}

static uint64_t meta_hash(struct vg_str name, struct vg_str value)
{
    uint64_t h = FNV_INIT;
    for (size_t i = 0; i < name.len; i++)
        h = fnv_step(h, (unsigned char)name.p[i]);
    h = fnv_step(h, 0xff); /* cannot occur in UTF-8, so name/value cannot shift */
    for (size_t i = 0; i < value.len; i++)
        h = fnv_step(h, (unsigned char)value.p[i]);
    return mix64(h ^ SEED_META);
}

struct lfilter_builder *lfilter_builder_new(void)
{
    struct lfilter_builder *b = vg_calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->tri_bits = vg_calloc(TRI_WORDS, sizeof *b->tri_bits);
    if (!b->tri_bits) {
        vg_free(b);
        return NULL;
    }
    return b;
}

void lfilter_builder_free(struct lfilter_builder *b)
{
    if (!b)
        return;
    vg_free(b->tri_bits);
    vg_free(b->tris);
    vg_free(b->set);
    vg_free(b);
}

static int add_tri(struct lfilter_builder *b, uint32_t tri)
{
    uint64_t m = 1ULL << (tri & 63);
    if (b->tri_bits[tri >> 6] & m)
        return 0;
    if (b->ntris == b->tris_cap) {
        size_t ncap = b->tris_cap ? b->tris_cap * 2 : 4096;
        uint32_t *nv = vg_realloc(b->tris, ncap * sizeof *nv);
        if (!nv)
            return VG_ENOMEM;
        b->tris = nv;
        b->tris_cap = ncap;
    }
    b->tri_bits[tri >> 6] |= m;
    b->tris[b->ntris++] = tri;
    return 0;
}

static void set_insert(uint64_t *set, size_t cap, uint64_t h, size_t *n)
{
    size_t mask = cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        if (set[i] == h)
            return;
        if (set[i] == 0) {
            set[i] = h;
            (*n)++;
            return;
        }
    }
}

static int add_hash(struct lfilter_builder *b, uint64_t h)
{
    h |= 1; /* 0 marks an empty slot */
    if ((b->nset + 1) * 2 > b->set_cap) {
        size_t ncap = b->set_cap ? b->set_cap * 2 : 1024;
        uint64_t *nv = vg_calloc(ncap, sizeof *nv);
        if (!nv)
            return VG_ENOMEM;
        size_t n = 0;
        for (size_t i = 0; i < b->set_cap; i++)
            if (b->set[i])
                set_insert(nv, ncap, b->set[i], &n);
        vg_free(b->set);
        b->set = nv;
        b->set_cap = ncap;
    }
    set_insert(b->set, b->set_cap, h, &b->nset);
    return 0;
}

int lfilter_add_line(struct lfilter_builder *b, const char *p, size_t len)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;
    while (i < len) {
        int c = fold(s[i]);
        if (c < 0) {
            i++;
            continue;
        }
        uint64_t h = FNV_INIT;
        uint32_t tri = 0;
        size_t run = 0;
        for (; i < len && (c = fold(s[i])) >= 0; i++, run++) {
            h = fnv_step(h, (unsigned char)c);
            tri = ((tri << 8) | (uint32_t)c) & 0xffffff;
            if (run >= 2 && add_tri(b, tri) != 0)
                return VG_ENOMEM;
        }
        if (add_hash(b, token_hash(h)) != 0)
            return VG_ENOMEM;
    }
    return 0;
}

int lfilter_add_meta(struct lfilter_builder *b, struct vg_str name, struct vg_str value)
{
    return add_hash(b, meta_hash(name, value));
}

static void bloom_set(unsigned char *bits, uint64_t nbits, uint64_t h)
{
    if (nbits == 0) /* an empty filter (no entries) has no bits to set */
        return;
    uint64_t h2 = (h >> 32) | 1;
    for (unsigned i = 0; i < LFILTER_K; i++) {
        uint64_t bit = (h + i * h2) % nbits;
        bits[bit >> 3] |= (unsigned char)(1u << (bit & 7));
    }
}

static bool bloom_test(const struct lfilter *f, uint64_t h)
{
    uint64_t nbits = (uint64_t)f->nbytes * 8;
    uint64_t h2 = (h >> 32) | 1;
    for (unsigned i = 0; i < f->k; i++) {
        uint64_t bit = (h + i * h2) % nbits;
        if (!(f->bits[bit >> 3] & (1u << (bit & 7))))
            return false;
    }
    return true;
}

void lfilter_finish(struct lfilter_builder *b, struct vg_buf *out)
{
    size_t n = b->ntris + b->nset;
    size_t nbytes = n ? (n * LFILTER_BITS_PER_ELEMENT + 7) / 8 : 0;
    if (nbytes && nbytes < 8)
        nbytes = 8;
    vg_buf_putc(out, (char)LFILTER_K);
    vg_buf_put_uvarint(out, nbytes);
    if (vg_buf_reserve(out, nbytes + 1)) {
        unsigned char *bits = (unsigned char *)out->p + out->len;
        memset(bits, 0, nbytes);
        for (size_t i = 0; i < b->ntris; i++)
            bloom_set(bits, (uint64_t)nbytes * 8, tri_hash(b->tris[i]));
        for (size_t i = 0; i < b->set_cap; i++)
            if (b->set[i])
                bloom_set(bits, (uint64_t)nbytes * 8, b->set[i]);
        out->len += nbytes;
        out->p[out->len] = 0;
    }
    for (size_t i = 0; i < b->ntris; i++)
        b->tri_bits[b->tris[i] >> 6] = 0;
    b->ntris = 0;
    if (b->set)
        memset(b->set, 0, b->set_cap * sizeof *b->set);
    b->nset = 0;
}

bool lfilter_parse(const char **p, const char *end, struct lfilter *f)
{
    if (*p >= end)
        return false;
    f->k = (unsigned char)**p;
    (*p)++;
    uint64_t nbytes;
    if (f->k == 0 || f->k > 32 || !lentry_get_uvarint(p, end, &nbytes) ||
        nbytes > (uint64_t)(end - *p))
        return false;
    f->bits = (const unsigned char *)*p;
    f->nbytes = (size_t)nbytes;
    *p += nbytes;
    return true;
}

static void query_push(struct lfilter_query *q, uint64_t h)
{
    if (q->failed)
        return;
    if (q->n == q->cap) {
        size_t ncap = q->cap ? q->cap * 2 : 16;
        uint64_t *nv = vg_realloc(q->h, ncap * sizeof *nv);
        if (!nv) {
            q->failed = true;
            return;
        }
        q->h = nv;
        q->cap = ncap;
    }
    q->h[q->n++] = h;
}

void lfilter_query_needle(struct lfilter_query *q, struct vg_str needle)
{
    const unsigned char *s = (const unsigned char *)needle.p;
    size_t i = 0;
    while (i < needle.len) {
        if (fold(s[i]) < 0) {
            i++;
            continue;
        }
        size_t from = i;
        uint64_t h = FNV_INIT;
        while (i < needle.len && fold(s[i]) >= 0)
            h = fnv_step(h, (unsigned char)fold(s[i++]));
        if (from > 0 && i < needle.len) {
            query_push(q, token_hash(h) | 1);
            continue;
        }
        uint32_t tri = 0;
        for (size_t j = from; j < i; j++) {
            tri = ((tri << 8) | (uint32_t)fold(s[j])) & 0xffffff;
            if (j - from >= 2)
                query_push(q, tri_hash(tri));
        }
    }
}

void lfilter_query_meta(struct lfilter_query *q, struct vg_str name, struct vg_str value)
{
    query_push(q, meta_hash(name, value) | 1);
}

void lfilter_query_free(struct lfilter_query *q)
{
    vg_free(q->h);
    memset(q, 0, sizeof *q);
}

bool lfilter_may_match(const struct lfilter *f, const struct lfilter_query *q)
{
    if (q->failed || q->n == 0)
        return true;
    if (f->nbytes == 0)
        return false;
    for (size_t i = 0; i < q->n; i++)
        if (!bloom_test(f, q->h[i]))
            return false;
    return true;
}
