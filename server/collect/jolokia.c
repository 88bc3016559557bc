/* jolokia: see jolokia.h. The decoder is a pure function over the response bytes (the
 * fuzz target tests/fuzz/jolokia_response.c calls it); the poller glues HTTP
 * (rules/transport.h), the decoder and the store. MBean names are split by hand
 * (ObjectName syntax: domain ':' key=value pairs separated by ',', a value optionally
 * quoted with '"' and backslash escapes, in which ',' and '=' may appear). */
#include "jolokia.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_buf.h"
#include "../../storage/base/vg_log.h"
#include "../ingest/ingest.h"
#include "../metrics.h"
#include "../rules/transport.h"
#include "poller.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define RECEIVER "jmx"
#define MAX_SAMPLES 100000
#define MAX_RESPONSE (32u << 20)
#define MAX_DEPTH 4           /* composite levels walked */
#define MAX_PROPS 16          /* key properties of one MBean name */
#define NAME_CAP 512          /* metric name bytes */

/* ---- configuration ---- */

static const char *const top_keys[] = { "targets", NULL };
static const char *const target_keys[] = { "name", "url", "interval", "timeout", "username",
                                           "password", "mbeans", NULL };
static const char *const mbean_keys[] = { "mbean", "attributes", "path", NULL };

static int dup_opt(const struct config_node *map, const char *where, const char *key,
                   char **out, struct vg_err *err)
{
    const char *s = NULL;
    int rc = config_node_str(map, where, key, &s, err);
    if (rc < 0 || !s)
        return rc;
    *out = vg_strdup(s);
    return *out ? 0 : vg_err_set(err, VG_ENOMEM, "%s.%s: out of memory", where, key);
}

static int parse_mbean(const struct config_node *m, const char *where, struct jolokia_mbean *out,
                       struct vg_err *err)
{
    int rc = config_node_check_keys(m, where, mbean_keys, err);
    if (rc < 0 || (rc = dup_opt(m, where, "mbean", &out->mbean, err)) < 0 ||
        (rc = dup_opt(m, where, "path", &out->path, err)) < 0)
        return rc;
    if (!out->mbean || !strchr(out->mbean, ':') || out->mbean[0] == ':' ||
        !strchr(out->mbean, ':')[1])
        return config_node_err(err, out->mbean ? config_node_get(m, "mbean") : m,
                               "%s.mbean: expected an MBean name or pattern "
                               "\"domain:key=value,...\"", where);
    const char **attrs = NULL;
    size_t n = 0;
    if ((rc = config_node_strlist(m, where, "attributes", &attrs, &n, err)) < 0)
        return rc;
    if (n) {
        out->attributes = vg_calloc(n, sizeof *out->attributes);
        for (size_t i = 0; out->attributes && i < n; i++)
            if ((out->attributes[out->nattributes] = vg_strdup(attrs[i])))
                out->nattributes++;
        if (out->nattributes != n)
            rc = vg_err_set(err, VG_ENOMEM, "%s: out of memory", where);
    }
    vg_free(attrs);
    if (rc == 0 && out->path && (strchr(out->mbean, '*') || strchr(out->mbean, '?')))
        return config_node_err(err, config_node_get(m, "path"), "%s.path: only for a single "
                               "MBean, not a pattern", where);
    if (rc == 0 && out->path && out->nattributes != 1)
        return config_node_err(err, config_node_get(m, "path"), "%s.path: needs exactly one "
                               "attribute (Jolokia applies a path to one attribute)", where);
    return rc;
}

