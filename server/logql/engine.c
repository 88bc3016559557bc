/* engine: the LogQL evaluator's entry point (engine.h): log queries, the evaluation of
 * metric queries step by step (engine_range.c, engine_vector.c do the operators), the
 * shaping of Loki's result kinds, limits, and the value/label helpers of engine_int.h.
 *
 * Log queries (Loki's readStreams): one logstore_query over [start, end) in the query's
 * direction, with the selector's matchers and the pipeline's literal needles for chunk
 * skipping; each entry goes through the pipeline, kept entries are counted towards
 * limit, and with an interval only an entry at least interval after (forward) or
 * before (backward) the last returned one is taken, across all streams as Loki does.
 * Streams are keyed by their final label set and sorted by Loki's rule: the labels'
 * String() form `{a="b", c="d"}` compared as bytes (logqlmodel.Streams.Less), so
 * `{a="x", b="y"}` sorts before `{a="x"}` (',' < '}'). An instant log query is refused
 * as Loki 3 refuses it.
 *
 * Metric queries: the tree is evaluated once over all steps (engine_int.h). A literal
 * at the top is a scalar (instant) or a one-series matrix with the literal at every
 * step (range), as Loki's evalLiteral; vector(x) is a vector/matrix without labels. An
 * instant result is a vector sorted by labels unless the query sorts (sort, sort_desc
 * anywhere, Loki's Sortable), a range result is a matrix sorted by labels. Sample times
 * are the step times in whole milliseconds (Go's integer division of nanoseconds).
 *
 * Limits and messages (Loki's): max_entries_limit ("max entries limit per query
 * exceeded, limit > max_entries_limit_per_query (N > M)"), max_points as Loki's query
 * API ("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the
 * query resolution (?step=XX)" when (end - start) / step is larger), max_series on the
 * final result ("maximum of series (500) reached for a single query"), and the timeout
 * checked every 256 entries or steps (Loki's server.ErrDeadlineExceeded message). */
#include "engine.h"

#include "../../storage/base/vg_alloc.h"
#include "../../storage/base/vg_buf.h"
#include "../../storage/logstore/logstore.h"
#include "engine_int.h"
#include "pipeline.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TICK_EVERY 256
#define ARENA_BLOCK 16384
#define NEEDLES_MAX LQ_NEEDLES_MAX

void logql_limits_default(struct logql_limits *l)
{
    l->timeout_ms = 0;
    l->max_series = 500;
    l->max_points = 11000;
    l->max_entries_limit = 5000;
    l->no_pushdown = false;
}

const char *logql_result_type_str(enum logql_result_type t)
{
    switch (t) {
    case LQ_RESULT_STREAMS: return "streams";
    case LQ_RESULT_VECTOR: return "vector";
    case LQ_RESULT_MATRIX: return "matrix";
    case LQ_RESULT_SCALAR: return "scalar";
    }
    return "unknown";
}

void logql_result_free(struct logql_result *r)
{
    if (r)
        vg_arena_free(r->arena); /* r itself lives in its arena */
}

/* ---- errors and the clock ---- */

int lq_nomem(struct lq_ev *ev)
{
    return vg_err_set(ev->err, VG_ENOMEM, "out of memory evaluating the query");
}

