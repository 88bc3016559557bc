/* head: in-memory series of the TSDB. See head.h for what is kept and why.
 *
 * Reading a live encoder: struct chunk_enc keeps its encoding-0 or -2 bytes at the
 * start of buf (header with the sample count, then the bitstream), and chunk_iter stops
 * after the count in the header, so iterating (buf, cap) reads exactly the appended
 * samples without calling chunk_bytes, which would build the compact encoding and grow
 * buf.
 *
 * Hash map: linear probing over a power-of-two array of series pointers, grown at 70%
 * load; removal shifts the following cluster back so no tombstones are needed. */
#include "head.h"

#include "../base/vg_alloc.h"
#include "../base/vg_bytes.h"

#include <stdlib.h>
#include <string.h>

#define MAP_MIN_CAP 1024

static uint64_t dbits(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

void head_init(struct head *h)
{
    memset(h, 0, sizeof *h);
    h->next_id = 1;
}

static void series_free(struct head_series *s)
{
    chunk_enc_free(&s->head);
    vg_free(s->ooo);
    while (s->nodes)
        head_node_drop(s, s->nodes);
    vg_free(s);
}

void head_free(struct head *h)
{
    for (size_t i = 0; i < h->by_id_cap; i++)
        if (h->by_id[i])
            series_free(h->by_id[i]);
    vg_free(h->by_id);
    vg_free(h->slots);
    for (uint32_t i = 0; i < h->nsyms; i++)
        vg_free(h->syms[i]);
    vg_free(h->syms);
    vg_free(h->sym_slots);
    vg_free(h->sym_free);
    head_init(h);
}

/* head_hash: 64-bit hash over bytes, 8 at a time as little-endian words (on every
 * host, so the OOO chunk keys built from it are the same everywhere), multiply-xorshift
 * per word, the last 0..7 bytes as one more word, splitmix64 finish. */
#define HASH_SEED 0x9e3779b97f4a7c15ULL

static uint64_t hash_word(uint64_t h, uint64_t w)
{
    h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
    return h ^ (h >> 31);
}

static uint64_t hash_finish(uint64_t h, uint64_t tail)
{
    h = (h ^ tail) * 0x94d049bb133111ebULL;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
}

uint64_t head_hash(const char *p, size_t len)
{
    uint64_t h = HASH_SEED ^ len;
    for (; len >= 8; p += 8, len -= 8)
        h = hash_word(h, vg_load_le64(p));
    uint64_t w = 0;
    for (size_t i = 0; i < len; i++)
        w |= (uint64_t)(unsigned char)p[i] << (8 * i);
    return hash_finish(h, w);
}

/* ---- symbols ---- */

/* Length of the canonical label pair at the start of p[0, len), 0 when malformed. */
static size_t pair_len(const unsigned char *p, size_t len)
{
    size_t off = 0;
    for (int part = 0; part < 2; part++) {
        uint64_t v = 0;
        for (unsigned shift = 0;; shift += 7) {
            if (off >= len || shift > 56)
                return 0;
            unsigned char c = p[off++];
            v |= (uint64_t)(c & 0x7f) << shift;
            if (!(c & 0x80))
                break;
        }
        if (v > len - off)
            return 0;
        off += (size_t)v;
    }
    return off;
}

/* Length of the piece starting at off: one label pair, or all the rest when the bytes
 * there do not parse as one or the piece count reached its limit. */
static size_t piece_len(const char *lbl, size_t len, size_t off, size_t npieces)
{
    size_t n = npieces + 1 < UINT16_MAX ? pair_len((const unsigned char *)lbl + off, len - off)
                                        : 0;
    return n ? n : len - off;
}

static void sym_map_put(uint32_t *slots, size_t cap, const struct head_sym *y, uint32_t id)
{
    size_t mask = cap - 1;
    size_t i = y->hash & mask;
    while (slots[i])
        i = (i + 1) & mask;
    slots[i] = id + 1;
}

static bool sym_map_grow(struct head *h)
{
    size_t ncap = h->sym_cap ? h->sym_cap * 2 : 256;
    uint32_t *ns = vg_calloc(ncap, sizeof *ns);
    if (!ns)
        return false;
    for (size_t i = 0; i < h->sym_cap; i++)
        if (h->sym_slots[i])
            sym_map_put(ns, ncap, h->syms[h->sym_slots[i] - 1], h->sym_slots[i] - 1);
    vg_free(h->sym_slots);
    h->sym_slots = ns;
    h->sym_cap = ncap;
    return true;
}

/* Id of the symbol with bytes p[0, len), created with refs 0 if new; UINT32_MAX when
 * out of memory. The caller takes a reference. */
static uint32_t sym_intern(struct head *h, const char *p, size_t len)
{
    uint64_t hv = head_hash(p, len);
    if (h->sym_cap) {
        size_t mask = h->sym_cap - 1;
        for (size_t i = hv & mask; h->sym_slots[i]; i = (i + 1) & mask) {
            const struct head_sym *y = h->syms[h->sym_slots[i] - 1];
            if (y->hash == hv && y->len == len && memcmp(y->b, p, len) == 0)
                return h->sym_slots[i] - 1;
        }
    }
    if ((h->sym_count + 1) * 10 > h->sym_cap * 7 && !sym_map_grow(h))
        return UINT32_MAX;
    if (!h->sym_nfree && h->nsyms == h->syms_cap) {
        if (h->syms_cap >= UINT32_MAX / 2)
            return UINT32_MAX;
        uint32_t ncap = h->syms_cap ? h->syms_cap * 2 : 256;
        struct head_sym **n = vg_realloc(h->syms, ncap * sizeof *n);
        uint32_t *f = n ? vg_realloc(h->sym_free, ncap * sizeof *f) : NULL;
        if (n)
            h->syms = n;
        if (!f)
            return UINT32_MAX;
        h->sym_free = f;
        h->sym_free_cap = h->syms_cap = ncap;
    }
    struct head_sym *y = vg_malloc(sizeof *y + len);
    if (!y)
        return UINT32_MAX;
    y->hash = hv;
    y->len = (uint32_t)len;
    y->refs = 0;
    memcpy(y->b, p, len);
    uint32_t id = h->sym_nfree ? h->sym_free[--h->sym_nfree] : h->nsyms++;
    h->syms[id] = y;
    sym_map_put(h->sym_slots, h->sym_cap, y, id);
    h->sym_count++;
    return id;
}

/* Drops a reference; the last one unindexes and frees the symbol. */
static void sym_release(struct head *h, uint32_t id)
{
    struct head_sym *y = h->syms[id];
    if (--y->refs > 0)
        return;
    size_t mask = h->sym_cap - 1;
    size_t i = y->hash & mask;
    while (h->sym_slots[i] != id + 1)
        i = (i + 1) & mask;
    size_t hole = i;
    for (size_t j = (i + 1) & mask; h->sym_slots[j]; j = (j + 1) & mask) {
        size_t home = h->syms[h->sym_slots[j] - 1]->hash & mask;
        bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            h->sym_slots[hole] = h->sym_slots[j];
            hole = j;
        }
    }
    h->sym_slots[hole] = 0;
    h->sym_count--;
    vg_free(y);
    h->syms[id] = NULL;
    h->sym_free[h->sym_nfree++] = id; /* sym_free_cap == syms_cap > every id */
}

