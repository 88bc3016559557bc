/* remote_write: see remote_write.h.
 *
 * Wire format (Prometheus remote write 1.0): the body is one snappy block (not the
 * framed format) holding a protobuf prometheus.WriteRequest (proto/prom_remote_write.proto).
 * Headers a sender sets: Content-Encoding: snappy, Content-Type: application/x-protobuf,
 * X-Prometheus-Remote-Write-Version: 0.1.0. Like Prometheus 3 we take a missing
 * Content-Encoding or Content-Type to mean these (old clients omit them), and answer 415
 * to anything else, which is also how a remote write 2.0 sender learns to fall back to 1.0.
 *
 * Native histograms (TimeSeries field 4) are not declared in our .proto, so protobuf-c
 * keeps them as unknown fields; we count them and say in the 400 that they were dropped,
 * storing the float samples of the same request (a sender never retries a 4xx).
 *
 * protobuf-c gives string fields as NUL-terminated copies without their length, so a label
 * holding a NUL byte is seen up to that byte; everything else is validated on its bytes. */
#include "remote_write.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_log.h"
#include "../compress.h"
#include "../http.h"
#include "../pb_alloc.h"
#include "ingest.h"

#include "prom_remote_write.pb-c.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define RECEIVER "remote_write"
#define HISTOGRAMS_FIELD 4 /* prometheus.TimeSeries.histograms */
/* Prometheus's limit on an exemplar's label set (names and values, in runes). */
#define EXEMPLAR_MAX_LABEL_RUNES 128

/* The arena allocator, noting whether an allocation failed so a NULL from unpack can be
 * told apart: malformed input, over the arena budget, or out of memory. */
struct track_alloc {
    ProtobufCAllocator base;
    bool failed;
    bool over_budget;
};

static void *track_alloc_fn(void *data, size_t n)
{
    struct track_alloc *t = data;
    void *p = t->base.alloc(t->base.allocator_data, n);
    if (!p && !t->failed) {
        t->failed = true;
        /* The arena refuses either at its cap or because vg_malloc failed; a probe
         * of the same size tells which. */
        void *probe = vg_malloc(n);
        t->over_budget = probe != NULL;
        vg_free(probe);
    }
    return p;
}

static void track_free_fn(void *data, void *p)
{
    struct track_alloc *t = data;
    t->base.free(t->base.allocator_data, p);
}

static struct vg_str cstr(const char *s)
{
    return vg_str_c(s ? s : "");
}

static size_t utf8_runes(struct vg_str s)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++)
        n += ((unsigned char)s.p[i] & 0xC0) != 0x80;
    return n;
}

static bool time_ok(int64_t t)
{
    return t >= RW_MIN_TIME_MS && t <= RW_MAX_TIME_MS;
}

static int bad_time(struct vg_err *err, int64_t t)
{
    return vg_err_set(err, VG_EINVAL,
                      "timestamp %lld ms is outside years 0001-9999 (a NaN or uninitialised "
                      "time converted to an integer?)", (long long)t);
}

/* Pointers to protobuf labels -> struct label array in the arena (views, no copies). */
static struct label *to_labels(struct vg_arena *a, Prometheus__Label *const *pl, size_t n)
{
    struct label *ls = vg_arena_alloc(a, (n ? n : 1) * sizeof *ls);
    if (!ls)
        return NULL;
    for (size_t k = 0; k < n; k++) {
        ls[k].name = cstr(pl[k]->name);
        ls[k].value = cstr(pl[k]->value);
    }
    return ls;
}

static int check_exemplar(struct vg_arena *a, const Prometheus__Exemplar *pe,
                          struct tsdb_exemplar *ex, struct vg_err *err)
{
    struct label *ls = to_labels(a, pe->labels, pe->n_labels);
    if (!ls)
        return vg_err_set(err, VG_ETOOLARGE, "request too large to decode");
    size_t n = 0, runes = 0;
    for (size_t k = 0; k < pe->n_labels; k++) {
        struct label l = ls[k];
        if (l.value.len == 0)
            continue; /* absent, as for series labels */
        if (!ingest_valid_label_name(l.name))
            return vg_err_set(err, VG_EINVAL, "invalid exemplar label name \"%.*s\"",
                              (int)(l.name.len > 64 ? 64 : l.name.len), l.name.p);
        if (!ingest_valid_utf8(l.value))
            return vg_err_set(err, VG_EINVAL, "value of exemplar label %s is not valid UTF-8",
                              l.name.p);
        runes += utf8_runes(l.name) + utf8_runes(l.value);
        ls[n++] = l;
    }
    if (runes > EXEMPLAR_MAX_LABEL_RUNES)
        return vg_err_set(err, VG_EINVAL,
                          "exemplar labels are %zu characters long, more than Prometheus's "
                          "limit of %d", runes, EXEMPLAR_MAX_LABEL_RUNES);
    labels_sort(ls, n);
    if (labels_check_unique(ls, n, err) < 0)
        return vg_err_prefix(err, "exemplar");
    if (!time_ok(pe->timestamp))
        return bad_time(err, pe->timestamp);
    ex->labels = ls;
    ex->nlabels = n;
    ex->t = pe->timestamp;
    ex->v = pe->value;
    return 0;
}

