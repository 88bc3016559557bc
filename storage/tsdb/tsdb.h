/* tsdb: Vigil's time-series store on its own LevelDB database.
 *
 * Series get a stable numeric id; an inverted index maps name=value to the ids that have
 * it; samples are kept in Gorilla-compressed chunks keyed by series id and start time, and
 * recent samples live in an in-memory head rebuilt at start from the write-ahead records
 * kept in LevelDB. The exact key layout is documented at the top of tsdb.c.
 *
 * Durability contract: tsdb_append returns 0 only after everything it accepted is in
 * LevelDB's log (with sync unless no_sync), so a kill -9 after the return loses nothing; a crash before
 * the return leaves no partial batch visible after restart.
 *
 * Thread safety: every function here may be called from any thread concurrently; the
 * store serialises what it must internally. Results handed out are owned by the caller
 * and freed with the matching *_free. The store runs one background thread
 * ("tsdb-maint") for head flushing and retention, stopped by tsdb_close. */
#ifndef TSDB_H
#define TSDB_H

#include "../base/vg_err.h"
#include "../base/vg_str.h"
#include "labels.h"
#include "matcher.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The NaN Prometheus writes to mark a series stale; stored and returned bit-exact. */
#define TSDB_STALE_NAN_BITS 0x7ff0000000000002ULL

struct tsdb;

struct tsdb_opts {
    const char *dir;            /* directory of the LevelDB database (created if missing) */
    int64_t retention_ms;       /* drop chunks whose newest sample is older; 0 = forever */
    int64_t ooo_window_ms;      /* accept samples this much older than a series' newest */
    size_t cache_bytes;         /* LevelDB block cache; 0 = default (32 MiB) */
    int64_t maint_interval_ms;  /* how often the background thread runs; 0 = 60000 */
    bool no_sync;               /* acknowledge appends once LevelDB's log has them (they
                                 * survive kill -9) without waiting for fsync */
    int64_t sync_interval_ms;   /* > 0 with no_sync: fsync the log this often in the
                                 * background (kv.h's kv-sync thread); 0 = never */
};

void tsdb_opts_default(struct tsdb_opts *o); /* retention 15d, ooo 30m, cache 32 MiB */

/* NULL with err filled (VG_EIO naming the path and LevelDB's reason). */
struct tsdb *tsdb_open(const struct tsdb_opts *opts, struct vg_err *err);
/* Flushes the head, stops the background thread, closes LevelDB. Accepts NULL. */
void tsdb_close(struct tsdb *db);

/* ---- writing ---- */

struct tsdb_sample {
    int64_t t; /* milliseconds since the epoch */
    double v;
};

struct tsdb_exemplar {
    const struct label *labels; /* e.g. trace_id, span_id; sorted */
    size_t nlabels;
    int64_t t;
    double v;
};

struct tsdb_series_in {
    const struct label *labels; /* sorted by name, unique, validated by the caller */
    size_t nlabels;
    const struct tsdb_sample *samples; /* any order; each sample judged on its own */
    size_t nsamples;
    const struct tsdb_exemplar *exemplars;
    size_t nexemplars;
};

enum tsdb_metric_type {
    TSDB_TYPE_UNKNOWN,
    TSDB_TYPE_COUNTER,
    TSDB_TYPE_GAUGE,
    TSDB_TYPE_HISTOGRAM,
    TSDB_TYPE_GAUGEHISTOGRAM,
    TSDB_TYPE_SUMMARY,
    TSDB_TYPE_INFO,
    TSDB_TYPE_STATESET,
};
const char *tsdb_metric_type_name(enum tsdb_metric_type t); /* "counter", ... as Prometheus */

struct tsdb_metadata {
    struct vg_str metric; /* metric family name */
    enum tsdb_metric_type type;
    struct vg_str help;
    struct vg_str unit;
};

struct tsdb_batch {
    const struct tsdb_series_in *series;
    size_t nseries;
    const struct tsdb_metadata *meta;
    size_t nmeta;
};

enum tsdb_reject {
    TSDB_REJECT_TOO_OLD,        /* older than the series' newest sample minus the OOO window */
    TSDB_REJECT_DUPLICATE,      /* same timestamp as a stored sample, different value */
    TSDB_REJECT_COUNT
};
const char *tsdb_reject_name(enum tsdb_reject r); /* "too_old", "duplicate_conflict" */

