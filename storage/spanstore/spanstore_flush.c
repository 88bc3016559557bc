/* spanstore_flush: writing the head's postings out as segments of the index database,
 * and the segment directory kept in memory (key layout: span_index.h, "segments").
 *
 * A flush freezes the head, takes a new segment id from the chunk counter (larger than
 * every earlier segment's, so each flush's keys sort after all stored ones and LevelDB
 * files them without merging), writes the frozen terms in key order, each cut into
 * pieces of one time slot and at most SPAN_INDEX_PIECE postings, and last the
 * segment's directory record. A crash before that record leaves list keys no directory
 * names: the next open deletes them, and the watermark of the last record makes it
 * replay the chunks whose postings they held. */
#include "spanstore_int.h"

#include "../base/vg_alloc.h"
#include "../base/vg_log.h"

#include <stdlib.h>
#include <string.h>

/* The segment goes to LevelDB in batches of at most this plus one key (a piece is at
 * most SPAN_INDEX_PIECE postings, 24 KiB): kv_batch_clear keeps the buffer of a batch
 * under 64 KiB (KV_BATCH_KEEP_BYTES in kv.c) and replaces a bigger one, so batches kept
 * below that reuse one buffer for the whole flush and across flushes. */
#define FLUSH_BATCH_BYTES ((size_t)32 << 10)

