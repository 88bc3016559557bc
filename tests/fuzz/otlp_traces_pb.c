/* Fuzz target for the one-pass OTLP traces reader (server/ingest/otlp_traces_pb.c)
 * against the path it stands in for: protobuf-c (pb_check_depth, unpack into a capped
 * arena) then otlp_traces_translate, under tight limits so every refusal path runs. When
 * the reader takes a body, protobuf-c must take it too and both results must be equal:
 * counts, first reason, and every kept span byte for byte in the span store's encoding.
 * When protobuf-c refuses a body, the reader must have declined it. */
#include "../../server/ingest/otlp_receiver.h"
#include "../../server/ingest/otlp_traces.h"
#include "../../server/ingest/otlp_traces_pb.h"
#include "fuzz_check.h"

#include "traces_limits.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void same_span(const struct span *x, const struct span *y)
{
    struct vg_buf bx, by;
    struct vg_err err;
    vg_buf_init(&bx);
    vg_buf_init(&by);
    int rx = span_encode(x, &bx, &err), ry = span_encode(y, &by, &err);
    FUZZ_CHECK(rx == ry);
    FUZZ_CHECK(rx < 0 || (bx.len == by.len && memcmp(bx.p, by.p, bx.len) == 0));
    vg_buf_free(&bx);
    vg_buf_free(&by);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct config *cfg = fuzz_traces_config();
    struct vg_arena *a1 = vg_arena_new(4096), *a2 = vg_arena_new(4096);
    if (!a1 || !a2) {
        vg_arena_free(a1);
        vg_arena_free(a2);
        return 0;
    }
    vg_arena_set_limit(a1, FUZZ_TRACES_ARENA_LIMIT);
    vg_arena_set_limit(a2, FUZZ_TRACES_ARENA_LIMIT);
    struct otlp_traces_result r1, r2;
    int fast = otlp_traces_pb_read(cfg, data, size, a1, &r1);
    FUZZ_CHECK(fast == 0 || fast == 1);
    struct vg_err err;
    ProtobufCMessage *m;
    int rc = otlp_receiver_decode(
        &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
        data, size, false, a2, 4, &m, &err);
    if (rc == 0)
        rc = otlp_traces_translate((const otlp_traces_request *)m, cfg, a2, &r2, &err);
    if (rc < 0 && rc != VG_ENOMEM && rc != VG_ETOOLARGE)
        FUZZ_CHECK(fast == 1);
    if (fast == 0 && rc == 0) {
        FUZZ_CHECK(r1.received == r2.received && r1.rejected == r2.rejected);
        FUZZ_CHECK(memcmp(r1.rejected_by, r2.rejected_by, sizeof r1.rejected_by) == 0);
        FUZZ_CHECK(strcmp(r1.reason, r2.reason) == 0);
        FUZZ_CHECK(r1.n == r2.n);
        for (size_t i = 0; i < r1.n; i++)
            same_span(&r1.spans[i], &r2.spans[i]);
    }
    vg_arena_free(a1);
    vg_arena_free(a2);
    return 0;
}
