/* Tests server/ingest/remote_write.c's codec rw_decode: WriteRequests built with the
 * generated protobuf-c pack functions and snappy-compressed, the batch it produces, and
 * every rejection (bad snappy, bad protobuf, label rules, limits, timestamps, exemplars,
 * metadata, empty body, allocation failure); and the HTTP handler's answers that need no
 * store (415, 400, 413, an empty request). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../../../server/compress.h"
#include "../../../../server/ingest/ingest.h"
#include "../../../../server/ingest/remote_write.h"
#include "../../../../server/metrics.h"
#include "../../../../storage/base/vg_alloc.h"

#include "prom_remote_write.pb-c.h"

static struct config_limits lim;
static struct vg_arena *arena;
static struct rw_request rq;
static struct vg_err err;
static struct vg_buf body;

static void init(void)
{
    lim = (struct config_limits){
        .max_body_bytes = 1 << 20,
        .max_decoded_bytes = 1 << 20,
        .max_labels_per_series = 8,
        .max_label_name_length = 32,
        .max_label_value_length = 64,
        .max_series_per_request = 4,
    };
    arena = vg_arena_new(0);
    vg_buf_init(&body);
    vg_err_clear(&err);
}

static void fini(void)
{
    vg_alloc_fail_after(0);
    vg_arena_free(arena);
    vg_buf_free(&body);
}

TestSuite(remote_write, .init = init, .fini = fini);

/* ---- building requests ---- */

#define MAXL 16
struct series_spec {
    const char *labels[MAXL * 2]; /* name, value, ...; NULL ends */
    int64_t t[4];
    double v[4];
    size_t nsamples;
};

struct built {
    Prometheus__Label l[8][MAXL];
    Prometheus__Label *lp[8][MAXL];
    Prometheus__Sample s[8][4];
    Prometheus__Sample *sp[8][4];
    Prometheus__TimeSeries ts[8];
    Prometheus__TimeSeries *tsp[8];
    Prometheus__WriteRequest wr;
};
static struct built B;

static void build(const struct series_spec *specs, size_t n)
{
    memset(&B, 0, sizeof B);
    prometheus__write_request__init(&B.wr);
    for (size_t i = 0; i < n; i++) {
        prometheus__time_series__init(&B.ts[i]);
        size_t nl = 0;
        while (nl < MAXL && specs[i].labels[2 * nl]) {
            prometheus__label__init(&B.l[i][nl]);
            B.l[i][nl].name = (char *)specs[i].labels[2 * nl];
            B.l[i][nl].value = (char *)specs[i].labels[2 * nl + 1];
            B.lp[i][nl] = &B.l[i][nl];
            nl++;
        }
        B.ts[i].n_labels = nl;
        B.ts[i].labels = B.lp[i];
        for (size_t j = 0; j < specs[i].nsamples; j++) {
            prometheus__sample__init(&B.s[i][j]);
            B.s[i][j].timestamp = specs[i].t[j];
            B.s[i][j].value = specs[i].v[j];
            B.sp[i][j] = &B.s[i][j];
        }
        B.ts[i].n_samples = specs[i].nsamples;
        B.ts[i].samples = B.sp[i];
        B.tsp[i] = &B.ts[i];
    }
    B.wr.n_timeseries = n;
    B.wr.timeseries = B.tsp;
}

/* Packs msg, optionally appends extra raw bytes, snappy-encodes into body. */
static void encode_raw(const uint8_t *raw, size_t n)
{
    vg_buf_reset(&body);
    cr_assert_eq(compress_snappy_encode(raw, n, &body, &err), 0, "%s", err.msg);
}

static void encode(void)
{
    size_t n = prometheus__write_request__get_packed_size(&B.wr);
    uint8_t *raw = vg_malloc(n + 1);
    prometheus__write_request__pack(&B.wr, raw);
    encode_raw(raw, n);
    vg_free(raw);
}

static int decode(void)
{
    vg_err_clear(&err);
    return rw_decode(body.p, body.len, &lim, arena, &rq, &err);
}

static int decode_specs(const struct series_spec *specs, size_t n)
{
    build(specs, n);
    encode();
    return decode();
}

/* n copies of x{} with one sample at t=0. */
static void same_series(struct series_spec *s, size_t n)
{
    memset(s, 0, n * sizeof *s);
    for (size_t i = 0; i < n; i++) {
        s[i].labels[0] = "__name__";
        s[i].labels[1] = "x";
        s[i].nsamples = 1;
    }
}

static bool label_is(const struct label *l, const char *name, const char *value)
{
    return vg_str_eq_c(l->name, name) && vg_str_eq_c(l->value, value);
}

/* ---- the happy path ---- */

