/* Fuzz target for the binary OTLP export requests as the receivers unpack them:
 * pb_check_depth, then protobuf_c_message_unpack with the request arena as allocator
 * (server/pb_alloc.h) capped as for a hostile body. The first byte picks the request type
 * (0: metrics, 1: logs, 2: traces, modulo 3); the rest is the protobuf body. A decoded
 * request is packed again and encoded as JSON (the path of a JSON partial-success reply),
 * exercising otlp_json_encode on values JSON decoding cannot make. */
#include "../../server/ingest/otlp_json.h"
#include "../../server/pb_alloc.h"
#include "otlp_logs_service.pb-c.h"
#include "otlp_metrics_service.pb-c.h"
#include "otlp_trace_service.pb-c.h"

#include <stdint.h>
#include <stdlib.h>

#define ARENA_LIMIT ((size_t)8 << 20)

static const ProtobufCMessageDescriptor *const requests[3] = {
    &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
    &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor,
    &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const ProtobufCMessageDescriptor *d = requests[data[0] % 3];
    struct vg_arena *a = vg_arena_new(4096);
    if (!a)
        return 0;
    vg_arena_set_limit(a, ARENA_LIMIT);
    ProtobufCAllocator alloc;
    pb_alloc_from_arena(a, &alloc);
    struct vg_err err;
    ProtobufCMessage *m = NULL;
    /* Without the depth check a deep enough AnyValue overflows protobuf-c's stack. */
    if (pb_check_depth(d, data + 1, size - 1, PB_MAX_DEPTH, &err) == 0)
        m = protobuf_c_message_unpack(d, &alloc, size - 1, data + 1);
    if (m) {
        size_t n = protobuf_c_message_get_packed_size(m);
        uint8_t *out = vg_arena_alloc(a, n ? n : 1);
        /* pack must write exactly what get_packed_size promised. */
        if (out && protobuf_c_message_pack(m, out) != n)
            abort();
        struct vg_buf b;
        vg_buf_init(&b);
        if (otlp_json_encode(m, &b, &err) == 0) {
            ProtobufCMessage *again = NULL;
            (void)otlp_json_decode(d, b.p, b.len, a, &again, &err);
        }
        vg_buf_free(&b);
    }
    vg_arena_free(a);
    return 0;
}
