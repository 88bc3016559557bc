/* prometheus: see prometheus.h.
 *
 * Behaviour matched (Prometheus web/api/v1/api.go, 2.x and 3.x):
 * - start/end default to MinTime/MaxTime; parse errors read
 *   `invalid parameter "start": cannot parse "x" to a valid timestamp`.
 * - series needs at least one match[] ("no match[] parameter provided"); several match[]
 *   give the union, sorted by label set, without repeats. A selector error reads
 *   `invalid parameter "match[]": 1:4: parse error: ...`.
 * - limit > 0 truncates the sorted answer and adds the warning
 *   "results truncated due to limit".
 * - metadata: {"<metric>":[{"type":..,"help":..,"unit":..}]}, metrics without metadata
 *   left out; limit < 0 (default) means all; "limit must be a number" otherwise.
 * URL paths reach us percent-decoded by the front end (libmicrohttpd unescapes them), so
 * <name> in /api/v1/label/<name>/values is only U__-unescaped here. */
#include "prometheus.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_time.h"
#include "../../storage/tsdb/tsdb.h"
#include "../promql/selector.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRUNCATED "results truncated due to limit"
#define HELP_CAP 8192
#define UNIT_CAP 256

/* ---- time parsing ---- */

/* RFC 3339 as Go's time.RFC3339Nano layout parses it: YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM),
 * the whole string, at most nine fraction digits (truncated to the millisecond). */
static bool parse_rfc3339(const char *s, int64_t *ms)
{
    struct vg_time_tm tm;
    size_t len = strlen(s), n = vg_time_rfc3339_scan(s, len, 0, &tm);
    if (n == 0 || n != len)
        return false;
    *ms = vg_time_tm_seconds(&tm) * 1000 + tm.nsec / 1000000;
    return true;
}

/* [+-]digits[.digits][(e|E)[+-]digits] or [+-].digits..., the decimal forms of Go's
 * ParseFloat (hex floats, NaN and infinities make no sense as times). */
static bool decimal_syntax(const char *s)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    size_t n = 0;
    while (isdigit((unsigned char)*p)) {
        p++;
        n++;
    }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            p++;
            n++;
        }
    }
    if (n == 0)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    return *p == '\0';
}

int prometheus_parse_time(const char *s, int64_t *ms, struct vg_err *err)
{
    if (decimal_syntax(s)) {
        double t = strtod(s, NULL);
        /* Seconds whose millisecond count fits in int64. */
        if (isfinite(t) && fabs(t) < 9223372036854775.0) {
            double whole;
            double frac = modf(t, &whole);
            *ms = (int64_t)whole * 1000 + (int64_t)llround(frac * 1000.0);
            return 0;
        }
    } else if (parse_rfc3339(s, ms)) {
        return 0;
    } else if (strcmp(s, "-292273086-05-16T16:47:06Z") == 0) {
        *ms = PROMETHEUS_MIN_TIME_MS;
        return 0;
    } else if (strcmp(s, "292277025-08-18T07:12:54.999999999Z") == 0) {
        *ms = PROMETHEUS_MAX_TIME_MS;
        return 0;
    }
    return vg_err_set(err, VG_EINVAL, "cannot parse \"%.64s\" to a valid timestamp", s);
}

int prometheus_time_param(const struct http_request *req, const char *name, int64_t def,
                          int64_t *ms, struct vg_err *err)
{
    const char *s = http_arg_get(req, name);
    if (!s || !*s) {
        *ms = def;
        return 0;
    }
    int rc = prometheus_parse_time(s, ms, err);
    if (rc < 0)
        return vg_err_prefix(err, "invalid parameter \"%s\"", name);
    return 0;
}

/* Parses a decimal int; false on syntax or overflow. */
static bool parse_int(const char *s, long long *v)
{
    if (!*s || isspace((unsigned char)*s))
        return false;
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    return errno == 0 && *end == '\0';
}

int prometheus_limit_param(const struct http_request *req, size_t *limit, struct vg_err *err)
{
    const char *s = http_arg_get(req, "limit");
    long long v = 0;
    *limit = 0;
    if (!s || !*s)
        return 0;
    if (!parse_int(s, &v))
        return vg_err_set(err, VG_EINVAL, "invalid parameter \"limit\": cannot parse \"%.64s\" "
                                          "to a valid limit", s);
    if (v < 0)
        return vg_err_set(err, VG_EINVAL, "invalid parameter \"limit\": limit must be "
                                          "non-negative");
    *limit = (size_t)v;
    return 0;
}

