/* errors (API): see errors.h. */
#include "errors.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/errorstore/errorstore.h"
#include "../traces/derive.h"
#include "../traces/errors.h"
#include "prometheus.h"
#include "query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PREFIX "/api/v1/errors/"
#define WEEK_MS (7LL * 24 * 3600 * 1000)
#define NS_PER_MS 1000000LL

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "2024-01-02T03:04:05.123Z", always with milliseconds. */
static void json_time(struct vg_buf *b, int64_t ms)
{
    int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
    time_t t = (time_t)secs;
    struct tm tm;
    char s[40];
    if (!gmtime_r(&t, &tm) || strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        vg_buf_puts(b, "\"1970-01-01T00:00:00.000Z\"");
        return;
    }
    vg_buf_printf(b, "\"%s.%03dZ\"", s, (int)(ms - secs * 1000));
}

static void json_cstr(struct vg_buf *b, const char *s)
{
    vg_buf_json_str(b, s, strlen(s));
}

/* The fields every answer shares, without the closing brace. */
static void json_group(struct vg_buf *b, const struct errorstore_group *g, uint64_t count)
{
    vg_buf_printf(b, "{\"fingerprint\":\"%016llx\",\"type\":",
                  (unsigned long long)g->fingerprint);
    json_cstr(b, g->type);
    vg_buf_puts(b, ",\"message\":");
    json_cstr(b, g->message);
    vg_buf_printf(b, ",\"count\":%llu,\"firstSeen\":", (unsigned long long)count);
    json_time(b, g->first_seen_ms);
    vg_buf_puts(b, ",\"lastSeen\":");
    json_time(b, g->last_seen_ms);
    vg_buf_puts(b, ",\"services\":");
    prometheus_json_strings(b, g->services, g->nservices);
    vg_buf_puts(b, ",\"sampleTraceId\":");
    if (g->nsamples)
        json_cstr(b, g->samples[0].trace_id);
    else
        vg_buf_puts(b, "null");
}

/* The error tracker, flushed so the answer sees everything ingested before. */
static struct errors *tracker(struct vigil *v, struct vg_err *err)
{
    struct errors *e = trace_derive_errors(v->derive);
    if (!e) {
        vg_err_set(err, VG_ENOTFOUND, "error tracking is disabled (traces.errors_enabled)");
        return NULL;
    }
    return errors_flush(e, err) < 0 ? NULL : e;
}

static bool has_service(const struct errorstore_group *g, const char *service)
{
    for (size_t i = 0; i < g->nservices; i++)
        if (strcmp(g->services[i], service) == 0)
            return true;
    return false;
}

static int range_count(struct errorstore *es, uint64_t fp, int64_t start, int64_t end,
                       uint64_t *count, struct vg_err *err)
{
    struct errorstore_hour *h;
    size_t n;
    int rc = errorstore_hours(es, fp, start, end, &h, &n, err);
    *count = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        *count += h[i].count;
    vg_free(h);
    return rc;
}

struct ranked {
    const struct errorstore_group *g;
    uint64_t count;
};

static int cmp_ranked(const void *a, const void *b)
{
    const struct ranked *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->g->fingerprint < y->g->fingerprint ? -1 : x->g->fingerprint > y->g->fingerprint;
}

static int list(struct vigil *v, struct http_request *req, struct vg_buf *b,
                struct vg_err *err)
{
    const char *service = http_arg_get(req, "service");
    bool ranged = (http_arg_get(req, "start") && *http_arg_get(req, "start")) ||
                  (http_arg_get(req, "end") && *http_arg_get(req, "end"));
    int64_t start, end;
    size_t limit;
    int rc;
    if ((rc = prometheus_time_param(req, "start", 0, &start, err)) < 0 ||
        (rc = prometheus_time_param(req, "end", now_ms(), &end, err)) < 0 ||
        (rc = prometheus_limit_param(req, &limit, err)) < 0)
        return rc;
    if (end < start)
        return vg_err_set(err, VG_EINVAL, "end timestamp must not be before start time");
    struct errors *e = tracker(v, err);
    if (!e)
        return err->code;
    struct errorstore *es = errors_store(e);
    struct errorstore_groups gs;
    struct ranked *r = NULL;
    size_t n = 0;
    rc = errorstore_list(es, &gs, err);
    if (rc == 0 && !(r = vg_malloc((gs.n ? gs.n : 1) * sizeof *r)))
        rc = vg_err_set(err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < gs.n; i++) {
        const struct errorstore_group *g = &gs.v[i];
        if (service && *service && !has_service(g, service))
            continue;
        if (ranged && (g->last_seen_ms < start - ERRORSTORE_HOUR_MS ||
                       g->first_seen_ms > end))
            continue;
        uint64_t count = g->count;
        if (ranged && (rc = range_count(es, g->fingerprint, start, end, &count, err)) < 0)
            break;
        if (count)
            r[n++] = (struct ranked){ g, count };
    }
    if (rc == 0) {
        qsort(r, n, sizeof *r, cmp_ranked);
        if (limit && n > limit)
            n = limit;
        prometheus_json_begin(b);
        vg_buf_putc(b, '[');
        for (size_t i = 0; i < n; i++) {
            if (i)
                vg_buf_putc(b, ',');
            json_group(b, r[i].g, r[i].count);
            vg_buf_putc(b, '}');
        }
        vg_buf_putc(b, ']');
        prometheus_json_end(b, NULL);
    }
    vg_free(r);
    errorstore_groups_free(&gs);
    return rc;
}