Test(remote_write, decodes_series_sorted_and_samples)
{
    struct series_spec s[] = {
        { { "job", "api", "__name__", "http_requests_total", "code", "200", NULL },
          { 1700000000000, 1700000015000 }, { 1, 2.5 }, 2 },
        { { "__name__", "up", "instance", "a:9090", "empty", "", NULL },
          { 1700000000000 }, { NAN }, 1 },
    };
    cr_assert_eq(decode_specs(s, 2), 0, "%s", err.msg);
    cr_assert_eq(rq.nsamples, 3);
    cr_assert_eq(rq.nhistograms, 0);
    cr_assert_eq(rq.batch.nseries, 2);
    const struct tsdb_series_in *a = &rq.batch.series[0];
    cr_assert_eq(a->nlabels, 3);
    cr_assert(label_is(&a->labels[0], "__name__", "http_requests_total"));
    cr_assert(label_is(&a->labels[1], "code", "200"));
    cr_assert(label_is(&a->labels[2], "job", "api"));
    cr_assert_eq(a->nsamples, 2);
    cr_assert_eq(a->samples[1].t, 1700000015000);
    cr_assert_eq(a->samples[1].v, 2.5);
    const struct tsdb_series_in *b = &rq.batch.series[1];
    cr_assert_eq(b->nlabels, 2, "the empty-valued label is dropped");
    cr_assert(label_is(&b->labels[1], "instance", "a:9090"));
    cr_assert(isnan(b->samples[0].v));
    cr_assert_eq(rq.batch.nmeta, 0);
}

Test(remote_write, keeps_stale_marker_bits)
{
    uint64_t bits = TSDB_STALE_NAN_BITS;
    double stale;
    memcpy(&stale, &bits, sizeof stale);
    struct series_spec s[] = { { { "__name__", "up", NULL }, { 5 }, { stale }, 1 } };
    cr_assert_eq(decode_specs(s, 1), 0, "%s", err.msg);
    uint64_t got;
    memcpy(&got, &rq.batch.series[0].samples[0].v, sizeof got);
    cr_assert_eq(got, TSDB_STALE_NAN_BITS);
}

Test(remote_write, empty_request_and_series_without_samples)
{
    build(NULL, 0);
    encode();
    cr_assert_eq(body.len, 1, "snappy of an empty message is one byte");
    cr_assert_eq(decode(), 0, "%s", err.msg);
    cr_assert_eq(rq.batch.nseries, 0);
    struct series_spec s[] = { { { "__name__", "up", NULL }, { 0 }, { 0 }, 0 } };
    cr_assert_eq(decode_specs(s, 1), 0, "%s", err.msg);
    cr_assert_eq(rq.batch.nseries, 0, "nothing to store for a series without samples");
}

Test(remote_write, exemplars_and_metadata)
{
    struct series_spec s[] = {
        { { "__name__", "rpc_seconds_bucket", "le", "0.5", NULL }, { 1000 }, { 7 }, 1 },
    };
    build(s, 1);
    Prometheus__Label el[2], *elp[2] = { &el[0], &el[1] };
    prometheus__label__init(&el[0]);
    prometheus__label__init(&el[1]);
    el[0].name = "trace_id";
    el[0].value = "4bf92f3577b34da6a3ce929d0e0e4736";
    el[1].name = "span_id";
    el[1].value = "00f067aa0ba902b7";
    Prometheus__Exemplar ex, *exp = &ex;
    prometheus__exemplar__init(&ex);
    ex.n_labels = 2;
    ex.labels = elp;
    ex.value = 0.31;
    ex.timestamp = 999;
    B.ts[0].n_exemplars = 1;
    B.ts[0].exemplars = &exp;
    Prometheus__MetricMetadata md[2], *mdp[2] = { &md[0], &md[1] };
    prometheus__metric_metadata__init(&md[0]);
    prometheus__metric_metadata__init(&md[1]);
    md[0].type = PROMETHEUS__METRIC_METADATA__METRIC_TYPE__HISTOGRAM;
    md[0].metric_family_name = "rpc_seconds";
    md[0].help = "RPC latency.";
    md[0].unit = "seconds";
    md[1].type = (Prometheus__MetricMetadata__MetricType)42; /* newer than us */
    md[1].metric_family_name = "x";
    B.wr.n_metadata = 2;
    B.wr.metadata = mdp;
    encode();
    cr_assert_eq(decode(), 0, "%s", err.msg);
    cr_assert_eq(rq.nexemplars, 1);
    const struct tsdb_series_in *si = &rq.batch.series[0];
    cr_assert_eq(si->nexemplars, 1);
    cr_assert_eq(si->exemplars[0].t, 999);
    cr_assert_eq(si->exemplars[0].v, 0.31);
    cr_assert_eq(si->exemplars[0].nlabels, 2);
    cr_assert(label_is(&si->exemplars[0].labels[0], "span_id", "00f067aa0ba902b7"), "sorted");
    cr_assert_eq(rq.batch.nmeta, 2);
    cr_assert(vg_str_eq_c(rq.batch.meta[0].metric, "rpc_seconds"));
    cr_assert_eq(rq.batch.meta[0].type, TSDB_TYPE_HISTOGRAM);
    cr_assert(vg_str_eq_c(rq.batch.meta[0].help, "RPC latency."));
    cr_assert(vg_str_eq_c(rq.batch.meta[0].unit, "seconds"));
    cr_assert_eq(rq.batch.meta[1].type, TSDB_TYPE_UNKNOWN);

    /* Rejections of the same shapes. */
    el[1].name = "span id";
    encode();
    cr_assert_eq(decode(), VG_EINVAL);
    cr_assert(strstr(err.msg, "timeseries[0]: exemplar[0]: invalid exemplar label name"), "%s",
              err.msg);
    el[1].name = "trace_id";
    encode();
    cr_assert_eq(decode(), VG_EINVAL);
    cr_assert(strstr(err.msg, "exemplar[0]"), "%s", err.msg);
    el[1].name = "span_id";
    el[1].value = "0123456789012345678901234567890123456789012345678901234567890123456789"
                  "0123456789012345678901234567890123456789";
    encode();
    cr_assert_eq(decode(), VG_EINVAL);
    cr_assert(strstr(err.msg, "limit of 128"), "%s", err.msg);
    el[1].value = "x";
    ex.timestamp = INT64_MIN;
    encode();
    cr_assert_eq(decode(), VG_EINVAL);
    cr_assert(strstr(err.msg, "timeseries[0]: exemplar[0]: timestamp"), "%s", err.msg);
    ex.timestamp = 1;
    md[1].metric_family_name = "bad name";
    encode();
    cr_assert_eq(decode(), VG_EINVAL);
    cr_assert(strstr(err.msg, "metadata[1]: invalid metric family name \"bad name\""), "%s",
              err.msg);
    md[1].metric_family_name = "x";
    md[1].help = "\xc3\x28";
    encode();
    cr_assert_eq(decode(), VG_EINVAL);
    cr_assert_eq(rq.batch.nseries, 0, "no batch on failure");
}