int lq_fail(struct lq_ev *ev, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vg_err_vset(ev->err, code, fmt, ap);
    va_end(ap);
    return code;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int lq_tick(struct lq_ev *ev)
{
    if (!ev->deadline_ns || ev->tick++ % TICK_EVERY)
        return 0;
    if (mono_ns() < ev->deadline_ns)
        return 0;
    return lq_fail(ev, VG_EOVERLOAD,
                   "Request timed out, decrease the duration of the request or add more label "
                   "matchers (prefer exact match over regex match) to reduce the amount of data "
                   "processed.");
}

struct logstore_iter *lq_select(struct lq_ev *ev, const struct logql_node *log, int64_t start,
                                int64_t end, bool backward, size_t limit)
{
    struct vg_str needles[NEEDLES_MAX]; /* the store reads them when the query starts */
    size_t nn = logql_pipeline_needles(log, needles, NEEDLES_MAX);
    struct logstore_query q = {
        .matchers = log->log.ms,
        .nmatchers = log->log.nms,
        .start = start,
        .end = end,
        .backward = backward,
        .limit = limit,
        .needles = nn ? needles : NULL,
        .nneedles = nn,
        /* the same literals are exact substrings of every kept line: the store drops
         * the other entries while they are still in the decompressed chunk */
        .line_needles = nn ? needles : NULL,
        .nline_needles = nn,
    };
    struct logstore_iter *it = logstore_query(ev->ls, &q, ev->err);
    if (!it && !ev->err->code)
        lq_fail(ev, VG_EINVAL, "cannot select streams");
    return it;
}

void lq_add_iter_stats(struct lq_ev *ev, const struct logstore_iter *it)
{
    struct logstore_iter_stats s;
    logstore_iter_stats(it, &s);
    ev->st->streams += s.streams;
    ev->st->chunks_considered += s.chunks_considered;
    ev->st->chunks_skipped += s.chunks_skipped;
    ev->st->chunks_opened += s.chunks_opened;
    ev->st->bytes_decompressed += s.bytes_decompressed;
    ev->st->lines_processed += s.lines_skipped; /* read, though the store dropped them */
    ev->st->bytes_processed += s.bytes_skipped;
}

/* ---- values ---- */

int lq_grow(struct lq_ev *ev, void *p, size_t *cap, size_t need, size_t size, size_t min_cap)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : min_cap;
    while (nc < need)
        nc *= 2;
    void *old, *np; /* memcpy: p points to a typed pointer, not a void * */
    memcpy(&old, p, sizeof old);
    if (!(np = vg_realloc(old, nc * size)))
        return lq_nomem(ev);
    memcpy(p, &np, sizeof np);
    *cap = nc;
    return 0;
}

struct lq_val *lq_val_new(struct lq_ev *ev)
{
    struct lq_val *v = vg_calloc(1, sizeof *v);
    if (!v)
        lq_nomem(ev);
    return v;
}

struct lq_val *lq_scalar_new(struct lq_ev *ev, double x)
{
    struct lq_val *v = lq_val_new(ev);
    if (v) {
        v->scalar = true;
        v->sv = x;
    }
    return v;
}

void lq_val_free(struct lq_val *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++)
        vg_free(v->s[i].pt);
    vg_free(v->s);
    vg_free(v);
}

long lq_val_add(struct lq_ev *ev, struct lq_val *v, const struct label *ls, size_t nls)
{
    if (lq_grow(ev, &v->s, &v->cap, v->n + 1, sizeof *v->s, 8))
        return VG_ENOMEM;
    v->s[v->n] = (struct lq_ser){ .ls = ls, .nls = nls };
    return (long)v->n++;
}

int lq_ser_put(struct lq_ev *ev, struct lq_ser *s, uint32_t k, double x)
{
    if (lq_grow(ev, &s->pt, &s->cap, s->n + 1, sizeof *s->pt, 4))
        return VG_ENOMEM;
    s->pt[s->n++] = (struct lq_pt){ k, x };
    return 0;
}

void lq_val_compact(struct lq_val *v)
{
    size_t j = 0;
    for (size_t i = 0; i < v->n; i++) {
        if (v->s[i].n)
            v->s[j++] = v->s[i];
        else
            vg_free(v->s[i].pt);
    }
    v->n = j;
}

/* ---- map ---- */

static uint64_t mix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

static int map_alloc(struct lq_map *m, size_t cap)
{
    m->keys = vg_malloc(cap * sizeof *m->keys);
    m->vals = vg_calloc(cap, sizeof *m->vals);
    if (!m->keys || !m->vals) {
        vg_free(m->keys);
        vg_free(m->vals);
        m->keys = NULL;
        m->vals = NULL;
        return VG_ENOMEM;
    }
    m->cap = cap;
    m->n = 0;
    return 0;
}

int lq_map_init(struct lq_ev *ev, struct lq_map *m, size_t hint)
{
    size_t cap = 16;
    while (cap < hint * 2)
        cap *= 2;
    if (map_alloc(m, cap))
        return lq_nomem(ev);
    return 0;
}

