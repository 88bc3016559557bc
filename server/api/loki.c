/* loki: see loki.h. This file holds the module, the parameter rules shared by every
 * Loki endpoint and the endpoints that read only the stream index: labels, label
 * values, series, index/stats, index/volume(_range), format_query, buildinfo, /ready.
 *
 * Behaviour matched (Loki 3, pkg/loghttp and pkg/querier):
 * - labels and label values: {"status":"success","data":["a","b"]}, sorted; Vigil always
 *   writes "data" (Loki leaves an empty list out), which every client reads the same.
 * - series: {"status":"success","data":[{"name":"value",...},...]}, the union of every
 *   match[] selector (all streams when there is none), sorted by labels.
 * - index/stats: the bare object {"streams":n,"chunks":n,"bytes":n,"entries":n}.
 * - index/volume: a Prometheus-style vector of bytes, one sample per group at the end
 *   time: grouped by targetLabels when given, else (aggregateBy=series, the default) by
 *   the label names of the selector's matchers; aggregateBy=labels gives one sample per
 *   label name, {"<name>":""}, with the bytes of every stream carrying that name. Largest
 *   first, at most limit (default 100). index/volume_range: the same groups as a matrix,
 *   one point per step bucket aligned to multiples of step, at the bucket's start.
 * - Loki's selectors in these endpoints must have a matcher that does not match "" (the
 *   LogQL parser refuses the others); a query with a pipeline is accepted and its
 *   pipeline ignored. */
#include "loki.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_log.h"
#include "../../storage/base/vg_time.h"
#include "../../storage/logstore/logstore.h"
#include "../logql/parser.h"
#include "loki_detect.h"
#include "loki_patterns.h"
#include "loki_query.h"
#include "loki_tail.h"
#include "prometheus.h"
#include "query.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define NS_PER_S 1000000000LL
#define NS_PER_MS 1000000LL
#define VOLUME_DEFAULT_LIMIT 100
#define MAX_MATCH_GROUPS 64
#define MAX_TARGET_LABELS 32

#define TIMEOUT_MSG                                                                        \
    "request timed out, decrease the duration of the request or add more label matchers " \
    "(prefer exact match over regex match) to reduce the amount of data processed"

/* ---- parameters ---- */

int64_t loki_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* Go's strconv.ParseInt(s, 10, 64): optional sign, decimal digits, no blanks. *out is
 * 0 on failure, so no caller ever reads it unset. */
static int go_parse_int(const char *s, const char *fn, int64_t *out, struct vg_err *err)
{
    *out = 0;
    const char *p = s + (*s == '+' || *s == '-');
    if (!*p || strspn(p, "0123456789") != strlen(p))
        return vg_err_set(err, VG_EINVAL, "strconv.%s: parsing \"%.64s\": invalid syntax", fn, s);
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE)
        return vg_err_set(err, VG_EINVAL, "strconv.%s: parsing \"%.64s\": value out of range",
                          fn, s);
    *out = v;
    return 0;
}

/* RFC 3339 with Go's RFC3339Nano rules, into ns; false when s is not one or does not
 * fit int64 nanoseconds (years 1678-2262). */
static bool rfc3339_ns(const char *s, int64_t *ns)
{
    struct vg_time_tm tm;
    size_t n = strlen(s);
    if (vg_time_rfc3339_scan(s, n, VG_TIME_LONG_FRACTION, &tm) != n)
        return false;
    int64_t secs = vg_time_tm_seconds(&tm);
    if (secs > INT64_MAX / NS_PER_S - 1 || secs < INT64_MIN / NS_PER_S + 1)
        return false;
    *ns = secs * NS_PER_S + tm.nsec;
    return true;
}

