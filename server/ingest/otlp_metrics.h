/* otlp_metrics: the OTLP metrics receiver (OTLP 1.x), over HTTP and gRPC.
 *
 *   POST /v1/metrics   Content-Type application/x-protobuf or application/json (gzip is
 *                      undone by the HTTP front end); the response is an
 *                      ExportMetricsServiceResponse in the request's encoding.
 *   gRPC /opentelemetry.proto.collector.metrics.v1.MetricsService/Export
 *
 * Both go through otlp_metrics_export: decode (protobuf-c or otlp_json, into the request
 * arena capped at 4 x limits.max_decoded_bytes) -> otlp_translate -> ingest_store ->
 * response. Data points refused by the translation (otlp_translate.h) or samples refused
 * by the store are reported as OTLP partial success {rejected_data_points, error_message}
 * with status 200 / OK; the accepted rest is stored. A body that does not decode stores
 * nothing and gets 400 / INVALID_ARGUMENT; over the memory cap 413 / RESOURCE_EXHAUSTED;
 * storage failure 503 / UNAVAILABLE (clients retry). HTTP error bodies are a
 * google.rpc.Status {code, message} in the request's encoding, as the OTLP/HTTP
 * specification asks (plain text when the encoding itself is refused: 415).
 *
 * Counted as receivers "otlp_http" and "otlp_grpc" (ingest.h); refused points as
 * vigil_ingest_samples_rejected_total{reason=otlp_reject_name(...)} (one per data point).
 * With otlp_delta = accumulate, init creates the delta state in v->otlp_state, sized by
 * otlp.delta_max_series and otlp.delta_idle_timeout.
 * Handlers are thread-safe. */
#ifndef OTLP_METRICS_H
#define OTLP_METRICS_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"
#include "../vigil.h"

#include <stdbool.h>
#include <stddef.h>

#define OTLP_METRICS_ARENA_FACTOR 4 /* arena cap = factor x limits.max_decoded_bytes */

/* Handles one export request body (protobuf, or OTLP/JSON when json). receiver names it
 * in /metrics. Allocations come from a (capped while this runs). Returns 0 and appends the
 * encoded response to out, or a vg_code with err filled (nothing stored unless the code
 * is VG_EIO from the store, which stores nothing either). */
int otlp_metrics_export(struct vigil *v, const char *receiver, const void *body, size_t len,
                        bool json, struct vg_arena *a, struct vg_buf *out, struct vg_err *err);

/* The gRPC Export method (grpc_unary_fn). */
int otlp_metrics_grpc_export(struct vigil *v, const unsigned char *req, size_t len,
                             struct vg_buf *resp, struct vg_err *err);

extern const struct vigil_module mod_otlp_metrics;

#endif
