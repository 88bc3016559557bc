/* querier: the only way the PromQL engine reads data. It selects series by matchers and a
 * time range and hands out their samples, so the engine can be tested on an in-memory
 * fake and could later run against a remote store. querier_tsdb.c implements it on the
 * TSDB (storage/tsdb/tsdb.h).
 *
 * A querier is used by one query at a time, from one thread. */
#ifndef PROMQL_QUERIER_H
#define PROMQL_QUERIER_H

#include "../../storage/base/vg_err.h"
#include "../../storage/tsdb/labels.h"
#include "../../storage/tsdb/matcher.h"
#include "../../storage/tsdb/tsdb.h"

#include <stddef.h>
#include <stdint.h>

struct querier_series {
    const struct label *labels; /* sorted, including __name__ */
    size_t nlabels;
    const struct tsdb_sample *samples; /* time order, mint <= t <= maxt */
    size_t nsamples;
};

/* A selected set: owned by the querier's implementation, freed with its free function. */
struct querier_set {
    struct querier_series *v; /* sorted by labels */
    size_t n;
    void *priv;
};

struct querier {
    void *ctx;
    /* Series matching every matcher with their samples in [mint, maxt] (ms, inclusive).
     * Returns 0 or a vg_code. *loaded is increased by the number of samples handed out,
     * and the call fails with VG_ETOOLARGE (err naming the limit) rather than load more
     * than max_samples in total (0 = no limit). */
    int (*select)(void *ctx, struct matcher *const *ms, size_t nms, int64_t mint, int64_t maxt,
                  uint64_t max_samples, uint64_t *loaded, struct querier_set **out,
                  struct vg_err *err);
    void (*set_free)(void *ctx, struct querier_set *s);
};

/* A querier over a TSDB; the struct is filled in, nothing is allocated. */
void querier_tsdb(struct tsdb *db, struct querier *out);

#endif