/* The bulk read body: [{"type":"read","mbean":...,"attribute":[...],"path":...},...] */
static char *build_request(const struct jolokia_target *t)
{
    struct vg_buf b;
    vg_buf_init(&b);
    vg_buf_putc(&b, '[');
    for (size_t i = 0; i < t->nmbeans; i++) {
        const struct jolokia_mbean *m = &t->mbeans[i];
        vg_buf_puts(&b, i ? ",{\"type\":\"read\",\"mbean\":" : "{\"type\":\"read\",\"mbean\":");
        vg_buf_json_str(&b, m->mbean, strlen(m->mbean));
        if (m->path) { /* Jolokia applies a path to a single attribute only */
            vg_buf_puts(&b, ",\"attribute\":");
            vg_buf_json_str(&b, m->attributes[0], strlen(m->attributes[0]));
        } else if (m->nattributes) {
            vg_buf_puts(&b, ",\"attribute\":[");
            for (size_t k = 0; k < m->nattributes; k++) {
                if (k)
                    vg_buf_putc(&b, ',');
                vg_buf_json_str(&b, m->attributes[k], strlen(m->attributes[k]));
            }
            vg_buf_putc(&b, ']');
        }
        if (m->path) {
            vg_buf_puts(&b, ",\"path\":");
            vg_buf_json_str(&b, m->path, strlen(m->path));
        }
        vg_buf_putc(&b, '}');
    }
    vg_buf_putc(&b, ']');
    if (!vg_buf_cstr(&b)) {
        vg_buf_free(&b);
        return NULL;
    }
    return vg_buf_steal(&b, NULL);
}

static int parse_target(const struct config_node *t, const char *where,
                        struct jolokia_target *out, struct vg_err *err)
{
    int rc = config_node_check_keys(t, where, target_keys, err);
    if (rc < 0 || (rc = dup_opt(t, where, "name", &out->name, err)) < 0 ||
        (rc = dup_opt(t, where, "url", &out->url, err)) < 0 ||
        (rc = dup_opt(t, where, "username", &out->username, err)) < 0 ||
        (rc = dup_opt(t, where, "password", &out->password, err)) < 0)
        return rc;
    if (!out->name || !out->name[0])
        return config_node_err(err, t, "%s: name is required", where);
    if (!out->url ||
        (strncmp(out->url, "http://", 7) != 0 && strncmp(out->url, "https://", 8) != 0))
        return config_node_err(err, out->url ? config_node_get(t, "url") : t,
                               "%s.url: expected an http:// or https:// URL of the agent", where);
    if (out->password && !out->username)
        return config_node_err(err, config_node_get(t, "password"),
                               "%s.password: set username too", where);
    out->interval_ms = 30000;
    out->timeout_ms = 10000;
    if ((rc = config_node_duration(t, where, "interval", 100, &out->interval_ms, err)) < 0 ||
        (rc = config_node_duration(t, where, "timeout", 10, &out->timeout_ms, err)) < 0)
        return rc;
    const struct config_node *ms = config_node_get(t, "mbeans");
    if (!ms || ms->type != CONFIG_NODE_SEQ || !ms->n)
        return config_node_err(err, ms ? ms : t, "%s.mbeans: expected a non-empty list", where);
    if (!(out->mbeans = vg_calloc(ms->n, sizeof *out->mbeans)))
        return vg_err_set(err, VG_ENOMEM, "%s: out of memory", where);
    for (size_t i = 0; i < ms->n; i++) {
        char w[128];
        snprintf(w, sizeof w, "%s.mbeans[%zu]", where, i);
        if ((rc = parse_mbean(ms->items[i], w, &out->mbeans[out->nmbeans++], err)) < 0)
            return rc;
    }
    if (!(out->request = build_request(out)))
        return vg_err_set(err, VG_ENOMEM, "%s: out of memory", where);
    return 0;
}

