/* federate: GET /federate, as Prometheus's federation endpoint answers it.
 *
 * For each match[] selector the series with samples in [now-5m, now] are selected (the
 * PromQL lookback delta), merged across selectors by series id, and the latest sample of
 * each at or before now is written with its timestamp in ms. A series whose latest sample
 * is the staleness marker (TSDB_STALE_NAN_BITS) is left out, as Prometheus leaves out a
 * series that went stale. Series without a metric name, or whose names cannot be written
 * in 0.0.4 (e.g. UTF-8 names accepted from OTLP), are skipped: one bad name would make
 * the scraper reject the whole body.
 *
 * Output, Content-Type `text/plain; version=0.0.4; charset=utf-8`:
 *   # TYPE <family> <counter|gauge|histogram|summary|untyped>
 *   <name>{<labels but __name__, sorted>} <value> <timestamp ms>
 * Families come from tsdb_metadata_get: the series name itself, or for a classic
 * histogram's or summary's _bucket/_sum/_count series the base name when that is the
 * type recorded for it, so one `# TYPE foo histogram` heads foo_bucket, foo_count and
 * foo_sum. Without metadata a name is its own family, untyped. Output is sorted by
 * family, name, then labels, so equal stores give equal bodies. */
#include "federate.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/tsdb/tsdb.h"
#include "../promql/selector.h"
#include "exposition.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOOKBACK_MS ((int64_t)5 * 60 * 1000)
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct fed_series {
    const struct tsdb_series *s;
    struct vg_str name;
    struct vg_str family;
    enum exposition_type type;
    struct tsdb_sample last;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool writable(const struct tsdb_series *s, struct vg_str *name)
{
    *name = labels_get(s->labels, s->nlabels, "__name__");
    if (!name->p || !exposition_valid_name(*name, true))
        return false;
    for (size_t i = 0; i < s->nlabels; i++)
        if (!vg_str_eq_c(s->labels[i].name, "__name__") &&
            !exposition_valid_name(s->labels[i].name, false))
            return false;
    return true;
}

static int cmp_by_name(const void *a, const void *b)
{
    const struct fed_series *x = a, *y = b;
    int c = vg_str_cmp(x->name, y->name);
    return c ? c : labels_cmp(x->s->labels, x->s->nlabels, y->s->labels, y->s->nlabels);
}

static int cmp_by_family(const void *a, const void *b)
{
    const struct fed_series *x = a, *y = b;
    int c = vg_str_cmp(x->family, y->family);
    return c ? c : cmp_by_name(a, b);
}

/* The 0.0.4 type recorded for metric name, or false when there is none. */
static bool lookup_type(struct tsdb *db, struct vg_arena *arena, struct vg_str name,
                        enum exposition_type *out)
{
    char *z = vg_arena_strndup(arena, name.p, name.len);
    char help[2], unit[2];
    enum tsdb_metric_type t;
    if (!z || !tsdb_metadata_get(db, z, &t, help, sizeof help, unit, sizeof unit))
        return false;
    switch (t) {
    case TSDB_TYPE_COUNTER: *out = EXPOSITION_COUNTER; break;
    case TSDB_TYPE_GAUGE: *out = EXPOSITION_GAUGE; break;
    case TSDB_TYPE_HISTOGRAM: *out = EXPOSITION_HISTOGRAM; break;
    case TSDB_TYPE_SUMMARY: *out = EXPOSITION_SUMMARY; break;
    default: *out = EXPOSITION_UNTYPED; break; /* no 0.0.4 counterpart */
    }
    return true;
}

static bool has_suffix(struct vg_str s, const char *suf, struct vg_str *base)
{
    size_t n = strlen(suf);
    if (s.len <= n || memcmp(s.p + s.len - n, suf, n) != 0)
        return false;
    *base = (struct vg_str){ s.p, s.len - n };
    return true;
}

/* Sets e->family and e->type from the metadata of its name or its histogram/summary base. */
static void resolve_family(struct tsdb *db, struct vg_arena *arena, struct fed_series *e)
{
    e->family = e->name;
    e->type = EXPOSITION_UNTYPED;
    if (lookup_type(db, arena, e->name, &e->type))
        return;
    struct vg_str base;
    enum exposition_type t;
    bool bucket = has_suffix(e->name, "_bucket", &base);
    if (!bucket && !has_suffix(e->name, "_sum", &base) && !has_suffix(e->name, "_count", &base))
        return;
    if (lookup_type(db, arena, base, &t) &&
        (t == EXPOSITION_HISTOGRAM || (!bucket && t == EXPOSITION_SUMMARY))) {
        e->family = base;
        e->type = t;
    }
}

/* Selects the series of every selector into sets[]; *total counts them. */
static int select_all(struct vigil *v, const char *const *sels, size_t nsel, int64_t mint,
                      int64_t maxt, struct tsdb_series_set **sets, size_t *total,
                      struct vg_err *err)
{
    *total = 0;
    for (size_t i = 0; i < nsel; i++) {
        struct selector sel = { 0 };
        if (selector_parse(sels[i], strlen(sels[i]), &sel, err) < 0)
            return vg_err_prefix(err, "invalid match[] \"%.100s\"", sels[i]);
        int rc = tsdb_select(v->tsdb, sel.ms, sel.n, mint, maxt, &sets[i], err);
        selector_free(&sel);
        if (rc < 0)
            return rc;
        *total += sets[i]->n;
    }
    return 0;
}

/* Fills es with the distinct writable series and their latest non-stale sample. */
static int collect(struct vigil *v, struct tsdb_series_set **sets, size_t nsel, int64_t mint,
                   int64_t maxt, struct fed_series *es, size_t *n, struct vg_err *err)
{
    size_t k = 0;
    for (size_t i = 0; i < nsel; i++)
        for (size_t j = 0; j < sets[i]->n; j++)
            if (writable(&sets[i]->v[j], &es[k].name))
                es[k++].s = &sets[i]->v[j];
    qsort(es, k, sizeof *es, cmp_by_name);
    size_t out = 0;
    for (size_t i = 0; i < k; i++) {
        if (i > 0 && es[i - 1].s->id == es[i].s->id)
            continue; /* matched by two selectors: equal labels sort adjacent */
        struct tsdb_sample *ss = NULL;
        size_t ns = 0;
        int rc = tsdb_read(v->tsdb, es[i].s->id, mint, maxt, &ss, &ns, err);
        if (rc < 0)
            return rc;
        struct tsdb_sample last = ns ? ss[ns - 1] : (struct tsdb_sample){ 0, 0 };
        vg_free(ss);
        uint64_t bits;
        memcpy(&bits, &last.v, sizeof bits);
        if (ns == 0 || bits == TSDB_STALE_NAN_BITS)
            continue;
        es[out] = es[i];
        es[out].last = last;
        out++;
    }
    *n = out;
    return 0;
}

static void write_body(struct vigil *v, struct vg_arena *arena, struct fed_series *es,
                       size_t n, struct vg_buf *out)
{
    if (n == 0)
        return; /* es may be NULL, and qsort must not get NULL even with no elements */
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && vg_str_eq(es[i].name, es[i - 1].name)) {
            es[i].family = es[i - 1].family;
            es[i].type = es[i - 1].type;
        } else {
            resolve_family(v->tsdb, arena, &es[i]);
        }
    }
    qsort(es, n, sizeof *es, cmp_by_family);
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || !vg_str_eq(es[i].family, es[i - 1].family))
            exposition_write_type(out, es[i].family, es[i].type);
        exposition_write_sample(out, es[i].name, es[i].s->labels, es[i].s->nlabels,
                                es[i].last.v, true, es[i].last.t);
    }
}