struct tsdb_append_result {
    uint64_t accepted;            /* samples stored */
    uint64_t duplicates;          /* exact duplicates, ignored (not an error) */
    uint64_t rejected[TSDB_REJECT_COUNT];
    uint64_t series_created;
    uint64_t exemplars_accepted;
    char first_reject[256];       /* human-readable description of the first rejection */
};

/* Appends a batch. Returns 0 once every accepted sample is durable; samples rejected by
 * the rules above are counted in res (the rest of the batch is still stored). Returns
 * VG_EIO (nothing from the batch stored) when LevelDB fails, VG_ENOMEM likewise. */
int tsdb_append(struct tsdb *db, const struct tsdb_batch *batch,
                struct tsdb_append_result *res, struct vg_err *err);
/* tsdb_append for a caller that already has the canonical encoding of some label sets
 * (labels_encode's bytes; the remote-write decoder writes them while it validates):
 * enc is NULL or has one entry per series of batch, its bytes or p NULL (encoded here).
 * The caller vouches that every given encoding is exactly labels_encode(labels, nlabels)
 * of its series: a series is found and created by these bytes and indexed by the
 * labels. enc need only live for the call. */
int tsdb_append_enc(struct tsdb *db, const struct tsdb_batch *batch, const struct vg_str *enc,
                    struct tsdb_append_result *res, struct vg_err *err);

/* ---- reading ---- */

struct tsdb_series {
    uint64_t id;
    struct label *labels; /* sorted; memory owned by the series set */
    size_t nlabels;
};

struct tsdb_series_set {
    struct tsdb_series *v; /* sorted by labels */
    size_t n;
    void *priv;
};

/* Series matching every matcher (at least one matcher must not match the empty string,
 * as Prometheus requires; else VG_EINVAL) that have samples in [mint, maxt] (inclusive,
 * ms). Use INT64_MIN / INT64_MAX for unbounded. *out is freed with tsdb_series_set_free. */
int tsdb_select(struct tsdb *db, struct matcher *const *ms, size_t nms, int64_t mint,
                int64_t maxt, struct tsdb_series_set **out, struct vg_err *err);
void tsdb_series_set_free(struct tsdb_series_set *s);

/* Samples of one series with mint <= t <= maxt in time order (head and chunks merged,
 * duplicates removed). *out is vg_malloc'ed (free with vg_free), *n its length. */
int tsdb_read(struct tsdb *db, uint64_t series_id, int64_t mint, int64_t maxt,
              struct tsdb_sample **out, size_t *n, struct vg_err *err);

/* A reader makes many tsdb_read calls share one LevelDB iterator (one snapshot), which
 * a query reading thousands of series needs: creating an iterator per series costs as
 * much as the reading. It takes a fresh snapshot by itself whenever the head has moved
 * chunks to disk since the current one, so its reads see exactly what tsdb_read would.
 * One thread at a time; free it before closing db. NULL when out of memory. */
struct tsdb_reader;
struct tsdb_reader *tsdb_reader_new(struct tsdb *db);
int tsdb_reader_read(struct tsdb_reader *r, uint64_t series_id, int64_t mint, int64_t maxt,
                     struct tsdb_sample **out, size_t *n, struct vg_err *err);
/* As tsdb_reader_read, but appends the samples to the caller's array *buf (*len used of
 * *cap, vg_malloc'ed, grown with vg_realloc; *len advances by this series' count), so a
 * query over thousands of series makes a few allocations instead of one per series.
 * On error *len is unchanged (*buf and *cap may have changed: free *buf either way). */
int tsdb_reader_append(struct tsdb_reader *r, uint64_t series_id, int64_t mint, int64_t maxt,
                       struct tsdb_sample **buf, size_t *len, size_t *cap, struct vg_err *err);
void tsdb_reader_free(struct tsdb_reader *r); /* accepts NULL */

struct tsdb_strings {
    char **v; /* sorted, unique, NUL-terminated */
    size_t n;
};
void tsdb_strings_free(struct tsdb_strings *s);

/* Label names (or values of one name) over series matching ms in [mint, maxt]; with
 * nms == 0 all series. */
int tsdb_label_names(struct tsdb *db, struct matcher *const *ms, size_t nms, int64_t mint,
                     int64_t maxt, struct tsdb_strings *out, struct vg_err *err);
