/* loki_query: see loki_query.h.
 *
 * Parameter rules (Loki 3 pkg/loghttp/query.go, checked in this order):
 *   query:        limit ("limit must be a positive value"), time (default now),
 *                 direction ("invalid direction 'x'", default backward).
 *   query_range:  start/end/since, "end timestamp must not be before or equal to start
 *                 time" when end < start, limit, direction, step (default
 *                 max(floor(range / 250 s), 1) s; "zero or negative query resolution
 *                 step widths are not accepted. Try a positive integer"), at most 11,000
 *                 steps ("exceeded maximum resolution of 11,000 points per time series.
 *                 Try increasing the value of the step parameter"), interval
 *                 ("interval must be >= 0").
 * Then the query parses (400 with the parser's message) and an instant query of a log
 * selector is refused as Loki refuses it. Engine errors map through loki_resp_error. */
#include "loki_query.h"

#include "../../storage/base/vg_alloc.h"
#include "../logql/parser.h"
#include "loki.h"
#include "prometheus.h"
#include "query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define NS_PER_MS 1000000LL

/* ---- stats ---- */

static void kv_u64(struct vg_buf *b, const char *k, uint64_t v, bool first)
{
    vg_buf_printf(b, "%s\"%s\":%llu", first ? "" : ",", k, (unsigned long long)v);
}

/* The store object Loki writes under querier and ingester. */
static void json_store(struct vg_buf *b, const struct logql_stats *st)
{
    vg_buf_putc(b, '{');
    kv_u64(b, "totalChunksRef", st ? st->chunks_considered : 0, true);
    kv_u64(b, "totalChunksDownloaded", st ? st->chunks_opened : 0, false);
    kv_u64(b, "chunksDownloadTime", 0, false);
    vg_buf_puts(b, ",\"queryReferencedStructuredMetadata\":false,\"chunk\":{");
    kv_u64(b, "headChunkBytes", 0, true);
    kv_u64(b, "headChunkLines", 0, false);
    kv_u64(b, "decompressedBytes", st ? st->bytes_decompressed : 0, false);
    kv_u64(b, "decompressedLines", st ? st->lines_processed : 0, false);
    kv_u64(b, "compressedBytes", 0, false);
    kv_u64(b, "totalDuplicates", 0, false);
    kv_u64(b, "postFilterLines", st ? st->lines_returned : 0, false);
    kv_u64(b, "headChunkStructuredMetadataBytes", 0, false);
    kv_u64(b, "decompressedStructuredMetadataBytes", 0, false);
    vg_buf_putc(b, '}');
    kv_u64(b, "chunkRefsFetchTime", 0, false);
    kv_u64(b, "congestionControlLatency", 0, false);
    kv_u64(b, "pipelineWrapperFilteredLines", 0, false);
    vg_buf_putc(b, '}');
}

void loki_query_json_stats(struct vg_buf *b, const struct logql_stats *st, int64_t exec_ns)
{
    static const char *const caches[] = { "chunk", "index", "result", "statsResult",
                                          "volumeResult", "seriesResult", "labelResult",
                                          "instantMetricResult" };
    double secs = (double)exec_ns / 1e9;
    uint64_t bps = secs > 0 ? (uint64_t)((double)st->bytes_processed / secs) : 0;
    uint64_t lps = secs > 0 ? (uint64_t)((double)st->lines_processed / secs) : 0;
    vg_buf_puts(b, "{\"summary\":{");
    kv_u64(b, "bytesProcessedPerSecond", bps, true);
    kv_u64(b, "linesProcessedPerSecond", lps, false);
    kv_u64(b, "totalBytesProcessed", st->bytes_processed, false);
    kv_u64(b, "totalLinesProcessed", st->lines_processed, false);
    vg_buf_printf(b, ",\"execTime\":%.9g,\"queueTime\":0", secs);
    kv_u64(b, "subqueries", 0, false);
    kv_u64(b, "totalEntriesReturned", st->lines_returned, false);
    kv_u64(b, "splits", 0, false);
    kv_u64(b, "shards", 0, false);
    kv_u64(b, "totalPostFilterLines", st->lines_returned, false);
    kv_u64(b, "totalStructuredMetadataBytesProcessed", 0, false);
    vg_buf_puts(b, "},\"querier\":{\"store\":");
    json_store(b, st);
    vg_buf_puts(b, "},\"ingester\":{\"totalReached\":0,\"totalChunksMatched\":0,"
                   "\"totalBatches\":0,\"totalLinesSent\":0,\"store\":");
    json_store(b, NULL);
    vg_buf_puts(b, "},\"cache\":{");
    for (size_t i = 0; i < sizeof caches / sizeof caches[0]; i++)
        vg_buf_printf(b, "%s\"%s\":{\"entriesFound\":0,\"entriesRequested\":0,"
                         "\"entriesStored\":0,\"bytesReceived\":0,\"bytesSent\":0,"
                         "\"requests\":0,\"downloadTime\":0,\"queryLengthServed\":0}",
                      i ? "," : "", caches[i]);
    vg_buf_puts(b, "},\"index\":{");
    kv_u64(b, "totalChunks", st->chunks_considered, true);
    kv_u64(b, "postFilterChunks", st->chunks_considered - st->chunks_skipped, false);
    kv_u64(b, "shardsDuration", 0, false);
    vg_buf_puts(b, ",\"usedBloomFilters\":false}}");
}

