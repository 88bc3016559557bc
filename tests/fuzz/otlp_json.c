/* Fuzz target for server/ingest/otlp_json.c. The first byte picks the request type
 * (0: metrics, 1: logs, 2: traces, taken modulo 3 so the ASCII digits '0'..'2' work in
 * hand-written seeds); the rest is the JSON body. Every decoded request is packed (as the
 * OTLP forwarder would) and encoded back to JSON, and that JSON must decode again: the
 * encoder may only write what the decoder accepts. */
#include "../../server/ingest/otlp_json.h"
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

static void check_round_trip(const ProtobufCMessageDescriptor *d, const ProtobufCMessage *m)
{
    struct vg_arena *a = vg_arena_new(4096);
    struct vg_buf b;
    struct vg_err err;
    vg_buf_init(&b);
    uint8_t *packed = vg_arena_alloc(a, protobuf_c_message_get_packed_size(m));
    if (packed)
        protobuf_c_message_pack(m, packed);
    if (otlp_json_encode(m, &b, &err) == 0) {
        ProtobufCMessage *again = NULL;
        vg_arena_set_limit(a, vg_arena_used(a) + ARENA_LIMIT);
        if (otlp_json_decode(d, b.p, b.len, a, &again, &err) != 0)
            abort(); /* the encoder wrote JSON its own decoder refuses */
    }
    vg_buf_free(&b);
    vg_arena_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const ProtobufCMessageDescriptor *d = requests[data[0] % 3];
    struct vg_arena *a = vg_arena_new(4096);
    if (!a)
        return 0;
    vg_arena_set_limit(a, ARENA_LIMIT);
    ProtobufCMessage *m = NULL;
    struct vg_err err;
    if (otlp_json_decode(d, (const char *)data + 1, size - 1, a, &m, &err) == 0)
        check_round_trip(d, m);
    vg_arena_free(a);
    return 0;
}
