/* tsdb: Vigil's time-series store on one LevelDB database. API and contracts in tsdb.h.
 *
 * Key layout (every key starts with a one-byte prefix; u64be is big-endian so byte
 * order is numeric order; "tk(t)" is a timestamp as u64be of (uint64)t XOR 1<<63, so
 * negative times sort first):
 *
 *   '#' "version"                      -> "2"   format version ("1" read and upgraded)
 *   '#' "nextid"                       -> u64be  ids below it were handed out; never reused
 *   'S' id(u64be)                      -> canonical labels (labels.h)      series definition
 *                                         (labels -> id lives only in the head, which
 *                                         holds every series: no reverse key on disk)
 *   'P' name 0x00 value 0x00 id(u64be) -> ""     postings of one new series, see index.h
 *   'P' name 0x00 value 0x01 last(u64be) -> packed postings block (index.h), written by
 *                                         maintenance and compaction in place of one-id keys
 *   'C' id(u64be) tk(start) 0x00       -> chunk bytes (chunk.h) of in-order samples
 *   'C' id(u64be) tk(start) 0x01 h(u64be) -> chunk bytes of out-of-order samples; h is a
 *                                         hash of the bytes, so chunks with the same start
 *                                         stay distinct and rewriting one is idempotent
 *   'W' seq(u64be)                     -> write-ahead record, see wal.h
 *   'M' metric family name             -> u8 type, uvarint len, help, uvarint len, unit
 *   'E' id(u64be) tk(t)                -> u64le value bits, canonical exemplar labels
 *
 * A chunk holds at most 120 samples spanning less than 2 h (HEAD_CHUNK_MAX_SPAN_MS), so
 * the chunks holding [mint, maxt] of a series are found with one seek to
 * 'C' id tk(mint - 2h + 1) and a forward scan while start <= maxt.
 *
 * Write path: tsdb_append judges each sample against the series' state under the head
 * lock (mu), reserves the series (pending++) and a record number, then drops the lock
 * and writes ONE batch with sync: new series keys (S, P, #nextid), one W record with
 * the accepted samples, exemplars and metadata. Only after that write succeeds are the
 * samples applied to the head. Concurrent appends on disjoint series therefore fsync
 * in parallel (LevelDB group-commits them); an append that touches a series another
 * append has reserved waits until that one is applied, so every series sees its
 * samples judged and applied in record order, which is also replay order.
 *
 * Persistence: a head chunk is cut at 120 samples or 2 h and written as a 'C' key
 * (without sync: the W records still cover it until they are deleted, and that delete
 * is a sync write issued after it). Maintenance also writes head chunks whose first
 * sample is over an hour older than the series' newest or than now, and every
 * out-of-order buffer; then deletes W records older than every sample still only in
 * memory; then applies retention; then, once enough series are new, packs the postings
 * (tsdb_maint.c).
 *
 * Replay at open: an in-order sample at or before the end of the series' newest
 * in-order chunk is already persisted (in-order chunks of a series are written oldest
 * first, never overtaking one another: head_node_writable); an out-of-order one is
 * persisted iff a chunk already holds its timestamp.
 *
 * Files: this one has the layout, open/replay/close and the append path; reads are in
 * tsdb_query.c, flushing, truncation and retention in tsdb_maint.c (shared internals in
 * tsdb_int.h); head.c keeps the in-memory series, index.c the postings, wal.c the
 * record format. */
#include "tsdb_int.h"

#include "../base/vg_alloc.h"
#include "index.h"
#include "wal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/* LevelDB memtable size. The memtable holds mostly write-ahead records, i.e. a second
 * copy of samples the head already has, for as long as it fills: on average half of
 * it is resident. Measured on the 50k-series benchmark (RSS after the load): 2 MiB
 * instead of LevelDB's 8 MiB left 36 MB of anonymous memory instead of 40-46, with no
 * visible change in the server's CPU time for the load. */
#define TSDB_WRITE_BUFFER (2u << 20)
/* LevelDB keeps every open table mmapped, and opening one reads its index and filter
 * blocks at the end of the file: with the kernel's fault-around that leaves about 40-64
 * KiB of each table resident. During ingest the write-ahead records fill hundreds of
 * ~1 MB tables (211 open after the 50k-series benchmark: 8.2 MB of RSS), so the table
 * cache is bounded (LevelDB keeps max_open_files - 10 tables open); evicted tables are
 * unmapped and reopened when read again. */
#define TSDB_MAX_OPEN_FILES 64
/* No bloom filters: they serve only point reads (Get), and the TSDB's hot reads are all
 * seeks (chunks, postings, series); the filters cost ~1.25 bytes per key on disk, ~9%
 * of the store on the 200k-series benchmark. */
#define TSDB_BLOOM_BITS (-1)
/* Table blocks of LevelDB's usual 4 KiB. 16 KiB blocks shrink the store (snappy
 * compresses each block on its own and neighbouring series repeat label text and chunk
 * bytes: 200k-series benchmark 0.97 -> 0.77 bytes per sample) but an instant query over
 * 50k series then misses the block cache far more often: sum(rate(...[5m])) on the
 * 24 h query benchmark took 910 M instead of 705 M instructions, a quarter of them
 * snappy decompressing whole blocks for one chunk each. */
#define TSDB_BLOCK_BYTES (4u << 10)

static const char KEY_VERSION[] = "#version";
static const char KEY_NEXTID[] = "#nextid";
/* Version 2 added packed postings blocks and write-ahead records v2, which a version-1
 * binary would silently skip; this one reads version-1 stores and marks them 2 at open,
 * so that an older binary refuses them instead of missing samples. */
#define FORMAT_VERSION "2"
#define FORMAT_VERSION_OLD "1"

void tsdb_opts_default(struct tsdb_opts *o)
{
    memset(o, 0, sizeof *o);
    o->retention_ms = 15LL * 24 * 3600 * 1000;
    o->ooo_window_ms = 30LL * 60 * 1000;
    o->cache_bytes = 32u << 20;
    o->maint_interval_ms = 60000;
}