/* A TimeSeries with a native histogram (field 4), which our .proto does not declare. */
Test(remote_write, native_histograms_are_counted_not_stored)
{
    struct series_spec s[] = { { { "__name__", "h", NULL }, { 1 }, { 1 }, 1 } };
    build(s, 1);
    size_t n = prometheus__time_series__get_packed_size(&B.ts[0]);
    uint8_t raw[256];
    const uint8_t hist[] = { 0x22, 0x02, 0x08, 0x05, 0x22, 0x00 }; /* two histograms */
    raw[0] = 0x0a; /* WriteRequest.timeseries */
    raw[1] = (uint8_t)(n + sizeof hist);
    prometheus__time_series__pack(&B.ts[0], raw + 2);
    memcpy(raw + 2 + n, hist, sizeof hist);
    encode_raw(raw, 2 + n + sizeof hist);
    cr_assert_eq(decode(), 0, "%s", err.msg);
    cr_assert_eq(rq.nhistograms, 2);
    cr_assert_eq(rq.nsamples, 1);
    cr_assert_eq(rq.batch.nseries, 1);
}

/* Fields in any order, unknown fields skipped, strings cut at a NUL (as protobuf-c's C
 * strings were, so a NUL never reaches an index key). */
Test(remote_write, wire_details_of_the_decoder)
{
    const uint8_t raw[] = {
        0x0a, 0x2b,                                     /* timeseries, 43 bytes */
        0x0a, 0x0e,                                     /* label: value before name */
        0x12, 0x02, 'u', 'p', 0x0a, 0x08, '_', '_', 'n', 'a', 'm', 'e', '_', '_',
        0x0a, 0x0c,                                     /* label with a NUL, field 9 */
        0x0a, 0x03, 'j', 'o', 'b', 0x12, 0x03, 'a', 0x00, 'b', 0x48, 0x01,
        0x12, 0x0b,                                     /* sample: timestamp first */
        0x10, 0x05, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f,
    };
    encode_raw(raw, sizeof raw);
    cr_assert_eq(decode(), 0, "%s", err.msg);
    cr_assert_eq(rq.batch.nseries, 1);
    const struct tsdb_series_in *s = &rq.batch.series[0];
    cr_assert_eq(s->nlabels, 2);
    cr_assert(label_is(&s->labels[0], "__name__", "up"));
    cr_assert(label_is(&s->labels[1], "job", "a"));
    cr_assert_eq(s->nsamples, 1);
    cr_assert_eq(s->samples[0].t, 5);
    cr_assert_eq(s->samples[0].v, 1.0);

    /* A known field with another wire type (a label name sent as a varint). */
    const uint8_t wrong[] = { 0x0a, 0x04, 0x0a, 0x02, 0x08, 0x01 };
    encode_raw(wrong, sizeof wrong);
    cr_assert_eq(decode(), VG_EINVAL);
    cr_assert(strstr(err.msg, "timeseries[0]: malformed protobuf"), "%s", err.msg);
    cr_assert_eq(rq.nsamples, 0);
}

