/* spanstore: Vigil's span store on two LevelDB databases of its own (through kv.h).
 *
 * Spans are kept in chunks (the spans of one trace from one write), listed by the
 * trace's summary, so a whole trace is a few point reads. Hour
 * buckets hold secondary indexes (service, service + span name, status, duration
 * bucket, configured attributes, and "all traces"), each entry pointing at a trace id
 * with a time and sorted newest first, plus a registry of the services, operations,
 * attribute keys and (bounded) values seen. A per-trace summary (root service and name,
 * start, end, span and error counts) is merged as spans arrive, late ones included.
 * The byte-by-byte layout is at the top of spanstore.c.
 *
 * Durability: spanstore_write returns 0 only after the whole batch (spans, summaries)
 * is in LevelDB's logs, synced unless no_sync (the span chunks in the chunk database
 * <dir>/chunks, then the rest): a kill -9 after the return loses nothing, and a crash
 * before it leaves nothing of the batch visible. Index postings wait in memory until
 * the next flush to <dir>/index; after a crash the open rebuilds them from the chunks. Stores written before the chunk
 * database (spans under 'S' keys) are read and extended as they are.
 *
 * Search semantics: the span-level filters (service, span name, status, kind, span
 * duration, attributes) must all hold on one span of the trace, which must start within
 * [from_ns, to_ns] (when the only filter is the index term that found the trace, the
 * time checked is the earliest start among the spans of one write batch that carry the
 * term). Trace-level filters (trace duration) are checked on the summary. Attributes
 * compare by their text form (span_attr_text); an attribute filter never matches a span
 * without the key (for != and !~ too).
 *
 * Thread safety: every function may be called from any thread at once. Writers touching
 * different traces run in parallel (LevelDB group-commits their syncs); writers touching
 * the same trace are serialised by a lock stripe of the trace id, which also orders
 * retention against late spans. Results are owned by the caller and freed with the
 * matching *_free (each carries its own arena). With maint_interval_ms > 0 the store runs
 * two background threads (vg_ticker.h), stopped by spanstore_close: "span-flush" writes
 * the waiting index postings out, "span-retain" applies retention. */
#ifndef SPANSTORE_H
#define SPANSTORE_H

#include "../base/vg_arena.h"
#include "../base/vg_err.h"
#include "../base/vg_str.h"
#include "../tsdb/matcher.h"
#include "span.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct spanstore;

struct spanstore_opts {
    const char *dir;           /* LevelDB directory (created if missing) */
    int64_t retention_ns;      /* drop traces whose newest span ended longer ago; 0 = keep */
    int64_t maint_interval_ms; /* background retention period; 0 = no thread */
    size_t cache_bytes;        /* LevelDB block cache; 0 = kv's default */
    /* Attribute keys to index (span and resource attributes): exact keys, or prefixes
     * ending in '*' ("http.*"). NULL = the defaults: http.*, db.system, rpc.*, error. */
    const char *const *indexed_attrs;
    size_t nindexed_attrs;
    size_t max_values_per_key; /* registry: values kept per attribute key and hour; 0 = 200 */
    size_t max_keys;           /* registry: attribute keys kept per hour; 0 = 2000 */
    bool no_sync;              /* acknowledge writes once LevelDB's logs have them (they
                                * survive kill -9) without waiting for fsync */
    /* Index postings wait in memory (span_head.h) until the background thread writes
     * them out: every index_flush_ms (0 = 5 min), or once index_flush_postings (0 = 1 Mi,
     * about 40 MB) are waiting. Without the thread the writer that passes the limit
     * flushes, and spanstore_close flushes what is left. */
    int64_t index_flush_ms;
    size_t index_flush_postings;
    int64_t sync_interval_ms;  /* > 0 with no_sync: fsync both logs this often in the
                                * background (kv.h's kv-sync thread); 0 = never */
};

void spanstore_opts_default(struct spanstore_opts *o);

/* NULL with err filled (VG_EIO naming the path and LevelDB's reason, VG_EINVAL for a bad
 * option, VG_ENOMEM). */
struct spanstore *spanstore_open(const struct spanstore_opts *opts, struct vg_err *err);
/* Stops the background thread and closes LevelDB. Accepts NULL. */
void spanstore_close(struct spanstore *ss);

/* ---- writing ---- */

struct spanstore_write_result {
    uint64_t accepted;      /* spans stored */
    uint64_t duplicates;    /* span ids already stored for their trace: kept as first seen */
    uint64_t rejected;      /* failed span_validate */
    uint64_t traces_created;
    char first_reject[256]; /* the reason of the first rejected span */
};

/* Stores spans (any order, any mix of traces). Invalid spans are counted in res and
 * skipped; the rest is stored. Returns 0 once everything accepted is durable, VG_EIO or
 * VG_ENOMEM with nothing of the batch stored. */
int spanstore_write(struct spanstore *ss, const struct span *spans, size_t n,
                    struct spanstore_write_result *res, struct vg_err *err);

/* ---- reading a trace ---- */

struct spanstore_trace {
    struct span *spans; /* sorted by start time, then span id */
    size_t n;
    struct vg_arena *arena; /* owns spans and their bytes */
};

/* All spans of a trace in one range read. 0, VG_ENOTFOUND, VG_EIO, VG_ENOMEM, or
 * VG_EINVAL when a stored span fails to decode (corruption). Free with
 * spanstore_trace_free (also after an error). */
