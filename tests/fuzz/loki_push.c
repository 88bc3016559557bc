/* Fuzz target for the Loki push decoder (server/ingest/loki_push.c, loki_push_decode):
 * an input starting with '{' (after blanks) is a JSON body, anything else an
 * uncompressed logproto.PushRequest (the handler undoes snappy before the codec runs).
 * The arena is capped as the handler caps it. Every stream handed out must have a
 * non-empty, sorted label set of valid names with UTF-8 values and at least one entry
 * within the time bounds, and the counts must add up. */
#include "../../server/ingest/ingest.h"
#include "../../server/ingest/loki_push.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_LIMIT ((size_t)8 << 20)
#define NOW 1700000000000000000LL

static void check(const struct loki_push_batch *b)
{
    uint64_t kept = 0, by = 0;
    for (int r = 0; r < LOKI_PUSH_REJECT_COUNT; r++)
        by += b->rejected_by[r];
    if (by != b->rejected || (b->rejected && !b->reason[0]))
        abort();
    for (size_t i = 0; i < b->nstreams; i++) {
        const struct logstore_stream_in *s = &b->streams[i];
        if (s->nlabels == 0 || s->nentries == 0)
            abort();
        for (size_t k = 0; k < s->nlabels; k++) {
            if (!ingest_valid_label_name(s->labels[k].name) || s->labels[k].value.len == 0 ||
                !ingest_valid_utf8(s->labels[k].value))
                abort();
            if (k && vg_str_cmp(s->labels[k - 1].name, s->labels[k].name) >= 0)
                abort();
        }
        for (size_t e = 0; e < s->nentries; e++) {
            const struct lentry *en = &s->entries[e];
            if (en->t < 0 || en->t > NOW + INGEST_LOG_MAX_FUTURE_NS)
                abort();
            for (size_t m = 0; m < en->nmeta; m++)
                if ((en->meta[m].name.len && !en->meta[m].name.p) ||
                    (en->meta[m].value.len && !en->meta[m].value.p))
                    abort();
            volatile char sink = en->line.len ? en->line.p[en->line.len - 1] : 0;
            (void)sink;
        }
        kept += s->nentries;
    }
    if (kept + b->rejected > b->entries)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t i = 0;
    while (i < size && (data[i] == ' ' || data[i] == '\n' || data[i] == '\t' || data[i] == '\r'))
        i++;
    bool json = i < size && data[i] == '{';
    struct vg_arena *a = vg_arena_new(4096);
    if (!a)
        return 0;
    vg_arena_set_limit(a, ARENA_LIMIT);
    struct loki_push_opts o = { .now_ns = NOW, .max_future_ns = INGEST_LOG_MAX_FUTURE_NS };
    struct loki_push_batch b;
    struct vg_err err;
    if (loki_push_decode(data, size, json, &o, a, &b, &err) == 0)
        check(&b);
    else if (b.nstreams || !err.msg[0])
        abort();
    vg_arena_free(a);
    return 0;
}