int jolokia_config_parse(const struct config_node *block, struct jolokia_config **out,
                         struct vg_err *err)
{
    *out = NULL;
    struct jolokia_config *c = vg_calloc(1, sizeof *c);
    if (!c)
        return vg_err_set(err, VG_ENOMEM, "jmx: out of memory");
    int rc = 0;
    const struct config_node *ts = block ? config_node_get(block, "targets") : NULL;
    if (block && (rc = config_node_check_keys(block, "jmx", top_keys, err)) < 0)
        goto fail;
    if (ts && ts->type != CONFIG_NODE_SEQ) {
        rc = config_node_err(err, ts, "jmx.targets: expected a list");
        goto fail;
    }
    if (ts && ts->n) {
        if (!(c->targets = vg_calloc(ts->n, sizeof *c->targets))) {
            rc = vg_err_set(err, VG_ENOMEM, "jmx: out of memory");
            goto fail;
        }
        for (size_t i = 0; i < ts->n; i++) {
            char w[64];
            snprintf(w, sizeof w, "jmx.targets[%zu]", i);
            struct jolokia_target *t = &c->targets[c->ntargets++];
            if ((rc = parse_target(ts->items[i], w, t, err)) < 0)
                goto fail;
            for (size_t j = 0; j < i; j++)
                if (!strcmp(c->targets[j].name, t->name)) {
                    rc = config_node_err(err, ts->items[i], "%s.name: \"%s\" is used by "
                                         "jmx.targets[%zu] too", w, t->name, j);
                    goto fail;
                }
        }
    }
    *out = c;
    return 0;
fail:
    jolokia_config_free(c);
    return rc;
}

void jolokia_config_free(struct jolokia_config *c)
{
    if (!c)
        return;
    /* ntargets is 0 while targets is unallocated (c is calloc'd); testing the array too
     * keeps that visible to the analyser, which cannot see into vg_calloc. */
    for (size_t i = 0; c->targets && i < c->ntargets; i++) {
        struct jolokia_target *t = &c->targets[i];
        for (size_t j = 0; j < t->nmbeans; j++) {
            struct jolokia_mbean *m = &t->mbeans[j];
            for (size_t k = 0; k < m->nattributes; k++)
                vg_free(m->attributes[k]);
            vg_free(m->attributes);
            vg_free(m->mbean);
            vg_free(m->path);
        }
        vg_free(t->mbeans);
        vg_free(t->name);
        vg_free(t->url);
        vg_free(t->username);
        vg_free(t->password);
        vg_free(t->request);
    }
    vg_free(c->targets);
    vg_free(c);
}

/* ---- names ---- */

size_t jolokia_sanitize(const char *s, size_t len, bool label, char *out, size_t cap)
{
    size_t n = 0;
    if (!cap)
        return 0;
    if (len && s[0] >= '0' && s[0] <= '9')
        out[n++] = '_';
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || (c == ':' && !label);
        if (!ok)
            c = '_';
        if (c == '_' && n && out[n - 1] == '_')
            continue;
        if (n + 1 >= cap) {
            out[0] = '\0';
            return 0;
        }
        out[n++] = c;
    }
    out[n] = '\0';
    return n;
}

struct prop {
    struct vg_str key;
    char value[256];                /* unquoted */
};

/* Splits "domain:k=v,k2="quoted, value"" into domain and properties. A pattern's bare
 * "*" (as in "name=x,*") is not a property and is skipped. -1 when malformed. */
static int split_mbean(const char *s, size_t len, struct vg_str *domain, struct prop *props,
                       size_t *nprops)
{
    const char *colon = memchr(s, ':', len);
    if (!colon || colon == s)
        return -1;
    *domain = (struct vg_str){ s, (size_t)(colon - s) };
    *nprops = 0;
    const char *p = colon + 1, *end = s + len;
    while (p < end) {
        const char *eq = p;
        while (eq < end && *eq != '=' && *eq != ',')
            eq++;
        if (eq == end || *eq == ',') { /* "*" wildcard or junk without '=' */
            p = eq + 1;
            continue;
        }
        if (*nprops == MAX_PROPS)
            return -1;
        struct prop *pr = &props[(*nprops)++];
        pr->key = (struct vg_str){ p, (size_t)(eq - p) };
        const char *v = eq + 1;
        size_t n = 0;
        if (v < end && *v == '"') {
            for (v++; v < end && *v != '"'; v++) {
                if (*v == '\\' && v + 1 < end)
                    v++;
                if (n + 1 < sizeof pr->value)
                    pr->value[n++] = *v;
            }
            if (v == end)
                return -1;
            v++; /* closing quote */
        } else {
            for (; v < end && *v != ','; v++)
                if (n + 1 < sizeof pr->value)
                    pr->value[n++] = *v;
        }
        pr->value[n] = '\0';
        p = v < end && *v == ',' ? v + 1 : v;
    }
    return 0;
}