static int add_seg(struct spanstore *ss, struct span_index_seg *s, struct vg_err *err)
{
    pthread_mutex_lock(&ss->dir_mu);
    int rc = 0;
    if (ss->nsegs == ss->capsegs) {
        size_t nc = ss->capsegs ? ss->capsegs * 2 : 16;
        struct span_index_seg *nv = vg_realloc(ss->segs, nc * sizeof *nv);
        if (nv) {
            ss->segs = nv;
            ss->capsegs = nc;
        } else {
            rc = vg_err_set(err, VG_ENOMEM, "spanstore: out of memory for a segment");
        }
    }
    if (!rc)
        ss->segs[ss->nsegs++] = *s;
    pthread_mutex_unlock(&ss->dir_mu);
    if (rc)
        vg_free(s->b);
    return rc;
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Points each bucket of the record at its listed-term hashes (hashes holds them bucket
 * after bucket, in the buckets' order) and sorts them. */
static void set_listed(struct span_index_seg *s, uint64_t *hashes)
{
    for (size_t i = 0; i < s->nb; i++) {
        if (!s->b[i].nlisted)
            continue; /* (hashes may be NULL when no term is listed) */
        qsort(hashes, s->b[i].nlisted, sizeof *hashes, u64_cmp);
        s->b[i].listed = hashes;
        hashes += s->b[i].nlisted;
    }
}

/* Appends the bucket of term key k to the record's buckets (terms come sorted, so a
 * bucket's terms are together) and folds in the piece's times. */
static bool note_bucket(struct span_index_seg *s, size_t *cap, const char *k, int64_t lo,
                        int64_t hi, size_t n)
{
    uint32_t b = 0;
    span_index_key_bucket(k, 5, &b); /* term keys always start 'X' bucket */
    if (!s->nb || s->b[s->nb - 1].bucket != b) {
        if (s->nb == *cap) {
            size_t nc = *cap ? *cap * 2 : 8;
            struct span_index_seg_bucket *nv = vg_realloc(s->b, nc * sizeof *nv);
            if (!nv)
                return false;
            s->b = nv;
            *cap = nc;
        }
        s->b[s->nb++] = (struct span_index_seg_bucket){ b, lo, hi, 0, NULL, 0 };
    }
    struct span_index_seg_bucket *x = &s->b[s->nb - 1];
    x->min_t = lo < x->min_t ? lo : x->min_t;
    x->max_t = hi > x->max_t ? hi : x->max_t;
    x->n += n;
    return true;
}

/* What a flush works in, kept from one flush to the next (ss->flush_scratch, under
 * flush_mu): allocated afresh for every flush, each of these buffers past glibc's mmap
 * threshold, they were mapped, faulted in and unmapped again every time, most of the
 * flush thread's page faults. An idle store gives them back (spanstore_flush_index). */
struct spanstore_flush_scratch {
    struct kv_batch *kb;
    struct vg_buf key, val;   /* a list's key and value, then the directory record's */
    struct vg_buf pkey, pval; /* the packed block being built: its key (from its first
                               * term) and entries */
    uint32_t pbucket;         /* the bucket of that block */
    struct vg_buf listed;     /* hashes of the listed terms, bucket after bucket */
    struct span_head_sort_scratch sort; /* a term's postings, sorted */
    struct span_index_seg_bucket *b; /* the directory record's buckets */
    size_t capb;
    size_t bytes; /* key and value bytes in kb */
};

void spanstore_flush_scratch_free(struct spanstore *ss)
{
    struct spanstore_flush_scratch *fs = ss->flush_scratch;
    if (!fs)
        return;
    kv_batch_free(fs->kb);
    vg_buf_free(&fs->key);
    vg_buf_free(&fs->val);
    vg_buf_free(&fs->pkey);
    vg_buf_free(&fs->pval);
    vg_buf_free(&fs->listed);
    span_head_sort_scratch_free(&fs->sort);
    vg_free(fs->b);
    vg_free(fs);
    ss->flush_scratch = NULL;
}

static struct spanstore_flush_scratch *scratch_get(struct spanstore *ss)
{
    struct spanstore_flush_scratch *fs = ss->flush_scratch;
    if (fs)
        return fs;
    fs = vg_calloc(1, sizeof *fs);
    if (!fs || !(fs->kb = kv_batch_new())) {
        vg_free(fs);
        return NULL;
    }
    vg_buf_init(&fs->key);
    vg_buf_init(&fs->val);
    vg_buf_init(&fs->pkey);
    vg_buf_init(&fs->pval);
    vg_buf_init(&fs->listed);
    ss->flush_scratch = fs;
    return fs;
}

/* Empties the buffers for the next flush, keeping their capacity (a reset also clears
 * the failed mark an earlier flush may have left). */
static void scratch_reset(struct spanstore_flush_scratch *fs)
{
    vg_buf_reset(&fs->key);
    vg_buf_reset(&fs->val);
    vg_buf_reset(&fs->pkey);
    vg_buf_reset(&fs->pval);
    vg_buf_reset(&fs->listed);
    kv_batch_clear(fs->kb);
    fs->bytes = 0;
}

static int oom(struct vg_err *err)
{
    return vg_err_set(err, VG_ENOMEM, "spanstore flush: out of memory");
}

/* Puts one key into the batch, writing the batch out once it holds FLUSH_BATCH_BYTES. */
static int batch_put(struct spanstore *ss, struct spanstore_flush_scratch *fs, const char *k,
                     size_t klen, const char *v, size_t vlen, struct vg_err *err)
{
    kv_batch_put(fs->kb, k, klen, v, vlen);
    fs->bytes += klen + vlen;
    if (fs->bytes < FLUSH_BATCH_BYTES)
        return 0;
    int rc = kv_write(ss->ix, fs->kb, false, err);
    kv_batch_clear(fs->kb);
    fs->bytes = 0;
    return rc;
}

/* Appends n postings as span_index_put_suffix writes them (~time BE, trace id), with one
 * reserve for all of them: two buffer appends per posting were 15% of a flush. */
static void put_postings(struct vg_buf *b, const struct span_head_posting *p, size_t n)
{
    if (!vg_buf_reserve(b, n * SPAN_INDEX_SUFFIX_LEN))
        return; /* b is marked failed */
    char *o = b->p + b->len;
    for (size_t i = 0; i < n; i++, o += SPAN_INDEX_SUFFIX_LEN) {
        uint64_t k = ~((uint64_t)p[i].t ^ (1ULL << 63));
        for (int b = 0; b < 8; b++) /* (compiled to one byte swap and store) */
            o[b] = (char)(k >> (56 - 8 * b));
        memcpy(o + 8, p[i].tid, SPAN_TRACE_ID_LEN);
    }
    b->len += n * SPAN_INDEX_SUFFIX_LEN;
    b->p[b->len] = 0; /* vg_buf keeps its bytes NUL-terminated */
}

/* Writes the packed block being built into the batch. */
static int pack_put(struct spanstore *ss, struct spanstore_flush_scratch *fs,
                    struct vg_err *err)
{
    if (vg_buf_failed(&fs->pkey) || vg_buf_failed(&fs->pval))
        return oom(err); /* checked before the reset below clears the mark */
    if (!fs->pval.len)
        return 0;
    int rc = batch_put(ss, fs, fs->pkey.p, fs->pkey.len, fs->pval.p, fs->pval.len, err);
    vg_buf_reset(&fs->pkey);
    vg_buf_reset(&fs->pval);
    return rc;
}

/* Adds a small term (sorted postings tmp[0..n)) to the packed block of its bucket,
 * writing the block out first when the bucket changes or it is full. */
static int pack_add(struct spanstore *ss, struct spanstore_flush_scratch *fs, uint64_t seg,
                    const char *tkey, size_t tlen, const struct span_head_posting *tmp,
                    size_t n, struct vg_err *err)
{
    uint32_t b = 0;
    span_index_key_bucket(tkey, tlen, &b);
    int rc = 0;
    if (fs->pval.len && (b != fs->pbucket || fs->pval.len >= SPAN_INDEX_PACK_BYTES))
        rc = pack_put(ss, fs, err);
    if (!fs->pval.len) {
        span_index_seg_pack_key(&fs->pkey, seg, tkey, tlen);
        fs->pbucket = b;
    }
    span_index_pack_entry(&fs->pval, tkey, tlen);
    uint8_t c[2] = { (uint8_t)(n >> 8), (uint8_t)n };
    vg_buf_append(&fs->pval, c, 2);
    put_postings(&fs->pval, tmp, n);
    return rc;
}

/* Writes one frozen term of segment seg: packed when small, else as list pieces. */
static int write_term(struct spanstore *ss, struct spanstore_flush_scratch *fs,
                      struct span_index_seg *rec, uint64_t seg, const struct span_head_term *t,
                      struct vg_err *err)
{
    const struct span_head_posting *tmp = span_head_sort_copy(t->p, t->n, &fs->sort);
    if (!tmp)
        return oom(err);
    int rc = 0;
    if (t->n <= SPAN_INDEX_PACK_MAX) {
        rc = pack_add(ss, fs, seg, t->key, t->klen, tmp, t->n, err);
        if (!rc && !note_bucket(rec, &fs->capb, t->key, tmp[t->n - 1].t, tmp[0].t, t->n))
            rc = oom(err);
        fs->b = rec->b;
        return rc;
    }
    vg_buf_append(&fs->listed, &t->hash, sizeof t->hash);
    if (!note_bucket(rec, &fs->capb, t->key, tmp[t->n - 1].t, tmp[0].t, 0) || !rec->nb)
        rc = oom(err);
    else
        rec->b[rec->nb - 1].nlisted++;
    fs->b = rec->b;
    uint64_t piece = 0;
    for (size_t j = 0, k; !rc && j < t->n; j = k) {
        int64_t slot = tmp[j].t >> SPAN_INDEX_LIST_SLOT_SHIFT;
        for (k = j + 1; k < t->n && k - j < SPAN_INDEX_PIECE &&
                        tmp[k].t >> SPAN_INDEX_LIST_SLOT_SHIFT == slot; k++)
            ;
        vg_buf_reset(&fs->key);
        vg_buf_reset(&fs->val);
        span_index_seg_term(&fs->key, seg, t->key, t->klen);
        span_index_put_list_suffix(&fs->key, tmp[j].t, piece++);
        put_postings(&fs->val, tmp + j, k - j);
        if (vg_buf_failed(&fs->key) || vg_buf_failed(&fs->val))
            rc = oom(err);
        else
            rc = batch_put(ss, fs, fs->key.p, fs->key.len, fs->val.p, fs->val.len, err);
        if (!rc && !note_bucket(rec, &fs->capb, t->key, tmp[k - 1].t, tmp[j].t, k - j))
            rc = oom(err);
        fs->b = rec->b;
    }
    return rc;
}

/* Writes the frozen terms (sorted by key) as segment seg, every key in order: per
 * bucket its packed blocks (small terms; 'P' sorts before every list kind), then its
 * lists (the other terms), and the directory record last (span_index.h). So no table
 * of one flush overlaps another's and LevelDB files them without merging. */
static int write_segment(struct spanstore *ss, uint64_t seg, uint64_t watermark,
                         const struct span_head_term *terms, size_t nterms,
                         struct vg_err *err)
{
    struct spanstore_flush_scratch *fs = scratch_get(ss);
    if (!fs)
        return oom(err);
    scratch_reset(fs);
    struct span_index_seg rec = { .seg = seg, .watermark = watermark, .b = fs->b };
    int rc = 0;
    for (size_t b0 = 0, b1; !rc && b0 < nterms; b0 = b1) {
        /* term keys start 'X' bucket (5 bytes): one bucket's terms are together */
        for (b1 = b0 + 1; b1 < nterms && memcmp(terms[b1].key, terms[b0].key, 5) == 0; b1++)
            ;
        for (int lists = 0; !rc && lists < 2; lists++) {
            for (size_t i = b0; !rc && i < b1; i++)
                if (terms[i].n && (terms[i].n > SPAN_INDEX_PACK_MAX) == lists)
                    rc = write_term(ss, fs, &rec, seg, &terms[i], err);
            if (!rc && !lists)
                rc = pack_put(ss, fs, err); /* the bucket's last block, before its lists */
        }
    }
    if (!rc)
        rc = pack_put(ss, fs, err);
    if (!rc && vg_buf_failed(&fs->listed))
        rc = oom(err);
    if (!rc) {
        set_listed(&rec, (uint64_t *)(void *)fs->listed.p);
        vg_buf_reset(&fs->key);
        vg_buf_reset(&fs->val);
        span_index_seg_rec_key(&fs->key, seg);
        span_index_seg_encode(&rec, &fs->val);
        if (vg_buf_failed(&fs->key) || vg_buf_failed(&fs->val))
            rc = oom(err);
        else
            kv_batch_put(fs->kb, fs->key.p, fs->key.len, fs->val.p, fs->val.len);
    }
    /* The record last, synced as the store's writes are: the pieces written before
     * are in the log ahead of it. */
    if (!rc)
        rc = kv_write(ss->ix, fs->kb, !ss->opts.no_sync, err);
    kv_batch_clear(fs->kb);
    fs->bytes = 0;
    /* the directory keeps the record as stored (one allocation, hashes included) */
    struct span_index_seg mem;
    if (!rc && !(rc = span_index_seg_decode(seg, fs->val.p, fs->val.len, &mem, err)))
        rc = add_seg(ss, &mem, err);
    return rc;
}

int spanstore_seg_packed(struct kv_iter *it, uint64_t seg, const char *tkey, size_t tlen,
                         struct vg_buf *scratch, const char **postings, size_t *n)
{
    *n = 0;
    vg_buf_reset(scratch);
    span_index_seg_pack_key(scratch, seg, tkey, tlen);
    if (vg_buf_failed(scratch))
        return VG_ENOMEM;
    size_t plen = SPAN_INDEX_SEG_KEY_LEN + 5; /* 'G' seg bucket 'P' */
    kv_iter_seek(it, scratch->p, scratch->len);
    size_t klen;
    const char *k = kv_iter_valid(it) ? kv_iter_key(it, &klen) : NULL;
    if (!k || klen != scratch->len || memcmp(k, scratch->p, klen) != 0) {
        if (k)
            kv_iter_prev(it);
        else
            kv_iter_seek_last(it);
        if (!kv_iter_has_prefix(it, scratch->p, plen))
            return 0; /* no block starts at or before the term */
    }
    size_t vlen;
    const char *v = kv_iter_value(it, &vlen);
    return span_index_pack_find(v, vlen, tkey, tlen, postings, n) ? 0 : VG_EINVAL;
}

int spanstore_flush_index(struct spanstore *ss, struct vg_err *err)
{
    pthread_mutex_lock(&ss->flush_mu);
    span_head_lock(ss->head);
    /* false: the timer's round (or close's), not a writer's kick for a full head */
    bool kicked = atomic_exchange(&ss->flush_wanted, false);
    /* A generation left frozen by a failed flush is written first, under its own
     * watermark; the active one waits for the next round. */
    if (span_head_freeze(ss->head))
        ss->frozen_watermark = head_watermark(ss);
    span_head_unlock(ss->head);
    const struct span_head_term *terms;
    bool no_mem;
    size_t n = span_head_frozen(ss->head, &terms, &no_mem);
    int rc = no_mem ? oom(err) : 0;
    if (n) {
        uint64_t seg = atomic_fetch_add(&ss->next_chunk, 1);
        rc = write_segment(ss, seg, ss->frozen_watermark, terms, n, err);
        if (!rc)
            span_head_release(ss->head);
    }
    /* A timer's round: the head did not fill within index_flush_ms, so the store is
     * idle or nearly and need not keep the buffers and head memory sized for its last
     * busy flush (reuse pays off only when flushes follow each other closely). */
    if (!kicked) {
        spanstore_flush_scratch_free(ss);
        span_head_trim(ss->head);
    }
    pthread_mutex_unlock(&ss->flush_mu);
    return rc;
}

uint64_t head_watermark(struct spanstore *ss)
{
    uint64_t w = atomic_load(&ss->next_chunk);
    for (size_t i = 0; i < ss->ninflight; i++)
        w = ss->inflight[i] < w ? ss->inflight[i] : w;
    return ss->head_floor < w ? ss->head_floor : w;
}

/* Deletes every key of segment seg (the lists of a segment whose record never got
 * written, or of one retention drops). */
int spanstore_delete_segment(struct spanstore *ss, uint64_t seg, struct vg_err *err)
{
    uint8_t key[SPAN_INDEX_SEG_KEY_LEN] = { SPAN_KEY_SEGMENT };
    for (int i = 0; i < 8; i++)
        key[1 + i] = (uint8_t)(seg >> (56 - 8 * i));
    return kv_delete_prefix(ss->ix, key, sizeof key, err);
}

int spanstore_load_segments(struct spanstore *ss, uint64_t *watermark, bool *any,
                            struct vg_err *err)
{
    *any = false;
    *watermark = 0;
    struct kv_iter *it = kv_iter_new(ss->ix, NULL, false);
    if (!it)
        return vg_err_set(err, VG_ENOMEM, "spanstore: out of memory opening an iterator");
    struct vg_buf key;
    vg_buf_init(&key);
    int rc = 0;
    uint64_t seg = 0;
    char g = SPAN_KEY_SEGMENT;
    for (kv_iter_seek(it, &g, 1); !rc && kv_iter_has_prefix(it, &g, 1);) {
        size_t klen, vlen;
        const char *k = kv_iter_key(it, &klen);
        if (!span_index_seg_of(k, klen, &seg)) {
            rc = vg_err_set(err, VG_EINVAL, "spanstore: index key of %zu bytes", klen);
            break;
        }
        if (klen != SPAN_INDEX_SEG_KEY_LEN) { /* not an old-form record: the record last */
            vg_buf_reset(&key);
            span_index_seg_rec_key(&key, seg);
            if (vg_buf_failed(&key)) {
                rc = vg_err_set(err, VG_ENOMEM, "spanstore: out of memory");
                break;
            }
            kv_iter_seek(it, key.p, key.len);
            k = kv_iter_valid(it) ? kv_iter_key(it, &klen) : NULL;
            if (!k || klen != key.len || memcmp(k, key.p, klen) != 0)
                k = NULL; /* a flush that never wrote its record */
        }
        if (k && span_index_seg_is_rec(k, klen)) {
            struct span_index_seg rec;
            const char *v = kv_iter_value(it, &vlen);
            rc = span_index_seg_decode(seg, v, vlen, &rec, err);
            if (!rc) {
                *watermark = rec.watermark;
                *any = true;
                rc = add_seg(ss, &rec, err);
            }
        } else {
            vg_log(VG_LOG_WARN, "spanstore", "deleting the lists of an unfinished index flush",
                   NULL);
            rc = spanstore_delete_segment(ss, seg, err);
        }
        if (rc || seg == UINT64_MAX)
            break;
        /* ids stay unique even where no chunk came after a segment (an unfinished
         * flush's, deleted above, included) */
        if (atomic_load(&ss->next_chunk) <= seg)
            atomic_store(&ss->next_chunk, seg + 1);
        vg_buf_reset(&key);
        span_index_seg_key(&key, seg + 1);
        kv_iter_seek(it, key.p, key.len);
    }
    if (!rc)
        rc = kv_iter_error(it, err);
    kv_iter_free(it);
    vg_buf_free(&key);
    return rc;
}
