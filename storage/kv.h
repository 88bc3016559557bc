/* kv: the one wrapper around LevelDB's C API (<leveldb/c.h> is included nowhere else).
 *
 * Keys and values are byte strings with explicit lengths. LevelDB hands out malloc'd
 * values and error strings; this module copies what callers need into vg_* memory and
 * frees LevelDB's strings itself, so nothing outside kv.c ever calls leveldb_free.
 * Every LevelDB failure becomes VG_EIO with a message naming the database path and
 * LevelDB's own reason ("IO error: ...", "Corruption: ...").
 *
 * Durability has three levels, chosen per write and per database:
 *   - kv_write with sync: returns once the log is fsync'ed (survives power loss);
 *   - without sync: returns once the log file has the write (survives kill -9, the OS
 *     writes it to disk later);
 *   - without sync, on a kv opened with sync_interval_ms > 0: as above, and a background
 *     thread ("kv-sync") calls kv_sync every sync_interval_ms when anything was written
 *     without sync since its last round, and once more in kv_close. A power loss then
 *     loses at most about the last interval of acknowledged writes (see kv_sync).
 *
 * Thread safety: a struct kv may be used from any number of threads at once (LevelDB
 * serialises writers and group-commits concurrent sync writes). A kv_batch and a
 * kv_iter belong to one thread at a time. Snapshots may be shared. */
#ifndef KV_H
#define KV_H

#include "base/vg_buf.h"
#include "base/vg_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kv;
struct kv_batch;
struct kv_iter;
struct kv_snapshot;

struct kv_opts {
    size_t cache_bytes;        /* LRU block cache; 0 = 32 MiB */
    size_t write_buffer_bytes; /* memtable size before a flush; 0 = 8 MiB */
    int bloom_bits_per_key;    /* bloom filter on tables; 0 = 10, negative = none */
    bool no_compression;       /* default is snappy */
    int max_open_files;        /* 0 = LevelDB's default (1000) */
    size_t block_bytes;        /* table block size before compression; 0 = 4 KiB */
    int64_t sync_interval_ms;  /* > 0: the kv-sync thread syncs the log this often (and
                                * kv_close syncs once more); 0 = no thread */
};

/* Periodic sync figures of one kv since kv_open (kv_sync calls from outside count too). */
struct kv_sync_stats {
    uint64_t syncs;    /* kv_sync calls that succeeded */
    uint64_t failures; /* kv_sync calls that failed (each also logged, with back-off) */
};

/* Opens (creating if missing) the database in directory path. NULL with err filled:
 * VG_EIO naming path and LevelDB's reason, VG_ENOMEM, VG_EINTERNAL when the kv-sync
 * thread cannot start. opts may be NULL (defaults). */
struct kv *kv_open(const char *path, const struct kv_opts *opts, struct vg_err *err);
/* Stops the kv-sync thread (if any) and syncs once more when something is unsynced,
 * then closes and frees; accepts NULL. No batch, iterator or snapshot may outlive it,
 * and no other thread may be writing. */
void kv_close(struct kv *kv);
/* The path given to kv_open (owned by kv). */
const char *kv_path(const struct kv *kv);

/* Reads one key (at snap, or the latest state when snap is NULL). Returns 0 with the
 * value in val (reset first, NUL-terminated), VG_ENOTFOUND, VG_EIO or VG_ENOMEM. */
int kv_get(struct kv *kv, const struct kv_snapshot *snap, const void *key, size_t klen,
           struct vg_buf *val, struct vg_err *err);
/* Single-key writes; sync as for kv_write. 0 or VG_EIO. */
int kv_put(struct kv *kv, const void *key, size_t klen, const void *val, size_t vlen,
           bool sync, struct vg_err *err);
int kv_delete(struct kv *kv, const void *key, size_t klen, bool sync, struct vg_err *err);

/* Write batches: applied atomically by kv_write (all or nothing, also across a crash).
 * kv_batch_new returns NULL when out of memory; kv_batch_free accepts NULL. */
