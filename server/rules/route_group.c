/* route_group: the dispatcher of route.h (aggregation groups, their timers, escalation,
 * the notification log), following Alertmanager's dispatch and notify pipeline:
 *
 *  - an alert goes to every route route_match returns; per route it joins the group
 *    keyed by the route and the values of its group_by labels;
 *  - a new group flushes first after group_wait, then every group_interval;
 *  - at a flush, silenced (muted callback) and inhibited alerts are left out; the group
 *    notifies when a firing alert is new since its last notification, when an alert it
 *    last notified as firing has resolved, or when repeat_interval has passed since the
 *    last notification while something still fires (Alertmanager's needsUpdate);
 *  - escalation (route.escalate) is checked on every tick: the firing, unmuted alerts
 *    active longer than `after` go to the escalation receiver once, and again whenever
 *    the set grows or repeat_interval passes.
 *
 * Fingerprint sets are kept sorted so subset tests are merges. */
#include "route.h"

#include "../../storage/base/vg_alloc.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* An owned copy of an alert: labels, annotations and strings in one block. */
struct galert {
    struct alert a;
    uint64_t fp;
    void *mem;
};

struct fpset {
    uint64_t *v;
    size_t n;
};

struct group {
    const struct route_node *route;
    char *key;
    struct label *glabels;
    size_t nglabels;
    void *gmem;
    struct galert *alerts;
    size_t n, cap;
    int64_t next_flush_ms;
    struct fpset sent;        /* firing at the last notification */
    int64_t sent_ms;          /* 0 = never notified */
    struct fpset esc;         /* escalated at the last escalation */
    int64_t esc_ms;
};

struct nflog {
    char *key;
    struct fpset sent, esc;
    int64_t sent_ms, esc_ms;
};

struct route_dispatcher {
    const struct route_config *cfg;
    size_t max_alerts, nalerts;
    struct group **groups;
    size_t ngroups, cap;
    struct nflog *log;        /* imported entries not yet claimed by a group */
    size_t nlog;
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static bool fpset_has(const struct fpset *s, uint64_t fp)
{
    return s->n && bsearch(&fp, s->v, s->n, sizeof fp, cmp_u64) != NULL;
}

/* Whether every element of sorted a is in sorted b. */
static bool fp_subset(const uint64_t *a, size_t na, const struct fpset *b)
{
    for (size_t i = 0; i < na; i++)
        if (!fpset_has(b, a[i]))
            return false;
    return true;
}

/* Replaces s with a sorted copy of v (false when out of memory, s unchanged). */
static bool fpset_assign(struct fpset *s, const uint64_t *v, size_t n)
{
    uint64_t *c = NULL;
    if (n && !(c = vg_malloc(n * sizeof *c)))
        return false;
    if (n) {
        memcpy(c, v, n * sizeof *c);
        qsort(c, n, sizeof *c, cmp_u64);
    }
    vg_free(s->v);
    s->v = c;
    s->n = n;
    return true;
}

/* ---- alert copies ---- */

static size_t labels_bytes(const struct label *ls, size_t n)
{
    size_t b = n * sizeof *ls;
    for (size_t i = 0; i < n; i++)
        b += ls[i].name.len + ls[i].value.len;
    return b;
}

static char *copy_labels(struct label *dst, const struct label *src, size_t n, char *p)
{
    for (size_t i = 0; i < n; i++) {
        if (src[i].name.len)
            memcpy(p, src[i].name.p, src[i].name.len);
        dst[i].name = (struct vg_str){ p, src[i].name.len };
        p += src[i].name.len;
        if (src[i].value.len)
            memcpy(p, src[i].value.p, src[i].value.len);
        dst[i].value = (struct vg_str){ p, src[i].value.len };
        p += src[i].value.len;
    }
    return p;
}

static bool galert_init(struct galert *g, const struct alert *a)
{
    const char *url = a->generator_url ? a->generator_url : "";
    size_t ulen = strlen(url);
    size_t sz = labels_bytes(a->labels, a->nlabels) +
                labels_bytes(a->annotations, a->nannotations) + ulen + 1;
    char *mem = vg_malloc(sz);
    if (!mem)
        return false;
    struct label *ls = (struct label *)mem;
    struct label *as = ls + a->nlabels;
    char *p = (char *)(as + a->nannotations);
    p = copy_labels(ls, a->labels, a->nlabels, p);
    p = copy_labels(as, a->annotations, a->nannotations, p);
    memcpy(p, url, ulen + 1);
    g->mem = mem;
    g->a = *a;
    g->a.labels = ls;
    g->a.annotations = as;
    g->a.generator_url = p;
    g->fp = route_fingerprint(a->labels, a->nlabels);
    return true;
}

/* ---- groups ---- */

static void group_free(struct group *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n; i++)
        vg_free(g->alerts[i].mem);
    vg_free(g->alerts);
    vg_free(g->key);
    vg_free(g->gmem);
    vg_free(g->sent.v);
    vg_free(g->esc.v);
    vg_free(g);
}