/* Samples in the usual order (value, then timestamp) take a shortcut; anything after
 * them, a repeated field or a bad varint goes the general way, with the same result. */
Test(remote_write, sample_shortcut_and_its_edges)
{
    /* __name__="upx", one sample t=127, v=3. */
    const uint8_t ok[] = {
        0x0a, 0x1e, 0x0a, 0x0f, 0x0a, 0x08, '_', '_', 'n', 'a', 'm', 'e', '_', '_',
        0x12, 0x03, 'u', 'p', 'x', 0x12, 0x0b, 0x09, 0, 0, 0, 0, 0, 0, 0x08, 0x40,
        0x10, 0x7f,
    };
    encode_raw(ok, sizeof ok);
    cr_assert_eq(decode(), 0, "%s", err.msg);
    cr_assert_eq(rq.batch.series[0].samples[0].t, 127);
    cr_assert_eq(rq.batch.series[0].samples[0].v, 3.0);
    /* The timestamp given twice: the last one counts (general path). */
    const uint8_t twice[] = {
        0x0a, 0x20, 0x0a, 0x0f, 0x0a, 0x08, '_', '_', 'n', 'a', 'm', 'e', '_', '_',
        0x12, 0x03, 'u', 'p', 'x', 0x12, 0x0d, 0x09, 0, 0, 0, 0, 0, 0, 0x08, 0x40,
        0x10, 0x7f, 0x10, 0x05,
    };
    encode_raw(twice, sizeof twice);
    cr_assert_eq(decode(), 0, "%s", err.msg);
    cr_assert_eq(rq.batch.series[0].samples[0].t, 5);
    /* A timestamp varint that runs past the sample is malformed. */
    const uint8_t cut[] = {
        0x0a, 0x1e, 0x0a, 0x0f, 0x0a, 0x08, '_', '_', 'n', 'a', 'm', 'e', '_', '_',
        0x12, 0x03, 'u', 'p', 'x', 0x12, 0x0b, 0x09, 0, 0, 0, 0, 0, 0, 0x08, 0x40,
        0x10, 0xff,
    };
    encode_raw(cut, sizeof cut);
    cr_assert_eq(decode(), VG_EINVAL);
    cr_assert(strstr(err.msg, "malformed protobuf"), "%s", err.msg);
}

/* ---- rejections ---- */

Test(remote_write, empty_body)
{
    cr_assert_eq(rw_decode("", 0, &lim, arena, &rq, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "empty body"), "%s", err.msg);
}

Test(remote_write, bad_snappy)
{
    const char junk[] = "\x05\xff\xff\xff garbage";
    cr_assert_eq(rw_decode(junk, sizeof junk - 1, &lim, arena, &rq, &err), VG_EINVAL);
    cr_assert(strstr(err.msg, "snappy"), "%s", err.msg);
    /* A header promising 4 GiB is refused before any allocation. */
    const char bomb[] = "\xff\xff\xff\xff\x0f";
    cr_assert_eq(rw_decode(bomb, sizeof bomb - 1, &lim, arena, &rq, &err), VG_ETOOLARGE);
    /* A valid snappy header promising more than the output holds. */
    const char trunc[] = "\x10\x00\x61";
    cr_assert_eq(rw_decode(trunc, 3, &lim, arena, &rq, &err), VG_EINVAL);
    /* Uncompressed protobuf sent without snappy. */
    struct series_spec s[] = { { { "__name__", "up", NULL }, { 1 }, { 1 }, 1 } };
    build(s, 1);
    uint8_t raw[128];
    size_t n = prometheus__write_request__pack(&B.wr, raw);
    cr_assert_lt(rw_decode(raw, n, &lim, arena, &rq, &err), 0);
}

Test(remote_write, bad_protobuf)
{
    const uint8_t cases[][4] = {
        { 0x0a, 0x05, 0x0a, 0x00 }, /* length past the end */
        { 0xff, 0xff, 0xff, 0xff }, /* unterminated varint tag */
        { 0x0b, 0x00, 0x00, 0x00 }, /* group wire type */
        { 0x0a, 0x02, 0x12, 0x09 }, /* TimeSeries with a truncated sample */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        encode_raw(cases[i], 4);
        cr_assert_eq(decode(), VG_EINVAL, "case %zu", i);
        cr_assert(strstr(err.msg, "malformed protobuf"), "case %zu: %s", i, err.msg);
    }
}

Test(remote_write, missing_metric_name)
{
    struct series_spec s[] = {
        { { "__name__", "ok", NULL }, { 1 }, { 1 }, 1 },
        { { "job", "a", NULL }, { 1 }, { 1 }, 1 },
    };
    cr_assert_eq(decode_specs(s, 2), VG_EINVAL);
    cr_assert(strstr(err.msg, "timeseries[1]: series has no metric name"), "%s", err.msg);
    cr_assert_eq(rq.nsamples, 2, "the sample count is known for the rejected counter");
    cr_assert_eq(rq.batch.nseries, 0);
    struct series_spec e[] = { { { "__name__", "", "job", "a", NULL }, { 1 }, { 1 }, 1 } };
    cr_assert_eq(decode_specs(e, 1), VG_EINVAL);
    cr_assert(strstr(err.msg, "no metric name"), "%s", err.msg);
}