const char *tsdb_metric_type_name(enum tsdb_metric_type t)
{
    static const char *const names[] = {
        [TSDB_TYPE_UNKNOWN] = "unknown",
        [TSDB_TYPE_COUNTER] = "counter",
        [TSDB_TYPE_GAUGE] = "gauge",
        [TSDB_TYPE_HISTOGRAM] = "histogram",
        [TSDB_TYPE_GAUGEHISTOGRAM] = "gaugehistogram",
        [TSDB_TYPE_SUMMARY] = "summary",
        [TSDB_TYPE_INFO] = "info",
        [TSDB_TYPE_STATESET] = "stateset",
    };
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

const char *tsdb_reject_name(enum tsdb_reject r)
{
    switch (r) {
    case TSDB_REJECT_TOO_OLD:
        return "too_old";
    case TSDB_REJECT_DUPLICATE:
        return "duplicate_conflict";
    default:
        return "unknown";
    }
}

/* ---- chunks on disk ---- */

/* Adds node n of series s as a 'C' key to b. Under mu: chunk_bytes may grow n's buffer,
 * which readers iterate under mu. */
void tsdb_node_put(struct kv_batch *b, const struct head_series *s, struct head_node *n)
{
    size_t len;
    const unsigned char *bytes = chunk_bytes(&n->enc, &len);
    unsigned char key[TSDB_CHUNK_KEY_MAX];
    size_t klen = tsdb_chunk_seek_key(key, s->id, n->mint);
    key[klen++] = n->kind;
    if (n->kind == HEAD_NODE_OOO) {
        tsdb_put_u64be(key + klen, head_hash((const char *)bytes, len));
        klen += 8;
    }
    kv_batch_put(b, key, klen, bytes, len);
}

int tsdb_refs_push(struct tsdb_node_refs *r, struct head_series *s, struct head_node *n)
{
    if (r->n == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 64;
        struct tsdb_node_ref *nv = vg_realloc(r->v, ncap * sizeof *nv);
        if (!nv)
            return VG_ENOMEM;
        r->v = nv;
        r->cap = ncap;
    }
    r->v[r->n].s = s;
    r->v[r->n].n = n;
    r->n++;
    return 0;
}

/* Writes the nodes in refs (already in b, writer set). Called and returns with mu
 * held; drops it around the write. Written nodes leave memory; failed ones are kept
 * for the next maintenance. */
int tsdb_refs_write(struct tsdb *db, struct tsdb_node_refs *refs, struct kv_batch *b,
                      struct vg_err *err)
{
    int rc = 0;
    if (kv_batch_count(b)) {
        pthread_mutex_unlock(&db->mu);
        rc = kv_write(db->kv, b, false, err);
        pthread_mutex_lock(&db->mu);
    }
    for (size_t i = 0; i < refs->n; i++) {
        if (rc == 0) {
            head_node_drop(refs->v[i].s, refs->v[i].n);
            db->chunks_persisted++;
        } else {
            refs->v[i].n->writer = 0;
        }
    }
    refs->n = 0;
    kv_batch_clear(b);
    return rc;
}

/* Finds the value stored on disk at t for series id. */
bool tsdb_disk_find(struct tsdb *db, uint64_t id, int64_t t, uint64_t *bits)
{
    struct kv_iter *it = kv_iter_new(db->kv, NULL, true);
    if (!it)
        return false;
    unsigned char key[TSDB_CHUNK_KEY_MAX];
    size_t klen = tsdb_chunk_seek_key(key, id, tsdb_sat_sub(t, HEAD_CHUNK_MAX_SPAN_MS - 1));
    bool found = false;
    for (kv_iter_seek(it, key, klen); !found && kv_iter_has_prefix(it, key, 9);
         kv_iter_next(it)) {
        size_t kl, vl;
        const char *k = kv_iter_key(it, &kl);
        int64_t start;
        uint8_t kind;
        if (!tsdb_chunk_key_parse(k, kl, id, &start, &kind))
            continue;
        if (start > t)
            break;
        const unsigned char *v = (const unsigned char *)kv_iter_value(it, &vl);
        struct chunk_iter ci;
        chunk_iter_init(&ci, v, vl);
        int64_t ct;
        double cv;
        while (chunk_next(&ci, &ct, &cv) && ct <= t) {
            if (ct == t) {
                *bits = tsdb_dbits(cv);
                found = true;
                break;
            }
        }
    }
    kv_iter_free(it);
    return found;
}

/* ---- appending ---- */

enum verdict { V_IN, V_OOO, V_DUP, V_OLD, V_CONFLICT };

struct smp {
    int64_t t;
    double v;
    uint32_t ord;
    uint8_t verdict;
};

struct grp {
    struct head_series *s;
    uint32_t in0;      /* first input series of this series */
    uint32_t first, n; /* its samples: sm[first .. first + n) */
    uint32_t fill;
    uint32_t nin, nooo, nex;
    bool keys;         /* S/L/P keys go into this batch */
};

struct tsdb_actx {
    struct tsdb_actx *next;
    struct grp *g;
    size_t ng, gcap;
    struct smp *sm;
    size_t scap;
    uint32_t *gi;      /* input series -> group, UINT32_MAX when skipped */
    uint64_t *hash;
    size_t *loff;      /* input series -> offset of its label bytes in lbl, if there */
    struct vg_str *lv; /* input series -> its canonical label bytes (lbl or the caller's) */
    struct head_series **found; /* input series -> its series as plan() first saw it */
    size_t icap;       /* capacity of gi, hash, loff, lv and found alike */
    struct vg_buf lbl, key, val;
    struct kv_batch *batch;
    struct tsdb_node_refs cuts;
    struct tsdb_inflight fl;
    uint64_t seq, next_id;
    size_t batch_peak; /* most bytes batch held: LevelDB keeps that capacity */
};

/* A pooled append context keeps the capacity its largest batch needed. Batches that
 * create series (S/L/P keys for up to a thousand series) grow it to a few MiB, which
 * would then stay resident per concurrent writer for good; an ordinary batch of samples
 * needs a few hundred KiB. Contexts holding more than this are freed, not pooled. */
#define ACTX_KEEP_BYTES (1u << 20)

static void actx_free(struct tsdb_actx *c)
{
    if (!c)
        return;
    vg_free(c->g);
    vg_free(c->sm);
    vg_free(c->gi);
    vg_free(c->hash);
    vg_free(c->loff);
    vg_free(c->lv);
    vg_free(c->found);
    vg_buf_free(&c->lbl);
    vg_buf_free(&c->key);
    vg_buf_free(&c->val);
    kv_batch_free(c->batch);
    vg_free(c->cuts.v);
    vg_free(c);
}

static struct tsdb_actx *actx_get(struct tsdb *db)
{
    pthread_mutex_lock(&db->pool_mu);
    struct tsdb_actx *c = db->pool;
    if (c)
        db->pool = c->next;
    pthread_mutex_unlock(&db->pool_mu);
    if (c)
        return c;
    c = vg_calloc(1, sizeof *c);
    if (c && !(c->batch = kv_batch_new())) {
        vg_free(c);
        c = NULL;
    }
    return c;
}

static size_t actx_held(const struct tsdb_actx *c)
{
    return c->batch_peak + c->lbl.cap + c->key.cap + c->val.cap + c->gcap * sizeof *c->g +
           c->scap * sizeof *c->sm +
           c->icap * (sizeof *c->gi + sizeof *c->hash + sizeof *c->loff + sizeof *c->lv +
                       sizeof *c->found) +
           c->cuts.cap * sizeof *c->cuts.v;
}

static void actx_put(struct tsdb *db, struct tsdb_actx *c)
{
    if (kv_batch_bytes(c->batch) > c->batch_peak)
        c->batch_peak = kv_batch_bytes(c->batch);
    if (actx_held(c) > ACTX_KEEP_BYTES) {
        actx_free(c);
        return;
    }
    kv_batch_clear(c->batch);
    pthread_mutex_lock(&db->pool_mu);
    c->next = db->pool;
    db->pool = c;
    pthread_mutex_unlock(&db->pool_mu);
}

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need)
        ncap *= 2;
    void *np = vg_realloc(*p, ncap * elem);
    if (!np)
        return false;
    *p = np;
    *cap = ncap;
    return true;
}

