/* spanstore_retain: retention of the span store (key layout: top of spanstore.c).
 *
 * Hour by hour, oldest first, up to the hour of the cutoff: every trace the hour's
 * "every trace" postings name (lists in the span database, lists and packed blocks of
 * the index segments) is deleted when its newest span ended before the cutoff (summary
 * first, then its chunks, so a crash in between leaves unreferenced chunks, never a
 * summary naming missing ones) or else re-filed under the hour of its end; then the
 * hour's keys go as one range, and the segments whose every hour is gone are deleted
 * (all but the newest, whose record holds the replay watermark). The head is flushed
 * first, so postings still in memory are found too. */
#include "spanstore_int.h"

#include "../base/vg_alloc.h"

#include <string.h>

/* Applies retain_trace to every trace of the index lists under prefix (read with it). */
static int retain_lists(struct spanstore *ss, struct kv_iter *it, const char *prefix,
                        size_t plen, uint8_t *prev, int64_t cutoff, uint64_t *del,
                        struct vg_buf *bufs, struct vg_err *err);

/* The ids of the segments holding postings of bucket b (*out vg_malloc'd); 0 when none
 * or out of memory. */
static size_t segs_with_bucket(struct spanstore *ss, uint32_t b, uint64_t **out)
{
    size_t n = 0;
    pthread_mutex_lock(&ss->dir_mu);
    *out = vg_malloc((ss->nsegs ? ss->nsegs : 1) * sizeof **out);
    for (size_t i = 0; *out && i < ss->nsegs; i++)
        for (size_t j = 0; j < ss->segs[i].nb; j++)
            if (ss->segs[i].b[j].bucket == b) {
                (*out)[n++] = ss->segs[i].seg;
                break;
            }
    pthread_mutex_unlock(&ss->dir_mu);
    return n;
}

/* Deletes the segments whose every bucket is before limit (retention dropped them),
 * except the newest: its record holds the replay watermark. */
static int drop_segments(struct spanstore *ss, uint32_t limit, struct vg_err *err)
{
    int rc = 0;
    for (;;) {
        uint64_t seg = 0;
        bool found = false;
        pthread_mutex_lock(&ss->dir_mu);
        for (size_t i = 0; !found && i + 1 < ss->nsegs; i++) {
            bool old = true;
            for (size_t j = 0; old && j < ss->segs[i].nb; j++)
                old = ss->segs[i].b[j].bucket < limit;
            if (old) {
                found = true;
                seg = ss->segs[i].seg;
            }
        }
        pthread_mutex_unlock(&ss->dir_mu);
        if (!found || (rc = spanstore_delete_segment(ss, seg, err)) != 0)
            return rc;
        pthread_mutex_lock(&ss->dir_mu);
        for (size_t i = 0; i < ss->nsegs; i++)
            if (ss->segs[i].seg == seg) {
                vg_free(ss->segs[i].b);
                memmove(&ss->segs[i], &ss->segs[i + 1], (ss->nsegs - i - 1) * sizeof *ss->segs);
                ss->nsegs--;
                break;
            }
        pthread_mutex_unlock(&ss->dir_mu);
    }
}

/* Deletes one trace if its newest span ended before cutoff; a trace still alive gets an
 * 'a' entry in the hour of its end, so it stays reachable after this hour is dropped. */
