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

#define FLUSH_BATCH_BYTES ((size_t)4 << 20) /* written in LevelDB batches of about this */

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

/* The packed block being built: its key (from its first term) and entries. */
struct pack {
    struct vg_buf key, val;
    uint32_t bucket;
};

static void pack_put(struct pack *pk, struct kv_batch *kb, size_t *bytes)
{
    if (!pk->val.len)
        return;
    kv_batch_put(kb, pk->key.p, pk->key.len, pk->val.p, pk->val.len);
    *bytes += pk->key.len + pk->val.len;
    vg_buf_reset(&pk->key);
    vg_buf_reset(&pk->val);
}

/* Adds a small term (sorted postings tmp[0..n)) to the packed block of its bucket,
 * writing the block out first when the bucket changes or it is full. */
static void pack_add(struct pack *pk, struct kv_batch *kb, size_t *bytes, uint64_t seg,
                     const char *tkey, size_t tlen, const struct span_head_posting *tmp,
                     size_t n)
{
    uint32_t b = 0;
    span_index_key_bucket(tkey, tlen, &b);
    if (pk->val.len && (b != pk->bucket || pk->val.len >= SPAN_INDEX_PACK_BYTES))
        pack_put(pk, kb, bytes);
    if (!pk->val.len) {
        span_index_seg_pack_key(&pk->key, seg, tkey, tlen);
        pk->bucket = b;
    }
    span_index_pack_entry(&pk->val, tkey, tlen);
    uint8_t c[2] = { (uint8_t)(n >> 8), (uint8_t)n };
    vg_buf_append(&pk->val, c, 2);
    for (size_t x = 0; x < n; x++)
        span_index_put_suffix(&pk->val, tmp[x].t, tmp[x].tid);
}

/* Writes the frozen terms as segment seg: terms of more than SPAN_INDEX_PACK_MAX
 * postings as lists (pieces), the others packed into blocks. */