int loki_parse_time(const char *s, int64_t *ns, struct vg_err *err)
{
    if (strchr(s, '.')) {
        char *end;
        errno = 0;
        double d = strtod(s, &end);
        /* Go's ParseFloat takes no blanks, hex needs a 'p' exponent: the digit check
         * keeps strtod's extras (leading blanks, "0x1.8") out. */
        bool plain = *end == '\0' && end != s && (isdigit((unsigned char)s[0]) || s[0] == '-' ||
                                                  s[0] == '+' || s[0] == '.') &&
                     !strpbrk(s, "xXpP");
        if (plain && isfinite(d) && fabs(d) < 9.2e9) {
            double whole;
            double frac = modf(d, &whole);
            frac = round(frac * 1000) / 1000; /* Loki keeps milliseconds of a float */
            *ns = (int64_t)whole * NS_PER_S + (int64_t)llround(frac * 1e9);
            return 0;
        }
    }
    int64_t v;
    struct vg_err int_err;
    if (go_parse_int(s, "ParseInt", &v, &int_err) < 0) {
        if (rfc3339_ns(s, ns))
            return 0;
        *err = int_err;
        return int_err.code;
    }
    if (strlen(s) <= 10) {
        if (v > INT64_MAX / NS_PER_S || v < INT64_MIN / NS_PER_S)
            return vg_err_set(err, VG_EINVAL, "time %.64s is out of range", s);
        *ns = v * NS_PER_S;
    } else {
        *ns = v;
    }
    return 0;
}

int loki_parse_duration(const char *s, int64_t *ns, struct vg_err *err)
{
    return query_parse_duration(s, ns, err);
}

static const char *arg(const struct http_request *req, const char *name)
{
    const char *s = http_arg_get(req, name);
    return s ? s : "";
}

int loki_bounds(const struct http_request *req, int64_t now_ns, int64_t *start, int64_t *end,
                struct vg_err *err)
{
    int64_t since = LOKI_DEFAULT_SINCE_NS;
    const char *s = arg(req, "since");
    if (*s) {
        int64_t ms;
        struct vg_err ignored;
        if (config_parse_duration(s, &ms, &ignored) < 0 || ms > INT64_MAX / NS_PER_MS)
            return vg_err_set(err, VG_EINVAL, "could not parse 'since' parameter: not a valid "
                                              "duration string: \"%.64s\"", s);
        since = ms * NS_PER_MS;
    }
    s = arg(req, "end");
    *end = now_ns;
    if (*s && loki_parse_time(s, end, err) < 0)
        return vg_err_prefix(err, "could not parse 'end' parameter");
    /* From the end when it is not in the future, else from now (Loki's endOrNow). */
    int64_t base = *end > now_ns ? now_ns : *end;
    s = arg(req, "start");
    *start = base - since;
    if (*s && loki_parse_time(s, start, err) < 0)
        return vg_err_prefix(err, "could not parse 'start' parameter");
    return 0;
}

int loki_limit(const struct http_request *req, size_t def, size_t *out, struct vg_err *err)
{
    const char *s = arg(req, "limit");
    if (!*s) {
        *out = def;
        return 0;
    }
    int64_t v;
    if (go_parse_int(s, "Atoi", &v, err) < 0)
        return VG_EINVAL;
    if (v <= 0)
        return vg_err_set(err, VG_EINVAL, "limit must be a positive value");
    *out = (size_t)v;
    return 0;
}

int64_t loki_default_step(int64_t start_ns, int64_t end_ns)
{
    double secs = floor(((double)end_ns - (double)start_ns) / 1e9 / 250);
    return (secs < 1 ? 1 : (int64_t)secs) * NS_PER_S;
}

int loki_selector(const char *query, struct logql_expr **out, struct vg_err *err)
{
    *out = NULL;
    if (!*query)
        return 0;
    struct logql_expr *e = logql_parse(query, strlen(query), err);
    if (!e)
        return err->code;
    if (!logql_is_log_query(e->root)) {
        logql_expr_free(e);
        return vg_err_set(err, VG_EINVAL, "only label matchers are supported");
    }
    *out = e;
    return 0;
}

/* ---- answers ---- */

