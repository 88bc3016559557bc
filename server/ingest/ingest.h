/* ingest: what every metrics receiver shares after decoding: label validation against
 * the configured limits, and handing a batch to the TSDB while counting it in /metrics.
 *
 * Counted families (label "receiver" is e.g. "remote_write", "otlp_http", "otlp_grpc"):
 *   vigil_ingest_requests_total{receiver,code}
 *   vigil_ingest_samples_accepted_total{receiver}
 *   vigil_ingest_samples_rejected_total{receiver,reason}
 *   vigil_ingest_series_created_total{receiver}
 *   vigil_ingest_exemplars_accepted_total{receiver}
 *   vigil_ingest_spans_accepted_total{receiver}
 *   vigil_ingest_spans_rejected_total{receiver,reason}
 * and for the log receivers ("otlp_logs_http", "otlp_logs_grpc", "loki_push", ...):
 *   vigil_ingest_lines_accepted_total{receiver}
 *   vigil_ingest_lines_rejected_total{receiver,reason}
 *   vigil_ingest_log_bytes_accepted_total{receiver}   (lines plus metadata, lentry_bytes)
 *   vigil_ingest_streams_created_total{receiver}
 * Thread-safe. */
#ifndef INGEST_H
#define INGEST_H

#include "../../storage/base/vg_err.h"
#include "../../storage/logstore/logstore.h"
#include "../../storage/spanstore/spanstore.h"
#include "../../storage/tsdb/labels.h"
#include "../../storage/tsdb/tsdb.h"
#include "../config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vigil;

/* Rules every log receiver applies before the store (which applies the rest: line and
 * metadata sizes, label limits, the out-of-order window, retention). Entries stamped
 * more than INGEST_LOG_MAX_FUTURE_NS after their arrival are refused as
 * INGEST_REJECT_FUTURE (Loki's creation_grace_period, 10 minutes): one such entry would
 * otherwise move its stream's out-of-order window and get every later entry refused.
 * Entries before 1970 are refused as INGEST_REJECT_TOO_OLD (the store's own name). */
#define INGEST_LOG_MAX_FUTURE_NS (10LL * 60 * 1000000000)
#define INGEST_REJECT_FUTURE "too_far_in_future"
#define INGEST_REJECT_TOO_OLD "too_old"

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
/* ingest_store with the canonical label encodings of tsdb_append_enc (enc may be NULL). */
int ingest_store_enc(struct vigil *v, const char *receiver, const struct tsdb_batch *batch,
                     const struct vg_str *enc, struct tsdb_append_result *res,
                     struct vg_err *err);

/* Counts log entries refused before they reached the store, by reason. */
void ingest_count_lines_rejected(struct vigil *v, const char *receiver, const char *reason,
                                 uint64_t n);

/* Runs the global `log_processors` chain (logproc.h; records it drops are counted there,
 * not as rejected), then pushes the rest to v->logs (logstore_push) and counts the
 * outcome for receiver. streams is never modified. Returns
 * 0 when the push went through, res telling what was stored and what refused (err then
 * holds the first refusal's message, if any), or VG_EIO / VG_ENOMEM with err filled when
 * nothing was stored (all entries counted as rejected{reason="storage_error"}). */
int ingest_store_logs(struct vigil *v, const char *receiver,
                      const struct logstore_stream_in *streams, size_t nstreams,
                      struct logstore_push_result *res, struct vg_err *err);

/* Counts spans refused before they reached the span store, by reason. */
void ingest_count_spans_rejected(struct vigil *v, const char *receiver, const char *reason,
                                 uint64_t n);

/* Samples spans (sampling.h: what head and tail sampling keep; every span still feeds
 * the derived data once the write succeeded), writes the kept ones to v->traces
 * (spanstore_write) and counts the outcome for receiver: spans
 * stored as accepted, spans the store refused as rejected{reason="invalid_span"}, all of
 * them as rejected{reason="storage_error"} when the write fails. Same return as
 * spanstore_write; res filled. */
int ingest_store_spans(struct vigil *v, const char *receiver, const struct span *spans,
                       size_t n, struct spanstore_write_result *res, struct vg_err *err);
/* What ingest_store_spans does after sampling: spanstore_write and the counting, with no
 * sampling and no derived data (the tail sampler writes the traces it kept with it). */
int ingest_write_spans(struct vigil *v, const char *receiver, const struct span *spans,
                       size_t n, struct spanstore_write_result *res, struct vg_err *err);

#endif