/* ---- names ---- */

static void put_utf8(struct vg_buf *b, unsigned cp)
{
    if (cp < 0x80) {
        vg_buf_putc(b, (char)cp);
    } else if (cp < 0x800) {
        vg_buf_putc(b, (char)(0xC0 | (cp >> 6)));
        vg_buf_putc(b, (char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        vg_buf_putc(b, (char)(0xE0 | (cp >> 12)));
        vg_buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        vg_buf_putc(b, (char)(0x80 | (cp & 0x3F)));
    } else {
        vg_buf_putc(b, (char)(0xF0 | (cp >> 18)));
        vg_buf_putc(b, (char)(0x80 | ((cp >> 12) & 0x3F)));
        vg_buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3F)));
        vg_buf_putc(b, (char)(0x80 | (cp & 0x3F)));
    }
}

/* The U__ decoding into b; false (b partly written) when malformed. */
static bool unescape_u(const char *s, size_t n, struct vg_buf *b)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '_') {
            vg_buf_putc(b, s[i]);
            continue;
        }
        if (++i >= n)
            return false;
        if (s[i] == '_') {
            vg_buf_putc(b, '_');
            continue;
        }
        unsigned cp = 0;
        size_t nd = 0;
        for (; i < n && s[i] != '_'; i++, nd++) {
            int d = isxdigit((unsigned char)s[i])
                        ? (isdigit((unsigned char)s[i]) ? s[i] - '0'
                                                        : (tolower((unsigned char)s[i]) - 'a' + 10))
                        : -1;
            if (d < 0 || nd >= 6)
                return false; /* at most 6 hex digits: U+10FFFF */
            cp = cp * 16 + (unsigned)d;
        }
        if (i >= n || nd == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        put_utf8(b, cp);
    }
    return true;
}

void prometheus_unescape_name(const char *s, size_t n, struct vg_buf *out)
{
    size_t start = out->len;
    if (n >= 3 && memcmp(s, "U__", 3) == 0 && unescape_u(s + 3, n - 3, out))
        return;
    out->len = start;
    vg_buf_append(out, s, n);
}

/* ---- JSON ---- */

void prometheus_json_begin(struct vg_buf *b)
{
    vg_buf_puts(b, "{\"status\":\"success\",\"data\":");
}

void prometheus_json_end(struct vg_buf *b, const char *warning)
{
    if (warning) {
        vg_buf_puts(b, ",\"warnings\":[");
        vg_buf_json_str(b, warning, strlen(warning));
        vg_buf_putc(b, ']');
    }
    vg_buf_putc(b, '}');
}

void prometheus_json_strings(struct vg_buf *b, const char *const *v, size_t n)
{
    vg_buf_putc(b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            vg_buf_putc(b, ',');
        vg_buf_json_str(b, v[i], strlen(v[i]));
    }
    vg_buf_putc(b, ']');
}

static void json_field(struct vg_buf *b, const char *key, const char *value, bool first)
{
    if (!first)
        vg_buf_putc(b, ',');
    vg_buf_json_str(b, key, strlen(key));
    vg_buf_putc(b, ':');
    vg_buf_json_str(b, value, strlen(value));
}

#ifndef VIGIL_BRANCH
#define VIGIL_BRANCH "unknown"
#endif
#ifndef VIGIL_BUILD_DATE
#define VIGIL_BUILD_DATE "unknown"
#endif

void prometheus_json_buildinfo(struct vg_buf *b)
{
    vg_buf_putc(b, '{');
    json_field(b, "version", PROMETHEUS_API_VERSION, true);
    json_field(b, "revision", "vigil-" VIGIL_VERSION, false);
    json_field(b, "branch", VIGIL_BRANCH, false);
    json_field(b, "buildUser", "vigil", false);
    json_field(b, "buildDate", VIGIL_BUILD_DATE, false);
    json_field(b, "goVersion", "none (Vigil is written in C)", false);
    vg_buf_putc(b, '}');
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

size_t prometheus_sort_unique(const char **v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_cstr);
    size_t k = 1;
    for (size_t i = 1; i < n; i++)
        if (strcmp(v[i], v[k - 1]) != 0)
            v[k++] = v[i];
    return k;
}

