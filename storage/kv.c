/* kv: see kv.h. The only file that includes <leveldb/c.h>.
 *
 * Invariants: every char* LevelDB returns (values from leveldb_get, error strings from
 * errptr, property values) is released with leveldb_free in the function that received
 * it; callers only ever see vg_* memory or pointers into an iterator's current entry.
 * Options objects (cache, bloom filter, read/write options) live as long as the kv.
 *
 * Periodic sync. Why an empty batch written with sync makes earlier writes durable: in
 * LevelDB (db_impl.cc, DBImpl::Write) every write, an empty batch included, joins the
 * one writer queue; its leader appends the group's record to the current log file and,
 * when the leader's options say sync, fsyncs that file before anyone in the group
 * returns. Each earlier write's record was appended to that file (and flushed from
 * LevelDB's buffer to the OS) before its own kv_write returned, so the fsync covers it.
 * The cost is a 7-byte log header and a 12-byte empty batch per round; rounds with no
 * unsynced write since the last one are skipped (the `unsynced` counter below), so an
 * idle server does not touch the disk. The exception is a log LevelDB rotated away from
 * (memtable full): it is closed without fsync, and its writes become durable when the
 * memtable's table file is written and synced, which LevelDB starts at the rotation.
 *
 * `unsynced` counts writes made without sync, incremented after leveldb_write returns:
 * the kv-sync thread reads it before its sync, so every write it has counted was in the
 * log before the sync entered LevelDB's queue. A write counted after the read is synced
 * again next round at worst. The thread is a vg_ticker (fixed delay: each round
 * sync_interval_ms after the previous one returned), whose lock is never held while
 * the round calls LevelDB; writers never take it. */
#include "kv.h"

#include "base/vg_alloc.h"
#include "base/vg_log.h"
#include "base/vg_ticker.h"

#include <leveldb/c.h>
#include <stdatomic.h>
#include <string.h>

#define KV_DEFAULT_CACHE (32u << 20)
#define KV_DEFAULT_WRITE_BUFFER (8u << 20)
#define KV_DEFAULT_BLOOM_BITS 10
/* A cleared batch keeps a buffer of up to about this many bytes for its next use. */
#define KV_BATCH_KEEP_BYTES (64u << 10)

struct kv {
    leveldb_t *db;
    leveldb_options_t *opts;
    leveldb_cache_t *cache;
    leveldb_filterpolicy_t *bloom;
    leveldb_readoptions_t *ropts;        /* latest state, fills the cache */
    leveldb_readoptions_t *ropts_nofill; /* latest state, bulk scans */
    leveldb_writeoptions_t *wsync, *wnosync;
    char *path;
    /* periodic sync (see the top of this file) */
    _Atomic uint64_t unsynced;            /* writes made without sync, ever */
    _Atomic uint64_t syncs, sync_failures;
    uint64_t synced_upto;                 /* unsynced as read before the last good sync */
    struct vg_ticker syncer;              /* "kv-sync"; zeroed when not started */
    struct vg_complaint sync_complaint;
};

struct kv_batch {
    leveldb_writebatch_t *wb;
    size_t count, bytes;
};

struct kv_iter {
    leveldb_iterator_t *it;
};

struct kv_snapshot {
    const leveldb_snapshot_t *snap;
};

/* Turns LevelDB's malloc'd error string into err (VG_EIO) and frees it. */
static int take_error(struct kv *kv, char *lerr, const char *what, struct vg_err *err)
{
    int rc = vg_err_set(err, VG_EIO, "leveldb %s %s: %s", what, kv ? kv->path : "?",
                        lerr ? lerr : "unknown error");
    leveldb_free(lerr);
    return rc;
}

/* The end of every write: the error, or counts a write made without sync for the
 * kv-sync thread (after LevelDB returned; see the top of this file). */
static int wrote(struct kv *kv, bool sync, char *lerr, const char *what, struct vg_err *err)
{
    if (lerr)
        return take_error(kv, lerr, what, err);
    if (!sync)
        atomic_fetch_add_explicit(&kv->unsynced, 1, memory_order_release);
    return 0;
}

static void destroy_options(struct kv *kv)
{
    if (kv->ropts)
        leveldb_readoptions_destroy(kv->ropts);
    if (kv->ropts_nofill)
        leveldb_readoptions_destroy(kv->ropts_nofill);
    if (kv->wsync)
        leveldb_writeoptions_destroy(kv->wsync);
    if (kv->wnosync)
        leveldb_writeoptions_destroy(kv->wnosync);
    if (kv->opts)
        leveldb_options_destroy(kv->opts);
    if (kv->bloom)
        leveldb_filterpolicy_destroy(kv->bloom);
    if (kv->cache)
        leveldb_cache_destroy(kv->cache);
}