/* ---- decoding ---- */

struct decoder {
    jolokia_sample_fn fn;
    void *ud;
    struct jolokia_stats *st;
    bool stopped;
    struct label labels[MAX_PROPS];
    size_t nlabels;
    char lnames[MAX_PROPS][128];
};

/* Appends "_" + sanitised part to name (of length *len). false when it does not fit. */
static bool name_add(char *name, size_t *len, const char *part, size_t plen)
{
    char tmp[NAME_CAP];
    size_t n = jolokia_sanitize(part, plen, false, tmp, sizeof tmp);
    if (!n && plen)
        return false;
    if (!n)
        return true;
    if (*len + 1 + n + 1 > NAME_CAP)
        return false;
    if (*len && name[*len - 1] != '_' && tmp[0] != '_')
        name[(*len)++] = '_';
    else if (*len && name[*len - 1] == '_' && tmp[0] == '_')
        (*len)--;
    memcpy(name + *len, tmp, n + 1);
    *len += n;
    return true;
}

static void emit(struct decoder *d, char *name, size_t len, json_t *v, int depth)
{
    if (d->stopped)
        return;
    double x;
    if (json_is_integer(v))
        x = (double)json_integer_value(v);
    else if (json_is_real(v))
        x = json_real_value(v);
    else if (json_is_boolean(v))
        x = json_is_true(v) ? 1 : 0;
    else if (json_is_object(v) && depth < MAX_DEPTH) {
        const char *k;
        json_t *sub;
        json_object_foreach(v, k, sub) {
            size_t l = len;
            if (name_add(name, &l, k, strlen(k)))
                emit(d, name, l, sub, depth + 1);
            else
                d->st->skipped++;
            name[len] = '\0';
        }
        return;
    } else {
        d->st->skipped++;
        return;
    }
    if (!name[0]) {
        d->st->skipped++;
        return;
    }
    d->st->samples++;
    if (d->fn(d->ud, name, d->labels, d->nlabels, x))
        d->stopped = true;
}

/* The attributes (attr -> value) of one MBean. A request naming one attribute as a
 * string (what we send with a path) is answered with the bare value: it is wrapped as
 * {attr: value} unless it already is that (Jolokia's answer to a one-item list). */
static void decode_mbean(struct decoder *d, const char *mbean, size_t mlen, json_t *attrs,
                         const char *attr1, const char *path)
{
    if (attr1 && !(json_is_object(attrs) && json_object_size(attrs) == 1 &&
                   json_object_get(attrs, attr1))) {
        json_t *w = json_object();
        if (!w || json_object_set(w, attr1, attrs) < 0) {
            json_decref(w);
            d->st->skipped++;
            return;
        }
        decode_mbean(d, mbean, mlen, w, NULL, path);
        json_decref(w);
        return;
    }
    struct vg_str domain;
    struct prop props[MAX_PROPS];
    size_t np;
    if (split_mbean(mbean, mlen, &domain, props, &np) < 0 || !json_is_object(attrs)) {
        d->st->skipped++;
        return;
    }
    char name[NAME_CAP];
    size_t len = 0;
    name[0] = '\0';
    bool ok = name_add(name, &len, domain.p, domain.len);
    d->nlabels = 0;
    for (size_t i = 0; i < np && ok; i++) {
        if (vg_str_eq_c(props[i].key, "type")) {
            ok = name_add(name, &len, props[i].value, strlen(props[i].value));
            continue;
        }
        char *ln = d->lnames[d->nlabels];
        size_t lnl = jolokia_sanitize(props[i].key.p, props[i].key.len, true, ln,
                                      sizeof d->lnames[0]);
        if (!lnl || !strcmp(ln, "target")) /* target is the collector's own label */
            continue;
        d->labels[d->nlabels++] = (struct label){ { ln, lnl }, vg_str_c(props[i].value) };
    }
    /* a path "a/b" (escaped "\/" not split) names its levels after the attribute */
    char pathparts[NAME_CAP];
    size_t pl = 0;
    for (const char *c = path ? path : ""; *c && pl + 2 < sizeof pathparts; c++) {
        if (*c == '\\' && c[1])
            pathparts[pl++] = *++c;
        else
            pathparts[pl++] = *c == '/' ? '_' : *c;
    }
    pathparts[pl] = '\0';
    if (!ok) {
        d->st->skipped++;
        return;
    }
    const char *attr;
    json_t *v;
    json_object_foreach(attrs, attr, v) {
        size_t l = len;
        if (name_add(name, &l, attr, strlen(attr)) && name_add(name, &l, pathparts, pl))
            emit(d, name, l, v, 0);
        else
            d->st->skipped++;
        name[len] = '\0';
        if (d->stopped)
            return;
    }
}

