/* metrics: Vigil's own metrics registry (see metrics.h).
 *
 * Layout: the registry keeps its families in an array sorted by name (so rendering needs
 * no sort of families) and its collectors in registration order, both under the
 * registry mutex. Each family owns a chained hash table of children keyed by the tuple
 * of label values (FNV-1a over the values, each followed by 0xff, which no UTF-8 text
 * contains), guarded by the family's mutex; an update locks only its family. A child is
 * one allocation: header, histogram bucket counts, value pointers, value bytes.
 *
 * Histograms keep per-bucket (not cumulative) counts; rendering sums them into the
 * cumulative `le` series Prometheus expects, then `_sum` and `_count`. A family without
 * labels gets its child at registration so it shows 0 before the first update; a
 * labelled family with no children yet is left out of the output.
 *
 * Render order: families by name, children by label values (byte order, in label order),
 * then each collector's text in registration order, so two renders of the same state are
 * identical. Collectors run under the registry mutex: they must only append text, never
 * register families or collectors (that would deadlock).
 *
 * Misuse (bad names, too many labels, a family registered twice with another shape) is
 * logged and yields NULL; updates on a NULL family are no-ops, so a failed registration
 * cannot crash a request path. */
#include "metrics.h"

#include "../storage/base/vg_alloc.h"
#include "../storage/base/vg_log.h"
#include "api/exposition.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 16
#define MAX_NAME 200

static const double default_buckets[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                          0.5,   1,    2.5,   5,    10 };

struct child {
    struct child *next;
    uint64_t hash;
    size_t nvalues;
    const char **values;
    double value; /* counter, gauge */
    double sum;   /* histogram */
    uint64_t count;
    uint64_t buckets[]; /* nbounds + 1 (the last is +Inf) */
};

struct metric_family {
    char *name;
    char *help;
    enum metric_type type;
    char **label_names;
    size_t nlabels;
    double *bounds;
    char **le;       /* bounds as label values, then "+Inf" */
    size_t nbounds;
    pthread_mutex_t mu;
    struct child **tab;
    size_t tabsize;  /* power of two */
    size_t nchildren;
};

struct collector {
    metrics_collector_fn fn;
    void *ctx;
};

struct metrics {
    pthread_mutex_t mu;
    struct metric_family **fams; /* sorted by name */
    size_t nfams, capfams;
    struct collector *cols;
    size_t ncols, capcols;
};

struct metrics *metrics_new(void)
{
    struct metrics *m = vg_calloc(1, sizeof *m);
    if (m)
        pthread_mutex_init(&m->mu, NULL);
    return m;
}

static void family_free(struct metric_family *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->tabsize; i++) {
        struct child *c = f->tab[i];
        while (c) {
            struct child *next = c->next;
            vg_free(c);
            c = next;
        }
    }
    vg_free(f->tab);
    for (size_t i = 0; i < f->nlabels; i++)
        vg_free(f->label_names[i]);
    vg_free(f->label_names);
    if (f->le)
        for (size_t i = 0; i <= f->nbounds; i++)
            vg_free(f->le[i]);
    vg_free(f->le);
    vg_free(f->bounds);
    vg_free(f->name);
    vg_free(f->help);
    pthread_mutex_destroy(&f->mu);
    vg_free(f);
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nfams; i++)
        family_free(m->fams[i]);
    vg_free(m->fams);
    vg_free(m->cols);
    pthread_mutex_destroy(&m->mu);
    vg_free(m);
}

static bool valid_name(const char *s, bool metric)
{
    size_t n = strlen(s);
    if (n == 0 || n > MAX_NAME || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || (metric && c == ':')))
            return false;
    }
    return true;
}

static bool same_shape(const struct metric_family *f, enum metric_type type,
                       const char *const *label_names, size_t nlabels)
{
    if (f->type != type || f->nlabels != nlabels)
        return false;
    for (size_t i = 0; i < nlabels; i++)
        if (strcmp(f->label_names[i], label_names[i]) != 0)
            return false;
    return true;
}

