/* quantile: the merging t-digest described in quantile.h.
 *
 * Invariants: c[0..nc) is sorted by mean with positive weights; buf[0..nb) holds points
 * not merged yet; weight is the sum of both; min <= every mean <= max once a point was
 * added. The centroid array is allocated once at d + 2 entries (a merge never yields
 * more than d + 1, see merge()), the buffer grows by doubling up to
 * QUANTILE_BUFFER_FACTOR * d entries and a full buffer triggers a merge. */
#include "quantile.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static size_t max_centroids(const struct quantile_digest *d)
{
    return (size_t)ceil(d->compression) + 2;
}

static size_t max_buffer(const struct quantile_digest *d)
{
    return (size_t)ceil(d->compression) * QUANTILE_BUFFER_FACTOR;
}

void quantile_init(struct quantile_digest *d, double compression)
{
    memset(d, 0, sizeof *d);
    d->compression = compression >= 10 ? compression : 10;
    d->min = INFINITY;
    d->max = -INFINITY;
}

void quantile_free(struct quantile_digest *d)
{
    vg_free(d->c);
    vg_free(d->buf);
    d->c = d->buf = NULL;
    d->nc = d->nb = d->capb = 0;
}

void quantile_reset(struct quantile_digest *d)
{
    d->nc = d->nb = 0;
    d->weight = 0;
    d->min = INFINITY;
    d->max = -INFINITY;
}

double quantile_weight(const struct quantile_digest *d)
{
    return d->weight;
}

/* k1 and its inverse: the scale function bounding a centroid's span. */
static double k_of_q(double q, double delta)
{
    return delta / (2 * M_PI) * asin(2 * q - 1);
}

static double q_of_k(double k, double delta)
{
    double x = k * 2 * M_PI / delta;
    if (x >= M_PI / 2)
        return 1;
    return (sin(x) + 1) / 2;
}

static int cmp_mean(const void *a, const void *b)
{
    double x = ((const struct quantile_centroid *)a)->mean;
    double y = ((const struct quantile_centroid *)b)->mean;
    return x < y ? -1 : x > y;
}

/* Folds buf into c. Two neighbouring output centroids always span more than one k-unit
 * together (a new one starts only when adding the next point would pass the limit), and
 * k1 covers d/2 units over [0, 1], so at most d + 1 centroids come out. */
static int merge(struct quantile_digest *d)
{
    if (d->nb == 0)
        return 0;
    if (!d->c && !(d->c = vg_malloc(max_centroids(d) * sizeof *d->c)))
        return VG_ENOMEM;
    size_t n = d->nc + d->nb;
    struct quantile_centroid *all = vg_malloc(n * sizeof *all);
    if (!all)
        return VG_ENOMEM;
    memcpy(all, d->c, d->nc * sizeof *all);
    memcpy(all + d->nc, d->buf, d->nb * sizeof *all);
    qsort(all, n, sizeof *all, cmp_mean);

    double total = d->weight, before = 0;
    double qlimit = q_of_k(k_of_q(0, d->compression) + 1, d->compression);
    struct quantile_centroid cur = all[0];
    size_t out = 0;
    for (size_t i = 1; i < n; i++) {
        double w = cur.weight + all[i].weight;
        /* the second test cannot be true (see above); it keeps every write in bounds */
        if ((before + w) / total <= qlimit || out == max_centroids(d) - 1) {
            /* weighted mean, written to stay within [cur.mean, all[i].mean] */
            cur.mean += (all[i].mean - cur.mean) * all[i].weight / w;
            cur.weight = w;
            continue;
        }
        d->c[out++] = cur;
        before += cur.weight;
        qlimit = q_of_k(k_of_q(before / total, d->compression) + 1, d->compression);
        cur = all[i];
    }
    d->c[out++] = cur;
    d->nc = out;
    d->nb = 0;
    vg_free(all);
    return 0;
}

int quantile_add(struct quantile_digest *d, double x, double w)
{
    if (d->nb == d->capb) {
        if (d->capb == max_buffer(d)) {
            if (merge(d) < 0)
                return VG_ENOMEM;
        } else {
            size_t cap = d->capb ? d->capb * 2 : 16;
            if (cap > max_buffer(d))
                cap = max_buffer(d);
            struct quantile_centroid *b = vg_realloc(d->buf, cap * sizeof *b);
            if (!b)
                return VG_ENOMEM;
            d->buf = b;
            d->capb = cap;
        }
    }
    d->buf[d->nb++] = (struct quantile_centroid){ x, w };
    d->weight += w;
    if (x < d->min)
        d->min = x;
    if (x > d->max)
        d->max = x;
    return 0;
}

double quantile_query(struct quantile_digest *d, double q)
{
    if (d->weight <= 0 || isnan(q))
        return NAN;
    if (merge(d) < 0)
        return NAN;
    if (q <= 0)
        return d->min;
    if (q >= 1)
        return d->max;
    const struct quantile_centroid *c = d->c;
    size_t n = d->nc;
    double total = d->weight, rank = q * total;
    if (n == 1)
        return c[0].weight <= 1 ? c[0].mean
                                : d->min + (d->max - d->min) * q; /* spread evenly */
    /* below the first centroid's centre: between the minimum and that centre */
    if (rank < c[0].weight / 2) {
        if (c[0].weight <= 1)
            return c[0].mean;
        return d->min + (c[0].mean - d->min) * rank / (c[0].weight / 2);
    }
    if (rank > total - c[n - 1].weight / 2) {
        if (c[n - 1].weight <= 1)
            return c[n - 1].mean;
        double past = rank - (total - c[n - 1].weight / 2);
        return c[n - 1].mean + (d->max - c[n - 1].mean) * past / (c[n - 1].weight / 2);
    }
    double centre = c[0].weight / 2; /* cumulative weight at c[i]'s centre */
    for (size_t i = 0; i + 1 < n; i++) {
        double gap = (c[i].weight + c[i + 1].weight) / 2;
        if (rank <= centre + gap) {
            double f = (rank - centre) / gap;
            return c[i].mean + (c[i + 1].mean - c[i].mean) * f;
        }
        centre += gap;
    }
    return c[n - 1].mean;
}