void lq_map_free(struct lq_map *m)
{
    vg_free(m->keys);
    vg_free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->n = 0;
}

long lq_map_get(const struct lq_map *m, uint64_t key)
{
    size_t mask = m->cap - 1;
    for (size_t i = mix64(key) & mask;; i = (i + 1) & mask) {
        if (!m->vals[i])
            return -1;
        if (m->keys[i] == key)
            return (long)m->vals[i] - 1;
    }
}

static void map_insert(struct lq_map *m, uint64_t key, uint32_t val1)
{
    size_t mask = m->cap - 1;
    size_t i = mix64(key) & mask;
    while (m->vals[i])
        i = (i + 1) & mask;
    m->keys[i] = key;
    m->vals[i] = val1;
    m->n++;
}

int lq_map_put(struct lq_ev *ev, struct lq_map *m, uint64_t key, size_t idx)
{
    if ((m->n + 1) * 2 > m->cap) {
        struct lq_map nm;
        if (map_alloc(&nm, m->cap * 2))
            return lq_nomem(ev);
        for (size_t i = 0; i < m->cap; i++)
            if (m->vals[i])
                map_insert(&nm, m->keys[i], m->vals[i]);
        lq_map_free(m);
        *m = nm;
    }
    map_insert(m, key, (uint32_t)idx + 1);
    return 0;
}

/* ---- builder ---- */

int lq_bld_init(struct lq_ev *ev, struct lq_bld *b, struct lq_val *v, size_t hint)
{
    b->v = v;
    b->next = NULL;
    b->nnext = 0;
    return lq_map_init(ev, &b->map, hint);
}

void lq_bld_free(struct lq_bld *b)
{
    lq_map_free(&b->map);
    vg_free(b->next);
    b->next = NULL;
}

long lq_bld_get(struct lq_ev *ev, struct lq_bld *b, const struct label *ls, size_t nls,
                uint64_t hash, bool copy)
{
    long i = lq_map_get(&b->map, hash), last = -1;
    for (; i >= 0 && b->next; i = (long)b->next[i] - 1) { /* next exists once a key does */
        const struct lq_ser *s = &b->v->s[i];
        if (labels_cmp(s->ls, s->nls, ls, nls) == 0)
            return i;
        last = i;
    }
    const struct label *own = ls;
    if (copy && lq_lbl_copy(ev, ls, nls, &own))
        return VG_ENOMEM;
    size_t had = b->nnext;
    if (lq_grow(ev, &b->next, &b->nnext, b->v->n + 1, sizeof *b->next, 16) || !b->next)
        return VG_ENOMEM;
    memset(b->next + had, 0, (b->nnext - had) * sizeof *b->next);
    long idx = lq_val_add(ev, b->v, own, nls);
    if (idx < 0)
        return idx;
    if (last >= 0)
        b->next[last] = (uint32_t)idx + 1;
    else if (lq_map_put(ev, &b->map, hash, (size_t)idx))
        return VG_ENOMEM;
    return idx;
}

int lq_bld_put(struct lq_ev *ev, struct lq_bld *b, size_t i, uint32_t k, double x,
               const char *dup_msg)
{
    struct lq_ser *s = &b->v->s[i];
    if (lq_ser_has(s, k))
        return lq_fail(ev, VG_EINVAL, "%s", dup_msg);
    return lq_ser_put(ev, s, k, x);
}

/* ---- step index ---- */

