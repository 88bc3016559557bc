/* otlp_traces: OTLP traces to and from the span store's model (storage/spanstore/span.h),
 * and the OTLP traces receiver (OTLP 1.x) over HTTP and gRPC.
 *
 *   POST /v1/traces   Content-Type application/x-protobuf or application/json (gzip is
 *                     undone by the HTTP front end); the response is an
 *                     ExportTraceServiceResponse in the request's encoding.
 *   gRPC /opentelemetry.proto.collector.trace.v1.TraceService/Export
 *
 * Translation (otlp_traces_translate) is per span: a span is kept whole or refused with a
 * reason, and the rest of the request still goes in (OTLP partial success). A span is
 * refused when its trace id is not 16 bytes or all zero, its span id not 8 bytes or all
 * zero, its parent span id neither empty nor 8 bytes, its start time is 0 or after its end
 * time or past 2^63 ns, a link id has the wrong length, kind or status is out of range, an
 * attribute list (resource, scope, span, event or link) holds more than
 * traces.max_attributes entries or one attribute's key plus value exceeds
 * traces.max_attribute_bytes, or it comes after traces.max_spans_per_request spans.
 * Attribute values keep their type; arrays and key/value lists are kept as the protobuf
 * encoding of an OTLP ArrayValue / KeyValueList (the opaque blobs of span.h), so the
 * reverse translation gives them back unchanged. Attributes without a value are dropped
 * and counted in the list's dropped count. The resource's service.name (a string) becomes
 * the span's service; the resource attributes are kept whole, service.name included.
 * Schema URLs and the scope's dropped-attribute count are not kept.
 *
 * The reverse (otlp_traces_from_spans) groups stored spans by resource (service, resource
 * attributes, dropped count) and, within it, by scope (name, version, attributes), both in
 * order of first appearance, spans in the order given; Status is left out when it is
 * UNSET with no message.
 *
 * Receiver: decode (into the request arena, capped at OTLP_TRACES_ARENA_FACTOR x
 * limits.max_decoded_bytes) -> translate -> ingest_store_spans -> response. A protobuf
 * body is read in one pass by otlp_traces_pb.h straight into spans (the same result as
 * the two steps); what that reader declines, and OTLP/JSON, takes protobuf-c (or the
 * JSON decoder) and otlp_traces_translate. Response: 200 / OK with
 * partial_success {rejected_spans, error_message} when spans were refused; 400 /
 * INVALID_ARGUMENT (nothing stored) for a body that does not decode; 413 /
 * RESOURCE_EXHAUSTED over the memory cap; 503 / UNAVAILABLE with Retry-After when the
 * store fails. HTTP error bodies are a google.rpc.Status (otlp_receiver.h). Counted as
 * receivers "otlp_traces_http" and "otlp_traces_grpc": vigil_ingest_requests_total,
 * vigil_ingest_spans_accepted_total, vigil_ingest_spans_rejected_total{reason=
 * otlp_traces_reject_name(...)}. Everything here is thread-safe. */
#ifndef OTLP_TRACES_H
#define OTLP_TRACES_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"
#include "../../storage/spanstore/span.h"
#include "../config.h"
#include "../vigil.h"

#include "otlp_trace_service.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define OTLP_TRACES_ARENA_FACTOR 4 /* arena cap = factor x limits.max_decoded_bytes */

/* Why a span was refused; names are the "reason" label in /metrics. Shared with the
 * Zipkin receiver (zipkin.h). */
enum otlp_traces_reject {
    OTLP_TRACES_REJECT_TRACE_ID,   /* "invalid_trace_id": wrong length or all zero */
    OTLP_TRACES_REJECT_SPAN_ID,    /* "invalid_span_id": wrong length or all zero */
    OTLP_TRACES_REJECT_PARENT_ID,  /* "invalid_parent_span_id": not empty nor 8 bytes */
    OTLP_TRACES_REJECT_TIMESTAMPS, /* "invalid_timestamps": missing, end < start, > 2^63 */
    OTLP_TRACES_REJECT_ATTR_COUNT, /* "too_many_attributes" (traces.max_attributes) */
    OTLP_TRACES_REJECT_ATTR_SIZE,  /* "attribute_too_large" (traces.max_attribute_bytes) */
    OTLP_TRACES_REJECT_SPAN_LIMIT, /* "too_many_spans" (traces.max_spans_per_request) */
    OTLP_TRACES_REJECT_MALFORMED,  /* "malformed_span": enum out of range, bad link id, ... */
    OTLP_TRACES_REJECT_COUNT
};
const char *otlp_traces_reject_name(enum otlp_traces_reject r);

struct otlp_traces_result {
    struct span *spans; /* kept spans, in request order; everything in the arena */
    size_t n;
    uint64_t received;  /* spans seen */
    uint64_t rejected;  /* spans refused */
    uint64_t rejected_by[OTLP_TRACES_REJECT_COUNT];
    char reason[256];   /* the first refused span's reason; "" when none */
};

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest
    otlp_traces_request;

/* Translates req under cfg's traces.* limits. Every allocation comes from a; strings of
 * the result borrow from req (keep it alive). Returns 0 with *res filled (refusals are
 * not an error), or VG_ENOMEM when a is exhausted (nothing usable in *res). */