Test(remote_write, invalid_names)
{
    struct series_spec m[] = { { { "__name__", "http.requests", NULL }, { 1 }, { 1 }, 1 } };
    cr_assert_eq(decode_specs(m, 1), VG_EINVAL);
    cr_assert(strstr(err.msg, "invalid metric name \"http.requests\""), "%s", err.msg);
    struct series_spec l[] = { { { "__name__", "x", "0job", "a", NULL }, { 1 }, { 1 }, 1 } };
    cr_assert_eq(decode_specs(l, 1), VG_EINVAL);
    cr_assert(strstr(err.msg, "invalid label name \"0job\""), "%s", err.msg);
    struct series_spec c[] = { { { "__name__", "x", "a:b", "a", NULL }, { 1 }, { 1 }, 1 } };
    cr_assert_eq(decode_specs(c, 1), VG_EINVAL);
}

Test(remote_write, invalid_utf8_value)
{
    struct series_spec s[] = { { { "__name__", "x", "a", "\xc3\x28", NULL }, { 1 }, { 1 }, 1 } };
    cr_assert_eq(decode_specs(s, 1), VG_EINVAL);
    cr_assert(strstr(err.msg, "UTF-8"), "%s", err.msg);
}

Test(remote_write, duplicate_labels)
{
    struct series_spec s[] = {
        { { "__name__", "x", "job", "a", "env", "p", "job", "b", NULL }, { 1 }, { 1 }, 1 },
    };
    cr_assert_eq(decode_specs(s, 1), VG_EINVAL);
    cr_assert(strstr(err.msg, "timeseries[0]"), "%s", err.msg);
    cr_assert(strstr(err.msg, "job"), "%s", err.msg);
}

Test(remote_write, too_many_labels)
{
    struct series_spec s[] = { { { "__name__", "x", "a", "1", "b", "1", "c", "1", "d", "1",
                                   "e", "1", "f", "1", "g", "1", "h", "1", NULL },
                                 { 1 }, { 1 }, 1 } };
    cr_assert_eq(decode_specs(s, 1), VG_EINVAL);
    cr_assert(strstr(err.msg, "max_labels_per_series"), "%s", err.msg);
    lim.max_labels_per_series = 9;
    cr_assert_eq(decode_specs(s, 1), 0, "%s", err.msg);
}

Test(remote_write, too_long_names_and_values)
{
    char v[66];
    memset(v, 'v', 65);
    v[65] = '\0';
    struct series_spec s[] = { { { "__name__", "x", "a", v, NULL }, { 1 }, { 1 }, 1 } };
    cr_assert_eq(decode_specs(s, 1), VG_EINVAL);
    cr_assert(strstr(err.msg, "max_label_value_length"), "%s", err.msg);
    v[64] = '\0';
    cr_assert_eq(decode_specs(s, 1), 0, "64 bytes is at the limit: %s", err.msg);
    char n[34];
    memset(n, 'n', 33);
    n[33] = '\0';
    struct series_spec t[] = { { { "__name__", "x", n, "1", NULL }, { 1 }, { 1 }, 1 } };
    cr_assert_eq(decode_specs(t, 1), VG_EINVAL);
    cr_assert(strstr(err.msg, "max_label_name_length"), "%s", err.msg);
}

Test(remote_write, too_many_series)
{
    struct series_spec s[5];
    same_series(s, 5);
    cr_assert_eq(decode_specs(s, 5), VG_ETOOLARGE);
    cr_assert(strstr(err.msg, "5 series") && strstr(err.msg, "max_series_per_request"), "%s",
              err.msg);
    cr_assert_eq(decode_specs(s, 4), 0, "%s", err.msg);
}

Test(remote_write, absurd_timestamps)
{
    const int64_t bad[] = { INT64_MIN, INT64_MAX, RW_MIN_TIME_MS - 1, RW_MAX_TIME_MS + 1 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct series_spec s[] = { { { "__name__", "x", NULL }, { 1, bad[i] }, { 1, 2 }, 2 } };
        cr_assert_eq(decode_specs(s, 1), VG_EINVAL, "case %zu", i);
        cr_assert(strstr(err.msg, "timeseries[0]: sample[1]: timestamp"), "%s", err.msg);
    }
    struct series_spec ok[] = {
        { { "__name__", "x", NULL }, { RW_MIN_TIME_MS, RW_MAX_TIME_MS, -1 }, { 1, 2, 3 }, 3 },
    };
    cr_assert_eq(decode_specs(ok, 1), 0, "%s", err.msg);
}