/* ---- handlers ---- */

/* Finishes resp: the body in b, or an error body when b failed. */
static void send(struct http_response *resp, struct vg_buf *b)
{
    if (vg_buf_failed(b)) {
        vg_buf_free(b);
        struct vg_err err;
        vg_err_set(&err, VG_ENOMEM, "out of memory writing the response");
        http_resp_error(resp, &err);
        return;
    }
    vg_buf_free(&resp->body);
    resp->body = *b;
    resp->status = 200;
    resp->content_type = "application/json";
}

/* The parsed request parameters common to series, labels and values. */
struct params {
    struct selector *sels;
    size_t nsels;
    int64_t start, end;
    size_t limit;
};

static void params_free(struct params *p)
{
    for (size_t i = 0; i < p->nsels; i++)
        selector_free(&p->sels[i]);
    vg_free(p->sels);
    p->sels = NULL;
    p->nsels = 0;
}

static int parse_params(const struct http_request *req, bool need_match, struct params *p,
                        struct vg_err *err)
{
    memset(p, 0, sizeof *p);
    int rc = prometheus_time_param(req, "start", PROMETHEUS_MIN_TIME_MS, &p->start, err);
    if (rc == 0)
        rc = prometheus_time_param(req, "end", PROMETHEUS_MAX_TIME_MS, &p->end, err);
    if (rc == 0)
        rc = prometheus_limit_param(req, &p->limit, err);
    if (rc < 0)
        return rc;
    size_t n = http_arg_all(req, "match[]", NULL, 0);
    if (n == 0)
        return need_match ? vg_err_set(err, VG_EINVAL, "no match[] parameter provided") : 0;
    const char **ms = vg_malloc(n * sizeof *ms);
    p->sels = vg_calloc(n, sizeof *p->sels);
    if (!ms || !p->sels) {
        vg_free(ms);
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    }
    http_arg_all(req, "match[]", ms, n);
    for (size_t i = 0; i < n; i++) {
        rc = selector_parse(ms[i], strlen(ms[i]), &p->sels[i], err);
        if (rc < 0) {
            vg_err_prefix(err, "invalid parameter \"match[]\"");
            break;
        }
        p->nsels++;
    }
    vg_free(ms);
    if (rc < 0)
        params_free(p);
    return rc;
}

static int cmp_series(const void *a, const void *b)
{
    const struct tsdb_series *x = *(const struct tsdb_series *const *)a;
    const struct tsdb_series *y = *(const struct tsdb_series *const *)b;
    return labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

/* Writes the union of sets (sorted by labels, unique) as data, at most limit entries. */
static int write_series(struct vg_buf *b, struct tsdb_series_set **sets, size_t nsets,
                        size_t limit, const char **warning)
{
    size_t total = 0;
    for (size_t i = 0; i < nsets; i++)
        total += sets[i]->n;
    const struct tsdb_series **all = vg_malloc((total ? total : 1) * sizeof *all);
    if (!all)
        return VG_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < nsets; i++)
        for (size_t j = 0; j < sets[i]->n; j++)
            all[n++] = &sets[i]->v[j];
    if (nsets > 1)
        qsort(all, n, sizeof *all, cmp_series);
    vg_buf_putc(b, '[');
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && all[i]->id == all[i - 1]->id)
            continue; /* the same series matched by two selectors */
        if (limit && out == limit) {
            *warning = TRUNCATED;
            break;
        }
        if (out++)
            vg_buf_putc(b, ',');
        prometheus_json_labels(b, all[i]->labels, all[i]->nlabels);
    }
    vg_buf_putc(b, ']');
    vg_free(all);
    return 0;
}

/* The series matching the union of p's selectors, written as data. */
static int series_answer(struct vigil *v, const char *unused, const struct params *p,
                         struct vg_buf *b, struct vg_err *err)
{
    (void)unused;
    struct tsdb_series_set **sets = vg_calloc(p->nsels, sizeof *sets);
    if (!sets)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < p->nsels; i++)
        rc = tsdb_select(v->tsdb, p->sels[i].ms, p->sels[i].n, p->start, p->end, &sets[i], err);
    if (rc == 0) {
        const char *warning = NULL;
        prometheus_json_begin(b);
        if (write_series(b, sets, p->nsels, p->limit, &warning) < 0)
            rc = vg_err_set(err, VG_ENOMEM, "out of memory");
        prometheus_json_end(b, warning);
    }
    for (size_t i = 0; i < p->nsels; i++)
        tsdb_series_set_free(sets[i]);
    vg_free(sets);
    return rc;
}

