/* spanstore_query: the read side of the span store: trace by id, search, and the name
 * and value listings. Key layout: top of spanstore.c.
 *
 * Search plan. Every filter that an index can answer becomes a stream of (time, trace
 * id) entries, newest first across the hour buckets of the window (a term's lists are
 * merged through a heap, see struct tstream): a service, a service
 * and span name (a span name alone is the union over the services seen), a status, a
 * union of duration buckets, an attribute equality on an indexed key (scope "any" is the
 * union of span and resource). Each stream is probed for a few entries; the one that
 * reaches furthest back in time per entry (or runs out first) is the most selective and
 * drives the search; the probed entries are replayed, not read again. With no usable
 * stream the "every trace" entries drive it. Each new trace id from the driver costs one
 * summary read; only when filters remain that the driver does not imply are the trace's
 * spans read (one range read) to find one span that satisfies them all. The search stops
 * at the limit, at the start of the window, or after max_inspect candidates.
 *
 * Every read happens at one LevelDB snapshot, so a search sees one state of the store.
 * keys_read counts every key the search touched (tests assert index use with it). */
#include "spanstore_int.h"

#include "../base/vg_alloc.h"

#include <stdlib.h>
#include <string.h>

#define PROBE 32            /* entries read from each candidate stream to rank them */
#define MAX_UNION 64        /* terms one stream may merge */
#define MAX_LIMIT 10000     /* traces one search may return */
#define DEFAULT_INSPECT 100000
#define LIST_LIMIT 10000

/* ---- the query context: snapshot, counters, hour buckets ---- */

struct qctx {
    struct spanstore *ss;
    struct kv_snapshot *snap, *ixsnap; /* the span database's, the index database's */
    uint64_t keys;
    uint32_t b_lo, b_hi;
    uint32_t *buckets; /* buckets present in [b_lo, b_hi], newest first, found lazily */
    size_t nb, capb;
    bool buckets_done;
    int oom;
};

static void q_init(struct qctx *q, struct spanstore *ss, int64_t from, int64_t to)
{
    memset(q, 0, sizeof *q);
    q->ss = ss;
    /* The head's read lock before the snapshots: postings a flush moves out of the head
     * during the query stay readable there until it ends (span_head.h). */
    span_head_read_begin(ss->head);
    q->snap = kv_snapshot_new(ss->kv);
    q->ixsnap = kv_snapshot_new(ss->ix);
    if (!q->ixsnap) {
        kv_snapshot_free(ss->kv, q->snap);
        q->snap = NULL;
    }
    q->b_lo = span_index_bucket(from);
    q->b_hi = to > 0 ? span_index_bucket(to) : UINT32_MAX;
}

static void q_done(struct qctx *q)
{
    kv_snapshot_free(q->ss->kv, q->snap);
    kv_snapshot_free(q->ss->ix, q->ixsnap);
    span_head_read_end(q->ss->head);
    vg_free(q->buckets);
    atomic_fetch_add(&q->ss->keys_read, q->keys);
}

static struct kv_iter *q_iter(struct qctx *q)
{
    struct kv_iter *it = kv_iter_new(q->ss->kv, q->snap, true);
    if (!it)
        q->oom = 1;
    return it;
}

/* Finds the next older bucket present (one seek and one step back). */
static bool discover_bucket(struct qctx *q)
{
    uint32_t cursor = q->nb ? q->buckets[q->nb - 1] - 1 : q->b_hi;
    if ((q->nb && q->buckets[q->nb - 1] == 0) || cursor < q->b_lo)
        return false;
    struct kv_iter *it = q_iter(q);
    if (!it)
        return false;
    char key[5] = { SPAN_KEY_BUCKET };
    if (cursor == UINT32_MAX) {
        key[0] = SPAN_KEY_BUCKET + 1;
        kv_iter_seek(it, key, 1);
    } else {
        uint32_t next = cursor + 1;
        key[1] = (char)(next >> 24), key[2] = (char)(next >> 16);
        key[3] = (char)(next >> 8), key[4] = (char)next;
        kv_iter_seek(it, key, 5);
    }
    if (kv_iter_valid(it))
        kv_iter_prev(it);
    else
        kv_iter_seek_last(it);
    uint32_t b = 0;
    size_t klen = 0;
    const char *k = kv_iter_valid(it) ? kv_iter_key(it, &klen) : NULL;
    bool ok = k && span_index_key_bucket(k, klen, &b) && b >= q->b_lo && b <= cursor;
    q->keys++;
    kv_iter_free(it);
    if (!ok)
        return false;
    if (q->nb == q->capb) {
        size_t nc = q->capb ? q->capb * 2 : 16;
        uint32_t *nv = vg_realloc(q->buckets, nc * sizeof *nv);
        if (!nv) {
            q->oom = 1;
            return false;
        }
        q->buckets = nv;
        q->capb = nc;
    }
    q->buckets[q->nb++] = b;
    return true;
}

/* The i-th present bucket, newest first. */
static bool bucket_at(struct qctx *q, size_t i, uint32_t *b)
{
    while (i >= q->nb && !q->buckets_done)
        if (!discover_bucket(q))
            q->buckets_done = true;
    if (i >= q->nb)
        return false;
    *b = q->buckets[i];
    return true;
}

static void set_bucket(struct vg_buf *key, uint32_t b)
{
    key->p[1] = (char)(b >> 24), key->p[2] = (char)(b >> 16);
    key->p[3] = (char)(b >> 8), key->p[4] = (char)b;
}

/* ---- trace by id ---- */

struct collect_spans {
    struct vg_arena *a;
    struct span **arr;
    size_t *n, cap;
};

/* Appends one stored span to the trace, decoded from a copy in the arena (the span's
 * strings point into it). */
static int collect_span(void *arg, const void *enc, size_t elen, struct vg_err *err)
{
    struct collect_spans *c = arg;
    char *copy = vg_arena_alloc(c->a, elen ? elen : 1);
    if (!copy)
        return vg_err_set(err, VG_ENOMEM, "spanstore: out of memory for a %zu-byte span", elen);
    memcpy(copy, enc, elen);
    if (*c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 16;
        struct span *nv = vg_arena_alloc(c->a, nc * sizeof *nv);
        if (!nv)
            return vg_err_set(err, VG_ENOMEM, "spanstore: out of memory for %zu spans", nc);
        if (*c->n)
            memcpy(nv, *c->arr, *c->n * sizeof *nv);
        *c->arr = nv;
        c->cap = nc;
    }
    if (span_decode(copy, elen, c->a, &(*c->arr)[*c->n], err))
        return vg_err_prefix(err, "stored span %zu", *c->n);
    ++*c->n;
    return 0;
}

