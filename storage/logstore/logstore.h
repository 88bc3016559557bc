/* logstore: Vigil's log store on its own LevelDB database (opened through kv.h).
 *
 * A stream is a label set (labels.h) with a stable id; an inverted index maps each
 * name=value to stream ids (the TSDB's postings layout, index.h), so a selector is an
 * intersection. Each entry is a nanosecond timestamp, the line bytes and structured
 * metadata pairs (trace_id, ...) kept with the line. A stream's entries go into
 * time-ordered, zstd-compressed chunks (lchunk.h) of at most chunk_target_bytes
 * uncompressed and chunk_max_span_ns of time; each chunk carries a token filter
 * (lfilter.h) so searches skip chunks that cannot match. The open chunk of each stream
 * (its head) is in memory and made durable by a write-ahead record written in the same
 * synchronous LevelDB batch as the push. Key layout: top of logstore.c.
 *
 * Durability: logstore_push returns only after every accepted entry is in LevelDB's
 * log (with sync unless no_sync), so a kill -9 after the return loses nothing; a crash before leaves no
 * part of the push visible. The head is rebuilt from the records at open.
 *
 * Out-of-order policy (Loki's "unordered writes"): an entry is accepted when its time
 * is no older than the stream's newest accepted entry minus ooo_window_ns, in any
 * order; reads return entries in time order (entries with equal times in the order
 * they were pushed). Older entries are rejected and counted as "too_old", as are
 * entries older than the retention period. Exact duplicates are stored as pushed.
 *
 * Thread safety: every function may be called from any thread concurrently. Pushes
 * are serialised with one another (one synchronous write each; put many lines in a
 * push), queries run alongside pushes and each other. Results are owned by the caller
 * and freed with the matching *_free. With maint_interval_ms > 0 the store runs one
 * background thread ("logstore-maint") that flushes old heads, applies retention and
 * drops write-ahead records no longer needed; logstore_close stops it. */
#ifndef LOGSTORE_H
#define LOGSTORE_H

#include "../base/vg_err.h"
#include "../base/vg_str.h"
#include "../tsdb/labels.h"
#include "../tsdb/matcher.h"
#include "lentry.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct logstore;

struct logstore_opts {
    const char *dir;             /* LevelDB directory (created if missing) */
    int64_t retention_ns;        /* maintenance drops chunks older than this; 0 = forever */
    int64_t ooo_window_ns;       /* out-of-order window; <= chunk_max_span_ns */
    int64_t chunk_max_span_ns;   /* newest - oldest time of a chunk at most */
    size_t chunk_target_bytes;   /* cut a head at this many encoded bytes */
    int64_t max_chunk_age_ms;    /* maintenance flushes heads older than this (wall clock) */
    size_t max_line_bytes;       /* longer lines are rejected ("line_too_long") */
    size_t max_meta_bytes;       /* metadata names + values per entry ("metadata_too_large") */
    size_t max_labels;           /* labels per stream */
    size_t max_label_name_bytes, max_label_value_bytes;
    size_t max_streams;          /* streams in the store ("stream_limit") */
    int zstd_level;
    size_t cache_bytes;          /* LevelDB block cache; 0 = kv's default */
    bool no_sync;                /* acknowledge pushes once LevelDB's log has them (they
                                  * survive kill -9) without waiting for fsync */
    int64_t sync_interval_ms;    /* > 0 with no_sync: fsync the log this often in the
                                  * background (kv.h's kv-sync thread); 0 = never */
    int64_t maint_interval_ms;   /* background maintenance period; 0 = no thread */
    unsigned query_workers;      /* threads per query that decompress chunks ahead of the
                                    merge (started at its first stored chunk, stopped by
                                    logstore_iter_free); 0 = the query's thread alone */
};

/* Defaults: retention off, ooo window 1 h, span 2 h, 256 KiB chunks, age 30 min,
 * lines 256 KiB, metadata 64 KiB, 15 labels of 1024 / 2048 bytes, 10000 streams,
 * zstd level 3, maintenance every 60 s, query workers: online CPUs - 1 in [1, 4]. */
void logstore_opts_default(struct logstore_opts *o);

/* NULL with err filled: VG_EINVAL for inconsistent options, VG_EIO naming the path and
 * LevelDB's reason (also for a database written by a newer format), VG_ENOMEM. */
