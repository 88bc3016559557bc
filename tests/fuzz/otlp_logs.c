/* Fuzz target for the OTLP logs codec (server/ingest/otlp_logs.c): otlp_logs_decode of
 * the input (OTLP/JSON when it starts with '{', else protobuf) into a capped arena, as
 * the receiver does, then otlp_logs_translate with a configured resource label list.
 * Every stream handed out must have sorted, unique labels including service_name and at
 * least one entry not after the receive time plus the allowance; every entry at most
 * LENTRY_MAX_META + 1 metadata pairs with names and values readable to their length. */
#include "../../server/ingest/ingest.h"
#include "../../server/ingest/otlp_logs.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_LIMIT ((size_t)8 << 20)
#define NOW 1700000000000000000LL

static void check(const struct otlp_logs_batch *b)
{
    uint64_t kept = 0;
    for (size_t i = 0; i < b->nstreams; i++) {
        const struct logstore_stream_in *s = &b->streams[i];
        if (s->nentries == 0 || !labels_get(s->labels, s->nlabels, "service_name").p)
            abort();
        for (size_t k = 1; k < s->nlabels; k++)
            if (vg_str_cmp(s->labels[k - 1].name, s->labels[k].name) >= 0)
                abort();
        for (size_t e = 0; e < s->nentries; e++) {
            const struct lentry *en = &s->entries[e];
            if (en->t < 0 || en->t > NOW + INGEST_LOG_MAX_FUTURE_NS ||
                en->nmeta > LENTRY_MAX_META + 1)
                abort();
            for (size_t m = 0; m < en->nmeta; m++) {
                volatile char sink = en->meta[m].name.len ? en->meta[m].name.p[0] : 0;
                sink = en->meta[m].value.len ? en->meta[m].value.p[en->meta[m].value.len - 1]
                                             : 0;
                (void)sink;
            }
        }
        kept += s->nentries;
    }
    if (kept + b->rejected > b->records || b->rejected != b->rejected_future)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char *extra[] = { "host.name", "team" };
    struct vg_arena *a = vg_arena_new(4096);
    if (!a)
        return 0;
    vg_arena_set_limit(a, ARENA_LIMIT);
    struct vg_err err;
    otlp_logs_request *req;
    bool json = size && data[0] == '{';
    if (otlp_logs_decode(data, size, json, a, &req, &err) == 0) {
        struct otlp_logs_opts o = { .resource_labels = extra, .nresource_labels = 2,
                                    .now_ns = NOW, .max_future_ns = INGEST_LOG_MAX_FUTURE_NS };
        struct otlp_logs_batch b;
        if (otlp_logs_translate(req, &o, a, &b, &err) == 0)
            check(&b);
    }
    vg_arena_free(a);
    return 0;
}
