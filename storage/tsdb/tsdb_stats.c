/* tsdb_stats: cardinality figures for /api/v1/status/tsdb (tsdb_cardinality in tsdb.h),
 * and the background fsync counts of the TSDB's log for /metrics (tsdb_sync_stats).
 *
 * Prometheus reports, for its head block, the top-N metric names by series count, label
 * names by number of distinct values, label names by the bytes their values take over
 * all series, and name=value pairs by series count. Vigil keeps every series in its
 * postings index ('P' entries, one id or a block of ids each, see index.h), sorted by
 * name, then value, then id, so one sequential scan yields each pair's series count as a
 * run of keys and each name's figures as a run of pairs: no hash map, memory bounded by
 * the four top-N heaps. The head (under mu, briefly) gives the series count, in-memory
 * chunk count and time bounds.
 *
 * Ranking: larger value first; ties by name in byte order, so answers are stable (the
 * order of Prometheus's ties is unspecified). */
#include "tsdb_int.h"

#include "../base/vg_alloc.h"
#include "../kv.h"
#include "index.h"

#include <stdlib.h>

/* A bounded min-heap of the best `cap` items seen: its root is the worst kept one. */
struct topk {
    struct tsdb_stat_item *v;
    size_t n, alloc, cap; /* alloc grows up to cap, so a huge limit costs nothing extra */
};

/* Whether a ranks above b. */
static bool better(const struct tsdb_stat_item *a, const struct tsdb_stat_item *b)
{
    return a->value != b->value ? a->value > b->value : strcmp(a->name, b->name) < 0;
}

static void sift_down(struct topk *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < h->n && better(&h->v[w], &h->v[l]))
            w = l;
        if (r < h->n && better(&h->v[w], &h->v[r]))
            w = r;
        if (w == i)
            return;
        struct tsdb_stat_item t = h->v[i];
        h->v[i] = h->v[w];
        h->v[w] = t;
        i = w;
    }
}

static void sift_up(struct topk *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!better(&h->v[p], &h->v[i]))
            return;
        struct tsdb_stat_item t = h->v[i];
        h->v[i] = h->v[p];
        h->v[p] = t;
        i = p;
    }
}

/* Offers name (n bytes, or the concatenation name=value when value is given). 0 or
 * VG_ENOMEM. */
static int topk_offer(struct topk *h, const char *name, size_t nlen, const char *value,
                      size_t vlen, uint64_t count)
{
    if (h->cap == 0)
        return 0;
    if (h->n == h->cap) {
        /* Cheap reject before building the name: ranks below the worst on count alone. */
        if (count < h->v[0].value)
            return 0;
    }
    if (h->n < h->cap && h->n == h->alloc) {
        size_t alloc = h->alloc ? h->alloc * 2 : 16;
        if (alloc > h->cap)
            alloc = h->cap;
        struct tsdb_stat_item *nv = vg_realloc(h->v, alloc * sizeof *nv);
        if (!nv)
            return VG_ENOMEM;
        h->v = nv;
        h->alloc = alloc;
    }
    size_t len = nlen + (value ? 1 + vlen : 0);
    char *s = vg_malloc(len + 1);
    if (!s)
        return VG_ENOMEM;
    memcpy(s, name, nlen);
    if (value) {
        s[nlen] = '=';
        memcpy(s + nlen + 1, value, vlen);
    }
    s[len] = '\0';
    struct tsdb_stat_item it = { s, count };
    if (h->n < h->cap) {
        h->v[h->n] = it;
        sift_up(h, h->n++);
    } else if (better(&it, &h->v[0])) {
        vg_free(h->v[0].name);
        h->v[0] = it;
        sift_down(h, 0);
    } else {
        vg_free(s);
    }
    return 0;
}

static int cmp_rank(const void *a, const void *b)
{
    const struct tsdb_stat_item *x = a, *y = b;
    return better(x, y) ? -1 : better(y, x) ? 1 : 0;
}

static void topk_finish(struct topk *h, struct tsdb_stat_list *out)
{
    if (h->n > 1)
        qsort(h->v, h->n, sizeof *h->v, cmp_rank);
    out->v = h->v;
    out->n = h->n;
}

static void list_free(struct tsdb_stat_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        vg_free(l->v[i].name);
    vg_free(l->v);
    l->v = NULL;
    l->n = 0;
}

void tsdb_cardinality_free(struct tsdb_cardinality *c)
{
    if (!c)
        return;
    list_free(&c->series_by_metric);
    list_free(&c->values_by_name);
    list_free(&c->bytes_by_name);
    list_free(&c->series_by_pair);
}

/* Scan state: the pair and name whose keys are being counted. */
struct scan {
    struct vg_buf name, value;
    bool have;          /* a pair is open */
    uint64_t pair_series;
    uint64_t name_values, name_bytes;
    struct topk top[4]; /* metric, values, bytes, pairs */
    uint64_t pairs;
};

static int close_pair(struct scan *s)
{
    s->pairs++;
    s->name_values++;
    s->name_bytes += s->pair_series * s->value.len;
    int rc = topk_offer(&s->top[3], s->name.p, s->name.len, s->value.p, s->value.len,
                        s->pair_series);
    if (rc == 0 && s->name.len == 8 && memcmp(s->name.p, "__name__", 8) == 0)
        rc = topk_offer(&s->top[0], s->value.p, s->value.len, NULL, 0, s->pair_series);
    s->pair_series = 0;
    return rc;
}