void head_labels_copy(const struct head *h, const struct head_series *s, char *dst)
{
    for (uint16_t k = 0; k < s->npieces; k++) {
        const struct head_sym *y = h->syms[s->sym[k]];
        memcpy(dst, y->b, y->len);
        dst += y->len;
    }
}

/* Whether a[0, n) == b[0, n). Label pairs are short (10-30 bytes), where a call to
 * memcmp per pair cost about as much as the rest of the lookup: 8-byte words here,
 * the last one overlapping. */
static bool piece_eq(const char *a, const char *b, size_t n)
{
    if (n < 8) {
        for (size_t i = 0; i < n; i++)
            if (a[i] != b[i])
                return false;
        return true;
    }
    for (size_t i = 0; i + 8 <= n; i += 8)
        if (vg_load_le64(a + i) != vg_load_le64(b + i))
            return false;
    return vg_load_le64(a + n - 8) == vg_load_le64(b + n - 8);
}

/* Whether the series' label bytes are lbl[0, len). */
static bool series_eq(const struct head *h, const struct head_series *s, const char *lbl,
                      size_t len)
{
    if (s->lbl_len != len)
        return false;
    for (uint16_t k = 0; k < s->npieces; k++) {
        const struct head_sym *y = h->syms[s->sym[k]];
        if (!piece_eq(y->b, lbl, y->len))
            return false;
        lbl += y->len;
    }
    return true;
}