static const char *check_shape(const char *name, enum metric_type type,
                               const char *const *label_names, size_t nlabels,
                               const double *buckets, size_t nbuckets)
{
    if (!valid_name(name, true))
        return "invalid metric name";
    if (nlabels > MAX_LABELS)
        return "too many labels";
    for (size_t i = 0; i < nlabels; i++) {
        if (!label_names[i] || !valid_name(label_names[i], false) ||
            strncmp(label_names[i], "__", 2) == 0)
            return "invalid label name";
        if (type == METRIC_HISTOGRAM && strcmp(label_names[i], "le") == 0)
            return "label \"le\" is reserved in histograms";
        for (size_t k = 0; k < i; k++)
            if (strcmp(label_names[i], label_names[k]) == 0)
                return "duplicate label name";
    }
    for (size_t i = 0; buckets && i < nbuckets; i++)
        if (isnan(buckets[i]) || (i > 0 && !(buckets[i] > buckets[i - 1])))
            return "buckets must ascend";
    return NULL;
}

static uint64_t hash_values(const char *const *values, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)values[i]; *p; p++)
            h = (h ^ *p) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;
    }
    return h;
}

/* Finds or creates the child for values; f->mu held. NULL when out of memory. */
static struct child *child_get(struct metric_family *f, const char *const *values)
{
    uint64_t h = hash_values(values, f->nlabels);
    for (struct child *c = f->tab[h & (f->tabsize - 1)]; c; c = c->next) {
        if (c->hash != h)
            continue;
        size_t i = 0;
        while (i < f->nlabels && strcmp(c->values[i], values[i]) == 0)
            i++;
        if (i == f->nlabels)
            return c;
    }
    if (f->nchildren >= f->tabsize) {
        size_t ns = f->tabsize * 2;
        struct child **nt = vg_calloc(ns, sizeof *nt);
        if (nt) {
            for (size_t i = 0; i < f->tabsize; i++) {
                for (struct child *c = f->tab[i], *next; c; c = next) {
                    next = c->next;
                    c->next = nt[c->hash & (ns - 1)];
                    nt[c->hash & (ns - 1)] = c;
                }
            }
            vg_free(f->tab);
            f->tab = nt;
            f->tabsize = ns;
        } /* else keep the longer chains: still correct */
    }
    size_t nb = f->type == METRIC_HISTOGRAM ? f->nbounds + 1 : 0;
    size_t head = sizeof(struct child) + nb * sizeof(uint64_t);
    size_t size = head + f->nlabels * sizeof(char *);
    for (size_t i = 0; i < f->nlabels; i++)
        size += strlen(values[i]) + 1;
    struct child *c = vg_calloc(1, size);
    if (!c)
        return NULL;
    c->hash = h;
    c->nvalues = f->nlabels;
    c->values = (const char **)((char *)c + head);
    char *s = (char *)(c->values + f->nlabels);
    for (size_t i = 0; i < f->nlabels; i++) {
        size_t n = strlen(values[i]) + 1;
        memcpy(s, values[i], n);
        c->values[i] = s;
        s += n;
    }
    c->next = f->tab[h & (f->tabsize - 1)];
    f->tab[h & (f->tabsize - 1)] = c;
    f->nchildren++;
    return c;
}

static struct metric_family *family_new(const char *name, const char *help,
                                        enum metric_type type, const char *const *label_names,
                                        size_t nlabels, const double *buckets, size_t nbuckets)
{
    struct metric_family *f = vg_calloc(1, sizeof *f);
    if (!f)
        return NULL;
    pthread_mutex_init(&f->mu, NULL);
    f->type = type;
    f->name = vg_strdup(name);
    f->help = vg_strdup(help ? help : "");
    f->tab = vg_calloc(8, sizeof *f->tab);
    f->tabsize = f->tab ? 8 : 0;
    f->label_names = vg_calloc(nlabels ? nlabels : 1, sizeof *f->label_names);
    bool ok = f->name && f->help && f->tab && f->label_names;
    for (size_t i = 0; ok && i < nlabels; i++) {
        f->label_names[i] = vg_strdup(label_names[i]);
        ok = f->label_names[i] != NULL;
        f->nlabels = i + 1;
    }
    if (ok && type == METRIC_HISTOGRAM) {
        if (!buckets) {
            buckets = default_buckets;
            nbuckets = sizeof default_buckets / sizeof default_buckets[0];
        }
        /* +Inf is implied; a caller listing it gets no second +Inf bucket. */
        while (nbuckets > 0 && isinf(buckets[nbuckets - 1]) && buckets[nbuckets - 1] > 0)
            nbuckets--;
        f->bounds = vg_calloc(nbuckets + 1, sizeof *f->bounds);
        f->le = vg_calloc(nbuckets + 1, sizeof *f->le);
        ok = f->bounds && f->le;
        if (ok) {
            f->nbounds = nbuckets;
            memcpy(f->bounds, buckets, nbuckets * sizeof *buckets);
            struct vg_buf b;
            vg_buf_init(&b);
            for (size_t i = 0; ok && i <= nbuckets; i++) {
                vg_buf_reset(&b);
                vg_buf_prom_float(&b, i < nbuckets ? buckets[i] : INFINITY);
                const char *s = vg_buf_cstr(&b);
                ok = s && (f->le[i] = vg_strdup(s)) != NULL;
            }
            vg_buf_free(&b);
        }
    }
    if (ok && nlabels == 0)
        ok = child_get(f, NULL) != NULL;
    if (!ok) {
        family_free(f);
        return NULL;
    }
    return f;
}