static bool is_pattern(const char *mbean)
{
    return strchr(mbean, '*') || strchr(mbean, '?');
}

static void entry_error(struct jolokia_stats *st, json_t *e, const char *mbean)
{
    st->errors++;
    if (st->first_error[0])
        return;
    const char *msg = json_string_value(json_object_get(e, "error"));
    snprintf(st->first_error, sizeof st->first_error, "%s: %s (status %lld)",
             mbean ? mbean : "?", msg ? msg : "no error text",
             (long long)json_integer_value(json_object_get(e, "status")));
}

int jolokia_decode(const char *body, size_t len, jolokia_sample_fn fn, void *ud,
                   struct jolokia_stats *st, struct vg_err *err)
{
    memset(st, 0, sizeof *st);
    json_error_t je;
    json_t *root = json_loadb(body, len, 0, &je);
    if (!root)
        return vg_err_set(err, VG_EINVAL, "response is not JSON: %s at line %d column %d",
                          je.text, je.line, je.column);
    if (json_is_object(root)) { /* the whole request refused */
        json_t *a = json_array();
        if (!a || json_array_append_new(a, root) < 0) {
            json_decref(a);
            json_decref(root);
            return vg_err_set(err, VG_ENOMEM, "out of memory");
        }
        root = a;
    }
    if (!json_is_array(root)) {
        json_decref(root);
        return vg_err_set(err, VG_EINVAL, "response is not a JSON array of read results");
    }
    struct decoder d = { .fn = fn, .ud = ud, .st = st };
    size_t i;
    json_t *e;
    json_array_foreach(root, i, e) {
        if (!json_is_object(e)) {
            json_decref(root);
            return vg_err_set(err, VG_EINVAL, "response entry %zu is not an object", i);
        }
        st->entries++;
        json_t *req = json_object_get(e, "request");
        const char *mbean = json_string_value(json_object_get(req, "mbean"));
        const char *path = json_string_value(json_object_get(req, "path"));
        const char *attr1 = json_string_value(json_object_get(req, "attribute"));
        json_t *status = json_object_get(e, "status");
        if (!json_is_integer(status) || json_integer_value(status) != 200 || !mbean) {
            entry_error(st, e, mbean);
            continue;
        }
        json_t *value = json_object_get(e, "value");
        if (!is_pattern(mbean)) {
            decode_mbean(&d, mbean, strlen(mbean), value, attr1, path);
        } else if (json_is_object(value)) {
            const char *name;
            json_t *attrs;
            json_object_foreach(value, name, attrs) {
                decode_mbean(&d, name, strlen(name), attrs, attr1, path);
                if (d.stopped)
                    break;
            }
        } else {
            st->skipped++;
        }
        if (d.stopped)
            break;
    }
    json_decref(root);
    return 0;
}

/* ---- polling ---- */

struct jmx_state;

struct target_state {
    struct jmx_state *st;
    const struct jolokia_target *t;
    struct poller *poller;
    struct poller_health health;
    struct vg_complaint complaint;
    char *userpwd;
};