/* Outside the lock: label encodings (enc's where given), hashes and scratch space for
 * batch b. */
static int prepare(struct tsdb_actx *c, const struct tsdb_batch *b, const struct vg_str *enc,
                   struct vg_err *err)
{
    size_t total = 0;
    for (size_t i = 0; i < b->nseries; i++) {
        total += b->series[i].nsamples;
        if (b->series[i].nlabels > UINT16_MAX)
            return vg_err_set(err, VG_EINVAL, "series %zu has %zu labels (limit %u)", i,
                              b->series[i].nlabels, UINT16_MAX);
    }
    if (total > UINT32_MAX || b->nseries > UINT32_MAX)
        return vg_err_set(err, VG_ETOOLARGE, "batch of %zu samples is too large", total);
    size_t gcap = c->gcap;
    if (!grow((void **)&c->sm, &c->scap, total ? total : 1, sizeof *c->sm) ||
        !grow((void **)&c->g, &gcap, b->nseries ? b->nseries : 1, sizeof *c->g))
        return tsdb_nomem(err, "for an append");
    c->gcap = gcap;
    /* gi, hash, loff, lv and found share one capacity (icap >= nseries + 1), so they are
     * grown together to the same size. */
    if (b->nseries + 1 > c->icap) {
        size_t ncap = c->icap ? c->icap : 16;
        while (ncap < b->nseries + 1)
            ncap *= 2;
        void *gi = vg_realloc(c->gi, ncap * sizeof *c->gi);
        if (!gi)
            return tsdb_nomem(err, "for an append");
        c->gi = gi;
        void *hash = vg_realloc(c->hash, ncap * sizeof *c->hash);
        if (!hash)
            return tsdb_nomem(err, "for an append");
        c->hash = hash;
        void *loff = vg_realloc(c->loff, ncap * sizeof *c->loff);
        if (!loff)
            return tsdb_nomem(err, "for an append");
        c->loff = loff;
        void *lv = vg_realloc(c->lv, ncap * sizeof *c->lv);
        if (!lv)
            return tsdb_nomem(err, "for an append");
        c->lv = lv;
        void *found = vg_realloc(c->found, ncap * sizeof *c->found);
        if (!found)
            return tsdb_nomem(err, "for an append");
        c->found = found;
        c->icap = ncap;
    }
    vg_buf_reset(&c->lbl);
    for (size_t i = 0; i < b->nseries; i++) {
        if (enc && enc[i].p) {
            c->lv[i] = enc[i];
            continue;
        }
        c->loff[i] = c->lbl.len;
        labels_encode(b->series[i].labels, b->series[i].nlabels, &c->lbl);
        c->lv[i] = (struct vg_str){ NULL, c->lbl.len - c->loff[i] };
    }
    if (vg_buf_failed(&c->lbl))
        return tsdb_nomem(err, "encoding labels");
    for (size_t i = 0; i < b->nseries; i++) {
        if (!c->lv[i].p) /* lbl is complete: its bytes no longer move */
            c->lv[i].p = c->lbl.p + c->loff[i];
        c->hash[i] = head_hash(c->lv[i].p, c->lv[i].len);
    }
    return 0;
}

static void fmt_labels(char *dst, size_t cap, const struct label *ls, size_t n)
{
    size_t w = 0;
    int k = snprintf(dst, cap, "{");
    w = k > 0 ? (size_t)k : 0;
    for (size_t i = 0; i < n && w < cap; i++) {
        k = snprintf(dst + w, cap - w, "%s%.*s=\"%.*s\"", i ? ", " : "", (int)ls[i].name.len,
                     ls[i].name.p, (int)(ls[i].value.len > 64 ? 64 : ls[i].value.len),
                     ls[i].value.p);
        if (k < 0)
            return;
        w += (size_t)k;
    }
    if (w < cap)
        snprintf(dst + w, cap - w, "}");
}