Test(remote_write, decoded_size_limit)
{
    struct series_spec s[] = { { { "__name__", "x", NULL }, { 1 }, { 1 }, 1 } };
    build(s, 1);
    encode();
    lim.max_decoded_bytes = 4;
    cr_assert_eq(decode(), VG_ETOOLARGE);
    cr_assert(strstr(err.msg, "max_decoded_bytes"), "%s", err.msg);
}

Test(remote_write, arena_budget_is_lifted_after_decoding)
{
    struct series_spec s[] = { { { "__name__", "x", NULL }, { 1 }, { 1 }, 1 } };
    cr_assert_eq(decode_specs(s, 1), 0, "%s", err.msg);
    cr_assert_not_null(vg_arena_alloc(arena, 8 << 20));
}

/* Many empty submessages: each costs a few times its 2 wire bytes (no per-message
 * allocation since the hand-written decoder), so the budget is never what stops them. */
Test(remote_write, hostile_expansion_stays_within_budget)
{
    size_t n = 200000;
    uint8_t *raw = vg_malloc(2 * n + 16);
    size_t k = 0;
    /* one TimeSeries holding n empty Samples */
    size_t inner = 2 * n;
    raw[k++] = 0x0a;
    for (size_t v = inner; ; v >>= 7) {
        raw[k++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        if (v < 0x80)
            break;
    }
    for (size_t i = 0; i < n; i++) {
        raw[k++] = 0x12;
        raw[k++] = 0x00;
    }
    lim.max_decoded_bytes = 4 << 20;
    encode_raw(raw, k);
    vg_free(raw);
    size_t before = vg_arena_used(arena);
    cr_assert_eq(decode(), VG_EINVAL);
    cr_assert(strstr(err.msg, "no metric name"), "%s", err.msg);
    cr_assert_eq(rq.nsamples, n);
    cr_assert_leq(vg_arena_used(arena) - before, 16 * k + RW_ARENA_SLACK);
}

/* A caller's tighter arena cap is kept: decoding past it is "too large", not ENOMEM. */
Test(remote_write, arena_cap_makes_decoding_too_large)
{
    struct series_spec s[8];
    memset(s, 0, sizeof s);
    for (size_t i = 0; i < 8; i++) {
        for (size_t j = 0; j < MAXL; j++) {
            s[i].labels[2 * j] = j ? "label_name_that_is_long" : "__name__";
            s[i].labels[2 * j + 1] = "v";
        }
        s[i].nsamples = 1;
    }
    build(s, 8);
    encode();
    vg_arena_free(arena);
    arena = vg_arena_new(256);
    vg_arena_set_limit(arena, 4096); /* the decompressed body fits, its labels do not */
    cr_assert_eq(decode(), VG_ETOOLARGE);
    cr_assert(strstr(err.msg, "too large"), "%s", err.msg);
    cr_assert_eq(vg_arena_get_limit(arena), 4096);
}

Test(remote_write, allocation_failure_fails_cleanly)
{
    struct series_spec s[] = {
        { { "__name__", "a", "job", "x", NULL }, { 1, 2 }, { 1, 2 }, 2 },
        { { "__name__", "b", "job", "y", NULL }, { 1 }, { 1 }, 1 },
    };
    build(s, 2);
    encode();
    vg_arena_free(arena);
    size_t live = vg_alloc_live_bytes();
    bool ok = false;
    for (uint64_t n = 1; n < 100 && !ok; n++) {
        arena = vg_arena_new(256);
        vg_alloc_fail_after(n);
        int rc = rw_decode(body.p, body.len, &lim, arena, &rq, &err);
        vg_alloc_fail_after(0);
        if (rc == 0) {
            ok = true;
            cr_assert_eq(rq.batch.nseries, 2);
        } else {
            cr_assert(rc == VG_ENOMEM || rc == VG_ETOOLARGE, "rc %d at %llu: %s", rc,
                      (unsigned long long)n, err.msg);
        }
        vg_arena_free(arena);
        arena = NULL;
        cr_assert_eq(vg_alloc_live_bytes(), live);
    }
    cr_assert(ok);
}

/* ---- the fast label check agrees with ingest_check_labels ----
 *
 * rw_decode checks labels in the usual form while decoding them and skips
 * ingest_check_labels for those; requests of random label sets (names and values chosen
 * to hit every rule and limit, later series often copies of an earlier one with one
 * change, which exercises the names remembered from the previous series) must decode to
 * exactly what ingest_check_labels makes of the same labels, or fail with its message. */

static const char *const fz_names[] = {
    "__name__", "a", "ab", "b", "job", "le", "_x", "1a", "a:b", "A_Z09", "instance",
    "name_that_is_longer_than_32_bytes", "zz", "__name_", "__name__x",
};
static const char *const fz_values[] = {
    "", "v", "x y", "h\xc3\xa9llo", "\xff", "abcdefghijklmnopqrstuvwxyz0123456789",
    "metric:name", "9abc", "_ok", "up", "http_requests_total", "a\tb",
    "a_very_long_value_that_is_more_than_sixty_four_bytes_long_0123456789",
};

static uint64_t fz_rng = 88172645463325252ULL;
static unsigned fz_next(unsigned n)
{
    fz_rng ^= fz_rng << 13;
    fz_rng ^= fz_rng >> 7;
    fz_rng ^= fz_rng << 17;
    return (unsigned)(fz_rng % n);
}

#define FZ_N(a) (unsigned)(sizeof a / sizeof a[0])

static void fz_series(struct series_spec *sp, const struct series_spec *prev)
{
    memset(sp, 0, sizeof *sp);
    sp->nsamples = 1;
    sp->t[0] = 1000;
    sp->v[0] = fz_next(3); /* a zero value is left out on the wire */
    if (prev && fz_next(3)) {
        memcpy(sp->labels, prev->labels, sizeof sp->labels);
        size_t n = 0;
        while (sp->labels[2 * n])
            n++;
        unsigned what = fz_next(4);
        size_t k = n ? fz_next((unsigned)n) : 0;
        if (n && what == 0)
            sp->labels[2 * k + 1] = fz_values[fz_next(FZ_N(fz_values))];
        else if (n && what == 1)
            sp->labels[2 * k] = fz_names[fz_next(FZ_N(fz_names))];
        else if (n > 1 && what == 2) {
            size_t j = fz_next((unsigned)n);
            const char *t = sp->labels[2 * k];
            sp->labels[2 * k] = sp->labels[2 * j];
            sp->labels[2 * j] = t;
        } else if (n < MAXL - 1) {
            sp->labels[2 * n] = fz_names[fz_next(FZ_N(fz_names))];
            sp->labels[2 * n + 1] = fz_values[fz_next(FZ_N(fz_values))];
        }
        return;
    }
    /* Mostly sorted sets with __name__ first, as senders write them. */
    size_t n = fz_next(10);
    unsigned start = fz_next(4);
    for (size_t k = 0; k < n; k++) {
        unsigned ni = fz_next(5) ? (start + (unsigned)k) % FZ_N(fz_names)
                                 : fz_next(FZ_N(fz_names));
        sp->labels[2 * k] = k == 0 && fz_next(4) ? "__name__" : fz_names[ni];
        sp->labels[2 * k + 1] = fz_values[fz_next(5) ? 9 + fz_next(2) : fz_next(FZ_N(fz_values))];
    }
}

Test(remote_write, fast_label_check_matches_ingest_check_labels)
{
    int fast_ok = 0, failed = 0, encoded = 0;
    for (int iter = 0; iter < 4000; iter++) {
        struct series_spec sp[4];
        size_t ns = 1 + fz_next(4);
        for (size_t i = 0; i < ns; i++)
            fz_series(&sp[i], i ? &sp[i - 1] : NULL);
        /* The reference: ingest_check_labels on the same labels, series by series. */
        struct label ref[4][MAXL];
        int refn[4];
        struct vg_err rerr;
        vg_err_clear(&rerr);
        int bad = -1;
        for (size_t i = 0; i < ns && bad < 0; i++) {
            size_t n = 0;
            for (; sp[i].labels[2 * n]; n++)
                ref[i][n] = (struct label){ vg_str_c(sp[i].labels[2 * n]),
                                            vg_str_c(sp[i].labels[2 * n + 1]) };
            refn[i] = ingest_check_labels(&lim, ref[i], n, &rerr);
            if (refn[i] < 0)
                bad = (int)i;
        }
        vg_arena_reset(arena);
        int rc = decode_specs(sp, ns);
        if (bad >= 0) {
            failed++;
            cr_assert_eq(rc, VG_EINVAL, "iteration %d: expected %s", iter, rerr.msg);
            char want[64];
            snprintf(want, sizeof want, "timeseries[%d]", bad);
            cr_assert(strstr(err.msg, want) && strstr(err.msg, rerr.msg),
                      "iteration %d: got \"%s\", expected %s: %s", iter, err.msg, want,
                      rerr.msg);
            continue;
        }
        cr_assert_eq(rc, 0, "iteration %d: %s", iter, err.msg);
        fast_ok++;
        cr_assert_eq(rq.batch.nseries, ns);
        for (size_t i = 0; i < ns; i++) {
            const struct tsdb_series_in *si = &rq.batch.series[i];
            cr_assert_eq(si->nlabels, (size_t)refn[i], "iteration %d series %zu", iter, i);
            for (size_t k = 0; k < si->nlabels; k++)
                cr_assert(vg_str_eq(si->labels[k].name, ref[i][k].name) &&
                              vg_str_eq(si->labels[k].value, ref[i][k].value),
                          "iteration %d series %zu label %zu", iter, i, k);
            /* A canonical encoding made while decoding is exactly labels_encode's. */
            if (rq.enc && rq.enc[i].p) {
                struct vg_buf want;
                vg_buf_init(&want);
                labels_encode(si->labels, si->nlabels, &want);
                cr_assert(rq.enc[i].len == want.len &&
                              memcmp(rq.enc[i].p, want.p, want.len) == 0,
                          "iteration %d series %zu: encoding differs", iter, i);
                vg_buf_free(&want);
                encoded++;
            }
        }
    }
    cr_assert(fast_ok > 400 && failed > 400, "accepted %d, rejected %d", fast_ok, failed);
    cr_assert(encoded > 400, "%d series encoded while decoding", encoded);
}

/* ---- the HTTP handler, on the paths that answer before the store ---- */

static struct vigil vg;
static struct config *cfg;
static struct http_response resp;

static void hinit(void)
{
    init();
    cfg = config_default();
    cr_assert_not_null(cfg);
    cfg->limits.max_series_per_request = 2;
    vg.cfg = cfg;
    vg.metrics = metrics_new();
    struct vg_err e;
    cr_assert_eq(ingest_metrics_init(&vg, &e), 0, "%s", e.msg);
    memset(&resp, 0, sizeof resp);
}

static void hfini(void)
{
    ingest_metrics_free(&vg);
    metrics_free(vg.metrics);
    config_free(cfg);
    vg_buf_free(&resp.body);
    fini();
}

TestSuite(remote_write_http, .init = hinit, .fini = hfini);

static void post(const char *ctype, const char *enc)
{
    struct http_request r;
    memset(&r, 0, sizeof r);
    r.method = "POST";
    r.path = "/api/v1/write";
    r.content_type = ctype;
    r.content_encoding = enc;
    r.body = (struct vg_str){ body.p, body.len };
    r.arena = arena;
    vg_buf_free(&resp.body);
    memset(&resp, 0, sizeof resp);
    resp.status = 200;
    cr_assert_eq(mod_remote_write.nroutes, 1);
    cr_assert_str_eq(mod_remote_write.routes[0].path, "/api/v1/write");
    mod_remote_write.routes[0].fn(&vg, &r, &resp);
    vg_buf_cstr(&resp.body);
}

static bool counted(const char *line)
{
    struct vg_buf out;
    vg_buf_init(&out);
    metrics_render(vg.metrics, &out);
    bool found = strstr(vg_buf_cstr(&out), line) != NULL;
    vg_buf_free(&out);
    return found;
}

Test(remote_write_http, unsupported_encoding_and_types_are_415)
{
    struct series_spec s[] = { { { "__name__", "up", NULL }, { 1 }, { 1 }, 1 } };
    build(s, 1);
    encode();
    post("application/x-protobuf", "zstd");
    cr_assert_eq(resp.status, 415);
    cr_assert(strstr(resp.body.p, "Content-Encoding \"zstd\""), "%s", resp.body.p);
    post("application/json", "snappy");
    cr_assert_eq(resp.status, 415);
    post("application/x-protobuf;proto=io.prometheus.write.v2.Request", "snappy");
    cr_assert_eq(resp.status, 415);
    cr_assert(strstr(resp.body.p, "io.prometheus.write.v2.Request"), "%s", resp.body.p);
    cr_assert(counted("vigil_ingest_requests_total{receiver=\"remote_write\",code=\"415\"} 3"));
}

Test(remote_write_http, invalid_request_is_400_plain_text_and_counted)
{
    struct series_spec s[] = { { { "job", "x", NULL }, { 1, 2 }, { 1, 2 }, 2 } };
    build(s, 1);
    encode();
    post("application/x-protobuf; proto=prometheus.WriteRequest", "snappy");
    cr_assert_eq(resp.status, 400);
    cr_assert_str_eq(resp.content_type, "text/plain; charset=utf-8");
    cr_assert(strstr(resp.body.p, "timeseries[0]: series has no metric name"), "%s",
              resp.body.p);
    cr_assert(counted("vigil_ingest_requests_total{receiver=\"remote_write\",code=\"400\"} 1"));
    cr_assert(counted("vigil_ingest_samples_rejected_total{receiver=\"remote_write\","
                      "reason=\"invalid\"} 2"));
}

Test(remote_write_http, too_many_series_is_413)
{
    struct series_spec s[3];
    same_series(s, 3);
    build(s, 3);
    encode();
    post(NULL, NULL); /* old senders omit both headers; Prometheus assumes snappy protobuf */
    cr_assert_eq(resp.status, 413);
    cr_assert(strstr(resp.body.p, "max_series_per_request"), "%s", resp.body.p);
}

Test(remote_write_http, empty_write_request_is_204_without_the_store)
{
    build(NULL, 0);
    encode();
    post("application/x-protobuf", "snappy");
    cr_assert_eq(resp.status, 204);
    cr_assert_eq(resp.body.len, 0);
    cr_assert(counted("vigil_ingest_requests_total{receiver=\"remote_write\",code=\"204\"} 1"));
}
