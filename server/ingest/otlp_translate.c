/* otlp_translate: OTLP metrics to TSDB series, as Prometheus's OTLP receiver does it
 * (prometheus/storage/remote/otlptranslator and the OpenTelemetry specification
 * compatibility/prometheus_and_openmetrics.md, "OTLP Metric points to Prometheus").
 *
 * Types:
 *   Gauge                               -> gauge <name>
 *   Sum, monotonic, cumulative          -> counter <name>_total
 *   Sum, not monotonic                  -> gauge <name>
 *   Sum or histogram, delta             -> cfg->otlp_delta: refused (OTLP_DELTA_REJECT), or
 *                                          summed per series into cumulative values
 *                                          (OTLP_DELTA_ACCUMULATE, see otlp_delta.h)
 *   Histogram                           -> <name>_bucket{le} (cumulative counts, le="+Inf"
 *                                          = count), <name>_sum (only when present),
 *                                          <name>_count
 *   ExponentialHistogram                -> the same classic series (see below)
 *   Summary                             -> <name>{quantile="0.5"}, <name>_sum, <name>_count
 *   temporality unspecified             -> refused
 *
 * Exponential histograms. Prometheus turns them into native histograms; Vigil's TSDB stores
 * float samples only for now, so each point becomes classic buckets at the exponential
 * bucket boundaries instead: with base = 2^(2^-scale), positive bucket index i holds
 * (base^i, base^(i+1)] and gets le = base^(i+1); negative bucket i holds
 * [-base^(i+1), -base^i) and gets le = -base^i; the zero bucket [-zero_threshold,
 * zero_threshold] gets le = zero_threshold. Buckets are emitted in ascending le with
 * cumulative counts, then le="+Inf" = count; boundaries that are not finite or do not rise
 * above the previous one are folded into the next bucket. histogram_quantile() over these
 * buckets works as on any classic histogram. Scale must be within [-10, 20].
 *
 * Names: otlp_names.h (suffixes per cfg->otlp_add_type_and_unit_suffixes).
 *
 * Labels: point attributes with names sanitised by otlp_names_label; attributes that
 * collide after sanitising are joined with ";" in key order (as Prometheus). Then, not
 * overriding point attributes, the resource attributes listed in cfg->otlp_promote_attrs;
 * then otel_scope_name / otel_scope_version; then job = service.namespace "/"
 * service.name (or service.name) and instance = service.instance.id; then __name__ and
 * le / quantile. Values as otlp_names_value. Every series passes ingest_check_labels
 * (empty values dropped, limits).
 *
 * target_info: per resource with job or instance and at least one other attribute, one
 * gauge series target_info{job, instance, <other resource attributes>} = 1 from the
 * earliest to the latest stored point of that resource every 150 s (half Prometheus's
 * lookback delta, as Prometheus does), at most 1000 samples. service.* identifying
 * attributes are left out unless cfg->otlp_keep_identifying_attrs.
 *
 * Exemplars: trace_id and span_id as lower-case hex labels plus the filtered attributes
 * (dropped when all labels together exceed 128 runes, as OpenMetrics limits); a histogram
 * exemplar goes to the first bucket whose le is at least its value; number points keep
 * theirs on the series.
 *
 * Points: time_unix_nano / 1e6 is the sample time in ms; time 0 is refused. Flag
 * NO_RECORDED_VALUE stores the staleness NaN (TSDB_STALE_NAN_BITS) in every series of the
 * point. Metadata rows: one per metric with a stored point (family name, type,
 * description, the Prometheus unit word such as "seconds").
 *
 * Atomicity: a data point is stored whole or refused whole (counted in res->rejected,
 * reason kept), never half of a histogram's buckets. */
#include "otlp_translate.h"

#include "../../storage/base/vg_buf.h"
#include "ingest.h"
#include "otlp_names.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics pb_rm;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics pb_sm;
typedef Opentelemetry__Proto__Metrics__V1__Metric pb_metric;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint pb_num;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint pb_hist;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint pb_exp;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint pb_summary;
typedef Opentelemetry__Proto__Metrics__V1__Exemplar pb_exemplar;

#define NS_PER_MS 1000000ULL
#define TARGET_INFO_STEP_MS 150000
#define TARGET_INFO_MAX_SAMPLES 1000
#define MAX_EXEMPLAR_RUNES 128
#define MIN_EXP_SCALE (-10)
#define MAX_EXP_SCALE 20
#define NO_RECORDED_VALUE \
    OPENTELEMETRY__PROTO__METRICS__V1__DATA_POINT_FLAGS__DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
#define TEMP_DELTA \
    OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA
#define TEMP_CUMULATIVE \
    OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE

static const char *const reject_names[OTLP_REJECT_COUNT] = {
    [OTLP_REJECT_NO_TIMESTAMP] = "missing_timestamp",
    [OTLP_REJECT_DELTA] = "delta_temporality",
    [OTLP_REJECT_TEMPORALITY] = "invalid_temporality",
    [OTLP_REJECT_METRIC_NAME] = "invalid_metric_name",
    [OTLP_REJECT_LABELS] = "invalid_labels",
    [OTLP_REJECT_SERIES_LIMIT] = "series_limit",
    [OTLP_REJECT_MALFORMED] = "malformed_point",
    [OTLP_REJECT_DELTA_STATE] = "delta_refused",
};

const char *otlp_reject_name(enum otlp_reject r)
{
    return (unsigned)r < OTLP_REJECT_COUNT ? reject_names[r] : "unknown";
}

/* ---- arena helpers ---- */

/* Grows an arena array (doubling) so it can hold need elements; false when out of memory. */
static bool arena_grow(struct vg_arena *a, void **arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 4;
    while (nc < need)
        nc *= 2;
    void *p = vg_arena_alloc(a, nc * size);
    if (!p)
        return false;
    if (*cap)
        memcpy(p, *arr, *cap * size);
    *arr = p;
    *cap = nc;
    return true;
}