struct logstore *logstore_open(const struct logstore_opts *opts, struct vg_err *err);
/* Stops maintenance, writes every head as a chunk, closes LevelDB. Accepts NULL. */
void logstore_close(struct logstore *ls);
/* Background fsyncs of the store's LevelDB log (storage.fsync periodic; kv.h).
 * Thread-safe. */
struct kv_sync_stats;
void logstore_sync_stats(struct logstore *ls, struct kv_sync_stats *out);

/* ---- writing ---- */

struct logstore_stream_in {
    const struct label *labels;   /* sorted by name (labels_sort), names unique */
    size_t nlabels;
    const struct lentry *entries; /* any order */
    size_t nentries;
};

enum logstore_reject {
    LOGSTORE_REJECT_TOO_OLD,          /* behind the ooo window, or past retention */
    LOGSTORE_REJECT_LINE_TOO_LONG,
    LOGSTORE_REJECT_META_TOO_LARGE,   /* too many metadata pairs or bytes */
    LOGSTORE_REJECT_LABELS,           /* invalid label set, or over a label limit */
    LOGSTORE_REJECT_STREAM_LIMIT,     /* would create more than max_streams */
    LOGSTORE_REJECT_COUNT
};
const char *logstore_reject_name(enum logstore_reject r); /* "too_old", ... */

struct logstore_push_result {
    uint64_t accepted;                 /* entries stored */
    uint64_t bytes;                    /* their lentry_bytes */
    uint64_t streams_created;
    uint64_t rejected[LOGSTORE_REJECT_COUNT]; /* entries refused, by reason */
};

/* Stores what it accepts and returns once that is durable. Returns 0 when everything
 * was accepted. When some entries were refused the rest is still stored (as Loki
 * does) and the first refusal is returned: VG_EINVAL (too old, invalid labels) or
 * VG_ETOOLARGE (a size or count limit) with a message naming the stream, the entry
 * and the limit. VG_EIO or VG_ENOMEM: nothing from the push was stored. res may be
 * NULL. */
int logstore_push(struct logstore *ls, const struct logstore_stream_in *streams,
                  size_t nstreams, struct logstore_push_result *res, struct vg_err *err);

/* ---- reading ---- */

struct logstore_query {
    struct matcher *const *matchers; /* at least one must not match "" (else VG_EINVAL) */
    size_t nmatchers;
    int64_t start, end;              /* ns, entries with start <= t < end */
    bool backward;                   /* newest first */
    size_t limit;                    /* entries at most; 0 = no limit */
    /* Optional chunk skipping. needles: byte strings every wanted line contains (the
     * literal of a `|= "..."` filter; matched case-insensitively, so `|~ "(?i)..."`
     * literals qualify too). meta: name/value pairs every wanted entry carries
     * exactly. The store does not filter lines by them: it only skips chunks that
     * certainly hold no such entry, so the caller still applies its filters. */
    const struct vg_str *needles;
    size_t nneedles;
    const struct label *meta;
    size_t nmeta;
    /* Optional line filtering: byte strings (non-empty) that every returned line
     * contains, compared exactly. Entries lacking one are not returned and do not count
     * towards limit; they are searched for in each decompressed chunk as a whole rather
     * than line by line. Copied by logstore_query. */
    const struct vg_str *line_needles;
    size_t nline_needles;
};

struct logstore_entry {
    uint64_t stream;              /* stream id */
    const struct label *labels;   /* the stream's labels, sorted; valid until iter_free */
    size_t nlabels;
    int64_t t;
    struct vg_str line;           /* valid until the next logstore_iter_next */
    const struct label *meta;     /* likewise */
    size_t nmeta;
};

struct logstore_iter;

/* Starts a query: selects streams, captures their in-memory heads and positions a
 * LevelDB view; later pushes are not seen. NULL with err (VG_EINVAL for bad matchers
 * or start > end, VG_EIO, VG_ENOMEM). Free with logstore_iter_free. */
struct logstore_iter *logstore_query(struct logstore *ls, const struct logstore_query *q,
                                     struct vg_err *err);
/* 1 with the next entry in e (streams merged in time order), 0 at the end (or after
 * the limit), or a negative code (VG_EIO, VG_ENOMEM, VG_EINVAL for a corrupt chunk,
 * naming the stream and chunk). */
int logstore_iter_next(struct logstore_iter *it, struct logstore_entry *e, struct vg_err *err);