static bool parse_fingerprint(const char *s, uint64_t *fp)
{
    size_t n = strlen(s);
    if (n == 0 || n > 16 || strspn(s, "0123456789abcdefABCDEF") != n)
        return false;
    *fp = strtoull(s, NULL, 16);
    return true;
}

static int step_param(const struct http_request *req, int64_t *step_ms, struct vg_err *err)
{
    const char *s = http_arg_get(req, "step");
    *step_ms = ERRORSTORE_HOUR_MS;
    if (!s || !*s)
        return 0;
    int64_t ns;
    if (query_parse_duration(s, &ns, err) < 0)
        return vg_err_prefix(err, "invalid parameter \"step\"");
    int64_t ms = ns / NS_PER_MS;
    if (ms <= 0 || ms % ERRORSTORE_HOUR_MS != 0 || ns % NS_PER_MS != 0)
        return vg_err_set(err, VG_EINVAL, "invalid parameter \"step\": %s is not a positive "
                          "whole number of hours (counts are kept per hour)", s);
    *step_ms = ms;
    return 0;
}

static int detail(struct vigil *v, struct http_request *req, struct vg_buf *b,
                  struct vg_err *err)
{
    const char *id = req->path + strlen(PREFIX);
    uint64_t fp;
    if (!parse_fingerprint(id, &fp))
        return vg_err_set(err, VG_EINVAL, "invalid fingerprint \"%.64s\": expected 1 to 16 "
                          "hex digits", id);
    int64_t step, end, start;
    int rc;
    if ((rc = step_param(req, &step, err)) < 0 ||
        (rc = prometheus_time_param(req, "end", now_ms(), &end, err)) < 0)
        return rc;
    struct errors *e = tracker(v, err);
    if (!e)
        return err->code;
    struct errorstore *es = errors_store(e);
    struct errorstore_groups gs;
    if ((rc = errorstore_get(es, fp, &gs, err)) < 0) {
        errorstore_groups_free(&gs);
        return rc;
    }
    const struct errorstore_group *g = &gs.v[0];
    int64_t def = g->first_seen_ms > end - WEEK_MS ? g->first_seen_ms : end - WEEK_MS;
    struct errorstore_hour *h = NULL;
    size_t nh = 0;
    if ((rc = prometheus_time_param(req, "start", def, &start, err)) < 0)
        goto out;
    start -= ((start % step) + step) % step; /* floor to the step */
    if (end < start) {
        rc = vg_err_set(err, VG_EINVAL, "end timestamp must not be before start time");
        goto out;
    }
    if ((end - start) / step >= ERRORS_API_MAX_POINTS) {
        rc = vg_err_set(err, VG_EINVAL, "exceeded maximum resolution of %d points: try a "
                        "larger step or a shorter range", ERRORS_API_MAX_POINTS);
        goto out;
    }
    if ((rc = errorstore_hours(es, fp, start, end, &h, &nh, err)) < 0)
        goto out;
    prometheus_json_begin(b);
    json_group(b, g, g->count);
    vg_buf_puts(b, ",\"frames\":");
    json_cstr(b, g->frames);
    vg_buf_puts(b, ",\"sampleTraceIds\":[");
    for (size_t i = 0; i < g->nsamples; i++) {
        if (i)
            vg_buf_putc(b, ',');
        json_cstr(b, g->samples[i].trace_id);
    }
    vg_buf_puts(b, "],\"occurrences\":[");
    size_t k = 0;
    for (int64_t t = start; t <= end; t += step) {
        uint64_t count = 0;
        for (; k < nh && h[k].start_ms < t + step; k++)
            if (h[k].start_ms >= t)
                count += h[k].count;
        vg_buf_printf(b, "%s[%lld,%llu]", t == start ? "" : ",", (long long)(t / 1000),
                      (unsigned long long)count);
    }
    vg_buf_puts(b, "]}");
    prometheus_json_end(b, NULL);
out:
    vg_free(h);
    errorstore_groups_free(&gs);
    return rc;
}

static void answer(struct http_response *resp, struct vg_buf *b, int rc,
                   const struct vg_err *err)
{
    if (rc == 0 && vg_buf_failed(b)) {
        vg_buf_free(b);
        query_resp_error(resp, QUERY_INTERNAL, "out of memory");
        return;
    }
    if (rc < 0) {
        vg_buf_free(b);
        http_resp_error(resp, err);
        return;
    }
    vg_buf_free(&resp->body);
    resp->body = *b;
    resp->status = 200;
    resp->content_type = "application/json";
}

static void handle_list(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    struct vg_err err;
    vg_err_clear(&err);
    struct vg_buf b;
    vg_buf_init(&b);
    int rc = list(v, req, &b, &err);
    answer(resp, &b, rc, &err);
}

static void handle_detail(struct vigil *v, struct http_request *req,
                          struct http_response *resp)
{
    struct vg_err err;
    vg_err_clear(&err);
    struct vg_buf b;
    vg_buf_init(&b);
    int rc = detail(v, req, &b, &err);
    answer(resp, &b, rc, &err);
}

static const struct http_route routes[] = {
    { "GET", "/api/v1/errors", false, handle_list, "/api/v1/errors" },
    { "GET", PREFIX, true, handle_detail, "/api/v1/errors/{fingerprint}" },
};

const struct vigil_module mod_errors_api = {
    .name = "errors_api",
    .routes = routes,
    .nroutes = sizeof routes / sizeof routes[0],
};