struct jmx_state {
    struct vigil *v;
    struct jolokia_config *cfg;
    struct target_state *ts;
    size_t nts;
    struct metric_family *m_polls, *m_errors;
};

struct sink {
    struct target_state *ts;
    struct poller_samples *s;
    bool full, oom;
};

static void count_err(struct target_state *ts, const char *reason, const char *why)
{
    metric_add(ts->st->m_errors, 1, ts->t->name, reason);
    if (why) {
        char msg[600];
        snprintf(msg, sizeof msg, "target %s (%s): %s", ts->t->name, ts->t->url, why);
        vg_complain(&ts->complaint, 60000, VG_LOG_WARN, "jmx", "poll failed", msg);
    }
}

static int on_sample(void *ud, const char *name, const struct label *ls, size_t nl, double v)
{
    struct sink *k = ud;
    struct label all[MAX_PROPS + 1];
    memcpy(all, ls, nl * sizeof *ls);
    all[nl] = (struct label){ VG_STR("target"), vg_str_c(k->ts->t->name) };
    int rc = poller_samples_add(k->s, name, all, nl + 1, v);
    if (rc == VG_ETOOLARGE)
        k->full = true;
    else if (rc < 0)
        k->oom = true;
    return rc < 0;
}


static void poll_target(void *ctx, const atomic_bool *stop)
{
    struct target_state *ts = ctx;
    const struct jolokia_target *t = ts->t;
    double t0 = poller_mono_s();
    metric_add(ts->st->m_polls, 1, t->name);
    struct poller_samples s;
    if (poller_samples_init(&s, poller_wall_ms(), MAX_SAMPLES) < 0) {
        count_err(ts, "store", "out of memory");
        poller_health_set(&ts->health, poller_wall_ms(), poller_mono_s() - t0, false,
                          "out of memory");
        return;
    }
    struct vg_buf body;
    vg_buf_init(&body);
    struct transport_http req = {
        .url = t->url, .content_type = "application/json", .body = t->request,
        .body_len = strlen(t->request), .timeout_ms = t->timeout_ms, .stop = stop,
        .response = &body, .max_response = MAX_RESPONSE, .userpwd = ts->userpwd,
    };
    struct vg_err err = { 0 };
    long status;
    bool up = false;
    char why[256] = ""; /* why the poll failed, for /api/v1/targets */
    if (transport_http_post(&req, &status, &err) < 0) {
        count_err(ts, "http", err.msg);
        snprintf(why, sizeof why, "%.255s", err.msg);
    } else if (vg_buf_failed(&body)) {
        count_err(ts, "http", "out of memory for the response");
        snprintf(why, sizeof why, "out of memory for the response");
    } else {
        struct sink k = { .ts = ts, .s = &s };
        struct jolokia_stats js;
        if (jolokia_decode(body.p ? body.p : "", body.len, on_sample, &k, &js, &err) < 0) {
            count_err(ts, "decode", err.msg);
            snprintf(why, sizeof why, "%.255s", err.msg);
        } else {
            up = true;
            if (js.errors) {
                metric_add(ts->st->m_errors, (double)js.errors - 1, t->name, "mbean");
                count_err(ts, "mbean", js.first_error);
            }
            if (k.full)
                count_err(ts, "too_many_samples", "more samples than one poll may store");
            if (k.oom)
                count_err(ts, "store", "out of memory");
        }
    }
    vg_buf_free(&body);
    poller_samples_health(&s, "jmx", "target", t->name, "Jolokia target", up, t0);
    if (poller_samples_store(ts->st->v, RECEIVER, &s, NULL, &err) < 0) {
        count_err(ts, "store", err.msg);
        up = false;
        snprintf(why, sizeof why, "%.255s", err.msg);
    }
    poller_health_set(&ts->health, s.t, poller_mono_s() - t0, up, why);
    poller_samples_free(&s);
}

/* ---- the module ---- */

static int jmx_check(const struct config *cfg, struct vg_err *err)
{
    struct jolokia_config *c;
    int rc = jolokia_config_parse(config_block(cfg, "jmx"), &c, err);
    jolokia_config_free(c);
    return rc;
}