/* Syncs when something was written without sync since the last good sync. Called by the
 * kv-sync thread and by kv_close, never both at once (kv_close joins the thread first). */
static void sync_if_dirty(struct kv *kv)
{
    uint64_t upto = atomic_load(&kv->unsynced);
    if (upto == kv->synced_upto)
        return;
    struct vg_err err;
    vg_err_clear(&err);
    if (kv_sync(kv, &err) == 0)
        kv->synced_upto = upto;
}

static void sync_round(void *arg, const atomic_bool *stop)
{
    (void)stop; /* one sync is short; kv_close syncs once more after the stop anyway */
    sync_if_dirty(arg);
}

static int start_syncer(struct kv *kv, int64_t interval_ms, struct vg_err *err)
{
    struct vg_ticker_opts o = { .name = "kv-sync", .interval_ms = interval_ms,
                                .first_ms = interval_ms };
    if (vg_ticker_start(&kv->syncer, &o, sync_round, kv, err) < 0)
        return vg_err_prefix(err, "kv_open %s", kv->path);
    return 0;
}

static void stop_syncer(struct kv *kv)
{
    if (vg_ticker_stop(&kv->syncer))
        sync_if_dirty(kv); /* the final sync: leveldb_close closes the log without one */
}

struct kv *kv_open(const char *path, const struct kv_opts *o, struct vg_err *err)
{
    struct kv_opts def = { 0 };
    if (!o)
        o = &def;
    if (!path || !*path) {
        vg_err_set(err, VG_EINVAL, "kv_open: empty database path");
        return NULL;
    }
    struct kv *kv = vg_calloc(1, sizeof *kv);
    if (!kv || !(kv->path = vg_strdup(path))) {
        vg_free(kv);
        vg_err_set(err, VG_ENOMEM, "kv_open %s: out of memory", path);
        return NULL;
    }
    kv->opts = leveldb_options_create();
    leveldb_options_set_create_if_missing(kv->opts, 1);
    kv->cache = leveldb_cache_create_lru(o->cache_bytes ? o->cache_bytes : KV_DEFAULT_CACHE);
    leveldb_options_set_cache(kv->opts, kv->cache);
    int bloom = o->bloom_bits_per_key ? o->bloom_bits_per_key : KV_DEFAULT_BLOOM_BITS;
    if (bloom > 0) {
        kv->bloom = leveldb_filterpolicy_create_bloom(bloom);
        leveldb_options_set_filter_policy(kv->opts, kv->bloom);
    }
    leveldb_options_set_compression(kv->opts, o->no_compression ? leveldb_no_compression
                                                                : leveldb_snappy_compression);
    leveldb_options_set_write_buffer_size(
        kv->opts, o->write_buffer_bytes ? o->write_buffer_bytes : KV_DEFAULT_WRITE_BUFFER);
    if (o->max_open_files > 0)
        leveldb_options_set_max_open_files(kv->opts, o->max_open_files);
    if (o->block_bytes)
        leveldb_options_set_block_size(kv->opts, o->block_bytes);

    kv->ropts = leveldb_readoptions_create();
    kv->ropts_nofill = leveldb_readoptions_create();
    leveldb_readoptions_set_fill_cache(kv->ropts_nofill, 0);
    kv->wsync = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(kv->wsync, 1);
    kv->wnosync = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(kv->wnosync, 0);

    char *lerr = NULL;
    kv->db = leveldb_open(kv->opts, path, &lerr);
    if (lerr || !kv->db) {
        take_error(kv, lerr, "open", err);
        if (kv->db)
            leveldb_close(kv->db);
        destroy_options(kv);
        vg_free(kv->path);
        vg_free(kv);
        return NULL;
    }
    if (o->sync_interval_ms > 0 && start_syncer(kv, o->sync_interval_ms, err) < 0) {
        kv_close(kv);
        return NULL;
    }
    return kv;
}

void kv_close(struct kv *kv)
{
    if (!kv)
        return;
    stop_syncer(kv);
    leveldb_close(kv->db);
    destroy_options(kv);
    vg_free(kv->path);
    vg_free(kv);
}

const char *kv_path(const struct kv *kv)
{
    return kv->path;
}

