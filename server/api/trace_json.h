/* trace_json: small JSON writers for the trace query APIs (Tempo search, Jaeger), over
 * the span store's model (storage/spanstore/span.h).
 *
 * Formats, as OTLP/JSON (protojson) and Tempo write them:
 *   ids          lowercase hex; trace ids optionally without leading zeros, as Tempo's
 *                search results print them ("463ac35c9f6413ad", never "" for a valid id)
 *   AnyValue     {"stringValue":"s"} {"intValue":"-3"} (64-bit integers as strings)
 *                {"doubleValue":1.5} ("NaN", "Infinity", "-Infinity" as strings)
 *                {"boolValue":true}; BYTES as {"bytesValue":"<base64>"}; arrays and maps
 *                (kept as opaque protobuf blobs) have no JSON form here
 *   KeyValue     {"key":"k","value":<AnyValue>}
 * Thread-safe: pure writers; a failed buffer is left marked failed (vg_buf). */
#ifndef TRACE_JSON_H
#define TRACE_JSON_H

#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_str.h"
#include "../../storage/spanstore/span.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Appends the quoted lowercase hex of id[0..n); with trim, leading zero digits are left
 * out (one digit stays for an all-zero id). */
void trace_json_hex(struct vg_buf *b, const uint8_t *id, size_t n, bool trim);

/* Appends a's value as an OTLP/JSON AnyValue. False (nothing appended) for ARRAY and
 * MAP. */
bool trace_json_value(struct vg_buf *b, const struct span_attr *a);

/* Appends {"key":key,"value":...} for a (false and nothing appended when its value has
 * no JSON form). */
bool trace_json_keyvalue(struct vg_buf *b, struct vg_str key, const struct span_attr *a);

/* Appends a 64-bit integer as a quoted decimal string ("123"), as protojson writes
 * int64/uint64 fields. */
void trace_json_i64(struct vg_buf *b, int64_t v);

#endif
