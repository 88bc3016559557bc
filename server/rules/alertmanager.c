/* alertmanager: see alertmanager.h. */
#include "alertmanager.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_log.h"
#include "../config_node.h"
#include "../labels_json.h"
#include "../metrics.h"
#include "../scrape/relabel.h"
#include "outbox.h"
#include "transport.h"
#include "webhook.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MAX_TARGETS 64
#define MAX_SECRET 4096

/* One alerting.alertmanagers[] entry: what its targets share. Strings are vg_malloc'd. */
struct am_conf {
    int64_t timeout_ms;
    char *user, *password, *password_file;         /* basic_auth */
    char *auth_type, *credentials, *credentials_file; /* authorization or bearer_token */
    struct tls_config tls;                         /* tls_config */
    struct relabel_rules relabel;                  /* alert_relabel_configs */
};

struct am_target {
    char *url;
    const struct am_conf *conf;
    struct outbox *ob;
};

struct alertmanagers {
    struct am_target *t;
    size_t n;
    struct am_conf *conf;
    size_t nconf;
    struct relabel_rules relabel;  /* alerting.alert_relabel_configs, before the per-entry ones */
};

static const char *const am_keys[] = { "static_configs", "scheme", "path_prefix", "timeout",
                                       "api_version", "basic_auth", "authorization",
                                       "bearer_token", "bearer_token_file", "tls_config",
                                       "alert_relabel_configs", NULL };

static void conf_free(struct am_conf *c)
{
    char *strs[] = { c->user, c->password, c->password_file, c->auth_type, c->credentials,
                     c->credentials_file };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        vg_free(strs[i]);
    tls_config_free(&c->tls);
    relabel_rules_free(&c->relabel);
    memset(c, 0, sizeof *c);
}

/* Copies map[key] (a string, when present) into *out. */
/* Prometheus's secret files: the content with surrounding white space removed. */
static int read_secret(const char *path, char *out, size_t cap, struct vg_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return vg_err_set(err, VG_EIO, "cannot read \"%s\": %s", path, strerror(errno));
    size_t n = fread(out, 1, cap - 1, f);
    bool more = fgetc(f) != EOF;
    (void)fclose(f); /* opened for reading only */
    if (more)
        return vg_err_set(err, VG_ETOOLARGE, "\"%s\": secret over %zu bytes", path, cap - 1);
    out[n] = '\0';
    size_t a = 0;
    while (a < n && strchr(" \t\r\n", out[a]))
        a++;
    while (n > a && strchr(" \t\r\n", out[n - 1]))
        n--;
    memmove(out, out + a, n - a);
    out[n - a] = '\0';
    return 0;
}

/* A secret given inline (key) or in a file (file_key), not both. */
static int parse_secret(const struct config_node *map, const char *where, const char *key,
                        const char *file_key, char **val, char **file, struct vg_err *err)
{
    int rc;
    if ((rc = config_node_strdup(map, where, key, val, err)) < 0 ||
        (rc = config_node_file(map, where, file_key, file, err)) < 0)
        return rc;
    if (*val && *file)
        return config_node_err(err, map, "%s: at most one of %s and %s may be set", where, key,
                               file_key);
    return 0;
}

/* basic_auth, authorization, bearer_token(_file) as Prometheus's HTTP client config:
 * at most one of them; a password or credential inline or from a file, not both. */
static int parse_auth(const struct config_node *am, const char *w, struct am_conf *c,
                      struct vg_err *err)
{
    char sub[160];
    int rc;
    const struct config_node *ba = config_node_get(am, "basic_auth");
    const struct config_node *az = config_node_get(am, "authorization");
    bool bearer = config_node_get(am, "bearer_token") || config_node_get(am, "bearer_token_file");
    if ((ba != NULL) + (az != NULL) + bearer > 1)
        return config_node_err(err, ba ? ba : az, "%s: at most one of basic_auth, authorization "
                               "and bearer_token(_file) may be set", w);
    if (ba) {
        static const char *const keys[] = { "username", "password", "password_file", NULL };
        snprintf(sub, sizeof sub, "%s.basic_auth", w);
        if ((rc = config_node_check_keys(ba, sub, keys, err)) < 0 ||
            (rc = config_node_strdup(ba, sub, "username", &c->user, err)) < 0 ||
            (rc = parse_secret(ba, sub, "password", "password_file", &c->password,
                               &c->password_file, err)) < 0)
            return rc;
        if (!c->user || !*c->user)
            return config_node_err(err, ba, "%s.username: required", sub);
        return 0;
    }
    if (bearer) {
        if ((rc = parse_secret(am, w, "bearer_token", "bearer_token_file", &c->credentials,
                               &c->credentials_file, err)) < 0)
            return rc;
    } else if (az) {
        static const char *const keys[] = { "type", "credentials", "credentials_file", NULL };
        snprintf(sub, sizeof sub, "%s.authorization", w);
        if ((rc = config_node_check_keys(az, sub, keys, err)) < 0 ||
            (rc = config_node_strdup(az, sub, "type", &c->auth_type, err)) < 0 ||
            (rc = parse_secret(az, sub, "credentials", "credentials_file", &c->credentials,
                               &c->credentials_file, err)) < 0)
            return rc;
        const struct config_node *tn = config_node_get(az, "type");
        if (c->auth_type && !strcasecmp(c->auth_type, "basic"))
            return config_node_err(err, tn, "%s.type: \"Basic\" is not allowed here, use "
                                   "basic_auth", sub);
        if (c->auth_type && (!*c->auth_type || strpbrk(c->auth_type, " \t\r\n")))
            return config_node_err(err, tn, "%s.type: \"%s\" is not one word", sub,
                                   c->auth_type);
    } else {
        return 0;
    }
    if (!c->auth_type && !(c->auth_type = vg_strdup("Bearer")))
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    return 0;
}

