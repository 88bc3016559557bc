/* spanstore_int: the state shared by spanstore.c (open, write, retention, stats) and
 * spanstore_query.c (trace by id, search, listings). Not part of the public API. */
#ifndef SPANSTORE_INT_H
#define SPANSTORE_INT_H

#include "../base/vg_ticker.h"
#include "../kv.h"
#include "span_head.h"
#include "span_index.h"
#include "spanstore.h"

#include <pthread.h>
#include <stdatomic.h>

#define SPANSTORE_STRIPES 256
#define SPANSTORE_COUNT_SLOTS 16

struct spanstore_cache; /* registry entries already written (spanstore.c) */
struct write_ctx;       /* the scratch of one write (spanstore.c) */
struct spanstore_flush_scratch; /* the buffers of the index flush (spanstore_flush.c) */

struct spanstore {
    struct kv *kv;
    struct kv *chunks;            /* <dir>/chunks: span chunks keyed by chunk id */
    _Atomic uint64_t next_chunk;  /* the next chunk id (ids only grow) */
    struct spanstore_opts opts;
    char **rules; /* indexed attribute rules, owned copies; "x*" is a prefix rule */
    size_t *rule_len; /* bytes of each rule before a trailing '*' */
    bool *rule_prefix; /* the rule ends in '*' */
    size_t nrules;

    /* Stripe s guards read-modify-write of the summaries of traces hashing to s. */
    pthread_mutex_t stripes[SPANSTORE_STRIPES];
    /* Counters, persisted as 'C' records in the same batch as the summaries, so the
     * totals survive a crash exactly. A write (or a retention step) updates one record,
     * slot = its id modulo SPANSTORE_COUNT_SLOTS, under cnt_mu[slot]: one key per write
     * instead of one per stripe touched. Stores of earlier versions hold up to 256
     * records: all are read and summed, only the first slots are rewritten. Values add
     * up modulo 2^64 (retention subtracts from whichever slot it takes), so only the
     * sum over all records is meaningful. */
    pthread_mutex_t cnt_mu[SPANSTORE_COUNT_SLOTS];
    struct span_index_counts counts[SPANSTORE_STRIPES];

    pthread_mutex_t reg_mu; /* guards cache */
    struct spanstore_cache *cache;
    /* Hashes of registry entries (and full value families) known to be stored, checked
     * before any key is built; direct-mapped, lock-free, set only after a write
     * succeeded, cleared when retention drops a bucket (spanstore.c). */
    _Atomic uint64_t *hints;

    _Atomic uint64_t keys_read;

    pthread_mutex_t pool_mu; /* guards pool and npool */
    struct write_ctx *pool;  /* idle write scratch, reused by the next write */
    size_t npool;

    /* The index: postings not yet written (head), and the segments of the index
     * database <dir>/index that hold the rest (span_index.h). */
    struct kv *ix;
    struct span_head *head;
    /* Writes between taking their first chunk id and adding their postings to the head
     * (guarded by the head's lock): a flush's watermark stays below each of them. */
    uint64_t *inflight;
    size_t ninflight, capinflight;
    uint64_t head_floor; /* postings of chunks from here on were lost (out of memory):
                          * no watermark passes it, so a restart replays them */
    pthread_mutex_t flush_mu; /* one flush at a time */
    pthread_mutex_t dir_mu;   /* guards segs */
    struct span_index_seg *segs; /* the segments' directory records, oldest first */
    size_t nsegs, capsegs;
    _Atomic bool flush_wanted; /* the head grew past its limit: a flush is asked for */
    uint64_t frozen_watermark; /* of the head's frozen generation (flush_mu) */
    struct spanstore_flush_scratch *flush_scratch; /* spanstore_flush.c's buffers, kept
                                                     * between flushes (flush_mu) */