static int write_segment(struct spanstore *ss, uint64_t seg, uint64_t watermark,
                         const struct span_head_term *terms, size_t nterms,
                         struct vg_err *err)
{
    struct kv_batch *kb = kv_batch_new();
    struct vg_buf key, val;
    vg_buf_init(&key);
    vg_buf_init(&val);
    struct pack pk = { .bucket = 0 };
    vg_buf_init(&pk.key);
    vg_buf_init(&pk.val);
    struct vg_buf listed; /* hashes of the listed terms, bucket after bucket */
    vg_buf_init(&listed);
    struct span_head_posting *tmp = NULL;
    size_t captmp = 0, capb = 0, bytes = 0;
    struct span_index_seg rec = { .seg = seg, .watermark = watermark };
    int rc = kb ? 0 : vg_err_set(err, VG_ENOMEM, "spanstore flush: out of memory");
    for (size_t i = 0; !rc && i < nterms; i++) {
        const struct span_head_term *t = &terms[i];
        if (!t->n)
            continue;
        if (t->n > captmp) {
            struct span_head_posting *nv = vg_realloc(tmp, t->n * sizeof *nv);
            if (!nv) {
                rc = vg_err_set(err, VG_ENOMEM, "spanstore flush: out of memory");
                break;
            }
            tmp = nv;
            captmp = t->n;
        }
        memcpy(tmp, t->p, t->n * sizeof *tmp);
        span_head_sort(tmp, t->n);
        if (t->n <= SPAN_INDEX_PACK_MAX) {
            pack_add(&pk, kb, &bytes, seg, t->key, t->klen, tmp, t->n);
            if (!note_bucket(&rec, &capb, t->key, tmp[t->n - 1].t, tmp[0].t, t->n))
                rc = vg_err_set(err, VG_ENOMEM, "spanstore flush: out of memory");
        }
        if (t->n > SPAN_INDEX_PACK_MAX) {
            vg_buf_append(&listed, &t->hash, sizeof t->hash);
            if (!note_bucket(&rec, &capb, t->key, tmp[t->n - 1].t, tmp[0].t, 0) || !rec.nb)
                rc = vg_err_set(err, VG_ENOMEM, "spanstore flush: out of memory");
            else
                rec.b[rec.nb - 1].nlisted++;
        }
        uint64_t piece = 0;
        for (size_t j = t->n <= SPAN_INDEX_PACK_MAX ? t->n : 0, k; j < t->n; j = k) {
            int64_t slot = tmp[j].t >> SPAN_INDEX_LIST_SLOT_SHIFT;
            for (k = j + 1; k < t->n && k - j < SPAN_INDEX_PIECE &&
                            tmp[k].t >> SPAN_INDEX_LIST_SLOT_SHIFT == slot; k++)
                ;
            vg_buf_reset(&key);
            vg_buf_reset(&val);
            span_index_seg_term(&key, seg, t->key, t->klen);
            span_index_put_list_suffix(&key, tmp[j].t, piece++);
            for (size_t x = j; x < k; x++)
                span_index_put_suffix(&val, tmp[x].t, tmp[x].tid);
            kv_batch_put(kb, key.p, key.len, val.p, val.len);
            bytes += key.len + val.len;
            if (!note_bucket(&rec, &capb, t->key, tmp[k - 1].t, tmp[j].t, k - j))
                rc = vg_err_set(err, VG_ENOMEM, "spanstore flush: out of memory");
        }
        if (!rc && bytes >= FLUSH_BATCH_BYTES) {
            rc = kv_write(ss->ix, kb, false, err);
            kv_batch_clear(kb);
            bytes = 0;
        }
    }
    if (!rc) {
        pack_put(&pk, kb, &bytes);
        if (vg_buf_failed(&pk.key) || vg_buf_failed(&pk.val))
            rc = vg_err_set(err, VG_ENOMEM, "spanstore flush: out of memory");
    }
    if (!rc && vg_buf_failed(&listed))
        rc = vg_err_set(err, VG_ENOMEM, "spanstore flush: out of memory");
    if (!rc) {
        set_listed(&rec, (uint64_t *)(void *)listed.p);
        vg_buf_reset(&key);
        vg_buf_reset(&val);
        span_index_seg_key(&key, seg);
        span_index_seg_encode(&rec, &val);
        if (vg_buf_failed(&key) || vg_buf_failed(&val))
            rc = vg_err_set(err, VG_ENOMEM, "spanstore flush: out of memory");
        else
            kv_batch_put(kb, key.p, key.len, val.p, val.len);
    }
    /* The record last, synced as the store's writes are: the pieces written before
     * are in the log ahead of it. */
    if (!rc)
        rc = kv_write(ss->ix, kb, !ss->opts.no_sync, err);
    vg_free(rec.b);
    /* the directory keeps the record as stored (one allocation, hashes included) */
    struct span_index_seg mem;
    if (!rc && !(rc = span_index_seg_decode(seg, val.p, val.len, &mem, err)))
        rc = add_seg(ss, &mem, err);
    vg_free(tmp);
    vg_buf_free(&key);
    vg_buf_free(&val);
    vg_buf_free(&pk.key);
    vg_buf_free(&pk.val);
    vg_buf_free(&listed);
    kv_batch_free(kb);
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
    atomic_store(&ss->flush_wanted, false);
    /* A generation left frozen by a failed flush is written first, under its own
     * watermark; the active one waits for the next round. */
    if (span_head_freeze(ss->head))
        ss->frozen_watermark = head_watermark(ss);
    span_head_unlock(ss->head);
    const struct span_head_term *terms;
    size_t n = span_head_frozen(ss->head, &terms);
    int rc = 0;
    if (n) {
        uint64_t seg = atomic_fetch_add(&ss->next_chunk, 1);
        rc = write_segment(ss, seg, ss->frozen_watermark, terms, n, err);
        if (!rc)
            span_head_release(ss->head);
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
        if (klen == SPAN_INDEX_SEG_KEY_LEN) {
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