static void reject(struct tsdb *db, struct tsdb_append_result *res, enum tsdb_reject r,
                   const struct tsdb_series_in *in, const struct smp *x, const char *why,
                   int64_t newest)
{
    if (res->rejected[0] + res->rejected[1] == 0) {
        char ls[160];
        fmt_labels(ls, sizeof ls, in->labels, in->nlabels);
        char msg[512];
        snprintf(msg, sizeof msg,
                 "%s: sample at %" PRId64 " %s (newest %" PRId64 ", out-of-order window %" PRId64
                 " ms)",
                 ls, x->t, why, newest, db->o.ooo_window_ms);
        size_t len = strnlen(msg, sizeof res->first_reject - 1);
        memcpy(res->first_reject, msg, len);
        res->first_reject[len] = 0;
    }
    res->rejected[r]++;
}

static int cmp_smp(const void *a, const void *b)
{
    const struct smp *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return (x->ord > y->ord) - (x->ord < y->ord);
}

/* Judges the samples of one series (sorted by time, ties in input order) against its
 * stored state. Under mu. */
static void judge(struct tsdb *db, struct grp *g, struct smp *sm, const struct tsdb_batch *b,
                  struct tsdb_append_result *res)
{
    struct head_series *s = g->s;
    const struct tsdb_series_in *in = &b->series[g->in0];
    uint64_t window = db->o.ooo_window_ms > 0 ? (uint64_t)db->o.ooo_window_ms : 0;
    bool have = s->max_t != INT64_MIN, have_prev = false;
    int64_t m = s->max_t, pt = 0;
    uint64_t pb = 0;
    for (uint32_t k = 0; k < g->n; k++) {
        struct smp *x = &sm[k];
        uint64_t bits = tsdb_dbits(x->v), eb;
        if (have_prev && x->t == pt) {
            x->verdict = bits == pb ? V_DUP : V_CONFLICT;
        } else if (!have || x->t > m) {
            x->verdict = V_IN;
            m = x->t;
            have = true;
        } else if ((uint64_t)m - (uint64_t)x->t > window) {
            x->verdict = V_OLD;
            reject(db, res, TSDB_REJECT_TOO_OLD, in, x, "is too old", s->max_t);
            continue;
        } else if (head_find(s, x->t, &eb) || tsdb_disk_find(db, s->id, x->t, &eb)) {
            x->verdict = eb == bits ? V_DUP : V_CONFLICT;
            bits = eb;
        } else {
            x->verdict = V_OOO;
        }
        if (x->verdict == V_DUP) {
            res->duplicates++;
        } else if (x->verdict == V_CONFLICT) {
            reject(db, res, TSDB_REJECT_DUPLICATE, in, x,
                   "has the timestamp of a stored sample with a different value", s->max_t);
        } else {
            g->nin += x->verdict == V_IN;
            g->nooo += x->verdict == V_OOO;
        }
        have_prev = true;
        pt = x->t;
        pb = bits;
    }
}

/* Under mu: groups the batch by series (creating new ones), judges every sample and
 * reserves the series and a record number. Returns 0, or VG_ENOMEM with nothing
 * reserved. */
static int plan(struct tsdb *db, struct tsdb_actx *c, const struct tsdb_batch *b,
                struct tsdb_append_result *res, struct vg_err *err)
{
    struct head *h = &db->head;
    for (size_t i = 0; i < b->nseries; i++) {
        const struct tsdb_series_in *in = &b->series[i];
        c->found[i] = NULL;
        /* Overlap the lookups' cache misses: while series i is looked up, series
         * i + 2 * (4 - stage) is prefetched at that stage (head_prefetch). */
        for (int stage = 0; stage < 4; stage++) {
            size_t ahead = i + (size_t)(2 * (4 - stage));
            if (ahead < b->nseries)
                head_prefetch(h, c->hash[ahead], stage);
        }
        if (!in->nsamples && !in->nexemplars)
            continue;
        struct head_series *s = head_lookup(h, c->lv[i].p, c->lv[i].len, c->hash[i]);
        c->found[i] = s;
        if (s && s->pending) {
            /* Another append holds this series: wait until it is applied, start over. */
            db->waiters++;
            pthread_cond_wait(&db->applied, &db->mu);
            db->waiters--;
            i = (size_t)-1;
        }
    }
    c->ng = 0;
    int rc = 0;
    for (size_t i = 0; i < b->nseries; i++) {
        const struct tsdb_series_in *in = &b->series[i];
        c->gi[i] = UINT32_MAX;
        if (!in->nsamples && !in->nexemplars)
            continue;
        /* The lock was held since the loop above, so what it found is still there;
         * a series it did not find may have been created for an earlier input. */
        const char *lbl = c->lv[i].p;
        size_t llen = c->lv[i].len;
        struct head_series *s = c->found[i];
        if (!s)
            s = head_lookup(h, lbl, llen, c->hash[i]);
        if (!s && !(s = head_create(h, h->next_id, lbl, llen, c->hash[i],
                                    (uint16_t)in->nlabels))) {
            rc = tsdb_nomem(err, "creating a series");
            break;
        }
        if (s->mark) {
            struct grp *g = &c->g[s->mark - 1];
            g->n += (uint32_t)in->nsamples;
            g->nex += (uint32_t)in->nexemplars;
            c->gi[i] = s->mark - 1;
            continue;
        }
        struct grp *g = &c->g[c->ng];
        memset(g, 0, sizeof *g);
        g->s = s;
        g->in0 = (uint32_t)i;
        g->n = (uint32_t)in->nsamples;
        g->nex = (uint32_t)in->nexemplars;
        c->gi[i] = (uint32_t)c->ng;
        s->mark = (uint32_t)++c->ng;
    }
    for (size_t k = 0; k < c->ng; k++)
        c->g[k].s->mark = 0;
    if (rc)
        return rc;
    uint32_t off = 0;
    for (size_t k = 0; k < c->ng; k++) {
        c->g[k].first = off;
        off += c->g[k].n;
    }
    uint32_t ord = 0;
    for (size_t i = 0; i < b->nseries; i++) {
        if (c->gi[i] == UINT32_MAX)
            continue;
        struct grp *g = &c->g[c->gi[i]];
        const struct tsdb_series_in *in = &b->series[i];
        for (size_t j = 0; j < in->nsamples; j++) {
            struct smp *x = &c->sm[g->first + g->fill++];
            x->t = in->samples[j].t;
            x->v = in->samples[j].v;
            x->ord = ord++;
        }
    }
    uint64_t accepted = 0;
    bool keys = false;
    for (size_t k = 0; k < c->ng; k++) {
        struct grp *g = &c->g[k];
        struct smp *sm = c->sm + g->first;
        for (uint32_t j = 1; j < g->n; j++) {
            if (sm[j].t < sm[j - 1].t) {
                qsort(sm, g->n, sizeof *sm, cmp_smp);
                break;
            }
        }
        judge(db, g, sm, b, res);
        accepted += g->nin + g->nooo;
        g->keys = !(g->s->flags & HEAD_F_DURABLE) && (g->nin + g->nooo + g->nex) > 0;
        keys |= g->keys;
        g->s->pending++;
    }
    c->seq = 0;
    if (accepted) {
        c->seq = db->next_seq++;
        c->fl.seq = c->seq;
        c->fl.next = db->inflight.next;
        c->fl.prev = &db->inflight;
        db->inflight.next->prev = &c->fl;
        db->inflight.next = &c->fl;
    }
    c->next_id = keys ? h->next_id : 0;
    return 0;
}

