/* loki_patterns: /loki/api/v1/patterns of mod_loki_api (loki.h), the log patterns Grafana's
 * Logs Drilldown shows, and the clustering behind it.
 *
 *   GET /loki/api/v1/patterns  query (log query), start, end, since, step
 *   {"status":"success","data":[{"pattern":"<_> level=info msg=<_>",
 *                                "samples":[[<unix seconds>,<count>],...]},...]}
 *
 * Loki mines patterns in its ingesters with Drain; Vigil clusters on demand a sample of
 * the selected lines (the newest LOKI_PATTERNS_MAX_LINES, filtered by the query's
 * pipeline) with a small Drain-like scheme of its own:
 *   - a line is split into tokens at spaces, and a key=value token into "key=" and
 *     "value" (so logfmt keys stay while values vary); a token holding a digit is
 *     variable from the start (ids, times, numbers), written <_>;
 *   - lines with the same token count are compared with the clusters of that count
 *     (first token equal, or either side variable); the most similar cluster with at
 *     least LOKI_PATTERNS_MIN_SIMILARITY of its positions equal takes the line, and the
 *     positions where they differ become <_>; otherwise the line starts a cluster;
 *   - a pattern is its tokens joined by spaces, runs of <_> written once.
 * Samples count the lines of each cluster per step bucket (buckets start at multiples of
 * step; the default step follows Loki's rule), oldest first; patterns are sorted by
 * their total count, largest first.
 *
 * The clustering (struct loki_drain) is single-threaded; the handler is thread-safe. */
#ifndef LOKI_PATTERNS_H
#define LOKI_PATTERNS_H

#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_str.h"
#include "../http.h"
#include "../vigil.h"

#include <stddef.h>
#include <stdint.h>

#define LOKI_PATTERNS_MAX_LINES 5000
#define LOKI_PATTERNS_MAX_CLUSTERS 500
#define LOKI_PATTERNS_MAX_TOKENS 128 /* longer lines keep their first tokens */
#define LOKI_PATTERNS_MIN_SIMILARITY 0.5

void loki_patterns(struct vigil *v, struct http_request *req, struct http_response *resp);

struct loki_drain;

/* NULL on allocation failure. Free with loki_drain_free (accepts NULL). */
struct loki_drain *loki_drain_new(void);
void loki_drain_free(struct loki_drain *d);
/* Adds one line seen at t_ns. 0, or VG_ENOMEM. Lines past the cluster limit that match
 * no cluster are not counted. */
int loki_drain_add(struct loki_drain *d, struct vg_str line, int64_t t_ns);
/* Appends the data array ([{"pattern":..,"samples":..},...]) with samples per step_ns
 * bucket (step_ns > 0). */
void loki_drain_json(struct loki_drain *d, int64_t step_ns, struct vg_buf *out);

#endif