/* Names (name == NULL) or values of name over the union of p's selectors (all series
 * without one), written as data. */
static int strings_answer(struct vigil *v, const char *name, const struct params *p,
                          struct vg_buf *b, struct vg_err *err)
{
    size_t nq = p->nsels ? p->nsels : 1;
    struct tsdb_strings *res = vg_calloc(nq, sizeof *res);
    if (!res)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    int rc = 0;
    size_t total = 0;
    for (size_t i = 0; rc == 0 && i < nq; i++) {
        struct matcher *const *ms = p->nsels ? p->sels[i].ms : NULL;
        size_t nms = p->nsels ? p->sels[i].n : 0;
        rc = name ? tsdb_label_values(v->tsdb, name, ms, nms, p->start, p->end, &res[i], err)
                  : tsdb_label_names(v->tsdb, ms, nms, p->start, p->end, &res[i], err);
        total += res[i].n;
    }
    const char **all = rc == 0 ? vg_malloc((total ? total : 1) * sizeof *all) : NULL;
    if (rc == 0 && !all)
        rc = vg_err_set(err, VG_ENOMEM, "out of memory");
    if (all) { /* only allocated when every query succeeded */
        size_t n = 0;
        for (size_t i = 0; i < nq; i++)
            for (size_t j = 0; j < res[i].n; j++)
                all[n++] = res[i].v[j];
        if (nq > 1)
            n = prometheus_sort_unique(all, n);
        const char *warning = NULL;
        if (p->limit && n > p->limit) {
            n = p->limit;
            warning = TRUNCATED;
        }
        prometheus_json_begin(b);
        prometheus_json_strings(b, all, n);
        prometheus_json_end(b, warning);
    }
    vg_free(all);
    for (size_t i = 0; i < nq; i++)
        tsdb_strings_free(&res[i]);
    vg_free(res);
    return rc;
}

typedef int (*answer_fn)(struct vigil *v, const char *name, const struct params *p,
                         struct vg_buf *b, struct vg_err *err);

/* Parses the common parameters, lets fn write the data, sends it or the error. */
static void run(struct vigil *v, struct http_request *req, struct http_response *resp,
                bool need_match, answer_fn fn, const char *name)
{
    struct vg_err err;
    struct params p;
    if (parse_params(req, need_match, &p, &err) < 0) {
        http_resp_error(resp, &err);
        return;
    }
    struct vg_buf b;
    vg_buf_init(&b);
    int rc = fn(v, name, &p, &b, &err);
    params_free(&p);
    if (rc < 0) {
        vg_buf_free(&b);
        http_resp_error(resp, &err);
        return;
    }
    send(resp, &b);
}

static void handle_series(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    run(v, req, resp, true, series_answer, NULL);
}

static void handle_labels(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    run(v, req, resp, false, strings_answer, NULL);
}

static bool valid_utf8(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        size_t l = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (l == 0 || i + l > n || (l == 2 && c < 0xC2))
            return false;
        for (size_t k = 1; k < l; k++)
            if ((u[i + k] & 0xC0) != 0x80)
                return false;
        i += l;
    }
    return true;
}

static void handle_label_values(struct vigil *v, struct http_request *req,
                                struct http_response *resp)
{
    static const char prefix[] = "/api/v1/label/", suffix[] = "/values";
    struct vg_err err;
    size_t plen = strlen(req->path), pre = sizeof prefix - 1, suf = sizeof suffix - 1;
    if (plen <= pre + suf || memcmp(req->path + plen - suf, suffix, suf) != 0) {
        vg_err_set(&err, VG_ENOTFOUND, "not found: %.200s (expected /api/v1/label/<name>/values)",
                   req->path);
        http_resp_error(resp, &err);
        return;
    }
    struct vg_buf name;
    vg_buf_init(&name);
    prometheus_unescape_name(req->path + pre, plen - pre - suf, &name);
    const char *n = vg_buf_cstr(&name);
    if (!n) {
        vg_err_set(&err, VG_ENOMEM, "out of memory");
        http_resp_error(resp, &err);
    } else if (name.len == 0 || strlen(n) != name.len || !valid_utf8(n, name.len)) {
        vg_err_set(&err, VG_EINVAL, "invalid label name: \"%.*s\"",
                   (int)(plen - pre - suf > 200 ? 200 : plen - pre - suf), req->path + pre);
        http_resp_error(resp, &err);
    } else {
        run(v, req, resp, false, strings_answer, n);
    }
    vg_buf_free(&name);
}

