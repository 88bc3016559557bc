/* ingest: see ingest.h. */
#include "ingest.h"

#include "../metrics.h"
#include "logproc.h"
#include "sampling.h"
#include "../traces/derive.h"
#include "../vigil.h"
#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_arena.h"

#include <stdio.h>
#include <string.h>

struct ingest_metrics {
    struct metric_family *requests;
    struct metric_family *accepted;
    struct metric_family *rejected;
    struct metric_family *created;
    struct metric_family *exemplars;
    struct metric_family *spans_accepted;
    struct metric_family *spans_rejected;
    struct metric_family *lines_accepted;
    struct metric_family *lines_rejected;
    struct metric_family *log_bytes;
    struct metric_family *streams_created;
    struct logproc *procs; /* the global log_processors chain, or NULL */
};

/* Which bytes a name may hold: NC_LABEL for label names ([a-zA-Z_][a-zA-Z0-9_]*), NC_METRIC
 * for metric names (the same plus ':'), NC_DIGIT for the bytes no name may start with. A
 * table, since every label name of every sample goes through it. */
enum { NC_LABEL = 1, NC_METRIC = 2, NC_DIGIT = 4 };
#define NC_ALNUM (NC_LABEL | NC_METRIC)
static const unsigned char NAME_CLASS[256] = {
    ['A'] = NC_ALNUM, ['B'] = NC_ALNUM, ['C'] = NC_ALNUM, ['D'] = NC_ALNUM, ['E'] = NC_ALNUM,
    ['F'] = NC_ALNUM, ['G'] = NC_ALNUM, ['H'] = NC_ALNUM, ['I'] = NC_ALNUM, ['J'] = NC_ALNUM,
    ['K'] = NC_ALNUM, ['L'] = NC_ALNUM, ['M'] = NC_ALNUM, ['N'] = NC_ALNUM, ['O'] = NC_ALNUM,
    ['P'] = NC_ALNUM, ['Q'] = NC_ALNUM, ['R'] = NC_ALNUM, ['S'] = NC_ALNUM, ['T'] = NC_ALNUM,
    ['U'] = NC_ALNUM, ['V'] = NC_ALNUM, ['W'] = NC_ALNUM, ['X'] = NC_ALNUM, ['Y'] = NC_ALNUM,
    ['Z'] = NC_ALNUM, ['a'] = NC_ALNUM, ['b'] = NC_ALNUM, ['c'] = NC_ALNUM, ['d'] = NC_ALNUM,
    ['e'] = NC_ALNUM, ['f'] = NC_ALNUM, ['g'] = NC_ALNUM, ['h'] = NC_ALNUM, ['i'] = NC_ALNUM,
    ['j'] = NC_ALNUM, ['k'] = NC_ALNUM, ['l'] = NC_ALNUM, ['m'] = NC_ALNUM, ['n'] = NC_ALNUM,
    ['o'] = NC_ALNUM, ['p'] = NC_ALNUM, ['q'] = NC_ALNUM, ['r'] = NC_ALNUM, ['s'] = NC_ALNUM,
    ['t'] = NC_ALNUM, ['u'] = NC_ALNUM, ['v'] = NC_ALNUM, ['w'] = NC_ALNUM, ['x'] = NC_ALNUM,
    ['y'] = NC_ALNUM, ['z'] = NC_ALNUM, ['_'] = NC_ALNUM, [':'] = NC_METRIC,
    ['0'] = NC_ALNUM | NC_DIGIT, ['1'] = NC_ALNUM | NC_DIGIT, ['2'] = NC_ALNUM | NC_DIGIT,
    ['3'] = NC_ALNUM | NC_DIGIT, ['4'] = NC_ALNUM | NC_DIGIT, ['5'] = NC_ALNUM | NC_DIGIT,
    ['6'] = NC_ALNUM | NC_DIGIT, ['7'] = NC_ALNUM | NC_DIGIT, ['8'] = NC_ALNUM | NC_DIGIT,
    ['9'] = NC_ALNUM | NC_DIGIT,
};

/* A non-empty name whose bytes all have class cls and whose first byte is no digit. */
static bool valid_name(struct vg_str s, unsigned cls)
{
    const unsigned char *u = (const unsigned char *)s.p;
    if (s.len == 0 || (NAME_CLASS[u[0]] & NC_DIGIT))
        return false;
    unsigned all = cls;
    for (size_t i = 0; i < s.len; i++)
        all &= NAME_CLASS[u[i]];
    return all != 0;
}

bool ingest_valid_metric_name(struct vg_str s)
{
    return valid_name(s, NC_METRIC);
}

