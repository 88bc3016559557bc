/* sampling: see sampling.h. The head sampler is a mutex around a decision LRU and a
 * token bucket; the module glues it and the tail sampler (tail_sampling.c) between
 * ingest_store_spans and the span store. */
#include "sampling.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_log.h"
#include "../config_node.h"
#include "../vigil.h"
#include "ingest.h"
#include "tail_sampling.h"

#include <math.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#define RECV_TAIL "tail_sampling"

/* ---- the ratio rule ---- */

#define TWO_POW_56 ((uint64_t)1 << 56)

uint64_t sampling_ratio_threshold(double ratio)
{
    if (!(ratio > 0)) /* NaN too */
        return TWO_POW_56;
    if (ratio >= 1)
        return 0;
    /* (1 - ratio) * 2^56 rounded; both operands are exact in a double's range here */
    double t = round((1.0 - ratio) * (double)TWO_POW_56);
    return t >= (double)TWO_POW_56 ? TWO_POW_56 : (uint64_t)t;
}

uint64_t sampling_randomness(const uint8_t id[SPAN_TRACE_ID_LEN])
{
    uint64_t r = 0;
    for (int i = 9; i < SPAN_TRACE_ID_LEN; i++)
        r = r << 8 | id[i];
    return r;
}

static uint64_t mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

uint64_t sampling_id_hash(const uint8_t id[SPAN_TRACE_ID_LEN], uint64_t seed)
{
    uint64_t a, b;
    memcpy(&a, id, 8);
    memcpy(&b, id + 8, 8);
    return mix64(mix64(a ^ seed) ^ b);
}

int64_t sampling_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- the decision LRU ----
 * Entries live in one array allocated up front; indices are 1-based so 0 means none.
 * Hash chains and the recency list link by index. */

struct cache_ent {
    uint8_t id[SPAN_TRACE_ID_LEN];
    uint32_t hnext, prev, next;
    bool keep;
};

struct sampling_cache {
    struct cache_ent *ents; /* ents[i - 1] is entry i */
    uint32_t *buckets;
    size_t cap, n, mask;
    uint32_t head, tail; /* most and least recently used */
    uint64_t seed;
};

#define ENT(c, i) (&(c)->ents[(i) - 1])

struct sampling_cache *sampling_cache_new(size_t cap)
{
    if (cap == 0 || cap > ((size_t)1 << 31))
        return NULL;
    struct sampling_cache *c = vg_calloc(1, sizeof *c);
    size_t nb = 16;
    while (nb < cap)
        nb <<= 1;
    if (c) {
        c->ents = vg_calloc(cap, sizeof *c->ents);
        c->buckets = vg_calloc(nb, sizeof *c->buckets);
    }
    if (!c || !c->ents || !c->buckets) {
        sampling_cache_free(c);
        return NULL;
    }
    c->cap = cap;
    c->mask = nb - 1;
    c->seed = mix64((uint64_t)(uintptr_t)c ^ (uint64_t)sampling_now_ns());
    return c;
}

void sampling_cache_free(struct sampling_cache *c)
{
    if (!c)
        return;
    vg_free(c->ents);
    vg_free(c->buckets);
    vg_free(c);
}

size_t sampling_cache_len(const struct sampling_cache *c)
{
    return c->n;
}

static uint32_t *slot_of(struct sampling_cache *c, const uint8_t *id)
{
    return &c->buckets[sampling_id_hash(id, c->seed) & c->mask];
}

static void lru_unlink(struct sampling_cache *c, uint32_t i)
{
    struct cache_ent *e = ENT(c, i);
    if (e->prev)
        ENT(c, e->prev)->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        ENT(c, e->next)->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = 0;
}

static void lru_push_front(struct sampling_cache *c, uint32_t i)
{
    struct cache_ent *e = ENT(c, i);
    e->prev = 0;
    e->next = c->head;
    if (c->head)
        ENT(c, c->head)->prev = i;
    c->head = i;
    if (!c->tail)
        c->tail = i;
}