struct route_dispatcher *route_dispatcher_new(const struct route_config *cfg,
                                              size_t max_alerts)
{
    struct route_dispatcher *d = vg_calloc(1, sizeof *d);
    if (d) {
        d->cfg = cfg;
        d->max_alerts = max_alerts;
    }
    return d;
}

static void nflog_free(struct nflog *e)
{
    vg_free(e->key);
    vg_free(e->sent.v);
    vg_free(e->esc.v);
}

void route_dispatcher_free(struct route_dispatcher *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->ngroups; i++)
        group_free(d->groups[i]);
    vg_free(d->groups);
    for (size_t i = 0; i < d->nlog; i++)
        nflog_free(&d->log[i]);
    vg_free(d->log);
    vg_free(d);
}

size_t route_dispatcher_groups(const struct route_dispatcher *d)
{
    return d->ngroups;
}

size_t route_dispatcher_alerts(const struct route_dispatcher *d)
{
    return d->nalerts;
}

/* The group labels of an alert on route r, sorted, pointing into the alert's labels. */
static size_t group_labels(const struct route_node *r, const struct alert *a, struct label *out)
{
    if (r->group_by_all) {
        if (a->nlabels)
            memcpy(out, a->labels, a->nlabels * sizeof *out);
        return a->nlabels;
    }
    size_t n = 0;
    for (size_t i = 0; i < r->ngroup_by; i++) {
        struct vg_str v = labels_get(a->labels, a->nlabels, r->group_by[i]);
        if (v.p)
            out[n++] = (struct label){ vg_str_c(r->group_by[i]), v };
    }
    labels_sort(out, n);
    return n;
}

static void group_key(struct vg_buf *b, const struct route_node *r, const struct label *gl,
                      size_t n)
{
    vg_buf_printf(b, "%s:{", r->id);
    for (size_t i = 0; i < n; i++) {
        if (i)
            vg_buf_putc(b, ',');
        vg_buf_append(b, gl[i].name.p, gl[i].name.len);
        vg_buf_putc(b, '=');
        vg_buf_json_str(b, gl[i].value.p, gl[i].value.len);
    }
    vg_buf_putc(b, '}');
}

static void claim_nflog(struct route_dispatcher *d, struct group *g)
{
    for (size_t i = 0; i < d->nlog; i++) {
        if (strcmp(d->log[i].key, g->key) != 0)
            continue;
        struct nflog *e = &d->log[i];
        g->sent = e->sent;
        g->esc = e->esc;
        g->sent_ms = e->sent_ms;
        g->esc_ms = e->esc_ms;
        vg_free(e->key);
        d->log[i] = d->log[--d->nlog];
        return;
    }
}

static struct group *group_get(struct route_dispatcher *d, const struct route_node *r,
                               const struct alert *a, int64_t now)
{
    struct label *gl = vg_malloc((a->nlabels + 1) * sizeof *gl);
    struct vg_buf key;
    vg_buf_init(&key);
    if (!gl)
        return NULL;
    size_t ngl = group_labels(r, a, gl);
    group_key(&key, r, gl, ngl);
    struct group *g = NULL;
    if (!vg_buf_cstr(&key))
        goto out;
    for (size_t i = 0; i < d->ngroups && !g; i++)
        if (d->groups[i]->route == r && !strcmp(d->groups[i]->key, key.p))
            g = d->groups[i];
    if (g)
        goto out;
    if (d->ngroups == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 16;
        struct group **ng = vg_realloc(d->groups, nc * sizeof *ng);
        if (!ng)
            goto out;
        d->groups = ng;
        d->cap = nc;
    }
    g = vg_calloc(1, sizeof *g);
    size_t gsz = labels_bytes(gl, ngl);
    if (!g || !(g->gmem = vg_malloc(gsz ? gsz : 1))) {
        group_free(g);
        g = NULL;
        goto out;
    }
    g->glabels = g->gmem;
    g->nglabels = ngl;
    copy_labels(g->glabels, gl, ngl, (char *)(g->glabels + ngl));
    g->route = r;
    g->key = vg_buf_steal(&key, NULL);
    g->next_flush_ms = now + r->group_wait_ms;
    claim_nflog(d, g);
    d->groups[d->ngroups++] = g;
out:
    vg_free(gl);
    vg_buf_free(&key);
    return g;
}