void loki_resp_error(struct http_response *resp, const struct vg_err *err)
{
    const char *msg = err->msg;
    switch (err->code) {
    case VG_EINVAL:
    case VG_ETOOLARGE:
    case VG_ECONFLICT: resp->status = 400; break;
    case VG_ENOTFOUND: resp->status = 404; break;
    case VG_EOVERLOAD:
        resp->status = 504;
        msg = TIMEOUT_MSG;
        break;
    default:
        resp->status = 500;
        vg_log(VG_LOG_ERROR, "loki_api", "query failed", "error", err->msg, NULL);
    }
    resp->content_type = "text/plain; charset=utf-8";
    vg_buf_reset(&resp->body);
    vg_buf_puts(&resp->body, msg);
}

void loki_send(struct http_response *resp, struct vg_buf *b)
{
    if (vg_buf_failed(b)) {
        vg_buf_free(b);
        struct vg_err err;
        vg_err_set(&err, VG_ENOMEM, "out of memory writing the response");
        loki_resp_error(resp, &err);
        return;
    }
    vg_buf_free(&resp->body);
    resp->body = *b;
    resp->status = 200;
    resp->content_type = "application/json; charset=UTF-8";
}

void loki_finish(struct http_response *resp, int rc, const struct vg_err *err, struct vg_buf *b)
{
    if (rc < 0) {
        vg_buf_free(b);
        loki_resp_error(resp, err);
        return;
    }
    loki_send(resp, b);
}

void loki_limits(const struct vigil *v, struct logql_limits *lim)
{
    logql_limits_default(lim);
    if (v->cfg && v->cfg->query_timeout_ms > 0)
        lim->timeout_ms = v->cfg->query_timeout_ms;
}

/* The parsed query parameter and the bounds: what most index endpoints start with. */
struct index_req {
    struct logql_expr *e;
    struct matcher *const *ms;
    size_t nms;
    int64_t start, end;
};

static int index_req_parse(const struct http_request *req, struct index_req *ir,
                           struct vg_err *err)
{
    memset(ir, 0, sizeof *ir);
    if (loki_bounds(req, loki_now_ns(), &ir->start, &ir->end, err) < 0)
        return VG_EINVAL;
    if (loki_selector(arg(req, "query"), &ir->e, err) < 0)
        return err->code;
    if (ir->e) {
        ir->ms = ir->e->root->log.ms;
        ir->nms = ir->e->root->log.nms;
    }
    return 0;
}

/* ---- labels and label values ---- */

/* labels (name NULL) and the values of one label name. */
static void strings_answer(struct vigil *v, struct http_request *req, struct http_response *resp,
                           const struct vg_str *name)
{
    struct vg_err err;
    vg_err_clear(&err);
    struct index_req ir;
    struct logstore_strings s = { 0 };
    int rc = index_req_parse(req, &ir, &err);
    if (rc == 0 && name)
        rc = logstore_label_values(v->logs, *name, ir.ms, ir.nms, ir.start, ir.end, &s, &err);
    else if (rc == 0)
        rc = logstore_label_names(v->logs, ir.ms, ir.nms, ir.start, ir.end, &s, &err);
    logql_expr_free(ir.e);
    struct vg_buf b;
    vg_buf_init(&b);
    if (rc == 0) {
        prometheus_json_begin(&b);
        prometheus_json_strings(&b, (const char *const *)s.v, s.n);
        vg_buf_putc(&b, '}');
    }
    logstore_strings_free(&s);
    loki_finish(resp, rc, &err, &b);
}

static void do_labels(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    strings_answer(v, req, resp, NULL);
}

static void do_label_values(struct vigil *v, struct http_request *req,
                            struct http_response *resp)
{
    static const char prefix[] = "/loki/api/v1/label/", suffix[] = "/values";
    size_t pl = sizeof prefix - 1, sl = sizeof suffix - 1, n = strlen(req->path);
    if (n <= pl + sl || strcmp(req->path + n - sl, suffix) != 0) {
        struct vg_err err;
        vg_err_set(&err, VG_ENOTFOUND, "404 page not found");
        loki_resp_error(resp, &err);
        return;
    }
    struct vg_str name = { req->path + pl, n - pl - sl };
    strings_answer(v, req, resp, &name);
}

