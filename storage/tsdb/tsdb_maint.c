/* tsdb_maint: the TSDB's housekeeping: writing head chunks, deleting write-ahead
 * records nothing needs any more, retention, packing the postings, full compaction,
 * and the "tsdb-maint" thread that runs them on an interval. Key layout at the top of
 * tsdb.c.
 *
 * Packing (index_pack) turns the one-id posting keys that appends write into delta
 * blocks and drops the ids of series retention deleted; it scans every posting, so a
 * round runs it only once the series created since the last pack are a fair share of
 * all (PACK_AFTER_*), or when retention dropped a series (whose ids blocks still hold,
 * and whose label values would stay listed until then); tsdb_compact always runs it.
 *
 * Order within a round matters: chunks are written first (no sync), then the W
 * records they made redundant are deleted with a sync write, which also makes the
 * chunk writes before it durable (LevelDB's log is append-only), then retention. */
#include "tsdb_int.h"

#include "../base/vg_alloc.h"
#include "index.h"
#include "wal.h"

#include <inttypes.h>

#define DELETE_BATCH_KEYS 10000
#define WAL_COMPACT_AFTER 100000      /* deleted records before compacting the 'W' range */
#define RETENTION_COMPACT_AFTER 10000 /* deleted chunks before compacting their range */
#define RETENTION_GRANULE_MS (10LL * 60 * 1000)
#define PACK_AFTER_SERIES 1000 /* at least this many new series ... */
#define PACK_AFTER_SHARE 8      /* ... and at least 1/8 of all ids, before a round packs */
/* Writer token of maintenance; appends use their record number, which never gets here. */
#define MAINT_WRITER UINT64_MAX

static bool flush_head(const struct head_series *s, int64_t now, enum tsdb_flush_mode mode)
{
    if (!s->head.count || mode == TSDB_FLUSH_WAITING)
        return false;
    return mode == TSDB_FLUSH_ALL ||
           head_mint(s) < tsdb_sat_sub(s->max_t, TSDB_FLUSH_AGE_MS) ||
           s->max_t < tsdb_sat_sub(now, TSDB_FLUSH_AGE_MS);
}

int tsdb_flush(struct tsdb *db, int64_t now, enum tsdb_flush_mode mode, struct vg_err *err)
{
    struct tsdb_node_refs refs = { 0 };
    struct kv_batch *b = kv_batch_new();
    if (!b)
        return tsdb_nomem(err, "flushing the head");
    int rc = 0;
    pthread_mutex_lock(&db->mu);
    /* Index loop: the array may be reallocated while mu is dropped for a write. */
    for (size_t i = 0; i < db->head.by_id_cap && rc == 0; i++) {
        struct head_series *s = db->head.by_id[i];
        if (!s || (s->flags & HEAD_F_LOST))
            continue;
        if (flush_head(s, now, mode) && !head_freeze(s))
            rc = tsdb_nomem(err, "flushing the head");
        if (rc == 0 && mode != TSDB_FLUSH_WAITING && s->ooo && head_freeze_ooo(s) != 0)
            rc = tsdb_nomem(err, "flushing the head");
        /* In-order chunks of a series go together, and not while an append owns an
         * older one (see head_node_writable); out-of-order ones any time. */
        bool inorder_ok = true;
        for (const struct head_node *n = s->nodes; n; n = n->next)
            if (n->kind == HEAD_NODE_INORDER && n->writer)
                inorder_ok = false;
        for (struct head_node *n = s->nodes; n && rc == 0; n = n->next) {
            if (n->writer || (n->kind == HEAD_NODE_INORDER && !inorder_ok))
                continue;
            if (tsdb_refs_push(&refs, s, n) != 0) {
                rc = tsdb_nomem(err, "flushing the head");
                break;
            }
            n->writer = MAINT_WRITER;
            tsdb_node_put(b, s, n);
        }
        if (rc == 0 && kv_batch_bytes(b) >= TSDB_NODE_BATCH_BYTES)
            rc = tsdb_refs_write(db, &refs, b, err);
    }
    struct vg_err werr;
    int wrc = tsdb_refs_write(db, &refs, b, rc ? &werr : err);
    pthread_mutex_unlock(&db->mu);
    kv_batch_free(b);
    vg_free(refs.v);
    return rc ? rc : wrc;
}

