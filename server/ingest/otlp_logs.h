/* otlp_logs: the OTLP logs receiver (OTLP 1.x), over HTTP and gRPC, into the log store.
 *
 *   POST /v1/logs   Content-Type application/x-protobuf or application/json (gzip is
 *                   undone by the HTTP front end); the response is an
 *                   ExportLogsServiceResponse in the request's encoding.
 *   gRPC /opentelemetry.proto.collector.logs.v1.LogsService/Export
 *
 * Mapping to streams and entries, as Loki's OTLP endpoint does it (Loki docs, "Ingesting
 * logs to Loki using OpenTelemetry", Format considerations), so LogQL written for Loki
 * finds the same streams and fields:
 *   - Stream labels: the resource attributes whose key is in OTLP_LOGS_RESOURCE_LABELS
 *     (Loki's default_resource_attributes_as_index_labels, plus the newer semantic
 *     conventions' deployment.environment.name) or in the config list
 *     logs.otlp_resource_labels. Names are normalised as for Prometheus labels
 *     (otlp_names_label: every character outside [a-zA-Z0-9] becomes "_", so
 *     service.name -> service_name, k8s.pod.name -> k8s_pod_name); values are the
 *     attribute's text (otlp_names_value: OpenTelemetry's AsString). Empty values are
 *     left out. A resource without service.name gets service_name="unknown_service", as
 *     Loki does, so every stream has a label to select it by.
 *   - Line: the body; a string body as it is, any other body as otlp_names_value writes
 *     it (maps and arrays as JSON, numbers and booleans as text); no body, "".
 *   - Time: time_unix_nano, else observed_time_unix_nano, else the receive time.
 *   - Structured metadata, in this order (a later pair replaces an earlier one with the
 *     same name, so the record's own attributes win):
 *       the other resource attributes;
 *       scope_name, scope_version, the scope's attributes;
 *       severity_text, severity_number (decimal, when not 0), detected_level (below),
 *       trace_id and span_id (lowercase hex), flags (decimal, when not 0),
 *       observed_timestamp (decimal ns, when both times are set, as Loki keeps it),
 *       event_name, dropped_attributes_count (when not 0);
 *       the record's attributes.
 *     Attribute names are normalised like label names; a map-valued attribute is
 *     flattened into one pair per leaf, its keys joined with "_" (as Loki and LogQL's
 *     json parser do: {"http": {"method": "GET"}} -> http_method="GET"); other values
 *     as their AsString text. A key with nothing valid left is skipped.
 *   - detected_level (Loki's name for the level Grafana's Logs Drilldown groups by):
 *     from severity_number's range (1-4 trace, 5-8 debug, 9-12 info, 13-16 warn,
 *     17-20 error, 21-24 fatal), else from severity_text compared case-insensitively
 *     (trace; debug; info, information, informational, notice -> info; warn, warning
 *     -> warn; error, err -> error; critical, crit -> critical; fatal, panic, emerg,
 *     emergency, alert -> fatal), else not set. severity_text itself is kept as sent.
 *
 * Records refused here: a time more than INGEST_LOG_MAX_FUTURE_NS after the receive time
 * ("too_far_in_future") or a time_unix_nano past INT64_MAX ns. The store refuses what
 * crosses its limits (line size, metadata, labels, out-of-order window, retention). Both
 * are reported as OTLP partial success {rejected_log_records, error_message} with status
 * 200 / OK; the accepted rest is stored. A body that does not decode stores nothing and
 * gets 400 / INVALID_ARGUMENT; over the memory cap 413 / RESOURCE_EXHAUSTED; storage
 * failure 503 / UNAVAILABLE with Retry-After (clients retry). HTTP error bodies are a
 * google.rpc.Status in the request's encoding (otlp_receiver.h).
 *
 * Counted as receivers "otlp_logs_http" and "otlp_logs_grpc" (ingest.h: requests, lines
 * accepted and rejected by reason, bytes, streams created). Handlers are thread-safe. */
#ifndef OTLP_LOGS_H
#define OTLP_LOGS_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/logstore/logstore.h"
#include "../vigil.h"

#include "otlp_logs_service.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest otlp_logs_request;

#define OTLP_LOGS_ARENA_FACTOR 4 /* arena cap = factor x limits.max_decoded_bytes */

/* The built-in resource attributes that become stream labels (NULL-terminated). */
extern const char *const OTLP_LOGS_RESOURCE_LABELS[];

struct otlp_logs_opts {
    char *const *resource_labels; /* more attribute keys made labels (the config list) */
    size_t nresource_labels;
    int64_t now_ns;               /* receive time: the time of records without one */
    int64_t max_future_ns;        /* records later than now_ns + this are refused */
};

/* What otlp_logs_translate hands to the store. Everything lives in the arena and points
 * into the request where it can (so the request must outlive it). */
struct otlp_logs_batch {
    struct logstore_stream_in *streams; /* one per resource with accepted records */
    size_t nstreams;
    uint64_t records;   /* log records in the request */
    uint64_t rejected;  /* refused here, by reason below */
    uint64_t rejected_future;
    char reason[256];   /* the first refusal, "" if none */
};

/* Decodes an ExportLogsServiceRequest (protobuf, or OTLP/JSON when json) into arena a,
 * which should be capped by the caller. 0 with *out set, or VG_EINVAL (malformed),
 * VG_ETOOLARGE (the arena's cap), VG_ENOMEM, err naming what. Pure; thread-safe. */
int otlp_logs_decode(const void *body, size_t len, bool json, struct vg_arena *a,
                     otlp_logs_request **out, struct vg_err *err);

/* Maps a decoded request to streams and entries as described above. Labels are sorted
 * and unique; entries keep the request's order. 0, or VG_ENOMEM when a refused memory
 * (its cap, or vg_malloc failing). Pure (no store, no clock: o->now_ns); thread-safe. */
int otlp_logs_translate(const otlp_logs_request *req, const struct otlp_logs_opts *o,
                        struct vg_arena *a, struct otlp_logs_batch *out, struct vg_err *err);

/* Handles one export request body for receiver (its name in /metrics), allocating from
 * a. Returns 0 and appends the encoded response to out, or a vg_code with err filled
 * (nothing stored). */
int otlp_logs_export(struct vigil *v, const char *receiver, const void *body, size_t len,
                     bool json, struct vg_arena *a, struct vg_buf *out, struct vg_err *err);

/* The gRPC Export method (grpc_unary_fn). */
int otlp_logs_grpc_export(struct vigil *v, const unsigned char *req, size_t len,
                          struct vg_buf *resp, struct vg_err *err);

extern const struct vigil_module mod_otlp_logs;

#endif
