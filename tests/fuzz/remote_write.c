/* Fuzz target for rw_decode (server/ingest/remote_write.c).
 *
 * Input: one flag byte, then the payload. Flag bit 0 set: the payload is a raw protobuf
 * WriteRequest and is snappy-compressed here first, so the fuzzer explores the protobuf
 * and validation layers instead of dying in snappy; clear: the payload is the body as a
 * sender posts it. Flag bit 1 set: allocation number (flag >> 2) + 1 fails, to walk the
 * out-of-memory paths. A successful decode is checked against its invariants, including
 * that each label encoding the decoder made is labels_encode's. */
#include "../../server/compress.h"
#include "../../server/ingest/remote_write.h"
#include "../../storage/base/vg_alloc.h"

#include "fuzz_check.h"
#include <stdint.h>
#include <string.h>

static void check(const struct rw_request *rq, const struct config_limits *lim)
{
    const struct tsdb_batch *b = &rq->batch;
    FUZZ_CHECK(b->nseries <= (size_t)lim->max_series_per_request);
    for (size_t i = 0; i < b->nseries; i++) {
        const struct tsdb_series_in *s = &b->series[i];
        FUZZ_CHECK(s->nlabels >= 1 && s->nlabels <= (size_t)lim->max_labels_per_series);
        for (size_t k = 1; k < s->nlabels; k++)
            FUZZ_CHECK(vg_str_cmp(s->labels[k - 1].name, s->labels[k].name) < 0);
        for (size_t j = 0; j < s->nsamples; j++)
            FUZZ_CHECK(s->samples[j].t >= RW_MIN_TIME_MS && s->samples[j].t <= RW_MAX_TIME_MS);
        /* An encoding made while decoding is exactly labels_encode's. */
        if (rq->enc && rq->enc[i].p) {
            struct vg_buf want;
            vg_buf_init(&want);
            labels_encode(s->labels, s->nlabels, &want);
            FUZZ_CHECK(vg_buf_failed(&want) || (want.len == rq->enc[i].len &&
                                                memcmp(want.p, rq->enc[i].p, want.len) == 0));
            vg_buf_free(&want);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t flag = data[0];
    data++;
    size--;
    struct config_limits lim = {
        .max_body_bytes = 1 << 20,
        .max_decoded_bytes = 1 << 20,
        .max_labels_per_series = 30,
        .max_label_name_length = 128,
        .max_label_value_length = 1024,
        .max_series_per_request = 1000,
    };
    struct vg_buf packed;
    vg_buf_init(&packed);
    struct vg_err err;
    const void *body = data;
    size_t len = size;
    if (flag & 1) {
        if (compress_snappy_encode(data, size, &packed, &err) < 0) {
            vg_buf_free(&packed);
            return 0;
        }
        body = packed.p;
        len = packed.len;
    }
    struct vg_arena *a = vg_arena_new(4096);
    if (!a) {
        vg_buf_free(&packed);
        return 0;
    }
    if (flag & 2)
        vg_alloc_fail_after((uint64_t)(flag >> 2) + 1);
    struct rw_request rq;
    int rc = rw_decode(body, len, &lim, a, &rq, &err);
    vg_alloc_fail_after(0);
    if (rc == 0)
        check(&rq, &lim);
    else
        FUZZ_CHECK(rc == VG_EINVAL || rc == VG_ETOOLARGE || rc == VG_ENOMEM);
    vg_arena_free(a);
    vg_buf_free(&packed);
    return 0;
}