static uint32_t cache_find(struct sampling_cache *c, const uint8_t *id)
{
    for (uint32_t i = *slot_of(c, id); i; i = ENT(c, i)->hnext)
        if (memcmp(ENT(c, i)->id, id, SPAN_TRACE_ID_LEN) == 0)
            return i;
    return 0;
}

int sampling_cache_get(struct sampling_cache *c, const uint8_t id[SPAN_TRACE_ID_LEN])
{
    uint32_t i = cache_find(c, id);
    if (!i)
        return -1;
    if (c->head != i) {
        lru_unlink(c, i);
        lru_push_front(c, i);
    }
    return ENT(c, i)->keep;
}

void sampling_cache_put(struct sampling_cache *c, const uint8_t id[SPAN_TRACE_ID_LEN], bool keep)
{
    uint32_t i = cache_find(c, id);
    if (i) {
        ENT(c, i)->keep = keep;
        if (c->head != i) {
            lru_unlink(c, i);
            lru_push_front(c, i);
        }
        return;
    }
    if (c->n < c->cap) {
        i = (uint32_t)++c->n;
    } else {
        /* reuse the least recently used entry: take it off its hash chain first */
        i = c->tail;
        lru_unlink(c, i);
        uint32_t *p = slot_of(c, ENT(c, i)->id);
        while (*p != i)
            p = &ENT(c, *p)->hnext;
        *p = ENT(c, i)->hnext;
    }
    struct cache_ent *e = ENT(c, i);
    memcpy(e->id, id, SPAN_TRACE_ID_LEN);
    e->keep = keep;
    uint32_t *s = slot_of(c, id);
    e->hnext = *s;
    *s = i;
    lru_push_front(c, i);
}

/* ---- head sampling ---- */

struct sampling_head {
    pthread_mutex_t mu; /* guards cache and the bucket */
    uint64_t threshold;
    double rate, burst, tokens;
    int64_t last_ns;
    bool bucket_started;
    struct sampling_cache *cache;
    struct metric_family *decisions, *dropped;
};

struct metric_family *sampling_decisions_family(struct metrics *m)
{
    static const char *const l[] = { "sampler", "policy", "decision" };
    return m ? metrics_family(m, "vigil_sampling_decisions_total",
                              "Trace sampling decisions, by sampler, deciding policy and "
                              "decision.", METRIC_COUNTER, l, 3, NULL, 0)
             : NULL;
}

struct metric_family *sampling_dropped_family(struct metrics *m)
{
    static const char *const l[] = { "sampler" };
    return m ? metrics_family(m, "vigil_sampling_spans_dropped_total",
                              "Spans not stored because their trace was sampled out.",
                              METRIC_COUNTER, l, 1, NULL, 0)
             : NULL;
}

struct sampling_head *sampling_head_new(const struct sampling_head_opts *o, struct metrics *m,
                                        struct vg_err *err)
{
    if (!(o->ratio >= 0 && o->ratio <= 1) || !(o->max_traces_per_second >= 0) ||
        o->cache_size == 0) {
        vg_err_set(err, VG_EINVAL,
                   "head sampling: ratio must be 0 to 1, max_traces_per_second >= 0 and "
                   "the cache at least 1 entry");
        return NULL;
    }
    struct sampling_head *h = vg_calloc(1, sizeof *h);
    if (h)
        h->cache = sampling_cache_new(o->cache_size);
    if (!h || !h->cache) {
        if (h)
            vg_free(h);
        vg_err_set(err, VG_ENOMEM, "out of memory for %zu head sampling decisions",
                   o->cache_size);
        return NULL;
    }
    pthread_mutex_init(&h->mu, NULL);
    h->threshold = sampling_ratio_threshold(o->ratio);
    h->rate = o->max_traces_per_second;
    h->burst = h->rate < 1 ? 1 : h->rate;
    h->tokens = h->burst;
    h->decisions = sampling_decisions_family(m);
    h->dropped = sampling_dropped_family(m);
    return h;
}