int tsdb_label_values(struct tsdb *db, const char *name, struct matcher *const *ms,
                      size_t nms, int64_t mint, int64_t maxt, struct tsdb_strings *out,
                      struct vg_err *err);

/* Metadata last written for a metric family; false when none. Strings are copied into
 * the caller's buffers (help up to help_cap bytes, unit up to unit_cap). */
bool tsdb_metadata_get(struct tsdb *db, const char *metric, enum tsdb_metric_type *type,
                       char *help, size_t help_cap, char *unit, size_t unit_cap);

/* Every metric family name that has metadata, sorted (LevelDB key order). Histogram and
 * summary families appear under their family name, not their _bucket/_sum/_count series. */
int tsdb_metadata_names(struct tsdb *db, struct tsdb_strings *out, struct vg_err *err);

struct tsdb_exemplar_out {
    uint64_t series_id;
    struct label *labels; /* exemplar labels */
    size_t nlabels;
    int64_t t;
    double v;
};
struct tsdb_exemplar_set {
    struct tsdb_exemplar_out *v;
    size_t n;
    void *priv;
};
/* Exemplars of the series matching ms in [mint, maxt]. */
int tsdb_exemplars(struct tsdb *db, struct matcher *const *ms, size_t nms, int64_t mint,
                   int64_t maxt, struct tsdb_exemplar_set **out, struct vg_err *err);
void tsdb_exemplar_set_free(struct tsdb_exemplar_set *s);

/* ---- housekeeping and figures ---- */

struct tsdb_stats {
    uint64_t series;            /* series known (active in the head or on disk) */
    uint64_t head_series;       /* series with samples in the in-memory head */
    uint64_t head_samples;      /* samples in the head not yet in a persisted chunk */
    uint64_t chunks_persisted;  /* chunks written since open */
    uint64_t samples_appended;  /* since open */
    uint64_t ooo_samples;       /* accepted out-of-order samples since open */
    uint64_t bytes_on_disk;     /* size of the database directory */
    int64_t min_time, max_time; /* over all stored samples; INT64_MAX/INT64_MIN if none */
};
void tsdb_stats(struct tsdb *db, struct tsdb_stats *st);
/* Background fsyncs of the TSDB's log (storage.fsync periodic; kv.h). Thread-safe. */
struct kv_sync_stats;
void tsdb_sync_stats(struct tsdb *db, struct kv_sync_stats *out);

/* Cardinality figures as Prometheus's /api/v1/status/tsdb reports them (tsdb_stats.c). */
struct tsdb_stat_item {
    char *name;     /* metric name, label name, or "name=value" */
    uint64_t value;
};
struct tsdb_stat_list {
    struct tsdb_stat_item *v; /* best first: larger value, ties by name in byte order */
    size_t n;
};
struct tsdb_cardinality {
    uint64_t num_series;      /* series known */
    uint64_t num_label_pairs; /* distinct name=value pairs in the index */
    uint64_t chunk_count;     /* chunks held in memory (open head chunks and frozen ones) */
    int64_t min_time, max_time; /* over all series; INT64_MAX / INT64_MIN when none */
    struct tsdb_stat_list series_by_metric; /* metric names by series count */
    struct tsdb_stat_list values_by_name;   /* label names by distinct values */
    struct tsdb_stat_list bytes_by_name;    /* label names by value bytes over all series */
    struct tsdb_stat_list series_by_pair;   /* "name=value" by series count */
};
/* Fills out with the top `limit` entries of each list (one scan of the postings index).
 * 0, VG_EIO or VG_ENOMEM (out then empty). Free with tsdb_cardinality_free. */
int tsdb_cardinality(struct tsdb *db, size_t limit, struct tsdb_cardinality *out,
                     struct vg_err *err);
void tsdb_cardinality_free(struct tsdb_cardinality *c); /* accepts NULL */

/* Runs one round of head flushing and retention now (the background thread does this on
 * its interval; tests and `vigil` shutdown call it directly). now_ms is the clock. */
int tsdb_maintain(struct tsdb *db, int64_t now_ms, struct vg_err *err);

/* Writes every head chunk to disk, compacts LevelDB fully and drops consumed write-ahead
 * records, so the on-disk size reflects compressed chunks (used by the benchmark). */
int tsdb_compact(struct tsdb *db, struct vg_err *err);

#endif