/* Adds the S and P keys of a series (labels ls) to batch (put, or delete when del). */
void tsdb_series_keys(struct kv_batch *batch, struct vg_buf *kb, uint64_t id,
                        const char *lbl, size_t llen, const struct label *ls, size_t n,
                        bool del)
{
    unsigned char sk[TSDB_ID_KEY_LEN];
    tsdb_id_key(sk, 'S', id);
    if (del)
        kv_batch_delete(batch, sk, sizeof sk);
    else
        kv_batch_put(batch, sk, sizeof sk, lbl, llen);
    for (size_t i = 0; i < n; i++) {
        if (!ls[i].value.len)
            continue;
        vg_buf_reset(kb);
        index_key(kb, ls[i].name, ls[i].value, id);
        if (del)
            kv_batch_delete(batch, kb->p, kb->len);
        else
            kv_batch_put(batch, kb->p, kb->len, "", 0);
    }
}

/* Outside the lock: the one batch of an append. */
static int build_batch(struct tsdb_actx *c, const struct tsdb_batch *b,
                       struct tsdb_append_result *res, struct vg_err *err)
{
    struct kv_batch *batch = c->batch;
    kv_batch_clear(batch);
    for (size_t k = 0; k < c->ng; k++) {
        struct grp *g = &c->g[k];
        if (!g->keys)
            continue;
        const struct tsdb_series_in *in = &b->series[g->in0];
        /* The input's label bytes are the series' (it was found or created by them). */
        tsdb_series_keys(batch, &c->key, g->s->id, c->lv[g->in0].p,
                         g->s->lbl_len, in->labels, in->nlabels, false);
    }
    if (c->next_id) {
        unsigned char v[8];
        tsdb_put_u64be(v, c->next_id);
        kv_batch_put(batch, KEY_NEXTID, sizeof KEY_NEXTID - 1, v, 8);
    }
    if (c->seq) {
        struct wal_writer w;
        size_t nsamples = 0;
        for (size_t k = 0; k < c->ng; k++)
            nsamples += c->g[k].nin + c->g[k].nooo;
        vg_buf_reset(&c->val);
        wal_begin(&w, &c->val);
        wal_reserve(&w, c->ng, nsamples);
        for (size_t k = 0; k < c->ng; k++) {
            struct grp *g = &c->g[k];
            if (!g->nin && !g->nooo)
                continue;
            if (g->n == 1 && g->nin == 1) {
                wal_group1(&w, g->s->id, c->sm[g->first].t, c->sm[g->first].v);
                continue;
            }
            wal_group(&w, g->s->id, g->nin, g->nooo);
            for (int pass = V_IN; pass <= V_OOO; pass++)
                for (uint32_t j = 0; j < g->n; j++)
                    if (c->sm[g->first + j].verdict == pass)
                        wal_sample(&w, c->sm[g->first + j].t, c->sm[g->first + j].v);
        }
        unsigned char wk[WAL_KEY_LEN];
        wal_key(wk, c->seq);
        kv_batch_put(batch, wk, sizeof wk, c->val.p, c->val.len);
    }
    for (size_t i = 0; i < b->nseries; i++) {
        const struct tsdb_series_in *in = &b->series[i];
        if (c->gi[i] == UINT32_MAX)
            continue;
        uint64_t id = c->g[c->gi[i]].s->id;
        for (size_t j = 0; j < in->nexemplars; j++) {
            const struct tsdb_exemplar *e = &in->exemplars[j];
            unsigned char ek[17];
            tsdb_id_key(ek, 'E', id);
            tsdb_put_u64be(ek + 9, tsdb_tk(e->t));
            vg_buf_reset(&c->val);
            uint64_t bits = tsdb_dbits(e->v);
            for (int q = 0; q < 8; q++)
                vg_buf_putc(&c->val, (char)(bits >> (8 * q)));
            labels_encode(e->labels, e->nlabels, &c->val);
            kv_batch_put(batch, ek, sizeof ek, c->val.p, c->val.len);
            res->exemplars_accepted++;
        }
    }
    for (size_t i = 0; i < b->nmeta; i++) {
        const struct tsdb_metadata *m = &b->meta[i];
        vg_buf_reset(&c->key);
        vg_buf_putc(&c->key, 'M');
        vg_buf_append(&c->key, m->metric.p, m->metric.len);
        vg_buf_reset(&c->val);
        vg_buf_putc(&c->val, (char)m->type);
        vg_buf_put_uvarint(&c->val, m->help.len);
        vg_buf_append(&c->val, m->help.p, m->help.len);
        vg_buf_put_uvarint(&c->val, m->unit.len);
        vg_buf_append(&c->val, m->unit.p, m->unit.len);
        kv_batch_put(batch, c->key.p, c->key.len, c->val.p, c->val.len);
    }
    if (vg_buf_failed(&c->key) || vg_buf_failed(&c->val))
        return tsdb_nomem(err, "building the write batch");
    return 0;
}

