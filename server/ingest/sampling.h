/* sampling: trace sampling between the span receivers and the span store, and the
 * module mod_sampling that owns it (state in struct vigil's sampling_state).
 *
 * Every receiver's spans go through ingest_store_spans, which hands them to
 * sampling_apply before the store: the store sees only sampled spans, while derived data
 * (span metrics, service graph, errors; traces/derive.h) still sees every span. Two
 * samplers, both off by default (then sampling_state is NULL and nothing is done):
 *
 * Head sampling (flat keys in section `traces`):
 *   sample_ratio: 0.25          keep this share of traces (0 to 1; default 1 = keep all)
 *   max_traces_per_second: 100  token bucket on new trace ids (burst = one second's worth,
 *                               at least 1); 0 = off (the default)
 *   sample_cache_size: 100000   trace ids whose head decision is remembered (LRU)
 * The ratio rule is OpenTelemetry's consistent-probability sampling (the threshold rule
 * of the W3C Trace Context level 2 "random" trace id and OTEP 235, as the Collector's
 * probabilistic sampler in proportional mode): R = the least significant 56 bits of the
 * trace id read big-endian (bytes 9..15), T = round((1 - ratio) * 2^56); a trace is kept
 * when R >= T. It depends on nothing but the trace id and the ratio, so every service
 * and every Vigil instance makes the same decision for a trace, and a trace kept at a
 * ratio is kept at every larger ratio. The rate limit applies to traces the ratio kept;
 * its decision is per trace id and remembered in the LRU, so all spans of a trace get
 * the same answer while the trace id stays in it (a trace evicted from the LRU and seen
 * again is decided anew).
 *
 * Tail sampling (the structured block `tail_sampling`, tail_sampling.h): spans are held
 * per trace for decision_wait, then the trace is kept when any top-level policy keeps it.
 * SPANS WAITING FOR A TAIL DECISION ARE ACKNOWLEDGED BEFORE THEY ARE DURABLE: they live in
 * memory for up to decision_wait and a crash loses them. That is the inherent trade of
 * tail sampling (a decision needs the whole trace); the buffer is decided by policy and
 * written on graceful shutdown. Kept traces are written by the "tail-sampling" thread
 * and counted as vigil_ingest_spans_accepted_total{receiver="tail_sampling"}.
 *
 * Head sampling runs first; tail sampling sees the spans head sampling kept. Spans that
 * fail span_validate are passed through untouched so the store refuses them with its
 * reason (partial success), never silently sampled away.
 *
 * Figures in /metrics:
 *   vigil_sampling_decisions_total{sampler="head|tail",policy,decision="keep|drop"}
 *       one per trace decision; head policies are "probabilistic" (the ratio) and
 *       "rate_limiting" (traces the ratio kept); tail: the top-level policy that kept the
 *       trace, or "none" for a drop
 *   vigil_sampling_spans_dropped_total{sampler}
 *   vigil_sampling_early_decisions_total          tail buffer full: decided before the wait
 *   vigil_sampling_late_spans_total{decision}     spans of an already decided trace
 *   vigil_sampling_tail_traces, vigil_sampling_tail_bytes   gauges: what is buffered
 *
 * Thread safety: sampling_apply and the head sampler may be called from any thread at
 * once (one mutex per sampler). The sampling cache is not thread-safe (its owner locks). */
#ifndef SAMPLING_H
#define SAMPLING_H

#include "../../storage/base/vg_err.h"
#include "../../storage/spanstore/span.h"
#include "../metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vigil;
struct vigil_module;
extern const struct vigil_module mod_sampling;

/* ---- the ratio rule ---- */

/* T for ratio (clamped to [0, 1]): keep when sampling_randomness(id) >= T. */
uint64_t sampling_ratio_threshold(double ratio);
/* R: the least significant 56 bits of the trace id, big-endian. */
uint64_t sampling_randomness(const uint8_t id[SPAN_TRACE_ID_LEN]);
/* A 64-bit hash of a trace id under seed (splitmix64 finaliser over both halves): hash
 * tables and the tail probabilistic policy, which must not agree with the ratio rule. */