static int by_start(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    if (x->start_ns != y->start_ns)
        return x->start_ns < y->start_ns ? -1 : 1;
    return memcmp(x->span_id, y->span_id, SPAN_ID_LEN);
}

int spanstore_trace_get(struct spanstore *ss, const uint8_t *trace_id,
                        struct spanstore_trace *out, struct vg_err *err)
{
    memset(out, 0, sizeof *out);
    out->arena = vg_arena_new((size_t)64 * 1024);
    if (!out->arena)
        return vg_err_set(err, VG_ENOMEM, "spanstore: out of memory for a trace");
    struct vg_buf key, val;
    vg_buf_init(&key);
    vg_buf_init(&val);
    struct span_index_summary sum;
    bool found;
    int rc = spanstore_read_summary(ss, trace_id, &key, &val, &sum, &found, err);
    uint64_t keys = 0;
    struct collect_spans c = { out->arena, &out->spans, &out->n, 0 };
    if (!rc && found)
        rc = spanstore_trace_values(ss, trace_id, &sum, collect_span, &c, &keys, err);
    vg_buf_free(&key);
    vg_buf_free(&val);
    atomic_fetch_add(&ss->keys_read, keys);
    if (!rc && out->n == 0)
        rc = vg_err_set(err, VG_ENOTFOUND, "trace not found");
    if (!rc)
        qsort(out->spans, out->n, sizeof *out->spans, by_start);
    return rc;
}

void spanstore_trace_free(struct spanstore_trace *t)
{
    if (!t)
        return;
    vg_arena_free(t->arena);
    memset(t, 0, sizeof *t);
}

/* ---- index streams ---- */

struct hit {
    int64_t t;
    uint8_t tid[SPAN_TRACE_ID_LEN];
};

/* One place a term's lists of the current bucket come from: the span database's
 * lists (written before the index database), or one segment of the index database.
 * Lists of one source sort newest first; sources overlap in time. */
struct src {
    bool ix;           /* the index database */
    bool packed;       /* the term's entry in a packed block of segment seg */
    bool fallback;     /* a list source that turns packed if it finds no list */
    bool read_any;     /* a list was read */
    uint64_t seg;
    struct vg_buf pos; /* the key to seek for the source's next list */
    size_t plen;       /* the term prefix in pos */
    bool exact, done;
    int64_t next;      /* exact: the newest posting of the next list; else an upper bound */
};

/* One term's postings across the present buckets, newest first. Within a bucket the
 * postings come from several sources (struct src) and from the head (sorted copy, hp):
 * postings of read lists wait in a heap (newest on top) and leave it, like the head's
 * next posting, only once no list not yet read can hold a newer one, i.e. when they are
 * at least as new as every source's next list. Buckets never mix: a list's postings all
 * lie in its bucket. */
struct tstream {
    struct vg_buf key; /* term key (bucket patched per bucket) */
    size_t plen;
    struct kv_iter *it, *iix;
    size_t bi;
    bool started, have, loaded;
    struct hit cur;
    struct hit *heap; /* pending postings, newest on top */
    size_t nheap, capheap;
    struct src *src;
    size_t nsrc, capsrc;
    struct span_head_posting *hp; /* the head's postings of the term in the bucket */
    size_t nhp, hpos, caphp;
};
/* Filters a stream can stand for. */
enum { F_NONE = -1, F_SERVICE = -2, F_NAME = -3, F_STATUS = -4, F_DURATION = -5 };

struct stream {
    struct tstream ts[MAX_UNION];
    size_t n;
    int filter;  /* F_*, or the index of an attribute filter */
    bool exact;  /* membership implies the filter */
    struct hit buf[PROBE];
    size_t nbuf, pos;
    bool exhausted;
};

static bool hit_newer(const struct hit *a, const struct hit *b)
{
    return a->t != b->t ? a->t > b->t : memcmp(a->tid, b->tid, SPAN_TRACE_ID_LEN) < 0;
}