#define APPLY_AHEAD 4 /* groups between a head chunk's prefetch and its append */

/* Under mu, after the batch write (ok says whether it succeeded): applies the accepted
 * samples to the head, releases the series and the record number. Cut chunks are
 * queued in c->cuts and put into c->batch. */
static void apply(struct tsdb *db, struct tsdb_actx *c, bool ok, struct tsdb_append_result *res)
{
    int failures = 0;
    c->cuts.n = 0;
    kv_batch_clear(c->batch);
    for (size_t k = 0; k < c->ng; k++) {
        struct grp *g = &c->g[k];
        struct head_series *s = g->s;
        /* head_append reads the series' encoder, the start of its head chunk and writes
         * at the chunk's end: the encoder is brought in 2 * APPLY_AHEAD groups ahead,
         * then through it both ends of the chunk APPLY_AHEAD groups ahead. */
        if (ok && k + (size_t)2 * APPLY_AHEAD < c->ng) {
            const struct chunk_enc *e = &c->g[k + (size_t)2 * APPLY_AHEAD].s->head;
            __builtin_prefetch(e, 1); /* the encoder may straddle two cache lines */
            __builtin_prefetch(&e->count, 1);
        }
        if (ok && k + APPLY_AHEAD < c->ng) {
            const struct chunk_enc *e = &c->g[k + APPLY_AHEAD].s->head;
            if (e->buf) {
                __builtin_prefetch(e->buf, 1);
                __builtin_prefetch(e->buf + 3 + e->bits / 8, 1);
            }
        }
        s->pending--;
        if (!ok)
            continue;
        if (g->keys) {
            s->flags |= HEAD_F_DURABLE;
            res->series_created++;
        }
        for (uint32_t j = 0; j < g->n; j++) {
            struct smp *x = &c->sm[g->first + j];
            if (x->verdict == V_IN) {
                struct head_node *cut = NULL;
                failures += head_append(s, x->t, x->v, c->seq, &cut) != 0;
                /* Older cuts of this batch are ours already; a chunk left for
                 * maintenance (writer 0) makes this one wait for it too. */
                if (cut && !(s->flags & HEAD_F_LOST) && head_node_writable(cut, c->seq) &&
                    tsdb_refs_push(&c->cuts, s, cut) == 0) {
                    cut->writer = c->seq;
                    tsdb_node_put(c->batch, s, cut);
                }
            } else if (x->verdict == V_OOO) {
                failures += head_ooo_insert(s, x->t, x->v, c->seq) != 0;
            }
        }
        res->accepted += g->nin + g->nooo;
        db->samples_appended += g->nin + g->nooo;
        db->ooo_samples += g->nooo;
    }
    if (c->seq) {
        c->fl.prev->next = c->fl.next;
        c->fl.next->prev = c->fl.prev;
    }
    if (db->waiters)
        pthread_cond_broadcast(&db->applied);
    if (failures)
        vg_complain(&db->apply_complaint, 60000, VG_LOG_ERROR, "tsdb",
                    "out of memory applying samples to the head",
                    "samples stay in the write-ahead log and return at the next restart");
}

int tsdb_append(struct tsdb *db, const struct tsdb_batch *b, struct tsdb_append_result *res,
                struct vg_err *err)
{
    return tsdb_append_enc(db, b, NULL, res, err);
}

int tsdb_append_enc(struct tsdb *db, const struct tsdb_batch *b, const struct vg_str *enc,
                    struct tsdb_append_result *res, struct vg_err *err)
{
    memset(res, 0, sizeof *res);
    struct tsdb_actx *c = actx_get(db);
    if (!c)
        return tsdb_nomem(err, "for an append");
    int rc = prepare(c, b, enc, err);
    if (rc) {
        actx_put(db, c);
        return rc;
    }
    pthread_mutex_lock(&db->mu);
    rc = plan(db, c, b, res, err);
    pthread_mutex_unlock(&db->mu);
    if (rc) {
        actx_put(db, c);
        return rc;
    }
    rc = build_batch(c, b, res, err);
    if (kv_batch_bytes(c->batch) > c->batch_peak)
        c->batch_peak = kv_batch_bytes(c->batch);
    if (rc == 0 && kv_batch_count(c->batch))
        rc = kv_write(db->kv, c->batch, !db->o.no_sync, err);
    pthread_mutex_lock(&db->mu);
    apply(db, c, rc == 0, res);
    if (c->cuts.n) {
        struct vg_err werr;
        if (tsdb_refs_write(db, &c->cuts, c->batch, &werr) != 0)
            vg_log(VG_LOG_WARN, "tsdb", "writing cut chunks failed; maintenance retries",
                   "error", werr.msg, NULL);
    }
    pthread_mutex_unlock(&db->mu);
    if (rc) {
        uint64_t dup = res->duplicates;
        uint64_t rej[TSDB_REJECT_COUNT];
        memcpy(rej, res->rejected, sizeof rej);
        memset(res, 0, sizeof *res);
        res->duplicates = dup;
        memcpy(res->rejected, rej, sizeof rej);
    }
    actx_put(db, c);
    return rc;
}

/* ---- opening and closing ---- */