/* Deletes the W records below the oldest one still needed, in sync batches. The keys
 * are numbered, so they are deleted blind, without reading them: a scan would page the
 * records' table files into the process (LevelDB maps them), which counts as resident
 * memory for as long as those files live. A number whose append failed has no record;
 * deleting it is harmless. */
int tsdb_wal_truncate(struct tsdb *db, struct vg_err *err)
{
    pthread_mutex_lock(&db->mu);
    uint64_t keep = db->next_seq;
    for (size_t i = 0; i < db->head.by_id_cap; i++) {
        const struct head_series *s = db->head.by_id[i];
        if (s) {
            uint64_t m = head_wal_min(s);
            if (m < keep)
                keep = m;
        }
    }
    for (const struct tsdb_inflight *f = db->inflight.next; f != &db->inflight; f = f->next)
        if (f->seq < keep)
            keep = f->seq;
    pthread_mutex_unlock(&db->mu);
    if (keep <= db->wal_first)
        return 0;
    struct kv_batch *b = kv_batch_new();
    int rc = b ? 0 : tsdb_nomem(err, "truncating the write-ahead log");
    unsigned char k[WAL_KEY_LEN];
    for (uint64_t seq = db->wal_first; seq < keep && rc == 0; seq++) {
        wal_key(k, seq);
        kv_batch_delete(b, k, sizeof k);
        if (kv_batch_count(b) >= DELETE_BATCH_KEYS || seq + 1 == keep) {
            rc = kv_write(db->kv, b, true, err);
            kv_batch_clear(b);
        }
    }
    kv_batch_free(b);
    if (rc)
        return rc;
    db->wal_deleted_uncompacted += keep - db->wal_first;
    db->wal_first = keep;
    if (db->wal_deleted_uncompacted >= WAL_COMPACT_AFTER) {
        unsigned char w0[1] = { WAL_PREFIX }, to[WAL_KEY_LEN];
        wal_key(to, keep);
        kv_compact_range(db->kv, w0, 1, to, sizeof to);
        db->wal_deleted_uncompacted = 0;
    }
    return 0;
}

/* Deletes the chunks of series id that end before cutoff and its exemplars before
 * cutoff into b; returns the start of its oldest remaining chunk (INT64_MAX if none). */
static int64_t expire_series(struct kv_iter *it, struct kv_batch *b, uint64_t id,
                             int64_t cutoff, uint64_t *deleted)
{
    int64_t disk_min = INT64_MAX;
    unsigned char key[TSDB_CHUNK_KEY_MAX];
    tsdb_id_key(key, 'C', id);
    for (kv_iter_seek(it, key, TSDB_ID_KEY_LEN); kv_iter_has_prefix(it, key, TSDB_ID_KEY_LEN);
         kv_iter_next(it)) {
        size_t kl, vl;
        const char *k = kv_iter_key(it, &kl);
        int64_t start;
        uint8_t kind;
        if (!tsdb_chunk_key_parse(k, kl, id, &start, &kind))
            continue;
        if (start >= cutoff) {
            if (start < disk_min)
                disk_min = start;
            break;
        }
        /* A chunk spans less than HEAD_CHUNK_MAX_SPAN_MS: only recent starts need a look
         * at the last sample. */
        bool expired = start <= tsdb_sat_sub(cutoff, HEAD_CHUNK_MAX_SPAN_MS);
        if (!expired) {
            const unsigned char *v = (const unsigned char *)kv_iter_value(it, &vl);
            struct chunk_iter ci;
            chunk_iter_init(&ci, v, vl);
            int64_t t, last = INT64_MIN;
            double x;
            while (chunk_next(&ci, &t, &x))
                last = t;
            expired = last < cutoff;
        }
        if (expired) {
            kv_batch_delete(b, k, kl);
            (*deleted)++;
        } else if (start < disk_min) {
            disk_min = start;
        }
    }
    unsigned char ek[17];
    tsdb_id_key(ek, 'E', id);
    for (kv_iter_seek(it, ek, TSDB_ID_KEY_LEN); kv_iter_has_prefix(it, ek, TSDB_ID_KEY_LEN);
         kv_iter_next(it)) {
        size_t kl;
        const char *k = kv_iter_key(it, &kl);
        if (kl != 17 || tsdb_tk_inv(tsdb_get_u64be(k + 9)) >= cutoff)
            break;
        kv_batch_delete(b, k, kl);
    }
    return disk_min;
}