/* One metric's entry `"name":[{"type":..,"help":..,"unit":..}]`; false when it has no
 * metadata. */
static bool write_metadata(struct vigil *v, const char *metric, char *help, char *unit,
                           struct vg_buf *b, bool first)
{
    enum tsdb_metric_type type;
    if (!tsdb_metadata_get(v->tsdb, metric, &type, help, HELP_CAP, unit, UNIT_CAP))
        return false;
    if (!first)
        vg_buf_putc(b, ',');
    vg_buf_json_str(b, metric, strlen(metric));
    vg_buf_puts(b, ":[{");
    json_field(b, "type", tsdb_metric_type_name(type), true);
    json_field(b, "help", help, false);
    json_field(b, "unit", unit, false);
    vg_buf_puts(b, "}]");
    return true;
}

static void handle_metadata(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    struct vg_err err;
    long long limit = -1, per = -1;
    const char *ls = http_arg_get(req, "limit"), *ps = http_arg_get(req, "limit_per_metric");
    if (ls && *ls && !parse_int(ls, &limit)) {
        vg_err_set(&err, VG_EINVAL, "limit must be a number");
        http_resp_error(resp, &err);
        return;
    }
    if (ps && *ps && !parse_int(ps, &per)) {
        vg_err_set(&err, VG_EINVAL, "limit_per_metric must be a number");
        http_resp_error(resp, &err);
        return;
    }
    /* We keep one metadata row per metric, so any limit_per_metric other than 0 is met. */
    const char *metric = http_arg_get(req, "metric");
    struct tsdb_strings names = { 0 };
    int rc = 0;
    if (!metric || !*metric)
        rc = tsdb_metadata_names(v->tsdb, &names, &err);
    char *help = vg_malloc(HELP_CAP), *unit = vg_malloc(UNIT_CAP);
    if (rc == 0 && (!help || !unit))
        rc = vg_err_set(&err, VG_ENOMEM, "out of memory");
    if (rc < 0 || !help || !unit) {
        vg_free(help);
        vg_free(unit);
        tsdb_strings_free(&names);
        http_resp_error(resp, &err);
        return;
    }
    struct vg_buf b;
    vg_buf_init(&b);
    prometheus_json_begin(&b);
    vg_buf_putc(&b, '{');
    if (per != 0 && metric && *metric) {
        if (limit != 0)
            write_metadata(v, metric, help, unit, &b, true);
    } else if (per != 0) {
        long long written = 0;
        for (size_t i = 0; i < names.n && (limit < 0 || written < limit); i++)
            written += write_metadata(v, names.v[i], help, unit, &b, written == 0);
    }
    vg_buf_putc(&b, '}');
    prometheus_json_end(&b, NULL);
    vg_free(help);
    vg_free(unit);
    tsdb_strings_free(&names);
    send(resp, &b);
}

static void handle_buildinfo(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    (void)v;
    (void)req;
    struct vg_buf b;
    vg_buf_init(&b);
    prometheus_json_begin(&b);
    prometheus_json_buildinfo(&b);
    prometheus_json_end(&b, NULL);
    send(resp, &b);
}

static const struct http_route routes[] = {
    { "GET,POST", "/api/v1/series", false, handle_series, "/api/v1/series" },
    { "GET,POST", "/api/v1/labels", false, handle_labels, "/api/v1/labels" },
    { "GET", "/api/v1/label/", true, handle_label_values, "/api/v1/label/:name/values" },
    { "GET", "/api/v1/metadata", false, handle_metadata, "/api/v1/metadata" },
    { "GET", "/api/v1/status/buildinfo", false, handle_buildinfo, "/api/v1/status/buildinfo" },
};

const struct vigil_module mod_prometheus_api = {
    .name = "prometheus_api",
    .routes = routes,
    .nroutes = sizeof routes / sizeof routes[0],
};
