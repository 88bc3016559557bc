/* quantile: streaming quantile estimation with a merging t-digest (Dunning & Ertl,
 * "Computing extremely accurate quantiles using t-digests", 2019), used for StatsD
 * timers exported as summaries.
 *
 * The digest keeps weighted centroids (mean, weight) sorted by mean. New points wait in
 * a buffer; a merge sorts buffer and centroids together and folds neighbours into one
 * centroid while the merged centroid spans at most one unit of the scale function
 * k1(q) = d/(2*pi) * asin(2q - 1), d the compression. k1 is steep near q = 0 and 1, so
 * centroids there stay small and tail quantiles (0.99, 0.999) are far more accurate
 * than the median; there are at most d + 1 centroids after a merge. Quantiles
 * interpolate linearly between centroid centres, and between the exact minimum /
 * maximum and the outermost centroids.
 *
 * Accuracy (tested in tests/unit/server/ingest/test_quantile.c on 100,000 points of
 * uniform, normal and exponential data with d = 100): the rank of the estimate is within
 * 0.005 of q at the median and within 0.001 at q = 0.99 and 0.999.
 *
 * Memory: a digest allocates nothing until its first point; then at most
 * (QUANTILE_BUFFER_FACTOR * d + d + 2) centroids of 16 bytes, plus a transient array of
 * the same size during a merge. Not thread-safe: one owner (the StatsD aggregator holds
 * its lock around every call). */
#ifndef QUANTILE_H
#define QUANTILE_H

#include <stddef.h>

#define QUANTILE_DEFAULT_COMPRESSION 100.0
#define QUANTILE_BUFFER_FACTOR 5

struct quantile_centroid {
    double mean;
    double weight;
};

struct quantile_digest {
    double compression;
    struct quantile_centroid *c;   /* merged, sorted by mean */
    size_t nc;
    struct quantile_centroid *buf; /* unmerged points */
    size_t nb, capb;
    double weight;                 /* total weight, merged and buffered */
    double min, max;               /* exact extremes */
};

/* Initialises an empty digest (compression at least 10; smaller values are raised). */
void quantile_init(struct quantile_digest *d, double compression);
/* Frees what the digest allocated; it may be reused after quantile_init. */
void quantile_free(struct quantile_digest *d);
/* Forgets every point, keeping the allocated arrays. */
void quantile_reset(struct quantile_digest *d);

/* Adds x with weight w (> 0; a sampled observation counts 1/rate). 0, or VG_ENOMEM with
 * the digest unchanged. NaN and infinite x are the caller's to refuse. */
int quantile_add(struct quantile_digest *d, double x, double w);

/* The estimated q-quantile (0 <= q <= 1) of everything added: NaN when empty, the exact
 * minimum at q = 0 and maximum at q = 1. May merge the buffer (and so allocate): NaN
 * when that fails for memory (the digest keeps its points). */
double quantile_query(struct quantile_digest *d, double q);

/* Total weight added (the observation count when every weight was 1). */
double quantile_weight(const struct quantile_digest *d);

#endif