static void jmx_free(struct vigil *v)
{
    struct jmx_state *st = v->jmx_state;
    if (!st)
        return;
    for (size_t i = 0; i < st->nts; i++) {
        poller_stop(st->ts[i].poller);
        poller_health_destroy(&st->ts[i].health);
        vg_free(st->ts[i].userpwd);
    }
    vg_free(st->ts);
    jolokia_config_free(st->cfg);
    vg_free(st);
    v->jmx_state = NULL;
}

static int jmx_init(struct vigil *v, struct vg_err *err)
{
    struct jolokia_config *c;
    int rc = jolokia_config_parse(config_block(v->cfg, "jmx"), &c, err);
    if (rc < 0)
        return rc;
    if (!c->ntargets) {
        jolokia_config_free(c);
        return 0;
    }
    struct jmx_state *st = vg_calloc(1, sizeof *st);
    if (!st || !(st->ts = vg_calloc(c->ntargets, sizeof *st->ts))) {
        vg_free(st);
        jolokia_config_free(c);
        return vg_err_set(err, VG_ENOMEM, "jmx: out of memory");
    }
    st->v = v;
    st->cfg = c;
    v->jmx_state = st;
    static const char *const tl[] = { "target" };
    static const char *const tr[] = { "target", "reason" };
    st->m_polls = metrics_family(v->metrics, "vigil_jmx_polls_total",
                                 "Jolokia polls started, by target.", METRIC_COUNTER, tl, 1,
                                 NULL, 0);
    st->m_errors = metrics_family(v->metrics, "vigil_jmx_errors_total",
                                  "Jolokia poll errors, by target and reason.", METRIC_COUNTER,
                                  tr, 2, NULL, 0);
    for (size_t i = 0; i < c->ntargets; i++) {
        struct target_state *ts = &st->ts[st->nts++];
        ts->st = st;
        ts->t = &c->targets[i];
        poller_health_init(&ts->health);
        if (ts->t->username) {
            size_t n = strlen(ts->t->username) + strlen(ts->t->password ? ts->t->password : "");
            if (!(ts->userpwd = vg_malloc(n + 2))) {
                jmx_free(v);
                return vg_err_set(err, VG_ENOMEM, "jmx: out of memory");
            }
            snprintf(ts->userpwd, n + 2, "%s:%s", ts->t->username,
                     ts->t->password ? ts->t->password : "");
        }
        char name[32];
        snprintf(name, sizeof name, "jmx:%s", ts->t->name);
        ts->poller = poller_start(name, ts->t->interval_ms,
                                  poller_offset(ts->t->name, ts->t->interval_ms), poll_target, ts,
                                  err);
        if (!ts->poller) {
            jmx_free(v);
            return err->code;
        }
    }
    char nt[24];
    snprintf(nt, sizeof nt, "%zu", c->ntargets);
    vg_log(VG_LOG_INFO, "jmx", "polling", "targets", nt, NULL);
    return 0;
}

void jolokia_sync(struct vigil *v)
{
    struct jmx_state *st = v->jmx_state;
    for (size_t i = 0; st && i < st->nts; i++)
        poller_sync(st->ts[i].poller);
}

void jolokia_each_target(struct vigil *v,
                         void (*fn)(void *ctx, const struct scrape_target_status *st), void *ctx)
{
    struct jmx_state *st = v->jmx_state;
    for (size_t i = 0; st && i < st->nts; i++) {
        const struct jolokia_target *t = st->ts[i].t;
        struct poller_target pt = {
            .pool = "jmx", .address = t->url, .url = t->url,
            .label = { VG_STR("target"), vg_str_c(t->name) },
            .interval_ms = t->interval_ms, .timeout_ms = t->timeout_ms,
        };
        poller_health_report(&st->ts[i].health, &pt, fn, ctx);
    }
}

const struct vigil_module mod_jmx = {
    .name = "jmx",
    .check = jmx_check,
    .init = jmx_init,
    .free = jmx_free,
};