struct metric_family *metrics_family(struct metrics *m, const char *name, const char *help,
                                     enum metric_type type, const char *const *label_names,
                                     size_t nlabels, const double *buckets, size_t nbuckets)
{
    if (!m || !name)
        return NULL;
    const char *why = check_shape(name, type, label_names, nlabels, buckets, nbuckets);
    if (why) {
        vg_log(VG_LOG_ERROR, "metrics", "family rejected", "name", name, "reason", why, NULL);
        return NULL;
    }
    pthread_mutex_lock(&m->mu);
    size_t lo = 0, hi = m->nfams;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(m->fams[mid]->name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    struct metric_family *f = NULL;
    if (lo < m->nfams && strcmp(m->fams[lo]->name, name) == 0) {
        f = m->fams[lo];
        if (!same_shape(f, type, label_names, nlabels)) {
            vg_log(VG_LOG_ERROR, "metrics", "family registered again with another type or labels",
                   "name", name, NULL);
            f = NULL;
        }
        pthread_mutex_unlock(&m->mu);
        return f;
    }
    if (m->nfams == m->capfams) {
        size_t cap = m->capfams ? m->capfams * 2 : 32;
        struct metric_family **g = vg_realloc(m->fams, cap * sizeof *g);
        if (!g) {
            pthread_mutex_unlock(&m->mu);
            return NULL;
        }
        m->fams = g;
        m->capfams = cap;
    }
    f = family_new(name, help, type, label_names, nlabels, buckets, nbuckets);
    if (f) {
        memmove(m->fams + lo + 1, m->fams + lo, (m->nfams - lo) * sizeof *m->fams);
        m->fams[lo] = f;
        m->nfams++;
    }
    pthread_mutex_unlock(&m->mu);
    return f;
}

enum op { OP_ADD, OP_SET, OP_OBSERVE };

static void update(struct metric_family *f, enum op op, double v, va_list ap)
{
    /* f->nlabels is fixed at registration; reading the values under the lock as well
     * lets the static analyzer see that child_get uses the count values was filled to. */
    pthread_mutex_lock(&f->mu);
    const char *values[MAX_LABELS];
    for (size_t i = 0; i < f->nlabels; i++) {
        values[i] = va_arg(ap, const char *);
        if (!values[i])
            values[i] = "";
    }
    struct child *c = child_get(f, values);
    if (c) {
        if (op == OP_ADD) {
            c->value += v;
        } else if (op == OP_SET) {
            c->value = v;
        } else {
            size_t i = 0;
            while (i < f->nbounds && !(v <= f->bounds[i]))
                i++;
            c->buckets[i]++;
            c->count++;
            c->sum += v;
        }
    }
    pthread_mutex_unlock(&f->mu);
}

void metric_add(struct metric_family *f, double delta, ...)
{
    /* Counters only go up: a negative delta is a caller bug, dropped rather than
     * rendering a decreasing counter that rate() would read as a reset. */
    if (!f || f->type == METRIC_HISTOGRAM || (f->type == METRIC_COUNTER && !(delta >= 0)))
        return;
    va_list ap;
    va_start(ap, delta);
    update(f, OP_ADD, delta, ap);
    va_end(ap);
}

void metric_set(struct metric_family *f, double value, ...)
{
    if (!f || f->type == METRIC_HISTOGRAM)
        return;
    va_list ap;
    va_start(ap, value);
    update(f, OP_SET, value, ap);
    va_end(ap);
}

void metric_observe(struct metric_family *f, double value, ...)
{
    if (!f || f->type != METRIC_HISTOGRAM)
        return;
    va_list ap;
    va_start(ap, value);
    update(f, OP_OBSERVE, value, ap);
    va_end(ap);
}

void metrics_add_collector(struct metrics *m, metrics_collector_fn fn, void *ctx)
{
    if (!m || !fn)
        return;
    pthread_mutex_lock(&m->mu);
    if (m->ncols == m->capcols) {
        size_t cap = m->capcols ? m->capcols * 2 : 8;
        struct collector *g = vg_realloc(m->cols, cap * sizeof *g);
        if (!g) {
            pthread_mutex_unlock(&m->mu);
            vg_log(VG_LOG_ERROR, "metrics", "collector not added: out of memory", NULL);
            return;
        }
        m->cols = g;
        m->capcols = cap;
    }
    m->cols[m->ncols++] = (struct collector){ fn, ctx };
    pthread_mutex_unlock(&m->mu);
}

static int cmp_child(const void *a, const void *b)
{
    const struct child *x = *(const struct child *const *)a;
    const struct child *y = *(const struct child *const *)b;
    for (size_t i = 0; i < x->nvalues; i++) {
        int c = strcmp(x->values[i], y->values[i]);
        if (c)
            return c;
    }
    return 0;
}

/* Writes name+suffix with the child's labels (plus le when given). */
static void put_sample(struct vg_buf *out, const struct metric_family *f, const char *suffix,
                       const struct child *c, const char *le, double v)
{
    char name[MAX_NAME + 16];
    size_t n = strlen(f->name), sn = strlen(suffix);
    memcpy(name, f->name, n);
    memcpy(name + n, suffix, sn);
    struct label ls[MAX_LABELS + 1];
    size_t nl = 0;
    for (; nl < f->nlabels; nl++)
        ls[nl] = (struct label){ vg_str_c(f->label_names[nl]), vg_str_c(c->values[nl]) };
    if (le)
        ls[nl++] = (struct label){ VG_STR("le"), vg_str_c(le) };
    exposition_write_sample(out, (struct vg_str){ name, n + sn }, ls, nl, v, false, 0);
}

static void render_family(struct metric_family *f, struct vg_buf *out)
{
    static const enum exposition_type types[] = {
        [METRIC_COUNTER] = EXPOSITION_COUNTER, [METRIC_GAUGE] = EXPOSITION_GAUGE,
        [METRIC_HISTOGRAM] = EXPOSITION_HISTOGRAM,
    };
    pthread_mutex_lock(&f->mu);
    if (f->nchildren == 0) {
        pthread_mutex_unlock(&f->mu);
        return;
    }
    struct child **cs = vg_malloc(f->nchildren * sizeof *cs);
    if (!cs) {
        pthread_mutex_unlock(&f->mu);
        out->failed = true; /* the body would silently miss a family */
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < f->tabsize; i++)
        for (struct child *c = f->tab[i]; c; c = c->next)
            cs[n++] = c;
    qsort(cs, n, sizeof *cs, cmp_child);
    struct vg_str name = vg_str_c(f->name);
    exposition_write_help(out, name, vg_str_c(f->help));
    exposition_write_type(out, name, types[f->type]);
    for (size_t k = 0; k < n; k++) {
        const struct child *c = cs[k];
        if (f->type != METRIC_HISTOGRAM) {
            put_sample(out, f, "", c, NULL, c->value);
            continue;
        }
        uint64_t cum = 0;
        for (size_t i = 0; i <= f->nbounds; i++) {
            cum += c->buckets[i];
            put_sample(out, f, "_bucket", c, f->le[i], (double)cum);
        }
        put_sample(out, f, "_sum", c, NULL, c->sum);
        put_sample(out, f, "_count", c, NULL, (double)c->count);
    }
    pthread_mutex_unlock(&f->mu);
    vg_free(cs);
}

void metrics_render(struct metrics *m, struct vg_buf *out)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->nfams; i++)
        render_family(m->fams[i], out);
    for (size_t i = 0; i < m->ncols; i++)
        m->cols[i].fn(m->cols[i].ctx, out);
    pthread_mutex_unlock(&m->mu);
}