/* Under mu: deletes the keys of series s that has no data left and forgets it. */
static int drop_series(struct tsdb *db, struct head_series *s, struct vg_err *err)
{
    struct kv_batch *b = kv_batch_new();
    struct label *ls = vg_malloc((s->nlabels ? s->nlabels : 1) * sizeof *ls);
    char *lbl = vg_malloc(s->lbl_len ? s->lbl_len : 1);
    struct vg_buf kb;
    vg_buf_init(&kb);
    int rc = b && ls && lbl ? 0 : tsdb_nomem(err, "dropping a series");
    if (rc == 0)
        head_labels_copy(&db->head, s, lbl);
    int nl = rc ? 0 : labels_decode(lbl, s->lbl_len, ls, s->nlabels, NULL);
    if (rc == 0 && nl >= 0) {
        tsdb_series_keys(b, &kb, s->id, lbl, s->lbl_len, ls, (size_t)nl, true);
        rc = vg_buf_failed(&kb) ? tsdb_nomem(err, "dropping a series")
                                : kv_write(db->kv, b, false, err);
    }
    if (rc == 0)
        head_remove(&db->head, s);
    vg_buf_free(&kb);
    vg_free(lbl);
    vg_free(ls);
    kv_batch_free(b);
    return rc;
}

static bool is_empty(const struct head_series *s)
{
    return s->min_t == INT64_MAX && s->max_t != INT64_MIN && !head_has_data(s) &&
           !s->pending && (s->flags & HEAD_F_DURABLE);
}

/* *dropped counts the series deleted for having no data left. */
static int retention(struct tsdb *db, int64_t now, size_t *dropped, struct vg_err *err)
{
    if (db->o.retention_ms <= 0)
        return 0;
    int64_t cutoff = tsdb_sat_sub(now, db->o.retention_ms);
    int64_t granule = db->o.retention_ms / 4 < RETENTION_GRANULE_MS ? db->o.retention_ms / 4
                                                                    : RETENTION_GRANULE_MS;
    if (db->last_retention_cutoff != INT64_MIN &&
        cutoff - db->last_retention_cutoff < granule)
        return 0;
    /* Candidates: series with data older than the cutoff. */
    uint64_t *ids = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    pthread_mutex_lock(&db->mu);
    for (size_t i = 0; i < db->head.by_id_cap && rc == 0; i++) {
        const struct head_series *s = db->head.by_id[i];
        if (!s || !(s->min_t < cutoff || is_empty(s)))
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            uint64_t *nv = vg_realloc(ids, ncap * sizeof *nv);
            if (!nv) {
                rc = tsdb_nomem(err, "applying retention");
                break;
            }
            ids = nv;
            cap = ncap;
        }
        ids[n++] = s->id;
    }
    pthread_mutex_unlock(&db->mu);
    struct kv_batch *b = rc ? NULL : kv_batch_new();
    struct kv_iter *it = b ? kv_iter_new(db->kv, NULL, false) : NULL;
    if (rc == 0 && !it)
        rc = tsdb_nomem(err, "applying retention");
    uint64_t deleted = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        int64_t disk_min = expire_series(it, b, ids[i], cutoff, &deleted);
        pthread_mutex_lock(&db->mu);
        struct head_series *s = head_by_id(&db->head, ids[i]);
        if (s) {
            int64_t mem_min = head_mem_min(s);
            s->min_t = disk_min < mem_min ? disk_min : mem_min;
        }
        pthread_mutex_unlock(&db->mu);
        if (kv_batch_count(b) >= DELETE_BATCH_KEYS) {
            rc = kv_write(db->kv, b, false, err);
            kv_batch_clear(b);
        }
    }
    if (rc == 0 && b && kv_batch_count(b))
        rc = kv_write(db->kv, b, false, err);
    if (rc == 0 && it)
        rc = kv_iter_error(it, err);
    kv_iter_free(it);
    kv_batch_free(b);
    /* Series left without any sample lose their definition and postings. */
    for (size_t i = 0; i < n && rc == 0; i++) {
        pthread_mutex_lock(&db->mu);
        struct head_series *s = head_by_id(&db->head, ids[i]);
        if (s && is_empty(s)) {
            rc = drop_series(db, s, err);
            *dropped += rc == 0;
        }
        pthread_mutex_unlock(&db->mu);
    }
    vg_free(ids);
    if (rc)
        return rc;
    db->last_retention_cutoff = cutoff;
    db->chunks_deleted_uncompacted += deleted;
    if (db->chunks_deleted_uncompacted >= RETENTION_COMPACT_AFTER) {
        kv_compact_range(db->kv, "C", 1, "D", 1);
        db->chunks_deleted_uncompacted = 0;
    }
    return 0;
}