int lq_sidx_build(struct lq_ev *ev, const struct lq_val *v, struct lq_sidx *x)
{
    size_t total = 0;
    for (size_t i = 0; i < v->n; i++)
        total += v->s[i].n;
    x->off = vg_calloc(ev->nsteps + 1, sizeof *x->off);
    x->r = vg_malloc((total ? total : 1) * sizeof *x->r);
    if (!x->off || !x->r) {
        lq_sidx_free(x);
        return lq_nomem(ev);
    }
    for (size_t i = 0; i < v->n; i++)
        for (size_t j = 0; j < v->s[i].n; j++)
            x->off[v->s[i].pt[j].k + 1]++;
    for (size_t k = 0; k < ev->nsteps; k++)
        x->off[k + 1] += x->off[k];
    /* fill with a moving cursor per step (off[k] advanced), then shift back */
    for (size_t i = 0; i < v->n; i++)
        for (size_t j = 0; j < v->s[i].n; j++) {
            const struct lq_pt *p = &v->s[i].pt[j];
            x->r[x->off[p->k]++] = (struct lq_ref){ (uint32_t)i, p->v };
        }
    for (size_t k = ev->nsteps; k > 0; k--)
        x->off[k] = x->off[k - 1];
    x->off[0] = 0;
    return 0;
}

void lq_sidx_free(struct lq_sidx *x)
{
    vg_free(x->off);
    vg_free(x->r);
    x->off = NULL;
    x->r = NULL;
}

/* ---- labels ---- */

bool lq_names_has(const struct logql_strings *names, struct vg_str name)
{
    for (size_t i = 0; i < names->n; i++)
        if (vg_str_eq_c(name, names->v[i]))
            return true;
    return false;
}

int lq_lbl_filter(struct lq_ev *ev, const struct label *ls, size_t n,
                  const struct logql_strings *names, bool keep, const struct label **out,
                  size_t *nout)
{
    struct label *o = vg_arena_alloc(ev->arena, (n ? n : 1) * sizeof *o);
    if (!o)
        return lq_nomem(ev);
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        if (lq_names_has(names, ls[i].name) == keep)
            o[j++] = ls[i];
    *out = o;
    *nout = j;
    return 0;
}

int lq_lbl_set(struct lq_ev *ev, const struct label *ls, size_t n, struct vg_str name,
               struct vg_str value, const struct label **out, size_t *nout)
{
    struct label *o = vg_arena_alloc(ev->arena, (n + 1) * sizeof *o);
    char *vc = value.len ? vg_arena_strndup(ev->arena, value.p, value.len) : NULL;
    char *nc = vg_arena_strndup(ev->arena, name.p, name.len);
    if (!o || !nc || (value.len && !vc))
        return lq_nomem(ev);
    size_t j = 0;
    bool placed = false;
    for (size_t i = 0; i < n; i++) {
        int c = vg_str_cmp(ls[i].name, name);
        if (c == 0)
            continue;
        if (c > 0 && !placed && value.len) {
            o[j++] = (struct label){ { nc, name.len }, { vc, value.len } };
            placed = true;
        }
        o[j++] = ls[i];
    }
    if (!placed && value.len)
        o[j++] = (struct label){ { nc, name.len }, { vc, value.len } };
    *out = o;
    *nout = j;
    return 0;
}

static int str_copy(struct lq_ev *ev, struct vg_str in, struct vg_str *out)
{
    if (!in.len) {
        *out = (struct vg_str){ "", 0 };
        return 0;
    }
    char *p = vg_arena_strndup(ev->arena, in.p, in.len);
    if (!p)
        return lq_nomem(ev);
    *out = (struct vg_str){ p, in.len };
    return 0;
}

int lq_lbl_copy(struct lq_ev *ev, const struct label *ls, size_t n, const struct label **out)
{
    struct label *o = vg_arena_alloc(ev->arena, (n ? n : 1) * sizeof *o);
    if (!o)
        return lq_nomem(ev);
    for (size_t i = 0; i < n; i++)
        if (str_copy(ev, ls[i].name, &o[i].name) || str_copy(ev, ls[i].value, &o[i].value))
            return VG_ENOMEM;
    *out = o;
    return 0;
}

/* Go's strconv.Quote for the bytes Loki's label values hold in practice: escapes for
 * quote, backslash and control bytes, other bytes as they are. */