int otlp_traces_translate(const otlp_traces_request *req, const struct config *cfg,
                          struct vg_arena *a, struct otlp_traces_result *res,
                          struct vg_err *err);

/* ---- shared with other span receivers ---- */

/* Prepares res for up to max spans (array from a). 0 or VG_ENOMEM. */
int otlp_traces_result_init(struct otlp_traces_result *res, size_t max, struct vg_arena *a,
                            struct vg_err *err);

/* Checks a translated span against what the store needs and cfg's attribute limits.
 * Returns -1 when it may be kept, else the reason, with why = "<where>: <what is wrong>"
 * naming the limit crossed (where NULL: why is only what is wrong). */
int otlp_traces_check(const struct config *cfg, const struct span *s, const char *where,
                      char *why, size_t cap);

/* Counts a refused span in res (keeping the first reason). */
void otlp_traces_refuse(struct otlp_traces_result *res, enum otlp_traces_reject r,
                        const char *why);

/* otlp_traces_check in two steps, for spans sharing a resource and scope: the verdict on
 * the resource and scope attribute lists (-1 or the reason, why without a "where"),
 * once; then the span's own checks, which give that verdict (prefixed with where) in
 * its place in the order. Same results as otlp_traces_check. */
int otlp_traces_check_shared(const struct config *cfg, const struct span *s, char *why,
                             size_t cap);
int otlp_traces_check_with(const struct config *cfg, const struct span *s, const char *where,
                           int shared, const char *shared_why, char *why, size_t cap);

/* The checks made on a span's wire fields before anything else, in this order: trace id
 * 16 bytes, span id 8, parent span id empty or 8, start and end within int64. Returns -1
 * or the reason, with why filled (the same words for every OTLP decoder). */
int otlp_traces_check_head(size_t trace_id_len, size_t span_id_len, size_t parent_len,
                           uint64_t start, uint64_t end, char *why, size_t cap);
/* Event i's time within int64; link i's ids 16 and 8 bytes. -1 or the reason. */
int otlp_traces_check_event(size_t i, uint64_t time, char *why, size_t cap);
int otlp_traces_check_link(size_t i, size_t trace_id_len, size_t span_id_len, char *why,
                           size_t cap);

/* Refuses span k of scope spans j of resource spans i: reason reject, why prefixed with
 * the span's path; or as past traces.max_spans_per_request (total spans in the request). */
void otlp_traces_refuse_at(struct otlp_traces_result *res, size_t i, size_t j, size_t k,
                           int reject, const char *why);
void otlp_traces_refuse_limit(struct otlp_traces_result *res, size_t i, size_t j, size_t k,
                              size_t total, size_t max);

/* The resource's service.name among its attributes when it is a string, else "". */
struct vg_str otlp_traces_service_of(const struct span_attr *at, size_t n);

/* Counts res's refusals for receiver in /metrics. */
void otlp_traces_count_refused(struct vigil *v, const char *receiver,
                               const struct otlp_traces_result *res);

/* Parses 1 to 2 x n hex digits (either case) right-aligned into out[n], zero-padded on
 * the left as Zipkin and Tempo treat short (64-bit) trace ids. False when s is empty,
 * too long or not hex (out then undefined). */
bool otlp_traces_parse_id(const char *s, size_t len, uint8_t *out, size_t n);

/* ---- the reverse: stored spans to OTLP ---- */

/* Builds an ExportTraceServiceRequest (field for field the same message as TracesData
 * and Tempo's Trace) from n spans. Everything comes from a; bytes borrow from spans.
 * 0 or VG_ENOMEM. */
int otlp_traces_from_spans(const struct span *spans, size_t n, struct vg_arena *a,
                           otlp_traces_request **out, struct vg_err *err);

/* ---- receiver ---- */

/* Decodes one export request body (protobuf, or OTLP/JSON when json) and translates it
 * under cfg's limits: what otlp_traces_export does before the store. Allocations come
 * from a, capped at OTLP_TRACES_ARENA_FACTOR x limits.max_decoded_bytes while this runs.
 * Returns 0 with *tr filled (spans borrow from body and a), or VG_EINVAL (does not
 * decode), VG_ETOOLARGE (over the cap), VG_ENOMEM, with err filled. */
int otlp_traces_decode(const struct config *cfg, const void *body, size_t len, bool json,
                       struct vg_arena *a, struct otlp_traces_result *tr, struct vg_err *err);

/* Handles one export request body (protobuf, or OTLP/JSON when json); receiver names it
 * in /metrics. Allocations come from a (capped while this runs). Returns 0 and appends
 * the encoded ExportTraceServiceResponse to out, or a vg_code with err filled (nothing
 * stored). */
int otlp_traces_export(struct vigil *v, const char *receiver, const void *body, size_t len,
                       bool json, struct vg_arena *a, struct vg_buf *out, struct vg_err *err);

/* The gRPC Export method (grpc_unary_fn). */
int otlp_traces_grpc_export(struct vigil *v, const unsigned char *req, size_t len,
                            struct vg_buf *resp, struct vg_err *err);

extern const struct vigil_module mod_otlp_traces;

#endif