static int check_version(struct tsdb *db, struct vg_err *err)
{
    struct vg_buf v;
    vg_buf_init(&v);
    int rc = kv_get(db->kv, NULL, KEY_VERSION, sizeof KEY_VERSION - 1, &v, err);
    bool old = rc == 0 && v.len == sizeof FORMAT_VERSION_OLD - 1 &&
               memcmp(v.p, FORMAT_VERSION_OLD, v.len) == 0;
    if (rc == VG_ENOTFOUND || old)
        rc = kv_put(db->kv, KEY_VERSION, sizeof KEY_VERSION - 1, FORMAT_VERSION,
                    sizeof FORMAT_VERSION - 1, true, err);
    else if (rc == 0 && (v.len != sizeof FORMAT_VERSION - 1 ||
                         memcmp(v.p, FORMAT_VERSION, v.len) != 0))
        rc = vg_err_set(err, VG_EIO, "tsdb %s: unsupported format version \"%.*s\" (want %s)",
                        db->dir, (int)(v.len > 16 ? 16 : v.len), v.p, FORMAT_VERSION);
    vg_buf_free(&v);
    return rc;
}

/* Last timestamp of an encoded chunk (INT64_MIN if empty or malformed). */
static int64_t chunk_last_t(const char *buf, size_t len)
{
    struct chunk_iter it;
    chunk_iter_init(&it, (const unsigned char *)buf, len);
    int64_t t, last = INT64_MIN;
    double v;
    while (chunk_next(&it, &t, &v))
        last = t;
    return last;
}

/* End of the newest in-order chunk on disk of series id, as load_series found it
 * (INT64_MIN when none or when id was not loaded). */
struct persisted {
    int64_t *inorder_max; /* [id - 1], n entries */
    size_t n;
};

static int64_t persisted_until(const struct persisted *p, uint64_t id)
{
    return id >= 1 && id <= p->n ? p->inorder_max[id - 1] : INT64_MIN;
}

/* Loads every 'S' key into the head, then each series' time range from its chunks and
 * the end of its newest in-order chunk (for replay) into *pers. */
static int load_series(struct tsdb *db, struct persisted *pers, struct vg_err *err)
{
    struct head *h = &db->head;
    struct vg_buf v;
    vg_buf_init(&v);
    if (kv_get(db->kv, NULL, KEY_NEXTID, sizeof KEY_NEXTID - 1, &v, NULL) == 0 && v.len == 8)
        h->next_id = tsdb_get_u64be(v.p);
    vg_buf_free(&v);
    struct kv_iter *it = kv_iter_new(db->kv, NULL, false);
    struct label *scratch = NULL;
    size_t scap = 0;
    int rc = it ? 0 : tsdb_nomem(err, "loading series");
    if (it)
        kv_iter_seek(it, "S", 1);
    for (; rc == 0 && kv_iter_has_prefix(it, "S", 1); kv_iter_next(it)) {
        size_t kl, vl;
        const char *k = kv_iter_key(it, &kl);
        const char *val = kv_iter_value(it, &vl);
        uint64_t id = kl == TSDB_ID_KEY_LEN ? tsdb_get_u64be(k + 1) : 0;
        if (!id || head_by_id(h, id))
            continue;
        size_t maxl = vl / 2 + 1;
        if (maxl > scap) {
            struct label *n = vg_realloc(scratch, maxl * sizeof *n);
            if (!n) {
                rc = tsdb_nomem(err, "loading series");
                break;
            }
            scratch = n;
            scap = maxl;
        }
        int nl = labels_decode(val, vl, scratch, maxl, NULL);
        if (nl < 0 || nl > UINT16_MAX) {
            vg_log(VG_LOG_WARN, "tsdb", "skipping a series with malformed labels", "dir",
                   db->dir, NULL);
            continue;
        }
        struct head_series *s = head_create(h, id, val, vl, head_hash(val, vl), (uint16_t)nl);
        if (!s)
            rc = tsdb_nomem(err, "loading series");
        else
            s->flags |= HEAD_F_DURABLE;
    }
    vg_free(scratch);
    if (rc == 0 && it)
        rc = kv_iter_error(it, err);
    pers->inorder_max = NULL;
    pers->n = 0;
    if (rc == 0 && h->by_id_cap) {
        pers->inorder_max = vg_malloc(h->by_id_cap * sizeof *pers->inorder_max);
        if (!pers->inorder_max)
            rc = tsdb_nomem(err, "loading series");
        else
            pers->n = h->by_id_cap;
    }
    for (size_t i = 0; rc == 0 && i < pers->n; i++) {
        struct head_series *s = h->by_id[i];
        pers->inorder_max[i] = INT64_MIN;
        if (!s)
            continue;
        unsigned char key[TSDB_ID_KEY_LEN];
        tsdb_id_key(key, 'C', s->id);
        kv_iter_seek(it, key, sizeof key);
        size_t kl, vl;
        int64_t start;
        uint8_t kind;
        if (!kv_iter_has_prefix(it, key, sizeof key))
            continue;
        const char *first = kv_iter_key(it, &kl);
        if (tsdb_chunk_key_parse(first, kl, s->id, &start, &kind))
            s->min_t = start;
        /* Newest chunks: walk back from the next series' first key. */
        unsigned char next[TSDB_ID_KEY_LEN];
        tsdb_id_key(next, 'C', s->id + 1);
        kv_iter_seek(it, next, sizeof next);
        if (kv_iter_valid(it))
            kv_iter_prev(it);
        else
            kv_iter_seek_last(it);
        for (; kv_iter_has_prefix(it, key, sizeof key); kv_iter_prev(it)) {
            const char *k = kv_iter_key(it, &kl);
            if (!tsdb_chunk_key_parse(k, kl, s->id, &start, &kind))
                continue;
            const char *val = kv_iter_value(it, &vl);
            int64_t last = chunk_last_t(val, vl);
            if (last > s->max_t)
                s->max_t = last;
            if (start < s->min_t)
                s->min_t = start;
            if (kind == HEAD_NODE_INORDER) {
                pers->inorder_max[i] = last;
                break;
            }
        }
    }
    if (rc == 0 && it)
        rc = kv_iter_error(it, err);
    kv_iter_free(it);
    return rc;
}

