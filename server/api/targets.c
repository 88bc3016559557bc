/* targets: /api/v1/targets and /api/v1/targets/metadata (see targets.h for the shapes,
 * which are Prometheus's). The JSON is written while scrape_each_target (or a
 * collector's each_target) holds the status lock, so the strings it hands out need no
 * copying. Active targets: the scrape pools', then SNMP devices (pool "snmp") and
 * Jolokia agents (pool "jmx"), which have no dropped targets and no metadata here. */
#include "targets.h"

#include "../../storage/base/vg_alloc.h"
#include "../collect/jolokia.h"
#include "../collect/snmp.h"
#include "../promql/selector.h"
#include "../scrape/scrape.h"
#include "../scrape/scrape_config.h"
#include "prometheus.h"
#include "rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_duration(struct vg_buf *b, int64_t ms)
{
    char d[64];
    scrape_format_duration(d, sizeof d, ms);
    vg_buf_json_str(b, d, strlen(d));
}

/* ,"key":"value" */
static void put_field(struct vg_buf *b, const char *key, const char *value)
{
    vg_buf_printf(b, ",\"%s\":", key);
    vg_buf_json_str(b, value, strlen(value));
}

struct list_ctx {
    struct vg_buf *b;
    bool dropped;       /* which list is being written */
    const char *pool;   /* scrapePool filter or NULL */
    size_t n;
};

static void put_target(void *ctx, const struct scrape_target_status *st)
{
    struct list_ctx *c = ctx;
    if (st->dropped != c->dropped || (c->pool && strcmp(c->pool, st->pool) != 0))
        return;
    struct vg_buf *b = c->b;
    if (c->n++)
        vg_buf_putc(b, ',');
    vg_buf_puts(b, "{\"discoveredLabels\":");
    prometheus_json_labels(b, st->discovered, st->ndiscovered);
    if (st->dropped) {
        vg_buf_putc(b, '}');
        return;
    }
    vg_buf_puts(b, ",\"labels\":");
    prometheus_json_labels(b, st->labels, st->nlabels);
    put_field(b, "scrapePool", st->pool);
    put_field(b, "scrapeUrl", st->url);
    put_field(b, "globalUrl", st->url);
    put_field(b, "lastError", st->last_error);
    vg_buf_puts(b, ",\"lastScrape\":\"");
    rules_api_time(b, st->last_scrape_ms);
    vg_buf_puts(b, "\",\"lastScrapeDuration\":");
    vg_buf_json_float(b, st->last_duration_s);
    put_field(b, "health", st->health);
    vg_buf_puts(b, ",\"scrapeInterval\":");
    put_duration(b, st->interval_ms);
    vg_buf_puts(b, ",\"scrapeTimeout\":");
    put_duration(b, st->timeout_ms);
    vg_buf_putc(b, '}');
}

static void bad_request(struct http_response *resp, const char *msg)
{
    struct vg_err err;
    vg_err_set(&err, VG_EINVAL, "%s", msg);
    http_resp_error(resp, &err);
}

static void targets_handler(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    const char *state = http_arg_get(req, "state");
    const char *pool = http_arg_get(req, "scrapePool");
    if (state && !*state)
        state = NULL;
    if (state && strcasecmp(state, "active") != 0 && strcasecmp(state, "dropped") != 0 &&
        strcasecmp(state, "any") != 0) {
        bad_request(resp, "invalid state: must be one of active, dropped or any");
        return;
    }
    bool active = !state || strcasecmp(state, "dropped") != 0;
    bool dropped = !state || strcasecmp(state, "active") != 0;
    struct vg_buf *b = &resp->body;
    vg_buf_puts(b, "{\"status\":\"success\",\"data\":{\"activeTargets\":[");
    struct list_ctx c = { .b = b, .pool = pool && *pool ? pool : NULL };
    if (active && v->scrape_state)
        scrape_each_target(v->scrape_state, put_target, &c);
    if (active) { /* polled devices and agents, after the scrape pools */
        snmp_each_target(v, put_target, &c);
        jolokia_each_target(v, put_target, &c);
    }
    vg_buf_puts(b, "],\"droppedTargets\":[");
    c.dropped = true;
    c.n = 0;
    if (dropped && v->scrape_state)
        scrape_each_target(v->scrape_state, put_target, &c);
    vg_buf_puts(b, "]}}");
}

struct meta_ctx {
    struct vg_buf *b;
    const struct selector *sel;
    const char *metric;
    int64_t limit;   /* < 0: none */
    size_t n;
};

static bool target_matches(const struct selector *sel, const struct scrape_target_status *st)
{
    for (size_t i = 0; sel && i < sel->n; i++) {
        struct vg_str v = labels_get(st->labels, st->nlabels, sel->ms[i]->name);
        if (!matcher_matches(sel->ms[i], v.p ? v : (struct vg_str){ "", 0 }))
            return false;
    }
    return true;
}

static void put_meta(void *ctx, const struct scrape_target_status *st)
{
    struct meta_ctx *c = ctx;
    if (st->dropped || !target_matches(c->sel, st))
        return;
    for (size_t i = 0; i < st->nmeta; i++) {
        const struct scrape_meta *m = &st->meta[i];
        if (c->metric && strcmp(c->metric, m->metric) != 0)
            continue;
        if (c->limit >= 0 && (int64_t)c->n >= c->limit)
            return;
        struct vg_buf *b = c->b;
        if (c->n++)
            vg_buf_putc(b, ',');
        vg_buf_puts(b, "{\"target\":");
        prometheus_json_labels(b, st->labels, st->nlabels);
        put_field(b, "metric", m->metric);
        put_field(b, "type", m->type);
        put_field(b, "help", m->help);
        put_field(b, "unit", m->unit);
        vg_buf_putc(b, '}');
    }
}

static void metadata_handler(struct vigil *v, struct http_request *req,
                             struct http_response *resp)
{
    const char *mt = http_arg_get(req, "match_target");
    const char *metric = http_arg_get(req, "metric");
    const char *lim = http_arg_get(req, "limit");
    struct meta_ctx c = { .b = &resp->body, .metric = metric && *metric ? metric : NULL,
                          .limit = -1 };
    if (lim && *lim) {
        char *end;
        long long l = strtoll(lim, &end, 10);
        if (*end) {
            bad_request(resp, "invalid limit: not a number");
            return;
        }
        c.limit = l < 0 ? -1 : l;
    }
    struct selector sel = { 0 };
    if (mt && *mt) {
        struct vg_err err;
        if (selector_parse(mt, strlen(mt), &sel, &err) < 0) {
            vg_err_prefix(&err, "invalid match_target");
            http_resp_error(resp, &err);
            return;
        }
        c.sel = &sel;
    }
    vg_buf_puts(c.b, "{\"status\":\"success\",\"data\":[");
    if (v->scrape_state)
        scrape_each_target(v->scrape_state, put_meta, &c);
    vg_buf_puts(c.b, "]}");
    selector_free(&sel);
}

static const struct http_route routes[] = {
    { "GET", "/api/v1/targets", false, targets_handler, "/api/v1/targets" },
    { "GET", "/api/v1/targets/metadata", false, metadata_handler, "/api/v1/targets/metadata" },
};

const struct vigil_module mod_targets_api = {
    .name = "targets_api",
    .routes = routes,
    .nroutes = sizeof routes / sizeof routes[0],
};
