/* self_metrics: GET /metrics, Vigil's own metrics in the text format 0.0.4.
 *
 * The module's init registers collectors on v->metrics for figures read at render time:
 * TSDB statistics (vigil_tsdb_*), the live heap (vigil_heap_live_bytes), the process
 * (process_* from /proc/self, as Prometheus's Go client names them) and
 * vigil_build_info{version}. The handler renders v->metrics and is thread-safe (the
 * registry serialises renders). */
#ifndef SELF_METRICS_H
#define SELF_METRICS_H

#include "../../storage/base/vg_buf.h"
#include "../vigil.h"

extern const struct vigil_module mod_self_metrics;

/* The process collector, exported for tests: appends process_* families read from
 * /proc/self (nothing where /proc is missing). ctx is unused. */
void self_metrics_collect_process(void *ctx, struct vg_buf *out);

#endif