/* Validates alerting.alertmanagers[] and fills a->conf (one per entry, a->conf holding
 * room for all) and a->relabel; for each target calls add (when not NULL) with its URL. */
typedef int (*target_fn)(void *ud, const char *url, const struct am_conf *c, struct vg_err *err);

static int walk(const struct config_node *sec, struct alertmanagers *a, target_fn fn, void *ud,
                struct vg_err *err)
{
    static const char *const keys[] = { "alertmanagers", "queue_capacity",
                                        "alert_relabel_configs", NULL };
    int rc;
    if (!sec)
        return 0;
    int64_t cap = 10000;
    if ((rc = config_node_check_keys(sec, "alerting", keys, err)) < 0 ||
        (rc = config_node_int(sec, "alerting", "queue_capacity", 1, 10000000, &cap, err)) < 0 ||
        (rc = relabel_parse(config_node_get(sec, "alert_relabel_configs"),
                            "alerting.alert_relabel_configs", &a->relabel, err)) < 0)
        return rc;
    const struct config_node *ams = config_node_get(sec, "alertmanagers");
    if (!ams)
        return 0;
    if (ams->type != CONFIG_NODE_SEQ)
        return config_node_err(err, ams, "alerting.alertmanagers: expected a list");
    if (ams->n && !(a->conf = vg_calloc(ams->n, sizeof *a->conf)))
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    size_t total = 0;
    for (size_t i = 0; i < ams->n; i++) {
        const struct config_node *am = ams->items[i];
        struct am_conf *c = &a->conf[a->nconf++];
        char w[64], rw[96];
        snprintf(w, sizeof w, "alerting.alertmanagers[%zu]", i);
        snprintf(rw, sizeof rw, "%s.alert_relabel_configs", w);
        const char *scheme = "http", *prefix = "/", *api = "v2";
        c->timeout_ms = 10000;
        if ((rc = config_node_check_keys(am, w, am_keys, err)) < 0 ||
            (rc = config_node_str(am, w, "scheme", &scheme, err)) < 0 ||
            (rc = config_node_str(am, w, "path_prefix", &prefix, err)) < 0 ||
            (rc = config_node_str(am, w, "api_version", &api, err)) < 0 ||
            (rc = config_node_duration(am, w, "timeout", 1, &c->timeout_ms, err)) < 0 ||
            (rc = parse_auth(am, w, c, err)) < 0 || (rc = tls_config_parse(am, w, NULL, &c->tls, err)) < 0 ||
            (rc = relabel_parse(config_node_get(am, "alert_relabel_configs"), rw, &c->relabel,
                                err)) < 0)
            return rc;
        if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
            return config_node_err(err, config_node_get(am, "scheme"),
                                   "%s.scheme: \"%s\" is not http or https", w, scheme);
        if (!strcmp(api, "v1"))
            return config_node_err(err, config_node_get(am, "api_version"),
                                   "%s.api_version: \"v1\" is not supported (only v2: "
                                   "Alertmanager 0.27 removed the v1 API)", w);
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
                    rc = fn(ud, url, c, err);
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
    struct alertmanagers a = { 0 };
    int rc = walk(alerting, &a, NULL, NULL, err);
    for (size_t i = 0; i < a.nconf; i++)
        conf_free(&a.conf[i]);
    vg_free(a.conf);
    relabel_rules_free(&a.relabel);
    return rc;
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

/* The Authorization header or basic-auth pair for c, secrets read from their files now
 * (as Prometheus does per request). *hdr / *userpwd stay "" when c has no auth. */
static int auth_for(const struct am_conf *c, char *hdr, size_t hcap, char *userpwd,
                    size_t ucap, struct vg_err *err)
{
    char secret[MAX_SECRET];
    hdr[0] = userpwd[0] = '\0';
    const char *file = c->user ? c->password_file : c->credentials_file;
    const char *inline_secret = c->user ? c->password : c->credentials;
    if (!c->user && !c->auth_type)
        return 0;
    if (file) {
        int rc = read_secret(file, secret, sizeof secret, err);
        if (rc < 0)
            return rc;
    } else {
        snprintf(secret, sizeof secret, "%s", inline_secret ? inline_secret : "");
    }
    if (c->user)
        snprintf(userpwd, ucap, "%s:%s", c->user, secret);
    else
        snprintf(hdr, hcap, "Authorization: %s %s", c->auth_type, secret);
    return 0;
}

static int send_batch(void *ctx, struct outbox_item *const *items, size_t n,
                      const atomic_bool *stop, struct vg_err *err)
{
    const struct am_target *t = ctx;
    char hdr[MAX_SECRET + 64], userpwd[2 * MAX_SECRET];
    int rc = auth_for(t->conf, hdr, sizeof hdr, userpwd, sizeof userpwd, err);
    if (rc < 0)
        return vg_err_prefix(err, "POST %s", t->url), rc;
    struct vg_buf body;
    vg_buf_init(&body);
    vg_buf_putc(&body, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            vg_buf_putc(&body, ',');
        vg_buf_append(&body, items[i]->payload, items[i]->len);
    }
    vg_buf_putc(&body, ']');
    if (vg_buf_failed(&body)) {
        rc = vg_err_set(err, VG_ENOMEM, "out of memory building the request");
    } else {
        const char *hdrs[1] = { hdr };
        struct transport_http req = {
            .url = t->url, .content_type = "application/json", .body = body.p,
            .body_len = body.len, .timeout_ms = t->conf->timeout_ms, .stop = stop,
            .userpwd = userpwd, .headers = hdrs, .nheaders = hdr[0] ? 1 : 0,
            .tls = &t->conf->tls,
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

static int add_target(void *ud, const char *url, const struct am_conf *c, struct vg_err *err)
{
    struct build *b = ud;
    struct am_target *t = &b->a->t[b->a->n];
    for (size_t i = 0; i < b->a->n; i++)
        if (!strcmp(b->a->t[i].url, url))
            return 0; /* listed twice: one queue (the first entry's settings) */
    if (!(t->url = vg_strdup(url)))
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    t->conf = c;
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
        rc = walk(alerting, a, add_target, &b, err);
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
    for (size_t i = 0; i < a->nconf; i++)
        conf_free(&a->conf[i]);
    vg_free(a->conf);
    relabel_rules_free(&a->relabel);
    vg_free(a->t);
    vg_free(a);
}

/* Copies from into a fresh set in to's arena and applies r. 1 kept, 0 dropped, VG_ENOMEM. */
static int relabelled(const struct relabel_set *from, const struct relabel_rules *r,
                      struct relabel_set *to, struct vg_arena *arena)
{
    relabel_set_init(to, arena);
    for (size_t i = 0; i < from->n; i++)
        if (relabel_set_put(to, from->v[i].name, from->v[i].value) < 0)
            return VG_ENOMEM;
    int keep = r->n ? relabel_apply(r, to) : 1;
    if (keep == 1)
        relabel_set_sort(to);
    return keep;
}

/* Renders a with labels ls and queues it for every target of conf c. */
static void push_for_conf(struct alertmanagers *a, const struct am_conf *c,
                          const struct alert *al, const struct relabel_set *ls,
                          struct vg_buf *b, int64_t now_ms)
{
    struct alert x = *al;
    x.labels = ls->v;
    x.nlabels = ls->n;
    vg_buf_reset(b);
    alertmanager_alert_json(&x, b);
    if (vg_buf_failed(b))
        return;
    uint64_t fp = route_fingerprint(x.labels, x.nlabels);
    for (size_t k = 0; k < a->n; k++)
        if (a->t[k].ob && a->t[k].conf == c)
            outbox_push(a->t[k].ob, b->p, b->len, "", &fp, 1, now_ms);
}

void alertmanagers_send(struct alertmanagers *a, const struct alert *alerts, size_t n,
                        int64_t now_ms)
{
    if (!a || !a->n)
        return;
    struct vg_arena *arena = vg_arena_new(4096);
    if (!arena) {
        vg_log(VG_LOG_ERROR, "alertmanager", "out of memory relabelling alerts", NULL);
        return;
    }
    struct vg_buf b;
    vg_buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        vg_arena_reset(arena);
        struct relabel_set orig = { (struct label *)alerts[i].labels, alerts[i].nlabels,
                                    alerts[i].nlabels, arena };
        struct relabel_set all, per;
        int keep = relabelled(&orig, &a->relabel, &all, arena);
        for (size_t c = 0; c < a->nconf && keep == 1; c++) {
            int k = relabelled(&all, &a->conf[c].relabel, &per, arena);
            if (k == 1)
                push_for_conf(a, &a->conf[c], &alerts[i], &per, &b, now_ms);
            else if (k < 0)
                keep = k;
        }
        if (keep < 0)
            vg_log(VG_LOG_ERROR, "alertmanager", "out of memory relabelling an alert", NULL);
    }
    vg_buf_free(&b);
    vg_arena_free(arena);
}

size_t alertmanagers_count(const struct alertmanagers *a)
{
    return a ? a->n : 0;
}

struct outbox *alertmanagers_outbox(struct alertmanagers *a, size_t i)
{
    return a->t[i].ob;
}
