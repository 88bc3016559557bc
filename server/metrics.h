/* metrics: Vigil's own metrics, rendered at GET /metrics in the Prometheus text format.
 *
 * A family has a name, help, type and fixed label names; children are created on first
 * use per label-value tuple. Updating a child is thread-safe (a mutex per family; the hot
 * path is a hash lookup and an add). Collectors registered with metrics_add_collector are
 * called at render time to report values read from elsewhere (store sizes, live heap).
 * The registry is created by vigil_start and freed at stop; families live as long. */
#ifndef METRICS_H
#define METRICS_H

#include "../storage/base/vg_buf.h"

#include <stddef.h>

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

struct metrics;
struct metric_family;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* Registers (or returns the already registered) family. label_names has nlabels entries
 * (may be NULL when 0). buckets (upper bounds, ascending, +Inf implied) only for
 * histograms; NULL selects the default request-duration buckets. */
struct metric_family *metrics_family(struct metrics *m, const char *name, const char *help,
                                     enum metric_type type, const char *const *label_names,
                                     size_t nlabels, const double *buckets, size_t nbuckets);

/* Label values follow in the family's label order, exactly nlabels of them. */
void metric_add(struct metric_family *f, double delta, ...);
void metric_set(struct metric_family *f, double value, ...);
void metric_observe(struct metric_family *f, double value, ...);

/* A collector appends complete exposition text (with # HELP / # TYPE) to out. */
typedef void (*metrics_collector_fn)(void *ctx, struct vg_buf *out);
void metrics_add_collector(struct metrics *m, metrics_collector_fn fn, void *ctx);

/* Appends the whole registry in the text format 0.0.4. */
void metrics_render(struct metrics *m, struct vg_buf *out);

#endif