struct kv_batch *kv_batch_new(void);
void kv_batch_free(struct kv_batch *b);
void kv_batch_put(struct kv_batch *b, const void *key, size_t klen, const void *val,
                  size_t vlen);
void kv_batch_delete(struct kv_batch *b, const void *key, size_t klen);
/* Empties b for reuse. A batch that held more than 64 KiB of keys and values also
 * gives its buffer back, so pooled batches do not keep their largest write resident. */
void kv_batch_clear(struct kv_batch *b);
size_t kv_batch_count(const struct kv_batch *b); /* puts + deletes since the last clear */
size_t kv_batch_bytes(const struct kv_batch *b); /* key + value bytes since the last clear */
/* Applies b. With sync, returns only after the log is fsync'ed (durable across a power
 * loss); without, the write survives a process crash but not an OS crash. The batch is
 * left unchanged (clear it to reuse). 0 or VG_EIO. */
int kv_write(struct kv *kv, struct kv_batch *b, bool sync, struct vg_err *err);
/* Makes the writes that returned before this call durable across a power loss: writes an
 * empty batch with sync, which fsyncs LevelDB's current log file, where those writes
 * are. A write that LevelDB had already moved past (the memtable filled up and a new log
 * was started) sits in the previous log, which LevelDB closes without fsync; it becomes
 * durable when that memtable's table file is written and synced, which LevelDB starts
 * at once in the background. Blocks writers for one fsync, like any sync write.
 * Thread-safe. 0 or VG_EIO (a failed fsync also makes LevelDB refuse later writes:
 * the state of the log is unknown). */
int kv_sync(struct kv *kv, struct vg_err *err);
void kv_sync_stats(const struct kv *kv, struct kv_sync_stats *out);

/* Iterators see a consistent view: snap's, or the state when created if snap is NULL.
 * fill_cache false keeps a large scan from evicting the block cache. NULL when out of
 * memory. Key and value pointers stay valid until the iterator moves. */
struct kv_iter *kv_iter_new(struct kv *kv, const struct kv_snapshot *snap, bool fill_cache);
void kv_iter_free(struct kv_iter *it); /* accepts NULL */
void kv_iter_seek(struct kv_iter *it, const void *key, size_t klen); /* first key >= key */
void kv_iter_seek_first(struct kv_iter *it);
void kv_iter_seek_last(struct kv_iter *it);
bool kv_iter_valid(const struct kv_iter *it);
void kv_iter_next(struct kv_iter *it);
void kv_iter_prev(struct kv_iter *it);
const char *kv_iter_key(const struct kv_iter *it, size_t *len);
const char *kv_iter_value(const struct kv_iter *it, size_t *len);
/* Whether the iterator stopped because of an error: 0, or VG_EIO with the reason. */
int kv_iter_error(const struct kv_iter *it, struct vg_err *err);
/* True when the current key starts with prefix (false when not valid). */
bool kv_iter_has_prefix(const struct kv_iter *it, const void *prefix, size_t plen);

/* Snapshots: a frozen view for reads; release with kv_snapshot_free before kv_close. */
struct kv_snapshot *kv_snapshot_new(struct kv *kv);
void kv_snapshot_free(struct kv *kv, struct kv_snapshot *s); /* accepts NULL */

/* Deletes every key that starts with prefix, in unsynced batches of a few thousand keys
 * (a whole hour or segment of an index, say). 0, VG_EIO or VG_ENOMEM; on an error the
 * keys of the batches written before are gone. */
int kv_delete_prefix(struct kv *kv, const void *prefix, size_t plen, struct vg_err *err);

/* Compacts the key range [start, limit] (NULL start or limit = open end), dropping
 * deleted and overwritten entries from disk. Blocks until done. */
void kv_compact_range(struct kv *kv, const void *start, size_t slen, const void *limit,
                      size_t llen);
/* Approximate on-disk bytes of [start, limit) (both required; memtable data not
 * counted). */
uint64_t kv_approximate_size(struct kv *kv, const void *start, size_t slen,
                             const void *limit, size_t llen);

#endif