/* Upserts a copy of a into g; false when refused (bound or memory). */
static bool group_put(struct route_dispatcher *d, struct group *g, const struct alert *a)
{
    uint64_t fp = route_fingerprint(a->labels, a->nlabels);
    struct galert c;
    for (size_t i = 0; i < g->n; i++) {
        if (g->alerts[i].fp != fp)
            continue;
        if (!galert_init(&c, a))
            return false;
        vg_free(g->alerts[i].mem);
        g->alerts[i] = c;
        return true;
    }
    if (d->nalerts >= d->max_alerts)
        return false;
    if (g->n == g->cap) {
        size_t nc = g->cap ? g->cap * 2 : 8;
        struct galert *na = vg_realloc(g->alerts, nc * sizeof *na);
        if (!na)
            return false;
        g->alerts = na;
        g->cap = nc;
    }
    if (!galert_init(&g->alerts[g->n], a))
        return false;
    g->n++;
    d->nalerts++;
    return true;
}

size_t route_dispatcher_add(struct route_dispatcher *d, const struct alert *alerts,
                            size_t n, int64_t now_ms)
{
    size_t refused = 0;
    const struct route_node *routes[32];
    for (size_t i = 0; i < n; i++) {
        size_t nr = route_match(d->cfg, alerts[i].labels, alerts[i].nlabels, routes, 32);
        for (size_t k = 0; k < nr; k++) {
            struct group *g = group_get(d, routes[k], &alerts[i], now_ms);
            if (!g || !group_put(d, g, &alerts[i]))
                refused++;
        }
    }
    return refused;
}

/* ---- flushing ---- */

static bool labels_equal_on(const struct alert *a, const struct alert *b, char *const *names,
                            size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct vg_str x = labels_get(a->labels, a->nlabels, names[i]);
        struct vg_str y = labels_get(b->labels, b->nlabels, names[i]);
        if (!vg_str_eq(x, y))
            return false;
    }
    return true;
}

/* Alertmanager's inhibitor: a target alert is muted while a different, firing source
 * alert exists whose `equal` labels have the same values. */
static bool inhibited(const struct route_dispatcher *d, const struct galert *t, int64_t now)
{
    for (size_t r = 0; r < d->cfg->ninhibits; r++) {
        const struct route_inhibit *ih = &d->cfg->inhibits[r];
        if (!route_matchers_match(ih->target, ih->ntarget, t->a.labels, t->a.nlabels))
            continue;
        for (size_t gi = 0; gi < d->ngroups; gi++) {
            const struct group *g = d->groups[gi];
            for (size_t i = 0; i < g->n; i++) {
                const struct galert *s = &g->alerts[i];
                if (s->fp != t->fp && !alert_resolved(&s->a, now) &&
                    route_matchers_match(ih->source, ih->nsource, s->a.labels, s->a.nlabels) &&
                    labels_equal_on(&s->a, &t->a, ih->equal, ih->nequal))
                    return true;
            }
        }
    }
    return false;
}

struct pick {
    struct alert *alerts;
    uint64_t *fps;
    size_t n, nfiring;
};

/* Collects a group's alerts for a notification: firing unmuted ones (for escalation:
 * only those active at least `after`), then (not for escalation) resolved ones that the
 * last notification reported as firing. */