static struct vg_str arena_str(struct vg_arena *a, const char *p, size_t n)
{
    char *s = vg_arena_strndup(a, p, n);
    return (struct vg_str){ s, s ? n : 0 };
}

/* ---- the translation ---- */

struct oseries {
    struct label *ls;
    size_t n;
    uint64_t hash;
    struct tsdb_sample *s;
    size_t ns, caps;
    struct tsdb_exemplar *ex;
    size_t nex, capex;
};

/* One series of the data point being translated, not yet committed. */
struct pend {
    struct label *ls;
    size_t n;
    double v;
    double bound; /* le of a bucket series (for exemplars), else NAN */
    struct tsdb_exemplar *ex;
    size_t nex, capex;
};

struct tr {
    const struct config *cfg;
    struct otlp_delta_state *delta;
    struct vg_arena *a;
    struct otlp_translate_result *res;
    struct vg_buf scratch;
    bool oom;
    /* output */
    struct oseries *ser;
    size_t nser, capser;
    uint32_t *tab; /* open addressing: index + 1 into ser, 0 = empty */
    size_t tabcap;
    struct tsdb_metadata *meta;
    size_t nmeta, capmeta;
    /* the current resource and scope */
    struct label *extra; /* promoted attributes (added only if absent) */
    size_t nextra;
    struct vg_str job, instance, scope_name, scope_version;
    int64_t min_t, max_t;
    /* the current metric and point */
    const char *metric;      /* OTLP name, for messages */
    const char *family;
    struct label *base;
    size_t nbase, capbase;
    int64_t t;
    bool stale;
    bool failed;             /* the current point is refused */
    const char *bad_attr;    /* attribute key that has no valid label name */
    struct pend *pend;
    size_t npend, cappend;
};

static void reject(struct tr *tr, enum otlp_reject r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void vnote(struct tr *tr, const char *fmt, va_list ap)
{
    if (!tr->res->reason[0])
        vsnprintf(tr->res->reason, sizeof tr->res->reason, fmt, ap);
}

static void reject(struct tr *tr, enum otlp_reject r, const char *fmt, ...)
{
    tr->res->rejected++;
    tr->res->rejected_by[r]++;
    va_list ap;
    va_start(ap, fmt);
    vnote(tr, fmt, ap);
    va_end(ap);
}

static void warn(struct tr *tr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A reason with no point counted (target_info that could not be written). */
static void warn(struct tr *tr, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vnote(tr, fmt, ap);
    va_end(ap);
}

/* scratch -> arena string. */
static struct vg_str scratch_take(struct tr *tr)
{
    if (vg_buf_failed(&tr->scratch)) {
        tr->oom = true;
        return (struct vg_str){ "", 0 };
    }
    struct vg_str s = arena_str(tr->a, tr->scratch.p ? tr->scratch.p : "", tr->scratch.len);
    if (!s.p)
        tr->oom = true;
    vg_buf_reset(&tr->scratch);
    return s;
}

static struct vg_str any_str(struct tr *tr, const pb_any *v)
{
    vg_buf_reset(&tr->scratch);
    otlp_names_value(&tr->scratch, v);
    return scratch_take(tr);
}

static const pb_any *attr_get(pb_kv *const *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (kv[i] && kv[i]->key && strcmp(kv[i]->key, key) == 0)
            return kv[i]->value;
    return NULL;
}

struct named {
    struct label l;
    const char *key;
};

static int named_cmp(const void *x, const void *y)
{
    const struct named *a = x, *b = y;
    int c = vg_str_cmp(a->l.name, b->l.name);
    return c ? c : strcmp(a->key, b->key);
}

static bool is_identifying(const char *key)
{
    return strcmp(key, "service.name") == 0 || strcmp(key, "service.namespace") == 0 ||
           strcmp(key, "service.instance.id") == 0;
}

/* Converts attributes to labels in tr->base (capacity for room more), sanitising names and
 * joining the values of colliding names with ";". skip_identifying leaves out service.*.
 * Returns false when out of memory or when a name cannot be sanitised (tr->bad_attr). */
static bool attrs_to_base(struct tr *tr, pb_kv *const *kv, size_t n, bool skip_identifying,
                          size_t room)
{
    tr->nbase = 0;
    tr->capbase = 0;
    tr->bad_attr = NULL;
    struct named *tmp = n ? vg_arena_alloc(tr->a, n * sizeof *tmp) : NULL;
    tr->base = vg_arena_alloc(tr->a, (n + room) * sizeof *tr->base);
    if ((n && !tmp) || !tr->base) {
        tr->oom = true;
        return false;
    }
    tr->capbase = n + room;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!kv[i] || !kv[i]->key || (skip_identifying && is_identifying(kv[i]->key)))
            continue;
        const char *name = otlp_names_label(tr->a, kv[i]->key, strlen(kv[i]->key));
        if (!name) {
            tr->bad_attr = kv[i]->key;
            return false;
        }
        tmp[k].l.name = vg_str_c(name);
        tmp[k].l.value = any_str(tr, kv[i]->value);
        tmp[k].key = kv[i]->key;
        k++;
    }
    if (k > 1)
        qsort(tmp, k, sizeof *tmp, named_cmp);
    for (size_t i = 0; i < k; i++) {
        if (tr->nbase && vg_str_eq(tr->base[tr->nbase - 1].name, tmp[i].l.name)) {
            struct label *last = &tr->base[tr->nbase - 1];
            vg_buf_reset(&tr->scratch);
            vg_buf_append(&tr->scratch, last->value.p, last->value.len);
            vg_buf_putc(&tr->scratch, ';');
            vg_buf_append(&tr->scratch, tmp[i].l.value.p, tmp[i].l.value.len);
            last->value = scratch_take(tr);
        } else {
            tr->base[tr->nbase++] = tmp[i].l;
        }
    }
    return !tr->oom;
}