/* ---- series ---- */

static int cmp_series_ref(const void *a, const void *b)
{
    const struct logstore_series *x = *(const struct logstore_series *const *)a;
    const struct logstore_series *y = *(const struct logstore_series *const *)b;
    int c = labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
    return c ? c : (x->id > y->id) - (x->id < y->id);
}

/* The union of the sets, sorted by labels, repeats (same stream id) written once. */
static int json_series_union(struct vg_buf *b, struct logstore_series_set **sets, size_t nsets)
{
    size_t total = 0;
    for (size_t i = 0; i < nsets; i++)
        total += sets[i]->n;
    const struct logstore_series **all = vg_malloc((total ? total : 1) * sizeof *all);
    if (!all)
        return VG_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < nsets; i++)
        for (size_t j = 0; j < sets[i]->n; j++)
            all[k++] = &sets[i]->v[j];
    if (total > 1)
        qsort(all, total, sizeof *all, cmp_series_ref);
    prometheus_json_begin(b);
    vg_buf_putc(b, '[');
    for (size_t i = 0, w = 0; i < total; i++) {
        if (i && all[i]->id == all[i - 1]->id)
            continue;
        if (w++)
            vg_buf_putc(b, ',');
        prometheus_json_labels(b, all[i]->labels, all[i]->nlabels);
    }
    vg_buf_puts(b, "]}");
    vg_free(all);
    return 0;
}

static void do_series(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    struct vg_err err;
    vg_err_clear(&err);
    int64_t start, end;
    if (loki_bounds(req, loki_now_ns(), &start, &end, &err) < 0) {
        loki_resp_error(resp, &err);
        return;
    }
    const char *groups[MAX_MATCH_GROUPS];
    size_t ng = http_arg_all(req, "match[]", groups, MAX_MATCH_GROUPS);
    if (ng == 0) /* logcli and older clients send "match" */
        ng = http_arg_all(req, "match", groups, MAX_MATCH_GROUPS);
    if (ng > MAX_MATCH_GROUPS) {
        vg_err_set(&err, VG_EINVAL, "too many match[] selectors (at most %d)", MAX_MATCH_GROUPS);
        loki_resp_error(resp, &err);
        return;
    }
    size_t nsets = ng ? ng : 1;
    struct logstore_series_set *sets[MAX_MATCH_GROUPS] = { 0 };
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < nsets; i++) {
        struct logql_expr *e = NULL;
        if (ng && (rc = loki_selector(groups[i], &e, &err)) < 0)
            break;
        if (ng && !e) {
            rc = vg_err_set(&err, VG_EINVAL, "0 matchers in group: %s", groups[i]);
            break;
        }
        rc = logstore_series(v->logs, e ? e->root->log.ms : NULL, e ? e->root->log.nms : 0,
                             start, end, &sets[i], &err);
        logql_expr_free(e);
    }
    struct vg_buf b;
    vg_buf_init(&b);
    if (rc == 0 && json_series_union(&b, sets, nsets) < 0)
        rc = vg_err_set(&err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < nsets; i++)
        logstore_series_set_free(sets[i]);
    loki_finish(resp, rc, &err, &b);
}

/* ---- index/stats ---- */

static void do_index_stats(struct vigil *v, struct http_request *req,
                           struct http_response *resp)
{
    struct vg_err err;
    vg_err_clear(&err);
    struct index_req ir;
    struct logstore_stats st = { 0 };
    int rc = index_req_parse(req, &ir, &err);
    if (rc == 0 && ir.end < ir.start)
        rc = vg_err_set(&err, VG_EINVAL, LOKI_END_BEFORE_START);
    if (rc == 0 && !ir.e)
        rc = vg_err_set(&err, VG_EINVAL, LOKI_NEED_MATCHER);
    if (rc == 0)
        rc = logstore_stats(v->logs, ir.ms, ir.nms, ir.start, ir.end, &st, &err);
    logql_expr_free(ir.e);
    if (rc < 0) {
        loki_resp_error(resp, &err);
        return;
    }
    struct vg_buf b;
    vg_buf_init(&b);
    vg_buf_printf(&b, "{\"streams\":%llu,\"chunks\":%llu,\"bytes\":%llu,\"entries\":%llu}",
                  (unsigned long long)st.streams, (unsigned long long)st.chunks,
                  (unsigned long long)st.bytes, (unsigned long long)st.entries);
    loki_send(resp, &b);
}