int spanstore_trace_get(struct spanstore *ss, const uint8_t *trace_id,
                        struct spanstore_trace *out, struct vg_err *err);
void spanstore_trace_free(struct spanstore_trace *t);

/* ---- search ---- */

enum spanstore_scope { SPANSTORE_SCOPE_ANY, SPANSTORE_SCOPE_SPAN, SPANSTORE_SCOPE_RESOURCE };

struct spanstore_attr_filter {
    enum spanstore_scope scope;
    const struct matcher *m; /* name = attribute key; owned by the caller */
};

struct spanstore_query {
    int64_t from_ns, to_ns;        /* span start window; to_ns 0 = no upper bound */
    struct vg_str service;         /* empty = any */
    struct vg_str span_name;       /* empty = any */
    int status;                    /* enum span_status, or -1 = any */
    int kind;                      /* enum span_kind, or -1 = any */
    int64_t min_duration_ns;       /* span duration, 0 = none */
    int64_t max_duration_ns;       /* span duration, 0 = none */
    int64_t min_trace_duration_ns; /* 0 = none */
    int64_t max_trace_duration_ns; /* 0 = none */
    const struct spanstore_attr_filter *attrs;
    size_t nattrs;
    size_t limit;                  /* traces to return; 0 = 20 */
    size_t max_inspect;            /* candidate traces to look at; 0 = 100000 */
};

void spanstore_query_init(struct spanstore_query *q); /* all fields "any", limit 20 */

struct spanstore_trace_summary {
    uint8_t trace_id[SPAN_TRACE_ID_LEN];
    int64_t start_ns, end_ns;
    uint64_t spans, errors;
    bool has_root;
    struct vg_str root_service, root_name; /* bytes in the result's arena */
};

struct spanstore_search_result {
    struct spanstore_trace_summary *traces; /* newest start first */
    size_t n;
    bool truncated;      /* max_inspect was reached: more matches may exist */
    uint64_t keys_read;  /* LevelDB keys this search touched */
    uint64_t inspected;  /* candidate traces looked at */
    struct vg_arena *arena;
};

/* Finds traces matching q. 0, VG_EIO, VG_ENOMEM; free with spanstore_search_free (also
 * after an error). */
int spanstore_search(struct spanstore *ss, const struct spanstore_query *q,
                     struct spanstore_search_result *out, struct vg_err *err);
void spanstore_search_free(struct spanstore_search_result *r);

/* ---- names and values (Tempo tags, Jaeger services and operations) ---- */

struct spanstore_tag {
    enum spanstore_scope scope;  /* SPAN or RESOURCE */
    enum span_val_type type;     /* of a value (0 for a key) */
    struct vg_str key;
    struct vg_str value;         /* empty for a key listing */
};

struct spanstore_op {
    struct vg_str service, name;
    enum span_kind kind;
};

/* Each list is sorted, without repeats, and owns its bytes in arena. */
struct spanstore_list {
    struct spanstore_tag *tags;
    struct spanstore_op *ops;
    struct vg_str *names;
    size_t n;
    bool truncated; /* limit reached */
    struct vg_arena *arena;
};
void spanstore_list_free(struct spanstore_list *l);

/* Attribute keys seen in [from_ns, to_ns] (to 0 = now and later), in scope (ANY =
 * both), at most limit (0 = 10000). Fills tags. */
int spanstore_tag_names(struct spanstore *ss, int64_t from_ns, int64_t to_ns,
                        enum spanstore_scope scope, size_t limit, struct spanstore_list *out,
                        struct vg_err *err);
/* Values seen for key (bounded per hour by max_values_per_key). Fills tags. */
int spanstore_tag_values(struct spanstore *ss, int64_t from_ns, int64_t to_ns,
                         enum spanstore_scope scope, struct vg_str key, size_t limit,
                         struct spanstore_list *out, struct vg_err *err);
/* Services seen. Fills names. */
int spanstore_services(struct spanstore *ss, int64_t from_ns, int64_t to_ns,
                       struct spanstore_list *out, struct vg_err *err);
/* Span names with their kinds, of one service (empty = all). Fills ops. */
int spanstore_operations(struct spanstore *ss, int64_t from_ns, int64_t to_ns,
                         struct vg_str service, struct spanstore_list *out,
                         struct vg_err *err);

/* ---- housekeeping ---- */

struct spanstore_stats {
    uint64_t spans, traces;
    uint64_t bytes;       /* encoded span bytes stored (before LevelDB's compression) */
    uint64_t disk_bytes;  /* LevelDB's estimate of the whole database on disk */
    uint64_t keys_read;   /* keys read by queries since open */
};
void spanstore_stats(struct spanstore *ss, struct spanstore_stats *out);
/* Background fsyncs of both LevelDB logs (index and chunks) added up (storage.fsync
 * periodic; kv.h). Thread-safe. */
struct kv_sync_stats;
void spanstore_sync_stats(struct spanstore *ss, struct kv_sync_stats *out);

/* Deletes traces whose newest span ended before cutoff_ns, then whole index hours that
 * ended before it. Returns 0, VG_EIO or VG_ENOMEM; *deleted (may be NULL) = traces. */
int spanstore_retain(struct spanstore *ss, int64_t cutoff_ns, uint64_t *deleted,
                     struct vg_err *err);

#endif