static struct label *find_label(struct label *ls, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (vg_str_eq_c(ls[i].name, name))
            return &ls[i];
    return NULL;
}

/* Sets name=value in ls (capacity checked by the caller), replacing or only adding. */
static void set_label(struct label *ls, size_t *n, const char *name, struct vg_str value,
                      bool replace)
{
    struct label *l = find_label(ls, *n, name);
    if (l) {
        if (replace)
            l->value = value;
        return;
    }
    ls[(*n)++] = (struct label){ vg_str_c(name), value };
}

/* Adds the resource and scope labels to tr->base. */
static void base_add_context(struct tr *tr)
{
    for (size_t i = 0; i < tr->nextra; i++) {
        struct label *l = &tr->extra[i];
        if (!find_label(tr->base, tr->nbase, l->name.p))
            tr->base[tr->nbase++] = *l;
    }
    if (tr->scope_name.len) {
        set_label(tr->base, &tr->nbase, "otel_scope_name", tr->scope_name, true);
        set_label(tr->base, &tr->nbase, "otel_scope_version", tr->scope_version, true);
    }
    if (tr->job.p)
        set_label(tr->base, &tr->nbase, "job", tr->job, true);
    if (tr->instance.p)
        set_label(tr->base, &tr->nbase, "instance", tr->instance, true);
}

#define BASE_ROOM(tr) ((tr)->nextra + 8)

/* Starts a data point: checks its time, builds its base labels. False when refused. */
static bool point_begin(struct tr *tr, pb_kv *const *kv, size_t n, uint64_t time_ns,
                        uint32_t flags)
{
    tr->res->points++;
    tr->npend = 0;
    tr->cappend = 0;
    tr->pend = NULL;
    tr->failed = false;
    if (time_ns == 0) {
        reject(tr, OTLP_REJECT_NO_TIMESTAMP, "metric %s: data point has no time_unix_nano",
               tr->metric);
        return false;
    }
    tr->t = (int64_t)(time_ns / NS_PER_MS);
    tr->stale = (flags & NO_RECORDED_VALUE) != 0;
    if (!attrs_to_base(tr, kv, n, false, BASE_ROOM(tr))) {
        if (tr->bad_attr)
            reject(tr, OTLP_REJECT_LABELS,
                   "metric %s: attribute name \"%.64s\" has no character valid in a label name",
                   tr->metric, tr->bad_attr);
        return false;
    }
    base_add_context(tr);
    return true;
}

