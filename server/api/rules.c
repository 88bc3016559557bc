/* rules (API): see rules.h. Everything is rendered from a rules_view, a copy of the
 * engine's state taken under its locks, so no lock is held while writing JSON. */
#include "rules.h"

#include "../../storage/base/vg_log.h"
#include "../rules/rule_template.h"
#include "../rules/rules.h"
#include "../scrape/scrape.h"
#include "prometheus.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILTERS 64

void rules_api_go_e(struct vg_buf *b, double v)
{
    if (isnan(v)) {
        vg_buf_puts(b, "NaN");
        return;
    }
    if (isinf(v)) {
        vg_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char s[40];
    for (int prec = 0; prec < 17; prec++) {
        snprintf(s, sizeof s, "%.*e", prec, v);
        if (strtod(s, NULL) == v)
            break;
    }
    vg_buf_puts(b, s);
}

void rules_api_time(struct vg_buf *b, int64_t ms)
{
    if (ms == 0) {
        vg_buf_puts(b, "0001-01-01T00:00:00Z");
        return;
    }
    rule_template_fmt_time(b, ms, 'T');
    vg_buf_putc(b, 'Z');
}

static void seconds(struct vg_buf *b, double s)
{
    vg_buf_json_float(b, s);
}

static void key(struct vg_buf *b, const char *k)
{
    vg_buf_printf(b, ",\"%s\":", k);
}

static void str(struct vg_buf *b, const char *s)
{
    vg_buf_json_str(b, s, strlen(s));
}

/* ,"evaluationTime":s,"lastEvaluation":"time" (rules and groups alike) */
static void eval_times(struct vg_buf *b, double secs, int64_t last_ms)
{
    key(b, "evaluationTime");
    seconds(b, secs);
    key(b, "lastEvaluation");
    vg_buf_putc(b, '"');
    rules_api_time(b, last_ms);
    vg_buf_putc(b, '"');
}

static void send(struct http_response *resp, struct vg_buf *b)
{
    if (vg_buf_failed(b)) {
        vg_buf_free(b);
        struct vg_err e;
        vg_err_set(&e, VG_ENOMEM, "out of memory writing the response");
        http_resp_error(resp, &e);
        return;
    }
    vg_buf_free(&resp->body);
    resp->body = *b;
    resp->status = 200;
    resp->content_type = "application/json";
}

/* {labels, annotations, state, activeAt, keepFiringSince?, value} */
static void alert_json(struct vg_buf *b, const struct rules_alert_view *a)
{
    vg_buf_puts(b, "{\"labels\":");
    prometheus_json_labels(b, a->labels, a->nlabels);
    key(b, "annotations");
    prometheus_json_labels(b, a->annotations, a->nannotations);
    key(b, "state");
    str(b, rules_alert_state_name(a->state));
    key(b, "activeAt");
    vg_buf_putc(b, '"');
    rules_api_time(b, a->active_at_ms);
    vg_buf_putc(b, '"');
    if (a->keep_firing_since_ms) {
        key(b, "keepFiringSince");
        vg_buf_putc(b, '"');
        rules_api_time(b, a->keep_firing_since_ms);
        vg_buf_putc(b, '"');
    }
    key(b, "value");
    vg_buf_putc(b, '"');
    rules_api_go_e(b, a->value);
    vg_buf_puts(b, "\"}");
}

static void rule_json(struct vg_buf *b, const struct rules_rule_view *r, bool with_alerts)
{
    bool alerting = r->kind == RULE_ALERT;
    vg_buf_putc(b, '{');
    if (alerting) {
        vg_buf_puts(b, "\"state\":");
        str(b, rules_alert_state_name(r->state));
        vg_buf_putc(b, ',');
    }
    vg_buf_puts(b, "\"name\":");
    str(b, r->name);
    key(b, "query");
    str(b, r->query);
    if (alerting) {
        key(b, "duration");
        seconds(b, (double)r->for_ms / 1000.0);
        key(b, "keepFiringFor");
        seconds(b, (double)r->keep_firing_for_ms / 1000.0);
    }
    if (alerting || r->nlabels) {
        key(b, "labels");
        prometheus_json_labels(b, r->labels, r->nlabels);
    }
    if (alerting) {
        key(b, "annotations");
        prometheus_json_labels(b, r->annotations, r->nannotations);
        key(b, "alerts");
        if (!with_alerts) {
            vg_buf_puts(b, "null");
        } else {
            vg_buf_putc(b, '[');
            for (size_t i = 0; i < r->nalerts; i++) {
                if (i)
                    vg_buf_putc(b, ',');
                alert_json(b, &r->alerts[i]);
            }
            vg_buf_putc(b, ']');
        }
    }
    key(b, "health");
    str(b, rules_health_name(r->health));
    if (*r->last_error) {
        key(b, "lastError");
        str(b, r->last_error);
    }
    eval_times(b, r->eval_seconds, r->last_eval_ms);
    key(b, "type");
    str(b, alerting ? "alerting" : "recording");
    vg_buf_putc(b, '}');
}

struct filter {
    const char *names[MAX_FILTERS], *groups[MAX_FILTERS], *files[MAX_FILTERS];
    size_t nnames, ngroups, nfiles;
    int kind; /* -1 any, else enum rule_kind */
    bool alerts;
};

static bool in_set(const char *const *set, size_t n, const char *s)
{
    if (!n)
        return true;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(set[i], s))
            return true;
    return false;
}