/* ---- results ---- */

static void json_point(struct vg_buf *b, const struct logql_point *p)
{
    vg_buf_putc(b, '[');
    query_json_time(b, p->t_ms);
    vg_buf_putc(b, ',');
    query_json_value(b, p->v);
    vg_buf_putc(b, ']');
}

static void json_series(struct vg_buf *b, const struct logql_series *s, bool matrix)
{
    vg_buf_puts(b, "{\"metric\":");
    prometheus_json_labels(b, s->labels, s->nlabels);
    if (!matrix) {
        vg_buf_puts(b, ",\"value\":");
        if (s->npoints)
            json_point(b, &s->points[0]);
        else
            vg_buf_puts(b, "null");
        vg_buf_putc(b, '}');
        return;
    }
    vg_buf_puts(b, ",\"values\":[");
    for (size_t i = 0; i < s->npoints; i++) {
        if (i)
            vg_buf_putc(b, ',');
        json_point(b, &s->points[i]);
    }
    vg_buf_puts(b, "]}");
}

/* ["<ns>","<line>"] and, when categorize and the entry has some, the third element. */
static void json_entry(struct vg_buf *b, const struct logql_entry *e, bool categorize)
{
    vg_buf_printf(b, "[\"%lld\",", (long long)e->t);
    vg_buf_json_str(b, e->line.p, e->line.len);
    if (categorize && (e->nmeta || e->nparsed)) {
        vg_buf_puts(b, ",{");
        if (e->nmeta) {
            vg_buf_puts(b, "\"structuredMetadata\":");
            prometheus_json_labels(b, e->meta, e->nmeta);
        }
        if (e->nparsed) {
            vg_buf_puts(b, e->nmeta ? ",\"parsed\":" : "\"parsed\":");
            prometheus_json_labels(b, e->parsed, e->nparsed);
        }
        vg_buf_putc(b, '}');
    }
    vg_buf_putc(b, ']');
}

static void json_plain_streams(struct vg_buf *b, const struct logql_result *r)
{
    for (size_t i = 0; i < r->nstreams; i++) {
        const struct logql_stream *s = &r->streams[i];
        vg_buf_puts(b, i ? ",{\"stream\":" : "{\"stream\":");
        prometheus_json_labels(b, s->labels, s->nlabels);
        vg_buf_puts(b, ",\"values\":[");
        for (size_t k = 0; k < s->nentries; k++) {
            if (k)
                vg_buf_putc(b, ',');
            json_entry(b, &s->entries[k], false);
        }
        vg_buf_puts(b, "]}");
    }
}

/* Categorized streams: a stream's own labels are its final labels without the names of
 * its entries' metadata and parsed labels (entries of one result stream share those,
 * their values being part of the final labels). */
struct cat_stream {
    const struct logql_stream *s;
    struct label *labels;
    size_t nlabels;
    size_t next; /* merge cursor */
};

static bool named_in(struct vg_str name, const struct label *ls, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (vg_str_eq(ls[i].name, name))
            return true;
    return false;
}

static int cmp_cat(const void *a, const void *b)
{
    const struct cat_stream *x = a, *y = b;
    int c = labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
    return c ? c : (x->s > y->s) - (x->s < y->s);
}

/* Writes the entries of cs[0..n) (equal stream labels) merged in time order, newest
 * first when backward. */