static size_t count_histograms(const Prometheus__TimeSeries *ts)
{
    size_t n = 0;
    for (unsigned k = 0; k < ts->base.n_unknown_fields; k++)
        n += ts->base.unknown_fields[k].tag == HISTOGRAMS_FIELD;
    return n;
}

/* Validates series i and fills *si (left with no samples when it has nothing to store). */
static int check_series(const struct config_limits *lim, struct vg_arena *a,
                        const Prometheus__TimeSeries *ts, struct tsdb_series_in *si,
                        struct vg_err *err)
{
    struct label *ls = to_labels(a, ts->labels, ts->n_labels);
    if (!ls)
        return vg_err_set(err, VG_ETOOLARGE, "request too large to decode");
    int n = ingest_check_labels(lim, ls, ts->n_labels, err);
    if (n < 0)
        return n;
    struct tsdb_sample *ss = vg_arena_alloc(a, (ts->n_samples ? ts->n_samples : 1) * sizeof *ss);
    struct tsdb_exemplar *es =
        vg_arena_alloc(a, (ts->n_exemplars ? ts->n_exemplars : 1) * sizeof *es);
    if (!ss || !es)
        return vg_err_set(err, VG_ETOOLARGE, "request too large to decode");
    for (size_t j = 0; j < ts->n_samples; j++) {
        if (!time_ok(ts->samples[j]->timestamp)) {
            bad_time(err, ts->samples[j]->timestamp);
            return vg_err_prefix(err, "sample[%zu]", j);
        }
        ss[j].t = ts->samples[j]->timestamp;
        ss[j].v = ts->samples[j]->value;
    }
    for (size_t j = 0; j < ts->n_exemplars; j++) {
        int rc = check_exemplar(a, ts->exemplars[j], &es[j], err);
        if (rc < 0)
            return vg_err_prefix(err, "exemplar[%zu]", j);
    }
    si->labels = ls;
    si->nlabels = (size_t)n;
    si->samples = ss;
    si->nsamples = ts->n_samples;
    si->exemplars = es;
    si->nexemplars = ts->n_exemplars;
    return 0;
}

static enum tsdb_metric_type meta_type(Prometheus__MetricMetadata__MetricType t)
{
    switch (t) {
    case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__COUNTER: return TSDB_TYPE_COUNTER;
    case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGE: return TSDB_TYPE_GAUGE;
    case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__HISTOGRAM: return TSDB_TYPE_HISTOGRAM;
    case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__GAUGEHISTOGRAM: return TSDB_TYPE_GAUGEHISTOGRAM;
    case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__SUMMARY: return TSDB_TYPE_SUMMARY;
    case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__INFO: return TSDB_TYPE_INFO;
    case PROMETHEUS__METRIC_METADATA__METRIC_TYPE__STATESET: return TSDB_TYPE_STATESET;
    default: return TSDB_TYPE_UNKNOWN; /* a type newer than this file: keep the row */
    }
}

static int check_metadata(const Prometheus__MetricMetadata *pm, struct tsdb_metadata *md,
                          struct vg_err *err)
{
    md->metric = cstr(pm->metric_family_name);
    md->help = cstr(pm->help);
    md->unit = cstr(pm->unit);
    md->type = meta_type(pm->type);
    if (!ingest_valid_metric_name(md->metric))
        return vg_err_set(err, VG_EINVAL, "invalid metric family name \"%.*s\"",
                          (int)(md->metric.len > 64 ? 64 : md->metric.len), md->metric.p);
    if (!ingest_valid_utf8(md->help) || !ingest_valid_utf8(md->unit))
        return vg_err_set(err, VG_EINVAL, "help or unit of %s is not valid UTF-8", md->metric.p);
    return 0;
}