int kv_get(struct kv *kv, const struct kv_snapshot *snap, const void *key, size_t klen,
           struct vg_buf *val, struct vg_err *err)
{
    leveldb_readoptions_t *ro = kv->ropts;
    if (snap) {
        ro = leveldb_readoptions_create();
        leveldb_readoptions_set_snapshot(ro, snap->snap);
    }
    char *lerr = NULL;
    size_t vlen = 0;
    char *v = leveldb_get(kv->db, ro, key, klen, &vlen, &lerr);
    if (snap)
        leveldb_readoptions_destroy(ro);
    if (lerr) {
        leveldb_free(v);
        return take_error(kv, lerr, "get", err);
    }
    if (!v)
        return vg_err_set(err, VG_ENOTFOUND, "key not found");
    vg_buf_reset(val);
    vg_buf_append(val, v, vlen);
    leveldb_free(v);
    if (!vg_buf_cstr(val))
        return vg_err_set(err, VG_ENOMEM, "kv_get %s: out of memory for a %zu-byte value",
                          kv->path, vlen);
    return 0;
}

int kv_put(struct kv *kv, const void *key, size_t klen, const void *val, size_t vlen,
           bool sync, struct vg_err *err)
{
    char *lerr = NULL;
    leveldb_put(kv->db, sync ? kv->wsync : kv->wnosync, key, klen, val, vlen, &lerr);
    return wrote(kv, sync, lerr, "put", err);
}

int kv_delete(struct kv *kv, const void *key, size_t klen, bool sync, struct vg_err *err)
{
    char *lerr = NULL;
    leveldb_delete(kv->db, sync ? kv->wsync : kv->wnosync, key, klen, &lerr);
    return wrote(kv, sync, lerr, "delete", err);
}

struct kv_batch *kv_batch_new(void)
{
    struct kv_batch *b = vg_calloc(1, sizeof *b);
    if (b)
        b->wb = leveldb_writebatch_create();
    return b;
}

void kv_batch_free(struct kv_batch *b)
{
    if (!b)
        return;
    leveldb_writebatch_destroy(b->wb);
    vg_free(b);
}

void kv_batch_put(struct kv_batch *b, const void *key, size_t klen, const void *val,
                  size_t vlen)
{
    leveldb_writebatch_put(b->wb, key, klen, val, vlen);
    b->count++;
    b->bytes += klen + vlen;
}

void kv_batch_delete(struct kv_batch *b, const void *key, size_t klen)
{
    leveldb_writebatch_delete(b->wb, key, klen);
    b->count++;
    b->bytes += klen;
}

void kv_batch_clear(struct kv_batch *b)
{
    /* LevelDB's clear keeps the batch's buffer at its largest size so far; a batch
     * reused from a pool would hold on to the one large write it ever made (a request
     * creating thousands of series) for the life of the process. Past the bound the
     * buffer is released by replacing the batch. */
    if (b->bytes > KV_BATCH_KEEP_BYTES) {
        leveldb_writebatch_t *fresh = leveldb_writebatch_create();
        if (fresh) {
            leveldb_writebatch_destroy(b->wb);
            b->wb = fresh;
        }
    }
    leveldb_writebatch_clear(b->wb);
    b->count = 0;
    b->bytes = 0;
}

size_t kv_batch_count(const struct kv_batch *b)
{
    return b->count;
}

size_t kv_batch_bytes(const struct kv_batch *b)
{
    return b->bytes;
}

int kv_write(struct kv *kv, struct kv_batch *b, bool sync, struct vg_err *err)
{
    char *lerr = NULL;
    leveldb_write(kv->db, sync ? kv->wsync : kv->wnosync, b->wb, &lerr);
    return wrote(kv, sync, lerr, "write", err);
}

int kv_sync(struct kv *kv, struct vg_err *err)
{
    /* A batch of its own per call: LevelDB stamps the sequence number into the leader's
     * batch, so concurrent callers must not share one. */
    leveldb_writebatch_t *empty = leveldb_writebatch_create();
    char *lerr = NULL;
    leveldb_write(kv->db, kv->wsync, empty, &lerr);
    leveldb_writebatch_destroy(empty);
    if (!lerr) {
        atomic_fetch_add(&kv->syncs, 1);
        return 0;
    }
    atomic_fetch_add(&kv->sync_failures, 1);
    struct vg_err mine;
    vg_err_clear(&mine);
    int rc = take_error(kv, lerr, "sync", &mine);
    /* Once a minute at most: LevelDB refuses every later write after a failed fsync, and
     * each round of the kv-sync thread would fail again the same way. */
    vg_complain(&kv->sync_complaint, 60000, VG_LOG_ERROR, "kv", "log sync failed", mine.msg);
    if (err)
        *err = mine;
    return rc;
}

void kv_sync_stats(const struct kv *kv, struct kv_sync_stats *out)
{
    out->syncs = atomic_load(&kv->syncs);
    out->failures = atomic_load(&kv->sync_failures);
}

