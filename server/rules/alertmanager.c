/* alertmanager: see alertmanager.h. */
#include "alertmanager.h"

#include "../../storage/base/vg_alloc.h"
#include "../config_node.h"
#include "../labels_json.h"
#include "../metrics.h"
#include "outbox.h"
#include "transport.h"
#include "webhook.h"

#include <stdio.h>
#include <string.h>

#define MAX_TARGETS 64

struct am_target {
    char *url;
    int64_t timeout_ms;
    struct outbox *ob;
};

struct alertmanagers {
    struct am_target *t;
    size_t n;
};

static const char *const am_keys[] = { "static_configs", "scheme", "path_prefix", "timeout",
                                       "api_version", NULL };

/* Calls fn for every target of the section after validating it (fn may be NULL). */
typedef int (*target_fn)(void *ud, const char *url, int64_t timeout_ms, struct vg_err *err);

static int walk(const struct config_node *sec, target_fn fn, void *ud, struct vg_err *err)
{
    static const char *const keys[] = { "alertmanagers", "queue_capacity",
                                        "alert_relabel_configs", NULL };
    int rc;
    if (!sec)
        return 0;
    if ((rc = config_node_check_keys(sec, "alerting", keys, err)) < 0)
        return rc;
    if (config_node_get(sec, "alert_relabel_configs"))
        return config_node_err(err, config_node_get(sec, "alert_relabel_configs"),
                               "alerting.alert_relabel_configs: not supported by Vigil");
    int64_t cap = 10000;
    if ((rc = config_node_int(sec, "alerting", "queue_capacity", 1, 10000000, &cap, err)) < 0)
        return rc;
    const struct config_node *ams = config_node_get(sec, "alertmanagers");
    if (!ams)
        return 0;
    if (ams->type != CONFIG_NODE_SEQ)
        return config_node_err(err, ams, "alerting.alertmanagers: expected a list");
    size_t total = 0;
    for (size_t i = 0; i < ams->n; i++) {
        const struct config_node *am = ams->items[i];
        char w[64];
        snprintf(w, sizeof w, "alerting.alertmanagers[%zu]", i);
        const char *scheme = "http", *prefix = "/", *api = "v2";
        int64_t timeout = 10000;
        if ((rc = config_node_check_keys(am, w, am_keys, err)) < 0 ||
            (rc = config_node_str(am, w, "scheme", &scheme, err)) < 0 ||
            (rc = config_node_str(am, w, "path_prefix", &prefix, err)) < 0 ||
            (rc = config_node_str(am, w, "api_version", &api, err)) < 0 ||
            (rc = config_node_duration(am, w, "timeout", 1, &timeout, err)) < 0)
            return rc;
        if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
            return config_node_err(err, config_node_get(am, "scheme"),
                                   "%s.scheme: \"%s\" is not http or https", w, scheme);
        if (strcmp(api, "v2") != 0)
            return config_node_err(err, config_node_get(am, "api_version"),
                                   "%s.api_version: \"%s\" is not supported (only v2)", w, api);
        const struct config_node *sc = config_node_get(am, "static_configs");
        if (!sc || sc->type != CONFIG_NODE_SEQ || !sc->n)
            return config_node_err(err, sc ? sc : am,
                                   "%s.static_configs: expected a non-empty list", w);
        size_t plen = strlen(prefix);
        while (plen && prefix[plen - 1] == '/')
            plen--;
        for (size_t k = 0; k < sc->n; k++) {
            char sw[128];
            snprintf(sw, sizeof sw, "%s.static_configs[%zu]", w, k);
            static const char *const skeys[] = { "targets", "labels", NULL };
            const char **targets;
            size_t nt;
            if ((rc = config_node_check_keys(sc->items[k], sw, skeys, err)) < 0 ||
                (rc = config_node_strlist(sc->items[k], sw, "targets", &targets, &nt, err)) < 0)
                return rc;
            for (size_t j = 0; j < nt && rc == 0; j++) {
                const char *t = targets[j];
                if (!*t || strchr(t, '/') || !strchr(t, ':'))
                    rc = config_node_err(err, config_node_get(sc->items[k], "targets"),
                                         "%s.targets[%zu]: \"%s\" is not host:port", sw, j, t);
                else if (++total > MAX_TARGETS)
                    rc = config_node_err(err, sc->items[k], "%s: more than %d Alertmanagers",
                                         sw, MAX_TARGETS);
                if (rc == 0 && fn) {
                    char url[512];
                    snprintf(url, sizeof url, "%s://%s%s%.*s/api/v2/alerts", scheme, t,
                             plen && prefix[0] != '/' ? "/" : "", (int)plen, prefix);
                    rc = fn(ud, url, timeout, err);
                }
            }
            vg_free(targets);
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

int alertmanager_check(const struct config_node *alerting, struct vg_err *err)
{
    return walk(alerting, NULL, NULL, err);
}

static void put_time(struct vg_buf *b, const char *key, int64_t ms)
{
    vg_buf_printf(b, ",\"%s\":\"", key);
    route_rfc3339(b, ms);
    vg_buf_putc(b, '"');
}

void alertmanager_alert_json(const struct alert *a, struct vg_buf *out)
{
    vg_buf_puts(out, "{\"labels\":");
    labels_json_put(out, a->labels, a->nlabels);
    vg_buf_puts(out, ",\"annotations\":");
    labels_json_put(out, a->annotations, a->nannotations);
    if (a->starts_at_ms > 0)
        put_time(out, "startsAt", a->starts_at_ms);
    if (a->ends_at_ms > 0)
        put_time(out, "endsAt", a->ends_at_ms);
    vg_buf_puts(out, ",\"generatorURL\":");
    const char *g = a->generator_url ? a->generator_url : "";
    vg_buf_json_str(out, g, strlen(g));
    vg_buf_putc(out, '}');
}

static int send_batch(void *ctx, struct outbox_item *const *items, size_t n,
                      const atomic_bool *stop, struct vg_err *err)
{
    const struct am_target *t = ctx;
    struct vg_buf body;
    vg_buf_init(&body);
    vg_buf_putc(&body, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            vg_buf_putc(&body, ',');
        vg_buf_append(&body, items[i]->payload, items[i]->len);
    }
    vg_buf_putc(&body, ']');
    int rc;
    if (vg_buf_failed(&body)) {
        rc = vg_err_set(err, VG_ENOMEM, "out of memory building the request");
    } else {
        struct transport_http req = {
            .url = t->url, .content_type = "application/json", .body = body.p,
            .body_len = body.len, .timeout_ms = t->timeout_ms, .stop = stop,
        };
        rc = transport_http_post(&req, NULL, err);
    }
    vg_buf_free(&body);
    return rc;
}

struct build {
    struct alertmanagers *a;
    const struct route_delivery *d;
    struct kv *kv;
    _Atomic uint64_t *seq;
    struct history *hist;
    struct metric_family *sent, *errors, *dropped, *qlen;
    int64_t capacity;
};

static int add_target(void *ud, const char *url, int64_t timeout_ms, struct vg_err *err)
{
    struct build *b = ud;
    struct am_target *t = &b->a->t[b->a->n];
    for (size_t i = 0; i < b->a->n; i++)
        if (!strcmp(b->a->t[i].url, url))
            return 0; /* listed twice: one queue */
    if (!(t->url = vg_strdup(url)))
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    t->timeout_ms = timeout_ms;
    b->a->n++;
    char id[600];
    snprintf(id, sizeof id, "alertmanager/%s", url);
    struct outbox_opts o = {
        .id = id, .receiver = url, .integration = "alertmanager",
        .capacity = (size_t)b->capacity, .batch = ALERTMANAGER_BATCH,
        .initial_backoff_ms = b->d->initial_backoff_ms, .max_backoff_ms = b->d->max_backoff_ms,
        .max_attempts = (int)b->d->max_attempts, .send = send_batch, .ctx = t, .kv = b->kv,
        .seq = b->seq, .hist = b->hist, .sent = b->sent, .failed = b->errors,
        .dropped = b->dropped, .queue_len = b->qlen,
    };
    t->ob = outbox_new(&o, err);
    return t->ob ? 0 : err->code;
}

struct alertmanagers *alertmanagers_new(const struct config_node *alerting,
                                        const struct route_delivery *d, struct kv *kv,
                                        _Atomic uint64_t *seq, struct history *hist,
                                        struct metrics *m, struct vg_err *err)
{
    struct alertmanagers *a = vg_calloc(1, sizeof *a);
    if (!a || !(a->t = vg_calloc(MAX_TARGETS, sizeof *a->t))) {
        vg_free(a);
        return vg_err_set(err, VG_ENOMEM, "out of memory"), NULL;
    }
    static const char *const lab[] = { "alertmanager", "integration" };
    struct build b = { .a = a, .d = d, .kv = kv, .seq = seq, .hist = hist, .capacity = 10000 };
    if (m) {
        b.sent = metrics_family(m, "prometheus_notifications_sent_total",
                                "Alerts sent to each Alertmanager.", METRIC_COUNTER, lab, 1,
                                NULL, 0);
        b.errors = metrics_family(m, "prometheus_notifications_errors_total",
                                  "Failed POSTs to each Alertmanager.", METRIC_COUNTER, lab, 1,
                                  NULL, 0);
        b.dropped = metrics_family(m, "prometheus_notifications_dropped_total",
                                   "Alerts dropped (queue full or retries exhausted).",
                                   METRIC_COUNTER, lab, 1, NULL, 0);
        b.qlen = metrics_family(m, "prometheus_notifications_queue_length",
                                "Alerts waiting for each Alertmanager.", METRIC_GAUGE, lab, 1,
                                NULL, 0);
    }
    int rc = 0;
    if (alerting)
        rc = config_node_int(alerting, "alerting", "queue_capacity", 1, 10000000, &b.capacity,
                             err);
    if (rc == 0)
        rc = walk(alerting, add_target, &b, err);
    if (rc < 0) {
        alertmanagers_free(a);
        return NULL;
    }
    if (m)
        metric_set(metrics_family(m, "prometheus_notifications_alertmanagers_discovered",
                                  "Alertmanagers configured.", METRIC_GAUGE, NULL, 0, NULL, 0),
                   (double)a->n);
    return a;
}

void alertmanagers_free(struct alertmanagers *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++) {
        outbox_free(a->t[i].ob);
        vg_free(a->t[i].url);
    }
    vg_free(a->t);
    vg_free(a);
}

void alertmanagers_send(struct alertmanagers *a, const struct alert *alerts, size_t n,
                        int64_t now_ms)
{
    if (!a || !a->n)
        return;
    struct vg_buf b;
    vg_buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        vg_buf_reset(&b);
        alertmanager_alert_json(&alerts[i], &b);
        if (vg_buf_failed(&b))
            break;
        uint64_t fp = route_fingerprint(alerts[i].labels, alerts[i].nlabels);
        for (size_t k = 0; k < a->n; k++)
            if (a->t[k].ob)
                outbox_push(a->t[k].ob, b.p, b.len, "", &fp, 1, now_ms);
    }
    vg_buf_free(&b);
}

size_t alertmanagers_count(const struct alertmanagers *a)
{
    return a ? a->n : 0;
}

struct outbox *alertmanagers_outbox(struct alertmanagers *a, size_t i)
{
    return a->t[i].ob;
}