/* ---- index/volume ---- */

struct volume_req {
    struct index_req ir;
    size_t limit;
    bool by_labels;                        /* aggregateBy=labels */
    struct vg_str by[MAX_TARGET_LABELS];   /* targetLabels, or the matcher names */
    size_t nby;
    int64_t step;                          /* volume_range */
};

static bool has_name(const struct vg_str *v, size_t n, struct vg_str s)
{
    for (size_t i = 0; i < n; i++)
        if (vg_str_eq(v[i], s))
            return true;
    return false;
}

static int volume_req_parse(const struct http_request *req, bool range, struct volume_req *vr,
                            struct vg_err *err)
{
    memset(vr, 0, sizeof *vr);
    const char *l = arg(req, "limit");
    int64_t lim = VOLUME_DEFAULT_LIMIT;
    if (*l && go_parse_int(l, "Atoi", &lim, err) < 0)
        return VG_EINVAL;
    if (lim < 0)
        return vg_err_set(err, VG_EINVAL, "limit must be a positive value");
    vr->limit = lim == 0 ? VOLUME_DEFAULT_LIMIT : (size_t)lim;
    const char *agg = arg(req, "aggregateBy");
    if (*agg && strcmp(agg, "series") != 0 && strcmp(agg, "labels") != 0)
        return vg_err_set(err, VG_EINVAL, "invalid aggregation option");
    vr->by_labels = strcmp(agg, "labels") == 0;
    if (index_req_parse(req, &vr->ir, err) < 0)
        return err->code;
    if (vr->ir.end < vr->ir.start)
        return vg_err_set(err, VG_EINVAL, LOKI_END_BEFORE_START);
    if (!vr->ir.e)
        return vg_err_set(err, VG_EINVAL, LOKI_NEED_MATCHER);
    for (const char *t = arg(req, "targetLabels"); *t;) {
        size_t n = strcspn(t, ",");
        struct vg_str s = { t, n };
        if (n && !has_name(vr->by, vr->nby, s)) {
            if (vr->nby == MAX_TARGET_LABELS)
                return vg_err_set(err, VG_EINVAL, "too many targetLabels (at most %d)",
                                  MAX_TARGET_LABELS);
            vr->by[vr->nby++] = s;
        }
        t += n + (t[n] == ',');
    }
    if (vr->nby == 0 && !vr->by_labels)
        for (size_t i = 0; i < vr->ir.nms && vr->nby < MAX_TARGET_LABELS; i++) {
            struct vg_str s = vg_str_c(vr->ir.ms[i]->name);
            if (!has_name(vr->by, vr->nby, s))
                vr->by[vr->nby++] = s;
        }
    if (range) {
        const char *s = arg(req, "step");
        vr->step = loki_default_step(vr->ir.start, vr->ir.end);
        if (*s && loki_parse_duration(s, &vr->step, err) < 0)
            return VG_EINVAL;
        if (vr->step <= 0)
            return vg_err_set(err, VG_EINVAL, "zero or negative query resolution step widths are "
                                              "not accepted. Try a positive integer");
        if ((vr->ir.end - vr->ir.start) / vr->step > LOKI_MAX_POINTS)
            return vg_err_set(err, VG_EINVAL, "exceeded maximum resolution of 11,000 points per "
                                              "time series. Try increasing the value of the step "
                                              "parameter");
    }
    return 0;
}

/* One group of a volume answer: labels in the arena of the answer. */
struct vol_group {
    struct label *labels;
    size_t nlabels;
    uint64_t bytes;
};

struct vol_answer {
    struct vol_group *g;
    size_t n, cap;
    struct vg_arena *a;
};