uint64_t sampling_id_hash(const uint8_t id[SPAN_TRACE_ID_LEN], uint64_t seed);

/* The families both samplers count in: vigil_sampling_decisions_total and
 * vigil_sampling_spans_dropped_total (registered on first use; NULL when m is NULL). */
struct metric_family *sampling_decisions_family(struct metrics *m);
struct metric_family *sampling_dropped_family(struct metrics *m);

/* ---- a bounded LRU of trace-id decisions ---- */

struct sampling_cache;

/* cap entries (1 to 2^31) allocated up front. NULL on out of memory. */
struct sampling_cache *sampling_cache_new(size_t cap);
void sampling_cache_free(struct sampling_cache *c); /* accepts NULL */
/* 1 keep, 0 drop, -1 unknown; a hit becomes the most recently used. */
int sampling_cache_get(struct sampling_cache *c, const uint8_t id[SPAN_TRACE_ID_LEN]);
/* Records (or updates) a decision, evicting the least recently used when full. */
void sampling_cache_put(struct sampling_cache *c, const uint8_t id[SPAN_TRACE_ID_LEN], bool keep);
size_t sampling_cache_len(const struct sampling_cache *c);

/* ---- head sampling ---- */

struct sampling_head_opts {
    double ratio;                 /* 0..1 */
    double max_traces_per_second; /* 0 = no rate limit */
    size_t cache_size;            /* LRU entries, >= 1 */
};

struct sampling_head;

/* Counts in m (may be NULL). NULL with err (VG_EINVAL for a bad option, VG_ENOMEM). */
struct sampling_head *sampling_head_new(const struct sampling_head_opts *o, struct metrics *m,
                                        struct vg_err *err);
void sampling_head_free(struct sampling_head *h); /* accepts NULL */
/* The decision for one trace at now_ns (any monotonic clock, nanoseconds): remembered,
 * or made now (and counted). */
bool sampling_head_keep(struct sampling_head *h, const uint8_t id[SPAN_TRACE_ID_LEN],
                        int64_t now_ns);
/* Copies the spans whose trace head sampling keeps to out (n entries; out may be spans)
 * and returns how many. One lock for the batch; counts spans dropped. */
size_t sampling_head_filter(struct sampling_head *h, const struct span *spans, size_t n,
                            int64_t now_ns, struct span *out);

/* ---- both, as ingest_store_spans uses them ---- */

struct sampling;
struct tail_sampling;

struct sampling_result {
    uint64_t dropped;  /* by either sampler */
    uint64_t buffered; /* held for a tail decision */
};

/* Filters spans: the ones to store now go to out (n entries, may alias spans; *nout set):
 * head-kept spans when there is no tail sampler, else invalid spans and late spans of
 * traces the tail sampler already kept. now_ns is a monotonic time. 0, or VG_ENOMEM when
 * the tail buffer could not take a span (spans before it may be buffered; the client's
 * retry is harmless as the store keeps one copy of a span id). s NULL = keep all. */
int sampling_apply(struct sampling *s, const struct span *spans, size_t n, int64_t now_ns,
                   struct span *out, size_t *nout, struct sampling_result *r,
                   struct vg_err *err);
/* The same on v->sampling_state with the monotonic clock. */
int sampling_apply_now(struct vigil *v, const struct span *spans, size_t n, struct span *out,
                       size_t *nout, struct sampling_result *r, struct vg_err *err);
/* The tail sampler of s, or NULL (tests drive its clock). */
struct tail_sampling *sampling_tail(struct sampling *s);

/* Nanoseconds on CLOCK_MONOTONIC. */
int64_t sampling_now_ns(void);

#endif