static void quote(struct vg_buf *b, struct vg_str s)
{
    vg_buf_putc(b, '"');
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.p[i];
        switch (c) {
        case '"': vg_buf_puts(b, "\\\""); break;
        case '\\': vg_buf_puts(b, "\\\\"); break;
        case '\n': vg_buf_puts(b, "\\n"); break;
        case '\t': vg_buf_puts(b, "\\t"); break;
        case '\r': vg_buf_puts(b, "\\r"); break;
        default:
            if (c < 0x20 || c == 0x7f)
                vg_buf_printf(b, "\\x%02x", c);
            else
                vg_buf_putc(b, (char)c);
        }
    }
    vg_buf_putc(b, '"');
}

static void lbl_str_buf(struct vg_buf *b, const struct label *ls, size_t n)
{
    vg_buf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i)
            vg_buf_puts(b, ", ");
        vg_buf_append(b, ls[i].name.p, ls[i].name.len);
        vg_buf_putc(b, '=');
        quote(b, ls[i].value);
    }
    vg_buf_putc(b, '}');
}

void lq_lbl_str(const struct label *ls, size_t n, char *buf, size_t cap)
{
    struct vg_buf b;
    vg_buf_init(&b);
    lbl_str_buf(&b, ls, n);
    const char *s = vg_buf_cstr(&b);
    snprintf(buf, cap, "%s", s ? s : "{...}");
    vg_buf_free(&b);
}

/* ---- log queries ---- */

struct kept {
    uint32_t stream;
    struct logql_entry e;
};

struct logrun {
    struct logql_pipeline *pl;
    struct logstore_iter *it;
    struct lq_val *streams; /* one series per stream (labels only) */
    struct lq_bld b;
    bool bld;
    struct kept *kept;
    size_t nkept, capkept;
};

/* The entry with its metadata and the labels the pipeline extracted, copied into the
 * arena. */
static int entry_fill(struct lq_ev *ev, const struct logstore_entry *in,
                      const struct logql_pipeline_out *o, struct logql_entry *e)
{
    *e = (struct logql_entry){ .t = in->t, .nmeta = in->nmeta, .nparsed = o->nparsed };
    if (str_copy(ev, o->line, &e->line))
        return VG_ENOMEM;
    if (in->nmeta && lq_lbl_copy(ev, in->meta, in->nmeta, &e->meta))
        return VG_ENOMEM;
    if (o->nparsed && lq_lbl_copy(ev, o->parsed, o->nparsed, &e->parsed))
        return VG_ENOMEM;
    return 0;
}

static int kept_push(struct lq_ev *ev, struct logrun *r, uint32_t stream,
                     const struct logql_entry *e)
{
    if (lq_grow(ev, &r->kept, &r->capkept, r->nkept + 1, sizeof *r->kept, 64))
        return VG_ENOMEM;
    r->kept[r->nkept++] = (struct kept){ stream, *e };
    return 0;
}

/* Reads entries until limit are kept or the data ends. */
static int log_read(struct lq_ev *ev, const struct logql_node *n, struct logrun *r)
{
    const struct logql_params *p = ev->p;
    /* the store may stop early only when every entry it returns is kept */
    size_t limit = n->log.nstages == 0 && p->interval_ns <= 0 ? p->limit : 0;
    r->it = lq_select(ev, n, p->start_ns, p->end_ns, p->backward, limit);
    if (!r->it)
        return ev->err->code;
    int64_t last = 0;
    bool have_last = false;
    while (r->nkept < p->limit) {
        struct logstore_entry e;
        int rc = logstore_iter_next(r->it, &e, ev->err);
        if (rc < 0)
            return rc;
        if (rc == 0)
            break;
        ev->st->lines_processed++;
        ev->st->bytes_processed += e.line.len;
        if ((rc = lq_tick(ev)))
            return rc;
        struct logql_pipeline_out o;
        rc = logql_pipeline_process(r->pl, e.t, e.line, e.labels, e.nlabels, e.meta, e.nmeta,
                                    &o);
        if (rc < 0)
            return lq_nomem(ev);
        if (rc == 0)
            continue;
        if (p->interval_ns > 0 && have_last &&
            (p->backward ? e.t > last - p->interval_ns : e.t < last + p->interval_ns))
            continue;
        last = e.t;
        have_last = true;
        long s = lq_bld_get(ev, &r->b, o.labels, o.nlabels, o.labels_hash, true);
        if (s < 0)
            return (int)s;
        struct logql_entry le;
        if (entry_fill(ev, &e, &o, &le) || kept_push(ev, r, (uint32_t)s, &le))
            return VG_ENOMEM;
    }
    return 0;
}

