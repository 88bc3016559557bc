/* tail_sampling: hold spans per trace for a decision wait, then keep or drop the whole
 * trace by policies shaped like the OpenTelemetry Collector's tailsamplingprocessor.
 *
 * Config (the structured block `tail_sampling`; sampling is off without it):
 *
 *   tail_sampling:
 *     decision_wait: 10s          how long a trace's spans wait after its first span
 *     num_traces: 50000           traces buffered at most
 *     max_bytes: 64MiB            bytes buffered at most (encoded spans plus bookkeeping)
 *     decision_cache_size: 100000 decided trace ids remembered for late spans
 *     policies:                   a trace is kept when ANY of these keeps it (in order;
 *                                 the first that keeps it is the one counted)
 *       - name: errors
 *         type: status_code
 *         status_code: {status_codes: [ERROR]}          ERROR, OK, UNSET; any span
 *       - name: slow
 *         type: latency
 *         latency: {threshold_ms: 500}                  (optional upper_threshold_ms);
 *                                 duration = latest span end - earliest span start
 *       - name: checkout
 *         type: string_attribute
 *         string_attribute: {key: http.route, values: ["/api/checkout.*"],
 *                            enabled_regex_matching: true}
 *                                 span or resource attribute with a string value; regexes
 *                                 are POSIX extended and match anywhere (as the collector's)
 *       - name: big-orders
 *         type: numeric_attribute
 *         numeric_attribute: {key: order.items, min_value: 10, max_value: 1000}
 *                                 int or double value in [min, max] (either bound optional)
 *       - name: per-service
 *         type: service_rate_limiting
 *         service_rate_limiting: {traces_per_second: 5}
 *                                 token bucket per service (of the root span, else the
 *                                 first span); 4096 services at most, then the table starts
 *                                 over with full buckets
 *       - name: errors-but-not-too-many
 *         type: and
 *         and:
 *           and_sub_policy:       all must keep (in order: put rate limits last so only
 *             - {name: e, type: status_code, status_code: {status_codes: [ERROR]}}
 *             - {name: r, type: rate_limiting, rate_limiting: {spans_per_second: 100}}
 *       - name: rest
 *         type: probabilistic
 *         probabilistic: {sampling_percentage: 10}      (optional hash_salt)
 * Also `always_sample` (no options) and `or` (or: {or_sub_policy: [...]}); and/or nest up
 * to 8 levels. rate_limiting keeps a trace while the spans kept in the current second
 * plus its own stay within spans_per_second. probabilistic keeps a trace when the
 * splitmix64 hash of its id (salted by hash_salt) falls below the percentage: the same
 * decision everywhere, but independent of head sampling's ratio rule.
 *
 * Memory: at most num_traces traces and max_bytes bytes are buffered; when a new span
 * would pass either, the oldest traces are decided at once by policy with what they have
 * (vigil_sampling_early_decisions_total). Decided trace ids stay in a bounded LRU so that
 * late spans follow the decision (kept ones are handed back to be stored at once).
 * Spans waiting for a decision are acknowledged before they are durable (sampling.h).
 *
 * Times are parameters (now_ns, any monotonic clock) so tests drive the clock; the
 * optional thread ("tail-sampling") calls tail_sampling_tick with CLOCK_MONOTONIC.
 *
 * Thread safety: every function may be called from any thread at once except _free; one
 * mutex guards the buffer, the decision cache and the policies' rate state. Kept traces
 * are passed to the sink without the lock held, from whichever thread decided them. */
#ifndef TAIL_SAMPLING_H
#define TAIL_SAMPLING_H

#include "../../storage/base/vg_err.h"
#include "../../storage/spanstore/span.h"
#include "../config_node.h"
#include "../metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tail_sampling;

/* Where kept traces go. write gets whole traces (possibly several in one call) and
 * returns 0 or a negative vg_code (the spans are lost then; the sink reports it). */
struct tail_sampling_sink {
    int (*write)(void *ctx, const struct span *spans, size_t n);
    void *ctx;
};

/* Validates the block (what `vigil check-config` runs): 0 or VG_EINVAL with err
 * "source:line: tail_sampling...: what is wrong", VG_ENOMEM. */
int tail_sampling_check(const struct config_node *block, struct vg_err *err);

/* A sampler from the block (must not be NULL). Figures counted in m (may be NULL). No
 * thread until tail_sampling_start. NULL with err. */
struct tail_sampling *tail_sampling_new(const struct config_node *block, struct metrics *m,
                                        const struct tail_sampling_sink *sink,
                                        struct vg_err *err);
/* Starts the thread deciding expired traces. 0 or VG_EINTERNAL. */
int tail_sampling_start(struct tail_sampling *ts, struct vg_err *err);
/* Stops the thread, decides everything buffered by policy (tail_sampling_flush), frees.
 * Accepts NULL. */
void tail_sampling_free(struct tail_sampling *ts);

struct tail_sampling_add_result {
    uint64_t buffered;     /* spans held for a decision */
    uint64_t late_kept;    /* spans of kept traces, handed back in pass */
    uint64_t late_dropped; /* spans of dropped traces */
};

/* Takes valid spans (span_validate passed; the caller sends invalid ones to the store).
 * Spans of traces not decided yet are copied into the buffer; spans of traces already
 * kept are copied to pass (n entries, may alias spans; *npass set) for the caller to
 * store now; spans of dropped traces are counted and forgotten. A full buffer decides
 * its oldest traces first (and writes kept ones through the sink, from this thread).
 * 0, or VG_ENOMEM (the spans before the failing one were taken). */
int tail_sampling_add(struct tail_sampling *ts, const struct span *spans, size_t n,
                      int64_t now_ns, struct span *pass, size_t *npass,
                      struct tail_sampling_add_result *res, struct vg_err *err);

/* Decides the traces whose decision_wait has passed at now_ns; kept ones go to the
 * sink. Returns the number of traces decided. */
size_t tail_sampling_tick(struct tail_sampling *ts, int64_t now_ns);
/* Decides every buffered trace now (shutdown). Returns the number decided. */
size_t tail_sampling_flush(struct tail_sampling *ts, int64_t now_ns);

struct tail_sampling_stats {
    size_t traces;    /* buffered */
    size_t bytes;     /* buffered, as counted against max_bytes */
    uint64_t early;   /* early decisions so far */
    uint64_t kept, dropped; /* traces decided so far */
};
void tail_sampling_get_stats(struct tail_sampling *ts, struct tail_sampling_stats *st);

#endif