static bool pick(const struct route_dispatcher *d, const struct group *g, int64_t now,
                 bool escalation, route_muted_fn muted, void *mctx, struct pick *p)
{
    p->n = p->nfiring = 0;
    p->alerts = vg_malloc((g->n + 1) * sizeof *p->alerts);
    p->fps = vg_malloc((g->n + 1) * sizeof *p->fps);
    if (!p->alerts || !p->fps)
        return false;
    for (int pass = 0; pass < (escalation ? 1 : 2); pass++) {
        for (size_t i = 0; i < g->n; i++) {
            const struct galert *a = &g->alerts[i];
            bool resolved = alert_resolved(&a->a, now);
            if (pass == 0) {
                if (resolved || (muted && muted(mctx, &a->a, now)) || inhibited(d, a, now))
                    continue;
                if (escalation && now - a->a.starts_at_ms < g->route->esc_after_ms)
                    continue;
            } else if (!resolved || !fpset_has(&g->sent, a->fp)) {
                continue;
            }
            p->alerts[p->n] = a->a;
            p->fps[p->n++] = a->fp;
        }
        if (pass == 0)
            p->nfiring = p->n;
    }
    return true;
}

static void pick_free(struct pick *p)
{
    vg_free(p->alerts);
    vg_free(p->fps);
}

static void emit_pick(const struct group *g, const struct pick *p, bool escalation,
                      const char *key, int64_t now, route_emit_fn emit, void *ectx)
{
    struct route_notification n = {
        .route = g->route,
        .receiver = escalation ? g->route->esc_receiver : g->route->receiver,
        .group_key = key,
        .group_labels = g->glabels,
        .ngroup_labels = g->nglabels,
        .alerts = p->alerts,
        .fingerprints = p->fps,
        .nalerts = p->n,
        .nfiring = p->nfiring,
        .escalation = escalation,
    };
    emit(ectx, &n, now);
}

static void flush(struct route_dispatcher *d, struct group *g, int64_t now,
                  route_muted_fn muted, void *mctx, route_emit_fn emit, void *ectx)
{
    struct pick p;
    if (pick(d, g, now, false, muted, mctx, &p)) {
        uint64_t *sorted = vg_malloc((p.nfiring + 1) * sizeof *sorted);
        if (sorted) {
            if (p.nfiring) {
                memcpy(sorted, p.fps, p.nfiring * sizeof *sorted);
                qsort(sorted, p.nfiring, sizeof *sorted, cmp_u64);
            }
            bool news = !fp_subset(sorted, p.nfiring, &g->sent);
            bool resolved = p.n > p.nfiring;
            bool repeat = p.nfiring && (!g->sent_ms ||
                                        now - g->sent_ms >= g->route->repeat_interval_ms);
            if ((news || resolved || repeat) && fpset_assign(&g->sent, sorted, p.nfiring)) {
                g->sent_ms = now;
                emit_pick(g, &p, false, g->key, now, emit, ectx);
            }
            vg_free(sorted);
        }
    }
    pick_free(&p);
    /* resolved alerts have been considered: they leave the group */
    size_t w = 0;
    for (size_t i = 0; i < g->n; i++) {
        if (alert_resolved(&g->alerts[i].a, now)) {
            vg_free(g->alerts[i].mem);
            d->nalerts--;
        } else {
            g->alerts[w++] = g->alerts[i];
        }
    }
    g->n = w;
    /* flushes stay on the group_interval grid from the first one, whatever the tick */
    g->next_flush_ms += g->route->group_interval_ms;
    if (g->next_flush_ms <= now)
        g->next_flush_ms = now + g->route->group_interval_ms;
}

static void escalate(struct route_dispatcher *d, struct group *g, int64_t now,
                     route_muted_fn muted, void *mctx, route_emit_fn emit, void *ectx)
{
    struct pick p;
    if (pick(d, g, now, true, muted, mctx, &p) && p.n) {
        uint64_t *sorted = vg_malloc(p.n * sizeof *sorted);
        if (sorted) {
            memcpy(sorted, p.fps, p.n * sizeof *sorted);
            qsort(sorted, p.n, sizeof *sorted, cmp_u64);
            bool grew = !fp_subset(sorted, p.n, &g->esc);
            bool repeat = !g->esc_ms || now - g->esc_ms >= g->route->repeat_interval_ms;
            struct vg_buf key;
            vg_buf_init(&key);
            vg_buf_printf(&key, "%s/escalate", g->key);
            if ((grew || repeat) && vg_buf_cstr(&key) && fpset_assign(&g->esc, sorted, p.n)) {
                g->esc_ms = now;
                emit_pick(g, &p, true, key.p, now, emit, ectx);
            }
            vg_buf_free(&key);
            vg_free(sorted);
        }
    }
    pick_free(&p);
}