static void json_merged_entries(struct vg_buf *b, struct cat_stream *cs, size_t n, bool backward)
{
    for (size_t w = 0;; w++) {
        struct cat_stream *pick = NULL;
        for (size_t i = 0; i < n; i++) {
            if (cs[i].next == cs[i].s->nentries)
                continue;
            int64_t t = cs[i].s->entries[cs[i].next].t;
            if (!pick || (backward ? t > pick->s->entries[pick->next].t
                                   : t < pick->s->entries[pick->next].t))
                pick = &cs[i];
        }
        if (!pick)
            return;
        if (w)
            vg_buf_putc(b, ',');
        json_entry(b, &pick->s->entries[pick->next++], true);
    }
}

static int json_categorized_streams(struct vg_buf *b, const struct logql_result *r,
                                    bool backward)
{
    struct cat_stream *cs = vg_calloc(r->nstreams ? r->nstreams : 1, sizeof *cs);
    struct label *pool = NULL;
    size_t total = 0;
    for (size_t i = 0; i < r->nstreams; i++)
        total += r->streams[i].nlabels;
    pool = vg_malloc((total ? total : 1) * sizeof *pool);
    if (!cs || !pool) {
        vg_free(cs);
        vg_free(pool);
        return VG_ENOMEM;
    }
    size_t used = 0;
    for (size_t i = 0; i < r->nstreams; i++) {
        const struct logql_stream *s = &r->streams[i];
        const struct logql_entry *e0 = s->nentries ? &s->entries[0] : NULL;
        cs[i] = (struct cat_stream){ .s = s, .labels = pool + used };
        for (size_t k = 0; k < s->nlabels; k++) {
            struct vg_str n = s->labels[k].name;
            if (e0 && (named_in(n, e0->meta, e0->nmeta) || named_in(n, e0->parsed, e0->nparsed)))
                continue;
            cs[i].labels[cs[i].nlabels++] = s->labels[k];
        }
        used += cs[i].nlabels;
    }
    qsort(cs, r->nstreams, sizeof *cs, cmp_cat);
    for (size_t i = 0, w = 0; i < r->nstreams;) {
        size_t j = i + 1;
        while (j < r->nstreams &&
               labels_cmp(cs[i].labels, cs[i].nlabels, cs[j].labels, cs[j].nlabels) == 0)
            j++;
        vg_buf_puts(b, w++ ? ",{\"stream\":" : "{\"stream\":");
        prometheus_json_labels(b, cs[i].labels, cs[i].nlabels);
        vg_buf_puts(b, ",\"values\":[");
        json_merged_entries(b, cs + i, j - i, backward);
        vg_buf_puts(b, "]}");
        i = j;
    }
    vg_free(cs);
    vg_free(pool);
    return 0;
}

void loki_query_json_result(struct vg_buf *b, const struct logql_result *r, bool categorize,
                            bool backward, int64_t exec_ns)
{
    prometheus_json_begin(b);
    vg_buf_puts(b, "{\"resultType\":\"");
    vg_buf_puts(b, logql_result_type_str(r->type));
    vg_buf_puts(b, "\",\"result\":");
    switch (r->type) {
    case LQ_RESULT_SCALAR:
        json_point(b, &r->scalar);
        break;
    case LQ_RESULT_STREAMS:
        vg_buf_putc(b, '[');
        if (!categorize)
            json_plain_streams(b, r);
        else if (json_categorized_streams(b, r, backward) < 0)
            b->failed = true;
        vg_buf_putc(b, ']');
        break;
    default:
        vg_buf_putc(b, '[');
        for (size_t i = 0; i < r->nseries; i++) {
            if (i)
                vg_buf_putc(b, ',');
            json_series(b, &r->series[i], r->type == LQ_RESULT_MATRIX);
        }
        vg_buf_putc(b, ']');
    }
    vg_buf_puts(b, ",\"stats\":");
    loki_query_json_stats(b, &r->stats, exec_ns);
    if (categorize && r->type == LQ_RESULT_STREAMS)
        vg_buf_puts(b, ",\"encodingFlags\":[\"categorize-labels\"]");
    vg_buf_puts(b, "}}");
}

/* ---- handlers ---- */

static const char *arg(const struct http_request *req, const char *name)
{
    const char *s = http_arg_get(req, name);
    return s ? s : "";
}