struct skey {
    char *s;
    size_t len;
    size_t idx;
};

static int skey_cmp(const void *pa, const void *pb)
{
    const struct skey *a = pa, *b = pb;
    return vg_str_cmp((struct vg_str){ a->s, a->len }, (struct vg_str){ b->s, b->len });
}

/* Streams from the kept entries, in Loki's order. */
static int log_streams(struct lq_ev *ev, struct logrun *r, struct logql_result *res)
{
    size_t ns = r->streams->n;
    res->nstreams = ns;
    if (!ns)
        return 0;
    struct logql_stream *out = vg_arena_calloc(ev->arena, ns * sizeof *out);
    struct skey *keys = vg_calloc(ns, sizeof *keys);
    if (!out || !keys) {
        vg_free(keys);
        return lq_nomem(ev);
    }
    int rc = 0;
    for (size_t i = 0; i < ns; i++) {
        struct vg_buf b;
        vg_buf_init(&b);
        lbl_str_buf(&b, r->streams->s[i].ls, r->streams->s[i].nls);
        if (vg_buf_failed(&b)) {
            vg_buf_free(&b);
            rc = lq_nomem(ev);
            goto out;
        }
        keys[i].s = vg_buf_steal(&b, &keys[i].len);
        keys[i].idx = i;
    }
    qsort(keys, ns, sizeof *keys, skey_cmp);
    size_t *pos = vg_calloc(ns, sizeof *pos); /* stream index -> output position */
    if (!pos) {
        rc = lq_nomem(ev);
        goto out;
    }
    for (size_t j = 0; j < ns; j++) {
        const struct lq_ser *s = &r->streams->s[keys[j].idx];
        pos[keys[j].idx] = j;
        out[j].labels = s->ls;
        out[j].nlabels = s->nls;
    }
    for (size_t i = 0; i < r->nkept; i++)
        out[pos[r->kept[i].stream]].nentries++;
    for (size_t j = 0; j < ns; j++) {
        out[j].entries = vg_arena_alloc(ev->arena, out[j].nentries * sizeof *out[j].entries);
        if (!out[j].entries) {
            vg_free(pos);
            rc = lq_nomem(ev);
            goto out;
        }
        out[j].nentries = 0;
    }
    for (size_t i = 0; i < r->nkept; i++) {
        struct logql_stream *st = &out[pos[r->kept[i].stream]];
        st->entries[st->nentries++] = r->kept[i].e;
    }
    vg_free(pos);
    res->streams = out;
out:
    for (size_t i = 0; i < ns; i++)
        vg_free(keys[i].s);
    vg_free(keys);
    return rc;
}

static int exec_log(struct lq_ev *ev, const struct logql_node *n, struct logql_result *res)
{
    const struct logql_params *p = ev->p;
    res->type = LQ_RESULT_STREAMS;
    if (p->instant)
        return lq_fail(ev, VG_EINVAL, "log queries are not supported as an instant query type, "
                                      "please change your query to a range query type");
    if (ev->lim->max_entries_limit && p->limit > ev->lim->max_entries_limit)
        return lq_fail(ev, VG_EINVAL,
                       "max entries limit per query exceeded, limit > "
                       "max_entries_limit_per_query (%zu > %zu)",
                       p->limit, ev->lim->max_entries_limit);
    struct logrun r = { 0 };
    int rc = VG_ENOMEM;
    r.pl = logql_pipeline_new(n, NULL, ev->err);
    if (!r.pl)
        return ev->err->code ? ev->err->code : VG_EINVAL;
    r.streams = lq_val_new(ev);
    if (!r.streams || lq_bld_init(ev, &r.b, r.streams, 16))
        goto out;
    r.bld = true;
    if (p->limit && (rc = log_read(ev, n, &r)))
        goto out;
    if (r.it)
        lq_add_iter_stats(ev, r.it);
    ev->st->lines_returned = r.nkept;
    rc = log_streams(ev, &r, res);
out:
    if (r.bld)
        lq_bld_free(&r.b);
    lq_val_free(r.streams);
    vg_free(r.kept);
    logstore_iter_free(r.it);
    logql_pipeline_free(r.pl);
    return rc;
}