/* ---- series ---- */

struct head_series *head_lookup(const struct head *h, const char *lbl, size_t len,
                                uint64_t hash)
{
    if (!h->cap)
        return NULL;
    size_t mask = h->cap - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        struct head_series *s = h->slots[i];
        if (!s)
            return NULL;
        if (s->hash == (uint32_t)hash && series_eq(h, s, lbl, len))
            return s;
    }
}

void head_prefetch(const struct head *h, uint64_t hash, int stage)
{
    if (!h->cap)
        return;
    struct head_series *const *slot = &h->slots[hash & (h->cap - 1)];
    if (stage == 0) {
        __builtin_prefetch(slot);
        return;
    }
    const struct head_series *s = *slot;
    if (!s)
        return;
    if (stage == 1) {
        __builtin_prefetch(&s->hash);
        __builtin_prefetch(&s->sym[0]);
        __builtin_prefetch((const char *)&s->sym[0] + 64);
        return;
    }
    if (s->hash != (uint32_t)hash)
        return;
    for (uint16_t k = 0; k < s->npieces; k++) {
        if (stage == 2)
            __builtin_prefetch(&h->syms[s->sym[k]]);
        else
            __builtin_prefetch(h->syms[s->sym[k]]);
    }
}

struct head_series *head_by_id(const struct head *h, uint64_t id)
{
    if (id == 0 || id > h->by_id_cap)
        return NULL;
    return h->by_id[id - 1];
}

static void map_put(struct head_series **slots, size_t cap, struct head_series *s)
{
    size_t mask = cap - 1;
    size_t i = s->hash & mask;
    while (slots[i])
        i = (i + 1) & mask;
    slots[i] = s;
}

static bool map_grow(struct head *h)
{
    size_t ncap = h->cap ? h->cap * 2 : MAP_MIN_CAP;
    struct head_series **ns = vg_calloc(ncap, sizeof *ns);
    if (!ns)
        return false;
    for (size_t i = 0; i < h->cap; i++)
        if (h->slots[i])
            map_put(ns, ncap, h->slots[i]);
    vg_free(h->slots);
    h->slots = ns;
    h->cap = ncap;
    return true;
}

static void series_release_syms(struct head *h, const struct head_series *s)
{
    for (uint16_t k = 0; k < s->npieces; k++)
        sym_release(h, s->sym[k]);
}

static bool ids_reserve(struct head *h, uint64_t id)
{
    if (id <= h->by_id_cap)
        return true;
    size_t ncap = h->by_id_cap ? h->by_id_cap : 1024;
    while (ncap < id)
        ncap *= 2;
    struct head_series **n = vg_realloc(h->by_id, ncap * sizeof *n);
    if (!n)
        return false;
    memset(n + h->by_id_cap, 0, (ncap - h->by_id_cap) * sizeof *n);
    h->by_id = n;
    h->by_id_cap = ncap;
    return true;
}