static int close_name(struct scan *s)
{
    int rc = topk_offer(&s->top[1], s->name.p, s->name.len, NULL, 0, s->name_values);
    if (rc == 0)
        rc = topk_offer(&s->top[2], s->name.p, s->name.len, NULL, 0, s->name_bytes);
    s->name_values = s->name_bytes = 0;
    return rc;
}

/* One posting entry: 'P' name 0x00 value 0x00|0x01 id(8) (index.h). False when it does
 * not parse. */
static bool parse_posting(const char *k, size_t len, const char **name, size_t *nlen,
                          const char **value, size_t *vlen)
{
    if (len < 1 + 1 + 1 + 8 || k[0] != INDEX_PREFIX || (unsigned char)k[len - 9] > 1)
        return false;
    const char *end = k + len - 9; /* the separator before the id */
    const char *sep = memchr(k + 1, '\0', (size_t)(end - (k + 1)));
    if (!sep)
        return false;
    *name = k + 1;
    *nlen = (size_t)(sep - (k + 1));
    *value = sep + 1;
    *vlen = (size_t)(end - (sep + 1));
    return true;
}

static int scan_index(struct tsdb *db, struct scan *s, struct vg_err *err)
{
    struct kv_iter *it = kv_iter_new(db->kv, NULL, false);
    if (!it)
        return tsdb_nomem(err, "for the index scan");
    const char prefix = INDEX_PREFIX;
    int rc = 0;
    for (kv_iter_seek(it, &prefix, 1); rc == 0 && kv_iter_has_prefix(it, &prefix, 1);
         kv_iter_next(it)) {
        size_t len, nlen, vlen;
        const char *k = kv_iter_key(it, &len), *name, *value;
        if (!parse_posting(k, len, &name, &nlen, &value, &vlen))
            continue;
        bool same_name = s->have && nlen == s->name.len && memcmp(name, s->name.p, nlen) == 0;
        bool same_pair = same_name && vlen == s->value.len && memcmp(value, s->value.p, vlen) == 0;
        if (!same_pair && s->have) {
            rc = close_pair(s);
            if (rc == 0 && !same_name)
                rc = close_name(s);
        }
        if (!same_pair) {
            if (!same_name) {
                vg_buf_reset(&s->name);
                vg_buf_append(&s->name, name, nlen);
            }
            vg_buf_reset(&s->value);
            vg_buf_append(&s->value, value, vlen);
            if (vg_buf_failed(&s->name) || vg_buf_failed(&s->value))
                rc = VG_ENOMEM;
            s->have = true;
        }
        size_t vl;
        const char *v = kv_iter_value(it, &vl);
        s->pair_series += index_entry_ids(k, len, v, vl);
    }
    if (rc == 0 && s->have) {
        rc = close_pair(s);
        if (rc == 0)
            rc = close_name(s);
    }
    if (rc == VG_ENOMEM)
        tsdb_nomem(err, "ranking label pairs");
    else if (rc == 0)
        rc = kv_iter_error(it, err);
    kv_iter_free(it);
    return rc;
}

static void head_figures(struct tsdb *db, struct tsdb_cardinality *out)
{
    out->min_time = INT64_MAX;
    out->max_time = INT64_MIN;
    pthread_mutex_lock(&db->mu);
    struct head *h = &db->head;
    for (size_t i = 0; i < h->by_id_cap; i++) {
        struct head_series *s = h->by_id[i];
        if (!s || !(s->flags & HEAD_F_DURABLE))
            continue;
        out->num_series++;
        out->chunk_count += s->head.count > 0;
        for (struct head_node *n = s->nodes; n; n = n->next)
            out->chunk_count++;
        if (s->min_t < out->min_time)
            out->min_time = s->min_t;
        if (s->max_t > out->max_time)
            out->max_time = s->max_t;
    }
    pthread_mutex_unlock(&db->mu);
}

int tsdb_cardinality(struct tsdb *db, size_t limit, struct tsdb_cardinality *out,
                     struct vg_err *err)
{
    memset(out, 0, sizeof *out);
    struct scan s;
    memset(&s, 0, sizeof s);
    vg_buf_init(&s.name);
    vg_buf_init(&s.value);
    for (int i = 0; i < 4; i++)
        s.top[i].cap = limit;
    int rc = scan_index(db, &s, err);
    vg_buf_free(&s.name);
    vg_buf_free(&s.value);
    struct tsdb_stat_list *lists[4] = { &out->series_by_metric, &out->values_by_name,
                                        &out->bytes_by_name, &out->series_by_pair };
    for (int i = 0; i < 4; i++)
        topk_finish(&s.top[i], lists[i]);
    if (rc < 0) {
        tsdb_cardinality_free(out);
        return rc;
    }
    out->num_label_pairs = s.pairs;
    head_figures(db, out);
    return 0;
}

void tsdb_sync_stats(struct tsdb *db, struct kv_sync_stats *out)
{
    kv_sync_stats(db->kv, out);
}