/* ---- metric queries ---- */

static struct lq_val *eval_vector_fn(struct lq_ev *ev, double x)
{
    struct lq_val *v = lq_val_new(ev);
    if (!v)
        return NULL;
    if (lq_val_add(ev, v, NULL, 0) < 0)
        goto fail;
    for (size_t k = 0; k < ev->nsteps; k++)
        if (lq_ser_put(ev, &v->s[0], (uint32_t)k, x))
            goto fail;
    return v;
fail:
    lq_val_free(v);
    return NULL;
}

struct lq_val *lq_eval(struct lq_ev *ev, const struct logql_node *n)
{
    switch (n->kind) {
    case LQ_LITERAL: return lq_scalar_new(ev, n->literal);
    case LQ_VECTOR: return eval_vector_fn(ev, n->vector);
    case LQ_RANGE_AGG: return lq_eval_range(ev, n);
    case LQ_VECTOR_AGG: return lq_eval_vecagg(ev, n);
    case LQ_BINARY: return lq_eval_binary(ev, n);
    case LQ_LABEL_REPLACE: return lq_eval_replace(ev, n);
    case LQ_LOG: break;
    }
    lq_fail(ev, VG_EINVAL, "parse error : queries require at least one regexp or equality "
                           "matcher that does not have an empty-compatible value");
    return NULL;
}

/* Loki's Sortable: sort or sort_desc anywhere in the tree. */
static bool sortable(const struct logql_node *n)
{
    switch (n->kind) {
    case LQ_VECTOR_AGG:
        return n->vec.op == LQ_VEC_SORT || n->vec.op == LQ_VEC_SORT_DESC ||
               sortable(n->vec.expr);
    case LQ_BINARY: return sortable(n->bin.lhs) || sortable(n->bin.rhs);
    case LQ_LABEL_REPLACE: return sortable(n->replace.expr);
    default: return false;
    }
}

static int series_cmp(const void *pa, const void *pb)
{
    const struct logql_series *a = pa, *b = pb;
    return labels_cmp(a->labels, a->nlabels, b->labels, b->nlabels);
}

static int64_t t_ms(const struct lq_ev *ev, size_t k)
{
    return lq_t(ev, k) / 1000000;
}

static int metric_result(struct lq_ev *ev, const struct logql_node *root, struct lq_val *v,
                         struct logql_result *res)
{
    bool instant = ev->p->instant;
    if (v->scalar) {
        if (instant) {
            res->type = LQ_RESULT_SCALAR;
            res->scalar = (struct logql_point){ t_ms(ev, 0), v->sv };
            return 0;
        }
        /* a range query of a literal: one series without labels (Loki's
         * PopulateMatrixFromScalar) */
        if (lq_val_add(ev, v, NULL, 0) < 0)
            return VG_ENOMEM;
        for (size_t k = 0; k < ev->nsteps; k++)
            if (lq_ser_put(ev, &v->s[0], (uint32_t)k, v->sv))
                return VG_ENOMEM;
    }
    lq_val_compact(v);
    res->type = instant ? LQ_RESULT_VECTOR : LQ_RESULT_MATRIX;
    if (ev->lim->max_series && v->n > ev->lim->max_series)
        return lq_fail(ev, VG_ETOOLARGE, "maximum of series (%zu) reached for a single query",
                       ev->lim->max_series);
    if (!v->n)
        return 0;
    struct logql_series *out = vg_arena_calloc(ev->arena, v->n * sizeof *out);
    if (!out)
        return lq_nomem(ev);
    for (size_t i = 0; i < v->n; i++) {
        const struct lq_ser *s = &v->s[i];
        struct logql_point *pts = vg_arena_alloc(ev->arena, s->n * sizeof *pts);
        if (!pts)
            return lq_nomem(ev);
        for (size_t j = 0; j < s->n; j++)
            pts[j] = (struct logql_point){ t_ms(ev, s->pt[j].k), s->pt[j].v };
        out[i] = (struct logql_series){ s->ls, s->nls, pts, s->n };
    }
    if (!(instant && sortable(root)))
        qsort(out, v->n, sizeof *out, series_cmp);
    res->series = out;
    res->nseries = v->n;
    return 0;
}

