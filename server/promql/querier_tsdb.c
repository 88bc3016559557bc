/* querier_tsdb: the querier (querier.h) over Vigil's TSDB: tsdb_select finds the series
 * through the postings index and chunk time ranges, a tsdb_reader decodes only the
 * samples in [mint, maxt] of each, reading the series in id order (the order of their
 * chunk keys). The samples of every series are counted into *loaded as they are read,
 * so the query fails with VG_ETOOLARGE as soon as the total would pass max_samples,
 * before more is decoded. A set owns the series set and the sample
 * buffers; set_free releases both. */
#include "querier.h"

#include "../../storage/base/vg_alloc.h"

#include <stdlib.h>
#include <string.h>

struct qt_set {
    struct querier_set pub;
    struct tsdb_series_set *ss;
    struct tsdb_sample **bufs;
    size_t nbufs;
};

static void qt_free(void *ctx, struct querier_set *s)
{
    (void)ctx;
    if (!s)
        return;
    struct qt_set *q = s->priv;
    for (size_t i = 0; i < q->nbufs; i++)
        vg_free(q->bufs[i]);
    vg_free(q->bufs);
    vg_free(q->pub.v);
    tsdb_series_set_free(q->ss);
    vg_free(q);
}

struct by_id {
    uint64_t id;
    size_t i; /* index in the series set */
};

static int cmp_by_id(const void *a, const void *b)
{
    const struct by_id *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
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
    q->bufs = vg_calloc(n ? n : 1, sizeof *q->bufs);
    if (!q->pub.v || !q->bufs) {
        qt_free(NULL, &q->pub);
        return vg_err_set(err, VG_ENOMEM, "querier: out of memory");
    }
    /* Read in increasing id order, which is the order of the chunk keys on disk, so the
     * reader mostly steps from one series' chunks to the next instead of seeking (see
     * tsdb_query.c's reader_goto); hand the series out in label order afterwards. */
    struct by_id *order = vg_malloc((n ? n : 1) * sizeof *order);
    size_t *counts = vg_malloc((n ? n : 1) * sizeof *counts);
    struct tsdb_reader *rd = order && counts ? tsdb_reader_new(db) : NULL;
    if (!rd) {
        vg_free(order);
        vg_free(counts);
        qt_free(NULL, &q->pub);
        return vg_err_set(err, VG_ENOMEM, "querier: out of memory");
    }
    for (size_t i = 0; i < n; i++)
        order[i] = (struct by_id){ q->ss->v[i].id, i };
    qsort(order, n, sizeof *order, cmp_by_id);
    q->nbufs = n; /* bufs[i] belongs to series i; NULL until read */
    for (size_t j = 0; j < n && rc == 0; j++) {
        size_t i = order[j].i;
        rc = tsdb_reader_read(rd, order[j].id, mint, maxt, &q->bufs[i], &counts[i], err);
        *loaded += rc ? 0 : counts[i];
        if (rc == 0 && max_samples && *loaded > max_samples)
            rc = vg_err_set(err, VG_ETOOLARGE,
                            "query processing would load too many samples into memory in "
                            "query execution (limit %llu samples)",
                            (unsigned long long)max_samples);
    }
    tsdb_reader_free(rd);
    vg_free(order);
    if (rc) {
        vg_free(counts);
        qt_free(NULL, &q->pub);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        if (!counts[i])
            continue;
        const struct tsdb_series *s = &q->ss->v[i];
        struct querier_series *qs = &q->pub.v[q->pub.n++];
        qs->labels = s->labels;
        qs->nlabels = s->nlabels;
        qs->samples = q->bufs[i];
        qs->nsamples = counts[i];
    }
    vg_free(counts);
    *out = &q->pub;
    return 0;
}

void querier_tsdb(struct tsdb *db, struct querier *out)
{
    out->ctx = db;
    out->select = qt_select;
    out->set_free = qt_free;
}