static int vol_add(struct vol_answer *va, const struct label *ls, size_t n, uint64_t bytes)
{
    if (va->n == va->cap) {
        size_t cap = va->cap ? va->cap * 2 : 16;
        struct vol_group *ng = vg_realloc(va->g, cap * sizeof *ng);
        if (!ng)
            return VG_ENOMEM;
        va->g = ng;
        va->cap = cap;
    }
    struct label *copy = vg_arena_alloc(va->a, (n ? n : 1) * sizeof *copy);
    if (!copy)
        return VG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        char *nm = vg_arena_strndup(va->a, ls[i].name.p, ls[i].name.len);
        char *vl = vg_arena_strndup(va->a, ls[i].value.p, ls[i].value.len);
        if (!nm || !vl)
            return VG_ENOMEM;
        copy[i] = (struct label){ { nm, ls[i].name.len }, { vl, ls[i].value.len } };
    }
    va->g[va->n++] = (struct vol_group){ copy, n, bytes };
    return 0;
}

/* The volume groups of [start, end): per the request's grouping, every group (limit 0)
 * or the largest limit of them. */
static int volume_groups(struct vigil *v, const struct volume_req *vr, int64_t start,
                         int64_t end, size_t limit, struct vol_answer *va, struct vg_err *err)
{
    if (!vr->by_labels) {
        struct logstore_volume_set *set = NULL;
        int rc = logstore_volume(v->logs, vr->ir.ms, vr->ir.nms, start, end, vr->by, vr->nby,
                                 limit, &set, err);
        for (size_t i = 0; rc == 0 && i < set->n; i++)
            if (vol_add(va, set->v[i].labels, set->v[i].nlabels, set->v[i].bytes) < 0)
                rc = vg_err_set(err, VG_ENOMEM, "out of memory");
        logstore_volume_set_free(set);
        return rc;
    }
    /* aggregateBy=labels: one group per label name. */
    struct logstore_strings names = { 0 };
    size_t nn = vr->nby;
    int rc = 0;
    if (nn == 0) {
        rc = logstore_label_names(v->logs, vr->ir.ms, vr->ir.nms, start, end, &names, err);
        nn = names.n;
    }
    for (size_t i = 0; rc == 0 && i < nn; i++) {
        struct vg_str name = vr->nby ? vr->by[i] : vg_str_c(names.v[i]);
        struct logstore_volume_set *set = NULL;
        rc = logstore_volume(v->logs, vr->ir.ms, vr->ir.nms, start, end, &name, 1, 0, &set, err);
        uint64_t bytes = 0;
        for (size_t k = 0; rc == 0 && k < set->n; k++)
            bytes += set->v[k].bytes;
        struct label l = { name, VG_STR("") };
        if (rc == 0 && set->n && vol_add(va, &l, 1, bytes) < 0)
            rc = vg_err_set(err, VG_ENOMEM, "out of memory");
        logstore_volume_set_free(set);
    }
    logstore_strings_free(&names);
    return rc;
}