/* Steps of the query: one at end for an instant query, else start..end by step. */
static int setup_steps(struct lq_ev *ev)
{
    const struct logql_params *p = ev->p;
    if (p->instant) {
        ev->t0 = p->end_ns;
        ev->step = 1;
        ev->nsteps = 1;
        return 0;
    }
    if (p->step_ns <= 0)
        return lq_fail(ev, VG_EINVAL, "zero or negative query resolution step widths are not "
                                      "accepted. Try a positive integer");
    if (p->end_ns < p->start_ns)
        return lq_fail(ev, VG_EINVAL, "end timestamp must not be before start time");
    uint64_t span = (uint64_t)p->end_ns - (uint64_t)p->start_ns;
    uint64_t intervals = span / (uint64_t)p->step_ns;
    size_t maxp = ev->lim->max_points;
    if ((maxp && intervals > maxp) || intervals >= UINT32_MAX - 1) {
        size_t shown = maxp ? maxp : UINT32_MAX - 2;
        char num[32];
        int len = snprintf(num, sizeof num, "%zu", shown);
        char grouped[48];
        size_t g = 0;
        for (int i = 0; i < len; i++) { /* 11000 -> 11,000 as Loki writes it */
            if (i && (len - i) % 3 == 0)
                grouped[g++] = ',';
            grouped[g++] = num[i];
        }
        grouped[g] = 0;
        return lq_fail(ev, VG_EINVAL, "exceeded maximum resolution of %s points per timeseries. "
                                      "Try decreasing the query resolution (?step=XX)", grouped);
    }
    ev->t0 = p->start_ns;
    ev->step = p->step_ns;
    ev->nsteps = (size_t)intervals + 1;
    return 0;
}

static int exec_metric(struct lq_ev *ev, const struct logql_node *root, struct logql_result *res)
{
    int rc = setup_steps(ev);
    if (rc)
        return rc;
    struct lq_val *v = lq_eval(ev, root);
    if (!v)
        return ev->err->code ? ev->err->code : VG_EINTERNAL;
    rc = metric_result(ev, root, v, res);
    lq_val_free(v);
    return rc;
}

int logql_exec(struct logstore *ls, const struct logql_expr *expr, const struct logql_params *p,
               const struct logql_limits *lim, struct logql_result **out, struct vg_err *err)
{
    int64_t t_start = mono_ns();
    struct vg_err local;
    if (!err)
        err = &local; /* the evaluator reads err->code back */
    *out = NULL;
    vg_err_clear(err);
    struct logql_limits dl;
    if (!lim) {
        logql_limits_default(&dl);
        lim = &dl;
    }
    struct vg_arena *a = vg_arena_new(ARENA_BLOCK);
    struct logql_result *res = a ? vg_arena_calloc(a, sizeof *res) : NULL;
    if (!res) {
        vg_arena_free(a);
        return vg_err_set(err, VG_ENOMEM, "out of memory evaluating the query");
    }
    res->arena = a;
    struct lq_ev ev = {
        .ls = ls,
        .p = p,
        .lim = lim,
        .arena = a,
        .err = err,
        .st = &res->stats,
        .deadline_ns = lim->timeout_ms > 0 ? t_start + lim->timeout_ms * 1000000 : 0,
    };
    int rc = logql_is_log_query(expr->root) ? exec_log(&ev, expr->root, res)
                                            : exec_metric(&ev, expr->root, res);
    if (rc) {
        if (!err->code) /* every path sets err; keep the promise if one did not */
            vg_err_set(err, rc, "query failed (%s)", vg_code_name(rc));
        logql_result_free(res);
        return rc;
    }
    res->stats.exec_ns = mono_ns() - t_start;
    *out = res;
    return 0;
}