static int unpack(struct vg_str raw, struct vg_arena *a, Prometheus__WriteRequest **out,
                  struct vg_err *err)
{
    struct track_alloc t = { .failed = false };
    pb_alloc_from_arena(a, &t.base);
    ProtobufCAllocator alloc = { .alloc = track_alloc_fn, .free = track_free_fn,
                                 .allocator_data = &t };
    *out = prometheus__write_request__unpack(&alloc, raw.len, (const uint8_t *)raw.p);
    if (*out)
        return 0;
    if (t.failed && t.over_budget)
        return vg_err_set(err, VG_ETOOLARGE,
                          "request too large to decode: a %zu-byte message may use at most "
                          "%d times its size in memory", raw.len, RW_ARENA_FACTOR);
    if (t.failed)
        return vg_err_set(err, VG_ENOMEM, "out of memory decoding the request");
    return vg_err_set(err, VG_EINVAL,
                      "malformed protobuf: the %zu-byte body (after snappy) is not a "
                      "prometheus.WriteRequest", raw.len);
}

static int decode_validated(struct vg_str raw, const struct config_limits *lim,
                            struct vg_arena *a, struct rw_request *out, struct vg_err *err)
{
    Prometheus__WriteRequest *wr;
    int rc = unpack(raw, a, &wr, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < wr->n_timeseries; i++) {
        out->nsamples += wr->timeseries[i]->n_samples;
        out->nexemplars += wr->timeseries[i]->n_exemplars;
        out->nhistograms += count_histograms(wr->timeseries[i]);
    }
    if (lim->max_series_per_request > 0 &&
        wr->n_timeseries > (uint64_t)lim->max_series_per_request)
        return vg_err_set(err, VG_ETOOLARGE,
                          "request has %zu series, more than the limit of %lld "
                          "(limits.max_series_per_request)",
                          wr->n_timeseries, (long long)lim->max_series_per_request);
    struct tsdb_series_in *series =
        vg_arena_alloc(a, (wr->n_timeseries ? wr->n_timeseries : 1) * sizeof *series);
    struct tsdb_metadata *meta =
        vg_arena_alloc(a, (wr->n_metadata ? wr->n_metadata : 1) * sizeof *meta);
    if (!series || !meta)
        return vg_err_set(err, VG_ETOOLARGE, "request too large to decode");
    size_t ns = 0;
    for (size_t i = 0; i < wr->n_timeseries; i++) {
        rc = check_series(lim, a, wr->timeseries[i], &series[ns], err);
        if (rc < 0)
            return vg_err_prefix(err, "timeseries[%zu]", i);
        if (series[ns].nsamples || series[ns].nexemplars)
            ns++; /* a series with nothing to store would only create an empty entry */
    }
    for (size_t i = 0; i < wr->n_metadata; i++) {
        rc = check_metadata(wr->metadata[i], &meta[i], err);
        if (rc < 0)
            return vg_err_prefix(err, "metadata[%zu]", i);
    }
    out->batch.series = series;
    out->batch.nseries = ns;
    out->batch.meta = meta;
    out->batch.nmeta = wr->n_metadata;
    return 0;
}

int rw_decode(const void *body, size_t len, const struct config_limits *lim,
              struct vg_arena *a, struct rw_request *out, struct vg_err *err)
{
    memset(out, 0, sizeof *out);
    if (len == 0)
        return vg_err_set(err, VG_EINVAL,
                          "empty body: expected a snappy-compressed prometheus.WriteRequest");
    /* Capped so that the arena budget below cannot overflow. */
    size_t max_out = SIZE_MAX / ((size_t)4 * RW_ARENA_FACTOR);
    if (lim->max_decoded_bytes > 0 && (uint64_t)lim->max_decoded_bytes < max_out)
        max_out = (size_t)lim->max_decoded_bytes;
    struct vg_str raw;
    int rc = compress_snappy_decode(body, len, max_out, a, &raw, err);
    if (rc < 0)
        return rc;
    size_t outer = vg_arena_get_limit(a);
    size_t cap = vg_arena_used(a) + RW_ARENA_FACTOR * raw.len + RW_ARENA_SLACK;
    vg_arena_set_limit(a, outer && outer < cap ? outer : cap);
    rc = decode_validated(raw, lim, a, out, err);
    vg_arena_set_limit(a, outer);
    if (rc < 0)
        memset(&out->batch, 0, sizeof out->batch);
    return rc;
}

/* ---- the HTTP module ---- */

static bool token_eq(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && strncasecmp(s, lit, n) == 0;
}

