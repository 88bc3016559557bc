/* querier_tsdb: the querier (querier.h) over Vigil's TSDB: tsdb_select finds the series
 * through the postings index and chunk time ranges, a tsdb_reader decodes only the
 * samples in [mint, maxt] of each, reading the series in id order (the order of their
 * chunk keys). The samples of every series are counted into *loaded as they are read,
 * so the query fails with VG_ETOOLARGE as soon as the total would pass max_samples,
 * before more is decoded. A set owns the series set and one array holding every
 * series' samples back to back (one growing allocation per query, not one per series:
 * an instant query over 20,000 series made 20,000 allocations of 256 samples);
 * set_free releases both. */
#include "querier.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_sort.h"

#include <stdlib.h>
#include <string.h>

struct qt_set {
    struct querier_set pub;
    struct tsdb_series_set *ss;
    struct tsdb_sample *samples; /* every series' samples, one after another */
};

static void qt_free(void *ctx, struct querier_set *s)
{
    (void)ctx;
    if (!s)
        return;
    struct qt_set *q = s->priv;
    vg_free(q->samples);
    vg_free(q->pub.v);
    tsdb_series_set_free(q->ss);
    vg_free(q);
}

static int qt_select(void *ctx, struct matcher *const *ms, size_t nms, int64_t mint,
                     int64_t maxt, uint64_t max_samples, uint64_t *loaded,
                     struct querier_set **out, struct vg_err *err)
{
    struct tsdb *db = ctx;
    *out = NULL;
    struct qt_set *q = vg_calloc(1, sizeof *q);
    if (!q)
        return vg_err_set(err, VG_ENOMEM, "querier: out of memory");
    q->pub.priv = q;
    int rc = tsdb_select(db, ms, nms, mint, maxt, &q->ss, err);
    if (rc) {
        vg_free(q);
        return rc;
    }
    size_t n = q->ss->n;
    q->pub.v = vg_calloc(n ? n : 1, sizeof *q->pub.v);
    /* Read in increasing id order, which is the order of the chunk keys on disk, so the
     * reader mostly steps from one series' chunks to the next instead of seeking (see
     * tsdb_query.c's reader_goto); hand the series out in label order afterwards. */
    struct vg_sort_key *order = vg_malloc((n ? n : 1) * sizeof *order);
    struct vg_sort_key *tmp = vg_malloc((n ? n : 1) * sizeof *tmp);
    size_t *start = vg_malloc((n + 1) * sizeof *start); /* series i: [start[i], end[i]) */
    size_t *end = vg_malloc((n + 1) * sizeof *end);
    struct tsdb_reader *rd = q->pub.v && order && tmp && start && end ? tsdb_reader_new(db) : NULL;
    if (!rd) {
        vg_free(order);
        vg_free(tmp);
        vg_free(start);
        vg_free(end);
        qt_free(NULL, &q->pub);
        return vg_err_set(err, VG_ENOMEM, "querier: out of memory");
    }
    for (size_t i = 0; i < n; i++)
        order[i] = (struct vg_sort_key){ .hi = 0, .lo = q->ss->v[i].id, .i = i };
    /* A radix sort: ids use two or three bytes in any real store, and a qsort of
     * 20,000 series cost a tenth of selecting them. */
    struct vg_sort_key *sorted = vg_sort_keys(order, tmp, n);
    if (sorted == tmp) { /* NULL (no memory for the counts) leaves the label order */
        tmp = order;
        order = sorted;
    }
    vg_free(tmp);
    size_t len = 0, cap = 0;
    for (size_t j = 0; j < n && rc == 0; j++) {
        size_t i = order[j].i;
        start[i] = len;
        rc = tsdb_reader_append(rd, order[j].lo, mint, maxt, &q->samples, &len, &cap, err);
        end[i] = len;
        *loaded += rc ? 0 : end[i] - start[i];
        if (rc == 0 && max_samples && *loaded > max_samples)
            rc = vg_err_set(err, VG_ETOOLARGE,
                            "query processing would load too many samples into memory in "
                            "query execution (limit %llu samples)",
                            (unsigned long long)max_samples);
    }
    tsdb_reader_free(rd);
    vg_free(order);
    if (rc == 0 && cap > len + len / 4) { /* give back what the doubling left unused */
        struct tsdb_sample *shrunk = vg_realloc(q->samples, (len ? len : 1) * sizeof *shrunk);
        if (shrunk)
            q->samples = shrunk;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (end[i] == start[i])
            continue;
        const struct tsdb_series *s = &q->ss->v[i];
        struct querier_series *qs = &q->pub.v[q->pub.n++];
        qs->labels = s->labels;
        qs->nlabels = s->nlabels;
        qs->samples = q->samples + start[i];
        qs->nsamples = end[i] - start[i];
    }
    vg_free(start);
    vg_free(end);
    if (rc) {
        qt_free(NULL, &q->pub);
        return rc;
    }
    *out = &q->pub;
    return 0;
}

void querier_tsdb(struct tsdb *db, struct querier *out)
{
    out->ctx = db;
    out->select = qt_select;
    out->set_free = qt_free;
}
