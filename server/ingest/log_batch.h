/* log_batch: log records gathered for one logstore push, shared by the receivers that
 * build their own batches (syslog, file tailing).
 *
 * log_batch_add copies a record (sorted labels, metadata, line) into the batch's arena,
 * so the caller's buffers may be reused at once. log_batch_streams groups the records
 * into logstore_stream_in by label set for ingest_store_logs / logstore_push: records
 * are sorted on (hash of the labels, the labels, arrival order), so equal label sets are
 * adjacent and each stream keeps its records in arrival order (the store sorts by time
 * and keeps arrival order among equal times, so lines stamped alike stay in order).
 * log_batch_clear empties it for reuse; the arena's first block and the arrays are
 * kept, so a steady flow allocates little.
 *
 * bytes counts what the store counts per entry (lentry_bytes: the line plus metadata
 * names and values), for "flush when this much waits" thresholds.
 *
 * Thread safety: none; a batch belongs to one thread at a time (callers lock). */
#ifndef LOG_BATCH_H
#define LOG_BATCH_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_str.h"
#include "../../storage/logstore/logstore.h"
#include "../../storage/tsdb/labels.h"

#include <stddef.h>
#include <stdint.h>

struct log_batch_item {
    int64_t t;
    uint64_t hash;      /* labels_hash of the labels */
    uint32_t seq;       /* arrival order in the batch */
    uint32_t nlabels, nmeta;
    struct label *labels, *meta; /* in the batch's arena */
    struct vg_str line;
};

struct log_batch {
    struct vg_arena *arena;
    struct log_batch_item *items;
    size_t n, cap;
    size_t bytes;
    /* scratch of log_batch_streams, grown to cap */
    struct log_batch_item **idx;
    struct lentry *es;
    struct logstore_stream_in *st;
    size_t scratch_cap;
};

/* An empty batch whose arena grows in blocks of arena_block bytes (0: the arena's
 * default). 0, or VG_ENOMEM (b is then safe to pass to log_batch_free). */
int log_batch_init(struct log_batch *b, size_t arena_block);
/* Frees everything b holds; b may be zeroed memory or a failed init. */
void log_batch_free(struct log_batch *b);

/* Copies one record into b: t in ns, labels sorted (labels_sort) and nl >= 1, meta in
 * any order. 0, or VG_ENOMEM with b holding what it held before (the arena may have
 * grown). */
int log_batch_add(struct log_batch *b, int64_t t, const struct label *labels, size_t nl,
                  const struct label *meta, size_t nm, struct vg_str line);

/* Groups b's records into streams: *streams (nstreams of them, each with its entries)
 * points into b and stays valid until the next log_batch_add, _clear or _free. 0 (with
 * *nstreams 0 for an empty batch), or VG_ENOMEM. */
int log_batch_streams(struct log_batch *b, struct logstore_stream_in **streams,
                      size_t *nstreams);

/* Forgets every record, keeping the memory for the next batch. */
void log_batch_clear(struct log_batch *b);

#endif
