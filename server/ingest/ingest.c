/* ingest: see ingest.h. */
#include "ingest.h"

#include "../metrics.h"
#include "../vigil.h"
#include "../../storage/base/vg_alloc.h"

#include <stdio.h>

struct ingest_metrics {
    struct metric_family *requests;
    struct metric_family *accepted;
    struct metric_family *rejected;
    struct metric_family *created;
    struct metric_family *exemplars;
};

static bool is_alpha_(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

bool ingest_valid_metric_name(struct vg_str s)
{
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        if (!(is_alpha_(c) || c == ':' || (i > 0 && is_digit(c))))
            return false;
    }
    return true;
}

bool ingest_valid_label_name(struct vg_str s)
{
    if (s.len == 0)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        char c = s.p[i];
        if (!(is_alpha_(c) || (i > 0 && is_digit(c))))
            return false;
    }
    return true;
}

bool ingest_valid_utf8(struct vg_str s)
{
    const unsigned char *u = (const unsigned char *)s.p;
    size_t i = 0;
    while (i < s.len) {
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
    labels_sort(ls, n);
    if (labels_check_unique(ls, n, err) < 0)
        return err ? err->code : VG_EINVAL;
    struct vg_str name = labels_get(ls, n, "__name__");
    if (!name.p)
        return vg_err_set(err, VG_EINVAL, "series has no metric name (label __name__)");
    if (!ingest_valid_metric_name(name))
        return vg_err_set(err, VG_EINVAL, "invalid metric name \"%.*s\"", SHOW(name));
    if ((int64_t)n > lim->max_labels_per_series)
        return vg_err_set(err, VG_EINVAL,
                          "series %.*s has %zu labels, more than the limit of %lld "
                          "(limits.max_labels_per_series)",
                          SHOW(name), n, (long long)lim->max_labels_per_series);
    for (size_t i = 0; i < n; i++) {
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
    if (!im->requests || !im->accepted || !im->rejected || !im->created || !im->exemplars) {
        vg_free(im);
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    }
    v->ingest = im;
    return 0;
}

void ingest_metrics_free(struct vigil *v)
{
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

int ingest_store(struct vigil *v, const char *receiver, const struct tsdb_batch *batch,
                 struct tsdb_append_result *res, struct vg_err *err)
{
    int rc = tsdb_append(v->tsdb, batch, res, err);
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
