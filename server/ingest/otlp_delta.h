/* otlp_delta: delta-to-cumulative conversion state of the OTLP metrics receiver
 * (config otlp_delta = OTLP_DELTA_ACCUMULATE).
 *
 * Prometheus stores cumulative counters and histograms; an OTLP producer with delta
 * temporality sends only what happened since its previous export. This state keeps, per
 * series (key = canonical label encoding chosen by the caller, e.g. the family's labels
 * with __name__), the running total of everything accepted so far, and hands back the
 * cumulative value to store.
 *
 * Rules:
 *   - A point is accepted only if its timestamp is newer than the last accumulated one of
 *     its series; an older or equal one (an OTLP client retrying a request it believes
 *     failed, or reordering) is refused with VG_ECONFLICT instead of being counted twice.
 *   - Explicit-bounds histograms whose bounds change start over from the new point.
 *   - Exponential histograms of different scales are merged at the smaller scale (each
 *     bucket index i at scale s becomes floor(i / 2^(s-t)) at scale t), and the scale is
 *     lowered further when the merged bucket range would exceed OTLP_DELTA_MAX_SPAN.
 *   - Series not updated for idle_ms (measured on the data's own clock, the newest point
 *     timestamp seen) are forgotten; at most max_series are kept (VG_ETOOLARGE beyond).
 *     The server takes both from config keys otlp.delta_idle_timeout and
 *     otlp.delta_max_series.
 *
 * The state lives in memory only: after a restart totals start again from zero (a
 * counter reset, which PromQL's rate() handles).
 *
 * Thread safety: every function may be called concurrently; one mutex guards the table.
 * Memory: the table uses vg_malloc; values handed back are copied into the caller's arena. */
#ifndef OTLP_DELTA_H
#define OTLP_DELTA_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OTLP_DELTA_MAX_SPAN 4096 /* buckets per side of an accumulated exponential histogram */

/* A classic histogram point: counts[i] is the count of bucket i (not cumulative); there
 * are nbounds + 1 counts, or none (only count and sum known). */
struct otlp_hist {
    uint64_t count;
    double sum;
    bool has_sum;
    size_t nbounds;
    const double *bounds;
    const uint64_t *counts;
};

/* One side of an exponential histogram: counts[k] belongs to bucket index offset + k. */
struct otlp_exp_buckets {
    int64_t offset;
    size_t n;
    const uint64_t *counts;
};

struct otlp_exphist {
    int32_t scale;
    uint64_t count;
    double sum;
    bool has_sum;
    uint64_t zero_count;
    double zero_threshold;
    struct otlp_exp_buckets pos, neg;
};

struct otlp_delta_state;

/* NULL when out of memory. max_series 0 means 100000; idle_ms 0 means one hour (the
 * config defaults, for callers without a config). */
struct otlp_delta_state *otlp_delta_new(size_t max_series, int64_t idle_ms);
/* Accepts NULL. */
void otlp_delta_free(struct otlp_delta_state *s);
/* Series currently tracked. */
size_t otlp_delta_size(struct otlp_delta_state *s);

/* Adds delta at t_ms to the series key (klen bytes, copied) and stores the running total
 * in *total. 0, or VG_ECONFLICT (not newer), VG_ETOOLARGE (table full), VG_ENOMEM. On
 * error nothing changes. */
int otlp_delta_add_number(struct otlp_delta_state *s, const void *key, size_t klen,
                          int64_t t_ms, double delta, double *total, struct vg_err *err);

/* Same for histograms; *out is filled with the accumulated histogram, its arrays copied
 * into a. */
int otlp_delta_add_hist(struct otlp_delta_state *s, const void *key, size_t klen, int64_t t_ms,
                        const struct otlp_hist *in, struct vg_arena *a, struct otlp_hist *out,
                        struct vg_err *err);
int otlp_delta_add_exphist(struct otlp_delta_state *s, const void *key, size_t klen,
                           int64_t t_ms, const struct otlp_exphist *in, struct vg_arena *a,
                           struct otlp_exphist *out, struct vg_err *err);

#endif