/* index_live_fn: keeps the ids the head still has. */
static void live_ids(void *ctx, struct index_ids *ids)
{
    struct tsdb *db = ctx;
    size_t w = 0;
    pthread_mutex_lock(&db->mu);
    for (size_t i = 0; i < ids->n; i++)
        if (head_by_id(&db->head, ids->v[i]))
            ids->v[w++] = ids->v[i];
    pthread_mutex_unlock(&db->mu);
    ids->n = w;
}

/* Under maint_mu. */
static int pack_postings(struct tsdb *db, bool always, struct vg_err *err)
{
    pthread_mutex_lock(&db->mu);
    uint64_t next = db->head.next_id;
    pthread_mutex_unlock(&db->mu);
    uint64_t fresh = next - (db->packed_next_id ? db->packed_next_id : 1); /* ids from 1 */
    if (!always && (fresh < PACK_AFTER_SERIES || fresh < next / PACK_AFTER_SHARE))
        return 0;
    int rc = index_pack(db->kv, live_ids, db, NULL, err);
    if (rc)
        return vg_err_prefix(err, "tsdb %s: packing the postings", db->dir);
    db->packed_next_id = next;
    vg_log(VG_LOG_DEBUG, "tsdb", "postings packed", "dir", db->dir, NULL);
    return 0;
}

int tsdb_maintain(struct tsdb *db, int64_t now_ms, struct vg_err *err)
{
    pthread_mutex_lock(&db->maint_mu);
    int rc = tsdb_flush(db, now_ms, TSDB_FLUSH_OLD, err);
    if (rc == 0)
        rc = tsdb_wal_truncate(db, err);
    size_t dropped = 0;
    if (rc == 0)
        rc = retention(db, now_ms, &dropped, err);
    /* Dropped series leave their ids in blocks and would keep their label values
     * listed: repack now. */
    if (rc == 0)
        rc = pack_postings(db, dropped > 0, err);
    pthread_mutex_unlock(&db->maint_mu);
    return rc;
}

int tsdb_compact(struct tsdb *db, struct vg_err *err)
{
    pthread_mutex_lock(&db->maint_mu);
    int rc = tsdb_flush(db, tsdb_now_ms(), TSDB_FLUSH_ALL, err);
    if (rc == 0)
        rc = tsdb_wal_truncate(db, err);
    if (rc == 0)
        rc = pack_postings(db, true, err);
    if (rc == 0) {
        kv_compact_range(db->kv, NULL, 0, NULL, 0);
        db->wal_deleted_uncompacted = 0;
        db->chunks_deleted_uncompacted = 0;
    }
    pthread_mutex_unlock(&db->maint_mu);
    return rc;
}

/* One round of the "tsdb-maint" ticker: fixed delay, each round maint_interval_ms after
 * the previous one returned (a long retention round does not make the next one come
 * sooner), the first one interval after open. */
static void maint_round(void *arg, const atomic_bool *stop)
{
    struct tsdb *db = arg;
    (void)stop; /* tsdb_close flushes the head after the stop anyway */
    struct vg_err err;
    if (tsdb_maintain(db, tsdb_now_ms(), &err) != 0)
        vg_log(VG_LOG_WARN, "tsdb", "maintenance failed; retrying next round", "dir", db->dir,
               "error", err.msg, NULL);
}

int tsdb_maint_start(struct tsdb *db, struct vg_err *err)
{
    struct vg_ticker_opts o = { .name = "tsdb-maint", .interval_ms = db->o.maint_interval_ms,
                                .first_ms = db->o.maint_interval_ms };
    if (vg_ticker_start(&db->maint, &o, maint_round, db, err) < 0)
        return vg_err_prefix(err, "tsdb");
    return 0;
}

void tsdb_maint_stop(struct tsdb *db)
{
    vg_ticker_stop(&db->maint);
}