/* 0 when the Content-Type names remote write 1.0 (or is absent), else VG_EMEDIA. */
static int check_content_type(const char *ct, struct vg_err *err)
{
    if (!ct || !*ct)
        return 0;
    const char *semi = strchr(ct, ';');
    size_t n = semi ? (size_t)(semi - ct) : strlen(ct);
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    if (!token_eq(ct, n, "application/x-protobuf"))
        return vg_err_set(err, VG_EMEDIA,
                          "unsupported Content-Type \"%s\": remote write expects "
                          "application/x-protobuf", ct);
    for (const char *p = semi; p; p = strchr(p + 1, ';')) {
        const char *q = p + 1;
        while (*q == ' ' || *q == '\t')
            q++;
        if (strncasecmp(q, "proto=", 6) != 0)
            continue;
        q += 6;
        size_t m = strcspn(q, "; \t");
        if (!token_eq(q, m, "prometheus.WriteRequest"))
            return vg_err_set(err, VG_EMEDIA,
                              "unsupported remote write message \"%.*s\": this server accepts "
                              "remote write 1.0 (proto=prometheus.WriteRequest) only",
                              (int)(m > 64 ? 64 : m), q);
    }
    return 0;
}

static int check_encoding(const char *enc, struct vg_err *err)
{
    if (!enc || !*enc || strcasecmp(enc, "snappy") == 0)
        return 0;
    return vg_err_set(err, VG_EMEDIA,
                      "unsupported Content-Encoding \"%s\": remote write bodies must be snappy "
                      "(block format)", enc);
}

/* 400 naming what the store or this receiver left out, as Prometheus answers a partly
 * refused write (the accepted part stays stored). */
static void partial(struct http_response *resp, const struct rw_request *rq,
                    const struct tsdb_append_result *res)
{
    uint64_t rejected = 0;
    for (int r = 0; r < TSDB_REJECT_COUNT; r++)
        rejected += res->rejected[r];
    struct vg_buf *b = &resp->body;
    if (rejected) {
        vg_buf_printf(b, "%llu of %llu samples rejected (", (unsigned long long)rejected,
                      (unsigned long long)rq->nsamples);
        for (int r = 0; r < TSDB_REJECT_COUNT; r++)
            vg_buf_printf(b, "%s%s: %llu", r ? ", " : "", tsdb_reject_name((enum tsdb_reject)r),
                          (unsigned long long)res->rejected[r]);
        vg_buf_printf(b, "); first: %s", res->first_reject);
    }
    if (rq->nhistograms)
        vg_buf_printf(b, "%s%llu native histogram samples dropped: Vigil stores float samples "
                      "only (send classic histograms)", rejected ? "; " : "",
                      (unsigned long long)rq->nhistograms);
    vg_buf_putc(b, '\n');
    resp->status = 400;
    resp->content_type = "text/plain; charset=utf-8";
}

static struct vg_complaint complain_invalid;
static struct vg_complaint complain_storage;

static void handle_write(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    struct vg_err err;
    vg_err_clear(&err);
    struct rw_request rq;
    memset(&rq, 0, sizeof rq);
    int rc = check_encoding(req->content_encoding, &err);
    if (rc == 0)
        rc = check_content_type(req->content_type, &err);
    if (rc == 0)
        rc = rw_decode(req->body.p, req->body.len, &v->cfg->limits, req->arena, &rq, &err);
    if (rc < 0) {
        ingest_count_rejected(v, RECEIVER, vg_code_name(rc), rq.nsamples);
        vg_complain(&complain_invalid, 60000, VG_LOG_WARN, RECEIVER, "rejected a write request",
                    err.msg);
        http_resp_error_text(resp, &err);
        ingest_count_request(v, RECEIVER, resp->status);
        return;
    }
    if (rq.nhistograms)
        ingest_count_rejected(v, RECEIVER, "native_histogram", rq.nhistograms);
    struct tsdb_append_result res;
    memset(&res, 0, sizeof res);
    if (rq.batch.nseries || rq.batch.nmeta) {
        rc = ingest_store(v, RECEIVER, &rq.batch, &res, &err);
        if (rc < 0) {
            vg_complain(&complain_storage, 10000, VG_LOG_ERROR, RECEIVER,
                        "storing a write request failed", err.msg);
            http_resp_error_text(resp, &err);
            ingest_count_request(v, RECEIVER, resp->status);
            return;
        }
    }
    bool refused = rq.nhistograms > 0;
    for (int r = 0; r < TSDB_REJECT_COUNT; r++)
        refused |= res.rejected[r] > 0;
    if (refused)
        partial(resp, &rq, &res);
    else
        resp->status = 204;
    ingest_count_request(v, RECEIVER, resp->status);
}

static const struct http_route routes[] = {
    { "POST", "/api/v1/write", false, handle_write, "/api/v1/write" },
};

const struct vigil_module mod_remote_write = {
    .name = "remote_write",
    .routes = routes,
    .nroutes = sizeof routes / sizeof routes[0],
};
