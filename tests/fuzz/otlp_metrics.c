/* Fuzz target for the OTLP metrics translation (server/ingest/otlp_translate.c) behind a
 * protobuf body, as the receiver runs it: pb_check_depth, unpack into a capped arena, then
 * otlp_translate twice, with delta points refused and with them accumulated (one delta
 * state kept across inputs, as in the server), with tight limits so the refusal paths run.
 * Input: a raw ExportMetricsServiceRequest. Every series handed out must have sorted,
 * unique labels with __name__ and at least one sample. */
#include "../../server/ingest/otlp_translate.h"
#include "../../server/pb_alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_LIMIT ((size_t)8 << 20)

/* ingest.c refers to the store; the translation never calls it. */
__attribute__((weak)) int tsdb_append(struct tsdb *db, const struct tsdb_batch *batch,
                                      struct tsdb_append_result *res, struct vg_err *err)
{
    (void)db, (void)batch, (void)res;
    return vg_err_set(err, VG_EIO, "no store");
}
__attribute__((weak)) const char *tsdb_reject_name(enum tsdb_reject r)
{
    (void)r;
    return "fuzz";
}

static void check(const struct otlp_translate_result *res)
{
    for (size_t i = 0; i < res->batch.nseries; i++) {
        const struct tsdb_series_in *s = &res->batch.series[i];
        if (s->nsamples == 0 || !labels_get(s->labels, s->nlabels, "__name__").p)
            abort();
        for (size_t k = 1; k < s->nlabels; k++)
            if (vg_str_cmp(s->labels[k - 1].name, s->labels[k].name) >= 0)
                abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct otlp_delta_state *delta;
    static char *promote[] = { "host.name", "service.version" };
    if (!delta)
        delta = otlp_delta_new(1000, 0);
    const ProtobufCMessageDescriptor *d =
        &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor;
    struct vg_arena *a = vg_arena_new(4096);
    if (!a)
        return 0;
    vg_arena_set_limit(a, ARENA_LIMIT);
    ProtobufCAllocator alloc;
    pb_alloc_from_arena(a, &alloc);
    struct vg_err err;
    otlp_metrics_request *req = NULL;
    if (pb_check_depth(d, data, size, PB_MAX_DEPTH, &err) == 0)
        req = (otlp_metrics_request *)protobuf_c_message_unpack(d, &alloc, size, data);
    if (req) {
        struct config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.limits = (struct config_limits){ 1 << 20, 1 << 20, 12, 40, 100, 200 };
        cfg.otlp_add_type_and_unit_suffixes = size % 2 == 0;
        cfg.otlp_promote_attrs = promote;
        cfg.otlp_npromote = 2;
        struct otlp_translate_result res;
        if (otlp_translate(req, &cfg, NULL, a, &res, &err) == 0)
            check(&res);
        cfg.otlp_delta = OTLP_DELTA_ACCUMULATE;
        cfg.otlp_keep_identifying_attrs = true;
        if (otlp_translate(req, &cfg, delta, a, &res, &err) == 0)
            check(&res);
    }
    vg_arena_free(a);
    return 0;
}