static bool heap_push(struct tstream *s, const struct hit *h)
{
    if (s->nheap == s->capheap) {
        size_t nc = s->capheap ? s->capheap * 2 : 64;
        struct hit *nv = vg_realloc(s->heap, nc * sizeof *nv);
        if (!nv)
            return false;
        s->heap = nv;
        s->capheap = nc;
    }
    size_t i = s->nheap++;
    while (i && hit_newer(h, &s->heap[(i - 1) / 2])) {
        s->heap[i] = s->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    s->heap[i] = *h;
    return true;
}

static struct hit heap_pop(struct tstream *s)
{
    struct hit top = s->heap[0], last = s->heap[--s->nheap];
    size_t i = 0, n = s->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && hit_newer(&s->heap[c + 1], &s->heap[c]))
            c++;
        if (!hit_newer(&s->heap[c], &last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (n)
        s->heap[i] = last;
    return top;
}

static struct src *src_add(struct qctx *q, struct tstream *s)
{
    if (s->nsrc == s->capsrc) {
        size_t nc = s->capsrc ? s->capsrc * 2 : 8;
        struct src *nv = vg_realloc(s->src, nc * sizeof *nv);
        if (!nv) {
            q->oom = 1;
            return NULL;
        }
        for (size_t i = s->capsrc; i < nc; i++)
            vg_buf_init(&nv[i].pos);
        s->src = nv;
        s->capsrc = nc;
    }
    struct src *r = &s->src[s->nsrc++];
    vg_buf_reset(&r->pos);
    r->exact = r->done = r->packed = r->fallback = r->read_any = false;
    return r;
}

/* Sets pos to prefix and the suffix seeking the first list that may hold a posting at
 * or before `to`: a list newer than `to` may still hold older postings, but only within
 * its slot, so lists newer than to + SPAN_INDEX_LIST_SPAN_NS are skipped. */
static void src_start(struct src *r, const char *prefix, size_t plen, int64_t to)
{
    vg_buf_append(&r->pos, prefix, plen);
    r->plen = plen;
    if (to > 0 && to < INT64_MAX - SPAN_INDEX_LIST_SPAN_NS)
        span_index_put_list_suffix(&r->pos, to + SPAN_INDEX_LIST_SPAN_NS, 0);
}

/* Sets up the sources and the head postings of the term in bucket b. */
static void ts_load(struct qctx *q, struct tstream *s, uint32_t b, int64_t to)
{
    set_bucket(&s->key, b);
    s->key.len = s->plen;
    s->nsrc = 0;
    s->nhp = s->hpos = 0;
    struct src *r = src_add(q, s);
    if (!r)
        return;
    r->ix = false;
    r->next = to > 0 ? to : INT64_MAX;
    src_start(r, s->key.p, s->plen, to);
    struct spanstore *ss = q->ss;
    struct vg_buf pfx;
    vg_buf_init(&pfx);
    uint64_t hv = span_head_hash(s->key.p, s->plen);
    pthread_mutex_lock(&ss->dir_mu);
    for (size_t i = 0; i < ss->nsegs && !q->oom; i++) {
        const struct span_index_seg *g = &ss->segs[i];
        for (size_t j = 0; j < g->nb; j++) {
            if (g->b[j].bucket != b || (to > 0 && g->b[j].min_t > to))
                continue;
            /* The term is a list in this segment, or packed in a block (or absent):
             * the record's listed hashes say where to look, and a list source that
             * finds nothing (a hash collision) falls back to the packed block. Either
             * is read only when its newest possible posting is wanted. */
            if (!(r = src_add(q, s)))
                break;
            r->ix = true;
            r->seg = g->seg;
            r->next = to > 0 && to < g->b[j].max_t ? to : g->b[j].max_t;
            if (span_index_seg_listed(&g->b[j], hv)) {
                r->fallback = true;
                vg_buf_reset(&pfx);
                span_index_seg_term(&pfx, g->seg, s->key.p, s->plen);
                src_start(r, pfx.p, pfx.len, to);
            } else {
                r->packed = true;
            }
            break;
        }
    }
    pthread_mutex_unlock(&ss->dir_mu);
    if (vg_buf_failed(&pfx))
        q->oom = 1;
    vg_buf_free(&pfx);
    for (size_t i = 0; i < s->nsrc; i++)
        if (vg_buf_failed(&s->src[i].pos))
            q->oom = 1;
    if (!span_head_copy(ss->head, s->key.p, s->plen, to, &s->hp, &s->nhp, &s->caphp))
        q->oom = 1;
    s->loaded = true;
}

/* Positions the source's iterator on its next list (seeking pos); marks it done when
 * the term has no more lists there. Leaves the iterator on the list. */
static struct kv_iter *src_seek(struct qctx *q, struct tstream *s, struct src *r)
{
    struct kv_iter *it = r->ix ? s->iix : s->it;
    kv_iter_seek(it, r->pos.p, r->pos.len);
    r->exact = true;
    for (;;) {
        if (!kv_iter_has_prefix(it, r->pos.p, r->plen)) {
            q->keys++; /* the seek read one key past the term */
            if (r->fallback && !r->read_any)
                r->packed = true; /* not listed after all: look in the packed block */
            else
                r->done = true;
            return it;
        }
        size_t klen;
        const char *k = kv_iter_key(it, &klen);
        if (span_index_get_list_suffix(k, klen, &r->next) &&
            klen == r->plen + SPAN_INDEX_LIST_SUFFIX_LEN)
            return it;
        kv_iter_next(it); /* not a list key of this term: skip it */
    }
}

/* Reads the source's next list into the heap (postings newer than `to` are dropped)
 * and remembers where the one after it starts. */
static void src_read(struct qctx *q, struct tstream *s, struct src *r, int64_t to)
{
    struct kv_iter *it = src_seek(q, s, r);
    if (r->done || r->packed)
        return;
    size_t vlen, n;
    const char *v = kv_iter_value(it, &vlen);
    q->keys++;
    r->read_any = true;
    if (span_index_list_count(vlen, &n)) {
        for (size_t i = 0; i < n; i++) {
            struct hit h;
            span_index_get_posting(v + i * SPAN_INDEX_SUFFIX_LEN, &h.t, h.tid);
            if ((to <= 0 || h.t <= to) && !heap_push(s, &h)) {
                q->oom = 1;
                return;
            }
        }
    }
    kv_iter_next(it);
    size_t klen;
    const char *k = kv_iter_valid(it) ? kv_iter_key(it, &klen) : NULL;
    if (!k || klen < r->plen || memcmp(k, r->pos.p, r->plen) != 0) {
        r->done = true;
        return;
    }
    vg_buf_reset(&r->pos);
    vg_buf_append(&r->pos, k, klen);
    if (vg_buf_failed(&r->pos))
        q->oom = 1;
    /* the next read seeks to pos again: the iterator is shared by the sources */
    r->exact = span_index_get_list_suffix(k, klen, &r->next);
    if (!r->exact)
        r->next = INT64_MAX;
}

/* Moves the term's postings packed in the source's segment (if any) to the heap. */
static void pack_read(struct qctx *q, struct tstream *s, struct src *r, int64_t to)
{
    const char *pp;
    size_t np = 0;
    r->done = true;
    q->keys++;
    if (spanstore_seg_packed(s->iix, r->seg, s->key.p, s->plen, &r->pos, &pp, &np) ==
        VG_ENOMEM)
        q->oom = 1;
    for (size_t x = 0; x < np; x++) {
        struct hit h;
        span_index_get_posting(pp + x * SPAN_INDEX_SUFFIX_LEN, &h.t, h.tid);
        if ((to <= 0 || h.t <= to) && !heap_push(s, &h)) {
            q->oom = 1;
            return;
        }
    }
}

static void ts_advance(struct qctx *q, struct tstream *s, int64_t to)
{
    s->started = true;
    s->have = false;
    uint32_t b;
    while (!q->oom) {
        if (!s->loaded) {
            if (!bucket_at(q, s->bi, &b))
                return;
            ts_load(q, s, b, to);
            continue;
        }
        /* the source whose next list may hold the newest posting */
        struct src *best = NULL;
        for (size_t i = 0; i < s->nsrc; i++) {
            struct src *r = &s->src[i];
            if (!r->done && (!best || r->next > best->next))
                best = r;
        }
        bool head = s->hpos < s->nhp;
        struct hit hh = { 0 };
        if (head) {
            hh.t = s->hp[s->hpos].t;
            memcpy(hh.tid, s->hp[s->hpos].tid, SPAN_TRACE_ID_LEN);
        }
        bool heap = s->nheap > 0;
        bool use_head = head && (!heap || hit_newer(&hh, &s->heap[0]));
        if ((head || heap) && (!best || (use_head ? hh.t : s->heap[0].t) >= best->next)) {
            if (use_head) {
                s->cur = hh;
                s->hpos++;
            } else {
                s->cur = heap_pop(s);
            }
            s->have = true;
            return;
        }
        if (best) {
            if (best->packed)
                pack_read(q, s, best, to);
            else if (best->exact)
                src_read(q, s, best, to);
            else
                src_seek(q, s, best); /* next was an upper bound: find the real one */
            continue;
        }
        s->loaded = false; /* the bucket is exhausted */
        s->bi++;
    }
}

static bool stream_add(struct qctx *q, struct stream *st, const struct span_index_term *t)
{
    if (st->n == MAX_UNION)
        return false;
    struct tstream *s = &st->ts[st->n];
    memset(s, 0, sizeof *s);
    vg_buf_init(&s->key);
    span_index_term_key(&s->key, 0, t);
    s->plen = s->key.len;
    s->it = q_iter(q);
    s->iix = kv_iter_new(q->ss->ix, q->ixsnap, true);
    st->n++;
    if (!s->it || !s->iix || vg_buf_failed(&s->key)) {
        q->oom = 1;
        return false;
    }
    return true;
}

static void stream_free(struct stream *st)
{
    for (size_t i = 0; i < st->n; i++) {
        struct tstream *s = &st->ts[i];
        kv_iter_free(s->it);
        kv_iter_free(s->iix);
        vg_buf_free(&s->key);
        vg_free(s->heap);
        for (size_t j = 0; j < s->capsrc; j++)
            vg_buf_free(&s->src[j].pos);
        vg_free(s->src);
        vg_free(s->hp);
    }
    st->n = 0;
}

/* The next entry of the merged terms, newest first; false at the end or past from. */
static bool stream_pull(struct qctx *q, struct stream *st, int64_t from, int64_t to,
                        struct hit *h)
{
    struct tstream *best = NULL;
    for (size_t i = 0; i < st->n; i++) {
        struct tstream *s = &st->ts[i];
        if (!s->started)
            ts_advance(q, s, to);
        if (s->have && (!best || s->cur.t > best->cur.t))
            best = s;
    }
    if (!best || best->cur.t < from)
        return false;
    *h = best->cur;
    ts_advance(q, best, to);
    return true;
}

static bool stream_next(struct qctx *q, struct stream *st, int64_t from, int64_t to,
                        struct hit *h)
{
    if (st->pos < st->nbuf) {
        *h = st->buf[st->pos++];
        return true;
    }
    return !st->exhausted && stream_pull(q, st, from, to, h);
}

static void stream_probe(struct qctx *q, struct stream *st, int64_t from, int64_t to)
{
    while (st->nbuf < PROBE) {
        if (!stream_pull(q, st, from, to, &st->buf[st->nbuf])) {
            st->exhausted = true;
            return;
        }
        st->nbuf++;
    }
}

/* Estimated entries in the window: exact when the probe ran out, else extrapolated
 * from how far back in time the probe reached. */
static double stream_estimate(const struct stream *st, int64_t top, int64_t from)
{
    if (st->exhausted)
        return (double)st->nbuf;
    double reach = (double)(top - st->buf[st->nbuf - 1].t) + 1.0;
    return (double)PROBE * ((double)(top - from) + 1.0) / reach + PROBE;
}

/* ---- turning the query into streams ---- */

static bool attr_indexable(const struct spanstore *ss, const struct spanstore_attr_filter *f)
{
    return f->m->op == MATCH_EQ && f->m->value_len <= SPAN_INDEX_MAX_VALUE &&
           spanstore_is_indexed(ss, vg_str_c(f->m->name)) &&
           strcmp(f->m->name, "service.name") != 0;
}

/* Services seen in the window (for a span name without a service). */
static int services_in(struct qctx *q, struct vg_str **out, size_t *n);

static int plan_streams(struct qctx *q, const struct spanstore_query *qu, struct stream *st,
                        size_t *nst)
{
    size_t n = 0;
    struct span_index_term t;
    if (qu->service.len && qu->span_name.len) {
        t = (struct span_index_term){ .kind = SPAN_IX_NAME, .a = qu->service, .b = qu->span_name };
        st[n].filter = F_NAME, st[n].exact = true;
        stream_add(q, &st[n++], &t);
    } else if (qu->service.len) {
        t = (struct span_index_term){ .kind = SPAN_IX_SERVICE, .a = qu->service };
        st[n].filter = F_SERVICE, st[n].exact = true;
        stream_add(q, &st[n++], &t);
    } else if (qu->span_name.len) {
        struct vg_str *svc = NULL;
        size_t ns = 0;
        if (services_in(q, &svc, &ns))
            return VG_ENOMEM;
        if (ns > 0 && ns <= MAX_UNION) {
            st[n].filter = F_NAME, st[n].exact = true;
            for (size_t i = 0; i < ns; i++) {
                t = (struct span_index_term){ .kind = SPAN_IX_NAME, .a = svc[i],
                                              .b = qu->span_name };
                stream_add(q, &st[n], &t);
            }
            n++;
        }
        for (size_t i = 0; i < ns; i++)
            vg_free((void *)svc[i].p);
        vg_free(svc);
    }
    if (qu->status >= 0 && qu->status <= SPAN_STATUS_MAX) {
        t = (struct span_index_term){ .kind = SPAN_IX_STATUS, .byte = (uint8_t)qu->status };
        st[n].filter = F_STATUS, st[n].exact = true;
        stream_add(q, &st[n++], &t);
    }
    if (qu->min_duration_ns > 0 || qu->max_duration_ns > 0) {
        uint8_t lo = span_index_duration_bucket(qu->min_duration_ns);
        uint8_t hi = qu->max_duration_ns > 0 ? span_index_duration_bucket(qu->max_duration_ns)
                                             : span_index_duration_bucket(INT64_MAX);
        if (lo <= hi && (size_t)(hi - lo) < MAX_UNION) {
            st[n].filter = F_DURATION, st[n].exact = false;
            for (unsigned b = lo; b <= hi; b++) {
                t = (struct span_index_term){ .kind = SPAN_IX_DURATION, .byte = (uint8_t)b };
                stream_add(q, &st[n], &t);
            }
            n++;
        }
    }
    for (size_t i = 0; i < qu->nattrs && n < 8; i++) {
        const struct spanstore_attr_filter *f = &qu->attrs[i];
        if (!attr_indexable(q->ss, f))
            continue;
        st[n].filter = (int)i, st[n].exact = true;
        t = (struct span_index_term){ .kind = SPAN_IX_ATTR, .a = vg_str_c(f->m->name),
                                      .b = { f->m->value, f->m->value_len } };
        if (f->scope != SPANSTORE_SCOPE_RESOURCE) {
            t.byte = SPAN_SCOPE_SPAN;
            stream_add(q, &st[n], &t);
        }
        if (f->scope != SPANSTORE_SCOPE_SPAN) {
            t.byte = SPAN_SCOPE_RESOURCE;
            stream_add(q, &st[n], &t);
        }
        n++;
    }
    if (n == 0) {
        t = (struct span_index_term){ .kind = SPAN_IX_ALL };
        st[n].filter = F_NONE, st[n].exact = true;
        stream_add(q, &st[n++], &t);
    }
    *nst = n;
    return q->oom ? VG_ENOMEM : 0;
}

/* ---- verification ---- */

static bool attr_in(const struct span_attr *a, size_t n, const struct matcher *m,
                    struct vg_buf *text)
{
    for (size_t i = 0; i < n; i++) {
        if (!vg_str_eq_c(a[i].key, m->name))
            continue;
        vg_buf_reset(text);
        if (span_attr_text(&a[i], text) &&
            matcher_matches(m, (struct vg_str){ text->p ? text->p : "", text->len }))
            return true;
    }
    return false;
}

static bool attr_matches(const struct span *s, const struct spanstore_attr_filter *f,
                         struct vg_buf *text)
{
    if (f->scope != SPANSTORE_SCOPE_SPAN) {
        if (strcmp(f->m->name, "service.name") == 0 && matcher_matches(f->m, s->service))
            return true;
        if (attr_in(s->resource_attrs, s->nresource_attrs, f->m, text))
            return true;
    }
    return f->scope != SPANSTORE_SCOPE_RESOURCE && attr_in(s->attrs, s->nattrs, f->m, text);
}

static bool span_matches(const struct spanstore_query *q, const struct span *s, int64_t to,
                         struct vg_buf *text)
{
    int64_t dur = s->end_ns - s->start_ns;
    if (s->start_ns < q->from_ns || s->start_ns > to ||
        (q->service.len && !vg_str_eq(q->service, s->service)) ||
        (q->span_name.len && !vg_str_eq(q->span_name, s->name)) ||
        (q->status >= 0 && (int)s->status != q->status) ||
        (q->kind >= 0 && (int)s->kind != q->kind) ||
        (q->min_duration_ns > 0 && dur < q->min_duration_ns) ||
        (q->max_duration_ns > 0 && dur > q->max_duration_ns))
        return false;
    for (size_t i = 0; i < q->nattrs; i++)
        if (!attr_matches(s, &q->attrs[i], text))
            return false;
    return true;
}

/* How many span-level filters the query has, and whether the driver implies all. */
static bool needs_spans(const struct spanstore_query *q, const struct stream *drv)
{
    size_t filters = (q->service.len || q->span_name.len) + (q->status >= 0) +
                     (q->kind >= 0) + (q->min_duration_ns > 0 || q->max_duration_ns > 0) +
                     q->nattrs;
    size_t implied = drv->exact && drv->filter != F_NONE;
    if (drv->filter == F_SERVICE && q->span_name.len)
        implied = 0;
    return filters > implied;
}

struct match_ctx {
    const struct spanstore_query *qu;
    int64_t to;
    struct vg_arena *scratch;
    struct vg_buf *text;
    bool *match;
};

static int match_span(void *arg, const void *enc, size_t elen, struct vg_err *err)
{
    struct match_ctx *m = arg;
    struct span s;
    vg_arena_reset(m->scratch);
    int rc = span_decode(enc, elen, m->scratch, &s, err);
    if (rc)
        return rc;
    *m->match = span_matches(m->qu, &s, m->to, m->text);
    return *m->match ? 1 : 0;
}

/* Reads the trace's spans (its summary is sum) until one matches every span-level
 * filter. */
static int trace_has_span(struct qctx *q, const struct spanstore_query *qu, int64_t to,
                          const uint8_t *tid, const struct span_index_summary *sum,
                          struct vg_arena *scratch, struct vg_buf *text, bool *match,
                          struct vg_err *err)
{
    *match = false;
    struct match_ctx m = { qu, to, scratch, text, match };
    uint64_t keys = 0;
    int rc = spanstore_trace_values(q->ss, tid, sum, match_span, &m, &keys, err);
    q->keys += keys;
    if (!rc && vg_buf_failed(text)) /* a value that could not be compared */
        rc = vg_err_set(err, VG_ENOMEM, "spanstore search: out of memory matching");
    return rc;
}

/* ---- the seen set of trace ids ---- */

struct idset {
    uint8_t (*ids)[SPAN_TRACE_ID_LEN];
    size_t n, cap; /* cap is a power of two; all-zero = free (ids are never zero) */
};

static bool idset_insert(struct idset *s, const uint8_t *id, bool *oom)
{
    if ((s->n + 1) * 2 > s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 1024;
        uint8_t(*nv)[SPAN_TRACE_ID_LEN] = vg_calloc(nc, SPAN_TRACE_ID_LEN);
        if (!nv) {
            *oom = true;
            return false;
        }
        for (size_t i = 0; i < s->cap; i++) {
            static const uint8_t zero[SPAN_TRACE_ID_LEN];
            if (!memcmp(s->ids[i], zero, SPAN_TRACE_ID_LEN))
                continue;
            uint64_t h;
            memcpy(&h, s->ids[i] + 4, sizeof h);
            size_t j = (size_t)h & (nc - 1);
            while (memcmp(nv[j], zero, SPAN_TRACE_ID_LEN) != 0)
                j = (j + 1) & (nc - 1);
            memcpy(nv[j], s->ids[i], SPAN_TRACE_ID_LEN);
        }
        vg_free(s->ids);
        s->ids = nv;
        s->cap = nc;
    }
    static const uint8_t zero[SPAN_TRACE_ID_LEN];
    uint64_t h;
    memcpy(&h, id + 4, sizeof h);
    size_t j = (size_t)h & (s->cap - 1);
    while (memcmp(s->ids[j], zero, SPAN_TRACE_ID_LEN) != 0) {
        if (!memcmp(s->ids[j], id, SPAN_TRACE_ID_LEN))
            return false;
        j = (j + 1) & (s->cap - 1);
    }
    memcpy(s->ids[j], id, SPAN_TRACE_ID_LEN);
    s->n++;
    return true;
}

/* ---- search ---- */

void spanstore_query_init(struct spanstore_query *q)
{
    memset(q, 0, sizeof *q);
    q->status = -1;
    q->kind = -1;
    q->limit = 20;
}

static int by_start_desc(const void *a, const void *b)
{
    const struct spanstore_trace_summary *x = a, *y = b;
    if (x->start_ns != y->start_ns)
        return x->start_ns > y->start_ns ? -1 : 1;
    return memcmp(x->trace_id, y->trace_id, SPAN_TRACE_ID_LEN);
}

/* Checks one candidate and appends its summary when it matches. */
static int consider(struct qctx *q, const struct spanstore_query *qu, int64_t to,
                    const uint8_t *tid, bool verify, struct spanstore_search_result *out,
                    struct vg_arena *scratch, struct vg_buf *bufs, struct vg_err *err)
{
    vg_buf_reset(&bufs[0]);
    span_index_summary_key(&bufs[0], tid);
    if (vg_buf_failed(&bufs[0]))
        return vg_err_set(err, VG_ENOMEM, "spanstore search: out of memory");
    int rc = kv_get(q->ss->kv, q->snap, bufs[0].p, bufs[0].len, &bufs[1], err);
    q->keys++;
    if (rc == VG_ENOTFOUND)
        return 0; /* deleted by retention after the index entry was read */
    struct span_index_summary sum;
    if (!rc)
        rc = span_index_summary_decode(bufs[1].p, bufs[1].len, &sum, err);
    if (rc)
        return rc;
    int64_t dur = sum.end_ns - sum.start_ns;
    if ((qu->min_trace_duration_ns > 0 && dur < qu->min_trace_duration_ns) ||
        (qu->max_trace_duration_ns > 0 && dur > qu->max_trace_duration_ns))
        return 0;
    if (verify) {
        bool match;
        rc = trace_has_span(q, qu, to, tid, &sum, scratch, &bufs[2], &match, err);
        if (rc || !match)
            return rc;
    }
    struct spanstore_trace_summary *r = &out->traces[out->n];
    memcpy(r->trace_id, tid, SPAN_TRACE_ID_LEN);
    r->start_ns = sum.start_ns;
    r->end_ns = sum.end_ns;
    r->spans = sum.spans;
    r->errors = sum.errors;
    r->has_root = sum.has_root;
    char *svc = vg_arena_strndup(out->arena, sum.root_service.p, sum.root_service.len);
    char *name = vg_arena_strndup(out->arena, sum.root_name.p, sum.root_name.len);
    if (!svc || !name)
        return vg_err_set(err, VG_ENOMEM, "spanstore search: out of memory");
    r->root_service = (struct vg_str){ svc, sum.root_service.len };
    r->root_name = (struct vg_str){ name, sum.root_name.len };
    out->n++;
    return 0;
}

static int run_search(struct qctx *q, const struct spanstore_query *qu, struct stream *st,
                      size_t nst, struct spanstore_search_result *out, struct vg_err *err)
{
    int64_t from = qu->from_ns, to = qu->to_ns > 0 ? qu->to_ns : INT64_MAX;
    int64_t top = qu->to_ns > 0 ? qu->to_ns : INT64_MIN;
    size_t drv = 0;
    if (nst > 1) {
        for (size_t i = 0; i < nst; i++) {
            stream_probe(q, &st[i], from, qu->to_ns);
            if (st[i].nbuf && st[i].buf[0].t > top && qu->to_ns <= 0)
                top = st[i].buf[0].t;
        }
        for (size_t i = 1; i < nst; i++)
            if (stream_estimate(&st[i], top, from) < stream_estimate(&st[drv], top, from))
                drv = i;
        for (size_t i = 0; i < nst; i++)
            if (i != drv)
                stream_free(&st[i]); /* its iterators are no longer needed */
    }
    if (q->oom)
        return vg_err_set(err, VG_ENOMEM, "spanstore search: out of memory");
    bool verify = needs_spans(qu, &st[drv]);
    size_t limit = qu->limit ? qu->limit : 20;
    limit = limit > MAX_LIMIT ? MAX_LIMIT : limit;
    size_t max_inspect = qu->max_inspect ? qu->max_inspect : DEFAULT_INSPECT;
    out->traces = vg_arena_alloc(out->arena, limit * sizeof *out->traces);
    struct vg_arena *scratch = vg_arena_new((size_t)16 * 1024);
    struct vg_buf bufs[3];
    for (int i = 0; i < 3; i++)
        vg_buf_init(&bufs[i]);
    struct idset seen = { 0 };
    bool oom = !out->traces || !scratch;
    int rc = 0;
    struct hit h;
    while (!rc && !oom && out->n < limit && stream_next(q, &st[drv], from, qu->to_ns, &h)) {
        if (!idset_insert(&seen, h.tid, &oom))
            continue;
        if (out->inspected++ >= max_inspect) {
            out->truncated = true;
            break;
        }
        rc = consider(q, qu, to, h.tid, verify, out, scratch, bufs, err);
    }
    if (!rc && (oom || q->oom))
        rc = vg_err_set(err, VG_ENOMEM, "spanstore search: out of memory");
    for (int i = 0; i < 3; i++)
        vg_buf_free(&bufs[i]);
    vg_free(seen.ids);
    vg_arena_free(scratch);
    if (!rc)
        qsort(out->traces, out->n, sizeof *out->traces, by_start_desc);
    return rc;
}

int spanstore_search(struct spanstore *ss, const struct spanstore_query *qu,
                     struct spanstore_search_result *out, struct vg_err *err)
{
    memset(out, 0, sizeof *out);
    out->arena = vg_arena_new((size_t)16 * 1024);
    struct stream *st = vg_calloc(8, sizeof *st);
    if (!out->arena || !st) {
        vg_free(st);
        return vg_err_set(err, VG_ENOMEM, "spanstore search: out of memory");
    }
    struct qctx q;
    q_init(&q, ss, qu->from_ns, qu->to_ns);
    size_t nst = 0;
    int rc = q.snap ? plan_streams(&q, qu, st, &nst) : VG_ENOMEM;
    if (rc)
        vg_err_set(err, rc, "spanstore search: out of memory planning");
    else
        rc = run_search(&q, qu, st, nst, out, err);
    for (size_t i = 0; i < 8; i++)
        stream_free(&st[i]);
    vg_free(st);
    out->keys_read = q.keys;
    q_done(&q);
    return rc;
}

void spanstore_search_free(struct spanstore_search_result *r)
{
    if (!r)
        return;
    vg_arena_free(r->arena);
    memset(r, 0, sizeof *r);
}

/* ---- listings ---- */

struct termvec {
    struct span_index_term *v;
    size_t n, cap;
    struct vg_arena *arena;
};

static int term_cmp(const void *a, const void *b)
{
    const struct span_index_term *x = a, *y = b;
    int c = (int)x->byte - (int)y->byte;
    if (!c)
        c = vg_str_cmp(x->a, y->a);
    if (!c)
        c = vg_str_cmp(x->b, y->b);
    if (!c)
        c = (int)x->op_kind - (int)y->op_kind;
    return c ? c : (int)x->vtype - (int)y->vtype;
}

static bool termvec_push(struct termvec *tv, const struct span_index_term *t)
{
    if (tv->n == tv->cap) {
        size_t nc = tv->cap ? tv->cap * 2 : 64;
        struct span_index_term *nv = vg_realloc(tv->v, nc * sizeof *nv);
        if (!nv)
            return false;
        tv->v = nv;
        tv->cap = nc;
    }
    struct span_index_term c = *t;
    c.a.p = vg_arena_strndup(tv->arena, t->a.len ? t->a.p : "", t->a.len);
    c.b.p = vg_arena_strndup(tv->arena, t->b.len ? t->b.p : "", t->b.len);
    if (!c.a.p || !c.b.p)
        return false;
    tv->v[tv->n++] = c;
    return true;
}

/* Sorts and drops repeats; returns the count kept. */
static size_t termvec_unique(struct termvec *tv)
{
    if (tv->n < 2)
        return tv->n;
    qsort(tv->v, tv->n, sizeof *tv->v, term_cmp);
    size_t w = 1;
    for (size_t i = 1; i < tv->n; i++)
        if (term_cmp(&tv->v[w - 1], &tv->v[i]))
            tv->v[w++] = tv->v[i];
    return tv->n = w;
}

/* Collects the registry entries of kind (and the bytes sub after the kind) in every
 * present bucket of the window, stopping at hard_cap distinct-or-not entries. */
static int collect(struct qctx *q, enum span_index_kind kind, const struct vg_buf *sub,
                   struct termvec *tv, size_t hard_cap, bool *truncated, struct vg_err *err)
{
    struct vg_buf pfx;
    vg_buf_init(&pfx);
    span_index_kind_prefix(&pfx, 0, kind);
    if (sub)
        vg_buf_append(&pfx, sub->p, sub->len);
    struct kv_iter *it = vg_buf_failed(&pfx) ? NULL : q_iter(q);
    int rc = it ? 0 : vg_err_set(err, VG_ENOMEM, "spanstore: out of memory listing");
    uint32_t b;
    for (size_t i = 0; !rc && bucket_at(q, i, &b); i++) {
        set_bucket(&pfx, b);
        for (kv_iter_seek(it, pfx.p, pfx.len); !rc && kv_iter_has_prefix(it, pfx.p, pfx.len);
             kv_iter_next(it)) {
            size_t klen;
            const char *k = kv_iter_key(it, &klen);
            struct span_index_term t;
            q->keys++;
            if (span_index_term_parse(k, klen, &t, err) != 0)
                continue; /* not ours to judge: skip a malformed registry key */
            if (tv->n >= 2 * hard_cap && termvec_unique(tv) >= hard_cap) {
                *truncated = true;
                break;
            }
            if (!termvec_push(tv, &t))
                rc = vg_err_set(err, VG_ENOMEM, "spanstore: out of memory listing");
        }
        if (*truncated)
            break;
    }
    if (!rc && it)
        rc = kv_iter_error(it, err);
    if (!rc && q->oom)
        rc = vg_err_set(err, VG_ENOMEM, "spanstore: out of memory listing");
    kv_iter_free(it);
    vg_buf_free(&pfx);
    termvec_unique(tv);
    return rc;
}

static int services_in(struct qctx *q, struct vg_str **out, size_t *n)
{
    struct termvec tv = { .arena = vg_arena_new(4096) };
    bool trunc = false;
    struct vg_err err;
    *out = NULL;
    *n = 0;
    int rc = tv.arena ? collect(q, SPAN_REG_SERVICE, NULL, &tv, MAX_UNION + 1, &trunc, &err)
                      : VG_ENOMEM;
    if (!rc && tv.n) {
        *out = vg_calloc(tv.n, sizeof **out);
        for (size_t i = 0; *out && i < tv.n; i++) {
            (*out)[i].p = vg_strndup(tv.v[i].a.p, tv.v[i].a.len);
            (*out)[i].len = tv.v[i].a.len;
            if (!(*out)[i].p)
                rc = VG_ENOMEM;
            *n = i + 1;
        }
        if (!*out)
            rc = VG_ENOMEM;
    }
    vg_free(tv.v);
    vg_arena_free(tv.arena);
    return rc;
}

/* Runs a listing: collects kind (restricted by each of subs in turn, or by nothing when
 * nsubs is 0) in the window into tv, whose arena is out's. */
static int list_run(struct spanstore *ss, int64_t from, int64_t to, enum span_index_kind kind,
                    const struct vg_buf *subs, size_t nsubs, size_t limit,
                    struct spanstore_list *out, struct termvec *tv, struct vg_err *err)
{
    memset(out, 0, sizeof *out);
    memset(tv, 0, sizeof *tv);
    out->arena = vg_arena_new((size_t)16 * 1024);
    if (!out->arena)
        return vg_err_set(err, VG_ENOMEM, "spanstore: out of memory listing");
    tv->arena = out->arena;
    size_t cap = limit ? limit : LIST_LIMIT;
    struct qctx q;
    q_init(&q, ss, from, to);
    int rc = q.snap ? 0 : vg_err_set(err, VG_ENOMEM, "spanstore: out of memory listing");
    for (size_t i = 0; !rc && i < (nsubs ? nsubs : 1); i++)
        rc = collect(&q, kind, nsubs ? &subs[i] : NULL, tv, cap, &out->truncated, err);
    q_done(&q);
    termvec_unique(tv);
    if (tv->n > cap) {
        tv->n = cap;
        out->truncated = true;
    }
    return rc;
}

static enum spanstore_scope scope_of(uint8_t b)
{
    return b == SPAN_SCOPE_RESOURCE ? SPANSTORE_SCOPE_RESOURCE : SPANSTORE_SCOPE_SPAN;
}

static int list_tags(struct spanstore *ss, int64_t from, int64_t to,
                     enum spanstore_scope scope, const struct vg_str *key, size_t limit,
                     struct spanstore_list *out, struct vg_err *err)
{
    static const uint8_t scopes[2] = { SPAN_SCOPE_SPAN, SPAN_SCOPE_RESOURCE };
    struct vg_buf subs[2];
    size_t nsubs = 0;
    vg_buf_init(&subs[0]);
    vg_buf_init(&subs[1]);
    for (int i = 0; i < 2; i++) {
        if (scope != SPANSTORE_SCOPE_ANY && scope_of(scopes[i]) != scope)
            continue;
        vg_buf_putc(&subs[nsubs], (char)scopes[i]);
        if (key)
            span_put_str(&subs[nsubs], *key);
        nsubs++;
    }
    struct termvec tv;
    int rc = list_run(ss, from, to, key ? SPAN_REG_VALUE : SPAN_REG_KEY, subs, nsubs, limit,
                      out, &tv, err);
    for (size_t i = 0; !rc && i < nsubs; i++)
        if (vg_buf_failed(&subs[i]))
            rc = vg_err_set(err, VG_ENOMEM, "spanstore: out of memory listing");
    if (!rc && tv.n) {
        out->tags = vg_arena_alloc(out->arena, tv.n * sizeof *out->tags);
        if (!out->tags)
            rc = vg_err_set(err, VG_ENOMEM, "spanstore: out of memory listing");
        for (size_t i = 0; out->tags && i < tv.n; i++)
            out->tags[out->n++] = (struct spanstore_tag){
                .scope = scope_of(tv.v[i].byte), .type = (enum span_val_type)tv.v[i].vtype,
                .key = tv.v[i].a, .value = tv.v[i].b };
    }
    vg_free(tv.v);
    vg_buf_free(&subs[0]);
    vg_buf_free(&subs[1]);
    return rc;
}

int spanstore_tag_names(struct spanstore *ss, int64_t from_ns, int64_t to_ns,
                        enum spanstore_scope scope, size_t limit, struct spanstore_list *out,
                        struct vg_err *err)
{
    return list_tags(ss, from_ns, to_ns, scope, NULL, limit, out, err);
}

int spanstore_tag_values(struct spanstore *ss, int64_t from_ns, int64_t to_ns,
                         enum spanstore_scope scope, struct vg_str key, size_t limit,
                         struct spanstore_list *out, struct vg_err *err)
{
    return list_tags(ss, from_ns, to_ns, scope, &key, limit, out, err);
}

int spanstore_services(struct spanstore *ss, int64_t from_ns, int64_t to_ns,
                       struct spanstore_list *out, struct vg_err *err)
{
    struct termvec tv;
    int rc = list_run(ss, from_ns, to_ns, SPAN_REG_SERVICE, NULL, 0, 0, out, &tv, err);
    if (!rc && tv.n) {
        out->names = vg_arena_alloc(out->arena, tv.n * sizeof *out->names);
        if (!out->names)
            rc = vg_err_set(err, VG_ENOMEM, "spanstore: out of memory listing");
        for (size_t i = 0; out->names && i < tv.n; i++)
            out->names[out->n++] = tv.v[i].a;
    }
    vg_free(tv.v);
    return rc;
}

int spanstore_operations(struct spanstore *ss, int64_t from_ns, int64_t to_ns,
                         struct vg_str service, struct spanstore_list *out,
                         struct vg_err *err)
{
    struct vg_buf sub;
    vg_buf_init(&sub);
    span_put_str(&sub, service);
    struct termvec tv = { 0 };
    int rc = vg_buf_failed(&sub) ? vg_err_set(err, VG_ENOMEM, "spanstore: out of memory")
                                 : list_run(ss, from_ns, to_ns, SPAN_REG_OP, &sub,
                                            service.len ? 1 : 0, 0, out, &tv, err);
    if (!rc && tv.n) {
        out->ops = vg_arena_alloc(out->arena, tv.n * sizeof *out->ops);
        if (!out->ops)
            rc = vg_err_set(err, VG_ENOMEM, "spanstore: out of memory listing");
        for (size_t i = 0; out->ops && i < tv.n; i++)
            out->ops[out->n++] = (struct spanstore_op){ tv.v[i].a, tv.v[i].b,
                                                        (enum span_kind)tv.v[i].op_kind };
    }
    vg_free(tv.v);
    vg_buf_free(&sub);
    return rc;
}

void spanstore_list_free(struct spanstore_list *l)
{
    if (!l)
        return;
    vg_arena_free(l->arena);
    memset(l, 0, sizeof *l);
}
