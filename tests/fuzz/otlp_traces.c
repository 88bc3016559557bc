/* Fuzz target for the OTLP traces translation (server/ingest/otlp_traces.c) as the
 * receiver runs it, in both directions: the body is OTLP/JSON when its first byte is '{'
 * (or whitespace), else protobuf (pb_check_depth, unpack into a capped arena);
 * otlp_traces_translate under tight limits so every refusal path runs; then every kept
 * span must pass span_validate and encode, and the kept spans go back through
 * otlp_traces_from_spans to JSON and protobuf as the Tempo API sends them. */
#include "../../server/ingest/otlp_json.h"
#include "../../server/ingest/otlp_receiver.h"
#include "../../server/ingest/otlp_traces.h"

#include "traces_limits.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Kept spans are valid for the store and survive the reverse translation. */
static void check(const struct otlp_traces_result *res, struct vg_arena *a)
{
    struct vg_err err;
    struct vg_buf b;
    vg_buf_init(&b);
    for (size_t i = 0; i < res->n; i++) {
        if (span_validate(&res->spans[i], &err) < 0)
            abort();
        vg_buf_reset(&b);
        if (span_encode(&res->spans[i], &b, &err) < 0 && err.code != VG_ENOMEM)
            abort();
    }
    if (res->n + res->rejected != res->received)
        abort();
    otlp_traces_request *back;
    if (otlp_traces_from_spans(res->spans, res->n, a, &back, &err) == 0) {
        vg_buf_reset(&b);
        otlp_json_encode(&back->base, &b, &err);
        vg_buf_reset(&b);
        otlp_receiver_encode(&back->base, false, &b, &err);
    }
    vg_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bool json = size > 0 && (data[0] == '{' || data[0] == ' ' || data[0] == '\n');
    struct vg_arena *a = vg_arena_new(4096);
    if (!a)
        return 0;
    vg_arena_set_limit(a, FUZZ_TRACES_ARENA_LIMIT);
    struct vg_err err;
    ProtobufCMessage *m;
    if (otlp_receiver_decode(
            &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
            data, size, json, a, 4, &m, &err) == 0) {
        struct otlp_traces_result res;
        if (otlp_traces_translate((const otlp_traces_request *)m, fuzz_traces_config(), a, &res,
                                  &err) == 0)
            check(&res, a);
    }
    vg_arena_free(a);
    return 0;
}
