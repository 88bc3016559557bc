/* logstore: Vigil's log store. API and contracts in logstore.h.
 *
 * Key layout (one LevelDB database; u64be/u32be are big-endian so byte order is
 * numeric order; tk(t) is u64be((uint64)t XOR 1<<63), so negative times sort first):
 *
 *   '#' "version"                          -> "1"     format version of this layout
 *   '#' "nextid"                           -> u64be   stream ids below it were handed out
 *   '#' "nextseq"                          -> u64be   WAL seqs below it were handed out
 *   'S' id(u64be)                          -> canonical labels (labels.h)  stream
 *   'L' canonical labels                   -> id(u64be)                    labels -> id
 *   'P' name 0x00 value 0x00 id(u64be)     -> ""  postings, exactly the TSDB's (index.h)
 *   'C' id(u64be) tk(maxt) seq(u64be) idx(u32be)
 *                                          -> chunk value (lchunk.h); maxt is the chunk's
 *                                             newest time and (seq, idx) the WAL position
 *                                             of its last entry, unique per stream
 *   'F' id(u64be)                          -> seq(u64be) idx(u32be): flushed position,
 *                                             every entry of the stream up to it is in a
 *                                             'C' key (written in the chunk's batch)
 *   'W' seq(u64be)                         -> write-ahead record of one push (lwal.h)
 *
 * Chunks of a stream are sorted by their newest time, and every chunk spans at most
 * chunk_max_span_ns, so the chunks overlapping [start, end) are exactly those between
 * 'C' id tk(start) and 'C' id tk(end + span): a range read is one seek. Retention
 * deletes from 'C' id onwards while maxt < cutoff, a seek per stream. Out-of-order
 * entries can make a stream's chunks overlap in time; readers merge them.
 *
 * Write path (logstore_push, under wmu): judge every entry against limits and the
 * stream's newest time, then ONE synchronous batch: new streams ('S', 'L', 'P',
 * '#nextid'), the 'W' record of the accepted entries and '#nextseq'. Only after it is
 * durable are the entries applied to the heads (under mu, so queries see all of a push
 * or none of it). A head is cut when the next entry would push it past
 * chunk_target_bytes or chunk_max_span_ns; a cut head is encoded and written after mu
 * is released, with its 'F' position, in a batch without sync: the 'W' records still
 * cover it until they are deleted, which happens later (flush / maintenance) and only
 * for records older than every entry still in memory.
 *
 * Replay at open: streams from 'S' and 'F', then every 'W' record in order; an entry
 * whose position (seq, idx) is after its stream's 'F' position goes back into the head.
 * Positions are unique per stream (idx counts entries over the whole record) and
 * increase in apply order, so nothing is lost or duplicated whatever the crash point.
 *
 * Files: this one has layout, open, replay, push and maintenance; reads are in
 * logstore_query.c; lhead.c holds heads, lchunk.c chunks, lfilter.c token filters,
 * lwal.c write-ahead records, lentry.c the entry encoding. */
#include "logstore_int.h"

#include "../base/vg_alloc.h"
#include "../base/vg_log.h"
#include "../tsdb/index.h"
#include "lwal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char KEY_VERSION[] = "#version";
static const char KEY_NEXTID[] = "#nextid";
static const char KEY_NEXTSEQ[] = "#nextseq";
#define FORMAT_VERSION "1"
#define HOUR_NS (3600LL * 1000000000LL)

void logstore_opts_default(struct logstore_opts *o)
{
    memset(o, 0, sizeof *o);
    o->ooo_window_ns = HOUR_NS;
    o->chunk_max_span_ns = 2 * HOUR_NS;
    o->chunk_target_bytes = 256u << 10;
    o->max_chunk_age_ms = 30LL * 60 * 1000;
    o->max_line_bytes = 256u << 10;
    o->max_meta_bytes = 64u << 10;
    o->max_labels = 15;
    o->max_label_name_bytes = 1024;
    o->max_label_value_bytes = 2048;
    o->max_streams = 10000;
    o->zstd_level = 3;
    o->maint_interval_ms = 60000;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    o->query_workers = cpus > 5 ? 4 : cpus > 2 ? (unsigned)cpus - 1 : 1;
}

const char *logstore_reject_name(enum logstore_reject r)
{
    static const char *const names[] = {
        [LOGSTORE_REJECT_TOO_OLD] = "too_old",
        [LOGSTORE_REJECT_LINE_TOO_LONG] = "line_too_long",
        [LOGSTORE_REJECT_META_TOO_LARGE] = "metadata_too_large",
        [LOGSTORE_REJECT_LABELS] = "invalid_labels",
        [LOGSTORE_REJECT_STREAM_LIMIT] = "stream_limit",
    };
    return (unsigned)r < LOGSTORE_REJECT_COUNT ? names[r] : "unknown";
}

/* ---- keys ---- */

void ls_put_u64be(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (unsigned char)v;
}

