/* kv: see kv.h. The only file that includes <leveldb/c.h>.
 *
 * Invariants: every char* LevelDB returns (values from leveldb_get, error strings from
 * errptr, property values) is released with leveldb_free in the function that received
 * it; callers only ever see vg_* memory or pointers into an iterator's current entry.
 * Options objects (cache, bloom filter, read/write options) live as long as the kv. */
#include "kv.h"

#include "base/vg_alloc.h"

#include <leveldb/c.h>
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
    return kv;
}

void kv_close(struct kv *kv)
{
    if (!kv)
        return;
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
    return lerr ? take_error(kv, lerr, "put", err) : 0;
}

int kv_delete(struct kv *kv, const void *key, size_t klen, bool sync, struct vg_err *err)
{
    char *lerr = NULL;
    leveldb_delete(kv->db, sync ? kv->wsync : kv->wnosync, key, klen, &lerr);
    return lerr ? take_error(kv, lerr, "delete", err) : 0;
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
    return lerr ? take_error(kv, lerr, "write", err) : 0;
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