static int cmp_vol_bytes(const void *a, const void *b)
{
    const struct vol_group *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes > y->bytes ? -1 : 1;
    return labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

static int cmp_vol_labels(const void *a, const void *b)
{
    const struct vol_group *x = a, *y = b;
    return labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

static void json_sample(struct vg_buf *b, int64_t t_ns, uint64_t bytes)
{
    vg_buf_putc(b, '[');
    query_json_time(b, t_ns / NS_PER_MS);
    vg_buf_printf(b, ",\"%llu\"]", (unsigned long long)bytes);
}

static void json_volume_vector(struct vg_buf *b, struct vol_answer *va, int64_t t_ns)
{
    prometheus_json_begin(b);
    vg_buf_puts(b, "{\"resultType\":\"vector\",\"result\":[");
    for (size_t i = 0; i < va->n; i++) {
        if (i)
            vg_buf_putc(b, ',');
        vg_buf_puts(b, "{\"metric\":");
        prometheus_json_labels(b, va->g[i].labels, va->g[i].nlabels);
        vg_buf_puts(b, ",\"value\":");
        json_sample(b, t_ns, va->g[i].bytes);
        vg_buf_putc(b, '}');
    }
    vg_buf_puts(b, "]}}");
}


/* volume_range: the groups of the whole range (largest limit of them), then one point per
 * step bucket for each, written as a matrix sorted by labels. */
static int volume_matrix(struct vigil *v, const struct volume_req *vr, struct vol_answer *top,
                         struct vg_buf *b, struct vg_err *err)
{
    if (top->n > 1)
        qsort(top->g, top->n, sizeof *top->g, cmp_vol_bytes);
    if (top->n > vr->limit)
        top->n = vr->limit;
    if (top->n > 1)
        qsort(top->g, top->n, sizeof *top->g, cmp_vol_labels);
    int64_t step = vr->step, first = vr->ir.start - ((vr->ir.start % step) + step) % step;
    size_t nb = (size_t)((vr->ir.end - first) / step) + 1;
    uint64_t *pts = vg_calloc(top->n * nb + 1, sizeof *pts);
    if (!pts)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < nb; k++) {
        int64_t bs = first + (int64_t)k * step, be = bs + step;
        if (bs < vr->ir.start)
            bs = vr->ir.start;
        if (be > vr->ir.end)
            be = vr->ir.end;
        if (be <= bs)
            continue;
        struct vol_answer bucket = { .a = top->a };
        rc = volume_groups(v, vr, bs, be, 0, &bucket, err);
        for (size_t i = 0; rc == 0 && i < bucket.n; i++) {
            struct vol_group *hit =
                top->n == 0 ? NULL
                            : bsearch(&bucket.g[i], top->g, top->n, sizeof *top->g, cmp_vol_labels);
            if (hit)
                pts[(size_t)(hit - top->g) * nb + k] = bucket.g[i].bytes;
        }
        vg_free(bucket.g);
    }
    if (rc == 0) {
        prometheus_json_begin(b);
        vg_buf_puts(b, "{\"resultType\":\"matrix\",\"result\":[");
        for (size_t i = 0; i < top->n; i++) {
            vg_buf_puts(b, i ? ",{\"metric\":" : "{\"metric\":");
            prometheus_json_labels(b, top->g[i].labels, top->g[i].nlabels);
            vg_buf_puts(b, ",\"values\":[");
            for (size_t k = 0, w = 0; k < nb; k++) {
                if (!pts[i * nb + k])
                    continue;
                if (w++)
                    vg_buf_putc(b, ',');
                json_sample(b, first + (int64_t)k * step, pts[i * nb + k]);
            }
            vg_buf_puts(b, "]}");
        }
        vg_buf_puts(b, "]}}");
    }
    vg_free(pts);
    return rc;
}

/* index/volume (range false) and index/volume_range. */
static void volume(struct vigil *v, struct http_request *req, struct http_response *resp,
                   bool range)
{
    struct vg_err err;
    vg_err_clear(&err);
    struct volume_req vr;
    struct vol_answer va = { .a = vg_arena_new(4096) };
    int rc = va.a ? volume_req_parse(req, range, &vr, &err)
                  : vg_err_set(&err, VG_ENOMEM, "out of memory");
    /* The vector keeps the largest limit groups; by labels and the matrix sort later. */
    if (rc == 0)
        rc = volume_groups(v, &vr, vr.ir.start, vr.ir.end,
                           range || vr.by_labels ? 0 : vr.limit, &va, &err);
    struct vg_buf b;
    vg_buf_init(&b);
    if (rc == 0 && range) {
        rc = volume_matrix(v, &vr, &va, &b, &err);
    } else if (rc == 0) {
        if (va.n > 1)
            qsort(va.g, va.n, sizeof *va.g, cmp_vol_bytes);
        if (va.n > vr.limit)
            va.n = vr.limit;
        json_volume_vector(&b, &va, vr.ir.end);
    }
    if (va.a)
        logql_expr_free(vr.ir.e);
    vg_free(va.g);
    vg_arena_free(va.a);
    loki_finish(resp, rc, &err, &b);
}

static void do_volume(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    volume(v, req, resp, false);
}

static void do_volume_range(struct vigil *v, struct http_request *req,
                            struct http_response *resp)
{
    volume(v, req, resp, true);
}

/* ---- format_query, buildinfo, ready ---- */

static void do_format_query(struct vigil *v, struct http_request *req,
                            struct http_response *resp)
{
    (void)v;
    struct vg_err err;
    vg_err_clear(&err);
    const char *q = arg(req, "query");
    struct logql_expr *e = logql_parse(q, strlen(q), &err);
    if (!e) {
        loki_resp_error(resp, &err);
        return;
    }
    struct vg_buf text, b;
    vg_buf_init(&text);
    vg_buf_init(&b);
    logql_prettify(e->root, &text);
    prometheus_json_begin(&b);
    vg_buf_json_str(&b, text.p ? text.p : "", text.len);
    vg_buf_putc(&b, '}');
    if (vg_buf_failed(&text))
        b.failed = true;
    vg_buf_free(&text);
    logql_expr_free(e);
    loki_send(resp, &b);
}

static void do_buildinfo(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    (void)v;
    (void)req;
    struct vg_buf b;
    vg_buf_init(&b);
    /* Loki's build info is a bare object; the version is the Loki API level Vigil
     * answers for, Vigil's own goes into revision (as for the Prometheus API). */
    vg_buf_puts(&b, "{\"version\":\"" LOKI_API_VERSION "\",\"revision\":\"vigil-" VIGIL_VERSION
                    "\",\"branch\":\"\",\"buildUser\":\"\",\"buildDate\":\"\","
                    "\"goVersion\":\"\"}");
    loki_send(resp, &b);
}

static void do_ready(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    (void)req;
    resp->content_type = "text/plain; charset=utf-8";
    if (!v->logs) {
        resp->status = 503;
        vg_buf_puts(&resp->body, "Ingester not ready: the log store is not open");
        return;
    }
    vg_buf_puts(&resp->body, "ready\n");
}

/* ---- routes ---- */

static const struct http_route routes[] = {
    { "GET,POST", "/loki/api/v1/query", false, loki_query_instant, "/loki/api/v1/query" },
    { "GET,POST", "/loki/api/v1/query_range", false, loki_query_range,
      "/loki/api/v1/query_range" },
    { "GET,POST", "/loki/api/v1/labels", false, do_labels, "/loki/api/v1/labels" },
    { "GET,POST", "/loki/api/v1/label/", true, do_label_values,
      "/loki/api/v1/label/:name/values" },
    { "GET,POST", "/loki/api/v1/series", false, do_series, "/loki/api/v1/series" },
    { "GET,POST", "/loki/api/v1/index/stats", false, do_index_stats, "/loki/api/v1/index/stats" },
    { "GET,POST", "/loki/api/v1/index/volume", false, do_volume, "/loki/api/v1/index/volume" },
    { "GET,POST", "/loki/api/v1/index/volume_range", false, do_volume_range,
      "/loki/api/v1/index/volume_range" },
    { "GET", "/loki/api/v1/detected_labels", false, loki_detected_labels,
      "/loki/api/v1/detected_labels" },
    { "GET", "/loki/api/v1/detected_fields", false, loki_detected_fields,
      "/loki/api/v1/detected_fields" },
    { "GET", "/loki/api/v1/patterns", false, loki_patterns, "/loki/api/v1/patterns" },
    { "GET,POST", "/loki/api/v1/format_query", false, do_format_query,
      "/loki/api/v1/format_query" },
    { "GET", "/loki/api/v1/tail", false, loki_tail, "/loki/api/v1/tail" },
    { "GET", "/loki/api/v1/status/buildinfo", false, do_buildinfo,
      "/loki/api/v1/status/buildinfo" },
    { "GET", "/ready", false, do_ready, "/ready" },
};

const struct vigil_module mod_loki_api = {
    .name = "loki_api",
    .routes = routes,
    .nroutes = sizeof routes / sizeof routes[0],
};