struct head_series *head_create(struct head *h, uint64_t id, const char *lbl, size_t len,
                                uint64_t hash, uint16_t nlabels)
{
    if (len >= HEAD_MAX_LABEL_BYTES || id > HEAD_MAX_ID)
        return NULL;
    if ((h->count + 1) * 10 > h->cap * 7 && !map_grow(h))
        return NULL;
    if (!ids_reserve(h, id))
        return NULL;
    size_t npieces = 0;
    for (size_t off = 0; off < len; npieces++)
        off += piece_len(lbl, len, off, npieces);
    struct head_series *s = vg_malloc(offsetof(struct head_series, sym) +
                                      npieces * sizeof s->sym[0]);
    if (!s)
        return NULL;
    memset(s, 0, offsetof(struct head_series, sym));
    for (size_t off = 0; s->npieces < npieces; s->npieces++) {
        size_t n = piece_len(lbl, len, off, s->npieces);
        uint32_t y = sym_intern(h, lbl + off, n);
        if (y == UINT32_MAX) {
            series_release_syms(h, s);
            vg_free(s);
            return NULL;
        }
        h->syms[y]->refs++;
        s->sym[s->npieces] = y;
        off += n;
    }
    s->id = (uint32_t)id;
    s->hash = (uint32_t)hash;
    s->lbl_len = (uint32_t)len;
    s->nlabels = nlabels;
    s->min_t = INT64_MAX;
    s->max_t = INT64_MIN;
    chunk_enc_init(&s->head);
    map_put(h->slots, h->cap, s);
    h->count++;
    h->by_id[id - 1] = s;
    if (id >= h->next_id)
        h->next_id = id + 1;
    return s;
}

