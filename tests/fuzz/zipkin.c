/* Fuzz target for the Zipkin v2 JSON decoder (server/ingest/zipkin.c): zipkin_decode under
 * tight limits so every refusal path runs; every kept span must pass span_validate and
 * encode, and the kept spans go back through otlp_traces_from_spans to OTLP/JSON as the
 * Tempo API sends them. Input: a JSON body as POST /api/v2/spans receives it. */
#include "../../server/ingest/otlp_json.h"
#include "../../server/ingest/zipkin.h"

#include "traces_limits.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct config *cfg = fuzz_traces_config();
    struct vg_arena *a = vg_arena_new(4096);
    if (!a)
        return 0;
    vg_arena_set_limit(a, FUZZ_TRACES_ARENA_LIMIT);
    struct vg_err err;
    struct otlp_traces_result res;
    if (zipkin_decode((const char *)data, size, cfg, a, &res, &err) == 0) {
        if (res.n + res.rejected != res.received)
            abort();
        struct vg_buf b;
        vg_buf_init(&b);
        for (size_t i = 0; i < res.n; i++) {
            if (span_validate(&res.spans[i], &err) < 0)
                abort();
            vg_buf_reset(&b);
            if (span_encode(&res.spans[i], &b, &err) < 0 && err.code != VG_ENOMEM)
                abort();
        }
        otlp_traces_request *back;
        if (otlp_traces_from_spans(res.spans, res.n, a, &back, &err) == 0) {
            vg_buf_reset(&b);
            otlp_json_encode(&back->base, &b, &err);
        }
        vg_buf_free(&b);
    }
    vg_arena_free(a);
    return 0;
}