static void federate(struct vigil *v, struct http_request *req, struct http_response *resp)
{
    struct vg_err err;
    vg_err_clear(&err);
    size_t nsel = http_arg_all(req, "match[]", NULL, 0);
    if (nsel == 0) {
        vg_err_set(&err, VG_EINVAL, "at least one match[] parameter is required");
        http_resp_error(resp, &err);
        return;
    }
    const char **sels = vg_arena_alloc(req->arena, nsel * sizeof *sels);
    struct tsdb_series_set **sets = vg_arena_calloc(req->arena, nsel * sizeof *sets);
    if (!sels || !sets) {
        vg_err_set(&err, VG_ENOMEM, "federate: out of memory for %zu selectors", nsel);
        http_resp_error(resp, &err);
        return;
    }
    http_arg_all(req, "match[]", sels, nsel);
    int64_t now = now_ms();
    int64_t mint = now - LOOKBACK_MS;
    size_t total = 0, n = 0;
    struct fed_series *es = NULL;
    int rc = select_all(v, sels, nsel, mint, now, sets, &total, &err);
    if (rc == 0 && total > 0) {
        es = vg_malloc(total * sizeof *es);
        rc = es ? collect(v, sets, nsel, mint, now, es, &n, &err)
                : vg_err_set(&err, VG_ENOMEM, "federate: out of memory for %zu series", total);
    }
    if (rc == 0) {
        resp->content_type = CONTENT_TYPE;
        write_body(v, req->arena, es, n, &resp->body);
        if (vg_buf_failed(&resp->body))
            rc = vg_err_set(&err, VG_ENOMEM, "federate: out of memory writing %zu series", n);
    }
    if (rc < 0) {
        vg_buf_reset(&resp->body);
        http_resp_error(resp, &err);
    }
    vg_free(es);
    for (size_t i = 0; i < nsel; i++)
        if (sets[i])
            tsdb_series_set_free(sets[i]);
}

static const struct http_route routes[] = {
    { "GET", "/federate", false, federate, "/federate" },
};

const struct vigil_module mod_federate = {
    .name = "federate",
    .routes = routes,
    .nroutes = sizeof routes / sizeof routes[0],
};
