/* otlp_json: OTLP/JSON <-> protobuf-c messages, driven by the message descriptors, so one
 * codec serves metrics, logs and traces (OTLP specification, "JSON Protobuf Encoding").
 *
 * Decoding follows the proto3 JSON mapping with OTLP's deviations:
 *   - keys are lowerCamelCase field names; the original snake_case names are accepted too;
 *   - bytes fields named trace_id (16 bytes), span_id and parent_span_id (8 bytes) are hex
 *     strings (either case) or ""; every other bytes field is base64 (standard or
 *     URL-safe alphabet, padding optional);
 *   - 64-bit integers are decimal strings or JSON numbers; 32-bit ones numbers or strings;
 *   - enums are integers or their value names ("AGGREGATION_TEMPORALITY_CUMULATIVE");
 *   - floating point fields are numbers or the strings "NaN", "Infinity", "-Infinity";
 *   - unknown keys are ignored; a null value is treated as an absent field;
 *   - two members of one oneof in the same object are rejected.
 * Encoding writes the same mapping back: camelCase keys, default values omitted, 64-bit
 * integers as strings, enums as integers, ids as lowercase hex, other bytes as base64.
 *
 * Pure functions over bytes: no HTTP, no storage. Thread-safe (no shared state). */
#ifndef OTLP_JSON_H
#define OTLP_JSON_H

#include "../../storage/base/vg_arena.h"
#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_err.h"

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

/* Deepest JSON nesting (objects plus arrays) accepted. A full OTLP metrics request with
 * exemplar attributes needs about 16; the rest leaves room for nested AnyValue lists while
 * keeping both jansson's and our recursion shallow. */
#define OTLP_JSON_MAX_DEPTH 64
/* Largest JSON body accepted at all, whatever the receiver's own body limit says: the
 * jansson tree is built on the libc heap and costs several times the input. */
#define OTLP_JSON_MAX_BYTES ((size_t)64 << 20)

/* Decodes the JSON object buf[0..len) into a new message of type d. The message and
 * everything it points to come from arena a (freed with it; never call
 * protobuf_c_message_free_unpacked on it). On success returns 0 and sets *out. On failure
 * returns a negative vg_code, sets *out to NULL and fills err:
 *   VG_EINVAL    syntax error ("line L, column C: ..."), nesting deeper than
 *                OTLP_JSON_MAX_DEPTH, or a value of the wrong type or range; the message
 *                starts with the JSON path, e.g.
 *                "resourceMetrics[0].scopeMetrics[1].metrics[0].gauge.dataPoints[3]
 *                .timeUnixNano: expected an integer, got an object";
 *   VG_ETOOLARGE len > OTLP_JSON_MAX_BYTES, or the arena refused an allocation (its limit);
 *   VG_ENOMEM    jansson ran out of memory. */
int otlp_json_decode(const ProtobufCMessageDescriptor *d, const char *buf, size_t len,
                     struct vg_arena *a, ProtobufCMessage **out, struct vg_err *err);

/* Appends m as one JSON object to out (which keeps what it held). Returns 0, or VG_ENOMEM
 * when out could not grow, or VG_EINTERNAL for a field type this codec does not know. */
int otlp_json_encode(const ProtobufCMessage *m, struct vg_buf *out, struct vg_err *err);

#endif
