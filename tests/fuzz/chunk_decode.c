/* Fuzz target for storage/tsdb/chunk.c: iterates arbitrary bytes as an encoded chunk
 * (all three encodings), then re-encodes whatever decoded, once plainly and once packed
 * every few samples (encoding 2), and checks the round trips are bit exact, that
 * chunk_enc_from_bytes agrees with the iterator about malformed input, and that
 * chunk_iter_skip_before skips exactly what decoding sample by sample skips. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../storage/base/vg_err.h"
#include "../../storage/tsdb/chunk.h"

static int64_t ts[65536];
static uint64_t vs[65536];

static uint64_t bits_of(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

/* Checks that buf decodes to exactly the n samples in ts/vs. */
static void check_same(const unsigned char *buf, size_t len, size_t n)
{
    struct chunk_iter it;
    chunk_iter_init(&it, buf, len);
    int64_t t;
    double v;
    for (size_t i = 0; i < n; i++) {
        if (!chunk_next(&it, &t, &v) || t != ts[i] || bits_of(v) != vs[i])
            abort();
    }
    if (chunk_next(&it, &t, &v) || it.err)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct chunk_iter it;
    chunk_iter_init(&it, data, size);
    size_t n = 0;
    int64_t t;
    double v;
    while (chunk_next(&it, &t, &v)) {
        if (n > 0 && t < ts[n - 1])
            abort(); /* the iterator must enforce non-decreasing time */
        ts[n] = t;
        vs[n++] = bits_of(v);
    }
    if (n > chunk_count(data, size))
        abort();
    /* chunk_iter_skip_before must give the same samples from mint on, and the same
     * error, as decoding every sample (mint: one of the decoded times, or past them). */
    int64_t mint = n ? ts[(size > 3 ? data[size - 1] : 0) % n] + (size & 1) : 0;
    struct chunk_iter sk;
    chunk_iter_init(&sk, data, size);
    size_t at = 0;
    while (at < n && ts[at] < mint)
        at++;
    while (chunk_next(&sk, &t, &v)) {
        if (t < mint) {
            chunk_iter_skip_before(&sk, mint);
            continue;
        }
        if (at >= n || t != ts[at] || bits_of(v) != vs[at])
            abort();
        at++;
    }
    if (at != n || sk.err != it.err)
        abort();

    struct chunk_enc e;
    chunk_enc_init(&e);
    for (size_t i = 0; i < n; i++) {
        memcpy(&v, &vs[i], sizeof v);
        if (chunk_append(&e, ts[i], v) != 0)
            abort();
    }
    size_t len;
    const unsigned char *b = chunk_bytes(&e, &len);
    check_same(b, len, n);
    chunk_enc_free(&e);

    size_t step = 2 + (size > 3 ? data[size - 1] % 40 : 0);
    chunk_enc_init(&e);
    for (size_t i = 0; i < n; i++) {
        memcpy(&v, &vs[i], sizeof v);
        if (chunk_append(&e, ts[i], v) != 0)
            abort();
        if ((size_t)(e.count - e.packed) >= step && chunk_enc_pack(&e) != 0)
            abort();
    }
    if (n)
        check_same(e.buf, e.cap, n); /* the live buffer, as the head reads it */
    b = chunk_bytes(&e, &len);
    check_same(b, len, n);
    chunk_enc_free(&e);

    int rc = chunk_enc_from_bytes(&e, data, size);
    if (it.err ? rc != VG_EINVAL : rc != 0)
        abort();
    if (rc == 0) {
        b = chunk_bytes(&e, &len);
        check_same(b, len, n);
        chunk_enc_free(&e);
    }
    return 0;
}