uint64_t ls_get_u64be(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

uint32_t ls_get_u32be(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_u32be(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

void ls_put_tk(unsigned char *p, int64_t t)
{
    ls_put_u64be(p, (uint64_t)t ^ (1ULL << 63));
}

int64_t ls_get_tk(const unsigned char *p)
{
    return (int64_t)(ls_get_u64be(p) ^ (1ULL << 63));
}

void ls_chunk_seek_key(unsigned char out[17], uint64_t id, int64_t t)
{
    out[0] = LS_KEY_CHUNK;
    ls_put_u64be(out + 1, id);
    ls_put_tk(out + 9, t);
}

void ls_chunk_key(unsigned char *out, uint64_t id, int64_t maxt, uint64_t seq, uint32_t idx)
{
    ls_chunk_seek_key(out, id, maxt);
    ls_put_u64be(out + 17, seq);
    put_u32be(out + 25, idx);
}

bool ls_chunk_key_parse(const char *k, size_t len, uint64_t id, int64_t *maxt)
{
    const unsigned char *u = (const unsigned char *)k;
    if (len != LS_CHUNK_KEY_LEN || u[0] != LS_KEY_CHUNK || ls_get_u64be(u + 1) != id)
        return false;
    *maxt = ls_get_tk(u + 9);
    return true;
}

static void id_key(unsigned char out[9], char prefix, uint64_t id)
{
    out[0] = (unsigned char)prefix;
    ls_put_u64be(out + 1, id);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ls_grow(void *vp, size_t *cap, size_t n, size_t elem, size_t first)
{
    void **v = vp;
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : first;
    void *nv = vg_realloc(*v, ncap * elem);
    if (!nv)
        return VG_ENOMEM;
    *v = nv;
    *cap = ncap;
    return 0;
}

/* ---- the stream table ---- */

struct lstream *ls_stream_by_id(struct logstore *ls, uint64_t id)
{
    size_t lo = 0, hi = ls->nstreams;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ls->streams[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ls->nstreams && ls->streams[lo]->id == id ? ls->streams[lo] : NULL;
}

static struct lstream *stream_by_enc(struct logstore *ls, const char *enc, size_t len,
                                     uint64_t hash)
{
    if (!ls->hcap)
        return NULL;
    for (struct lstream *s = ls->htab[hash & (ls->hcap - 1)]; s; s = s->hnext)
        if (s->hash == hash && s->enclen == len && memcmp(s->enc, enc, len) == 0)
            return s;
    return NULL;
}

static void stream_free(struct lstream *s)
{
    if (!s)
        return;
    lhead_release(s->head);
    for (size_t i = 0; i < s->nsealed; i++)
        lhead_release(s->sealed[i]);
    vg_free(s->sealed);
    vg_free(s->labels);
    vg_free(s->enc);
    vg_free(s);
}

/* A stream object for the canonical encoding enc (copied). NULL when out of memory or
 * when enc does not decode (err says which). */
static struct lstream *stream_new(uint64_t id, const char *enc, size_t len,
                                  struct vg_err *err)
{
    struct lstream *s = vg_calloc(1, sizeof *s);
    if (!s || !(s->enc = vg_malloc(len + 1))) {
        vg_free(s);
        vg_err_set(err, VG_ENOMEM, "logstore: out of memory creating a stream");
        return NULL;
    }
    memcpy(s->enc, enc, len);
    s->enclen = len;
    s->id = id;
    s->newest = INT64_MIN;
    s->mint = INT64_MAX;
    s->maxt = INT64_MIN;
    /* Each label takes at least two bytes encoded. */
    size_t max = len / 2 + 1;
    s->labels = vg_malloc(max * sizeof *s->labels);
    int n = s->labels ? labels_decode(s->enc, len, s->labels, max, err)
                      : vg_err_set(err, VG_ENOMEM, "logstore: out of memory decoding labels");
    if (n < 0) {
        stream_free(s);
        return NULL;
    }
    s->nlabels = (size_t)n;
    s->hash = labels_hash(s->labels, s->nlabels);
    return s;
}

/* Adds s to the table (its id is larger than every other). Under mu and wmu. */
/* Makes room for extra more streams in the array and the hash table, so the inserts
 * that follow cannot fail. Under mu and wmu. */
static int table_reserve(struct logstore *ls, size_t extra)
{
    size_t need = ls->nstreams + extra;
    if (need > ls->streams_cap) {
        size_t ncap = ls->streams_cap ? ls->streams_cap : 64;
        while (ncap < need)
            ncap *= 2;
        struct lstream **nv = vg_realloc(ls->streams, ncap * sizeof *nv);
        if (!nv)
            return VG_ENOMEM;
        ls->streams = nv;
        ls->streams_cap = ncap;
    }
    if (need * 2 > ls->hcap) {
        size_t ncap = ls->hcap ? ls->hcap * 2 : 256;
        while (ncap < need * 2)
            ncap *= 2;
        struct lstream **nt = vg_calloc(ncap, sizeof *nt);
        if (!nt)
            return VG_ENOMEM;
        for (size_t i = 0; i < ls->nstreams; i++) {
            struct lstream *x = ls->streams[i];
            x->hnext = nt[x->hash & (ncap - 1)];
            nt[x->hash & (ncap - 1)] = x;
        }
        vg_free(ls->htab);
        ls->htab = nt;
        ls->hcap = ncap;
    }
    return 0;
}

/* Adds s where table_reserve made room. Under mu and wmu. */
static void table_put(struct logstore *ls, struct lstream *s)
{
    s->hnext = ls->htab[s->hash & (ls->hcap - 1)];
    ls->htab[s->hash & (ls->hcap - 1)] = s;
    ls->streams[ls->nstreams++] = s;
}

/* Adds s. 0 or VG_ENOMEM. Under mu and wmu. */
static int table_insert(struct logstore *ls, struct lstream *s)
{
    if (table_reserve(ls, 1) != 0)
        return VG_ENOMEM;
    table_put(ls, s);
    return 0;
}

/* Removes s from the table and frees it. Under mu and wmu. */
static void table_remove(struct logstore *ls, struct lstream *s)
{
    struct lstream **pp = &ls->htab[s->hash & (ls->hcap - 1)];
    while (*pp != s)
        pp = &(*pp)->hnext;
    *pp = s->hnext;
    size_t i = 0;
    while (ls->streams[i] != s)
        i++;
    memmove(ls->streams + i, ls->streams + i + 1, (ls->nstreams - i - 1) * sizeof *ls->streams);
    ls->nstreams--;
    stream_free(s);
}

int ls_select_ids(struct logstore *ls, struct matcher *const *ms, size_t nms,
                  struct index_ids *out, struct vg_err *err)
{
    if (nms)
        return index_select(ls->kv, ms, nms, out, err);
    out->n = 0;
    pthread_mutex_lock(&ls->mu);
    int rc = 0;
    for (size_t i = 0; i < ls->nstreams && rc == 0; i++)
        rc = index_ids_push(out, ls->streams[i]->id);
    pthread_mutex_unlock(&ls->mu);
    return rc ? vg_err_set(err, VG_ENOMEM, "logstore: out of memory listing streams") : 0;
}

/* ---- heads ---- */

/* Moves s's head to its sealed list. Under mu and wmu. */
static int seal(struct lstream *s)
{
    if (!s->head)
        return 0;
    if (ls_grow(&s->sealed, &s->sealed_cap, s->nsealed, sizeof *s->sealed, 4))
        return VG_ENOMEM;
    s->sealed[s->nsealed++] = s->head;
    s->head = NULL;
    return 0;
}

/* Appends one durable entry to s's head, cutting it first when e would push it past
 * the size or span bound. Under mu and wmu. On failure the entry is missing from
 * memory until retry_held (next push or maintenance) or the next open replays it;
 * hold_seq keeps its record, stops later entries of s from overtaking it and stops s's
 * chunks from being written (which would move 'F' past it). */
static void apply(struct logstore *ls, struct lstream *s, const struct lentry *e, uint64_t seq,
                  uint32_t idx)
{
    if (s->hold_seq)
        return;
    struct lhead *h = s->head;
    int rc = 0;
    if (h && h->n &&
        (h->raw + lentry_size(e, 0) > ls->o.chunk_target_bytes ||
         e->t - h->mint > ls->o.chunk_max_span_ns || h->maxt - e->t > ls->o.chunk_max_span_ns))
        rc = seal(s);
    if (rc == 0 && !s->head && !(s->head = lhead_new(now_ms())))
        rc = VG_ENOMEM;
    if (rc == 0)
        rc = lhead_append(s->head, e, seq, idx);
    if (rc) {
        s->hold_seq = seq;
        ls->nheld++;
        vg_log(VG_LOG_ERROR, "logstore", "out of memory applying a stored entry; retried "
               "from its write-ahead record", NULL);
        return;
    }
    s->ap_seq = seq;
    s->ap_idx = idx;
    if (e->t > s->newest)
        s->newest = e->t;
    if (e->t < s->mint)
        s->mint = e->t;
    if (e->t > s->maxt)
        s->maxt = e->t;
    ls->head_entries++;
    ls->head_bytes += lentry_bytes(e);
}

/* The entries of a sealed head sorted by time, for encoding: es and the metadata
 * they point to are vg_malloc'ed (caller frees both). 0 or VG_ENOMEM. */
static int head_entries(struct lhead *h, struct lentry **es, struct label **meta)
{
    struct lhead_snap snap;
    lhead_capture(h, &snap);
    struct lhead_ref *refs;
    uint32_t n;
    int rc = lhead_collect(&snap, INT64_MIN, INT64_MAX, &refs, &n);
    lhead_release(h);
    *es = NULL;
    *meta = NULL;
    if (rc)
        return rc;
    *es = vg_malloc((n ? n : 1) * sizeof **es);
    *meta = vg_malloc((h->nmeta + LENTRY_MAX_META) * sizeof **meta);
    if (!*es || !*meta) {
        vg_free(refs);
        return VG_ENOMEM;
    }
    size_t used = 0;
    for (uint32_t i = 0; i < n; i++) {
        lhead_entry(&refs[i], &(*es)[i], *meta + used);
        used += (*es)[i].nmeta;
    }
    vg_free(refs);
    return 0;
}

/* Writes s's sealed heads as chunks, oldest first, each with its 'F' position in one
 * batch without sync. Stops at the first failure (the rest stay in memory, in order,
 * so 'F' never moves backwards). Under wmu, not mu. */
static int write_sealed(struct logstore *ls, struct lstream *s, struct vg_err *err)
{
    struct vg_buf val;
    vg_buf_init(&val);
    int rc = 0;
    while (rc == 0 && s->nsealed && !s->hold_seq) {
        struct lhead *h = s->sealed[0];
        struct lentry *es;
        struct label *meta;
        rc = head_entries(h, &es, &meta);
        if (rc)
            rc = vg_err_set(err, VG_ENOMEM, "logstore: out of memory sealing a chunk");
        vg_buf_reset(&val);
        if (rc == 0)
            rc = lchunk_encode(ls->cw, es, h->n, &val, err);
        vg_free(es);
        vg_free(meta);
        if (rc)
            break;
        unsigned char ck[LS_CHUNK_KEY_LEN], fk[9], fv[12];
        ls_chunk_key(ck, s->id, h->maxt, h->last_seq, h->last_idx);
        id_key(fk, LS_KEY_FLUSHED, s->id);
        ls_put_u64be(fv, h->last_seq);
        put_u32be(fv + 8, h->last_idx);
        kv_batch_clear(ls->batch);
        kv_batch_put(ls->batch, ck, sizeof ck, val.p, val.len);
        kv_batch_put(ls->batch, fk, sizeof fk, fv, sizeof fv);
        rc = kv_write(ls->kv, ls->batch, false, err);
        kv_batch_clear(ls->batch);
        if (rc)
            break;
        pthread_mutex_lock(&ls->mu);
        memmove(s->sealed, s->sealed + 1, (s->nsealed - 1) * sizeof *s->sealed);
        s->nsealed--;
        s->fl_seq = h->last_seq;
        s->fl_idx = h->last_idx;
        ls->head_entries -= h->n;
        ls->head_bytes -= h->bytes;
        pthread_mutex_unlock(&ls->mu);
        lhead_release(h);
        atomic_fetch_add(&ls->chunks_written, 1);
    }
    vg_buf_free(&val);
    return rc;
}

/* ---- pushing ---- */

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Per input stream, what the judging pass decided. */
struct plan {
    struct lstream *s; /* NULL: every entry of the input stream was refused */
    uint32_t naccepted;
};

struct push {
    struct logstore *ls;
    struct logstore_push_result *res;
    struct vg_err *err;
    int first_rc;
    uint8_t *ok;          /* per entry over all input streams: accepted? */
    bool nomem;
    struct lstream **created;
    size_t ncreated, created_cap;
};

static void refuse(struct push *p, enum logstore_reject r, uint64_t n, int code,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void refuse(struct push *p, enum logstore_reject r, uint64_t n, int code,
                   const char *fmt, ...)
{
    p->res->rejected[r] += n;
    atomic_fetch_add(&p->ls->rejected[r], n);
    if (p->first_rc)
        return;
    p->first_rc = code;
    va_list ap;
    va_start(ap, fmt);
    vg_err_vset(p->err, code, fmt, ap);
    va_end(ap);
}

/* Checks a label set against the limits; 0 or the code to refuse it with (err set). */
static int check_labels(const struct logstore_opts *o, const struct label *l, size_t n,
                        struct vg_err *err)
{
    if (n == 0)
        return vg_err_set(err, VG_EINVAL, "stream has no labels");
    if (n > o->max_labels)
        return vg_err_set(err, VG_ETOOLARGE, "stream has %zu labels (at most %zu)", n,
                          o->max_labels);
    for (size_t i = 0; i < n; i++) {
        const struct label *x = &l[i];
        if (x->name.len == 0 || x->value.len == 0)
            return vg_err_set(err, VG_EINVAL, "label %zu has an empty %s", i,
                              x->name.len ? "value" : "name");
        if (x->name.len > o->max_label_name_bytes)
            return vg_err_set(err, VG_ETOOLARGE, "label name of %zu bytes (at most %zu)",
                              x->name.len, o->max_label_name_bytes);
        if (x->value.len > o->max_label_value_bytes)
            return vg_err_set(err, VG_ETOOLARGE, "label %.*s: value of %zu bytes (at most %zu)",
                              (int)x->name.len, x->name.p, x->value.len,
                              o->max_label_value_bytes);
        if (memchr(x->name.p, 0, x->name.len) || memchr(x->value.p, 0, x->value.len))
            return vg_err_set(err, VG_EINVAL, "label %.*s contains a NUL byte",
                              (int)x->name.len, x->name.p);
        if (i && vg_str_cmp(l[i - 1].name, x->name) >= 0)
            return vg_err_set(err, VG_EINVAL, "labels not sorted or not unique at %.*s",
                              (int)x->name.len, x->name.p);
    }
    return 0;
}

/* Finds or creates (in memory only, not yet in the table or the batch) the stream of
 * in's labels. NULL when refused (counted) or out of memory (p->nomem). */
static struct lstream *resolve(struct push *p, const struct logstore_stream_in *in,
                               struct vg_buf *enc)
{
    struct logstore *ls = p->ls;
    struct vg_err lerr;
    int rc = check_labels(&ls->o, in->labels, in->nlabels, &lerr);
    if (rc) {
        refuse(p, LOGSTORE_REJECT_LABELS, in->nentries, rc, "%s", lerr.msg);
        return NULL;
    }
    vg_buf_reset(enc);
    labels_encode(in->labels, in->nlabels, enc);
    if (vg_buf_failed(enc)) {
        p->nomem = true;
        return NULL;
    }
    uint64_t hash = labels_hash(in->labels, in->nlabels);
    struct lstream *s = stream_by_enc(ls, enc->p, enc->len, hash);
    for (size_t i = 0; !s && i < p->ncreated; i++)
        if (p->created[i]->hash == hash && p->created[i]->enclen == enc->len &&
            memcmp(p->created[i]->enc, enc->p, enc->len) == 0)
            s = p->created[i];
    if (s)
        return s;
    if (ls->nstreams + p->ncreated >= ls->o.max_streams) {
        refuse(p, LOGSTORE_REJECT_STREAM_LIMIT, in->nentries, VG_ETOOLARGE,
               "stream limit of %zu streams reached; not creating another",
               ls->o.max_streams);
        return NULL;
    }
    if (ls_grow(&p->created, &p->created_cap, p->ncreated, sizeof *p->created, 8)) {
        p->nomem = true;
        return NULL;
    }
    s = stream_new(ls->next_id + p->ncreated, enc->p, enc->len, &lerr);
    if (!s) {
        p->nomem = true;
        return NULL;
    }
    p->created[p->ncreated++] = s;
    return s;
}

/* Adds the keys of a new stream to the batch. */
static void put_stream_keys(struct logstore *ls, struct lstream *s, struct vg_buf *enc)
{
    unsigned char k[9], v[8];
    id_key(k, LS_KEY_STREAM, s->id);
    kv_batch_put(ls->batch, k, sizeof k, s->enc, s->enclen);
    ls_put_u64be(v, s->id);
    vg_buf_reset(enc);
    vg_buf_putc(enc, LS_KEY_LABELS);
    vg_buf_append(enc, s->enc, s->enclen);
    kv_batch_put(ls->batch, enc->p, enc->len, v, sizeof v);
    for (size_t i = 0; i < s->nlabels; i++) {
        vg_buf_reset(enc);
        index_key(enc, s->labels[i].name, s->labels[i].value, s->id);
        kv_batch_put(ls->batch, enc->p, enc->len, "", 0);
    }
}

/* Judges one entry of stream s; true when accepted (and s's push scratch updated). */
static bool judge(struct push *p, struct lstream *s, const struct lentry *e, int64_t cutoff)
{
    const struct logstore_opts *o = &p->ls->o;
    if (e->line.len > o->max_line_bytes) {
        refuse(p, LOGSTORE_REJECT_LINE_TOO_LONG, 1, VG_ETOOLARGE,
               "stream %" PRIu64 ": line of %zu bytes at t=%" PRId64 " (at most %zu)", s->id,
               e->line.len, e->t, o->max_line_bytes);
        return false;
    }
    uint64_t mbytes = lentry_bytes(e) - e->line.len;
    if (e->nmeta > LENTRY_MAX_META || mbytes > o->max_meta_bytes) {
        refuse(p, LOGSTORE_REJECT_META_TOO_LARGE, 1, VG_ETOOLARGE,
               "stream %" PRIu64 ": %zu metadata pairs of %" PRIu64
               " bytes at t=%" PRId64 " (at most %d pairs, %zu bytes)",
               s->id, e->nmeta, mbytes, e->t, LENTRY_MAX_META, o->max_meta_bytes);
        return false;
    }
    int64_t newest = s->push_gen == p->ls->push_gen ? s->push_newest : s->newest;
    int64_t floor = newest == INT64_MIN ? INT64_MIN : newest - o->ooo_window_ns;
    if (e->t < floor || e->t < cutoff || e->t == INT64_MAX) {
        refuse(p, LOGSTORE_REJECT_TOO_OLD, 1, VG_EINVAL,
               "stream %" PRIu64 ": entry at t=%" PRId64 " is too old (%s %" PRId64 ")", s->id,
               e->t, e->t < cutoff ? "retention starts at" : "the stream's newest entry is",
               e->t < cutoff ? cutoff : newest);
        return false;
    }
    if (s->push_gen != p->ls->push_gen) {
        s->push_gen = p->ls->push_gen;
        s->push_newest = s->newest;
        s->push_n = 0;
    }
    if (e->t > s->push_newest)
        s->push_newest = e->t;
    s->push_n++;
    return true;
}

static void retry_held(struct logstore *ls);

static int push_locked(struct push *p, const struct logstore_stream_in *in, size_t nin,
                       struct plan *plans)
{
    struct logstore *ls = p->ls;
    struct vg_err *err = p->err;
    struct vg_buf enc, rec;
    vg_buf_init(&enc);
    vg_buf_init(&rec);
    retry_held(ls); /* held entries go first: they are older than this push */
    ls->push_gen++;
    kv_batch_clear(ls->batch);
    int64_t cutoff = ls->o.retention_ns ? wall_ns() - ls->o.retention_ns : INT64_MIN;
    size_t at = 0;
    int rc = 0;
    for (size_t i = 0; i < nin; i++) {
        struct lstream *s = resolve(p, &in[i], &enc);
        plans[i].s = s;
        plans[i].naccepted = 0;
        if (p->nomem) {
            rc = VG_ENOMEM;
            break;
        }
        for (size_t j = 0; j < in[i].nentries; j++, at++) {
            p->ok[at] = s && judge(p, s, &in[i].entries[j], cutoff);
            plans[i].naccepted += p->ok[at];
        }
    }
    /* New streams are stored only when they got an entry. */
    size_t nnew = 0;
    for (size_t i = 0; rc == 0 && i < p->ncreated; i++) {
        struct lstream *s = p->created[i];
        if (s->push_gen == ls->push_gen && s->push_n) {
            put_stream_keys(ls, s, &enc);
            nnew++;
        }
    }
    /* The record: one group per input stream with accepted entries. */
    struct lwal_writer w;
    lwal_begin(&w, &rec);
    at = 0;
    uint64_t accepted = 0, bytes = 0;
    for (size_t i = 0; rc == 0 && i < nin; i++) {
        if (plans[i].naccepted)
            lwal_group(&w, plans[i].s->id, plans[i].naccepted);
        for (size_t j = 0; j < in[i].nentries; j++, at++)
            if (p->ok[at]) {
                lwal_entry(&w, &in[i].entries[j]);
                accepted++;
                bytes += lentry_bytes(&in[i].entries[j]);
            }
    }
    /* Room for the new streams is made before the write: once it is durable, the push
     * must reach memory whole, or flushing would drop write-ahead records that are
     * the only copy of entries no head holds. */
    if (rc == 0 && accepted && nnew) {
        pthread_mutex_lock(&ls->mu);
        rc = table_reserve(ls, p->ncreated);
        pthread_mutex_unlock(&ls->mu);
    }
    uint64_t seq = ls->next_seq;
    if (rc == 0 && accepted) {
        unsigned char k[9], v[8];
        id_key(k, LS_KEY_WAL, seq);
        kv_batch_put(ls->batch, k, sizeof k, rec.p, rec.len);
        ls_put_u64be(v, seq + 1);
        kv_batch_put(ls->batch, KEY_NEXTSEQ, sizeof KEY_NEXTSEQ - 1, v, 8);
        ls_put_u64be(v, ls->next_id + p->ncreated);
        kv_batch_put(ls->batch, KEY_NEXTID, sizeof KEY_NEXTID - 1, v, 8);
        if (vg_buf_failed(&rec) || vg_buf_failed(&enc))
            rc = VG_ENOMEM;
        else
            rc = kv_write(ls->kv, ls->batch, !ls->o.no_sync, err);
    }
    kv_batch_clear(ls->batch);
    vg_buf_free(&enc);
    vg_buf_free(&rec);
    if (rc == VG_ENOMEM)
        vg_err_set(err, VG_ENOMEM, "logstore: out of memory preparing a push of %zu streams",
                   nin);
    if (rc)
        return rc;
    if (!accepted)
        return 0;
    /* Durable: make it visible, all at once for queries. */
    ls->next_seq = seq + 1;
    pthread_mutex_lock(&ls->mu);
    for (size_t i = 0; i < p->ncreated; i++) {
        struct lstream *c = p->created[i];
        bool keep = c->push_gen == ls->push_gen && c->push_n; /* else never stored */
        if (keep)
            table_put(ls, c); /* room was reserved before the write */
        if (!keep) {
            for (size_t k = 0; k < nin; k++)
                if (plans[k].s == c)
                    plans[k].s = NULL;
            stream_free(c);
        }
    }
    ls->next_id += p->ncreated;
    p->res->streams_created = nnew;
    p->ncreated = 0;
    at = 0;
    uint32_t idx = 0;
    for (size_t i = 0; i < nin; i++)
        for (size_t j = 0; j < in[i].nentries; j++, at++)
            if (p->ok[at]) {
                if (plans[i].s)
                    apply(ls, plans[i].s, &in[i].entries[j], seq, idx);
                idx++;
            }
    pthread_mutex_unlock(&ls->mu);
    p->res->accepted = accepted;
    p->res->bytes = bytes;
    /* Chunks cut by this push. A failure here loses nothing (the record covers them). */
    for (size_t i = 0; i < nin; i++)
        if (plans[i].s && plans[i].s->nsealed) {
            struct vg_err werr;
            if (write_sealed(ls, plans[i].s, &werr) != 0)
                vg_log(VG_LOG_WARN, "logstore", "writing a chunk failed; retried later",
                       "error", werr.msg, NULL);
        }
    return 0;
}

int logstore_push(struct logstore *ls, const struct logstore_stream_in *streams,
                  size_t nstreams, struct logstore_push_result *res, struct vg_err *err)
{
    struct logstore_push_result local;
    if (!res)
        res = &local;
    memset(res, 0, sizeof *res);
    size_t total = 0;
    for (size_t i = 0; i < nstreams; i++)
        total += streams[i].nentries;
    struct push p = { .ls = ls, .res = res, .err = err };
    p.ok = vg_malloc(total + 1);
    struct plan *plans = vg_malloc((nstreams + 1) * sizeof *plans);
    int rc;
    if (!p.ok || !plans) {
        rc = vg_err_set(err, VG_ENOMEM, "logstore: out of memory for a push of %zu entries",
                        total);
    } else {
        pthread_mutex_lock(&ls->wmu);
        rc = push_locked(&p, streams, nstreams, plans);
        pthread_mutex_unlock(&ls->wmu);
    }
    for (size_t i = 0; i < p.ncreated; i++)
        stream_free(p.created[i]); /* only left when the write failed */
    vg_free(p.created);
    vg_free(p.ok);
    vg_free(plans);
    if (rc) {
        uint64_t rej[LOGSTORE_REJECT_COUNT];
        memcpy(rej, res->rejected, sizeof rej);
        memset(res, 0, sizeof *res);
        memcpy(res->rejected, rej, sizeof rej);
        return rc;
    }
    return p.first_rc;
}

/* ---- open, replay, close ---- */

static int read_u64(struct kv *kv, const char *key, uint64_t *out, struct vg_err *err)
{
    struct vg_buf v;
    vg_buf_init(&v);
    int rc = kv_get(kv, NULL, key, strlen(key), &v, err);
    if (rc == 0 && v.len == 8)
        *out = ls_get_u64be((const unsigned char *)v.p);
    else if (rc == 0)
        rc = vg_err_set(err, VG_EIO, "logstore: %s: value of %zu bytes, want 8", key, v.len);
    vg_buf_free(&v);
    return rc == VG_ENOTFOUND ? 0 : rc;
}

/* mint and maxt of s's stored chunks, from their keys and headers. */
static int load_bounds(struct logstore *ls, struct kv_iter *it, struct lstream *s,
                       struct vg_err *err)
{
    unsigned char k[17];
    id_key(k, LS_KEY_CHUNK, s->id + 1);
    kv_iter_seek(it, k, 9);
    if (kv_iter_valid(it))
        kv_iter_prev(it);
    else
        kv_iter_seek_last(it);
    size_t klen;
    int64_t maxt;
    const char *last = kv_iter_valid(it) ? kv_iter_key(it, &klen) : NULL;
    if (!last || !ls_chunk_key_parse(last, klen, s->id, &maxt))
        return kv_iter_error(it, err);
    s->maxt = maxt;
    /* The oldest entry is in a chunk whose maxt is within a span of the first one's. */
    ls_chunk_seek_key(k, s->id, INT64_MIN);
    kv_iter_seek(it, k, 9);
    int64_t first = INT64_MIN;
    for (; kv_iter_valid(it); kv_iter_next(it)) {
        const char *key = kv_iter_key(it, &klen);
        if (!ls_chunk_key_parse(key, klen, s->id, &maxt))
            break;
        if (first == INT64_MIN)
            first = maxt;
        else if (maxt - first > ls->o.chunk_max_span_ns)
            break;
        size_t vlen;
        const char *v = kv_iter_value(it, &vlen);
        struct lchunk_header h;
        if (lchunk_header_decode(v, vlen, &h, err) != 0)
            return vg_err_prefix(err, "logstore: stream %" PRIu64, s->id);
        if (h.mint < s->mint)
            s->mint = h.mint;
    }
    return kv_iter_error(it, err);
}

static int load_streams(struct logstore *ls, struct vg_err *err)
{
    struct kv_iter *it = kv_iter_new(ls->kv, NULL, false);
    struct kv_iter *cit = kv_iter_new(ls->kv, NULL, false);
    if (!it || !cit) {
        kv_iter_free(it);
        kv_iter_free(cit);
        return vg_err_set(err, VG_ENOMEM, "logstore: out of memory opening an iterator");
    }
    int rc = 0;
    struct vg_buf fv;
    vg_buf_init(&fv);
    char p = LS_KEY_STREAM;
    for (kv_iter_seek(it, &p, 1); rc == 0 && kv_iter_has_prefix(it, &p, 1); kv_iter_next(it)) {
        size_t klen, vlen;
        const unsigned char *k = (const unsigned char *)kv_iter_key(it, &klen);
        const char *v = kv_iter_value(it, &vlen);
        if (klen != 9)
            continue;
        struct lstream *s = stream_new(ls_get_u64be(k + 1), v, vlen, err);
        if (!s) {
            rc = err->code;
            break;
        }
        unsigned char fk[9];
        id_key(fk, LS_KEY_FLUSHED, s->id);
        rc = kv_get(ls->kv, NULL, fk, sizeof fk, &fv, err);
        if (rc == 0 && fv.len == 12) {
            s->fl_seq = ls_get_u64be((const unsigned char *)fv.p);
            s->fl_idx = ls_get_u32be((const unsigned char *)fv.p + 8);
        }
        if (rc == VG_ENOTFOUND)
            rc = 0;
        if (rc == 0)
            rc = load_bounds(ls, cit, s, err);
        s->newest = s->maxt;
        if (rc == 0 && table_insert(ls, s) != 0)
            rc = vg_err_set(err, VG_ENOMEM, "logstore: out of memory loading streams");
        if (s->id >= ls->next_id)
            ls->next_id = s->id + 1;
        if (rc)
            stream_free(s);
    }
    if (rc == 0)
        rc = kv_iter_error(it, err);
    vg_buf_free(&fv);
    kv_iter_free(it);
    kv_iter_free(cit);
    return rc;
}

/* Gives held streams (apply ran out of memory) their entries from the write-ahead
 * records, from hold_seq on and after the last applied position, in order; a stream that
 * fails again stays held from where it stopped. Under wmu (not mu). */
static void retry_held(struct logstore *ls)
{
    if (!ls->nheld)
        return;
    struct vg_buf val;
    vg_buf_init(&val);
    for (size_t i = 0; i < ls->nstreams; i++) {
        struct lstream *s = ls->streams[i];
        if (!s->hold_seq)
            continue;
        uint64_t from = s->hold_seq;
        pthread_mutex_lock(&ls->mu);
        s->hold_seq = 0;
        ls->nheld--;
        pthread_mutex_unlock(&ls->mu);
        for (uint64_t seq = from; seq < ls->next_seq && !s->hold_seq; seq++) {
            unsigned char k[9];
            id_key(k, LS_KEY_WAL, seq);
            struct vg_err err;
            int rc = kv_get(ls->kv, NULL, k, sizeof k, &val, &err);
            if (rc == VG_ENOTFOUND)
                continue;
            struct lwal_reader r;
            if (rc == 0)
                rc = lwal_reader_init(&r, val.p, val.len, &err);
            uint64_t id;
            uint32_t n, idx = 0;
            struct label meta[LENTRY_MAX_META];
            while (rc == 0 && (rc = lwal_next_group(&r, &id, &n, &err)) == 1) {
                rc = 0;
                for (uint32_t j = 0; j < n && rc == 0 && !s->hold_seq; j++, idx++) {
                    struct lentry e;
                    rc = lwal_next_entry(&r, &e, meta, &err);
                    bool done = seq < s->ap_seq || (seq == s->ap_seq && idx <= s->ap_idx);
                    if (rc == 0 && id == s->id && !done) {
                        pthread_mutex_lock(&ls->mu);
                        apply(ls, s, &e, seq, idx);
                        pthread_mutex_unlock(&ls->mu);
                    }
                }
            }
            if (rc < 0) { /* keep it held from here; the next open replays it */
                pthread_mutex_lock(&ls->mu);
                if (!s->hold_seq) {
                    s->hold_seq = seq;
                    ls->nheld++;
                }
                pthread_mutex_unlock(&ls->mu);
            }
        }
    }
    vg_buf_free(&val);
}

static int replay_record(struct logstore *ls, uint64_t seq, const char *v, size_t len,
                         struct vg_err *err)
{
    struct lwal_reader r;
    int rc = lwal_reader_init(&r, v, len, err);
    uint64_t id;
    uint32_t n, idx = 0;
    struct label meta[LENTRY_MAX_META];
    while (rc == 0 && (rc = lwal_next_group(&r, &id, &n, err)) == 1) {
        rc = 0;
        struct lstream *s = ls_stream_by_id(ls, id);
        for (uint32_t i = 0; i < n && rc == 0; i++, idx++) {
            struct lentry e;
            rc = lwal_next_entry(&r, &e, meta, err);
            bool done = s && (seq < s->fl_seq || (seq == s->fl_seq && idx <= s->fl_idx));
            if (rc == 0 && s && !done)
                apply(ls, s, &e, seq, idx);
        }
    }
    return rc < 0 ? vg_err_prefix(err, "logstore: record %" PRIu64, seq) : 0;
}

static int replay(struct logstore *ls, struct vg_err *err)
{
    struct kv_iter *it = kv_iter_new(ls->kv, NULL, false);
    if (!it)
        return vg_err_set(err, VG_ENOMEM, "logstore: out of memory opening an iterator");
    char p = LS_KEY_WAL;
    int rc = 0;
    uint64_t records = 0;
    pthread_mutex_lock(&ls->mu);
    for (kv_iter_seek(it, &p, 1); rc == 0 && kv_iter_has_prefix(it, &p, 1); kv_iter_next(it)) {
        size_t klen, vlen;
        const unsigned char *k = (const unsigned char *)kv_iter_key(it, &klen);
        const char *v = kv_iter_value(it, &vlen);
        if (klen != 9)
            continue;
        uint64_t seq = ls_get_u64be(k + 1);
        rc = replay_record(ls, seq, v, vlen, err);
        if (seq >= ls->next_seq)
            ls->next_seq = seq + 1;
        records++;
    }
    pthread_mutex_unlock(&ls->mu);
    if (rc == 0)
        rc = kv_iter_error(it, err);
    kv_iter_free(it);
    if (records)
        vg_log(VG_LOG_INFO, "logstore", "replayed write-ahead records", NULL);
    return rc;
}

static void maint_round(void *arg, const atomic_bool *stop);

static int check_opts(const struct logstore_opts *o, struct vg_err *err)
{
    if (!o->dir || !*o->dir)
        return vg_err_set(err, VG_EINVAL, "logstore: no directory given");
    if (o->chunk_max_span_ns <= 0 || o->ooo_window_ns < 0 ||
        o->ooo_window_ns > o->chunk_max_span_ns)
        return vg_err_set(err, VG_EINVAL,
                          "logstore: ooo_window_ns (%" PRId64 ") must be between 0 and "
                          "chunk_max_span_ns (%" PRId64 ")",
                          o->ooo_window_ns, o->chunk_max_span_ns);
    if (o->chunk_target_bytes < 1024 || o->chunk_target_bytes > LCHUNK_MAX_RAW / 4)
        return vg_err_set(err, VG_EINVAL, "logstore: chunk_target_bytes %zu out of [1024, %u]",
                          o->chunk_target_bytes, LCHUNK_MAX_RAW / 4);
    if (o->max_line_bytes == 0 || o->max_line_bytes > LCHUNK_MAX_RAW / 4 ||
        o->max_meta_bytes > LCHUNK_MAX_RAW / 4)
        return vg_err_set(err, VG_EINVAL, "logstore: max_line_bytes and max_meta_bytes must "
                          "be in [1, %u]", LCHUNK_MAX_RAW / 4);
    if (o->max_labels == 0 || o->max_streams == 0 || o->zstd_level < 1 || o->zstd_level > 19)
        return vg_err_set(err, VG_EINVAL, "logstore: max_labels and max_streams must be "
                          "positive and zstd_level in [1, 19]");
    if (o->query_workers > LS_MAX_QUERY_WORKERS)
        return vg_err_set(err, VG_EINVAL, "logstore: query_workers %u out of [0, %d]",
                          o->query_workers, LS_MAX_QUERY_WORKERS);
    return 0;
}

struct logstore *logstore_open(const struct logstore_opts *opts, struct vg_err *err)
{
    if (check_opts(opts, err) != 0)
        return NULL;
    struct logstore *ls = vg_calloc(1, sizeof *ls);
    if (!ls) {
        vg_err_set(err, VG_ENOMEM, "logstore: out of memory");
        return NULL;
    }
    ls->o = *opts;
    pthread_mutex_init(&ls->wmu, NULL);
    pthread_mutex_init(&ls->mu, NULL);
    ls->next_seq = 1;
    struct kv_opts ko = { .cache_bytes = opts->cache_bytes,
                          .sync_interval_ms = opts->sync_interval_ms };
    ls->kv = kv_open(opts->dir, &ko, err);
    int rc = ls->kv ? 0 : err->code;
    if (rc == 0) {
        ls->cw = lchunk_writer_new(opts->zstd_level);
        ls->batch = kv_batch_new();
        if (!ls->cw || !ls->batch)
            rc = vg_err_set(err, VG_ENOMEM, "logstore: out of memory");
    }
    struct vg_buf v;
    vg_buf_init(&v);
    if (rc == 0) {
        rc = kv_get(ls->kv, NULL, KEY_VERSION, sizeof KEY_VERSION - 1, &v, err);
        if (rc == VG_ENOTFOUND)
            rc = kv_put(ls->kv, KEY_VERSION, sizeof KEY_VERSION - 1, FORMAT_VERSION, 1, true,
                        err);
        else if (rc == 0 && strcmp(vg_buf_cstr(&v), FORMAT_VERSION) != 0)
            rc = vg_err_set(err, VG_EIO, "logstore: %s has format version %s, this build "
                            "reads %s", opts->dir, vg_buf_cstr(&v), FORMAT_VERSION);
    }
    vg_buf_free(&v);
    if (rc == 0)
        rc = read_u64(ls->kv, KEY_NEXTID, &ls->next_id, err);
    if (rc == 0)
        rc = read_u64(ls->kv, KEY_NEXTSEQ, &ls->next_seq, err);
    if (rc == 0 && ls->next_seq == 0)
        ls->next_seq = 1;
    if (rc == 0)
        rc = load_streams(ls, err);
    if (rc == 0)
        rc = replay(ls, err);
    for (size_t i = 0; rc == 0 && i < ls->nstreams; i++) {
        struct vg_err werr;
        if (ls->streams[i]->nsealed && write_sealed(ls, ls->streams[i], &werr) != 0)
            vg_log(VG_LOG_WARN, "logstore", "writing a replayed chunk failed", "error",
                   werr.msg, NULL);
    }
    if (rc == 0 && opts->maint_interval_ms > 0) {
        /* fixed delay, the first pass one interval after open */
        struct vg_ticker_opts to = { .name = "logstore-maint",
                                     .interval_ms = opts->maint_interval_ms,
                                     .first_ms = opts->maint_interval_ms };
        if (vg_ticker_start(&ls->maint, &to, maint_round, ls, err) < 0)
            rc = vg_err_prefix(err, "logstore");
    }
    if (rc) {
        logstore_close(ls);
        return NULL;
    }
    return ls;
}

void logstore_close(struct logstore *ls)
{
    if (!ls)
        return;
    vg_ticker_stop(&ls->maint); /* the flush below writes what it left */
    if (ls->kv && ls->cw && ls->batch) {
        struct vg_err err;
        if (logstore_flush(ls, true, &err) != 0)
            vg_log(VG_LOG_WARN, "logstore", "flush at close failed; the write-ahead records "
                   "keep the data", "error", err.msg, NULL);
    }
    for (size_t i = 0; i < ls->nstreams; i++)
        stream_free(ls->streams[i]);
    vg_free(ls->streams);
    vg_free(ls->htab);
    lchunk_writer_free(ls->cw);
    kv_batch_free(ls->batch);
    kv_close(ls->kv);
    pthread_mutex_destroy(&ls->wmu);
    pthread_mutex_destroy(&ls->mu);
    vg_free(ls);
}

/* ---- maintenance ---- */

/* Deletes 'W' records older than every entry still only in memory. Under wmu. */
static int truncate_wal(struct logstore *ls, struct vg_err *err)
{
    uint64_t keep = ls->next_seq;
    for (size_t i = 0; i < ls->nstreams; i++) {
        struct lstream *s = ls->streams[i];
        if (s->hold_seq && s->hold_seq < keep)
            keep = s->hold_seq;
        if (s->nsealed && s->sealed[0]->seq_lo < keep)
            keep = s->sealed[0]->seq_lo;
        if (s->head && s->head->n && s->head->seq_lo < keep)
            keep = s->head->seq_lo;
    }
    struct kv_iter *it = kv_iter_new(ls->kv, NULL, false);
    if (!it)
        return vg_err_set(err, VG_ENOMEM, "logstore: out of memory opening an iterator");
    char p = LS_KEY_WAL;
    kv_batch_clear(ls->batch);
    for (kv_iter_seek(it, &p, 1); kv_iter_has_prefix(it, &p, 1); kv_iter_next(it)) {
        size_t klen;
        const unsigned char *k = (const unsigned char *)kv_iter_key(it, &klen);
        if (klen == 9 && ls_get_u64be(k + 1) >= keep)
            break;
        kv_batch_delete(ls->batch, k, klen);
    }
    int rc = kv_iter_error(it, err);
    kv_iter_free(it);
    if (rc == 0 && kv_batch_count(ls->batch))
        rc = kv_write(ls->kv, ls->batch, false, err);
    kv_batch_clear(ls->batch);
    return rc;
}

int logstore_flush(struct logstore *ls, bool all, struct vg_err *err)
{
    pthread_mutex_lock(&ls->wmu);
    retry_held(ls);
    int64_t now = now_ms();
    int rc = 0;
    pthread_mutex_lock(&ls->mu);
    for (size_t i = 0; i < ls->nstreams && rc == 0; i++) {
        struct lstream *s = ls->streams[i];
        if (s->head && s->head->n && (all || now - s->head->created_ms >= ls->o.max_chunk_age_ms))
            rc = seal(s);
    }
    pthread_mutex_unlock(&ls->mu);
    if (rc)
        rc = vg_err_set(err, VG_ENOMEM, "logstore: out of memory sealing heads");
    for (size_t i = 0; i < ls->nstreams && rc == 0; i++)
        if (ls->streams[i]->nsealed)
            rc = write_sealed(ls, ls->streams[i], err);
    if (rc == 0)
        rc = truncate_wal(ls, err);
    pthread_mutex_unlock(&ls->wmu);
    return rc;
}

int logstore_compact(struct logstore *ls, struct vg_err *err)
{
    int rc = logstore_flush(ls, true, err);
    if (rc == 0)
        kv_compact_range(ls->kv, NULL, 0, NULL, 0);
    return rc;
}

/* Deletes s's chunks with maxt < cutoff into the batch; true when s has none left. */
static int retain_stream(struct logstore *ls, struct kv_iter *it, struct lstream *s,
                         int64_t cutoff, uint64_t *deleted, bool *empty, struct vg_err *err)
{
    unsigned char k[17];
    ls_chunk_seek_key(k, s->id, INT64_MIN);
    size_t klen;
    int64_t maxt;
    uint64_t n = 0;
    for (kv_iter_seek(it, k, 9); kv_iter_valid(it); kv_iter_next(it)) {
        const char *key = kv_iter_key(it, &klen);
        if (!ls_chunk_key_parse(key, klen, s->id, &maxt) || maxt >= cutoff)
            break;
        kv_batch_delete(ls->batch, key, klen);
        n++;
    }
    *empty = !kv_iter_valid(it) || !kv_iter_has_prefix(it, k, 9);
    *deleted += n;
    return kv_iter_error(it, err);
}

int logstore_retain(struct logstore *ls, int64_t cutoff_ns, uint64_t *deleted,
                    struct vg_err *err)
{
    uint64_t del = 0;
    pthread_mutex_lock(&ls->wmu);
    struct kv_iter *it = kv_iter_new(ls->kv, NULL, false);
    int rc = it ? 0 : vg_err_set(err, VG_ENOMEM, "logstore: out of memory opening an iterator");
    struct vg_buf kb;
    vg_buf_init(&kb);
    for (size_t i = 0; i < ls->nstreams && rc == 0; i++) {
        struct lstream *s = ls->streams[i];
        if (s->mint >= cutoff_ns)
            continue;
        bool empty;
        uint64_t before = del;
        kv_batch_clear(ls->batch);
        rc = retain_stream(ls, it, s, cutoff_ns, &del, &empty, err);
        bool drop = rc == 0 && empty && !s->head && !s->nsealed && !s->hold_seq;
        if (drop) {
            unsigned char k[9];
            id_key(k, LS_KEY_STREAM, s->id);
            kv_batch_delete(ls->batch, k, 9);
            id_key(k, LS_KEY_FLUSHED, s->id);
            kv_batch_delete(ls->batch, k, 9);
            vg_buf_reset(&kb);
            vg_buf_putc(&kb, LS_KEY_LABELS);
            vg_buf_append(&kb, s->enc, s->enclen);
            kv_batch_delete(ls->batch, kb.p, kb.len);
            for (size_t j = 0; j < s->nlabels; j++) {
                vg_buf_reset(&kb);
                index_key(&kb, s->labels[j].name, s->labels[j].value, s->id);
                kv_batch_delete(ls->batch, kb.p, kb.len);
            }
            if (vg_buf_failed(&kb))
                rc = vg_err_set(err, VG_ENOMEM, "logstore: out of memory building keys");
        }
        if (rc == 0 && kv_batch_count(ls->batch))
            rc = kv_write(ls->kv, ls->batch, false, err);
        if (rc == 0 && drop) {
            pthread_mutex_lock(&ls->mu);
            table_remove(ls, s);
            pthread_mutex_unlock(&ls->mu);
            i--;
        } else if (rc == 0 && del != before) {
            int64_t mint = INT64_MAX;
            struct lstream tmp = *s;
            tmp.mint = INT64_MAX;
            rc = load_bounds(ls, it, &tmp, err);
            mint = tmp.mint;
            pthread_mutex_lock(&ls->mu);
            if (s->head && s->head->n && s->head->mint < mint)
                mint = s->head->mint;
            s->mint = mint;
            pthread_mutex_unlock(&ls->mu);
        }
    }
    kv_batch_clear(ls->batch);
    vg_buf_free(&kb);
    kv_iter_free(it);
    pthread_mutex_unlock(&ls->wmu);
    if (deleted)
        *deleted = del;
    return rc;
}

int logstore_maintain(struct logstore *ls, int64_t now_ns, struct vg_err *err)
{
    int rc = logstore_flush(ls, false, err);
    if (rc == 0 && ls->o.retention_ns > 0)
        rc = logstore_retain(ls, now_ns - ls->o.retention_ns, NULL, err);
    return rc;
}

/* One pass of the "logstore-maint" ticker. */
static void maint_round(void *arg, const atomic_bool *stop)
{
    struct logstore *ls = arg;
    (void)stop; /* logstore_close flushes every head after the stop anyway */
    struct vg_err err;
    if (logstore_maintain(ls, wall_ns(), &err) != 0)
        vg_log(VG_LOG_WARN, "logstore", "maintenance failed", "error", err.msg, NULL);
}

void logstore_info(struct logstore *ls, struct logstore_info *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&ls->mu);
    out->streams = ls->nstreams;
    out->head_entries = ls->head_entries;
    out->head_bytes = ls->head_bytes;
    pthread_mutex_unlock(&ls->mu);
    out->chunks_written = atomic_load(&ls->chunks_written);
    for (int i = 0; i < LOGSTORE_REJECT_COUNT; i++)
        out->rejected[i] = atomic_load(&ls->rejected[i]);
}

void logstore_sync_stats(struct logstore *ls, struct kv_sync_stats *out)
{
    kv_sync_stats(ls->kv, out);
}
