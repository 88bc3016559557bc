/* logstore_query: the read side of the log store (contracts in logstore.h, key layout
 * in logstore.c).
 *
 * A query captures, under the head lock, a LevelDB snapshot with an iterator on it (a
 * consistent view) and a reference to each selected stream's head and sealed-but-
 * unwritten heads, so it sees every push completely or not at all, and never twice: a
 * sealed head written to LevelDB after the capture is not in the view, and one written
 * before but not yet dropped from memory is recognised by its chunk key and skipped in
 * the view.
 *
 * Merging: a heap of sources ordered by time (smallest first forward, largest first
 * backward). A source is one of
 *   MEM    captured head entries in [start, end), sorted;
 *   CHUNK  an opened (decompressed) chunk;
 *   PEND   a chunk whose header passed the time and token checks, not yet opened, keyed
 *          by the first time it can emit: it is opened only when that time comes up,
 *          so a query with a limit decompresses only the chunks it needs. It holds
 *          only the chunk's key: the value is read again through an iterator of the
 *          query's snapshot when the chunk is inflated and decompressed where LevelDB
 *          keeps it (mapped table files), so the sources a FRONT bound lets the merge
 *          read ahead (up to S of time) cost a few bytes each, not a copy of each chunk;
 *   FRONT  the rest of a stream's chunks in LevelDB, keyed by a bound on what they can
 *          emit. Chunk keys are ordered by maxt and a chunk spans at most S =
 *          chunk_max_span_ns, so after reading the chunk with newest time m, every
 *          unread one holds only times >= m - S (forward) or <= m (backward).
 * Bounds are never beyond what a source can emit, so entries come out in order even
 * when out-of-order writes made a stream's chunks overlap.
 *
 * Decompressing ahead (query_workers > 0): every PEND source is also queued for a small
 * pool of worker threads, started at the query's first PEND, each with its own iterator
 * on the snapshot. They inflate the queued source that comes first in the merge's
 * order, into the source itself, and pause
 * while AHEAD_PER_WORKER sources per worker are inflated (or being inflated) and not
 * yet taken, so memory stays bounded and a query that stops early wastes little. When
 * the merge reaches a PEND source it takes it: inflated already, being inflated (it
 * waits for that one), or still queued (it removes it and inflates it itself, so the
 * query's thread works too rather than waiting). The queue and the sources' pool
 * states change only under the pool's lock; a worker writes only the view and result
 * of the source it is inflating; logstore_iter_free joins the workers before freeing
 * any source. Entries, their order and the statistics are the same with or without
 * workers (chunks_opened counts the chunks the merge took).
 *
 * Line needles: an inflated chunk (by a worker, or by the merge) is searched as one
 * buffer for the longest needle with lsearch_find (lsearch.h: SIMD, far faster than
 * memmem for the short needles of filters); each hit is mapped to its entry through
 * the view's offsets and kept only when it lies inside that entry's line and the line
 * holds the other needles, and the view's index is compacted to the kept entries, so
 * the merge never sees the others. Captured head entries are checked line by line. */
#include "logstore_int.h"
#include "lsearch.h"

#include "../base/vg_alloc.h"
#include "../tsdb/index.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define AHEAD_PER_WORKER 4

/* ---- selection ---- */

struct qstream {
    uint64_t id;
    char *enc;                 /* copy of the canonical labels */
    struct label *labels;
    size_t nlabels;
    struct lhead_snap *snaps;  /* captured head and sealed heads */
    size_t nsnaps;
    unsigned char *skip;       /* chunk keys of the sealed ones, LS_CHUNK_KEY_LEN each */
    size_t nskip;
    /* Position in the stream's chunks (FRONT). */
    unsigned char resume[LS_CHUNK_KEY_LEN];
    bool started;
};

struct qsel {
    struct qstream *v;
    size_t n;
    struct kv *kv;
    struct kv_snapshot *snap;  /* the view of it and of the query's workers' iterators */
    struct kv_iter *it;
};

static void qsel_free(struct qsel *q)
{
    for (size_t i = 0; i < q->n; i++) {
        struct qstream *s = &q->v[i];
        for (size_t j = 0; j < s->nsnaps; j++)
            lhead_release(s->snaps[j].h);
        vg_free(s->snaps);
        vg_free(s->skip);
        vg_free(s->labels);
        vg_free(s->enc);
    }
    vg_free(q->v);
    kv_iter_free(q->it);
    if (q->snap)
        kv_snapshot_free(q->kv, q->snap);
    memset(q, 0, sizeof *q);
}

static int nomem(struct vg_err *err)
{
    vg_err_set(err, VG_ENOMEM, "logstore: out of memory reading");
    return VG_ENOMEM; /* spelled out so static analysis sees a non-zero code */
}

/* Copies s into q (labels always, heads when capture). Under mu. */
static int copy_stream(struct lstream *s, bool capture, struct qstream *q)
{
    memset(q, 0, sizeof *q);
    q->id = s->id;
    q->enc = vg_malloc(s->enclen + 1);
    q->labels = vg_malloc((s->nlabels ? s->nlabels : 1) * sizeof *q->labels);
    size_t nsnap = capture ? s->nsealed + 1 : 0;
    if (nsnap) {
        q->snaps = vg_malloc(nsnap * sizeof *q->snaps);
        q->skip = vg_malloc(nsnap * LS_CHUNK_KEY_LEN);
    }
    if (!q->enc || !q->labels || (nsnap && (!q->snaps || !q->skip)))
        return VG_ENOMEM;
    memcpy(q->enc, s->enc, s->enclen);
    for (size_t i = 0; i < s->nlabels; i++) {
        q->labels[i].name.p = q->enc + (s->labels[i].name.p - s->enc);
        q->labels[i].name.len = s->labels[i].name.len;
        q->labels[i].value.p = q->enc + (s->labels[i].value.p - s->enc);
        q->labels[i].value.len = s->labels[i].value.len;
    }
    q->nlabels = s->nlabels;
    for (size_t i = 0; i < s->nsealed && capture; i++) {
        struct lhead *h = s->sealed[i];
        lhead_capture(h, &q->snaps[q->nsnaps++]);
        ls_chunk_key(q->skip + q->nskip++ * LS_CHUNK_KEY_LEN, s->id, h->maxt, h->last_seq,
                     h->last_idx);
    }
    if (capture && s->head && s->head->n)
        lhead_capture(s->head, &q->snaps[q->nsnaps++]);
    return 0;
}