static int read_filter(const struct http_request *req, struct filter *f, struct vg_err *err)
{
    memset(f, 0, sizeof *f);
    f->kind = -1;
    const char *t = http_arg_get(req, "type");
    if (t && *t) {
        if (!strcasecmp(t, "alert"))
            f->kind = RULE_ALERT;
        else if (!strcasecmp(t, "record"))
            f->kind = RULE_RECORD;
        else
            return vg_err_set(err, VG_EINVAL, "not supported value \"%.64s\"", t);
    }
    f->nnames = http_arg_all(req, "rule_name[]", f->names, MAX_FILTERS);
    f->ngroups = http_arg_all(req, "rule_group[]", f->groups, MAX_FILTERS);
    f->nfiles = http_arg_all(req, "file[]", f->files, MAX_FILTERS);
    if (f->nnames > MAX_FILTERS || f->ngroups > MAX_FILTERS || f->nfiles > MAX_FILTERS)
        return vg_err_set(err, VG_EINVAL, "at most %d values of each filter", MAX_FILTERS);
    const char *ex = http_arg_get(req, "exclude_alerts");
    f->alerts = !(ex && (!strcmp(ex, "true") || !strcmp(ex, "1")));
    return 0;
}

static void rules_body(struct vg_buf *b, const struct rules_view *view, const struct filter *fp)
{
    const struct filter f = *fp;
    vg_buf_puts(b, "{\"groups\":[");
    bool first_group = true;
    for (size_t gi = 0; gi < view->ngroups; gi++) {
        const struct rules_group_view *g = &view->groups[gi];
        if (!in_set(f.groups, f.ngroups, g->name) || !in_set(f.files, f.nfiles, g->file))
            continue;
        size_t shown = 0;
        for (size_t ri = 0; ri < g->nrules; ri++) {
            const struct rules_rule_view *r = &g->rules[ri];
            shown += (f.kind < 0 || (int)r->kind == f.kind) && in_set(f.names, f.nnames, r->name);
        }
        /* a group whose rules the filters all removed is left out */
        if (!shown && (g->nrules || f.kind >= 0 || f.nnames))
            continue;
        vg_buf_puts(b, first_group ? "{" : ",{");
        first_group = false;
        vg_buf_puts(b, "\"name\":");
        str(b, g->name);
        key(b, "file");
        str(b, g->file);
        vg_buf_puts(b, ",\"rules\":[");
        bool first = true;
        for (size_t ri = 0; ri < g->nrules; ri++) {
            const struct rules_rule_view *r = &g->rules[ri];
            if (!((f.kind < 0 || (int)r->kind == f.kind) && in_set(f.names, f.nnames, r->name)))
                continue;
            if (!first)
                vg_buf_putc(b, ',');
            first = false;
            rule_json(b, r, f.alerts);
        }
        vg_buf_putc(b, ']');
        key(b, "interval");
        seconds(b, (double)g->interval_ms / 1000.0);
        vg_buf_printf(b, ",\"limit\":%lld", (long long)g->limit);
        eval_times(b, g->eval_seconds, g->last_eval_ms);
        vg_buf_putc(b, '}');
    }
    vg_buf_puts(b, "]}");
}

static void alerts_body(struct vg_buf *b, const struct rules_view *view, const struct filter *f)
{
    (void)f;
    vg_buf_puts(b, "{\"alerts\":[");
    bool first = true;
    for (size_t gi = 0; gi < view->ngroups; gi++)
        for (size_t ri = 0; ri < view->groups[gi].nrules; ri++) {
            const struct rules_rule_view *r = &view->groups[gi].rules[ri];
            for (size_t ai = 0; ai < r->nalerts; ai++) {
                if (!first)
                    vg_buf_putc(b, ',');
                first = false;
                alert_json(b, &r->alerts[ai]);
            }
        }
    vg_buf_puts(b, "]}");
}

/* The envelope around body's data object, from a fresh view. */
static void respond(struct vigil *v, struct http_response *resp, const struct filter *f,
                    void (*body)(struct vg_buf *, const struct rules_view *, const struct filter *))
{
    struct rules_view *view;
    struct vg_err err;
    if (rules_view(v->rules, &view, &err) < 0) {
        http_resp_error(resp, &err);
        return;
    }
    struct vg_buf b;
    vg_buf_init(&b);
    prometheus_json_begin(&b);
    body(&b, view, f);
    prometheus_json_end(&b, NULL);
    rules_view_free(view);
    send(resp, &b);
}

static void rules_handler(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    struct filter f;
    struct vg_err err;
    if (read_filter(req, &f, &err) < 0) {
        http_resp_error(resp, &err);
        return;
    }
    respond(v, resp, &f, rules_body);
}

static void alerts_handler(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    (void)req;
    respond(v, resp, NULL, alerts_body);
}

static void reload_handler(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    (void)req;
    resp->content_type = "text/plain; charset=utf-8";
    vg_buf_reset(&resp->body);
    struct vg_err err;
    if (v->scrape_state && scrape_reload(v->scrape_state, &err) < 0) {
        resp->status = 500;
        vg_buf_printf(&resp->body, "failed to reload config: %s\n", err.msg);
        return;
    }
    if (!v->rules) {
        resp->status = 200;
        return;
    }
    if (rules_reload(v->rules, &err) < 0) {
        resp->status = 500;
        vg_buf_printf(&resp->body, "failed to reload config: %s\n", err.msg);
        return;
    }
    resp->status = 200;
}

static const struct http_route routes[] = {
    { "GET,POST", "/api/v1/rules", false, rules_handler, "/api/v1/rules" },
    { "GET,POST", "/api/v1/alerts", false, alerts_handler, "/api/v1/alerts" },
    { "POST,PUT", "/-/reload", false, reload_handler, "/-/reload" },
};

const struct vigil_module mod_rules_api = {
    .name = "rules_api",
    .routes = routes,
    .nroutes = sizeof routes / sizeof routes[0],
};