/* Rebuilds the head from the W records (see the replay rule at the top). */
static int replay(struct tsdb *db, const struct persisted *pers, struct vg_err *err)
{
    struct head *h = &db->head;
    int64_t cutoff = db->o.retention_ms > 0 ? tsdb_sat_sub(tsdb_now_ms(), db->o.retention_ms)
                                            : INT64_MIN;
    struct kv_iter *it = kv_iter_new(db->kv, NULL, false);
    if (!it)
        return tsdb_nomem(err, "replaying the write-ahead log");
    uint64_t first = 0, last = 0;
    int rc = 0;
    for (kv_iter_seek(it, "W", 1); rc == 0 && kv_iter_has_prefix(it, "W", 1); kv_iter_next(it)) {
        size_t kl, vl;
        const char *k = kv_iter_key(it, &kl);
        uint64_t seq;
        if (!wal_key_parse(k, kl, &seq))
            continue;
        if (!first)
            first = seq;
        last = seq;
        struct wal_reader r;
        struct wal_group g;
        struct vg_err werr;
        const char *val = kv_iter_value(it, &vl);
        int more = wal_reader_init(&r, val, vl, &werr);
        while (rc == 0 && more == 0 && (more = wal_next_group(&r, &g, &werr)) == 1) {
            struct head_series *s = head_by_id(h, g.id);
            int64_t t, done_until = persisted_until(pers, g.id);
            double v;
            for (uint32_t j = 0; s && rc == 0 && wal_next_sample(&r, &t, &v); j++) {
                uint64_t eb;
                bool inorder = j < g.n_inorder;
                if (t < cutoff || (inorder && t <= done_until))
                    continue;
                if (inorder && t > s->max_t) {
                    struct head_node *cut;
                    rc = head_append(s, t, v, seq, &cut);
                } else if (!head_find(s, t, &eb) && !tsdb_disk_find(db, g.id, t, &eb)) {
                    rc = head_ooo_insert(s, t, v, seq);
                }
            }
            more = 0;
        }
        if (rc)
            rc = tsdb_nomem(err, "replaying the write-ahead log");
        else if (more < 0)
            vg_log(VG_LOG_WARN, "tsdb", "skipping a damaged write-ahead record", "dir", db->dir,
                   "error", werr.msg, NULL);
    }
    if (rc == 0)
        rc = kv_iter_error(it, err);
    kv_iter_free(it);
    db->next_seq = last + 1;
    db->wal_first = first ? first : db->next_seq;
    return rc;
}

static void destroy(struct tsdb *db)
{
    kv_close(db->kv);
    head_free(&db->head);
    while (db->pool) {
        struct tsdb_actx *c = db->pool;
        db->pool = c->next;
        actx_free(c);
    }
    pthread_mutex_destroy(&db->mu);
    pthread_cond_destroy(&db->applied);
    pthread_mutex_destroy(&db->pool_mu);
    pthread_mutex_destroy(&db->maint_mu);
    vg_free(db->dir);
    vg_free(db);
}

struct tsdb *tsdb_open(const struct tsdb_opts *opts, struct vg_err *err)
{
    if (!opts || !opts->dir || !*opts->dir) {
        vg_err_set(err, VG_EINVAL, "tsdb: no directory given");
        return NULL;
    }
    struct tsdb *db = vg_calloc(1, sizeof *db);
    if (!db || !(db->dir = vg_strdup(opts->dir))) {
        vg_free(db);
        tsdb_nomem(err, "opening the store");
        return NULL;
    }
    db->o = *opts;
    db->o.dir = db->dir;
    if (!db->o.cache_bytes)
        db->o.cache_bytes = 32u << 20;
    if (db->o.maint_interval_ms <= 0)
        db->o.maint_interval_ms = 60000;
    pthread_mutex_init(&db->mu, NULL);
    pthread_cond_init(&db->applied, NULL);
    pthread_mutex_init(&db->pool_mu, NULL);
    pthread_mutex_init(&db->maint_mu, NULL);
    head_init(&db->head);
    db->inflight.next = db->inflight.prev = &db->inflight;
    db->last_retention_cutoff = INT64_MIN;

    struct kv_opts ko = { .cache_bytes = db->o.cache_bytes,
                          .write_buffer_bytes = TSDB_WRITE_BUFFER,
                          .max_open_files = TSDB_MAX_OPEN_FILES,
                          .bloom_bits_per_key = TSDB_BLOOM_BITS,
                          .block_bytes = TSDB_BLOCK_BYTES,
                          .sync_interval_ms = db->o.sync_interval_ms };
    db->kv = kv_open(db->dir, &ko, err);
    struct persisted pers = { NULL, 0 };
    int rc = db->kv ? check_version(db, err) : VG_EIO;
    if (rc == 0)
        rc = load_series(db, &pers, err);
    if (rc == 0)
        rc = replay(db, &pers, err);
    vg_free(pers.inorder_max);
    if (rc == 0)
        rc = tsdb_flush(db, tsdb_now_ms(), TSDB_FLUSH_WAITING, err);
    if (rc == 0)
        rc = tsdb_maint_start(db, err);
    if (rc) {
        destroy(db);
        return NULL;
    }
    return db;
}

void tsdb_close(struct tsdb *db)
{
    if (!db)
        return;
    tsdb_maint_stop(db);
    struct vg_err err;
    pthread_mutex_lock(&db->maint_mu);
    int rc = tsdb_flush(db, tsdb_now_ms(), TSDB_FLUSH_ALL, &err);
    if (rc == 0)
        rc = tsdb_wal_truncate(db, &err);
    pthread_mutex_unlock(&db->maint_mu);
    if (rc)
        vg_log(VG_LOG_ERROR, "tsdb", "flushing the head at close failed; the write-ahead "
               "log keeps the samples", "dir", db->dir, "error", err.msg, NULL);
    destroy(db);
}