void sampling_head_free(struct sampling_head *h)
{
    if (!h)
        return;
    sampling_cache_free(h->cache);
    pthread_mutex_destroy(&h->mu);
    vg_free(h);
}

/* Decisions made in one locked pass, counted after it. */
struct head_counts {
    uint64_t ratio_keep, ratio_drop, rate_keep, rate_drop, spans_dropped;
};

static bool take_token(struct sampling_head *h, int64_t now_ns)
{
    if (!h->bucket_started) {
        h->bucket_started = true;
        h->last_ns = now_ns;
    }
    if (now_ns > h->last_ns) {
        h->tokens += (double)(now_ns - h->last_ns) * h->rate / 1e9;
        if (h->tokens > h->burst)
            h->tokens = h->burst;
        h->last_ns = now_ns;
    }
    if (h->tokens < 1)
        return false;
    h->tokens -= 1;
    return true;
}

/* Under h->mu. */
static bool head_decide(struct sampling_head *h, const uint8_t *id, int64_t now_ns,
                        struct head_counts *hc)
{
    int known = sampling_cache_get(h->cache, id);
    if (known >= 0)
        return known;
    bool keep = sampling_randomness(id) >= h->threshold;
    if (!keep)
        hc->ratio_drop++;
    else if (h->rate <= 0)
        hc->ratio_keep++;
    else if ((keep = take_token(h, now_ns)))
        hc->rate_keep++;
    else
        hc->rate_drop++;
    sampling_cache_put(h->cache, id, keep);
    return keep;
}

static void head_count(struct sampling_head *h, const struct head_counts *hc)
{
    if (!h->decisions)
        return;
    static const struct { size_t off; const char *policy, *decision; } rows[] = {
        { offsetof(struct head_counts, ratio_keep), "probabilistic", "keep" },
        { offsetof(struct head_counts, ratio_drop), "probabilistic", "drop" },
        { offsetof(struct head_counts, rate_keep), "rate_limiting", "keep" },
        { offsetof(struct head_counts, rate_drop), "rate_limiting", "drop" },
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        uint64_t v = *(const uint64_t *)((const char *)hc + rows[i].off);
        if (v)
            metric_add(h->decisions, (double)v, "head", rows[i].policy, rows[i].decision);
    }
    if (hc->spans_dropped)
        metric_add(h->dropped, (double)hc->spans_dropped, "head");
}

bool sampling_head_keep(struct sampling_head *h, const uint8_t id[SPAN_TRACE_ID_LEN],
                        int64_t now_ns)
{
    struct head_counts hc = {0};
    pthread_mutex_lock(&h->mu);
    bool keep = head_decide(h, id, now_ns, &hc);
    pthread_mutex_unlock(&h->mu);
    head_count(h, &hc);
    return keep;
}

size_t sampling_head_filter(struct sampling_head *h, const struct span *spans, size_t n,
                            int64_t now_ns, struct span *out)
{
    struct head_counts hc = {0};
    size_t k = 0;
    pthread_mutex_lock(&h->mu);
    for (size_t i = 0; i < n; i++) {
        /* invalid spans go on to the store, which refuses them with a reason */
        if (span_validate(&spans[i], NULL) < 0 || head_decide(h, spans[i].trace_id, now_ns, &hc))
            out[k++] = spans[i];
        else
            hc.spans_dropped++;
    }
    pthread_mutex_unlock(&h->mu);
    head_count(h, &hc);
    return k;
}

/* ---- both ---- */

struct sampling {
    struct sampling_head *head; /* NULL when off */
    struct tail_sampling *tail; /* NULL when off */
};

struct tail_sampling *sampling_tail(struct sampling *s)
{
    return s ? s->tail : NULL;
}