void head_remove(struct head *h, struct head_series *s)
{
    size_t mask = h->cap - 1;
    size_t i = s->hash & mask;
    while (h->slots[i] != s)
        i = (i + 1) & mask;
    /* Backward-shift deletion: move later members of the cluster into the hole when
     * their home slot is not between the hole and their position. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; h->slots[j]; j = (j + 1) & mask) {
        size_t home = h->slots[j]->hash & mask;
        bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            h->slots[hole] = h->slots[j];
            hole = j;
        }
    }
    h->slots[hole] = NULL;
    h->count--;
    h->by_id[s->id - 1] = NULL;
    series_release_syms(h, s);
    series_free(s);
}

struct head_node *head_freeze(struct head_series *s)
{
    if (s->head.count == 0)
        return NULL;
    struct head_node *n = vg_calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->enc = s->head;
    n->mint = head_mint(s);
    n->maxt = s->head.t;
    n->wal_seq = s->head_seq;
    n->kind = HEAD_NODE_INORDER;
    n->next = s->nodes;
    s->nodes = n;
    chunk_enc_init(&s->head);
    if (!(s->flags & HEAD_F_LOST))
        s->head_seq = 0;
    return n;
}

/* Whether head_seq holds a record the series needs (see struct head_series). */
static bool head_seq_held(const struct head_series *s)
{
    return s->head.count || (s->flags & HEAD_F_LOST);
}

/* The lost samples' records start at seq: head_seq keeps the oldest of them and of the
 * head chunk's, so head_wal_min needs no field of its own for them. */
static void mark_lost(struct head_series *s, uint64_t seq)
{
    if (!head_seq_held(s) || seq < s->head_seq)
        s->head_seq = seq;
    s->flags |= HEAD_F_LOST;
}

int head_append(struct head_series *s, int64_t t, double v, uint64_t seq,
                struct head_node **cut)
{
    *cut = NULL;
    if (s->head.count >= HEAD_CHUNK_MAX_SAMPLES ||
        (s->head.count && t - head_mint(s) >= HEAD_CHUNK_MAX_SPAN_MS)) {
        *cut = head_freeze(s);
        if (!*cut) {
            mark_lost(s, s->head_seq);
            return VG_ENOMEM;
        }
    }
    if (s->head.count == 0 && (!(s->flags & HEAD_F_LOST) || seq < s->head_seq))
        s->head_seq = seq;
    if (chunk_append(&s->head, t, v) != 0) {
        /* The encoder is unusable: drop it; the records keep its samples. */
        mark_lost(s, s->head_seq);
        chunk_enc_free(&s->head);
        return VG_ENOMEM;
    }
    if (t > s->max_t)
        s->max_t = t;
    if (t < s->min_t)
        s->min_t = t;
    /* Out of memory here only leaves the chunk unpacked: still correct. A full chunk
     * is sealed: it waits packed (about a third smaller) until the next sample cuts it,
     * and writing it then costs no encoding. */
    if (s->head.count >= HEAD_CHUNK_MAX_SAMPLES)
        (void)chunk_enc_seal(&s->head);
    else if (s->head.count - s->head.packed >= HEAD_PACK_STEP)
        (void)chunk_enc_pack(&s->head);
    return 0;
}

static size_t ooo_pos(const struct head_ooo *o, int64_t t)
{
    size_t lo = 0, hi = o->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (o->v[mid].t < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int head_ooo_insert(struct head_series *s, int64_t t, double v, uint64_t seq)
{
    struct head_ooo *o = s->ooo;
    if (!o || o->n == o->cap) {
        uint32_t ncap = o ? o->cap * 2 : 8;
        struct head_ooo *n = vg_realloc(o, sizeof *n + ncap * sizeof n->v[0]);
        if (!n) {
            mark_lost(s, seq);
            return VG_ENOMEM;
        }
        if (!o) {
            n->n = 0;
            n->wal_seq = seq;
        }
        n->cap = ncap;
        s->ooo = o = n;
    }
    size_t i = ooo_pos(o, t);
    memmove(&o->v[i + 1], &o->v[i], (o->n - i) * sizeof o->v[0]);
    o->v[i].t = t;
    o->v[i].v = v;
    o->n++;
    if (seq < o->wal_seq)
        o->wal_seq = seq;
    if (t < s->min_t)
        s->min_t = t;
    if (t > s->max_t)
        s->max_t = t;
    return 0;
}

static bool chunk_find(const unsigned char *buf, size_t len, int64_t t, uint64_t *bits)
{
    struct chunk_iter it;
    chunk_iter_init(&it, buf, len);
    int64_t ct;
    double cv;
    while (chunk_next(&it, &ct, &cv)) {
        if (ct == t) {
            *bits = dbits(cv);
            return true;
        }
        if (ct > t)
            break;
    }
    return false;
}

bool head_find(struct head_series *s, int64_t t, uint64_t *bits)
{
    if (s->head.count && t >= head_mint(s) && t <= s->head.t) {
        if (t == s->head.t) {
            *bits = s->head.vbits;
            return true;
        }
        if (chunk_find(s->head.buf, s->head.cap, t, bits))
            return true;
    }
    for (struct head_node *n = s->nodes; n; n = n->next)
        if (t >= n->mint && t <= n->maxt && chunk_find(n->enc.buf, n->enc.cap, t, bits))
            return true;
    if (s->ooo) {
        size_t i = ooo_pos(s->ooo, t);
        if (i < s->ooo->n && s->ooo->v[i].t == t) {
            *bits = dbits(s->ooo->v[i].v);
            return true;
        }
    }
    return false;
}

int head_freeze_ooo(struct head_series *s)
{
    struct head_ooo *o = s->ooo;
    if (!o)
        return 0;
    struct head_node *made = NULL, **tail = &made;
    for (size_t i = 0; i < o->n;) {
        struct head_node *n = vg_calloc(1, sizeof *n);
        if (!n)
            goto fail;
        chunk_enc_init(&n->enc);
        *tail = n;
        tail = &n->next;
        n->kind = HEAD_NODE_OOO;
        n->wal_seq = o->wal_seq;
        n->mint = o->v[i].t;
        for (; i < o->n && n->enc.count < HEAD_CHUNK_MAX_SAMPLES &&
               o->v[i].t - n->mint < HEAD_CHUNK_MAX_SPAN_MS;
             i++) {
            if (chunk_append(&n->enc, o->v[i].t, o->v[i].v) != 0)
                goto fail;
            n->maxt = o->v[i].t;
        }
    }
    *tail = s->nodes;
    s->nodes = made;
    vg_free(o);
    s->ooo = NULL;
    return 0;
fail:
    while (made) {
        struct head_node *n = made;
        made = n->next;
        chunk_enc_free(&n->enc);
        vg_free(n);
    }
    return VG_ENOMEM;
}

bool head_node_writable(const struct head_node *n, uint64_t writer)
{
    if (n->kind != HEAD_NODE_INORDER)
        return true;
    for (const struct head_node *o = n->next; o; o = o->next) /* older ones */
        if (o->kind == HEAD_NODE_INORDER && o->writer != writer)
            return false;
    return true;
}

void head_node_drop(struct head_series *s, struct head_node *n)
{
    for (struct head_node **pp = &s->nodes; *pp; pp = &(*pp)->next) {
        if (*pp == n) {
            *pp = n->next;
            break;
        }
    }
    chunk_enc_free(&n->enc);
    vg_free(n);
}

uint64_t head_wal_min(const struct head_series *s)
{
    uint64_t m = UINT64_MAX;
    if (head_seq_held(s))
        m = s->head_seq;
    if (s->ooo && s->ooo->wal_seq < m)
        m = s->ooo->wal_seq;
    for (const struct head_node *n = s->nodes; n; n = n->next)
        if (n->wal_seq < m)
            m = n->wal_seq;
    return m;
}

bool head_has_data(const struct head_series *s)
{
    return s->head.count || s->ooo || s->nodes || (s->flags & HEAD_F_LOST);
}

int64_t head_mem_min(const struct head_series *s)
{
    int64_t m = INT64_MAX;
    if (s->head.count)
        m = head_mint(s);
    if (s->ooo && s->ooo->n && s->ooo->v[0].t < m)
        m = s->ooo->v[0].t;
    for (const struct head_node *n = s->nodes; n; n = n->next)
        if (n->mint < m)
            m = n->mint;
    return m;
}

size_t head_mem_samples(const struct head_series *s)
{
    size_t n = s->head.count;
    if (s->ooo)
        n += s->ooo->n;
    for (const struct head_node *x = s->nodes; x; x = x->next)
        n += x->enc.count;
    return n;
}

int head_samples_push(struct head_samples *a, int64_t t, double v)
{
    if (a->n == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 256;
        struct tsdb_sample *nv = vg_realloc(a->v, ncap * sizeof *nv);
        if (!nv)
            return VG_ENOMEM;
        a->v = nv;
        a->cap = ncap;
    }
    a->v[a->n].t = t;
    a->v[a->n].v = v;
    a->n++;
    return 0;
}

int head_samples_from_chunk(struct head_samples *a, const unsigned char *buf, size_t len,
                            int64_t mint, int64_t maxt)
{
    struct chunk_iter it;
    chunk_iter_init(&it, buf, len);
    int64_t t;
    double v;
    while (chunk_next(&it, &t, &v)) {
        if (t > maxt)
            return 0;
        if (t < mint) /* passes over the samples before a short window without decoding */
            chunk_iter_skip_before(&it, mint);
        else if (head_samples_push(a, t, v) != 0)
            return VG_ENOMEM;
    }
    return it.err ? VG_EINVAL : 0;
}

int head_collect(struct head_series *s, int64_t mint, int64_t maxt, struct head_samples *a)
{
    for (struct head_node *n = s->nodes; n; n = n->next)
        if (n->maxt >= mint && n->mint <= maxt &&
            head_samples_from_chunk(a, n->enc.buf, n->enc.cap, mint, maxt) == VG_ENOMEM)
            return VG_ENOMEM;
    if (s->head.count && s->head.t >= mint && head_mint(s) <= maxt &&
        head_samples_from_chunk(a, s->head.buf, s->head.cap, mint, maxt) == VG_ENOMEM)
        return VG_ENOMEM;
    if (s->ooo) {
        for (size_t i = ooo_pos(s->ooo, mint); i < s->ooo->n && s->ooo->v[i].t <= maxt; i++)
            if (head_samples_push(a, s->ooo->v[i].t, s->ooo->v[i].v) != 0)
                return VG_ENOMEM;
    }
    return 0;
}

static int cmp_sample(const void *a, const void *b)
{
    const struct tsdb_sample *x = a, *y = b;
    return (x->t > y->t) - (x->t < y->t);
}

void head_samples_sort_unique(struct head_samples *a)
{
    bool sorted = true;
    for (size_t i = 1; i < a->n && sorted; i++)
        sorted = a->v[i - 1].t <= a->v[i].t;
    if (!sorted)
        qsort(a->v, a->n, sizeof a->v[0], cmp_sample);
    size_t w = 0;
    for (size_t i = 0; i < a->n; i++)
        if (w == 0 || a->v[w - 1].t != a->v[i].t)
            a->v[w++] = a->v[i];
    a->n = w;
}