/* Streams matching ms with data overlapping [start, end), sorted by id, with a view. */
static int select_streams(struct logstore *ls, struct matcher *const *ms, size_t nms,
                          int64_t start, int64_t end, bool capture, struct qsel *out,
                          struct vg_err *err)
{
    memset(out, 0, sizeof *out);
    if (start > end)
        return vg_err_set(err, VG_EINVAL, "logstore: start %" PRId64 " is after end %" PRId64,
                          start, end);
    struct index_ids ids = { 0 };
    int rc = ls_select_ids(ls, ms, nms, &ids, err);
    if (rc)
        return rc;
    out->v = vg_calloc(ids.n ? ids.n : 1, sizeof *out->v);
    if (!out->v) {
        index_ids_free(&ids);
        return nomem(err);
    }
    pthread_mutex_lock(&ls->mu);
    out->kv = ls->kv;
    out->snap = kv_snapshot_new(ls->kv);
    out->it = out->snap ? kv_iter_new(ls->kv, out->snap, false) : NULL;
    if (!out->it)
        rc = nomem(err);
    for (size_t i = 0; i < ids.n && rc == 0; i++) {
        struct lstream *s = ls_stream_by_id(ls, ids.v[i]);
        if (!s || s->mint > s->maxt || s->mint >= end || s->maxt < start)
            continue;
        rc = copy_stream(s, capture, &out->v[out->n++]);
        if (rc)
            rc = nomem(err);
    }
    pthread_mutex_unlock(&ls->mu);
    index_ids_free(&ids);
    if (rc)
        qsel_free(out);
    return rc;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* Calls fn for every stored chunk of q overlapping [start, end) (time only) that is
 * not one of q's captured sealed heads. fn returns 0 to go on. */
typedef int (*chunk_fn)(void *ctx, const struct lchunk_header *h, size_t vlen);
static int each_chunk(struct logstore *ls, struct kv_iter *it, const struct qstream *q,
                      int64_t start, int64_t end, chunk_fn fn, void *ctx, struct vg_err *err)
{
    unsigned char k[17];
    ls_chunk_seek_key(k, q->id, start);
    int64_t stop = sat_add(end, ls->o.chunk_max_span_ns);
    int rc = 0;
    for (kv_iter_seek(it, k, sizeof k); rc == 0 && kv_iter_valid(it); kv_iter_next(it)) {
        size_t klen, vlen;
        const char *key = kv_iter_key(it, &klen);
        int64_t maxt;
        if (!ls_chunk_key_parse(key, klen, q->id, &maxt) || maxt >= stop)
            break;
        bool skip = false;
        for (size_t i = 0; i < q->nskip && !skip; i++)
            skip = memcmp(q->skip + i * LS_CHUNK_KEY_LEN, key, LS_CHUNK_KEY_LEN) == 0;
        if (skip)
            continue;
        const char *v = kv_iter_value(it, &vlen);
        struct lchunk_header h;
        rc = lchunk_header_decode(v, vlen, &h, err);
        if (rc)
            return vg_err_prefix(err, "logstore: stream %" PRIu64, q->id);
        if (h.mint < end && h.maxt >= start)
            rc = fn(ctx, &h, vlen);
    }
    return rc ? rc : kv_iter_error(it, err);
}

/* ---- the entry iterator ---- */

enum src_kind { SRC_MEM, SRC_CHUNK, SRC_PEND, SRC_FRONT };
enum pf_state { PF_NONE, PF_QUEUED, PF_RUNNING, PF_DONE }; /* a PEND source in the pool */

struct src {
    enum src_kind kind;
    int64_t key;
    uint32_t stream;
    uint32_t pos, lo, hi;        /* MEM and CHUNK: next entry, valid [lo, hi) */
    struct lhead_ref *refs;      /* MEM */
    struct lchunk_view view;     /* CHUNK */
    unsigned char ckey[LS_CHUNK_KEY_LEN]; /* PEND: the chunk's key, read again to open it */
    enum pf_state pf;            /* PEND: under the pool's lock */
    size_t pf_slot;              /* PF_QUEUED: index in the pool's queue */
    int pf_rc;                   /* PF_DONE: lchunk_open's result into view, with */
    char *pf_msg;                /*   its message (vg_malloc'd; NULL: out of memory) */
    bool filtered;               /* CHUNK: view holds only entries with every line needle */
    uint64_t skip_lines, skip_bytes; /* entries (and line bytes) the filter left out */
};

struct pool {
    pthread_mutex_t mu;
    pthread_cond_t work;         /* workers: something queued and room ahead, or stop */
    pthread_cond_t done;         /* the merge: a source it waits for was inflated */
    struct src **q;              /* queued PEND sources, a heap in the merge's order */
    size_t nq, capq;
    size_t ahead;                /* running or done and not yet taken */
    size_t max_ahead;
    bool stop;
    bool live, off;              /* live: started (lock and threads); off: not used */
    pthread_t th[LS_MAX_QUERY_WORKERS];
    unsigned nth;
};

struct logstore_iter {
    struct logstore *ls;
    struct qsel sel;
    int64_t start, end;
    bool backward;
    size_t limit, emitted;
    struct lfilter_query fq;
    struct src **heap;
    size_t nheap, heap_cap;
    struct src *done;            /* emitted its last entry; freed on the next call */
    struct lchunk_dctx *dctx;
    struct label meta[LENTRY_MAX_META];
    struct logstore_iter_stats st;
    struct pool pool;
    struct vg_str *lneedles;     /* line needles (copies), the longest first */
    size_t nlneedles;
};

static void src_free(struct src *s)
{
    if (!s)
        return;
    vg_free(s->refs);
    lchunk_view_free(&s->view);
    vg_free(s->pf_msg);
    vg_free(s);
}

static bool before(const struct logstore_iter *it, const struct src *a, const struct src *b)
{
    if (a->key != b->key)
        return it->backward ? a->key > b->key : a->key < b->key;
    if (a->stream != b->stream)
        return a->stream < b->stream;
    return a->kind > b->kind; /* chunks not yet read before entries of the same time */
}

static void sift_down(struct logstore_iter *it, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, best = i;
        if (l < it->nheap && before(it, it->heap[l], it->heap[best]))
            best = l;
        if (l + 1 < it->nheap && before(it, it->heap[l + 1], it->heap[best]))
            best = l + 1;
        if (best == i)
            return;
        struct src *t = it->heap[i];
        it->heap[i] = it->heap[best];
        it->heap[best] = t;
        i = best;
    }
}

