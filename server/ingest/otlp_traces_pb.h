/* otlp_traces_pb: a one-pass, zero-copy reader of a protobuf ExportTraceServiceRequest
 * straight into the span store's model (span.h), for the OTLP traces receiver's hot path.
 *
 * It gives exactly what protobuf-c unpacking (after pb_check_depth) followed by
 * otlp_traces_translate gives, or declines: the result's strings and ids point into the
 * body (cut at the first NUL as protobuf-c's C strings are), everything else comes from
 * the arena. Whatever it is not sure to read the way protobuf-c does, it declines rather
 * than guesses, and the caller takes the protobuf-c path, which then also gives the exact
 * error for a malformed body. It declines on: any malformed field (truncated, a varint or
 * length longer than protobuf-c reads, a tag of field 0 or past 2^29, groups, wire types
 * 6 and 7), a known field with a wire type other than its declared one, a singular
 * message field (resource, scope, status, KeyValue.value) or an AnyValue's oneof given
 * more than once (protobuf-c merges those), a resource with entity_refs, an array or
 * key/value list value that is too deep or does not unpack, and arena exhaustion.
 * Array and key/value list values are unpacked and packed again with protobuf-c, as the
 * translation does, so their stored blobs are byte for byte the same.
 *
 * Thread-safe: no state beyond the arguments. */
#ifndef OTLP_TRACES_PB_H
#define OTLP_TRACES_PB_H

#include "../../storage/base/vg_arena.h"
#include "../config.h"
#include "otlp_traces.h"

#include <stddef.h>
#include <stdint.h>

/* Reads body under cfg's traces.* limits into *res (allocations from a; strings borrow
 * from body, which must outlive *res). Returns 0 with *res filled as
 * otlp_traces_translate would fill it, or 1 when it declines (see the top: *res is then
 * meaningless and a may hold some of its allocations). */
int otlp_traces_pb_read(const struct config *cfg, const uint8_t *body, size_t len,
                        struct vg_arena *a, struct otlp_traces_result *res);

#endif