struct logstore_iter_stats {
    uint64_t streams;            /* selected */
    uint64_t chunks_considered;  /* stored chunks overlapping the range */
    uint64_t chunks_skipped;     /* of those, skipped by the token filter */
    uint64_t chunks_opened;      /* decompressed */
    uint64_t bytes_decompressed;
    uint64_t head_entries;       /* entries read from memory */
    uint64_t lines_skipped;      /* entries of the merged sources left out by line_needles */
    uint64_t bytes_skipped;      /*   and the bytes of their lines */
};
void logstore_iter_stats(const struct logstore_iter *it, struct logstore_iter_stats *st);
void logstore_iter_free(struct logstore_iter *it); /* accepts NULL */

struct logstore_strings {
    char **v; /* sorted, unique, NUL-terminated */
    size_t n;
};
void logstore_strings_free(struct logstore_strings *s);

/* Label names, or the values of one name, over streams with data in [start, end) and
 * matching ms (nms may be 0 for all streams). 0, VG_EINVAL, VG_EIO, VG_ENOMEM. Time
 * bounds are per stream (its oldest and newest stored entry), as Loki's index. */
int logstore_label_names(struct logstore *ls, struct matcher *const *ms, size_t nms,
                         int64_t start, int64_t end, struct logstore_strings *out,
                         struct vg_err *err);
int logstore_label_values(struct logstore *ls, struct vg_str name, struct matcher *const *ms,
                          size_t nms, int64_t start, int64_t end,
                          struct logstore_strings *out, struct vg_err *err);

struct logstore_series {
    uint64_t id;
    struct label *labels; /* sorted; memory owned by the set */
    size_t nlabels;
};
struct logstore_series_set {
    struct logstore_series *v; /* sorted by labels */
    size_t n;
    void *priv;
};
/* Streams matching ms (nms may be 0) with data in [start, end). */
int logstore_series(struct logstore *ls, struct matcher *const *ms, size_t nms, int64_t start,
                    int64_t end, struct logstore_series_set **out, struct vg_err *err);
void logstore_series_set_free(struct logstore_series_set *s);

/* For /loki/api/v1/index/stats: chunks overlapping [start, end) are counted whole (as
 * Loki counts them); head entries are counted exactly. */
struct logstore_stats {
    uint64_t streams, chunks, entries, bytes; /* bytes: lines + metadata, uncompressed */
    uint64_t bytes_compressed;                /* stored chunk values (heads excluded) */
};
int logstore_stats(struct logstore *ls, struct matcher *const *ms, size_t nms, int64_t start,
                   int64_t end, struct logstore_stats *out, struct vg_err *err);

/* For /loki/api/v1/index/volume: bytes and entries in [start, end) grouped by the
 * values of by[0..nby) (streams lacking all of them are left out), or per stream when
 * nby is 0. Sorted by bytes, largest first; at most limit groups (0 = all). */
struct logstore_volume {
    struct label *labels; /* the group's labels, sorted; owned by the set */
    size_t nlabels;
    uint64_t bytes, entries;
};
struct logstore_volume_set {
    struct logstore_volume *v;
    size_t n;
    void *priv;
};
int logstore_volume(struct logstore *ls, struct matcher *const *ms, size_t nms, int64_t start,
                    int64_t end, const struct vg_str *by, size_t nby, size_t limit,
                    struct logstore_volume_set **out, struct vg_err *err);
void logstore_volume_set_free(struct logstore_volume_set *s);

/* ---- maintenance ---- */

/* Deletes every chunk whose newest entry is older than cutoff_ns (a seek and a short
 * scan per stream, never a full scan), and streams left with no data. *deleted (may
 * be NULL) gets the chunk count. 0, VG_EIO, VG_ENOMEM. */
int logstore_retain(struct logstore *ls, int64_t cutoff_ns, uint64_t *deleted,
                    struct vg_err *err);
/* Writes every head (all = true) or only heads older than max_chunk_age_ms as chunks,
 * then drops write-ahead records no longer needed. 0, VG_EIO, VG_ENOMEM. */
int logstore_flush(struct logstore *ls, bool all, struct vg_err *err);
/* logstore_flush(all = true), then LevelDB compaction of the whole database. */
int logstore_compact(struct logstore *ls, struct vg_err *err);
/* One maintenance pass as the background thread runs it, at wall clock now_ns. */
int logstore_maintain(struct logstore *ls, int64_t now_ns, struct vg_err *err);

struct logstore_info {
    uint64_t streams, head_entries, head_bytes, chunks_written;
    uint64_t rejected[LOGSTORE_REJECT_COUNT]; /* since open */
};
void logstore_info(struct logstore *ls, struct logstore_info *out);

#endif