bool ingest_valid_label_name(struct vg_str s)
{
    return valid_name(s, NC_LABEL);
}

bool ingest_valid_utf8(struct vg_str s)
{
    const unsigned char *u = (const unsigned char *)s.p;
    size_t i = 0;
    while (i < s.len) {
        /* ASCII, the usual case, eight bytes at a time. */
        uint64_t w;
        while (i + 8 <= s.len && (memcpy(&w, u + i, 8), (w & 0x8080808080808080ULL) == 0))
            i += 8;
        if (i == s.len)
            break;
        unsigned c = u[i];
        size_t len;
        unsigned min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) { len = 2; min = 0x80; c &= 0x1F; }
        else if ((c & 0xF0) == 0xE0) { len = 3; min = 0x800; c &= 0x0F; }
        else if ((c & 0xF8) == 0xF0) { len = 4; min = 0x10000; c &= 0x07; }
        else return false;
        if (i + len > s.len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((u[i + k] & 0xC0) != 0x80)
                return false;
            c = (c << 6) | (u[i + k] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

/* Prints at most 64 bytes of s for an error message. */
#define SHOW(s) (int)((s).len > 64 ? 64 : (s).len), (s).p

int ingest_check_labels(const struct config_limits *lim, struct label *ls, size_t n,
                        struct vg_err *err)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (ls[i].value.len > 0)
            ls[k++] = ls[i];
    n = k;
    /* Senders (Prometheus among them) send labels sorted: names strictly increasing means
     * sorted and unique, with no sort. */
    size_t i = 1;
    while (i < n && vg_str_cmp(ls[i - 1].name, ls[i].name) < 0)
        i++;
    if (i < n) {
        labels_sort(ls, n);
        if (labels_check_unique(ls, n, err) < 0)
            return err ? err->code : VG_EINVAL;
    }
    struct vg_str name = { NULL, 0 };
    for (i = 0; i < n && !name.p; i++)
        if (vg_str_eq(ls[i].name, VG_STR("__name__")))
            name = ls[i].value;
    if (!name.p)
        return vg_err_set(err, VG_EINVAL, "series has no metric name (label __name__)");
    if (!ingest_valid_metric_name(name))
        return vg_err_set(err, VG_EINVAL, "invalid metric name \"%.*s\"", SHOW(name));
    if ((int64_t)n > lim->max_labels_per_series)
        return vg_err_set(err, VG_EINVAL,
                          "series %.*s has %zu labels, more than the limit of %lld "
                          "(limits.max_labels_per_series)",
                          SHOW(name), n, (long long)lim->max_labels_per_series);
    for (i = 0; i < n; i++) {
        if (!ingest_valid_label_name(ls[i].name))
            return vg_err_set(err, VG_EINVAL, "series %.*s: invalid label name \"%.*s\"",
                              SHOW(name), SHOW(ls[i].name));
        if ((int64_t)ls[i].name.len > lim->max_label_name_length)
            return vg_err_set(err, VG_EINVAL,
                              "series %.*s: label name \"%.*s...\" is %zu bytes, more than the "
                              "limit of %lld (limits.max_label_name_length)",
                              SHOW(name), SHOW(ls[i].name), ls[i].name.len,
                              (long long)lim->max_label_name_length);
        if ((int64_t)ls[i].value.len > lim->max_label_value_length)
            return vg_err_set(err, VG_EINVAL,
                              "series %.*s: value of label %.*s is %zu bytes, more than the "
                              "limit of %lld (limits.max_label_value_length)",
                              SHOW(name), SHOW(ls[i].name), ls[i].value.len,
                              (long long)lim->max_label_value_length);
        if (!ingest_valid_utf8(ls[i].value))
            return vg_err_set(err, VG_EINVAL, "series %.*s: value of label %.*s is not valid UTF-8",
                              SHOW(name), SHOW(ls[i].name));
        /* The index keys separate name and value with NUL bytes (storage/tsdb/index.h). */
        if (memchr(ls[i].value.p, 0, ls[i].value.len))
            return vg_err_set(err, VG_EINVAL, "series %.*s: value of label %.*s contains a NUL byte",
                              SHOW(name), SHOW(ls[i].name));
    }
    return (int)n;
}

int ingest_metrics_init(struct vigil *v, struct vg_err *err)
{
    struct ingest_metrics *im = vg_calloc(1, sizeof *im);
    if (!im)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    static const char *const rc[] = { "receiver", "code" };
    static const char *const r[] = { "receiver" };
    static const char *const rr[] = { "receiver", "reason" };
    im->requests = metrics_family(v->metrics, "vigil_ingest_requests_total",
                                  "Write requests handled by each receiver, by status code.",
                                  METRIC_COUNTER, rc, 2, NULL, 0);
    im->accepted = metrics_family(v->metrics, "vigil_ingest_samples_accepted_total",
                                  "Samples stored, by receiver.", METRIC_COUNTER, r, 1, NULL, 0);
    im->rejected = metrics_family(v->metrics, "vigil_ingest_samples_rejected_total",
                                  "Samples refused, by receiver and reason.", METRIC_COUNTER,
                                  rr, 2, NULL, 0);
    im->created = metrics_family(v->metrics, "vigil_ingest_series_created_total",
                                 "New series created, by receiver.", METRIC_COUNTER, r, 1, NULL, 0);
    im->exemplars = metrics_family(v->metrics, "vigil_ingest_exemplars_accepted_total",
                                   "Exemplars stored, by receiver.", METRIC_COUNTER, r, 1, NULL, 0);
    im->spans_accepted = metrics_family(v->metrics, "vigil_ingest_spans_accepted_total",
                                        "Spans stored, by receiver.", METRIC_COUNTER, r, 1,
                                        NULL, 0);
    im->spans_rejected = metrics_family(v->metrics, "vigil_ingest_spans_rejected_total",
                                        "Spans refused, by receiver and reason.",
                                        METRIC_COUNTER, rr, 2, NULL, 0);
    im->lines_accepted = metrics_family(v->metrics, "vigil_ingest_lines_accepted_total",
                                        "Log lines stored, by receiver.", METRIC_COUNTER, r, 1,
                                        NULL, 0);
    im->lines_rejected = metrics_family(v->metrics, "vigil_ingest_lines_rejected_total",
                                        "Log lines refused, by receiver and reason.",
                                        METRIC_COUNTER, rr, 2, NULL, 0);
    im->log_bytes = metrics_family(v->metrics, "vigil_ingest_log_bytes_accepted_total",
                                   "Bytes of log lines and their metadata stored, by receiver.",
                                   METRIC_COUNTER, r, 1, NULL, 0);
    im->streams_created = metrics_family(v->metrics, "vigil_ingest_streams_created_total",
                                         "New log streams created, by receiver.",
                                         METRIC_COUNTER, r, 1, NULL, 0);
    if (!im->requests || !im->accepted || !im->rejected || !im->created || !im->exemplars ||
        !im->spans_accepted || !im->spans_rejected || !im->lines_accepted ||
        !im->lines_rejected || !im->log_bytes || !im->streams_created) {
        vg_free(im);
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    }
    int prc = logproc_new(v->cfg ? config_block(v->cfg, "log_processors") : NULL,
                          "log_processors", v->metrics, &im->procs, err);
    if (prc < 0) {
        vg_free(im);
        return prc;
    }
    v->ingest = im;
    return 0;
}

void ingest_metrics_free(struct vigil *v)
{
    if (v->ingest)
        logproc_free(v->ingest->procs);
    vg_free(v->ingest);
    v->ingest = NULL;
}

void ingest_count_request(struct vigil *v, const char *receiver, int code)
{
    char c[16];
    snprintf(c, sizeof c, "%d", code);
    metric_add(v->ingest->requests, 1, receiver, c);
}

void ingest_count_rejected(struct vigil *v, const char *receiver, const char *reason, uint64_t n)
{
    if (n)
        metric_add(v->ingest->rejected, (double)n, receiver, reason);
}

void ingest_count_spans_rejected(struct vigil *v, const char *receiver, const char *reason,
                                 uint64_t n)
{
    if (n)
        metric_add(v->ingest->spans_rejected, (double)n, receiver, reason);
}

int ingest_write_spans(struct vigil *v, const char *receiver, const struct span *spans,
                       size_t n, struct spanstore_write_result *res, struct vg_err *err)
{
    if (n == 0) {
        memset(res, 0, sizeof *res);
        return 0;
    }
    int rc = spanstore_write(v->traces, spans, n, res, err);
    if (rc < 0) {
        ingest_count_spans_rejected(v, receiver, "storage_error", n);
        return rc;
    }
    if (res->accepted)
        metric_add(v->ingest->spans_accepted, (double)res->accepted, receiver);
    ingest_count_spans_rejected(v, receiver, "invalid_span", res->rejected);
    return 0;
}

int ingest_store_spans(struct vigil *v, const char *receiver, const struct span *spans,
                       size_t n, struct spanstore_write_result *res, struct vg_err *err)
{
    /* sampling (sampling.h) picks what the store gets */
    struct span *kept = NULL;
    size_t nkept = n;
    if (v->sampling_state) {
        struct sampling_result sr;
        kept = vg_malloc((n ? n : 1) * sizeof *kept);
        int rc = kept ? sampling_apply_now(v, spans, n, kept, &nkept, &sr, err)
                      : vg_err_set(err, VG_ENOMEM, "out of memory sampling spans");
        if (rc < 0) {
            vg_free(kept);
            memset(res, 0, sizeof *res);
            ingest_count_spans_rejected(v, receiver, "out_of_memory", n);
            return rc;
        }
    }
    int rc = ingest_write_spans(v, receiver, kept ? kept : spans, nkept, res, err);
    vg_free(kept);
    if (rc == 0) /* derived data sees every span, sampled out or not */
        trace_derive_observe(v->derive, spans, n);
    return rc;
}

int ingest_store(struct vigil *v, const char *receiver, const struct tsdb_batch *batch,
                 struct tsdb_append_result *res, struct vg_err *err)
{
    return ingest_store_enc(v, receiver, batch, NULL, res, err);
}

int ingest_store_enc(struct vigil *v, const char *receiver, const struct tsdb_batch *batch,
                     const struct vg_str *enc, struct tsdb_append_result *res,
                     struct vg_err *err)
{
    int rc = tsdb_append_enc(v->tsdb, batch, enc, res, err);
    if (rc < 0) {
        uint64_t n = 0;
        for (size_t i = 0; i < batch->nseries; i++)
            n += batch->series[i].nsamples;
        ingest_count_rejected(v, receiver, "storage_error", n);
        return rc;
    }
    struct ingest_metrics *im = v->ingest;
    if (res->accepted)
        metric_add(im->accepted, (double)res->accepted, receiver);
    if (res->series_created)
        metric_add(im->created, (double)res->series_created, receiver);
    if (res->exemplars_accepted)
        metric_add(im->exemplars, (double)res->exemplars_accepted, receiver);
    for (int r = 0; r < TSDB_REJECT_COUNT; r++)
        ingest_count_rejected(v, receiver, tsdb_reject_name((enum tsdb_reject)r), res->rejected[r]);
    return 0;
}

void ingest_count_lines_rejected(struct vigil *v, const char *receiver, const char *reason,
                                 uint64_t n)
{
    if (n)
        metric_add(v->ingest->lines_rejected, (double)n, receiver, reason);
}

int ingest_store_logs(struct vigil *v, const char *receiver,
                      const struct logstore_stream_in *streams, size_t nstreams,
                      struct logstore_push_result *res, struct vg_err *err)
{
    memset(res, 0, sizeof *res);
    /* the global processors (logproc.h) see every record before the store does */
    struct vg_arena *pa = v->ingest->procs ? vg_arena_new(1 << 16) : NULL;
    if (v->ingest->procs) {
        struct logstore_stream_in *kept;
        if (!pa || logproc_streams(v->ingest->procs, receiver, streams, nstreams, pa, &kept,
                                   &nstreams) < 0) {
            vg_arena_free(pa);
            return vg_err_set(err, VG_ENOMEM, "out of memory running log_processors");
        }
        streams = kept;
    }
    int rc = nstreams ? logstore_push(v->logs, streams, nstreams, res, err) : 0;
    if (rc == 0) /* error logs with a trace id, while streams (maybe in pa) are alive */
        trace_derive_observe_logs(v->derive, streams, nstreams);
    uint64_t refused = 0, total = 0;
    for (int r = 0; r < LOGSTORE_REJECT_COUNT; r++)
        refused += res->rejected[r];
    for (size_t i = 0; i < nstreams; i++) /* counted before pa (maybe holding them) goes */
        total += streams[i].nentries;
    vg_arena_free(pa);
    if (rc < 0 && refused == 0) {
        /* VG_EIO or VG_ENOMEM: nothing of the push was stored (logstore.h). */
        ingest_count_lines_rejected(v, receiver, "storage_error", total);
        return rc;
    }
    struct ingest_metrics *im = v->ingest;
    if (res->accepted) {
        metric_add(im->lines_accepted, (double)res->accepted, receiver);
        metric_add(im->log_bytes, (double)res->bytes, receiver);
    }
    if (res->streams_created)
        metric_add(im->streams_created, (double)res->streams_created, receiver);
    for (int r = 0; r < LOGSTORE_REJECT_COUNT; r++)
        ingest_count_lines_rejected(v, receiver, logstore_reject_name((enum logstore_reject)r),
                                    res->rejected[r]);
    return 0;
}
