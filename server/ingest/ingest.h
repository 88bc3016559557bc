/* ingest: what every metrics receiver shares after decoding: label validation against
 * the configured limits, and handing a batch to the TSDB while counting it in /metrics.
 *
 * Counted families (label "receiver" is e.g. "remote_write", "otlp_http", "otlp_grpc"):
 *   vigil_ingest_requests_total{receiver,code}
 *   vigil_ingest_samples_accepted_total{receiver}
 *   vigil_ingest_samples_rejected_total{receiver,reason}
 *   vigil_ingest_series_created_total{receiver}
 *   vigil_ingest_exemplars_accepted_total{receiver}
 * Thread-safe. */
#ifndef INGEST_H
#define INGEST_H

#include "../../storage/base/vg_err.h"
#include "../../storage/tsdb/labels.h"
#include "../../storage/tsdb/tsdb.h"
#include "../config.h"

#include <stdbool.h>
#include <stddef.h>

struct vigil;

/* Legacy Prometheus name rules: metric [a-zA-Z_:][a-zA-Z0-9_:]*, label [a-zA-Z_][a-zA-Z0-9_]*. */
bool ingest_valid_metric_name(struct vg_str s);
bool ingest_valid_label_name(struct vg_str s);
/* True if s is valid UTF-8. */
bool ingest_valid_utf8(struct vg_str s);

/* Normalises and validates one series' labels in place: drops labels with empty values
 * (Prometheus treats them as absent), sorts, and checks: __name__ present and valid, label
 * names valid and unique, values valid UTF-8, count and lengths within lim. Returns the
 * new count (>= 1) or a negative vg_code with err naming the offending label. */
int ingest_check_labels(const struct config_limits *lim, struct label *ls, size_t n,
                        struct vg_err *err);

/* Creates the families above in v->metrics; called once by vigil_start. */
int ingest_metrics_init(struct vigil *v, struct vg_err *err);
void ingest_metrics_free(struct vigil *v);

/* Counts a finished request (HTTP status or gRPC code as text) for receiver. */
void ingest_count_request(struct vigil *v, const char *receiver, int code);
/* Counts samples rejected before they reached the store (validation), by reason. */
void ingest_count_rejected(struct vigil *v, const char *receiver, const char *reason, uint64_t n);

/* Appends batch to the TSDB and counts the outcome for receiver. Same return as
 * tsdb_append; res filled. */
int ingest_store(struct vigil *v, const char *receiver, const struct tsdb_batch *batch,
                 struct tsdb_append_result *res, struct vg_err *err);

#endif