static int retain_trace(struct spanstore *ss, const uint8_t *tid, int64_t cutoff,
                        uint64_t *deleted, struct vg_buf *bufs, struct vg_err *err)
{
    unsigned st = spanstore_stripe(tid);
    pthread_mutex_lock(&ss->stripes[st]);
    unsigned slot = st % SPANSTORE_COUNT_SLOTS; /* the counter record this step updates */
    bool cnt_locked = false;
    struct span_index_summary sum;
    bool found;
    struct kv_batch *kb = NULL, *cb = NULL;
    int rc = spanstore_read_summary(ss, tid, &bufs[0], &bufs[1], &sum, &found, err);
    if (rc || !found)
        goto out;
    kb = kv_batch_new();
    cb = kv_batch_new();
    if (!kb || !cb) {
        rc = vg_err_set(err, VG_ENOMEM, "spanstore retention: out of memory");
        goto out;
    }
    pthread_mutex_lock(&ss->cnt_mu[slot]);
    cnt_locked = true;
    struct span_index_counts c;
    if (sum.end_ns >= cutoff) {
        struct span_index_term t = { .kind = SPAN_IX_ALL };
        vg_buf_reset(&bufs[0]);
        span_index_term_key(&bufs[0], span_index_bucket(sum.end_ns), &t);
        span_index_put_list_suffix(&bufs[0], sum.end_ns, atomic_fetch_add(&ss->next_chunk, 1));
        vg_buf_reset(&bufs[1]);
        span_index_put_suffix(&bufs[1], sum.end_ns, tid);
        kv_batch_put(kb, bufs[0].p, bufs[0].len, bufs[1].p, bufs[1].len);
    } else {
        kv_batch_delete(kb, bufs[0].p, bufs[0].len); /* still the summary key */
        vg_buf_reset(&bufs[0]);
        span_index_trace_prefix(&bufs[0], tid);
        struct kv_iter *it = kv_iter_new(ss->kv, NULL, false);
        if (!it) {
            rc = vg_err_set(err, VG_ENOMEM, "spanstore retention: out of memory");
            goto out;
        }
        for (kv_iter_seek(it, bufs[0].p, bufs[0].len);
             kv_iter_has_prefix(it, bufs[0].p, bufs[0].len); kv_iter_next(it)) {
            size_t klen;
            const char *k = kv_iter_key(it, &klen);
            kv_batch_delete(kb, k, klen);
        }
        rc = kv_iter_error(it, err);
        kv_iter_free(it);
        for (size_t i = 0; i < sum.nchunks; i++) { /* before bufs[1] (sum) is reused */
            uint8_t ck[SPAN_INDEX_CHUNK_ID_LEN];
            spanstore_chunk_key(ck, span_index_summary_chunk(&sum, i));
            kv_batch_delete(cb, ck, sizeof ck);
        }
        struct span_index_counts d = { sum.spans, 1, sum.bytes };
        spanstore_put_counts(ss, kb, slot, &d, true, &c, &bufs[0], &bufs[1]);
    }
    if (!rc && (vg_buf_failed(&bufs[0]) || vg_buf_failed(&bufs[1])))
        rc = vg_err_set(err, VG_ENOMEM, "spanstore retention: out of memory");
    if (!rc)
        rc = kv_write(ss->kv, kb, false, err);
    /* After the summary is gone: a crash in between leaves unreferenced chunks, never a
     * summary naming missing ones (readers skip those anyway). */
    if (!rc && kv_batch_count(cb))
        rc = kv_write(ss->chunks, cb, false, err);
    if (!rc && sum.end_ns < cutoff) {
        ss->counts[slot] = c;
        ++*deleted;
    }
out:
    if (cnt_locked)
        pthread_mutex_unlock(&ss->cnt_mu[slot]);
    kv_batch_free(kb);
    kv_batch_free(cb);
    pthread_mutex_unlock(&ss->stripes[st]);
    return rc;
}

/* Deletes every key of one hour bucket. */
static int drop_bucket(struct spanstore *ss, uint32_t bucket, struct vg_err *err)
{
    char pfx[5] = { SPAN_KEY_BUCKET, (char)(bucket >> 24), (char)(bucket >> 16),
                    (char)(bucket >> 8), (char)bucket };
    return kv_delete_prefix(ss->kv, pfx, sizeof pfx, err);
}

static int retain_lists(struct spanstore *ss, struct kv_iter *it, const char *prefix,
                        size_t plen, uint8_t *prev, int64_t cutoff, uint64_t *del,
                        struct vg_buf *bufs, struct vg_err *err)
{
    int rc = 0;
    for (kv_iter_seek(it, prefix, plen); !rc && kv_iter_has_prefix(it, prefix, plen);
         kv_iter_next(it)) {
        size_t vlen, np;
        const char *v = kv_iter_value(it, &vlen);
        if (!span_index_list_count(vlen, &np))
            continue;
        for (size_t i = 0; !rc && i < np; i++) {
            int64_t t;
            uint8_t tid[SPAN_TRACE_ID_LEN];
            span_index_get_posting(v + i * SPAN_INDEX_SUFFIX_LEN, &t, tid);
            if (!memcmp(tid, prev, SPAN_TRACE_ID_LEN))
                continue;
            memcpy(prev, tid, SPAN_TRACE_ID_LEN);
            rc = retain_trace(ss, tid, cutoff, del, bufs, err);
        }
    }
    return rc ? rc : kv_iter_error(it, err);
}