struct kv_iter *kv_iter_new(struct kv *kv, const struct kv_snapshot *snap, bool fill_cache)
{
    struct kv_iter *it = vg_malloc(sizeof *it);
    if (!it)
        return NULL;
    if (!snap) {
        it->it = leveldb_create_iterator(kv->db, fill_cache ? kv->ropts : kv->ropts_nofill);
        return it;
    }
    leveldb_readoptions_t *ro = leveldb_readoptions_create();
    leveldb_readoptions_set_snapshot(ro, snap->snap);
    leveldb_readoptions_set_fill_cache(ro, fill_cache);
    it->it = leveldb_create_iterator(kv->db, ro);
    leveldb_readoptions_destroy(ro); /* LevelDB copies the options into the iterator */
    return it;
}

void kv_iter_free(struct kv_iter *it)
{
    if (!it)
        return;
    leveldb_iter_destroy(it->it);
    vg_free(it);
}

void kv_iter_seek(struct kv_iter *it, const void *key, size_t klen)
{
    leveldb_iter_seek(it->it, key, klen);
}

void kv_iter_seek_first(struct kv_iter *it)
{
    leveldb_iter_seek_to_first(it->it);
}

void kv_iter_seek_last(struct kv_iter *it)
{
    leveldb_iter_seek_to_last(it->it);
}

bool kv_iter_valid(const struct kv_iter *it)
{
    return leveldb_iter_valid(it->it) != 0;
}

void kv_iter_next(struct kv_iter *it)
{
    leveldb_iter_next(it->it);
}

void kv_iter_prev(struct kv_iter *it)
{
    leveldb_iter_prev(it->it);
}

const char *kv_iter_key(const struct kv_iter *it, size_t *len)
{
    return leveldb_iter_key(it->it, len);
}

const char *kv_iter_value(const struct kv_iter *it, size_t *len)
{
    return leveldb_iter_value(it->it, len);
}

int kv_iter_error(const struct kv_iter *it, struct vg_err *err)
{
    char *lerr = NULL;
    leveldb_iter_get_error(it->it, &lerr);
    if (!lerr)
        return 0;
    int rc = vg_err_set(err, VG_EIO, "leveldb iterator: %s", lerr);
    leveldb_free(lerr);
    return rc;
}

bool kv_iter_has_prefix(const struct kv_iter *it, const void *prefix, size_t plen)
{
    if (!leveldb_iter_valid(it->it))
        return false;
    size_t klen;
    const char *k = leveldb_iter_key(it->it, &klen);
    return klen >= plen && memcmp(k, prefix, plen) == 0;
}

struct kv_snapshot *kv_snapshot_new(struct kv *kv)
{
    struct kv_snapshot *s = vg_malloc(sizeof *s);
    if (s)
        s->snap = leveldb_create_snapshot(kv->db);
    return s;
}

void kv_snapshot_free(struct kv *kv, struct kv_snapshot *s)
{
    if (!s)
        return;
    leveldb_release_snapshot(kv->db, s->snap);
    vg_free(s);
}

#define DELETE_BATCH_KEYS 4096

int kv_delete_prefix(struct kv *kv, const void *prefix, size_t plen, struct vg_err *err)
{
    struct kv_iter *it = kv_iter_new(kv, NULL, false);
    struct kv_batch *kb = kv_batch_new();
    int rc = it && kb ? 0 : vg_err_set(err, VG_ENOMEM, "kv: out of memory deleting a range");
    for (kv_iter_seek(it, prefix, plen); !rc && kv_iter_has_prefix(it, prefix, plen);
         kv_iter_next(it)) {
        size_t klen;
        const char *k = kv_iter_key(it, &klen);
        kv_batch_delete(kb, k, klen);
        if (kv_batch_count(kb) >= DELETE_BATCH_KEYS) {
            rc = kv_write(kv, kb, false, err);
            kv_batch_clear(kb);
        }
    }
    if (!rc && it)
        rc = kv_iter_error(it, err);
    if (!rc && kv_batch_count(kb))
        rc = kv_write(kv, kb, false, err);
    kv_iter_free(it);
    kv_batch_free(kb);
    return rc;
}

void kv_compact_range(struct kv *kv, const void *start, size_t slen, const void *limit,
                      size_t llen)
{
    leveldb_compact_range(kv->db, start, start ? slen : 0, limit, limit ? llen : 0);
}

uint64_t kv_approximate_size(struct kv *kv, const void *start, size_t slen,
                             const void *limit, size_t llen)
{
    const char *starts[1] = { start };
    const char *limits[1] = { limit };
    size_t slens[1] = { slen }, llens[1] = { llen };
    uint64_t sizes[1] = { 0 };
    leveldb_approximate_sizes(kv->db, 1, starts, slens, limits, llens, sizes);
    return sizes[0];
}
