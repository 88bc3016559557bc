/* Tests storage/tsdb/chunk.c: bit-exact round trips through all three encodings
 * (packing into encoding 2 included), resuming from bytes, malformed input, allocation
 * failure, and bytes per sample on data shaped like Prometheus scrapes. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../../../storage/base/vg_alloc.h"
#include "../../../../storage/base/vg_err.h"
#include "../../../../storage/tsdb/chunk.h"

#define STALE_NAN 0x7ff0000000000002ULL

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int64_t rnd_range(int64_t lo, int64_t hi) /* inclusive */
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

static uint64_t bits_of(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static double from_bits(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

/* Decodes buf and checks it holds exactly the n samples, bit for bit. */
static void expect_samples(const unsigned char *buf, size_t len, const int64_t *ts,
                           const double *vs, size_t n)
{
    cr_assert_eq(chunk_count(buf, len), n);
    struct chunk_iter it;
    chunk_iter_init(&it, buf, len);
    int64_t t;
    double v;
    for (size_t i = 0; i < n; i++) {
        cr_assert(chunk_next(&it, &t, &v), "sample %zu missing (err=%d)", i, it.err);
        cr_assert_eq(t, ts[i], "sample %zu: t %lld != %lld", i, (long long)t, (long long)ts[i]);
        cr_assert_eq(bits_of(v), bits_of(vs[i]), "sample %zu: value bits %llx != %llx", i,
                     (unsigned long long)bits_of(v), (unsigned long long)bits_of(vs[i]));
    }
    cr_assert_not(chunk_next(&it, &t, &v));
    cr_assert_not(it.err);
}

/* Full check of one series: encode, decode, resume from bytes halfway and append the
 * rest, decode again. Returns the encoded size. */
static size_t round_trip(const int64_t *ts, const double *vs, size_t n)
{
    struct chunk_enc e;
    chunk_enc_init(&e);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(chunk_append(&e, ts[i], vs[i]), 0);
    size_t len;
    const unsigned char *b = chunk_bytes(&e, &len);
    cr_assert_not_null(b);
    expect_samples(b, len, ts, vs, n);
    size_t full = len;

    /* Resume from the bytes of the first half, whichever encoding they used. */
    struct chunk_enc h;
    chunk_enc_init(&h);
    for (size_t i = 0; i < n / 2; i++)
        cr_assert_eq(chunk_append(&h, ts[i], vs[i]), 0);
    b = chunk_bytes(&h, &len);
    struct chunk_enc r;
    cr_assert_eq(chunk_enc_from_bytes(&r, b, len), 0);
    for (size_t i = n / 2; i < n; i++)
        cr_assert_eq(chunk_append(&r, ts[i], vs[i]), 0);
    b = chunk_bytes(&r, &len);
    expect_samples(b, len, ts, vs, n);
    /* Both encodings must decode: the encoding-0 stream as it stands in the buffer. */
    expect_samples(r.buf, 3 + (r.bits + 7) / 8, ts, vs, n);
    chunk_enc_free(&h);
    chunk_enc_free(&r);
    chunk_enc_free(&e);
    return full;
}

Test(chunk, empty_chunk)
{
    struct chunk_enc e;
    chunk_enc_init(&e);
    size_t len;
    const unsigned char *b = chunk_bytes(&e, &len);
    cr_assert_eq(len, 3);
    cr_assert_eq(chunk_count(b, len), 0);
    struct chunk_iter it;
    chunk_iter_init(&it, b, len);
    int64_t t;
    double v;
    cr_assert_not(chunk_next(&it, &t, &v));
    cr_assert_not(it.err);
    struct chunk_enc r;
    cr_assert_eq(chunk_enc_from_bytes(&r, b, len), 0);
    cr_assert_eq(r.count, 0);
    chunk_enc_free(&r);
    chunk_enc_free(&e);
    cr_assert_eq(chunk_count(b, 1), 0);
}

Test(chunk, single_sample)
{
    int64_t ts[] = { 1700000000000 };
    double vs[] = { 42.5 };
    round_trip(ts, vs, 1);
}

Test(chunk, special_values_survive_bit_exact)
{
    double vs[] = { from_bits(STALE_NAN), NAN, INFINITY, -INFINITY, -0.0, 0.0,
                    from_bits(0x7ff8dead0000beefULL), from_bits(1) /* denormal */,
                    -1e308, 1e-308, from_bits(STALE_NAN), 1.0, 1.0, from_bits(STALE_NAN) };
    size_t n = sizeof vs / sizeof vs[0];
    int64_t ts[sizeof vs / sizeof vs[0]];
    for (size_t i = 0; i < n; i++)
        ts[i] = 1000 + (int64_t)i * 15000;
    round_trip(ts, vs, n);
}

Test(chunk, staleness_marker_after_counter)
{
    int64_t ts[121];
    double vs[121];
    for (int i = 0; i < 120; i++) {
        ts[i] = 1700000000000 + i * 15000;
        vs[i] = i * 3;
    }
    ts[120] = ts[119] + 15000;
    vs[120] = from_bits(STALE_NAN);
    round_trip(ts, vs, 121);
}

Test(chunk, extreme_timestamps_and_equal_timestamps)
{
    int64_t ts[] = { INT64_MIN, INT64_MIN, -5, -5, 0, 0, 0, 1, INT64_MAX - 1, INT64_MAX,
                     INT64_MAX };
    double vs[sizeof ts / sizeof ts[0]];
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        vs[i] = (double)i - 4;
    round_trip(ts, vs, sizeof ts / sizeof ts[0]);
}

Test(chunk, random_series_round_trip)
{
    enum { N = 300 };
    static int64_t ts[N];
    static double vs[N];
    for (int series = 0; series < 400; series++) {
        size_t n = 1 + rnd() % N;
        int kind = series % 8;
        int64_t t = (int64_t)(rnd() >> 1) - (int64_t)(rnd() >> 1);
        double v = 0;
        int64_t m = (int64_t)rnd_range(-1000000, 1000000);
        for (size_t i = 0; i < n; i++) {
            int64_t gap;
            switch (rnd() % 6) {
            case 0: gap = 0; break;
            case 1: gap = rnd_range(0, 5); break;
            case 2: gap = 15000 + rnd_range(-3, 3); break;
            case 3: gap = rnd_range(0, 1LL << 40); break;
            case 4: gap = 60000; break;
            default: gap = rnd_range(0, 100000); break;
            }
            if (t > INT64_MAX - gap)
                gap = 0;
            t += gap;
            switch (kind) {
            case 0: v = from_bits(rnd()); break;           /* any bits, NaNs included */
            case 1: m += rnd_range(-50, 50); v = (double)m / 100; break; /* 2 decimals */
            case 2: m += rnd_range(0, 10); v = (double)m; break;           /* counter */
            case 3: v = (rnd() % 4) ? 7.0 : from_bits(STALE_NAN); break;
            case 4: m -= rnd_range(0, 1LL << 40); v = (double)m; break;    /* big negative */
            case 5: v = (double)rnd_range(-3, 3) / 1000000000; break;
            case 6: v = sin((double)i) * 1e6; break;
            default: v = (rnd() % 2) ? INFINITY : -INFINITY; break;
            }
            ts[i] = t;
            vs[i] = v;
        }
        round_trip(ts, vs, n);
    }
}

/* Counts samples until the end; returns -1 if the iterator reported an error. */
static long drain(const unsigned char *b, size_t len)
{
    struct chunk_iter it;
    chunk_iter_init(&it, b, len);
    int64_t t;
    double v;
    long n = 0;
    while (chunk_next(&it, &t, &v))
        n++;
    return it.err ? -1 : n;
}

/* Random corruption of a chunk of n samples never crashes, and flipping bits never
 * creates extra samples. */
static void flips_never_add_samples(const unsigned char *chunk, size_t len, long n)
{
    unsigned char bad[4096];
    cr_assert_leq(len, sizeof bad);
    for (int round = 0; round < 2000; round++) {
        memcpy(bad, chunk, len);
        for (int k = 0; k < 3; k++)
            bad[3 + rnd() % (len - 3)] ^= (unsigned char)(1u << (rnd() % 8));
        cr_assert_leq(drain(bad, len), n);
    }
}

Test(chunk, rejects_decreasing_time_and_overfull_chunk)
{
    struct chunk_enc e;
    chunk_enc_init(&e);
    cr_assert_eq(chunk_append(&e, 100, 1), 0);
    cr_assert_eq(chunk_append(&e, 99, 1), VG_EINVAL);
    cr_assert_eq(e.count, 1);
    for (int i = 1; i < 65535; i++)
        cr_assert_eq(chunk_append(&e, 100 + i, i), 0);
    cr_assert_eq(chunk_append(&e, 1000000, 1), VG_ETOOLARGE);
    size_t len;
    const unsigned char *b = chunk_bytes(&e, &len);
    cr_assert_eq(chunk_count(b, len), 65535);
    cr_assert_eq(drain(b, len), 65535);
    chunk_enc_free(&e);
}

Test(chunk, truncated_and_corrupt_bytes_are_reported)
{
    struct chunk_enc e;
    chunk_enc_init(&e);
    for (int i = 0; i < 50; i++)
        chunk_append(&e, 1000 + i * 15001, i * 1.25);
    size_t len;
    const unsigned char *b = chunk_bytes(&e, &len);
    unsigned char copy[4096];
    cr_assert_lt(len, sizeof copy);
    memcpy(copy, b, len);
    cr_assert_eq(drain(copy, len), 50);

    /* Every truncation that loses a sample is an error, and reads stay inside. */
    for (size_t cut = 0; cut < len - 1; cut++) {
        unsigned char *heap = vg_malloc(cut ? cut : 1);
        memcpy(heap, copy, cut);
        cr_assert_eq(drain(heap, cut), -1, "cut at %zu", cut);
        struct chunk_enc r;
        cr_assert_eq(chunk_enc_from_bytes(&r, heap, cut), VG_EINVAL);
        cr_assert_eq(r.buf, NULL);
        vg_free(heap);
    }

    unsigned char bad[sizeof copy];
    memcpy(bad, copy, len);
    bad[2] = 7; /* unknown encoding */
    cr_assert_eq(drain(bad, len), -1);

    memcpy(bad, copy, len);
    bad[0] = 0xff; /* more samples than the bits hold */
    cr_assert_eq(drain(bad, len), -1);

    /* Encoding 0, sample 1 saying "reuse the window" before any window exists. */
    unsigned char nowin[3 + 16 + 1] = { 0, 2, 0 };
    nowin[3 + 16] = 0x40; /* dod '0', value '10' */
    cr_assert_eq(drain(nowin, sizeof nowin), -1);

    /* Encoding 0, sample 1 with a negative delta: time going backwards. */
    unsigned char back[3 + 16 + 2] = { 0, 2, 0 };
    back[3 + 16] = 0xBF; /* '10' + 7 bits 1111111 = -1 ... */
    back[3 + 17] = 0x80; /* ... its last bit, then value '0' */
    cr_assert_eq(drain(back, sizeof back), -1);

    /* Encoding 1 with an invalid timestamp mode (3). */
    unsigned char mode[3 + 12] = { 0, 2, 1, 0xC0 };
    cr_assert_eq(drain(mode, sizeof mode), -1);

    flips_never_add_samples(copy, len, 50);
    chunk_enc_free(&e);
}

Test(chunk, allocation_failure)
{
    struct chunk_enc e;
    chunk_enc_init(&e);
    vg_alloc_fail_after(1);
    cr_assert_eq(chunk_append(&e, 1, 1), VG_ENOMEM);
    vg_alloc_fail_after(0);
    cr_assert(e.failed);
    cr_assert_eq(chunk_append(&e, 2, 1), VG_ENOMEM, "a failed encoder stays failed");
    size_t len = 99;
    cr_assert_null(chunk_bytes(&e, &len));
    cr_assert_eq(len, 0);
    chunk_enc_free(&e);

    /* Encoding 1 needs scratch memory; without it chunk_bytes still gives encoding 0. */
    int64_t ts[120];
    double vs[120];
    for (int i = 0; i < 120; i++) {
        ts[i] = 1700000000000 + i * 15000 + (i % 3);
        vs[i] = i * 2;
        cr_assert_eq(chunk_append(&e, ts[i], vs[i]), 0);
    }
    vg_alloc_fail_after(1);
    const unsigned char *b = chunk_bytes(&e, &len);
    vg_alloc_fail_after(0);
    cr_assert_not_null(b);
    cr_assert_eq(b[2], 0);
    expect_samples(b, len, ts, vs, 120);
    b = chunk_bytes(&e, &len);
    cr_assert_eq(b[2], 1, "with memory, encoding 1 is smaller here");
    expect_samples(b, len, ts, vs, 120);

    unsigned char saved[2048];
    memcpy(saved, b, len);
    struct chunk_enc r;
    for (uint64_t k = 1; k < 10; k++) {
        vg_alloc_fail_after(k);
        int rc = chunk_enc_from_bytes(&r, saved, len);
        vg_alloc_fail_after(0);
        if (rc == 0) {
            size_t l2;
            const unsigned char *b2 = chunk_bytes(&r, &l2);
            expect_samples(b2, l2, ts, vs, 120);
            chunk_enc_free(&r);
            break;
        }
        cr_assert_eq(rc, VG_ENOMEM);
        cr_assert_eq(r.buf, NULL);
    }
    chunk_enc_free(&e);
}

/* ---- packing (encoding 2) ---- */

/* Fills ts/vs with n samples of one of eight shapes (as random_series_round_trip). */
static void gen_series(int kind, int64_t *ts, double *vs, size_t n)
{
    int64_t t = 1700000000000 + rnd_range(-5, 5);
    int64_t m = rnd_range(-1000000, 1000000);
    for (size_t i = 0; i < n; i++) {
        t += (rnd() % 50) ? 15000 + rnd_range(-3, 3) : rnd_range(0, 100000);
        ts[i] = t;
        switch (kind) {
        case 0: vs[i] = from_bits(rnd()); break;
        case 1: m += rnd_range(-50, 50); vs[i] = (double)m / 100; break;
        case 2: m += rnd_range(0, 10); vs[i] = (double)m; break;
        case 3: vs[i] = (rnd() % 4) ? 7.0 : from_bits(STALE_NAN); break;
        case 4: m -= rnd_range(0, 1LL << 40); vs[i] = (double)m; break;
        case 5: vs[i] = (double)rnd_range(-3, 3) / 1000000000; break;
        case 6: vs[i] = sin((double)i) * 1e6; break;
        default: vs[i] = 1048576 + (double)rnd_range(0, 999) * 4096; break;
        }
    }
}

/* Appends samples from..to-1 of ts/vs to e, each one asserted to succeed. */
static void append_range(struct chunk_enc *e, const int64_t *ts, const double *vs, int from,
                         int to)
{
    for (int i = from; i < to; i++)
        cr_assert_eq(chunk_append(e, ts[i], vs[i]), 0, "sample %d", i);
}

Test(chunk, packing_keeps_every_sample_bit_exact)
{
    enum { N = 200 };
    static int64_t ts[N];
    static double vs[N];
    int packed_some = 0;
    for (int series = 0; series < 400; series++) {
        size_t n = 1 + rnd() % N;
        gen_series(series % 8, ts, vs, n);
        struct chunk_enc e;
        chunk_enc_init(&e);
        size_t every = 2 + rnd() % 50;
        for (size_t i = 0; i < n; i++) {
            cr_assert_eq(chunk_append(&e, ts[i], vs[i]), 0);
            if ((size_t)(e.count - e.packed) >= every)
                cr_assert_eq(chunk_enc_pack(&e), 0);
            cr_assert_eq(chunk_enc_first_t(&e), ts[0], "t0 stays readable in place");
        }
        packed_some += e.packed > 0;
        cr_assert_eq(e.buf[2], e.packed ? 2 : 0);
        /* The live buffer, as the head reads it (up to cap), and its exact length. */
        expect_samples(e.buf, e.cap, ts, vs, n);
        expect_samples(e.buf, 3 + (e.bits + 7) / 8, ts, vs, n);
        size_t len;
        const unsigned char *b = chunk_bytes(&e, &len);
        cr_assert_not_null(b);
        cr_assert_leq(len, 3 + (e.bits + 7) / 8, "chunk_bytes never returns more");
        expect_samples(b, len, ts, vs, n);
        struct chunk_enc r;
        cr_assert_eq(chunk_enc_from_bytes(&r, b, len), 0);
        cr_assert_eq(r.count, n);
        chunk_enc_free(&r);
        chunk_enc_free(&e);
    }
    cr_assert_gt(packed_some, 100);
}

Test(chunk, packing_shrinks_counters_and_gives_up_on_random_bits)
{
    int64_t ts[120];
    double vs[120];
    gen_series(2, ts, vs, 120);
    struct chunk_enc e;
    chunk_enc_init(&e);
    append_range(&e, ts, vs, 0, 80);
    size_t before = 3 + (e.bits + 7) / 8;
    cr_assert_eq(chunk_enc_pack(&e), 0);
    size_t after = 3 + (e.bits + 7) / 8;
    cr_assert_eq(e.packed, 80);
    cr_assert_lt(after * 4, before * 3, "counter: %zu -> %zu bytes", before, after);
    cr_assert_lt(e.cap, before);
    append_range(&e, ts, vs, 80, 120); /* appends go on after the packed part */
    expect_samples(e.buf, e.cap, ts, vs, 120);
    cr_assert_eq(chunk_enc_pack(&e), 0);
    cr_assert_eq(e.packed, 120, "packing again folds the tail in");
    expect_samples(e.buf, e.cap, ts, vs, 120);
    chunk_enc_free(&e);

    gen_series(0, ts, vs, 120); /* random bits: encoding 1 saves nothing */
    chunk_enc_init(&e);
    append_range(&e, ts, vs, 0, 60);
    unsigned char *buf = e.buf;
    cr_assert_eq(chunk_enc_pack(&e), 0);
    cr_assert(e.nopack);
    cr_assert_eq(e.packed, 0);
    cr_assert_eq(e.buf, buf, "the buffer is kept as it was");
    cr_assert_eq(e.buf[2], 0);
    expect_samples(e.buf, e.cap, ts, vs, 60);
    chunk_enc_free(&e);

    chunk_enc_init(&e); /* fewer than two samples: nothing to do */
    cr_assert_eq(chunk_enc_pack(&e), 0);
    cr_assert_eq(chunk_append(&e, 5, 1), 0);
    cr_assert_eq(chunk_enc_pack(&e), 0);
    cr_assert_eq(e.packed, 0);
    chunk_enc_free(&e);
}

Test(chunk, a_sealed_chunk_is_written_as_its_packed_bytes)
{
    int64_t ts[121];
    double vs[121];
    gen_series(2, ts, vs, 121);
    struct chunk_enc e, plain;
    chunk_enc_init(&e);
    chunk_enc_init(&plain);
    append_range(&e, ts, vs, 0, 120);
    append_range(&plain, ts, vs, 0, 120);
    size_t plain_len;
    const unsigned char *pb = chunk_bytes(&plain, &plain_len);
    cr_assert_eq(chunk_enc_seal(&e), 0);
    cr_assert_eq(e.packed, 120);
    cr_assert_eq(e.buf[2], 2);
    size_t total = 3 + e.bits / 8;
    cr_assert_lt(e.cap, total + 16, "no room kept for appends: cap %u for %zu bytes",
                 e.cap, total);
    size_t len;
    const unsigned char *b = chunk_bytes(&e, &len);
    cr_assert_eq(b, e.buf + 13, "the embedded encoding-1 chunk, not a new encoding");
    cr_assert_eq(b[2], 1);
    cr_assert_eq(len, plain_len, "the same chunk chunk_bytes builds from scratch");
    cr_assert_eq(memcmp(b, pb, len), 0);
    expect_samples(b, len, ts, vs, 120);
    chunk_enc_free(&plain);

    cr_assert_eq(chunk_append(&e, ts[120], vs[120]), 0, "appending still works");
    b = chunk_bytes(&e, &len);
    expect_samples(b, len, ts, vs, 121);
    chunk_enc_free(&e);

    gen_series(0, ts, vs, 120); /* random bits: sealing changes nothing */
    chunk_enc_init(&e);
    append_range(&e, ts, vs, 0, 120);
    cr_assert_eq(chunk_enc_seal(&e), 0);
    cr_assert_eq(e.packed, 0);
    b = chunk_bytes(&e, &len);
    expect_samples(b, len, ts, vs, 120);
    chunk_enc_free(&e);
}

Test(chunk, packing_out_of_memory_keeps_the_encoder_usable)
{
    int64_t ts[100];
    double vs[100];
    gen_series(2, ts, vs, 100);
    for (uint64_t k = 1; k <= 2; k++) { /* the scratch block, then the new buffer */
        struct chunk_enc e;
        chunk_enc_init(&e);
        append_range(&e, ts, vs, 0, 50);
        vg_alloc_fail_after(k);
        int rc = chunk_enc_pack(&e);
        vg_alloc_fail_after(0);
        cr_assert_eq(rc, VG_ENOMEM, "allocation %llu", (unsigned long long)k);
        cr_assert_not(e.failed);
        cr_assert_eq(e.packed, 0);
        append_range(&e, ts, vs, 50, 100);
        expect_samples(e.buf, e.cap, ts, vs, 100);
        cr_assert_eq(chunk_enc_pack(&e), 0);
        cr_assert_eq(e.packed, 100);
        expect_samples(e.buf, e.cap, ts, vs, 100);
        chunk_enc_free(&e);
    }
}

Test(chunk, malformed_encoding_2_is_reported)
{
    int64_t ts[60];
    double vs[60];
    gen_series(2, ts, vs, 60);
    struct chunk_enc e;
    chunk_enc_init(&e);
    append_range(&e, ts, vs, 0, 40);
    cr_assert_eq(chunk_enc_pack(&e), 0);
    append_range(&e, ts, vs, 40, 60);
    size_t len = 3 + (e.bits + 7) / 8;
    unsigned char copy[1024], bad[1024];
    cr_assert_lt(len, sizeof copy);
    memcpy(copy, e.buf, len);
    cr_assert_eq(copy[2], 2);
    cr_assert_eq(drain(copy, len), 60);
    size_t l = (size_t)copy[11] << 8 | copy[12];

    memcpy(bad, copy, len);
    bad[10] ^= 1; /* raw t0 disagrees with the embedded chunk */
    cr_assert_eq(drain(bad, len), -1);
    memcpy(bad, copy, len);
    bad[12] = (unsigned char)(len); bad[11] = (unsigned char)(len >> 8); /* L past the end */
    cr_assert_eq(drain(bad, len), -1);
    memcpy(bad, copy, len);
    bad[11] = 0; bad[12] = 2; /* L shorter than a header */
    cr_assert_eq(drain(bad, len), -1);
    memcpy(bad, copy, len);
    bad[13 + 2] = 0; /* embedded chunk not encoding 1 */
    cr_assert_eq(drain(bad, len), -1);
    memcpy(bad, copy, len);
    bad[13] = 0; bad[14] = 61; /* embedded chunk holds more samples than the whole */
    cr_assert_eq(drain(bad, len), -1);
    memcpy(bad, copy, len);
    bad[13] = 0; bad[14] = 1; /* fewer than two in the embedded chunk */
    cr_assert_eq(drain(bad, len), -1);
    cr_assert_eq(drain(copy, 12), -1, "cut inside the fixed part");
    cr_assert_eq(drain(copy, 13 + l - 1), -1, "cut inside the embedded chunk");
    for (size_t cut = 13 + l; cut < len - 1; cut++) {
        unsigned char *heap = vg_malloc(cut);
        memcpy(heap, copy, cut);
        cr_assert_eq(drain(heap, cut), -1, "cut at %zu", cut);
        vg_free(heap);
    }
    flips_never_add_samples(copy, len, 60);
    chunk_enc_free(&e);
}

/* ---- bytes per sample on Prometheus-shaped data ---- */

enum shape { COUNTER, GAUGE, CONSTANT, COUNTER_NO_JITTER, SHAPES };
static const char *shape_name[SHAPES] = { "counter(15s,+-2ms jitter,+0..10)",
                                          "gauge(2 decimals, random walk)", "constant",
                                          "counter(15s exact,+0..10)" };

static double bytes_per_sample(enum shape s, int chunks)
{
    size_t bytes = 0, samples = 0;
    int64_t t = 1700000000000;
    int64_t m = 123456;
    for (int c = 0; c < chunks; c++) {
        struct chunk_enc e;
        chunk_enc_init(&e);
        int64_t ts[120];
        double vs[120];
        for (int i = 0; i < 120; i++) {
            t += 15000;
            ts[i] = s == COUNTER_NO_JITTER ? t : t + rnd_range(-2, 2);
            if (s == GAUGE) {
                m += rnd_range(-50, 50);
                vs[i] = (double)m / 100;
            } else if (s == CONSTANT) {
                vs[i] = 1;
            } else {
                m += rnd_range(0, 10);
                vs[i] = (double)m;
            }
            cr_assert_eq(chunk_append(&e, ts[i], vs[i]), 0);
        }
        size_t len;
        const unsigned char *b = chunk_bytes(&e, &len);
        expect_samples(b, len, ts, vs, 120);
        bytes += len;
        samples += 120;
        chunk_enc_free(&e);
    }
    return (double)bytes / (double)samples;
}

Test(chunk, bytes_per_sample_on_typical_data)
{
    double total = 0;
    for (int s = 0; s < SHAPES; s++) {
        double bps = bytes_per_sample((enum shape)s, 50);
        printf("chunk bytes/sample %-36s %.3f\n", shape_name[s], bps);
        total += bps;
        cr_assert_lt(bps, s == GAUGE ? 1.5 : 1.3, "%s: %.3f bytes/sample", shape_name[s], bps);
    }
    cr_assert_lt(total / SHAPES, 1.3);
}

/* ---- chunk_iter_skip_before ---- */

/* Checks that chunk_next with chunk_iter_skip_before after every sample before mint
 * yields exactly the samples of buf at or after mint that plain chunk_next yields. */
static void expect_skip_same(const unsigned char *buf, size_t len, int64_t mint)
{
    struct chunk_iter a, b;
    chunk_iter_init(&a, buf, len);
    chunk_iter_init(&b, buf, len);
    int64_t ta, tb;
    double va, vb;
    for (;;) {
        bool ha;
        while ((ha = chunk_next(&a, &ta, &va)) && ta < mint)
            ;
        bool hb;
        while ((hb = chunk_next(&b, &tb, &vb)) && tb < mint)
            chunk_iter_skip_before(&b, mint);
        cr_assert_eq(ha, hb, "mint %lld: one iterator ended early", (long long)mint);
        if (!ha)
            break;
        cr_assert_eq(ta, tb);
        cr_assert_eq(bits_of(va), bits_of(vb), "value at %lld", (long long)ta);
    }
    cr_assert_eq(a.err, b.err);
}

Test(chunk, skip_before_matches_sample_by_sample_decoding)
{
    enum { N = 240 };
    static int64_t ts[N];
    static double vs[N];
    for (int series = 0; series < 300; series++) {
        size_t n = 1 + rnd() % N;
        gen_series(series % 8, ts, vs, n);
        struct chunk_enc e;
        chunk_enc_init(&e);
        for (size_t i = 0; i < n; i++) {
            cr_assert_eq(chunk_append(&e, ts[i], vs[i]), 0);
            if (series % 3 == 0 && i % 40 == 39)
                cr_assert_eq(chunk_enc_pack(&e), 0); /* encoding 2 as the head has it */
        }
        size_t len;
        const unsigned char *b = chunk_bytes(&e, &len);
        cr_assert_not_null(b);
        int64_t probes[] = { INT64_MIN, ts[0], ts[n / 2], ts[n - 1], ts[n - 1] + 1,
                             ts[rnd() % n] - 1, ts[rnd() % n] + 1 };
        for (size_t p = 0; p < sizeof probes / sizeof probes[0]; p++) {
            expect_skip_same(b, len, probes[p]);
            expect_skip_same(e.buf, e.cap, probes[p]);
            if (len > 4) /* truncated: the same error at the same place */
                expect_skip_same(b, len - 1 - rnd() % (len / 2), probes[p]);
            static unsigned char flipped[8192]; /* a flipped bit: the same samples or error */
            cr_assert_leq(len, sizeof flipped);
            memcpy(flipped, b, len);
            size_t bit = 24 + rnd() % ((len - 3) * 8);
            flipped[bit / 8] ^= (unsigned char)(0x80 >> bit % 8);
            expect_skip_same(flipped, len, probes[p]);
        }
        chunk_enc_free(&e);
    }
}