/* retain_trace for every trace of term tkey packed in segment seg. */
static int retain_packed(struct spanstore *ss, struct kv_iter *it, uint64_t seg,
                         const char *tkey, size_t tlen, int64_t cutoff, uint64_t *del,
                         struct vg_buf *bufs, struct vg_err *err)
{
    struct vg_buf scratch;
    vg_buf_init(&scratch);
    const char *pp;
    size_t np = 0;
    int rc = spanstore_seg_packed(it, seg, tkey, tlen, &scratch, &pp, &np);
    if (rc)
        vg_err_set(err, rc, "spanstore retention: segment %llu: malformed packed block",
                   (unsigned long long)seg);
    /* copied: retain_trace reads other keys, and the block lives in the iterator */
    char *copy = !rc && np ? vg_malloc(np * SPAN_INDEX_SUFFIX_LEN) : NULL;
    if (!rc && np && !copy)
        rc = vg_err_set(err, VG_ENOMEM, "spanstore retention: out of memory");
    if (copy)
        memcpy(copy, pp, np * SPAN_INDEX_SUFFIX_LEN);
    for (size_t i = 0; !rc && i < np; i++) {
        int64_t t;
        uint8_t tid[SPAN_TRACE_ID_LEN];
        span_index_get_posting(copy + i * SPAN_INDEX_SUFFIX_LEN, &t, tid);
        rc = retain_trace(ss, tid, cutoff, del, bufs, err);
    }
    vg_free(copy);
    vg_buf_free(&scratch);
    return rc;
}

int spanstore_retain(struct spanstore *ss, int64_t cutoff, uint64_t *deleted,
                     struct vg_err *err)
{
    /* Postings still in memory first, so the traces they name are found below. */
    int frc = spanstore_flush_index(ss, err);
    if (frc)
        return frc;
    uint64_t del = 0;
    uint32_t limit = span_index_bucket(cutoff); /* buckets before it ended by cutoff */
    struct vg_buf bufs[2];
    vg_buf_init(&bufs[0]);
    vg_buf_init(&bufs[1]);
    int rc = 0;
    uint32_t b = 0;
    for (;;) {
        /* The oldest bucket still stored. */
        struct kv_iter *it = kv_iter_new(ss->kv, NULL, false);
        if (!it) {
            rc = vg_err_set(err, VG_ENOMEM, "spanstore retention: out of memory");
            break;
        }
        char first[5] = { SPAN_KEY_BUCKET, (char)(b >> 24), (char)(b >> 16), (char)(b >> 8),
                          (char)b };
        kv_iter_seek(it, first, 5);
        size_t klen = 0;
        const char *k = kv_iter_valid(it) ? kv_iter_key(it, &klen) : NULL;
        if (!k || !span_index_key_bucket(k, klen, &b) || b >= limit) {
            rc = kv_iter_error(it, err);
            kv_iter_free(it);
            break;
        }
        char all[6] = { first[0], (char)(b >> 24), (char)(b >> 16), (char)(b >> 8), (char)b,
                        SPAN_IX_ALL };
        uint8_t prev[SPAN_TRACE_ID_LEN] = { 0 };
        rc = retain_lists(ss, it, all, sizeof all, prev, cutoff, &del, bufs, err);
        kv_iter_free(it);
        /* and the bucket's "every trace" lists in the segments */
        it = rc ? NULL : kv_iter_new(ss->ix, NULL, false);
        if (!rc && !it)
            rc = vg_err_set(err, VG_ENOMEM, "spanstore retention: out of memory");
        uint64_t *segs = NULL;
        size_t nsegs = rc ? 0 : segs_with_bucket(ss, b, &segs);
        for (size_t i = 0; !rc && i < nsegs; i++) {
            char key[SPAN_INDEX_SEG_KEY_LEN + 5];
            key[0] = SPAN_KEY_SEGMENT;
            for (int j = 0; j < 8; j++)
                key[1 + j] = (char)(segs[i] >> (56 - 8 * j));
            memcpy(key + SPAN_INDEX_SEG_KEY_LEN, all + 1, 5);
            rc = retain_lists(ss, it, key, sizeof key, prev, cutoff, &del, bufs, err);
            if (!rc)
                rc = retain_packed(ss, it, segs[i], all, sizeof all, cutoff, &del, bufs, err);
        }
        vg_free(segs);
        kv_iter_free(it);
        if (!rc) {
            rc = drop_bucket(ss, b, err);
            /* late spans of a dropped hour must list their names again */
            spanstore_forget_registry(ss);
        }
        if (rc || b == UINT32_MAX)
            break;
        b++;
    }
    vg_buf_free(&bufs[0]);
    vg_buf_free(&bufs[1]);
    if (!rc)
        rc = drop_segments(ss, limit, err);
    if (deleted)
        *deleted = del;
    return rc;
}