static double stale_nan(void)
{
    uint64_t bits = TSDB_STALE_NAN_BITS;
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* Builds base + __name__=family<suffix> (+ extra_name=extra_value), validated. NULL when
 * refused (reason recorded, tr->failed set). */
static struct label *series_labels(struct tr *tr, const char *suffix, const char *extra_name,
                                   struct vg_str extra_value, size_t *nout)
{
    struct label *ls = vg_arena_alloc(tr->a, (tr->nbase + 2) * sizeof *ls);
    if (!ls) {
        tr->oom = true;
        return NULL;
    }
    memcpy(ls, tr->base, tr->nbase * sizeof *ls);
    size_t n = tr->nbase;
    vg_buf_reset(&tr->scratch);
    vg_buf_puts(&tr->scratch, tr->family);
    vg_buf_puts(&tr->scratch, suffix);
    set_label(ls, &n, "__name__", scratch_take(tr), true);
    if (extra_name)
        set_label(ls, &n, extra_name, extra_value, true);
    if (tr->oom)
        return NULL;
    struct vg_err e;
    int rc = ingest_check_labels(&tr->cfg->limits, ls, n, &e);
    if (rc < 0) {
        reject(tr, OTLP_REJECT_LABELS, "metric %s: %s", tr->metric, e.msg);
        tr->failed = true;
        return NULL;
    }
    *nout = (size_t)rc;
    return ls;
}

static struct pend *pend_add(struct tr *tr, const char *suffix, const char *extra_name,
                             struct vg_str extra_value, double v)
{
    if (tr->failed || tr->oom)
        return NULL;
    size_t n;
    struct label *ls = series_labels(tr, suffix, extra_name, extra_value, &n);
    if (!ls)
        return NULL;
    if (!arena_grow(tr->a, (void **)&tr->pend, &tr->cappend, tr->npend + 1, sizeof *tr->pend)) {
        tr->oom = true;
        return NULL;
    }
    struct pend *p = &tr->pend[tr->npend++];
    *p = (struct pend){ ls, n, tr->stale ? stale_nan() : v, NAN, NULL, 0, 0 };
    return p;
}

static struct vg_str fmt_float(struct tr *tr, double d)
{
    vg_buf_reset(&tr->scratch);
    vg_buf_json_float(&tr->scratch, d);
    return scratch_take(tr);
}

/* ---- exemplars ---- */

static size_t runes(struct vg_str s)
{
    size_t n = 0;
    for (size_t i = 0; i < s.len; i++)
        if (((unsigned char)s.p[i] & 0xC0) != 0x80)
            n++;
    return n;
}

static struct vg_str hex_str(struct tr *tr, const ProtobufCBinaryData *b)
{
    static const char hex[] = "0123456789abcdef";
    char *s = vg_arena_alloc(tr->a, b->len * 2 + 1);
    if (!s) {
        tr->oom = true;
        return (struct vg_str){ "", 0 };
    }
    for (size_t i = 0; i < b->len; i++) {
        s[2 * i] = hex[b->data[i] >> 4];
        s[2 * i + 1] = hex[b->data[i] & 15];
    }
    s[b->len * 2] = 0;
    return (struct vg_str){ s, b->len * 2 };
}

/* Converts one exemplar; false when it has no value (skipped). */
static bool exemplar_conv(struct tr *tr, const pb_exemplar *x, struct tsdb_exemplar *out)
{
    if (x->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE)
        out->v = x->as_double;
    else if (x->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT)
        out->v = (double)x->as_int;
    else
        return false;
    out->t = x->time_unix_nano ? (int64_t)(x->time_unix_nano / NS_PER_MS) : tr->t;
    size_t cap = x->n_filtered_attributes + 2, n = 0;
    struct label *ls = vg_arena_alloc(tr->a, cap * sizeof *ls);
    if (!ls) {
        tr->oom = true;
        return false;
    }
    size_t nrunes = 0;
    if (x->trace_id.len) {
        ls[n++] = (struct label){ VG_STR("trace_id"), hex_str(tr, &x->trace_id) };
        nrunes += 8 + ls[n - 1].value.len;
    }
    if (x->span_id.len) {
        ls[n++] = (struct label){ VG_STR("span_id"), hex_str(tr, &x->span_id) };
        nrunes += 7 + ls[n - 1].value.len;
    }
    size_t ids = n;
    for (size_t i = 0; i < x->n_filtered_attributes; i++) {
        const pb_kv *kv = x->filtered_attributes[i];
        if (!kv || !kv->key)
            continue;
        const char *name = otlp_names_label(tr->a, kv->key, strlen(kv->key));
        if (!name || find_label(ls, n, name))
            continue;
        struct vg_str v = any_str(tr, kv->value);
        if (!v.len)
            continue;
        ls[n++] = (struct label){ vg_str_c(name), v };
        nrunes += runes(vg_str_c(kv->key)) + runes(v);
    }
    if (nrunes > MAX_EXEMPLAR_RUNES)
        n = ids; /* OpenMetrics caps exemplar labels at 128 runes; keep the ids */
    labels_sort(ls, n);
    out->labels = ls;
    out->nlabels = n;
    return !tr->oom;
}

static void pend_add_exemplar(struct tr *tr, struct pend *p, const struct tsdb_exemplar *x)
{
    if (!arena_grow(tr->a, (void **)&p->ex, &p->capex, p->nex + 1, sizeof *p->ex)) {
        tr->oom = true;
        return;
    }
    p->ex[p->nex++] = *x;
}

/* Attaches exemplars: to p when given, else to the first bucket pend whose le is >= the
 * exemplar's value. Stale points carry none. */
static void attach_exemplars(struct tr *tr, pb_exemplar *const *xs, size_t n, struct pend *p)
{
    if (tr->stale || tr->failed)
        return;
    for (size_t i = 0; i < n && !tr->oom; i++) {
        struct tsdb_exemplar x;
        if (!xs[i] || !exemplar_conv(tr, xs[i], &x))
            continue;
        struct pend *to = p;
        for (size_t k = 0; !to && k < tr->npend; k++)
            if (!isnan(tr->pend[k].bound) && x.v <= tr->pend[k].bound)
                to = &tr->pend[k];
        if (to)
            pend_add_exemplar(tr, to, &x);
    }
}

/* ---- committing series ---- */

static size_t slot_of(struct tr *tr, const struct label *ls, size_t n, uint64_t h)
{
    size_t mask = tr->tabcap - 1;
    size_t i = h & mask;
    while (tr->tab[i]) {
        const struct oseries *s = &tr->ser[tr->tab[i] - 1];
        if (s->hash == h && labels_cmp(s->ls, s->n, ls, n) == 0)
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

static bool tab_grow(struct tr *tr)
{
    size_t nc = tr->tabcap ? tr->tabcap * 2 : 64;
    uint32_t *t = vg_arena_calloc(tr->a, nc * sizeof *t);
    if (!t)
        return false;
    uint32_t *old = tr->tab;
    size_t oc = tr->tabcap;
    tr->tab = t;
    tr->tabcap = nc;
    for (size_t i = 0; i < oc; i++) {
        if (!old[i])
            continue;
        const struct oseries *s = &tr->ser[old[i] - 1];
        tr->tab[slot_of(tr, s->ls, s->n, s->hash)] = old[i];
    }
    return true;
}

static bool series_append(struct tr *tr, struct oseries *s, int64_t t, double v,
                          const struct tsdb_exemplar *ex, size_t nex)
{
    if (!arena_grow(tr->a, (void **)&s->s, &s->caps, s->ns + 1, sizeof *s->s) ||
        !arena_grow(tr->a, (void **)&s->ex, &s->capex, s->nex + nex, sizeof *s->ex))
        return false;
    s->s[s->ns++] = (struct tsdb_sample){ t, v };
    if (nex)
        memcpy(s->ex + s->nex, ex, nex * sizeof *ex);
    s->nex += nex;
    return true;
}

/* Adds one sample to the series ls (created if new). */
static bool add_sample(struct tr *tr, struct label *ls, size_t n, uint64_t h, int64_t t,
                       double v, const struct tsdb_exemplar *ex, size_t nex)
{
    if ((tr->nser + 1) * 2 > tr->tabcap && !tab_grow(tr))
        return false;
    size_t slot = slot_of(tr, ls, n, h);
    if (!tr->tab[slot]) {
        if (!arena_grow(tr->a, (void **)&tr->ser, &tr->capser, tr->nser + 1, sizeof *tr->ser))
            return false;
        tr->ser[tr->nser] = (struct oseries){ ls, n, h, NULL, 0, 0, NULL, 0, 0 };
        tr->tab[slot] = (uint32_t)++tr->nser;
    }
    return series_append(tr, &tr->ser[tr->tab[slot] - 1], t, v, ex, nex);
}

static bool series_exists(struct tr *tr, const struct label *ls, size_t n, uint64_t h)
{
    return tr->tabcap && tr->tab[slot_of(tr, ls, n, h)];
}

/* How many more series limits.max_series_per_request allows. */
static int64_t series_room(struct tr *tr)
{
    int64_t max = tr->cfg->limits.max_series_per_request;
    return max > 0 ? max - (int64_t)tr->nser : INT64_MAX;
}

/* Commits the pending series of the current point, unless it was refused or would cross
 * the series limit. Returns true when stored. */
static bool point_commit(struct tr *tr)
{
    if (tr->failed || tr->oom)
        return false;
    int64_t fresh = 0;
    uint64_t *h = vg_arena_alloc(tr->a, (tr->npend + 1) * sizeof *h);
    if (!h) {
        tr->oom = true;
        return false;
    }
    for (size_t i = 0; i < tr->npend; i++) {
        h[i] = labels_hash(tr->pend[i].ls, tr->pend[i].n);
        fresh += !series_exists(tr, tr->pend[i].ls, tr->pend[i].n, h[i]);
    }
    if (fresh > series_room(tr)) {
        reject(tr, OTLP_REJECT_SERIES_LIMIT,
               "metric %s: request has more than %lld series "
               "(limits.max_series_per_request); split it into smaller requests",
               tr->metric, (long long)tr->cfg->limits.max_series_per_request);
        return false;
    }
    for (size_t i = 0; i < tr->npend; i++) {
        struct pend *p = &tr->pend[i];
        if (!add_sample(tr, p->ls, p->n, h[i], tr->t, p->v, p->ex, p->nex)) {
            tr->oom = true;
            return false;
        }
    }
    if (tr->t < tr->min_t)
        tr->min_t = tr->t;
    if (tr->t > tr->max_t)
        tr->max_t = tr->t;
    return true;
}

/* ---- delta accumulation ---- */

/* Appends the canonical encoding of base + __name__=family, the series key of the delta
 * state, to key. False when refused or out of memory. */
static bool delta_key(struct tr *tr, struct vg_buf *key)
{
    size_t n;
    struct label *ls = series_labels(tr, "", NULL, (struct vg_str){ NULL, 0 }, &n);
    if (!ls)
        return false;
    labels_encode(ls, n, key);
    if (vg_buf_failed(key)) {
        tr->oom = true;
        return false;
    }
    return true;
}

/* Turns the delta point in *num, *h or *x (one is set) into the running total of its
 * series (key: base + __name__=family). False when refused (reason recorded) or out of
 * memory. */
static bool accumulate(struct tr *tr, double *num, struct otlp_hist *h, struct otlp_exphist *x)
{
    struct vg_buf key;
    vg_buf_init(&key);
    struct vg_err e;
    int rc = 0;
    if (delta_key(tr, &key)) {
        if (num) {
            rc = otlp_delta_add_number(tr->delta, key.p, key.len, tr->t, *num, num, &e);
        } else if (h) {
            struct otlp_hist acc;
            rc = otlp_delta_add_hist(tr->delta, key.p, key.len, tr->t, h, tr->a, &acc, &e);
            if (rc == 0)
                *h = acc;
        } else {
            struct otlp_exphist acc;
            rc = otlp_delta_add_exphist(tr->delta, key.p, key.len, tr->t, x, tr->a, &acc, &e);
            if (rc == 0)
                *x = acc;
        }
    }
    vg_buf_free(&key);
    if (rc == VG_ENOMEM)
        tr->oom = true;
    else if (rc < 0) {
        reject(tr, OTLP_REJECT_DELTA_STATE, "metric %s: %s", tr->metric, e.msg);
        tr->failed = true;
    }
    return !tr->failed && !tr->oom;
}

/* ---- points ---- */

struct mctx {
    const pb_metric *m;
    enum tsdb_metric_type type;
    bool delta;
    uint64_t stored;
};

static void number_point(struct tr *tr, struct mctx *mc, const pb_num *dp)
{
    if (!point_begin(tr, dp->attributes, dp->n_attributes, dp->time_unix_nano, dp->flags))
        return;
    double v;
    if (dp->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE)
        v = dp->as_double;
    else if (dp->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT)
        v = (double)dp->as_int;
    else if (tr->stale)
        v = 0;
    else {
        reject(tr, OTLP_REJECT_MALFORMED, "metric %s: data point has no value", tr->metric);
        return;
    }
    struct pend *p = pend_add(tr, "", NULL, (struct vg_str){ NULL, 0 }, v);
    if (!p)
        return;
    if (mc->delta && !tr->stale && !accumulate(tr, &p->v, NULL, NULL))
        return;
    attach_exemplars(tr, dp->exemplars, dp->n_exemplars, p);
    mc->stored += point_commit(tr);
}

/* Emits _sum (when present) and _count. */
static void emit_sum_count(struct tr *tr, bool has_sum, double sum, uint64_t count)
{
    if (has_sum)
        pend_add(tr, "_sum", NULL, (struct vg_str){ NULL, 0 }, sum);
    pend_add(tr, "_count", NULL, (struct vg_str){ NULL, 0 }, (double)count);
}

static void emit_bucket(struct tr *tr, double le, uint64_t cum)
{
    struct vg_str s = fmt_float(tr, le);
    struct pend *p = pend_add(tr, "_bucket", "le", s, (double)cum);
    if (p)
        p->bound = le;
}

static void emit_hist(struct tr *tr, const struct otlp_hist *h)
{
    emit_sum_count(tr, h->has_sum, h->sum, h->count);
    uint64_t cum = 0;
    for (size_t i = 0; h->counts && i < h->nbounds; i++) {
        cum += h->counts[i];
        emit_bucket(tr, h->bounds[i], cum);
    }
    emit_bucket(tr, INFINITY, h->count);
}

/* Accumulates a delta histogram (with a delta key) through fn; false when refused. */
static bool hist_from_pb(struct tr *tr, const pb_hist *dp, struct otlp_hist *h)
{
    if (dp->n_bucket_counts && dp->n_bucket_counts != dp->n_explicit_bounds + 1) {
        reject(tr, OTLP_REJECT_MALFORMED,
               "metric %s: histogram point has %zu bucket counts for %zu explicit bounds "
               "(needs bounds + 1)",
               tr->metric, dp->n_bucket_counts, dp->n_explicit_bounds);
        return false;
    }
    for (size_t i = 0; i < dp->n_explicit_bounds; i++) {
        double b = dp->explicit_bounds[i];
        if (!isfinite(b) || (i && b <= dp->explicit_bounds[i - 1])) {
            reject(tr, OTLP_REJECT_MALFORMED,
                   "metric %s: histogram explicit_bounds must be finite and strictly "
                   "increasing (bound %zu)",
                   tr->metric, i);
            return false;
        }
    }
    *h = (struct otlp_hist){
        .count = dp->count,
        .sum = dp->sum,
        .has_sum = dp->sum_present_case ==
                   OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM,
        .nbounds = dp->n_bucket_counts ? dp->n_explicit_bounds : 0,
        .bounds = dp->explicit_bounds,
        .counts = dp->n_bucket_counts ? dp->bucket_counts : NULL,
    };
    return true;
}

static void hist_point(struct tr *tr, struct mctx *mc, const pb_hist *dp)
{
    if (!point_begin(tr, dp->attributes, dp->n_attributes, dp->time_unix_nano, dp->flags))
        return;
    struct otlp_hist h;
    if (!hist_from_pb(tr, dp, &h))
        return;
    if (mc->delta && !tr->stale && !accumulate(tr, NULL, &h, NULL))
        return;
    emit_hist(tr, &h);
    attach_exemplars(tr, dp->exemplars, dp->n_exemplars, NULL);
    mc->stored += point_commit(tr);
}

/* base^index with base = 2^(2^-scale), exactly for scale <= 0. */
static double exp_bound(int32_t scale, int64_t index)
{
    if (scale <= 0) {
        /* |index| <= 2000 and -scale < 40 keep the shift in range; beyond, the bound is
         * past what a double holds anyway (accumulated state may lower the scale a lot). */
        if (index == 0)
            return 1;
        if (index > 2000 || (-scale >= 40 && index > 0))
            return INFINITY;
        if (index < -2000 || -scale >= 40)
            return 0;
        int64_t e = index * ((int64_t)1 << -scale);
        if (e > 2000)
            return INFINITY;
        if (e < -2000)
            return 0;
        return ldexp(1.0, (int)e);
    }
    return exp2((double)index / (double)((int64_t)1 << scale));
}

struct bucket_walk {
    uint64_t cum;
    double last;     /* last emitted le */
    bool any;
};

/* Adds count c at upper bound le, emitting a bucket unless le does not rise or is not
 * finite (then the count goes into the next bucket emitted). */
static void walk_bucket(struct tr *tr, struct bucket_walk *w, double le, uint64_t c)
{
    w->cum += c;
    if (!isfinite(le) || (w->any && le <= w->last))
        return;
    emit_bucket(tr, le, w->cum);
    w->last = le;
    w->any = true;
}

static void emit_exphist(struct tr *tr, const struct otlp_exphist *x)
{
    emit_sum_count(tr, x->has_sum, x->sum, x->count);
    struct bucket_walk w = { 0, 0, false };
    for (size_t k = x->neg.n; k-- > 0;)
        walk_bucket(tr, &w, -exp_bound(x->scale, x->neg.offset + (int64_t)k), x->neg.counts[k]);
    walk_bucket(tr, &w, x->zero_threshold, x->zero_count);
    for (size_t k = 0; k < x->pos.n; k++)
        walk_bucket(tr, &w, exp_bound(x->scale, x->pos.offset + (int64_t)k + 1),
                    x->pos.counts[k]);
    emit_bucket(tr, INFINITY, x->count);
}

static struct otlp_exp_buckets exp_side(
    const Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets *b)
{
    if (!b)
        return (struct otlp_exp_buckets){ 0, 0, NULL };
    return (struct otlp_exp_buckets){ b->offset, b->n_bucket_counts, b->bucket_counts };
}

static void exp_point(struct tr *tr, struct mctx *mc, const pb_exp *dp)
{
    if (!point_begin(tr, dp->attributes, dp->n_attributes, dp->time_unix_nano, dp->flags))
        return;
    if (dp->scale < MIN_EXP_SCALE || dp->scale > MAX_EXP_SCALE ||
        !(dp->zero_threshold >= 0) || !isfinite(dp->zero_threshold)) {
        reject(tr, OTLP_REJECT_MALFORMED,
               "metric %s: exponential histogram scale %d outside [%d, %d] or bad "
               "zero_threshold",
               tr->metric, dp->scale, MIN_EXP_SCALE, MAX_EXP_SCALE);
        return;
    }
    struct otlp_exphist x = {
        .scale = dp->scale,
        .count = dp->count,
        .sum = dp->sum,
        .has_sum = dp->sum_present_case ==
                   OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM,
        .zero_count = dp->zero_count,
        .zero_threshold = dp->zero_threshold,
        .pos = exp_side(dp->positive),
        .neg = exp_side(dp->negative),
    };
    if (mc->delta && !tr->stale && !accumulate(tr, NULL, NULL, &x))
        return;
    emit_exphist(tr, &x);
    attach_exemplars(tr, dp->exemplars, dp->n_exemplars, NULL);
    mc->stored += point_commit(tr);
}

static int double_cmp(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static void summary_point(struct tr *tr, struct mctx *mc, const pb_summary *dp)
{
    if (!point_begin(tr, dp->attributes, dp->n_attributes, dp->time_unix_nano, dp->flags))
        return;
    size_t nq = dp->n_quantile_values;
    double *qs = vg_arena_alloc(tr->a, (nq + 1) * sizeof *qs);
    if (!qs) {
        tr->oom = true;
        return;
    }
    for (size_t i = 0; i < nq; i++) {
        qs[i] = dp->quantile_values[i] ? dp->quantile_values[i]->quantile : NAN;
        if (!(qs[i] >= 0 && qs[i] <= 1)) {
            reject(tr, OTLP_REJECT_MALFORMED, "metric %s: summary quantile %zu is not in [0, 1]",
                   tr->metric, i);
            return;
        }
    }
    qsort(qs, nq, sizeof *qs, double_cmp);
    for (size_t i = 1; i < nq; i++) {
        if (qs[i] == qs[i - 1]) {
            reject(tr, OTLP_REJECT_MALFORMED, "metric %s: summary repeats quantile %g",
                   tr->metric, qs[i]);
            return;
        }
    }
    emit_sum_count(tr, true, dp->sum, dp->count);
    for (size_t i = 0; i < nq; i++) {
        const Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile *q =
            dp->quantile_values[i];
        pend_add(tr, "", "quantile", fmt_float(tr, q->quantile), q->value);
    }
    mc->stored += point_commit(tr);
}

/* ---- metrics, scopes, resources ---- */

static void add_meta(struct tr *tr, const char *family, enum tsdb_metric_type type,
                     const char *help, struct vg_str unit)
{
    if (!arena_grow(tr->a, (void **)&tr->meta, &tr->capmeta, tr->nmeta + 1, sizeof *tr->meta)) {
        tr->oom = true;
        return;
    }
    tr->meta[tr->nmeta++] = (struct tsdb_metadata){ vg_str_c(family), type,
                                                     vg_str_c(help ? help : ""), unit };
}

/* Refuses every point of a metric with one reason. */
static void reject_all(struct tr *tr, size_t n, enum otlp_reject r, const char *what)
{
    tr->res->points += n;
    for (size_t i = 0; i < n; i++)
        reject(tr, r, "metric %s: %s", tr->metric, what);
}

static void metric(struct tr *tr, const pb_metric *m)
{
    tr->metric = m->name && m->name[0] ? m->name : "(unnamed)";
    struct mctx mc = { m, TSDB_TYPE_GAUGE, false, 0 };
    size_t npoints = 0;
    int temporality = TEMP_CUMULATIVE;
    bool from_sum = false;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        npoints = m->gauge ? m->gauge->n_data_points : 0;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        npoints = m->sum ? m->sum->n_data_points : 0;
        temporality = m->sum ? (int)m->sum->aggregation_temporality : 0;
        from_sum = true;
        mc.type = m->sum && m->sum->is_monotonic ? TSDB_TYPE_COUNTER : TSDB_TYPE_GAUGE;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        npoints = m->histogram ? m->histogram->n_data_points : 0;
        temporality = m->histogram ? (int)m->histogram->aggregation_temporality : 0;
        mc.type = TSDB_TYPE_HISTOGRAM;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        npoints = m->exponential_histogram ? m->exponential_histogram->n_data_points : 0;
        temporality = m->exponential_histogram
                          ? (int)m->exponential_histogram->aggregation_temporality : 0;
        mc.type = TSDB_TYPE_HISTOGRAM;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        npoints = m->summary ? m->summary->n_data_points : 0;
        mc.type = TSDB_TYPE_SUMMARY;
        break;
    default:
        warn(tr, "metric %s has no data (gauge, sum, histogram, exponential_histogram or "
                 "summary); ignored", tr->metric);
        return;
    }
    if (npoints == 0)
        return;
    if (temporality != TEMP_CUMULATIVE && temporality != TEMP_DELTA) {
        reject_all(tr, npoints, OTLP_REJECT_TEMPORALITY,
                   "aggregation_temporality is unspecified (must be cumulative or delta)");
        return;
    }
    if (temporality == TEMP_DELTA) {
        if (tr->cfg->otlp_delta != OTLP_DELTA_ACCUMULATE || !tr->delta) {
            reject_all(tr, npoints, OTLP_REJECT_DELTA,
                       "delta temporality is not accepted (otlp_delta is \"reject\"; set it "
                       "to \"accumulate\" or export cumulative temporality)");
            return;
        }
        mc.delta = true;
    }
    tr->family = m->name && m->name[0]
                     ? otlp_names_metric(tr->a, m->name, m->unit, mc.type, from_sum,
                                        tr->cfg->otlp_add_type_and_unit_suffixes)
                     : NULL;
    if (!tr->family) {
        if (!tr->oom)
            reject_all(tr, npoints, OTLP_REJECT_METRIC_NAME,
                       "name does not normalise to a valid Prometheus metric name");
        return;
    }
    for (size_t i = 0; i < npoints && !tr->oom; i++) {
        switch (m->data_case) {
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
            number_point(tr, &mc, m->gauge->data_points[i]);
            break;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
            number_point(tr, &mc, m->sum->data_points[i]);
            break;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
            hist_point(tr, &mc, m->histogram->data_points[i]);
            break;
        case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
            exp_point(tr, &mc, m->exponential_histogram->data_points[i]);
            break;
        default:
            summary_point(tr, &mc, m->summary->data_points[i]);
            break;
        }
    }
    if (mc.stored && !tr->oom)
        add_meta(tr, tr->family, mc.type, m->description, otlp_names_unit(tr->a, m->unit));
}

/* job, instance and the promoted attributes of a resource. */
static void resource_begin(struct tr *tr, pb_kv *const *kv, size_t n)
{
    tr->job = tr->instance = (struct vg_str){ NULL, 0 };
    const pb_any *name = attr_get(kv, n, "service.name");
    const pb_any *ns = attr_get(kv, n, "service.namespace");
    const pb_any *inst = attr_get(kv, n, "service.instance.id");
    if (name) {
        vg_buf_reset(&tr->scratch);
        if (ns) {
            otlp_names_value(&tr->scratch, ns);
            vg_buf_putc(&tr->scratch, '/');
        }
        otlp_names_value(&tr->scratch, name);
        tr->job = scratch_take(tr);
    }
    if (inst)
        tr->instance = any_str(tr, inst);
    tr->nextra = 0;
    tr->extra = vg_arena_alloc(tr->a, (tr->cfg->otlp_npromote + 1) * sizeof *tr->extra);
    if (!tr->extra) {
        tr->oom = true;
        return;
    }
    for (size_t i = 0; i < tr->cfg->otlp_npromote; i++) {
        const char *key = tr->cfg->otlp_promote_attrs[i];
        const pb_any *v = attr_get(kv, n, key);
        const char *lname = v ? otlp_names_label(tr->a, key, strlen(key)) : NULL;
        if (lname && !find_label(tr->extra, tr->nextra, lname))
            tr->extra[tr->nextra++] = (struct label){ vg_str_c(lname), any_str(tr, v) };
    }
    tr->min_t = INT64_MAX;
    tr->max_t = INT64_MIN;
}

static void target_info(struct tr *tr, pb_kv *const *kv, size_t n, bool *meta_done)
{
    if (tr->min_t > tr->max_t || (!tr->job.p && !tr->instance.p))
        return;
    bool skip_ids = !tr->cfg->otlp_keep_identifying_attrs;
    size_t others = 0;
    for (size_t i = 0; i < n; i++)
        others += kv[i] && kv[i]->key && !is_identifying(kv[i]->key);
    if (others == 0)
        return;
    tr->metric = "target_info";
    if (!attrs_to_base(tr, kv, n, skip_ids, 4)) {
        if (tr->bad_attr)
            warn(tr, "target_info not written: resource attribute name \"%.64s\" has no "
                     "character valid in a label name", tr->bad_attr);
        return;
    }
    if (tr->job.p)
        set_label(tr->base, &tr->nbase, "job", tr->job, true);
    if (tr->instance.p)
        set_label(tr->base, &tr->nbase, "instance", tr->instance, true);
    set_label(tr->base, &tr->nbase, "__name__", VG_STR("target_info"), true);
    struct vg_err e;
    int rc = ingest_check_labels(&tr->cfg->limits, tr->base, tr->nbase, &e);
    if (rc < 0) {
        warn(tr, "target_info not written: %s", e.msg);
        return;
    }
    size_t nl = (size_t)rc;
    uint64_t h = labels_hash(tr->base, nl);
    if (!series_exists(tr, tr->base, nl, h) && series_room(tr) < 1) {
        warn(tr, "target_info not written: request has more than %lld series "
                 "(limits.max_series_per_request)",
             (long long)tr->cfg->limits.max_series_per_request);
        return;
    }
    int64_t step = TARGET_INFO_STEP_MS;
    if ((tr->max_t - tr->min_t) / step >= TARGET_INFO_MAX_SAMPLES)
        step = (tr->max_t - tr->min_t) / (TARGET_INFO_MAX_SAMPLES - 1) + 1;
    for (int64_t t = tr->min_t; t < tr->max_t && !tr->oom; t += step)
        if (!add_sample(tr, tr->base, nl, h, t, 1, NULL, 0))
            tr->oom = true;
    if (!tr->oom && !add_sample(tr, tr->base, nl, h, tr->max_t, 1, NULL, 0))
        tr->oom = true;
    if (!*meta_done && !tr->oom) {
        add_meta(tr, "target_info", TSDB_TYPE_GAUGE, "Target metadata", (struct vg_str){ "", 0 });
        *meta_done = true;
    }
}

static void scope(struct tr *tr, const pb_sm *sm)
{
    tr->scope_name = tr->scope_version = (struct vg_str){ NULL, 0 };
    if (sm->scope && sm->scope->name && sm->scope->name[0]) {
        tr->scope_name = vg_str_c(sm->scope->name);
        tr->scope_version = vg_str_c(sm->scope->version ? sm->scope->version : "");
    }
    for (size_t i = 0; i < sm->n_metrics && !tr->oom; i++)
        if (sm->metrics[i])
            metric(tr, sm->metrics[i]);
}

static bool finish(struct tr *tr)
{
    struct tsdb_series_in *out = vg_arena_alloc(tr->a, (tr->nser + 1) * sizeof *out);
    if (!out)
        return false;
    for (size_t i = 0; i < tr->nser; i++) {
        const struct oseries *s = &tr->ser[i];
        out[i] = (struct tsdb_series_in){ s->ls, s->n, s->s, s->ns, s->nex ? s->ex : NULL,
                                          s->nex };
    }
    tr->res->batch = (struct tsdb_batch){ out, tr->nser, tr->meta, tr->nmeta };
    return true;
}

int otlp_translate(const otlp_metrics_request *req, const struct config *cfg,
                   struct otlp_delta_state *delta, struct vg_arena *a,
                   struct otlp_translate_result *res, struct vg_err *err)
{
    memset(res, 0, sizeof *res);
    struct tr tr = { .cfg = cfg, .delta = delta, .a = a, .res = res };
    vg_buf_init(&tr.scratch);
    bool target_meta = false;
    for (size_t i = 0; i < req->n_resource_metrics && !tr.oom; i++) {
        const pb_rm *rm = req->resource_metrics[i];
        if (!rm)
            continue;
        pb_kv *const *kv = rm->resource ? rm->resource->attributes : NULL;
        size_t nkv = rm->resource ? rm->resource->n_attributes : 0;
        resource_begin(&tr, kv, nkv);
        for (size_t j = 0; j < rm->n_scope_metrics && !tr.oom; j++)
            if (rm->scope_metrics[j])
                scope(&tr, rm->scope_metrics[j]);
        if (!tr.oom)
            target_info(&tr, kv, nkv, &target_meta);
    }
    vg_buf_free(&tr.scratch);
    if (tr.oom || !finish(&tr)) {
        memset(res, 0, sizeof *res);
        return vg_err_set(err, VG_ENOMEM,
                          "out of memory translating the OTLP request (or over the request "
                          "memory limit of 4 x limits.max_decoded_bytes)");
    }
    return 0;
}