void route_dispatcher_tick(struct route_dispatcher *d, int64_t now_ms, route_muted_fn muted,
                           void *mctx, route_emit_fn emit, void *ectx)
{
    for (size_t i = 0; i < d->ngroups; i++) {
        struct group *g = d->groups[i];
        if (g->route->esc_receiver)
            escalate(d, g, now_ms, muted, mctx, emit, ectx);
        if (g->next_flush_ms <= now_ms)
            flush(d, g, now_ms, muted, mctx, emit, ectx);
    }
    size_t w = 0;
    for (size_t i = 0; i < d->ngroups; i++) {
        if (d->groups[i]->n == 0)
            group_free(d->groups[i]);
        else
            d->groups[w++] = d->groups[i];
    }
    d->ngroups = w;
}

/* ---- notification log ---- */

static void put_fps(struct vg_buf *b, const char *name, const struct fpset *s)
{
    vg_buf_printf(b, ",\"%s\":[", name);
    for (size_t i = 0; i < s->n; i++)
        vg_buf_printf(b, "%s\"%016llx\"", i ? "," : "", (unsigned long long)s->v[i]);
    vg_buf_putc(b, ']');
}

static void put_entry(struct vg_buf *b, const char *key, int64_t sent_ms,
                      const struct fpset *sent, int64_t esc_ms, const struct fpset *esc)
{
    if (!sent_ms && !esc_ms)
        return;
    vg_buf_puts(b, "{\"key\":");
    vg_buf_json_str(b, key, strlen(key));
    vg_buf_printf(b, ",\"sent\":%lld,\"esc_sent\":%lld", (long long)sent_ms, (long long)esc_ms);
    put_fps(b, "firing", sent);
    put_fps(b, "esc", esc);
    vg_buf_puts(b, "}\n");
}

void route_dispatcher_export(const struct route_dispatcher *d, struct vg_buf *out)
{
    for (size_t i = 0; i < d->ngroups; i++) {
        const struct group *g = d->groups[i];
        put_entry(out, g->key, g->sent_ms, &g->sent, g->esc_ms, &g->esc);
    }
    for (size_t i = 0; i < d->nlog; i++) {
        const struct nflog *e = &d->log[i];
        put_entry(out, e->key, e->sent_ms, &e->sent, e->esc_ms, &e->esc);
    }
}

static bool read_fps(json_t *arr, struct fpset *s)
{
    if (!json_is_array(arr))
        return false;
    size_t n = json_array_size(arr);
    uint64_t *v = vg_malloc((n + 1) * sizeof *v);
    if (!v)
        return false;
    for (size_t i = 0; i < n; i++) {
        const char *hex = json_string_value(json_array_get(arr, i));
        char *end;
        if (!hex || !*hex) {
            vg_free(v);
            return false;
        }
        v[i] = strtoull(hex, &end, 16);
        if (*end) {
            vg_free(v);
            return false;
        }
    }
    bool ok = fpset_assign(s, v, n);
    vg_free(v);
    return ok;
}

size_t route_dispatcher_import(struct route_dispatcher *d, const char *buf, size_t len)
{
    size_t bad = 0;
    const char *p = buf, *end = buf + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
        json_t *o = ll ? json_loadb(p, ll, 0, NULL) : NULL;
        p += ll + 1;
        if (!ll)
            continue;
        const char *key = json_string_value(json_object_get(o, "key"));
        struct nflog e = { 0 };
        struct nflog *nl2 = vg_realloc(d->log, (d->nlog + 1) * sizeof *nl2);
        if (nl2)
            d->log = nl2;
        if (!o || !key || !nl2 || !json_is_integer(json_object_get(o, "sent")) ||
            !(e.key = vg_strdup(key)) || !read_fps(json_object_get(o, "firing"), &e.sent) ||
            !read_fps(json_object_get(o, "esc"), &e.esc)) {
            nflog_free(&e);
            json_decref(o);
            bad++;
            continue;
        }
        e.sent_ms = json_integer_value(json_object_get(o, "sent"));
        e.esc_ms = json_integer_value(json_object_get(o, "esc_sent"));
        d->log[d->nlog++] = e;
        json_decref(o);
    }
    return bad;
}