/* Takes ownership of s (freed on failure). 0 or VG_ENOMEM. */
static int heap_push(struct logstore_iter *it, struct src *s)
{
    if (ls_grow(&it->heap, &it->heap_cap, it->nheap, sizeof *it->heap, 16)) {
        src_free(s);
        return VG_ENOMEM;
    }
    size_t i = it->nheap++;
    it->heap[i] = s;
    while (i && before(it, it->heap[i], it->heap[(i - 1) / 2])) {
        struct src *t = it->heap[i];
        it->heap[i] = it->heap[(i - 1) / 2];
        it->heap[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
    return 0;
}

static struct src *heap_pop(struct logstore_iter *it)
{
    struct src *top = it->heap[0];
    it->heap[0] = it->heap[--it->nheap];
    sift_down(it, 0);
    return top;
}

static struct src *src_new(enum src_kind kind, uint32_t stream, int64_t key)
{
    struct src *s = vg_calloc(1, sizeof *s);
    if (s) {
        s->kind = kind;
        s->stream = stream;
        s->key = key;
    }
    return s;
}

/* ---- line needles ---- */

static bool has_needles(const struct logstore_iter *it, struct vg_str line, size_t from)
{
    for (size_t i = from; i < it->nlneedles; i++)
        if (!lsearch_find(line.p, line.len, it->lneedles[i].p, it->lneedles[i].len))
            return false;
    return true;
}

/* Keeps in s's view only the entries whose line holds every needle (top of the file).
 * Reads nothing but s and the needles, so workers may run it. */
static void view_filter(const struct logstore_iter *it, struct src *s)
{
    struct lchunk_view *v = &s->view;
    if (s->filtered || !it->nlneedles || !v->n)
        return;
    s->filtered = true;
    const struct vg_str nd = it->lneedles[0];
    const char *raw = v->raw;
    struct label meta[LENTRY_MAX_META];
    uint64_t kept_bytes = 0;
    uint32_t i = 0, j = 0;
    size_t pos = v->off[0];
    while (i < v->n && pos < v->raw_len) {
        const char *hit = lsearch_find(raw + pos, v->raw_len - pos, nd.p, nd.len);
        if (!hit)
            break;
        size_t h = (size_t)(hit - raw);
        while (i + 1 < v->n && v->off[i + 1] <= h)
            i++;
        struct lentry e;
        lchunk_entry(v, i, &e, meta);
        size_t ls = (size_t)(e.line.p - raw), le = ls + e.line.len;
        if (h < ls) { /* in the entry's metadata: look again from its line */
            pos = ls;
            continue;
        }
        if (h + nd.len <= le && has_needles(it, e.line, 1)) {
            v->t[j] = v->t[i];
            v->off[j++] = v->off[i];
            kept_bytes += e.line.len;
        }
        pos = le; /* no other hit can start in this line and end inside it */
        i++;
    }
    s->skip_lines = v->n - j;
    s->skip_bytes = v->line_bytes - kept_bytes;
    v->n = j;
}

/* Drops the captured head entries of m lacking a needle. */
static void refs_filter(struct logstore_iter *it, struct src *m)
{
    struct label meta[LENTRY_MAX_META];
    uint32_t j = 0;
    for (uint32_t i = 0; i < m->hi; i++) {
        struct lentry e;
        lhead_entry(&m->refs[i], &e, meta);
        if (has_needles(it, e.line, 0)) {
            m->refs[j++] = m->refs[i];
        } else {
            it->st.lines_skipped++;
            it->st.bytes_skipped += e.line.len;
        }
    }
    m->hi = j;
}

static int needle_len_desc(const void *a, const void *b)
{
    size_t x = ((const struct vg_str *)a)->len, y = ((const struct vg_str *)b)->len;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Copies the query's line needles into one allocation, the longest first. */
static int copy_needles(struct logstore_iter *it, const struct logstore_query *q)
{
    size_t bytes = 0, n = 0;
    for (size_t i = 0; i < q->nline_needles; i++)
        if (q->line_needles[i].len) {
            bytes += q->line_needles[i].len;
            n++;
        }
    if (!n)
        return 0;
    it->lneedles = vg_malloc(n * sizeof *it->lneedles + bytes);
    if (!it->lneedles)
        return VG_ENOMEM;
    char *p = (char *)(it->lneedles + n);
    for (size_t i = 0; i < q->nline_needles; i++) {
        struct vg_str x = q->line_needles[i];
        if (!x.len)
            continue;
        memcpy(p, x.p, x.len);
        it->lneedles[it->nlneedles++] = (struct vg_str){ p, x.len };
        p += x.len;
    }
    qsort(it->lneedles, n, sizeof *it->lneedles, needle_len_desc);
    return 0;
}

/* ---- the pool of workers (top of the file) ---- */

/* Reads chunk key k again through kit (an iterator of the query's snapshot, so it is
 * there) and inflates it into v: the value is decompressed where LevelDB holds it,
 * never copied. 0, VG_EINVAL (corrupt), VG_EIO, VG_ENOMEM. */
static int inflate_at(struct kv_iter *kit, struct lchunk_dctx *d, const unsigned char *k,
                      struct lchunk_view *v, struct vg_err *err)
{
    memset(v, 0, sizeof *v);
    kv_iter_seek(kit, k, LS_CHUNK_KEY_LEN);
    size_t klen = 0, vlen;
    const char *key = kv_iter_valid(kit) ? kv_iter_key(kit, &klen) : NULL;
    if (!key || klen != LS_CHUNK_KEY_LEN || memcmp(key, k, klen) != 0) {
        int rc = kv_iter_error(kit, err);
        return rc ? rc : vg_err_set(err, VG_EIO, "logstore: a chunk left the query's view");
    }
    const char *val = kv_iter_value(kit, &vlen);
    struct lchunk_header h;
    int rc = lchunk_header_decode(val, vlen, &h, err);
    return rc ? rc : lchunk_open(d, &h, v, err);
}

static void pq_swap(struct pool *pl, size_t i, size_t j)
{
    struct src *t = pl->q[i];
    pl->q[i] = pl->q[j];
    pl->q[j] = t;
    pl->q[i]->pf_slot = i;
    pl->q[j]->pf_slot = j;
}

static void pq_up(const struct logstore_iter *it, struct pool *pl, size_t i)
{
    while (i && before(it, pl->q[i], pl->q[(i - 1) / 2])) {
        pq_swap(pl, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void pq_down(const struct logstore_iter *it, struct pool *pl, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, best = i;
        if (l < pl->nq && before(it, pl->q[l], pl->q[best]))
            best = l;
        if (l + 1 < pl->nq && before(it, pl->q[l + 1], pl->q[best]))
            best = l + 1;
        if (best == i)
            return;
        pq_swap(pl, i, best);
        i = best;
    }
}

static void pq_remove(const struct logstore_iter *it, struct pool *pl, size_t i)
{
    size_t last = --pl->nq;
    if (i == last)
        return;
    pl->q[i] = pl->q[last];
    pl->q[i]->pf_slot = i;
    pq_down(it, pl, i);
    pq_up(it, pl, i);
}

static void *pool_main(void *arg)
{
    struct logstore_iter *it = arg;
    struct pool *pl = &it->pool;
    /* without these, the merge inflates alone */
    struct lchunk_dctx *d = lchunk_dctx_new();
    struct kv_iter *kit = kv_iter_new(it->sel.kv, it->sel.snap, false);
    pthread_mutex_lock(&pl->mu);
    while (d && kit) {
        while (!pl->stop && (pl->nq == 0 || pl->ahead >= pl->max_ahead))
            pthread_cond_wait(&pl->work, &pl->mu);
        if (pl->stop)
            break;
        struct src *s = pl->q[0];
        pq_remove(it, pl, 0);
        s->pf = PF_RUNNING;
        pl->ahead++;
        pthread_mutex_unlock(&pl->mu);
        struct vg_err e; /* kept apart: sources stay small, the merge's heap walks them */
        if ((s->pf_rc = inflate_at(kit, d, s->ckey, &s->view, &e)) != 0)
            s->pf_msg = vg_strdup(e.msg);
        else
            view_filter(it, s);
        pthread_mutex_lock(&pl->mu);
        s->pf = PF_DONE;
        pthread_cond_broadcast(&pl->done);
    }
    pthread_mutex_unlock(&pl->mu);
    lchunk_dctx_free(d);
    kv_iter_free(kit);
    return NULL;
}

/* Starts the workers on first use; false when the pool is not used. */
static bool pool_on(struct logstore_iter *it)
{
    struct pool *pl = &it->pool;
    if (pl->live || pl->off)
        return pl->live;
    unsigned want = it->ls->o.query_workers;
    pl->off = true;
    if (want == 0 || pthread_mutex_init(&pl->mu, NULL) != 0)
        return false;
    if (pthread_cond_init(&pl->work, NULL) != 0) {
        pthread_mutex_destroy(&pl->mu);
        return false;
    }
    if (pthread_cond_init(&pl->done, NULL) != 0) {
        pthread_cond_destroy(&pl->work);
        pthread_mutex_destroy(&pl->mu);
        return false;
    }
    pl->live = true;
    pl->off = false;
    for (unsigned i = 0; i < want; i++) {
        if (pthread_create(&pl->th[pl->nth], NULL, pool_main, it) != 0)
            break;
        pthread_setname_np(pl->th[pl->nth++], "logstore-query");
    }
    pl->max_ahead = (size_t)AHEAD_PER_WORKER * pl->nth;
    return true; /* with no thread, queued sources are all taken back by the merge */
}

static void pool_stop(struct logstore_iter *it)
{
    struct pool *pl = &it->pool;
    if (!pl->live)
        return;
    pthread_mutex_lock(&pl->mu);
    pl->stop = true;
    pthread_cond_broadcast(&pl->work);
    pthread_mutex_unlock(&pl->mu);
    for (unsigned i = 0; i < pl->nth; i++)
        pthread_join(pl->th[i], NULL);
    pthread_cond_destroy(&pl->work);
    pthread_cond_destroy(&pl->done);
    pthread_mutex_destroy(&pl->mu);
    vg_free(pl->q);
    pl->live = false;
}

/* Offers a PEND source (in the merge's heap) to the workers; without room in the queue
 * it simply stays the merge's to inflate. */
static void pool_submit(struct logstore_iter *it, struct src *p)
{
    struct pool *pl = &it->pool;
    if (!pool_on(it) || pl->nth == 0)
        return;
    pthread_mutex_lock(&pl->mu);
    if (ls_grow(&pl->q, &pl->capq, pl->nq, sizeof *pl->q, 16) == 0) {
        p->pf = PF_QUEUED;
        p->pf_slot = pl->nq;
        pl->q[pl->nq++] = p;
        pq_up(it, pl, p->pf_slot);
        pthread_cond_signal(&pl->work);
    }
    pthread_mutex_unlock(&pl->mu);
}

/* The merge takes p back: true when a worker inflated it (p->view, p->pf_rc and
 * p->pf_err set), false when the caller must inflate it. */
static bool pool_take(struct logstore_iter *it, struct src *p)
{
    struct pool *pl = &it->pool;
    if (!pl->live)
        return false;
    pthread_mutex_lock(&pl->mu);
    bool taken = false;
    if (p->pf == PF_QUEUED) {
        pq_remove(it, pl, p->pf_slot);
    } else if (p->pf != PF_NONE) {
        while (p->pf == PF_RUNNING)
            pthread_cond_wait(&pl->done, &pl->mu);
        pl->ahead--;
        taken = true;
        pthread_cond_signal(&pl->work);
    }
    p->pf = PF_NONE;
    pthread_mutex_unlock(&pl->mu);
    return taken;
}

/* Key of an entry source at its current position. */
static void entry_key(const struct logstore_iter *it, struct src *s)
{
    s->key = s->kind == SRC_MEM ? s->refs[s->pos].t : s->view.t[s->pos];
    (void)it;
}

/* Reads the next candidate chunk of a stream into a PEND source and pushes it and the
 * FRONT again; the stream is finished when none is left. FRONT f is reused or freed. */
static int advance_front(struct logstore_iter *it, struct src *f, struct vg_err *err)
{
    struct qstream *q = &it->sel.v[f->stream];
    struct kv_iter *kit = it->sel.it;
    int64_t span = it->ls->o.chunk_max_span_ns;
    if (!q->started) {
        unsigned char k[17];
        ls_chunk_seek_key(k, q->id, it->backward ? sat_add(it->end, span) : it->start);
        kv_iter_seek(kit, k, sizeof k);
        if (it->backward) {
            if (kv_iter_valid(kit))
                kv_iter_prev(kit);
            else
                kv_iter_seek_last(kit);
        }
        q->started = true;
    } else {
        kv_iter_seek(kit, q->resume, LS_CHUNK_KEY_LEN);
        if (it->backward)
            kv_iter_prev(kit);
        else if (kv_iter_valid(kit))
            kv_iter_next(kit);
    }
    int64_t stop = sat_add(it->end, span);
    for (; kv_iter_valid(kit); it->backward ? kv_iter_prev(kit) : kv_iter_next(kit)) {
        size_t klen, vlen;
        const char *key = kv_iter_key(kit, &klen);
        int64_t maxt;
        if (!ls_chunk_key_parse(key, klen, q->id, &maxt))
            break;
        if (it->backward ? maxt < it->start : maxt >= stop)
            break;
        bool skip = false;
        for (size_t i = 0; i < q->nskip && !skip; i++)
            skip = memcmp(q->skip + i * LS_CHUNK_KEY_LEN, key, LS_CHUNK_KEY_LEN) == 0;
        const char *v = kv_iter_value(kit, &vlen);
        struct lchunk_header h;
        if (skip)
            continue;
        if (lchunk_header_decode(v, vlen, &h, err) != 0) {
            src_free(f);
            return vg_err_prefix(err, "logstore: stream %" PRIu64, q->id);
        }
        if (h.mint >= it->end || h.maxt < it->start)
            continue;
        it->st.chunks_considered++;
        if (!lfilter_may_match(&h.filter, &it->fq)) {
            it->st.chunks_skipped++;
            continue;
        }
        struct src *p = src_new(SRC_PEND, f->stream, 0);
        if (!p) {
            src_free(f);
            return nomem(err);
        }
        memcpy(p->ckey, key, LS_CHUNK_KEY_LEN);
        memcpy(q->resume, key, LS_CHUNK_KEY_LEN);
        if (it->backward) {
            p->key = h.maxt < it->end ? h.maxt : it->end - 1;
            f->key = maxt < it->end ? maxt : it->end - 1;
        } else {
            p->key = h.mint > it->start ? h.mint : it->start;
            f->key = maxt - span > it->start ? maxt - span : it->start;
        }
        if (heap_push(it, p) != 0) {
            src_free(f);
            return nomem(err);
        }
        pool_submit(it, p);
        return heap_push(it, f) ? nomem(err) : 0;
    }
    src_free(f);
    return kv_iter_error(kit, err);
}

/* Index of the first of t[lo, hi) (non-decreasing) that is >= x, or hi. */
static uint32_t first_at(const int64_t *t, uint32_t lo, uint32_t hi, int64_t x)
{
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (t[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Opens a PEND source into a CHUNK one and pushes it (or frees it when nothing of it
 * is in range). */
static int open_pending(struct logstore_iter *it, struct src *p, struct vg_err *err)
{
    int rc;
    if (pool_take(it, p)) {
        if ((rc = p->pf_rc) != 0)
            vg_err_set(err, p->pf_msg ? rc : VG_ENOMEM, "%s",
                       p->pf_msg ? p->pf_msg : "logstore: out of memory reading");
        if (rc && !p->pf_msg)
            rc = VG_ENOMEM;
    } else {
        if (!it->dctx && !(it->dctx = lchunk_dctx_new())) {
            src_free(p);
            return nomem(err);
        }
        rc = inflate_at(it->sel.it, it->dctx, p->ckey, &p->view, err);
    }
    if (rc) {
        uint64_t id = it->sel.v[p->stream].id;
        src_free(p);
        return vg_err_prefix(err, "logstore: stream %" PRIu64, id);
    }
    view_filter(it, p);
    it->st.chunks_opened++;
    it->st.bytes_decompressed += p->view.raw_len;
    it->st.lines_skipped += p->skip_lines;
    it->st.bytes_skipped += p->skip_bytes;
    p->lo = first_at(p->view.t, 0, p->view.n, it->start);
    p->hi = first_at(p->view.t, p->lo, p->view.n, it->end);
    if (p->lo == p->hi) {
        src_free(p);
        return 0;
    }
    p->kind = SRC_CHUNK;
    p->pos = it->backward ? p->hi - 1 : p->lo;
    entry_key(it, p);
    return heap_push(it, p) ? nomem(err) : 0;
}

struct logstore_iter *logstore_query(struct logstore *ls, const struct logstore_query *q,
                                     struct vg_err *err)
{
    struct logstore_iter *it = vg_calloc(1, sizeof *it);
    if (!it) {
        nomem(err);
        return NULL;
    }
    it->ls = ls;
    it->start = q->start;
    it->end = q->end;
    it->backward = q->backward;
    it->limit = q->limit;
    for (size_t i = 0; i < q->nneedles; i++)
        lfilter_query_needle(&it->fq, q->needles[i]);
    for (size_t i = 0; i < q->nmeta; i++)
        lfilter_query_meta(&it->fq, q->meta[i].name, q->meta[i].value);
    if (copy_needles(it, q) != 0) {
        logstore_iter_free(it);
        nomem(err);
        return NULL;
    }
    int rc = select_streams(ls, q->matchers, q->nmatchers, q->start, q->end, true, &it->sel,
                            err);
    it->st.streams = it->sel.n;
    for (size_t i = 0; i < it->sel.n && rc == 0; i++) {
        struct qstream *qs = &it->sel.v[i];
        for (size_t j = 0; j < qs->nsnaps && rc == 0; j++) {
            struct src *m = src_new(SRC_MEM, (uint32_t)i, 0);
            if (!m || lhead_collect(&qs->snaps[j], q->start, q->end, &m->refs, &m->hi) != 0) {
                src_free(m);
                rc = nomem(err);
                break;
            }
            if (m->hi == 0) {
                src_free(m);
                continue;
            }
            it->st.head_entries += m->hi;
            refs_filter(it, m);
            if (m->hi == 0) {
                src_free(m);
                continue;
            }
            m->pos = it->backward ? m->hi - 1 : 0;
            entry_key(it, m);
            if (heap_push(it, m) != 0)
                rc = nomem(err);
        }
        struct src *f = rc ? NULL : src_new(SRC_FRONT, (uint32_t)i,
                                            q->backward ? q->end - 1 : q->start);
        if (rc == 0 && (!f || heap_push(it, f) != 0))
            rc = nomem(err);
    }
    if (rc) {
        logstore_iter_free(it);
        return NULL;
    }
    return it;
}

int logstore_iter_next(struct logstore_iter *it, struct logstore_entry *e, struct vg_err *err)
{
    src_free(it->done);
    it->done = NULL;
    if (it->limit && it->emitted >= it->limit)
        return 0;
    while (it->nheap) {
        struct src *s = it->heap[0];
        if (s->kind == SRC_FRONT || s->kind == SRC_PEND) {
            heap_pop(it);
            int rc = s->kind == SRC_FRONT ? advance_front(it, s, err) : open_pending(it, s, err);
            if (rc)
                return rc;
            continue;
        }
        struct lentry le;
        if (s->kind == SRC_MEM)
            lhead_entry(&s->refs[s->pos], &le, it->meta);
        else
            lchunk_entry(&s->view, s->pos, &le, it->meta);
        const struct qstream *q = &it->sel.v[s->stream];
        *e = (struct logstore_entry){ q->id, q->labels, q->nlabels, le.t, le.line, le.meta,
                                      le.nmeta };
        bool more = it->backward ? s->pos > s->lo : s->pos + 1 < s->hi;
        if (more) {
            s->pos += it->backward ? -1 : 1;
            entry_key(it, s);
            sift_down(it, 0);
        } else {
            it->done = heap_pop(it); /* its bytes back e until the next call */
        }
        it->emitted++;
        return 1;
    }
    return 0;
}

void logstore_iter_stats(const struct logstore_iter *it, struct logstore_iter_stats *st)
{
    *st = it->st;
}

void logstore_iter_free(struct logstore_iter *it)
{
    if (!it)
        return;
    pool_stop(it); /* no worker touches a source after this */
    src_free(it->done);
    for (size_t i = 0; i < it->nheap; i++)
        src_free(it->heap[i]);
    vg_free(it->heap);
    lchunk_dctx_free(it->dctx);
    lfilter_query_free(&it->fq);
    qsel_free(&it->sel);
    vg_free(it->lneedles);
    vg_free(it);
}

/* ---- label names and values, series ---- */

void logstore_strings_free(struct logstore_strings *s)
{
    for (size_t i = 0; s->v && i < s->n; i++)
        vg_free(s->v[i]);
    vg_free(s->v);
    memset(s, 0, sizeof *s);
}

static int cmp_str(const void *a, const void *b)
{
    return vg_str_cmp(*(const struct vg_str *)a, *(const struct vg_str *)b);
}

/* Names (name == NULL) or values of *name over the selection, sorted and unique. */
static int strings_of(const struct qsel *sel, const struct vg_str *name,
                      struct logstore_strings *out, struct vg_err *err)
{
    memset(out, 0, sizeof *out);
    size_t cap = 0;
    for (size_t i = 0; i < sel->n; i++)
        cap += name ? 1 : sel->v[i].nlabels;
    struct vg_str *all = vg_malloc((cap ? cap : 1) * sizeof *all);
    if (!all)
        return nomem(err);
    size_t n = 0;
    for (size_t i = 0; i < sel->n; i++)
        for (size_t j = 0; j < sel->v[i].nlabels; j++) {
            const struct label *l = &sel->v[i].labels[j];
            if (!name)
                all[n++] = l->name;
            else if (vg_str_eq(l->name, *name))
                all[n++] = l->value;
        }
    qsort(all, n, sizeof *all, cmp_str);
    out->v = vg_malloc((n ? n : 1) * sizeof *out->v);
    int rc = out->v ? 0 : nomem(err);
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i && vg_str_eq(all[i - 1], all[i]))
            continue;
        if (!(out->v[out->n] = vg_strndup(all[i].p, all[i].len)))
            rc = nomem(err);
        else
            out->n++;
    }
    vg_free(all);
    if (rc)
        logstore_strings_free(out);
    return rc;
}

int logstore_label_names(struct logstore *ls, struct matcher *const *ms, size_t nms,
                         int64_t start, int64_t end, struct logstore_strings *out,
                         struct vg_err *err)
{
    struct qsel sel;
    memset(out, 0, sizeof *out);
    int rc = select_streams(ls, ms, nms, start, end, false, &sel, err);
    if (rc == 0)
        rc = strings_of(&sel, NULL, out, err);
    qsel_free(&sel);
    return rc;
}

int logstore_label_values(struct logstore *ls, struct vg_str name, struct matcher *const *ms,
                          size_t nms, int64_t start, int64_t end,
                          struct logstore_strings *out, struct vg_err *err)
{
    struct qsel sel;
    memset(out, 0, sizeof *out);
    int rc = select_streams(ls, ms, nms, start, end, false, &sel, err);
    if (rc == 0)
        rc = strings_of(&sel, &name, out, err);
    qsel_free(&sel);
    return rc;
}

static int cmp_series(const void *a, const void *b)
{
    const struct logstore_series *x = a, *y = b;
    return labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

int logstore_series(struct logstore *ls, struct matcher *const *ms, size_t nms, int64_t start,
                    int64_t end, struct logstore_series_set **out, struct vg_err *err)
{
    *out = NULL;
    struct logstore_series_set *set = vg_calloc(1, sizeof *set);
    struct qsel *sel = vg_calloc(1, sizeof *sel);
    if (!set || !sel) {
        vg_free(set);
        vg_free(sel);
        return nomem(err);
    }
    set->priv = sel;
    int rc = select_streams(ls, ms, nms, start, end, false, sel, err);
    if (rc == 0 && !(set->v = vg_malloc((sel->n ? sel->n : 1) * sizeof *set->v)))
        rc = nomem(err);
    if (rc) {
        logstore_series_set_free(set);
        return rc;
    }
    for (size_t i = 0; i < sel->n; i++)
        set->v[i] = (struct logstore_series){ sel->v[i].id, sel->v[i].labels,
                                              sel->v[i].nlabels };
    set->n = sel->n;
    qsort(set->v, set->n, sizeof *set->v, cmp_series);
    *out = set;
    return 0;
}

void logstore_series_set_free(struct logstore_series_set *s)
{
    if (!s)
        return;
    if (s->priv)
        qsel_free(s->priv);
    vg_free(s->priv);
    vg_free(s->v);
    vg_free(s);
}

/* ---- stats and volume ---- */

struct usage {
    uint64_t chunks, entries, bytes, compressed;
};

static int add_chunk(void *ctx, const struct lchunk_header *h, size_t vlen)
{
    struct usage *u = ctx;
    u->chunks++;
    u->entries += h->n;
    u->bytes += h->bytes;
    u->compressed += vlen;
    return 0;
}

/* Chunks (whole) and head entries (exact) of q in [start, end). */
static int stream_usage(struct logstore *ls, const struct qsel *sel, const struct qstream *q,
                        int64_t start, int64_t end, struct usage *u, struct vg_err *err)
{
    memset(u, 0, sizeof *u);
    int rc = each_chunk(ls, sel->it, q, start, end, add_chunk, u, err);
    struct label meta[LENTRY_MAX_META];
    for (size_t i = 0; i < q->nsnaps && rc == 0; i++) {
        struct lhead_ref *refs;
        uint32_t n;
        if (lhead_collect(&q->snaps[i], start, end, &refs, &n) != 0)
            return nomem(err);
        for (uint32_t j = 0; j < n; j++) {
            struct lentry e;
            lhead_entry(&refs[j], &e, meta);
            u->bytes += lentry_bytes(&e);
        }
        u->entries += n;
        vg_free(refs);
    }
    return rc;
}

int logstore_stats(struct logstore *ls, struct matcher *const *ms, size_t nms, int64_t start,
                   int64_t end, struct logstore_stats *out, struct vg_err *err)
{
    memset(out, 0, sizeof *out);
    struct qsel sel;
    int rc = select_streams(ls, ms, nms, start, end, true, &sel, err);
    for (size_t i = 0; i < sel.n && rc == 0; i++) {
        struct usage u;
        rc = stream_usage(ls, &sel, &sel.v[i], start, end, &u, err);
        if (rc == 0 && u.entries) {
            out->streams++;
            out->chunks += u.chunks;
            out->entries += u.entries;
            out->bytes += u.bytes;
            out->bytes_compressed += u.compressed;
        }
    }
    qsel_free(&sel);
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}

struct volume_priv {
    struct qsel sel;
    struct vg_buf keys;   /* canonical encodings of the groups' labels, back to back */
};

struct vgroup {
    size_t off, len;      /* group key in keys */
    size_t stream;
    uint64_t bytes, entries;
};

static int cmp_group_key(const void *a, const void *b, void *keys)
{
    const struct vgroup *x = a, *y = b;
    const char *k = ((const struct vg_buf *)keys)->p;
    return vg_str_cmp((struct vg_str){ k + x->off, x->len }, (struct vg_str){ k + y->off, y->len });
}

static int cmp_group_bytes(const void *a, const void *b)
{
    const struct logstore_volume *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes > y->bytes ? -1 : 1;
    return labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

int logstore_volume(struct logstore *ls, struct matcher *const *ms, size_t nms, int64_t start,
                    int64_t end, const struct vg_str *by, size_t nby, size_t limit,
                    struct logstore_volume_set **out, struct vg_err *err)
{
    *out = NULL;
    struct logstore_volume_set *set = vg_calloc(1, sizeof *set);
    struct volume_priv *priv = vg_calloc(1, sizeof *priv);
    if (!set || !priv) {
        vg_free(set);
        vg_free(priv);
        return nomem(err);
    }
    set->priv = priv;
    vg_buf_init(&priv->keys);
    int rc = select_streams(ls, ms, nms, start, end, true, &priv->sel, err);
    struct qsel *sel = &priv->sel;
    struct vgroup *g = rc ? NULL : vg_malloc((sel->n ? sel->n : 1) * sizeof *g);
    if (rc == 0 && !g)
        rc = nomem(err);
    size_t ng = 0;
    struct label sub[64];
    for (size_t i = 0; i < sel->n && rc == 0; i++) {
        struct usage u;
        rc = stream_usage(ls, sel, &sel->v[i], start, end, &u, err);
        if (rc || !u.entries)
            continue;
        const struct qstream *q = &sel->v[i];
        size_t nsub = 0;
        for (size_t j = 0; j < q->nlabels && nby; j++)
            for (size_t k = 0; k < nby && nsub < 64; k++)
                if (vg_str_eq(q->labels[j].name, by[k])) {
                    sub[nsub++] = q->labels[j];
                    break;
                }
        if (nby && !nsub)
            continue;
        g[ng] = (struct vgroup){ priv->keys.len, 0, i, u.bytes, u.entries };
        if (nby)
            labels_encode(sub, nsub, &priv->keys);
        else
            labels_encode(q->labels, q->nlabels, &priv->keys);
        g[ng].len = priv->keys.len - g[ng].off;
        ng++;
    }
    if (rc == 0 && vg_buf_failed(&priv->keys))
        rc = nomem(err);
    if (rc == 0 && ng)
        qsort_r(g, ng, sizeof *g, cmp_group_key, &priv->keys);
    if (rc == 0 && !(set->v = vg_calloc(ng ? ng : 1, sizeof *set->v)))
        rc = nomem(err);
    for (size_t i = 0; i < ng && rc == 0; i++) {
        const char *kp = priv->keys.p + g[i].off;
        if (set->n && g[i - 1].len == g[i].len &&
            memcmp(priv->keys.p + g[i - 1].off, kp, g[i].len) == 0) {
            set->v[set->n - 1].bytes += g[i].bytes;
            set->v[set->n - 1].entries += g[i].entries;
            continue;
        }
        struct logstore_volume *v = &set->v[set->n];
        size_t max = g[i].len / 2 + 1;
        if (!(v->labels = vg_malloc(max * sizeof *v->labels))) {
            rc = nomem(err);
            break;
        }
        int n = labels_decode(kp, g[i].len, v->labels, max, err);
        if (n < 0) {
            vg_free(v->labels);
            v->labels = NULL;
            rc = n;
            break;
        }
        v->nlabels = (size_t)n;
        v->bytes = g[i].bytes;
        v->entries = g[i].entries;
        set->n++;
    }
    vg_free(g);
    if (rc) {
        logstore_volume_set_free(set);
        return rc;
    }
    qsort(set->v, set->n, sizeof *set->v, cmp_group_bytes);
    for (size_t i = limit; limit && i < set->n; i++)
        vg_free(set->v[i].labels);
    if (limit && set->n > limit)
        set->n = limit;
    *out = set;
    return 0;
}

void logstore_volume_set_free(struct logstore_volume_set *s)
{
    if (!s)
        return;
    struct volume_priv *priv = s->priv;
    for (size_t i = 0; s->v && i < s->n; i++)
        vg_free(s->v[i].labels);
    if (priv) {
        qsel_free(&priv->sel);
        vg_buf_free(&priv->keys);
        vg_free(priv);
    }
    vg_free(s->v);
    vg_free(s);
}