int sampling_apply(struct sampling *s, const struct span *spans, size_t n, int64_t now_ns,
                   struct span *out, size_t *nout, struct sampling_result *r,
                   struct vg_err *err)
{
    memset(r, 0, sizeof *r);
    if (!s) {
        if (out != spans)
            memmove(out, spans, n * sizeof *spans);
        *nout = n;
        return 0;
    }
    size_t k = n;
    if (s->head) {
        k = sampling_head_filter(s->head, spans, n, now_ns, out);
        r->dropped += n - k;
    } else if (out != spans) {
        memmove(out, spans, n * sizeof *spans);
    }
    /* from here on the spans are in out */
    if (!s->tail) {
        *nout = k;
        return 0;
    }
    /* Invalid spans stay in front (to the store); valid ones go to the tail sampler. The
     * valid ones are packed behind the invalid ones first, in place (out is ours now). */
    size_t bad = 0;
    for (size_t i = 0; i < k; i++)
        if (span_validate(&out[i], NULL) < 0) {
            struct span t = out[bad];
            out[bad++] = out[i];
            out[i] = t;
        }
    size_t npass = 0;
    struct tail_sampling_add_result ar = {0};
    int rc = tail_sampling_add(s->tail, out + bad, k - bad, now_ns, out + bad, &npass, &ar,
                               err);
    r->buffered = ar.buffered;
    r->dropped += ar.late_dropped;
    *nout = bad + npass;
    return rc;
}

int sampling_apply_now(struct vigil *v, const struct span *spans, size_t n, struct span *out,
                       size_t *nout, struct sampling_result *r, struct vg_err *err)
{
    return sampling_apply(v->sampling_state, spans, n, sampling_now_ns(), out, nout, r, err);
}

/* ---- the module ---- */

static struct vg_complaint complain_write;

/* The tail sampler's sink: kept traces stored and counted like a receiver's spans. */
static int tail_write(void *ctx, const struct span *spans, size_t n)
{
    struct vigil *v = ctx;
    struct spanstore_write_result res;
    struct vg_err err;
    vg_err_clear(&err);
    int rc = ingest_write_spans(v, RECV_TAIL, spans, n, &res, &err);
    if (rc < 0)
        vg_complain(&complain_write, 10000, VG_LOG_ERROR, "sampling",
                    "storing tail-sampled traces failed; their spans are lost", err.msg);
    return rc;
}

static int check(const struct config *cfg, struct vg_err *err)
{
    const struct config_node *b = config_block(cfg, "tail_sampling");
    return b ? tail_sampling_check(b, err) : 0;
}

static void mod_free(struct vigil *v)
{
    struct sampling *s = v->sampling_state;
    if (!s)
        return;
    tail_sampling_free(s->tail); /* decides and writes what is buffered */
    sampling_head_free(s->head);
    vg_free(s);
    v->sampling_state = NULL;
}

static int init(struct vigil *v, struct vg_err *err)
{
    const struct config *cfg = v->cfg;
    const struct config_node *b = config_block(cfg, "tail_sampling");
    bool head = cfg->traces_sample_ratio < 1 || cfg->traces_max_traces_per_second > 0;
    if (!head && !b)
        return 0; /* sampling off: ingest_store_spans stores everything */
    struct sampling *s = vg_calloc(1, sizeof *s);
    if (!s)
        return vg_err_set(err, VG_ENOMEM, "out of memory");
    v->sampling_state = s;
    if (head) {
        struct sampling_head_opts o = {
            .ratio = cfg->traces_sample_ratio,
            .max_traces_per_second = (double)cfg->traces_max_traces_per_second,
            .cache_size = (size_t)cfg->traces_sample_cache_size,
        };
        if (!(s->head = sampling_head_new(&o, v->metrics, err)))
            goto fail;
    }
    if (b) {
        struct tail_sampling_sink sink = { tail_write, v };
        if (!(s->tail = tail_sampling_new(b, v->metrics, &sink, err)) ||
            tail_sampling_start(s->tail, err) < 0)
            goto fail;
    }
    return 0;
fail:
    mod_free(v);
    return err->code;
}

const struct vigil_module mod_sampling = {
    .name = "sampling",
    .check = check,
    .init = init,
    .free = mod_free,
};