static int direction(const struct http_request *req, bool *backward, struct vg_err *err)
{
    const char *d = arg(req, "direction");
    if (!*d || !strcasecmp(d, "backward")) {
        *backward = true;
        return 0;
    }
    if (!strcasecmp(d, "forward")) {
        *backward = false;
        return 0;
    }
    return vg_err_set(err, VG_EINVAL, "invalid direction '%.64s'", d);
}

static bool wants_categorized(struct http_request *req)
{
    const char *h = req->conn ? http_header_get(req, LOKI_ENCODING_FLAGS_HEADER) : NULL;
    return h && strstr(h, "categorize-labels") != NULL;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Parses the query, runs it with p and answers. */
static void run(struct vigil *v, struct http_request *req, struct http_response *resp,
                const struct logql_params *p)
{
    struct vg_err err;
    vg_err_clear(&err);
    const char *q = arg(req, "query");
    struct logql_expr *e = logql_parse(q, strlen(q), &err);
    if (!e) {
        loki_resp_error(resp, &err);
        return;
    }
    if (p->instant && logql_is_log_query(e->root)) {
        logql_expr_free(e);
        vg_err_set(&err, VG_EINVAL, "log queries are not supported as an instant query type, "
                                    "please change your query to a range query type");
        loki_resp_error(resp, &err);
        return;
    }
    struct logql_limits lim;
    loki_limits(v, &lim);
    struct logql_result *r = NULL;
    int64_t t0 = mono_ns();
    int rc = logql_exec(v->logs, e, p, &lim, &r, &err);
    int64_t took = mono_ns() - t0;
    if (rc < 0) {
        logql_expr_free(e);
        loki_resp_error(resp, &err);
        return;
    }
    struct vg_buf b;
    vg_buf_init(&b);
    loki_query_json_result(&b, r, wants_categorized(req), p->backward,
                           r->stats.exec_ns > 0 ? r->stats.exec_ns : took);
    logql_result_free(r);
    logql_expr_free(e);
    loki_send(resp, &b);
}

void loki_query_instant(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    struct vg_err err;
    vg_err_clear(&err);
    struct logql_params p = { .instant = true };
    const char *t = arg(req, "time");
    int64_t at = loki_now_ns();
    if (loki_limit(req, LOKI_DEFAULT_LIMIT, &p.limit, &err) < 0 ||
        (*t && loki_parse_time(t, &at, &err) < 0) || direction(req, &p.backward, &err) < 0) {
        loki_resp_error(resp, &err);
        return;
    }
    p.start_ns = p.end_ns = at;
    p.step_ns = 1000000000LL; /* unused by an instant query; positive for the engine */
    run(v, req, resp, &p);
}

static int range_params(const struct http_request *req, struct logql_params *p,
                        struct vg_err *err)
{
    if (loki_bounds(req, loki_now_ns(), &p->start_ns, &p->end_ns, err) < 0)
        return VG_EINVAL;
    if (p->end_ns < p->start_ns)
        return vg_err_set(err, VG_EINVAL, LOKI_END_BEFORE_START);
    if (loki_limit(req, LOKI_DEFAULT_LIMIT, &p->limit, err) < 0 ||
        direction(req, &p->backward, err) < 0)
        return VG_EINVAL;
    const char *s = arg(req, "step");
    p->step_ns = loki_default_step(p->start_ns, p->end_ns);
    if (*s && loki_parse_duration(s, &p->step_ns, err) < 0)
        return VG_EINVAL;
    if (p->step_ns <= 0)
        return vg_err_set(err, VG_EINVAL, "zero or negative query resolution step widths are "
                                          "not accepted. Try a positive integer");
    if ((p->end_ns - p->start_ns) / p->step_ns > LOKI_MAX_POINTS)
        return vg_err_set(err, VG_EINVAL, "exceeded maximum resolution of 11,000 points per "
                                          "time series. Try increasing the value of the step "
                                          "parameter");
    s = arg(req, "interval");
    if (*s && loki_parse_duration(s, &p->interval_ns, err) < 0)
        return VG_EINVAL;
    if (p->interval_ns < 0)
        return vg_err_set(err, VG_EINVAL, "interval must be >= 0");
    return 0;
}

void loki_query_range(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    struct vg_err err;
    vg_err_clear(&err);
    struct logql_params p = { 0 };
    if (range_params(req, &p, &err) < 0) {
        loki_resp_error(resp, &err);
        return;
    }
    run(v, req, resp, &p);
}