    /* With maint_interval_ms > 0: the index flush ("span-flush", also kicked by a writer
     * when the head is full) and retention ("span-retain"). */
    struct vg_ticker flusher, retainer;
    bool has_threads;
    /* trace ids that may have a summary (trace_filter.h), filled by writes and by the
     * scan of stored summaries that open starts ("span-tfilter") */
    struct trace_filter *tfilter;
    pthread_t tscan;
    bool tscan_running;
    atomic_bool tscan_stop;
};

/* Reads the summary of a trace: 0 with *found set accordingly, or an error. The
 * summary's strings and chunk ids borrow from val; key is scratch. */
int spanstore_read_summary(struct spanstore *ss, const uint8_t *tid, struct vg_buf *key,
                           struct vg_buf *val, struct span_index_summary *sum, bool *found,
                           struct vg_err *err);

/* Called with each stored span of a trace: its version-1 encoding (enc, elen), valid
 * during the call only. Returns 0 to go on, 1 to stop, or a negative vg_code. */
typedef int (*spanstore_span_fn)(void *arg, const void *enc, size_t elen, struct vg_err *err);

/* Walks every stored span of the trace whose summary is sum: the values under its legacy
 * 'S' keys, then its chunks in write order (a chunk id that is missing, as after a crash
 * during retention, is skipped). Adds the keys read to *keys. Returns 0 (also when fn
 * stopped), fn's error, VG_EINVAL for a malformed chunk, VG_EIO or VG_ENOMEM. */
int spanstore_trace_values(struct spanstore *ss, const uint8_t *tid,
                           const struct span_index_summary *sum, spanstore_span_fn fn,
                           void *arg, uint64_t *keys, struct vg_err *err);

/* Whether key matches one of the indexed-attribute rules. */
bool spanstore_is_indexed(const struct spanstore *ss, struct vg_str key);
unsigned spanstore_stripe(const uint8_t *trace_id);

/* The 8-byte key of chunk id in the chunk database (big-endian). */
void spanstore_chunk_key(uint8_t *k, uint64_t id);
/* Puts counter record slot, counts[slot] plus (or minus) d, into kb: the new value in
 * *c, to store in counts[slot] once kb is written. Call with cnt_mu[slot] held. */
void spanstore_put_counts(struct spanstore *ss, struct kv_batch *kb, unsigned slot,
                          const struct span_index_counts *d, bool subtract,
                          struct span_index_counts *c, struct vg_buf *key, struct vg_buf *val);
/* Forgets which registry entries are stored (after retention dropped an hour). */
void spanstore_forget_registry(struct spanstore *ss);

/* ---- spanstore_flush.c ---- */
/* Writes the head's postings out as a new segment. 0 or a vg_code. */
int spanstore_flush_index(struct spanstore *ss, struct vg_err *err);
/* Frees the flush's buffers kept between flushes (at close, after the last flush). */
void spanstore_flush_scratch_free(struct spanstore *ss);
/* The smallest chunk id whose postings may not be in the head yet (head locked). */
uint64_t head_watermark(struct spanstore *ss);
/* Loads the segment directory at open (deleting lists of unfinished flushes); *any says
 * whether a record exists, *watermark is the newest record's. 0 or a vg_code. */
int spanstore_load_segments(struct spanstore *ss, uint64_t *watermark, bool *any,
                            struct vg_err *err);
/* The postings of a term packed in segment seg (term key tkey, span_index_term_key's
 * bytes), read with it: *postings (n postings, SPAN_INDEX_SUFFIX_LEN bytes each) point
 * into the iterator's value, valid until it moves; *n = 0 when the term has none there.
 * scratch holds the key sought. 0, VG_EINVAL for a malformed block, VG_ENOMEM. */
int spanstore_seg_packed(struct kv_iter *it, uint64_t seg, const char *tkey, size_t tlen,
                         struct vg_buf *scratch, const char **postings, size_t *n);
/* Deletes every key of one segment from the index database. 0 or a vg_code. */
int spanstore_delete_segment(struct spanstore *ss, uint64_t seg, struct vg_err *err);

#endif
