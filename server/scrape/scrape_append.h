/* scrape_append: one scraped body turned into stored samples, as Prometheus's scrape
 * loop does it; no HTTP, no threads, so tests drive it with bodies and a fake sink.
 *
 * For every sample line (text 0.0.4 or OpenMetrics): labels = __name__ plus the line's
 * labels; the target's labels are merged (honor_labels: a scraped label wins and a
 * target label only fills in a missing one; otherwise the target's wins and a clashing
 * scraped label is kept as exported_<name>, prefixing again while that name is taken,
 * shortest names first); the timestamp is the scraped one with honor_timestamps, else
 * the scrape's; metric_relabel_configs run (a dropped sample is gone). The scrape fails
 * as a whole, storing none of its samples, on a parse error, a sample without
 * __name__, an invalid label name or value, or a crossed sample_limit, label_limit,
 * label_name_length_limit or label_value_length_limit; every series of the previous
 * scrape then gets a staleness marker (TSDB_STALE_NAN_BITS at the scrape time), as does
 * any series that was there last time and is not now. Then the report series
 *   up, scrape_duration_seconds, scrape_samples_scraped,
 *   scrape_samples_post_metric_relabeling, scrape_series_added
 * are written with the target's labels at the scrape time. HELP/TYPE/UNIT lines are
 * kept per target (for /api/v1/targets/metadata) and written to the store's metadata
 * when they change.
 *
 * The cache holds what the previous scrape stored: sorted 64-bit label hashes with the
 * canonical label encodings (labels.h) beside them, so a vanished series can be marked
 * stale without keeping parsed label sets. One cache per target; one thread at a time. */
#ifndef SCRAPE_APPEND_H
#define SCRAPE_APPEND_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/tsdb/labels.h"
#include "../../storage/tsdb/tsdb.h"
#include "../config.h"
#include "relabel.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What one target's scrapes share. Borrowed; must outlive the calls. */
struct scrape_input {
    const struct label *target;     /* sorted target labels (job, instance, ...) */
    size_t ntarget;
    bool honor_labels, honor_timestamps;
    const struct relabel_rules *metric_relabel;
    int64_t sample_limit, label_limit, label_name_length_limit, label_value_length_limit;
    const struct config_limits *limits; /* the server's label limits (ingest_check_labels);
                                           NULL = only the checks above */
};

/* One family's metadata as last scraped. */
struct scrape_meta {
    char *metric;
    const char *type;   /* "counter", "gauge", ... ("unknown" for untyped) */
    char *help, *unit;
};

struct scrape_cache {
    uint64_t *hashes;     /* sorted, unique */
    uint32_t *offs;       /* series i's canonical label encoding is enc.p[offs[i]..] */
    uint32_t *lens;       /* of lens[i] bytes */
    size_t n;
    struct vg_buf enc;
    uint64_t meta_hash;
    struct scrape_meta *meta;   /* vg_malloc'd, strings too */
    size_t nmeta;
};

void scrape_cache_free(struct scrape_cache *c); /* frees the contents; accepts NULL */

/* Where samples go: tsdb_append-shaped (production: ingest_store). */
typedef int (*scrape_sink_fn)(void *ctx, const struct tsdb_batch *b,
                              struct tsdb_append_result *res, struct vg_err *err);

struct scrape_report {
    bool up;
    double duration_s;        /* filled by the caller before scrape_append */
    uint64_t scraped;         /* sample lines parsed */
    uint64_t post_relabel;    /* kept after metric_relabel_configs */
    uint64_t added;           /* series not in the previous scrape */
    uint64_t stale;           /* staleness markers written */
    bool over_sample_limit;   /* failed by sample_limit (for the exceeded counter) */
    char error[256];          /* why the scrape failed ("" when up) */
};

/* Appends the outcome of one scrape at ts_ms. body NULL means the scrape itself failed
 * (rep->error says why; every previous series goes stale). openmetrics picks the
 * parser. rep->up and the counts are filled; the report series are written with them.
 * Returns 0 (even when the scrape failed: that is reported, not an error) or the
 * sink's/ VG_ENOMEM error when nothing could be stored. */
int scrape_append(const struct scrape_input *in, const char *body, size_t len, bool openmetrics,
                  int64_t ts_ms, struct scrape_cache *c, scrape_sink_fn sink, void *sink_ctx,
                  struct scrape_report *rep, struct vg_err *err);

/* The target went away (removed from the config or its discovery): staleness markers at
 * ts_ms for every series of its last scrape and for its report series; empties c. */
int scrape_append_gone(const struct scrape_input *in, int64_t ts_ms, struct scrape_cache *c,
                       scrape_sink_fn sink, void *sink_ctx, struct vg_err *err);

#endif
